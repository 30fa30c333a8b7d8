/* main.c - ringkvd entry point: configuration, then server_run(). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "server/config.h"
#include "server/server.h"

/*
 * RINGKV_COUNT_ALLOCS=1 in the environment counts ringkv's own allocations
 * (rk_malloc/rk_calloc/rk_realloc; not libevent's or jansson's) for INFO
 * memory's allocations_counted, which bench/alloc_bench.py divides by the
 * requests served.  Off by default: it adds a call per allocation.
 */
static _Atomic uint64_t g_allocs;

static void *count_malloc(void *data, size_t size)
{
    (void)data;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return malloc(size);
}

static void *count_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return calloc(n, size);
}

static void *count_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return realloc(ptr, size);
}

static void count_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static const struct rk_allocator g_counting = {NULL, count_malloc, count_calloc,
                                               count_realloc, count_free};

static uint64_t allocs_counted(void)
{
    return atomic_load_explicit(&g_allocs, memory_order_relaxed);
}

int main(int argc, char **argv)
{
    const char *count = getenv("RINGKV_COUNT_ALLOCS");
    if (count && strcmp(count, "1") == 0) {
        rk_set_allocator(&g_counting);
        server_alloc_counter = allocs_counted;
    }
    struct rk_config cfg;
    config_init(&cfg);
    char err[1024];
    switch (config_load(&cfg, argc, argv, err, sizeof(err))) {
        case CONFIG_EXIT_OK:
            return 0;
        case CONFIG_ERROR:
            fprintf(stderr, "%s\n", err);
            return 2;
        case CONFIG_OK:
            break;
    }
    rk_log_set_level(cfg.loglevel);
    rk_log_set_format(cfg.log_format);
    return server_run(&cfg);
}
