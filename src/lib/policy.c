/* policy.c - retry and backoff decisions (internal.h).  Pure functions. */
#include "lib/internal.h"

static bool retryable(int err)
{
    return err == RINGKV_EIO || err == RINGKV_ETIMEDOUT ||
           err == RINGKV_ENOQUORUM;
}

bool rkl_retry_decide(const struct rkl_policy *p,
                      int attempt,
                      int err,
                      bool sent,
                      bool idempotent,
                      unsigned flags,
                      int64_t remaining_ms,
                      uint32_t rnd,
                      int *sleep_ms)
{
    *sleep_ms = 0;
    if (!retryable(err) || (flags & RINGKV_CALL_NO_RETRY) ||
        attempt >= p->max_attempts || remaining_ms <= 0) {
        return false;
    }
    if (sent && !idempotent && !(flags & RINGKV_CALL_IDEMPOTENT)) {
        return false;
    }
    if (!sent && attempt == 1) {
        return true; /* nothing reached the server: another node now */
    }
    int64_t step = p->backoff_base_ms;
    for (int i = 1; i < attempt && step < p->backoff_max_ms; i++) {
        step *= 2;
    }
    if (step > p->backoff_max_ms) {
        step = p->backoff_max_ms;
    }
    int64_t half = step / 2;
    int64_t sleep = half + (int64_t)(rnd % (uint32_t)(step - half + 1));
    if (sleep >= remaining_ms) {
        return false;
    }
    *sleep_ms = (int)sleep;
    return true;
}

int64_t rkl_attempt_budget_ms(const struct rkl_policy *p,
                              int attempt,
                              int64_t remaining_ms)
{
    if (remaining_ms <= 0) {
        return 0;
    }
    if (attempt >= p->max_attempts) {
        return remaining_ms;
    }
    int64_t half = remaining_ms / 2;
    int64_t floor_ms = remaining_ms < 250 ? remaining_ms : 250;
    return half > floor_ms ? half : floor_ms;
}

bool rkl_options_valid(const struct ringkv_options *o)
{
    return o != NULL && o->n_seeds > 0 && o->seeds != NULL &&
           o->max_attempts >= 1 && o->timeout_ms > 0 &&
           o->connect_timeout_ms > 0 && o->backoff_base_ms >= 0 &&
           o->backoff_max_ms >= o->backoff_base_ms;
}

void rkl_policy_from_options(struct rkl_policy *p,
                             const struct ringkv_options *o)
{
    p->max_attempts = o->max_attempts;
    p->backoff_base_ms = o->backoff_base_ms;
    p->backoff_max_ms = o->backoff_max_ms;
}
