/*
 * engine.h - the one storage engine interface (DESIGN.md section 3).
 *
 * Engines: "bitcask" (default, persistent; bitcask.c after Sheehy and
 * Smith, "Bitcask: A Log-Structured Hash Table for Fast Key/Value Data",
 * Basho 2010) and "memory" (memory.c; no persistence).  A caller picks one
 * by name at run time through engine_open(); every other call dispatches
 * through the engine's vtable.
 *
 * Data model: keys and values are binary-safe byte strings.  Every record
 * carries two caller-supplied 64-bit fields: `timestamp` (opaque to the
 * engine; the cluster passes HLC timestamps) and `expire_at_ms` (absolute
 * Unix time in ms, 0 = no expiry).  The engine stores expiry but never
 * consults a clock to hide a record: callers decide what expired means
 * (lazy expiry lives in the server).  Merge may drop an expired record
 * only under the same rule as a tombstone (no older copy of the key can
 * resurface).
 *
 * Durability: engine_put()/engine_delete() return a write sequence number
 * (`seq`, strictly increasing per engine, starting at 1).  A write is
 * durable once engine_durable_seq() >= its seq.  Under sync=always the
 * engine fdatasyncs in the background in batches (group commit) and calls
 * opts.durable_cb after each batch, so an event loop can acknowledge
 * writes without blocking.  Under sync=every:<ms> it syncs every interval;
 * under sync=none only rollover (a background fdatasync of the file that
 * became immutable), close and engine_sync make data durable.
 * The memory engine reports every write durable at once.
 *
 * Threads: every function must be called from one thread (the owner, the
 * event loop), except engine_durable_seq(), which is safe from any thread.
 * Background work runs on threads the engine starts (the default), or as
 * jobs it submits to executors (common/env.h) given in the options:
 *
 *   opts.sync_executor  fdatasync batches (sync=always and every).  A job
 *                       flushes the write buffer, fdatasyncs, publishes
 *                       durable_seq, calls durable_cb, and repeats while
 *                       writes are pending.  sync=always submits it from a
 *                       write that finds none queued or running, and from
 *                       engine_tick when writes wait; sync=every submits it
 *                       from engine_tick once sync_interval_ms have passed
 *                       on the engine's clock since the last one (so the
 *                       interval is as precise as the tick cadence).  No
 *                       thread is started, and no gathering wait is made
 *                       before a batch (the sync thread makes one).
 *   opts.bg_executor    the engine's queue of background work: hint files,
 *                       merges, deleting merged inputs.  A job runs the
 *                       queue until it is empty; a merge's result is still
 *                       applied by engine_tick (or engine_merge(wait)).
 *
 * At most one job per executor and engine is queued or running at a time;
 * its data is the engine.  Jobs run on the executor's thread concurrently
 * with the owner (a real executor) or inline between owner calls (a
 * simulator); opts.vfs and opts.env are called from them too.  Calls that
 * block until background work is done (engine_merge(wait=true),
 * engine_clear, engine_close) withdraw a job that has not started with
 * executor->cancel and do its work on the calling thread; they wait only
 * for a job already running.  So engine_close never waits for a job an
 * executor will not run (a simulated crash discards a node's queued jobs,
 * and cancel answers RK_OK for those), and no job of a closed engine runs
 * afterwards.  An executor without cancel must run every job it accepted;
 * engine_close waits for them.  A simulator crashes a node's storage by
 * discarding its jobs, making its vfs fail every call (its power is out),
 * then calling engine_close, which frees the engine: its final sync fails,
 * nothing more reaches the disk.  opts.durable_cb is called on
 * the sync thread or from the sync job, so it must not call into the
 * engine (inline, a call to engine_close would wait for the running job
 * that called it): a simulator queues an event instead.  The memory
 * engine starts no thread and uses neither executor nor vfs.
 *
 * Clocks and randomness: opts.env (NULL: the OS clocks and a per-process
 * seed) gives the engine's monotonic clock (sync durations, the sync=every
 * interval under an executor), its wall clock (a merge's expiry cut-off)
 * and the keydir's hash seed (rand64; never the clock when env is set).
 *
 * Files: bitcask reaches its directory only through opts.vfs (vfs.h; NULL:
 * POSIX), so engines in one process can each have their own (simulated)
 * disk and faults.
 *
 * Sticky errors (STYLE.md 1.3): after a failed write or fsync whose on-disk
 * effect is uncertain, a persistent engine refuses every further write with
 * RK_EREADONLY until reopened; reads continue.  A full disk (a write that
 * failed with ENOSPC) is the one failure engine_recover leaves in place.
 */
#ifndef RINGKV_STORAGE_ENGINE_H
#define RINGKV_STORAGE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct rk_env;      /* common/env.h */
struct rk_executor; /* common/env.h */
struct rk_vfs;      /* storage/vfs.h */

#define ENGINE_DEFAULT_MAX_KEY       (64u * 1024u)          /* bytes */
#define ENGINE_DEFAULT_MAX_VALUE     (512ull * 1024 * 1024) /* bytes */
#define ENGINE_DEFAULT_MAX_FILE      (256ull * 1024 * 1024) /* bytes */
#define ENGINE_DEFAULT_MERGE_RATIO   0.40  /* dead/total bytes of a file */
#define ENGINE_DEFAULT_SYNC_INTERVAL 1000  /* ms, for sync=every */
#define ENGINE_DEFAULT_SLOTS         16384 /* n_slots: Redis Cluster's */
#define ENGINE_MAX_SLOTS             65536 /* n_slots upper bound */

enum engine_sync_mode
{
    ENGINE_SYNC_NONE = 0,   /* never fsync except close/rollover/sync */
    ENGINE_SYNC_ALWAYS = 1, /* group-committed fdatasync per write batch */
    ENGINE_SYNC_EVERY = 2,  /* fdatasync every sync_interval_ms */
};

/* Called after writes up to `seq` are durable: on the engine's sync thread,
 * or from its job on opts.sync_executor ("Threads").  Must not call into
 * the engine. */
typedef void (*engine_durable_cb)(void *data, uint64_t seq);

/*
 * The slot of a key, for the slot index (engine_slot_count,
 * engine_fold_slots): `key`/`klen` are the key's bytes (binary-safe,
 * 1..max_key_len, a view valid during the call).  Must return
 * 0..n_slots-1 (a larger value is taken modulo n_slots), must be a pure
 * function of the key's bytes (the same answer in every process and
 * after a restart: a persisted fold cursor relies on it), must not call
 * into the engine, and is called on the owner thread and, at open and
 * engine_recover, on the thread opening the engine.  The server passes
 * slot_of_key (cluster/slot.h); storage never includes cluster headers.
 */
typedef uint32_t (*engine_slot_fn)(const void *key, size_t klen);

struct engine_opts
{
    const char *dir;                 /* data directory (created 0700) */
    enum engine_sync_mode sync_mode; /* default ENGINE_SYNC_EVERY */
    uint32_t sync_interval_ms;       /* for ENGINE_SYNC_EVERY; > 0 */
    uint64_t max_file_size;          /* bytes; active file rolls over */
    double merge_dead_ratio;         /* 0..1: merge files above this */
    uint64_t merge_min_dead_bytes;   /* skip merges reclaiming less */
    size_t max_key_len;              /* bytes, 1..; default 64 KiB */
    uint64_t max_value_len;          /* bytes; default 512 MiB */
    bool repair;         /* skip bad mid-file records instead of failing */
    bool merge_disabled; /* no automatic merges (tests, benchmarks) */
    engine_durable_cb durable_cb; /* may be NULL */
    void *durable_data;           /* passed to durable_cb */
    /* The environment (borrowed; each must outlive the engine).  NULL
     * keeps the defaults: see "Threads", "Clocks" and "Files" above. */
    struct rk_vfs *vfs;                /* file operations; NULL = POSIX */
    struct rk_env *env;                /* clocks, seed; NULL = the OS's */
    struct rk_executor *sync_executor; /* NULL = the engine's sync thread */
    struct rk_executor *bg_executor;   /* NULL = the engine's worker */
    /* The slot index (engine_slot_count, engine_fold_slots): NULL keeps
     * none, and the keydir costs what it did before (docs/storage-
     * format.md, "Slot index"). */
    engine_slot_fn slot_fn; /* key -> 0..n_slots-1, or NULL */
    uint32_t n_slots;       /* 1..ENGINE_MAX_SLOTS; default 16384 */
};

/* Fills `o` with the defaults above (dir NULL: caller must set it). */
void engine_opts_init(struct engine_opts *o);

/*
 * Parses "always", "none", "every:<ms>" (1..86400000) or "everysec"
 * into mode/interval.  RK_OK or RK_EINVAL.
 */
int engine_parse_sync(const char *s,
                      enum engine_sync_mode *mode,
                      uint32_t *interval_ms);

/*
 * Metadata of one live record, as kept in the keydir and stored in the
 * record (docs/storage-format.md).  timestamp, flags and type are the
 * caller's and opaque to the engines: stored by put and returned by get,
 * scan and foreach as given (the cluster's meaning: cluster/replica.h and
 * cluster/objtype.h).  The one exception is ENGINE_FLAG_V1 below.
 */
struct engine_meta
{
    uint64_t timestamp;    /* caller-supplied (HLC), opaque, all 64 bits */
    uint64_t expire_at_ms; /* absolute Unix ms; 0 = never */
    uint64_t value_len;    /* bytes */
    uint8_t flags;         /* caller's record flags, opaque (ENGINE_FLAG_V1) */
    uint8_t type;          /* caller's record type, opaque */
};

/*
 * Set in engine_meta.flags by bitcask on a record written by a format-1
 * binary (before records had flags and type: such a caller may have kept
 * its flags in the timestamp's high bits; the record's type is 0 and its
 * other flag bits are 0).  The engine keeps it when merge rewrites the
 * record in the current format, and stores it like any flag when a caller
 * puts it, so a record copied with its meta is read the same way.  New
 * callers never set it.
 */
#define ENGINE_FLAG_V1 0x80

struct engine_stats
{
    uint64_t live_keys;     /* keys in the keydir (incl. not-yet-reaped
                               expired ones) */
    uint64_t live_bytes;    /* bytes of live records on disk/in memory */
    uint64_t dead_bytes;    /* bytes of superseded records/tombstones */
    uint64_t files;         /* data files (1 for memory) */
    uint64_t merges_done;   /* completed merges since open */
    uint64_t merge_running; /* 1 while a merge is in progress */
    uint64_t keydir_bytes;  /* bytes the in-memory index uses */
    uint64_t writes;        /* puts + deletes since open */
    uint64_t syncs;         /* fdatasync calls since open */
    uint64_t sync_errors;   /* failed syncs/writes (engine read-only) */
    uint64_t recovered_truncated_bytes; /* torn tail cut at open */
    uint64_t recovered_skipped_records; /* bad records skipped (repair) */
    uint64_t hint_fallbacks; /* hint files ignored, data file scanned */
    uint64_t last_sync_us;   /* duration of the last fdatasync */
    uint64_t sync_us_total;  /* durations of all fdatasyncs, summed */
    bool read_only;          /* sticky error state */
    int error; /* while read_only: the error that caused it (RK_ENOSPC:
                  a full disk; engine_recover), else RK_OK */
    uint64_t recoveries; /* engine_recover calls that left the read-only
                            state since open (writes may have been lost) */
};

struct engine; /* opaque */

/*
 * Opens engine `kind` ("bitcask" or "memory") with `opts` (borrowed; the
 * engine copies what it keeps).  On success *out owns the engine (close
 * with engine_close).  On error *out is untouched and a one-line reason is
 * written into errbuf[errlen] (may name a file and offset).
 * Errors: RK_EINVAL (unknown kind, bad options), RK_ELOCKED (another
 * process holds the directory), RK_ECORRUPT (bad record in the middle of a
 * file and !opts.repair), RK_EVERSION (a file of a format version this
 * build does not read: errbuf names the file, the version and what to do),
 * RK_EIO, RK_ENOMEM.  Bitcask recovery: truncates a torn/corrupt tail of the
 * last file and logs how many bytes; reads hint files where valid. Complexity:
 * O(keys) (hint files) or O(data bytes) (scan).
 */
int engine_open(const char *kind,
                const struct engine_opts *opts,
                struct engine **out,
                char *errbuf,
                size_t errlen);

/*
 * Syncs, stops background work and frees the engine.  NULL is a no-op.
 * A running merge is abandoned safely (its outputs removed, inputs kept);
 * queued hint files are written.  With executors, a job not yet started
 * is withdrawn (cancel) and its work done here; a running one is waited
 * for; none of the engine's jobs runs after close returns ("Threads").
 * Returns RK_OK, the error of the final sync (RK_EIO), or RK_EREADONLY if
 * the engine had failed; the engine is freed in every case.  Thread:
 * owner (never from durable_cb).  Blocks on I/O.
 */
int engine_close(struct engine *e);

/* Name of the engine kind ("bitcask"/"memory"); static string. */
const char *engine_kind(const struct engine *e);

/*
 * Reads `key`: appends the value to `val` (may be NULL to fetch metadata
 * only: then O(1) from the key directory, the record is neither read nor
 * checked) and fills *meta (may be NULL).  Expired records are returned
 * like any other (the caller checks meta->expire_at_ms).
 * Errors: RK_ENOTFOUND, RK_ECORRUPT (checksum failed: never returns the
 * bad bytes), RK_EIO, RK_ENOMEM.  Complexity: O(1) + O(value).
 */
int engine_get(struct engine *e,
               const void *key,
               size_t klen,
               struct rk_buf *val,
               struct engine_meta *meta);

/*
 * Stores key -> value with meta (timestamp, expire_at_ms, flags, type;
 * value_len is ignored) replacing any previous value.  *seq (may be NULL)
 * receives the write's sequence number for durability tracking. Errors:
 * RK_ETOOBIG (key or value over the limits; nothing written), RK_EINVAL (empty
 * key), RK_EREADONLY, RK_EIO, RK_ENOSPC, RK_ENOMEM.
 */
int engine_put(struct engine *e,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               const struct engine_meta *meta,
               uint64_t *seq);

/*
 * Deletes `key` by writing a tombstone with `timestamp`.
 * Errors: RK_ENOTFOUND (absent: nothing written, *seq untouched),
 * RK_EREADONLY, RK_EIO, RK_ENOSPC, RK_ENOMEM.
 */
int engine_delete(struct engine *e,
                  const void *key,
                  size_t klen,
                  uint64_t timestamp,
                  uint64_t *seq);

/*
 * Called for each key by engine_scan/engine_foreach.  `key` is a view
 * valid only during the call.  Return true to continue, false to stop.
 * The callback must not modify the engine.
 */
typedef bool (*engine_key_cb)(void *data,
                              const void *key,
                              size_t klen,
                              const struct engine_meta *meta);

/*
 * Cursor iteration over live keys with Redis SCAN's guarantee: a key
 * present for the whole iteration is returned at least once, even if the
 * keydir grows or shrinks between calls (reverse-binary cursor over a
 * power-of-two table; Redis dict.c dictScan).  Start with cursor 0; visits
 * about `count` keys and stores the next cursor in *next (0 = done).
 * Complexity: O(count) amortised.
 */
int engine_scan(struct engine *e,
                uint64_t cursor,
                size_t count,
                engine_key_cb cb,
                void *data,
                uint64_t *next);

/* Visits every live key once (no modification during the walk). O(keys). */
int engine_foreach(struct engine *e, engine_key_cb cb, void *data);

/*
 * The slot index.  With opts.slot_fn set, the keydir keeps every live key
 * (every key engine_scan would visit, expired ones included, tombstones
 * never) in a small hash table of its slot, so that "the keys of slot s"
 * or "of a partition" (a contiguous slot range) costs O(keys there), not
 * O(all keys).  Every path that changes the keydir maintains it: put,
 * delete, clear, recovery from data and hint files, merge (its dropped
 * expired keys), engine_recover.  Keys of any reserved prefix are
 * ordinary keys here, indexed by whatever slot_fn says.
 */

/* Cursor of engine_fold_slots: where a fold starts, and what it returns
 * once the range is done (never a position). */
#define ENGINE_FOLD_START 0
#define ENGINE_FOLD_DONE  UINT64_MAX

/*
 * Live keys in `slot` (0..n_slots-1) into *n, expired ones not yet reaped
 * included (as engine_stats.live_keys counts them).
 * Errors: RK_EINVAL (no slot index: opts.slot_fn was NULL; or slot out of
 * range), *n untouched.  Thread: owner.  O(1).
 */
int engine_slot_count(struct engine *e, uint32_t slot, uint64_t *n);

/*
 * Live keys that carry an expiry (engine_meta.expire_at_ms != 0), expired
 * ones not yet deleted included: 0 means no key can ever expire, so an
 * active expiry cycle has nothing to look for.  Kept by the keydir on
 * every put and delete.  Thread: owner.  O(1).
 */
uint64_t engine_expiring_keys(struct engine *e);

/*
 * Resumable fold over the live keys of slots first_slot..last_slot
 * (inclusive; one slot: first == last), in batches.  Start with `cursor`
 * ENGINE_FOLD_START; visits about `count` keys (>= 1; a batch ends at a
 * bucket boundary so it may exceed count by a bucket's few keys), calling
 * cb with each key and its meta (as engine_scan; expired keys are visited,
 * the caller decides what expired means; tombstones never are), and
 * stores in *next the cursor to pass next time, or ENGINE_FOLD_DONE when
 * every slot of the range has been folded.  A cursor is 64 bits the caller
 * may persist (docs/storage-format.md, "Slot index": the slot in bits
 * 32..47, a position in it below).  If cb returns false the fold stops and
 * *next resumes at the bucket being visited (its keys visited so far come
 * again).
 *
 * Guarantee: a fold resumed from the cursors it returned visits every key
 * that was present, in the range, for the whole fold at least once, in
 * spite of any puts, deletes, merges, clears between batches, and of the
 * engine being closed (even killed) and reopened between batches, as long
 * as slot_fn is the same.  A key may be visited more than once (after a
 * shrink of its slot's table, a reopen, or a stop by cb); a key added or
 * deleted during the fold may or may not be.  How: each slot's keys sit
 * in a hash table of its own over a fixed-seed hash of the key (the same
 * in every process), and the position is Redis's reverse-binary SCAN
 * cursor over it (dict.c dictScan), so a position means "every key whose
 * reversed hash sorts before it", whatever the table's size now, after a
 * resize or after a rebuild at reopen.
 *
 * Errors: RK_EINVAL (no slot index, last_slot >= n_slots, first_slot >
 * last_slot, count 0, or a cursor that is no position: never one this
 * engine returned), *next untouched.  `key` given to cb is a view valid
 * during the call; cb must not modify the engine (it may engine_get).
 * Thread: owner.  Complexity: O(count) amortised per call, plus O(1) per
 * empty slot skipped.
 */
int engine_fold_slots(struct engine *e,
                      uint32_t first_slot,
                      uint32_t last_slot,
                      uint64_t cursor,
                      size_t count,
                      engine_key_cb cb,
                      void *data,
                      uint64_t *next);

/*
 * Called for each key by engine_fold_slots_values: as engine_key_cb, plus
 * the value `val`/`vlen` (meta->value_len bytes), a view valid only during
 * the call.
 */
typedef bool (*engine_kv_cb)(void *data,
                             const void *key,
                             size_t klen,
                             const void *val,
                             size_t vlen,
                             const struct engine_meta *meta);

/*
 * engine_fold_slots that also reads each key's value (handoff ships
 * values): the same cursor and guarantee.  Errors: as engine_fold_slots,
 * and a value that cannot be read, RK_ECORRUPT, RK_EIO or RK_ENOMEM, with
 * *next untouched (a retry from the same cursor visits the batch's keys
 * again).  Thread: owner.  Complexity: as engine_fold_slots, plus one
 * record read (O(value)) per key.
 */
int engine_fold_slots_values(struct engine *e,
                             uint32_t first_slot,
                             uint32_t last_slot,
                             uint64_t cursor,
                             size_t count,
                             engine_kv_cb cb,
                             void *data,
                             uint64_t *next);

/*
 * Deletes every key (FLUSHALL), durably under the sync policy; *seq as for
 * put.  Errors: as engine_put.
 */
int engine_clear(struct engine *e, uint64_t *seq);

/*
 * Makes every write so far durable, blocking the caller (shutdown, tests).
 * Errors: RK_EIO (engine becomes read-only), RK_EREADONLY.
 */
int engine_sync(struct engine *e);

/*
 * Highest sequence number known durable (on disk: fdatasync'd).  Thread:
 * any (atomic read).
 */
uint64_t engine_durable_seq(struct engine *e);

/*
 * Highest sequence number a caller may acknowledge under the sync policy
 * (issue 12: what each policy promises):
 *   always       engine_durable_seq: on disk; survives an OS crash.
 *   every, none  handed to the OS (write(2) done): survives a crash of
 *                the process, not of the OS; `every` fdatasyncs within
 *                sync_interval_ms after, `none` at rollover and close.
 * Redis's appendfsync everysec makes the same promise (its AOF buffer is
 * written before replies leave), and Cassandra's commitlog_sync periodic.
 * Writes reach the OS when the write buffer fills, on engine_handoff,
 * and on every sync round.  Memory engine: every write at once.
 * Thread: any (atomic read).
 */
uint64_t engine_acked_seq(struct engine *e);

/*
 * Whether the engine refuses writes after a failed write or fdatasync
 * (engine_stats().read_only), as one atomic read: cheap enough to ask per
 * event.  Thread: any.
 */
bool engine_read_only(struct engine *e);

/* engine_stats().recoveries as one atomic read (asked per write by the
 * cluster node).  Thread: any. */
uint64_t engine_recoveries(struct engine *e);

/*
 * Hands every buffered write to the OS now (one write(2) of the buffer),
 * so that engine_acked_seq covers them under sync=every and none: call it
 * once per event-loop pass before the replies of that pass leave (group
 * hand-off, as Redis writes its AOF buffer in beforeSleep).  Under
 * sync=always a no-op (the sync thread or job writes and fdatasyncs).
 * Thread: owner; may block for one write(2).  Errors: RK_EIO (the write
 * failed: the engine is read-only from then on), RK_EREADONLY.
 */
int engine_handoff(struct engine *e);

/*
 * Periodic housekeeping on the owner thread (call every ~100 ms): applies
 * the result of a finished background merge to the keydir, starts a merge
 * when thresholds pass, surfaces sync errors (RK_EREADONLY, once), and
 * with a sync executor submits the sync job when it is due.  Never blocks
 * on I/O.  Errors: RK_EREADONLY, RK_ENOMEM, RK_EIO, or the executor's
 * submit error (retried at the next tick).
 */
int engine_tick(struct engine *e);

/*
 * Runs a merge of every immutable file with dead bytes now (tests, the
 * operator): if `wait`, blocks until it is applied.  RK_EBUSY if one runs
 * and !wait.  Memory engine: no-op.
 */
int engine_merge(struct engine *e, bool wait);

/* Fills *st.  O(1). */
void engine_stats(struct engine *e, struct engine_stats *st);

/*
 * Leaves the read-only state of a full disk without a restart (issue 12
 * item 3): call when space has returned.  Bitcask stops its background
 * work, fdatasyncs the active file (what was handed to the OS before the
 * failure), verifies every file again as engine_open does (a torn tail
 * left by the failed write is cut; the keydir is rebuilt from the files,
 * so writes lost with the failure are gone and what they replaced is
 * back), starts a new active file (the old one is never appended to
 * again), and restarts its background work.  Sequence numbers go on; every
 * one handed out before counts as acknowledged and durable afterwards,
 * so the caller must first refuse whatever waits for a write made before
 * the failure (those writes were never acknowledged; some are lost), and
 * whatever derived state from its own earlier writes must not trust it:
 * stats.recoveries counts the recoveries (the cluster node starts a new
 * dvv actor after one, as after a restart).
 * RK_OK when the engine was not read-only (and for the memory engine).
 * Errors (the engine stays read-only, as it was; a reason in errbuf):
 * RK_EREADONLY (the failure was not a full disk: an I/O error leaves the
 * disk state uncertain; only a restart recovers), RK_ENOSPC/RK_EIO (the
 * disk is still full or failed again), RK_ECORRUPT, RK_ENOMEM.
 * Thread: owner; blocks on I/O for a scan of the data files (without a
 * valid hint file, O(data bytes); hint files are written at rollover).
 */
int engine_recover(struct engine *e, char *errbuf, size_t errlen);

#endif /* RINGKV_STORAGE_ENGINE_H */
