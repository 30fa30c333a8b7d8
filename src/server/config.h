/*
 * config.h - ringkvd settings: defaults, command-line flags and the INI
 * config file (inih).  Every option is both a flag (`--port 7379`) and an
 * INI key (`port = 7379`, top level or in a [ringkvd] section); flags win
 * over the file (DESIGN.md section 5).
 */
#ifndef RINGKV_SERVER_CONFIG_H
#define RINGKV_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "server/disk.h"
#include "storage/engine.h"

/*
 * Default cluster-max-value-bytes: 64 MiB.  A coordinated write moves its
 * value about 3 times over the peer links (to the coordinating replica,
 * back, and to each other replica) and every replica holds it in memory
 * while it merges versions; Riak warns at 5 MB and refuses 50 MB objects,
 * Cassandra refuses mutations over 16 MB by default.  64 MiB keeps room
 * for large blobs while one write stays well under a second on a LAN
 * (docs/cluster.md, "Large values").
 */
#define CONFIG_DEFAULT_CLUSTER_MAX_VALUE (64ull * 1024 * 1024) /* bytes */

struct rk_config
{
    int port;                        /* RESP port, 1..65535 (7379) */
    char bind[256];                  /* listen address (127.0.0.1) */
    char data_dir[4096];             /* (./data) */
    char engine[16];                 /* "bitcask" | "memory" */
    enum engine_sync_mode sync_mode; /* (every) */
    uint32_t sync_interval_ms;       /* for every:<ms> (1000) */
    char requirepass[512];           /* empty = no auth */
    bool protected_mode;             /* (yes) no password: loopback only */
    char aclfile[4096];              /* ACL users file ("" = none; acl.h) */
    uint32_t acllog_max_len;         /* ACL LOG entries kept (128) */
    /* TLS for RESP clients (issue 15 item 2; tls.h), Redis's names */
    int tls_port;                /* 0 = off */
    int https_port;              /* the HTTP API over TLS; 0 = off */
    char tls_cert_file[4096];    /* PEM: the server's certificate chain */
    char tls_key_file[4096];     /* PEM: its private key */
    char tls_ca_cert_file[4096]; /* PEM: CAs that sign client certs */
    int tls_auth_clients;        /* 0 no, 1 yes (default), 2 optional */
    char tls_protocols[64];      /* "TLSv1.2 TLSv1.3" (default) */
    char tls_ciphers[1024];      /* TLS 1.2 cipher list; "" = OpenSSL's */
    char tls_ciphersuites[1024]; /* TLS 1.3 suites; "" = OpenSSL's */
    bool tls_cluster;            /* peers over mutual TLS with the same
                                    files (issue 15 item 1; peer_tls.h);
                                    (no), fixed at start */
    uint32_t maxclients;         /* (10000) */
    enum rk_log_level loglevel;  /* (info) */
    enum rk_log_format log_format;
    bool enable_flushall;               /* FLUSHALL/FLUSHDB allowed (no) */
    uint64_t proto_max_bulk_len;        /* bytes (512 MiB) */
    uint64_t client_query_buffer_limit; /* bytes (1 GiB) */
    uint64_t max_file_size;             /* bitcask rollover, bytes (256 MiB) */
    double merge_dead_ratio;            /* (0.4) */
    uint32_t timeout_s;                 /* idle client timeout, 0 = never */
    uint32_t hz;                        /* housekeeping ticks per second (10) */
    bool repair;                        /* open storage in repair mode */
    struct disk_low_water disk_low_water; /* warn below it (5%) */
    char config_file[4096];               /* --config path, "" if none */
    /* Cluster (issue 4; docs/cluster.md). */
    int peer_port;                    /* node-to-node port; 0 = RESP port + 2 */
    int http_port;                    /* HTTP; 0 = RESP port + 1, -1 = off */
    char http_cors_origin[1024];      /* origins allowed cross-origin reads,
                                         comma-separated ("*": any); "" =
                                         only the members' own status pages */
    char http_allowed_hosts[1024];    /* Host names accepted besides IP
                                         literals and localhost, comma-
                                         separated ("*": any) */
    bool http_health_public;          /* /health without auth (no) */
    char node_id[65];                 /* "" = "<bind>:<peer-port>" */
    char cluster_name[65];            /* ("ringkv") */
    char cluster_secret_file[4096];   /* "" = DATA_DIR/cluster.secret */
    char seeds[2048];                 /* host:peer-port,...; "" = none */
    uint32_t n_val;                   /* replicas per key (3) */
    uint32_t r_val;                   /* read quorum (2) */
    uint32_t w_val;                   /* write quorum (2) */
    uint32_t ring_size;               /* partitions of a new cluster (64) */
    uint32_t request_timeout_ms;      /* coordinator deadline (2000) */
    uint64_t cluster_max_value_bytes; /* largest value a coordinated write
                                         stores, bytes (64 MiB; at most
                                         proto_max_bulk_len applies too) */
    /* Versions and healing (issue 5; docs/consistency.md). */
    bool conflict_lww;              /* conflict-policy lww (default siblings) */
    uint32_t max_siblings;          /* per key (100) */
    uint64_t tombstone_gc_grace_s;  /* (3600) */
    uint32_t read_repair_wait_ms;   /* straggler wait, 0 = off (100) */
    double read_repair_chance;      /* share of reads asking all N (0.1) */
    uint32_t speculative_retry_ms;  /* widen a slow read, 0 = off (50) */
    uint32_t handoff_drop_grace_ms; /* keep a handed-off partition (30000) */
    uint32_t handoff_concurrency;   /* partitions received at once (2) */
#define CONFIG_DEFAULT_HANDOFF_MBPS 64
    uint32_t handoff_max_mbps;  /* MiB/s received in handoff, 0 = no
                                   limit */
    bool sloppy_quorum;         /* fallbacks for down replicas (yes) */
    uint64_t max_clock_skew_ms; /* warn beyond it (60000) */
    uint32_t slow_log_ms;       /* log coordinated commands slower than
                                   this, 0 = off (250) */
    bool log_requests;          /* one log line per command (off) */
    /* Active anti-entropy (issue 14 item 4; docs/cluster.md). */
    bool aae;                          /* on (on) */
    uint32_t aae_exchange_interval_ms; /* between exchanges (1000) */
    uint32_t aae_concurrency;          /* exchanges at once, 1..4 (1) */
    uint32_t aae_repair_rate;          /* keys repaired per second (5000) */
};

/* Fills `c` with the defaults. */
void config_init(struct rk_config *c);

enum config_result
{
    CONFIG_OK = 0,      /* run the server */
    CONFIG_EXIT_OK = 1, /* --help/--version printed: exit 0 */
    CONFIG_ERROR = 2,   /* usage error printed to errbuf: exit 2 */
};

/*
 * Loads --config FILE (if given) and then applies every flag of argv.
 * On CONFIG_ERROR, errbuf holds one line "ringkvd: ...".  --help and
 * --version print to stdout and return CONFIG_EXIT_OK.
 */
enum config_result config_load(struct rk_config *c,
                               int argc,
                               char **argv,
                               char *errbuf,
                               size_t errlen);

/*
 * The known option name nearest to `name` as " (did you mean 'x'?)" into
 * out (len bytes), or "" when none is close (edit distance 1 for names of
 * up to 4 characters, 2 up to 8, else 3).  Names come from config_each.
 */
void config_suggest(const struct rk_config *c,
                    const char *name,
                    char *out,
                    size_t len);

/*
 * Sets option `name` (flag name without dashes; '_' and '-' equivalent)
 * to `value`.  RK_OK, or RK_EINVAL with a reason in errbuf.
 * Used by the flag parser, the INI loader and CONFIG SET.
 */
int config_set(struct rk_config *c,
               const char *name,
               const char *value,
               char *errbuf,
               size_t errlen);

/*
 * Calls `cb` with (name, value) for every setting whose name matches the
 * glob `pattern` (CONFIG GET).  Names are Redis's where Redis has one
 * ("dir", "port", "bind", "requirepass", "maxclients", "appendfsync",
 * "appendonly", "save", "databases", "timeout", "proto-max-bulk-len",
 * "client-query-buffer-limit") plus ringkv's own ("data-dir", "engine",
 * "sync", "enable-flushall", ...).
 */
void config_each(const struct rk_config *c,
                 const char *pattern,
                 size_t plen,
                 void (*cb)(void *data, const char *name, const char *value),
                 void *data);

#endif /* RINGKV_SERVER_CONFIG_H */
