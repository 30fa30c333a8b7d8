/*
 * node_internal.h - the state of struct node shared by node.c (facade,
 * actions, membership glue, replica serving, client operations, durable
 * acks) and node_hints.c (hinted handoff and tombstone reaping).  Nothing
 * outside src/cluster/node*.c includes this.
 */
#ifndef RINGKV_CLUSTER_NODE_INTERNAL_H
#define RINGKV_CLUSTER_NODE_INTERNAL_H

#include "cluster/aae.h"
#include "cluster/chunk.h"
#include "cluster/node.h"
#include "common/buf.h"

#define NODE_HINT_SLOTS 256 /* hint deliveries in flight */
#define NODE_HINT_BATCH 256 /* hints looked at per round */
#define NODE_REAP_SLOTS 64  /* tombstone checks in flight */
#define NODE_REAP_BATCH 256 /* keys looked at per reaping round */
#define NODE_MAX_FAILS  256
#define NODE_NO_OFF     SIZE_MAX

/* What a node operation is for (one meaning per kind). */
#define NODE_CHUNK_GC_DELAY_MS                                         \
    5000                        /* a superseded manifest's blocks live \
                                  on this long (node_chunkgc.c) */
#define NODE_CHUNK_GC_WINDOW 16 /* block deletes in flight */
#define NODE_CHUNK_GC_CHECK_WINDOW     \
    8 /* checks (all-replica reads) in \
         flight */
#define NODE_CHUNK_GC_CHECKS                                             \
    8                                /* checks of one manifest, the k-th \
                                        after DELAY_MS << k: ~21 min */
#define NODE_CHUNK_GC_RETRIES  3     /* a failed block delete is retried */
#define NODE_CHUNK_GC_RETRY_MS 10000 /* after this long */

enum node__op_kind
{
    NODE__OP_READ = 1, /* a client read */
    NODE__OP_WRITE,    /* a client write: UPDATE, then PUT */
    NODE__OP_HINT,     /* a hint delivery to its owner */
    NODE__OP_REAP,     /* a tombstone reaping check */
    NODE__OP_GCCHECK,  /* a chunk GC check: is a manifest dead on every
                          replica? (node_chunkgc.c) */
    NODE__OP_AAE,      /* an anti-entropy repair: a read with read repair */
};

/* One operation the node coordinates; pooled, never freed while the node
 * lives (stable pointers). */
struct node__op
{
    bool used;
    enum node__op_kind kind;
    uint32_t slot;         /* index in node.ops: the coordinator cookie */
    uint64_t id;           /* client op id (never reused) */
    uint64_t cookie;       /* the client's */
    uint64_t coord_req;    /* coordinator request in flight, 0 = none */
    int phase;             /* WRITE: 1 update, 2 put */
    bool hinted;           /* WRITE: hints for down owners written */
    bool rerouted;         /* WRITE: the UPDATE was sent again after the
                              coordinating replica's storage refused it */
    uint64_t hint_seq;     /* WRITE: the last of them, in the hint store */
    bool queued;           /* on node.ready */
    bool gc;               /* WRITE: a chunk block's delete (node_chunkgc.c):
                              its reply stays inside the node */
    uint8_t gc_attempt;    /* of that delete (or GCCHECK), from 0 */
    struct dvv_dot gc_dot; /* GCCHECK: the dropped manifest's sibling;
                              key in key, manifest in val, ts the write's */
    struct rk_buf key;
    struct rk_buf ctx; /* WRITE: context */
    struct rk_buf val; /* WRITE: value */
    struct rk_buf obj; /* WRITE: the object after the update */
    bool own_ctx, tomb, ctype, chunked;
    bool counter;       /* WRITE: an increment (PEER_KV_COUNTER) */
    bool counter_state; /* WRITE: PEER_KV_COUNTER_STATE */
    uint64_t ts, exp;
    struct route_quorum q;
    uint32_t timeout_ms;
    char coord_id[CL_ID_MAX + 1]; /* WRITE: the coordinating replica */
    uint64_t hash;                /* HINT/REAP: XXH3 of the object */
    struct node__op *next;        /* free list / ready list */
};

/* Partition handoff (node_handoff.c, issue 14 item 2). */
#define NODE_HANDOFF_XFERS                    \
    8 /* partitions received at once, at most \
         (node_settings.handoff_concurrency) */
#define NODE_HANDOFF_BATCH                                          \
    (64u << 10)                       /* bytes of items per FOLD:   \
                                          a batch is merged in one  \
                                          event, so this bounds how \
                                          long it holds the loop */
#define NODE_HANDOFF_TIMEOUT_MS 15000 /* a FOLD unanswered this long */
#define NODE_HANDOFF_RETRY_MS   1000  /* is asked again after this */
#define NODE_HANDOFF_SCAN       65536 /* keys a FOLD looks at, at most */
#define NODE_HANDOFF_ROUND_MS   100   /* between handoff rounds */
#define NODE_HANDOFF_EAGAIN_MS             \
    30000 /* a source that answers "no     \
             transition here" this long is \
             skipped like a down one */

#define NODE_AAE_LEAVES_MAX 1024 /* leaves per tree, at most (node_aae.c) */

/* How a transfer takes a partition from a source (node_handoff_verify.c). */
enum node__xsrc_mode
{
    NODE_XSRC_FOLD = 0, /* every object, FOLD by FOLD */
    NODE_XSRC_VERIFY,   /* trees compared, differing keys fetched */
};

/* A transfer's verify step (node_handoff_verify.c), one source at a time. */
enum node__verify_phase
{
    NODE_V_IDLE = 0,
    NODE_V_BRANCHES, /* AAE_TREE (branches) sent */
    NODE_V_LEAVES,   /* AAE_TREE (leaves of differing branches) sent */
    NODE_V_KEYS,     /* AAE_KEYS (differing leaves) sent */
    NODE_V_FETCH,    /* FETCH (keys that differ) sent */
    NODE_V_HELD,     /* the next FETCH waits for the rate limit */
};

struct node__verify
{
    enum node__verify_phase phase;
    size_t src;      /* the source being verified */
    uint64_t req_id; /* of the step in flight (top bit set: not an AAE
                        exchange's id) */
    uint64_t sent_ms;
    uint32_t passes; /* listings of this source that made no progress */
    bool truncated;  /* the listing left keys out: the leaves from the
                        last one listed on are asked next */
    uint32_t branches[NODE_AAE_LEAVES_MAX / AAE_FANOUT];
    uint32_t n_branches;
    unsigned char leaves[4 * NODE_AAE_LEAVES_MAX]; /* u32 LE */
    uint32_t n_leaves;
    size_t fetch_off; /* next key of n->ho.vkeys[this transfer] to fetch */
    size_t fetch_end; /* end of the keys the FETCH in flight lists */
};

/* One current replica a transfer pulls from. */
struct node__xfer_src
{
    char id[CL_ID_MAX + 1];
    unsigned char cursor[PEER_FOLD_CURSOR_MAX];
    size_t cursor_len;
    /* the receiver's checkpoint (node_handoff_ckpt.c): the candidate
     * cursor of the last merged batch (durable once the data engine has
     * cseq), and the durable one that is saved */
    unsigned char ccur[PEER_FOLD_CURSOR_MAX], dcur[PEER_FOLD_CURSOR_MAX];
    size_t ccur_len, dcur_len;
    uint64_t cseq;
    bool has_cand, cdone, ddone;
    bool done;                   /* folded to the end (or skipped: down) */
    bool skipped;                /* done because it was down */
    uint8_t mode;                /* enum node__xsrc_mode */
    uint8_t v_eagains, v_stalls; /* its verify's "not now" answers and
                                    timed-out steps */
    uint64_t req_id;             /* FOLD in flight, 0 = none */
    uint64_t sent_ms, retry_ms;
    uint32_t retries;
};

/* One partition this node receives as a pending owner. */
struct node__xfer
{
    bool used;
    uint32_t partition;
    struct node__xfer_src src[RING_MAX_N];
    size_t n_src;
    bool self_src;          /* this node is a current replica too (its own copy
                               counts as one source folded) */
    uint64_t keys, bytes;   /* received (merged) so far */
    uint64_t dkeys, dbytes; /* of those, durable (checkpointed) */
    uint64_t last_seq;      /* data engine seq of the last merge */
    uint64_t started_ms;
    uint32_t start_pm; /* progress (per mille) when started or resumed */
    struct node__verify v;
};

/* A source that answers FOLDs with "no transition here" (RK_EAGAIN). */
struct node__eagain
{
    char id[CL_ID_MAX + 1]; /* "" = free */
    uint64_t since_ms;
    uint32_t logged_part; /* partition + 1 its skip was last logged for */
};
#define NODE_HANDOFF_EAGAIN_SLOTS 16

struct node__handoff
{
    struct rk_buf saved; /* the checkpoint of the last run (config) */
    struct rk_buf ckpt;  /* the one being saved */
    uint64_t ckpt_ms, ckpt_hash;
    bool ckpt_saved; /* a non-empty checkpoint is on disk */
    struct node__eagain eagain[NODE_HANDOFF_EAGAIN_SLOTS];
    struct node__xfer x[NODE_HANDOFF_XFERS];
    uint8_t *recv;     /* per partition: received here (to be marked) */
    uint32_t recv_cap; /* partitions in recv */
    uint64_t next_round_ms;
    uint64_t next_req;
    /* the receive rate limit (node_settings.handoff_max_kbps): a token
     * bucket of bytes, refilled at the rate, at most one second's worth;
     * a FOLD is sent only while it is positive */
    int64_t tokens;
    uint64_t tokens_ms;
    uint64_t instance; /* this run's fold cursors carry it */
    uint64_t refused_logged_ms;
    /* dropping partitions this node no longer owns (after a grace) */
    bool had_next;           /* a transition was in progress last round */
    bool removed_seen;       /* this node's removal was noticed */
    uint64_t drop_due_ms;    /* 0: no drop scan scheduled */
    uint64_t drop_cursor;    /* engine_scan cursor of the running scan */
    uint64_t drop_scan_keys; /* keys the running scan dropped so far */
    bool dropping;           /* a scan is running */
    struct rk_buf drop;      /* keys of one drop batch: {u32 len, key} */
    struct rk_buf keys;      /* FOLD: the keys of one batch */
    struct rk_buf items;     /* FOLD: the reply's items */
    /* verify: per transfer, the keys to fetch ({u32 len, key}...) */
    struct rk_buf vkeys[NODE_HANDOFF_XFERS];
};

/* Chunk GC checks of one attempt (node_chunkgc.c): one delay per queue,
 * so its order is the order of due times. */
struct node__gcq
{
    struct rk_buf b;
    size_t head;    /* offset of the first entry not started */
    size_t stamped; /* entries before it have their due time */
};

/* Active anti-entropy (node_aae.c, issue 14 item 4). */
#define NODE_AAE_EXCHANGES        4          /* exchanges at once, at most */
#define NODE_AAE_REPAIR_SLOTS     128        /* repair reads in flight */
#define NODE_AAE_BUILD_KEYS_PER_S 50000      /* tree build I/O budget */
#define NODE_AAE_TIMEOUT_MS       10000      /* an unanswered step fails */
#define NODE_AAE_KEYS_MAX_BYTES   (1u << 20) /* of an AAE_KEYS_REPLY */
#define NODE_AAE_QUEUE_MAX        (8u << 20) /* bytes of keys to repair */
#define NODE_AAE_QUEUE_LOW        4096       /* no new exchange above this */

enum node__aae_phase
{
    NODE_AAE_BRANCHES = 1, /* AAE_TREE (branches) sent */
    NODE_AAE_LEAVES,       /* AAE_TREE (leaves of differing branches) */
    NODE_AAE_KEYS,         /* AAE_KEYS (differing leaves) sent */
};

/* One partition's tree on this node. */
struct node__aae_part
{
    struct aae_tree t;
    bool built;                /* t covers every key of the partition */
    uint32_t next_slot;        /* while building: slots below are in t */
    uint64_t last_exchange_ms; /* last completed exchange, 0 = never */
    uint64_t answered_ms;      /* last peer's exchange answered, 0 = never */
    uint64_t touched_ms;       /* last exchange started or answered: the
                                  order pick() takes partitions in */
};

/* One exchange this node started. */
struct node__aae_exch
{
    bool used;
    bool again; /* ends neither done nor failed: the peer said RK_EAGAIN */
    enum node__aae_phase phase;
    uint32_t partition;
    char peer[CL_ID_MAX + 1];
    uint64_t req_id; /* of the step in flight */
    uint64_t deadline_ms;
    uint32_t branches[NODE_AAE_LEAVES_MAX / AAE_FANOUT]; /* LEAVES: asked */
    uint32_t n_branches;
    unsigned char leaves[4 * NODE_AAE_LEAVES_MAX]; /* KEYS: asked, u32 LE */
    uint32_t n_leaves;
};

struct node__aae
{
    struct node__aae_part *p; /* q of them, or NULL (off, or no ring) */
    uint32_t q;               /* the ring size the trees are for */
    uint32_t n_leaves;        /* per tree: node__aae_leaves(q) */
    bool unsupported;         /* the data engine has no slot index */
    uint64_t recoveries;      /* engine_recoveries the trees were built on */
    uint32_t build_part;      /* partitions below are built */
    uint64_t build_at_ms, round_ms;
    uint64_t last_round_ms;        /* start_exchanges last started a round */
    uint32_t next_part, next_peer; /* round robin */
    uint64_t next_req;
    struct node__aae_exch x[NODE_AAE_EXCHANGES];
    struct rk_buf repairq;         /* keys to repair: {u32 len, key} */
    size_t repairq_head;           /* offset of the next one */
    size_t n_repairs;              /* repair reads in flight */
    uint64_t tokens, repair_at_ms; /* repair rate */
    uint64_t refused_logged_ms;
    struct rk_buf items; /* a reply's items */
    struct rk_buf mine;  /* this node's listing / a record read */
};

struct node__seen
{
    char id[CL_ID_MAX + 1];
    uint64_t version; /* of its last GOSSIP */
    uint64_t hash;    /* XXH3 of that state's bytes */
};

struct node__ack
{
    uint64_t seq;
    uint64_t then_hint; /* then the hint store's seq (0: none) */
    bool local;
    uint64_t req_id;
    int32_t status;
    char peer[CL_ID_MAX + 1];
};

/* Acknowledgements held until one engine's durable sequence passes their
 * seq (FIFO: seqs only grow). */
struct node__ackq
{
    struct node__ack *items;
    size_t len, cap, head;
};

struct node__fail
{
    uint64_t req_id;
    int status;
    char node[CL_ID_MAX + 1];
};

/* Offsets of an action's views into the arena (NODE_NO_OFF: none). */
struct node__offs
{
    size_t to, host, frame, bytes, object, text;
    size_t frame_len, bytes_len, object_len;
};

struct node
{
    char id[CL_ID_MAX + 1];
    struct rk_env *env;
    struct engine *data;
    struct engine *hints;
    struct membership *mem;
    struct swim *swim;
    struct coord *coord;
    struct node_settings set;
    struct cl_actions acts; /* membership/swim output, drained at once */
    /* actions of the current call, views fixed up at its end */
    struct node_action *out;
    struct node__offs *offs;
    size_t n_out, cap_out;
    struct rk_buf arena;
    /* membership-derived */
    size_t valid_members;
    struct route_quorum eff;
    bool multi;
    bool versioned;
    uint64_t state_hash;
    struct node__seen *seen;
    size_t n_seen, cap_seen;
    /* peers whose connection closed and was not re-established */
    char (*gone)[CL_ID_MAX + 1];
    size_t n_gone, cap_gone;
    /* durable acks: for writes to the data engine and to the hint store */
    struct node__ackq acks, hint_acks;
    struct node__fail fails[NODE_MAX_FAILS];
    size_t n_fails;
    struct node__fail *held;
    size_t n_held, cap_held;
    bool draining;
    bool in_ready;
    /* operations */
    struct node__op **ops;
    size_t n_ops, max_ops;
    struct node__op *free_ops;
    struct node__op *ready;
    uint64_t next_op_id;
    size_t n_hint_ops, n_reap_ops;
    struct node__op *hint_ops[NODE_HINT_SLOTS]; /* in flight, or NULL */
    struct node__op *reap_ops[NODE_REAP_SLOTS];
    struct node__op *reap_pending; /* primaries agreed: hint check next */
    /* replica */
    uint64_t actor, floor, oneshot;
    uint64_t last_seq;      /* last data engine write by replica code */
    uint64_t last_hint_seq; /* last hint store write */
    struct replica_cfg rcfg;
    struct replica_stats rstats;
    struct replica_scratch scratch; /* the replica code's working space */
    struct replica_recent recent;   /* manifests applied lately (dups) */
    struct rk_buf valbuf;
    /* background rounds */
    uint64_t hint_cursor, hint_scan_at;
    uint64_t reap_cursor, reap_scan_at;
    uint64_t skew_logged_at;
    uint64_t spoof_logged_ms; /* last peer_spoofed_id line */
    /* the data engine's stats.recoveries when the actor was chosen */
    uint64_t actor_recoveries;
    /* storage state the driver reported (node_set_storage_state) */
    bool degraded;
    char degraded_reason[384];
    uint64_t bound_logged, bound_logged_at;
    /* superseded chunk manifests to check (node_chunkgc.c; entry layout
     * there), then their blocks to delete: gcd {u64 ts, u32 len,
     * manifest} */
    struct node__gcq gcq[NODE_CHUNK_GC_CHECKS]; /* by attempt */
    size_t gc_checks;                           /* GCCHECKs in flight */
    struct rk_buf gcd;
    size_t gcd_head;
    bool gc_active; /* gc_man is being deleted */
    struct chunk_manifest gc_man;
    struct rk_buf gc_cur; /* gc_man's bytes */
    uint64_t gc_ts;
    uint32_t gc_next;
    size_t gc_inflight;
    /* failed block deletes to retry: {u64 due (0: unstamped), u64 ts,
     * u8 attempts, block key} */
    struct rk_buf gcr;
    size_t gcr_head, gcr_stamped;
    struct node__handoff ho; /* node_handoff.c */
    struct node__aae aae;    /* node_aae.c */
    struct node_stats st;
};

/* ---- node.c, for node_ops.c and node_hints.c ---- */
/* Turns the membership/swim actions in n->acts into node actions (call
 * after every membership or swim call: their views die with the next). */
void node__run_cl_actions(struct node *n);
/* A NODE_SEND of msg to `to` (id, may be NULL/"" with host), at host:port
 * when given, else at the membership's address of `to`. */
void node__send(struct node *n,
                const char *to,
                const char *host,
                uint16_t port,
                uint64_t req_id,
                const struct peer_msg *msg);
/* The action list of one call: cleared at its start, views fixed up at
 * its end (the arena may grow in between). */
void node__begin(struct node *n);
void node__finish(struct node *n);
struct node_action *node__push(struct node *n,
                               enum node_action_type type,
                               struct node__offs **offs);
/* Copies len bytes (plus a NUL when nul) into the arena: their offset,
 * or NODE_NO_OFF when out of memory. */
size_t node__arena_put(struct node *n, const void *p, size_t len, bool nul);
/* The targets of a write: degraded nodes (self included) count as down
 * (route.h); node__targets is the read view. */
void node__write_targets(const struct node *n,
                         const void *key,
                         size_t klen,
                         uint32_t nval,
                         struct route_targets *t);
/* Whether engine e failed (read-only: engine_stats) and so never
 * acknowledges more writes. */
bool node__engine_failed(struct engine *e);
/* The coordinating replica of a write, in the write view. */
size_t node__pick_coordinator(const struct node *n,
                              const struct route_targets *t);

/* A KV_GET of NODE_HINT_VIEW_PREFIX + key is answered from the hint
 * store: the merge of every hint this node holds for key, whatever its
 * owner (node__hint_view), so that tombstone reaping sees hints. */
#define NODE_HINT_VIEW_PREFIX     CHUNK_KEY_PREFIX "h"
#define NODE_HINT_VIEW_PREFIX_LEN (CHUNK_KEY_PREFIX_LEN + 1)

/* Serves a hint-view KV_GET (its key starts with NODE_HINT_VIEW_PREFIX)
 * into rep; rep's object is a view into n->valbuf. */
void node__hint_view(struct node *n,
                     const struct peer_kv_get *req,
                     struct peer_msg *rep);

/* Adds to a KV_GET's answer from the data (rep, RK_OK or RK_ENOTFOUND;
 * its object a view into n->valbuf) the hints this node holds for the
 * key, whatever their owner: a fallback that took a write for a down
 * owner answers a read it stands in for with that write, so that a
 * sloppy read quorum that meets the write's fallback sees the write
 * (the ioredis read-after-write finding of issue 13).  rep's object is
 * then a view into n->valbuf.  Does nothing when the hint store is
 * empty. */
void node__get_with_hints(struct node *n,
                          const struct peer_kv_get *req,
                          struct peer_msg *rep);

/* ---- node_chunkgc.c ---- */
/* replica_cfg.superseded: queues the blocks of a manifest a write
 * dropped. */
void node__gc_enqueue(void *data,
                      const void *key,
                      size_t klen,
                      struct dvv_dot dot,
                      const void *manifest,
                      size_t len,
                      uint64_t ts);
/* A GCCHECK answered (the coordinator's reply to its all-replica read). */
void node__gc_check_reply(struct node *n,
                          struct node__op *op,
                          const struct coord_reply *r);
/* Starts block deletes that are due (from node_on_tick). */
void node__gc_pump(struct node *n, uint64_t now_ms);
/* A block delete (op, its key in op->key) answered. */
void node__gc_done(struct node *n, const struct node__op *op, int status);
/* Starts one write of the node's own (a block delete); RK_OK or an
 * error (RK_EBUSY: no free operation). */
int node__start_own_write(struct node *n,
                          const void *key,
                          size_t klen,
                          uint64_t ts,
                          uint8_t attempt,
                          uint64_t now_ms);

/* ---- node_handoff.c ---- */
/* Frees the handoff state. */
void node__handoff_fini(struct node *n);
/* ---- node_handoff_ckpt.c: the receiver's checkpoint ---- */
/* A batch of x from s was merged: its cursor is the candidate. */
void node__ckpt_note(struct node__xfer *x, struct node__xfer_src *s);
/* Promotes durable candidates; saves the checkpoint (NODE_PERSIST,
 * NODE_FILE_HANDOFF) every 100 ms when it changed, and an empty
 * one once no transfer runs. */
void node__ckpt_round(struct node *n, uint64_t now_ms);
/* A transfer x just started: its sources resume from the saved
 * checkpoint of the same transition and partition, if any. */
void node__ckpt_resume(struct node *n, struct node__xfer *x);
/* The saved checkpoint (node_config.saved_handoff; may be empty).
 * RK_OK or RK_ENOMEM. */
int node__ckpt_load(struct node *n, const void *saved, size_t len);
/* Starts, advances and finishes transfers; marks received partitions. */
void node__handoff_round(struct node *n, uint64_t now_ms);
/* A FOLD or FETCH from `from` (this node as the sender). */
void node__handoff_on_request(struct node *n,
                              const char *from,
                              const struct peer_msg *m);
/* A FOLD_REPLY from `from` (this node as the receiver). */
void node__handoff_on_reply(struct node *n,
                            const char *from,
                            const struct peer_fold_reply *r,
                            uint64_t now_ms);

/* Merges a FOLD_REPLY's items (every key of x's partition) into the data
 * engine through the replica path, counting them in x: RK_OK, or the first
 * error (*got items merged before it). */
int node__handoff_merge(struct node *n,
                        struct node__xfer *x,
                        const struct peer_fold_reply *r,
                        uint32_t *got);

/* Refuses a FOLD or FETCH (req_id, of partition) from `from`: a
 * FOLD_REPLY with status, counted in handoff_folds_refused, and the event
 * logged with why (rate-limited to one line in 10 s). */
void node__handoff_refuse(struct node *n,
                          const char *from,
                          const char *event,
                          uint64_t req_id,
                          uint32_t partition,
                          int status,
                          const char *why);
/* Whether this node is a current replica of partition p. */
bool node__is_current_replica(const struct node *n, uint32_t p);
/* Steps every transfer and starts new ones now (not at the next round). */
void node__handoff_pump(struct node *n, uint64_t now_ms);
/* Whether handoff-max-mbps lets this node ask for more items now (a FOLD
 * batch or a verify's FETCH); refills the token bucket.  A false counts
 * in handoff_throttled. */
bool node__handoff_budget_ok(struct node *n, uint64_t now);

/* ---- node_handoff_verify.c ---- */
/* Sets the sources' modes of transfer x, just started (after the
 * checkpoint's resume): one folds, the others are verified against this
 * node's tree once it holds the fold, when both sides keep trees. */
void node__verify_init(struct node *n, struct node__xfer *x);
/* Advances x's verify step; called by xfer_step after its FOLD sources. */
void node__verify_step(struct node *n, struct node__xfer *x, uint64_t now_ms);
/* Replies that belong to a verify step (true: consumed). */
bool node__verify_on_tree_reply(struct node *n,
                                const char *from,
                                const struct peer_aae_tree_reply *r,
                                uint64_t now_ms);
bool node__verify_on_keys_reply(struct node *n,
                                const char *from,
                                const struct peer_aae_keys_reply *r,
                                uint64_t now_ms);
bool node__verify_on_fetch_reply(struct node *n,
                                 const char *from,
                                 const struct peer_fold_reply *r,
                                 uint64_t now_ms);
/* A FETCH from `from` (this node as a current replica). */
void node__handoff_on_fetch(struct node *n,
                            const char *from,
                            const struct peer_fetch *f);
/* Whether the asker `from` may compare trees of p with this node during
 * the transition: it is a pending owner of p and this node a current
 * replica. */
bool node__verify_asker_ok(const struct node *n, uint32_t p, const char *from);
/* The state shown for source j of x (node_transfers). */
const char *node__verify_src_state(const struct node__xfer *x, size_t j);

/* ---- node_aae.c ---- */
/* Leaves per tree for a ring of q partitions. */
uint32_t node__aae_leaves(uint32_t q);
/* Frees the anti-entropy state. */
void node__aae_fini(struct node *n);
/* replica_cfg.stored: a record of engine e changed (trees of n->data). */
void node__aae_stored(void *data,
                      struct engine *e,
                      const void *key,
                      size_t klen,
                      uint64_t old_hash,
                      uint64_t new_hash);
/* The hash of key's record in the data engine (0: none, or no trees):
 * read before a delete the node makes itself. */
uint64_t node__aae_record_hash(struct node *n, const void *key, size_t klen);
/* The node deleted key's record, whose hash was old_hash. */
void node__aae_deleted(struct node *n,
                       const void *key,
                       size_t klen,
                       uint64_t old_hash);
/* Builds trees, starts and times out exchanges, pumps repairs. */
void node__aae_round(struct node *n, uint64_t now_ms);
/* When node__aae_round wants to run next (UINT64_MAX: never). */
uint64_t node__aae_deadline(const struct node *n);
/* Peer messages. */
void node__aae_on_tree(struct node *n,
                       const char *from,
                       const struct peer_aae_tree *q,
                       uint64_t now_ms);
void node__aae_on_keys(struct node *n,
                       const char *from,
                       const struct peer_aae_keys *q);
void node__aae_on_tree_reply(struct node *n,
                             const char *from,
                             const struct peer_aae_tree_reply *r,
                             uint64_t now_ms);
void node__aae_on_keys_reply(struct node *n,
                             const char *from,
                             const struct peer_aae_keys_reply *r,
                             uint64_t now_ms);
/* One listed key (a view into an items buffer). */
struct node__aae_item
{
    const char *key;
    uint32_t klen;
    uint64_t hash;
};
/* Lists the keys of the given leaves (u32 LE) of p in this node's data
 * engine into out (cleared) as items (u32 klen, key, u64 record hash), up
 * to max_bytes (*truncated when some were left out). */
int node__aae_list_leaves(struct node *n,
                          uint32_t p,
                          const struct peer_bytes *leaves,
                          struct rk_buf *out,
                          size_t max_bytes,
                          uint32_t *count,
                          bool *truncated);
/* The leaf of a key in this node's trees (their size must be known). */
uint32_t node__aae_leaf_of_key(const struct node *n,
                               const void *key,
                               size_t klen);
/* Parses items into an array sorted by key (rk_free it): RK_OK, RK_EPROTO
 * or RK_ENOMEM. */
int node__aae_parse_items(const char *p,
                          size_t len,
                          struct node__aae_item **out,
                          size_t *cnt);
int node__aae_item_cmp(const void *a, const void *b);
/* A repair read answered. */
void node__aae_repair_reply(struct node *n,
                            struct node__op *op,
                            const struct coord_reply *r);
/* The oldest last exchange (completed here, or answered) over the
 * partitions this node replicates (UINT64_MAX: none); *never when one has
 * none. */
uint64_t node__aae_oldest_exchange_ms(const struct node *n, bool *never);

/* ---- node_ops.c ---- */
/* Logs a machine's CL_ACT_LOG text as event "cluster", msg quoted and
 * escaped (rk_log_quote): it may hold a peer's strings. */
void node__log_text(struct node *n, int level, const char *text);
/* False (counted in peer_spoofed, logged at most every 10 s) when msg, from
 * the peer that authenticated as `from`, speaks for another node: a
 * GOSSIP, PING or PING_REQ whose `from`, or a JOIN/REPLACE whose node id,
 * is not `from` (issue 15: a node speaks for itself only; an ACK may carry
 * another node's id, the target of a relayed probe). */
bool node__speaks_for_itself(struct node *n,
                             const char *from,
                             size_t from_len,
                             const struct peer_msg *msg,
                             uint64_t now);
/*
 * During an ownership transition (membership.h) a write also goes to the
 * key's pending owners, without counting toward W (issue 14 item 1): a
 * KV_PUT that wants no answer to each one that is up (self: merged here),
 * a hint for each one that is down.  What a lost message misses, the
 * pending owner's transfer brings when its fold reaches the key after it
 * arrived at the sources.  obj: the object's dvv encoding.  known: the
 * key's write targets when the caller has them, else NULL (computed).
 */
void node__forward_pending(struct node *n,
                           const void *key,
                           size_t klen,
                           const struct rk_buf *obj,
                           uint32_t timeout_ms,
                           const struct route_targets *known);
/*
 * Called after this node stored a change to key (any path: a replica
 * PUT or UPDATE, a hint delivered here).  When an ownership transition
 * runs and this node is a current replica of the key's partition that
 * is not in the next ring's (a *leaving owner*: its copy is dropped after
 * the switch), it passes obj on to each pending owner of the partition as
 * a hint in its hint store, delivered (and retried) by the hint rounds.
 * A pending owner's fold of this node may have passed the key already,
 * and the write's coordinator may not know the transition yet (so it
 * forwarded nothing) or its forward was lost: without this the write
 * lived only here and went with the drop (the simulator's I9, seed 744
 * of --spares 2: a superseding write lost this way left a manifest whose
 * blocks it had deleted).  Riak's old vnode forwards the same way after
 * its handoff.  Returns whether it relayed (the caller then acknowledges
 * only once the hint store is durable too).  obj: the object's dvv
 * encoding (a view).
 */
bool node__relay_if_leaving(struct node *n,
                            const void *key,
                            size_t klen,
                            const void *obj,
                            size_t olen);
/* Routes a coordinator REPLY to the operation owning its cookie. */
void node__on_coord_reply(struct node *n, const struct coord_reply *r);
/* Starts the PUT phase of writes whose UPDATE answered. */
void node__process_ready(struct node *n, uint64_t now_ms);
struct node__op *node__op_get(struct node *n, enum node__op_kind kind);
void node__op_put(struct node *n, struct node__op *op);
void node__drain(struct node *n, uint64_t now_ms);
bool node__is_up_or_self(const struct node *n, const char *id);
void node__targets(const struct node *n,
                   const void *key,
                   size_t klen,
                   uint32_t nval,
                   struct route_targets *t);
void node__log(struct node *n,
               int level,
               const char *event,
               const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));
void node__note_write(struct node *n, uint64_t seq);

/* ---- node_hints.c ---- */
/* Whether a KV_PUT / KV_UPDATE names an owner other than this node. */
bool node__is_hinted(const struct node *n, struct peer_bytes hint_for);
/* KV_PUT for another owner: merged into its hint; *rep a KV_PUT_REPLY.
 * *wait (may be NULL): the hint store sequence to be durable before the
 * reply may count (0 = none). */
void node__hint_store(struct node *n,
                      const struct peer_kv_put *put,
                      struct peer_msg *rep,
                      uint64_t *wait);
/* KV_UPDATE at a fallback: applied to the hint; *rep a KV_UPDATE_REPLY
 * viewing n->valbuf (answered at once, like a replica's: under
 * sync=always the coordinator counts it through the KV_PUT that
 * follows). */
void node__hint_update(struct node *n,
                       const struct peer_kv_update *up,
                       struct peer_msg *rep);
/* A coordinator-side hint for a down owner without a stand-in. */
void node__hint_for_down(struct node *n,
                         const char *owner,
                         const void *key,
                         size_t klen,
                         const struct rk_buf *obj);
/* The delivery and reaping rounds (node_on_tick). */
void node__hints_round(struct node *n, uint64_t now_ms);
void node__reap_round(struct node *n, uint64_t now_ms);
/* The coordinator answered a HINT / REAP operation. */
void node__hint_reply(struct node *n,
                      struct node__op *op,
                      const struct coord_reply *r);
void node__reap_reply(struct node *n,
                      struct node__op *op,
                      const struct coord_reply *r);

#endif /* RINGKV_CLUSTER_NODE_INTERNAL_H */
