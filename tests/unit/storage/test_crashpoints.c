/*
 * test_crashpoints.c - a crash at every durability step (TESTING.md B2.3
 * and B2.6, after SQLite's crash tests): a forked child runs a fixed script
 * (puts, overwrites, deletes, rollovers, syncs, merges, a clear) through
 * a vfs (vfs.h) that kills the process just before its k-th fdatasync,
 * fsync, rename or unlink, for k = 1, 2, ... until the script completes.
 * In the second mode the crash also drops every byte written since the
 * file's last fdatasync (power loss for appended data).  The parent then
 * reopens the directory: every write acknowledged by a successful
 * engine_sync must be there, and every key must hold its value as of the
 * last acknowledgement or of a later step of the script (never an older
 * one: no resurrection through merge or clear).
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "storage/internal.h"
#include "storage_test.h"

#define CP_KEYS  40
#define CP_STEPS 1000
#define CP_MAXFD 4096

/* Script step i: what it does to which key. */
enum cp_op
{
    CP_PUT,
    CP_DEL,
    CP_SYNC,
    CP_MERGE,
    CP_CLEAR,
    CP_TICK
};

/* Variant 0: sync=none, merges forced at fixed steps.  Variant 1:
 * sync=always with automatic background merges started by engine_tick
 * while writes go on (crash points then also fall in the sync thread and
 * the merge worker). */
static int g_variant;

static enum cp_op step_op(int i, int *key)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    *key = (int)(x % CP_KEYS);
    if (i % 37 == 36) {
        return CP_SYNC;
    }
    if (g_variant == 0 && (i == 300 || i == 620 || i == 900)) {
        return CP_MERGE;
    }
    if (g_variant == 1 && i % 20 == 10) {
        return CP_TICK;
    }
    if (i == 500) {
        return CP_CLEAR;
    }
    return (x >> 8) % 4 == 0 ? CP_DEL : CP_PUT;
}

/* ---- child side: the crashing vfs (POSIX underneath) ---- */

/*
 * Files the child wrote, shared with the parent (MAP_SHARED): on a crash
 * in drop mode the parent, once the child is gone, cuts every file back
 * to the length it had at its last fdatasync.  (Cutting in the child
 * would race with its other threads still writing.)
 */
struct cp_file
{
    char path[240];
    int fd;           /* open descriptor in the child, -1 when closed */
    bool live;        /* not unlinked */
    uint64_t written; /* highest byte written */
    uint64_t synced;  /* length at the last fdatasync */
};

struct cp_shared
{
    int n;
    struct cp_file f[512];
};

static struct cp_shared *g_sh;
static pthread_mutex_t g_sh_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_crash_at;
static long g_events;

static struct cp_file *by_fd(int fd)
{
    for (int i = g_sh->n - 1; i >= 0; i--) {
        if (g_sh->f[i].fd == fd) {
            return &g_sh->f[i];
        }
    }
    return NULL;
}

static struct cp_file *by_path(const char *path)
{
    for (int i = g_sh->n - 1; i >= 0; i--) {
        if (g_sh->f[i].live && strcmp(g_sh->f[i].path, path) == 0) {
            return &g_sh->f[i];
        }
    }
    return NULL;
}

static void event(void)
{
    if (__atomic_add_fetch(&g_events, 1, __ATOMIC_SEQ_CST) == g_crash_at) {
        _exit(0);
    }
}

static int cp_open(struct rk_vfs *vfs, const char *path, int flags, mode_t mode)
{
    int fd = rk_vfs_posix()->open(vfs, path, flags, mode);
    if (fd >= 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        pthread_mutex_lock(&g_sh_mu);
        struct cp_file *f = by_path(path);
        if (f == NULL && g_sh->n < 512) {
            f = &g_sh->f[g_sh->n++];
            snprintf(f->path, sizeof(f->path), "%s", path);
            f->live = true;
            f->written = f->synced = end > 0 ? (uint64_t)end : 0;
        }
        if (f) {
            f->fd = fd;
            if ((flags & O_TRUNC) != 0) {
                f->written = f->synced = 0;
            }
        }
        pthread_mutex_unlock(&g_sh_mu);
    }
    return fd;
}

static int cp_close(struct rk_vfs *vfs, int fd)
{
    (void)vfs;
    pthread_mutex_lock(&g_sh_mu);
    struct cp_file *f = by_fd(fd);
    if (f) {
        f->fd = -1;
    }
    pthread_mutex_unlock(&g_sh_mu);
    return close(fd);
}

static ssize_t cp_pwrite(struct rk_vfs *vfs,
                         int fd,
                         const void *p,
                         size_t n,
                         uint64_t off)
{
    (void)vfs;
    ssize_t w = pwrite(fd, p, n, (off_t)off);
    pthread_mutex_lock(&g_sh_mu);
    struct cp_file *f = by_fd(fd);
    if (w > 0 && f && off + (uint64_t)w > f->written) {
        f->written = off + (uint64_t)w;
    }
    pthread_mutex_unlock(&g_sh_mu);
    return w;
}

static int cp_fdatasync(struct rk_vfs *vfs, int fd)
{
    (void)vfs;
    event();
    pthread_mutex_lock(&g_sh_mu);
    struct cp_file *f = by_fd(fd);
    uint64_t w = f ? f->written : 0;
    pthread_mutex_unlock(&g_sh_mu);
    int r = fdatasync(fd);
    pthread_mutex_lock(&g_sh_mu);
    if (r == 0 && f && w > f->synced) {
        f->synced = w;
    }
    pthread_mutex_unlock(&g_sh_mu);
    return r;
}

static int cp_fsync(struct rk_vfs *vfs, int fd)
{
    (void)vfs;
    event();
    return fsync(fd);
}

static int cp_rename(struct rk_vfs *vfs, const char *a, const char *b)
{
    (void)vfs;
    event();
    int r = rename(a, b);
    if (r == 0) {
        pthread_mutex_lock(&g_sh_mu);
        struct cp_file *old = by_path(b);
        if (old) {
            old->live = false;
        }
        struct cp_file *f = by_path(a);
        if (f) {
            snprintf(f->path, sizeof(f->path), "%s", b);
        }
        pthread_mutex_unlock(&g_sh_mu);
    }
    return r;
}

static int cp_unlink(struct rk_vfs *vfs, const char *p)
{
    (void)vfs;
    event();
    int r = unlink(p);
    pthread_mutex_lock(&g_sh_mu);
    struct cp_file *f = by_path(p);
    if (f) {
        f->live = false;
    }
    pthread_mutex_unlock(&g_sh_mu);
    return r;
}

static int cp_ftruncate(struct rk_vfs *vfs, int fd, uint64_t len)
{
    (void)vfs;
    int r = ftruncate(fd, (off_t)len);
    pthread_mutex_lock(&g_sh_mu);
    struct cp_file *f = by_fd(fd);
    if (r == 0 && f) {
        f->written = f->synced = len;
    }
    pthread_mutex_unlock(&g_sh_mu);
    return r;
}

/* Parent, after the child died: power loss for unsynced appended data. */
static void drop_unsynced(void)
{
    for (int i = 0; i < g_sh->n; i++) {
        struct cp_file *f = &g_sh->f[i];
        if (f->live && f->written > f->synced) {
            if (truncate(f->path, (off_t)f->synced) != 0 && errno != ENOENT) {
                fail_msg("truncate %s: %s", f->path, strerror(errno));
            }
        }
    }
}

static struct rk_vfs g_cp_vfs;
static struct rk_vfs *g_vfs; /* the child's crashing vfs; NULL: POSIX */

static void tweak_cp(struct engine_opts *o)
{
    o->vfs = g_vfs;
    o->max_file_size = 4096;
    o->sync_mode = g_variant ? ENGINE_SYNC_ALWAYS : ENGINE_SYNC_NONE;
    o->merge_disabled = g_variant == 0;
    o->merge_dead_ratio = 0.3;
}

/* Runs the script; writes the index of each acknowledged sync to fd. */
static void child_run(const char *dir, int fd)
{
    g_cp_vfs = *rk_vfs_posix();
    g_cp_vfs.open = cp_open;
    g_cp_vfs.pwrite = cp_pwrite;
    g_cp_vfs.pwritev = NULL; /* every write through cp_pwrite */
    g_cp_vfs.fdatasync = cp_fdatasync;
    g_cp_vfs.fsync = cp_fsync;
    g_cp_vfs.rename = cp_rename;
    g_cp_vfs.unlink = cp_unlink;
    g_cp_vfs.ftruncate = cp_ftruncate;
    g_cp_vfs.close = cp_close;
    g_vfs = &g_cp_vfs;
    struct engine *e = st_open("bitcask", dir, tweak_cp);
    if (e == NULL) {
        _exit(3);
    }
    for (int i = 0; i < CP_STEPS; i++) {
        int k;
        enum cp_op op = step_op(i, &k);
        char key[16], val[32];
        int kl = snprintf(key, sizeof(key), "key%02d", k);
        int vl = snprintf(val, sizeof(val), "val-%d-xxxxxxxxxx", i);
        int rc = RK_OK;
        switch (op) {
            case CP_PUT:
                rc =
                    engine_put(e, key, (size_t)kl, val, (size_t)vl, NULL, NULL);
                break;
            case CP_DEL:
                rc = engine_delete(e, key, (size_t)kl, 0, NULL);
                rc = rc == RK_ENOTFOUND ? RK_OK : rc;
                break;
            case CP_SYNC:
                rc = engine_sync(e);
                if (rc == RK_OK && write(fd, &i, sizeof(i)) != sizeof(i)) {
                    _exit(4);
                }
                break;
            case CP_MERGE:
                rc = engine_merge(e, true);
                break;
            case CP_TICK:
                rc = engine_tick(e);
                break;
            case CP_CLEAR:
                rc = engine_clear(e, NULL); /* durable when it returns */
                if (rc == RK_OK && write(fd, &i, sizeof(i)) != sizeof(i)) {
                    _exit(4);
                }
                break;
        }
        if (rc != RK_OK) {
            _exit(5);
        }
    }
    engine_close(e);
    int done = -1;
    if (write(fd, &done, sizeof(done)) != sizeof(done)) {
        _exit(4);
    }
    _exit(0);
}

/* ---- parent side ---- */

/* Value of `k` after steps [0, upto] ("" = absent). */
static void model_at(int upto, int k, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i <= upto; i++) {
        int kk;
        enum cp_op op = step_op(i, &kk);
        if (op == CP_CLEAR) {
            out[0] = '\0';
        } else if (kk == k && op == CP_PUT) {
            snprintf(out, len, "val-%d-xxxxxxxxxx", i);
        } else if (kk == k && op == CP_DEL) {
            out[0] = '\0';
        }
    }
}

/* True when `got` ("" = absent) is k's value at some step >= acked. */
static bool acceptable(int acked, int k, const char *got)
{
    char want[32];
    for (int upto = acked; upto < CP_STEPS; upto++) {
        model_at(upto, k, want, sizeof(want));
        if (strcmp(want, got) == 0) {
            return true;
        }
    }
    return false;
}

static int run_point(const char *dir, long k, bool drop, bool *completed)
{
    st_rmrf(dir);
    g_sh->n = 0;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        g_crash_at = k;
        child_run(dir, fds[1]);
    }
    close(fds[1]);
    int acked = -1, v;
    *completed = false;
    while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
        if (v == -1) {
            *completed = true;
        } else {
            acked = v;
        }
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (drop && !*completed) {
        drop_unsynced();
    }
    struct engine *e = st_open("bitcask", dir, tweak_cp);
    assert_non_null(e);
    int wrong = 0;
    for (int key = 0; key < CP_KEYS; key++) {
        char name[16];
        int kl = snprintf(name, sizeof(name), "key%02d", key);
        struct rk_buf b;
        rk_buf_init(&b);
        int rc = engine_get(e, name, (size_t)kl, &b, NULL);
        char got[64] = "";
        if (rc == RK_OK) {
            snprintf(got, sizeof(got), "%.*s", (int)b.len, b.base);
        } else {
            assert_int_equal(rc, RK_ENOTFOUND);
        }
        rk_buf_fini(&b);
        if (!acceptable(acked < 0 ? 0 : acked, key, got) &&
            !(acked < 0 && got[0] == '\0')) {
            printf("crashpoint k=%ld drop=%d key=%s got='%s' acked=%d\n", k,
                   drop, name, got, acked);
            wrong++;
        }
    }
    assert_int_equal(engine_close(e), RK_OK);
    return wrong;
}

static void test_crashpoints_every_sync_rename_unlink_keeps_acked_writes(
    void **state)
{
    (void)state;
    char dir[256];
    st_tmpdir(dir, sizeof(dir), "cp");
    g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(g_sh != MAP_FAILED);
    for (int run = 0; run < 4; run++) {
        g_variant = run / 2;
        int drop = run % 2;
        long k;
        int wrong = 0;
        bool completed = false;
        for (k = 1; !completed && k < 5000; k++) {
            wrong += run_point(dir, k, drop != 0, &completed);
        }
        printf("crashpoints: variant=%s mode=%s points=%ld wrong=%d\n",
               g_variant ? "sync_always+auto_merge" : "sync_none+forced_merge",
               drop ? "drop_unsynced" : "process_kill", k - 1, wrong);
        assert_true(completed);
        assert_int_equal(wrong, 0);
    }
    st_rmrf(dir);
    munmap(g_sh, sizeof(*g_sh));
}

int main(void)
{
    rk_log_set_level(RK_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_crashpoints_every_sync_rename_unlink_keeps_acked_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
