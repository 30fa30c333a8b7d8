/*
 * bitcask.c - the "bitcask" engine (DESIGN.md section 3), after Sheehy and
 * Smith, "Bitcask: A Log-Structured Hash Table for Fast Key/Value Data"
 * (Basho, 2010): append-only data files plus an in-memory keydir holding,
 * for every live key, where its newest record is.  This file holds open/
 * close and the data operations; bitcask_sync.c the write buffer and sync
 * thread (or sync jobs), bitcask_recovery.c start-up, bitcask_merge.c hint
 * files and merges.  Formats: internal.h and docs/storage-format.md.  Every
 * file operation goes through b->vfs (vfs.h), every clock read through
 * b->env (engine.h, "Clocks").
 *
 * Invariants:
 *  1. Every keydir entry points at a record that passed its checksum when
 *     it was written or recovered; engine_get verifies it again.
 *  2. Among the files, a higher order means newer records; the active
 *     file has the highest order.
 *  3. Once `failed` is set (a write or fsync failed), every write returns
 *     RK_EREADONLY until the engine is reopened; reads go on.
 *
 * States of the engine (functions in brackets):
 *
 *   [bc_open] --> OPEN --(write/fsync error)--> READ_ONLY
 *                  |  ^                            |
 *      [bc_merge_start] [bc_merge_poll applies]     |
 *                  v  |                            |
 *               MERGING (keydir mutations take kd_mu)
 *                  |                               |
 *                  +----------[bc_close]-----------+--> closed
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/internal.h"

static struct bitcask *to_bc(struct engine *e)
{
    return (struct bitcask *)e;
}

void bc_path(const struct bitcask *b,
             uint64_t order,
             const char *ext,
             char *out,
             size_t outlen)
{
    snprintf(out, outlen, "%s/%016" PRIx64 ".%s", b->dir, order, ext);
}

int bc_slot_add(struct bitcask *b, struct bc_file *f)
{
    for (uint32_t i = 0; i < b->n_slots; i++) {
        if (b->files[i] == NULL) {
            b->files[i] = f;
            f->slot = i;
            return RK_OK;
        }
    }
    uint32_t n = b->n_slots ? b->n_slots * 2 : 16;
    struct bc_file **v = rk_realloc(b->files, n * sizeof(*v));
    if (v == NULL) {
        return RK_ENOMEM;
    }
    memset(v + b->n_slots, 0, (n - b->n_slots) * sizeof(*v));
    b->files = v;
    f->slot = b->n_slots;
    b->files[b->n_slots] = f;
    b->n_slots = n;
    return RK_OK;
}

void bc_file_free(struct bitcask *b, struct bc_file *f)
{
    if (f == NULL) {
        return;
    }
    bc_unmap(b, f);
    if (f->fd >= 0) {
        b->vfs->close(b->vfs, f->fd);
    }
    if (b->files && f->slot < b->n_slots && b->files[f->slot] == f) {
        b->files[f->slot] = NULL;
    }
    rk_free(f);
}

int bc_fsync_dir(struct bitcask *b)
{
    return b->vfs->fsync(b->vfs, b->dir_fd) == 0 ? RK_OK : RK_EIO;
}

void bc_set_failed(struct bitcask *b, int rc)
{
    pthread_mutex_lock(&b->wb_mu);
    if (!b->failed) {
        __atomic_store_n(&b->failed, true, __ATOMIC_RELAXED);
        b->fail_rc = rc;
        b->sync_errors++;
        rk_log(RK_LOG_ERROR, "bitcask_read_only", "dir=%s error=\"%s\"", b->dir,
               rk_strerror(rc));
    }
    pthread_cond_broadcast(&b->wb_cond);
    pthread_mutex_unlock(&b->wb_mu);
}

bool bc_is_failed(struct bitcask *b)
{
    /* Set under wb_mu, never cleared: a relaxed read is enough to refuse
     * writes early; bc_append re-checks under the lock. */
    return __atomic_load_n(&b->failed, __ATOMIC_RELAXED);
}

int bc_pwrite_all(struct rk_vfs *vfs,
                  int fd,
                  const void *p,
                  size_t n,
                  uint64_t off)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = vfs->pwrite(vfs, fd, c, n, off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return rk_from_errno(errno);
        }
        if (w == 0) {
            return RK_EIO;
        }
        c += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return RK_OK;
}

/* Ends f's view, if any. */
void bc_unmap(struct bitcask *b, struct bc_file *f)
{
    if (f->map) {
        b->vfs->unmap(b->vfs, f->map, f->map_len);
        f->map = NULL;
        f->map_len = 0;
    }
}

/* (Re)maps f read-only over `len` bytes (may exceed the file size). */
int bc_map(struct bitcask *b, struct bc_file *f, size_t len)
{
    bc_unmap(b, f);
    if (len == 0) {
        return RK_OK;
    }
    const void *p = NULL;
    if (b->vfs->map(b->vfs, f->fd, len, &p) != 0) {
        return rk_from_errno(errno);
    }
    f->map = p;
    f->map_len = len;
    return RK_OK;
}

bool bc_job_settle(struct rk_executor *ex,
                   rk_work_cb work,
                   void *data,
                   enum bc_job_state *st,
                   pthread_mutex_t *mu,
                   pthread_cond_t *cond)
{
    while (*st != BC_JOB_IDLE) {
        if (*st == BC_JOB_QUEUED && ex->cancel != NULL) {
            pthread_mutex_unlock(mu);
            int rc = ex->cancel(ex, work, data);
            pthread_mutex_lock(mu);
            if (rc == RK_OK) {
                *st = BC_JOB_IDLE; /* it never started, so still QUEUED */
                pthread_cond_broadcast(cond);
                return true;
            }
            if (*st == BC_JOB_IDLE) {
                break; /* it ran meanwhile */
            }
        }
        /* Running, or just taken off the executor's queue (RK_EBUSY) and
         * about to mark itself RUNNING: it broadcasts when IDLE. */
        pthread_cond_wait(cond, mu);
    }
    return false;
}

static void bc_destroy(struct bitcask *b)
{
    if (b->old_fd >= 0) {
        b->vfs->close(b->vfs, b->old_fd); /* a failed engine's */
    }
    for (uint32_t i = 0; i < b->n_slots; i++) {
        bc_file_free(b, b->files[i]);
    }
    rk_free(b->files);
    keydir_fini(&b->kd);
    rk_buf_fini(&b->scratch);
    rk_free(b->cur.base);
    rk_free(b->flight.base);
    if (b->dir_fd >= 0) {
        b->vfs->close(b->vfs, b->dir_fd);
    }
    if (b->lock_fd >= 0) {
        b->vfs->close(b->vfs, b->lock_fd); /* releases the lock */
    }
    pthread_mutex_destroy(&b->kd_mu);
    pthread_mutex_destroy(&b->wb_mu);
    pthread_cond_destroy(&b->wb_cond);
    pthread_mutex_destroy(&b->bg_mu);
    pthread_cond_destroy(&b->bg_cond);
    rk_free(b->dir);
    rk_free(b);
}

static int bc_lock_dir(struct bitcask *b, char *errbuf, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/LOCK", b->dir);
    b->lock_fd = b->vfs->open(b->vfs, path, O_RDWR | O_CREAT, 0600);
    if (b->lock_fd < 0) {
        snprintf(errbuf, errlen, "cannot open lock file %s: %s", path,
                 strerror(errno));
        return rk_from_errno(errno);
    }
    if (b->vfs->lock(b->vfs, b->lock_fd) != 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            snprintf(errbuf, errlen,
                     "data directory %s is locked by another process "
                     "(flock on %s)",
                     b->dir, path);
            return RK_ELOCKED;
        }
        snprintf(errbuf, errlen, "cannot lock %s: %s", path, strerror(err));
        return rk_from_errno(err);
    }
    return RK_OK;
}

static int bc_open(const struct engine_opts *opts,
                   struct engine **out,
                   char *errbuf,
                   size_t errlen)
{
    if (opts->dir == NULL || opts->dir[0] == '\0') {
        snprintf(errbuf, errlen, "bitcask needs a data directory");
        return RK_EINVAL;
    }
    struct bitcask *b = rk_calloc(1, sizeof(*b));
    if (b == NULL) {
        return RK_ENOMEM;
    }
    b->base.vt = &bitcask_vtable;
    b->dir_fd = -1;
    b->lock_fd = -1;
    b->syncing_fd = -1;
    b->bg_syncing_fd = -1;
    b->old_fd = -1;
    b->wb_fd = -1;
    b->vfs = opts->vfs ? opts->vfs : rk_vfs_posix();
    b->env = opts->env;
    b->sync_ex = opts->sync_executor;
    b->bg_ex = opts->bg_executor;
    b->opts = *opts;
    pthread_mutex_init(&b->kd_mu, NULL);
    pthread_mutex_init(&b->wb_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* sync thread waits */
    pthread_cond_init(&b->wb_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->bg_mu, NULL);
    pthread_cond_init(&b->bg_cond, NULL);
    int rc = keydir_init(&b->kd, storage__seed(b->env, &b->kd), opts->slot_fn,
                         opts->n_slots);
    rk_buf_init(&b->scratch);
    b->max_value_len = opts->max_value_len < STORAGE_MAX_VALUE_LIMIT
                           ? opts->max_value_len
                           : STORAGE_MAX_VALUE_LIMIT;
    if (rc != RK_OK) {
        goto fail;
    }
    rc = RK_ENOMEM;
    b->dir = rk_strdup(opts->dir);
    b->cur.base = rk_malloc(BC_WBUF_CAP);
    b->flight.base = rk_malloc(BC_WBUF_CAP);
    if (b->dir == NULL || b->cur.base == NULL || b->flight.base == NULL) {
        goto fail;
    }
    b->opts.dir = b->dir;
    if (b->vfs->mkdir(b->vfs, b->dir, 0700) != 0 && errno != EEXIST) {
        rc = rk_from_errno(errno);
        snprintf(errbuf, errlen, "cannot create data directory %s: %s", b->dir,
                 strerror(errno));
        goto fail;
    }
    b->dir_fd = b->vfs->open(b->vfs, b->dir, O_RDONLY | O_DIRECTORY, 0);
    if (b->dir_fd < 0) {
        rc = rk_from_errno(errno);
        snprintf(errbuf, errlen, "cannot open data directory %s: %s", b->dir,
                 strerror(errno));
        goto fail;
    }
    rc = bc_lock_dir(b, errbuf, errlen);
    if (rc != RK_OK) {
        goto fail;
    }
    rc = bc_recover(b, errbuf, errlen);
    if (rc != RK_OK) {
        goto fail;
    }
    rc = bc_sync_thread_start(b);
    if (rc == RK_OK) {
        rc = bc_bg_start(b);
    }
    if (rc != RK_OK) {
        snprintf(errbuf, errlen, "cannot start bitcask background work: %s",
                 rk_strerror(rc));
        bc_sync_thread_stop(b);
        goto fail;
    }
    *out = &b->base;
    return RK_OK;
fail:
    if (errbuf[0] == '\0') {
        snprintf(errbuf, errlen, "%s", rk_strerror(rc));
    }
    bc_bg_stop(b);
    bc_destroy(b);
    return rc;
}

static int bc_close(struct engine *e)
{
    struct bitcask *b = to_bc(e);
    bc_bg_stop(b);
    bc_merge_poll(b, true);
    int rc = RK_OK;
    if (!bc_is_failed(b)) {
        rc = bc_sync_now(b);
    } else {
        rc = RK_EREADONLY;
    }
    bc_sync_thread_stop(b);
    bc_destroy(b);
    return rc;
}

static void kd_lock(struct bitcask *b)
{
    if (b->kd_locking) {
        pthread_mutex_lock(&b->kd_mu);
    }
}

static void kd_unlock(struct bitcask *b)
{
    if (b->kd_locking) {
        pthread_mutex_unlock(&b->kd_mu);
    }
}

static int bc_get(struct engine *e,
                  const void *key,
                  size_t klen,
                  struct rk_buf *val,
                  struct engine_meta *meta)
{
    struct bitcask *b = to_bc(e);
    uint32_t h = keydir_find(&b->kd, key, klen);
    if (h == 0) {
        return RK_ENOTFOUND;
    }
    struct kd_meta km;
    keydir_meta(&b->kd, h, &km);
    if (val == NULL) {
        /* metadata only: the key directory has it, the record is not
         * read (a coordinator's per-read size probe, DEL's existence
         * check) */
        if (meta) {
            keydir_engine_meta(&km, meta);
        }
        return RK_OK;
    }
    uint32_t slot = (uint32_t)(km.loc >> 32);
    uint64_t off = (uint32_t)km.loc;
    struct bc_file *f = slot < b->n_slots ? b->files[slot] : NULL;
    size_t len =
        (f ? bc_rec_hdr_len(f->version) : BC_REC_HDR) + klen + km.value_len;
    const unsigned char *p = NULL;
    int rc = f ? bc_read_record(b, f, off, len, &p) : RK_ECORRUPT;
    if (rc != RK_OK && rc != RK_ECORRUPT) {
        return rc;
    }
    struct bc_rec r;
    size_t rl = 0;
    if (rc == RK_OK) {
        rc = bc_rec_parse(f->version, p, len, STORAGE_MAX_KEY_LIMIT,
                          STORAGE_MAX_VALUE_LIMIT, &r, &rl);
    }
    if (rc != RK_OK || rl != len || r.flags != 0 || r.klen != klen ||
        memcmp(r.key, key, klen) != 0) {
        rk_log(RK_LOG_ERROR, "bitcask_corrupt_read",
               "file=%016" PRIx64 ".data offset=%" PRIu64, f ? f->order : 0,
               off);
        return RK_ECORRUPT;
    }
    if (val) {
        rc = rk_buf_append(val, r.val, r.vlen);
        if (rc != RK_OK) {
            return rc;
        }
    }
    if (meta) {
        keydir_engine_meta(&km, meta);
    }
    return RK_OK;
}

/* Makes room for a `len`-byte record in the active file. */
static int bc_ensure_room(struct bitcask *b, size_t len)
{
    struct bc_file *a = b->active;
    if (a->size > BC_FILE_HDR && a->size + len > b->opts.max_file_size) {
        return bc_rollover(b, len);
    }
    if (a->size + len > a->map_len) {
        if (a->size == BC_FILE_HDR) {
            /* Fresh file: widen its window for one big record. */
            int rc = bc_map(b, a, BC_FILE_HDR + len);
            if (rc != RK_OK) {
                bc_set_failed(b, rc);
            }
            return rc;
        }
        return bc_rollover(b, len);
    }
    return RK_OK;
}

static void add_dead(struct bitcask *b,
                     uint64_t loc,
                     size_t klen,
                     uint32_t vlen)
{
    uint32_t slot = (uint32_t)(loc >> 32);
    if (slot < b->n_slots && b->files[slot]) {
        struct bc_file *f = b->files[slot];
        f->dead_bytes += bc_rec_hdr_len(f->version) + klen + vlen;
    }
}

static int bc_put(struct engine *e,
                  const void *key,
                  size_t klen,
                  const void *val,
                  size_t vlen,
                  const struct engine_meta *meta,
                  uint64_t *seq)
{
    struct bitcask *b = to_bc(e);
    if (key == NULL || klen == 0) {
        return RK_EINVAL;
    }
    if (klen > b->opts.max_key_len || vlen > b->max_value_len) {
        return RK_ETOOBIG;
    }
    if (bc_is_failed(b)) {
        return RK_EREADONLY;
    }
    size_t len = BC_REC_HDR + klen + vlen;
    int rc = bc_ensure_room(b, len);
    if (rc != RK_OK) {
        return rc;
    }
    struct bc_file *a = b->active;
    struct bc_rec r = {
        .timestamp = meta ? meta->timestamp : 0,
        .expire_at_ms = meta ? meta->expire_at_ms : 0,
        .klen = (uint32_t)klen,
        .vlen = (uint32_t)vlen,
        .flags = 0,
        .meta_flags = meta ? meta->flags : 0,
        .type = meta ? meta->type : 0,
    };
    unsigned char hdr[BC_REC_HDR];
    bc_rec_encode_fields(hdr, &r);
    struct kd_meta km = {
        .loc = bc_loc(a->slot, a->size),
        .timestamp = r.timestamp,
        .expire_at_ms = r.expire_at_ms,
        .value_len = (uint32_t)vlen,
        .flags = r.meta_flags,
        .type = r.type,
    };
    struct kd_meta old;
    bool had = false;
    kd_lock(b);
    rc = keydir_put(&b->kd, key, klen, &km, &old, &had);
    kd_unlock(b);
    if (rc != RK_OK) {
        return rc;
    }
    uint64_t s = 0;
    rc = bc_append(b, hdr, key, klen, val, vlen, &s);
    if (rc != RK_OK) {
        /* Nothing was appended: restore the previous entry. */
        kd_lock(b);
        if (!had || keydir_put(&b->kd, key, klen, &old, NULL, NULL) != RK_OK) {
            keydir_del(&b->kd, key, klen, NULL);
        }
        kd_unlock(b);
        return rc;
    }
    if (had) {
        add_dead(b, old.loc, klen, old.value_len);
    }
    a->size += len;
    a->total_bytes += len;
    b->writes++;
    if (seq) {
        *seq = s;
    }
    return RK_OK;
}

static int bc_del(struct engine *e,
                  const void *key,
                  size_t klen,
                  uint64_t timestamp,
                  uint64_t *seq)
{
    struct bitcask *b = to_bc(e);
    if (key == NULL || klen == 0 || keydir_find(&b->kd, key, klen) == 0) {
        return RK_ENOTFOUND;
    }
    if (bc_is_failed(b)) {
        return RK_EREADONLY;
    }
    size_t len = BC_REC_HDR + klen;
    int rc = bc_ensure_room(b, len);
    if (rc != RK_OK) {
        return rc;
    }
    struct bc_file *a = b->active;
    struct bc_rec r = {
        .timestamp = timestamp,
        .klen = (uint32_t)klen,
        .flags = BC_FLAG_TOMB,
    };
    unsigned char hdr[BC_REC_HDR];
    bc_rec_encode_fields(hdr, &r);
    uint64_t s = 0;
    rc = bc_append(b, hdr, key, klen, NULL, 0, &s);
    if (rc != RK_OK) {
        return rc;
    }
    struct kd_meta old;
    kd_lock(b);
    rc = keydir_del(&b->kd, key, klen, &old);
    kd_unlock(b);
    if (rc == RK_OK) {
        add_dead(b, old.loc, klen, old.value_len);
    }
    a->size += len;
    a->total_bytes += len;
    a->dead_bytes += len;
    a->tomb_bytes += len;
    b->writes++;
    if (seq) {
        *seq = s;
    }
    return RK_OK;
}

static int bc_scan(struct engine *e,
                   uint64_t cursor,
                   size_t count,
                   engine_key_cb cb,
                   void *data,
                   uint64_t *next)
{
    *next = keydir_engine_scan(&to_bc(e)->kd, cursor, count, cb, data);
    return RK_OK;
}

static int bc_foreach(struct engine *e, engine_key_cb cb, void *data)
{
    keydir_engine_foreach(&to_bc(e)->kd, cb, data);
    return RK_OK;
}

/*
 * FLUSHALL: appends a clear marker to a fresh active file, syncs it, and
 * only then deletes every older file (oldest first).  Recovery treats the
 * marker as "everything older is dead", so a crash at any point leaves
 * either all keys (marker not durable) or none.
 */
static int bc_clear(struct engine *e, uint64_t *seq)
{
    struct bitcask *b = to_bc(e);
    if (bc_is_failed(b)) {
        return RK_EREADONLY;
    }
    bc_merge_poll(b, true);
    bc_bg_wait_idle(b);
    int rc = bc_rollover(b, BC_REC_HDR);
    if (rc != RK_OK) {
        return rc;
    }
    struct bc_rec r = {.flags = BC_FLAG_CLEAR};
    unsigned char hdr[BC_REC_HDR];
    bc_rec_encode_fields(hdr, &r);
    uint64_t s = 0;
    rc = bc_append(b, hdr, NULL, 0, NULL, 0, &s);
    if (rc == RK_OK) {
        rc = bc_sync_now(b);
    }
    if (rc != RK_OK) {
        return rc;
    }
    struct bc_file *a = b->active;
    a->size += BC_REC_HDR;
    a->total_bytes += BC_REC_HDR;
    a->dead_bytes += BC_REC_HDR;
    a->tomb_bytes += BC_REC_HDR;
    keydir_reset(&b->kd);
    /* The rollover queued a hint job for the old active file: let every
     * job finish before the files it reads are freed. */
    bc_bg_wait_idle(b);
    for (;;) {
        struct bc_file *oldest = NULL;
        for (uint32_t i = 0; i < b->n_slots; i++) {
            struct bc_file *f = b->files[i];
            if (f && f != a && (!oldest || f->order < oldest->order)) {
                oldest = f;
            }
        }
        if (oldest == NULL) {
            break;
        }
        char path[4096];
        bc_path(b, oldest->order, "data", path, sizeof(path));
        b->vfs->unlink(b->vfs, path);
        bc_path(b, oldest->order, "hint", path, sizeof(path));
        b->vfs->unlink(b->vfs, path);
        bc_file_free(b, oldest);
    }
    bc_fsync_dir(b);
    b->writes++;
    if (seq) {
        *seq = s;
    }
    return RK_OK;
}

static int bc_sync(struct engine *e)
{
    struct bitcask *b = to_bc(e);
    if (bc_is_failed(b)) {
        return RK_EREADONLY;
    }
    return bc_sync_now(b);
}

static uint64_t bc_durable_seq(struct engine *e)
{
    return __atomic_load_n(&to_bc(e)->durable_seq, __ATOMIC_ACQUIRE);
}

static uint64_t bc_vt_acked_seq(struct engine *e)
{
    return bc_acked_seq(to_bc(e));
}

static uint64_t bc_vt_recoveries(struct engine *e)
{
    return __atomic_load_n(&to_bc(e)->recoveries, __ATOMIC_RELAXED);
}

static bool bc_vt_read_only(struct engine *e)
{
    return __atomic_load_n(&to_bc(e)->failed, __ATOMIC_RELAXED);
}

static int bc_vt_handoff(struct engine *e)
{
    return bc_handoff(to_bc(e));
}

static int bc_tick(struct engine *e)
{
    struct bitcask *b = to_bc(e);
    if (bc_is_failed(b) && !b->fail_reported) {
        b->fail_reported = true;
        return RK_EREADONLY;
    }
    int rc = bc_sync_tick(b);
    int krc = bc_bg_kick(b); /* work queued while the executor refused */
    rc = rc != RK_OK ? rc : krc;
    int mrc = bc_merge_poll(b, false);
    if (mrc == RK_OK && b->merge == NULL && !b->opts.merge_disabled &&
        !bc_is_failed(b)) {
        mrc = bc_merge_start(b, false);
    }
    return rc != RK_OK ? rc : mrc;
}

static int bc_merge(struct engine *e, bool wait)
{
    struct bitcask *b = to_bc(e);
    if (b->merge != NULL) {
        if (!wait) {
            return RK_EBUSY;
        }
        bc_merge_poll(b, true);
    }
    int rc = bc_merge_start(b, true);
    if (rc == RK_OK && wait) {
        rc = bc_merge_poll(b, true);
    }
    return rc;
}

static const struct keydir *bc_keydir(struct engine *e)
{
    return &to_bc(e)->kd;
}

static void bc_stats(struct engine *e, struct engine_stats *st)
{
    struct bitcask *b = to_bc(e);
    st->live_keys = keydir_count(&b->kd);
    for (uint32_t i = 0; i < b->n_slots; i++) {
        struct bc_file *f = b->files[i];
        if (f) {
            st->files++;
            st->dead_bytes += f->dead_bytes;
            st->live_bytes += f->total_bytes - f->dead_bytes;
        }
    }
    st->merges_done = b->merges_done;
    st->merge_running = b->merge != NULL;
    st->keydir_bytes = keydir_bytes(&b->kd);
    st->writes = b->writes;
    st->recovered_truncated_bytes = b->truncated_bytes;
    st->recovered_skipped_records = b->skipped_records;
    st->hint_fallbacks = b->hint_fallbacks;
    pthread_mutex_lock(&b->wb_mu);
    st->syncs = b->syncs;
    st->sync_errors = b->sync_errors;
    st->last_sync_us = b->last_sync_us;
    st->sync_us_total = b->sync_us_total;
    st->read_only = b->failed;
    st->error = b->failed ? b->fail_rc : RK_OK;
    st->recoveries = __atomic_load_n(&b->recoveries, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&b->wb_mu);
}

const struct engine_vtable bitcask_vtable = {
    .kind = "bitcask",
    .open = bc_open,
    .close = bc_close,
    .get = bc_get,
    .put = bc_put,
    .del = bc_del,
    .scan = bc_scan,
    .foreach = bc_foreach,
    .clear = bc_clear,
    .sync = bc_sync,
    .durable_seq = bc_durable_seq,
    .acked_seq = bc_vt_acked_seq,
    .read_only = bc_vt_read_only,
    .recoveries = bc_vt_recoveries,
    .handoff = bc_vt_handoff,
    .tick = bc_tick,
    .merge = bc_merge,
    .stats = bc_stats,
    .recover = bc_recover_in_place,
    .keydir = bc_keydir,
};
