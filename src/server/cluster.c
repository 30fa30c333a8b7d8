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
 * REPLY actions only record results in the client's operation
 * (op_on_node_result, cluster/op.h) and queue it; operations advance
 * (start more requests, run the handler, answer the client) only after
 * the actions are consumed (cluster__process_ready).
 *
 * A coordinated command (cluster/op.h; driven by cluster_ops.c) goes
 * through:
 *   READ   node_read for each distinct key (skipped for blind writes such
 *          as a plain SET or MSET), at most OP_WINDOW in flight;
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
#include <openssl/crypto.h>

#include "server/bg_file.h"
#include "server/cluster_internal.h"
#include "server/cluster_secret.h"
#include "server/fileio.h"
#include "server/peer_tls.h"
#include "server/tls.h"

uint64_t cluster__now_mono(void)
{
    return server_mono_ms();
}

void cluster_refuse_joins(struct server *s, const char *why)
{
    if (s->cluster && s->cluster->node) {
        membership_refuse_joins(node_membership(s->cluster->node), why);
    }
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
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return rk_file_replace(path, p, len, 0600);
}

/* Reads a whole small file into out (cleared).  RK_ENOTFOUND if absent. */
static int read_file(const char *dir, const char *name, struct rk_buf *out)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int rc = rk_file_read(path, 64u * 1024 * 1024, out, NULL);
    return rc == RK_EINVAL ? RK_EIO : rc; /* a link, not a file, too large */
}

/* ---- the node's actions ------------------------------------------------- */

bool cluster__peer_is_up(struct cnode *cn, const char *id)
{
    return node_peer_is_up(cn->node, id);
}

const char *cluster__seen_as(struct cnode *cn, const char *id)
{
    bool self = strcmp(id, cn->node_id) == 0;
    enum swim_status st = SWIM_UP;
    if (!self && !swim_member_status(node_swim(cn->node), id, &st, NULL)) {
        return "-";
    }
    if (st != SWIM_DOWN && node_peer_is_degraded(cn->node, id)) {
        return "degraded"; /* issue 12 item 3: up, but takes no writes */
    }
    return self ? "self" : swim_status_name(st);
}

/* ---- joining from --seeds (cluster/seeds.h) ------------------------------
 */

static void seeds_joined(struct cnode *cn)
{
    cn->seed_join = false;
    seeds_result(&cn->seeds, true, cluster__now_mono());
    rk_log(RK_LOG_INFO, "cluster_seed_joined", "members=%zu",
           node_valid_members(cn->node));
}

static void seeds_failed(struct cnode *cn, const char *why)
{
    cn->seed_join = false;
    const struct seed *s = &cn->seeds.s[cn->seeds.next];
    uint64_t now = cluster__now_mono();
    seeds_result(&cn->seeds, false, now);
    rk_log(RK_LOG_WARN, "cluster_seed_join_failed",
           "seed=%s:%u reason=\"%s\" next_try_in_ms=%" PRIu64, s->host,
           (unsigned)s->port, why,
           cn->seeds.next_at > now ? cn->seeds.next_at - now : 0);
}

/* Starts the seed join that is due, if any (from the timer). */
static void seeds_tick(struct cnode *cn, uint64_t now)
{
    struct seeds *sd = &cn->seeds;
    if (sd->done || sd->trying || cn->join_op) {
        return;
    }
    if (node_valid_members(cn->node) > 1) {
        sd->done = true;
        rk_log(RK_LOG_INFO, "cluster_seeds_ignored",
               "reason=\"already a member of a cluster of %zu nodes\"",
               node_valid_members(cn->node));
        return;
    }
    struct engine_stats st;
    engine_stats(cn->srv->engine, &st);
    if (st.live_keys > 0) {
        sd->done = true;
        rk_log(RK_LOG_ERROR, "cluster_seeds_refused",
               "keys=%" PRIu64
               " reason=\"join needs an empty node (a join does not hand "
               "its keys to their owners); start with an empty data dir or "
               "drop --seeds\"",
               st.live_keys);
        return;
    }
    const struct seed *s = seeds_due(sd, now);
    if (s == NULL) {
        return;
    }
    rk_log(RK_LOG_INFO, "cluster_seed_join", "seed=%s:%u attempt=%u", s->host,
           (unsigned)s->port, sd->attempts);
    int rc = node_join(cn->node, s->host, s->port, now);
    if (rc != RK_OK) {
        cn->seed_join = true;
        seeds_failed(cn, membership_errmsg(node_membership(cn->node)));
        return;
    }
    cn->seed_join = true;
    cluster__run_node_actions(cn);
}

/* The JOIN waiting for admission ends with `line` (a RESP reply). */
static void join_finish(struct cnode *cn, const char *line, size_t len)
{
    if (cn->join_op == NULL) {
        return;
    }
    struct op *op = cn->join_op;
    cn->join_op = NULL;
    op_hold_done(cn->ops, op, line, len);
}

/*
 * Performs the actions of the last call into the node.  SENDs the
 * transport refuses are fed back with node_on_send_failed only after the
 * whole list was consumed (the list dies with the next call), which
 * yields a new list, performed the same way.
 */
void cluster__run_node_actions(struct cnode *cn)
{
    if (node_wants_handoff(cn->node)) {
        server_want_handoff(cn->srv);
    }
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
                    cluster__on_node_reply(cn, &a->result);
                    break;
                case NODE_PERSIST: {
                    if (a->file == NODE_FILE_HANDOFF && cn->ckpt_file) {
                        /* late is safe: it claims only what is durable */
                        (void)bg_file_put(cn->ckpt_file, a->bytes.ptr,
                                          a->bytes.len);
                        break;
                    }
                    const char *file = a->file == NODE_FILE_STATE ? STATE_FILE
                                       : a->file == NODE_FILE_HANDOFF
                                           ? HANDOFF_FILE
                                           : VERSIONED_FILE;
                    if (write_file_atomic(cn->dir, file, a->bytes.ptr,
                                          a->bytes.len) != RK_OK) {
                        cn->persist_errors++;
                        rk_log(RK_LOG_ERROR, "cluster_persist_failed",
                               "dir=%s file=%s errno=%d", cn->dir, file, errno);
                    }
                    break;
                }
                case NODE_JOIN_DONE:
                    if (cn->seed_join) {
                        seeds_joined(cn);
                    } else {
                        join_finish(cn, "+OK\r\n", 5);
                    }
                    break;
                case NODE_JOIN_FAILED: {
                    if (cn->seed_join) {
                        seeds_failed(cn, a->text);
                        break;
                    }
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
        if (n_fails == 0) {
            return;
        }
        uint64_t now = cluster__now_mono();
        for (size_t i = 0; i < n_fails; i++) {
            node_on_send_failed(cn->node, fails[i].node, fails[i].req_id,
                                fails[i].status, now);
            cluster__run_node_actions(cn);
        }
        return;
    }
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
    node_on_message(cn->node, node_id, id_len, msg, cluster__now_mono());
    cluster__run_node_actions(cn);
    if (lat) {
        lat_observe(lat, server_mono_us() - t_us);
    }
    cluster__process_ready(cn);
}

static void on_peer_connected(void *data,
                              const char *node_id,
                              size_t id_len,
                              const struct peer_hello *hello)
{
    (void)hello;
    struct cnode *cn = data;
    node_on_peer_up(cn->node, node_id, id_len, cluster__now_mono());
    cluster__run_node_actions(cn);
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
    cluster__run_node_actions(cn);
}

/* A dialed peer refused our handshake: a RINGKV.CLUSTER JOIN waiting for
 * that seed fails now with the reason instead of after the join timeout
 * (the node's join attempt itself runs out in the background). */
static void on_auth_failed(void *data,
                           const char *host,
                           uint16_t port,
                           int reason,
                           bool tls,
                           const char *why)
{
    struct cnode *cn = data;
    if (cn->join_op == NULL || port != cn->join_port ||
        strcmp(host, cn->join_host) != 0) {
        return;
    }
    char line[900];
    int n = 0;
    if (tls && reason == RK_EPROTO) {
        n = snprintf(line, sizeof(line),
                     "-ERR cannot join: seed %s:%u and this node disagree on "
                     "tls-cluster (%s): every node of a cluster needs the "
                     "same tls-cluster setting\r\n",
                     host, (unsigned)port, why);
    } else if (tls) {
        n = snprintf(line, sizeof(line),
                     "-ERR cannot join: TLS with seed %s:%u failed (%s): with "
                     "tls-cluster yes every node needs a certificate from "
                     "the cluster's CA (tls-ca-cert-file) whose CN or "
                     "subjectAltName is its node id (docs/security.md)\r\n",
                     host, (unsigned)port, why);
    } else {
        n = snprintf(
            line, sizeof(line),
            "-ERR cannot join: seed %s:%u %s (%s): give this node the "
            "cluster's "
            "secret: ringkv cluster join %s:%u --secret-file FILE, where FILE "
            "is "
            "a copy of the seed's DATA_DIR/cluster.secret (or the file of its "
            "--cluster-secret-file)\r\n",
            host, (unsigned)port,
            reason == RK_EPERM ? "does not share this node's cluster secret"
                               : "broke off the authentication",
            why, host, (unsigned)port);
    }
    if (n < 0 || (size_t)n >= sizeof(line)) {
        n = snprintf(line, sizeof(line), "-ERR cannot join: %s\r\n",
                     tls ? "TLS with the seed failed"
                         : "the seed refused this node's cluster secret");
    }
    join_finish(cn, line, (size_t)n);
    cluster__process_ready(cn);
}

/* ---- durable acks ---------------------------------------------------------
 */

int cluster_handoff(struct server *s)
{
    struct cnode *cn = s->cluster;
    return cn && cn->hints ? engine_handoff(cn->hints) : RK_OK;
}

void cluster_on_durable(struct server *s)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL) {
        return;
    }
    node_on_durable(cn->node, cluster__now_mono());
    cluster__run_node_actions(cn);
    cluster__process_ready(cn);
}

void cluster_storage_check(struct server *s)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL) {
        return;
    }
    struct engine_stats st;
    engine_stats(s->engine, &st);
    char why[384] = "";
    if (st.read_only) {
        if (!node_is_degraded(cn->node) ||
            node_storage_reason(cn->node)[0] == '\0' ||
            strcmp(node_storage_reason(cn->node), NODE_STORAGE_READ_ONLY) ==
                0) {
            /* it just failed: look at the disk now, for the reason */
            s->disk.checked_ms = 0;
            disk_watch_check(&s->disk, s->cfg->data_dir,
                             &s->cfg->disk_low_water, server_mono_ms());
        }
        disk_degraded_reason(&s->disk, s->cfg->data_dir, st.error, why,
                             sizeof(why));
    }
    if (st.read_only == node_is_degraded(cn->node) &&
        strcmp(why, node_storage_reason(cn->node)) == 0) {
        return;
    }
    node_set_storage_state(cn->node, st.read_only, why, cluster__now_mono());
    cluster__run_node_actions(cn);
}

struct engine *cluster_hint_store(struct server *s)
{
    return s->cluster ? s->cluster->hints : NULL;
}

const char *cluster_degraded_reason(struct server *s)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL || !node_is_multi(cn->node) || !node_is_degraded(cn->node)) {
        return NULL;
    }
    return node_storage_reason(cn->node);
}

/* ---- timer ----------------------------------------------------------------
 */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cnode *cn = arg;
    uint64_t now = cluster__now_mono();
    if (now >= node_next_deadline_ms(cn->node)) {
        node_on_tick(cn->node, now);
        cluster__run_node_actions(cn);
    }
    seeds_tick(cn, now);
    cluster__retry_stalled(cn);
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
    cn->actor = XXH3_64bits(seed, (size_t)n) & DVV_ACTOR_MASK;
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
    SSL_CTX *tls = NULL;
    rc = cluster_tls_prepare(s, cfg, cn->node_id, &tls, err, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    unsigned char secret[PEER_AUTH_SECRET_MAX];
    size_t secret_len = 0;
    bool generated = false;
    rc = cluster_secret_load(cn->dir, cfg->cluster_secret_file, secret,
                             &secret_len, &generated, cn->secret_path,
                             sizeof(cn->secret_path), err, errlen);
    if (rc != RK_OK) {
        tls_ctx_free(tls);
        return rc;
    }
    cn->secret_own = cfg->cluster_secret_file[0] == '\0';
    if (generated) {
        rk_log(RK_LOG_INFO, "cluster_secret_generated",
               "path=%s msg=\"peers authenticate with this cluster secret; "
               "to add a node: ringkv -p NEW_NODE_PORT cluster join "
               "%s:%d --secret-file %s (or start every node with "
               "--cluster-secret-file); keep it private\"",
               cn->secret_path, cfg->bind, pp, cn->secret_path);
    }
    struct peer_transport_config tc = {
        .secret = secret,
        .secret_len = secret_len,
        .tls_ctx = tls,
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
        .on_auth_failed = on_auth_failed,
    };
    rc = peer_transport_create(s->base, &tc, &cbs, cn, &cn->pt, err, errlen);
    OPENSSL_cleanse(secret, sizeof(secret));
    tls_ctx_free(tls); /* the transport holds its own reference */
    if (rc != RK_OK) {
        return rc;
    }
    cn->peer_port = peer_transport_port(cn->pt);
    struct rk_buf saved;
    rk_buf_init(&saved);
    /* time and randomness of the node (its actor's nonce, the gossip and
     * SWIM seeds, the SWIM incarnation) come from the environment */
    env_real_init(&cn->env, &cn->env_state);
    cn->env_state.base = s->base; /* the loop's cached time */
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
    struct rk_buf ho;
    rk_buf_init(&ho);
    /* the handoff checkpoint: unreadable or missing = start transfers
     * over (never an error) */
    int hrc = read_file(cn->dir, HANDOFF_FILE, &ho);
    char hpath[4200];
    snprintf(hpath, sizeof(hpath), "%s/%s", cn->dir, HANDOFF_FILE);
    if (bg_file_start(&cn->ckpt_file, hpath) != RK_OK) {
        cn->ckpt_file = NULL; /* written on the loop, as before */
    }
    rc = open_hints(cn, err, errlen);
    if (rc != RK_OK) {
        rk_buf_fini(&saved);
        rk_buf_fini(&ho);
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
                .tls_port = (uint16_t)cfg->tls_port,
                .cluster_name = cfg->cluster_name,
                .ring_size = cfg->ring_size,
                .n_val = cfg->n_val,
                .seed = rk_env_rand64(&cn->env),
            },
        .saved_state = src == RK_OK ? saved.base : NULL,
        .saved_len = src == RK_OK ? saved.len : 0,
        .saved_handoff = hrc == RK_OK ? ho.base : NULL,
        .saved_handoff_len = hrc == RK_OK ? ho.len : 0,
        .swim =
            {
                .incarnation = rk_env_wall_ms(&cn->env),
                .seed = rk_env_rand64(&cn->env),
            },
        .actor = cn->actor,
        .versioned = cn->versioned,
        .settings = cluster__settings_of(cfg),
        .data = s->engine,
        .hints = cn->hints,
        .env = &cn->env,
        .max_ops = COORD_SLOTS,
    };
    rc = node_create(&nc, &cn->node, err, errlen);
    rk_buf_fini(&saved);
    rk_buf_fini(&ho);
    if (rc != RK_OK) {
        return rc;
    }
    if (generated && node_valid_members(cn->node) > 1) {
        /* a member of a cluster formed before peer authentication (an
         * upgrade): a secret of its own would cut it off from the others,
         * and gossip could not say so.  Made again at the next start. */
        (void)unlink(cn->secret_path);
        snprintf(err, errlen,
                 "this node is a member of a cluster of %zu nodes formed "
                 "before peers authenticated each other: give every node "
                 "the same secret and restart them (openssl rand -hex 32 > "
                 "FILE; chmod 600 FILE; ringkvd --cluster-secret-file FILE, "
                 "or copy FILE to each DATA_DIR/cluster.secret); "
                 "docs/security.md",
                 node_valid_members(cn->node));
        return RK_EPERM;
    }
    rc = cluster__ops_create(cn);
    if (rc != RK_OK) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    cluster__run_node_actions(cn);
    if (membership_phase(node_membership(cn->node)) == MEMBERSHIP_NONE) {
        rc = node_create_cluster(cn->node, cluster__now_mono());
        if (rc != RK_OK) {
            snprintf(err, errlen, "cannot create the cluster: %s",
                     membership_errmsg(node_membership(cn->node)));
            return rc;
        }
        cluster__run_node_actions(cn);
    }
    rc = seeds_parse(&cn->seeds, cfg->seeds, err, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    if (seeds_drop_self(&cn->seeds, cfg->bind, (uint16_t)pp)) {
        rk_log(RK_LOG_INFO, "cluster_seed_self",
               "reason=\"this node is one of the seeds: the others join it\"");
    }
    cn->resume_ev = event_new(s->base, -1, 0, cluster__resume_cb, cn);
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

int cluster_tls_prepare(struct server *s,
                        const struct rk_config *cfg,
                        const char *node_id,
                        struct ssl_ctx_st **out,
                        char *err,
                        size_t errlen)
{
    *out = NULL;
    const struct cnode *cn = s->cluster;
    bool running = cn != NULL && cn->pt != NULL;
    bool on = running ? peer_transport_is_tls(cn->pt) : cfg->tls_cluster;
    if (!on || (node_id == NULL && !running)) {
        return RK_OK; /* plain peers, or none yet: read at the start */
    }
    if (node_id == NULL) {
        node_id = cn->node_id;
    }
    char why[4600];
    SSL_CTX *ctx = tls_peer_ctx_new(cfg, why, sizeof(why));
    if (ctx == NULL) {
        snprintf(err, errlen, "tls-cluster: %s", why);
        return RK_EINVAL;
    }
    if (peer_tls_ctx_check(ctx, node_id, err, errlen) != RK_OK) {
        tls_ctx_free(ctx);
        return RK_EINVAL;
    }
    *out = ctx;
    return RK_OK;
}

void cluster_tls_set(struct server *s, struct ssl_ctx_st *ctx)
{
    if (ctx == NULL) {
        return;
    }
    if (s->cluster && s->cluster->pt) {
        (void)peer_transport_set_tls(s->cluster->pt, ctx);
    }
    tls_ctx_free(ctx);
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
    op_machine_destroy(cn->ops);
    node_destroy(cn->node);
    if (cn->hints) {
        engine_close(cn->hints);
    }
    bg_file_stop(cn->ckpt_file); /* writes the last checkpoint queued */
    rk_free(cn);
    s->cluster = NULL;
}
