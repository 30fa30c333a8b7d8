/*
 * ring.h - the partitioned consistent-hash ring (DESIGN.md section 4,
 * issue 4 item 2).
 *
 * The key space is Redis Cluster's SLOT_COUNT = 16384 hash slots
 * (slot.h: CRC16 of the key or of its {hash tag}, mod 16384), cut into
 * Q = ring_size equal partitions of contiguous slots (Q a power of two,
 * 1..RING_MAX_SIZE, so Q divides 16384): partition p covers slots
 * [p * 16384/Q, (p+1) * 16384/Q), so the partition of a key is
 * slot >> (14 - log2 Q) and every Redis Cluster client can compute it
 * (issue 13 item 1; until then the position was XXH3-64 of the key, which
 * cluster-state format 1 records, see membership.h).  Every partition has one
 * owner, a member of the ring.  Members are node ids (1..RING_MAX_ID_LEN
 * bytes of graphic ASCII, 0x21..0x7e) kept sorted bytewise, so a member
 * index is the rank of its id and does not depend on the order the ids were
 * given in.
 *
 * Guarantees of ring_create (the claim; algorithm in ring.c's header):
 *   G1 balance: with M members each owns floor(Q/M) or ceil(Q/M)
 *      partitions (so members beyond Q own none when M > Q);
 *   G2 distinctness: every W consecutive partitions (wrapping) have W
 *      distinct owners, where W = ring_window() =
 *      min(N, floor(Q / ceil(Q/M))).  W == N exactly when
 *      ceil(Q/M) * N <= Q, the condition under which G1 and N-distinctness
 *      can hold together at all; it holds whenever M > N and Q >= N*N.
 *      For M < N, and for M == N when N does not divide Q (e.g. Q=64 with
 *      3 nodes and N=3), W < N: a node owns ceil(Q/M) partitions that
 *      cannot all be N apart.  The preference
 *      list still has N distinct nodes; it just walks past W partitions;
 *   G3 determinism: the same (Q, N, member set, previous ring) give a
 *      bit-identical ring on every machine (no pointers, hash tables,
 *      locale, clocks or randomness are involved);
 *   G4 stability: given the previous ring, partitions keep their owner
 *      unless the owner left, broke G1 or G2, or is needed to rebalance:
 *      a join of one node to M moves about Q/(M+1) partitions, a leave
 *      moves the leaver's partitions plus the few that G2 repairs need
 *      (tests/unit/cluster/test_ring.c prints the measured fractions).
 *
 * A ring is immutable after creation: every accessor may be called from any
 * thread concurrently.  Memory comes from rk_malloc/rk_free.
 */
#ifndef RINGKV_CLUSTER_RING_H
#define RINGKV_CLUSTER_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define RING_DEFAULT_SIZE   64   /* default ring_size (Q) */
#define RING_MAX_SIZE       1024 /* largest Q */
#define RING_DEFAULT_N      3    /* default target_n (N) */
#define RING_MAX_N          64   /* largest target_n */
#define RING_MAX_MEMBERS    1024 /* most members in a ring */
#define RING_MAX_ID_LEN     64   /* longest node id, bytes */
#define RING_FORMAT_VERSION 1    /* first byte of ring_encode's output */

struct ring;

/*
 * Whether `id`/`len` is a valid node id: 1..RING_MAX_ID_LEN bytes, each a
 * graphic ASCII character (0x21..0x7e; no space, so ids print in tables).
 * Thread: any.
 */
bool ring_member_id_is_valid(const char *id, size_t len);

/*
 * Builds a ring by the claim algorithm (G1-G4 above).
 *   q: partitions, a power of two in 1..RING_MAX_SIZE.
 *   n: target_n, replicas per key, 1..RING_MAX_N.
 *   ids/n_ids: member node ids, NUL-terminated, 1..RING_MAX_MEMBERS of
 *     them, any order (they are sorted; order does not matter).
 *   prev: the ring this one replaces, or NULL for a fresh ring.  Its size
 *     and target_n may differ (a different size maps old partition
 *     boundaries onto the new ones).  Borrowed.
 *   out: receives the new ring (returned-owned, free with ring_destroy);
 *     untouched on error.
 * Errors: RK_EINVAL (bad q or n, no or too many ids, an invalid or
 * duplicate id), RK_ENOMEM.
 * Thread: any.  Complexity: a bounded, deterministic amount of work: well
 * under 2 ms typically, about 0.15 s at worst (Q=1024, hard repairs).
 * Algorithm: ring.c's header (after Riak's claim_v2/v3).
 */
int ring_create(uint32_t q,
                uint32_t n,
                const char *const *ids,
                size_t n_ids,
                const struct ring *prev,
                struct ring **out);

/* Frees a ring; ring_destroy(NULL) is a no-op. */
void ring_destroy(struct ring *r);

/* Q, the number of partitions. */
uint32_t ring_size(const struct ring *r);

/* target_n the ring was claimed for. */
uint32_t ring_target_n(const struct ring *r);

/*
 * W of G2: the largest w <= target_n such that every w consecutive
 * partitions have distinct owners.
 */
uint32_t ring_window(const struct ring *r);

/* M, the number of members (>= 1). */
size_t ring_member_count(const struct ring *r);

/*
 * Id of member `i` (< ring_member_count): a NUL-terminated view valid until
 * ring_destroy(r); its length goes to *len when len is not NULL.
 */
const char *ring_member_id(const struct ring *r, size_t i, size_t *len);

/*
 * Index of the member whose id is `id`/`len`, or -1 if there is none.
 * Complexity: O(log M) (binary search over the sorted ids).
 */
int ring_find_member(const struct ring *r, const char *id, size_t len);

/*
 * Partition of a key: ring_partition_of_slot(slot_of_key(key, klen)), so
 * keys sharing a {hash tag} share a partition and a preference list.
 * key/klen: bytes, binary-safe.  O(klen).
 */
uint32_t ring_partition_of_key(const struct ring *r,
                               const void *key,
                               size_t klen);

/* Partition of hash slot `slot` (0..SLOT_COUNT-1; higher bits ignored):
 * slot >> (14 - log2 Q). */
uint32_t ring_partition_of_slot(const struct ring *r, uint32_t slot);

/* The slots `partition` (< ring_size; higher bits ignored) covers:
 * *first..*last inclusive, 16384/Q of them. */
void ring_slot_range(const struct ring *r,
                     uint32_t partition,
                     uint32_t *first,
                     uint32_t *last);

/* Member index owning `partition` (< ring_size). */
size_t ring_owner(const struct ring *r, uint32_t partition);

/*
 * Preference list of `partition` (< ring_size): fills out_idx[0..cap) with
 * member indexes, walking clockwise from the partition and listing each
 * owner when first met: the first min(N, M) are the key's
 * replicas (the partition's owner first), the rest are the fallbacks in
 * the same clockwise order, then members owning no partition in index
 * order.  Returns min(cap, M).  Borrowed out_idx.  Complexity: O(Q + M) at
 * worst; the walk stops once cap members are listed, typically after about
 * cap partitions.  Allocates nothing.
 */
size_t ring_preflist(const struct ring *r,
                     uint32_t partition,
                     size_t *out_idx,
                     size_t cap);

/*
 * A copy of `r` into *out (returned-owned, ring_destroy).  Errors:
 * RK_ENOMEM (*out untouched).  Thread: any.  Complexity: O(Q + M).
 */
int ring_clone(const struct ring *r, struct ring **out);

/*
 * A copy of `r` in which member `old_id` is called `new_id`: every
 * partition keeps its owner, so each preference list is r's with old_id
 * replaced (a replace, issue 14: the new node takes exactly the old one's
 * place and nothing else moves).  The ids are NUL-terminated and borrowed;
 * *out is returned-owned (ring_destroy) and untouched on error.
 * Errors: RK_EINVAL (old_id not a member, new_id invalid or already a
 * member), RK_ENOMEM.  Thread: any.  Complexity: O(Q + M).
 */
int ring_rename_member(const struct ring *r,
                       const char *old_id,
                       const char *new_id,
                       struct ring **out);

/*
 * The replicas of `partition` as ids: the first min(N, M) members of its
 * preference list (ring_preflist), into ids[0..RING_MAX_N) (views into r,
 * valid while it lives).  Returns how many.  Thread: any.
 */
size_t ring_preflist_ids(const struct ring *r,
                         uint32_t partition,
                         const char **ids);

/* Number of partitions member `member` (< M) owns. */
size_t ring_owned_count(const struct ring *r, size_t member);

/*
 * Partitions owned by `member`, ascending, into out[0..cap); returns how
 * many it owns (which may exceed cap: only cap are written).  O(Q).
 */
size_t ring_owned_list(const struct ring *r,
                       size_t member,
                       uint32_t *out,
                       size_t cap);

/*
 * 64-bit digest of the ring: XXH3-64 of its ring_encode bytes, so two
 * nodes agree on the ring iff (up to hash collisions) digests are equal.
 */
uint64_t ring_digest(const struct ring *r);

/* Whether two rings are identical (size, target_n, members, owners). */
bool ring_equal(const struct ring *a, const struct ring *b);

/*
 * Appends the ring's wire form to `out` (format in ring.c and
 * docs/cluster.md "Ring"); at most 8 + M * 65 + 2 * Q bytes.
 * Errors: RK_ENOMEM (out unchanged).
 */
int ring_encode(const struct ring *r, struct rk_buf *out);

/*
 * Decodes a ring from exactly `len` bytes at `buf` (untrusted input).
 * Every field is checked: RK_EVERSION for an unknown version byte,
 * RK_EPROTO for anything else malformed (short or trailing bytes, Q not a
 * power of two in range, target_n or member count out of range, an invalid,
 * unsorted or duplicate id, an owner index >= M); RK_ENOMEM.  Balance and
 * distinctness are not required of a decoded ring.  *out (returned-owned,
 * ring_destroy) is untouched on error.  O(len + Q * N).
 */
int ring_decode(const void *buf, size_t len, struct ring **out);

#endif /* RINGKV_CLUSTER_RING_H */
