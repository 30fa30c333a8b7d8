/*
 * fileio.c - whole-file reads and atomic replacements (fileio.h).
 */
#include "server/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

static int write_all(int fd, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return RK_EIO;
        }
        off += (size_t)n;
    }
    return RK_OK;
}

int rk_file_replace(const char *path, const void *p, size_t len, int mode)
{
    char tmp[4200], dir[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return RK_EIO;
    }
    (void)unlink(tmp); /* a leftover of a crash; never followed */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  (mode_t)mode);
    if (fd < 0) {
        return RK_EIO;
    }
    int rc = write_all(fd, p, len);
    if (rc == RK_OK && fsync(fd) != 0) {
        rc = RK_EIO;
    }
    int e = errno;
    close(fd);
    if (rc == RK_OK && rename(tmp, path) != 0) {
        rc = RK_EIO;
        e = errno;
    }
    if (rc != RK_OK) {
        (void)unlink(tmp);
        errno = e;
        return rc;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return RK_OK;
}

int rk_file_read(const char *path,
                 size_t max,
                 struct rk_buf *out,
                 struct stat *st_out)
{
    rk_buf_clear(out);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT  ? RK_ENOTFOUND
               : errno == ELOOP ? RK_EINVAL
                                : RK_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return RK_EINVAL;
    }
    if (st_out != NULL) {
        *st_out = st;
    }
    char tmp[4096];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return RK_EIO;
        }
        if (n == 0) {
            break;
        }
        if (out->len + (size_t)n > max) {
            close(fd);
            return RK_EINVAL;
        }
        if (rk_buf_append(out, tmp, (size_t)n) != RK_OK) {
            close(fd);
            return RK_ENOMEM;
        }
    }
    close(fd);
    return RK_OK;
}
