/*
 * fileops.c - the file-ops table bitcask reaches the OS through (STYLE.md
 * 1.6, after SQLite's VFS): the POSIX default and the process-wide switch
 * tests use to inject faults; plus the small clock helpers of storage.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "storage/internal.h"

static int posix_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags | O_CLOEXEC, mode);
}

static int posix_fsync(int fd)
{
    return fsync(fd);
}

const struct storage_fops storage_posix_fops = {
    .open = posix_open,
    .pwrite = pwrite,
    .pread = pread,
    .fdatasync = fdatasync,
    .fsync = posix_fsync,
    .rename = rename,
    .ftruncate = ftruncate,
    .unlink = unlink,
    .close = close,
};

static _Atomic(const struct storage_fops *) g_fops = &storage_posix_fops;

void storage__fops_set(const struct storage_fops *ops)
{
    atomic_store(&g_fops, ops ? ops : &storage_posix_fops);
}

const struct storage_fops *storage__fops_get(void)
{
    return atomic_load(&g_fops);
}

uint64_t storage__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t storage__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
