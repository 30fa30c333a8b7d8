/*
 * chunk.h - large values in a cluster stored as chunks (issue 12 item 4).
 *
 * A value over the chunk threshold never crosses a peer link, an engine
 * call or the coordinator's loop as one piece: the coordinator (op.c,
 * phase STORE) writes it as blocks of at most chunk_size bytes under
 * internal block keys, each an ordinary replicated write (quorum W,
 * sloppy quorum and hints), and then writes the user's key with a small
 * manifest that names the blocks (the sibling's DVV_SIB_CHUNKED flag says
 * its value is a manifest).  A read of the key (phase FETCH) reads the
 * manifest with quorum R, then its blocks, checks each against the hash
 * the manifest holds and hands the handler the assembled value.  Versions,
 * siblings, read repair and hints work on the manifest like on any value;
 * the blocks of one manifest are immutable and named by its random id, so
 * blocks of different versions never mix.  When a write supersedes a
 * manifest it read, the old blocks are deleted (phase GC).
 * This is the manifest-and-blocks layout of Riak CS (objects in 1 MB
 * blocks under a manifest) and of GridFS, inside the key-value store.
 *
 * Manifest encoding (little-endian, canonical):
 *   0   4  magic "RKCM"
 *   4   u8 version 1
 *   5   u8 flags 0
 *   6   u16 reserved 0
 *   8   u64 total value bytes (> 0)
 *   16  u32 block size (bytes of every block but the last, > 0)
 *   20  u32 n_blocks = ceil(total / block size)
 *   24  16 bytes id (random, names the blocks)
 *   40  n_blocks x u64 XXH3-64 of each block's bytes
 * Block key i: CHUNK_KEY_PREFIX "b" id (16 bytes) u32 i (big-endian).
 *
 * Keys starting with CHUNK_KEY_PREFIX are ringkv's: clients cannot name
 * them (op_add_key refuses) and key listings skip them.
 *
 * Pure functions over caller memory.  Thread: any.
 */
#ifndef RINGKV_CLUSTER_CHUNK_H
#define RINGKV_CLUSTER_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define CHUNK_KEY_PREFIX     "\xffrkv\xff"
#define CHUNK_KEY_PREFIX_LEN 5
#define CHUNK_KEY_LEN        (CHUNK_KEY_PREFIX_LEN + 1 + 16 + 4)
#define CHUNK_ID_LEN         16
#define CHUNK_MANIFEST_HDR   40
#define CHUNK_THRESHOLD_DEF  (1024u * 1024u) /* values over it are chunked */
#define CHUNK_SIZE_DEF       (512u * 1024u)  /* bytes per block */

/* A decoded manifest: a view into the bytes it was decoded from. */
struct chunk_manifest
{
    uint64_t total;      /* bytes of the value */
    uint32_t block_size; /* bytes per block (the last may be shorter) */
    uint32_t n_blocks;
    unsigned char id[CHUNK_ID_LEN];
    const unsigned char *hashes; /* n_blocks x u64 LE (view) */
};

/* Whether key (klen bytes) is in ringkv's reserved key space. */
bool chunk_key_is_reserved(const void *key, size_t klen);

/*
 * Encodes a manifest for a value of `total` bytes (> 0) cut in blocks of
 * block_size (> 0) bytes named by id, with hashes[i] = XXH3-64 of block i
 * (n = ceil(total / block_size) entries), appended to out.  RK_OK,
 * RK_EINVAL (zero sizes, more than UINT32_MAX blocks), RK_ENOMEM.
 */
int chunk_manifest_encode(uint64_t total,
                          uint32_t block_size,
                          const unsigned char id[CHUNK_ID_LEN],
                          const uint64_t *hashes,
                          struct rk_buf *out);

/*
 * Decodes p (len bytes) as a manifest whose value is at most max_total
 * bytes.  RK_OK and *m (a view into p), RK_ECORRUPT (not a manifest:
 * magic, version, sizes or length do not agree).
 */
int chunk_manifest_decode(const void *p,
                          size_t len,
                          uint64_t max_total,
                          struct chunk_manifest *m);

/* The hash the manifest holds for block i (< n_blocks). */
uint64_t chunk_block_hash(const struct chunk_manifest *m, uint32_t i);

/* Bytes of block i (< n_blocks): block_size, or the rest for the last. */
uint32_t chunk_block_len(const struct chunk_manifest *m, uint32_t i);

/* Writes block i's key (CHUNK_KEY_LEN bytes) into out. */
void chunk_block_key(const struct chunk_manifest *m,
                     uint32_t i,
                     unsigned char out[CHUNK_KEY_LEN]);

#endif /* RINGKV_CLUSTER_CHUNK_H */
