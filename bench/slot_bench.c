/*
 * slot_bench.c - what the storage slot index (engine.h, "The slot index")
 * costs and buys, for docs/benchmarks.md ("Slot index"): for the memory and
 * bitcask engines, with and without opts.slot_fn (slot_of_key, 16384
 * slots): keydir bytes per key, put throughput (N new 16-byte keys in
 * random order, 100-byte values, sync=none), reopen time (bitcask), and
 * the time to list one partition of Q=64 (slots 0..255, 1/64 of the keys)
 * with engine_fold_slots against a full engine_scan that filters by slot.
 * Each figure is the best of -R runs (the machine is shared).
 *
 *   slot_bench [-n keys] [-R reps] [-d dir]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/slot.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"

#define KLEN      16
#define VLEN      100
#define PART_Q    64
#define PART_LAST (SLOT_COUNT / PART_Q - 1) /* partition 0: slots 0..255 */

static uint64_t g_n = 1000000;
static int g_reps = 2;
static const char *g_dir = "/tmp/rk-slot-bench";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "slot_bench: cannot remove %s\n", dir);
    }
}

static struct engine *open_engine(const char *kind, bool indexed)
{
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = g_dir;
    o.sync_mode = ENGINE_SYNC_NONE;
    o.merge_disabled = true;
    if (indexed) {
        o.slot_fn = slot_of_key;
        o.n_slots = SLOT_COUNT;
    }
    struct engine *e = NULL;
    char err[512];
    if (engine_open(kind, &o, &e, err, sizeof(err)) != RK_OK) {
        fprintf(stderr, "engine_open %s: %s\n", kind, err);
        exit(1);
    }
    return e;
}

struct run
{
    double put_s;         /* N puts */
    double bytes_per_key; /* keydir_bytes / N */
    double reopen_s;      /* bitcask: close + open */
    double fold_s;        /* partition 0 by engine_fold_slots */
    double scan_s;        /* partition 0 by engine_scan + slot filter */
    uint64_t fold_keys, scan_keys;
};

struct part_count
{
    uint64_t n;
};

static bool fold_cb(void *data,
                    const void *key,
                    size_t klen,
                    const struct engine_meta *meta)
{
    (void)key;
    (void)klen;
    (void)meta;
    ((struct part_count *)data)->n++;
    return true;
}

static bool scan_cb(void *data,
                    const void *key,
                    size_t klen,
                    const struct engine_meta *meta)
{
    (void)meta;
    if (slot_of_key(key, klen) <= PART_LAST) {
        ((struct part_count *)data)->n++;
    }
    return true;
}

static void time_partition(struct engine *e, struct run *r)
{
    struct part_count pc = {0};
    double t0 = now_s();
    uint64_t cur = ENGINE_FOLD_START;
    do {
        if (engine_fold_slots(e, 0, PART_LAST, cur, 1000, fold_cb, &pc, &cur) !=
            RK_OK) {
            fprintf(stderr, "fold failed\n");
            exit(1);
        }
    } while (cur != ENGINE_FOLD_DONE);
    r->fold_s = now_s() - t0;
    r->fold_keys = pc.n;
    pc.n = 0;
    t0 = now_s();
    cur = 0;
    do {
        engine_scan(e, cur, 1000, scan_cb, &pc, &cur);
    } while (cur != 0);
    r->scan_s = now_s() - t0;
    r->scan_keys = pc.n;
}

static void one_run(const char *kind, bool indexed, struct run *r)
{
    rm_dir(g_dir);
    struct engine *e = open_engine(kind, indexed);
    static char val[VLEN];
    memset(val, 'v', sizeof(val));
    struct engine_meta m = {.timestamp = 1};
    char k[32];
    double t0 = now_s();
    /* a scattered order: x steps by the prime 7919 modulo n */
    for (uint64_t i = 0, x = 0; i < g_n; i++, x = (x + 7919) % g_n) {
        snprintf(k, sizeof(k), "key%013" PRIu64, x);
        if (engine_put(e, k, KLEN, val, VLEN, &m, NULL) != RK_OK) {
            fprintf(stderr, "put failed\n");
            exit(1);
        }
    }
    r->put_s = now_s() - t0;
    struct engine_stats st;
    engine_stats(e, &st);
    r->bytes_per_key = (double)st.keydir_bytes / (double)g_n;
    r->reopen_s = 0;
    if (strcmp(kind, "bitcask") == 0) {
        engine_close(e);
        t0 = now_s();
        e = open_engine(kind, indexed);
        r->reopen_s = now_s() - t0;
    }
    if (indexed) {
        time_partition(e, r);
    }
    engine_close(e);
    rm_dir(g_dir);
}

static void best(struct run *b, const struct run *r, bool first)
{
    if (first) {
        *b = *r;
        return;
    }
#define MIN_OF(f) b->f = r->f < b->f ? r->f : b->f
    MIN_OF(put_s);
    MIN_OF(reopen_s);
    MIN_OF(fold_s);
    MIN_OF(scan_s);
#undef MIN_OF
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "n:R:d:")) != -1) {
        switch (c) {
            case 'n':
                g_n = strtoull(optarg, NULL, 10);
                break;
            case 'R':
                g_reps = atoi(optarg);
                break;
            case 'd':
                g_dir = optarg;
                break;
            default:
                fprintf(stderr,
                        "usage: slot_bench [-n keys] [-R reps] [-d dir]\n");
                return 2;
        }
    }
    if (g_n % 7919 == 0 || g_reps < 1) {
        fprintf(stderr, "slot_bench: -n must not be a multiple of 7919\n");
        return 2;
    }
    rk_log_set_level(RK_LOG_WARN);
    printf("keys=%" PRIu64
           " (16-byte keys, 100-byte values, sync=none), "
           "slots=%d, partition 0 of Q=%d = slots 0..%d, best of %d\n",
           g_n, SLOT_COUNT, PART_Q, PART_LAST, g_reps);
    printf("%-8s %-6s %10s %12s %10s %14s %14s %8s\n", "engine", "index",
           "B/key", "puts/s", "reopen_s", "fold_part_ms", "scan_part_ms",
           "keys");
    const char *kinds[] = {"memory", "bitcask"};
    for (int k = 0; k < 2; k++) {
        for (int ix = 0; ix < 2; ix++) {
            struct run b, r;
            memset(&b, 0, sizeof(b));
            for (int rep = 0; rep < g_reps; rep++) {
                memset(&r, 0, sizeof(r));
                one_run(kinds[k], ix == 1, &r);
                best(&b, &r, rep == 0);
            }
            printf("%-8s %-6s %10.1f %12.0f %10.3f ", kinds[k],
                   ix ? "on" : "off", b.bytes_per_key, (double)g_n / b.put_s,
                   b.reopen_s);
            if (ix) {
                printf("%14.1f %14.1f %8" PRIu64 "%s\n", b.fold_s * 1e3,
                       b.scan_s * 1e3, b.fold_keys,
                       b.fold_keys == b.scan_keys ? "" : " MISMATCH");
            } else {
                printf("%14s %14s %8s\n", "-", "-", "-");
            }
        }
    }
    return 0;
}
