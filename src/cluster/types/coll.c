/*
 * types/coll.c - member keys and headers of hashes and sets (coll.h).
 */
#include "cluster/types/coll.h"

#include <string.h>

#include "cluster/objtype.h"
#include "common/endian.h"
#include "common/error.h"

size_t coll_member_key_write(unsigned char *dst,
                             const void *key,
                             size_t klen,
                             const void *member,
                             size_t mlen)
{
    memcpy(dst, COLL_MEMBER_PREFIX, COLL_MEMBER_PREFIX_LEN);
    dst[6] = (unsigned char)(klen >> 24);
    dst[7] = (unsigned char)(klen >> 16);
    dst[8] = (unsigned char)(klen >> 8);
    dst[9] = (unsigned char)klen;
    if (klen) {
        memcpy(dst + COLL_MEMBER_HDR, key, klen);
    }
    if (mlen) {
        memcpy(dst + COLL_MEMBER_HDR + klen, member, mlen);
    }
    return COLL_MEMBER_HDR + klen + mlen;
}

int coll_member_key(const void *key,
                    size_t klen,
                    const void *member,
                    size_t mlen,
                    struct rk_buf *out)
{
    rk_buf_clear(out);
    if (!coll_member_fits(klen, mlen)) {
        return RK_ETOOBIG;
    }
    if (rk_buf_reserve(out, COLL_MEMBER_HDR + klen + mlen) != RK_OK) {
        return RK_ENOMEM;
    }
    out->len = coll_member_key_write((unsigned char *)out->base, key, klen,
                                     member, mlen);
    return RK_OK;
}

int coll_member_prefix(const void *key, size_t klen, struct rk_buf *out)
{
    return coll_member_key(key, klen, "", 0, out);
}

bool coll_member_parse(const void *mk,
                       size_t mklen,
                       const char **key,
                       size_t *klen,
                       const char **member,
                       size_t *mlen)
{
    const unsigned char *p = mk;
    if (mklen < COLL_MEMBER_HDR ||
        memcmp(p, COLL_MEMBER_PREFIX, COLL_MEMBER_PREFIX_LEN) != 0) {
        return false;
    }
    size_t kl = ((size_t)p[6] << 24) | ((size_t)p[7] << 16) |
                ((size_t)p[8] << 8) | (size_t)p[9];
    if (kl > mklen - COLL_MEMBER_HDR) {
        return false;
    }
    *key = (const char *)p + COLL_MEMBER_HDR;
    *klen = kl;
    *member = (const char *)p + COLL_MEMBER_HDR + kl;
    *mlen = mklen - COLL_MEMBER_HDR - kl;
    return true;
}

void coll_header_encode(uint8_t type, uint64_t n, unsigned char *out)
{
    out[0] = COLL_HEADER_VERSION;
    out[1] = type;
    rk_put_le64(out + 2, n);
}

int coll_header_decode(const void *p, size_t len, uint8_t *type, uint64_t *n)
{
    const unsigned char *b = p;
    if (b == NULL || len != COLL_HEADER_LEN || b[0] != COLL_HEADER_VERSION ||
        (b[1] != OBJTYPE_HASH && b[1] != OBJTYPE_SET)) {
        return RK_ECORRUPT;
    }
    *type = b[1];
    *n = rk_get_le64(b + 2);
    return RK_OK;
}
