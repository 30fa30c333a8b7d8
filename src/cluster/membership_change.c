/*
 * membership_change.c - the membership changes of issue 14 items 3 and 6
 * that join, leave and remove (membership.c) do not cover: a replace,
 * where a new node takes a member's place in one transition, and the N
 * floor that a leave or remove respects unless forced.  Part of the
 * machine of membership.h; it shares struct membership and struct mb_state
 * through membership_internal.h.  docs/cluster.md "Replacing a node" and
 * "Fewer than N members" give the user's view.
 *
 * Replace.  Riak's `cluster replace` and Cassandra's
 * replace_address_first_boot hand a dead or retiring node's ranges to a
 * new node directly, so the data moves once (a join followed by a remove
 * moves it twice: to wherever the join puts it, then again when the ring
 * drops the old node).  Here the new node sends REPLACE (a JOIN naming the
 * member to replace) to any member; that member makes one new state in
 * which the new node is JOINING, the old one LEAVING, and the next ring is
 * the current ring with the old id renamed to the new one
 * (ring_rename_member): every partition keeps its position, so the new
 * node is a pending owner of exactly the partitions the old one
 * replicated, and of nothing else.  The transition then runs as for any
 * change: the new node pulls each partition from every current replica
 * that is up (the old node too while it lives; a dead old node is simply
 * down, and the survivors hold its N-1 other copies), marks it received,
 * and the last mark finalizes: new VALID, old REMOVED.
 */
#include <stdio.h>
#include <string.h>

#include "cluster/membership_internal.h"
#include "common/alloc.h"
#include "common/error.h"

void mb_state_put_node(struct mb_state *s, const struct mb_node *nd)
{
    long i = mb_state_find(s, nd->id);
    if (i >= 0) {
        s->nodes[i] = *nd;
        return;
    }
    size_t at = 0;
    while (at < s->n_nodes && strcmp(s->nodes[at].id, nd->id) < 0) {
        at++;
    }
    memmove(&s->nodes[at + 1], &s->nodes[at],
            (s->n_nodes - at) * sizeof(*s->nodes));
    s->nodes[at] = *nd;
    s->n_nodes++;
}

const char *membership_status_name(enum membership_status status)
{
    switch (status) {
        case MEMBERSHIP_VALID:
            return "valid";
        case MEMBERSHIP_STATUS_JOINING:
            return "joining";
        case MEMBERSHIP_STATUS_LEAVING:
            return "leaving";
        default:
            return "removed";
    }
}

int mb_state_replace(const struct mb_state *cur,
                     const struct mb_node *nd,
                     const char *old_id,
                     const char *changer,
                     struct mb_state **out,
                     char *err,
                     size_t errlen)
{
    long oi = mb_state_find(cur, old_id);
    long ni = mb_state_find(cur, nd->id);
    if (strcmp(old_id, nd->id) == 0) {
        mb_set_err(err, errlen, "a node cannot replace itself");
        return RK_EINVAL;
    }
    if (oi < 0) {
        mb_set_err(err, errlen, "no such member '%s' to replace", old_id);
        return RK_ENOTFOUND;
    }
    if (cur->nodes[oi].status != MEMBERSHIP_VALID) {
        mb_set_err(err, errlen,
                   "'%s' is %s; only a valid member can be replaced", old_id,
                   membership_status_name(cur->nodes[oi].status));
        return RK_EINVAL;
    }
    if (ni >= 0 && membership_status_active(cur->nodes[ni].status)) {
        mb_set_err(err, errlen,
                   "%s is %s in this cluster already; a replace "
                   "needs a node that is not a member",
                   nd->id, membership_status_name(cur->nodes[ni].status));
        return RK_EBUSY;
    }
    if (cur->next != NULL) {
        mb_set_err(err, errlen,
                   "a transition is in progress; replace when `cluster "
                   "status` shows `transition none`");
        return RK_EBUSY;
    }
    struct mb_state *s = NULL;
    int rc = mb_state_copy(cur, 1, &s);
    if (rc != RK_OK) {
        return rc;
    }
    struct mb_node joining = *nd;
    joining.status = MEMBERSHIP_STATUS_JOINING;
    mb_state_put_node(s, &joining);
    s->nodes[mb_state_find(s, old_id)].status = MEMBERSHIP_STATUS_LEAVING;
    s->version = cur->version + 1;
    snprintf(s->changer, sizeof(s->changer), "%s", changer);
    s->has = rk_calloc(s->ring_size, sizeof(*s->has));
    rc = s->has == NULL ? RK_ENOMEM
                        : ring_rename_member(s->ring, old_id, nd->id, &s->next);
    if (rc != RK_OK) {
        mb_state_free(s);
        mb_set_err(err, errlen, "cannot plan the replace: %s", rk_strerror(rc));
        return rc;
    }
    s->epoch++;
    mb_state_try_finalize(s);
    *out = s;
    return RK_OK;
}

int mb_check_floor(struct membership *m,
                   size_t staying_after,
                   bool force,
                   const char *what)
{
    if (force || staying_after >= m->st->n_val) {
        return RK_OK;
    }
    MB_ERR(m,
           "%s would leave %zu member%s, fewer than N=%u: keys would have "
           "%zu cop%s instead of %u until nodes join (and a lost disk could "
           "lose the only copies); repeat with FORCE (CLI: --force) to do "
           "it anyway",
           what, staying_after, staying_after == 1 ? "" : "s", m->st->n_val,
           staying_after, staying_after == 1 ? "y" : "ies", m->st->n_val);
    return RK_ERANGE;
}
