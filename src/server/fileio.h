/*
 * fileio.h - small whole-file reads and atomic replacements for the
 * server's own files (ACL file, cluster state, cluster secret).
 */
#ifndef RINGKV_SERVER_FILEIO_H
#define RINGKV_SERVER_FILEIO_H

#include <stddef.h>
#include <sys/stat.h>

#include "common/buf.h"

/*
 * Replaces `path` with p[0..len) atomically: writes "<path>.tmp" (created
 * with `mode`, never following a symbolic link), fsyncs it, renames it
 * over `path` and fsyncs the directory.  A crash leaves the old file or
 * the new one, never a mix.  Returns RK_OK, or RK_EIO with `errno` set
 * (the temporary file is removed).  Thread: any.
 */
int rk_file_replace(const char *path, const void *p, size_t len, int mode);

/*
 * Reads the regular file `path` (not through a symbolic link; a FIFO or
 * device is refused without blocking) into `out` (cleared first), at
 * most `max` bytes, and its fstat into *st when st is not NULL.  Returns
 * RK_OK, RK_ENOTFOUND when it does not exist, RK_EINVAL when it is not a
 * regular file or is larger than max, RK_EIO (errno set) or RK_ENOMEM.
 * Thread: any.
 */
int rk_file_read(const char *path,
                 size_t max,
                 struct rk_buf *out,
                 struct stat *st);

#endif /* RINGKV_SERVER_FILEIO_H */
