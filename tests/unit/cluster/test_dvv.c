/*
 * test_dvv.c - cluster/dvv: dotted version vector sets (issue 5 item 1,
 * TESTING.md B1): the encoding and its decoder on hostile input, the
 * context text, update semantics (a write supersedes exactly the siblings
 * its context covers), merge laws (commutative, associative, idempotent),
 * no concurrent sibling ever dropped, the sibling order, LWW and bounds.
 *
 * The randomized model test runs replicas that take writes with contexts
 * read from any (possibly stale) replica and exchange objects at random.
 * It tracks, outside the DVV code, the true set of writes each object
 * knows and the set each write's context covers, and checks (1) a
 * context never covers a write its source object did not know (the
 * no-overclaim invariant dvv.h relies on), (2) after all replicas merged,
 * the surviving siblings are exactly the writes no later write's context
 * covered, and (3) merge laws on the live states.  Seeds are fixed and
 * printed on failure.
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

static void put(struct dvv_obj *o,
                const struct dvv_obj *ctx,
                uint64_t actor,
                const char *v,
                uint64_t ts,
                struct dvv_dot *dot)
{
    struct dvv_write w = {
        v, v ? strlen(v) : 0, ts, 0, v == NULL, false, false, false};
    assert_int_equal(dvv_update(o, ctx, actor, 0, &w, dot), RK_OK);
}

static void assert_same(const struct dvv_obj *a, const struct dvv_obj *b)
{
    struct rk_buf x, y;
    rk_buf_init(&x);
    rk_buf_init(&y);
    assert_int_equal(dvv_encode(a, &x), RK_OK);
    assert_int_equal(dvv_encode(b, &y), RK_OK);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.base, y.base, x.len);
    assert_true(dvv_equal(a, b));
    rk_buf_fini(&x);
    rk_buf_fini(&y);
}

static void roundtrip(const struct dvv_obj *o)
{
    struct rk_buf b, b2;
    rk_buf_init(&b);
    rk_buf_init(&b2);
    assert_int_equal(dvv_encode(o, &b), RK_OK);
    assert_int_equal(b.len, dvv_encoded_size(o));
    struct dvv_obj d;
    dvv_init(&d);
    assert_int_equal(dvv_decode(&d, b.base, b.len), RK_OK);
    assert_same(o, &d);
    assert_int_equal(dvv_encode(&d, &b2), RK_OK);
    assert_memory_equal(b.base, b2.base, b.len);
    dvv_fini(&d);
    rk_buf_fini(&b);
    rk_buf_fini(&b2);
}

/* ---- semantics ------------------------------------------------------------
 */

static void test_dvv_sequential_writes_never_make_siblings(void **state)
{
    (void)state;
    struct dvv_obj o;
    dvv_init(&o);
    for (int i = 0; i < 50; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        put(&o, &o, 7, v, 100 + (uint64_t)i, NULL); /* blind SET: ctx = own */
        assert_int_equal(o.n_sibs, 1);
        assert_int_equal(o.sibs[0].vlen, strlen(v));
        assert_memory_equal(dvv_value(&o, 0), v, strlen(v));
    }
    assert_int_equal(dvv_counter(&o, 7), 50);
    roundtrip(&o);
    dvv_fini(&o);
}

static void test_dvv_concurrent_writes_become_siblings_and_ctx_resolves(
    void **state)
{
    (void)state;
    struct dvv_obj a, b, m, ctx;
    dvv_init(&a);
    dvv_init(&b);
    dvv_init(&m);
    dvv_init(&ctx);
    put(&a, NULL, 1, "left", 10, NULL);
    put(&b, NULL, 2, "right", 11, NULL);
    assert_int_equal(dvv_merge(&m, &a, &b), RK_OK);
    assert_int_equal(m.n_sibs, 2);
    /* GET picks the newest by HLC */
    long w = dvv_winner(&m);
    assert_true(w >= 0);
    assert_memory_equal(dvv_value(&m, (size_t)w), "right", 5);
    /* a context from the merged object covers both: one sibling left */
    struct rk_buf t;
    rk_buf_init(&t);
    assert_int_equal(dvv_context_encode(&m, &t), RK_OK);
    assert_int_equal(dvv_context_decode(&ctx, t.base, t.len), RK_OK);
    put(&a, &ctx, 1, "both", 12, NULL);
    struct dvv_obj m2;
    dvv_init(&m2);
    assert_int_equal(dvv_merge(&m2, &a, &m), RK_OK);
    assert_int_equal(m2.n_sibs, 1);
    assert_memory_equal(dvv_value(&m2, 0), "both", 4);
    /* a context that saw only "left" keeps "right" */
    struct dvv_obj c1, a2;
    dvv_init(&c1);
    dvv_init(&a2);
    put(&a2, NULL, 1, "left", 10, NULL);
    assert_int_equal(dvv_copy(&c1, &a2), RK_OK);
    put(&a2, &c1, 1, "left2", 13, NULL);
    assert_int_equal(dvv_merge_into(&a2, &b), RK_OK);
    assert_int_equal(a2.n_sibs, 2); /* left2 and right */
    roundtrip(&m2);
    roundtrip(&a2);
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&m);
    dvv_fini(&m2);
    dvv_fini(&ctx);
    dvv_fini(&c1);
    dvv_fini(&a2);
    rk_buf_fini(&t);
}

static void test_dvv_tombstone_sibling_and_lww(void **state)
{
    (void)state;
    struct dvv_obj a, b;
    dvv_init(&a);
    dvv_init(&b);
    put(&a, NULL, 1, "x", 10, NULL);
    put(&b, NULL, 2, NULL, 20, NULL); /* concurrent delete */
    assert_int_equal(dvv_merge_into(&a, &b), RK_OK);
    assert_int_equal(a.n_sibs, 2);
    assert_false(dvv_all_tombstones(&a));
    long w = dvv_winner(&a);
    assert_true(a.sibs[w].tombstone);
    assert_int_equal(dvv_lww(&a), 1);
    assert_int_equal(a.n_sibs, 1);
    assert_true(dvv_all_tombstones(&a));
    /* the discarded dot stays covered: merging the old side again does
       not bring it back */
    struct dvv_obj old;
    dvv_init(&old);
    put(&old, NULL, 1, "x", 10, NULL);
    assert_int_equal(dvv_merge_into(&a, &old), RK_OK);
    assert_int_equal(a.n_sibs, 1);
    struct dvv_write bad = {"v", 1, 5, 0, true, false, false, false};
    assert_int_equal(dvv_update(&a, NULL, 3, 0, &bad, NULL), RK_EINVAL);
    struct dvv_write ok = {"v", 1, 5, 0, false, false, false, false};
    assert_int_equal(dvv_update(&a, NULL, DVV_ACTOR_LEGACY, 0, &ok, NULL),
                     RK_EINVAL);
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&old);
}

/* A content type rides in the value behind flag bit 1: it round-trips,
 * survives merges, is hidden from the payload, and bad prefixes are
 * refused by both dvv_update and the decoder. */
static void test_dvv_content_type(void **state)
{
    (void)state;
    struct dvv_obj a, b, m;
    dvv_init(&a);
    dvv_init(&b);
    dvv_init(&m);
    const char v[] =
        "\x0a"
        "text/plain"
        "hello";
    struct dvv_write w = {v, sizeof(v) - 1, 5, 0, false, true, false, false};
    assert_int_equal(dvv_update(&a, NULL, 3, 0, &w, NULL), RK_OK);
    size_t n = 0;
    const char *p = dvv_payload(&a, 0, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "hello", 5);
    p = dvv_ctype(&a, 0, &n);
    assert_int_equal(n, 10);
    assert_memory_equal(p, "text/plain", 10);
    put(&b, NULL, 4, "plain", 6, NULL); /* concurrent, no content type */
    assert_memory_equal(dvv_payload(&b, 0, &n), "plain", 5);
    assert_int_equal(n, 5);
    dvv_ctype(&b, 0, &n);
    assert_int_equal(n, 0);
    assert_int_equal(dvv_merge(&m, &a, &b), RK_OK);
    assert_int_equal(m.n_sibs, 2);
    struct rk_buf enc;
    rk_buf_init(&enc);
    assert_int_equal(dvv_encode(&m, &enc), RK_OK);
    struct dvv_obj d;
    dvv_init(&d);
    assert_int_equal(dvv_decode(&d, enc.base, enc.len), RK_OK);
    assert_true(dvv_equal(&d, &m));
    size_t with = d.sibs[0].ctype ? 0 : 1;
    assert_true(d.sibs[with].ctype);
    assert_false(d.sibs[1 - with].ctype);
    /* flag bit 1 on a sibling whose value is no valid prefix: corrupt.
     * The sibling of actor 4 ("plain") sits after the header and clock. */
    size_t off = DVV_HDR + d.n_clock * DVV_CLOCK_ENTRY;
    size_t sib4 =
        d.sibs[0].dot.actor == 4 ? off : off + DVV_SIB_HDR + d.sibs[0].vlen;
    enc.base[sib4 + 32] |= DVV_SIB_CTYPE; /* 'p' = 112 > 5 bytes */
    assert_int_equal(dvv_decode(&d, enc.base, enc.len), RK_ECORRUPT);
    enc.base[sib4 + 32] = 8; /* an unknown flag bit */
    assert_int_equal(dvv_decode(&d, enc.base, enc.len), RK_ECORRUPT);
    /* dvv_update refuses bad prefixes and a tombstone with a type */
    const char *bad[] = {"\000x", "\005abc", "\002a\n", "\001\177"};
    for (size_t i = 0; i < 4; i++) {
        struct dvv_write bw = {
            bad[i], strlen(bad[i]) + (i == 0), 7, 0, false, true, false, false};
        assert_int_equal(dvv_update(&a, NULL, 3, 0, &bw, NULL), RK_EINVAL);
    }
    struct dvv_write tw = {NULL, 0, 7, 0, true, true, false, false};
    assert_int_equal(dvv_update(&a, NULL, 3, 0, &tw, NULL), RK_EINVAL);
    char big[130];
    big[0] = (char)128; /* over DVV_MAX_CTYPE */
    memset(big + 1, 'a', sizeof(big) - 1);
    assert_false(dvv_ctype_valid(big, sizeof(big)));
    big[0] = 127;
    assert_true(dvv_ctype_valid(big, sizeof(big)));
    rk_buf_fini(&enc);
    dvv_fini(&d);
    dvv_fini(&m);
    dvv_fini(&a);
    dvv_fini(&b);
}

static void test_dvv_floor_skips_reaped_dots(void **state)
{
    (void)state;
    struct dvv_obj o, old;
    dvv_init(&o);
    dvv_init(&old);
    put(&old, NULL, 5, "before", 1, NULL); /* dot (5,1), later reaped */
    struct dvv_write w = {"after", 5, 2, 0, false, false, false, false};
    struct dvv_dot d;
    assert_int_equal(dvv_update(&o, NULL, 5, 41, &w, &d), RK_OK);
    assert_int_equal(d.counter, 42);
    /* the stale copy of the reaped write is covered, so it stays dead */
    assert_int_equal(dvv_merge_into(&o, &old), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_memory_equal(dvv_value(&o, 0), "after", 5);
    dvv_fini(&o);
    dvv_fini(&old);
}

static void test_dvv_bound_drops_oldest_and_prunes_unneeded(void **state)
{
    (void)state;
    struct dvv_obj o;
    dvv_init(&o);
    for (uint64_t a = 1; a <= 10; a++) {
        struct dvv_obj one;
        dvv_init(&one);
        put(&one, NULL, a, "s", 100 + a, NULL);
        assert_int_equal(dvv_merge_into(&o, &one), RK_OK);
        dvv_fini(&one);
    }
    assert_int_equal(o.n_sibs, 10);
    size_t dropped = 0, pruned = 0;
    dvv_bound(&o, 4, 0, &dropped, &pruned);
    assert_int_equal(dropped, 6);
    assert_int_equal(o.n_sibs, 4);
    for (size_t i = 0; i < o.n_sibs; i++) {
        assert_true(o.sibs[i].ts >= 107); /* the newest four stay */
    }
    dvv_bound(&o, 0, 5, &dropped, &pruned);
    assert_int_equal(pruned, 5);
    assert_int_equal(o.n_clock, 5);
    dvv_bound(&o, 0, 2, &dropped, &pruned);
    assert_int_equal(o.n_clock, 4); /* every entry left backs a sibling */
    roundtrip(&o);
    dvv_fini(&o);
}

/* ---- encoding -------------------------------------------------------------
 */

static void test_dvv_decode_rejects_hostile_input(void **state)
{
    (void)state;
    struct dvv_obj o, d;
    dvv_init(&o);
    dvv_init(&d);
    put(&o, NULL, 1, "hello", 10, NULL);
    struct dvv_obj two;
    dvv_init(&two);
    put(&two, NULL, 2, NULL, 11, NULL);
    assert_int_equal(dvv_merge_into(&o, &two), RK_OK);
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(dvv_encode(&o, &b), RK_OK);
    /* every truncation fails */
    for (size_t n = 0; n < b.len; n++) {
        assert_int_equal(dvv_decode(&d, b.base, n), RK_ECORRUPT);
        assert_int_equal(d.n_sibs, 0);
    }
    /* every single-bit flip fails, or decodes to an object whose canonical
       encoding is exactly the flipped bytes (a value byte, a ts) */
    size_t ok = 0;
    for (size_t i = 0; i < b.len * 8; i++) {
        b.base[i / 8] ^= (char)(1 << (i % 8));
        int rc = dvv_decode(&d, b.base, b.len);
        if (rc == RK_OK) {
            struct rk_buf e;
            rk_buf_init(&e);
            assert_int_equal(dvv_encode(&d, &e), RK_OK);
            assert_int_equal(e.len, b.len);
            assert_memory_equal(e.base, b.base, b.len);
            rk_buf_fini(&e);
            ok++;
        } else {
            assert_true(rc == RK_ECORRUPT || rc == RK_EVERSION);
        }
        b.base[i / 8] ^= (char)(1 << (i % 8));
    }
    assert_true(ok > 0 && ok < b.len * 8);
    /* trailing bytes */
    rk_buf_append(&b, "x", 1);
    assert_int_equal(dvv_decode(&d, b.base, b.len), RK_ECORRUPT);
    /* a huge declared count with no bytes behind it allocates nothing big */
    unsigned char hdr[6] = {1, 0, 0xff, 0x03, 0xff, 0x0f};
    assert_int_equal(dvv_decode(&d, hdr, sizeof(hdr)), RK_ECORRUPT);
    unsigned char v3[7] = {DVV_FORMAT_VERSION + 1, 0, 1, 0, 0, 0, 0};
    assert_int_equal(dvv_decode(&d, v3, sizeof(v3)), RK_EVERSION);
    /* version 2 without its type byte, or with type 0 (not canonical) */
    unsigned char v2[7] = {2, 0, 0, 0, 0, 0, 0};
    assert_int_equal(dvv_decode(&d, v2, 6), RK_ECORRUPT);
    assert_int_equal(dvv_decode(&d, v2, sizeof(v2)), RK_ECORRUPT);
    dvv_fini(&o);
    dvv_fini(&d);
    dvv_fini(&two);
    rk_buf_fini(&b);
}

/* Issue 11 item 3: an object carries its type.  A string object (type 0,
 * every object before the CRDT types) keeps encoding version 1 byte for
 * byte, so nodes that only read version 1 still exchange it; a typed one
 * is version 2 with a type byte; merge joins the types. */
static void test_dvv_type_encoding_v1_for_strings_v2_for_typed(void **state)
{
    (void)state;
    struct dvv_obj o, d, m;
    dvv_init(&o);
    dvv_init(&d);
    dvv_init(&m);
    put(&o, NULL, 1, "v", 10, NULL);
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(dvv_encode(&o, &b), RK_OK);
    assert_int_equal((unsigned char)b.base[0], DVV_FORMAT_V1);
    assert_int_equal(b.len, DVV_HDR + DVV_CLOCK_ENTRY + DVV_SIB_HDR + 1);
    size_t v1_len = b.len;
    o.type = OBJTYPE_SET;
    roundtrip(&o);
    rk_buf_clear(&b);
    assert_int_equal(dvv_encode(&o, &b), RK_OK);
    assert_int_equal(b.len, v1_len + 1);
    assert_int_equal((unsigned char)b.base[0], 2);
    assert_int_equal((unsigned char)b.base[2], OBJTYPE_SET);
    assert_int_equal(dvv_decode(&d, b.base, b.len), RK_OK);
    assert_int_equal(d.type, OBJTYPE_SET);
    /* a version-1 reader would say RK_EVERSION: so says ours to v3 */
    b.base[0] = DVV_FORMAT_VERSION + 1;
    assert_int_equal(dvv_decode(&d, b.base, b.len), RK_EVERSION);
    assert_int_equal(d.type, OBJTYPE_STRING);
    /* merge: the larger type, whichever side; clear resets it */
    put(&d, NULL, 2, "w", 11, NULL);
    assert_int_equal(dvv_merge(&m, &o, &d), RK_OK);
    assert_int_equal(m.type, OBJTYPE_SET);
    assert_int_equal(dvv_merge(&m, &d, &o), RK_OK);
    assert_int_equal(m.type, OBJTYPE_SET);
    assert_false(dvv_equal(&o, &d));
    dvv_clear(&m);
    assert_int_equal(m.type, OBJTYPE_STRING);
    rk_buf_fini(&b);
    dvv_fini(&o);
    dvv_fini(&d);
    dvv_fini(&m);
}

static void test_dvv_context_text_roundtrip_and_rejects(void **state)
{
    (void)state;
    struct dvv_obj o, c;
    dvv_init(&o);
    dvv_init(&c);
    put(&o, NULL, 0x1122334455667788ull, "a", 1, NULL);
    put(&o, &o, 3, "b", 2, NULL);
    struct rk_buf t;
    rk_buf_init(&t);
    assert_int_equal(dvv_context_encode(&o, &t), RK_OK);
    assert_int_equal(t.len, 6 + 2 * 32);
    assert_int_equal(dvv_context_decode(&c, t.base, t.len), RK_OK);
    assert_int_equal(c.n_clock, 2);
    assert_int_equal(dvv_counter(&c, 3), 1);
    assert_int_equal(dvv_counter(&c, 0x1122334455667788ull), 1);
    assert_int_equal(dvv_context_decode(&c, "", 0), RK_OK);
    assert_int_equal(c.n_clock, 0);
    const char *bad[] = {"zz",
                         "01",
                         "010100",
                         "020000",
                         "0100",
                         "01000g",
                         "010200"
                         "0300000000000000"
                         "0100000000000000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dvv_context_decode(&c, bad[i], strlen(bad[i])),
                         RK_EINVAL);
    }
    /* unsorted actors */
    const char *unsorted =
        "010200"
        "0300000000000000"
        "0100000000000000"
        "0200000000000000"
        "0100000000000000";
    assert_int_equal(dvv_context_decode(&c, unsorted, strlen(unsorted)),
                     RK_EINVAL);
    /* zero counter */
    const char *zero =
        "010100"
        "0300000000000000"
        "0000000000000000";
    assert_int_equal(dvv_context_decode(&c, zero, strlen(zero)), RK_EINVAL);
    rk_buf_fini(&t);
    dvv_fini(&o);
    dvv_fini(&c);
}

/* ---- the randomized model ------------------------------------------------ */

#define M_REPLICAS 3
#define M_MAXW     256
#define M_WORDS    (M_MAXW / 64)

struct kset
{
    uint64_t w[M_WORDS];
};

static void kset_add(struct kset *s, size_t i)
{
    s->w[i / 64] |= 1ull << (i % 64);
}

static bool kset_has(const struct kset *s, size_t i)
{
    return (s->w[i / 64] >> (i % 64)) & 1;
}

static void kset_union(struct kset *a, const struct kset *b)
{
    for (size_t i = 0; i < M_WORDS; i++) {
        a->w[i] |= b->w[i];
    }
}

struct model
{
    struct dvv_obj rep[M_REPLICAS];
    struct kset know[M_REPLICAS]; /* writes each replica object knows */
    struct dvv_dot dots[M_MAXW];
    struct kset covered[M_MAXW]; /* writes each write's context covered */
    size_t n;
    uint64_t floor[M_REPLICAS];
    uint64_t ts;
};

static size_t find_write(const struct model *m, struct dvv_dot d)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->dots[i].actor == d.actor && m->dots[i].counter == d.counter) {
            return i;
        }
    }
    fail_msg("unknown dot (%llu,%llu)", (unsigned long long)d.actor,
             (unsigned long long)d.counter);
    return 0;
}

static void check_laws(const struct dvv_obj *a,
                       const struct dvv_obj *b,
                       const struct dvv_obj *c)
{
    struct dvv_obj ab, ba, abc1, bc, abc2, aa;
    dvv_init(&ab);
    dvv_init(&ba);
    dvv_init(&abc1);
    dvv_init(&bc);
    dvv_init(&abc2);
    dvv_init(&aa);
    assert_int_equal(dvv_merge(&ab, a, b), RK_OK);
    assert_int_equal(dvv_merge(&ba, b, a), RK_OK);
    assert_same(&ab, &ba); /* commutative */
    assert_int_equal(dvv_merge(&abc1, &ab, c), RK_OK);
    assert_int_equal(dvv_merge(&bc, b, c), RK_OK);
    assert_int_equal(dvv_merge(&abc2, a, &bc), RK_OK);
    assert_same(&abc1, &abc2); /* associative */
    assert_int_equal(dvv_merge(&aa, a, a), RK_OK);
    assert_same(&aa, a); /* idempotent */
    dvv_fini(&ab);
    dvv_fini(&ba);
    dvv_fini(&abc1);
    dvv_fini(&bc);
    dvv_fini(&abc2);
    dvv_fini(&aa);
}

static unsigned long run_model(uint64_t seed, size_t steps)
{
    struct model m;
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < M_REPLICAS; i++) {
        dvv_init(&m.rep[i]);
    }
    uint64_t s = seed;
    unsigned long cases = 0;
    for (size_t step = 0; step < steps && m.n < M_MAXW; step++) {
        size_t i = rng_next(&s) % M_REPLICAS;
        size_t j = rng_next(&s) % M_REPLICAS;
        unsigned op = (unsigned)(rng_next(&s) % 10);
        if (op < 5) {
            /* a client read replica j (maybe stale), writes through i */
            struct dvv_obj ctx;
            dvv_init(&ctx);
            const struct dvv_obj *src = NULL;
            const struct kset *src_know = NULL;
            unsigned how = (unsigned)(rng_next(&s) % 3);
            if (how == 1) {
                src = &m.rep[j];
                src_know = &m.know[j];
            } else if (how == 2) {
                src = &m.rep[i]; /* blind SET: what i has seen */
                src_know = &m.know[i];
            }
            if (src) {
                struct rk_buf t;
                rk_buf_init(&t);
                assert_int_equal(dvv_context_encode(src, &t), RK_OK);
                assert_int_equal(dvv_context_decode(&ctx, t.base, t.len),
                                 RK_OK);
                rk_buf_fini(&t);
            }
            size_t w = m.n;
            for (size_t k = 0; k < m.n; k++) {
                if (dvv_covers(&ctx, m.dots[k])) {
                    /* (1) no overclaim */
                    if (!kset_has(src_know, k)) {
                        fail_msg(
                            "seed %llu: context covers write %zu its "
                            "source never knew",
                            (unsigned long long)seed, k);
                    }
                    kset_add(&m.covered[w], k);
                }
            }
            char v[32];
            snprintf(v, sizeof(v), "w%zu", w);
            bool tomb = rng_next(&s) % 8 == 0;
            struct dvv_write wr = {tomb ? NULL : v,
                                   tomb ? 0 : strlen(v),
                                   ++m.ts,
                                   0,
                                   tomb,
                                   false,
                                   false,
                                   false};
            struct dvv_dot d;
            assert_int_equal(
                dvv_update(&m.rep[i], &ctx, 100 + i, m.floor[i], &wr, &d),
                RK_OK);
            m.floor[i] = d.counter;
            m.dots[w] = d;
            m.n++;
            kset_add(&m.know[i], w);
            if (src_know) {
                /* the object's clock now covers what the client read:
                   those writes are known to it (superseded or kept) */
                struct kset sk = *src_know;
                kset_union(&m.know[i], &sk);
            }
            dvv_fini(&ctx);
        } else if (op < 9) {
            assert_int_equal(dvv_merge_into(&m.rep[i], &m.rep[j]), RK_OK);
            kset_union(&m.know[i], &m.know[j]);
        } else {
            check_laws(&m.rep[i], &m.rep[j], &m.rep[rng_next(&s) % M_REPLICAS]);
            roundtrip(&m.rep[i]);
        }
        cases++;
        /* every sibling names a known write and carries its value */
        for (size_t r = 0; r < M_REPLICAS; r++) {
            for (size_t k = 0; k < m.rep[r].n_sibs; k++) {
                size_t w = find_write(&m, m.rep[r].sibs[k].dot);
                if (!m.rep[r].sibs[k].tombstone) {
                    char v[32];
                    snprintf(v, sizeof(v), "w%zu", w);
                    assert_int_equal(m.rep[r].sibs[k].vlen, strlen(v));
                    assert_memory_equal(dvv_value(&m.rep[r], k), v, strlen(v));
                }
            }
        }
    }
    /* (2) full merge: survivors are exactly the writes nobody covered */
    struct dvv_obj all;
    dvv_init(&all);
    for (size_t r = 0; r < M_REPLICAS; r++) {
        assert_int_equal(dvv_merge_into(&all, &m.rep[r]), RK_OK);
    }
    for (size_t w = 0; w < m.n; w++) {
        bool superseded = false;
        for (size_t e = 0; e < m.n && !superseded; e++) {
            superseded = kset_has(&m.covered[e], w);
        }
        bool present = false;
        for (size_t k = 0; k < all.n_sibs; k++) {
            present |= all.sibs[k].dot.actor == m.dots[w].actor &&
                       all.sibs[k].dot.counter == m.dots[w].counter;
        }
        if (present == superseded) {
            fail_msg("seed %llu: write %zu %s", (unsigned long long)seed, w,
                     superseded ? "survived although superseded"
                                : "was dropped although concurrent (LOST)");
        }
    }
    /* the replicas converge to the same object in any merge order */
    for (size_t r = 0; r < M_REPLICAS; r++) {
        struct dvv_obj x;
        dvv_init(&x);
        assert_int_equal(dvv_copy(&x, &m.rep[(r + 1) % M_REPLICAS]), RK_OK);
        assert_int_equal(dvv_merge_into(&x, &m.rep[r]), RK_OK);
        assert_int_equal(dvv_merge_into(&x, &m.rep[(r + 2) % M_REPLICAS]),
                         RK_OK);
        assert_same(&x, &all);
        dvv_fini(&x);
    }
    dvv_fini(&all);
    for (size_t i = 0; i < M_REPLICAS; i++) {
        dvv_fini(&m.rep[i]);
    }
    return cases;
}

static void test_dvv_model_never_loses_a_concurrent_write(void **state)
{
    (void)state;
    unsigned long cases = 0;
    for (uint64_t seed = 1; seed <= 600; seed++) {
        cases += run_model(seed * 7919u, 200);
    }
    printf("dvv model: %lu cases / 0 failures (600 seeds)\n", cases);
    assert_true(cases >= 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dvv_sequential_writes_never_make_siblings),
        cmocka_unit_test(
            test_dvv_concurrent_writes_become_siblings_and_ctx_resolves),
        cmocka_unit_test(test_dvv_tombstone_sibling_and_lww),
        cmocka_unit_test(test_dvv_content_type),
        cmocka_unit_test(test_dvv_floor_skips_reaped_dots),
        cmocka_unit_test(test_dvv_bound_drops_oldest_and_prunes_unneeded),
        cmocka_unit_test(test_dvv_decode_rejects_hostile_input),
        cmocka_unit_test(test_dvv_type_encoding_v1_for_strings_v2_for_typed),
        cmocka_unit_test(test_dvv_context_text_roundtrip_and_rejects),
        cmocka_unit_test(test_dvv_model_never_loses_a_concurrent_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
