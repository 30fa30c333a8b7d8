/*
 * cli_alias.c - the seed-style verbs of the `ringkv` CLI (issue 13 item 5;
 * docs/cli.md "Seed-style verbs"): `put KEY VALUE`, `put|get|del -k KEY
 * [-v VALUE]` and `join-cluster SEED`, rewritten into the commands they
 * stand for (SET, GET, DEL, cluster join) before they are sent.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client/internal.h"
#include "common/error.h"

static bool is_word(const char *w, const char *name)
{
    return strcasecmp(w, name) == 0;
}

static bool is_key_flag(const char *a)
{
    return strcmp(a, "-k") == 0 || strcmp(a, "--key") == 0;
}

static bool is_value_flag(const char *a)
{
    return strcmp(a, "-v") == 0 || strcmp(a, "--value") == 0;
}

/* put|get|del with -k/-v flags: out = SET|GET|DEL KEY [VALUE] [REST...]. */
static int expand_flags(size_t argc,
                        char *const *argv,
                        const size_t *lens,
                        const char *cmd,
                        bool wants_value,
                        struct cli_alias *out,
                        char *why,
                        size_t why_size)
{
    size_t key = 0, value = 0; /* indexes into argv, 0 = not given */
    size_t n_rest = 0;
    size_t rest[CLI_ALIAS_MAX_ARGS];
    for (size_t i = 1; i < argc; i++) {
        bool k = is_key_flag(argv[i]), v = is_value_flag(argv[i]);
        if (k || v) {
            if (i + 1 >= argc) {
                snprintf(why, why_size, "%s: option '%s' needs a value",
                         argv[0], argv[i]);
                return RK_EINVAL;
            }
            if (k) {
                key = ++i;
            } else {
                value = ++i;
            }
        } else if (n_rest < CLI_ALIAS_MAX_ARGS - 3) {
            rest[n_rest++] = i;
        } else {
            snprintf(why, why_size, "%s: too many arguments", argv[0]);
            return RK_EINVAL;
        }
    }
    if (key == 0) {
        snprintf(why, why_size, "%s: -k KEY missing", argv[0]);
        return RK_EINVAL;
    }
    if (wants_value && value == 0) {
        snprintf(why, why_size, "%s: -v VALUE missing", argv[0]);
        return RK_EINVAL;
    }
    if (!wants_value && value != 0) {
        snprintf(why, why_size, "%s takes no value (-v)", argv[0]);
        return RK_EINVAL;
    }
    out->argc = 0;
    out->argv[out->argc] = cmd;
    out->lens[out->argc++] = strlen(cmd);
    out->argv[out->argc] = argv[key];
    out->lens[out->argc++] = lens[key];
    if (value != 0) {
        out->argv[out->argc] = argv[value];
        out->lens[out->argc++] = lens[value];
    }
    for (size_t i = 0; i < n_rest; i++) {
        out->argv[out->argc] = argv[rest[i]];
        out->lens[out->argc++] = lens[rest[i]];
    }
    return RK_OK;
}

int cli__alias_expand(size_t argc,
                      char *const *argv,
                      const size_t *lens,
                      struct cli_alias *out,
                      char *why,
                      size_t why_size)
{
    out->argc = 0;
    if (argc == 0) {
        return RK_OK;
    }
    const char *verb = argv[0];
    bool put = is_word(verb, "put");
    bool get = is_word(verb, "get"), del = is_word(verb, "del");
    if (put || get || del) {
        bool flags = false;
        for (size_t i = 1; i < argc && (put || i == 1); i++) {
            flags = flags || is_key_flag(argv[i]) || is_value_flag(argv[i]);
        }
        /* get/del: only a flag right after the verb counts, so `del a
         * -v` still deletes the keys "a" and "-v" as Redis's DEL would */
        if (flags) {
            return expand_flags(argc, argv, lens,
                                put   ? "SET"
                                : get ? "GET"
                                      : "DEL",
                                put, out, why, why_size);
        }
        if (put) {
            if (argc < 3) {
                snprintf(why, why_size,
                         "put needs KEY VALUE (or -k KEY -v VALUE)");
                return RK_EINVAL;
            }
            if (argc > CLI_ALIAS_MAX_ARGS) {
                snprintf(why, why_size, "put: too many arguments");
                return RK_EINVAL;
            }
            out->argv[0] = "SET";
            out->lens[0] = 3;
            for (size_t i = 1; i < argc; i++) {
                out->argv[i] = argv[i];
                out->lens[i] = lens[i];
            }
            out->argc = argc;
        }
        return RK_OK;
    }
    if (is_word(verb, "join-cluster")) {
        if (argc != 2) {
            snprintf(why, why_size, "join-cluster needs HOST:PORT");
            return RK_EINVAL;
        }
        out->argv[0] = "cluster";
        out->lens[0] = 7;
        out->argv[1] = "join";
        out->lens[1] = 4;
        out->argv[2] = argv[1];
        out->lens[2] = lens[1];
        out->argc = 3;
    }
    return RK_OK;
}
