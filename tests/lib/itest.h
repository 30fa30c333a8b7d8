/*
 * itest.h - what the libringkv integration drivers share
 * (libringkv_itest.c, libringkv_async_itest.c).
 */
#ifndef RINGKV_TESTS_LIB_ITEST_H
#define RINGKV_TESTS_LIB_ITEST_H

#include <ringkv.h>
#include <stdlib.h>
#include <time.h>

/* The default options with the n seeds of the command line and the AUTH
 * password of RINGKV_PASSWORD (the environment). */
static inline void itest_options(struct ringkv_options *o, int n, char **seeds)
{
    ringkv_options_init(o);
    o->seeds = (const char *const *)seeds;
    o->n_seeds = (size_t)n;
    o->password = getenv("RINGKV_PASSWORD");
}

/* Monotonic seconds. */
static inline double itest_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif /* RINGKV_TESTS_LIB_ITEST_H */
