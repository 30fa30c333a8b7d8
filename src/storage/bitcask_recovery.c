/*
 * bitcask_recovery.c - start-up of the bitcask engine: lists the data
 * directory, rebuilds the keydir from hint files or by scanning data
 * files in order, cuts a torn tail of the last file, and picks the active
 * file (docs/storage-format.md, "Recovery rules").
 *
 * Rules:
 *  1. Files are applied in ascending order; within a file, in offset
 *     order; a later record for a key replaces an earlier one, a
 *     tombstone removes it, a clear marker removes everything before it.
 *  2. An immutable file with a valid hint (checksum, covers exactly the
 *     data file's size) is loaded from the hint; otherwise the data file
 *     is scanned, the fallback logged and counted, and a new hint queued.
 *  3. In the last file, a bad record after which no valid record follows
 *     is a torn tail: the file is truncated there and the bytes logged.
 *     So in the file before it when that one has no valid hint: a
 *     rollover leaves the old file's fdatasync to the next sync round or
 *     to its hint job (bitcask_sync.c invariant 3), so a crash can tear
 *     its tail while the new active file exists; a hint is written only
 *     after that fdatasync, so a file with one was whole.
 *  4. Any other bad record fails the open with RK_ECORRUPT naming file and
 *     offset, unless opts.repair: then the bad bytes up to the next valid
 *     record are skipped and counted.
 *  5. Leftovers of an interrupted merge or hint write (*.merging, *.tmp)
 *     are deleted: they were never renamed into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/internal.h"

int bc_apply_record(struct bitcask *b,
                    struct bc_file *f,
                    uint64_t off,
                    const struct bc_rec *r,
                    size_t len)
{
    f->total_bytes += len;
    if (r->flags & BC_FLAG_CLEAR) {
        keydir_reset(&b->kd);
        for (uint32_t i = 0; i < b->n_slots; i++) {
            struct bc_file *g = b->files[i];
            if (g) {
                g->dead_bytes = g->total_bytes;
            }
        }
        f->dead_bytes = f->total_bytes;
        f->tomb_bytes += len;
        return RK_OK;
    }
    struct kd_meta old;
    if (r->flags & BC_FLAG_TOMB) {
        if (keydir_del(&b->kd, r->key, r->klen, &old) == RK_OK) {
            struct bc_file *g = b->files[old.loc >> 32];
            g->dead_bytes +=
                bc_rec_hdr_len(g->version) + r->klen + old.value_len;
        }
        f->dead_bytes += len;
        f->tomb_bytes += len;
        return RK_OK;
    }
    struct kd_meta km = {
        .loc = bc_loc(f->slot, off),
        .timestamp = r->timestamp,
        .expire_at_ms = r->expire_at_ms,
        .value_len = r->vlen,
        .flags = r->meta_flags,
        .type = r->type,
    };
    bool had = false;
    int rc = keydir_put(&b->kd, r->key, r->klen, &km, &old, &had);
    if (rc != RK_OK) {
        return rc;
    }
    if (had) {
        struct bc_file *g = b->files[old.loc >> 32];
        g->dead_bytes += bc_rec_hdr_len(g->version) + r->klen + old.value_len;
    }
    return RK_OK;
}

size_t bc_next_valid(uint16_t version,
                     const unsigned char *p,
                     size_t size,
                     size_t from)
{
    for (size_t q = from; q + bc_rec_hdr_len(version) <= size; q++) {
        struct bc_rec r;
        size_t len;
        if (bc_rec_parse(version, p + q, size - q, STORAGE_MAX_KEY_LIMIT,
                         STORAGE_MAX_VALUE_LIMIT, &r, &len) == RK_OK) {
            return q;
        }
    }
    return size;
}

/*
 * Keydir prefetching for a scan (as for hint files, bitcask_merge.c): a
 * cursor runs SCAN_AHEAD records ahead of the parser, reading only the
 * lengths, and prefetches buckets and then chain heads.  Purely a hint: a
 * bad length just stops it.
 */
#define SCAN_AHEAD 16

struct scan_prefetch
{
    uint64_t pf;                 /* offset of the next record to look at */
    uint64_t n_ahead, n_done;    /* records prefetched / parsed */
    uint64_t hashes[SCAN_AHEAD]; /* key hashes of the lookahead ring */
};

static void scan_prefetch_step(struct bitcask *b,
                               const struct bc_file *f,
                               uint64_t off,
                               struct scan_prefetch *sp)
{
    if (sp->pf < off) { /* the parser skipped bytes: resynchronize */
        sp->pf = off;
        sp->n_ahead = sp->n_done;
    }
    while (sp->pf < f->size && sp->n_ahead < sp->n_done + SCAN_AHEAD) {
        const unsigned char *p = f->map + sp->pf;
        size_t hl = bc_rec_hdr_len(f->version);
        if (f->size - sp->pf < hl) {
            sp->pf = f->size;
            break;
        }
        uint64_t kl = rk_get_le32(p + 20), vl = rk_get_le32(p + 24);
        uint64_t tot = hl + kl + vl;
        if (kl > STORAGE_MAX_KEY_LIMIT || tot > f->size - sp->pf) {
            sp->pf = f->size;
            break;
        }
        uint64_t h = kl ? keydir_hash(&b->kd, p + hl, kl) : 0;
        sp->hashes[sp->n_ahead % SCAN_AHEAD] = h;
        keydir_prefetch(&b->kd, h, false);
        sp->pf += tot;
        sp->n_ahead++;
    }
    if (sp->n_done + SCAN_AHEAD / 2 < sp->n_ahead) {
        keydir_prefetch(&b->kd,
                        sp->hashes[(sp->n_done + SCAN_AHEAD / 2) % SCAN_AHEAD],
                        true);
    }
    sp->n_done++;
}

static int scan_file(struct bitcask *b,
                     struct bc_file *f,
                     bool last,
                     char *errbuf,
                     size_t errlen)
{
    char path[4096];
    bc_path(b, f->order, "data", path, sizeof(path));
    uint64_t off = BC_FILE_HDR;
    struct scan_prefetch sp = {.pf = off};
    while (off < f->size) {
        struct bc_rec r;
        size_t len;
        scan_prefetch_step(b, f, off, &sp);
        int rc = bc_rec_parse(f->version, f->map + off, f->size - off,
                              STORAGE_MAX_KEY_LIMIT, STORAGE_MAX_VALUE_LIMIT,
                              &r, &len);
        if (rc == RK_OK) {
            rc = bc_apply_record(b, f, off, &r, len);
            if (rc != RK_OK) {
                snprintf(errbuf, errlen, "out of memory loading %s", path);
                return rc;
            }
            off += len;
            continue;
        }
        size_t q = bc_next_valid(f->version, f->map, f->size, off + 1);
        if (q == f->size && last) {
            uint64_t cut = f->size - off;
            if (b->vfs->ftruncate(b->vfs, f->fd, off) != 0) {
                snprintf(errbuf, errlen, "cannot truncate torn tail of %s: %s",
                         path, strerror(errno));
                return RK_EIO;
            }
            b->vfs->fdatasync(b->vfs, f->fd);
            rk_log(RK_LOG_WARN, "bitcask_tail_truncated",
                   "file=%s offset=%" PRIu64 " bytes=%" PRIu64, path, off, cut);
            b->truncated_bytes += cut;
            f->size = off;
            break;
        }
        if (!b->opts.repair) {
            snprintf(errbuf, errlen,
                     "corrupt record in %s at offset %" PRIu64
                     " (open with repair to skip it)",
                     path, off);
            return RK_ECORRUPT;
        }
        rk_log(RK_LOG_WARN, "bitcask_repair_skipped",
               "file=%s offset=%" PRIu64 " bytes=%zu", path, off,
               (size_t)(q - off));
        b->skipped_records++;
        f->total_bytes += q - off;
        f->dead_bytes += q - off;
        off = q;
    }
    return RK_OK;
}

/* Opens data file `order`; *out NULL (RK_OK) when it was dropped. */
static int open_data_file(struct bitcask *b,
                          uint64_t order,
                          bool last,
                          struct bc_file **out,
                          char *errbuf,
                          size_t errlen)
{
    char path[4096];
    bc_path(b, order, "data", path, sizeof(path));
    *out = NULL;
    struct rk_vfs *vfs = b->vfs;
    int fd = vfs->open(vfs, path, O_RDWR, 0600);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        return rk_from_errno(errno);
    }
    uint64_t size = 0;
    if (vfs->file_size(vfs, fd, &size) != 0) {
        snprintf(errbuf, errlen, "cannot stat %s: %s", path, strerror(errno));
        vfs->close(vfs, fd);
        return RK_EIO;
    }
    unsigned char hdr[BC_FILE_HDR];
    bool short_hdr = size < BC_FILE_HDR;
    if (!short_hdr && vfs->pread(vfs, fd, hdr, BC_FILE_HDR, 0) != BC_FILE_HDR) {
        short_hdr = true;
    }
    const char *why = NULL;
    int rc = RK_ECORRUPT;
    if (short_hdr) {
        if (last) {
            /* A crash while creating the file: nothing in it was ever
             * acknowledged (the header is synced before any record). */
            rk_log(RK_LOG_WARN, "bitcask_tail_truncated",
                   "file=%s offset=0 bytes=%" PRIu64 " reason=short_header",
                   path, size);
            b->truncated_bytes += size;
            vfs->close(vfs, fd);
            vfs->unlink(vfs, path);
            return RK_OK;
        }
        why = "truncated file header";
    } else if (memcmp(hdr, BC_MAGIC, 4) != 0) {
        why = "bad magic";
    } else if (rk_get_le16(hdr + 4) != BC_VERSION &&
               rk_get_le16(hdr + 4) != BC_VERSION_V1) {
        /* Never renamed away, even with repair: the file is not corrupt,
         * only newer than this build. */
        rc = RK_EVERSION;
        snprintf(errbuf, errlen,
                 "%s: data format version %u, this build reads versions "
                 "%u..%u: open it with the ringkv release that wrote it or "
                 "a newer one (a data directory cannot be downgraded)",
                 path, rk_get_le16(hdr + 4), BC_VERSION_V1, BC_VERSION);
        vfs->close(vfs, fd);
        return rc;
    } else if (rk_get_le16(hdr + 6) != BC_KIND_DATA ||
               rk_get_le64(hdr + 8) != order) {
        why = "header does not match the file name";
    }
    if (why) {
        vfs->close(vfs, fd);
        if (b->opts.repair) {
            char bad[4200];
            snprintf(bad, sizeof(bad), "%s.corrupt", path);
            vfs->rename(vfs, path, bad);
            rk_log(RK_LOG_WARN, "bitcask_repair_skipped",
                   "file=%s offset=0 reason=\"%s\" renamed=%s", path, why, bad);
            b->skipped_records++;
            return RK_OK;
        }
        snprintf(errbuf, errlen, "corrupt file %s at offset 0: %s", path, why);
        return rc;
    }
    struct bc_file *f = rk_calloc(1, sizeof(*f));
    if (f == NULL) {
        vfs->close(vfs, fd);
        return RK_ENOMEM;
    }
    f->order = order;
    f->version = rk_get_le16(hdr + 4);
    f->fd = fd;
    f->size = size;
    rc = size > SIZE_MAX ? RK_ETOOBIG : bc_map(b, f, (size_t)size);
    if (rc == RK_OK) {
        rc = bc_slot_add(b, f);
    }
    if (rc != RK_OK) {
        snprintf(errbuf, errlen, "cannot map %s: %s", path, rk_strerror(rc));
        bc_file_free(b, f);
        return rc;
    }
    *out = f;
    return RK_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Parses "<16 hex>.<ext>"; true and *order on a match. */
static bool parse_name(const char *name, const char *ext, uint64_t *order)
{
    size_t n = strlen(name), e = strlen(ext);
    if (n != 17 + e || name[16] != '.' || strcmp(name + 17, ext) != 0) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0) {
            return false;
        }
        v = (v << 4) | (uint64_t)d;
    }
    *order = v;
    return true;
}

/* What list_dir gathers from the directory listing. */
struct dir_scan
{
    uint64_t *orders; /* *.data files */
    size_t n, cap;
    char **leftovers; /* *.merging and *.tmp names (rk_strdup'ed) */
    size_t n_left, cap_left;
    int rc; /* RK_ENOMEM stops the listing */
};

static bool push_name(struct dir_scan *ds, const char *name)
{
    if (ds->n_left == ds->cap_left) {
        size_t cap = ds->cap_left ? ds->cap_left * 2 : 8;
        char **v = rk_realloc(ds->leftovers, cap * sizeof(*v));
        if (v == NULL) {
            return false;
        }
        ds->leftovers = v;
        ds->cap_left = cap;
    }
    char *copy = rk_strdup(name);
    if (copy == NULL) {
        return false;
    }
    ds->leftovers[ds->n_left++] = copy;
    return true;
}

static bool push_order(struct dir_scan *ds, uint64_t order)
{
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 64;
        uint64_t *v = rk_realloc(ds->orders, cap * sizeof(*v));
        if (v == NULL) {
            return false;
        }
        ds->orders = v;
        ds->cap = cap;
    }
    ds->orders[ds->n++] = order;
    return true;
}

/* rk_vfs_name_cb of list_dir. */
static bool dir_entry_cb(void *data, const char *name)
{
    struct dir_scan *ds = data;
    size_t len = strlen(name);
    bool ok = true;
    uint64_t order;
    if ((len > 8 && strcmp(name + len - 8, ".merging") == 0) ||
        (len > 4 && strcmp(name + len - 4, ".tmp") == 0)) {
        ok = push_name(ds, name);
    } else if (parse_name(name, "data", &order)) {
        ok = push_order(ds, order);
    }
    if (!ok) {
        ds->rc = RK_ENOMEM;
    }
    return ok;
}

/* Lists *.data files by order into *orders (returned-owned, rk_free) and
 * deletes leftovers of interrupted merges and hint writes. */
static int list_dir(struct bitcask *b,
                    uint64_t **orders,
                    size_t *n,
                    char *errbuf,
                    size_t errlen)
{
    struct dir_scan ds = {.rc = RK_OK};
    if (b->vfs->list(b->vfs, b->dir, dir_entry_cb, &ds) != 0) {
        snprintf(errbuf, errlen, "cannot list %s: %s", b->dir, strerror(errno));
        ds.rc = rk_from_errno(errno);
    }
    /* Unlinked after the listing: a vfs need not allow changes during it. */
    for (size_t i = 0; i < ds.n_left; i++) {
        if (ds.rc == RK_OK) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", b->dir, ds.leftovers[i]);
            b->vfs->unlink(b->vfs, path);
            rk_log(RK_LOG_INFO, "bitcask_leftover_removed", "file=%s", path);
        }
        rk_free(ds.leftovers[i]);
    }
    rk_free(ds.leftovers);
    if (ds.rc != RK_OK) {
        rk_free(ds.orders);
        return ds.rc;
    }
    if (ds.n > 1) {
        qsort(ds.orders, ds.n, sizeof(*ds.orders), cmp_u64);
    }
    *orders = ds.orders;
    *n = ds.n;
    return RK_OK;
}

/* Makes `f` (the last file, scanned) the active file, or creates one. */
static int pick_active(struct bitcask *b, struct bc_file *last)
{
    /* A version-1 file is never appended to: a file's records all have
     * its version. */
    if (last && !b->roll_active &&
        (last->order & ((1u << BC_ORDER_SHIFT) - 1)) == 0 &&
        last->version == BC_VERSION && !last->has_hint &&
        last->size < b->opts.max_file_size) {
        int rc = bc_map(b, last, (size_t)b->opts.max_file_size);
        if (rc != RK_OK) {
            return rc;
        }
        b->active = last;
    } else {
        uint64_t max = 0;
        for (uint32_t i = 0; i < b->n_slots; i++) {
            if (b->files[i] && b->files[i]->order > max) {
                max = b->files[i]->order;
            }
        }
        uint64_t order = ((max >> BC_ORDER_SHIFT) + 1) << BC_ORDER_SHIFT;
        struct bc_file *f = NULL;
        int rc = bc_create_file(b, order, (size_t)b->opts.max_file_size, &f);
        if (rc != RK_OK) {
            return rc;
        }
        b->active = f;
    }
    b->wb_fd = b->active->fd;
    b->cur_off = b->active->size;
    b->written_end = b->active->size;
    return RK_OK;
}

int bc_recover(struct bitcask *b, char *errbuf, size_t errlen)
{
    uint64_t *orders = NULL;
    size_t n = 0;
    int rc = list_dir(b, &orders, &n, errbuf, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    uint64_t hinted = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        hinted += bc_hint_count(b, orders[i]);
    }
    if (hinted > 0 && keydir_reserve(&b->kd, hinted) != RK_OK) {
        rc = RK_ENOMEM;
        goto out;
    }
    struct bc_file *last = NULL;
    for (size_t i = 0; i < n; i++) {
        bool is_last = i + 1 == n;
        struct bc_file *f = NULL;
        rc = open_data_file(b, orders[i], is_last, &f, errbuf, errlen);
        if (rc != RK_OK) {
            goto out;
        }
        if (f == NULL) {
            continue;
        }
        int hrc = is_last ? RK_ENOTFOUND : bc_hint_load(b, f);
        if (hrc == RK_OK) {
            f->has_hint = true;
        } else {
            if (!is_last) {
                b->hint_fallbacks++;
                rk_log(RK_LOG_WARN, "bitcask_hint_fallback",
                       "file=%016" PRIx64 ".data reason=\"%s\"", f->order,
                       hrc == RK_ENOTFOUND ? "missing hint" : "invalid hint");
            }
            /* rule 3: the last file, or the one rolled over before it
             * whose sync may not have happened (no hint) */
            rc = scan_file(b, f, is_last || i + 2 == n, errbuf, errlen);
            if (rc != RK_OK) {
                goto out;
            }
        }
        last = f;
    }
    rc = pick_active(b, last);
    if (rc != RK_OK) {
        snprintf(errbuf, errlen, "cannot create the active data file in %s: %s",
                 b->dir, rk_strerror(rc));
        goto out;
    }
    /* Immutable files are read through their mappings only. */
    for (uint32_t i = 0; i < b->n_slots; i++) {
        struct bc_file *f = b->files[i];
        if (f && f != b->active) {
            if (f->fd >= 0) {
                b->vfs->close(b->vfs, f->fd);
                f->fd = -1;
            }
            if (!f->has_hint) {
                bc_bg_enqueue_hint(b, f);
            }
        }
    }
    rk_log(RK_LOG_INFO, "bitcask_recovered",
           "dir=%s files=%zu keys=%" PRIu64 " truncated_bytes=%" PRIu64
           " skipped=%" PRIu64 " hint_fallbacks=%" PRIu64,
           b->dir, n, keydir_count(&b->kd), b->truncated_bytes,
           b->skipped_records, b->hint_fallbacks);
out:
    rk_free(orders);
    return rc;
}

/* ---- in-place recovery (issue 12 item 3) ------------------------------- */

/*
 * The files and keydir of a fresh scan of b's directory, built in `t`
 * (a scratch struct bitcask sharing b's directory, options and OS access)
 * so that a failed scan leaves b as it was.  Hint-file jobs are queued on
 * t, without a worker (moved to b by the caller).
 */
static int scan_into(struct bitcask *b,
                     struct bitcask *t,
                     char *errbuf,
                     size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->base.vt = b->base.vt;
    t->opts = b->opts;
    t->dir = b->dir;
    t->dir_fd = b->dir_fd;
    t->lock_fd = -1;
    t->vfs = b->vfs;
    t->env = b->env;
    t->max_value_len = b->max_value_len;
    t->wb_fd = -1;
    t->syncing_fd = t->bg_syncing_fd = -1;
    t->old_fd = -1;
    t->roll_active = true; /* never append to a file whose write failed */
    pthread_mutex_init(&t->bg_mu, NULL);
    pthread_cond_init(&t->bg_cond, NULL);
    int rc = keydir_init(&t->kd, storage__seed(t->env, &b->kd), b->kd.slot_fn,
                         b->kd.n_slots);
    if (rc == RK_OK) {
        rc = bc_recover(t, errbuf, errlen);
    }
    return rc;
}

/* Frees what scan_into built in t (on failure, or b's old state). */
static void scan_free(struct bitcask *t)
{
    for (uint32_t i = 0; i < t->n_slots; i++) {
        bc_file_free(t, t->files[i]);
    }
    rk_free(t->files);
    t->files = NULL;
    t->n_slots = 0;
    keydir_fini(&t->kd);
    while (t->jobs_head) {
        struct bc_job *j = t->jobs_head;
        t->jobs_head = j->next;
        rk_free(j->del_orders);
        rk_free(j);
    }
    t->jobs_tail = NULL;
}

/* Gives b the files, keydir and hint jobs of the scan in t, and t b's old
 * ones (freed by scan_free). */
static void scan_swap(struct bitcask *b, struct bitcask *t)
{
    struct bc_file **files = b->files;
    uint32_t n_slots = b->n_slots;
    struct keydir kd = b->kd;
    b->files = t->files;
    b->n_slots = t->n_slots;
    b->kd = t->kd;
    b->active = t->active;
    t->files = files;
    t->n_slots = n_slots;
    t->kd = kd;
    t->active = NULL;
    b->jobs_head = t->jobs_head; /* b's queue is empty (bc_bg_stop) */
    b->jobs_tail = t->jobs_tail;
    t->jobs_head = t->jobs_tail = NULL;
    b->wb_fd = t->wb_fd;
    b->cur_off = b->written_end = b->flight_off = t->cur_off;
    b->cur.len = b->flight.len = 0;
    b->flight_busy = false;
    /* Every write before the failure is either in a file (acknowledged
     * under the sync policy, kept) or was lost with the failure (never
     * acknowledged; its waiters were refused: engine.h).  So all their
     * sequence numbers count as handed off and durable from now on. */
    uint64_t s = b->next_seq;
    b->last_seq = b->flight_seq = s;
    __atomic_store_n(&b->written_seq, s, __ATOMIC_RELEASE);
    b->synced_seq = s;
    __atomic_store_n(&b->durable_seq, s, __ATOMIC_RELEASE);
}

/* Restarts the background work stopped by bc_recover_in_place. */
static int restart_work(struct bitcask *b)
{
    b->stop = false;
    b->bg_stop = false;
    __atomic_store_n(&b->bg_cancel, 0, __ATOMIC_RELAXED);
    int rc = bc_sync_thread_start(b);
    return rc == RK_OK ? bc_bg_start(b) : rc;
}

int bc_recover_in_place(struct engine *e, char *errbuf, size_t errlen)
{
    struct bitcask *b = (struct bitcask *)e;
    if (!bc_is_failed(b)) {
        return RK_OK;
    }
    if (b->fail_rc != RK_ENOSPC) {
        /* An I/O error (a failed fsync above all) leaves what is on disk
         * uncertain: only a restart's full recovery may trust it again
         * (STYLE.md 1.3; never retry fsync). */
        snprintf(errbuf, errlen,
                 "storage of %s failed with \"%s\", not a full disk: check "
                 "the disk, then restart the node",
                 b->dir, rk_strerror(b->fail_rc));
        return RK_EREADONLY;
    }
    /* Quiesce: no merge, no hint file, no sync job or thread runs. */
    bc_bg_stop(b);
    bc_merge_poll(b, true);
    bc_sync_thread_stop(b);
    /* What was handed to the OS before the failure is acknowledged under
     * sync=every and none: make it durable before the old active file is
     * left behind (nothing syncs an immutable file later). */
    int rc = RK_OK;
    if (b->wb_fd >= 0 && b->vfs->fdatasync(b->vfs, b->wb_fd) != 0) {
        rc = rk_from_errno(errno);
        snprintf(errbuf, errlen, "fdatasync of the active file of %s: %s",
                 b->dir, rk_strerror(rc));
    }
    struct bitcask t;
    if (rc == RK_OK) {
        /* Verify every file again: the failed write's torn tail is cut
         * and the keydir rebuilt, then a new active file is started. */
        rc = scan_into(b, &t, errbuf, errlen);
        /* what the scan cut or skipped is gone, whether or not it ended */
        b->truncated_bytes += t.truncated_bytes;
        b->skipped_records += t.skipped_records;
        b->hint_fallbacks += t.hint_fallbacks;
        if (rc == RK_OK) {
            scan_swap(b, &t);
        }
        scan_free(&t); /* the failed scan, or b's old files and keydir */
        pthread_mutex_destroy(&t.bg_mu);
        pthread_cond_destroy(&t.bg_cond);
    }
    if (rc == RK_OK) {
        pthread_mutex_lock(&b->wb_mu);
        __atomic_store_n(&b->failed, false, __ATOMIC_RELAXED);
        b->fail_rc = RK_OK;
        b->fail_reported = false;
        __atomic_fetch_add(&b->recoveries, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&b->wb_mu);
    }
    int wrc = restart_work(b);
    if (rc == RK_OK && wrc != RK_OK) {
        bc_set_failed(b, wrc);
        snprintf(errbuf, errlen, "cannot restart bitcask background work: %s",
                 rk_strerror(wrc));
        return wrc;
    }
    if (rc == RK_OK) {
        rk_log(RK_LOG_INFO, "bitcask_recovered_in_place",
               "dir=%s keys=%" PRIu64 " files=%" PRIu32 " active=%016" PRIx64,
               b->dir, keydir_count(&b->kd), b->n_slots, b->active->order);
    }
    return rc;
}
