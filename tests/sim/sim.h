/*
 * sim.h - the deterministic simulator of a whole ringkv cluster (issue 11
 * item 4; TESTING.md B3; DESIGN.md 2a).
 *
 * One process, one thread, one seeded PRNG: M nodes run the real node
 * machine (src/cluster/node.h) over real storage engines, and the
 * simulator plays everything else: a virtual clock, a network of encoded
 * peer frames with delay, reordering, loss, duplication and partitions
 * (halves, isolate-one, one-way, majorities-ring), crashes and restarts,
 * pauses, wall-clock jumps, and clients doing set-append through a quorum
 * read and a write with its context (RINGKV.GETALL / RINGKV.PUT), blind
 * SET and DEL.  The method is FoundationDB's simulation and TigerBeetle's
 * VOPR; the C shape is canonical/raft's fixture (include/raft/fixture.h:
 * one event at a time, the earliest first, ties by insertion order).
 *
 * A run: form the cluster, run `steps` events under the nemesis, heal
 * (restart, reconnect, reset clocks), let hints drain for heal_ms, read
 * every key once with R = N (read repair), then check the invariants of
 * TESTING.md B3 (sim_check.c says how each is checked, and which are
 * not yet checkable).  The same seed gives the same trace hash (I8).
 */
#ifndef RINGKV_TESTS_SIM_H
#define RINGKV_TESTS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_NODES   9
#define SIM_MAX_CLIENTS 8

enum sim_invariant
{
    SIM_I1_LOST_WRITE = 0, /* acknowledged write lost */
    SIM_I2_CONVERGENCE,    /* replicas differ / hints left after heal */
    SIM_I3_FALSE_SIBLING,  /* a client's ordered writes became siblings */
    SIM_I4_SIBLING_BOUND,  /* more siblings than the bound */
    SIM_I5_RESURRECTION,   /* a deleted key came back */
    SIM_I6_RING,           /* nodes disagree on the ring */
    SIM_I7_ORDER,          /* merge order changed the result */
    SIM_I8_DETERMINISM,    /* same seed, different trace (runner) */
    SIM_I9_CHUNK_LOST,     /* a live chunked value lost a block */
    SIM_I10_HANDOFF_STUCK, /* a transition still in progress after heal */
    SIM_I11_AAE_ROOTS,     /* anti-entropy trees wrong or unequal */
    SIM_I12_SPOOFED,       /* a frame that spoke for another node was
                              not dropped (issue 15) */
    SIM_I13_FORGED_STATE,  /* a gossiped state no change could make was
                              adopted (issue 15) */
    SIM_I14_HANDOFF_GAP,   /* a partition counted as received lacked an
                              element acknowledged before its transfer */
    SIM_I15_COUNTER,       /* a counter does not read the sum of its
                              acknowledged increments (issue 16) */
    SIM_N_INVARIANTS,
};

struct sim_config
{
    uint64_t seed;
    size_t n_nodes;    /* M, 1..SIM_MAX_NODES: members + spares */
    size_t spares;     /* nodes started but not joined when the cluster
                          forms (the last ones); > 0 also turns on the
                          membership nemeses (join, leave, remove,
                          replace: sim_members.c).  0: the runs of
                          before, trace for trace */
    uint32_t n, r, w;  /* quorum settings */
    bool sloppy;       /* sloppy quorum */
    bool lww;          /* conflict_policy = lww (the negative control) */
    size_t n_clients;  /* 1..SIM_MAX_CLIENTS */
    size_t steps;      /* events under the nemesis */
    bool nemesis;      /* faults on */
    uint32_t heal_ms;  /* quiet time after healing (simulated) */
    bool bitcask;      /* nodes store in bitcask on simulated disks
                          (sync=always through simulated executors; a
                          crash loses or tears unsynced writes), else in
                          the memory engine */
    bool drop_to_down; /* messages to a crashed node are dropped when sent
                          (simnet_set_drop_to_down), not kept for its
                          restart */
    bool chunks;       /* clients also write chunked values (keys b0..,
                          SIM_OP_BIG) and check I9; off: the workload of
                          before, so older seeds replay as they did */
    bool aae;          /* active anti-entropy on (issue 14 item 4) and
                          I11 checked; off: no tree exchange */
    bool counters;     /* clients also increment counter keys (c0..,
                          SIM_OP_INCR: PEER_KV_COUNTER writes) and I15 is
                          checked; off: the workload of before */
    bool counters_rmw; /* the negative control of I15: increments as a
                          read, then a write of the sum with the read's
                          context (what INCR did before issue 16) */
    bool skip_repair;  /* skip the final read of every key with R = N:
                             with aae, I2 must then hold by anti-entropy
                             alone (issue 14) */
    int verbose;       /* 0 quiet, 1 nemesis log, 2 every event */
};

struct sim_result
{
    uint64_t trace_hash;                   /* I8: equal for equal seeds */
    uint64_t violations[SIM_N_INVARIANTS]; /* per invariant */
    char first[512];                       /* the first violation */
    uint64_t events;                       /* events processed */
    uint64_t sim_ms;                       /* simulated time */
    uint64_t ops_ok, ops_failed, ops_unknown;
    uint64_t elements_acked;    /* set-append elements acknowledged */
    uint64_t messages, dropped; /* frames sent / dropped by the network */
    uint64_t crashes, pauses, partitions;
    uint64_t membership_changes; /* joins, leaves, removes issued */
    uint64_t jobs;               /* storage jobs run (fsync batches, merges) */
    uint64_t disk_faults;        /* fsyncs made to fail with EIO (bitcask) */
    uint64_t spoofed;            /* frames replayed as from another node */
    uint64_t forged_states;      /* GOSSIP replayed with a forged version */
    uint64_t disks_full;         /* disks filled up, then freed (bitcask) */
    size_t max_siblings;         /* largest sibling count seen in a reply */
    uint64_t chunked_acked;      /* chunked values acknowledged */
    uint64_t incr_acked;         /* counter increments acknowledged */
    uint64_t chunk_manifests_dropped; /* reported for block deletion */
    uint64_t chunk_blocks_deleted, chunk_blocks_failed;
    uint64_t handoff_keys_in, handoff_throttled; /* partition handoff */
    uint64_t handoff_resumed;      /* transfers resumed from a checkpoint */
    uint64_t handoff_verified;     /* sources verified by tree, not folded */
    uint64_t handoff_verify_keys;  /* keys those verifies fetched */
    uint64_t handoff_verify_folds; /* verifies that fell back to a fold */
    uint64_t chunk_gc_deferred;    /* GC checks that found it maybe live */
    uint64_t chunk_manifests_kept; /* GC gave up: blocks kept */
    uint64_t aae_exchanges, aae_keys_repaired; /* all nodes, at the end */
    uint64_t aae_settle_ms; /* after the final checks' quiet time, until
                               every replica's roots were equal */
    uint64_t keys, keys_converged_by_heal; /* keys whose replicas were
                                              equal after healing, before
                                              the read-repair pass */
};

/* Fills cfg with the defaults of the PR tier (M=5, N3 R2 W2, sloppy on,
 * siblings, 3 clients, 20,000 steps, nemesis on, 60 s heal). */
void sim_config_default(struct sim_config *cfg);

/* Runs one simulation.  RK_OK (violations are in *out, not an error) or
 * RK_ENOMEM / RK_EINVAL when the run could not be set up. */
int sim_run(const struct sim_config *cfg, struct sim_result *out);

/* "I1 lost write" ... for reports. */
const char *sim_invariant_name(enum sim_invariant i);

/* ---- the fixture: one cluster stepped by a test (STYLE.md 1.7) -------------
 *
 * sim_create starts cfg->n_nodes nodes (memory engines), sim_form makes them
 * one cluster (n1 creates it, the others join) and waits for ring
 * agreement; then a test drives time and faults itself.  No clients and no
 * nemesis run unless sim_run does it.  One simulation exists at a time
 * (the nodes' environments reach it through a global).  Thread: one.
 */
struct sim;
struct node;
struct engine;
struct node_write_req;

int sim_create(const struct sim_config *cfg,
               struct sim_result *res,
               struct sim **out);
int sim_form(struct sim *s); /* RK_OK or RK_ETIMEDOUT */
void sim_destroy(struct sim *s);

uint64_t sim_now(const struct sim *s); /* simulated ms */
void sim_run_for(struct sim *s, uint64_t ms);
/* Runs events one at a time until pred holds (true) or max_ms passed
 * (false). */
bool sim_run_until(struct sim *s,
                   bool (*pred)(struct sim *s, void *arg),
                   void *arg,
                   uint64_t max_ms);

struct node *sim_node(struct sim *s, int i); /* NULL while crashed */
struct engine *sim_data(struct sim *s, int i);
const char *sim_node_id(const struct sim *s, int i);
void sim_crash(struct sim *s, int i);
/* Node i's simulated disk (bitcask) is full: growing writes fail with
 * ENOSPC, its engines turn read-only.  full=false: space returns, and the
 * engines recover in place (engine_recover), as ringkvd does. */
void sim_disk_full(struct sim *s, int i, bool full);
int sim_restart(struct sim *s, int i);
void sim_block(struct sim *s, int from, int to, bool blocked);
void sim_heal(struct sim *s); /* no partitions, loss or extra delay */
/* Performs node i's actions after a test called into it directly. */
void sim_after(struct sim *s, int i);

/* One client operation of a test, answered when done is set. */
struct sim_op
{
    bool done;
    int status; /* RK_OK, RK_ENOTFOUND, RK_ENOQUORUM, ... */
    bool found;
    char object[4096]; /* the answer's object (a copy), olen bytes */
    size_t olen;
    char message[160];
    uint32_t successes;
};
/* A quorum read through node i (r = 0: the configured R). */
int sim_read(struct sim *s,
             int i,
             const char *key,
             uint32_t r,
             struct sim_op *op);
/* A write through node i (w->cookie is the simulator's). */
int sim_write(struct sim *s,
              int i,
              struct node_write_req *w,
              struct sim_op *op);

#endif /* RINGKV_TESTS_SIM_H */
