/*
 * keydir.c - the in-memory key directory shared by the bitcask and memory
 * engines (DESIGN.md section 3; Bitcask paper section "keydir").
 *
 * A chained hash table over a power-of-two bucket array, resized
 * incrementally as Redis's dict.c does (two tables while rehashing, one
 * bucket moved per mutation), so no single call pays for a full rehash.
 * Iteration uses Redis's reverse-binary cursor (dictScan): incrementing
 * the cursor's reversed bits visits every bucket of a 2^n table such that
 * a resize between calls never skips a bucket already due, which gives
 * SCAN's guarantee (a key present for the whole walk is returned at least
 * once).
 *
 * Memory: entries are packed into 2 MiB arena chunks and named by 32-bit
 * handles (chunk << 19 | 4-byte unit), so links and buckets are 4 bytes.
 * Freed entries go on per-size free lists and are reused by entries of the
 * same size.  Layout of an entry: see internal.h.
 *
 * Slot index (engine.h "The slot index", internal.h struct kd_slot): with
 * a slot function every entry carries two more handles at its end and is
 * chained, doubly, in a small hash table of its slot, keyed by a fixed-seed
 * hash so that its order is the same in every process.  engine_fold_slots
 * walks a slot's table with the same reverse-binary cursor as SCAN, which
 * is what makes its cursor survive resizes and restarts.
 *
 * Invariants:
 *  1. While rehashing (rehash_idx >= 0) buckets [0, rehash_idx) of t[0] are
 *     empty, and new entries go to t[1].
 *  2. A key is in at most one table.
 *  3. used of both tables == number of live entries.
 *  4. With a slot index: every live entry is in exactly one slot table,
 *     that of slot_fn(key), in the bucket of its slot hash; the sum of the
 *     slots' counts == number of live entries.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/error.h"
#include "storage/internal.h"

#define KD_UNIT        4u
#define KD_CHUNK_SHIFT 19u /* units per chunk: 2^19 (2 MiB) */
#define KD_CHUNK_UNITS (1u << KD_CHUNK_SHIFT)
#define KD_CHUNK_BYTES (KD_CHUNK_UNITS * KD_UNIT)
#define KD_MAX_CHUNKS  (1u << (32 - KD_CHUNK_SHIFT))
#define KD_HDR         28u
#define KD_HAS_EXP     0x80000000u
#define KD_MIN_SIZE    16u
#define KD_MIN_UNITS   ((KD_HDR + 1 + KD_UNIT - 1) / KD_UNIT)
#define KD_LINK_UNITS  2u /* slot index: snext, sprev */
#define KD_N_CLASSES                                                    \
    ((KD_HDR + 8 + STORAGE_MAX_KEY_LIMIT + KD_UNIT - 1) / KD_UNIT + 1 + \
     KD_LINK_UNITS)
/* The slot hash's seed: fixed, so a slot's order (and a persisted fold
 * cursor) is the same in every process.  Changing it changes the meaning
 * of every cursor handed out (docs/storage-format.md, "Slot index"). */
#define KD_SLOT_HASH_SEED 0x31786469746f6c73ull /* "slotidx1" */
#define KD_SLOT_MAX_BITS  31u

#define KD_HUGE (2u << 20)

/*
 * Blocks of 2 MiB and more (arena chunks, large bucket arrays) are mapped
 * 2 MiB-aligned and marked MADV_HUGEPAGE: keydir accesses are random, and
 * transparent huge pages cut the TLB misses that dominate a lookup
 * (measured: see docs/benchmarks.md).  Smaller blocks use rk_calloc.
 * Returns zeroed memory or NULL.
 */
static void *kd_big_alloc(size_t bytes)
{
    if (bytes < KD_HUGE) {
        return rk_calloc(1, bytes);
    }
    size_t len = (bytes + KD_HUGE - 1) & ~((size_t)KD_HUGE - 1);
    unsigned char *p = mmap(NULL, len + KD_HUGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    uintptr_t a = ((uintptr_t)p + KD_HUGE - 1) & ~((uintptr_t)KD_HUGE - 1);
    size_t head = a - (uintptr_t)p;
    if (head) {
        munmap(p, head);
    }
    munmap((unsigned char *)a + len, KD_HUGE - head);
    madvise((void *)a, len, MADV_HUGEPAGE);
    return (void *)a;
}

static void kd_big_free(void *p, size_t bytes)
{
    if (p == NULL) {
        return;
    }
    if (bytes < KD_HUGE) {
        rk_free(p);
        return;
    }
    munmap(p, (bytes + KD_HUGE - 1) & ~((size_t)KD_HUGE - 1));
}

static void kd_table_free(struct kd_table *t)
{
    kd_big_free(t->buckets, (size_t)t->size * sizeof(uint32_t));
    t->buckets = NULL;
}

static inline unsigned char *kd_ptr(const struct keydir *kd, uint32_t h)
{
    return kd->chunks[h >> KD_CHUNK_SHIFT] +
           (size_t)(h & (KD_CHUNK_UNITS - 1)) * KD_UNIT;
}

static inline uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void wr32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static inline uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void wr64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static inline size_t e_klen(const unsigned char *e)
{
    uint16_t k;
    memcpy(&k, e + 24, 2);
    return (size_t)k + 1;
}

static inline bool e_has_exp(const unsigned char *e)
{
    return (rd32(e + 4) & KD_HAS_EXP) != 0;
}

static inline const unsigned char *e_key(const unsigned char *e)
{
    return e + KD_HDR + (e_has_exp(e) ? 8 : 0);
}

/* Units of an entry's header, expiry and key (without slot links). */
static inline uint32_t e_units(size_t klen, bool has_exp)
{
    return (uint32_t)((KD_HDR + (has_exp ? 8 : 0) + klen + KD_UNIT - 1) /
                      KD_UNIT);
}

/* Units of an entry of kd: e_units plus its slot links, if any. */
static inline uint32_t kd_units(const struct keydir *kd,
                                size_t klen,
                                bool has_exp)
{
    return e_units(klen, has_exp) + kd->link_units;
}

/* Byte offset of an entry's slot links: snext at +0, sprev at +4. */
static inline size_t e_links_off(const unsigned char *e)
{
    return (size_t)e_units(e_klen(e), e_has_exp(e)) * KD_UNIT;
}

static inline uint64_t kd_hash(const struct keydir *kd,
                               const void *key,
                               size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, kd->seed);
}

int keydir_init(struct keydir *kd,
                uint64_t seed,
                engine_slot_fn slot_fn,
                uint32_t n_slots)
{
    memset(kd, 0, sizeof(*kd));
    kd->rehash_idx = -1;
    kd->seed = seed;
    if (slot_fn != NULL) {
        assert(n_slots >= 1 && n_slots <= ENGINE_MAX_SLOTS);
        kd->slots = rk_calloc(n_slots, sizeof(*kd->slots));
        if (kd->slots == NULL) {
            return RK_ENOMEM;
        }
        kd->slot_fn = slot_fn;
        kd->n_slots = n_slots;
        kd->link_units = KD_LINK_UNITS;
    }
    return RK_OK;
}

/* Frees every entry, table and slot bucket array; keeps the seed and the
 * slot index settings (its headers zeroed). */
static void kd_free_all(struct keydir *kd)
{
    for (uint32_t i = 0; i < kd->n_chunks; i++) {
        kd_big_free(kd->chunks[i], KD_CHUNK_BYTES);
    }
    rk_free(kd->chunks);
    kd_table_free(&kd->t[0]);
    kd_table_free(&kd->t[1]);
    rk_free(kd->free_heads);
    for (uint32_t i = 0; i < kd->n_slots; i++) {
        if (kd->slots[i].bits > 0) {
            rk_free(kd->slots[i].b.many);
        }
    }
    if (kd->slots) {
        memset(kd->slots, 0, (size_t)kd->n_slots * sizeof(*kd->slots));
    }
    struct keydir keep = *kd;
    memset(kd, 0, sizeof(*kd));
    kd->rehash_idx = -1;
    kd->seed = keep.seed;
    kd->slot_fn = keep.slot_fn;
    kd->n_slots = keep.n_slots;
    kd->link_units = keep.link_units;
    kd->slots = keep.slots;
}

void keydir_fini(struct keydir *kd)
{
    kd_free_all(kd);
    rk_free(kd->slots);
    kd->slots = NULL;
    kd->slot_fn = NULL;
    kd->n_slots = 0;
    kd->link_units = 0;
}

void keydir_reset(struct keydir *kd)
{
    kd_free_all(kd);
}

uint64_t keydir_count(const struct keydir *kd)
{
    return kd->t[0].used + kd->t[1].used;
}

uint64_t keydir_expiring_count(const struct keydir *kd)
{
    return kd->n_expiring;
}

uint64_t keydir_bytes(const struct keydir *kd)
{
    uint64_t b = sizeof(*kd);
    b += (kd->t[0].size + kd->t[1].size) * sizeof(uint32_t);
    b += (uint64_t)kd->n_chunks * KD_CHUNK_BYTES;
    b += (uint64_t)kd->cap_chunks * sizeof(unsigned char *);
    if (kd->free_heads) {
        b += (uint64_t)kd->n_classes * sizeof(uint32_t);
    }
    b += (uint64_t)kd->n_slots * sizeof(*kd->slots) + kd->slot_bucket_bytes;
    return b;
}

/* ---- arena ---- */

static void kd_free_entry(struct keydir *kd, uint32_t h, uint32_t units)
{
    if (kd->free_heads == NULL) {
        kd->free_heads = rk_calloc(KD_N_CLASSES, sizeof(uint32_t));
        if (kd->free_heads == NULL) {
            return; /* leak the slot until reset: harmless */
        }
        kd->n_classes = KD_N_CLASSES;
    }
    if (units >= kd->n_classes) {
        return;
    }
    wr32(kd_ptr(kd, h), kd->free_heads[units]);
    kd->free_heads[units] = h;
    kd->arena_free_bytes += (uint64_t)units * KD_UNIT;
}

static uint32_t kd_alloc(struct keydir *kd, uint32_t units)
{
    if (kd->free_heads && units < kd->n_classes && kd->free_heads[units]) {
        uint32_t h = kd->free_heads[units];
        kd->free_heads[units] = rd32(kd_ptr(kd, h));
        kd->arena_free_bytes -= (uint64_t)units * KD_UNIT;
        return h;
    }
    if (kd->n_chunks == 0 || kd->bump + units > KD_CHUNK_UNITS) {
        if (kd->n_chunks == KD_MAX_CHUNKS) {
            return 0;
        }
        if (kd->n_chunks == kd->cap_chunks) {
            uint32_t cap = kd->cap_chunks ? kd->cap_chunks * 2 : 16;
            unsigned char **c =
                rk_realloc(kd->chunks, cap * sizeof(unsigned char *));
            if (c == NULL) {
                return 0;
            }
            kd->chunks = c;
            kd->cap_chunks = cap;
        }
        unsigned char *chunk = kd_big_alloc(KD_CHUNK_BYTES);
        if (chunk == NULL) {
            return 0;
        }
        if (kd->n_chunks > 0 && kd->bump + KD_MIN_UNITS <= KD_CHUNK_UNITS) {
            /* Recycle the tail of the previous chunk. */
            uint32_t tail = KD_CHUNK_UNITS - kd->bump;
            kd_free_entry(kd, ((kd->n_chunks - 1) << KD_CHUNK_SHIFT) | kd->bump,
                          tail);
        }
        kd->chunks[kd->n_chunks++] = chunk;
        /* Handle 0 is the null handle: chunk 0 starts at unit 1. */
        kd->bump = kd->n_chunks == 1 ? 1 : 0;
    }
    uint32_t h = ((kd->n_chunks - 1) << KD_CHUNK_SHIFT) | kd->bump;
    kd->bump += units;
    return h;
}

/* ---- tables ---- */

static int kd_table_alloc(struct kd_table *t, uint64_t size)
{
    if (size > ((uint64_t)1 << 32)) {
        return RK_ENOMEM;
    }
    uint32_t *b = kd_big_alloc((size_t)size * sizeof(uint32_t));
    if (b == NULL) {
        return RK_ENOMEM;
    }
    t->buckets = b;
    t->size = size;
    t->used = 0;
    return RK_OK;
}

static uint64_t pow2_at_least(uint64_t n)
{
    uint64_t s = KD_MIN_SIZE;
    while (s < n) {
        s <<= 1;
    }
    return s;
}

static void kd_rehash_step(struct keydir *kd, unsigned n)
{
    if (kd->rehash_idx < 0) {
        return;
    }
    unsigned empty_budget = n * 10;
    struct kd_table *src = &kd->t[0];
    struct kd_table *dst = &kd->t[1];
    while (n > 0 && (uint64_t)kd->rehash_idx < src->size) {
        uint32_t h = src->buckets[kd->rehash_idx];
        if (h == 0) {
            kd->rehash_idx++;
            if (--empty_budget == 0) {
                break;
            }
            continue;
        }
        while (h != 0) {
            unsigned char *e = kd_ptr(kd, h);
            uint32_t next = rd32(e);
            uint64_t b = kd_hash(kd, e_key(e), e_klen(e)) & (dst->size - 1);
            wr32(e, dst->buckets[b]);
            dst->buckets[b] = h;
            src->used--;
            dst->used++;
            h = next;
        }
        src->buckets[kd->rehash_idx++] = 0;
        n--;
    }
    if ((uint64_t)kd->rehash_idx >= src->size || src->used == 0) {
        kd_table_free(src);
        kd->t[0] = *dst;
        memset(dst, 0, sizeof(*dst));
        kd->rehash_idx = -1;
    }
}

static void kd_resize(struct keydir *kd, uint64_t size)
{
    if (kd->rehash_idx >= 0 || size == kd->t[0].size) {
        return;
    }
    if (kd->t[0].size == 0 || kd->t[0].used == 0) {
        struct kd_table t;
        if (kd_table_alloc(&t, size) == RK_OK) {
            kd_table_free(&kd->t[0]);
            kd->t[0] = t;
        }
        return;
    }
    if (kd_table_alloc(&kd->t[1], size) != RK_OK) {
        return; /* keep going with longer chains */
    }
    kd->rehash_idx = 0;
}

static uint8_t slot_bits_for(uint64_t count);
static void slot_resize(struct keydir *kd, struct kd_slot *s, uint8_t bits);

int keydir_reserve(struct keydir *kd, uint64_t n)
{
    if (kd->slots != NULL && keydir_count(kd) == 0) {
        /* Size every slot's table for an even share of n (recovery knows
         * n from the hint files): no rebuilds while loading.  A failed
         * allocation just leaves the table to grow as keys come. */
        uint8_t bits = slot_bits_for(n / kd->n_slots);
        for (uint32_t i = 0; bits > 0 && i < kd->n_slots; i++) {
            if (kd->slots[i].bits < bits) {
                slot_resize(kd, &kd->slots[i], bits);
            }
        }
    }
    if (keydir_count(kd) == 0 && kd->rehash_idx < 0 && n > kd->t[0].size) {
        struct kd_table t;
        int rc = kd_table_alloc(&t, pow2_at_least(n));
        if (rc != RK_OK) {
            return rc;
        }
        kd_table_free(&kd->t[0]);
        kd->t[0] = t;
    }
    return RK_OK;
}

/* Finds key; *link (may be NULL) receives the address of the handle
 * pointing at it (bucket slot or previous entry's next field). */
static uint32_t kd_lookup(const struct keydir *kd,
                          const void *key,
                          size_t klen,
                          uint64_t hash,
                          unsigned char **link,
                          int *which)
{
    for (int i = 0; i < 2; i++) {
        const struct kd_table *t = &kd->t[i];
        if (t->size == 0) {
            continue;
        }
        unsigned char *prev =
            (unsigned char *)&t->buckets[hash & (t->size - 1)];
        uint32_t h = rd32(prev);
        while (h != 0) {
            unsigned char *e = kd_ptr(kd, h);
            if (e_klen(e) == klen && memcmp(e_key(e), key, klen) == 0) {
                if (link) {
                    *link = prev;
                }
                if (which) {
                    *which = i;
                }
                return h;
            }
            prev = e;
            h = rd32(e);
        }
        if (kd->rehash_idx < 0) {
            break;
        }
    }
    return 0;
}

uint64_t keydir_hash(const struct keydir *kd, const void *key, size_t klen)
{
    return kd_hash(kd, key, klen);
}

void keydir_prefetch(const struct keydir *kd, uint64_t hash, bool entry)
{
    for (int i = 0; i < 2; i++) {
        const struct kd_table *t = &kd->t[i];
        if (t->size == 0) {
            continue;
        }
        const uint32_t *slot = &t->buckets[hash & (t->size - 1)];
        if (!entry) {
            __builtin_prefetch(slot);
        } else if (*slot != 0) {
            __builtin_prefetch(kd_ptr(kd, *slot));
        }
        if (kd->rehash_idx < 0) {
            break;
        }
    }
}

uint32_t keydir_find(const struct keydir *kd, const void *key, size_t klen)
{
    if (klen == 0 || klen > STORAGE_MAX_KEY_LIMIT) {
        return 0;
    }
    return kd_lookup(kd, key, klen, kd_hash(kd, key, klen), NULL, NULL);
}

void keydir_meta(const struct keydir *kd, uint32_t h, struct kd_meta *m)
{
    const unsigned char *e = kd_ptr(kd, h);
    uint32_t vf = rd32(e + 4);
    m->value_len = vf & ~KD_HAS_EXP;
    m->loc = rd64(e + 8);
    m->timestamp = rd64(e + 16);
    m->flags = e[26];
    m->type = e[27];
    m->expire_at_ms = (vf & KD_HAS_EXP) ? rd64(e + KD_HDR) : 0;
}

uint64_t keydir_loc(const struct keydir *kd, uint32_t h)
{
    return rd64(kd_ptr(kd, h) + 8);
}

void keydir_set_loc(struct keydir *kd, uint32_t h, uint64_t loc)
{
    wr64(kd_ptr(kd, h) + 8, loc);
}

const unsigned char *keydir_key(const struct keydir *kd,
                                uint32_t h,
                                size_t *klen)
{
    const unsigned char *e = kd_ptr(kd, h);
    *klen = e_klen(e);
    return e_key(e);
}

static void kd_fill(unsigned char *e,
                    const void *key,
                    size_t klen,
                    const struct kd_meta *m)
{
    uint32_t vf = m->value_len & ~KD_HAS_EXP;
    if (m->expire_at_ms) {
        vf |= KD_HAS_EXP;
        wr64(e + KD_HDR, m->expire_at_ms);
    }
    wr32(e + 4, vf);
    wr64(e + 8, m->loc);
    wr64(e + 16, m->timestamp);
    uint16_t k = (uint16_t)(klen - 1);
    memcpy(e + 24, &k, 2);
    e[26] = m->flags;
    e[27] = m->type;
    memcpy(e + KD_HDR + (m->expire_at_ms ? 8 : 0), key, klen);
}

/* ---- slot index ---- */

static inline uint64_t slot_hash(const void *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, KD_SLOT_HASH_SEED);
}

static inline struct kd_slot *kd_slot_of(const struct keydir *kd,
                                         const void *key,
                                         size_t klen)
{
    uint32_t s = kd->slot_fn(key, klen);
    return &kd->slots[s < kd->n_slots ? s : s % kd->n_slots];
}

static inline uint32_t *slot_buckets(struct kd_slot *s)
{
    return s->bits > 0 ? s->b.many : &s->b.one;
}

/* The bucket of slot hash `sh` in s. */
static inline uint32_t *slot_head(struct kd_slot *s, uint64_t sh)
{
    return &slot_buckets(s)[sh & (((uint64_t)1 << s->bits) - 1)];
}

/* The slot links of entry h. */
static inline unsigned char *kd_links(const struct keydir *kd, uint32_t h)
{
    unsigned char *e = kd_ptr(kd, h);
    return e + e_links_off(e);
}

/* Pushes entry h, whose links are at l, on the bucket *head. */
static void slot_push(struct keydir *kd,
                      uint32_t *head,
                      uint32_t h,
                      unsigned char *l)
{
    uint32_t first = *head;
    wr32(l, first);
    wr32(l + 4, 0);
    if (first != 0) {
        wr32(kd_links(kd, first) + 4, h);
    }
    *head = h;
}

/* The table size for `count` keys: the smallest 2^bits >= count / 2. */
static uint8_t slot_bits_for(uint64_t count)
{
    uint8_t bits = 0;
    while (bits < KD_SLOT_MAX_BITS && ((uint64_t)2 << bits) < count) {
        bits++;
    }
    return bits;
}

/* Rebuilds s's table with 2^bits buckets (O(keys in s)); on an allocation
 * failure keeps the old one (longer chains, still correct). */
static void slot_resize(struct keydir *kd, struct kd_slot *s, uint8_t bits)
{
    uint64_t n = (uint64_t)1 << bits;
    uint32_t one = 0;
    uint32_t *nb = &one;
    if (bits > 0) {
        nb = rk_calloc((size_t)n, sizeof(uint32_t));
        if (nb == NULL) {
            return;
        }
    }
    uint32_t *ob = slot_buckets(s);
    uint64_t on = (uint64_t)1 << s->bits;
    for (uint64_t i = 0; i < on; i++) {
        uint32_t h = ob[i];
        while (h != 0) {
            unsigned char *e = kd_ptr(kd, h);
            unsigned char *l = e + e_links_off(e);
            uint32_t next = rd32(l);
            uint64_t sh = slot_hash(e_key(e), e_klen(e));
            slot_push(kd, &nb[sh & (n - 1)], h, l);
            h = next;
        }
    }
    if (s->bits > 0) {
        rk_free(s->b.many);
        kd->slot_bucket_bytes -= on * sizeof(uint32_t);
    }
    s->bits = bits;
    if (bits > 0) {
        s->b.many = nb;
        kd->slot_bucket_bytes += n * sizeof(uint32_t);
    } else {
        s->b.one = one;
    }
}

/* Adds the new entry h (key/klen) to its slot. */
static void slot_link(struct keydir *kd,
                      uint32_t h,
                      const void *key,
                      size_t klen)
{
    struct kd_slot *s = kd_slot_of(kd, key, klen);
    slot_push(kd, slot_head(s, slot_hash(key, klen)), h, kd_links(kd, h));
    s->count++;
    if ((uint64_t)s->count > ((uint64_t)4 << s->bits) &&
        s->bits < KD_SLOT_MAX_BITS) {
        slot_resize(kd, s, slot_bits_for(s->count));
    }
}

/* Takes entry h out of its slot. */
static void slot_unlink(struct keydir *kd, uint32_t h)
{
    const unsigned char *e = kd_ptr(kd, h);
    const unsigned char *key = e_key(e);
    size_t klen = e_klen(e);
    struct kd_slot *s = kd_slot_of(kd, key, klen);
    const unsigned char *l = e + e_links_off(e);
    uint32_t next = rd32(l), prev = rd32(l + 4);
    if (prev != 0) {
        wr32(kd_links(kd, prev), next);
    } else {
        *slot_head(s, slot_hash(key, klen)) = next;
    }
    if (next != 0) {
        wr32(kd_links(kd, next) + 4, prev);
    }
    s->count--;
    if (s->bits > 0 && (uint64_t)s->count * 2 < ((uint64_t)1 << s->bits)) {
        slot_resize(kd, s, slot_bits_for(s->count));
    }
}

/* Entry h of a key was copied to nh (a new size): nh takes its place. */
static void slot_move(struct keydir *kd, uint32_t h, uint32_t nh)
{
    const unsigned char *ol = kd_links(kd, h);
    unsigned char *ne = kd_ptr(kd, nh);
    unsigned char *nl = ne + e_links_off(ne);
    uint32_t next = rd32(ol), prev = rd32(ol + 4);
    wr32(nl, next);
    wr32(nl + 4, prev);
    if (prev != 0) {
        wr32(kd_links(kd, prev), nh);
    } else {
        const unsigned char *key = e_key(ne);
        size_t klen = e_klen(ne);
        *slot_head(kd_slot_of(kd, key, klen), slot_hash(key, klen)) = nh;
    }
    if (next != 0) {
        wr32(kd_links(kd, next) + 4, nh);
    }
}

int keydir_put(struct keydir *kd,
               const void *key,
               size_t klen,
               const struct kd_meta *m,
               struct kd_meta *old,
               bool *had_old)
{
    assert(klen >= 1 && klen <= STORAGE_MAX_KEY_LIMIT);
    kd_rehash_step(kd, 1);
    uint64_t hash = kd_hash(kd, key, klen);
    unsigned char *link = NULL;
    uint32_t h = kd_lookup(kd, key, klen, hash, &link, NULL);
    uint32_t units = kd_units(kd, klen, m->expire_at_ms != 0);
    if (h != 0) {
        unsigned char *e = kd_ptr(kd, h);
        if (old) {
            keydir_meta(kd, h, old);
        }
        if (had_old) {
            *had_old = true;
        }
        bool old_exp = e_has_exp(e);
        uint32_t old_units = kd_units(kd, klen, old_exp);
        if (old_units == units) {
            kd->n_expiring -= old_exp;
            kd->n_expiring += m->expire_at_ms != 0;
            uint32_t next = rd32(e);
            kd_fill(e, key, klen, m);
            wr32(e, next);
            return RK_OK;
        }
        uint32_t nh = kd_alloc(kd, units);
        if (nh == 0) {
            return RK_ENOMEM;
        }
        /* kd_alloc may have grown `chunks`, but never moves chunks. */
        e = kd_ptr(kd, h);
        unsigned char *ne = kd_ptr(kd, nh);
        kd_fill(ne, key, klen, m);
        wr32(ne, rd32(e));
        wr32(link, nh);
        if (kd->slots != NULL) {
            slot_move(kd, h, nh);
        }
        kd_free_entry(kd, h, old_units);
        kd->n_expiring -= old_exp;
        kd->n_expiring += m->expire_at_ms != 0;
        return RK_OK;
    }
    if (had_old) {
        *had_old = false;
    }
    if (kd->t[0].size == 0) {
        int rc = kd_table_alloc(&kd->t[0], KD_MIN_SIZE);
        if (rc != RK_OK) {
            return rc;
        }
    }
    uint32_t nh = kd_alloc(kd, units);
    if (nh == 0) {
        return RK_ENOMEM;
    }
    unsigned char *ne = kd_ptr(kd, nh);
    kd_fill(ne, key, klen, m);
    struct kd_table *t = kd->rehash_idx >= 0 ? &kd->t[1] : &kd->t[0];
    uint64_t b = hash & (t->size - 1);
    wr32(ne, t->buckets[b]);
    t->buckets[b] = nh;
    t->used++;
    kd->key_bytes += klen;
    kd->n_expiring += m->expire_at_ms != 0;
    if (kd->slots != NULL) {
        slot_link(kd, nh, key, klen);
    }
    if (kd->rehash_idx < 0 && kd->t[0].used >= kd->t[0].size) {
        kd_resize(kd, kd->t[0].size * 2);
    }
    return RK_OK;
}

int keydir_del(struct keydir *kd,
               const void *key,
               size_t klen,
               struct kd_meta *old)
{
    if (klen == 0 || klen > STORAGE_MAX_KEY_LIMIT) {
        return RK_ENOTFOUND;
    }
    kd_rehash_step(kd, 1);
    uint64_t hash = kd_hash(kd, key, klen);
    unsigned char *link = NULL;
    int which = 0;
    uint32_t h = kd_lookup(kd, key, klen, hash, &link, &which);
    if (h == 0) {
        return RK_ENOTFOUND;
    }
    unsigned char *e = kd_ptr(kd, h);
    if (old) {
        keydir_meta(kd, h, old);
    }
    if (kd->slots != NULL) {
        slot_unlink(kd, h);
    }
    wr32(link, rd32(e));
    kd->t[which].used--;
    struct kd_table *t0 = &kd->t[0];
    kd->key_bytes -= klen;
    kd->n_expiring -= e_has_exp(e);
    kd_free_entry(kd, h, kd_units(kd, klen, e_has_exp(e)));
    if (kd->rehash_idx < 0 && t0->size > KD_MIN_SIZE &&
        t0->used < t0->size / 8) {
        kd_resize(kd, pow2_at_least(t0->used * 2));
    }
    return RK_OK;
}

/* ---- iteration ---- */

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFull) | ((v & 0x00FF00FF00FF00FFull) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFull) |
        ((v & 0x0000FFFF0000FFFFull) << 16);
    return (v >> 32) | (v << 32);
}

/* Visits one bucket; returns entries visited, or -1 if cb stopped. */
static long kd_visit_bucket(const struct keydir *kd,
                            const struct kd_table *t,
                            uint64_t b,
                            keydir_visit_cb cb,
                            void *data)
{
    long n = 0;
    uint32_t h = t->buckets[b];
    while (h != 0) {
        const unsigned char *e = kd_ptr(kd, h);
        uint32_t next = rd32(e);
        struct kd_meta m;
        keydir_meta(kd, h, &m);
        n++;
        if (!cb(data, e_key(e), e_klen(e), &m)) {
            return -1;
        }
        h = next;
    }
    return n;
}

static inline uint64_t cursor_next(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = rev64(v);
    v++;
    return rev64(v);
}

uint64_t keydir_scan(const struct keydir *kd,
                     uint64_t cursor,
                     size_t count,
                     keydir_visit_cb cb,
                     void *data)
{
    if (keydir_count(kd) == 0 || kd->t[0].size == 0) {
        return 0;
    }
    uint64_t v = cursor;
    size_t visited = 0;
    size_t steps = 0;
    size_t max_steps = count * 10 + 10;
    do {
        uint64_t start = v;
        long n;
        if (kd->rehash_idx < 0) {
            uint64_t m0 = kd->t[0].size - 1;
            n = kd_visit_bucket(kd, &kd->t[0], v & m0, cb, data);
            if (n < 0) {
                return start;
            }
            visited += (size_t)n;
            v = cursor_next(v, m0);
        } else {
            const struct kd_table *small = &kd->t[0], *large = &kd->t[1];
            if (small->size > large->size) {
                small = &kd->t[1];
                large = &kd->t[0];
            }
            uint64_t m0 = small->size - 1, m1 = large->size - 1;
            n = kd_visit_bucket(kd, small, v & m0, cb, data);
            if (n < 0) {
                return start;
            }
            visited += (size_t)n;
            do {
                n = kd_visit_bucket(kd, large, v & m1, cb, data);
                if (n < 0) {
                    return start;
                }
                visited += (size_t)n;
                v = cursor_next(v, m1);
            } while (v & (m0 ^ m1));
        }
        steps++;
    } while (v != 0 && visited < count && steps < max_steps);
    return v;
}

bool keydir_foreach(const struct keydir *kd, keydir_visit_cb cb, void *data)
{
    for (int i = 0; i < 2; i++) {
        const struct kd_table *t = &kd->t[i];
        for (uint64_t b = 0; b < t->size; b++) {
            if (kd_visit_bucket(kd, t, b, cb, data) < 0) {
                return false;
            }
        }
    }
    return true;
}

void keydir_engine_meta(const struct kd_meta *km, struct engine_meta *em)
{
    memset(em, 0, sizeof(*em)); /* padding too: callers may compare */
    em->timestamp = km->timestamp;
    em->expire_at_ms = km->expire_at_ms;
    em->value_len = km->value_len;
    em->flags = km->flags;
    em->type = km->type;
}

struct engine_visit
{
    engine_key_cb cb;
    void *data;
};

static bool engine_visit_cb(void *data,
                            const unsigned char *key,
                            size_t klen,
                            const struct kd_meta *km)
{
    struct engine_visit *v = data;
    struct engine_meta em;
    keydir_engine_meta(km, &em);
    return v->cb(v->data, key, klen, &em);
}

uint64_t keydir_engine_scan(const struct keydir *kd,
                            uint64_t cursor,
                            size_t count,
                            engine_key_cb cb,
                            void *data)
{
    struct engine_visit v = {cb, data};
    return keydir_scan(kd, cursor, count ? count : 1, engine_visit_cb, &v);
}

void keydir_engine_foreach(const struct keydir *kd,
                           engine_key_cb cb,
                           void *data)
{
    struct engine_visit v = {cb, data};
    keydir_foreach(kd, engine_visit_cb, &v);
}

/* ---- slot index: counts and folds ---- */

bool keydir_has_slots(const struct keydir *kd)
{
    return kd->slots != NULL;
}

uint64_t keydir_slot_count(const struct keydir *kd, uint32_t slot)
{
    return kd->slots[slot].count;
}

static inline uint64_t fold_cursor(uint32_t slot, uint64_t pos)
{
    return ((uint64_t)slot << 32) | pos;
}

/*
 * Within a slot the position `v` is a reverse-binary bucket cursor
 * (keydir_scan's, dictScan's) over the slot's table, below 2^32 since a
 * table has at most 2^KD_SLOT_MAX_BITS buckets; 0 after the last bucket.
 */
uint64_t keydir_fold_slots(const struct keydir *kd,
                           uint32_t first,
                           uint32_t last,
                           uint64_t cursor,
                           size_t count,
                           keydir_visit_cb cb,
                           void *data)
{
    if (cursor == ENGINE_FOLD_DONE) {
        return ENGINE_FOLD_DONE;
    }
    uint32_t slot = (uint32_t)(cursor >> 32);
    uint64_t v = (uint32_t)cursor;
    if (slot < first) {
        slot = first;
        v = 0;
    }
    size_t visited = 0, steps = 0, max_steps = count * 8 + 8;
    while (slot <= last && visited < count && steps < max_steps) {
        const struct kd_slot *s = &kd->slots[slot];
        if (s->count == 0) {
            slot++;
            v = 0;
            continue;
        }
        const uint32_t *bk = s->bits > 0 ? s->b.many : &s->b.one;
        uint64_t mask = ((uint64_t)1 << s->bits) - 1;
        do {
            uint32_t h = bk[v & mask];
            while (h != 0) {
                const unsigned char *e = kd_ptr(kd, h);
                uint32_t next = rd32(e + e_links_off(e));
                struct kd_meta m;
                keydir_meta(kd, h, &m);
                visited++;
                if (!cb(data, e_key(e), e_klen(e), &m)) {
                    return fold_cursor(slot, v); /* this bucket again */
                }
                h = next;
            }
            v = cursor_next(v, mask);
            steps++;
        } while (v != 0 && visited < count && steps < max_steps);
        if (v == 0) {
            slot++;
        }
    }
    return slot > last ? ENGINE_FOLD_DONE : fold_cursor(slot, v);
}

uint64_t keydir_engine_fold_slots(const struct keydir *kd,
                                  uint32_t first,
                                  uint32_t last,
                                  uint64_t cursor,
                                  size_t count,
                                  engine_key_cb cb,
                                  void *data)
{
    struct engine_visit v = {cb, data};
    return keydir_fold_slots(kd, first, last, cursor, count, engine_visit_cb,
                             &v);
}
