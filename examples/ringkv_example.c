/*
 * ringkv_example.c - libringkv in a few lines: connect from seeds, set with
 * an expiry, get, incr, and resolve siblings with getall / put.
 *
 *   ringkv_example [host:port ...]     (default 127.0.0.1:7379)
 * Build: cc ringkv_example.c $(pkg-config --cflags --libs ringkv)
 */
#include <ringkv.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *def[] = {"127.0.0.1:7379"};
    struct ringkv_options o;
    ringkv_options_init(&o);
    o.seeds = argc > 1 ? (const char *const *)argv + 1 : def;
    o.n_seeds = argc > 1 ? (size_t)argc - 1 : 1;

    struct ringkv *rk;
    char err[256];
    int rc = ringkv_create(&o, &rk, err);
    if (rc != RINGKV_OK) {
        fprintf(stderr, "ringkv_example: connect: %s (%s)\n", err,
                ringkv_errname(rc));
        return 1;
    }
    printf("connected: %zu node(s)\n", ringkv_node_count(rk));

    rc = ringkv_set(rk, "greeting", 8, "hello", 5, 60000, NULL);
    char *val = NULL;
    size_t len = 0;
    if (rc == RINGKV_OK) {
        rc = ringkv_get(rk, "greeting", 8, &val, &len, NULL);
    }
    if (rc == RINGKV_OK) {
        printf("greeting = %.*s\n", (int)len, val);
        ringkv_free(val);
    }

    int64_t n = 0;
    struct ringkv_call once = {.flags = RINGKV_CALL_NO_RETRY};
    if (rc == RINGKV_OK) {
        rc = ringkv_incr(rk, "visits", 6, 1, &n, &once);
    }
    if (rc == RINGKV_OK) {
        printf("visits = %lld\n", (long long)n);
    }

    /* siblings: read them all with their context, write one value that
     * supersedes them */
    struct ringkv_siblings *s = NULL;
    if (rc == RINGKV_OK) {
        rc = ringkv_getall(rk, "cart", 4, &s, NULL);
    }
    if (rc == RINGKV_OK) {
        printf("cart: %zu sibling(s)\n", s->n);
        rc = ringkv_put(rk, "cart", 4, s->context, s->context_len, "apples", 6,
                        NULL);
        ringkv_siblings_free(s);
    }

    if (rc != RINGKV_OK) {
        fprintf(stderr, "ringkv_example: %s (%s)\n", ringkv_last_error(rk),
                ringkv_errname(rc));
    }
    ringkv_destroy(rk);
    return rc == RINGKV_OK ? 0 : 1;
}
