/*
 * membership_plan.c - staged membership changes (issue 14 item 3, after
 * Riak's `cluster plan` / `cluster commit`): joins, leaves, removes and
 * replaces are staged in the machine of the node the operator talks to
 * (in memory only: a restart of that node, or `plan clear`, drops them),
 * previewed (membership_plan_preview: the next ring they would give), and
 * applied by membership_commit as ONE state change and one transition, so
 * a partition that several of the changes move moves once.
 *
 * A staged join names the new node by id and peer address (the server's
 * caller, the CLI, asks the new node for them).  The committed state
 * lists it JOINING; the committing member then gossips that state to the
 * new node at once, and the new node, still alone in its own one-node
 * cluster, adopts it because the state is newer and lists it
 * (membership.c on_gossip) - no JOIN is needed.  A lone node never pushes
 * its own state back to a node its state does not list, so a cluster
 * cannot adopt a newcomer's one-node state, and (node.c) it drops key
 * traffic from such nodes until it adopted the state, so it stays empty.
 *
 * Commit re-checks every staged change against the state of that moment
 * (the cluster may have changed since staging): a change that no longer
 * applies fails the whole commit with its reason, and nothing changes.
 * A plan of replaces only, without a transition in progress, keeps every
 * partition in place (each replaced id renamed, as membership_replace_start
 * does); any other plan plans the next ring from the previous one
 * (mb_state_replan: ring_create with few moves).
 */
#include <stdio.h>
#include <string.h>

#include "cluster/membership_internal.h"
#include "common/alloc.h"
#include "common/error.h"

const char *membership_plan_op_name(enum membership_plan_op op)
{
    switch (op) {
        case MEMBERSHIP_PLAN_JOIN:
            return "join";
        case MEMBERSHIP_PLAN_LEAVE:
            return "leave";
        case MEMBERSHIP_PLAN_REMOVE:
            return "remove";
        default:
            return "replace";
    }
}

/* The member an item takes out ("" for a join). */
static const char *item_out(const struct mb_plan_item *it)
{
    return it->op == MEMBERSHIP_PLAN_REPLACE ? it->old_id
           : it->op == MEMBERSHIP_PLAN_JOIN  ? ""
                                             : it->node.id;
}

/* Checks item `it` against state `s` and the items staged before it. */
static int item_check(const struct membership *m,
                      const struct mb_state *s,
                      const struct mb_plan_item *it,
                      size_t before,
                      char *err,
                      size_t errlen)
{
    const char *out = item_out(it);
    bool adds =
        it->op == MEMBERSHIP_PLAN_JOIN || it->op == MEMBERSHIP_PLAN_REPLACE;
    for (size_t i = 0; i < before; i++) {
        const struct mb_plan_item *o = &m->plan[i];
        bool o_adds =
            o->op == MEMBERSHIP_PLAN_JOIN || o->op == MEMBERSHIP_PLAN_REPLACE;
        if ((out[0] && strcmp(item_out(o), out) == 0) ||
            (adds && o_adds && strcmp(o->node.id, it->node.id) == 0) ||
            (adds && strcmp(item_out(o), it->node.id) == 0) ||
            (out[0] && o_adds && strcmp(o->node.id, out) == 0)) {
            mb_set_err(err, errlen, "change %zu (%s %s) already names %s",
                       i + 1, membership_plan_op_name(o->op),
                       o_adds ? o->node.id : item_out(o),
                       out[0] ? out : it->node.id);
            return RK_EEXIST;
        }
    }
    if (out[0]) {
        long i = mb_state_find(s, out);
        uint8_t st = i < 0 ? 0 : s->nodes[i].status;
        bool ok =
            it->op == MEMBERSHIP_PLAN_REPLACE
                ? st == MEMBERSHIP_VALID
                : st == MEMBERSHIP_VALID || st == MEMBERSHIP_STATUS_JOINING;
        if (!ok) {
            mb_set_err(err, errlen, "%s: '%s' is %s",
                       membership_plan_op_name(it->op), out,
                       i < 0                             ? "not a member"
                       : st == MEMBERSHIP_STATUS_LEAVING ? "already leaving"
                       : st == MEMBERSHIP_REMOVED        ? "removed already"
                                                         : "not valid");
            return RK_ENOTFOUND;
        }
    }
    if (adds) {
        long i = mb_state_find(s, it->node.id);
        if (i >= 0 && membership_status_active(s->nodes[i].status)) {
            mb_set_err(err, errlen, "%s: %s is a member already",
                       membership_plan_op_name(it->op), it->node.id);
            return RK_EBUSY;
        }
    }
    return RK_OK;
}

int membership_plan_add(struct membership *m,
                        const struct membership_plan_item *in)
{
    m->errmsg[0] = '\0';
    if (m->phase != MEMBERSHIP_MEMBER) {
        MB_ERR(m, "this node is not a member of a cluster");
        return RK_EINVAL;
    }
    if (m->n_plan >= MEMBERSHIP_PLAN_MAX) {
        MB_ERR(m, "the plan holds %d changes, the most it can",
               MEMBERSHIP_PLAN_MAX);
        return RK_ERANGE;
    }
    struct mb_plan_item it = {.op = in->op};
    bool adds =
        in->op == MEMBERSHIP_PLAN_JOIN || in->op == MEMBERSHIP_PLAN_REPLACE;
    const char *id = in->node_id ? in->node_id : "";
    if (in->op < MEMBERSHIP_PLAN_JOIN || in->op > MEMBERSHIP_PLAN_REPLACE ||
        !ring_member_id_is_valid(id, strlen(id))) {
        MB_ERR(m, "a planned change needs a valid node id");
        return RK_EINVAL;
    }
    snprintf(it.node.id, sizeof(it.node.id), "%s", id);
    if (adds) {
        const char *host = in->host ? in->host : "";
        if (host[0] == '\0' || strlen(host) > CL_HOST_MAX ||
            !mb_name_is_valid(host, strlen(host), CL_HOST_MAX) ||
            in->peer_port == 0) {
            MB_ERR(m, "%s: the new node needs a host and peer port",
                   membership_plan_op_name(in->op));
            return RK_EINVAL;
        }
        snprintf(it.node.host, sizeof(it.node.host), "%s", host);
        it.node.peer_port = in->peer_port;
        it.node.resp_port = in->resp_port;
        it.node.http_port = in->http_port;
        it.node.status = MEMBERSHIP_STATUS_JOINING;
    }
    if (in->op == MEMBERSHIP_PLAN_REPLACE) {
        const char *old = in->old_id ? in->old_id : "";
        if (!ring_member_id_is_valid(old, strlen(old)) ||
            strcmp(old, id) == 0) {
            MB_ERR(m, "replace: needs the member to replace and another node");
            return RK_EINVAL;
        }
        snprintf(it.old_id, sizeof(it.old_id), "%s", old);
    }
    int rc = item_check(m, m->st, &it, m->n_plan, m->errmsg, sizeof(m->errmsg));
    if (rc == RK_OK) {
        m->plan[m->n_plan++] = it;
    }
    return rc;
}

void membership_plan_clear(struct membership *m)
{
    m->n_plan = 0;
}

size_t membership_plan_len(const struct membership *m)
{
    return m->n_plan;
}

void membership_plan_get(const struct membership *m,
                         size_t i,
                         struct membership_plan_item *out)
{
    const struct mb_plan_item *it = &m->plan[i];
    *out = (struct membership_plan_item){
        .op = it->op,
        .node_id = it->node.id,
        .old_id = it->old_id,
        .host = it->node.host,
        .resp_port = it->node.resp_port,
        .http_port = it->node.http_port,
        .peer_port = it->node.peer_port,
    };
}

/* Members in the next ring of s (those that stay). */
static size_t staying(const struct mb_state *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        n += mb_in_next(s->nodes[i].status);
    }
    return n;
}

/* The state the plan gives (returned-owned), checked as at commit. */
static int plan_build(struct membership *m, struct mb_state **out)
{
    if (m->phase != MEMBERSHIP_MEMBER || m->n_plan == 0) {
        MB_ERR(m, m->n_plan == 0 ? "the plan is empty; stage changes with "
                                   "`cluster plan join|leave|remove|replace`"
                                 : "this node is not a member of a cluster");
        return RK_EINVAL;
    }
    bool renames = m->st->next == NULL;
    for (size_t i = 0; i < m->n_plan; i++) {
        int rc =
            item_check(m, m->st, &m->plan[i], i, m->errmsg, sizeof(m->errmsg));
        if (rc != RK_OK) {
            return rc;
        }
        renames &= m->plan[i].op == MEMBERSHIP_PLAN_REPLACE;
    }
    struct mb_state *s = NULL;
    int rc = mb_state_copy(m->st, m->n_plan, &s);
    if (rc != RK_OK) {
        return rc;
    }
    for (size_t i = 0; i < m->n_plan; i++) {
        const struct mb_plan_item *it = &m->plan[i];
        const char *gone = item_out(it);
        if (gone[0]) {
            struct mb_node *nd = &s->nodes[mb_state_find(s, gone)];
            nd->status = nd->status == MEMBERSHIP_STATUS_JOINING
                             ? MEMBERSHIP_REMOVED
                             : MEMBERSHIP_STATUS_LEAVING;
        }
        if (it->op == MEMBERSHIP_PLAN_JOIN ||
            it->op == MEMBERSHIP_PLAN_REPLACE) {
            mb_state_put_node(s, &it->node);
        }
    }
    s->version = m->st->version + 1;
    snprintf(s->changer, sizeof(s->changer), "%s", m->self.id);
    if (staying(s) == 0) {
        rc = RK_EINVAL;
        MB_ERR(m, "the plan would leave no member; a cluster cannot be empty");
    } else if (renames) {
        /* Replaces only: every partition stays where it is. */
        s->has = rk_calloc(s->ring_size, sizeof(*s->has));
        struct ring *r = NULL;
        rc = s->has == NULL ? RK_ENOMEM : ring_clone(s->ring, &r);
        for (size_t i = 0; rc == RK_OK && i < m->n_plan; i++) {
            struct ring *nr = NULL;
            rc = ring_rename_member(r, m->plan[i].old_id, m->plan[i].node.id,
                                    &nr);
            ring_destroy(r);
            r = nr;
        }
        if (rc == RK_OK) {
            s->next = r;
            s->epoch++;
            mb_state_try_finalize(s);
        }
    } else {
        rc = mb_state_replan(s);
    }
    if (rc != RK_OK) {
        if (m->errmsg[0] == '\0') {
            MB_ERR(m, "cannot plan the changes: %s", rk_strerror(rc));
        }
        mb_state_free(s);
        return rc;
    }
    *out = s;
    return RK_OK;
}

int membership_plan_preview(struct membership *m,
                            struct ring **next_out,
                            size_t *staying_after)
{
    m->errmsg[0] = '\0';
    struct mb_state *s = NULL;
    int rc = plan_build(m, &s);
    if (rc != RK_OK) {
        return rc;
    }
    *staying_after = staying(s);
    rc = ring_clone(s->next ? s->next : s->ring, next_out);
    mb_state_free(s);
    return rc;
}

int membership_commit(struct membership *m,
                      bool force,
                      uint64_t now_ms,
                      struct cl_actions *acts)
{
    m->errmsg[0] = '\0';
    struct mb_state *s = NULL;
    int rc = plan_build(m, &s);
    if (rc != RK_OK) {
        return rc;
    }
    /* The N floor counts the valid members that would stay. */
    size_t valid_after = 0, valid_now = 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        valid_after += mb_in_next(s->nodes[i].status);
    }
    for (size_t i = 0; i < m->st->n_nodes; i++) {
        valid_now += mb_in_next(m->st->nodes[i].status);
    }
    if (valid_after < valid_now &&
        mb_check_floor(m, valid_after, force, "this plan") != RK_OK) {
        mb_state_free(s);
        return RK_ERANGE;
    }
    size_t n = m->n_plan;
    struct mb_plan_item items[MEMBERSHIP_PLAN_MAX];
    memcpy(items, m->plan, n * sizeof(*items));
    rc = mb_commit_state(m, s, now_ms, acts);
    if (rc != RK_OK) {
        MB_ERR(m, "commit failed: %s", rk_strerror(rc));
        return rc;
    }
    m->n_plan = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(item_out(&items[i]), m->self.id) == 0) {
            m->leave_intent = true;
        }
        if (items[i].op == MEMBERSHIP_PLAN_JOIN ||
            items[i].op == MEMBERSHIP_PLAN_REPLACE) {
            /* the new node adopts the state from this gossip */
            mb_send_gossip_to(m, &items[i].node, acts);
        }
    }
    return RK_OK;
}
