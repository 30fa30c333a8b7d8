/*
 * metrics_render_bench.c - times the Prometheus text writers of GET
 * /metrics (src/server/metrics.c: metrics_family, metrics_u64,
 * metrics_hist) rendering N series (default 10,000) into an rk_buf, the
 * way on_metrics (src/server/http.c) does: a fresh rk_buf per request,
 * then one copy into an evbuffer.  No live node exposes 10,000 series
 * (its labelled dimensions are commands, 2 series each, and peers, 1
 * each), so bench/metrics_bench.py runs this next to a live ringkvd and
 * reports both.
 *
 * Shapes (each at least N series, counted from the rendered text):
 *   counters    labelled counters, 2 per "command" (command=,result=),
 *               the shape of ringkv_commands_total
 *   histograms  histograms of 19 series (16 buckets, +Inf, _sum,
 *               _count) labelled peer= and class=, non-zero counts
 *   mixed       half of each, in families of 100 series
 *
 * Output, one line per shape (parsed by bench/metrics_bench.py):
 *   shape=S series=N bytes=B render_median_ms=.. render_p99_ms=..
 *   render_max_ms=.. ns_per_series=.. handler_median_ms=..
 *   handler_p99_ms=..
 * where "handler" is render + evbuffer_add of the text (on_metrics
 * without the socket write).
 *
 * Usage: metrics_render_bench [-n series] [-r renders] [-s shape]
 *                             [-o file]  (-o: writes the last shape's text)
 */
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "server/internal.h" /* struct lat_hist, lat_observe */
#include "server/metrics.h"

#define HIST_SERIES (LAT_BUCKETS + 3)

enum shape
{
    SHAPE_COUNTERS,
    SHAPE_HISTOGRAMS,
    SHAPE_MIXED,
};

static const char *const shape_names[] = {"counters", "histograms", "mixed"};

static struct lat_hist g_hist[2]; /* read and write latencies, filled once */
static const char *g_dump;        /* -o: file for the rendered text */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Appends `n` labelled counters (two per command) as one family. */
static size_t render_counters(struct rk_buf *out, size_t fam, size_t n)
{
    char name[64];
    snprintf(name, sizeof(name), "ringkv_bench%zu_commands_total", fam);
    metrics_family(out, name, "counter",
                   "Commands received, by command and result (ok, error).");
    size_t done = 0;
    for (size_t i = 0; done < n; i++) {
        char l[96];
        snprintf(l, sizeof(l), "command=\"cmd%05zu\",result=\"ok\"", i);
        metrics_u64(out, name, l, 1000003 * (i + 1));
        snprintf(l, sizeof(l), "command=\"cmd%05zu\",result=\"error\"", i);
        metrics_u64(out, name, l, i % 7);
        done += 2;
    }
    return done;
}

/* Appends histograms (19 series each) until `n` series, as one family. */
static size_t render_histograms(struct rk_buf *out, size_t fam, size_t n)
{
    char name[64];
    snprintf(name, sizeof(name), "ringkv_bench%zu_request_duration_seconds",
             fam);
    metrics_family(out, name, "histogram",
                   "Coordinated commands, from arrival to answer, by class.");
    size_t done = 0;
    for (size_t i = 0; done < n; i++) {
        char l[96];
        snprintf(l, sizeof(l), "peer=\"10.0.%zu.%zu:7381\",class=\"%s\"",
                 i / 512, (i / 2) % 256, i % 2 ? "write" : "read");
        metrics_hist(out, name, l, &g_hist[i % 2]);
        done += HIST_SERIES;
    }
    return done;
}

static void render(enum shape sh, size_t n, struct rk_buf *out)
{
    size_t done = 0;
    size_t fam = 0;
    while (done < n) {
        size_t left = n - done;
        switch (sh) {
            case SHAPE_COUNTERS:
                done += render_counters(out, fam, left);
                break;
            case SHAPE_HISTOGRAMS:
                done += render_histograms(out, fam, left);
                break;
            case SHAPE_MIXED:
                /* alternate families of about 100 series */
                if (fam % 2 == 0) {
                    done += render_counters(out, fam, left < 100 ? left : 100);
                } else {
                    done += render_histograms(out, fam, left < 95 ? left : 95);
                }
                break;
        }
        fam++;
    }
}

/* Series = lines that are not comments (what a scraper ingests). */
static size_t count_series(const struct rk_buf *b)
{
    size_t n = 0;
    const char *p = b->base;
    const char *end = b->base + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            nl = end;
        }
        if (nl > p && *p != '#') {
            n++;
        }
        p = nl + 1;
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run(enum shape sh, size_t n, int reps)
{
    double *t = calloc((size_t)reps, sizeof(double));
    double *th = calloc((size_t)reps, sizeof(double));
    if (t == NULL || th == NULL) {
        free(t);
        free(th);
        return 1;
    }
    size_t series = 0;
    size_t bytes = 0;
    for (int i = -5; i < reps; i++) { /* 5 untimed warm-up renders */
        struct rk_buf text;
        rk_buf_init(&text);
        double t0 = now_ms();
        render(sh, n, &text);
        double t1 = now_ms();
        struct evbuffer *ev = evbuffer_new();
        if (ev == NULL) {
            rk_buf_fini(&text);
            free(t);
            free(th);
            return 1;
        }
        evbuffer_add(ev, text.base ? text.base : "", text.len);
        double t2 = now_ms();
        evbuffer_free(ev);
        if (i == 0) {
            series = count_series(&text);
            bytes = text.len;
            FILE *f = g_dump ? fopen(g_dump, "w") : NULL;
            if (f) {
                fwrite(text.base, 1, text.len, f);
                fclose(f);
            }
        }
        rk_buf_fini(&text);
        if (i >= 0) {
            t[i] = t1 - t0;
            th[i] = t2 - t0;
        }
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    qsort(th, (size_t)reps, sizeof(double), cmp_double);
    double med = t[reps / 2];
    size_t p99 = (size_t)((reps - 1) * 0.99 + 0.5);
    printf(
        "shape=%s series=%zu bytes=%zu render_median_ms=%.3f "
        "render_p99_ms=%.3f render_max_ms=%.3f ns_per_series=%.0f "
        "handler_median_ms=%.3f handler_p99_ms=%.3f\n",
        shape_names[sh], series, bytes, med, t[p99], t[reps - 1],
        med * 1e6 / (double)series, th[reps / 2], th[p99]);
    fflush(stdout);
    free(t);
    free(th);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 10000;
    int reps = 200;
    const char *only = NULL;
    int c;
    while ((c = getopt(argc, argv, "n:r:s:o:")) != -1) {
        switch (c) {
            case 'n':
                n = strtoull(optarg, NULL, 10);
                break;
            case 'r':
                reps = atoi(optarg);
                break;
            case 's':
                only = optarg;
                break;
            case 'o':
                g_dump = optarg;
                break;
            default:
                fprintf(stderr,
                        "usage: metrics_render_bench [-n series] [-r renders] "
                        "[-s counters|histograms|mixed] [-o file]\n");
                return 2;
        }
    }
    if (n == 0 || reps < 1) {
        fprintf(stderr, "metrics_render_bench: -n and -r must be >= 1\n");
        return 2;
    }
    /* latencies spread over the buckets, so %g/%.9f print real values */
    for (uint64_t us = 50; us < 3000000; us = us * 11 / 10 + 7) {
        lat_observe(&g_hist[0], us);
        lat_observe(&g_hist[1], us * 3);
    }
    int rc = 0;
    for (int sh = SHAPE_COUNTERS; sh <= SHAPE_MIXED; sh++) {
        if (only && strcmp(only, shape_names[sh]) != 0) {
            continue;
        }
        rc |= run((enum shape)sh, n, reps);
    }
    return rc;
}
