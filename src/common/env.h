/*
 * env.h - the environment: the one way cluster and storage code meets
 * time, randomness and background work (DESIGN.md 2a; STYLE.md 1.6).
 *
 * Code in src/cluster and the decisions of src/storage never read a clock,
 * draw libc randomness or start a thread.  They are handed a struct rk_env
 * and call through it.  Two backends exist, after canonical/raft's
 * `struct raft_io` (include/raft.h: time(), random() and async_work are
 * members of the injected I/O object, with a real backend in src/uv.c and
 * an in-memory one in src/fixture.c):
 *
 *   src/server/env_real.c  CLOCK_REALTIME / CLOCK_MONOTONIC, getrandom(2)
 *                          seeded SplitMix64, one worker thread per
 *                          executor
 *   tests/sim/             a virtual clock advanced by the simulator, a
 *                          seeded stream per node, jobs run inline at a
 *                          simulated completion time
 *
 * Timers are not part of the environment: every machine has a
 * _next_deadline_ms() query and a _tick(now_ms) entry point, and the
 * driver (the event loop, or the simulator's event queue) calls _tick when
 * that time comes (cluster/actions.h).
 *
 * Thread: wall_ms, mono_ms and rand64 are called on the owner's thread
 * (the event loop) unless a backend says otherwise; the real backend's
 * clocks are safe from any thread.  An executor's submit is called on the
 * owner thread; its jobs run on the executor's own thread (real) or inline
 * in the simulator's loop.
 */
#ifndef RINGKV_COMMON_ENV_H
#define RINGKV_COMMON_ENV_H

#include <stdint.h>

struct rk_env
{
    /* Wall clock, Unix ms (HLC input, expiry).  May jump in both
     * directions (the simulator skews it; NTP steps it). */
    uint64_t (*wall_ms)(struct rk_env *env);
    /* Monotonic ms since an arbitrary origin (deadlines, timers, failure
     * detection).  Never goes back. */
    uint64_t (*mono_ms)(struct rk_env *env);
    /* 64 random bits.  The simulator's stream is seeded, so one seed
     * replays one run; the real one is seeded from getrandom(2).  Not for
     * cryptography. */
    uint64_t (*rand64)(struct rk_env *env);
    void *data; /* the backend's */
};

/*
 * A job of background work: `work(data)` runs off the loop (fsync batches,
 * merges, Merkle hashing).  It must not touch loop-owned state except
 * through what the job's owner documents as shared (an atomic, a lock).
 */
typedef void (*rk_work_cb)(void *data);

/*
 * A serial executor: jobs submitted to one executor run one at a time, in
 * submission order.  Real: one worker thread per executor.  Simulated:
 * each job runs to completion inside the simulator's loop at a simulated
 * time chosen by its seed (possibly after a crash has discarded it: a
 * crashed node's queued jobs never run).
 */
struct rk_executor
{
    /*
     * Queues work(data).  RK_OK, RK_ENOMEM, or RK_ECLOSED after the
     * executor started shutting down.  Thread: the owner of the executor.
     */
    int (*submit)(struct rk_executor *ex, rk_work_cb work, void *data);
    /*
     * Withdraws the job submitted as (work, data) if it has not started:
     * RK_OK when it will never run (it was still queued, or a simulated
     * crash discarded it), RK_EBUSY when it is running or has run.  Lets
     * an owner that is closing do the work itself instead of waiting for
     * a job that may never come (libuv uv_cancel).  May be NULL: then
     * every job submitted runs, and owners wait for theirs.  Thread: the
     * owner of the executor.
     */
    int (*cancel)(struct rk_executor *ex, rk_work_cb work, void *data);
    void *data; /* the backend's */
};

/* Convenience wrappers (the env is borrowed; never NULL). */
static inline uint64_t rk_env_wall_ms(struct rk_env *env)
{
    return env->wall_ms(env);
}

static inline uint64_t rk_env_mono_ms(struct rk_env *env)
{
    return env->mono_ms(env);
}

static inline uint64_t rk_env_rand64(struct rk_env *env)
{
    return env->rand64(env);
}

#endif /* RINGKV_COMMON_ENV_H */
