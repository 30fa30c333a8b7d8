/*
 * cluster.c - see cluster.h.  The driver of the sans-IO node machine
 * (cluster/node.h, DESIGN.md 2a) and the coordinated commands of clients:
 *
 *   peer_transport --on_message-->     node_on_message
 *                  --connected/lost--> node_on_peer_up / node_on_peer_down
 *   engine durable eventfd ---------->  node_on_durable
 *   a 10 ms timer ------------------->  node_on_tick
 *   node actions: SEND -> peer_transport_send_frame (failures fed back
 *   with node_on_send_failed once the list is consumed), REPLY -> the
 *   client operation's key, PERSIST -> files in the data dir, JOIN_* ->
 *   the waiting RINGKV.CLUSTER JOIN, LOG -> rk_log.
 *
 * A node action list is valid only until the next call into the node, so
 * REPLY actions only record results in the client's operation and queue
 * it on `ready`; operations advance (start more requests, run the
 * handler, answer the client) only after the actions are consumed.
 *
 * A coordinated command (struct cop) goes through:
 *   READ   node_read for each distinct key (skipped for blind writes such
 *          as a plain SET or MSET), at most COP_WINDOW in flight;
 *   EXEC   the ordinary handler runs against the command's coordinated
 *          keyspace (keyspace.h): the live versions read, its writes
 *          recorded per key; its reply captured;
 *   WRITE  node_write of every key whose record the handler changed (new
 *          timestamp) or removed (a tombstone): the node has the key's
 *          coordinating replica issue the dot and sends the object to W
 *          of N replicas;
 *   DONE   the captured reply, or the error of the first failed request,
 *          is appended to the client's output.
 * The HLC observes every timestamp read before the handler runs, so a
 * read-modify-write (INCR, APPEND, SET ... GET) always writes a version
 * newer than the one it read.
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
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cluster/coord.h"
#include "cluster/dvv.h"
#include "cluster/membership.h"
#include "cluster/node.h"
#include "cluster/replica.h"
#include "cluster/ring.h"
#include "cluster/route.h"
#include "cluster/swim.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/env_real.h"
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
#define CLIENT_PIPELINE 64 /* coordinated commands in flight per client */
#define MAX_SEND_FAILS  256

enum cop_kind
{
    COP_KEYS = 1, /* a coordinated key command */
    COP_JOIN,     /* RINGKV.CLUSTER JOIN waiting for admission */
    COP_DEFER,    /* a command that must wait for the ones before it */
};

/* A coordinated command reads its keys (unless it is a blind write), runs
 * its handler over its coordinated keyspace, then writes every key it changed
 * (WRITE: node_write), answering after W. */
enum cop_phase
{
    PH_READ = 1,
    PH_WRITE,
    PH_DONE,
};

struct cop_key
{
    size_t off, len;   /* into cop->kbuf */
    uint64_t op_id;    /* node operation in flight for this key */
    uint8_t state;     /* 0 not started, 1 in flight, 2 done */
    bool live;         /* a live value exists (read, then as the
                          handler leaves it) */
    bool live0;        /* live when read */
    bool read;         /* read: answered (ctx holds the merged clock) */
    bool write;        /* write phase: this key is written */
    bool tomb;         /* write phase: as a tombstone */
    bool own_ctx;      /* write: supersede what the coordinating replica
                          has seen (no read context) */
    bool ctype;        /* val starts with a content type (dvv.h) */
    uint64_t ts, exp;  /* read: its version; write: what to write */
    struct rk_buf val; /* read: the value; write: what to write */
    struct rk_buf obj; /* read: merged object */
    struct rk_buf ctx; /* write: context (clock-only dvv encoding) */
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
    char err[NODE_MESSAGE_MAX];
    struct rk_buf reply; /* captured handler output */
    struct keyspace ks;  /* the handler's view of the keys */
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

/* A SEND the transport refused, fed back after the action list. */
struct send_fail
{
    uint64_t req_id;
    int status;
    char node[CL_ID_MAX + 1];
};

struct cnode
{
    struct server *srv;
    struct peer_transport *pt;
    struct node *node;
    struct rk_env env;
    struct env_real_state env_state;
    struct event *timer;
    /* Clients whose coordinated replies are ready: resumed (parsed and
     * flushed) once per loop pass, so a pipeline's replies share a write. */
    struct event *resume_ev;
    struct client *resume_head, *resume_tail;
    char node_id[CL_ID_MAX + 1];
    uint16_t peer_port;
    char dir[4096];
    bool in_ready;
    bool in_actions;
    struct cop *ready;
    struct cop *stalled;
    struct cop *join_op;
    /* versions (issue 5) */
    uint64_t epoch; /* starts of this data dir (EPOCH file) */
    uint64_t actor; /* dvv actor of this run: XXH3(node id, epoch, nonce) */
    bool versioned; /* has been in a cluster: keys are objects */
    /* hinted handoff: the hint store DATA_DIR/hints (node_hints.c) */
    struct engine *hints;
    struct lat_hist coord_lat[2];   /* [0] reads, [1] writes (commands) */
    uint64_t coord_failed[2];       /* of them, answered with an error */
    struct lat_hist replica_lat[2]; /* [0] KV_GET, [1] KV_PUT/KV_UPDATE */
    uint64_t persist_errors;
};

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

/* ---- the node's actions ------------------------------------------------- */

static bool peer_is_up(struct cnode *cn, const char *id)
{
    return node_peer_is_up(cn->node, id);
}

static const char *seen_as(struct cnode *cn, const char *id)
{
    if (strcmp(id, cn->node_id) == 0) {
        return "self";
    }
    enum swim_status st;
    if (!swim_member_status(node_swim(cn->node), id, &st, NULL)) {
        return "-";
    }
    return swim_status_name(st);
}

static struct cop *op_new(struct client *c,
                          const struct command *cmd,
                          size_t argc,
                          const struct resp_arg *argv);
static void op_free(struct cop *op);
static void unlink_op(struct cnode *cn, struct cop *op);
static void resume_forget(struct cnode *cn, struct client *c);
static void process_ready(struct cnode *cn);
static void op_queue(struct cnode *cn, struct cop *op);
static void on_node_reply(struct cnode *cn, const struct node_result *r);

/* The JOIN waiting for admission ends with `line` (a RESP reply). */
static void join_finish(struct cnode *cn, const char *line, size_t len)
{
    if (cn->join_op == NULL) {
        return;
    }
    struct cop *op = cn->join_op;
    cn->join_op = NULL;
    rk_buf_append(&op->reply, line, len);
    op->phase = PH_DONE;
    op_queue(cn, op);
}

/*
 * Performs the actions of the last call into the node.  SENDs the
 * transport refuses are fed back with node_on_send_failed only after the
 * whole list was consumed (the list dies with the next call), which
 * yields a new list, performed the same way.
 */
static void run_node_actions(struct cnode *cn)
{
    {
        const struct node_action *acts;
        size_t n = node_actions(cn->node, &acts);
        struct send_fail fails[MAX_SEND_FAILS];
        size_t n_fails = 0;
        for (size_t i = 0; i < n; i++) {
            const struct node_action *a = &acts[i];
            switch (a->type) {
                case NODE_SEND: {
                    int rc = peer_transport_send_frame(
                        cn->pt, a->to[0] ? a->to : NULL, a->host,
                        a->host ? a->port : 0, a->frame.ptr, a->frame.len);
                    if (rc != RK_OK) {
                        rk_log(RK_LOG_DEBUG, "peer_send_failed",
                               "node=%s error=%s", a->to[0] ? a->to : "-",
                               rk_errname(rc));
                        if (a->req_id != 0 && n_fails < MAX_SEND_FAILS &&
                            strlen(a->to) <= CL_ID_MAX) {
                            struct send_fail *f = &fails[n_fails++];
                            f->req_id = a->req_id;
                            f->status = rc;
                            snprintf(f->node, sizeof(f->node), "%s", a->to);
                        }
                    }
                    break;
                }
                case NODE_REPLY:
                    on_node_reply(cn, &a->result);
                    break;
                case NODE_PERSIST: {
                    const char *file = a->file == NODE_FILE_STATE
                                           ? STATE_FILE
                                           : VERSIONED_FILE;
                    if (write_file_atomic(cn->dir, file, a->bytes.ptr,
                                          a->bytes.len) != RK_OK) {
                        cn->persist_errors++;
                        rk_log(RK_LOG_ERROR, "cluster_persist_failed",
                               "dir=%s file=%s errno=%d", cn->dir, file, errno);
                    }
                    if (a->file == NODE_FILE_VERSIONED) {
                        cn->versioned = true;
                    }
                    break;
                }
                case NODE_JOIN_DONE:
                    join_finish(cn, "+OK\r\n", 5);
                    break;
                case NODE_JOIN_FAILED: {
                    char line[CL_TEXT_MAX + 32];
                    int l = snprintf(line, sizeof(line),
                                     "-ERR join failed: %s\r\n", a->text);
                    join_finish(cn, line, (size_t)l);
                    break;
                }
                case NODE_LOG:
                    rk_log(a->level >= RK_LOG_DEBUG && a->level <= RK_LOG_ERROR
                               ? (enum rk_log_level)a->level
                               : RK_LOG_INFO,
                           a->event, "%s", a->text);
                    break;
            }
        }
        /* each feed replaces the list: perform its actions before the
         * next one (the failures were copied out) */
        uint64_t now = now_mono();
        for (size_t i = 0; i < n_fails; i++) {
            node_on_send_failed(cn->node, fails[i].node, fails[i].req_id,
                                fails[i].status, now);
            run_node_actions(cn);
        }
        return;
    }
}

/* ---- client operations: replies ---------------------------------------- */

static struct cop_key *op_key_by_id(struct cop *op, uint64_t op_id)
{
    for (size_t i = 0; i < op->nkeys; i++) {
        if (op->keys[i].state == 1 && op->keys[i].op_id == op_id) {
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
                     const struct node_result *r,
                     const struct node_settings *set)
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
        dropped = set->lww ? dvv_lww(&o) : 0;
        size_t over = 0;
        dvv_bound(&o, set->max_siblings, 0, &over, NULL);
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

static void on_node_reply(struct cnode *cn, const struct node_result *r)
{
    struct cop *op = (struct cop *)(uintptr_t)r->cookie;
    struct cop_key *k = op_key_by_id(op, r->op_id);
    if (k == NULL) {
        return;
    }
    k->state = 2;
    op->inflight--;
    op->done++;
    int rc = r->status;
    if (r->kind == NODE_OP_READ && (rc == RK_OK || rc == RK_ENOTFOUND)) {
        rc = take_read(k, r, node_settings(cn->node));
    }
    if (rc != RK_OK && rc != RK_ENOTFOUND && !op->failed) {
        op->failed = true;
        if (r->message[0]) {
            snprintf(op->err, sizeof(op->err), "%s", r->message);
        } else if (rc == RK_ENOMEM) {
            snprintf(op->err, sizeof(op->err), "ERR out of memory");
        } else {
            snprintf(op->err, sizeof(op->err), "ERR cluster request failed: %s",
                     rk_strerror(rc));
        }
    }
    op_queue(cn, op);
}

/* ---- peer messages ------------------------------------------------------ */

static void on_peer_message(void *data,
                            const char *node_id,
                            size_t id_len,
                            const struct peer_msg *msg)
{
    struct cnode *cn = data;
    struct lat_hist *lat =
        msg->type == PEER_KV_GET ? &cn->replica_lat[0]
        : msg->type == PEER_KV_PUT || msg->type == PEER_KV_UPDATE
            ? &cn->replica_lat[1]
            : NULL;
    uint64_t t_us = lat ? server_mono_us() : 0;
    node_on_message(cn->node, node_id, id_len, msg, now_mono());
    run_node_actions(cn);
    if (lat) {
        lat_observe(lat, server_mono_us() - t_us);
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
    node_on_peer_up(cn->node, node_id, id_len, now_mono());
    run_node_actions(cn);
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
    node_on_peer_down(cn->node, node_id, id_len);
    run_node_actions(cn);
}

/* ---- durable acks ---------------------------------------------------------
 */

void cluster_on_durable(struct server *s)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL) {
        return;
    }
    node_on_durable(cn->node, now_mono());
    run_node_actions(cn);
    process_ready(cn);
}

/* ---- timer ----------------------------------------------------------------
 */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cnode *cn = arg;
    uint64_t now = now_mono();
    if (now >= node_next_deadline_ms(cn->node)) {
        node_on_tick(cn->node, now);
        run_node_actions(cn);
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
        node_cancel(cn->node, (uint64_t)(uintptr_t)op);
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

/* Starts the node operation of key k in op's current phase.  RK_OK,
 * RK_EBUSY (no free slot), RK_ENOTFOUND (no ring) or another error. */
static int start_key(struct cnode *cn,
                     struct cop *op,
                     struct cop_key *k,
                     uint64_t now,
                     uint64_t *op_id)
{
    const struct req_opts *ro = &op->c->ropts;
    struct route_quorum over = {ro->n, ro->r, ro->w};
    const char *key = op->kbuf.base + k->off;
    uint64_t cookie = (uint64_t)(uintptr_t)op;
    if (op->phase == PH_READ) {
        struct node_read_req r = {
            .key = key,
            .klen = k->len,
            .overrides = over,
            .timeout_ms = ro->timeout_ms,
            .cookie = cookie,
        };
        return node_read(cn->node, &r, now, op_id);
    }
    struct node_write_req w = {
        .key = key,
        .klen = k->len,
        .context = k->own_ctx ? NULL : k->ctx.base,
        .clen = k->own_ctx ? 0 : k->ctx.len,
        .own_context = k->own_ctx,
        .tombstone = k->tomb,
        .value = k->tomb ? NULL : k->val.base,
        .vlen = k->tomb ? 0 : k->val.len,
        .ctype = k->ctype,
        .timestamp = k->ts,
        .expire_at_ms = k->exp,
        .overrides = over,
        .timeout_ms = ro->timeout_ms,
        .cookie = cookie,
    };
    return node_write(cn->node, &w, now, op_id);
}

/* Starts requests for keys of the current phase, up to the window. */
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
        uint64_t id = 0;
        int rc = start_key(cn, op, k, now, &id);
        if (rc == RK_EBUSY) {
            run_node_actions(cn);
            if (op->inflight == 0 && !op->stalled) {
                op->stalled = true;
                op->snext = cn->stalled;
                cn->stalled = op;
            }
            break;
        }
        if (rc != RK_OK) {
            run_node_actions(cn);
            op->failed = true;
            if (rc == RK_ENOTFOUND) {
                snprintf(op->err, sizeof(op->err),
                         "CLUSTERDOWN the ring has no members");
            } else {
                snprintf(op->err, sizeof(op->err),
                         "ERR cluster request refused: %s", rk_strerror(rc));
            }
            break;
        }
        k->op_id = id;
        k->state = 1;
        op->inflight++;
        op->next++;
        run_node_actions(cn); /* may answer at once (w=1) */
    }
}

/* ---- the coordinated keyspace (keyspace.h) --------------------------------
 *
 * A coordinated command's handler reads and writes only the keys it
 * declared (the command table's key positions, plus the keys of a MULTI's
 * queued commands and WATCHed keys for EXEC): reads answer from the
 * versions the quorum read returned (the live winner), writes are recorded
 * in the key and replicated by node_write once the handler returned.
 */

static int key_cmp(const struct cop *op,
                   const struct cop_key *k,
                   const void *key,
                   size_t klen)
{
    size_t n = k->len < klen ? k->len : klen;
    int c = memcmp(op->kbuf.base + k->off, key, n);
    if (c != 0) {
        return c;
    }
    return k->len < klen ? -1 : k->len > klen;
}

/* The declared key, or NULL.  Big key lists are sorted (dedupe_keys). */
static struct cop_key *cop_find(struct cop *op, const void *key, size_t klen)
{
    if (op->nkeys > 64) {
        size_t lo = 0, hi = op->nkeys;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = key_cmp(op, &op->keys[mid], key, klen);
            if (c == 0) {
                return &op->keys[mid];
            }
            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return NULL;
    }
    for (size_t i = 0; i < op->nkeys; i++) {
        if (key_cmp(op, &op->keys[i], key, klen) == 0) {
            return &op->keys[i];
        }
    }
    return NULL;
}

/* Whether k holds a value now (written or read, not deleted or expired). */
static bool cop_key_live(const struct cop_key *k)
{
    return k->live && !(k->exp && k->exp <= server_now_ms());
}

static int coord_ks_get(struct keyspace *ks,
                        const void *key,
                        size_t klen,
                        struct rk_buf *val,
                        struct ks_meta *m)
{
    struct cop_key *k = cop_find(ks->data, key, klen);
    if (val) {
        rk_buf_clear(val);
    }
    if (k == NULL || !cop_key_live(k)) {
        return RK_ENOTFOUND;
    }
    size_t skip = 0;
    uint8_t ctlen = 0;
    if (k->ctype && k->val.len > 0) {
        ctlen = (uint8_t)k->val.base[0];
        skip = 1 + (size_t)ctlen;
        skip = skip < k->val.len ? skip : k->val.len;
    }
    if (m) {
        *m = (struct ks_meta){
            .ts = k->ts,
            .expire_at_ms = k->exp,
            .value_len = k->val.len - skip,
            .ctlen = ctlen,
        };
        memcpy(m->ct, k->val.base + 1, ctlen);
    }
    if (val && rk_buf_append(val, k->val.base ? k->val.base + skip : "",
                             k->val.len - skip) != RK_OK) {
        return RK_ENOMEM;
    }
    return RK_OK;
}

static int coord_ks_put(struct keyspace *ks,
                        const void *key,
                        size_t klen,
                        const void *val,
                        size_t vlen,
                        uint64_t expire_at_ms,
                        const char *ct,
                        uint8_t ctlen,
                        uint64_t *seq)
{
    struct cop *op = ks->data;
    struct server *s = op->c->srv;
    *seq = 0; /* replicated (and made durable) by node_write */
    if (klen == 0) {
        return RK_EINVAL;
    }
    struct cop_key *k = cop_find(op, key, klen);
    if (k == NULL) {
        return klen > PEER_MAX_KEY ? RK_ETOOBIG : RK_EINVAL;
    }
    if (vlen > s->cfg->proto_max_bulk_len) {
        return RK_ETOOBIG;
    }
    rk_buf_clear(&k->val);
    int rc = RK_OK;
    if (ctlen) {
        rc = rk_buf_append(&k->val, &ctlen, 1);
        if (rc == RK_OK) {
            rc = rk_buf_append(&k->val, ct, ctlen);
        }
    }
    if (rc == RK_OK) {
        rc = rk_buf_append(&k->val, val ? val : "", vlen);
    }
    if (rc != RK_OK) {
        k->live = false; /* the value is gone from k: never write it */
        return rc;
    }
    k->live = true;
    k->write = true;
    k->ctype = ctlen > 0;
    k->exp = expire_at_ms;
    k->ts = hlc_now(&s->clock, server_now_ms());
    return RK_OK;
}

static int coord_ks_del(struct keyspace *ks,
                        const void *key,
                        size_t klen,
                        uint64_t *seq)
{
    struct cop *op = ks->data;
    *seq = 0;
    struct cop_key *k = cop_find(op, key, klen);
    if (k == NULL || !cop_key_live(k)) {
        return RK_ENOTFOUND;
    }
    k->live = false;
    k->write = true;
    k->ts = hlc_now(&op->c->srv->clock, server_now_ms());
    return RK_OK;
}

static const struct keyspace_ops coord_ks_ops = {
    .get = coord_ks_get,
    .put = coord_ks_put,
    .del = coord_ks_del,
};

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
    bool del = op->argc == 3; /* RINGKV.DEL key context */
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

/* The command's own handler (over the coordinated keyspace). */
static void run_handler(struct cnode *cn, struct cop *op)
{
    (void)cn;
    op->cmd->proc(op->c, op->argc, op->argv);
}

static void op_exec(struct cnode *cn, struct cop *op)
{
    struct server *s = cn->srv;
    struct client *c = op->c;
    if (op->cmd->flags & CMD_VERSIONED) {
        bool put = (op->cmd->flags & CMD_WRITE) != 0;
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
        op->phase = put && op->keys[0].write ? PH_WRITE : PH_DONE;
        return;
    }
    /* The HLC observes every version read, so a read-modify-write writes
     * a version newer than the one it read. */
    uint64_t maxts = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        struct cop_key *k = &op->keys[i];
        maxts = k->ts > maxts ? k->ts : maxts;
        k->live0 = k->live;
        k->write = false;
    }
    if (maxts) {
        hlc_update(&s->clock, server_now_ms(), maxts);
    }
    op->ks = (struct keyspace){.ops = &coord_ks_ops, .data = op};
    struct keyspace *saved = c->ks;
    c->ks = &op->ks;
    s->cluster_exec = true;
    capture_reply(op, run_handler, cn);
    s->cluster_exec = false;
    c->ks = saved;
    /* What to replicate: the last state of every key the handler wrote;
     * a key deleted (or created and deleted) that was live when read
     * becomes a tombstone, one that was not is left alone. */
    size_t writes = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        struct cop_key *k = &op->keys[i];
        k->own_ctx = !k->read;
        k->state = 0;
        if (k->write && !k->live) {
            k->write = k->live0;
            k->tomb = true;
            k->ctype = false;
            k->exp = 0;
            rk_buf_clear(&k->val);
        } else if (k->write) {
            k->tomb = false;
        }
        writes += k->write;
    }
    op->next = 0;
    op->done = 0;
    op->phase = writes ? PH_WRITE : PH_DONE;
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
        } else {
            op->phase = PH_DONE;
        }
    }
}

static void process_ready(struct cnode *cn)
{
    if (cn->in_ready) {
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
    bool keyed = cmd->first_key > 0 || (cmd->flags & CMD_TXKEYS);
    if (!keyed || (cmd->flags & CMD_LOCAL)) {
        return false;
    }
    if ((cmd->flags & CMD_TXKEYS) && !c->in_multi) {
        return false;
    }
    enum membership_phase ph = membership_phase(node_membership(cn->node));
    if (ph != MEMBERSHIP_MEMBER) {
        *why = ph == MEMBERSHIP_JOINING
                   ? "TRYAGAIN this node is joining a cluster"
                   : "CLUSTERDOWN this node is not a member of a cluster (it "
                     "left or was removed); join one with RINGKV.CLUSTER JOIN";
        return true;
    }
    return node_is_multi(cn->node);
}

static bool arg_eq(const struct resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->ptr, s, n) == 0;
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
        if (cmd->flags & CMD_TXKEYS) {
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
    if (rc == RK_OK && (cmd->flags & CMD_TXKEYS)) {
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
    if (command_is_blind(op->cmd, op->argc, op->argv)) {
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

static void status_text(struct cnode *cn, struct rk_buf *out)
{
    char line[512];
    const struct ring *r = membership_ring(node_membership(cn->node));
    bool agree = node_agrees(cn->node);
    size_t m = membership_member_count(node_membership(cn->node));
    int n = snprintf(line, sizeof(line),
                     "cluster %s  version %" PRIu64 "  ring %" PRIu32
                     " partitions  n=%" PRIu32 " r=%" PRIu32 " w=%" PRIu32
                     "  agreement %s  hints %" PRIu64 "\n",
                     membership_cluster_name(node_membership(cn->node)),
                     membership_version(node_membership(cn->node)),
                     r ? ring_size(r) : 0, node_quorum(cn->node).n,
                     node_quorum(cn->node).r, node_quorum(cn->node).w,
                     agree ? "yes" : "no", node_hints_pending(cn->node));
    rk_buf_append(out, line, (size_t)n);
    n = snprintf(line, sizeof(line), "%-24s %-22s %-6s %-8s %-10s %-8s %s\n",
                 "NODE_ID", "ADDRESS", "RESP", "STATUS", "PARTITIONS", "SEEN",
                 "VERSION");
    rk_buf_append(out, line, (size_t)n);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(node_membership(cn->node), i, &mm);
        char addr[300], parts[16], ver[24];
        snprintf(addr, sizeof(addr), "%s:%u", mm.host, mm.peer_port);
        int idx = r ? ring_find_member(r, mm.node_id, strlen(mm.node_id)) : -1;
        snprintf(parts, sizeof(parts), "%zu",
                 idx >= 0 ? ring_owned_count(r, (size_t)idx) : 0);
        bool self = strcmp(mm.node_id, cn->node_id) == 0;
        uint64_t pv = 0;
        if (self) {
            snprintf(ver, sizeof(ver), "%" PRIu64,
                     membership_version(node_membership(cn->node)));
        } else if (node_peer_version(cn->node, mm.node_id, &pv)) {
            snprintf(ver, sizeof(ver), "%" PRIu64, pv);
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
    if (keys > 0 && !node_is_multi(cn->node)) {
        reply_errorf(c,
                     "ERR join needs an empty node: this node holds %" PRIu64
                     " keys and partition handoff is not implemented yet",
                     keys);
        return;
    }
    int rc = node_join(cn->node, host, (uint16_t)port, now_mono());
    if (rc != RK_OK) {
        if (rc == RK_EBUSY) {
            reply_errorf(c,
                         "ERR cannot join: this node is already a member of "
                         "a cluster of %zu nodes (leave it first)",
                         node_valid_members(cn->node));
        } else {
            reply_errorf(c, "ERR cannot join: %s",
                         membership_errmsg(node_membership(cn->node)));
        }
        return;
    }
    struct cop *op = op_new(c, NULL, 0, NULL);
    if (op == NULL) {
        run_node_actions(cn);
        reply_error(c, "ERR out of memory");
        return;
    }
    op->kind = COP_JOIN;
    op->barrier = true;
    fifo_push(c, op);
    update_block(c);
    cn->join_op = op;
    rk_log(RK_LOG_INFO, "cluster_join_start", "seed=%s:%lu", host, port);
    run_node_actions(cn);
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
        int rc = node_leave(cn->node, engine_keys(s) > 0, now_mono());
        run_node_actions(cn);
        if (rc != RK_OK) {
            reply_errorf(c, "ERR cannot leave: %s",
                         membership_errmsg(node_membership(cn->node)));
            return;
        }
        reply_ok(c);
    } else if (arg_eq(sub, "REMOVE") && argc == 3) {
        char id[CL_ID_MAX + 1];
        if (argv[2].len == 0 || argv[2].len > CL_ID_MAX) {
            reply_error(c, "ERR invalid node id");
            return;
        }
        memcpy(id, argv[2].ptr, argv[2].len);
        id[argv[2].len] = '\0';
        int rc = node_remove(cn->node, id, now_mono());
        run_node_actions(cn);
        if (rc != RK_OK) {
            if (rc == RK_ENOTFOUND) {
                reply_errorf(c, "ERR no valid member '%s'", id);
            } else {
                reply_errorf(c, "ERR cannot remove '%s': %s", id,
                             membership_errmsg(node_membership(cn->node)));
            }
            return;
        }
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
    enum membership_phase ph = membership_phase(node_membership(cn->node));
    const struct ring *r = membership_ring(node_membership(cn->node));
    int me = r ? ring_find_member(r, cn->node_id, strlen(cn->node_id)) : -1;
    struct coord_stats cs;
    coord_stats(node_coord(cn->node), &cs);
    struct peer_transport_stats ts;
    peer_transport_stats(cn->pt, NULL, &ts);
    int n = snprintf(
        b, sizeof(b),
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
        membership_cluster_name(node_membership(cn->node)), cn->node_id,
        cn->peer_port, phases[ph <= MEMBERSHIP_REMOVED_SELF ? ph : 0],
        membership_version(node_membership(cn->node)),
        node_valid_members(cn->node), node_members_up(cn->node),
        r ? ring_size(r) : 0, r ? ring_digest(r) : 0,
        node_agrees(cn->node) ? 1 : 0,
        me >= 0 ? ring_owned_count(r, (size_t)me) : 0, node_quorum(cn->node).n,
        node_quorum(cn->node).r, node_quorum(cn->node).w, cs.started,
        coord_inflight(node_coord(cn->node)),
        cs.noquorum_timeout + cs.noquorum_early,
        node_stats(cn->node)->replica_puts, node_stats(cn->node)->replica_gets,
        ts.n_connected, ts.frames_out, ts.frames_in, cn->persist_errors);
    rk_buf_append(out, b, (size_t)n);
    const struct replica_stats *rs = node_replica_stats(cn->node);
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
        cn->actor, cn->epoch, node_settings(cn->node)->lww ? "lww" : "siblings",
        rs->updates, rs->merges_written, rs->lww_discards, rs->bound_dropped,
        rs->clock_pruned, rs->bad_objects + cs.bad_answers, cs.read_repairs,
        s->cfg->sloppy_quorum ? "on" : "off", node_hints_pending(cn->node),
        node_stats(cn->node)->hints_stored,
        node_stats(cn->node)->hints_delivered, s->cfg->tombstone_gc_grace_s,
        node_stats(cn->node)->tombstones_reaped, rs->clock_ahead,
        rs->clock_ahead_max_ms);
    rk_buf_append(out, b, (size_t)n);
}

static struct node_settings settings_of(const struct rk_config *cfg)
{
    return (struct node_settings){
        .quorum = {cfg->n_val, cfg->r_val, cfg->w_val},
        .sloppy_quorum = cfg->sloppy_quorum,
        .request_timeout_ms = cfg->request_timeout_ms,
        .read_repair_wait_ms = cfg->read_repair_wait_ms,
        .sync_always = cfg->sync_mode == ENGINE_SYNC_ALWAYS,
        .lww = cfg->conflict_lww,
        .max_siblings = cfg->max_siblings,
        .tombstone_grace_ms = cfg->tombstone_gc_grace_s * 1000,
        .max_clock_skew_ms = cfg->max_clock_skew_ms,
    };
}

void cluster_config_changed(struct server *s)
{
    if (s->cluster) {
        struct cnode *cn = s->cluster;
        struct node_settings set = settings_of(s->cfg);
        node_set_settings(cn->node, &set);
        run_node_actions(cn);
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
    uint64_t nonce = rk_env_rand64(&cn->env);
    char seed[CL_ID_MAX + 64];
    n = snprintf(seed, sizeof(seed), "%s/%" PRIu64 "/%016" PRIx64, cn->node_id,
                 cn->epoch, nonce);
    cn->actor = XXH3_64bits(seed, (size_t)n) & ~REPLICA_META_OBJECT;
    if (cn->actor == DVV_ACTOR_LEGACY) {
        cn->actor = 1;
    }
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
    /* time and randomness of the node (its actor's nonce, the gossip and
     * SWIM seeds, the SWIM incarnation) come from the environment */
    env_real_init(&cn->env, &cn->env_state);
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
    int src = rc; /* STATE_FILE read */
    rc = open_hints(cn, err, errlen);
    if (rc != RK_OK) {
        rk_buf_fini(&saved);
        return rc;
    }
    struct node_config nc = {
        .node_id = cn->node_id,
        .mem =
            {
                .host = cfg->bind,
                .resp_port = (uint16_t)cfg->port,
                .http_port = tc.http_port,
                .peer_port = cn->peer_port,
                .cluster_name = cfg->cluster_name,
                .ring_size = cfg->ring_size,
                .n_val = cfg->n_val,
                .seed = rk_env_rand64(&cn->env),
            },
        .saved_state = src == RK_OK ? saved.base : NULL,
        .saved_len = src == RK_OK ? saved.len : 0,
        .swim =
            {
                .incarnation = rk_env_wall_ms(&cn->env),
                .seed = rk_env_rand64(&cn->env),
            },
        .actor = cn->actor,
        .versioned = cn->versioned,
        .settings = settings_of(cfg),
        .data = s->engine,
        .hints = cn->hints,
        .env = &cn->env,
        .max_ops = COORD_SLOTS,
    };
    rc = node_create(&nc, &cn->node, err, errlen);
    rk_buf_fini(&saved);
    if (rc != RK_OK) {
        return rc;
    }
    run_node_actions(cn);
    if (membership_phase(node_membership(cn->node)) == MEMBERSHIP_NONE) {
        rc = node_create_cluster(cn->node, now_mono());
        if (rc != RK_OK) {
            snprintf(err, errlen, "cannot create the cluster: %s",
                     membership_errmsg(node_membership(cn->node)));
            return rc;
        }
        run_node_actions(cn);
    }
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
           cn->node_id, cn->peer_port,
           membership_cluster_name(node_membership(cn->node)),
           (int)membership_phase(node_membership(cn->node)),
           membership_version(node_membership(cn->node)),
           node_valid_members(cn->node));
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
    node_destroy(cn->node);
    if (cn->hints) {
        engine_close(cn->hints);
    }
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
    switch (membership_phase(node_membership(cn->node))) {
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
    enum membership_phase ph = membership_phase(node_membership(cn->node));
    const struct ring *r = membership_ring(node_membership(cn->node));
    json_t *members = json_array();
    size_t m = membership_member_count(node_membership(cn->node));
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(node_membership(cn->node), i, &mm);
        int idx = r ? ring_find_member(r, mm.node_id, strlen(mm.node_id)) : -1;
        bool self = strcmp(mm.node_id, cn->node_id) == 0;
        bool valid = mm.status == MEMBERSHIP_VALID;
        uint64_t pv = 0;
        bool has_pv = !self && node_peer_version(cn->node, mm.node_id, &pv);
        json_t *o = json_pack(
            "{s:s, s:s, s:i, s:i, s:i, s:s, s:i, s:s, s:b, s:b}", "node_id",
            mm.node_id, "host", mm.host, "resp_port", (int)mm.resp_port,
            "http_port", (int)mm.http_port, "peer_port", (int)mm.peer_port,
            "status", valid ? "valid" : "removed", "partitions",
            idx >= 0 ? (int)ring_owned_count(r, (size_t)idx) : 0, "seen",
            seen_as(cn, mm.node_id), "up",
            valid && (self || peer_is_up(cn, mm.node_id)), "self", self);
        if (o && (self || has_pv)) {
            json_object_set_new(
                o, "state_version",
                json_integer((json_int_t)(self ? membership_version(
                                                     node_membership(cn->node))
                                               : pv)));
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
            membership_member_get(node_membership(cn->node), i, &mm);
            if (strlen(mm.node_id) == l && memcmp(mm.node_id, id, l) == 0) {
                at = (long)i;
            }
        }
        json_array_append_new(owners, json_integer(at));
    }
    json_t *j = json_pack(
        "{s:b, s:s, s:s, s:s, s:I, s:o, s:{s:i, s:s}, s:b, s:i, s:i, s:i, "
        "s:I, s:I, s:b}",
        "enabled", 1, "cluster_name",
        membership_cluster_name(node_membership(cn->node)), "node_id",
        cn->node_id, "phase", phases[ph <= MEMBERSHIP_REMOVED_SELF ? ph : 0],
        "state_version",
        (json_int_t)membership_version(node_membership(cn->node)), "members",
        members, "ring", "size", r ? (int)ring_size(r) : 0, "digest", digest,
        "agreement", node_agrees(cn->node), "n", (int)node_quorum(cn->node).n,
        "r", (int)node_quorum(cn->node).r, "w", (int)node_quorum(cn->node).w,
        "hints_pending", (json_int_t)node_hints_pending(cn->node), "members_up",
        (json_int_t)node_members_up(cn->node), "sloppy_quorum",
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
    coord_stats(node_coord(cn->node), &cs);
    const struct replica_stats *rs = node_replica_stats(cn->node);
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
                "KV_PUT merges received from peers.",
                node_stats(cn->node)->replica_puts);
    metrics_one(out, "ringkv_replica_gets_total", "counter",
                "KV_GET reads received from peers.",
                node_stats(cn->node)->replica_gets);
    metrics_one(out, "ringkv_replica_updates_total", "counter",
                "KV_UPDATE writes received from peers.",
                node_stats(cn->node)->replica_updates);
    metrics_one(out, "ringkv_read_repairs_total", "counter",
                "Objects sent by read repair.", cs.read_repairs);
    metrics_one(out, "ringkv_hints_pending", "gauge",
                "Hinted writes held for owners that are down.",
                node_hints_pending(cn->node));
    metrics_one(out, "ringkv_hints_stored_total", "counter",
                "Hinted writes stored.", node_stats(cn->node)->hints_stored);
    metrics_one(out, "ringkv_hints_delivered_total", "counter",
                "Hints delivered to their owner and deleted.",
                node_stats(cn->node)->hints_delivered);
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
                "Tombstones reaped after the grace.",
                node_stats(cn->node)->tombstones_reaped);
    metrics_one(out, "ringkv_clock_ahead_events_total", "counter",
                "Writes timestamped beyond max_clock_skew_ms ahead.",
                rs->clock_ahead);
    metrics_one(out, "ringkv_gossip_messages_received_total", "counter",
                "Cluster-state gossip messages received.",
                node_stats(cn->node)->gossip_in);
    metrics_one(out, "ringkv_gossip_messages_sent_total", "counter",
                "Cluster-state gossip messages sent (gossip rounds and "
                "state-change broadcasts).",
                node_stats(cn->node)->gossip_out);
    metrics_one(out, "ringkv_cluster_members", "gauge",
                "Valid members in this node's cluster state.",
                node_valid_members(cn->node));
    metrics_one(out, "ringkv_cluster_members_up", "gauge",
                "Valid members this node sees up (itself included).",
                node_members_up(cn->node));
    metrics_one(out, "ringkv_cluster_ring_agreement", "gauge",
                "1 when every member up gossiped this node's exact state.",
                node_agrees(cn->node) ? 1 : 0);
    metrics_family(out, "ringkv_peer_up", "gauge",
                   "1 when this node sees the peer up, by peer node id.");
    size_t m = membership_member_count(node_membership(cn->node));
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(node_membership(cn->node), i, &mm);
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
