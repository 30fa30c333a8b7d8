/*
 * env_real.h - the real environment (common/env.h): the OS clocks and a
 * SplitMix64 stream seeded from getrandom(2).  The only place besides
 * server.c's clock helpers where cluster code's time and randomness come
 * from in ringkvd (DESIGN.md 2a).  Thread: the clocks are safe from any
 * thread; rand64 belongs to the loop thread.
 */
#ifndef RINGKV_SERVER_ENV_REAL_H
#define RINGKV_SERVER_ENV_REAL_H

#include "common/env.h"

/* Fills *env with the real backend; `state` (caller storage, lives as
 * long as env) keeps the random stream. */
struct event_base;
struct env_real_state
{
    uint64_t rng;
    struct event_base *base; /* when set, wall_ms is libevent's cached
                                time of this loop pass (no clock_gettime
                                per call on the hot path) */
};
void env_real_init(struct rk_env *env, struct env_real_state *state);

#endif /* RINGKV_SERVER_ENV_REAL_H */
