/*
 * ring.c - the partitioned ring and its claim algorithm; see ring.h for the
 * contract (G1-G4) and DESIGN.md section 4.
 *
 * Claim algorithm.  The idea comes from Riak's riak_core_claim (claim_v2:
 * members compute how many partitions they "want", and under-loaded members
 * take partitions from over-loaded ones where taking keeps target_n
 * distinct owners; claim_v3's acceptance test: a ring must be balanced and
 * target_n-valid or it is rebuilt).  This is our own greedy, written from
 * that description, with an exact balance target and a bounded repair
 * search instead of Riak's randomised sequential re-claim:
 *
 *   0. W = min(N, floor(Q / ceil(Q/M))) is the distinctness window (the
 *      largest one compatible with balance); lo = floor(Q/M), hi = ceil.
 *   1. Seed: each partition keeps its owner in `prev` (old partition
 *      boundaries are mapped when Q changed) if that node is still a member;
 *      other partitions are holes.
 *   2. Conflicts: scanning p = 0..Q-1, a partition whose owner already owns
 *      one of the W-1 partitions before it (wrapping) becomes a hole.
 *   3. Targets: members holding more than lo keep hi (most first, then
 *      the lower index, i.e. the smaller id) up to Q mod M of them; the
 *      remaining hi targets float to whichever member fills a hole or
 *      takes a partition first (claim_deficit).  A fresh claim gives hi
 *      to the lowest indexes.
 *   4. Holes, in ascending order, go to the member below its target that
 *      fits there (owns nothing within W-1 either side), preferring one
 *      that also fits within N (soft rule, when W < N), then the largest
 *      remaining deficit, then the largest "spread" (distance to its
 *      nearest partition), then the lowest index.
 *   5. Members above target give partitions to members below: the member
 *      with the largest deficit takes, among the partitions of members above
 *      target where it fits, one that also fits within N, then one that
 *      wastes the least room for its later partitions (a gap of g between
 *      two of its partitions has room for g/W - 1 more), then the one
 *      farthest from its own partitions, then the lowest.  So a joining
 *      node takes about Q/(M+1) partitions spread around the ring, and
 *      nothing else moves.
 *   6. When no member fits a hole, a repair search moves another partition's
 *      owner into the hole, making that partition the hole (chains of depth
 *      <= 3, nearest partitions first, bounded total work).
 *   7. If 2-6 fail from `prev`, they are rerun from an empty ring, where
 *      holes are filled in ascending order by earliest deadline first (the
 *      member that must take a partition soonest to fit its remaining ones
 *      W apart before wrapping onto its first; EDF, as in task scheduling),
 *      then the soft rule, then the partition's owner in `prev`.  This
 *      keeps fresh rings nearly round-robin, and N-distinct almost
 *      everywhere even when W < N.
 *   8. If that fails too (it can for N >= 9 in tight cases), a closed-form
 *      two-stream layout (claim_construct) is used, which provably meets
 *      G1 and G2.  So G1 and G2 always hold; G4 is best effort.
 *   9. With a `prev`, a last pass (claim_unmove) swaps the owners of two
 *      partitions whenever that gives one back its previous owner without
 *      breaking W: it undoes detours of the repair chains.
 *
 * Everything is a function of (Q, N, sorted ids, prev): G3.
 *
 * Wire format, version 1 (all integers little-endian; docs/cluster.md):
 *   off   size     field
 *   0     1        version (RING_FORMAT_VERSION = 1)
 *   1     1        reserved, 0
 *   2     2        Q: power of two, 1..RING_MAX_SIZE
 *   4     2        target_n: 1..RING_MAX_N
 *   6     2        M: member count, 1..RING_MAX_MEMBERS
 *   8     M*(1+l)  members by ascending id: u8 length l (1..64), l id bytes
 *   ...   2*Q      owner member index of partitions 0..Q-1, each < M
 * Nothing follows.
 *
 * Invariants of struct ring:
 *   (1) ids strictly ascending (memcmp, shorter first on a common prefix);
 *   (2) owner[p] < n_members for every p; owned[i] = #{p : owner[p] == i};
 *   (3) digest = XXH3_64bits(ring_encode bytes); window per ring_window().
 */
#include "cluster/ring.h"

#include <string.h>
#include <xxhash.h>

#include "cluster/slot.h"
#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"

struct ring_member
{
    char *id;   /* NUL-terminated, within ring.id_bytes */
    size_t len; /* 1..RING_MAX_ID_LEN */
};

struct ring
{
    uint32_t q;                 /* partitions, power of two */
    uint32_t log2_q;            /* log2(q), 0..10 */
    uint32_t n;                 /* target_n */
    uint32_t window;            /* G2's W, 1..n */
    size_t n_members;           /* M >= 1 */
    struct ring_member *member; /* M, sorted by id (invariant 1) */
    char *id_bytes;             /* storage of every id plus its NUL */
    uint16_t *owner;            /* q member indexes */
    uint32_t *owned;            /* M partition counts */
    uint64_t digest;            /* invariant 3 */
};

#define RING_HEADER_BYTES 8

/* ---- members ------------------------------------------------------------ */

bool ring_member_id_is_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > RING_MAX_ID_LEN) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x21 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Bytewise order, a proper prefix first: locale-free (G3). */
static int id_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* Allocates a ring with room for the given members and q partitions. */
static struct ring *ring_alloc(uint32_t q,
                               uint32_t n,
                               size_t n_members,
                               size_t id_total)
{
    struct ring *r = rk_calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->q = q;
    while ((1u << r->log2_q) < q) {
        r->log2_q++;
    }
    r->n = n;
    r->n_members = n_members;
    r->member = rk_calloc(n_members, sizeof(*r->member));
    r->id_bytes = rk_malloc(id_total + n_members);
    r->owner = rk_calloc(q, sizeof(*r->owner));
    r->owned = rk_calloc(n_members, sizeof(*r->owned));
    if (r->member == NULL || r->id_bytes == NULL || r->owner == NULL ||
        r->owned == NULL) {
        ring_destroy(r);
        return NULL;
    }
    return r;
}

void ring_destroy(struct ring *r)
{
    if (r == NULL) {
        return;
    }
    rk_free(r->member);
    rk_free(r->id_bytes);
    rk_free(r->owner);
    rk_free(r->owned);
    rk_free(r);
}

/* Copies id i (already validated) into slot i of r, at *pos in id_bytes. */
static void ring_set_member(struct ring *r,
                            size_t i,
                            const char *id,
                            size_t len,
                            size_t *pos)
{
    char *dst = r->id_bytes + *pos;
    memcpy(dst, id, len);
    dst[len] = '\0';
    r->member[i].id = dst;
    r->member[i].len = len;
    *pos += len + 1;
}

/* ---- accessors ---------------------------------------------------------- */

uint32_t ring_size(const struct ring *r)
{
    return r->q;
}

uint32_t ring_target_n(const struct ring *r)
{
    return r->n;
}

uint32_t ring_window(const struct ring *r)
{
    return r->window;
}

size_t ring_member_count(const struct ring *r)
{
    return r->n_members;
}

const char *ring_member_id(const struct ring *r, size_t i, size_t *len)
{
    if (len != NULL) {
        *len = r->member[i].len;
    }
    return r->member[i].id;
}

int ring_find_member(const struct ring *r, const char *id, size_t len)
{
    size_t lo = 0, hi = r->n_members;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = id_cmp(r->member[mid].id, r->member[mid].len, id, len);
        if (c == 0) {
            return (int)mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

/* Q <= RING_MAX_SIZE divides SLOT_COUNT: both are powers of two. */
_Static_assert(RING_MAX_SIZE <= SLOT_COUNT && (SLOT_COUNT % RING_MAX_SIZE) == 0,
               "ring sizes must divide the slot count");

uint32_t ring_partition_of_slot(const struct ring *r, uint32_t slot)
{
    /* SLOT_COUNT = 2^14 slots, Q = 2^log2_q partitions: the top log2_q
     * bits of the 14-bit slot */
    return (slot & (SLOT_COUNT - 1)) >> (14 - r->log2_q);
}

uint32_t ring_partition_of_key(const struct ring *r,
                               const void *key,
                               size_t klen)
{
    return ring_partition_of_slot(r, slot_of_key(key, klen));
}

void ring_slot_range(const struct ring *r,
                     uint32_t partition,
                     uint32_t *first,
                     uint32_t *last)
{
    uint32_t per = SLOT_COUNT >> r->log2_q;
    uint32_t p = partition & (r->q - 1);
    *first = p * per;
    *last = p * per + per - 1;
}

size_t ring_owner(const struct ring *r, uint32_t partition)
{
    return r->owner[partition & (r->q - 1)];
}

size_t ring_owned_count(const struct ring *r, size_t member)
{
    return r->owned[member];
}

size_t ring_owned_list(const struct ring *r,
                       size_t member,
                       uint32_t *out,
                       size_t cap)
{
    size_t k = 0;
    for (uint32_t p = 0; p < r->q; p++) {
        if (r->owner[p] == member) {
            if (k < cap) {
                out[k] = p;
            }
            k++;
        }
    }
    return k;
}

size_t ring_preflist(const struct ring *r,
                     uint32_t partition,
                     size_t *out_idx,
                     size_t cap)
{
    uint64_t seen[RING_MAX_MEMBERS / 64] = {0};
    size_t want = cap < r->n_members ? cap : r->n_members;
    size_t k = 0;
    uint32_t mask = r->q - 1;
    for (uint32_t i = 0; i < r->q && k < want; i++) {
        uint16_t o = r->owner[(partition + i) & mask];
        if (!(seen[o / 64] & (UINT64_C(1) << (o % 64)))) {
            seen[o / 64] |= UINT64_C(1) << (o % 64);
            out_idx[k++] = o;
        }
    }
    /* Members owning nothing (M > Q) come last, in index order. */
    for (size_t m = 0; m < r->n_members && k < want; m++) {
        if (r->owned[m] == 0) {
            out_idx[k++] = m;
        }
    }
    return k;
}

uint64_t ring_digest(const struct ring *r)
{
    return r->digest;
}

bool ring_equal(const struct ring *a, const struct ring *b)
{
    if (a->q != b->q || a->n != b->n || a->n_members != b->n_members ||
        a->digest != b->digest) {
        return false;
    }
    for (size_t i = 0; i < a->n_members; i++) {
        if (id_cmp(a->member[i].id, a->member[i].len, b->member[i].id,
                   b->member[i].len) != 0) {
            return false;
        }
    }
    return memcmp(a->owner, b->owner, a->q * sizeof(*a->owner)) == 0;
}

/* ---- encoding ----------------------------------------------------------- */

static size_t ring_encoded_len(const struct ring *r)
{
    size_t len = RING_HEADER_BYTES + 2 * (size_t)r->q;
    for (size_t i = 0; i < r->n_members; i++) {
        len += 1 + r->member[i].len;
    }
    return len;
}

int ring_encode(const struct ring *r, struct rk_buf *out)
{
    size_t len = ring_encoded_len(r);
    if (rk_buf_reserve(out, len) != RK_OK) {
        return RK_ENOMEM;
    }
    unsigned char *p = (unsigned char *)out->base + out->len;
    p[0] = RING_FORMAT_VERSION;
    p[1] = 0;
    rk_put_le16(p + 2, (uint16_t)r->q);
    rk_put_le16(p + 4, (uint16_t)r->n);
    rk_put_le16(p + 6, (uint16_t)r->n_members);
    p += RING_HEADER_BYTES;
    for (size_t i = 0; i < r->n_members; i++) {
        *p++ = (unsigned char)r->member[i].len;
        memcpy(p, r->member[i].id, r->member[i].len);
        p += r->member[i].len;
    }
    for (uint32_t i = 0; i < r->q; i++) {
        rk_put_le16(p, r->owner[i]);
        p += 2;
    }
    out->len += len;
    return RK_OK;
}

/*
 * Fills owned[], window and digest from member[] and owner[].  The digest
 * hashes the encoding, built in a temporary buffer.  RK_OK or RK_ENOMEM.
 */
static int ring_finish(struct ring *r)
{
    memset(r->owned, 0, r->n_members * sizeof(*r->owned));
    for (uint32_t p = 0; p < r->q; p++) {
        r->owned[r->owner[p]]++;
    }
    /* W = min(N, smallest wrapping gap between partitions of one owner). */
    uint32_t gap = r->q;
    int32_t last[RING_MAX_MEMBERS];
    for (size_t i = 0; i < r->n_members; i++) {
        last[i] = -1;
    }
    for (uint32_t i = 0; i < 2 * r->q; i++) {
        uint16_t o = r->owner[i & (r->q - 1)];
        if (last[o] >= 0 && i - (uint32_t)last[o] < gap) {
            gap = i - (uint32_t)last[o];
        }
        last[o] = (int32_t)i;
    }
    r->window = gap < r->n ? gap : r->n;

    struct rk_buf b;
    rk_buf_init(&b);
    if (ring_encode(r, &b) != RK_OK) {
        return RK_ENOMEM;
    }
    r->digest = XXH3_64bits(b.base, b.len);
    rk_buf_fini(&b);
    return RK_OK;
}

int ring_decode(const void *buf, size_t len, struct ring **out)
{
    const unsigned char *p = buf;
    if (len < 1) {
        return RK_EPROTO;
    }
    if (p[0] != RING_FORMAT_VERSION) {
        return RK_EVERSION;
    }
    if (len < RING_HEADER_BYTES || p[1] != 0) {
        return RK_EPROTO;
    }
    uint32_t q = rk_get_le16(p + 2);
    uint32_t n = rk_get_le16(p + 4);
    size_t m = rk_get_le16(p + 6);
    if (q == 0 || q > RING_MAX_SIZE || (q & (q - 1)) != 0 || n == 0 ||
        n > RING_MAX_N || m == 0 || m > RING_MAX_MEMBERS) {
        return RK_EPROTO;
    }
    /* Walk the member table once to validate it and size the ids. */
    size_t off = RING_HEADER_BYTES, id_total = 0;
    const char *prev_id = NULL;
    size_t prev_len = 0;
    for (size_t i = 0; i < m; i++) {
        if (off >= len) {
            return RK_EPROTO;
        }
        size_t l = p[off++];
        if (l > len - off) {
            return RK_EPROTO;
        }
        const char *id = (const char *)p + off;
        if (!ring_member_id_is_valid(id, l) ||
            (prev_id != NULL && id_cmp(prev_id, prev_len, id, l) >= 0)) {
            return RK_EPROTO;
        }
        prev_id = id;
        prev_len = l;
        id_total += l;
        off += l;
    }
    if (len - off != 2 * (size_t)q) {
        return RK_EPROTO;
    }
    for (uint32_t i = 0; i < q; i++) {
        if (rk_get_le16(p + off + 2 * i) >= m) {
            return RK_EPROTO;
        }
    }

    struct ring *r = ring_alloc(q, n, m, id_total);
    if (r == NULL) {
        return RK_ENOMEM;
    }
    size_t pos = 0;
    off = RING_HEADER_BYTES;
    for (size_t i = 0; i < m; i++) {
        size_t l = p[off++];
        ring_set_member(r, i, (const char *)p + off, l, &pos);
        off += l;
    }
    for (uint32_t i = 0; i < q; i++) {
        r->owner[i] = rk_get_le16(p + off + 2 * i);
    }
    if (ring_finish(r) != RK_OK) {
        ring_destroy(r);
        return RK_ENOMEM;
    }
    *out = r;
    return RK_OK;
}

/* ---- claim -------------------------------------------------------------- */

/*
 * Work budget of one claim attempt, in inner-loop steps: bounds a
 * ring_create to ~0.15 s at worst (Q=1024); typical claims use a tiny
 * fraction of it.  Spending is deterministic, so so is the result.
 */
#define CLAIM_BUDGET (UINT64_C(1) << 26)

struct claim
{
    uint32_t q;        /* partitions */
    uint32_t mask;     /* q - 1 */
    uint32_t w;        /* distinctness window W, >= 1 */
    uint32_t n;        /* target_n, the soft window, >= w (capped at q) */
    uint32_t spread;   /* cap on the spread search distance */
    size_t m;          /* members */
    int32_t *owner;    /* q: member index, or -1 for a hole */
    uint32_t *count;   /* m: partitions owned */
    uint32_t *target;  /* m: lo or hi */
    uint32_t lo;       /* floor(q/m) */
    uint32_t floating; /* hi targets not yet given to a member (not fresh) */
    uint32_t *left;    /* q: scratch, distance back to the taker's nearest */
    uint32_t *right;   /* q: scratch, distance forward to it */
    int32_t *first;    /* m: scratch, first partition of each member or -1 */
    int32_t *seed;     /* q: owners seeded from prev, -1 where none */
    bool fresh;        /* no previous ring: holes fill in ascending order */
    uint64_t budget;   /* steps left; 0 = give up */
};

static bool claim_tick(struct claim *c, uint64_t steps)
{
    if (c->budget < steps) {
        c->budget = 0;
        return false;
    }
    c->budget -= steps;
    return true;
}

/*
 * Whether member x may own partition p under window `win`: it owns nothing
 * within win-1 partitions either side of p, not counting p itself nor
 * `skip` (a partition about to be vacated, or UINT32_MAX).
 */
static bool claim_fits_in(struct claim *c,
                          int32_t x,
                          uint32_t p,
                          uint32_t skip,
                          uint32_t win)
{
    claim_tick(c, win);
    for (uint32_t d = 1; d < win; d++) {
        uint32_t a = (p + d) & c->mask, b = (p - d) & c->mask;
        if ((a != skip && c->owner[a] == x) ||
            (b != skip && c->owner[b] == x)) {
            return false;
        }
    }
    return true;
}

/* The hard rule: x fits at p within the window W. */
static bool claim_fits(struct claim *c, int32_t x, uint32_t p, uint32_t skip)
{
    return claim_fits_in(c, x, p, skip, c->w);
}

/*
 * The soft rule, when W < N: x also fits within N, so a ring that cannot be
 * N-distinct everywhere still is almost everywhere, and a later join that
 * makes N-distinctness possible has little to repair.
 */
static bool claim_fits_soft(struct claim *c, int32_t x, uint32_t p)
{
    return c->w >= c->n || claim_fits_in(c, x, p, UINT32_MAX, c->n);
}

/* Distance from p to x's nearest partition, capped at c->spread + 1. */
static uint32_t claim_spread(struct claim *c, int32_t x, uint32_t p)
{
    uint32_t d = 1;
    for (; d <= c->spread; d++) {
        if (c->owner[(p + d) & c->mask] == x ||
            c->owner[(p - d) & c->mask] == x) {
            break;
        }
    }
    claim_tick(c, d);
    return d;
}

static void claim_set(struct claim *c, uint32_t p, int32_t x)
{
    if (c->owner[p] >= 0) {
        c->count[c->owner[p]]--;
    }
    c->owner[p] = x;
    if (x >= 0) {
        c->count[x]++;
    }
}

/*
 * How many more partitions member i should get: up to its target, or one
 * when it sits at lo and a hi target is still floating (from `prev`, the
 * members that get the Q mod M hi targets are settled lazily, by whoever
 * fits a hole, rather than by index).
 */
static uint32_t claim_deficit(const struct claim *c, size_t i)
{
    if (c->count[i] < c->target[i]) {
        return c->target[i] - c->count[i];
    }
    return c->floating > 0 && c->target[i] == c->lo && c->count[i] == c->lo;
}

/* Gives partition p to x, settling a floating hi target on x if needed. */
static void claim_give(struct claim *c, uint32_t p, int32_t x)
{
    if (c->count[x] >= c->target[x]) {
        c->target[x]++;
        c->floating--;
    }
    claim_set(c, p, x);
}

/*
 * Deadline of member x for a fresh claim filling p in ascending order: the
 * last partition where x can take its next one and still fit its remaining
 * r partitions w apart before wrapping onto its first one (earliest
 * deadline first, as in task scheduling).  first[x] is x's first
 * partition, or -1.
 */
static int64_t claim_deadline(const struct claim *c, int32_t x, uint32_t p)
{
    int64_t r = (int64_t)c->target[x] - c->count[x];
    int64_t f = c->first[x];
    if (f < 0) {
        f = p < c->w - 1 ? p : c->w - 1;
    }
    return f + (int64_t)c->q - r * c->w;
}

/*
 * Step 4 for one hole: the best member below target that fits at p, or -1.
 * Ranked by: overdue (fresh: deadline <= p, earliest first), the soft rule,
 * p's owner in prev, earlier deadline (fresh only), larger deficit, larger
 * spread, lower index.
 */
static int32_t claim_best_for_hole(struct claim *c, uint32_t p)
{
    int32_t best = -1;
    int64_t best_dl = 0;
    uint32_t best_def = 0, best_spread = 0;
    bool best_urgent = false, best_soft = false, best_kept = false;
    if (c->fresh) {
        for (size_t i = 0; i < c->m; i++) {
            c->first[i] = -1;
        }
        for (uint32_t i = p; i-- > 0;) {
            if (c->owner[i] >= 0) {
                c->first[c->owner[i]] = (int32_t)i;
            }
        }
        claim_tick(c, p + c->m);
    }
    for (size_t i = 0; i < c->m; i++) {
        int32_t x = (int32_t)i;
        uint32_t def = claim_deficit(c, i);
        if (def == 0 || !claim_fits(c, x, p, UINT32_MAX)) {
            continue;
        }
        int64_t dl = c->fresh ? claim_deadline(c, x, p) : 0;
        bool urgent = c->fresh && dl <= (int64_t)p;
        bool soft = claim_fits_soft(c, x, p);
        bool kept = c->seed[p] == x;
        uint32_t sp = claim_spread(c, x, p);
        bool better;
        if (best < 0 || urgent != best_urgent) {
            better = best < 0 || urgent;
        } else if (urgent && dl != best_dl) {
            better = dl < best_dl;
        } else if (soft != best_soft) {
            better = soft;
        } else if (kept != best_kept) {
            better = kept;
        } else if (dl != best_dl) {
            better = dl < best_dl;
        } else if (def != best_def) {
            better = def > best_def;
        } else {
            better = sp > best_spread;
        }
        if (better) {
            best = x;
            best_dl = dl;
            best_def = def;
            best_spread = sp;
            best_urgent = urgent;
            best_soft = soft;
            best_kept = kept;
        }
    }
    return best;
}

/*
 * Step 6: fills hole h, moving owners along a chain of at most `depth`
 * other partitions.  On failure the ring is as before.
 */
static bool claim_fill(struct claim *c, uint32_t h, int depth)
{
    int32_t x = claim_best_for_hole(c, h);
    if (x >= 0) {
        claim_give(c, h, x);
        return true;
    }
    if (depth == 0 || c->budget == 0) {
        return false;
    }
    /* Nearest partitions first: short moves keep the ring local. */
    for (uint32_t d = 1; d <= c->q / 2 && c->budget > 0; d++) {
        for (int side = 0; side < 2; side++) {
            uint32_t qp = side == 0 ? (h + d) & c->mask : (h - d) & c->mask;
            int32_t y = c->owner[qp];
            if (y < 0 || (side == 1 && d == c->q / 2) ||
                !claim_fits(c, y, h, qp)) {
                continue;
            }
            claim_set(c, qp, -1);
            claim_set(c, h, y);
            if (claim_fill(c, qp, depth - 1)) {
                return true;
            }
            claim_set(c, h, -1);
            claim_set(c, qp, y);
        }
    }
    return false;
}

/* Fills every hole in ascending order (step 4, with step 6's repair). */
static bool claim_fill_holes(struct claim *c)
{
    for (uint32_t p = 0; p < c->q; p++) {
        if (c->owner[p] >= 0) {
            continue;
        }
        if (!claim_fill(c, p, 1) && !claim_fill(c, p, 2) &&
            !claim_fill(c, p, 3)) {
            return false;
        }
    }
    return true;
}

/*
 * left[p]/right[p] = distance from p back/forward to x's nearest partition
 * (wrapping, p itself excluded), capped at q: one pass each way over two
 * turns of the ring.
 */
static void claim_distances(struct claim *c, int32_t x)
{
    uint32_t q = c->q, far = q;
    for (uint32_t i = 0; i < 2 * q; i++) {
        uint32_t p = i & c->mask;
        if (i >= q) {
            c->left[p] = far;
        }
        far = c->owner[p] == x ? 1 : (far < q ? far + 1 : q);
    }
    far = q;
    for (uint32_t i = 2 * q; i-- > 0;) {
        uint32_t p = i & c->mask;
        if (i < q) {
            c->right[p] = far;
        }
        far = c->owner[p] == x ? 1 : (far < q ? far + 1 : q);
    }
    claim_tick(c, 4 * (uint64_t)q);
}

/* How many more partitions a gap of g between two of x's can take. */
static uint32_t claim_room(const struct claim *c, uint32_t g)
{
    return g / c->w > 0 ? g / c->w - 1 : 0;
}

/*
 * Step 5: one transfer from a member above target to the member below
 * target with the largest deficit.  Among the partitions it may take, the
 * taker prefers (a) fitting within N as well, (b) losing the least room
 * for its later partitions (taking next to its own partitions packs them
 * tightly; taking the middle of a gap can waste it), (c) the farthest from
 * its own partitions, (d) the lowest.  Returns false when nothing could
 * move.
 */
static bool claim_take_one(struct claim *c)
{
    int32_t x = -1;
    uint32_t best_def = 0;
    for (size_t i = 0; i < c->m; i++) {
        if (claim_deficit(c, i) > best_def) {
            best_def = claim_deficit(c, i);
            x = (int32_t)i;
        }
    }
    if (x < 0) {
        return false;
    }
    claim_distances(c, x);
    int64_t best_p = -1;
    bool best_soft = false;
    uint32_t best_loss = 0, best_near = 0;
    for (uint32_t p = 0; p < c->q; p++) {
        int32_t y = c->owner[p];
        if (c->count[y] <= c->target[y] || !claim_fits(c, x, p, UINT32_MAX)) {
            continue;
        }
        bool soft = claim_fits_soft(c, x, p);
        uint32_t l = c->left[p], r = c->right[p];
        uint32_t loss =
            claim_room(c, l + r) - claim_room(c, l) - claim_room(c, r);
        uint32_t near = l < r ? l : r;
        bool better;
        if (best_p < 0 || soft != best_soft) {
            better = best_p < 0 || soft;
        } else if (loss != best_loss) {
            better = loss < best_loss;
        } else {
            better = near > best_near;
        }
        if (better) {
            best_p = p;
            best_soft = soft;
            best_loss = loss;
            best_near = near;
        }
    }
    if (best_p >= 0) {
        claim_give(c, (uint32_t)best_p, x);
        return true;
    }
    /* x fits nowhere: vacate a partition of a member above target and let
     * the repair search fill it, with one-step chains tried everywhere
     * before longer ones. */
    for (int depth = 1; depth <= 2; depth++) {
        for (uint32_t p = 0; p < c->q && c->budget > 0; p++) {
            int32_t y = c->owner[p];
            if (c->count[y] <= c->target[y]) {
                continue;
            }
            claim_set(c, p, -1);
            if (claim_fill(c, p, depth)) {
                return true;
            }
            claim_set(c, p, y);
        }
    }
    return false;
}

/*
 * Step 6b, after a claim from `prev`: swaps the owners of two partitions
 * whenever that gives a partition back its seeded owner (c->seed) without
 * breaking the window, undoing detours of the repair chains.  Counts do
 * not change.  Passes repeat while they gain, bounded by the budget.
 */
static void claim_unmove(struct claim *c)
{
    bool gained = true;
    while (gained && c->budget > 0) {
        gained = false;
        for (uint32_t p = 0; p < c->q; p++) {
            int32_t x = c->seed[p], y = c->owner[p];
            if (x < 0 || x == y) {
                continue;
            }
            for (uint32_t k = 1; k < c->q && c->budget > 0; k++) {
                uint32_t o = (p + k) & c->mask;
                if (c->owner[o] != x || c->seed[o] == x ||
                    !claim_fits(c, x, p, o) || !claim_fits(c, y, o, p)) {
                    continue;
                }
                c->owner[p] = x;
                c->owner[o] = y;
                gained = true;
                break;
            }
        }
    }
}

/* Steps 2-6 on a seeded claim.  Returns whether G1 and G2 were reached. */
static bool claim_run(struct claim *c)
{
    /* 2. conflicts */
    for (uint32_t p = 0; p < c->q; p++) {
        int32_t x = c->owner[p];
        for (uint32_t d = 1; x >= 0 && d < c->w; d++) {
            if (c->owner[(p - d) & c->mask] == x) {
                claim_set(c, p, -1);
                break;
            }
        }
    }
    /* 3. targets: hi for Q mod M members.  Fresh: the lowest indexes.
     * From prev: members already holding hi or more keep hi (most first,
     * then lower index); the rest float (claim_deficit). */
    c->lo = c->q / (uint32_t)c->m;
    uint32_t extra = c->q % (uint32_t)c->m;
    for (size_t i = 0; i < c->m; i++) {
        c->target[i] = c->lo;
    }
    c->floating = 0;
    for (uint32_t k = 0; k < extra; k++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < c->m; i++) {
            if (c->target[i] == c->lo && (c->fresh || c->count[i] > c->lo) &&
                (best == SIZE_MAX || c->count[i] > c->count[best])) {
                best = i;
            }
        }
        if (best == SIZE_MAX) {
            c->floating = extra - k;
            break;
        }
        c->target[best] = c->lo + 1;
    }
    /* 4. holes */
    if (!claim_fill_holes(c)) {
        return false;
    }
    /* 5. surplus to deficit */
    for (;;) {
        bool unbalanced = c->floating > 0;
        for (size_t i = 0; i < c->m; i++) {
            unbalanced |= c->count[i] != c->target[i];
        }
        if (!unbalanced) {
            return true;
        }
        if (!claim_take_one(c)) {
            return false;
        }
    }
}

/*
 * Seeds c->owner from prev (step 1): partition p of the new ring takes the
 * owner of the old partition holding p's first position, if still a member.
 */
static void claim_seed(struct claim *c,
                       const struct ring *r,
                       const struct ring *prev)
{
    memset(c->count, 0, c->m * sizeof(*c->count));
    for (uint32_t p = 0; p < c->q; p++) {
        c->owner[p] = -1;
    }
    if (prev == NULL) {
        return;
    }
    for (uint32_t p = 0; p < c->q; p++) {
        uint32_t op = (uint32_t)(((uint64_t)p * prev->q) / c->q);
        const struct ring_member *pm = &prev->member[prev->owner[op]];
        int idx = ring_find_member(r, pm->id, pm->len);
        if (idx >= 0) {
            claim_set(c, p, idx);
        }
    }
}

/*
 * Step 8, the closed-form layout (ours), which always meets G1 and G2.
 * With k = ceil(Q/M) and b = Q mod M, members 0..b-1 own k partitions
 * and the rest k-1 (all own Q/M when b = 0).  Two round-robin streams are
 * interleaved: the H = b*k "hi" slots are the positions p where
 * floor((p+1)H/Q) > floor(pH/Q) (a Sturmian/Bresenham pattern, so any run
 * of s positions holds floor(sH/Q) or ceil(sH/Q) of them), hi slot i goes
 * to member i mod b, and the j-th remaining slot to member b + j mod
 * (M-b).  Each stream's length is a multiple of its member count, so both
 * wrap seamlessly.  Distinctness: a member of the hi stream recurs every
 * b hi slots; a run holding b+1 of them is longer than b*Q/H = Q/k >= W
 * positions.  The other stream's density is (M-b)(k-1)/Q < (M-b)/W
 * because kW <= Q, so a run of W positions never holds M-b+1 of its slots.
 */
static void claim_construct(struct claim *c)
{
    uint32_t q = c->q, m = (uint32_t)c->m;
    uint32_t k = (q + m - 1) / m, b = q % m;
    uint64_t h = (uint64_t)b * k;
    for (uint32_t p = 0; p < q; p++) {
        uint64_t a = p * h / q, a_next = (p + 1) * h / q;
        if (a_next > a) {
            c->owner[p] = (int32_t)(a % b);
        } else {
            c->owner[p] = (int32_t)(b + (p - a) % (m - b));
        }
    }
}

/* Step 7: claims into r->owner.  RK_OK or RK_ENOMEM. */
static int ring_claim(struct ring *r, const struct ring *prev)
{
    struct claim c = {.q = r->q, .mask = r->q - 1, .m = r->n_members};
    c.owner = rk_calloc(c.q, sizeof(*c.owner));
    c.count = rk_calloc(c.m, sizeof(*c.count));
    c.target = rk_calloc(c.m, sizeof(*c.target));
    c.left = rk_calloc(c.q, sizeof(*c.left));
    c.right = rk_calloc(c.q, sizeof(*c.right));
    c.first = rk_calloc(c.m, sizeof(*c.first));
    c.seed = rk_calloc(c.q, sizeof(*c.seed));
    int rc = RK_ENOMEM;
    if (c.owner == NULL || c.count == NULL || c.target == NULL ||
        c.left == NULL || c.right == NULL || c.first == NULL ||
        c.seed == NULL) {
        goto out;
    }
    uint32_t hi = (c.q + (uint32_t)c.m - 1) / (uint32_t)c.m;
    c.w = c.q / hi < r->n ? c.q / hi : r->n;
    c.n = r->n < c.q ? r->n : c.q;
    c.spread = 2 * hi + c.n < c.q / 2 ? 2 * hi + c.n : c.q / 2;
    bool done = false;
    for (uint32_t p = 0; p < c.q; p++) {
        c.seed[p] = -1;
    }
    if (prev != NULL) {
        claim_seed(&c, r, prev);
        c.budget = CLAIM_BUDGET;
        memcpy(c.seed, c.owner, c.q * sizeof(*c.seed));
        done = claim_run(&c);
    }
    if (!done) {
        c.fresh = true;
        claim_seed(&c, r, NULL);
        c.budget = CLAIM_BUDGET;
        done = claim_run(&c);
    }
    if (!done) {
        claim_construct(&c);
    }
    if (prev != NULL) {
        c.budget = CLAIM_BUDGET;
        claim_unmove(&c);
    }
    for (uint32_t p = 0; p < c.q; p++) {
        r->owner[p] = (uint16_t)c.owner[p];
    }
    rc = RK_OK;
out:
    rk_free(c.owner);
    rk_free(c.count);
    rk_free(c.target);
    rk_free(c.left);
    rk_free(c.right);
    rk_free(c.first);
    rk_free(c.seed);
    return rc;
}

/* Sorts member indexes by id (insertion sort: M <= 1024, done once). */
static void sort_ids(const char *const *ids,
                     const size_t *lens,
                     size_t *ord,
                     size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t v = ord[i], j = i;
        while (j > 0 &&
               id_cmp(ids[ord[j - 1]], lens[ord[j - 1]], ids[v], lens[v]) > 0) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = v;
    }
}

int ring_create(uint32_t q,
                uint32_t n,
                const char *const *ids,
                size_t n_ids,
                const struct ring *prev,
                struct ring **out)
{
    if (q == 0 || q > RING_MAX_SIZE || (q & (q - 1)) != 0 || n == 0 ||
        n > RING_MAX_N || ids == NULL || n_ids == 0 ||
        n_ids > RING_MAX_MEMBERS) {
        return RK_EINVAL;
    }
    size_t lens[RING_MAX_MEMBERS], ord[RING_MAX_MEMBERS], id_total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] == NULL) {
            return RK_EINVAL;
        }
        lens[i] = strnlen(ids[i], RING_MAX_ID_LEN + 1);
        if (!ring_member_id_is_valid(ids[i], lens[i])) {
            return RK_EINVAL;
        }
        id_total += lens[i];
        ord[i] = i;
    }
    sort_ids(ids, lens, ord, n_ids);
    for (size_t i = 1; i < n_ids; i++) {
        if (id_cmp(ids[ord[i - 1]], lens[ord[i - 1]], ids[ord[i]],
                   lens[ord[i]]) == 0) {
            return RK_EINVAL;
        }
    }
    struct ring *r = ring_alloc(q, n, n_ids, id_total);
    if (r == NULL) {
        return RK_ENOMEM;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n_ids; i++) {
        ring_set_member(r, i, ids[ord[i]], lens[ord[i]], &pos);
    }
    int rc = ring_claim(r, prev);
    if (rc == RK_OK) {
        rc = ring_finish(r);
    }
    if (rc != RK_OK) {
        ring_destroy(r);
        return rc;
    }
    *out = r;
    return RK_OK;
}

int ring_clone(const struct ring *r, struct ring **out)
{
    struct rk_buf b;
    rk_buf_init(&b);
    int rc = ring_encode(r, &b);
    if (rc == RK_OK) {
        rc = ring_decode(b.base, b.len, out);
    }
    rk_buf_fini(&b);
    return rc == RK_OK || rc == RK_ENOMEM ? rc : RK_ENOMEM;
}

int ring_rename_member(const struct ring *r,
                       const char *old_id,
                       const char *new_id,
                       struct ring **out)
{
    size_t new_len = strlen(new_id);
    int old = ring_find_member(r, old_id, strlen(old_id));
    if (old < 0 || !ring_member_id_is_valid(new_id, new_len) ||
        ring_find_member(r, new_id, new_len) >= 0) {
        return RK_EINVAL;
    }
    size_t id_total = new_len;
    for (size_t i = 0; i < r->n_members; i++) {
        id_total += (size_t)old == i ? 0 : r->member[i].len;
    }
    struct ring *nr = ring_alloc(r->q, r->n, r->n_members, id_total);
    if (nr == NULL) {
        return RK_ENOMEM;
    }
    /* New rank of each member: the others keep their order, new_id goes
     * where it sorts. */
    uint16_t rank[RING_MAX_MEMBERS];
    size_t new_rank = 0;
    for (size_t i = 0; i < r->n_members; i++) {
        if ((size_t)old != i &&
            id_cmp(r->member[i].id, r->member[i].len, new_id, new_len) < 0) {
            new_rank++;
        }
    }
    for (size_t i = 0, k = 0; i < r->n_members; i++) {
        if ((size_t)old == i) {
            continue;
        }
        if (k == new_rank) {
            k++;
        }
        rank[i] = (uint16_t)k++;
    }
    rank[old] = (uint16_t)new_rank;
    uint16_t from[RING_MAX_MEMBERS];
    for (size_t i = 0; i < r->n_members; i++) {
        from[rank[i]] = (uint16_t)i;
    }
    size_t pos = 0;
    for (size_t k = 0; k < r->n_members; k++) {
        size_t i = from[k];
        bool renamed = (size_t)old == i;
        ring_set_member(nr, k, renamed ? new_id : r->member[i].id,
                        renamed ? new_len : r->member[i].len, &pos);
    }
    for (uint32_t p = 0; p < r->q; p++) {
        nr->owner[p] = rank[r->owner[p]];
    }
    if (ring_finish(nr) != RK_OK) {
        ring_destroy(nr);
        return RK_ENOMEM;
    }
    *out = nr;
    return RK_OK;
}

size_t ring_preflist_ids(const struct ring *r,
                         uint32_t partition,
                         const char **ids)
{
    size_t idx[RING_MAX_N];
    size_t cnt = ring_preflist(r, partition, idx, ring_target_n(r));
    for (size_t i = 0; i < cnt; i++) {
        ids[i] = ring_member_id(r, idx[i], NULL);
    }
    return cnt;
}
