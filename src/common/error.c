/* error.c - rk_strerror()/rk_errname()/rk_from_errno(); see error.h. */
#include "common/error.h"

#include <errno.h>

const char *rk_strerror(int err)
{
    switch (err) {
        case RK_OK:
            return "ok";
#define RK__ERR_MSG(name, val, msg) \
    case RK_##name:                 \
        return msg;
            RK_ERRNO_MAP(RK__ERR_MSG)
#undef RK__ERR_MSG
        default:
            return "unknown error";
    }
}

const char *rk_errname(int err)
{
    switch (err) {
        case RK_OK:
            return "RK_OK";
#define RK__ERR_NAME(name, val, msg) \
    case RK_##name:                  \
        return "RK_" #name;
            RK_ERRNO_MAP(RK__ERR_NAME)
#undef RK__ERR_NAME
        default:
            return "RK_UNKNOWN";
    }
}

int rk_from_errno(int errnum)
{
    switch (errnum) {
        case 0:
            return RK_OK;
        case ENOMEM:
            return RK_ENOMEM;
        case ENOSPC:
        case EDQUOT:
            return RK_ENOSPC;
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return RK_EAGAIN;
        case ETIMEDOUT:
            return RK_ETIMEDOUT;
        case EEXIST:
            return RK_EEXIST;
        case EINVAL:
            return RK_EINVAL;
        case ENOENT:
            return RK_ENOTFOUND;
        default:
            return RK_EIO;
    }
}
