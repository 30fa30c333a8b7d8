/*
 * cmd/acl.c - ACL users in the server (issue 15 item 3): the command
 * catalog acl.h checks against (categories from the command table), the
 * check every command passes in command_dispatch, AUTH's user lookup,
 * requirepass as the default user's password, the ACL file (--aclfile),
 * and the ACL command with Redis 7's subcommands, replies and error texts
 * (https://redis.io/docs/latest/commands/acl/).
 */
#include "server/acl.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "server/cmd/internal.h"
#include "server/fileio.h"
#include "server/internal.h"

#define ACL_FILE_MAX (64u * 1024 * 1024) /* bytes an ACL file may hold */

/* ---- the catalog ----------------------------------------------------------
 */

/* Built once from the (static) command table: every command, each
 * followed by its subcommands, so a subcommand's id is its container's
 * + 1 + its index. */
static struct acl_catalog_entry *g_entries;
static size_t *g_first_id; /* by command_index */
static struct acl_catalog g_catalog;

static bool name_in(const char *name, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(name, *list) == 0) {
            return true;
        }
    }
    return false;
}

/* Redis's categories for a command, from its flags and group (checked
 * against a real redis-server by tests/integration/test_acl.py). */
static uint32_t categories_of(const struct command *cmd, bool container)
{
    static const char *const keyspace[] = {"dbsize", "flushall", "flushdb",
                                           NULL};
    static const char *const dangerous[] = {"flushall", "flushdb", "keys",
                                            "info", NULL};
    static const char *const connection[] = {"asking", "readonly", "readwrite",
                                             NULL};
    if (container) {
        /* as Redis: only the subcommands count, but COMMAND is @connection */
        return (1u << ACL_CAT_SLOW) |
               (strcmp(cmd->name, "command") == 0 ? 1u << ACL_CAT_CONNECTION
                                                  : 0);
    }
    uint32_t c = 0;
    c |= (cmd->flags & CMD_WRITE) ? 1u << ACL_CAT_WRITE : 0;
    c |= (cmd->flags & CMD_READONLY) ? 1u << ACL_CAT_READ : 0;
    c |= (cmd->flags & CMD_ADMIN)
             ? (1u << ACL_CAT_ADMIN) | (1u << ACL_CAT_DANGEROUS)
             : 0;
    c |= (cmd->flags & CMD_FAST) ? 1u << ACL_CAT_FAST : 1u << ACL_CAT_SLOW;
    const char *g = cmd->group;
    if (strcmp(g, "generic") == 0 || name_in(cmd->name, keyspace) ||
        (strcmp(g, "cluster") == 0 && cmd->first_key > 0)) {
        c |= 1u << ACL_CAT_KEYSPACE;
    }
    if (strcmp(g, "connection") == 0 || name_in(cmd->name, connection) ||
        strncmp(cmd->name, "command", 7) == 0) {
        c |= 1u << ACL_CAT_CONNECTION;
    }
    if (strcmp(g, "transactions") == 0) {
        c |= 1u << ACL_CAT_TRANSACTION;
    }
    int typed = acl_category_lookup(g, strlen(g)); /* string, hash, set... */
    if (typed == ACL_CAT_STRING || typed == ACL_CAT_HASH ||
        typed == ACL_CAT_SET || typed == ACL_CAT_LIST ||
        typed == ACL_CAT_SORTEDSET) {
        c |= 1u << typed;
    }
    if (name_in(cmd->name, dangerous)) {
        c |= 1u << ACL_CAT_DANGEROUS;
    }
    return c;
}

static size_t n_subs(const struct command *cmd)
{
    size_t n = 0;
    while (cmd->subcommands && cmd->subcommands[n].name) {
        n++;
    }
    return n;
}

static int catalog_build(void)
{
    if (g_entries) {
        return RK_OK;
    }
    size_t total = 0, nc = command_count();
    for (size_t i = 0; i < nc; i++) {
        total += 1 + n_subs(command_at(i));
    }
    g_entries = rk_calloc(total, sizeof(*g_entries));
    g_first_id = rk_calloc(nc, sizeof(*g_first_id));
    if (g_entries == NULL || g_first_id == NULL) {
        rk_free(g_entries);
        rk_free(g_first_id);
        g_entries = NULL;
        return RK_ENOMEM;
    }
    size_t id = 0;
    for (size_t i = 0; i < nc; i++) {
        const struct command *cmd = command_at(i);
        size_t ns = n_subs(cmd);
        g_first_id[i] = id;
        g_entries[id] = (struct acl_catalog_entry){
            cmd->name, categories_of(cmd, ns > 0), -1};
        int parent = (int)id++;
        for (size_t k = 0; k < ns; k++) {
            const struct command *sc = &cmd->subcommands[k];
            g_entries[id++] = (struct acl_catalog_entry){
                sc->name, categories_of(sc, false), parent};
        }
    }
    g_catalog.n = total;
    g_catalog.entries = g_entries;
    return RK_OK;
}

static size_t command_id(const struct command *cmd, const struct command *sc)
{
    size_t base = g_first_id[command_index(cmd)];
    return sc ? base + 1 + (size_t)(sc - cmd->subcommands) : base;
}

uint32_t cmd__acl_categories(const struct command *cmd,
                             const struct command *parent)
{
    if (catalog_build() != RK_OK) {
        return 0;
    }
    return g_entries[parent ? command_id(parent, cmd) : command_id(cmd, NULL)]
        .cats;
}

/* What a command needs of each key: Redis 7's key-spec flags reduced to
 * read (ACCESS: the command returns data from the value) and write
 * (INSERT, UPDATE, DELETE); checked against redis-server by
 * tests/integration/test_acl.py. */
static unsigned key_need(const struct command *cmd,
                         size_t argc,
                         const struct resp_arg *argv,
                         size_t key_index)
{
    /* two keys with their own specs: the source RW ACCESS DELETE (RENAME)
     * or RO ACCESS (COPY), the destination OW UPDATE */
    static const char *const two_keys[] = {"rename", "renamenx", "copy", NULL};
    if (name_in(cmd->name, two_keys)) {
        return key_index == 2                   ? ACL_KEY_WRITE
               : strcmp(cmd->name, "copy") == 0 ? ACL_KEY_READ
                                                : ACL_KEY_READ | ACL_KEY_WRITE;
    }
    /* no ACCESS/INSERT/UPDATE/DELETE flag in Redis's key specs */
    static const char *const meta[] = {"exists", "type",  "strlen",
                                       "touch",  "watch", NULL};
    /* OW or RW without ACCESS */
    static const char *const write_only[] = {
        "setex",      "psetex",  "mset",   "msetnx",   "setnx",
        "del",        "unlink",  "expire", "expireat", "pexpire",
        "pexpireat",  "persist", "append", "setrange", "ringkv.del",
        "ringkv.put", NULL};
    if (name_in(cmd->name, meta)) {
        return 0;
    }
    if (name_in(cmd->name, write_only)) {
        return ACL_KEY_WRITE;
    }
    if (strcmp(cmd->name, "set") == 0) {
        for (size_t i = 3; i < argc; i++) {
            if (cmd__arg_is(&argv[i], "GET")) {
                return ACL_KEY_READ | ACL_KEY_WRITE;
            }
        }
        return ACL_KEY_WRITE;
    }
    if (cmd->flags & CMD_WRITE) {
        return ACL_KEY_READ | ACL_KEY_WRITE;
    }
    return (cmd->flags & CMD_READONLY) ? ACL_KEY_READ : 0;
}

/* ---- users of clients -----------------------------------------------------
 */

void server_client_set_user(struct client *c, struct acl_user *u)
{
    if (u) {
        acl_user_ref(u);
    }
    acl_user_unref(c->user);
    c->user = u;
}

bool server_auth_required(const struct server *s)
{
    const struct acl_user *d = acl_default_user(s->acl);
    return !(acl_user_enabled(d) && acl_user_nopass(d));
}

struct acl_user *server_acl_authenticate(struct server *s,
                                         const char *user,
                                         size_t ulen,
                                         const char *pw,
                                         size_t plen)
{
    struct acl_user *u = acl_user_find(s->acl, user, ulen);
    bool ok = u && acl_user_check_password(u, pw, plen);
    return ok && acl_user_enabled(u) ? u : NULL;
}

/* The rules requirepass stands for: "nopass", or "resetpass >PW". */
static int apply_requirepass(struct acl *a,
                             const char *pw,
                             char *err,
                             size_t errlen)
{
    char rule[sizeof(((struct rk_config *)0)->requirepass) + 1];
    const char *rules[2];
    size_t lens[2], n = 0;
    if (pw[0] == '\0') {
        rules[n] = "nopass";
        lens[n++] = 6;
    } else {
        snprintf(rule, sizeof(rule), ">%s", pw);
        rules[n] = "resetpass";
        lens[n++] = 9;
        rules[n] = rule;
        lens[n++] = strlen(rule);
    }
    int rc = acl_setuser(a, "default", 7, n, rules, lens, err, errlen);
    memset(rule, 0, sizeof(rule));
    return rc;
}

void server_acl_requirepass_changed(struct server *s)
{
    char err[256];
    if (apply_requirepass(s->acl, s->cfg->requirepass, err, sizeof(err)) != 0) {
        rk_log(RK_LOG_ERROR, "acl_requirepass", "error=\"%s\"", err);
    }
}

/* Whether users a and b have the same rules (passwords included). */
static bool same_rules(const struct acl_user *a, const struct acl_user *b)
{
    struct rk_buf x, y;
    rk_buf_init(&x);
    rk_buf_init(&y);
    bool same = acl_user_describe(a, &x) == RK_OK &&
                acl_user_describe(b, &y) == RK_OK && x.len == y.len &&
                memcmp(x.base, y.base, x.len) == 0;
    rk_buf_fini(&x);
    rk_buf_fini(&y);
    return same;
}

/* Points every socket client at the user of the same name in the current
 * table.  A client whose user is gone, or (after ACL LOAD: `reload`) whose
 * user's rules or passwords changed, is closed, as Redis 7 does: rotating
 * a leaked password in the file must end the sessions opened with it. */
static void rebind_clients(struct server *s, struct client *self, bool reload)
{
    for (struct client *c = s->clients; c; c = c->next) {
        if (c->user == NULL) {
            continue;
        }
        const char *name = acl_user_name(c->user);
        struct acl_user *u = acl_user_find(s->acl, name, strlen(name));
        if (u == c->user) {
            continue;
        }
        if (u != NULL && reload && !same_rules(u, c->user)) {
            u = NULL;
        }
        server_client_set_user(c, u);
        if (u == NULL) {
            c->authed = false;
            if (c == self) {
                c->close_after_reply = true;
            } else {
                c->acl_killed = true;
                s->acl_kill_pending = true;
            }
        }
    }
}

/* Reads and parses the ACL file into a new table (with requirepass for
 * "default" when the file does not declare it).  NULL with `err`. */
static struct acl *load_file(struct server *s, char *err, size_t errlen)
{
    const char *path = s->cfg->aclfile;
    struct rk_buf text;
    rk_buf_init(&text);
    struct stat st;
    int rc = rk_file_read(path, ACL_FILE_MAX, &text, &st);
    if (rc != RK_OK) {
        snprintf(err, errlen, "%s: %s", path,
                 rc == RK_ENOTFOUND
                     ? "no such file (create an empty one: touch FILE; "
                       "chmod 600 FILE)"
                 : rc == RK_EINVAL ? "not a regular file, a symbolic link, "
                                     "or larger than 64 MiB"
                 : rc == RK_ENOMEM ? "out of memory"
                                   : strerror(errno));
        rk_buf_fini(&text);
        return NULL;
    }
    if ((st.st_mode & 022) != 0 || st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "%s: anyone who can write it can add a user: it must be "
                 "owned by the user ringkvd runs as and not writable by "
                 "group or others (chmod 600 %s)",
                 path, path);
        rk_buf_fini(&text);
        return NULL;
    }
    if ((st.st_mode & 044) != 0) {
        rk_log(RK_LOG_WARN, "acl_file_readable",
               "path=%s msg=\"group or others can read the password hashes "
               "(unsalted SHA-256, as Redis keeps them): chmod 600 the "
               "file\"",
               path);
    }
    bool named_default = false;
    char why[512];
    struct acl *a = acl_file_parse(&g_catalog, text.base ? text.base : "",
                                   text.len, &named_default, why, sizeof(why));
    rk_buf_fini(&text);
    if (a == NULL) {
        snprintf(err, errlen, "%s: %s", path, why);
        return NULL;
    }
    if (named_default && s->cfg->requirepass[0] != '\0') {
        rk_log(RK_LOG_WARN, "acl_requirepass_ignored",
               "path=%s msg=\"the ACL file declares the default user, whose "
               "password it keeps: requirepass is not applied (change the "
               "password with ACL SETUSER default resetpass >PW, then ACL "
               "SAVE)\"",
               path);
    }
    if (!named_default &&
        apply_requirepass(a, s->cfg->requirepass, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        acl_free(a);
        return NULL;
    }
    return a;
}

int server_acl_init(struct server *s, char *err, size_t errlen)
{
    if (catalog_build() != RK_OK) {
        snprintf(err, errlen, "out of memory");
        return RK_ENOMEM;
    }
    acl_log_init(&s->acl_log, s->cfg->acllog_max_len);
    if (s->cfg->aclfile[0] != '\0') {
        s->acl = load_file(s, err, errlen);
        return s->acl ? RK_OK : RK_EINVAL;
    }
    s->acl = acl_create(&g_catalog);
    if (s->acl == NULL ||
        apply_requirepass(s->acl, s->cfg->requirepass, err, errlen) != 0) {
        snprintf(err, errlen, "out of memory");
        return RK_ENOMEM;
    }
    return RK_OK;
}

void server_acl_fini(struct server *s)
{
    acl_free(s->acl);
    s->acl = NULL;
    acl_log_fini(&s->acl_log);
}

/* ---- the check of every command ------------------------------------------ */

static void log_denial(struct client *c,
                       int reason,
                       const char *object,
                       size_t olen,
                       const char *username)
{
    struct server *s = c->srv;
    struct rk_buf info;
    rk_buf_init(&info);
    cmd__client_info(c, &info);
    if (info.len && info.base[info.len - 1] == '\n') {
        info.base[--info.len] = '\0';
    }
    if (info.len > ACL_LOG_CLIENT_INFO_MAX) {
        /* a client may name itself with megabytes (CLIENT SETNAME): the
         * log keeps ACL_LOG_DEFAULT_MAX entries of at most this */
        memcpy(info.base + ACL_LOG_CLIENT_INFO_MAX - 3, "...", 4);
        info.len = ACL_LOG_CLIENT_INFO_MAX;
    }
    acl_log_add(&s->acl_log, reason, c->in_multi, object, olen, username,
                info.base ? info.base : "", server_now_ms());
    rk_buf_fini(&info);
}

void cmd__acl_auth_failed(struct client *c, const char *user, size_t ulen)
{
    char name[ACL_MAX_NAME + 1];
    size_t n = ulen > ACL_MAX_NAME ? ACL_MAX_NAME : ulen;
    memcpy(name, user, n);
    name[n] = '\0';
    c->srv->stats.acl_denied_auth++;
    log_denial(c, ACL_LOG_AUTH, "AUTH", 4, name);
}

void server_acl_http_auth_failed(struct server *s,
                                 const char *user,
                                 size_t ulen,
                                 const char *peer)
{
    char name[ACL_MAX_NAME + 1], info[128];
    size_t n = ulen > ACL_MAX_NAME ? ACL_MAX_NAME : ulen;
    memcpy(name, user, n);
    name[n] = '\0';
    snprintf(info, sizeof(info), "addr=%s http", peer);
    s->stats.acl_denied_auth++;
    acl_log_add(&s->acl_log, ACL_LOG_AUTH, false, "AUTH", 4, name, info,
                server_now_ms());
}

/* The subcommand entry argv[1] names when cmd has subcommands, or NULL. */
static const struct command *find_sub(const struct command *cmd,
                                      size_t argc,
                                      const struct resp_arg *argv)
{
    if (cmd->subcommands == NULL || argc < 2) {
        return NULL;
    }
    for (const struct command *x = cmd->subcommands; x->name; x++) {
        const char *bar = strchr(x->name, '|');
        if (bar && strlen(bar + 1) == argv[1].len &&
            strncasecmp(bar + 1, argv[1].ptr, argv[1].len) == 0) {
            return x;
        }
    }
    return NULL;
}

/*
 * Whether user u may run cmd (subcommand sc or NULL) with these arguments:
 * 0, or 1 for the command and 2 for a key with `*bad` the index of the
 * key argument.
 */
static int check(const struct acl_user *u,
                 const struct command *cmd,
                 const struct command *sc,
                 size_t argc,
                 const struct resp_arg *argv,
                 size_t *bad)
{
    if (!acl_user_can_run(u, command_id(cmd, sc))) {
        return 1;
    }
    if (cmd->first_key <= 0 || acl_user_all_keys(u)) {
        return 0;
    }
    size_t last = cmd->last_key < 0 ? argc - 1 : (size_t)cmd->last_key;
    for (size_t i = (size_t)cmd->first_key; i <= last && i < argc;
         i += (size_t)cmd->key_step) {
        unsigned need = key_need(cmd, argc, argv, i);
        if (!acl_user_can_key(u, argv[i].ptr, argv[i].len, need)) {
            *bad = i;
            return 2;
        }
    }
    return 0;
}

bool cmd__acl_would_allow(const struct client *c,
                          const struct command *cmd,
                          size_t argc,
                          const struct resp_arg *argv)
{
    if (c->user == NULL || (cmd->flags & CMD_NOAUTH)) {
        return true;
    }
    size_t bad = 0;
    return check(c->user, cmd, find_sub(cmd, argc, argv), argc, argv, &bad) ==
           0;
}

bool cmd__acl_allows(struct client *c,
                     const struct command *cmd,
                     const struct command *sc,
                     size_t argc,
                     const struct resp_arg *argv,
                     char *msg,
                     size_t msglen)
{
    if (c->user == NULL || (cmd->flags & CMD_NOAUTH)) {
        return true;
    }
    if (sc == NULL) {
        sc = find_sub(cmd, argc, argv);
    }
    size_t bad = 0;
    int rc = check(c->user, cmd, sc, argc, argv, &bad);
    if (rc == 0) {
        return true;
    }
    const char *name = sc ? sc->name : cmd->name;
    c->last_cmd = cmd->name; /* CLIENT INFO in ACL LOG names it */
    if (rc == 1) {
        c->srv->stats.acl_denied_cmd++;
        snprintf(msg, msglen,
                 "NOPERM this user has no permissions to run the '%s' "
                 "command",
                 name);
        log_denial(c, ACL_LOG_COMMAND, name, strlen(name),
                   acl_user_name(c->user));
    } else {
        c->srv->stats.acl_denied_key++;
        snprintf(msg, msglen,
                 "NOPERM this user has no permissions to access one of the "
                 "keys used as arguments");
        log_denial(c, ACL_LOG_KEY, argv[bad].ptr, argv[bad].len,
                   acl_user_name(c->user));
    }
    return false;
}

/* ---- the ACL command ------------------------------------------------------
 */

static struct acl_user *arg_user(struct client *c, const struct resp_arg *a)
{
    return acl_user_find(c->srv->acl, a->ptr, a->len);
}

static void reply_buf(struct client *c, struct rk_buf *b)
{
    reply_bulk(c, b->base ? b->base : "", b->len);
    rk_buf_clear(b);
}

static void acl_getuser(struct client *c, const struct resp_arg *name)
{
    struct acl_user *u = arg_user(c, name);
    if (u == NULL) {
        reply_null(c);
        return;
    }
    struct rk_buf b;
    rk_buf_init(&b);
    reply_map(c, 6);
    reply_bulk_str(c, "flags");
    resp_w_set(&c->obuf, c->proto, 1 + acl_user_nopass(u));
    reply_bulk_str(c, acl_user_enabled(u) ? "on" : "off");
    if (acl_user_nopass(u)) {
        reply_bulk_str(c, "nopass");
    }
    reply_bulk_str(c, "passwords");
    reply_array(c, acl_user_password_count(u));
    for (size_t i = 0; i < acl_user_password_count(u); i++) {
        char hex[65];
        acl_user_password_hex(u, i, hex);
        reply_bulk_str(c, hex);
    }
    reply_bulk_str(c, "commands");
    acl_user_describe_commands(u, &b);
    reply_buf(c, &b);
    reply_bulk_str(c, "keys");
    acl_user_describe_keys(u, &b);
    reply_buf(c, &b);
    reply_bulk_str(c, "channels");
    acl_user_describe_channels(u, &b);
    reply_buf(c, &b);
    reply_bulk_str(c, "selectors");
    reply_array(c, 0);
    rk_buf_fini(&b);
}

static void acl_setuser_cmd(struct client *c,
                            size_t argc,
                            const struct resp_arg *argv)
{
    size_t n = argc - 3;
    const char **rules = rk_calloc(n ? n : 1, sizeof(char *));
    size_t *lens = rk_calloc(n ? n : 1, sizeof(size_t));
    if (rules == NULL || lens == NULL) {
        rk_free(rules);
        rk_free(lens);
        reply_error(c, "ERR out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rules[i] = argv[3 + i].ptr;
        lens[i] = argv[3 + i].len;
    }
    char err[512];
    int rc = acl_setuser(c->srv->acl, argv[2].ptr, argv[2].len, n, rules, lens,
                         err, sizeof(err));
    rk_free(rules);
    rk_free(lens);
    if (rc != 0) {
        reply_errorf(c, "ERR %s", err);
        return;
    }
    reply_ok(c);
}

static void acl_deluser_cmd(struct client *c,
                            size_t argc,
                            const struct resp_arg *argv)
{
    struct server *s = c->srv;
    for (size_t i = 2; i < argc; i++) {
        if (argv[i].len == 7 && memcmp(argv[i].ptr, "default", 7) == 0) {
            reply_error(c, "ERR The 'default' user cannot be removed");
            return;
        }
    }
    int64_t n = 0;
    for (size_t i = 2; i < argc; i++) {
        n += acl_deluser(s->acl, argv[i].ptr, argv[i].len) == 1;
    }
    rebind_clients(s, c, false);
    reply_int(c, n);
}

static void acl_dryrun(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    struct acl_user *u = arg_user(c, &argv[2]);
    if (u == NULL) {
        reply_errorf(c, "ERR User '%.*s' not found",
                     (int)(argv[2].len > 128 ? 128 : argv[2].len), argv[2].ptr);
        return;
    }
    const struct resp_arg *cargv = &argv[3];
    size_t cargc = argc - 3;
    const struct command *cmd = command_lookup(cargv[0].ptr, cargv[0].len);
    if (cmd == NULL) {
        reply_errorf(c, "ERR Command '%.*s' not found",
                     (int)(cargv[0].len > 128 ? 128 : cargv[0].len),
                     cargv[0].ptr);
        return;
    }
    const struct command *sc = find_sub(cmd, cargc, cargv);
    const struct command *a = sc ? sc : cmd;
    if (a->arity > 0 ? cargc != (size_t)a->arity : cargc < (size_t)-a->arity) {
        reply_errorf(c, "ERR wrong number of arguments for '%s' command",
                     a->name);
        return;
    }
    size_t bad = 0;
    int rc =
        (cmd->flags & CMD_NOAUTH) ? 0 : check(u, cmd, sc, cargc, cargv, &bad);
    if (rc == 0) {
        reply_ok(c);
    } else if (rc == 1) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "This user has no permissions to run the '%s' command",
                 a->name);
        reply_bulk_str(c, msg);
    } else {
        struct rk_buf b;
        rk_buf_init(&b);
        rk_buf_appendf(&b,
                       "This user has no permissions to access the '%.*s' "
                       "key",
                       (int)(cargv[bad].len > 128 ? 128 : cargv[bad].len),
                       cargv[bad].ptr);
        reply_buf(c, &b);
        rk_buf_fini(&b);
    }
}

static void acl_cat(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc == 2) {
        reply_array(c, ACL_CAT_COUNT);
        for (int i = 0; i < ACL_CAT_COUNT; i++) {
            reply_bulk_str(c, acl_category_name(i));
        }
        return;
    }
    const char *n = argv[2].ptr;
    size_t len = argv[2].len;
    if (len > 0 && n[0] == '@') {
        n++;
        len--;
    }
    int cat = acl_category_lookup(n, len);
    if (cat < 0) {
        reply_errorf(c, "ERR Unknown category '%.*s'",
                     (int)(argv[2].len > 128 ? 128 : argv[2].len), argv[2].ptr);
        return;
    }
    size_t count = 0;
    for (size_t i = 0; i < g_catalog.n; i++) {
        count += (g_entries[i].cats >> cat) & 1;
    }
    reply_array(c, count);
    for (size_t i = 0; i < g_catalog.n; i++) {
        if ((g_entries[i].cats >> cat) & 1) {
            reply_bulk_str(c, g_entries[i].name);
        }
    }
}

static void acl_genpass(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv)
{
    int64_t bits = 256;
    if (argc == 3 &&
        (!cmd__arg_i64(&argv[2], &bits) || bits <= 0 || bits > 4096)) {
        reply_error(c,
                    "ERR ACL GENPASS argument must be the number of bits for "
                    "the output password, a positive number up to 4096");
        return;
    }
    size_t chars = ((size_t)bits + 3) / 4;
    unsigned char raw[512];
    char hex[1025];
    if (RAND_bytes(raw, (int)((chars + 1) / 2)) != 1) {
        reply_error(c, "ERR no random bytes available");
        return;
    }
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < chars; i++) {
        unsigned char b = raw[i / 2];
        hex[i] = digits[(i % 2) ? (b & 15) : (b >> 4)];
    }
    reply_bulk(c, hex, chars);
}

static void acl_log_cmd(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv)
{
    struct acl_log *l = &c->srv->acl_log;
    size_t count = 10;
    if (argc == 3) {
        int64_t v;
        if (cmd__arg_is(&argv[2], "RESET")) {
            acl_log_reset(l);
            reply_ok(c);
            return;
        }
        if (!cmd__arg_i64(&argv[2], &v) || v < 0) {
            reply_error(c, "ERR value is out of range, must be positive");
            return;
        }
        count = (size_t)v;
    }
    size_t n = count < l->n ? count : l->n;
    uint64_t now = server_now_ms();
    static const char *const reasons[] = {"auth", "command", "key"};
    reply_array(c, n);
    for (size_t i = 0; i < n; i++) {
        const struct acl_log_entry *e = &l->e[i];
        reply_map(c, 10);
        reply_bulk_str(c, "count");
        reply_int(c, (int64_t)e->count);
        reply_bulk_str(c, "reason");
        reply_bulk_str(c, reasons[e->reason]);
        reply_bulk_str(c, "context");
        reply_bulk_str(c, e->in_multi ? "multi" : "toplevel");
        reply_bulk_str(c, "object");
        reply_bulk_str(c, e->object);
        reply_bulk_str(c, "username");
        reply_bulk_str(c, e->username);
        reply_bulk_str(c, "age-seconds");
        resp_w_double(
            &c->obuf, c->proto,
            (double)(now > e->created_ms ? now - e->created_ms : 0) / 1000.0);
        reply_bulk_str(c, "client-info");
        reply_bulk_str(c, e->client_info);
        reply_bulk_str(c, "entry-id");
        reply_int(c, (int64_t)e->entry_id);
        reply_bulk_str(c, "timestamp-created");
        reply_int(c, (int64_t)e->created_ms);
        reply_bulk_str(c, "timestamp-last-updated");
        reply_int(c, (int64_t)e->updated_ms);
    }
}

#define ERR_NO_ACLFILE                                                       \
    "ERR This instance is not configured to use an ACL file: start ringkvd " \
    "with --aclfile FILE (docs/security.md) to keep users across restarts"

static void acl_save(struct client *c)
{
    struct server *s = c->srv;
    if (s->cfg->aclfile[0] == '\0') {
        reply_error(c, ERR_NO_ACLFILE);
        return;
    }
    struct rk_buf b;
    rk_buf_init(&b);
    if (acl_file_format(s->acl, &b) != RK_OK) {
        rk_buf_fini(&b);
        reply_error(c, "ERR out of memory");
        return;
    }
    int rc =
        rk_file_replace(s->cfg->aclfile, b.base ? b.base : "", b.len, 0600);
    int e = errno;
    rk_buf_fini(&b);
    if (rc != RK_OK) {
        rk_log(RK_LOG_WARN, "acl_save_failed", "path=%s error=\"%s\"",
               s->cfg->aclfile, strerror(e));
        reply_errorf(c, "ERR There was an error trying to save the ACLs: %s",
                     strerror(e));
        return;
    }
    rk_log(RK_LOG_INFO, "acl_saved", "path=%s users=%zu", s->cfg->aclfile,
           acl_user_count(s->acl));
    reply_ok(c);
}

static void acl_load(struct client *c)
{
    struct server *s = c->srv;
    if (s->cfg->aclfile[0] == '\0') {
        reply_error(c, ERR_NO_ACLFILE);
        return;
    }
    char err[768];
    struct acl *a = load_file(s, err, sizeof(err));
    if (a == NULL) {
        reply_errorf(c, "ERR %s", err);
        return;
    }
    struct acl *old = s->acl;
    s->acl = a;
    rebind_clients(s, c, true);
    acl_free(old); /* users clients still hold live until released */
    rk_log(RK_LOG_INFO, "acl_loaded", "path=%s users=%zu", s->cfg->aclfile,
           acl_user_count(a));
    reply_ok(c);
}

void cmd_acl(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    const struct resp_arg *sub = &argv[1];
    if (cmd__arg_is(sub, "SETUSER")) {
        acl_setuser_cmd(c, argc, argv);
    } else if (cmd__arg_is(sub, "GETUSER")) {
        acl_getuser(c, &argv[2]);
    } else if (cmd__arg_is(sub, "DELUSER")) {
        acl_deluser_cmd(c, argc, argv);
    } else if (cmd__arg_is(sub, "LIST") || cmd__arg_is(sub, "USERS")) {
        bool list = cmd__arg_is(sub, "LIST");
        struct rk_buf b;
        rk_buf_init(&b);
        reply_array(c, acl_user_count(s->acl));
        for (size_t i = 0; i < acl_user_count(s->acl); i++) {
            struct acl_user *u = acl_user_at(s->acl, i);
            if (list) {
                rk_buf_appendf(&b, "user %s ", acl_user_name(u));
                acl_user_describe(u, &b);
                reply_buf(c, &b);
            } else {
                reply_bulk_str(c, acl_user_name(u));
            }
        }
        rk_buf_fini(&b);
    } else if (cmd__arg_is(sub, "WHOAMI")) {
        reply_bulk_str(c, c->user ? acl_user_name(c->user) : "default");
    } else if (cmd__arg_is(sub, "CAT")) {
        acl_cat(c, argc, argv);
    } else if (cmd__arg_is(sub, "DRYRUN")) {
        acl_dryrun(c, argc, argv);
    } else if (cmd__arg_is(sub, "GENPASS")) {
        acl_genpass(c, argc, argv);
    } else if (cmd__arg_is(sub, "LOG")) {
        acl_log_cmd(c, argc, argv);
    } else if (cmd__arg_is(sub, "SAVE")) {
        acl_save(c);
    } else if (cmd__arg_is(sub, "LOAD")) {
        acl_load(c);
    } else if (cmd__arg_is(sub, "HELP")) {
        static const char *const help[] = {
            "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command "
            "categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command "
            "without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` "
            "argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
            "HELP",
            "    Print this help.",
        };
        cmd__reply_lines(c, help, sizeof(help) / sizeof(help[0]));
    } else {
        cmd__reply_bad_subcommand(c, sub, "ACL");
    }
}
