/*
 * sim_main.c - ringkv_sim, the command line of the deterministic
 * simulator (sim.h).  Runs a range of seeds, prints each failing seed
 * with the one command that replays it, and a summary with the figures
 * of TESTING.md B3 (seeds/s, simulated-to-wall time ratio).
 *
 *   ringkv_sim [--seed S | --seeds A:B] [--steps N] [--nodes M]
 *              [--n N] [--r R] [--w W] [--sloppy on|off]
 *              [--policy siblings|lww] [--clients C] [--no-nemesis]
 *              [--heal-ms MS] [--engine memory|bitcask]
 *              [--crash-drops-sends] [--no-chunks] [--spares K]
 *              [--determinism K] [--expect INV]
 *              [--verbose | -v -v]
 *
 * --no-aae turns active anti-entropy off (and invariant I11 with it).
 * --no-repair-pass skips the final read of every key with R = N: I2
 * (replicas equal) must then hold through anti-entropy alone.
 *
 * --counters adds counter keys that clients increment (SIM_OP_INCR, the
 * PEER_KV_COUNTER writes of issue 16) and invariant I15 (every replica
 * reads the sum of the acknowledged increments, within those of unknown
 * outcome).  --counters-rmw is its negative control: increments as a
 * read and a write of the sum (INCR before issue 16) must break I15.
 *
 * --no-chunks leaves out the chunked-value keys (SIM_OP_BIG, I9): the
 * workload of before they existed, so seeds found then replay as they did.
 *
 * --spares K starts K of the M nodes as spares, not joined when the
 * cluster forms, and turns on the membership nemeses (join, leave, remove,
 * replace; sim_members.c) and invariant I10 (no transition stuck).
 *
 * --determinism K runs the first K seeds twice and fails unless the trace
 * hashes match (I8).  --expect I1 turns the run into a negative control:
 * it passes only if the checker reports I1 violations (conflict_policy
 * lww must lose writes; a checker that sees nothing is broken).
 * Exit: 0 passed, 1 invariant violations (or a negative control that saw
 * none), 2 usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "sim.h"

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: ringkv_sim [--seed S | --seeds A:B] [--steps N] "
            "[--nodes M] [--n N] [--r R] [--w W] [--sloppy on|off] "
            "[--crash-drops-sends] [--no-chunks] [--counters] [--counters-rmw] "
            "[--no-aae] [--no-repair-pass] "
            "[--spares K] "
            "[--policy siblings|lww] [--clients C] [--no-nemesis] "
            "[--heal-ms MS] [--engine memory|bitcask] [--determinism K] "
            "[--expect I1..I15] [-v]\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    struct sim_config cfg;
    sim_config_default(&cfg);

    uint64_t first = 1, last = 1, determinism = 0, v;
    int expect = -1;
    char flags[512] = "";
    size_t fl = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool keep = true; /* part of the replay command */
        if (strcmp(a, "--seed") == 0 && val && parse_u64(val, &v)) {
            first = last = v;
            keep = false;
        } else if (strcmp(a, "--seeds") == 0 && val &&
                   sscanf(val, "%" SCNu64 ":%" SCNu64, &first, &last) == 2 &&
                   first <= last) {
            keep = false;
        } else if (strcmp(a, "--steps") == 0 && val && parse_u64(val, &v)) {
            cfg.steps = (size_t)v;
        } else if (strcmp(a, "--nodes") == 0 && val && parse_u64(val, &v)) {
            cfg.n_nodes = (size_t)v;
        } else if (strcmp(a, "--spares") == 0 && val && parse_u64(val, &v)) {
            cfg.spares = (size_t)v;
        } else if (strcmp(a, "--n") == 0 && val && parse_u64(val, &v)) {
            cfg.n = (uint32_t)v;
        } else if (strcmp(a, "--r") == 0 && val && parse_u64(val, &v)) {
            cfg.r = (uint32_t)v;
        } else if (strcmp(a, "--w") == 0 && val && parse_u64(val, &v)) {
            cfg.w = (uint32_t)v;
        } else if (strcmp(a, "--sloppy") == 0 && val) {
            cfg.sloppy = strcmp(val, "on") == 0;
        } else if (strcmp(a, "--crash-drops-sends") == 0) {
            cfg.drop_to_down = true;
            val = NULL;
        } else if (strcmp(a, "--no-chunks") == 0) {
            cfg.chunks = false;
            val = NULL;
        } else if (strcmp(a, "--counters") == 0) {
            cfg.counters = true;
            val = NULL;
        } else if (strcmp(a, "--counters-rmw") == 0) {
            cfg.counters = true;
            cfg.counters_rmw = true;
            val = NULL;
        } else if (strcmp(a, "--no-aae") == 0) {
            cfg.aae = false;
            val = NULL;
        } else if (strcmp(a, "--no-repair-pass") == 0) {
            cfg.skip_repair = true;
            val = NULL;
            val = NULL;
        } else if (strcmp(a, "--policy") == 0 && val) {
            cfg.lww = strcmp(val, "lww") == 0;
        } else if (strcmp(a, "--clients") == 0 && val && parse_u64(val, &v)) {
            cfg.n_clients = (size_t)v;
        } else if (strcmp(a, "--heal-ms") == 0 && val && parse_u64(val, &v)) {
            cfg.heal_ms = (uint32_t)v;
        } else if (strcmp(a, "--determinism") == 0 && val &&
                   parse_u64(val, &v)) {
            determinism = v;
            keep = false;
        } else if (strcmp(a, "--expect") == 0 && val && val[0] == 'I' &&
                   parse_u64(val + 1, &v) && v >= 1 && v <= SIM_N_INVARIANTS) {
            expect = (int)v - 1;
            keep = false;
        } else if (strcmp(a, "--engine") == 0 && val &&
                   (strcmp(val, "bitcask") == 0 ||
                    strcmp(val, "memory") == 0)) {
            cfg.bitcask = strcmp(val, "bitcask") == 0;
        } else if (strcmp(a, "--no-nemesis") == 0) {
            cfg.nemesis = false;
            val = NULL;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            cfg.verbose++;
            val = NULL;
            keep = false;
        } else {
            return usage();
        }
        if (keep && fl < sizeof(flags) - 64) {
            fl += (size_t)snprintf(flags + fl, sizeof(flags) - fl, " %s%s%s", a,
                                   val ? " " : "", val ? val : "");
        }
        if (val) {
            i++;
        }
    }
    /* engines log every recovery, and every failed fsync of a crashed
     * node's disk: silent unless -v -v (faults show as violations) */
    rk_log_set_level(cfg.verbose >= 2 ? RK_LOG_INFO
                                      : (enum rk_log_level)(RK_LOG_ERROR + 1));
    printf("ringkv_sim: seeds %" PRIu64 "..%" PRIu64
           ", %zu nodes, N%u R%u "
           "W%u, sloppy %s, %s, %zu clients, %zu steps, nemesis %s%s\n",
           first, last, cfg.n_nodes, cfg.n, cfg.r, cfg.w,
           cfg.sloppy ? "on" : "off", cfg.lww ? "lww" : "siblings",
           cfg.n_clients, cfg.steps, cfg.nemesis ? "on" : "off",
           cfg.spares ? " + membership changes" : "");
    fflush(stdout);
    uint64_t totals[SIM_N_INVARIANTS] = {0};
    uint64_t events = 0, sim_ms = 0, ok = 0, unknown = 0, failed = 0;
    uint64_t elements = 0, crashes = 0, pauses = 0, parts = 0, msgs = 0;
    uint64_t changes = 0;
    uint64_t jobs = 0, disk_faults = 0, disks_full = 0, spoofed = 0, forged = 0;
    size_t max_sibs = 0, bad_seeds = 0;
    uint64_t keys = 0, converged = 0;
    uint64_t chunked = 0, dropped = 0, bdeleted = 0, bfailed = 0, incrs = 0;
    uint64_t gdeferred = 0, gkept = 0, ho_keys = 0, ho_thr = 0, ho_res = 0;
    uint64_t ho_ver = 0, ho_vkeys = 0, ho_vfold = 0;
    uint64_t aae_ex = 0, aae_rep = 0, aae_settle_max = 0;
    double t0 = wall_s();
    for (uint64_t seed = first; seed <= last; seed++) {
        cfg.seed = seed;
        struct sim_result r;
        int rc = sim_run(&cfg, &r);
        if (rc != RK_OK) {
            fprintf(stderr, "ringkv_sim: seed %" PRIu64 ": set-up failed: %s\n",
                    seed, rk_errname(rc));
            return 1;
        }
        if (seed - first < determinism) {
            struct sim_result again;
            if (sim_run(&cfg, &again) != RK_OK ||
                again.trace_hash != r.trace_hash) {
                r.violations[SIM_I8_DETERMINISM]++;
                snprintf(r.first, sizeof(r.first),
                         "I8 determinism: trace %016" PRIx64
                         " then %016" PRIx64,
                         r.trace_hash, again.trace_hash);
            }
        }
        uint64_t nv = 0;
        for (int i = 0; i < SIM_N_INVARIANTS; i++) {
            totals[i] += r.violations[i];
            nv += r.violations[i];
        }
        if (nv && expect < 0) {
            bad_seeds++;
            printf("seed %" PRIu64 ": FAILED (%" PRIu64
                   " violations) %s\n  replay: ringkv_sim --seed %" PRIu64
                   "%s -v\n",
                   seed, nv, r.first, seed, flags);
        } else if (cfg.verbose) {
            printf("seed %" PRIu64 ": ok, trace %016" PRIx64 ", %" PRIu64
                   " events, %" PRIu64 " ms simulated\n",
                   seed, r.trace_hash, r.events, r.sim_ms);
        }
        fflush(stdout);
        events += r.events;
        sim_ms += r.sim_ms;
        ok += r.ops_ok;
        unknown += r.ops_unknown;
        failed += r.ops_failed;
        elements += r.elements_acked;
        crashes += r.crashes;
        pauses += r.pauses;
        parts += r.partitions;
        changes += r.membership_changes;
        msgs += r.messages;
        jobs += r.jobs;
        disk_faults += r.disk_faults;
        disks_full += r.disks_full;
        spoofed += r.spoofed;
        forged += r.forged_states;
        max_sibs = r.max_siblings > max_sibs ? r.max_siblings : max_sibs;
        keys += r.keys;
        converged += r.keys_converged_by_heal;
        chunked += r.chunked_acked;
        incrs += r.incr_acked;
        dropped += r.chunk_manifests_dropped;
        bdeleted += r.chunk_blocks_deleted;
        bfailed += r.chunk_blocks_failed;
        gdeferred += r.chunk_gc_deferred;
        gkept += r.chunk_manifests_kept;
        ho_keys += r.handoff_keys_in;
        ho_thr += r.handoff_throttled;
        ho_res += r.handoff_resumed;
        ho_ver += r.handoff_verified;
        ho_vkeys += r.handoff_verify_keys;
        ho_vfold += r.handoff_verify_folds;
        aae_ex += r.aae_exchanges;
        aae_rep += r.aae_keys_repaired;
        aae_settle_max =
            r.aae_settle_ms > aae_settle_max ? r.aae_settle_ms : aae_settle_max;
    }
    double dt = wall_s() - t0;
    uint64_t seeds = last - first + 1;
    printf("ops: %" PRIu64 " acknowledged (%" PRIu64 " set elements), %" PRIu64
           " unknown, %" PRIu64 " failed; max siblings %zu\n",
           ok, elements, unknown, failed, max_sibs);
    printf("chunked values: %" PRIu64 " acknowledged; %" PRIu64
           " manifests dropped by writes, their blocks: %" PRIu64
           " deleted, %" PRIu64 " deletes failed; GC checks deferred %" PRIu64
           ", manifests kept %" PRIu64 "\n",
           chunked, dropped, bdeleted, bfailed, gdeferred, gkept);
    if (cfg.counters) {
        printf("counters: %" PRIu64 " increments acknowledged%s\n", incrs,
               cfg.counters_rmw ? " (as read-modify-writes)" : "");
    }
    if (ho_keys) {
        printf("handoff: %" PRIu64 " keys received, %" PRIu64
               " FOLDs held back by the rate limit, %" PRIu64
               " transfers resumed from a checkpoint; %" PRIu64
               " sources verified by tree (%" PRIu64 " keys fetched), %" PRIu64
               " verifies folded instead\n",
               ho_keys, ho_thr, ho_res, ho_ver, ho_vkeys, ho_vfold);
    }
    printf("convergence: %" PRIu64 " of %" PRIu64
           " keys equal on all replicas after healing (hints, gossip), "
           "before the read-repair pass\n",
           converged, keys);
    if (cfg.aae) {
        printf("anti-entropy: %" PRIu64 " exchanges, %" PRIu64
               " keys repaired; roots equal at most %" PRIu64
               " ms after the final checks' quiet time\n",
               aae_ex, aae_rep, aae_settle_max);
    }
    printf("nemesis: %" PRIu64 " crashes, %" PRIu64 " pauses, %" PRIu64
           " partitions, %" PRIu64 " disk errors, %" PRIu64
           " disks full, %" PRIu64 " membership changes; %" PRIu64
           " frames, %" PRIu64 " storage jobs; %" PRIu64
           " spoofed frames, %" PRIu64 " forged states\n",
           crashes, pauses, parts, disk_faults, disks_full, changes, msgs, jobs,
           spoofed, forged);
    printf("speed: %" PRIu64 " seeds in %.1f s (%.2f seeds/s), %" PRIu64
           " events (%.0f/s), simulated/wall time %.0fx\n",
           seeds, dt, (double)seeds / dt, events, (double)events / dt,
           (double)sim_ms / 1000.0 / dt);
    uint64_t all = 0;
    for (int i = 0; i < SIM_N_INVARIANTS; i++) {
        printf("  %-28s %" PRIu64 "\n", sim_invariant_name(i), totals[i]);
        all += totals[i];
    }
    if (expect >= 0) {
        bool seen = totals[expect] > 0;
        printf("negative control: %s violations %s (expected some)\n",
               sim_invariant_name(expect), seen ? "reported" : "NOT reported");
        printf("%d passed, %d failed\n", seen ? 1 : 0, seen ? 0 : 1);
        return seen ? 0 : 1;
    }
    printf("violations: %" PRIu64 "\n", all);
    printf("%" PRIu64 " passed, %zu failed\n", seeds - bad_seeds, bad_seeds);
    return all ? 1 : 0;
}
