/*
 * cluster_plan.c - RINGKV.CLUSTER PLAN and COMMIT (issue 14 item 3): the
 * operator's staged membership changes, kept in the membership machine of
 * the node they are sent to, in memory (membership_plan.c has the rules;
 * docs/cluster.md "Staged changes: plan and commit" the user's view).
 *
 *   PLAN JOIN NODE-ID HOST:PEERPORT [RESPPORT]   stage an empty node's join
 *   PLAN REPLACE OLD NODE-ID HOST:PEERPORT [RESPPORT]
 *   PLAN LEAVE NODE | PLAN REMOVE NODE           stage a member's departure
 *   PLAN [SHOW]                                  the plan and what it moves
 *   PLAN CLEAR                                   drop the plan
 *   COMMIT [FORCE]                               apply it as one change
 *
 * The `ringkv` CLI fills NODE-ID and the peer port of a new node by asking
 * it (`ringkv cluster plan join HOST:PORT`).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cluster_internal.h"

/* Copies a RESP argument into buf (cap bytes incl. NUL); false if too
 * long or empty. */
static bool arg_str(const struct resp_arg *a, char *buf, size_t cap)
{
    if (a->len == 0 || a->len >= cap) {
        return false;
    }
    memcpy(buf, a->ptr, a->len);
    buf[a->len] = '\0';
    return true;
}

/* Parses a port 1..65535; false otherwise. */
static bool parse_port(const char *s, uint16_t *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (s[0] == '\0' || end == NULL || *end != '\0' || v == 0 || v > 65535) {
        return false;
    }
    *out = (uint16_t)v;
    return true;
}

/* "HOST:PORT" (IPv6 in brackets) into host and port. */
static bool split_addr(const struct resp_arg *a,
                       char *host,
                       size_t cap,
                       uint16_t *port)
{
    if (!arg_str(a, host, cap)) {
        return false;
    }
    char *colon = strrchr(host, ':');
    if (colon == NULL || colon == host || !parse_port(colon + 1, port)) {
        return false;
    }
    *colon = '\0';
    if (host[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        memmove(host, host + 1, strlen(host));
    }
    return host[0] != '\0';
}

/* Whether `id` is in the first N of ring r's preference list of p. */
static bool replicates(const struct ring *r, uint32_t p, const char *id)
{
    const char *ids[RING_MAX_N];
    size_t n = ring_preflist_ids(r, p, ids);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], id) == 0) {
            return true;
        }
    }
    return false;
}

/* Keys this node stores in partition p (slot index), or -1 without one. */
static int64_t local_keys(struct server *s, const struct ring *r, uint32_t p)
{
    uint32_t first, last;
    ring_slot_range(r, p, &first, &last);
    uint64_t sum = 0;
    for (uint32_t slot = first; slot <= last; slot++) {
        uint64_t k = 0;
        if (engine_slot_count(s->engine, slot, &k) != RK_OK) {
            return -1;
        }
        sum += k;
    }
    return (int64_t)sum;
}

static void appendf(struct rk_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void appendf(struct rk_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0) {
        rk_buf_append(b, line,
                      (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
}

/* The moves of the plan: per member the partitions it replicates now and
 * after, and what it receives; estimated keys and bytes from this node's
 * own copies (the slot index). */
static void show_moves(struct server *s,
                       struct membership *mem,
                       const struct ring *next,
                       size_t staying,
                       struct rk_buf *b)
{
    const struct ring *cur = membership_ring(mem);
    uint32_t q = ring_size(cur);
    const char *self = membership_self_id(mem);
    uint64_t moves = 0, parts_moving = 0, est_keys = 0, known = 0, sum = 0;
    int64_t keys_of[RING_MAX_SIZE];
    for (uint32_t p = 0; p < q; p++) {
        keys_of[p] = replicates(cur, p, self) ? local_keys(s, cur, p) : -1;
        if (keys_of[p] >= 0) {
            known++;
            sum += (uint64_t)keys_of[p];
        }
    }
    uint64_t avg = known ? sum / known : 0;
    for (uint32_t p = 0; p < q; p++) {
        const char *ids[RING_MAX_N];
        size_t n = ring_preflist_ids(next, p, ids);
        uint64_t in = 0;
        for (size_t i = 0; i < n; i++) {
            in += !replicates(cur, p, ids[i]);
        }
        moves += in;
        parts_moving += in > 0;
        est_keys += in * (keys_of[p] >= 0 ? (uint64_t)keys_of[p] : avg);
    }
    struct engine_stats st;
    engine_stats(s->engine, &st);
    uint64_t est_bytes =
        st.live_keys ? est_keys * (st.live_bytes / st.live_keys) : 0;
    appendf(b,
            "would give: %zu members (n=%" PRIu32 "), %" PRIu64 " of %" PRIu32
            " partitions move, %" PRIu64
            " partition copies to transfer, about %" PRIu64 " keys and %" PRIu64
            " bytes (estimated from this node's copies)\n",
            staying, ring_target_n(cur), parts_moving, q, moves, est_keys,
            est_bytes);
    appendf(b, "%-24s %-10s %-10s %s\n", "NODE_ID", "REPLICAS", "AFTER",
            "RECEIVES");
    /* every node of either ring, in id order (both are sorted) */
    size_t i = 0, j = 0, nc = ring_member_count(cur),
           nn = ring_member_count(next);
    while (i < nc || j < nn) {
        const char *a = i < nc ? ring_member_id(cur, i, NULL) : NULL;
        const char *c = j < nn ? ring_member_id(next, j, NULL) : NULL;
        int cmp = a == NULL ? 1 : c == NULL ? -1 : strcmp(a, c);
        const char *id = cmp <= 0 ? a : c;
        uint32_t now = 0, after = 0, recv = 0;
        for (uint32_t p = 0; p < q; p++) {
            bool x = replicates(cur, p, id), y = replicates(next, p, id);
            now += x;
            after += y;
            recv += y && !x;
        }
        appendf(b, "%-24s %-10" PRIu32 " %-10" PRIu32 " %" PRIu32 "\n", id, now,
                after, recv);
        i += cmp <= 0;
        j += cmp >= 0;
    }
}

static void plan_show(struct client *c, struct cnode *cn)
{
    struct membership *mem = node_membership(cn->node);
    struct rk_buf b;
    rk_buf_init(&b);
    size_t n = membership_plan_len(mem);
    appendf(&b,
            "plan on %s (in memory on this node; `cluster commit` applies "
            "it as one change): %zu change%s\n",
            cn->node_id, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        struct membership_plan_item it;
        membership_plan_get(mem, i, &it);
        if (it.op == MEMBERSHIP_PLAN_JOIN) {
            appendf(&b, "  %zu. join %s (%s:%u)\n", i + 1, it.node_id, it.host,
                    it.peer_port);
        } else if (it.op == MEMBERSHIP_PLAN_REPLACE) {
            appendf(&b, "  %zu. replace %s by %s (%s:%u)\n", i + 1, it.old_id,
                    it.node_id, it.host, it.peer_port);
        } else {
            appendf(&b, "  %zu. %s %s\n", i + 1, membership_plan_op_name(it.op),
                    it.node_id);
        }
    }
    if (n > 0) {
        struct ring *next = NULL;
        size_t staying = 0;
        int rc = membership_plan_preview(mem, &next, &staying);
        if (rc == RK_OK) {
            show_moves(c->srv, mem, next, staying, &b);
            ring_destroy(next);
        } else {
            appendf(&b, "cannot be applied now: %s\n", membership_errmsg(mem));
        }
    }
    reply_bulk(c, b.base ? b.base : "", b.len);
    rk_buf_fini(&b);
}

/* PLAN JOIN ID ADDR [RESP] / PLAN REPLACE OLD ID ADDR [RESP]: argv[at] is
 * the new node's id. */
static int plan_new_node(struct client *c,
                         struct membership *mem,
                         enum membership_plan_op op,
                         const char *old,
                         size_t argc,
                         const struct resp_arg *argv,
                         size_t at)
{
    char id[CL_ID_MAX + 1], host[CL_HOST_MAX + 1], resp[8] = "";
    uint16_t peer = 0, resp_port = 0;
    if (argc < at + 2 || argc > at + 3 || !arg_str(&argv[at], id, sizeof(id)) ||
        !split_addr(&argv[at + 1], host, sizeof(host), &peer) ||
        (argc == at + 3 && (!arg_str(&argv[at + 2], resp, sizeof(resp)) ||
                            !parse_port(resp, &resp_port)))) {
        reply_error(c,
                    "ERR usage: RINGKV.CLUSTER PLAN JOIN NODE-ID "
                    "HOST:PEERPORT [RESPPORT] | PLAN REPLACE OLD NODE-ID "
                    "HOST:PEERPORT [RESPPORT] (the CLI fills these in: "
                    "`ringkv cluster plan join HOST:PORT`)");
        return RK_EINVAL;
    }
    struct membership_plan_item it = {.op = op,
                                      .node_id = id,
                                      .old_id = old,
                                      .host = host,
                                      .resp_port = resp_port,
                                      .peer_port = peer};
    return membership_plan_add(mem, &it);
}

void cluster__plan_cmd(struct client *c,
                       size_t argc,
                       const struct resp_arg *argv)
{
    struct cnode *cn = c->srv->cluster;
    struct membership *mem = node_membership(cn->node);
    if (cluster__arg_eq(&argv[1], "COMMIT")) {
        if (argc > 3 || (argc == 3 && !cluster__arg_eq(&argv[2], "FORCE"))) {
            reply_error(c, "ERR usage: RINGKV.CLUSTER COMMIT [FORCE]");
            return;
        }
        size_t n = membership_plan_len(mem);
        int rc = node_commit(cn->node, argc == 3, cluster__now_mono());
        cluster__run_node_actions(cn);
        if (rc != RK_OK) {
            reply_errorf(c, "ERR cannot commit: %s", membership_errmsg(mem));
            return;
        }
        rk_log(RK_LOG_INFO, "cluster_plan_committed",
               "changes=%zu version=%" PRIu64, n, membership_version(mem));
        reply_ok(c);
        return;
    }
    if (argc == 2 || (argc == 3 && cluster__arg_eq(&argv[2], "SHOW"))) {
        plan_show(c, cn);
        return;
    }
    const struct resp_arg *verb = &argv[2];
    int rc = RK_EINVAL;
    char id[CL_ID_MAX + 1];
    if (cluster__arg_eq(verb, "CLEAR") && argc == 3) {
        membership_plan_clear(mem);
        reply_ok(c);
        return;
    } else if (cluster__arg_eq(verb, "JOIN")) {
        rc = plan_new_node(c, mem, MEMBERSHIP_PLAN_JOIN, NULL, argc, argv, 3);
        if (rc == RK_EINVAL && membership_errmsg(mem)[0] == '\0') {
            return; /* usage already answered */
        }
    } else if (cluster__arg_eq(verb, "REPLACE") && argc >= 4 &&
               arg_str(&argv[3], id, sizeof(id))) {
        rc = plan_new_node(c, mem, MEMBERSHIP_PLAN_REPLACE, id, argc, argv, 4);
        if (rc == RK_EINVAL && membership_errmsg(mem)[0] == '\0') {
            return;
        }
    } else if ((cluster__arg_eq(verb, "LEAVE") ||
                cluster__arg_eq(verb, "REMOVE")) &&
               argc == 4 && arg_str(&argv[3], id, sizeof(id))) {
        struct membership_plan_item it = {.op = cluster__arg_eq(verb, "LEAVE")
                                                    ? MEMBERSHIP_PLAN_LEAVE
                                                    : MEMBERSHIP_PLAN_REMOVE,
                                          .node_id = id};
        rc = membership_plan_add(mem, &it);
    } else {
        reply_error(c,
                    "ERR usage: RINGKV.CLUSTER PLAN [SHOW] | PLAN CLEAR | "
                    "PLAN JOIN NODE-ID HOST:PEERPORT [RESPPORT] | PLAN "
                    "LEAVE NODE | PLAN REMOVE NODE | PLAN REPLACE OLD "
                    "NODE-ID HOST:PEERPORT [RESPPORT]");
        return;
    }
    if (rc != RK_OK) {
        reply_errorf(c, "ERR cannot plan: %s", membership_errmsg(mem));
        return;
    }
    reply_ok(c);
}
