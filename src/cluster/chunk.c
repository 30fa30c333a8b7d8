/*
 * chunk.c - see chunk.h: the chunk manifest's encoding and block keys.
 */
#include "cluster/chunk.h"

#include <string.h>

#include "common/endian.h"
#include "common/error.h"

#define MAGIC   "RKCM"
#define VERSION 1

bool chunk_key_is_reserved(const void *key, size_t klen)
{
    return klen >= CHUNK_KEY_PREFIX_LEN &&
           memcmp(key, CHUNK_KEY_PREFIX, CHUNK_KEY_PREFIX_LEN) == 0;
}

static uint64_t n_blocks_of(uint64_t total, uint32_t block_size)
{
    return total / block_size + (total % block_size != 0);
}

int chunk_manifest_encode(uint64_t total,
                          uint32_t block_size,
                          const unsigned char id[CHUNK_ID_LEN],
                          const uint64_t *hashes,
                          struct rk_buf *out)
{
    if (total == 0 || block_size == 0) {
        return RK_EINVAL;
    }
    uint64_t n = n_blocks_of(total, block_size);
    if (n > UINT32_MAX) {
        return RK_EINVAL;
    }
    size_t len = CHUNK_MANIFEST_HDR + (size_t)n * 8;
    if (rk_buf_reserve(out, len) != RK_OK) {
        return RK_ENOMEM;
    }
    unsigned char *p = (unsigned char *)out->base + out->len;
    memcpy(p, MAGIC, 4);
    p[4] = VERSION;
    p[5] = 0;
    rk_put_le16(p + 6, 0);
    rk_put_le64(p + 8, total);
    rk_put_le32(p + 16, block_size);
    rk_put_le32(p + 20, (uint32_t)n);
    memcpy(p + 24, id, CHUNK_ID_LEN);
    for (uint64_t i = 0; i < n; i++) {
        rk_put_le64(p + CHUNK_MANIFEST_HDR + i * 8, hashes[i]);
    }
    out->len += len;
    return RK_OK;
}

int chunk_manifest_decode(const void *p,
                          size_t len,
                          uint64_t max_total,
                          struct chunk_manifest *m)
{
    const unsigned char *b = p;
    if (len < CHUNK_MANIFEST_HDR || memcmp(b, MAGIC, 4) != 0 ||
        b[4] != VERSION || b[5] != 0 || rk_get_le16(b + 6) != 0) {
        return RK_ECORRUPT;
    }
    uint64_t total = rk_get_le64(b + 8);
    uint32_t bs = rk_get_le32(b + 16);
    uint32_t n = rk_get_le32(b + 20);
    if (total == 0 || total > max_total || bs == 0 ||
        n_blocks_of(total, bs) != n || (len - CHUNK_MANIFEST_HDR) / 8 != n ||
        (len - CHUNK_MANIFEST_HDR) % 8 != 0) {
        return RK_ECORRUPT;
    }
    m->total = total;
    m->block_size = bs;
    m->n_blocks = n;
    memcpy(m->id, b + 24, CHUNK_ID_LEN);
    m->hashes = b + CHUNK_MANIFEST_HDR;
    return RK_OK;
}

uint64_t chunk_block_hash(const struct chunk_manifest *m, uint32_t i)
{
    return rk_get_le64(m->hashes + (size_t)i * 8);
}

uint32_t chunk_block_len(const struct chunk_manifest *m, uint32_t i)
{
    uint64_t off = (uint64_t)i * m->block_size;
    uint64_t rest = m->total - off;
    return rest < m->block_size ? (uint32_t)rest : m->block_size;
}

void chunk_block_key(const struct chunk_manifest *m,
                     uint32_t i,
                     unsigned char out[CHUNK_KEY_LEN])
{
    memcpy(out, CHUNK_KEY_PREFIX, CHUNK_KEY_PREFIX_LEN);
    out[CHUNK_KEY_PREFIX_LEN] = 'b';
    memcpy(out + CHUNK_KEY_PREFIX_LEN + 1, m->id, CHUNK_ID_LEN);
    unsigned char *q = out + CHUNK_KEY_PREFIX_LEN + 1 + CHUNK_ID_LEN;
    q[0] = (unsigned char)(i >> 24);
    q[1] = (unsigned char)(i >> 16);
    q[2] = (unsigned char)(i >> 8);
    q[3] = (unsigned char)i;
}
