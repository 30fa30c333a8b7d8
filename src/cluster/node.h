/*
 * node.h - the whole cluster node as one sans-IO machine (DESIGN.md 2a;
 * issue 11 item 1): membership and gossip (membership.h), failure
 * detection (swim.h), the quorum coordinator (coord.h), the replica side
 * (replica.h) over the node's storage engine, routing with sloppy quorum
 * (route.h), hinted handoff, tombstone reaping, and the durable-ack rules.
 *
 * It is fed events, each with `now_ms` (a monotonic clock of the
 * driver's choosing):
 *   node_on_message        a peer message arrived (the transport knows who
 *                          sent it)
 *   node_on_peer_up/down   the transport (re)connected to / lost a peer
 *   node_on_send_failed    a SEND could not be handed to the transport
 *   node_on_tick           timers: call at node_next_deadline_ms() (early
 *                          or late is harmless)
 *   node_on_durable        the data engine's durable sequence moved
 *   node_read/node_write   a client operation on one key (the command
 *                          layer above turns commands into these)
 *   node_cancel            the client behind a cookie went away
 *   node_join/leave/remove/create_cluster  operator commands
 * and answers with actions, read after each call with node_actions():
 *   NODE_SEND           hand `frame` (a whole encoded peer frame,
 *                       proto/peer.h) to the transport for node `to` (at
 *                       host:port when given; otherwise the membership's
 *                       address of `to`); if that fails at once, call
 *                       node_on_send_failed(to, req_id, status)
 *   NODE_REPLY          a client operation finished (struct node_result)
 *   NODE_PERSIST        write `bytes` atomically to the file `file`
 *                       (NODE_FILE_STATE: the cluster state, fed back to
 *                       node_create on restart; NODE_FILE_VERSIONED: the
 *                       marker that keys are versioned objects;
 *                       NODE_FILE_HANDOFF: the handoff checkpoint, fed
 *                       back as saved_handoff)
 *   NODE_JOIN_DONE      the join of node_join completed
 *   NODE_JOIN_FAILED    the join ended with `status` and `text`
 *   NODE_LOG            a line to log: `level` (RK_LOG_*), `event`, `text`
 *                       (logfmt fields)
 * Byte views in actions (frame, bytes, object, text) are owned by the node
 * and valid until the next call into it (any call).  A local replica is a
 * peer whose messages do not cross a socket: the node applies requests it
 * coordinates for itself through the same replica code, without actions.
 *
 * Storage is reached through the injected engine interface
 * (storage/engine.h): synchronous reads and writes, durability observed
 * through engine_durable_seq and node_on_durable.  Time comes only as
 * now_ms and from env->wall_ms (HLC and expiry comparisons).
 *
 * Invariants:
 *   N1 every node_read/node_write that returned RK_OK gets exactly one
 *      NODE_REPLY with its op id, unless its cookie is cancelled first;
 *   N2 under sync=always (cfg.sync_always) a write is acknowledged to the
 *      coordinator, local or remote, only once the engine (or the hint
 *      store, for a hinted write) has it durable;
 *   N3 every path that moves an object (replica apply, read repair, hint
 *      delivery, coordinator hints) merges (dvv_merge via replica.h) and
 *      never overwrites;
 *   N4 a tombstone is reaped only after the grace and once every one of its
 *      N primaries is up and answered with nothing or exactly that object.
 *
 * Thread: one (the driver's loop); nothing here is thread-safe.
 * Memory: rk_malloc/rk_free.
 */
#ifndef RINGKV_CLUSTER_NODE_H
#define RINGKV_CLUSTER_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/actions.h"
#include "cluster/coord.h"
#include "cluster/membership.h"
#include "cluster/replica.h"
#include "cluster/route.h"
#include "cluster/swim.h"
#include "common/env.h"
#include "proto/peer.h"
#include "storage/engine.h"

#define NODE_DEFAULT_OPS   16384 /* coordinator slots */
#define NODE_MESSAGE_MAX   160   /* bytes of node_result.message */
#define NODE_HINT_ROUND_MS 100   /* hint delivery scan interval */
/* A read or write of a large value gets 1 ms more than its timeout per
 * this many bytes (of the value written, or of this node's copy of the
 * key read), in each of its phases. */
#define NODE_SIZE_ALLOWANCE_BYTES (32u * 1024u)
/* node_storage_reason before the driver named one */
#define NODE_STORAGE_READ_ONLY "storage engine is read-only"

/* Replication and versioning settings (CONFIG SET may change them). */
struct node_settings
{
    struct route_quorum quorum; /* configured N/R/W (clamped to members) */
    bool sloppy_quorum;         /* fallbacks stand in for down primaries */
    uint32_t request_timeout_ms;
    uint32_t read_repair_wait_ms; /* 0 = no read repair */
    /* Reads ask R replicas (the local one first) and widen on a failure;
       this share of reads, in 1/1000, asks all N so that read repair
       reaches every replica (Cassandra's read_repair_chance).  1000 =
       every read asks all N. */
    uint32_t read_repair_permille;
    uint32_t handoff_drop_grace_ms; /* a partition that moved away is
                                       dropped here this long after the
                                       transition finished (issue 14) */
    uint32_t handoff_concurrency;   /* partitions this node receives at
                                       once: 1..NODE_HANDOFF_XFERS (8);
                                       0 = the default, 2 */
    uint32_t handoff_max_kbps;      /* bytes/s / 1024 this node receives
                                       in handoff at most; 0 = no limit */
    uint32_t speculative_retry_ms;  /* a read still short of R after this
                                       asks the other replicas; 0 = only
                                       on failures */
    bool sync_always;               /* acknowledge writes only when durable */
    bool lww;                       /* conflict_policy = lww */
    size_t max_siblings;            /* 0 = no bound */
    uint64_t tombstone_grace_ms;
    uint64_t max_clock_skew_ms;
    /* active anti-entropy (issue 14 item 4; node_aae.c) */
    bool aae_enabled;                  /* keep trees and exchange them */
    uint32_t aae_exchange_interval_ms; /* between exchange starts */
    uint32_t aae_concurrency;          /* exchanges at once, 1..4 */
    uint32_t aae_repair_rate;          /* keys repaired per second, >= 1 */
};

/* Anti-entropy defaults (docs/cluster.md "Active anti-entropy"). */
#define NODE_AAE_DEFAULT_INTERVAL_MS 1000
#define NODE_AAE_DEFAULT_CONCURRENCY 1
#define NODE_AAE_DEFAULT_REPAIR_RATE 5000

struct node_config
{
    const char *node_id;          /* ring_member_id_is_valid; copied */
    struct membership_config mem; /* node_id there is ignored */
    const void *saved_state;      /* NODE_FILE_STATE bytes, or NULL */
    size_t saved_len;
    const void *saved_handoff; /* NODE_FILE_HANDOFF bytes, or NULL */
    size_t saved_handoff_len;
    struct swim_config swim; /* node_id there is ignored */
    uint64_t actor;          /* dvv actor of this run (dvv.h) */
    bool versioned;          /* the NODE_FILE_VERSIONED marker */
    struct node_settings settings;
    struct engine *data;  /* borrowed; outlives the node */
    struct engine *hints; /* borrowed hint store; outlives it */
    struct rk_env *env;   /* borrowed; wall clock */
    size_t max_ops;       /* 0 = NODE_DEFAULT_OPS */
};

enum node_action_type
{
    NODE_SEND = 1,
    NODE_REPLY,
    NODE_PERSIST,
    NODE_JOIN_DONE,
    NODE_JOIN_FAILED,
    NODE_LOG,
};

enum node_file
{
    NODE_FILE_STATE = 1,
    NODE_FILE_VERSIONED,
    NODE_FILE_HANDOFF, /* the receiver's handoff checkpoint (may be
                          empty), fed back as node_config.saved_handoff */
};

enum node_op_kind
{
    NODE_OP_READ = 1,
    NODE_OP_WRITE = 2,
};

/* The result of one client operation. */
struct node_result
{
    uint64_t cookie; /* the client's, from the request */
    uint64_t op_id;  /* from node_read / node_write */
    enum node_op_kind kind;
    int status;               /* RK_OK, RK_ENOTFOUND (read: no replica had
                                 the key), RK_ENOQUORUM, RK_ENOMEM, a
                                 replica's refusal (write: RK_EINVAL,
                                 RK_EREADONLY, RK_ERANGE, ...) */
    bool found;               /* object holds an object */
    struct peer_bytes object; /* read: the merged object of the answers;
                                 write: the object after the write at its
                                 coordinating replica (canonical dvv
                                 encoding, a view) */
    uint32_t successes, n_targets, need;
    /* RK_ENOQUORUM: "NOQUORUM reached X of W ..." (no CR/LF, no '-'). */
    char message[NODE_MESSAGE_MAX];
};

struct node_action
{
    enum node_action_type type;
    /* SEND: destination id ("" when only host:port is known); NUL-term. */
    const char *to;
    const char *host; /* SEND: NULL, or the address to dial */
    uint16_t port;
    uint64_t req_id;           /* SEND: the request a failure is fed to */
    struct peer_bytes frame;   /* SEND: an encoded frame (view) */
    enum node_file file;       /* PERSIST */
    struct peer_bytes bytes;   /* PERSIST (view) */
    struct node_result result; /* REPLY */
    int level;                 /* LOG: RK_LOG_*; JOIN_FAILED: RK_* code */
    const char *event;         /* LOG: static snake_case name */
    const char *text;          /* LOG, JOIN_FAILED: one line (view) */
};

/* A quorum read of one key. */
struct node_read_req
{
    const void *key; /* 1..PEER_MAX_KEY bytes */
    size_t klen;
    struct route_quorum overrides; /* 0 = configured; n only lowers */
    uint32_t timeout_ms;           /* 0 = configured */
    uint64_t cookie;
};

/* A client write of one key: the coordinating replica issues its dot and
 * the resulting object goes to the key's replicas, answered after W. */
struct node_write_req
{
    const void *key; /* 1..PEER_MAX_KEY bytes */
    size_t klen;
    const void *context; /* clock-only dvv encoding the write supersedes */
    size_t clen;
    bool own_context;  /* supersede what the coordinating replica has
                          seen (blind writes); context ignored */
    bool tombstone;    /* a delete */
    const void *value; /* 0..PEER_MAX_VALUE bytes (content-type prefix
                          included when ctype) */
    size_t vlen;
    bool ctype;            /* value starts with a content type (dvv.h) */
    bool chunked;          /* value is a chunk manifest (chunk.h) */
    bool counter;          /* an increment: value is PEER_KV_COUNTER's
                              delta and id; own_context, no expiry */
    bool counter_state;    /* value is a counter state carrying the
                              counts the context covers on
                              (PEER_KV_COUNTER_STATE); with a tombstone
                              too */
    uint64_t timestamp;    /* HLC */
    uint64_t expire_at_ms; /* Unix ms, 0 = none */
    struct route_quorum overrides;
    uint32_t timeout_ms;
    uint64_t cookie;
};

/* Counters for INFO and metrics. */
struct node_stats
{
    uint64_t coordinated; /* replica requests started for clients */
    uint64_t noquorum;    /* client operations answered NOQUORUM */
    uint64_t replica_puts, replica_gets, replica_updates;
    uint64_t replica_refused_nonmember; /* key traffic dropped while alone
                                           from nodes this one does not list */
    uint64_t hints_stored, hints_delivered, hints_superseded;
    uint64_t tombstones_reaped;
    uint64_t chunk_gc_queued;      /* superseded chunk manifests queued */
    uint64_t chunk_gc_checks;      /* all-replica reads before a delete */
    uint64_t chunk_gc_deferred;    /* checks that found the manifest
                                      possibly live (or a replica down):
                                      checked again later */
    uint64_t chunk_manifests_kept; /* given up on: blocks left on disk */
    uint64_t chunk_blocks_deleted; /* their blocks deleted */
    uint64_t chunk_blocks_retried; /* deletes that failed, tried again */
    uint64_t chunk_blocks_failed;  /* deletes that failed for good:
                                      blocks left on disk */
    uint64_t gossip_in, gossip_out;
    uint64_t peer_spoofed; /* frames dropped: they spoke for another node */
    /* partition handoff (issue 14) */
    uint64_t handoff_transfers_done;              /* partitions received here */
    uint64_t handoff_keys_in, handoff_bytes_in;   /* merged here */
    uint64_t handoff_keys_out, handoff_bytes_out; /* sent to others */
    uint64_t handoff_folds_served, handoff_folds_refused;
    uint64_t handoff_retries;      /* FOLDs asked again (timeout, error) */
    uint64_t handoff_throttled;    /* FOLDs held back by the rate limit */
    uint64_t handoff_resumed;      /* transfers resumed from a checkpoint */
    uint64_t handoff_verified;     /* sources verified by tree instead of
                                      folded (node_handoff_verify.c) */
    uint64_t handoff_verify_keys;  /* keys those verifies fetched */
    uint64_t handoff_verify_folds; /* verifies that fell back to a fold */
    uint64_t handoff_forwards;     /* writes also sent to pending owners */
    uint64_t handoff_relays;       /* writes a leaving owner stored and
                                      passed on to pending owners (hints) */
    uint64_t handoff_keys_dropped; /* keys of partitions no longer owned
                                      here, deleted after the grace */
    /* active anti-entropy (issue 14 item 4) */
    uint64_t aae_trees_built;       /* partition trees finished building */
    uint64_t aae_exchanges_started; /* exchanges this node started */
    uint64_t aae_exchanges;         /* ... that completed */
    uint64_t aae_exchange_failures; /* ... that failed or timed out */
    uint64_t aae_keys_differing;    /* keys found differing, queued */
    uint64_t aae_keys_repaired;     /* repair reads (read repair) done */
    uint64_t aae_refused;           /* AAE messages refused */
};

/* Anti-entropy state for INFO and metrics. */
struct node_aae_info
{
    uint32_t partitions;       /* trees kept (the ring size), 0 = off */
    uint32_t built;            /* of them built */
    uint64_t repair_queue;     /* bytes of keys waiting for repair */
    uint64_t repairs_inflight; /* repair reads started, not answered */
    int64_t oldest_exchange_s; /* age of the oldest last exchange (started
                                  and completed, or answered) over the
                                  partitions this node replicates; -1 when
                                  one has none yet */
};

struct node;

/*
 * Creates the node: membership from cfg->saved_state (or none yet), swim,
 * the coordinator.  It does not create a cluster: call
 * node_create_cluster when membership_phase is NONE.
 * Errors: RK_EINVAL, RK_EPROTO/RK_EVERSION (saved state), RK_ENOMEM, with
 * a one-line reason in errbuf.  *out returned-owned (node_destroy).
 */
int node_create(const struct node_config *cfg,
                struct node **out,
                char *errbuf,
                size_t errlen);

/* Frees the node (no REPLY for operations in flight).  NULL: no-op. */
void node_destroy(struct node *n);

/* Replaces the settings (CONFIG SET); recomputes N/R/W. */
void node_set_settings(struct node *n, const struct node_settings *s);

/* The actions of the last call: *out points to the returned count of
 * them, valid until the next call into the node. */
size_t node_actions(const struct node *n, const struct node_action **out);

/* Events.  Each replaces the action list. */
void node_on_message(struct node *n,
                     const char *from,
                     size_t from_len,
                     const struct peer_msg *m,
                     uint64_t now_ms);
void node_on_peer_up(struct node *n,
                     const char *id,
                     size_t len,
                     uint64_t now_ms);
void node_on_peer_down(struct node *n, const char *id, size_t len);
void node_on_send_failed(struct node *n,
                         const char *to,
                         uint64_t req_id,
                         int status,
                         uint64_t now_ms);
void node_on_tick(struct node *n, uint64_t now_ms);
void node_on_durable(struct node *n, uint64_t now_ms);
/*
 * Under sync=every and none: true when writes of this node wait in an
 * engine's write buffer, so acknowledgements (replica answers, the
 * coordinating replica's own copy, hints) wait for them.  The driver then
 * calls engine_handoff on both engines once per event-loop pass and
 * node_on_durable after (issue 12: what a process crash may lose).
 * Always false under sync=always (the engines' sync threads write and
 * fdatasync, and call back).
 */
bool node_wants_handoff(const struct node *n);
uint64_t node_next_deadline_ms(const struct node *n);

/*
 * Client operations.  RK_OK and *op_id (echoed in the REPLY), or RK_EBUSY
 * (no free slot: retry after a reply), RK_EINVAL (bad key), RK_ENOTFOUND
 * (no ring yet: no targets), RK_ENOMEM; no REPLY then.  Requests are
 * borrowed (copied).
 */
int node_read(struct node *n,
              const struct node_read_req *r,
              uint64_t now_ms,
              uint64_t *op_id);
int node_write(struct node *n,
               const struct node_write_req *w,
               uint64_t now_ms,
               uint64_t *op_id);
/* Drops every operation of `cookie` without a REPLY; returns how many. */
size_t node_cancel(struct node *n, uint64_t cookie);

/* Operator commands (membership.h's, with the node's bookkeeping).
 * Errors as membership_*; the reason is membership_errmsg. */
int node_create_cluster(struct node *n, uint64_t now_ms);
int node_join(struct node *n, const char *host, uint16_t port, uint64_t now);
int node_replace(struct node *n,
                 const char *host,
                 uint16_t port,
                 const char *old_id,
                 uint64_t now);
int node_leave(struct node *n, bool has_data, bool force, uint64_t now_ms);
/* Applies membership's staged plan (membership_commit). */
int node_commit(struct node *n, bool force, uint64_t now_ms);
int node_remove(struct node *n, const char *id, bool force, uint64_t now_ms);

/* ---- views (for INFO, /cluster, metrics, routing decisions) ---- */
const char *node_id(const struct node *n);
struct membership *node_membership(const struct node *n);
struct swim *node_swim(const struct node *n);
struct coord *node_coord(const struct node *n);
/* Effective N/R/W for the current membership. */
struct route_quorum node_quorum(const struct node *n);
size_t node_valid_members(const struct node *n);
/* >= 2 valid members, or versioned: key commands are coordinated. */
bool node_is_multi(const struct node *n);
/* Whether peer `id` is routed to (not DOWN, connection not lost). */
bool node_peer_is_up(const struct node *n, const char *id);
/* Whether every valid member seen up last gossiped exactly this node's
 * state. */
bool node_agrees(const struct node *n);
/* Valid members seen up, self included. */
size_t node_members_up(const struct node *n);
/* Last gossip version heard from `id`; false when none. */
bool node_peer_version(const struct node *n, const char *id, uint64_t *v);
uint64_t node_hints_pending(const struct node *n);

/* One partition this node is receiving as a pending owner (issue 14 item
 * 5), as node_transfers reports it. */
struct node_transfer_src
{
    char id[CL_ID_MAX + 1];
    const char *state; /* "folding" (a batch asked), "waiting" (retry or
                          rate limit), "done", "skipped" (down/unaware) */
    uint32_t retries;
};
struct node_transfer
{
    uint32_t partition;
    uint64_t keys, bytes; /* merged here so far */
    uint64_t elapsed_ms;  /* since the transfer started (or resumed) */
    uint64_t bytes_per_s; /* bytes / elapsed */
    uint32_t permille;    /* estimated progress, 0..1000 (from the slot the
                             slowest source's fold reached; 0 if unknown) */
    int64_t eta_s;        /* estimated seconds left at the rate so far;
                             -1 until known (0.1 s in, some progress) */
    size_t n_src;
    struct node_transfer_src src[RING_MAX_N];
};
/* Copies up to cap running transfers into out; returns how many run.
 * now_ms: the monotonic clock of the node's other calls.  Thread: the
 * node's. */
size_t node_transfers(const struct node *n,
                      uint64_t now_ms,
                      struct node_transfer *out,
                      size_t cap);

/*
 * This node's storage state, as the driver sees it (issue 12 item 3):
 * `degraded` when its data engine is read-only (an I/O error, a full
 * disk), with `reason` (one line, copied; NULL = a generic one).  A
 * degraded node still serves reads and coordinates writes, but takes no
 * writes itself: routing (route.h) treats it as down for writes, here
 * and, through its PINGs and ACKs (swim.h), on every peer.  The node also
 * sees a read-only data engine by itself (engine_stats, at once and at
 * each probe period) without this call; the driver adds the reason, and
 * may report degraded storage the engine does not know of.  Logs a
 * change (NODE_LOG).  Call from the housekeeping tick; replaces the
 * action list.
 */
void node_set_storage_state(struct node *n,
                            bool degraded,
                            const char *reason,
                            uint64_t now_ms);
/* Whether this node is degraded: the driver said so, or the data engine
 * reports read_only (engine_stats) already. */
bool node_is_degraded(const struct node *n);
/* The reason of the degraded state ("" when not degraded); a view valid
 * until the next node_set_storage_state. */
const char *node_storage_reason(const struct node *n);
/* Whether member `id` (self included) is degraded as this node knows. */
bool node_peer_is_degraded(const struct node *n, const char *id);
/* Valid members known degraded, self included. */
size_t node_members_degraded(const struct node *n);
const struct node_stats *node_stats(const struct node *n);
/* Anti-entropy state at now_ms (the clock node_on_tick gets) into *out. */
void node_aae_info(const struct node *n,
                   uint64_t now_ms,
                   struct node_aae_info *out);
/* The root of this node's tree of partition p (tests, the simulator):
 * false when the tree is not built (or anti-entropy is off). */
bool node_aae_root(const struct node *n, uint32_t p, uint64_t *root);
const struct replica_stats *node_replica_stats(const struct node *n);
uint64_t node_actor(const struct node *n);
const struct node_settings *node_settings(const struct node *n);

#endif /* RINGKV_CLUSTER_NODE_H */
