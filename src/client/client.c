/*
 * client.c - blocking RESP client connection; see client.h.
 *
 * Reading a reply: resp_reply_parse() is not incremental (it parses from
 * the start of the buffer each time), so to keep a large reply O(n) we
 * only re-parse when (a) the buffer holds at least the bytes the last
 * attempt said it needs, and (b) it has doubled since the last failed
 * attempt or the socket has nothing more to read right now.
 */
#include "client/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"

#define READ_CHUNK_BYTES  (64u * 1024u)
#define READ_MAX_BYTES    (16u * 1024u * 1024u) /* most one recv asks for */
#define KEEP_BUFFER_BYTES (1024u * 1024u)

struct cli_conn
{
    int fd;                       /* connected socket; -1 after close */
    bool broken;                  /* stream no longer trusted */
    struct rk_buf rbuf;           /* unparsed reply bytes */
    struct rk_buf wbuf;           /* encoded command being sent */
    size_t need;                  /* bytes the last parse needed */
    size_t fail_len;              /* rbuf.len at the last failed parse */
    bool eof;                     /* the server closed its side */
    char errmsg[CLI_ERRBUF_SIZE]; /* last error, one line */
};

static void set_err(char *errbuf, const char *msg)
{
    if (errbuf != NULL) {
        snprintf(errbuf, CLI_ERRBUF_SIZE, "%s", msg);
    }
}

/* Connects `fd` (non-blocking) within timeout_ms; 0 or a positive errno. */
static int connect_fd(int fd,
                      const struct sockaddr *sa,
                      socklen_t salen,
                      int timeout_ms)
{
    if (connect(fd, sa, salen) == 0) {
        return 0;
    }
    if (errno != EINPROGRESS) {
        return errno;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int n;
    do {
        n = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno;
    }
    if (n == 0) {
        return ETIMEDOUT;
    }
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
        return errno;
    }
    return soerr;
}

/* Tries each address; returns a blocking connected fd or -1 and *err. */
static int connect_any(const struct addrinfo *list, int timeout_ms, int *err)
{
    *err = ECONNREFUSED;
    for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            *err = errno;
            continue;
        }
        int flags = fcntl(fd, F_GETFL);
        int e = flags < 0 ? errno : 0;
        if (e == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
            e = errno;
        }
        if (e == 0) {
            e = connect_fd(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
        }
        if (e == 0 && fcntl(fd, F_SETFL, flags) < 0) {
            e = errno;
        }
        if (e == 0) {
            int one = 1;
            /* Latency, not throughput: one small request per round trip. */
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        *err = e;
        close(fd);
    }
    return -1;
}

int cli_conn_open(const char *host,
                  int port,
                  int timeout_ms,
                  struct cli_conn **out,
                  char *errbuf)
{
    if (host == NULL || port < 1 || port > 65535 || timeout_ms < 0) {
        set_err(errbuf, "invalid address");
        return RK_EINVAL;
    }
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host, service, &hints, &list);
    if (gai != 0) {
        set_err(errbuf,
                gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return gai == EAI_MEMORY ? RK_ENOMEM : RK_EIO;
    }
    int err = 0;
    int fd = connect_any(list, timeout_ms, &err);
    freeaddrinfo(list);
    if (fd < 0) {
        set_err(errbuf, strerror(err));
        return err == ETIMEDOUT ? RK_ETIMEDOUT : RK_EIO;
    }
    struct cli_conn *c = rk_calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        set_err(errbuf, rk_strerror(RK_ENOMEM));
        return RK_ENOMEM;
    }
    c->fd = fd;
    rk_buf_init(&c->rbuf);
    rk_buf_init(&c->wbuf);
    *out = c;
    return RK_OK;
}

/* Marks `c` broken with `msg`; returns rc for tail calls. */
static int fail(struct cli_conn *c, int rc, const char *msg)
{
    c->broken = true;
    snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg);
    return rc;
}

static int write_all(struct cli_conn *c, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(c, RK_EIO, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return RK_OK;
}

/* True when the socket has bytes (or EOF) to read without blocking. */
static bool readable_now(const struct cli_conn *c)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

/* Blocks until at least one byte arrives; appends it to rbuf. */
static int read_some(struct cli_conn *c)
{
    size_t want = READ_CHUNK_BYTES;
    if (c->need > c->rbuf.len && c->need - c->rbuf.len > want) {
        want = c->need - c->rbuf.len;
        want = want > READ_MAX_BYTES ? READ_MAX_BYTES : want;
    }
    if (rk_buf_reserve(&c->rbuf, want) != RK_OK) {
        return fail(c, RK_ENOMEM, rk_strerror(RK_ENOMEM));
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf.base + c->rbuf.len, want, 0);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            return RK_OK;
        }
        if (n == 0) {
            c->eof = true; /* rbuf may still hold a whole reply */
            return RK_OK;
        }
        if (errno != EINTR) {
            return fail(c, RK_EIO, strerror(errno));
        }
    }
}

static bool should_parse(const struct cli_conn *c)
{
    if (c->rbuf.len == 0 || c->rbuf.len < c->need) {
        return false;
    }
    if (c->eof) {
        return c->rbuf.len != c->fail_len; /* no more bytes will come */
    }
    if (c->fail_len == 0 || c->rbuf.len / 2 >= c->fail_len) {
        return true;
    }
    return !readable_now(c);
}

/* Why a reply did not parse, in words a user can act on: ringkv's HTTP
 * and peer ports answer in their own protocols (issue 17 item 2). */
static const char *wrong_port_hint(const struct rk_buf *b)
{
    if (b->len >= 5 && memcmp(b->base, "HTTP/", 5) == 0) {
        return "this is an HTTP port (ringkvd's HTTP API is on the RESP "
               "port + 1 by default); RESP is on --port (7379 by default)";
    }
    if (b->len >= 4 && memcmp(b->base, "RKVP", 4) == 0) {
        return "this is ringkvd's peer (node-to-node) port (the RESP port + 2 "
               "by default); RESP is on --port (7379 by default)";
    }
    /* a TLS alert record in the clear: what a ringkvd peer port with
     * tls-cluster yes answers to anything but TLS (a TLS RESP port sends
     * nothing) */
    static const unsigned char tls_alert[] = {0x15, 0x03, 0x03, 0x00,
                                              0x02, 0x02, 0x46};
    if (b->len >= sizeof(tls_alert) &&
        memcmp(b->base, tls_alert, sizeof(tls_alert)) == 0) {
        return "this is ringkvd's peer (node-to-node) port, speaking TLS "
               "(tls-cluster yes; the RESP port + 2 by default); RESP is on "
               "--port (7379 by default)";
    }
    return "Protocol error in the server's reply";
}

int cli_conn_read_reply(struct cli_conn *c, struct resp_value **reply)
{
    if (c->broken) {
        return RK_ECLOSED;
    }
    for (;;) {
        if (should_parse(c)) {
            size_t consumed = 0;
            size_t need = 0;
            struct resp_value *v = NULL;
            int rc =
                resp_reply_parse(c->rbuf.base, c->rbuf.len, CLI_MAX_REPLY_DEPTH,
                                 RESP_DEFAULT_MAX_BULK, &consumed, &need, &v);
            if (rc == RK_OK) {
                rk_buf_consume(&c->rbuf, consumed);
                rk_buf_shrink(&c->rbuf, KEEP_BUFFER_BYTES);
                c->need = 0;
                c->fail_len = 0;
                *reply = v;
                return RK_OK;
            }
            if (rc == RK_EPROTO) {
                return fail(c, rc, wrong_port_hint(&c->rbuf));
            }
            if (rc != RK_EAGAIN) {
                return fail(c, rc, rk_strerror(rc));
            }
            c->need = need > c->rbuf.len ? need : c->rbuf.len + 1;
            c->fail_len = c->rbuf.len;
        }
        if (c->eof) {
            return fail(c, RK_EIO, "Server closed the connection");
        }
        int rc = read_some(c);
        if (rc != RK_OK) {
            return rc;
        }
    }
}

int cli_conn_command(struct cli_conn *c,
                     size_t argc,
                     const char *const *argv,
                     const size_t *lens,
                     struct resp_value **reply)
{
    if (c->broken) {
        return RK_ECLOSED;
    }
    if (argc == 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "empty command");
        return RK_EINVAL;
    }
    rk_buf_clear(&c->wbuf);
    if (resp_w_command(&c->wbuf, argc, argv, lens) != RK_OK) {
        /* Nothing was sent: the stream is still in step. */
        snprintf(c->errmsg, sizeof(c->errmsg), "%s", rk_strerror(RK_ENOMEM));
        rk_buf_fini(&c->wbuf);
        return RK_ENOMEM;
    }
    int rc = write_all(c, c->wbuf.base, c->wbuf.len);
    rk_buf_clear(&c->wbuf);
    rk_buf_shrink(&c->wbuf, KEEP_BUFFER_BYTES);
    if (rc != RK_OK) {
        return rc;
    }
    return cli_conn_read_reply(c, reply);
}

const char *cli_conn_errmsg(const struct cli_conn *c)
{
    return c->errmsg;
}

bool cli_conn_is_broken(const struct cli_conn *c)
{
    return c->broken;
}

void cli_conn_close(struct cli_conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    rk_buf_fini(&c->rbuf);
    rk_buf_fini(&c->wbuf);
    rk_free(c);
}
