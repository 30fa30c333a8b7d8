/*
 * cluster_secret.h - the cluster secret on disk (issue 15 item 1): the
 * key peers authenticate each other with (proto/peer_auth.h).
 * docs/security.md, "Peer authentication".
 */
#ifndef RINGKV_SERVER_CLUSTER_SECRET_H
#define RINGKV_SERVER_CLUSTER_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/peer_auth.h"

#define CLUSTER_SECRET_FILE "cluster.secret" /* in the data dir */

/*
 * Loads the cluster secret into out[PEER_AUTH_SECRET_MAX] (*len bytes).
 * `file` is --cluster-secret-file, or "" for DATA_DIR/cluster.secret,
 * which is made (PEER_AUTH_SECRET_GEN random bytes from RAND_bytes, mode
 * 0600, *generated = true) when it does not exist.  The file is opened
 * with O_NOFOLLOW (a symlink is refused), must be a regular file owned by
 * this process's user with no group or other permissions (RK_EPERM: err
 * says the chmod or chown to run), and hold the secret as hex
 * (peer_auth_secret_parse; RK_EINVAL).  `path` receives the file's path.
 * Thread: any; blocking file I/O (start-up).
 */
int cluster_secret_load(const char *data_dir,
                        const char *file,
                        unsigned char *out,
                        size_t *len,
                        bool *generated,
                        char *path,
                        size_t path_cap,
                        char *err,
                        size_t errlen);

/*
 * Replaces DATA_DIR/cluster.secret with `secret` (len bytes, as hex):
 * written 0600 to a temp file opened O_EXCL|O_NOFOLLOW, fsynced, renamed,
 * directory fsynced.  RK_EIO with err set on failure.  Blocking.
 */
int cluster_secret_store(const char *data_dir,
                         const unsigned char *secret,
                         size_t len,
                         char *err,
                         size_t errlen);

#endif
