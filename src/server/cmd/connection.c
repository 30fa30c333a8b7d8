/*
 * cmd/connection.c - connection commands: PING ECHO QUIT SELECT AUTH HELLO
 * CLIENT, with Redis's semantics, reply types and error texts
 * (https://redis.io/docs/latest/commands/).  Split from commands.c
 * (issue 11 item 3); see cmd/internal.h.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster/dvv.h"
#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/glob.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/cmd/internal.h"
#include "server/internal.h"
#include "server/keyspace.h"

/* ---- connection commands --------------------------------------------- */

void cmd_ping(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc > 2) {
        reply_error(c, "ERR wrong number of arguments for 'ping' command");
        return;
    }
    if (argc == 2) {
        reply_bulk(c, argv[1].ptr, argv[1].len);
    } else {
        rk_buf_append(&c->obuf, "+PONG\r\n", 7);
    }
}

void cmd_echo(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    reply_bulk(c, argv[1].ptr, argv[1].len);
}

void cmd_quit(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    reply_ok(c);
    c->close_after_reply = true;
}

void cmd_select(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    int64_t db;
    if (!cmd__arg_i64(&argv[1], &db)) {
        reply_error(c, ERR_NOT_INT);
    } else if (db != 0) {
        reply_error(c, "ERR DB index is out of range");
    } else {
        reply_ok(c);
    }
}

/* A success does not clear the IP's failures (they expire after
 * AUTH_GUARD_WINDOW_MS): with several users, one known password must not
 * reset the count between guesses at another's. */
static void auth_succeeded(struct client *c, struct acl_user *u)
{
    c->authed = true;
    c->auth_failed_here = false;
    server_client_set_user(c, u);
    resp_parser_set_limits(c->parser, &c->srv->limits);
}

/* A wrong password: counted, in ACL LOG, the client's IP made to wait
 * (auth_guard.h), and logged at most once a second (the lines left out
 * are counted in the next one). */
static void auth_failed(struct client *c, const char *user, size_t ulen)
{
    struct server *s = c->srv;
    s->stats.auth_failures++;
    c->auth_failed_here = true; /* waits like an unauthenticated client,
                                   even when authenticated as another
                                   user (server.c client_process_input) */
    cmd__acl_auth_failed(c, user, ulen);
    char ip[AUTH_GUARD_IP_MAX];
    auth_guard_ip(c->addr, ip);
    uint64_t now = server_mono_ms();
    uint32_t n = c->internal ? 0 : auth_guard_failed(&s->auth_guard, ip, now);
    if (s->stats.auth_logged_ms != 0 && now < s->stats.auth_logged_ms + 1000) {
        s->stats.auth_unlogged++;
        return;
    }
    s->stats.auth_logged_ms = now;
    rk_log(RK_LOG_WARN, "auth_failed",
           "client=%s id=%" PRIu64 " ip_failures=%" PRIu32
           " not_logged=%" PRIu64 " delay_ms=%" PRIu64,
           c->addr, c->id, n, s->stats.auth_unlogged,
           auth_guard_wait_ms(&s->auth_guard, ip, now));
    s->stats.auth_unlogged = 0;
}

/*
 * Checks user/password for AUTH and HELLO AUTH (user NULL: "default", as
 * Redis's one-argument AUTH).  Returns true when authenticated; else
 * writes the error reply.
 */
static bool check_auth_or_reply(struct client *c,
                                const struct resp_arg *user,
                                const struct resp_arg *pass)
{
    struct server *s = c->srv;
    struct acl_user *d = acl_default_user(s->acl);
    if (user == NULL && acl_user_nopass(d)) {
        reply_error(c,
                    "ERR AUTH <password> called without any password "
                    "configured for the default user. Are you sure "
                    "your configuration is correct?");
        return false;
    }
    const char *un = user ? user->ptr : "default";
    size_t ul = user ? user->len : 7;
    struct acl_user *u =
        server_acl_authenticate(s, un, ul, pass->ptr, pass->len);
    if (u != NULL) {
        auth_succeeded(c, u);
        return true;
    }
    auth_failed(c, un, ul);
    reply_error(c, ERR_WRONGPASS);
    return false;
}

void cmd_auth(struct client *c, size_t argc, const struct resp_arg *argv)
{
    if (argc > 3) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    const struct resp_arg *user = argc == 3 ? &argv[1] : NULL;
    if (check_auth_or_reply(c, user, &argv[argc - 1])) {
        reply_ok(c);
    }
}

static bool valid_client_name(const struct resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++) {
        if (a->ptr[i] < '!' || a->ptr[i] > '~') {
            return false;
        }
    }
    return true;
}

static void set_client_name(struct client *c, const struct resp_arg *a)
{
    rk_free(c->name);
    c->name = a->len ? rk_strndup(a->ptr, a->len) : NULL;
}

void cmd_hello(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    int proto = c->proto;
    size_t i = 1;
    if (argc >= 2) {
        int64_t v;
        if (!cmd__arg_i64(&argv[1], &v)) {
            reply_error(c,
                        "ERR Protocol version is not an integer or out of "
                        "range");
            return;
        }
        if (v != 2 && v != 3) {
            reply_error(c, "NOPROTO unsupported protocol version");
            return;
        }
        proto = (int)v;
        i = 2;
    }
    const struct resp_arg *user = NULL, *pass = NULL, *name = NULL;
    for (; i < argc; i++) {
        size_t left = argc - i - 1;
        if (cmd__arg_is(&argv[i], "AUTH") && left >= 2) {
            user = &argv[i + 1];
            pass = &argv[i + 2];
            i += 2;
        } else if (cmd__arg_is(&argv[i], "SETNAME") && left >= 1) {
            name = &argv[i + 1];
            i += 1;
        } else {
            reply_errorf(c, "ERR Syntax error in HELLO option '%.*s'",
                         (int)(argv[i].len > 128 ? 128 : argv[i].len),
                         argv[i].ptr);
            return;
        }
    }
    if (pass) {
        if (!check_auth_or_reply(c, user, pass)) {
            return;
        }
    } else if (!c->authed) {
        reply_error(c,
                    "NOAUTH HELLO must be called with the client already "
                    "authenticated, otherwise the HELLO <proto> AUTH "
                    "<user> <pass> option can be used to authenticate the "
                    "client and select the RESP protocol version at the "
                    "same time");
        return;
    }
    if (name) {
        if (!valid_client_name(name)) {
            reply_error(c,
                        "ERR Client names cannot contain spaces, newlines "
                        "or special characters.");
            return;
        }
        set_client_name(c, name);
    }
    c->proto = proto;
    reply_map(c, 7);
    reply_bulk_str(c, "server");
    reply_bulk_str(c, "redis");
    reply_bulk_str(c, "version");
    reply_bulk_str(c, "7.0.0");
    reply_bulk_str(c, "proto");
    reply_int(c, proto);
    reply_bulk_str(c, "id");
    reply_int(c, (int64_t)c->id);
    reply_bulk_str(c, "mode");
    reply_bulk_str(c, "standalone");
    reply_bulk_str(c, "role");
    reply_bulk_str(c, "master");
    reply_bulk_str(c, "modules");
    reply_array(c, 0);
    (void)s;
}

void cmd__client_info(struct client *o, struct rk_buf *out)
{
    uint64_t now = server_mono_ms();
    rk_buf_appendf(out,
                   "id=%" PRIu64 " addr=%s laddr=? fd=%d name=%s age=%" PRIu64
                   " idle=%" PRIu64
                   " flags=%s db=0 sub=0 psub=0 ssub=0 "
                   "multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 "
                   "multi-mem=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=r "
                   "cmd=%s user=%s redir=-1 resp=%d lib-name=%s "
                   "lib-ver=%s\n",
                   o->id, o->addr, o->fd, o->name ? o->name : "",
                   (now - o->created_ms) / 1000, (now - o->last_ms) / 1000,
                   o->in_multi ? "x" : "N", o->in_multi ? (int)o->mq_len : -1,
                   o->qbuf.len, o->qbuf.cap - o->qbuf.len, o->obuf.len,
                   o->qbuf.cap + o->obuf.cap + sizeof(*o),
                   o->last_cmd ? o->last_cmd : "NULL",
                   o->user ? acl_user_name(o->user) : "default", o->proto,
                   o->lib_name ? o->lib_name : "",
                   o->lib_ver ? o->lib_ver : "");
}

void cmd_client(struct client *c, size_t argc, const struct resp_arg *argv)
{
    const struct resp_arg *sub = &argv[1];
    if (cmd__arg_is(sub, "ID") && argc == 2) {
        reply_int(c, (int64_t)c->id);
    } else if (cmd__arg_is(sub, "GETNAME") && argc == 2) {
        if (c->name) {
            reply_bulk_str(c, c->name);
        } else {
            reply_null(c);
        }
    } else if (cmd__arg_is(sub, "SETNAME") && argc == 3) {
        if (!valid_client_name(&argv[2])) {
            reply_error(c,
                        "ERR Client names cannot contain spaces, newlines "
                        "or special characters.");
            return;
        }
        set_client_name(c, &argv[2]);
        reply_ok(c);
    } else if (cmd__arg_is(sub, "SETINFO") && argc == 4) {
        char **slot = NULL;
        const char *what = NULL;
        if (cmd__arg_is(&argv[2], "LIB-NAME")) {
            slot = &c->lib_name;
            what = "lib-name";
        } else if (cmd__arg_is(&argv[2], "LIB-VER")) {
            slot = &c->lib_ver;
            what = "lib-ver";
        } else {
            reply_errorf(c, "ERR Unrecognized option '%.*s'",
                         (int)(argv[2].len > 128 ? 128 : argv[2].len),
                         argv[2].ptr);
            return;
        }
        if (!valid_client_name(&argv[3])) {
            reply_errorf(c,
                         "ERR %s cannot contain spaces, newlines or "
                         "special characters.",
                         what);
            return;
        }
        rk_free(*slot);
        *slot = argv[3].len ? rk_strndup(argv[3].ptr, argv[3].len) : NULL;
        reply_ok(c);
    } else if (cmd__arg_is(sub, "LIST")) {
        struct rk_buf out;
        rk_buf_init(&out);
        for (struct client *o = c->srv->clients; o; o = o->next) {
            cmd__client_info(o, &out);
        }
        if (c->proto == 3) {
            resp_w_verbatim(&c->obuf, 3, "txt", out.base ? out.base : "",
                            out.len);
        } else {
            reply_bulk(c, out.base ? out.base : "", out.len);
        }
        rk_buf_fini(&out);
    } else if (cmd__arg_is(sub, "INFO") && argc == 2) {
        struct rk_buf out;
        rk_buf_init(&out);
        cmd__client_info(c, &out);
        if (c->proto == 3) {
            resp_w_verbatim(&c->obuf, 3, "txt", out.base, out.len);
        } else {
            reply_bulk(c, out.base, out.len);
        }
        rk_buf_fini(&out);
    } else if (cmd__arg_is(sub, "HELP")) {
        static const char *help[] = {
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST",
            "    Return information about client connections.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "HELP",
            "    Print this help.",
        };
        cmd__reply_lines(c, help, sizeof(help) / sizeof(help[0]));
    } else {
        cmd__reply_bad_subcommand(c, sub, "CLIENT");
    }
}
