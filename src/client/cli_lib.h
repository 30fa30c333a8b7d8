/*
 * cli_lib.h - the ringkv CLI's key-value verbs on libringkv (issue 13
 * item 4: "the ringkv CLI uses it"): GET, SET [PX|EX n], DEL, INCR,
 * INCRBY, MGET and MSET in their plain forms (and the seed-style aliases
 * that expand to them) go through include/ringkv.h, so that against a
 * cluster they reach a node that serves the key's slot and are retried on
 * another when one fails.  Everything else (other options, other
 * commands, MULTI, RESP3, the REPL) keeps the raw connection of
 * client.h.  The reply is rebuilt as the resp_value the server would have
 * sent, so the output is the same as before.
 */
#ifndef RINGKV_CLIENT_CLI_LIB_H
#define RINGKV_CLIENT_CLI_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/resp.h"
#include "ringkv.h"

enum cli_lib_op
{
    CLI_LIB_GET,
    CLI_LIB_SET,
    CLI_LIB_DEL,
    CLI_LIB_INCR,
    CLI_LIB_MGET,
    CLI_LIB_MSET,
};

/* A command the CLI sends through libringkv; views into the argv. */
struct cli_lib_cmd
{
    enum cli_lib_op op;
    size_t argc;        /* of the whole command */
    char *const *argv;  /* borrowed */
    const size_t *lens; /* borrowed */
    int64_t ttl_ms;     /* SET: 0 = none */
    int64_t by;         /* INCR: 1, INCRBY: its argument */
};

/*
 * Whether argv (argc words, binary-safe) is one of the plain forms above,
 * and if so *out describes it.  Pure.
 */
bool cli__lib_parse(size_t argc,
                    char *const *argv,
                    const size_t *lens,
                    struct cli_lib_cmd *out);

/*
 * Opens a libringkv handle seeded with host:port (and AUTH `password`,
 * NULL for none).  RINGKV_OK and *out (ringkv_destroy), or a RINGKV_E*
 * code with a one-line reason in `why`.  Blocks while it connects.
 */
int cli__lib_open(const char *host,
                  int port,
                  const char *password,
                  struct ringkv **out,
                  char *why,
                  size_t size);

/*
 * Runs `c` on rk.  RK_OK and *reply (returned-owned: resp_value_free), the
 * reply as the server would have sent it (an error reply as RESP_ERROR
 * with the server's text); RK_ENOMEM; or RK_EIO when no node answered
 * (every retry failed), with ringkv_last_error(rk) in `why`.
 */
int cli__lib_run(struct ringkv *rk,
                 const struct cli_lib_cmd *c,
                 struct resp_value **reply,
                 char *why,
                 size_t size);

#endif /* RINGKV_CLIENT_CLI_LIB_H */
