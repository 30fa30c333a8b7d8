/*
 * sim_env.h - a manual environment for the storage unit tests (common/
 * env.h): a clock the test advances, a seeded random stream, and an inline
 * executor whose jobs run only when the test says so (sim_exec_run), as
 * the cluster simulator runs them (tests/sim).  Header-only (static).
 * Thread: the test's thread only.
 */
#ifndef RINGKV_TESTS_SIM_ENV_H
#define RINGKV_TESTS_SIM_ENV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/error.h"

struct sim_env
{
    struct rk_env env; /* data = this */
    uint64_t now_ms;   /* monotonic ms; the test advances it */
    uint64_t wall_base_ms;
    uint64_t rng;    /* SplitMix64 state */
    uint64_t draws;  /* rand64 calls */
    uint64_t clocks; /* clock reads */
};

static uint64_t sim_env_mono(struct rk_env *env)
{
    struct sim_env *s = env->data;
    s->clocks++;
    return s->now_ms;
}

static uint64_t sim_env_wall(struct rk_env *env)
{
    struct sim_env *s = env->data;
    s->clocks++;
    return s->wall_base_ms + s->now_ms;
}

static uint64_t sim_env_rand(struct rk_env *env)
{
    struct sim_env *s = env->data;
    s->draws++;
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void sim_env_init(struct sim_env *s, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->env = (struct rk_env){.wall_ms = sim_env_wall,
                             .mono_ms = sim_env_mono,
                             .rand64 = sim_env_rand,
                             .data = s};
    s->now_ms = 1000;
    s->wall_base_ms = 1767225600000ull; /* 2026-01-01 */
    s->rng = seed;
}

#define SIM_EXEC_CAP 64

struct sim_job
{
    rk_work_cb work;
    void *data;
};

/*
 * A serial executor that queues jobs and runs them in order when the test
 * calls sim_exec_run.  sim_exec_crash discards the queue: those jobs never
 * run, and cancel answers RK_OK for them (env.h).  `refuse` > 0 makes the
 * next submits fail with RK_ENOMEM.
 */
struct sim_exec
{
    struct rk_executor ex; /* data = this */
    struct sim_job q[SIM_EXEC_CAP];
    size_t n;
    struct sim_job dropped[SIM_EXEC_CAP]; /* discarded by a crash */
    size_t n_dropped;
    int submits, cancels, runs;
    int refuse;
};

static int sim_exec_submit(struct rk_executor *ex, rk_work_cb work, void *data)
{
    struct sim_exec *s = ex->data;
    if (s->refuse > 0) {
        s->refuse--;
        return RK_ENOMEM;
    }
    if (s->n == SIM_EXEC_CAP) {
        abort();
    }
    s->q[s->n++] = (struct sim_job){work, data};
    s->submits++;
    return RK_OK;
}

static bool sim__job_take(struct sim_job *v,
                          size_t *n,
                          rk_work_cb work,
                          void *data)
{
    for (size_t i = 0; i < *n; i++) {
        if (v[i].work == work && v[i].data == data) {
            memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(v[0]));
            (*n)--;
            return true;
        }
    }
    return false;
}

static int sim_exec_cancel(struct rk_executor *ex, rk_work_cb work, void *data)
{
    struct sim_exec *s = ex->data;
    if (sim__job_take(s->q, &s->n, work, data) ||
        sim__job_take(s->dropped, &s->n_dropped, work, data)) {
        s->cancels++;
        return RK_OK;
    }
    return RK_EBUSY;
}

/* `with_cancel` false leaves ex.cancel NULL. */
static inline void sim_exec_init(struct sim_exec *s, bool with_cancel)
{
    memset(s, 0, sizeof(*s));
    s->ex = (struct rk_executor){
        .submit = sim_exec_submit,
        .cancel = with_cancel ? sim_exec_cancel : NULL,
        .data = s,
    };
}

/* Runs queued jobs in order, including ones they queue; returns how many. */
static inline int sim_exec_run(struct sim_exec *s)
{
    int ran = 0;
    while (s->n > 0) {
        struct sim_job j = s->q[0];
        memmove(&s->q[0], &s->q[1], (s->n - 1) * sizeof(s->q[0]));
        s->n--;
        j.work(j.data);
        s->runs++;
        ran++;
    }
    return ran;
}

/* A crash of the node: its queued jobs never run. */
static inline void sim_exec_crash(struct sim_exec *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->n_dropped == SIM_EXEC_CAP) {
            abort();
        }
        s->dropped[s->n_dropped++] = s->q[i];
    }
    s->n = 0;
}

#endif /* RINGKV_TESTS_SIM_ENV_H */
