/*
 * ringkv_async_example.c - the asynchronous libringkv API on a libevent
 * loop: 100 SETs in flight at once, each followed by its GET from the
 * completion callback, then the loop ends when the last one is back.
 *
 *   ringkv_async_example [host:port ...]     (default 127.0.0.1:7379)
 * Build: cc ringkv_async_example.c \
 *            $(pkg-config --cflags --libs ringkv_event)
 */
#include <event2/event.h>
#include <ringkv_async.h>
#include <stdio.h>
#include <string.h>

#define N 100

static int g_left = N; /* GETs not yet back */
static int g_errors;

static void on_get(struct ringkv_async *ra,
                   struct ringkv_result *res,
                   void *data)
{
    (void)ra;
    const char *key = data;
    if (res->err != RINGKV_OK) {
        fprintf(stderr, "get %s: %s\n", key, res->errmsg);
        g_errors++;
    } else if (strcmp(key, "example:0") == 0) {
        /* res->value is valid until we return; keep it by taking it:
         * char *mine = res->value.data; res->value.data = NULL; */
        printf("%s = %.*s\n", key, (int)res->value.len, res->value.data);
    }
    g_left--;
}

static void on_set(struct ringkv_async *ra,
                   struct ringkv_result *res,
                   void *data)
{
    const char *key = data;
    if (res->err != RINGKV_OK) {
        fprintf(stderr, "set %s: %s\n", key, res->errmsg);
        g_errors++;
        g_left--;
        return;
    }
    /* a new call from inside a callback */
    if (ringkv_async_get(ra, key, strlen(key), NULL, on_get, data) !=
        RINGKV_OK) {
        g_errors++;
        g_left--;
    }
}

int main(int argc, char **argv)
{
    const char *def[] = {"127.0.0.1:7379"};
    struct ringkv_options o;
    ringkv_options_init(&o);
    o.seeds = argc > 1 ? (const char *const *)argv + 1 : def;
    o.n_seeds = argc > 1 ? (size_t)argc - 1 : 1;

    struct event_base *base = event_base_new();
    struct ringkv_async *ra;
    char err[256];
    int rc = ringkv_async_create(base, &o, &ra, err);
    if (rc != RINGKV_OK) {
        fprintf(stderr, "ringkv_async_example: %s (%s)\n", err,
                ringkv_errname(rc));
        return 1;
    }
    static char keys[N][16];
    for (int i = 0; i < N; i++) {
        int len = snprintf(keys[i], sizeof(keys[i]), "example:%d", i);
        /* the key and value bytes are copied: the call borrows them */
        if (ringkv_async_set(ra, keys[i], (size_t)len, keys[i], (size_t)len,
                             60000 /* ms TTL */, NULL, on_set,
                             keys[i]) != RINGKV_OK) {
            g_errors++;
            g_left--;
        }
    }
    while (g_left > 0) {
        event_base_loop(base, EVLOOP_ONCE);
    }
    printf("%d calls, %d errors, %zu node(s)\n", 2 * N, g_errors,
           ringkv_async_node_count(ra));
    ringkv_async_destroy(ra);
    event_base_free(base);
    return g_errors == 0 ? 0 : 1;
}
