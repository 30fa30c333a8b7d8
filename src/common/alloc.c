/* alloc.c - allocation hooks; see alloc.h. */
#include "common/alloc.h"

#include <stdlib.h>
#include <string.h>

static const struct rk_allocator *g_alloc;

void rk_set_allocator(const struct rk_allocator *a)
{
    g_alloc = a;
}

void *rk_malloc(size_t size)
{
    if (g_alloc) {
        return g_alloc->malloc_fn(g_alloc->data, size);
    }
    return malloc(size);
}

void *rk_calloc(size_t n, size_t size)
{
    if (g_alloc) {
        return g_alloc->calloc_fn(g_alloc->data, n, size);
    }
    return calloc(n, size);
}

void *rk_realloc(void *ptr, size_t size)
{
    if (g_alloc) {
        return g_alloc->realloc_fn(g_alloc->data, ptr, size);
    }
    return realloc(ptr, size);
}

void rk_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    if (g_alloc) {
        g_alloc->free_fn(g_alloc->data, ptr);
        return;
    }
    free(ptr);
}

char *rk_strndup(const char *s, size_t len)
{
    char *p = rk_malloc(len + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *rk_strdup(const char *s)
{
    return rk_strndup(s, strlen(s));
}
