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
#define ERR_NOAUTH   "NOAUTH Authentication required."
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
bool cmd__arg_i64(const struct resp_arg *a, int64_t *out);
bool cmd__arg_i64_or_reply(struct client *c,
                           const struct resp_arg *a,
                           int64_t *out);
bool cmd__arg_is(const struct resp_arg *a, const char *s);
void cmd__expire_key(struct server *s, const void *key, size_t klen);
bool cmd__is_expired(const struct engine_meta *m, uint64_t now_ms);
int cmd__key_delete(struct client *c, const struct resp_arg *key);
int cmd__key_lookup(struct client *c,
                    const struct resp_arg *key,
                    struct rk_buf *val,
                    struct ks_meta *meta);
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
