/*
 * vfs.h - the file operations of one storage engine instance (DESIGN.md 2a;
 * STYLE.md 1.6), after SQLite's VFS (src/os_unix.c, and the crash-testing
 * VFS of src/test6.c).
 *
 * Every call bitcask makes to reach a file or a directory goes through the
 * struct rk_vfs its engine was opened with (engine_opts.vfs): opening,
 * reading, writing, syncing, truncating, sizing, read-only mapping,
 * renaming, unlinking, creating and listing the data directory, and taking
 * its lock.  Bitcask never calls open(2), mmap(2), opendir(3) or flock(2)
 * itself; only the POSIX backend (vfs.c) does.  (The keydir's anonymous
 * mappings are memory, not files, and stay outside.)  So a simulator gives
 * every node of a cluster run in one process its own disk, with its own faults:
 * one struct rk_vfs per node, whose `data` is that node's disk.
 *
 * Backends: rk_vfs_posix() (vfs.c) for the real file system;
 * tests/unit/storage/sim_disk.h, an in-memory disk with power-loss
 * semantics after test6.c (a crash keeps, drops or tears each write not yet
 * fdatasynced, and keeps a prefix of the directory changes made since the
 * last fsync of the directory).
 *
 * Conventions, as libc's: `fd` is a small non-negative int the backend
 * hands out (a simulator numbers its own); calls return -1 (ssize_t calls
 * -1) and set errno on failure; paths are NUL-terminated, made by joining
 * the engine's data directory and a file name with '/'.  `open` flags are
 * the POSIX ones bitcask uses: O_RDONLY, O_WRONLY or O_RDWR, plus O_CREAT,
 * O_TRUNC and O_DIRECTORY (the latter only to fsync a directory).  Offsets
 * and lengths are bytes.
 *
 * Thread: an engine calls its vfs from its owner thread and from its
 * background work (its own threads, or the jobs it submits to the
 * executors in engine_opts), concurrently unless every executor runs jobs
 * inline on the owner's thread (a simulator).  Calls on different fds may
 * overlap; a backend used with threads must be thread-safe.  errno is
 * per thread, as in libc.
 */
#ifndef RINGKV_STORAGE_VFS_H
#define RINGKV_STORAGE_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Called by rk_vfs.list for each entry; `name` is a view valid during the
 * call.  Return true to go on, false to stop the listing. */
typedef bool (*rk_vfs_name_cb)(void *data, const char *name);

struct rk_vfs
{
    /* Opens `path` (flags and mode as open(2); O_CREAT files get `mode`).
     * Returns an fd, or -1. */
    int (*open)(struct rk_vfs *vfs, const char *path, int flags, mode_t mode);
    /* Closes fd; releases a lock taken on it.  Mappings stay valid. */
    int (*close)(struct rk_vfs *vfs, int fd);
    /* As pread(2)/pwrite(2): bytes transferred (may be short), or -1. */
    ssize_t (
        *pread)(struct rk_vfs *vfs, int fd, void *buf, size_t n, uint64_t off);
    ssize_t (*pwrite)(struct rk_vfs *vfs,
                      int fd,
                      const void *buf,
                      size_t n,
                      uint64_t off);
    /* As pwritev(2).  May be NULL: bitcask then writes the iovecs one by
     * one with pwrite (records over 512 KiB are written this way). */
    ssize_t (*pwritev)(struct rk_vfs *vfs,
                       int fd,
                       const struct iovec *iov,
                       int n_iov,
                       uint64_t off);
    /* Makes fd's data (and its size) durable.  0 or -1.  After a failure
     * bitcask never retries: it turns read-only (STYLE.md 1.3). */
    int (*fdatasync)(struct rk_vfs *vfs, int fd);
    /* Makes a directory's entries durable (creations, renames, unlinks
     * in it); fd was opened with O_DIRECTORY.  0 or -1. */
    int (*fsync)(struct rk_vfs *vfs, int fd);
    /* Sets fd's size to len bytes.  0 or -1. */
    int (*ftruncate)(struct rk_vfs *vfs, int fd, uint64_t len);
    /* Stores fd's size in bytes in *size.  0 or -1 (*size untouched). */
    int (*file_size)(struct rk_vfs *vfs, int fd, uint64_t *size);
    /*
     * Maps fd read-only over bytes [0, len) (len > 0; may exceed the file
     * size) and stores the address in *out.  0 or -1.  The view is
     * coherent with the file, as MAP_SHARED: bytes written later with
     * pwrite become visible in it once the write returns.  Only bytes
     * below the file's size are ever read.  The view stays valid after
     * the fd is closed and the file is renamed, unlinked or truncated
     * (for the bytes still below its size), until `unmap`.
     */
    int (*map)(struct rk_vfs *vfs, int fd, size_t len, const void **out);
    /* Ends a view returned by map with the same len.  0 or -1. */
    int (*unmap)(struct rk_vfs *vfs, const void *p, size_t len);
    /* As rename(2) (atomic replace), unlink(2), mkdir(2).  0 or -1. */
    int (*rename)(struct rk_vfs *vfs, const char *from, const char *to);
    int (*unlink)(struct rk_vfs *vfs, const char *path);
    int (*mkdir)(struct rk_vfs *vfs, const char *path, mode_t mode);
    /*
     * Calls cb(cb_data, name) for each entry of directory `dir` except "."
     * and "..", in no particular order, until cb returns false.  cb must
     * not change the directory.  0, or -1 when `dir` cannot be read.
     */
    int (*list)(struct rk_vfs *vfs,
                const char *dir,
                rk_vfs_name_cb cb,
                void *cb_data);
    /*
     * Takes an exclusive lock on fd's file without waiting (flock(2)
     * LOCK_EX | LOCK_NB): 0, or -1 with errno EWOULDBLOCK when another
     * open file (in this process or another) holds it.  Released when fd
     * is closed.
     */
    int (*lock)(struct rk_vfs *vfs, int fd);
    void *data; /* the backend's (a simulator: this node's disk) */
};

/*
 * The POSIX backend: open(2) with O_CLOEXEC, mmap(2) MAP_SHARED PROT_READ,
 * fdatasync(2), flock(2), opendir(3)...  One shared instance, never NULL;
 * callers must not modify it.  Wrappers (fault injection in tests) call
 * its members to reach the real file system.  Thread: any.
 */
struct rk_vfs *rk_vfs_posix(void);

#endif /* RINGKV_STORAGE_VFS_H */
