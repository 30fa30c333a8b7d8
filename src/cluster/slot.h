/*
 * slot.h - Redis Cluster hash slots (DESIGN.md section 4, issue 13 item 1).
 *
 * A key's slot is CRC16 of the key, or of its hash tag, modulo 16384, as
 * the Redis Cluster specification defines it ("Keys distribution model"
 * and "Hash tags", https://redis.io/docs/latest/operate/oss_and_stack/
 * reference/cluster-spec/; Redis src/cluster.c keyHashSlot):
 *   - CRC16 is the XMODEM variant: polynomial 0x1021, initial value 0,
 *     input and output not reflected, no final xor; CRC16("123456789") is
 *     0x31c3;
 *   - hash tag: if the key holds a '{' and, after the first '{', a '}'
 *     with at least one byte between the two, only the bytes between the
 *     first '{' and the first '}' after it are hashed; otherwise (no '{',
 *     no '}' after it, or "{}") the whole key is.  So "{user1000}.a" and
 *     "{user1000}.b" share a slot, "foo{}{bar}" hashes the whole key and
 *     "foo{{bar}}zap" hashes "{bar".
 * The ring (ring.h) maps slots onto its Q partitions by contiguous ranges,
 * so every Redis Cluster client computes the partition of a key.
 *
 * Pure functions: no state, no allocation.  Thread: any.
 */
#ifndef RINGKV_CLUSTER_SLOT_H
#define RINGKV_CLUSTER_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT 16384 /* Redis Cluster's hash slots, 0..16383 */

/*
 * CRC16/XMODEM of buf[0..len) (table driven, one table lookup a byte).
 * `buf` may be NULL when len is 0 (the CRC of nothing is 0).  O(len).
 */
uint16_t slot_crc16(const void *buf, size_t len);

/*
 * The hash slot of key/klen (bytes, binary-safe, any length; NULL with
 * klen 0 is the empty key, slot 0): CRC16 of the key or of its hash tag,
 * mod SLOT_COUNT (the rules in the header).  Returns 0..SLOT_COUNT-1.
 * O(klen).  Algorithm: the Redis Cluster specification, "Hash tags".
 */
uint32_t slot_of_key(const void *key, size_t klen);

#endif /* RINGKV_CLUSTER_SLOT_H */
