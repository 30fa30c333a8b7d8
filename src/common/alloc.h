/*
 * alloc.h - swappable allocation hooks (STYLE.md 1.4; raft's raft_heap,
 * libuv's uv_replace_allocator).
 *
 * Every allocation in ringkv goes through rk_malloc/rk_calloc/rk_realloc/
 * rk_free so tests can inject failures (fail the Nth allocation) and count
 * leaks.  A failed allocation returns NULL; callers map it to RK_ENOMEM.
 */
#ifndef RINGKV_COMMON_ALLOC_H
#define RINGKV_COMMON_ALLOC_H

#include <stddef.h>

struct rk_allocator
{
    void *data;                                  /* user pointer */
    void *(*malloc_fn)(void *data, size_t size); /* NULL on failure */
    void *(*calloc_fn)(void *data, size_t n, size_t size);
    void *(*realloc_fn)(void *data, void *ptr, size_t size);
    void (*free_fn)(void *data, void *ptr);
};

/*
 * Replaces the process-wide allocator; NULL restores the libc one.
 * `a` is borrowed and must outlive every allocation made through it.
 * Thread: call before any other thread allocates (start-up, tests only).
 */
void rk_set_allocator(const struct rk_allocator *a);

/* Thread: any (as thread-safe as the installed allocator). */
void *rk_malloc(size_t size);
void *rk_calloc(size_t n, size_t size);
void *rk_realloc(void *ptr, size_t size);
void rk_free(void *ptr); /* rk_free(NULL) is a no-op */

/*
 * Copies `len` bytes of `s` into a new NUL-terminated allocation
 * (returned-owned, free with rk_free); NULL on allocation failure.
 */
char *rk_strndup(const char *s, size_t len);
char *rk_strdup(const char *s);

#endif /* RINGKV_COMMON_ALLOC_H */
