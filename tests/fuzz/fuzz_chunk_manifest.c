/*
 * fuzz_chunk_manifest.c - libFuzzer target for the chunk manifest decoder
 * (cluster/chunk.h; TESTING.md B5: a manifest is a sibling's value, so it
 * arrives from peers and from disk as arbitrary bytes).
 *
 * Checks: no crash, leak or sanitizer report; an accepted manifest is
 * canonical (re-encoding its fields gives the input bytes), its blocks
 * cover exactly its length, and every block key is in the reserved key
 * space.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/chunk.h"
#include "common/buf.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chunk_manifest m;
    if (chunk_manifest_decode(data, size, (uint64_t)1 << 40, &m) != RK_OK) {
        return 0;
    }
    CHECK(m.n_blocks > 0 && m.block_size > 0 && m.total > 0);
    uint64_t sum = 0;
    uint64_t *h = malloc((size_t)m.n_blocks * sizeof(*h));
    CHECK(h != NULL);
    for (uint32_t i = 0; i < m.n_blocks; i++) {
        uint32_t l = chunk_block_len(&m, i);
        CHECK(l > 0 && l <= m.block_size);
        sum += l;
        h[i] = chunk_block_hash(&m, i);
        unsigned char key[CHUNK_KEY_LEN];
        chunk_block_key(&m, i, key);
        CHECK(chunk_key_is_reserved(key, sizeof(key)));
    }
    CHECK(sum == m.total);
    struct rk_buf b;
    rk_buf_init(&b);
    CHECK(chunk_manifest_encode(m.total, m.block_size, m.id, h, &b) == RK_OK);
    CHECK(b.len == size && memcmp(b.base, data, size) == 0);
    rk_buf_fini(&b);
    free(h);
    return 0;
}
