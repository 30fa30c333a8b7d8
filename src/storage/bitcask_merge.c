/*
 * bitcask_merge.c - the background worker of the bitcask engine: hint
 * files for immutable data files, and merges (Bitcask paper, "merge").
 *
 * Merge protocol (docs/storage-format.md):
 *  1. Owner (bc_merge_start): picks immutable input files, decides per
 *     input whether its tombstones may be dropped (every older file is an
 *     input too), reserves output orders between the newest immutable file
 *     and the active file, sets kd_locking, queues the job.
 *  2. Worker (run_merge): copies every record the keydir still points at
 *     (checked under kd_mu) into <order>.data.merging files, writes
 *     <order>.hint.merging, fdatasyncs both, renames them into place and
 *     fsyncs the directory.  Reads and writes go on meanwhile.
 *  3. Owner (bc_merge_poll, from engine_tick or engine_merge(wait)):
 *     repoints keydir entries that still point at the copied record,
 *     counts the others dead, unmaps the inputs and queues their deletion.
 *  4. Worker (delete_inputs): fdatasyncs the active file (a skipped record
 *     may have been superseded by a write not yet durable), then deletes
 *     the inputs oldest first and fsyncs the directory.
 *
 * Crash safety: before step 2's renames only *.merging files exist and
 * are deleted at open; after them, outputs duplicate live records of the
 * still-present inputs and sort after them, so recovery yields the same
 * keydir.  Deleting inputs oldest first keeps every dropped tombstone's
 * file alive as long as any older file that could hold its key.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/endian.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/internal.h"

/* ---------------------------------------------------------------- */
/* Hint files. */

static int hint_add(struct rk_buf *h, uint64_t off, const struct bc_rec *r)
{
    unsigned char e[BC_HINT_ENTRY];
    rk_put_le32(e, (uint32_t)off);
    rk_put_le32(e + 4, r->vlen);
    rk_put_le64(e + 8, r->timestamp);
    rk_put_le64(e + 16, r->expire_at_ms);
    rk_put_le32(e + 24, r->klen);
    e[28] = r->flags;
    e[29] = r->meta_flags;
    e[30] = r->type;
    int rc = rk_buf_append(h, e, sizeof(e));
    if (rc == RK_OK && r->klen) {
        rc = rk_buf_append(h, r->key, r->klen);
    }
    return rc;
}

static int hint_begin(struct rk_buf *h, uint64_t order)
{
    unsigned char hdr[BC_FILE_HDR];
    bc_file_hdr_encode(hdr, BC_KIND_HINT, order);
    rk_buf_clear(h);
    return rk_buf_append(h, hdr, sizeof(hdr));
}

static int hint_finish(struct rk_buf *h, uint64_t n, uint64_t data_size)
{
    unsigned char t[BC_HINT_TRAILER];
    rk_put_le64(t, n);
    rk_put_le64(t + 8, data_size);
    int rc = rk_buf_append(h, t, 16);
    if (rc != RK_OK) {
        return rc;
    }
    rk_put_le64(t + 16, XXH3_64bits(h->base, h->len));
    return rk_buf_append(h, t + 16, 8);
}

/* Writes `buf` to path+".tmp"... as `tmp`, syncs it, renames to `path`. */
static int write_file_atomic(struct bitcask *b,
                             const char *tmp,
                             const char *path,
                             const struct rk_buf *buf)
{
    struct rk_vfs *vfs = b->vfs;
    int fd = vfs->open(vfs, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return rk_from_errno(errno);
    }
    int rc = bc_pwrite_all(vfs, fd, buf->base, buf->len, 0);
    if (rc == RK_OK && vfs->fdatasync(vfs, fd) != 0) {
        rc = RK_EIO;
    }
    vfs->close(vfs, fd);
    if (rc == RK_OK && vfs->rename(vfs, tmp, path) != 0) {
        rc = rk_from_errno(errno);
    }
    if (rc != RK_OK) {
        vfs->unlink(vfs, tmp);
    }
    return rc;
}

/* Builds the hint entries (always version 2) of the data file f's bytes,
 * skipping bad records. */
static int hint_build(const struct bc_file *f, struct rk_buf *h)
{
    const unsigned char *p = f->map;
    uint64_t size = f->size;
    uint64_t order = f->order;
    int rc = hint_begin(h, order);
    uint64_t n = 0;
    uint64_t off = BC_FILE_HDR;
    while (rc == RK_OK && off < size) {
        struct bc_rec r;
        size_t len;
        if (bc_rec_parse(f->version, p + off, size - off, STORAGE_MAX_KEY_LIMIT,
                         STORAGE_MAX_VALUE_LIMIT, &r, &len) != RK_OK) {
            off = bc_next_valid(f->version, p, size, off + 1);
            continue;
        }
        rc = hint_add(h, off, &r);
        n++;
        off += len;
    }
    if (rc == RK_OK) {
        rc = hint_finish(h, n, size);
    }
    return rc;
}

static void write_hint(struct bitcask *b, struct bc_file *f)
{
    struct rk_buf h;
    rk_buf_init(&h);
    char path[4096], tmp[4200];
    bc_path(b, f->order, "hint", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int rc = hint_build(f, &h);
    if (rc == RK_OK) {
        rc = write_file_atomic(b, tmp, path, &h);
    }
    if (rc != RK_OK) {
        rk_log(RK_LOG_WARN, "bitcask_hint_write_failed", "file=%s error=\"%s\"",
               path, rk_strerror(rc));
    }
    rk_buf_fini(&h);
}

uint64_t bc_hint_count(const struct bitcask *b, uint64_t order)
{
    char path[4096];
    bc_path(b, order, "hint", path, sizeof(path));
    struct rk_vfs *vfs = b->vfs;
    int fd = vfs->open(vfs, path, O_RDONLY, 0);
    if (fd < 0) {
        return 0;
    }
    uint64_t size = 0, n = 0;
    unsigned char t[BC_HINT_TRAILER];
    if (vfs->file_size(vfs, fd, &size) == 0 &&
        size >= BC_FILE_HDR + BC_HINT_TRAILER &&
        vfs->pread(vfs, fd, t, sizeof(t), size - BC_HINT_TRAILER) ==
            (ssize_t)sizeof(t)) {
        n = rk_get_le64(t);
        if (n > size / BC_HINT_ENTRY_V1) {
            n = 0;
        }
    }
    vfs->close(vfs, fd);
    return n;
}

int bc_hint_load(struct bitcask *b, struct bc_file *f)
{
    char path[4096];
    bc_path(b, f->order, "hint", path, sizeof(path));
    struct rk_vfs *vfs = b->vfs;
    int fd = vfs->open(vfs, path, O_RDONLY, 0);
    if (fd < 0) {
        return RK_ENOTFOUND;
    }
    uint64_t fsize = 0;
    if (vfs->file_size(vfs, fd, &fsize) != 0 ||
        fsize < BC_FILE_HDR + BC_HINT_TRAILER || fsize > SIZE_MAX) {
        vfs->close(vfs, fd);
        return RK_ECORRUPT;
    }
    size_t size = (size_t)fsize;
    const void *view = NULL;
    int mrc = vfs->map(vfs, fd, size, &view);
    vfs->close(vfs, fd);
    if (mrc != 0) {
        return RK_ECORRUPT;
    }
    const unsigned char *p = view;
    int rc = RK_ECORRUPT;
    const unsigned char *t = p + size - BC_HINT_TRAILER;
    uint64_t n = rk_get_le64(t);
    size_t end = size - BC_HINT_TRAILER;
    /* A version-1 hint (29-byte entries) describes only a version-1 data
     * file; a version-2 hint may describe either (its entries carry the
     * meta flags and type the data records read with). */
    uint16_t hv = rk_get_le16(p + 4);
    size_t el = bc_hint_entry_len(hv);
    size_t rhl = bc_rec_hdr_len(f->version);
    if (memcmp(p, BC_MAGIC, 4) != 0 ||
        (hv != BC_VERSION &&
         (hv != BC_VERSION_V1 || f->version != BC_VERSION_V1)) ||
        rk_get_le16(p + 6) != BC_KIND_HINT || rk_get_le64(p + 8) != f->order ||
        rk_get_le64(t + 8) != f->size ||
        XXH3_64bits(p, size - 8) != rk_get_le64(t + 16)) {
        goto out;
    }
    /* Validate every entry before applying any. */
    size_t off = BC_FILE_HDR;
    uint64_t count = 0;
    while (off < end) {
        if (end - off < el) {
            goto out;
        }
        uint64_t roff = rk_get_le32(p + off);
        uint32_t vlen = rk_get_le32(p + off + 4);
        uint32_t klen = rk_get_le32(p + off + 24);
        uint8_t flags = p[off + 28];
        if (klen > STORAGE_MAX_KEY_LIMIT || vlen > STORAGE_MAX_VALUE_LIMIT ||
            (flags & ~BC_FLAGS_KNOWN) ||
            ((flags & BC_FLAG_CLEAR) ? klen != 0 : klen == 0) ||
            end - off - el < klen || roff < BC_FILE_HDR ||
            roff + rhl + klen + vlen > f->size) {
            goto out;
        }
        off += el + klen;
        count++;
    }
    if (count != n) {
        goto out;
    }
    off = BC_FILE_HDR;
    rc = RK_OK;
    /* Two prefetch cursors run ahead of the insert cursor: HINT_AHEAD
     * entries ahead the bucket is fetched, half as far its chain head. */
#define HINT_AHEAD 16
    uint64_t hashes[HINT_AHEAD];
    size_t pf = off, pf_n = 0, n_done = 0;
    while (rc == RK_OK && off < end) {
        while (pf < end && pf_n < n_done + HINT_AHEAD) {
            uint32_t kl = rk_get_le32(p + pf + 24);
            uint64_t h = kl ? keydir_hash(&b->kd, p + pf + el, kl) : 0;
            hashes[pf_n % HINT_AHEAD] = h;
            keydir_prefetch(&b->kd, h, false);
            pf += el + kl;
            pf_n++;
        }
        if (n_done + HINT_AHEAD / 2 < pf_n) {
            keydir_prefetch(
                &b->kd, hashes[(n_done + HINT_AHEAD / 2) % HINT_AHEAD], true);
        }
        n_done++;
        bool v1 = hv == BC_VERSION_V1;
        struct bc_rec r = {
            .vlen = rk_get_le32(p + off + 4),
            .timestamp = rk_get_le64(p + off + 8),
            .expire_at_ms = rk_get_le64(p + off + 16),
            .klen = rk_get_le32(p + off + 24),
            .flags = p[off + 28],
            .meta_flags = v1 ? ENGINE_FLAG_V1 : p[off + 29],
            .type = v1 ? 0 : p[off + 30],
            .key = p + off + el,
        };
        uint64_t roff = rk_get_le32(p + off);
        rc = bc_apply_record(b, f, roff, &r, rhl + r.klen + r.vlen);
        off += el + r.klen;
    }
out:
    vfs->unmap(vfs, p, size);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Merge. */

static void bg_help_locked(struct bitcask *b);

struct bc_merge_item
{
    uint64_t old_loc; /* where the keydir pointed when copied */
    uint32_t out;     /* output index */
    uint32_t new_off; /* offset in that output */
};

struct bc_merge_out
{
    struct bc_file *f;   /* fd open while writing, mapped when done */
    struct rk_buf wbuf;  /* unwritten data bytes */
    uint64_t written;    /* bytes written to the file */
    struct rk_buf hint;  /* hint file image */
    uint64_t n_hint;     /* hint entries */
    uint64_t tomb_bytes; /* kept tombstones / clear markers */
};

struct bc_merge
{
    struct bc_file **inputs; /* ascending order */
    bool *drop_ok;           /* per input: every older file is an input */
    size_t n_inputs;
    uint64_t base_order;       /* first output order */
    uint64_t limit_order;      /* outputs stay below (the active file) */
    uint64_t now_ms;           /* wall clock for expiry */
    struct bc_merge_out *outs; /* worker: outputs */
    size_t n_outs;
    struct bc_merge_item *items;
    size_t n_items, cap_items;
    uint64_t *expired; /* locations of dropped expired records */
    size_t n_expired, cap_expired;
    uint64_t bytes_in, bytes_out;
    int rc;
};

static void merge_free(struct bitcask *b, struct bc_merge *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n_outs; i++) {
        rk_buf_fini(&m->outs[i].wbuf);
        rk_buf_fini(&m->outs[i].hint);
        if (m->outs[i].f) {
            bc_file_free(b, m->outs[i].f);
        }
    }
    rk_free(m->outs);
    rk_free(m->items);
    rk_free(m->expired);
    rk_free(m->inputs);
    rk_free(m->drop_ok);
    rk_free(m);
}

static int out_flush(struct bitcask *b, struct bc_merge_out *o)
{
    if (o->wbuf.len == 0) {
        return RK_OK;
    }
    int rc =
        bc_pwrite_all(b->vfs, o->f->fd, o->wbuf.base, o->wbuf.len, o->written);
    o->written += o->wbuf.len;
    rk_buf_clear(&o->wbuf);
    return rc;
}

static int out_open(struct bitcask *b, struct bc_merge *m)
{
    if (m->base_order + m->n_outs >= m->limit_order) {
        return RK_ERANGE;
    }
    struct bc_merge_out *v = rk_realloc(m->outs, (m->n_outs + 1) * sizeof(*v));
    if (v == NULL) {
        return RK_ENOMEM;
    }
    m->outs = v;
    struct bc_merge_out *o = &m->outs[m->n_outs];
    memset(o, 0, sizeof(*o));
    rk_buf_init(&o->wbuf);
    rk_buf_init(&o->hint);
    o->f = rk_calloc(1, sizeof(*o->f));
    if (o->f == NULL) {
        return RK_ENOMEM;
    }
    m->n_outs++;
    o->f->order = m->base_order + m->n_outs - 1;
    o->f->version = BC_VERSION;
    o->f->fd = -1;
    o->f->slot = UINT32_MAX;
    char path[4096];
    bc_path(b, o->f->order, "data.merging", path, sizeof(path));
    o->f->fd = b->vfs->open(b->vfs, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (o->f->fd < 0) {
        return rk_from_errno(errno);
    }
    unsigned char hdr[BC_FILE_HDR];
    bc_file_hdr_encode(hdr, BC_KIND_DATA, o->f->order);
    int rc = rk_buf_append(&o->wbuf, hdr, sizeof(hdr));
    if (rc == RK_OK) {
        rc = hint_begin(&o->hint, o->f->order);
    }
    o->f->size = BC_FILE_HDR;
    return rc;
}

/* Appends a record to the output buffer: its bytes p[0..len) as they are
 * when the input is in the current format, else (a version-1 input) a
 * version-2 header made from r (meta flags ENGINE_FLAG_V1, from the
 * parse), then key and value.  *out_len gets the bytes appended. */
static int out_copy(struct rk_buf *wbuf,
                    uint16_t version,
                    const unsigned char *p,
                    size_t len,
                    const struct bc_rec *r,
                    size_t *out_len)
{
    if (version == BC_VERSION) {
        *out_len = len;
        return rk_buf_append(wbuf, p, len);
    }
    unsigned char hdr[BC_REC_HDR];
    bc_rec_encode_hdr(hdr, r, r->key, r->val);
    int rc = rk_buf_append(wbuf, hdr, sizeof(hdr));
    if (rc == RK_OK && r->klen) {
        rc = rk_buf_append(wbuf, r->key, r->klen);
    }
    if (rc == RK_OK && r->vlen) {
        rc = rk_buf_append(wbuf, r->val, r->vlen);
    }
    *out_len = sizeof(hdr) + r->klen + r->vlen;
    return rc;
}

/* Appends a record (bytes p[0..len) of a file of `version`, parsed as r)
 * to the current output, in the current format. */
static int out_append(struct bitcask *b,
                      struct bc_merge *m,
                      uint16_t version,
                      const unsigned char *p,
                      size_t in_len,
                      const struct bc_rec *r,
                      uint32_t *out_idx,
                      uint32_t *off)
{
    int rc;
    size_t len = BC_REC_HDR + (size_t)r->klen + r->vlen;
    if (m->n_outs == 0 ||
        (m->outs[m->n_outs - 1].f->size > BC_FILE_HDR &&
         m->outs[m->n_outs - 1].f->size + len > b->opts.max_file_size)) {
        rc = m->n_outs ? out_flush(b, &m->outs[m->n_outs - 1]) : RK_OK;
        if (rc == RK_OK) {
            rc = out_open(b, m);
        }
        if (rc != RK_OK) {
            return rc;
        }
    }
    struct bc_merge_out *o = &m->outs[m->n_outs - 1];
    *out_idx = (uint32_t)(m->n_outs - 1);
    *off = (uint32_t)o->f->size;
    rc = hint_add(&o->hint, o->f->size, r);
    if (rc == RK_OK) {
        rc = out_copy(&o->wbuf, version, p, in_len, r, &len);
    }
    if (rc == RK_OK && o->wbuf.len >= BC_WBUF_CAP) {
        rc = out_flush(b, o);
    }
    o->n_hint++;
    o->f->size += len;
    o->f->total_bytes += len;
    m->bytes_out += len;
    if (r->flags & (BC_FLAG_TOMB | BC_FLAG_CLEAR)) {
        o->tomb_bytes += len;
    }
    return rc;
}

static int push_item(struct bc_merge *m,
                     uint64_t old_loc,
                     uint32_t out,
                     uint32_t off)
{
    if (m->n_items == m->cap_items) {
        size_t cap = m->cap_items ? m->cap_items * 2 : 1024;
        struct bc_merge_item *v = rk_realloc(m->items, cap * sizeof(*v));
        if (v == NULL) {
            return RK_ENOMEM;
        }
        m->items = v;
        m->cap_items = cap;
    }
    m->items[m->n_items++] = (struct bc_merge_item){old_loc, out, off};
    return RK_OK;
}

static int push_expired(struct bc_merge *m, uint64_t loc)
{
    if (m->n_expired == m->cap_expired) {
        size_t cap = m->cap_expired ? m->cap_expired * 2 : 256;
        uint64_t *v = rk_realloc(m->expired, cap * sizeof(*v));
        if (v == NULL) {
            return RK_ENOMEM;
        }
        m->expired = v;
        m->cap_expired = cap;
    }
    m->expired[m->n_expired++] = loc;
    return RK_OK;
}

static int merge_input(struct bitcask *b, struct bc_merge *m, size_t i)
{
    struct bc_file *f = m->inputs[i];
    uint64_t off = BC_FILE_HDR;
    int rc = RK_OK;
    while (rc == RK_OK && off < f->size) {
        if (__atomic_load_n(&b->bg_cancel, __ATOMIC_RELAXED)) {
            return RK_ECLOSED;
        }
        struct bc_rec r;
        size_t len;
        const unsigned char *p = f->map + off;
        if (bc_rec_parse(f->version, p, f->size - off, STORAGE_MAX_KEY_LIMIT,
                         STORAGE_MAX_VALUE_LIMIT, &r, &len) != RK_OK) {
            /* Only files opened with repair hold bad bytes. */
            off = bc_next_valid(f->version, f->map, f->size, off + 1);
            continue;
        }
        m->bytes_in += len;
        uint64_t loc = bc_loc(f->slot, off);
        uint32_t out, noff;
        if (r.flags & BC_FLAG_CLEAR) {
            if (!m->drop_ok[i]) {
                rc = out_append(b, m, f->version, p, len, &r, &out, &noff);
            }
        } else if (r.flags & BC_FLAG_TOMB) {
            if (!m->drop_ok[i]) {
                pthread_mutex_lock(&b->kd_mu);
                bool present = keydir_find(&b->kd, r.key, r.klen) != 0;
                pthread_mutex_unlock(&b->kd_mu);
                /* A present key has a newer put: the tombstone is moot. */
                if (!present) {
                    rc = out_append(b, m, f->version, p, len, &r, &out, &noff);
                }
            }
        } else {
            pthread_mutex_lock(&b->kd_mu);
            uint32_t h = keydir_find(&b->kd, r.key, r.klen);
            bool live = h != 0 && keydir_loc(&b->kd, h) == loc;
            pthread_mutex_unlock(&b->kd_mu);
            if (live && r.expire_at_ms != 0 && r.expire_at_ms <= m->now_ms &&
                m->drop_ok[i]) {
                rc = push_expired(m, loc);
            } else if (live) {
                rc = out_append(b, m, f->version, p, len, &r, &out, &noff);
                if (rc == RK_OK) {
                    rc = push_item(m, loc, out, noff);
                }
            }
        }
        off += len;
    }
    return rc;
}

/* Step 2 end: every output's data and hint written and synced under their
 * temporary names. */
static int finish_outputs(struct bitcask *b, struct bc_merge *m)
{
    char path[4096];
    int rc = RK_OK;
    for (size_t i = 0; i < m->n_outs && rc == RK_OK; i++) {
        struct bc_merge_out *o = &m->outs[i];
        rc = out_flush(b, o);
        if (rc == RK_OK && b->vfs->fdatasync(b->vfs, o->f->fd) != 0) {
            rc = RK_EIO;
        }
        if (rc == RK_OK) {
            rc = hint_finish(&o->hint, o->n_hint, o->f->size);
        }
        if (rc == RK_OK) {
            bc_path(b, o->f->order, "hint.merging", path, sizeof(path));
            struct rk_vfs *vfs = b->vfs;
            int fd = vfs->open(vfs, path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            rc = fd < 0 ? rk_from_errno(errno)
                        : bc_pwrite_all(vfs, fd, o->hint.base, o->hint.len, 0);
            if (rc == RK_OK && vfs->fdatasync(vfs, fd) != 0) {
                rc = RK_EIO;
            }
            if (fd >= 0) {
                vfs->close(vfs, fd);
            }
        }
        if (rc == RK_OK && __atomic_load_n(&b->bg_cancel, __ATOMIC_RELAXED)) {
            rc = RK_ECLOSED;
        }
    }
    return rc;
}

/* Step 3: rename every output into place, make the renames durable, and
 * map the outputs for reading. */
static int swap_outputs(struct bitcask *b, struct bc_merge *m)
{
    char path[4096], final[4096];
    int rc = RK_OK;
    for (size_t i = 0; i < m->n_outs && rc == RK_OK; i++) {
        struct bc_merge_out *o = &m->outs[i];
        bc_path(b, o->f->order, "data.merging", path, sizeof(path));
        bc_path(b, o->f->order, "data", final, sizeof(final));
        if (b->vfs->rename(b->vfs, path, final) != 0) {
            rc = RK_EIO;
            break;
        }
        bc_path(b, o->f->order, "hint.merging", path, sizeof(path));
        bc_path(b, o->f->order, "hint", final, sizeof(final));
        if (b->vfs->rename(b->vfs, path, final) != 0) {
            rc = RK_EIO;
        }
    }
    if (rc == RK_OK && m->n_outs > 0) {
        rc = bc_fsync_dir(b);
    }
    for (size_t i = 0; i < m->n_outs && rc == RK_OK; i++) {
        struct bc_merge_out *o = &m->outs[i];
        rc = bc_map(b, o->f, (size_t)o->f->size);
        b->vfs->close(b->vfs, o->f->fd);
        o->f->fd = -1;
        o->f->has_hint = true;
    }
    return rc;
}

/* Removes whatever a failed or abandoned merge created; the inputs are
 * untouched.  An output already renamed is a valid duplicate: removed too. */
static void discard_outputs(struct bitcask *b, struct bc_merge *m)
{
    static const char *const exts[] = {"data.merging", "hint.merging", "data",
                                       "hint"};
    char path[4096];
    for (size_t i = 0; i < m->n_outs; i++) {
        struct bc_merge_out *o = &m->outs[i];
        for (int k = 0; k < 4; k++) {
            bc_path(b, o->f->order, exts[k], path, sizeof(path));
            b->vfs->unlink(b->vfs, path);
        }
        bc_file_free(b, o->f);
        o->f = NULL;
    }
}

static void run_merge(struct bitcask *b, struct bc_merge *m)
{
    int rc = RK_OK;
    for (size_t i = 0; i < m->n_inputs && rc == RK_OK; i++) {
        rc = merge_input(b, m, i);
    }
    if (rc == RK_OK) {
        rc = finish_outputs(b, m);
    }
    if (rc == RK_OK) {
        rc = swap_outputs(b, m);
    }
    if (rc != RK_OK) {
        discard_outputs(b, m);
        if (rc != RK_ECLOSED) {
            rk_log(RK_LOG_WARN, "bitcask_merge_failed", "dir=%s error=\"%s\"",
                   b->dir, rk_strerror(rc));
        }
    }
    m->rc = rc;
}

/* Immutable files sorted by order (returned-owned, rk_free); *n = count. */
static struct bc_file **sorted_immutable(struct bitcask *b, size_t *n)
{
    *n = 0;
    for (uint32_t i = 0; i < b->n_slots; i++) {
        *n += b->files[i] && b->files[i] != b->active;
    }
    struct bc_file **imm = rk_calloc(*n ? *n : 1, sizeof(*imm));
    if (imm == NULL) {
        return NULL;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < b->n_slots; i++) {
        if (b->files[i] && b->files[i] != b->active) {
            imm[k++] = b->files[i];
        }
    }
    for (size_t i = 1; i < k; i++) { /* insertion sort: few files */
        struct bc_file *f = imm[i];
        size_t j = i;
        while (j > 0 && imm[j - 1]->order > f->order) {
            imm[j] = imm[j - 1];
            j--;
        }
        imm[j] = f;
    }
    return imm;
}

/*
 * Step 1: picks the inputs among the sorted immutable files imm[0..n) and
 * records per input whether its tombstones may be dropped (drop_ok: every
 * older file is an input too).  *dead and *in_bytes sum over the inputs.
 */
static void choose_inputs(const struct bitcask *b,
                          struct bc_merge *m,
                          struct bc_file **imm,
                          size_t n,
                          bool all,
                          uint64_t *dead,
                          uint64_t *in_bytes)
{
    bool prefix = true; /* every file so far is an input */
    for (size_t i = 0; i < n; i++) {
        struct bc_file *f = imm[i];
        bool pick;
        if (all) {
            pick = f->dead_bytes > 0;
        } else {
            double total = (double)(f->total_bytes ? f->total_bytes : 1);
            /* Tombstones only count when this merge can drop them, or a
             * file holding only needed tombstones would merge forever. */
            uint64_t d = prefix ? f->dead_bytes : f->dead_bytes - f->tomb_bytes;
            pick = d > 0 && (double)d / total > b->opts.merge_dead_ratio;
        }
        if (!pick) {
            prefix = false;
            continue;
        }
        m->drop_ok[m->n_inputs] = prefix;
        m->inputs[m->n_inputs++] = f;
        *dead += f->dead_bytes;
        *in_bytes += f->size;
    }
}

/* Reserves output orders in (newest immutable, active), rolling over the
 * active file when the gap is too small for `need` outputs. */
static int reserve_orders(struct bitcask *b,
                          struct bc_merge *m,
                          uint64_t max_imm,
                          uint64_t need)
{
    if (max_imm + need >= b->active->order) {
        int rc = bc_rollover(b, 0);
        if (rc != RK_OK) {
            return rc;
        }
        max_imm = 0;
        for (uint32_t i = 0; i < b->n_slots; i++) {
            struct bc_file *f = b->files[i];
            if (f && f != b->active && f->order > max_imm) {
                max_imm = f->order;
            }
        }
    }
    m->base_order = max_imm + 1;
    m->limit_order = b->active->order;
    return RK_OK;
}

/* Queues a job for the worker (owner; with an executor, submits it unless
 * a job is queued or running: a refusal is retried by engine_tick). */
static void bg_enqueue(struct bitcask *b, struct bc_job *job)
{
    pthread_mutex_lock(&b->bg_mu);
    if (b->jobs_tail) {
        b->jobs_tail->next = job;
    } else {
        b->jobs_head = job;
    }
    b->jobs_tail = job;
    pthread_cond_broadcast(&b->bg_cond);
    pthread_mutex_unlock(&b->bg_mu);
    (void)bc_bg_kick(b);
}

/* Chooses inputs and queues the merge; RK_OK without a merge when there
 * is nothing to do. */
int bc_merge_start(struct bitcask *b, bool all)
{
    if (b->merge != NULL) {
        return RK_EBUSY;
    }
    if (bc_is_failed(b)) {
        return RK_EREADONLY;
    }
    bool any_immutable = false;
    for (uint32_t i = 0; i < b->n_slots && !any_immutable; i++) {
        any_immutable = b->files[i] && b->files[i] != b->active;
    }
    if (!any_immutable) {
        /* only the active file: no input, nothing to merge (engine_tick
         * asks 10 times a second; this answer needs no allocation) */
        return RK_OK;
    }
    size_t n_imm = 0;
    struct bc_file **imm = sorted_immutable(b, &n_imm);
    struct bc_merge *m = rk_calloc(1, sizeof(*m));
    struct bc_job *job = rk_calloc(1, sizeof(*job));
    if (m) {
        m->inputs = rk_calloc(n_imm ? n_imm : 1, sizeof(*m->inputs));
        m->drop_ok = rk_calloc(n_imm ? n_imm : 1, sizeof(*m->drop_ok));
    }
    if (imm == NULL || m == NULL || job == NULL || m->inputs == NULL ||
        m->drop_ok == NULL) {
        rk_free(imm);
        rk_free(job);
        merge_free(b, m);
        return RK_ENOMEM;
    }
    uint64_t dead = 0, in_bytes = 0;
    choose_inputs(b, m, imm, n_imm, all, &dead, &in_bytes);
    uint64_t max_imm = n_imm ? imm[n_imm - 1]->order : 0;
    rk_free(imm);
    int rc = RK_OK;
    if (m->n_inputs == 0 || (!all && dead < b->opts.merge_min_dead_bytes)) {
        rc = RK_ENOTFOUND; /* nothing to merge */
    } else {
        rc =
            reserve_orders(b, m, max_imm, in_bytes / b->opts.max_file_size + 2);
    }
    if (rc != RK_OK) {
        rk_free(job);
        merge_free(b, m);
        return rc == RK_ENOTFOUND ? RK_OK : rc;
    }
    m->now_ms = storage__wall_ms(b->env);
    job->merge = m;
    for (size_t i = 0; i < m->n_inputs; i++) {
        m->inputs[i]->merge_input = true;
    }
    b->kd_locking = true; /* published to the worker through bg_mu */
    b->merge = m;
    pthread_mutex_lock(&b->bg_mu);
    b->merge_finished = false;
    pthread_mutex_unlock(&b->bg_mu);
    bg_enqueue(b, job);
    rk_log(RK_LOG_INFO, "bitcask_merge_started",
           "dir=%s inputs=%zu dead_bytes=%" PRIu64, b->dir, m->n_inputs, dead);
    return RK_OK;
}

/*
 * Step 4 end: deletes merged inputs, oldest first.  A record the worker
 * skipped as dead may have been superseded by a write still unsynced in
 * the active file, so that file is made durable first: deleting the old
 * version before would let a crash lose both (found by test_crashpoints).
 * If the sync fails the engine is read-only and the inputs stay on disk as
 * harmless older duplicates.  Thread: worker, or owner when the worker has
 * stopped.
 */
static void delete_inputs(struct bitcask *b,
                          const uint64_t *orders,
                          size_t n,
                          bool on_worker)
{
    int rc = bc_is_failed(b) ? RK_EREADONLY
             : on_worker     ? bc_sync_from_worker(b)
                             : bc_sync_now(b);
    if (rc != RK_OK) {
        rk_log(RK_LOG_WARN, "bitcask_merge_inputs_kept", "dir=%s files=%zu",
               b->dir, n);
        return;
    }
    char path[4096];
    for (size_t i = 0; i < n; i++) {
        bc_path(b, orders[i], "data", path, sizeof(path));
        b->vfs->unlink(b->vfs, path);
        bc_path(b, orders[i], "hint", path, sizeof(path));
        b->vfs->unlink(b->vfs, path);
    }
    bc_fsync_dir(b);
}

static void merge_apply(struct bitcask *b, struct bc_merge *m)
{
    for (size_t i = 0; i < m->n_outs; i++) {
        struct bc_merge_out *o = &m->outs[i];
        if (bc_slot_add(b, o->f) != RK_OK) {
            /* Cannot track the outputs: stop writing rather than risk
             * reusing their orders; data stays consistent on disk. */
            bc_set_failed(b, RK_ENOMEM);
            for (size_t j = i; j < m->n_outs; j++) {
                bc_file_free(b, m->outs[j].f);
                m->outs[j].f = NULL;
            }
            for (size_t j = 0; j < i; j++) {
                m->outs[j].f = NULL; /* owned by files[] now */
            }
            return;
        }
        o->f->dead_bytes = o->tomb_bytes;
        o->f->tomb_bytes = o->tomb_bytes;
    }
    for (size_t i = 0; i < m->n_items; i++) {
        struct bc_merge_item *it = &m->items[i];
        struct bc_file *of = m->outs[it->out].f;
        const unsigned char *p = of->map + it->new_off;
        uint32_t klen = rk_get_le32(p + 20);
        uint32_t vlen = rk_get_le32(p + 24);
        uint32_t h = keydir_find(&b->kd, p + BC_REC_HDR, klen);
        if (h != 0 && keydir_loc(&b->kd, h) == it->old_loc) {
            keydir_set_loc(&b->kd, h, bc_loc(of->slot, it->new_off));
        } else {
            of->dead_bytes += BC_REC_HDR + klen + vlen;
        }
    }
    for (size_t i = 0; i < m->n_expired; i++) {
        uint64_t loc = m->expired[i];
        struct bc_file *f = b->files[loc >> 32];
        const unsigned char *p = f->map + (uint32_t)loc;
        uint32_t klen = rk_get_le32(p + 20);
        const unsigned char *key = p + bc_rec_hdr_len(f->version);
        uint32_t h = keydir_find(&b->kd, key, klen);
        if (h != 0 && keydir_loc(&b->kd, h) == loc) {
            keydir_del(&b->kd, key, klen, NULL);
        }
    }
    for (size_t i = 0; i < m->n_outs; i++) {
        m->outs[i].f = NULL; /* owned by files[] now */
    }
    /* The inputs are deleted by the worker (no fdatasync or unlink on the
     * owner thread), or here if the worker is already stopped (close). */
    uint64_t *orders =
        rk_calloc(m->n_inputs ? m->n_inputs : 1, sizeof(uint64_t));
    for (size_t i = 0; i < m->n_inputs; i++) {
        if (orders) {
            orders[i] = m->inputs[i]->order;
        }
        bc_file_free(b, m->inputs[i]);
    }
    struct bc_job *job = orders && b->bg_started && !b->bg_stop
                             ? rk_calloc(1, sizeof(*job))
                             : NULL;
    if (job) {
        job->del_orders = orders;
        job->n_del = m->n_inputs;
        bg_enqueue(b, job);
    } else if (orders) {
        delete_inputs(b, orders, m->n_inputs, false);
        rk_free(orders);
    }
    /* (orders == NULL: out of memory; the inputs stay on disk as older
     * duplicates, which recovery and the next merge handle.) */
    b->merges_done++;
    rk_log(RK_LOG_INFO, "bitcask_merge_done",
           "dir=%s inputs=%zu outputs=%zu bytes_in=%" PRIu64
           " bytes_out=%" PRIu64 " expired_dropped=%zu",
           b->dir, m->n_inputs, m->n_outs, m->bytes_in, m->bytes_out,
           m->n_expired);
}

int bc_merge_poll(struct bitcask *b, bool wait)
{
    struct bc_merge *m = b->merge;
    if (m == NULL) {
        return RK_OK;
    }
    pthread_mutex_lock(&b->bg_mu);
    if (wait && !b->merge_finished && b->bg_ex != NULL && b->bg_started) {
        bg_help_locked(b); /* runs the merge here unless it is running */
    }
    while (wait && !b->merge_finished) {
        pthread_cond_wait(&b->bg_cond, &b->bg_mu);
    }
    bool done = b->merge_finished;
    pthread_mutex_unlock(&b->bg_mu);
    if (!done) {
        return RK_OK;
    }
    b->merge = NULL;
    b->merge_finished = false;
    b->kd_locking = false;
    for (size_t i = 0; i < m->n_inputs; i++) {
        m->inputs[i]->merge_input = false;
    }
    if (m->rc == RK_OK) {
        merge_apply(b, m);
    }
    merge_free(b, m);
    return RK_OK;
}

/* ---------------------------------------------------------------- */
/*
 * The worker: a thread (opts.bg_executor NULL, bg_main) or executor jobs
 * (bg_job), both running the queue jobs_head..jobs_tail in order.  States
 * of b->bg_job, under bg_mu, with an executor:
 *
 *   IDLE --[bc_bg_kick: work queued, submit]--> QUEUED
 *   QUEUED --[bg_job starts]--> RUNNING --[queue empty]--> IDLE
 *   QUEUED --[bg_help_locked: cancel OK; or submit refused]--> IDLE
 *
 * At most one job is QUEUED or RUNNING; the owner runs the queue itself
 * (bg_help_locked) when it must wait for it.
 */

static void bg_job(void *data);

/* With bg_mu held: pops the first queued job and runs it, dropping bg_mu
 * meanwhile.  Thread: worker, or owner in bg_help_locked. */
static void bg_run_one_locked(struct bitcask *b)
{
    struct bc_job *job = b->jobs_head;
    b->jobs_head = job->next;
    if (b->jobs_head == NULL) {
        b->jobs_tail = NULL;
    }
    b->bg_busy = true;
    pthread_mutex_unlock(&b->bg_mu);
    if (job->file) {
        /* the data before its hint (bitcask_sync.c invariant 3) */
        pthread_mutex_lock(&b->wb_mu);
        bool ok = b->old_file != job->file || bc_sync_old_locked(b);
        pthread_mutex_unlock(&b->wb_mu);
        if (ok) {
            write_hint(b, job->file);
        }
    } else if (job->merge) {
        run_merge(b, job->merge);
    } else {
        delete_inputs(b, job->del_orders, job->n_del, true);
    }
    pthread_mutex_lock(&b->bg_mu);
    b->bg_busy = false;
    if (job->merge) {
        b->merge_finished = true;
    }
    pthread_cond_broadcast(&b->bg_cond);
    rk_free(job->del_orders);
    rk_free(job);
}

static void *bg_main(void *arg)
{
    struct bitcask *b = arg;
    pthread_mutex_lock(&b->bg_mu);
    for (;;) {
        while (!b->bg_stop && b->jobs_head == NULL) {
            pthread_cond_wait(&b->bg_cond, &b->bg_mu);
        }
        if (b->bg_stop) {
            break;
        }
        bg_run_one_locked(b);
    }
    pthread_mutex_unlock(&b->bg_mu);
    return NULL;
}

/* The bg executor's job: runs the queue until it is empty.  Thread: the
 * executor's (a simulator: inline, between owner calls). */
static void bg_job(void *data)
{
    struct bitcask *b = data;
    pthread_mutex_lock(&b->bg_mu);
    b->bg_job = BC_JOB_RUNNING;
    while (b->jobs_head != NULL) {
        bg_run_one_locked(b);
    }
    /* The job's last touch of b: once IDLE, engine_close may free it. */
    b->bg_job = BC_JOB_IDLE;
    pthread_cond_broadcast(&b->bg_cond);
    pthread_mutex_unlock(&b->bg_mu);
}

/*
 * Owner, with a bg executor and bg_mu held: returns once the queue is empty
 * and no job is queued or running.  A queued job is withdrawn and the queue
 * run here, so an executor that runs jobs inline (or never, after a
 * simulated crash) does not leave the owner waiting; a running job is
 * waited for (it empties the queue).
 */
static void bg_help_locked(struct bitcask *b)
{
    for (;;) {
        bc_job_settle(b->bg_ex, bg_job, b, &b->bg_job, &b->bg_mu, &b->bg_cond);
        if (b->jobs_head == NULL) {
            break;
        }
        bg_run_one_locked(b);
    }
}

int bc_bg_kick(struct bitcask *b)
{
    if (b->bg_ex == NULL) {
        return RK_OK;
    }
    pthread_mutex_lock(&b->bg_mu);
    bool go = b->bg_started && !b->bg_stop && b->bg_job == BC_JOB_IDLE &&
              b->jobs_head != NULL;
    if (go) {
        b->bg_job = BC_JOB_QUEUED;
    }
    pthread_mutex_unlock(&b->bg_mu);
    if (!go) {
        return RK_OK;
    }
    int rc = b->bg_ex->submit(b->bg_ex, bg_job, b);
    if (rc != RK_OK) {
        pthread_mutex_lock(&b->bg_mu);
        b->bg_job = BC_JOB_IDLE;
        pthread_cond_broadcast(&b->bg_cond);
        pthread_mutex_unlock(&b->bg_mu);
    }
    return rc;
}

int bc_bg_start(struct bitcask *b)
{
    if (b->bg_ex != NULL) {
        pthread_mutex_lock(&b->bg_mu);
        b->bg_started = true;
        pthread_mutex_unlock(&b->bg_mu);
        (void)bc_bg_kick(b); /* refused: engine_tick submits again */
        return RK_OK;
    }
    if (pthread_create(&b->bg_thread, NULL, bg_main, b) != 0) {
        return RK_ENOMEM;
    }
    b->bg_started = true;
    return RK_OK;
}

/* Waits (bg_mu held) until no background job is queued or running: an
 * executor's queued job is withdrawn and run here, the worker thread's
 * queue is waited for. */
static void bg_idle_locked(struct bitcask *b)
{
    if (b->bg_ex != NULL) {
        if (b->bg_started) {
            bg_help_locked(b);
        }
    } else {
        while (b->bg_started && (b->jobs_head != NULL || b->bg_busy)) {
            pthread_cond_wait(&b->bg_cond, &b->bg_mu);
        }
    }
}

void bc_bg_stop(struct bitcask *b)
{
    pthread_mutex_lock(&b->bg_mu);
    /* A merge is abandoned (safely: inputs untouched); queued hint files
     * are still written so the next open can use them. */
    __atomic_store_n(&b->bg_cancel, 1, __ATOMIC_RELAXED);
    bg_idle_locked(b);
    b->bg_stop = true;
    pthread_cond_broadcast(&b->bg_cond);
    pthread_mutex_unlock(&b->bg_mu);
    if (b->bg_ex == NULL && b->bg_started) {
        pthread_join(b->bg_thread, NULL);
    }
    b->bg_started = false;
    /* Jobs never started: hints are optional; a queued merge is void. */
    struct bc_job *j = b->jobs_head;
    while (j) {
        struct bc_job *next = j->next;
        if (j->merge) {
            j->merge->rc = RK_ECLOSED;
            b->merge_finished = true;
        }
        rk_free(j->del_orders);
        rk_free(j);
        j = next;
    }
    b->jobs_head = b->jobs_tail = NULL;
}

void bc_bg_wait_idle(struct bitcask *b)
{
    pthread_mutex_lock(&b->bg_mu);
    bg_idle_locked(b);
    pthread_mutex_unlock(&b->bg_mu);
}

int bc_bg_enqueue_hint(struct bitcask *b, struct bc_file *f)
{
    struct bc_job *job = rk_calloc(1, sizeof(*job));
    if (job == NULL) {
        return RK_ENOMEM; /* no hint: the next open scans the file */
    }
    job->file = f;
    f->has_hint = true;
    bg_enqueue(b, job);
    return RK_OK;
}
