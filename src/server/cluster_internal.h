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
#include "cluster/op.h"
#include "cluster/replica.h"
#include "cluster/ring.h"
#include "cluster/route.h"
#include "cluster/seeds.h"
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
#define COORD_SLOTS     16384 /* coordinator table */
#define STATE_FILE      "cluster.state"
#define NODE_ID_FILE    "NODE_ID"
#define EPOCH_FILE      "EPOCH"        /* starts of this data dir */
#define VERSIONED_FILE  "VERSIONED"    /* keys are versioned objects */
#define HANDOFF_FILE    "handoff.ckpt" /* the receiver's checkpoint */
#define MAX_SEND_FAILS  256

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
    /* clients' coordinated commands (cluster/op.h), with the clock it
     * reads (wall: server_now_ms, monotonic: cluster__now_mono) */
    struct op_machine *ops;
    struct rk_env op_env;
    struct op *join_op;  /* RINGKV.CLUSTER JOIN waiting (op_hold) */
    char join_host[300]; /* the seed the join that runs (node_join
                            accepted it) asked; "" before any */
    uint16_t join_port;
    /* the cluster secret's file (cluster_secret.h); secret_own: the data
     * dir's own (not --cluster-secret-file), which a JOIN ... SECRET may
     * replace */
    char secret_path[4200];
    bool secret_own;
    struct seeds seeds; /* --seeds: join on start (cluster/seeds.h) */
    bool seed_join;     /* the join in flight is a seed's */
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
    /* handoff.ckpt, written off the loop (bg_file.h); NULL until
     * cluster_start opened it */
    struct bg_file *ckpt_file;
};

/* ---- cluster.c ---- */
uint64_t cluster__now_mono(void);
bool cluster__peer_is_up(struct cnode *cn, const char *id);
void cluster__run_node_actions(struct cnode *cn);
const char *cluster__seen_as(struct cnode *cn, const char *id);

/* ---- cluster_admin.c ---- */
struct node_settings cluster__settings_of(const struct rk_config *cfg);

/* ---- cluster_plan.c ---- */
/* RINGKV.CLUSTER PLAN ... and COMMIT [FORCE] (argv[1] is PLAN or COMMIT). */
void cluster__plan_cmd(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv);

/* ---- cluster_ops.c ---- */
bool cluster__arg_eq(const struct resp_arg *a, const char *s);
/* Creates cn->ops over cn->node (cluster_start).  RK_OK, RK_ENOMEM. */
int cluster__ops_create(struct cnode *cn);
void cluster__on_node_reply(struct cnode *cn, const struct node_result *r);
/* Advances the queued operations and performs what they ask for. */
void cluster__process_ready(struct cnode *cn);
/* Retries the operations stalled on a full coordinator (the timer). */
void cluster__retry_stalled(struct cnode *cn);
void cluster__resume_cb(evutil_socket_t fd, short what, void *arg);

#endif /* RINGKV_SERVER_CLUSTER_INTERNAL_H */
