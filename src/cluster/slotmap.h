/*
 * slotmap.h - the ring as Redis Cluster clients see it (issue 13 item 2;
 * docs/clients.md): for every partition (a range of hash slots, ring.h)
 * its nodes in the order CLUSTER SLOTS lists them, primary first.
 *
 * A partition's nodes are the first min(N, M) members of its preference
 * list (ring_preflist).  Its primary is the first of them whose health is
 * SLOTMAP_OK, else the first SLOTMAP_PFAIL one, else the first: like a
 * Redis failover, a down node's ranges go to one of their replicas at
 * once, so a client that re-reads the topology after a connection error
 * stops sending to the down node.  The others follow in preference-list
 * order.  Health is the caller's (its failure detector).
 *
 * A slotmap is immutable after creation; it borrows nothing (member
 * indexes refer to the ring it was made from).  Memory comes from
 * rk_malloc/rk_free.  Thread: any; one slotmap is not shared while it is
 * being created.  Pure: no clock, no I/O (sans-IO, DESIGN.md 1.6).
 */
#ifndef RINGKV_CLUSTER_SLOTMAP_H
#define RINGKV_CLUSTER_SLOTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/ring.h"

/* Redis Cluster's view of a node's health (ordered: lower is better). */
enum slotmap_health
{
    SLOTMAP_OK = 0, /* up, or this node */
    SLOTMAP_PFAIL,  /* suspected (Redis "fail?"), still routed to */
    SLOTMAP_FAIL,   /* down for routing (Redis "fail") */
};

/* Health of ring member `id` (NUL-terminated). */
typedef enum slotmap_health (*slotmap_health_cb)(void *data, const char *id);

struct slotmap;

/*
 * Builds the slotmap of ring `r` (borrowed for the call) with `health`
 * (called once per member, with `data`).  *out is returned-owned (free
 * with slotmap_destroy) and untouched on error.  Errors: RK_ENOMEM.
 * Complexity: O(Q * (N + M)) time, O(Q * N + M) memory.
 */
int slotmap_create(const struct ring *r,
                   slotmap_health_cb health,
                   void *data,
                   struct slotmap **out);

/* Frees a slotmap; NULL is a no-op. */
void slotmap_destroy(struct slotmap *m);

/* Partitions (Q of the ring). */
uint32_t slotmap_partitions(const struct slotmap *m);

/* Nodes listed per partition: min(N, M). */
size_t slotmap_width(const struct slotmap *m);

/* Health of member `member` (< M) as the callback said. */
enum slotmap_health slotmap_health(const struct slotmap *m, size_t member);

/*
 * The member indexes of partition p's nodes (< slotmap_partitions):
 * slotmap_width of them, primary first.  A view valid until
 * slotmap_destroy.
 */
const size_t *slotmap_nodes(const struct slotmap *m, uint32_t p);

/* Whether partitions a and b list the same nodes in the same order. */
bool slotmap_same_nodes(const struct slotmap *m, uint32_t a, uint32_t b);

/*
 * The end of the slot range that starts at partition p: the first
 * partition after p whose nodes differ from p's (slotmap_partitions at
 * the end), so [p, end) is one CLUSTER SLOTS range.  O(Q * N) at worst.
 */
uint32_t slotmap_range_end(const struct slotmap *m, uint32_t p);

#endif /* RINGKV_CLUSTER_SLOTMAP_H */
