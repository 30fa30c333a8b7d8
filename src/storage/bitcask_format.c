/*
 * bitcask_format.c - encode/parse of bitcask data-file records and file
 * headers (layout tables in internal.h and docs/storage-format.md).
 * Checksums are the low 32 bits of XXH3_64 over every byte after the
 * checksum field.  Thread: any (pure functions).
 */
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/endian.h"
#include "common/error.h"
#include "storage/internal.h"

uint32_t bc_checksum(const void *p, size_t n)
{
    return (uint32_t)XXH3_64bits(p, n);
}

void bc_rec_encode_fields(unsigned char *hdr, const struct bc_rec *r)
{
    rk_put_le64(hdr + 4, r->timestamp);
    rk_put_le64(hdr + 12, r->expire_at_ms);
    rk_put_le32(hdr + 20, r->klen);
    rk_put_le32(hdr + 24, r->vlen);
    hdr[28] = r->flags;
    hdr[29] = r->meta_flags;
    hdr[30] = r->type;
}

void bc_rec_seal(unsigned char *hdr,
                 const void *key,
                 size_t klen,
                 const void *val,
                 size_t vlen)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, hdr + 4, BC_REC_HDR - 4);
    if (klen) {
        XXH3_64bits_update(&st, key, klen);
    }
    if (vlen) {
        XXH3_64bits_update(&st, val, vlen);
    }
    rk_put_le32(hdr, (uint32_t)XXH3_64bits_digest(&st));
}

void bc_rec_encode_hdr(unsigned char *hdr,
                       const struct bc_rec *r,
                       const void *key,
                       const void *val)
{
    bc_rec_encode_fields(hdr, r);
    bc_rec_seal(hdr, key, r->klen, val, r->vlen);
}

int bc_rec_parse(uint16_t version,
                 const unsigned char *p,
                 size_t avail,
                 size_t max_key,
                 uint64_t max_val,
                 struct bc_rec *r,
                 size_t *len)
{
    size_t hl = bc_rec_hdr_len(version);
    if (avail < hl) {
        return RK_EAGAIN;
    }
    uint32_t klen = rk_get_le32(p + 20);
    uint32_t vlen = rk_get_le32(p + 24);
    uint8_t flags = p[28];
    if ((flags & ~BC_FLAGS_KNOWN) != 0 || klen > max_key || vlen > max_val) {
        return RK_ECORRUPT;
    }
    if ((flags & BC_FLAG_CLEAR) ? (klen != 0 || vlen != 0) : klen == 0) {
        return RK_ECORRUPT;
    }
    if ((flags & BC_FLAG_TOMB) && vlen != 0) {
        return RK_ECORRUPT;
    }
    uint64_t total = (uint64_t)hl + klen + vlen;
    if (total > avail) {
        return RK_EAGAIN;
    }
    if (bc_checksum(p + 4, (size_t)total - 4) != rk_get_le32(p)) {
        return RK_ECORRUPT;
    }
    r->timestamp = rk_get_le64(p + 4);
    r->expire_at_ms = rk_get_le64(p + 12);
    r->klen = klen;
    r->vlen = vlen;
    r->flags = flags;
    if (version == BC_VERSION_V1) {
        r->meta_flags = ENGINE_FLAG_V1;
        r->type = 0;
    } else {
        r->meta_flags = p[29];
        r->type = p[30];
    }
    r->key = p + hl;
    r->val = p + hl + klen;
    *len = (size_t)total;
    return RK_OK;
}

void bc_file_hdr_encode(unsigned char *p, uint16_t kind, uint64_t order)
{
    memcpy(p, BC_MAGIC, 4);
    rk_put_le16(p + 4, BC_VERSION);
    rk_put_le16(p + 6, kind);
    rk_put_le64(p + 8, order);
}
