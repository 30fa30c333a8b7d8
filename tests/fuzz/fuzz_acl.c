/*
 * fuzz_acl.c - libFuzzer target for the ACL rule language and the ACL
 * file parser (server/acl.h; TESTING.md B5: ACL SETUSER rules come from
 * clients and the ACL file from disk, so both see arbitrary bytes).
 *
 * Input: byte 0 holds flags (bit 0: the rules of a line are separated by
 * NUL bytes instead of spaces; bit 1: fail one allocation during the
 * SETUSER calls; bit 2: fail one during the file parse; bit 3: one
 * SETUSER call per rule, so that a bad rule does not void the rest of its
 * line) and byte 1 which allocation to fail (1..256).  The rest is lines:
 * each is ACL SETUSER on "alice", "bob" or "default" (picked by its first
 * byte), or ACL DELUSER of one of them while a reference is held.  The
 * whole input is also parsed as an ACL file.
 *
 * Checks: no crash, leak or sanitizer report; ACL SETUSER returns 0, -1
 * with an "Error in ACL SETUSER modifier" text, or -2 ("out of memory")
 * only when an allocation was failed; a failed call changes nothing (same
 * describe text, a new user is not created) and no call moves a user;
 * every user's describe text, applied after "reset" to a fresh user,
 * gives the same text and the same behaviour (commands, keys, passwords,
 * flags); the ACL file text is a fixed point of format -> parse -> format,
 * for the table the rules built and for the one parsed from the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "server/acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* ---- an allocator that fails one chosen allocation ---------------------- */

struct fail_heap
{
    bool armed; /* counting allocations */
    long left;  /* allocations until the one that fails */
    bool fired; /* it failed (since the last reset) */
};

static struct fail_heap g_fail;

static bool should_fail(void)
{
    if (g_fail.armed && --g_fail.left == 0) {
        g_fail.armed = false;
        g_fail.fired = true;
        return true;
    }
    return false;
}

static void *fh_malloc(void *data, size_t size)
{
    (void)data;
    return should_fail() ? NULL : malloc(size);
}

static void *fh_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return should_fail() ? NULL : calloc(n, size);
}

static void *fh_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return should_fail() ? NULL : realloc(ptr, size);
}

static void fh_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static const struct rk_allocator g_fail_alloc = {
    .malloc_fn = fh_malloc,
    .calloc_fn = fh_calloc,
    .realloc_fn = fh_realloc,
    .free_fn = fh_free,
};

/* ---- a small catalog --------------------------------------------------- */

#define CAT(c) (1u << ACL_CAT_##c)

static const struct acl_catalog_entry g_entries[] = {
    {"get", CAT(READ) | CAT(STRING) | CAT(FAST), -1},
    {"set", CAT(WRITE) | CAT(STRING) | CAT(SLOW), -1},
    {"del", CAT(KEYSPACE) | CAT(WRITE) | CAT(SLOW), -1},
    {"keys", CAT(KEYSPACE) | CAT(READ) | CAT(SLOW) | CAT(DANGEROUS), -1},
    {"info", CAT(SLOW) | CAT(DANGEROUS), -1},
    {"incr", CAT(WRITE) | CAT(STRING) | CAT(FAST), -1},
    {"config", 0, -1},
    {"config|get", CAT(ADMIN) | CAT(SLOW) | CAT(DANGEROUS), 6},
    {"config|set", CAT(ADMIN) | CAT(SLOW) | CAT(DANGEROUS), 6},
    {"client", 0, -1},
    {"client|list", CAT(ADMIN) | CAT(SLOW) | CAT(DANGEROUS) | CAT(CONNECTION),
     9},
};

static const struct acl_catalog g_cat = {
    sizeof(g_entries) / sizeof(g_entries[0]), g_entries};

static const char *const g_names[] = {"alice", "bob", "default"};

/* ---- helpers ------------------------------------------------------------ */

/* The describe text of u, NUL-terminated; free with rk_buf_fini. */
static void describe(const struct acl_user *u, struct rk_buf *b)
{
    rk_buf_init(b);
    CHECK(acl_user_describe(u, b) == RK_OK);
    CHECK(rk_buf_append(b, "", 1) == RK_OK);
    b->len--;
}

static void format(const struct acl *a, struct rk_buf *b)
{
    rk_buf_init(b);
    CHECK(acl_file_format(a, b) == RK_OK);
    CHECK(rk_buf_append(b, "", 1) == RK_OK);
    b->len--;
}

static bool buf_equal(const struct rk_buf *x, const struct rk_buf *y)
{
    return x->len == y->len && memcmp(x->base, y->base, x->len) == 0;
}

/* u and v allow the same things, probed by a few keys and passwords. */
static void check_same_behaviour(const struct acl_user *u,
                                 const struct acl_user *v)
{
    static const char *const probes[] = {"",  "a",      "k1",    "*",
                                         "x", "user:1", "secret"};
    CHECK(strcmp(acl_user_name(u), acl_user_name(v)) == 0);
    CHECK(acl_user_enabled(u) == acl_user_enabled(v));
    CHECK(acl_user_nopass(u) == acl_user_nopass(v));
    CHECK(acl_user_all_keys(u) == acl_user_all_keys(v));
    CHECK(acl_user_password_count(u) == acl_user_password_count(v));
    for (size_t i = 0; i < g_cat.n; i++) {
        CHECK(acl_user_can_run(u, i) == acl_user_can_run(v, i));
    }
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        const char *p = probes[i];
        size_t len = strlen(p);
        CHECK(acl_user_check_password(u, p, len) ==
              acl_user_check_password(v, p, len));
        for (unsigned need = 0; need < 4; need++) {
            CHECK(acl_user_can_key(u, p, len, need) ==
                  acl_user_can_key(v, p, len, need));
        }
    }
}

/* The ACL GETUSER parts are the ones in the describe text d. */
static void check_parts(const struct acl_user *u, const struct rk_buf *d)
{
    struct rk_buf p;
    rk_buf_init(&p);
    CHECK(rk_buf_append(&p, " ", 1) == RK_OK);
    CHECK(acl_user_describe_commands(u, &p) == RK_OK);
    CHECK(d->len > p.len &&
          memcmp(d->base + d->len - p.len, p.base, p.len) == 0);
    rk_buf_clear(&p);
    CHECK(rk_buf_append(&p, " ", 1) == RK_OK);
    CHECK(acl_user_describe_keys(u, &p) == RK_OK);
    CHECK(rk_buf_append(&p, " ", 2) == RK_OK);
    CHECK(p.len == 3 || strstr(d->base, p.base) != NULL);
    rk_buf_clear(&p);
    CHECK(rk_buf_append(&p, " ", 1) == RK_OK);
    CHECK(acl_user_describe_channels(u, &p) == RK_OK);
    CHECK(rk_buf_append(&p, " ", 2) == RK_OK);
    CHECK(strstr(d->base, p.len == 3 ? " resetchannels " : p.base) != NULL);
    for (size_t i = 0; i < acl_user_password_count(u); i++) {
        char hex[65];
        acl_user_password_hex(u, i, hex);
        CHECK(strstr(d->base, hex) != NULL);
    }
    rk_buf_fini(&p);
}

/* "reset" + u's describe text, applied to a fresh user of the same name,
 * gives the same text and behaviour. */
static void check_replay(const struct acl_user *u)
{
    struct rk_buf d;
    describe(u, &d);
    check_parts(u, &d);
    size_t cap = 2;
    for (size_t i = 0; i < d.len; i++) {
        cap += d.base[i] == ' ';
    }
    const char **tok = malloc(cap * sizeof(*tok));
    size_t *len = malloc(cap * sizeof(*len));
    CHECK(tok != NULL && len != NULL);
    size_t n = 0;
    tok[n] = "reset";
    len[n++] = 5;
    for (size_t i = 0; i < d.len;) {
        size_t j = i;
        while (j < d.len && d.base[j] != ' ') {
            j++;
        }
        CHECK(n < cap);
        tok[n] = d.base + i;
        len[n++] = j - i;
        i = j + 1;
    }
    struct acl *t = acl_create(&g_cat);
    CHECK(t != NULL);
    const char *name = acl_user_name(u);
    char err[512];
    int rc = acl_setuser(t, name, strlen(name), n, tok, len, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "replay of '%s' failed: %s\n", d.base, err);
    }
    CHECK(rc == 0);
    struct acl_user *v = acl_user_find(t, name, strlen(name));
    CHECK(v != NULL);
    struct rk_buf d2;
    describe(v, &d2);
    if (!buf_equal(&d, &d2)) {
        fprintf(stderr, "describe '%s' replays as '%s'\n", d.base, d2.base);
    }
    CHECK(buf_equal(&d, &d2));
    check_same_behaviour(u, v);
    rk_buf_fini(&d2);
    acl_free(t);
    free(tok);
    free(len);
    rk_buf_fini(&d);
}

/* format -> parse -> format gives the same text and the same users. */
static void check_file_fixed_point(const struct acl *a)
{
    struct rk_buf f1, f2;
    format(a, &f1);
    bool named_default = false;
    char err[512];
    struct acl *b = acl_file_parse(&g_cat, f1.base, f1.len, &named_default, err,
                                   sizeof(err));
    if (b == NULL) {
        fprintf(stderr, "parse of formatted text failed: %s\n", err);
    }
    CHECK(b != NULL);
    CHECK(named_default); /* the format always names default */
    format(b, &f2);
    CHECK(buf_equal(&f1, &f2));
    CHECK(acl_user_count(a) == acl_user_count(b));
    for (size_t i = 0; i < acl_user_count(a); i++) {
        check_same_behaviour(acl_user_at(a, i), acl_user_at(b, i));
    }
    acl_free(b);
    rk_buf_fini(&f1);
    rk_buf_fini(&f2);
}

/* ---- the phases --------------------------------------------------------- */

/* ACL DELUSER of `name` while a reference is held: the user stays
 * readable until the unref. */
static void delete_user(struct acl *a, const char *name)
{
    struct acl_user *u = acl_user_find(a, name, strlen(name));
    int rc = acl_deluser(a, name, strlen(name));
    if (strcmp(name, "default") == 0) {
        CHECK(rc == -1);
        return;
    }
    CHECK(rc == (u != NULL));
    CHECK(acl_user_find(a, name, strlen(name)) == NULL);
}

/* What byte 0 of the input asks for. */
struct mode
{
    char sep;      /* between the rules of a line: ' ' or '\0' */
    bool fail;     /* fail one allocation during the SETUSER calls */
    bool per_rule; /* one SETUSER call per rule instead of per line */
};

/* One ACL SETUSER call with rules tok[0..n), and the checks on it. */
static void setuser_call(struct acl *a,
                         const char *name,
                         size_t n,
                         const char *const *tok,
                         const size_t *tlen,
                         bool fail)
{
    size_t nlen = strlen(name);
    struct acl_user *before = acl_user_find(a, name, nlen);
    size_t count = acl_user_count(a);
    struct rk_buf d0;
    rk_buf_init(&d0);
    if (before != NULL) {
        describe(before, &d0);
    }
    char err[512];
    g_fail.armed = fail && !g_fail.fired;
    bool fired = g_fail.fired;
    int rc = acl_setuser(a, name, nlen, n, tok, tlen, err, sizeof(err));
    g_fail.armed = false;
    bool fired_now = g_fail.fired && !fired;
    CHECK(rc == 0 || rc == -1 || (rc == -2 && fired_now));
    struct acl_user *after = acl_user_find(a, name, nlen);
    CHECK(before == NULL || after == before); /* users never move */
    if (rc == 0) {
        CHECK(after != NULL);
    } else {
        CHECK(after == before);
        CHECK(acl_user_count(a) == count);
        if (rc == -1) {
            static const char prefix[] = "Error in ACL SETUSER modifier '";
            CHECK(strncmp(err, prefix, sizeof(prefix) - 1) == 0);
        } else {
            CHECK(strcmp(err, "out of memory") == 0);
        }
        if (before != NULL) {
            struct rk_buf d1;
            describe(before, &d1);
            CHECK(buf_equal(&d0, &d1));
            rk_buf_fini(&d1);
        }
    }
    rk_buf_fini(&d0);
}

/* The rules of line[0..len): one SETUSER call, or one per rule. */
static void setuser_line(struct acl *a,
                         const char *name,
                         const uint8_t *line,
                         size_t len,
                         const struct mode *m)
{
    const char **tok = malloc((len + 1) * sizeof(*tok));
    size_t *tlen = malloc((len + 1) * sizeof(*tlen));
    CHECK(tok != NULL && tlen != NULL);
    size_t n = 0;
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && line[j] != (uint8_t)m->sep) {
            j++;
        }
        /* empty rules only between NUL separators, where they are wanted */
        if (j > i || (m->sep == '\0' && j < len)) {
            tok[n] = (const char *)line + i;
            tlen[n++] = j - i;
        }
        i = j + 1;
    }
    if (m->per_rule) {
        for (size_t i = 0; i < n; i++) {
            setuser_call(a, name, 1, tok + i, tlen + i, m->fail);
        }
    } else {
        setuser_call(a, name, n, tok, tlen, m->fail);
    }
    free(tok);
    free(tlen);
}

static void fuzz_rules(const uint8_t *data, size_t size, const struct mode *m)
{
    struct acl *a = acl_create(&g_cat);
    CHECK(a != NULL);
    struct acl_user *held = NULL; /* a user deleted while referenced */
    size_t off = 0;
    while (off < size) {
        const uint8_t *line = data + off;
        const uint8_t *nl = memchr(line, '\n', size - off);
        size_t len = nl ? (size_t)(nl - line) : size - off;
        off += len + (nl != NULL);
        if (len == 0) {
            continue;
        }
        const char *name = g_names[(line[0] & 0x7f) % 3];
        if (line[0] & 0x80) {
            /* ACL DELUSER while a client holds the user */
            struct acl_user *u = acl_user_find(a, name, strlen(name));
            if (u != NULL && held == NULL && strcmp(name, "default") != 0) {
                acl_user_ref(u);
                held = u;
            }
            delete_user(a, name);
            continue;
        }
        setuser_line(a, name, line + 1, len - 1, m);
    }
    if (held != NULL) {
        check_replay(held); /* still readable */
        acl_user_unref(held);
    }
    for (size_t i = 0; i < acl_user_count(a); i++) {
        check_replay(acl_user_at(a, i));
    }
    check_file_fixed_point(a);
    acl_free(a);
}

static void fuzz_file(const uint8_t *data, size_t size, bool fail)
{
    bool named_default = false;
    char err[512];
    err[0] = '\0';
    g_fail.armed = fail && !g_fail.fired;
    bool fired = g_fail.fired;
    struct acl *a = acl_file_parse(&g_cat, (const char *)data, size,
                                   &named_default, err, sizeof(err));
    g_fail.armed = false;
    bool fired_now = g_fail.fired && !fired;
    if (a == NULL) {
        CHECK(strncmp(err, "line ", 5) == 0 ||
              (fired_now && strcmp(err, "out of memory") == 0));
        CHECK(fired_now || strstr(err, "out of memory") == NULL);
        return;
    }
    CHECK(acl_default_user(a) != NULL);
    for (size_t i = 0; i < acl_user_count(a); i++) {
        check_replay(acl_user_at(a, i));
    }
    check_file_fixed_point(a);
    acl_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool installed;
    if (!installed) {
        rk_set_allocator(&g_fail_alloc);
        installed = true;
    }
    memset(&g_fail, 0, sizeof(g_fail));
    if (size < 2) {
        return 0;
    }
    unsigned flags = data[0];
    g_fail.left = (long)data[1] + 1;
    struct mode m = {
        .sep = flags & 1 ? '\0' : ' ',
        .fail = flags & 2,
        .per_rule = flags & 8,
    };
    fuzz_rules(data + 2, size - 2, &m);
    memset(&g_fail, 0, sizeof(g_fail));
    g_fail.left = (long)data[1] + 1;
    fuzz_file(data, size, flags & 4);
    return 0;
}
