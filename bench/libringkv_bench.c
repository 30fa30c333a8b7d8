/*
 * libringkv_bench.c - libringkv vs hiredis on the same single-node GET/SET
 * loop (issue 13 item 4: target >= 0.9x).
 *
 *   libringkv_bench HOST:PORT [OPS] [ROUNDS]   (defaults 20000, 3)
 *
 * One client, one connection, no pipelining: SET key:i (100-byte value)
 * then GET key:i, i over 1000 keys.  The two clients alternate round by
 * round against the same server; each round reports ops/s, and the median
 * round of each is compared.  Prints one Markdown table.
 */
#include <hiredis/hiredis.h>
#include <ringkv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char g_val[100];

/* ops/s of `ops` SET+GET pairs (2 * ops commands) */
static double run_hiredis(redisContext *c, int ops)
{
    char key[32];
    double t0 = now_s();
    for (int i = 0; i < ops; i++) {
        int kl = snprintf(key, sizeof(key), "bench:%d", i % 1000);
        redisReply *r =
            redisCommand(c, "SET %b %b", key, (size_t)kl, g_val, sizeof(g_val));
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "hiredis SET failed\n");
            exit(1);
        }
        freeReplyObject(r);
        r = redisCommand(c, "GET %b", key, (size_t)kl);
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            fprintf(stderr, "hiredis GET failed\n");
            exit(1);
        }
        freeReplyObject(r);
    }
    return 2.0 * ops / (now_s() - t0);
}

static double run_ringkv(struct ringkv *rk, int ops)
{
    char key[32];
    double t0 = now_s();
    for (int i = 0; i < ops; i++) {
        int kl = snprintf(key, sizeof(key), "bench:%d", i % 1000);
        if (ringkv_set(rk, key, (size_t)kl, g_val, sizeof(g_val), 0, NULL) !=
            RINGKV_OK) {
            fprintf(stderr, "ringkv_set: %s\n", ringkv_last_error(rk));
            exit(1);
        }
        char *v = NULL;
        size_t len = 0;
        if (ringkv_get(rk, key, (size_t)kl, &v, &len, NULL) != RINGKV_OK) {
            fprintf(stderr, "ringkv_get: %s\n", ringkv_last_error(rk));
            exit(1);
        }
        ringkv_free(v);
    }
    return 2.0 * ops / (now_s() - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST:PORT [OPS] [ROUNDS]\n", argv[0]);
        return 2;
    }
    int ops = argc > 2 ? atoi(argv[2]) : 20000;
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    if (ops < 1 || rounds < 1 || rounds > 64) {
        return 2;
    }
    memset(g_val, 'v', sizeof(g_val));
    char host[256];
    const char *colon = strrchr(argv[1], ':');
    if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof(host)) {
        return 2;
    }
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = '\0';

    redisContext *hc = redisConnect(host, atoi(colon + 1));
    if (hc == NULL || hc->err) {
        fprintf(stderr, "hiredis: cannot connect to %s\n", argv[1]);
        return 1;
    }
    struct ringkv_options o;
    ringkv_options_init(&o);
    const char *seeds[1] = {argv[1]};
    o.seeds = seeds;
    o.n_seeds = 1;
    struct ringkv *rk;
    char err[256];
    if (ringkv_create(&o, &rk, err) != RINGKV_OK) {
        fprintf(stderr, "libringkv: %s\n", err);
        return 1;
    }
    /* warm both up */
    run_hiredis(hc, ops / 10 + 1);
    run_ringkv(rk, ops / 10 + 1);
    double h[64], r[64];
    for (int i = 0; i < rounds; i++) {
        h[i] = run_hiredis(hc, ops);
        r[i] = run_ringkv(rk, ops);
    }
    qsort(h, (size_t)rounds, sizeof(double), cmp_double);
    qsort(r, (size_t)rounds, sizeof(double), cmp_double);
    double hm = h[rounds / 2], rm = r[rounds / 2];
    printf(
        "| client (1 conn, SET+GET, 100 B, %d ops x %d rounds) | ops/s "
        "(median) |\n|---|---:|\n",
        2 * ops, rounds);
    printf("| hiredis %d.%d.%d | %.0f |\n", HIREDIS_MAJOR, HIREDIS_MINOR,
           HIREDIS_PATCH, hm);
    printf("| libringkv %d.%d.%d | %.0f |\n", RINGKV_VERSION_MAJOR,
           RINGKV_VERSION_MINOR, RINGKV_VERSION_PATCH, rm);
    printf("\nlibringkv / hiredis: %.2fx (target >= 0.90x)\n", rm / hm);
    ringkv_destroy(rk);
    redisFree(hc);
    return 0;
}
