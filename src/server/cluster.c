/*
 * cluster.c - see cluster.h.  The glue between the sans-IO cluster
 * machines and the event loop:
 *
 *   peer_transport --on_message--> membership (JOIN, JOIN_REPLY, GOSSIP)
 *                                  swim       (PING, ACK, PING_REQ)
 *                                  replica    (KV_PUT, KV_GET: local engine)
 *                                  coord      (KV_*_REPLY, ERROR)
 *   every message also counts as traffic for swim (the peer is alive).
 *
 *   a 10 ms timer ticks membership (gossip every 200 ms), swim (probe
 *   period 500 ms) and coord (request deadlines) when their deadlines pass.
 *
 * Actions are drained here.  The coordinator's action list is valid only
 * until the next call into it, so its REPLY actions only record results
 * in the client's operation and queue the operation on `ready`; operations
 * advance (start more requests, run the handler, answer the client) only
 * after the drain, never inside it.  Transport send failures are collected
 * and fed back after the list is consumed, for the same reason.
 *
 * A coordinated command (struct cop) goes through:
 *   READ   coord_start_get for each distinct key (skipped for blind
 *          writes such as a plain SET or MSET), at most COP_WINDOW in
 *          flight per operation;
 *   EXEC   the ordinary handler runs against the scratch engine, loaded
 *          with the live versions read, its reply captured;
 *   WRITE  coord_start_put of every key whose record the handler changed
 *          (new timestamp) or removed (a tombstone);
 *   DONE   the captured reply, or -NOQUORUM from the first failed
 *          request, is appended to the client's output.
 * The HLC observes every timestamp read before the handler runs, so a
 * read-modify-write (INCR, APPEND, SET ... GET) always writes a version
 * newer than the one it read.  Concurrent writers of one key still race
 * (last writer wins by HLC): docs/cluster.md says so.
 */
#include "server/cluster.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cluster/coord.h"
#include "cluster/dvv.h"
#include "cluster/membership.h"
#include "cluster/replica.h"
#include "cluster/ring.h"
#include "cluster/route.h"
#include "cluster/swim.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "server/peer_transport.h"

#define CLUSTER_TICK_MS 10
#define COP_WINDOW      64    /* requests in flight per operation */
#define COORD_SLOTS     16384 /* coordinator table */
#define STATE_FILE      "cluster.state"
#define NODE_ID_FILE    "NODE_ID"
#define EPOCH_FILE      "EPOCH"     /* starts of this data dir */
#define VERSIONED_FILE  "VERSIONED" /* keys are versioned objects */
#define MAX_FAILS       256
#define CLIENT_PIPELINE 64 /* coordinated commands in flight per client */

enum cop_kind
{
    COP_KEYS = 1, /* a coordinated key command */
    COP_JOIN,     /* RINGKV.CLUSTER JOIN waiting for admission */
    COP_DEFER,    /* a command that must wait for the ones before it */
};

/* A coordinated command reads its keys (unless it is a blind write), runs
 * its handler over the scratch engine, then for every key it changed sends
 * the write to one coordinating replica (UPDATE: it issues the version's
 * dot and returns the new object) and that object to the key's replicas
 * (WRITE), answering after W. */
enum cop_phase
{
    PH_READ = 1,
    PH_UPDATE,
    PH_WRITE,
    PH_DONE,
};

struct cop_key
{
    size_t off, len;   /* into cop->kbuf */
    uint64_t req_id;   /* request in flight for this key */
    uint8_t state;     /* 0 not started, 1 in flight, 2 done */
    bool live;         /* read: a live value exists */
    bool read;         /* read: answered (ctx holds the merged clock) */
    bool write;        /* write phase: this key is written */
    bool tomb;         /* write phase: as a tombstone */
    bool own_ctx;      /* write: supersede what the coordinating replica
                          has seen (no read context) */
    bool ctype;        /* val starts with a content type (dvv.h) */
    uint64_t ts, exp;  /* read: its version; write: what to write */
    struct rk_buf val; /* read: the value; write: what to write */
    struct rk_buf obj; /* read: merged object; update: the new object */
    struct rk_buf ctx; /* write: context (clock-only dvv encoding) */
    char coord_id[CL_ID_MAX + 1]; /* update: the coordinating replica */
};

struct cop
{
    enum cop_kind kind;
    struct client *c;
    const struct command *cmd;
    size_t argc;
    struct resp_arg *argv; /* copied into one allocation */
    enum cop_phase phase;
    struct cop_key *keys;
    size_t nkeys;
    struct rk_buf kbuf;
    size_t next;     /* next key to start */
    size_t inflight; /* requests in flight */
    size_t done;     /* keys finished in this phase */
    bool failed;
    char err[160];
    struct rk_buf reply; /* captured handler output */
    bool queued;         /* on cn->ready */
    bool stalled;        /* start refused RK_EBUSY with nothing in flight */
    bool waiting;        /* not started: shares a key with an earlier
                            unfinished command of the same client */
    bool finished;       /* reply (or err) final; waits for its turn */
    bool barrier;        /* later input waits until this one is answered */
    uint64_t start_us;   /* monotonic, for the latency histograms */
    struct cop *rnext;
    struct cop *snext;
    struct cop *cnext; /* the client's FIFO */
};

struct peer_seen
{
    char id[CL_ID_MAX + 1];
    uint64_t version; /* of its last GOSSIP */
    uint64_t hash;    /* XXH3 of that state's bytes */
    uint64_t at_ms;
};

struct pending_ack
{
    uint64_t seq;
    bool local;
    uint64_t req_id;
    int32_t status;
    char peer[CL_ID_MAX + 1];
};

struct send_fail
{
    uint64_t req_id;
    int status;
    char node[CL_ID_MAX + 1];
};

/* A peer whose connection closed and has not been re-established. */
struct peer_gone
{
    char id[CL_ID_MAX + 1];
};

#define HD_SLOTS        256 /* hint deliveries in flight */
#define HINT_ROUND_MS   100 /* delivery scan interval */
#define HINT_SCAN_BATCH 256 /* hints looked at per round */
#define GC_SLOTS        64  /* tombstone checks in flight */
#define GC_SCAN_BATCH   256 /* keys looked at per reaping round */

/* A hint being delivered: which record, and the hash of the object sent,
 * so a hint that grew meanwhile is kept for the next round. */
struct hint_delivery
{
    uint64_t req_id; /* 0: free */
    uint64_t hash;   /* XXH3 of the object sent */
    struct rk_buf hkey;
};

struct cnode
{
    struct server *srv;
    struct peer_transport *pt;
    struct membership *mem;
    struct swim *swim;
    struct coord *coord;
    struct engine *scratch;
    struct event *timer;
    /* Clients whose coordinated replies are ready: resumed (parsed and
     * flushed) once per loop pass, so a pipeline's replies share a write. */
    struct event *resume_ev;
    struct client *resume_head, *resume_tail;
    struct cl_actions acts;
    char node_id[CL_ID_MAX + 1];
    uint16_t peer_port;
    char dir[4096];
    /* effective replication settings for the current membership */
    size_t valid_members;
    uint32_t n_eff, r_eff, w_eff;
    bool multi; /* >= 2 valid members: route key commands */
    uint64_t state_hash;
    struct peer_seen *seen;
    size_t n_seen, cap_seen;
    struct pending_ack *acks;
    size_t n_acks, cap_acks, head_acks;
    struct send_fail fails[MAX_FAILS];
    size_t n_fails;
    /* failures held back while the same request's local write waits for
     * its fsync, so the early NOQUORUM counts the local copy */
    struct send_fail *held;
    size_t n_held, cap_held;
    struct peer_gone *gone;
    size_t n_gone, cap_gone;
    bool draining;
    bool in_ready;
    struct cop *ready;
    struct cop *stalled;
    struct cop *join_op;
    struct rk_buf valbuf;
    /* versions (issue 5) */
    uint64_t epoch; /* starts of this data dir (EPOCH file) */
    uint64_t actor; /* dvv actor of this run: XXH3(node id, epoch) */
    uint64_t floor; /* highest counter this actor issued */
    uint64_t oneshot;
    uint64_t last_seq; /* last engine write by replica code */
    struct replica_stats rstats;
    struct replica_cfg rcfg;
    bool versioned; /* has been in a cluster: keys are objects */
    /* hinted handoff (issue 5 item 3): objects held for down owners in
     * their own engine (DATA_DIR/hints), keyed by hint_key(owner, key) */
    struct engine *hints;
    uint64_t hint_cursor;
    uint64_t hint_scan_at;    /* monotonic ms of the next delivery round */
    struct hint_delivery *hd; /* HD_SLOTS, in flight when req_id != 0 */
    uint64_t hints_stored, hints_delivered, hints_superseded;
    /* tombstone reaping (issue 5 item 5) */
    uint64_t gc_cursor;
    uint64_t gc_scan_at;
    struct hint_delivery *gc; /* GC_SLOTS checks in flight (hkey = key,
                                 hash = local object) */
    uint64_t tombstones_reaped;
    uint64_t skew_logged_at; /* monotonic ms of the last clock_skew log */
    uint64_t bound_logged, bound_logged_at; /* sibling_bound log */
    struct lat_hist coord_lat[2];   /* [0] reads, [1] writes (commands) */
    uint64_t coord_failed[2];       /* of them, answered with an error */
    struct lat_hist replica_lat[2]; /* [0] KV_GET, [1] KV_PUT/KV_UPDATE */
    uint64_t gossip_in;             /* GOSSIP messages received */
    uint64_t gossip_out;            /* GOSSIP messages sent */
    /* counters */
    uint64_t coordinated, noquorum, replica_puts, replica_gets, replica_updates;
    uint64_t persist_errors;
};

/* Wall-clock ms as of this event-loop pass (libevent's cached time: no
 * clock_gettime per call on the hot path), for the clock-skew check. */
static uint64_t loop_now_ms(struct cnode *cn)
{
    struct timeval tv;
    if (event_base_gettimeofday_cached(cn->srv->base, &tv) != 0) {
        return server_now_ms();
    }
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static uint64_t now_mono(void)
{
    return server_mono_ms();
}

bool cluster_meta_is_tombstone(const void *engine_meta)
{
    return replica_meta_is_dead(engine_meta, server_now_ms());
}

/* ---- files --------------------------------------------------------- */

static int write_file_atomic(const char *dir,
                             const char *name,
                             const void *p,
                             size_t len)
{
    char tmp[4200], dst[4200];
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return RK_EIO;
    }
    const char *b = p;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, b + off, len - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            close(fd);
            unlink(tmp);
            return RK_EIO;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return RK_EIO;
    }
    close(fd);
    if (rename(tmp, dst) != 0) {
        unlink(tmp);
        return RK_EIO;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return RK_OK;
}

/* Reads a whole small file into out (cleared).  RK_ENOTFOUND if absent. */
static int read_file(const char *dir, const char *name, struct rk_buf *out)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    rk_buf_clear(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? RK_ENOTFOUND : RK_EIO;
    }
    char tmp[4096];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            close(fd);
            return RK_EIO;
        }
        if (n == 0) {
            break;
        }
        if (rk_buf_append(out, tmp, (size_t)n) != RK_OK ||
            out->len > 64u * 1024 * 1024) {
            close(fd);
            return RK_ENOMEM;
        }
    }
    close(fd);
    return RK_OK;
}

/* ---- membership-derived settings ------------------------------------- */

static void recompute(struct cnode *cn)
{
    struct server *s = cn->srv;
    size_t valid = 0;
    size_t m = membership_member_count(cn->mem);
    const char **ids = rk_malloc((m ? m : 1) * sizeof(*ids));
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(cn->mem, i, &mm);
        if (mm.status == MEMBERSHIP_VALID) {
            if (ids) {
                ids[valid] = mm.node_id;
            }
            valid++;
        }
    }
    if (ids) {
        if (swim_set_members(cn->swim, ids, valid) != RK_OK) {
            rk_log(RK_LOG_WARN, "cluster_swim_members", "members=%zu", valid);
        }
        rk_free(ids);
    }
    bool member = membership_phase(cn->mem) == MEMBERSHIP_MEMBER;
    uint32_t n = s->cfg->n_val, r = s->cfg->r_val, w = s->cfg->w_val;
    struct route_quorum q = route_clamp((struct route_quorum){n, r, w}, valid);
    uint32_t n2 = q.n, r2 = q.r, w2 = q.w;
    if (n2 != cn->n_eff || r2 != cn->r_eff || w2 != cn->w_eff ||
        valid != cn->valid_members) {
        if (n2 != n || r2 != r || w2 != w) {
            rk_log(RK_LOG_INFO, "cluster_quorum_clamped",
                   "members=%zu n=%" PRIu32 " r=%" PRIu32 " w=%" PRIu32
                   " configured_n=%" PRIu32 " configured_r=%" PRIu32
                   " configured_w=%" PRIu32,
                   valid, n2, r2, w2, n, r, w);
        }
    }
    cn->valid_members = valid;
    cn->n_eff = n2;
    cn->r_eff = r2;
    cn->w_eff = w2;
    if (member && valid >= 2 && !cn->versioned) {
        /* From now on keys are versioned objects, also if the cluster
         * shrinks back to this node: remember it across restarts. */
        cn->versioned = true;
        if (write_file_atomic(cn->dir, VERSIONED_FILE, "1\n", 2) != RK_OK) {
            rk_log(RK_LOG_ERROR, "cluster_persist_failed", "file=%s",
                   VERSIONED_FILE);
        }
    }
    cn->multi = member && (valid >= 2 || cn->versioned);
    struct peer_bytes st = membership_state_bytes(cn->mem);
    cn->state_hash = st.len ? XXH3_64bits(st.ptr, st.len) : 0;
}

static struct peer_seen *seen_find(struct cnode *cn,
                                   const char *id,
                                   size_t len,
                                   bool create)
{
    for (size_t i = 0; i < cn->n_seen; i++) {
        if (strlen(cn->seen[i].id) == len &&
            memcmp(cn->seen[i].id, id, len) == 0) {
            return &cn->seen[i];
        }
    }
    if (!create || len > CL_ID_MAX) {
        return NULL;
    }
    if (cn->n_seen == cn->cap_seen) {
        size_t cap = cn->cap_seen ? cn->cap_seen * 2 : 8;
        struct peer_seen *p = rk_realloc(cn->seen, cap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        cn->seen = p;
        cn->cap_seen = cap;
    }
    struct peer_seen *ps = &cn->seen[cn->n_seen++];
    memset(ps, 0, sizeof(*ps));
    memcpy(ps->id, id, len);
    ps->id[len] = '\0';
    return ps;
}

static struct peer_gone *gone_find(struct cnode *cn, const char *id, size_t len)
{
    for (size_t i = 0; i < cn->n_gone; i++) {
        if (strlen(cn->gone[i].id) == len &&
            memcmp(cn->gone[i].id, id, len) == 0) {
            return &cn->gone[i];
        }
    }
    return NULL;
}

/* Whether the peer is routed to: not DOWN in this node's detector and
 * not known to have lost its connection. */
static bool peer_is_up(struct cnode *cn, const char *id)
{
    if (gone_find(cn, id, strlen(id)) != NULL) {
        return false;
    }
    enum swim_status st;
    if (!swim_member_status(cn->swim, id, &st, NULL)) {
        return true;
    }
    return st != SWIM_DOWN;
}

static bool is_up_or_self(struct cnode *cn, const char *id)
{
    return strcmp(id, cn->node_id) == 0 || peer_is_up(cn, id);
}

static bool route_is_up(void *data, const char *id)
{
    return peer_is_up(data, id);
}

static struct route_view route_view_of(struct cnode *cn)
{
    return (struct route_view){
        .ring = membership_ring(cn->mem),
        .self = cn->node_id,
        .sloppy = cn->srv->cfg->sloppy_quorum,
        .is_up = route_is_up,
        .data = cn,
    };
}

/* Where a request for a key goes: cluster/route.h. */
static void build_targets_n(struct cnode *cn,
                            const void *key,
                            size_t klen,
                            uint32_t n,
                            struct route_targets *t)
{
    struct route_view v = route_view_of(cn);
    route_targets(&v, key, klen, n, t);
}

static void build_targets(struct cnode *cn,
                          const void *key,
                          size_t klen,
                          struct route_targets *t)
{
    build_targets_n(cn, key, klen, cn->n_eff, t);
}

/* The request's N, R, W: cluster/route.h route_request over the client's
 * per-request overrides (http.c's query parameters). */
static struct route_quorum op_quorum(const struct cnode *cn,
                                     const struct cop *op)
{
    struct route_quorum e = {cn->n_eff, cn->r_eff, cn->w_eff};
    struct route_quorum o = {op->c->ropts.n, op->c->ropts.r, op->c->ropts.w};
    return route_request(e, o);
}

static uint32_t op_n(const struct cnode *cn, const struct cop *op)
{
    return op_quorum(cn, op).n;
}

static uint32_t op_r(const struct cnode *cn, const struct cop *op)
{
    return op_quorum(cn, op).r;
}

static uint32_t op_w(const struct cnode *cn, const struct cop *op)
{
    return op_quorum(cn, op).w;
}

static const char *seen_as(struct cnode *cn, const char *id)
{
    if (strcmp(id, cn->node_id) == 0) {
        return "self";
    }
    enum swim_status st;
    if (!swim_member_status(cn->swim, id, &st, NULL)) {
        return "-";
    }
    return swim_status_name(st);
}

/* ---- cluster machine actions ------------------------------------------ */

static void op_finish(struct cnode *cn, struct cop *op);
static struct cop *op_new(struct client *c,
                          const struct command *cmd,
                          size_t argc,
                          const struct resp_arg *argv);
static void op_free(struct cop *op);
static void unlink_op(struct cnode *cn, struct cop *op);
static void drain_coord(struct cnode *cn);
static void resume_forget(struct cnode *cn, struct client *c);
static void hint_store(struct cnode *cn,
                       const struct peer_kv_put *put,
                       struct peer_msg *rep);
static void hint_update(struct cnode *cn,
                        const struct peer_kv_update *up,
                        struct peer_msg *rep);
static bool is_hinted(struct cnode *cn, struct peer_bytes hint_for);
static void process_ready(struct cnode *cn);

static void send_to(struct cnode *cn,
                    const char *node,
                    const char *host,
                    uint16_t port,
                    const struct peer_msg *msg)
{
    const char *id = node && node[0] ? node : NULL;
    const char *h = host && host[0] ? host : NULL;
    uint16_t p = h ? port : 0;
    struct membership_member mm;
    if (id && !h && membership_member_find(cn->mem, id, &mm)) {
        h = mm.host;
        p = mm.peer_port;
    }
    int rc = peer_transport_send(cn->pt, id, h, p, msg);
    if (rc == RK_OK && msg->type == PEER_GOSSIP) {
        cn->gossip_out++;
    }
    if (rc != RK_OK) {
        rk_log(RK_LOG_DEBUG, "peer_send_failed", "node=%s type=%d error=%s",
               id ? id : "-", (int)msg->type, rk_errname(rc));
    }
}

/*
 * Pushes this node's state to every valid member (at most 16, the rest
 * hear it from random gossip).  Each member that adopts it broadcasts in
 * turn, so after a change every node hears the new state from every other
 * within about one round trip, and `agreement` (which needs each peer's
 * own report) settles in well under a second instead of waiting for
 * random gossip rounds to visit every pair.
 */
static void broadcast_state(struct cnode *cn)
{
    struct peer_bytes st = membership_state_bytes(cn->mem);
    if (st.len == 0 || membership_phase(cn->mem) != MEMBERSHIP_MEMBER) {
        return;
    }
    struct peer_msg g = {.type = PEER_GOSSIP};
    g.gossip.state = st;
    g.gossip.state_version = membership_version(cn->mem);
    g.gossip.from = (struct peer_bytes){cn->node_id, strlen(cn->node_id)};
    size_t m = membership_member_count(cn->mem), sent = 0;
    for (size_t i = 0; i < m && sent < 16; i++) {
        struct membership_member mm;
        membership_member_get(cn->mem, i, &mm);
        if (mm.status != MEMBERSHIP_VALID ||
            strcmp(mm.node_id, cn->node_id) == 0) {
            continue;
        }
        if (peer_transport_send(cn->pt, mm.node_id, mm.host, mm.peer_port,
                                &g) == RK_OK) {
            sent++;
        }
    }
}

static void run_cl_actions(struct cnode *cn)
{
    struct server *s = cn->srv;
    for (size_t i = 0; i < cn->acts.len; i++) {
        struct cl_action *a = &cn->acts.items[i];
        switch (a->type) {
            case CL_ACT_SEND:
                send_to(cn, a->node, a->host, a->peer_port, &a->msg);
                break;
            case CL_ACT_STATE_CHANGED:
                recompute(cn);
                broadcast_state(cn);
                rk_log(RK_LOG_INFO, "cluster_state",
                       "version=%" PRIu64 " members=%zu n=%" PRIu32
                       " r=%" PRIu32 " w=%" PRIu32,
                       a->version, cn->valid_members, cn->n_eff, cn->r_eff,
                       cn->w_eff);
                break;
            case CL_ACT_PERSIST:
                if (write_file_atomic(cn->dir, STATE_FILE, a->bytes.ptr,
                                      a->bytes.len) != RK_OK) {
                    cn->persist_errors++;
                    rk_log(RK_LOG_ERROR, "cluster_persist_failed",
                           "dir=%s errno=%d", cn->dir, errno);
                }
                break;
            case CL_ACT_NODE_UP:
                rk_log(RK_LOG_INFO, "node_up", "peer=%s", a->node);
                break;
            case CL_ACT_NODE_DOWN:
                rk_log(RK_LOG_WARN, "node_down", "peer=%s", a->node);
                break;
            case CL_ACT_JOIN_DONE:
                recompute(cn);
                rk_log(RK_LOG_INFO, "cluster_joined",
                       "members=%zu version=%" PRIu64, cn->valid_members,
                       membership_version(cn->mem));
                if (cn->join_op) {
                    struct cop *op = cn->join_op;
                    cn->join_op = NULL;
                    rk_buf_append(&op->reply, "+OK\r\n", 5);
                    op->phase = PH_DONE;
                    op->queued = true;
                    op->rnext = cn->ready;
                    cn->ready = op;
                }
                break;
            case CL_ACT_JOIN_FAILED:
                rk_log(RK_LOG_WARN, "cluster_join_failed", "reason=\"%s\"",
                       a->text);
                if (cn->join_op) {
                    struct cop *op = cn->join_op;
                    cn->join_op = NULL;
                    char line[CL_TEXT_MAX + 32];
                    int n = snprintf(line, sizeof(line),
                                     "-ERR join failed: %s\r\n", a->text);
                    rk_buf_append(&op->reply, line, (size_t)n);
                    op->phase = PH_DONE;
                    op->queued = true;
                    op->rnext = cn->ready;
                    cn->ready = op;
                }
                break;
            case CL_ACT_LOG:
                rk_log(a->status >= 0 && a->status <= RK_LOG_ERROR
                           ? (enum rk_log_level)a->status
                           : RK_LOG_INFO,
                       "cluster", "msg=\"%s\"", a->text);
                break;
        }
    }
    cl_actions_clear(&cn->acts);
    (void)s;
}

/* ---- coordinator drain ------------------------------------------------ */

static struct cop_key *op_key_by_req(struct cop *op, uint64_t req_id)
{
    for (size_t i = 0; i < op->nkeys; i++) {
        if (op->keys[i].state == 1 && op->keys[i].req_id == req_id) {
            return &op->keys[i];
        }
    }
    return NULL;
}

static void op_queue(struct cnode *cn, struct cop *op)
{
    if (!op->queued) {
        op->queued = true;
        op->rnext = cn->ready;
        cn->ready = op;
    }
}

/* Keeps a read answer: the merged object, its clock as the write
 * context, and its live winner for the handler. */
static int take_read(struct cop_key *k,
                     const struct coord_reply *r,
                     const struct replica_cfg *cfg)
{
    rk_buf_clear(&k->obj);
    rk_buf_clear(&k->ctx);
    k->read = true;
    k->live = false;
    if (!r->found) {
        return RK_OK;
    }
    if (rk_buf_append(&k->obj, r->object.ptr, r->object.len) != RK_OK) {
        return RK_ENOMEM;
    }
    struct dvv_obj o;
    dvv_init(&o);
    int rc = dvv_decode(&o, r->object.ptr, r->object.len);
    size_t dropped = 0;
    if (rc == RK_OK) {
        /* the client sees what the replicas will store: under lww the
         * newest sibling only, and at most max_siblings */
        dropped = cfg->lww ? dvv_lww(&o) : 0;
        size_t over = 0;
        dvv_bound(&o, cfg->max_sibs, 0, &over, NULL);
        dropped += over;
    }
    if (rc == RK_OK && dropped > 0) {
        rk_buf_clear(&k->obj);
        rc = dvv_encode(&o, &k->obj);
    }
    size_t w = 0;
    if (rc == RK_OK && replica_winner(&o, server_now_ms(), &w) == RK_OK) {
        k->live = true;
        k->ts = o.sibs[w].ts;
        k->exp = o.sibs[w].expire_at_ms;
        k->ctype = o.sibs[w].ctype;
        rk_buf_clear(&k->val);
        rc = rk_buf_append(&k->val, dvv_value(&o, w), o.sibs[w].vlen);
    } else if (rc == RK_OK) {
        k->ts = dvv_max_ts(&o); /* deleted or expired: remember its clock */
    }
    if (rc == RK_OK) {
        o.n_sibs = 0; /* the clock alone is the context */
        rc = dvv_encode(&o, &k->ctx);
    }
    dvv_fini(&o);
    return rc;
}

static void hint_reply(struct cnode *cn, const struct coord_reply *r);
static void gc_reply(struct cnode *cn, const struct coord_reply *r);

static void on_coord_reply(struct cnode *cn, const struct coord_reply *r)
{
    if ((r->cookie & 3) == 1) {
        hint_reply(cn, r); /* a hint delivery, not a client command */
        return;
    }
    if ((r->cookie & 3) == 2) {
        gc_reply(cn, r); /* a tombstone reaping check */
        return;
    }
    struct cop *op = (struct cop *)(uintptr_t)r->cookie;
    struct cop_key *k = op_key_by_req(op, r->req_id);
    if (k == NULL) {
        return;
    }
    k->state = 2;
    op->inflight--;
    op->done++;
    int rc = r->status;
    if (rc == RK_OK || rc == RK_ENOTFOUND) {
        if (r->op == COORD_OP_GET) {
            rc = take_read(k, r, &cn->rcfg);
        } else if (r->op == COORD_OP_UPDATE) {
            rk_buf_clear(&k->obj);
            rc = r->found ? rk_buf_append(&k->obj, r->object.ptr, r->object.len)
                          : RK_EPROTO;
        } else {
            rc = RK_OK;
        }
    }
    if (rc != RK_OK && rc != RK_ENOTFOUND) {
        if (rc == RK_ENOQUORUM) {
            cn->noquorum++;
        }
        if (!op->failed) {
            op->failed = true;
            if (rc == RK_ENOQUORUM && r->op == COORD_OP_UPDATE) {
                /* the coordinating replica did not answer: no replica
                 * stored the write, of the W it needs */
                snprintf(op->err, sizeof(op->err),
                         "NOQUORUM reached 0 of %" PRIu32
                         " (the coordinating replica did not answer)",
                         op_w(cn, op));
            } else if (rc == RK_ENOQUORUM) {
                snprintf(op->err, sizeof(op->err), "%s", r->message);
            } else if (rc == RK_ENOMEM) {
                snprintf(op->err, sizeof(op->err), "ERR out of memory");
            } else {
                snprintf(op->err, sizeof(op->err),
                         "ERR cluster request failed: %s", rk_strerror(rc));
            }
        }
    }
    op_queue(cn, op);
}

static void add_fail(struct cnode *cn,
                     uint64_t req_id,
                     const char *node,
                     size_t len,
                     int status)
{
    if (cn->n_fails >= MAX_FAILS || len > CL_ID_MAX) {
        return; /* the request's deadline answers it */
    }
    struct send_fail *f = &cn->fails[cn->n_fails++];
    f->req_id = req_id;
    f->status = status;
    memcpy(f->node, node, len);
    f->node[len] = '\0';
}

static void queue_ack(struct cnode *cn,
                      uint64_t seq,
                      bool local,
                      uint64_t req_id,
                      int32_t status,
                      const char *peer,
                      size_t plen)
{
    if (cn->n_acks == cn->cap_acks) {
        if (cn->head_acks > 0) {
            memmove(cn->acks, cn->acks + cn->head_acks,
                    (cn->n_acks - cn->head_acks) * sizeof(*cn->acks));
            cn->n_acks -= cn->head_acks;
            cn->head_acks = 0;
        }
        if (cn->n_acks == cn->cap_acks) {
            size_t cap = cn->cap_acks ? cn->cap_acks * 2 : 64;
            struct pending_ack *p = rk_realloc(cn->acks, cap * sizeof(*p));
            if (p == NULL) {
                return; /* no ack: the coordinator times out */
            }
            cn->acks = p;
            cn->cap_acks = cap;
        }
    }
    struct pending_ack *a = &cn->acks[cn->n_acks++];
    a->seq = seq;
    a->local = local;
    a->req_id = req_id;
    a->status = status;
    size_t l = plen < CL_ID_MAX ? plen : CL_ID_MAX;
    memcpy(a->peer, peer ? peer : "", l);
    a->peer[l] = '\0';
}

static bool local_ack_pending(struct cnode *cn, uint64_t req_id)
{
    for (size_t i = cn->head_acks; i < cn->n_acks; i++) {
        if (cn->acks[i].local && cn->acks[i].req_id == req_id) {
            return true;
        }
    }
    return false;
}

static bool hold_fail(struct cnode *cn, const struct send_fail *f)
{
    if (cn->n_held == cn->cap_held) {
        size_t cap = cn->cap_held ? cn->cap_held * 2 : 16;
        struct send_fail *p = rk_realloc(cn->held, cap * sizeof(*p));
        if (p == NULL) {
            return false;
        }
        cn->held = p;
        cn->cap_held = cap;
    }
    cn->held[cn->n_held++] = *f;
    return true;
}

/* Feeds the failures held for req_id (its local write is now durable). */
static void release_held(struct cnode *cn, uint64_t req_id)
{
    size_t w = 0;
    for (size_t i = 0; i < cn->n_held; i++) {
        if (cn->held[i].req_id == req_id && cn->n_fails < MAX_FAILS) {
            cn->fails[cn->n_fails++] = cn->held[i];
        } else {
            cn->held[w++] = cn->held[i];
        }
    }
    cn->n_held = w;
}

static void note_replica_write(struct cnode *cn, uint64_t seq)
{
    if (seq > cn->last_seq) {
        cn->last_seq = seq;
    }
}

static bool must_wait_durable(struct cnode *cn, uint64_t seq)
{
    struct server *s = cn->srv;
    return s->cfg->sync_mode == ENGINE_SYNC_ALWAYS && seq != 0 &&
           engine_durable_seq(s->engine) < seq;
}

static void drain_coord(struct cnode *cn)
{
    if (cn->draining) {
        return;
    }
    cn->draining = true;
    struct server *s = cn->srv;
    cn->rcfg.now_ms = loop_now_ms(cn); /* for the clock-skew check */
    for (;;) {
        const struct coord_action *acts;
        size_t n = coord_actions(cn->coord, &acts);
        const struct coord_action *local = NULL;
        for (size_t i = 0; i < n; i++) {
            const struct coord_action *a = &acts[i];
            switch (a->type) {
                case COORD_SEND: {
                    char id[CL_ID_MAX + 1];
                    size_t l =
                        a->node_len < CL_ID_MAX ? a->node_len : CL_ID_MAX;
                    memcpy(id, a->node, l);
                    id[l] = '\0';
                    uint64_t req = a->msg.type == PEER_KV_PUT
                                       ? a->msg.kv_put.req_id
                                   : a->msg.type == PEER_KV_UPDATE
                                       ? a->msg.kv_update.req_id
                                       : a->msg.kv_get.req_id;
                    if (req == 0 && !peer_is_up(cn, id)) {
                        break; /* a read repair for a down peer */
                    }
                    if (!peer_is_up(cn, id)) {
                        add_fail(cn, req, a->node, a->node_len, RK_ECLOSED);
                        break;
                    }
                    struct membership_member mm;
                    const char *h = NULL;
                    uint16_t p = 0;
                    if (membership_member_find(cn->mem, id, &mm)) {
                        h = mm.host;
                        p = mm.peer_port;
                    }
                    int rc = peer_transport_send(cn->pt, id, h, p, &a->msg);
                    if (rc != RK_OK) {
                        add_fail(cn, req, a->node, a->node_len, rc);
                    }
                    break;
                }
                case COORD_LOCAL_PUT:
                    if (a->msg.kv_put.req_id == 0) {
                        /* a read repair of this node's copy */
                        struct peer_msg rep;
                        uint64_t seq = 0;
                        if (is_hinted(cn, a->msg.kv_put.hint_for)) {
                            hint_store(cn, &a->msg.kv_put, &rep);
                            break;
                        }
                        replica_handle_put(s->engine, &cn->rcfg, &a->msg.kv_put,
                                           &rep, NULL, &seq);
                        note_replica_write(cn, seq);
                        break;
                    }
                    local = a;
                    break;
                case COORD_LOCAL_GET:
                case COORD_LOCAL_UPDATE:
                    local = a;
                    break;
                case COORD_REPLY:
                    on_coord_reply(cn, &a->reply);
                    break;
            }
        }
        uint64_t now = now_mono();
        if (local && local->type == COORD_LOCAL_GET) {
            struct peer_msg rep;
            replica_handle_get(s->engine, &local->msg.kv_get, &cn->valbuf,
                               &rep);
            coord_on_local_result(cn->coord, &rep, now);
            continue;
        }
        if (local && local->type == COORD_LOCAL_UPDATE) {
            struct peer_msg rep;
            uint64_t seq = 0;
            if (is_hinted(cn, local->msg.kv_update.hint_for)) {
                hint_update(cn, &local->msg.kv_update, &rep);
            } else {
                replica_handle_update(s->engine, &cn->rcfg,
                                      &local->msg.kv_update, &cn->valbuf, &rep,
                                      &seq);
                note_replica_write(cn, seq);
            }
            coord_on_local_result(cn->coord, &rep, now);
            continue;
        }
        if (local && local->type == COORD_LOCAL_PUT &&
            is_hinted(cn, local->msg.kv_put.hint_for)) {
            struct peer_msg rep;
            hint_store(cn, &local->msg.kv_put, &rep);
            coord_on_local_result(cn->coord, &rep, now);
            continue;
        }
        if (local && local->type == COORD_LOCAL_PUT) {
            struct peer_msg rep;
            uint64_t seq = 0;
            bool changed = false;
            replica_handle_put(s->engine, &cn->rcfg, &local->msg.kv_put, &rep,
                               &changed, &seq);
            note_replica_write(cn, seq);
            uint64_t wait = changed ? seq : cn->last_seq;
            if (rep.kv_put_reply.status == RK_OK &&
                must_wait_durable(cn, wait)) {
                queue_ack(cn, wait, true, rep.kv_put_reply.req_id,
                          rep.kv_put_reply.status, NULL, 0);
            } else {
                coord_on_local_result(cn->coord, &rep, now);
                continue;
            }
        }
        if (cn->n_fails > 0) {
            struct send_fail f = cn->fails[--cn->n_fails];
            if (local_ack_pending(cn, f.req_id) && hold_fail(cn, &f)) {
                continue;
            }
            coord_on_failure(cn->coord, f.req_id, f.node, strlen(f.node),
                             f.status, now);
            continue;
        }
        break;
    }
    cn->draining = false;
}

/* ---- hinted handoff -------------------------------------------------------
 */

/* Hint record key: u8 owner length, owner id, the key. */
static int hint_key(const char *owner,
                    size_t olen,
                    const void *key,
                    size_t klen,
                    struct rk_buf *out)
{
    rk_buf_clear(out);
    unsigned char l = (unsigned char)olen;
    if (olen == 0 || olen > CL_ID_MAX || rk_buf_append(out, &l, 1) != RK_OK ||
        rk_buf_append(out, owner, olen) != RK_OK ||
        rk_buf_append(out, key, klen) != RK_OK) {
        return RK_ENOMEM;
    }
    return RK_OK;
}

/* Splits a hint record key; false when it is malformed. */
static bool hint_split(const char *hk,
                       size_t len,
                       char owner[CL_ID_MAX + 1],
                       const char **key,
                       size_t *klen)
{
    size_t ol = len ? (unsigned char)hk[0] : 0;
    if (ol == 0 || ol > CL_ID_MAX || len < 2 + ol) {
        return false;
    }
    memcpy(owner, hk + 1, ol);
    owner[ol] = '\0';
    *key = hk + 1 + ol;
    *klen = len - 1 - ol;
    return true;
}

/* Under sync=always a hint counts toward W only once durable: the hint
 * engine is synced at once (hints exist only while a node is down). */
static int hint_make_durable(struct cnode *cn, uint64_t seq)
{
    if (seq == 0 || cn->srv->cfg->sync_mode != ENGINE_SYNC_ALWAYS) {
        return RK_OK;
    }
    return engine_sync(cn->hints);
}

/*
 * Merges an object into the hint for (owner, key).  Fills *rep as a
 * KV_PUT_REPLY for req_id.  The hint store is an engine of its own, so the
 * data of a partition this node does not own never mixes with its keys.
 */
static void hint_store(struct cnode *cn,
                       const struct peer_kv_put *put,
                       struct peer_msg *rep)
{
    struct rk_buf hk;
    rk_buf_init(&hk);
    memset(rep, 0, sizeof(*rep));
    rep->type = PEER_KV_PUT_REPLY;
    rep->kv_put_reply.req_id = put->req_id;
    int rc = put->key.len == 0 ? RK_EINVAL
                               : hint_key(put->hint_for.ptr, put->hint_for.len,
                                          put->key.ptr, put->key.len, &hk);
    if (rc == RK_OK) {
        struct peer_kv_put hp = *put;
        hp.key.ptr = hk.base;
        hp.key.len = hk.len;
        hp.hint_for.len = 0;
        uint64_t seq = 0;
        bool changed = false;
        replica_handle_put(cn->hints, &cn->rcfg, &hp, rep, &changed, &seq);
        rc = rep->kv_put_reply.status;
        if (rc == RK_OK && changed) {
            cn->hints_stored++;
            rc = hint_make_durable(cn, seq);
        }
    }
    rep->kv_put_reply.status = rc;
    rk_buf_fini(&hk);
}

/* KV_UPDATE at a fallback (PEER_KV_FALLBACK): applied to its hint for the
 * owner, so the object it returns is what it keeps for that owner. */
static void hint_update(struct cnode *cn,
                        const struct peer_kv_update *up,
                        struct peer_msg *rep)
{
    struct rk_buf hk;
    rk_buf_init(&hk);
    int rc = up->key.len == 0 || up->hint_for.len == 0
                 ? RK_EINVAL
                 : hint_key(up->hint_for.ptr, up->hint_for.len, up->key.ptr,
                            up->key.len, &hk);
    if (rc != RK_OK) {
        memset(rep, 0, sizeof(*rep));
        rep->type = PEER_KV_UPDATE_REPLY;
        rep->kv_update_reply.req_id = up->req_id;
        rep->kv_update_reply.status = rc;
        rk_buf_fini(&hk);
        return;
    }
    struct peer_kv_update hu = *up;
    hu.key.ptr = hk.base;
    hu.key.len = hk.len;
    uint64_t seq = 0;
    replica_handle_update(cn->hints, &cn->rcfg, &hu, &cn->valbuf, rep, &seq);
    if (rep->kv_update_reply.status == RK_OK) {
        cn->hints_stored++;
        int sync_rc = hint_make_durable(cn, seq);
        if (sync_rc != RK_OK) {
            /* not durable: never counted toward W */
            rep->kv_update_reply.status = sync_rc;
            rep->kv_update_reply.object.ptr = NULL;
            rep->kv_update_reply.object.len = 0;
        }
    }
    rk_buf_fini(&hk);
}

/* Whether a KV_PUT / KV_UPDATE names an owner other than this node. */
static bool is_hinted(struct cnode *cn, struct peer_bytes hint_for)
{
    return hint_for.len != 0 &&
           !(hint_for.len == strlen(cn->node_id) &&
             memcmp(hint_for.ptr, cn->node_id, hint_for.len) == 0);
}

static bool hint_in_flight(struct cnode *cn, const void *hk, size_t len)
{
    for (size_t i = 0; i < HD_SLOTS; i++) {
        if (cn->hd[i].req_id && cn->hd[i].hkey.len == len &&
            memcmp(cn->hd[i].hkey.base, hk, len) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * One background round over an engine (hint delivery, tombstone reaping):
 * engine_scan visits about `count` keys from *cursor (the callback must not
 * change the engine), those `want` accepts are copied out, then `fn` runs
 * for each, free to write.
 */
struct key_batch
{
    struct rk_buf keys; /* u32 length + bytes, repeated */
    size_t n;
    bool (*want)(const struct engine_meta *m, uint64_t arg);
    uint64_t arg;
};

static bool batch_collect(void *data,
                          const void *key,
                          size_t klen,
                          const struct engine_meta *meta)
{
    struct key_batch *b = data;
    uint32_t l = (uint32_t)klen;
    if ((b->want == NULL || b->want(meta, b->arg)) &&
        rk_buf_append(&b->keys, &l, sizeof(l)) == RK_OK &&
        rk_buf_append(&b->keys, key, klen) == RK_OK) {
        b->n++;
    }
    return true;
}

static void scan_round(struct cnode *cn,
                       struct engine *e,
                       uint64_t *cursor,
                       size_t count,
                       bool (*want)(const struct engine_meta *, uint64_t),
                       uint64_t arg,
                       void (*fn)(struct cnode *, const char *, size_t))
{
    struct key_batch b = {.n = 0, .want = want, .arg = arg};
    rk_buf_init(&b.keys);
    uint64_t next = 0;
    (void)engine_scan(e, *cursor, count, batch_collect, &b, &next);
    *cursor = next;
    size_t off = 0;
    for (size_t i = 0; i < b.n; i++) {
        uint32_t l;
        memcpy(&l, b.keys.base + off, sizeof(l));
        off += sizeof(l);
        fn(cn, b.keys.base + off, l);
        off += l;
    }
    rk_buf_fini(&b.keys);
}

/* A hint whose data now belongs to this node: merged into the data, then
 * dropped. */
static void hint_deliver_local(struct cnode *cn,
                               const char *hk,
                               size_t len,
                               const char *key,
                               size_t klen)
{
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf enc;
    rk_buf_init(&enc);
    if (replica_read(cn->hints, hk, len, &o) == RK_OK &&
        dvv_encode(&o, &enc) == RK_OK) {
        struct peer_kv_put p = {
            .key = {key, klen},
            .object = {enc.base, enc.len},
        };
        struct peer_msg rep;
        uint64_t seq = 0;
        replica_handle_put(cn->srv->engine, &cn->rcfg, &p, &rep, NULL, &seq);
        note_replica_write(cn, seq);
        if (rep.kv_put_reply.status == RK_OK &&
            (seq == 0 || cn->srv->cfg->sync_mode != ENGINE_SYNC_ALWAYS ||
             engine_sync(cn->srv->engine) == RK_OK) &&
            engine_delete(cn->hints, hk, len, 0, &seq) == RK_OK) {
            cn->hints_delivered++;
        }
    }
    rk_buf_fini(&enc);
    dvv_fini(&o);
}

/* Sends one hint to its owner (a KV_PUT through the coordinator, w=1). */
static void hint_send(struct cnode *cn, const char *hk, size_t len)
{
    char owner[CL_ID_MAX + 1];
    const char *key;
    size_t klen;
    if (!hint_split(hk, len, owner, &key, &klen) ||
        hint_in_flight(cn, hk, len)) {
        return;
    }
    /* The owner left the cluster (or is this node): the hint goes to the
     * key's current first primary instead, so its data is not stranded. */
    struct membership_member mm;
    const char *dest = owner;
    if (strcmp(owner, cn->node_id) == 0 ||
        !membership_member_find(cn->mem, owner, &mm) ||
        mm.status != MEMBERSHIP_VALID) {
        struct route_targets t;
        build_targets(cn, key, klen, &t);
        dest = NULL;
        for (size_t i = 0; i < t.n && dest == NULL; i++) {
            if (!t.hint_for[i] && is_up_or_self(cn, t.id[i])) {
                dest = t.id[i];
            }
        }
        if (dest == NULL) {
            return;
        }
        if (strcmp(dest, cn->node_id) == 0) {
            hint_deliver_local(cn, hk, len, key, klen);
            return;
        }
    }
    if (!peer_is_up(cn, dest)) {
        return;
    }
    size_t slot = HD_SLOTS;
    for (size_t i = 0; i < HD_SLOTS && slot == HD_SLOTS; i++) {
        if (cn->hd[i].req_id == 0) {
            slot = i;
        }
    }
    if (slot == HD_SLOTS) {
        return;
    }
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf enc;
    rk_buf_init(&enc);
    if (replica_read(cn->hints, hk, len, &o) == RK_OK &&
        dvv_encode(&o, &enc) == RK_OK) {
        const char *targets[1] = {dest};
        struct coord_put_req p = {
            .key = key,
            .klen = klen,
            .object = enc.base,
            .olen = enc.len,
            .targets = targets,
            .n_targets = 1,
            .acked = -1,
            .w = 1,
            .timeout_ms = cn->srv->cfg->request_timeout_ms,
            .cookie = ((uint64_t)slot << 2) | 1,
        };
        uint64_t rid = 0;
        struct hint_delivery *d = &cn->hd[slot];
        if (rk_buf_append((rk_buf_clear(&d->hkey), &d->hkey), hk, len) ==
                RK_OK &&
            coord_start_put(cn->coord, &p, now_mono(), &rid) == RK_OK) {
            d->req_id = rid;
            d->hash = XXH3_64bits(enc.base, enc.len);
            drain_coord(cn);
        }
    }
    rk_buf_fini(&enc);
    dvv_fini(&o);
}

/* One delivery round: looks at the next HINT_SCAN_BATCH hints and sends
 * those whose owner is up. */
static void hints_deliver(struct cnode *cn, uint64_t now)
{
    if (cn->hints == NULL || now < cn->hint_scan_at) {
        return;
    }
    cn->hint_scan_at = now + HINT_ROUND_MS;
    (void)engine_tick(cn->hints); /* merges of the hint store */
    struct engine_stats st;
    engine_stats(cn->hints, &st);
    if (st.live_keys == 0) {
        return;
    }
    scan_round(cn, cn->hints, &cn->hint_cursor, HINT_SCAN_BATCH, NULL, 0,
               hint_send);
}

/* The XXH3 of the canonical encoding of key's object in e (what a hint
 * delivery or a reaping check sent or saw, compared again on the answer).
 * RK_OK, or replica_read's / dvv_encode's error. */
static int object_hash(struct engine *e,
                       const void *key,
                       size_t klen,
                       uint64_t *hash)
{
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf enc;
    rk_buf_init(&enc);
    int rc = replica_read(e, key, klen, &o);
    if (rc == RK_OK) {
        rc = dvv_encode(&o, &enc);
    }
    if (rc == RK_OK) {
        *hash = XXH3_64bits(enc.base, enc.len);
    }
    rk_buf_fini(&enc);
    dvv_fini(&o);
    return rc;
}

/* The owner answered a delivery: the hint goes if it did not grow since. */
static void hint_reply(struct cnode *cn, const struct coord_reply *r)
{
    size_t slot = (size_t)(r->cookie >> 2);
    if (slot >= HD_SLOTS || cn->hd[slot].req_id != r->req_id) {
        return;
    }
    struct hint_delivery *d = &cn->hd[slot];
    d->req_id = 0;
    if (r->status != RK_OK) {
        return; /* kept: the next round retries */
    }
    uint64_t h = 0;
    if (object_hash(cn->hints, d->hkey.base, d->hkey.len, &h) == RK_OK) {
        if (h == d->hash) {
            uint64_t seq;
            if (engine_delete(cn->hints, d->hkey.base, d->hkey.len, 0, &seq) ==
                RK_OK) {
                cn->hints_delivered++;
            }
        } else {
            cn->hints_superseded++; /* grew meanwhile: send it again */
        }
    }
}

static uint64_t hints_pending(struct cnode *cn)
{
    if (cn->hints == NULL) {
        return 0;
    }
    struct engine_stats st;
    engine_stats(cn->hints, &st);
    return st.live_keys;
}

/* Coordinator-side hints: an owner that is down and has no fallback to
 * stand in for it gets the object from this node's hint store later. */
static void hint_for_down(struct cnode *cn,
                          const char *owner,
                          const void *key,
                          size_t klen,
                          const struct rk_buf *obj)
{
    struct peer_kv_put p = {
        .req_id = 0,
        .key = {key, klen},
        .object = {obj->base, obj->len},
        .hint_for = {owner, strlen(owner)},
    };
    struct peer_msg rep;
    hint_store(cn, &p, &rep);
    if (rep.kv_put_reply.status != RK_OK) {
        rk_log(RK_LOG_WARN, "hint_store_failed", "owner=%s error=%s", owner,
               rk_errname(rep.kv_put_reply.status));
    }
}

/* ---- tombstone reaping ------------------------------------------------------
 */

/*
 * A deleted key's tombstone is dropped only after tombstone_gc_grace and
 * only when every one of its N primaries is up and answers a read with
 * either nothing or exactly this tombstone object: then no replica holds
 * an older value that could come back (Cassandra's gc_grace; Riak's
 * delete_mode with a read of all N before the reap).  Each replica reaps
 * its own copy.  Hints held on other nodes for longer than the grace can
 * still bring an old value back: keep the grace above the longest outage
 * (docs/consistency.md).
 */
/* Candidates: objects dead (deleted or expired) since before cutoff. */
static bool gc_want(const struct engine_meta *meta, uint64_t cutoff_ms)
{
    return replica_meta_is_object(meta) &&
           (meta->timestamp & (REPLICA_META_DELETED | REPLICA_META_EXPIRING)) &&
           hlc_physical_ms(meta->timestamp & REPLICA_META_TS_MASK) <= cutoff_ms;
}

static void gc_check(struct cnode *cn, const char *key, size_t klen)
{
    size_t slot = GC_SLOTS;
    for (size_t i = 0; i < GC_SLOTS; i++) {
        if (cn->gc[i].req_id == 0 && slot == GC_SLOTS) {
            slot = i;
        } else if (cn->gc[i].req_id && cn->gc[i].hkey.len == klen &&
                   memcmp(cn->gc[i].hkey.base, key, klen) == 0) {
            return;
        }
    }
    struct route_targets t;
    build_targets(cn, key, klen, &t);
    for (size_t i = 0; i < t.n; i++) {
        if (t.hint_for[i] || !is_up_or_self(cn, t.id[i])) {
            return; /* a primary is down: wait */
        }
    }
    if (slot == GC_SLOTS || t.n == 0) {
        return;
    }
    struct dvv_obj o;
    dvv_init(&o);
    struct rk_buf enc;
    rk_buf_init(&enc);
    struct hint_delivery *g = &cn->gc[slot];
    uint64_t grace_ms = cn->srv->cfg->tombstone_gc_grace_s * 1000;
    uint64_t wall = server_now_ms();
    uint64_t dead = 0;
    if (replica_read(cn->srv->engine, key, klen, &o) == RK_OK) {
        dead = replica_dead_at(&o);
    }
    if (dead != 0 && hlc_physical_ms(dead) + grace_ms <= wall &&
        dvv_encode(&o, &enc) == RK_OK) {
        struct coord_get_req q = {
            .key = key,
            .klen = klen,
            .targets = t.id,
            .n_targets = t.n,
            .r = (uint32_t)t.n,
            .timeout_ms = cn->srv->cfg->request_timeout_ms,
            .cookie = ((uint64_t)slot << 2) | 2,
        };
        uint64_t rid = 0;
        rk_buf_clear(&g->hkey);
        if (rk_buf_append(&g->hkey, key, klen) == RK_OK &&
            coord_start_get(cn->coord, &q, now_mono(), &rid) == RK_OK) {
            g->req_id = rid;
            g->hash = XXH3_64bits(enc.base, enc.len);
            drain_coord(cn);
        }
    }
    rk_buf_fini(&enc);
    dvv_fini(&o);
}

static void gc_round(struct cnode *cn, uint64_t now)
{
    if (now < cn->gc_scan_at || !cn->multi) {
        return;
    }
    uint64_t grace_ms = cn->srv->cfg->tombstone_gc_grace_s * 1000;
    cn->gc_scan_at = now + (grace_ms / 4 < 1000 ? grace_ms / 4 + 50 : 1000);
    uint64_t wall = server_now_ms();
    scan_round(cn, cn->srv->engine, &cn->gc_cursor, GC_SCAN_BATCH, gc_want,
               wall > grace_ms ? wall - grace_ms : 0, gc_check);
}

static void gc_reply(struct cnode *cn, const struct coord_reply *r)
{
    size_t slot = (size_t)(r->cookie >> 2);
    if (slot >= GC_SLOTS || cn->gc[slot].req_id != r->req_id) {
        return;
    }
    struct hint_delivery *g = &cn->gc[slot];
    g->req_id = 0;
    if (r->status != RK_OK || !r->found || !r->uniform ||
        r->successes != r->n_targets ||
        XXH3_64bits(r->object.ptr, r->object.len) != g->hash) {
        return;
    }
    /* still the same tombstone here (nothing written meanwhile)? */
    uint64_t h = 0;
    if (object_hash(cn->srv->engine, g->hkey.base, g->hkey.len, &h) == RK_OK &&
        h == g->hash) {
        uint64_t seq = 0;
        if (engine_delete(cn->srv->engine, g->hkey.base, g->hkey.len, 0,
                          &seq) == RK_OK) {
            note_replica_write(cn, seq);
            cn->tombstones_reaped++;
        }
    }
}

/* ---- peer messages ------------------------------------------------------ */

static void on_peer_message(void *data,
                            const char *node_id,
                            size_t id_len,
                            const struct peer_msg *msg)
{
    struct cnode *cn = data;
    struct server *s = cn->srv;
    uint64_t now = now_mono();
    cn->rcfg.now_ms = loop_now_ms(cn);
    uint64_t ahead_before = cn->rstats.clock_ahead;
    uint64_t t_us = 0;
    struct lat_hist *lat = NULL;
    swim_on_traffic(cn->swim, node_id, id_len, now, &cn->acts);
    run_cl_actions(cn);
    switch (msg->type) {
        case PEER_PING:
        case PEER_ACK:
        case PEER_PING_REQ:
            swim_on_message(cn->swim, msg, now, &cn->acts);
            run_cl_actions(cn);
            break;
        case PEER_GOSSIP: {
            cn->gossip_in++;
            struct peer_seen *ps = seen_find(cn, node_id, id_len, true);
            if (ps) {
                ps->version = msg->gossip.state_version;
                ps->hash = msg->gossip.state.len
                               ? XXH3_64bits(msg->gossip.state.ptr,
                                             msg->gossip.state.len)
                               : 0;
                ps->at_ms = now;
            }
        }
            /* fall through */
        case PEER_JOIN:
        case PEER_JOIN_REPLY: {
            int rc = membership_on_message(cn->mem, msg, now, &cn->acts);
            if (rc != RK_OK) {
                rk_log(RK_LOG_DEBUG, "membership_message",
                       "peer=%.*s type=%d error=%s reason=\"%s\"", (int)id_len,
                       node_id, (int)msg->type, rk_errname(rc),
                       membership_errmsg(cn->mem));
            }
            run_cl_actions(cn);
            break;
        }
        case PEER_KV_PUT: {
            struct peer_msg rep;
            uint64_t seq = 0;
            bool changed = false;
            cn->replica_puts++;
            t_us = server_mono_us();
            lat = &cn->replica_lat[1];
            if (is_hinted(cn, msg->kv_put.hint_for)) {
                hint_store(cn, &msg->kv_put, &rep);
                if (msg->kv_put.req_id != 0) {
                    peer_transport_send(cn->pt, node_id, NULL, 0, &rep);
                }
                break;
            }
            replica_handle_put(s->engine, &cn->rcfg, &msg->kv_put, &rep,
                               &changed, &seq);
            note_replica_write(cn, seq);
            if (msg->kv_put.req_id == 0) {
                break; /* read repair: no answer wanted */
            }
            /* Acknowledge once durable (sync=always); a merge that changed
             * nothing acknowledges what this node already wrote. */
            uint64_t wait = changed ? seq : cn->last_seq;
            if (rep.kv_put_reply.status == RK_OK &&
                must_wait_durable(cn, wait)) {
                queue_ack(cn, wait, false, rep.kv_put_reply.req_id,
                          rep.kv_put_reply.status, node_id, id_len);
            } else {
                peer_transport_send(cn->pt, node_id, NULL, 0, &rep);
            }
            break;
        }
        case PEER_KV_GET: {
            struct peer_msg rep;
            cn->replica_gets++;
            t_us = server_mono_us();
            lat = &cn->replica_lat[0];
            replica_handle_get(s->engine, &msg->kv_get, &cn->valbuf, &rep);
            peer_transport_send(cn->pt, node_id, NULL, 0, &rep);
            break;
        }
        case PEER_KV_UPDATE: {
            /* Answered at once: under sync=always the coordinator counts
             * this replica only through the KV_PUT that follows, which
             * waits for durability. */
            struct peer_msg rep;
            uint64_t seq = 0;
            cn->replica_updates++;
            t_us = server_mono_us();
            lat = &cn->replica_lat[1];
            if (is_hinted(cn, msg->kv_update.hint_for)) {
                hint_update(cn, &msg->kv_update, &rep);
            } else {
                replica_handle_update(s->engine, &cn->rcfg, &msg->kv_update,
                                      &cn->valbuf, &rep, &seq);
                note_replica_write(cn, seq);
            }
            peer_transport_send(cn->pt, node_id, NULL, 0, &rep);
            break;
        }
        case PEER_KV_PUT_REPLY:
        case PEER_KV_GET_REPLY:
        case PEER_KV_UPDATE_REPLY:
        case PEER_ERROR:
            coord_on_reply(cn->coord, node_id, id_len, msg, now);
            drain_coord(cn);
            break;
        default:
            break;
    }
    if (lat) {
        lat_observe(lat, server_mono_us() - t_us);
    }
    if (cn->rstats.clock_ahead != ahead_before &&
        now >= cn->skew_logged_at + 10000) {
        /* rate-limited: at most one line per 10 s */
        cn->skew_logged_at = now;
        rk_log(RK_LOG_WARN, "clock_skew",
               "peer=%.*s ahead_max_ms=%" PRIu64 " bound_ms=%" PRIu64
               " events=%" PRIu64,
               (int)id_len, node_id, cn->rstats.clock_ahead_max_ms,
               cn->rcfg.max_skew_ms, cn->rstats.clock_ahead);
    }
    process_ready(cn);
}

static void on_peer_connected(void *data,
                              const char *node_id,
                              size_t id_len,
                              const struct peer_hello *hello)
{
    (void)hello;
    struct cnode *cn = data;
    struct peer_gone *g = gone_find(cn, node_id, id_len);
    if (g != NULL) {
        *g = cn->gone[--cn->n_gone];
    }
    swim_on_traffic(cn->swim, node_id, id_len, now_mono(), &cn->acts);
    run_cl_actions(cn);
    rk_log(RK_LOG_DEBUG, "peer_connected", "peer=%.*s", (int)id_len, node_id);
}

static void on_peer_disconnected(void *data,
                                 const char *node_id,
                                 size_t id_len,
                                 int reason)
{
    struct cnode *cn = data;
    rk_log(RK_LOG_DEBUG, "peer_disconnected", "peer=%.*s reason=%s",
           (int)id_len, node_id, rk_errname(reason));
    /* New requests for it fail at once until it reconnects (the
     * transport redials with backoff; SWIM marks it down soon after). */
    if (id_len > CL_ID_MAX || gone_find(cn, node_id, id_len) != NULL) {
        return;
    }
    if (cn->n_gone == cn->cap_gone) {
        size_t cap = cn->cap_gone ? cn->cap_gone * 2 : 8;
        struct peer_gone *p = rk_realloc(cn->gone, cap * sizeof(*p));
        if (p == NULL) {
            return;
        }
        cn->gone = p;
        cn->cap_gone = cap;
    }
    memcpy(cn->gone[cn->n_gone].id, node_id, id_len);
    cn->gone[cn->n_gone].id[id_len] = '\0';
    cn->n_gone++;
}

/* ---- durable acks ---------------------------------------------------------
 */

void cluster_on_durable(struct server *s)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL || cn->head_acks == cn->n_acks) {
        return;
    }
    uint64_t durable = engine_durable_seq(s->engine);
    bool local = false;
    while (cn->head_acks < cn->n_acks &&
           cn->acks[cn->head_acks].seq <= durable) {
        struct pending_ack a = cn->acks[cn->head_acks++];
        struct peer_msg rep = {.type = PEER_KV_PUT_REPLY};
        rep.kv_put_reply.req_id = a.req_id;
        rep.kv_put_reply.status = a.status;
        if (a.local) {
            coord_on_local_result(cn->coord, &rep, now_mono());
            release_held(cn, a.req_id);
            drain_coord(cn);
            local = true;
        } else {
            peer_transport_send(cn->pt, a.peer, NULL, 0, &rep);
        }
    }
    if (cn->head_acks == cn->n_acks) {
        cn->head_acks = cn->n_acks = 0;
    }
    if (local) {
        process_ready(cn);
    }
}

/* ---- timer ----------------------------------------------------------------
 */

static void op_advance(struct cnode *cn, struct cop *op);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cnode *cn = arg;
    uint64_t now = now_mono();
    if (now >= membership_next_deadline_ms(cn->mem)) {
        membership_tick(cn->mem, now, &cn->acts);
        run_cl_actions(cn);
    }
    if (now >= swim_next_deadline_ms(cn->swim)) {
        swim_tick(cn->swim, now, &cn->acts);
        run_cl_actions(cn);
    }
    if (now >= coord_next_deadline_ms(cn->coord)) {
        coord_tick(cn->coord, now);
        drain_coord(cn);
    }
    hints_deliver(cn, now);
    gc_round(cn, now);
    if (cn->rstats.bound_dropped != cn->bound_logged &&
        now >= cn->bound_logged_at + 10000) {
        /* the per-key sibling bound dropped data: say so (rate-limited) */
        rk_log(RK_LOG_WARN, "sibling_bound",
               "dropped=%" PRIu64 " total=%" PRIu64 " max_siblings=%zu",
               cn->rstats.bound_dropped - cn->bound_logged,
               cn->rstats.bound_dropped, cn->rcfg.max_sibs);
        cn->bound_logged = cn->rstats.bound_dropped;
        cn->bound_logged_at = now;
    }
    struct cop *st = cn->stalled;
    cn->stalled = NULL;
    while (st) {
        struct cop *next = st->snext;
        st->stalled = false;
        op_queue(cn, st);
        st = next;
    }
    process_ready(cn);
}

/* ---- operations ------------------------------------------------------------
 */

static void op_free(struct cop *op)
{
    for (size_t i = 0; i < op->nkeys; i++) {
        rk_buf_fini(&op->keys[i].val);
        rk_buf_fini(&op->keys[i].obj);
        rk_buf_fini(&op->keys[i].ctx);
    }
    rk_free(op->keys);
    rk_buf_fini(&op->kbuf);
    rk_buf_fini(&op->reply);
    rk_free(op->argv);
    rk_free(op);
}

static void unlink_op(struct cnode *cn, struct cop *op)
{
    for (struct cop **pp = &cn->ready; *pp; pp = &(*pp)->rnext) {
        if (*pp == op) {
            *pp = op->rnext;
            break;
        }
    }
    for (struct cop **pp = &cn->stalled; *pp; pp = &(*pp)->snext) {
        if (*pp == op) {
            *pp = op->snext;
            break;
        }
    }
    if (cn->join_op == op) {
        cn->join_op = NULL;
    }
}

void cluster_client_gone(struct client *c)
{
    struct cnode *cn = c->srv->cluster;
    if (cn == NULL) {
        return;
    }
    resume_forget(cn, c);
    struct cop *op = c->cop_head;
    c->cop_head = c->cop_tail = NULL;
    c->n_cops = 0;
    c->cop_block = false;
    while (op) {
        struct cop *next = op->cnext;
        coord_cancel(cn->coord, (uint64_t)(uintptr_t)op);
        unlink_op(cn, op);
        op_free(op);
        op = next;
    }
}

bool cluster_client_busy(const struct client *c)
{
    return c->n_cops > 0;
}

static void fifo_push(struct client *c, struct cop *op)
{
    op->cnext = NULL;
    if (c->cop_tail) {
        c->cop_tail->cnext = op;
    } else {
        c->cop_head = op;
    }
    c->cop_tail = op;
    c->n_cops++;
}

static void update_block(struct client *c)
{
    bool block = c->n_cops >= CLIENT_PIPELINE;
    for (struct cop *o = c->cop_head; o && !block; o = o->cnext) {
        block = o->barrier;
    }
    c->cop_block = block;
}

/* Whether two operations name a common key (conservative for big ones). */
static bool ops_conflict(const struct cop *a, const struct cop *b)
{
    if (a->nkeys > 16 || b->nkeys > 16) {
        return true;
    }
    for (size_t i = 0; i < a->nkeys; i++) {
        for (size_t j = 0; j < b->nkeys; j++) {
            if (a->keys[i].len == b->keys[j].len &&
                memcmp(a->kbuf.base + a->keys[i].off,
                       b->kbuf.base + b->keys[j].off, a->keys[i].len) == 0) {
                return true;
            }
        }
    }
    return false;
}

static void op_begin(struct cnode *cn, struct cop *op);

/* Queues c to be resumed from resume_cb, after the callbacks already
 * active in this loop pass (every peer reply read so far) have run. */
static void schedule_resume(struct cnode *cn, struct client *c)
{
    if (c->resume_pending) {
        return;
    }
    c->resume_pending = true;
    c->resume_next = NULL;
    if (cn->resume_tail) {
        cn->resume_tail->resume_next = c;
    } else {
        cn->resume_head = c;
    }
    cn->resume_tail = c;
    event_active(cn->resume_ev, EV_TIMEOUT, 1);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cnode *cn = arg;
    while (cn->resume_head) {
        struct client *c = cn->resume_head;
        cn->resume_head = c->resume_next;
        if (cn->resume_head == NULL) {
            cn->resume_tail = NULL;
        }
        c->resume_pending = false;
        c->resume_next = NULL;
        server_client_resume(c); /* may free c */
    }
}

static void resume_forget(struct cnode *cn, struct client *c)
{
    if (!c->resume_pending) {
        return;
    }
    struct client **pp = &cn->resume_head;
    struct client *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->resume_next;
    }
    if (*pp == c) {
        *pp = c->resume_next;
        if (cn->resume_tail == c) {
            cn->resume_tail = prev;
        }
    }
    c->resume_pending = false;
    c->resume_next = NULL;
}

/* Starts the waiting operations of c that no longer share a key with an
 * earlier unfinished one. */
static void start_waiting(struct cnode *cn, struct client *c)
{
    for (struct cop *o = c->cop_head; o; o = o->cnext) {
        if (!o->waiting) {
            continue;
        }
        bool clash = false;
        for (struct cop *e = c->cop_head; e != o && !clash; e = e->cnext) {
            clash = !e->finished && e->kind == COP_KEYS && ops_conflict(e, o);
        }
        if (!clash) {
            o->waiting = false;
            op_begin(cn, o);
        }
    }
}

/*
 * Appends the replies of finished operations at the head of c's FIFO to
 * its output, runs a deferred command that reached the head, and resumes
 * the client's input.  May free the client (last thing done).
 */
static void client_progress(struct cnode *cn, struct client *c)
{
    for (;;) {
        struct cop *op = c->cop_head;
        if (op == NULL || (!op->finished && op->kind != COP_DEFER)) {
            break;
        }
        c->cop_head = op->cnext;
        if (c->cop_head == NULL) {
            c->cop_tail = NULL;
        }
        c->n_cops--;
        unlink_op(cn, op);
        if (op->kind == COP_DEFER) {
            /* Everything before it is answered: run it as if it had just
             * arrived (it may start a coordinated command of its own). */
            update_block(c);
            command_dispatch(c, op->argc, op->argv);
            op_free(op);
            continue;
        }
        if (op->failed) {
            c->cur_cmd = op->cmd;
            reply_error(c, op->err);
            c->cur_cmd = NULL;
        } else if (op->reply.len) {
            rk_buf_append(&c->obuf, op->reply.base, op->reply.len);
        }
        op_free(op);
    }
    update_block(c);
    start_waiting(cn, c);
    schedule_resume(cn, c);
}

void cluster_defer(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct cnode *cn = c->srv->cluster;
    struct cop *op = op_new(c, NULL, argc, argv);
    if (op == NULL) {
        /* Cannot keep it: answer out of order rather than lose it. */
        reply_error(c, "ERR out of memory");
        return;
    }
    op->kind = COP_DEFER;
    op->barrier = true;
    fifo_push(c, op);
    update_block(c);
    (void)cn;
}

/* Starts requests for keys of the current phase, up to the window. */
/* The coordinating replica of a write: this node when it is a primary
 * target (no extra hop, and it keeps working while a partition is not
 * detected yet, as Riak's put coordinator does), else the first primary
 * target this node sees up, else the first fallback (which issues the dot
 * from a one-shot actor), else the first target.  Two writes through
 * different nodes can so be coordinated by different replicas: if the
 * second comes before the first reached its coordinator, they become
 * siblings (docs/consistency.md). */
static size_t pick_coordinator(struct cnode *cn, const struct route_targets *t)
{
    struct route_view v = route_view_of(cn);
    return route_pick_coordinator(&v, t);
}

/* Starts the request of key k in op's current phase.  RK_OK, RK_EBUSY
 * (the coordinator table is full) or another error. */
static int start_key(struct cnode *cn,
                     struct cop *op,
                     struct cop_key *k,
                     const struct route_targets *t,
                     uint64_t now,
                     uint64_t *rid)
{
    const char *const *targets = t->id;
    size_t nt = t->n;
    struct server *s = cn->srv;
    const char *key = op->kbuf.base + k->off;
    uint64_t cookie = (uint64_t)(uintptr_t)op;
    uint32_t tmo = op->c->ropts.timeout_ms ? op->c->ropts.timeout_ms
                                           : s->cfg->request_timeout_ms;
    uint32_t rq = op_r(cn, op), wq = op_w(cn, op);
    if (op->phase == PH_READ) {
        struct coord_get_req g = {
            .key = key,
            .klen = k->len,
            .targets = targets,
            .n_targets = nt,
            .r = rq < nt ? rq : (uint32_t)nt,
            .timeout_ms = tmo,
            .repair_wait_ms = s->cfg->read_repair_wait_ms,
            .hint_for = t->hint_for,
            .cookie = cookie,
        };
        return coord_start_get(cn->coord, &g, now, rid);
    }
    if (op->phase == PH_UPDATE) {
        size_t x = pick_coordinator(cn, t);
        snprintf(k->coord_id, sizeof(k->coord_id), "%s", targets[x]);
        uint32_t flags = k->tomb ? PEER_KV_TOMBSTONE : 0;
        if (k->own_ctx) {
            flags |= PEER_KV_OWN_CONTEXT;
        }
        if (t->hint_for[x]) {
            flags |= PEER_KV_FALLBACK;
        }
        if (k->ctype && !k->tomb) {
            flags |= PEER_KV_CTYPE;
        }
        struct coord_update_req u = {
            .key = key,
            .klen = k->len,
            .context = k->own_ctx ? NULL : k->ctx.base,
            .clen = k->own_ctx ? 0 : k->ctx.len,
            .value = k->tomb ? NULL : k->val.base,
            .vlen = k->tomb ? 0 : k->val.len,
            .timestamp = k->ts,
            .expire_at_ms = k->tomb ? 0 : k->exp,
            .flags = flags,
            .target = targets[x],
            .hint_for = t->hint_for[x],
            .timeout_ms = tmo,
            .cookie = cookie,
        };
        return coord_start_update(cn->coord, &u, now, rid);
    }
    int acked = -1;
    if (s->cfg->sync_mode != ENGINE_SYNC_ALWAYS) {
        /* The coordinating replica stored the object already; under
         * sync=always it counts only once its KV_PUT ack says durable. */
        for (size_t i = 0; i < nt; i++) {
            if (strcmp(targets[i], k->coord_id) == 0) {
                acked = (int)i;
            }
        }
    }
    for (size_t i = 0; i < t->n_down; i++) {
        hint_for_down(cn, t->down[i], key, k->len, &k->obj);
    }
    struct coord_put_req p = {
        .key = key,
        .klen = k->len,
        .object = k->obj.base,
        .olen = k->obj.len,
        .targets = targets,
        .n_targets = nt,
        .hint_for = t->hint_for,
        .acked = acked,
        .w = wq < nt ? wq : (uint32_t)nt,
        .timeout_ms = tmo,
        .cookie = cookie,
    };
    return coord_start_put(cn->coord, &p, now, rid);
}

static void op_start_more(struct cnode *cn, struct cop *op)
{
    uint64_t now = now_mono();
    while (op->next < op->nkeys && op->inflight < COP_WINDOW && !op->failed) {
        struct cop_key *k = &op->keys[op->next];
        if (op->phase != PH_READ && !k->write) {
            k->state = 2;
            op->done++;
            op->next++;
            continue;
        }
        struct route_targets t;
        build_targets_n(cn, op->kbuf.base + k->off, k->len, op_n(cn, op), &t);
        if (t.n == 0) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err),
                     "CLUSTERDOWN the ring has no members");
            break;
        }
        uint64_t rid = 0;
        int rc = start_key(cn, op, k, &t, now, &rid);
        if (rc == RK_EBUSY) {
            if (op->inflight == 0 && !op->stalled) {
                op->stalled = true;
                op->snext = cn->stalled;
                cn->stalled = op;
            }
            break;
        }
        if (rc != RK_OK) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err),
                     "ERR cluster request refused: %s", rk_strerror(rc));
            break;
        }
        cn->coordinated++;
        k->req_id = rid;
        k->state = 1;
        op->inflight++;
        op->next++;
        drain_coord(cn);
    }
}

static bool scratch_load(struct cnode *cn, struct cop *op)
{
    struct server *s = cn->srv;
    uint64_t seq;
    uint64_t now = server_now_ms();
    uint64_t maxts = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        struct cop_key *k = &op->keys[i];
        if (k->ts > maxts) {
            maxts = k->ts;
        }
        if (!k->live) {
            continue;
        }
        /* a content type rides along as on a standalone node, so handlers
         * see the user's bytes and a SET without one drops it */
        struct engine_meta m = {k->ts | (k->ctype ? REPLICA_META_CTYPE : 0),
                                k->exp, k->val.len};
        if (engine_put(cn->scratch, op->kbuf.base + k->off, k->len, k->val.base,
                       k->val.len, &m, &seq) != RK_OK) {
            return false;
        }
    }
    if (maxts) {
        hlc_update(&s->clock, now, maxts);
    }
    return true;
}

/* Runs the handler over the scratch engine and marks the keys to write. */
/* Runs fn(cn, op) with the client's output redirected into op->reply. */
static void capture_reply(struct cop *op,
                          void (*fn)(struct cnode *, struct cop *),
                          struct cnode *cn)
{
    struct client *c = op->c;
    struct rk_buf saved = c->obuf;
    c->obuf = op->reply;
    c->last_cmd = op->cmd->name;
    c->cur_cmd = op->cmd;
    fn(cn, op);
    c->cur_cmd = NULL;
    op->reply = c->obuf;
    c->obuf = saved;
}

/* RINGKV.GETALL key: [context, [[value or nil, hlc, unix ms], ...]],
 * newest sibling first; nil for a deleted or expired sibling. */
static void getall_reply(struct cnode *cn, struct cop *op)
{
    (void)cn;
    struct client *c = op->c;
    struct cop_key *k = &op->keys[0];
    struct dvv_obj o;
    dvv_init(&o);
    if (k->obj.len && dvv_decode(&o, k->obj.base, k->obj.len) != RK_OK) {
        reply_error(c, "ERR stored object does not decode");
        dvv_fini(&o);
        return;
    }
    struct rk_buf ctx;
    rk_buf_init(&ctx);
    if (o.n_clock > 0 && dvv_context_encode(&o, &ctx) != RK_OK) {
        reply_error(c, "ERR out of memory");
        goto out;
    }
    reply_array(c, 2);
    reply_bulk(c, ctx.base ? ctx.base : "", ctx.len);
    reply_array(c, o.n_sibs);
    uint64_t now = server_now_ms();
    bool *done = rk_calloc(o.n_sibs ? o.n_sibs : 1, sizeof(bool));
    for (size_t n = 0; n < o.n_sibs; n++) {
        long best = -1;
        for (size_t i = 0; i < o.n_sibs; i++) {
            if (!(done && done[i]) &&
                (best < 0 ||
                 dvv_sibling_cmp(&o, &o.sibs[i], &o, &o.sibs[best]) > 0)) {
                best = (long)i;
            }
        }
        if (done) {
            done[best] = true;
        }
        const struct dvv_sibling *sb = &o.sibs[best];
        bool dead =
            sb->tombstone || (sb->expire_at_ms && sb->expire_at_ms <= now);
        reply_array(c, c->ropts.want_ctype ? 4 : 3);
        if (dead) {
            reply_null(c);
        } else {
            size_t pl = 0;
            const char *pv = dvv_payload(&o, (size_t)best, &pl);
            reply_bulk(c, pv, pl);
        }
        reply_int(c, (int64_t)(sb->ts & REPLICA_META_TS_MASK));
        reply_int(c, (int64_t)hlc_physical_ms(sb->ts));
        if (c->ropts.want_ctype) {
            size_t cl = 0;
            const char *cv = dvv_ctype(&o, (size_t)best, &cl);
            if (!dead && cl) {
                reply_bulk(c, cv, cl);
            } else {
                reply_null(c);
            }
        }
    }
    rk_free(done);
out:
    rk_buf_fini(&ctx);
    dvv_fini(&o);
}

/*
 * Limits a client's context to what the key's replicas have actually seen
 * (the clock read just before, in `read`, a clock-only encoding; empty
 * when the key was not found): a context may only forget versions, never
 * invent them, so a forged context cannot cover writes that do not exist
 * yet (they would be dropped as already seen when they come).  RK_OK,
 * RK_EINVAL (read does not decode), RK_ENOMEM.
 */
static int cap_context(struct dvv_obj *ctx, const struct rk_buf *read)
{
    struct dvv_obj seen;
    dvv_init(&seen);
    int rc = read->len ? dvv_decode(&seen, read->base, read->len) : RK_OK;
    if (rc != RK_OK) {
        dvv_fini(&seen);
        return RK_EINVAL;
    }
    size_t w = 0;
    for (size_t i = 0; i < ctx->n_clock; i++) {
        uint64_t have = dvv_counter(&seen, ctx->clock[i].actor);
        if (have == 0) {
            continue;
        }
        ctx->clock[w] = ctx->clock[i];
        if (ctx->clock[w].counter > have) {
            ctx->clock[w].counter = have;
        }
        w++;
    }
    ctx->n_clock = w;
    dvv_fini(&seen);
    return RK_OK;
}

/* RINGKV.PUT key context value (after a quorum read of the key): a write
 * superseding exactly the siblings the client's context covers, of what
 * the replicas hold.  RINGKV.DEL key context: the same with a tombstone
 * (replies 1 when the context covered a live value, else 0). */
static void put_exec(struct cnode *cn, struct cop *op)
{
    struct server *s = cn->srv;
    struct cop_key *k = &op->keys[0];
    bool del = strcmp(op->cmd->name, "ringkv.del") == 0;
    k->write = false;
    struct dvv_obj ctx;
    dvv_init(&ctx);
    int rc = dvv_context_decode(&ctx, op->argv[2].ptr, op->argv[2].len);
    if (rc == RK_OK) {
        rc = cap_context(&ctx, &k->ctx);
    }
    if (rc == RK_EINVAL) {
        reply_error(op->c,
                    "ERR invalid causal context (pass the context "
                    "RINGKV.GETALL returned, or an empty string)");
    } else if (rc == RK_OK && del) {
        /* RINGKV.DEL key context: a tombstone superseding what the
         * context covers; nothing is written when it covers no live value
         * (a retried or stale delete must not pile up tombstones, which
         * would push values out under the sibling bound) */
        bool any = k->obj.len > 0;
        int removed = 0; /* live siblings the context covers */
        struct dvv_obj cur;
        dvv_init(&cur);
        if (any && dvv_decode(&cur, k->obj.base, k->obj.len) == RK_OK) {
            uint64_t now = server_now_ms();
            for (size_t i = 0; i < cur.n_sibs; i++) {
                const struct dvv_sibling *sb = &cur.sibs[i];
                if (!sb->tombstone &&
                    !(sb->expire_at_ms && sb->expire_at_ms <= now) &&
                    dvv_covers(&ctx, sb->dot)) {
                    removed = 1;
                }
            }
        }
        dvv_fini(&cur);
        rk_buf_clear(&k->ctx);
        rk_buf_clear(&k->val);
        rc = dvv_encode(&ctx, &k->ctx);
        if (rc == RK_OK) {
            k->write = removed == 1;
            k->tomb = true;
            k->ctype = false;
            k->own_ctx = false;
            k->ts = hlc_now(&s->clock, server_now_ms());
            k->exp = 0;
            reply_int(op->c, removed);
        }
    } else if (rc == RK_OK) {
        rk_buf_clear(&k->ctx);
        rk_buf_clear(&k->val);
        rc = dvv_encode(&ctx, &k->ctx);
        const struct req_opts *ro = &op->c->ropts;
        k->ctype = ro->ctlen > 0;
        if (rc == RK_OK && k->ctype) {
            uint8_t n = ro->ctlen;
            rc = rk_buf_append(&k->val, &n, 1);
            if (rc == RK_OK) {
                rc = rk_buf_append(&k->val, ro->ctype, n);
            }
        }
        if (rc == RK_OK) {
            rc = rk_buf_append(&k->val, op->argv[3].ptr, op->argv[3].len);
        }
        if (rc == RK_OK) {
            k->write = true;
            k->tomb = false;
            k->own_ctx = false;
            k->ts = hlc_now(&s->clock, server_now_ms());
            k->exp = 0;
            reply_ok(op->c);
        }
    }
    if (rc != RK_OK && rc != RK_EINVAL) {
        reply_error(op->c, "ERR out of memory");
    }
    dvv_fini(&ctx);
}

static void op_exec(struct cnode *cn, struct cop *op)
{
    struct server *s = cn->srv;
    struct client *c = op->c;
    if (strcmp(op->cmd->name, "ringkv.getall") == 0 ||
        strcmp(op->cmd->name, "ringkv.put") == 0 ||
        strcmp(op->cmd->name, "ringkv.del") == 0) {
        bool put = op->cmd->name[7] != 'g';
        if (op->nkeys == 0) {
            op->failed = true;
            snprintf(op->err, sizeof(op->err), "ERR invalid key length");
            op->phase = PH_DONE;
            return;
        }
        capture_reply(op, put ? put_exec : getall_reply, cn);
        op->next = 0;
        op->done = 0;
        op->keys[0].state = 0;
        op->phase = put && op->keys[0].write ? PH_UPDATE : PH_DONE;
        return;
    }
    if (!scratch_load(cn, op)) {
        for (size_t i = 0; i < op->nkeys; i++) {
            uint64_t seq;
            (void)engine_delete(cn->scratch, op->kbuf.base + op->keys[i].off,
                                op->keys[i].len, 0, &seq);
        }
        op->failed = true;
        snprintf(op->err, sizeof(op->err), "ERR out of memory");
        return;
    }
    struct engine *real = s->engine;
    s->engine = cn->scratch;
    s->cluster_exec = true;
    struct rk_buf saved = c->obuf;
    c->obuf = op->reply;
    c->last_cmd = op->cmd->name;
    c->cur_cmd = op->cmd;
    op->cmd->proc(c, op->argc, op->argv);
    c->cur_cmd = NULL;
    op->reply = c->obuf;
    c->obuf = saved;
    s->cluster_exec = false;
    s->engine = real;
    /* What changed: a new timestamp, a new key, or a key gone. */
    size_t writes = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        struct cop_key *k = &op->keys[i];
        struct engine_meta m;
        struct rk_buf nv;
        rk_buf_init(&nv);
        int rc =
            engine_get(cn->scratch, op->kbuf.base + k->off, k->len, &nv, &m);
        k->write = false;
        k->own_ctx = !k->read;
        bool ct = rc == RK_OK && (m.timestamp & REPLICA_META_CTYPE);
        m.timestamp &= REPLICA_PLAIN_TS_MASK;
        if (rc == RK_OK && (!k->live || m.timestamp != k->ts)) {
            rk_buf_clear(&k->val);
            if (rk_buf_append(&k->val, nv.base ? nv.base : "", nv.len) !=
                RK_OK) {
                op->failed = true;
                snprintf(op->err, sizeof(op->err), "ERR out of memory");
            }
            k->write = true;
            k->tomb = false;
            k->ctype = ct && dvv_ctype_valid(k->val.base, k->val.len);
            k->ts = m.timestamp;
            k->exp = m.expire_at_ms;
        } else if (rc == RK_ENOTFOUND && k->live) {
            k->write = true;
            k->tomb = true;
            k->ctype = false;
            k->ts = hlc_now(&s->clock, server_now_ms());
            k->exp = 0;
            rk_buf_clear(&k->val);
        }
        rk_buf_fini(&nv);
        if (k->write) {
            writes++;
        }
        k->state = 0;
        /* Leave the scratch engine empty for the next operation (cheaper
         * than engine_clear, which releases and re-faults its arena). */
        uint64_t seq;
        (void)engine_delete(cn->scratch, op->kbuf.base + k->off, k->len, 0,
                            &seq);
    }
    op->next = 0;
    op->done = 0;
    op->phase = writes ? PH_UPDATE : PH_DONE;
}

static void op_finish(struct cnode *cn, struct cop *op)
{
    unlink_op(cn, op);
    op->finished = true;
    if (op->kind == COP_KEYS && op->cmd && op->start_us) {
        bool w = (op->cmd->flags & CMD_WRITE) != 0;
        uint64_t us = server_mono_us() - op->start_us;
        lat_observe(&cn->coord_lat[w], us);
        if (op->failed) {
            cn->coord_failed[w]++;
        }
        if (cn->srv->cfg->log_requests) {
            log_request(op->c, op->cmd->name, op->argc ? op->argc - 1 : 0, us,
                        op->failed);
        }
        uint32_t slow = cn->srv->cfg->slow_log_ms;
        if (slow && us >= (uint64_t)slow * 1000) {
            /* the slow-request log (on by default; --slow-log-ms) */
            rk_log(RK_LOG_WARN, "slow_request",
                   "command=%s keys=%zu ms=%.1f result=%s client=%s",
                   op->cmd->name, op->nkeys, (double)us / 1000.0,
                   op->failed ? "error" : "ok", op->c->addr);
        }
    }
    if (op->c->cop_head == op) {
        client_progress(cn, op->c);
    } else if (op->kind == COP_KEYS) {
        start_waiting(cn, op->c);
    }
}

static void op_advance(struct cnode *cn, struct cop *op)
{
    for (;;) {
        if (op->phase == PH_DONE || (op->failed && op->inflight == 0)) {
            op_finish(cn, op);
            return;
        }
        if (op->kind == COP_JOIN) {
            return; /* waits for JOIN_DONE / JOIN_FAILED */
        }
        op_start_more(cn, op);
        if (op->stalled || op->inflight > 0 ||
            (op->failed && op->inflight > 0)) {
            return;
        }
        if (op->failed) {
            continue;
        }
        if (op->next < op->nkeys) {
            continue;
        }
        /* every key of this phase is done */
        if (op->phase == PH_READ) {
            op_exec(cn, op);
        } else if (op->phase == PH_UPDATE) {
            op->phase = PH_WRITE;
            op->next = 0;
            op->done = 0;
        } else {
            op->phase = PH_DONE;
        }
    }
}

static void process_ready(struct cnode *cn)
{
    if (cn->draining || cn->in_ready) {
        return;
    }
    cn->in_ready = true;
    while (cn->ready) {
        struct cop *op = cn->ready;
        cn->ready = op->rnext;
        op->queued = false;
        op->rnext = NULL;
        op_advance(cn, op);
    }
    cn->in_ready = false;
}

/* ---- routing ----------------------------------------------------------------
 */

bool cluster_routes(struct server *s,
                    struct client *c,
                    const struct command *cmd,
                    const char **why)
{
    struct cnode *cn = s->cluster;
    *why = NULL;
    if (cn == NULL || s->cluster_exec) {
        return false;
    }
    bool keyed = cmd->first_key > 0 || strcmp(cmd->name, "exec") == 0;
    if (!keyed || (cmd->flags & CMD_LOCAL)) {
        return false;
    }
    if (strcmp(cmd->name, "exec") == 0 && !c->in_multi) {
        return false;
    }
    enum membership_phase ph = membership_phase(cn->mem);
    if (ph != MEMBERSHIP_MEMBER) {
        *why = ph == MEMBERSHIP_JOINING
                   ? "TRYAGAIN this node is joining a cluster"
                   : "CLUSTERDOWN this node is not a member of a cluster (it "
                     "left or was removed); join one with RINGKV.CLUSTER JOIN";
        return true;
    }
    return cn->multi;
}

static bool arg_eq(const struct resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->ptr, s, n) == 0;
}

/* A write whose result does not depend on what is stored. */
static bool is_blind_write(const struct command *cmd,
                           size_t argc,
                           const struct resp_arg *argv)
{
    if (strcmp(cmd->name, "mset") == 0 || strcmp(cmd->name, "setex") == 0 ||
        strcmp(cmd->name, "psetex") == 0) {
        return true;
    }
    if (strcmp(cmd->name, "set") != 0) {
        return false;
    }
    for (size_t i = 3; i < argc; i++) {
        if (arg_eq(&argv[i], "NX") || arg_eq(&argv[i], "XX") ||
            arg_eq(&argv[i], "GET") || arg_eq(&argv[i], "KEEPTTL")) {
            return false;
        }
    }
    return true;
}

static int add_key(struct cop *op, const char *p, size_t len, size_t *cap)
{
    for (size_t i = 0; op->nkeys <= 64 && i < op->nkeys; i++) {
        if (op->keys[i].len == len &&
            memcmp(op->kbuf.base + op->keys[i].off, p, len) == 0) {
            return RK_OK;
        }
    }
    if (op->nkeys == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        struct cop_key *k = rk_realloc(op->keys, nc * sizeof(*k));
        if (k == NULL) {
            return RK_ENOMEM;
        }
        op->keys = k;
        *cap = nc;
    }
    struct cop_key *k = &op->keys[op->nkeys];
    memset(k, 0, sizeof(*k));
    k->off = op->kbuf.len;
    k->len = len;
    rk_buf_init(&k->val);
    rk_buf_init(&k->obj);
    rk_buf_init(&k->ctx);
    if (rk_buf_append(&op->kbuf, p, len) != RK_OK) {
        return RK_ENOMEM;
    }
    op->nkeys++;
    return RK_OK;
}

static int add_cmd_keys(struct cop *op,
                        const struct command *cmd,
                        size_t argc,
                        const struct resp_arg *argv,
                        size_t *cap)
{
    if (cmd->first_key <= 0) {
        return RK_OK;
    }
    size_t last = cmd->last_key < 0 ? argc - 1 : (size_t)cmd->last_key;
    for (size_t i = (size_t)cmd->first_key; i <= last && i < argc;
         i += (size_t)cmd->key_step) {
        if (argv[i].len == 0 || argv[i].len > PEER_MAX_KEY) {
            continue; /* never stored: reads find nothing */
        }
        int rc = add_key(op, argv[i].ptr, argv[i].len, cap);
        if (rc != RK_OK) {
            return rc;
        }
    }
    return RK_OK;
}

static int key_cmp_ctx_sort(const void *a, const void *b, void *ctx)
{
    const struct cop *op = ctx;
    const struct cop_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(op->kbuf.base + x->off, op->kbuf.base + y->off, n);
    if (c != 0) {
        return c;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Removes duplicate keys of big key lists (small ones are deduplicated
 * as they are added). */
static void dedupe_keys(struct cop *op)
{
    if (op->nkeys <= 64) {
        return;
    }
    qsort_r(op->keys, op->nkeys, sizeof(*op->keys), key_cmp_ctx_sort, op);
    size_t w = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        if (w > 0 &&
            key_cmp_ctx_sort(&op->keys[w - 1], &op->keys[i], op) == 0) {
            rk_buf_fini(&op->keys[i].val);
            rk_buf_fini(&op->keys[i].obj);
            rk_buf_fini(&op->keys[i].ctx);
            continue;
        }
        op->keys[w++] = op->keys[i];
    }
    op->nkeys = w;
}

static struct cop *op_new(struct client *c,
                          const struct command *cmd,
                          size_t argc,
                          const struct resp_arg *argv)
{
    struct cop *op = rk_calloc(1, sizeof(*op));
    if (op == NULL) {
        return NULL;
    }
    op->c = c;
    op->cmd = cmd;
    rk_buf_init(&op->kbuf);
    rk_buf_init(&op->reply);
    size_t bytes = argc * sizeof(struct resp_arg);
    for (size_t i = 0; i < argc; i++) {
        bytes += argv[i].len + 1;
    }
    op->argv = rk_malloc(bytes ? bytes : 1);
    if (op->argv == NULL) {
        rk_free(op);
        return NULL;
    }
    char *p = (char *)(op->argv + argc);
    for (size_t i = 0; i < argc; i++) {
        memcpy(p, argv[i].ptr, argv[i].len);
        p[argv[i].len] = '\0';
        op->argv[i].ptr = p;
        op->argv[i].len = argv[i].len;
        p += argv[i].len + 1;
    }
    op->argc = argc;
    return op;
}

void cluster_run(struct client *c,
                 const struct command *cmd,
                 size_t argc,
                 const struct resp_arg *argv)
{
    struct server *s = c->srv;
    struct cnode *cn = s->cluster;
    const char *why;
    if (cluster_routes(s, c, cmd, &why) && why) {
        if (strcmp(cmd->name, "exec") == 0) {
            multi_reset(c);
        }
        reply_error(c, why);
        return;
    }
    struct cop *op = op_new(c, cmd, argc, argv);
    if (op == NULL) {
        reply_error(c, "ERR out of memory");
        return;
    }
    op->kind = COP_KEYS;
    op->start_us = server_mono_us();
    size_t cap = 0;
    int rc = add_cmd_keys(op, cmd, argc, op->argv, &cap);
    if (rc == RK_OK && strcmp(cmd->name, "exec") == 0) {
        for (size_t i = 0; rc == RK_OK && i < c->mq_len; i++) {
            rc = add_cmd_keys(op, c->mq[i].cmd, c->mq[i].argc, c->mq[i].argv,
                              &cap);
        }
        for (struct watched_key *w = c->watched; rc == RK_OK && w;
             w = w->next) {
            rc = add_key(op, w->key, w->klen, &cap);
        }
    }
    if (rc != RK_OK) {
        op_free(op);
        reply_error(c, "ERR out of memory");
        return;
    }
    dedupe_keys(op);
    op->barrier = (cmd->flags & CMD_NOMULTI) != 0;
    for (struct cop *e = c->cop_head; e && !op->waiting; e = e->cnext) {
        op->waiting =
            !e->finished && (e->kind != COP_KEYS || ops_conflict(e, op));
    }
    fifo_push(c, op);
    update_block(c);
    if (!op->waiting) {
        op_begin(cn, op);
    }
}

/* Starts a coordinated command: reads first, or straight to the handler
 * for a blind write. */
static void op_begin(struct cnode *cn, struct cop *op)
{
    if (is_blind_write(op->cmd, op->argc, op->argv)) {
        for (size_t i = 0; i < op->nkeys; i++) {
            op->keys[i].state = 2;
        }
        op_exec(cn, op);
    } else {
        op->phase = PH_READ;
    }
    op_queue(cn, op);
    process_ready(cn);
}

/* ---- RINGKV.CLUSTER --------------------------------------------------------
 */

/* Whether every valid member this node sees up last gossiped exactly
 * this node's state (same bytes, hence the same version and ring). */
static bool cluster_agrees(struct cnode *cn)
{
    size_t m = membership_member_count(cn->mem);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(cn->mem, i, &mm);
        if (mm.status != MEMBERSHIP_VALID ||
            strcmp(mm.node_id, cn->node_id) == 0 ||
            !peer_is_up(cn, mm.node_id)) {
            continue;
        }
        struct peer_seen *ps =
            seen_find(cn, mm.node_id, strlen(mm.node_id), false);
        if (ps == NULL || ps->hash != cn->state_hash) {
            return false;
        }
    }
    return true;
}

static void status_text(struct cnode *cn, struct rk_buf *out)
{
    char line[512];
    const struct ring *r = membership_ring(cn->mem);
    bool agree = cluster_agrees(cn);
    size_t m = membership_member_count(cn->mem);
    int n =
        snprintf(line, sizeof(line),
                 "cluster %s  version %" PRIu64 "  ring %" PRIu32
                 " partitions  n=%" PRIu32 " r=%" PRIu32 " w=%" PRIu32
                 "  agreement %s  hints %" PRIu64 "\n",
                 membership_cluster_name(cn->mem), membership_version(cn->mem),
                 r ? ring_size(r) : 0, cn->n_eff, cn->r_eff, cn->w_eff,
                 agree ? "yes" : "no", hints_pending(cn));
    rk_buf_append(out, line, (size_t)n);
    n = snprintf(line, sizeof(line), "%-24s %-22s %-6s %-8s %-10s %-8s %s\n",
                 "NODE_ID", "ADDRESS", "RESP", "STATUS", "PARTITIONS", "SEEN",
                 "VERSION");
    rk_buf_append(out, line, (size_t)n);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(cn->mem, i, &mm);
        char addr[300], parts[16], ver[24];
        snprintf(addr, sizeof(addr), "%s:%u", mm.host, mm.peer_port);
        int idx = r ? ring_find_member(r, mm.node_id, strlen(mm.node_id)) : -1;
        snprintf(parts, sizeof(parts), "%zu",
                 idx >= 0 ? ring_owned_count(r, (size_t)idx) : 0);
        bool self = strcmp(mm.node_id, cn->node_id) == 0;
        struct peer_seen *ps =
            self ? NULL : seen_find(cn, mm.node_id, strlen(mm.node_id), false);
        if (self) {
            snprintf(ver, sizeof(ver), "%" PRIu64, membership_version(cn->mem));
        } else if (ps) {
            snprintf(ver, sizeof(ver), "%" PRIu64, ps->version);
        } else {
            snprintf(ver, sizeof(ver), "-");
        }
        n = snprintf(
            line, sizeof(line), "%-24s %-22s %-6u %-8s %-10s %-8s %s\n",
            mm.node_id, addr, mm.resp_port,
            mm.status == MEMBERSHIP_VALID ? "valid" : "removed", parts,
            mm.status == MEMBERSHIP_VALID ? seen_as(cn, mm.node_id) : "-", ver);
        rk_buf_append(out, line, (size_t)n);
    }
}

static size_t members_up(struct cnode *cn)
{
    size_t up = 0, m = membership_member_count(cn->mem);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(cn->mem, i, &mm);
        if (mm.status == MEMBERSHIP_VALID &&
            (strcmp(mm.node_id, cn->node_id) == 0 ||
             peer_is_up(cn, mm.node_id))) {
            up++;
        }
    }
    return up;
}

static uint64_t engine_keys(struct server *s)
{
    struct engine_stats st;
    engine_stats(s->engine, &st);
    return st.live_keys;
}

static void cmd_join(struct client *c, const struct resp_arg *addr)
{
    struct server *s = c->srv;
    struct cnode *cn = s->cluster;
    char host[300];
    if (addr->len == 0 || addr->len >= sizeof(host)) {
        reply_error(c, "ERR usage: RINGKV.CLUSTER JOIN HOST:PEERPORT");
        return;
    }
    memcpy(host, addr->ptr, addr->len);
    host[addr->len] = '\0';
    char *colon = strrchr(host, ':');
    char *end = NULL;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || colon == host || !end || *end || port == 0 || port > 65535) {
        reply_error(c,
                    "ERR usage: RINGKV.CLUSTER JOIN HOST:PEERPORT "
                    "(the seed's peer port)");
        return;
    }
    *colon = '\0';
    if (host[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        memmove(host, host + 1, strlen(host));
    }
    if (cn->join_op) {
        reply_error(c, "ERR a join is already in progress");
        return;
    }
    uint64_t keys = engine_keys(s);
    if (keys > 0 && !cn->multi) {
        reply_errorf(c,
                     "ERR join needs an empty node: this node holds %" PRIu64
                     " keys and partition handoff is not implemented yet",
                     keys);
        return;
    }
    int rc = membership_join_start(cn->mem, host, (uint16_t)port, now_mono(),
                                   &cn->acts);
    if (rc != RK_OK) {
        cl_actions_clear(&cn->acts);
        if (rc == RK_EBUSY) {
            reply_errorf(c,
                         "ERR cannot join: this node is already a member of "
                         "a cluster of %zu nodes (leave it first)",
                         cn->valid_members);
        } else {
            reply_errorf(c, "ERR cannot join: %s", membership_errmsg(cn->mem));
        }
        return;
    }
    struct cop *op = op_new(c, NULL, 0, NULL);
    if (op == NULL) {
        run_cl_actions(cn);
        reply_error(c, "ERR out of memory");
        return;
    }
    op->kind = COP_JOIN;
    op->barrier = true;
    fifo_push(c, op);
    update_block(c);
    cn->join_op = op;
    rk_log(RK_LOG_INFO, "cluster_join_start", "seed=%s:%lu", host, port);
    run_cl_actions(cn);
    process_ready(cn);
}

void cluster_cmd(struct client *c, size_t argc, const struct resp_arg *argv)
{
    struct server *s = c->srv;
    struct cnode *cn = s->cluster;
    if (cn == NULL) {
        reply_error(c, "ERR cluster is not running");
        return;
    }
    const struct resp_arg *sub = &argv[1];
    if (arg_eq(sub, "STATUS") && argc == 2) {
        struct rk_buf b;
        rk_buf_init(&b);
        status_text(cn, &b);
        reply_bulk(c, b.base ? b.base : "", b.len);
        rk_buf_fini(&b);
    } else if (arg_eq(sub, "JOIN") && argc == 3) {
        cmd_join(c, &argv[2]);
    } else if (arg_eq(sub, "LEAVE") && argc == 2) {
        int rc = membership_leave(cn->mem, engine_keys(s) > 0, now_mono(),
                                  &cn->acts);
        if (rc != RK_OK) {
            cl_actions_clear(&cn->acts);
            reply_errorf(c, "ERR cannot leave: %s", membership_errmsg(cn->mem));
            return;
        }
        run_cl_actions(cn);
        recompute(cn);
        reply_ok(c);
    } else if (arg_eq(sub, "REMOVE") && argc == 3) {
        char id[CL_ID_MAX + 1];
        if (argv[2].len == 0 || argv[2].len > CL_ID_MAX) {
            reply_error(c, "ERR invalid node id");
            return;
        }
        memcpy(id, argv[2].ptr, argv[2].len);
        id[argv[2].len] = '\0';
        int rc = membership_remove(cn->mem, id, now_mono(), &cn->acts);
        if (rc != RK_OK) {
            cl_actions_clear(&cn->acts);
            if (rc == RK_ENOTFOUND) {
                reply_errorf(c, "ERR no valid member '%s'", id);
            } else {
                reply_errorf(c, "ERR cannot remove '%s': %s", id,
                             membership_errmsg(cn->mem));
            }
            return;
        }
        run_cl_actions(cn);
        recompute(cn);
        reply_ok(c);
    } else if (arg_eq(sub, "FAULT") && (argc == 3 || argc == 4)) {
#ifdef RK_TEST_BUILD
        if (argc == 3 && arg_eq(&argv[2], "CLEAR")) {
            peer_transport_clear_faults(cn->pt);
            reply_ok(c);
            return;
        }
        if (argc != 4 || argv[2].len == 0 || argv[2].len > CL_ID_MAX) {
            reply_error(c,
                        "ERR usage: RINGKV.CLUSTER FAULT NODE in|out|both|none "
                        "| FAULT CLEAR");
            return;
        }
        char id[CL_ID_MAX + 1];
        memcpy(id, argv[2].ptr, argv[2].len);
        id[argv[2].len] = '\0';
        bool in = arg_eq(&argv[3], "in") || arg_eq(&argv[3], "both");
        bool out = arg_eq(&argv[3], "out") || arg_eq(&argv[3], "both");
        if (!in && !out && !arg_eq(&argv[3], "none")) {
            reply_error(c, "ERR fault direction must be in, out, both or none");
            return;
        }
        if (peer_transport_set_fault(cn->pt, id, in, out) != RK_OK) {
            reply_error(c, "ERR cannot set fault");
            return;
        }
        rk_log(RK_LOG_WARN, "fault_injected", "peer=%s in=%d out=%d", id, in,
               out);
        reply_ok(c);
#else
        reply_error(c,
                    "ERR fault injection is compiled only into test builds "
                    "(RK_TEST_BUILD)");
#endif
    } else {
        reply_errorf(c,
                     "ERR unknown subcommand or wrong number of arguments for "
                     "'%.*s'. Try JOIN HOST:PEERPORT, LEAVE, REMOVE NODE, "
                     "STATUS.",
                     (int)(sub->len > 64 ? 64 : sub->len), sub->ptr);
    }
}

void cluster_info(struct server *s, struct rk_buf *out)
{
    struct cnode *cn = s->cluster;
    char b[2048];
    if (cn == NULL) {
        int n = snprintf(b, sizeof(b), "cluster_enabled:0\r\n");
        rk_buf_append(out, b, (size_t)n);
        return;
    }
    static const char *phases[] = {"none", "joining", "member", "removed"};
    enum membership_phase ph = membership_phase(cn->mem);
    const struct ring *r = membership_ring(cn->mem);
    int me = r ? ring_find_member(r, cn->node_id, strlen(cn->node_id)) : -1;
    struct coord_stats cs;
    coord_stats(cn->coord, &cs);
    struct peer_transport_stats ts;
    peer_transport_stats(cn->pt, NULL, &ts);
    int n =
        snprintf(b, sizeof(b),
                 "cluster_enabled:1\r\n"
                 "cluster_name:%s\r\n"
                 "node_id:%s\r\n"
                 "peer_port:%u\r\n"
                 "cluster_phase:%s\r\n"
                 "cluster_state_version:%" PRIu64
                 "\r\n"
                 "cluster_members:%zu\r\n"
                 "cluster_members_up:%zu\r\n"
                 "cluster_ring_size:%" PRIu32
                 "\r\n"
                 "cluster_ring_digest:%016" PRIx64
                 "\r\n"
                 "cluster_agreement:%d\r\n"
                 "cluster_partitions_owned:%zu\r\n"
                 "cluster_n:%" PRIu32
                 "\r\n"
                 "cluster_r:%" PRIu32
                 "\r\n"
                 "cluster_w:%" PRIu32
                 "\r\n"
                 "coord_requests:%" PRIu64
                 "\r\n"
                 "coord_inflight:%zu\r\n"
                 "coord_noquorum:%" PRIu64
                 "\r\n"
                 "replica_puts:%" PRIu64
                 "\r\n"
                 "replica_gets:%" PRIu64
                 "\r\n"
                 "peers_connected:%zu\r\n"
                 "peer_frames_out:%" PRIu64
                 "\r\n"
                 "peer_frames_in:%" PRIu64
                 "\r\n"
                 "cluster_persist_errors:%" PRIu64 "\r\n",
                 membership_cluster_name(cn->mem), cn->node_id, cn->peer_port,
                 phases[ph <= MEMBERSHIP_REMOVED_SELF ? ph : 0],
                 membership_version(cn->mem), cn->valid_members, members_up(cn),
                 r ? ring_size(r) : 0, r ? ring_digest(r) : 0,
                 cluster_agrees(cn) ? 1 : 0,
                 me >= 0 ? ring_owned_count(r, (size_t)me) : 0, cn->n_eff,
                 cn->r_eff, cn->w_eff, cs.started, coord_inflight(cn->coord),
                 cs.noquorum_timeout + cs.noquorum_early, cn->replica_puts,
                 cn->replica_gets, ts.n_connected, ts.frames_out, ts.frames_in,
                 cn->persist_errors);
    rk_buf_append(out, b, (size_t)n);
    const struct replica_stats *rs = &cn->rstats;
    n = snprintf(
        b, sizeof(b),
        "dvv_actor:%016" PRIx64
        "\r\n"
        "dvv_epoch:%" PRIu64
        "\r\n"
        "conflict_policy:%s\r\n"
        "replica_updates:%" PRIu64
        "\r\n"
        "replica_merges_written:%" PRIu64
        "\r\n"
        "lww_discards:%" PRIu64
        "\r\n"
        "siblings_dropped_by_bound:%" PRIu64
        "\r\n"
        "clock_entries_pruned:%" PRIu64
        "\r\n"
        "bad_objects:%" PRIu64
        "\r\n"
        "read_repairs:%" PRIu64
        "\r\n"
        "sloppy_quorum:%s\r\n"
        "hints_pending:%" PRIu64
        "\r\n"
        "hints_stored:%" PRIu64
        "\r\n"
        "hints_delivered:%" PRIu64
        "\r\n"
        "tombstone_gc_grace_s:%" PRIu64
        "\r\n"
        "tombstones_reaped:%" PRIu64
        "\r\n"
        "clock_ahead_events:%" PRIu64
        "\r\n"
        "clock_ahead_max_ms:%" PRIu64 "\r\n",
        cn->actor, cn->epoch, cn->rcfg.lww ? "lww" : "siblings", rs->updates,
        rs->merges_written, rs->lww_discards, rs->bound_dropped,
        rs->clock_pruned, rs->bad_objects + cs.bad_answers, cs.read_repairs,
        s->cfg->sloppy_quorum ? "on" : "off", hints_pending(cn),
        cn->hints_stored, cn->hints_delivered, s->cfg->tombstone_gc_grace_s,
        cn->tombstones_reaped, rs->clock_ahead, rs->clock_ahead_max_ms);
    rk_buf_append(out, b, (size_t)n);
}

void cluster_config_changed(struct server *s)
{
    if (s->cluster) {
        struct cnode *cn = s->cluster;
        cn->rcfg.lww = s->cfg->conflict_lww;
        cn->rcfg.max_sibs = s->cfg->max_siblings;
        cn->rcfg.grace_ms = s->cfg->tombstone_gc_grace_s * 1000;
        cn->rcfg.max_skew_ms = s->cfg->max_clock_skew_ms;
        recompute(cn);
    }
}

/* ---- start / stop
 * ------------------------------------------------------------ */

/* Reads DATA_DIR/NODE_ID into out (CL_ID_MAX + 1 bytes).  RK_OK,
 * RK_ENOTFOUND (no file), RK_EINVAL (not a valid id) or a read error. */
static int read_node_id(const char *dir, char *out)
{
    struct rk_buf b;
    rk_buf_init(&b);
    int rc = read_file(dir, NODE_ID_FILE, &b);
    if (rc == RK_OK) {
        size_t n = b.len;
        while (n && (b.base[n - 1] == '\n' || b.base[n - 1] == '\r')) {
            n--;
        }
        if (ring_member_id_is_valid(b.base, n)) {
            memcpy(out, b.base, n);
            out[n] = '\0';
        } else {
            rc = RK_EINVAL;
        }
    }
    rk_buf_fini(&b);
    return rc;
}

/* The id a node without NODE_ID takes: --node-id, else BIND:PEERPORT. */
static void default_node_id(const struct rk_config *cfg, char *out, size_t len)
{
    int pp = cfg->peer_port ? cfg->peer_port : cfg->port + 2;
    if (cfg->node_id[0]) {
        snprintf(out, len, "%s", cfg->node_id);
    } else {
        snprintf(out, len, "%.50s:%d", cfg->bind, pp);
    }
}

void cluster_peek_node_id(const struct rk_config *cfg, char *out, size_t len)
{
    char id[CL_ID_MAX + 1];
    if (read_node_id(cfg->data_dir, id) == RK_OK) {
        snprintf(out, len, "%s", id);
    } else {
        default_node_id(cfg, out, len);
    }
}

static int load_node_id(struct server *s,
                        struct cnode *cn,
                        char *err,
                        size_t errlen)
{
    int rc = read_node_id(cn->dir, cn->node_id);
    if (rc == RK_EINVAL) {
        snprintf(err, errlen, "%s/%s holds an invalid node id", cn->dir,
                 NODE_ID_FILE);
        return RK_EINVAL;
    }
    if (rc == RK_OK) {
        if (s->cfg->node_id[0] && strcmp(s->cfg->node_id, cn->node_id) != 0) {
            snprintf(err, errlen,
                     "--node-id %s differs from the id %s kept in %s/%s (a "
                     "node keeps its id; use another data dir for a new node)",
                     s->cfg->node_id, cn->node_id, cn->dir, NODE_ID_FILE);
            return RK_EINVAL;
        }
        return RK_OK;
    }
    if (rc != RK_ENOTFOUND) {
        snprintf(err, errlen, "cannot read %s/%s", cn->dir, NODE_ID_FILE);
        return rc;
    }
    default_node_id(s->cfg, cn->node_id, sizeof(cn->node_id));
    if (!ring_member_id_is_valid(cn->node_id, strlen(cn->node_id))) {
        snprintf(err, errlen, "invalid node id '%s'", cn->node_id);
        return RK_EINVAL;
    }
    char line[CL_ID_MAX + 2];
    int n = snprintf(line, sizeof(line), "%s\n", cn->node_id);
    if (write_file_atomic(cn->dir, NODE_ID_FILE, line, (size_t)n) != RK_OK) {
        snprintf(err, errlen, "cannot write %s/%s: %s", cn->dir, NODE_ID_FILE,
                 strerror(errno));
        return RK_EIO;
    }
    return RK_OK;
}

/*
 * Reads EPOCH, adds one and writes it back (fsynced) before this run
 * issues any version: the actor id of this run is XXH3(node id, epoch),
 * so a node that restarts after losing unsynced writes never reuses a dot
 * (dvv.h).  Also loads the VERSIONED marker and the replica settings.
 */
static int load_epoch(struct cnode *cn, char *err, size_t errlen)
{
    struct rk_config *cfg = cn->srv->cfg;
    struct rk_buf b;
    rk_buf_init(&b);
    int rc = read_file(cn->dir, EPOCH_FILE, &b);
    uint64_t epoch = 0;
    if (rc == RK_OK) {
        char tmp[32];
        size_t l = b.len < sizeof(tmp) - 1 ? b.len : sizeof(tmp) - 1;
        memcpy(tmp, b.base, l);
        tmp[l] = '\0';
        char *end = NULL;
        epoch = strtoull(tmp, &end, 10);
        if (end == tmp || (*end != '\n' && *end != '\0')) {
            snprintf(err, errlen, "%s/%s is not a number", cn->dir, EPOCH_FILE);
            rk_buf_fini(&b);
            return RK_EINVAL;
        }
    } else if (rc != RK_ENOTFOUND) {
        snprintf(err, errlen, "cannot read %s/%s", cn->dir, EPOCH_FILE);
        rk_buf_fini(&b);
        return rc;
    }
    rk_buf_clear(&b);
    rc = read_file(cn->dir, VERSIONED_FILE, &b);
    cn->versioned = rc == RK_OK;
    rk_buf_fini(&b);
    cn->epoch = epoch + 1;
    char line[32];
    int n = snprintf(line, sizeof(line), "%" PRIu64 "\n", cn->epoch);
    if (write_file_atomic(cn->dir, EPOCH_FILE, line, (size_t)n) != RK_OK) {
        snprintf(err, errlen, "cannot write %s/%s: %s", cn->dir, EPOCH_FILE,
                 strerror(errno));
        return RK_EIO;
    }
    /* The epoch alone is not enough: a wiped or restored data dir starts
     * again from an old epoch.  64 random bits per start make the actor
     * new whatever the disk says. */
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce)) {
        nonce = server_now_ms() ^ ((uint64_t)getpid() << 32) ^ server_mono_us();
    }
    char seed[CL_ID_MAX + 64];
    n = snprintf(seed, sizeof(seed), "%s/%" PRIu64 "/%016" PRIx64, cn->node_id,
                 cn->epoch, nonce);
    cn->actor = XXH3_64bits(seed, (size_t)n) & ~REPLICA_META_OBJECT;
    if (cn->actor == DVV_ACTOR_LEGACY) {
        cn->actor = 1;
    }
    cn->rcfg = (struct replica_cfg){
        .actor = cn->actor,
        .floor = &cn->floor,
        .oneshot = &cn->oneshot,
        .lww = cfg->conflict_lww,
        .max_sibs = cfg->max_siblings,
        .max_clock = DVV_DEFAULT_CLOCK,
        .grace_ms = cfg->tombstone_gc_grace_s * 1000,
        .max_skew_ms = cfg->max_clock_skew_ms,
        .stats = &cn->rstats,
    };
    return RK_OK;
}

/* Hint store wake-ups go through the server's durability eventfd. */
static void hints_durable(void *data, uint64_t seq)
{
    (void)seq;
    struct server *s = data;
    uint64_t one = 1;
    ssize_t n = write(s->durable_efd, &one, sizeof(one));
    (void)n;
}

/* Opens the hint store: DATA_DIR/hints, the same engine kind and sync
 * policy as the data. */
static int open_hints(struct cnode *cn, char *err, size_t errlen)
{
    struct rk_config *cfg = cn->srv->cfg;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/hints", cn->dir);
    struct engine_opts eo;
    engine_opts_init(&eo);
    eo.dir = dir;
    eo.sync_mode = cfg->sync_mode;
    eo.sync_interval_ms = cfg->sync_interval_ms;
    eo.max_value_len = cfg->proto_max_bulk_len + 65536;
    eo.max_key_len = ENGINE_DEFAULT_MAX_KEY; /* keys within 65 bytes of the
                                                limit cannot be hinted */
    eo.durable_cb = hints_durable;
    eo.durable_data = cn->srv;
    char eerr[512] = "";
    int rc = engine_open(cfg->engine, &eo, &cn->hints, eerr, sizeof(eerr));
    if (rc != RK_OK) {
        snprintf(err, errlen, "cannot open the hint store %s: %s", dir,
                 eerr[0] ? eerr : rk_strerror(rc));
        return rc;
    }
    cn->hd = rk_calloc(HD_SLOTS, sizeof(*cn->hd));
    cn->gc = rk_calloc(GC_SLOTS, sizeof(*cn->gc));
    if (cn->hd == NULL || cn->gc == NULL) {
        snprintf(err, errlen, "out of memory");
        return RK_ENOMEM;
    }
    for (size_t i = 0; i < HD_SLOTS; i++) {
        rk_buf_init(&cn->hd[i].hkey);
    }
    for (size_t i = 0; i < GC_SLOTS; i++) {
        rk_buf_init(&cn->gc[i].hkey);
    }
    return RK_OK;
}

int cluster_start(struct server *s, char *err, size_t errlen)
{
    struct rk_config *cfg = s->cfg;
    struct cnode *cn = rk_calloc(1, sizeof(*cn));
    if (cn == NULL) {
        snprintf(err, errlen, "out of memory");
        return RK_ENOMEM;
    }
    cn->srv = s;
    s->cluster = cn;
    rk_buf_init(&cn->valbuf);
    snprintf(cn->dir, sizeof(cn->dir), "%s", cfg->data_dir);
    if (mkdir(cn->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", cn->dir, strerror(errno));
        return RK_EIO;
    }
    int pp = cfg->peer_port ? cfg->peer_port : cfg->port + 2;
    if (pp > 65535) {
        snprintf(err, errlen, "peer port %d out of range (set --peer-port)",
                 pp);
        return RK_EINVAL;
    }
    int rc = load_node_id(s, cn, err, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    struct peer_transport_config tc = {
        .self_id = cn->node_id,
        .cluster_name = cfg->cluster_name,
        .bind_host = cfg->bind,
        .peer_port = (uint16_t)pp,
        .resp_port = (uint16_t)cfg->port,
        .http_port = (uint16_t)(cfg->http_port > 0       ? cfg->http_port
                                : cfg->http_port < 0     ? 0
                                : cfg->port + 1 <= 65535 ? cfg->port + 1
                                                         : 0),
    };
    struct peer_transport_cbs cbs = {
        .on_message = on_peer_message,
        .on_peer_connected = on_peer_connected,
        .on_peer_disconnected = on_peer_disconnected,
    };
    rc = peer_transport_create(s->base, &tc, &cbs, cn, &cn->pt, err, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    cn->peer_port = peer_transport_port(cn->pt);
    struct rk_buf saved;
    rk_buf_init(&saved);
    rc = load_epoch(cn, err, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    rc = read_file(cn->dir, STATE_FILE, &saved);
    if (rc != RK_OK && rc != RK_ENOTFOUND) {
        snprintf(err, errlen, "cannot read %s/%s", cn->dir, STATE_FILE);
        rk_buf_fini(&saved);
        return rc;
    }
    struct membership_config mc = {
        .node_id = cn->node_id,
        .host = cfg->bind,
        .resp_port = (uint16_t)cfg->port,
        .http_port = tc.http_port,
        .peer_port = cn->peer_port,
        .cluster_name = cfg->cluster_name,
        .ring_size = cfg->ring_size,
        .n_val = cfg->n_val,
        .seed = server_now_ms() ^ ((uint64_t)getpid() << 32),
    };
    rc = membership_create(&mc, rc == RK_OK ? saved.base : NULL,
                           rc == RK_OK ? saved.len : 0, &cn->mem, err, errlen);
    rk_buf_fini(&saved);
    if (rc != RK_OK) {
        return rc;
    }
    struct swim_config sc = {
        .node_id = cn->node_id,
        .incarnation = server_now_ms(),
        .seed = server_now_ms() * 2654435761u ^ (uint64_t)getpid(),
    };
    rc = swim_create(&sc, &cn->swim);
    if (rc == RK_OK) {
        rc = coord_create(cn->node_id, COORD_SLOTS, &cn->coord);
    }
    if (rc == RK_OK) {
        struct engine_opts eo;
        engine_opts_init(&eo);
        eo.sync_mode = ENGINE_SYNC_NONE;
        eo.max_value_len = cfg->proto_max_bulk_len + 65536; /* + object */
        char eerr[256];
        rc = engine_open("memory", &eo, &cn->scratch, eerr, sizeof(eerr));
    }
    if (rc == RK_OK) {
        rc = open_hints(cn, err, errlen);
        if (rc != RK_OK) {
            return rc;
        }
    }
    if (rc != RK_OK) {
        snprintf(err, errlen, "cluster set-up failed: %s", rk_strerror(rc));
        return rc;
    }
    if (membership_phase(cn->mem) == MEMBERSHIP_NONE) {
        rc = membership_create_cluster(cn->mem, now_mono(), &cn->acts);
        if (rc != RK_OK) {
            snprintf(err, errlen, "cannot create the cluster: %s",
                     membership_errmsg(cn->mem));
            return rc;
        }
    }
    run_cl_actions(cn);
    recompute(cn);
    cn->resume_ev = event_new(s->base, -1, 0, resume_cb, cn);
    cn->timer = event_new(s->base, -1, EV_PERSIST, timer_cb, cn);
    struct timeval tv = {0, CLUSTER_TICK_MS * 1000};
    if (cn->resume_ev == NULL || cn->timer == NULL ||
        event_add(cn->timer, &tv) != 0) {
        snprintf(err, errlen, "cannot arm the cluster timer");
        return RK_ENOMEM;
    }
    rk_log(RK_LOG_INFO, "cluster_start",
           "node_id=%s peer_port=%u cluster=%s phase=%d version=%" PRIu64
           " members=%zu",
           cn->node_id, cn->peer_port, membership_cluster_name(cn->mem),
           (int)membership_phase(cn->mem), membership_version(cn->mem),
           cn->valid_members);
    return RK_OK;
}

void cluster_stop(struct server *s)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL) {
        return;
    }
    if (cn->timer) {
        event_free(cn->timer);
    }
    if (cn->resume_ev) {
        event_free(cn->resume_ev);
    }
    peer_transport_destroy(cn->pt);
    coord_destroy(cn->coord);
    swim_destroy(cn->swim);
    membership_destroy(cn->mem);
    if (cn->scratch) {
        engine_close(cn->scratch);
    }
    if (cn->hints) {
        engine_close(cn->hints);
    }
    for (size_t i = 0; cn->hd && i < HD_SLOTS; i++) {
        rk_buf_fini(&cn->hd[i].hkey);
    }
    rk_free(cn->hd);
    for (size_t i = 0; cn->gc && i < GC_SLOTS; i++) {
        rk_buf_fini(&cn->gc[i].hkey);
    }
    rk_free(cn->gc);
    rk_buf_fini(&cn->valbuf);
    rk_free(cn->seen);
    rk_free(cn->acks);
    rk_free(cn->held);
    rk_free(cn->gone);
    rk_free(cn);
    s->cluster = NULL;
}

/* ---- HTTP views (http.c) ------------------------------------------------- */

const char *cluster_node_id(struct server *s)
{
    return s->cluster ? s->cluster->node_id : "";
}

const char *cluster_unavailable_reason(struct server *s)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL) {
        return NULL;
    }
    switch (membership_phase(cn->mem)) {
        case MEMBERSHIP_JOINING:
            return "joining a cluster";
        case MEMBERSHIP_REMOVED_SELF:
            return "not a member of a cluster (it left or was removed)";
        default:
            return NULL;
    }
}

json_t *cluster_json(struct server *s)
{
    struct cnode *cn = s->cluster;
    static const char *phases[] = {"none", "joining", "member", "removed"};
    if (cn == NULL) {
        return json_pack("{s:b}", "enabled", 0);
    }
    enum membership_phase ph = membership_phase(cn->mem);
    const struct ring *r = membership_ring(cn->mem);
    json_t *members = json_array();
    size_t m = membership_member_count(cn->mem);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(cn->mem, i, &mm);
        int idx = r ? ring_find_member(r, mm.node_id, strlen(mm.node_id)) : -1;
        bool self = strcmp(mm.node_id, cn->node_id) == 0;
        bool valid = mm.status == MEMBERSHIP_VALID;
        struct peer_seen *ps =
            self ? NULL : seen_find(cn, mm.node_id, strlen(mm.node_id), false);
        json_t *o = json_pack(
            "{s:s, s:s, s:i, s:i, s:i, s:s, s:i, s:s, s:b, s:b}", "node_id",
            mm.node_id, "host", mm.host, "resp_port", (int)mm.resp_port,
            "http_port", (int)mm.http_port, "peer_port", (int)mm.peer_port,
            "status", valid ? "valid" : "removed", "partitions",
            idx >= 0 ? (int)ring_owned_count(r, (size_t)idx) : 0, "seen",
            seen_as(cn, mm.node_id), "up",
            valid && (self || peer_is_up(cn, mm.node_id)), "self", self);
        if (o && (self || ps)) {
            json_object_set_new(
                o, "state_version",
                json_integer((json_int_t)(self ? membership_version(cn->mem)
                                               : ps->version)));
        }
        json_array_append_new(members, o);
    }
    char digest[20];
    snprintf(digest, sizeof(digest), "%016" PRIx64, r ? ring_digest(r) : 0);
    /* partition -> index into members (for the status page's ring) */
    json_t *owners = json_array();
    for (uint32_t p = 0; r && p < ring_size(r); p++) {
        size_t l;
        const char *id = ring_member_id(r, ring_owner(r, p), &l);
        long at = -1;
        for (size_t i = 0; i < m && at < 0; i++) {
            struct membership_member mm;
            membership_member_get(cn->mem, i, &mm);
            if (strlen(mm.node_id) == l && memcmp(mm.node_id, id, l) == 0) {
                at = (long)i;
            }
        }
        json_array_append_new(owners, json_integer(at));
    }
    json_t *j = json_pack(
        "{s:b, s:s, s:s, s:s, s:I, s:o, s:{s:i, s:s}, s:b, s:i, s:i, s:i, "
        "s:I, s:I, s:b}",
        "enabled", 1, "cluster_name", membership_cluster_name(cn->mem),
        "node_id", cn->node_id, "phase",
        phases[ph <= MEMBERSHIP_REMOVED_SELF ? ph : 0], "state_version",
        (json_int_t)membership_version(cn->mem), "members", members, "ring",
        "size", r ? (int)ring_size(r) : 0, "digest", digest, "agreement",
        cluster_agrees(cn), "n", (int)cn->n_eff, "r", (int)cn->r_eff, "w",
        (int)cn->w_eff, "hints_pending", (json_int_t)hints_pending(cn),
        "members_up", (json_int_t)members_up(cn), "sloppy_quorum",
        s->cfg->sloppy_quorum);
    json_t *ringj = j ? json_object_get(j, "ring") : NULL;
    if (ringj) {
        json_object_set_new(ringj, "owners", owners);
    } else {
        json_decref(owners);
    }
    return j;
}

/* The upper bound of the bucket holding quantile q of h, or -1 (empty). */
static double hist_quantile(const struct lat_hist *h, double q)
{
    if (h->count == 0) {
        return -1;
    }
    uint64_t want = (uint64_t)((double)h->count * q + 0.999999), cum = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        cum += h->le[i];
        if (cum >= want) {
            return lat_bounds_s[i];
        }
    }
    return lat_bounds_s[LAT_BUCKETS - 1];
}

json_t *cluster_latency_json(struct server *s)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL) {
        return NULL;
    }
    json_t *j = json_object();
    static const char *names[2] = {"read", "write"};
    for (int i = 0; i < 2; i++) {
        char k[64];
        const struct lat_hist *h = &cn->coord_lat[i];
        double p50 = hist_quantile(h, 0.5), p99 = hist_quantile(h, 0.99);
        snprintf(k, sizeof(k), "coordinator_%s_p50_seconds", names[i]);
        json_object_set_new(j, k, p50 < 0 ? json_null() : json_real(p50));
        snprintf(k, sizeof(k), "coordinator_%s_p99_seconds", names[i]);
        json_object_set_new(j, k, p99 < 0 ? json_null() : json_real(p99));
        snprintf(k, sizeof(k), "coordinator_%s_count", names[i]);
        json_object_set_new(j, k, json_integer((json_int_t)h->count));
    }
    return j;
}

/* ---- metrics (metrics.c) ---------------------------------------------------
 */

void cluster_metrics(struct server *s, struct rk_buf *out)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL) {
        return;
    }
    struct coord_stats cs;
    coord_stats(cn->coord, &cs);
    const struct replica_stats *rs = &cn->rstats;
    static const char *cls[2] = {"class=\"read\"", "class=\"write\""};
    metrics_family(out, "ringkv_coordinator_request_duration_seconds",
                   "histogram",
                   "Coordinated commands, from arrival to answer, by class.");
    for (int i = 0; i < 2; i++) {
        metrics_hist(out, "ringkv_coordinator_request_duration_seconds", cls[i],
                     &cn->coord_lat[i]);
    }
    metrics_family(out, "ringkv_coordinator_request_errors_total", "counter",
                   "Coordinated commands answered with an error, by class.");
    for (int i = 0; i < 2; i++) {
        metrics_u64(out, "ringkv_coordinator_request_errors_total", cls[i],
                    cn->coord_failed[i]);
    }
    metrics_family(out, "ringkv_replica_request_duration_seconds", "histogram",
                   "Replica work for peer requests (KV_GET read, KV_PUT and "
                   "KV_UPDATE write), by class.");
    for (int i = 0; i < 2; i++) {
        metrics_hist(out, "ringkv_replica_request_duration_seconds", cls[i],
                     &cn->replica_lat[i]);
    }
    metrics_one(out, "ringkv_quorum_failures_total", "counter",
                "Requests answered NOQUORUM (timeout or too many failures).",
                cs.noquorum_timeout + cs.noquorum_early);
    metrics_one(out, "ringkv_coordinator_replica_requests_total", "counter",
                "Per-key replica requests this coordinator started.",
                cs.started);
    metrics_one(out, "ringkv_replica_puts_total", "counter",
                "KV_PUT merges received from peers.", cn->replica_puts);
    metrics_one(out, "ringkv_replica_gets_total", "counter",
                "KV_GET reads received from peers.", cn->replica_gets);
    metrics_one(out, "ringkv_replica_updates_total", "counter",
                "KV_UPDATE writes received from peers.", cn->replica_updates);
    metrics_one(out, "ringkv_read_repairs_total", "counter",
                "Objects sent by read repair.", cs.read_repairs);
    metrics_one(out, "ringkv_hints_pending", "gauge",
                "Hinted writes held for owners that are down.",
                hints_pending(cn));
    metrics_one(out, "ringkv_hints_stored_total", "counter",
                "Hinted writes stored.", cn->hints_stored);
    metrics_one(out, "ringkv_hints_delivered_total", "counter",
                "Hints delivered to their owner and deleted.",
                cn->hints_delivered);
    metrics_one(out, "ringkv_siblings_created_total", "counter",
                "Replica writes that left a key with more siblings.",
                rs->siblings_created);
    metrics_one(out, "ringkv_siblings_resolved_total", "counter",
                "Replica writes that left a key with fewer siblings.",
                rs->siblings_resolved);
    metrics_one(out, "ringkv_lww_discards_total", "counter",
                "Siblings discarded by conflict_policy lww.", rs->lww_discards);
    metrics_one(out, "ringkv_siblings_dropped_by_bound_total", "counter",
                "Siblings dropped by the per-key bound (max_siblings).",
                rs->bound_dropped);
    metrics_one(out, "ringkv_tombstones_reaped_total", "counter",
                "Tombstones reaped after the grace.", cn->tombstones_reaped);
    metrics_one(out, "ringkv_clock_ahead_events_total", "counter",
                "Writes timestamped beyond max_clock_skew_ms ahead.",
                rs->clock_ahead);
    metrics_one(out, "ringkv_gossip_messages_received_total", "counter",
                "Cluster-state gossip messages received.", cn->gossip_in);
    metrics_one(out, "ringkv_gossip_messages_sent_total", "counter",
                "Cluster-state gossip messages sent (gossip rounds and "
                "state-change broadcasts).",
                cn->gossip_out);
    metrics_one(out, "ringkv_cluster_members", "gauge",
                "Valid members in this node's cluster state.",
                cn->valid_members);
    metrics_one(out, "ringkv_cluster_members_up", "gauge",
                "Valid members this node sees up (itself included).",
                members_up(cn));
    metrics_one(out, "ringkv_cluster_ring_agreement", "gauge",
                "1 when every member up gossiped this node's exact state.",
                cluster_agrees(cn) ? 1 : 0);
    metrics_family(out, "ringkv_peer_up", "gauge",
                   "1 when this node sees the peer up, by peer node id.");
    size_t m = membership_member_count(cn->mem);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(cn->mem, i, &mm);
        if (mm.status != MEMBERSHIP_VALID ||
            strcmp(mm.node_id, cn->node_id) == 0) {
            continue;
        }
        char l[CL_ID_MAX * 2 + 16];
        size_t w = 0;
        w += (size_t)snprintf(l, sizeof(l), "peer=\"");
        for (const char *p = mm.node_id; *p && w < sizeof(l) - 4; p++) {
            if (*p == '"' || *p == '\\') {
                l[w++] = '\\';
            }
            l[w++] = *p;
        }
        l[w++] = '"';
        l[w] = '\0';
        metrics_u64(out, "ringkv_peer_up", l,
                    peer_is_up(cn, mm.node_id) ? 1 : 0);
    }
}
