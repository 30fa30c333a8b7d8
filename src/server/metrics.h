/*
 * metrics.h - the Prometheus text exposition of ringkvd (GET /metrics;
 * issue 6 item 3; docs/observability.md).  Rendering helpers shared with
 * cluster.c.  Thread: the loop.
 */
#ifndef RINGKV_SERVER_METRICS_H
#define RINGKV_SERVER_METRICS_H

#include <stdint.h>

#include "common/buf.h"

struct server;
struct lat_hist;

/* Appends every metric of this node to out (text format 0.0.4). */
void metrics_render(struct server *s, struct rk_buf *out);

/* "# HELP name help" and "# TYPE name type" lines. */
void metrics_family(struct rk_buf *out,
                    const char *name,
                    const char *type,
                    const char *help);
/* One sample: name{labels} v (labels may be NULL or ""). */
void metrics_u64(struct rk_buf *out,
                 const char *name,
                 const char *labels,
                 uint64_t v);
/* A family with a single unlabelled sample. */
void metrics_one(struct rk_buf *out,
                 const char *name,
                 const char *type,
                 const char *help,
                 uint64_t v);
/* The _bucket/_sum/_count samples of a histogram (family lines not
 * included). */
void metrics_hist(struct rk_buf *out,
                  const char *name,
                  const char *labels,
                  const struct lat_hist *h);

#endif /* RINGKV_SERVER_METRICS_H */
