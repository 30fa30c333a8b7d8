/*
 * memory.c - the "memory" engine (DESIGN.md section 3): engine.h semantics
 * with no persistence.  The keydir (keydir.c) holds each key with its
 * metadata; the entry's location field points at an rk_malloc'd copy of
 * the value (NULL for an empty value).  Every write is durable at once.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "storage/internal.h"

struct memory_engine
{
    struct engine base;
    struct keydir kd;
    size_t max_key_len;     /* bytes */
    uint64_t max_value_len; /* bytes */
    uint64_t seq;           /* last write sequence number */
    uint64_t value_bytes;   /* sum of value lengths */
    uint64_t writes;        /* puts + deletes since open */
};

static struct memory_engine *to_mem(struct engine *e)
{
    return (struct memory_engine *)e;
}

static int mem_open(const struct engine_opts *opts,
                    struct engine **out,
                    char *errbuf,
                    size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    struct memory_engine *m = rk_calloc(1, sizeof(*m));
    if (m == NULL) {
        return RK_ENOMEM;
    }
    m->base.vt = &memory_vtable;
    if (keydir_init(&m->kd, storage__seed(opts->env, &m->kd), opts->slot_fn,
                    opts->n_slots) != RK_OK) {
        keydir_fini(&m->kd);
        rk_free(m);
        return RK_ENOMEM;
    }
    m->max_key_len = opts->max_key_len;
    m->max_value_len = opts->max_value_len < STORAGE_MAX_VALUE_LIMIT
                           ? opts->max_value_len
                           : STORAGE_MAX_VALUE_LIMIT;
    *out = &m->base;
    return RK_OK;
}

static bool free_value_cb(void *data,
                          const unsigned char *key,
                          size_t klen,
                          const struct kd_meta *km)
{
    (void)data;
    (void)key;
    (void)klen;
    rk_free((void *)(uintptr_t)km->loc);
    return true;
}

static void mem_free_all(struct memory_engine *m)
{
    keydir_foreach(&m->kd, free_value_cb, NULL);
    keydir_reset(&m->kd);
    m->value_bytes = 0;
}

static int mem_close(struct engine *e)
{
    struct memory_engine *m = to_mem(e);
    mem_free_all(m);
    keydir_fini(&m->kd);
    rk_free(m);
    return RK_OK;
}

static int mem_get(struct engine *e,
                   const void *key,
                   size_t klen,
                   struct rk_buf *val,
                   struct engine_meta *meta)
{
    struct memory_engine *m = to_mem(e);
    uint32_t h = keydir_find(&m->kd, key, klen);
    if (h == 0) {
        return RK_ENOTFOUND;
    }
    struct kd_meta km;
    keydir_meta(&m->kd, h, &km);
    if (val) {
        int rc =
            rk_buf_append(val, (const void *)(uintptr_t)km.loc, km.value_len);
        if (rc != RK_OK) {
            return rc;
        }
    }
    if (meta) {
        keydir_engine_meta(&km, meta);
    }
    return RK_OK;
}

static int mem_put(struct engine *e,
                   const void *key,
                   size_t klen,
                   const void *val,
                   size_t vlen,
                   const struct engine_meta *meta,
                   uint64_t *seq)
{
    struct memory_engine *m = to_mem(e);
    if (klen == 0 || key == NULL) {
        return RK_EINVAL;
    }
    if (klen > m->max_key_len || vlen > m->max_value_len) {
        return RK_ETOOBIG;
    }
    void *copy = NULL;
    if (vlen > 0) {
        copy = rk_malloc(vlen);
        if (copy == NULL) {
            return RK_ENOMEM;
        }
        memcpy(copy, val, vlen);
    }
    struct kd_meta km = {
        .loc = (uint64_t)(uintptr_t)copy,
        .timestamp = meta ? meta->timestamp : 0,
        .expire_at_ms = meta ? meta->expire_at_ms : 0,
        .value_len = (uint32_t)vlen,
        .flags = meta ? meta->flags : 0,
        .type = meta ? meta->type : 0,
    };
    struct kd_meta old;
    bool had = false;
    int rc = keydir_put(&m->kd, key, klen, &km, &old, &had);
    if (rc != RK_OK) {
        rk_free(copy);
        return rc;
    }
    if (had) {
        rk_free((void *)(uintptr_t)old.loc);
        m->value_bytes -= old.value_len;
    }
    m->value_bytes += vlen;
    m->writes++;
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELEASE);
    if (seq) {
        *seq = m->seq;
    }
    return RK_OK;
}

static int mem_del(struct engine *e,
                   const void *key,
                   size_t klen,
                   uint64_t timestamp,
                   uint64_t *seq)
{
    (void)timestamp;
    struct memory_engine *m = to_mem(e);
    struct kd_meta old;
    int rc = keydir_del(&m->kd, key, klen, &old);
    if (rc != RK_OK) {
        return rc;
    }
    rk_free((void *)(uintptr_t)old.loc);
    m->value_bytes -= old.value_len;
    m->writes++;
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELEASE);
    if (seq) {
        *seq = m->seq;
    }
    return RK_OK;
}

static int mem_scan(struct engine *e,
                    uint64_t cursor,
                    size_t count,
                    engine_key_cb cb,
                    void *data,
                    uint64_t *next)
{
    *next = keydir_engine_scan(&to_mem(e)->kd, cursor, count, cb, data);
    return RK_OK;
}

static int mem_foreach(struct engine *e, engine_key_cb cb, void *data)
{
    keydir_engine_foreach(&to_mem(e)->kd, cb, data);
    return RK_OK;
}

static int mem_clear(struct engine *e, uint64_t *seq)
{
    struct memory_engine *m = to_mem(e);
    mem_free_all(m);
    m->writes++;
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELEASE);
    if (seq) {
        *seq = m->seq;
    }
    return RK_OK;
}

static int mem_sync(struct engine *e)
{
    (void)e;
    return RK_OK;
}

static uint64_t mem_durable_seq(struct engine *e)
{
    /* Every write is "durable" at once; the owner thread is the only
     * writer, so a relaxed read from another thread may lag, never lead. */
    return __atomic_load_n(&to_mem(e)->seq, __ATOMIC_ACQUIRE);
}

static uint64_t mem_recoveries(struct engine *e)
{
    (void)e;
    return 0;
}

static bool mem_read_only(struct engine *e)
{
    (void)e;
    return false;
}

static int mem_handoff(struct engine *e)
{
    (void)e;
    return RK_OK;
}

static int mem_tick(struct engine *e)
{
    (void)e;
    return RK_OK;
}

static int mem_merge(struct engine *e, bool wait)
{
    (void)e;
    (void)wait;
    return RK_OK;
}

static const struct keydir *mem_keydir(struct engine *e)
{
    return &to_mem(e)->kd;
}

static void mem_stats(struct engine *e, struct engine_stats *st)
{
    struct memory_engine *m = to_mem(e);
    st->live_keys = keydir_count(&m->kd);
    st->live_bytes = m->kd.key_bytes + m->value_bytes;
    st->files = 1;
    st->keydir_bytes = keydir_bytes(&m->kd);
    st->writes = m->writes;
}

const struct engine_vtable memory_vtable = {
    .kind = "memory",
    .open = mem_open,
    .close = mem_close,
    .get = mem_get,
    .put = mem_put,
    .del = mem_del,
    .scan = mem_scan,
    .foreach = mem_foreach,
    .clear = mem_clear,
    .sync = mem_sync,
    .durable_seq = mem_durable_seq,
    .acked_seq = mem_durable_seq,
    .read_only = mem_read_only,
    .recoveries = mem_recoveries,
    .handoff = mem_handoff,
    .tick = mem_tick,
    .merge = mem_merge,
    .stats = mem_stats,
    .keydir = mem_keydir,
};
