/*
 * replica.h - the replica side of a coordinated request (DESIGN.md
 * section 1 step 4; issue 5): keeps each key as a versioned object
 * (cluster/dvv.h) in the local storage engine, merges incoming objects
 * into it (KV_PUT), applies client writes that this replica coordinates
 * (KV_UPDATE: issues the write's dot) and answers reads (KV_GET).
 *
 * Stored form.  A cluster key's engine record holds the object's
 * canonical encoding, with
 *   meta.type      = the object's type (objtype.h; dvv.h carries it too);
 *   meta.flags     = REPLICA_FLAG_OBJECT, plus
 *                    - REPLICA_FLAG_DELETED when every sibling is a
 *                      tombstone: meta.timestamp = the largest sibling ts;
 *                    - else REPLICA_FLAG_EXPIRING when every sibling is a
 *                      tombstone or an expiring value: meta.timestamp =
 *                      the time the object is dead from (replica_dead_at:
 *                      the last expiry, in HLC units);
 *                    - else meta.timestamp = the largest sibling HLC ts;
 *   meta.expire_at_ms = 0: the engine never drops an object by itself;
 *                    deleted and expired objects are reaped only by the
 *                    cluster's tombstone reaping, after the grace and once
 *                    every replica agrees, so no older copy elsewhere can
 *                    resurface.
 * So node-local readers (DBSIZE, SCAN, KEYS, INFO keyspace) can tell a
 * dead key from the metadata alone: replica_meta_is_dead().
 * Records without REPLICA_FLAG_OBJECT were written by a standalone node
 * (before it formed a cluster): they read as an object with one sibling
 * under the reserved actor DVV_ACTOR_LEGACY, dot (0, 1), or as nothing
 * when they are the old tombstone marker (empty value, expiry UINT64_MAX).
 * A plain record with REPLICA_FLAG_CTYPE holds a value that starts with a
 * content-type prefix (dvv.h: u8 n, n bytes; HTTP PUT with Content-Type
 * on a standalone node).
 * Records of data format 1 (engine_meta.flags ENGINE_FLAG_V1) kept these
 * flags in timestamp bits 63 (object), 62 (deleted), 61 (expiring) and 60
 * (content type, plain records only): replica_meta_current() reads them
 * as the explicit form, and every reader here goes through it.
 * All such records share that one dot, so between them the newer wins;
 * only the node a cluster was seeded from can hold them (a joining node
 * must be empty), so two of them never meet for one key.
 *
 * Merging never overwrites: the stored object becomes dvv_merge(stored,
 * incoming), written only when it changed (R1: the stored state depends
 * only on the set of objects applied, not on their order or repetition).
 * Under conflict_policy lww the result keeps only its winning sibling and
 * the discards are counted.  Bounds (siblings per key, clock entries) are
 * applied before every write, with counts.
 *
 * Plain functions over an injected engine: no clock, socket or randomness;
 * the caller passes the actor and keeps its counter floor.  Thread: the
 * engine's owner thread.
 */
#ifndef RINGKV_CLUSTER_REPLICA_H
#define RINGKV_CLUSTER_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/dvv.h"
#include "cluster/types/counter.h"
#include "common/buf.h"
#include "proto/peer.h"
#include "storage/engine.h"

/* engine_meta.flags of a stored record (the stored form above). */
#define REPLICA_FLAG_OBJECT   0x01 /* the value is a dvv.h object */
#define REPLICA_FLAG_DELETED  0x02 /* object: all siblings tombstones */
#define REPLICA_FLAG_EXPIRING 0x04 /* object: dead from meta.timestamp */
#define REPLICA_FLAG_CTYPE    0x08 /* plain record: content-type prefix */
/* The largest HLC timestamp a write may carry: a node of data format 1 in
 * the same cluster keeps flags in the bits above it. */
#define REPLICA_MAX_TS ((UINT64_C(1) << 60) - 1)
/* meta.expire_at_ms of a legacy (issue 4) tombstone record. */
#define REPLICA_TOMBSTONE_EXPIRE UINT64_MAX
#define REPLICA_DEFAULT_GRACE_MS (3600u * 1000u) /* tombstone_gc_grace */

/* Counters a replica adds to (for INFO and metrics). */
struct replica_stats
{
    uint64_t merges_written;     /* KV_PUT merges that changed the object */
    uint64_t updates;            /* KV_UPDATEs applied */
    uint64_t lww_discards;       /* siblings dropped by conflict_policy lww */
    uint64_t bound_dropped;      /* siblings dropped by the per-key bound */
    uint64_t clock_pruned;       /* clock entries pruned by the bound */
    uint64_t bad_objects;        /* undecodable incoming objects or contexts */
    uint64_t siblings_created;   /* writes that left more siblings */
    uint64_t siblings_resolved;  /* writes that left fewer siblings */
    uint64_t clock_ahead;        /* incoming writes timestamped more than
                                    cfg->max_skew_ms ahead of cfg->now_ms */
    uint64_t clock_ahead_max_ms; /* the largest such lead seen */
};

/*
 * Reusable working space of the replica functions: objects decoded,
 * merged and encoded keep their allocations between calls instead of
 * allocating per request (issue 11: allocations per request).  Owned by
 * one thread; replica_scratch_init/fini.
 */
struct replica_scratch
{
    struct dvv_obj in, cur, merged, ctx;
    struct rk_buf val, enc;
    struct counter cst; /* a counter state being written */
    struct rk_buf cenc; /* its encoding */
};

/* Empty scratch space (caller storage); fini frees what it holds. */
void replica_scratch_init(struct replica_scratch *s);
void replica_scratch_fini(struct replica_scratch *s);

/* The ids of the last REPLICA_RECENT_CHUNKED chunk manifests this
 * replica applied (chunk.h: each names its blocks by a random id), so
 * that a duplicated UPDATE of one that arrives after a later write
 * superseded it (and its blocks may be deleted) is recognised as the
 * same write instead of bringing the manifest back under a new dot (the
 * simulator's I9, seed 93 of the default tier).  Zeroed = empty.  In
 * memory: a duplicate older than the last 1,024 manifests, or across a
 * restart, is not caught. */
#define REPLICA_RECENT_CHUNKED 1024
struct replica_recent
{
    unsigned char id[REPLICA_RECENT_CHUNKED][16];
    uint32_t next, len;
};

/* How this node applies writes.  Borrowed by every call. */
struct replica_cfg
{
    uint64_t actor;       /* this node's actor id for this run (dvv.h) */
    uint64_t *floor;      /* in/out: the highest counter this actor issued */
    uint64_t *oneshot;    /* in/out: sequence for fallback one-shot actors */
    bool lww;             /* conflict_policy = lww */
    size_t max_sibs;      /* bound per key, 0 = none */
    size_t max_clock;     /* bound on clock entries, 0 = none */
    uint64_t grace_ms;    /* tombstone / expiry grace */
    uint64_t now_ms;      /* the caller's wall clock (Unix ms) at this call,
                             for the clock-skew check only; 0 = no check */
    uint64_t max_skew_ms; /* how far ahead a write's HLC may be */
    struct replica_stats *stats;     /* may be NULL */
    struct replica_scratch *scratch; /* may be NULL: each call allocates
                                        its own working space */
    struct replica_recent *recent;   /* may be NULL: duplicates of
                                        superseded manifests not caught */
    /* May be NULL.  Called by replica_handle_update, after the write is
     * stored, for every chunk manifest (chunk.h) the update dropped from
     * the object (superseded by the write's context, or discarded by lww
     * or the sibling bound): its blocks are garbage once no replica of
     * key holds it any more (the node checks that before deleting them).
     * key (klen bytes) and manifest (len bytes) are views valid during
     * the call; dot is the dropped sibling's; ts is the write's HLC. */
    void (*superseded)(void *data,
                       const void *key,
                       size_t klen,
                       struct dvv_dot dot,
                       const void *manifest,
                       size_t len,
                       uint64_t ts);
    void *superseded_data;
    /* May be NULL.  Called after every write of a key's record by the
     * functions here (replica_store, replica_handle_put,
     * replica_handle_update), with the XXH3-64 of the record's value bytes
     * before (0: there was no record) and after the write: what active
     * anti-entropy's hash trees are kept from (node_aae.c).  e is the
     * engine written; key a view valid during the call. */
    void (*stored)(void *data,
                   struct engine *e,
                   const void *key,
                   size_t klen,
                   uint64_t old_hash,
                   uint64_t new_hash);
    void *stored_data;
};

/*
 * The explicit form of a stored record's meta m into *out (may be m): a
 * record of data format 1 (ENGINE_FLAG_V1) gets its flags from the
 * timestamp's bits 60-63 (replica.h, "Stored form") and the HLC in
 * timestamp; any other meta is copied.  Idempotent.  Thread: any.
 */
void replica_meta_current(const struct engine_meta *m, struct engine_meta *out);

/* The predicates below take a meta as the engine returns it (format 1 or
 * current). */

/* Whether a stored record is a deleted key (all siblings tombstones, or a
 * legacy tombstone marker). */
bool replica_meta_is_tombstone(const struct engine_meta *m);

/* Whether a stored record is dead at now_ms: a tombstone, or an object
 * whose every value has expired. */
bool replica_meta_is_dead(const struct engine_meta *m, uint64_t now_ms);

/* Whether a stored record is an object that tombstone reaping may
 * consider at cutoff_ms: deleted or expiring, with its time (the largest
 * tombstone ts or the dead-from time) at or before cutoff_ms. */
bool replica_meta_is_reapable(const struct engine_meta *m, uint64_t cutoff_ms);

/* When o is dead from (HLC units): with every sibling a tombstone or an
 * expiring value, the latest tombstone ts / expiry; 0 when o has a value
 * that never expires (or no sibling). */
uint64_t replica_dead_at(const struct dvv_obj *o);

/* Whether a stored record holds a versioned object. */
bool replica_meta_is_object(const struct engine_meta *m);

/*
 * Reads key's object into o (initialised; replaced): RK_OK, RK_ENOTFOUND
 * (no record, or a legacy tombstone), RK_ECORRUPT (the record does not
 * decode: never served), or the engine's error.
 */
int replica_read(struct engine *e,
                 const void *key,
                 size_t klen,
                 struct dvv_obj *o);

/*
 * Applies the bounds and the policy to o and stores it.  *seq (may be
 * NULL) gets the engine write's sequence.  Errors: the engine's, RK_ENOMEM.
 */
int replica_store(struct engine *e,
                  const struct replica_cfg *cfg,
                  const void *key,
                  size_t klen,
                  struct dvv_obj *o,
                  uint64_t *seq);

/*
 * The live winner of o at now_ms: RK_OK and *idx (the winning sibling,
 * dvv_winner) when it is a value that has not expired; RK_ENOTFOUND when o
 * has no sibling or the winner is a tombstone or expired.
 */
int replica_winner(const struct dvv_obj *o, uint64_t now_ms, size_t *idx);

/*
 * KV_PUT: merges req->object into the stored object.  *changed (may be
 * NULL): whether the engine was written; *seq (may be NULL, 0 when
 * nothing was written) for durable acknowledgement.  Fills *reply with
 * the KV_PUT_REPLY {req_id, status}: RK_OK, RK_EINVAL (empty key, an
 * object that does not decode, has no sibling, or carries a timestamp over
 * REPLICA_MAX_TS), RK_ECORRUPT (the stored record does not
 * decode; it is left untouched), RK_ENOMEM, or the engine's error.
 */
void replica_handle_put(struct engine *e,
                        const struct replica_cfg *cfg,
                        const struct peer_kv_put *req,
                        struct peer_msg *reply,
                        bool *changed,
                        uint64_t *seq);

/*
 * KV_GET: fills *reply with the KV_GET_REPLY: RK_OK with the stored
 * object's encoding (appended to `out`, cleared first; reply views it:
 * valid until out changes), RK_ENOTFOUND, RK_ECORRUPT (the stored record
 * does not decode: never served), or an error status.  cfg may be NULL;
 * only its scratch is used (working space reused between calls).
 */
void replica_handle_get(struct engine *e,
                        const struct replica_cfg *cfg,
                        const struct peer_kv_get *req,
                        struct rk_buf *out,
                        struct peer_msg *reply);

/*
 * KV_UPDATE: applies the client write to the stored object with
 * dvv_update (context: req->context decoded, or the stored object's own
 * clock with PEER_KV_OWN_CONTEXT; actor: cfg->actor with *cfg->floor, or
 * with PEER_KV_FALLBACK a fresh one-shot actor derived from cfg->actor
 * and ++*cfg->oneshot), stores it, and fills *reply with the
 * KV_UPDATE_REPLY: RK_OK and the resulting object (encoding appended to
 * `out`, cleared first; a view valid until out changes), RK_EINVAL (bad
 * key, context or flags), RK_ERANGE (the actor's counter is exhausted),
 * RK_ECORRUPT (the stored record does not decode), RK_ENOMEM (when only
 * encoding the reply failed, the write is stored though the reply says
 * RK_ENOMEM: the coordinator retries or times out), or the engine's error.
 * *seq as for puts.
 */
void replica_handle_update(struct engine *e,
                           const struct replica_cfg *cfg,
                           const struct peer_kv_update *req,
                           struct rk_buf *out,
                           struct peer_msg *reply,
                           uint64_t *seq);

#endif /* RINGKV_CLUSTER_REPLICA_H */
