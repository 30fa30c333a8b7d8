/*
 * membership_internal.h - the state of struct membership shared by
 * membership.c (the machine: gossip, join, leave, remove) and
 * membership_state.c (the versioned cluster state: its encoding, its
 * rings and the ownership transition of issue 14).  Nothing outside
 * src/cluster/membership*.c includes this.
 */
#ifndef RINGKV_CLUSTER_MEMBERSHIP_INTERNAL_H
#define RINGKV_CLUSTER_MEMBERSHIP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/membership.h"
#include "cluster/rng.h"

#define MB_MAGIC "RKCS"

struct mb_node
{
    char id[CL_ID_MAX + 1];     /* NUL-terminated */
    char host[CL_HOST_MAX + 1]; /* NUL-terminated */
    uint16_t resp_port;
    uint16_t http_port;
    uint16_t peer_port;
    uint16_t tls_port; /* RESP over TLS, 0 = none (format 4) */
    uint8_t status;    /* enum membership_status */
};

/*
 * One cluster state.  Without a transition (next == NULL) every member is
 * VALID or REMOVED and `ring` is built from the VALID ones.  During a
 * transition (issue 14 item 1) `ring` is the current ring, of the VALID
 * and LEAVING members, which reads and W use; `next` is the ring being
 * moved to, of the VALID and JOINING members; the pending owners of
 * partition p are the members of next's preference list of p that are not
 * in ring's, and has[p] has bit i set when the member at position i of
 * next's preference list of p received the whole partition.  When every
 * pending owner of every partition has its bit, the state finalizes:
 * ring = next, JOINING -> VALID, LEAVING -> REMOVED.
 */
struct mb_state
{
    uint64_t version;            /* >= 1 */
    char changer[CL_ID_MAX + 1]; /* a listed member */
    char name[MEMBERSHIP_MAX_CLUSTER_NAME + 1];
    uint32_t ring_size;    /* Q */
    uint32_t n_val;        /* N */
    struct mb_node *nodes; /* n_nodes, sorted by id */
    size_t n_nodes;        /* 1..MEMBERSHIP_MAX_MEMBERS */
    struct ring *ring;     /* owned; the current ring */
    struct ring *next;     /* owned; NULL: no transition */
    uint32_t epoch;        /* bumped at every new `next` */
    uint64_t *has;         /* ring_size masks; NULL iff next == NULL */
};

/* One staged change (membership_plan.c). */
struct mb_plan_item
{
    enum membership_plan_op op;
    struct mb_node node;        /* JOIN/REPLACE: the new node (JOINING);
                                   LEAVE/REMOVE: only id, the member */
    char old_id[CL_ID_MAX + 1]; /* REPLACE: the member replaced */
};

struct membership
{
    struct mb_node self;                        /* id and address */
    char name[MEMBERSHIP_MAX_CLUSTER_NAME + 1]; /* configured cluster name */
    uint32_t ring_size, n_val;                  /* for a new cluster */
    uint32_t gossip_ms, join_retry_ms, join_timeout_ms;
    struct rk_rng rng;

    enum membership_phase phase;
    struct mb_state *st; /* invariant (1) */
    struct rk_buf enc;   /* invariant (3) */
    uint64_t next_gossip_ms;

    /* joining */
    enum membership_phase join_from; /* phase to return to on failure */
    char seed_host[CL_HOST_MAX + 1];
    uint16_t seed_port;
    uint64_t join_req_id;
    uint64_t next_join_ms;
    uint64_t join_deadline_ms;
    bool leave_intent; /* this node left: re-apply if the leave lost */
    /* joining by REPLACE: the member this node takes the place of ("" for
     * a JOIN); kept while joining, so a rejoin after a lost concurrent
     * change replaces again (membership_change.c) */
    char replaces[CL_ID_MAX + 1];

    /* the staged plan (membership_plan.c), in memory only */
    struct mb_plan_item plan[MEMBERSHIP_PLAN_MAX];
    size_t n_plan;

    char reply_text[PEER_MAX_MESSAGE + 1];   /* JOIN_REPLY message view */
    char refuse_joins[PEER_MAX_MESSAGE + 1]; /* non-empty: why JOINs of new
                                                nodes are refused */
    char errmsg[256];
    uint64_t gossip_refused;    /* greater states refused (gossip_refusal) */
    uint64_t refused_logged_ms; /* last line about one (rate limit) */
};

void mb_set_err(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define MB_ERR(m, ...) mb_set_err((m)->errmsg, sizeof((m)->errmsg), __VA_ARGS__)
bool mb_name_is_valid(const char *s, size_t len, size_t max);

void mb_state_free(struct mb_state *s);
/* Index of `id` in s->nodes, or -1. */
long mb_state_find(const struct mb_state *s, const char *id);
/* Deep copy (rings and masks included) with room for `extra` more nodes. */
int mb_state_copy(const struct mb_state *s,
                  size_t extra,
                  struct mb_state **out);
/* Builds a fresh s->ring from the VALID nodes (a new cluster). */
int mb_state_build_ring(struct mb_state *s, const struct ring *prev);
int mb_state_encode(const struct mb_state *s, struct rk_buf *out);
int mb_state_decode(const void *buf,
                    size_t len,
                    bool upgrade_v1,
                    struct mb_state **out,
                    char *errbuf,
                    size_t errlen);

/* Whether a member of this status is in the current ring / the next. */
static inline bool mb_in_cur(uint8_t status)
{
    return status == MEMBERSHIP_VALID || status == MEMBERSHIP_STATUS_LEAVING;
}
static inline bool mb_in_next(uint8_t status)
{
    return status == MEMBERSHIP_VALID || status == MEMBERSHIP_STATUS_JOINING;
}

/*
 * After statuses in s changed (a join, leave or remove): builds s->next
 * from the VALID and JOINING members (ring_create with the previous next,
 * or the current ring, as `prev`, so few partitions move), bumps the
 * epoch, carries over the has-bits of members that stay in a partition's
 * next preference list, and finalizes at once when nothing is pending.
 * When no member is joining or leaving any more (a joining node left or
 * was removed), it ends the transition instead: no next ring, the current
 * ring stays.
 * Errors: RK_EINVAL (no member would be left), RK_ENOMEM; s unchanged in
 * its rings on error.
 */
int mb_state_replan(struct mb_state *s);

/* Whether every pending owner of partition p received it (true without a
 * transition). */
bool mb_state_part_done(const struct mb_state *s, uint32_t p);

/* Finalizes when every partition is done; returns whether it did. */
bool mb_state_try_finalize(struct mb_state *s);

/* Position of node `id` in next's preference list of p among the first
 * N that are pending (not in the current list), or -1. */
int mb_state_pending_pos(const struct mb_state *s, uint32_t p, const char *id);

/* ---- membership.c, for membership_plan.c ---- */

/* Installs `s` (taken) as a change made here, announces and gossips it,
 * and updates the phase (a leave of self).  Errors: RK_ENOMEM (s freed,
 * nothing changed). */
int mb_commit_state(struct membership *m,
                    struct mb_state *s,
                    uint64_t now_ms,
                    struct cl_actions *acts);

/* Appends a GOSSIP of the held state to `to` (id and peer address). */
void mb_send_gossip_to(struct membership *m,
                       const struct mb_node *to,
                       struct cl_actions *acts);

/* ---- membership_change.c ---- */

/* Puts nd into s (s has room for one more node): replaces the node of
 * the same id, or inserts it in id order. */
void mb_state_put_node(struct mb_state *s, const struct mb_node *nd);

/*
 * The state after `nd` (not an active member) replaced the VALID member
 * `old_id` of `cur`: version + 1 by `changer`, nd JOINING, old_id LEAVING,
 * next ring = the current ring with old_id renamed to nd's id, nothing
 * received yet.  *out is returned-owned (mb_state_free).  Errors (err
 * says why): RK_ENOTFOUND (no such member), RK_EINVAL (old_id not valid,
 * or nd's own id), RK_EBUSY (nd is a member already, or a transition is
 * in progress), RK_ENOMEM.
 */
int mb_state_replace(const struct mb_state *cur,
                     const struct mb_node *nd,
                     const char *old_id,
                     const char *changer,
                     struct mb_state **out,
                     char *err,
                     size_t errlen);

/*
 * The N floor of issue 14 item 6: RK_OK when `force` or when
 * `staying_after` (members in the next ring after the change) >= N; else
 * RK_ERANGE with m's errmsg saying what `what` (e.g. "this leave") would
 * do and how to force it.
 */
int mb_check_floor(struct membership *m,
                   size_t staying_after,
                   bool force,
                   const char *what);

#endif /* RINGKV_CLUSTER_MEMBERSHIP_INTERNAL_H */
