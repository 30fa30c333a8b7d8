/*
 * fuzz_seed_bitcask.c - writes the seed corpus of fuzz_bitcask_open
 * (tests/fuzz/corpus/fuzz_bitcask_open/) from small real data directories
 * made by the bitcask engine, in the fuzzer's input layout (see
 * tests/fuzz/fuzz_bitcask_open.c).
 *
 * Usage: fuzz_seed_bitcask <corpus-dir>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"

static unsigned char *slurp(const char *dir, const char *name, size_t *len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    unsigned char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void emit(const char *out,
                 int n,
                 uint8_t flags,
                 const char *dir,
                 int flip_at)
{
    size_t l1, l2, l3;
    unsigned char *d1 = slurp(dir, "0000000000100000.data", &l1);
    unsigned char *h1 = slurp(dir, "0000000000100000.hint", &l2);
    unsigned char *d2 = slurp(dir, "0000000000200000.data", &l3);
    char p[512];
    snprintf(p, sizeof(p), "%s/seed-%02d", out, n);
    FILE *f = fopen(p, "wb");
    unsigned char hdr[9];
    hdr[0] = flags;
    rk_put_le32(hdr + 1, (uint32_t)l1);
    rk_put_le32(hdr + 5, (uint32_t)l2);
    fwrite(hdr, 1, 9, f);
    if (d1) {
        fwrite(d1, 1, l1, f);
    }
    if (h1) {
        fwrite(h1, 1, l2, f);
    }
    if (d2) {
        if (flip_at >= 0 && (size_t)flip_at < l3) {
            d2[flip_at] ^= 0x04;
        }
        fwrite(d2, 1, l3, f);
    }
    fclose(f);
    free(d1);
    free(h1);
    free(d2);
}

static void make_dir(const char *dir, int records, int with_clear)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        exit(1);
    }
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = dir;
    o.sync_mode = ENGINE_SYNC_NONE;
    o.merge_disabled = true;
    o.max_file_size = 4096;
    struct engine *e = NULL;
    char err[256];
    if (engine_open("bitcask", &o, &e, err, sizeof(err)) != RK_OK) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    for (int i = 0; i < records; i++) {
        char k[16], v[32];
        int kl = snprintf(k, sizeof(k), "k%d", i % 7);
        int vl = snprintf(v, sizeof(v), "value-%d", i);
        struct engine_meta m = {.timestamp = (uint64_t)i,
                                .expire_at_ms = (i % 3) ? 0 : 1000u + i};
        engine_put(e, k, (size_t)kl, v, (size_t)(i % 5 ? vl : 0), &m, NULL);
        if (i % 4 == 3) {
            engine_delete(e, k, (size_t)kl, (uint64_t)i, NULL);
        }
        if (with_clear && i == records / 2) {
            engine_clear(e, NULL);
        }
    }
    engine_close(e);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seed_bitcask <corpus-dir>\n");
        return 2;
    }
    rk_log_set_level(RK_LOG_ERROR);
    mkdir(argv[1], 0755);
    char dir[256];
    snprintf(dir, sizeof(dir), "/tmp/rk-fuzz-seed-%d", (int)getpid());
    /* One file only (the last one). */
    make_dir(dir, 12, 0);
    emit(argv[1], 1, 0, dir, -1);
    emit(argv[1], 2, 1, dir, 60);
    /* Two files, with and without the hint of the first. */
    make_dir(dir, 150, 0);
    emit(argv[1], 3, 4 | 2, dir, -1);
    emit(argv[1], 4, 4, dir, -1);
    emit(argv[1], 5, 4 | 2 | 1, dir, 100);
    /* A clear marker. */
    make_dir(dir, 20, 1);
    emit(argv[1], 6, 0, dir, -1);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
