/*
 * test_crash.c - the kill -9 crash loop of the bitcask engine (issue 2
 * "crash test", TESTING.md B2.1).
 *
 * Each iteration starts tests/tools/crash_writer (built next to this
 * binary) on the same data directory, waits for "ready", lets it write
 * with sync=always for a random 5-50 ms and SIGKILLs it; merges are forced
 * in 1 iteration of 5.  Every line the child printed is a write it saw
 * acknowledged durable.  The parent then reopens the directory and checks
 * each acknowledged key: unique keys must hold exactly their value, hot
 * (overwritten) keys a version at least the acknowledged one.
 * Prints "iterations=.. acknowledged=.. lost=.." and fails if lost > 0.
 * RK_CRASH_ITERATIONS overrides the iteration count, RK_CRASH_SEED the seed.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "storage_test.h"

struct ack
{
    char key[40];
    uint64_t version;
};

struct acks
{
    struct ack *v;
    size_t n, cap;
    uint64_t hot[50]; /* highest acknowledged version per hot key */
    bool hot_set[50];
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void add_ack(struct acks *a, const char *line)
{
    char key[40];
    uint64_t version;
    if (sscanf(line, "%39s %" SCNu64, key, &version) != 2) {
        return;
    }
    if (strncmp(key, "hot", 3) == 0) {
        int j = atoi(key + 3);
        if (j >= 0 && j < 50 && (!a->hot_set[j] || version > a->hot[j])) {
            a->hot[j] = version;
            a->hot_set[j] = true;
        }
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4096;
        a->v = realloc(a->v, a->cap * sizeof(*a->v));
    }
    snprintf(a->v[a->n].key, sizeof(a->v[a->n].key), "%s", key);
    a->v[a->n].version = version;
    a->n++;
}

/* True when the engine holds an acceptable value for ack `k`. */
static bool check_ack(struct engine *e,
                      const struct acks *a,
                      const struct ack *k)
{
    struct rk_buf b;
    rk_buf_init(&b);
    int rc = engine_get(e, k->key, strlen(k->key), &b, NULL);
    bool ok = false;
    if (rc == RK_OK) {
        char buf[160];
        size_t n = b.len < sizeof(buf) - 1 ? b.len : sizeof(buf) - 1;
        memcpy(buf, b.base, n);
        buf[n] = '\0';
        uint64_t v = strtoull(buf, NULL, 10);
        char *bar = strchr(buf, '|');
        size_t kl = strlen(k->key);
        bool key_ok =
            bar && strncmp(bar + 1, k->key, kl) == 0 && bar[1 + kl] == '|';
        if (strncmp(k->key, "hot", 3) == 0) {
            int j = atoi(k->key + 3);
            ok = key_ok && v >= a->hot[j];
        } else {
            ok = key_ok && v == k->version;
        }
    }
    rk_buf_fini(&b);
    return ok;
}

static void writer_path(char *out, size_t len)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    snprintf(out, len, "%s/crash_writer", dirname(self));
}

/* Runs one child; appends its acknowledged writes to `a`. */
static void run_child(const char *writer,
                      const char *dir,
                      uint64_t seed,
                      unsigned iter,
                      bool merge,
                      unsigned kill_ms,
                      const char *mode,
                      struct acks *a)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char s[32], it[32];
        snprintf(s, sizeof(s), "%" PRIu64, seed);
        snprintf(it, sizeof(it), "%u", iter);
        execl(writer, writer, dir, s, it, merge ? "1" : "0", mode,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[1 << 16];
    size_t len = 0;
    bool ready = false;
    uint64_t deadline = 0;
    bool killed = false;
    for (;;) {
        int timeout = -1;
        if (ready && !killed) {
            uint64_t now = now_us();
            if (now >= deadline) {
                kill(pid, SIGKILL);
                killed = true;
            } else {
                timeout = (int)((deadline - now + 999) / 1000);
            }
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, killed ? -1 : (ready ? timeout : 20000));
        if (r == 0) {
            if (!ready) {
                kill(pid, SIGKILL);
                fail_msg("crash_writer never became ready");
            }
            continue;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        ssize_t n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        buf[len] = '\0';
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n')) != NULL) {
            *nl = '\0';
            if (!ready && strcmp(start, "ready") == 0) {
                ready = true;
                deadline = now_us() + (uint64_t)kill_ms * 1000u;
            } else if (ready) {
                add_ack(a, start);
            }
            start = nl + 1;
        }
        len = (size_t)(buf + len - start);
        memmove(buf, start, len);
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!killed) {
        fail_msg("crash_writer exited by itself (status %d)", status);
    }
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/*
 * The kill -9 loop: `iterations` children (RK_CRASH_ITERATIONS overrides),
 * at least `min_it` then bounded to about `budget_s` seconds.  `modes`:
 * the sync policy of each iteration in turn (crash_writer's mode).
 * Returns the number of acknowledged writes lost.
 */
static uint64_t crash_loop(const char *const *modes,
                           size_t n_modes,
                           unsigned iterations,
                           unsigned min_it,
                           unsigned budget_s)
{
    char writer[4096];
    writer_path(writer, sizeof(writer));
    assert_int_equal(access(writer, X_OK), 0);
    const char *env = getenv("RK_CRASH_ITERATIONS");
    iterations = env ? (unsigned)atoi(env) : iterations;
    env = getenv("RK_CRASH_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 20261125;
    char dir[256];
    st_tmpdir(dir, sizeof(dir), "crash");
    printf("crash: seed=%" PRIu64 " iterations=%u modes=%s%s dir=%s\n", seed,
           iterations, modes[0], n_modes > 1 ? "+" : "", dir);
    struct acks a = {0};
    uint64_t lost = 0, merges = 0, truncated = 0;
    uint64_t *reopen_us = calloc(iterations, sizeof(uint64_t));
    uint64_t rng = seed;
    uint64_t t_start = now_us();
    unsigned it;
    for (it = 0; it < iterations; it++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned kill_ms = 5 + (unsigned)(rng % 46);
        bool merge = it % 5 == 4;
        size_t first = a.n;
        run_child(writer, dir, seed + it, it + 1, merge, kill_ms,
                  modes[it % n_modes], &a);
        uint64_t t0 = now_us();
        struct engine *e = st_open("bitcask", dir, NULL);
        reopen_us[it] = now_us() - t0;
        assert_non_null(e);
        /* This iteration's acks, plus a sample of all earlier ones. */
        for (size_t i = first; i < a.n; i++) {
            if (!check_ack(e, &a, &a.v[i])) {
                printf("lost: iteration=%u key=%s version=%" PRIu64 "\n", it,
                       a.v[i].key, a.v[i].version);
                lost++;
            }
        }
        for (size_t i = 0; first > 0 && i < 200; i++) {
            size_t j = (size_t)((rng >> 3) + i * 7919) % first;
            if (!check_ack(e, &a, &a.v[j])) {
                printf("lost: iteration=%u key=%s version=%" PRIu64
                       " (earlier)\n",
                       it, a.v[j].key, a.v[j].version);
                lost++;
            }
        }
        struct engine_stats st;
        engine_stats(e, &st);
        truncated += st.recovered_truncated_bytes;
        merges += merge;
        assert_int_equal(engine_close(e), RK_OK);
        if (it + 1 >= min_it && now_us() - t_start > budget_s * 1000000ull) {
            it++;
            break; /* at least min_it iterations, then bound the runtime */
        }
    }
    /* Final: every acknowledged write of every iteration. */
    struct engine *e = st_open("bitcask", dir, NULL);
    for (size_t i = 0; i < a.n; i++) {
        if (!check_ack(e, &a, &a.v[i])) {
            lost++;
        }
    }
    engine_close(e);
    qsort(reopen_us, it, sizeof(uint64_t), cmp_u64);
    printf("iterations=%u acknowledged=%zu lost=%" PRIu64
           " merge_iterations=%" PRIu64 " truncated_bytes=%" PRIu64
           " reopen_p50_ms=%.1f reopen_p99_ms=%.1f elapsed_s=%.1f\n",
           it, a.n, lost, merges, truncated, (double)reopen_us[it / 2] / 1000.0,
           (double)reopen_us[(it * 99) / 100] / 1000.0,
           (double)(now_us() - t_start) / 1e6);
    free(reopen_us);
    free(a.v);
    st_rmrf(dir);
    assert_true(it >= min_it || iterations < min_it);
    return lost;
}

static void test_crash_sigkill_loses_no_acknowledged_write(void **state)
{
    (void)state;
    static const char *const always[] = {"always"};
    assert_int_equal(crash_loop(always, 1, 120, 50, 50), 0);
}

/* Issue 12: sync=every and none acknowledge a write once it is in the OS
 * (engine_handoff), so a process crash loses none of them. */
static void test_crash_sigkill_every_and_none_lose_nothing_handed_off(
    void **state)
{
    (void)state;
    static const char *const modes[] = {"every", "none"};
    assert_int_equal(crash_loop(modes, 2, 200, 200, 60), 0);
}

/* The negative control: acknowledging from the write buffer (what
 * sync=every did before issue 12) loses writes to kill -9, and the check
 * above sees it. */
static void test_crash_unsafe_acks_are_lost_and_detected(void **state)
{
    (void)state;
    static const char *const unsafe[] = {"unsafe"};
    /* On a loaded machine the writer may happen to persist everything it
     * acknowledged before each kill: a few more rounds, not a pass. */
    uint64_t lost = 0;
    for (int round = 0; round < 6 && lost == 0; round++) {
        lost = crash_loop(unsafe, 1, 5, 5, 10);
    }
    assert_true(lost > 0);
}

int main(void)
{
    rk_log_set_level(RK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_sigkill_loses_no_acknowledged_write),
        cmocka_unit_test(
            test_crash_sigkill_every_and_none_lose_nothing_handed_off),
        cmocka_unit_test(test_crash_unsafe_acks_are_lost_and_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
