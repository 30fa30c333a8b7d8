/*
 * sim_internal.h - the simulator's state, shared by sim.c (event loop,
 * network, nodes, nemesis) and sim_check.c (clients, history, invariants).
 */
#ifndef RINGKV_TESTS_SIM_INTERNAL_H
#define RINGKV_TESTS_SIM_INTERNAL_H

#include "cluster/node.h"
#include "cluster/rng.h"
#include "common/buf.h"
#include "common/env.h"
#include "common/hlc.h"
#include "sim.h"
#include "simnet.h"
#include "storage/engine.h"

#define SIM_KEYS_SET          8 /* set-append keys "s0".. */
#define SIM_KEYS_REG          8 /* register keys "r0".. (SET, DEL) */
#define SIM_KEYS_BIG          4 /* chunked keys "b0".. (BIG, DEL) */
#define SIM_KEYS_ALL          (SIM_KEYS_SET + SIM_KEYS_REG + SIM_KEYS_BIG)
#define SIM_KEYS_CTR          4  /* counter keys "c0".. (INCR), after ALL */
#define SIM_CHUNK_BLOCK       16 /* bytes per block of a chunked value */
#define SIM_CLIENT_TIMEOUT_MS 5000
#define SIM_WALL_BASE_MS      UINT64_C(1800000000000) /* 2027-01-15 */
#define SIM_TEST_OPS          64   /* a test's operations in flight */
#define SIM_TEST_COOKIE       1000 /* their cookies: 1000 + slot */

/* The simulator's events on its network's queue (tests/sim/simnet.h:
 * messages and node timers are the network's own).  `ep` >= 0 binds an
 * event to a node: it waits while the node is paused and is dropped once
 * the node crashed. */
enum sim_ev_type
{
    SIM_EV_CLIENT = SIMNET_EV_USER, /* client a issues its next operation */
    SIM_EV_CLIENT_TIMEOUT,          /* client a's op b gave up */
    SIM_EV_NEMESIS,                 /* the nemesis acts */
    SIM_EV_RESTART,                 /* node a restarts after a crash */
    SIM_EV_RESUME,                  /* node a (incarnation b) resumes */
    SIM_EV_JOB,     /* ep: a storage job runs (slot a, b: the bg executor) */
    SIM_EV_DURABLE, /* ep: its engines made writes durable */
    SIM_EV_REBOOT,  /* the operator restarts node a (incarnation b) */
    SIM_EV_SPACE,   /* space returns on node a's full disk (incarnation
                       b): its engines recover in place */
    SIM_EV_MEMBERS, /* the operator's follow-up of membership changes
                       (sim_members.c; only with cfg.spares) */
};

/* A simulated executor (common/env.h): jobs run at a simulated time, in
 * the loop; a crash of the node discards them. */
#define SIM_JOBS 8
struct sim_executor
{
    struct rk_executor ex; /* data = this */
    struct sim *s;
    int node;
    uint32_t lat_min_ms, lat_max_ms;
    struct
    {
        bool used, running;
        rk_work_cb work;
        void *data;
    } jobs[SIM_JOBS];
};

struct sim_disk;

struct sim_node
{
    int idx;
    char id[16];
    char host[16];
    struct node *node;           /* NULL while crashed */
    struct engine *data, *hints; /* survive crashes: the "disk" */
    struct sim_disk *disk;       /* bitcask: the node's simulated disk */
    struct sim_executor sync_ex, bg_ex;
    struct rk_buf state;   /* NODE_FILE_STATE as persisted */
    struct rk_buf handoff; /* NODE_FILE_HANDOFF as persisted */
    bool versioned;
    bool joined; /* JOIN_DONE seen (or the seed) */
    /* membership nemeses (sim_members.c), the operator's intent: */
    bool spare;          /* not part of the cluster: never joined, or
                            removed (and then empty or wiped); clients
                            do not use it; the nemesis may join it */
    bool leaving;        /* left or was removed: until it is a spare */
    bool stay_down;      /* removed while crashed: no restart until the
                            cluster shows it removed, then wiped */
    uint64_t changed_ms; /* when the last join/leave/remove was issued */
    int64_t skew_ms;     /* wall clock offset */
    struct rk_env env;
    struct rk_rng rng;             /* the node's own stream (env rand64) */
    struct hlc hlc;                /* client writes' timestamps (the RESP
                                      layer's clock in ringkvd) */
    bool conn_down[SIM_MAX_NODES]; /* what this node was told (peer_down) */
    /* I14: when this node's last transfer of each partition started
     * (handoff_start; UINT64_MAX: none since the node started) */
    uint64_t ho_started[RING_MAX_SIZE];
};

/* One client operation in the history. */
enum sim_op_kind
{
    SIM_OP_APPEND = 1, /* read, then write the union plus one element */
    SIM_OP_SET,        /* blind write */
    SIM_OP_DEL,        /* read, then a tombstone with the context */
    SIM_OP_BIG,        /* a chunked value: its blocks (blind writes of
                          block keys, chunk.h), then its manifest (a blind
                          write with the chunked flag), as op_chunk.c
                          does */
    SIM_OP_INCR,       /* a counter increment (issue 16): elem is the
                          delta (int64); with counters_rmw a read, then
                          the sum written with its context */
};

struct sim_client
{
    int idx;
    bool busy;
    enum sim_op_kind kind;
    int node;           /* the node it talks to for this op */
    int key;            /* key index */
    uint64_t op_id;     /* node op in flight */
    bool writing;       /* phase 2 of APPEND / DEL; BIG: the manifest */
    uint32_t blk, nblk; /* BIG: block being written, blocks in all */
    uint64_t op_gen;    /* timeout matching */
    uint64_t seq;       /* elements / values issued */
    uint64_t elem;      /* APPEND: the element being added */
    uint64_t invoked_at;
    int hist; /* index of its history record, -1 none */
};

/* An acknowledged (or failed) operation. */
struct sim_hist
{
    enum sim_op_kind kind;
    int client, key;
    uint64_t elem;    /* APPEND: element; SET: value id */
    bool ok, unknown; /* acknowledged; outcome unknown */
    uint64_t invoked_at, done_at;
    struct rk_buf obj;               /* ok writes: the object after the write */
    struct rk_buf ctx;               /* DEL: the context it wrote with (what it
                                        superseded); BIG: its manifest */
    uint64_t dot_actor, dot_counter; /* ok writes: the write's dot (0: ?) */
};

struct sim
{
    struct sim_config cfg;
    struct sim_result *res;
    struct simnet *net;      /* clock, event queue, network, the simulator's
                                random stream, trace hash; endpoint i = node i */
    struct simnet_link link; /* the nemesis' loss, duplication, delay */
    uint64_t named_frames;   /* frames naming their sender (spoof()) */
    uint64_t gossip_frames;  /* GOSSIP frames delivered (forge_state()) */
    struct sim_node nodes[SIM_MAX_NODES];
    struct sim_client clients[SIM_MAX_CLIENTS];
    bool clients_on;
    /* history */
    struct sim_hist *hist;
    size_t n_hist, cap_hist;
    bool setup_done;
    struct sim_op *test_ops[SIM_TEST_OPS]; /* a test's operations */
};

/* ---- sim.c ---- */
/* Runs events until `until` (simulated ms) or the heap empties. */
void sim__run_until(struct sim *s, uint64_t until, size_t max_events);
/* Performs node i's actions after a call into it. */
void sim__after(struct sim *s, int i);
void sim__violation(struct sim *s, enum sim_invariant inv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
uint64_t sim__rand(struct sim *s, uint64_t bound);
/* Key i's name ("s3", "r1") into buf. */
void sim__key(int key, char buf[8]);
/* I14 (sim_check.c): node i logged handoff_start or handoff_done
 * (`text` is the log line's fields). */
void sim__on_handoff_log(struct sim *s,
                         int i,
                         const char *event,
                         const char *text);

/* Node life, for sim_members.c. */
int sim__start_node(struct sim *s, int i);
void sim__crash_node(struct sim *s, int i);
size_t sim__crashed(const struct sim *s);

/* ---- sim_members.c ---- */
/* Whether clients, the repair pass and the checks treat node i as part of
 * the cluster (not a spare). */
bool sim__is_member(const struct sim *s, int i);
/* Node index of the k-th member (mod the number of members); with no
 * spares, k % M. */
int sim__member_at(const struct sim *s, uint64_t k);
/* Members at form time (M - spares). */
size_t sim__initial_members(const struct sim *s);
/* One membership nemesis action (join, leave, remove, replace) of kind
 * `what`; the line it did into line, or NULL. */
const char *sim__members_nemesis(struct sim *s,
                                 uint64_t what,
                                 char *line,
                                 size_t cap);
#define SIM_MEMBER_ACTIONS 4
/* The operator's follow-up, every second (SIM_EV_MEMBERS). */
void sim__members_event(struct sim *s);
/* A node reported NODE_JOIN_FAILED. */
void sim__members_join_failed(struct sim *s, int i);
/* I6 and I10 at the end of a run: the members agree on one ring, no
 * transition is left, no hints are held. */
void sim__check_ring(struct sim *s);
/* The ring the checks use: the first member's (after heal, all agree). */
const struct ring *sim__final_ring(struct sim *s);

/* ---- sim_check.c ---- */
void sim__client_event(struct sim *s, int client);
int sim__n_keys(const struct sim *s); /* keys the clients use */
void sim__client_timeout(struct sim *s, int client, uint64_t gen);
void sim__on_reply(struct sim *s, int node, const struct node_result *r);
/* The repair pass and the invariants (end of a run). */
void sim__repair_pass(struct sim *s);
void sim__check(struct sim *s);
/* Whether every node's anti-entropy trees are built and the current
 * replicas of every partition have equal roots (sim_check.c, I11). */
bool sim__aae_settled(struct sim *s);
/* I11 (sim_check.c): trees against data, and replicas' roots. */
void sim__check_aae(struct sim *s);
/* Counts the keys whose replicas hold equal objects (a figure). */
void sim__count_converged(struct sim *s);
void sim__hist_free(struct sim *s);

#endif /* RINGKV_TESTS_SIM_INTERNAL_H */
