/*
 * http.c - the HTTP listener and its operational endpoints (contract in
 * http.h).  evhttp parses requests (bounded header and body sizes, a
 * per-connection timeout); this file only routes and renders JSON.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/resp.h"
#include "server/cluster.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "server/tls.h"

#define HTTP_MAX_HEADERS (8 * 1024)
#define HTTP_MAX_BODY    (1024 * 1024)
#define HTTP_TIMEOUT_S   10

/* The standard reason phrase of an HTTP status (RFC 9110 section 15). */
static const char *http_reason(int code)
{
    switch (code) {
        case 200:
            return "OK";
        case 204:
            return "No Content";
        case 300:
            return "Multiple Choices";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 409:
            return "Conflict";
        case 412:
            return "Precondition Failed";
        case 413:
            return "Content Too Large";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        default:
            return code >= 500 ? "Server Error" : "Client Error";
    }
}

/* Sends `j` (consumed) with `code`. */
static void send_json(struct evhttp_request *req, int code, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    struct evbuffer *out = evbuffer_new();
    if (text == NULL || out == NULL) {
        free(text);
        if (out) {
            evbuffer_free(out);
        }
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    free(text);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, http_reason(code), out);
    evbuffer_free(out);
}

static void send_error(struct evhttp_request *req,
                       int code,
                       const char *ecode,
                       const char *msg)
{
    send_json(req, code, json_pack("{s:s, s:s}", "error", msg, "code", ecode));
}

/* Whether `name` is in the comma-separated `list` ("*" matches all). */
static bool in_list(const char *list, const char *name, size_t len)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        while (l > 0 && *p == ' ') {
            p++;
            l--;
        }
        while (l > 0 && p[l - 1] == ' ') {
            l--;
        }
        if ((l == 1 && *p == '*') ||
            (l == len && strncasecmp(p, name, len) == 0)) {
            return true;
        }
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    return false;
}

/* Whether the Host header names this server in a way a DNS rebinding
 * attack cannot: an IP literal, localhost, or a configured name
 * (http-allowed-hosts).  A request without Host (HTTP/1.0) passes. */
static bool host_allowed(struct server *s, const char *host)
{
    if (host == NULL) {
        return true;
    }
    size_t len = strlen(host);
    if (len > 0 && host[0] == '[') { /* [v6]:port */
        return strchr(host, ']') != NULL;
    }
    const char *colon = strrchr(host, ':');
    size_t hl = colon ? (size_t)(colon - host) : len;
    char name[256];
    if (hl == 0 || hl >= sizeof(name)) {
        return false;
    }
    memcpy(name, host, hl);
    name[hl] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1 ||
        strcasecmp(name, "localhost") == 0) {
        return true;
    }
    return in_list(s->cfg->http_allowed_hosts, name, hl);
}

/* The CORS header for a request from another origin: only for the
 * members' own status pages and the origins of http-cors-origin; no
 * header otherwise, so a web page elsewhere cannot read the answer. */
static void add_cors(struct server *s, struct evhttp_request *req)
{
    const char *origin =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (origin == NULL || strlen(origin) > 300) {
        return;
    }
    if (in_list(s->cfg->http_cors_origin, origin, strlen(origin)) ||
        cluster_is_member_origin(s, origin)) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Access-Control-Allow-Origin", origin);
        evhttp_add_header(h, "Vary", "Origin");
    }
}

static struct acl_user *http_user(struct server *s, struct evhttp_request *req);
static bool via_tls(struct evhttp_connection *conn);
static int local_port(struct evhttp_connection *conn);

/*
 * Admission of every HTTP request (issue 15 item 4), before its handler:
 * protected mode (no password: loopback clients only, 403), the Host
 * check against DNS rebinding (403), and, when `ops` (the status page,
 * /stats, /cluster, /metrics, /health unless http-health-public) and a
 * password is set, the password (401).  Adds the CORS header.  Returns
 * false after answering.
 */
static bool http_admit(struct server *s, struct evhttp_request *req, bool ops)
{
    char *peer = NULL;
    uint16_t pport = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    evhttp_connection_get_peer(conn, &peer, &pport);
    if (s->https != NULL && !via_tls(conn) &&
        local_port(conn) == s->cfg->https_port) {
        /* https_bevcb failed (out of memory) and evhttp fell back to a
         * plain connection: never serve the HTTPS port in clear */
        evhttp_send_error(req, 400, "TLS required");
        return false;
    }
    if (s->cfg->protected_mode && !server_auth_required(s) &&
        (peer == NULL || !auth_guard_is_loopback(peer))) {
        s->stats.protected_denied++;
        send_error(req, 403, "protected_mode",
                   "ringkv is in protected mode: no password is set "
                   "(requirepass), so only loopback clients may connect; "
                   "set a password or protected-mode no (docs/security.md)");
        return false;
    }
    const char *host =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (!host_allowed(s, host)) {
        send_error(req, 403, "host_not_allowed",
                   "this Host is not an IP address, localhost or a name of "
                   "http-allowed-hosts (a guard against DNS rebinding)");
        return false;
    }
    add_cors(s, req);
    if (!ops) {
        return true;
    }
    struct acl_user *u = http_user(s, req);
    if (u == NULL) {
        return false;
    }
    /* the ops endpoints show what INFO shows: a user needs INFO */
    int id = acl_catalog_find(acl_catalog_of(s->acl), "info", 4);
    if (id < 0 || !acl_user_can_run(u, (size_t)id)) {
        s->stats.acl_denied_cmd++;
        send_error(req, 403, "forbidden",
                   "this user may not run INFO, which the operations "
                   "endpoints need (ACL SETUSER NAME +info)");
        return false;
    }
    return true;
}

/* Whether the connection runs over TLS (an OpenSSL bufferevent). */
static bool via_tls(struct evhttp_connection *conn)
{
    struct bufferevent *b = evhttp_connection_get_bufferevent(conn);
    return b != NULL && bufferevent_openssl_get_ssl(b) != NULL;
}

/* The local port a connection was accepted on (0: unknown). */
static int local_port(struct evhttp_connection *conn)
{
    struct bufferevent *b = evhttp_connection_get_bufferevent(conn);
    evutil_socket_t fd = b ? bufferevent_getfd(b) : -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

/* GET and HEAD only; anything else answers 405 and returns false. */
static bool allow_get(struct evhttp_request *req)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) {
        return true;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                      "GET, HEAD");
    send_error(req, 405, "method_not_allowed",
               "this resource answers GET and HEAD only");
    return false;
}

/* An INFO value as JSON: an integer or a real when it is one, else a
 * string. */
static json_t *info_value(const char *v)
{
    if (*v == '\0') {
        return json_string("");
    }
    char *end = NULL;
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (errno == 0 && end && *end == '\0') {
        return json_integer(i);
    }
    errno = 0;
    double d = strtod(v, &end);
    if (errno == 0 && end && *end == '\0' && strchr(v, '.') != NULL) {
        return json_real(d);
    }
    return json_string(v);
}

/* The INFO text of every section as {"section": {"field": value}}. */
static json_t *stats_json(struct server *s)
{
    struct rk_buf text;
    rk_buf_init(&text);
    info_render(s, NULL, "everything", &text);
    json_t *root = json_object();
    json_t *sec = NULL;
    size_t pos = 0;
    while (root && pos < text.len) {
        char *line = text.base + pos;
        char *eol = memchr(line, '\n', text.len - pos);
        size_t len = eol ? (size_t)(eol - line) : text.len - pos;
        pos += len + (eol ? 1 : 0);
        if (len && line[len - 1] == '\r') {
            len--;
        }
        line[len] = '\0';
        if (len > 2 && line[0] == '#') {
            char name[64];
            size_t n = 0;
            for (const char *p = line + 2; *p && n < sizeof(name) - 1; p++) {
                name[n++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
            }
            name[n] = '\0';
            sec = json_object();
            json_object_set_new(root, name, sec);
            continue;
        }
        char *colon = strchr(line, ':');
        if (colon == NULL || sec == NULL) {
            continue;
        }
        *colon = '\0';
        json_object_set_new(sec, line, info_value(colon + 1));
    }
    rk_buf_fini(&text);
    if (root) {
        json_t *lat = cluster_latency_json(s);
        if (lat) {
            json_object_set_new(root, "latency", lat);
        }
    }
    return root;
}

static void on_health(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    if (!http_admit(s, req, !s->cfg->http_health_public) || !allow_get(req)) {
        return;
    }
    const char *why = NULL;
    const char *degraded = NULL; /* still serving: 200 */
    char reason[384];
    struct engine_stats st;
    engine_stats(s->engine, &st);
    if (s->shutting_down) {
        why = "shutting down";
    } else if ((degraded = cluster_degraded_reason(s)) != NULL) {
        /* reads served, writes coordinated to the other replicas */
    } else if (st.read_only) {
        disk_degraded_reason(&s->disk, s->cfg->data_dir, st.error, reason,
                             sizeof(reason));
        why = reason;
    } else {
        why = cluster_unavailable_reason(s);
    }
    json_t *j = json_pack("{s:s, s:s}", "status",
                          why        ? "unavailable"
                          : degraded ? "degraded"
                                     : "ok",
                          "node_id", cluster_node_id(s));
    if (why || degraded) {
        json_object_set_new(j, "reason", json_string(why ? why : degraded));
    }
    if (s->disk.known) {
        json_object_set_new(j, "disk_free_bytes",
                            json_integer((json_int_t)s->disk.free_bytes));
        json_object_set_new(j, "disk_low", json_boolean(s->disk.low));
    }
    send_json(req, why ? 503 : 200, j);
}

static void on_stats(struct evhttp_request *req, void *arg)
{
    if (http_admit(arg, req, true) && allow_get(req)) {
        send_json(req, 200, stats_json(arg));
    }
}

static void on_cluster(struct evhttp_request *req, void *arg)
{
    if (http_admit(arg, req, true) && allow_get(req)) {
        send_json(req, 200, cluster_json(arg));
    }
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    if (!http_admit(arg, req, true) || !allow_get(req)) {
        return;
    }
    struct rk_buf text;
    rk_buf_init(&text);
    metrics_render(arg, &text);
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        rk_buf_fini(&text);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(out, text.base ? text.base : "", text.len);
    rk_buf_fini(&text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

extern const unsigned char rk_status_html[];
extern const size_t rk_status_html_len;

static void on_kv(struct evhttp_request *req, void *arg);

static void on_other(struct evhttp_request *req, void *arg)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    bool kv = path && strncmp(path, "/kv/", 4) == 0;
    /* /kv checks the password itself (after its own checks) */
    if (!http_admit(arg, req, !kv)) {
        return;
    }
    if (kv) {
        on_kv(req, arg);
        return;
    }
    if (path && (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)) {
        if (!allow_get(req)) {
            return;
        }
        struct evbuffer *out = evbuffer_new();
        if (out == NULL) {
            evhttp_send_error(req, 500, "out of memory");
            return;
        }
        evbuffer_add_reference(out, rk_status_html, rk_status_html_len, NULL,
                               NULL);
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
        evhttp_add_header(h, "Cache-Control", "no-store");
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
        return;
    }
    send_error(req, 404, "not_found", "no such resource");
}

/* ---- the data API: /kv/{key} ------------------------------------------- */

/*
 * A /kv request runs as a RESP command on an internal client (so it goes
 * through exactly the coordinator path a Redis client's command takes):
 * GET -> RINGKV.GETALL, PUT -> SET (or RINGKV.PUT with X-Ringkv-Context),
 * DELETE -> DEL.  The reply is turned into HTTP when it is complete.
 * evhttp handles one request at a time per connection, so a close
 * callback on the connection tells us when the client went away.
 */
struct kv_req
{
    struct evhttp_request *req; /* NULL once the connection closed */
    struct client *c;
    enum evhttp_cmd_type method;
    struct kv_req *prev, *next; /* pending list (http_stop frees them) */
};

static struct kv_req *g_pending;

static void kv_unlink(struct kv_req *k)
{
    if (k->prev) {
        k->prev->next = k->next;
    } else {
        g_pending = k->next;
    }
    if (k->next) {
        k->next->prev = k->prev;
    }
}

static void kv_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct kv_req *k = arg;
    k->req = NULL; /* the answer, when it comes, goes nowhere */
}

static void kv_detach(struct kv_req *k)
{
    if (k->req) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(k->req);
        if (evcon) {
            evhttp_connection_set_closecb(evcon, NULL, NULL);
        }
    }
}

static json_t *b64_json(const char *p, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    unsigned char *out = malloc(cap);
    if (out == NULL) {
        return NULL;
    }
    int n = EVP_EncodeBlock(out, (const unsigned char *)p, (int)len);
    json_t *j = json_stringn((const char *)out, (size_t)(n < 0 ? 0 : n));
    free(out);
    return j;
}

/* An error reply of the command as HTTP: NOQUORUM and cluster states are
 * 503, argument errors 400, the rest 500. */
static void kv_error(struct evhttp_request *req, const char *msg)
{
    unsigned got = 0, need = 0;
    if (strncmp(msg, "NOQUORUM", 8) == 0 &&
        sscanf(msg, "NOQUORUM reached %u of %u", &got, &need) == 2) {
        /* how many replicas answered, for the client to decide */
        send_json(req, 503,
                  json_pack("{s:s, s:s, s:i, s:i}", "error", msg, "code",
                            "no_quorum", "replicas_answered", (int)got,
                            "replicas_needed", (int)need));
    } else if (strstr(msg, "exceeds cluster-max-value-bytes")) {
        unsigned long long vlen = 0, limit = 0;
        sscanf(msg,
               "ERR value of %llu bytes exceeds cluster-max-value-bytes "
               "(%llu)",
               &vlen, &limit);
        send_json(req, 413,
                  json_pack("{s:s, s:s, s:I, s:I}", "error", msg, "code",
                            "value_too_large", "value_bytes", (json_int_t)vlen,
                            "limit_bytes", (json_int_t)limit));
    } else if (strstr(msg, "stored in chunks")) {
        /* a value over 1 MiB written with SET (cluster.md "Large values"):
         * the versioned API does not return chunked values yet */
        send_error(req, 501, "chunked_value", msg);
    } else if (strncmp(msg, "NOPERM", 6) == 0) {
        send_error(req, 403, "forbidden", msg);
    } else if (strncmp(msg, "NOQUORUM", 8) == 0) {
        send_error(req, 503, "no_quorum", msg);
    } else if (strncmp(msg, "CLUSTERDOWN", 11) == 0 ||
               strncmp(msg, "TRYAGAIN", 8) == 0) {
        send_error(req, 503, "unavailable", msg);
    } else if (strstr(msg, "invalid") || strstr(msg, "wrong number")) {
        send_error(req, 400, "bad_request", msg);
    } else {
        send_error(req, 500, "server_error", msg);
    }
}

static void kv_answer_get(struct evhttp_request *req,
                          const struct resp_value *v)
{
    if (v->type != RESP_ARRAY || v->n != 2 || v->elems[0].type != RESP_BULK ||
        v->elems[1].type != RESP_ARRAY) {
        send_error(req, 500, "server_error", "unexpected reply");
        return;
    }
    const struct resp_value *ctx = &v->elems[0], *sibs = &v->elems[1];
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (ctx->len) {
        evhttp_add_header(h, "X-Ringkv-Context", ctx->str);
    }
    size_t live = 0, last = 0;
    for (size_t i = 0; i < sibs->n; i++) {
        if (sibs->elems[i].n == 4 &&
            sibs->elems[i].elems[0].type == RESP_BULK) {
            live++;
            last = i;
        }
    }
    if (sibs->n > 1) {
        json_t *list = json_array();
        for (size_t i = 0; i < sibs->n; i++) {
            const struct resp_value *sb = &sibs->elems[i];
            if (sb->n != 4) {
                continue;
            }
            bool val = sb->elems[0].type == RESP_BULK;
            bool ct = sb->elems[3].type == RESP_BULK;
            json_array_append_new(
                list,
                json_pack("{s:o, s:I, s:I, s:b, s:o}", "value",
                          val ? b64_json(sb->elems[0].str, sb->elems[0].len)
                              : json_null(),
                          "hlc", (json_int_t)sb->elems[1].integer,
                          "timestamp_ms", (json_int_t)sb->elems[2].integer,
                          "deleted", !val, "content_type",
                          ct ? json_stringn(sb->elems[3].str, sb->elems[3].len)
                             : json_null()));
        }
        send_json(
            req, 300,
            json_pack("{s:s, s:o}", "context", ctx->str, "siblings", list));
        return;
    }
    if (live == 0) {
        send_error(req, 404, "not_found", "no such key");
        return;
    }
    const struct resp_value *val = &sibs->elems[last].elems[0];
    const struct resp_value *ct = &sibs->elems[last].elems[3];
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(out, val->str, val->len);
    /* the stored content type (checked visible ASCII on the way in) */
    evhttp_add_header(
        h, "Content-Type",
        ct->type == RESP_BULK ? ct->str : "application/octet-stream");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* The internal client's reply is complete. */
static void kv_ready(struct client *c, void *data)
{
    struct kv_req *k = data;
    if (k->req) {
        kv_detach(k);
        struct resp_value *v = NULL;
        size_t used = 0;
        int rc = resp_reply_parse(c->obuf.base, c->obuf.len, 8, UINT64_MAX,
                                  &used, NULL, &v);
        if (rc != RK_OK) {
            send_error(k->req, 500, "server_error", "unreadable reply");
        } else if (v->type == RESP_ERROR) {
            kv_error(k->req, v->str);
        } else if (k->method == EVHTTP_REQ_GET ||
                   k->method == EVHTTP_REQ_HEAD) {
            kv_answer_get(k->req, v);
        } else if (k->method == EVHTTP_REQ_DELETE && v->type == RESP_INT &&
                   v->integer == 0) {
            send_error(k->req, 404, "not_found", "no such key");
        } else {
            evhttp_send_reply(k->req, 204, "No Content", NULL);
        }
        resp_value_free(v);
    }
    kv_unlink(k);
    free(k);
    server_client_free(c);
}

/* The user and password of "Authorization: Basic" (RFC 7617: base64 of
 * "user:password"), authenticated against the ACL users; NULL when the
 * credentials are malformed or wrong. */
static struct acl_user *basic_user(struct server *s,
                                   const char *b64,
                                   char *name,
                                   size_t cap)
{
    size_t n = strlen(b64);
    if (n == 0 || n % 4 != 0 || n > 1024) {
        return NULL;
    }
    unsigned char out[1024];
    int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    if (got < 0) {
        return NULL;
    }
    size_t len = (size_t)got;
    for (size_t i = n; i > 0 && b64[i - 1] == '=' && len > 0; i--) {
        len--; /* EVP_DecodeBlock counts the padding as zero bytes */
    }
    const unsigned char *colon = memchr(out, ':', len);
    if (colon == NULL) {
        return NULL;
    }
    size_t ul = (size_t)(colon - out), off = ul + 1;
    snprintf(name, cap, "%.*s", (int)(ul < cap ? ul : cap - 1),
             (const char *)out);
    struct acl_user *u = server_acl_authenticate(
        s, (const char *)out, ul, (const char *)out + off, len - off);
    OPENSSL_cleanse(out, sizeof(out));
    return u;
}

/*
 * The ACL user a request acts as (the same users and rules as RESP):
 * "Authorization: Basic" names a user and its password, "Bearer PW" is
 * the default user's password (requirepass).  Without the header: the
 * default user when it needs no password.  Otherwise answers 401 (or 429
 * while the client's IP waits out failed attempts) and returns NULL.
 */
static struct acl_user *http_user(struct server *s, struct evhttp_request *req)
{
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "Authorization");
    if (a == NULL && !server_auth_required(s)) {
        return acl_default_user(s->acl);
    }
    /* the same growing delay per client IP as RESP's AUTH (auth_guard.h):
     * while the IP waits, credentials are not even checked */
    char *peer = NULL;
    uint16_t pport = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer,
                               &pport);
    char ip[AUTH_GUARD_IP_MAX];
    snprintf(ip, sizeof(ip), "%s", peer ? peer : "?");
    uint64_t now = server_mono_ms();
    uint64_t wait = auth_guard_wait_ms(&s->auth_guard, ip, now);
    if (a != NULL && wait > 0) {
        char retry[24];
        snprintf(retry, sizeof(retry), "%" PRIu64, (wait + 999) / 1000);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
                          retry);
        send_error(req, 429, "too_many_auth_failures",
                   "too many failed authentications from this address: "
                   "retry later");
        return NULL;
    }
    struct acl_user *u = NULL;
    char tried[ACL_MAX_NAME + 1] = "default";
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        u = server_acl_authenticate(s, "default", 7, a + 7, strlen(a + 7));
    } else if (a && strncasecmp(a, "Basic ", 6) == 0) {
        u = basic_user(s, a + 6, tried, sizeof(tried));
    }
    if (u != NULL) {
        return u; /* failures are not forgotten (connection.c) */
    }
    if (a != NULL) {
        (void)auth_guard_failed(&s->auth_guard, ip, now);
        server_acl_http_auth_failed(s, tried, strlen(tried), ip);
    }
    s->stats.auth_failures++;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"ringkv\"");
    evhttp_add_header(h, "WWW-Authenticate", "Basic realm=\"ringkv\"");
    send_error(req, 401, "unauthorized",
               "Authorization: Basic USER:PASSWORD (an ACL user) or Bearer "
               "<password> (the default user's) required");
    return NULL;
}

/* A quorum value of the query: a number 1..n or one|quorum|all (of n),
 * default = 0 (the configured value).  -1 when invalid. */
static long quorum_value(const char *v, uint32_t n)
{
    if (strcmp(v, "default") == 0) {
        return 0;
    }
    if (strcmp(v, "one") == 0) {
        return 1;
    }
    if (strcmp(v, "quorum") == 0) {
        return (long)(n / 2 + 1);
    }
    if (strcmp(v, "all") == 0) {
        return (long)n;
    }
    char *end = NULL;
    errno = 0;
    long x = (*v >= '0' && *v <= '9') ? strtol(v, &end, 10) : -1;
    if (x < 1 || errno != 0 || end == NULL || *end != '\0') {
        return -1;
    }
    return x;
}

/*
 * The per-request options of /kv (issue 6 item 1): query parameters r, w,
 * n (at most the configured N), timeout_ms (1..600000), and the
 * Content-Type of a PUT (1..127 bytes of visible ASCII).  An unknown
 * parameter is refused, so a typo does not silently use the defaults.
 * Returns true, or false with the reason in err.
 */
static bool kv_options(struct server *s,
                       struct evhttp_request *req,
                       enum evhttp_cmd_type m,
                       struct req_opts *o,
                       char *err,
                       size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->want_ctype = true;
    const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (qs && evhttp_parse_query_str(qs, &q) != 0) {
        snprintf(err, errlen, "malformed query string");
        return false;
    }
    bool ok = true;
    const char *rs = NULL, *ws = NULL;
    struct evkeyval *kv;
    uint32_t cfg_n = s->cfg->n_val;
    o->n = 0;
    TAILQ_FOREACH(kv, &q, next)
    {
        if (strcmp(kv->key, "n") == 0) {
            long x = quorum_value(kv->value, cfg_n);
            if (x < 0 || x > (long)cfg_n) {
                snprintf(err, errlen,
                         "n must be 1..%" PRIu32 " (the configured N)", cfg_n);
                ok = false;
            } else {
                o->n = (uint32_t)x;
            }
        } else if (strcmp(kv->key, "r") == 0) {
            rs = kv->value;
        } else if (strcmp(kv->key, "w") == 0) {
            ws = kv->value;
        } else if (strcmp(kv->key, "timeout_ms") == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long t = (kv->value[0] >= '0' && kv->value[0] <= '9')
                                  ? strtoul(kv->value, &end, 10)
                                  : 0;
            if (t < 1 || t > 600000 || errno || end == NULL || *end) {
                snprintf(err, errlen, "timeout_ms must be 1..600000");
                ok = false;
            } else {
                o->timeout_ms = (uint32_t)t;
            }
        } else {
            snprintf(err, errlen,
                     "unknown query parameter (known: r, w, n, timeout_ms)");
            ok = false;
        }
    }
    uint32_t n = o->n ? o->n : cfg_n;
    const char *names[2] = {"r", "w"};
    const char *vals[2] = {rs, ws};
    uint32_t *dst[2] = {&o->r, &o->w};
    for (int i = 0; ok && i < 2; i++) {
        if (vals[i] == NULL) {
            continue;
        }
        long x = quorum_value(vals[i], n);
        if (x < 0 || x > (long)n) {
            snprintf(err, errlen,
                     "%s must be 1..%" PRIu32
                     " (N of this request), one, quorum or all",
                     names[i], n);
            ok = false;
        } else {
            *dst[i] = (uint32_t)x;
        }
    }
    evhttp_clear_headers(&q);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
                                        "Content-Type");
    if (ok && m == EVHTTP_REQ_PUT && ct && ct[0]) {
        size_t cl = strlen(ct);
        bool printable = cl <= 127;
        for (size_t i = 0; printable && i < cl; i++) {
            printable = ct[i] >= 0x20 && ct[i] <= 0x7e;
        }
        if (!printable) {
            snprintf(err, errlen,
                     "Content-Type must be 1..127 characters of visible "
                     "ASCII");
            ok = false;
        } else {
            o->ctlen = (uint8_t)cl;
            memcpy(o->ctype, ct, cl);
        }
    }
    return ok;
}

/* Starts a /kv request from client `who` ("http:IP:PORT"); returns 0 when
 * it was dispatched, else the status it was refused with (already sent). */
static int kv_start(struct server *s,
                    struct evhttp_request *req,
                    const char *who)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_PUT &&
        m != EVHTTP_REQ_DELETE) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD, PUT, DELETE");
        send_error(req, 405, "method_not_allowed",
                   "/kv/{key} answers GET, HEAD, PUT and DELETE");
        return 405;
    }
    struct acl_user *user = http_user(s, req);
    if (user == NULL) {
        return 401;
    }
    if (m == EVHTTP_REQ_PUT || m == EVHTTP_REQ_DELETE) {
        /* Conditional writes are not implemented: refuse them rather
         * than write unconditionally (issue 17 item 3). */
        struct evkeyvalq *in = evhttp_request_get_input_headers(req);
        const char *cond[] = {"If-None-Match", "If-Match",
                              "If-Unmodified-Since"};
        for (size_t i = 0; i < sizeof(cond) / sizeof(cond[0]); i++) {
            if (evhttp_find_header(in, cond[i]) != NULL) {
                char msg[200];
                snprintf(msg, sizeof(msg),
                         "%s: conditional writes are not implemented; "
                         "send the write without it, or use "
                         "X-Ringkv-Context for a causal write",
                         cond[i]);
                send_error(req, 501, "not_implemented", msg);
                return 501;
            }
        }
    }
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path == NULL || strncmp(path, "/kv/", 4) != 0 || path[4] == '\0') {
        send_error(req, 400, "bad_request", "the path is /kv/{key}");
        return 400;
    }
    /* strict percent-decoding: a malformed escape is refused */
    for (const char *p = path + 4; *p; p++) {
        if (*p == '%' &&
            !(isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]))) {
            send_error(req, 400, "bad_request", "malformed percent-encoding");
            return 400;
        }
    }
    size_t klen = 0;
    char *key = evhttp_uridecode(path + 4, 0, &klen);
    if (key == NULL || klen == 0 || klen > ENGINE_DEFAULT_MAX_KEY) {
        free(key);
        send_error(req, 400, "bad_request", "invalid key");
        return 400;
    }
    struct req_opts ro;
    char oerr[160];
    if (!kv_options(s, req, m, &ro, oerr, sizeof(oerr))) {
        free(key);
        send_error(req, 400, "bad_request", oerr);
        return 400;
    }
    struct kv_req *k = calloc(1, sizeof(*k));
    struct client *c = k ? server_client_internal(s, kv_ready, k) : NULL;
    if (c == NULL) {
        free(k);
        free(key);
        evhttp_send_error(req, 500, "out of memory");
        return 500;
    }
    c->ropts = ro;
    server_client_set_user(c, user);
    snprintf(c->addr, sizeof(c->addr), "%s", who);
    k->req = req;
    k->c = c;
    k->method = m;
    k->next = g_pending;
    if (g_pending) {
        g_pending->prev = k;
    }
    g_pending = k;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req),
                                  kv_conn_closed, k);
    struct resp_arg argv[4];
    size_t argc = 0;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    const char *body = blen ? (const char *)evbuffer_pullup(in, -1) : "";
    const char *ctx = evhttp_find_header(evhttp_request_get_input_headers(req),
                                         "X-Ringkv-Context");
    if (m == EVHTTP_REQ_PUT && ctx) {
        argv[argc++] = (struct resp_arg){"RINGKV.PUT", 10};
        argv[argc++] = (struct resp_arg){key, klen};
        argv[argc++] = (struct resp_arg){ctx, strlen(ctx)};
        argv[argc++] = (struct resp_arg){body, blen};
    } else if (m == EVHTTP_REQ_PUT) {
        argv[argc++] = (struct resp_arg){"SET", 3};
        argv[argc++] = (struct resp_arg){key, klen};
        argv[argc++] = (struct resp_arg){body, blen};
    } else if (m == EVHTTP_REQ_DELETE && ctx) {
        argv[argc++] = (struct resp_arg){"RINGKV.DEL", 10};
        argv[argc++] = (struct resp_arg){key, klen};
        argv[argc++] = (struct resp_arg){ctx, strlen(ctx)};
    } else if (m == EVHTTP_REQ_DELETE) {
        argv[argc++] = (struct resp_arg){"DEL", 3};
        argv[argc++] = (struct resp_arg){key, klen};
    } else {
        argv[argc++] = (struct resp_arg){"RINGKV.GETALL", 13};
        argv[argc++] = (struct resp_arg){key, klen};
    }
    s->stats.total_commands++;
    command_dispatch(c, argc, argv);
    free(key);
    /* answers now (standalone) or when the coordinator finishes; c and k
     * may be gone after this call */
    (void)server_client_resume(c);
    return 0;
}

static void on_kv(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    /* read now: a refused request is freed once its answer is sent */
    char who[64];
    char *peer = NULL;
    uint16_t pport = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer,
                               &pport);
    snprintf(who, sizeof(who), "http:%.40s:%u", peer ? peer : "-",
             (unsigned)pport);
    int refused = kv_start(s, req, who);
    if (refused && s->cfg->log_requests) {
        /* the request log covers requests refused before a command ran */
        rk_log(RK_LOG_INFO, "request",
               "command=http status=%d result=error client=%s", refused, who);
    }
}

/* A connection of the HTTPS port: an OpenSSL bufferevent on the server's
 * TLS context (tls.h), which evhttp gives the accepted socket. */
static struct bufferevent *https_bevcb(struct event_base *base, void *arg)
{
    struct server *s = arg;
    SSL *ssl = tls_ssl_new(s->tls_ctx);
    if (ssl == NULL) {
        return NULL;
    }
    /* libevent owns ssl from here (it frees it when the call fails); a
     * NULL makes evhttp fall back to a plain connection, which http_admit
     * refuses on this port */
    return bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* An evhttp with the endpoints and limits, listening on `port` (over TLS
 * when `tls`); NULL with `err` set. */
static struct evhttp *http_listen(struct server *s,
                                  int port,
                                  bool tls,
                                  char *err,
                                  size_t errlen)
{
    struct rk_config *cfg = s->cfg;
    struct evhttp *h = evhttp_new(s->base);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    evhttp_set_max_headers_size(h, HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(h, HTTP_MAX_BODY);
    evhttp_set_timeout(h, HTTP_TIMEOUT_S);
    evhttp_set_allowed_methods(
        h, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_POST |
               EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_cb(h, "/health", on_health, s);
    evhttp_set_cb(h, "/stats", on_stats, s);
    evhttp_set_cb(h, "/cluster", on_cluster, s);
    evhttp_set_cb(h, "/metrics", on_metrics, s);
    evhttp_set_gencb(h, on_other, s);
    if (tls) {
        evhttp_set_bevcb(h, https_bevcb, s);
    }
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(h, cfg->bind, (uint16_t)port);
    if (bound == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d (%s): %s", cfg->bind,
                 port, tls ? "HTTPS" : "HTTP", strerror(errno));
        evhttp_free(h);
        return NULL;
    }
    /* Accepted sockets inherit TCP_NODELAY from the listener (Linux).
     * Without it a keep-alive response over 16 KiB (evhttp writes at most
     * that at once) waits ~40 ms for the client's delayed ACK: Nagle holds
     * the short tail (bench/metrics_bench.py found it). */
    int one = 1;
    (void)setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP,
                     TCP_NODELAY, &one, sizeof(one));
    return h;
}

int http_start(struct server *s, char *err, size_t errlen)
{
    struct rk_config *cfg = s->cfg;
    if (cfg->http_port < 0) {
        return RK_OK; /* --http-port off */
    }
    int port = cfg->http_port ? cfg->http_port : cfg->port + 1;
    if (port > 65535) {
        snprintf(err, errlen, "HTTP port %d out of range (set --http-port)",
                 port);
        return RK_EINVAL;
    }
    s->http = http_listen(s, port, false, err, errlen);
    if (s->http == NULL) {
        return RK_EIO;
    }
    if (cfg->https_port > 0) {
        s->https = http_listen(s, cfg->https_port, true, err, errlen);
        if (s->https == NULL) {
            evhttp_free(s->http);
            s->http = NULL;
            return RK_EIO;
        }
        rk_log(RK_LOG_INFO, "https_listening", "port=%d bind=%s",
               cfg->https_port, cfg->bind);
    }
    rk_log(RK_LOG_INFO, "http_listening", "port=%d bind=%s", port, cfg->bind);
    return RK_OK;
}

void http_stop(struct server *s)
{
    /* requests still waiting for the cluster: cancel and free them */
    while (g_pending) {
        struct kv_req *k = g_pending;
        kv_detach(k);
        kv_unlink(k);
        struct client *c = k->c;
        free(k);
        server_client_free(c);
    }
    if (s->http) {
        evhttp_free(s->http);
        s->http = NULL;
    }
    if (s->https) {
        evhttp_free(s->https);
        s->https = NULL;
    }
}
