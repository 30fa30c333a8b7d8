/*
 * internal.h - libringkv's parts, shared inside src/lib only (STYLE.md 1.1).
 *
 * Three sans-IO parts, unit-tested and fuzzed without sockets:
 *  - topo.c: the slot routing table from a CLUSTER SLOTS reply;
 *  - policy.c: the retry / backoff decisions;
 *  - reply.c: server replies -> RINGKV_* codes and the API's structures;
 * and one with I/O:
 *  - conn.c: one blocking connection with deadlines (poll), RESP framing
 *    with proto/resp.h.
 * ringkv.c joins them into the public API of include/ringkv.h.
 */
#ifndef RINGKV_LIB_INTERNAL_H
#define RINGKV_LIB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/resp.h"
#include "ringkv.h"

/* ---- topo.c ----------------------------------------------------------- */

#define RKL_SLOTS        16384
#define RKL_MAX_REPLICAS 8    /* nodes kept per range (more are dropped) */
#define RKL_MAX_NODES    1024 /* distinct nodes in a topology */
#define RKL_MAX_HOST     255  /* bytes of a host name */

struct rkl_addr
{
    char host[RKL_MAX_HOST + 1]; /* NUL-terminated */
    int port;                    /* 1..65535 */
};

struct rkl_range
{
    uint16_t start, end;              /* slots, inclusive, start <= end */
    uint8_t n;                        /* nodes, 1..RKL_MAX_REPLICAS */
    uint16_t nodes[RKL_MAX_REPLICAS]; /* indexes into topo.nodes; the first
                                         is the range's primary */
};

struct rkl_topo
{
    size_t n_nodes;
    struct rkl_addr *nodes; /* owned, distinct host:port */
    size_t n_ranges;
    struct rkl_range *ranges;       /* owned */
    uint16_t slot_range[RKL_SLOTS]; /* range index + 1; 0 = no node */
};

/* Empty topology (no nodes, no slot served). */
void rkl_topo_init(struct rkl_topo *t);
void rkl_topo_fini(struct rkl_topo *t);

/*
 * Builds *t (initialised by the call; rkl_topo_fini it after RINGKV_OK)
 * from a CLUSTER SLOTS reply: [[start, end, [host, port, id?, ...],
 * [host, port, ...]...], ...] (Redis 7 shape).  A host that is empty or
 * "?" is `default_host` (the node asked, as Redis clients do).  Ranges
 * must lie in 0..16383 and not overlap; nodes past RKL_MAX_REPLICAS in a
 * range are ignored.  Returns RINGKV_OK, RINGKV_EPROTO (wrong shape;
 * errbuf, errlen > 0, says what) or RINGKV_ENOMEM; *t is empty on error.
 */
int rkl_topo_from_slots(struct rkl_topo *t,
                        const struct resp_value *v,
                        const char *default_host,
                        char *errbuf,
                        size_t errlen);

/* A topology of one node serving every slot (a server without CLUSTER). */
int rkl_topo_single(struct rkl_topo *t, const char *host, int port);

/* The range serving `slot` or NULL. */
const struct rkl_range *rkl_topo_route(const struct rkl_topo *t, uint32_t slot);

/* Parses "host:port" / "[v6]:port" into *a.  RINGKV_OK or RINGKV_EINVAL. */
int rkl_addr_parse(const char *s, struct rkl_addr *a);

/* ---- policy.c --------------------------------------------------------- */

struct rkl_policy
{
    int max_attempts;    /* >= 1 */
    int backoff_base_ms; /* >= 0 */
    int backoff_max_ms;  /* >= backoff_base_ms */
};

/*
 * Whether a failed attempt is retried.
 *  `attempt`: attempts made so far (>= 1);
 *  `err`: the attempt's RINGKV_* error;
 *  `sent`: the request may have reached the server (false only when the
 *          connection could not be opened or the write failed at once);
 *  `idempotent`: the operation is safe to repeat (or the caller said so);
 *  `flags`: RINGKV_CALL_*;
 *  `remaining_ms`: time left before the call's deadline;
 *  `rnd`: a random 32-bit number (jitter).
 * Retried: RINGKV_EIO, RINGKV_ETIMEDOUT and RINGKV_ENOQUORUM, when the
 * request was not sent or the operation is idempotent, no
 * RINGKV_CALL_NO_RETRY, attempt < max_attempts, and the backoff ends
 * before the deadline.  *sleep_ms = the backoff: the exponential step
 * base * 2^(attempt-1) capped at backoff_max_ms, "equal jitter" (half of
 * it fixed, the other half random); 0 for a request that was never sent
 * on the first retry (another node is tried at once).  Pure.
 */
bool rkl_retry_decide(const struct rkl_policy *p,
                      int attempt,
                      int err,
                      bool sent,
                      bool idempotent,
                      unsigned flags,
                      int64_t remaining_ms,
                      uint32_t rnd,
                      int *sleep_ms);

/*
 * Time one attempt may take: all that remains for the last attempt,
 * else half of it but at least min(remaining, 250 ms), so a stalled node
 * leaves time to retry elsewhere.  Pure.
 */
int64_t rkl_attempt_budget_ms(const struct rkl_policy *p,
                              int attempt,
                              int64_t remaining_ms);

/* ---- reply.c ---------------------------------------------------------- */

/*
 * The RINGKV_* code of an error reply's text (v->type RESP_ERROR):
 * NOQUORUM -> RINGKV_ENOQUORUM, NOAUTH/WRONGPASS -> RINGKV_EAUTH, any
 * other -> RINGKV_ESERVER.  Pure.
 */
int rkl_error_code(const struct resp_value *v);

/* A bulk / simple / null reply -> *out (returned-owned, NUL-terminated,
 * NULL for null); RINGKV_EPROTO for another type. */
int rkl_value_from_reply(const struct resp_value *v, struct ringkv_value *out);

/* An MGET reply of `n` elements -> *out (returned-owned array,
 * ringkv_values_free).  RINGKV_EPROTO when not an array of n bulks/nulls. */
int rkl_values_from_reply(const struct resp_value *v,
                          size_t n,
                          struct ringkv_value **out);

/* A RINGKV.GETALL reply [context, [[value|nil, hlc, unix-ms, ...]...]] ->
 * *out (returned-owned, ringkv_siblings_free).  RINGKV_EPROTO on another
 * shape. */
int rkl_siblings_from_reply(const struct resp_value *v,
                            struct ringkv_siblings **out);

/* ---- conn.c ----------------------------------------------------------- */

struct rkl_conn; /* opaque: a socket and a read buffer */

/* Monotonic clock, ms. */
int64_t rkl_now_ms(void);

/*
 * Opens a TCP connection (TCP_NODELAY) to a by `deadline_ms` (rkl_now_ms
 * time).  RINGKV_OK and *out (rkl_conn_close), RINGKV_EIO (refused,
 * unresolvable), RINGKV_ETIMEDOUT, RINGKV_ENOMEM; errbuf gets the reason.
 */
int rkl_conn_open(const struct rkl_addr *a,
                  int64_t deadline_ms,
                  struct rkl_conn **out,
                  char *errbuf,
                  size_t errlen);

/*
 * Writes one command and reads its reply by `deadline_ms`.  RINGKV_OK and
 * *reply (resp_value_free; an error reply is RINGKV_OK too), or
 * RINGKV_EIO / RINGKV_ETIMEDOUT / RINGKV_EPROTO / RINGKV_ENOMEM, after
 * which the connection must be closed.  *sent = whether any byte of the
 * request was written.
 */
int rkl_conn_request(struct rkl_conn *c,
                     size_t argc,
                     const char *const *argv,
                     const size_t *lens,
                     int64_t deadline_ms,
                     bool *sent,
                     struct resp_value **reply,
                     char *errbuf,
                     size_t errlen);

void rkl_conn_close(struct rkl_conn *c);

#endif /* RINGKV_LIB_INTERNAL_H */
