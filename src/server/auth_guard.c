/*
 * auth_guard.c - see auth_guard.h.
 */
#include "server/auth_guard.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

void auth_guard_ip(const char *addr, char *ip)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    if (n >= AUTH_GUARD_IP_MAX) {
        n = AUTH_GUARD_IP_MAX - 1;
    }
    memcpy(ip, addr, n);
    ip[n] = '\0';
}

static struct auth_guard_slot *find(const struct auth_guard *g, const char *ip)
{
    for (size_t i = 0; i < AUTH_GUARD_SLOTS; i++) {
        if (g->s[i].ip[0] != '\0' && strcmp(g->s[i].ip, ip) == 0) {
            return (struct auth_guard_slot *)&g->s[i];
        }
    }
    return NULL;
}

uint64_t auth_guard_wait_ms(const struct auth_guard *g,
                            const char *ip,
                            uint64_t now_ms)
{
    const struct auth_guard_slot *s = find(g, ip);
    return s && s->until_ms > now_ms ? s->until_ms - now_ms : 0;
}

uint32_t auth_guard_failed(struct auth_guard *g,
                           const char *ip,
                           uint64_t now_ms)
{
    struct auth_guard_slot *s = find(g, ip);
    if (s == NULL) {
        /* a free slot, else the one whose last failure is oldest */
        s = &g->s[0];
        for (size_t i = 0; i < AUTH_GUARD_SLOTS; i++) {
            if (g->s[i].ip[0] == '\0') {
                s = &g->s[i];
                break;
            }
            if (g->s[i].last_ms < s->last_ms) {
                s = &g->s[i];
            }
        }
        memset(s, 0, sizeof(*s));
        snprintf(s->ip, sizeof(s->ip), "%s", ip);
    }
    if (s->failures > 0 && now_ms > s->last_ms + AUTH_GUARD_WINDOW_MS) {
        s->failures = 0; /* an old streak */
    }
    s->failures++;
    s->last_ms = now_ms;
    if (s->failures > AUTH_GUARD_FREE) {
        uint32_t k = s->failures - AUTH_GUARD_FREE - 1;
        uint64_t wait =
            k >= 16 ? AUTH_GUARD_MAX_MS : (uint64_t)AUTH_GUARD_BASE_MS << k;
        if (wait > AUTH_GUARD_MAX_MS) {
            wait = AUTH_GUARD_MAX_MS;
        }
        uint64_t from = s->until_ms > now_ms ? s->until_ms : now_ms;
        s->until_ms = from + wait;
        if (s->until_ms > now_ms + AUTH_GUARD_MAX_MS) {
            s->until_ms = now_ms + AUTH_GUARD_MAX_MS; /* a bounded wait for
                                                         every client */
        }
    }
    return s->failures;
}

bool auth_guard_is_loopback(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                                   0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a6.s6_addr, v4mapped, 12) == 0) {
            return a6.s6_addr[12] == 127;
        }
        return IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return false;
}
