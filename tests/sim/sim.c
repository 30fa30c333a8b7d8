/*
 * sim.c - see sim.h.  The event loop, the simulated network, node life
 * (start, crash, restart, pause), the environment each node sees, and the
 * nemesis.  Clients and invariants are in sim_check.c.
 *
 * Determinism (I8): one event at a time, the earliest first, ties by
 * insertion order; every random draw comes from the run's seed (the
 * simulator's stream, and one stream per node for its env); nothing reads
 * a real clock.  The trace hash folds in every processed event.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../unit/storage/sim_disk.h"
#include "common/alloc.h"
#include "common/error.h"
#include "proto/peer.h"
#include "sim_internal.h"

const char *sim_invariant_name(enum sim_invariant i)
{
    static const char *names[SIM_N_INVARIANTS] = {
        "I1 lost acknowledged write", "I2 convergence",  "I3 false sibling",
        "I4 sibling bound",           "I5 resurrection", "I6 ring agreement",
        "I7 delivery order",          "I8 determinism",
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
    };
}

void sim__violation(struct sim *s, enum sim_invariant inv, const char *fmt, ...)
{
    s->res->violations[inv]++;
    if (s->res->first[0] == '\0') {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(s->res->first, sizeof(s->res->first), "%s: %s",
                 sim_invariant_name(inv), msg);
    }
}

uint64_t sim__rand(struct sim *s, uint64_t bound)
{
    return rk_rng_below(&s->rng, bound);
}

void sim__key(int key, char buf[8])
{
    /* keys are "s0".."s7" and "r0".."r7" */
    bool set = key < SIM_KEYS_SET;
    int i = set ? key : key - SIM_KEYS_SET;
    buf[0] = set ? 's' : 'r';
    buf[1] = (char)('0' + (i % 10));
    buf[2] = '\0';
}

/* ---- the event heap ------------------------------------------------------ */

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

void sim__push(struct sim *s, struct sim_event ev)
{
    if (s->n_heap == s->cap_heap) {
        size_t cap = s->cap_heap ? s->cap_heap * 2 : 1024;
        struct sim_event *h = rk_realloc(s->heap, cap * sizeof(*h));
        if (h == NULL) {
            rk_free(ev.frame);
            return;
        }
        s->heap = h;
        s->cap_heap = cap;
    }
    ev.seq = ++s->seq;
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(&ev, &s->heap[p])) {
            break;
        }
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = ev;
}

static struct sim_event pop(struct sim *s)
{
    struct sim_event top = s->heap[0];
    struct sim_event last = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_event *best = &last;
        if (l < s->n_heap && ev_before(&s->heap[l], best)) {
            m = l;
            best = &s->heap[l];
        }
        if (r < s->n_heap && ev_before(&s->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->n_heap > 0) {
        s->heap[i] = last;
    }
    return top;
}

/* ---- the environment of one node ---------------------------------------- */

static struct sim *g_sim; /* the env callbacks' way back (one run at once) */

static uint64_t env_wall(struct rk_env *env)
{
    const struct sim_node *sn = env->data;
    int64_t w = (int64_t)(SIM_WALL_BASE_MS + g_sim->now) + sn->skew_ms;
    return (uint64_t)w;
}

static uint64_t env_mono(struct rk_env *env)
{
    (void)env;
    return g_sim->now;
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
            sim__push(s, (struct sim_event){
                             .at = s->now + x->lat_min_ms + sim__rand(s, span),
                             .type = SIM_EV_JOB,
                             .node = x->node,
                             .from = i,
                             .gen = s->nodes[x->node].gen,
                             .from_gen = x == &s->nodes[x->node].bg_ex,
                         });
            return RK_OK;
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

static void run_job(struct sim *s, const struct sim_event *ev)
{
    struct sim_node *sn = &s->nodes[ev->node];
    struct sim_executor *x = ev->from_gen ? &sn->bg_ex : &sn->sync_ex;
    if (ev->gen != sn->gen || !x->jobs[ev->from].used) {
        return; /* discarded by a crash, or withdrawn */
    }
    x->jobs[ev->from].running = true;
    x->jobs[ev->from].work(x->jobs[ev->from].data);
    x->jobs[ev->from].used = false;
    x->jobs[ev->from].running = false;
    s->res->jobs++;
}

/* An engine's sync job made writes durable: tell the node in its own
 * event (the callback must not call into the engine). */
static void on_durable(void *data, uint64_t seq)
{
    (void)seq;
    struct sim_node *sn = data;
    sim__push(g_sim, (struct sim_event){.at = g_sim->now,
                                        .type = SIM_EV_DURABLE,
                                        .node = sn->idx,
                                        .gen = sn->gen});
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
        sim_disk_after_crash(sn->disk, m, rk_rng_next(&s->rng));
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
    uint64_t at = d <= s->now ? s->now + 1 : d;
    if (at >= sn->tick_at) {
        return; /* an earlier tick is already queued */
    }
    sn->tick_at = at;
    sn->tick_gen++;
    sim__push(
        s, (struct sim_event){
               .at = at, .type = SIM_EV_TICK, .node = i, .gen = sn->tick_gen});
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

static void send_frame(struct sim *s,
                       int from,
                       int to,
                       const void *f,
                       size_t len)
{
    s->res->messages++;
    if (s->block[from][to] ||
        (s->loss_pct && sim__rand(s, 100) < s->loss_pct)) {
        s->res->dropped++;
        return;
    }
    int copies = s->dup_pct && sim__rand(s, 100) < s->dup_pct ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        unsigned char *copy = rk_malloc(len);
        if (copy == NULL) {
            return;
        }
        memcpy(copy, f, len);
        uint64_t span = s->delay_max_ms - s->delay_min_ms + 1;
        uint64_t delay = s->delay_min_ms + sim__rand(s, span);
        sim__push(s, (struct sim_event){.at = s->now + delay,
                                        .type = SIM_EV_DELIVER,
                                        .node = to,
                                        .from = from,
                                        .gen = s->nodes[to].gen,
                                        .from_gen = s->nodes[from].gen,
                                        .frame = copy,
                                        .len = len});
    }
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
                    send_frame(s, i, to, a->frame.ptr, a->frame.len);
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
                } else {
                    sn->versioned = true;
                }
                break;
            case NODE_JOIN_DONE:
                sn->joined = true;
                break;
            case NODE_JOIN_FAILED:
            case NODE_LOG:
                if (s->cfg.verbose >= 2) {
                    printf("  %8" PRIu64 " %s log %s %s\n", s->now, sn->id,
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
        .swim =
            {
                .incarnation = SIM_WALL_BASE_MS + s->now,
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
                .sync_always = true,
                .lww = s->cfg.lww,
                .max_siblings = DVV_DEFAULT_SIBLINGS,
                .tombstone_grace_ms = 10000,
                .max_clock_skew_ms = 60000,
            },
        .data = sn->data,
        .hints = sn->hints,
        .env = &sn->env,
        .max_ops = 4096,
    };
    char err[256] = "";
    int rc = node_create(&nc, &sn->node, err, sizeof(err));
    if (rc != RK_OK) {
        fprintf(stderr, "sim: node %s: %s\n", sn->id, err);
        return rc;
    }
    sn->tick_at = UINT64_MAX;
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
    sn->gen++; /* its queued storage jobs never run */
    crash_storage(s, i);
    sn->paused = false;
    sn->tick_at = UINT64_MAX;
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

static void deliver(struct sim *s, struct sim_event *ev)
{
    struct sim_node *to = &s->nodes[ev->node];
    struct sim_node *from = &s->nodes[ev->from];
    if (to->node == NULL || to->gen != ev->gen || from->gen != ev->from_gen) {
        s->res->dropped++; /* a connection of a dead incarnation */
        return;
    }
    if (to->conn_down[ev->from]) {
        to->conn_down[ev->from] = false; /* reconnected */
        node_on_peer_up(to->node, from->id, strlen(from->id), s->now);
        sim__after(s, ev->node);
    }
    size_t used = 0;
    struct peer_msg m;
    int rc =
        peer_decoder_feed(s->dec, (const char *)ev->frame, ev->len, &used, &m);
    if (rc != RK_OK || used != ev->len) {
        sim__violation(s, SIM_I6_RING, "a frame %s -> %s did not decode: %s",
                       from->id, to->id, rk_errname(rc));
        peer_decoder_destroy(s->dec);
        s->dec = NULL;
        (void)peer_decoder_create(0, &s->dec);
        return;
    }
    node_on_message(to->node, from->id, strlen(from->id), &m, s->now);
    sim__after(s, ev->node);
}

/* ---- the nemesis -----------------------------------------------------------
 */

static void heal_network(struct sim *s)
{
    memset(s->block, 0, sizeof(s->block));
    s->loss_pct = 0;
    s->dup_pct = 0;
    s->delay_min_ms = 1;
    s->delay_max_ms = 5;
}

static size_t crashed(const struct sim *s)
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
    uint64_t what = sim__rand(s, s->cfg.bitcask ? 13 : 11);
    const char *did = NULL;
    char line[128];
    switch (what) {
        case 0: { /* halves */
            memset(s->block, 0, sizeof(s->block));
            uint64_t side = sim__rand(s, (1u << m) - 2) + 1;
            for (size_t a = 0; a < m; a++) {
                for (size_t b = 0; b < m; b++) {
                    s->block[a][b] = ((side >> a) & 1) != ((side >> b) & 1);
                }
            }
            s->res->partitions++;
            snprintf(line, sizeof(line), "partition halves mask=%" PRIx64,
                     side);
            did = line;
            break;
        }
        case 1: /* isolate one */
            memset(s->block, 0, sizeof(s->block));
            for (size_t b = 0; b < m; b++) {
                s->block[pick][b] = s->block[b][pick] = (int)b != pick;
            }
            s->res->partitions++;
            snprintf(line, sizeof(line), "isolate %s", s->nodes[pick].id);
            did = line;
            break;
        case 2: { /* one-way: pick hears nobody */
            memset(s->block, 0, sizeof(s->block));
            for (size_t b = 0; b < m; b++) {
                s->block[b][pick] = (int)b != pick;
            }
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
                    s->block[a][b] = d > k;
                }
            }
            s->res->partitions++;
            did = "majorities ring";
            break;
        }
        case 4:
            memset(s->block, 0, sizeof(s->block));
            did = "heal partitions";
            break;
        case 5: /* crash (at most two down at once) */
            if (s->nodes[pick].node && crashed(s) < 2 && m > 2) {
                crash_node(s, pick);
                sim__push(s, (struct sim_event){
                                 .at = s->now + 1000 + sim__rand(s, 9000),
                                 .type = SIM_EV_RESTART,
                                 .node = pick});
                snprintf(line, sizeof(line), "crash %s", s->nodes[pick].id);
                did = line;
            }
            break;
        case 6: /* pause 1..15 s */
            if (s->nodes[pick].node && !s->nodes[pick].paused) {
                s->nodes[pick].paused = true;
                s->nodes[pick].paused_until =
                    s->now + 1000 + sim__rand(s, 14000);
                sim__push(s,
                          (struct sim_event){.at = s->nodes[pick].paused_until,
                                             .type = SIM_EV_RESUME,
                                             .node = pick,
                                             .gen = s->nodes[pick].gen});
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
            s->loss_pct = s->loss_pct ? 0 : (uint32_t)sim__rand(s, 31);
            snprintf(line, sizeof(line), "loss %u%%", s->loss_pct);
            did = line;
            break;
        case 9:
            if (s->delay_max_ms > 5) {
                s->delay_min_ms = 1;
                s->delay_max_ms = 5;
            } else {
                s->delay_min_ms = 1;
                s->delay_max_ms = 1 + (uint32_t)sim__rand(s, 500);
            }
            snprintf(line, sizeof(line), "delay 1..%u ms", s->delay_max_ms);
            did = line;
            break;
        case 10:
            s->dup_pct = s->dup_pct ? 0 : 10;
            snprintf(line, sizeof(line), "duplicate %u%%", s->dup_pct);
            did = line;
            break;
        case 11: /* a disk error: one of the next persistence points fails
                    with EIO, the engine turns read-only (its writes are
                    refused), and the operator restarts the node later */
            if (s->nodes[pick].node && s->nodes[pick].disk) {
                struct sim_disk *d = s->nodes[pick].disk;
                d->fail_at = d->points + 1 + (long)sim__rand(s, 3);
                s->res->disk_faults++;
                sim__push(s, (struct sim_event){
                                 .at = s->now + 2000 + sim__rand(s, 8000),
                                 .type = SIM_EV_REBOOT,
                                 .node = pick,
                                 .gen = s->nodes[pick].gen});
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
                sim__push(s, (struct sim_event){
                                 .at = s->now + 1000 + sim__rand(s, 7000),
                                 .type = SIM_EV_SPACE,
                                 .node = pick,
                                 .gen = s->nodes[pick].gen});
                snprintf(line, sizeof(line), "disk full on %s",
                         s->nodes[pick].id);
                did = line;
            }
            break;
    }
    if (did && s->cfg.verbose >= 1) {
        printf("  %8" PRIu64 " nemesis: %s\n", s->now, did);
    }
    sim__push(s, (struct sim_event){.at = s->now + 500 + sim__rand(s, 4500),
                                    .type = SIM_EV_NEMESIS});
}

/* ---- the loop --------------------------------------------------------------
 */

static void fold(struct sim *s, const struct sim_event *ev)
{
    uint64_t v[5] = {ev->at, (uint64_t)ev->type, (uint64_t)ev->node,
                     (uint64_t)ev->from,
                     ev->frame ? XXH3_64bits(ev->frame, ev->len) : ev->gen};
    s->trace = XXH3_64bits_withSeed(v, sizeof(v), s->trace);
}

static void process(struct sim *s, struct sim_event *ev)
{
    /* the events a node's process handles (not clients, nemesis, ...) */
    bool of_node = ev->type == SIM_EV_DELIVER || ev->type == SIM_EV_TICK ||
                   ev->type == SIM_EV_JOB || ev->type == SIM_EV_DURABLE ||
                   ev->type == SIM_EV_SPACE;
    struct sim_node *sn =
        of_node && ev->node >= 0 && (size_t)ev->node < s->cfg.n_nodes
            ? &s->nodes[ev->node]
            : NULL;
    if (sn && sn->paused && sn->node) {
        /* a paused process handles nothing: everything waits */
        ev->at = sn->paused_until;
        if (ev->type == SIM_EV_TICK) {
            sn->tick_at = ev->at;
        }
        sim__push(s, *ev);
        return;
    }
    fold(s, ev);
    s->res->events++;
    switch (ev->type) {
        case SIM_EV_DELIVER:
            deliver(s, ev);
            break;
        case SIM_EV_TICK:
            if (sn->node && ev->gen == sn->tick_gen) {
                sn->tick_at = UINT64_MAX;
                (void)engine_tick(sn->data); /* ringkvd's housekeeping */
                node_on_tick(sn->node, s->now);
                sim__after(s, ev->node);
            }
            break;
        case SIM_EV_CLIENT:
            sim__client_event(s, ev->node);
            break;
        case SIM_EV_CLIENT_TIMEOUT:
            sim__client_timeout(s, ev->node, ev->gen);
            break;
        case SIM_EV_NEMESIS:
            if (s->cfg.nemesis && s->clients_on) {
                nemesis(s);
            }
            break;
        case SIM_EV_RESTART:
            if (s->nodes[ev->node].node == NULL) {
                (void)start_node(s, ev->node);
                if (s->cfg.verbose >= 1) {
                    printf("  %8" PRIu64 " restart %s\n", s->now,
                           s->nodes[ev->node].id);
                }
            }
            break;
        case SIM_EV_RESUME:
            if (s->nodes[ev->node].gen == ev->gen) {
                s->nodes[ev->node].paused = false;
            }
            break;
        case SIM_EV_JOB:
            run_job(s, ev);
            break;
        case SIM_EV_REBOOT:
            if (s->nodes[ev->node].node && s->nodes[ev->node].gen == ev->gen) {
                crash_node(s, ev->node);
                s->res->crashes--; /* counted as a disk fault */
                sim__push(s, (struct sim_event){.at = s->now + 500,
                                                .type = SIM_EV_RESTART,
                                                .node = ev->node});
            }
            break;
        case SIM_EV_SPACE:
            if (sn->node && ev->gen == sn->gen) {
                sim_disk_full(s, ev->node, false);
            }
            break;
        case SIM_EV_DURABLE:
            if (sn->node && ev->gen == sn->gen) {
                node_on_durable(sn->node, s->now);
                sim__after(s, ev->node);
            }
            break;
    }
    rk_free(ev->frame);
}

void sim__run_until(struct sim *s, uint64_t until, size_t max_events)
{
    size_t done = 0;
    while (s->n_heap > 0 && s->heap[0].at <= until && done < max_events) {
        struct sim_event ev = pop(s);
        if (ev.at > s->now) {
            s->now = ev.at;
        }
        process(s, &ev);
        done++;
    }
    if (s->n_heap == 0 || s->heap[0].at > until) {
        s->now = until > s->now ? until : s->now;
    }
}

static bool all_agree(struct sim *s)
{
    uint64_t v = 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (sn->node == NULL ||
            membership_phase(node_membership(sn->node)) != MEMBERSHIP_MEMBER ||
            node_valid_members(sn->node) != s->cfg.n_nodes ||
            !node_agrees(sn->node)) {
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
    int rc = node_create_cluster(s->nodes[0].node, s->now);
    if (rc != RK_OK) {
        return rc;
    }
    s->nodes[0].joined = true;
    sim__after(s, 0);
    for (size_t i = 1; i < s->cfg.n_nodes; i++) {
        rc = node_join(s->nodes[i].node, s->nodes[0].host, 7381, s->now);
        if (rc != RK_OK) {
            return rc;
        }
        sim__after(s, (int)i);
        uint64_t limit = s->now + 30000;
        while (!s->nodes[i].joined && s->now < limit && s->n_heap > 0) {
            sim__run_until(s, s->now + 10, SIZE_MAX);
        }
        if (!s->nodes[i].joined) {
            return RK_ETIMEDOUT;
        }
    }
    uint64_t limit = s->now + 60000;
    while (!all_agree(s) && s->now < limit) {
        sim__run_until(s, s->now + 50, SIZE_MAX);
    }
    return all_agree(s) ? RK_OK : RK_ETIMEDOUT;
}

static void heal_all(struct sim *s)
{
    heal_network(s);
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        sn->skew_ms = 0;
        sn->paused = false;
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
        cfg->n_clients < 1 || cfg->n_clients > SIM_MAX_CLIENTS ||
        g_sim != NULL) {
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
    rk_rng_seed(&s->rng, cfg->seed);
    heal_network(s);
    int rc = peer_decoder_create(0, &s->dec);
    for (size_t i = 0; rc == RK_OK && i < cfg->n_nodes; i++) {
        struct sim_node *sn = &s->nodes[i];
        sn->idx = (int)i;
        snprintf(sn->id, sizeof(sn->id), "n%u", (unsigned)(i + 1) % 100);
        snprintf(sn->host, sizeof(sn->host), "sim%u", (unsigned)(i + 1) % 100);
        rk_buf_init(&sn->state);
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
    s->res->trace_hash = s->trace;
    s->res->sim_ms = s->now;
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
    }
    while (s->n_heap > 0) {
        struct sim_event ev = pop(s);
        rk_free(ev.frame);
    }
    rk_free(s->heap);
    sim__hist_free(s);
    peer_decoder_destroy(s->dec);
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
            sim__push(s, (struct sim_event){.at = s->now + 1 + c,
                                            .type = SIM_EV_CLIENT,
                                            .node = (int)c});
        }
        sim__push(
            s, (struct sim_event){.at = s->now + 1000, .type = SIM_EV_NEMESIS});
        sim__run_until(s, UINT64_MAX, cfg->steps);
        s->clients_on = false;
        heal_all(s);
        sim__run_until(s, s->now + cfg->heal_ms, SIZE_MAX);
        sim__count_converged(s);
        sim__repair_pass(s);
        sim__run_until(s, s->now + 5000, SIZE_MAX);
        sim__check(s);
    }
    sim_destroy(s);
    return RK_OK;
}

/* ---- the fixture API (sim.h) --------------------------------------------- */

uint64_t sim_now(const struct sim *s)
{
    return s->now;
}

void sim_run_for(struct sim *s, uint64_t ms)
{
    sim__run_until(s, s->now + ms, SIZE_MAX);
}

bool sim_run_until(struct sim *s,
                   bool (*pred)(struct sim *s, void *arg),
                   void *arg,
                   uint64_t max_ms)
{
    uint64_t end = s->now + max_ms;
    for (;;) {
        if (pred(s, arg)) {
            return true;
        }
        if (s->n_heap == 0 || s->heap[0].at > end) {
            s->now = end;
            return pred(s, arg);
        }
        sim__run_until(s, s->heap[0].at, 1); /* exactly one event */
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
    node_on_durable(sn->node, s->now);
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
    s->block[from][to] = blocked;
}

void sim_heal(struct sim *s)
{
    heal_network(s);
}

void sim_after(struct sim *s, int i)
{
    sim__after(s, i);
}
