/*
 * rd.h - a bounds-checked little-endian reader over untrusted bytes (saved
 * cluster states, handoff checkpoints).  A read past the end sets `bad`
 * and returns zeros; callers check `bad` once after a run of reads.
 *
 * Pure functions over caller memory.  Thread: any.
 */
#ifndef RINGKV_COMMON_RD_H
#define RINGKV_COMMON_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/endian.h"

struct rk_rd
{
    const unsigned char *p;
    size_t left;
    bool bad;
};

/* The next n bytes (a view), or NULL (and bad) when fewer are left. */
static inline const unsigned char *rk_rd_take(struct rk_rd *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static inline uint8_t rk_rd_u8(struct rk_rd *r)
{
    const unsigned char *p = rk_rd_take(r, 1);
    return p ? p[0] : 0;
}

static inline uint16_t rk_rd_u16(struct rk_rd *r)
{
    const unsigned char *p = rk_rd_take(r, 2);
    return p ? rk_get_le16(p) : 0;
}

static inline uint32_t rk_rd_u32(struct rk_rd *r)
{
    const unsigned char *p = rk_rd_take(r, 4);
    return p ? rk_get_le32(p) : 0;
}

static inline uint64_t rk_rd_u64(struct rk_rd *r)
{
    const unsigned char *p = rk_rd_take(r, 8);
    return p ? rk_get_le64(p) : 0;
}

#endif /* RINGKV_COMMON_RD_H */
