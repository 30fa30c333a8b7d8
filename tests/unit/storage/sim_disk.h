/*
 * sim_disk.h - an in-memory disk behind a struct rk_vfs (storage/vfs.h),
 * one per simulated node, with power-loss semantics after SQLite's
 * src/test6.c (TESTING.md A3, B2.3).  Header-only (static), for the
 * storage unit tests; the cluster simulator (tests/sim) can take it over.
 *
 * Model:
 *  - Files are inodes holding their current bytes and their durable image
 *    (the bytes at the last fdatasync/fsync of the file), plus the log of
 *    changes (writes, truncations) made since.  Directories are paths;
 *    mkdir is durable at once (bitcask creates its directory only once).
 *  - Names (path -> inode) have a current and a durable table; fsync of a
 *    directory makes the current one durable.  Creations, renames and
 *    unlinks since are logged in order.
 *  - A power loss (sim_disk_after_crash) builds a new disk from the old one
 *    without changing it, so one pre-crash state gives several outcomes:
 *    the durable names plus a prefix of the logged directory changes (a
 *    journaling file system keeps metadata in order), and for each file its
 *    durable image plus the logged changes chosen by the model:
 *      SIM_CRASH_DROP    every unsynced change is lost;
 *      SIM_CRASH_PREFIX  a random prefix of them is kept and the change
 *                        after it torn at a random byte (SEQUENTIAL in
 *                        test6.c terms);
 *      SIM_CRASH_RANDOM  each one independently kept, dropped or trashed
 *                        (its bytes replaced with garbage): no guarantees.
 *  - Faults: `fail_at` makes the Nth persistence point fail with EIO;
 *    `crash_at` kills the disk at the Nth persistence point: that call and
 *    every later one fail with EIO (close and unmap succeed), as a machine
 *    that lost power would.  Persistence points are fdatasync, fsync,
 *    rename and unlink (CrashMonkey: crash bugs follow these).  `full`
 *    is a full disk: a pwrite that would grow a file writes half of what
 *    it was asked (short writes, as when the last blocks run out), down to
 *    nothing, then fails with ENOSPC (issue 12 item 3).
 *  - map returns a pointer into the inode's buffer, so a view sees later
 *    writes (MAP_SHARED).  A buffer never moves while mapped: it is sized
 *    for the largest view when mapped, and a write past it aborts the test.
 *
 * Thread: every call takes the disk's mutex, so engines with threads may
 * use it.  Views are read without it, as with mmap.
 */
#ifndef RINGKV_TESTS_SIM_DISK_H
#define RINGKV_TESTS_SIM_DISK_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/vfs.h"

enum sim_crash_model
{
    SIM_CRASH_DROP,
    SIM_CRASH_PREFIX,
    SIM_CRASH_RANDOM,
};

#define SIM_MAX_FDS   256
#define SIM_MAX_NAMES 512
#define SIM_MAX_DIRS  16

enum sim_chg_kind
{
    SIM_CHG_WRITE,
    SIM_CHG_TRUNC,
};

struct sim_chg /* one unsynced change of a file */
{
    enum sim_chg_kind kind;
    uint64_t off;       /* write: offset; trunc: new length */
    size_t len;         /* write: bytes */
    unsigned char *buf; /* write: a copy of the bytes (owned) */
};

struct sim_inode
{
    unsigned char *buf; /* current bytes */
    size_t len, cap;
    unsigned char *dur; /* durable image */
    size_t dur_len;
    struct sim_chg *log; /* changes since the last sync, in order */
    size_t n_log, cap_log;
    int maps;    /* live views (buf must not move) */
    int lock_fd; /* fd holding the lock, or -1 */
    struct sim_inode *next_all;
};

struct sim_name
{
    char path[256];
    struct sim_inode *ino;
};

enum sim_dirop_kind
{
    SIM_DIR_CREATE,
    SIM_DIR_RENAME,
    SIM_DIR_UNLINK,
};

struct sim_dirop
{
    enum sim_dirop_kind kind;
    char a[256], b[256]; /* create/unlink: a; rename: a -> b */
    struct sim_inode *ino;
};

struct sim_fd
{
    bool used;
    bool is_dir;
    struct sim_inode *ino;
};

struct sim_disk
{
    struct rk_vfs vfs; /* data = this disk */
    pthread_mutex_t mu;
    struct sim_inode *all; /* every inode, for freeing */
    struct sim_name names[SIM_MAX_NAMES];
    size_t n_names;
    struct sim_name dur_names[SIM_MAX_NAMES];
    size_t n_dur_names;
    struct sim_dirop *dirlog;
    size_t n_dirlog, cap_dirlog;
    char dirs[SIM_MAX_DIRS][256];
    size_t n_dirs;
    struct sim_fd fds[SIM_MAX_FDS];
    /* Faults and counters. */
    long points;   /* persistence points so far */
    long fail_at;  /* fail this point with EIO (0: never) */
    bool full;     /* a full disk: growing writes fail with ENOSPC */
    long crash_at; /* die at this point (0: never) */
    bool dead;     /* crashed: every call fails */
    long syncs;    /* fdatasync + fsync calls that succeeded */
};

static inline struct sim_disk *sim__disk(struct rk_vfs *vfs)
{
    return (struct sim_disk *)vfs->data;
}

/* memcpy that accepts NULL pointers when n is 0. */
static inline void sim__copy(void *dst, const void *src, size_t n)
{
    if (n > 0) {
        memcpy(dst, src, n);
    }
}

static inline void *sim__xalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (p == NULL) {
        abort();
    }
    return p;
}

static inline void *sim__xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        abort();
    }
    return q;
}

static inline struct sim_inode *sim__inode_new(struct sim_disk *d)
{
    struct sim_inode *ino = sim__xalloc(sizeof(*ino));
    ino->lock_fd = -1;
    ino->next_all = d->all;
    d->all = ino;
    return ino;
}

/* Makes room for `len` bytes; never moves a mapped buffer. */
static inline void sim__reserve(struct sim_inode *ino, size_t len)
{
    if (len <= ino->cap) {
        return;
    }
    if (ino->maps > 0) {
        fprintf(stderr, "sim_disk: write past a mapped buffer\n");
        abort();
    }
    size_t cap = ino->cap ? ino->cap : 4096;
    while (cap < len) {
        cap *= 2;
    }
    ino->buf = sim__xrealloc(ino->buf, cap);
    memset(ino->buf + ino->cap, 0, cap - ino->cap);
    ino->cap = cap;
}

static inline void sim__set_len(struct sim_inode *ino, size_t len)
{
    sim__reserve(ino, len);
    if (len < ino->len) {
        memset(ino->buf + len, 0, ino->len - len);
    }
    ino->len = len;
}

static inline void sim__log(struct sim_inode *ino, struct sim_chg c)
{
    if (ino->n_log == ino->cap_log) {
        ino->cap_log = ino->cap_log ? ino->cap_log * 2 : 16;
        ino->log = sim__xrealloc(ino->log, ino->cap_log * sizeof(*ino->log));
    }
    ino->log[ino->n_log++] = c;
}

static inline void sim__log_clear(struct sim_inode *ino)
{
    for (size_t i = 0; i < ino->n_log; i++) {
        free(ino->log[i].buf);
    }
    ino->n_log = 0;
}

static inline void sim__dirlog(struct sim_disk *d,
                               enum sim_dirop_kind kind,
                               const char *a,
                               const char *b,
                               struct sim_inode *ino)
{
    if (d->n_dirlog == d->cap_dirlog) {
        d->cap_dirlog = d->cap_dirlog ? d->cap_dirlog * 2 : 16;
        d->dirlog =
            sim__xrealloc(d->dirlog, d->cap_dirlog * sizeof(*d->dirlog));
    }
    struct sim_dirop *op = &d->dirlog[d->n_dirlog++];
    op->kind = kind;
    snprintf(op->a, sizeof(op->a), "%s", a);
    snprintf(op->b, sizeof(op->b), "%s", b ? b : "");
    op->ino = ino;
}

static inline struct sim_name *sim__find(struct sim_name *v,
                                         size_t n,
                                         const char *path)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].path, path) == 0) {
            return &v[i];
        }
    }
    return NULL;
}

static inline void sim__name_del(struct sim_name *v, size_t *n, const char *p)
{
    struct sim_name *e = sim__find(v, *n, p);
    if (e) {
        *e = v[--*n];
    }
}

static inline void sim__name_set(struct sim_name *v,
                                 size_t *n,
                                 const char *path,
                                 struct sim_inode *ino)
{
    struct sim_name *e = sim__find(v, *n, path);
    if (e == NULL) {
        if (*n == SIM_MAX_NAMES) {
            abort();
        }
        e = &v[(*n)++];
        snprintf(e->path, sizeof(e->path), "%s", path);
    }
    e->ino = ino;
}

static inline bool sim__is_dir(const struct sim_disk *d, const char *path)
{
    for (size_t i = 0; i < d->n_dirs; i++) {
        if (strcmp(d->dirs[i], path) == 0) {
            return true;
        }
    }
    return false;
}

/* The directory part of `path` exists. */
static inline bool sim__parent_ok(const struct sim_disk *d, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return false;
    }
    char dir[256];
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    return sim__is_dir(d, dir);
}

/* Counts a persistence point; false (errno EIO) if it fails or kills. */
static inline bool sim__point(struct sim_disk *d)
{
    d->points++;
    if (d->crash_at != 0 && d->points == d->crash_at) {
        d->dead = true;
    }
    if (d->dead || (d->fail_at != 0 && d->points == d->fail_at)) {
        errno = EIO;
        return false;
    }
    return true;
}

#define SIM_ENTER(d)                    \
    pthread_mutex_lock(&(d)->mu);       \
    if ((d)->dead) {                    \
        pthread_mutex_unlock(&(d)->mu); \
        errno = EIO;                    \
        return -1;                      \
    }

static inline struct sim_fd *sim__fd(struct sim_disk *d, int fd)
{
    if (fd < 0 || fd >= SIM_MAX_FDS || !d->fds[fd].used) {
        return NULL;
    }
    return &d->fds[fd];
}

static int sim_open(struct rk_vfs *vfs, const char *path, int flags, mode_t m)
{
    (void)m;
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    int rc = -1;
    int slot = -1;
    for (int i = 0; i < SIM_MAX_FDS; i++) {
        if (!d->fds[i].used) {
            slot = i;
            break;
        }
    }
    if (slot < 0) {
        errno = EMFILE;
        goto out;
    }
    if (flags & O_DIRECTORY) {
        if (!sim__is_dir(d, path)) {
            errno = ENOENT;
            goto out;
        }
        d->fds[slot] = (struct sim_fd){.used = true, .is_dir = true};
        rc = slot;
        goto out;
    }
    struct sim_name *e = sim__find(d->names, d->n_names, path);
    if (e == NULL) {
        if (!(flags & O_CREAT) || !sim__parent_ok(d, path)) {
            errno = ENOENT;
            goto out;
        }
        struct sim_inode *ino = sim__inode_new(d);
        sim__name_set(d->names, &d->n_names, path, ino);
        sim__dirlog(d, SIM_DIR_CREATE, path, NULL, ino);
        e = sim__find(d->names, d->n_names, path);
    } else if ((flags & O_TRUNC) && e->ino->len > 0) {
        sim__set_len(e->ino, 0);
        sim__log(e->ino, (struct sim_chg){.kind = SIM_CHG_TRUNC, .off = 0});
    }
    d->fds[slot] = (struct sim_fd){.used = true, .ino = e->ino};
    rc = slot;
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_close(struct rk_vfs *vfs, int fd)
{
    struct sim_disk *d = sim__disk(vfs);
    pthread_mutex_lock(&d->mu);
    struct sim_fd *f = sim__fd(d, fd);
    int rc = 0;
    if (f == NULL) {
        errno = EBADF;
        rc = -1;
    } else {
        if (f->ino && f->ino->lock_fd == fd) {
            f->ino->lock_fd = -1;
        }
        f->used = false;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static ssize_t sim_pread(struct rk_vfs *vfs,
                         int fd,
                         void *buf,
                         size_t n,
                         uint64_t off)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    struct sim_fd *f = sim__fd(d, fd);
    ssize_t rc = -1;
    if (f == NULL || f->is_dir) {
        errno = EBADF;
    } else {
        size_t len = f->ino->len;
        size_t got = off >= len ? 0 : (len - off < n ? len - off : n);
        sim__copy(buf, f->ino->buf + off, got);
        rc = (ssize_t)got;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static ssize_t sim_pwrite(struct rk_vfs *vfs,
                          int fd,
                          const void *buf,
                          size_t n,
                          uint64_t off)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    struct sim_fd *f = sim__fd(d, fd);
    ssize_t rc = -1;
    if (f == NULL || f->is_dir) {
        errno = EBADF;
    } else {
        struct sim_inode *ino = f->ino;
        if (d->full && off + n > ino->len) {
            /* short writes of half the request, then ENOSPC: the failed
             * write leaves a torn tail */
            n = off < ino->len ? ino->len - off : n / 2;
            if (n == 0) {
                errno = ENOSPC;
                pthread_mutex_unlock(&d->mu);
                return -1;
            }
        }
        if (off + n > ino->len) {
            sim__set_len(ino, off + n);
        }
        sim__copy(ino->buf + off, buf, n);
        unsigned char *copy = sim__xalloc(n);
        sim__copy(copy, buf, n);
        sim__log(ino,
                 (struct sim_chg){
                     .kind = SIM_CHG_WRITE, .off = off, .len = n, .buf = copy});
        rc = (ssize_t)n;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* fdatasync and fsync: a file's bytes, or a directory's names. */
static int sim_sync(struct rk_vfs *vfs, int fd)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    struct sim_fd *f = sim__fd(d, fd);
    int rc = -1;
    if (f == NULL) {
        errno = EBADF;
    } else if (sim__point(d)) {
        if (f->is_dir) {
            sim__copy(d->dur_names, d->names, d->n_names * sizeof(d->names[0]));
            d->n_dur_names = d->n_names;
            d->n_dirlog = 0;
        } else {
            struct sim_inode *ino = f->ino;
            ino->dur = sim__xrealloc(ino->dur, ino->len);
            sim__copy(ino->dur, ino->buf, ino->len);
            ino->dur_len = ino->len;
            sim__log_clear(ino);
        }
        d->syncs++;
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_ftruncate(struct rk_vfs *vfs, int fd, uint64_t len)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    struct sim_fd *f = sim__fd(d, fd);
    int rc = -1;
    if (f == NULL || f->is_dir) {
        errno = EBADF;
    } else {
        sim__set_len(f->ino, (size_t)len);
        sim__log(f->ino, (struct sim_chg){.kind = SIM_CHG_TRUNC, .off = len});
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_file_size(struct rk_vfs *vfs, int fd, uint64_t *size)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    struct sim_fd *f = sim__fd(d, fd);
    int rc = -1;
    if (f == NULL || f->is_dir) {
        errno = EBADF;
    } else {
        *size = f->ino->len;
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_map(struct rk_vfs *vfs, int fd, size_t len, const void **out)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    struct sim_fd *f = sim__fd(d, fd);
    int rc = -1;
    if (f == NULL || f->is_dir || len == 0) {
        errno = f ? EINVAL : EBADF;
    } else {
        sim__reserve(f->ino, len);
        f->ino->maps++;
        *out = f->ino->buf;
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_unmap(struct rk_vfs *vfs, const void *p, size_t len)
{
    (void)len;
    struct sim_disk *d = sim__disk(vfs);
    pthread_mutex_lock(&d->mu);
    for (struct sim_inode *ino = d->all; ino; ino = ino->next_all) {
        if (ino->buf == p && ino->maps > 0) {
            ino->maps--;
            break;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return 0;
}

static int sim_rename(struct rk_vfs *vfs, const char *from, const char *to)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    int rc = -1;
    struct sim_name *e = sim__find(d->names, d->n_names, from);
    if (e == NULL) {
        errno = ENOENT;
    } else if (sim__point(d)) {
        struct sim_inode *ino = e->ino;
        sim__name_del(d->names, &d->n_names, from);
        sim__name_set(d->names, &d->n_names, to, ino);
        sim__dirlog(d, SIM_DIR_RENAME, from, to, ino);
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_unlink(struct rk_vfs *vfs, const char *path)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    int rc = -1;
    if (sim__find(d->names, d->n_names, path) == NULL) {
        errno = ENOENT;
    } else if (sim__point(d)) {
        sim__name_del(d->names, &d->n_names, path);
        sim__dirlog(d, SIM_DIR_UNLINK, path, NULL, NULL);
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_mkdir(struct rk_vfs *vfs, const char *path, mode_t mode)
{
    (void)mode;
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    int rc = -1;
    if (sim__is_dir(d, path)) {
        errno = EEXIST;
    } else if (d->n_dirs == SIM_MAX_DIRS) {
        errno = ENOSPC;
    } else {
        snprintf(d->dirs[d->n_dirs++], sizeof(d->dirs[0]), "%s", path);
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_list(struct rk_vfs *vfs,
                    const char *dir,
                    rk_vfs_name_cb cb,
                    void *cb_data)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    if (!sim__is_dir(d, dir)) {
        pthread_mutex_unlock(&d->mu);
        errno = ENOENT;
        return -1;
    }
    /* Copied first: cb runs without the lock. */
    size_t n = 0, dl = strlen(dir);
    char(*found)[256] = sim__xalloc(d->n_names * 256 + 1);
    for (size_t i = 0; i < d->n_names; i++) {
        const char *p = d->names[i].path;
        if (strncmp(p, dir, dl) == 0 && p[dl] == '/' &&
            strchr(p + dl + 1, '/') == NULL) {
            snprintf(found[n++], 256, "%s", p + dl + 1);
        }
    }
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < n && cb(cb_data, found[i]); i++) {
    }
    free(found);
    return 0;
}

static int sim_lock(struct rk_vfs *vfs, int fd)
{
    struct sim_disk *d = sim__disk(vfs);
    SIM_ENTER(d);
    struct sim_fd *f = sim__fd(d, fd);
    int rc = -1;
    if (f == NULL || f->is_dir) {
        errno = EBADF;
    } else if (f->ino->lock_fd >= 0 && f->ino->lock_fd != fd) {
        errno = EWOULDBLOCK;
    } else {
        f->ino->lock_fd = fd;
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* An empty disk holding one directory, "/sim" (data dirs go below it). */
static inline struct sim_disk *sim_disk_create(void)
{
    struct sim_disk *d = sim__xalloc(sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    d->vfs = (struct rk_vfs){
        .open = sim_open,
        .close = sim_close,
        .pread = sim_pread,
        .pwrite = sim_pwrite,
        .pwritev = NULL,
        .fdatasync = sim_sync,
        .fsync = sim_sync,
        .ftruncate = sim_ftruncate,
        .file_size = sim_file_size,
        .map = sim_map,
        .unmap = sim_unmap,
        .rename = sim_rename,
        .unlink = sim_unlink,
        .mkdir = sim_mkdir,
        .list = sim_list,
        .lock = sim_lock,
        .data = d,
    };
    snprintf(d->dirs[d->n_dirs++], sizeof(d->dirs[0]), "%s", "/sim");
    return d;
}

/* Frees the disk; every engine using it must be closed. */
static inline void sim_disk_destroy(struct sim_disk *d)
{
    if (d == NULL) {
        return;
    }
    struct sim_inode *ino = d->all;
    while (ino) {
        struct sim_inode *next = ino->next_all;
        sim__log_clear(ino);
        free(ino->log);
        free(ino->buf);
        free(ino->dur);
        free(ino);
        ino = next;
    }
    free(d->dirlog);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static inline uint64_t sim__rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The bytes a power loss leaves of `ino` under model m, into `out`. */
static inline void sim__crash_inode(const struct sim_inode *ino,
                                    enum sim_crash_model m,
                                    uint64_t *rng,
                                    struct sim_inode *out)
{
    sim__set_len(out, ino->dur_len);
    sim__copy(out->buf, ino->dur, ino->dur_len);
    size_t keep = 0, torn = ino->n_log;
    if (m == SIM_CRASH_PREFIX) {
        keep = (size_t)(sim__rng(rng) % (ino->n_log + 1));
        torn = keep;
    }
    for (size_t i = 0; i < ino->n_log; i++) {
        const struct sim_chg *c = &ino->log[i];
        size_t n = c->len;
        bool trash = false;
        if (m == SIM_CRASH_DROP || (m == SIM_CRASH_PREFIX && i > torn)) {
            break;
        }
        if (m == SIM_CRASH_PREFIX && i == torn) {
            if (c->kind != SIM_CHG_WRITE) {
                break;
            }
            n = (size_t)(sim__rng(rng) % (c->len ? c->len : 1));
        } else if (m == SIM_CRASH_RANDOM) {
            int r = (int)(sim__rng(rng) % 3);
            if (r == 0) {
                continue; /* dropped */
            }
            trash = r == 2 && c->kind == SIM_CHG_WRITE;
        }
        if (c->kind == SIM_CHG_TRUNC) {
            sim__set_len(out, (size_t)c->off);
            continue;
        }
        if (c->off + n > out->len) {
            sim__set_len(out, (size_t)(c->off + n));
        }
        for (size_t j = 0; j < n; j++) {
            out->buf[c->off + j] =
                trash ? (unsigned char)sim__rng(rng) : c->buf[j];
        }
    }
    out->dur = sim__xrealloc(out->dur, out->len);
    sim__copy(out->dur, out->buf, out->len);
    out->dur_len = out->len;
}

/*
 * A new disk with what a power loss at this moment leaves of `d` under
 * model m (seeded by `seed`); `d` is not changed (its engine still holds
 * views into it).  The caller destroys both.
 */
static inline struct sim_disk *sim_disk_after_crash(struct sim_disk *d,
                                                    enum sim_crash_model m,
                                                    uint64_t seed)
{
    pthread_mutex_lock(&d->mu);
    uint64_t rng = seed;
    struct sim_disk *n = sim_disk_create();
    n->n_dirs = d->n_dirs;
    sim__copy(n->dirs, d->dirs, sizeof(d->dirs));
    /* Names: the durable table, then a prefix of the changes since. */
    struct sim_name *names = sim__xalloc(sizeof(d->names));
    size_t n_names = d->n_dur_names;
    sim__copy(names, d->dur_names, n_names * sizeof(names[0]));
    size_t keep =
        m == SIM_CRASH_DROP ? 0 : (size_t)(sim__rng(&rng) % (d->n_dirlog + 1));
    for (size_t i = 0; i < keep; i++) {
        const struct sim_dirop *op = &d->dirlog[i];
        if (op->kind == SIM_DIR_CREATE) {
            sim__name_set(names, &n_names, op->a, op->ino);
        } else if (op->kind == SIM_DIR_RENAME) {
            sim__name_del(names, &n_names, op->a);
            sim__name_set(names, &n_names, op->b, op->ino);
        } else {
            sim__name_del(names, &n_names, op->a);
        }
    }
    /* Files: each surviving inode once, with what the model keeps. */
    for (size_t i = 0; i < n_names; i++) {
        struct sim_inode *copy = NULL;
        for (size_t j = 0; j < i; j++) {
            if (names[j].ino == names[i].ino) {
                copy = sim__find(n->names, n->n_names, names[j].path)->ino;
            }
        }
        if (copy == NULL) {
            copy = sim__inode_new(n);
            sim__crash_inode(names[i].ino, m, &rng, copy);
        }
        sim__name_set(n->names, &n->n_names, names[i].path, copy);
    }
    free(names);
    sim__copy(n->dur_names, n->names, n->n_names * sizeof(n->names[0]));
    n->n_dur_names = n->n_names;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* Bytes of file `path` now (0 if absent). */
static inline size_t sim_disk_file_len(struct sim_disk *d, const char *path)
{
    pthread_mutex_lock(&d->mu);
    struct sim_name *e = sim__find(d->names, d->n_names, path);
    size_t len = e ? e->ino->len : 0;
    pthread_mutex_unlock(&d->mu);
    return len;
}

#endif /* RINGKV_TESTS_SIM_DISK_H */
