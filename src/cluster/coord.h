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
 * 4.5 and 4.6).  Until issue 5 replicas order the writes of a key by the
 * coordinator's HLC timestamp (last writer wins, replica.h), and a read
 * returns the newest version among the R answers (replica_version_cmp).
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
 *       start_put / start_get                 (RK_EBUSY when table full)
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
 *      create for the largest event, so no event fails for want of room;
 *      the only allocations after create are a start's copy of its key,
 *      value and targets, and a read's copy of its newest value (whose
 *      failure is answered with RK_ENOMEM, C1 still holding).
 *
 * How issue 5 extends this (nothing of it is built here):
 *   - Versions: KV_PUT carries a DVV object (siblings with causal context)
 *     instead of (value, timestamp), and KV_GET_REPLY returns one.  The
 *     read slot's "best version" (one value + HLC timestamp, chosen with
 *     replica_version_cmp) becomes a merged DVV object (dvv_merge of every
 *     answer), and REPLY carries the siblings; GET picks the newest sibling
 *     at the server, RINGKV.GETALL returns them all.
 *   - Read repair: after the REPLY, a read slot stays in a new LINGER state
 *     (not WAITING, so C1 holds) until a bounded repair deadline, keeps
 *     collecting the stragglers, and then emits SEND KV_PUT of the merged
 *     object to every target that answered with an older version or none.
 *     The per-target answer bitmask and the deadline list already support
 *     this; coord_tick would handle LINGER deadlines too.
 *   - Sloppy quorum: today the caller passes N reachable targets.  Issue 5
 *     passes each target with its intended owner: a fallback standing in
 *     for a down owner gets KV_PUT.hint_for = owner id (the field is
 *     already on the wire, empty here), and a target that fails or times
 *     out individually may be replaced by the next fallback (a new SEND in
 *     the same slot) before the request gives up.
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
    COORD_OP_PUT = 1, /* a write or a delete (tombstone) */
    COORD_OP_GET = 2,
};

enum coord_action_type
{
    COORD_SEND = 1,
    COORD_LOCAL_PUT = 2,
    COORD_LOCAL_GET = 3,
    COORD_REPLY = 4,
};

/* The answer for one client request. */
struct coord_reply
{
    uint64_t cookie; /* the client's, from coord_start_* */
    uint64_t req_id; /* the request's id */
    enum coord_op op;
    int status;         /* RK_OK; RK_ENOTFOUND (get: no version, or the
                           newest is a tombstone); RK_ENOQUORUM; RK_ENOMEM
                           (get: could not keep a value) */
    uint32_t successes; /* distinct targets that answered successfully */
    uint32_t failures;  /* distinct targets that failed */
    uint32_t need;      /* W or R */
    uint32_t n_targets; /* N */
    bool timed_out;     /* RK_ENOQUORUM by the deadline (else early) */
    int first_error;    /* status of the first failing target, RK_OK if
                           none (for logs) */
    /* Get with RK_OK, or RK_ENOTFOUND because of a tombstone (found is
       then true and tombstone true): the newest version among the answers.
       value is a view valid until the next coord_* call (C6). */
    bool found;
    bool tombstone;
    struct peer_bytes value;
    uint64_t timestamp;    /* HLC of that version */
    uint64_t expire_at_ms; /* absolute Unix ms, 0 = none; the server
                              applies lazy expiry to it */
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
       PEER_KV_GET.  Byte strings are views (C6). */
    struct peer_msg msg;
    struct coord_reply reply; /* REPLY only */
};

/* A write or delete to coordinate. */
struct coord_put_req
{
    const void *key; /* 1..PEER_MAX_KEY bytes (the engine refuses
                        empty keys) */
    size_t klen;
    const void *value; /* 0..PEER_MAX_VALUE bytes; none for a
                          tombstone */
    size_t vlen;
    uint64_t timestamp;         /* HLC from the caller's clock */
    uint64_t expire_at_ms;      /* absolute Unix ms, 0 = none; 0 for a
                                   tombstone */
    bool tombstone;             /* a delete */
    const char *const *targets; /* node ids, NUL-terminated,
                                   1..PEER_MAX_NODE_ID bytes, distinct */
    size_t n_targets;           /* N: 1..COORD_MAX_TARGETS */
    uint32_t w;                 /* 1..n_targets */
    uint32_t timeout_ms;        /* > 0 */
    uint64_t cookie;            /* opaque client handle, echoed in REPLY */
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
 * Starts a write: actions SEND KV_PUT to every remote target and
 * LOCAL_PUT when self is a target (SENDs first, in target order).  The
 * REPLY comes from a later event: RK_OK after w successful acks (a
 * replica that kept a newer version still acks RK_OK), RK_ENOQUORUM at the
 * deadline or as soon as w acks became impossible.
 *   req_id: receives the request's id (may be NULL).
 * Errors (no actions, nothing kept): RK_EINVAL (a field out of range, an
 * invalid or duplicate target, a tombstone with a value or an expiry, an
 * expiry of UINT64_MAX), RK_EBUSY (max_inflight requests in flight),
 * RK_ENOMEM.  Ownership: req and everything it points to are borrowed
 * (key, value and ids are copied).  Complexity: O(N * (N + id length) +
 * klen + vlen).
 */
int coord_start_put(struct coord *c,
                    const struct coord_put_req *req,
                    uint64_t now_ms,
                    uint64_t *req_id);

/*
 * Starts a read: SEND KV_GET / LOCAL_GET to the targets.  The REPLY comes
 * after r successful answers (RK_ENOTFOUND from a replica is a successful
 * answer): RK_OK with the newest version by replica_version_cmp, or
 * RK_ENOTFOUND when no answer had a version or the newest is a tombstone;
 * RK_ENOQUORUM as for writes.  Errors and ownership as coord_start_put.
 */
int coord_start_get(struct coord *c,
                    const struct coord_get_req *req,
                    uint64_t now_ms,
                    uint64_t *req_id);

/*
 * A peer message from node `from`/`from_len` (the transport knows who sent
 * it).  KV_PUT_REPLY and KV_GET_REPLY count as answers; PEER_ERROR with a
 * req_id counts as a failure of that target.  Anything else, unknown or
 * finished req ids, non-targets and duplicates are ignored (C2, C5).  The
 * message's byte strings are borrowed for the call (a winning value is
 * copied).  Never fails.
 */
void coord_on_reply(struct coord *c,
                    const char *from,
                    size_t from_len,
                    const struct peer_msg *m,
                    uint64_t now_ms);

/* The result of a LOCAL_PUT / LOCAL_GET, as the reply message that
 * replica_handle_put / replica_handle_get built: coord_on_reply from self. */
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
 * <= now_ms.  Returns coord_next_deadline_ms().  Complexity: O(expired).
 */
uint64_t coord_tick(struct coord *c, uint64_t now_ms);

/* Earliest deadline of a request in flight, COORD_NO_DEADLINE if none. */
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
