/*
 * ringkv.c - the blocking API of include/ringkv.h: the handle, its
 * connections (one per node, conn.c), topology refresh, and the retry
 * loop every call goes through (call()).  The routing (route.c), the
 * commands and their replies (cmd.c) and the retry policy (policy.c) are
 * shared with the asynchronous API (async.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "lib/internal.h"

#define ERRMSG_SIZE 512

struct ringkv
{
    struct ringkv_options o; /* ints only; the strings are in auth */
    struct rkl_auth auth;
    struct rkl_policy policy;
    struct rkl_route route; /* nodes[i].conn: struct rkl_conn * */
    struct ringkv_stats st;
    char errmsg[ERRMSG_SIZE];
    size_t server_text; /* errmsg + server_text: the server's error text
                           when the last call failed on an error reply;
                           0 = none */
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
    rkl_vformat_line(rk->errmsg, sizeof(rk->errmsg), fmt, ap);
    va_end(ap);
    rk->server_text = 0;
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

static void node_drop(struct rkl_node *n)
{
    rkl_conn_close(n->conn);
    n->conn = NULL;
}

/* Connects (and authenticates) node i if needed.  Nothing of the
 * caller's request is written here. */
static int node_connect(struct ringkv *rk, size_t i, int64_t deadline_ms)
{
    struct rkl_node *n = &rk->route.nodes[i];
    if (n->conn != NULL) {
        return RINGKV_OK;
    }
    int64_t now = rkl_now_ms();
    int64_t dl = now + rk->o.connect_timeout_ms;
    if (dl > deadline_ms) {
        dl = deadline_ms;
    }
    char err[256] = "";
    struct rkl_conn *conn = NULL;
    int rc = rkl_conn_open(&n->addr, dl, &conn, err, sizeof(err));
    if (rc != RINGKV_OK) {
        rkl_route_node_down(&rk->route, i, rkl_now_ms());
        seterr(rk, "%s: %s", n->name, err);
        return rc;
    }
    n->conn = conn;
    rk->st.connects++;
    n->down_until_ms = 0;
    if (rk->auth.password != NULL) {
        const char *argv[3];
        size_t lens[3];
        size_t argc = rkl_auth_argv(&rk->auth, argv, lens);
        struct resp_value *v = NULL;
        bool sent = false;
        rc = rkl_conn_request(conn, argc, argv, lens, dl, &sent, &v, err,
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

/* One request on node i, connecting first.  *sent as rkl_conn_request.
 * Error replies are RINGKV_OK with *reply of type RESP_ERROR. */
static int node_request(struct ringkv *rk,
                        size_t i,
                        const struct rkl_cmd *cmd,
                        int64_t deadline_ms,
                        bool *sent,
                        struct resp_value **reply)
{
    *sent = false;
    int rc = node_connect(rk, i, deadline_ms);
    if (rc != RINGKV_OK) {
        return rc;
    }
    struct rkl_node *n = &rk->route.nodes[i];
    char err[256] = "";
    rc = rkl_conn_request(n->conn, cmd->argc, cmd->argv, cmd->lens, deadline_ms,
                          sent, reply, err, sizeof(err));
    if (rc != RINGKV_OK) {
        seterr(rk, "%s: %s", n->name, err);
        node_drop(n);
    }
    return rc;
}

/* Reads the topology from a reachable node (rkl_route_refresh_order). */
static int refresh(struct ringkv *rk, int64_t deadline_ms)
{
    int rc = RINGKV_ENOTOPOLOGY;
    size_t *order = rk_malloc(rk->route.n_nodes * sizeof(*order));
    if (order == NULL) {
        return RINGKV_ENOMEM;
    }
    size_t n = rkl_route_refresh_order(&rk->route, rkl_now_ms(), order);
    struct rkl_cmd cmd;
    rkl_cmd_slots(&cmd);
    for (size_t k = 0; k < n; k++) {
        if (rkl_now_ms() >= deadline_ms) {
            rc = RINGKV_ETIMEDOUT;
            break;
        }
        struct resp_value *v = NULL;
        bool sent;
        rc = node_request(rk, order[k], &cmd, deadline_ms, &sent, &v);
        if (rc == RINGKV_OK) {
            char err[300] = "";
            rc = rkl_route_install(&rk->route, order[k], v, rkl_now_ms(), err,
                                   sizeof(err));
            resp_value_free(v);
            if (rc != RINGKV_OK) {
                seterr(rk, "%s", err);
            }
        }
        if (rc == RINGKV_OK || rc == RINGKV_EAUTH || rc == RINGKV_ENOMEM) {
            break;
        }
    }
    rk_free(order);
    return rc;
}

/*
 * The retry loop of every call: routes by the command's slot, sends it,
 * and returns RINGKV_OK with a non-error reply, or the error of the last
 * attempt.
 */
static int call(struct ringkv *rk,
                const struct rkl_cmd *cmd,
                const struct ringkv_call *c,
                struct resp_value **reply)
{
    rk->st.calls++;
    rk->errmsg[0] = '\0';
    rk->server_text = 0;
    unsigned flags = c ? c->flags : 0;
    int timeout = c && c->timeout_ms > 0 ? c->timeout_ms : rk->o.timeout_ms;
    int64_t start = rkl_now_ms();
    int64_t deadline = start + timeout;
    int rc = RINGKV_ENOTOPOLOGY;
    (void)rkl_route_refresh_due(&rk->route, start);
    for (int attempt = 1;; attempt++) {
        if (rk->route.refresh_needed) {
            /* best effort: the old topology still routes */
            (void)refresh(rk, deadline);
        }
        int64_t now = rkl_now_ms();
        int64_t budget =
            rkl_attempt_budget_ms(&rk->policy, attempt, deadline - now);
        size_t i = rkl_route_pick(&rk->route, cmd->slot, attempt, now);
        bool sent = false;
        struct resp_value *v = NULL;
        rk->st.attempts++;
        if (attempt > 1) {
            rk->st.retries++;
        }
        if (budget <= 0) {
            rc = RINGKV_ETIMEDOUT;
            seterr(rk, "timed out after %d ms", timeout);
        } else {
            rc = node_request(rk, i, cmd, now + budget, &sent, &v);
        }
        if (rc == RINGKV_OK && v->type == RESP_ERROR) {
            rc = rkl_error_code(v);
            sent = true;
            seterr(rk, "%s: %s", rk->route.nodes[i].name, v->str);
            rk->server_text = strlen(rk->route.nodes[i].name) + 2;
            resp_value_free(v);
            v = NULL;
        }
        if (rc == RINGKV_OK) {
            *reply = v;
            return RINGKV_OK;
        }
        int pause = 0;
        if (!rkl_route_retry(&rk->route, &rk->policy, attempt, rc, sent,
                             cmd->idempotent, flags, deadline - rkl_now_ms(),
                             &pause)) {
            break;
        }
        sleep_ms(pause);
    }
    rk->st.errors++;
    return rc;
}

/*
 * One API call: call() then the reply decoded into *res (rkl_result_fini
 * it).  Frees what the command allocated.
 */
static int run(struct ringkv *rk,
               struct rkl_cmd *cmd,
               const struct ringkv_call *c,
               struct ringkv_result *res)
{
    struct resp_value *v = NULL;
    memset(res, 0, sizeof(*res));
    int rc = call(rk, cmd, c, &v);
    rkl_cmd_fini(cmd);
    if (rc == RINGKV_OK) {
        rc = rkl_cmd_decode(cmd->op, cmd->n_keys, v, res);
        if (rc == RINGKV_EPROTO) {
            seterr(rk, "%s: unexpected reply type %d", rkl_op_name(cmd->op),
                   (int)v->type);
            rk->st.errors++;
        }
        resp_value_free(v);
    }
    if (rc != RINGKV_OK && rc != RINGKV_ENOTFOUND && rk->errmsg[0] == '\0') {
        seterr(rk, "%s", ringkv_strerror(rc));
    }
    return rc;
}

int ringkv_create(const struct ringkv_options *o,
                  struct ringkv **out,
                  char errbuf[256])
{
    if (errbuf != NULL) {
        errbuf[0] = '\0';
    }
    if (out == NULL || !rkl_options_valid(o)) {
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
    rkl_policy_from_options(&rk->policy, o);
    int rc = rkl_route_init(
        &rk->route, o->seeds, o->n_seeds, o->refresh_interval_ms, o->down_ms,
        (uint64_t)rkl_now_ms() * 0x9e3779b97f4a7c15ull ^ (uintptr_t)rk,
        rk->errmsg, sizeof(rk->errmsg));
    if (rc != RINGKV_OK) {
        goto fail;
    }
    if ((rc = rkl_auth_init(&rk->auth, o)) != RINGKV_OK) {
        goto fail;
    }
    rc =
        refresh(rk, rkl_now_ms() + (int64_t)rk->route.n_nodes *
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
    for (size_t i = 0; i < rk->route.n_nodes; i++) {
        node_drop(&rk->route.nodes[i]);
    }
    rkl_route_fini(&rk->route);
    rkl_auth_fini(&rk->auth);
    rk_free(rk);
}

const char *ringkv_last_error(const struct ringkv *rk)
{
    return rk->errmsg;
}

const char *ringkv_last_server_error(const struct ringkv *rk)
{
    return rk->server_text ? rk->errmsg + rk->server_text : "";
}

void ringkv_stats_get(const struct ringkv *rk, struct ringkv_stats *st)
{
    *st = rk->st;
    st->refreshes = rk->route.refreshes;
}

size_t ringkv_node_count(const struct ringkv *rk)
{
    return rk->route.topo.n_nodes;
}

const char *ringkv_node_addr(const struct ringkv *rk, size_t i)
{
    return rkl_route_topo_addr(&rk->route, i);
}

int ringkv_get(struct ringkv *rk,
               const void *key,
               size_t klen,
               char **val,
               size_t *vlen,
               const struct ringkv_call *c)
{
    struct rkl_cmd cmd;
    struct ringkv_result res;
    int rc = val == NULL ? RINGKV_EINVAL : rkl_cmd_get(&cmd, key, klen);
    if (rc != RINGKV_OK || (rc = run(rk, &cmd, c, &res)) != RINGKV_OK) {
        return rc;
    }
    *val = res.value.data;
    if (vlen != NULL) {
        *vlen = res.value.len;
    }
    return RINGKV_OK;
}

/* A call whose result is the integer, stored in *out when not NULL. */
static int run_int(struct ringkv *rk,
                   int rc,
                   struct rkl_cmd *cmd,
                   const struct ringkv_call *c,
                   int64_t *out)
{
    struct ringkv_result res;
    if (rc != RINGKV_OK || (rc = run(rk, cmd, c, &res)) != RINGKV_OK) {
        return rc;
    }
    if (out != NULL) {
        *out = res.integer;
    }
    return RINGKV_OK;
}

/* A call with no result but its outcome (+OK). */
static int run_ok(struct ringkv *rk,
                  int rc,
                  struct rkl_cmd *cmd,
                  const struct ringkv_call *c)
{
    struct ringkv_result res;
    return rc != RINGKV_OK ? rc : run(rk, cmd, c, &res);
}

int ringkv_set(struct ringkv *rk,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               int64_t ttl_ms,
               const struct ringkv_call *c)
{
    struct rkl_cmd cmd;
    return run_ok(rk, rkl_cmd_set(&cmd, key, klen, val, vlen, ttl_ms), &cmd, c);
}

int ringkv_del(struct ringkv *rk,
               const void *key,
               size_t klen,
               int64_t *n_deleted,
               const struct ringkv_call *c)
{
    struct rkl_cmd cmd;
    return run_int(rk, rkl_cmd_del(&cmd, key, klen), &cmd, c, n_deleted);
}

int ringkv_incr(struct ringkv *rk,
                const void *key,
                size_t klen,
                int64_t by,
                int64_t *result,
                const struct ringkv_call *c)
{
    struct rkl_cmd cmd;
    return run_int(rk, rkl_cmd_incr(&cmd, key, klen, by), &cmd, c, result);
}

int ringkv_expire(struct ringkv *rk,
                  const void *key,
                  size_t klen,
                  int64_t ttl_ms,
                  bool *was_set,
                  const struct ringkv_call *c)
{
    struct rkl_cmd cmd;
    int64_t n = 0;
    int rc = run_int(rk, rkl_cmd_expire(&cmd, key, klen, ttl_ms), &cmd, c, &n);
    if (rc == RINGKV_OK && was_set != NULL) {
        *was_set = n != 0;
    }
    return rc;
}

int ringkv_mget(struct ringkv *rk,
                size_t n,
                const void *const *keys,
                const size_t *klens,
                struct ringkv_value **vals,
                const struct ringkv_call *c)
{
    struct rkl_cmd cmd;
    struct ringkv_result res;
    int rc = vals == NULL ? RINGKV_EINVAL : rkl_cmd_mget(&cmd, n, keys, klens);
    if (rc != RINGKV_OK || (rc = run(rk, &cmd, c, &res)) != RINGKV_OK) {
        return rc;
    }
    *vals = res.values;
    return RINGKV_OK;
}

int ringkv_mset(struct ringkv *rk,
                size_t n,
                const void *const *keys,
                const size_t *klens,
                const void *const *vals,
                const size_t *vlens,
                const struct ringkv_call *c)
{
    struct rkl_cmd cmd;
    return run_ok(rk, rkl_cmd_mset(&cmd, n, keys, klens, vals, vlens), &cmd, c);
}

int ringkv_getall(struct ringkv *rk,
                  const void *key,
                  size_t klen,
                  struct ringkv_siblings **out,
                  const struct ringkv_call *c)
{
    struct rkl_cmd cmd;
    struct ringkv_result res;
    int rc = out == NULL ? RINGKV_EINVAL : rkl_cmd_getall(&cmd, key, klen);
    if (rc != RINGKV_OK || (rc = run(rk, &cmd, c, &res)) != RINGKV_OK) {
        return rc;
    }
    *out = res.siblings;
    return RINGKV_OK;
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
    struct rkl_cmd cmd;
    return run_ok(rk,
                  rkl_cmd_put(&cmd, key, klen, context, context_len, val, vlen),
                  &cmd, c);
}
