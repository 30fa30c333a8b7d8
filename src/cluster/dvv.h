/*
 * dvv.h - versioned objects: a set of siblings under a dotted version
 * vector set (DESIGN.md section 4 "Versions"; issue 5 item 1).
 *
 * Source: Almeida, Baquero, Goncalves, Preguica, Fonte, "Scalable and
 * Accurate Causality Tracking for Eventually Consistent Stores" (DAIS
 * 2014), and Riak's dvvset, which compacts it.  We keep the compact
 * representation with explicit dots:
 *
 *   object = clock C: actor -> counter   (what the object has seen)
 *            siblings S: {(dot (actor, counter), HLC ts, expiry, value
 *                         or tombstone)}, every dot covered by C
 *
 * A dot (a, n) is "covered" by a clock C when C[a] >= n.  The operations:
 *
 *   update(O, ctx, actor, v):  a write at a replica that stores O, with the
 *       causal context ctx the client read (empty for a blind write, or
 *       O's own clock for "supersede what this replica has seen"):
 *       drop every sibling of O covered by ctx; C = join(C, ctx);
 *       new dot (actor, max(C[actor], floor) + 1); add (dot, v).
 *   merge(A, B): keep a sibling of A when B has the same dot or B's clock
 *       does not cover it, symmetrically for B; clock = pointwise max.
 *       Commutative, associative and idempotent (a join-semilattice), so
 *       replicas converge whatever order and how often objects arrive.
 *       A sibling concurrent with everything on the other side is never
 *       dropped.
 *
 * The invariant that makes "covered" mean "seen": for each key, an actor
 * issues dots only from the local object of a replica that keeps every
 * dot it issued for that key (its clock entry never decreases while the
 * object exists).  Callers guarantee it by (1) letting only a replica that
 * stores the key generate dots for it, (2) giving a node a fresh actor id
 * whenever it may have forgotten writes (every start: a crash can lose the
 * unsynced tail), and (3) a `floor` (the actor's highest counter so far
 * on any key) so that a key recreated after its tombstone was reaped does
 * not reuse an old dot.  A fallback that holds a key only until its hint
 * is delivered uses a one-shot actor per write (docs/consistency.md).
 *
 * Sibling order (the winner of a plain GET, and LWW): higher HLC ts wins,
 * ties by the higher actor, then the higher counter: a total order, so
 * every node picks the same sibling.
 *
 * Encoding (canonical: one byte string per object; docs/consistency.md
 * has the table).  All integers little-endian.  Version 1, the form of
 * every object of type OBJTYPE_STRING (objtype.h):
 *   0  u8  format version 1
 *   1  u8  flags, 0
 *   2  u16 n_clock (<= DVV_MAX_CLOCK)
 *   4  u16 n_siblings (<= DVV_MAX_SIBLINGS)
 *   6  n_clock x {u64 actor, u64 counter, u64 ts}  sorted by actor, strictly
 *   .. n_siblings x {u64 actor, u64 counter, u64 ts, u64 expire_at_ms,
 *                    u8 flags (bit 0 tombstone, bit 1 content type,
 *                    bit 2 chunked: the value is a chunk manifest,
 *                    cluster/chunk.h, never with a content type,
 *                    bit 3 counter: the value is a counter state,
 *                    types/counter.h, never with bits 1 or 2; the one
 *                    value a tombstone may have),
 *                    u32 value_len, value}
 *                    sorted by (actor, counter), strictly; each dot covered
 *                    by the clock; a tombstone has no value (but a counter
 *                    state), no expiry and no content type.  With bit 1 the
 * value bytes start with u8 n (1..DVV_MAX_CTYPE) and n bytes of visible ASCII,
 * the content type (HTTP PUT's Content-Type), followed by the user's value
 * (dvv_payload). Version 2, the form of an object of any other type: the same
 * with one more header byte, u8 type (1..255) at offset 2, so n_clock is at 3,
 * n_siblings at 5 and the clock at 7.  A version-2 encoding of type 0 is
 * not canonical and does not decode.  So string objects, all there is
 * before the CRDT types, encode as they did under version 1, and a node
 * that only knows version 1 keeps exchanging them; it refuses a typed
 * object (RK_EVERSION), which it could not merge anyway.
 * The clock entry's ts is the HLC of the newest event of that actor the
 * object knows; it only orders entries for pruning.
 *
 * Context (what RINGKV.GETALL hands to clients and RINGKV.PUT takes back):
 * the clock without ts, as text: lower-case hex of
 *   u8 version 1, u16 n, n x {u64 actor, u64 counter}  sorted by actor.
 * Clients treat it as opaque; the server checks it like any input.
 *
 * Pure functions over caller memory: no clock, I/O or randomness.
 * Thread: any, one object per thread.  Memory: rk_malloc/rk_free.
 */
#ifndef RINGKV_CLUSTER_DVV_H
#define RINGKV_CLUSTER_DVV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/objtype.h"
#include "common/buf.h"

#define DVV_FORMAT_VERSION   2    /* newest encoding read and written */
#define DVV_FORMAT_V1        1    /* type OBJTYPE_STRING's encoding */
#define DVV_MAX_SIBLINGS     4096 /* wire limit; the policy bound is lower */
#define DVV_MAX_CLOCK        1024 /* wire limit of clock entries */
#define DVV_DEFAULT_SIBLINGS 100  /* issue 5: default bound per key */
#define DVV_DEFAULT_CLOCK    64   /* default bound on clock entries */
#define DVV_ACTOR_LEGACY     0    /* a record written before versions */
#define DVV_HDR              6    /* bytes of the object header (v1) */
#define DVV_HDR_V2           7    /* with the type byte */
#define DVV_CLOCK_ENTRY      24   /* bytes per encoded clock entry */
#define DVV_SIB_HDR          37   /* bytes per sibling before its value */
#define DVV_SIB_TOMBSTONE    1    /* sibling flags bits */
#define DVV_SIB_CTYPE        2
#define DVV_SIB_CHUNKED      4 /* the value is a chunk manifest (chunk.h) */
#define DVV_SIB_COUNTER                                   \
    8                     /* the value is a counter state \
                             (types/counter.h) */
#define DVV_MAX_CTYPE 127 /* bytes of a content type */
/* Actor ids that nodes derive from a hash keep bit 63 clear (as they
 * always have; it once doubled as the stored-object mark). */
#define DVV_ACTOR_MASK (UINT64_MAX >> 1)

struct dvv_dot
{
    uint64_t actor;
    uint64_t counter; /* >= 1 */
};

struct dvv_entry
{
    uint64_t actor;
    uint64_t counter; /* >= 1 */
    uint64_t ts;      /* HLC of the newest event of actor seen */
};

struct dvv_sibling
{
    struct dvv_dot dot;
    uint64_t ts;           /* HLC of the write */
    uint64_t expire_at_ms; /* absolute Unix ms, 0 = none; 0 if tombstone */
    bool tombstone;
    bool ctype;        /* the value starts with a content type (above) */
    bool chunked;      /* the value is a chunk manifest (chunk.h) */
    bool counter;      /* the value is a counter state (types/counter.h);
                          a tombstone may carry one (a reset by a DEL) */
    size_t voff, vlen; /* value bytes: obj->vals.base[voff .. voff+vlen) */
};

/* One object.  Fields may be read; change it only through dvv_*. */
struct dvv_obj
{
    struct dvv_entry *clock; /* sorted by actor, no duplicates */
    size_t n_clock, cap_clock;
    struct dvv_sibling *sibs; /* sorted by dot, no duplicates */
    size_t n_sibs, cap_sibs;
    struct rk_buf vals; /* owns the value bytes of sibs */
    uint8_t type;       /* enum objtype; 0 (string) after init and clear */
};

/* A value to add with dvv_update. */
struct dvv_write
{
    const void *value; /* bytes, borrowed; NULL when vlen is 0 */
    size_t vlen;
    uint64_t ts;           /* HLC of the write */
    uint64_t expire_at_ms; /* absolute Unix ms, 0 = none */
    bool tombstone;        /* a delete: vlen and expire_at_ms must be 0 */
    bool ctype;   /* value starts with u8 n, n bytes content type (checked) */
    bool chunked; /* value is a chunk manifest; not with ctype/tombstone */
    bool counter; /* value is a counter state (checked); not with ctype or
                     chunked; a tombstone with one carries no expiry */
};

/* Whether value (vlen bytes) starts with a valid content-type prefix:
 * u8 n in 1..DVV_MAX_CTYPE, then n bytes 0x20..0x7e, within vlen. */
bool dvv_ctype_valid(const void *value, size_t vlen);

/* Empty object (caller storage).  dvv_fini frees what it holds. */
void dvv_init(struct dvv_obj *o);
void dvv_fini(struct dvv_obj *o);
/* Makes o empty, keeping its allocations. */
void dvv_clear(struct dvv_obj *o);
/* Deep copy: dst (initialised) becomes equal to src.  RK_OK, RK_ENOMEM
 * (dst then empty). */
int dvv_copy(struct dvv_obj *dst, const struct dvv_obj *src);

/*
 * Decodes `len` bytes at `p` into o (initialised; replaced).  Checks
 * every rule of the encoding above.  Errors: RK_EVERSION (another format
 * version), RK_ECORRUPT (any other violation; o is then empty),
 * RK_ENOMEM.  Complexity: O(len).
 */
int dvv_decode(struct dvv_obj *o, const void *p, size_t len);

/* Appends the canonical encoding of o to out.  RK_OK or RK_ENOMEM (out
 * unchanged).  Complexity: O(size). */
int dvv_encode(const struct dvv_obj *o, struct rk_buf *out);

/* Bytes dvv_encode would append. */
size_t dvv_encoded_size(const struct dvv_obj *o);

/*
 * Appends o's causal context as text (hex; see above) to out.  RK_OK or
 * RK_ENOMEM.
 */
int dvv_context_encode(const struct dvv_obj *o, struct rk_buf *out);

/*
 * Parses a context string into a clock (entries with ts 0) held in `ctx`
 * (an object with no siblings; initialised; replaced).  An empty string
 * is the empty context.  Errors: RK_EINVAL (not hex, bad version or
 * length, unsorted or duplicate actors, a zero counter, more than
 * DVV_MAX_CLOCK entries), RK_ENOMEM.
 */
int dvv_context_decode(struct dvv_obj *ctx, const char *text, size_t len);

/* Whether clock of o covers dot d (o->clock[d.actor] >= d.counter). */
bool dvv_covers(const struct dvv_obj *o, struct dvv_dot d);

/* Clock counter of actor in o, 0 when absent. */
uint64_t dvv_counter(const struct dvv_obj *o, uint64_t actor);

/*
 * The write of issue 5 item 2 at a replica holding o: drops the siblings
 * covered by ctx's clock (ctx may be NULL: the empty context; ctx == o:
 * supersede everything o has seen), joins ctx into o's clock, and adds
 * `w` with dot (actor, max(o.clock[actor], floor) + 1).
 *   actor: != DVV_ACTOR_LEGACY.  floor: the actor's highest counter so
 *   far (0 when the caller has none).
 *   dot: receives the new dot (may be NULL).
 * Errors: RK_EINVAL (a tombstone with a value or expiry, actor 0),
 * RK_ERANGE (the counter would overflow), RK_ENOMEM; on error o is
 * unchanged.  Complexity: O(siblings + clock + vlen).
 */
int dvv_update(struct dvv_obj *o,
               const struct dvv_obj *ctx,
               uint64_t actor,
               uint64_t floor,
               const struct dvv_write *w,
               struct dvv_dot *dot);

/*
 * out = merge(a, b) as above (out initialised, replaced; it must not be a
 * or b).  A dot present on both sides with different contents (which the
 * invariant rules out) keeps the greater by sibling order, so the result
 * is still a function of the two sides.  The result's type is the larger
 * of the two (a join, so the merge stays commutative, associative and
 * idempotent; objects of two types never meet before the CRDT types, which
 * decide what such a merge means).  RK_OK or RK_ENOMEM (out empty).
 * Complexity: O(size of a + b).
 */
int dvv_merge(struct dvv_obj *out,
              const struct dvv_obj *a,
              const struct dvv_obj *b);

/* Merges b into a (a = merge(a, b)).  RK_OK or RK_ENOMEM (a unchanged). */
int dvv_merge_into(struct dvv_obj *a, const struct dvv_obj *b);

/*
 * Sibling order: < 0 when sibling x of ox loses to sibling y of oy, 0 when
 * they are the same write, > 0 when x wins (ts, then actor, then counter;
 * then tombstone over value, value bytes, expiry to make it total).
 */
int dvv_sibling_cmp(const struct dvv_obj *ox,
                    const struct dvv_sibling *x,
                    const struct dvv_obj *oy,
                    const struct dvv_sibling *y);

/* Index of the winning sibling (see order above), or -1 when o has none. */
long dvv_winner(const struct dvv_obj *o);

/*
 * Last-writer-wins: keeps only the winning sibling among the plain ones,
 * and every counter sibling (their states join: dropping one would lose
 * increments; types/counter.h).  Returns how many siblings were
 * discarded.  The clock is kept (so the discarded dots stay covered and
 * do not come back).
 */
size_t dvv_lww(struct dvv_obj *o);

/*
 * Enforces the bounds: while more than max_sibs siblings, drops the plain
 * one that loses in sibling order (counted in *dropped_sibs; counter
 * siblings are never dropped: an increment on a replica supersedes every
 * counter sibling it holds, so they are as many as concurrent
 * coordinating replicas, bounded by DVV_MAX_SIBLINGS); while more than
 * max_clock clock entries, removes the entry with the oldest ts among the
 * entries no sibling's dot needs (counted in *pruned; pruning only ever
 * makes an old sibling look concurrent again, never hides one).
 * max_* of 0 mean no bound.  Outputs may be NULL.
 */
void dvv_bound(struct dvv_obj *o,
               size_t max_sibs,
               size_t max_clock,
               size_t *dropped_sibs,
               size_t *pruned);

/* Whether a and b are the same object (same type, clock and siblings). */
bool dvv_equal(const struct dvv_obj *a, const struct dvv_obj *b);

/* Whether every sibling is a tombstone (and there is at least one). */
bool dvv_all_tombstones(const struct dvv_obj *o);

/* Largest sibling ts (0 when none). */
uint64_t dvv_max_ts(const struct dvv_obj *o);

/* Value bytes of sibling i (a view valid until o changes). */
static inline const char *dvv_value(const struct dvv_obj *o, size_t i)
{
    return o->sibs[i].vlen ? o->vals.base + o->sibs[i].voff : "";
}

/* The user's value of sibling i: its value bytes without the content
 * type prefix (a view valid until o changes); *len receives its length. */
static inline const char *dvv_payload(const struct dvv_obj *o,
                                      size_t i,
                                      size_t *len)
{
    const struct dvv_sibling *s = &o->sibs[i];
    size_t skip = s->ctype ? 1 + (unsigned char)o->vals.base[s->voff] : 0;
    *len = s->vlen - skip;
    return s->vlen ? o->vals.base + s->voff + skip : "";
}

/* The content type of sibling i (not NUL-terminated), *len 0 when none. */
static inline const char *dvv_ctype(const struct dvv_obj *o,
                                    size_t i,
                                    size_t *len)
{
    const struct dvv_sibling *s = &o->sibs[i];
    if (!s->ctype) {
        *len = 0;
        return "";
    }
    *len = (unsigned char)o->vals.base[s->voff];
    return o->vals.base + s->voff + 1;
}

#endif /* RINGKV_CLUSTER_DVV_H */
