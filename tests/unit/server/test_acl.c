/*
 * test_acl.c - server/acl: ACL users with Redis 7's rule language, through
 * the public API of acl.h only.  A small fake command catalog stands in
 * for the server's; the tests cover the default user, every rule and its
 * Redis error text, all-or-nothing SETUSER, user lifetimes (references,
 * DELUSER, acl_free), password / command / key checks, the describe
 * texts and the ACL_MAX_* bounds, user names, the ACL file's text (parse,
 * format, round trip), ACL LOG, and allocation-failure loops over
 * acl_create, acl_setuser, acl_file_parse, acl_log_add and describe
 * (STYLE.md 1.7).  Run under ASan+UBSan (make unit) it also proves that a
 * deleted user is freed exactly at its last unref.
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "server/acl.h"

/* ---- a counting, failing allocator (raft test/lib/heap.h) ------------- */

struct test_heap
{
    long calls;   /* allocation calls (malloc, calloc, realloc) */
    long fail_at; /* fail the Nth call, 1-based; 0 = never */
    long live;    /* blocks not yet freed */
};

#define HEAP_HDR 16 /* keeps max_align_t alignment */

static struct test_heap g_heap;

static bool heap_should_fail(struct test_heap *h)
{
    h->calls++;
    return h->fail_at != 0 && h->calls == h->fail_at;
}

static void *heap_malloc(void *data, size_t size)
{
    struct test_heap *h = data;
    if (heap_should_fail(h)) {
        return NULL;
    }
    char *p = malloc(size + HEAP_HDR);
    if (p == NULL) {
        return NULL;
    }
    h->live++;
    return p + HEAP_HDR;
}

static void *heap_calloc(void *data, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = heap_malloc(data, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

static void heap_free(void *data, void *ptr)
{
    struct test_heap *h = data;
    h->live--;
    free((char *)ptr - HEAP_HDR);
}

static void *heap_realloc(void *data, void *ptr, size_t size)
{
    struct test_heap *h = data;
    if (ptr == NULL) {
        return heap_malloc(data, size);
    }
    if (heap_should_fail(h)) {
        return NULL;
    }
    char *p = realloc((char *)ptr - HEAP_HDR, size + HEAP_HDR);
    return p == NULL ? NULL : p + HEAP_HDR;
}

static const struct rk_allocator g_heap_alloc = {
    .data = &g_heap,
    .malloc_fn = heap_malloc,
    .calloc_fn = heap_calloc,
    .realloc_fn = heap_realloc,
    .free_fn = heap_free,
};

/* Every allocation of the test from here on goes through g_heap, so that
 * blocks are freed by the allocator that made them. */
static void heap_install(void)
{
    memset(&g_heap, 0, sizeof(g_heap));
    rk_set_allocator(&g_heap_alloc);
}

/* Fails the n-th allocation from now (n >= 1). */
static void heap_fail_in(long n)
{
    g_heap.fail_at = g_heap.calls + n;
}

static int teardown(void **state)
{
    (void)state;
    rk_set_allocator(NULL);
    return 0;
}

/* ---- a fake catalog ------------------------------------------------------ */

enum
{
    ID_GET,
    ID_SET,
    ID_DEL,
    ID_KEYS,
    ID_INFO,
    ID_INCR,
    ID_CONFIG,
    ID_CONFIG_GET,
    ID_CONFIG_SET,
    ID_CLIENT,
    ID_CLIENT_LIST,
    N_IDS
};

#define CAT(c) (1u << ACL_CAT_##c)

static const struct acl_catalog_entry g_entries[N_IDS] = {
    [ID_GET] = {"get", CAT(READ) | CAT(STRING) | CAT(FAST), -1},
    [ID_SET] = {"set", CAT(WRITE) | CAT(STRING) | CAT(SLOW), -1},
    [ID_DEL] = {"del", CAT(KEYSPACE) | CAT(WRITE) | CAT(SLOW), -1},
    [ID_KEYS] = {"keys", CAT(KEYSPACE) | CAT(READ) | CAT(SLOW) | CAT(DANGEROUS),
                 -1},
    [ID_INFO] = {"info", CAT(SLOW) | CAT(DANGEROUS), -1},
    [ID_INCR] = {"incr", CAT(WRITE) | CAT(STRING) | CAT(FAST), -1},
    [ID_CONFIG] = {"config", 0, -1},
    [ID_CONFIG_GET] = {"config|get", CAT(ADMIN) | CAT(SLOW) | CAT(DANGEROUS),
                       ID_CONFIG},
    [ID_CONFIG_SET] = {"config|set", CAT(ADMIN) | CAT(SLOW) | CAT(DANGEROUS),
                       ID_CONFIG},
    [ID_CLIENT] = {"client", 0, -1},
    [ID_CLIENT_LIST] = {"client|list",
                        CAT(ADMIN) | CAT(SLOW) | CAT(DANGEROUS) |
                            CAT(CONNECTION),
                        ID_CLIENT},
};

static const struct acl_catalog g_cat = {N_IDS, g_entries};

/* SHA-256 of "secret", of "x" and of "" (sha256sum) */
#define SECRET_HEX \
    "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
#define X_HEX "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
#define EMPTY_HEX \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define ERR_PREFIX  "Error in ACL SETUSER modifier '"
#define ERR_UNKNOWN "Unknown command or category name in ACL"

/* ---- helpers ------------------------------------------------------------- */

static char g_err[1024]; /* the last error text */

#define MAX_TOKENS 64

/* Applies the space-separated rules of `rules` to user `name`. */
static int setuser(struct acl *a, const char *name, const char *rules)
{
    const char *tok[MAX_TOKENS];
    size_t len[MAX_TOKENS];
    size_t n = 0;
    for (const char *p = rules; *p != '\0';) {
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *s = p;
        while (*p != '\0' && *p != ' ') {
            p++;
        }
        assert_true(n < MAX_TOKENS);
        tok[n] = s;
        len[n++] = (size_t)(p - s);
    }
    g_err[0] = '\0';
    return acl_setuser(a, name, strlen(name), n, tok, len, g_err,
                       sizeof(g_err));
}

/* Applies the one rule `rule` (which may contain spaces). */
static int setuser1(struct acl *a, const char *name, const char *rule)
{
    size_t len = strlen(rule);
    g_err[0] = '\0';
    return acl_setuser(a, name, strlen(name), 1, &rule, &len, g_err,
                       sizeof(g_err));
}

static struct acl_user *find(const struct acl *a, const char *name)
{
    return acl_user_find(a, name, strlen(name));
}

static bool can_key(const struct acl_user *u, const char *key, unsigned need)
{
    return acl_user_can_key(u, key, strlen(key), need);
}

static bool check_pw(const struct acl_user *u, const char *pw)
{
    return acl_user_check_password(u, pw, strlen(pw));
}

/* fn's text for u equals `want` */
static void assert_text(int (*fn)(const struct acl_user *, struct rk_buf *),
                        const struct acl_user *u,
                        const char *want)
{
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(fn(u, &b), RK_OK);
    assert_int_equal(rk_buf_append(&b, "", 1), RK_OK);
    assert_string_equal(b.base, want);
    rk_buf_fini(&b);
}

#define assert_describe(u, want) assert_text(acl_user_describe, (u), (want))

/* Expects rule `rule` to fail with the text ERR_PREFIX rule "': " why. */
static void assert_rule_error(struct acl *a,
                              const char *name,
                              const char *rule,
                              const char *why)
{
    char want[2048];
    snprintf(want, sizeof(want), ERR_PREFIX "%s': %s", rule, why);
    assert_int_equal(setuser1(a, name, rule), -1);
    assert_string_equal(g_err, want);
}

/* A fresh table with user "bob" given `rules`. */
static struct acl *with_bob(const char *rules)
{
    struct acl *a = acl_create(&g_cat);
    assert_non_null(a);
    assert_int_equal(setuser(a, "bob", rules), 0);
    return a;
}

static char *format(const struct acl *a)
{
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(acl_file_format(a, &b), RK_OK);
    assert_int_equal(rk_buf_append(&b, "", 1), RK_OK);
    char *s = strdup(b.base);
    rk_buf_fini(&b);
    assert_non_null(s);
    return s;
}

static struct acl *parse(const char *text, bool *named_default)
{
    g_err[0] = '\0';
    return acl_file_parse(&g_cat, text, strlen(text), named_default, g_err,
                          sizeof(g_err));
}

static void assert_parse_error(const char *text, const char *want)
{
    bool nd = true;
    assert_null(parse(text, &nd));
    assert_string_equal(g_err, want);
}

/* ---- the catalog and categories ----------------------------------------- */

static void test_acl_catalog_and_category_lookups(void **state)
{
    (void)state;
    assert_int_equal(acl_catalog_find(&g_cat, "get", 3), ID_GET);
    assert_int_equal(acl_catalog_find(&g_cat, "CONFIG|Get", 10), ID_CONFIG_GET);
    assert_int_equal(acl_catalog_find(&g_cat, "ge", 2), -1);
    assert_int_equal(acl_catalog_find(&g_cat, "gets", 4), -1);
    assert_string_equal(acl_category_name(ACL_CAT_KEYSPACE), "keyspace");
    assert_string_equal(acl_category_name(ACL_CAT_SCRIPTING), "scripting");
    assert_null(acl_category_name(ACL_CAT_COUNT));
    assert_null(acl_category_name(-1));
    assert_int_equal(acl_category_lookup("READ", 4), ACL_CAT_READ);
    assert_int_equal(acl_category_lookup("read", 3), -1);
    assert_int_equal(acl_category_lookup("all", 3), -1);
}

/* ---- the default user ---------------------------------------------------- */

static void test_acl_create_has_default_user_on_nopass_all(void **state)
{
    (void)state;
    struct acl *a = acl_create(&g_cat);
    assert_non_null(a);
    assert_ptr_equal(acl_catalog_of(a), &g_cat);
    assert_int_equal(acl_user_count(a), 1);
    struct acl_user *d = acl_default_user(a);
    assert_non_null(d);
    assert_ptr_equal(acl_user_at(a, 0), d);
    assert_null(acl_user_at(a, 1));
    assert_ptr_equal(find(a, "default"), d);
    assert_null(find(a, "Default"));
    assert_string_equal(acl_user_name(d), "default");
    assert_true(acl_user_enabled(d));
    assert_true(acl_user_nopass(d));
    assert_true(acl_user_all_keys(d));
    assert_int_equal(acl_user_password_count(d), 0);
    assert_true(check_pw(d, "anything"));
    for (size_t i = 0; i < N_IDS; i++) {
        assert_true(acl_user_can_run(d, i));
    }
    assert_true(can_key(d, "any", ACL_KEY_READ | ACL_KEY_WRITE));
    assert_describe(d, "on nopass ~* &* +@all");
    assert_text(acl_user_describe_commands, d, "+@all");
    assert_text(acl_user_describe_keys, d, "~*");
    assert_text(acl_user_describe_channels, d, "&*");
    acl_free(a);
    acl_free(NULL);
}

static void test_acl_new_user_is_off_with_nothing(void **state)
{
    (void)state;
    struct acl *a = with_bob("");
    struct acl_user *u = find(a, "bob");
    assert_non_null(u);
    assert_false(acl_user_enabled(u));
    assert_false(acl_user_nopass(u));
    assert_false(acl_user_all_keys(u));
    assert_false(check_pw(u, ""));
    for (size_t i = 0; i < N_IDS; i++) {
        assert_false(acl_user_can_run(u, i));
    }
    assert_false(can_key(u, "k", 0));
    assert_describe(u, "off resetchannels -@all");
    assert_text(acl_user_describe_keys, u, "");
    assert_text(acl_user_describe_channels, u, "");
    assert_text(acl_user_describe_commands, u, "-@all");
    acl_free(a);
}

static void test_acl_users_are_sorted_by_name(void **state)
{
    (void)state;
    struct acl *a = acl_create(&g_cat);
    assert_int_equal(setuser(a, "carl", ""), 0);
    assert_int_equal(setuser(a, "alice", ""), 0);
    assert_int_equal(setuser(a, "bob", ""), 0);
    assert_int_equal(setuser(a, "bo", ""), 0);
    const char *want[] = {"alice", "bo", "bob", "carl", "default"};
    assert_int_equal(acl_user_count(a), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(acl_user_name(acl_user_at(a, i)), want[i]);
    }
    acl_free(a);
}

/* ---- rules --------------------------------------------------------------- */

static void test_acl_rule_on_off(void **state)
{
    (void)state;
    struct acl *a = with_bob("on");
    struct acl_user *u = find(a, "bob");
    assert_true(acl_user_enabled(u));
    assert_int_equal(setuser(a, "bob", "off"), 0);
    assert_false(acl_user_enabled(u));
    assert_int_equal(setuser(a, "bob", "ON"), 0); /* keywords: any case */
    assert_true(acl_user_enabled(u));
    assert_describe(u, "on resetchannels -@all");
    acl_free(a);
}

static void test_acl_rule_passwords_clear_text(void **state)
{
    (void)state;
    struct acl *a = with_bob(">secret");
    struct acl_user *u = find(a, "bob");
    assert_int_equal(acl_user_password_count(u), 1);
    char hex[65];
    acl_user_password_hex(u, 0, hex);
    assert_string_equal(hex, SECRET_HEX);
    assert_describe(u, "off #" SECRET_HEX " resetchannels -@all");
    /* adding the same password again keeps one copy */
    assert_int_equal(setuser(a, "bob", ">secret >x >secret"), 0);
    assert_int_equal(acl_user_password_count(u), 2);
    assert_describe(u, "off #" SECRET_HEX " #" X_HEX " resetchannels -@all");
    assert_int_equal(setuser(a, "bob", "<secret"), 0);
    assert_int_equal(acl_user_password_count(u), 1);
    assert_false(check_pw(u, "secret"));
    assert_true(check_pw(u, "x"));
    assert_rule_error(a, "bob", "<secret",
                      "The password you are trying to remove from the user "
                      "does not exist");
    /* ">" alone is the empty password */
    assert_int_equal(setuser(a, "bob", ">"), 0);
    assert_true(check_pw(u, ""));
    assert_describe(u, "off #" X_HEX " #" EMPTY_HEX " resetchannels -@all");
    acl_free(a);
}

static void test_acl_rule_passwords_hashed(void **state)
{
    (void)state;
    struct acl *a = with_bob("#" SECRET_HEX);
    struct acl_user *u = find(a, "bob");
    assert_true(check_pw(u, "secret"));
    /* the same digest given as clear text is not added twice */
    assert_int_equal(setuser(a, "bob", ">secret"), 0);
    assert_int_equal(acl_user_password_count(u), 1);
    assert_int_equal(setuser(a, "bob", "!" SECRET_HEX), 0);
    assert_int_equal(acl_user_password_count(u), 0);
    assert_false(check_pw(u, "secret"));
    assert_rule_error(a, "bob", "!" SECRET_HEX,
                      "The password you are trying to remove from the user "
                      "does not exist");
    const char *why =
        "The password hash must be exactly 64 characters and contain only "
        "lowercase hexadecimal characters";
    /* upper case, 63 and 65 digits, a non-hex digit, nothing */
    assert_rule_error(
        a, "bob",
        "#2BB80D537B1DA3E38BD30361AA855686BDE0EACD7162FEF6A25FE97BF527A25B",
        why);
    assert_rule_error(
        a, "bob",
        "#2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25",
        why);
    assert_rule_error(a, "bob", "#" SECRET_HEX "0", why);
    assert_rule_error(
        a, "bob",
        "#gbb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
        why);
    assert_rule_error(a, "bob", "#", why);
    assert_rule_error(a, "bob", "!" SECRET_HEX "0", why);
    acl_free(a);
}

static void test_acl_rule_nopass_and_resetpass(void **state)
{
    (void)state;
    struct acl *a = with_bob(">secret >x nopass");
    struct acl_user *u = find(a, "bob");
    assert_true(acl_user_nopass(u));
    assert_int_equal(acl_user_password_count(u), 0); /* nopass drops them */
    assert_true(check_pw(u, "whatever"));
    assert_describe(u, "off nopass resetchannels -@all");
    /* a password after nopass ends nopass */
    assert_int_equal(setuser(a, "bob", ">secret"), 0);
    assert_false(acl_user_nopass(u));
    assert_false(check_pw(u, "whatever"));
    assert_true(check_pw(u, "secret"));
    assert_int_equal(setuser(a, "bob", "nopass resetpass"), 0);
    assert_false(acl_user_nopass(u));
    assert_int_equal(acl_user_password_count(u), 0);
    assert_false(check_pw(u, ""));
    assert_describe(u, "off resetchannels -@all");
    acl_free(a);
}

static void test_acl_rule_key_patterns(void **state)
{
    (void)state;
    struct acl *a = with_bob("~a* %R~r* %W~w* %RW~rw* %wr~x*");
    struct acl_user *u = find(a, "bob");
    assert_text(acl_user_describe_keys, u, "~a* %R~r* %W~w* ~rw* ~x*");
    assert_false(acl_user_all_keys(u));
    /* a repeated pattern is not added twice */
    assert_int_equal(setuser(a, "bob", "~a* %R~r*"), 0);
    assert_text(acl_user_describe_keys, u, "~a* %R~r* %W~w* ~rw* ~x*");
    assert_int_equal(setuser(a, "bob", "resetkeys"), 0);
    assert_text(acl_user_describe_keys, u, "");
    assert_false(can_key(u, "a", 0));
    /* an empty pattern is a pattern (it matches the empty key) */
    assert_int_equal(setuser(a, "bob", "%R~ %W~"), 0);
    assert_text(acl_user_describe_keys, u, "~");
    assert_true(can_key(u, "", ACL_KEY_WRITE));
    assert_false(can_key(u, "a", 0));
    assert_rule_error(a, "bob", "%~a", "Syntax error");
    assert_rule_error(a, "bob", "%X~a", "Syntax error");
    assert_rule_error(a, "bob", "%R", "Syntax error");
    assert_rule_error(a, "bob", "%RW", "Syntax error");
    assert_rule_error(a, "bob", "%", "Syntax error");
    assert_rule_error(a, "bob", "~a b",
                      "patterns may not contain spaces or control characters");
    assert_rule_error(a, "bob", "~a\x01",
                      "patterns may not contain spaces or control characters");
    acl_free(a);
}

static void test_acl_rule_allkeys_and_pattern_after_it(void **state)
{
    (void)state;
    struct acl *a = with_bob("~a* ~*");
    struct acl_user *u = find(a, "bob");
    assert_true(acl_user_all_keys(u));
    assert_text(acl_user_describe_keys, u, "~*"); /* ~* replaced ~a* */
    const char *why =
        "Adding a pattern after the * pattern (or the 'allkeys' flag) is "
        "not valid and does not have any effect. Try 'resetkeys' to start "
        "with an empty list of patterns";
    assert_rule_error(a, "bob", "~b", why);
    assert_rule_error(a, "bob", "%R~b", why);
    assert_rule_error(a, "bob", "~*", why);
    assert_int_equal(setuser(a, "bob", "resetkeys %RW~*"), 0);
    assert_true(acl_user_all_keys(u));
    assert_int_equal(setuser(a, "bob", "resetkeys ~a allkeys"), 0);
    assert_true(acl_user_all_keys(u));
    assert_text(acl_user_describe_keys, u, "~*");
    assert_rule_error(a, "bob", "~b", why);
    assert_int_equal(setuser(a, "bob", "allkeys"), 0); /* no error */
    /* %R~* is a read-only pattern, not allkeys */
    assert_int_equal(setuser(a, "bob", "resetkeys %R~* %W~w*"), 0);
    assert_false(acl_user_all_keys(u));
    assert_text(acl_user_describe_keys, u, "%R~* %W~w*");
    assert_true(can_key(u, "k", ACL_KEY_READ));
    assert_false(can_key(u, "k", ACL_KEY_WRITE));
    acl_free(a);
}

static void test_acl_rule_channels(void **state)
{
    (void)state;
    struct acl *a = with_bob("&news.* &chat");
    struct acl_user *u = find(a, "bob");
    assert_text(acl_user_describe_channels, u, "&news.* &chat");
    assert_describe(u, "off resetchannels &news.* &chat -@all");
    assert_int_equal(setuser(a, "bob", "&chat"), 0); /* not added twice */
    assert_text(acl_user_describe_channels, u, "&news.* &chat");
    assert_int_equal(setuser(a, "bob", "resetchannels"), 0);
    assert_text(acl_user_describe_channels, u, "");
    assert_int_equal(setuser(a, "bob", "&a &*"), 0);
    assert_text(acl_user_describe_channels, u, "&*");
    assert_describe(u, "off &* -@all");
    const char *why =
        "Adding a pattern after the * pattern (or the 'allchannels' flag) is "
        "not valid and does not have any effect. Try 'resetchannels' to "
        "start with an empty list of patterns";
    assert_rule_error(a, "bob", "&b", why);
    assert_int_equal(setuser(a, "bob", "resetchannels &x allchannels"), 0);
    assert_text(acl_user_describe_channels, u, "&*");
    assert_rule_error(a, "bob", "&*", why);
    assert_int_equal(setuser(a, "bob", "resetchannels"), 0);
    assert_rule_error(a, "bob", "&a\tb",
                      "patterns may not contain spaces or control characters");
    acl_free(a);
}

static void test_acl_rule_commands(void **state)
{
    (void)state;
    struct acl *a = with_bob("+get +SET");
    struct acl_user *u = find(a, "bob");
    assert_true(acl_user_can_run(u, ID_GET));
    assert_true(acl_user_can_run(u, ID_SET));
    assert_false(acl_user_can_run(u, ID_DEL));
    /* rules are kept in lower case, as given */
    assert_text(acl_user_describe_commands, u, "-@all +get +set");
    assert_int_equal(setuser(a, "bob", "-get"), 0);
    assert_false(acl_user_can_run(u, ID_GET));
    assert_text(acl_user_describe_commands, u, "-@all +get +set -get");
    /* categories */
    assert_int_equal(setuser(a, "bob", "nocommands +@read"), 0);
    assert_text(acl_user_describe_commands, u, "-@all +@read");
    assert_true(acl_user_can_run(u, ID_GET));
    assert_true(acl_user_can_run(u, ID_KEYS));
    assert_false(acl_user_can_run(u, ID_SET));
    assert_int_equal(setuser(a, "bob", "-@keyspace"), 0);
    assert_false(acl_user_can_run(u, ID_KEYS));
    assert_true(acl_user_can_run(u, ID_GET));
    /* +@all / -@all start the list again */
    assert_int_equal(setuser(a, "bob", "+@all -@write"), 0);
    assert_text(acl_user_describe_commands, u, "+@all -@write");
    assert_true(acl_user_can_run(u, ID_INFO));
    assert_false(acl_user_can_run(u, ID_SET));
    assert_false(acl_user_can_run(u, ID_INCR));
    assert_int_equal(setuser(a, "bob", "-@ALL"), 0);
    assert_text(acl_user_describe_commands, u, "-@all");
    for (size_t i = 0; i < N_IDS; i++) {
        assert_false(acl_user_can_run(u, i));
    }
    assert_int_equal(setuser(a, "bob", "+get allcommands"), 0);
    assert_text(acl_user_describe_commands, u, "+@all");
    for (size_t i = 0; i < N_IDS; i++) {
        assert_true(acl_user_can_run(u, i));
    }
    assert_int_equal(setuser(a, "bob", "nocommands"), 0);
    assert_text(acl_user_describe_commands, u, "-@all");
    /* unknown names */
    assert_rule_error(a, "bob", "+nosuch", ERR_UNKNOWN);
    assert_rule_error(a, "bob", "-nosuch", ERR_UNKNOWN);
    assert_rule_error(a, "bob", "+@nosuch", ERR_UNKNOWN);
    assert_rule_error(a, "bob", "+@", ERR_UNKNOWN);
    assert_rule_error(a, "bob", "+", ERR_UNKNOWN);
    assert_rule_error(a, "bob", "+get|x", ERR_UNKNOWN);
    assert_rule_error(a, "bob", "+config|nosuch", ERR_UNKNOWN);
    assert_rule_error(a, "bob", "+config|", ERR_UNKNOWN);
    acl_free(a);
}

static void test_acl_rule_subcommands(void **state)
{
    (void)state;
    /* a container rule grants (and takes) all its subcommands */
    struct acl *a = with_bob("+config");
    struct acl_user *u = find(a, "bob");
    assert_true(acl_user_can_run(u, ID_CONFIG));
    assert_true(acl_user_can_run(u, ID_CONFIG_GET));
    assert_true(acl_user_can_run(u, ID_CONFIG_SET));
    assert_false(acl_user_can_run(u, ID_CLIENT_LIST));
    assert_int_equal(setuser(a, "bob", "-config|set"), 0);
    assert_true(acl_user_can_run(u, ID_CONFIG_GET));
    assert_false(acl_user_can_run(u, ID_CONFIG_SET));
    assert_text(acl_user_describe_commands, u, "-@all +config -config|set");
    /* a subcommand rule grants that subcommand only, not its siblings */
    assert_int_equal(setuser(a, "bob", "nocommands +CONFIG|GET"), 0);
    assert_true(acl_user_can_run(u, ID_CONFIG_GET));
    assert_false(acl_user_can_run(u, ID_CONFIG_SET));
    assert_false(acl_user_can_run(u, ID_CONFIG));
    assert_text(acl_user_describe_commands, u, "-@all +config|get");
    assert_int_equal(setuser(a, "bob", "+@all -config"), 0);
    assert_false(acl_user_can_run(u, ID_CONFIG_GET));
    assert_false(acl_user_can_run(u, ID_CONFIG_SET));
    assert_true(acl_user_can_run(u, ID_CLIENT_LIST));
    /* categories reach subcommands through their own categories */
    assert_int_equal(setuser(a, "bob", "nocommands +@connection"), 0);
    assert_true(acl_user_can_run(u, ID_CLIENT_LIST));
    assert_false(acl_user_can_run(u, ID_CONFIG_GET));
    assert_int_equal(setuser(a, "bob", "+@admin"), 0);
    assert_true(acl_user_can_run(u, ID_CONFIG_GET));
    assert_true(acl_user_can_run(u, ID_CONFIG_SET));
    assert_false(acl_user_can_run(u, ID_GET));
    acl_free(a);
}

static void test_acl_rule_reset_and_clearselectors(void **state)
{
    (void)state;
    struct acl *a = with_bob("on >secret ~a* &c +@all -get");
    struct acl_user *u = find(a, "bob");
    assert_int_equal(setuser(a, "bob", "clearselectors"), 0);
    assert_describe(u, "on #" SECRET_HEX " ~a* resetchannels &c +@all -get");
    assert_int_equal(setuser(a, "bob", "reset"), 0);
    assert_describe(u, "off resetchannels -@all");
    assert_false(check_pw(u, "secret"));
    assert_false(can_key(u, "a", 0));
    assert_int_equal(setuser(a, "bob", "on nopass allkeys allchannels RESET"),
                     0);
    assert_describe(u, "off resetchannels -@all");
    assert_false(acl_user_nopass(u));
    assert_int_equal(setuser(a, "default", "reset"), 0);
    assert_describe(acl_default_user(a), "off resetchannels -@all");
    acl_free(a);
}

static void test_acl_rule_errors_have_redis_text(void **state)
{
    (void)state;
    struct acl *a = acl_create(&g_cat);
    assert_rule_error(a, "bob", "bogus", "Syntax error");
    assert_rule_error(a, "bob", "", "Syntax error");
    assert_rule_error(a, "bob", "onn", "Syntax error");
    assert_rule_error(a, "bob", "*", "Syntax error");
    assert_rule_error(a, "bob", "(~* +get)",
                      "selectors (rules in parentheses) are not supported "
                      "by ringkv: give the user its rules directly");
    assert_rule_error(a, "bob", "(",
                      "selectors (rules in parentheses) are "
                      "not supported by ringkv: give the user "
                      "its rules directly");
    /* a rule with a NUL byte is not the keyword it starts with */
    const char *r = "on\0";
    size_t len = 3;
    assert_int_equal(
        acl_setuser(a, "bob", 3, 1, &r, &len, g_err, sizeof(g_err)), -1);
    assert_null(find(a, "bob"));
    /* a long rule is quoted up to 128 bytes */
    char rule[301], want[512];
    memset(rule, 'z', 300);
    rule[300] = '\0';
    snprintf(want, sizeof(want), ERR_PREFIX "%.128s': Syntax error", rule);
    assert_int_equal(setuser1(a, "bob", rule), -1);
    assert_string_equal(g_err, want);
    /* a small err buffer gets a truncated, terminated text */
    char small[8];
    r = "bogus";
    len = 5;
    assert_int_equal(
        acl_setuser(a, "bob", 3, 1, &r, &len, small, sizeof(small)), -1);
    assert_string_equal(small, "Error i");
    acl_free(a);
}

/* ---- all or nothing ------------------------------------------------------ */

static void test_acl_setuser_is_all_or_nothing(void **state)
{
    (void)state;
    struct acl *a = with_bob("on >secret ~a* &c +get");
    struct acl_user *u = find(a, "bob");
    const char *before = "on #" SECRET_HEX " ~a* resetchannels &c -@all +get";
    assert_describe(u, before);
    /* a failing rule in the middle, at the end, at the start */
    assert_int_equal(setuser(a, "bob",
                             "off resetpass >x resetkeys ~b* allchannels "
                             "+@all bogus -set nopass"),
                     -1);
    assert_string_equal(g_err, ERR_PREFIX "bogus': Syntax error");
    assert_ptr_equal(find(a, "bob"), u);
    assert_describe(u, before);
    assert_true(check_pw(u, "secret"));
    assert_false(check_pw(u, "x"));
    assert_true(acl_user_can_run(u, ID_GET));
    assert_false(acl_user_can_run(u, ID_SET));
    assert_true(can_key(u, "a1", ACL_KEY_WRITE));
    assert_false(can_key(u, "b1", 0));
    assert_int_equal(setuser(a, "bob", "reset +nosuch"), -1);
    assert_describe(u, before);
    assert_int_equal(setuser(a, "bob", "<nosuch off"), -1);
    assert_describe(u, before);
    /* a new user is not created */
    assert_int_equal(setuser(a, "carl", "on >x +@all ~* bogus"), -1);
    assert_null(find(a, "carl"));
    assert_int_equal(acl_user_count(a), 2);
    assert_int_equal(setuser(a, "carl", "bogus"), -1);
    assert_null(find(a, "carl"));
    assert_int_equal(acl_user_count(a), 2);
    acl_free(a);
}

/* ---- lifetimes ----------------------------------------------------------- */

static void test_acl_user_pointer_survives_setuser(void **state)
{
    (void)state;
    heap_install();
    struct acl *a = with_bob("on");
    struct acl_user *u = find(a, "bob");
    acl_user_ref(u);
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "user%02d", i); /* grows the table */
        assert_int_equal(setuser(a, name, "on"), 0);
        assert_int_equal(setuser(a, "bob", i % 2 ? "+get ~k*" : "-get"), 0);
    }
    assert_ptr_equal(find(a, "bob"), u);
    assert_true(acl_user_can_run(u, ID_GET));
    assert_string_equal(acl_user_name(u), "bob");
    /* setuser kept the reference: deleting leaves u alive until unref */
    long live = g_heap.live;
    assert_int_equal(acl_deluser(a, "bob", 3), 1);
    assert_int_equal(g_heap.live, live);
    assert_describe(u, "on ~k* resetchannels -@all -get +get");
    acl_user_unref(u);
    assert_true(g_heap.live < live);
    acl_free(a);
    assert_int_equal(g_heap.live, 0);
}

static void test_acl_deluser_frees_at_last_unref(void **state)
{
    (void)state;
    heap_install();
    struct acl *a = with_bob("on >secret ~k* +get");
    assert_int_equal(acl_deluser(a, "default", 7), -1);
    assert_int_equal(acl_deluser(a, "nosuch", 6), 0);
    assert_int_equal(acl_deluser(a, "Bob", 3), 0);
    /* no reference: freed at once */
    long live = g_heap.live;
    assert_int_equal(acl_deluser(a, "bob", 3), 1);
    assert_true(g_heap.live < live);
    assert_null(find(a, "bob"));
    assert_int_equal(acl_user_count(a), 1);
    /* two references: alive until the second unref */
    assert_int_equal(setuser(a, "bob", "on >secret ~k* +get"), 0);
    struct acl_user *u = find(a, "bob");
    acl_user_ref(u);
    acl_user_ref(u);
    live = g_heap.live;
    assert_int_equal(acl_deluser(a, "bob", 3), 1);
    assert_null(find(a, "bob"));
    assert_int_equal(g_heap.live, live);
    acl_user_unref(u);
    assert_int_equal(g_heap.live, live);
    /* still readable by the client holding it */
    assert_string_equal(acl_user_name(u), "bob");
    assert_true(check_pw(u, "secret"));
    assert_true(acl_user_can_run(u, ID_GET));
    assert_true(can_key(u, "k1", ACL_KEY_READ));
    /* a new "bob" is a different user */
    assert_int_equal(setuser(a, "bob", "off"), 0);
    assert_ptr_not_equal(find(a, "bob"), u);
    assert_true(acl_user_enabled(u));
    live = g_heap.live;
    acl_user_unref(u);
    assert_true(g_heap.live < live);
    acl_user_unref(NULL);
    /* a referenced user still in the table is not freed by unref */
    u = find(a, "bob");
    acl_user_ref(u);
    acl_user_unref(u);
    assert_ptr_equal(find(a, "bob"), u);
    assert_describe(u, "off resetchannels -@all");
    acl_free(a);
    assert_int_equal(g_heap.live, 0);
}

static void test_acl_free_keeps_referenced_users(void **state)
{
    (void)state;
    heap_install();
    struct acl *a = with_bob("on >secret ~k* +get");
    struct acl_user *u = find(a, "bob"), *d = acl_default_user(a);
    acl_user_ref(u);
    acl_user_ref(d);
    acl_free(a);
    assert_true(g_heap.live > 0);
    assert_string_equal(acl_user_name(u), "bob");
    assert_describe(u, "on #" SECRET_HEX " ~k* resetchannels -@all +get");
    assert_describe(d, "on nopass ~* &* +@all");
    acl_user_unref(u);
    assert_true(g_heap.live > 0);
    acl_user_unref(d);
    assert_int_equal(g_heap.live, 0);
}

/* ---- checks -------------------------------------------------------------- */

static void test_acl_check_password(void **state)
{
    (void)state;
    struct acl *a = with_bob("on >secret >other");
    struct acl_user *u = find(a, "bob");
    assert_true(check_pw(u, "secret"));
    assert_true(check_pw(u, "other"));
    assert_false(check_pw(u, "wrong"));
    assert_false(check_pw(u, "secre"));
    assert_false(check_pw(u, "Secret"));
    assert_false(check_pw(u, ""));
    assert_false(acl_user_check_password(u, "secret\0", 7));
    /* binary passwords */
    const char *r = ">a\0b";
    size_t len = 4;
    assert_int_equal(
        acl_setuser(a, "bob", 3, 1, &r, &len, g_err, sizeof(g_err)), 0);
    assert_true(acl_user_check_password(u, "a\0b", 3));
    assert_false(check_pw(u, "a"));
    /* on/off does not matter here */
    assert_int_equal(setuser(a, "bob", "off"), 0);
    assert_true(check_pw(u, "secret"));
    assert_int_equal(setuser(a, "bob", "nopass"), 0);
    assert_true(check_pw(u, "wrong"));
    assert_true(check_pw(u, ""));
    acl_free(a);
}

static void test_acl_can_key_by_access(void **state)
{
    (void)state;
    struct acl *a = with_bob("~a* %R~r* %W~w*");
    struct acl_user *u = find(a, "bob");
    const unsigned RW = ACL_KEY_READ | ACL_KEY_WRITE;
    struct
    {
        const char *key;
        bool none, r, w, rw;
    } cases[] = {
        {"apple", true, true, true, true}, {"red", true, true, false, false},
        {"wet", true, false, true, false}, {"zed", false, false, false, false},
        {"", false, false, false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(can_key(u, cases[i].key, 0), cases[i].none);
        assert_int_equal(can_key(u, cases[i].key, ACL_KEY_READ), cases[i].r);
        assert_int_equal(can_key(u, cases[i].key, ACL_KEY_WRITE), cases[i].w);
        assert_int_equal(can_key(u, cases[i].key, RW), cases[i].rw);
    }
    /* %R~k plus %W~k acts as ~k, whichever order */
    assert_int_equal(setuser(a, "bob", "resetkeys %R~k %W~k %W~j %R~j"), 0);
    assert_text(acl_user_describe_keys, u, "~k ~j");
    assert_true(can_key(u, "k", RW));
    assert_true(can_key(u, "j", RW));
    /* but a read pattern and a write pattern for different keys do not
     * grant read+write on a key that only one of them matches */
    assert_int_equal(setuser(a, "bob", "resetkeys %R~x* %W~*y"), 0);
    assert_true(can_key(u, "xy", ACL_KEY_READ));
    assert_true(can_key(u, "xy", ACL_KEY_WRITE));
    assert_false(can_key(u, "xy", RW));
    acl_free(a);
}

static void test_acl_can_key_glob_patterns(void **state)
{
    (void)state;
    struct acl *a = with_bob("~user:* ~h?llo ~h[ae]y ~x\\* ~[^a-c]z");
    struct acl_user *u = find(a, "bob");
    assert_true(can_key(u, "user:1", ACL_KEY_READ));
    assert_true(can_key(u, "user:", ACL_KEY_READ));
    assert_false(can_key(u, "user", ACL_KEY_READ));
    assert_false(can_key(u, "USER:1", ACL_KEY_READ)); /* case-sensitive */
    assert_true(acl_user_can_key(u, "user:\0x", 7, ACL_KEY_READ));
    assert_true(can_key(u, "hello", ACL_KEY_READ));
    assert_true(can_key(u, "hallo", ACL_KEY_READ));
    assert_false(can_key(u, "hllo", ACL_KEY_READ));
    assert_true(can_key(u, "hey", ACL_KEY_READ));
    assert_true(can_key(u, "hay", ACL_KEY_READ));
    assert_false(can_key(u, "hoy", ACL_KEY_READ));
    assert_true(can_key(u, "x*", ACL_KEY_READ));
    assert_false(can_key(u, "xa", ACL_KEY_READ));
    assert_true(can_key(u, "dz", ACL_KEY_READ));
    assert_false(can_key(u, "bz", ACL_KEY_READ));
    /* allkeys: everything, even binary keys, and all_keys says so */
    assert_int_equal(setuser(a, "bob", "allkeys"), 0);
    assert_true(acl_user_all_keys(u));
    assert_true(acl_user_can_key(u, "\0\xff", 2, ACL_KEY_WRITE));
    acl_free(a);
}

/*
 * Regression: "%R~*" followed by "%W~*" merged into a read+write "*"
 * pattern that was not allkeys.  It was described as "~*", so ACL SAVE
 * wrote "~* ~b" for "%R~* %W~* ~b", which ACL LOAD refuses ("Adding a
 * pattern after the * pattern"), and "~b %R~* %W~*" described as
 * "~b ~*" replayed to a different user ("~*").  Now a read+write "*"
 * pattern is allkeys however it was given.
 */
static void test_acl_read_and_write_star_is_allkeys(void **state)
{
    (void)state;
    struct acl *a = with_bob("%R~* %W~*");
    struct acl_user *u = find(a, "bob");
    assert_true(acl_user_all_keys(u));
    assert_text(acl_user_describe_keys, u, "~*");
    assert_true(can_key(u, "any", ACL_KEY_READ | ACL_KEY_WRITE));
    assert_int_equal(setuser(a, "bob", "resetkeys ~b %W~* %R~*"), 0);
    assert_true(acl_user_all_keys(u));
    assert_text(acl_user_describe_keys, u, "~*");
    /* as "~b ~*": the patterns before it are dropped, the ones after are
     * refused */
    assert_int_equal(setuser(a, "bob", "resetkeys %R~* ~b"), 0);
    assert_text(acl_user_describe_keys, u, "%R~* ~b");
    assert_int_equal(setuser(a, "bob", "%W~*"), 0);
    assert_true(acl_user_all_keys(u));
    assert_text(acl_user_describe_keys, u, "~*");
    assert_rule_error(a, "bob", "~b",
                      "Adding a pattern after the * pattern (or the 'allkeys' "
                      "flag) is not valid and does not have any effect. Try "
                      "'resetkeys' to start with an empty list of patterns");
    /* what ACL SAVE writes for it, ACL LOAD reads */
    char *text = format(a);
    bool nd;
    struct acl *b = parse(text, &nd);
    assert_non_null(b);
    assert_true(acl_user_all_keys(find(b, "bob")));
    free(text);
    acl_free(b);
    acl_free(a);
}

/* ---- describe ------------------------------------------------------------ */

static void test_acl_describe_order_of_parts(void **state)
{
    (void)state;
    struct acl *a =
        with_bob("+get ~a* on &c* %R~r* >secret -@write %W~w* +config|get >x");
    struct acl_user *u = find(a, "bob");
    assert_describe(u, "on #" SECRET_HEX " #" X_HEX
                       " ~a* %R~r* %W~w* resetchannels &c* -@all +get -@write "
                       "+config|get");
    assert_text(acl_user_describe_commands, u,
                "-@all +get -@write +config|get");
    assert_text(acl_user_describe_keys, u, "~a* %R~r* %W~w*");
    assert_text(acl_user_describe_channels, u, "&c*");
    /* describe appends */
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(rk_buf_append_str(&b, "user bob "), RK_OK);
    assert_int_equal(acl_user_describe_commands(u, &b), RK_OK);
    assert_int_equal(rk_buf_append(&b, "", 1), RK_OK);
    assert_string_equal(b.base, "user bob -@all +get -@write +config|get");
    rk_buf_fini(&b);
    acl_free(a);
}

static void test_acl_describe_repeated_rule_does_not_grow(void **state)
{
    (void)state;
    struct acl *a = with_bob("+get +get +GET");
    struct acl_user *u = find(a, "bob");
    assert_text(acl_user_describe_commands, u, "-@all +get");
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(setuser(a, "bob", "+get -@write +get"), 0);
    }
    assert_text(acl_user_describe_commands, u, "-@all -@write +get");
    /* the later copy of a rule is the one kept: order still holds */
    assert_int_equal(setuser(a, "bob", "nocommands +get -get +get"), 0);
    assert_text(acl_user_describe_commands, u, "-@all -get +get");
    assert_true(acl_user_can_run(u, ID_GET));
    assert_int_equal(setuser(a, "bob", "nocommands -get +get -get"), 0);
    assert_text(acl_user_describe_commands, u, "-@all +get -get");
    assert_false(acl_user_can_run(u, ID_GET));
    acl_free(a);
}

/* n space-separated tokens in the text of fn(u) */
static size_t count_tokens(int (*fn)(const struct acl_user *, struct rk_buf *),
                           const struct acl_user *u)
{
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(fn(u, &b), RK_OK);
    size_t n = b.len > 0;
    for (size_t i = 0; i < b.len; i++) {
        n += b.base[i] == ' ';
    }
    rk_buf_fini(&b);
    return n;
}

#define BIG_N 600

static void test_acl_command_rule_cap(void **state)
{
    (void)state;
    static char names[BIG_N][8];
    static struct acl_catalog_entry entries[BIG_N];
    for (int i = 0; i < BIG_N; i++) {
        snprintf(names[i], sizeof(names[i]), "c%d", i);
        entries[i] = (struct acl_catalog_entry){names[i], CAT(READ), -1};
    }
    const struct acl_catalog big = {BIG_N, entries};
    struct acl *a = acl_create(&big);
    assert_non_null(a);
    char rule[16];
    for (int i = 0; i < ACL_MAX_CMD_RULES; i++) {
        snprintf(rule, sizeof(rule), "+c%d", i);
        assert_int_equal(setuser1(a, "bob", rule), 0);
    }
    struct acl_user *u = find(a, "bob");
    assert_int_equal(count_tokens(acl_user_describe_commands, u),
                     1 + ACL_MAX_CMD_RULES);
    assert_rule_error(a, "bob", "+c512",
                      "too many command rules (at most 512): start again "
                      "from allcommands or nocommands");
    assert_rule_error(a, "bob", "-@read",
                      "too many command rules (at most 512): start again "
                      "from allcommands or nocommands");
    assert_false(acl_user_can_run(u, 512));
    /* a repeat of a kept rule still fits: it moves to the end */
    assert_int_equal(setuser1(a, "bob", "+c0"), 0);
    assert_int_equal(count_tokens(acl_user_describe_commands, u),
                     1 + ACL_MAX_CMD_RULES);
    struct rk_buf b;
    rk_buf_init(&b);
    assert_int_equal(acl_user_describe_commands(u, &b), RK_OK);
    assert_int_equal(rk_buf_append(&b, "", 1), RK_OK);
    assert_non_null(strstr(b.base, "-@all +c1 +c2 "));
    assert_non_null(strstr(b.base, " +c511 +c0"));
    rk_buf_fini(&b);
    /* starting again from a base empties the list */
    assert_int_equal(setuser(a, "bob", "allcommands -c512"), 0);
    assert_text(acl_user_describe_commands, u, "+@all -c512");
    acl_free(a);
}

static void test_acl_pattern_and_password_caps(void **state)
{
    (void)state;
    struct acl *a = acl_create(&g_cat);
    char rule[32];
    for (int i = 0; i < ACL_MAX_PATTERNS; i++) {
        snprintf(rule, sizeof(rule), "~k%d", i);
        assert_int_equal(setuser1(a, "bob", rule), 0);
        snprintf(rule, sizeof(rule), "&c%d", i);
        assert_int_equal(setuser1(a, "bob", rule), 0);
    }
    struct acl_user *u = find(a, "bob");
    assert_int_equal(count_tokens(acl_user_describe_keys, u), ACL_MAX_PATTERNS);
    assert_int_equal(count_tokens(acl_user_describe_channels, u),
                     ACL_MAX_PATTERNS);
    assert_rule_error(a, "bob", "~k256",
                      "too many patterns for one user (at most 256)");
    assert_rule_error(a, "bob", "%R~k256",
                      "too many patterns for one user (at most 256)");
    assert_rule_error(a, "bob", "&c256",
                      "too many patterns for one user (at most 256)");
    /* an existing pattern still merges */
    assert_int_equal(setuser1(a, "bob", "%R~k0"), 0);
    assert_int_equal(setuser1(a, "bob", "&c0"), 0);
    assert_int_equal(count_tokens(acl_user_describe_keys, u), ACL_MAX_PATTERNS);
    /* pattern length */
    char pat[ACL_MAX_PATTERN + 3];
    pat[0] = '~';
    memset(pat + 1, 'p', ACL_MAX_PATTERN + 1);
    pat[ACL_MAX_PATTERN + 2] = '\0';
    char want[512];
    snprintf(want, sizeof(want),
             ERR_PREFIX "%.128s': pattern too long (at most 1024 bytes)", pat);
    assert_int_equal(setuser1(a, "carl", pat), -1);
    assert_string_equal(g_err, want);
    pat[ACL_MAX_PATTERN + 1] = '\0';
    assert_int_equal(setuser1(a, "carl", pat), 0);
    pat[0] = '&';
    assert_int_equal(setuser1(a, "carl", pat), 0);
    /* passwords: count and length */
    for (int i = 0; i < ACL_MAX_PASSWORDS; i++) {
        snprintf(rule, sizeof(rule), ">pw%d", i);
        assert_int_equal(setuser1(a, "dave", rule), 0);
    }
    u = find(a, "dave");
    assert_int_equal(acl_user_password_count(u), ACL_MAX_PASSWORDS);
    assert_rule_error(a, "dave", ">pw64",
                      "too many passwords for one user (at most 64)");
    assert_int_equal(setuser1(a, "dave", ">pw0"), 0); /* already there */
    assert_int_equal(setuser(a, "dave", "<pw0 >pw64"), 0);
    assert_true(check_pw(u, "pw64"));
    char pw[ACL_MAX_PASSWORD + 3];
    pw[0] = '>';
    memset(pw + 1, 'w', ACL_MAX_PASSWORD + 1);
    pw[ACL_MAX_PASSWORD + 2] = '\0';
    snprintf(want, sizeof(want),
             ERR_PREFIX "%.128s': password too long (at most 1024 bytes)", pw);
    assert_int_equal(setuser1(a, "erin", pw), -1);
    assert_string_equal(g_err, want);
    pw[ACL_MAX_PASSWORD + 1] = '\0';
    assert_int_equal(setuser1(a, "erin", pw), 0);
    assert_true(check_pw(find(a, "erin"), pw + 1));
    acl_free(a);
}

static void test_acl_user_count_cap(void **state)
{
    (void)state;
    struct acl *a = acl_create(&g_cat);
    char name[16];
    for (int i = 1; i < ACL_MAX_USERS; i++) {
        snprintf(name, sizeof(name), "u%04d", i);
        assert_int_equal(setuser(a, name, ""), 0);
    }
    assert_int_equal(acl_user_count(a), ACL_MAX_USERS);
    assert_int_equal(setuser(a, "one-more", "on"), -1);
    assert_string_equal(g_err, "too many users (at most 4096)");
    assert_null(find(a, "one-more"));
    /* existing users can still change */
    assert_int_equal(setuser(a, "u0001", "on"), 0);
    assert_true(acl_user_enabled(find(a, "u0001")));
    assert_int_equal(acl_deluser(a, "u0002", 5), 1);
    assert_int_equal(setuser(a, "one-more", "on"), 0);
    acl_free(a);
}

/* ---- names --------------------------------------------------------------- */

static void test_acl_user_names(void **state)
{
    (void)state;
    struct acl *a = acl_create(&g_cat);
    const char *bad_chars = "Usernames can't contain spaces or null characters";
    const char *r = "on";
    size_t len = 2;
    struct
    {
        const char *name;
        size_t len;
    } bad[] = {
        {"", 0},     {"a b", 3},  {"a\tb", 3},  {"a\nb", 3}, {"a\rb", 3},
        {"a\0b", 3}, {"\x01", 1}, {"a\x7f", 2}, {" a", 2},   {"a ", 2},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(acl_setuser(a, bad[i].name, bad[i].len, 1, &r, &len,
                                     g_err, sizeof(g_err)),
                         -1);
        assert_string_equal(g_err, bad_chars);
    }
    assert_int_equal(acl_user_count(a), 1);
    char name[ACL_MAX_NAME + 2];
    memset(name, 'n', sizeof(name));
    assert_int_equal(acl_setuser(a, name, ACL_MAX_NAME + 1, 1, &r, &len, g_err,
                                 sizeof(g_err)),
                     -1);
    assert_string_equal(g_err, "User names are limited to 128 bytes");
    assert_int_equal(
        acl_setuser(a, name, ACL_MAX_NAME, 1, &r, &len, g_err, sizeof(g_err)),
        0);
    struct acl_user *u = acl_user_find(a, name, ACL_MAX_NAME);
    assert_non_null(u);
    assert_int_equal(strlen(acl_user_name(u)), ACL_MAX_NAME);
    /* any other byte is fine, UTF-8 included; names are case-sensitive */
    assert_int_equal(setuser(a, "\xc3\xa9t\xc3\xa9", "on"), 0);
    assert_int_equal(setuser(a, "Bob", "on"), 0);
    assert_int_equal(setuser(a, "bob", "off"), 0);
    assert_true(acl_user_enabled(find(a, "Bob")));
    assert_false(acl_user_enabled(find(a, "bob")));
    assert_null(acl_user_find(a, "bob", 2));
    assert_int_equal(acl_user_count(a), 5);
    acl_free(a);
}

/* ---- the ACL file -------------------------------------------------------- */

static void test_acl_file_format_text(void **state)
{
    (void)state;
    struct acl *a = with_bob("on nopass allkeys +get");
    assert_int_equal(setuser(a, "alice", "on >secret %R~r* &c +@read"), 0);
    char *text = format(a);
    assert_string_equal(text, "user alice on #" SECRET_HEX
                              " %R~r* resetchannels &c -@all +@read\n"
                              "user bob on nopass ~* resetchannels -@all +get\n"
                              "user default on nopass ~* &* +@all\n");
    free(text);
    acl_free(a);
}

static void test_acl_file_round_trip(void **state)
{
    (void)state;
    struct acl *a = acl_create(&g_cat);
    assert_int_equal(setuser(a, "default", "resetpass >pw -info"), 0);
    assert_int_equal(
        setuser(a, "alice",
                "on >a >b ~a* %R~r* %W~w* &c* +get +config|get -@write +@read "
                "-config|set"),
        0);
    assert_int_equal(
        setuser(a, "bob", "off nopass allkeys allchannels +@all -config|set"),
        0);
    assert_int_equal(setuser(a, "carl", ""), 0);
    assert_int_equal(setuser(a, "\xc3\xa9", "on ~ &"), 0);
    assert_int_equal(setuser(a, "dave", "on %R~* ~x -@all +config"), 0);
    assert_int_equal(setuser(a, "erin", "on %R~* %W~* +@all -@dangerous"), 0);
    char *t1 = format(a);
    bool nd = false;
    struct acl *b = parse(t1, &nd);
    assert_non_null(b);
    assert_true(nd);
    char *t2 = format(b);
    assert_string_equal(t2, t1);
    struct acl *c = parse(t2, &nd);
    assert_non_null(c);
    char *t3 = format(c);
    assert_string_equal(t3, t2);
    /* same behaviour, not only the same text */
    for (size_t i = 0; i < acl_user_count(a); i++) {
        struct acl_user *u = acl_user_at(a, i), *v = acl_user_at(b, i);
        assert_string_equal(acl_user_name(u), acl_user_name(v));
        for (size_t id = 0; id < N_IDS; id++) {
            assert_int_equal(acl_user_can_run(u, id), acl_user_can_run(v, id));
        }
        assert_int_equal(acl_user_all_keys(u), acl_user_all_keys(v));
        assert_int_equal(check_pw(u, "a"), check_pw(v, "a"));
        assert_int_equal(check_pw(u, "pw"), check_pw(v, "pw"));
    }
    free(t1);
    free(t2);
    free(t3);
    acl_free(a);
    acl_free(b);
    acl_free(c);
}

static void test_acl_file_skips_comments_blank_lines_and_crlf(void **state)
{
    (void)state;
    bool nd = true;
    struct acl *a = parse(
        "# a comment\n"
        "\n"
        "   \t \n"
        "  # an indented comment with user default off\n"
        "user bob on nopass ~* +@all\r\n"
        "\r\n"
        "user\tcarl\t on  >x\t+get  \r\n"
        "user dave off",
        &nd);
    assert_non_null(a);
    assert_false(nd);
    assert_int_equal(acl_user_count(a), 4);
    assert_describe(find(a, "bob"), "on nopass ~* resetchannels +@all");
    struct acl_user *carl = find(a, "carl");
    assert_describe(carl, "on #" X_HEX " resetchannels -@all +get");
    assert_describe(find(a, "dave"), "off resetchannels -@all");
    /* not named: default is as acl_create made it */
    assert_describe(acl_default_user(a), "on nopass ~* &* +@all");
    acl_free(a);
    /* an empty file */
    a = parse("", &nd);
    assert_non_null(a);
    assert_false(nd);
    assert_int_equal(acl_user_count(a), 1);
    acl_free(a);
}

static void test_acl_file_users_start_from_reset(void **state)
{
    (void)state;
    bool nd = false;
    struct acl *a = parse("user bob on >x\nuser default off\n", &nd);
    assert_non_null(a);
    assert_true(nd);
    struct acl_user *u = find(a, "bob");
    assert_describe(u, "on #" X_HEX " resetchannels -@all");
    for (size_t i = 0; i < N_IDS; i++) {
        assert_false(acl_user_can_run(u, i));
    }
    assert_false(can_key(u, "k", 0));
    assert_true(check_pw(u, "x"));
    assert_describe(acl_default_user(a), "off resetchannels -@all");
    assert_false(check_pw(acl_default_user(a), ""));
    acl_free(a);
    /* "user default" with no rules at all is a reset default user */
    a = parse("user default\n", &nd);
    assert_non_null(a);
    assert_true(nd);
    assert_describe(acl_default_user(a), "off resetchannels -@all");
    acl_free(a);
}

static void test_acl_file_errors_name_the_line(void **state)
{
    (void)state;
    const char *syntax = "should be 'user <name> <rule> ...'";
    char want[256];
    snprintf(want, sizeof(want), "line 1: %s", syntax);
    assert_parse_error("bob on\n", want);
    assert_parse_error("user\n", want);
    assert_parse_error("users bob on\n", want);
    assert_parse_error("~* user bob\n", want);
    snprintf(want, sizeof(want), "line 3: %s", syntax);
    assert_parse_error("user bob on\r\n\r\nbob\r\n", want);
    assert_parse_error("user bob on\nuser carl on\nuser dave +nosuch\n",
                       "line 3: " ERR_PREFIX "+nosuch': " ERR_UNKNOWN);
    assert_parse_error("# c\r\n\r\nuser bob on\r\nuser carl bogus\r\n",
                       "line 4: " ERR_PREFIX "bogus': Syntax error");
    assert_parse_error("user bob on\nuser bob off\n",
                       "line 2: user 'bob' declared twice");
    assert_parse_error("user default on\nuser bob on\nuser default off\n",
                       "line 3: user 'default' declared twice");
    assert_parse_error("user a\x01z on\n",
                       "line 1: Usernames can't contain spaces or null "
                       "characters");
    assert_parse_error("user bob on\nuser default (~*)\n",
                       "line 2: " ERR_PREFIX
                       "(~*)': selectors (rules in parentheses) are not "
                       "supported by ringkv: give the user its rules directly");
    /* "USER" is the keyword in any case, as the other keywords */
    bool nd;
    struct acl *a = parse("USER bob on\n", &nd);
    assert_non_null(a);
    acl_free(a);
}

static void test_acl_file_token_limit(void **state)
{
    (void)state;
    /* 2048 tokens on a line are fine, 2049 are not */
    struct rk_buf t;
    rk_buf_init(&t);
    assert_int_equal(rk_buf_append_str(&t, "user bob"), RK_OK);
    for (int i = 0; i < 2046; i++) {
        assert_int_equal(rk_buf_append_str(&t, " on"), RK_OK);
    }
    assert_int_equal(rk_buf_append(&t, "", 1), RK_OK);
    bool nd;
    struct acl *a = parse(t.base, &nd);
    assert_non_null(a);
    acl_free(a);
    t.len--;
    assert_int_equal(rk_buf_append(&t, " on", 4), RK_OK);
    assert_parse_error(t.base, "line 1: too many rules");
    rk_buf_fini(&t);
}

/* ---- ACL LOG ------------------------------------------------------------- */

static void log_add(struct acl_log *l,
                    int reason,
                    bool multi,
                    const char *obj,
                    const char *user,
                    uint64_t now_ms)
{
    acl_log_add(l, reason, multi, obj, strlen(obj), user, "id=1", now_ms);
}

static void test_acl_log_add_records_an_entry(void **state)
{
    (void)state;
    struct acl_log l;
    acl_log_init(&l, ACL_LOG_DEFAULT_MAX);
    assert_int_equal(l.n, 0);
    acl_log_add(&l, ACL_LOG_KEY, true, "k1", 2, "bob", "id=7 addr=x", 1000);
    assert_int_equal(l.n, 1);
    struct acl_log_entry *e = &l.e[0];
    assert_int_equal(e->count, 1);
    assert_int_equal(e->reason, ACL_LOG_KEY);
    assert_true(e->in_multi);
    assert_string_equal(e->object, "k1");
    assert_string_equal(e->username, "bob");
    assert_string_equal(e->client_info, "id=7 addr=x");
    assert_int_equal(e->created_ms, 1000);
    assert_int_equal(e->updated_ms, 1000);
    uint64_t id0 = e->entry_id;
    log_add(&l, ACL_LOG_AUTH, false, "AUTH", "carl", 1001);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.e[0].object, "AUTH");
    assert_true(l.e[0].entry_id > id0);
    assert_int_equal(l.e[1].entry_id, id0);
    acl_log_fini(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.e);
}

static void test_acl_log_folds_identical_denials_within_60s(void **state)
{
    (void)state;
    struct acl_log l;
    acl_log_init(&l, 10);
    log_add(&l, ACL_LOG_COMMAND, false, "get", "bob", 1000);
    log_add(&l, ACL_LOG_COMMAND, false, "set", "bob", 2000);
    assert_int_equal(l.n, 2);
    uint64_t id_get = l.e[1].entry_id;
    /* identical to the older entry: folded in, and moved to the front */
    acl_log_add(&l, ACL_LOG_COMMAND, false, "get", 3, "bob", "id=2", 30000);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.e[0].object, "get");
    assert_int_equal(l.e[0].count, 2);
    assert_int_equal(l.e[0].created_ms, 1000);
    assert_int_equal(l.e[0].updated_ms, 30000);
    assert_int_equal(l.e[0].entry_id, id_get);
    assert_string_equal(l.e[0].client_info, "id=2"); /* the last one's */
    assert_string_equal(l.e[1].object, "set");
    assert_int_equal(l.e[1].count, 1);
    /* the window runs from the last denial folded in: 59.999 s later
     * folds, 60 s later does not */
    log_add(&l, ACL_LOG_COMMAND, false, "get", "bob", 30000 + 59999);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.e[0].count, 3);
    log_add(&l, ACL_LOG_COMMAND, false, "get", "bob", 89999 + 60000);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.e[0].count, 1);
    assert_int_equal(l.e[0].created_ms, 149999);
    assert_int_equal(l.e[1].count, 3);
    acl_log_fini(&l);
}

static void test_acl_log_does_not_fold_different_denials(void **state)
{
    (void)state;
    struct acl_log l;
    acl_log_init(&l, 10);
    log_add(&l, ACL_LOG_KEY, false, "k", "bob", 1000);
    log_add(&l, ACL_LOG_KEY, false, "k", "carl", 1001);    /* user */
    log_add(&l, ACL_LOG_KEY, false, "j", "bob", 1002);     /* object */
    log_add(&l, ACL_LOG_COMMAND, false, "k", "bob", 1003); /* reason */
    log_add(&l, ACL_LOG_KEY, true, "k", "bob", 1004);      /* context */
    log_add(&l, ACL_LOG_KEY, false, "kk", "bob", 1005);    /* prefix */
    log_add(&l, ACL_LOG_KEY, false, "k", "bobby", 1006);
    assert_int_equal(l.n, 7);
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.e[i].count, 1);
        assert_int_equal(l.e[i].created_ms, 1006 - i);
    }
    log_add(&l, ACL_LOG_KEY, false, "k", "bob", 1007);
    assert_int_equal(l.n, 7);
    assert_int_equal(l.e[0].count, 2);
    assert_int_equal(l.e[0].created_ms, 1000);
    acl_log_fini(&l);
}

static void test_acl_log_max_len_drops_oldest(void **state)
{
    (void)state;
    struct acl_log l;
    acl_log_init(&l, 3);
    char obj[8];
    for (int i = 0; i < 40; i++) {
        snprintf(obj, sizeof(obj), "k%d", i);
        log_add(&l, ACL_LOG_KEY, false, obj, "bob", 1000 + (uint64_t)i);
        assert_int_equal(l.n, i < 3 ? i + 1 : 3);
    }
    assert_string_equal(l.e[0].object, "k39");
    assert_string_equal(l.e[1].object, "k38");
    assert_string_equal(l.e[2].object, "k37");
    /* shrinking keeps the newest */
    acl_log_set_max(&l, 1);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.e[0].object, "k39");
    log_add(&l, ACL_LOG_KEY, false, "new", "bob", 2000);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.e[0].object, "new");
    /* growing keeps them all */
    acl_log_set_max(&l, 50);
    for (int i = 0; i < 40; i++) {
        snprintf(obj, sizeof(obj), "j%d", i);
        log_add(&l, ACL_LOG_KEY, false, obj, "bob", 3000 + (uint64_t)i);
    }
    assert_int_equal(l.n, 41);
    acl_log_set_max(&l, 5);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.e[0].object, "j39");
    assert_string_equal(l.e[4].object, "j35");
    /* max 0 keeps nothing */
    acl_log_set_max(&l, 0);
    assert_int_equal(l.n, 0);
    log_add(&l, ACL_LOG_KEY, false, "k", "bob", 4000);
    assert_int_equal(l.n, 0);
    acl_log_fini(&l);
}

static void test_acl_log_reset(void **state)
{
    (void)state;
    struct acl_log l;
    acl_log_init(&l, 10);
    log_add(&l, ACL_LOG_KEY, false, "a", "bob", 1000);
    log_add(&l, ACL_LOG_KEY, false, "b", "bob", 1000);
    uint64_t last = l.e[0].entry_id;
    acl_log_reset(&l);
    assert_int_equal(l.n, 0);
    /* nothing left to fold into */
    log_add(&l, ACL_LOG_KEY, false, "a", "bob", 1001);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.e[0].count, 1);
    assert_true(l.e[0].entry_id > last);
    acl_log_reset(&l);
    acl_log_reset(&l);
    acl_log_fini(&l);
}

static void test_acl_log_truncates_object_to_128_bytes(void **state)
{
    (void)state;
    struct acl_log l;
    acl_log_init(&l, 10);
    char obj[300];
    memset(obj, 'o', sizeof(obj));
    acl_log_add(&l, ACL_LOG_KEY, false, obj, sizeof(obj), "bob", "", 1000);
    assert_int_equal(l.n, 1);
    assert_int_equal(strlen(l.e[0].object), 128);
    assert_memory_equal(l.e[0].object, obj, 128);
    /* a key equal in its first 128 bytes is the same object */
    obj[200] = 'x';
    acl_log_add(&l, ACL_LOG_KEY, false, obj, sizeof(obj), "bob", "", 1001);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.e[0].count, 2);
    /* exactly 128 bytes are kept whole */
    acl_log_add(&l, ACL_LOG_KEY, false, obj, 128, "bob", "", 1002);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.e[0].count, 3);
    acl_log_add(&l, ACL_LOG_KEY, false, obj, 127, "bob", "", 1003);
    assert_int_equal(l.n, 2);
    assert_int_equal(strlen(l.e[0].object), 127);
    acl_log_fini(&l);
}

/* ---- allocation failures ------------------------------------------------- */

static void test_acl_create_fails_cleanly_out_of_memory(void **state)
{
    (void)state;
    heap_install();
    long n;
    for (n = 1;; n++) {
        g_heap.calls = 0;
        g_heap.fail_at = n;
        struct acl *a = acl_create(&g_cat);
        g_heap.fail_at = 0;
        if (a == NULL) {
            assert_int_equal(g_heap.live, 0);
            continue;
        }
        assert_describe(acl_default_user(a), "on nopass ~* &* +@all");
        acl_free(a);
        assert_int_equal(g_heap.live, 0);
        break;
    }
    assert_true(n > 3);
}

static void test_acl_setuser_fails_cleanly_out_of_memory(void **state)
{
    (void)state;
    heap_install();
    struct acl *a = with_bob("on >secret ~a* &c +get -@write");
    for (int i = 0; i < 6; i++) { /* a full table: growing it fails too */
        char name[8];
        snprintf(name, sizeof(name), "u%d", i);
        assert_int_equal(setuser(a, name, ""), 0);
    }
    struct acl_user *u = find(a, "bob");
    const char *before =
        "on #" SECRET_HEX " ~a* resetchannels &c -@all +get -@write";
    const char *rules =
        "off >x >y ~b* %R~c* %W~d* &e* &f -get +@read +config|get resetpass "
        ">z +get nocommands +set +@admin";
    const char *after = "off #" X_HEX
                        " ~a* ~b* %R~c* %W~d* resetchannels &c &e* &f -@all "
                        "+set +@admin";
    long n;
    for (n = 1;; n++) {
        long live = g_heap.live;
        heap_fail_in(n);
        int rc = setuser(a, "bob", rules);
        g_heap.fail_at = 0;
        if (rc == -2) {
            assert_string_equal(g_err, "out of memory");
            assert_int_equal(g_heap.live, live);
            assert_ptr_equal(find(a, "bob"), u);
            assert_describe(u, before);
            continue;
        }
        assert_int_equal(rc, 0);
        break;
    }
    assert_true(n > 10);
    assert_ptr_equal(find(a, "bob"), u);
    /* the ">z" of rules is a hash of "z"; check behaviour, then text */
    assert_true(check_pw(u, "z"));
    assert_int_equal(setuser(a, "bob", "resetpass >x"), 0);
    assert_describe(u, after);
    /* a new user: not created when out of memory */
    size_t count = acl_user_count(a);
    for (n = 1;; n++) {
        long live = g_heap.live;
        heap_fail_in(n);
        int rc = setuser(a, "carl", rules);
        g_heap.fail_at = 0;
        if (rc == -2) {
            assert_int_equal(g_heap.live, live);
            assert_null(find(a, "carl"));
            assert_int_equal(acl_user_count(a), count);
            continue;
        }
        assert_int_equal(rc, 0);
        break;
    }
    assert_int_equal(acl_user_count(a), count + 1);
    acl_free(a);
    assert_int_equal(g_heap.live, 0);
}

static void test_acl_file_parse_fails_cleanly_out_of_memory(void **state)
{
    (void)state;
    heap_install();
    const char *text =
        "# users\n"
        "user default on >pw ~* &* +@all -info\n"
        "user alice on >a ~a* %R~r* &c* +get +config|get -@write\n"
        "user bob off nopass allkeys +@all\n";
    struct acl *want = parse(text, &(bool){false});
    assert_non_null(want);
    struct rk_buf wb;
    rk_buf_init(&wb);
    assert_int_equal(acl_file_format(want, &wb), RK_OK);
    long live0 = g_heap.live;
    long n;
    for (n = 1;; n++) {
        bool nd = false;
        heap_fail_in(n);
        struct acl *a = parse(text, &nd);
        g_heap.fail_at = 0;
        if (a == NULL) {
            assert_non_null(strstr(g_err, "out of memory"));
            assert_int_equal(g_heap.live, live0);
            continue;
        }
        assert_true(nd);
        struct rk_buf b;
        rk_buf_init(&b);
        assert_int_equal(acl_file_format(a, &b), RK_OK);
        assert_int_equal(b.len, wb.len);
        assert_memory_equal(b.base, wb.base, b.len);
        rk_buf_fini(&b);
        acl_free(a);
        break;
    }
    assert_true(n > 10);
    rk_buf_fini(&wb);
    acl_free(want);
    assert_int_equal(g_heap.live, 0);
}

static void test_acl_describe_and_format_fail_cleanly_out_of_memory(
    void **state)
{
    (void)state;
    heap_install();
    struct acl *a = with_bob("on >secret ~a* %R~b* &c +get -@write");
    struct acl_user *u = find(a, "bob");
    int (*fns[])(const struct acl_user *, struct rk_buf *) = {
        acl_user_describe,
        acl_user_describe_commands,
        acl_user_describe_keys,
        acl_user_describe_channels,
    };
    for (size_t f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
        for (long n = 1;; n++) {
            struct rk_buf b;
            rk_buf_init(&b);
            heap_fail_in(n);
            int rc = fns[f](u, &b);
            g_heap.fail_at = 0;
            rk_buf_fini(&b);
            if (rc == RK_OK) {
                break;
            }
            assert_int_equal(rc, RK_ENOMEM);
        }
    }
    for (long n = 1;; n++) {
        struct rk_buf b;
        rk_buf_init(&b);
        heap_fail_in(n);
        int rc = acl_file_format(a, &b);
        g_heap.fail_at = 0;
        rk_buf_fini(&b);
        if (rc == RK_OK) {
            break;
        }
        assert_int_equal(rc, RK_ENOMEM);
    }
    acl_free(a);
    assert_int_equal(g_heap.live, 0);
}

static void test_acl_log_add_drops_entry_out_of_memory(void **state)
{
    (void)state;
    heap_install();
    struct acl_log l;
    acl_log_init(&l, 4);
    log_add(&l, ACL_LOG_KEY, false, "old", "bob", 1000);
    for (long n = 1;; n++) {
        size_t before = l.n;
        heap_fail_in(n);
        log_add(&l, ACL_LOG_KEY, false, "k", "bob", 2000);
        g_heap.fail_at = 0;
        if (l.n == before) {
            assert_string_equal(l.e[0].object, "old");
            continue;
        }
        assert_string_equal(l.e[0].object, "k");
        break;
    }
    /* folding when the client info copy fails: counted, old info kept */
    heap_fail_in(1);
    acl_log_add(&l, ACL_LOG_KEY, false, "k", 1, "bob", "new info", 2001);
    g_heap.fail_at = 0;
    assert_int_equal(l.n, 2);
    assert_int_equal(l.e[0].count, 2);
    assert_string_equal(l.e[0].client_info, "id=1");
    /* failures at every step of adding to a full log */
    for (int i = 0; i < 10; i++) {
        char obj[8];
        snprintf(obj, sizeof(obj), "x%d", i);
        heap_fail_in(1 + i % 4);
        log_add(&l, ACL_LOG_KEY, false, obj, "bob", 3000);
        g_heap.fail_at = 0;
        assert_true(l.n <= 4);
    }
    acl_log_fini(&l);
    assert_int_equal(g_heap.live, 0);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_acl_catalog_and_category_lookups),
        T(test_acl_create_has_default_user_on_nopass_all),
        T(test_acl_new_user_is_off_with_nothing),
        T(test_acl_users_are_sorted_by_name),
        T(test_acl_rule_on_off),
        T(test_acl_rule_passwords_clear_text),
        T(test_acl_rule_passwords_hashed),
        T(test_acl_rule_nopass_and_resetpass),
        T(test_acl_rule_key_patterns),
        T(test_acl_rule_allkeys_and_pattern_after_it),
        T(test_acl_rule_channels),
        T(test_acl_rule_commands),
        T(test_acl_rule_subcommands),
        T(test_acl_rule_reset_and_clearselectors),
        T(test_acl_rule_errors_have_redis_text),
        T(test_acl_setuser_is_all_or_nothing),
        T(test_acl_user_pointer_survives_setuser),
        T(test_acl_deluser_frees_at_last_unref),
        T(test_acl_free_keeps_referenced_users),
        T(test_acl_check_password),
        T(test_acl_can_key_by_access),
        T(test_acl_can_key_glob_patterns),
        T(test_acl_read_and_write_star_is_allkeys),
        T(test_acl_describe_order_of_parts),
        T(test_acl_describe_repeated_rule_does_not_grow),
        T(test_acl_command_rule_cap),
        T(test_acl_pattern_and_password_caps),
        T(test_acl_user_count_cap),
        T(test_acl_user_names),
        T(test_acl_file_format_text),
        T(test_acl_file_round_trip),
        T(test_acl_file_skips_comments_blank_lines_and_crlf),
        T(test_acl_file_users_start_from_reset),
        T(test_acl_file_errors_name_the_line),
        T(test_acl_file_token_limit),
        T(test_acl_log_add_records_an_entry),
        T(test_acl_log_folds_identical_denials_within_60s),
        T(test_acl_log_does_not_fold_different_denials),
        T(test_acl_log_max_len_drops_oldest),
        T(test_acl_log_reset),
        T(test_acl_log_truncates_object_to_128_bytes),
        T(test_acl_create_fails_cleanly_out_of_memory),
        T(test_acl_setuser_fails_cleanly_out_of_memory),
        T(test_acl_file_parse_fails_cleanly_out_of_memory),
        T(test_acl_describe_and_format_fail_cleanly_out_of_memory),
        T(test_acl_log_add_drops_entry_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
