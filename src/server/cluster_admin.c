/*
 * cluster_admin.c - what an operator sees of the cluster: RINGKV.CLUSTER
 * (JOIN, LEAVE, REMOVE, STATUS, FAULT), INFO's cluster section, CONFIG SET
 * of the replication settings, /cluster and /stats JSON, and the
 * Prometheus metrics of the node (see cluster.h).
 */
#include <openssl/crypto.h>

#include "server/bg_file.h"
#include "server/cluster_internal.h"
#include "server/cluster_secret.h"
#include "server/peer_transport.h"

/* ---- RINGKV.CLUSTER --------------------------------------------------------
 */

/* The transition line of STATUS: partitions done, this node's part. */
static int transition_line(struct cnode *cn, char *line, size_t cap)
{
    const struct membership *mem = node_membership(cn->node);
    const struct ring *nx = membership_next_ring(mem);
    if (nx == NULL) {
        return snprintf(line, cap, "transition none\n");
    }
    uint32_t q = ring_size(nx), mine = 0, mine_done = 0;
    uint32_t done = q - membership_partitions_pending(mem);
    for (uint32_t p = 0; p < q; p++) {
        bool got = false;
        if (membership_pending_for(mem, p, cn->node_id, &got)) {
            mine++;
            mine_done += got;
        }
    }
    const struct node_stats *st = node_stats(cn->node);
    return snprintf(
        line, cap,
        "transition epoch %" PRIu32 "  partitions done %" PRIu32 "/%" PRIu32
        "  receiving here %" PRIu32 "/%" PRIu32 "  keys in %" PRIu64
        " out %" PRIu64 "  retries %" PRIu64 "\n",
        membership_epoch(mem), done, q, mine_done, mine, st->handoff_keys_in,
        st->handoff_keys_out, st->handoff_retries);
}

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
    n = transition_line(cn, line, sizeof(line));
    rk_buf_append(out, line, (size_t)n);
    /* one indented line per partition this node is receiving */
    struct node_transfer xs[8];
    size_t nx = node_transfers(cn->node, cluster__now_mono(), xs, 8);
    for (size_t i = 0; i < nx && i < 8; i++) {
        char srcs[256];
        size_t w = 0;
        srcs[0] = '\0';
        for (size_t j = 0; j < xs[i].n_src && w < sizeof(srcs); j++) {
            w += (size_t)snprintf(srcs + w, sizeof(srcs) - w, "%s%s:%s",
                                  j ? "," : "", xs[i].src[j].id,
                                  xs[i].src[j].state);
        }
        uint32_t retries = 0;
        for (size_t j = 0; j < xs[i].n_src; j++) {
            retries += xs[i].src[j].retries;
        }
        char eta[32] = "ETA ?";
        if (xs[i].eta_s >= 0) {
            snprintf(eta, sizeof(eta), "ETA %" PRId64 " s", xs[i].eta_s);
        }
        n = snprintf(line, sizeof(line),
                     "  receiving partition %" PRIu32 " from %s  keys %" PRIu64
                     "  bytes %" PRIu64 "  %.1f MiB/s  %.1f s  %" PRIu32
                     ".%" PRIu32 "%%  %s  retries %" PRIu32 "\n",
                     xs[i].partition, srcs, xs[i].keys, xs[i].bytes,
                     (double)xs[i].bytes_per_s / (1024.0 * 1024.0),
                     (double)xs[i].elapsed_ms / 1000.0, xs[i].permille / 10,
                     xs[i].permille % 10, eta, retries);
        rk_buf_append(out, line,
                      (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
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
        n = snprintf(line, sizeof(line),
                     "%-24s %-22s %-6u %-8s %-10s %-8s %s\n", mm.node_id, addr,
                     mm.resp_port, membership_status_name(mm.status), parts,
                     membership_status_active(mm.status)
                         ? cluster__seen_as(cn, mm.node_id)
                         : "-",
                     ver);
        rk_buf_append(out, line, (size_t)n);
    }
}

static uint64_t engine_keys(struct server *s)
{
    struct engine_stats st;
    engine_stats(s->engine, &st);
    return st.live_keys;
}

/*
 * RINGKV.CLUSTER JOIN first probes the seed's address with a TCP connect
 * from the loop (JOIN_PROBE_TIMEOUT_MS), so that a seed that refuses the
 * connection, does not resolve or does not answer fails the command at
 * once with the reason, as `ringkv cluster join` does from the CLI,
 * instead of the node retrying its join for the join timeout (30 s).  A
 * seed that accepts goes on to node_join().  The client's order is held
 * (op_hold, cn->join_op) from the start, so a second JOIN meanwhile is
 * "already in progress"; a client that goes away clears cn->join_op
 * (cluster_client_gone) and the probe then just ends.
 */
#define JOIN_PROBE_TIMEOUT_MS 3000

struct join_probe
{
    struct cnode *cn;
    struct op *op;    /* cn->join_op while its client waits */
    struct event *ev; /* EV_WRITE on fd, with the timeout */
    evutil_socket_t fd;
    char host[300];
    uint16_t port;
    char replaces[CL_ID_MAX + 1]; /* REPLACE's old member; "" for JOIN */
};

/* Ends the held JOIN with an error reply (the probe failed). */
static void join_probe_fail(struct cnode *cn,
                            struct op *op,
                            const char *host,
                            unsigned port,
                            const char *why)
{
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "-ERR cannot join: seed %s:%u: %s (give a running "
                     "node's peer port)\r\n",
                     host, port, why);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        n = snprintf(line, sizeof(line), "-ERR cannot join: %s\r\n", why);
    }
    cn->join_op = NULL;
    rk_log(RK_LOG_WARN, "cluster_join_refused", "seed=%s:%u reason=\"%s\"",
           host, port, why);
    op_hold_done(cn->ops, op, line, (size_t)n);
    cluster__process_ready(cn);
}

/* The seed accepted a connection: the join proper. */
static void join_start(struct cnode *cn,
                       struct op *op,
                       const char *host,
                       uint16_t port,
                       const char *replaces)
{
    int rc = replaces[0] ? node_replace(cn->node, host, port, replaces,
                                        cluster__now_mono())
                         : node_join(cn->node, host, port, cluster__now_mono());
    if (rc == RK_EBUSY && node_valid_members(cn->node) <= 1 &&
        (port != cn->join_port || strcmp(host, cn->join_host) != 0)) {
        char line[700];
        int n = snprintf(line, sizeof(line),
                         "-ERR cannot join: a join to %s:%u is still running "
                         "(it retries until its deadline, 30 s): wait for "
                         "it, or restart this node\r\n",
                         cn->join_host, (unsigned)cn->join_port);
        cn->join_op = NULL;
        op_hold_done(cn->ops, op, line, (size_t)n);
        cluster__process_ready(cn);
        return;
    }
    if (rc == RK_EBUSY && node_valid_members(cn->node) <= 1) {
        /* a join of this lone node is still running (an earlier JOIN whose
         * client got an error, say a refused secret, and which retries
         * until its deadline): this JOIN waits for its outcome; a secret
         * it brought is used by the next try */
        rk_log(RK_LOG_INFO, "cluster_join_waits",
               "seed=%s:%u msg=\"a join is already running: this JOIN "
               "gets its outcome\"",
               host, (unsigned)port);
        return;
    }
    if (rc != RK_OK) {
        char line[512];
        int n;
        if (rc == RK_EBUSY) {
            n = snprintf(line, sizeof(line),
                         "-ERR cannot join: this node is already a member of "
                         "a cluster of %zu nodes (leave it first)\r\n",
                         node_valid_members(cn->node));
        } else {
            n = snprintf(line, sizeof(line), "-ERR cannot join: %.400s\r\n",
                         membership_errmsg(node_membership(cn->node)));
        }
        cn->join_op = NULL;
        cluster__run_node_actions(cn);
        op_hold_done(cn->ops, op, line, (size_t)n);
        cluster__process_ready(cn);
        return;
    }
    snprintf(cn->join_host, sizeof(cn->join_host), "%s", host);
    cn->join_port = port;
    rk_log(RK_LOG_INFO, "cluster_join_start", "seed=%s:%u replaces=%s", host,
           (unsigned)port, replaces[0] ? replaces : "-");
    cluster__run_node_actions(cn);
    cluster__process_ready(cn);
}

static void join_probe_free(struct join_probe *p)
{
    if (p->ev != NULL) {
        event_free(p->ev);
    }
    if (p->fd >= 0) {
        evutil_closesocket(p->fd);
    }
    rk_free(p);
}

static void join_probe_cb(evutil_socket_t fd, short what, void *arg)
{
    struct join_probe *p = arg;
    struct cnode *cn = p->cn;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (!(what & EV_TIMEOUT) &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) {
        soerr = errno;
    }
    if (cn->join_op != p->op) {
        join_probe_free(p); /* the client went away */
        return;
    }
    if (what & EV_TIMEOUT) {
        join_probe_fail(cn, p->op, p->host, p->port,
                        "connect timed out after 3000 ms");
    } else if (soerr != 0) {
        join_probe_fail(cn, p->op, p->host, p->port, strerror(soerr));
    } else {
        join_start(cn, p->op, p->host, p->port, p->replaces);
    }
    join_probe_free(p);
}

/*
 * Starts the probe of host:port for the held JOIN `op`.  Any error here
 * (no address, a refused connect) fails the JOIN at once.
 */
static void join_probe_start(struct cnode *cn,
                             struct op *op,
                             const char *host,
                             uint16_t port,
                             const char *replaces)
{
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM};
    struct evutil_addrinfo *ai = NULL;
    int g = evutil_getaddrinfo(host, portstr, &hints, &ai);
    if (g != 0) {
        join_probe_fail(cn, op, host, port, evutil_gai_strerror(g));
        return;
    }
    struct join_probe *p = rk_calloc(1, sizeof(*p));
    if (p == NULL) {
        evutil_freeaddrinfo(ai);
        join_probe_fail(cn, op, host, port, "out of memory");
        return;
    }
    p->cn = cn;
    p->op = op;
    p->port = port;
    snprintf(p->host, sizeof(p->host), "%s", host);
    snprintf(p->replaces, sizeof(p->replaces), "%s", replaces);
    p->fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
    int e = p->fd < 0 ? errno : 0;
    if (e == 0 && connect(p->fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
        errno != EINPROGRESS) {
        e = errno;
    }
    evutil_freeaddrinfo(ai);
    if (e == 0) {
        p->ev = event_new(cn->srv->base, p->fd, EV_WRITE, join_probe_cb, p);
        struct timeval tv = {.tv_sec = JOIN_PROBE_TIMEOUT_MS / 1000,
                             .tv_usec = (JOIN_PROBE_TIMEOUT_MS % 1000) * 1000};
        if (p->ev == NULL || event_add(p->ev, &tv) != 0) {
            e = ENOMEM;
        }
    }
    if (e != 0) {
        join_probe_free(p);
        join_probe_fail(cn, op, host, port, strerror(e));
    }
}

/* JOIN HOST:PEERPORT, or REPLACE OLD HOST:PEERPORT (`old` not NULL): both
 * sent to the node that joins. */
/* JOIN ... SECRET HEX: the cluster's secret, which this lone node takes
 * (its transport at once, DATA_DIR/cluster.secret for its restarts)
 * before it joins.  Returns false after replying with an error. */
static bool join_secret(struct client *c, const struct resp_arg *hex)
{
    struct cnode *cn = c->srv->cluster;
    unsigned char secret[PEER_AUTH_SECRET_MAX];
    size_t len = 0;
    const char *why = NULL;
    int prc = peer_auth_secret_parse(hex->ptr, hex->len, secret, &len, &why);
    /* the argument lives in the client's query buffer: wipe it there */
    OPENSSL_cleanse((void *)hex->ptr, hex->len);
    if (prc != RK_OK) {
        reply_errorf(c, "ERR invalid cluster secret: %s", why);
        return false;
    }
    if (!cn->secret_own) {
        /* the same secret as its --cluster-secret-file: nothing to do */
        unsigned char cur[PEER_AUTH_SECRET_MAX];
        size_t cur_len = 0;
        bool gen = false;
        char path[4200], lerr[512];
        bool same = cluster_secret_load(cn->dir, cn->secret_path, cur, &cur_len,
                                        &gen, path, sizeof(path), lerr,
                                        sizeof(lerr)) == RK_OK &&
                    cur_len == len && CRYPTO_memcmp(cur, secret, len) == 0;
        OPENSSL_cleanse(cur, sizeof(cur));
        OPENSSL_cleanse(secret, sizeof(secret));
        if (same) {
            return true;
        }
        reply_errorf(c,
                     "ERR this node reads its cluster secret from %s "
                     "(--cluster-secret-file): put the cluster's secret "
                     "there and restart it, or join without a secret",
                     cn->secret_path);
        return false;
    }
    if (node_is_multi(cn->node)) {
        OPENSSL_cleanse(secret, sizeof(secret));
        reply_error(c,
                    "ERR this node is already a member of a cluster: it "
                    "keeps that cluster's secret");
        return false;
    }
    char err[512] = "";
    int rc = cluster_secret_store(cn->dir, secret, len, err, sizeof(err));
    if (rc == RK_OK) {
        rc = peer_transport_set_secret(cn->pt, secret, len);
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc != RK_OK) {
        reply_errorf(c, "ERR cannot take the cluster secret: %s",
                     err[0] ? err : rk_strerror(rc));
        return false;
    }
    rk_log(RK_LOG_INFO, "cluster_secret_replaced",
           "path=%s msg=\"this node now authenticates with the secret of the "
           "cluster it joins\"",
           cn->secret_path);
    return true;
}

static void cmd_join(struct client *c,
                     const struct resp_arg *addr,
                     const struct resp_arg *old,
                     const struct resp_arg *secret)
{
    char replaces[CL_ID_MAX + 1] = "";
    if (old != NULL) {
        if (old->len == 0 || old->len > CL_ID_MAX) {
            reply_error(c,
                        "ERR usage: RINGKV.CLUSTER REPLACE OLD-NODE-ID "
                        "HOST:PEERPORT (sent to the new node)");
            return;
        }
        memcpy(replaces, old->ptr, old->len);
        replaces[old->len] = '\0';
    }
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
    if (cn->join_op || cn->seed_join) {
        reply_error(c, cn->seed_join
                           ? "ERR a join to a seed (--seeds) is in progress"
                           : "ERR a join is already in progress");
        return;
    }
    uint64_t keys = engine_keys(s);
    if (keys > 0 && !node_is_multi(cn->node)) {
        reply_errorf(c,
                     "ERR join needs an empty node: this node holds %" PRIu64
                     " keys, which a join would not hand to their owners; "
                     "start it with an empty data dir",
                     keys);
        return;
    }
    if (secret != NULL && !join_secret(c, secret)) {
        return;
    }

    struct op *op = NULL;
    if (op_hold(cn->ops, &c->ops, &op) != RK_OK) {
        reply_error(c, "ERR out of memory");
        return;
    }
    cn->join_op = op;
    join_probe_start(cn, op, host, (uint16_t)port, replaces);
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
    if (cluster__arg_eq(sub, "STATUS") && argc == 2) {
        struct rk_buf b;
        rk_buf_init(&b);
        status_text(cn, &b);
        reply_bulk(c, b.base ? b.base : "", b.len);
        rk_buf_fini(&b);
    } else if (cluster__arg_eq(sub, "JOIN") &&
               (argc == 3 ||
                (argc == 5 && cluster__arg_eq(&argv[3], "SECRET")))) {
        cmd_join(c, &argv[2], NULL, argc == 5 ? &argv[4] : NULL);
    } else if (cluster__arg_eq(sub, "PLAN") || cluster__arg_eq(sub, "COMMIT")) {
        cluster__plan_cmd(c, argc, argv);
    } else if (cluster__arg_eq(sub, "REPLACE") &&
               (argc == 4 ||
                (argc == 6 && cluster__arg_eq(&argv[4], "SECRET")))) {
        cmd_join(c, &argv[3], &argv[2], argc == 6 ? &argv[5] : NULL);
    } else if (cluster__arg_eq(sub, "LEAVE") &&
               (argc == 2 ||
                (argc == 3 && cluster__arg_eq(&argv[2], "FORCE")))) {
        int rc = node_leave(cn->node, engine_keys(s) > 0, argc == 3,
                            cluster__now_mono());
        cluster__run_node_actions(cn);
        if (rc != RK_OK) {
            reply_errorf(c, "ERR cannot leave: %s",
                         membership_errmsg(node_membership(cn->node)));
            return;
        }
        reply_ok(c);
    } else if (cluster__arg_eq(sub, "REMOVE") &&
               (argc == 3 ||
                (argc == 4 && cluster__arg_eq(&argv[3], "FORCE")))) {
        char id[CL_ID_MAX + 1];
        if (argv[2].len == 0 || argv[2].len > CL_ID_MAX) {
            reply_error(c, "ERR invalid node id");
            return;
        }
        memcpy(id, argv[2].ptr, argv[2].len);
        id[argv[2].len] = '\0';
        int rc = node_remove(cn->node, id, argc == 4, cluster__now_mono());
        cluster__run_node_actions(cn);
        if (rc != RK_OK) {
            if (rc == RK_ENOTFOUND &&
                membership_errmsg(node_membership(cn->node))[0] == '\0') {
                reply_errorf(c, "ERR no valid member '%s'", id);
            } else {
                reply_errorf(c, "ERR cannot remove '%s': %s", id,
                             membership_errmsg(node_membership(cn->node)));
            }
            return;
        }
        reply_ok(c);
    } else if (cluster__arg_eq(sub, "FAULT") && (argc == 3 || argc == 4)) {
#ifdef RK_TEST_BUILD
        if (argc == 3 && cluster__arg_eq(&argv[2], "CLEAR")) {
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
        bool in = cluster__arg_eq(&argv[3], "in") ||
                  cluster__arg_eq(&argv[3], "both");
        bool out = cluster__arg_eq(&argv[3], "out") ||
                   cluster__arg_eq(&argv[3], "both");
        if (!in && !out && !cluster__arg_eq(&argv[3], "none")) {
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
                     "'%.*s'. Try JOIN HOST:PEERPORT, REPLACE OLD "
                     "HOST:PEERPORT, LEAVE [FORCE], REMOVE NODE [FORCE], "
                     "PLAN ..., COMMIT [FORCE], STATUS.",
                     (int)(sub->len > 64 ? 64 : sub->len), sub->ptr);
    }
}

void cluster_info(struct server *s, struct rk_buf *out)
{
    struct cnode *cn = s->cluster;
    char b[2048];
    if (cn == NULL) {
        int n =
            snprintf(b, sizeof(b), "cluster_enabled:0\r\nringkv_cluster:0\r\n");
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
        /* cluster_enabled is Redis's "this node speaks the Redis Cluster
         * protocol" (CLUSTER SLOTS ...), which client libraries read to
         * pick cluster mode: 1 exactly when those commands work, i.e.
         * this node is a member (cluster_slots.c, issue 13 item 2);
         * ringkv_cluster says this node runs the ringkv cluster code. */
        "cluster_enabled:%d\r\n"
        "ringkv_cluster:1\r\n"
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
        "cluster_persist_errors:%" PRIu64
        "\r\n"
        "cluster_storage:%s\r\n"
        "cluster_members_degraded:%zu\r\n",
        cluster_redis_enabled(s) ? 1 : 0,
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
        ts.n_connected, ts.frames_out, ts.frames_in,
        cn->persist_errors + bg_file_errors(cn->ckpt_file),
        node_is_degraded(cn->node) ? "degraded" : "ok",
        node_members_degraded(cn->node));
    rk_buf_append(out, b, (size_t)n);
    rk_buf_appendf(out,
                   "cluster_peer_auth_failures:%" PRIu64
                   "\r\n"
                   "cluster_peer_rejected:%" PRIu64
                   "\r\n"
                   "cluster_peer_spoofed:%" PRIu64
                   "\r\n"
                   "cluster_gossip_refused:%" PRIu64
                   "\r\n"
                   "cluster_peer_tls:%s\r\n"
                   "cluster_peer_tls_failures:%" PRIu64 "\r\n",
                   ts.auth_failed, ts.rejected,
                   node_stats(cn->node)->peer_spoofed,
                   membership_gossip_refused(node_membership(cn->node)),
                   peer_transport_is_tls(cn->pt) ? "yes" : "no", ts.tls_failed);
    const struct op_chunk_stats *chs = op_machine_chunk_stats(cn->ops);
    rk_buf_appendf(out,
                   "cluster_chunked_values_stored:%" PRIu64
                   "\r\n"
                   "cluster_chunked_bytes_stored:%" PRIu64
                   "\r\n"
                   "cluster_chunked_values_fetched:%" PRIu64
                   "\r\n"
                   "cluster_chunked_bytes_fetched:%" PRIu64
                   "\r\n"
                   "cluster_chunk_manifests_superseded:%" PRIu64
                   "\r\n"
                   "cluster_chunk_blocks_deleted:%" PRIu64
                   "\r\n"
                   "cluster_chunk_blocks_delete_failed:%" PRIu64
                   "\r\n"
                   "cluster_chunk_gc_checks:%" PRIu64
                   "\r\n"
                   "cluster_chunk_gc_deferred:%" PRIu64
                   "\r\n"
                   "cluster_chunk_manifests_kept:%" PRIu64 "\r\n",
                   chs->values_stored, chs->bytes_stored, chs->values_fetched,
                   chs->bytes_fetched, node_stats(cn->node)->chunk_gc_queued,
                   node_stats(cn->node)->chunk_blocks_deleted,
                   node_stats(cn->node)->chunk_blocks_failed,
                   node_stats(cn->node)->chunk_gc_checks,
                   node_stats(cn->node)->chunk_gc_deferred,
                   node_stats(cn->node)->chunk_manifests_kept);
    const struct node_stats *hs = node_stats(cn->node);
    const struct membership *mem = node_membership(cn->node);
    uint32_t pending = membership_partitions_pending(mem);
    rk_buf_appendf(
        out,
        "cluster_transition:%d\r\n"
        "cluster_transition_epoch:%" PRIu32
        "\r\n"
        "cluster_partitions_pending:%" PRIu32
        "\r\n"
        "cluster_handoff_transfers_done:%" PRIu64
        "\r\n"
        "cluster_handoff_keys_in:%" PRIu64
        "\r\n"
        "cluster_handoff_bytes_in:%" PRIu64
        "\r\n"
        "cluster_handoff_keys_out:%" PRIu64
        "\r\n"
        "cluster_handoff_bytes_out:%" PRIu64
        "\r\n"
        "cluster_handoff_folds_refused:%" PRIu64
        "\r\n"
        "cluster_handoff_retries:%" PRIu64
        "\r\n"
        "cluster_handoff_forwards:%" PRIu64
        "\r\n"
        "cluster_handoff_relays:%" PRIu64
        "\r\n"
        "cluster_handoff_keys_dropped:%" PRIu64
        "\r\n"
        "cluster_handoff_throttled:%" PRIu64
        "\r\n"
        "cluster_handoff_resumed:%" PRIu64
        "\r\n"
        "cluster_handoff_verified:%" PRIu64
        "\r\n"
        "cluster_handoff_verify_keys:%" PRIu64
        "\r\n"
        "cluster_handoff_verify_folds:%" PRIu64 "\r\n",
        membership_next_ring(mem) != NULL ? 1 : 0, membership_epoch(mem),
        pending, hs->handoff_transfers_done, hs->handoff_keys_in,
        hs->handoff_bytes_in, hs->handoff_keys_out, hs->handoff_bytes_out,
        hs->handoff_folds_refused, hs->handoff_retries, hs->handoff_forwards,
        hs->handoff_relays, hs->handoff_keys_dropped, hs->handoff_throttled,
        hs->handoff_resumed, hs->handoff_verified, hs->handoff_verify_keys,
        hs->handoff_verify_folds);
    struct node_aae_info ai;
    node_aae_info(cn->node, cluster__now_mono(), &ai);
    rk_buf_appendf(out,
                   "aae_enabled:%d\r\n"
                   "aae_trees:%" PRIu32
                   "\r\n"
                   "aae_trees_built:%" PRIu32
                   "\r\n"
                   "aae_exchanges:%" PRIu64
                   "\r\n"
                   "aae_exchange_failures:%" PRIu64
                   "\r\n"
                   "aae_keys_differing:%" PRIu64
                   "\r\n"
                   "aae_keys_repaired:%" PRIu64
                   "\r\n"
                   "aae_refused:%" PRIu64
                   "\r\n"
                   "aae_repair_queue_bytes:%" PRIu64
                   "\r\n"
                   "aae_repairs_inflight:%" PRIu64
                   "\r\n"
                   "aae_last_full_exchange_age_s:%" PRId64 "\r\n",
                   node_settings(cn->node)->aae_enabled ? 1 : 0, ai.partitions,
                   ai.built, hs->aae_exchanges, hs->aae_exchange_failures,
                   hs->aae_keys_differing, hs->aae_keys_repaired,
                   hs->aae_refused, ai.repair_queue, ai.repairs_inflight,
                   ai.oldest_exchange_s);
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
        "reads_partial:%" PRIu64
        "\r\n"
        "reads_widened:%" PRIu64
        "\r\n"
        "speculative_retries:%" PRIu64
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
        node_actor(cn->node), cn->epoch,
        node_settings(cn->node)->lww ? "lww" : "siblings", rs->updates,
        rs->merges_written, rs->lww_discards, rs->bound_dropped,
        rs->clock_pruned, rs->bad_objects + cs.bad_answers, cs.read_repairs,
        cs.reads_partial, cs.read_widened, cs.speculative,
        s->cfg->sloppy_quorum ? "on" : "off", node_hints_pending(cn->node),
        node_stats(cn->node)->hints_stored,
        node_stats(cn->node)->hints_delivered, s->cfg->tombstone_gc_grace_s,
        node_stats(cn->node)->tombstones_reaped, rs->clock_ahead,
        rs->clock_ahead_max_ms);
    rk_buf_append(out, b, (size_t)n);
}

struct node_settings cluster__settings_of(const struct rk_config *cfg)
{
    return (struct node_settings){
        .quorum = {cfg->n_val, cfg->r_val, cfg->w_val},
        .sloppy_quorum = cfg->sloppy_quorum,
        .request_timeout_ms = cfg->request_timeout_ms,
        .read_repair_wait_ms = cfg->read_repair_wait_ms,
        .read_repair_permille =
            (uint32_t)(cfg->read_repair_chance * 1000 + 0.5),
        .speculative_retry_ms = cfg->speculative_retry_ms,
        .handoff_drop_grace_ms = cfg->handoff_drop_grace_ms,
        .handoff_concurrency = cfg->handoff_concurrency,
        .handoff_max_kbps = cfg->handoff_max_mbps * 1024,
        .aae_enabled = cfg->aae,
        .aae_exchange_interval_ms = cfg->aae_exchange_interval_ms,
        .aae_concurrency = cfg->aae_concurrency,
        .aae_repair_rate = cfg->aae_repair_rate,
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
        struct node_settings set = cluster__settings_of(s->cfg);
        node_set_settings(cn->node, &set);
        cluster__run_node_actions(cn);
    }
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

/* /cluster's "transition": null, or the epoch, the partitions still
 * pending and the transfers this node runs (issue 14 item 5). */
static json_t *transition_json(struct cnode *cn)
{
    const struct membership *mem = node_membership(cn->node);
    if (membership_next_ring(mem) == NULL) {
        return json_null();
    }
    json_t *arr = json_array();
    struct node_transfer xs[8];
    size_t nx = node_transfers(cn->node, cluster__now_mono(), xs, 8);
    for (size_t i = 0; i < nx && i < 8; i++) {
        json_t *srcs = json_array();
        for (size_t j = 0; j < xs[i].n_src; j++) {
            json_array_append_new(
                srcs, json_pack("{s:s, s:s, s:i}", "node_id", xs[i].src[j].id,
                                "state", xs[i].src[j].state, "retries",
                                (int)xs[i].src[j].retries));
        }
        json_array_append_new(
            arr,
            json_pack("{s:i, s:o, s:I, s:I, s:I, s:I, s:i, s:I}", "partition",
                      (int)xs[i].partition, "sources", srcs, "keys",
                      (json_int_t)xs[i].keys, "bytes", (json_int_t)xs[i].bytes,
                      "elapsed_ms", (json_int_t)xs[i].elapsed_ms, "bytes_per_s",
                      (json_int_t)xs[i].bytes_per_s, "progress_permille",
                      (int)xs[i].permille, "eta_s", (json_int_t)xs[i].eta_s));
    }
    return json_pack("{s:i, s:i, s:o}", "epoch", (int)membership_epoch(mem),
                     "partitions_pending",
                     (int)membership_partitions_pending(mem), "transfers", arr);
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
        bool valid = membership_status_active(mm.status);
        uint64_t pv = 0;
        bool has_pv = !self && node_peer_version(cn->node, mm.node_id, &pv);
        json_t *o = json_pack(
            "{s:s, s:s, s:i, s:i, s:i, s:s, s:i, s:s, s:b, s:b}", "node_id",
            mm.node_id, "host", mm.host, "resp_port", (int)mm.resp_port,
            "http_port", (int)mm.http_port, "peer_port", (int)mm.peer_port,
            "status", membership_status_name(mm.status), "partitions",
            idx >= 0 ? (int)ring_owned_count(r, (size_t)idx) : 0, "seen",
            cluster__seen_as(cn, mm.node_id), "up",
            valid && (self || cluster__peer_is_up(cn, mm.node_id)), "self",
            self);
        if (o) {
            json_object_set_new(o, "tls_port", json_integer(mm.tls_port));
            json_object_set_new(
                o, "storage",
                json_string(valid && node_peer_is_degraded(cn->node, mm.node_id)
                                ? "degraded"
                                : "ok"));
        }
        if (o && self && node_is_degraded(cn->node)) {
            json_object_set_new(o, "storage_reason",
                                json_string(node_storage_reason(cn->node)));
        }
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
    if (j) {
        json_object_set_new(j, "transition", transition_json(cn));
    }
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

/* Ownership transitions, partition handoff and the chunk GC in
 * /metrics (issue 14 item 5). */
static void cluster__handoff_metrics(struct cnode *cn, struct rk_buf *out)
{
    const struct node_stats *st = node_stats(cn->node);
    const struct membership *mem = node_membership(cn->node);
    metrics_one(out, "ringkv_cluster_transition", "gauge",
                "1 while an ownership transition (join, leave, remove) runs.",
                membership_next_ring(mem) != NULL ? 1 : 0);
    metrics_one(out, "ringkv_cluster_partitions_pending", "gauge",
                "Partitions whose pending owners have not all received them.",
                membership_partitions_pending(mem));
    metrics_one(out, "ringkv_handoff_transfers_total", "counter",
                "Partitions this node received as a pending owner.",
                st->handoff_transfers_done);
    metrics_one(out, "ringkv_handoff_received_keys_total", "counter",
                "Objects merged here from handoff batches.",
                st->handoff_keys_in);
    metrics_one(out, "ringkv_handoff_received_bytes_total", "counter",
                "Bytes of handoff batches received here.",
                st->handoff_bytes_in);
    metrics_one(out, "ringkv_handoff_sent_keys_total", "counter",
                "Objects this node sent in handoff batches.",
                st->handoff_keys_out);
    metrics_one(out, "ringkv_handoff_sent_bytes_total", "counter",
                "Bytes of handoff batches this node sent.",
                st->handoff_bytes_out);
    metrics_one(out, "ringkv_handoff_retries_total", "counter",
                "Handoff batch requests asked again (timeout, error, a "
                "source skipped).",
                st->handoff_retries);
    metrics_one(out, "ringkv_handoff_refused_total", "counter",
                "Handoff requests this node refused (not a pending owner, "
                "not a replica, malformed).",
                st->handoff_folds_refused);
    metrics_one(out, "ringkv_handoff_relays_total", "counter",
                "Writes this node, a leaving owner, relayed to pending "
                "owners as hints during a transition.",
                st->handoff_relays);
    metrics_one(out, "ringkv_handoff_resumed_total", "counter",
                "Transfers this node resumed from its checkpoint after a "
                "restart.",
                st->handoff_resumed);
    metrics_one(out, "ringkv_handoff_verified_total", "counter",
                "Sources of a transfer verified by comparing hash trees "
                "instead of folded whole.",
                st->handoff_verified);
    metrics_one(out, "ringkv_handoff_verify_keys_total", "counter",
                "Keys those verifies found different and fetched.",
                st->handoff_verify_keys);
    metrics_one(out, "ringkv_handoff_verify_folds_total", "counter",
                "Verifies that fell back to folding the source whole.",
                st->handoff_verify_folds);
    metrics_one(out, "ringkv_handoff_throttled_total", "counter",
                "Handoff batch requests held back by handoff-max-mbps.",
                st->handoff_throttled);
    metrics_one(out, "ringkv_handoff_dropped_keys_total", "counter",
                "Keys of partitions this node no longer replicates, deleted "
                "after the drop grace.",
                st->handoff_keys_dropped);
    metrics_one(out, "ringkv_chunk_gc_deferred_total", "counter",
                "Chunk GC checks that found a superseded manifest possibly "
                "live (checked again later).",
                st->chunk_gc_deferred);
    metrics_one(out, "ringkv_chunk_blocks_deleted_total", "counter",
                "Blocks of superseded chunk manifests deleted.",
                st->chunk_blocks_deleted);
}

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
    metrics_one(out, "ringkv_reads_partial_total", "counter",
                "Reads that asked R replicas instead of all N.",
                cs.reads_partial);
    metrics_one(out, "ringkv_reads_widened_total", "counter",
                "Replicas a read asked late: after a failure or a "
                "speculative retry.",
                cs.read_widened);
    metrics_one(out, "ringkv_speculative_retries_total", "counter",
                "Reads short of R after speculative-retry-ms that asked "
                "the other replicas.",
                cs.speculative);
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
    struct node_aae_info ai;
    node_aae_info(cn->node, cluster__now_mono(), &ai);
    const struct node_stats *ns = node_stats(cn->node);
    metrics_one(out, "ringkv_aae_trees_built", "gauge",
                "Anti-entropy partition trees built on this node.", ai.built);
    metrics_one(out, "ringkv_aae_exchanges_total", "counter",
                "Anti-entropy exchanges this node started that completed.",
                ns->aae_exchanges);
    metrics_one(out, "ringkv_aae_exchange_failures_total", "counter",
                "Anti-entropy exchanges that failed or timed out.",
                ns->aae_exchange_failures);
    metrics_one(out, "ringkv_aae_keys_differing_total", "counter",
                "Keys anti-entropy found differing between replicas.",
                ns->aae_keys_differing);
    metrics_one(out, "ringkv_aae_keys_repaired_total", "counter",
                "Keys anti-entropy repaired through read repair.",
                ns->aae_keys_repaired);
    metrics_one(out, "ringkv_aae_refused_total", "counter",
                "Anti-entropy messages refused (non-replica, malformed).",
                ns->aae_refused);
    if (ai.oldest_exchange_s >= 0) {
        /* absent until every partition this node replicates had one */
        metrics_one(out, "ringkv_aae_last_full_exchange_age_seconds", "gauge",
                    "Age of the oldest last completed exchange over the "
                    "partitions this node replicates.",
                    (uint64_t)ai.oldest_exchange_s);
    }
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
    metrics_one(out, "ringkv_storage_degraded", "gauge",
                "1 while this node's storage is read-only (degraded: no "
                "writes routed to it).",
                node_is_degraded(cn->node) ? 1 : 0);
    metrics_one(out, "ringkv_cluster_members_degraded", "gauge",
                "Valid members known degraded, this node included.",
                node_members_degraded(cn->node));
    cluster__handoff_metrics(cn, out);
    struct peer_transport_stats ts;
    peer_transport_stats(cn->pt, NULL, &ts);
    metrics_one(out, "ringkv_peer_auth_failures_total", "counter",
                "Peer connections closed because their authentication "
                "failed (a wrong cluster secret, a broken handshake, or TLS "
                "refused).",
                ts.auth_failed);
    metrics_one(out, "ringkv_gossip_refused_total", "counter",
                "Gossiped cluster states refused because no membership "
                "change could have made them (issue 15).",
                membership_gossip_refused(node_membership(cn->node)));
    metrics_one(out, "ringkv_peer_tls_failures_total", "counter",
                "Peer connections refused in TLS (tls-cluster): a failed "
                "handshake (no, an expired or another CA's certificate), "
                "a peer not speaking the same tls-cluster, or a "
                "certificate not naming the peer's node id.",
                ts.tls_failed);
    metrics_family(out, "ringkv_peer_up", "gauge",
                   "1 when this node sees the peer up, by peer node id.");
    size_t m = membership_member_count(node_membership(cn->node));
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(node_membership(cn->node), i, &mm);
        if (!membership_status_active(mm.status) ||
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
                    cluster__peer_is_up(cn, mm.node_id) ? 1 : 0);
    }
}

bool cluster_is_member_origin(struct server *s, const char *origin)
{
    struct cnode *cn = s->cluster;
    if (cn == NULL || origin == NULL) {
        return false;
    }
    const struct membership *mem = node_membership(cn->node);
    size_t m = membership_member_count(mem);
    for (size_t i = 0; i < m; i++) {
        struct membership_member mm;
        membership_member_get(mem, i, &mm);
        if (mm.http_port == 0) {
            continue;
        }
        char want[320];
        snprintf(want, sizeof(want), "http://%s:%u", mm.host,
                 (unsigned)mm.http_port);
        if (strcasecmp(origin, want) == 0) {
            return true;
        }
        snprintf(want, sizeof(want), "http://localhost:%u",
                 (unsigned)mm.http_port);
        if (auth_guard_is_loopback(mm.host) && strcasecmp(origin, want) == 0) {
            return true;
        }
    }
    return false;
}
