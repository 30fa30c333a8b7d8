/*
 * cmd/internal.h - what the command files of src/server/cmd/ share: error
 * texts, argument parsing, the keyspace helpers handlers read and write
 * keys through (keys.c over keyspace.h), and the handlers the command
 * table (table.c) lists.  Nothing outside src/server/cmd includes this.
 * Thread: the event loop only.
 */
#ifndef RINGKV_SERVER_CMD_INTERNAL_H
#define RINGKV_SERVER_CMD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/resp.h"
#include "server/internal.h"
#include "server/keyspace.h"
#include "storage/engine.h"

#define ERR_SYNTAX   "ERR syntax error"
#define ERR_NOT_INT  "ERR value is not an integer or out of range"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_WRONGTYPE \
    "WRONGTYPE Operation against a key holding the wrong kind of value"
#define ERR_NOAUTH "NOAUTH Authentication required."
#define ERR_WRONGPASS \
    "WRONGPASS invalid username-password pair or user is disabled."

/* SET / GETEX / EXPIRE option bits (strings.c, expiry.c). */
enum set_flags
{
    SET_NX = 1,
    SET_XX = 2,
    SET_GET = 4,
    SET_KEEPTTL = 8,
    SET_EX = 16,
    SET_PX = 32,
    SET_EXAT = 64,
    SET_PXAT = 128,
};
#define SET_EXPIRE_ANY (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

/* ---- acl.c ---- */
void cmd_acl(struct client *c, size_t argc, const struct resp_arg *argv);
/* The ACL categories (bit per enum acl_category) of cmd, a subcommand of
 * `parent` or a command (parent NULL). */
uint32_t cmd__acl_categories(const struct command *cmd,
                             const struct command *parent);
/*
 * Whether c's user may run cmd (its subcommand sc, or NULL to find it
 * from argv) on the keys in argv.  If not: false, msg holds the NOPERM
 * error, and the denial is counted and in ACL LOG.
 */
bool cmd__acl_allows(struct client *c,
                     const struct command *cmd,
                     const struct command *sc,
                     size_t argc,
                     const struct resp_arg *argv,
                     char *msg,
                     size_t msglen);
/* The same decision without counting or logging it (a command that
 * would be refused must not overtake earlier pipelined replies). */
bool cmd__acl_would_allow(const struct client *c,
                          const struct command *cmd,
                          size_t argc,
                          const struct resp_arg *argv);
/* Records a failed AUTH as user[0..ulen) in ACL LOG. */
void cmd__acl_auth_failed(struct client *c, const char *user, size_t ulen);

/* ---- coll_cmd.c: what the hash and set handlers share ---- */
#define ERR_COLL_CLUSTER                                                   \
    "ERR hashes and sets are not replicated in a cluster yet (issue 16): " \
    "use them on a standalone node, or strings and counters in a cluster"
/* One member (and value, for a hash) in a coll_items' data. */
struct coll_item
{
    size_t moff, mlen, voff, vlen;
};
/* Members collected from a collection. */
struct coll_items
{
    struct rk_buf data;
    struct coll_item *it;
    size_t n, cap;
    bool oom;
};
void cmd__coll_items_init(struct coll_items *it);
void cmd__coll_items_fini(struct coll_items *it);
bool cmd__coll_items_add(struct coll_items *it,
                         const char *m,
                         size_t mlen,
                         const char *v,
                         size_t vlen);
static inline const char *cmd__coll_member(const struct coll_items *it,
                                           size_t i)
{
    return it->it[i].mlen ? it->data.base + it->it[i].moff : "";
}
static inline const char *cmd__coll_value(const struct coll_items *it, size_t i)
{
    return it->it[i].vlen ? it->data.base + it->it[i].voff : "";
}
/*
 * Opens key as a collection of `type` (OBJTYPE_HASH or _SET): 1 and *n
 * (its members) when it is one, 0 when absent, -1 when replied (another
 * type: WRONGTYPE; a storage error; collections not available here).
 */
int cmd__coll_open(struct client *c,
                   const struct resp_arg *key,
                   uint8_t type,
                   uint64_t *n);
/* Whether member m of key fits the member key limit (types/coll.h); if
 * not, replies with the error. */
bool cmd__member_fits_or_reply(struct client *c,
                               const struct resp_arg *key,
                               const struct resp_arg *m);
/* Appends every member of key to out: 0, or -1 (replied). */
int cmd__coll_collect(struct client *c,
                      const struct resp_arg *key,
                      struct coll_items *out);
/* Appends the members of in to out, each once (by bytes): 0, or -1
 * (replied: out of memory). */
int cmd__coll_items_unique(struct client *c,
                           const struct coll_items *in,
                           struct coll_items *out);
/* Replaces dst (whatever it holds) with a collection of `type` holding
 * items (members and values), with the expiry expire_at_ms (0 = none):
 * true, or false when replied. */
bool cmd__coll_store(struct client *c,
                     const struct resp_arg *dst,
                     uint8_t type,
                     const struct coll_items *items,
                     uint64_t expire_at_ms);
/* HRANDFIELD's and SRANDMEMBER's count (`what`: "fields", "members" in
 * the error): an integer in Redis's range and at most COLL_MAX_PICKS
 * repeated picks; false when replied. */
bool cmd__random_count_or_reply(struct client *c,
                                const struct resp_arg *arg,
                                const char *what,
                                int64_t *count);
/* Opens key as `type`, collects its members into items and picks
 * |count| of them (distinct when count > 0; none for 0 or an empty key):
 * *idx (rk_malloc'd, may be NULL) and *k.  0, or -1 when replied. */
int cmd__coll_random(struct client *c,
                     const struct resp_arg *key,
                     uint8_t type,
                     int64_t count,
                     struct coll_items *items,
                     size_t **idx,
                     size_t *k);
/* Replaces dst (whatever it holds) with a copy of src, a collection of
 * `type`, with the expiry expire_at_ms: true, or false when replied. */
bool cmd__coll_copy(struct client *c,
                    const struct resp_arg *src,
                    const struct resp_arg *dst,
                    uint8_t type,
                    uint64_t expire_at_ms);
/* HSCAN / SSCAN key cursor [MATCH p] [COUNT n] [NOVALUES]. */
void cmd__coll_scan(struct client *c,
                    size_t argc,
                    const struct resp_arg *argv,
                    uint8_t type);
/* Most picks HRANDFIELD / SRANDMEMBER with a negative count answer (the
 * reply is built in memory; Redis has no such bound). */
#define COLL_MAX_PICKS (16u * 1024u * 1024u)
/* A pseudo-random 64-bit number (not for secrets). */
uint64_t cmd__rand64(void);
/*
 * `count` (> 0; at most COLL_MAX_PICKS when not unique) indexes into
 * 0..n-1 (n > 0), distinct when `unique` (then at most n of them), as an
 * rk_malloc'd array of *out_n; NULL when out of memory or over the bound.
 */
size_t *cmd__coll_pick(size_t n, int64_t count, bool unique, size_t *out_n);

/* ---- coll.c: hashes and sets in the local keyspace ---- */
bool cmd__is_coll_type(uint8_t type);
/* key's type (OBJTYPE_*) and, for a collection, its members (n may be
 * NULL: the header's value is then not read) and meta (may be NULL):
 * RK_OK, RK_ENOTFOUND (absent, deleted, or expired: then deleted
 * lazily), a storage error. */
int coll__read_header(struct server *s,
                      const void *key,
                      size_t klen,
                      uint8_t *type,
                      uint64_t *n,
                      struct engine_meta *meta);
/* This node now holds a hash or set: joins are refused from now on. */
void coll__note_present(struct server *s);
/* Deletes every member record of key (not its header). */
int coll__drop_members(struct server *s, const void *key, size_t klen);
int coll__local_mget(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     uint8_t type,
                     const void *member,
                     size_t mlen,
                     struct rk_buf *val);
int coll__local_mput(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     uint8_t type,
                     const void *member,
                     size_t mlen,
                     const void *val,
                     size_t vlen,
                     bool *created,
                     uint64_t *seq);
int coll__local_mdel(struct keyspace *ks,
                     const void *key,
                     size_t klen,
                     uint8_t type,
                     const void *member,
                     size_t mlen,
                     uint64_t *seq);
int coll__local_mfold(struct keyspace *ks,
                      const void *key,
                      size_t klen,
                      uint64_t cursor,
                      size_t count,
                      bool (*cb)(void *data,
                                 const char *member,
                                 size_t mlen,
                                 const char *val,
                                 size_t vlen),
                      void *data,
                      uint64_t *next);
int coll__local_expire(struct keyspace *ks,
                       const void *key,
                       size_t klen,
                       uint64_t expire_at_ms,
                       uint64_t *seq);

/* ---- connection.c ---- */
/* Appends o's CLIENT LIST line (with its newline) to out. */
void cmd__client_info(struct client *o, struct rk_buf *out);
void cmd_auth(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_client(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_echo(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hello(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_ping(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_quit(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_select(struct client *c, size_t argc, const struct resp_arg *argv);

/* ---- expiry.c ---- */
void cmd_expire(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_expireat(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_expiretime(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_persist(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_pexpire(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_pexpireat(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_pexpiretime(struct client *c,
                     size_t argc,
                     const struct resp_arg *argv);
void cmd_pttl(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_ttl(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_type(struct client *c, size_t argc, const struct resp_arg *argv);

/* ---- keys.c ---- */
#define CMD_LDOUBLE_CHARS (5 * 1024) /* Redis's MAX_LONG_DOUBLE_CHARS */
/* A float as INCRBYFLOAT takes one (strtold, whole string, no leading
 * space, not NaN): true and *out. */
bool cmd__parse_ldouble(const char *p, size_t len, long double *out);
/* v as INCRBYFLOAT answers it (%.17Lf, trailing zeros trimmed) into out;
 * its length, 0 when v is NaN or infinite. */
size_t cmd__format_ldouble(long double v, char out[CMD_LDOUBLE_CHARS]);
bool cmd__arg_i64(const struct resp_arg *a, int64_t *out);
bool cmd__arg_i64_or_reply(struct client *c,
                           const struct resp_arg *a,
                           int64_t *out);
bool cmd__arg_is(const struct resp_arg *a, const char *s);
/* A SCAN cursor (an unsigned decimal): true and *out, or false when
 * replied ("ERR invalid cursor"). */
bool cmd__cursor_or_reply(struct client *c,
                          const struct resp_arg *a,
                          uint64_t *out);
/* SCAN's MATCH pattern / COUNT n at argv[*i] (advanced past its value):
 * 1 taken (*pat NULL for "*"), 0 not one of them, -1 replied. */
int cmd__scan_opt(struct client *c,
                  size_t argc,
                  const struct resp_arg *argv,
                  size_t *i,
                  const struct resp_arg **pat,
                  int64_t *count);
void cmd__expire_key(struct server *s, const void *key, size_t klen);
bool cmd__is_expired(const struct engine_meta *m, uint64_t now_ms);
int cmd__key_delete(struct client *c, const struct resp_arg *key);
int cmd__key_lookup(struct client *c,
                    const struct resp_arg *key,
                    struct rk_buf *val,
                    struct ks_meta *meta);
/* As cmd__key_lookup, for a key of any type: a hash or set is found (1)
 * with meta->type saying so and val left empty. */
int cmd__key_lookup_any(struct client *c,
                        const struct resp_arg *key,
                        struct rk_buf *val,
                        struct ks_meta *meta);
/* Gives a key that cmd__key_lookup_any found (m; val: a string's value)
 * a new expiry (0 = none), keeping its value.  false when replied. */
bool cmd__key_set_expiry(struct client *c,
                         const struct resp_arg *key,
                         const struct rk_buf *val,
                         uint64_t expire_at_ms,
                         const struct ks_meta *m);
bool cmd__key_restore(struct client *c,
                      const struct resp_arg *key,
                      const void *val,
                      size_t vlen,
                      uint64_t expire_at_ms,
                      const struct ks_meta *m);
bool cmd__key_store(struct client *c,
                    const struct resp_arg *key,
                    const void *val,
                    size_t vlen,
                    uint64_t expire_at_ms);
void cmd__note_write(struct client *c, uint64_t seq);
bool cmd__parse_i64(const char *p, size_t len, int64_t *out);
void cmd__reply_bad_subcommand(struct client *c,
                               const struct resp_arg *sub,
                               const char *container);
void cmd__reply_lines(struct client *c, const char *const *lines, size_t n);
void cmd__reply_storage_error(struct client *c, int rc, const char *what);
/*
 * Whether a value of `vlen` bytes (the user's, without content type) may
 * be stored under `limit` (bytes, 0 = no limit); if not, replies "-ERR
 * value of N bytes exceeds cluster-max-value-bytes (M); ..." and returns
 * false.  Thread: the loop.
 */
bool cmd__value_fits_or_reply(struct client *c, uint64_t vlen, uint64_t limit);

/* ---- hashes.c ---- */
void cmd_hdel(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hexists(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hget(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hgetall(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hincrby(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hincrbyfloat(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv);
void cmd_hkeys(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hlen(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hmget(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hmset(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hrandfield(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hscan(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hset(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hsetnx(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hstrlen(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_hvals(struct client *c, size_t argc, const struct resp_arg *argv);

/* ---- sets.c ---- */
void cmd_sadd(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_scard(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_sdiff(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_sdiffstore(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_sinter(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_sintercard(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_sinterstore(struct client *c,
                     size_t argc,
                     const struct resp_arg *argv);
void cmd_sismember(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_smembers(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_smismember(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_smove(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_spop(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_srandmember(struct client *c,
                     size_t argc,
                     const struct resp_arg *argv);
void cmd_srem(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_sscan(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_sunion(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_sunionstore(struct client *c,
                     size_t argc,
                     const struct resp_arg *argv);

/* ---- keyspace.c ---- */
void cmd_cluster(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_dbsize(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_flushall(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_getall(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_keys(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_localget(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_localobj(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_randomkey(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_ringkv_del(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_ringkv_put(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_scan(struct client *c, size_t argc, const struct resp_arg *argv);

/* ---- multi.c ---- */
void cmd_discard(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_exec(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_multi(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_unwatch(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_watch(struct client *c, size_t argc, const struct resp_arg *argv);
bool cmd__multi_queue(struct client *c,
                      const struct command *cmd,
                      size_t argc,
                      const struct resp_arg *argv);

/* ---- server.c ---- */
void cmd_config(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_info(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_save(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_shutdown(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_time(struct client *c, size_t argc, const struct resp_arg *argv);

/* ---- strings.c ---- */
void cmd_append(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_decr(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_decrby(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_del(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_exists(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_get(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_getdel(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_getex(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_getrange(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_getset(struct client *c, size_t argc, const struct resp_arg *argv);
/* cmd/rename.c */
void cmd_rename(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_renamenx(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_copy(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_object(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_setrange(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_touch(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_incr(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_incrby(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_incrbyfloat(struct client *c,
                     size_t argc,
                     const struct resp_arg *argv);
void cmd_mget(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_mset(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_msetnx(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_psetex(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_set(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_setex(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_setnx(struct client *c, size_t argc, const struct resp_arg *argv);
void cmd_strlen(struct client *c, size_t argc, const struct resp_arg *argv);

#endif /* RINGKV_SERVER_CMD_INTERNAL_H */
