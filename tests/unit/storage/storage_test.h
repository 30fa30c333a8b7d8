/*
 * storage_test.h - helpers shared by the storage unit tests: temporary
 * data directories, engine open/close shorthands.  Header-only (static).
 */
#ifndef RINGKV_TESTS_STORAGE_TEST_H
#define RINGKV_TESTS_STORAGE_TEST_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "storage/engine.h"

static inline void st_rmrf(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Creates a fresh temporary directory path (not yet created) in out. */
static inline void st_tmpdir(char *out, size_t len, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, len, "%s/rk-%s-%d-XXXXXX", base ? base : "/tmp", tag,
             (int)getpid());
    if (mkdtemp(out) == NULL) {
        abort();
    }
    rmdir(out); /* the engine creates it (mode 0700) */
}

static inline struct engine *st_open(const char *kind,
                                     const char *dir,
                                     void (*tweak)(struct engine_opts *))
{
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = dir;
    o.sync_mode = ENGINE_SYNC_NONE;
    o.merge_disabled = true;
    if (tweak) {
        tweak(&o);
    }
    struct engine *e = NULL;
    char err[512] = "";
    int rc = engine_open(kind, &o, &e, err, sizeof(err));
    if (rc != RK_OK) {
        fprintf(stderr, "engine_open(%s): %s: %s\n", kind, rk_errname(rc), err);
        return NULL;
    }
    return e;
}

static inline int st_put(struct engine *e, const char *k, const char *v)
{
    struct engine_meta m = {.timestamp = 1};
    return engine_put(e, k, strlen(k), v, strlen(v), &m, NULL);
}

/* Returns the value of k as a malloc'd NUL-terminated string, or NULL. */
static inline char *st_get(struct engine *e, const char *k)
{
    struct rk_buf b;
    rk_buf_init(&b);
    if (engine_get(e, k, strlen(k), &b, NULL) != RK_OK) {
        rk_buf_fini(&b);
        return NULL;
    }
    char *s = malloc(b.len + 1);
    memcpy(s, b.base ? b.base : "", b.len);
    s[b.len] = '\0';
    rk_buf_fini(&b);
    return s;
}

/* ---- allocation failures (STYLE.md 1.7: fail the Nth allocation) ---- */

/* rk_allocator hooks that fail allocation number fail_at (install with
 * rk_set_allocator; test_engine, test_slot_index). */
struct fail_alloc
{
    long calls;   /* allocations seen since install */
    long fail_at; /* this one returns NULL */
    long failed;  /* how many were failed */
};

static inline void *fa_malloc(void *data, size_t size)
{
    struct fail_alloc *fa = data;
    if (++fa->calls == fa->fail_at) {
        fa->failed++;
        return NULL;
    }
    return malloc(size);
}

static inline void *fa_calloc(void *data, size_t n, size_t size)
{
    struct fail_alloc *fa = data;
    if (++fa->calls == fa->fail_at) {
        fa->failed++;
        return NULL;
    }
    return calloc(n, size);
}

static inline void *fa_realloc(void *data, void *p, size_t size)
{
    struct fail_alloc *fa = data;
    if (++fa->calls == fa->fail_at) {
        fa->failed++;
        return NULL;
    }
    return realloc(p, size);
}

static inline void fa_free(void *data, void *p)
{
    (void)data;
    free(p);
}

#endif
