/*
 * node_handoff_verify.c - partition handoff from one source, verified
 * against the others with the anti-entropy trees (issue 14 item 2 and the
 * handoff throughput target).
 *
 * Why.  A pending owner must hold every write acknowledged before it
 * became a write target.  An acknowledged write is on W of the N current
 * replicas, so node_handoff.c pulled the whole partition from every one of
 * them: about N times the bytes the pending owner keeps, read, sent and
 * merged (2 of every 3 merges changed nothing).  Instead, one source (the
 * primary) is folded, and every other current replica is then *verified*:
 * its hash tree of the partition (node_aae.c, kept on every write path) is
 * compared with this node's, and only the keys whose record hashes differ,
 * or that this node lacks, are fetched from it and merged.  When the
 * replicas agree, which they do unless one missed writes, a verify costs a
 * few tree messages.  Riak hands a partition off from one owner; its
 * anti-entropy repairs afterwards.  Here the comparison happens before the
 * partition counts as received, so the ownership switch keeps its
 * guarantee.
 *
 * Safety.  A verify of source B ends after one pass (branches, leaves of
 * the differing branches, keys of the differing leaves, FETCH of the keys
 * whose hashes differ) whose key listing was not truncated.  Each leaf of
 * B's tree was then either equal to this node's leaf (the same (key, record
 * hash) set, as A1 of node_aae.c makes trees exact, up to 64-bit hash
 * collisions, which anti-entropy accepts too) or its keys were listed and
 * every one of them whose record differs here was fetched from B at a later
 * time and merged (the DVV merge: never an overwrite).  Records on B only
 * grow by merges during a transition (nothing is dropped while one runs,
 * and a reaped tombstone was on every replica), so after the pass this node
 * holds everything B held when it answered the branch level, which was
 * after B became a source.  So a verified source counts as one folded to
 * the end in node_handoff.c's rule (N - W + 1 sources).
 *
 * A listing (AAE_KEYS_REPLY) is at most NODE_AAE_KEYS_MAX_BYTES; a cut
 * one goes on with the leaves from the one of its last key (the source
 * lists leaves in the order asked), within the same pass.
 *
 * When a verify is not possible, the source is folded instead (the old
 * way): trees off here (a tree being built after a start is waited for)
 * or on the source (it answers RK_EVERSION), a source that refuses,
 * answers RK_EAGAIN (its tree is being built) NODE_VERIFY_EAGAIN_TRIES
 * times or leaves NODE_VERIFY_STALLS steps unanswered, more than a quarter
 * of the leaves differing (a fold is cheaper than listing them), one
 * leaf's keys not fitting in NODE_VERIFY_PASSES listings, or no primary
 * fold that finished (its source went down: another source is folded).
 *
 * Sender: a FETCH from a pending owner of the partition, while this node
 * is a current replica of it, is answered with a FOLD_REPLY holding the
 * listed keys' stored objects; any other FETCH, or a key of another
 * partition, is refused like a FOLD is (handoff_folds_refused).
 *
 * Thread: the node's (sans-IO, as node.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/node_internal.h"
#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"

#define NODE_VERIFY_PASSES 8 /* listings without progress before a fold */
#define NODE_VERIFY_EAGAIN_TRIES                                      \
    5                        /* "not now" answers (a tree being built \
                                there), 1 s apart, before a fold */
#define NODE_VERIFY_STALLS 3 /* timed-out steps before a fold instead */
#define NODE_VERIFY_FETCH  (64u << 10)  /* bytes of keys per FETCH */
#define NODE_VERIFY_TAG    (1ull << 63) /* req_id bit: not an AAE exchange's */

bool node__verify_asker_ok(const struct node *n, uint32_t p, const char *from)
{
    return membership_next_ring(n->mem) != NULL && strcmp(from, n->id) != 0 &&
           membership_pending_for(n->mem, p, from, NULL) &&
           node__is_current_replica(n, p);
}

/* Whether this node keeps trees (they may still be being built). */
static bool trees_on(const struct node *n)
{
    return n->set.aae_enabled && !n->aae.unsupported;
}

/* Whether this node's tree of p can be compared now. */
static bool tree_ready(const struct node *n, uint32_t p)
{
    const struct ring *r = membership_ring(n->mem);
    return n->set.aae_enabled && n->aae.p && r && ring_size(r) == n->aae.q &&
           p < n->aae.q && n->aae.p[p].built;
}

static size_t xfer_index(const struct node *n, const struct node__xfer *x)
{
    return (size_t)(x - n->ho.x);
}

void node__verify_init(struct node *n, struct node__xfer *x)
{
    rk_buf_clear(&n->ho.vkeys[xfer_index(n, x)]);
    memset(&x->v, 0, sizeof(x->v));
    if (x->n_src + (x->self_src ? 1 : 0) < 2 || !trees_on(n)) {
        return; /* every source is folded */
    }
    /* The primary: a source a resumed checkpoint shows progress of (its
     * fold goes on), else one chosen by partition so that the senders
     * share the work; none when this node replicates p itself (its own
     * copy is the one the others are compared with; not reached today: a
     * pending owner is never a current replica). */
    size_t prim = x->self_src ? SIZE_MAX : x->partition % x->n_src;
    bool resumed = false;
    for (size_t j = 0; j < x->n_src; j++) {
        if (x->src[j].cursor_len > 0 || x->src[j].done) {
            resumed = true;
        }
    }
    for (size_t j = 0; j < x->n_src; j++) {
        struct node__xfer_src *s = &x->src[j];
        bool fold = resumed ? s->cursor_len > 0 || s->done : j == prim;
        s->mode = fold ? NODE_XSRC_FOLD : NODE_XSRC_VERIFY;
    }
}

const char *node__verify_src_state(const struct node__xfer *x, size_t j)
{
    if (x->v.phase == NODE_V_IDLE || x->v.src != j) {
        return "to verify";
    }
    return x->v.phase == NODE_V_FETCH || x->v.phase == NODE_V_HELD
               ? "fetching"
               : "verifying";
}

/* The source being verified switches to a fold from the start. */
static void to_fold(struct node *n,
                    struct node__xfer *x,
                    struct node__xfer_src *s,
                    const char *why)
{
    s->mode = NODE_XSRC_FOLD;
    s->cursor_len = 0;
    s->req_id = 0;
    x->v.phase = NODE_V_IDLE;
    n->st.handoff_verify_folds++;
    node__log(n, RK_LOG_INFO, "handoff_verify_fold",
              "partition=%" PRIu32 " source=%s reason=\"%s\"", x->partition,
              s->id, why);
}

static void send_tree(struct node *n,
                      struct node__xfer *x,
                      uint32_t level,
                      uint64_t now)
{
    unsigned char buf[4 * (NODE_AAE_LEAVES_MAX / AAE_FANOUT)];
    size_t cnt = level == PEER_AAE_LEVEL_BRANCH ? 0 : x->v.n_branches;
    for (size_t i = 0; i < cnt; i++) {
        rk_put_le32(buf + 4 * i, x->v.branches[i]);
    }
    x->v.req_id = ++n->ho.next_req | NODE_VERIFY_TAG;
    x->v.sent_ms = now;
    x->v.phase =
        level == PEER_AAE_LEVEL_BRANCH ? NODE_V_BRANCHES : NODE_V_LEAVES;
    if (level == PEER_AAE_LEVEL_BRANCH) {
        x->v.truncated = false;
    }
    struct peer_msg m = {.type = PEER_AAE_TREE};
    m.aae_tree = (struct peer_aae_tree){
        .req_id = x->v.req_id,
        .partition = x->partition,
        .n_leaves = n->aae.n_leaves,
        .level = level,
        .ids = {(const char *)buf, 4 * cnt},
    };
    node__send(n, x->src[x->v.src].id, NULL, 0, 0, &m);
}

/* Asks for the keys of the leaves in x->v.leaves. */
static void send_keys(struct node *n, struct node__xfer *x, uint64_t now)
{
    x->v.req_id = ++n->ho.next_req | NODE_VERIFY_TAG;
    x->v.sent_ms = now;
    x->v.phase = NODE_V_KEYS;
    struct peer_msg m = {.type = PEER_AAE_KEYS};
    m.aae_keys = (struct peer_aae_keys){
        .req_id = x->v.req_id,
        .partition = x->partition,
        .n_leaves = n->aae.n_leaves,
        .leaves = {(const char *)x->v.leaves, 4 * (size_t)x->v.n_leaves},
    };
    node__send(n, x->src[x->v.src].id, NULL, 0, 0, &m);
}

/* Sends the next FETCH of the listing, or, when none is left, lists the
 * rest of a truncated listing's leaves or ends the pass: the source is
 * verified. */
static void fetch_next(struct node *n, struct node__xfer *x, uint64_t now)
{
    struct rk_buf *k = &n->ho.vkeys[xfer_index(n, x)];
    struct node__xfer_src *s = &x->src[x->v.src];
    if (x->v.fetch_off >= k->len) {
        rk_buf_clear(k);
        if (x->v.truncated) {
            send_keys(n, x, now); /* the leaves not listed to the end */
            return;
        }
        s->done = true;
        x->v.phase = NODE_V_IDLE;
        /* what this node already held counts too: durable before the
         * partition is marked, as a fold's merges that change nothing */
        if (n->last_seq > x->last_seq) {
            x->last_seq = n->last_seq;
        }
        n->st.handoff_verified++;
        node__log(n, RK_LOG_INFO, "handoff_verified",
                  "partition=%" PRIu32 " source=%s", x->partition, s->id);
        return;
    }
    if (!node__handoff_budget_ok(n, now)) {
        /* fetched items count against handoff-max-mbps as folded ones
         * do: the next round asks (node__verify_step) */
        x->v.phase = NODE_V_HELD;
        x->v.req_id = 0;
        return;
    }
    /* whole keys, up to NODE_VERIFY_FETCH bytes (at least one) */
    size_t end = x->v.fetch_off;
    while (end + 4 <= k->len) {
        size_t l = 4 + rk_get_le32((const unsigned char *)k->base + end);
        if (end > x->v.fetch_off &&
            end + l - x->v.fetch_off > NODE_VERIFY_FETCH) {
            break;
        }
        end += l;
    }
    x->v.fetch_end = end;
    x->v.req_id = ++n->ho.next_req | NODE_VERIFY_TAG;
    x->v.sent_ms = now;
    x->v.phase = NODE_V_FETCH;
    struct peer_msg m = {.type = PEER_FETCH};
    m.fetch = (struct peer_fetch){
        .req_id = x->v.req_id,
        .partition = x->partition,
        .epoch = membership_epoch(n->mem),
        .keys = {k->base + x->v.fetch_off, end - x->v.fetch_off},
        .max_bytes = NODE_HANDOFF_BATCH,
    };
    node__send(n, s->id, NULL, 0, 0, &m);
}

void node__verify_step(struct node *n, struct node__xfer *x, uint64_t now)
{
    if (x->v.phase == NODE_V_HELD && node_peer_is_up(n, x->src[x->v.src].id)) {
        fetch_next(n, x, now); /* held by the rate limit: ask again */
        return;
    }
    if (x->v.phase != NODE_V_IDLE) {
        struct node__xfer_src *s = &x->src[x->v.src];
        if (!node_peer_is_up(n, s->id)) {
            s->done = s->skipped = true; /* as a fold's source down */
            x->v.phase = NODE_V_IDLE;
            x->v.req_id = 0;
        } else if (now >= x->v.sent_ms + NODE_HANDOFF_TIMEOUT_MS) {
            n->st.handoff_retries++;
            s->retries++;
            node__log(n, RK_LOG_WARN, "handoff_stalled",
                      "partition=%" PRIu32 " source=%s retries=%" PRIu32
                      " reason=\"verify step unanswered; starting over\"",
                      x->partition, s->id, s->retries);
            x->v.phase = NODE_V_IDLE; /* the pass starts again below */
            x->v.req_id = 0;
            if (++s->v_stalls >= NODE_VERIFY_STALLS) {
                to_fold(n, x, s, "verify steps went unanswered");
                return;
            }
        } else {
            return;
        }
    }
    /* Verifies wait for the folds: compared before, every leaf differs. */
    bool folded = x->self_src, folding = false;
    for (size_t j = 0; j < x->n_src; j++) {
        const struct node__xfer_src *s = &x->src[j];
        if (s->mode == NODE_XSRC_FOLD) {
            folded = folded || (s->done && !s->skipped);
            folding = folding || !s->done;
        }
    }
    if (folding) {
        return;
    }
    for (size_t j = 0; j < x->n_src; j++) {
        struct node__xfer_src *s = &x->src[j];
        if (s->done || s->mode != NODE_XSRC_VERIFY || now < s->retry_ms) {
            continue;
        }
        if (!node_peer_is_up(n, s->id)) {
            s->done = s->skipped = true;
            continue;
        }
        if (!folded) {
            /* the primary went down before it finished: fold this one */
            to_fold(n, x, s, "no source was folded to the end");
            return;
        }
        if (!trees_on(n)) {
            to_fold(n, x, s, "anti-entropy trees are off here");
            return;
        }
        if (!tree_ready(n, x->partition)) {
            return; /* being built (after a start): soon */
        }
        x->v.src = j;
        x->v.passes = 0;
        x->v.truncated = false;
        rk_buf_clear(&n->ho.vkeys[xfer_index(n, x)]);
        send_tree(n, x, PEER_AAE_LEVEL_BRANCH, now);
        return; /* one source at a time */
    }
}

/* The transfer whose verify step waits for req_id from `from`. */
static struct node__xfer *verify_of(struct node *n,
                                    const char *from,
                                    uint64_t req_id,
                                    enum node__verify_phase a,
                                    enum node__verify_phase b)
{
    if (!(req_id & NODE_VERIFY_TAG)) {
        return NULL;
    }
    for (size_t i = 0; i < NODE_HANDOFF_XFERS; i++) {
        struct node__xfer *x = &n->ho.x[i];
        if (x->used && x->v.phase != NODE_V_IDLE && x->v.req_id == req_id &&
            (x->v.phase == a || x->v.phase == b) &&
            strcmp(x->src[x->v.src].id, from) == 0) {
            return x;
        }
    }
    return NULL;
}

/* A step failed with status rc: RK_EAGAIN (the source's tree is not
 * built, or it does not know the transition yet) is tried again after the
 * retry delay a few times, then, like a refusal, the source is folded. */
static void step_failed(struct node *n,
                        struct node__xfer *x,
                        int rc,
                        uint64_t now)
{
    struct node__xfer_src *s = &x->src[x->v.src];
    x->v.phase = NODE_V_IDLE;
    x->v.req_id = 0;
    s->retries++;
    if (rc == RK_EAGAIN && ++s->v_eagains < NODE_VERIFY_EAGAIN_TRIES) {
        s->retry_ms = now + NODE_HANDOFF_RETRY_MS;
        return;
    }
    char why[80];
    snprintf(why, sizeof(why), "the source answered %s", rk_errname(rc));
    to_fold(n, x, s, why);
}

static bool tree_reply(struct node *n,
                       struct node__xfer *x,
                       const char *from,
                       const struct peer_aae_tree_reply *r,
                       uint64_t now)
{
    (void)from;
    if (r->status != RK_OK) {
        step_failed(n, x, r->status, now);
        return true;
    }
    if (!tree_ready(n, x->partition)) {
        to_fold(n, x, &x->src[x->v.src], "this node's tree is not built");
        return true;
    }
    const struct aae_tree *t = &n->aae.p[x->partition].t;
    bool branches = x->v.phase == NODE_V_BRANCHES;
    size_t want =
        branches ? t->n_branches : (size_t)x->v.n_branches * AAE_FANOUT;
    if (r->hashes.len != want * 8) {
        step_failed(n, x, RK_EPROTO, now);
        return true;
    }
    const unsigned char *h = (const unsigned char *)r->hashes.ptr;
    uint64_t theirs[AAE_FANOUT];
    uint32_t diff[NODE_AAE_LEAVES_MAX];
    size_t nd = 0;
    if (branches) {
        if (r->root != t->root) {
            for (size_t i = 0; i < want; i += AAE_FANOUT) {
                size_t k = want - i < AAE_FANOUT ? want - i : AAE_FANOUT;
                for (size_t j = 0; j < k; j++) {
                    theirs[j] = rk_get_le64(h + 8 * (i + j));
                }
                nd += aae_diff(t->branch + i, theirs, (uint32_t)i, (uint32_t)k,
                               diff + nd);
            }
        }
        if (nd == 0) {
            fetch_next(n, x, now); /* equal trees: nothing to fetch */
            return true;
        }
        memcpy(x->v.branches, diff, nd * sizeof(*diff));
        x->v.n_branches = (uint32_t)nd;
        send_tree(n, x, PEER_AAE_LEVEL_LEAF, now);
        return true;
    }
    for (uint32_t i = 0; i < x->v.n_branches; i++) {
        uint32_t b = x->v.branches[i];
        for (size_t j = 0; j < AAE_FANOUT; j++) {
            theirs[j] = rk_get_le64(h + 8 * (i * AAE_FANOUT + j));
        }
        nd += aae_diff(t->leaf + (size_t)b * AAE_FANOUT, theirs, b * AAE_FANOUT,
                       AAE_FANOUT, diff + nd);
    }
    if (nd == 0) {
        fetch_next(n, x, now);
        return true;
    }
    if (nd > n->aae.n_leaves / 4) {
        to_fold(n, x, &x->src[x->v.src],
                "more than a quarter of the "
                "tree differs");
        return true;
    }
    for (size_t i = 0; i < nd; i++) {
        rk_put_le32(x->v.leaves + 4 * i, diff[i]);
    }
    x->v.n_leaves = (uint32_t)nd;
    x->v.passes = 0;
    send_keys(n, x, now);
    return true;
}

/* After a truncated listing: keeps in x->v.leaves the leaves from the one
 * of the reply's last key on (those before it were listed to the end; the
 * source lists leaves in the order asked).  false when that is the first
 * leaf (no progress: it is asked again). */
static bool next_leaves(struct node *n,
                        struct node__xfer *x,
                        const struct peer_aae_keys_reply *r)
{
    const unsigned char *p = (const unsigned char *)r->items.ptr;
    size_t left = r->items.len;
    const unsigned char *last = NULL;
    uint32_t last_len = 0;
    while (left >= 12) { /* parsed before: lengths are in bounds */
        uint32_t kl = rk_get_le32(p);
        last = p + 4;
        last_len = kl;
        p += 12 + (size_t)kl;
        left -= 12 + (size_t)kl;
    }
    if (last == NULL) {
        return false;
    }
    uint32_t leaf = node__aae_leaf_of_key(n, last, last_len);
    for (uint32_t i = 0; i < x->v.n_leaves; i++) {
        if (rk_get_le32(x->v.leaves + 4 * i) == leaf) {
            if (i == 0) {
                return false;
            }
            memmove(x->v.leaves, x->v.leaves + 4 * i,
                    4 * (size_t)(x->v.n_leaves - i));
            x->v.n_leaves -= i;
            x->v.passes = 0;
            return true;
        }
    }
    return false; /* a key of a leaf not asked: listed again whole */
}

static bool keys_reply(struct node *n,
                       struct node__xfer *x,
                       const struct peer_aae_keys_reply *r,
                       uint64_t now)
{
    if (r->status != RK_OK) {
        step_failed(n, x, r->status, now);
        return true;
    }
    struct node__aae_item *theirs = NULL, *mine = NULL;
    size_t nt = 0, nm = 0;
    int rc = node__aae_parse_items(r->items.ptr, r->items.len, &theirs, &nt);
    if (rc == RK_OK && nt != r->count) {
        rc = RK_EPROTO;
    }
    for (size_t i = 0; rc == RK_OK && i < nt; i++) {
        if (theirs[i].klen > PEER_MAX_KEY) {
            rc = RK_EPROTO; /* no such key could be fetched */
        }
    }
    uint32_t count = 0;
    bool trunc = false;
    struct peer_bytes asked = {(const char *)x->v.leaves,
                               4 * (size_t)x->v.n_leaves};
    if (rc == RK_OK) {
        /* this node's own listing is not bounded by the reply's size: a
         * key left out here would look missing and be fetched, harmless */
        rc = node__aae_list_leaves(n, x->partition, &asked, &n->aae.mine,
                                   NODE_AAE_KEYS_MAX_BYTES, &count, &trunc);
    }
    if (rc == RK_OK) {
        rc = node__aae_parse_items(n->aae.mine.base, n->aae.mine.len, &mine,
                                   &nm);
    }
    struct rk_buf *k = &n->ho.vkeys[xfer_index(n, x)];
    rk_buf_clear(k);
    for (size_t i = 0, j = 0; rc == RK_OK && i < nt; i++) {
        while (j < nm && node__aae_item_cmp(&mine[j], &theirs[i]) < 0) {
            j++;
        }
        bool same = j < nm && node__aae_item_cmp(&mine[j], &theirs[i]) == 0 &&
                    mine[j].hash == theirs[i].hash;
        if (same) {
            continue;
        }
        unsigned char l[4];
        rk_put_le32(l, theirs[i].klen);
        if (rk_buf_append(k, l, 4) != RK_OK ||
            rk_buf_append(k, theirs[i].key, theirs[i].klen) != RK_OK) {
            rc = RK_ENOMEM;
        }
    }
    rk_free(theirs);
    rk_free(mine);
    rk_buf_clear(&n->aae.mine);
    if (rc != RK_OK) {
        rk_buf_clear(k);
        step_failed(n, x, rc, now);
        return true;
    }
    x->v.truncated = (r->flags & PEER_AAE_KEYS_TRUNCATED) != 0;
    if (x->v.truncated && !next_leaves(n, x, r)) {
        rk_buf_clear(k);
        if (++x->v.passes >= NODE_VERIFY_PASSES) {
            to_fold(n, x, &x->src[x->v.src],
                    "a leaf's differing keys do not fit in a listing");
            return true;
        }
    }
    x->v.fetch_off = 0;
    fetch_next(n, x, now);
    return true;
}

static bool fetch_reply_in(struct node *n,
                           struct node__xfer *x,
                           const struct peer_fold_reply *r,
                           uint64_t now)
{
    if (r->status != RK_OK) {
        step_failed(n, x, r->status, now);
        return true;
    }
    uint32_t got = 0;
    int rc = node__handoff_merge(n, x, r, &got);
    /* the cursor: how many of the listed keys the source went through */
    const struct rk_buf *k = &n->ho.vkeys[xfer_index(n, x)];
    uint32_t through = r->cursor.len == 4
                           ? rk_get_le32((const unsigned char *)r->cursor.ptr)
                           : 0;
    size_t off = x->v.fetch_off;
    for (uint32_t i = 0; rc == RK_OK && i < through; i++) {
        if (off + 4 > x->v.fetch_end) {
            rc = RK_EPROTO;
            break;
        }
        off += 4 + rk_get_le32((const unsigned char *)k->base + off);
    }
    if (rc == RK_OK && (r->cursor.len != 4 || through == 0)) {
        rc = RK_EPROTO; /* no progress: a source goes through one key at
                           least */
    }
    if (rc != RK_OK) {
        step_failed(n, x, rc, now);
        return true;
    }
    n->st.handoff_verify_keys += got;
    x->v.fetch_off = off;
    fetch_next(n, x, now);
    return true;
}

/* After a reply: a verify step that ended (the source verified, or to be
 * folded) lets the transfer go on now rather than at the next round. */
static bool after(struct node *n, struct node__xfer *x, uint64_t now)
{
    if (x->v.phase == NODE_V_IDLE) {
        node__handoff_pump(n, now);
    }
    return true;
}

bool node__verify_on_tree_reply(struct node *n,
                                const char *from,
                                const struct peer_aae_tree_reply *r,
                                uint64_t now)
{
    struct node__xfer *x =
        verify_of(n, from, r->req_id, NODE_V_BRANCHES, NODE_V_LEAVES);
    if (x == NULL) {
        return (r->req_id & NODE_VERIFY_TAG) != 0; /* late: ignored */
    }
    return tree_reply(n, x, from, r, now) && after(n, x, now);
}

bool node__verify_on_keys_reply(struct node *n,
                                const char *from,
                                const struct peer_aae_keys_reply *r,
                                uint64_t now)
{
    struct node__xfer *x =
        verify_of(n, from, r->req_id, NODE_V_KEYS, NODE_V_KEYS);
    if (x == NULL) {
        return (r->req_id & NODE_VERIFY_TAG) != 0;
    }
    return keys_reply(n, x, r, now) && after(n, x, now);
}

bool node__verify_on_fetch_reply(struct node *n,
                                 const char *from,
                                 const struct peer_fold_reply *r,
                                 uint64_t now)
{
    struct node__xfer *x =
        verify_of(n, from, r->req_id, NODE_V_FETCH, NODE_V_FETCH);
    if (x == NULL) {
        return (r->req_id & NODE_VERIFY_TAG) != 0;
    }
    return fetch_reply_in(n, x, r, now) && after(n, x, now);
}

/* ---- sender ------------------------------------------------------------- */

static void fetch_reply(struct node *n,
                        const char *from,
                        uint64_t req_id,
                        int status,
                        uint32_t through,
                        bool done,
                        uint32_t count)
{
    struct peer_msg rep = {.type = PEER_FOLD_REPLY};
    unsigned char cur[4];
    rep.fold_reply.req_id = req_id;
    rep.fold_reply.status = status;
    if (status == RK_OK) {
        rk_put_le32(cur, through);
        rep.fold_reply.cursor = (struct peer_bytes){(const char *)cur, 4};
        rep.fold_reply.flags = done ? PEER_FOLD_DONE : 0;
        rep.fold_reply.count = count;
        rep.fold_reply.items =
            (struct peer_bytes){n->ho.items.base, n->ho.items.len};
        n->st.handoff_keys_out += count;
        n->st.handoff_bytes_out += n->ho.items.len;
    }
    node__send(n, from, NULL, 0, 0, &rep);
}

static void fetch_refuse(struct node *n,
                         const char *from,
                         const struct peer_fetch *f,
                         int status,
                         const char *why)
{
    node__handoff_refuse(n, from, "handoff_fetch_refused", f->req_id,
                         f->partition, status, why);
}

void node__handoff_on_fetch(struct node *n,
                            const char *from,
                            const struct peer_fetch *f)
{
    const struct ring *r = membership_ring(n->mem);
    if (r == NULL || membership_next_ring(n->mem) == NULL) {
        fetch_reply(n, from, f->req_id, RK_EAGAIN, 0, false, 0);
        return;
    }
    if (f->partition >= ring_size(r) ||
        !node__verify_asker_ok(n, f->partition, from)) {
        fetch_refuse(n, from, f, RK_EINVAL,
                     "the asker is not a pending owner of a partition this "
                     "node replicates");
        return;
    }
    rk_buf_clear(&n->ho.items);
    const unsigned char *p = (const unsigned char *)f->keys.ptr;
    size_t left = f->keys.len;
    uint32_t through = 0, count = 0;
    while (left > 0 && n->ho.items.len < f->max_bytes &&
           through < NODE_HANDOFF_SCAN) {
        uint32_t kl = left >= 4 ? rk_get_le32(p) : 0;
        if (kl == 0 || kl > PEER_MAX_KEY || kl > left - 4 ||
            ring_partition_of_key(r, p + 4, kl) != f->partition) {
            fetch_refuse(n, from, f, RK_EINVAL,
                         "a malformed key list, or a key of another "
                         "partition");
            return;
        }
        struct peer_kv_get g = {.key = {(const char *)p + 4, kl}};
        struct peer_msg grep;
        replica_handle_get(n->data, &n->rcfg, &g, &n->valbuf, &grep);
        int st = grep.kv_get_reply.status;
        if (st != RK_OK && st != RK_ENOTFOUND) {
            fetch_reply(n, from, f->req_id, st, 0, false, 0);
            return;
        }
        if (st == RK_OK) {
            struct peer_bytes o = grep.kv_get_reply.object;
            unsigned char l[4], ol[4];
            rk_put_le32(l, kl);
            rk_put_le32(ol, (uint32_t)o.len);
            if (rk_buf_append(&n->ho.items, l, 4) != RK_OK ||
                rk_buf_append(&n->ho.items, p + 4, kl) != RK_OK ||
                rk_buf_append(&n->ho.items, ol, 4) != RK_OK ||
                rk_buf_append(&n->ho.items, o.ptr, o.len) != RK_OK) {
                fetch_reply(n, from, f->req_id, RK_ENOMEM, 0, false, 0);
                return;
            }
            count++;
        }
        through++;
        p += 4 + kl;
        left -= 4 + kl;
    }
    n->st.handoff_folds_served++;
    fetch_reply(n, from, f->req_id, RK_OK, through, left == 0, count);
}
