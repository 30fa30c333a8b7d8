/*
 * error.h - the one error space of ringkv (STYLE.md 1.3).
 *
 * RK_OK is 0 and every error is negative.  One X-macro generates the enum,
 * rk_strerror() and rk_errname(), after libuv's UV_ERRNO_MAP and raft's
 * src/err.h.  errno values are mapped at the OS boundary by rk_from_errno().
 */
#ifndef RINGKV_COMMON_ERROR_H
#define RINGKV_COMMON_ERROR_H

#define RK_ERRNO_MAP(X)                                              \
    X(ENOMEM, -1, "out of memory")                                   \
    X(EINVAL, -2, "invalid argument")                                \
    X(EPROTO, -3, "protocol error")                                  \
    X(EAGAIN, -4, "need more input")                                 \
    X(EIO, -5, "I/O error")                                          \
    X(ECORRUPT, -6, "data corruption detected")                      \
    X(ENOTFOUND, -7, "not found")                                    \
    X(ETIMEDOUT, -8, "timed out")                                    \
    X(ENOQUORUM, -9, "quorum not reached")                           \
    X(ETOOBIG, -10, "value or key too large")                        \
    X(ELOCKED, -11, "resource is locked by another process")         \
    X(EEXIST, -12, "already exists")                                 \
    X(ENOSPC, -13, "no space left on device")                        \
    X(EREADONLY, -14, "storage is read-only after an earlier error") \
    X(ECLOSED, -15, "closed")                                        \
    X(EBUSY, -16, "busy")                                            \
    X(ERANGE, -17, "value out of range")                             \
    X(EVERSION, -18, "unsupported format or protocol version")       \
    X(EPERM, -19, "not authenticated or not permitted")              \
    X(EWRONGTYPE, -20, "operation against a key holding the wrong type")

enum rk_err
{
    RK_OK = 0,
#define RK__ERR_ENUM(name, val, msg) RK_##name = (val),
    RK_ERRNO_MAP(RK__ERR_ENUM)
#undef RK__ERR_ENUM
};

/*
 * Human-readable message for an rk_err code.
 * Returns a static string; never NULL (unknown codes give "unknown error").
 * Thread: any.
 */
const char *rk_strerror(int err);

/*
 * Symbolic name of an rk_err code ("RK_EIO"); static, never NULL.
 * Thread: any.
 */
const char *rk_errname(int err);

/*
 * Maps a positive errno value to an rk_err code (ENOMEM -> RK_ENOMEM,
 * ENOSPC -> RK_ENOSPC, EAGAIN -> RK_EAGAIN, ETIMEDOUT -> RK_ETIMEDOUT,
 * EEXIST -> RK_EEXIST, EWOULDBLOCK -> RK_EAGAIN, anything else -> RK_EIO).
 * Thread: any.
 */
int rk_from_errno(int errnum);

/*
 * "Cannot happen" checks (SQLite's ALWAYS()/NEVER()): they assert in debug
 * builds and evaluate to the condition in release builds so the caller
 * takes its error path.
 */
#ifdef NDEBUG
#define RK_ALWAYS(x) (x)
#define RK_NEVER(x)  (x)
#else
#include <assert.h>
#define RK_ALWAYS(x) ((x) ? 1 : (assert(0 && #x), 0))
#define RK_NEVER(x)  ((x) ? (assert(0 && #x), 1) : 0)
#endif

#endif /* RINGKV_COMMON_ERROR_H */
