/*
 * vfs.c - the POSIX backend of the file operations bitcask reaches the OS
 * through (vfs.h; STYLE.md 1.6, after SQLite's os_unix.c).  Each member is
 * a thin wrapper of one libc call; errors are libc's (-1 and errno).
 * Thread: any (the calls are the kernel's).
 */
#include "storage/vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int posix_open(struct rk_vfs *vfs,
                      const char *path,
                      int flags,
                      mode_t mode)
{
    (void)vfs;
    /* a file of the data dir is never a symbolic link (issue 15): one
     * planted there is refused (ELOOP), not followed; the data dir itself
     * may be one (O_DIRECTORY opens) */
    if ((flags & O_DIRECTORY) == 0) {
        flags |= O_NOFOLLOW;
    }
    return open(path, flags | O_CLOEXEC, mode);
}

static int posix_close(struct rk_vfs *vfs, int fd)
{
    (void)vfs;
    return close(fd);
}

static ssize_t posix_pread(struct rk_vfs *vfs,
                           int fd,
                           void *buf,
                           size_t n,
                           uint64_t off)
{
    (void)vfs;
    return pread(fd, buf, n, (off_t)off);
}

static ssize_t posix_pwrite(struct rk_vfs *vfs,
                            int fd,
                            const void *buf,
                            size_t n,
                            uint64_t off)
{
    (void)vfs;
    return pwrite(fd, buf, n, (off_t)off);
}

static ssize_t posix_pwritev(struct rk_vfs *vfs,
                             int fd,
                             const struct iovec *iov,
                             int n_iov,
                             uint64_t off)
{
    (void)vfs;
    return pwritev(fd, iov, n_iov, (off_t)off);
}

static int posix_fdatasync(struct rk_vfs *vfs, int fd)
{
    (void)vfs;
    return fdatasync(fd);
}

static int posix_fsync(struct rk_vfs *vfs, int fd)
{
    (void)vfs;
    return fsync(fd);
}

static int posix_ftruncate(struct rk_vfs *vfs, int fd, uint64_t len)
{
    (void)vfs;
    return ftruncate(fd, (off_t)len);
}

static int posix_file_size(struct rk_vfs *vfs, int fd, uint64_t *size)
{
    (void)vfs;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static int posix_map(struct rk_vfs *vfs, int fd, size_t len, const void **out)
{
    (void)vfs;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        return -1;
    }
    *out = p;
    return 0;
}

static int posix_unmap(struct rk_vfs *vfs, const void *p, size_t len)
{
    (void)vfs;
    return munmap((void *)p, len);
}

static int posix_rename(struct rk_vfs *vfs, const char *from, const char *to)
{
    (void)vfs;
    return rename(from, to);
}

static int posix_unlink(struct rk_vfs *vfs, const char *path)
{
    (void)vfs;
    return unlink(path);
}

static int posix_mkdir(struct rk_vfs *vfs, const char *path, mode_t mode)
{
    (void)vfs;
    return mkdir(path, mode);
}

static int posix_list(struct rk_vfs *vfs,
                      const char *dir,
                      rk_vfs_name_cb cb,
                      void *cb_data)
{
    (void)vfs;
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (!cb(cb_data, de->d_name)) {
            break;
        }
    }
    closedir(d);
    return 0;
}

static int posix_lock(struct rk_vfs *vfs, int fd)
{
    (void)vfs;
    return flock(fd, LOCK_EX | LOCK_NB);
}

static struct rk_vfs posix_vfs = {
    .open = posix_open,
    .close = posix_close,
    .pread = posix_pread,
    .pwrite = posix_pwrite,
    .pwritev = posix_pwritev,
    .fdatasync = posix_fdatasync,
    .fsync = posix_fsync,
    .ftruncate = posix_ftruncate,
    .file_size = posix_file_size,
    .map = posix_map,
    .unmap = posix_unmap,
    .rename = posix_rename,
    .unlink = posix_unlink,
    .mkdir = posix_mkdir,
    .list = posix_list,
    .lock = posix_lock,
    .data = NULL,
};

struct rk_vfs *rk_vfs_posix(void)
{
    return &posix_vfs;
}
