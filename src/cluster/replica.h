/*
 * replica.h - the replica side of a coordinated request (DESIGN.md
 * section 1 step 4; issue 4 item 5): applies an incoming KV_PUT to the
 * local storage engine and answers a KV_GET from it.
 *
 * Ordering until issue 5 (dotted version vectors) replaces it: last writer
 * wins by the coordinator's HLC timestamp (common/hlc.h).  Versions of one
 * key are totally ordered by replica_version_cmp:
 *   1. the higher timestamp wins;
 *   2. on equal timestamps a tombstone beats a value;
 *   3. then the value bytes, compared as unsigned bytes (memcmp), a proper
 *      prefix losing to the longer value;
 *   4. then the larger expire_at_ms (0, no expiry, compares as the largest).
 * Equal under all four means the same version.  A replica keeps the
 * maximum of every version it was sent, so
 *   R1 the stored state depends only on the set of writes applied, not on
 *      their order or repetition (max over a total order is commutative,
 *      associative and idempotent);
 *   R2 a write that loses (older, or equal and smaller) is acknowledged
 *      RK_OK but not written: it was ordered before the stored version,
 *      which is what the write's client would have seen anyway under LWW;
 *   R3 the coordinator picks the winner of R read answers with the same
 *      order, so a read returns what every replica converges to.
 *
 * Tombstones.  engine_delete() drops the record, which would forget the
 * delete's timestamp: an older write arriving late (a slow replica, a
 * retry) would then resurrect the key.  So a delete is stored as a record
 * written with engine_put() carrying
 *     value = empty, meta.timestamp = the delete's HLC,
 *     meta.expire_at_ms = REPLICA_TOMBSTONE_EXPIRE (UINT64_MAX).
 * That expiry is reserved: no client write can carry it (KV_PUT with it
 * and no tombstone flag is RK_EINVAL; the server clamps PXAT/EXPIREAT), so
 * the pair (empty value, UINT64_MAX) identifies a tombstone without
 * changing the value bytes of live records (no copy on the write path, the
 * engine's record layout is untouched), and a tombstone is never "expired",
 * so neither lazy expiry nor a bitcask merge drops it.  Node-local readers
 * of the engine (DBSIZE, SCAN, INFO keyspace, a LOCALGET debug command)
 * must skip records for which replica_meta_is_tombstone() is true.
 * Tombstones are kept for ever until issue 5 adds tombstone_gc_grace.
 *
 * hint_for in KV_PUT is ignored here (the write is applied like any
 * other); issue 5 routes hinted writes to the hint store instead.
 *
 * These are plain functions over an injected engine: no clock, socket or
 * randomness.  Thread: the engine's owner thread.
 */
#ifndef RINGKV_CLUSTER_REPLICA_H
#define RINGKV_CLUSTER_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "proto/peer.h"
#include "storage/engine.h"

/* meta.expire_at_ms of a stored tombstone (reserved for it). */
#define REPLICA_TOMBSTONE_EXPIRE UINT64_MAX

/* One version of a key, as stored or as carried by a message. */
struct replica_version
{
    const void *value;     /* bytes (a view); NULL allowed when vlen 0 */
    size_t vlen;           /* 0 for a tombstone */
    uint64_t timestamp;    /* HLC */
    uint64_t expire_at_ms; /* absolute Unix ms, 0 = none; 0 for a
                              tombstone */
    bool tombstone;
};

/*
 * Orders two versions of one key (rules 1-4 above): < 0 when a is older,
 * 0 when equal, > 0 when a is newer.  A total order.  Thread: any.
 * Complexity: O(min(vlen)) when timestamps tie, else O(1).
 */
int replica_version_cmp(const struct replica_version *a,
                        const struct replica_version *b);

/* Whether a stored record is a tombstone (see above). */
bool replica_meta_is_tombstone(const struct engine_meta *m);

/*
 * Applies a write (or a tombstone) under last-writer-wins: reads the
 * stored version's metadata (and its value only when the timestamps tie)
 * and writes `put` with engine_put only if it is newer.
 *   applied: set to whether the engine was written (may be NULL).
 *   seq: the engine write's sequence number when applied (may be NULL);
 *     the caller acknowledges after engine_durable_seq() >= *seq if its
 *     sync policy asks for durable acknowledgements.
 * Returns RK_OK (applied, or lost to a newer stored version: R2),
 * RK_EINVAL (empty key, a tombstone with a value or an expiry, reserved
 * flag bits, a value write with expiry REPLICA_TOMBSTONE_EXPIRE), or the
 * engine's error (RK_ETOOBIG, RK_EREADONLY, RK_EIO, RK_ENOSPC,
 * RK_ECORRUPT, RK_ENOMEM).  `put` is borrowed.
 */
int replica_apply_put(struct engine *e,
                      const struct peer_kv_put *put,
                      bool *applied,
                      uint64_t *seq);

/*
 * Reads the stored version of `key`: RK_OK with *out set (a value or a
 * tombstone; the value bytes are appended to `val`, cleared first, and
 * out->value views val->base: valid until val changes), RK_ENOTFOUND, or
 * the engine's error (RK_ECORRUPT, RK_EIO, RK_ENOMEM).  Expired values are
 * returned like others (the coordinator's caller decides).
 */
int replica_get(struct engine *e,
                const void *key,
                size_t klen,
                struct rk_buf *val,
                struct replica_version *out);

/*
 * Handles a KV_PUT message: replica_apply_put, then fills *reply with the
 * KV_PUT_REPLY {req_id, status}.  *seq as for replica_apply_put (set to 0
 * when nothing was written).  Never fails (errors go into the reply).
 */
void replica_handle_put(struct engine *e,
                        const struct peer_kv_put *req,
                        struct peer_msg *reply,
                        uint64_t *seq);

/*
 * Handles a KV_GET message: fills *reply with the KV_GET_REPLY: RK_OK with
 * value/timestamp/expiry/flags (PEER_KV_TOMBSTONE, empty value and expiry
 * 0 for a tombstone), RK_ENOTFOUND, or an error status.  The value is
 * read into `val` (caller storage, reused across calls; cleared first) and
 * reply->kv_get_reply.value views it: valid until val changes.
 */
void replica_handle_get(struct engine *e,
                        const struct peer_kv_get *req,
                        struct rk_buf *val,
                        struct peer_msg *reply);

#endif /* RINGKV_CLUSTER_REPLICA_H */
