/*
 * internal.h - libringkv's parts, shared inside src/lib only (STYLE.md 1.1).
 *
 * Sans-IO parts, unit-tested and fuzzed without sockets, shared by the
 * blocking and the asynchronous API:
 *  - topo.c: the slot routing table from a CLUSTER SLOTS reply;
 *  - route.c: the known nodes, the installed topology and which node an
 *    attempt goes to (the topology read itself is the caller's I/O);
 *  - policy.c: the retry / backoff decisions;
 *  - cmd.c: each API call's command (argv, slot, idempotence) and the
 *    decoding of its reply into a struct ringkv_result;
 *  - reply.c: server replies -> RINGKV_* codes and the API's structures;
 * and the I/O:
 *  - conn.c: one blocking connection with deadlines (poll), RESP framing
 *    with proto/resp.h; ringkv.c joins it with the above into
 *    include/ringkv.h (libringkv, libc only);
 *  - async.c: connections on libevent bufferevents, pipelined; joins the
 *    same parts into include/ringkv_async.h (libringkv_event).
 */
#ifndef RINGKV_LIB_INTERNAL_H
#define RINGKV_LIB_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/resp.h"
#include "ringkv.h"
#include "ringkv_async.h"

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

/* Whether `o` is usable: seeds, max_attempts >= 1, positive timeouts,
 * 0 <= backoff_base_ms <= backoff_max_ms. */
bool rkl_options_valid(const struct ringkv_options *o);

/* The retry policy of `o`. */
void rkl_policy_from_options(struct rkl_policy *p,
                             const struct ringkv_options *o);

/* ---- reply.c ---------------------------------------------------------- */

/*
 * The RINGKV_* code of an error reply's text (v->type RESP_ERROR):
 * NOQUORUM -> RINGKV_ENOQUORUM, NOAUTH/WRONGPASS -> RINGKV_EAUTH, any
 * other -> RINGKV_ESERVER.  Pure.
 */
int rkl_error_code(const struct resp_value *v);

/* Formats a one-line message into buf (size > 0): CR and LF become
 * spaces, so a server's text never breaks the line. */
void rkl_vformat_line(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

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

/* ---- route.c ---------------------------------------------------------- */

/* One known node: a seed or a node of the topology.  Indexes into
 * rkl_route.nodes are stable for the route's life (entries are only
 * appended), so the I/O layer may keep them. */
struct rkl_node
{
    struct rkl_addr addr;
    char name[RKL_MAX_HOST + 16]; /* "host:port", "[v6]:port" */
    int64_t down_until_ms;        /* refused a connection: skipped until */
    void *conn;                   /* the I/O layer's connection, or NULL */
};

struct rkl_route
{
    struct rkl_node *nodes; /* owned; grows */
    size_t n_nodes;
    size_t n_seeds;          /* nodes[0..n_seeds) are the seeds */
    struct rkl_topo topo;    /* installed topology (empty at first) */
    uint16_t *topo_node;     /* topo node i -> index into nodes */
    int refresh_interval_ms; /* < 0: only after errors */
    int down_ms;
    bool refresh_needed;
    int64_t next_refresh_ms;
    uint64_t rng;       /* xorshift64* state, jitter only */
    uint64_t refreshes; /* topologies installed */
};

/*
 * Initialises *r with the seeds ("host:port" each, copied).  Returns
 * RINGKV_OK, RINGKV_EINVAL (no seed or a malformed one; errbuf says which)
 * or RINGKV_ENOMEM; *r needs rkl_route_fini in every case.
 */
int rkl_route_init(struct rkl_route *r,
                   const char *const *seeds,
                   size_t n_seeds,
                   int refresh_interval_ms,
                   int down_ms,
                   uint64_t rng_seed,
                   char *errbuf,
                   size_t errlen);

/* Frees the nodes and the topology; the conns must be closed before. */
void rkl_route_fini(struct rkl_route *r);

/* Index of node `a`, appended when new; -1 on ENOMEM. */
int rkl_route_node_index(struct rkl_route *r, const struct rkl_addr *a);

/*
 * Installs the topology of `v`, the reply of node `from` to CLUSTER SLOTS:
 * an error reply other than NOAUTH/WRONGPASS (a server without CLUSTER)
 * or an empty array is one node, `from`, serving every slot.  Returns
 * RINGKV_OK, RINGKV_EAUTH, RINGKV_EPROTO or RINGKV_ENOMEM (errbuf says
 * why; the old topology stays).  Schedules the next periodic refresh.
 */
int rkl_route_install(struct rkl_route *r,
                      size_t from,
                      const struct resp_value *v,
                      int64_t now_ms,
                      char *errbuf,
                      size_t errlen);

/*
 * The order in which to ask nodes for the topology: nodes with a
 * connection, then nodes not marked down, then the others.  `order` has
 * room for r->n_nodes indexes; returns how many were written.
 */
size_t rkl_route_refresh_order(const struct rkl_route *r,
                               int64_t now_ms,
                               size_t *order);

/* Whether the topology should be read again now (after errors, or the
 * periodic refresh is due). */
bool rkl_route_refresh_due(struct rkl_route *r, int64_t now_ms);

/*
 * The node for attempt `attempt` (1-based) of a call on `slot`: the nodes
 * that serve the slot, those not marked down first, in topology order,
 * rotating with the attempt; any known node when no node serves it.
 * Returns an index into r->nodes.
 */
size_t rkl_route_pick(struct rkl_route *r,
                      uint32_t slot,
                      int attempt,
                      int64_t now_ms);

/* Address "host:port" of node i of the installed topology (owned by r,
 * valid until the next install), or NULL past its end. */
const char *rkl_route_topo_addr(const struct rkl_route *r, size_t i);

/* Node i refused or dropped a connection: skipped for down_ms. */
void rkl_route_node_down(struct rkl_route *r, size_t i, int64_t now_ms);

/*
 * After attempt `attempt` failed with `err`: asks for a topology refresh
 * on connection errors and timeouts, then rkl_retry_decide() with the
 * route's jitter (*sleep_ms as there).
 */
bool rkl_route_retry(struct rkl_route *r,
                     const struct rkl_policy *p,
                     int attempt,
                     int err,
                     bool sent,
                     bool idempotent,
                     unsigned flags,
                     int64_t remaining_ms,
                     int *sleep_ms);

/* ---- cmd.c ------------------------------------------------------------ */

enum rkl_op
{
    RKL_OP_GET,
    RKL_OP_SET,
    RKL_OP_DEL,
    RKL_OP_INCR,
    RKL_OP_EXPIRE,
    RKL_OP_MGET,
    RKL_OP_MSET,
    RKL_OP_GETALL,
    RKL_OP_PUT,
    RKL_OP_SLOTS, /* CLUSTER SLOTS, the topology read */
};

#define RKL_CMD_INLINE 5 /* arguments held in the struct itself */

/* One API call's command.  argv/lens view the caller's bytes (borrowed
 * until the command is sent or encoded) and cmd's own storage. */
struct rkl_cmd
{
    enum rkl_op op;
    uint32_t slot;   /* of the (first) key */
    bool idempotent; /* safe to repeat without RINGKV_CALL_IDEMPOTENT */
    size_t n_keys;   /* MGET: values expected */
    size_t argc;
    const char **argv; /* small_argv or owned */
    size_t *lens;      /* small_lens or owned */
    const char *small_argv[RKL_CMD_INLINE];
    size_t small_lens[RKL_CMD_INLINE];
    char num[24]; /* a number argument's text */
};

/*
 * Builders: fill *c for one call.  Key, value and context bytes follow
 * the public API's rules (NULL only with length 0).  Return RINGKV_OK,
 * RINGKV_EINVAL (a rule broken, ttl_ms out of range, n == 0) or
 * RINGKV_ENOMEM (MGET/MSET arrays).  rkl_cmd_fini after RINGKV_OK.
 */
int rkl_cmd_get(struct rkl_cmd *c, const void *key, size_t klen);
int rkl_cmd_set(struct rkl_cmd *c,
                const void *key,
                size_t klen,
                const void *val,
                size_t vlen,
                int64_t ttl_ms);
int rkl_cmd_del(struct rkl_cmd *c, const void *key, size_t klen);
int rkl_cmd_incr(struct rkl_cmd *c, const void *key, size_t klen, int64_t by);
int rkl_cmd_expire(struct rkl_cmd *c,
                   const void *key,
                   size_t klen,
                   int64_t ttl_ms);
int rkl_cmd_mget(struct rkl_cmd *c,
                 size_t n,
                 const void *const *keys,
                 const size_t *klens);
int rkl_cmd_mset(struct rkl_cmd *c,
                 size_t n,
                 const void *const *keys,
                 const size_t *klens,
                 const void *const *vals,
                 const size_t *vlens);
int rkl_cmd_getall(struct rkl_cmd *c, const void *key, size_t klen);
int rkl_cmd_put(struct rkl_cmd *c,
                const void *key,
                size_t klen,
                const char *context,
                size_t context_len,
                const void *val,
                size_t vlen);
void rkl_cmd_slots(struct rkl_cmd *c);

/* Frees what the builder allocated; op, slot and n_keys stay valid. */
void rkl_cmd_fini(struct rkl_cmd *c);

/* The AUTH credentials of a handle, copied from its options. */
struct rkl_auth
{
    char *username; /* owned; NULL = "AUTH password" */
    char *password; /* owned; NULL = no AUTH */
};

/* Copies o->username / o->password; RINGKV_OK or RINGKV_ENOMEM (then
 * *a holds what was copied: rkl_auth_fini in every case). */
int rkl_auth_init(struct rkl_auth *a, const struct ringkv_options *o);
void rkl_auth_fini(struct rkl_auth *a);

/* "AUTH [user] password" into argv/lens (3 slots); returns argc.
 * a->password must not be NULL. */
size_t rkl_auth_argv(const struct rkl_auth *a,
                     const char *argv[3],
                     size_t lens[3]);

/*
 * Decodes `v`, a reply that is not an error, of a command `op` (n_keys for
 * MGET) into *res (zeroed by the call): GET's value (RINGKV_ENOTFOUND for
 * nil), DEL/INCR/EXPIRE's integer, MGET's values, GETALL's siblings;
 * SET/MSET/PUT want +OK.  Returns RINGKV_OK, RINGKV_ENOTFOUND,
 * RINGKV_EPROTO (another reply type) or RINGKV_ENOMEM; res->err is set to
 * the same.  Free with rkl_result_fini.
 */
int rkl_cmd_decode(enum rkl_op op,
                   size_t n_keys,
                   const struct resp_value *v,
                   struct ringkv_result *res);

/* The command's name, for messages ("GET"). */
const char *rkl_op_name(enum rkl_op op);

/* Frees what *res still owns (value, values, siblings) and zeroes them. */
void rkl_result_fini(struct ringkv_result *res);

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
