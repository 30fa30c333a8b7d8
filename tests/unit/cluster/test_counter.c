/*
 * test_counter.c - cluster/types/counter: the PN-counter state of issue 16
 * (TESTING.md B1): its encoding and decoder on hostile input, the join
 * laws, what a key's object reads as (counter siblings, plain bases,
 * resets, expiry), and a randomized model: replicas that take increments
 * (as a coordinating replica applies them: counter_incr then dvv_update
 * over their own object), fallbacks with one-shot actors, restarts with
 * a fresh actor and a lost tail, and merges in any order; after all
 * replicas merged, every one reads the exact sum of the increments, and
 * merge order does not change the object.  Seeds are fixed and printed
 * on failure.
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/dvv.h"
#include "cluster/types/counter.h"
#include "common/buf.h"
#include "common/error.h"

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void enc(const struct counter *c, struct rk_buf *out)
{
    rk_buf_clear(out);
    assert_int_equal(counter_encode(c, out), RK_OK);
}

static void assert_same_state(const struct counter *a, const struct counter *b)
{
    struct rk_buf x, y;
    rk_buf_init(&x);
    rk_buf_init(&y);
    enc(a, &x);
    enc(b, &y);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.base, y.base, x.len);
    rk_buf_fini(&x);
    rk_buf_fini(&y);
}

static void random_state(struct counter *c, uint64_t *s)
{
    counter_clear(c);
    size_t n = rng_next(s) % 5;
    for (size_t i = 0; i < n; i++) {
        int64_t d = (int64_t)(rng_next(s) % 41) - 20;
        assert_int_equal(counter_add(c, 1 + rng_next(s) % 6, 1, d ? d : 1), RK_OK);
    }
    if (rng_next(s) % 3 == 0) {
        char v[16];
        int len = snprintf(v, sizeof(v), "%d", (int)(rng_next(s) % 100));
        assert_int_equal(counter_reset(c, rng_next(s) % 4, rng_next(s) % 3,
                                       rng_next(s) % 2, v, (size_t)len),
                         RK_OK);
        if (rng_next(s) % 2) {
            assert_int_equal(counter_add(c, 1 + rng_next(s) % 6, 1, 3), RK_OK);
        }
    }
}

/* ---- encoding ------------------------------------------------------------ */

static void test_counter_encoding_round_trips_and_refuses_bad_bytes(void **st)
{
    (void)st;
    struct counter c, d;
    counter_init(&c);
    counter_init(&d);
    struct rk_buf b;
    rk_buf_init(&b);
    /* the empty state */
    enc(&c, &b);
    assert_int_equal(b.len, COUNTER_HDR);
    assert_int_equal(counter_decode(&d, b.base, b.len), RK_OK);
    assert_false(counter_is_live(&d));
    /* entries and a base */
    assert_int_equal(counter_add(&c, 7, 1, 5), RK_OK);
    assert_int_equal(counter_add(&c, 3, 1, -2), RK_OK);
    assert_int_equal(counter_add(&c, 7, 1, INT64_MIN), RK_OK);
    assert_int_equal(counter_reset(&c, 99, 4, true, "12", 2), RK_OK);
    assert_int_equal(counter_add(&c, 3, 1, 1), RK_OK);
    enc(&c, &b);
    assert_true(counter_valid(b.base, b.len));
    assert_int_equal(counter_decode(&d, b.base, b.len), RK_OK);
    assert_same_state(&c, &d);
    __int128 sum;
    assert_int_equal(counter_sum(&d, &sum), RK_OK);
    assert_true(sum == 13); /* the base 12, then +1 by actor 3 */
    /* every truncation and every one-byte change is checked, not trusted */
    for (size_t len = 0; len < b.len; len++) {
        assert_false(counter_valid(b.base, len));
        assert_int_equal(counter_decode(&d, b.base, len), RK_ECORRUPT);
    }
    uint64_t s = 11;
    for (int i = 0; i < 2000; i++) {
        struct rk_buf m;
        rk_buf_init(&m);
        rk_buf_append(&m, b.base, b.len);
        size_t at = rng_next(&s) % m.len;
        m.base[at] = (char)(m.base[at] ^ (char)(1 + rng_next(&s) % 255));
        int rc = counter_decode(&d, m.base, m.len);
        assert_true(rc == RK_OK || rc == RK_ECORRUPT);
        if (rc == RK_OK) {
            /* what decodes re-encodes to the same bytes (canonical) */
            struct rk_buf r;
            rk_buf_init(&r);
            enc(&d, &r);
            assert_int_equal(r.len, m.len);
            assert_memory_equal(r.base, m.base, m.len);
            rk_buf_fini(&r);
        }
        rk_buf_fini(&m);
    }
    /* specific rules */
    const unsigned char bad_version[] = {2, 0, 0, 0, 0, 0};
    const unsigned char bad_flags[] = {1, 4, 0, 0, 0, 0};
    const unsigned char present_no_base[] = {1, 2, 0, 0, 0, 0};
    const unsigned char trailing[] = {1, 0, 0, 0, 0, 0, 9};
    assert_false(counter_valid(bad_version, sizeof(bad_version)));
    assert_false(counter_valid(bad_flags, sizeof(bad_flags)));
    assert_false(counter_valid(present_no_base, sizeof(present_no_base)));
    assert_false(counter_valid(trailing, sizeof(trailing)));
    assert_false(counter_valid(NULL, 0));
    rk_buf_fini(&b);
    counter_fini(&c);
    counter_fini(&d);
}

static void test_counter_join_is_a_semilattice(void **st)
{
    (void)st;
    struct counter a, b, c, x, y;
    counter_init(&a);
    counter_init(&b);
    counter_init(&c);
    counter_init(&x);
    counter_init(&y);
    uint64_t s = 5;
    struct rk_buf tmp;
    rk_buf_init(&tmp);
    for (int i = 0; i < 500; i++) {
        random_state(&a, &s);
        random_state(&b, &s);
        random_state(&c, &s);
        /* commutative */
        enc(&a, &tmp);
        counter_decode(&x, tmp.base, tmp.len);
        assert_int_equal(counter_join(&x, &b), RK_OK);
        enc(&b, &tmp);
        counter_decode(&y, tmp.base, tmp.len);
        assert_int_equal(counter_join(&y, &a), RK_OK);
        assert_same_state(&x, &y);
        /* idempotent */
        assert_int_equal(counter_join(&y, &a), RK_OK);
        assert_int_equal(counter_join(&y, &y), RK_OK);
        assert_same_state(&x, &y);
        /* associative */
        assert_int_equal(counter_join(&x, &c), RK_OK);
        enc(&b, &tmp);
        counter_decode(&y, tmp.base, tmp.len);
        assert_int_equal(counter_join(&y, &c), RK_OK);
        struct counter z;
        counter_init(&z);
        enc(&a, &tmp);
        counter_decode(&z, tmp.base, tmp.len);
        assert_int_equal(counter_join(&z, &y), RK_OK);
        assert_same_state(&x, &z);
        counter_fini(&z);
    }
    rk_buf_fini(&tmp);
    counter_fini(&a);
    counter_fini(&b);
    counter_fini(&c);
    counter_fini(&x);
    counter_fini(&y);
}

static void test_counter_sum_live_and_overflow(void **st)
{
    (void)st;
    struct counter c;
    counter_init(&c);
    assert_false(counter_is_live(&c));
    /* INCR then DECR: live at 0 */
    assert_int_equal(counter_add(&c, 1, 1, 1), RK_OK);
    assert_int_equal(counter_add(&c, 1, 1, -1), RK_OK);
    assert_true(counter_is_live(&c));
    __int128 v;
    assert_int_equal(counter_sum(&c, &v), RK_OK);
    assert_true(v == 0);
    /* a DEL observes everything */
    assert_int_equal(counter_reset(&c, 10, 1, false, NULL, 0), RK_OK);
    assert_false(counter_is_live(&c));
    /* an entry cannot wrap */
    assert_int_equal(counter_add(&c, 2, 1, INT64_MAX), RK_OK);
    assert_int_equal(counter_add(&c, 2, 1, INT64_MAX), RK_OK);
    assert_int_equal(counter_add(&c, 2, 1, 1), RK_OK);
    assert_int_equal(counter_add(&c, 2, 1, 1), RK_ERANGE);
    assert_int_equal(counter_sum(&c, &v), RK_OK);
    char buf[48];
    counter_format(v, buf);
    assert_string_equal(buf, "18446744073709551615"); /* over int64 */
    /* a base that is not an integer has no sum */
    assert_int_equal(counter_reset(&c, 11, 1, true, "abc", 3), RK_OK);
    assert_int_equal(counter_sum(&c, &v), RK_EINVAL);
    assert_true(counter_is_live(&c));
    int64_t x;
    assert_true(counter_parse_i64("-9223372036854775808", 20, &x));
    assert_true(x == INT64_MIN);
    assert_false(counter_parse_i64("9223372036854775808", 19, &x));
    assert_false(counter_parse_i64("01", 2, &x));
    assert_false(counter_parse_i64("-0", 2, &x));
    assert_false(counter_parse_i64("+1", 2, &x));
    assert_false(counter_parse_i64(" 1", 2, &x));
    assert_false(counter_parse_i64("", 0, &x));
    counter_fini(&c);
}

/* ---- a key's object ------------------------------------------------------ */

/* The dot the next write of actor over o gets (a new entry's epoch). */
static uint64_t epoch_of(const struct dvv_obj *o, uint64_t actor)
{
    return dvv_counter(o, actor) + 1;
}

/* What a coordinating replica with actor `actor` does for INCRBY delta
 * over its object o at ts: RK_OK and the result, or the error. */
static int replica_incr(struct dvv_obj *o,
                        uint64_t actor,
                        int64_t delta,
                        uint64_t ts,
                        int64_t *result)
{
    struct counter st;
    counter_init(&st);
    uint64_t exp = 0;
    int64_t r = 0;
    int rc = counter_incr(o, 1000, ts, actor, epoch_of(o, actor), delta, &st,
                          &exp, &r);
    if (rc == RK_OK) {
        struct rk_buf b;
        rk_buf_init(&b);
        assert_int_equal(counter_encode(&st, &b), RK_OK);
        struct dvv_write w = {.value = b.base,
                              .vlen = b.len,
                              .ts = ts,
                              .expire_at_ms = exp,
                              .counter = true};
        rc = dvv_update(o, o, actor, 0, &w, NULL);
        rk_buf_fini(&b);
    }
    counter_fini(&st);
    if (result) {
        *result = r;
    }
    return rc;
}

/* A plain write (value, or a delete when v is NULL) over everything o has
 * seen, as replica.c's counter_value makes it. */
static void replica_write(struct dvv_obj *o,
                          uint64_t actor,
                          const char *v,
                          uint64_t ts,
                          uint64_t exp)
{
    struct counter st;
    counter_init(&st);
    bool convert = false;
    assert_int_equal(counter_reset_over(o, o, ts, actor, v != NULL, v,
                                        v ? strlen(v) : 0, &st, &convert),
                     RK_OK);
    struct rk_buf b;
    rk_buf_init(&b);
    struct dvv_write w = {.value = v,
                          .vlen = v ? strlen(v) : 0,
                          .ts = ts,
                          .expire_at_ms = v ? exp : 0,
                          .tombstone = v == NULL};
    if (convert) {
        assert_int_equal(counter_encode(&st, &b), RK_OK);
        w.value = b.base;
        w.vlen = b.len;
        w.counter = true;
    }
    assert_int_equal(dvv_update(o, o, actor, 0, &w, NULL), RK_OK);
    rk_buf_fini(&b);
    counter_fini(&st);
}

/* What a read of o returns at now: its bytes ("" when dead). */
static const char *read_at(const struct dvv_obj *o, uint64_t now, char *buf)
{
    struct counter st;
    counter_init(&st);
    struct counter_view v;
    assert_int_equal(counter_resolve(o, now, &st, &v), RK_OK);
    buf[0] = '\0';
    if (v.kind == COUNTER_VIEW_VALUE) {
        memcpy(buf, v.val, v.vlen);
        buf[v.vlen] = '\0';
    } else if (v.kind == COUNTER_VIEW_PLAIN) {
        size_t len;
        const char *p = dvv_payload(o, v.idx, &len);
        memcpy(buf, p, len);
        buf[len] = '\0';
    }
    counter_fini(&st);
    return buf;
}

static void merge_into(struct dvv_obj *a, const struct dvv_obj *b)
{
    assert_int_equal(dvv_merge_into(a, b), RK_OK);
}

static void test_counter_reads_resets_and_concurrency(void **st)
{
    (void)st;
    char buf[64];
    struct dvv_obj a, b;
    dvv_init(&a);
    dvv_init(&b);
    /* a plain value is counted from */
    replica_write(&a, 1, "10", 100, 0);
    int64_t r;
    assert_int_equal(replica_incr(&a, 1, 5, 101, &r), RK_OK);
    assert_true(r == 15);
    assert_string_equal(read_at(&a, 0, buf), "15");
    /* b learns it, then both count concurrently */
    merge_into(&b, &a);
    assert_int_equal(replica_incr(&a, 1, 2, 102, &r), RK_OK);
    assert_int_equal(replica_incr(&b, 2, 3, 103, &r), RK_OK);
    assert_true(r == 18);
    merge_into(&a, &b);
    merge_into(&b, &a);
    assert_string_equal(read_at(&a, 0, buf), "20");
    assert_string_equal(read_at(&b, 0, buf), "20");
    assert_int_equal(a.n_sibs, 2); /* two concurrent counter siblings */
    /* under lww and the sibling bound both stay */
    struct dvv_obj l;
    dvv_init(&l);
    dvv_copy(&l, &a);
    assert_int_equal(dvv_lww(&l), 0);
    size_t dropped = 9;
    dvv_bound(&l, 1, 0, &dropped, NULL);
    assert_int_equal(dropped, 0);
    assert_string_equal(read_at(&l, 0, buf), "20");
    dvv_fini(&l);
    /* a DEL concurrent with an increment removes what it saw only */
    assert_int_equal(replica_incr(&b, 2, 0 + 1, 104, &r), RK_OK); /* 21 */
    merge_into(&a, &b);
    replica_write(&a, 1, NULL, 105, 0); /* DEL at a: saw 21 */
    assert_string_equal(read_at(&a, 0, buf), "");
    assert_int_equal(replica_incr(&b, 2, 4, 106, &r), RK_OK); /* b: 25 */
    assert_true(r == 25);
    merge_into(&a, &b);
    assert_string_equal(read_at(&a, 0, buf), "4");
    /* a SET concurrent with an increment keeps it */
    merge_into(&b, &a);
    replica_write(&a, 1, "100", 107, 0);
    assert_int_equal(replica_incr(&b, 2, 6, 108, &r), RK_OK);
    assert_true(r == 10);
    merge_into(&a, &b);
    assert_string_equal(read_at(&a, 0, buf), "106");
    /* the same without a counter sibling on one side: a plain SET on a
     * replica that never saw the counter is a base, newest wins */
    struct dvv_obj c;
    dvv_init(&c);
    replica_write(&c, 3, "1000", 109, 0);
    merge_into(&c, &a);
    assert_string_equal(read_at(&c, 0, buf), "1006");
    /* a SET of a non-number wins over the increments it did not see */
    merge_into(&b, &c);
    replica_write(&c, 3, "abc", 110, 0);
    assert_int_equal(replica_incr(&b, 2, 1, 111, &r), RK_OK);
    merge_into(&c, &b);
    assert_string_equal(read_at(&c, 0, buf), "abc");
    assert_int_equal(replica_incr(&c, 3, 1, 112, &r), RK_EINVAL);
    /* ...and an increment over it once it is a number again counts on */
    replica_write(&c, 3, "7", 113, 0);
    assert_int_equal(replica_incr(&c, 3, 1, 114, &r), RK_OK);
    assert_true(r == 8);
    /* overflow is refused and changes nothing */
    replica_write(&c, 3, "9223372036854775807", 115, 0);
    assert_int_equal(replica_incr(&c, 3, 1, 116, &r), RK_ERANGE);
    assert_string_equal(read_at(&c, 0, buf), "9223372036854775807");
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&c);
}

static void test_counter_expiry_is_kept_and_an_expired_counter_restarts(
    void **st)
{
    (void)st;
    char buf[64];
    struct dvv_obj a;
    dvv_init(&a);
    replica_write(&a, 1, "5", 100, 2000); /* expires at 2000 ms */
    assert_int_equal(replica_incr(&a, 1, 1, 101, NULL), RK_OK);
    struct counter s;
    counter_init(&s);
    struct counter_view v;
    assert_int_equal(counter_resolve(&a, 1500, &s, &v), RK_OK);
    assert_int_equal(v.kind, COUNTER_VIEW_VALUE);
    assert_true(v.expire_at_ms == 2000);
    assert_string_equal(read_at(&a, 2500, buf), "");
    /* an increment after the expiry starts from 0 without a TTL (the
     * helper increments at 1000 ms: pretend it is later) */
    uint64_t exp = 1;
    int64_t r = 0;
    assert_int_equal(counter_incr(&a, 2500, 102, 1, 9, 3, &s, &exp, &r), RK_OK);
    assert_true(r == 3);
    assert_true(exp == 0);
    counter_fini(&s);
    dvv_fini(&a);
}

/* Review findings of issue 16's first cut: each failed before its fix. */
static void test_counter_incr_after_delete_keeps_a_concurrent_set(void **st)
{
    (void)st;
    char buf[64];
    struct dvv_obj a, b;
    dvv_init(&a);
    dvv_init(&b);
    assert_int_equal(replica_incr(&a, 1, 5, 100, NULL), RK_OK);
    replica_write(&a, 1, NULL, 101, 0); /* DEL: a tombstone with floors */
    merge_into(&b, &a);
    replica_write(&a, 1, "100", 102, 0);                   /* SET at t 102 */
    assert_int_equal(replica_incr(&b, 2, 1, 103, NULL), RK_OK); /* INCR 103 */
    merge_into(&a, &b);
    merge_into(&b, &a);
    /* the SET is newer than the delete the INCR saw: 100 + 1 */
    assert_string_equal(read_at(&a, 0, buf), "101");
    assert_string_equal(read_at(&b, 0, buf), "101");
    dvv_fini(&a);
    dvv_fini(&b);
}

static void test_counter_incrby_zero_creates_the_key(void **st)
{
    (void)st;
    char buf[64];
    struct dvv_obj a;
    dvv_init(&a);
    int64_t r = 7;
    assert_int_equal(replica_incr(&a, 1, 0, 100, &r), RK_OK);
    assert_true(r == 0);
    assert_string_equal(read_at(&a, 0, buf), "0"); /* exists, as Redis */
    replica_write(&a, 1, NULL, 101, 0);
    assert_string_equal(read_at(&a, 0, buf), "");
    assert_int_equal(replica_incr(&a, 1, 0, 102, &r), RK_OK);
    assert_string_equal(read_at(&a, 0, buf), "0");
    assert_int_equal(replica_incr(&a, 1, 2, 103, &r), RK_OK);
    assert_string_equal(read_at(&a, 0, buf), "2");
    dvv_fini(&a);
}

static void test_counter_new_epoch_after_the_object_was_lost(void **st)
{
    (void)st;
    /* actor 1 counted 10 under epoch 1, and actor 2 counted 1 over it;
     * actor 1's object is then gone (a reaped tombstone, or a value in
     * chunks written over it), and its next increment gets a later dot
     * (the actor's floor): epoch 9.  An old copy of actor 2's that still
     * counts actor 1's 10 under epoch 1 (one that resurfaced after the
     * reap) must not hide the new 3: without epochs the two entries of
     * actor 1 were one, max(10, 3), and the 3 was lost. */
    char buf[64];
    struct dvv_obj old, fresh;
    dvv_init(&old);
    dvv_init(&fresh);
    assert_int_equal(replica_incr(&old, 1, 10, 100, NULL), RK_OK);
    assert_int_equal(replica_incr(&old, 2, 1, 101, NULL), RK_OK);
    struct counter s;
    counter_init(&s);
    uint64_t exp;
    int64_t r;
    assert_int_equal(counter_incr(&fresh, 0, 200, 1, 9, 3, &s, &exp, &r),
                     RK_OK);
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(counter_encode(&s, &b), RK_OK);
    struct dvv_write w = {.value = b.base, .vlen = b.len, .ts = 200,
                          .counter = true};
    assert_int_equal(dvv_update(&fresh, &fresh, 1, 8, &w, NULL), RK_OK);
    merge_into(&fresh, &old);
    assert_string_equal(read_at(&fresh, 0, buf), "14");
    rk_buf_fini(&b);
    counter_fini(&s);
    dvv_fini(&old);
    dvv_fini(&fresh);
}

/* ---- the model ----------------------------------------------------------- */

#define MR 4 /* replicas */

static void test_counter_model_sums_exactly_under_any_merge_order(void **st)
{
    (void)st;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        uint64_t s = seed;
        struct dvv_obj rep[MR];
        uint64_t actor[MR];
        struct dvv_obj snap[MR]; /* an older copy: a crash loses the tail */
        for (int i = 0; i < MR; i++) {
            dvv_init(&rep[i]);
            dvv_init(&snap[i]);
            actor[i] = 100 + (uint64_t)i;
        }
        int64_t total = 0;
        uint64_t ts = 1, next_actor = 1000;
        struct dvv_obj fb; /* a fallback's one-shot write */
        dvv_init(&fb);
        for (int step = 0; step < 400; step++) {
            int i = (int)(rng_next(&s) % MR);
            int j = (i + 1 + (int)(rng_next(&s) % (MR - 1))) % MR; /* != i */
            unsigned what = (unsigned)(rng_next(&s) % 10);
            int64_t d = (int64_t)(rng_next(&s) % 21) - 5;
            if (d == 0) {
                d = 1;
            }
            if (what < 5) {
                assert_int_equal(replica_incr(&rep[i], actor[i], d, ++ts, NULL),
                                 RK_OK);
                total += d;
            } else if (what < 8) {
                merge_into(&rep[i], &rep[j]);
            } else if (what == 8) {
                /* a fallback: an empty object, a one-shot actor, handed
                 * to the owner later */
                dvv_clear(&fb);
                assert_int_equal(replica_incr(&fb, next_actor++, d, ++ts, NULL),
                                 RK_OK);
                total += d;
                merge_into(&rep[j], &fb);
            } else {
                /* a crash and restart: back to the snapshot, new actor;
                 * what was lost survives on the replicas it reached */
                if (rng_next(&s) % 2) {
                    dvv_copy(&snap[i], &rep[i]);
                } else {
                    merge_into(&rep[j], &rep[i]); /* it had replicated */
                    dvv_copy(&rep[i], &snap[i]);
                    actor[i] = next_actor++;
                }
            }
        }
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < MR; i++) {
                for (int j = 0; j < MR; j++) {
                    merge_into(&rep[i], &rep[j]);
                }
            }
        }
        char want[32], buf[64];
        snprintf(want, sizeof(want), "%lld", (long long)total);
        for (int i = 0; i < MR; i++) {
            const char *got = read_at(&rep[i], 0, buf);
            if (strcmp(got, want) != 0 && !(total == 0 && got[0] == '\0')) {
                fail_msg(
                    "seed %llu: replica %d reads '%s', the increments "
                    "sum to %s",
                    (unsigned long long)seed, i, got, want);
            }
            assert_true(dvv_equal(&rep[i], &rep[0]));
        }
        for (int i = 0; i < MR; i++) {
            dvv_fini(&rep[i]);
            dvv_fini(&snap[i]);
        }
        dvv_fini(&fb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_counter_encoding_round_trips_and_refuses_bad_bytes),
        cmocka_unit_test(test_counter_join_is_a_semilattice),
        cmocka_unit_test(test_counter_sum_live_and_overflow),
        cmocka_unit_test(test_counter_reads_resets_and_concurrency),
        cmocka_unit_test(
            test_counter_expiry_is_kept_and_an_expired_counter_restarts),
        cmocka_unit_test(test_counter_model_sums_exactly_under_any_merge_order),
        cmocka_unit_test(
            test_counter_incr_after_delete_keeps_a_concurrent_set),
        cmocka_unit_test(test_counter_incrby_zero_creates_the_key),
        cmocka_unit_test(test_counter_new_epoch_after_the_object_was_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
