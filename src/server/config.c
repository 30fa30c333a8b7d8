/*
 * config.c - ringkvd settings; see config.h.  The INI file is parsed by
 * inih; unknown keys are errors so typos do not go unnoticed.
 */
#include "server/config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/node.h"
#include "cluster/seeds.h"
#include "common/error.h"
#include "common/glob.h"

void config_init(struct rk_config *c)
{
    memset(c, 0, sizeof(*c));
    c->port = 7379;
    snprintf(c->bind, sizeof(c->bind), "127.0.0.1");
    snprintf(c->data_dir, sizeof(c->data_dir), "./data");
    snprintf(c->engine, sizeof(c->engine), "bitcask");
    c->sync_mode = ENGINE_SYNC_EVERY;
    c->sync_interval_ms = 1000;
    c->maxclients = 10000;
    c->loglevel = RK_LOG_INFO;
    c->log_format = RK_LOG_LOGFMT;
    c->enable_flushall = false;
    c->protected_mode = true;
    c->acllog_max_len = 128;
    c->tls_auth_clients = 1;
    c->proto_max_bulk_len = 512ull * 1024 * 1024;
    c->client_query_buffer_limit = 1024ull * 1024 * 1024;
    c->max_file_size = ENGINE_DEFAULT_MAX_FILE;
    c->merge_dead_ratio = ENGINE_DEFAULT_MERGE_RATIO;
    c->disk_low_water = (struct disk_low_water){.pct = 5};
    c->timeout_s = 0;
    c->hz = 10;
    c->peer_port = 0;
    snprintf(c->cluster_name, sizeof(c->cluster_name), "ringkv");
    c->n_val = 3;
    c->r_val = 2;
    c->w_val = 2;
    c->ring_size = 64;
    c->request_timeout_ms = 2000;
    c->cluster_max_value_bytes = CONFIG_DEFAULT_CLUSTER_MAX_VALUE;
    c->conflict_lww = false;
    c->max_siblings = 100;
    c->tombstone_gc_grace_s = 3600;
    c->read_repair_wait_ms = 100;
    c->read_repair_chance = 0.1;
    c->speculative_retry_ms = 50;
    c->handoff_drop_grace_ms = 30000;
    c->handoff_concurrency = 2;
    c->handoff_max_mbps = CONFIG_DEFAULT_HANDOFF_MBPS;
    c->aae = true;
    c->aae_exchange_interval_ms = NODE_AAE_DEFAULT_INTERVAL_MS;
    c->aae_concurrency = NODE_AAE_DEFAULT_CONCURRENCY;
    c->aae_repair_rate = NODE_AAE_DEFAULT_REPAIR_RATE;
    c->sloppy_quorum = true;
    c->max_clock_skew_ms = 60000;
    c->slow_log_ms = 250;
}

static int parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    if (v[0] == '\0' || v[0] == '-') {
        return RK_EINVAL;
    }
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    uint64_t mult = 1;
    if (*end != '\0') {
        if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0) {
            mult = 1024;
        } else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0) {
            mult = 1024 * 1024;
        } else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gb") == 0) {
            mult = 1024ull * 1024 * 1024;
        } else {
            return RK_EINVAL;
        }
    }
    if (errno != 0 || (mult > 1 && x > UINT64_MAX / mult)) {
        return RK_EINVAL;
    }
    x *= mult;
    if (x < min || x > max) {
        return RK_EINVAL;
    }
    *out = x;
    return RK_OK;
}

static int parse_bool(const char *v, bool *out)
{
    if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
        strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0) {
        *out = true;
        return RK_OK;
    }
    if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
        strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0) {
        *out = false;
        return RK_OK;
    }
    return RK_EINVAL;
}

/* Copies v into dst[cap] or fails when it does not fit. */
/* Reads a password from `path` (requirepass-file): a regular file, not a
 * symbolic link, that group and others cannot read, holding one line (a
 * final newline is dropped).  RK_OK, or RK_EINVAL with `why` set. */
static int read_password_file(const char *path,
                              char *dst,
                              size_t cap,
                              char *why,
                              size_t why_len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        return RK_EINVAL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & 077) != 0) {
        close(fd);
        snprintf(why, why_len,
                 "%s must be a regular file that only its owner can read "
                 "(chmod 600 %s)",
                 path, path);
        return RK_EINVAL;
    }
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
        return RK_EINVAL;
    }
    size_t len = (size_t)n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }
    if (len == 0 || len >= cap || memchr(buf, '\0', len) ||
        memchr(buf, '\n', len)) {
        memset(buf, 0, sizeof(buf));
        snprintf(why, why_len, "%s must hold one line of 1..%zu bytes", path,
                 cap - 1);
        return RK_EINVAL;
    }
    memcpy(dst, buf, len);
    dst[len] = '\0';
    memset(buf, 0, sizeof(buf));
    return RK_OK;
}

static int set_str(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n >= cap) {
        return RK_EINVAL;
    }
    memcpy(dst, v, n + 1);
    return RK_OK;
}

/* Normalises an option name: lower case, '_' -> '-'. */
static void norm_name(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++) {
        char ch = in[i];
        out[i] =
            ch == '_' ? '-' : (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
    }
    out[i] = '\0';
}

/* Edit distance of a and b with adjacent transpositions counted as one
 * edit (optimal string alignment), capped at 9 (names are short). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) {
        return 9;
    }
    unsigned char d[64][64];
    for (size_t i = 0; i <= la; i++) {
        d[i][0] = (unsigned char)i;
    }
    for (size_t j = 0; j <= lb; j++) {
        d[0][j] = (unsigned char)j;
    }
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            v = d[i - 1][j] + 1u < v ? d[i - 1][j] + 1u : v;
            v = d[i][j - 1] + 1u < v ? d[i][j - 1] + 1u : v;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1u < v) {
                v = d[i - 2][j - 2] + 1u;
            }
            d[i][j] = (unsigned char)v;
        }
    }
    return d[la][lb] < 9 ? d[la][lb] : 9;
}

struct nearest
{
    const char *want;
    char best[64];
    size_t dist;
};

static void nearest_cb(void *data, const char *name, const char *value)
{
    (void)value;
    struct nearest *n = data;
    size_t d = edit_distance(n->want, name);
    if (d < n->dist) {
        n->dist = d;
        snprintf(n->best, sizeof(n->best), "%s", name);
    }
}

void config_suggest(const struct rk_config *c,
                    const char *name,
                    char *out,
                    size_t len)
{
    struct nearest n = {name, "", 9};
    config_each(c, "*", 1, nearest_cb, &n);
    size_t l = strlen(name);
    size_t limit = l <= 4 ? 1 : l <= 8 ? 2 : 3;
    if (n.best[0] && n.dist <= limit) {
        snprintf(out, len, " (did you mean '%s'?)", n.best);
    } else {
        out[0] = '\0';
    }
}

int config_set(struct rk_config *c,
               const char *name,
               const char *value,
               char *errbuf,
               size_t errlen)
{
    char n[64];
    norm_name(name, n, sizeof(n));
    uint64_t u = 0;
    int rc = RK_OK;
    const char *why = "invalid value";

    if (strcmp(n, "port") == 0) {
        rc = parse_u64(value, 1, 65535, &u);
        c->port = (int)u;
        why = "must be a port number 1..65535";
    } else if (strcmp(n, "bind") == 0) {
        rc = set_str(c->bind, sizeof(c->bind), value);
    } else if (strcmp(n, "data-dir") == 0 || strcmp(n, "dir") == 0) {
        rc = value[0] ? set_str(c->data_dir, sizeof(c->data_dir), value)
                      : RK_EINVAL;
    } else if (strcmp(n, "engine") == 0) {
        if (strcmp(value, "bitcask") != 0 && strcmp(value, "memory") != 0) {
            rc = RK_EINVAL;
            why = "must be bitcask or memory";
        } else {
            rc = set_str(c->engine, sizeof(c->engine), value);
        }
    } else if (strcmp(n, "sync") == 0 || strcmp(n, "appendfsync") == 0) {
        rc = engine_parse_sync(value, &c->sync_mode, &c->sync_interval_ms);
        why = "must be always, none or every:<ms>";
    } else if (strcmp(n, "requirepass") == 0) {
        rc = set_str(c->requirepass, sizeof(c->requirepass), value);
        why = "too long";
    } else if (strcmp(n, "requirepass-file") == 0) {
        char pwhy[600];
        if (read_password_file(value, c->requirepass, sizeof(c->requirepass),
                               pwhy, sizeof(pwhy)) != RK_OK) {
            snprintf(errbuf, errlen, "invalid value for 'requirepass-file': %s",
                     pwhy);
            return RK_EINVAL;
        }
    } else if (strcmp(n, "maxclients") == 0) {
        rc = parse_u64(value, 1, 1000000, &u);
        c->maxclients = (uint32_t)u;
        why = "must be 1..1000000";
    } else if (strcmp(n, "loglevel") == 0) {
        rc = rk_log_parse_level(value, &c->loglevel);
        why = "must be debug, info, warn or error";
    } else if (strcmp(n, "log-format") == 0) {
        if (strcmp(value, "logfmt") == 0) {
            c->log_format = RK_LOG_LOGFMT;
        } else if (strcmp(value, "json") == 0) {
            c->log_format = RK_LOG_JSON;
        } else {
            rc = RK_EINVAL;
            why = "must be logfmt or json";
        }
    } else if (strcmp(n, "tls-port") == 0) {
        rc = parse_u64(value, 0, 65535, &u);
        c->tls_port = (int)u;
        why = "must be a port number 0..65535 (0: off)";
    } else if (strcmp(n, "https-port") == 0) {
        rc = parse_u64(value, 0, 65535, &u);
        c->https_port = (int)u;
        why = "must be a port number 0..65535 (0: off)";
    } else if (strcmp(n, "tls-cert-file") == 0) {
        rc = set_str(c->tls_cert_file, sizeof(c->tls_cert_file), value);
        why = "too long";
    } else if (strcmp(n, "tls-key-file") == 0) {
        rc = set_str(c->tls_key_file, sizeof(c->tls_key_file), value);
        why = "too long";
    } else if (strcmp(n, "tls-ca-cert-file") == 0) {
        rc = set_str(c->tls_ca_cert_file, sizeof(c->tls_ca_cert_file), value);
        why = "too long";
    } else if (strcmp(n, "tls-auth-clients") == 0) {
        rc = RK_OK;
        if (strcasecmp(value, "optional") == 0) {
            c->tls_auth_clients = 2;
        } else {
            bool b = false;
            rc = parse_bool(value, &b);
            c->tls_auth_clients = b ? 1 : 0;
        }
        why = "must be yes, no or optional";
    } else if (strcmp(n, "tls-protocols") == 0) {
        rc = set_str(c->tls_protocols, sizeof(c->tls_protocols), value);
        why = "too long";
    } else if (strcmp(n, "tls-ciphers") == 0) {
        rc = set_str(c->tls_ciphers, sizeof(c->tls_ciphers), value);
        why = "too long";
    } else if (strcmp(n, "tls-cluster") == 0) {
        rc = parse_bool(value, &c->tls_cluster);
        why = "must be yes or no";
    } else if (strcmp(n, "tls-ciphersuites") == 0) {
        rc = set_str(c->tls_ciphersuites, sizeof(c->tls_ciphersuites), value);
        why = "too long";
    } else if (strcmp(n, "http-cors-origin") == 0) {
        rc = set_str(c->http_cors_origin, sizeof(c->http_cors_origin), value);
        why = "too long";
    } else if (strcmp(n, "http-allowed-hosts") == 0) {
        rc = set_str(c->http_allowed_hosts, sizeof(c->http_allowed_hosts),
                     value);
        why = "too long";
    } else if (strcmp(n, "http-health-public") == 0) {
        rc = parse_bool(value, &c->http_health_public);
        why = "must be yes or no";
    } else if (strcmp(n, "protected-mode") == 0) {
        rc = parse_bool(value, &c->protected_mode);
        why = "must be yes or no";
    } else if (strcmp(n, "enable-flushall") == 0) {
        rc = parse_bool(value, &c->enable_flushall);
        why = "must be yes or no";
    } else if (strcmp(n, "proto-max-bulk-len") == 0) {
        rc = parse_u64(value, 1024 * 1024, 1ull << 40, &u);
        c->proto_max_bulk_len = u;
        why = "must be 1mb..1tb";
    } else if (strcmp(n, "cluster-max-value-bytes") == 0) {
        rc = parse_u64(value, 1024, 512ull * 1024 * 1024, &u);
        c->cluster_max_value_bytes = u;
        why = "must be 1kb..512mb";
    } else if (strcmp(n, "client-query-buffer-limit") == 0) {
        rc = parse_u64(value, 1024 * 1024, 1ull << 40, &u);
        c->client_query_buffer_limit = u;
        why = "must be 1mb..1tb";
    } else if (strcmp(n, "max-file-size") == 0) {
        rc = parse_u64(value, 4096, 1ull << 40, &u);
        c->max_file_size = u;
        why = "must be 4kb..1tb";
    } else if (strcmp(n, "disk-low-water") == 0) {
        size_t len = strlen(value);
        char num[24];
        if (len > 1 && len < sizeof(num) && value[len - 1] == '%') {
            memcpy(num, value, len - 1);
            num[len - 1] = '\0';
            rc = parse_u64(num, 1, 99, &u);
            if (rc == RK_OK) {
                c->disk_low_water = (struct disk_low_water){.pct = (uint32_t)u};
            }
        } else if ((rc = parse_u64(value, 0, 1ull << 50, &u)) == RK_OK) {
            c->disk_low_water = (struct disk_low_water){.bytes = u};
        }
        why = "must be a percentage 1%..99% or a byte count (0 = off)";
    } else if (strcmp(n, "merge-dead-ratio") == 0) {
        char *end;
        double d = strtod(value, &end);
        if (*end != '\0' || !(d > 0.0 && d <= 1.0)) {
            rc = RK_EINVAL;
            why = "must be a number in (0, 1]";
        } else {
            c->merge_dead_ratio = d;
        }
    } else if (strcmp(n, "timeout") == 0) {
        rc = parse_u64(value, 0, 365ull * 86400, &u);
        c->timeout_s = (uint32_t)u;
    } else if (strcmp(n, "hz") == 0) {
        rc = parse_u64(value, 1, 500, &u);
        c->hz = (uint32_t)u;
        why = "must be 1..500";
    } else if (strcmp(n, "peer-port") == 0) {
        rc = parse_u64(value, 0, 65535, &u);
        c->peer_port = (int)u;
        why = "must be a port number 0..65535 (0 = RESP port + 2)";
    } else if (strcmp(n, "http-port") == 0) {
        if (strcasecmp(value, "off") == 0 || strcasecmp(value, "no") == 0) {
            c->http_port = -1;
            rc = RK_OK;
        } else {
            rc = parse_u64(value, 1, 65535, &u);
            c->http_port = (int)u;
        }
        why = "must be 1..65535 or off";
    } else if (strcmp(n, "node-id") == 0) {
        rc = RK_OK;
        for (const char *p = value; *p; p++) {
            if (*p < 0x21 || *p > 0x7e) {
                rc = RK_EINVAL;
            }
        }
        if (rc == RK_OK) {
            rc = set_str(c->node_id, sizeof(c->node_id), value);
        }
        why = "must be 1..64 printable ASCII characters without spaces";
    } else if (strcmp(n, "cluster-name") == 0) {
        rc = value[0] ? set_str(c->cluster_name, sizeof(c->cluster_name), value)
                      : RK_EINVAL;
        why = "must be 1..64 bytes";
    } else if (strcmp(n, "n") == 0 || strcmp(n, "n-val") == 0) {
        rc = parse_u64(value, 1, 64, &u);
        c->n_val = (uint32_t)u;
        why = "must be 1..64";
    } else if (strcmp(n, "r") == 0 || strcmp(n, "r-val") == 0) {
        rc = parse_u64(value, 1, 64, &u);
        c->r_val = (uint32_t)u;
        why = "must be 1..64";
    } else if (strcmp(n, "w") == 0 || strcmp(n, "w-val") == 0) {
        rc = parse_u64(value, 1, 64, &u);
        c->w_val = (uint32_t)u;
        why = "must be 1..64";
    } else if (strcmp(n, "ring-size") == 0) {
        rc = parse_u64(value, 1, 1024, &u);
        if (rc == RK_OK && (u & (u - 1)) != 0) {
            rc = RK_EINVAL;
        }
        c->ring_size = (uint32_t)u;
        why = "must be a power of two 1..1024";
    } else if (strcmp(n, "request-timeout-ms") == 0) {
        rc = parse_u64(value, 1, 3600000, &u);
        c->request_timeout_ms = (uint32_t)u;
        why = "must be 1..3600000";
    } else if (strcmp(n, "conflict-policy") == 0) {
        rc = RK_OK;
        if (strcasecmp(value, "lww") == 0) {
            c->conflict_lww = true;
        } else if (strcasecmp(value, "siblings") == 0) {
            c->conflict_lww = false;
        } else {
            rc = RK_EINVAL;
        }
        why = "must be siblings or lww";
    } else if (strcmp(n, "max-siblings") == 0) {
        rc = parse_u64(value, 1, 4096, &u);
        c->max_siblings = (uint32_t)u;
        why = "must be 1..4096";
    } else if (strcmp(n, "tombstone-gc-grace") == 0) {
        rc = parse_u64(value, 0, 10u * 365 * 86400, &u);
        c->tombstone_gc_grace_s = u;
        why = "must be 0..315360000 seconds";
    } else if (strcmp(n, "read-repair-wait-ms") == 0) {
        rc = parse_u64(value, 0, 60000, &u);
        c->read_repair_wait_ms = (uint32_t)u;
        why = "must be 0..60000 (0 turns read repair off)";
    } else if (strcmp(n, "read-repair-chance") == 0) {
        char *end;
        double d = strtod(value, &end);
        if (*value == '\0' || *end != '\0' || !(d >= 0.0 && d <= 1.0)) {
            rc = RK_EINVAL;
        } else {
            rc = RK_OK;
            c->read_repair_chance = d;
        }
        why = "must be a number in [0, 1] (1 = every read asks all N)";
    } else if (strcmp(n, "speculative-retry-ms") == 0) {
        rc = parse_u64(value, 0, 60000, &u);
        c->speculative_retry_ms = (uint32_t)u;
        why = "must be 0..60000 (0 = widen a read only on failures)";
    } else if (strcmp(n, "handoff-drop-grace-ms") == 0) {
        rc = parse_u64(value, 0, 86400000, &u);
        c->handoff_drop_grace_ms = (uint32_t)u;
        why =
            "must be 0..86400000 (how long a node keeps a partition it "
            "no longer owns after a transition)";
    } else if (strcmp(n, "handoff-concurrency") == 0) {
        rc = parse_u64(value, 1, 8, &u);
        c->handoff_concurrency = (uint32_t)u;
        why = "must be 1..8 (partitions a node receives at once)";
    } else if (strcmp(n, "handoff-max-mbps") == 0) {
        rc = parse_u64(value, 0, 1024 * 1024, &u);
        c->handoff_max_mbps = (uint32_t)u;
        why =
            "must be 0..1048576 (MiB/s a node receives in handoff; 0 = no "
            "limit)";
    } else if (strcmp(n, "slow-log-ms") == 0) {
        rc = parse_u64(value, 0, 3600000, &u);
        c->slow_log_ms = (uint32_t)u;
        why = "must be 0..3600000 (0 turns the slow-request log off)";
    } else if (strcmp(n, "max-clock-skew-ms") == 0) {
        rc = parse_u64(value, 1, 86400000, &u);
        c->max_clock_skew_ms = u;
        why = "must be 1..86400000";
    } else if (strcmp(n, "log-requests") == 0) {
        rc = parse_bool(value, &c->log_requests);
        why = "must be on or off";
    } else if (strcmp(n, "aae") == 0) {
        rc = parse_bool(value, &c->aae);
        why = "must be on or off (active anti-entropy)";
    } else if (strcmp(n, "aae-exchange-interval-ms") == 0) {
        rc = parse_u64(value, 10, 86400000, &u);
        c->aae_exchange_interval_ms = (uint32_t)u;
        why = "must be 10..86400000 (ms between anti-entropy exchanges)";
    } else if (strcmp(n, "aae-concurrency") == 0) {
        rc = parse_u64(value, 1, 4, &u);
        c->aae_concurrency = (uint32_t)u;
        why = "must be 1..4 (anti-entropy exchanges at once)";
    } else if (strcmp(n, "aae-repair-rate") == 0) {
        rc = parse_u64(value, 1, 1000000, &u);
        c->aae_repair_rate = (uint32_t)u;
        why = "must be 1..1000000 (keys repaired per second)";
    } else if (strcmp(n, "sloppy-quorum") == 0) {
        rc = parse_bool(value, &c->sloppy_quorum);
        why = "must be on or off";
    } else if (strcmp(n, "aclfile") == 0) {
        rc = set_str(c->aclfile, sizeof(c->aclfile), value);
        why = "must be a file path";
    } else if (strcmp(n, "acllog-max-len") == 0) {
        rc = parse_u64(value, 0, 100000, &u);
        c->acllog_max_len = (uint32_t)u;
        why = "must be 0..100000 (ACL LOG entries kept)";
    } else if (strcmp(n, "cluster-secret-file") == 0) {
        rc = value[0] ? set_str(c->cluster_secret_file,
                                sizeof(c->cluster_secret_file), value)
                      : RK_EINVAL;
        why = "must be a file path";
    } else if (strcmp(n, "seeds") == 0) {
        struct seeds sd;
        char serr[300];
        if (strlen(value) >= sizeof(c->seeds) ||
            seeds_parse(&sd, value, serr, sizeof(serr)) != RK_OK) {
            snprintf(errbuf, errlen, "invalid value for 'seeds': %s",
                     strlen(value) >= sizeof(c->seeds) ? "too long" : serr);
            return RK_EINVAL;
        }
        snprintf(c->seeds, sizeof(c->seeds), "%s", value);
    } else if (strcmp(n, "repair") == 0) {
        rc = parse_bool(value, &c->repair);
        why = "must be yes or no";
    } else {
        char hint[96];
        config_suggest(c, name, hint, sizeof(hint));
        snprintf(errbuf, errlen, "unknown option '%s'%s", name, hint);
        return RK_EINVAL;
    }
    if (rc != RK_OK) {
        snprintf(errbuf, errlen, "invalid value '%s' for '%s': %s", value, name,
                 why);
        return RK_EINVAL;
    }
    return RK_OK;
}

struct ini_ctx
{
    struct rk_config *c;
    char *errbuf;
    size_t errlen;
    bool failed;
};

static int ini_cb(void *user,
                  const char *section,
                  const char *name,
                  const char *value)
{
    struct ini_ctx *ctx = user;
    if (ctx->failed) {
        return 0;
    }
    if (section[0] != '\0' && strcmp(section, "ringkvd") != 0) {
        snprintf(ctx->errbuf, ctx->errlen, "unknown section [%s]", section);
        ctx->failed = true;
        return 0;
    }
    char why[512];
    if (config_set(ctx->c, name, value, why, sizeof(why)) != RK_OK) {
        snprintf(ctx->errbuf, ctx->errlen, "%s", why);
        ctx->failed = true;
        return 0;
    }
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ringkvd [OPTIONS]\n"
            "ringkv server: a Dynamo-style key-value store speaking the Redis "
            "protocol.\n\n"
            "  --config FILE               INI file; every option below is "
            "also a key (flags win)\n"
            "  --port PORT                 RESP port (7379)\n"
            "  --bind ADDR                 listen address (127.0.0.1)\n"
            "  --data-dir DIR              data directory (./data)\n"
            "  --engine bitcask|memory     storage engine (bitcask)\n"
            "  --sync always|every:MS|none durability policy (every:1000)\n"
            "  --requirepass PASSWORD      require AUTH (none)\n"
            "  --requirepass-file FILE     the same, read from FILE (mode "
            "0600; keeps it out\n"
            "                              of ps and shell history)\n"
            "  --aclfile FILE              ACL users (ACL SAVE/LOAD; "
            "docs/security.md)\n"
            "  --acllog-max-len N          ACL LOG entries kept (128)\n"
            "  --maxclients N              max client connections (10000)\n"
            "  --timeout SECONDS           close idle clients, 0 = never (0)\n"
            "  --loglevel LEVEL            debug|info|warn|error (info)\n"
            "  --log-format logfmt|json    log line format (logfmt)\n"
            "  --log-requests on|off       log every command (off)\n"
            "  --enable-flushall yes|no    allow FLUSHALL/FLUSHDB (no)\n"
            "  --protected-mode yes|no     without requirepass, serve loopback "
            "clients only (yes)\n"
            "  --http-allowed-hosts H,...  HTTP Host names accepted besides "
            "IP literals and\n"
            "                              localhost (DNS rebinding guard)\n"
            "  --http-cors-origin O,...    origins that may read the HTTP "
            "API cross-origin\n"
            "                              (default: the members' own "
            "status pages)\n"
            "  --http-health-public yes|no /health without auth when "
            "requirepass is set (no)\n"
            "TLS for clients and peers (docs/security.md; Redis's names):\n"
            "  --tls-port PORT             TLS listener for RESP clients "
            "(0: off)\n"
            "  --tls-cert-file F --tls-key-file F   PEM certificate chain and "
            "key\n"
            "  --tls-ca-cert-file F        CA(s) that sign client (and "
            "node) certificates\n"
            "  --https-port PORT           the HTTP API over TLS, same "
            "certificates (0: off)\n"
            "  --tls-auth-clients yes|no|optional   require client "
            "certificates (yes)\n"
            "  --tls-protocols \"TLSv1.2 TLSv1.3\"  --tls-ciphers L  "
            "--tls-ciphersuites L\n"
            "  --tls-cluster yes|no        peers over mutual TLS, same "
            "files (no); each\n"
            "                              node's certificate names its "
            "node id\n"
            "  --proto-max-bulk-len BYTES  largest bulk argument (512mb)\n"
            "  --client-query-buffer-limit BYTES  per-client query buffer "
            "(1gb)\n"
            "  --max-file-size BYTES       bitcask data file rollover "
            "(256mb)\n"
            "  --merge-dead-ratio R        bitcask merge threshold (0.4)\n"
            "  --disk-low-water N%%|BYTES  warn when the data dir's free "
            "space is below (5%%)\n"
            "  --repair yes|no             skip corrupt records at open (no)\n"
            "Cluster (docs/cluster.md):\n"
            "  --http-port PORT|off        HTTP API, /health, /stats (RESP "
            "port + 1)\n"
            "  --peer-port PORT            node-to-node port (RESP port + 2)\n"
            "  --node-id ID                stable node id (<bind>:<peer-port>; "
            "kept in DATA_DIR/NODE_ID)\n"
            "  --cluster-name NAME         cluster name (ringkv)\n"
            "  --cluster-secret-file FILE  the cluster secret peers "
            "authenticate with (hex;\n"
            "                              default DATA_DIR/cluster.secret, "
            "made at first start)\n"
            "  --seeds H:P[,H:P...]        join the first seed that admits "
            "this node at start\n"
            "                              (peer ports; a node listed there "
            "joins nobody)\n"
            "  --n N --r R --w W           replicas, read and write quorum "
            "(3/2/2)\n"
            "  --ring-size Q               partitions of a new cluster (64)\n"
            "  --conflict-policy siblings|lww  concurrent writes (siblings)\n"
            "  --max-siblings N            siblings kept per key (100)\n"
            "  --tombstone-gc-grace S      keep tombstones S seconds (3600)\n"
            "  --read-repair-wait-ms MS    read repair straggler wait, 0 = off "
            "(100)\n"
            "  --read-repair-chance P      share of reads that ask all N "
            "replicas (0.1)\n"
            "  --speculative-retry-ms MS   a read short of R after MS asks "
            "the others (50)\n"
            "  --handoff-drop-grace-ms MS  keep a partition this long after "
            "it moved away (30000)\n"
            "  --handoff-concurrency N     partitions a node receives at "
            "once, 1..8 (2)\n"
            "  --handoff-max-mbps M        MiB/s a node receives in "
            "handoff, 0 = no limit (64)\n"
            "  --aae on|off                active anti-entropy (on)\n"
            "  --aae-exchange-interval-ms MS  between anti-entropy "
            "exchanges (1000)\n"
            "  --aae-concurrency N         exchanges at once, 1..4 (1)\n"
            "  --aae-repair-rate K         keys repaired per second (5000)\n"
            "  --sloppy-quorum on|off      fallbacks for down replicas (on)\n"
            "  --max-clock-skew-ms MS      warn when a peer's clock is ahead "
            "(60000)\n"
            "  --slow-log-ms MS            log cluster commands slower than "
            "MS, 0 = off (250)\n"
            "  --request-timeout-ms MS     coordinator deadline (2000)\n"
            "  --cluster-max-value-bytes BYTES  largest value of a "
            "cluster write (64mb)\n"
            "  --hz N                      housekeeping ticks per second "
            "(10)\n"
            "  --version                   print version and exit\n"
            "  --help                      print this help and exit\n");
}

enum config_result config_load(struct rk_config *c,
                               int argc,
                               char **argv,
                               char *errbuf,
                               size_t errlen)
{
    /* Pass 1: --help, --version, --config. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return CONFIG_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
            printf("ringkvd %s\n", RINGKV_VERSION);
            return CONFIG_EXIT_OK;
        }
        if (strncmp(argv[i], "--config=", 9) == 0) {
            if (set_str(c->config_file, sizeof(c->config_file), argv[i] + 9) !=
                    RK_OK ||
                argv[i][9] == '\0') {
                snprintf(errbuf, errlen, "ringkvd: --config needs a FILE");
                return CONFIG_ERROR;
            }
            continue;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(errbuf, errlen, "ringkvd: --config needs a FILE");
                return CONFIG_ERROR;
            }
            if (set_str(c->config_file, sizeof(c->config_file), argv[i + 1]) !=
                RK_OK) {
                snprintf(errbuf, errlen, "ringkvd: --config path too long");
                return CONFIG_ERROR;
            }
            i++;
        }
    }
    if (c->config_file[0]) {
        char why[600] = "";
        struct ini_ctx ctx = {c, why, sizeof(why), false};
        int rc = ini_parse(c->config_file, ini_cb, &ctx);
        if (rc == -1) {
            snprintf(errbuf, errlen, "ringkvd: cannot open config file %s: %s",
                     c->config_file, strerror(errno));
            return CONFIG_ERROR;
        }
        if (rc != 0 || ctx.failed) {
            snprintf(errbuf, errlen, "ringkvd: config file %s line %d: %s",
                     c->config_file, rc, why[0] ? why : "syntax error");
            return CONFIG_ERROR;
        }
    }
    /* Pass 2: flags, as --name value or --name=value. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(errbuf, errlen,
                     "ringkvd: unexpected argument '%s' (see --help)", a);
            return CONFIG_ERROR;
        }
        char name[64];
        const char *value;
        const char *eq = strchr(a, '=');
        if (eq) {
            size_t n = (size_t)(eq - a - 2);
            if (n >= sizeof(name)) {
                n = sizeof(name) - 1;
            }
            memcpy(name, a + 2, n);
            name[n] = '\0';
            value = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a + 2);
            char why[600];
            struct rk_config probe = *c;
            if (strcmp(name, "config") != 0 &&
                config_set(&probe, name, "", why, sizeof(why)) != RK_OK &&
                strncmp(why, "unknown option", 14) == 0) {
                /* an unknown name: say so, not that it needs a value */
                char hint[96];
                config_suggest(c, name, hint, sizeof(hint));
                snprintf(errbuf, errlen,
                         "ringkvd: unknown option --%s%s (see --help)", name,
                         hint[0] ? hint : "");
                return CONFIG_ERROR;
            }
            if (i + 1 >= argc) {
                snprintf(errbuf, errlen, "ringkvd: %s needs a value", a);
                return CONFIG_ERROR;
            }
            value = argv[++i];
        }
        if (strcmp(name, "config") == 0) {
            continue;
        }
        char why[600];
        if (config_set(c, name, value, why, sizeof(why)) != RK_OK) {
            snprintf(errbuf, errlen, "ringkvd: %s (see --help)", why);
            return CONFIG_ERROR;
        }
    }
    return CONFIG_OK;
}

void config_each(const struct rk_config *c,
                 const char *pattern,
                 size_t plen,
                 void (*cb)(void *data, const char *name, const char *value),
                 void *data)
{
    char sync[32];
    if (c->sync_mode == ENGINE_SYNC_ALWAYS) {
        snprintf(sync, sizeof(sync), "always");
    } else if (c->sync_mode == ENGINE_SYNC_NONE) {
        snprintf(sync, sizeof(sync), "none");
    } else {
        snprintf(sync, sizeof(sync), "every:%" PRIu32, c->sync_interval_ms);
    }
    const char *appendfsync = c->sync_mode == ENGINE_SYNC_ALWAYS ? "always"
                              : c->sync_mode == ENGINE_SYNC_NONE ? "no"
                                                                 : "everysec";
    char port[16], maxcl[16], bulk[32], cmv[32], qbl[32], mfs[32], ratio[32],
        tmo[16], hz[16], pport[16], nv[16], rv[16], wv[16], rs[16], rto[16],
        msib[16], grace[24], rrw[16], skew[24], hport[16], slow[16], rrc[32],
        spec[16], hdg[16], hcc[16], hmb[16], aaei[16], aaec[16], aaer[16];
    char tlsport[16], httpsport[16], acllog[16];
    snprintf(acllog, sizeof(acllog), "%" PRIu32, c->acllog_max_len);
    snprintf(tlsport, sizeof(tlsport), "%d", c->tls_port);
    snprintf(httpsport, sizeof(httpsport), "%d", c->https_port);
    snprintf(aaei, sizeof(aaei), "%" PRIu32, c->aae_exchange_interval_ms);
    snprintf(aaec, sizeof(aaec), "%" PRIu32, c->aae_concurrency);
    snprintf(aaer, sizeof(aaer), "%" PRIu32, c->aae_repair_rate);
    snprintf(rrc, sizeof(rrc), "%g", c->read_repair_chance);
    snprintf(spec, sizeof(spec), "%" PRIu32, c->speculative_retry_ms);
    snprintf(hdg, sizeof(hdg), "%" PRIu32, c->handoff_drop_grace_ms);
    snprintf(hcc, sizeof(hcc), "%" PRIu32, c->handoff_concurrency);
    snprintf(hmb, sizeof(hmb), "%" PRIu32, c->handoff_max_mbps);
    snprintf(slow, sizeof(slow), "%" PRIu32, c->slow_log_ms);
    if (c->http_port < 0) {
        snprintf(hport, sizeof(hport), "off");
    } else {
        snprintf(hport, sizeof(hport), "%d",
                 c->http_port ? c->http_port : c->port + 1);
    }
    snprintf(skew, sizeof(skew), "%" PRIu64, c->max_clock_skew_ms);
    snprintf(msib, sizeof(msib), "%" PRIu32, c->max_siblings);
    snprintf(grace, sizeof(grace), "%" PRIu64, c->tombstone_gc_grace_s);
    snprintf(rrw, sizeof(rrw), "%" PRIu32, c->read_repair_wait_ms);
    snprintf(port, sizeof(port), "%d", c->port);
    snprintf(pport, sizeof(pport), "%d",
             c->peer_port ? c->peer_port : c->port + 2);
    snprintf(nv, sizeof(nv), "%" PRIu32, c->n_val);
    snprintf(rv, sizeof(rv), "%" PRIu32, c->r_val);
    snprintf(wv, sizeof(wv), "%" PRIu32, c->w_val);
    snprintf(rs, sizeof(rs), "%" PRIu32, c->ring_size);
    snprintf(rto, sizeof(rto), "%" PRIu32, c->request_timeout_ms);
    snprintf(maxcl, sizeof(maxcl), "%" PRIu32, c->maxclients);
    snprintf(bulk, sizeof(bulk), "%" PRIu64, c->proto_max_bulk_len);
    snprintf(cmv, sizeof(cmv), "%" PRIu64, c->cluster_max_value_bytes);
    snprintf(qbl, sizeof(qbl), "%" PRIu64, c->client_query_buffer_limit);
    snprintf(mfs, sizeof(mfs), "%" PRIu64, c->max_file_size);
    snprintf(ratio, sizeof(ratio), "%g", c->merge_dead_ratio);
    char dlw[24];
    disk_format_low_water(&c->disk_low_water, dlw, sizeof(dlw));
    snprintf(tmo, sizeof(tmo), "%" PRIu32, c->timeout_s);
    snprintf(hz, sizeof(hz), "%" PRIu32, c->hz);
    static const char *levels[] = {"debug", "info", "warn", "error"};
    const struct
    {
        const char *name;
        const char *value;
    } all[] = {
        {"port", port},
        {"bind", c->bind},
        {"dir", c->data_dir},
        {"data-dir", c->data_dir},
        {"engine", c->engine},
        {"sync", sync},
        {"appendfsync", appendfsync},
        {"appendonly", strcmp(c->engine, "bitcask") == 0 ? "yes" : "no"},
        {"save", ""},
        {"databases", "1"},
        {"requirepass", c->requirepass},
        {"maxclients", maxcl},
        {"maxmemory", "0"},
        {"timeout", tmo},
        {"loglevel", levels[c->loglevel]},
        {"log-format", c->log_format == RK_LOG_JSON ? "json" : "logfmt"},
        {"enable-flushall", c->enable_flushall ? "yes" : "no"},
        {"protected-mode", c->protected_mode ? "yes" : "no"},
        {"aclfile", c->aclfile},
        {"acllog-max-len", acllog},
        {"tls-port", tlsport},
        {"https-port", httpsport},
        {"tls-cert-file", c->tls_cert_file},
        {"tls-key-file", c->tls_key_file},
        {"tls-ca-cert-file", c->tls_ca_cert_file},
        {"tls-auth-clients", c->tls_auth_clients == 1   ? "yes"
                             : c->tls_auth_clients == 2 ? "optional"
                                                        : "no"},
        {"tls-protocols",
         c->tls_protocols[0] ? c->tls_protocols : "TLSv1.2 TLSv1.3"},
        {"tls-ciphers", c->tls_ciphers},
        {"tls-ciphersuites", c->tls_ciphersuites},
        {"tls-cluster", c->tls_cluster ? "yes" : "no"},
        {"http-cors-origin", c->http_cors_origin},
        {"http-allowed-hosts", c->http_allowed_hosts},
        {"http-health-public", c->http_health_public ? "yes" : "no"},
        {"proto-max-bulk-len", bulk},
        {"client-query-buffer-limit", qbl},
        {"max-file-size", mfs},
        {"merge-dead-ratio", ratio},
        {"disk-low-water", dlw},
        {"hz", hz},
        {"peer-port", pport},
        {"http-port", hport},
        {"node-id", c->node_id},
        {"cluster-name", c->cluster_name},
        {"cluster-secret-file", c->cluster_secret_file},
        {"seeds", c->seeds},
        {"n", nv},
        {"r", rv},
        {"w", wv},
        {"ring-size", rs},
        {"request-timeout-ms", rto},
        {"cluster-max-value-bytes", cmv},
        {"conflict-policy", c->conflict_lww ? "lww" : "siblings"},
        {"max-siblings", msib},
        {"tombstone-gc-grace", grace},
        {"read-repair-wait-ms", rrw},
        {"read-repair-chance", rrc},
        {"speculative-retry-ms", spec},
        {"handoff-drop-grace-ms", hdg},
        {"handoff-concurrency", hcc},
        {"handoff-max-mbps", hmb},
        {"aae", c->aae ? "on" : "off"},
        {"aae-exchange-interval-ms", aaei},
        {"aae-concurrency", aaec},
        {"aae-repair-rate", aaer},
        {"sloppy-quorum", c->sloppy_quorum ? "on" : "off"},
        {"max-clock-skew-ms", skew},
        {"slow-log-ms", slow},
        {"log-requests", c->log_requests ? "on" : "off"},
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (rk_glob_match(pattern, plen, all[i].name, strlen(all[i].name),
                          true)) {
            cb(data, all[i].name, all[i].value);
        }
    }
}
