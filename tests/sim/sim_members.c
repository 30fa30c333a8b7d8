/*
 * sim_members.c - the simulator's membership-change nemeses (issue 14;
 * TESTING.md B3) and the ring invariants checked after them.
 *
 * With cfg.spares = K > 0 the last K of the M nodes start but do not join
 * when the cluster forms, and the nemesis (sim.c) also draws, among its
 * other faults, which keep running:
 *   join     a spare (empty: never joined, wiped, or removed and its data
 *            dropped) joins through a random member (node_join);
 *   leave    a member leaves (node_leave): it stays up, hands its
 *            partitions off, sees itself removed, drops its data after
 *            handoff_drop_grace_ms, and is a spare again (it may join
 *            again from REMOVED_SELF);
 *   remove   a crashed member (or one crashed for it: kill -9 for good) is
 *            removed through a random member (node_remove) and stays down;
 *            once the cluster shows it removed its disk is wiped and it
 *            starts empty, a spare;
 *   replace  a spare takes a member's place in one transition
 *            (node_replace): a crashed member for good (its disk lost,
 *            as for a remove) or a live one (it hands off, as for a
 *            leave, and becomes a spare).
 * A leave or remove never leaves fewer than N members that have joined and
 * stay; with W = 1 there are no removes (a write acknowledged by the
 * removed node alone is lost with its disk, as W = 1 allows).  Every second the
 * operator follows up (SIM_EV_MEMBERS): a join whose node crashed or timed out
 * while the cluster lists it is issued again, a remove that lost to a
 * concurrent change is issued again, and removed nodes become spares as above.
 * The follow-up runs on during the heal, so what was started finishes; no new
 * change starts then.
 *
 * Invariants at the end (sim__check_ring), after heal_ms:
 *   I6  every node the final state lists is a member (phase MEMBER) at the
 *       same state version, counting the same members, and sees agreement;
 *       no node believes it is a member the state does not list; without
 *       spares every node is a member (the check of before);
 *   I10 no member is still in a transition (membership_next_ring == NULL:
 *       every pending owner received its partitions), and no removed node
 *       still holds keys (it dropped them after the grace);
 *   I2  no node holds hints.
 * I1, I2 (replicas equal) and the others are checked on the final ring's
 * preference lists (sim__final_ring), so a key must be on its final
 * owners, whatever moved.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../unit/storage/sim_disk.h"
#include "common/error.h"
#include "sim_internal.h"

#define SIM_RETRY_MS 5000 /* the operator repeats a command after this */

bool sim__is_member(const struct sim *s, int i)
{
    return !s->nodes[i].spare && !s->nodes[i].leaving;
}

size_t sim__initial_members(const struct sim *s)
{
    return s->cfg.n_nodes - s->cfg.spares;
}

static bool is_up_member(const struct sim *s, int i)
{
    const struct node *n = s->nodes[i].node;
    return n && membership_phase(node_membership(n)) == MEMBERSHIP_MEMBER;
}

int sim__member_at(const struct sim *s, uint64_t k)
{
    int list[SIM_MAX_NODES];
    size_t cnt = 0;
    for (size_t i = 0; s->cfg.spares && i < s->cfg.n_nodes; i++) {
        if (is_up_member(s, (int)i)) {
            list[cnt++] = (int)i;
        }
    }
    return cnt ? list[k % cnt] : (int)(k % s->cfg.n_nodes);
}

const struct ring *sim__final_ring(struct sim *s)
{
    for (size_t i = 0; s->cfg.spares && i < s->cfg.n_nodes; i++) {
        if (is_up_member(s, (int)i)) {
            return membership_ring(node_membership(s->nodes[i].node));
        }
    }
    if (s->cfg.spares || s->nodes[0].node == NULL) {
        return NULL;
    }
    return membership_ring(node_membership(s->nodes[0].node));
}

/* The greatest cluster state any running node holds (the operator's view
 * of `cluster status` across the cluster), or NULL. */
static const struct membership *max_state(const struct sim *s)
{
    const struct membership *best = NULL;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        const struct node *n = s->nodes[i].node;
        if (n && (best == NULL || membership_version(node_membership(n)) >
                                      membership_version(best))) {
            best = node_membership(n);
        }
    }
    return best;
}

/* Node i's status in m (0: not listed). */
static int status_in(const struct membership *m, const struct sim_node *sn)
{
    struct membership_member mm;
    if (m == NULL || !membership_member_find(m, sn->id, &mm)) {
        return 0;
    }
    return (int)mm.status;
}

/* Members that joined and stay (the sim's intent): the floor of N. */
static size_t staying(const struct sim *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        k += sim__is_member(s, (int)i) && s->nodes[i].joined;
    }
    return k;
}

/* A random running, unpaused member other than `not` and `not2` to send
 * a command to, or -1. */
static int pick_coord2(struct sim *s, int not, int not2)
{
    int list[SIM_MAX_NODES];
    size_t cnt = 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        if ((int)i != not &&(int)i != not2 && sim__is_member(s, (int)i) &&
            is_up_member(s, (int)i) && !simnet_is_paused(s->net, (int)i)) {
            list[cnt++] = (int)i;
        }
    }
    return cnt ? list[sim__rand(s, cnt)] : -1;
}

static int pick_coord(struct sim *s, int not )
{
    return pick_coord2(s, not, -1);
}

/* Node i (running, empty or removed) joins through a random member, or,
 * with old >= 0, replaces member `old` through a random other member
 * (node_replace: one transition, old leaving, i joining). */
static bool issue_join_as(struct sim *s, int i, int old)
{
    struct sim_node *sn = &s->nodes[i];
    int seed = pick_coord2(s, i, old);
    if (seed < 0 || sn->node == NULL) {
        return false;
    }
    const char *host = s->nodes[seed].host;
    int rc = old < 0 ? node_join(sn->node, host, 7381, sim_now(s))
                     : node_replace(sn->node, host, 7381, s->nodes[old].id,
                                    sim_now(s));
    sim__after(s, i);
    if (rc != RK_OK) {
        return false;
    }
    sn->spare = false;
    sn->leaving = false;
    sn->joined = false;
    sn->changed_ms = sim_now(s);
    if (old >= 0) {
        s->nodes[old].changed_ms = sim_now(s);
    }
    return true;
}

static bool issue_join(struct sim *s, int i)
{
    return issue_join_as(s, i, -1);
}

static bool issue_remove(struct sim *s, int i)
{
    int c = pick_coord(s, i);
    if (c < 0) {
        return false;
    }
    int rc = node_remove(s->nodes[c].node, s->nodes[i].id, true, sim_now(s));
    sim__after(s, c);
    s->nodes[i].changed_ms = sim_now(s);
    return rc == RK_OK;
}

/* A random spare that may join (running or not, unpaused), or -1. */
static int pick_spare(struct sim *s)
{
    int list[SIM_MAX_NODES];
    size_t cnt = 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        enum membership_phase ph =
            sn->node ? membership_phase(node_membership(sn->node))
                     : MEMBERSHIP_JOINING;
        if (sn->spare && !simnet_is_paused(s->net, (int)i) &&
            (ph == MEMBERSHIP_NONE || ph == MEMBERSHIP_REMOVED_SELF)) {
            list[cnt++] = (int)i;
        }
    }
    return cnt ? list[sim__rand(s, cnt)] : -1;
}

static int do_join(struct sim *s)
{
    int i = pick_spare(s);
    return i >= 0 && issue_join(s, i) ? i : -1;
}

/* A random joined, running, unpaused member that is valid in its own
 * state (one that may leave or be replaced alive), or -1. */
static int pick_valid(struct sim *s)
{
    int list[SIM_MAX_NODES];
    size_t cnt = 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (sim__is_member(s, (int)i) && sn->joined &&
            is_up_member(s, (int)i) && !simnet_is_paused(s->net, (int)i) &&
            status_in(node_membership(sn->node), sn) == MEMBERSHIP_VALID) {
            list[cnt++] = (int)i;
        }
    }
    return cnt ? list[sim__rand(s, cnt)] : -1;
}

static int do_leave(struct sim *s)
{
    if (staying(s) <= s->cfg.n) {
        return -1;
    }
    int i = pick_valid(s);
    if (i < 0) {
        return -1;
    }
    int rc = node_leave(s->nodes[i].node, true, true, sim_now(s));
    sim__after(s, i);
    if (rc != RK_OK) {
        return -1;
    }
    s->nodes[i].leaving = true;
    s->nodes[i].changed_ms = sim_now(s);
    return i;
}

/* A crashed member to take out for good (crashing one first if none
 * is), or -1 when no disk may be lost now. */
static int pick_dead(struct sim *s)
{
    /* A removed node's disk is gone for good: with W = 1 a write it alone
     * acknowledged goes with it (no bug: W = 1 promises one copy), so
     * I1 could not hold; W >= 2 leaves a copy elsewhere. */
    if (staying(s) <= s->cfg.n || s->cfg.w < 2) {
        return -1;
    }
    /* Nor may a second disk go before the first one's partitions are
     * back to N copies (its removal finished, no transition runs): a
     * W = 2 write that the two alone acknowledged would go with them
     * (seed 441 of --spares 2, a false I1). */
    const struct membership *ms = max_state(s);
    if (ms == NULL || membership_next_ring(ms) != NULL) {
        return -1;
    }
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        if (s->nodes[i].stay_down) {
            return -1;
        }
    }
    int list[SIM_MAX_NODES];
    size_t cnt = 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        if (sim__is_member(s, (int)i) && s->nodes[i].joined &&
            s->nodes[i].node == NULL && !s->nodes[i].stay_down) {
            list[cnt++] = (int)i;
        }
    }
    if (cnt == 0 && sim__crashed(s) < 2) {
        for (size_t i = 0; i < s->cfg.n_nodes; i++) {
            if (sim__is_member(s, (int)i) && s->nodes[i].joined &&
                s->nodes[i].node != NULL) {
                list[cnt++] = (int)i;
            }
        }
        if (cnt == 0) {
            return -1;
        }
        int v = list[sim__rand(s, cnt)];
        sim__crash_node(s, v);
        /* as a crash nemesis does; stay_down holds it if removed */
        (void)simnet_schedule(s->net, sim_now(s) + 1000 + sim__rand(s, 9000),
                              SIM_EV_RESTART, -1, (uint64_t)v, 0);
        list[0] = v;
        cnt = 1;
    }
    return cnt == 0 ? -1 : list[sim__rand(s, cnt)];
}

/* Removes a crashed member for good (crashing one first if none is). */
static int do_remove(struct sim *s)
{
    int i = pick_dead(s);
    if (i < 0 || !issue_remove(s, i)) {
        return -1;
    }
    s->nodes[i].leaving = true;
    s->nodes[i].stay_down = true;
    return i;
}

/*
 * A spare replaces a member (issue 14 item 3): a crashed one for good
 * (its disk is lost, as for a remove: the spare pulls from the survivors)
 * or, by a coin, a live valid one (it hands off, is removed and becomes a
 * spare).  Returns the replaced member; *by gets the spare.
 */
static int do_replace(struct sim *s, int *by)
{
    int spare = pick_spare(s);
    const struct membership *ms = max_state(s);
    if (spare < 0 || s->nodes[spare].node == NULL || ms == NULL ||
        membership_next_ring(ms) != NULL) {
        return -1; /* a replace waits for `transition none` */
    }
    bool live = sim__rand(s, 2) == 0;
    int old = live ? pick_valid(s) : pick_dead(s);
    if (old < 0 || !issue_join_as(s, spare, old)) {
        return -1;
    }
    s->nodes[old].leaving = true;
    s->nodes[old].stay_down = !live;
    *by = spare;
    return old;
}

const char *sim__members_nemesis(struct sim *s,
                                 uint64_t what,
                                 char *line,
                                 size_t cap)
{
    int a = -1, b = -1;
    const char *verb = "";
    switch (what) {
        case 0:
            a = do_join(s);
            verb = "join";
            break;
        case 1:
            a = do_leave(s);
            verb = "leave";
            break;
        case 2:
            a = do_remove(s);
            verb = "remove";
            break;
        case 3:
            a = do_replace(s, &b);
            verb = "replace";
            break;
    }
    if (a < 0) {
        return NULL;
    }
    s->res->membership_changes += 1 + (b >= 0);
    snprintf(line, cap, "%s %s%s%s", verb, s->nodes[a].id, b >= 0 ? " by " : "",
             b >= 0 ? s->nodes[b].id : "");
    return line;
}

/* Node i was removed while down: its disk is wiped, it starts empty. */
static void wipe(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    if (sn->data) {
        engine_close(sn->data);
    }
    if (sn->hints) {
        engine_close(sn->hints);
    }
    sn->data = sn->hints = NULL;
    if (sn->disk) {
        sim_disk_destroy(sn->disk);
        sn->disk = sim_disk_create();
    }
    rk_buf_clear(&sn->state);
    rk_buf_clear(&sn->handoff);
    sn->versioned = false;
    sn->joined = false;
    sn->stay_down = false;
    sn->leaving = false;
    sn->spare = true;
    (void)sim__start_node(s, i);
}

static uint64_t live_keys(struct engine *e)
{
    struct engine_stats st;
    memset(&st, 0, sizeof(st));
    engine_stats(e, &st);
    return st.live_keys;
}

void sim__members_event(struct sim *s)
{
    uint64_t now = sim_now(s);
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        const struct membership *ms = max_state(s);
        int st = status_in(ms, sn);
        const char *did = NULL;
        if (sn->stay_down && sn->node == NULL) {
            if (st == 0 || st == MEMBERSHIP_REMOVED) {
                wipe(s, (int)i);
                did = "removed: wiped, a spare";
            } else if (st == MEMBERSHIP_VALID &&
                       now >= sn->changed_ms + SIM_RETRY_MS &&
                       issue_remove(s, (int)i)) {
                did = "still valid: removed again";
            }
        } else if (sn->node == NULL || simnet_is_paused(s->net, (int)i)) {
            continue;
        } else if (sn->leaving &&
                   membership_phase(node_membership(sn->node)) ==
                       MEMBERSHIP_REMOVED_SELF &&
                   live_keys(sn->data) == 0) {
            sn->leaving = false;
            sn->spare = true;
            did = "left and empty: a spare";
        } else if (membership_phase(node_membership(sn->node)) ==
                       MEMBERSHIP_NONE &&
                   (st == MEMBERSHIP_VALID ||
                    st == MEMBERSHIP_STATUS_JOINING) &&
                   now >= sn->changed_ms + SIM_RETRY_MS &&
                   issue_join(s, (int)i)) {
            did = "listed but not joined: join again";
        }
        if (did && s->cfg.verbose >= 1) {
            printf("  %8" PRIu64 " operator: %s %s\n", now, sn->id, did);
        }
    }
}

void sim__members_join_failed(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    if (sn->node &&
        membership_phase(node_membership(sn->node)) != MEMBERSHIP_MEMBER) {
        sn->spare = true; /* the follow-up joins it again if listed */
        sn->changed_ms = sim_now(s);
    }
}

void sim__check_ring(struct sim *s)
{
    const struct membership *fm = NULL;
    for (size_t i = 0; i < s->cfg.n_nodes && fm == NULL; i++) {
        if (is_up_member(s, (int)i)) {
            fm = node_membership(s->nodes[i].node);
        }
    }
    size_t cur = 0;
    for (size_t i = 0; fm && i < membership_member_count(fm); i++) {
        struct membership_member mm;
        membership_member_get(fm, i, &mm);
        cur += mm.status == MEMBERSHIP_VALID ||
               mm.status == MEMBERSHIP_STATUS_LEAVING;
    }
    uint64_t v0 = fm ? membership_version(fm) : 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        struct membership *m = node_membership(sn->node);
        int st = status_in(fm, sn);
        bool listed = membership_status_active((enum membership_status)st);
        enum membership_phase ph = membership_phase(m);
        uint64_t v = membership_version(m);
        if (listed || s->cfg.spares == 0) {
            if (ph != MEMBERSHIP_MEMBER ||
                node_valid_members(sn->node) != cur ||
                (s->cfg.spares == 0 && cur != s->cfg.n_nodes) ||
                !node_agrees(sn->node) || v != v0) {
                sim__violation(s, SIM_I6_RING,
                               "%s: phase %d, %zu members, version %" PRIu64
                               ", agreement %d",
                               sn->id, (int)ph, node_valid_members(sn->node), v,
                               node_agrees(sn->node));
            }
        } else if (ph == MEMBERSHIP_MEMBER) {
            sim__violation(s, SIM_I6_RING,
                           "%s believes it is a member at version %" PRIu64
                           "; the cluster (version %" PRIu64 ") lists it %d",
                           sn->id, v, v0, st);
        }
        if (ph == MEMBERSHIP_MEMBER && membership_next_ring(m) != NULL) {
            sim__violation(s, SIM_I10_HANDOFF_STUCK,
                           "%s: transition epoch %" PRIu32
                           " still in progress after heal, %" PRIu32
                           " partitions pending (version %" PRIu64 ")",
                           sn->id, membership_epoch(m),
                           membership_partitions_pending(m), v);
        }
        if (ph == MEMBERSHIP_REMOVED_SELF && live_keys(sn->data) > 0) {
            sim__violation(s, SIM_I10_HANDOFF_STUCK,
                           "%s was removed and still holds %" PRIu64
                           " keys after heal",
                           sn->id, live_keys(sn->data));
        }
        uint64_t hints = node_hints_pending(sn->node);
        if (hints) {
            sim__violation(s, SIM_I2_CONVERGENCE,
                           "%s still holds %" PRIu64 " hints after heal",
                           sn->id, hints);
        }
    }
    if (fm == NULL) {
        sim__violation(s, SIM_I6_RING, "no member after heal");
    }
}
