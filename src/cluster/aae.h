/*
 * aae.h - the hash tree of active anti-entropy (issue 14 item 4): one per
 * partition per replica, comparing two replicas' copies of a partition
 * without moving their keys.
 *
 * Tictac-style (Riak KV's tictacaae, after Merkle, "A Digital Signature
 * Based on a Conventional Encryption Function", 1987): every stored object
 * contributes one 64-bit entry hash, XXH3-64 of its key seeded with the
 * hash of its canonical encoding; an entry is XORed into one leaf (the
 * caller's choice, e.g. by slot and key hash), so adding and removing an
 * object are the same O(1) toggle and the tree does not depend on the
 * order of updates.  Leaves are grouped by AAE_FANOUT into branches; the
 * root is the XOR of every leaf.  Two trees over the same set of (key,
 * object) pairs are equal; a differing pair changes its leaf, its branch
 * and the root (barring a 64-bit XOR collision).  An exchange compares the
 * roots, then the branches, then the leaves of differing branches, and
 * repairs only the keys of differing leaves.
 *
 * Sizes: n_leaves is a power of two, AAE_FANOUT (64) to AAE_MAX_LEAVES;
 * a tree of L leaves takes 8 * (L + L/64) bytes (4096 leaves: 33 KiB).
 *
 * Sans-IO, no clock.  Thread: one per tree.  Memory: rk_malloc/rk_free.
 */
#ifndef RINGKV_CLUSTER_AAE_H
#define RINGKV_CLUSTER_AAE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AAE_FANOUT     64u
#define AAE_MAX_LEAVES (1u << 20)

struct aae_tree
{
    uint32_t n_leaves;   /* power of two, >= AAE_FANOUT */
    uint32_t n_branches; /* n_leaves / AAE_FANOUT */
    uint64_t *leaf;      /* n_leaves XORs of entry hashes */
    uint64_t *branch;    /* n_branches XORs of their leaves */
    uint64_t root;       /* XOR of every leaf */
    uint64_t entries;    /* toggles in minus toggles out (a count, for
                            stats: not part of the comparison) */
};

/* Starts an empty tree of n_leaves leaves (caller storage).  RK_OK,
 * RK_EINVAL (not a power of two in [AAE_FANOUT, AAE_MAX_LEAVES]),
 * RK_ENOMEM. */
int aae_tree_init(struct aae_tree *t, uint32_t n_leaves);

/* Frees the tree's arrays; safe on a zeroed or finished tree. */
void aae_tree_fini(struct aae_tree *t);

/* Empties the tree (a rebuild starts from here). */
void aae_tree_clear(struct aae_tree *t);

/* The entry hash of key (klen bytes) whose object's canonical encoding
 * hashes to obj_hash (XXH3-64).  Never 0. */
uint64_t aae_entry_hash(const void *key, size_t klen, uint64_t obj_hash);

/*
 * Applies a change of key's object to leaf `leaf` (< n_leaves): the entry
 * of the old object (old_hash; 0 = the key had none) goes out, the entry
 * of the new one (new_hash; 0 = it has none now) comes in.  Equal hashes
 * change nothing.  O(1).
 */
void aae_tree_update(struct aae_tree *t,
                     uint32_t leaf,
                     const void *key,
                     size_t klen,
                     uint64_t old_hash,
                     uint64_t new_hash);

/*
 * Branches [first, first + n) of a and of b (arrays of 64-bit XORs, as
 * exchanged): writes the indexes (first + i) where they differ to out
 * (room for n) and returns how many.
 */
size_t aae_diff(const uint64_t *a,
                const uint64_t *b,
                uint32_t first,
                uint32_t n,
                uint32_t *out);

/* Whether the tree's root, branches and leaves agree with each other
 * (tests: every toggle keeps them consistent). */
bool aae_tree_check(const struct aae_tree *t);

#endif /* RINGKV_CLUSTER_AAE_H */
