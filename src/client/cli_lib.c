/* cli_lib.c - the CLI's key-value verbs on libringkv; see cli_lib.h. */
#include "client/cli_lib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/error.h"

/* CLI connections wait for slow replies longer than the library's default
 * (a large MSET); every attempt of a call shares this deadline. */
#define CLI_LIB_TIMEOUT_MS 30000

static bool is(const char *w, const char *name)
{
    return strcasecmp(w, name) == 0;
}

/* A decimal int64 filling the whole argument. */
static bool parse_i64(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 20 || memchr(s, '\0', len) != NULL) {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end != s + len) {
        return false;
    }
    *out = v;
    return true;
}

bool cli__lib_parse(size_t argc,
                    char *const *argv,
                    const size_t *lens,
                    struct cli_lib_cmd *out)
{
    if (argc < 2) {
        return false;
    }
    struct cli_lib_cmd c = {.argc = argc, .argv = argv, .lens = lens};
    const char *name = argv[0];
    if (is(name, "get") && argc == 2) {
        c.op = CLI_LIB_GET;
    } else if (is(name, "del") && argc == 2) {
        c.op = CLI_LIB_DEL;
    } else if (is(name, "incr") && argc == 2) {
        c.op = CLI_LIB_INCR;
        c.by = 1;
    } else if (is(name, "incrby") && argc == 3 &&
               parse_i64(argv[2], lens[2], &c.by)) {
        c.op = CLI_LIB_INCR;
    } else if (is(name, "mget")) {
        c.op = CLI_LIB_MGET;
    } else if (is(name, "mset") && argc % 2 == 1) {
        c.op = CLI_LIB_MSET;
    } else if (is(name, "set") && argc == 3) {
        c.op = CLI_LIB_SET;
    } else if (is(name, "set") && argc == 5 &&
               (is(argv[3], "px") || is(argv[3], "ex")) &&
               parse_i64(argv[4], lens[4], &c.ttl_ms) && c.ttl_ms > 0 &&
               (is(argv[3], "px") || c.ttl_ms <= INT64_MAX / 1000)) {
        /* a bad expiry stays with the server, which says what is wrong */
        c.op = CLI_LIB_SET;
        c.ttl_ms *= is(argv[3], "ex") ? 1000 : 1;
    } else {
        return false;
    }
    *out = c;
    return true;
}

int cli__lib_open(const char *host,
                  int port,
                  const char *password,
                  struct ringkv **out,
                  char *why,
                  size_t size)
{
    char seed[300];
    snprintf(seed, sizeof(seed), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             port);
    const char *seeds[1] = {seed};
    struct ringkv_options o;
    ringkv_options_init(&o);
    o.seeds = seeds;
    o.n_seeds = 1;
    o.password = password;
    o.timeout_ms = CLI_LIB_TIMEOUT_MS;
    char err[256];
    int rc = ringkv_create(&o, out, err);
    if (rc != RINGKV_OK) {
        snprintf(why, size, "%s", err);
    }
    return rc;
}

static struct resp_value *value_new(enum resp_type type)
{
    struct resp_value *v = rk_calloc(1, sizeof(*v));
    if (v != NULL) {
        v->type = type;
    }
    return v;
}

/* v (a zeroed element or a new value) <- one of libringkv's strings,
 * whose ownership moves into v; NULL data is a nil. */
static void value_take(struct resp_value *v, char *data, size_t len)
{
    v->type = data != NULL ? RESP_BULK : RESP_NULL;
    v->str = data;
    v->len = len;
}

static int run_mget(struct ringkv *rk,
                    const struct cli_lib_cmd *c,
                    struct resp_value *v)
{
    size_t n = c->argc - 1;
    struct ringkv_value *vals = NULL;
    int rc = ringkv_mget(rk, n, (const void *const *)(c->argv + 1), c->lens + 1,
                         &vals, NULL);
    if (rc != RINGKV_OK) {
        return rc;
    }
    v->elems = rk_calloc(n, sizeof(*v->elems));
    if (v->elems == NULL) {
        ringkv_values_free(vals, n);
        return RINGKV_ENOMEM;
    }
    v->n = n;
    for (size_t i = 0; i < n; i++) {
        value_take(&v->elems[i], vals[i].data, vals[i].len);
    }
    rk_free(vals); /* the strings moved into v */
    return RINGKV_OK;
}

static int run_mset(struct ringkv *rk, const struct cli_lib_cmd *c)
{
    size_t n = (c->argc - 1) / 2;
    const void **keys = rk_malloc(n * sizeof(*keys));
    const void **vals = rk_malloc(n * sizeof(*vals));
    size_t *klens = rk_malloc(n * sizeof(*klens));
    size_t *vlens = rk_malloc(n * sizeof(*vlens));
    int rc = RINGKV_ENOMEM;
    if (keys != NULL && vals != NULL && klens != NULL && vlens != NULL) {
        for (size_t i = 0; i < n; i++) {
            keys[i] = c->argv[1 + 2 * i];
            klens[i] = c->lens[1 + 2 * i];
            vals[i] = c->argv[2 + 2 * i];
            vlens[i] = c->lens[2 + 2 * i];
        }
        rc = ringkv_mset(rk, n, keys, klens, vals, vlens, NULL);
    }
    rk_free(keys);
    rk_free(vals);
    rk_free(klens);
    rk_free(vlens);
    return rc;
}

/* Runs c into v (its type set by the caller for the success case). */
static int run_op(struct ringkv *rk,
                  const struct cli_lib_cmd *c,
                  struct resp_value *v)
{
    const char *key = c->argv[1];
    size_t klen = c->lens[1];
    char *val = NULL;
    size_t vlen = 0;
    int rc;
    switch (c->op) {
        case CLI_LIB_GET:
            rc = ringkv_get(rk, key, klen, &val, &vlen, NULL);
            if (rc == RINGKV_OK || rc == RINGKV_ENOTFOUND) {
                value_take(v, val, vlen);
                rc = RINGKV_OK;
            }
            return rc;
        case CLI_LIB_SET:
            v->type = RESP_SIMPLE;
            return ringkv_set(rk, key, klen, c->argv[2], c->lens[2], c->ttl_ms,
                              NULL);
        case CLI_LIB_DEL:
            v->type = RESP_INT;
            return ringkv_del(rk, key, klen, &v->integer, NULL);
        case CLI_LIB_INCR:
            v->type = RESP_INT;
            return ringkv_incr(rk, key, klen, c->by, &v->integer, NULL);
        case CLI_LIB_MGET:
            v->type = RESP_ARRAY;
            return run_mget(rk, c, v);
        case CLI_LIB_MSET:
            v->type = RESP_SIMPLE;
            return run_mset(rk, c);
    }
    return RINGKV_EINVAL;
}

int cli__lib_run(struct ringkv *rk,
                 const struct cli_lib_cmd *c,
                 struct resp_value **reply,
                 char *why,
                 size_t size)
{
    struct resp_value *v = value_new(RESP_NULL);
    if (v == NULL) {
        return RK_ENOMEM;
    }
    int rc = run_op(rk, c, v);
    const char *server = ringkv_last_server_error(rk);
    if (rc != RINGKV_OK && server[0] != '\0') {
        /* the server's own error reply, as the raw connection shows it */
        resp_value_free(v);
        v = value_new(RESP_ERROR);
        if (v == NULL) {
            return RK_ENOMEM;
        }
        v->len = strlen(server);
        v->str = rk_strndup(server, v->len);
        rc = v->str != NULL ? RINGKV_OK : RINGKV_ENOMEM;
    } else if (rc == RINGKV_OK && v->type == RESP_SIMPLE) {
        v->str = rk_strndup("OK", 2);
        v->len = 2;
        rc = v->str != NULL ? RINGKV_OK : RINGKV_ENOMEM;
    }
    if (rc != RINGKV_OK) {
        resp_value_free(v);
        if (rc == RINGKV_ENOMEM) {
            return RK_ENOMEM;
        }
        snprintf(why, size, "%s", ringkv_last_error(rk));
        return RK_EIO;
    }
    *reply = v;
    return RK_OK;
}
