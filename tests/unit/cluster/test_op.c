/*
 * test_op.c - cluster/op: the life of a coordinated client command (its
 * phases, window and per-client order; issue 11 item 1).  These decisions
 * lived untested in src/server/cluster_ops.c before.
 *
 * A fake node port records every node request and answers none by itself;
 * tests feed node results and handle the machine's actions, writing what
 * happened into one trace string, so each test states an exact sequence
 * (node requests appear when the machine starts them, actions when the
 * test handles them, so a request started while the machine queued
 * actions comes before them):
 *   R:k / W:k      a node read / write of key k started
 *   EXEC:cmd       OP_ACT_EXEC (the test's handler for cmd runs)
 *   DONE:cmd       OP_ACT_DONE
 *   REPLY:x        OP_ACT_REPLY with reply bytes x, or "-err" when failed
 *   DISPATCH:cmd   OP_ACT_DISPATCH
 *   RESUME         OP_ACT_RESUME
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/dvv.h"
#include "cluster/op.h"
#include "common/error.h"

#define MAX_REQS 512

struct req
{
    bool write;
    uint64_t cookie, op_id;
    char key[128];
    bool own_context, tombstone, has_context;
    char value[64];
    uint64_t ts;
    bool answered;
};

static struct req g_reqs[MAX_REQS];
static size_t g_n_reqs;
static uint64_t g_next_id;
static int g_start_rc; /* what the next starts return (RK_OK normally) */
static size_t g_cancels;
static size_t g_settles;
static uint64_t g_wall = 1700000000000ull;
static char g_trace[8192];
static struct hlc g_clock;
static struct op_machine *g_m;
static struct op_client g_c; /* a client, initialised by setup */
static struct rk_env g_env;

/* ---- the fake node port and environment --------------------------------- */

static void trace(const char *fmt, const char *s)
{
    size_t n = strlen(g_trace);
    snprintf(g_trace + n, sizeof(g_trace) - n, "%s", n ? " " : "");
    n = strlen(g_trace);
    snprintf(g_trace + n, sizeof(g_trace) - n, fmt, s);
}

static int record(bool write,
                  const void *key,
                  size_t klen,
                  uint64_t cookie,
                  uint64_t *op_id)
{
    if (g_start_rc != RK_OK) {
        return g_start_rc;
    }
    assert_true(g_n_reqs < MAX_REQS);
    struct req *q = &g_reqs[g_n_reqs++];
    memset(q, 0, sizeof(*q));
    q->write = write;
    q->cookie = cookie;
    q->op_id = ++g_next_id;
    snprintf(q->key, sizeof(q->key), "%.*s", (int)klen, (const char *)key);
    *op_id = q->op_id;
    trace(write ? "W:%s" : "R:%s", q->key);
    return RK_OK;
}

static int port_read(void *data,
                     const struct node_read_req *r,
                     uint64_t now_ms,
                     uint64_t *op_id)
{
    (void)data;
    (void)now_ms;
    return record(false, r->key, r->klen, r->cookie, op_id);
}

static int port_write(void *data,
                      const struct node_write_req *w,
                      uint64_t now_ms,
                      uint64_t *op_id)
{
    (void)data;
    (void)now_ms;
    int rc = record(true, w->key, w->klen, w->cookie, op_id);
    if (rc == RK_OK) {
        struct req *q = &g_reqs[g_n_reqs - 1];
        q->own_context = w->own_context;
        q->tombstone = w->tombstone;
        q->has_context = w->clen > 0;
        q->ts = w->timestamp;
        snprintf(q->value, sizeof(q->value), "%.*s", (int)w->vlen,
                 w->value ? (const char *)w->value : "");
    }
    return rc;
}

static void port_settle(void *data)
{
    (void)data;
    g_settles++;
}

static void port_cancel(void *data, uint64_t cookie)
{
    (void)data;
    (void)cookie;
    g_cancels++;
}

static uint64_t env_wall(struct rk_env *env)
{
    (void)env;
    return g_wall;
}

static uint64_t env_mono(struct rk_env *env)
{
    (void)env;
    return 1000;
}

static int setup(void **state)
{
    (void)state;
    memset(g_reqs, 0, sizeof(g_reqs));
    g_n_reqs = 0;
    g_next_id = 0;
    g_start_rc = RK_OK;
    g_cancels = g_settles = 0;
    g_trace[0] = '\0';
    hlc_init(&g_clock);
    g_env = (struct rk_env){.wall_ms = env_wall, .mono_ms = env_mono};
    struct op_config cfg = {
        .port = {port_read, port_write, port_settle, port_cancel, NULL},
        .env = &g_env,
        .clock = &g_clock,
    };
    assert_int_equal(op_machine_create(&cfg, &g_m), RK_OK);
    op_client_init(&g_c, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    op_machine_destroy(g_m);
    g_m = NULL;
    return 0;
}

/* ---- commands: a tiny command table and handlers ------------------------ */

static const struct node_settings g_set = {.max_siblings = 100};

static const char *arg0(struct op *op)
{
    size_t argc;
    return op_args(op, &argc)[0].ptr;
}

/* The handlers, over the coordinated keyspace, as the server's do. */
static void handle(struct op *op)
{
    size_t argc;
    const struct resp_arg *a = op_args(op, &argc);
    struct rk_buf *out = op_reply(op);
    const char *name = a[0].ptr;
    struct op_value v;
    if (strcmp(name, "get") == 0) {
        if (op_key_get(op, a[1].ptr, a[1].len, &v) == RK_OK) {
            rk_buf_append(out, v.val, v.vlen);
        } else {
            rk_buf_append_str(out, "nil");
        }
    } else if (strcmp(name, "set") == 0) {
        assert_int_equal(op_key_put(op, a[1].ptr, a[1].len, a[2].ptr, a[2].len,
                                    0, NULL, 0, 1024),
                         RK_OK);
        rk_buf_append_str(out, "OK");
    } else if (strcmp(name, "incr") == 0) {
        long n = 0;
        if (op_key_get(op, a[1].ptr, a[1].len, &v) == RK_OK) {
            char tmp[32];
            snprintf(tmp, sizeof(tmp), "%.*s", (int)v.vlen, v.val);
            n = strtol(tmp, NULL, 10);
        }
        char s[32];
        int l = snprintf(s, sizeof(s), "%ld", n + 1);
        assert_int_equal(
            op_key_put(op, a[1].ptr, a[1].len, s, (size_t)l, 0, NULL, 0, 1024),
            RK_OK);
        rk_buf_append(out, s, (size_t)l);
    } else if (strcmp(name, "del") == 0) {
        int n = 0;
        for (size_t i = 1; i < argc; i++) {
            n += op_key_del(op, a[i].ptr, a[i].len) == RK_OK;
        }
        rk_buf_appendf(out, "%d", n);
    } else if (strcmp(name, "mset") == 0) {
        for (size_t i = 1; i + 1 < argc; i += 2) {
            assert_int_equal(op_key_put(op, a[i].ptr, a[i].len, a[i + 1].ptr,
                                        a[i + 1].len, 0, NULL, 0, 1024),
                             RK_OK);
        }
        rk_buf_append_str(out, "OK");
    } else if (strcmp(name, "getall") == 0) {
        rk_buf_appendf(out, "obj%zu", op_key_object(op)->len);
    } else if (strcmp(name, "put") == 0 || strcmp(name, "vdel") == 0) {
        bool del = strcmp(name, "vdel") == 0;
        int removed = -1;
        int rc =
            op_versioned_put(op, a[2].ptr, a[2].len, del, del ? NULL : a[3].ptr,
                             del ? 0 : a[3].len, NULL, 0, &removed);
        assert_int_equal(rc, RK_OK);
        rk_buf_appendf(out, del ? "%d" : "OK", removed);
    } else {
        fail_msg("no handler for %s", name);
    }
}

/* Handles every action, tracing it. */
static void drain(void)
{
    struct op_action a;
    while (op_next_action(g_m, &a)) {
        switch (a.type) {
            case OP_ACT_EXEC:
                trace("EXEC:%s", arg0(a.op));
                handle(a.op);
                op_exec_done(g_m, a.op);
                break;
            case OP_ACT_DONE:
                trace("DONE:%s", arg0(a.op));
                break;
            case OP_ACT_REPLY: {
                char s[256];
                if (op_error(a.op)) {
                    snprintf(s, sizeof(s), "-%s", op_error(a.op));
                } else {
                    snprintf(s, sizeof(s), "%.*s", (int)op_reply(a.op)->len,
                             op_reply(a.op)->base ? op_reply(a.op)->base : "");
                }
                trace("REPLY:%s", s);
                break;
            }
            case OP_ACT_DISPATCH:
                trace("DISPATCH:%s", arg0(a.op));
                op_dispatch_done(g_m, a.op);
                break;
            case OP_ACT_RESUME:
                trace("%sRESUME", "");
                break;
        }
    }
}

/* Splits a command line ("set k v") into args (views into a copy). */
struct line
{
    char buf[1024];
    struct resp_arg argv[160];
    size_t argc;
};

static void parse(struct line *l, const char *text)
{
    snprintf(l->buf, sizeof(l->buf), "%s", text);
    l->argc = 0;
    for (char *p = strtok(l->buf, " "); p; p = strtok(NULL, " ")) {
        l->argv[l->argc++] = (struct resp_arg){p, strlen(p)};
    }
}

/* Submits `text` for client oc the way the driver does: keys from the
 * table (first, last, step), flags. */
static struct op *submit(struct op_client *oc, const char *text)
{
    struct line l;
    parse(&l, text);
    const char *n = l.argv[0].ptr;
    struct op_keyspec spec = {1, 1, 1};
    unsigned flags = 0;
    if (strcmp(n, "set") == 0) {
        flags = OP_F_BLIND;
    } else if (strcmp(n, "mset") == 0) {
        spec = (struct op_keyspec){1, -1, 2};
        flags = OP_F_BLIND;
    } else if (strcmp(n, "del") == 0) {
        spec = (struct op_keyspec){1, -1, 1};
    } else if (strcmp(n, "getall") == 0) {
        flags = OP_F_VERSIONED;
    } else if (strcmp(n, "put") == 0 || strcmp(n, "vdel") == 0) {
        flags = OP_F_VERSIONED | OP_F_WRITE;
    }
    struct op *op = NULL;
    assert_int_equal(op_create(g_m, oc, NULL, l.argc, l.argv, &op), RK_OK);
    assert_int_equal(op_add_keys(op, &spec, l.argc, op_args(op, &l.argc)),
                     RK_OK);
    op_submit(g_m, op, flags, (struct route_quorum){0}, 0, 1);
    drain();
    return op;
}

/* Submits an explicit argument list (empty arguments allowed) with key 1. */
static void submit_argv(struct op_client *oc,
                        size_t argc,
                        const struct resp_arg *argv,
                        unsigned flags)
{
    struct op *op = NULL;
    assert_int_equal(op_create(g_m, oc, NULL, argc, argv, &op), RK_OK);
    assert_int_equal(op_add_key(op, argv[1].ptr, argv[1].len), RK_OK);
    op_submit(g_m, op, flags, (struct route_quorum){0}, 0, 1);
    drain();
}

static struct req *find_req(bool write, const char *key)
{
    for (size_t i = 0; i < g_n_reqs; i++) {
        if (!g_reqs[i].answered && g_reqs[i].write == write &&
            strcmp(g_reqs[i].key, key) == 0) {
            return &g_reqs[i];
        }
    }
    fail_msg("no %s request for %s", write ? "write" : "read", key);
    return NULL;
}

/* An encoded object holding one live value written at ts. */
static void object_of(struct rk_buf *out, const char *value, uint64_t ts)
{
    struct dvv_obj o;
    dvv_init(&o);
    struct dvv_write w = {.value = value, .vlen = strlen(value), .ts = ts};
    assert_int_equal(dvv_update(&o, NULL, 7, 0, &w, NULL), RK_OK);
    rk_buf_clear(out);
    assert_int_equal(dvv_encode(&o, out), RK_OK);
    dvv_fini(&o);
}

/* Answers the pending request of (write, key) with status; a read with
 * value != NULL finds that value (written at ts). */
static void answer(bool write,
                   const char *key,
                   int status,
                   const char *value,
                   uint64_t ts,
                   const char *message)
{
    struct req *q = find_req(write, key);
    q->answered = true;
    struct rk_buf obj;
    rk_buf_init(&obj);
    struct node_result r = {
        .cookie = q->cookie,
        .op_id = q->op_id,
        .kind = write ? NODE_OP_WRITE : NODE_OP_READ,
        .status = status,
    };
    if (value) {
        object_of(&obj, value, ts);
        r.found = true;
        r.object = (struct peer_bytes){obj.base, obj.len};
    }
    if (message) {
        snprintf(r.message, sizeof(r.message), "%s", message);
    }
    op_on_node_result(g_m, &r, &g_set);
    rk_buf_fini(&obj);
    op_process(g_m);
    drain();
}

static void read_ok(const char *key, const char *value)
{
    answer(false, key, value ? RK_OK : RK_ENOTFOUND, value, 5000, NULL);
}

static void write_ok(const char *key)
{
    answer(true, key, RK_OK, NULL, 0, NULL);
}

static void reset_trace(void)
{
    g_trace[0] = '\0';
}

/* ---- phase sequences of single commands -------------------------------- */

static void test_op_get_reads_then_runs_the_handler(void **state)
{
    (void)state;
    submit(&g_c, "get k");
    assert_string_equal(g_trace, "R:k");
    assert_true(op_client_is_busy(&g_c));
    read_ok("k", "v1");
    assert_string_equal(g_trace, "R:k EXEC:get DONE:get REPLY:v1 RESUME");
    assert_false(op_client_is_busy(&g_c));
    assert_int_equal(g_n_reqs, 1);
}

static void test_op_get_of_a_missing_key_reads_nil(void **state)
{
    (void)state;
    submit(&g_c, "get k");
    read_ok("k", NULL);
    assert_string_equal(g_trace, "R:k EXEC:get DONE:get REPLY:nil RESUME");
}

static void test_op_set_is_blind_runs_at_once_then_writes(void **state)
{
    (void)state;
    submit(&g_c, "set k v");
    assert_string_equal(g_trace, "EXEC:set W:k");
    struct req *w = find_req(true, "k");
    assert_true(w->own_context); /* nothing read: supersede what is seen */
    assert_false(w->tombstone);
    assert_string_equal(w->value, "v");
    write_ok("k");
    assert_string_equal(g_trace, "EXEC:set W:k DONE:set REPLY:OK RESUME");
}

static void test_op_incr_reads_runs_and_writes_a_newer_version(void **state)
{
    (void)state;
    submit(&g_c, "incr n");
    uint64_t read_ts = ((g_wall + 60000) << 16) | 3; /* ahead of the wall */
    assert_int_equal(hlc_physical_ms(read_ts), g_wall + 60000);
    answer(false, "n", RK_OK, "41", read_ts, NULL);
    assert_string_equal(g_trace, "R:n EXEC:incr W:n");
    struct req *w = find_req(true, "n");
    assert_string_equal(w->value, "42");
    assert_false(w->own_context); /* supersedes exactly what was read */
    assert_true(w->has_context);
    assert_true(w->ts > read_ts); /* O5 */
    write_ok("n");
    assert_string_equal(g_trace, "R:n EXEC:incr W:n DONE:incr REPLY:42 RESUME");
}

static void test_op_del_writes_a_tombstone_only_for_a_live_key(void **state)
{
    (void)state;
    submit(&g_c, "del a b");
    assert_string_equal(g_trace, "R:a R:b");
    read_ok("a", "x");
    read_ok("b", NULL);
    assert_string_equal(g_trace, "R:a R:b EXEC:del W:a");
    struct req *w = find_req(true, "a");
    assert_true(w->tombstone);
    assert_string_equal(w->value, "");
    write_ok("a");
    assert_string_equal(g_trace,
                        "R:a R:b EXEC:del W:a DONE:del REPLY:1 RESUME");
    /* nothing live: no write at all (O6) */
    reset_trace();
    submit(&g_c, "del b");
    read_ok("b", NULL);
    assert_string_equal(g_trace, "R:b EXEC:del DONE:del REPLY:0 RESUME");
}

static void test_op_mset_dedupes_keys_and_writes_each_once(void **state)
{
    (void)state;
    struct op *op = submit(&g_c, "mset a 1 b 2 a 3");
    assert_int_equal(op_n_keys(op), 2);
    assert_string_equal(g_trace, "EXEC:mset W:a W:b");
    assert_string_equal(find_req(true, "a")->value, "3"); /* the last */
    write_ok("b");
    assert_string_equal(g_trace, "EXEC:mset W:a W:b");
    write_ok("a");
    assert_string_equal(g_trace, "EXEC:mset W:a W:b DONE:mset REPLY:OK RESUME");
}

static void test_op_big_key_lists_are_sorted_deduped_and_found(void **state)
{
    (void)state;
    /* 75 pairs over 70 distinct keys: past the 64-key linear dedupe */
    char text[1024] = "mset";
    for (int i = 0; i < 75; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, " k%02d %d", i % 70, i);
    }
    struct op *op = submit(&g_c, text);
    assert_int_equal(op_n_keys(op), 70);
    /* the window: at most OP_WINDOW writes in flight (O4) */
    assert_int_equal(g_n_reqs, OP_WINDOW);
    assert_string_equal(find_req(true, "k03")->value, "73");
    for (int i = 0; i < 70; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%02d", i);
        if (i < OP_WINDOW) {
            write_ok(k);
        }
    }
    assert_int_equal(g_n_reqs, 70);
    for (int i = OP_WINDOW; i < 70; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%02d", i);
        write_ok(k);
    }
    assert_false(op_client_is_busy(&g_c));
    assert_non_null(strstr(g_trace, "DONE:mset REPLY:OK RESUME"));
}

static void test_op_getall_reads_renders_and_writes_nothing(void **state)
{
    (void)state;
    submit(&g_c, "getall k");
    read_ok("k", "v");
    /* the handler sees the merged object as read (its size here) */
    struct rk_buf obj;
    rk_buf_init(&obj);
    object_of(&obj, "v", 5000);
    char want[128];
    snprintf(want, sizeof(want),
             "R:k EXEC:getall DONE:getall REPLY:obj%zu RESUME", obj.len);
    rk_buf_fini(&obj);
    assert_string_equal(g_trace, want);
    assert_int_equal(g_n_reqs, 1);
    reset_trace();
    submit(&g_c, "getall none");
    read_ok("none", NULL);
    assert_string_equal(g_trace,
                        "R:none EXEC:getall DONE:getall REPLY:obj0 RESUME");
}

static void test_op_put_reads_then_writes_with_the_context(void **state)
{
    (void)state;
    const struct resp_arg argv[] = {{"put", 3}, {"k", 1}, {"", 0}, {"v2", 2}};
    submit_argv(&g_c, 4, argv, OP_F_VERSIONED | OP_F_WRITE);
    assert_string_equal(g_trace, "R:k");
    read_ok("k", "v1");
    assert_string_equal(g_trace, "R:k EXEC:put W:k");
    struct req *w = find_req(true, "k");
    assert_false(w->own_context);
    assert_false(w->tombstone);
    assert_string_equal(w->value, "v2");
    write_ok("k");
    assert_string_equal(g_trace, "R:k EXEC:put W:k DONE:put REPLY:OK RESUME");
}

static void test_op_versioned_del_without_cover_writes_nothing(void **state)
{
    (void)state;
    /* the empty context covers no sibling: RINGKV.DEL answers 0 and
     * writes no tombstone */
    const struct resp_arg argv[] = {{"vdel", 4}, {"k", 1}, {"", 0}};
    submit_argv(&g_c, 3, argv, OP_F_VERSIONED | OP_F_WRITE);
    read_ok("k", "v1");
    assert_string_equal(g_trace, "R:k EXEC:vdel DONE:vdel REPLY:0 RESUME");
}

/* ---- per-client order -------------------------------------------------- */

static void test_op_pipelined_replies_leave_in_order(void **state)
{
    (void)state;
    submit(&g_c, "get a");
    submit(&g_c, "set b x"); /* no common key: overlaps */
    assert_string_equal(g_trace, "R:a EXEC:set W:b");
    write_ok("b"); /* the later one finishes first ... */
    assert_string_equal(g_trace, "R:a EXEC:set W:b DONE:set");
    read_ok("a", "va"); /* ... and is answered after the earlier (O1) */
    assert_string_equal(g_trace,
                        "R:a EXEC:set W:b DONE:set EXEC:get DONE:get "
                        "REPLY:va REPLY:OK RESUME");
}

static void test_op_same_key_waits_for_the_earlier_command(void **state)
{
    (void)state;
    submit(&g_c, "set k 1");
    submit(&g_c, "get k"); /* shares k: waits (O2) */
    submit(&g_c, "incr k");
    assert_string_equal(g_trace, "EXEC:set W:k");
    write_ok("k");
    /* the SET finished, the GET starts; the INCR still waits for it */
    assert_string_equal(g_trace, "EXEC:set W:k R:k DONE:set REPLY:OK RESUME");
    read_ok("k", "1");
    assert_string_equal(g_trace,
                        "EXEC:set W:k R:k DONE:set REPLY:OK RESUME EXEC:get "
                        "R:k DONE:get REPLY:1 RESUME");
    read_ok("k", "1");
    write_ok("k");
    assert_non_null(strstr(g_trace, "EXEC:incr W:k DONE:incr REPLY:2 RESUME"));
    assert_false(op_client_is_busy(&g_c));
}

static void test_op_writes_to_different_keys_overlap(void **state)
{
    (void)state;
    submit(&g_c, "set a 1");
    submit(&g_c, "set b 2");
    submit(&g_c, "set a 3"); /* waits for the first only */
    assert_string_equal(g_trace, "EXEC:set W:a EXEC:set W:b");
    write_ok("a");
    assert_string_equal(g_trace,
                        "EXEC:set W:a EXEC:set W:b DONE:set REPLY:OK "
                        "EXEC:set W:a RESUME");
    write_ok("a");
    write_ok("b");
    assert_string_equal(g_trace,
                        "EXEC:set W:a EXEC:set W:b DONE:set REPLY:OK "
                        "EXEC:set W:a RESUME DONE:set DONE:set REPLY:OK "
                        "REPLY:OK RESUME");
}

static void test_op_other_clients_do_not_wait(void **state)
{
    (void)state;
    struct op_client c1, c2;
    op_client_init(&c1, NULL);
    op_client_init(&c2, NULL);
    submit(&c1, "set k 1");
    submit(&c2, "get k"); /* another client: no order between them */
    assert_string_equal(g_trace, "EXEC:set W:k R:k");
    read_ok("k", NULL);
    write_ok("k");
    assert_false(op_client_is_busy(&c1));
    assert_false(op_client_is_busy(&c2));
}

static void test_op_noquorum_read_replies_the_error_in_order(void **state)
{
    (void)state;
    submit(&g_c, "get a");
    submit(&g_c, "get b");
    read_ok("b", "vb");
    answer(false, "a", RK_ENOQUORUM, NULL, 0,
           "NOQUORUM reached 1 of 2 (2 of 3 replicas failed)");
    /* the failed read never runs its handler; replies stay in order */
    assert_string_equal(g_trace,
                        "R:a R:b EXEC:get DONE:get DONE:get "
                        "REPLY:-NOQUORUM reached 1 of 2 (2 of 3 replicas "
                        "failed) REPLY:vb RESUME");
    assert_false(op_client_is_busy(&g_c));
}

static void test_op_failed_key_waits_for_the_others_in_flight(void **state)
{
    (void)state;
    submit(&g_c, "del a b");
    answer(false, "a", RK_ETIMEDOUT, NULL, 0, NULL);
    assert_string_equal(g_trace, "R:a R:b");
    read_ok("b", "x");
    assert_string_equal(g_trace,
                        "R:a R:b DONE:del REPLY:-ERR cluster request "
                        "failed: timed out RESUME");
}

static void test_op_no_ring_fails_with_clusterdown(void **state)
{
    (void)state;
    g_start_rc = RK_ENOTFOUND;
    submit(&g_c, "get a");
    assert_string_equal(
        g_trace, "DONE:get REPLY:-CLUSTERDOWN the ring has no members RESUME");
}

static void test_op_busy_coordinator_stalls_until_retried(void **state)
{
    (void)state;
    g_start_rc = RK_EBUSY;
    submit(&g_c, "get a");
    assert_string_equal(g_trace, "");
    op_retry_stalled(g_m);
    drain();
    assert_string_equal(g_trace, ""); /* still busy */
    g_start_rc = RK_OK;
    op_retry_stalled(g_m);
    drain();
    assert_string_equal(g_trace, "R:a");
    read_ok("a", "v");
    assert_false(op_client_is_busy(&g_c));
}

static void test_op_client_blocks_at_the_pipeline_limit(void **state)
{
    (void)state;
    char cmd[32];
    for (int i = 0; i < OP_CLIENT_PIPELINE - 1; i++) {
        snprintf(cmd, sizeof(cmd), "get k%d", i);
        submit(&g_c, cmd);
        assert_false(op_client_is_blocked(&g_c));
    }
    submit(&g_c, "get last");
    assert_true(op_client_is_blocked(&g_c)); /* O3 */
    read_ok("k0", "v");
    assert_false(op_client_is_blocked(&g_c));
    op_client_gone(g_m, &g_c);
}

static void test_op_barrier_and_deferred_commands_keep_order(void **state)
{
    (void)state;
    submit(&g_c, "get a");
    struct line l;
    parse(&l, "ping");
    assert_int_equal(op_defer(g_m, &g_c, l.argc, l.argv), RK_OK);
    assert_true(
        op_client_is_blocked(&g_c)); /* a deferred command is a barrier */
    submit(&g_c, "get b");           /* after a deferred command: waits (O2) */
    assert_string_equal(g_trace, "R:a");
    read_ok("a", "va");
    assert_string_equal(g_trace,
                        "R:a EXEC:get DONE:get REPLY:va DISPATCH:ping R:b "
                        "RESUME");
    assert_false(op_client_is_blocked(&g_c));
    read_ok("b", "vb");
    assert_false(op_client_is_busy(&g_c));
}

static void test_op_barrier_command_blocks_input_until_answered(void **state)
{
    (void)state;
    /* a command flagged CMD_NOMULTI (OP_F_BARRIER): later input waits */
    struct line l;
    parse(&l, "get k");
    struct op *op = NULL;
    assert_int_equal(op_create(g_m, &g_c, NULL, l.argc, l.argv, &op), RK_OK);
    assert_int_equal(op_add_key(op, "k", 1), RK_OK);
    op_submit(g_m, op, OP_F_BARRIER, (struct route_quorum){0}, 0, 1);
    drain();
    assert_true(op_client_is_blocked(&g_c));
    read_ok("k", "v");
    assert_string_equal(g_trace, "R:k EXEC:get DONE:get REPLY:v RESUME");
    assert_false(op_client_is_blocked(&g_c));
}

static void test_op_held_operation_answers_in_order(void **state)
{
    (void)state;
    struct op *hold = NULL;
    assert_int_equal(op_hold(g_m, &g_c, &hold), RK_OK);
    assert_true(op_client_is_blocked(&g_c));
    op_process(g_m);
    drain();
    assert_string_equal(g_trace, "");
    op_hold_done(g_m, hold, "+OK\r\n", 5);
    op_process(g_m);
    drain();
    assert_string_equal(g_trace, "REPLY:+OK\r\n RESUME");
    assert_false(op_client_is_busy(&g_c));
}

/* ---- client gone ------------------------------------------------------- */

static void test_op_client_gone_mid_op_cancels_and_frees(void **state)
{
    (void)state;
    submit(&g_c, "get a");
    submit(&g_c, "set b 1");
    submit(&g_c, "get a"); /* waiting */
    assert_string_equal(g_trace, "R:a EXEC:set W:b");
    op_client_gone(g_m, &g_c);
    assert_int_equal(g_cancels, 3); /* every operation's node requests */
    assert_false(op_client_is_busy(&g_c));
    op_process(g_m);
    drain();
    assert_string_equal(g_trace, "R:a EXEC:set W:b"); /* no reply (O7) */
    /* (leaks and stale pointers: the sanitizers of the test build) */
}

static void test_op_client_gone_drops_queued_replies(void **state)
{
    (void)state;
    submit(&g_c, "get a");
    struct req *q = find_req(false, "a");
    q->answered = true;
    struct rk_buf obj;
    rk_buf_init(&obj);
    object_of(&obj, "v", 5000);
    struct node_result r = {
        .cookie = q->cookie,
        .op_id = q->op_id,
        .kind = NODE_OP_READ,
        .status = RK_OK,
        .found = true,
        .object = {obj.base, obj.len},
    };
    op_on_node_result(g_m, &r, &g_set);
    rk_buf_fini(&obj);
    op_process(g_m); /* EXEC queued, not yet handled */
    op_client_gone(g_m, &g_c);
    drain();
    assert_string_equal(g_trace, "R:a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_op_get_reads_then_runs_the_handler),
        T(test_op_get_of_a_missing_key_reads_nil),
        T(test_op_set_is_blind_runs_at_once_then_writes),
        T(test_op_incr_reads_runs_and_writes_a_newer_version),
        T(test_op_del_writes_a_tombstone_only_for_a_live_key),
        T(test_op_mset_dedupes_keys_and_writes_each_once),
        T(test_op_big_key_lists_are_sorted_deduped_and_found),
        T(test_op_getall_reads_renders_and_writes_nothing),
        T(test_op_put_reads_then_writes_with_the_context),
        T(test_op_versioned_del_without_cover_writes_nothing),
        T(test_op_pipelined_replies_leave_in_order),
        T(test_op_same_key_waits_for_the_earlier_command),
        T(test_op_writes_to_different_keys_overlap),
        T(test_op_other_clients_do_not_wait),
        T(test_op_noquorum_read_replies_the_error_in_order),
        T(test_op_failed_key_waits_for_the_others_in_flight),
        T(test_op_no_ring_fails_with_clusterdown),
        T(test_op_busy_coordinator_stalls_until_retried),
        T(test_op_client_blocks_at_the_pipeline_limit),
        T(test_op_barrier_and_deferred_commands_keep_order),
        T(test_op_barrier_command_blocks_input_until_answered),
        T(test_op_held_operation_answers_in_order),
        T(test_op_client_gone_mid_op_cancels_and_frees),
        T(test_op_client_gone_drops_queued_replies),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
