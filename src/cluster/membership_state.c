/*
 * membership_state.c - the versioned cluster state of membership.h: its
 * bytes (format in membership.c's header), its rings, and the ownership
 * transition of issue 14 item 1 (membership_internal.h, struct mb_state):
 * a membership change builds a next ring instead of replacing the current
 * one, the pending owners of each partition receive it (handoff.c), and
 * the state finalizes when all of them have.  After Riak's riak_core
 * "pending" ownership (riak_core_ring: the next list and handoff status per
 * partition), with the whole transition carried in the gossiped state so
 * every node agrees on each step.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/membership_internal.h"
#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/rd.h"

void mb_set_err(char *buf, size_t cap, const char *fmt, ...)
{
    if (buf == NULL || cap == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

bool mb_name_is_valid(const char *s, size_t len, size_t max)
{
    if (len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

/* ---- states ------------------------------------------------------------- */

void mb_state_free(struct mb_state *s)
{
    if (s == NULL) {
        return;
    }
    ring_destroy(s->ring);
    ring_destroy(s->next);
    rk_free(s->has);
    rk_free(s->nodes);
    rk_free(s);
}

/* Index of `id` in s->nodes, or -1. */
long mb_state_find(const struct mb_state *s, const char *id)
{
    size_t lo = 0, hi = s->n_nodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->nodes[mid].id, id);
        if (c == 0) {
            return (long)mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

int mb_state_copy(const struct mb_state *s, size_t extra, struct mb_state **out)
{
    struct mb_state *c = rk_calloc(1, sizeof(*c));
    if (c == NULL) {
        return RK_ENOMEM;
    }
    *c = *s;
    c->ring = c->next = NULL;
    c->has = NULL;
    c->nodes = rk_malloc((s->n_nodes + extra) * sizeof(*c->nodes));
    int rc = c->nodes ? ring_clone(s->ring, &c->ring) : RK_ENOMEM;
    if (rc == RK_OK && s->next) {
        rc = ring_clone(s->next, &c->next);
        c->has = rc == RK_OK ? rk_malloc(s->ring_size * sizeof(*c->has)) : NULL;
        rc = rc == RK_OK && c->has == NULL ? RK_ENOMEM : rc;
        if (rc == RK_OK) {
            memcpy(c->has, s->has, s->ring_size * sizeof(*c->has));
        }
    }
    if (rc != RK_OK) {
        mb_state_free(c);
        return rc;
    }
    memcpy(c->nodes, s->nodes, s->n_nodes * sizeof(*c->nodes));
    *out = c;
    return RK_OK;
}

/* Builds s->ring from the valid nodes, with `prev` as the previous ring. */
int mb_state_build_ring(struct mb_state *s, const struct ring *prev)
{
    const char **ids = rk_malloc(s->n_nodes * sizeof(*ids));
    if (ids == NULL) {
        return RK_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (mb_in_cur(s->nodes[i].status)) {
            ids[n++] = s->nodes[i].id;
        }
    }
    struct ring *r = NULL;
    int rc = n == 0 ? RK_EINVAL
                    : ring_create(s->ring_size, s->n_val, ids, n, prev, &r);
    rk_free(ids);
    if (rc != RK_OK) {
        return rc;
    }
    ring_destroy(s->ring);
    s->ring = r;
    return RK_OK;
}

/* Appends the transition section (format 3): u8 0, or u8 1, u32 epoch,
 * u32 length + next ring bytes, ring_size x u64 has-masks. */
static int encode_transition(const struct mb_state *s, struct rk_buf *out)
{
    unsigned char b[9] = {s->next != NULL};
    if (s->next == NULL) {
        return rk_buf_append(out, b, 1);
    }
    struct rk_buf nx = {0};
    int rc = ring_encode(s->next, &nx);
    if (rc != RK_OK) {
        return rc;
    }
    rk_put_le32(b + 1, s->epoch);
    rk_put_le32(b + 5, (uint32_t)nx.len);
    rc = rk_buf_append(out, b, 9);
    if (rc == RK_OK) {
        rc = rk_buf_append(out, nx.base, nx.len);
    }
    for (uint32_t p = 0; rc == RK_OK && p < s->ring_size; p++) {
        unsigned char m[8];
        rk_put_le64(m, s->has[p]);
        rc = rk_buf_append(out, m, 8);
    }
    rk_buf_fini(&nx);
    return rc;
}

int mb_state_encode(const struct mb_state *s, struct rk_buf *out)
{
    struct rk_buf ring = {0};
    int rc = ring_encode(s->ring, &ring);
    if (rc != RK_OK) {
        return rc;
    }
    size_t need = 4 + 1 + 8 + 1 + CL_ID_MAX + 1 + MEMBERSHIP_MAX_CLUSTER_NAME +
                  12 + s->n_nodes * (1 + CL_ID_MAX + 2 + CL_HOST_MAX + 7) + 4 +
                  ring.len;
    rc = rk_buf_reserve(out, need);
    if (rc != RK_OK) {
        rk_buf_fini(&ring);
        return rc;
    }
    unsigned char *p = (unsigned char *)out->base + out->len;
    memcpy(p, MB_MAGIC, 4);
    p += 4;
    *p++ = MEMBERSHIP_FORMAT_VERSION;
    rk_put_le64(p, s->version);
    p += 8;
    size_t l = strlen(s->changer);
    *p++ = (unsigned char)l;
    memcpy(p, s->changer, l);
    p += l;
    l = strlen(s->name);
    *p++ = (unsigned char)l;
    memcpy(p, s->name, l);
    p += l;
    rk_put_le32(p, s->ring_size);
    rk_put_le32(p + 4, s->n_val);
    rk_put_le32(p + 8, (uint32_t)s->n_nodes);
    p += 12;
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct mb_node *nd = &s->nodes[i];
        l = strlen(nd->id);
        *p++ = (unsigned char)l;
        memcpy(p, nd->id, l);
        p += l;
        l = strlen(nd->host);
        rk_put_le16(p, (uint16_t)l);
        memcpy(p + 2, nd->host, l);
        p += 2 + l;
        rk_put_le16(p, nd->resp_port);
        rk_put_le16(p + 2, nd->http_port);
        rk_put_le16(p + 4, nd->peer_port);
        p[6] = nd->status;
        p += 7;
    }
    rk_put_le32(p, (uint32_t)ring.len);
    memcpy(p + 4, ring.base, ring.len);
    p += 4 + ring.len;
    out->len = (size_t)((char *)p - out->base);
    rk_buf_fini(&ring);
    rc = encode_transition(s, out);
    /* format 4: the members' TLS ports, in member order */
    for (size_t i = 0; rc == RK_OK && i < s->n_nodes; i++) {
        unsigned char t[2];
        rk_put_le16(t, s->nodes[i].tls_port);
        rc = rk_buf_append(out, t, 2);
    }
    return rc;
}

/* Reads `len` bytes into a NUL-terminated dst (cap > len checked before). */
static bool rd_str(struct rk_rd *r, size_t len, char *dst)
{
    const unsigned char *p = rk_rd_take(r, len);
    if (p == NULL) {
        return false;
    }
    memcpy(dst, p, len);
    dst[len] = '\0';
    return true;
}

#define DEC_FAIL(...)                            \
    do {                                         \
        mb_set_err(errbuf, errlen, __VA_ARGS__); \
        rc = RK_EPROTO;                          \
        goto fail;                               \
    } while (0)

/* Reads the header fields up to and including the changer. */
static int decode_head(struct rk_rd *r,
                       uint64_t *version,
                       char *changer,
                       uint8_t *format,
                       char *errbuf,
                       size_t errlen)
{
    const unsigned char *magic = rk_rd_take(r, 4);
    if (magic == NULL || memcmp(magic, MB_MAGIC, 4) != 0) {
        mb_set_err(errbuf, errlen, "cluster state: bad magic or too short");
        return RK_EPROTO;
    }
    uint8_t fmt = rk_rd_u8(r);
    if (r->bad) {
        mb_set_err(errbuf, errlen, "cluster state: truncated header");
        return RK_EPROTO;
    }
    if (fmt != MEMBERSHIP_FORMAT_VERSION &&
        (format == NULL ||
         (fmt != MEMBERSHIP_FORMAT_V1 && fmt != MEMBERSHIP_FORMAT_V2 &&
          fmt != MEMBERSHIP_FORMAT_V3))) {
        mb_set_err(errbuf, errlen,
                   "cluster state format %u is not supported (this node "
                   "reads %u)",
                   fmt, MEMBERSHIP_FORMAT_VERSION);
        return RK_EVERSION;
    }
    if (format != NULL) {
        *format = fmt;
    }
    *version = rk_rd_u64(r);
    uint8_t cl = rk_rd_u8(r);
    if (r->bad || *version == 0 || cl == 0 || cl > CL_ID_MAX ||
        !rd_str(r, cl, changer) || !ring_member_id_is_valid(changer, cl)) {
        mb_set_err(errbuf, errlen, "cluster state: bad version or changer");
        return RK_EPROTO;
    }
    return RK_OK;
}

/*
 * Decodes state bytes of format MEMBERSHIP_FORMAT_VERSION, and of formats 1
 * to 3 when `upgrade_v1` (a saved state read at start).  Format 3 is
 * format 4 without the TLS ports (read as 0: each node publishes its own
 * as an address change).  Format 2 is format 3 without the transition
 * section (it never has one).  Format 1
 * differs from 2 only in key placement (XXH3 of the key instead of its
 * hash slot, ring.h), so it is taken as it is when that cannot have put
 * any key elsewhere: every valid member is a replica of every key (M <= N,
 * which includes every single node).  Their next encoding is format 4.
 */
int mb_state_decode(const void *buf,
                    size_t len,
                    bool upgrade_v1,
                    struct mb_state **out,
                    char *errbuf,
                    size_t errlen)
{
    struct rk_rd r = {.p = buf, .left = len};
    struct mb_state *s = rk_calloc(1, sizeof(*s));
    if (s == NULL) {
        return RK_ENOMEM;
    }
    uint8_t fmt = MEMBERSHIP_FORMAT_VERSION;
    int rc = decode_head(&r, &s->version, s->changer, upgrade_v1 ? &fmt : NULL,
                         errbuf, errlen);
    if (rc != RK_OK) {
        goto fail;
    }
    uint8_t nl = rk_rd_u8(&r);
    if (r.bad || nl > MEMBERSHIP_MAX_CLUSTER_NAME || !rd_str(&r, nl, s->name) ||
        !mb_name_is_valid(s->name, nl, MEMBERSHIP_MAX_CLUSTER_NAME)) {
        DEC_FAIL("cluster state: bad cluster name");
    }
    s->ring_size = rk_rd_u32(&r);
    s->n_val = rk_rd_u32(&r);
    uint32_t n = rk_rd_u32(&r);
    if (r.bad || n == 0 || n > MEMBERSHIP_MAX_MEMBERS) {
        DEC_FAIL("cluster state: member count %" PRIu32 " out of range", n);
    }
    /* Each member takes at least 11 bytes: bound n before allocating. */
    if ((size_t)n * 11 > r.left) {
        DEC_FAIL("cluster state: %" PRIu32 " members cannot fit", n);
    }
    s->nodes = rk_calloc(n, sizeof(*s->nodes));
    if (s->nodes == NULL) {
        rc = RK_ENOMEM;
        goto fail;
    }
    size_t n_valid = 0, n_next = 0, n_moving = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct mb_node *nd = &s->nodes[i];
        uint8_t il = rk_rd_u8(&r);
        if (r.bad || il == 0 || il > CL_ID_MAX || !rd_str(&r, il, nd->id) ||
            !ring_member_id_is_valid(nd->id, il)) {
            DEC_FAIL("cluster state: member %" PRIu32 ": bad node id", i);
        }
        if (i > 0 && strcmp(s->nodes[i - 1].id, nd->id) >= 0) {
            DEC_FAIL("cluster state: member ids not strictly ascending");
        }
        uint16_t hl = rk_rd_u16(&r);
        if (r.bad || hl == 0 || hl > CL_HOST_MAX || !rd_str(&r, hl, nd->host) ||
            !mb_name_is_valid(nd->host, hl, CL_HOST_MAX)) {
            DEC_FAIL("cluster state: member %s: bad host", nd->id);
        }
        nd->resp_port = rk_rd_u16(&r);
        nd->http_port = rk_rd_u16(&r);
        nd->peer_port = rk_rd_u16(&r);
        nd->status = rk_rd_u8(&r);
        if (r.bad) {
            DEC_FAIL("cluster state: truncated member %s", nd->id);
        }
        if (nd->status < MEMBERSHIP_VALID || nd->status > MEMBERSHIP_REMOVED) {
            DEC_FAIL("cluster state: member %s: bad status %u", nd->id,
                     nd->status);
        }
        n_valid += mb_in_cur(nd->status);
        n_next += mb_in_next(nd->status);
        n_moving += nd->status == MEMBERSHIP_STATUS_JOINING ||
                    nd->status == MEMBERSHIP_STATUS_LEAVING;
    }
    s->n_nodes = n;
    if (n_valid == 0) {
        DEC_FAIL("cluster state: no valid member");
    }
    if (mb_state_find(s, s->changer) < 0) {
        DEC_FAIL("cluster state: changer %s is not a member", s->changer);
    }
    uint32_t rl = rk_rd_u32(&r);
    const unsigned char *rb = rk_rd_take(&r, rl);
    if (rb == NULL) {
        DEC_FAIL("cluster state: truncated ring");
    }
    uint8_t tr = fmt >= MEMBERSHIP_FORMAT_V3 ? rk_rd_u8(&r) : 0;
    const unsigned char *nb = NULL;
    uint32_t nl2 = 0;
    if (tr == 1) {
        s->epoch = rk_rd_u32(&r);
        nl2 = rk_rd_u32(&r);
        nb = rk_rd_take(&r, nl2);
        const unsigned char *hb = rk_rd_take(
            &r, (size_t)s->ring_size * 8 <= r.left ? (size_t)s->ring_size * 8
                                                   : r.left + 1);
        if (nb == NULL || hb == NULL) {
            DEC_FAIL("cluster state: truncated transition");
        }
        s->has = rk_calloc(s->ring_size ? s->ring_size : 1, sizeof(*s->has));
        if (s->has == NULL) {
            rc = RK_ENOMEM;
            goto fail;
        }
        for (uint32_t p = 0; p < s->ring_size; p++) {
            s->has[p] = rk_get_le64(hb + 8 * (size_t)p);
        }
    } else if (tr != 0 || r.bad) {
        DEC_FAIL("cluster state: bad transition flag");
    }
    if (fmt == MEMBERSHIP_FORMAT_VERSION) {
        /* format 4: each member's TLS port, in member order */
        for (size_t i = 0; i < s->n_nodes; i++) {
            s->nodes[i].tls_port = rk_rd_u16(&r);
        }
        if (r.bad) {
            DEC_FAIL("cluster state: truncated TLS ports");
        }
    }
    if (r.left != 0) {
        DEC_FAIL("cluster state: %zu trailing bytes", r.left);
    }
    if ((tr == 0) != (n_moving == 0)) {
        DEC_FAIL(
            "cluster state: joining or leaving members %s a "
            "transition",
            tr ? "missing in" : "without");
    }
    if (nb != NULL) {
        rc = ring_decode(nb, nl2, &s->next);
        if (rc == RK_OK && (ring_size(s->next) != s->ring_size ||
                            ring_target_n(s->next) != s->n_val ||
                            ring_member_count(s->next) != n_next)) {
            rc = RK_EPROTO;
        }
        for (size_t i = 0; rc == RK_OK && i < s->n_nodes; i++) {
            const struct mb_node *nd = &s->nodes[i];
            if (mb_in_next(nd->status) &&
                ring_find_member(s->next, nd->id, strlen(nd->id)) < 0) {
                rc = RK_EPROTO;
            }
        }
        if (rc != RK_OK) {
            if (rc != RK_ENOMEM) {
                mb_set_err(errbuf, errlen, "cluster state: bad next ring (%s)",
                           rk_errname(rc));
                rc = RK_EPROTO;
            }
            goto fail;
        }
    }
    rc = ring_decode(rb, rl, &s->ring);
    if (rc != RK_OK) {
        if (rc != RK_ENOMEM) {
            mb_set_err(errbuf, errlen, "cluster state: bad ring (%s)",
                       rk_errname(rc));
            rc = rc == RK_EVERSION ? RK_EVERSION : RK_EPROTO;
        }
        goto fail;
    }
    if (fmt == MEMBERSHIP_FORMAT_V1 &&
        ring_member_count(s->ring) > ring_target_n(s->ring)) {
        mb_set_err(errbuf, errlen,
                   "cluster state format 1 was saved by a ringkv that placed "
                   "keys by XXH3; this build (format %u) places them by Redis "
                   "hash slot, so with %zu members and n_val %" PRIu32
                   " this node's keys would sit on the wrong replicas.  Keep "
                   "running the old build, or copy the data out, then start "
                   "every node with an empty --data-dir and form the cluster "
                   "again (docs/cluster.md, \"Upgrading to hash slots\")",
                   MEMBERSHIP_FORMAT_VERSION, ring_member_count(s->ring),
                   ring_target_n(s->ring));
        rc = RK_EVERSION;
        goto fail;
    }
    if (ring_size(s->ring) != s->ring_size ||
        ring_target_n(s->ring) != s->n_val ||
        ring_member_count(s->ring) != n_valid) {
        DEC_FAIL("cluster state: ring does not match settings or members");
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct mb_node *nd = &s->nodes[i];
        if (mb_in_cur(nd->status) &&
            ring_find_member(s->ring, nd->id, strlen(nd->id)) < 0) {
            DEC_FAIL("cluster state: valid member %s not in the ring", nd->id);
        }
    }
    *out = s;
    return RK_OK;
fail:
    mb_state_free(s);
    return rc;
}

int membership_state_check(const void *buf,
                           size_t len,
                           struct rk_buf *reencoded,
                           char *errbuf,
                           size_t errbuf_len)
{
    struct mb_state *s = NULL;
    int rc = mb_state_decode(buf, len, false, &s, errbuf, errbuf_len);
    if (rc != RK_OK) {
        return rc;
    }
    if (reencoded != NULL) {
        rc = mb_state_encode(s, reencoded);
    }
    mb_state_free(s);
    return rc;
}

int membership_state_compare(const void *a,
                             size_t a_len,
                             const void *b,
                             size_t b_len)
{
    struct rk_rd ra = {.p = a, .left = a_len}, rb = {.p = b, .left = b_len};
    uint64_t va = 0, vb = 0;
    char ca[CL_ID_MAX + 1], cb[CL_ID_MAX + 1];
    bool oka = decode_head(&ra, &va, ca, NULL, NULL, 0) == RK_OK;
    bool okb = decode_head(&rb, &vb, cb, NULL, NULL, 0) == RK_OK;
    if (!RK_ALWAYS(oka && okb)) {
        return (int)oka - (int)okb;
    }
    if (va != vb) {
        return va < vb ? -1 : 1;
    }
    int c = strcmp(ca, cb);
    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    size_t l = a_len < b_len ? a_len : b_len;
    c = memcmp(a, b, l);
    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    return a_len == b_len ? 0 : (a_len < b_len ? -1 : 1);
}

/* ---- the ownership transition (issue 14 item 1) -------------------------- */

static bool in_ids(const char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], id) == 0) {
            return true;
        }
    }
    return false;
}

int mb_state_pending_pos(const struct mb_state *s, uint32_t p, const char *id)
{
    if (s->next == NULL || p >= s->ring_size) {
        return -1;
    }
    const char *cur[RING_MAX_N], *nx[RING_MAX_N];
    size_t nc = ring_preflist_ids(s->ring, p, cur),
           nn = ring_preflist_ids(s->next, p, nx);
    for (size_t j = 0; j < nn; j++) {
        if (strcmp(nx[j], id) == 0) {
            return in_ids(cur, nc, id) ? -1 : (int)j;
        }
    }
    return -1;
}

bool mb_state_part_done(const struct mb_state *s, uint32_t p)
{
    if (s->next == NULL) {
        return true;
    }
    const char *cur[RING_MAX_N], *nx[RING_MAX_N];
    size_t nc = ring_preflist_ids(s->ring, p, cur),
           nn = ring_preflist_ids(s->next, p, nx);
    for (size_t j = 0; j < nn; j++) {
        if (!in_ids(cur, nc, nx[j]) && !(s->has[p] >> j & 1)) {
            return false;
        }
    }
    return true;
}

bool mb_state_try_finalize(struct mb_state *s)
{
    if (s->next == NULL) {
        return false;
    }
    for (uint32_t p = 0; p < s->ring_size; p++) {
        if (!mb_state_part_done(s, p)) {
            return false;
        }
    }
    ring_destroy(s->ring);
    s->ring = s->next;
    s->next = NULL;
    rk_free(s->has);
    s->has = NULL;
    for (size_t i = 0; i < s->n_nodes; i++) {
        struct mb_node *nd = &s->nodes[i];
        if (nd->status == MEMBERSHIP_STATUS_JOINING) {
            nd->status = MEMBERSHIP_VALID;
        } else if (nd->status == MEMBERSHIP_STATUS_LEAVING) {
            nd->status = MEMBERSHIP_REMOVED;
        }
    }
    return true;
}

int mb_state_replan(struct mb_state *s)
{
    const char **ids = rk_malloc(s->n_nodes * sizeof(*ids));
    uint64_t *has = rk_calloc(s->ring_size, sizeof(*has));
    if (ids == NULL || has == NULL) {
        rk_free(ids);
        rk_free(has);
        return RK_ENOMEM;
    }
    size_t n = 0;
    bool moving = false; /* a member is joining or leaving */
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (mb_in_next(s->nodes[i].status)) {
            ids[n++] = s->nodes[i].id;
        }
        moving |= s->nodes[i].status == MEMBERSHIP_STATUS_JOINING ||
                  s->nodes[i].status == MEMBERSHIP_STATUS_LEAVING;
    }
    if (n > 0 && !moving) {
        /* The change undid the transition (a joining node left or was
         * removed): the current ring, which every write of the transition
         * reached, stays; planning a next ring from the previous next one
         * would move partitions among valid members, a transition without
         * joining or leaving members, which no decoder accepts. */
        rk_free(ids);
        rk_free(has);
        ring_destroy(s->next);
        rk_free(s->has);
        s->next = NULL;
        s->has = NULL;
        s->epoch++;
        return RK_OK;
    }
    struct ring *nr = NULL;
    int rc = n == 0 ? RK_EINVAL
                    : ring_create(s->ring_size, s->n_val, ids, n,
                                  s->next ? s->next : s->ring, &nr);
    rk_free(ids);
    if (rc != RK_OK) {
        rk_free(has);
        return rc;
    }
    for (uint32_t p = 0; s->next && p < s->ring_size; p++) {
        const char *old[RING_MAX_N], *nx[RING_MAX_N];
        size_t no = ring_preflist_ids(s->next, p, old),
               nn = ring_preflist_ids(nr, p, nx);
        for (size_t j = 0; j < nn; j++) {
            for (size_t i = 0; i < no; i++) {
                if (strcmp(old[i], nx[j]) == 0 && (s->has[p] >> i & 1)) {
                    has[p] |= UINT64_C(1) << j;
                }
            }
        }
    }
    ring_destroy(s->next);
    rk_free(s->has);
    s->next = nr;
    s->has = has;
    s->epoch++;
    mb_state_try_finalize(s);
    return RK_OK;
}
