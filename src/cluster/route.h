/*
 * route.h - where a key's requests go (DESIGN.md section 1 step 2 and
 * section 4; issue 11 item 1): the targets of a key (its N primaries, a
 * primary that is down replaced by the next fallback clockwise that is up:
 * sloppy quorum), the coordinating replica of a write, and the effective
 * N/R/W of the cluster and of one request.
 *
 * Dynamo (DeCandia et al., SOSP 2007) section 4.6: "all read and write
 * operations are performed on the first N healthy nodes from the
 * preference list, which may not always be the first N nodes encountered
 * while walking the consistent hashing ring"; a fallback that stands in
 * for a down node keeps the write with a hint naming it.
 *
 * Degraded storage (issue 12 item 3): a node whose engine is read-only
 * (route_view.is_degraded, self included) cannot take writes.  For a
 * write (route_view.write) it is treated like a down node: a fallback
 * takes a hint for it, W is counted on the others, and with no fallback
 * left it is listed in down[] (the coordinator keeps the hint itself).
 * Reads still ask it (its data is still readable).
 *
 * Pure functions of (ring, liveness, settings): no clock, no I/O, no
 * allocation.  Liveness is the caller's (route_view.is_up).  Thread: any,
 * as long as the ring and the liveness data are not changed meanwhile.
 */
#ifndef RINGKV_CLUSTER_ROUTE_H
#define RINGKV_CLUSTER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/ring.h"

#define ROUTE_MAX_TARGETS 64 /* N at most (COORD_MAX_TARGETS) */

/* Whether node `id` (NUL-terminated, not self) is routed to: the caller's
 * failure detector and transport say it is reachable. */
typedef bool (*route_up_cb)(void *data, const char *id);

/* Whether node `id` (NUL-terminated, self included) has degraded
 * storage: its engine is read-only, so it cannot apply writes. */
typedef bool (*route_degraded_cb)(void *data, const char *id);

/* What routing looks at; every pointer borrowed for the call. */
struct route_view
{
    const struct ring *ring;       /* NULL: no ring yet (no targets) */
    const struct ring *next;       /* the ring being moved to during an
                                      ownership transition (membership.h),
                                      else NULL: gives the pending owners */
    const char *self;              /* this node's id; always counted up */
    bool sloppy;                   /* sloppy quorum: fallbacks replace down
                                      primaries */
    route_up_cb is_up;             /* liveness of other nodes */
    bool write;                    /* routing a write: degraded nodes count as
                                      down (reads ignore is_degraded) */
    route_degraded_cb is_degraded; /* NULL: no node is degraded */
    void *data;                    /* passed to is_up and is_degraded */
};

/*
 * The targets of one key.  Ids are views into the ring (valid while it
 * lives).  Invariants: n <= the requested N and <= members; ids are
 * distinct; hint_for[i] != NULL exactly when id[i] is a fallback standing
 * in for the primary hint_for[i]; down[] lists the primaries that are
 * down with no fallback left (each also appears in id[] with hint_for
 * NULL: its request fails at once, and the coordinator keeps a hint for
 * it).
 */
struct route_targets
{
    const char *id[ROUTE_MAX_TARGETS];
    const char *hint_for[ROUTE_MAX_TARGETS];
    size_t n;
    const char *down[ROUTE_MAX_TARGETS];
    size_t n_down;
    /* Pending owners (v->next != NULL): members of the next ring's first
     * N of the key's partition that are not among the current ring's
     * first N.  A write goes to them too, without counting toward W
     * (issue 14 item 1); reads ignore them.  Views into v->next. */
    const char *pending[ROUTE_MAX_TARGETS];
    size_t n_pending;
};

/*
 * Fills *t with the targets of key/klen for replication factor n
 * (1..ROUTE_MAX_TARGETS; more is clamped): the first min(n, M) members of
 * the key's preference list (ring_preflist), each primary that is not up
 * replaced, when v->sloppy, by the next fallback of the list that is up
 * and not yet used.  For a write (v->write), "up" also means not degraded
 * (self included).  No ring: t->n == 0.  Never fails.
 * Complexity: O(Q + M) (the preference list walk).
 */
void route_targets(const struct route_view *v,
                   const void *key,
                   size_t klen,
                   uint32_t n,
                   struct route_targets *t);

/*
 * The index in t of the replica that coordinates a write (issues its dot):
 * self when it is a primary target and up (no extra hop; Riak's put
 * coordinator), else the first primary target that is up, else the first
 * fallback (it issues the dot from a one-shot actor), else 0.  "Up" is as
 * route_targets sees it under v (with v->write, not degraded: a degraded
 * coordinator hands the UPDATE to a healthy replica).  t->n >= 1.
 */
size_t route_pick_coordinator(const struct route_view *v,
                              const struct route_targets *t);

/* Replication settings: N replicas, R answers per read, W per write. */
struct route_quorum
{
    uint32_t n, r, w;
};

/*
 * The cluster's effective settings: the configured ones clamped to the
 * valid members (at least 1, at most ROUTE_MAX_TARGETS), R and W to N.
 */
struct route_quorum route_clamp(struct route_quorum configured,
                                size_t valid_members);

/*
 * One request's settings: the effective ones with a client's overrides
 * (0 = none; HTTP query parameters), which may only lower N; R and W are
 * then at most that N.
 */
struct route_quorum route_request(struct route_quorum effective,
                                  struct route_quorum overrides);

#endif /* RINGKV_CLUSTER_ROUTE_H */
