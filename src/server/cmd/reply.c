/*
 * cmd/reply.c - reply helpers: RESP replies into the client's output buffer,
 * errors counted per command, with Redis's semantics, reply types and error
 * texts (https://redis.io/docs/latest/commands/).  Split from commands.c (issue
 * 11 item 3); see cmd/internal.h.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster/dvv.h"
#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/glob.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/cmd/internal.h"
#include "server/internal.h"
#include "server/keyspace.h"

/* ---- replies -------------------------------------------------------- */

void reply_ok(struct client *c)
{
    rk_buf_append(&c->obuf, "+OK\r\n", 5);
}

void reply_simple(struct client *c, const char *s)
{
    resp_w_simple(&c->obuf, s);
}

static void count_error(struct client *c)
{
    if (c->cur_cmd && c->srv->cmdstats) {
        c->srv->cmdstats[command_index(c->cur_cmd)].errors++;
    }
}

void reply_error(struct client *c, const char *msg)
{
    count_error(c);
    resp_w_error(&c->obuf, msg);
}

void reply_errorf(struct client *c, const char *fmt, ...)
{
    count_error(c);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp_w_error(&c->obuf, msg);
}

void reply_int(struct client *c, int64_t v)
{
    resp_w_int(&c->obuf, v);
}

void reply_bulk(struct client *c, const void *p, size_t len)
{
    resp_w_bulk(&c->obuf, p, len);
}

void reply_bulk_str(struct client *c, const char *s)
{
    resp_w_bulk(&c->obuf, s, strlen(s));
}

void reply_null(struct client *c)
{
    resp_w_null(&c->obuf, c->proto);
}

void reply_array(struct client *c, size_t n)
{
    resp_w_array(&c->obuf, n);
}

void reply_map(struct client *c, size_t n_pairs)
{
    resp_w_map(&c->obuf, c->proto, n_pairs);
}
