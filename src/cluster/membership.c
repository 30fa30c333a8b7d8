/*
 * membership.c - the cluster state machine of membership.h: versioned
 * state, whole-state gossip merge, join/leave/remove (DESIGN.md section 4;
 * issue 4 item 3).  Gossip after Riak's riak_core_gossip (a node
 * periodically sends its whole ring state to one random peer, the receiver
 * keeps the newer one and answers an older one with its own), with
 * Riak's vector-clock merge replaced by a total order on whole states.
 *
 * State bytes, format version 4 (integers little-endian; docs/cluster.md;
 * encoded and decoded in membership_state.c):
 *   off   size   field
 *   0     4      magic "RKCS"
 *   4     1      format version, MEMBERSHIP_FORMAT_VERSION = 4 (format 3
 *                is the same without the TLS ports section, format 2
 *                without the transition section too; both are read from
 *                a saved state;
 *                format 1, the same bytes as 2, placed keys by XXH3
 *                instead of hash slot; a saved one is upgraded when M <= N,
 *                see mb_state_decode)
 *   5     8      version, >= 1
 *   13    1+c    changer id: u8 length c (1..64), bytes (a listed member)
 *   ..    1+k    cluster name: u8 length k (0..64), bytes
 *   ..    4      ring_size (Q), u32
 *   ..    4      n_val (N), u32
 *   ..    4      member count M, u32, 1..MEMBERSHIP_MAX_MEMBERS
 *   ..    M x    members, ids strictly ascending (memcmp, shorter first):
 *                u8 id length (1..64), id bytes (graphic ASCII),
 *                u16 host length (1..255), host bytes,
 *                u16 resp_port, u16 http_port, u16 peer_port,
 *                u8 status (1 valid, 2 joining, 3 leaving, 4 removed)
 *   ..    4+r    ring: u32 length r, ring_encode bytes (ring.h)
 *   ..    1      transition: 0 (none; the TLS ports follow), or 1 and:
 *   ..    4      epoch, u32 (bumped at every new next ring)
 *   ..    4+x    next ring: u32 length x, ring_encode bytes
 *   ..    8*Q    has-masks, u64 per partition (membership_internal.h)
 *   ..    2*M    TLS ports: u16 per member, in member order (0 = none;
 *                CLUSTER SLOTS names them to TLS clients)
 * Nothing follows.  The rings' Q and target_n equal ring_size and n_val;
 * the current ring's members are exactly the valid and leaving members,
 * the next ring's the valid and joining ones; joining and leaving members
 * exist exactly when there is a transition.  At least one member is valid
 * or leaving.

 * Merge.  States are totally ordered by (version, changer id, encoded
 * bytes); gossip keeps the maximum.  max over a total order is
 * commutative, associative and idempotent, so whatever order states meet
 * in, every node ends with the greatest state any node made, and its ring
 * (the ring travels inside the state, so no node recomputes another's
 * ring: ring_create's result depends on the previous ring, which nodes
 * that skipped versions would not share).  Concurrent changes at two
 * nodes are safe: both make version v+1, the one with the greater changer
 * id wins everywhere and the other is dropped whole; no state mixes the
 * two.  The loser is retried by whoever wanted it: a joining node keeps
 * sending JOIN until it is VALID in the state it holds, and a node that
 * adopts a state that no longer lists it after it had joined joins again;
 * a node that left re-applies its leave if a newer state shows it VALID.
 * An operator's remove that loses is visible in `cluster status` and must
 * be repeated.
 *
 * Invariants of struct membership:
 *   (1) st == NULL implies phase NONE or JOINING (a node whose rejoin
 *       after a lost concurrent join timed out is NONE and keeps the
 *       cluster's state); only MEMBER and REMOVED_SELF gossip;
 *   (2) st->nodes sorted strictly ascending by id; st->ring's members ==
 *       { valid nodes }, ring_size/n_val == the ring's Q/target_n;
 *   (3) enc holds the encoding of st (enc.len == 0 iff st == NULL);
 *   (4) phase == MEMBER implies self is VALID in st; REMOVED_SELF implies
 *       self is REMOVED in st;
 *   (5) the state only moves forward: every replacement of st by gossip is
 *       by a strictly greater one (a join reply is the one exception: the
 *       joiner drops its own cluster for the seed's).
 *
 * Phases (membership_phase):
 *
 *                 create_cluster
 *        NONE ---------------------------------> MEMBER
 *         |  ^                                   ^ |  ^ |
 *         |  | deadline or     JOIN_REPLY OK or  | |  | | leave, or a newer
 *   join_ |  | error reply     gossip listing    | |  | | state lists self
 *   start v  | (back to where  self valid        | |  | | removed
 *       JOINING  it started) --------------------+ |  | v
 *         ^  ^                                     |  REMOVED_SELF
 *         |  +-------------------------------------+    |  (a newer state
 *         |   newer state drops self (lost a            |   lists self valid:
 *         |   concurrent join): rejoin; or join_start   |   back to MEMBER)
 *         |   in a one-node cluster                     |
 *         +---------------------------------------------+
 *                            join_start
 *
 *   transition                      function
 *   NONE -> MEMBER                  membership_create_cluster
 *   NONE/REMOVED_SELF -> JOINING    membership_join_start
 *   MEMBER (alone) -> JOINING       membership_join_start
 *   JOINING -> MEMBER               on_join_reply, on_gossip (adopt_joined)
 *   JOINING -> where it started     membership_tick (deadline),
 *                                   on_join_reply (error status)
 *   MEMBER -> REMOVED_SELF          membership_leave, on_gossip (follow_self)
 *   MEMBER -> JOINING               on_gossip (follow_self: lost join)
 *   REMOVED_SELF -> MEMBER          on_gossip (follow_self: lost remove)
 *   A failed join returns to the phase it started from.
 */
#include "cluster/membership.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/membership_internal.h"
#include "common/alloc.h"
#include "common/error.h"

/* ---- small helpers ------------------------------------------------------ */

static void log_action(struct cl_actions *acts, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_action(struct cl_actions *acts, int level, const char *fmt, ...)
{
    struct cl_action *a = cl_actions_push(acts, CL_ACT_LOG);
    if (a == NULL) {
        return;
    }
    a->status = level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->text, sizeof(a->text), fmt, ap);
    va_end(ap);
}

static struct peer_bytes pb(const char *s)
{
    return (struct peer_bytes){.ptr = s, .len = strlen(s)};
}

/* ---- the machine -------------------------------------------------------- */

static bool node_same(const struct mb_node *a, const struct mb_node *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->host, b->host) == 0 &&
           a->resp_port == b->resp_port && a->http_port == b->http_port &&
           a->peer_port == b->peer_port && a->tls_port == b->tls_port &&
           a->status == b->status;
}

/* Whether a and b have the same id and address (status aside). */
static bool addr_same(const struct mb_node *a, const struct mb_node *b)
{
    struct mb_node x = *b;
    x.status = a->status;
    return node_same(a, &x);
}

static const struct mb_node *self_node(const struct membership *m)
{
    if (m->st == NULL) {
        return NULL;
    }
    long i = mb_state_find(m->st, m->self.id);
    return i < 0 ? NULL : &m->st->nodes[i];
}

static enum membership_phase phase_of_state(const struct membership *m)
{
    const struct mb_node *me = self_node(m);
    if (me == NULL) {
        return MEMBERSHIP_NONE;
    }
    return membership_status_active(me->status) ? MEMBERSHIP_MEMBER
                                                : MEMBERSHIP_REMOVED_SELF;
}

/* Installs `s` (taking it) and re-encodes; on error nothing changes. */
static int install_state(struct membership *m, struct mb_state *s)
{
    struct rk_buf enc = {0};
    int rc = mb_state_encode(s, &enc);
    if (rc != RK_OK) {
        rk_buf_fini(&enc);
        mb_state_free(s);
        return rc;
    }
    mb_state_free(m->st);
    rk_buf_fini(&m->enc);
    m->st = s;
    m->enc = enc;
    return RK_OK;
}

static void emit_state_changed(struct membership *m, struct cl_actions *acts)
{
    struct cl_action *a = cl_actions_push(acts, CL_ACT_STATE_CHANGED);
    if (a != NULL) {
        a->version = m->st->version;
        snprintf(a->text, sizeof(a->text),
                 "cluster state version %" PRIu64
                 " by %s: %zu members, "
                 "ring digest %016" PRIx64,
                 m->st->version, m->st->changer, m->st->n_nodes,
                 ring_digest(m->st->ring));
    }
    /* A state that does not list this node (its join lost to a concurrent
     * change, follow_self) is not saved: a restart then comes up from
     * the last state that listed it and joins again from there, instead
     * of refusing to start (membership_create; the simulator's seed 384
     * of --spares 2). */
    if (mb_state_find(m->st, m->self.id) < 0) {
        return;
    }
    a = cl_actions_push(acts, CL_ACT_PERSIST);
    if (a != NULL) {
        a->version = m->st->version;
        a->bytes = (struct peer_bytes){.ptr = m->enc.base, .len = m->enc.len};
    }
}

/* Appends a GOSSIP of our state to node `to` (index into st->nodes). */
static void send_gossip(struct membership *m,
                        const struct mb_node *to,
                        struct cl_actions *acts)
{
    struct cl_action *a = cl_actions_push(acts, CL_ACT_SEND);
    if (a == NULL) {
        return;
    }
    snprintf(a->node, sizeof(a->node), "%s", to->id);
    snprintf(a->host, sizeof(a->host), "%s", to->host);
    a->peer_port = to->peer_port;
    a->msg.type = PEER_GOSSIP;
    a->msg.gossip.state =
        (struct peer_bytes){.ptr = m->enc.base, .len = m->enc.len};
    a->msg.gossip.state_version = m->st->version;
    a->msg.gossip.from = pb(m->self.id);
}

/* Gossips to one random valid member other than self and `skip`. */
static void gossip_random(struct membership *m,
                          const char *skip,
                          struct cl_actions *acts)
{
    size_t n = 0;
    for (size_t i = 0; i < m->st->n_nodes; i++) {
        const struct mb_node *nd = &m->st->nodes[i];
        n += membership_status_active(nd->status) &&
             strcmp(nd->id, m->self.id) &&
             (skip == NULL || strcmp(nd->id, skip));
    }
    if (n == 0) {
        return;
    }
    uint64_t pick = rk_rng_below(&m->rng, n);
    for (size_t i = 0; i < m->st->n_nodes; i++) {
        const struct mb_node *nd = &m->st->nodes[i];
        if (membership_status_active(nd->status) &&
            strcmp(nd->id, m->self.id) &&
            (skip == NULL || strcmp(nd->id, skip)) && pick-- == 0) {
            send_gossip(m, nd, acts);
            return;
        }
    }
}

static void send_join(struct membership *m,
                      uint64_t now_ms,
                      struct cl_actions *acts)
{
    m->next_join_ms = now_ms + m->join_retry_ms;
    struct cl_action *a = cl_actions_push(acts, CL_ACT_SEND);
    if (a == NULL) {
        return;
    }
    snprintf(a->host, sizeof(a->host), "%s", m->seed_host);
    a->peer_port = m->seed_port;
    a->msg.type = m->replaces[0] ? PEER_REPLACE : PEER_JOIN;
    a->msg.join = (struct peer_join){
        .req_id = m->join_req_id,
        .node_id = pb(m->self.id),
        .host = pb(m->self.host),
        .resp_port = m->self.resp_port,
        .http_port = m->self.http_port,
        .peer_port = m->self.peer_port,
        .replaces = pb(m->replaces),
    };
}

int membership_create(const struct membership_config *cfg,
                      const void *saved,
                      size_t saved_len,
                      struct membership **out,
                      char *errbuf,
                      size_t errbuf_len)
{
    const char *name = cfg->cluster_name ? cfg->cluster_name : "ringkv";
    if (cfg->node_id == NULL ||
        !ring_member_id_is_valid(cfg->node_id, strlen(cfg->node_id))) {
        mb_set_err(errbuf, errbuf_len, "invalid node id");
        return RK_EINVAL;
    }
    if (cfg->host == NULL || cfg->host[0] == '\0' ||
        !mb_name_is_valid(cfg->host, strlen(cfg->host), CL_HOST_MAX)) {
        mb_set_err(errbuf, errbuf_len, "invalid host");
        return RK_EINVAL;
    }
    if (!mb_name_is_valid(name, strlen(name), MEMBERSHIP_MAX_CLUSTER_NAME)) {
        mb_set_err(errbuf, errbuf_len, "invalid cluster name");
        return RK_EINVAL;
    }
    struct membership *m = rk_calloc(1, sizeof(*m));
    if (m == NULL) {
        return RK_ENOMEM;
    }
    snprintf(m->self.id, sizeof(m->self.id), "%s", cfg->node_id);
    snprintf(m->self.host, sizeof(m->self.host), "%s", cfg->host);
    m->self.resp_port = cfg->resp_port;
    m->self.http_port = cfg->http_port;
    m->self.peer_port = cfg->peer_port;
    m->self.tls_port = cfg->tls_port;
    m->self.status = MEMBERSHIP_VALID;
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->ring_size = cfg->ring_size ? cfg->ring_size : RING_DEFAULT_SIZE;
    m->n_val = cfg->n_val ? cfg->n_val : RING_DEFAULT_N;
    m->gossip_ms = cfg->gossip_interval_ms ? cfg->gossip_interval_ms
                                           : MEMBERSHIP_DEFAULT_GOSSIP_MS;
    m->join_retry_ms =
        cfg->join_retry_ms ? cfg->join_retry_ms : MEMBERSHIP_DEFAULT_JOIN_RETRY;
    m->join_timeout_ms = cfg->join_timeout_ms ? cfg->join_timeout_ms
                                              : MEMBERSHIP_DEFAULT_JOIN_TIMEOUT;
    rk_rng_seed(&m->rng, cfg->seed);
    if (saved != NULL && saved_len > 0) {
        struct mb_state *s = NULL;
        int rc =
            mb_state_decode(saved, saved_len, true, &s, errbuf, errbuf_len);
        if (rc == RK_OK && strcmp(s->name, m->name) != 0) {
            mb_set_err(errbuf, errbuf_len,
                       "saved state is of cluster \"%s\", this node is "
                       "configured for \"%s\"",
                       s->name, m->name);
            rc = RK_EINVAL;
        }
        if (rc == RK_OK && mb_state_find(s, m->self.id) < 0) {
            mb_set_err(errbuf, errbuf_len,
                       "saved state does not list this node (%s)", m->self.id);
            rc = RK_EINVAL;
        }
        if (rc == RK_OK) {
            rc = install_state(m, s);
            s = NULL;
        }
        if (rc != RK_OK) {
            mb_state_free(s);
            membership_destroy(m);
            return rc;
        }
        m->phase = phase_of_state(m);
    }
    *out = m;
    return RK_OK;
}

void membership_destroy(struct membership *m)
{
    if (m == NULL) {
        return;
    }
    mb_state_free(m->st);
    rk_buf_fini(&m->enc);
    rk_free(m);
}

const char *membership_errmsg(const struct membership *m)
{
    return m->errmsg;
}

int membership_create_cluster(struct membership *m,
                              uint64_t now_ms,
                              struct cl_actions *acts)
{
    m->errmsg[0] = '\0';
    if (m->phase != MEMBERSHIP_NONE) {
        /* A removed node keeps its old cluster's name and versions: a new
         * cluster from it could be mistaken for the old one. */
        MB_ERR(m, "%s",
               m->phase == MEMBERSHIP_REMOVED_SELF
                   ? "this node was removed from a cluster: join one, or "
                     "start with an empty data dir"
                   : "this node already is in a cluster or joining one");
        return RK_EBUSY;
    }
    struct mb_state *s = rk_calloc(1, sizeof(*s));
    if (s == NULL) {
        return RK_ENOMEM;
    }
    s->nodes = rk_malloc(sizeof(*s->nodes));
    if (s->nodes == NULL) {
        rk_free(s);
        return RK_ENOMEM;
    }
    s->nodes[0] = m->self;
    s->n_nodes = 1;
    s->version = 1;
    snprintf(s->changer, sizeof(s->changer), "%s", m->self.id);
    snprintf(s->name, sizeof(s->name), "%s", m->name);
    s->ring_size = m->ring_size;
    s->n_val = m->n_val;
    int rc = mb_state_build_ring(s, NULL);
    if (rc == RK_OK) {
        rc = install_state(m, s);
    } else {
        mb_state_free(s);
        MB_ERR(m,
               "cannot build the ring (ring_size %" PRIu32 ", n_val %" PRIu32
               "): %s",
               m->ring_size, m->n_val, rk_strerror(rc));
    }
    if (rc != RK_OK) {
        return rc;
    }
    m->phase = MEMBERSHIP_MEMBER;
    m->leave_intent = false;
    m->next_gossip_ms = now_ms + m->gossip_ms;
    emit_state_changed(m, acts);
    return RK_OK;
}

/* membership_join_start and membership_replace_start: replaces is "" for
 * a join. */
static int join_begin(struct membership *m,
                      const char *host,
                      uint16_t peer_port,
                      const char *replaces,
                      uint64_t now_ms,
                      struct cl_actions *acts)
{
    m->errmsg[0] = '\0';
    if (host == NULL || host[0] == '\0' || strlen(host) > CL_HOST_MAX ||
        peer_port == 0) {
        MB_ERR(m, "join needs a seed HOST:PEERPORT");
        return RK_EINVAL;
    }
    if (m->phase == MEMBERSHIP_JOINING) {
        MB_ERR(m, "this node is already joining %s:%u", m->seed_host,
               m->seed_port);
        return RK_EBUSY;
    }
    if (m->phase == MEMBERSHIP_MEMBER) {
        size_t valid = 0;
        for (size_t i = 0; i < m->st->n_nodes; i++) {
            valid += membership_status_active(m->st->nodes[i].status);
        }
        if (valid > 1) {
            MB_ERR(m,
                   "this node is already a member of a cluster of %zu "
                   "nodes; leave it first",
                   valid);
            return RK_EBUSY;
        }
    }
    m->join_from = m->phase;
    m->phase = MEMBERSHIP_JOINING;
    m->leave_intent = false;
    snprintf(m->replaces, sizeof(m->replaces), "%s", replaces);
    snprintf(m->seed_host, sizeof(m->seed_host), "%s", host);
    m->seed_port = peer_port;
    m->join_req_id = rk_rng_next(&m->rng) | 1;
    m->join_deadline_ms = now_ms + m->join_timeout_ms;
    send_join(m, now_ms, acts);
    return RK_OK;
}

int membership_join_start(struct membership *m,
                          const char *host,
                          uint16_t peer_port,
                          uint64_t now_ms,
                          struct cl_actions *acts)
{
    return join_begin(m, host, peer_port, "", now_ms, acts);
}

int membership_replace_start(struct membership *m,
                             const char *host,
                             uint16_t peer_port,
                             const char *old_id,
                             uint64_t now_ms,
                             struct cl_actions *acts)
{
    if (old_id == NULL || !ring_member_id_is_valid(old_id, strlen(old_id))) {
        MB_ERR(m, "replace needs the id of the member to replace");
        return RK_EINVAL;
    }
    if (strcmp(old_id, m->self.id) == 0) {
        MB_ERR(m, "a node cannot replace itself");
        return RK_EINVAL;
    }
    return join_begin(m, host, peer_port, old_id, now_ms, acts);
}

/* Copy of the current state with `id` set to `status` (and address); a
 * change of status plans the next ring (mb_state_replan). */
static int change_node(struct membership *m,
                       const struct mb_node *nd,
                       struct mb_state **out)
{
    long was = mb_state_find(m->st, nd->id);
    bool status_changed = was < 0 || m->st->nodes[was].status != nd->status;
    struct mb_state *s = NULL;
    int rc = mb_state_copy(m->st, 1, &s);
    if (rc != RK_OK) {
        return rc;
    }
    mb_state_put_node(s, nd);
    s->version = m->st->version + 1;
    snprintf(s->changer, sizeof(s->changer), "%s", m->self.id);
    rc = status_changed ? mb_state_replan(s) : RK_OK;
    if (rc != RK_OK) {
        mb_state_free(s);
        return rc;
    }
    *out = s;
    return RK_OK;
}

/* Applies a change made here: install, announce, gossip. */
static int commit_change(struct membership *m,
                         struct mb_state *s,
                         const char *skip,
                         uint64_t now_ms,
                         struct cl_actions *acts)
{
    int rc = install_state(m, s);
    if (rc != RK_OK) {
        return rc;
    }
    emit_state_changed(m, acts);
    gossip_random(m, skip, acts);
    m->next_gossip_ms = now_ms + m->gossip_ms;
    return RK_OK;
}

int mb_commit_state(struct membership *m,
                    struct mb_state *s,
                    uint64_t now_ms,
                    struct cl_actions *acts)
{
    int rc = commit_change(m, s, NULL, now_ms, acts);
    if (rc == RK_OK) {
        m->phase = phase_of_state(m);
    }
    return rc;
}

void mb_send_gossip_to(struct membership *m,
                       const struct mb_node *to,
                       struct cl_actions *acts)
{
    send_gossip(m, to, acts);
}

/* Members that are part of the cluster (valid, joining or leaving). */
static size_t count_valid(const struct mb_state *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        n += membership_status_active(s->nodes[i].status);
    }
    return n;
}

/* Members that stay after the transition (valid or joining). */
static size_t count_staying(const struct mb_state *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        n += mb_in_next(s->nodes[i].status);
    }
    return n;
}

/* The status a leave or remove gives a member: a joining one never owned
 * anything and goes at once, a valid one hands its partitions off. */
static uint8_t departed(uint8_t status)
{
    return status == MEMBERSHIP_STATUS_JOINING ? MEMBERSHIP_REMOVED
                                               : MEMBERSHIP_STATUS_LEAVING;
}

/* Marks self leaving (leave or re-applied leave): REMOVED_SELF once the
 * transition that hands its partitions off finalizes. */
static int remove_self(struct membership *m,
                       uint64_t now_ms,
                       struct cl_actions *acts)
{
    struct mb_node me = *self_node(m);
    me.status = departed(me.status);
    struct mb_state *s = NULL;
    int rc = change_node(m, &me, &s);
    if (rc != RK_OK) {
        return rc;
    }
    rc = commit_change(m, s, NULL, now_ms, acts);
    if (rc == RK_OK) {
        m->phase = phase_of_state(m);
    }
    return rc;
}

int membership_leave(struct membership *m,
                     bool holds_data,
                     bool force,
                     uint64_t now_ms,
                     struct cl_actions *acts)
{
    m->errmsg[0] = '\0';
    if (m->phase != MEMBERSHIP_MEMBER) {
        MB_ERR(m, "this node is not a member of a cluster");
        return RK_EINVAL;
    }
    (void)holds_data; /* its partitions are handed off first */
    const struct mb_node *me = self_node(m);
    if (me->status == MEMBERSHIP_STATUS_LEAVING) {
        MB_ERR(m,
               "this node is already leaving; `cluster status` shows "
               "its handoff");
        return RK_EBUSY;
    }
    if (count_staying(m->st) <= 1) {
        MB_ERR(m, "this node is the last member; a cluster cannot be empty");
        return RK_EINVAL;
    }
    /* A joining node holds no copies: its leave only undoes its join. */
    if (me->status == MEMBERSHIP_VALID &&
        mb_check_floor(m, count_staying(m->st) - 1, force, "this leave") !=
            RK_OK) {
        return RK_ERANGE;
    }
    int rc = remove_self(m, now_ms, acts);
    if (rc == RK_OK) {
        m->leave_intent = true;
        log_action(acts, RK_OK, "%s the cluster at version %" PRIu64,
                   m->phase == MEMBERSHIP_MEMBER ? "leaving (handing off "
                                                   "partitions)"
                                                 : "left",
                   m->st->version);
    } else {
        MB_ERR(m, "leave failed: %s", rk_strerror(rc));
    }
    return rc;
}

int membership_remove(struct membership *m,
                      const char *node_id,
                      bool force,
                      uint64_t now_ms,
                      struct cl_actions *acts)
{
    m->errmsg[0] = '\0';
    if (m->phase != MEMBERSHIP_MEMBER) {
        MB_ERR(m, "this node is not a member of a cluster");
        return RK_EINVAL;
    }
    if (node_id == NULL || strcmp(node_id, m->self.id) == 0) {
        MB_ERR(m, "a node cannot remove itself; use leave");
        return RK_EINVAL;
    }
    long i = mb_state_find(m->st, node_id);
    if (i < 0 || (m->st->nodes[i].status != MEMBERSHIP_VALID &&
                  m->st->nodes[i].status != MEMBERSHIP_STATUS_JOINING)) {
        if (i < 0) {
            MB_ERR(m, "no such member '%s'", node_id);
        } else {
            MB_ERR(m, "'%s' is %s", node_id,
                   m->st->nodes[i].status == MEMBERSHIP_STATUS_LEAVING
                       ? "already leaving (its partitions are being handed "
                         "off)"
                       : "removed already");
        }
        return RK_ENOTFOUND;
    }
    if (mb_in_next(m->st->nodes[i].status) && count_staying(m->st) <= 1) {
        MB_ERR(m, "%s is the last member; a cluster cannot be empty", node_id);
        return RK_EINVAL;
    }
    if (m->st->nodes[i].status == MEMBERSHIP_VALID &&
        mb_check_floor(m, count_staying(m->st) - 1, force, "this remove") !=
            RK_OK) {
        return RK_ERANGE;
    }
    struct mb_node nd = m->st->nodes[i];
    nd.status = departed(nd.status);
    struct mb_state *s = NULL;
    int rc = change_node(m, &nd, &s);
    if (rc == RK_OK) {
        rc = commit_change(m, s, node_id, now_ms, acts);
    }
    if (rc != RK_OK) {
        MB_ERR(m, "remove failed: %s", rk_strerror(rc));
        return rc;
    }
    log_action(acts, RK_OK, "removed %s at version %" PRIu64, node_id,
               m->st->version);
    return RK_OK;
}

static bool gossips(const struct membership *m)
{
    return m->st != NULL && (m->phase == MEMBERSHIP_MEMBER ||
                             m->phase == MEMBERSHIP_REMOVED_SELF);
}

int membership_tick(struct membership *m,
                    uint64_t now_ms,
                    struct cl_actions *acts)
{
    if (m->phase == MEMBERSHIP_JOINING) {
        if (now_ms >= m->join_deadline_ms) {
            m->phase = m->join_from;
            struct cl_action *a = cl_actions_push(acts, CL_ACT_JOIN_FAILED);
            if (a != NULL) {
                a->status = RK_ETIMEDOUT;
                snprintf(a->text, sizeof(a->text),
                         "no answer from seed %.120s:%u within %" PRIu32 " ms",
                         m->seed_host, m->seed_port, m->join_timeout_ms);
            }
        } else if (now_ms >= m->next_join_ms) {
            send_join(m, now_ms, acts);
        }
        return RK_OK;
    }
    if (m->phase == MEMBERSHIP_MEMBER && !addr_same(self_node(m), &m->self)) {
        /* Restarted with another address: publish it (one change). */
        struct mb_state *s = NULL;
        struct mb_node me = m->self;
        me.status = self_node(m)->status;
        int rc = change_node(m, &me, &s);
        if (rc == RK_OK) {
            rc = commit_change(m, s, NULL, now_ms, acts);
        }
        if (rc != RK_OK) {
            return rc; /* retried at the next tick */
        }
        log_action(acts, RK_OK,
                   "this node's address is now %s:%u (version %" PRIu64 ")",
                   m->self.host, m->self.peer_port, m->st->version);
        return RK_OK;
    }
    if (gossips(m) && now_ms >= m->next_gossip_ms) {
        m->next_gossip_ms = now_ms + m->gossip_ms;
        gossip_random(m, NULL, acts);
    }
    return RK_OK;
}

uint64_t membership_next_deadline_ms(const struct membership *m)
{
    if (m->phase == MEMBERSHIP_JOINING) {
        return m->next_join_ms < m->join_deadline_ms ? m->next_join_ms
                                                     : m->join_deadline_ms;
    }
    if (m->phase == MEMBERSHIP_MEMBER && !addr_same(self_node(m), &m->self)) {
        return 0; /* an address to publish */
    }
    return gossips(m) ? m->next_gossip_ms : UINT64_MAX;
}

/* Whether s lists the node id in b (any status). */
static bool lists_id(const struct mb_state *s, const struct peer_bytes *b)
{
    char id[CL_ID_MAX + 1];
    if (b->len == 0 || b->len > CL_ID_MAX) {
        return false;
    }
    memcpy(id, b->ptr, b->len);
    id[b->len] = '\0';
    return mb_state_find(s, id) >= 0;
}

void membership_refuse_joins(struct membership *m, const char *why)
{
    snprintf(m->refuse_joins, sizeof(m->refuse_joins), "%s", why ? why : "");
}

/* A JOIN arrived: admit the node if we can, always reply. */
static int on_join(struct membership *m,
                   const struct peer_join *j,
                   bool replace,
                   uint64_t now_ms,
                   struct cl_actions *acts)
{
    char old_id[CL_ID_MAX + 1] = "";
    if (replace) {
        size_t l = j->replaces.len < CL_ID_MAX ? j->replaces.len : CL_ID_MAX;
        memcpy(old_id, j->replaces.ptr, l);
        old_id[l] = '\0';
    }
    int rc = RK_OK;
    struct mb_node nd = {.status = MEMBERSHIP_STATUS_JOINING};
    bool changed = false;
    m->reply_text[0] = '\0';
    if (m->phase != MEMBERSHIP_MEMBER) {
        rc = RK_EINVAL;
        snprintf(m->reply_text, sizeof(m->reply_text),
                 "%s is not a member of a cluster", m->self.id);
    } else if (m->refuse_joins[0] && !lists_id(m->st, &j->node_id)) {
        rc = RK_EPERM;
        snprintf(m->reply_text, sizeof(m->reply_text), "%s", m->refuse_joins);
    } else if (!ring_member_id_is_valid(j->node_id.ptr, j->node_id.len) ||
               j->host.len == 0 || j->host.len > CL_HOST_MAX ||
               !mb_name_is_valid(j->host.ptr, j->host.len, CL_HOST_MAX)) {
        rc = RK_EINVAL;
        snprintf(m->reply_text, sizeof(m->reply_text),
                 "JOIN with an invalid node id or host");
    } else {
        memcpy(nd.id, j->node_id.ptr, j->node_id.len);
        memcpy(nd.host, j->host.ptr, j->host.len);
        nd.resp_port = j->resp_port;
        nd.http_port = j->http_port;
        nd.peer_port = j->peer_port;
        long i = mb_state_find(m->st, nd.id);
        if (i >= 0 && mb_in_next(m->st->nodes[i].status)) {
            nd.status = m->st->nodes[i].status;
        }
        if (i >= 0) {
            /* JOIN does not carry it: the node publishes it itself */
            nd.tls_port = m->st->nodes[i].tls_port;
        }
        if (i >= 0 && node_same(&m->st->nodes[i], &nd)) {
            changed = false; /* a retry of a join already done */
        } else if (i >= 0 &&
                   m->st->nodes[i].status == MEMBERSHIP_STATUS_LEAVING) {
            rc = RK_EBUSY;
            snprintf(m->reply_text, sizeof(m->reply_text),
                     "%s is still leaving (its partitions are being handed "
                     "off); join again when `cluster status` shows it "
                     "removed",
                     nd.id);
        } else if (replace) {
            struct mb_state *s = NULL;
            rc = mb_state_replace(m->st, &nd, old_id, m->self.id, &s,
                                  m->reply_text, sizeof(m->reply_text));
            if (rc == RK_OK) {
                rc = install_state(m, s);
            }
            changed = rc == RK_OK;
        } else if (i < 0 && m->st->n_nodes >= MEMBERSHIP_MAX_MEMBERS) {
            rc = RK_ERANGE;
            snprintf(m->reply_text, sizeof(m->reply_text),
                     "the cluster has %d members, the most it can list",
                     MEMBERSHIP_MAX_MEMBERS);
        } else {
            struct mb_state *s = NULL;
            rc = change_node(m, &nd, &s);
            if (rc == RK_OK) {
                rc = install_state(m, s);
            }
            if (rc != RK_OK) {
                snprintf(m->reply_text, sizeof(m->reply_text),
                         "cannot admit %s: %s", nd.id, rk_strerror(rc));
            }
            changed = rc == RK_OK;
        }
    }
    if (changed) {
        emit_state_changed(m, acts);
        log_action(acts, RK_OK, "admitted %s (%s:%u)%s%s at version %" PRIu64,
                   nd.id, nd.host, nd.peer_port,
                   replace ? " in the place of " : "", old_id, m->st->version);
    }
    struct cl_action *a = cl_actions_push(acts, CL_ACT_SEND);
    if (a != NULL) {
        size_t l = j->node_id.len < CL_ID_MAX ? j->node_id.len : CL_ID_MAX;
        memcpy(a->node, j->node_id.ptr, l);
        l = j->host.len < CL_HOST_MAX ? j->host.len : CL_HOST_MAX;
        memcpy(a->host, j->host.ptr, l);
        a->peer_port = j->peer_port;
        a->msg.type = PEER_JOIN_REPLY;
        a->msg.join_reply.req_id = j->req_id;
        a->msg.join_reply.status = rc;
        a->msg.join_reply.message = pb(m->reply_text);
        if (rc == RK_OK) {
            a->msg.join_reply.state =
                (struct peer_bytes){.ptr = m->enc.base, .len = m->enc.len};
        }
    }
    if (changed) {
        gossip_random(m, nd.id, acts);
        m->next_gossip_ms = now_ms + m->gossip_ms;
    }
    if (rc != RK_OK) {
        MB_ERR(m, "%s", m->reply_text);
    }
    return rc;
}

/*
 * Decodes an incoming state and checks its cluster name.  *out is NULL
 * with RK_OK never: RK_OK means *out is set.
 */
static int decode_incoming(struct membership *m,
                           struct peer_bytes b,
                           struct mb_state **out)
{
    int rc =
        mb_state_decode(b.ptr, b.len, false, out, m->errmsg, sizeof(m->errmsg));
    if (rc == RK_OK && strcmp((*out)->name, m->name) != 0) {
        MB_ERR(m, "state of cluster \"%s\" ignored (this node is in \"%s\")",
               (*out)->name, m->name);
        mb_state_free(*out);
        *out = NULL;
        rc = RK_EINVAL;
    }
    return rc;
}

/* Adopts `s` (taken) as a join result. */
static int adopt_joined(struct membership *m,
                        struct mb_state *s,
                        uint64_t now_ms,
                        struct cl_actions *acts)
{
    int rc = install_state(m, s);
    if (rc != RK_OK) {
        return rc;
    }
    m->phase = MEMBERSHIP_MEMBER;
    m->next_gossip_ms = now_ms + m->gossip_ms;
    emit_state_changed(m, acts);
    struct cl_action *a = cl_actions_push(acts, CL_ACT_JOIN_DONE);
    if (a != NULL) {
        a->version = m->st->version;
        snprintf(a->text, sizeof(a->text),
                 "joined cluster \"%s\" at version %" PRIu64 " (%zu members)",
                 m->st->name, m->st->version, count_valid(m->st));
    }
    return RK_OK;
}

/* Whether s lists `id` as part of the cluster (valid, joining or
 * leaving). */
static bool lists_valid(const struct mb_state *s, const char *id)
{
    long i = mb_state_find(s, id);
    return i >= 0 && membership_status_active(s->nodes[i].status);
}

static int on_join_reply(struct membership *m,
                         const struct peer_join_reply *r,
                         uint64_t now_ms,
                         struct cl_actions *acts)
{
    if (m->phase != MEMBERSHIP_JOINING || r->req_id != m->join_req_id) {
        return RK_OK; /* late or duplicate */
    }
    if (r->status != RK_OK) {
        m->phase = m->join_from;
        struct cl_action *a = cl_actions_push(acts, CL_ACT_JOIN_FAILED);
        if (a != NULL) {
            a->status = r->status;
            snprintf(a->text, sizeof(a->text), "seed %.60s:%u refused: %.*s",
                     m->seed_host, m->seed_port,
                     (int)(r->message.len > 150 ? 150 : r->message.len),
                     r->message.ptr ? r->message.ptr : "");
            for (char *p = a->text; *p; p++) {
                if (*p == '\r' || *p == '\n') {
                    *p = ' ';
                }
            }
        }
        return RK_OK;
    }
    struct mb_state *s = NULL;
    int rc = decode_incoming(m, r->state, &s);
    if (rc == RK_EINVAL) {
        m->phase = m->join_from;
        struct cl_action *a = cl_actions_push(acts, CL_ACT_JOIN_FAILED);
        if (a != NULL) {
            a->status = rc;
            snprintf(a->text, sizeof(a->text), "%s", m->errmsg);
        }
        return rc;
    }
    if (rc != RK_OK) {
        return rc; /* keep retrying: another reply may be well-formed */
    }
    if (!lists_valid(s, m->self.id)) {
        mb_state_free(s);
        return RK_OK; /* the seed lost our join to a concurrent change */
    }
    return adopt_joined(m, s, now_ms, acts);
}

/* Looks `id` up in the current state, else in `other`. */
static const struct mb_node *lookup(const struct membership *m,
                                    const struct mb_state *other,
                                    const char *id)
{
    long i = m->st ? mb_state_find(m->st, id) : -1;
    if (i >= 0) {
        return &m->st->nodes[i];
    }
    i = other ? mb_state_find(other, id) : -1;
    return i >= 0 ? &other->nodes[i] : NULL;
}

/* After adopting a newer state: follow where it puts this node. */
static int follow_self(struct membership *m,
                       enum membership_phase before,
                       uint64_t now_ms,
                       struct cl_actions *acts)
{
    enum membership_phase now_phase = phase_of_state(m);
    if (now_phase == MEMBERSHIP_MEMBER && m->leave_intent &&
        self_node(m)->status != MEMBERSHIP_STATUS_LEAVING) {
        log_action(acts, RK_OK,
                   "version %" PRIu64
                   " undid this node's leave; leaving "
                   "again",
                   m->st->version);
        return remove_self(m, now_ms, acts);
    }
    if (now_phase == MEMBERSHIP_NONE && before == MEMBERSHIP_MEMBER) {
        /* Our join lost to a concurrent change: join again via a member. */
        size_t n = count_valid(m->st);
        uint64_t pick = rk_rng_below(&m->rng, n);
        for (size_t i = 0; i < m->st->n_nodes; i++) {
            const struct mb_node *nd = &m->st->nodes[i];
            if (membership_status_active(nd->status) && pick-- == 0) {
                snprintf(m->seed_host, sizeof(m->seed_host), "%s", nd->host);
                m->seed_port = nd->peer_port;
                break;
            }
        }
        log_action(acts, RK_EAGAIN,
                   "version %" PRIu64
                   " by %s does not list this node (a "
                   "concurrent change won); joining again via %s:%u",
                   m->st->version, m->st->changer, m->seed_host, m->seed_port);
        m->join_from = MEMBERSHIP_NONE;
        m->phase = MEMBERSHIP_JOINING;
        m->join_req_id = rk_rng_next(&m->rng) | 1;
        m->join_deadline_ms = now_ms + m->join_timeout_ms;
        send_join(m, now_ms, acts);
        return RK_OK;
    }
    if (now_phase == MEMBERSHIP_REMOVED_SELF && before == MEMBERSHIP_MEMBER) {
        log_action(acts, RK_EAGAIN,
                   "this node was removed from the cluster (version %" PRIu64
                   " by %s)",
                   m->st->version, m->st->changer);
    }
    m->phase = now_phase == MEMBERSHIP_NONE ? before : now_phase;
    return RK_OK;
}

/*
 * Why a member refuses to adopt `s`, a state greater than its own that a
 * peer gossiped, or NULL when it may (issue 15 item 1: gossip is checked
 * against what the cluster state's own rules allow a change to do).  No
 * change ever alters ring_size or n_val, and each change adds 1 to the
 * version: a state that alters the settings, or whose version is more
 * than MEMBERSHIP_MAX_VERSION_STEP ahead, was not made by the rules (a
 * forged or corrupt state; one far ahead would otherwise win every
 * comparison forever, and at UINT64_MAX no node could make a newer one).
 * A node that really was away for that many versions must be wiped and
 * join again; the log line says so.
 */
static const char *gossip_refusal(const struct membership *m,
                                  const struct mb_state *s)
{
    if (s->ring_size != m->st->ring_size || s->n_val != m->st->n_val) {
        return "changes ring_size or n_val, which no membership change "
               "does";
    }
    if (s->version > m->st->version &&
        s->version - m->st->version > MEMBERSHIP_MAX_VERSION_STEP) {
        return "is more versions ahead of this node's state than any "
               "history makes (if this node was away that long, wipe its "
               "data dir and join it again)";
    }
    return NULL;
}

static int on_gossip(struct membership *m,
                     const struct peer_gossip *g,
                     uint64_t now_ms,
                     struct cl_actions *acts)
{
    struct mb_state *s = NULL;
    int rc = decode_incoming(m, g->state, &s);
    if (rc != RK_OK) {
        log_action(acts, rc, "gossip from %.*s rejected: %s",
                   (int)(g->from.len > CL_ID_MAX ? CL_ID_MAX : g->from.len),
                   g->from.ptr ? g->from.ptr : "", m->errmsg);
        return rc;
    }
    if (m->phase == MEMBERSHIP_JOINING || m->st == NULL) {
        /* Only a state that admits us ends a join (or, for a node in no
         * cluster, lists it: a committed plan that staged its join,
         * membership_plan.c); others are not ours. */
        if ((m->phase == MEMBERSHIP_JOINING || m->phase == MEMBERSHIP_NONE) &&
            lists_valid(s, m->self.id)) {
            return adopt_joined(m, s, now_ms, acts);
        }
        mb_state_free(s);
        return RK_OK;
    }
    int c = membership_state_compare(g->state.ptr, g->state.len, m->enc.base,
                                     m->enc.len);
    if (c < 0) {
        /* Push-pull: the sender is behind, answer with ours. */
        char from[CL_ID_MAX + 1] = {0};
        size_t l = g->from.len < CL_ID_MAX ? g->from.len : CL_ID_MAX;
        if (l > 0) {
            memcpy(from, g->from.ptr, l);
        }
        /* A node alone in its own cluster answers only a node its state
         * lists: it must not push its state onto a cluster that gossips
         * to it (a staged join, membership_plan.c), which would adopt it.
         * A node of a real cluster answers anyone behind, also a node its
         * state no longer lists: that is how a node whose join lost to a
         * concurrent change learns it and joins again (sim seed 54 of
         * --spares 2: without the answer it kept a stale state forever). */
        const struct mb_node *to =
            mb_state_find(m->st, from) >= 0 || count_valid(m->st) > 1
                ? lookup(m, s, from)
                : NULL;
        if (to != NULL) {
            send_gossip(m, to, acts);
        }
        mb_state_free(s);
        return RK_OK;
    }
    if (c == 0) {
        mb_state_free(s);
        return RK_OK;
    }
    const char *why = gossip_refusal(m, s);
    if (why != NULL) {
        m->gossip_refused++;
        if (m->refused_logged_ms == 0 ||
            now_ms >= m->refused_logged_ms + 10000) {
            m->refused_logged_ms = now_ms; /* rate-limited */
            log_action(acts, RK_EINVAL,
                       "gossip from %.*s refused (%" PRIu64
                       " so far): version %" PRIu64 " by %s %s",
                       (int)(g->from.len > CL_ID_MAX ? CL_ID_MAX : g->from.len),
                       g->from.ptr ? g->from.ptr : "", m->gossip_refused,
                       s->version, s->changer, why);
        }
        MB_ERR(m, "%s", why);
        mb_state_free(s);
        return RK_EINVAL;
    }
    enum membership_phase before = m->phase;
    rc = install_state(m, s);
    if (rc != RK_OK) {
        return rc;
    }
    /* follow_self may install a newer state of its own (a leave re-applied),
     * which frees the encoding a PERSIST of the adopted one would view:
     * announce the adopted state only when it is still the one held (the
     * newer one announces itself and supersedes it). */
    uint64_t adopted = m->st->version;
    rc = follow_self(m, before, now_ms, acts);
    if (m->st->version == adopted) {
        emit_state_changed(m, acts);
    }
    return rc;
}

int membership_on_message(struct membership *m,
                          const struct peer_msg *msg,
                          uint64_t now_ms,
                          struct cl_actions *acts)
{
    m->errmsg[0] = '\0';
    switch (msg->type) {
        case PEER_JOIN:
        case PEER_REPLACE:
            return on_join(m, &msg->join, msg->type == PEER_REPLACE, now_ms,
                           acts);
        case PEER_JOIN_REPLY:
            return on_join_reply(m, &msg->join_reply, now_ms, acts);
        case PEER_GOSSIP:
            return on_gossip(m, &msg->gossip, now_ms, acts);
        default:
            return RK_OK;
    }
}

/* ---- accessors ---------------------------------------------------------- */

enum membership_phase membership_phase(const struct membership *m)
{
    return m->phase;
}

const char *membership_self_id(const struct membership *m)
{
    return m->self.id;
}

uint64_t membership_gossip_refused(const struct membership *m)
{
    return m->gossip_refused;
}

uint64_t membership_version(const struct membership *m)
{
    return m->st ? m->st->version : 0;
}

const char *membership_changer(const struct membership *m)
{
    return m->st ? m->st->changer : "";
}

const char *membership_cluster_name(const struct membership *m)
{
    return m->st ? m->st->name : m->name;
}

const struct ring *membership_ring(const struct membership *m)
{
    return m->st ? m->st->ring : NULL;
}

size_t membership_member_count(const struct membership *m)
{
    return m->st ? m->st->n_nodes : 0;
}

static void fill_member(const struct mb_node *nd, struct membership_member *out)
{
    out->node_id = nd->id;
    out->host = nd->host;
    out->resp_port = nd->resp_port;
    out->http_port = nd->http_port;
    out->peer_port = nd->peer_port;
    out->tls_port = nd->tls_port;
    out->status = (enum membership_status)nd->status;
}

void membership_member_get(const struct membership *m,
                           size_t i,
                           struct membership_member *out)
{
    if (RK_ALWAYS(m->st != NULL && i < m->st->n_nodes)) {
        fill_member(&m->st->nodes[i], out);
    }
}

bool membership_member_find(const struct membership *m,
                            const char *node_id,
                            struct membership_member *out)
{
    long i = m->st ? mb_state_find(m->st, node_id) : -1;
    if (i < 0) {
        return false;
    }
    fill_member(&m->st->nodes[i], out);
    return true;
}

struct peer_bytes membership_state_bytes(const struct membership *m)
{
    return (struct peer_bytes){.ptr = m->enc.base, .len = m->enc.len};
}

/* ---- the ownership transition (issue 14) --------------------------------- */

const struct ring *membership_next_ring(const struct membership *m)
{
    return m->st ? m->st->next : NULL;
}

uint32_t membership_epoch(const struct membership *m)
{
    return m->st ? m->st->epoch : 0;
}

bool membership_pending_for(const struct membership *m,
                            uint32_t partition,
                            const char *node_id,
                            bool *received)
{
    int j = m->st ? mb_state_pending_pos(m->st, partition, node_id) : -1;
    if (received != NULL) {
        *received = j >= 0 && (m->st->has[partition] >> j & 1);
    }
    return j >= 0;
}

bool membership_partition_done(const struct membership *m, uint32_t partition)
{
    return m->st == NULL || partition >= m->st->ring_size ||
           mb_state_part_done(m->st, partition);
}

uint32_t membership_partitions_pending(const struct membership *m)
{
    uint32_t pending = 0;
    for (uint32_t p = 0; m->st && m->st->next && p < m->st->ring_size; p++) {
        pending += !mb_state_part_done(m->st, p);
    }
    return pending;
}

int membership_mark_received(struct membership *m,
                             const uint32_t *parts,
                             size_t n_parts,
                             uint64_t now_ms,
                             struct cl_actions *acts)
{
    m->errmsg[0] = '\0';
    if (m->phase != MEMBERSHIP_MEMBER) {
        MB_ERR(m, "this node is not a member of a cluster");
        return RK_EINVAL;
    }
    size_t fresh = 0;
    for (size_t k = 0; k < n_parts; k++) {
        int j = mb_state_pending_pos(m->st, parts[k], m->self.id);
        if (j < 0) {
            MB_ERR(m, "this node is not a pending owner of partition %" PRIu32,
                   parts[k]);
            return RK_EINVAL;
        }
        fresh += !(m->st->has[parts[k]] >> j & 1);
    }
    if (fresh == 0) {
        return RK_OK;
    }
    struct mb_state *s = NULL;
    int rc = mb_state_copy(m->st, 0, &s);
    if (rc != RK_OK) {
        return rc;
    }
    for (size_t k = 0; k < n_parts; k++) {
        int j = mb_state_pending_pos(s, parts[k], m->self.id);
        s->has[parts[k]] |= UINT64_C(1) << j;
    }
    s->version = m->st->version + 1;
    snprintf(s->changer, sizeof(s->changer), "%s", m->self.id);
    bool finalized = mb_state_try_finalize(s);
    rc = commit_change(m, s, NULL, now_ms, acts);
    if (rc != RK_OK) {
        return rc;
    }
    log_action(acts, RK_OK,
               "received %zu partition(s) at version %" PRIu64 "%s", fresh,
               m->st->version,
               finalized ? "; every partition is with its new owners: the "
                           "transition is complete"
                         : "");
    if (finalized) {
        m->phase = phase_of_state(m);
    }
    return RK_OK;
}
