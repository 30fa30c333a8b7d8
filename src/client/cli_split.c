/*
 * cli_split.c - splits a REPL line into arguments with redis-cli's quoting
 * rules (see internal.h), so lines copied from redis-cli sessions and
 * docs work unchanged.  Written from the documented behaviour of
 * redis-cli 7.0 (observed, not copied).
 */
#include <stdint.h>
#include <string.h>

#include "client/internal.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/hex.h"

void cli__argv_init(struct cli_argv *a)
{
    memset(a, 0, sizeof(*a));
}

static void argv_clear(struct cli_argv *a)
{
    for (size_t i = 0; i < a->argc; i++) {
        rk_free(a->argv[i]);
    }
    a->argc = 0;
}

void cli__argv_fini(struct cli_argv *a)
{
    argv_clear(a);
    rk_free(a->argv);
    rk_free(a->lens);
    cli__argv_init(a);
}

/* Takes ownership of `arg` (len bytes + NUL) on RK_OK. */
static int argv_push(struct cli_argv *a, struct rk_buf *arg)
{
    if (a->argc == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        char **argv = rk_realloc(a->argv, cap * sizeof(*argv));
        if (argv == NULL) {
            return RK_ENOMEM;
        }
        a->argv = argv;
        size_t *lens = rk_realloc(a->lens, cap * sizeof(*lens));
        if (lens == NULL) {
            return RK_ENOMEM;
        }
        a->lens = lens;
        a->cap = cap;
    }
    /* An empty argument ("") has no allocation yet: give it one. */
    if (arg->base == NULL && rk_buf_reserve(arg, 0) != RK_OK) {
        return RK_ENOMEM;
    }
    arg->base[arg->len] = '\0';
    a->argv[a->argc] = arg->base;
    a->lens[a->argc] = arg->len;
    a->argc++;
    rk_buf_init(arg);
    return RK_OK;
}

/* Blanks between arguments and after a closing quote: isspace(). */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

/*
 * Reads one double-quoted argument starting after the opening quote at
 * line[*pos]; on RK_OK *pos is just past the closing quote.
 */
static int read_double_quoted(const char *line,
                              size_t len,
                              size_t *pos,
                              struct rk_buf *arg)
{
    size_t i = *pos;
    while (i < len) {
        char c = line[i];
        char out = c;
        if (c == '"') {
            *pos = i + 1;
            return RK_OK;
        }
        if (c == '\\' && i + 3 < len && line[i + 1] == 'x' &&
            rk_hex_digit(line[i + 2]) >= 0 && rk_hex_digit(line[i + 3]) >= 0) {
            out = (char)(rk_hex_digit(line[i + 2]) * 16 +
                         rk_hex_digit(line[i + 3]));
            i += 4;
        } else if (c == '\\' && i + 1 < len) {
            switch (line[i + 1]) {
                case 'n':
                    out = '\n';
                    break;
                case 'r':
                    out = '\r';
                    break;
                case 't':
                    out = '\t';
                    break;
                case 'b':
                    out = '\b';
                    break;
                case 'a':
                    out = '\a';
                    break;
                default:
                    out = line[i + 1];
                    break;
            }
            i += 2;
        } else {
            i++;
        }
        if (rk_buf_append(arg, &out, 1) != RK_OK) {
            return RK_ENOMEM;
        }
    }
    return RK_EINVAL; /* no closing quote */
}

/* As read_double_quoted for '...': only \' is an escape. */
static int read_single_quoted(const char *line,
                              size_t len,
                              size_t *pos,
                              struct rk_buf *arg)
{
    size_t i = *pos;
    while (i < len) {
        char c = line[i];
        if (c == '\'') {
            *pos = i + 1;
            return RK_OK;
        }
        if (c == '\\' && i + 1 < len && line[i + 1] == '\'') {
            i++;
        }
        if (rk_buf_append(arg, &line[i], 1) != RK_OK) {
            return RK_ENOMEM;
        }
        i++;
    }
    return RK_EINVAL;
}

/* Reads the argument starting at line[*pos] (not a blank). */
/* An unquoted argument ends only at space, tab, CR or LF (a VT or FF
 * byte stays in it, as in redis-cli). */
static bool ends_word(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Reads the argument starting at line[*pos] (not a blank).  A quote may
 * open anywhere in it (a"b c" is "ab c"), but a closing quote ends the
 * argument and must be followed by a blank or the end ("a"b is an error).
 */
static int read_arg(const char *line,
                    size_t len,
                    size_t *pos,
                    struct rk_buf *arg)
{
    size_t i = *pos;
    size_t start = i;
    while (i < len && !ends_word(line[i])) {
        if (line[i] != '"' && line[i] != '\'') {
            i++;
            continue;
        }
        int rc = rk_buf_append(arg, line + start, i - start);
        bool dq = line[i] == '"';
        i++;
        if (rc == RK_OK) {
            rc = dq ? read_double_quoted(line, len, &i, arg)
                    : read_single_quoted(line, len, &i, arg);
        }
        if (rc != RK_OK) {
            return rc;
        }
        if (i < len && !is_blank(line[i])) {
            return RK_EINVAL;
        }
        *pos = i;
        return RK_OK;
    }
    *pos = i;
    return rk_buf_append(arg, line + start, i - start);
}

int cli__split_line(const char *line, size_t len, struct cli_argv *out)
{
    argv_clear(out);
    struct rk_buf arg;
    rk_buf_init(&arg);
    size_t pos = 0;
    int rc = RK_OK;
    for (;;) {
        while (pos < len && is_blank(line[pos])) {
            pos++;
        }
        if (pos == len) {
            break;
        }
        rc = read_arg(line, len, &pos, &arg);
        if (rc == RK_OK) {
            rc = argv_push(out, &arg);
        }
        if (rc != RK_OK) {
            break;
        }
    }
    rk_buf_fini(&arg);
    if (rc != RK_OK) {
        argv_clear(out);
    }
    return rc;
}
