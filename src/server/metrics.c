/*
 * metrics.c - GET /metrics in the Prometheus text exposition format
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), named
 * after Prometheus' naming rules (base units, `_total` counters,
 * `_seconds`, `_bytes`); docs/observability.md lists every metric.  Also
 * the latency histograms the server and cluster code record into.
 */
#include "server/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/cluster.h"
#include "server/internal.h"

const double lat_bounds_s[LAT_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,
};

void lat_observe(struct lat_hist *h, uint64_t us)
{
    double s = (double)us / 1e6;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        if (s <= lat_bounds_s[i]) {
            h->le[i]++;
            break;
        }
    }
    h->count++;
    h->sum_s += s;
}

void metrics_family(struct rk_buf *out,
                    const char *name,
                    const char *type,
                    const char *help)
{
    rk_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_u64(struct rk_buf *out,
                 const char *name,
                 const char *labels,
                 uint64_t v)
{
    if (labels && *labels) {
        rk_buf_appendf(out, "%s{%s} %" PRIu64 "\n", name, labels, v);
    } else {
        rk_buf_appendf(out, "%s %" PRIu64 "\n", name, v);
    }
}

void metrics_one(struct rk_buf *out,
                 const char *name,
                 const char *type,
                 const char *help,
                 uint64_t v)
{
    metrics_family(out, name, type, help);
    metrics_u64(out, name, NULL, v);
}

void metrics_hist(struct rk_buf *out,
                  const char *name,
                  const char *labels,
                  const struct lat_hist *h)
{
    uint64_t cum = 0;
    const char *sep = labels && *labels ? "," : "";
    labels = labels ? labels : "";
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        cum += h->le[i];
        rk_buf_appendf(out, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name,
                       labels, sep, lat_bounds_s[i], cum);
    }
    rk_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name,
                   labels, sep, h->count);
    if (*labels) {
        rk_buf_appendf(out, "%s_sum{%s} %.9f\n%s_count{%s} %" PRIu64 "\n", name,
                       labels, h->sum_s, name, labels, h->count);
    } else {
        rk_buf_appendf(out, "%s_sum %.9f\n%s_count %" PRIu64 "\n", name,
                       h->sum_s, name, h->count);
    }
}

void metrics_render(struct server *s, struct rk_buf *out)
{
    const struct server_stats *st = &s->stats;
    metrics_one(out, "ringkv_up", "gauge", "1 while this node runs.", 1);
    metrics_one(out, "ringkv_uptime_seconds", "gauge",
                "Seconds since this node started.",
                (server_mono_ms() - s->start_mono_ms) / 1000);
    metrics_family(out, "ringkv_event_loop_lag_seconds", "histogram",
                   "How much later than its period each server tick ran: "
                   "how long a callback held the event loop.");
    metrics_hist(out, "ringkv_event_loop_lag_seconds", NULL, &st->loop_lag);
    metrics_one(out, "ringkv_connected_clients", "gauge",
                "Client connections open now (RESP).", s->n_clients);
    metrics_one(out, "ringkv_connections_total", "counter",
                "Client connections accepted.", st->total_connections);
    metrics_one(out, "ringkv_rejected_connections_total", "counter",
                "Client connections refused (maxclients).",
                st->rejected_connections);
    metrics_one(out, "ringkv_protocol_errors_total", "counter",
                "Client connections closed for a protocol error.",
                st->protocol_errors);
    metrics_one(out, "ringkv_auth_failures_total", "counter",
                "AUTH attempts with a wrong password.", st->auth_failures);
    metrics_one(out, "ringkv_acl_denied_commands_total", "counter",
                "Commands refused by a user's ACL command rules.",
                st->acl_denied_cmd);
    metrics_one(out, "ringkv_acl_denied_keys_total", "counter",
                "Commands refused by a user's ACL key patterns.",
                st->acl_denied_key);
    metrics_one(out, "ringkv_net_input_bytes_total", "counter",
                "Bytes read from clients.", st->net_input_bytes);
    metrics_one(out, "ringkv_net_output_bytes_total", "counter",
                "Bytes written to clients.", st->net_output_bytes);
    metrics_one(out, "ringkv_keyspace_hits_total", "counter",
                "Reads that found their key.", st->keyspace_hits);
    metrics_one(out, "ringkv_keyspace_misses_total", "counter",
                "Reads that did not find their key.", st->keyspace_misses);
    metrics_one(out, "ringkv_expired_keys_total", "counter",
                "Keys removed because their TTL passed.", st->expired_keys);
    metrics_one(out, "ringkv_resident_memory_bytes", "gauge",
                "Resident set size of the process.", server_rss_bytes());

    /* requests by command and result */
    metrics_family(out, "ringkv_commands_total", "counter",
                   "Commands received, by command and result (ok, error).");
    size_t n = command_count();
    for (size_t i = 0; s->cmdstats && i < n; i++) {
        const struct cmd_stat *cs = &s->cmdstats[i];
        if (cs->calls == 0) {
            continue;
        }
        char l[96];
        uint64_t err = cs->errors < cs->calls ? cs->errors : cs->calls;
        snprintf(l, sizeof(l), "command=\"%s\",result=\"ok\"",
                 command_at(i)->name);
        metrics_u64(out, "ringkv_commands_total", l, cs->calls - err);
        snprintf(l, sizeof(l), "command=\"%s\",result=\"error\"",
                 command_at(i)->name);
        metrics_u64(out, "ringkv_commands_total", l, err);
    }

    /* storage engine */
    struct engine_stats es;
    engine_stats(s->engine, &es);
    metrics_one(out, "ringkv_engine_keys", "gauge",
                "Keys in the storage engine's keydir (tombstones included).",
                es.live_keys);
    metrics_one(out, "ringkv_engine_live_bytes", "gauge",
                "Bytes of live records.", es.live_bytes);
    metrics_one(out, "ringkv_engine_dead_bytes", "gauge",
                "Bytes of superseded records awaiting merge.", es.dead_bytes);
    metrics_one(out, "ringkv_engine_files", "gauge", "Data files.", es.files);
    metrics_one(out, "ringkv_engine_keydir_bytes", "gauge",
                "Memory of the in-memory key directory.", es.keydir_bytes);
    metrics_one(out, "ringkv_engine_merges_total", "counter",
                "Completed merges (compactions).", es.merges_done);
    metrics_one(out, "ringkv_engine_writes_total", "counter",
                "Record writes (puts and deletes).", es.writes);
    metrics_one(out, "ringkv_engine_syncs_total", "counter", "fdatasync calls.",
                es.syncs);
    metrics_one(out, "ringkv_engine_sync_errors_total", "counter",
                "Failed writes or syncs (the engine turns read-only).",
                es.sync_errors);
    metrics_family(out, "ringkv_engine_last_sync_seconds", "gauge",
                   "Duration of the last fdatasync.");
    rk_buf_appendf(out, "ringkv_engine_last_sync_seconds %.6f\n",
                   (double)es.last_sync_us / 1e6);
    metrics_family(out, "ringkv_engine_sync_seconds_total", "counter",
                   "Time spent in fdatasync (divide its rate by the rate of "
                   "ringkv_engine_syncs_total for the mean).");
    rk_buf_appendf(out, "ringkv_engine_sync_seconds_total %.6f\n",
                   (double)es.sync_us_total / 1e6);
    metrics_one(out, "ringkv_engine_read_only", "gauge",
                "1 when the engine refuses writes after an I/O error.",
                es.read_only ? 1 : 0);
    metrics_one(out, "ringkv_disk_free_bytes", "gauge",
                "Bytes free for ringkvd in the data directory's file system.",
                s->disk.free_bytes);
    metrics_one(out, "ringkv_disk_total_bytes", "gauge",
                "Size of the data directory's file system in bytes.",
                s->disk.total_bytes);
    metrics_one(out, "ringkv_disk_low", "gauge",
                "1 while free space is below --disk-low-water.",
                s->disk.low ? 1 : 0);

    cluster_metrics(s, out);
}
