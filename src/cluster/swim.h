/*
 * swim.h - SWIM-style failure detector (DESIGN.md section 4; issue 4 item
 * 4): marks peers up or down for routing only, never touching ownership
 * or the membership state.  A sans-IO state machine (STYLE.md 1.6,
 * cluster/actions.h); swim.c's header has the protocol, the invariants,
 * the state diagram and the detection-time bounds.
 *
 * After Das, Gupta, Motivala: "SWIM: Scalable Weakly-consistent
 * Infection-style Process Group Membership Protocol" (DSN 2002), sections
 * 3 (failure detector: direct PING, PING_REQ through k members) and 4.2
 * (suspicion) and 4.3 (round-robin probe selection).  Suspicion is local:
 * there is no dissemination, each node runs its own detector.
 *
 * Thread: one loop thread owns a struct swim; nothing here locks.
 */
#ifndef RINGKV_CLUSTER_SWIM_H
#define RINGKV_CLUSTER_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/actions.h"
#include "proto/peer.h"

#define SWIM_DEFAULT_PERIOD_MS          500
#define SWIM_DEFAULT_PING_TIMEOUT_MS    200
#define SWIM_DEFAULT_K                  2
#define SWIM_DEFAULT_SUSPECT_TIMEOUT_MS 1500
#define SWIM_MAX_MEMBERS                1024
#define SWIM_MAX_K                      8
#define SWIM_RELAYS                     64 /* PING_REQs served at once */

/* A peer as this node sees it. */
enum swim_status
{
    SWIM_UP = 0,  /* answered recently (the initial status) */
    SWIM_SUSPECT, /* missed a probe period; still routed to */
    SWIM_DOWN,    /* suspected for suspect_timeout_ms */
};

struct swim_config
{
    const char *node_id;         /* this node, 1..CL_ID_MAX bytes */
    uint32_t period_ms;          /* protocol period T; 0 = 500 */
    uint32_t ping_timeout_ms;    /* direct probe wait, < T; 0 = 200 */
    uint32_t k;                  /* PING_REQ helpers, 1..SWIM_MAX_K; 0 = 2 */
    uint32_t suspect_timeout_ms; /* suspect -> down; 0 = 1500 */
    uint64_t incarnation;        /* this node's incarnation, sent in PING
                                    and ACK: the server passes a value that
                                    grows per restart (e.g. start time ms) */
    uint64_t seed;               /* seeds probe order and helper choice */
};

/* Counters for INFO and tests. */
struct swim_stats
{
    uint64_t pings_sent;     /* direct probes */
    uint64_t ping_reqs_sent; /* indirect probe requests */
    uint64_t relays;         /* probes done on behalf of others */
    uint64_t acks_sent;
    uint64_t suspects; /* UP -> SUSPECT transitions */
    uint64_t downs;    /* NODE_DOWN actions */
    uint64_t ups;      /* NODE_UP actions */
    uint64_t pauses;   /* local stalls detected (see swim.c) */
};

struct swim;

/*
 * Creates a detector with no members.
 * Errors: RK_EINVAL (invalid id, ping_timeout >= period, k too large),
 * RK_ENOMEM.  *out is returned-owned (swim_destroy); untouched on error.
 */
int swim_create(const struct swim_config *cfg, struct swim **out);

/* Frees the detector; NULL is a no-op. */
void swim_destroy(struct swim *s);

/*
 * Sets the peers to watch: the valid members of the cluster state (call on
 * every CL_ACT_STATE_CHANGED).  `ids`/`n`: NUL-terminated ids, any order;
 * this node's own id and duplicates are skipped.  Known peers keep their
 * status; new ones start UP; peers no longer listed are forgotten without
 * an action.  The probe order is reshuffled (seeded).
 * Errors: RK_EINVAL (an invalid id, more than SWIM_MAX_MEMBERS),
 * RK_ENOMEM; on error the old set stays.  Complexity: O(n * M).
 */
int swim_set_members(struct swim *s, const char *const *ids, size_t n);

/*
 * Timer event: ends the probe period (unanswered probes make their target
 * SUSPECT), declares DOWN the suspects whose timeout passed, starts the
 * next period (PING to the next peer in the probe order and to every
 * suspect) and sends PING_REQs for probes unanswered after
 * ping_timeout_ms.  The first call starts the first period.
 * Errors: none today (RK_OK).
 */
int swim_tick(struct swim *s, uint64_t now_ms, struct cl_actions *acts);

/* Absolute ms of the next work for swim_tick (0 before the first tick). */
uint64_t swim_next_deadline_ms(const struct swim *s);

/*
 * Peer message event: PING is answered with ACK; PING_REQ makes this node
 * probe the target and forward its ACK; ACK completes a probe or a relay.
 * Every one of them also counts as traffic from its sender (see
 * swim_on_traffic).  Other types are ignored.  `msg` is borrowed.
 * Errors: RK_EPROTO (an empty or too long node id in the message).
 */
int swim_on_message(struct swim *s,
                    const struct peer_msg *msg,
                    uint64_t now_ms,
                    struct cl_actions *acts);

/*
 * Any other message from peer `id` (len bytes): it is alive, so a DOWN or
 * SUSPECT peer is UP at once (NODE_UP when it was DOWN) and a probe of it
 * in flight counts as answered.  Unknown ids are ignored.
 */
void swim_on_traffic(struct swim *s,
                     const char *id,
                     size_t len,
                     uint64_t now_ms,
                     struct cl_actions *acts);

/*
 * Status of peer `id`: false when it is not watched.  `incarnation` (may
 * be NULL) receives the last incarnation it reported (0 = none yet).
 */
bool swim_member_status(const struct swim *s,
                        const char *id,
                        enum swim_status *status,
                        uint64_t *incarnation);

/* This node's storage state, sent in its PINGs and ACKs from now on
 * (issue 12 item 3; the driver learns it from the engine). */
void swim_set_storage(struct swim *s, enum peer_storage st);

/*
 * Records that peer `id` (len bytes) is in storage state `st` without a
 * PING or ACK saying so (a write it refused with RK_EREADONLY); its next
 * PING or ACK overrides it.  A change appends a CL_ACT_LOG.  Unknown ids
 * are ignored.
 */
void swim_note_storage(struct swim *s,
                       const char *id,
                       size_t len,
                       enum peer_storage st,
                       struct cl_actions *acts);

/* The storage state peer `id` last reported (NUL-terminated);
 * PEER_STORAGE_OK when it reported none or is not watched. */
enum peer_storage swim_member_storage(const struct swim *s, const char *id);

/* Number of watched peers. */
size_t swim_member_count(const struct swim *s);

/* Counters since creation. */
struct swim_stats swim_stats(const struct swim *s);

/* "up", "suspect", "down". */
const char *swim_status_name(enum swim_status st);

#endif /* RINGKV_CLUSTER_SWIM_H */
