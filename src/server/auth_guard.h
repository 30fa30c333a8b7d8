/*
 * auth_guard.h - a growing delay for failed AUTHs, per client IP (issue
 * 15 item 4).  Before: 50,000 wrong AUTHs on one connection took 0.13 s.
 * Now, once an IP has failed AUTH_GUARD_FREE times within
 * AUTH_GUARD_WINDOW_MS, each further failure makes that IP's
 * unauthenticated clients wait before their next command is read:
 * AUTH_GUARD_BASE_MS, doubling per failure, at most AUTH_GUARD_MAX_MS,
 * counted from the later of now and the IP's previous wait (so parallel
 * connections from one IP share one schedule) and never more than
 * AUTH_GUARD_MAX_MS from now (a client of that IP that knows the
 * password waits at most that long).  A success does not clear the IP
 * (with ACL users one known password must not reset the count between
 * guesses at another user's): failures expire after the window.  A client
 * whose last AUTH failed waits too, authenticated or not.  The table keeps
 * the AUTH_GUARD_SLOTS IPs that failed most recently.  Thread: the
 * loop's.
 */
#ifndef RINGKV_SERVER_AUTH_GUARD_H
#define RINGKV_SERVER_AUTH_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_GUARD_SLOTS   256
#define AUTH_GUARD_FREE    3    /* failures without a wait */
#define AUTH_GUARD_BASE_MS 100  /* the first wait */
#define AUTH_GUARD_MAX_MS  5000 /* the longest wait */
#define AUTH_GUARD_WINDOW_MS                                           \
    60000                    /* failures older than this are forgotten \
                              */
#define AUTH_GUARD_IP_MAX 64 /* bytes of an IP, NUL included */

struct auth_guard_slot
{
    char ip[AUTH_GUARD_IP_MAX]; /* "" = free */
    uint32_t failures;
    uint64_t last_ms;  /* last failure */
    uint64_t until_ms; /* clients of this IP wait until then */
};

struct auth_guard
{
    struct auth_guard_slot s[AUTH_GUARD_SLOTS];
};

/* The IP part of "ip:port" (or "[v6]:port") into ip[AUTH_GUARD_IP_MAX]. */
void auth_guard_ip(const char *addr, char *ip);

/* Milliseconds a not-yet-authenticated client from `ip` must wait before
 * its next command (0: none).  now_ms: monotonic. */
uint64_t auth_guard_wait_ms(const struct auth_guard *g,
                            const char *ip,
                            uint64_t now_ms);

/* A failed AUTH from `ip`: counts it, and from the (FREE+1)-th failure in
 * the window on sets the IP's wait.  Returns the IP's failures now. */
uint32_t auth_guard_failed(struct auth_guard *g,
                           const char *ip,
                           uint64_t now_ms);

/* Whether `ip` (text, v4 or v6, as inet_ntop writes it) is a loopback
 * address: 127.0.0.0/8, ::1 or ::ffff:127.x.  Protected mode serves only
 * those while no password is set. */
bool auth_guard_is_loopback(const char *ip);

/* The reply protected mode refuses a remote client with (RESP, one line). */
#define PROTECTED_MODE_DENIED                                                \
    "-DENIED ringkv is running in protected mode: no password is set "       \
    "(requirepass), so only clients on the loopback interface may connect. " \
    "To accept remote clients, set a password (--requirepass-file FILE, or " \
    "CONFIG SET requirepass from the loopback interface), or, only on a "    \
    "network no one else can reach, turn protected mode off (--protected-"   \
    "mode no, or CONFIG SET protected-mode no from the loopback "            \
    "interface). docs/security.md\r\n"

#endif
