/*
 * coord.h - the sans-IO quorum coordinator (DESIGN.md sections 1 and 4;
 * issue 4 item 5).
 *
 * The node that receives a data command coordinates it: it sends the
 * operation to the key's N preference-list nodes and answers the client
 * after W acknowledgements (writes) or R answers (reads), or with
 * NOQUORUM once the request timeout passes or success has become
 * impossible.  This is the quorum scheme of Dynamo (DeCandia et al.,
 * "Dynamo: Amazon's Highly Available Key-value Store", SOSP 2007, sections
 * 4.5 and 4.6), with versioned objects (cluster/dvv.h, below).
 *
 * Sans-IO (STYLE.md 1.6): the coordinator is fed events (a client request,
 * a peer reply, a local storage result, a transport failure, a timer tick,
 * a client gone), each carrying `now_ms`, a monotonic millisecond clock of
 * the caller's choosing (deadlines are now_ms + timeout_ms).  Each event
 * call replaces the coordinator's action list, which the caller reads with
 * coord_actions() and must consume before the next call:
 *
 *   COORD_SEND       encode `msg` (KV_PUT or KV_GET) and send it to `node`;
 *                    a transport failure is fed back with coord_on_failure.
 *   COORD_LOCAL_PUT  this node is a target: apply `msg.kv_put` to the local
 *                    engine (replica_handle_put) and feed the KV_PUT_REPLY
 *                    back with coord_on_local_result (after durability if
 *                    the sync policy asks for it), once the rest of this
 *                    list has been consumed (feeding it ends the list).
 *   COORD_LOCAL_GET  the same for `msg.kv_get` (replica_handle_get).
 *   COORD_LOCAL_UPDATE the same for `msg.kv_update` (replica_handle_update).
 *   COORD_REPLY      answer the client identified by `reply.cookie`.
 *
 * There is no "arm timer" action: after every event the caller re-arms its
 * one timer at coord_next_deadline_ms() (coord_tick returns it too).  The
 * coordinator never reads a clock, opens a socket, draws libc randomness
 * or touches the engine.
 *
 * The model follows cluster/actions.h (views valid until the next call
 * into the machine, _next_deadline_ms + _tick timers) but uses its own
 * action type: struct cl_action has no client-reply or local-storage
 * action, its list holds CL_ACTIONS_CAP (32) actions per call while one
 * tick may expire every request in flight and one start sends to up to
 * COORD_MAX_TARGETS nodes, and the coordinator's actions need no fixed
 * host/text arrays.  SEND means the same as CL_ACT_SEND.
 *
 * Request life (one slot of the bounded in-flight table per request):
 *
 *   start_put / start_get / start_update      (RK_EBUSY when table full)
 *   FREE ----------------------> WAITING --- emits SEND/LOCAL_* to targets
 *    ^                             |  on_reply / on_local_result /
 *    |                             |  on_failure: count success / failure
 *    |                             |
 *    |          successes == need  |  on_reply, on_local_result:
 *    |                             +--> REPLY(RK_OK / RK_ENOTFOUND) ---+
 *    |   successes + not-yet-      |                                    |
 *    |   answered < need           |  on_reply, on_local_result,        |
 *    |                             +--> on_failure: REPLY(NOQUORUM) ----+
 *    |   now_ms >= deadline_ms     |  coord_tick (or any event for this |
 *    |                             +--> request): REPLY(NOQUORUM) ------+
 *    |   client gone               |  cancel: no reply                  |
 *    |                             +------------------------------------+
 *    |                                                                  v
 *    +---------- next event call (reaps; req_id is never reused) -- RETIRED
 *                                                                       ^
 *   a GET with repair_wait_ms > 0 goes from its REPLY(RK_OK or          |
 *   RK_ENOTFOUND) to LINGER (still holding its table slot)              |
 *   instead; every target answered or failed, or the wait is over:      |
 *   SEND/LOCAL_PUT read repairs to the stale targets ------------------+
 *
 * Invariants:
 *   C1 every started request gets exactly one REPLY action, unless it is
 *      cancelled first (then none);
 *   C2 a REPLY with RK_OK or RK_ENOTFOUND is emitted only once `need` (W or
 *      R) distinct targets answered successfully, each target counted at
 *      most once (duplicates, and replies from nodes that are not targets,
 *      are ignored);
 *   C3 no REPLY is emitted for a request at or after its deadline except
 *      RK_ENOQUORUM, and coord_tick(now_ms >= deadline_ms) emits it exactly
 *      then (a success arriving at now_ms >= deadline_ms is too late);
 *   C4 once success is impossible (failures > targets - need) the REPLY is
 *      RK_ENOQUORUM at once, without waiting for the deadline;
 *   C5 replies for unknown, finished or cancelled req ids are ignored; a
 *      req_id is never reused, so a late reply never touches a new request;
 *   C6 byte views in actions (keys, values, node ids) stay valid until the
 *      next call into the coordinator: finished slots are freed only at
 *      the start of the next event call;
 *   C7 in-flight requests <= max_inflight; the action list is sized at
 *      create for the largest event's required actions (REPLYs and one
 *      start's sends), so no REPLY is ever lost for want of room; read
 *      repairs are optional and grow the list, skipped when that fails;
 *      the other allocations after create are a start's copy of its key,
 *      object and targets, and a read's merged object (whose failure is
 *      answered with RK_ENOMEM, C1 still holding).
 *
 * Versions (issue 5).  Objects travel as opaque canonical encodings
 * (cluster/dvv.h); the coordinator decodes only read answers:
 *   - GET merges every successful answer with dvv_merge and REPLYs with
 *     the merged object's encoding.  With repair_wait_ms > 0 the slot then
 *     LINGERs (not WAITING, so C1 holds; it still takes answers) until
 *     every target asked answered or failed, or repair_wait_ms passed (at
 *     most until the request's own deadline), and then
 *     emits read repair: SEND KV_PUT {req_id 0, merged} to every target
 *     whose answer differed from the final merged object (an older
 *     version, or none), and LOCAL_PUT when self is one of them.
 *   - A GET with fanout < N asks only `fanout` targets (self first) and
 *     widens on a failure or after speculative_ms; a reply from a target
 *     not asked is a stranger's.  Read repair then covers the targets
 *     asked: the others are left to hinted handoff and anti-entropy (the
 *     caller asks all N on a share of reads, read_repair_chance).
 *   - UPDATE sends one client write (KV_UPDATE) to the coordinating
 *     replica, which issues the dot, and REPLYs with the resulting object.
 *   - PUT sends an object to the key's targets (KV_PUT), each with its own
 *     hint_for (a fallback standing in for a down owner keeps it as a
 *     hint), and counts acknowledgements; a target that already holds the
 *     object (the coordinating replica) may be counted at start (`acked`).
 *
 * Thread: one (the event loop); the coordinator is not thread-safe.
 * Memory: rk_malloc/rk_free.
 */
#ifndef RINGKV_CLUSTER_COORD_H
#define RINGKV_CLUSTER_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/peer.h"

#define COORD_MAX_TARGETS        64         /* N at most (a 64-bit mask) */
#define COORD_MAX_INFLIGHT       (1u << 20) /* largest table */
#define COORD_DEFAULT_INFLIGHT   4096       /* suggested table size */
#define COORD_DEFAULT_TIMEOUT_MS 2000       /* issue 4: request timeout */
#define COORD_NO_DEADLINE        UINT64_MAX /* nothing in flight */
#define COORD_MESSAGE_MAX        96         /* bytes of coord_reply.message */

struct coord; /* opaque */

enum coord_op
{
    COORD_OP_PUT = 1,    /* an object to the replicas (replication) */
    COORD_OP_GET = 2,    /* a quorum read */
    COORD_OP_UPDATE = 3, /* a client write at the coordinating replica */
};

enum coord_action_type
{
    COORD_SEND = 1,
    COORD_LOCAL_PUT = 2,
    COORD_LOCAL_GET = 3,
    COORD_REPLY = 4,
    COORD_LOCAL_UPDATE = 5,
};

/* The answer for one client request. */
struct coord_reply
{
    uint64_t cookie; /* the client's, from coord_start_* */
    uint64_t req_id; /* the request's id */
    enum coord_op op;
    int status;         /* RK_OK; RK_ENOTFOUND (get: no answer had an
                           object; a tombstone is an object: RK_OK);
                           RK_ENOQUORUM; RK_ENOMEM (could not keep an
                           object); update: the replica's own refusal
                           (RK_EINVAL, RK_EREADONLY, ...) */
    uint32_t successes; /* distinct targets that answered successfully */
    uint32_t failures;  /* distinct targets that failed */
    uint32_t need;      /* W or R */
    uint32_t n_targets; /* N */
    bool timed_out;     /* RK_ENOQUORUM by the deadline (else early) */
    int first_error;    /* status of the first failing target, RK_OK if
                           none (for logs) */
    /* GET with RK_OK: the merged object of the answers (RK_ENOTFOUND:
       no answer had one); UPDATE with RK_OK: the object after the write.
       A canonical dvv encoding, a view valid until the next coord_* call
       (C6). */
    bool found;
    struct peer_bytes object;
    /* GET: every successful answer so far was RK_ENOTFOUND or exactly the
       merged object (what tombstone reaping needs to know). */
    bool uniform;
    /* GET: how many distinct targets answered with an object (not
       RK_ENOTFOUND); with uniform and successes, whether every replica
       holds the same object (a chunk GC check, node_chunkgc.c). */
    uint32_t with_object;
    /* For RK_ENOQUORUM: "NOQUORUM reached X of W" (no CR/LF, no leading
       '-'; early failures add "(F of N replicas failed)"); else "". */
    char message[COORD_MESSAGE_MAX];
};

/* One thing for the caller to do. */
struct coord_action
{
    enum coord_action_type type;
    /* SEND: destination node id (a view, C6); LOCAL_*: this node's id. */
    const char *node;
    size_t node_len;
    /* SEND, LOCAL_PUT: msg.type == PEER_KV_PUT; SEND, LOCAL_GET:
       PEER_KV_GET; SEND, LOCAL_UPDATE: PEER_KV_UPDATE.  A KV_PUT with
       req_id 0 is a read repair: apply it, answer nothing.  Byte strings
       are views (C6). */
    struct peer_msg msg;
    struct coord_reply reply; /* REPLY only */
};

/* An object to send to the replicas of a key. */
struct coord_put_req
{
    const void *key; /* 1..PEER_MAX_KEY bytes */
    size_t klen;
    const void *object; /* canonical dvv encoding, 1.. bytes (not checked
                           here: replicas decode it) */
    size_t olen;
    const char *const *targets;  /* node ids, NUL-terminated,
                                    1..PEER_MAX_NODE_ID bytes, distinct */
    size_t n_targets;            /* N: 1..COORD_MAX_TARGETS */
    const char *const *hint_for; /* NULL, or per target the owner id a
                                    fallback stands in for (NULL: none) */
    int acked;                   /* index of a target counted as a success
                                    at once (it already holds the object),
                                    or -1 (set it: 0 is target 0) */
    uint32_t w;                  /* 1..n_targets */
    uint32_t timeout_ms;         /* > 0 */
    uint64_t cookie;             /* opaque client handle, echoed in REPLY */
};

/* A read to coordinate. */
struct coord_get_req
{
    const void *key; /* 1..PEER_MAX_KEY bytes */
    size_t klen;
    const char *const *targets;
    size_t n_targets; /* N: 1..COORD_MAX_TARGETS */
    uint32_t r;       /* 1..n_targets */
    uint32_t timeout_ms;
    uint32_t repair_wait_ms;     /* read repair: 0 = off, else how long to
                                    wait for stragglers after the REPLY */
    const char *const *hint_for; /* NULL, or per target the owner a
                                    fallback stands in for: its read
                                    repair carries it as KV_PUT.hint_for */
    uint64_t cookie;
    /* How many targets to ask at once (Cassandra's read path: ask the
       consistency level's replicas, not all N): 0 or >= n_targets asks
       every target; otherwise the first `fanout` in the order self, then
       target order.  Each failure of an asked target asks the next one
       while r answers are still missing.  fanout < r is raised to r. */
    uint32_t fanout;
    /* With fanout below N: after this many ms without r answers, ask
       every target not asked yet (Cassandra's speculative retry).
       0 = never (only failures widen the read). */
    uint32_t speculative_ms;
};

/* A client write for the coordinating replica `target`. */
struct coord_update_req
{
    const void *key; /* 1..PEER_MAX_KEY bytes */
    size_t klen;
    const void *context; /* dvv encoding of a clock, or NULL/0 */
    size_t clen;
    const void *value; /* 0..PEER_MAX_VALUE bytes; none for a tombstone */
    size_t vlen;
    uint64_t timestamp;    /* HLC */
    uint64_t expire_at_ms; /* absolute Unix ms, 0 = none */
    uint32_t flags;        /* PEER_KV_UPDATE_FLAGS */
    const char *target;    /* node id, 1..PEER_MAX_NODE_ID bytes */
    const char *hint_for;  /* with PEER_KV_FALLBACK: the owner, else NULL */
    uint32_t timeout_ms;
    uint64_t cookie;
};

/* Counters since create (for INFO and tests). */
struct coord_stats
{
    uint64_t started;
    uint64_t replied_ok;       /* RK_OK and RK_ENOTFOUND */
    uint64_t noquorum_timeout; /* RK_ENOQUORUM at the deadline */
    uint64_t noquorum_early;   /* RK_ENOQUORUM, success impossible */
    uint64_t replied_error;    /* other statuses (RK_ENOMEM) */
    uint64_t cancelled;
    uint64_t busy;              /* starts refused with RK_EBUSY */
    uint64_t ignored_unknown;   /* replies for unknown or finished ids */
    uint64_t ignored_duplicate; /* a target answering twice */
    uint64_t ignored_stranger;  /* from a node that is not a target, or
                                   of the wrong message type */
    uint64_t read_repairs;      /* objects sent by read repair */
    uint64_t bad_answers;       /* read answers that did not decode */
    uint64_t reads_partial;     /* reads started asking fewer than N */
    uint64_t read_widened;      /* targets asked later: after a failure
                                   or by a speculative retry */
    uint64_t speculative;       /* speculative retries fired */
};

/*
 * Creates a coordinator.
 *   self_id: this node's id, NUL-terminated, 1..PEER_MAX_NODE_ID bytes
 *     (copied); targets equal to it become LOCAL_* actions.
 *   max_inflight: table slots, 1..COORD_MAX_INFLIGHT.
 *   out: returned-owned, free with coord_destroy; untouched on error.
 * Errors: RK_EINVAL, RK_ENOMEM.  Complexity: O(max_inflight).
 */
int coord_create(const char *self_id, size_t max_inflight, struct coord **out);

/*
 * Frees the coordinator and every request in flight (no REPLY actions are
 * produced: the caller is shutting down).  NULL is a no-op.
 */
void coord_destroy(struct coord *c);

/*
 * Starts a replication: SEND KV_PUT to every remote target (except
 * `acked`) and LOCAL_PUT when self is a target, SENDs first in target
 * order.  The REPLY comes after w successes (RK_OK; `acked` counts at
 * once, so w == 1 with acked >= 0 replies in this call), or RK_ENOQUORUM
 * at the deadline or as soon as w successes became impossible.
 *   req_id: receives the request's id (may be NULL).
 * Errors (no actions, nothing kept): RK_EINVAL (a field out of range, an
 * invalid or duplicate target), RK_EBUSY (max_inflight slots taken by
 * requests in flight and reads lingering for read repair), RK_ENOMEM.
 * Ownership: req and everything it points to are borrowed (copied). Complexity:
 * O(N * (N + id length) + klen + olen).
 */
int coord_start_put(struct coord *c,
                    const struct coord_put_req *req,
                    uint64_t now_ms,
                    uint64_t *req_id);

/*
 * Starts a read: SEND KV_GET / LOCAL_GET to the targets.  The REPLY comes
 * after r successful answers (RK_ENOTFOUND from a replica is a successful
 * answer): RK_OK with the merged object, or RK_ENOTFOUND when no answer
 * had one; RK_ENOQUORUM as for puts.  An answer whose object does not
 * decode counts as a failure of that target.  Read repair as above.
 * Errors and ownership as coord_start_put.
 */
int coord_start_get(struct coord *c,
                    const struct coord_get_req *req,
                    uint64_t now_ms,
                    uint64_t *req_id);

/*
 * Starts a client write at the coordinating replica: SEND KV_UPDATE, or
 * LOCAL_UPDATE when the target is self.  REPLY: RK_OK with the object,
 * the replica's error status, or RK_ENOQUORUM ("reached 0 of 1") when it
 * failed or timed out.  Errors and ownership as coord_start_put.
 */
int coord_start_update(struct coord *c,
                       const struct coord_update_req *req,
                       uint64_t now_ms,
                       uint64_t *req_id);

/*
 * A peer message from node `from`/`from_len` (the transport knows who sent
 * it).  KV_PUT_REPLY and KV_GET_REPLY count as answers; PEER_ERROR with a
 * req_id counts as a failure of that target.  Anything else, unknown or
 * finished req ids, non-targets and duplicates are ignored (C2, C5).  The
 * message's byte strings are borrowed for the call (an object is
 * copied).  Never fails.
 */
void coord_on_reply(struct coord *c,
                    const char *from,
                    size_t from_len,
                    const struct peer_msg *m,
                    uint64_t now_ms);

/* The result of a LOCAL_PUT / LOCAL_GET / LOCAL_UPDATE, as the reply
 * message replica_handle_* built: coord_on_reply from self. */
void coord_on_local_result(struct coord *c,
                           const struct peer_msg *m,
                           uint64_t now_ms);

/*
 * The transport could not deliver request `req_id` to `node` (connection
 * down, send queue full): counts as a failure of that target with
 * `status` (< 0).  Ignored like a reply when it does not apply.
 */
void coord_on_failure(struct coord *c,
                      uint64_t req_id,
                      const char *node,
                      size_t node_len,
                      int status,
                      uint64_t now_ms);

/*
 * Timer: answers RK_ENOQUORUM for every request whose deadline is
 * <= now_ms, and ends the read-repair wait of lingering reads whose wait
 * is over (emitting their repairs).  Returns coord_next_deadline_ms().
 * Complexity: O(expired).
 */
uint64_t coord_tick(struct coord *c, uint64_t now_ms);

/* Earliest deadline of a request in flight or a lingering read,
 * COORD_NO_DEADLINE if none. */
uint64_t coord_next_deadline_ms(const struct coord *c);

/*
 * The client behind `cookie` went away: drops all its requests in flight
 * without a REPLY; their late replies are ignored.  Returns how many.
 * Complexity: O(in flight).
 */
size_t coord_cancel(struct coord *c, uint64_t cookie);

/*
 * The actions of the last event call: *out points to `return value` of
 * them, valid until the next call into the coordinator (C6).
 */
size_t coord_actions(const struct coord *c, const struct coord_action **out);

/* Requests in flight (WAITING). */
size_t coord_inflight(const struct coord *c);

/* Copies the counters into *st. */
void coord_stats(const struct coord *c, struct coord_stats *st);

#endif /* RINGKV_CLUSTER_COORD_H */
