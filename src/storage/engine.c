/*
 * engine.c - engine_open() dispatch by kind, option defaults and checks,
 * the thin vtable wrappers of engine.h (DESIGN.md section 3), and the
 * clock and seed helpers that put opts.env in front of the OS clocks.
 */
#include "storage/engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "common/error.h"
#include "storage/internal.h"

static const struct engine_vtable *const engine_kinds[] = {
    &bitcask_vtable,
    &memory_vtable,
};

void engine_opts_init(struct engine_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->dir = NULL;
    o->sync_mode = ENGINE_SYNC_EVERY;
    o->sync_interval_ms = ENGINE_DEFAULT_SYNC_INTERVAL;
    o->max_file_size = ENGINE_DEFAULT_MAX_FILE;
    o->merge_dead_ratio = ENGINE_DEFAULT_MERGE_RATIO;
    o->merge_min_dead_bytes = 0;
    o->max_key_len = ENGINE_DEFAULT_MAX_KEY;
    o->max_value_len = ENGINE_DEFAULT_MAX_VALUE;
    o->slot_fn = NULL;
    o->n_slots = ENGINE_DEFAULT_SLOTS;
}

int engine_parse_sync(const char *s,
                      enum engine_sync_mode *mode,
                      uint32_t *interval_ms)
{
    if (s == NULL) {
        return RK_EINVAL;
    }
    if (strcmp(s, "always") == 0) {
        *mode = ENGINE_SYNC_ALWAYS;
        return RK_OK;
    }
    if (strcmp(s, "none") == 0 || strcmp(s, "no") == 0) {
        *mode = ENGINE_SYNC_NONE;
        return RK_OK;
    }
    if (strcmp(s, "everysec") == 0) {
        *mode = ENGINE_SYNC_EVERY;
        *interval_ms = 1000;
        return RK_OK;
    }
    if (strncmp(s, "every:", 6) == 0) {
        const char *p = s + 6;
        if (*p < '0' || *p > '9') {
            return RK_EINVAL;
        }
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno != 0 || *end != '\0' || v < 1 || v > 86400000ull) {
            return RK_EINVAL;
        }
        *mode = ENGINE_SYNC_EVERY;
        *interval_ms = (uint32_t)v;
        return RK_OK;
    }
    return RK_EINVAL;
}

static int check_opts(const struct engine_opts *o, char *errbuf, size_t errlen)
{
    const char *why = NULL;
    if (o->max_key_len < 1 || o->max_key_len > STORAGE_MAX_KEY_LIMIT) {
        why = "max_key_len must be 1..65536";
    } else if (o->max_file_size < 4096 ||
               o->max_file_size > STORAGE_MAX_FILE_LIMIT) {
        why = "max_file_size must be 4 KiB..2 GiB";
    } else if (!(o->merge_dead_ratio >= 0.0 && o->merge_dead_ratio <= 1.0)) {
        why = "merge_dead_ratio must be within 0..1";
    } else if (o->sync_mode != ENGINE_SYNC_NONE &&
               o->sync_mode != ENGINE_SYNC_ALWAYS &&
               o->sync_mode != ENGINE_SYNC_EVERY) {
        why = "unknown sync mode";
    } else if (o->sync_mode == ENGINE_SYNC_EVERY &&
               (o->sync_interval_ms < 1 || o->sync_interval_ms > 86400000)) {
        why = "sync interval must be 1..86400000 ms";
    } else if (o->slot_fn != NULL &&
               (o->n_slots < 1 || o->n_slots > ENGINE_MAX_SLOTS)) {
        why = "n_slots must be 1..65536";
    }
    if (why) {
        snprintf(errbuf, errlen, "%s", why);
        return RK_EINVAL;
    }
    return RK_OK;
}

int engine_open(const char *kind,
                const struct engine_opts *opts,
                struct engine **out,
                char *errbuf,
                size_t errlen)
{
    char dummy[1];
    if (errbuf == NULL || errlen == 0) {
        errbuf = dummy;
        errlen = sizeof(dummy);
    }
    errbuf[0] = '\0';
    if (kind == NULL || opts == NULL || out == NULL) {
        snprintf(errbuf, errlen, "missing engine kind or options");
        return RK_EINVAL;
    }
    int rc = check_opts(opts, errbuf, errlen);
    if (rc != RK_OK) {
        return rc;
    }
    for (size_t i = 0; i < sizeof(engine_kinds) / sizeof(engine_kinds[0]);
         i++) {
        if (strcmp(kind, engine_kinds[i]->kind) == 0) {
            return engine_kinds[i]->open(opts, out, errbuf, errlen);
        }
    }
    snprintf(errbuf, errlen, "unknown storage engine '%s' (bitcask, memory)",
             kind);
    return RK_EINVAL;
}

int engine_close(struct engine *e)
{
    if (e == NULL) {
        return RK_OK;
    }
    return e->vt->close(e);
}

const char *engine_kind(const struct engine *e)
{
    return e->vt->kind;
}

int engine_get(struct engine *e,
               const void *key,
               size_t klen,
               struct rk_buf *val,
               struct engine_meta *meta)
{
    return e->vt->get(e, key, klen, val, meta);
}

int engine_put(struct engine *e,
               const void *key,
               size_t klen,
               const void *val,
               size_t vlen,
               const struct engine_meta *meta,
               uint64_t *seq)
{
    return e->vt->put(e, key, klen, val, vlen, meta, seq);
}

int engine_delete(struct engine *e,
                  const void *key,
                  size_t klen,
                  uint64_t timestamp,
                  uint64_t *seq)
{
    return e->vt->del(e, key, klen, timestamp, seq);
}

int engine_scan(struct engine *e,
                uint64_t cursor,
                size_t count,
                engine_key_cb cb,
                void *data,
                uint64_t *next)
{
    return e->vt->scan(e, cursor, count, cb, data, next);
}

int engine_foreach(struct engine *e, engine_key_cb cb, void *data)
{
    return e->vt->foreach(e, cb, data);
}

int engine_slot_count(struct engine *e, uint32_t slot, uint64_t *n)
{
    const struct keydir *kd = e->vt->keydir(e);
    if (!keydir_has_slots(kd) || slot >= kd->n_slots) {
        return RK_EINVAL;
    }
    *n = keydir_slot_count(kd, slot);
    return RK_OK;
}

uint64_t engine_expiring_keys(struct engine *e)
{
    return keydir_expiring_count(e->vt->keydir(e));
}

/* The checks of engine_fold_slots (engine.h): RK_OK or RK_EINVAL. */
static int fold_check(const struct keydir *kd,
                      uint32_t first_slot,
                      uint32_t last_slot,
                      uint64_t cursor,
                      size_t count)
{
    if (!keydir_has_slots(kd) || first_slot > last_slot ||
        last_slot >= kd->n_slots || count == 0 ||
        (cursor != ENGINE_FOLD_DONE && (cursor >> 48) != 0)) {
        return RK_EINVAL;
    }
    return RK_OK;
}

int engine_fold_slots(struct engine *e,
                      uint32_t first_slot,
                      uint32_t last_slot,
                      uint64_t cursor,
                      size_t count,
                      engine_key_cb cb,
                      void *data,
                      uint64_t *next)
{
    const struct keydir *kd = e->vt->keydir(e);
    int rc = fold_check(kd, first_slot, last_slot, cursor, count);
    if (rc == RK_OK) {
        *next = keydir_engine_fold_slots(kd, first_slot, last_slot, cursor,
                                         count, cb, data);
    }
    return rc;
}

struct fold_values
{
    struct engine *e;
    engine_kv_cb cb;
    void *data;
    struct rk_buf val; /* the value being visited */
    int rc;            /* first failed read */
};

static bool fold_values_cb(void *data,
                           const void *key,
                           size_t klen,
                           const struct engine_meta *meta)
{
    struct fold_values *fv = data;
    rk_buf_clear(&fv->val);
    int rc = engine_get(fv->e, key, klen, &fv->val, NULL);
    if (rc != RK_OK) {
        fv->rc = rc;
        return false;
    }
    return fv->cb(fv->data, key, klen, fv->val.base, fv->val.len, meta);
}

int engine_fold_slots_values(struct engine *e,
                             uint32_t first_slot,
                             uint32_t last_slot,
                             uint64_t cursor,
                             size_t count,
                             engine_kv_cb cb,
                             void *data,
                             uint64_t *next)
{
    struct fold_values fv = {.e = e, .cb = cb, .data = data, .rc = RK_OK};
    rk_buf_init(&fv.val);
    uint64_t n = 0;
    int rc = engine_fold_slots(e, first_slot, last_slot, cursor, count,
                               fold_values_cb, &fv, &n);
    rk_buf_fini(&fv.val);
    if (rc == RK_OK && fv.rc != RK_OK) {
        rc = fv.rc;
    }
    if (rc == RK_OK) {
        *next = n;
    }
    return rc;
}

int engine_clear(struct engine *e, uint64_t *seq)
{
    return e->vt->clear(e, seq);
}

int engine_sync(struct engine *e)
{
    return e->vt->sync(e);
}

uint64_t engine_durable_seq(struct engine *e)
{
    return e->vt->durable_seq(e);
}

int engine_recover(struct engine *e, char *errbuf, size_t errlen)
{
    char dummy[1];
    if (errbuf == NULL || errlen == 0) {
        errbuf = dummy;
        errlen = sizeof(dummy);
    }
    errbuf[0] = '\0';
    return e->vt->recover ? e->vt->recover(e, errbuf, errlen) : RK_OK;
}

uint64_t engine_acked_seq(struct engine *e)
{
    return e->vt->acked_seq(e);
}

uint64_t engine_recoveries(struct engine *e)
{
    return e->vt->recoveries(e);
}

bool engine_read_only(struct engine *e)
{
    return e->vt->read_only(e);
}

int engine_handoff(struct engine *e)
{
    return e->vt->handoff(e);
}

int engine_tick(struct engine *e)
{
    return e->vt->tick(e);
}

int engine_merge(struct engine *e, bool wait)
{
    return e->vt->merge(e, wait);
}

void engine_stats(struct engine *e, struct engine_stats *st)
{
    memset(st, 0, sizeof(*st));
    e->vt->stats(e, st);
}

uint64_t storage__now_us(struct rk_env *env)
{
    if (env != NULL) {
        return rk_env_mono_ms(env) * 1000u;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t storage__wall_ms(struct rk_env *env)
{
    if (env != NULL) {
        return rk_env_wall_ms(env);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t storage__seed(struct rk_env *env, const void *salt)
{
    if (env != NULL) {
        return rk_env_rand64(env);
    }
    /* A per-process seed keeps chains short against chosen keys. */
    return XXH3_64bits(&salt, sizeof(salt)) ^ storage__now_us(NULL);
}
