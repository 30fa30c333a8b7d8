/*
 * test_libringkv_async.c - the asynchronous API (src/lib/async.c) against
 * fake RESP servers in the same libevent loop: pipelining, a node that
 * never answers (the attempt times out within the call's deadline and the
 * call is retried on the other node), a node that drops the connection
 * (idempotent calls retried, INCR not), the deadline, and that no
 * callback runs inside an API call.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "lib/internal.h"

enum fake_mode
{
    FAKE_REPLY,  /* answers every command */
    FAKE_SILENT, /* answers CLUSTER SLOTS only */
    FAKE_CLOSE,  /* answers CLUSTER SLOTS, closes on anything else */
};

struct fake
{
    struct evconnlistener *l;
    int port;
    enum fake_mode mode;
    int commands; /* data commands received */
};

static struct event_base *g_base;
static struct fake g_fake[2];

/* CLUSTER SLOTS: every slot on fake 0 then fake 1 */
static void reply_slots(struct evbuffer *out)
{
    evbuffer_add_printf(out,
                        "*1\r\n*4\r\n:0\r\n:16383\r\n"
                        "*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n"
                        "*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n",
                        g_fake[0].port, g_fake[1].port);
}

static void fake_read(struct bufferevent *bev, void *arg)
{
    struct fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)len);
        size_t consumed = 0;
        struct resp_value *v = NULL;
        if (len == 0 || resp_reply_parse(p, len, 8, 1 << 20, &consumed, NULL,
                                         &v) != RK_OK) {
            return;
        }
        evbuffer_drain(in, consumed);
        struct evbuffer *out = bufferevent_get_output(bev);
        const char *cmd = v->elems[0].str;
        if (strcmp(cmd, "CLUSTER") == 0) {
            reply_slots(out);
        } else {
            f->commands++;
            if (f->mode == FAKE_CLOSE) {
                resp_value_free(v);
                bufferevent_free(bev);
                return;
            }
            if (f->mode == FAKE_REPLY) {
                evbuffer_add_printf(out, "%s",
                                    strcmp(cmd, "GET") == 0 ? "$2\r\nok\r\n"
                                    : strcmp(cmd, "INCRBY") == 0 ? ":1\r\n"
                                                                 : "+OK\r\n");
            }
        }
        resp_value_free(v);
    }
}

static void fake_event(struct bufferevent *bev, short events, void *arg)
{
    (void)events;
    (void)arg;
    bufferevent_free(bev);
}

static void fake_accept(struct evconnlistener *l,
                        evutil_socket_t fd,
                        struct sockaddr *sa,
                        int salen,
                        void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct bufferevent *bev =
        bufferevent_socket_new(g_base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, fake_read, NULL, fake_event, arg);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int setup(void **state)
{
    (void)state;
    g_base = event_base_new();
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(0x7f000001)};
        g_fake[i] = (struct fake){.mode = FAKE_REPLY};
        g_fake[i].l =
            evconnlistener_new_bind(g_base, fake_accept, &g_fake[i],
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                    16, (struct sockaddr *)&sin, sizeof(sin));
        assert_non_null(g_fake[i].l);
        struct sockaddr_in got;
        socklen_t gl = sizeof(got);
        getsockname(evconnlistener_get_fd(g_fake[i].l), (struct sockaddr *)&got,
                    &gl);
        g_fake[i].port = ntohs(got.sin_port);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* the fakes see the library's connections close and free theirs */
    int64_t until = rkl_now_ms() + 100;
    while (rkl_now_ms() < until) {
        event_base_loop(g_base, EVLOOP_NONBLOCK);
    }
    for (int i = 0; i < 2; i++) {
        evconnlistener_free(g_fake[i].l);
    }
    event_base_free(g_base);
    return 0;
}

static struct ringkv_async *open_ra(int timeout_ms)
{
    char seed[32];
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", g_fake[0].port);
    const char *seeds[1] = {seed};
    struct ringkv_options o;
    ringkv_options_init(&o);
    o.seeds = seeds;
    o.n_seeds = 1;
    o.timeout_ms = timeout_ms;
    struct ringkv_async *ra = NULL;
    assert_int_equal(ringkv_async_create(g_base, &o, &ra, NULL), RINGKV_OK);
    /* let the topology read finish: both fakes known */
    while (ringkv_async_node_count(ra) < 2) {
        event_base_loop(g_base, EVLOOP_ONCE);
    }
    return ra;
}

struct got
{
    int calls;
    int err;
    char msg[256];
    int64_t at_ms;
};

static void got_cb(struct ringkv_async *ra, struct ringkv_result *res, void *d)
{
    (void)ra;
    struct got *g = d;
    g->calls++;
    g->err = res->err;
    snprintf(g->msg, sizeof(g->msg), "%s", res->errmsg);
    g->at_ms = rkl_now_ms();
}

static void drain(struct ringkv_async *ra)
{
    while (ringkv_async_pending(ra) > 0) {
        event_base_loop(g_base, EVLOOP_ONCE);
    }
}

static void test_async_pipelines_and_never_calls_back_inline(void **state)
{
    (void)state;
    struct ringkv_async *ra = open_ra(2000);
    struct got g[50] = {{0}};
    for (int i = 0; i < 50; i++) {
        assert_int_equal(ringkv_async_get(ra, "k", 1, NULL, got_cb, &g[i]),
                         RINGKV_OK);
        assert_int_equal(g[i].calls, 0); /* not inside the call */
    }
    assert_int_equal(ringkv_async_pending(ra), 50);
    drain(ra);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].err, RINGKV_OK);
    }
    assert_int_equal(g_fake[0].commands, 50); /* the slot's first node */
    struct ringkv_stats st;
    ringkv_async_stats_get(ra, &st);
    assert_int_equal(st.calls, 50);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.connects, 1);
    ringkv_async_destroy(ra);
}

static void test_async_silent_node_times_out_then_retries(void **state)
{
    (void)state;
    struct ringkv_async *ra = open_ra(2000);
    g_fake[0].mode = FAKE_SILENT;
    struct got g = {0};
    int64_t t0 = rkl_now_ms();
    assert_int_equal(ringkv_async_set(ra, "k", 1, "v", 1, 0, NULL, got_cb, &g),
                     RINGKV_OK);
    drain(ra);
    assert_int_equal(g.err, RINGKV_OK);
    /* the first attempt had half the deadline, then fake 1 answered */
    assert_true(g.at_ms - t0 >= 900 && g.at_ms - t0 < 2000);
    assert_int_equal(g_fake[1].commands, 1);

    /* both silent: the call ends at its deadline with ETIMEDOUT */
    g_fake[1].mode = FAKE_SILENT;
    struct ringkv_call c = {.timeout_ms = 600};
    t0 = rkl_now_ms();
    assert_int_equal(ringkv_async_get(ra, "k", 1, &c, got_cb, &g), RINGKV_OK);
    drain(ra);
    assert_int_equal(g.err, RINGKV_ETIMEDOUT);
    assert_non_null(strstr(g.msg, "127.0.0.1:"));
    assert_true(g.at_ms - t0 >= 550 && g.at_ms - t0 < 1200);
    ringkv_async_destroy(ra);
}

static void test_async_dropped_connection_retries_idempotent_only(void **state)
{
    (void)state;
    struct ringkv_async *ra = open_ra(2000);
    g_fake[0].mode = FAKE_CLOSE;
    struct got g1 = {0}, g2 = {0};
    ringkv_async_set(ra, "k", 1, "v", 1, 0, NULL, got_cb, &g1);
    drain(ra);
    assert_int_equal(g1.err, RINGKV_OK); /* retried on fake 1 */
    ringkv_async_incr(ra, "n", 1, 1, NULL, got_cb, &g2);
    drain(ra);
    assert_int_equal(g2.err, RINGKV_EIO); /* may have counted: not retried */
    assert_non_null(strstr(g2.msg, "closed"));
    struct ringkv_call idem = {.flags = RINGKV_CALL_IDEMPOTENT};
    ringkv_async_incr(ra, "n", 1, 1, &idem, got_cb, &g2);
    drain(ra);
    assert_int_equal(g2.err, RINGKV_OK);
    ringkv_async_destroy(ra);
}

static void test_async_refused_node_is_skipped(void **state)
{
    (void)state;
    struct ringkv_async *ra = open_ra(2000);
    evconnlistener_free(g_fake[0].l); /* fake 0 refuses from now on */
    g_fake[0].l = NULL;
    struct got g = {0};
    /* INCR too: a request never written is always retried */
    ringkv_async_incr(ra, "n", 1, 1, NULL, got_cb, &g);
    drain(ra);
    assert_int_equal(g.err, RINGKV_OK);
    ringkv_async_destroy(ra);
    /* re-listen for teardown */
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000001)};
    g_fake[0].l =
        evconnlistener_new_bind(g_base, fake_accept, &g_fake[0],
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_async_pipelines_and_never_calls_back_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_async_silent_node_times_out_then_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_async_dropped_connection_retries_idempotent_only, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_async_refused_node_is_skipped,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
