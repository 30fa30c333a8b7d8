/*
 * seeds.c - the seed list and its join schedule (contract in seeds.h).
 */
#include "cluster/seeds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static int parse_one(struct seed *out,
                     const char *p,
                     size_t len,
                     char *err,
                     size_t errlen)
{
    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }
    const char *colon = NULL;
    for (size_t i = len; i-- > 0;) {
        if (p[i] == ':') {
            colon = p + i;
            break;
        }
    }
    if (colon == NULL || colon == p || (size_t)(colon - p) + 1 >= len) {
        snprintf(err, errlen, "seed '%.*s' is not host:peer-port", (int)len, p);
        return RK_EINVAL;
    }
    unsigned long port = 0;
    for (const char *q = colon + 1; q < p + len; q++) {
        if (*q < '0' || *q > '9' || port > 65535) {
            port = 0;
            break;
        }
        port = port * 10 + (unsigned long)(*q - '0');
    }
    if (port == 0 || port > 65535) {
        snprintf(err, errlen, "seed '%.*s' has no valid port (1..65535)",
                 (int)len, p);
        return RK_EINVAL;
    }
    const char *h = p;
    size_t hl = (size_t)(colon - p);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl > SEEDS_HOST_MAX) {
        snprintf(err, errlen, "seed '%.*s' has an empty or too long host",
                 (int)len, p);
        return RK_EINVAL;
    }
    memcpy(out->host, h, hl);
    out->host[hl] = '\0';
    out->port = (uint16_t)port;
    return RK_OK;
}

int seeds_parse(struct seeds *sd, const char *list, char *err, size_t errlen)
{
    memset(sd, 0, sizeof(*sd));
    sd->backoff_ms = SEEDS_BACKOFF_MIN_MS;
    const char *p = list ? list : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        size_t blank = 0;
        while (blank < len && (p[blank] == ' ' || p[blank] == '\t')) {
            blank++;
        }
        if (blank < len) {
            if (sd->n == SEEDS_MAX) {
                snprintf(err, errlen, "more than %d seeds", SEEDS_MAX);
                return RK_EINVAL;
            }
            int rc = parse_one(&sd->s[sd->n], p, len, err, errlen);
            if (rc != RK_OK) {
                return rc;
            }
            sd->n++;
        }
        p += len + (comma ? 1 : 0);
    }
    sd->done = sd->n == 0;
    return RK_OK;
}

static bool is_loopback(const char *h)
{
    return strcmp(h, "localhost") == 0 || strcmp(h, "127.0.0.1") == 0 ||
           strcmp(h, "::1") == 0;
}

bool seeds_drop_self(struct seeds *sd, const char *self_host, uint16_t port)
{
    bool self = false;
    size_t k = 0;
    for (size_t i = 0; i < sd->n; i++) {
        const struct seed *s = &sd->s[i];
        bool same_host = strcmp(s->host, self_host) == 0 ||
                         (is_loopback(s->host) && is_loopback(self_host));
        if (same_host && s->port == port) {
            self = true;
            continue;
        }
        sd->s[k++] = *s;
    }
    sd->n = k;
    if (self || sd->n == 0) {
        sd->done = true; /* a seed joins nobody: the others join it */
    }
    return self;
}

const struct seed *seeds_due(struct seeds *sd, uint64_t now_ms)
{
    if (sd->done || sd->trying || sd->n == 0 || now_ms < sd->next_at) {
        return NULL;
    }
    sd->trying = true;
    sd->attempts++;
    return &sd->s[sd->next];
}

void seeds_result(struct seeds *sd, bool joined, uint64_t now_ms)
{
    if (!sd->trying) {
        return;
    }
    sd->trying = false;
    if (joined) {
        sd->done = true;
        return;
    }
    sd->next++;
    if (sd->next < sd->n) {
        sd->next_at = now_ms; /* the next seed of this round at once */
        return;
    }
    sd->next = 0;
    sd->next_at = now_ms + sd->backoff_ms;
    sd->backoff_ms = sd->backoff_ms * 2 > SEEDS_BACKOFF_MAX_MS
                         ? SEEDS_BACKOFF_MAX_MS
                         : sd->backoff_ms * 2;
}
