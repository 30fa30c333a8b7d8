/*
 * cluster.h - the cluster wiring of ringkvd (issue 4; DESIGN.md sections
 * 1 and 4; docs/cluster.md): the only place that connects the sans-IO
 * machines of src/cluster (membership, swim, coord, replica) to sockets
 * (peer_transport), clocks, files and client connections.
 *
 * Every node is a member of a cluster: at first start it creates a
 * one-node cluster of itself, `RINGKV.CLUSTER JOIN` makes it join
 * another.  While the cluster has one valid member, key commands run
 * directly on the local engine (the single-node fast path, unchanged).
 * With two or more, every command that names keys is routed: the node
 * coordinates it (cluster_run) by reading each key from R of its N
 * preference-list replicas, running the ordinary command handler over
 * those values in a scratch engine, and writing every key the handler
 * changed to W of N replicas; the client's reply is released once that
 * is done, or replaced by -NOQUORUM.
 *
 * Thread: the event loop thread only; nothing here locks.
 */
#ifndef RINGKV_SERVER_CLUSTER_H
#define RINGKV_SERVER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "proto/resp.h"

struct server;
struct client;
struct rk_config;
struct command;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/*
 * Creates the node's cluster state: reads or writes DATA_DIR/NODE_ID,
 * loads DATA_DIR/cluster.state (or creates a one-node cluster), opens the
 * peer port and arms the cluster timer.  Call after the engine is open.
 * Returns RK_OK, or an error with a one-line reason in err.
 */
int cluster_start(struct server *s, char *err, size_t errlen);

/*
 * The node id this start will use, for the log lines written before
 * cluster_start: DATA_DIR/NODE_ID when it holds one, else --node-id, else
 * the default BIND:PEERPORT.  Writes a NUL-terminated id (truncated to
 * len) into out; no side effects.  It is the id cluster_start settles
 * on (same order of sources), so server.c sets it as the log's node id
 * once, before any thread starts.  Thread: start-up.
 */
void cluster_peek_node_id(const struct rk_config *cfg, char *out, size_t len);

/*
 * The TLS context peers would use with the tls-* settings of `cfg`
 * (tls-cluster yes; server/tls.h tls_peer_ctx_new, peer_tls.h), checked
 * to name `node_id` (NULL: the running node's; before the peer port is
 * open there is none, and *out stays NULL).  Whether TLS is on is the
 * running transport's (tls-cluster is fixed at start), else
 * cfg->tls_cluster.  RK_OK with *out returned-owned (NULL when peers do
 * not use TLS; give it to cluster_tls_set or free it with tls_ctx_free),
 * or RK_EINVAL with a one-line reason in err (*out NULL).  Used by
 * cluster_start and by CONFIG SET of tls-* files, which checks every
 * new context before it applies any.  Thread: the loop.
 */
int cluster_tls_prepare(struct server *s,
                        const struct rk_config *cfg,
                        const char *node_id,
                        struct ssl_ctx_st **out,
                        char *err,
                        size_t errlen);

/* Makes new peer connections use `ctx` (from cluster_tls_prepare; this
 * call takes it over, NULL is a no-op); established ones keep theirs. */
void cluster_tls_set(struct server *s, struct ssl_ctx_st *ctx);

/*
 * Makes this node refuse the JOIN of any new node, answering `why`
 * (membership_refuse_joins): it holds hashes or sets, which a cluster
 * does not replicate yet.  No-op before cluster_start.
 */
void cluster_refuse_joins(struct server *s, const char *why);

/* Frees everything cluster_start made (no client is touched).  NULL-safe. */
void cluster_stop(struct server *s);

/* Whether `cmd` must go through the coordinator now (a keyed command and
 * a cluster of two or more members), and the error to answer instead when
 * this node cannot serve keys at all (not a member): *why set, true. */
bool cluster_routes(struct server *s,
                    struct client *c,
                    const struct command *cmd,
                    const char **why);

/*
 * Coordinates one command for client c (cluster_routes said so): the
 * client is blocked (cluster_client_blocked) until the reply is appended to
 * c->obuf, then its input processing resumes.  argv is copied.
 */
void cluster_run(struct client *c,
                 const struct command *cmd,
                 size_t argc,
                 const struct resp_arg *argv);

/* The client is being freed: drops its pending operations (no reply). */
void cluster_client_gone(struct client *c);

/* Whether client c has coordinated commands pending. */
bool cluster_client_busy(const struct client *c);

/* Whether client c's input must wait for its coordinated commands (too
 * many pending, or one that must run alone: cluster/op.h O3). */
bool cluster_client_blocked(const struct client *c);

/* A command that arrived while coordinated commands of the client are
 * pending and cannot run beside them: it runs once they are answered. */
void cluster_defer(struct client *c, size_t argc, const struct resp_arg *argv);

/* The engine's durable sequence moved: release held replica acks. */
void cluster_on_durable(struct server *s);

/* Hands the hint store's buffered writes to the OS (engine_handoff);
 * RK_OK without a cluster. */
int cluster_handoff(struct server *s);

/*
 * CLUSTER SLOTS|SHARDS|NODES|MYID|INFO|KEYSLOT (cluster_slots.c; issue 13
 * item 2; the command's handler, cmd_cluster, answers HELP,
 * COUNTKEYSINSLOT and GETKEYSINSLOT itself): the ring as Redis Cluster
 * clients expect it, so they route keys by slot to a replica.
 * Replies -ERR "cluster support disabled" unless cluster_redis_enabled.
 * Never redirects (no MOVED/ASK): any node coordinates any key.
 * Arity is checked by the command table.  Thread: the loop.
 */
void cluster_redis_cmd(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv);

/* READONLY, READWRITE, ASKING: accepted with +OK (any node serves any key,
 * reads and writes alike). */
void cluster_redis_ok_cmd(struct client *c,
                          size_t argc,
                          const struct resp_arg *argv);

/* Whether the CLUSTER commands work: this node is a member of a cluster
 * (a single node is a cluster of one).  INFO's cluster_enabled. */
bool cluster_redis_enabled(struct server *s);

/* RINGKV.CLUSTER JOIN|LEAVE|REMOVE|STATUS|FAULT (commands.c table). */
void cluster_cmd(struct client *c, size_t argc, const struct resp_arg *argv);

/*
 * Tells the node its storage state (issue 12 item 3): degraded while the
 * engine is read-only, with the reason disk.h gives.  Call from the
 * housekeeping tick after disk_watch_check; a no-op without a cluster.
 */
void cluster_storage_check(struct server *s);

/* The hint store (DATA_DIR/hints), or NULL without a cluster; borrowed. */
struct engine *cluster_hint_store(struct server *s);

/* Why this node is degraded (its storage is read-only, but it still
 * serves reads and coordinates writes), or NULL when it is not or has no
 * cluster of two or more.  For GET /health. */
const char *cluster_degraded_reason(struct server *s);

/* CONFIG SET changed n/r/w: recompute the effective quorums. */
void cluster_config_changed(struct server *s);

/* Appends the INFO "cluster" section's lines (no header). */
void cluster_info(struct server *s, struct rk_buf *out);

/* Whether a record's metadata is a replicated delete marker (tombstone):
 * node-local readers skip those. */
bool cluster_meta_is_tombstone(const void *engine_meta);

/* This node's id ("" before cluster_start). */
const char *cluster_node_id(struct server *s);

/* Whether `origin` (an HTTP Origin header, "http://host:port") is the
 * status page of a member of this node's cluster (its host and HTTP port,
 * or localhost with that port when the member's host is a loopback
 * address): those may read this node's HTTP API cross-origin. */
bool cluster_is_member_origin(struct server *s, const char *origin);

/* Why this node cannot serve requests now ("joining a cluster", "not a
 * member of a cluster"), or NULL when it can.  For GET /health. */
const char *cluster_unavailable_reason(struct server *s);

/* The cluster as a jansson object (returned-owned, json_decref): node id,
 * phase, members with address, ports, status, partitions, up/down as this
 * node sees them and gossip version, ring size/version/digest, agreement,
 * N/R/W, hints pending.  For GET /cluster. */
/* Appends the cluster's Prometheus metrics to out (metrics.c). */
void cluster_metrics(struct server *s, struct rk_buf *out);

struct json_t;
struct json_t *cluster_json(struct server *s);

/* Coordinator latency quantiles estimated from the histograms (bucket
 * upper bounds), seconds: {"coordinator_read_p50_seconds": ..., "_p99_",
 * write likewise, and the counts}; NULL when not in a cluster.  For GET
 * /stats and the status page. */
struct json_t *cluster_latency_json(struct server *s);

#endif /* RINGKV_SERVER_CLUSTER_H */
