/*
 * http.c - the HTTP listener and its operational endpoints (contract in
 * http.h).  evhttp parses requests (bounded header and body sizes, a
 * per-connection timeout); this file only routes and renders JSON.
 */
#include "server/http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/internal.h"
#include "server/metrics.h"

#define HTTP_MAX_HEADERS (8 * 1024)
#define HTTP_MAX_BODY    (1024 * 1024)
#define HTTP_TIMEOUT_S   10

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
    /* the status page of one node reads the other nodes' /stats */
    evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
    const char *reason = code == 200   ? "OK"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 503 ? "Service Unavailable"
                                       : "Error";
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
}

static void send_error(struct evhttp_request *req,
                       int code,
                       const char *ecode,
                       const char *msg)
{
    send_json(req, code, json_pack("{s:s, s:s}", "error", msg, "code", ecode));
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
    if (!allow_get(req)) {
        return;
    }
    const char *why = NULL;
    struct engine_stats st;
    engine_stats(s->engine, &st);
    if (s->shutting_down) {
        why = "shutting down";
    } else if (st.read_only) {
        why = "storage is read-only after an I/O error";
    } else {
        why = cluster_unavailable_reason(s);
    }
    json_t *j = json_pack("{s:s, s:s}", "status", why ? "unavailable" : "ok",
                          "node_id", cluster_node_id(s));
    if (why) {
        json_object_set_new(j, "reason", json_string(why));
    }
    send_json(req, why ? 503 : 200, j);
}

static void on_stats(struct evhttp_request *req, void *arg)
{
    if (allow_get(req)) {
        send_json(req, 200, stats_json(arg));
    }
}

static void on_cluster(struct evhttp_request *req, void *arg)
{
    if (allow_get(req)) {
        send_json(req, 200, cluster_json(arg));
    }
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    if (!allow_get(req)) {
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

static void on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
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
    s->http = evhttp_new(s->base);
    if (s->http == NULL) {
        snprintf(err, errlen, "out of memory");
        return RK_ENOMEM;
    }
    evhttp_set_max_headers_size(s->http, HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(s->http, HTTP_MAX_BODY);
    evhttp_set_timeout(s->http, HTTP_TIMEOUT_S);
    evhttp_set_allowed_methods(
        s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                     EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                     EVHTTP_REQ_PATCH);
    evhttp_set_cb(s->http, "/health", on_health, s);
    evhttp_set_cb(s->http, "/stats", on_stats, s);
    evhttp_set_cb(s->http, "/cluster", on_cluster, s);
    evhttp_set_cb(s->http, "/metrics", on_metrics, s);
    evhttp_set_gencb(s->http, on_other, s);
    if (evhttp_bind_socket(s->http, cfg->bind, (uint16_t)port) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d (HTTP): %s", cfg->bind,
                 port, strerror(errno));
        evhttp_free(s->http);
        s->http = NULL;
        return RK_EIO;
    }
    rk_log(RK_LOG_INFO, "http_listening", "port=%d bind=%s", port, cfg->bind);
    return RK_OK;
}

void http_stop(struct server *s)
{
    if (s->http) {
        evhttp_free(s->http);
        s->http = NULL;
    }
}
