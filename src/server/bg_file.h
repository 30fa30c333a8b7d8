/*
 * bg_file.h - one small file replaced atomically by a background thread,
 * latest content wins (issue 14: the handoff checkpoint).
 *
 * A pending owner saves its handoff checkpoint (handoff.ckpt) every 100 ms
 * while partitions stream in.  rk_file_replace fsyncs the file and the
 * directory; with a transfer's gigabytes in the page cache that fsync
 * waits for the file system's journal commit, and on the event loop it
 * stalled the very merges the checkpoint records.  A checkpoint only
 * claims what the data engine had already made durable, so writing it
 * late is safe: a crash before the write keeps the previous checkpoint,
 * which resumes from an earlier cursor (more is sent again, nothing is
 * skipped).  Contents put while a write runs replace each other; the
 * newest is written next, so the file never goes back in time.
 *
 * Thread: bg_file_put / bg_file_errors / bg_file_stop from one thread
 * (the event loop); the writes run on the object's own thread.
 */
#ifndef RINGKV_SERVER_BG_FILE_H
#define RINGKV_SERVER_BG_FILE_H

#include <stddef.h>
#include <stdint.h>

struct bg_file;

/*
 * Starts the writer of `path` (copied).  Returns RK_OK and *out, or
 * RK_ENOMEM / RK_EIO (thread creation failed).
 */
int bg_file_start(struct bg_file **out, const char *path);

/*
 * Queues p[0..len) (copied) as the file's next content, replacing any
 * content queued and not yet being written.  RK_OK, or RK_ENOMEM (nothing
 * queued; the caller counts it as a failed write).
 */
int bg_file_put(struct bg_file *f, const void *p, size_t len);

/* Writes that failed so far (each logged once as cluster_persist_failed,
 * with errno). */
uint64_t bg_file_errors(struct bg_file *f);

/*
 * Writes what is still queued, stops the thread and frees f.  NULL is a
 * no-op.
 */
void bg_file_stop(struct bg_file *f);

#endif /* RINGKV_SERVER_BG_FILE_H */
