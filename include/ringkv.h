/*
 * ringkv.h - libringkv, the C client library of ringkv (DESIGN.md section 5,
 * issue 13 item 4).
 *
 * A map-like blocking API over the Redis protocol: get / set (with an
 * optional expiry) / del / mget / mset / incr / expire, and getall / put
 * for siblings with their causal context (RINGKV.GETALL / RINGKV.PUT,
 * docs/protocol.md).  The library hides the cluster:
 *  - routing: a key's hash slot (CRC16 of the key or of its {hash tag},
 *    mod 16384, as Redis Cluster computes it) picks a node that serves the
 *    slot in the topology read with CLUSTER SLOTS (its first node, then
 *    the others); any ringkv node coordinates any key, so a stale topology
 *    costs a hop, never an error;
 *  - the topology is read at ringkv_create(), re-read after a connection
 *    error and every `refresh_interval_ms`;
 *  - a pool of one connection per node, opened on first use and reused;
 *  - per-call timeouts (a deadline over every attempt of the call);
 *  - retries with capped exponential backoff and jitter on connection
 *    errors, timeouts and -NOQUORUM, on another node of the slot, only
 *    when the operation is safe to repeat: reads, SET, DEL, MSET, EXPIRE,
 *    and INCR / PUT only with RINGKV_CALL_IDEMPOTENT.  A request that was
 *    never written (the connection could not be opened) is always retried;
 *  - AUTH (password, optional user name) on every connection it opens.
 *
 * Errors: every fallible call returns RINGKV_OK (0) or a negative
 * RINGKV_E* code (ringkv_strerror() names it); ringkv_last_error() gives a
 * one-line message with the node and the server's text.  Out-parameters
 * are untouched on error.
 *
 * Memory: keys and values are byte strings (binary-safe) given as pointer
 * + length and borrowed for the call.  Results are returned-owned, each
 * with its free function named; returned strings are also NUL-terminated
 * (the NUL is not counted in the length).
 *
 * Threads: a `struct ringkv` handle is used by one thread at a time (it
 * owns sockets and buffers, and has no locks); separate handles are
 * independent, so use one per thread.  ringkv_strerror is thread-safe.
 * Signals: writes use MSG_NOSIGNAL, so a closed peer never raises SIGPIPE.
 *
 * The asynchronous API on libevent is include/ringkv_async.h, in a second
 * library (libringkv_event), so that this one stays libc-only.
 * Not yet here: TLS.
 */
#ifndef RINGKV_H
#define RINGKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RINGKV_VERSION_MAJOR 0
#define RINGKV_VERSION_MINOR 1
#define RINGKV_VERSION_PATCH 0

/* The error codes: RINGKV_OK = 0, every error negative. */
#define RINGKV_ERRNO_MAP(X)                                             \
    X(ENOMEM, -1, "out of memory")                                      \
    X(EINVAL, -2, "invalid argument")                                   \
    X(EPROTO, -3, "protocol error (malformed or unexpected reply)")     \
    X(EIO, -4, "connection failed or broke")                            \
    X(ETIMEDOUT, -5, "timed out")                                       \
    X(ENOQUORUM, -6, "quorum not reached")                              \
    X(ENOTFOUND, -7, "key not found")                                   \
    X(EAUTH, -8, "authentication failed or required")                   \
    X(ESERVER, -9, "the server answered an error")                      \
    X(ENOTOPOLOGY, -10, "no node reachable or no node serves the slot") \
    X(ECANCELED, -11, "cancelled: the handle was destroyed")

enum ringkv_err
{
    RINGKV_OK = 0,
#define RINGKV__ERR_ENUM(name, val, msg) RINGKV_##name = (val),
    RINGKV_ERRNO_MAP(RINGKV__ERR_ENUM)
#undef RINGKV__ERR_ENUM
};

/* Static text for a code ("timed out"); never NULL ("unknown error").
 * Thread: any. */
const char *ringkv_strerror(int err);

/* Symbolic name of a code ("RINGKV_ETIMEDOUT"); static, never NULL. */
const char *ringkv_errname(int err);

struct ringkv; /* opaque handle */

/* Options of ringkv_create(); fill with ringkv_options_init() first, then
 * set what you need.  Every pointer is borrowed for ringkv_create() only
 * (the strings are copied). */
struct ringkv_options
{
    const char *const *seeds; /* n_seeds "host:port" strings ("[::1]:7379"
                                 for IPv6); at least one */
    size_t n_seeds;
    const char *username;    /* AUTH user, NULL = "AUTH password" */
    const char *password;    /* NULL = no AUTH */
    int connect_timeout_ms;  /* per connect attempt; default 1000 */
    int timeout_ms;          /* default deadline of a call, all attempts
                                included; default 5000 */
    int max_attempts;        /* attempts of a retryable call, >= 1;
                                default 8 */
    int backoff_base_ms;     /* first backoff; default 10 */
    int backoff_max_ms;      /* backoff cap; default 500 */
    int refresh_interval_ms; /* periodic CLUSTER SLOTS; default 10000;
                                < 0 = only after errors */
    int down_ms;             /* a node that refused a connection is
                                skipped this long; default 1000 */
};

/* Fills `o` with the defaults above (no seeds). */
void ringkv_options_init(struct ringkv_options *o);

/* Flags of a call (struct ringkv_call.flags). */
#define RINGKV_CALL_IDEMPOTENT                                            \
    0x1u                          /* the caller says the operation may be \
                                     repeated (INCR, PUT are retried) */
#define RINGKV_CALL_NO_RETRY 0x2u /* one attempt, whatever the operation */

/* Per-call options; NULL = the handle's defaults. */
struct ringkv_call
{
    int timeout_ms; /* deadline of this call, all attempts; 0 = default */
    unsigned flags; /* RINGKV_CALL_* */
};

/*
 * Creates a handle: parses the seeds, connects to the first reachable one
 * (in order), authenticates, and reads the topology (CLUSTER SLOTS; a
 * server without CLUSTER is served as one node holding every slot).
 * Returns RINGKV_OK and *out (returned-owned: ringkv_destroy), or
 * RINGKV_EINVAL (no seeds, a malformed "host:port"), RINGKV_EAUTH,
 * RINGKV_EIO / RINGKV_ETIMEDOUT (no seed reachable), RINGKV_EPROTO,
 * RINGKV_ENOMEM.  On error, `errbuf` (256 bytes, or NULL) gets a one-line
 * reason.  Blocks up to n_seeds * connect_timeout_ms plus a reply.
 */
int ringkv_create(const struct ringkv_options *o,
                  struct ringkv **out,
                  char errbuf[256]);

/* Closes every connection and frees `rk`; NULL is a no-op. */
void ringkv_destroy(struct ringkv *rk);

/* One-line message of the last error on `rk` (owned by rk, valid until the
 * next call on rk); "" if the last call succeeded. */
const char *ringkv_last_error(const struct ringkv *rk);

/* Frees a string returned by this library; NULL is a no-op. */
void ringkv_free(void *p);

/*
 * GET.  *val: returned-owned value (ringkv_free), NUL-terminated, *vlen its
 * bytes.  RINGKV_ENOTFOUND when the key has no value.  Retried.
 */
int ringkv_get(struct ringkv *rk,
               const void *key,
               size_t klen,
               char **val,
               size_t *vlen,
               const struct ringkv_call *call);

/*
 * SET, with an expiry when ttl_ms > 0 (PX), none when 0.  Retried (writing
 * the same value twice leaves the same value).  ttl_ms < 0: RINGKV_EINVAL.
 */
int ringkv_set(struct ringkv *rk,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               int64_t ttl_ms,
               const struct ringkv_call *call);

/* DEL of one key; *n_deleted (may be NULL) = 1 if it existed, else 0 (on
 * a retry after a lost reply it may say 0 for a key the first attempt
 * deleted).  Retried. */
int ringkv_del(struct ringkv *rk,
               const void *key,
               size_t klen,
               int64_t *n_deleted,
               const struct ringkv_call *call);

/* One value of ringkv_mget() and ringkv_getall(). */
struct ringkv_value
{
    char *data; /* owned by the array, NUL-terminated; NULL if missing */
    size_t len; /* bytes */
};

/*
 * MGET of n >= 1 keys (keys[i], klens[i]): *vals = returned-owned array of
 * n values in key order, data NULL for a missing key; free with
 * ringkv_values_free(*vals, n).  Sent as one command to a node serving the
 * first key's slot (the node coordinates every key).  Retried.
 */
int ringkv_mget(struct ringkv *rk,
                size_t n,
                const void *const *keys,
                const size_t *klens,
                struct ringkv_value **vals,
                const struct ringkv_call *call);

/* Frees an array of n values; NULL is a no-op. */
void ringkv_values_free(struct ringkv_value *vals, size_t n);

/* MSET of n >= 1 pairs, one command (as MGET).  Retried. */
int ringkv_mset(struct ringkv *rk,
                size_t n,
                const void *const *keys,
                const size_t *klens,
                const void *const *vals,
                const size_t *vlens,
                const struct ringkv_call *call);

/*
 * INCRBY `by`; *result (may be NULL) = the new value.  Not retried after
 * the request may have reached the server unless the call has
 * RINGKV_CALL_IDEMPOTENT (a repeated INCR counts twice).  A value that is
 * not an integer: RINGKV_ESERVER ("ERR value is not an integer ...").
 */
int ringkv_incr(struct ringkv *rk,
                const void *key,
                size_t klen,
                int64_t by,
                int64_t *result,
                const struct ringkv_call *call);

/* PEXPIRE ttl_ms (> 0); *was_set (may be NULL) = false when the key does
 * not exist.  Retried. */
int ringkv_expire(struct ringkv *rk,
                  const void *key,
                  size_t klen,
                  int64_t ttl_ms,
                  bool *was_set,
                  const struct ringkv_call *call);

/* One sibling of ringkv_getall(). */
struct ringkv_sibling
{
    struct ringkv_value value; /* data NULL for a deletion (tombstone) */
    uint64_t hlc;              /* hybrid logical clock of the write */
    int64_t unix_ms;           /* its wall-clock time, ms since the epoch */
};

/* All siblings of a key and the causal context that covers them. */
struct ringkv_siblings
{
    char *context;      /* opaque (hex text), NUL-terminated; "" when the
                           key was never written */
    size_t context_len; /* bytes */
    size_t n;           /* siblings, newest first; 0 for a missing key */
    struct ringkv_sibling *items;
};

/*
 * RINGKV.GETALL: *out (returned-owned: ringkv_siblings_free) holds every
 * sibling and the context to pass to ringkv_put() to supersede them.
 * A missing key is RINGKV_OK with n == 0 and an empty context.  Retried.
 */
int ringkv_getall(struct ringkv *rk,
                  const void *key,
                  size_t klen,
                  struct ringkv_siblings **out,
                  const struct ringkv_call *call);

/* Frees a ringkv_getall() result; NULL is a no-op. */
void ringkv_siblings_free(struct ringkv_siblings *s);

/*
 * RINGKV.PUT key context value: a write that supersedes exactly the
 * siblings `context` (from ringkv_getall; "" with len 0 for none) covers.
 * A malformed context: RINGKV_ESERVER.  Not retried after the request may
 * have arrived unless RINGKV_CALL_IDEMPOTENT (a repeat would be a second
 * write concurrent with the first: one more sibling).
 */
int ringkv_put(struct ringkv *rk,
               const void *key,
               size_t klen,
               const char *context,
               size_t context_len,
               const void *val,
               size_t vlen,
               const struct ringkv_call *call);

/* Counters of a handle since ringkv_create (for tests and monitoring). */
struct ringkv_stats
{
    uint64_t calls;     /* API calls */
    uint64_t attempts;  /* requests tried (calls + retries) */
    uint64_t retries;   /* attempts after the first */
    uint64_t connects;  /* connections opened */
    uint64_t refreshes; /* topology reads */
    uint64_t errors;    /* calls that returned an error (ENOTFOUND
                           excluded) */
};

/* Copies the counters into *st. */
void ringkv_stats_get(const struct ringkv *rk, struct ringkv_stats *st);

/* The server's error text of the last call on rk when it failed on an
 * error reply (RINGKV_ESERVER, RINGKV_ENOQUORUM, RINGKV_EAUTH): "ERR ...",
 * without the node's address that ringkv_last_error() puts first; "" for
 * any other outcome.  Owned by rk, valid until the next call on rk. */
const char *ringkv_last_server_error(const struct ringkv *rk);

/* Number of nodes in the current topology, and the address "host:port"
 * of node i (owned by rk, valid until the next call on rk) or NULL. */
size_t ringkv_node_count(const struct ringkv *rk);
const char *ringkv_node_addr(const struct ringkv *rk, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* RINGKV_H */
