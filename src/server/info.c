/*
 * info.c - the INFO command's text: "# Section\r\nfield:value\r\n" lines,
 * with the sections and fields Redis clients read (redis-py, ioredis's
 * ready check reads `loading`, redis-cli, monitoring agents).
 * https://redis.io/docs/latest/commands/info/
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cluster/chunk.h"
#include "server/cluster.h"
#include "server/internal.h"
#include "server/server.h"

uint64_t (*server_alloc_counter)(void);

uint64_t server_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }
    unsigned long size = 0, rss = 0;
    if (fscanf(f, "%lu %lu", &size, &rss) != 2) {
        rss = 0;
    }
    fclose(f);
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void human(uint64_t bytes, char *out, size_t n)
{
    const char *units = "BKMGT";
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(out, n, "%" PRIu64 "B", bytes);
    } else {
        snprintf(out, n, "%.2f%c", v, units[u]);
    }
}

static bool want(const char *section, const char *name, bool in_default)
{
    if (strcmp(section, "all") == 0 || strcmp(section, "everything") == 0) {
        return true;
    }
    if (strcmp(section, "default") == 0) {
        return in_default;
    }
    return strcmp(section, name) == 0;
}

struct expire_count
{
    uint64_t now_ms;
    uint64_t seen, with_ttl;
    long double ttl_sum_ms;
    uint64_t limit;
    uint64_t tombstones; /* replicated delete markers (cluster.h) */
};

static bool count_expires_cb(void *data,
                             const void *key,
                             size_t klen,
                             const struct engine_meta *meta)
{
    struct expire_count *ec = data;
    ec->seen++;
    if (cluster_meta_is_tombstone(meta) || chunk_key_is_reserved(key, klen)) {
        /* not keys: delete markers and chunk blocks (cluster/chunk.h) */
        ec->tombstones++;
    } else if (meta->expire_at_ms) {
        ec->with_ttl++;
        if (meta->expire_at_ms > ec->now_ms) {
            ec->ttl_sum_ms += (long double)(meta->expire_at_ms - ec->now_ms);
        }
    }
    return ec->seen < ec->limit;
}

/*
 * Keys with a TTL and their average TTL: counted exactly up to 200,000
 * keys, estimated from a sample of the key directory above that (the
 * engine keeps no expiry index).
 */
static void count_expires(struct server *s,
                          uint64_t live,
                          uint64_t now,
                          uint64_t *expires,
                          uint64_t *avg_ttl,
                          uint64_t *tombstones)
{
    struct expire_count ec = {now, 0, 0, 0, 200000, 0};
    if (live <= ec.limit) {
        engine_foreach(s->engine, count_expires_cb, &ec);
    } else {
        uint64_t cursor = 0;
        do {
            engine_scan(s->engine, cursor, 1000, count_expires_cb, &ec,
                        &cursor);
        } while (cursor != 0 && ec.seen < 20000);
    }
    *expires =
        ec.seen ? (uint64_t)((long double)ec.with_ttl * live / ec.seen) : 0;
    *avg_ttl = ec.with_ttl ? (uint64_t)(ec.ttl_sum_ms / ec.with_ttl) : 0;
    *tombstones =
        ec.seen ? (uint64_t)((long double)ec.tombstones * live / ec.seen) : 0;
}

void info_render(struct server *s,
                 struct client *c,
                 const char *section,
                 struct rk_buf *out)
{
    (void)c;
    uint64_t now = server_now_ms();
    uint64_t up_s = (server_mono_ms() - s->start_mono_ms) / 1000;
    struct engine_stats st;
    engine_stats(s->engine, &st);

    if (want(section, "server", true)) {
        struct utsname u;
        uname(&u);
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        rk_buf_appendf(out,
                       "# Server\r\n"
                       "redis_version:7.0.0\r\n"
                       "ringkv_version:%s\r\n"
                       "redis_mode:standalone\r\n"
                       "os:%s %s %s\r\n"
                       "arch_bits:%d\r\n"
                       "multiplexing_api:libevent\r\n"
                       "process_id:%d\r\n"
                       "tcp_port:%d\r\n"
                       "server_time_usec:%" PRIu64
                       "\r\n"
                       "uptime_in_seconds:%" PRIu64
                       "\r\n"
                       "uptime_in_days:%" PRIu64
                       "\r\n"
                       "hz:%" PRIu32
                       "\r\n"
                       "executable:ringkvd\r\n"
                       "config_file:%s\r\n"
                       "storage_engine:%s\r\n",
                       RINGKV_VERSION, u.sysname, u.release, u.machine,
                       (int)(sizeof(void *) * 8), (int)getpid(), s->cfg->port,
                       now * 1000, up_s, up_s / 86400, s->cfg->hz,
                       s->cfg->config_file, s->cfg->engine);
    }
    if (want(section, "clients", true)) {
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        size_t waiting = 0;
        for (struct client *w = s->waiting; w; w = w->wnext) {
            waiting++;
        }
        rk_buf_appendf(out,
                       "# Clients\r\n"
                       "connected_clients:%zu\r\n"
                       "maxclients:%" PRIu32
                       "\r\n"
                       "blocked_clients:0\r\n"
                       "clients_waiting_for_sync:%zu\r\n",
                       s->n_clients, s->cfg->maxclients, waiting);
    }
    if (want(section, "memory", true)) {
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        uint64_t rss = server_rss_bytes();
        char h1[32], h2[32];
        human(rss, h1, sizeof(h1));
        human(st.keydir_bytes, h2, sizeof(h2));
        rk_buf_appendf(out,
                       "# Memory\r\n"
                       "used_memory:%" PRIu64
                       "\r\n"
                       "used_memory_human:%s\r\n"
                       "used_memory_rss:%" PRIu64
                       "\r\n"
                       "used_memory_rss_human:%s\r\n"
                       "keydir_bytes:%" PRIu64
                       "\r\n"
                       "keydir_bytes_human:%s\r\n"
                       "maxmemory:0\r\n"
                       "maxmemory_policy:noeviction\r\n",
                       rss, h1, rss, h1, st.keydir_bytes, h2);
        if (server_alloc_counter) {
            rk_buf_appendf(out, "allocations_counted:%" PRIu64 "\r\n",
                           server_alloc_counter());
        }
    }
    if (want(section, "persistence", true)) {
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        const char *sync = s->cfg->sync_mode == ENGINE_SYNC_ALWAYS ? "always"
                           : s->cfg->sync_mode == ENGINE_SYNC_NONE ? "none"
                                                                   : "every";
        rk_buf_appendf(out,
                       "# Persistence\r\n"
                       "loading:0\r\n"
                       "async_loading:0\r\n"
                       "rdb_changes_since_last_save:0\r\n"
                       "rdb_bgsave_in_progress:0\r\n"
                       "aof_enabled:%d\r\n"
                       "aof_rewrite_in_progress:%" PRIu64
                       "\r\n"
                       "engine:%s\r\n"
                       "sync_policy:%s\r\n"
                       "sync_interval_ms:%" PRIu32
                       "\r\n"
                       "engine_files:%" PRIu64
                       "\r\n"
                       "engine_live_records:%" PRIu64
                       "\r\n"
                       "engine_live_bytes:%" PRIu64
                       "\r\n"
                       "engine_dead_bytes:%" PRIu64
                       "\r\n"
                       "engine_merges_done:%" PRIu64
                       "\r\n"
                       "engine_merge_in_progress:%" PRIu64
                       "\r\n"
                       "engine_writes:%" PRIu64
                       "\r\n"
                       "engine_syncs:%" PRIu64
                       "\r\n"
                       "engine_sync_errors:%" PRIu64
                       "\r\n"
                       "engine_last_sync_usec:%" PRIu64
                       "\r\n"
                       "engine_read_only:%d\r\n"
                       "engine_durable_seq:%" PRIu64
                       "\r\n"
                       "engine_acked_seq:%" PRIu64
                       "\r\n"
                       "engine_recovered_truncated_bytes:%" PRIu64
                       "\r\n"
                       "engine_hint_fallbacks:%" PRIu64 "\r\n",
                       strcmp(s->cfg->engine, "bitcask") == 0, st.merge_running,
                       s->cfg->engine, sync, s->cfg->sync_interval_ms, st.files,
                       st.live_keys, st.live_bytes, st.dead_bytes,
                       st.merges_done, st.merge_running, st.writes, st.syncs,
                       st.sync_errors, st.last_sync_us, st.read_only ? 1 : 0,
                       engine_durable_seq(s->engine),
                       engine_acked_seq(s->engine),
                       st.recovered_truncated_bytes, st.hint_fallbacks);
        /* issue 12 item 4: free space before writes fail */
        rk_buf_appendf(out,
                       "disk_free_bytes:%" PRIu64
                       "\r\n"
                       "disk_total_bytes:%" PRIu64
                       "\r\n"
                       "disk_low_water_bytes:%" PRIu64
                       "\r\n"
                       "disk_low:%d\r\n",
                       s->disk.free_bytes, s->disk.total_bytes,
                       s->disk.low_bytes, s->disk.low ? 1 : 0);
    }
    if (want(section, "stats", true)) {
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        struct server_stats *t = &s->stats;
        rk_buf_appendf(
            out,
            "# Stats\r\n"
            "total_connections_received:%" PRIu64
            "\r\n"
            "total_commands_processed:%" PRIu64
            "\r\n"
            "total_net_input_bytes:%" PRIu64
            "\r\n"
            "total_net_output_bytes:%" PRIu64
            "\r\n"
            "rejected_connections:%" PRIu64
            "\r\n"
            "expired_keys:%" PRIu64
            "\r\n"
            "evicted_keys:0\r\n"
            "keyspace_hits:%" PRIu64
            "\r\n"
            "keyspace_misses:%" PRIu64
            "\r\n"
            "total_error_replies:0\r\n"
            "protocol_errors:%" PRIu64
            "\r\n"
            "auth_failures:%" PRIu64
            "\r\n"
            "security_attacks:%" PRIu64
            "\r\n"
            "protected_mode_denied:%" PRIu64
            "\r\n"
            "acl_access_denied_auth:%" PRIu64
            "\r\n"
            "acl_access_denied_cmd:%" PRIu64
            "\r\n"
            "acl_access_denied_key:%" PRIu64
            "\r\n"
            "acl_access_denied_channel:0\r\n"
            "write_errors:%" PRIu64
            "\r\n"
            "replies_held_for_sync:%" PRIu64
            "\r\n"
            "event_loop_lag_max_us:%" PRIu64 "\r\n",
            t->total_connections, t->total_commands, t->net_input_bytes,
            t->net_output_bytes, t->rejected_connections, t->expired_keys,
            t->keyspace_hits, t->keyspace_misses, t->protocol_errors,
            t->auth_failures, t->security_attacks, t->protected_denied,
            t->acl_denied_auth, t->acl_denied_cmd, t->acl_denied_key,
            t->write_errors, t->held_replies, t->loop_lag_max_us);
    }
    if (want(section, "replication", true)) {
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        rk_buf_appendf(out,
                       "# Replication\r\nrole:master\r\n"
                       "connected_slaves:0\r\n");
    }
    if (want(section, "cpu", true)) {
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        rk_buf_appendf(out,
                       "# CPU\r\n"
                       "used_cpu_sys:%ld.%06ld\r\n"
                       "used_cpu_user:%ld.%06ld\r\n",
                       (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
                       (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    }
    if (want(section, "cluster", true)) {
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        rk_buf_append_str(out, "# Cluster\r\n");
        cluster_info(s, out);
    }
    if (want(section, "keyspace", true)) {
        if (out->len) {
            rk_buf_append_str(out, "\r\n");
        }
        rk_buf_append_str(out, "# Keyspace\r\n");
        if (st.live_keys > 0) {
            uint64_t expires = 0, avg_ttl = 0, tombs = 0;
            count_expires(s, st.live_keys, now, &expires, &avg_ttl, &tombs);
            /* Replicated delete markers are not keys (node-local view). */
            uint64_t keys = st.live_keys > tombs ? st.live_keys - tombs : 0;
            if (keys > 0) {
                rk_buf_appendf(out,
                               "db0:keys=%" PRIu64 ",expires=%" PRIu64
                               ",avg_ttl=%" PRIu64 "\r\n",
                               keys, expires, avg_ttl);
            }
        }
    }
}
