/*
 * keyspace.h - what command handlers read and write keys through
 * (DESIGN.md 2a "src/server/cmd/ handlers ... reading and writing through a
 * keyspace interface (local or coordinated behind it)"; issue 11 item 3).
 *
 * Two backends:
 *   local        the node's storage engine: lazy expiry, the content type
 *                kept as a value prefix (commands.c, keyspace_local);
 *   coordinated  the keys of one coordinated command (cluster/op.h, driven
 *                by cluster_ops.c): reads answer from the versions the
 *                quorum read returned, writes are recorded per key and
 *                replicated after the handler returns.  A key the command
 *                did not declare reads as absent and cannot be written.
 * A handler never sees which one it runs against: a client's `ks` points
 * at the local keyspace, and cluster_ops.c points it at a command's
 * coordinated keyspace for the duration of that command's handler.
 *
 * Values are the user's bytes: a content type (HTTP PUT's Content-Type)
 * travels beside them in struct ks_meta, never inside.
 *
 * Thread: the event loop only.
 */
#ifndef RINGKV_SERVER_KEYSPACE_H
#define RINGKV_SERVER_KEYSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define KS_MAX_CTYPE 127 /* bytes of a content type (DVV_MAX_CTYPE) */

/* What a read returns beside the value. */
struct ks_meta
{
    uint8_t type;          /* OBJTYPE_STRING, _HASH or _SET (objtype.h) */
    uint64_t n_members;    /* a hash's or set's members, else 0 */
    uint64_t ts;           /* HLC of the version read (WATCH compares it) */
    uint64_t expire_at_ms; /* absolute Unix ms, 0 = none */
    uint64_t value_len;    /* bytes of the user's value */
    uint8_t ctlen;         /* content type bytes, 0 = none */
    char ct[KS_MAX_CTYPE];
};

struct keyspace;

struct keyspace_ops
{
    /*
     * Reads a live key: RK_OK with the value appended to `val` (cleared
     * first; may be NULL for the metadata only) and *m (may be NULL);
     * RK_ENOTFOUND when absent, deleted or expired; RK_EWRONGTYPE when
     * val is not NULL and the key is a hash or set (with val NULL: RK_OK
     * and m->type says which); or a storage error (RK_ECORRUPT, RK_EIO,
     * RK_ENOMEM).
     */
    int (*get)(struct keyspace *ks,
               const void *key,
               size_t klen,
               struct rk_buf *val,
               struct ks_meta *m);
    /*
     * Stores key -> value (vlen bytes, the user's) with an expiry and a
     * content type (ct/ctlen, 0 = none).  RK_OK and *seq (the durability
     * sequence to wait for, 0 = none); RK_ETOOBIG, RK_EINVAL (empty key),
     * RK_EREADONLY, RK_ENOSPC, RK_EIO, RK_ENOMEM.
     */
    int (*put)(struct keyspace *ks,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               uint64_t expire_at_ms,
               const char *ct,
               uint8_t ctlen,
               uint64_t *seq);
    /*
     * Deletes a key: RK_OK when a live key was deleted, RK_ENOTFOUND when
     * there was none (an expired key is removed all the same and counts as
     * none), or a storage error.  *seq as for put.
     */
    int (*del)(struct keyspace *ks,
               const void *key,
               size_t klen,
               uint64_t *seq);
    /*
     * Optional (NULL when the backend has no such view): like get, but
     * val and vlen view the value where the backend holds it, valid until
     * the next call into the keyspace or the end of the handler; spares
     * a copy of a large value (the coordinated keyspace has it already).
     */
    int (*view)(struct keyspace *ks,
                const void *key,
                size_t klen,
                const char **val,
                size_t *vlen,
                struct ks_meta *m);
    /*
     * Optional: when reply_may_move is set and `out` is empty, replaces
     * out with the key's value already framed as a RESP bulk reply
     * (moved, not copied); RK_OK, or RK_ENOTFOUND (the caller replies
     * with a copy).
     */
    int (*move_reply)(struct keyspace *ks,
                      const void *key,
                      size_t klen,
                      struct rk_buf *out);
    /*
     * Optional (NULL: the handler reads, adds and puts): adds delta to the
     * integer key holds (absent = 0), keeping its expiry, as a counter
     * that sums concurrent increments (cluster/types/counter.h).  RK_OK
     * and *result (the value after it, as this node sees it);
     * RK_EINVAL (the value is not an integer), RK_ERANGE (it would
     * overflow), RK_ENOMEM.
     */
    int (*incr)(struct keyspace *ks,
                const void *key,
                size_t klen,
                int64_t delta,
                int64_t *result);

    /* ---- hashes and sets (cluster/types/coll.h); NULL when the backend
     * has none (a cluster, for now): the handler refuses the command ---- */
    /*
     * A member of key, a collection of `type`: RK_OK (its value appended
     * to val, cleared first; may be NULL), RK_ENOTFOUND (no such member or
     * key), RK_EWRONGTYPE (key holds another type), or a storage error.
     */
    int (*mget)(struct keyspace *ks,
                const void *key,
                size_t klen,
                uint8_t type,
                const void *member,
                size_t mlen,
                struct rk_buf *val);
    /*
     * Sets a member of key, a collection of `type` (OBJTYPE_HASH or _SET;
     * created when absent, keeping the expiry of one that exists): RK_OK
     * and *created (whether the member is new); RK_EWRONGTYPE (key holds
     * another type), RK_ETOOBIG (key and member over the key limit), or a
     * storage error.  *seq as for put.
     */
    int (*mput)(struct keyspace *ks,
                const void *key,
                size_t klen,
                uint8_t type,
                const void *member,
                size_t mlen,
                const void *val,
                size_t vlen,
                bool *created,
                uint64_t *seq);
    /*
     * Removes a member of a collection of `type`: RK_OK (removed; the key
     * is deleted with its last member, as in Redis), RK_ENOTFOUND,
     * RK_EWRONGTYPE, or a storage error.  *seq as for put.
     */
    int (*mdel)(struct keyspace *ks,
                const void *key,
                size_t klen,
                uint8_t type,
                const void *member,
                size_t mlen,
                uint64_t *seq);
    /*
     * Folds key's members from cursor (0 = the start): calls cb(data,
     * member, mlen, value, vlen) for about `count` of them (views valid
     * during the call; cb returns false to stop), and sets *next (0 when
     * done).  A member present for the whole fold is visited at least
     * once.  RK_OK, or a storage error.
     */
    int (*mfold)(struct keyspace *ks,
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
    /*
     * Sets the expiry of key, of any type (0: none): RK_OK, RK_ENOTFOUND.
     * *seq as for put.
     */
    int (*expire)(struct keyspace *ks,
                  const void *key,
                  size_t klen,
                  uint64_t expire_at_ms,
                  uint64_t *seq);
};

struct keyspace
{
    const struct keyspace_ops *ops;
    void *data; /* the backend's */
    /* Largest value a put may store, bytes; 0 = only the backend's own
     * limit.  The coordinated keyspace sets cluster-max-value-bytes, and
     * the command layer refuses a larger value before calling put, with
     * an error that names the setting (cmd__key_store). */
    uint64_t max_value_bytes;
    /* move_reply may move a value into the client's output: the running
     * command is the operation's only one (not a transaction's EXEC). */
    bool reply_may_move;
};

#endif /* RINGKV_SERVER_KEYSPACE_H */
