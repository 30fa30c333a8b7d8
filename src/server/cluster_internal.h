/*
 * cluster_internal.h - what the files of ringkvd's cluster wiring share
 * (cluster.c: the driver of the node machine; cluster_ops.c: clients'
 * coordinated commands; cluster_admin.c: RINGKV.CLUSTER, INFO, /cluster,
 * metrics).  Nothing else includes this.  Thread: the event loop only.
 */
#ifndef RINGKV_SERVER_CLUSTER_INTERNAL_H
#define RINGKV_SERVER_CLUSTER_INTERNAL_H

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
#include "server/cluster.h"
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
#define CLIENT_PIPELINE 64   /* coordinated commands in flight per client */
#define COP_POOL        1024 /* freed operations kept for reuse */
#define COP_KEEP_BYTES  (64 * 1024) /* larger buffers are not kept */
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
    size_t keys_cap;  /* slots allocated */
    size_t keys_init; /* slots whose buffers are initialised (a pooled
                         operation keeps them between commands) */
    size_t argv_cap;  /* bytes of the argv allocation */
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
    struct cop *pnext; /* cnode.pool */
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
    struct cop *ready;
    struct cop *stalled;
    struct cop *pool; /* freed operations kept for reuse (no allocation
                         per command), at most COP_POOL */
    size_t n_pool;
    struct cop *join_op;
    /* versions (issue 5) */
    uint64_t epoch; /* starts of this data dir (EPOCH file) */
    uint64_t actor; /* dvv actor of this run: XXH3(node id, epoch, nonce) */
    bool versioned; /* VERSIONED_FILE at start (the node keeps it after) */
    /* hinted handoff: the hint store DATA_DIR/hints (node_hints.c) */
    struct engine *hints;
    struct lat_hist coord_lat[2];   /* [0] reads, [1] writes (commands) */
    uint64_t coord_failed[2];       /* of them, answered with an error */
    struct lat_hist replica_lat[2]; /* [0] KV_GET, [1] KV_PUT/KV_UPDATE */
    uint64_t persist_errors;
};

/* ---- cluster.c ---- */
uint64_t cluster__now_mono(void);
bool cluster__peer_is_up(struct cnode *cn, const char *id);
void cluster__run_node_actions(struct cnode *cn);
const char *cluster__seen_as(struct cnode *cn, const char *id);

/* ---- cluster_admin.c ---- */
struct node_settings cluster__settings_of(const struct rk_config *cfg);

/* ---- cluster_ops.c ---- */
bool cluster__arg_eq(const struct resp_arg *a, const char *s);
void cluster__fifo_push(struct client *c, struct cop *op);
void cluster__on_node_reply(struct cnode *cn, const struct node_result *r);
struct cop *cluster__op_new(struct client *c,
                            const struct command *cmd,
                            size_t argc,
                            const struct resp_arg *argv);
void cluster__op_queue(struct cnode *cn, struct cop *op);
void cluster__process_ready(struct cnode *cn);
void cluster__resume_cb(evutil_socket_t fd, short what, void *arg);
void cluster__update_block(struct client *c);
/* Frees the operations kept for reuse (cluster_stop). */
void cluster__pool_free(struct cnode *cn);

#endif /* RINGKV_SERVER_CLUSTER_INTERNAL_H */
