/*
 * types/coll.h - how hashes and sets are stored (issue 16 items 1 and 3;
 * docs/storage-format.md "Hashes and sets").
 *
 * One record per member, as Apache Kvrocks does on RocksDB, so that HSET,
 * HGET, SADD and SISMEMBER on a collection of any size read or write one
 * member's record (O(1), no rewrite of the collection), and a header
 * record under the collection's own key says it is one:
 *
 *   header   key K, engine_meta.type OBJTYPE_HASH or OBJTYPE_SET, the
 *            key's expiry; value: u8 version 1, u8 type (the same),
 *            u64 number of members (little-endian);
 *   member   key  COLL_MEMBER_PREFIX, u32 len(K) (big-endian), K, member
 *            (a hash's field, a set's member); value: a hash field's
 *            value, empty for a set.
 *
 * Member keys start with ringkv's reserved prefix (chunk.h), so key
 * listings (KEYS, SCAN, RANDOMKEY, DBSIZE) skip them, and slot_of_key
 * gives a member key the slot of K (slot.c), so the members of K sit in
 * K's slot of the engine's slot index (a collection's members are folded
 * from there) and, in a cluster, on K's replicas.  A member key is at
 * most the engine's key limit: K and the member together at most
 * COLL_MAX_MEMBER_KEY - COLL_MEMBER_HDR bytes.
 *
 * Pure functions over caller memory.  Thread: any.
 */
#ifndef RINGKV_CLUSTER_TYPES_COLL_H
#define RINGKV_CLUSTER_TYPES_COLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define COLL_MEMBER_PREFIX     "\xffrkv\xffm"
#define COLL_MEMBER_PREFIX_LEN 6
#define COLL_MEMBER_HDR        (COLL_MEMBER_PREFIX_LEN + 4)
#define COLL_MAX_MEMBER_KEY    65536u /* the engine's key limit */
#define COLL_HEADER_LEN        10
#define COLL_HEADER_VERSION    1

/* Whether K (klen bytes) and a member of mlen bytes fit in a member key. */
static inline bool coll_member_fits(size_t klen, size_t mlen)
{
    return klen <= COLL_MAX_MEMBER_KEY - COLL_MEMBER_HDR &&
           mlen <= COLL_MAX_MEMBER_KEY - COLL_MEMBER_HDR - klen;
}

/* Writes the member key of (K, member) to dst, which has room for
 * COLL_MEMBER_HDR + klen + mlen bytes (coll_member_fits must hold);
 * returns its length. */
size_t coll_member_key_write(unsigned char *dst,
                             const void *key,
                             size_t klen,
                             const void *member,
                             size_t mlen);

/* Appends the member key of (K, member) to out (cleared first).  RK_OK,
 * RK_ETOOBIG (!coll_member_fits), RK_ENOMEM. */
int coll_member_key(const void *key,
                    size_t klen,
                    const void *member,
                    size_t mlen,
                    struct rk_buf *out);

/* Appends the prefix every member key of K starts with (cleared first):
 * the member key of (K, ""). */
int coll_member_prefix(const void *key, size_t klen, struct rk_buf *out);

/* Whether mk (mklen bytes) is a member key; if so, K and the member as
 * views into mk. */
bool coll_member_parse(const void *mk,
                       size_t mklen,
                       const char **key,
                       size_t *klen,
                       const char **member,
                       size_t *mlen);

/* Encodes a header of `type` (OBJTYPE_HASH or OBJTYPE_SET) counting n
 * members into out[COLL_HEADER_LEN]. */
void coll_header_encode(uint8_t type, uint64_t n, unsigned char *out);

/* Decodes a header: RK_OK and *type, *n; RK_ECORRUPT. */
int coll_header_decode(const void *p, size_t len, uint8_t *type, uint64_t *n);

#endif /* RINGKV_CLUSTER_TYPES_COLL_H */
