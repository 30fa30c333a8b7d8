/*
 * seeds.h - joining a cluster from the configuration: the `seeds` list
 * (issue 17 item 1; Cassandra's seed provider).
 *
 * A node started with an empty cluster state and a seed list joins the
 * first seed that admits it, trying the seeds in list order and waiting
 * between rounds with a doubling backoff (1 s, 2 s, 4 s ... 30 s).  A node
 * that is itself one of the seeds joins nobody: it is where the others
 * join (as a Cassandra seed does not bootstrap).  A node that already
 * belongs to a cluster ignores the list.
 *
 * Pure and sans-IO: the caller (src/server/cluster.c) feeds the time and
 * the outcome of each join and starts the join it is told to.  Thread:
 * the owner's; no allocation.
 */
#ifndef RINGKV_CLUSTER_SEEDS_H
#define RINGKV_CLUSTER_SEEDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEEDS_MAX            16
#define SEEDS_HOST_MAX       255
#define SEEDS_BACKOFF_MIN_MS 1000u
#define SEEDS_BACKOFF_MAX_MS 30000u

struct seed
{
    char host[SEEDS_HOST_MAX + 1];
    uint16_t port; /* the seed's peer port */
};

struct seeds
{
    struct seed s[SEEDS_MAX];
    size_t n;
    size_t next;         /* the seed the next attempt tries */
    uint64_t next_at;    /* monotonic ms of the next attempt */
    uint32_t backoff_ms; /* wait after the current round */
    uint32_t attempts;   /* joins started */
    bool trying;         /* a join is in flight */
    bool done;           /* joined, or nothing to do */
};

/*
 * Parses "host:port[,host:port...]" (blanks around items ignored; IPv6
 * as [addr]:port) into sd, which it resets.  An empty list is valid (no
 * seeds).  Errors: RK_EINVAL with the reason in err (errlen bytes): a
 * missing or bad port, an empty or too long host, more than SEEDS_MAX.
 */
int seeds_parse(struct seeds *sd, const char *list, char *err, size_t errlen);

/*
 * Drops the seeds that are this node (host and port equal to self's;
 * "localhost", "127.0.0.1" and "::1" count as one host).  Returns true
 * when one was dropped: this node is a seed and joins nobody (sd is then
 * done).
 */
bool seeds_drop_self(struct seeds *sd, const char *self_host, uint16_t port);

/*
 * The seed to try now, or NULL: none left to try (done), a join in
 * flight, or the backoff has not passed (now_ms < next_at).  When it
 * returns a seed, a join counts as started (trying) until seeds_result.
 */
const struct seed *seeds_due(struct seeds *sd, uint64_t now_ms);

/*
 * The outcome of the join seeds_due started: joined (done), or failed:
 * the next seed is tried next, at once within a round; after the last
 * seed of a round, after the backoff (which then doubles, up to
 * SEEDS_BACKOFF_MAX_MS).
 */
void seeds_result(struct seeds *sd, bool joined, uint64_t now_ms);

#endif /* RINGKV_CLUSTER_SEEDS_H */
