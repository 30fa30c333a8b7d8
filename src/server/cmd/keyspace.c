/*
 * cmd/keyspace.c - keyspace commands: SCAN KEYS RANDOMKEY DBSIZE FLUSHALL, the
 * active expiry cycle, and the ringkv commands of a node (RINGKV.LOCALGET
 * LOCALOBJ GETALL PUT DEL), with Redis's semantics, reply types and error texts
 * (https://redis.io/docs/latest/commands/).  Split from commands.c
 * (issue 11 item 3); see cmd/internal.h.
 */
#include "server/keyspace.h"

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

#include "cluster/chunk.h"
#include "cluster/dvv.h"
#include "cluster/objtype.h"
#include "cluster/replica.h"
#include "cluster/slot.h"
#include "cluster/types/counter.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/glob.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/cmd/internal.h"
#include "server/internal.h"

/* ---- keyspace iteration ------------------------------------------------ */

struct key_list
{
    struct rk_buf data; /* concatenated keys */
    size_t *offs;       /* start of each key; offs[n] = end */
    struct engine_meta *metas;
    size_t n, cap;
    bool oom;
};

static void key_list_fini(struct key_list *kl)
{
    rk_buf_fini(&kl->data);
    rk_free(kl->offs);
    rk_free(kl->metas);
}

static bool key_list_cb(void *data,
                        const void *key,
                        size_t klen,
                        const struct engine_meta *meta)
{
    struct key_list *kl = data;
    if (cluster_meta_is_tombstone(meta) || chunk_key_is_reserved(key, klen)) {
        return true; /* a replicated delete marker or a chunk block, not a
                        key */
    }
    if (kl->n + 2 > kl->cap) {
        size_t cap = kl->cap ? kl->cap * 2 : 64;
        size_t *o = rk_realloc(kl->offs, cap * sizeof(*o));
        if (o) {
            kl->offs = o;
        }
        struct engine_meta *m = rk_realloc(kl->metas, cap * sizeof(*m));
        if (m) {
            kl->metas = m;
        }
        if (!o || !m) {
            kl->oom = true;
            return false;
        }
        kl->cap = cap;
    }
    kl->offs[kl->n] = kl->data.len;
    kl->metas[kl->n] = *meta;
    if (rk_buf_append(&kl->data, key, klen) != RK_OK) {
        kl->oom = true;
        return false;
    }
    kl->n++;
    kl->offs[kl->n] = kl->data.len;
    return true;
}

/* Replies with the keys of kl that match and are not expired (expiring
 * those that are). */
static void reply_key_list(struct client *c,
                           struct key_list *kl,
                           const struct resp_arg *pat)
{
    uint64_t now = server_now_ms();
    size_t n = 0;
    bool *keep = rk_calloc(kl->n ? kl->n : 1, sizeof(bool));
    if (keep == NULL) {
        reply_error(c, "ERR out of memory");
        return;
    }
    for (size_t i = 0; i < kl->n; i++) {
        const char *k = kl->data.base + kl->offs[i];
        size_t klen = kl->offs[i + 1] - kl->offs[i];
        if (cmd__is_expired(&kl->metas[i], now)) {
            cmd__expire_key(c->srv, k, klen);
            continue;
        }
        if (pat && !rk_glob_match(pat->ptr, pat->len, k, klen, false)) {
            continue;
        }
        keep[i] = true;
        n++;
    }
    reply_array(c, n);
    for (size_t i = 0; i < kl->n; i++) {
        if (keep[i]) {
            reply_bulk(c, kl->data.base + kl->offs[i],
                       kl->offs[i + 1] - kl->offs[i]);
        }
    }
    rk_free(keep);
}

void cmd_scan(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    uint64_t cursor = 0;
    if (!cmd__cursor_or_reply(c, &argv[1], &cursor)) {
        return;
    }
    const struct resp_arg *pat = NULL;
    int64_t count = 10;
    int want_type = -1; /* SCAN ... TYPE: OBJTYPE_*, or -2 for none */
    for (size_t i = 2; i < argc; i++) {
        int o = cmd__scan_opt(c, argc, argv, &i, &pat, &count);
        if (o < 0) {
            return;
        }
        if (o > 0) {
            continue;
        }
        if (i + 1 >= argc) {
            reply_error(c, ERR_SYNTAX);
            return;
        }
        if (cmd__arg_is(&argv[i], "TYPE")) {
            i++;
            want_type = cmd__arg_is(&argv[i], "string") ? OBJTYPE_STRING
                        : cmd__arg_is(&argv[i], "hash") ? OBJTYPE_HASH
                        : cmd__arg_is(&argv[i], "set")  ? OBJTYPE_SET
                                                        : -2;
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    struct key_list kl;
    memset(&kl, 0, sizeof(kl));
    rk_buf_init(&kl.data);
    uint64_t next = 0;
    size_t want = count > 100000 ? 100000 : (size_t)count;
    int rc = engine_scan(s->engine, cursor, want, key_list_cb, &kl, &next);
    if (rc != RK_OK || kl.oom) {
        key_list_fini(&kl);
        reply_error(c, rc == RK_OK ? "ERR out of memory" : "ERR scan failed");
        return;
    }
    if (want_type != -1) {
        /* keep the keys of that type (a record's own type; objects in a
         * cluster are strings) */
        size_t w = 0;
        for (size_t i = 0; i < kl.n; i++) {
            struct engine_meta m;
            replica_meta_current(&kl.metas[i], &m);
            int t = (m.flags & REPLICA_FLAG_OBJECT) ? OBJTYPE_STRING : m.type;
            if (t != want_type) {
                continue;
            }
            size_t len = kl.offs[i + 1] - kl.offs[i];
            memmove(kl.data.base + kl.offs[w], kl.data.base + kl.offs[i], len);
            kl.metas[w] = kl.metas[i];
            kl.offs[w + 1] = kl.offs[w] + len;
            w++;
        }
        kl.n = w;
    }
    reply_array(c, 2);
    char cur[32];
    int n = snprintf(cur, sizeof(cur), "%" PRIu64, next);
    reply_bulk(c, cur, (size_t)n);
    reply_key_list(c, &kl, pat);
    key_list_fini(&kl);
}

void cmd_keys(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct key_list kl;
    memset(&kl, 0, sizeof(kl));
    rk_buf_init(&kl.data);
    int rc = engine_foreach(c->srv->engine, key_list_cb, &kl);
    if (rc != RK_OK || kl.oom) {
        key_list_fini(&kl);
        reply_error(c, "ERR keys failed");
        return;
    }
    const struct resp_arg *pat = &argv[1];
    reply_key_list(c, &kl, (pat->len == 1 && pat->ptr[0] == '*') ? NULL : pat);
    key_list_fini(&kl);
}

static bool random_key_cb(void *data,
                          const void *key,
                          size_t klen,
                          const struct engine_meta *meta)
{
    if (cluster_meta_is_tombstone(meta) || chunk_key_is_reserved(key, klen)) {
        return true;
    }
    struct rk_buf *b = data;
    rk_buf_append(b, key, klen);
    return false;
}

void cmd_randomkey(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    struct server *s = c->srv;
    struct rk_buf k;
    rk_buf_init(&k);
    uint64_t cursor = ((uint64_t)rand() << 32) ^ (uint64_t)rand();
    for (int tries = 0; tries < 64 && k.len == 0; tries++) {
        uint64_t next;
        engine_scan(s->engine, cursor, 1, random_key_cb, &k, &next);
        cursor = next ? next : ((uint64_t)rand() << 32) ^ (uint64_t)rand();
    }
    if (k.len == 0) {
        engine_foreach(s->engine, random_key_cb, &k);
    }
    if (k.len) {
        reply_bulk(c, k.base, k.len);
    } else {
        reply_null(c);
    }
    rk_buf_fini(&k);
}

/* What one expiry slice collects: the keys already expired at now_ms. */
struct expired_keys
{
    struct rk_buf keys; /* each key as a u32 length (host order), bytes */
    size_t n;           /* keys in `keys` */
    uint64_t now_ms;    /* wall clock ms the slice compares against */
    bool oom;           /* an append failed: the walk stopped there */
};

static bool expired_keys_cb(void *data,
                            const void *key,
                            size_t klen,
                            const struct engine_meta *meta)
{
    struct expired_keys *x = data;
    /* Most keys have no TTL: rejected on the meta alone, with no copy and
     * no clock read.  Then what key_list_cb leaves out of the keyspace. */
    if (!cmd__is_expired(meta, x->now_ms) || cluster_meta_is_tombstone(meta) ||
        chunk_key_is_reserved(key, klen)) {
        return true;
    }
    uint32_t l = (uint32_t)klen;
    if (rk_buf_append(&x->keys, &l, sizeof(l)) != RK_OK ||
        rk_buf_append(&x->keys, key, klen) != RK_OK) {
        x->oom = true;
        return false;
    }
    x->n++;
    return true;
}

size_t expire_cycle(struct server *s, size_t budget)
{
    if (engine_expiring_keys(s->engine) == 0) {
        return 0; /* no key has a TTL: nothing can expire, skip the walk */
    }
    struct expired_keys x = {.now_ms = server_now_ms()};
    rk_buf_init(&x.keys);
    uint64_t next = 0;
    if (engine_scan(s->engine, s->scan_cursor, budget, expired_keys_cb, &x,
                    &next) != RK_OK) {
        rk_buf_fini(&x.keys);
        return 0;
    }
    s->scan_cursor = next; /* where a stop (x.oom) left off, or on */
    /* deleted after the walk: the keydir must not change under a scan */
    size_t off = 0;
    for (size_t i = 0; i < x.n; i++) {
        uint32_t l;
        memcpy(&l, x.keys.base + off, sizeof(l));
        off += sizeof(l);
        cmd__expire_key(s, x.keys.base + off, l);
        off += l;
    }
    rk_buf_fini(&x.keys);
    return x.n;
}

static bool count_tombstones_cb(void *data,
                                const void *key,
                                size_t klen,
                                const struct engine_meta *meta)
{
    if (cluster_meta_is_tombstone(meta) || chunk_key_is_reserved(key, klen)) {
        (*(uint64_t *)data)++; /* not keys (chunk blocks are ringkv's) */
    }
    return true;
}

/* RINGKV.LOCALGET key: this node's stored value, no coordination (a
 * debugging aid for replicas; tombstones and expired values are nil; of a
 * versioned object, the winning sibling). */
void cmd_localget(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct rk_buf *val = &c->srv->scratch;
    struct engine_meta m;
    rk_buf_clear(val);
    int rc = engine_get(c->srv->engine, argv[1].ptr, argv[1].len, val, &m);
    if (rc == RK_ENOTFOUND ||
        (rc == RK_OK && (cluster_meta_is_tombstone(&m) ||
                         cmd__is_expired(&m, server_now_ms())))) {
        reply_null(c);
        return;
    }
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "read");
        return;
    }
    replica_meta_current(&m, &m);
    if ((m.flags & REPLICA_FLAG_CTYPE) && val->len > 0) {
        size_t skip = 1 + (unsigned char)val->base[0];
        skip = skip < val->len ? skip : val->len;
        reply_bulk(c, val->base + skip, val->len - skip);
        return;
    }
    if (replica_meta_is_object(&m)) {
        struct dvv_obj o;
        dvv_init(&o);
        struct counter st;
        counter_init(&st);
        struct counter_view v;
        rc = dvv_decode(&o, val->base ? val->base : "", val->len);
        if (rc == RK_OK) {
            rc = counter_resolve(&o, server_now_ms(), &st, &v);
        }
        if (rc != RK_OK) {
            reply_error(c, "ERR stored object does not decode");
        } else if (v.kind == COUNTER_VIEW_DEAD) {
            reply_null(c);
        } else if (v.kind == COUNTER_VIEW_VALUE) {
            reply_bulk(c, v.val, v.vlen);
        } else {
            size_t pl = 0;
            const char *pv = dvv_payload(&o, v.idx, &pl);
            reply_bulk(c, pv, pl);
        }
        counter_fini(&st);
        dvv_fini(&o);
        return;
    }
    reply_bulk(c, val->base ? val->base : "", val->len);
}

/* RINGKV.LOCALOBJ key: this node's stored record bytes (the canonical
 * versioned object in a cluster), nil when absent: a debugging aid that
 * lets tests compare replicas byte for byte. */
void cmd_localobj(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct rk_buf *val = &c->srv->scratch;
    rk_buf_clear(val);
    int rc = engine_get(c->srv->engine, argv[1].ptr, argv[1].len, val, NULL);
    if (rc == RK_ENOTFOUND) {
        reply_null(c);
    } else if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "read");
    } else {
        reply_bulk(c, val->base ? val->base : "", val->len);
    }
}

/* RINGKV.GETALL key on a node that is not in a cluster: one version, so
 * [context "", [[value, hlc, unix ms]]] or [context "", []] (cluster.c
 * answers it from the merged object in a cluster). */
void cmd_getall(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    struct rk_buf *val = &c->srv->scratch;
    struct ks_meta m;
    /* the content type, when the caller wants it (http.c) */
    char ct[sizeof(c->ropts.ctype)];
    size_t ctlen = 0;
    if (c->ropts.want_ctype) {
        rk_buf_clear(val);
        struct engine_meta raw;
        int rc =
            engine_get(c->srv->engine, argv[1].ptr, argv[1].len, val, &raw);
        if (rc == RK_OK) {
            replica_meta_current(&raw, &raw);
        }
        if (rc == RK_OK && (raw.flags & REPLICA_FLAG_CTYPE) && val->len > 0 &&
            dvv_ctype_valid(val->base, val->len)) {
            ctlen = (unsigned char)val->base[0];
            memcpy(ct, val->base + 1, ctlen);
        }
    }
    int found = cmd__key_lookup(c, &argv[1], val, &m);
    if (found < 0) {
        return;
    }
    reply_array(c, 2);
    reply_bulk(c, "", 0);
    reply_array(c, (size_t)found);
    if (found) {
        reply_array(c, c->ropts.want_ctype ? 4 : 3);
        reply_bulk(c, val->base ? val->base : "", val->len);
        reply_int(c, (int64_t)m.ts);
        reply_int(c, (int64_t)hlc_physical_ms(m.ts));
        if (c->ropts.want_ctype && ctlen) {
            reply_bulk(c, ct, ctlen);
        } else if (c->ropts.want_ctype) {
            reply_null(c);
        }
    }
}

/* Whether a client's causal context parses (standalone RINGKV.PUT/DEL:
 * there are no siblings to supersede, but a bad context is still an
 * error); replies with the error when not. */
static bool context_ok(struct client *c, const struct resp_arg *arg)
{
    struct dvv_obj ctx;
    dvv_init(&ctx);
    int rc = dvv_context_decode(&ctx, arg->ptr, arg->len);
    dvv_fini(&ctx);
    if (rc != RK_OK) {
        reply_error(c, rc == RK_EINVAL
                           ? "ERR invalid causal context (pass the context "
                             "RINGKV.GETALL returned, or an empty string)"
                           : "ERR out of memory");
    }
    return rc == RK_OK;
}

/* RINGKV.PUT key context value on a node that is not in a cluster: the
 * context is checked and the value stored (there are no siblings here). */
void cmd_ringkv_put(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    if (!context_ok(c, &argv[2])) {
        return;
    }
    if (cmd__key_store(c, &argv[1], argv[3].ptr, argv[3].len, 0)) {
        reply_ok(c);
    }
}

/* RINGKV.DEL key context on a node that is not in a cluster: the context
 * is checked and the key deleted (1 when it existed, else 0). */
void cmd_ringkv_del(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    if (!context_ok(c, &argv[2])) {
        return;
    }
    int d = cmd__key_delete(c, &argv[1]);
    if (d >= 0) {
        reply_int(c, d);
    }
}

void cmd_dbsize(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    struct engine_stats st;
    engine_stats(c->srv->engine, &st);
    uint64_t tombs = 0;
    if (c->srv->cluster ? !c->srv->cluster_exec : c->srv->coll_present) {
        /* Node-local, without replicated delete markers, chunk blocks and
         * hash and set members (O(keys)). */
        engine_foreach(c->srv->engine, count_tombstones_cb, &tombs);
    }
    reply_int(c, (int64_t)(st.live_keys - tombs));
}

void cmd_flushall(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    if (argc > 2 || (argc == 2 && !cmd__arg_is(&argv[1], "ASYNC") &&
                     !cmd__arg_is(&argv[1], "SYNC"))) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    if (!s->cfg->enable_flushall) {
        reply_error(c,
                    "ERR FLUSHALL and FLUSHDB are disabled on this server; "
                    "start ringkvd with --enable-flushall yes to allow "
                    "them");
        return;
    }
    uint64_t seq = 0;
    int rc = engine_clear(s->engine, &seq);
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "flush");
        return;
    }
    cmd__note_write(c, seq);
    rk_log(RK_LOG_INFO, "flushall", "client=%s", c->addr);
    reply_ok(c);
}

/* ---- CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT ----------------------------- */

/* Collects the keys of `slot` (live and expired; not delete markers or
 * chunk blocks) from the engine's slot index (engine_fold_slots): O(keys
 * in the slot).  RK_OK, RK_ENOMEM (kl->oom) or the fold's error. */
static int slot_keys(struct engine *e, uint32_t slot, struct key_list *kl)
{
    uint64_t cur = ENGINE_FOLD_START;
    do {
        int rc =
            engine_fold_slots(e, slot, slot, cur, 1024, key_list_cb, kl, &cur);
        if (rc != RK_OK) {
            return rc;
        }
        if (kl->oom) {
            return RK_ENOMEM;
        }
    } while (cur != ENGINE_FOLD_DONE);
    return RK_OK;
}

/*
 * CLUSTER: COUNTKEYSINSLOT and GETKEYSINSLOT are node-local like KEYS (the
 * keys this node stores in a slot, as in Redis; O(keys in the slot), from
 * the engine's slot index); every other subcommand describes the ring
 * (cluster_redis_cmd, server/cluster_slots.c), which also answers the
 * error when this node is not a member of a cluster.
 */
void cmd_cluster(struct client *c, size_t argc, const struct resp_arg *argv)
{
    static const char *const help[] = {
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "COUNTKEYSINSLOT <slot>",
        "    Return the number of keys this node stores in <slot>.",
        "GETKEYSINSLOT <slot> <count>",
        "    Return up to <count> key names this node stores in <slot>.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MYID",
        "    Return this node's id (40 hex characters).",
        "NODES",
        "    Return the cluster's nodes (every member is a master).",
        "SHARDS",
        "    Return the slot ranges with their primary and replicas.",
        "SLOTS",
        "    Return the slot ranges with their primary and replicas.",
        "HELP",
        "    Print this help.",
    };
    if (cmd__arg_is(&argv[1], "HELP")) {
        cmd__reply_lines(c, help, sizeof(help) / sizeof(help[0]));
        return;
    }
    bool get = cmd__arg_is(&argv[1], "GETKEYSINSLOT");
    if ((!get && !cmd__arg_is(&argv[1], "COUNTKEYSINSLOT")) ||
        !cluster_redis_enabled(c->srv)) {
        cluster_redis_cmd(c, argc, argv);
        return;
    }
    int64_t slot, max = INT64_MAX;
    if (!cmd__arg_i64_or_reply(c, &argv[2], &slot) ||
        (get && !cmd__arg_i64_or_reply(c, &argv[3], &max))) {
        return;
    }
    if (slot < 0 || slot >= SLOT_COUNT || max < 0) {
        reply_error(
            c, get ? "ERR Invalid slot or number of keys" : "ERR Invalid slot");
        return;
    }
    struct key_list kl;
    memset(&kl, 0, sizeof(kl));
    rk_buf_init(&kl.data);
    int rc = slot_keys(c->srv->engine, (uint32_t)slot, &kl);
    if (rc != RK_OK) {
        key_list_fini(&kl);
        reply_error(c,
                    rc == RK_ENOMEM ? "ERR out of memory" : "ERR keys failed");
        return;
    }
    /* the first `max` keys that are not expired */
    uint64_t now = server_now_ms();
    size_t live = 0;
    for (size_t i = 0; i < kl.n; i++) {
        live += !cmd__is_expired(&kl.metas[i], now);
    }
    if ((uint64_t)live > (uint64_t)max) {
        live = (size_t)max;
    }
    if (!get) {
        reply_int(c, (int64_t)live);
    } else {
        reply_array(c, live);
        for (size_t i = 0, sent = 0; i < kl.n && sent < live; i++) {
            if (!cmd__is_expired(&kl.metas[i], now)) {
                reply_bulk(c, kl.data.base + kl.offs[i],
                           kl.offs[i + 1] - kl.offs[i]);
                sent++;
            }
        }
    }
    key_list_fini(&kl);
}
