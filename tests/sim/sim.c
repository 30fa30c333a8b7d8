/*
 * sim.c - see sim.h.  Node life (start, crash, restart, pause) on the
 * simulated network, the environment each node sees, and the nemesis.
 * Clients and invariants are in sim_check.c.  The clock, the event queue,
 * the network (delay, loss, duplication, partitions, crashed and paused
 * endpoints) and the trace hash are tests/sim/simnet.h's, shared with the
 * cluster unit tests; node i is its endpoint i.
 *
 * Determinism (I8): one event at a time, the earliest first, ties by
 * insertion order; every random draw comes from the run's seed (the
 * network's stream, which the simulator shares, and one stream per node
 * for its env); nothing reads a real clock.  The trace hash folds in
 * every event run.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/storage/sim_disk.h"
#include "cluster/slot.h"
#include "common/alloc.h"
#include "common/error.h"
#include "proto/peer.h"
#include "sim_internal.h"

const char *sim_invariant_name(enum sim_invariant i)
{
    static const char *names[SIM_N_INVARIANTS] = {
        "I1 lost acknowledged write", "I2 convergence",  "I3 false sibling",
        "I4 sibling bound",           "I5 resurrection", "I6 ring agreement",
        "I7 delivery order",          "I8 determinism",  "I9 chunk lost",
        "I10 handoff stuck",          "I11 aae roots",   "I12 spoofed frame",
        "I13 forged state",           "I14 handoff gap", "I15 counter",
    };
    return i < SIM_N_INVARIANTS ? names[i] : "?";
}

void sim_config_default(struct sim_config *cfg)
{
    *cfg = (struct sim_config){
        .seed = 1,
        .n_nodes = 5,
        .n = 3,
        .r = 2,
        .w = 2,
        .sloppy = true,
        .lww = false,
        .n_clients = 3,
        .steps = 20000,
        .nemesis = true,
        .heal_ms = 60000,
        .chunks = true,
        .aae = true,
    };
}

void sim__violation(struct sim *s, enum sim_invariant inv, const char *fmt, ...)
{
    s->res->violations[inv]++;
    if (s->res->first[0] == '\0' || s->cfg.verbose >= 2) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (s->res->first[0] == '\0') {
            snprintf(s->res->first, sizeof(s->res->first), "%s: %s",
                     sim_invariant_name(inv), msg);
        }
        if (s->cfg.verbose >= 2) {
            printf("  violation %s: %s\n", sim_invariant_name(inv), msg);
        }
    }
}

uint64_t sim__rand(struct sim *s, uint64_t bound)
{
    return simnet_rand(s->net, bound);
}

void sim__key(int key, char buf[8])
{
    /* keys are "s0".."s7", "r0".."r7", "b0".."b3" and "c0".."c3" */
    if (key >= SIM_KEYS_ALL) {
        buf[0] = 'c';
        buf[1] = (char)('0' + ((key - SIM_KEYS_ALL) % 10));
        buf[2] = '\0';
        return;
    }
    bool set = key < SIM_KEYS_SET;
    bool big = key >= SIM_KEYS_SET + SIM_KEYS_REG;
    int i = set   ? key
            : big ? key - SIM_KEYS_SET - SIM_KEYS_REG
                  : key - SIM_KEYS_SET;
    buf[0] = set ? 's' : big ? 'b' : 'r';
    buf[1] = (char)('0' + (i % 10));
    buf[2] = '\0';
}

/* ---- the environment of one node ---------------------------------------- */

static struct sim *g_sim; /* the env callbacks' way back (one run at once) */

static uint64_t env_wall(struct rk_env *env)
{
    const struct sim_node *sn = env->data;
    int64_t w =
        (int64_t)(SIM_WALL_BASE_MS + simnet_now(g_sim->net)) + sn->skew_ms;
    return (uint64_t)w;
}

static uint64_t env_mono(struct rk_env *env)
{
    (void)env;
    return simnet_now(g_sim->net);
}

static uint64_t env_rand(struct rk_env *env)
{
    struct sim_node *sn = env->data;
    return rk_rng_next(&sn->rng);
}

/* ---- storage: executors, durability, engines ------------------------------
 */

static int ex_submit(struct rk_executor *ex, rk_work_cb work, void *data)
{
    struct sim_executor *x = ex->data;
    struct sim *s = x->s;
    for (int i = 0; i < SIM_JOBS; i++) {
        if (!x->jobs[i].used) {
            x->jobs[i].used = true;
            x->jobs[i].running = false;
            x->jobs[i].work = work;
            x->jobs[i].data = data;
            uint64_t span = x->lat_max_ms - x->lat_min_ms + 1;
            uint64_t at = sim_now(s) + x->lat_min_ms + sim__rand(s, span);
            /* bound to the node: a crash discards it */
            return simnet_schedule(s->net, at, SIM_EV_JOB, x->node, (uint64_t)i,
                                   x == &s->nodes[x->node].bg_ex);
        }
    }
    return RK_ENOMEM;
}

static int ex_cancel(struct rk_executor *ex, rk_work_cb work, void *data)
{
    struct sim_executor *x = ex->data;
    for (int i = 0; i < SIM_JOBS; i++) {
        if (x->jobs[i].used && !x->jobs[i].running && x->jobs[i].work == work &&
            x->jobs[i].data == data) {
            x->jobs[i].used = false;
            return RK_OK;
        }
    }
    return RK_EBUSY;
}

static void ex_init(struct sim *s,
                    int node,
                    struct sim_executor *x,
                    uint32_t lat_min_ms,
                    uint32_t lat_max_ms)
{
    memset(x, 0, sizeof(*x));
    x->ex = (struct rk_executor){
        .submit = ex_submit, .cancel = ex_cancel, .data = x};
    x->s = s;
    x->node = node;
    x->lat_min_ms = lat_min_ms;
    x->lat_max_ms = lat_max_ms;
}

static void run_job(struct sim *s, int node, uint64_t slot, bool bg)
{
    struct sim_node *sn = &s->nodes[node];
    struct sim_executor *x = bg ? &sn->bg_ex : &sn->sync_ex;
    if (!x->jobs[slot].used) {
        return; /* withdrawn (a crash discarded it already) */
    }
    x->jobs[slot].running = true;
    x->jobs[slot].work(x->jobs[slot].data);
    x->jobs[slot].used = false;
    x->jobs[slot].running = false;
    s->res->jobs++;
}

/* An engine's sync job made writes durable: tell the node in its own
 * event (the callback must not call into the engine). */
static void on_durable(void *data, uint64_t seq)
{
    (void)seq;
    struct sim_node *sn = data;
    (void)simnet_schedule(g_sim->net, sim_now(g_sim), SIM_EV_DURABLE, sn->idx,
                          0, 0);
}

/* Opens node i's engines: memory, or bitcask on its simulated disk
 * (recovering what the disk kept after a crash). */
static int open_engines(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    const char *dirs[2] = {"/sim/data", "/sim/hints"};
    struct engine **out[2] = {&sn->data, &sn->hints};
    for (int k = 0; k < 2; k++) {
        struct engine_opts eo;
        engine_opts_init(&eo);
        eo.max_value_len = 1u << 20;
        eo.env = &sn->env; /* seeded hashing: the same seed, the same run */
        if (k == 0) {
            eo.slot_fn = slot_of_key; /* as ringkvd: handoff folds slots */
        }
        char err[256];
        int rc;
        if (s->cfg.bitcask) {
            eo.dir = dirs[k];
            eo.sync_mode = ENGINE_SYNC_ALWAYS;
            eo.max_file_size = 256 * 1024; /* rollovers and merges happen */
            eo.vfs = &sn->disk->vfs;
            eo.sync_executor = &sn->sync_ex.ex;
            eo.bg_executor = &sn->bg_ex.ex;
            eo.durable_cb = on_durable;
            eo.durable_data = sn;
            rc = engine_open("bitcask", &eo, out[k], err, sizeof(err));
        } else {
            rc = engine_open("memory", &eo, out[k], err, sizeof(err));
        }
        if (rc != RK_OK) {
            sim__violation(s, SIM_I1_LOST_WRITE, "%s cannot open %s: %s",
                           sn->id, dirs[k], err);
            return rc;
        }
    }
    return RK_OK;
}

/* The power goes out under node i's storage: queued jobs are dropped, the
 * disk fails every call, the engines are freed (their final sync fails),
 * and what the disk keeps is decided by a crash model (sim_disk.h:
 * unsynced writes dropped, or a prefix kept and the next one torn). */
static void crash_storage(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    if (!s->cfg.bitcask) {
        return; /* the memory engine stands for a perfect disk */
    }
    sn->disk->dead = true;
    engine_close(sn->data);
    engine_close(sn->hints);
    sn->data = sn->hints = NULL;
    enum sim_crash_model m =
        sim__rand(s, 2) ? SIM_CRASH_PREFIX : SIM_CRASH_DROP;
    struct sim_disk *after =
        sim_disk_after_crash(sn->disk, m, rk_rng_next(simnet_rng(s->net)));
    sim_disk_destroy(sn->disk);
    sn->disk = after;
}

/* ---- nodes --------------------------------------------------------------- */

static void schedule_tick(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    if (sn->node == NULL) {
        return;
    }
    uint64_t d = node_next_deadline_ms(sn->node);
    uint64_t at = d <= sim_now(s) ? sim_now(s) + 1 : d;
    if (at >= simnet_timer(s->net, i)) {
        return; /* an earlier tick is already armed */
    }
    (void)simnet_arm(s->net, i, at);
}

static int node_by_id(const struct sim *s, const char *id, const char *host)
{
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        if ((id && id[0] && strcmp(s->nodes[i].id, id) == 0) ||
            ((!id || !id[0]) && host && strcmp(s->nodes[i].host, host) == 0)) {
            return (int)i;
        }
    }
    return -1;
}

/* A REPLY copied out of the action list (the list dies with the next
 * call into the node, which the client may make). */
struct reply_copy
{
    struct node_result r;
    unsigned char *obj;
};

void sim__after(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    if (sn->node == NULL) {
        return;
    }
    const struct node_action *acts;
    size_t n = node_actions(sn->node, &acts);
    struct reply_copy replies[64];
    size_t n_rep = 0;
    for (size_t k = 0; k < n; k++) {
        const struct node_action *a = &acts[k];
        switch (a->type) {
            case NODE_SEND: {
                int to = node_by_id(s, a->to, a->host);
                if (to >= 0 && to != i) {
                    (void)simnet_send(s->net, i, to, a->frame.ptr,
                                      a->frame.len);
                }
                break;
            }
            case NODE_REPLY:
                if (n_rep < 64) {
                    struct reply_copy *rc = &replies[n_rep++];
                    rc->r = a->result;
                    rc->obj = NULL;
                    if (a->result.object.len) {
                        rc->obj = rk_malloc(a->result.object.len);
                        if (rc->obj) {
                            memcpy(rc->obj, a->result.object.ptr,
                                   a->result.object.len);
                        }
                    }
                    rc->r.object.ptr = (const char *)rc->obj;
                    if (rc->obj == NULL) {
                        rc->r.object.len = 0;
                        rc->r.found = false;
                    }
                }
                break;
            case NODE_PERSIST:
                if (a->file == NODE_FILE_STATE) {
                    rk_buf_clear(&sn->state);
                    (void)rk_buf_append(&sn->state, a->bytes.ptr, a->bytes.len);
                } else if (a->file == NODE_FILE_HANDOFF) {
                    rk_buf_clear(&sn->handoff);
                    (void)rk_buf_append(&sn->handoff, a->bytes.ptr,
                                        a->bytes.len);
                } else {
                    sn->versioned = true;
                }
                break;
            case NODE_JOIN_DONE:
                sn->joined = true;
                break;
            case NODE_JOIN_FAILED:
                if (s->cfg.spares) {
                    sim__members_join_failed(s, i);
                }
                /* fall through */
            case NODE_LOG:
                if (a->event && a->text) {
                    sim__on_handoff_log(s, i, a->event, a->text);
                }
                if (s->cfg.verbose >= 2) {
                    printf("  %8" PRIu64 " %s log %s %s\n", sim_now(s), sn->id,
                           a->event ? a->event : "join_failed", a->text);
                }
                break;
        }
    }
    schedule_tick(s, i);
    for (size_t k = 0; k < n_rep; k++) {
        sim__on_reply(s, i, &replies[k].r);
        rk_free(replies[k].obj);
    }
}

static int start_node(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    if (sn->data == NULL && open_engines(s, i) != RK_OK) {
        return RK_EIO;
    }
    for (size_t p = 0; p < RING_MAX_SIZE; p++) {
        sn->ho_started[p] = UINT64_MAX;
    }
    struct node_config nc = {
        .node_id = sn->id,
        .mem =
            {
                .host = sn->host,
                .resp_port = 7379,
                .http_port = 7380,
                .peer_port = 7381,
                .cluster_name = "sim",
                .ring_size = 64,
                .n_val = s->cfg.n,
                .seed = rk_rng_next(&sn->rng),
            },
        .saved_state = sn->state.len ? sn->state.base : NULL,
        .saved_len = sn->state.len,
        .saved_handoff = sn->handoff.len ? sn->handoff.base : NULL,
        .saved_handoff_len = sn->handoff.len,
        .swim =
            {
                .incarnation = SIM_WALL_BASE_MS + sim_now(s),
                .seed = rk_rng_next(&sn->rng),
            },
        .actor = (rk_rng_next(&sn->rng) | 1) & ~(UINT64_C(1) << 63),
        .versioned = sn->versioned,
        .settings =
            {
                .quorum = {s->cfg.n, s->cfg.r, s->cfg.w},
                .sloppy_quorum = s->cfg.sloppy,
                .request_timeout_ms = 2000,
                .read_repair_wait_ms = 100,
                .read_repair_permille = 100,
                .speculative_retry_ms = 50,
                .handoff_drop_grace_ms = 5000,
                .sync_always = true,
                .lww = s->cfg.lww,
                .max_siblings = DVV_DEFAULT_SIBLINGS,
                .tombstone_grace_ms = 10000,
                .max_clock_skew_ms = 60000,
                .aae_enabled = s->cfg.aae,
                .aae_exchange_interval_ms = 500,
                .aae_concurrency = 2,
                .aae_repair_rate = 1000,
            },
        .data = sn->data,
        .hints = sn->hints,
        .env = &sn->env,
        .max_ops = 4096,
    };
    if (s->cfg.spares) {
        /* membership runs: each start draws its handoff limits (1..3
         * partitions at once; no rate limit, or 16..79 KiB/s: the
         * simulated partitions are small), so transfers are also slow
         * and throttled (runs without spares keep their traces) */
        nc.settings.handoff_concurrency =
            1 + (uint32_t)(rk_rng_next(&sn->rng) % 3);
        uint64_t r = rk_rng_next(&sn->rng);
        nc.settings.handoff_max_kbps = r % 2 ? 0 : 16 + (uint32_t)(r / 2 % 64);
        if (getenv("SIM_NORATE")) {
            nc.settings.handoff_max_kbps = 0;
        }
        if (getenv("SIM_KBPS")) {
            /* every node at this limit: a tier of scripts/sim.sh runs
             * throttled transfers whose verify FETCHes wait for tokens */
            nc.settings.handoff_max_kbps = (uint32_t)atoi(getenv("SIM_KBPS"));
        }
        if (getenv("SIM_NOCONC")) {
            nc.settings.handoff_concurrency = 2;
        }
        if (getenv("SIM_SHOW"))
            fprintf(stderr, "%s start conc %u kbps %u\n", sn->id,
                    nc.settings.handoff_concurrency,
                    nc.settings.handoff_max_kbps);
    }
    char err[256] = "";
    int rc = node_create(&nc, &sn->node, err, sizeof(err));
    if (rc != RK_OK) {
        fprintf(stderr, "sim: node %s: %s\n", sn->id, err);
        return rc;
    }
    simnet_set_down(s->net, i, false); /* a new incarnation */
    memset(sn->conn_down, 0, sizeof(sn->conn_down));
    sim__after(s, i);
    return RK_OK;
}

static void crash_node(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    if (sn->node == NULL) {
        return;
    }
    node_destroy(sn->node); /* volatile state gone; engines are the disk */
    sn->node = NULL;
    /* its messages in flight, timer and queued storage jobs never run */
    simnet_set_down(s->net, i, true);
    crash_storage(s, i);
    s->res->crashes++;
    /* its connections break: the others notice at once (a reset) */
    for (size_t j = 0; j < s->cfg.n_nodes; j++) {
        struct sim_node *o = &s->nodes[j];
        if ((int)j != i && o->node && !o->conn_down[i]) {
            o->conn_down[i] = true;
            node_on_peer_down(o->node, sn->id, strlen(sn->id));
            sim__after(s, (int)j);
        }
    }
}

/* Every 97th frame that names its sender (GOSSIP, PING, PING_REQ, JOIN,
 * REPLACE) is delivered once more as if a third node's authenticated
 * connection had carried it (issue 15: a peer with the cluster secret that
 * speaks for another node).  I12: the node drops it (peer_spoofed counts
 * it) and nothing else happens, so no action is left to perform.  A
 * counter, not the random stream, picks the frames: the nemesis and the
 * workload see the same random numbers as without it. */
static void spoof(struct sim *s, int ti, int fi, const struct peer_msg *m)
{
    struct sim_node *to = &s->nodes[ti];
    bool named = m->type == PEER_GOSSIP || m->type == PEER_PING ||
                 m->type == PEER_PING_REQ || m->type == PEER_JOIN ||
                 m->type == PEER_REPLACE;
    if (!named || to->node == NULL || s->cfg.n_nodes < 3 ||
        ++s->named_frames % 97 != 0) {
        return;
    }
    int k = fi;
    for (size_t step = 0; step < s->cfg.n_nodes; step++) {
        k = (k + 1) % (int)s->cfg.n_nodes;
        if (k != fi && k != ti) {
            break;
        }
    }
    const char *liar = s->nodes[k].id;
    uint64_t before = node_stats(to->node)->peer_spoofed;
    node_on_message(to->node, liar, strlen(liar), m, sim_now(s));
    s->res->spoofed++;
    const struct node_action *acts;
    size_t n = node_actions(to->node, &acts);
    bool quiet = true; /* nothing but its (rate-limited) log line */
    for (size_t i = 0; i < n; i++) {
        quiet = quiet && acts[i].type == NODE_LOG;
    }
    if (node_stats(to->node)->peer_spoofed != before + 1 || !quiet) {
        sim__violation(s, SIM_I12_SPOOFED,
                       "%s took a %s from %s that claimed to be %s's", to->id,
                       peer_type_name(m->type), liar, s->nodes[fi].id);
        sim__after(s, ti);
    }
}

/* Every 89th GOSSIP to a member is delivered once more with its state's
 * version set MEMBERSHIP_MAX_VERSION_STEP + 1 above the member's own (a
 * peer with the cluster secret forging a state that would win every
 * comparison).  I13: the member refuses it, its version stays, and
 * membership_gossip_refused counts it.  A counter picks the frames, so
 * the random stream is the same as without it. */
static void forge_state(struct sim *s, int ti, int fi, const struct peer_msg *m)
{
    struct sim_node *to = &s->nodes[ti];
    if (m->type != PEER_GOSSIP || to->node == NULL ||
        m->gossip.state.len < 13 || ++s->gossip_frames % 89 != 0) {
        return;
    }
    struct membership *mem = node_membership(to->node);
    if (membership_phase(mem) != MEMBERSHIP_MEMBER) {
        return;
    }
    uint64_t v = membership_version(mem);
    uint64_t fv = v + MEMBERSHIP_MAX_VERSION_STEP + 1;
    unsigned char *b = malloc(m->gossip.state.len);
    if (b == NULL) {
        return;
    }
    memcpy(b, m->gossip.state.ptr, m->gossip.state.len);
    for (int k = 0; k < 8; k++) {
        b[5 + k] = (unsigned char)(fv >> (8 * k)); /* the version field */
    }
    struct peer_msg f = *m;
    f.gossip.state = (struct peer_bytes){(const char *)b, m->gossip.state.len};
    f.gossip.state_version = fv;
    uint64_t before = membership_gossip_refused(mem);
    node_on_message(to->node, s->nodes[fi].id, strlen(s->nodes[fi].id), &f,
                    sim_now(s));
    free(b);
    s->res->forged_states++;
    if (membership_version(mem) != v ||
        membership_gossip_refused(mem) != before + 1) {
        sim__violation(s, SIM_I13_FORGED_STATE,
                       "%s adopted a state of version %" PRIu64
                       " gossiped by %s at its version %" PRIu64,
                       to->id, fv, s->nodes[fi].id, v);
    }
    sim__after(s, ti);
}

/* A frame reached node `ti` from node `fi` (the network checked that
 * both are still the incarnations that sent and were sent to). */
static void on_frame(void *data, int ti, int fi, const void *frame, size_t len)
{
    struct sim *s = data;
    struct sim_node *to = &s->nodes[ti];
    struct sim_node *from = &s->nodes[fi];
    if (to->conn_down[fi]) {
        to->conn_down[fi] = false; /* reconnected */
        node_on_peer_up(to->node, from->id, strlen(from->id), sim_now(s));
        sim__after(s, ti);
    }
    struct peer_msg m;
    int rc = simnet_decode(s->net, frame, len, &m);
    if (rc != RK_OK) {
        sim__violation(s, SIM_I6_RING, "a frame %s -> %s did not decode: %s",
                       from->id, to->id, rk_errname(rc));
        return;
    }
    node_on_message(to->node, from->id, strlen(from->id), &m, sim_now(s));
    sim__after(s, ti);
    spoof(s, ti, fi, &m);
    forge_state(s, ti, fi, &m);
}

/* Node i's timer (node_next_deadline_ms) fired. */
static void on_tick(void *data, int i)
{
    struct sim *s = data;
    struct sim_node *sn = &s->nodes[i];
    (void)engine_tick(sn->data); /* ringkvd's housekeeping */
    node_on_tick(sn->node, sim_now(s));
    sim__after(s, i);
}

/* ---- the nemesis -----------------------------------------------------------
 */

/* Sets every link to the nemesis' current loss, duplication, delay. */
static void apply_link(struct sim *s)
{
    simnet_set_link(s->net, SIMNET_ALL, SIMNET_ALL, &s->link);
}

static void heal_network(struct sim *s)
{
    simnet_block(s->net, SIMNET_ALL, SIMNET_ALL, false);
    s->link = (struct simnet_link){.delay_min_ms = 1, .delay_max_ms = 5};
    apply_link(s);
}

size_t sim__crashed(const struct sim *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        k += s->nodes[i].node == NULL;
    }
    return k;
}

static void nemesis(struct sim *s)
{
    size_t m = s->cfg.n_nodes;
    int pick = (int)sim__rand(s, m);
    uint64_t base = s->cfg.bitcask ? 13 : 11;
    uint64_t what =
        sim__rand(s, base + (s->cfg.spares ? SIM_MEMBER_ACTIONS : 0));
    const char *did = NULL;
    char line[128];
    if (what >= base) {
        did = sim__members_nemesis(s, what - base, line, sizeof(line));
    }
    switch (what < base ? what : UINT64_MAX) {
        case 0: { /* halves */
            uint64_t side = sim__rand(s, (1u << m) - 2) + 1;
            for (size_t a = 0; a < m; a++) {
                for (size_t b = 0; b < m; b++) {
                    simnet_block(s->net, (int)a, (int)b,
                                 ((side >> a) & 1) != ((side >> b) & 1));
                }
            }
            s->res->partitions++;
            snprintf(line, sizeof(line), "partition halves mask=%" PRIx64,
                     side);
            did = line;
            break;
        }
        case 1: /* isolate one */
            simnet_block(s->net, SIMNET_ALL, SIMNET_ALL, false);
            simnet_block(s->net, pick, SIMNET_ALL, true);
            simnet_block(s->net, SIMNET_ALL, pick, true);
            simnet_block(s->net, pick, pick, false);
            s->res->partitions++;
            snprintf(line, sizeof(line), "isolate %s", s->nodes[pick].id);
            did = line;
            break;
        case 2: { /* one-way: pick hears nobody */
            simnet_block(s->net, SIMNET_ALL, SIMNET_ALL, false);
            simnet_block(s->net, SIMNET_ALL, pick, true);
            simnet_block(s->net, pick, pick, false);
            s->res->partitions++;
            snprintf(line, sizeof(line), "one-way into %s", s->nodes[pick].id);
            did = line;
            break;
        }
        case 3: { /* majorities ring: each node sees its k nearest
                     neighbours on each side, a majority, but no two
                     nodes the same majority (Jepsen's
                     partition-majorities-ring) */
            size_t k = (m / 2 + 1) / 2;
            for (size_t a = 0; a < m; a++) {
                for (size_t b = 0; b < m; b++) {
                    size_t d = a > b ? a - b : b - a;
                    d = d < m - d ? d : m - d;
                    simnet_block(s->net, (int)a, (int)b, d > k);
                }
            }
            s->res->partitions++;
            did = "majorities ring";
            break;
        }
        case 4:
            simnet_block(s->net, SIMNET_ALL, SIMNET_ALL, false);
            did = "heal partitions";
            break;
        case 5: /* crash (at most two down at once) */
            if (s->nodes[pick].node && sim__crashed(s) < 2 && m > 2) {
                crash_node(s, pick);
                (void)simnet_schedule(s->net,
                                      sim_now(s) + 1000 + sim__rand(s, 9000),
                                      SIM_EV_RESTART, -1, (uint64_t)pick, 0);
                snprintf(line, sizeof(line), "crash %s", s->nodes[pick].id);
                did = line;
            }
            break;
        case 6: /* pause 1..15 s */
            if (s->nodes[pick].node && !simnet_is_paused(s->net, pick)) {
                simnet_pause(s->net, pick, true);
                (void)simnet_schedule(s->net,
                                      sim_now(s) + 1000 + sim__rand(s, 14000),
                                      SIM_EV_RESUME, -1, (uint64_t)pick,
                                      simnet_incarnation(s->net, pick));
                s->res->pauses++;
                snprintf(line, sizeof(line), "pause %s", s->nodes[pick].id);
                did = line;
            }
            break;
        case 7: /* wall clock jump of up to 5 min either way */
            s->nodes[pick].skew_ms = (int64_t)sim__rand(s, 600001) - 300000;
            snprintf(line, sizeof(line), "clock %s %+" PRId64 " ms",
                     s->nodes[pick].id, s->nodes[pick].skew_ms);
            did = line;
            break;
        case 8:
            s->link.loss_pct =
                s->link.loss_pct ? 0 : (uint32_t)sim__rand(s, 31);
            apply_link(s);
            snprintf(line, sizeof(line), "loss %u%%", s->link.loss_pct);
            did = line;
            break;
        case 9:
            s->link.delay_min_ms = 1;
            s->link.delay_max_ms =
                s->link.delay_max_ms > 5 ? 5 : 1 + (uint32_t)sim__rand(s, 500);
            apply_link(s);
            snprintf(line, sizeof(line), "delay 1..%u ms",
                     s->link.delay_max_ms);
            did = line;
            break;
        case 10:
            s->link.dup_pct = s->link.dup_pct ? 0 : 10;
            apply_link(s);
            snprintf(line, sizeof(line), "duplicate %u%%", s->link.dup_pct);
            did = line;
            break;
        case 11: /* a disk error: one of the next persistence points fails
                    with EIO, the engine turns read-only (its writes are
                    refused), and the operator restarts the node later */
            if (s->nodes[pick].node && s->nodes[pick].disk) {
                struct sim_disk *d = s->nodes[pick].disk;
                d->fail_at = d->points + 1 + (long)sim__rand(s, 3);
                s->res->disk_faults++;
                (void)simnet_schedule(s->net,
                                      sim_now(s) + 2000 + sim__rand(s, 8000),
                                      SIM_EV_REBOOT, -1, (uint64_t)pick,
                                      simnet_incarnation(s->net, pick));
                snprintf(line, sizeof(line), "disk error on %s",
                         s->nodes[pick].id);
                did = line;
            }
            break;
        case 12: /* a full disk (issue 12 item 3): writes fail with
                    ENOSPC, the engines turn read-only, the node is
                    degraded (writes go around it); space returns 1-8 s
                    later and the engines recover in place */
            if (s->nodes[pick].node && s->nodes[pick].disk &&
                !s->nodes[pick].disk->full) {
                sim_disk_full(s, pick, true);
                s->res->disks_full++;
                (void)simnet_schedule(s->net,
                                      sim_now(s) + 1000 + sim__rand(s, 7000),
                                      SIM_EV_SPACE, -1, (uint64_t)pick,
                                      simnet_incarnation(s->net, pick));
                snprintf(line, sizeof(line), "disk full on %s",
                         s->nodes[pick].id);
                did = line;
            }
            break;
    }
    if (did && s->cfg.verbose >= 1) {
        printf("  %8" PRIu64 " nemesis: %s\n", sim_now(s), did);
    }
    (void)simnet_schedule(s->net, sim_now(s) + 500 + sim__rand(s, 4500),
                          SIM_EV_NEMESIS, -1, 0, 0);
}

/* ---- the loop: the simulator's own events (simnet runs them) ----------------
 */

static void on_event(void *data, int type, int ep, uint64_t a, uint64_t b)
{
    struct sim *s = data;
    int node = (int)a;
    switch (type) {
        case SIM_EV_CLIENT:
            sim__client_event(s, (int)a);
            break;
        case SIM_EV_CLIENT_TIMEOUT:
            sim__client_timeout(s, (int)a, b);
            break;
        case SIM_EV_NEMESIS:
            if (s->cfg.nemesis && s->clients_on) {
                nemesis(s);
            }
            break;
        case SIM_EV_RESTART:
            if (s->nodes[node].node == NULL && !s->nodes[node].stay_down) {
                (void)start_node(s, node);
                if (s->cfg.verbose >= 1) {
                    printf("  %8" PRIu64 " restart %s\n", sim_now(s),
                           s->nodes[node].id);
                }
            }
            break;
        case SIM_EV_RESUME:
            if (simnet_incarnation(s->net, node) == b) {
                simnet_pause(s->net, node, false);
            }
            break;
        case SIM_EV_JOB:
            run_job(s, ep, a, b != 0);
            break;
        case SIM_EV_REBOOT:
            if (s->nodes[node].node && simnet_incarnation(s->net, node) == b) {
                crash_node(s, node);
                s->res->crashes--; /* counted as a disk fault */
                (void)simnet_schedule(s->net, sim_now(s) + 500, SIM_EV_RESTART,
                                      -1, a, 0);
            }
            break;
        case SIM_EV_SPACE:
            if (s->nodes[node].node && simnet_incarnation(s->net, node) == b) {
                sim_disk_full(s, node, false);
            }
            break;
        case SIM_EV_DURABLE:
            node_on_durable(s->nodes[ep].node, sim_now(s));
            sim__after(s, ep);
            break;
        case SIM_EV_MEMBERS:
            sim__members_event(s);
            (void)simnet_schedule(s->net, sim_now(s) + 1000, SIM_EV_MEMBERS, -1,
                                  0, 0);
            break;
    }
}

void sim__run_until(struct sim *s, uint64_t until, size_t max_events)
{
    (void)simnet_run(s->net, until, max_events);
}

static bool all_agree(struct sim *s)
{
    uint64_t v = 0;
    size_t members = sim__initial_members(s);
    for (size_t i = 0; i < members; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (sn->node == NULL ||
            membership_phase(node_membership(sn->node)) != MEMBERSHIP_MEMBER ||
            node_valid_members(sn->node) != members || !node_agrees(sn->node)) {
            return false;
        }
        uint64_t vi = membership_version(node_membership(sn->node));
        if (i > 0 && vi != v) {
            return false;
        }
        v = vi;
    }
    return true;
}

/* Forms the cluster: n1 creates it, the others join through it one by
 * one, until every node agrees on the ring. */
static int form_cluster(struct sim *s)
{
    int rc = node_create_cluster(s->nodes[0].node, sim_now(s));
    if (rc != RK_OK) {
        return rc;
    }
    s->nodes[0].joined = true;
    sim__after(s, 0);
    for (size_t i = 1; i < sim__initial_members(s); i++) {
        rc = node_join(s->nodes[i].node, s->nodes[0].host, 7381, sim_now(s));
        if (rc != RK_OK) {
            return rc;
        }
        sim__after(s, (int)i);
        uint64_t limit = sim_now(s) + 30000;
        while (!s->nodes[i].joined && sim_now(s) < limit &&
               simnet_next_at(s->net) != UINT64_MAX) {
            sim__run_until(s, sim_now(s) + 10, SIZE_MAX);
        }
        if (!s->nodes[i].joined) {
            return RK_ETIMEDOUT;
        }
    }
    uint64_t limit = sim_now(s) + 60000;
    while (!all_agree(s) && sim_now(s) < limit) {
        sim__run_until(s, sim_now(s) + 50, SIZE_MAX);
    }
    return all_agree(s) ? RK_OK : RK_ETIMEDOUT;
}

static void heal_all(struct sim *s)
{
    heal_network(s);
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        sn->skew_ms = 0;
        simnet_pause(s->net, (int)i, false);
        sn->stay_down = false; /* a removed node still down comes back */
        if (sn->node == NULL) {
            (void)start_node(s, (int)i);
        }
    }
}

int sim_create(const struct sim_config *cfg,
               struct sim_result *res,
               struct sim **out)
{
    if (cfg->n_nodes < 1 || cfg->n_nodes > SIM_MAX_NODES ||
        cfg->spares >= cfg->n_nodes || cfg->n_clients < 1 ||
        cfg->n_clients > SIM_MAX_CLIENTS || g_sim != NULL) {
        return RK_EINVAL;
    }
    struct sim *s = rk_calloc(1, sizeof(*s));
    if (s == NULL) {
        return RK_ENOMEM;
    }
    memset(res, 0, sizeof(*res));
    g_sim = s;
    s->cfg = *cfg;
    s->res = res;
    int rc = simnet_create(cfg->seed, cfg->n_nodes, &s->net);
    if (rc == RK_OK) {
        simnet_set_drop_to_down(s->net, cfg->drop_to_down);
    }
    if (rc == RK_OK) {
        simnet_on_event(s->net, on_event, s);
        heal_network(s);
    }
    for (size_t i = 0; rc == RK_OK && i < cfg->n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        sn->idx = (int)i;
        sn->spare = i >= cfg->n_nodes - cfg->spares;
        simnet_endpoint(s->net, (int)i, on_frame, on_tick, s);
        simnet_set_down(s->net, (int)i, true); /* until it starts */
        snprintf(sn->id, sizeof(sn->id), "n%u", (unsigned)(i + 1) % 100);
        snprintf(sn->host, sizeof(sn->host), "sim%u", (unsigned)(i + 1) % 100);
        rk_buf_init(&sn->state);
        rk_buf_init(&sn->handoff);
        rk_rng_seed(&sn->rng, cfg->seed * 1000003u + i);
        sn->env = (struct rk_env){env_wall, env_mono, env_rand, sn};
        ex_init(s, (int)i, &sn->sync_ex, 1, 5); /* an fdatasync */
        ex_init(s, (int)i, &sn->bg_ex, 5, 50);  /* merges, hint files */
        if (cfg->bitcask) {
            sn->disk = sim_disk_create();
        }
        rc = start_node(s, (int)i);
    }
    if (rc != RK_OK) {
        sim_destroy(s);
        return rc;
    }
    *out = s;
    return RK_OK;
}

int sim_form(struct sim *s)
{
    int rc = form_cluster(s);
    s->setup_done = rc == RK_OK;
    return rc;
}

void sim_destroy(struct sim *s)
{
    if (s == NULL) {
        return;
    }
    if (s->net) {
        struct simnet_stats st = simnet_stats(s->net);
        s->res->trace_hash = simnet_trace(s->net);
        s->res->sim_ms = simnet_now(s->net);
        s->res->messages = st.sent;
        s->res->dropped = st.dropped;
        s->res->events = st.events;
    }
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        node_destroy(sn->node);
        if (sn->data) {
            engine_close(sn->data);
        }
        if (sn->hints) {
            engine_close(sn->hints);
        }
        if (sn->disk) {
            sim_disk_destroy(sn->disk);
        }
        rk_buf_fini(&sn->state);
        rk_buf_fini(&sn->handoff);
    }
    simnet_destroy(s->net); /* after the engines: closing may queue jobs */
    sim__hist_free(s);
    g_sim = NULL;
    rk_free(s);
}

int sim_run(const struct sim_config *cfg, struct sim_result *out)
{
    struct sim *s = NULL;
    int rc = sim_create(cfg, out, &s);
    if (rc != RK_OK) {
        return rc;
    }
    rc = sim_form(s);
    if (rc != RK_OK) {
        sim__violation(s, SIM_I6_RING, "the cluster did not form: %s",
                       rk_errname(rc));
    } else {
        s->clients_on = true;
        for (size_t c = 0; c < cfg->n_clients; c++) {
            s->clients[c].idx = (int)c;
            s->clients[c].hist = -1;
            (void)simnet_schedule(s->net, sim_now(s) + 1 + c, SIM_EV_CLIENT, -1,
                                  c, 0);
        }
        (void)simnet_schedule(s->net, sim_now(s) + 1000, SIM_EV_NEMESIS, -1, 0,
                              0);
        if (cfg->spares) {
            (void)simnet_schedule(s->net, sim_now(s) + 1000, SIM_EV_MEMBERS, -1,
                                  0, 0);
        }
        sim__run_until(s, UINT64_MAX, cfg->steps);
        s->clients_on = false;
        heal_all(s);
        sim__run_until(s, sim_now(s) + cfg->heal_ms, SIZE_MAX);
        sim__count_converged(s);
        if (!cfg->skip_repair) {
            sim__repair_pass(s);
        }
        sim__run_until(s, sim_now(s) + 5000, SIZE_MAX);
        if (cfg->aae) {
            /* I11: anti-entropy brings every replica's trees to equal
             * roots (reaping may still be deleting tombstones one
             * replica at a time: wait for that, within a bound) */
            uint64_t t0 = sim_now(s);
            while (!sim__aae_settled(s) && sim_now(s) < t0 + 60000) {
                sim__run_until(s, sim_now(s) + 500, SIZE_MAX);
            }
            s->res->aae_settle_ms = sim_now(s) - t0;
        }
        sim__check(s);
    }
    sim_destroy(s);
    return RK_OK;
}

/* ---- the fixture API (sim.h) --------------------------------------------- */

uint64_t sim_now(const struct sim *s)
{
    return simnet_now(s->net);
}

void sim_run_for(struct sim *s, uint64_t ms)
{
    sim__run_until(s, sim_now(s) + ms, SIZE_MAX);
}

bool sim_run_until(struct sim *s,
                   bool (*pred)(struct sim *s, void *arg),
                   void *arg,
                   uint64_t max_ms)
{
    uint64_t end = sim_now(s) + max_ms;
    for (;;) {
        if (pred(s, arg)) {
            return true;
        }
        if (!simnet_step(s->net, end)) { /* exactly one event */
            return pred(s, arg); /* none left before `end` (now the time) */
        }
    }
}

struct node *sim_node(struct sim *s, int i)
{
    return s->nodes[i].node;
}

struct engine *sim_data(struct sim *s, int i)
{
    return s->nodes[i].data;
}

const char *sim_node_id(const struct sim *s, int i)
{
    return s->nodes[i].id;
}

void sim_crash(struct sim *s, int i)
{
    crash_node(s, i);
}

void sim__crash_node(struct sim *s, int i)
{
    crash_node(s, i);
}

int sim__start_node(struct sim *s, int i)
{
    return start_node(s, i);
}

void sim_disk_full(struct sim *s, int i, bool full)
{
    struct sim_node *sn = &s->nodes[i];
    if (sn->disk == NULL) {
        return;
    }
    pthread_mutex_lock(&sn->disk->mu);
    sn->disk->full = full;
    pthread_mutex_unlock(&sn->disk->mu);
    if (full || sn->node == NULL) {
        return;
    }
    /* Space returned: ringkvd's driver part (server.c recover_storage):
     * what waits for a write made before the failure is refused, then
     * the engines leave the read-only state in place. */
    node_on_durable(sn->node, sim_now(s));
    sim__after(s, i);
    (void)engine_recover(sn->data, NULL, 0);
    (void)engine_recover(sn->hints, NULL, 0);
}

int sim_restart(struct sim *s, int i)
{
    return s->nodes[i].node ? RK_OK : start_node(s, i);
}

void sim_block(struct sim *s, int from, int to, bool blocked)
{
    simnet_block(s->net, from, to, blocked);
}

void sim_heal(struct sim *s)
{
    heal_network(s);
}

void sim_after(struct sim *s, int i)
{
    sim__after(s, i);
}
