/*
 * internal.h - state shared by the files of src/server/ (server.c: loop,
 * connections, durability; commands.c: the command table and handlers;
 * info.c: INFO).  Nothing outside src/server includes this.
 *
 * Threading: one event-loop thread owns every struct here.  The storage
 * engine's sync thread only writes to `durable_efd` (via durable_cb).
 *
 * Reply path and durability: handlers append replies to client->obuf.  A
 * write handler that got sequence number `seq` from the engine raises
 * client->wait_seq.  After a batch of commands the client's obuf is
 * handed to libevent only once engine_acked_seq() >= wait_seq; until then
 * the client sits on the server's `waiting` list and its replies,
 * including those of later commands, stay held, so replies keep their
 * order and no write is acknowledged before the sync policy covers it.
 * sync=always: the engine's sync thread fdatasyncs batches (group
 * commit) and wakes the loop through durable_efd.  sync=every and none:
 * a waiting client activates `handoff_ev`, which runs once at the end of
 * the loop pass (after the read callbacks already queued in it) and hands
 * every buffered write to the OS in one write(2) (engine_handoff), then
 * releases the held replies: a process crash loses no acknowledged write
 * (issue 12; Redis writes its AOF buffer in beforeSleep the same way).
 */
#ifndef RINGKV_SERVER_INTERNAL_H
#define RINGKV_SERVER_INTERNAL_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/op.h"
#include "common/buf.h"
#include "common/hlc.h"
#include "proto/resp.h"
#include "server/acl.h"
#include "server/auth_guard.h"
#include "server/config.h"
#include "server/keyspace.h"
#include "storage/engine.h"

struct server;
struct client;
struct cnode;

/* Command flags (the COMMAND INFO flags they map to in comments). */
enum
{
    CMD_WRITE = 1 << 0,    /* write */
    CMD_READONLY = 1 << 1, /* readonly */
    CMD_NOAUTH = 1 << 2,   /* no-auth: allowed before AUTH */
    CMD_NOMULTI = 1 << 3,  /* executes at once inside MULTI */
    CMD_FAST = 1 << 4,     /* fast */
    CMD_ADMIN = 1 << 5,    /* admin */
    CMD_LOADING = 1 << 6,  /* loading */
    CMD_STALE = 1 << 7,    /* stale */
    CMD_CREATE = 1 << 8,   /* may create a key (empty keys refused) */
    CMD_NOTX = 1 << 9,     /* refused inside MULTI (SAVE, SHUTDOWN) */
    CMD_LOCAL = 1 << 10,   /* names a key but runs on this node only */
    /* Key specs for the coordinator (Redis key-specs' RW/OW/UPDATE):   */
    CMD_BLIND = 1 << 11,      /* a blind write: its result does not depend
                                 on what is stored (no read first) */
    CMD_BLIND_OPTS = 1 << 12, /* blind unless an option from argv[3] on
                                 reads (SET's NX XX GET KEEPTTL) */
    CMD_VERSIONED = 1 << 13,  /* works on the versioned object itself
                                 (siblings, context): RINGKV.GETALL (read),
                                 RINGKV.PUT (4 args), RINGKV.DEL (3 args) */
    CMD_TXKEYS = 1 << 14,     /* its keys are the queued commands' and the
                                 WATCHed keys (EXEC) */
    CMD_TYPED = 1 << 15,      /* stores the request's content type (HTTP
                                 PUT with Content-Type) */
    CMD_COLL = 1 << 16,       /* a hash or set command (issue 16): not in a
                                 cluster yet, refused there */
};

typedef void (*cmd_proc)(struct client *c,
                         size_t argc,
                         const struct resp_arg *argv);

struct command
{
    const char *name; /* lower case */
    cmd_proc proc;
    int arity;      /* Redis convention: -N means >= N */
    uint32_t flags; /* CMD_* */
    int first_key;  /* 0 = no keys */
    int last_key;   /* -1 = last argument */
    int key_step;
    const char *group;   /* "string", "generic", "connection", "server" */
    const char *since;   /* Redis version that introduced the command */
    const char *summary; /* one line, for COMMAND DOCS and help */
    const char *complexity;
    const struct command *subcommands; /* NULL-name terminated, or NULL */
};

/* A queued command inside MULTI: argv copied into one allocation. */
struct queued_cmd
{
    const struct command *cmd;
    size_t argc;
    struct resp_arg *argv; /* points into the same allocation */
};

/* A WATCHed key and what it looked like when watched. */
struct watched_key
{
    struct watched_key *next;
    bool existed;
    uint64_t timestamp; /* HLC of the record seen (strictly increasing) */
    size_t klen;
    char key[]; /* klen bytes */
};

struct client
{
    uint64_t id;
    struct server *srv;
    struct bufferevent *bev;
    struct event *rev; /* our read event on fd (bev: output) */
    int fd;
    char addr[64];      /* "ip:port" */
    struct rk_buf qbuf; /* unparsed input */
    /* While a large command is dispatched: the input buffer that holds
     * it, detached from qbuf, each argument NUL-terminated in place.  A
     * coordinated command takes it (op_create_owned, sets it NULL);
     * otherwise client_process_input frees it after the dispatch. */
    char *donated;
    size_t donated_len;
    struct rk_buf obuf; /* replies not yet handed to libevent */
    struct resp_parser *parser;
    int proto; /* 2 or 3 */
    bool authed;
    struct acl_user *user;  /* authenticated as (a reference, acl.h), or
                               NULL before AUTH */
    bool acl_killed;        /* its user was deleted: closed at the tick */
    bool auth_failed_here;  /* its last AUTH failed: it waits out its IP's
                               failures like an unauthenticated client */
    struct keyspace *ks;    /* what handlers read and write keys through:
                               &srv->local_ks, or a coordinated command's
                               keys while its handler runs (cluster.c) */
    bool close_after_reply; /* QUIT, protocol error */
    bool closing;           /* output drained -> free */
    bool read_paused;       /* output over the soft limit */
    bool auth_held;         /* waiting out its IP's AUTH failures
                               (auth_guard.h): nothing read meanwhile */
    struct event *hold_ev;  /* ends auth_held; NULL until first needed */
    bool auth_turn;         /* waited its turn: its next command runs
                               without a new wait (no starvation) */
    bool tls;        /* on the TLS port: bev is an OpenSSL bufferevent for both
                        directions and rev is NULL (tls.h) */
    bool on_waiting; /* linked in srv->waiting */
    /* Durability marks under sync=always: obuf[0..marks[i].off) may be
     * sent once engine_durable_seq() >= marks[i].seq.  Oldest first. */
    struct
    {
        size_t off;
        uint64_t seq;
    } marks[16];
    size_t n_marks;
    char *name;                   /* CLIENT SETNAME, owned, or NULL */
    char *lib_name, *lib_ver;     /* CLIENT SETINFO, owned, or NULL */
    uint64_t wait_seq;            /* replies held until this is durable */
    uint64_t created_ms, last_ms; /* monotonic ms */
    uint64_t n_commands;
    /* MULTI state */
    bool in_multi;
    bool multi_dirty;      /* a queued command failed: EXECABORT */
    struct queued_cmd *mq; /* owned array */
    size_t mq_len, mq_cap;
    const char *last_cmd;          /* for CLIENT LIST */
    const struct command *cur_cmd; /* the command whose replies are being
                                      written (error counts) */
    struct watched_key *watched;   /* WATCH snapshots, owned list */
    bool watch_dirty;              /* a watched key could not be read */
    /* Coordinated commands in progress (cluster/op.h), oldest first;
     * their replies are appended in this order.  Input parsing stops
     * while op_client_is_blocked (too many, or a command that must run
     * alone). */
    struct op_client ops;
    bool resume_pending; /* on the cluster's resume list */
    /* An internal client (http.c): no socket; when a whole reply is in
     * obuf and nothing is in flight, ready(c, data) runs and must free c
     * with server_client_free. */
    bool internal;
    /* Options of an internal client's one command (http.c: the query
     * parameters and Content-Type); all zero for socket clients. */
    struct req_opts
    {
        uint32_t r, w, n;    /* quorum overrides, 0 = configured */
        uint32_t timeout_ms; /* request timeout override, 0 = configured */
        uint8_t ctlen;       /* content type to store, 0 = none */
        char ctype[128];     /* its bytes (visible ASCII), ctlen of them */
        bool want_ctype;     /* RINGKV.GETALL siblings get a 4th element:
                                the content type (or nil) */
    } ropts;
    void (*ready)(struct client *c, void *data);
    void *ready_data;
    struct client *resume_next;   /* cluster.c resume list */
    struct client *prev, *next;   /* srv->clients */
    struct client *wprev, *wnext; /* srv->waiting */
};

/* Calls and error replies of one command (GET /metrics). */
struct cmd_stat
{
    uint64_t calls;
    uint64_t errors;
};

/* A latency histogram in seconds with fixed buckets (GET /metrics). */
#define LAT_BUCKETS 16
extern const double lat_bounds_s[LAT_BUCKETS]; /* upper bounds, seconds */
struct lat_hist
{
    uint64_t le[LAT_BUCKETS]; /* observations <= lat_bounds_s[i] (not
                                 cumulative; the exporter sums them) */
    uint64_t count;
    double sum_s;
};
/* Records one observation of `us` microseconds. */
void lat_observe(struct lat_hist *h, uint64_t us);

struct server_stats
{
    uint64_t total_connections;
    uint64_t rejected_connections;
    uint64_t total_commands;
    uint64_t keyspace_hits;
    uint64_t keyspace_misses;
    uint64_t expired_keys;
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t protocol_errors;
    uint64_t auth_failures;
    uint64_t security_attacks;    /* HTTP requests on the RESP port, closed */
    uint64_t acl_denied_auth;     /* AUTH refused (ACL LOG reason auth) */
    uint64_t acl_denied_cmd;      /* commands refused by ACL rules */
    uint64_t acl_denied_key;      /* commands refused for a key pattern */
    uint64_t protected_denied;    /* remote clients refused: protected mode */
    uint64_t protected_logged_ms; /* last protected_mode_denied line */
    uint64_t security_logged_ms;  /* last security_attack log line */
    uint64_t auth_logged_ms;      /* last auth_failed line (rate limit) */
    uint64_t auth_unlogged;       /* auth_failed lines left out since */
    uint64_t write_errors;
    uint64_t held_replies; /* batches that waited for a sync */
    /* Event-loop lag: how much later than its period each tick ran (a
     * callback that holds the loop delays every other client by as
     * much), microseconds. */
    uint64_t loop_lag_max_us;
    struct lat_hist loop_lag;
};

struct server
{
    struct rk_config *cfg;
    struct event_base *base;
    struct evconnlistener *listener;
    struct engine *engine;
    struct event *tick_ev;
    struct event *sig_ev[2];
    struct event *durable_ev;
    int durable_efd;
    struct event *handoff_ev; /* end-of-pass hand-off (above) */
    bool handoff_pending;     /* handoff_ev is active */
    struct client *clients;   /* all connected clients */
    struct client *waiting;   /* clients with held replies */
    size_t n_clients;
    uint64_t next_client_id;
    uint64_t start_ms; /* wall clock at start */
    uint64_t start_mono_ms;
    bool shutting_down;
    const char *shutdown_why; /* set by server_shutdown, run by tick */
    bool listener_paused;     /* accept hit EMFILE/ENFILE */
    uint64_t accept_errors_logged_ms;
    uint64_t scan_cursor;       /* active expiry position */
    uint64_t shutdown_start_ms; /* mono ms: output drain deadline base */
    struct rk_buf scratch;      /* reused value buffer */
    struct keyspace local_ks;   /* the node's engine (commands.c) */
    char rbuf[16 * 1024];       /* shared socket read buffer (loop thread) */
    struct hlc clock;           /* record timestamps */
    struct cnode *cluster;      /* cluster.c */
    bool coll_present;          /* holds (or held, since start) hashes or
                                   sets: joins are refused (cmd/coll.c) */
    struct disk_watch disk;     /* free space of the data dir (disk.h) */
    uint64_t recover_at_ms;     /* mono ms: next engine_recover attempt */
    struct evhttp *http;        /* http.c, NULL when off */
    struct evhttp *https;       /* the same over TLS (https-port), or NULL */
    struct cmd_stat *cmdstats;  /* command_count() entries, by table index */
    bool cluster_exec;          /* a handler runs over a coordinated
                                   keyspace (cluster.c): no routing */
    struct server_stats stats;
    uint64_t last_tick_us;        /* monotonic, of the last tick (loop lag) */
    struct resp_limits limits;    /* after AUTH */
    struct resp_limits preauth;   /* before AUTH (requirepass set) */
    struct auth_guard auth_guard; /* failed AUTHs per client IP */
    struct evconnlistener *tls_listener; /* tls-port, or NULL */
    struct ssl_ctx_st *tls_ctx;          /* its context (tls.h); replaced by a
                                            CONFIG SET of a tls-* setting */
    uint64_t tls_handshake_failures;
    struct acl *acl;        /* ACL users (acl.h, cmd/acl.c) */
    struct acl_log acl_log; /* ACL LOG */
    bool acl_kill_pending;  /* some client has acl_killed set */
};

/* ---- server.c ---- */
uint64_t server_now_ms(void);    /* wall clock, Unix ms */
uint64_t server_mono_ms(void);   /* monotonic ms */
uint64_t server_mono_us(void);   /* monotonic us */
uint64_t server_rss_bytes(void); /* resident set size (info.c) */

/* CONFIG SET of a tls-* setting: builds the TLS contexts from cfg (the
 * settings after the change: the client port's, and the peers' with
 * tls-cluster yes, whose certificate must still name this node's id)
 * and, if every one works, makes new TLS connections use them.
 * RK_EINVAL with `why` when one does not (nothing changes).  RK_OK when
 * neither a TLS port nor tls-cluster is on. */
int server_tls_reload(struct server *s,
                      const struct rk_config *cfg,
                      char *why,
                      size_t why_len);

/* Resumes a client whose coordinated command finished: processes its
 * buffered input and flushes.  Returns false if the client was freed. */
bool server_client_resume(struct client *c);
/* A client without a socket for the HTTP API (see struct client): authed,
 * RESP2, not listed in CLIENT LIST.  Returns NULL when out of memory. */
struct client *server_client_internal(struct server *s,
                                      void (*ready)(struct client *, void *),
                                      void *data);
/* Frees a client (its coordinated commands are cancelled). */
void server_client_free(struct client *c);

/* ---- cmd/acl.c ---- */
/* Builds the command catalog and the user table ("default" with
 * requirepass, or the --aclfile's users).  RK_OK, or an error with `err`
 * (a bad ACL file: ringkvd does not start). */
int server_acl_init(struct server *s, char *err, size_t errlen);
void server_acl_fini(struct server *s);
/* Whether new clients must AUTH: the default user is off or has a
 * password. */
bool server_auth_required(const struct server *s);
/* The enabled user named user[0..ulen) whose password is pw, or NULL. */
struct acl_user *server_acl_authenticate(struct server *s,
                                         const char *user,
                                         size_t ulen,
                                         const char *pw,
                                         size_t plen);
/* Makes c authenticated as u (NULL: none), moving its reference. */
void server_client_set_user(struct client *c, struct acl_user *u);
/* A failed HTTP Basic/Bearer authentication as user[0..ulen) from peer
 * ("ip"): counted and in ACL LOG (reason auth), as a failed AUTH is. */
void server_acl_http_auth_failed(struct server *s,
                                 const char *user,
                                 size_t ulen,
                                 const char *peer);
/* CONFIG SET requirepass: the default user's password follows it. */
void server_acl_requirepass_changed(struct server *s);

/* ---- commands.c ---- */
/* The local keyspace over s->engine (keyspace.h). */
void keyspace_local_init(struct keyspace *ks, struct server *s);
/* Looks up a command by name (case-insensitive); NULL if unknown. */
const struct command *command_lookup(const char *name, size_t len);
/* Runs one parsed request for client c (auth, MULTI queueing, arity). */
/* The request log line (--log-requests): command name, argument count,
 * duration in us, whether it answered an error, and the client. */
void log_request(struct client *c,
                 const char *cmd,
                 size_t nargs,
                 uint64_t us,
                 bool failed);
void command_dispatch(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv);
/* Frees the MULTI queue and WATCH list of c. */
void multi_reset(struct client *c);
/* Requests graceful shutdown; it starts on the next loop turn, never
 * inside the caller (a command handler).  server.c */
void server_shutdown(struct server *s, const char *why);
/* Re-arms the housekeeping timer after CONFIG SET hz.  server.c */
void server_rearm_tick(struct server *s);
/* Asks for one hand-off of buffered writes to the OS at the end of this
 * loop pass (sync=every and none; a no-op under always).  server.c */
void server_want_handoff(struct server *s);
/* Whether this invocation of cmd is a blind write (CMD_BLIND, or
 * CMD_BLIND_OPTS without a reading option). */
bool command_is_blind(const struct command *cmd,
                      size_t argc,
                      const struct resp_arg *argv);
/* Number of commands in the table. */
size_t command_count(void);
/* Table index of cmd (0..command_count()-1), and the command at i. */
size_t command_index(const struct command *cmd);
const struct command *command_at(size_t i);
/* Active expiry: examines up to `budget` keys (none when no key has a
 * TTL: engine_expiring_keys); returns keys expired. */
size_t expire_cycle(struct server *s, size_t budget);

/* ---- info.c ---- */
/* Appends the INFO text for `section` ("default", "all", "server", ...). */
void info_render(struct server *s,
                 struct client *c,
                 const char *section,
                 struct rk_buf *out);

/* ---- reply helpers (commands.c) ---- */
void reply_ok(struct client *c);
void reply_simple(struct client *c, const char *s);
void reply_error(struct client *c, const char *msg);
void reply_errorf(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void reply_int(struct client *c, int64_t v);
void reply_bulk(struct client *c, const void *p, size_t len);
void reply_bulk_str(struct client *c, const char *s);
void reply_null(struct client *c);
void reply_array(struct client *c, size_t n);
void reply_map(struct client *c, size_t n_pairs);

/* cmd/coll.c: whether the engine holds a hash or set (O(keys) when it
 * does not); if so, the node refuses joins from then on (issue 16: a
 * cluster does not replicate them yet). */
void coll__check_present(struct server *s);

#endif /* RINGKV_SERVER_INTERNAL_H */
