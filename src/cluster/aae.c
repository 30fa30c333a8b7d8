/*
 * aae.c - see aae.h: the XOR hash tree of active anti-entropy.
 */
#include "cluster/aae.h"

#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/error.h"

int aae_tree_init(struct aae_tree *t, uint32_t n_leaves)
{
    memset(t, 0, sizeof(*t));
    if (n_leaves < AAE_FANOUT || n_leaves > AAE_MAX_LEAVES ||
        (n_leaves & (n_leaves - 1)) != 0) {
        return RK_EINVAL;
    }
    t->leaf = rk_calloc(n_leaves, sizeof(*t->leaf));
    t->branch = rk_calloc(n_leaves / AAE_FANOUT, sizeof(*t->branch));
    if (t->leaf == NULL || t->branch == NULL) {
        aae_tree_fini(t);
        return RK_ENOMEM;
    }
    t->n_leaves = n_leaves;
    t->n_branches = n_leaves / AAE_FANOUT;
    return RK_OK;
}

void aae_tree_fini(struct aae_tree *t)
{
    rk_free(t->leaf);
    rk_free(t->branch);
    memset(t, 0, sizeof(*t));
}

void aae_tree_clear(struct aae_tree *t)
{
    if (t->leaf) {
        memset(t->leaf, 0, (size_t)t->n_leaves * sizeof(*t->leaf));
        memset(t->branch, 0, (size_t)t->n_branches * sizeof(*t->branch));
    }
    t->root = 0;
    t->entries = 0;
}

uint64_t aae_entry_hash(const void *key, size_t klen, uint64_t obj_hash)
{
    uint64_t h = XXH3_64bits_withSeed(key, klen, obj_hash);
    return h ? h : 1; /* 0 stands for "no entry" */
}

/* XORs entry e into leaf, its branch and the root. */
static void toggle(struct aae_tree *t, uint32_t leaf, uint64_t e)
{
    t->leaf[leaf] ^= e;
    t->branch[leaf / AAE_FANOUT] ^= e;
    t->root ^= e;
}

void aae_tree_update(struct aae_tree *t,
                     uint32_t leaf,
                     const void *key,
                     size_t klen,
                     uint64_t old_hash,
                     uint64_t new_hash)
{
    if (old_hash == new_hash || leaf >= t->n_leaves) {
        return;
    }
    if (old_hash) {
        toggle(t, leaf, aae_entry_hash(key, klen, old_hash));
        t->entries--;
    }
    if (new_hash) {
        toggle(t, leaf, aae_entry_hash(key, klen, new_hash));
        t->entries++;
    }
}

size_t aae_diff(const uint64_t *a,
                const uint64_t *b,
                uint32_t first,
                uint32_t n,
                uint32_t *out)
{
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            out[k++] = first + i;
        }
    }
    return k;
}

bool aae_tree_check(const struct aae_tree *t)
{
    uint64_t root = 0;
    for (uint32_t b = 0; b < t->n_branches; b++) {
        uint64_t x = 0;
        for (uint32_t i = 0; i < AAE_FANOUT; i++) {
            x ^= t->leaf[b * AAE_FANOUT + i];
        }
        if (x != t->branch[b]) {
            return false;
        }
        root ^= x;
    }
    return root == t->root;
}
