/*
 * op.h - the life of a coordinated client command, as a sans-IO machine
 * (DESIGN.md 2a "src/cluster/op.c: a coordinated command's phases,
 * windows, per-client order"; issue 11 item 1).
 *
 * The node that receives a command naming keys coordinates it (Dynamo,
 * DeCandia et al., SOSP 2007, 4.5): it reads every key from the key's
 * preference list with quorum R (node_read), runs the command's handler
 * over what it read (the coordinated keyspace below), and writes every key
 * the handler changed with quorum W (node_write), whose coordinating
 * replica issues the new version's dot and whose context says which
 * siblings it supersedes.  This machine holds those decisions; the driver
 * (src/server/cluster_ops.c) holds the sockets, the command table, the
 * handlers and the rendering of replies.
 *
 * Phases of one operation (OP_KEYS), each transition with its function:
 *
 *   op_submit ---------+--- waits (shares a key with an earlier unfinished
 *                      |    operation of the same client) --+
 *                      |        start_waiting, once it does not |
 *                      v  <-------------------------------------+
 *            blind write? (OP_F_BLIND)
 *             no |                  | yes
 *                v                  |
 *   READ   node reads of every key,  |
 *          OP_WINDOW in flight       |
 *          (op_start_more;           |
 *          op_on_node_result)        |
 *                |  all answered     |
 *                v                   v
 *   EXEC   action OP_ACT_EXEC: the driver runs the handler (over
 *          op_key_get/put/del) or, for OP_F_VERSIONED, GETALL's rendering
 *          or op_versioned_put; then op_exec_done
 *                |  some key written        | nothing written
 *                v                          |
 *   WRITE  node writes of the written keys, |
 *          OP_WINDOW in flight              |
 *                |  all answered            |
 *                v                          v
 *   DONE   action OP_ACT_DONE (counts), then, in the client's order,
 *          OP_ACT_REPLY (client_progress)
 *
 * A failed node request (NOQUORUM, a refusal) ends the operation once its
 * other requests have answered: DONE, then the error as its reply, in
 * order.  Two more kinds share the client's order: a deferred command
 * (op_defer: OP_ACT_DISPATCH once every earlier operation is answered) and
 * a held operation (op_hold: answered by the driver with op_hold_done,
 * e.g. RINGKV.CLUSTER JOIN waiting for admission).
 *
 * Invariants:
 *   O1 a client's replies leave in the order its operations were created
 *      (OP_ACT_REPLY and OP_ACT_DISPATCH only for the head of its FIFO);
 *   O2 an operation sharing a key with an earlier unfinished OP_KEYS
 *      operation of the same client does not start until that one is
 *      finished, and nothing starts after an unfinished deferred or held
 *      operation; operations without common keys overlap;
 *   O3 a client's input is blocked (op_client_is_blocked) while it has
 *      OP_CLIENT_PIPELINE unanswered operations or an unanswered barrier;
 *   O4 at most OP_WINDOW node requests per operation are in flight;
 *   O5 a read-modify-write writes a version newer than every version it
 *      read (the HLC observes them before OP_ACT_EXEC);
 *   O6 a key deleted by the handler becomes a tombstone only when it was
 *      live when read;
 *   O7 after op_client_gone, none of the client's operations has a node
 *      request (cancelled through the port), an action or memory left.
 *
 * Inputs are calls; outputs are node requests through the injected port
 * (struct op_port: a request's start must answer at once, RK_EBUSY
 * included, as canonical/raft's raft_io send does) and actions to the
 * client side, read with op_next_action.  Time comes only from the
 * injected environment (wall ms for expiry and the HLC, monotonic ms for
 * node deadlines).
 *
 * Thread: one (the driver's loop); nothing here is thread-safe.
 * Memory: rk_malloc/rk_free; finished operations are kept for reuse.
 * Files: op.c (phases, windows, per-client order), op_keys.c (keys, read
 * answers, the coordinated keyspace), op_internal.h (what they share).
 */
#ifndef RINGKV_CLUSTER_OP_H
#define RINGKV_CLUSTER_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/node.h"
#include "common/buf.h"
#include "common/env.h"
#include "common/hlc.h"
#include "proto/resp.h"

#define OP_WINDOW          64   /* node requests in flight per operation */
#define OP_CLIENT_PIPELINE 64   /* unanswered operations per client */
#define OP_POOL            1024 /* finished operations kept for reuse */
#define OP_KEEP_BYTES      (64 * 1024) /* larger buffers are not kept */

struct op;
struct op_machine;

/*
 * A client's side of the machine, embedded in the driver's client and
 * initialised with op_client_init.  Fields are op.c's; read them through
 * op_client_is_busy / op_client_is_blocked.
 */
struct op_client
{
    struct op *head, *tail; /* unanswered operations, oldest first */
    uint32_t n_ops;         /* of them */
    bool blocked;           /* input waits (O3) */
    struct op *dispatching; /* deferred operation the driver dispatches */
    void *data;             /* the driver's client */
};

/* Operation flags (op_submit), from the command table. */
enum op_flags
{
    OP_F_BLIND = 1 << 0,     /* blind write: no read phase */
    OP_F_VERSIONED = 1 << 1, /* RINGKV.GETALL/PUT/DEL: works on key 0's
                                versioned object */
    OP_F_WRITE = 1 << 2,     /* with VERSIONED: PUT/DEL */
    OP_F_BARRIER = 1 << 3,   /* later input waits until it is answered */
};

/* Which arguments are keys: argv[first], argv[first + step], ... up to
 * argv[last] (last < 0: the last argument).  first <= 0: none. */
struct op_keyspec
{
    int first, last, step;
};

/*
 * The node side, injected (raft_io style).  read/write start one node
 * request (node_read / node_write): RK_OK and *op_id, RK_EBUSY (no slot:
 * the operation stalls until op_retry_stalled), RK_ENOTFOUND (no ring) or
 * another error (the operation fails).  settle runs after every start,
 * after the machine recorded it: the driver performs what the node asked
 * for, which may feed results back with op_on_node_result.  cancel drops
 * every node request of a cookie without results.
 */
struct op_port
{
    int (*read)(void *data,
                const struct node_read_req *r,
                uint64_t now_ms,
                uint64_t *op_id);
    int (*write)(void *data,
                 const struct node_write_req *w,
                 uint64_t now_ms,
                 uint64_t *op_id);
    void (*settle)(void *data);
    void (*cancel)(void *data, uint64_t cookie);
    void *data;
};

struct op_config
{
    struct op_port port;
    struct rk_env *env; /* borrowed: wall_ms, mono_ms */
    struct hlc *clock;  /* borrowed: versions written by handlers */
    /* Large values (chunk.h): values over chunk_threshold bytes are
     * written as blocks of chunk_size bytes under a manifest; manifests
     * name at most chunk_max_total bytes.  0 = CHUNK_THRESHOLD_DEF,
     * CHUNK_SIZE_DEF, 4 GiB. */
    uint64_t chunk_threshold;
    uint32_t chunk_size;
    uint64_t chunk_max_total;
};

enum op_action_type
{
    /* Run op's handler now: over op_key_get/put/del, or for
     * OP_F_VERSIONED render key 0's object (GETALL) or op_versioned_put
     * (PUT/DEL), writing the reply into op_reply(op); then call
     * op_exec_done(op). */
    OP_ACT_EXEC = 1,
    /* op's result is final (op_error says whether it failed): count it. */
    OP_ACT_DONE,
    /* Append op's reply to the client's output: op_error(op) when it
     * failed, else the bytes of op_reply(op).  In the client's order. */
    OP_ACT_REPLY,
    /* A deferred command reached its turn: dispatch op_args(op) as if it
     * had just arrived, then call op_dispatch_done(op). */
    OP_ACT_DISPATCH,
    /* The client's output grew or its input may go on: resume it. */
    OP_ACT_RESUME,
};

struct op_action
{
    enum op_action_type type;
    struct op *op;            /* NULL for RESUME */
    struct op_client *client; /* whose */
};

/*
 * Creates the machine.  cfg is copied; its env and clock are borrowed
 * and must outlive it.  RK_OK and *out (op_machine_destroy), RK_EINVAL
 * (a port function or env/clock missing), RK_ENOMEM.
 */
int op_machine_create(const struct op_config *cfg, struct op_machine **out);

/* Frees the machine and the operations kept for reuse.  Operations of
 * clients must be gone first (op_client_gone).  NULL: no-op. */
void op_machine_destroy(struct op_machine *m);

/* Initialises a client's side (caller storage); data: the driver's. */
void op_client_init(struct op_client *oc, void *data);

/* Whether the client has unanswered operations. */
bool op_client_is_busy(const struct op_client *oc);

/* Whether the client's input must wait (O3). */
bool op_client_is_blocked(const struct op_client *oc);

/*
 * Creates a coordinated key operation of client oc for a command: cmd is
 * the driver's (carried, never read), argv is copied (argc strings, each
 * NUL-terminated in the copy).  Add its keys with op_add_keys/op_add_key,
 * then op_submit it (or op_discard it).  RK_OK and *out, RK_ENOMEM.
 */
int op_create(struct op_machine *m,
              struct op_client *oc,
              const void *cmd,
              size_t argc,
              const struct resp_arg *argv,
              struct op **out);

/*
 * As op_create, but the argument bytes are not copied: argv's strings lie
 * in owned (owned_len bytes, an rk_malloc allocation), each followed by a
 * NUL, and the operation takes owned over (freed with it, also on
 * op_discard).  A large value argument is then viewed, not copied, by
 * op_key_put.  RK_OK and *out; RK_ENOMEM (owned is not taken).
 */
int op_create_owned(struct op_machine *m,
                    struct op_client *oc,
                    const void *cmd,
                    size_t argc,
                    const struct resp_arg *argv,
                    char *owned,
                    size_t owned_len,
                    struct op **out);

/*
 * Adds the keys spec names in argv (argc of them; any argv, e.g. a
 * MULTI's queued command).  Empty keys and keys over PEER_MAX_KEY are
 * skipped (never stored: reads find nothing); duplicates are kept once.
 * RK_OK, RK_ENOMEM.  Complexity: O(keys x keys so far) up to 64 keys,
 * O(keys) beyond (deduplicated by op_submit).
 */
int op_add_keys(struct op *op,
                const struct op_keyspec *spec,
                size_t argc,
                const struct resp_arg *argv);

/* Adds one key (klen bytes, copied).  RK_OK, RK_ENOMEM. */
int op_add_key(struct op *op, const void *key, size_t klen);

/*
 * Submits op (from op_create): its keys are deduplicated, it joins the
 * client's FIFO and starts unless it waits (O2).  flags: OP_F_*; over and
 * timeout_ms go to every node request (0 = configured).  stamp is the
 * driver's (carried for OP_ACT_DONE, e.g. the submit time).  Actions
 * follow (op_next_action).
 */
void op_submit(struct op_machine *m,
               struct op *op,
               unsigned flags,
               struct route_quorum over,
               uint32_t timeout_ms,
               uint64_t stamp);

/* Frees an operation that was created but not submitted. */
void op_discard(struct op_machine *m, struct op *op);

/*
 * Defers a command (argv copied) until every earlier operation of the
 * client is answered (OP_ACT_DISPATCH).  It is a barrier.  RK_OK,
 * RK_ENOMEM (nothing kept).
 */
int op_defer(struct op_machine *m,
             struct op_client *oc,
             size_t argc,
             const struct resp_arg *argv);

/*
 * Holds the client's order for an answer the driver gives later with
 * op_hold_done (a barrier).  RK_OK and *out (valid until op_hold_done or
 * op_client_gone), RK_ENOMEM.
 */
int op_hold(struct op_machine *m, struct op_client *oc, struct op **out);

/* Ends a held operation with the reply bytes (copied; on RK_ENOMEM the
 * reply is empty).  Call op_process after. */
void op_hold_done(struct op_machine *m,
                  struct op *op,
                  const void *reply,
                  size_t len);

/*
 * A node result (a NODE_REPLY action) for an operation of this machine
 * (r->cookie).  Records it and queues the operation; op_process advances
 * it.  set: the node's settings (lww, max_siblings: the read object is
 * bounded as the replicas will store it).  Results for keys not in
 * flight are ignored.
 */
void op_on_node_result(struct op_machine *m,
                       const struct node_result *r,
                       const struct node_settings *set);

/* Advances every queued operation (starts requests, finishes them); call
 * after feeding results.  Not re-entrant: a nested call returns. */
void op_process(struct op_machine *m);

/* Queues the operations stalled on RK_EBUSY again (call from a timer),
 * then op_process. */
void op_retry_stalled(struct op_machine *m);

/*
 * The next action, in the order they arose: true and *out, or false when
 * none is left.  The op of a REPLY is valid until the next call of
 * op_next_action; of EXEC until op_exec_done; of DISPATCH until
 * op_dispatch_done.  Handling an action may call into the machine
 * (including op_next_action, for EXEC and DISPATCH).
 */
bool op_next_action(struct op_machine *m, struct op_action *out);

/* The handler of an OP_ACT_EXEC returned: write what it changed, or
 * finish. */
void op_exec_done(struct op_machine *m, struct op *op);

/* The command of an OP_ACT_DISPATCH was dispatched: frees op, goes on
 * with the client's later replies. */
void op_dispatch_done(struct op_machine *m, struct op *op);

/*
 * The client is gone: its node requests are cancelled (port cancel), its
 * operations and queued actions dropped without replies (O7).  Not while
 * one of its actions is being handled.
 */
void op_client_gone(struct op_machine *m, struct op_client *oc);

/*
 * A key whose value was assembled from blocks (chunk.h) sits in a RESP
 * bulk frame ("$<len>\r\n" value "\r\n"): moves that frame into out when
 * out is empty, so that a GET replies with the buffer itself instead of a
 * copy (a 100 MiB copy into fresh memory holds the loop ~60 ms).  The
 * key's value stays readable through op_key_get while out is not
 * changed.  RK_OK, or RK_ENOTFOUND (not such a key, out not empty, or the
 * key was written by this operation): reply with a copy instead.
 */
int op_key_take_frame(struct op *op,
                      const void *key,
                      size_t klen,
                      struct rk_buf *out);

/* Counters of the chunk phases (chunk.h), for INFO and metrics. */
struct op_chunk_stats
{
    uint64_t values_stored, bytes_stored;   /* written as blocks */
    uint64_t values_fetched, bytes_fetched; /* assembled from blocks */
};

/* The machine's chunk counters (valid while m is). */
const struct op_chunk_stats *op_machine_chunk_stats(const struct op_machine *m);

/* ---- an operation, for the driver ---- */

struct op_client *op_client_of(const struct op *op);
const void *op_cmd(const struct op *op);
uint64_t op_stamp(const struct op *op);
/* The copied arguments (valid while op is). */
const struct resp_arg *op_args(const struct op *op, size_t *argc);
/* Where the handler's reply is captured (the driver swaps it in). */
struct rk_buf *op_reply(struct op *op);
/* The error line (no CR/LF) when op failed, else NULL. */
const char *op_error(const struct op *op);
size_t op_n_keys(const struct op *op);

/* ---- the coordinated keyspace (a handler of OP_ACT_EXEC) ----
 *
 * A handler reads and writes only the keys its operation declared: reads
 * answer from the versions the quorum read returned (the live winner),
 * writes are recorded in the key and written by op_exec_done. */

/* A live key's value: views into op, valid until the next write of it. */
struct op_value
{
    const char *val; /* the user's bytes (content type stripped) */
    size_t vlen;
    const char *ct; /* content type, ctlen bytes (0 = none) */
    uint8_t ctlen;
    uint64_t ts;           /* HLC of the version */
    uint64_t expire_at_ms; /* absolute Unix ms, 0 = none */
};

/* Reads key (klen bytes): RK_OK and *out, or RK_ENOTFOUND (not
 * declared, absent, deleted or expired at the env's wall ms). */
int op_key_get(struct op *op,
               const void *key,
               size_t klen,
               struct op_value *out);

/*
 * Writes key := val (vlen bytes, at most max_vlen) with an expiry
 * (absolute Unix ms, 0 = none) and a content type (ct, ctlen bytes,
 * 0 = none), versioned now by the HLC.  RK_OK; RK_EINVAL (empty or
 * undeclared key), RK_ETOOBIG (key over PEER_MAX_KEY or value over
 * max_vlen), RK_ENOMEM (the key is then not written).
 */
int op_key_put(struct op *op,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               uint64_t expire_at_ms,
               const char *ct,
               uint8_t ctlen,
               size_t max_vlen);

/* Deletes key: RK_OK when it was live, RK_ENOTFOUND when not. */
int op_key_del(struct op *op, const void *key, size_t klen);

/*
 * Adds delta to the integer key holds (absent = 0) as a counter
 * increment (cluster/types/counter.h): the write phase sends the delta,
 * not a value, to the coordinating replica, which adds it to its own
 * counter state, so that increments through other coordinators add up
 * instead of overwriting each other.  The expiry is kept.  *result is
 * the value read plus delta (what this operation sees).  A key the
 * operation already wrote with a value is written with the new value
 * instead.  RK_OK; RK_EINVAL (undeclared key, or the value is not an
 * integer); RK_ERANGE (the result would leave int64); RK_ENOMEM.
 */
int op_key_incr(struct op *op,
                const void *key,
                size_t klen,
                int64_t delta,
                int64_t *result);

/* Key 0's merged object as read (canonical dvv encoding; len 0 when not
 * found): for RINGKV.GETALL.  A view valid while op is. */
const struct rk_buf *op_key_object(const struct op *op);

/*
 * RINGKV.PUT key context value / RINGKV.DEL key context over key 0: a
 * write superseding exactly the siblings the client's context (clen
 * bytes, dvv_context_decode text; capped to what the replicas have seen)
 * covers.  PUT (del false): value (vlen bytes) with content type ct/ctlen.
 * DEL: a tombstone, written only when the context covers a live sibling
 * (*removed = 1, else 0).  RK_OK; RK_EINVAL (context does not decode),
 * RK_ENOMEM; nothing is written on error.
 */
int op_versioned_put(struct op *op,
                     const char *context,
                     size_t clen,
                     bool del,
                     const void *value,
                     size_t vlen,
                     const char *ct,
                     uint8_t ctlen,
                     int *removed);

#endif /* RINGKV_CLUSTER_OP_H */
