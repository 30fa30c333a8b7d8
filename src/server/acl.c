/*
 * acl.c - ACL users: rules, checks, the ACL file's text, ACL LOG (acl.h).
 *
 * Rule semantics follow Redis 7's ACL documentation; the text of the error
 * messages is Redis's where Redis has one, so clients and scripts that
 * parse them keep working.
 */
#include "server/acl.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/glob.h"

/* ---- categories and the catalog ---------------------------------------- */

static const char *const g_cat_names[ACL_CAT_COUNT] = {
    "keyspace",  "read",     "write",     "set",        "sortedset",
    "list",      "hash",     "string",    "bitmap",     "hyperloglog",
    "geo",       "stream",   "pubsub",    "admin",      "fast",
    "slow",      "blocking", "dangerous", "connection", "transaction",
    "scripting",
};

const char *acl_category_name(int cat)
{
    return cat >= 0 && cat < ACL_CAT_COUNT ? g_cat_names[cat] : NULL;
}

int acl_category_lookup(const char *name, size_t len)
{
    for (int i = 0; i < ACL_CAT_COUNT; i++) {
        if (strlen(g_cat_names[i]) == len &&
            strncasecmp(g_cat_names[i], name, len) == 0) {
            return i;
        }
    }
    return -1;
}

int acl_catalog_find(const struct acl_catalog *cat,
                     const char *name,
                     size_t len)
{
    for (size_t i = 0; i < cat->n; i++) {
        const char *n = cat->entries[i].name;
        if (strlen(n) == len && strncasecmp(n, name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* ---- users --------------------------------------------------------------- */

struct acl_pattern
{
    uint8_t flags; /* ACL_KEY_* (keys); 0 for channels */
    size_t len;
    char *p; /* owned, NUL-terminated */
};

struct acl_user
{
    char *name; /* owned */
    size_t nlen;
    bool on;
    bool nopass;
    uint8_t (*pw)[32]; /* SHA-256 digests, owned */
    size_t n_pw;
    uint64_t *allowed; /* one bit per catalog entry, owned */
    bool base_all;     /* the command rules start from +@all (else -@all) */
    char **rules;      /* "+get", "-@write", ... since the base; owned */
    size_t n_rules;
    bool allkeys;
    struct acl_pattern *keys;
    size_t n_keys;
    bool allchans;
    struct acl_pattern *chans;
    size_t n_chans;
    unsigned refs; /* clients authenticated as this user */
    bool detached; /* no longer in a table: freed at the last unref */
};

struct acl
{
    const struct acl_catalog *cat;
    struct acl_user **users; /* sorted by name */
    size_t n, cap;
};

static size_t words_of(const struct acl_catalog *cat)
{
    return (cat->n + 63) / 64;
}

static void patterns_free(struct acl_pattern *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rk_free(p[i].p);
    }
    rk_free(p);
}

static void user_free_contents(struct acl_user *u)
{
    rk_free(u->name);
    rk_free(u->pw);
    rk_free(u->allowed);
    for (size_t i = 0; i < u->n_rules; i++) {
        rk_free(u->rules[i]);
    }
    rk_free(u->rules);
    patterns_free(u->keys, u->n_keys);
    patterns_free(u->chans, u->n_chans);
    memset(u, 0, sizeof(*u));
}

static void user_free(struct acl_user *u)
{
    if (u) {
        user_free_contents(u);
        rk_free(u);
    }
}

/* A new user: off, no passwords, no keys, no channels, -@all. */
static struct acl_user *user_new(const struct acl *a,
                                 const char *name,
                                 size_t nlen)
{
    struct acl_user *u = rk_calloc(1, sizeof(*u));
    if (u == NULL) {
        return NULL;
    }
    u->name = rk_strndup(name, nlen);
    u->nlen = nlen;
    u->allowed =
        rk_calloc(words_of(a->cat) ? words_of(a->cat) : 1, sizeof(uint64_t));
    if (u->name == NULL || u->allowed == NULL) {
        user_free(u);
        return NULL;
    }
    return u;
}

static int patterns_copy(struct acl_pattern **dst,
                         const struct acl_pattern *src,
                         size_t n)
{
    *dst = NULL;
    if (n == 0) {
        return 0;
    }
    struct acl_pattern *d = rk_calloc(n, sizeof(*d));
    if (d == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        d[i] = src[i];
        d[i].p = rk_strndup(src[i].p, src[i].len);
        if (d[i].p == NULL) {
            patterns_free(d, i);
            return -1;
        }
    }
    *dst = d;
    return 0;
}

/* A deep copy of u (NULL when out of memory). */
static struct acl_user *user_clone(const struct acl *a,
                                   const struct acl_user *u)
{
    struct acl_user *c = user_new(a, u->name, u->nlen);
    if (c == NULL) {
        return NULL;
    }
    c->on = u->on;
    c->nopass = u->nopass;
    c->base_all = u->base_all;
    c->allkeys = u->allkeys;
    c->allchans = u->allchans;
    memcpy(c->allowed, u->allowed, words_of(a->cat) * sizeof(uint64_t));
    if (u->n_pw) {
        c->pw = rk_malloc(u->n_pw * 32);
        if (c->pw == NULL) {
            goto oom;
        }
        memcpy(c->pw, u->pw, u->n_pw * 32);
        c->n_pw = u->n_pw;
    }
    if (u->n_rules) {
        c->rules = rk_calloc(u->n_rules, sizeof(char *));
        if (c->rules == NULL) {
            goto oom;
        }
        for (size_t i = 0; i < u->n_rules; i++) {
            c->rules[i] = rk_strdup(u->rules[i]);
            if (c->rules[i] == NULL) {
                c->n_rules = i;
                goto oom;
            }
        }
        c->n_rules = u->n_rules;
    }
    if (patterns_copy(&c->keys, u->keys, u->n_keys) != 0) {
        goto oom;
    }
    c->n_keys = u->n_keys;
    if (patterns_copy(&c->chans, u->chans, u->n_chans) != 0) {
        goto oom;
    }
    c->n_chans = u->n_chans;
    return c;
oom:
    user_free(c);
    return NULL;
}

/* ---- applying one rule --------------------------------------------------- */

#define RULE_ERR   (-1)
#define RULE_NOMEM (-2)

static void sha256(const void *p, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1) {
        memset(out, 0, 32); /* never happens with the default provider */
    }
}

static bool is_word(const char *r, size_t len, const char *w)
{
    return strlen(w) == len && strncasecmp(r, w, len) == 0;
}

static int pw_find(const struct acl_user *u, const uint8_t d[32])
{
    for (size_t i = 0; i < u->n_pw; i++) {
        if (memcmp(u->pw[i], d, 32) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int pw_add(struct acl_user *u, const uint8_t d[32], const char **why)
{
    u->nopass = false;
    if (pw_find(u, d) >= 0) {
        return 0;
    }
    if (u->n_pw >= ACL_MAX_PASSWORDS) {
        *why = "too many passwords for one user (at most 64)";
        return RULE_ERR;
    }
    uint8_t(*n)[32] = rk_realloc(u->pw, (u->n_pw + 1) * 32);
    if (n == NULL) {
        return RULE_NOMEM;
    }
    u->pw = n;
    memcpy(u->pw[u->n_pw++], d, 32);
    return 0;
}

static int pw_remove(struct acl_user *u, const uint8_t d[32], const char **why)
{
    int i = pw_find(u, d);
    if (i < 0) {
        *why =
            "The password you are trying to remove from the user does "
            "not exist";
        return RULE_ERR;
    }
    memmove(u->pw[i], u->pw[i + 1], (u->n_pw - (size_t)i - 1) * 32);
    u->n_pw--;
    return 0;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    return -1; /* Redis takes lower-case hex only */
}

static bool parse_hash(const char *h, size_t len, uint8_t out[32])
{
    if (len != 64) {
        return false;
    }
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_digit(h[2 * i]), lo = hex_digit(h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Patterns and names go into the ACL file one per space-separated token:
 * no spaces or control bytes. */
static bool printable_token(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch <= ' ' || ch == 0x7f) {
            return false;
        }
    }
    return true;
}

static int pattern_add(struct acl_pattern **list,
                       size_t *n,
                       uint8_t flags,
                       const char *p,
                       size_t len,
                       const char **why)
{
    if (len > ACL_MAX_PATTERN) {
        *why = "pattern too long (at most 1024 bytes)";
        return RULE_ERR;
    }
    if (!printable_token(p, len)) {
        *why = "patterns may not contain spaces or control characters";
        return RULE_ERR;
    }
    for (size_t i = 0; i < *n; i++) {
        if ((*list)[i].len == len && memcmp((*list)[i].p, p, len) == 0) {
            (*list)[i].flags |= flags; /* %R~a %W~a = ~a, as in Redis */
            return 0;
        }
    }
    if (*n >= ACL_MAX_PATTERNS) {
        *why = "too many patterns for one user (at most 256)";
        return RULE_ERR;
    }
    struct acl_pattern *nl = rk_realloc(*list, (*n + 1) * sizeof(**list));
    if (nl == NULL) {
        return RULE_NOMEM;
    }
    *list = nl;
    char *copy = rk_strndup(p, len);
    if (copy == NULL) {
        return RULE_NOMEM;
    }
    nl[*n].flags = flags;
    nl[*n].len = len;
    nl[*n].p = copy;
    (*n)++;
    return 0;
}

static void patterns_clear(struct acl_pattern **list, size_t *n)
{
    patterns_free(*list, *n);
    *list = NULL;
    *n = 0;
}

static void bit_set(uint64_t *w, size_t i, bool on)
{
    if (on) {
        w[i / 64] |= 1ull << (i % 64);
    } else {
        w[i / 64] &= ~(1ull << (i % 64));
    }
}

static void rules_clear(struct acl_user *u)
{
    for (size_t i = 0; i < u->n_rules; i++) {
        rk_free(u->rules[i]);
    }
    rk_free(u->rules);
    u->rules = NULL;
    u->n_rules = 0;
}

/* Sets or clears the bits a +/- rule names (r without its sign).  Returns
 * false when it names no command or category. */
static bool command_rule_bits(const struct acl *a,
                              uint64_t *allowed,
                              const char *r,
                              size_t len,
                              bool on)
{
    const struct acl_catalog *cat = a->cat;
    if (len > 1 && r[0] == '@') {
        if (is_word(r + 1, len - 1, "all")) {
            for (size_t i = 0; i < cat->n; i++) {
                bit_set(allowed, i, on);
            }
            return true;
        }
        int c = acl_category_lookup(r + 1, len - 1);
        if (c < 0) {
            return false;
        }
        for (size_t i = 0; i < cat->n; i++) {
            if (cat->entries[i].cats & (1u << c)) {
                bit_set(allowed, i, on);
            }
        }
        return true;
    }
    int id = acl_catalog_find(cat, r, len);
    if (id < 0) {
        return false;
    }
    bool is_sub = memchr(r, '|', len) != NULL;
    if (is_sub && cat->entries[id].parent < 0) {
        return false;
    }
    bit_set(allowed, (size_t)id, on);
    if (!is_sub) {
        for (size_t i = 0; i < cat->n; i++) {
            if (cat->entries[i].parent == id) {
                bit_set(allowed, i, on);
            }
        }
    }
    return true;
}

static int command_rule(const struct acl *a,
                        struct acl_user *u,
                        const char *r,
                        size_t len,
                        const char **why)
{
    bool on = r[0] == '+';
    if (len > 2 && r[1] == '@' && is_word(r + 2, len - 2, "all")) {
        for (size_t i = 0; i < a->cat->n; i++) {
            bit_set(u->allowed, i, on);
        }
        rules_clear(u);
        u->base_all = on;
        return 0;
    }
    if (!command_rule_bits(a, u->allowed, r + 1, len - 1, on)) {
        *why = "Unknown command or category name in ACL";
        return RULE_ERR;
    }
    char *text = rk_strndup(r, len);
    if (text == NULL) {
        return RULE_NOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        text[i] = (char)tolower((unsigned char)text[i]);
    }
    /* A later identical rule overrides every bit of an earlier one, so
     * the earlier one can go: repeated SETUSERs do not grow the list. */
    for (size_t i = 0; i < u->n_rules; i++) {
        if (strcmp(u->rules[i], text) == 0) {
            rk_free(u->rules[i]);
            memmove(&u->rules[i], &u->rules[i + 1],
                    (u->n_rules - i - 1) * sizeof(char *));
            u->n_rules--;
            break;
        }
    }
    if (u->n_rules >= ACL_MAX_CMD_RULES) {
        rk_free(text);
        *why =
            "too many command rules (at most 512): start again from "
            "allcommands or nocommands";
        return RULE_ERR;
    }
    char **nr = rk_realloc(u->rules, (u->n_rules + 1) * sizeof(char *));
    if (nr == NULL) {
        rk_free(text);
        return RULE_NOMEM;
    }
    u->rules = nr;
    u->rules[u->n_rules++] = text;
    return 0;
}

static const char *const ERR_AFTER_ALLKEYS =
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not "
    "valid and does not have any effect. Try 'resetkeys' to start with an "
    "empty list of patterns";
static const char *const ERR_AFTER_ALLCHANS =
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is "
    "not valid and does not have any effect. Try 'resetchannels' to start "
    "with an empty list of patterns";

static int key_rule(struct acl_user *u,
                    const char *r,
                    size_t len,
                    const char **why)
{
    uint8_t flags = 0;
    size_t i = 0;
    if (r[0] == '%') {
        for (i = 1; i < len && r[i] != '~'; i++) {
            if (r[i] == 'R' || r[i] == 'r') {
                flags |= ACL_KEY_READ;
            } else if (r[i] == 'W' || r[i] == 'w') {
                flags |= ACL_KEY_WRITE;
            } else {
                *why = "Syntax error";
                return RULE_ERR;
            }
        }
        if (i >= len || flags == 0) {
            *why = "Syntax error";
            return RULE_ERR;
        }
    } else {
        flags = ACL_KEY_READ | ACL_KEY_WRITE;
    }
    const char *p = r + i + 1;
    size_t plen = len - i - 1;
    if (u->allkeys) {
        *why = ERR_AFTER_ALLKEYS;
        return RULE_ERR;
    }
    if (plen == 1 && p[0] == '*') {
        /* "*" for reading and writing is allkeys however it was given
         * (~*, %RW~*, or %R~* and %W~* merged), so that the "~*" that
         * describe shows for it replays to the same user. */
        for (size_t k = 0; k < u->n_keys; k++) {
            if (u->keys[k].len == 1 && u->keys[k].p[0] == '*') {
                flags |= u->keys[k].flags;
            }
        }
        if (flags == (ACL_KEY_READ | ACL_KEY_WRITE)) {
            patterns_clear(&u->keys, &u->n_keys);
            u->allkeys = true;
            return 0;
        }
    }
    return pattern_add(&u->keys, &u->n_keys, flags, p, plen, why);
}

static int apply_rule(const struct acl *a,
                      struct acl_user *u,
                      const char *r,
                      size_t len,
                      const char **why)
{
    uint8_t d[32];
    *why = "Syntax error";
    if (len == 0) {
        return RULE_ERR;
    }
    if (is_word(r, len, "on")) {
        u->on = true;
    } else if (is_word(r, len, "off")) {
        u->on = false;
    } else if (is_word(r, len, "nopass")) {
        u->nopass = true;
        u->n_pw = 0;
    } else if (is_word(r, len, "resetpass")) {
        u->nopass = false;
        u->n_pw = 0;
    } else if (r[0] == '>' || r[0] == '<') {
        if (len - 1 > ACL_MAX_PASSWORD) {
            *why = "password too long (at most 1024 bytes)";
            return RULE_ERR;
        }
        sha256(r + 1, len - 1, d);
        return r[0] == '>' ? pw_add(u, d, why) : pw_remove(u, d, why);
    } else if (r[0] == '#' || r[0] == '!') {
        if (!parse_hash(r + 1, len - 1, d)) {
            *why =
                "The password hash must be exactly 64 characters and "
                "contain only lowercase hexadecimal characters";
            return RULE_ERR;
        }
        return r[0] == '#' ? pw_add(u, d, why) : pw_remove(u, d, why);
    } else if (r[0] == '~' || r[0] == '%') {
        return key_rule(u, r, len, why);
    } else if (is_word(r, len, "allkeys")) {
        patterns_clear(&u->keys, &u->n_keys);
        u->allkeys = true;
    } else if (is_word(r, len, "resetkeys")) {
        patterns_clear(&u->keys, &u->n_keys);
        u->allkeys = false;
    } else if (r[0] == '&') {
        if (u->allchans) {
            *why = ERR_AFTER_ALLCHANS;
            return RULE_ERR;
        }
        if (len == 2 && r[1] == '*') {
            patterns_clear(&u->chans, &u->n_chans);
            u->allchans = true;
            return 0;
        }
        return pattern_add(&u->chans, &u->n_chans, 0, r + 1, len - 1, why);
    } else if (is_word(r, len, "allchannels")) {
        patterns_clear(&u->chans, &u->n_chans);
        u->allchans = true;
    } else if (is_word(r, len, "resetchannels")) {
        patterns_clear(&u->chans, &u->n_chans);
        u->allchans = false;
    } else if (r[0] == '+' || r[0] == '-') {
        return command_rule(a, u, r, len, why);
    } else if (is_word(r, len, "allcommands")) {
        return command_rule(a, u, "+@all", 5, why);
    } else if (is_word(r, len, "nocommands")) {
        return command_rule(a, u, "-@all", 5, why);
    } else if (is_word(r, len, "reset")) {
        u->nopass = false;
        u->n_pw = 0;
        patterns_clear(&u->keys, &u->n_keys);
        u->allkeys = false;
        patterns_clear(&u->chans, &u->n_chans);
        u->allchans = false;
        u->on = false;
        return command_rule(a, u, "-@all", 5, why);
    } else if (is_word(r, len, "clearselectors")) {
        /* no selectors exist, so there is nothing to clear */
    } else if (r[0] == '(') {
        *why =
            "selectors (rules in parentheses) are not supported by "
            "ringkv: give the user its rules directly";
        return RULE_ERR;
    } else {
        return RULE_ERR;
    }
    return 0;
}

/* ---- the table ----------------------------------------------------------- */

/* Takes u out of its table: freed now, or at its last unref. */
static void release(struct acl_user *u)
{
    if (u->refs) {
        u->detached = true;
    } else {
        user_free(u);
    }
}

static size_t user_pos(const struct acl *a,
                       const char *name,
                       size_t nlen,
                       bool *found)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct acl_user *u = a->users[mid];
        size_t m = u->nlen < nlen ? u->nlen : nlen;
        int cmp = memcmp(name, u->name, m);
        if (cmp == 0) {
            cmp = nlen < u->nlen ? -1 : nlen > u->nlen;
        }
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    *found = false;
    return lo;
}

struct acl *acl_create(const struct acl_catalog *cat)
{
    struct acl *a = rk_calloc(1, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    a->cat = cat;
    static const char *const rules[] = {"on", "nopass", "~*", "&*", "+@all"};
    size_t lens[5];
    for (size_t i = 0; i < 5; i++) {
        lens[i] = strlen(rules[i]);
    }
    char err[256];
    if (acl_setuser(a, "default", 7, 5, rules, lens, err, sizeof(err)) != 0) {
        acl_free(a);
        return NULL;
    }
    return a;
}

void acl_free(struct acl *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; i < a->n; i++) {
        release(a->users[i]);
    }
    rk_free(a->users);
    rk_free(a);
}

void acl_user_ref(struct acl_user *u)
{
    u->refs++;
}

void acl_user_unref(struct acl_user *u)
{
    if (u && --u->refs == 0 && u->detached) {
        user_free(u);
    }
}

const struct acl_catalog *acl_catalog_of(const struct acl *a)
{
    return a->cat;
}

size_t acl_user_count(const struct acl *a)
{
    return a->n;
}

struct acl_user *acl_user_at(const struct acl *a, size_t i)
{
    return i < a->n ? a->users[i] : NULL;
}

struct acl_user *acl_user_find(const struct acl *a,
                               const char *name,
                               size_t len)
{
    bool found;
    size_t i = user_pos(a, name, len, &found);
    return found ? a->users[i] : NULL;
}

struct acl_user *acl_default_user(const struct acl *a)
{
    return acl_user_find(a, "default", 7);
}

int acl_setuser(struct acl *a,
                const char *name,
                size_t nlen,
                size_t n,
                const char *const *rules,
                const size_t *lens,
                char *err,
                size_t errlen)
{
    if (nlen == 0 || nlen > ACL_MAX_NAME || !printable_token(name, nlen)) {
        snprintf(err, errlen,
                 nlen > ACL_MAX_NAME
                     ? "User names are limited to 128 bytes"
                     : "Usernames can't contain spaces or null characters");
        return -1;
    }
    bool found;
    size_t pos = user_pos(a, name, nlen, &found);
    if (!found && a->n >= ACL_MAX_USERS) {
        snprintf(err, errlen, "too many users (at most %d)", ACL_MAX_USERS);
        return -1;
    }
    struct acl_user *u =
        found ? user_clone(a, a->users[pos]) : user_new(a, name, nlen);
    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return -2;
    }
    for (size_t i = 0; i < n; i++) {
        const char *why = "Syntax error";
        int rc = apply_rule(a, u, rules[i], lens[i], &why);
        if (rc != 0) {
            if (rc == RULE_NOMEM) {
                snprintf(err, errlen, "out of memory");
            } else {
                snprintf(err, errlen,
                         "Error in ACL SETUSER modifier '%.*s': %s",
                         (int)(lens[i] > 128 ? 128 : lens[i]), rules[i], why);
            }
            user_free(u);
            return rc == RULE_NOMEM ? -2 : -1;
        }
    }
    if (found) {
        /* keep the address clients hold: swap the new contents in */
        struct acl_user *old = a->users[pos];
        unsigned refs = old->refs;
        user_free_contents(old);
        *old = *u;
        old->refs = refs;
        rk_free(u);
        return 0;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        struct acl_user **nu = rk_realloc(a->users, cap * sizeof(*nu));
        if (nu == NULL) {
            user_free(u);
            snprintf(err, errlen, "out of memory");
            return -2;
        }
        a->users = nu;
        a->cap = cap;
    }
    memmove(&a->users[pos + 1], &a->users[pos],
            (a->n - pos) * sizeof(*a->users));
    a->users[pos] = u;
    a->n++;
    return 0;
}

int acl_deluser(struct acl *a, const char *name, size_t nlen)
{
    if (nlen == 7 && memcmp(name, "default", 7) == 0) {
        return -1;
    }
    bool found;
    size_t pos = user_pos(a, name, nlen, &found);
    if (!found) {
        return 0;
    }
    release(a->users[pos]);
    memmove(&a->users[pos], &a->users[pos + 1],
            (a->n - pos - 1) * sizeof(*a->users));
    a->n--;
    return 1;
}

const char *acl_user_name(const struct acl_user *u)
{
    return u->name;
}

bool acl_user_enabled(const struct acl_user *u)
{
    return u->on;
}

bool acl_user_nopass(const struct acl_user *u)
{
    return u->nopass;
}

bool acl_user_check_password(const struct acl_user *u,
                             const void *pw,
                             size_t len)
{
    if (u->nopass) {
        return true;
    }
    uint8_t d[32];
    sha256(pw, len, d);
    bool ok = false;
    for (size_t i = 0; i < u->n_pw; i++) {
        ok |= CRYPTO_memcmp(u->pw[i], d, 32) == 0;
    }
    return ok;
}

bool acl_user_can_run(const struct acl_user *u, size_t id)
{
    return (u->allowed[id / 64] >> (id % 64)) & 1;
}

bool acl_user_all_keys(const struct acl_user *u)
{
    return u->allkeys;
}

bool acl_user_can_key(const struct acl_user *u,
                      const void *key,
                      size_t len,
                      unsigned need)
{
    if (u->allkeys) {
        return true;
    }
    for (size_t i = 0; i < u->n_keys; i++) {
        const struct acl_pattern *p = &u->keys[i];
        if ((p->flags & need) == need &&
            rk_glob_match(p->p, p->len, key, len, false)) {
            return true;
        }
    }
    return false;
}

/* ---- describing ---------------------------------------------------------- */

int acl_user_describe_commands(const struct acl_user *u, struct rk_buf *out)
{
    int rc = rk_buf_append_str(out, u->base_all ? "+@all" : "-@all");
    for (size_t i = 0; rc == RK_OK && i < u->n_rules; i++) {
        rc = rk_buf_appendf(out, " %s", u->rules[i]);
    }
    return rc;
}

int acl_user_describe_keys(const struct acl_user *u, struct rk_buf *out)
{
    if (u->allkeys) {
        return rk_buf_append_str(out, "~*");
    }
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && i < u->n_keys; i++) {
        const struct acl_pattern *p = &u->keys[i];
        const char *pre = p->flags == (ACL_KEY_READ | ACL_KEY_WRITE) ? "~"
                          : p->flags == ACL_KEY_READ                 ? "%R~"
                                                                     : "%W~";
        rc = rk_buf_appendf(out, "%s%s%s", i ? " " : "", pre, p->p);
    }
    return rc;
}

int acl_user_describe_channels(const struct acl_user *u, struct rk_buf *out)
{
    if (u->allchans) {
        return rk_buf_append_str(out, "&*");
    }
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && i < u->n_chans; i++) {
        rc = rk_buf_appendf(out, "%s&%s", i ? " " : "", u->chans[i].p);
    }
    return rc;
}

size_t acl_user_password_count(const struct acl_user *u)
{
    return u->n_pw;
}

void acl_user_password_hex(const struct acl_user *u, size_t i, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t j = 0; j < 32; j++) {
        hex[2 * j] = digits[u->pw[i][j] >> 4];
        hex[2 * j + 1] = digits[u->pw[i][j] & 15];
    }
    hex[64] = '\0';
}

int acl_user_describe(const struct acl_user *u, struct rk_buf *out)
{
    int rc = rk_buf_append_str(out, u->on ? "on" : "off");
    if (rc == RK_OK && u->nopass) {
        rc = rk_buf_append_str(out, " nopass");
    }
    for (size_t i = 0; rc == RK_OK && i < u->n_pw; i++) {
        char hex[65];
        acl_user_password_hex(u, i, hex);
        rc = rk_buf_appendf(out, " #%s", hex);
    }
    if (rc == RK_OK && (u->allkeys || u->n_keys)) {
        rc = rk_buf_append_str(out, " ");
        if (rc == RK_OK) {
            rc = acl_user_describe_keys(u, out);
        }
    }
    if (rc == RK_OK) {
        rc = rk_buf_append_str(out, u->allchans ? " " : " resetchannels");
        if (rc == RK_OK && u->n_chans) {
            rc = rk_buf_append_str(out, " ");
        }
        if (rc == RK_OK) {
            rc = acl_user_describe_channels(u, out);
        }
    }
    if (rc == RK_OK) {
        rc = rk_buf_append_str(out, " ");
    }
    return rc == RK_OK ? acl_user_describe_commands(u, out) : rc;
}

/* ---- the ACL file -------------------------------------------------------- */

#define FILE_MAX_TOKENS 2048

struct acl *acl_file_parse(const struct acl_catalog *cat,
                           const char *text,
                           size_t len,
                           bool *named_default,
                           char *err,
                           size_t errlen)
{
    *named_default = false;
    struct acl *a = acl_create(cat);
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char **tok = rk_calloc(FILE_MAX_TOKENS, sizeof(char *));
    size_t *tlen = rk_calloc(FILE_MAX_TOKENS, sizeof(size_t));
    bool *seen_default = named_default;
    char why[384];
    size_t lineno = 0, off = 0;
    if (tok == NULL || tlen == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    while (off < len) {
        const char *line = text + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - line) : len - off;
        off += ll + (nl != NULL);
        lineno++;
        if (ll > 0 && line[ll - 1] == '\r') {
            ll--;
        }
        size_t nt = 0;
        for (size_t i = 0; i < ll;) {
            while (i < ll && (line[i] == ' ' || line[i] == '\t')) {
                i++;
            }
            if (i >= ll) {
                break;
            }
            size_t start = i;
            while (i < ll && line[i] != ' ' && line[i] != '\t') {
                i++;
            }
            if (nt == FILE_MAX_TOKENS) {
                snprintf(err, errlen, "line %zu: too many rules", lineno);
                goto fail;
            }
            tok[nt] = line + start;
            tlen[nt++] = i - start;
        }
        if (nt == 0 || tok[0][0] == '#') {
            continue;
        }
        if (!is_word(tok[0], tlen[0], "user") || nt < 2) {
            snprintf(err, errlen,
                     "line %zu: should be 'user <name> <rule> ...'", lineno);
            goto fail;
        }
        bool is_default = tlen[1] == 7 && memcmp(tok[1], "default", 7) == 0;
        struct acl_user *prev = acl_user_find(a, tok[1], tlen[1]);
        if (prev && (!is_default || *seen_default)) {
            snprintf(err, errlen, "line %zu: user '%.*s' declared twice",
                     lineno, (int)(tlen[1] > 128 ? 128 : tlen[1]), tok[1]);
            goto fail;
        }
        /* as Redis: every declared user starts from "reset" */
        tok[0] = "reset";
        tlen[0] = 5;
        int rc =
            acl_setuser(a, tok[1], tlen[1], 1, tok, tlen, why, sizeof(why));
        if (rc == 0) {
            rc = acl_setuser(a, tok[1], tlen[1], nt - 2, tok + 2, tlen + 2, why,
                             sizeof(why));
        }
        if (rc != 0) {
            snprintf(err, errlen, "line %zu: %s", lineno, why);
            goto fail;
        }
        if (is_default) {
            *seen_default = true;
        }
    }
    rk_free(tok);
    rk_free(tlen);
    return a;
fail:
    rk_free(tok);
    rk_free(tlen);
    acl_free(a);
    return NULL;
}

int acl_file_format(const struct acl *a, struct rk_buf *out)
{
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && i < a->n; i++) {
        rc = rk_buf_appendf(out, "user %s ", a->users[i]->name);
        if (rc == RK_OK) {
            rc = acl_user_describe(a->users[i], out);
        }
        if (rc == RK_OK) {
            rc = rk_buf_append_str(out, "\n");
        }
    }
    return rc;
}

/* ---- ACL LOG ------------------------------------------------------------- */

static void entry_free(struct acl_log_entry *e)
{
    rk_free(e->object);
    rk_free(e->username);
    rk_free(e->client_info);
}

void acl_log_init(struct acl_log *l, size_t max)
{
    memset(l, 0, sizeof(*l));
    l->max = max;
}

void acl_log_reset(struct acl_log *l)
{
    for (size_t i = 0; i < l->n; i++) {
        entry_free(&l->e[i]);
    }
    l->n = 0;
}

void acl_log_fini(struct acl_log *l)
{
    acl_log_reset(l);
    rk_free(l->e);
    memset(l, 0, sizeof(*l));
}

void acl_log_set_max(struct acl_log *l, size_t max)
{
    l->max = max;
    while (l->n > max) {
        entry_free(&l->e[--l->n]);
    }
}

void acl_log_add(struct acl_log *l,
                 int reason,
                 bool in_multi,
                 const char *object,
                 size_t olen,
                 const char *username,
                 const char *client_info,
                 uint64_t now_ms)
{
    if (l->max == 0) {
        return;
    }
    if (olen > 128) {
        olen = 128;
    }
    for (size_t i = 0; i < l->n; i++) {
        struct acl_log_entry *e = &l->e[i];
        if (e->reason == reason && e->in_multi == in_multi &&
            strlen(e->object) == olen && memcmp(e->object, object, olen) == 0 &&
            strcmp(e->username, username) == 0 &&
            now_ms < e->updated_ms + 60000) {
            char *info = rk_strdup(client_info);
            if (info) {
                rk_free(e->client_info);
                e->client_info = info;
            }
            e->count++;
            e->updated_ms = now_ms;
            struct acl_log_entry tmp = *e;
            memmove(&l->e[1], &l->e[0], i * sizeof(*e));
            l->e[0] = tmp;
            return;
        }
    }
    struct acl_log_entry ne = {
        .count = 1,
        .reason = reason,
        .in_multi = in_multi,
        .object = rk_strndup(object, olen),
        .username = rk_strdup(username),
        .client_info = rk_strdup(client_info),
        .created_ms = now_ms,
        .updated_ms = now_ms,
        .entry_id = l->next_id,
    };
    if (ne.object == NULL || ne.username == NULL || ne.client_info == NULL) {
        entry_free(&ne);
        return;
    }
    if (l->n == l->max) {
        entry_free(&l->e[--l->n]);
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct acl_log_entry *n = rk_realloc(l->e, cap * sizeof(*n));
        if (n == NULL) {
            entry_free(&ne);
            return;
        }
        l->e = n;
        l->cap = cap;
    }
    memmove(&l->e[1], &l->e[0], l->n * sizeof(*l->e));
    l->e[0] = ne;
    l->n++;
    l->next_id++;
}
