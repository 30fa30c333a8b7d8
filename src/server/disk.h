/*
 * disk.h - free space of the data directory (issue 12 item 4): ringkvd
 * checks it with statvfs(3) every DISK_CHECK_MS from its housekeeping
 * tick, warns in the log (rate-limited) while it is below the low-water
 * mark (--disk-low-water: a percentage of the file system or a byte
 * count), and shows it in INFO (disk_free_bytes, disk_low) and /metrics,
 * before writes start failing.  It also names the storage state the
 * cluster node is told (node_set_storage_state): a read-only engine is
 * "degraded", with the reason and what the operator must do.  After a
 * full disk, ringkvd tries engine_recover every DISK_RECOVER_EVERY ms once
 * free space is back above the low-water mark (server.c).
 *
 * Thread: the event loop only.  Only src/server touches the file system
 * (DESIGN.md 2a).
 */
#ifndef RINGKV_SERVER_DISK_H
#define RINGKV_SERVER_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISK_CHECK_MS      1000  /* statvfs cadence */
#define DISK_WARN_EVERY    60000 /* ms between low-space warnings */
#define DISK_RECOVER_EVERY 5000  /* ms between engine_recover attempts */

/* The low-water mark: one of the two is set (pct 0 = bytes). */
struct disk_low_water
{
    uint32_t pct;   /* 1..99: percent of the file system's size */
    uint64_t bytes; /* when pct is 0: bytes */
};

/* What the last check saw. */
struct disk_watch
{
    bool known;           /* a statvfs succeeded at least once */
    uint64_t free_bytes;  /* available to this process (f_bavail) */
    uint64_t total_bytes; /* the file system's size */
    uint64_t low_bytes;   /* the low-water mark in bytes */
    bool low;             /* free_bytes < low_bytes */
    uint64_t checked_ms;  /* monotonic ms of the last check, 0 = never */
    uint64_t warned_ms;   /* last warning, 0 = none while low */
    uint64_t warnings;    /* low-space warnings logged */
};

/* Formats `lw` as --disk-low-water reads it ("5%", "1073741824"). */
void disk_format_low_water(const struct disk_low_water *lw,
                           char *out,
                           size_t len);

/*
 * Checks `dir` when DISK_CHECK_MS passed since the last check (now_ms:
 * monotonic): updates *w and logs `disk_low` (warn, at most every
 * DISK_WARN_EVERY ms while low) and `disk_ok` when space returns.  A
 * failed statvfs keeps the last figures (logged at debug).
 */
void disk_watch_check(struct disk_watch *w,
                      const char *dir,
                      const struct disk_low_water *lw,
                      uint64_t now_ms);

/*
 * The reason a node with a read-only engine gives (for /health, INFO and
 * the log): what happened and what the operator must do, one line into
 * out[len].  `error`: engine_stats.error (RK_ENOSPC: a full disk, which
 * heals by itself once space returns; else an I/O error: restart).
 */
void disk_degraded_reason(const struct disk_watch *w,
                          const char *dir,
                          int error,
                          char *out,
                          size_t len);

/* Whether free space is back for engine_recover: known and not below the
 * low-water mark (nor 0 bytes). */
bool disk_has_room(const struct disk_watch *w);

/*
 * Checks the data directory before the engine opens it (issue 15 item 4):
 * RK_OK when it does not exist yet (the engine makes it 0700) or is a
 * directory owned by this process's user that group and others cannot
 * write; else RK_EPERM (or RK_EINVAL: not a directory) with `err` saying
 * what to run (chown, chmod go-w).  Anyone else who can write it could
 * plant symbolic links or replace files there.  Blocking (start-up).
 */
int disk_check_data_dir(const char *dir, char *err, size_t errlen);

#endif /* RINGKV_SERVER_DISK_H */
