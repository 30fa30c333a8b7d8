/*
 * env_real.c - see env_real.h.
 */
#include "server/env_real.h"

#include <event2/event.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cluster/rng.h"

static uint64_t real_wall_ms(struct rk_env *env)
{
    const struct env_real_state *st = env->data;
    struct timeval tv;
    if (st && st->base && event_base_gettimeofday_cached(st->base, &tv) == 0) {
        return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_mono_ms(struct rk_env *env)
{
    (void)env;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_rand64(struct rk_env *env)
{
    struct env_real_state *st = env->data;
    struct rk_rng r = {st->rng};
    uint64_t v = rk_rng_next(&r);
    st->rng = r.state;
    return v;
}

void env_real_init(struct rk_env *env, struct env_real_state *state)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^
               (uint64_t)ts.tv_sec;
    }
    state->rng = seed;
    state->base = NULL;
    env->wall_ms = real_wall_ms;
    env->mono_ms = real_mono_ms;
    env->rand64 = real_rand64;
    env->data = state;
}
