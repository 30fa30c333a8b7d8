/*
 * http.h - the HTTP interface of ringkvd (DESIGN.md section 5; issue 6):
 * libevent's evhttp on --bind:--http-port (default RESP port + 1), JSON
 * with jansson.  Served on the event-loop thread.
 *
 *   GET /health   200 {"status":"ok",...} while this node serves requests,
 *                 503 {"status":"unavailable","reason":...} otherwise (for
 *                 load-balancer checks)
 *   GET /cluster  members, addresses, status, partitions, up/down as this
 *                 node sees them, ring size/version/digest, agreement,
 *                 N/R/W, pending hints (cluster.c: cluster_json)
 *   GET /stats    the INFO figures as JSON: {"section": {"field": value}}
 *                 with numbers as JSON numbers
 * Anything else is 404 with a JSON error; a method other than GET/HEAD on
 * these paths is 405 with Allow.  Errors are {"error": "...", "code":
 * "..."}.  Request limits: headers 8 KiB, body 1 MiB (evhttp enforces
 * them), 10 s timeout for a whole request (slow-loris).
 */
#ifndef RINGKV_SERVER_HTTP_H
#define RINGKV_SERVER_HTTP_H

#include <stddef.h>

struct server;

/*
 * Starts the HTTP listener on the server's event base.  RK_OK, RK_EIO
 * (cannot bind: the reason is in err), RK_ENOMEM.  A port of 0 in the
 * configuration means RESP port + 1; --http-port off disables it (RK_OK,
 * nothing started).  Thread: the loop.
 */
int http_start(struct server *s, char *err, size_t errlen);

/* Stops and frees the listener and its connections.  Safe when not
 * started. */
void http_stop(struct server *s);

#endif /* RINGKV_SERVER_HTTP_H */
