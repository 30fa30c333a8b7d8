/*
 * cluster_secret.c - the cluster secret file; see cluster_secret.h.
 */
#include "server/cluster_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "server/fileio.h"

int cluster_secret_store(const char *data_dir,
                         const unsigned char *secret,
                         size_t len,
                         char *err,
                         size_t errlen)
{
    char dst[4200], text[2 * PEER_AUTH_SECRET_MAX + 2];
    snprintf(dst, sizeof(dst), "%s/%s", data_dir, CLUSTER_SECRET_FILE);
    size_t tl = peer_auth_secret_format(secret, len, text, sizeof(text));
    int rc = rk_file_replace(dst, text, tl, 0600);
    int e = errno;
    OPENSSL_cleanse(text, sizeof(text));
    if (rc != RK_OK) {
        snprintf(err, errlen, "cannot write %s: %s", dst, strerror(e));
        return rc;
    }
    return RK_OK;
}

int cluster_secret_load(const char *data_dir,
                        const char *file,
                        unsigned char *out,
                        size_t *len,
                        bool *generated,
                        char *path,
                        size_t path_cap,
                        char *err,
                        size_t errlen)
{
    *generated = false;
    bool own = file == NULL || file[0] == '\0';
    if (own) {
        snprintf(path, path_cap, "%s/%s", data_dir, CLUSTER_SECRET_FILE);
    } else {
        snprintf(path, path_cap, "%s", file);
    }
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && own) {
        unsigned char s[PEER_AUTH_SECRET_GEN];
        if (RAND_bytes(s, sizeof(s)) != 1) {
            snprintf(err, errlen,
                     "cannot make a cluster secret: no random "
                     "bytes from OpenSSL");
            return RK_EIO;
        }
        int rc = cluster_secret_store(data_dir, s, sizeof(s), err, errlen);
        if (rc == RK_OK) {
            memcpy(out, s, sizeof(s));
            *len = sizeof(s);
            *generated = true;
        }
        OPENSSL_cleanse(s, sizeof(s));
        return rc;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the cluster secret %s: %s%s", path,
                 strerror(errno),
                 errno == ELOOP ? " (a symbolic link is refused)" : "");
        return errno == ENOENT ? RK_ENOTFOUND : RK_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "the cluster secret %s is not a regular file",
                 path);
        return RK_EINVAL;
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        snprintf(err, errlen,
                 "the cluster secret %s belongs to uid %u, not to this "
                 "process's user (uid %u): chown it",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        return RK_EPERM;
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        snprintf(err, errlen,
                 "the cluster secret %s is readable or writable by others "
                 "(mode %03o): chmod 600 %s",
                 path, (unsigned)(st.st_mode & 0777), path);
        return RK_EPERM;
    }
    char text[PEER_AUTH_SECRET_FILE_MAX + 1];
    size_t tl = 0;
    for (;;) {
        ssize_t n = read(fd, text + tl, sizeof(text) - tl);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        tl += (size_t)n;
        if (tl == sizeof(text)) {
            break;
        }
    }
    close(fd);
    const char *why = NULL;
    int rc = tl > PEER_AUTH_SECRET_FILE_MAX
                 ? RK_EINVAL
                 : peer_auth_secret_parse(text, tl, out, len, &why);
    OPENSSL_cleanse(text, sizeof(text));
    if (rc != RK_OK) {
        snprintf(err, errlen, "the cluster secret %s is not valid: %s", path,
                 why ? why : "too long");
        return RK_EINVAL;
    }
    return RK_OK;
}
