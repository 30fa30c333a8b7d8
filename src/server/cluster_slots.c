/*
 * cluster_slots.c - the Redis Cluster commands answered from the ring
 * (issue 13 item 2; docs/clients.md): CLUSTER SLOTS, SHARDS, NODES, MYID,
 * INFO, KEYSLOT, and READONLY, READWRITE and ASKING accepted with +OK
 * (HELP, COUNTKEYSINSLOT and GETKEYSINSLOT, which walk the local keys, are
 * cmd_cluster's in cmd/keyspace.c, which hands the others here).  Replies
 * follow the Redis command reference
 * (https://redis.io/docs/latest/commands/cluster-slots/ and its siblings) and
 * what redis-server 7.0 answers.
 *
 * The map from the ring to Redis Cluster's words:
 *   - slots: partition p covers slots ring_slot_range(p) (16384/Q of
 *     them, ring.h); adjacent partitions with the same node list are
 *     reported as one range;
 *   - a slot range's nodes are its partition's preference list (the first
 *     min(N, M) members of ring_preflist; cluster/slotmap.h, which this
 *     file renders).  Its primary ("master") is the
 *     first of them that this node sees up, else the first suspected one,
 *     else the first: like a Redis failover, a down node's ranges move to
 *     a replica at once, so a client that refreshes its topology after a
 *     connection error stops sending to the down node.  The others are
 *     its replicas, in preference-list order;
 *   - health: a node SWIM suspects is PFAIL (NODES flag "fail?", SHARDS
 *     health "online"), a node routing treats as down is FAIL ("fail",
 *     "failed"); CLUSTER SLOTS leaves failed replicas out, as Redis does;
 *   - node ids: Redis clients expect 40 hex characters.  A ringkv node id
 *     that already is 40 lower-case hex characters is used as it is;
 *     any other is shown as the hex SHA-1 of its bytes (stable: the same
 *     on every node and across restarts);
 *   - endpoint: each member's RESP host:port as the cluster state lists
 *     it (membership.h; --bind and --port of that node; to a client on a
 *     TLS connection, SLOTS and NODES name --tls-port instead, where the
 *     member has one, and SHARDS has "port" and "tls-port" as Redis 7
 *     does, so cluster clients with TLS reconnect to TLS ports); a wildcard
 * host (0.0.0.0, ::) is replaced by the local address of the asking connection
 * for this node itself;
 *   - NODES lists every member as a master (a ringkv node is primary of
 *     some ranges and replica of others, which NODES' one-master-per-
 *     replica lines cannot say); CLUSTER SLOTS and SHARDS carry the
 *     replicas.
 * Keys are never redirected: any node coordinates any key, so no reply
 * here or elsewhere is MOVED, ASK or CROSSSLOT.
 *
 * These commands work exactly when this node is a MEMBER of a cluster
 * (a single node is a one-member cluster owning all 16384 slots); INFO's
 * cluster_enabled says so (cluster_redis_enabled).
 *
 * Thread: the event loop only.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include "cluster/slot.h"
#include "cluster/slotmap.h"
#include "server/cluster_internal.h"

struct cs_node
{
    const char *id;             /* ringkv node id, view into the ring */
    char hexid[41];             /* 40 hex characters, NUL */
    char host[256];             /* RESP host */
    uint16_t port;              /* RESP port the asking client uses:
                                   the TLS one for a TLS client */
    uint16_t plain_port;        /* RESP port without TLS */
    uint16_t tls_port;          /* RESP over TLS, 0 = none */
    uint16_t cport;             /* peer port (NODES' "@cport") */
    enum slotmap_health health; /* slotmap_health */
    bool self;
};

/* The ring as Redis Cluster sees it: every partition's ordered nodes. */
struct cs_view
{
    struct cnode *cn;
    const struct ring *ring;
    uint32_t q;           /* partitions */
    size_t m;             /* ring members */
    size_t n;             /* nodes per partition: min(N, M) */
    struct cs_node *node; /* m, by ring member index */
    struct slotmap *map;  /* each partition's nodes, primary first */
    uint64_t epoch;       /* cluster state version */
};

static bool is_hex40(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return i == 40;
}

/* The 40-hex-character id Redis clients see for ringkv node id `id`. */
static void redis_node_id(const char *id, char out[41])
{
    if (is_hex40(id)) {
        memcpy(out, id, 41);
        return;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(id, strlen(id), md, &len, EVP_sha1(), NULL) != 1 ||
        len != 20) {
        /* cannot happen with a working libcrypto: a fixed id keeps the
         * reply well formed */
        memset(out, '0', 40);
        out[40] = '\0';
        return;
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
}

static bool host_is_wildcard(const char *h)
{
    return h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 ||
           strcmp(h, "*") == 0;
}

/* The local address of client c's connection, for a wildcard self host. */
static void local_host(const struct client *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (c->fd < 0 || getsockname(c->fd, (struct sockaddr *)&ss, &sl) != 0) {
        return;
    }
    const void *a = ss.ss_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    char buf[INET6_ADDRSTRLEN];
    if (inet_ntop(ss.ss_family, a, buf, sizeof(buf)) != NULL) {
        snprintf(out, cap, "%s", buf);
    }
}

static enum slotmap_health health_of(void *data, const char *id)
{
    struct cnode *cn = data;
    if (strcmp(id, cn->node_id) == 0) {
        return SLOTMAP_OK;
    }
    if (!cluster__peer_is_up(cn, id)) {
        return SLOTMAP_FAIL;
    }
    enum swim_status st = SWIM_UP;
    if (swim_member_status(node_swim(cn->node), id, &st, NULL) &&
        st == SWIM_SUSPECT) {
        return SLOTMAP_PFAIL;
    }
    return SLOTMAP_OK;
}

static void view_fini(struct cs_view *v)
{
    rk_free(v->node);
    slotmap_destroy(v->map);
}

/*
 * Builds the view of the ring for client c.  Returns RK_OK, RK_ENOMEM, or
 * RK_EINVAL when this node is not a member of a cluster.
 */
static int view_init(struct cs_view *v, struct client *c)
{
    memset(v, 0, sizeof(*v));
    struct cnode *cn = c->srv->cluster;
    if (cn == NULL || cn->node == NULL) {
        return RK_EINVAL;
    }
    const struct membership *mem = node_membership(cn->node);
    const struct ring *r = membership_ring(mem);
    if (r == NULL || membership_phase(mem) != MEMBERSHIP_MEMBER) {
        return RK_EINVAL;
    }
    v->cn = cn;
    v->ring = r;
    v->q = ring_size(r);
    v->m = ring_member_count(r);
    v->epoch = membership_version(mem);
    v->node = rk_calloc(v->m, sizeof(*v->node));
    if (v->node == NULL || slotmap_create(r, health_of, cn, &v->map) != RK_OK) {
        view_fini(v);
        return RK_ENOMEM;
    }
    v->n = slotmap_width(v->map);
    for (size_t i = 0; i < v->m; i++) {
        struct cs_node *nd = &v->node[i];
        nd->id = ring_member_id(r, i, NULL);
        redis_node_id(nd->id, nd->hexid);
        nd->self = strcmp(nd->id, cn->node_id) == 0;
        nd->health = slotmap_health(v->map, i);
        struct membership_member mm;
        if (membership_member_find(mem, nd->id, &mm)) {
            snprintf(nd->host, sizeof(nd->host), "%s", mm.host);
            nd->plain_port = mm.resp_port;
            nd->tls_port = mm.tls_port;
            /* a TLS client gets TLS ports (it reconnects with TLS to
             * what it is told); a member without a TLS port keeps its
             * plain one */
            if (nd->self && mm.tls_port == 0 && c->srv->cfg->tls_port > 0) {
                /* not published yet (just joined): this node knows it */
                nd->tls_port = (uint16_t)c->srv->cfg->tls_port;
            }
            nd->port = c->tls && nd->tls_port ? nd->tls_port : mm.resp_port;
            nd->cport = mm.peer_port;
        }
        if (nd->self && host_is_wildcard(nd->host)) {
            local_host(c, nd->host, sizeof(nd->host));
        }
    }
    return RK_OK;
}

static const size_t *view_list(const struct cs_view *v, uint32_t p)
{
    return slotmap_nodes(v->map, p);
}

static bool same_list(const struct cs_view *v, uint32_t a, uint32_t b)
{
    return slotmap_same_nodes(v->map, a, b);
}

/* Whether CLUSTER SLOTS lists node i of a range (primary: always). */
static bool slots_lists(const struct cs_view *v, size_t pos, size_t i)
{
    return pos == 0 || v->node[i].health != SLOTMAP_FAIL;
}

static uint32_t range_end(const struct cs_view *v, uint32_t p)
{
    return slotmap_range_end(v->map, p);
}

/* Writes the slots of partitions [p, e) as "first-last" (or "first"). */
static int slots_text(const struct cs_view *v,
                      uint32_t p,
                      uint32_t e,
                      char *out,
                      size_t cap)
{
    uint32_t first, last, unused;
    ring_slot_range(v->ring, p, &first, &unused);
    ring_slot_range(v->ring, e - 1, &unused, &last);
    return first == last
               ? snprintf(out, cap, "%" PRIu32, first)
               : snprintf(out, cap, "%" PRIu32 "-%" PRIu32, first, last);
}

static bool not_member_or_reply(struct client *c, int rc)
{
    if (rc == RK_OK) {
        return false;
    }
    if (rc == RK_ENOMEM) {
        reply_error(c, "ERR out of memory");
        return true;
    }
    const char *why = cluster_unavailable_reason(c->srv);
    reply_errorf(c,
                 "ERR This instance has cluster support disabled: this node "
                 "is not a member of a ringkv cluster (%s)",
                 why ? why : "no cluster state");
    return true;
}

/* ---- CLUSTER SLOTS ------------------------------------------------------ */

static void reply_slots_node(struct client *c, const struct cs_node *nd)
{
    reply_array(c, 4);
    reply_bulk_str(c, nd->host);
    reply_int(c, nd->port);
    reply_bulk(c, nd->hexid, 40);
    reply_map(c, 0); /* networking metadata (Redis 7): none */
}

/* The member index of the k-th primary in CLUSTER SLOTS' order: this node
 * first, then the others by id. */
static size_t slots_owner(const struct cs_view *v, size_t k)
{
    size_t self = 0;
    while (self < v->m && !v->node[self].self) {
        self++;
    }
    if (self == v->m || k == 0) {
        return self == v->m ? k : self;
    }
    return k <= self ? k - 1 : k;
}

static void reply_slots_range(struct client *c,
                              const struct cs_view *v,
                              uint32_t p)
{
    uint32_t e = range_end(v, p), first, last, unused;
    ring_slot_range(v->ring, p, &first, &unused);
    ring_slot_range(v->ring, e - 1, &unused, &last);
    const size_t *l = view_list(v, p);
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++) {
        k += slots_lists(v, i, l[i]);
    }
    reply_array(c, 2 + k);
    reply_int(c, first);
    reply_int(c, last);
    for (size_t i = 0; i < v->n; i++) {
        if (slots_lists(v, i, l[i])) {
            reply_slots_node(c, &v->node[l[i]]);
        }
    }
}

/*
 * Ranges are listed by primary, as Redis lists them (node by node), with
 * this node's own ranges first: redis-py 4.3 takes the nodes in this order
 * as its startup nodes and, after a connection error, asks the first one
 * for the topology again, failing outright if it is down (redis-py issue
 * 2480, fixed in 4.4); the node that answered was up a moment ago.
 */
static void cluster_slots(struct client *c, const struct cs_view *v)
{
    size_t n_ranges = 0;
    for (uint32_t p = 0; p < v->q; p = range_end(v, p)) {
        n_ranges++;
    }
    reply_array(c, n_ranges);
    for (size_t k = 0; k < v->m; k++) {
        size_t owner = slots_owner(v, k);
        for (uint32_t p = 0; p < v->q; p = range_end(v, p)) {
            if (view_list(v, p)[0] == owner) {
                reply_slots_range(c, v, p);
            }
        }
    }
}

/* ---- CLUSTER SHARDS ----------------------------------------------------- */

/* The first partition with p's node list: the shard p belongs to. */
static uint32_t shard_of(const struct cs_view *v, uint32_t p)
{
    for (uint32_t s = 0; s < p; s++) {
        if (same_list(v, s, p)) {
            return s;
        }
    }
    return p;
}

static void reply_shard_node(struct client *c,
                             const struct cs_view *v,
                             size_t i,
                             bool primary)
{
    const struct cs_node *nd = &v->node[i];
    reply_map(c, nd->tls_port ? 8 : 7);
    reply_bulk_str(c, "id");
    reply_bulk(c, nd->hexid, 40);
    reply_bulk_str(c, "port");
    reply_int(c, nd->plain_port);
    if (nd->tls_port) {
        reply_bulk_str(c, "tls-port");
        reply_int(c, nd->tls_port);
    }
    reply_bulk_str(c, "ip");
    reply_bulk_str(c, nd->host);
    reply_bulk_str(c, "endpoint");
    reply_bulk_str(c, nd->host);
    reply_bulk_str(c, "role");
    reply_bulk_str(c, primary ? "master" : "replica");
    reply_bulk_str(c, "replication-offset");
    reply_int(c, 0);
    reply_bulk_str(c, "health");
    reply_bulk_str(c, nd->health == SLOTMAP_FAIL ? "failed" : "online");
}

static void cluster_shards(struct client *c, const struct cs_view *v)
{
    size_t n_shards = 0;
    for (uint32_t p = 0; p < v->q; p++) {
        n_shards += shard_of(v, p) == p;
    }
    reply_array(c, n_shards);
    for (uint32_t s = 0; s < v->q; s++) {
        if (shard_of(v, s) != s) {
            continue;
        }
        /* its ranges: runs of partitions in this shard */
        size_t n_ranges = 0;
        for (uint32_t p = s; p < v->q; p = range_end(v, p)) {
            n_ranges += same_list(v, s, p);
        }
        reply_map(c, 2);
        reply_bulk_str(c, "slots");
        reply_array(c, 2 * n_ranges);
        for (uint32_t p = s; p < v->q; p = range_end(v, p)) {
            if (!same_list(v, s, p)) {
                continue;
            }
            uint32_t first, last, unused;
            ring_slot_range(v->ring, p, &first, &unused);
            ring_slot_range(v->ring, range_end(v, p) - 1, &unused, &last);
            reply_int(c, first);
            reply_int(c, last);
        }
        reply_bulk_str(c, "nodes");
        reply_array(c, v->n);
        const size_t *l = view_list(v, s);
        for (size_t i = 0; i < v->n; i++) {
            reply_shard_node(c, v, l[i], i == 0);
        }
    }
}

/* ---- CLUSTER NODES ------------------------------------------------------ */

static int nodes_line(const struct cs_view *v, size_t i, struct rk_buf *out)
{
    const struct cs_node *nd = &v->node[i];
    const char *fl = nd->health == SLOTMAP_FAIL    ? ",fail"
                     : nd->health == SLOTMAP_PFAIL ? ",fail?"
                                                   : "";
    char b[512];
    int n = snprintf(
        b, sizeof(b), "%s %s:%u@%u %smaster%s - 0 0 %" PRIu64 " %s", nd->hexid,
        nd->host, nd->port, nd->cport, nd->self ? "myself," : "", fl, v->epoch,
        nd->health == SLOTMAP_FAIL ? "disconnected" : "connected");
    int rc = rk_buf_append(out, b, (size_t)n);
    for (uint32_t p = 0; rc == RK_OK && p < v->q; p = range_end(v, p)) {
        if (view_list(v, p)[0] != i) {
            continue;
        }
        b[0] = ' ';
        n = slots_text(v, p, range_end(v, p), b + 1, sizeof(b) - 1);
        rc = rk_buf_append(out, b, (size_t)n + 1);
    }
    return rc == RK_OK ? rk_buf_append(out, "\n", 1) : rc;
}

static void cluster_nodes(struct client *c, const struct cs_view *v)
{
    struct rk_buf out = {0};
    int rc = RK_OK;
    for (size_t i = 0; rc == RK_OK && i < v->m; i++) {
        rc = nodes_line(v, i, &out);
    }
    if (rc == RK_OK) {
        reply_bulk(c, out.base, out.len);
    } else {
        reply_error(c, "ERR out of memory");
    }
    rk_buf_fini(&out);
}

/* ---- CLUSTER INFO ------------------------------------------------------- */

static void cluster_info_cmd(struct client *c, const struct cs_view *v)
{
    uint64_t ok = 0, pfail = 0, fail = 0;
    size_t primaries = 0;
    for (uint32_t p = 0; p < v->q; p++) {
        uint32_t first, last;
        ring_slot_range(v->ring, p, &first, &last);
        uint64_t k = (uint64_t)last - first + 1;
        switch (v->node[view_list(v, p)[0]].health) {
            case SLOTMAP_OK:
                ok += k;
                break;
            case SLOTMAP_PFAIL:
                pfail += k;
                break;
            default:
                fail += k;
                break;
        }
    }
    for (size_t i = 0; i < v->m; i++) {
        for (uint32_t p = 0; p < v->q; p++) {
            if (view_list(v, p)[0] == i) {
                primaries++;
                break;
            }
        }
    }
    struct peer_transport_stats ts = {0};
    peer_transport_stats(v->cn->pt, NULL, &ts);
    char b[1024];
    int n =
        snprintf(b, sizeof(b),
                 "cluster_state:%s\r\n"
                 "cluster_slots_assigned:%d\r\n"
                 "cluster_slots_ok:%" PRIu64
                 "\r\n"
                 "cluster_slots_pfail:%" PRIu64
                 "\r\n"
                 "cluster_slots_fail:%" PRIu64
                 "\r\n"
                 "cluster_known_nodes:%zu\r\n"
                 "cluster_size:%zu\r\n"
                 "cluster_current_epoch:%" PRIu64
                 "\r\n"
                 "cluster_my_epoch:%" PRIu64
                 "\r\n"
                 "cluster_stats_messages_sent:%" PRIu64
                 "\r\n"
                 "cluster_stats_messages_received:%" PRIu64
                 "\r\n"
                 "total_cluster_links_buffer_limit_exceeded:0\r\n",
                 fail ? "fail" : "ok", SLOT_COUNT, ok, pfail, fail, v->m,
                 primaries, v->epoch, v->epoch, ts.frames_out, ts.frames_in);
    reply_bulk(c, b, (size_t)n);
}

/* ---- the command -------------------------------------------------------- */

void cluster_redis_cmd(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    (void)argc; /* checked by the command table */
    const struct resp_arg *sub = &argv[1];
    struct cs_view v;
    if (not_member_or_reply(c, view_init(&v, c))) {
        return;
    }
    if (cluster__arg_eq(sub, "slots")) {
        cluster_slots(c, &v);
    } else if (cluster__arg_eq(sub, "shards")) {
        cluster_shards(c, &v);
    } else if (cluster__arg_eq(sub, "nodes")) {
        cluster_nodes(c, &v);
    } else if (cluster__arg_eq(sub, "myid")) {
        char id[41];
        redis_node_id(v.cn->node_id, id);
        reply_bulk(c, id, 40);
    } else if (cluster__arg_eq(sub, "info")) {
        cluster_info_cmd(c, &v);
    } else if (cluster__arg_eq(sub, "keyslot")) {
        reply_int(c, slot_of_key(argv[2].ptr, argv[2].len));
    } else {
        /* cmd_cluster answers the others; the command table lists them */
        reply_errorf(c, "ERR unknown subcommand '%.*s'. Try CLUSTER HELP.",
                     (int)(sub->len > 64 ? 64 : sub->len), sub->ptr);
    }
    view_fini(&v);
}

void cluster_redis_ok_cmd(struct client *c,
                          size_t argc,
                          const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    reply_ok(c);
}

bool cluster_redis_enabled(struct server *s)
{
    struct cnode *cn = s->cluster;
    return cn != NULL && cn->node != NULL &&
           membership_phase(node_membership(cn->node)) == MEMBERSHIP_MEMBER &&
           membership_ring(node_membership(cn->node)) != NULL;
}
