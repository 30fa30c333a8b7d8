/*
 * node_aae.c - active anti-entropy of the node (issue 14 item 4;
 * docs/cluster.md "Active anti-entropy").
 *
 * Trees.  Once the node is in a cluster it keeps one hash tree (aae.h,
 * Tictac-style after Riak KV's tictacaae) per partition of the ring, over
 * every key of that partition in its data engine, whatever it replicates
 * (a partition it does not replicate is dropped by handoff, which updates
 * the tree like any delete; only partitions it replicates are exchanged).
 * An entry is aae_entry_hash(key, XXH3-64 of the stored record's value
 * bytes: the object's canonical dvv encoding).  A tree has
 * node__aae_leaves(Q) leaves; a key's leaf comes from its hash slot
 * (contiguous per partition) and, when a partition has fewer slots than
 * leaves, the low bits of XXH3 of the key, so the keys of one leaf are
 * listed by folding one slot (or a few) with the engine's slot index
 * (engine_fold_slots_values).
 *
 * Kept on every write: replica.c calls replica_cfg.stored after each
 * record it writes (client writes, replica applies, hint delivery, read
 * repair, handoff merges all go through it) with the hashes before and
 * after; the tombstone reaper and handoff's drop scan call
 * node__aae_deleted.  Objects never expire inside the engine (replica.h:
 * expired objects stay until reaping), so expiry changes no record.
 *
 * Built at start, and again after the engine recovered in place
 * (engine_recoveries changed: a recovery may drop records; trees are not
 * persisted, so every start is treated as unclean), by folding the data
 * engine partition by partition, one whole slot at a time, at most
 * NODE_AAE_BUILD_KEYS_PER_S keys per second (the I/O budget).  A partition
 * being built holds the slots below next_slot; a write to a key of a slot not
 * folded yet is left to the fold (it will see the record), so the tree is exact
 * once built.  Until a partition's tree is built it takes part in no exchange
 * (RK_EAGAIN to an asker).
 *
 * Exchange (initiator), every aae_exchange_interval_ms while fewer than
 * aae_concurrency exchanges run, no ownership transition is in progress
 * (skipped for simplicity: handoff moves the data then) and the repair
 * queue is short: the partition this node is a current replica of that
 * it compared least recently (as initiator or responder; pick()), with the
 * next other current replica of it that is up:
 *
 *   IDLE --start_exchange--> BRANCHES: AAE_TREE(level branch) sent
 *   BRANCHES --on_tree_reply: roots equal--> done (in sync)
 *   BRANCHES --on_tree_reply: roots differ--> LEAVES: AAE_TREE(level leaf,
 *            the differing branches) sent
 *   LEAVES --on_tree_reply--> KEYS: AAE_KEYS(the differing leaves) sent
 *            (none differ: done)
 *   KEYS --on_keys_reply--> done: every key whose hash differs, or that
 *            one side lacks, is queued for repair
 *   any --error reply, NODE_AAE_TIMEOUT_MS--> done (failed)
 *
 * Repair goes through the normal merge: a coordinated read of the key
 * from all its current replicas with read repair (coord.h: every stale
 * replica gets KV_PUT of the merge, self included), at most
 * aae_repair_rate keys per second and NODE_AAE_REPAIR_SLOTS at once.
 *
 * Responder: AAE_TREE / AAE_KEYS from a node that is, like this one, a
 * current replica of the partition are answered from the tree and the
 * engine; anything else (non-member, not a replica, another tree size,
 * ids out of range) is refused with RK_EINVAL and a rate-limited log line,
 * and changes nothing.
 *
 * Invariants:
 *   A1 a built tree equals the XOR of the entries of the partition's
 *      records in the data engine (every write path calls the hook; the
 *      build folds whole slots atomically w.r.t. writes);
 *   A2 an exchange compares only built trees of the same size;
 *   A3 repairs only merge (read repair of coord.c): AAE never overwrites
 *      or deletes a key.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/node_internal.h"
#include "cluster/slot.h"
#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"

uint32_t node__aae_leaves(uint32_t q)
{
    uint32_t l = q ? 65536u / q : NODE_AAE_LEAVES_MAX;
    if (l > NODE_AAE_LEAVES_MAX) {
        l = NODE_AAE_LEAVES_MAX;
    }
    return l < AAE_FANOUT ? AAE_FANOUT : l;
}

/* Slots per partition (a power of two). */
static uint32_t spp(const struct node__aae *a)
{
    return SLOT_COUNT / a->q;
}

static uint32_t leaf_of(const struct node__aae *a,
                        uint32_t slot,
                        const void *key,
                        size_t klen)
{
    uint32_t s = spp(a), off = slot & (s - 1);
    if (a->n_leaves >= s) {
        uint32_t sub = a->n_leaves / s;
        return off * sub + (uint32_t)(XXH3_64bits(key, klen) & (sub - 1));
    }
    return off / (s / a->n_leaves);
}

uint32_t node__aae_leaf_of_key(const struct node *n,
                               const void *key,
                               size_t klen)
{
    return leaf_of(&n->aae, slot_of_key(key, klen), key, klen);
}

/* The slots [*first, *last] holding the keys of leaf `leaf` of p. */
static void leaf_slots(const struct node__aae *a,
                       uint32_t p,
                       uint32_t leaf,
                       uint32_t *first,
                       uint32_t *last)
{
    uint32_t s = spp(a), base = p * s;
    if (a->n_leaves >= s) {
        *first = *last = base + leaf / (a->n_leaves / s);
    } else {
        uint32_t per = s / a->n_leaves;
        *first = base + leaf * per;
        *last = *first + per - 1;
    }
}

static void trees_free(struct node__aae *a)
{
    for (uint32_t i = 0; a->p && i < a->q; i++) {
        aae_tree_fini(&a->p[i].t);
    }
    rk_free(a->p);
    a->p = NULL;
    a->q = 0;
    a->build_part = 0;
    /* exchanges in flight compared trees that are gone: late replies are
     * ignored (no exchange has their req_id) */
    memset(a->x, 0, sizeof(a->x));
}

void node__aae_fini(struct node *n)
{
    trees_free(&n->aae);
    rk_buf_fini(&n->aae.repairq);
    rk_buf_fini(&n->aae.items);
    rk_buf_fini(&n->aae.mine);
    memset(&n->aae, 0, sizeof(n->aae));
}

/* Where this node's round over the partitions starts: spread by its rank
 * among the members (sorted by id), so that the nodes of a cluster that
 * start together do not compare the same partitions in step. */
static uint32_t start_at(const struct node *n, uint32_t q)
{
    size_t cnt = membership_member_count(n->mem), rank = 0;
    for (size_t i = 0; i < cnt; i++) {
        struct membership_member mm;
        membership_member_get(n->mem, i, &mm);
        if (strcmp(mm.node_id, n->id) < 0) {
            rank++;
        }
    }
    return cnt ? (uint32_t)(((uint64_t)rank * q) / cnt) % q : 0;
}

static int trees_alloc(struct node *n, uint32_t q)
{
    struct node__aae *a = &n->aae;
    trees_free(a);
    a->p = rk_calloc(q, sizeof(*a->p));
    if (a->p == NULL) {
        return RK_ENOMEM;
    }
    a->q = q;
    a->n_leaves = node__aae_leaves(q);
    for (uint32_t i = 0; i < q; i++) {
        if (aae_tree_init(&a->p[i].t, a->n_leaves) != RK_OK) {
            trees_free(a);
            return RK_ENOMEM;
        }
        a->p[i].next_slot = i * (SLOT_COUNT / q);
    }
    a->next_part = start_at(n, q);
    return RK_OK;
}

/* ---- keeping the trees -------------------------------------------------- */

static void tree_apply(struct node *n,
                       const void *key,
                       size_t klen,
                       uint64_t old_hash,
                       uint64_t new_hash)
{
    struct node__aae *a = &n->aae;
    if (a->p == NULL || klen == 0) {
        return;
    }
    uint32_t slot = slot_of_key(key, klen);
    struct node__aae_part *pt = &a->p[slot / spp(a)];
    if (!pt->built && slot >= pt->next_slot) {
        return; /* the build's fold will see the record */
    }
    aae_tree_update(&pt->t, leaf_of(a, slot, key, klen), key, klen, old_hash,
                    new_hash);
}

void node__aae_stored(void *data,
                      struct engine *e,
                      const void *key,
                      size_t klen,
                      uint64_t old_hash,
                      uint64_t new_hash)
{
    struct node *n = data;
    if (e == n->data) {
        tree_apply(n, key, klen, old_hash, new_hash);
    }
}

uint64_t node__aae_record_hash(struct node *n, const void *key, size_t klen)
{
    if (n->aae.p == NULL) {
        return 0;
    }
    struct engine_meta m;
    uint64_t h = 0;
    rk_buf_clear(&n->aae.mine);
    if (engine_get(n->data, key, klen, &n->aae.mine, &m) == RK_OK) {
        h = XXH3_64bits(n->aae.mine.base ? n->aae.mine.base : "",
                        n->aae.mine.len);
    }
    rk_buf_clear(&n->aae.mine);
    return h;
}

void node__aae_deleted(struct node *n,
                       const void *key,
                       size_t klen,
                       uint64_t old_hash)
{
    tree_apply(n, key, klen, old_hash, 0);
}

struct build_ctx
{
    struct node__aae *a;
    struct aae_tree *t;
    size_t keys;
};

static bool build_cb(void *data,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen,
                     const struct engine_meta *meta)
{
    (void)meta;
    struct build_ctx *c = data;
    uint32_t slot = slot_of_key(key, klen);
    aae_tree_update(c->t, leaf_of(c->a, slot, key, klen), key, klen, 0,
                    XXH3_64bits(val ? val : "", vlen));
    c->keys++;
    return true;
}

/* Folds one whole slot into p's tree (RK_OK, or the engine's error). */
static int build_slot(struct node *n, struct node__aae_part *pt, size_t *keys)
{
    struct build_ctx c = {.a = &n->aae, .t = &pt->t};
    uint64_t cur = ENGINE_FOLD_START, next = 0;
    int rc = RK_OK;
    do {
        rc = engine_fold_slots_values(n->data, pt->next_slot, pt->next_slot,
                                      cur, 256, build_cb, &c, &next);
        cur = next;
    } while (rc == RK_OK && cur != ENGINE_FOLD_DONE);
    *keys += c.keys;
    return rc;
}

/* Builds trees within the I/O budget (keys per second since last call). */
static void build_step(struct node *n, uint64_t now)
{
    struct node__aae *a = &n->aae;
    if (a->build_part >= a->q) {
        return;
    }
    uint64_t el = now > a->build_at_ms ? now - a->build_at_ms : 0;
    a->build_at_ms = now;
    size_t budget = (size_t)(el * NODE_AAE_BUILD_KEYS_PER_S / 1000);
    budget = budget < 64 ? 64 : budget;
    budget =
        budget > NODE_AAE_BUILD_KEYS_PER_S ? NODE_AAE_BUILD_KEYS_PER_S : budget;
    size_t keys = 0;
    while (keys < budget && a->build_part < a->q) {
        uint32_t p = a->build_part;
        struct node__aae_part *pt = &a->p[p];
        uint32_t last = (p + 1) * spp(a) - 1;
        if (pt->built) {
            a->build_part++;
            continue;
        }
        int rc = build_slot(n, pt, &keys);
        if (rc != RK_OK) {
            /* start this partition over later (its partial slot is in) */
            aae_tree_clear(&pt->t);
            pt->next_slot = p * spp(a);
            node__log(n, RK_LOG_WARN, "aae_build_failed",
                      "partition=%" PRIu32 " error=%s", p, rk_errname(rc));
            return;
        }
        if (pt->next_slot == last) {
            pt->built = true;
            n->st.aae_trees_built++;
            a->build_part++;
        } else {
            pt->next_slot++;
        }
    }
}

/* ---- helpers ------------------------------------------------------------- */

/* Whether both `a` and `b` (ids) are current replicas of p. */
static bool both_replicate(const struct node *n,
                           uint32_t p,
                           const char *a,
                           const char *b)
{
    const struct ring *r = membership_ring(n->mem);
    const char *ids[RING_MAX_N];
    size_t cnt = r && p < ring_size(r) ? ring_preflist_ids(r, p, ids) : 0;
    bool ha = false, hb = false;
    for (size_t i = 0; i < cnt; i++) {
        ha = ha || strcmp(ids[i], a) == 0;
        hb = hb || strcmp(ids[i], b) == 0;
    }
    return ha && hb;
}

/* Whether this node can take part in exchanges now (trees for the
 * current ring, no transition). */
static bool usable(const struct node *n)
{
    const struct ring *r = membership_ring(n->mem);
    return n->set.aae_enabled && n->aae.p && r && ring_size(r) == n->aae.q &&
           membership_next_ring(n->mem) == NULL;
}

static void refused(struct node *n,
                    const char *from,
                    uint32_t p,
                    const char *why)
{
    uint64_t now = rk_env_mono_ms(n->env);
    n->st.aae_refused++;
    if (now >= n->aae.refused_logged_ms + 10000 ||
        n->aae.refused_logged_ms == 0) {
        n->aae.refused_logged_ms = now ? now : 1; /* rate-limited */
        node__log(n, RK_LOG_WARN, "aae_refused",
                  "peer=%s partition=%" PRIu32 " reason=\"%s\"", from, p, why);
    }
}

/* The status to answer an AAE request for p of n_leaves from `from` with:
 * RK_OK, RK_EAGAIN (not now) or RK_EINVAL (refused, logged). */
static int check_request(struct node *n,
                         const char *from,
                         uint32_t p,
                         uint32_t n_leaves)
{
    const struct ring *r = membership_ring(n->mem);
    bool trees =
        n->set.aae_enabled && n->aae.p && r && ring_size(r) == n->aae.q;
    /* during a transition only a pending owner's verify step
     * (node_handoff_verify.c) compares; exchanges wait */
    bool verify = trees && p < n->aae.q && node__verify_asker_ok(n, p, from);
    if (!trees && (!n->set.aae_enabled || n->aae.unsupported) && r &&
        p < ring_size(r) && node__verify_asker_ok(n, p, from)) {
        return RK_EVERSION; /* no tree here will come: the verifier folds
                               this node's copy at once */
    }
    if (!trees || (!verify && membership_next_ring(n->mem) != NULL)) {
        return RK_EAGAIN;
    }
    if (!verify && (p >= n->aae.q || !both_replicate(n, p, from, n->id) ||
                    strcmp(from, n->id) == 0)) {
        refused(n, from, p,
                "the asker and this node are not both current replicas of "
                "the partition");
        return RK_EINVAL;
    }
    if (n_leaves != n->aae.n_leaves) {
        refused(n, from, p, "the asker's tree has another size");
        return RK_EINVAL;
    }
    return n->aae.p[p].built ? RK_OK : RK_EAGAIN;
}

/* ---- responder ----------------------------------------------------------- */

void node__aae_on_tree(struct node *n,
                       const char *from,
                       const struct peer_aae_tree *q,
                       uint64_t now_ms)
{
    struct peer_msg rep = {.type = PEER_AAE_TREE_REPLY};
    rep.aae_tree_reply.req_id = q->req_id;
    int rc = check_request(n, from, q->partition, q->n_leaves);
    const struct aae_tree *t = rc == RK_OK ? &n->aae.p[q->partition].t : NULL;
    struct rk_buf *out = &n->aae.items;
    rk_buf_clear(out);
    size_t cnt = q->ids.len / 4;
    for (size_t i = 0; rc == RK_OK && i < cnt; i++) {
        if (rk_get_le32((const unsigned char *)q->ids.ptr + 4 * i) >=
            t->n_branches) {
            refused(n, from, q->partition, "a branch index out of range");
            rc = RK_EINVAL;
        }
    }
    if (rc == RK_OK && q->level == PEER_AAE_LEVEL_BRANCH) {
        for (uint32_t b = 0; rc == RK_OK && b < t->n_branches; b++) {
            unsigned char h[8];
            rk_put_le64(h, t->branch[b]);
            rc = rk_buf_append(out, h, 8);
        }
    } else if (rc == RK_OK) {
        for (size_t i = 0; rc == RK_OK && i < cnt; i++) {
            uint32_t b = rk_get_le32((const unsigned char *)q->ids.ptr + 4 * i);
            for (uint32_t j = 0; rc == RK_OK && j < AAE_FANOUT; j++) {
                unsigned char h[8];
                rk_put_le64(h, t->leaf[b * AAE_FANOUT + j]);
                rc = rk_buf_append(out, h, 8);
            }
        }
    }
    rep.aae_tree_reply.status = rc;
    if (rc == RK_OK) {
        if (q->level == PEER_AAE_LEVEL_BRANCH) {
            /* a peer compares this partition with this node now: pick()
             * takes the partitions nobody compared here lately first */
            n->aae.p[q->partition].touched_ms = now_ms;
            n->aae.p[q->partition].answered_ms = now_ms;
        }
        rep.aae_tree_reply.root = t->root;
        rep.aae_tree_reply.hashes = (struct peer_bytes){out->base, out->len};
    }
    node__send(n, from, NULL, 0, 0, &rep);
}

struct list_ctx
{
    const struct node__aae *a;
    uint32_t leaf;
    struct rk_buf *out;
    size_t max_bytes;
    uint32_t count;
    bool full, oom;
};

static bool list_cb(void *data,
                    const void *key,
                    size_t klen,
                    const void *val,
                    size_t vlen,
                    const struct engine_meta *meta)
{
    (void)meta;
    struct list_ctx *c = data;
    if (leaf_of(c->a, slot_of_key(key, klen), key, klen) != c->leaf) {
        return true;
    }
    if (c->out->len + klen + 12 > c->max_bytes) {
        c->full = true;
        return false;
    }
    unsigned char l[4], h[8];
    rk_put_le32(l, (uint32_t)klen);
    rk_put_le64(h, XXH3_64bits(val ? val : "", vlen));
    if (rk_buf_append(c->out, l, 4) != RK_OK ||
        rk_buf_append(c->out, key, klen) != RK_OK ||
        rk_buf_append(c->out, h, 8) != RK_OK) {
        c->oom = true;
        return false;
    }
    c->count++;
    return true;
}

/* RK_OK, RK_ENOMEM or the engine's error (node_internal.h). */
int node__aae_list_leaves(struct node *n,
                          uint32_t p,
                          const struct peer_bytes *leaves,
                          struct rk_buf *out,
                          size_t max_bytes,
                          uint32_t *count,
                          bool *truncated)
{
    struct list_ctx c = {.a = &n->aae, .out = out, .max_bytes = max_bytes};
    rk_buf_clear(out);
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && !c.full && i < leaves->len / 4; i++) {
        c.leaf = rk_get_le32((const unsigned char *)leaves->ptr + 4 * i);
        uint32_t first, last;
        leaf_slots(&n->aae, p, c.leaf, &first, &last);
        uint64_t cur = ENGINE_FOLD_START, next = 0;
        do {
            rc = engine_fold_slots_values(n->data, first, last, cur, 256,
                                          list_cb, &c, &next);
            cur = next;
        } while (rc == RK_OK && !c.full && !c.oom && cur != ENGINE_FOLD_DONE);
        if (rc == RK_OK && c.oom) {
            rc = RK_ENOMEM;
        }
    }
    *count = c.count;
    *truncated = c.full;
    return rc;
}

void node__aae_on_keys(struct node *n,
                       const char *from,
                       const struct peer_aae_keys *q)
{
    struct peer_msg rep = {.type = PEER_AAE_KEYS_REPLY};
    rep.aae_keys_reply.req_id = q->req_id;
    int rc = check_request(n, from, q->partition, q->n_leaves);
    for (size_t i = 0; rc == RK_OK && i < q->leaves.len / 4; i++) {
        if (rk_get_le32((const unsigned char *)q->leaves.ptr + 4 * i) >=
            n->aae.n_leaves) {
            refused(n, from, q->partition, "a leaf index out of range");
            rc = RK_EINVAL;
        }
    }
    uint32_t count = 0;
    bool trunc = false;
    if (rc == RK_OK) {
        rc = node__aae_list_leaves(n, q->partition, &q->leaves, &n->aae.items,
                                   NODE_AAE_KEYS_MAX_BYTES, &count, &trunc);
    }
    rep.aae_keys_reply.status = rc;
    if (rc == RK_OK) {
        rep.aae_keys_reply.count = count;
        rep.aae_keys_reply.flags = trunc ? PEER_AAE_KEYS_TRUNCATED : 0;
        rep.aae_keys_reply.items =
            (struct peer_bytes){n->aae.items.base, n->aae.items.len};
    }
    node__send(n, from, NULL, 0, 0, &rep);
}

/* ---- initiator ----------------------------------------------------------- */

/* Ends exchange x: ok (counted, the partition's last exchange time set),
 * failed (counted), or neither (the peer said not now: RK_EAGAIN). */
static void exch_end(struct node *n, struct node__aae_exch *x, bool ok)
{
    if (x->again) {
        x->again = false;
    } else if (ok) {
        n->st.aae_exchanges++;
        if (n->aae.p && x->partition < n->aae.q) {
            n->aae.p[x->partition].last_exchange_ms =
                rk_env_mono_ms(n->env) | 1;
        }
    } else {
        n->st.aae_exchange_failures++;
    }
    x->used = false;
    x->req_id = 0;
}

/* The action carries no req_id: a failed send is fed to the coordinator
 * by req_id, whose ids are another space (the step times out instead). */
static void exch_send(struct node *n,
                      struct node__aae_exch *x,
                      const struct peer_msg *m)
{
    node__send(n, x->peer, NULL, 0, 0, m);
}

static void ask_tree(struct node *n,
                     struct node__aae_exch *x,
                     uint32_t level,
                     const uint32_t *ids,
                     size_t cnt,
                     uint64_t now)
{
    unsigned char buf[4 * (NODE_AAE_LEAVES_MAX / AAE_FANOUT)];
    for (size_t i = 0; i < cnt; i++) {
        rk_put_le32(buf + 4 * i, ids[i]);
    }
    x->req_id = ++n->aae.next_req;
    x->deadline_ms = now + NODE_AAE_TIMEOUT_MS;
    struct peer_msg m = {.type = PEER_AAE_TREE};
    m.aae_tree = (struct peer_aae_tree){
        .req_id = x->req_id,
        .partition = x->partition,
        .n_leaves = n->aae.n_leaves,
        .level = level,
        .ids = {(const char *)buf, 4 * cnt},
    };
    if (cnt) {
        memcpy(x->branches, ids, cnt * sizeof(*ids));
    }
    x->n_branches = (uint32_t)cnt;
    exch_send(n, x, &m);
}

/* The other current replicas of partition p that are up (and not degraded),
 * into others[RING_MAX_N]; false when this node is not a current replica of
 * p or no other one is up. */
static bool peers_of(struct node *n, uint32_t p, const char **others, size_t *m)
{
    const char *ids[RING_MAX_N];
    size_t cnt = ring_preflist_ids(membership_ring(n->mem), p, ids);
    bool mine = false;
    *m = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (strcmp(ids[i], n->id) == 0) {
            mine = true;
        } else if (node__is_up_or_self(n, ids[i]) &&
                   !node_peer_is_degraded(n, ids[i])) {
            others[(*m)++] = ids[i];
        }
    }
    return mine && *m > 0;
}

/* Picks the partition to compare next: among those this node replicates
 * (tree built, not being exchanged, another replica up), the one this node
 * has not compared for the longest time, whether it started that exchange
 * or answered a peer's (touched_ms; ties in round-robin order from
 * next_part, which starts at a different place on every node: start_at()),
 * and the next peer replica of it in turn.  So the replicas of a partition
 * do not all compare it at once while others wait (after a restart every
 * node would otherwise walk the partitions in step: 66 s for 1,000
 * divergent keys in all 64 partitions, docs/benchmarks.md). */
static bool pick(struct node *n, uint32_t *part, char *peer)
{
    struct node__aae *a = &n->aae;
    uint32_t best = UINT32_MAX;
    uint64_t best_t = UINT64_MAX;
    for (uint32_t k = 0; k < a->q; k++) {
        uint32_t p = (a->next_part + k) % a->q;
        if (!a->p[p].built || a->p[p].touched_ms >= best_t) {
            continue;
        }
        bool busy = false;
        for (size_t i = 0; i < NODE_AAE_EXCHANGES; i++) {
            busy = busy || (a->x[i].used && a->x[i].partition == p);
        }
        const char *others[RING_MAX_N];
        size_t m = 0;
        if (busy || !peers_of(n, p, others, &m)) {
            continue;
        }
        best = p;
        best_t = a->p[p].touched_ms;
    }
    if (best == UINT32_MAX) {
        return false;
    }
    const char *others[RING_MAX_N];
    size_t m = 0;
    (void)peers_of(n, best, others, &m);
    a->next_part = (best + 1) % a->q;
    *part = best;
    snprintf(peer, CL_ID_MAX + 1, "%s", others[a->next_peer++ % m]);
    return true;
}

/* When the next exchanges may start: the interval after the last start, as
 * the interval is now (so a CONFIG SET that shortens it takes effect at
 * once, not after the old deadline). */
static uint64_t next_exchange_ms(const struct node *n)
{
    return n->aae.last_round_ms + n->set.aae_exchange_interval_ms;
}

static void start_exchanges(struct node *n, uint64_t now)
{
    struct node__aae *a = &n->aae;
    if (now < next_exchange_ms(n) || !usable(n) ||
        a->repairq.len - a->repairq_head > NODE_AAE_QUEUE_LOW) {
        return;
    }
    a->last_round_ms = now;
    /* every interval, as many as the concurrency allows */
    for (;;) {
        size_t running = 0;
        struct node__aae_exch *freex = NULL;
        for (size_t i = 0; i < NODE_AAE_EXCHANGES; i++) {
            running += a->x[i].used;
            if (!a->x[i].used && freex == NULL) {
                freex = &a->x[i];
            }
        }
        uint32_t p = 0;
        if (freex == NULL || running >= n->set.aae_concurrency ||
            !pick(n, &p, freex->peer)) {
            return;
        }
        freex->used = true;
        freex->partition = p;
        a->p[p].touched_ms = now;
        freex->phase = NODE_AAE_BRANCHES;
        n->st.aae_exchanges_started++;
        ask_tree(n, freex, PEER_AAE_LEVEL_BRANCH, NULL, 0, now);
    }
}

static struct node__aae_exch *exch_of(struct node *n,
                                      const char *from,
                                      uint64_t req_id)
{
    for (size_t i = 0; i < NODE_AAE_EXCHANGES; i++) {
        struct node__aae_exch *x = &n->aae.x[i];
        if (x->used && x->req_id == req_id && strcmp(x->peer, from) == 0) {
            return x;
        }
    }
    return NULL;
}

void node__aae_on_tree_reply(struct node *n,
                             const char *from,
                             const struct peer_aae_tree_reply *r,
                             uint64_t now)
{
    if (node__verify_on_tree_reply(n, from, r, now)) {
        return;
    }
    struct node__aae_exch *x = exch_of(n, from, r->req_id);
    if (x == NULL) {
        return; /* late or unknown: ignored */
    }
    if (r->status != RK_OK || !usable(n)) {
        x->again = r->status == RK_EAGAIN;
        exch_end(n, x, false);
        return;
    }
    const struct aae_tree *t = &n->aae.p[x->partition].t;
    const uint64_t *mine;
    size_t want;
    if (x->phase == NODE_AAE_BRANCHES) {
        mine = t->branch;
        want = t->n_branches;
    } else {
        want = (size_t)x->n_branches * AAE_FANOUT;
        mine = NULL;
    }
    if (r->hashes.len != want * 8) {
        refused(n, from, x->partition, "a tree reply of the wrong size");
        exch_end(n, x, false);
        return;
    }
    if (x->phase == NODE_AAE_BRANCHES && r->root == t->root) {
        exch_end(n, x, true); /* in sync */
        return;
    }
    uint64_t theirs[AAE_FANOUT];
    uint32_t diff[NODE_AAE_LEAVES_MAX];
    size_t nd = 0;
    const unsigned char *h = (const unsigned char *)r->hashes.ptr;
    if (x->phase == NODE_AAE_BRANCHES) {
        for (size_t i = 0; i < want; i += AAE_FANOUT) {
            size_t k = want - i < AAE_FANOUT ? want - i : AAE_FANOUT;
            for (size_t j = 0; j < k; j++) {
                theirs[j] = rk_get_le64(h + 8 * (i + j));
            }
            nd +=
                aae_diff(mine + i, theirs, (uint32_t)i, (uint32_t)k, diff + nd);
        }
        if (nd == 0) {
            exch_end(n, x, true);
            return;
        }
        x->phase = NODE_AAE_LEAVES;
        ask_tree(n, x, PEER_AAE_LEVEL_LEAF, diff, nd, now);
        return;
    }
    for (uint32_t i = 0; i < x->n_branches; i++) {
        uint32_t b = x->branches[i];
        for (size_t j = 0; j < AAE_FANOUT; j++) {
            theirs[j] = rk_get_le64(h + 8 * (i * AAE_FANOUT + j));
        }
        nd += aae_diff(t->leaf + (size_t)b * AAE_FANOUT, theirs, b * AAE_FANOUT,
                       AAE_FANOUT, diff + nd);
    }
    if (nd == 0) {
        exch_end(n, x, true);
        return;
    }
    for (size_t i = 0; i < nd; i++) {
        rk_put_le32(x->leaves + 4 * i, diff[i]);
    }
    x->n_leaves = (uint32_t)nd;
    x->phase = NODE_AAE_KEYS;
    x->req_id = ++n->aae.next_req;
    x->deadline_ms = now + NODE_AAE_TIMEOUT_MS;
    struct peer_msg m = {.type = PEER_AAE_KEYS};
    m.aae_keys = (struct peer_aae_keys){
        .req_id = x->req_id,
        .partition = x->partition,
        .n_leaves = n->aae.n_leaves,
        .leaves = {(const char *)x->leaves, 4 * nd},
    };
    exch_send(n, x, &m);
}

int node__aae_item_cmp(const void *pa, const void *pb)
{
    const struct node__aae_item *a = pa, *b = pb;
    size_t l = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, l);
    return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

/* Parses items into an array (returned-owned, rk_free); NULL with *cnt 0
 * when there are none; RK_EPROTO when they are malformed. */
int node__aae_parse_items(const char *p,
                          size_t len,
                          struct node__aae_item **out,
                          size_t *cnt)
{
    size_t cap = len / 12, k = 0;
    struct node__aae_item *v = cap ? rk_malloc(cap * sizeof(*v)) : NULL;
    if (cap && v == NULL) {
        return RK_ENOMEM;
    }
    size_t off = 0;
    while (off < len) {
        if (len - off < 4) {
            break;
        }
        uint32_t kl = rk_get_le32((const unsigned char *)p + off);
        if (kl == 0 || len - off - 4 < (size_t)kl + 8 || k == cap) {
            break;
        }
        v[k].klen = kl;
        v[k].key = p + off + 4;
        v[k].hash = rk_get_le64((const unsigned char *)p + off + 4 + kl);
        off += 12 + (size_t)kl;
        k++;
    }
    if (off != len) {
        rk_free(v);
        return RK_EPROTO;
    }
    if (k > 1) {
        qsort(v, k, sizeof(*v), node__aae_item_cmp);
    }
    *out = v;
    *cnt = k;
    return RK_OK;
}

static void queue_repair(struct node *n, const struct node__aae_item *it)
{
    struct node__aae *a = &n->aae;
    if (a->repairq.len - a->repairq_head >= NODE_AAE_QUEUE_MAX) {
        return; /* the next exchange finds it again */
    }
    unsigned char l[4];
    rk_put_le32(l, it->klen);
    if (rk_buf_append(&a->repairq, l, 4) == RK_OK &&
        rk_buf_append(&a->repairq, it->key, it->klen) == RK_OK) {
        n->st.aae_keys_differing++;
    }
}

void node__aae_on_keys_reply(struct node *n,
                             const char *from,
                             const struct peer_aae_keys_reply *r,
                             uint64_t now)
{
    if (node__verify_on_keys_reply(n, from, r, now)) {
        return;
    }
    struct node__aae_exch *x = exch_of(n, from, r->req_id);
    if (x == NULL || x->phase != NODE_AAE_KEYS) {
        return;
    }
    if (r->status != RK_OK || !usable(n)) {
        x->again = r->status == RK_EAGAIN;
        exch_end(n, x, false);
        return;
    }
    struct node__aae_item *theirs = NULL, *mine = NULL;
    size_t nt = 0, nm = 0;
    int rc = node__aae_parse_items(r->items.ptr, r->items.len, &theirs, &nt);
    if (rc == RK_EPROTO || (rc == RK_OK && nt != r->count)) {
        refused(n, from, x->partition, "malformed key list");
        rc = RK_EPROTO;
    }
    /* this node's keys of the same leaves, listed now */
    uint32_t count = 0;
    bool trunc = false;
    struct peer_bytes asked = {(const char *)x->leaves,
                               4 * (size_t)x->n_leaves};
    if (rc == RK_OK) {
        rc = node__aae_list_leaves(n, x->partition, &asked, &n->aae.mine,
                                   NODE_AAE_KEYS_MAX_BYTES, &count, &trunc);
    }
    if (rc == RK_OK) {
        rc = node__aae_parse_items(n->aae.mine.base, n->aae.mine.len, &mine,
                                   &nm);
    }
    if (rc == RK_OK) {
        size_t i = 0, j = 0;
        while (i < nt || j < nm) {
            int c = i == nt   ? 1
                    : j == nm ? -1
                              : node__aae_item_cmp(&theirs[i], &mine[j]);
            if (c < 0) {
                queue_repair(n, &theirs[i++]);
            } else if (c > 0) {
                queue_repair(n, &mine[j++]);
            } else {
                if (theirs[i].hash != mine[j].hash) {
                    queue_repair(n, &mine[j]);
                }
                i++;
                j++;
            }
        }
    }
    rk_free(theirs);
    rk_free(mine);
    rk_buf_clear(&n->aae.mine);
    exch_end(n, x, rc == RK_OK);
}

/* ---- repair ---------------------------------------------------------------
 */

static void repair_pump(struct node *n, uint64_t now)
{
    struct node__aae *a = &n->aae;
    uint64_t rate = n->set.aae_repair_rate;
    if (now > a->repair_at_ms) {
        a->tokens += (now - a->repair_at_ms) * rate / 1000;
        if (a->tokens > rate) {
            a->tokens = rate;
        }
        a->repair_at_ms = now;
    }
    while (a->tokens > 0 && a->n_repairs < NODE_AAE_REPAIR_SLOTS &&
           a->repairq_head + 4 <= a->repairq.len) {
        const unsigned char *kp =
            (const unsigned char *)a->repairq.base + a->repairq_head;
        uint32_t kl = rk_get_le32(kp);
        a->repairq_head += 4 + (size_t)kl;
        a->tokens--;
        struct route_targets t;
        node__targets(n, kp + 4, kl, n->eff.n, &t);
        struct node__op *op = t.n ? node__op_get(n, NODE__OP_AAE) : NULL;
        if (op == NULL) {
            continue;
        }
        rk_buf_clear(&op->key);
        struct coord_get_req q = {
            .key = kp + 4,
            .klen = kl,
            .targets = t.id,
            .n_targets = t.n,
            .r = 1,
            .timeout_ms = n->set.request_timeout_ms,
            .repair_wait_ms = n->set.request_timeout_ms,
            .hint_for = t.hint_for,
            .cookie = op->slot,
        };
        uint64_t rid = 0;
        int rc = rk_buf_append(&op->key, kp + 4, kl);
        if (rc == RK_OK) {
            rc = coord_start_get(n->coord, &q, now, &rid);
        }
        if (rc != RK_OK) {
            node__op_put(n, op);
            continue;
        }
        op->coord_req = rid;
        a->n_repairs++;
        node__drain(n, now); /* a start replaces the coordinator's actions */
    }
    if (a->repairq_head == a->repairq.len) {
        rk_buf_clear(&a->repairq);
        a->repairq_head = 0;
    } else if (a->repairq_head > 65536 &&
               a->repairq_head > a->repairq.len / 2) {
        /* compact: the buffer does not grow while the queue never empties */
        memmove(a->repairq.base, a->repairq.base + a->repairq_head,
                a->repairq.len - a->repairq_head);
        a->repairq.len -= a->repairq_head;
        a->repairq_head = 0;
    }
}

void node__aae_repair_reply(struct node *n,
                            struct node__op *op,
                            const struct coord_reply *r)
{
    n->aae.n_repairs--;
    if (r->status == RK_OK || r->status == RK_ENOTFOUND) {
        n->st.aae_keys_repaired++;
    }
    node__op_put(n, op);
}

/* ---- the round ------------------------------------------------------------
 */

void node__aae_round(struct node *n, uint64_t now)
{
    struct node__aae *a = &n->aae;
    const struct ring *r = membership_ring(n->mem);
    a->round_ms = now;
    if (!n->set.aae_enabled || !n->multi || r == NULL) {
        if (a->p) {
            trees_free(a);
        }
        return;
    }
    uint64_t rec = engine_recoveries(n->data); /* one atomic read */
    if (a->p && rec != a->recoveries) {
        /* recovered in place (engine_recover): records the trees hold may
         * be gone, so build them again from what the engine holds now */
        node__log(n, RK_LOG_INFO, "aae_rebuild",
                  "the data engine recovered: trees are built again");
        trees_free(a);
    }
    a->recoveries = rec;
    if (a->p == NULL || a->q != ring_size(r)) {
        uint64_t probe = 0;
        if (a->unsupported || engine_slot_count(n->data, 0, &probe) != RK_OK) {
            if (!a->unsupported) {
                a->unsupported = true;
                node__log(n, RK_LOG_WARN, "aae_unsupported",
                          "the data engine keeps no slot index: active "
                          "anti-entropy is off");
            }
            return;
        }
        if (trees_alloc(n, ring_size(r)) != RK_OK) {
            return;
        }
        a->build_at_ms = now;
    }
    build_step(n, now);
    for (size_t i = 0; i < NODE_AAE_EXCHANGES; i++) {
        if (a->x[i].used && now >= a->x[i].deadline_ms) {
            exch_end(n, &a->x[i], false);
        }
    }
    start_exchanges(n, now);
    repair_pump(n, now);
}

uint64_t node__aae_deadline(const struct node *n)
{
    uint64_t now_hint = n->aae.round_ms;
    const struct node__aae *a = &n->aae;
    if (!n->set.aae_enabled || !n->multi) {
        return UINT64_MAX;
    }
    if (a->p == NULL || a->build_part < a->q ||
        a->repairq_head < a->repairq.len) {
        return now_hint + 10;
    }
    uint64_t d = next_exchange_ms(n);
    for (size_t i = 0; i < NODE_AAE_EXCHANGES; i++) {
        if (a->x[i].used && a->x[i].deadline_ms < d) {
            d = a->x[i].deadline_ms;
        }
    }
    return d;
}

uint64_t node__aae_oldest_exchange_ms(const struct node *n, bool *never)
{
    const struct node__aae *a = &n->aae;
    uint64_t oldest = UINT64_MAX;
    *never = false;
    for (uint32_t p = 0; a->p && p < a->q; p++) {
        if (!both_replicate(n, p, n->id, n->id)) {
            continue;
        }
        /* compared here: an exchange this node completed or answered */
        uint64_t t = a->p[p].last_exchange_ms > a->p[p].answered_ms
                         ? a->p[p].last_exchange_ms
                         : a->p[p].answered_ms;
        if (t == 0) {
            *never = true;
        } else if (t < oldest) {
            oldest = t;
        }
    }
    return oldest;
}

void node_aae_info(const struct node *n,
                   uint64_t now_ms,
                   struct node_aae_info *out)
{
    const struct node__aae *a = &n->aae;
    memset(out, 0, sizeof(*out));
    out->partitions = a->p ? a->q : 0;
    for (uint32_t p = 0; a->p && p < a->q; p++) {
        out->built += a->p[p].built;
    }
    out->repair_queue = a->repairq.len - a->repairq_head;
    out->repairs_inflight = a->n_repairs;
    bool never = false;
    uint64_t oldest = node__aae_oldest_exchange_ms(n, &never);
    if (never || a->p == NULL) {
        out->oldest_exchange_s = -1;
    } else if (oldest != UINT64_MAX) {
        out->oldest_exchange_s =
            now_ms > oldest ? (int64_t)((now_ms - oldest) / 1000) : 0;
    }
}

bool node_aae_root(const struct node *n, uint32_t p, uint64_t *root)
{
    const struct node__aae *a = &n->aae;
    if (a->p == NULL || p >= a->q || !a->p[p].built) {
        return false;
    }
    *root = a->p[p].t.root;
    return true;
}
