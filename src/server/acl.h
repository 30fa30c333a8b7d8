/*
 * acl.h - ACL users (issue 15 item 3): who may run which command on which
 * keys, with Redis 7's rule language (https://redis.io/docs/latest/
 * operate/oss_and_stack/management/security/acl/).
 *
 * Pure logic: no sockets, clocks or files.  The server gives it a command
 * catalog (every command and subcommand with its ACL categories), asks it
 * whether a user may run a command on some keys, and reads and writes the
 * ACL file's text through acl_file_parse / acl_file_format (cmd/acl.c owns
 * the file itself).  Passwords are kept as SHA-256 digests (OpenSSL), as
 * Redis keeps them, and compared in constant time.
 *
 * What is supported of Redis's rules: on, off, nopass, resetpass, >pw, <pw,
 * #hash, !hash, ~pattern, %R~pattern, %W~pattern, %RW~pattern, allkeys,
 * resetkeys, &pattern, allchannels, resetchannels (stored and shown; ringkv
 * has no pub/sub), +cmd, -cmd, +cmd|sub, -cmd|sub, +@category, -@category,
 * allcommands, nocommands, reset, clearselectors.  Selectors "(...)" are
 * refused with an error that says so.
 *
 * Command rules are kept as given (Redis 7.2 keeps them the same way) and
 * replayed against the catalog, so "+@read" also grants read commands that
 * a later version adds.
 *
 * Sizes are bounded (ACL_MAX_*) so a hostile ACL SETUSER or ACL file cannot
 * grow a user without limit.  Thread: the event loop only.
 */
#ifndef RINGKV_SERVER_ACL_H
#define RINGKV_SERVER_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define ACL_MAX_USERS           4096
#define ACL_MAX_NAME            128  /* bytes of a user name */
#define ACL_MAX_PASSWORDS       64   /* per user */
#define ACL_MAX_PATTERNS        256  /* key patterns, and channel patterns */
#define ACL_MAX_PATTERN         1024 /* bytes of one pattern */
#define ACL_MAX_CMD_RULES       512  /* +/- command rules since the last base */
#define ACL_MAX_PASSWORD        1024 /* bytes of a clear-text password */
#define ACL_LOG_DEFAULT_MAX     128  /* acllog-max-len */
#define ACL_LOG_CLIENT_INFO_MAX 1024 /* bytes of client-info an entry keeps */

/* Redis's ACL categories (ACL CAT), in Redis's order. */
enum acl_category
{
    ACL_CAT_KEYSPACE,
    ACL_CAT_READ,
    ACL_CAT_WRITE,
    ACL_CAT_SET,
    ACL_CAT_SORTEDSET,
    ACL_CAT_LIST,
    ACL_CAT_HASH,
    ACL_CAT_STRING,
    ACL_CAT_BITMAP,
    ACL_CAT_HYPERLOGLOG,
    ACL_CAT_GEO,
    ACL_CAT_STREAM,
    ACL_CAT_PUBSUB,
    ACL_CAT_ADMIN,
    ACL_CAT_FAST,
    ACL_CAT_SLOW,
    ACL_CAT_BLOCKING,
    ACL_CAT_DANGEROUS,
    ACL_CAT_CONNECTION,
    ACL_CAT_TRANSACTION,
    ACL_CAT_SCRIPTING,
    ACL_CAT_COUNT
};

/* The name of category `cat` without '@' ("keyspace"), or NULL. */
const char *acl_category_name(int cat);
/* The category named name[0..len) (no '@', case-insensitive), or -1. */
int acl_category_lookup(const char *name, size_t len);

/* Key access a command needs on each of its keys (Redis's key-spec flags
 * reduced to what ACL checks: ACCESS = read, INSERT/UPDATE/DELETE = write). */
enum
{
    ACL_KEY_READ = 1,
    ACL_KEY_WRITE = 2,
};

/* One command or subcommand ("config|get") the server knows. */
struct acl_catalog_entry
{
    const char *name; /* lower case; "container|sub" for subcommands */
    uint32_t cats;    /* bit (1u << enum acl_category) per category */
    int parent;       /* index of the container, or -1 */
};

/* All of them; entries[i]'s id is i.  Borrowed by acl_create and by every
 * call after it: it must outlive the struct acl. */
struct acl_catalog
{
    size_t n;
    const struct acl_catalog_entry *entries;
};

/* Catalog id of the command named name[0..len) ("get", "config|get"),
 * case-insensitive, or -1. */
int acl_catalog_find(const struct acl_catalog *cat,
                     const char *name,
                     size_t len);

struct acl;      /* the user table */
struct acl_user; /* one user: owned by its struct acl */

/*
 * A table with the one user Redis starts with: "default", on, nopass,
 * ~* &* +@all.  Returns NULL when out of memory.  Free with acl_free.
 */
struct acl *acl_create(const struct acl_catalog *cat);
/* NULL is a no-op; users that clients still hold live on until their
 * last acl_user_unref. */
void acl_free(struct acl *a);

/* The catalog a was created with. */
const struct acl_catalog *acl_catalog_of(const struct acl *a);

/* Users, sorted by name.  acl_user_at(a, i) for i < acl_user_count(a). */
size_t acl_user_count(const struct acl *a);
struct acl_user *acl_user_at(const struct acl *a, size_t i);
/* The user named name[0..len) (case-sensitive, as Redis), or NULL. */
struct acl_user *acl_user_find(const struct acl *a,
                               const char *name,
                               size_t len);
/* The user "default" (always present). */
struct acl_user *acl_default_user(const struct acl *a);

/*
 * ACL SETUSER: creates the user if it does not exist, then applies
 * rules[0..n) in order.  All or nothing: on an error nothing changes
 * (a new user is not created) and `err` holds Redis's message without the
 * "ERR " prefix ("Error in ACL SETUSER modifier '<r>': Syntax error").
 * Existing users keep their address (clients hold pointers to them).
 * Returns 0, -1 on a rule error, RK_ENOMEM-like -2 when out of memory.
 */
int acl_setuser(struct acl *a,
                const char *name,
                size_t nlen,
                size_t n,
                const char *const *rules,
                const size_t *lens,
                char *err,
                size_t errlen);

/*
 * ACL DELUSER of one user: 1 when deleted (freed once no client holds
 * it: acl_user_unref), 0 when there is no such user, -1 for "default"
 * (it cannot be removed).
 */
int acl_deluser(struct acl *a, const char *name, size_t nlen);

/*
 * A client holds u (acl_user_ref) while authenticated as it; a user that
 * ACL DELUSER or ACL LOAD takes out of its table stays valid until its
 * last acl_user_unref (NULL is a no-op), which frees it.
 */
void acl_user_ref(struct acl_user *u);
void acl_user_unref(struct acl_user *u);

/* Name (NUL-terminated, owned by the user) and state. */
const char *acl_user_name(const struct acl_user *u);
bool acl_user_enabled(const struct acl_user *u);
bool acl_user_nopass(const struct acl_user *u);

/*
 * Whether pw[0..len) is one of u's passwords (or u is nopass).  Compares
 * SHA-256 digests in constant time.  Does not look at on/off.
 */
bool acl_user_check_password(const struct acl_user *u,
                             const void *pw,
                             size_t len);

/* Whether u may run catalog entry `id` (a subcommand's own id when the
 * command has subcommands). */
bool acl_user_can_run(const struct acl_user *u, size_t id);

/*
 * Whether u may touch key[0..len) with access `need` (ACL_KEY_* bits; 0 =
 * only existence or metadata, which any matching pattern allows).
 */
bool acl_user_can_key(const struct acl_user *u,
                      const void *key,
                      size_t len,
                      unsigned need);

/* Whether u has ~* (allkeys, also given as %RW~* or as %R~* plus %W~*):
 * callers may skip key checks. */
bool acl_user_all_keys(const struct acl_user *u);

/*
 * The user's rules, as ACL LIST shows them after "user NAME ": flags,
 * passwords (#hex), key patterns, channel patterns, command rules.
 * Appends to `out`; RK_OK or RK_ENOMEM.
 */
int acl_user_describe(const struct acl_user *u, struct rk_buf *out);

/* Parts of that for ACL GETUSER, each appended to `out` (RK_OK or
 * RK_ENOMEM): the command rules ("-@all +get"), the key patterns
 * ("~foo* %R~bar*"), the channel patterns ("&*" or ""). */
int acl_user_describe_commands(const struct acl_user *u, struct rk_buf *out);
int acl_user_describe_keys(const struct acl_user *u, struct rk_buf *out);
int acl_user_describe_channels(const struct acl_user *u, struct rk_buf *out);
/* The i-th password digest as 64 lower-case hex digits + NUL, for
 * i < acl_user_password_count(u). */
size_t acl_user_password_count(const struct acl_user *u);
void acl_user_password_hex(const struct acl_user *u, size_t i, char hex[65]);

/*
 * Parses an ACL file's text[0..len) ("user NAME RULE ..." lines; blank
 * lines and lines starting with '#' are skipped) into a new table.  A user
 * may appear once.  "default" exists even when the file does not name it
 * (then *named_default is false, and the caller applies requirepass).
 * Returns the new table, or NULL with `err` ("line 3: Error in ...").
 */
struct acl *acl_file_parse(const struct acl_catalog *cat,
                           const char *text,
                           size_t len,
                           bool *named_default,
                           char *err,
                           size_t errlen);

/* Appends the ACL file text of every user ("user NAME ...\n", sorted by
 * name) to `out`: what ACL SAVE writes.  RK_OK or RK_ENOMEM. */
int acl_file_format(const struct acl *a, struct rk_buf *out);

/* ---- ACL LOG ------------------------------------------------------------ */

enum acl_log_reason
{
    ACL_LOG_AUTH,
    ACL_LOG_COMMAND,
    ACL_LOG_KEY,
};

struct acl_log_entry
{
    uint64_t count;      /* denials folded into this entry */
    int reason;          /* enum acl_log_reason */
    bool in_multi;       /* context: "multi" or "toplevel" */
    char *object;        /* command name, key, or "AUTH"; owned */
    char *username;      /* owned */
    char *client_info;   /* the CLIENT INFO line at the last one; owned */
    uint64_t created_ms; /* wall clock, Unix ms */
    uint64_t updated_ms; /* of the last denial folded in */
    uint64_t entry_id;   /* increasing */
};

/* The newest entries first; at most `max` of them. */
struct acl_log
{
    struct acl_log_entry *e; /* e[0] is the newest */
    size_t n, cap, max;
    uint64_t next_id;
};

void acl_log_init(struct acl_log *l, size_t max);
void acl_log_fini(struct acl_log *l);
void acl_log_reset(struct acl_log *l);
/* Sets the maximum (acllog-max-len), dropping the oldest beyond it. */
void acl_log_set_max(struct acl_log *l, size_t max);
/*
 * Records one denial at `now_ms`.  As Redis does, a denial with the same
 * reason, context, object and user as an entry updated in the last 60 s
 * increments that entry's count instead of adding one.  Strings are
 * copied (object truncated to 128 bytes).  Out of memory drops the entry.
 */
void acl_log_add(struct acl_log *l,
                 int reason,
                 bool in_multi,
                 const char *object,
                 size_t olen,
                 const char *username,
                 const char *client_info,
                 uint64_t now_ms);

#endif /* RINGKV_SERVER_ACL_H */
