/*
 * fuzz_bitcask_open.c - libFuzzer target: builds a bitcask data directory
 * from the input, opens it (with or without repair), reads every key and
 * closes (issue 2; TESTING.md B2).
 *
 * Input layout (little-endian):
 *   off size field
 *     0    1 flags: bit 0 repair, bit 1 write the hint file, bit 2 write
 *              the first data file at all
 *     1    4 n1 = bytes of data file 0000000000100000.data
 *     5    4 n2 = bytes of hint file 0000000000100000.hint
 *     9   n1 data file 1, then n2 hint bytes, then the rest is the last
 *              data file 0000000000200000.data
 * (n1/n2 are clamped to what is left.)
 *
 * Asserts: nothing crashes (sanitizers), and every value engine_get
 * returns comes from a record of the input whose checksum, recomputed here
 * independently, is right, with the same key and value bytes.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"
#include "storage/internal.h"

static char g_dir[256];

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        abort();
    }
    if (n > 0 && write(fd, p, n) != (ssize_t)n) {
        abort();
    }
    close(fd);
}

static void clean_dir(void)
{
    static const char *const names[] = {
        "0000000000100000.data",         "0000000000100000.hint",
        "0000000000200000.data",         "0000000000200000.hint",
        "0000000000300000.data",         "0000000000100000.data.corrupt",
        "0000000000200000.data.corrupt", "LOCK",
    };
    char path[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", g_dir, names[i]);
        unlink(path);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rk_log_set_level(RK_LOG_ERROR + 1);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof(g_dir), "%s/rk-fuzz-bitcask-%d", base,
             (int)getpid());
    mkdir(g_dir, 0700);
    return 0;
}

struct check_ctx
{
    struct engine *e;
    const uint8_t *files[2]; /* input bytes of file 1 and the last file */
    size_t lens[2];
};

/* The record at (order, off) in the input must be intact and hold key
 * and value. */
static void verify_record(struct check_ctx *c,
                          uint64_t order,
                          uint64_t off,
                          const void *key,
                          size_t klen,
                          const struct rk_buf *val)
{
    int which = order == 0x100000 ? 0 : order == 0x200000 ? 1 : -1;
    if (which < 0) {
        abort(); /* the engine created no other data file with records */
    }
    const uint8_t *p = c->files[which];
    size_t n = c->lens[which];
    if (n < BC_FILE_HDR) {
        abort();
    }
    /* the header size of the file's format (1 or 2) */
    size_t hl = bc_rec_hdr_len(rk_get_le16(p + 4));
    size_t len = hl + klen + val->len;
    if (off + len > n || off + len < off) {
        abort();
    }
    const uint8_t *r = p + off;
    uint32_t want = rk_get_le32(r);
    uint32_t got = (uint32_t)XXH3_64bits(r + 4, len - 4);
    if (want != got || rk_get_le32(r + 20) != klen ||
        rk_get_le32(r + 24) != val->len || memcmp(r + hl, key, klen) != 0 ||
        (val->len && memcmp(r + hl + klen, val->base, val->len) != 0)) {
        abort(); /* a value was served from a bad record */
    }
}

static bool key_cb(void *data,
                   const void *key,
                   size_t klen,
                   const struct engine_meta *meta)
{
    (void)meta;
    struct check_ctx *c = data;
    struct rk_buf v;
    rk_buf_init(&v);
    int rc = engine_get(c->e, key, klen, &v, NULL);
    if (rc == RK_OK) {
        struct bitcask *b = (struct bitcask *)c->e;
        uint32_t h = keydir_find(&b->kd, key, klen);
        if (h == 0) {
            abort();
        }
        uint64_t loc = keydir_loc(&b->kd, h);
        struct bc_file *f = b->files[loc >> 32];
        verify_record(c, f->order, (uint32_t)loc, key, klen, &v);
    } else if (rc != RK_ECORRUPT) {
        abort();
    }
    rk_buf_fini(&v);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9) {
        return 0;
    }
    uint8_t flags = data[0];
    size_t n1 = rk_get_le32(data + 1), n2 = rk_get_le32(data + 5);
    const uint8_t *p = data + 9;
    size_t left = size - 9;
    n1 = n1 < left ? n1 : left;
    left -= n1;
    n2 = n2 < left ? n2 : left;
    left -= n2;
    clean_dir();
    struct check_ctx c = {0};
    if (flags & 4) {
        write_file("0000000000100000.data", p, n1);
        c.files[0] = p;
        c.lens[0] = n1;
        if (flags & 2) {
            write_file("0000000000100000.hint", p + n1, n2);
        }
    }
    write_file("0000000000200000.data", p + n1 + n2, left);
    c.files[1] = p + n1 + n2;
    c.lens[1] = left;

    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = g_dir;
    o.sync_mode = ENGINE_SYNC_NONE;
    o.merge_disabled = true;
    o.repair = (flags & 1) != 0;
    o.max_file_size = 1 << 20;
    struct engine *e = NULL;
    char err[512];
    if (engine_open("bitcask", &o, &e, err, sizeof(err)) == RK_OK) {
        c.e = e;
        engine_foreach(e, key_cb, &c);
        struct engine_stats st;
        engine_stats(e, &st);
        engine_close(e);
    }
    clean_dir();
    return 0;
}
