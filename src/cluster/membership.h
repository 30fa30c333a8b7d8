/*
 * membership.h - cluster membership: the versioned cluster state, its
 * encoding, the gossip that spreads it, and the join/leave/remove flows
 * (DESIGN.md section 4 "Membership"; issue 4 item 3).  A sans-IO state
 * machine (STYLE.md 1.6, cluster/actions.h); membership.c's header has the
 * invariants, the merge argument and the state diagram, docs/cluster.md
 * "Membership and failure detection" the user's view.
 *
 * The cluster state: a cluster name, ring_size and n_val settings, a
 * version (u64) with the id of the node that made that version (the
 * "changer"), the members (id, address, status) and the ring built by
 * ring_create from the valid members.  Whole states are ordered by
 * (version, changer, encoded bytes); gossip keeps the greatest, so every
 * node converges on the same state and ring.
 *
 * Thread: one loop thread owns a struct membership; nothing here locks.
 */
#ifndef RINGKV_CLUSTER_MEMBERSHIP_H
#define RINGKV_CLUSTER_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/actions.h"
#include "cluster/ring.h"
#include "common/buf.h"
#include "proto/peer.h"

#define MEMBERSHIP_FORMAT_VERSION       4    /* byte 4 of the state bytes */
#define MEMBERSHIP_FORMAT_V3            3    /* no TLS ports section */
#define MEMBERSHIP_FORMAT_V2            2    /* no transition section */
#define MEMBERSHIP_FORMAT_V1            1    /* keys placed by XXH3 (ring.h) */
#define MEMBERSHIP_MAX_MEMBERS          1024 /* members incl. removed ones */
#define MEMBERSHIP_MAX_CLUSTER_NAME     64   /* bytes */
#define MEMBERSHIP_DEFAULT_GOSSIP_MS    200
#define MEMBERSHIP_DEFAULT_JOIN_RETRY   1000  /* ms between JOINs */
#define MEMBERSHIP_DEFAULT_JOIN_TIMEOUT 30000 /* ms until JOIN_FAILED */
/* How far ahead of a member's state a gossiped state's version may be
 * (each change adds 1): membership.c gossip_refusal. */
#define MEMBERSHIP_MAX_VERSION_STEP (1ull << 24)

/*
 * Member status (wire values; never reuse).  Without a transition every
 * member is VALID or REMOVED (a tombstone, so a removed node that gossips
 * later learns it was removed).  A join makes a node JOINING, a leave or a
 * remove makes it LEAVING (a JOINING node that leaves or is removed
 * becomes REMOVED at once), and the state enters a transition: the
 * current ring (VALID and LEAVING members) serves reads and counts W,
 * the next ring (VALID and JOINING) gets every write as well, and
 * partitions are handed off to their pending owners.  When every pending
 * owner received its partitions the state finalizes: JOINING -> VALID,
 * LEAVING -> REMOVED, next ring -> current (issue 14 item 1).
 */
enum membership_status
{
    MEMBERSHIP_VALID = 1,
    MEMBERSHIP_STATUS_JOINING = 2,
    MEMBERSHIP_STATUS_LEAVING = 3,
    MEMBERSHIP_REMOVED = 4,
};

/* Whether a member of this status is part of the cluster (serves, is
 * routed to, gossips): VALID, JOINING or LEAVING. */
static inline bool membership_status_active(enum membership_status s)
{
    return s == MEMBERSHIP_VALID || s == MEMBERSHIP_STATUS_JOINING ||
           s == MEMBERSHIP_STATUS_LEAVING;
}

/* "valid", "joining", "leaving" or "removed" (any other value). */
const char *membership_status_name(enum membership_status s);

/* Where this node stands (the machine's state diagram, membership.c). */
enum membership_phase
{
    MEMBERSHIP_NONE = 0,     /* no cluster yet: create one or join one */
    MEMBERSHIP_JOINING,      /* JOIN sent to a seed, waiting to be admitted */
    MEMBERSHIP_MEMBER,       /* valid member of the state we hold */
    MEMBERSHIP_REMOVED_SELF, /* left or removed; may join again */
};

/* One member, as read from the state (all views into the machine). */
struct membership_member
{
    const char *node_id; /* NUL-terminated, 1..CL_ID_MAX bytes */
    const char *host;    /* NUL-terminated, 1..CL_HOST_MAX bytes */
    uint16_t resp_port;
    uint16_t http_port;
    uint16_t peer_port;
    uint16_t tls_port; /* RESP over TLS (--tls-port), 0 = none */
    enum membership_status status;
};

/* Settings of one node; strings are copied by membership_create. */
struct membership_config
{
    const char *node_id; /* ring_member_id_is_valid */
    const char *host;    /* 1..CL_HOST_MAX bytes, for others to reach */
    uint16_t resp_port;  /* ports advertised to the cluster */
    uint16_t http_port;
    uint16_t peer_port;
    uint16_t tls_port;           /* RESP over TLS, 0 = none: a joining node is
                                    admitted without it and publishes it as an
                                    address change, like a restart's new ports */
    const char *cluster_name;    /* 0..64 bytes; NULL = "ringkv" */
    uint32_t ring_size;          /* 0 = RING_DEFAULT_SIZE; for a new cluster */
    uint32_t n_val;              /* 0 = RING_DEFAULT_N; for a new cluster */
    uint32_t gossip_interval_ms; /* 0 = MEMBERSHIP_DEFAULT_GOSSIP_MS */
    uint32_t join_retry_ms;      /* 0 = MEMBERSHIP_DEFAULT_JOIN_RETRY */
    uint32_t join_timeout_ms;    /* 0 = MEMBERSHIP_DEFAULT_JOIN_TIMEOUT */
    uint64_t seed;               /* seeds the gossip peer choice */
};

struct membership;

/*
 * Creates the machine of this node.
 *   cfg: settings (borrowed).
 *   saved/saved_len: state bytes from an earlier CL_ACT_PERSIST (restart),
 *     or NULL/0 for a node with no cluster yet (phase NONE).  The saved
 *     state must list this node (VALID gives phase MEMBER, REMOVED gives
 *     REMOVED_SELF) and carry cfg's cluster name.
 *   out: the machine (returned-owned, membership_destroy); untouched on
 *     error.
 *     A saved state of format 1 (keys placed by XXH3, before hash slots)
 *     is upgraded when its ring has no more members than n_val (every
 *     member holds every key, so no key moves; its next encoding is
 *     format 2), and refused with RK_EVERSION and a reason saying what to
 *     do otherwise.
 * Errors: RK_EINVAL (bad config; saved state of another cluster or not
 * listing this node), RK_EPROTO/RK_EVERSION (saved bytes malformed, see
 * membership_state_check, or format 1 with M > N), RK_ENOMEM.  `errbuf` (may be
 * NULL) receives a one-line reason on error, at most errbuf_len bytes including
 * the NUL. Thread: any (the result belongs to one thread).
 */
int membership_create(const struct membership_config *cfg,
                      const void *saved,
                      size_t saved_len,
                      struct membership **out,
                      char *errbuf,
                      size_t errbuf_len);

/* Frees the machine; NULL is a no-op.  Views it handed out die with it. */
void membership_destroy(struct membership *m);

/* One-line reason for the last error a call returned ("" if none). */
const char *membership_errmsg(const struct membership *m);

/* Gossiped states greater than this node's that it refused because no
 * membership change could have made them (a version too far ahead, other
 * ring_size or n_val; membership.c gossip_refusal).  Thread: the loop. */
uint64_t membership_gossip_refused(const struct membership *m);

/*
 * Creates a new one-node cluster: this node alone, VALID, owning every
 * partition; version 1.  Appends STATE_CHANGED, PERSIST.
 * Errors: RK_EBUSY unless the phase is NONE (a member, a joiner, or a
 * removed node, which should join again or start from an empty data
 * dir), RK_EINVAL (ring_size/n_val rejected by ring_create), RK_ENOMEM.
 */
int membership_create_cluster(struct membership *m,
                              uint64_t now_ms,
                              struct cl_actions *acts);

/*
 * Starts joining the cluster of the seed at `host`:`peer_port`: sends JOIN
 * at once, then every join_retry_ms until a JOIN_REPLY (or gossip) shows
 * this node VALID (CL_ACT_JOIN_DONE), an error reply arrives, or
 * join_timeout_ms pass (CL_ACT_JOIN_FAILED with RK_ETIMEDOUT).
 * Errors: RK_EBUSY (already a member of a cluster of more than one node,
 * or already joining), RK_EINVAL (empty or too long host, port 0).  A
 * one-node cluster may join another (its state is replaced).
 */
int membership_join_start(struct membership *m,
                          const char *host,
                          uint16_t peer_port,
                          uint64_t now_ms,
                          struct cl_actions *acts);

/*
 * Starts a replace (issue 14 item 3): as membership_join_start, but the
 * message is REPLACE naming `old_id`, and the member that receives it
 * admits this node in old_id's place in one transition: this node
 * JOINING and pending owner of exactly the partitions old_id replicated,
 * old_id LEAVING (alive, it hands off; dead, this node pulls from the
 * surviving replicas), REMOVED when the transition finishes
 * (membership_change.c).  The member refuses (CL_ACT_JOIN_FAILED with its
 * reason) when old_id is not a valid member or a transition is in
 * progress.  If a concurrent change wins over the admitting state, the
 * rejoin (follow_self) sends REPLACE again.
 *   old_id: NUL-terminated node id (borrowed, copied).
 * Errors: as membership_join_start; RK_EINVAL also for an invalid old_id
 * or this node's own id.
 */
int membership_replace_start(struct membership *m,
                             const char *host,
                             uint16_t peer_port,
                             const char *old_id,
                             uint64_t now_ms,
                             struct cl_actions *acts);

/*
 * This node leaves the ring: marks itself LEAVING (REMOVED at once when it
 * was JOINING: it owned nothing), plans the next ring, bumps the version
 * and gossips it (STATE_CHANGED, PERSIST, SEND); its partitions are
 * handed off and it is REMOVED when the transition finishes.
 *   holds_data: unused (its partitions are handed off first).
 *   force: leave even when fewer than N members would stay (a valid
 *     node only; see mb_check_floor's message); else RK_ERANGE then.
 * Errors: RK_EINVAL (not a member, or the last member: a cluster cannot
 * be empty), RK_EBUSY (already leaving), RK_ERANGE (below N without
 * force; membership_errmsg names N and the count), RK_ENOMEM.
 */
int membership_leave(struct membership *m,
                     bool holds_data,
                     bool force,
                     uint64_t now_ms,
                     struct cl_actions *acts);

/*
 * Takes another (typically dead) node out: marks it LEAVING (REMOVED at
 * once when JOINING), plans the next ring, bumps the version and gossips
 * it; for a dead node the new owners pull from the surviving replicas.
 *   force: as for membership_leave.
 * Errors: RK_EINVAL (this node itself: use leave; the last member),
 * RK_ENOTFOUND (no such valid or joining member), RK_ERANGE (below N
 * without force), RK_ENOMEM.
 */
int membership_remove(struct membership *m,
                      const char *node_id,
                      bool force,
                      uint64_t now_ms,
                      struct cl_actions *acts);

/*
 * Timer event: sends GOSSIP to one random valid peer every
 * gossip_interval_ms (members and removed nodes), resends JOIN every
 * join_retry_ms and gives up at the join deadline (joining only).  A
 * member restarted with another host or ports than its saved state lists
 * publishes the new address at its first tick (a version bump).
 * Errors: RK_ENOMEM (retried at the next tick).
 */
int membership_tick(struct membership *m,
                    uint64_t now_ms,
                    struct cl_actions *acts);

/* Absolute ms of the next work for membership_tick (UINT64_MAX: none). */
uint64_t membership_next_deadline_ms(const struct membership *m);

/*
 * Peer message event: handles JOIN (at a member: admit the node, reply
 * JOIN_REPLY with the state, gossip), JOIN_REPLY (at the joiner) and
 * GOSSIP (adopt a greater state: STATE_CHANGED + PERSIST; answer a lesser
 * one with ours: push-pull).  Other types are ignored (RK_OK).  `msg` is
 * borrowed for the call.
 * Errors: RK_EPROTO/RK_EVERSION (state bytes malformed), RK_EINVAL (state
 * of another cluster, a JOIN with a bad node id), RK_ENOMEM.  Errors never
 * change the held state; a JOIN that fails is still answered with a
 * JOIN_REPLY carrying the error.
 */
int membership_on_message(struct membership *m,
                          const struct peer_msg *msg,
                          uint64_t now_ms,
                          struct cl_actions *acts);

/* ---- reading the state ------------------------------------------------- */

enum membership_phase membership_phase(const struct membership *m);
const char *membership_self_id(const struct membership *m);

/* State version (0 when there is no state) and its changer ("" then). */
uint64_t membership_version(const struct membership *m);
const char *membership_changer(const struct membership *m);
const char *membership_cluster_name(const struct membership *m);

/* The ring (view until the state changes), or NULL without a state. */
const struct ring *membership_ring(const struct membership *m);

/* Members incl. REMOVED ones, sorted by id; *out views valid until the
 * state changes. */
size_t membership_member_count(const struct membership *m);
void membership_member_get(const struct membership *m,
                           size_t i,
                           struct membership_member *out);

/* Finds a member by id; false when there is none.  O(log M). */
bool membership_member_find(const struct membership *m,
                            const char *node_id,
                            struct membership_member *out);

/*
 * Encoded state (what PERSIST and GOSSIP carry): a view valid until the
 * state changes; len 0 without a state.
 */
struct peer_bytes membership_state_bytes(const struct membership *m);

/* ---- state bytes, for tests, tools and the fuzzer ---------------------- */

/*
 * Checks that buf[0..len) is a well-formed state (docs/cluster.md has the
 * byte layout): RK_OK, RK_EVERSION (unknown format version), RK_EPROTO
 * (anything else; errbuf says what), RK_ENOMEM.  On RK_OK and when
 * `reencoded` is not NULL, appends the canonical encoding of the decoded
 * state to it (equal to the input: a state has one encoding).
 * Complexity: O(len + ring).  Thread: any.
 */
int membership_state_check(const void *buf,
                           size_t len,
                           struct rk_buf *reencoded,
                           char *errbuf,
                           size_t errbuf_len);

/*
 * The gossip order of two valid encoded states: <0, 0, >0 as `a` is older
 * than, the same as, or newer than `b`: by version, then changer id
 * (bytewise, shorter first on a common prefix), then the encoded bytes.
 * Merge(a, b) = the greater, which is commutative, associative and
 * idempotent because this is a total order.  Both must pass
 * membership_state_check (RK_ALWAYS-checked: a malformed one sorts first).
 */
int membership_state_compare(const void *a,
                             size_t a_len,
                             const void *b,
                             size_t b_len);

/* ---- the ownership transition (issue 14 item 1) ------------------------
 *
 * A join, leave or remove does not switch ownership at once: the state
 * carries a next ring (membership_next_ring, NULL when no transition is in
 * progress).  For each partition the pending owners are the members of
 * the next ring's preference list (first N) that are not in the current
 * ring's.  Writes go to the current replicas and, without counting toward
 * W, to the pending owners; reads use the current ring.  Each pending
 * owner pulls the partition from the current replicas (handoff.h) and
 * then marks it received; when every pending owner of every partition has,
 * the state finalizes (next ring becomes current, joining members valid,
 * leaving members removed).  Another change during a transition plans a
 * new next ring from the previous next ring (few moves) and keeps what
 * the pending owners that stay pending already received.
 */

/* The ring being moved to, or NULL (no transition). */
const struct ring *membership_next_ring(const struct membership *m);

/* Transition epoch: changes whenever a new next ring is planned. */
uint32_t membership_epoch(const struct membership *m);

/* Whether `node_id` is a pending owner of `partition` in the current
 * transition; *received (may be NULL) says whether it marked the
 * partition received. */
bool membership_pending_for(const struct membership *m,
                            uint32_t partition,
                            const char *node_id,
                            bool *received);

/* Whether every pending owner of `partition` received it (true without a
 * transition). */
bool membership_partition_done(const struct membership *m, uint32_t partition);

/* Partitions some pending owner has not received yet (0 without a
 * transition).  O(Q * N). */
uint32_t membership_partitions_pending(const struct membership *m);

/*
 * This node received all of each partition in parts[0..n_parts) (durably)
 * as one of its pending owners: one new state version with its marks,
 * finalizing the transition when it was the last one missing
 * (CL_ACT_STATE_CHANGED, PERSIST, a GOSSIP).  A concurrent change elsewhere may
 * win over this version: the caller calls again while membership_pending_for
 * says not received. Errors: RK_EINVAL (not a member, or not a pending owner of
 * one of them: see membership_errmsg; nothing marked), RK_ENOMEM.  RK_OK
 * without a change when all are marked already.
 */
int membership_mark_received(struct membership *m,
                             const uint32_t *parts,
                             size_t n_parts,
                             uint64_t now_ms,
                             struct cl_actions *acts);

/* ---- staged changes: plan and commit (issue 14 item 3) -----------------
 *
 * The plan lives in this machine, in memory (lost on restart), and is
 * applied by membership_commit as one state change; membership_plan.c's
 * header has the rules.
 */

#define MEMBERSHIP_PLAN_MAX 64 /* staged changes */

enum membership_plan_op
{
    MEMBERSHIP_PLAN_JOIN = 1, /* node_id (new, empty) at host:peer_port */
    MEMBERSHIP_PLAN_LEAVE,    /* node_id (a member, this node or another) */
    MEMBERSHIP_PLAN_REMOVE,   /* node_id (a member), the same effect */
    MEMBERSHIP_PLAN_REPLACE,  /* node_id (new) takes old_id's place */
};

/* One staged change.  Strings are borrowed by membership_plan_add (copied)
 * and views into the machine from membership_plan_get (valid until the
 * plan changes). */
struct membership_plan_item
{
    enum membership_plan_op op;
    const char *node_id; /* see the op; ring_member_id_is_valid */
    const char *old_id;  /* REPLACE: the member replaced; else "" or NULL */
    const char *host;    /* JOIN/REPLACE: the new node's host */
    uint16_t resp_port;  /* JOIN/REPLACE: its ports (peer_port != 0; the */
    uint16_t http_port;  /*   others are corrected by its first message) */
    uint16_t peer_port;
};

/* "join", "leave", "remove" or "replace". */
const char *membership_plan_op_name(enum membership_plan_op op);

/*
 * Stages one change, checked against the current state and the changes
 * staged before it.  Errors (membership_errmsg says why; nothing staged):
 * RK_EINVAL (not a member; a bad id, host or port), RK_ENOTFOUND (the
 * member it takes out is not valid (or joining, for leave/remove)),
 * RK_EBUSY (the new node is a member already), RK_EEXIST (an earlier
 * change names the same node), RK_ERANGE (MEMBERSHIP_PLAN_MAX staged).
 */
int membership_plan_add(struct membership *m,
                        const struct membership_plan_item *it);

/* Drops every staged change. */
void membership_plan_clear(struct membership *m);

/*
 * Refuses the JOIN (and REPLACE) of every node not listed yet, with `why`
 * as the reply's text (status RK_EPERM), until called with NULL or "":
 * what this node holds cannot go into a cluster yet (issue 16: hashes and
 * sets of a standalone node).  A retry of a join already done still gets
 * its answer.
 */
void membership_refuse_joins(struct membership *m, const char *why);

/* Number of staged changes, and change i (< len) as views. */
size_t membership_plan_len(const struct membership *m);
void membership_plan_get(const struct membership *m,
                         size_t i,
                         struct membership_plan_item *out);

/*
 * What a commit would give now: *next_out the ring the cluster would move
 * to (returned-owned, ring_destroy; the current ring when nothing would
 * move) and *staying_after the members that would stay.  Changes nothing.
 * Errors: as membership_commit without RK_ERANGE.  Complexity: one
 * ring_create.
 */
int membership_plan_preview(struct membership *m,
                            struct ring **next_out,
                            size_t *staying_after);

/*
 * Applies the plan as one new state version (one transition), gossips it
 * to a random member and to every new node (which adopts it: no JOIN is
 * needed), and empties the plan.  Every change is checked again against
 * the state of now; one that no longer applies fails the commit.
 *   force: as for membership_leave, when the plan leaves fewer than N.
 * Errors (membership_errmsg says why; the plan and state unchanged):
 * RK_EINVAL (empty plan, not a member, no member would stay),
 * RK_ENOTFOUND/RK_EBUSY/RK_EEXIST (as membership_plan_add), RK_ERANGE
 * (below N without force), RK_ENOMEM.
 */
int membership_commit(struct membership *m,
                      bool force,
                      uint64_t now_ms,
                      struct cl_actions *acts);

#endif /* RINGKV_CLUSTER_MEMBERSHIP_H */
