/*
 * actions.h - the event/action model of the sans-IO cluster state machines
 * (DESIGN.md section 2 "Rules of the house", STYLE.md 1.6).
 *
 * A machine (membership.h, swim.h, later the coordinator) is driven by
 * calls that carry one event each: a peer message arrived, a timer is due,
 * an operator command, always with the caller's `now_ms` (monotonic ms).
 * It never does I/O itself; instead it appends actions to a struct
 * cl_actions the caller passes in, and the caller (src/server, or a test's
 * simulated network) performs them in order:
 *
 *   CL_ACT_SEND          encode `msg` (proto/peer.h) and send it to `to`
 *   CL_ACT_STATE_CHANGED the cluster state has a new version: log it and
 *                        refresh whatever derives from it (routing, SWIM's
 *                        member list via swim_set_members)
 *   CL_ACT_PERSIST       write `bytes` to the data dir (atomically: temp
 *                        file, fsync, rename); feed them back to
 *                        membership_create on restart
 *   CL_ACT_NODE_UP       `node` is reachable again (routing only)
 *   CL_ACT_NODE_DOWN     `node` stopped answering (routing only)
 *   CL_ACT_JOIN_DONE     this node is now a member of the cluster
 *   CL_ACT_JOIN_FAILED   the join ended with `status` and `text`
 *   CL_ACT_LOG           a line worth logging (`text`, `status` its level:
 *                        RK_OK for info, an RK_* error for warnings)
 *
 * Timers: each machine has a _next_deadline_ms() query; the caller arms
 * one timer for it and calls the machine's _tick() when it fires (calling
 * _tick early or late is harmless: work is done by comparing deadlines
 * with now_ms).
 *
 * Ownership: byte strings inside `msg` and `bytes` are views into memory
 * owned by the machine that produced the action, valid until the next call
 * into that machine (any call); copy or encode them before that.  The list
 * itself is the caller's.  Thread: the loop thread that owns the machine.
 */
#ifndef RINGKV_CLUSTER_ACTIONS_H
#define RINGKV_CLUSTER_ACTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/peer.h"

#define CL_ID_MAX      64  /* longest node id, bytes (RING_MAX_ID_LEN) */
#define CL_HOST_MAX    255 /* longest host, bytes (PEER_MAX_HOST) */
#define CL_TEXT_MAX    256 /* CL_ACT_LOG / JOIN_FAILED text incl. NUL */
#define CL_ACTIONS_CAP 32  /* actions one call can append, at most */

enum cl_action_type
{
    CL_ACT_SEND = 1,
    CL_ACT_STATE_CHANGED,
    CL_ACT_PERSIST,
    CL_ACT_NODE_UP,
    CL_ACT_NODE_DOWN,
    CL_ACT_JOIN_DONE,
    CL_ACT_JOIN_FAILED,
    CL_ACT_LOG,
};

struct cl_action
{
    enum cl_action_type type;
    /*
     * SEND: destination node id ("" when only the address is known, as for
     * a JOIN to a seed); NODE_UP/NODE_DOWN: the node.  NUL-terminated.
     */
    char node[CL_ID_MAX + 1];
    /*
     * SEND: destination address when not "" (JOIN to a seed, JOIN_REPLY to
     * a joiner); otherwise the caller looks `node` up in the membership
     * state (membership_member_find).  NUL-terminated.
     */
    char host[CL_HOST_MAX + 1];
    uint16_t peer_port;
    struct peer_msg msg;     /* SEND; views, see Ownership above */
    struct peer_bytes bytes; /* PERSIST: the encoded state; a view */
    uint64_t version;        /* STATE_CHANGED/PERSIST: state version */
    int status;              /* JOIN_FAILED: RK_* code; LOG: level */
    char text[CL_TEXT_MAX];  /* LOG, JOIN_FAILED: one line, no CR/LF */
};

/*
 * A bounded list of actions, filled by machines, drained by the caller.
 * Initialise with `= {0}` or cl_actions_clear(); clear after draining.
 * A machine appends at most CL_ACTIONS_CAP actions per call when the list
 * starts empty; an append to a full list is dropped and counted in
 * `n_dropped` (a bug, asserted in tests; the network tolerates it like a
 * lost message).
 */
struct cl_actions
{
    struct cl_action items[CL_ACTIONS_CAP];
    size_t len;       /* items in use */
    size_t n_dropped; /* appends refused because the list was full */
};

static inline void cl_actions_clear(struct cl_actions *a)
{
    a->len = 0;
    a->n_dropped = 0;
}

/*
 * Appends a zeroed action of `type` and returns it, or NULL (and counts a
 * drop) when the list is full.
 */
static inline struct cl_action *cl_actions_push(struct cl_actions *a,
                                                enum cl_action_type type)
{
    if (a->len >= CL_ACTIONS_CAP) {
        a->n_dropped++;
        return NULL;
    }
    struct cl_action *act = &a->items[a->len++];
    *act = (struct cl_action){.type = type};
    return act;
}

#endif /* RINGKV_CLUSTER_ACTIONS_H */
