/*
 * op_chunk.c - see op.h and chunk.h: the phases of a coordinated command
 * that move a large value as blocks, so that no step holds more than one
 * block (chunk_size bytes) of it:
 *
 *   FETCH  after READ, for every key whose live version is a manifest:
 *          reads its blocks (quorum R, OP_CHUNK_WINDOW in flight), checks
 *          each against the manifest's hash and assembles the value the
 *          handler sees;
 *   STORE  after EXEC, for every key written with a value over the
 *          threshold: writes its blocks under a fresh random id (quorum W
 *          each, blind), then turns the key's value into the manifest
 *          that the WRITE phase writes.
 * The blocks of a manifest a write drops are deleted by the coordinating
 * replica's node (node_chunkgc.c), which sees exactly what the write
 * superseded, blind writes included.
 *
 * Thread: the machine's loop only.
 */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/chunk.h"
#include "cluster/dvv.h"
#include "cluster/op_internal.h"
#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/error.h"

#define MARGIN_MS 60000 /* blocks outlive their manifest's expiry by it */

uint32_t op__chunk_size(const struct op_machine *m)
{
    return m->cfg.chunk_size ? m->cfg.chunk_size : CHUNK_SIZE_DEF;
}

uint64_t op__chunk_threshold(const struct op_machine *m)
{
    return m->cfg.chunk_threshold ? m->cfg.chunk_threshold
                                  : CHUNK_THRESHOLD_DEF;
}

static uint64_t max_total(const struct op_machine *m)
{
    return m->cfg.chunk_max_total ? m->cfg.chunk_max_total : (uint64_t)1 << 32;
}

void op__chunk_free(struct op *op)
{
    struct op_chunks *ch = op->ch;
    if (ch == NULL) {
        return;
    }
    rk_buf_fini(&ch->mbuf);
    rk_buf_fini(&ch->data);
    rk_buf_fini(&ch->hashes);
    rk_free(ch);
    op->ch = NULL;
}

static struct op_chunks *chunks(struct op *op)
{
    if (op->ch == NULL) {
        op->ch = rk_calloc(1, sizeof(*op->ch));
        if (op->ch) {
            rk_buf_init(&op->ch->mbuf);
            rk_buf_init(&op->ch->data);
            rk_buf_init(&op->ch->hashes);
        }
    }
    return op->ch;
}

static void chunk_fail(struct op *op, const char *fmt, uint32_t a, uint32_t b)
{
    if (!op->failed) {
        op->failed = true;
        snprintf(op->err, sizeof(op->err), fmt, a, b);
    }
}

/* ---- choosing the work of a phase --------------------------------------- */

/* Whether key i needs the current phase's work. */
static bool key_wants(const struct op_machine *m,
                      const struct op *op,
                      const struct op_key *k)
{
    if (op->flags & OP_F_VERSIONED) {
        return false; /* refused instead (op.c) */
    }
    switch (op->phase) {
        case PH_FETCH:
            return k->read && k->live && k->chunked;
        case PH_STORE:
            return k->write && !k->tomb && !k->chunked &&
                   op__kval_len(k) > op__chunk_threshold(m);
        default:
            return false;
    }
}

/* Sets up key op->ch->key for the current phase.  false: failed. */
static bool key_begin(struct op_machine *m, struct op *op, struct op_key *k)
{
    struct op_chunks *ch = op->ch;
    ch->next = ch->done = 0;
    rk_buf_clear(&ch->mbuf);
    if (op->phase == PH_FETCH) {
        if (rk_buf_append(&ch->mbuf, k->val.base, k->val.len) != RK_OK) {
            chunk_fail(op, "ERR out of memory", 0, 0);
            return false;
        }
        if (chunk_manifest_decode(ch->mbuf.base, ch->mbuf.len, max_total(m),
                                  &ch->man) != RK_OK) {
            chunk_fail(op,
                       "ERR the manifest of a chunked value does not decode "
                       "(version %u, %u bytes); the key needs repair",
                       ch->mbuf.len > 4
                           ? (uint32_t)(unsigned char)ch->mbuf.base[4]
                           : 0,
                       (uint32_t)ch->mbuf.len);
            return false;
        }
        /* assembled inside a RESP bulk frame, so that a GET can send the
         * buffer itself (op_key_take_frame) */
        char hdr[32];
        int hl = snprintf(hdr, sizeof(hdr), "$%llu\r\n",
                          (unsigned long long)ch->man.total);
        rk_buf_clear(&ch->data);
        if (rk_buf_reserve(&ch->data, (size_t)hl + ch->man.total + 2) !=
            RK_OK) {
            chunk_fail(op, "ERR out of memory", 0, 0);
            return false;
        }
        memcpy(ch->data.base, hdr, (size_t)hl);
        memcpy(ch->data.base + hl + ch->man.total, "\r\n", 2);
        ch->data.len = (size_t)hl + ch->man.total + 2;
        ch->hdr = (size_t)hl;
        return true;
    }
    /* STORE: a fresh id, hashes as blocks start, the manifest at the end */
    uint64_t r0 = rk_env_rand64(m->cfg.env), r1 = rk_env_rand64(m->cfg.env);
    memset(&ch->man, 0, sizeof(ch->man));
    memcpy(ch->man.id, &r0, 8);
    memcpy(ch->man.id + 8, &r1, 8);
    ch->man.total = op__kval_len(k);
    ch->man.block_size = op__chunk_size(m);
    uint64_t n = ch->man.total / ch->man.block_size +
                 (ch->man.total % ch->man.block_size != 0);
    if (n > UINT32_MAX) {
        chunk_fail(op, "ERR value too large to chunk", 0, 0);
        return false;
    }
    ch->man.n_blocks = (uint32_t)n;
    rk_buf_clear(&ch->hashes);
    if (rk_buf_reserve(&ch->hashes, n * 8) != RK_OK) {
        chunk_fail(op, "ERR out of memory", 0, 0);
        return false;
    }
    ch->hashes.len = n * 8;
    return true;
}

/* The current key's blocks are all answered: finishes it.  false:
 * failed. */
static bool key_end(struct op_machine *m, struct op *op, struct op_key *k)
{
    struct op_chunks *ch = op->ch;
    if (op->phase == PH_FETCH) {
        /* the handler sees the value (a view into the frame); the
         * manifest stays in k->obj */
        struct rk_buf t = k->frame;
        k->frame = ch->data;
        ch->data = t;
        rk_buf_clear(&ch->data);
        rk_buf_clear(&k->val);
        k->vview = k->frame.base + ch->hdr;
        k->vview_len = ch->man.total;
        k->chunked = false;
        m->cstats.values_fetched++;
        m->cstats.bytes_fetched += ch->man.total;
        return true;
    }
    rk_buf_clear(&ch->mbuf);
    const uint64_t *h = (const uint64_t *)(const void *)ch->hashes.base;
    if (chunk_manifest_encode(ch->man.total, ch->man.block_size, ch->man.id, h,
                              &ch->mbuf) != RK_OK) {
        chunk_fail(op, "ERR out of memory", 0, 0);
        return false;
    }
    struct rk_buf t = k->val;
    k->val = ch->mbuf;
    k->vview = NULL;
    ch->mbuf = t;
    rk_buf_clear(&ch->mbuf);
    rk_buf_shrink(&ch->mbuf, OP_KEEP_BYTES);
    k->chunked = true;
    m->cstats.values_stored++;
    m->cstats.bytes_stored += ch->man.total;
    return true;
}

/* Moves to the next key needing work in this phase.  false: none left. */
static bool next_key(struct op_machine *m, struct op *op)
{
    struct op_chunks *ch = op->ch;
    while (ch->key < op->nkeys) {
        struct op_key *k = &op->keys[ch->key];
        if (key_wants(m, op, k)) {
            (void)key_begin(m, op, k); /* on failure op->failed ends it */
            return true;
        }
        ch->key++;
    }
    return false;
}

bool op__chunk_phase_begin(struct op_machine *m,
                           struct op *op,
                           enum op_phase phase)
{
    enum op_phase was = op->phase;
    bool any = false;
    op->phase = phase; /* key_wants asks for this phase */
    for (size_t i = 0; i < op->nkeys && !any; i++) {
        any = key_wants(m, op, &op->keys[i]);
    }
    if (!any) {
        op->phase = was;
        return false;
    }
    if (chunks(op) == NULL) {
        chunk_fail(op, "ERR out of memory", 0, 0);
        return true;
    }
    op->ch->key = 0;
    op->ch->n_io = 0;
    (void)next_key(m, op);
    return true;
}

/* ---- requests ----------------------------------------------------------- */

/* Starts block requests of the current key up to the window. */
void op__chunk_start_more(struct op_machine *m, struct op *op)
{
    struct op_chunks *ch = op->ch;
    const struct op_port *p = &m->cfg.port;
    uint64_t now = rk_env_mono_ms(m->cfg.env);
    uint64_t cookie = (uint64_t)(uintptr_t)op;
    while (!op->failed && ch && ch->n_io < OP_CHUNK_WINDOW &&
           ch->next < ch->man.n_blocks) {
        unsigned char bkey[CHUNK_KEY_LEN];
        chunk_block_key(&ch->man, ch->next, bkey);
        uint64_t id = 0;
        int rc;
        if (op->phase == PH_FETCH) {
            struct node_read_req r = {
                .key = bkey,
                .klen = sizeof(bkey),
                .overrides = op->over,
                .timeout_ms = op->timeout_ms,
                .cookie = cookie,
            };
            rc = p->read(p->data, &r, now, &id);
        } else {
            struct op_key *k = &op->keys[ch->key];
            size_t off = (size_t)ch->next * ch->man.block_size;
            uint32_t blen = chunk_block_len(&ch->man, ch->next);
            uint64_t h = XXH3_64bits(op__kval(k) + off, blen);
            memcpy(ch->hashes.base + (size_t)ch->next * 8, &h, 8);
            struct node_write_req w = {
                .key = bkey,
                .klen = sizeof(bkey),
                .own_context = true,
                .value = op__kval(k) + off,
                .vlen = blen,
                .timestamp = k->ts,
                .expire_at_ms = k->exp ? k->exp + MARGIN_MS : 0,
                .overrides = op->over,
                .timeout_ms = op->timeout_ms,
                .cookie = cookie,
            };
            rc = p->write(p->data, &w, now, &id);
        }
        if (rc == RK_EBUSY) {
            op__stall(m, op);
            return;
        }
        if (rc != RK_OK) {
            p->settle(p->data);
            chunk_fail(op, "ERR cluster request for chunk %u refused (%u)",
                       ch->next, (uint32_t)-rc);
            return;
        }
        ch->io[ch->n_io].op_id = id;
        ch->io[ch->n_io].block = ch->next;
        ch->n_io++;
        ch->next++;
        op->inflight++;
        p->settle(p->data); /* may answer at once */
    }
}

/* A block read answered: checks it and copies it into place. */
static void fetch_answer(struct op_machine *m,
                         struct op *op,
                         uint32_t b,
                         const struct node_result *r)
{
    struct op_chunks *ch = op->ch;
    if (r->status != RK_OK || !r->found) {
        chunk_fail(op,
                   "ERR chunk %u of %u of the value is missing on the "
                   "replicas read; retry, or read at a higher R",
                   b, ch->man.n_blocks);
        return;
    }
    struct dvv_obj o;
    dvv_init(&o);
    size_t w = 0;
    uint32_t blen = chunk_block_len(&ch->man, b);
    bool ok =
        dvv_decode(&o, r->object.ptr, r->object.len) == RK_OK &&
        replica_winner(&o, rk_env_wall_ms(m->cfg.env), &w) == RK_OK &&
        !o.sibs[w].chunked && !o.sibs[w].ctype && o.sibs[w].vlen == blen &&
        XXH3_64bits(dvv_value(&o, w), blen) == chunk_block_hash(&ch->man, b);
    if (ok) {
        memcpy(ch->data.base + ch->hdr + (size_t)b * ch->man.block_size,
               dvv_value(&o, w), blen);
    }
    dvv_fini(&o);
    if (!ok) {
        chunk_fail(op,
                   "ERR chunk %u of %u of the value does not match its "
                   "manifest on the replicas read; retry",
                   b, ch->man.n_blocks);
    }
}

bool op__chunk_on_result(struct op_machine *m,
                         struct op *op,
                         const struct node_result *r)
{
    struct op_chunks *ch = op->ch;
    if (ch == NULL) {
        return false;
    }
    for (unsigned i = 0; i < ch->n_io; i++) {
        if (ch->io[i].op_id != r->op_id) {
            continue;
        }
        uint32_t b = ch->io[i].block;
        ch->io[i] = ch->io[--ch->n_io];
        op->inflight--;
        ch->done++;
        if (op->phase == PH_FETCH) {
            fetch_answer(m, op, b, r);
        } else if (r->status != RK_OK && !op->failed) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err), "%s",
                     r->message[0] ? r->message : "ERR writing a chunk failed");
        }
        return true;
    }
    return false;
}

bool op__chunk_step(struct op_machine *m, struct op *op)
{
    struct op_chunks *ch = op->ch;
    if (ch == NULL || op->failed) {
        return false;
    }
    if (ch->done < ch->man.n_blocks || ch->n_io > 0) {
        return true; /* more of this key (the caller saw nothing start) */
    }
    struct op_key *k = &op->keys[ch->key];
    if (!key_end(m, op, k)) {
        return false;
    }
    ch->key++;
    return next_key(m, op);
}

const struct op_chunk_stats *op_machine_chunk_stats(const struct op_machine *m)
{
    return &m->cstats;
}
