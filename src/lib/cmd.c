/*
 * cmd.c - each API call's command and the decoding of its reply
 * (internal.h), one table of behaviour for the blocking (ringkv.c) and
 * the asynchronous (async.c) API.  Pure functions plus allocation.
 */
#include <stdio.h>
#include <string.h>

#include "cluster/slot.h"
#include "common/alloc.h"
#include "lib/internal.h"

#define KEY_OK(key, klen) ((key) != NULL || (klen) == 0)
#define K(key)            ((key) != NULL ? (const char *)(key) : "")

static const char *const g_op_names[] = {
    [RKL_OP_GET] = "GET",        [RKL_OP_SET] = "SET",
    [RKL_OP_DEL] = "DEL",        [RKL_OP_INCR] = "INCRBY",
    [RKL_OP_EXPIRE] = "PEXPIRE", [RKL_OP_MGET] = "MGET",
    [RKL_OP_MSET] = "MSET",      [RKL_OP_GETALL] = "RINGKV.GETALL",
    [RKL_OP_PUT] = "RINGKV.PUT", [RKL_OP_SLOTS] = "CLUSTER",
};

const char *rkl_op_name(enum rkl_op op)
{
    return g_op_names[op];
}

/* Starts *c: op, its name as argv[0], the slot of `key`. */
static void cmd_start(struct rkl_cmd *c,
                      enum rkl_op op,
                      bool idempotent,
                      const void *key,
                      size_t klen)
{
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->idempotent = idempotent;
    c->slot = slot_of_key(key, klen);
    c->argv = c->small_argv;
    c->lens = c->small_lens;
    c->argv[0] = g_op_names[op];
    c->lens[0] = strlen(g_op_names[op]);
    c->argv[1] = K(key);
    c->lens[1] = klen;
    c->argc = 2;
}

static void cmd_push(struct rkl_cmd *c, const void *p, size_t len)
{
    c->argv[c->argc] = K(p);
    c->lens[c->argc++] = len;
}

static void cmd_push_num(struct rkl_cmd *c, int64_t v)
{
    int n = snprintf(c->num, sizeof(c->num), "%lld", (long long)v);
    cmd_push(c, c->num, (size_t)n);
}

int rkl_cmd_get(struct rkl_cmd *c, const void *key, size_t klen)
{
    if (!KEY_OK(key, klen)) {
        return RINGKV_EINVAL;
    }
    cmd_start(c, RKL_OP_GET, true, key, klen);
    return RINGKV_OK;
}

int rkl_cmd_set(struct rkl_cmd *c,
                const void *key,
                size_t klen,
                const void *val,
                size_t vlen,
                int64_t ttl_ms)
{
    if (!KEY_OK(key, klen) || !KEY_OK(val, vlen) || ttl_ms < 0) {
        return RINGKV_EINVAL;
    }
    cmd_start(c, RKL_OP_SET, true, key, klen);
    cmd_push(c, val, vlen);
    if (ttl_ms > 0) {
        cmd_push(c, "PX", 2);
        cmd_push_num(c, ttl_ms);
    }
    return RINGKV_OK;
}

int rkl_cmd_del(struct rkl_cmd *c, const void *key, size_t klen)
{
    if (!KEY_OK(key, klen)) {
        return RINGKV_EINVAL;
    }
    cmd_start(c, RKL_OP_DEL, true, key, klen);
    return RINGKV_OK;
}

int rkl_cmd_incr(struct rkl_cmd *c, const void *key, size_t klen, int64_t by)
{
    if (!KEY_OK(key, klen)) {
        return RINGKV_EINVAL;
    }
    cmd_start(c, RKL_OP_INCR, false, key, klen);
    cmd_push_num(c, by);
    return RINGKV_OK;
}

int rkl_cmd_expire(struct rkl_cmd *c,
                   const void *key,
                   size_t klen,
                   int64_t ttl_ms)
{
    if (!KEY_OK(key, klen) || ttl_ms <= 0) {
        return RINGKV_EINVAL;
    }
    cmd_start(c, RKL_OP_EXPIRE, true, key, klen);
    cmd_push_num(c, ttl_ms);
    return RINGKV_OK;
}

/* MGET / MSET: name + n keys (or n key-value pairs) in owned arrays. */
static int cmd_multi(struct rkl_cmd *c,
                     enum rkl_op op,
                     size_t n,
                     const void *const *keys,
                     const size_t *klens,
                     const void *const *vals,
                     const size_t *vlens)
{
    size_t per = op == RKL_OP_MSET ? 2 : 1;
    if (n == 0 || keys == NULL || klens == NULL || n > (SIZE_MAX / 4) / per ||
        (per == 2 && (vals == NULL || vlens == NULL))) {
        return RINGKV_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!KEY_OK(keys[i], klens[i]) ||
            (per == 2 && !KEY_OK(vals[i], vlens[i]))) {
            return RINGKV_EINVAL;
        }
    }
    size_t argc = 1 + per * n;
    const char **argv = rk_malloc(argc * sizeof(*argv));
    size_t *lens = rk_malloc(argc * sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        rk_free(argv);
        rk_free(lens);
        return RINGKV_ENOMEM;
    }
    cmd_start(c, op, true, keys[0], klens[0]);
    argv[0] = c->argv[0];
    lens[0] = c->lens[0];
    c->argv = argv;
    c->lens = lens;
    c->argc = 1;
    c->n_keys = n;
    for (size_t i = 0; i < n; i++) {
        cmd_push(c, keys[i], klens[i]);
        if (per == 2) {
            cmd_push(c, vals[i], vlens[i]);
        }
    }
    return RINGKV_OK;
}

int rkl_cmd_mget(struct rkl_cmd *c,
                 size_t n,
                 const void *const *keys,
                 const size_t *klens)
{
    return cmd_multi(c, RKL_OP_MGET, n, keys, klens, NULL, NULL);
}

int rkl_cmd_mset(struct rkl_cmd *c,
                 size_t n,
                 const void *const *keys,
                 const size_t *klens,
                 const void *const *vals,
                 const size_t *vlens)
{
    return cmd_multi(c, RKL_OP_MSET, n, keys, klens, vals, vlens);
}

int rkl_cmd_getall(struct rkl_cmd *c, const void *key, size_t klen)
{
    if (!KEY_OK(key, klen)) {
        return RINGKV_EINVAL;
    }
    cmd_start(c, RKL_OP_GETALL, true, key, klen);
    return RINGKV_OK;
}

int rkl_cmd_put(struct rkl_cmd *c,
                const void *key,
                size_t klen,
                const char *context,
                size_t context_len,
                const void *val,
                size_t vlen)
{
    if (!KEY_OK(key, klen) || !KEY_OK(context, context_len) ||
        !KEY_OK(val, vlen)) {
        return RINGKV_EINVAL;
    }
    cmd_start(c, RKL_OP_PUT, false, key, klen);
    cmd_push(c, context, context_len);
    cmd_push(c, val, vlen);
    return RINGKV_OK;
}

void rkl_cmd_slots(struct rkl_cmd *c)
{
    cmd_start(c, RKL_OP_SLOTS, true, NULL, 0);
    c->argv[1] = "SLOTS";
    c->lens[1] = 5;
}

void rkl_cmd_fini(struct rkl_cmd *c)
{
    if (c->argv != c->small_argv) {
        rk_free(c->argv);
        rk_free(c->lens);
    }
    c->argv = NULL;
    c->lens = NULL;
    c->argc = 0;
}

int rkl_auth_init(struct rkl_auth *a, const struct ringkv_options *o)
{
    a->username = a->password = NULL;
    if ((o->username &&
         !(a->username = rk_strndup(o->username, strlen(o->username)))) ||
        (o->password &&
         !(a->password = rk_strndup(o->password, strlen(o->password))))) {
        return RINGKV_ENOMEM;
    }
    return RINGKV_OK;
}

void rkl_auth_fini(struct rkl_auth *a)
{
    rk_free(a->username);
    rk_free(a->password);
    a->username = a->password = NULL;
}

size_t rkl_auth_argv(const struct rkl_auth *a,
                     const char *argv[3],
                     size_t lens[3])
{
    size_t argc = 0;
    argv[argc] = "AUTH";
    lens[argc++] = 4;
    if (a->username != NULL) {
        argv[argc] = a->username;
        lens[argc++] = strlen(a->username);
    }
    argv[argc] = a->password;
    lens[argc++] = strlen(a->password);
    return argc;
}

int rkl_cmd_decode(enum rkl_op op,
                   size_t n_keys,
                   const struct resp_value *v,
                   struct ringkv_result *res)
{
    memset(res, 0, sizeof(*res));
    res->errmsg = "";
    int rc = RINGKV_EPROTO;
    switch (op) {
        case RKL_OP_GET:
            rc = v->type == RESP_NULL ? RINGKV_ENOTFOUND
                                      : rkl_value_from_reply(v, &res->value);
            break;
        case RKL_OP_SET:
        case RKL_OP_MSET:
        case RKL_OP_PUT:
            rc = v->type == RESP_SIMPLE ? RINGKV_OK : RINGKV_EPROTO;
            break;
        case RKL_OP_DEL:
        case RKL_OP_INCR:
        case RKL_OP_EXPIRE:
            if (v->type == RESP_INT) {
                res->integer = v->integer;
                rc = RINGKV_OK;
            }
            break;
        case RKL_OP_MGET:
            rc = rkl_values_from_reply(v, n_keys, &res->values);
            res->n_values = rc == RINGKV_OK ? n_keys : 0;
            break;
        case RKL_OP_GETALL:
            rc = rkl_siblings_from_reply(v, &res->siblings);
            break;
        case RKL_OP_SLOTS:
            break;
    }
    res->err = rc;
    return rc;
}

void rkl_result_fini(struct ringkv_result *res)
{
    ringkv_free(res->value.data);
    res->value.data = NULL;
    ringkv_values_free(res->values, res->n_values);
    res->values = NULL;
    res->n_values = 0;
    ringkv_siblings_free(res->siblings);
    res->siblings = NULL;
}
