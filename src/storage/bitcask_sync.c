/*
 * bitcask_sync.c - the write path of the bitcask engine: the user-space
 * write buffer of the active file, rollover, and the sync thread (or the
 * sync executor's job) that group-commits writes (DESIGN.md section 3,
 * sync policies; engine.h, "Threads").
 *
 * Records are appended by the owner into `cur` (1 MiB).  A "flusher" (the
 * owner when cur is full, at rollover or sync; the sync thread or job on
 * each round) swaps cur with `flight` and pwrites flight outside the lock;
 * `flight_busy` makes flushers take turns, so file order is kept.
 *
 *   owner put --append--> cur --swap (flusher)--> flight --pwrite--> OS
 *        sync round (sync_round_locked): flush, fdatasync,
 *                     synced_seq = target, durable_seq = target,
 *                     opts.durable_cb(target)
 *
 * Who runs sync rounds:
 *   sync thread (opts.sync_executor NULL): sync_main, woken by writes
 *     (always) or every sync_interval_ms (every).
 *   sync job (opts.sync_executor set): sync_job, submitted by the owner
 *     (bc_append under sync=always, bc_sync_tick) when none is queued or
 *     running.  States of b->sync_job, under wb_mu:
 *
 *       IDLE --[sync_job_claim_locked + submit]--> QUEUED
 *       QUEUED --[sync_job starts]--> RUNNING --[queue caught up]--> IDLE
 *       QUEUED --[bc_job_settle: cancel OK, or submit failed]--> IDLE
 *
 * Invariants (under wb_mu):
 *  1. cur_off + cur.len == active->size; data below written_end is in the
 *     OS (page cache) and readable through the active file's mapping.
 *  2. A seq is published durable only after an fdatasync that started
 *     after every record with a smaller-or-equal seq was written; a
 *     failed write or fdatasync sets `failed` (sticky, RK_EREADONLY) and
 *     nothing after it is ever published.
 *  3. The owner changes wb_fd (rollover) only after writing everything of
 *     the old file.  The old file's fdatasync is left to the next sync
 *     round (which syncs it before the active file, so invariant 2
 *     holds), to the background job that writes its hint file (before
 *     the hint: a hint never names records that are not durable), or to
 *     an explicit sync, whichever comes first (bc_sync_old_locked): a
 *     rollover never holds the owner's thread for an fdatasync of up to
 *     max_file_size dirty bytes (measured: ~150-300 ms stalls of the
 *     event loop during 500 MiB writes, issue 12 item 4).
 *  4. At most one sync job is QUEUED or RUNNING; after bc_sync_thread_stop
 *     none is, and none is submitted again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/internal.h"

void bc_publish_durable(struct bitcask *b, uint64_t seq)
{
    uint64_t cur = __atomic_load_n(&b->durable_seq, __ATOMIC_ACQUIRE);
    while (cur < seq &&
           !__atomic_compare_exchange_n(&b->durable_seq, &cur, seq, false,
                                        __ATOMIC_RELEASE, __ATOMIC_ACQUIRE)) {
    }
}

static void sync_job(void *data);

/*
 * With wb_mu held: true when the owner should submit a sync job now (none
 * is queued or running, writes are pending, the engine is neither stopping
 * nor failed); the job is then marked QUEUED.  Thread: owner.
 */
static bool sync_job_claim_locked(struct bitcask *b)
{
    if (b->sync_job != BC_JOB_IDLE || b->stop || b->failed ||
        b->opts.sync_mode == ENGINE_SYNC_NONE ||
        (b->last_seq == b->synced_seq && b->old_fd < 0)) {
        return false;
    }
    b->sync_job = BC_JOB_QUEUED;
    return true;
}

/*
 * After a claim, without wb_mu: submits the job.  If the executor refuses
 * it (RK_ENOMEM, RK_ECLOSED) the job goes back to IDLE and a later write
 * or bc_sync_tick tries again.  Thread: owner.
 */
static int sync_job_post(struct bitcask *b)
{
    int rc = b->sync_ex->submit(b->sync_ex, sync_job, b);
    if (rc != RK_OK) {
        pthread_mutex_lock(&b->wb_mu);
        b->sync_job = BC_JOB_IDLE;
        pthread_cond_broadcast(&b->wb_cond);
        pthread_mutex_unlock(&b->wb_mu);
    }
    return rc;
}

/* With wb_mu held: every seq <= seq is in the OS (engine_acked_seq). */
static void note_written_locked(struct bitcask *b, uint64_t seq)
{
    if (seq > __atomic_load_n(&b->written_seq, __ATOMIC_RELAXED)) {
        __atomic_store_n(&b->written_seq, seq, __ATOMIC_RELEASE);
    }
}

/* Writes flight (or a large record) with wb_mu held on entry and exit. */
static int flush_locked(struct bitcask *b)
{
    while (b->flight_busy) {
        pthread_cond_wait(&b->wb_cond, &b->wb_mu);
    }
    if (b->failed) {
        return RK_EREADONLY;
    }
    if (b->cur.len == 0) {
        return RK_OK;
    }
    struct bc_wbuf t = b->flight;
    b->flight = b->cur;
    b->cur = t;
    b->cur.len = 0;
    b->flight_seq = b->last_seq; /* cur held every record up to it */
    b->flight_off = b->cur_off;
    b->cur_off += b->flight.len;
    b->flight_busy = true;
    int fd = b->wb_fd;
    pthread_mutex_unlock(&b->wb_mu);
    int rc =
        bc_pwrite_all(b->vfs, fd, b->flight.base, b->flight.len, b->flight_off);
    pthread_mutex_lock(&b->wb_mu);
    b->flight_busy = false;
    if (rc == RK_OK) {
        __atomic_store_n(&b->written_end, b->flight_off + b->flight.len,
                         __ATOMIC_RELEASE);
        note_written_locked(b, b->flight_seq);
        b->flight.len = 0;
    } else if (!b->failed) {
        /* Keep flight's bytes: reads still find them there. */
        __atomic_store_n(&b->failed, true, __ATOMIC_RELAXED);
        b->fail_rc = rc;
        b->sync_errors++;
        rk_log(RK_LOG_ERROR, "bitcask_write_failed",
               "dir=%s error=\"%s\" state=read_only", b->dir, rk_strerror(rc));
    }
    pthread_cond_broadcast(&b->wb_cond);
    return rc == RK_OK ? RK_OK : RK_EIO;
}

uint64_t bc_acked_seq(struct bitcask *b)
{
    return b->opts.sync_mode == ENGINE_SYNC_ALWAYS
               ? __atomic_load_n(&b->durable_seq, __ATOMIC_ACQUIRE)
               : __atomic_load_n(&b->written_seq, __ATOMIC_ACQUIRE);
}

int bc_handoff(struct bitcask *b)
{
    if (b->opts.sync_mode == ENGINE_SYNC_ALWAYS ||
        __atomic_load_n(&b->written_seq, __ATOMIC_ACQUIRE) == b->last_seq) {
        return RK_OK; /* last_seq: only the owner writes it */
    }
    return bc_flush(b);
}

int bc_flush(struct bitcask *b)
{
    pthread_mutex_lock(&b->wb_mu);
    int rc = flush_locked(b);
    while (rc == RK_OK && b->flight_busy) {
        pthread_cond_wait(&b->wb_cond, &b->wb_mu);
    }
    pthread_mutex_unlock(&b->wb_mu);
    return rc;
}

/*
 * Writes a large record straight to the file after everything buffered
 * before it (no copy through the write buffer).  wb_mu held on entry and
 * exit; it is dropped around the write while flight_busy keeps other
 * flushers out.
 */
static int append_direct_locked(struct bitcask *b,
                                unsigned char *hdr,
                                const void *key,
                                size_t klen,
                                const void *val,
                                size_t vlen)
{
    size_t len = BC_REC_HDR + klen + vlen;
    bc_rec_seal(hdr, key, klen, val, vlen);
    int rc = flush_locked(b);
    while (rc == RK_OK && b->flight_busy) {
        pthread_cond_wait(&b->wb_cond, &b->wb_mu);
    }
    if (rc != RK_OK) {
        return rc;
    }
    uint64_t off = b->cur_off;
    b->flight_busy = true;
    int fd = b->wb_fd;
    pthread_mutex_unlock(&b->wb_mu);
    const struct iovec iov[3] = {
        {(void *)hdr, BC_REC_HDR},
        {(void *)key, klen},
        {(void *)val, vlen},
    };
    size_t done = 0;
    while (rc == RK_OK && done < len) {
        /* The iovec past `done` (a short write is retried). */
        struct iovec v[3];
        int n = 0;
        size_t skip = done;
        for (int i = 0; i < 3; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            v[n].iov_base = (char *)iov[i].iov_base + skip;
            v[n].iov_len = iov[i].iov_len - skip;
            skip = 0;
            n++;
        }
        ssize_t w = b->vfs->pwritev
                        ? b->vfs->pwritev(b->vfs, fd, v, n, off + done)
                        : b->vfs->pwrite(b->vfs, fd, v[0].iov_base,
                                         v[0].iov_len, off + done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = w < 0 ? rk_from_errno(errno) : RK_EIO;
            break;
        }
        done += (size_t)w;
    }
    pthread_mutex_lock(&b->wb_mu);
    b->flight_busy = false;
    if (rc == RK_OK) {
        b->cur_off = off + len;
        __atomic_store_n(&b->written_end, off + len, __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&b->failed, true, __ATOMIC_RELAXED);
        b->fail_rc = rc;
        b->sync_errors++;
        rc = RK_EIO;
        rk_log(RK_LOG_ERROR, "bitcask_write_failed", "dir=%s state=read_only",
               b->dir);
    }
    pthread_cond_broadcast(&b->wb_cond);
    return rc;
}

int bc_append(struct bitcask *b,
              unsigned char *hdr,
              const void *key,
              size_t klen,
              const void *val,
              size_t vlen,
              uint64_t *seq)
{
    size_t len = BC_REC_HDR + klen + vlen;
    pthread_mutex_lock(&b->wb_mu);
    if (b->failed) {
        pthread_mutex_unlock(&b->wb_mu);
        return RK_EREADONLY;
    }
    int rc = RK_OK;
    if (len > BC_WBUF_CAP / 2) {
        rc = append_direct_locked(b, hdr, key, klen, val, vlen);
    } else {
        if (b->cur.len + len > BC_WBUF_CAP) {
            rc = flush_locked(b);
        }
        if (rc == RK_OK) {
            unsigned char *p = b->cur.base + b->cur.len;
            memcpy(p, hdr, BC_REC_HDR);
            if (klen) {
                memcpy(p + BC_REC_HDR, key, klen);
            }
            if (vlen) {
                memcpy(p + BC_REC_HDR + klen, val, vlen);
            }
            rk_put_le32(p, bc_checksum(p + 4, len - 4));
            b->cur.len += len;
        }
    }
    bool submit = false;
    if (rc == RK_OK) {
        b->last_seq = ++b->next_seq;
        *seq = b->last_seq;
        if (len > BC_WBUF_CAP / 2) {
            /* written straight to the file after everything before it */
            note_written_locked(b, b->last_seq);
        }
        if (b->opts.sync_mode == ENGINE_SYNC_ALWAYS) {
            pthread_cond_broadcast(&b->wb_cond);
            submit = b->sync_ex != NULL && sync_job_claim_locked(b);
        }
    }
    pthread_mutex_unlock(&b->wb_mu);
    if (submit) {
        /* The write stands even if the executor refuses the job: it is
         * buffered, and bc_sync_tick submits again. */
        (void)sync_job_post(b);
    }
    return rc;
}

/*
 * Returns a view of the record bytes [off, off+len) of file f: from the
 * mapping when the bytes are in the OS, else copied from the write buffer
 * into b->scratch.  Valid until the next call on the owner thread.
 */
int bc_read_record(struct bitcask *b,
                   struct bc_file *f,
                   uint64_t off,
                   size_t len,
                   const unsigned char **out)
{
    if (f != b->active ||
        off + len <= __atomic_load_n(&b->written_end, __ATOMIC_ACQUIRE)) {
        if (f->map == NULL || off + len > f->map_len || off + len > f->size) {
            return RK_ECORRUPT;
        }
        *out = f->map + off;
        return RK_OK;
    }
    int rc = RK_EIO;
    pthread_mutex_lock(&b->wb_mu);
    const unsigned char *src = NULL;
    if (off >= b->cur_off && off + len <= b->cur_off + b->cur.len) {
        src = b->cur.base + (off - b->cur_off);
    } else if (b->flight.len > 0 && off >= b->flight_off &&
               off + len <= b->flight_off + b->flight.len) {
        src = b->flight.base + (off - b->flight_off);
    } else if (off + len <= b->written_end) {
        src = f->map + off; /* written meanwhile */
    }
    if (src) {
        rk_buf_clear(&b->scratch);
        rc = rk_buf_append(&b->scratch, src, len);
    }
    pthread_mutex_unlock(&b->wb_mu);
    if (rc == RK_OK) {
        *out = (const unsigned char *)b->scratch.base;
    }
    return rc;
}

/* fdatasyncs fd (without wb_mu held), timing it: returns the call's
 * result, *err its errno, *dt_us its duration. */
static int timed_fdatasync(struct bitcask *b, int fd, int *err, uint64_t *dt_us)
{
    uint64_t t0 = storage__now_us(b->env);
    int r = b->vfs->fdatasync(b->vfs, fd);
    *err = errno;
    *dt_us = storage__now_us(b->env) - t0;
    return r;
}

/* Records one fdatasync's outcome (wb_mu held): counters and, on a
 * failure, the sticky read-only state.  Returns whether the engine is
 * still healthy. */
static bool note_sync_locked(struct bitcask *b, int r, int err, uint64_t dt_us)
{
    b->syncs++;
    b->last_sync_us = dt_us;
    b->sync_us_total += dt_us;
    if (r != 0 && !b->failed) {
        __atomic_store_n(&b->failed, true, __ATOMIC_RELAXED);
        b->fail_rc = RK_EIO;
        b->sync_errors++;
        rk_log(RK_LOG_ERROR, "bitcask_fsync_failed",
               "dir=%s errno=%d state=read_only", b->dir, err);
    }
    return !b->failed;
}

/*
 * With wb_mu held on entry and exit: fdatasyncs fd with wb_mu dropped
 * around the call, marking it in *mark (may be NULL) meanwhile so that a
 * rollover or bc_sync_old_locked does not close it, and records the
 * outcome (note_sync_locked).  Returns whether the engine is healthy.
 */
static bool sync_fd_locked(struct bitcask *b, int fd, int *mark)
{
    if (mark) {
        *mark = fd;
    }
    pthread_mutex_unlock(&b->wb_mu);
    int err;
    uint64_t dt;
    int r = timed_fdatasync(b, fd, &err, &dt);
    pthread_mutex_lock(&b->wb_mu);
    if (mark) {
        *mark = -1;
    }
    return note_sync_locked(b, r, err, dt);
}

bool bc_sync_old_locked(struct bitcask *b)
{
    while (b->old_syncing) {
        pthread_cond_wait(&b->wb_cond, &b->wb_mu);
    }
    if (b->old_fd < 0) {
        return !b->failed;
    }
    int fd = b->old_fd;
    b->old_syncing = true;
    bool ok = sync_fd_locked(b, fd, NULL);
    /* a round that started before the rollover may still be syncing it
     * as the active file */
    while (b->syncing_fd == fd || b->bg_syncing_fd == fd) {
        pthread_cond_wait(&b->wb_cond, &b->wb_mu);
    }
    b->vfs->close(b->vfs, fd);
    b->old_fd = -1;
    b->old_file = NULL;
    b->old_syncing = false;
    pthread_cond_broadcast(&b->wb_cond);
    return ok;
}

/* Flushes and fdatasyncs the active file; publishes the seq (owner). */
int bc_sync_now(struct bitcask *b)
{
    pthread_mutex_lock(&b->wb_mu);
    uint64_t target = b->last_seq;
    int rc = flush_locked(b);
    while (rc == RK_OK && b->flight_busy) {
        pthread_cond_wait(&b->wb_cond, &b->wb_mu);
    }
    if (rc == RK_OK && !bc_sync_old_locked(b)) {
        rc = RK_EIO;
    }
    int fd = b->wb_fd;
    if (rc != RK_OK || b->failed) {
        pthread_mutex_unlock(&b->wb_mu);
        return RK_EREADONLY == rc ? rc : (b->failed ? RK_EREADONLY : rc);
    }
    bool ok = sync_fd_locked(b, fd, NULL);
    pthread_mutex_unlock(&b->wb_mu);
    if (!ok) {
        return RK_EIO;
    }
    bc_publish_durable(b, target);
    return RK_OK;
}

/*
 * bc_sync_now for the background worker: the descriptor it fdatasyncs is
 * marked (bg_syncing_fd) so a rollover on the owner does not close it
 * meanwhile.  Thread: worker.
 */
int bc_sync_from_worker(struct bitcask *b)
{
    pthread_mutex_lock(&b->wb_mu);
    uint64_t target = b->last_seq;
    int rc = flush_locked(b);
    while (rc == RK_OK && b->flight_busy) {
        pthread_cond_wait(&b->wb_cond, &b->wb_mu);
    }
    if (rc != RK_OK || b->failed || !bc_sync_old_locked(b)) {
        pthread_mutex_unlock(&b->wb_mu);
        return RK_EIO;
    }
    bool ok = sync_fd_locked(b, b->wb_fd, &b->bg_syncing_fd);
    pthread_cond_broadcast(&b->wb_cond);
    pthread_mutex_unlock(&b->wb_mu);
    if (!ok) {
        return RK_EIO;
    }
    bc_publish_durable(b, target);
    return RK_OK;
}

int bc_create_file(struct bitcask *b,
                   uint64_t order,
                   size_t window,
                   struct bc_file **out)
{
    char path[4096];
    bc_path(b, order, "data", path, sizeof(path));
    struct bc_file *f = rk_calloc(1, sizeof(*f));
    if (f == NULL) {
        return RK_ENOMEM;
    }
    f->order = order;
    f->version = BC_VERSION;
    f->fd = b->vfs->open(b->vfs, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f->fd < 0) {
        int rc = rk_from_errno(errno);
        rk_free(f);
        return rc;
    }
    unsigned char hdr[BC_FILE_HDR];
    bc_file_hdr_encode(hdr, BC_KIND_DATA, order);
    int rc = bc_pwrite_all(b->vfs, f->fd, hdr, sizeof(hdr), 0);
    if (rc == RK_OK && b->opts.sync_mode != ENGINE_SYNC_NONE) {
        if (b->vfs->fdatasync(b->vfs, f->fd) != 0) {
            rc = RK_EIO;
        } else {
            rc = bc_fsync_dir(b);
        }
    }
    f->size = BC_FILE_HDR;
    if (rc == RK_OK) {
        rc = bc_map(b, f, window);
    }
    if (rc == RK_OK) {
        rc = bc_slot_add(b, f);
    }
    if (rc != RK_OK) {
        b->vfs->close(b->vfs, f->fd);
        bc_unmap(b, f);
        b->vfs->unlink(b->vfs, path);
        rk_free(f);
        return rc;
    }
    *out = f;
    return RK_OK;
}

int bc_rollover(struct bitcask *b, size_t need)
{
    struct bc_file *old = b->active;
    int rc = bc_flush(b);
    if (rc != RK_OK) {
        return rc;
    }
    /* Every policy syncs a file as it becomes immutable (engine.h), but
     * not here (invariant 3): only a previous rollover's file still
     * waiting is synced now (rare: two rollovers within one round). */
    pthread_mutex_lock(&b->wb_mu);
    bool ok = bc_sync_old_locked(b);
    pthread_mutex_unlock(&b->wb_mu);
    if (!ok) {
        return RK_EIO;
    }
    /* Next normal order above every file, merge outputs included. */
    uint64_t max = 0;
    for (uint32_t i = 0; i < b->n_slots; i++) {
        if (b->files[i] && b->files[i]->order > max) {
            max = b->files[i]->order;
        }
    }
    uint64_t order = ((max >> BC_ORDER_SHIFT) + 1) << BC_ORDER_SHIFT;
    size_t window = b->opts.max_file_size;
    if (BC_FILE_HDR + need > window) {
        window = BC_FILE_HDR + need;
    }
    struct bc_file *f = NULL;
    rc = bc_create_file(b, order, window, &f);
    if (rc != RK_OK) {
        bc_set_failed(b, rc);
        return rc == RK_ENOSPC ? rc : RK_EIO;
    }
    pthread_mutex_lock(&b->wb_mu);
    b->wb_fd = f->fd;
    b->cur_off = BC_FILE_HDR;
    b->cur.len = 0;
    __atomic_store_n(&b->written_end, BC_FILE_HDR, __ATOMIC_RELEASE);
    b->active = f;
    /* The old file is immutable from now on: reads use its mapping only.
     * Its descriptor goes to whoever fdatasyncs it first, who then closes
     * it (bc_sync_old_locked); the sync thread is woken for it. */
    b->old_fd = old->fd;
    b->old_file = old;
    old->fd = -1;
    pthread_cond_broadcast(&b->wb_cond);
    bool submit = b->sync_ex != NULL && sync_job_claim_locked(b);
    pthread_mutex_unlock(&b->wb_mu);
    if (submit) {
        (void)sync_job_post(b);
    }
    bc_bg_enqueue_hint(b, old);
    return RK_OK;
}

static void deadline_in(struct timespec *ts, uint64_t us)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + (us % 1000000u) * 1000u;
    ts->tv_sec += (time_t)(us / 1000000u + ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

/*
 * Group commit gathering (sync=always): right after a batch completes,
 * the owner is typically issuing a burst of writes for the clients it just
 * acknowledged.  Syncing at the first of them would split the burst over
 * two fdatasyncs, so wait while writes keep arriving, in slices of
 * GATHER_SLICE_US, for at most a quarter of the last fdatasync's duration
 * (so the added latency stays small next to the sync itself).  Skipped
 * when the last batch held one write (a lone writer gains nothing).  The
 * sync thread only: the wait is real time (a condition variable on
 * CLOCK_MONOTONIC), so its budget is measured on the OS clock, not env's.
 */
#define GATHER_SLICE_US 40u

static void gather_locked(struct bitcask *b)
{
    if (b->last_batch <= 1) {
        return; /* a lone writer: nothing to gather, keep latency */
    }
    uint64_t budget = b->last_sync_us / 4;
    if (budget > 2000) {
        budget = 2000;
    }
    uint64_t start = storage__now_us(NULL);
    while (!b->stop && !b->failed && budget >= GATHER_SLICE_US) {
        uint64_t seen = b->last_seq;
        struct timespec ts;
        deadline_in(&ts, GATHER_SLICE_US);
        while (!b->stop && b->last_seq == seen) {
            if (pthread_cond_timedwait(&b->wb_cond, &b->wb_mu, &ts) ==
                ETIMEDOUT) {
                break;
            }
        }
        if (b->last_seq == seen ||
            storage__now_us(NULL) - start + GATHER_SLICE_US > budget) {
            break; /* quiet for a slice, or out of budget */
        }
    }
}

/*
 * One group commit: flushes the buffer, fdatasyncs the active file,
 * advances synced_seq, publishes durable_seq and calls durable_cb.  wb_mu
 * is held on entry and exit and dropped around the fdatasync and the
 * callback.  A failure sets `failed` (sticky) and publishes nothing.
 * Thread: the sync thread or the sync job.
 */
static void sync_round_locked(struct bitcask *b)
{
    uint64_t target = b->last_seq;
    int rc = flush_locked(b);
    while (rc == RK_OK && b->flight_busy) {
        pthread_cond_wait(&b->wb_cond, &b->wb_mu);
    }
    if (rc != RK_OK || b->failed || !bc_sync_old_locked(b)) {
        return;
    }
    bool ok = sync_fd_locked(b, b->wb_fd, &b->syncing_fd);
    if (ok && target > b->synced_seq) {
        b->last_batch = target - b->synced_seq;
        b->synced_seq = target;
    }
    pthread_cond_broadcast(&b->wb_cond);
    pthread_mutex_unlock(&b->wb_mu);
    if (ok) {
        bc_publish_durable(b, target);
        if (b->opts.durable_cb) {
            b->opts.durable_cb(b->opts.durable_data, target);
        }
    }
    pthread_mutex_lock(&b->wb_mu);
}

static void *sync_main(void *arg)
{
    struct bitcask *b = arg;
    bool every = b->opts.sync_mode == ENGINE_SYNC_EVERY;
    uint64_t interval_us = (uint64_t)b->opts.sync_interval_ms * 1000u;
    pthread_mutex_lock(&b->wb_mu);
    while (!b->stop) {
        if (every) {
            struct timespec ts;
            deadline_in(&ts, interval_us);
            while (!b->stop && b->old_fd < 0) {
                if (pthread_cond_timedwait(&b->wb_cond, &b->wb_mu, &ts) ==
                    ETIMEDOUT) {
                    break;
                }
            }
        } else {
            while (!b->stop &&
                   (b->failed ||
                    (b->last_seq == b->synced_seq && b->old_fd < 0))) {
                pthread_cond_wait(&b->wb_cond, &b->wb_mu);
            }
            gather_locked(b);
        }
        if (b->stop) {
            break;
        }
        if (b->failed || (b->last_seq == b->synced_seq && b->old_fd < 0)) {
            continue;
        }
        sync_round_locked(b);
    }
    pthread_mutex_unlock(&b->wb_mu);
    return NULL;
}

/*
 * The sync executor's job: sync rounds until no write is pending
 * (sync=always), or one round (sync=every).  Thread: the executor's (a
 * simulator: inline, between owner calls).
 */
static void sync_job(void *data)
{
    struct bitcask *b = data;
    pthread_mutex_lock(&b->wb_mu);
    b->sync_job = BC_JOB_RUNNING;
    bool again = true;
    while (again && !b->stop && !b->failed &&
           (b->last_seq != b->synced_seq || b->old_fd >= 0)) {
        sync_round_locked(b);
        again = b->opts.sync_mode == ENGINE_SYNC_ALWAYS;
    }
    /* The job's last touch of b: once IDLE, engine_close may free it. */
    b->sync_job = BC_JOB_IDLE;
    pthread_cond_broadcast(&b->wb_cond);
    pthread_mutex_unlock(&b->wb_mu);
}

/*
 * engine_tick's part with a sync executor: submits the sync job when
 * writes wait and none is queued or running (sync=always: a write's own
 * submission was refused, or writes came in while a job was finishing),
 * or when the interval has passed on the engine's clock (sync=every).
 * Returns RK_OK or the executor's submit error.  Thread: owner.
 */
int bc_sync_tick(struct bitcask *b)
{
    if (b->sync_ex == NULL || b->opts.sync_mode == ENGINE_SYNC_NONE) {
        return RK_OK;
    }
    uint64_t now_ms = storage__now_us(b->env) / 1000u;
    bool every = b->opts.sync_mode == ENGINE_SYNC_EVERY;
    if (every && now_ms < b->sync_due_ms) {
        return RK_OK;
    }
    pthread_mutex_lock(&b->wb_mu);
    bool submit = sync_job_claim_locked(b);
    pthread_mutex_unlock(&b->wb_mu);
    int rc = submit ? sync_job_post(b) : RK_OK;
    if (every && rc == RK_OK) {
        b->sync_due_ms = now_ms + b->opts.sync_interval_ms;
    }
    return rc;
}

int bc_sync_thread_start(struct bitcask *b)
{
    if (b->opts.sync_mode == ENGINE_SYNC_NONE) {
        return RK_OK;
    }
    if (b->sync_ex != NULL) {
        /* No thread: bc_append and bc_sync_tick submit jobs. */
        b->sync_due_ms =
            storage__now_us(b->env) / 1000u + b->opts.sync_interval_ms;
        return RK_OK;
    }
    if (pthread_create(&b->sync_thread, NULL, sync_main, b) != 0) {
        return RK_ENOMEM;
    }
    b->sync_started = true;
    return RK_OK;
}

void bc_sync_thread_stop(struct bitcask *b)
{
    if (b->sync_ex != NULL) {
        /* A queued job is withdrawn (the caller has synced), a running one
         * waited for; none is submitted after `stop`. */
        pthread_mutex_lock(&b->wb_mu);
        b->stop = true;
        bc_job_settle(b->sync_ex, sync_job, b, &b->sync_job, &b->wb_mu,
                      &b->wb_cond);
        pthread_mutex_unlock(&b->wb_mu);
        return;
    }
    if (!b->sync_started) {
        return;
    }
    pthread_mutex_lock(&b->wb_mu);
    b->stop = true;
    pthread_cond_broadcast(&b->wb_cond);
    pthread_mutex_unlock(&b->wb_mu);
    pthread_join(b->sync_thread, NULL);
    b->sync_started = false;
}
