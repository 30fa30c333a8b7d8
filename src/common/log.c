/* log.c - structured stderr logging; see log.h. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

static enum rk_log_level g_level = RK_LOG_INFO;
static enum rk_log_format g_format = RK_LOG_LOGFMT;
static char g_node[128];

static const char *level_name(enum rk_log_level l)
{
    switch (l) {
        case RK_LOG_DEBUG:
            return "debug";
        case RK_LOG_INFO:
            return "info";
        case RK_LOG_WARN:
            return "warn";
        default:
            return "error";
    }
}

void rk_log_set_level(enum rk_log_level level)
{
    __atomic_store_n(&g_level, level, __ATOMIC_RELAXED);
}

void rk_log_set_format(enum rk_log_format fmt)
{
    g_format = fmt;
}

void rk_log_set_node(const char *node_id)
{
    if (node_id == NULL) {
        g_node[0] = '\0';
        return;
    }
    snprintf(g_node, sizeof(g_node), "%s", node_id);
}

int rk_log_parse_level(const char *s, enum rk_log_level *out)
{
    static const struct
    {
        const char *name;
        enum rk_log_level level;
    } names[] = {
        {"debug", RK_LOG_DEBUG}, {"verbose", RK_LOG_DEBUG},
        {"info", RK_LOG_INFO},   {"notice", RK_LOG_INFO},
        {"warn", RK_LOG_WARN},   {"warning", RK_LOG_WARN},
        {"error", RK_LOG_ERROR},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return RK_OK;
        }
    }
    return RK_EINVAL;
}

bool rk_log_enabled(enum rk_log_level level)
{
    return level >= __atomic_load_n(&g_level, __ATOMIC_RELAXED);
}

const char *rk_log_quote(const char *s, char *out, size_t outlen)
{
    bool needs = s[0] == '\0';
    for (const char *p = s; *p && !needs; p++) {
        needs = *p == ' ' || *p == '"' || *p == '=' || *p == '\\' ||
                (unsigned char)*p < 0x20;
    }
    if (!needs || outlen < 3) {
        return s;
    }
    size_t o = 0;
    out[o++] = '"';
    for (const char *p = s; *p && o + 3 < outlen; p++) {
        char c = *p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if ((unsigned char)c < 0x20) {
            out[o++] = '?';
        } else {
            out[o++] = c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* Appends a JSON string literal of s[0..len) to line, bounded by cap. */
static size_t json_str(char *line,
                       size_t o,
                       size_t cap,
                       const char *s,
                       size_t len)
{
    if (o + 2 >= cap) {
        return o;
    }
    line[o++] = '"';
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            line[o++] = '\\';
            line[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(line + o, cap - o, "\\u%04x", c);
        } else {
            line[o++] = (char)c;
        }
    }
    line[o++] = '"';
    return o;
}

/* Converts logfmt fields into JSON members appended at line+o. */
static size_t logfmt_to_json(char *line, size_t o, size_t cap, const char *f)
{
    char val[4096];
    while (*f && o + 16 < cap) {
        while (*f == ' ') {
            f++;
        }
        if (*f == '\0') {
            break;
        }
        const char *k = f;
        while (*f && *f != '=' && *f != ' ') {
            f++;
        }
        size_t klen = (size_t)(f - k);
        size_t vlen = 0;
        if (*f == '=') {
            f++;
            if (*f == '"') {
                f++;
                while (*f && *f != '"') {
                    if (*f == '\\' && f[1]) {
                        f++;
                        if (vlen < sizeof(val)) {
                            val[vlen++] = *f == 'n' ? '\n' : *f;
                        }
                        f++;
                        continue;
                    }
                    if (vlen < sizeof(val)) {
                        val[vlen++] = *f;
                    }
                    f++;
                }
                if (*f == '"') {
                    f++;
                }
            } else {
                while (*f && *f != ' ') {
                    if (vlen < sizeof(val)) {
                        val[vlen++] = *f;
                    }
                    f++;
                }
            }
        }
        line[o++] = ',';
        o = json_str(line, o, cap, k, klen);
        if (o + 2 < cap) {
            line[o++] = ':';
        }
        o = json_str(line, o, cap, val, vlen);
    }
    return o;
}

void rk_log(enum rk_log_level level, const char *event, const char *fmt, ...)
{
    if (level < __atomic_load_n(&g_level, __ATOMIC_RELAXED)) {
        return;
    }
    char fields[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fields, sizeof(fields), fmt, ap);
    va_end(ap);
    /* one event, one line: a control byte that reached a field (a peer's
     * or client's string) must not start a forged line (issue 15) */
    for (char *p = fields; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[96];
    snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char line[16384];
    size_t cap = sizeof(line) - 2;
    size_t o = 0;
    if (g_format == RK_LOG_JSON) {
        o += (size_t)snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\"",
                              tbuf, level_name(level));
        if (g_node[0]) {
            o += (size_t)snprintf(line + o, cap - o, ",\"node\":");
            o = json_str(line, o, cap, g_node, strlen(g_node));
        }
        o += (size_t)snprintf(line + o, cap - o, ",\"event\":");
        o = json_str(line, o, cap, event, strlen(event));
        o = logfmt_to_json(line, o, cap, fields);
        if (o < cap) {
            line[o++] = '}';
        }
    } else {
        int n = snprintf(line, cap, "time=%s level=%s%s%s event=%s%s%s", tbuf,
                         level_name(level), g_node[0] ? " node=" : "", g_node,
                         event, fields[0] ? " " : "", fields);
        o = n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
    }
    line[o++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, o);
    (void)w;
}
