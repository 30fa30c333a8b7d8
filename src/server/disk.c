/*
 * disk.c - see disk.h.
 */
#include "server/disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"

void disk_format_low_water(const struct disk_low_water *lw,
                           char *out,
                           size_t len)
{
    if (lw->pct) {
        snprintf(out, len, "%" PRIu32 "%%", lw->pct);
    } else {
        snprintf(out, len, "%" PRIu64, lw->bytes);
    }
}

void disk_watch_check(struct disk_watch *w,
                      const char *dir,
                      const struct disk_low_water *lw,
                      uint64_t now_ms)
{
    if (w->checked_ms && now_ms < w->checked_ms + DISK_CHECK_MS) {
        return;
    }
    w->checked_ms = now_ms ? now_ms : 1;
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0) {
        rk_log(RK_LOG_DEBUG, "disk_check_failed", "dir=%s error=\"%s\"", dir,
               strerror(errno));
        return;
    }
    uint64_t frag = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    w->known = true;
    w->free_bytes = (uint64_t)sv.f_bavail * frag;
    w->total_bytes = (uint64_t)sv.f_blocks * frag;
    w->low_bytes = lw->pct ? w->total_bytes / 100 * lw->pct : lw->bytes;
    bool low = w->free_bytes < w->low_bytes;
    if (low && (!w->low || now_ms >= w->warned_ms + DISK_WARN_EVERY)) {
        w->warned_ms = now_ms;
        w->warnings++;
        rk_log(RK_LOG_WARN, "disk_low",
               "dir=%s free_bytes=%" PRIu64 " total_bytes=%" PRIu64
               " low_water_bytes=%" PRIu64
               " msg=\"free space is below --disk-low-water: writes fail "
               "and the node turns degraded when it runs out\"",
               dir, w->free_bytes, w->total_bytes, w->low_bytes);
    } else if (!low && w->low) {
        rk_log(RK_LOG_INFO, "disk_ok",
               "dir=%s free_bytes=%" PRIu64 " low_water_bytes=%" PRIu64, dir,
               w->free_bytes, w->low_bytes);
    }
    w->low = low;
}

bool disk_has_room(const struct disk_watch *w)
{
    return w->known && !w->low && w->free_bytes > 0;
}

void disk_degraded_reason(const struct disk_watch *w,
                          const char *dir,
                          int error,
                          char *out,
                          size_t len)
{
    if (error == RK_ENOSPC) {
        snprintf(out, len,
                 "storage is read-only: the disk of %s is full (%" PRIu64
                 " bytes free); free space: the node takes writes again by "
                 "itself once free space is above --disk-low-water "
                 "(checked every %d s; writes go to the other replicas "
                 "meanwhile)",
                 dir, w->free_bytes, DISK_RECOVER_EVERY / 1000);
    } else {
        snprintf(out, len,
                 "storage is read-only after an I/O error (see the log); "
                 "fix the disk of %s, then restart the node (writes go to "
                 "the other replicas meanwhile)",
                 dir);
    }
}

int disk_check_data_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        return errno == ENOENT ? RK_OK : RK_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "the data dir %s is not a directory", dir);
        return RK_EINVAL;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "the data dir %s belongs to uid %u, not to this process's "
                 "user (uid %u): run ringkvd as its owner, or chown it",
                 dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return RK_EPERM;
    }
    if ((st.st_mode & 022) != 0) {
        snprintf(err, errlen,
                 "the data dir %s is writable by group or others (mode "
                 "%03o), who could replace its files or plant links: chmod "
                 "go-w %s",
                 dir, (unsigned)(st.st_mode & 0777), dir);
        return RK_EPERM;
    }
    return RK_OK;
}
