/*
 * bg_file.c - a small file replaced atomically by its own thread, latest
 * content wins (bg_file.h).
 */
#include "server/bg_file.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "server/fileio.h"

struct bg_file
{
    char *path;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    void *next; /* queued content (owned), NULL = none */
    size_t next_len;
    bool stopping;
    _Atomic uint64_t errors;
};

static void *run(void *arg)
{
    struct bg_file *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->next == NULL && !f->stopping) {
            pthread_cond_wait(&f->cond, &f->mu);
        }
        if (f->next == NULL) {
            break; /* stopping, nothing queued */
        }
        void *p = f->next;
        size_t len = f->next_len;
        f->next = NULL;
        pthread_mutex_unlock(&f->mu);
        if (rk_file_replace(f->path, p, len, 0600) != RK_OK) {
            atomic_fetch_add(&f->errors, 1);
            rk_log(RK_LOG_ERROR, "cluster_persist_failed", "file=%s errno=%d",
                   f->path, errno);
        }
        free(p);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int bg_file_start(struct bg_file **out, const char *path)
{
    struct bg_file *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->path = strdup(path)) == NULL) {
        free(f);
        return RK_ENOMEM;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    if (pthread_create(&f->thread, NULL, run, f) != 0) {
        pthread_cond_destroy(&f->cond);
        pthread_mutex_destroy(&f->mu);
        free(f->path);
        free(f);
        return RK_EIO;
    }
    *out = f;
    return RK_OK;
}

int bg_file_put(struct bg_file *f, const void *p, size_t len)
{
    void *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) {
        atomic_fetch_add(&f->errors, 1);
        rk_log(RK_LOG_ERROR, "cluster_persist_failed",
               "file=%s errno=%d (out of memory)", f->path, ENOMEM);
        return RK_ENOMEM;
    }
    if (len > 0) {
        memcpy(copy, p, len);
    }
    pthread_mutex_lock(&f->mu);
    void *old = f->next;
    f->next = copy;
    f->next_len = len;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
    free(old);
    return RK_OK;
}

uint64_t bg_file_errors(struct bg_file *f)
{
    return f != NULL ? atomic_load(&f->errors) : 0;
}

void bg_file_stop(struct bg_file *f)
{
    if (f == NULL) {
        return;
    }
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    free(f->next);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mu);
    free(f->path);
    free(f);
}
