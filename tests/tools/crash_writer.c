/*
 * crash_writer.c - child process of the storage crash test (TESTING.md
 * B2.1; tests/unit/storage/test_crash.c).
 *
 * Usage: crash_writer <dir> <seed> <iteration> <force_merge 0|1> [mode]
 *   mode: always (default), every, none, or unsafe.
 *
 * Opens a bitcask engine in <dir> with small files, prints "ready\n",
 * then writes forever: unique keys "i<iteration>-<n>" and overwrites of
 * 50 shared "hot<j>" keys (versions grow across iterations).  A write is
 * reported on stdout as "<key> <version>\n" only once the sync policy
 * covers it (engine_acked_seq): under always after the sync thread's
 * fdatasync; under every and none after an engine_handoff, which the
 * writer calls after a random 1..32 writes, as an event loop does once
 * per pass (issue 12).  `unsafe` (sync=every, reported at once, no
 * hand-off) is the negative control: what the default lost before.  The
 * parent SIGKILLs it at a random moment.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"

#define PENDING_MAX 4096

struct pending
{
    uint64_t seq;
    char line[64];
};

static struct pending g_pend[PENDING_MAX];
static size_t g_head, g_tail; /* ring: [head, tail) */

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w <= 0) {
            exit(3);
        }
        p += w;
        n -= (size_t)w;
    }
}

static bool g_unsafe;

static void drain(struct engine *e)
{
    uint64_t durable = g_unsafe ? UINT64_MAX : engine_acked_seq(e);
    char out[8192];
    size_t len = 0;
    while (g_head != g_tail && g_pend[g_head % PENDING_MAX].seq <= durable) {
        const char *l = g_pend[g_head % PENDING_MAX].line;
        size_t ll = strlen(l);
        if (len + ll > sizeof(out)) {
            write_all(out, len);
            len = 0;
        }
        memcpy(out + len, l, ll);
        len += ll;
        g_head++;
    }
    if (len) {
        write_all(out, len);
    }
}

static void durable_cb(void *data, uint64_t seq)
{
    (void)data;
    (void)seq; /* the main loop polls engine_durable_seq() */
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr,
                "usage: crash_writer dir seed iteration merge [mode]\n");
        return 2;
    }
    const char *mode = argc == 6 ? argv[5] : "always";
    rk_log_set_level(RK_LOG_ERROR);
    uint64_t seed = strtoull(argv[2], NULL, 10);
    uint64_t iter = strtoull(argv[3], NULL, 10);
    int force_merge = atoi(argv[4]);
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = argv[1];
    g_unsafe = strcmp(mode, "unsafe") == 0;
    o.sync_mode = strcmp(mode, "always") == 0 ? ENGINE_SYNC_ALWAYS
                  : strcmp(mode, "none") == 0 ? ENGINE_SYNC_NONE
                                              : ENGINE_SYNC_EVERY;
    o.max_file_size = 32 * 1024;
    o.merge_dead_ratio = 0.3;
    o.merge_disabled = !force_merge;
    o.durable_cb = durable_cb;
    struct engine *e = NULL;
    char err[512];
    int rc = engine_open("bitcask", &o, &e, err, sizeof(err));
    if (rc != RK_OK) {
        fprintf(stderr, "crash_writer: open: %s: %s\n", rk_errname(rc), err);
        return 1;
    }
    write_all("ready\n", 6);
    uint64_t s = seed | 1;
    uint64_t pass = 1; /* writes until the next hand-off */
    for (uint64_t n = 0;; n++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        char key[32], val[128];
        uint64_t version = iter * 10000000u + n;
        int kl = (s & 1) ? snprintf(key, sizeof(key), "hot%02u",
                                    (unsigned)((s >> 8) % 50))
                         : snprintf(key, sizeof(key), "i%" PRIu64 "-%" PRIu64,
                                    iter, n);
        int vl = snprintf(val, sizeof(val),
                          "%" PRIu64 "|%s|payload-payload-payload-payload",
                          version, key);
        struct engine_meta m = {.timestamp = version};
        uint64_t seq = 0;
        while (g_tail - g_head >= PENDING_MAX) {
            usleep(100);
            drain(e);
        }
        rc = engine_put(e, key, (size_t)kl, val, (size_t)vl, &m, &seq);
        if (rc != RK_OK) {
            fprintf(stderr, "crash_writer: put: %s\n", rk_errname(rc));
            return 1;
        }
        struct pending *p = &g_pend[g_tail % PENDING_MAX];
        p->seq = seq;
        snprintf(p->line, sizeof(p->line), "%s %" PRIu64 "\n", key, version);
        g_tail++;
        if (o.sync_mode != ENGINE_SYNC_ALWAYS && !g_unsafe && --pass == 0) {
            rc = engine_handoff(e);
            if (rc != RK_OK) {
                fprintf(stderr, "crash_writer: handoff: %s\n", rk_errname(rc));
                return 1;
            }
            pass = 1 + (s >> 20) % 32;
        }
        drain(e);
        if (n % 64 == 0) {
            engine_tick(e);
        }
        if (force_merge && n % 400 == 399) {
            engine_merge(e, false);
        }
    }
}
