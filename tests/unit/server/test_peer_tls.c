/*
 * test_peer_tls.c - the certificate rules of tls-cluster
 * (src/server/peer_tls.h): which node ids a certificate names (subject
 * CN, SAN DNS and URI entries, byte for byte), whether it may be a
 * node's (serverAuth and clientAuth), how its names are logged, and the
 * start-up check of a node's own certificate; then transports of one
 * process talking mutual TLS over 127.0.0.1 with the contexts of
 * server/tls.h tls_peer_ctx_new (certificates of an in-memory CA written
 * as PEM files to a temporary directory): they connect and deliver, and
 * refuse a certificate for another id, another CA's, and a plain peer
 * (each way).  Certificates are P-256.  Real processes:
 * tests/integration/test_peer_tls.py.
 */
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
#include <cmocka.h>

#include "common/error.h"
#include "proto/peer.h"
#include "server/config.h"
#include "server/peer_tls.h"
#include "server/peer_transport.h"
#include "server/tls.h"

static void add_ext(X509 *x, X509V3_CTX *v, int nid, const char *value)
{
    if (value == NULL) {
        return;
    }
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate: CN `cn` (`cn_len` bytes, may hold a NUL; none when
 * NULL), SAN `san` and extendedKeyUsage `eku` in openssl's config syntax
 * (none when NULL), signed by `ca`/`ca_key` (self-signed when NULL; a CA
 * when `eku` is "CA").  *key_out (if given) gets its key. */
static X509 *issue(const char *cn,
                   int cn_len,
                   const char *san,
                   const char *eku,
                   EVP_PKEY **key_out,
                   X509 *ca,
                   EVP_PKEY *ca_key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               (const unsigned char *)"ringkv test", -1, -1, 0);
    if (cn != NULL) {
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn,
                                                    cn_len, -1, 0),
                         1);
    }
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name);
    X509V3_CTX v;
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, ca ? ca : x, x, NULL, NULL, 0);
    add_ext(x, &v, NID_subject_alt_name, san);
    if (eku && strcmp(eku, "CA") == 0) {
        add_ext(x, &v, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, &v, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, &v, NID_ext_key_usage, eku);
    }
    assert_true(X509_sign(x, ca_key ? ca_key : k, EVP_sha256()) > 0);
    if (key_out != NULL) {
        *key_out = k;
    } else {
        EVP_PKEY_free(k);
    }
    return x;
}

static X509 *make_cert(const char *cn,
                       int cn_len,
                       const char *san,
                       const char *eku,
                       EVP_PKEY **key_out)
{
    return issue(cn, cn_len, san, eku, key_out, NULL, NULL);
}

static bool names(X509 *x, const char *id)
{
    return peer_tls_cert_names(x, id, strlen(id));
}

static void test_peer_tls_cert_names_its_cn_exactly(void **state)
{
    (void)state;
    X509 *x = make_cert("127.0.0.1:7381", -1, NULL, NULL, NULL);
    assert_true(names(x, "127.0.0.1:7381"));
    assert_false(names(x, "127.0.0.1:7382"));
    assert_false(names(x, "127.0.0.1:738"));   /* a prefix */
    assert_false(names(x, "127.0.0.1:73811")); /* longer */
    assert_false(names(x, "ringkv test"));     /* another subject field */
    assert_false(peer_tls_cert_names(x, "127.0.0.1:7381", 0));
    assert_false(peer_tls_cert_names(NULL, "x", 1));
    X509_free(x);
    x = make_cert("Node1", -1, NULL, NULL, NULL);
    assert_true(names(x, "Node1"));
    assert_false(names(x, "node1")); /* case matters: ids are bytes */
    X509_free(x);
}

static void test_peer_tls_cert_names_san_dns_and_uri_not_ip(void **state)
{
    (void)state;
    X509 *x = make_cert("other", -1,
                        "DNS:node-3.lan,URI:spiffe://ringkv/n4,"
                        "IP:127.0.0.1,email:n5@example.org",
                        NULL, NULL);
    assert_true(names(x, "node-3.lan"));
    assert_true(names(x, "spiffe://ringkv/n4"));
    assert_true(names(x, "other")); /* the CN still counts */
    assert_false(names(x, "127.0.0.1"));
    assert_false(names(x, "n5@example.org"));
    assert_false(names(x, "node-3"));
    X509_free(x);
    x = make_cert(NULL, 0, "DNS:node7", NULL, NULL); /* no CN at all */
    assert_true(names(x, "node7"));
    X509_free(x);
}

static void test_peer_tls_cert_names_never_match_with_a_nul(void **state)
{
    (void)state;
    /* CN "node1\0.evil": neither "node1" nor the whole 11 bytes */
    X509 *x = make_cert("node1\0.evil", 11, NULL, NULL, NULL);
    assert_false(names(x, "node1"));
    assert_false(peer_tls_cert_names(x, "node1\0.evil", 11));
    X509_free(x);
}

static void test_peer_tls_only_server_and_client_certs_are_nodes(void **state)
{
    (void)state;
    X509 *x = make_cert("n", -1, NULL, NULL, NULL);
    assert_true(peer_tls_cert_is_for_nodes(x)); /* no EKU: any use */
    X509_free(x);
    x = make_cert("n", -1, NULL, "serverAuth,clientAuth", NULL);
    assert_true(peer_tls_cert_is_for_nodes(x));
    X509_free(x);
    x = make_cert("n", -1, NULL, "clientAuth", NULL); /* a client's */
    assert_false(peer_tls_cert_is_for_nodes(x));
    X509_free(x);
    x = make_cert("n", -1, NULL, "serverAuth", NULL); /* a server's */
    assert_false(peer_tls_cert_is_for_nodes(x));
    X509_free(x);
    assert_false(peer_tls_cert_is_for_nodes(NULL));
}

static void test_peer_tls_cert_names_str_escapes_and_bounds(void **state)
{
    (void)state;
    char out[128];
    X509 *x = make_cert("a\"b=c\\d e", -1, "DNS:n1,URI:x:y", NULL, NULL);
    assert_string_equal(peer_tls_cert_names_str(x, out, sizeof(out)),
                        "CN=a?b?c?d?e,DNS=n1,URI=x:y");
    char small[12];
    peer_tls_cert_names_str(x, small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
    assert_memory_equal(small, "CN=a?b?c?d?", 11);
    X509_free(x);
    x = make_cert(NULL, 0, "IP:127.0.0.1", NULL, NULL);
    assert_string_equal(peer_tls_cert_names_str(x, out, sizeof(out)), "none");
    X509_free(x);
    assert_string_equal(peer_tls_cert_names_str(NULL, out, sizeof(out)),
                        "none");
}

/* A context with a certificate of CN `cn` and extendedKeyUsage `eku`. */
static SSL_CTX *ctx_with(const char *cn, const char *eku)
{
    EVP_PKEY *k = NULL;
    X509 *x = make_cert(cn, -1, NULL, eku, &k);
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    return ctx;
}

static void test_peer_tls_ctx_check_wants_this_nodes_certificate(void **state)
{
    (void)state;
    char err[1024];
    SSL_CTX *ctx = ctx_with("node1", "serverAuth,clientAuth");
    assert_int_equal(peer_tls_ctx_check(ctx, "node1", err, sizeof(err)), RK_OK);
    assert_int_equal(peer_tls_ctx_check(ctx, "node2", err, sizeof(err)),
                     RK_EINVAL);
    assert_non_null(strstr(err, "names CN=node1, not this node's id node2"));
    assert_non_null(strstr(err, "--node node2"));
    SSL_CTX_free(ctx);
    ctx = ctx_with("client", "clientAuth");
    assert_int_equal(peer_tls_ctx_check(ctx, "client", err, sizeof(err)),
                     RK_EINVAL);
    assert_non_null(strstr(err, "serverAuth,clientAuth"));
    SSL_CTX_free(ctx);
    ctx = SSL_CTX_new(TLS_method());
    assert_int_equal(peer_tls_ctx_check(ctx, "node1", err, sizeof(err)),
                     RK_EINVAL);
    assert_non_null(strstr(err, "no certificate"));
    SSL_CTX_free(ctx);
}

/* ---- transports over mutual TLS ---------------------------------------- */

#define WAIT_MS 5000

struct pki
{
    char dir[64]; /* mkdtemp */
    X509 *ca[2];  /* the cluster's CA and another one */
    EVP_PKEY *ca_key[2];
};

static struct pki g_pki;

/* DIR/NAME.crt and NAME.key: a node certificate for `cn` of CA `which`. */
static void write_leaf(const char *name, const char *cn, int which)
{
    EVP_PKEY *k = NULL;
    X509 *x = issue(cn, -1, NULL, "serverAuth,clientAuth", &k, g_pki.ca[which],
                    g_pki.ca_key[which]);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s.crt", g_pki.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", g_pki.dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int pki_setup(void **state)
{
    (void)state;
    snprintf(g_pki.dir, sizeof(g_pki.dir), "/tmp/rk-peer-tls-XXXXXX");
    if (mkdtemp(g_pki.dir) == NULL) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        g_pki.ca[i] = issue(i ? "other CA" : "cluster CA", -1, NULL, "CA",
                            &g_pki.ca_key[i], NULL, NULL);
        char path[128];
        snprintf(path, sizeof(path), "%s/ca%d.crt", g_pki.dir, i);
        FILE *f = fopen(path, "w");
        if (f == NULL || PEM_write_X509(f, g_pki.ca[i]) != 1) {
            return -1;
        }
        fclose(f);
    }
    write_leaf("a", "a", 0);
    write_leaf("b", "b", 0);
    write_leaf("other-ca-d", "d", 1);
    return 0;
}

static int pki_teardown(void **state)
{
    (void)state;
    static const char *files[] = {"ca0.crt",        "ca1.crt",       "a.crt",
                                  "a.key",          "b.crt",         "b.key",
                                  "other-ca-d.crt", "other-ca-d.key"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", g_pki.dir, files[i]);
        unlink(path);
    }
    rmdir(g_pki.dir);
    for (int i = 0; i < 2; i++) {
        X509_free(g_pki.ca[i]);
        EVP_PKEY_free(g_pki.ca_key[i]);
    }
    return 0;
}

/* The peers' context of tls_peer_ctx_new with certificate NAME and CA
 * `which` (as tls-cert-file, tls-key-file, tls-ca-cert-file). */
static SSL_CTX *peer_ctx(const char *name, int which)
{
    struct rk_config *cfg = calloc(1, sizeof(*cfg));
    assert_non_null(cfg);
    config_init(cfg);
    snprintf(cfg->tls_cert_file, sizeof(cfg->tls_cert_file), "%s/%s.crt",
             g_pki.dir, name);
    snprintf(cfg->tls_key_file, sizeof(cfg->tls_key_file), "%s/%s.key",
             g_pki.dir, name);
    snprintf(cfg->tls_ca_cert_file, sizeof(cfg->tls_ca_cert_file),
             "%s/ca%d.crt", g_pki.dir, which);
    char err[512];
    SSL_CTX *ctx = tls_peer_ctx_new(cfg, err, sizeof(err));
    if (ctx == NULL) {
        fail_msg("tls_peer_ctx_new: %s", err);
    }
    free(cfg);
    return ctx;
}

struct tnode
{
    struct peer_transport *t;
    uint16_t port;
    size_t n_msgs, n_connected, n_auth_failed;
    int auth_reason;
    bool auth_tls;
    uint64_t next_seq; /* PING seq expected next */
    bool in_order;
    size_t big_len; /* object bytes of the last KV_PUT */
};

static void t_on_message(void *data,
                         const char *id,
                         size_t len,
                         const struct peer_msg *m)
{
    (void)id;
    (void)len;
    struct tnode *n = data;
    n->n_msgs++;
    if (m->type == PEER_PING) {
        n->in_order = n->in_order && m->ping.seq == n->next_seq;
        n->next_seq = m->ping.seq + 1;
    } else if (m->type == PEER_KV_PUT) {
        n->big_len = m->kv_put.object.len;
    }
}

static void t_on_connected(void *data,
                           const char *id,
                           size_t len,
                           const struct peer_hello *h)
{
    (void)id;
    (void)len;
    (void)h;
    ((struct tnode *)data)->n_connected++;
}

static void t_on_auth_failed(void *data,
                             const char *host,
                             uint16_t port,
                             int reason,
                             bool tls,
                             const char *why)
{
    (void)host;
    (void)port;
    (void)why;
    struct tnode *n = data;
    n->n_auth_failed++;
    n->auth_reason = reason;
    n->auth_tls = tls;
}

static const struct peer_transport_cbs t_cbs = {t_on_message, t_on_connected,
                                                NULL, t_on_auth_failed};

static const unsigned char g_secret[32] = "test-cluster-secret-0123456789a";

/* A transport with node id `id` and TLS context `ctx` (NULL: plain). */
static void tnode_start(struct event_base *base,
                        struct tnode *n,
                        const char *id,
                        SSL_CTX *ctx)
{
    memset(n, 0, sizeof(*n));
    n->in_order = true;
    struct peer_transport_config cfg = {
        .self_id = id,
        .cluster_name = "test",
        .bind_host = "127.0.0.1",
        .connect_timeout_ms = 1000,
        .backoff_min_ms = 20,
        .backoff_max_ms = 200,
        .secret = g_secret,
        .secret_len = sizeof(g_secret),
        .tls_ctx = ctx,
    };
    char err[256];
    if (peer_transport_create(base, &cfg, &t_cbs, n, &n->t, err, sizeof(err)) !=
        RK_OK) {
        fail_msg("peer_transport_create: %s", err);
    }
    n->port = peer_transport_port(n->t);
    SSL_CTX_free(ctx); /* the transport holds its own reference */
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

#define RUN_UNTIL(base, cond, ms)                 \
    do {                                          \
        uint64_t dl_ = mono_ms() + (ms);          \
        while (!(cond) && mono_ms() < dl_) {      \
            event_base_loop((base), EVLOOP_ONCE); \
        }                                         \
    } while (0)

static struct event_base *loop_new(struct event **tick)
{
    struct event_base *base = event_base_new();
    assert_non_null(base);
    *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(*tick, &tv);
    return base;
}

static void loop_free(struct event_base *base, struct event *tick)
{
    event_free(tick);
    event_base_free(base);
}

/* A PING from `from` to the transport listening on `port`. */
static void ping(struct tnode *from, uint16_t port)
{
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_PING;
    m.ping.seq = 1;
    m.ping.from = (struct peer_bytes){"x", 1};
    assert_int_equal(peer_transport_send(from->t, NULL, "127.0.0.1", port, &m),
                     RK_OK);
}

static uint64_t tls_failed(const struct tnode *n)
{
    struct peer_transport_stats st;
    assert_int_equal(peer_transport_stats(n->t, NULL, &st), RK_OK);
    return st.tls_failed;
}

static void test_peer_tls_transports_talk_over_mutual_tls(void **state)
{
    (void)state;
    struct event *tick;
    struct event_base *base = loop_new(&tick);
    struct tnode a, b;
    tnode_start(base, &a, "a", peer_ctx("a", 0));
    tnode_start(base, &b, "b", peer_ctx("b", 0));
    assert_true(peer_transport_is_tls(a.t));
    ping(&a, b.port);
    RUN_UNTIL(base, b.n_msgs == 1, WAIT_MS);
    assert_int_equal(b.n_msgs, 1);
    assert_int_equal(a.n_connected, 1);
    assert_int_equal(tls_failed(&a) + tls_failed(&b), 0);
    /* a new context (CONFIG SET): the next connections use it */
    assert_int_equal(peer_transport_set_tls(a.t, NULL), RK_EINVAL);
    SSL_CTX *ctx = peer_ctx("a", 0);
    assert_int_equal(peer_transport_set_tls(a.t, ctx), RK_OK);
    SSL_CTX_free(ctx);
    peer_transport_destroy(a.t);
    peer_transport_destroy(b.t);
    loop_free(base, tick);
}

/* A burst of 1,000 frames, then a 1 MiB value (CHUNKs): TLS records
 * arrive several to a read, and every frame gets through in order (none
 * waits in OpenSSL's read-ahead buffer: pt__tls_drain). */
static void test_peer_tls_transports_deliver_a_burst_and_a_large_value(
    void **state)
{
    (void)state;
    struct event *tick;
    struct event_base *base = loop_new(&tick);
    struct tnode a, b;
    tnode_start(base, &a, "a", peer_ctx("a", 0));
    tnode_start(base, &b, "b", peer_ctx("b", 0));
    struct peer_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PEER_PING;
    m.ping.from = (struct peer_bytes){"a", 1};
    m.ping.seq = 0; /* the first by address: connects, learns "b" */
    assert_int_equal(peer_transport_send(a.t, NULL, "127.0.0.1", b.port, &m),
                     RK_OK);
    RUN_UNTIL(base, b.n_msgs == 1, WAIT_MS);
    assert_int_equal(b.n_msgs, 1);
    for (uint64_t i = 1; i < 1000; i++) { /* then a burst, no loop turn */
        m.ping.seq = i;
        assert_int_equal(peer_transport_send(a.t, "b", NULL, 0, &m), RK_OK);
    }
    RUN_UNTIL(base, b.n_msgs == 1000, WAIT_MS);
    assert_int_equal(b.n_msgs, 1000);
    assert_true(b.in_order);
    size_t big = 1024 * 1024;
    char *value = malloc(big);
    assert_non_null(value);
    memset(value, 'v', big);
    memset(&m, 0, sizeof(m));
    m.type = PEER_KV_PUT;
    m.kv_put.key = (struct peer_bytes){"k", 1};
    m.kv_put.object = (struct peer_bytes){value, big};
    assert_int_equal(peer_transport_send(a.t, "b", NULL, 0, &m), RK_OK);
    RUN_UNTIL(base, b.big_len == big, WAIT_MS);
    assert_int_equal(b.big_len, big);
    free(value);
    assert_int_equal(tls_failed(&a) + tls_failed(&b), 0);
    peer_transport_destroy(a.t);
    peer_transport_destroy(b.t);
    loop_free(base, tick);
}

static void test_peer_tls_transport_refuses_a_certificate_of_another_id(
    void **state)
{
    (void)state;
    struct event *tick;
    struct event_base *base = loop_new(&tick);
    struct tnode b, c;
    tnode_start(base, &b, "b", peer_ctx("b", 0));
    tnode_start(base, &c, "c", peer_ctx("a", 0)); /* HELLO "c", cert "a" */
    ping(&c, b.port);
    RUN_UNTIL(base, tls_failed(&b) >= 1, WAIT_MS);
    assert_int_equal(tls_failed(&b), 1);
    RUN_UNTIL(base, false, 200);
    assert_int_equal(b.n_msgs, 0);
    assert_int_equal(b.n_connected, 0);
    peer_transport_destroy(b.t);
    peer_transport_destroy(c.t);
    loop_free(base, tick);
}

static void test_peer_tls_transport_refuses_another_cas_certificate(
    void **state)
{
    (void)state;
    struct event *tick;
    struct event_base *base = loop_new(&tick);
    struct tnode b, d;
    tnode_start(base, &b, "b", peer_ctx("b", 0));
    tnode_start(base, &d, "d", peer_ctx("other-ca-d", 1));
    ping(&d, b.port);
    RUN_UNTIL(base, d.n_auth_failed >= 1 && tls_failed(&b) >= 1, WAIT_MS);
    assert_true(d.auth_tls);
    assert_int_equal(d.auth_reason, RK_EPERM);
    assert_true(tls_failed(&b) >= 1 && tls_failed(&d) >= 1);
    assert_int_equal(b.n_msgs + b.n_connected + d.n_connected, 0);
    peer_transport_destroy(b.t);
    peer_transport_destroy(d.t);
    loop_free(base, tick);
}

static void test_peer_tls_plain_and_tls_transports_refuse_each_other(
    void **state)
{
    (void)state;
    struct event *tick;
    struct event_base *base = loop_new(&tick);
    struct tnode b, p;
    tnode_start(base, &b, "b", peer_ctx("b", 0));
    tnode_start(base, &p, "p", NULL);
    assert_false(peer_transport_is_tls(p.t));
    assert_int_equal(peer_transport_set_tls(p.t, NULL), RK_EINVAL);
    ping(&p, b.port); /* plain dials TLS */
    RUN_UNTIL(base, p.n_auth_failed >= 1 && tls_failed(&b) >= 1, WAIT_MS);
    assert_true(p.auth_tls);
    assert_int_equal(p.auth_reason, RK_EPROTO);
    ping(&b, p.port); /* TLS dials plain */
    RUN_UNTIL(base, b.n_auth_failed >= 1, WAIT_MS);
    assert_true(b.auth_tls);
    assert_int_equal(b.auth_reason, RK_EPROTO);
    assert_int_equal(b.n_msgs + p.n_msgs + b.n_connected + p.n_connected, 0);
    peer_transport_destroy(b.t);
    peer_transport_destroy(p.t);
    loop_free(base, tick);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as ringkvd does (peer_transport.h) */
    const struct CMUnitTest transports[] = {
        cmocka_unit_test(test_peer_tls_transports_talk_over_mutual_tls),
        cmocka_unit_test(
            test_peer_tls_transports_deliver_a_burst_and_a_large_value),
        cmocka_unit_test(
            test_peer_tls_transport_refuses_a_certificate_of_another_id),
        cmocka_unit_test(
            test_peer_tls_transport_refuses_another_cas_certificate),
        cmocka_unit_test(
            test_peer_tls_plain_and_tls_transports_refuse_each_other),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_tls_cert_names_its_cn_exactly),
        cmocka_unit_test(test_peer_tls_cert_names_san_dns_and_uri_not_ip),
        cmocka_unit_test(test_peer_tls_cert_names_never_match_with_a_nul),
        cmocka_unit_test(test_peer_tls_only_server_and_client_certs_are_nodes),
        cmocka_unit_test(test_peer_tls_cert_names_str_escapes_and_bounds),
        cmocka_unit_test(test_peer_tls_ctx_check_wants_this_nodes_certificate),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(transports, pki_setup, pki_teardown);
}
