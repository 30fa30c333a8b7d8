/*
 * client.h - a small blocking client connection to one ringkvd (or any
 * RESP server), the CLI's raw connection: the REPL, arbitrary commands,
 * pub/sub, transactions and RESP3.  The CLI's key-value verbs go through
 * libringkv instead (cli_lib.c), which routes by slot and retries.  The
 * functions are cli_conn_* so that they never clash with libringkv's
 * public ringkv_* names.
 *
 * One connection is one TCP socket plus a read buffer.  A command is
 * encoded with resp_w_command(), written in full, and the next complete
 * reply is parsed with resp_reply_parse() into a resp_value tree.  There is
 * no pipelining, no reconnect and no background thread: callers that want
 * those (the ringkv REPL reconnects) build them on top.
 *
 * Error model (STYLE.md 1.3): functions return RK_OK or a negative rk_err.
 * After RK_EIO or RK_EPROTO from cli_conn_command() (and RK_ENOMEM while
 * reading a reply) the stream can no longer be trusted: the connection is
 * "broken", every later call returns RK_ECLOSED, and the only useful call is
 * cli_conn_close().  cli_conn_errmsg() says what went wrong in one line.
 */
#ifndef RINGKV_CLIENT_CLIENT_H
#define RINGKV_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/resp.h"

/* Size of the `errbuf` cli_conn_open() fills, bytes including the NUL. */
#define CLI_ERRBUF_SIZE 256

/* Deepest reply nesting accepted before RK_EPROTO. */
#define CLI_MAX_REPLY_DEPTH 128

struct cli_conn; /* opaque */

/*
 * Opens a TCP connection to `host`:`port`.
 *  `host`: name or numeric IPv4/IPv6 address, NUL-terminated; every
 *          address getaddrinfo() gives is tried in turn.
 *  `port`: 1..65535.
 *  `timeout_ms`: bound on each connect attempt, > 0; 0 = the OS default.
 *          Reads and writes after connecting never time out (a blocking
 *          command such as BLPOP may legitimately wait).
 *  `errbuf`: CLI_ERRBUF_SIZE bytes or NULL; on failure it receives a
 *          one-line reason without the address ("Connection refused",
 *          "Name or service not known", "Connection timed out").
 * Returns RK_OK and *out (returned-owned: close with cli_conn_close), or
 * RK_EINVAL (bad port or NULL host), RK_ETIMEDOUT, RK_EIO (resolution,
 * socket or connect failure) or RK_ENOMEM; *out is untouched on error.
 * Thread: any; blocks for up to the resolver time plus timeout_ms per
 * address.
 */
int cli_conn_open(const char *host,
                  int port,
                  int timeout_ms,
                  struct cli_conn **out,
                  char *errbuf);

/*
 * Sends one command and waits for its reply.
 *  `argc`: number of arguments, >= 1.
 *  `argv`/`lens`: argc byte strings, binary-safe (need not be
 *          NUL-terminated); borrowed, not kept after the call.
 * Returns RK_OK and *reply (returned-owned tree: free with
 * resp_value_free).  An error reply from the server ("-ERR ...") is a
 * successful call: *reply has type RESP_ERROR.  Otherwise:
 *  - RK_EINVAL: argc == 0 (the connection stays usable);
 *  - RK_EIO: a write or read failed or the server closed the connection
 *    (cli_conn_errmsg: "Server closed the connection", strerror text);
 *  - RK_EPROTO: the reply is malformed or nests deeper than
 *    CLI_MAX_REPLY_DEPTH, or a bulk exceeds RESP_DEFAULT_MAX_BULK;
 *  - RK_ENOMEM;
 *  - RK_ECLOSED: the connection broke in an earlier call.
 * *reply is untouched on error.  After RK_EIO, RK_EPROTO or RK_ECLOSED
 * the connection is broken (see above); after RK_EINVAL, or RK_ENOMEM
 * while encoding the command (nothing sent), it stays usable:
 * cli_conn_is_broken() tells which.
 * Replies are read in order: a RESP3 push message that arrives before
 * the reply is returned as the reply (callers that subscribe read on
 * with cli_conn_read_reply).
 * Writes use MSG_NOSIGNAL: a closed peer gives RK_EIO, never SIGPIPE.
 * Thread: one thread at a time per connection.
 * Complexity: O(command bytes + reply bytes) amortised.
 */
int cli_conn_command(struct cli_conn *c,
                     size_t argc,
                     const char *const *argv,
                     const size_t *lens,
                     struct resp_value **reply);

/*
 * Waits for the next reply without sending anything: the messages that
 * follow SUBSCRIBE or MONITOR, RESP3 push messages.
 * Returns RK_OK and *reply (returned-owned: resp_value_free), or RK_EIO,
 * RK_EPROTO, RK_ENOMEM, RK_ECLOSED as cli_conn_command (each of them leaves
 * the connection broken).  Blocks with no timeout.
 * Thread: one thread at a time per connection.
 */
int cli_conn_read_reply(struct cli_conn *c, struct resp_value **reply);

/*
 * One-line description of the last error on `c` (static or owned by `c`,
 * valid until the next call on `c`); "" if none.  Thread: as the conn.
 */
const char *cli_conn_errmsg(const struct cli_conn *c);

/* True once the connection is broken (see the top of this file). */
bool cli_conn_is_broken(const struct cli_conn *c);

/* Closes the socket and frees `c`; NULL is a no-op. */
void cli_conn_close(struct cli_conn *c);

#endif /* RINGKV_CLIENT_CLIENT_H */
