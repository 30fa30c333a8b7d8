/* reply.c - server replies -> RINGKV_* codes and the API's structures
 * (internal.h).  Pure functions plus allocation. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "lib/internal.h"

static bool has_prefix(const struct resp_value *v, const char *p)
{
    size_t n = strlen(p);
    return v->len >= n && memcmp(v->str, p, n) == 0 &&
           (v->len == n || v->str[n] == ' ');
}

int rkl_error_code(const struct resp_value *v)
{
    if (v->type != RESP_ERROR || v->str == NULL) {
        return RINGKV_EPROTO;
    }
    if (has_prefix(v, "NOQUORUM")) {
        return RINGKV_ENOQUORUM;
    }
    if (has_prefix(v, "NOAUTH") || has_prefix(v, "WRONGPASS")) {
        return RINGKV_EAUTH;
    }
    return RINGKV_ESERVER;
}

void rkl_vformat_line(char *buf, size_t size, const char *fmt, va_list ap)
{
    vsnprintf(buf, size, fmt, ap);
    for (char *p = buf; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            *p = ' ';
        }
    }
}

static char *dup_bytes(const char *p, size_t len)
{
    char *s = rk_malloc(len + 1);
    if (s != NULL) {
        if (len > 0) {
            memcpy(s, p, len);
        }
        s[len] = '\0';
    }
    return s;
}

int rkl_value_from_reply(const struct resp_value *v, struct ringkv_value *out)
{
    if (v->type == RESP_NULL) {
        out->data = NULL;
        out->len = 0;
        return RINGKV_OK;
    }
    if (v->type != RESP_BULK && v->type != RESP_SIMPLE &&
        v->type != RESP_VERBATIM) {
        return RINGKV_EPROTO;
    }
    char *s = dup_bytes(v->str, v->len);
    if (s == NULL) {
        return RINGKV_ENOMEM;
    }
    out->data = s;
    out->len = v->len;
    return RINGKV_OK;
}

int rkl_values_from_reply(const struct resp_value *v,
                          size_t n,
                          struct ringkv_value **out)
{
    if (v->type != RESP_ARRAY || v->n != n || n == 0) {
        return RINGKV_EPROTO;
    }
    struct ringkv_value *vals = rk_calloc(n, sizeof(*vals));
    if (vals == NULL) {
        return RINGKV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = rkl_value_from_reply(&v->elems[i], &vals[i]);
        if (rc != RINGKV_OK) {
            ringkv_values_free(vals, n);
            return rc;
        }
    }
    *out = vals;
    return RINGKV_OK;
}

int rkl_siblings_from_reply(const struct resp_value *v,
                            struct ringkv_siblings **out)
{
    if (v->type != RESP_ARRAY || v->n != 2 ||
        (v->elems[0].type != RESP_BULK && v->elems[0].type != RESP_SIMPLE) ||
        v->elems[1].type != RESP_ARRAY) {
        return RINGKV_EPROTO;
    }
    const struct resp_value *list = &v->elems[1];
    for (size_t i = 0; i < list->n; i++) {
        const struct resp_value *e = &list->elems[i];
        if (e->type != RESP_ARRAY || e->n < 3 ||
            (e->elems[0].type != RESP_BULK && e->elems[0].type != RESP_NULL) ||
            e->elems[1].type != RESP_INT || e->elems[2].type != RESP_INT) {
            return RINGKV_EPROTO;
        }
    }
    struct ringkv_siblings *s = rk_calloc(1, sizeof(*s));
    if (s == NULL) {
        return RINGKV_ENOMEM;
    }
    s->context = dup_bytes(v->elems[0].str, v->elems[0].len);
    s->context_len = v->elems[0].len;
    if (s->context == NULL) {
        goto nomem;
    }
    if (list->n > 0) {
        s->items = rk_calloc(list->n, sizeof(*s->items));
        if (s->items == NULL) {
            goto nomem;
        }
    }
    for (size_t i = 0; i < list->n; i++) {
        const struct resp_value *e = &list->elems[i];
        if (rkl_value_from_reply(&e->elems[0], &s->items[i].value) !=
            RINGKV_OK) {
            goto nomem;
        }
        s->n = i + 1;
        s->items[i].hlc = (uint64_t)e->elems[1].integer;
        s->items[i].unix_ms = e->elems[2].integer;
    }
    *out = s;
    return RINGKV_OK;
nomem:
    ringkv_siblings_free(s);
    return RINGKV_ENOMEM;
}

void ringkv_free(void *p)
{
    rk_free(p);
}

void ringkv_values_free(struct ringkv_value *vals, size_t n)
{
    if (vals == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rk_free(vals[i].data);
    }
    rk_free(vals);
}

void ringkv_siblings_free(struct ringkv_siblings *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        rk_free(s->items[i].value.data);
    }
    rk_free(s->items);
    rk_free(s->context);
    rk_free(s);
}

static const char *const g_names[] = {
#define RINGKV__NAME(name, val, msg) [-(val)] = "RINGKV_" #name,
    RINGKV_ERRNO_MAP(RINGKV__NAME)
#undef RINGKV__NAME
};
static const char *const g_msgs[] = {
#define RINGKV__MSG(name, val, msg) [-(val)] = msg,
    RINGKV_ERRNO_MAP(RINGKV__MSG)
#undef RINGKV__MSG
};

const char *ringkv_strerror(int err)
{
    if (err == RINGKV_OK) {
        return "success";
    }
    if (err < 0 && (size_t)-err < sizeof(g_msgs) / sizeof(g_msgs[0]) &&
        g_msgs[-err] != NULL) {
        return g_msgs[-err];
    }
    return "unknown error";
}

const char *ringkv_errname(int err)
{
    if (err == RINGKV_OK) {
        return "RINGKV_OK";
    }
    if (err < 0 && (size_t)-err < sizeof(g_names) / sizeof(g_names[0]) &&
        g_names[-err] != NULL) {
        return g_names[-err];
    }
    return "RINGKV_UNKNOWN";
}
