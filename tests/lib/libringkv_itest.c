/*
 * libringkv_itest.c - drives libringkv against real ringkvd processes for
 * tests/integration/test_libringkv.py.
 *
 *   libringkv_itest basic SEED...          every API call once, checked
 *   libringkv_itest loop SECONDS SEED...   idempotent set/get/mset/mget/del
 *                                          in a loop; prints "started"
 *                                          once warm, then at the end
 *                                          "ops=N errors=E retries=R
 *                                          connects=C refreshes=F"
 *   libringkv_itest connect SEED...        ringkv_create only; prints the
 *                                          error name on failure
 * RINGKV_PASSWORD (environment) sets the AUTH password.  Exit 0 when every
 * check passed (loop: always, the counts tell), 1 otherwise.
 */
#include <ringkv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest.h"

static int g_fail;

#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", \
                    __FILE__, __LINE__, #cond, ringkv_last_error(rk));    \
            g_fail = 1;                                                   \
        }                                                                 \
    } while (0)

static int open_rk(int n, char **seeds, struct ringkv **out)
{
    struct ringkv_options o;
    itest_options(&o, n, seeds);
    char err[256];
    int rc = ringkv_create(&o, out, err);
    if (rc != RINGKV_OK) {
        printf("%s %s\n", ringkv_errname(rc), err);
    }
    return rc;
}

static void basic(struct ringkv *rk)
{
    char *v = NULL;
    size_t len = 0;
    CHECK(ringkv_set(rk, "k1", 2, "v\0one", 5, 0, NULL) == RINGKV_OK);
    CHECK(ringkv_get(rk, "k1", 2, &v, &len, NULL) == RINGKV_OK);
    CHECK(len == 5 && v && memcmp(v, "v\0one", 5) == 0 && v[5] == '\0');
    ringkv_free(v);
    v = NULL;
    CHECK(ringkv_get(rk, "nope", 4, &v, &len, NULL) == RINGKV_ENOTFOUND);
    CHECK(v == NULL);

    int64_t n = -1;
    CHECK(ringkv_del(rk, "k1", 2, &n, NULL) == RINGKV_OK && n == 1);
    CHECK(ringkv_del(rk, "k1", 2, &n, NULL) == RINGKV_OK && n == 0);

    /* expiry: SET PX and PEXPIRE */
    CHECK(ringkv_set(rk, "ttl", 3, "x", 1, 150, NULL) == RINGKV_OK);
    CHECK(ringkv_get(rk, "ttl", 3, &v, &len, NULL) == RINGKV_OK);
    ringkv_free(v);
    bool set = false;
    CHECK(ringkv_set(rk, "ttl2", 4, "y", 1, 0, NULL) == RINGKV_OK);
    CHECK(ringkv_expire(rk, "ttl2", 4, 150, &set, NULL) == RINGKV_OK && set);
    CHECK(ringkv_expire(rk, "absent", 6, 150, &set, NULL) == RINGKV_OK && !set);
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(ringkv_get(rk, "ttl", 3, &v, &len, NULL) == RINGKV_ENOTFOUND);
    CHECK(ringkv_get(rk, "ttl2", 4, &v, &len, NULL) == RINGKV_ENOTFOUND);

    /* incr */
    int64_t r = 0;
    ringkv_del(rk, "ctr", 3, NULL, NULL);
    CHECK(ringkv_incr(rk, "ctr", 3, 5, &r, NULL) == RINGKV_OK && r == 5);
    struct ringkv_call idem = {.flags = RINGKV_CALL_IDEMPOTENT};
    CHECK(ringkv_incr(rk, "ctr", 3, -2, &r, &idem) == RINGKV_OK && r == 3);
    CHECK(ringkv_set(rk, "str", 3, "abc", 3, 0, NULL) == RINGKV_OK);
    CHECK(ringkv_incr(rk, "str", 3, 1, &r, NULL) == RINGKV_ESERVER);
    CHECK(strstr(ringkv_last_error(rk), "not an integer") != NULL);

    /* mset / mget over many slots */
    const void *keys[3] = {"{a}1", "b", "c"};
    size_t klens[3] = {4, 1, 1};
    const void *vals[3] = {"1", "22", "333"};
    size_t vlens[3] = {1, 2, 3};
    CHECK(ringkv_mset(rk, 3, keys, klens, vals, vlens, NULL) == RINGKV_OK);
    ringkv_del(rk, "b", 1, NULL, NULL);
    struct ringkv_value *vs = NULL;
    CHECK(ringkv_mget(rk, 3, keys, klens, &vs, NULL) == RINGKV_OK);
    if (vs != NULL) {
        CHECK(vs[0].len == 1 && memcmp(vs[0].data, "1", 1) == 0);
        CHECK(vs[1].data == NULL);
        CHECK(vs[2].len == 3 && memcmp(vs[2].data, "333", 3) == 0);
        ringkv_values_free(vs, 3);
    }

    /* siblings: getall / put with the context.  After DEL a cluster
     * keeps a tombstone (a sibling without a value); a single node none. */
    struct ringkv_siblings *s = NULL;
    ringkv_del(rk, "sib", 3, NULL, NULL);
    CHECK(ringkv_getall(rk, "sib", 3, &s, NULL) == RINGKV_OK);
    for (size_t i = 0; s && i < s->n; i++) {
        CHECK(s->items[i].value.data == NULL);
    }
    if (s != NULL) {
        CHECK(ringkv_put(rk, "sib", 3, s->context, s->context_len, "first", 5,
                         NULL) == RINGKV_OK);
        ringkv_siblings_free(s);
    }
    s = NULL;
    CHECK(ringkv_getall(rk, "sib", 3, &s, NULL) == RINGKV_OK);
    CHECK(s && s->n == 1 && s->items[0].value.len == 5 &&
          memcmp(s->items[0].value.data, "first", 5) == 0 &&
          s->items[0].unix_ms > 1600000000000LL);
    if (s != NULL) {
        CHECK(ringkv_put(rk, "sib", 3, s->context, s->context_len, "second", 6,
                         NULL) == RINGKV_OK);
        ringkv_siblings_free(s);
    }
    CHECK(ringkv_get(rk, "sib", 3, &v, &len, NULL) == RINGKV_OK && len == 6 &&
          memcmp(v, "second", 6) == 0);
    ringkv_free(v);
    CHECK(ringkv_put(rk, "sib", 3, "zz-not-a-context", 16, "x", 1, NULL) ==
          RINGKV_ESERVER);

    /* bad arguments */
    CHECK(ringkv_set(rk, "k", 1, "v", 1, -1, NULL) == RINGKV_EINVAL);
    CHECK(ringkv_mget(rk, 0, keys, klens, &vs, NULL) == RINGKV_EINVAL);
    CHECK(strcmp(ringkv_errname(RINGKV_ETIMEDOUT), "RINGKV_ETIMEDOUT") == 0);

    struct ringkv_stats st;
    ringkv_stats_get(rk, &st);
    printf("nodes=%zu calls=%llu errors=%llu\n", ringkv_node_count(rk),
           (unsigned long long)st.calls, (unsigned long long)st.errors);
}

static void loop(struct ringkv *rk, double seconds)
{
    unsigned long long ops = 0, errors = 0;
    char key[32], val[32];
    /* warm up: every node's connection open */
    for (int i = 0; i < 200; i++) {
        int kl = snprintf(key, sizeof(key), "loop:%d", i);
        if (ringkv_set(rk, key, (size_t)kl, "0", 1, 0, NULL) != RINGKV_OK) {
            fprintf(stderr, "warm-up: %s\n", ringkv_last_error(rk));
            errors++;
        }
    }
    printf("started\n");
    fflush(stdout);
    double end = itest_now_s() + seconds;
    for (unsigned i = 0; itest_now_s() < end; i++) {
        int kl = snprintf(key, sizeof(key), "loop:%u", i % 200);
        int vl = snprintf(val, sizeof(val), "%u", i);
        int rc = ringkv_set(rk, key, (size_t)kl, val, (size_t)vl, 0, NULL);
        char *v = NULL;
        size_t len = 0;
        if (rc == RINGKV_OK) {
            rc = ringkv_get(rk, key, (size_t)kl, &v, &len, NULL);
            if (rc == RINGKV_OK &&
                (len != (size_t)vl || memcmp(v, val, len) != 0)) {
                fprintf(stderr, "%s: read %.*s, wrote %s\n", key, (int)len, v,
                        val);
                errors++;
            }
            ringkv_free(v);
        }
        if (rc == RINGKV_OK && i % 10 == 0) {
            const void *ks[2] = {key, "loop:m"};
            size_t kls[2] = {(size_t)kl, 6};
            const void *vs[2] = {val, val};
            size_t vls[2] = {(size_t)vl, (size_t)vl};
            rc = ringkv_mset(rk, 2, ks, kls, vs, vls, NULL);
            struct ringkv_value *out = NULL;
            if (rc == RINGKV_OK) {
                rc = ringkv_mget(rk, 2, ks, kls, &out, NULL);
                ringkv_values_free(out, 2);
            }
            if (rc == RINGKV_OK) {
                rc = ringkv_del(rk, "loop:m", 6, NULL, NULL);
            }
        }
        if (rc != RINGKV_OK) {
            errors++;
            fprintf(stderr, "op %u: %s: %s\n", i, ringkv_errname(rc),
                    ringkv_last_error(rk));
        }
        ops++;
    }
    struct ringkv_stats st;
    ringkv_stats_get(rk, &st);
    printf("ops=%llu errors=%llu retries=%llu connects=%llu refreshes=%llu\n",
           ops, errors, (unsigned long long)st.retries,
           (unsigned long long)st.connects, (unsigned long long)st.refreshes);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s basic|loop SECONDS|connect SEED...\n",
                argv[0]);
        return 2;
    }
    struct ringkv *rk = NULL;
    if (strcmp(argv[1], "loop") == 0) {
        if (argc < 4 || open_rk(argc - 3, argv + 3, &rk) != RINGKV_OK) {
            return 1;
        }
        loop(rk, atof(argv[2]));
    } else if (strcmp(argv[1], "basic") == 0) {
        if (open_rk(argc - 2, argv + 2, &rk) != RINGKV_OK) {
            return 1;
        }
        basic(rk);
    } else if (strcmp(argv[1], "connect") == 0) {
        if (open_rk(argc - 2, argv + 2, &rk) != RINGKV_OK) {
            return 1;
        }
        printf("nodes=%zu\n", ringkv_node_count(rk));
    } else {
        return 2;
    }
    ringkv_destroy(rk);
    if (!g_fail && strcmp(argv[1], "basic") == 0) {
        printf("ok\n");
    }
    return g_fail;
}
