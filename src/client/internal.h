/*
 * internal.h - helpers shared by the ringkv CLI's files (cli_*.c); nothing
 * outside src/client includes this (STYLE.md 1.1).
 *
 *   cli_split.c   split a REPL line into arguments (redis-cli's quoting)
 *   cli_format.c  print a reply: redis-cli's tty and raw forms, and JSON
 *   cli_help.c    the command table behind `help` and tab completion
 *
 * All of them are pure (no I/O), so tests can drive them directly.
 * Thread: any (no shared state).
 */
#ifndef RINGKV_CLIENT_INTERNAL_H
#define RINGKV_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "proto/resp.h"

/* ---- cli_split.c ------------------------------------------------------ */

struct cli_argv
{
    size_t argc;  /* arguments in use */
    size_t cap;   /* slots allocated in argv and lens */
    char **argv;  /* argc owned strings, NUL-terminated, may hold NULs */
    size_t *lens; /* bytes of each argument, without the NUL */
};

/* Empties `a` (caller storage; pairs with cli__argv_fini). */
void cli__argv_init(struct cli_argv *a);

/* Frees every argument and the arrays; `a` is empty afterwards. */
void cli__argv_fini(struct cli_argv *a);

/*
 * Splits line[0..len) into arguments, replacing what `out` held.
 * Rules (those of redis-cli, so lines paste between the two):
 *  - blanks (space, tab, CR, LF, VT, FF) separate arguments, but an
 *    unquoted argument ends only at space, tab, CR or LF;
 *  - a double quote starts a quoted part with the escapes \n \r \t \b \a
 *    \\ \" and \xHH (two hex digits); any other \c gives c;
 *  - a single quote starts a literal part where only \' is an escape;
 *  - a quote may open in the middle of an argument (a"b c" is "ab c"), but
 *    its closing quote ends the argument and must be followed by a blank
 *    or the end of the line.
 * Returns RK_OK (argc may be 0 for a blank line), RK_EINVAL (unbalanced
 * quotes or a closing quote followed by a non-blank: "Invalid
 * argument(s)") or RK_ENOMEM; `out` is empty on error.
 * Complexity: O(len).
 */
int cli__split_line(const char *line, size_t len, struct cli_argv *out);

/* ---- cli_format.c ----------------------------------------------------- */

enum cli_format
{
    CLI_FMT_TTY,  /* redis-cli on a terminal: (integer) 1, "v", 1) ... */
    CLI_FMT_RAW,  /* redis-cli --raw: bytes as they are, one per line */
    CLI_FMT_JSON, /* one JSON value per reply, see cli__format_reply */
};

/*
 * Appends the text for reply `v` in format `fmt` to `out`, ending in "\n".
 * TTY and RAW follow redis-cli 7 (docs/cli.md has the table).  JSON:
 * strings are JSON strings, where each byte that is not part of valid
 * UTF-8 is written as \udcXX (XX = the byte, 80..ff: Python's
 * "surrogateescape"), integers and finite doubles are numbers, inf/nan
 * are the strings "inf", "-inf", "nan", nil is null, booleans are
 * true/false, arrays/sets/pushes are arrays, maps are objects (a key that
 * is not a string is written as its JSON text in a string) and an error
 * is {"error":"<message>"}.  The output holds no newline but the last.
 * Returns RK_OK or RK_ENOMEM (then `out` may hold part of the text).
 * Complexity: O(size of the reply).
 */
int cli__format_reply(struct rk_buf *out,
                      const struct resp_value *v,
                      enum cli_format fmt);

/*
 * Appends p[0..len) as a double-quoted string with redis-cli's escapes
 * (\\ \" \n \r \t \a \b, \xHH for other non-printable bytes).
 * Returns RK_OK or RK_ENOMEM.
 */
int cli__append_quoted(struct rk_buf *out, const char *p, size_t len);

/* ---- cli_help.c ------------------------------------------------------- */

struct cli_cmd_help
{
    const char *name;    /* upper case, e.g. "SET", "CLIENT SETNAME" */
    const char *args;    /* synopsis after the name, "" if none */
    const char *summary; /* one line, no final period */
    const char *group;   /* "string", "keyspace", "connection", ... */
};

/* Entry `i` of the table in display order, or NULL when i is past the
 * end.  The table is static. */
const struct cli_cmd_help *cli__help_at(size_t i);

/*
 * Looks up a command by name, case-insensitively; `name` may be one word
 * ("get") or a command and subcommand ("client setname").  Returns the
 * static entry or NULL.
 */
const struct cli_cmd_help *cli__help_find(const char *name);

/* ---- cli_alias.c ------------------------------------------------------ */

#define CLI_ALIAS_MAX_ARGS 64

/* A command rewritten from a seed-style verb; views into the input. */
struct cli_alias
{
    size_t argc;                          /* 0: not an alias, send as is */
    const char *argv[CLI_ALIAS_MAX_ARGS]; /* borrowed from the input argv */
    size_t lens[CLI_ALIAS_MAX_ARGS];      /* or static strings */
};

/*
 * Rewrites the CLI's seed-style verbs: `put KEY VALUE [ARG...]` -> SET,
 * `put -k KEY -v VALUE`, `get -k KEY`, `del -k KEY` (--key/--value too)
 * -> SET/GET/DEL, `join-cluster SEED` -> `cluster join SEED`.
 *  `argc`/`argv`/`lens`: the command's words (borrowed; binary-safe).
 *  `out`: caller storage; out->argc == 0 when the command is not an alias
 *         (send argv unchanged), else out->argv/lens view argv's strings
 *         and static ones, valid while argv is.
 * Returns RK_OK, or RK_EINVAL with a one-line reason in `why` (a flag
 * without its value, a missing key or value, too many arguments).
 * Thread: any (no shared state).
 */
int cli__alias_expand(size_t argc,
                      char *const *argv,
                      const size_t *lens,
                      struct cli_alias *out,
                      char *why,
                      size_t why_size);

#endif /* RINGKV_CLIENT_INTERNAL_H */
