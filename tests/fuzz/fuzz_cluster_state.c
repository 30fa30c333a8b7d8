/*
 * fuzz_cluster_state.c - libFuzzer target for the cluster state decoder
 * (cluster/membership.h membership_state_check; the bytes arrive by
 * gossip, JOIN_REPLY and from the data dir, so they are untrusted).
 *
 * Checks: the decoder returns RK_OK, RK_EPROTO or RK_EVERSION (RK_ENOMEM
 * never happens here) with a one-line message on errors; a state it
 * accepts re-encodes to exactly the input (one encoding per state), the
 * re-encoding decodes again to the same bytes, and the gossip order puts
 * it equal to itself.  A machine created from the bytes as the state of
 * one of its listed members accepts it and hands back the same bytes.
 *
 * Seeds: tests/fuzz/corpus/fuzz_cluster_state/ (states of 1, 3 and 5
 * nodes, with removed members, written by test_membership with
 * RK_CLUSTER_SEED_DIR=DIR).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/membership.h"
#include "common/buf.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Node id of the first member: after the header, cluster name and the
 * three u32 settings, member 0 starts with its u8 id length. */
static bool first_member_id(const uint8_t *d, size_t n, char *out)
{
    if (n < 14) {
        return false;
    }
    size_t off = 13 + 1 + d[13];
    if (off >= n) {
        return false;
    }
    off += 1 + d[off] + 12;
    if (off >= n || d[off] == 0 || d[off] > 64 || off + 1 + d[off] > n) {
        return false;
    }
    memcpy(out, d + off + 1, d[off]);
    out[d[off]] = '\0';
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    struct rk_buf re = {0};
    int rc = membership_state_check(data, size, &re, err, sizeof(err));
    if (rc != RK_OK) {
        CHECK(rc == RK_EPROTO || rc == RK_EVERSION);
        CHECK(err[0] != '\0' && strpbrk(err, "\r\n") == NULL);
        CHECK(re.len == 0);
        rk_buf_fini(&re);
        return 0;
    }
    CHECK(re.len == size && memcmp(re.base, data, size) == 0);
    struct rk_buf re2 = {0};
    CHECK(membership_state_check(re.base, re.len, &re2, NULL, 0) == RK_OK);
    CHECK(re2.len == re.len && memcmp(re2.base, re.base, re.len) == 0);
    CHECK(membership_state_compare(data, size, re.base, re.len) == 0);

    /* Cluster name: u8 length at 13 + 1 + changer length. */
    char name[65], id[65];
    size_t nl_at = 14 + data[13];
    memcpy(name, data + nl_at + 1, data[nl_at]);
    name[data[nl_at]] = '\0';
    CHECK(first_member_id(data, size, id));
    struct membership_config cfg = {
        .node_id = id,
        .host = "fuzz",
        .peer_port = 1,
        .cluster_name = name,
    };
    struct membership *m = NULL;
    CHECK(membership_create(&cfg, data, size, &m, NULL, 0) == RK_OK);
    struct peer_bytes b = membership_state_bytes(m);
    CHECK(b.len == size && memcmp(b.ptr, data, size) == 0);
    CHECK(membership_phase(m) == MEMBERSHIP_MEMBER ||
          membership_phase(m) == MEMBERSHIP_REMOVED_SELF);
    membership_destroy(m);
    rk_buf_fini(&re);
    rk_buf_fini(&re2);
    return 0;
}
