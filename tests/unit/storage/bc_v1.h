/*
 * bc_v1.h - writes bitcask data directories in format version 1, as the
 * binaries before issue 11's explicit record header did (29-byte record
 * header, no meta flags or type; docs/storage-format.md "Format version
 * 1"), by hand rather than with the engine's encoder, so that the tests
 * read what an older binary left on disk.  Header-only (static).
 */
#ifndef RINGKV_TESTS_STORAGE_BC_V1_H
#define RINGKV_TESTS_STORAGE_BC_V1_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/endian.h"

#define V1_TOMB 0x01

/* One format-1 data file being written. */
struct v1_file
{
    unsigned char buf[8192];
    size_t len;
    uint64_t order;
};

/* A file of kind 1 (data) or 2 (hint) with `version` in its header. */
static inline void v1_begin(struct v1_file *f,
                            uint64_t order,
                            uint16_t version,
                            uint16_t kind)
{
    memcpy(f->buf, "RKBC", 4);
    rk_put_le16(f->buf + 4, version);
    rk_put_le16(f->buf + 6, kind);
    rk_put_le64(f->buf + 8, order);
    f->len = 16;
    f->order = order;
}

/* Appends a record with a vlen-byte value; returns its offset. */
static inline size_t v1_record_n(struct v1_file *f,
                                 const char *key,
                                 const void *val,
                                 size_t vl,
                                 uint64_t ts,
                                 uint64_t exp,
                                 uint8_t flags)
{
    size_t off = f->len, kl = strlen(key);
    if (off + 29 + kl + vl > sizeof(f->buf)) {
        abort();
    }
    unsigned char *p = f->buf + off;
    rk_put_le64(p + 4, ts);
    rk_put_le64(p + 12, exp);
    rk_put_le32(p + 20, (uint32_t)kl);
    rk_put_le32(p + 24, (uint32_t)vl);
    p[28] = flags;
    memcpy(p + 29, key, kl);
    if (vl) {
        memcpy(p + 29 + kl, val, vl);
    }
    rk_put_le32(p, (uint32_t)XXH3_64bits(p + 4, 25 + kl + vl));
    f->len += 29 + kl + vl;
    return off;
}

/* Appends a record with a string value (NULL: none); returns its offset. */
static inline size_t v1_record(struct v1_file *f,
                               const char *key,
                               const char *val,
                               uint64_t ts,
                               uint64_t exp,
                               uint8_t flags)
{
    return v1_record_n(f, key, val, val ? strlen(val) : 0, ts, exp, flags);
}

/* Writes f as dir/<order>.<ext> (dir created if needed). */
static inline void v1_write(const struct v1_file *f,
                            const char *dir,
                            const char *ext)
{
    mkdir(dir, 0700);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%016llx.%s", dir,
             (unsigned long long)f->order, ext);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, f->buf, f->len) != (ssize_t)f->len) {
        abort();
    }
    close(fd);
}

/* The format version in the header of dir/<order>.<ext>, or -1. */
static inline int v1_file_version(const char *dir,
                                  uint64_t order,
                                  const char *ext)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%016llx.%s", dir,
             (unsigned long long)order, ext);
    unsigned char h[16];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, h, sizeof(h));
    close(fd);
    return n == (ssize_t)sizeof(h) ? rk_get_le16(h + 4) : -1;
}

#endif /* RINGKV_TESTS_STORAGE_BC_V1_H */
