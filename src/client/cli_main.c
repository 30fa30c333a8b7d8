/*
 * cli_main.c - the `ringkv` command-line client and REPL (DESIGN.md
 * section 5 "CLI", issue 3 item 5; user guide in docs/cli.md).
 *
 *   ringkv [options] COMMAND [ARG...]   one command, reply on stdout
 *   ringkv [options]                    REPL on a terminal, or one command
 *                                       per line when stdin is not one
 *
 * Output follows redis-cli 7: its terminal form when stdout is a tty (or
 * with --no-raw), its raw form otherwise (or with --raw); --json prints
 * one JSON value per reply.  The key-value verbs (GET, SET, DEL, INCR,
 * MGET, MSET in their plain forms; cli_lib.h) go through libringkv in
 * command and batch mode, so against a cluster they are routed by slot
 * and retried; everything else uses the raw connection (client.h).
 * Exit codes (DESIGN.md section 5): 0 ok,
 * 1 runtime error (cannot connect, connection lost, AUTH failed, an error
 * reply), 2 usage error; every error is one line on stderr naming ringkv
 * and the address.
 */
#include <editline/readline.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/cli_lib.h"
#include "client/client.h"
#include "client/internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "proto/peer_auth.h"

#define DEFAULT_HOST          "127.0.0.1"
#define DEFAULT_PORT          7379
#define CONNECT_TIMEOUT_MS    10000
#define JOIN_PROBE_TIMEOUT_MS 3000
#define HISTORY_FILE          ".ringkv_history"
#define HISTORY_MAX_LINES     1000

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

enum out_mode
{
    OUT_AUTO, /* tty form if stdout is a terminal, else raw */
    OUT_TTY,  /* --no-raw */
    OUT_RAW,  /* --raw */
    OUT_JSON, /* --json */
};

struct cli_opts
{
    const char *host;     /* server name or address */
    int port;             /* 1..65535 */
    const char *password; /* -a / RINGKV_AUTH; NULL = no AUTH */
    int proto;            /* 2, or 3 after HELLO 3 */
    enum out_mode out;    /* how replies are printed */
    bool stdin_arg;       /* -x: stdin is the last argument */
    int argc;             /* words of the command, 0 = REPL/batch */
    char **argv;          /* borrowed from main's argv */
};

struct cli_session
{
    const struct cli_opts *opts;
    char host[256];        /* current target (CONNECT can change it) */
    int port;              /* current target port */
    struct cli_conn *conn; /* NULL while not connected */
    enum cli_format fmt;   /* how replies are printed */
    bool in_tx;            /* between MULTI and EXEC/DISCARD */
    bool saw_error_reply;  /* batch mode: any "-ERR" so far */
    bool use_lib;          /* key-value verbs through libringkv
                              (command and batch mode, RESP2) */
    struct ringkv *rk;     /* libringkv handle, opened on first use */
    bool lib_failed;       /* it could not be opened: raw from now on */
};

/* ---- usage ------------------------------------------------------------ */

static const char usage_text[] =
    "Usage: ringkv [OPTIONS] [COMMAND [ARG...]]\n"
    "\n"
    "Sends COMMAND to a ringkv node (or any Redis-protocol server) and "
    "prints the\n"
    "reply as redis-cli does.  Without COMMAND, opens a REPL when stdin is "
    "a\n"
    "terminal, else runs one command per line of stdin.\n"
    "\n"
    "Cluster commands (sent as RINGKV.CLUSTER ...; docs/cluster.md):\n"
    "  cluster join HOST:PORT [--secret-file FILE]\n"
    "                              make this node join the seed's cluster\n"
    "                              (PORT: the seed's peer or RESP port;\n"
    "                              FILE: a copy of the cluster's secret, the\n"
    "                              seed's DATA_DIR/cluster.secret)\n"
    "  cluster replace OLD HOST:PORT [--secret-file FILE]\n"
    "                              make this (empty) node take member OLD's\n"
    "                              place, through the seed HOST:PORT\n"
    "  cluster plan join HOST:PORT | plan leave NODE | plan remove NODE\n"
    "  cluster plan replace OLD HOST:PORT\n"
    "                              stage a change on this node (in memory;\n"
    "                              HOST:PORT: the new, empty node's RESP "
    "port)\n"
    "  cluster plan [show] | plan clear\n"
    "                              the staged changes and what they would "
    "move\n"
    "  cluster commit [--force]    apply the staged changes as one change\n"
    "  cluster leave [--force]     take this node out of its cluster\n"
    "  cluster remove NODE_ID [--force]\n"
    "                              take a (dead) member out\n"
    "                              (--force: even when fewer than N members\n"
    "                              would stay, so keys have fewer copies)\n"
    "  cluster status              members, partitions, up/down, "
    "agreement\n"
    "\n"
    "Seed-style verbs (aliases):\n"
    "  put KEY VALUE, put -k KEY -v VALUE   SET\n"
    "  get -k KEY, del -k KEY               GET, DEL\n"
    "  join-cluster HOST:PORT               cluster join HOST:PORT\n"
    "\n"
    "Options:\n"
    "  -h, --host HOST      server host name or address (default "
    "127.0.0.1)\n"
    "  -p, --port PORT      server port (default 7379)\n"
    "  -a, --pass PASSWORD  send AUTH (or HELLO 3 AUTH with -3) first; the\n"
    "                       RINGKV_AUTH environment variable is the same\n"
    "                       and keeps the password out of `ps`\n"
    "  -2, -3               speak RESP2 (default) or RESP3 (HELLO 3)\n"
    "  -x                   read the last argument from stdin (binary-safe)\n"
    "      --raw            raw output even on a terminal\n"
    "      --no-raw         redis-cli's terminal output even when piped\n"
    "      --json           one JSON value per reply (see below)\n"
    "      --help           this text\n"
    "  -v, --version        print the version\n"
    "\n"
    "JSON output: strings are JSON strings; a byte that is not part of\n"
    "valid UTF-8 is written as \\udcXX (XX = the byte, 80..ff), Python's\n"
    "\"surrogateescape\": s.encode('utf-8', 'surrogateescape') gives the\n"
    "bytes back.  Integers and doubles are numbers (inf/nan as strings),\n"
    "nil is null, arrays and sets are arrays, maps are objects, and an\n"
    "error reply is {\"error\":\"ERR ...\"}.\n"
    "\n"
    "REPL: `help`, `help COMMAND`, `connect HOST PORT`, `clear`, `quit`,\n"
    "`exit` or `.exit`.  Arguments are split like redis-cli: \"...\" with\n"
    "\\n \\r \\t \\b \\a \\\\ \\\" \\xHH escapes, '...' literal.  History "
    "is kept\n"
    "in ~/.ringkv_history (RINGKV_HISTFILE overrides; AUTH lines are not "
    "kept).\n"
    "\n"
    "Exit status: 0 ok; 1 cannot connect, connection lost, AUTH failed or\n"
    "an error reply (printed on stdout as redis-cli does); 2 usage error.\n"
    "\n"
    "Examples:\n"
    "  ringkv set greeting hello\n"
    "  ringkv -p 7389 --json mget a b c\n"
    "  ringkv -x set blob < photo.jpg\n"
    "  printf 'set a 1\\nincr a\\n' | ringkv\n";

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "ringkv: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try 'ringkv --help')\n");
    exit(EXIT_USAGE);
}

/* The value of option argv[*i]: "--opt=value" or the next word. */
static const char *option_value(int argc, char **argv, int *i, const char *eq)
{
    if (eq != NULL) {
        return eq + 1;
    }
    if (*i + 1 >= argc) {
        usage_error("option '%s' needs a value", argv[*i]);
    }
    return argv[++*i];
}

static int parse_port(const char *s)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535) {
        usage_error("invalid port '%s' (expected 1..65535)", s);
    }
    return (int)v;
}

/* Handles one option that takes no value; false if `a` is not one. */
static bool parse_flag(struct cli_opts *o, const char *a)
{
    if (strcmp(a, "--help") == 0) {
        fputs(usage_text, stdout);
        exit(0);
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
        printf("ringkv %s\n", RINGKV_VERSION);
        exit(0);
    } else if (strcmp(a, "--json") == 0) {
        o->out = OUT_JSON;
    } else if (strcmp(a, "--raw") == 0) {
        o->out = o->out == OUT_JSON ? OUT_JSON : OUT_RAW;
    } else if (strcmp(a, "--no-raw") == 0) {
        o->out = o->out == OUT_JSON ? OUT_JSON : OUT_TTY;
    } else if (strcmp(a, "-2") == 0 || strcmp(a, "-3") == 0) {
        o->proto = a[1] - '0';
    } else if (strcmp(a, "-x") == 0) {
        o->stdin_arg = true;
    } else {
        return false;
    }
    return true;
}

static bool is_opt(const char *a,
                   const char *shrt,
                   const char *lng,
                   const char *eq)
{
    size_t n = eq != NULL ? (size_t)(eq - a) : strlen(a);
    return (shrt != NULL && eq == NULL && strcmp(a, shrt) == 0) ||
           (strlen(lng) == n && strncmp(a, lng, n) == 0);
}

static void parse_args(int argc, char **argv, struct cli_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = DEFAULT_HOST;
    o->port = DEFAULT_PORT;
    o->proto = 2;
    o->password = getenv("RINGKV_AUTH");
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            break; /* the command starts here */
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq == NULL && parse_flag(o, a)) {
            continue;
        }
        if (is_opt(a, "-h", "--host", eq)) {
            o->host = option_value(argc, argv, &i, eq);
        } else if (is_opt(a, "-p", "--port", eq)) {
            o->port = parse_port(option_value(argc, argv, &i, eq));
        } else if (is_opt(a, "-a", "--pass", eq) ||
                   is_opt(a, NULL, "--password", eq)) {
            o->password = option_value(argc, argv, &i, eq);
        } else {
            usage_error("unknown option '%s'", a);
        }
    }
    if (o->host[0] == '\0') {
        usage_error("empty host name%s", "");
    }
    o->argc = argc - i;
    o->argv = argv + i;
    if (o->stdin_arg && o->argc == 0) {
        usage_error("-x needs a COMMAND%s", "");
    }
}

/* ---- connection ------------------------------------------------------- */

/* "host:port", with brackets around an IPv6 literal. */
static const char *addr_text(const struct cli_session *s)
{
    static char buf[300];
    bool v6 = strchr(s->host, ':') != NULL;
    snprintf(buf, sizeof(buf), v6 ? "[%s]:%d" : "%s:%d", s->host, s->port);
    return buf;
}

static void session_disconnect(struct cli_session *s)
{
    cli_conn_close(s->conn);
    s->conn = NULL;
    s->in_tx = false;
}

/*
 * Sends the AUTH or HELLO the options ask for.  Returns RK_OK, or an
 * rk_err with a one-line reason in `why` (the server's error text, or the
 * connection error).
 */
static int session_handshake(struct cli_session *s, char *why, size_t size)
{
    const struct cli_opts *o = s->opts;
    const char *argv[5];
    size_t argc = 0;
    if (o->proto == 3) {
        argv[argc++] = "HELLO";
        argv[argc++] = "3";
        if (o->password != NULL) {
            argv[argc++] = "AUTH";
            argv[argc++] = "default";
            argv[argc++] = o->password;
        }
    } else if (o->password != NULL) {
        argv[argc++] = "AUTH";
        argv[argc++] = o->password;
    } else {
        return RK_OK;
    }
    size_t lens[5];
    for (size_t i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    struct resp_value *reply = NULL;
    int rc = cli_conn_command(s->conn, argc, argv, lens, &reply);
    if (rc != RK_OK) {
        snprintf(why, size, "%s", cli_conn_errmsg(s->conn));
        return rc;
    }
    if (reply->type == RESP_ERROR) {
        snprintf(why, size, "%s failed at %s: %.*s", argv[0], addr_text(s),
                 (int)reply->len, reply->str);
        rc = RK_EINVAL;
    }
    resp_value_free(reply);
    return rc;
}

/*
 * Connects and authenticates.  Returns RK_OK; RK_EIO and friends when the
 * TCP connection failed (s->conn stays NULL); RK_EINVAL when AUTH/HELLO
 * got an error reply (s->conn stays open).  `why` gets the reason.
 */
static int session_connect(struct cli_session *s, char *why, size_t size)
{
    session_disconnect(s);
    char errbuf[CLI_ERRBUF_SIZE];
    int rc =
        cli_conn_open(s->host, s->port, CONNECT_TIMEOUT_MS, &s->conn, errbuf);
    if (rc != RK_OK) {
        s->conn = NULL;
        snprintf(why, size, "%s", errbuf);
        return rc;
    }
    rc = session_handshake(s, why, size);
    if (rc != RK_OK && rc != RK_EINVAL) {
        session_disconnect(s);
    }
    return rc;
}

/* ---- printing --------------------------------------------------------- */

static enum cli_format pick_format(enum out_mode out)
{
    switch (out) {
        case OUT_JSON:
            return CLI_FMT_JSON;
        case OUT_RAW:
            return CLI_FMT_RAW;
        case OUT_TTY:
            return CLI_FMT_TTY;
        case OUT_AUTO:
            break;
    }
    return isatty(STDOUT_FILENO) ? CLI_FMT_TTY : CLI_FMT_RAW;
}

static bool word_is(const char *w, const char *name)
{
    return strcasecmp(w, name) == 0;
}

/*
 * Commands whose reply is a report meant for people (INFO, CLIENT LIST,
 * ...): like redis-cli, print it as raw text in every mode but --json,
 * without adding a newline (the text ends with its own CRLF).
 */
static bool is_text_report(size_t argc, char **argv)
{
    static const char *const two_words[][2] = {
        {"client", "list"},   {"client", "info"},   {"cluster", "info"},
        {"cluster", "nodes"}, {"memory", "doctor"}, {"memory", "malloc-stats"},
        {"latency", "doctor"}};
    if (word_is(argv[0], "info") || word_is(argv[0], "lolwut")) {
        return true;
    }
    size_t n = sizeof(two_words) / sizeof(two_words[0]);
    for (size_t i = 0; argc >= 2 && i < n; i++) {
        if (word_is(argv[0], two_words[i][0]) &&
            word_is(argv[1], two_words[i][1])) {
            return true;
        }
    }
    return false;
}

/* Prints `v`, the reply to argv, on stdout; RK_OK, RK_ENOMEM or RK_EIO
 * (stdout failed). */
static int print_reply(const struct cli_session *s,
                       size_t argc,
                       char **argv,
                       const struct resp_value *v)
{
    struct rk_buf out;
    rk_buf_init(&out);
    bool report = s->fmt != CLI_FMT_JSON && is_text_report(argc, argv);
    int rc = cli__format_reply(&out, v, report ? CLI_FMT_RAW : s->fmt);
    if (report && rc == RK_OK) {
        out.len--; /* the newline cli__format_reply added */
    }
    if (rc == RK_OK && fwrite(out.base, 1, out.len, stdout) != out.len) {
        rc = RK_EIO;
    }
    if (fflush(stdout) != 0) {
        rc = RK_EIO;
    }
    rk_buf_fini(&out);
    return rc;
}

static void print_help_all(void)
{
    printf(
        "ringkv %s. Type a command as in redis-cli; "
        "`help COMMAND` shows its syntax.\n",
        RINGKV_VERSION);
    const char *group = "";
    for (size_t i = 0; cli__help_at(i) != NULL; i++) {
        const struct cli_cmd_help *h = cli__help_at(i);
        if (strcmp(h->group, group) != 0) {
            group = h->group;
            printf("\n%s:\n", group);
        }
        printf("  %-16s %s\n", h->name, h->summary);
    }
    fflush(stdout);
}

/* `help` or `help NAME...`: argv[1..argc) form the name. */
static void print_help(size_t argc, char **argv)
{
    if (argc < 2) {
        print_help_all();
        return;
    }
    char name[128] = "";
    for (size_t i = 1; i < argc && i < 3; i++) {
        size_t used = strlen(name);
        snprintf(name + used, sizeof(name) - used, "%s%s", i > 1 ? " " : "",
                 argv[i]);
    }
    const struct cli_cmd_help *h = cli__help_find(name);
    if (h == NULL && argc > 2) {
        h = cli__help_find(argv[1]);
    }
    if (h == NULL) {
        printf("No help for '%s'; `help` lists the commands.\n", name);
    } else {
        printf("\n  %s%s%s\n  summary: %s\n  group: %s\n\n", h->name,
               h->args[0] ? " " : "", h->args, h->summary, h->group);
    }
    fflush(stdout);
}

/* ---- one command ------------------------------------------------------ */

enum run_result
{
    RUN_OK,        /* a reply other than an error was printed */
    RUN_ERR_REPLY, /* an error reply was printed */
    RUN_NO_CONN,   /* not connected, or the connection was lost */
    RUN_FATAL,     /* out of memory, stdout failed */
    RUN_USAGE,     /* not sent: a seed-style verb used wrongly (`why`) */
    RUN_NOT_SENT,  /* not sent: `cluster join` cannot reach its seed */
};

/* Commands after which the server keeps sending (pub/sub, MONITOR). */
static bool is_streaming(const char *cmd)
{
    return word_is(cmd, "subscribe") || word_is(cmd, "psubscribe") ||
           word_is(cmd, "ssubscribe") || word_is(cmd, "monitor");
}

/* Prints each further message until the connection ends (or Ctrl-C
 * ends the process), as redis-cli does after SUBSCRIBE or MONITOR. */
static enum run_result stream_replies(struct cli_session *s,
                                      size_t argc,
                                      char **argv,
                                      char *why,
                                      size_t size)
{
    for (;;) {
        struct resp_value *reply = NULL;
        int rc = cli_conn_read_reply(s->conn, &reply);
        if (rc != RK_OK) {
            snprintf(why, size, "%s", cli_conn_errmsg(s->conn));
            session_disconnect(s);
            return RUN_NO_CONN;
        }
        rc = print_reply(s, argc, argv, reply);
        resp_value_free(reply);
        if (rc != RK_OK) {
            snprintf(why, size, "cannot write the reply: %s",
                     rc == RK_EIO ? strerror(errno) : rk_strerror(rc));
            return RUN_FATAL;
        }
    }
}

/* Splits "host:port" or "[v6]:port" into host (NUL-terminated in
 * `host`) and port; false if it has no valid port. */
static bool split_host_port(const char *addr,
                            char *host,
                            size_t size,
                            int *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr) {
        return false;
    }
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (hlen == 0 || hlen >= size || errno != 0 || end == colon + 1 ||
        *end != '\0' || p < 1 || p > 65535) {
        return false;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return true;
}

/*
 * The peer address `cluster join SEED` sends to the node: SEED itself when
 * it is a peer port, SEED's host with its peer port when it is a RESP port.
 * Asks the seed from here: a peer port greets a new connection with its
 * binary hello at once (client.c recognises it: the CLUSTER NODES below
 * fails with "peer (node-to-node) port"); a RESP port answers CLUSTER
 * NODES, whose `myself` line carries the peer port after the '@'.  A refused or
 * timed-out connection fails fast here instead of the node retrying its join
 * for 30 s. Returns RK_OK with `out` filled, or an error with a reason in
 * `why`.
 */
static int resolve_join_seed(const char *seed,
                             char *out,
                             size_t out_size,
                             char *why,
                             size_t size)
{
    char host[256];
    int port = 0;
    if (!split_host_port(seed, host, sizeof(host), &port)) {
        snprintf(out, out_size, "%s", seed); /* the node says what's wrong */
        return RK_OK;
    }
    char errbuf[CLI_ERRBUF_SIZE];
    struct cli_conn *c = NULL;
    int rc = cli_conn_open(host, port, JOIN_PROBE_TIMEOUT_MS, &c, errbuf);
    if (rc != RK_OK) {
        snprintf(why, size,
                 "cannot join: seed %s: %s (give a running node's RESP or "
                 "peer port)",
                 seed, errbuf);
        return rc;
    }
    const char *argv[] = {"CLUSTER", "NODES"};
    size_t lens[] = {7, 5};
    struct resp_value *reply = NULL;
    rc = cli_conn_command(c, 2, argv, lens, &reply);
    if (rc != RK_OK) {
        /* client.c names the port a non-RESP greeting came from */
        bool peer = strstr(cli_conn_errmsg(c), "peer (node-to-node)") != NULL;
        if (!peer) {
            snprintf(why, size,
                     "cannot join: seed %s is neither a RESP nor a peer "
                     "port of ringkvd: %s",
                     seed, cli_conn_errmsg(c));
        }
        cli_conn_close(c);
        snprintf(out, out_size, "%s", seed);
        return peer ? RK_OK : rc;
    }
    cli_conn_close(c);
    int peer_port = 0;
    if (reply->type == RESP_BULK || reply->type == RESP_VERBATIM) {
        /* "<id> <ip:port@cport[,hostname]> myself,master ..." */
        const char *p = reply->str, *end = reply->str + reply->len;
        while (p < end && peer_port == 0) {
            const char *eol = memchr(p, '\n', (size_t)(end - p));
            size_t n = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
            char line[512];
            snprintf(line, sizeof(line), "%.*s", (int)n, p);
            char *sp1 = strchr(line, ' ');
            char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
            char *at = sp1 != NULL ? strchr(sp1, '@') : NULL;
            if (sp2 != NULL && at != NULL && at < sp2 &&
                strncmp(sp2 + 1, "myself", 6) == 0) {
                peer_port = atoi(at + 1);
            }
            p += n + 1;
        }
    }
    bool is_err = reply->type == RESP_ERROR;
    if (peer_port < 1 || peer_port > 65535) {
        snprintf(why, size,
                 "cannot join: seed %s answers RESP but names no peer port "
                 "in CLUSTER NODES%s%.*s",
                 seed, is_err ? ": " : "", is_err ? (int)reply->len : 0,
                 is_err ? reply->str : "");
        resp_value_free(reply);
        return RK_EPROTO;
    }
    resp_value_free(reply);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, out_size, v6 ? "[%s]:%d" : "%s:%d", host, peer_port);
    return RK_OK;
}

/* The value of `field` in INFO text ("field:value\r\n"), into out. */
static bool info_field(const struct resp_value *r,
                       const char *field,
                       char *out,
                       size_t cap)
{
    size_t fl = strlen(field);
    const char *p = r->str, *end = r->str + r->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
        if (n > fl && memcmp(p, field, fl) == 0 && p[fl] == ':') {
            size_t vl = n - fl - 1;
            while (vl > 0 && (p[fl + vl] == '\r' || p[fl + vl] == ' ')) {
                vl--;
            }
            snprintf(out, cap, "%.*s", (int)vl, p + fl + 1);
            return true;
        }
        p += n + 1;
    }
    return false;
}

/*
 * For `cluster plan join|replace ... HOST:PORT`: asks the new node at
 * HOST:PORT (its RESP port) for its node id and peer port (INFO cluster),
 * and checks it is alone and empty (DBSIZE), as a join needs.  Fills id,
 * peer ("HOST:PEERPORT") and resp ("PORT").  Returns RK_OK, or an error
 * with the reason in `why`.
 */
static int resolve_new_node(const char *addr,
                            char *id,
                            size_t id_cap,
                            char *peer,
                            size_t peer_cap,
                            char *resp,
                            size_t resp_cap,
                            char *why,
                            size_t size)
{
    char host[256];
    int port = 0;
    if (!split_host_port(addr, host, sizeof(host), &port)) {
        snprintf(why, size, "cannot plan: '%s' is not HOST:PORT", addr);
        return RK_EINVAL;
    }
    char errbuf[CLI_ERRBUF_SIZE];
    struct cli_conn *c = NULL;
    int rc = cli_conn_open(host, port, JOIN_PROBE_TIMEOUT_MS, &c, errbuf);
    if (rc != RK_OK) {
        snprintf(why, size, "cannot plan: new node %s: %s (give its RESP port)",
                 addr, errbuf);
        return rc;
    }
    const char *a1[] = {"INFO", "cluster"};
    size_t l1[] = {4, 7};
    const char *a2[] = {"DBSIZE"};
    size_t l2[] = {6};
    struct resp_value *info = NULL, *dbsize = NULL;
    rc = cli_conn_command(c, 2, a1, l1, &info);
    if (rc == RK_OK) {
        rc = cli_conn_command(c, 1, a2, l2, &dbsize);
    }
    if (rc != RK_OK) {
        snprintf(why, size, "cannot plan: new node %s: %s", addr,
                 cli_conn_errmsg(c));
        cli_conn_close(c);
        resp_value_free(info);
        return rc;
    }
    cli_conn_close(c);
    char pport[16] = "", members[16] = "";
    bool ok = (info->type == RESP_BULK || info->type == RESP_VERBATIM) &&
              info_field(info, "node_id", id, id_cap) &&
              info_field(info, "peer_port", pport, sizeof(pport)) &&
              info_field(info, "cluster_members", members, sizeof(members));
    resp_value_free(info);
    long long keys = dbsize->type == RESP_INT ? dbsize->integer : -1;
    resp_value_free(dbsize);
    if (!ok || id[0] == '\0' || atoi(pport) <= 0) {
        snprintf(why, size,
                 "cannot plan: %s does not answer INFO cluster as a ringkv "
                 "node",
                 addr);
        return RK_EPROTO;
    }
    if (atoi(members) > 1 || keys != 0) {
        snprintf(why, size,
                 "cannot plan: %s (%s) %s; a new node must be empty and "
                 "alone",
                 addr, id,
                 atoi(members) > 1 ? "is a member of a cluster already"
                                   : "holds keys");
        return RK_EBUSY;
    }
    bool v6 = strchr(host, ':') != NULL;
    snprintf(peer, peer_cap, v6 ? "[%s]:%s" : "%s:%s", host, pport);
    snprintf(resp, resp_cap, "%d", port);
    return RK_OK;
}

/*
 * Runs argv through libringkv when it is one of its verbs (cli_lib.h) and
 * the session allows it (command or batch mode, RESP2, no transaction):
 * returns true with *result, having printed the reply.  False: send it
 * on the raw connection (also when the handle cannot be opened, e.g. a
 * server that answers CLUSTER SLOTS with something else).
 */
static bool run_through_lib(struct cli_session *s,
                            size_t argc,
                            char **argv,
                            const size_t *lens,
                            char *why,
                            size_t size,
                            enum run_result *result)
{
    struct cli_lib_cmd lc;
    if (!s->use_lib || s->lib_failed || s->in_tx || s->opts->proto != 2 ||
        !cli__lib_parse(argc, argv, lens, &lc)) {
        return false;
    }
    if (s->rk == NULL) {
        char ignored[256];
        if (cli__lib_open(s->host, s->port, s->opts->password, &s->rk, ignored,
                          sizeof(ignored)) != RINGKV_OK) {
            s->lib_failed = true;
            return false;
        }
    }
    struct resp_value *reply = NULL;
    char lost[CLI_ERRBUF_SIZE];
    int rc = cli__lib_run(s->rk, &lc, &reply, lost, sizeof(lost));
    if (rc != RK_OK) {
        if (rc == RK_EIO) {
            snprintf(why, size, "lost connection to %s", lost);
        } else {
            snprintf(why, size, "%s", rk_strerror(rc));
        }
        *result = RUN_FATAL;
        return true;
    }
    bool is_err = reply->type == RESP_ERROR;
    rc = print_reply(s, argc, argv, reply);
    resp_value_free(reply);
    if (rc != RK_OK) {
        snprintf(why, size, "cannot write the reply: %s",
                 rc == RK_EIO ? strerror(errno) : rk_strerror(rc));
        *result = RUN_FATAL;
    } else {
        *result = is_err ? RUN_ERR_REPLY : RUN_OK;
    }
    return true;
}

/* Makes `al` hold the input words (when it is not an alias already), so
 * that some of them can be replaced. */
static void alias_own(struct cli_alias *al,
                      size_t in_argc,
                      char **in_argv,
                      const size_t *in_lens)
{
    if (al->argc == 0) {
        for (size_t i = 0; i < in_argc && i < CLI_ALIAS_MAX_ARGS; i++) {
            al->argv[i] = in_argv[i];
            al->lens[i] = in_lens[i];
        }
        al->argc = in_argc;
    }
}

/* Reads a cluster secret file (proto/peer_auth.h: hex) into hex (without
 * the newline), checked.  RK_OK, or an error with `why` set. */
static int read_secret_file(const char *path,
                            char *hex,
                            size_t cap,
                            char *why,
                            size_t size)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(why, size, "cannot read the secret file %s: %s", path,
                 strerror(errno));
        return RK_EIO;
    }
    char text[PEER_AUTH_SECRET_FILE_MAX + 1];
    size_t n = fread(text, 1, sizeof(text), fp);
    fclose(fp);
    unsigned char secret[PEER_AUTH_SECRET_MAX];
    size_t len = 0;
    const char *bad = NULL;
    if (n > PEER_AUTH_SECRET_FILE_MAX ||
        peer_auth_secret_parse(text, n, secret, &len, &bad) != RK_OK) {
        snprintf(why, size, "the secret file %s is not valid: %s", path,
                 bad ? bad : "too long");
        return RK_EINVAL;
    }
    size_t w = peer_auth_secret_format(secret, len, hex, cap);
    if (w > 0 && hex[w - 1] == '\n') {
        hex[w - 1] = '\0';
    }
    memset(secret, 0, sizeof(secret));
    memset(text, 0, sizeof(text));
    return RK_OK;
}

/* Sends argv and prints the reply; on a lost connection prints nothing
 * and leaves the reason in `why`.  Seed-style verbs (cli_alias.c) are
 * rewritten first, and `cluster join SEED` gets SEED's peer address. */
static enum run_result run_command(struct cli_session *s,
                                   size_t in_argc,
                                   char **in_argv,
                                   const size_t *in_lens,
                                   char *why,
                                   size_t size)
{
    struct cli_alias al;
    if (cli__alias_expand(in_argc, in_argv, in_lens, &al, why, size) != RK_OK) {
        return RUN_USAGE;
    }
    size_t argc = al.argc != 0 ? al.argc : in_argc;
    char **argv = al.argc != 0 ? (char **)al.argv : in_argv;
    const size_t *lens = al.argc != 0 ? al.lens : in_lens;
    char seed[300];
    /* `cluster join SEED [--secret-file FILE]` and `cluster replace OLD
     * SEED [--secret-file FILE]` (sent to the new node) name a seed: give
     * the node its peer address, and the cluster's secret as SECRET HEX. */
    size_t seed_at = 0;
    bool join =
        argc >= 3 && word_is(argv[0], "cluster") && word_is(argv[1], "join");
    bool repl =
        argc >= 4 && word_is(argv[0], "cluster") && word_is(argv[1], "replace");
    if ((join && argc == 3) || (join && argc == 5)) {
        seed_at = 2;
    } else if ((repl && argc == 4) || (repl && argc == 6)) {
        seed_at = 3;
    }
    char secret_hex[2 * PEER_AUTH_SECRET_MAX + 2];
    if (seed_at != 0 && argc == seed_at + 3) {
        if (strcmp(argv[seed_at + 1], "--secret-file") != 0) {
            snprintf(why, size, "usage: cluster %s SEED --secret-file FILE",
                     join ? "join" : "replace OLD");
            return RUN_USAGE;
        }
        if (read_secret_file(argv[seed_at + 2], secret_hex, sizeof(secret_hex),
                             why, size) != RK_OK) {
            return RUN_NOT_SENT;
        }
        alias_own(&al, in_argc, in_argv, in_lens);
        al.argv[seed_at + 1] = "SECRET";
        al.lens[seed_at + 1] = 6;
        al.argv[seed_at + 2] = secret_hex;
        al.lens[seed_at + 2] = strlen(secret_hex);
        argv = (char **)al.argv;
        lens = al.lens;
    }
    /* `cluster plan join HOST:PORT` and `cluster plan replace OLD
     * HOST:PORT` name the new node by address: the node the plan is sent
     * to wants its id and peer address (RINGKV.CLUSTER PLAN JOIN NODE-ID
     * HOST:PEERPORT RESPPORT). */
    char new_id[80], new_peer[300], new_resp[16];
    size_t new_at = 0;
    if (argc == 4 && word_is(argv[0], "cluster") && word_is(argv[1], "plan") &&
        word_is(argv[2], "join")) {
        new_at = 3;
    } else if (argc == 5 && word_is(argv[0], "cluster") &&
               word_is(argv[1], "plan") && word_is(argv[2], "replace")) {
        new_at = 4;
    }
    if (new_at != 0) {
        if (resolve_new_node(argv[new_at], new_id, sizeof(new_id), new_peer,
                             sizeof(new_peer), new_resp, sizeof(new_resp), why,
                             size) != RK_OK) {
            return RUN_NOT_SENT;
        }
        alias_own(&al, in_argc, in_argv, in_lens);
        al.argv[new_at] = new_id;
        al.lens[new_at] = strlen(new_id);
        al.argv[new_at + 1] = new_peer;
        al.lens[new_at + 1] = strlen(new_peer);
        al.argv[new_at + 2] = new_resp;
        al.lens[new_at + 2] = strlen(new_resp);
        al.argc = new_at + 3;
        argc = al.argc;
        argv = (char **)al.argv;
        lens = al.lens;
    }
    if (seed_at != 0) {
        if (resolve_join_seed(argv[seed_at], seed, sizeof(seed), why, size) !=
            RK_OK) {
            return RUN_NOT_SENT;
        }
        alias_own(&al, in_argc, in_argv, in_lens);
        al.argv[seed_at] = seed;
        al.lens[seed_at] = strlen(seed);
        argv = (char **)al.argv;
        lens = al.lens;
    }
    enum run_result lib_result;
    if (run_through_lib(s, argc, argv, lens, why, size, &lib_result)) {
        return lib_result;
    }
    struct resp_value *reply = NULL;
    /* `ringkv cluster join|leave|remove|status` is RINGKV.CLUSTER. */
    bool cluster = argc >= 1 && word_is(argv[0], "cluster");
    char **send_argv = argv;
    size_t *send_lens = (size_t *)lens;
    char **cargv = NULL;
    size_t *clens = NULL;
    if (cluster) {
        cargv = rk_malloc(argc * sizeof(*cargv));
        clens = rk_malloc(argc * sizeof(*clens));
        if (cargv == NULL || clens == NULL) {
            rk_free(cargv);
            rk_free(clens);
            snprintf(why, size, "out of memory");
            return RUN_FATAL;
        }
        memcpy(cargv, argv, argc * sizeof(*cargv));
        memcpy(clens, lens, argc * sizeof(*clens));
        cargv[0] = "RINGKV.CLUSTER";
        clens[0] = strlen(cargv[0]);
        for (size_t i = 2; i < argc; i++) {
            if (strcmp(cargv[i], "--force") == 0) {
                cargv[i] = "FORCE"; /* `cluster leave --force` */
                clens[i] = 5;
            }
        }
        send_argv = cargv;
        send_lens = clens;
    }
    int rc = cli_conn_command(s->conn, argc, (const char *const *)send_argv,
                              send_lens, &reply);
    rk_free(cargv);
    rk_free(clens);
    if (rc == RK_OK && cluster && reply->type == RESP_BULK) {
        /* The status table prints as is, on a terminal too. */
        fwrite(reply->str, 1, reply->len, stdout);
        fflush(stdout);
        resp_value_free(reply);
        return RUN_OK;
    }
    if (rc != RK_OK) {
        snprintf(why, size, "%s", cli_conn_errmsg(s->conn));
        if (cli_conn_is_broken(s->conn)) {
            session_disconnect(s);
            return RUN_NO_CONN;
        }
        return RUN_FATAL;
    }
    bool is_err = reply->type == RESP_ERROR;
    if (word_is(argv[0], "multi") && !is_err) {
        s->in_tx = true;
    } else if (word_is(argv[0], "exec") || word_is(argv[0], "discard")) {
        s->in_tx = false;
    }
    rc = print_reply(s, argc, argv, reply);
    resp_value_free(reply);
    if (rc != RK_OK) {
        snprintf(why, size, "cannot write the reply: %s",
                 rc == RK_EIO ? strerror(errno) : rk_strerror(rc));
        return RUN_FATAL;
    }
    if (word_is(argv[0], "quit") && !is_err) {
        session_disconnect(s); /* the server closes its side */
    }
    if (is_streaming(argv[0]) && !is_err) {
        return stream_replies(s, argc, argv, why, size);
    }
    return is_err ? RUN_ERR_REPLY : RUN_OK;
}

/* Reads all of stdin into `b` (for -x); RK_OK, RK_EIO or RK_ENOMEM. */
static int read_stdin(struct rk_buf *b)
{
    for (;;) {
        if (rk_buf_reserve(b, 65536) != RK_OK) {
            return RK_ENOMEM;
        }
        size_t n = fread(b->base + b->len, 1, 65536, stdin);
        b->len += n;
        if (n == 0) {
            return ferror(stdin) ? RK_EIO : RK_OK;
        }
    }
}

/* ---- command mode ----------------------------------------------------- */

static int command_mode(struct cli_session *s, int argc, char **argv)
{
    s->use_lib = true;
    if (word_is(argv[0], "help") && !s->opts->stdin_arg) {
        print_help((size_t)argc, argv);
        return 0;
    }
    struct rk_buf last;
    rk_buf_init(&last);
    size_t n = (size_t)argc + (s->opts->stdin_arg ? 1 : 0);
    char **args = rk_calloc(n, sizeof(*args));
    size_t *lens = rk_calloc(n, sizeof(*lens));
    int status = EXIT_RUNTIME;
    char why[CLI_ERRBUF_SIZE + 64];
    if (args == NULL || lens == NULL) {
        fprintf(stderr, "ringkv: %s\n", rk_strerror(RK_ENOMEM));
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        args[i] = argv[i];
        lens[i] = strlen(argv[i]);
    }
    if (s->opts->stdin_arg) {
        if (read_stdin(&last) != RK_OK) {
            fprintf(stderr, "ringkv: cannot read stdin: %s\n", strerror(errno));
            goto out;
        }
        args[n - 1] = last.base != NULL ? last.base : "";
        lens[n - 1] = last.len;
    }
    int rc = session_connect(s, why, sizeof(why));
    if (rc == RK_EINVAL) {
        fprintf(stderr, "ringkv: %s\n", why);
        goto out;
    } else if (rc != RK_OK) {
        fprintf(stderr, "ringkv: cannot connect to %s: %s\n", addr_text(s),
                why);
        goto out;
    }
    switch (run_command(s, n, args, lens, why, sizeof(why))) {
        case RUN_OK:
            status = 0;
            break;
        case RUN_ERR_REPLY:
            break;
        case RUN_NO_CONN:
            fprintf(stderr, "ringkv: lost connection to %s: %s\n", addr_text(s),
                    why);
            break;
        case RUN_FATAL:
            fprintf(stderr, "ringkv: %s\n", why);
            break;
        case RUN_USAGE:
            fprintf(stderr, "ringkv: %s (try 'ringkv --help')\n", why);
            status = EXIT_USAGE;
            break;
        case RUN_NOT_SENT:
            fprintf(stderr, "ringkv: %s\n", why);
            break;
    }
out:
    rk_free(args);
    rk_free(lens);
    rk_buf_fini(&last);
    return status;
}

/* ---- lines (REPL and batch) ------------------------------------------- */

enum line_result
{
    LINE_CONTINUE,
    LINE_QUIT,
    LINE_FATAL,
};

/* `connect HOST PORT` in the REPL. */
static void builtin_connect(struct cli_session *s, const struct cli_argv *a)
{
    if (a->argc != 3) {
        printf("usage: connect HOST PORT\n");
        return;
    }
    char *end = NULL;
    long port = strtol(a->argv[2], &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        printf("Invalid port '%s'\n", a->argv[2]);
        return;
    }
    snprintf(s->host, sizeof(s->host), "%s", a->argv[1]);
    s->port = (int)port;
    ringkv_destroy(s->rk); /* the next verb opens one on the new seed */
    s->rk = NULL;
    s->lib_failed = false;
    char why[CLI_ERRBUF_SIZE + 64];
    int rc = session_connect(s, why, sizeof(why));
    if (rc == RK_EINVAL) {
        printf("%s\n", why);
    } else if (rc != RK_OK) {
        printf("Could not connect to ringkv at %s: %s\n", addr_text(s), why);
    }
}

/* Connects if needed; prints redis-cli's message and returns false when
 * the server cannot be reached. */
static bool ensure_connected(struct cli_session *s, bool interactive)
{
    if (s->conn != NULL) {
        return true;
    }
    char why[CLI_ERRBUF_SIZE + 64];
    int rc = session_connect(s, why, sizeof(why));
    if (rc == RK_EINVAL && interactive) {
        printf("%s\n", why); /* AUTH failed; the user may AUTH by hand */
        return true;
    }
    if (rc == RK_EINVAL) {
        fprintf(stderr, "ringkv: %s\n", why);
        return false;
    }
    if (rc != RK_OK) {
        if (interactive) {
            printf("Could not connect to ringkv at %s: %s\n", addr_text(s),
                   why);
        } else {
            fprintf(stderr, "ringkv: cannot connect to %s: %s\n", addr_text(s),
                    why);
        }
        return false;
    }
    return true;
}

static enum line_result run_line(struct cli_session *s,
                                 const char *line,
                                 size_t len,
                                 struct cli_argv *a,
                                 bool interactive)
{
    int rc = cli__split_line(line, len, a);
    if (rc == RK_EINVAL) {
        if (interactive) {
            printf("Invalid argument(s)\n");
        } else {
            fprintf(stderr, "ringkv: Invalid argument(s): %.*s\n",
                    (int)strcspn(line, "\r\n"), line);
            s->saw_error_reply = true;
        }
        return LINE_CONTINUE;
    } else if (rc != RK_OK) {
        fprintf(stderr, "ringkv: %s\n", rk_strerror(rc));
        return LINE_FATAL;
    }
    if (a->argc == 0) {
        return LINE_CONTINUE;
    }
    const char *cmd = a->argv[0];
    if (word_is(cmd, "quit") || word_is(cmd, "exit") || word_is(cmd, ".exit")) {
        return LINE_QUIT;
    } else if (word_is(cmd, "help")) {
        print_help(a->argc, a->argv);
        return LINE_CONTINUE;
    } else if (interactive && word_is(cmd, "clear") && a->argc == 1) {
        printf("\033[H\033[2J");
        fflush(stdout);
        return LINE_CONTINUE;
    } else if (word_is(cmd, "connect")) {
        builtin_connect(s, a);
        return LINE_CONTINUE;
    }
    if (!ensure_connected(s, interactive)) {
        return interactive ? LINE_CONTINUE : LINE_FATAL;
    }
    char why[CLI_ERRBUF_SIZE + 64];
    switch (run_command(s, a->argc, a->argv, a->lens, why, sizeof(why))) {
        case RUN_OK:
            break;
        case RUN_ERR_REPLY:
            s->saw_error_reply = true;
            break;
        case RUN_NO_CONN:
            if (!interactive) {
                fprintf(stderr, "ringkv: lost connection to %s: %s\n",
                        addr_text(s), why);
                return LINE_FATAL;
            }
            printf("Error: %s\n", why);
            /* Reconnect now so the prompt tells the truth; the command is
             * not re-sent (the server may have run it). */
            char ignored[CLI_ERRBUF_SIZE + 64];
            (void)session_connect(s, ignored, sizeof(ignored));
            break;
        case RUN_FATAL:
            fprintf(stderr, "ringkv: %s\n", why);
            return LINE_FATAL;
        case RUN_USAGE:
        case RUN_NOT_SENT:
            if (interactive) {
                printf("(error) ERR %s\n", why);
            } else {
                fprintf(stderr, "ringkv: %s\n", why);
            }
            s->saw_error_reply = true;
            break;
    }
    return LINE_CONTINUE;
}

/* stdin is not a terminal: one command per line, like `redis-cli < f`.
 * Exit status 1 if any line failed. */
static int batch_mode(struct cli_session *s)
{
    struct cli_argv a;
    cli__argv_init(&a);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    s->use_lib = true;
    if (!ensure_connected(s, false)) {
        return EXIT_RUNTIME;
    }
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        enum line_result r = run_line(s, line, (size_t)n, &a, false);
        if (r == LINE_FATAL) {
            status = EXIT_RUNTIME;
            break;
        }
        if (r == LINE_QUIT) {
            break;
        }
    }
    free(line);
    cli__argv_fini(&a);
    if (s->saw_error_reply) {
        status = EXIT_RUNTIME;
    }
    return status;
}

/* ---- REPL ------------------------------------------------------------- */

/* Path of the history file, or NULL for none; static storage. */
static const char *history_path(void)
{
    static char path[4096];
    const char *env = getenv("RINGKV_HISTFILE");
    if (env != NULL) {
        return env[0] != '\0' ? env : NULL;
    }
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        return NULL;
    }
    int n = snprintf(path, sizeof(path), "%s/%s", home, HISTORY_FILE);
    return n > 0 && (size_t)n < sizeof(path) ? path : NULL;
}

/* Lines that carry a password stay out of the history file. */
static bool keep_in_history(const struct cli_argv *a)
{
    if (a->argc == 0) {
        return false;
    }
    if (word_is(a->argv[0], "auth")) {
        return false;
    }
    for (size_t i = 1; i < a->argc && word_is(a->argv[0], "hello"); i++) {
        if (word_is(a->argv[i], "auth")) {
            return false;
        }
    }
    return true;
}

static size_t complete_index;

/* True if an entry before `i` starts with the same first word (CLIENT
 * SETNAME, CLIENT GETNAME... complete to one CLIENT). */
static bool seen_first_word(size_t i, const char *name, size_t len)
{
    for (size_t j = 0; j < i; j++) {
        const char *other = cli__help_at(j)->name;
        if (strcspn(other, " ") == len && strncmp(other, name, len) == 0) {
            return true;
        }
    }
    return false;
}

/* libedit generator: command names starting with `text`. */
static char *complete_command(const char *text, int state)
{
    if (state == 0) {
        complete_index = 0;
    }
    size_t len = strlen(text);
    bool lower = len > 0 && text[0] >= 'a' && text[0] <= 'z';
    const struct cli_cmd_help *h;
    while ((h = cli__help_at(complete_index++)) != NULL) {
        size_t name_len = strcspn(h->name, " ");
        if (name_len < len || strncasecmp(h->name, text, len) != 0 ||
            seen_first_word(complete_index - 1, h->name, name_len)) {
            continue;
        }
        {
            char *m = malloc(name_len + 1); /* libedit frees with free() */
            if (m == NULL) {
                return NULL;
            }
            for (size_t i = 0; i < name_len; i++) {
                char c = h->name[i];
                m[i] = lower && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
            }
            m[name_len] = '\0';
            return m;
        }
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1; /* no file-name fallback */
    if (start != 0) {
        return NULL;
    }
    return rl_completion_matches(text, complete_command);
}

static void prompt_text(const struct cli_session *s, char *buf, size_t size)
{
    if (s->conn == NULL) {
        snprintf(buf, size, "ringkv not connected> ");
    } else {
        snprintf(buf, size, "ringkv %s%s> ", addr_text(s),
                 s->in_tx ? "(TX)" : "");
    }
}

static int repl_mode(struct cli_session *s)
{
    const char *hist = history_path();
    rl_readline_name = "ringkv";
    rl_attempted_completion_function = complete;
    using_history();
    stifle_history(HISTORY_MAX_LINES);
    if (hist != NULL) {
        (void)read_history(hist); /* missing or unreadable: start empty */
    }
    (void)ensure_connected(s, true);
    struct cli_argv a;
    cli__argv_init(&a);
    int status = 0;
    for (;;) {
        char prompt[400];
        prompt_text(s, prompt, sizeof(prompt));
        char *line = readline(prompt);
        if (line == NULL) {
            break; /* Ctrl-D */
        }
        size_t len = strlen(line);
        enum line_result r = run_line(s, line, len, &a, true);
        if (cli__split_line(line, len, &a) == RK_OK && keep_in_history(&a)) {
            add_history(line);
            if (hist != NULL) {
                (void)write_history(hist); /* unwritable: not fatal */
            }
        }
        free(line);
        if (r != LINE_CONTINUE) {
            status = r == LINE_FATAL ? EXIT_RUNTIME : 0;
            break;
        }
    }
    cli__argv_fini(&a);
    return status;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct cli_opts opts;
    parse_args(argc, argv, &opts);
    struct cli_session s = {.opts = &opts, .port = opts.port};
    snprintf(s.host, sizeof(s.host), "%s", opts.host);
    if (strlen(opts.host) >= sizeof(s.host)) {
        usage_error("host name too long: '%s'", opts.host);
    }
    s.fmt = pick_format(opts.out);
    int status;
    if (opts.argc > 0) {
        status = command_mode(&s, opts.argc, opts.argv);
    } else if (isatty(STDIN_FILENO)) {
        status = repl_mode(&s);
    } else {
        status = batch_mode(&s);
    }
    session_disconnect(&s);
    ringkv_destroy(s.rk);
    return status;
}
