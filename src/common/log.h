/*
 * log.h - structured logging to stderr, one line per event.
 *
 * A line is an event name plus key=value fields written logfmt-style by the
 * caller ("port=%d dir=%s").  Output format is logfmt (default):
 *   time=2026-11-25T03:22:50.123Z level=info node=n1 event=listening port=7379
 * or JSON (--log-format json), where the logfmt fields are re-tokenised:
 *   {"time":"...","level":"info","node":"n1","event":"listening","port":"7379"}
 * Values containing spaces or quotes must be passed through rk_log_quote().
 */
#ifndef RINGKV_COMMON_LOG_H
#define RINGKV_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum rk_log_level
{
    RK_LOG_DEBUG = 0,
    RK_LOG_INFO = 1,
    RK_LOG_WARN = 2,
    RK_LOG_ERROR = 3,
};

enum rk_log_format
{
    RK_LOG_LOGFMT = 0,
    RK_LOG_JSON = 1,
};

/* Minimum level written (default info).  Thread: start-up only. */
void rk_log_set_level(enum rk_log_level level);
/* Output format (default logfmt).  Thread: start-up only. */
void rk_log_set_format(enum rk_log_format fmt);
/* Node id shown in every line (copied; NULL removes it). Start-up only. */
void rk_log_set_node(const char *node_id);

/*
 * Parses "debug|info|warning|warn|error" (also Redis's "verbose|notice").
 * Returns RK_OK and sets *out, or RK_EINVAL.
 */
int rk_log_parse_level(const char *s, enum rk_log_level *out);

/* True when `level` would be written (cheap check before costly fields). */
bool rk_log_enabled(enum rk_log_level level);

/*
 * Writes one line: `event` is a short snake_case name, `fmt` produces
 * logfmt fields (may be "" for none).  The line is written with one write()
 * so concurrent threads do not interleave.  Thread: any.
 */
void rk_log(enum rk_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Quotes `s` for use as a logfmt value: returns `s` itself when it needs no
 * quoting, else writes "..." with \" and \\ and \n escaped into `out`
 * (truncated to outlen) and returns `out`.  Thread: any.
 */
const char *rk_log_quote(const char *s, char *out, size_t outlen);

#endif /* RINGKV_COMMON_LOG_H */
