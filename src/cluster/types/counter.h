/*
 * types/counter.h - strings that count: INCR/DECR/INCRBY/DECRBY as a
 * PN-counter CRDT inside a key's versioned object (issue 16 item 2;
 * DESIGN.md 2a "src/cluster/types/").
 *
 * Model.  A key's object (dvv.h) may hold *counter siblings*
 * (DVV_SIB_COUNTER): their value bytes are a counter state instead of
 * the user's value.  A state is
 *
 *   entries  (actor, epoch) -> (p, n, rp, rn)
 *                                      increments and decrements each
 *                                      actor issued (p, n), and how much
 *                                      of them the last reset observed
 *                                      (rp <= p, rn <= n); the epoch is
 *                                      the dot counter of the write that
 *                                      created the entry;
 *   base     an optional register (ts, actor, value bytes or absent):
 *            the value a SET or DEL reset the key to.
 *
 * The value is  base (0 when absent) + sum(p - rp) - sum(n - rn),  and
 * the key exists while the base is present or some increment is not
 * observed by a reset (p > rp or n > rn).  The join of two states (what
 * every merge of concurrent siblings amounts to) is the per-entry maximum
 * of each of p, n, rp, rn, and the newer base by (ts, actor, present
 * over absent, bytes): commutative, associative and idempotent, so it
 * does not matter how often or in which order replicas see states
 * (Shapiro, Preguica, Baquero, Zawirski, "A comprehensive study of
 * Convergent and Commutative Replicated Data Types", INRIA RR-7506, 2011:
 * the PN-Counter; the reset floors follow the observed-remove idea of the
 * same report's OR-Set, as Redis Active-Active's counters do).
 *
 * Who writes what.  An increment is applied at a replica that stores the
 * key (the write's coordinating replica, replica.c): it joins every
 * counter sibling it holds, adds the delta to its own actor's newest entry
 * (or starts one, its epoch the dot its write gets) and writes the result
 * as one sibling that supersedes what it has seen.  An entry grows only
 * there, from the replica's own object, which holds every state that
 * entry reached (a node takes a fresh actor per run; a fallback counts
 * into an entry of its run's fallback actor while it holds the key, and
 * a new one the next time), so entries never go back; and when the
 * object lost them (a tombstone reaped, a value written over it that
 * could not carry them), the next increment starts an entry of a new
 * epoch (dots of an actor are never reused: dvv.h's floor), so an old
 * copy still travelling with the old entry cannot hide it.
 * A SET or DEL that supersedes counter siblings resets instead: the new
 * sibling keeps the joined entries, copies them into the floors and sets
 * the base (a DEL writes a tombstone sibling that carries that state), so
 * an increment concurrent with the reset still counts (add wins over a
 * concurrent delete; a concurrent SET keeps the increments it did not
 * see).  Plain string siblings concurrent with counter siblings take
 * part as bases.  docs/consistency.md has the rules with examples.
 *
 * Encoding of a state (canonical; little-endian):
 *   0  u8  version 1
 *   1  u8  flags: bit 0 a base register follows, bit 1 the base is
 *          present (a value; else a delete), other bits 0
 *   if bit 0: u64 ts, u64 actor, u32 len, len bytes (len 0 unless bit 1)
 *   u32 n_entries (<= COUNTER_MAX_ENTRIES)
 *   n_entries x {u64 actor, u64 epoch, u64 p, u64 n, u64 rp, u64 rn}
 *          sorted by (actor, epoch), strictly; rp <= p, rn <= n; p and n
 *          not both 0
 *
 * Pure functions over caller memory.  Thread: any, one state per thread.
 * Memory: rk_malloc/rk_free.
 */
#ifndef RINGKV_CLUSTER_TYPES_COUNTER_H
#define RINGKV_CLUSTER_TYPES_COUNTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/dvv.h"
#include "common/buf.h"

#define COUNTER_VERSION     1
#define COUNTER_MAX_ENTRIES 65536 /* actors per state (wire limit) */
#define COUNTER_HDR         6     /* version, flags, u32 n_entries */
#define COUNTER_BASE_HDR    20    /* ts, actor, len */
#define COUNTER_ENTRY       48

struct counter_entry
{
    uint64_t actor;
    uint64_t epoch;  /* dot counter of the write that created it */
    uint64_t p, n;   /* increments, decrements issued by actor */
    uint64_t rp, rn; /* of them observed by the last reset */
};

/* A state.  Fields may be read; change it through counter_*. */
struct counter
{
    struct counter_entry *e; /* sorted by actor */
    size_t n, cap;
    bool has_base;       /* a base register is set */
    bool base_present;   /* it holds a value (else a delete) */
    uint64_t base_ts;    /* HLC of the reset */
    uint64_t base_actor; /* the writer's actor (tie-break) */
    struct rk_buf base;  /* the value bytes */
};

void counter_init(struct counter *c);
void counter_fini(struct counter *c);
/* Empty state, allocations kept. */
void counter_clear(struct counter *c);

/* Whether len bytes at p are a canonical state encoding. */
bool counter_valid(const void *p, size_t len);

/* Decodes a state into c (replaced).  RK_OK, RK_ECORRUPT, RK_ENOMEM. */
int counter_decode(struct counter *c, const void *p, size_t len);

/* Appends c's canonical encoding to out.  RK_OK, RK_ENOMEM. */
int counter_encode(const struct counter *c, struct rk_buf *out);

/* c = join(c, other).  RK_OK, RK_ERANGE (over COUNTER_MAX_ENTRIES
 * actors), RK_ENOMEM (c then unchanged in its entries). */
int counter_join(struct counter *c, const struct counter *other);

/* Offers a base register (a plain sibling's value or delete): kept when
 * newer than c's by (ts, actor, present, bytes).  RK_OK, RK_ENOMEM. */
int counter_offer_base(struct counter *c,
                       uint64_t ts,
                       uint64_t actor,
                       bool present,
                       const void *val,
                       size_t len);

/* A reset by a SET (present, val) or a DEL (!present): every entry's
 * floors become its p and n, and the base becomes (ts, actor, ...)
 * whatever it was.  RK_OK, RK_ENOMEM. */
int counter_reset(struct counter *c,
                  uint64_t ts,
                  uint64_t actor,
                  bool present,
                  const void *val,
                  size_t len);

/* Adds delta to actor's newest entry (p for > 0, n for < 0), or to a new
 * entry (actor, epoch) when c has none of actor; 0 changes nothing.
 * RK_OK, RK_ERANGE (the entry would overflow, or too many entries),
 * RK_ENOMEM. */
int counter_add(struct counter *c,
                uint64_t actor,
                uint64_t epoch,
                int64_t delta);

/* Whether the key exists: a present base or an unobserved entry. */
bool counter_is_live(const struct counter *c);

/*
 * The value as a number: RK_OK and *out (the exact sum, which may lie
 * outside int64 when concurrent increments overflowed it), or RK_EINVAL
 * when the base is present and not an integer as Redis parses one (the
 * base's bytes are then the value, see counter_resolve).
 */
int counter_sum(const struct counter *c, __int128 *out);

/* Whether len bytes at p are an integer as Redis parses one (string2ll:
 * optional '-', digits, no leading zero, within int64): true and *out. */
bool counter_parse_i64(const char *p, size_t len, int64_t *out);

/* Renders v in decimal into buf (at least 41 bytes); returns the length. */
size_t counter_format(__int128 v, char *buf);

/* ---- a key's value from its object ---- */

enum counter_view_kind
{
    COUNTER_VIEW_DEAD = 0, /* no live value: absent, deleted or expired */
    COUNTER_VIEW_PLAIN,    /* sibling `idx` is the value, as before types */
    COUNTER_VIEW_VALUE,    /* the counter's value: val/vlen */
};

struct counter_view
{
    enum counter_view_kind kind;
    size_t idx;      /* PLAIN: the winning sibling */
    const char *val; /* VALUE: bytes (in num or the state's base) */
    size_t vlen;
    bool numeric;          /* VALUE: val is num */
    __int128 sum;          /* VALUE and numeric: the number */
    uint64_t ts;           /* the largest sibling ts */
    uint64_t expire_at_ms; /* of the value, 0 = none */
    bool expired;          /* DEAD because the newest sibling expired */
    char num[48];
};

/*
 * What a read of o returns at now_ms (0: nothing has expired): without
 * counter siblings the winner of dvv order when it is a live value
 * (replica_winner's rule); with them, the join of their states with the
 * plain siblings offered as bases, and the expiry of the newest sibling.
 * A base that is not an integer is the value as it is (increments
 * concurrent with a SET of a non-number are not added to it), and so is
 * a newest plain sibling with a content type or in chunks.  st is
 * working space (initialised; holds the joined state afterwards, which
 * VALUE views into).  RK_OK (v filled; kind DEAD when nothing is live),
 * RK_ECORRUPT (a counter sibling does not decode), RK_ENOMEM.
 */
int counter_resolve(const struct dvv_obj *o,
                    uint64_t now_ms,
                    struct counter *st,
                    struct counter_view *v);

/*
 * The state an increment of delta by actor at ts writes over o, a
 * replica's own object, into st (initialised; replaced), with the
 * expiry the new sibling keeps in *expire_at_ms and the resulting value
 * in *result; epoch: the dot counter the write gets (a new entry's).  On
 * a key that does not exist counting starts from 0 (an INCRBY of 0
 * writes a present 0, as Redis creates the key).  RK_OK; RK_EINVAL (the
 * value is not an integer); RK_ERANGE (the value is out of int64, or
 * would overflow); RK_ECORRUPT; RK_ENOMEM.
 */
int counter_incr(const struct dvv_obj *o,
                 uint64_t now_ms,
                 uint64_t ts,
                 uint64_t actor,
                 uint64_t epoch,
                 int64_t delta,
                 struct counter *st,
                 uint64_t *expire_at_ms,
                 int64_t *result);

/*
 * A plain write (a SET's value, or a delete) that supersedes the siblings
 * of o that `ctx` covers (ctx == o: all of them): when some of them are
 * counter siblings, the state the write must carry instead (their join,
 * reset to the write's value) into st, and *convert = true; else
 * *convert = false.  RK_OK, RK_ECORRUPT, RK_ENOMEM.
 */
int counter_reset_over(const struct dvv_obj *o,
                       const struct dvv_obj *ctx,
                       uint64_t ts,
                       uint64_t actor,
                       bool present,
                       const void *val,
                       size_t len,
                       struct counter *st,
                       bool *convert);

#endif /* RINGKV_CLUSTER_TYPES_COUNTER_H */
