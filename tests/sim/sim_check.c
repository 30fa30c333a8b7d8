/*
 * sim_check.c - the simulator's clients, their history, and the
 * invariants of TESTING.md B3 checked on it (sim.h).
 *
 * Clients (each one operation at a time, through a random live node):
 *   APPEND k e  on a set key: a quorum read (RINGKV.GETALL), then a write
 *               of the union of the siblings' elements plus e with the
 *               read's clock as context (RINGKV.PUT): Jepsen's set
 *               workload over siblings.
 *   SET k v     on a register key: a blind write (own context).
 *   DEL k       on a register key: a read, then a tombstone with its
 *               context (only when a live value was read).
 *   BIG k       on a chunked key (cfg.chunks): a value of 2-3 blocks
 *               written as op_chunk.c writes one: each block a blind write
 *               of its block key (chunk.h), then the manifest, a blind
 *               write with the chunked flag; DEL on these keys as above.
 *               Superseded manifests' blocks are deleted by the node
 *               (node_chunkgc.c).
 * A write answered RK_OK is acknowledged; any other answer, or no answer
 * within SIM_CLIENT_TIMEOUT_MS, leaves its outcome unknown (Jepsen's
 * :info): it may or may not be applied, and is never required.
 *
 * Invariants (E: at the end, after healing, hint drain and one read of
 * every key with R = N; S: on every reply):
 *   I1 (E) every acknowledged APPEND element is in the element set of
 *      every replica of its key (Jepsen's set checker; "unexpected"
 *      elements never attempted are violations too); every acknowledged
 *      SET's dot is a sibling on every replica or covered by its clock.
 *   I2 (E) the replicas of every key hold byte-equal objects and no node
 *      holds hints.  (Before anti-entropy exists this is checked after
 *      the read-repair pass; issue 14 brings Merkle exchange.)
 *   I3 (E) with strict quorums (no sloppy quorum, R + W > N): a client's
 *      consecutive acknowledged APPENDs to one key never end up as two
 *      siblings.
 *   I4 (S) no object has more siblings than the configured bound.
 *   I5 (E) no replica holds a live sibling whose dot an acknowledged
 *      DEL's context covered (a value the delete superseded came back).
 *   I6 (E) every node is a member with all nodes valid, at the same
 *      state version, and sees agreement (with cfg.spares: the members
 *      the final state lists; sim_members.c, which also checks I10).
 * With cfg.spares every replica set is the final ring's (sim__final_ring).
 *   I7 (E) merging a key's replica objects in reverse order, and with
 *      duplicates, gives the same bytes as in order.
 *   I9 (E) every chunk manifest live on a replica of its key names blocks
 *      that are all live, with their manifest's checksums, in the merge of
 *      their replicas (the garbage collector never deleted a block of a
 *      value that is still there, and no acknowledged block was lost).
 *   I11 (E, with cfg.aae) every node's anti-entropy tree of every
 *      partition is built and its root equals the root recomputed from
 *      the node's data engine (the trees are kept on every write path),
 *      and the current replicas of every partition have equal roots
 *      (issue 14: "convergence after heal including Merkle roots equal";
 *      checked after waiting up to 60 s for tombstone reaping to finish on
 *      every replica, sim_run).
 *   I12 (E, sim.c spoof()) a frame that speaks for another node, delivered
 *      over a third node's connection, is dropped (issue 15).
 *   I13 (E, sim.c forge_state()) a GOSSIP whose state's version is more
 *      than MEMBERSHIP_MAX_VERSION_STEP ahead of a member's (no change
 *      makes that) is refused: the member's version stays and
 *      membership_gossip_refused counts it (issue 15).
 *   I14 (S, without sloppy quorum) when a pending owner finishes receiving
 *      a partition (its handoff_done log line), its data engine holds
 *      every APPEND element acknowledged before that transfer started, for
 *      every set key of the partition: what a fold of one replica plus
 *      the verify of the others (node_handoff_verify.c), or the folds of
 *      N - W + 1 replicas, must give it.  With sloppy quorum an
 *      acknowledged write may be only in fallbacks' hints, so it is not
 *      checked there.
 *   I15 (S, with --counters) every replica of a counter key reads
 *      (counter_resolve) the sum of its acknowledged increments, give or
 *      take those whose outcome is unknown (check_counter): concurrent
 *      increments through any node, fallbacks, crashes with a new actor,
 *      handoff and anti-entropy never lose or double one.  Its negative
 *      control (--counters-rmw: INCR as it was, a read and a write of the
 *      sum) breaks it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/aae.h"
#include "cluster/chunk.h"
#include "cluster/dvv.h"
#include "cluster/replica.h"
#include "cluster/slot.h"
#include "cluster/types/counter.h"
#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "sim_internal.h"

#define COOKIE(c) ((uint64_t)(c) + 1)

static struct sim_hist *hist_new(struct sim *s,
                                 enum sim_op_kind kind,
                                 int client,
                                 int key,
                                 uint64_t elem)
{
    if (s->n_hist == s->cap_hist) {
        size_t cap = s->cap_hist ? s->cap_hist * 2 : 1024;
        struct sim_hist *h = rk_realloc(s->hist, cap * sizeof(*h));
        if (h == NULL) {
            return NULL;
        }
        s->hist = h;
        s->cap_hist = cap;
    }
    struct sim_hist *h = &s->hist[s->n_hist++];
    memset(h, 0, sizeof(*h));
    h->kind = kind;
    h->client = client;
    h->key = key;
    h->elem = elem;
    h->invoked_at = sim_now(s);
    rk_buf_init(&h->obj);
    rk_buf_init(&h->ctx);
    return h;
}

void sim__hist_free(struct sim *s)
{
    for (size_t i = 0; i < s->n_hist; i++) {
        rk_buf_fini(&s->hist[i].obj);
        rk_buf_fini(&s->hist[i].ctx);
    }
    rk_free(s->hist);
    s->hist = NULL;
    s->n_hist = s->cap_hist = 0;
}

/* The value of an element set: "e1,e2,..." ascending, elements as
 * decimal; an APPEND's element is client << 32 | seq. */
static int set_encode(const uint64_t *el, size_t n, struct rk_buf *out)
{
    rk_buf_clear(out);
    for (size_t i = 0; i < n; i++) {
        char num[24];
        int l = snprintf(num, sizeof(num), "%s%" PRIu64, i ? "," : "", el[i]);
        if (rk_buf_append(out, num, (size_t)l) != RK_OK) {
            return RK_ENOMEM;
        }
    }
    return RK_OK;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Adds the elements of a value to *el (growable, n/cap). */
static void set_decode(const char *v,
                       size_t len,
                       uint64_t **el,
                       size_t *n,
                       size_t *cap)
{
    size_t i = 0;
    while (i < len) {
        uint64_t x = 0;
        while (i < len && v[i] != ',') {
            x = x * 10 + (uint64_t)(v[i] - '0');
            i++;
        }
        i++;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            uint64_t *p = rk_realloc(*el, nc * sizeof(*p));
            if (p == NULL) {
                return;
            }
            *el = p;
            *cap = nc;
        }
        (*el)[(*n)++] = x;
    }
}

/* The element union of o's live siblings, sorted, deduplicated. */
static size_t elements(const struct dvv_obj *o, uint64_t **el)
{
    size_t n = 0, cap = 0;
    *el = NULL;
    for (size_t i = 0; i < o->n_sibs; i++) {
        if (!o->sibs[i].tombstone) {
            set_decode(dvv_value(o, i), o->sibs[i].vlen, el, &n, &cap);
        }
    }
    if (n > 1) {
        qsort(*el, n, sizeof(**el), u64_cmp);
        size_t w = 1;
        for (size_t i = 1; i < n; i++) {
            if ((*el)[i] != (*el)[w - 1]) {
                (*el)[w++] = (*el)[i];
            }
        }
        n = w;
    }
    return n;
}

/* ---- clients ------------------------------------------------------------- */

static void client_next(struct sim *s, int c, uint64_t after_ms)
{
    struct sim_client *cl = &s->clients[c];
    cl->busy = false;
    cl->hist = -1;
    if (s->clients_on) {
        (void)simnet_schedule(s->net, sim_now(s) + after_ms, SIM_EV_CLIENT, -1,
                              (uint64_t)c, 0);
    }
}

static void client_done(struct sim *s, int c, bool ok, bool unknown)
{
    struct sim_client *cl = &s->clients[c];
    if (cl->hist >= 0) {
        struct sim_hist *h = &s->hist[cl->hist];
        h->ok = ok;
        h->unknown = unknown;
        h->done_at = sim_now(s);
        if (s->cfg.verbose >= 2) {
            char key[8];
            sim__key(h->key, key);
            static const char *kinds[] = {"?",   "append", "set",
                                          "del", "big",    "incr"};
            printf("  %8" PRIu64 " client %d via %s: %s %s %" PRIu64
                   " invoked %" PRIu64 " -> %s dot %016" PRIx64 ":%" PRIu64
                   "\n",
                   sim_now(s), c, s->nodes[cl->node].id, kinds[h->kind], key,
                   h->elem, h->invoked_at,
                   ok        ? "ok"
                   : unknown ? "unknown"
                             : "failed",
                   h->dot_actor, h->dot_counter);
        }
        if (ok) {
            s->res->ops_ok++;
            if (h->kind == SIM_OP_APPEND) {
                s->res->elements_acked++;
            }
        } else if (unknown) {
            s->res->ops_unknown++;
        } else {
            s->res->ops_failed++;
        }
    }
    client_next(s, c, sim__rand(s, 20));
}

static void arm_timeout(struct sim *s, int c)
{
    struct sim_client *cl = &s->clients[c];
    cl->op_gen++;
    (void)simnet_schedule(s->net, sim_now(s) + SIM_CLIENT_TIMEOUT_MS,
                          SIM_EV_CLIENT_TIMEOUT, -1, (uint64_t)c, cl->op_gen);
}

/* Starts the write of the client's operation. */
static void client_write(struct sim *s,
                         int c,
                         const struct rk_buf *ctx,
                         const struct rk_buf *val,
                         bool tomb)
{
    struct sim_client *cl = &s->clients[c];
    struct sim_node *sn = &s->nodes[cl->node];
    char key[8];
    sim__key(cl->key, key);
    struct node_write_req w = {
        .key = key,
        .klen = strlen(key),
        .context = ctx ? ctx->base : NULL,
        .clen = ctx ? ctx->len : 0,
        .own_context = ctx == NULL,
        .tombstone = tomb,
        .value = tomb ? NULL : val->base,
        .vlen = tomb ? 0 : val->len,
        .timestamp = hlc_now(&sn->hlc, rk_env_wall_ms(&sn->env)),
        .cookie = COOKIE(c),
    };
    uint64_t id = 0;
    int rc = node_write(sn->node, &w, sim_now(s), &id);
    cl->writing = true;
    cl->op_id = id;
    if (rc != RK_OK) {
        sim__after(s, cl->node);
        client_done(s, c, false, false);
        return;
    }
    sim__after(s, cl->node);
}

int sim__n_keys(const struct sim *s)
{
    if (s->cfg.counters) {
        return SIM_KEYS_ALL + SIM_KEYS_CTR; /* b0.. stay empty without chunks */
    }
    return s->cfg.chunks ? SIM_KEYS_ALL : SIM_KEYS_SET + SIM_KEYS_REG;
}

/* Starts a counter increment of the client's key by cl->elem: a blind
 * write of PEER_KV_COUNTER's delta and a random id, as op.c sends it. */
static void incr_write(struct sim *s, int c)
{
    struct sim_client *cl = &s->clients[c];
    struct sim_node *sn = &s->nodes[cl->node];
    char key[8];
    sim__key(cl->key, key);
    unsigned char add[PEER_KV_COUNTER_LEN];
    rk_put_le64(add, cl->elem);
    rk_put_le64(add + 8, sim__rand(s, UINT64_MAX));
    rk_put_le64(add + 16, sim__rand(s, UINT64_MAX));
    struct node_write_req w = {
        .key = key,
        .klen = strlen(key),
        .own_context = true,
        .counter = true,
        .value = add,
        .vlen = sizeof(add),
        .timestamp = hlc_now(&sn->hlc, rk_env_wall_ms(&sn->env)),
        .cookie = COOKIE(c),
    };
    uint64_t id = 0;
    int rc = node_write(sn->node, &w, sim_now(s), &id);
    cl->writing = true;
    cl->op_id = id;
    sim__after(s, cl->node);
    if (rc != RK_OK) {
        client_done(s, c, false, false);
    }
}

/* Block i of a chunked value of client op elem: SIM_CHUNK_BLOCK bytes. */
static void big_block(uint64_t elem, uint32_t i, char out[SIM_CHUNK_BLOCK + 1])
{
    snprintf(out, SIM_CHUNK_BLOCK + 1, "%012" PRIx64 "%04x",
             elem & UINT64_C(0xffffffffffff), (unsigned)(i & 0xffffu));
}

/* Writes the client's next block, or its manifest after the last. */
static void big_write(struct sim *s, int c)
{
    struct sim_client *cl = &s->clients[c];
    struct sim_node *sn = &s->nodes[cl->node];
    struct sim_hist *h = cl->hist >= 0 ? &s->hist[cl->hist] : NULL;
    if (h == NULL || sn->node == NULL) {
        client_done(s, c, false, false);
        return;
    }
    struct chunk_manifest m;
    if (chunk_manifest_decode(h->ctx.base, h->ctx.len, UINT64_MAX, &m) !=
        RK_OK) {
        client_done(s, c, false, false);
        return;
    }
    char bval[SIM_CHUNK_BLOCK + 1];
    unsigned char bkey[CHUNK_KEY_LEN];
    char key[8];
    struct node_write_req w = {
        .own_context = true,
        .timestamp = hlc_now(&sn->hlc, rk_env_wall_ms(&sn->env)),
        .cookie = COOKIE(c),
    };
    if (cl->blk < cl->nblk) {
        big_block(cl->elem, cl->blk, bval);
        chunk_block_key(&m, cl->blk, bkey);
        w.key = bkey;
        w.klen = sizeof(bkey);
        w.value = bval;
        w.vlen = SIM_CHUNK_BLOCK;
    } else {
        sim__key(cl->key, key);
        w.key = key;
        w.klen = strlen(key);
        w.value = h->ctx.base;
        w.vlen = h->ctx.len;
        w.chunked = true;
        cl->writing = true; /* from now on the outcome may be unknown */
    }
    uint64_t id = 0;
    int rc = node_write(sn->node, &w, sim_now(s), &id);
    cl->op_id = id;
    sim__after(s, cl->node);
    if (rc != RK_OK) {
        client_done(s, c, false, false);
    }
}

/* A BIG operation: its manifest (kept in its history record), then its
 * blocks one at a time (big_write, on_write). */
static void big_begin(struct sim *s, int c)
{
    struct sim_client *cl = &s->clients[c];
    struct sim_hist *h = cl->hist >= 0 ? &s->hist[cl->hist] : NULL;
    if (h == NULL) {
        client_done(s, c, false, false);
        return;
    }
    cl->nblk = 2 + (uint32_t)sim__rand(s, 2);
    cl->blk = 0;
    unsigned char id[CHUNK_ID_LEN] = {0};
    memcpy(id, &cl->elem, 8); /* client << 32 | seq: unique */
    memcpy(id + 8, "simchunk", 8);
    uint64_t hashes[3];
    for (uint32_t i = 0; i < cl->nblk; i++) {
        char b[SIM_CHUNK_BLOCK + 1];
        big_block(cl->elem, i, b);
        hashes[i] = XXH3_64bits(b, SIM_CHUNK_BLOCK);
    }
    rk_buf_clear(&h->ctx);
    if (chunk_manifest_encode((uint64_t)cl->nblk * SIM_CHUNK_BLOCK,
                              SIM_CHUNK_BLOCK, id, hashes, &h->ctx) != RK_OK) {
        client_done(s, c, false, false);
        return;
    }
    big_write(s, c);
}

void sim__client_event(struct sim *s, int c)
{
    struct sim_client *cl = &s->clients[c];
    if (!s->clients_on || cl->busy) {
        return;
    }
    int key = (int)sim__rand(
        s, s->cfg.chunks ? SIM_KEYS_ALL : SIM_KEYS_SET + SIM_KEYS_REG);
    bool big = key >= SIM_KEYS_SET + SIM_KEYS_REG;
    enum sim_op_kind kind = key < SIM_KEYS_SET ? SIM_OP_APPEND
                            : sim__rand(s, 10) < 7
                                ? (big ? SIM_OP_BIG : SIM_OP_SET)
                                : SIM_OP_DEL;
    if (s->cfg.counters && sim__rand(s, 3) == 0) {
        /* a third of the operations increment a counter by -3..9 */
        key = SIM_KEYS_ALL + (int)sim__rand(s, SIM_KEYS_CTR);
        kind = SIM_OP_INCR;
    }
    cl->busy = true;
    cl->kind = kind;
    cl->key = key;
    cl->node = (int)sim__rand(s, s->cfg.n_nodes);
    for (size_t k = 0; k < s->cfg.n_nodes && !sim__is_member(s, cl->node);
         k++) {
        cl->node = (cl->node + 1) % (int)s->cfg.n_nodes; /* not a spare */
    }
    cl->writing = false;
    cl->elem = ((uint64_t)(c + 1) << 32) | ++cl->seq;
    cl->invoked_at = sim_now(s);
    if (kind == SIM_OP_INCR) {
        int64_t d = (int64_t)sim__rand(s, 12) - 3;
        cl->elem = (uint64_t)(d >= 0 ? d + 1 : d); /* never 0 */
    }
    struct sim_hist *h = hist_new(s, kind, c, key, cl->elem);
    cl->hist = h ? (int)(h - s->hist) : -1;
    struct sim_node *sn = &s->nodes[cl->node];
    if (sn->node == NULL) {
        client_done(s, c, false, false); /* connection refused */
        return;
    }
    arm_timeout(s, c);
    if (simnet_is_paused(s->net, cl->node)) {
        return; /* no answer: the timeout records it unknown */
    }
    if (kind == SIM_OP_SET) {
        struct rk_buf v;
        rk_buf_init(&v);
        (void)set_encode(&cl->elem, 1, &v);
        client_write(s, c, NULL, &v, false);
        rk_buf_fini(&v);
        return;
    }
    if (kind == SIM_OP_BIG) {
        big_begin(s, c);
        return;
    }
    if (kind == SIM_OP_INCR && !s->cfg.counters_rmw) {
        incr_write(s, c);
        return;
    }
    char k[8];
    sim__key(key, k);
    struct node_read_req r = {.key = k, .klen = strlen(k), .cookie = COOKIE(c)};
    uint64_t id = 0;
    int rc = node_read(sn->node, &r, sim_now(s), &id);
    cl->op_id = id;
    sim__after(s, cl->node);
    if (rc != RK_OK) {
        client_done(s, c, false, false);
    }
}

void sim__client_timeout(struct sim *s, int c, uint64_t gen)
{
    struct sim_client *cl = &s->clients[c];
    if (!cl->busy || cl->op_gen != gen) {
        return;
    }
    struct sim_node *sn = &s->nodes[cl->node];
    if (sn->node && !simnet_is_paused(s->net, cl->node)) {
        (void)node_cancel(sn->node, COOKIE(c));
        sim__after(s, cl->node);
    }
    client_done(
        s, c, false,
        cl->kind == SIM_OP_BIG
            ? cl->writing
            : cl->writing || cl->kind == SIM_OP_SET || cl->kind == SIM_OP_INCR);
}

/* The write's own dot in the object after it: the sibling holding its
 * value (values are unique), or for a tombstone the newest tombstone. */
static void find_dot(struct sim_hist *h,
                     const struct dvv_obj *o,
                     const struct rk_buf *val)
{
    for (size_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sibling *sb = &o->sibs[i];
        bool hit = h->kind == SIM_OP_DEL
                       ? sb->tombstone
                       : !sb->tombstone && sb->vlen == val->len &&
                             memcmp(dvv_value(o, i), val->base, val->len) == 0;
        if (hit && sb->dot.counter >= h->dot_counter) {
            h->dot_actor = sb->dot.actor;
            h->dot_counter = sb->dot.counter;
        }
    }
}

static void on_read(struct sim *s, int c, const struct node_result *r)
{
    struct sim_client *cl = &s->clients[c];
    struct sim_node *sn = &s->nodes[cl->node];
    if (r->status != RK_OK && r->status != RK_ENOTFOUND) {
        client_done(s, c, false, false); /* nothing was written */
        return;
    }
    struct dvv_obj o;
    dvv_init(&o);
    if (r->found && dvv_decode(&o, r->object.ptr, r->object.len) != RK_OK) {
        sim__violation(s, SIM_I6_RING, "a read answer did not decode");
        dvv_fini(&o);
        client_done(s, c, false, false);
        return;
    }
    if (s->cfg.lww) {
        (void)dvv_lww(&o); /* what ringkvd shows a client under lww */
    }
    if (o.n_sibs) {
        (void)hlc_update(&sn->hlc, rk_env_wall_ms(&sn->env), dvv_max_ts(&o));
    }
    uint64_t *el = NULL;
    size_t n = elements(&o, &el);
    bool live = false;
    for (size_t i = 0; i < o.n_sibs; i++) {
        live = live || !o.sibs[i].tombstone;
    }
    struct rk_buf ctx, val;
    rk_buf_init(&ctx);
    rk_buf_init(&val);
    o.n_sibs = 0; /* the clock alone is the context */
    int rc = dvv_encode(&o, &ctx);
    if (cl->kind == SIM_OP_APPEND && rc == RK_OK) {
        uint64_t *p = rk_realloc(el, (n + 1) * sizeof(*p));
        if (p) {
            el = p;
            el[n++] = cl->elem;
            qsort(el, n, sizeof(*el), u64_cmp);
            rc = set_encode(el, n, &val);
        } else {
            rc = RK_ENOMEM;
        }
    }
    rk_free(el);
    if (cl->kind == SIM_OP_INCR && rc == RK_OK) {
        /* the negative control: the value read plus the delta, written
         * over what was read (o's siblings were dropped above: decode
         * the answer again) */
        struct dvv_obj ro;
        struct counter st;
        struct counter_view v;
        dvv_init(&ro);
        counter_init(&st);
        int64_t cur = 0;
        if (r->found &&
            dvv_decode(&ro, r->object.ptr, r->object.len) == RK_OK &&
            counter_resolve(&ro, 0, &st, &v) == RK_OK) {
            if (v.kind == COUNTER_VIEW_VALUE && v.numeric) {
                cur = (int64_t)v.sum;
            } else if (v.kind == COUNTER_VIEW_PLAIN) {
                size_t pl;
                const char *pv = dvv_payload(&ro, v.idx, &pl);
                (void)counter_parse_i64(pv, pl, &cur);
            }
        }
        char num[32];
        int nl = snprintf(num, sizeof(num), "%lld",
                          (long long)(cur + (int64_t)cl->elem));
        rc = rk_buf_append(&val, num, (size_t)nl);
        counter_fini(&st);
        dvv_fini(&ro);
    }
    dvv_fini(&o);
    if (rc != RK_OK) {
        client_done(s, c, false, false);
    } else if (cl->kind == SIM_OP_DEL && !live) {
        client_done(s, c, true, false); /* nothing to delete */
        if (cl->hist >= 0) {
            s->hist[cl->hist].kind = SIM_OP_DEL;
        }
    } else {
        if (cl->hist >= 0 && cl->kind == SIM_OP_APPEND) {
            /* remember the value to find the write's dot */
            rk_buf_clear(&s->hist[cl->hist].obj);
            (void)rk_buf_append(&s->hist[cl->hist].obj, val.base, val.len);
        }
        if (cl->hist >= 0 && cl->kind == SIM_OP_DEL) {
            rk_buf_clear(&s->hist[cl->hist].ctx);
            (void)rk_buf_append(&s->hist[cl->hist].ctx, ctx.base, ctx.len);
        }
        client_write(s, c, &ctx, &val, cl->kind == SIM_OP_DEL);
    }
    rk_buf_fini(&ctx);
    rk_buf_fini(&val);
}

static void on_write(struct sim *s, int c, const struct node_result *r)
{
    struct sim_client *cl = &s->clients[c];
    if (cl->kind == SIM_OP_BIG && !cl->writing) {
        /* a block: on to the next one or the manifest; a failed block
         * ends the operation before its manifest (nothing visible) */
        if (r->status != RK_OK) {
            client_done(s, c, false, false);
        } else {
            cl->blk++;
            big_write(s, c);
        }
        return;
    }
    if (r->status != RK_OK) {
        client_done(s, c, false, true);
        return;
    }
    struct sim_hist *h = cl->hist >= 0 ? &s->hist[cl->hist] : NULL;
    if (cl->kind == SIM_OP_INCR) {
        s->res->incr_acked++;
        client_done(s, c, true, false); /* checked by its sum (I15) */
        return;
    }
    struct dvv_obj o;
    dvv_init(&o);
    if (r->found && dvv_decode(&o, r->object.ptr, r->object.len) == RK_OK) {
        if (o.n_sibs > s->res->max_siblings) {
            s->res->max_siblings = o.n_sibs;
        }
        if (o.n_sibs > DVV_DEFAULT_SIBLINGS) {
            sim__violation(s, SIM_I4_SIBLING_BOUND,
                           "%zu siblings after a write (bound %d)", o.n_sibs,
                           DVV_DEFAULT_SIBLINGS);
        }
        if (h) {
            struct rk_buf val;
            rk_buf_init(&val);
            if (h->kind == SIM_OP_APPEND) {
                (void)rk_buf_append(&val, h->obj.base, h->obj.len);
            } else if (h->kind == SIM_OP_BIG) {
                (void)rk_buf_append(&val, h->ctx.base, h->ctx.len);
                s->res->chunked_acked++;
            } else {
                (void)set_encode(&h->elem, 1, &val);
            }
            find_dot(h, &o, &val);
            rk_buf_fini(&val);
            rk_buf_clear(&h->obj);
            (void)rk_buf_append(&h->obj, r->object.ptr, r->object.len);
        }
    }
    dvv_fini(&o);
    client_done(s, c, true, false);
}

/* A test's operation answered (the fixture API, sim.h). */
static void test_reply(struct sim *s, const struct node_result *r)
{
    size_t slot = (size_t)(r->cookie - SIM_TEST_COOKIE);
    struct sim_op *op = slot < SIM_TEST_OPS ? s->test_ops[slot] : NULL;
    if (op == NULL) {
        return;
    }
    s->test_ops[slot] = NULL;
    op->done = true;
    op->status = r->status;
    op->found = r->found;
    op->successes = r->successes;
    op->olen = r->object.len < sizeof(op->object) ? r->object.len : 0;
    if (op->olen) {
        memcpy(op->object, r->object.ptr, op->olen);
    }
    snprintf(op->message, sizeof(op->message), "%s", r->message);
}

static int test_slot(struct sim *s, struct sim_op *op)
{
    memset(op, 0, sizeof(*op));
    for (int i = 0; i < SIM_TEST_OPS; i++) {
        if (s->test_ops[i] == NULL) {
            s->test_ops[i] = op;
            return i;
        }
    }
    return -1;
}

int sim_read(struct sim *s,
             int i,
             const char *key,
             uint32_t r,
             struct sim_op *op)
{
    int slot = test_slot(s, op);
    if (slot < 0 || s->nodes[i].node == NULL) {
        if (slot >= 0) {
            s->test_ops[slot] = NULL;
        }
        return RK_EBUSY;
    }
    struct node_read_req q = {
        .key = key,
        .klen = strlen(key),
        .overrides = {0, r, 0},
        .cookie = SIM_TEST_COOKIE + (uint64_t)slot,
    };
    uint64_t id;
    int rc = node_read(s->nodes[i].node, &q, sim_now(s), &id);
    if (rc != RK_OK) {
        s->test_ops[slot] = NULL;
    }
    sim__after(s, i);
    return rc;
}

int sim_write(struct sim *s, int i, struct node_write_req *w, struct sim_op *op)
{
    int slot = test_slot(s, op);
    if (slot < 0 || s->nodes[i].node == NULL) {
        if (slot >= 0) {
            s->test_ops[slot] = NULL;
        }
        return RK_EBUSY;
    }
    w->cookie = SIM_TEST_COOKIE + (uint64_t)slot;
    uint64_t id;
    int rc = node_write(s->nodes[i].node, w, sim_now(s), &id);
    if (rc != RK_OK) {
        s->test_ops[slot] = NULL;
    }
    sim__after(s, i);
    return rc;
}

void sim__on_reply(struct sim *s, int node, const struct node_result *r)
{
    if (r->cookie >= SIM_TEST_COOKIE) {
        test_reply(s, r);
        return;
    }
    if (r->cookie == 0 || r->cookie > SIM_MAX_CLIENTS) {
        return; /* the repair pass */
    }
    int c = (int)(r->cookie - 1);
    struct sim_client *cl = &s->clients[c];
    /* op ids are per node: a late reply of an op the client gave up on
     * at another node can carry the id of its current op (seed 574: a
     * read of s1 took the answer of an abandoned read of s2, and the
     * client wrote s2's elements into s1, a false I1) */
    if (!cl->busy || cl->op_id != r->op_id || cl->node != node) {
        return;
    }
    if (r->kind == NODE_OP_READ) {
        on_read(s, c, r);
    } else {
        on_write(s, c, r);
    }
}

/* ---- the end of a run ------------------------------------------------------
 */

void sim__repair_pass(struct sim *s)
{
    for (int k = 0; k < sim__n_keys(s); k++) {
        int i = sim__member_at(s, (uint64_t)k);
        struct sim_node *sn = &s->nodes[i];
        if (sn->node == NULL) {
            continue;
        }
        char key[8];
        sim__key(k, key);
        struct node_read_req r = {
            .key = key,
            .klen = strlen(key),
            .overrides = {0, s->cfg.n, 0},
            .cookie = 0,
        };
        uint64_t id;
        (void)node_read(sn->node, &r, sim_now(s), &id);
        sim__after(s, i);
        sim__run_until(s, sim_now(s) + 300, SIZE_MAX);
    }
}

/* The replicas of key (klen bytes; node indexes) by the final ring (the
 * first member's: after heal all members agree, I6), all nodes up. */
static size_t replicas_of_key(struct sim *s,
                              const void *key,
                              size_t klen,
                              int *out)
{
    const struct ring *r = sim__final_ring(s);
    size_t idx[ROUTE_MAX_TARGETS];
    size_t all = ring_preflist(r, ring_partition_of_key(r, key, klen), idx,
                               ROUTE_MAX_TARGETS);
    size_t n = s->cfg.n < all ? s->cfg.n : all;
    for (size_t i = 0; i < n; i++) {
        const char *id = ring_member_id(r, idx[i], NULL);
        out[i] = -1;
        for (size_t j = 0; j < s->cfg.n_nodes; j++) {
            if (strcmp(s->nodes[j].id, id) == 0) {
                out[i] = (int)j;
            }
        }
    }
    return n;
}

static size_t replicas_of(struct sim *s, const char *key, int *out)
{
    return replicas_of_key(s, key, strlen(key), out);
}

/* I9: every block of a manifest that is live on a replica of key k is
 * live, with its checksum, in the merge of the block's replicas. */
static void check_chunks(struct sim *s, int k)
{
    char key[8];
    sim__key(k, key);
    int rep[ROUTE_MAX_TARGETS];
    size_t nr = replicas_of(s, key, rep);
    uint64_t wall = rk_env_wall_ms(&s->nodes[0].env);
    for (size_t i = 0; i < nr; i++) {
        struct dvv_obj o;
        dvv_init(&o);
        if (rep[i] < 0 || replica_read(s->nodes[rep[i]].data, key, strlen(key),
                                       &o) != RK_OK) {
            dvv_fini(&o);
            continue;
        }
        for (size_t x = 0; x < o.n_sibs; x++) {
            struct chunk_manifest m;
            if (!o.sibs[x].chunked ||
                (o.sibs[x].expire_at_ms && o.sibs[x].expire_at_ms <= wall)) {
                continue;
            }
            if (chunk_manifest_decode(dvv_value(&o, x), o.sibs[x].vlen,
                                      UINT64_MAX, &m) != RK_OK) {
                sim__violation(s, SIM_I9_CHUNK_LOST,
                               "%s on %s: a manifest does not decode", key,
                               s->nodes[rep[i]].id);
                continue;
            }
            for (uint32_t b = 0; b < m.n_blocks; b++) {
                unsigned char bkey[CHUNK_KEY_LEN];
                chunk_block_key(&m, b, bkey);
                int brep[ROUTE_MAX_TARGETS];
                size_t nb = replicas_of_key(s, bkey, sizeof(bkey), brep);
                struct dvv_obj merged;
                dvv_init(&merged);
                for (size_t j = 0; j < nb; j++) {
                    struct dvv_obj bo;
                    dvv_init(&bo);
                    if (brep[j] >= 0 &&
                        replica_read(s->nodes[brep[j]].data, bkey, sizeof(bkey),
                                     &bo) == RK_OK) {
                        (void)dvv_merge_into(&merged, &bo);
                    }
                    dvv_fini(&bo);
                }
                size_t w = 0;
                bool ok =
                    replica_winner(&merged, wall, &w) == RK_OK &&
                    merged.sibs[w].vlen == chunk_block_len(&m, b) &&
                    XXH3_64bits(dvv_value(&merged, w), merged.sibs[w].vlen) ==
                        chunk_block_hash(&m, b);
                if (!ok && s->cfg.verbose >= 2) {
                    printf("I9 %s on %s: clock", key, s->nodes[rep[i]].id);
                    for (size_t q = 0; q < o.n_clock; q++) {
                        printf(" %016" PRIx64 ":%" PRIu64, o.clock[q].actor,
                               o.clock[q].counter);
                    }
                    printf("; siblings");
                    for (size_t q = 0; q < o.n_sibs; q++) {
                        printf(" %016" PRIx64 ":%" PRIu64 "%s",
                               o.sibs[q].dot.actor, o.sibs[q].dot.counter,
                               o.sibs[q].chunked ? "(m)" : "");
                    }
                    printf(
                        "; block sibs %zu%s, partition %" PRIu32 ", replicas",
                        merged.n_sibs,
                        merged.n_sibs && merged.sibs[0].tombstone ? " tombstone"
                                                                  : "",
                        ring_partition_of_key(sim__final_ring(s), bkey,
                                              sizeof(bkey)));
                    for (size_t q = 0; q < nb; q++) {
                        printf(" %s",
                               brep[q] >= 0 ? s->nodes[brep[q]].id : "?");
                    }
                    printf("\n");
                }
                if (!ok) {
                    uint64_t elem;
                    memcpy(&elem, m.id, 8);
                    sim__violation(
                        s, SIM_I9_CHUNK_LOST,
                        "%s: block %" PRIu32 " of %" PRIu32
                        " of the value of client %d seq %" PRIu64
                        " (live on %s) is %s",
                        key, b, m.n_blocks, (int)(elem >> 32) - 1,
                        elem & 0xffffffffu, s->nodes[rep[i]].id,
                        merged.n_sibs == 0 ? "missing" : "deleted or damaged");
                }
                dvv_fini(&merged);
            }
        }
        dvv_fini(&o);
    }
}

/*
 * Whether an acknowledged SET was legitimately superseded although a
 * replica neither holds nor covers its dot (the key's tombstone may have
 * been reaped and the key written again since): a later acknowledged
 * blind SET saw it (its object's clock covers the dot), or a DEL whose
 * outcome is known or not wrote a tombstone with a context covering it.
 */
static bool superseded(const struct sim *s, const struct sim_hist *h)
{
    struct dvv_dot d = {h->dot_actor, h->dot_counter};
    for (size_t i = 0; i < s->n_hist; i++) {
        const struct sim_hist *x = &s->hist[i];
        if (x == h || x->key != h->key) {
            continue;
        }
        /* what x superseded: a blind SET everything its coordinating
         * replica had seen (its object's clock); a DEL its context */
        const struct rk_buf *saw =
            (x->kind == SIM_OP_SET || x->kind == SIM_OP_BIG) && x->ok ? &x->obj
            : x->kind == SIM_OP_DEL && (x->ok || x->unknown)          ? &x->ctx
                                                                      : NULL;
        if (saw && saw->len) {
            struct dvv_obj o;
            dvv_init(&o);
            bool cov = dvv_decode(&o, saw->base, saw->len) == RK_OK &&
                       dvv_covers(&o, d);
            dvv_fini(&o);
            if (cov) {
                return true;
            }
        }
    }
    return false;
}

static void check_key(struct sim *s, int k)
{
    char key[8];
    sim__key(k, key);
    int rep[ROUTE_MAX_TARGETS];
    size_t nr = replicas_of(s, key, rep);
    struct dvv_obj objs[ROUTE_MAX_TARGETS];
    struct rk_buf enc[ROUTE_MAX_TARGETS];
    for (size_t i = 0; i < nr; i++) {
        dvv_init(&objs[i]);
        rk_buf_init(&enc[i]);
        if (rep[i] < 0) {
            continue;
        }
        int rc =
            replica_read(s->nodes[rep[i]].data, key, strlen(key), &objs[i]);
        if (rc != RK_OK && rc != RK_ENOTFOUND) {
            sim__violation(s, SIM_I2_CONVERGENCE, "%s on %s: %s", key,
                           s->nodes[rep[i]].id, rk_errname(rc));
        }
        /* A replica that reaped a tombstone holds nothing where the
         * others still hold it until their own reaper's round: the same
         * visible state (a read merges both to "missing"), so only live
         * data must be equal. */
        if (objs[i].n_sibs > 0 && !dvv_all_tombstones(&objs[i])) {
            (void)dvv_encode(&objs[i], &enc[i]);
        }
        if (i > 0 && (enc[i].len != enc[0].len ||
                      (enc[0].len &&
                       memcmp(enc[i].base, enc[0].base, enc[0].len) != 0))) {
            sim__violation(s, SIM_I2_CONVERGENCE,
                           "%s differs between %s and %s after heal", key,
                           s->nodes[rep[0]].id, s->nodes[rep[i]].id);
        }
        if (objs[i].n_sibs > DVV_DEFAULT_SIBLINGS) {
            sim__violation(s, SIM_I4_SIBLING_BOUND, "%s has %zu siblings", key,
                           objs[i].n_sibs);
        }
    }
    /* I1 and I3 and I5 per replica */
    for (size_t i = 0; i < nr; i++) {
        const struct dvv_obj *o = &objs[i];
        const char *who = rep[i] >= 0 ? s->nodes[rep[i]].id : "?";
        uint64_t *el = NULL;
        size_t n_el = elements(o, &el);
        for (size_t h = 0; h < s->n_hist; h++) {
            const struct sim_hist *hh = &s->hist[h];
            if (hh->key != k || !hh->ok) {
                continue;
            }
            if (hh->kind == SIM_OP_APPEND &&
                bsearch(&hh->elem, el, n_el, sizeof(*el), u64_cmp) == NULL) {
                sim__violation(s, SIM_I1_LOST_WRITE,
                               "%s: acknowledged element %" PRIu64
                               " (client %d) missing on %s",
                               key, hh->elem, hh->client, who);
            }
            struct dvv_dot d = {hh->dot_actor, hh->dot_counter};
            if ((hh->kind == SIM_OP_SET || hh->kind == SIM_OP_BIG) &&
                d.counter && !dvv_covers(o, d) && !superseded(s, hh)) {
                sim__violation(s, SIM_I1_LOST_WRITE,
                               "%s: acknowledged SET %" PRIu64
                               " neither present nor covered on %s",
                               key, hh->elem, who);
            }
            if (hh->kind == SIM_OP_DEL && hh->ctx.len) {
                struct dvv_obj tomb;
                dvv_init(&tomb);
                if (dvv_decode(&tomb, hh->ctx.base, hh->ctx.len) == RK_OK) {
                    for (size_t x = 0; x < o->n_sibs; x++) {
                        if (!o->sibs[x].tombstone &&
                            dvv_covers(&tomb, o->sibs[x].dot)) {
                            sim__violation(
                                s, SIM_I5_RESURRECTION,
                                "%s: value %.*s (dot %016" PRIx64 ":%" PRIu64
                                ") covered by the DEL of client %d (invoked "
                                "%" PRIu64 " ms, acknowledged %" PRIu64
                                " ms) is live on %s",
                                key, (int)o->sibs[x].vlen, dvv_value(o, x),
                                o->sibs[x].dot.actor, o->sibs[x].dot.counter,
                                hh->client, hh->invoked_at, hh->done_at, who);
                        }
                    }
                }
                dvv_fini(&tomb);
            }
        }
        for (size_t e = 0; k < SIM_KEYS_SET && e < n_el; e++) {
            bool tried = false;
            for (size_t h = 0; h < s->n_hist && !tried; h++) {
                tried = s->hist[h].kind == SIM_OP_APPEND &&
                        s->hist[h].key == k && s->hist[h].elem == el[e];
            }
            if (!tried) {
                sim__violation(s, SIM_I1_LOST_WRITE,
                               "%s: unexpected element %" PRIu64 " on %s", key,
                               el[e], who);
            }
        }
        rk_free(el);
        /* I3: a client's consecutive acknowledged appends */
        bool strict = !s->cfg.sloppy && s->cfg.r + s->cfg.w > s->cfg.n;
        for (size_t h = 0; strict && h < s->n_hist; h++) {
            const struct sim_hist *a = &s->hist[h];
            if (a->key != k || !a->ok || a->kind != SIM_OP_APPEND) {
                continue;
            }
            for (size_t g = h + 1; g < s->n_hist; g++) {
                const struct sim_hist *b = &s->hist[g];
                if (b->client != a->client || b->key != k) {
                    continue;
                }
                bool da = false, db = false;
                for (size_t x = 0; x < o->n_sibs; x++) {
                    da = da || (o->sibs[x].dot.actor == a->dot_actor &&
                                o->sibs[x].dot.counter == a->dot_counter);
                    db = db || (o->sibs[x].dot.actor == b->dot_actor &&
                                o->sibs[x].dot.counter == b->dot_counter);
                }
                if (b->ok && b->kind == SIM_OP_APPEND && da && db) {
                    sim__violation(s, SIM_I3_FALSE_SIBLING,
                                   "%s: client %d's appends %" PRIu64
                                   " and %" PRIu64 " are siblings on %s",
                                   key, a->client, a->elem, b->elem, who);
                }
                break; /* the next op of that client on that key */
            }
        }
    }
    /* I7: the merge does not depend on order or repetition */
    if (nr >= 2) {
        struct dvv_obj fwd, rev;
        dvv_init(&fwd);
        dvv_init(&rev);
        for (size_t i = 0; i < nr; i++) {
            (void)dvv_merge_into(&fwd, &objs[i]);
            (void)dvv_merge_into(&rev, &objs[nr - 1 - i]);
            (void)dvv_merge_into(&rev, &objs[nr - 1 - i]);
        }
        struct rk_buf a, b;
        rk_buf_init(&a);
        rk_buf_init(&b);
        (void)dvv_encode(&fwd, &a);
        (void)dvv_encode(&rev, &b);
        if (a.len != b.len || memcmp(a.base, b.base, a.len) != 0) {
            sim__violation(s, SIM_I7_ORDER, "%s: merge order matters", key);
        }
        rk_buf_fini(&a);
        rk_buf_fini(&b);
        dvv_fini(&fwd);
        dvv_fini(&rev);
    }
    for (size_t i = 0; i < nr; i++) {
        dvv_fini(&objs[i]);
        rk_buf_fini(&enc[i]);
    }
}

/*
 * I15: every replica of counter key k reads (counter_resolve) a value
 * between the sum of the acknowledged increments plus the negative ones
 * whose outcome is unknown, and that sum plus the positive unknown ones
 * (an increment that failed or timed out may or may not have been
 * applied; one refused before it was sent was not).
 */
static void check_counter(struct sim *s, int k)
{
    char key[8];
    sim__key(k, key);
    int64_t lo = 0, hi = 0, sum = 0;
    uint64_t acked = 0;
    for (size_t h = 0; h < s->n_hist; h++) {
        const struct sim_hist *hh = &s->hist[h];
        if (hh->key != k || hh->kind != SIM_OP_INCR) {
            continue;
        }
        int64_t d = (int64_t)hh->elem;
        if (hh->ok) {
            lo += d;
            hi += d;
            sum += d;
            acked++;
        } else if (hh->unknown) {
            lo += d < 0 ? d : 0;
            hi += d > 0 ? d : 0;
        }
    }
    int rep[ROUTE_MAX_TARGETS];
    size_t nr = replicas_of(s, key, rep);
    for (size_t i = 0; i < nr; i++) {
        if (rep[i] < 0) {
            continue;
        }
        struct dvv_obj o;
        struct counter st;
        struct counter_view v;
        dvv_init(&o);
        counter_init(&st);
        int rc = replica_read(s->nodes[rep[i]].data, key, strlen(key), &o);
        __int128 got = 0;
        bool ok = rc == RK_ENOTFOUND;
        if (rc == RK_OK && counter_resolve(&o, 0, &st, &v) == RK_OK) {
            ok = true;
            if (v.kind == COUNTER_VIEW_VALUE && v.numeric) {
                got = v.sum;
            } else if (v.kind == COUNTER_VIEW_PLAIN) {
                size_t pl;
                int64_t x = 0;
                const char *pv = dvv_payload(&o, v.idx, &pl);
                ok = counter_parse_i64(pv, pl, &x);
                got = x;
            } else if (v.kind != COUNTER_VIEW_DEAD) {
                ok = false;
            }
        }
        if (!ok || got < lo || got > hi) {
            char num[48];
            counter_format(got, num);
            sim__violation(s, SIM_I15_COUNTER,
                           "%s on %s reads %s; %" PRIu64
                           " acknowledged increments sum to %" PRId64
                           " (%" PRId64 "..%" PRId64
                           " with those of unknown outcome)",
                           key, s->nodes[rep[i]].id, ok ? num : "no number",
                           acked, sum, lo, hi);
        }
        counter_fini(&st);
        dvv_fini(&o);
    }
}

void sim__count_converged(struct sim *s)
{
    for (int k = 0; k < sim__n_keys(s); k++) {
        char key[8];
        sim__key(k, key);
        int rep[ROUTE_MAX_TARGETS];
        size_t nr = replicas_of(s, key, rep);
        struct rk_buf first, enc;
        rk_buf_init(&first);
        rk_buf_init(&enc);
        bool same = true;
        for (size_t i = 0; i < nr && rep[i] >= 0; i++) {
            struct dvv_obj o;
            dvv_init(&o);
            (void)replica_read(s->nodes[rep[i]].data, key, strlen(key), &o);
            rk_buf_clear(i ? &enc : &first);
            (void)dvv_encode(&o, i ? &enc : &first);
            dvv_fini(&o);
            same = same &&
                   (i == 0 || (enc.len == first.len &&
                               memcmp(enc.base, first.base, first.len) == 0));
        }
        s->res->keys++;
        s->res->keys_converged_by_heal += same;
        rk_buf_fini(&first);
        rk_buf_fini(&enc);
    }
}

void sim__check(struct sim *s)
{
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        if (s->nodes[i].node == NULL) {
            sim__violation(s, SIM_I6_RING, "%s is down after heal",
                           s->nodes[i].id);
            return;
        }
    }
    sim__check_ring(s); /* I6, I10, hints (sim_members.c) */
    if (sim__final_ring(s) == NULL) {
        return; /* no member left to check keys against */
    }
    for (int k = 0; k < sim__n_keys(s); k++) {
        check_key(s, k);
    }
    for (int k = SIM_KEYS_SET + SIM_KEYS_REG;
         k < sim__n_keys(s) && k < SIM_KEYS_ALL; k++) {
        check_chunks(s, k);
    }
    for (int k = SIM_KEYS_ALL; s->cfg.counters && k < sim__n_keys(s); k++) {
        check_counter(s, k);
    }
    if (s->cfg.aae) {
        sim__check_aae(s);
    }
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        const struct node_stats *st = node_stats(s->nodes[i].node);
        s->res->chunk_manifests_dropped += st->chunk_gc_queued;
        s->res->chunk_blocks_deleted += st->chunk_blocks_deleted;
        s->res->chunk_blocks_failed += st->chunk_blocks_failed;
        s->res->chunk_gc_deferred += st->chunk_gc_deferred;
        s->res->handoff_keys_in += st->handoff_keys_in;
        s->res->handoff_throttled += st->handoff_throttled;
        s->res->handoff_resumed += st->handoff_resumed;
        s->res->handoff_verified += st->handoff_verified;
        s->res->handoff_verify_keys += st->handoff_verify_keys;
        s->res->handoff_verify_folds += st->handoff_verify_folds;
        s->res->chunk_manifests_kept += st->chunk_manifests_kept;
    }
}

/* ---- I11: anti-entropy trees ---------------------------------------------
 */

/* Node index of member id, or -1. */
static int node_of(struct sim *s, const char *id)
{
    for (size_t j = 0; j < s->cfg.n_nodes; j++) {
        if (strcmp(s->nodes[j].id, id) == 0) {
            return (int)j;
        }
    }
    return -1;
}

/* The first current replicas of partition p whose roots differ (*a, *b:
 * node indexes), or a replica without a built tree (*b = -1).  false when
 * every replica's root is the same. */
static bool roots_differ(struct sim *s, uint32_t p, int *a, int *b)
{
    const struct ring *r = sim__final_ring(s);
    const char *ids[RING_MAX_N];
    size_t cnt = ring_preflist_ids(r, p, ids);
    uint64_t first = 0;
    int fi = -1;
    for (size_t i = 0; i < cnt; i++) {
        int j = node_of(s, ids[i]);
        uint64_t root = 0;
        if (j < 0 || s->nodes[j].node == NULL ||
            !node_aae_root(s->nodes[j].node, p, &root)) {
            *a = j;
            *b = -1;
            return true;
        }
        if (fi < 0) {
            fi = j;
            first = root;
        } else if (root != first) {
            *a = fi;
            *b = j;
            return true;
        }
    }
    return false;
}

bool sim__aae_settled(struct sim *s)
{
    const struct ring *r = sim__final_ring(s);
    if (r == NULL) {
        return true;
    }
    for (uint32_t p = 0; p < ring_size(r); p++) {
        int a, b;
        if (roots_differ(s, p, &a, &b)) {
            return false;
        }
    }
    return true;
}

struct root_ctx
{
    const struct ring *r;
    uint64_t *roots; /* per partition */
};

static bool root_cb(void *data,
                    const void *key,
                    size_t klen,
                    const void *val,
                    size_t vlen,
                    const struct engine_meta *meta)
{
    (void)meta;
    struct root_ctx *c = data;
    c->roots[ring_partition_of_key(c->r, key, klen)] ^=
        aae_entry_hash(key, klen, XXH3_64bits(val ? val : "", vlen));
    return true;
}

/* I11 for node i: its trees' roots against its data engine's records. */
static void check_tree_roots(struct sim *s, size_t i)
{
    const struct ring *r = sim__final_ring(s);
    uint32_t q = ring_size(r);
    uint64_t *roots = rk_calloc(q, sizeof(*roots));
    if (roots == NULL) {
        return;
    }
    struct root_ctx c = {.r = r, .roots = roots};
    uint64_t cur = ENGINE_FOLD_START, next = 0;
    int rc = RK_OK;
    do {
        rc = engine_fold_slots_values(s->nodes[i].data, 0, SLOT_COUNT - 1, cur,
                                      1024, root_cb, &c, &next);
        cur = next;
    } while (rc == RK_OK && cur != ENGINE_FOLD_DONE);
    for (uint32_t p = 0; rc == RK_OK && p < q; p++) {
        uint64_t root = 0;
        if (!node_aae_root(s->nodes[i].node, p, &root)) {
            sim__violation(s, SIM_I11_AAE_ROOTS,
                           "%s: tree of partition %" PRIu32 " not built",
                           s->nodes[i].id, p);
        } else if (root != roots[p]) {
            sim__violation(s, SIM_I11_AAE_ROOTS,
                           "%s: tree of partition %" PRIu32
                           " is not its data (root %016" PRIx64
                           ", data %016" PRIx64 ")",
                           s->nodes[i].id, p, root, roots[p]);
        }
    }
    rk_free(roots);
}

void sim__check_aae(struct sim *s)
{
    const struct ring *r = sim__final_ring(s);
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        const struct node_stats *st = node_stats(s->nodes[i].node);
        s->res->aae_exchanges += st->aae_exchanges;
        s->res->aae_keys_repaired += st->aae_keys_repaired;
        if (membership_ring(node_membership(s->nodes[i].node)) != NULL &&
            node_is_multi(s->nodes[i].node)) {
            check_tree_roots(s, i);
        }
    }
    for (uint32_t p = 0; p < ring_size(r); p++) {
        int a, b;
        if (!roots_differ(s, p, &a, &b)) {
            continue;
        }
        if (b < 0) {
            sim__violation(s, SIM_I11_AAE_ROOTS,
                           "partition %" PRIu32 ": replica %s has no tree", p,
                           a >= 0 ? s->nodes[a].id : "?");
        } else {
            sim__violation(s, SIM_I11_AAE_ROOTS,
                           "partition %" PRIu32
                           ": roots differ between %s and %s after heal",
                           p, s->nodes[a].id, s->nodes[b].id);
        }
    }
}

/* ---- I14: a received partition holds what was acknowledged before ------ */

void sim__on_handoff_log(struct sim *s,
                         int i,
                         const char *event,
                         const char *text)
{
    bool start = strcmp(event, "handoff_start") == 0;
    unsigned p = 0;
    if ((!start && strcmp(event, "handoff_done") != 0) ||
        sscanf(text, "partition=%u", &p) != 1 || p >= RING_MAX_SIZE) {
        return;
    }
    struct sim_node *sn = &s->nodes[i];
    if (start) {
        sn->ho_started[p] = sim_now(s);
        return;
    }
    uint64_t since = sn->ho_started[p];
    const struct ring *r =
        sn->node ? membership_ring(node_membership(sn->node)) : NULL;
    if (since == UINT64_MAX || s->cfg.sloppy || r == NULL) {
        return;
    }
    for (int k = 0; k < SIM_KEYS_SET; k++) {
        char key[8];
        sim__key(k, key);
        if (ring_partition_of_key(r, key, strlen(key)) != p) {
            continue;
        }
        struct dvv_obj o;
        dvv_init(&o);
        uint64_t *el = NULL;
        size_t n_el = 0;
        if (replica_read(sn->data, key, strlen(key), &o) == RK_OK) {
            n_el = elements(&o, &el);
        }
        for (size_t h = 0; h < s->n_hist; h++) {
            const struct sim_hist *hh = &s->hist[h];
            if (hh->key == k && hh->ok && hh->kind == SIM_OP_APPEND &&
                hh->done_at < since &&
                bsearch(&hh->elem, el, n_el, sizeof(*el), u64_cmp) == NULL) {
                sim__violation(s, SIM_I14_HANDOFF_GAP,
                               "%s received partition %u without %s's "
                               "element %" PRIu64 " (acknowledged at %" PRIu64
                               " ms, transfer started at %" PRIu64 " ms)",
                               sn->id, p, key, hh->elem, hh->done_at, since);
            }
        }
        rk_free(el);
        dvv_fini(&o);
    }
}
