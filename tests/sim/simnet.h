/*
 * simnet.h - one deterministic network, clock and event queue for every
 * test that runs several sans-IO machines in one process (issue 11 item
 * 4; TESTING.md B3; DESIGN.md 2a).
 *
 * Users: the cluster simulator (sim.c: whole nodes, src/cluster/node.h),
 * test_membership.c (membership machines) and test_swim.c (SWIM failure
 * detectors).  The model is FoundationDB's simulated network (one
 * process, one thread, a virtual clock, a seeded random stream, every
 * fault a decision drawn from that stream) in the C shape of
 * canonical/raft's fixture (include/raft/fixture.h: the earliest event
 * runs first, one at a time, ties by a fixed rule).
 *
 * What it holds:
 *  - a virtual clock in ms, moved only by running events;
 *  - one event queue ordered by time, then by insertion (the order events
 *    were scheduled), which is the whole of the determinism: the same
 *    seed and the same calls give the same run;
 *  - endpoints 0..n-1, each with a receive and a tick callback, one timer,
 *    an incarnation (bumped when it goes down), and a paused flag;
 *  - per link (from -> to): a delay range, a loss and a duplication
 *    probability, and a blocked flag (one-way partitions are one blocked
 *    direction); reordering comes from the random delays;
 *  - a seeded rk_rng stream (draws in a fixed order per message: loss if
 *    loss_pct > 0, duplication if dup_pct > 0, then one delay per copy);
 *  - a trace hash folding in every event run (time, type, endpoints, a
 *    message's bytes or a user event's arguments).
 *
 * Semantics of faults:
 *  - blocked link, loss: the message is dropped when sent; messages
 *    already in flight still arrive (a cut after the packet left).
 *  - down endpoint (a crash, or a host unreachable): sends from it are
 *    dropped; events for it (messages to or from it, its timer, its user
 *    events) that were queued before it went down never run, also after
 *    it comes back up (they belong to a dead incarnation).  A message
 *    sent to it while it is down is for its next incarnation: it arrives
 *    if the endpoint is up again by then, else it is dropped (the
 *    simulator's model since its first version).
 *  - paused endpoint (SIGSTOP, a long GC pause): its events wait, in
 *    order, and run when it resumes (a socket buffer filling up).  Sends
 *    to it are not dropped unless its links are blocked.
 *
 * Every `ep`, `from` and `to` below is an endpoint index 0..n-1 (a
 * precondition, not checked), or SIMNET_ALL where a setter says so.
 * Thread: one; nothing here is thread-safe.  Allocation goes through
 * rk_malloc; on RK_ENOMEM a send or event is lost (and counted dropped).
 */
#ifndef RINGKV_TESTS_SIMNET_H
#define RINGKV_TESTS_SIMNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIMNET_MAX_ENDPOINTS 16
#define SIMNET_ALL           (-1) /* every endpoint, in link setters */

/* Event types: the net's own, then the user's (SIMNET_EV_USER + k). */
enum
{
    SIMNET_EV_MSG = 1, /* a message reaches its endpoint */
    SIMNET_EV_TIMER,   /* an endpoint's timer fires */
    SIMNET_EV_USER = 16,
};

/* How one direction of a link behaves (applied when a message is sent). */
struct simnet_link
{
    uint32_t delay_min_ms; /* one-way delay, uniform in [min, max] */
    uint32_t delay_max_ms; /* >= delay_min_ms */
    uint32_t loss_pct;     /* 0..100: chance a message is dropped */
    uint32_t dup_pct;      /* 0..100: chance it arrives twice (each copy
                              with its own delay) */
};

/* Message `frame`/`len` (a view valid during the call) reached `to` from
 * `from`.  The callback may send, schedule, arm and change faults. */
typedef void (*simnet_recv_cb)(void *data,
                               int to,
                               int from,
                               const void *frame,
                               size_t len);
/* Endpoint `ep`'s timer fired (it is disarmed before the call). */
typedef void (*simnet_tick_cb)(void *data, int ep);
/* A user event (type >= SIMNET_EV_USER) scheduled with simnet_schedule. */
typedef void (
    *simnet_event_cb)(void *data, int type, int ep, uint64_t a, uint64_t b);

struct simnet_stats
{
    uint64_t sent;       /* simnet_send calls */
    uint64_t dropped;    /* lost: blocked, loss, down, dead incarnation */
    uint64_t duplicated; /* extra copies made */
    uint64_t delivered;  /* messages handed to a recv callback */
    uint64_t events;     /* events run (messages, ticks, user events) */
};

struct simnet; /* opaque */

/*
 * Creates a network of `n_endpoints` (1..SIMNET_MAX_ENDPOINTS) endpoints,
 * all up, at time 0, with no callbacks yet, every link 1 ms, no loss, no
 * duplication, nothing blocked; its stream seeded with `seed`.  Returns
 * RK_OK and *out (free with simnet_destroy), RK_EINVAL or RK_ENOMEM.
 */
int simnet_create(uint64_t seed, size_t n_endpoints, struct simnet **out);

/* Frees the net and every queued or held event; NULL is a no-op. */
void simnet_destroy(struct simnet *net);

/* Sets endpoint ep's callbacks (either may be NULL: the event is then
 * only counted); `data` is borrowed and passed back. */
void simnet_endpoint(struct simnet *net,
                     int ep,
                     simnet_recv_cb recv,
                     simnet_tick_cb tick,
                     void *data);

/* Sets the callback of user events; `data` is borrowed. */
void simnet_on_event(struct simnet *net, simnet_event_cb cb, void *data);

/* ---- clock, randomness, trace -------------------------------------------- */

uint64_t simnet_now(const struct simnet *net); /* virtual ms */

/* The net's random stream (borrowed; its owner may draw from it too, which
 * keeps one stream for the whole simulator). */
struct rk_rng *simnet_rng(struct simnet *net);

/* Uniform in [0, bound) from the net's stream (0 when bound <= 1). */
uint64_t simnet_rand(struct simnet *net, uint64_t bound);

/* The trace hash: equal for equal runs (TESTING.md B3 I8). */
uint64_t simnet_trace(const struct simnet *net);

/* Folds `v` (an observation of the user's) into the trace hash. */
void simnet_trace_mix(struct simnet *net, uint64_t v);

struct simnet_stats simnet_stats(const struct simnet *net);

/* ---- links ----------------------------------------------------------------
 */

/* Sets the link from -> to (either may be SIMNET_ALL). */
void simnet_set_link(struct simnet *net,
                     int from,
                     int to,
                     const struct simnet_link *link);

/* The link from -> to (a view valid until the next set). */
const struct simnet_link *simnet_link(const struct simnet *net,
                                      int from,
                                      int to);

/* Blocks (drops every message sent on) or unblocks from -> to; either may
 * be SIMNET_ALL, so simnet_block(net, SIMNET_ALL, SIMNET_ALL, false)
 * heals every partition. */
void simnet_block(struct simnet *net, int from, int to, bool blocked);

/*
 * The stricter crash model: a message sent to a down endpoint is dropped
 * at once (a crashed host's socket is gone), instead of being queued for
 * its next incarnation (the default: delivered if it is up again when the
 * message arrives).  Off by default.
 */
void simnet_set_drop_to_down(struct simnet *net, bool drop);

bool simnet_is_blocked(const struct simnet *net, int from, int to);

/* ---- endpoints ------------------------------------------------------------
 */

/* Takes ep down (a crash: its incarnation ends, its timer is disarmed,
 * its held events are dropped, it is no longer paused) or brings it back
 * up (a new incarnation; nothing of the old one runs).  No-op when ep is
 * already in that state. */
void simnet_set_down(struct simnet *net, int ep, bool down);
bool simnet_is_down(const struct simnet *net, int ep);

/* The incarnation of ep: 0 at creation, +1 each time it goes down. */
uint64_t simnet_incarnation(const struct simnet *net, int ep);

/* Pauses ep (its events wait) or resumes it (the waiting events are
 * queued again at the current time, in their order).  No-op while down. */
void simnet_pause(struct simnet *net, int ep, bool paused);
bool simnet_is_paused(const struct simnet *net, int ep);

/* Arms ep's one timer at `at_ms` (absolute virtual ms; a time in the
 * past fires at the current time), replacing any earlier arming;
 * UINT64_MAX disarms it.  RK_OK or RK_ENOMEM. */
int simnet_arm(struct simnet *net, int ep, uint64_t at_ms);

/* When ep's timer fires, UINT64_MAX when disarmed. */
uint64_t simnet_timer(const struct simnet *net, int ep);

/* ---- messages and events --------------------------------------------------
 */

/*
 * Sends `frame`/`len` (copied; borrowed for the call) from -> to through
 * the link's faults.  RK_OK (also when the net dropped it: see
 * simnet_stats) or RK_ENOMEM.  Draws from the stream in a fixed order.
 */
int simnet_send(struct simnet *net,
                int from,
                int to,
                const void *frame,
                size_t len);

/*
 * Schedules a user event of `type` (>= SIMNET_EV_USER) at `at_ms` (a
 * time in the past runs at the current time) with arguments a and b.
 * `ep` >= 0 binds it to that endpoint: it waits while ep is paused and is
 * dropped if ep went down since; ep = -1 is the world's (always runs).
 * RK_OK or RK_ENOMEM.
 */
int simnet_schedule(struct simnet *net,
                    uint64_t at_ms,
                    int type,
                    int ep,
                    uint64_t a,
                    uint64_t b);

/* ---- running --------------------------------------------------------------
 */

/* When the next queued event is due, UINT64_MAX when none. */
uint64_t simnet_next_at(const struct simnet *net);

/*
 * Runs the earliest event due at or before `until_ms` (the clock moves
 * to its time) and returns true; or, when there is none, moves the clock
 * to `until_ms` (never backwards) and returns false.  Events of dead
 * incarnations and stale timers are discarded on the way (not counted).
 * Complexity: O(log queued events).
 */
bool simnet_step(struct simnet *net, uint64_t until_ms);

/* Steps until none is due at or before `until_ms` (the clock then ends at
 * `until_ms`) or `max_events` ran; returns the events run. */
size_t simnet_run(struct simnet *net, uint64_t until_ms, size_t max_events);

/* ---- peer frames (every user sends src/proto/peer.h frames) ---------------
 */

struct peer_msg;

/* Encodes `m` (peer_encode) and sends it as simnet_send does.  RK_OK,
 * RK_ENOMEM, or the encoder's error. */
int simnet_send_msg(struct simnet *net,
                    int from,
                    int to,
                    const struct peer_msg *m);

/* Decodes one whole frame (a recv callback's) into *out, whose byte
 * strings are views into `frame`.  RK_OK, or the decoder's error
 * (RK_EPROTO, RK_EVERSION, RK_EAGAIN for a short frame). */
int simnet_decode(struct simnet *net,
                  const void *frame,
                  size_t len,
                  struct peer_msg *out);

#endif /* RINGKV_TESTS_SIMNET_H */
