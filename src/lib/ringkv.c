/*
 * ringkv.c - the public API of include/ringkv.h: the handle, its pool of
 * connections, topology refresh, and the retry loop every call goes
 * through (call()).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster/slot.h"
#include "common/alloc.h"
#include "lib/internal.h"

#define ERRMSG_SIZE 512

/* One pooled node: an address, its connection (NULL until used). */
struct pool_node
{
    struct rkl_addr addr;
    char name[RKL_MAX_HOST + 16]; /* "host:port" */
    struct rkl_conn *conn;
    int64_t down_until_ms; /* refused a connection: skipped until then */
};

struct ringkv
{
    struct ringkv_options o; /* ints only; the strings below */
    char *username, *password;
    struct rkl_policy policy;
    struct pool_node *pool; /* grows; entries never move between calls
                               except by realloc (indexes are stable) */
    size_t n_pool;
    size_t n_seeds; /* pool[0..n_seeds) are the seeds */
    struct rkl_topo topo;
    uint16_t *topo_pool; /* topo node i -> pool index */
    bool refresh_needed;
    int64_t next_refresh_ms;
    uint64_t rng;
    struct ringkv_stats st;
    char errmsg[ERRMSG_SIZE];
};

void ringkv_options_init(struct ringkv_options *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = 1000;
    o->timeout_ms = 5000;
    o->max_attempts = 8;
    o->backoff_base_ms = 10;
    o->backoff_max_ms = 500;
    o->refresh_interval_ms = 10000;
    o->down_ms = 1000;
}

__attribute__((format(printf, 2, 3))) static void seterr(struct ringkv *rk,
                                                         const char *fmt,
                                                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rk->errmsg, sizeof(rk->errmsg), fmt, ap);
    va_end(ap);
    for (char *p = rk->errmsg; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            *p = ' ';
        }
    }
}

static uint32_t rnd32(struct ringkv *rk)
{
    /* xorshift64*: jitter only */
    rk->rng ^= rk->rng >> 12;
    rk->rng ^= rk->rng << 25;
    rk->rng ^= rk->rng >> 27;
    return (uint32_t)((rk->rng * 2685821657736338717ull) >> 32);
}

static void sleep_ms(int ms)
{
    if (ms <= 0) {
        return;
    }
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Pool index of addr, added when new; -1 on ENOMEM. */
static int pool_index(struct ringkv *rk, const struct rkl_addr *a)
{
    for (size_t i = 0; i < rk->n_pool; i++) {
        if (rk->pool[i].addr.port == a->port &&
            strcmp(rk->pool[i].addr.host, a->host) == 0) {
            return (int)i;
        }
    }
    struct pool_node *p =
        rk_realloc(rk->pool, (rk->n_pool + 1) * sizeof(*rk->pool));
    if (p == NULL) {
        return -1;
    }
    rk->pool = p;
    struct pool_node *n = &p[rk->n_pool];
    memset(n, 0, sizeof(*n));
    n->addr = *a;
    snprintf(n->name, sizeof(n->name),
             strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
    return (int)rk->n_pool++;
}

static void node_drop(struct pool_node *n)
{
    rkl_conn_close(n->conn);
    n->conn = NULL;
}

/* Connects (and authenticates) pool node i if needed.  *sent stays false:
 * nothing of the caller's request is written here. */
static int node_connect(struct ringkv *rk,
                        struct pool_node *n,
                        int64_t deadline_ms)
{
    if (n->conn != NULL) {
        return RINGKV_OK;
    }
    int64_t now = rkl_now_ms();
    int64_t dl = now + rk->o.connect_timeout_ms;
    if (dl > deadline_ms) {
        dl = deadline_ms;
    }
    char err[256] = "";
    int rc = rkl_conn_open(&n->addr, dl, &n->conn, err, sizeof(err));
    if (rc != RINGKV_OK) {
        n->down_until_ms = rkl_now_ms() + rk->o.down_ms;
        seterr(rk, "%s: %s", n->name, err);
        return rc;
    }
    rk->st.connects++;
    n->down_until_ms = 0;
    if (rk->password != NULL) {
        const char *argv[3] = {"AUTH", rk->username, rk->password};
        size_t lens[3] = {4, rk->username ? strlen(rk->username) : 0,
                          strlen(rk->password)};
        size_t argc = 3;
        if (rk->username == NULL) {
            argv[1] = rk->password;
            lens[1] = lens[2];
            argc = 2;
        }
        struct resp_value *v = NULL;
        bool sent = false;
        rc = rkl_conn_request(n->conn, argc, argv, lens, dl, &sent, &v, err,
                              sizeof(err));
        if (rc != RINGKV_OK) {
            seterr(rk, "%s: AUTH: %s", n->name, err);
            node_drop(n);
            return rc;
        }
        if (v->type == RESP_ERROR) {
            seterr(rk, "%s: AUTH: %s", n->name, v->str);
            resp_value_free(v);
            node_drop(n);
            return RINGKV_EAUTH;
        }
        resp_value_free(v);
    }
    return RINGKV_OK;
}

/* One request on pool node n, connecting first.  *sent as rkl_conn_request.
 * Error replies are RINGKV_OK with *reply of type RESP_ERROR. */
static int node_request(struct ringkv *rk,
                        struct pool_node *n,
                        size_t argc,
                        const char *const *argv,
                        const size_t *lens,
                        int64_t deadline_ms,
                        bool *sent,
                        struct resp_value **reply)
{
    *sent = false;
    int rc = node_connect(rk, n, deadline_ms);
    if (rc != RINGKV_OK) {
        return rc;
    }
    char err[256] = "";
    rc = rkl_conn_request(n->conn, argc, argv, lens, deadline_ms, sent, reply,
                          err, sizeof(err));
    if (rc != RINGKV_OK) {
        seterr(rk, "%s: %s", n->name, err);
        node_drop(n);
    }
    return rc;
}

/* Replaces the topology with one read from pool node n.  */
static int refresh_from(struct ringkv *rk,
                        struct pool_node *n,
                        int64_t deadline_ms)
{
    static const char *const argv[2] = {"CLUSTER", "SLOTS"};
    static const size_t lens[2] = {7, 5};
    struct resp_value *v = NULL;
    bool sent;
    int rc = node_request(rk, n, 2, argv, lens, deadline_ms, &sent, &v);
    if (rc != RINGKV_OK) {
        return rc;
    }
    struct rkl_topo t;
    char err[256] = "";
    if (v->type == RESP_ERROR) {
        int code = rkl_error_code(v);
        if (code == RINGKV_EAUTH) {
            seterr(rk, "%s: %s", n->name, v->str);
            resp_value_free(v);
            return code;
        }
        /* no CLUSTER (a plain Redis server): it serves every slot */
        rc = rkl_topo_single(&t, n->addr.host, n->addr.port);
    } else {
        rc = rkl_topo_from_slots(&t, v, n->addr.host, err, sizeof(err));
        if (rc == RINGKV_OK && t.n_ranges == 0) {
            rkl_topo_fini(&t);
            rc = rkl_topo_single(&t, n->addr.host, n->addr.port);
        }
    }
    resp_value_free(v);
    if (rc != RINGKV_OK) {
        seterr(rk, "%s: %s", n->name, err[0] ? err : ringkv_strerror(rc));
        return rc;
    }
    uint16_t *map = rk_calloc(t.n_nodes ? t.n_nodes : 1, sizeof(*map));
    if (map == NULL) {
        rkl_topo_fini(&t);
        return RINGKV_ENOMEM;
    }
    for (size_t i = 0; i < t.n_nodes; i++) {
        int idx = pool_index(rk, &t.nodes[i]);
        if (idx < 0) {
            rk_free(map);
            rkl_topo_fini(&t);
            return RINGKV_ENOMEM;
        }
        map[i] = (uint16_t)idx;
    }
    rkl_topo_fini(&rk->topo);
    rk_free(rk->topo_pool);
    rk->topo = t;
    rk->topo_pool = map;
    rk->st.refreshes++;
    rk->refresh_needed = false;
    int64_t now = rkl_now_ms();
    rk->next_refresh_ms = rk->o.refresh_interval_ms < 0
                              ? INT64_MAX
                              : now + rk->o.refresh_interval_ms;
    return RINGKV_OK;
}

/* Reads the topology from a reachable node: connected ones first, then
 * up ones, then any (seeds included). */
static int refresh(struct ringkv *rk, int64_t deadline_ms)
{
    int rc = RINGKV_ENOTOPOLOGY;
    int64_t now = rkl_now_ms();
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < rk->n_pool; i++) {
            struct pool_node *n = &rk->pool[i];
            bool pick = pass == 0   ? n->conn != NULL
                        : pass == 1 ? n->conn == NULL && n->down_until_ms <= now
                                    : n->conn == NULL && n->down_until_ms > now;
            if (!pick) {
                continue;
            }
            if (rkl_now_ms() >= deadline_ms) {
                return RINGKV_ETIMEDOUT;
            }
            rc = refresh_from(rk, n, deadline_ms);
            if (rc == RINGKV_OK || rc == RINGKV_EAUTH || rc == RINGKV_ENOMEM) {
                return rc;
            }
        }
    }
    return rc;
}

/* The pool node for attempt `attempt` (1-based) at `slot`: the nodes that
 * serve the slot, up ones first, in topology order, rotating with the
 * attempt; the seeds when no node serves it. */
static struct pool_node *pick_node(struct ringkv *rk,
                                   uint32_t slot,
                                   int attempt)
{
    uint16_t cand[RKL_MAX_REPLICAS];
    size_t n = 0;
    const struct rkl_range *r = rkl_topo_route(&rk->topo, slot);
    int64_t now = rkl_now_ms();
    if (r != NULL) {
        for (uint8_t i = 0; i < r->n; i++) {
            uint16_t p = rk->topo_pool[r->nodes[i]];
            if (rk->pool[p].down_until_ms <= now) {
                cand[n++] = p;
            }
        }
        if (n == 0) { /* all down: try them anyway */
            for (uint8_t i = 0; i < r->n; i++) {
                cand[n++] = rk->topo_pool[r->nodes[i]];
            }
        }
        return &rk->pool[cand[(size_t)(attempt - 1) % n]];
    }
    size_t any = rk->n_pool;
    if (any == 0) {
        return NULL;
    }
    return &rk->pool[(size_t)(attempt - 1) % any];
}

/*
 * The retry loop of every call: routes by `slot`, sends argv, and returns
 * RINGKV_OK with a non-error reply, or the error of the last attempt.
 */
static int call(struct ringkv *rk,
                uint32_t slot,
                bool idempotent,
                const struct ringkv_call *c,
                size_t argc,
                const char *const *argv,
                const size_t *lens,
                struct resp_value **reply)
{
    rk->st.calls++;
    rk->errmsg[0] = '\0';
    unsigned flags = c ? c->flags : 0;
    int timeout = c && c->timeout_ms > 0 ? c->timeout_ms : rk->o.timeout_ms;
    int64_t start = rkl_now_ms();
    int64_t deadline = start + timeout;
    int rc = RINGKV_ENOTOPOLOGY;
    if (start >= rk->next_refresh_ms) {
        rk->refresh_needed = true;
    }
    for (int attempt = 1;; attempt++) {
        if (rk->refresh_needed) {
            /* best effort: the old topology still routes */
            (void)refresh(rk, deadline);
        }
        int64_t now = rkl_now_ms();
        int64_t budget =
            rkl_attempt_budget_ms(&rk->policy, attempt, deadline - now);
        struct pool_node *n = pick_node(rk, slot, attempt);
        bool sent = false;
        struct resp_value *v = NULL;
        rk->st.attempts++;
        if (attempt > 1) {
            rk->st.retries++;
        }
        if (n == NULL) {
            rc = RINGKV_ENOTOPOLOGY;
            seterr(rk, "no node serves slot %u", slot);
        } else if (budget <= 0) {
            rc = RINGKV_ETIMEDOUT;
            seterr(rk, "timed out after %d ms", timeout);
        } else {
            rc = node_request(rk, n, argc, argv, lens, now + budget, &sent, &v);
        }
        if (rc == RINGKV_OK && v->type == RESP_ERROR) {
            rc = rkl_error_code(v);
            sent = true;
            seterr(rk, "%s: %s", n->name, v->str);
            resp_value_free(v);
            v = NULL;
        }
        if (rc == RINGKV_OK) {
            *reply = v;
            return RINGKV_OK;
        }
        if (rc == RINGKV_EIO || rc == RINGKV_ETIMEDOUT) {
            rk->refresh_needed = true;
        }
        int pause = 0;
        if (!rkl_retry_decide(&rk->policy, attempt, rc, sent, idempotent, flags,
                              deadline - rkl_now_ms(), rnd32(rk), &pause)) {
            break;
        }
        sleep_ms(pause);
    }
    rk->st.errors++;
    return rc;
}

static int finish(struct ringkv *rk, int rc)
{
    if (rc != RINGKV_OK && rc != RINGKV_ENOTFOUND) {
        if (rk->errmsg[0] == '\0') {
            seterr(rk, "%s", ringkv_strerror(rc));
        }
    }
    return rc;
}

static int unexpected(struct ringkv *rk, struct resp_value *v, const char *cmd)
{
    seterr(rk, "%s: unexpected reply type %d", cmd, (int)v->type);
    resp_value_free(v);
    rk->st.errors++;
    return RINGKV_EPROTO;
}

int ringkv_create(const struct ringkv_options *o,
                  struct ringkv **out,
                  char errbuf[256])
{
    if (errbuf != NULL) {
        errbuf[0] = '\0';
    }
    if (o == NULL || out == NULL || o->n_seeds == 0 || o->seeds == NULL ||
        o->max_attempts < 1 || o->timeout_ms <= 0 ||
        o->connect_timeout_ms <= 0 || o->backoff_base_ms < 0 ||
        o->backoff_max_ms < o->backoff_base_ms) {
        if (errbuf != NULL) {
            snprintf(errbuf, 256, "invalid options");
        }
        return RINGKV_EINVAL;
    }
    struct ringkv *rk = rk_calloc(1, sizeof(*rk));
    if (rk == NULL) {
        return RINGKV_ENOMEM;
    }
    rk->o = *o;
    rk->o.seeds = NULL;
    rk->o.username = rk->o.password = NULL;
    rk->policy.max_attempts = o->max_attempts;
    rk->policy.backoff_base_ms = o->backoff_base_ms;
    rk->policy.backoff_max_ms = o->backoff_max_ms;
    rk->rng = (uint64_t)rkl_now_ms() * 0x9e3779b97f4a7c15ull ^ (uintptr_t)rk;
    rk->rng |= 1;
    rkl_topo_init(&rk->topo);
    int rc = RINGKV_ENOMEM;
    if ((o->username &&
         !(rk->username = rk_strndup(o->username, strlen(o->username)))) ||
        (o->password &&
         !(rk->password = rk_strndup(o->password, strlen(o->password))))) {
        goto fail;
    }
    for (size_t i = 0; i < o->n_seeds; i++) {
        struct rkl_addr a;
        if (rkl_addr_parse(o->seeds[i], &a) != RINGKV_OK) {
            seterr(rk, "bad seed address '%s' (want host:port)",
                   o->seeds[i] ? o->seeds[i] : "(null)");
            rc = RINGKV_EINVAL;
            goto fail;
        }
        if (pool_index(rk, &a) < 0) {
            goto fail;
        }
    }
    rk->n_seeds = rk->n_pool;
    rc =
        refresh(rk, rkl_now_ms() + (int64_t)rk->n_pool *
                                       (o->connect_timeout_ms + o->timeout_ms));
    if (rc != RINGKV_OK) {
        goto fail;
    }
    *out = rk;
    return RINGKV_OK;
fail:
    if (errbuf != NULL) {
        snprintf(errbuf, 256, "%.255s",
                 rk->errmsg[0] ? rk->errmsg : ringkv_strerror(rc));
    }
    ringkv_destroy(rk);
    return rc;
}

void ringkv_destroy(struct ringkv *rk)
{
    if (rk == NULL) {
        return;
    }
    for (size_t i = 0; i < rk->n_pool; i++) {
        node_drop(&rk->pool[i]);
    }
    rk_free(rk->pool);
    rkl_topo_fini(&rk->topo);
    rk_free(rk->topo_pool);
    rk_free(rk->username);
    rk_free(rk->password);
    rk_free(rk);
}

const char *ringkv_last_error(const struct ringkv *rk)
{
    return rk->errmsg;
}

void ringkv_stats_get(const struct ringkv *rk, struct ringkv_stats *st)
{
    *st = rk->st;
}

size_t ringkv_node_count(const struct ringkv *rk)
{
    return rk->topo.n_nodes;
}

const char *ringkv_node_addr(const struct ringkv *rk, size_t i)
{
    if (i >= rk->topo.n_nodes) {
        return NULL;
    }
    return rk->pool[rk->topo_pool[i]].name;
}

#define KEY_OK(key, klen) ((key) != NULL || (klen) == 0)
#define K(key)            ((key) != NULL ? (const char *)(key) : "")

int ringkv_get(struct ringkv *rk,
               const void *key,
               size_t klen,
               char **val,
               size_t *vlen,
               const struct ringkv_call *c)
{
    if (!KEY_OK(key, klen) || val == NULL) {
        return RINGKV_EINVAL;
    }
    const char *argv[2] = {"GET", K(key)};
    size_t lens[2] = {3, klen};
    struct resp_value *v = NULL;
    int rc = call(rk, slot_of_key(key, klen), true, c, 2, argv, lens, &v);
    if (rc != RINGKV_OK) {
        return finish(rk, rc);
    }
    if (v->type == RESP_NULL) {
        resp_value_free(v);
        return RINGKV_ENOTFOUND;
    }
    struct ringkv_value out;
    rc = rkl_value_from_reply(v, &out);
    if (rc == RINGKV_EPROTO) {
        return unexpected(rk, v, "GET");
    }
    resp_value_free(v);
    if (rc == RINGKV_OK) {
        *val = out.data;
        if (vlen != NULL) {
            *vlen = out.len;
        }
    }
    return finish(rk, rc);
}

/* A call whose reply is +OK. */
static int call_ok(struct ringkv *rk,
                   uint32_t slot,
                   bool idem,
                   const struct ringkv_call *c,
                   size_t argc,
                   const char *const *argv,
                   const size_t *lens)
{
    struct resp_value *v = NULL;
    int rc = call(rk, slot, idem, c, argc, argv, lens, &v);
    if (rc != RINGKV_OK) {
        return finish(rk, rc);
    }
    if (v->type != RESP_SIMPLE) {
        return unexpected(rk, v, argv[0]);
    }
    resp_value_free(v);
    return RINGKV_OK;
}

/* A call whose reply is an integer. */
static int call_int(struct ringkv *rk,
                    uint32_t slot,
                    bool idem,
                    const struct ringkv_call *c,
                    size_t argc,
                    const char *const *argv,
                    const size_t *lens,
                    int64_t *out)
{
    struct resp_value *v = NULL;
    int rc = call(rk, slot, idem, c, argc, argv, lens, &v);
    if (rc != RINGKV_OK) {
        return finish(rk, rc);
    }
    if (v->type != RESP_INT) {
        return unexpected(rk, v, argv[0]);
    }
    if (out != NULL) {
        *out = v->integer;
    }
    resp_value_free(v);
    return RINGKV_OK;
}

int ringkv_set(struct ringkv *rk,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               int64_t ttl_ms,
               const struct ringkv_call *c)
{
    if (!KEY_OK(key, klen) || !KEY_OK(val, vlen) || ttl_ms < 0) {
        return RINGKV_EINVAL;
    }
    char ttl[24];
    const char *argv[5] = {"SET", K(key), val ? val : "", "PX", ttl};
    size_t lens[5] = {3, klen, vlen, 2, 0};
    size_t argc = 3;
    if (ttl_ms > 0) {
        lens[4] = (size_t)snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
        argc = 5;
    }
    return call_ok(rk, slot_of_key(key, klen), true, c, argc, argv, lens);
}

int ringkv_del(struct ringkv *rk,
               const void *key,
               size_t klen,
               int64_t *n_deleted,
               const struct ringkv_call *c)
{
    if (!KEY_OK(key, klen)) {
        return RINGKV_EINVAL;
    }
    const char *argv[2] = {"DEL", K(key)};
    size_t lens[2] = {3, klen};
    return call_int(rk, slot_of_key(key, klen), true, c, 2, argv, lens,
                    n_deleted);
}

int ringkv_incr(struct ringkv *rk,
                const void *key,
                size_t klen,
                int64_t by,
                int64_t *result,
                const struct ringkv_call *c)
{
    if (!KEY_OK(key, klen)) {
        return RINGKV_EINVAL;
    }
    char num[24];
    const char *argv[3] = {"INCRBY", K(key), num};
    size_t lens[3] = {
        6, klen, (size_t)snprintf(num, sizeof(num), "%lld", (long long)by)};
    return call_int(rk, slot_of_key(key, klen), false, c, 3, argv, lens,
                    result);
}

int ringkv_expire(struct ringkv *rk,
                  const void *key,
                  size_t klen,
                  int64_t ttl_ms,
                  bool *was_set,
                  const struct ringkv_call *c)
{
    if (!KEY_OK(key, klen) || ttl_ms <= 0) {
        return RINGKV_EINVAL;
    }
    char num[24];
    const char *argv[3] = {"PEXPIRE", K(key), num};
    size_t lens[3] = {
        7, klen, (size_t)snprintf(num, sizeof(num), "%lld", (long long)ttl_ms)};
    int64_t n = 0;
    int rc = call_int(rk, slot_of_key(key, klen), true, c, 3, argv, lens, &n);
    if (rc == RINGKV_OK && was_set != NULL) {
        *was_set = n != 0;
    }
    return rc;
}

/* argv/lens for a multi-key command: name + n (or 2n) arguments. */
static int build_multi(const char *name,
                       size_t n,
                       const void *const *keys,
                       const size_t *klens,
                       const void *const *vals,
                       const size_t *vlens,
                       const char ***argv_out,
                       size_t **lens_out,
                       size_t *argc_out)
{
    size_t per = vals ? 2 : 1;
    if (n == 0 || keys == NULL || klens == NULL || n > (SIZE_MAX / 4) / per) {
        return RINGKV_EINVAL;
    }
    size_t argc = 1 + per * n;
    const char **argv = rk_malloc(argc * sizeof(*argv));
    size_t *lens = rk_malloc(argc * sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        rk_free(argv);
        rk_free(lens);
        return RINGKV_ENOMEM;
    }
    argv[0] = name;
    lens[0] = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (!KEY_OK(keys[i], klens[i]) ||
            (vals && (vlens == NULL || !KEY_OK(vals[i], vlens[i])))) {
            rk_free(argv);
            rk_free(lens);
            return RINGKV_EINVAL;
        }
        argv[1 + per * i] = keys[i] ? keys[i] : "";
        lens[1 + per * i] = klens[i];
        if (vals) {
            argv[2 + per * i] = vals[i] ? vals[i] : "";
            lens[2 + per * i] = vlens[i];
        }
    }
    *argv_out = argv;
    *lens_out = lens;
    *argc_out = argc;
    return RINGKV_OK;
}

int ringkv_mget(struct ringkv *rk,
                size_t n,
                const void *const *keys,
                const size_t *klens,
                struct ringkv_value **vals,
                const struct ringkv_call *c)
{
    const char **argv;
    size_t *lens, argc;
    if (vals == NULL) {
        return RINGKV_EINVAL;
    }
    int rc =
        build_multi("MGET", n, keys, klens, NULL, NULL, &argv, &lens, &argc);
    if (rc != RINGKV_OK) {
        return rc;
    }
    struct resp_value *v = NULL;
    rc =
        call(rk, slot_of_key(keys[0], klens[0]), true, c, argc, argv, lens, &v);
    rk_free(argv);
    rk_free(lens);
    if (rc != RINGKV_OK) {
        return finish(rk, rc);
    }
    rc = rkl_values_from_reply(v, n, vals);
    if (rc == RINGKV_EPROTO) {
        return unexpected(rk, v, "MGET");
    }
    resp_value_free(v);
    return finish(rk, rc);
}

int ringkv_mset(struct ringkv *rk,
                size_t n,
                const void *const *keys,
                const size_t *klens,
                const void *const *vals,
                const size_t *vlens,
                const struct ringkv_call *c)
{
    const char **argv;
    size_t *lens, argc;
    if (vals == NULL) {
        return RINGKV_EINVAL;
    }
    int rc =
        build_multi("MSET", n, keys, klens, vals, vlens, &argv, &lens, &argc);
    if (rc != RINGKV_OK) {
        return rc;
    }
    rc = call_ok(rk, slot_of_key(keys[0], klens[0]), true, c, argc, argv, lens);
    rk_free(argv);
    rk_free(lens);
    return rc;
}

int ringkv_getall(struct ringkv *rk,
                  const void *key,
                  size_t klen,
                  struct ringkv_siblings **out,
                  const struct ringkv_call *c)
{
    if (!KEY_OK(key, klen) || out == NULL) {
        return RINGKV_EINVAL;
    }
    const char *argv[2] = {"RINGKV.GETALL", K(key)};
    size_t lens[2] = {13, klen};
    struct resp_value *v = NULL;
    int rc = call(rk, slot_of_key(key, klen), true, c, 2, argv, lens, &v);
    if (rc != RINGKV_OK) {
        return finish(rk, rc);
    }
    rc = rkl_siblings_from_reply(v, out);
    if (rc == RINGKV_EPROTO) {
        return unexpected(rk, v, "RINGKV.GETALL");
    }
    resp_value_free(v);
    return finish(rk, rc);
}

int ringkv_put(struct ringkv *rk,
               const void *key,
               size_t klen,
               const char *context,
               size_t context_len,
               const void *val,
               size_t vlen,
               const struct ringkv_call *c)
{
    if (!KEY_OK(key, klen) || !KEY_OK(context, context_len) ||
        !KEY_OK(val, vlen)) {
        return RINGKV_EINVAL;
    }
    const char *argv[4] = {"RINGKV.PUT", K(key), context ? context : "",
                           val ? val : ""};
    size_t lens[4] = {10, klen, context_len, vlen};
    return call_ok(rk, slot_of_key(key, klen), false, c, 4, argv, lens);
}
