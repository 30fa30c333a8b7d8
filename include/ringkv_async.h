/*
 * ringkv_async.h - the asynchronous API of libringkv on libevent (issue 13
 * item 4), in its own library: libringkv_event (pkg-config ringkv_event).
 *
 * The same calls as the blocking API of ringkv.h (get / set / del / mget /
 * mset / incr / expire / getall / put), issued from a libevent loop the
 * application runs: each call returns at once and its completion callback
 * runs later, on that loop, with a struct ringkv_result.  The cluster is
 * hidden the same way and by the same code (src/lib/route.c, policy.c,
 * cmd.c, reply.c): routing by hash slot from CLUSTER SLOTS, the topology
 * re-read after connection errors and every refresh_interval_ms, per-call
 * deadlines (RINGKV_CALL timeout_ms, all attempts included), retries with
 * capped exponential backoff and jitter on connection errors, timeouts and
 * -NOQUORUM for the calls that are safe to repeat (the table in ringkv.h),
 * AUTH on every connection.
 *
 * Connections: one per node, opened on first use with a libevent
 * bufferevent, requests pipelined on it (replies come back in order).  An
 * attempt that outlives its share of the deadline closes its connection:
 * the other requests on it fail that attempt with RINGKV_EIO and are
 * retried as their policy allows (as a broken connection would be).
 * Host names are resolved with getaddrinfo when a connection opens, which
 * blocks the loop for a name that is not in /etc/hosts: give numeric
 * addresses to keep the loop from blocking.
 *
 * Why a second library: libringkv (ringkv.h) needs nothing but libc, so a
 * program that only blocks does not pull libevent in.  libringkv_event
 * links libevent and carries its own private copy of the shared sans-IO
 * parts; the result types and their free functions (ringkv_free,
 * ringkv_values_free, ringkv_siblings_free, ringkv_strerror) are
 * libringkv's, so link both: `pkg-config --libs ringkv_event` gives
 * -lringkv_event -lringkv -levent.
 *
 * Threads: a struct ringkv_async belongs to the thread that runs its
 * event_base; every call, and every callback, is on that thread (no
 * locks).  Use one handle per event_base.
 *
 * Errors: a call that returns an error (RINGKV_EINVAL, RINGKV_ENOMEM)
 * never runs its callback; a call that returns RINGKV_OK runs it exactly
 * once, never before the call returns, with res->err = RINGKV_OK or the
 * RINGKV_E* code of the last attempt and res->errmsg a one-line message.
 */
#ifndef RINGKV_ASYNC_H
#define RINGKV_ASYNC_H

#include "ringkv.h"

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;   /* libevent's */
struct ringkv_async; /* opaque handle */

/*
 * The outcome of one call, handed to its callback.  The struct and every
 * pointer in it are valid until the callback returns, then freed by the
 * library; to keep a result, take it: copy the pointer and set the field
 * to NULL (the library frees NULL fields as nothing), after which it is
 * returned-owned with the free function named below.
 */
struct ringkv_result
{
    int err;                   /* RINGKV_OK, RINGKV_ENOTFOUND (GET of a missing
                                  key) or an error */
    const char *errmsg;        /* one line, "" for RINGKV_OK and
                                  RINGKV_ENOTFOUND; the node and the server's
                                  text for an error reply */
    struct ringkv_value value; /* GET: the value (data: ringkv_free) */
    int64_t integer;           /* DEL: keys deleted (0 or 1); INCR: the
                                  new value; EXPIRE: 1 set, 0 no key */
    struct ringkv_value *values; /* MGET: n_values values in key order,
                                    data NULL for a missing key
                                    (ringkv_values_free(values, n)) */
    size_t n_values;
    struct ringkv_siblings *siblings; /* GETALL (ringkv_siblings_free) */
};

/*
 * The completion callback of a call: `res` as above (the callback may
 * take fields out of it), `data` the pointer given to the call.  It may
 * issue further calls, and may destroy the handle.  Thread: the loop.
 */
typedef void (*ringkv_async_cb)(struct ringkv_async *ra,
                                struct ringkv_result *res,
                                void *data);

/*
 * Creates a handle on `base` (borrowed; it must outlive the handle) with
 * the options of ringkv.h (seeds, AUTH, timeouts, retries, refresh).  It
 * does no I/O in the call: the topology read (CLUSTER SLOTS, from the
 * seeds in order) starts on the loop, and calls made before it completes
 * go to the seeds (any node coordinates any key).
 * Returns RINGKV_OK and *out (returned-owned: ringkv_async_destroy), or
 * RINGKV_EINVAL (no seeds, a malformed "host:port", bad numbers; errbuf,
 * 256 bytes or NULL, says which) or RINGKV_ENOMEM.  Thread: the loop's.
 */
int ringkv_async_create(struct event_base *base,
                        const struct ringkv_options *o,
                        struct ringkv_async **out,
                        char errbuf[256]);

/*
 * Closes every connection and frees the handle; every call still pending
 * completes first, inside this function, with RINGKV_ECANCELED (those
 * callbacks must not issue calls: they get RINGKV_EINVAL).  May be called
 * from a callback of this handle (the memory is freed when the callback
 * returns).  NULL is a no-op.  Thread: the loop's.
 */
void ringkv_async_destroy(struct ringkv_async *ra);

/*
 * The calls.  Arguments are those of the blocking call of the same name
 * in ringkv.h (and follow its rules: key/value bytes borrowed for the
 * call only, they are copied; `call` NULL = the handle's defaults), plus
 * `cb` (not NULL) and `data` (passed to cb).  Results arrive in the
 * struct ringkv_result fields named there.  Each returns RINGKV_OK (cb
 * will run once), RINGKV_EINVAL (a bad argument, or the handle is being
 * destroyed) or RINGKV_ENOMEM (cb will not run).  Retried as the blocking
 * call is: GET, SET, DEL, MGET, MSET, EXPIRE, GETALL always; INCR and PUT
 * only with RINGKV_CALL_IDEMPOTENT once the request may have been sent.
 * Thread: the loop's.  O(size of the arguments).
 */
int ringkv_async_get(struct ringkv_async *ra,
                     const void *key,
                     size_t klen,
                     const struct ringkv_call *call,
                     ringkv_async_cb cb,
                     void *data);
int ringkv_async_set(struct ringkv_async *ra,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen,
                     int64_t ttl_ms,
                     const struct ringkv_call *call,
                     ringkv_async_cb cb,
                     void *data);
int ringkv_async_del(struct ringkv_async *ra,
                     const void *key,
                     size_t klen,
                     const struct ringkv_call *call,
                     ringkv_async_cb cb,
                     void *data);
int ringkv_async_mget(struct ringkv_async *ra,
                      size_t n,
                      const void *const *keys,
                      const size_t *klens,
                      const struct ringkv_call *call,
                      ringkv_async_cb cb,
                      void *data);
int ringkv_async_mset(struct ringkv_async *ra,
                      size_t n,
                      const void *const *keys,
                      const size_t *klens,
                      const void *const *vals,
                      const size_t *vlens,
                      const struct ringkv_call *call,
                      ringkv_async_cb cb,
                      void *data);
int ringkv_async_incr(struct ringkv_async *ra,
                      const void *key,
                      size_t klen,
                      int64_t by,
                      const struct ringkv_call *call,
                      ringkv_async_cb cb,
                      void *data);
int ringkv_async_expire(struct ringkv_async *ra,
                        const void *key,
                        size_t klen,
                        int64_t ttl_ms,
                        const struct ringkv_call *call,
                        ringkv_async_cb cb,
                        void *data);
int ringkv_async_getall(struct ringkv_async *ra,
                        const void *key,
                        size_t klen,
                        const struct ringkv_call *call,
                        ringkv_async_cb cb,
                        void *data);
int ringkv_async_put(struct ringkv_async *ra,
                     const void *key,
                     size_t klen,
                     const char *context,
                     size_t context_len,
                     const void *val,
                     size_t vlen,
                     const struct ringkv_call *call,
                     ringkv_async_cb cb,
                     void *data);

/* Calls whose callback has not run yet. */
size_t ringkv_async_pending(const struct ringkv_async *ra);

/* Counters since ringkv_async_create, as ringkv_stats_get. */
void ringkv_async_stats_get(const struct ringkv_async *ra,
                            struct ringkv_stats *st);

/* Nodes of the current topology and the address of node i (owned by ra,
 * valid until the loop runs again) or NULL; 0 before the first read. */
size_t ringkv_async_node_count(const struct ringkv_async *ra);
const char *ringkv_async_node_addr(const struct ringkv_async *ra, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* RINGKV_ASYNC_H */
