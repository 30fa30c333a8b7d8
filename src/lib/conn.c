/* conn.c - one blocking client connection with deadlines (internal.h).
 * The socket is non-blocking; every wait is a poll() bounded by the call's
 * deadline, so no attempt outlives it. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "lib/internal.h"

#define RKL_MAX_DEPTH  64
#define RKL_READ_CHUNK (16 * 1024)

struct rkl_conn
{
    int fd;
    struct rk_buf wbuf;
    struct rk_buf rbuf;
};

int64_t rkl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seterr(char *errbuf, size_t errlen, const char *what, int e)
{
    if (errbuf != NULL && errlen > 0) {
        snprintf(errbuf, errlen, "%s%s%s", what, e ? ": " : "",
                 e ? strerror(e) : "");
    }
}

/* Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1
 * error (errno). */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - rkl_now_ms();
        if (left <= 0) {
            return 0;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0) {
            return 1;
        }
        if (n < 0 && errno != EINTR) {
            return -1;
        }
    }
}

static int connect_one(const struct addrinfo *ai,
                       int64_t deadline_ms,
                       int *fd_out,
                       char *errbuf,
                       size_t errlen)
{
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
               ai->ai_protocol);
    if (fd < 0) {
        seterr(errbuf, errlen, "socket", errno);
        return RINGKV_EIO;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            seterr(errbuf, errlen, "connect", errno);
            close(fd);
            return RINGKV_EIO;
        }
        int w = wait_fd(fd, POLLOUT, deadline_ms);
        if (w <= 0) {
            seterr(errbuf, errlen, w == 0 ? "connect timed out" : "poll",
                   w == 0 ? 0 : errno);
            close(fd);
            return w == 0 ? RINGKV_ETIMEDOUT : RINGKV_EIO;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
            soerr != 0) {
            seterr(errbuf, errlen, "connect", soerr ? soerr : errno);
            close(fd);
            return RINGKV_EIO;
        }
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fd_out = fd;
    return RINGKV_OK;
}

int rkl_conn_open(const struct rkl_addr *a,
                  int64_t deadline_ms,
                  struct rkl_conn **out,
                  char *errbuf,
                  size_t errlen)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", a->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(a->host, port, &hints, &res);
    if (g != 0) {
        if (errbuf != NULL && errlen > 0) {
            snprintf(errbuf, errlen, "resolve: %s", gai_strerror(g));
        }
        return g == EAI_MEMORY ? RINGKV_ENOMEM : RINGKV_EIO;
    }
    int rc = RINGKV_EIO;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(ai, deadline_ms, &fd, errbuf, errlen);
        if (rc == RINGKV_OK || rc == RINGKV_ETIMEDOUT) {
            break;
        }
    }
    freeaddrinfo(res);
    if (rc != RINGKV_OK) {
        return rc;
    }
    struct rkl_conn *c = rk_calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return RINGKV_ENOMEM;
    }
    c->fd = fd;
    rk_buf_init(&c->wbuf);
    rk_buf_init(&c->rbuf);
    *out = c;
    return RINGKV_OK;
}

static int write_all(struct rkl_conn *c,
                     int64_t deadline_ms,
                     bool *sent,
                     char *errbuf,
                     size_t errlen)
{
    size_t off = 0;
    while (off < c->wbuf.len) {
        ssize_t n =
            send(c->fd, c->wbuf.base + off, c->wbuf.len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            *sent = true;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_fd(c->fd, POLLOUT, deadline_ms);
            if (w == 0) {
                seterr(errbuf, errlen, "write timed out", 0);
                return RINGKV_ETIMEDOUT;
            }
            if (w < 0) {
                seterr(errbuf, errlen, "poll", errno);
                return RINGKV_EIO;
            }
            continue;
        }
        seterr(errbuf, errlen, "write", errno);
        return RINGKV_EIO;
    }
    return RINGKV_OK;
}

int rkl_conn_request(struct rkl_conn *c,
                     size_t argc,
                     const char *const *argv,
                     const size_t *lens,
                     int64_t deadline_ms,
                     bool *sent,
                     struct resp_value **reply,
                     char *errbuf,
                     size_t errlen)
{
    *sent = false;
    rk_buf_clear(&c->wbuf);
    if (resp_w_command(&c->wbuf, argc, argv, lens) != RK_OK) {
        return RINGKV_ENOMEM;
    }
    int rc = write_all(c, deadline_ms, sent, errbuf, errlen);
    if (rc != RINGKV_OK) {
        return rc;
    }
    /* rbuf is empty between requests: one reply per request, in order. */
    for (;;) {
        if (c->rbuf.len > 0) {
            size_t consumed = 0, need = 0;
            struct resp_value *v = NULL;
            int p =
                resp_reply_parse(c->rbuf.base, c->rbuf.len, RKL_MAX_DEPTH,
                                 RESP_DEFAULT_MAX_BULK, &consumed, &need, &v);
            if (p == RK_OK) {
                rk_buf_consume(&c->rbuf, consumed);
                *reply = v;
                return RINGKV_OK;
            }
            if (p == RK_ENOMEM) {
                return RINGKV_ENOMEM;
            }
            if (p != RK_EAGAIN) {
                seterr(errbuf, errlen, "malformed reply", 0);
                return RINGKV_EPROTO;
            }
            if (need > c->rbuf.len &&
                rk_buf_reserve(&c->rbuf, need - c->rbuf.len) != RK_OK) {
                return RINGKV_ENOMEM;
            }
        }
        if (rk_buf_reserve(&c->rbuf, RKL_READ_CHUNK) != RK_OK) {
            return RINGKV_ENOMEM;
        }
        int w = wait_fd(c->fd, POLLIN, deadline_ms);
        if (w == 0) {
            seterr(errbuf, errlen, "read timed out", 0);
            return RINGKV_ETIMEDOUT;
        }
        if (w < 0) {
            seterr(errbuf, errlen, "poll", errno);
            return RINGKV_EIO;
        }
        ssize_t n = recv(c->fd, c->rbuf.base + c->rbuf.len,
                         c->rbuf.cap - c->rbuf.len, 0);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
        } else if (n == 0) {
            seterr(errbuf, errlen, "server closed the connection", 0);
            return RINGKV_EIO;
        } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            seterr(errbuf, errlen, "read", errno);
            return RINGKV_EIO;
        }
    }
}

void rkl_conn_close(struct rkl_conn *c)
{
    if (c == NULL) {
        return;
    }
    close(c->fd);
    rk_buf_fini(&c->wbuf);
    rk_buf_fini(&c->rbuf);
    rk_free(c);
}
