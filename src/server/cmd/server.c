/*
 * cmd/server.c - server commands: INFO CONFIG TIME SAVE SHUTDOWN, with Redis's
 * semantics, reply types and error texts
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

/* ---- server commands --------------------------------------------------- */

void cmd_info(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct rk_buf out;
    rk_buf_init(&out);
    if (argc == 1) {
        info_render(c->srv, c, "default", &out);
    }
    for (size_t i = 1; i < argc; i++) {
        char sec[64];
        size_t n =
            argv[i].len < sizeof(sec) - 1 ? argv[i].len : sizeof(sec) - 1;
        for (size_t j = 0; j < n; j++) {
            sec[j] = (char)tolower((unsigned char)argv[i].ptr[j]);
        }
        sec[n] = '\0';
        info_render(c->srv, c, sec, &out);
    }
    if (c->proto == 3) {
        resp_w_verbatim(&c->obuf, 3, "txt", out.base ? out.base : "", out.len);
    } else {
        reply_bulk(c, out.base ? out.base : "", out.len);
    }
    rk_buf_fini(&out);
}

struct config_reply
{
    struct client *c;
    struct rk_buf names; /* NUL-separated names already emitted */
    size_t n;
    struct rk_buf body; /* replies written into a side buffer */
};

static void config_get_cb(void *data, const char *name, const char *value)
{
    struct config_reply *cr = data;
    /* Skip duplicates when several patterns match the same name. */
    for (size_t o = 0; o < cr->names.len;) {
        const char *nm = cr->names.base + o;
        if (strcmp(nm, name) == 0) {
            return;
        }
        o += strlen(nm) + 1;
    }
    rk_buf_append(&cr->names, name, strlen(name) + 1);
    resp_w_bulk(&cr->body, name, strlen(name));
    resp_w_bulk(&cr->body, value, strlen(value));
    cr->n++;
}

void cmd_config(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    const struct resp_arg *sub = &argv[1];
    if (cmd__arg_is(sub, "GET") && argc >= 3) {
        struct config_reply cr = {c, {0}, 0, {0}};
        for (size_t i = 2; i < argc; i++) {
            config_each(s->cfg, argv[i].ptr, argv[i].len, config_get_cb, &cr);
        }
        reply_map(c, cr.n);
        rk_buf_append(&c->obuf, cr.body.base ? cr.body.base : "", cr.body.len);
        rk_buf_fini(&cr.names);
        rk_buf_fini(&cr.body);
    } else if (cmd__arg_is(sub, "SET") && argc >= 4 && argc % 2 == 0) {
        static const char *settable[] = {"loglevel",
                                         "maxclients",
                                         "timeout",
                                         "hz",
                                         "enable-flushall",
                                         "requirepass",
                                         "acllog-max-len",
                                         "protected-mode",
                                         "tls-cert-file",
                                         "tls-key-file",
                                         "tls-ca-cert-file",
                                         "tls-auth-clients",
                                         "tls-protocols",
                                         "tls-ciphers",
                                         "tls-ciphersuites",
                                         "n",
                                         "r",
                                         "w",
                                         "request-timeout-ms",
                                         "cluster-max-value-bytes",
                                         "log-requests",
                                         "slow-log-ms",
                                         "read-repair-chance",
                                         "speculative-retry-ms",
                                         "handoff-drop-grace-ms",
                                         "handoff-concurrency",
                                         "handoff-max-mbps",
                                         "aae",
                                         "aae-exchange-interval-ms",
                                         "aae-concurrency",
                                         "aae-repair-rate",
                                         "read-repair-wait-ms"};
        /* all pairs or none (Redis 7): each is checked on a copy, which
         * replaces the settings only when every pair was valid */
        struct rk_config tmp = *s->cfg;
        char why[600];
        char bad[64] = "";
        bool tls_changed = false;
        for (size_t i = 2; i < argc; i += 2) {
            char name[64], value[512];
            if (argv[i].len >= sizeof(name) ||
                argv[i + 1].len >= sizeof(value)) {
                reply_error(c, "ERR CONFIG SET failed: argument too long");
                return;
            }
            memcpy(name, argv[i].ptr, argv[i].len);
            name[argv[i].len] = '\0';
            memcpy(value, argv[i + 1].ptr, argv[i + 1].len);
            value[argv[i + 1].len] = '\0';
            bool ok = false;
            for (size_t k = 0; k < sizeof(settable) / sizeof(settable[0]);
                 k++) {
                ok = ok || strcasecmp(name, settable[k]) == 0;
            }
            if (!ok) {
                reply_errorf(c,
                             "ERR Unknown option or number of arguments "
                             "for CONFIG SET - '%s'",
                             name);
                return;
            }
            if (config_set(&tmp, name, value, why, sizeof(why)) != RK_OK) {
                reply_errorf(c,
                             "ERR CONFIG SET failed (possibly related to "
                             "argument '%s') - %s",
                             name, why);
                return;
            }
            if (strncasecmp(name, "tls-", 4) == 0) {
                tls_changed = true;
                snprintf(bad, sizeof(bad), "%s", name);
            }
        }
        /* the TLS files and settings are checked together (a certificate
         * and its key change in one CONFIG SET) */
        if (tls_changed &&
            server_tls_reload(s, &tmp, why, sizeof(why)) != RK_OK) {
            reply_errorf(c,
                         "ERR CONFIG SET failed (possibly related to "
                         "argument '%s') - %s",
                         bad, why);
            return;
        }
        bool hz_changed = tmp.hz != s->cfg->hz;
        bool pass_changed = strcmp(tmp.requirepass, s->cfg->requirepass) != 0;
        *s->cfg = tmp;
        acl_log_set_max(&s->acl_log, s->cfg->acllog_max_len);
        if (pass_changed) {
            server_acl_requirepass_changed(s);
        }
        rk_log_set_level(s->cfg->loglevel);
        if (hz_changed) {
            server_rearm_tick(s);
        }
        cluster_config_changed(s);
        reply_ok(c);
    } else if (cmd__arg_is(sub, "RESETSTAT") && argc == 2) {
        memset(&s->stats, 0, sizeof(s->stats));
        reply_ok(c);
    } else if (cmd__arg_is(sub, "HELP") && argc == 2) {
        static const char *help[] = {
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            ("    Return parameters matching the glob-like <pattern> and "
             "their values."),
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "HELP",
            "    Print this help.",
        };
        cmd__reply_lines(c, help, sizeof(help) / sizeof(help[0]));
    } else {
        cmd__reply_bad_subcommand(c, sub, "CONFIG");
    }
}

void cmd_time(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char a[32], b[32];
    int na = snprintf(a, sizeof(a), "%lld", (long long)ts.tv_sec);
    int nb = snprintf(b, sizeof(b), "%ld", ts.tv_nsec / 1000);
    reply_array(c, 2);
    reply_bulk(c, a, (size_t)na);
    reply_bulk(c, b, (size_t)nb);
}

void cmd_save(struct client *c, size_t argc, const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    int rc = engine_sync(c->srv->engine);
    if (rc != RK_OK) {
        cmd__reply_storage_error(c, rc, "sync");
        return;
    }
    reply_ok(c);
}

void cmd_shutdown(struct client *c, size_t argc, const struct resp_arg *argv)
{
    for (size_t i = 1; i < argc; i++) {
        if (!cmd__arg_is(&argv[i], "NOSAVE") &&
            !cmd__arg_is(&argv[i], "SAVE") && !cmd__arg_is(&argv[i], "NOW") &&
            !cmd__arg_is(&argv[i], "FORCE")) {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    rk_log(RK_LOG_INFO, "shutdown_requested", "client=%s", c->addr);
    c->close_after_reply = true;
    server_shutdown(c->srv, "SHUTDOWN"); /* deferred to the next tick */
}
