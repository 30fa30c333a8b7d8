/*
 * cmd/keys.c - argument parsing and the keyspace helpers: the local keyspace
 * over the storage engine (keyspace.h) and what handlers call to read, store
 * and delete keys, with Redis's semantics, reply types and error texts
 * (https://redis.io/docs/latest/commands/).  Split from commands.c
 * (issue 11 item 3); see cmd/internal.h.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster/dvv.h"
#include "cluster/objtype.h"
#include "cluster/replica.h"
#include "cluster/types/coll.h"
#include "cluster/types/counter.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/glob.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/cmd/internal.h"
#include "server/internal.h"
#include "server/keyspace.h"

/* ---- argument helpers ------------------------------------------------ */

bool cmd__arg_is(const struct resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->ptr, s, n) == 0;
}

/*
 * Parses a strict signed 64-bit decimal (Redis string2ll rules: optional
 * '-', no '+', no leading zeros, no spaces, at most 20 chars).
 */
bool cmd__parse_i64(const char *p, size_t len, int64_t *out)
{
    return counter_parse_i64(p, len, out);
}

bool cmd__parse_ldouble(const char *p, size_t len, long double *out)
{
    char tmp[CMD_LDOUBLE_CHARS];
    if (len == 0 || len >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    char *end;
    long double v = strtold(tmp, &end);
    if (*end != '\0' || isspace((unsigned char)tmp[0]) || isnan(v)) {
        return false;
    }
    *out = v;
    return true;
}

size_t cmd__format_ldouble(long double v, char out[CMD_LDOUBLE_CHARS])
{
    if (isnan(v) || isinf(v)) {
        return 0;
    }
    int n = snprintf(out, CMD_LDOUBLE_CHARS, "%.17Lf", v);
    if (n <= 0 || n >= CMD_LDOUBLE_CHARS) {
        return 0;
    }
    /* trailing zeros trimmed, as Redis's humanfriendly long double */
    if (strchr(out, '.')) {
        while (n > 0 && out[n - 1] == '0') {
            n--;
        }
        if (n > 0 && out[n - 1] == '.') {
            n--;
        }
    }
    out[n] = '\0';
    return (size_t)n;
}

bool cmd__cursor_or_reply(struct client *c,
                          const struct resp_arg *a,
                          uint64_t *out)
{
    char tmp[32];
    if (a->len == 0 || a->len >= sizeof(tmp) || a->ptr[0] == '-' ||
        a->ptr[0] == '+') {
        reply_error(c, "ERR invalid cursor");
        return false;
    }
    memcpy(tmp, a->ptr, a->len);
    tmp[a->len] = '\0';
    char *end;
    errno = 0;
    *out = strtoull(tmp, &end, 10);
    if (*end != '\0' || errno) {
        reply_error(c, "ERR invalid cursor");
        return false;
    }
    return true;
}

int cmd__scan_opt(struct client *c,
                  size_t argc,
                  const struct resp_arg *argv,
                  size_t *i,
                  const struct resp_arg **pat,
                  int64_t *count)
{
    bool match = cmd__arg_is(&argv[*i], "MATCH");
    if (!match && !cmd__arg_is(&argv[*i], "COUNT")) {
        return 0;
    }
    if (*i + 1 >= argc) {
        reply_error(c, ERR_SYNTAX);
        return -1;
    }
    const struct resp_arg *v = &argv[++*i];
    if (match) {
        *pat = v->len == 1 && v->ptr[0] == '*' ? NULL : v;
        return 1;
    }
    if (!cmd__arg_i64_or_reply(c, v, count)) {
        return -1;
    }
    if (*count < 1) {
        reply_error(c, ERR_SYNTAX);
        return -1;
    }
    return 1;
}

bool cmd__arg_i64(const struct resp_arg *a, int64_t *out)
{
    return cmd__parse_i64(a->ptr, a->len, out);
}

bool cmd__arg_i64_or_reply(struct client *c,
                           const struct resp_arg *a,
                           int64_t *out)
{
    if (!cmd__arg_i64(a, out)) {
        reply_error(c, ERR_NOT_INT);
        return false;
    }
    return true;
}

/* ---- keyspace helpers ------------------------------------------------ */

static uint64_t now_ts(struct server *s)
{
    return hlc_now(&s->clock, server_now_ms());
}

bool cmd__is_expired(const struct engine_meta *m, uint64_t now_ms)
{
    return m->expire_at_ms != 0 && m->expire_at_ms <= now_ms;
}

void cmd__note_write(struct client *c, uint64_t seq)
{
    /* every policy: the reply waits until engine_acked_seq covers the
     * write (in the OS, or on disk under sync=always) */
    if (seq > c->wait_seq) {
        c->wait_seq = seq;
    }
}

void cmd__reply_storage_error(struct client *c, int rc, const char *what)
{
    struct server *s = c->srv;
    switch (rc) {
        case RK_ETOOBIG:
            reply_error(c,
                        "ERR string exceeds maximum allowed size "
                        "(proto-max-bulk-len)");
            return;
        case RK_EREADONLY:
            s->stats.write_errors++;
            reply_error(c,
                        "ERR storage is read-only after an I/O error; "
                        "writes are refused until restart (see the server "
                        "log)");
            return;
        case RK_ENOSPC:
            s->stats.write_errors++;
            reply_error(c, "ERR write failed: no space left on device");
            return;
        case RK_EINVAL:
            reply_error(c,
                        "ERR invalid key: ringkv does not support empty keys");
            return;
        case RK_EWRONGTYPE:
            reply_error(c, ERR_WRONGTYPE);
            return;
        case RK_ECORRUPT:
            reply_error(c,
                        "ERR storage: checksum mismatch, value not served "
                        "(see the server log)");
            break;
        default:
            s->stats.write_errors++;
            reply_errorf(c, "ERR storage %s failed: %s", what, rk_strerror(rc));
            break;
    }
    rk_log(RK_LOG_ERROR, "storage_error", "op=%s error=%s", what,
           rk_errname(rc));
}

/* ---- the local keyspace (keyspace.h) ------------------------------------ */

/* The record's content-type prefix (a plain record flagged
 * REPLICA_FLAG_CTYPE: u8 n, n bytes, then the user's value): its length
 * in bytes, 0 when none, moved into m when m is not NULL.  cur: the
 * record's meta in explicit form (replica_meta_current). */
static size_t ctype_prefix(const struct engine_meta *cur,
                           const struct rk_buf *val,
                           struct ks_meta *m)
{
    if (!(cur->flags & REPLICA_FLAG_CTYPE) || val->len == 0) {
        return 0;
    }
    size_t skip = 1 + (unsigned char)val->base[0];
    skip = skip < val->len ? skip : val->len;
    if (m) {
        m->ctlen = (uint8_t)(skip > 1 ? skip - 1 : 0);
        memcpy(m->ct, val->base + 1, m->ctlen);
    }
    return skip;
}

/* Whether meta (explicit form) is a hash's or set's header record. */
static bool is_coll_header(const struct engine_meta *m)
{
    return !(m->flags & REPLICA_FLAG_OBJECT) && cmd__is_coll_type(m->type);
}

/* Deletes key's members when it is a hash or set (before the key itself
 * is deleted or overwritten). */
static int drop_if_coll(struct server *s, const void *key, size_t klen)
{
    struct engine_meta m;
    if (!s->coll_present) {
        return RK_OK; /* no collection since start: no lookup per SET */
    }
    if (engine_get(s->engine, key, klen, NULL, &m) != RK_OK) {
        return RK_OK;
    }
    replica_meta_current(&m, &m);
    return is_coll_header(&m) ? coll__drop_members(s, key, klen) : RK_OK;
}

/* Removes an expired key (its tombstone needs no acknowledgement), with
 * its members when it is a hash or set. */
void cmd__expire_key(struct server *s, const void *key, size_t klen)
{
    uint64_t seq;
    (void)drop_if_coll(s, key, klen);
    if (engine_delete(s->engine, key, klen, now_ts(s), &seq) == RK_OK) {
        s->stats.expired_keys++;
    }
}

static int local_get(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     struct rk_buf *val,
                     struct ks_meta *m)
{
    struct server *s = ks->data;
    struct engine_meta raw;
    struct rk_buf tmp;
    rk_buf_init(&tmp);
    /* the value is read also for a metadata-only lookup of a typed
     * record, whose length includes the content-type prefix */
    struct rk_buf *vb = val ? val : &tmp;
    rk_buf_clear(vb);
    int rc = engine_get(s->engine, key, klen, val, &raw);
    if (rc == RK_OK) {
        replica_meta_current(&raw, &raw);
    }
    if (rc == RK_OK && val == NULL && (raw.flags & REPLICA_FLAG_CTYPE) &&
        raw.value_len > 0) {
        rc = engine_get(s->engine, key, klen, &tmp, NULL);
    }
    if (rc == RK_OK && cluster_meta_is_tombstone(&raw)) {
        rc = RK_ENOTFOUND;
    }
    if (rc == RK_OK && cmd__is_expired(&raw, server_now_ms())) {
        cmd__expire_key(s, key, klen); /* lazily */
        rc = RK_ENOTFOUND;
    }
    uint8_t type = OBJTYPE_STRING;
    uint64_t n_members = 0;
    if (rc == RK_OK && is_coll_header(&raw)) {
        /* a hash or set: its header only says what it is */
        if (val) {
            rk_buf_clear(val);
            rk_buf_fini(&tmp);
            return RK_EWRONGTYPE;
        }
        rc = engine_get(s->engine, key, klen, &tmp, NULL);
        if (rc == RK_OK) {
            rc = coll_header_decode(tmp.base, tmp.len, &type, &n_members);
        }
        rk_buf_clear(&tmp);
    }
    if (rc == RK_OK && m) {
        *m = (struct ks_meta){
            .type = type,
            .n_members = n_members,
            .ts = raw.timestamp,
            .expire_at_ms = raw.expire_at_ms,
            .value_len = raw.value_len,
        };
    }
    if (rc == RK_OK) {
        size_t skip = ctype_prefix(&raw, vb, m);
        if (m) {
            m->value_len -= skip < m->value_len ? skip : m->value_len;
        }
        if (val && skip) {
            /* RESP commands see the user's bytes */
            memmove(val->base, val->base + skip, val->len - skip);
            val->len -= skip;
        }
    }
    if (rc != RK_OK && val) {
        rk_buf_clear(val);
    }
    rk_buf_fini(&tmp);
    return rc;
}

static int local_put(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen,
                     uint64_t expire_at_ms,
                     const char *ct,
                     uint8_t ctlen,
                     uint64_t *seq)
{
    struct server *s = ks->data;
    int drc = drop_if_coll(s, key, klen); /* SET replaces any type */
    if (drc != RK_OK) {
        return drc;
    }
    struct engine_meta m = {
        .timestamp = now_ts(s),
        .expire_at_ms = expire_at_ms,
        .value_len = vlen,
        .type = OBJTYPE_STRING,
    };
    char *pre = NULL;
    if (ctlen) {
        size_t n = 1 + (size_t)ctlen;
        pre = rk_malloc(n + vlen);
        if (pre == NULL) {
            return RK_ENOMEM;
        }
        pre[0] = (char)ctlen;
        memcpy(pre + 1, ct, ctlen);
        if (vlen) {
            memcpy(pre + n, val, vlen);
        }
        val = pre;
        vlen += n;
        m.flags |= REPLICA_FLAG_CTYPE;
    }
    int rc = engine_put(s->engine, key, klen, val, vlen, &m, seq);
    rk_free(pre);
    return rc;
}

static int local_del(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     uint64_t *seq)
{
    struct server *s = ks->data;
    struct engine_meta m;
    int rc = engine_get(s->engine, key, klen, NULL, &m);
    if (rc == RK_ENOTFOUND || (rc == RK_OK && cluster_meta_is_tombstone(&m))) {
        return RK_ENOTFOUND;
    }
    if (rc != RK_OK && rc != RK_ECORRUPT) {
        return rc;
    }
    bool expired = rc == RK_OK && cmd__is_expired(&m, server_now_ms());
    if (rc == RK_OK) {
        replica_meta_current(&m, &m);
        if (is_coll_header(&m)) {
            rc = coll__drop_members(s, key, klen);
            if (rc != RK_OK) {
                return rc;
            }
        }
    }
    rc = engine_delete(s->engine, key, klen, now_ts(s), seq);
    if (rc == RK_OK && expired) {
        s->stats.expired_keys++;
        return RK_ENOTFOUND;
    }
    return rc;
}

static const struct keyspace_ops local_ops = {
    .get = local_get,
    .put = local_put,
    .del = local_del,
    .mget = coll__local_mget,
    .mput = coll__local_mput,
    .mdel = coll__local_mdel,
    .mfold = coll__local_mfold,
    .expire = coll__local_expire,
};

void keyspace_local_init(struct keyspace *ks, struct server *s)
{
    ks->ops = &local_ops;
    ks->data = s;
}

/* ---- what handlers call ----------------------------------------------------
 */

int cmd__key_lookup_any(struct client *c,
                        const struct resp_arg *key,
                        struct rk_buf *val,
                        struct ks_meta *meta)
{
    struct ks_meta m;
    int rc = c->ks->ops->get(c->ks, key->ptr, key->len, val, &m);
    if (rc == RK_EWRONGTYPE) {
        /* a hash or set: its metadata (the value is its members) */
        rc = c->ks->ops->get(c->ks, key->ptr, key->len, NULL, &m);
    }
    if (rc == RK_ENOTFOUND) {
        return 0;
    }
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "read");
        return -1;
    }
    if (meta) {
        *meta = m;
    }
    return 1;
}

bool cmd__key_set_expiry(struct client *c,
                         const struct resp_arg *key,
                         const struct rk_buf *val,
                         uint64_t expire_at_ms,
                         const struct ks_meta *m)
{
    if (!cmd__is_coll_type(m->type)) {
        return cmd__key_restore(c, key, val->base, val->len, expire_at_ms, m);
    }
    uint64_t seq = 0;
    int rc = c->ks->ops->expire ? c->ks->ops->expire(c->ks, key->ptr, key->len,
                                                     expire_at_ms, &seq)
                                : RK_EINVAL;
    cmd__note_write(c, seq);
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "write");
        return false;
    }
    return true;
}

/*
 * Looks a key up in the client's keyspace.  val (may be NULL) is cleared
 * and receives the value; meta (may be NULL) its version, expiry, length
 * and content type.  Returns 1 found, 0 missing, -1 error (replied).
 */
int cmd__key_lookup(struct client *c,
                    const struct resp_arg *key,
                    struct rk_buf *val,
                    struct ks_meta *meta)
{
    struct ks_meta m;
    int rc = c->ks->ops->get(c->ks, key->ptr, key->len, val, &m);
    if (rc == RK_ENOTFOUND) {
        return 0;
    }
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "read");
        return -1;
    }
    if (meta) {
        *meta = m;
    }
    return 1;
}

bool cmd__value_fits_or_reply(struct client *c, uint64_t vlen, uint64_t limit)
{
    if (limit == 0 || vlen <= limit) {
        return true;
    }
    /* HTTP maps this text to 413 (http.c kv_error) */
    reply_errorf(c,
                 "ERR value of %" PRIu64
                 " bytes exceeds "
                 "cluster-max-value-bytes (%" PRIu64
                 "); store large objects elsewhere and keep a reference "
                 "here, or raise the limit",
                 vlen, limit);
    return false;
}

/* Stores a value with content type ct (ctlen bytes, 0 = none); replies on
 * error.  Returns true on success. */
static bool key_store_ct(struct client *c,
                         const struct resp_arg *key,
                         const void *val,
                         size_t vlen,
                         uint64_t expire_at_ms,
                         const char *ct,
                         uint8_t ctlen)
{
    if (!cmd__value_fits_or_reply(c, vlen, c->ks->max_value_bytes)) {
        return false;
    }
    uint64_t seq = 0;
    int rc = c->ks->ops->put(c->ks, key->ptr, key->len, val, vlen, expire_at_ms,
                             ct, ctlen, &seq);
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "write");
        return false;
    }
    cmd__note_write(c, seq);
    return true;
}

bool cmd__key_store(struct client *c,
                    const struct resp_arg *key,
                    const void *val,
                    size_t vlen,
                    uint64_t expire_at_ms)
{
    /* HTTP PUT with Content-Type (SET or RINGKV.PUT of an internal
     * client); any other RESP write stores the plain value */
    bool typed =
        c->ropts.ctlen && c->cur_cmd && (c->cur_cmd->flags & CMD_TYPED);
    return key_store_ct(c, key, val, vlen, expire_at_ms, c->ropts.ctype,
                        typed ? c->ropts.ctlen : 0);
}

/* Rewrites a value cmd__key_lookup read (into *m) with a new expiry, keeping
 * its content type (EXPIRE, PERSIST, GETEX change only the TTL). */
bool cmd__key_restore(struct client *c,
                      const struct resp_arg *key,
                      const void *val,
                      size_t vlen,
                      uint64_t expire_at_ms,
                      const struct ks_meta *m)
{
    return key_store_ct(c, key, val, vlen, expire_at_ms, m->ct, m->ctlen);
}

/* Deletes a live key.  Returns 1 deleted, 0 absent, -1 error (replied). */
int cmd__key_delete(struct client *c, const struct resp_arg *key)
{
    uint64_t seq = 0;
    int rc = c->ks->ops->del(c->ks, key->ptr, key->len, &seq);
    cmd__note_write(c, seq);
    if (rc == RK_ENOTFOUND) {
        return 0;
    }
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "delete");
        return -1;
    }
    return 1;
}

/* Replies with help text, one simple string per line (Redis's HELP). */
void cmd__reply_lines(struct client *c, const char *const *lines, size_t n)
{
    reply_array(c, n);
    for (size_t i = 0; i < n; i++) {
        reply_simple(c, lines[i]);
    }
}

/* The error for a subcommand the handler does not know (normally caught
 * earlier by the dispatcher's subcommand table). */
void cmd__reply_bad_subcommand(struct client *c,
                               const struct resp_arg *sub,
                               const char *container)
{
    reply_errorf(c,
                 "ERR unknown subcommand or wrong number of arguments for "
                 "'%.*s'. Try %s HELP.",
                 (int)(sub->len > 128 ? 128 : sub->len), sub->ptr, container);
}
