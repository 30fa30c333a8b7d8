/*
 * internal.h - shared internals of src/storage (STYLE.md 1.1): the engine
 * vtable, the keydir hash table used by both engines, the clock helpers,
 * and the on-disk record codec.  Bitcask reaches the OS through the
 * per-engine struct rk_vfs of vfs.h.  Nothing outside src/storage and its
 * tests includes this file.
 */
#ifndef RINGKV_STORAGE_INTERNAL_H
#define RINGKV_STORAGE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/env.h"
#include "storage/engine.h"
#include "storage/vfs.h"

/* ------------------------------------------------------------------ */
/* Engine vtable (STYLE.md 1.1: one vtable header, one .c per backend). */

struct keydir; /* below */

struct engine_vtable
{
    const char *kind;
    int (*open)(const struct engine_opts *opts,
                struct engine **out,
                char *errbuf,
                size_t errlen);
    int (*close)(struct engine *e);
    int (*get)(struct engine *e,
               const void *key,
               size_t klen,
               struct rk_buf *val,
               struct engine_meta *meta);
    int (*put)(struct engine *e,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               const struct engine_meta *meta,
               uint64_t *seq);
    int (*del)(struct engine *e,
               const void *key,
               size_t klen,
               uint64_t timestamp,
               uint64_t *seq);
    int (*scan)(struct engine *e,
                uint64_t cursor,
                size_t count,
                engine_key_cb cb,
                void *data,
                uint64_t *next);
    int (*foreach)(struct engine *e, engine_key_cb cb, void *data);
    int (*clear)(struct engine *e, uint64_t *seq);
    int (*sync)(struct engine *e);
    uint64_t (*durable_seq)(struct engine *e);
    uint64_t (*acked_seq)(struct engine *e);
    bool (*read_only)(struct engine *e);
    uint64_t (*recoveries)(struct engine *e);
    int (*handoff)(struct engine *e);
    int (*tick)(struct engine *e);
    int (*merge)(struct engine *e, bool wait);
    void (*stats)(struct engine *e, struct engine_stats *st);
    /* NULL: the engine never turns read-only (engine_recover: RK_OK) */
    int (*recover)(struct engine *e, char *errbuf, size_t errlen);
    /* The engine's keydir, whose live keys are exactly the engine's (both
     * engines): engine.c folds its slot index.  Owner thread. */
    const struct keydir *(*keydir)(struct engine *e);
};

/* Every engine struct starts with this header. */
struct engine
{
    const struct engine_vtable *vt;
};

extern const struct engine_vtable memory_vtable;
extern const struct engine_vtable bitcask_vtable;

/* Hard limits of the formats (engine_open rejects larger options). */
#define STORAGE_MAX_KEY_LIMIT   65536u                  /* keydir: u16 klen-1 */
#define STORAGE_MAX_VALUE_LIMIT (1024ull * 1024 * 1024) /* keydir: 30 bits */
#define STORAGE_MAX_FILE_LIMIT  (2048ull * 1024 * 1024) /* u32 offsets */

/* ------------------------------------------------------------------ */
/*
 * Keydir: chained hash table with Redis-style incremental rehashing and a
 * reverse-binary SCAN cursor.  Entries live in an arena of 2 MiB chunks
 * and are addressed by 32-bit handles (4-byte units), so a chain link or
 * bucket costs 4 bytes, not 8.  Entry layout (bytes, little-endian-free:
 * host order, in memory only):
 *
 *   off size field
 *     0    4 next      handle of the next entry in the chain (0 = end)
 *     4    4 vlen_flags  bits 0..30 value length, bit 31 HAS_EXPIRY
 *     8    8 loc       engine-defined location (bitcask: slot<<32|offset,
 *                      memory: value pointer)
 *    16    8 timestamp caller timestamp
 *    24    2 klen-1    key length minus one (keys are 1..65536 bytes)
 *    26    1 flags     caller's engine_meta.flags
 *    27    1 type      caller's engine_meta.type
 *    28   0/8 expire_at_ms, present only when HAS_EXPIRY
 *    28/36 klen key bytes
 *
 * rounded up to 4 bytes: 28 bytes of overhead for a key without expiry
 * (the flags and type bytes took 2 of the 2-5 bytes of rounding that a
 * 26-byte header left: a key length of 4n+1 or 4n+2 costs 4 bytes more,
 * 4n+3 and 4n the same), plus a 4-byte bucket at load factor <= 1.
 *
 * Thread: owner.  A merge worker may call keydir_find/keydir_get_meta
 * concurrently with owner mutations only while both hold an external lock
 * (bitcask's kd_mu).
 */

struct kd_meta
{
    uint64_t loc;          /* engine-defined location */
    uint64_t timestamp;    /* caller timestamp */
    uint64_t expire_at_ms; /* 0 = never */
    uint32_t value_len;    /* bytes, < 2^31 */
    uint8_t flags;         /* engine_meta.flags */
    uint8_t type;          /* engine_meta.type */
};

/*
 * Slot index (engine.h, "The slot index"; docs/storage-format.md): with a
 * slot function, every entry also sits in a hash table of its slot,
 * chained through two handles appended to the entry (8 bytes at the end
 * of the entry's units: snext, sprev; sprev 0 = first of its bucket).  A
 * slot's table has 2^bits buckets indexed by the low bits of a fixed-seed
 * hash of the key (KD_SLOT_HASH_SEED, the same in every process, so a fold
 * cursor survives a restart).  Its size follows the slot's count (load
 * 1..2 after a resize; grown past 4, shrunk below 1/2); one bucket is kept
 * inline.  Invariant: count == entries chained in the slot's table.
 */
struct kd_slot
{
    union {
        uint32_t *many; /* 2^bits bucket heads when bits > 0 */
        uint32_t one;   /* the only bucket head when bits == 0 */
    } b;
    uint32_t count; /* live keys in the slot */
    uint8_t bits;   /* log2 of the bucket count */
};

struct kd_table
{
    uint32_t *buckets; /* entry handles, 0 = empty */
    uint64_t size;     /* buckets, power of two (0 = unallocated) */
    uint64_t used;     /* entries in this table */
};

struct keydir
{
    struct kd_table t[2];      /* t[1] is the target while rehashing */
    int64_t rehash_idx;        /* next bucket of t[0] to move, -1 = idle */
    uint64_t seed;             /* hash seed */
    unsigned char **chunks;    /* arena chunks of KD_CHUNK_BYTES */
    uint32_t n_chunks;         /* chunks allocated */
    uint32_t cap_chunks;       /* slots in `chunks` */
    uint32_t bump;             /* next free unit in the last chunk */
    uint32_t *free_heads;      /* per size class (units) free-list heads */
    uint32_t n_classes;        /* entries in free_heads */
    uint64_t key_bytes;        /* sum of key lengths */
    uint64_t n_expiring;       /* entries with HAS_EXPIRY (<= count) */
    uint64_t arena_free_bytes; /* bytes on free lists */
    /* Slot index (NULL slot_fn: none, and entries have no slot links). */
    engine_slot_fn slot_fn;     /* key -> slot, or NULL */
    uint32_t n_slots;           /* headers in `slots` */
    uint32_t link_units;        /* units of slot links per entry: 0 or 2 */
    struct kd_slot *slots;      /* n_slots headers, or NULL */
    uint64_t slot_bucket_bytes; /* bytes of the slots' bucket arrays */
};

/*
 * Empties *kd; `seed` keys its hash (storage__seed).  With slot_fn (may be
 * NULL) the keydir keeps the slot index over n_slots (1..ENGINE_MAX_SLOTS)
 * slots.  RK_OK, or RK_ENOMEM (the slot headers; *kd is then an empty
 * keydir without index, safe to fini).
 */
int keydir_init(struct keydir *kd,
                uint64_t seed,
                engine_slot_fn slot_fn,
                uint32_t n_slots);
void keydir_fini(struct keydir *kd);
/* Drops every entry and frees memory (the keydir stays usable, with its
 * seed and slot index settings). */
void keydir_reset(struct keydir *kd);
/* Pre-sizes for `n` keys (no-op if smaller than now).  RK_ENOMEM. */
int keydir_reserve(struct keydir *kd, uint64_t n);
uint64_t keydir_count(const struct keydir *kd);
/* Entries with an expiry (expire_at_ms != 0), expired ones included. */
uint64_t keydir_expiring_count(const struct keydir *kd);
/* Bytes the keydir holds: tables + arena chunks + bookkeeping. */
uint64_t keydir_bytes(const struct keydir *kd);

/*
 * Bulk loading (recovery) hides cache misses by prefetching ahead: the
 * bucket of `hash` (entry=false), then the chain head it names (true).
 */
uint64_t keydir_hash(const struct keydir *kd, const void *key, size_t klen);
void keydir_prefetch(const struct keydir *kd, uint64_t hash, bool entry);
/* Handle of `key` or 0.  Does not rehash (safe under kd_mu from a worker). */
uint32_t keydir_find(const struct keydir *kd, const void *key, size_t klen);
void keydir_meta(const struct keydir *kd, uint32_t h, struct kd_meta *m);
uint64_t keydir_loc(const struct keydir *kd, uint32_t h);
void keydir_set_loc(struct keydir *kd, uint32_t h, uint64_t loc);
const unsigned char *keydir_key(const struct keydir *kd,
                                uint32_t h,
                                size_t *klen);

/*
 * Inserts or replaces key -> m.  *had_old (may be NULL) tells whether the
 * key existed, and *old (may be NULL) receives its previous meta.
 * RK_OK or RK_ENOMEM (keydir unchanged).
 */
int keydir_put(struct keydir *kd,
               const void *key,
               size_t klen,
               const struct kd_meta *m,
               struct kd_meta *old,
               bool *had_old);
/* Removes key; *old (may be NULL) gets its meta.  RK_OK or RK_ENOTFOUND. */
int keydir_del(struct keydir *kd,
               const void *key,
               size_t klen,
               struct kd_meta *old);

/* Visits entries; return false from cb to stop. */
typedef bool (*keydir_visit_cb)(void *data,
                                const unsigned char *key,
                                size_t klen,
                                const struct kd_meta *m);
/* SCAN over buckets (Redis dictScan guarantee).  Returns next cursor. */
uint64_t keydir_scan(const struct keydir *kd,
                     uint64_t cursor,
                     size_t count,
                     keydir_visit_cb cb,
                     void *data);
/* Visits every entry once; returns false if cb stopped the walk. */
bool keydir_foreach(const struct keydir *kd, keydir_visit_cb cb, void *data);
/* The engine_meta view of a keydir entry's meta (both engines' get). */
void keydir_engine_meta(const struct kd_meta *km, struct engine_meta *em);
/* engine_scan / engine_foreach for an engine whose live keys are exactly
 * the keydir's (both engines): the same walks with engine_meta views. */
uint64_t keydir_engine_scan(const struct keydir *kd,
                            uint64_t cursor,
                            size_t count,
                            engine_key_cb cb,
                            void *data);
void keydir_engine_foreach(const struct keydir *kd,
                           engine_key_cb cb,
                           void *data);

/* Whether kd keeps a slot index. */
bool keydir_has_slots(const struct keydir *kd);
/* Live keys in `slot` (< n_slots; checked by the caller). */
uint64_t keydir_slot_count(const struct keydir *kd, uint32_t slot);
/*
 * engine_fold_slots over kd's slot index (the caller checked that kd has
 * one, first <= last < n_slots, count >= 1, and that cursor is a position
 * or ENGINE_FOLD_DONE): visits about `count` entries and returns the next
 * cursor, or ENGINE_FOLD_DONE.
 */
uint64_t keydir_fold_slots(const struct keydir *kd,
                           uint32_t first,
                           uint32_t last,
                           uint64_t cursor,
                           size_t count,
                           keydir_visit_cb cb,
                           void *data);
/* keydir_fold_slots with engine_meta views (engine_fold_slots). */
uint64_t keydir_engine_fold_slots(const struct keydir *kd,
                                  uint32_t first,
                                  uint32_t last,
                                  uint64_t cursor,
                                  size_t count,
                                  engine_key_cb cb,
                                  void *data);

/* ------------------------------------------------------------------ */
/*
 * Data file format (docs/storage-format.md).  All integers little-endian.
 *
 * File header (16 bytes), data and hint files alike:
 *   off size field
 *     0    4 magic "RKBC"
 *     4    2 format version (2; 1 still read)
 *     6    2 file kind (1 = data, 2 = hint)
 *     8    8 file order (equals the number in the file name)
 *
 * Record (data file, version 2), 31-byte header then key and value:
 *     0    4 checksum: low 32 bits of XXH3_64 over bytes [4, end of value)
 *     4    8 timestamp (caller, opaque, all 64 bits)
 *    12    8 expire_at_ms (0 = never)
 *    20    4 key length
 *    24    4 value length
 *    28    1 flags: bit 0 tombstone, bit 1 clear-all marker
 *    29    1 meta flags (engine_meta.flags: the caller's, opaque)
 *    30    1 type (engine_meta.type: the caller's, opaque)
 *    31  klen key
 *   31+klen vlen value
 *
 * Version 1 (read only: files written before the explicit header) has the
 * 29-byte header without bytes 29 and 30; its records read with meta flags
 * ENGINE_FLAG_V1 and type 0.  A file's records all have its version; new
 * files (appends, merge outputs, hints) are always version 2, and merge
 * rewrites a version-1 record as a version-2 one carrying ENGINE_FLAG_V1.
 */
#define BC_MAGIC         "RKBC"
#define BC_VERSION       2 /* written; read: 1 and 2 */
#define BC_VERSION_V1    1
#define BC_KIND_DATA     1
#define BC_KIND_HINT     2
#define BC_FILE_HDR      16
#define BC_REC_HDR       31 /* version 2 */
#define BC_REC_HDR_V1    29
#define BC_FLAG_TOMB     0x01
#define BC_FLAG_CLEAR    0x02
#define BC_FLAGS_KNOWN   0x03
#define BC_HINT_ENTRY    31 /* hint entry header (version 2), then key */
#define BC_HINT_ENTRY_V1 29
#define BC_HINT_TRAILER  24

/* Bytes of a record header (or hint entry) in a file of `version`. */
static inline size_t bc_rec_hdr_len(uint16_t version)
{
    return version == BC_VERSION_V1 ? BC_REC_HDR_V1 : BC_REC_HDR;
}

static inline size_t bc_hint_entry_len(uint16_t version)
{
    return version == BC_VERSION_V1 ? BC_HINT_ENTRY_V1 : BC_HINT_ENTRY;
}

struct bc_rec
{
    uint64_t timestamp;
    uint64_t expire_at_ms;
    uint32_t klen;
    uint32_t vlen;
    uint8_t flags;            /* BC_FLAG_* */
    uint8_t meta_flags;       /* engine_meta.flags */
    uint8_t type;             /* engine_meta.type */
    const unsigned char *key; /* view into the parsed bytes */
    const unsigned char *val; /* view into the parsed bytes */
};

/* Checksum of a record's bytes after the checksum field. */
uint32_t bc_checksum(const void *p, size_t n);
/* Encodes the version-2 header fields after the checksum (bytes 4..30). */
void bc_rec_encode_fields(unsigned char *hdr, const struct bc_rec *r);
/* Computes the checksum of encoded fields + key + value into hdr[0..4). */
void bc_rec_seal(unsigned char *hdr,
                 const void *key,
                 size_t klen,
                 const void *val,
                 size_t vlen);
/* Encodes the 31-byte version-2 header for key/value (checksum over
 * hdr+key+val). */
void bc_rec_encode_hdr(unsigned char *hdr,
                       const struct bc_rec *r,
                       const void *key,
                       const void *val);
/*
 * Parses a record of a file of `version` (1 or 2) at p[0..avail): RK_OK
 * (fills *r, *len; a version-1 record gets meta_flags ENGINE_FLAG_V1 and
 * type 0), RK_EAGAIN (the record claims more bytes than avail),
 * RK_ECORRUPT (bad checksum, flags or lengths over the limits).
 */
int bc_rec_parse(uint16_t version,
                 const unsigned char *p,
                 size_t avail,
                 size_t max_key,
                 uint64_t max_val,
                 struct bc_rec *r,
                 size_t *len);
void bc_file_hdr_encode(unsigned char *p, uint16_t kind, uint64_t order);

/*
 * The engine's clocks (engine.h, "Clocks"): monotonic microseconds (env's
 * mono_ms * 1000 when env is set, else CLOCK_MONOTONIC) and Unix wall ms
 * (env's wall_ms, else CLOCK_REALTIME).  env may be NULL.  Thread: any
 * thread the env allows (the OS clocks: any).
 */
uint64_t storage__now_us(struct rk_env *env);
uint64_t storage__wall_ms(struct rk_env *env);
/* A keydir hash seed: env's rand64 when env is set (never the clock, so a
 * simulated run replays), else mixed from `salt`'s address and the clock. */
uint64_t storage__seed(struct rk_env *env, const void *salt);

/* ------------------------------------------------------------------ */
/*
 * Bitcask engine internals, shared by bitcask*.c.
 *
 * Files are named by a 64-bit "order" (16 hex digits): normal files get
 * orders k << 20, and merge outputs take orders in the gap right above the
 * newest immutable file and below the active file, so "higher order wins"
 * stays true at recovery.  Keydir locations are (slot << 32 | offset),
 * where slot indexes bitcask.files.
 */
#define BC_ORDER_SHIFT 20
#define BC_WBUF_CAP    (1u << 20) /* user-space write buffer, bytes */

struct bc_file
{
    uint64_t order;           /* name; recovery order (higher wins) */
    uint16_t version;         /* format of its records (BC_VERSION*) */
    uint32_t slot;            /* index in bitcask.files */
    int fd;                   /* open descriptor, -1 if none */
    const unsigned char *map; /* read-only view (vfs map) or NULL */
    size_t map_len;           /* bytes mapped (active file: whole window) */
    uint64_t size;            /* bytes (active: logical end incl. buffered) */
    uint64_t total_bytes;     /* bytes of records */
    uint64_t dead_bytes;      /* superseded records, tombstones, markers */
    uint64_t tomb_bytes;      /* tombstone and clear-marker bytes */
    bool has_hint;            /* a valid hint file exists (or is queued) */
    bool merge_input;         /* input of the running merge */
};

struct bc_wbuf
{
    unsigned char *base; /* BC_WBUF_CAP bytes */
    size_t len;          /* bytes in use */
};

struct bc_merge; /* bitcask_merge.c */

struct bc_job
{
    struct bc_job *next;
    struct bc_file *file;   /* hint job: write this file's hint */
    struct bc_merge *merge; /* merge job */
    uint64_t *del_orders;   /* delete job: merged inputs, ascending */
    size_t n_del;           /* entries in del_orders */
};

/* A job submitted to an executor (engine.h, "Threads"). */
enum bc_job_state
{
    BC_JOB_IDLE = 0, /* none queued or running: the owner may submit */
    BC_JOB_QUEUED,   /* submitted, not started: may be withdrawn */
    BC_JOB_RUNNING,  /* running on the executor; close waits for it */
};

struct bitcask
{
    struct engine base;
    struct engine_opts opts;     /* copy; opts.dir points at dir */
    char *dir;                   /* owned copy of the data dir */
    int dir_fd;                  /* for fsync of the directory */
    int lock_fd;                 /* holds the vfs lock on LOCK */
    struct rk_vfs *vfs;          /* OS access (opts.vfs or POSIX) */
    struct rk_env *env;          /* clocks; NULL = the OS's */
    struct rk_executor *sync_ex; /* sync jobs; NULL = sync thread */
    struct rk_executor *bg_ex;   /* worker jobs; NULL = bg thread */
    uint64_t max_value_len;      /* clamped option */
    struct keydir kd;            /* key -> location */
    pthread_mutex_t kd_mu;       /* keydir vs merge worker */
    bool kd_locking;             /* owner: take kd_mu on mutations */
    struct bc_file **files;      /* by slot; NULL = free slot */
    uint32_t n_slots;            /* slots allocated */
    struct bc_file *active;      /* file receiving appends */
    uint64_t next_seq;           /* owner: last seq handed out */
    struct rk_buf scratch;       /* owner: buffered-record reads */

    /* Write buffer and sync state, under wb_mu. */
    pthread_mutex_t wb_mu;
    pthread_cond_t wb_cond; /* any change below */
    struct bc_wbuf cur;     /* appended records not yet written */
    struct bc_wbuf flight;  /* records being written */
    uint64_t cur_off;       /* active-file offset of cur[0] */
    uint64_t flight_off;    /* active-file offset of flight[0] */
    bool flight_busy;       /* a flusher owns `flight` */
    int wb_fd;              /* active file descriptor */
    uint64_t written_end;   /* active bytes handed to the OS */
    uint64_t last_seq;      /* seq of the newest buffered write */
    uint64_t flight_seq;    /* seq of the newest record in flight */
    uint64_t written_seq;   /* atomic: every seq <= it is in the OS */
    uint64_t synced_seq;    /* sync thread's durable mark */
    uint64_t last_batch;    /* writes in the last sync batch */
    int syncing_fd;         /* fd being fdatasync'ed, or -1 */
    int bg_syncing_fd;      /* fd the worker fdatasyncs, or -1 */
    /* The file the last rollover made immutable, not fdatasync'ed yet
     * (bc_sync_old_locked): its descriptor (-1: none), the file, and
     * whether a thread is syncing it now. */
    int old_fd;
    struct bc_file *old_file;
    bool old_syncing;
    bool stop;                                 /* sync thread: exit */
    bool failed;                               /* sticky read-only state */
    int fail_rc;                               /* first error of the failure */
    uint64_t syncs, sync_errors, last_sync_us; /* stats */
    uint64_t sync_us_total;                    /* stats: summed durations */
    pthread_t sync_thread;
    bool sync_started;
    enum bc_job_state sync_job; /* the sync executor's job */
    uint64_t sync_due_ms;       /* owner: sync=every's next job, mono ms */
    uint64_t durable_seq;       /* atomic: highest durable seq */

    /* Background worker (hint files, merges), queue under bg_mu. */
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cond;
    struct bc_job *jobs_head, *jobs_tail;
    bool bg_stop;  /* worker: exit when set */
    bool bg_busy;  /* worker is running a job */
    int bg_cancel; /* atomic: abandon the merge */
    pthread_t bg_thread;
    bool bg_started;          /* the worker thread, or bg_ex, is in use */
    enum bc_job_state bg_job; /* under bg_mu: the bg executor's job */
    struct bc_merge *merge;   /* owner: running merge or NULL */
    bool merge_finished;      /* under bg_mu: worker done */

    bool fail_reported;  /* owner: tick returned the error */
    bool roll_active;    /* bc_recover: start a new active file, never
                            append to the last one (in-place recovery) */
    uint64_t recoveries; /* owner: successful bc_recover_in_place */

    /* Owner-thread counters. */
    uint64_t writes, merges_done, truncated_bytes, skipped_records,
        hint_fallbacks;
};

static inline uint64_t bc_loc(uint32_t slot, uint64_t off)
{
    return ((uint64_t)slot << 32) | off;
}

/* bitcask.c */
void bc_path(const struct bitcask *b,
             uint64_t order,
             const char *ext,
             char *out,
             size_t outlen);
int bc_slot_add(struct bitcask *b, struct bc_file *f);
void bc_file_free(struct bitcask *b, struct bc_file *f);
int bc_fsync_dir(struct bitcask *b);
void bc_set_failed(struct bitcask *b, int rc);
bool bc_is_failed(struct bitcask *b);
int bc_pwrite_all(struct rk_vfs *vfs,
                  int fd,
                  const void *p,
                  size_t n,
                  uint64_t off);
int bc_map(struct bitcask *b, struct bc_file *f, size_t len);
void bc_unmap(struct bitcask *b, struct bc_file *f);
/*
 * With *mu held (the mutex guarding *st; cond is broadcast on its
 * changes): returns once the job (work, data) on `ex` is neither queued nor
 * running.  A QUEUED job is withdrawn with ex->cancel when the executor has
 * one: true is returned, and the job will never run (its work is the
 * caller's).  A running one (or a queued one without cancel) is waited
 * for: false.  Thread: owner.
 */
bool bc_job_settle(struct rk_executor *ex,
                   rk_work_cb work,
                   void *data,
                   enum bc_job_state *st,
                   pthread_mutex_t *mu,
                   pthread_cond_t *cond);

/* bitcask_sync.c */
int bc_create_file(struct bitcask *b,
                   uint64_t order,
                   size_t window,
                   struct bc_file **out);
int bc_append(struct bitcask *b,
              unsigned char *hdr,
              const void *key,
              size_t klen,
              const void *val,
              size_t vlen,
              uint64_t *seq);
int bc_read_record(struct bitcask *b,
                   struct bc_file *f,
                   uint64_t off,
                   size_t len,
                   const unsigned char **out);
int bc_flush(struct bitcask *b);
/* engine_acked_seq / engine_handoff of bitcask (engine.h).  Owner. */
uint64_t bc_acked_seq(struct bitcask *b);
int bc_handoff(struct bitcask *b);
int bc_sync_now(struct bitcask *b);
/* With wb_mu held: fdatasyncs and closes the file a rollover left
 * unsynced (old_fd), or waits while another thread does; wb_mu is dropped
 * around the fdatasync.  false when the engine has failed.  Thread: any
 * (owner, sync thread or job, background worker). */
bool bc_sync_old_locked(struct bitcask *b);
int bc_sync_from_worker(struct bitcask *b);
int bc_rollover(struct bitcask *b, size_t need);
void bc_publish_durable(struct bitcask *b, uint64_t seq);
int bc_sync_thread_start(struct bitcask *b);
void bc_sync_thread_stop(struct bitcask *b);
int bc_sync_tick(struct bitcask *b);

/* bitcask_recovery.c */
int bc_recover(struct bitcask *b, char *errbuf, size_t errlen);
/* engine_recover of bitcask (engine.h). */
int bc_recover_in_place(struct engine *e, char *errbuf, size_t errlen);
int bc_apply_record(struct bitcask *b,
                    struct bc_file *f,
                    uint64_t off,
                    const struct bc_rec *r,
                    size_t len);
size_t bc_next_valid(uint16_t version,
                     const unsigned char *p,
                     size_t size,
                     size_t from);

/* bitcask_merge.c */
int bc_bg_start(struct bitcask *b);
void bc_bg_stop(struct bitcask *b);
void bc_bg_wait_idle(struct bitcask *b);
int bc_bg_enqueue_hint(struct bitcask *b, struct bc_file *f);
int bc_bg_kick(struct bitcask *b);
int bc_merge_start(struct bitcask *b, bool all);
int bc_merge_poll(struct bitcask *b, bool wait);
int bc_hint_load(struct bitcask *b, struct bc_file *f);
uint64_t bc_hint_count(const struct bitcask *b, uint64_t order);

#endif /* RINGKV_STORAGE_INTERNAL_H */
