/*
 * fuzz_libringkv_reply.c - libFuzzer target for libringkv's reply and
 * topology parsing (src/lib/internal.h; TESTING.md B5), and of the
 * decoding of each call's reply (cmd.c) both APIs share.
 *
 * Input: one RESP reply (parsed with proto/resp.h's reply parser as the
 * library does), handed to every libringkv parser: CLUSTER SLOTS -> the
 * routing table, GET / MGET -> values, RINGKV.GETALL -> siblings, and an
 * error reply -> its code.
 *
 * Checks: each returns RINGKV_OK, RINGKV_EPROTO or RINGKV_ENOMEM; on
 * RINGKV_OK the table is consistent (every served slot lies in its range,
 * node indexes are in bounds, ports 1..65535, hosts NUL-terminated), and
 * values and siblings are NUL-terminated with their lengths; on error the
 * out-parameters are untouched / empty.  ASan and LeakSanitizer catch
 * overreads and leaks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "lib/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

static void check_topo(const struct rkl_topo *t)
{
    for (size_t i = 0; i < t->n_nodes; i++) {
        CHECK(t->nodes[i].port >= 1 && t->nodes[i].port <= 65535);
        CHECK(memchr(t->nodes[i].host, '\0', sizeof(t->nodes[i].host)));
        CHECK(t->nodes[i].host[0] != '\0');
    }
    for (uint32_t s = 0; s < RKL_SLOTS; s++) {
        const struct rkl_range *r = rkl_topo_route(t, s);
        if (r == NULL) {
            continue;
        }
        CHECK(r->start <= s && s <= r->end);
        CHECK(r->n >= 1 && r->n <= RKL_MAX_REPLICAS);
        for (uint8_t k = 0; k < r->n; k++) {
            CHECK(r->nodes[k] < t->n_nodes);
        }
    }
}

static void check_value(const struct ringkv_value *v)
{
    if (v->data != NULL) {
        CHECK(v->data[v->len] == '\0');
    } else {
        CHECK(v->len == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t consumed = 0;
    struct resp_value *v = NULL;
    if (resp_reply_parse((const char *)data, size, 64, 1u << 20, &consumed,
                         NULL, &v) != RK_OK) {
        return 0;
    }

    struct rkl_topo t;
    char err[128];
    int rc = rkl_topo_from_slots(&t, v, "seed.example", err, sizeof(err));
    CHECK(rc == RINGKV_OK || rc == RINGKV_EPROTO || rc == RINGKV_ENOMEM);
    if (rc == RINGKV_OK) {
        check_topo(&t);
        rkl_topo_fini(&t);
    } else {
        CHECK(t.n_nodes == 0 && t.nodes == NULL && t.ranges == NULL);
    }

    struct ringkv_value one = {.data = (char *)1, .len = 77};
    rc = rkl_value_from_reply(v, &one);
    CHECK(rc == RINGKV_OK || rc == RINGKV_EPROTO || rc == RINGKV_ENOMEM);
    if (rc == RINGKV_OK) {
        check_value(&one);
        free(one.data);
    } else {
        CHECK(one.data == (char *)1 && one.len == 77);
    }

    size_t n = v->type == RESP_ARRAY ? v->n : 1;
    struct ringkv_value *vals = NULL;
    rc = rkl_values_from_reply(v, n, &vals);
    CHECK(rc == RINGKV_OK || rc == RINGKV_EPROTO || rc == RINGKV_ENOMEM);
    if (rc == RINGKV_OK) {
        for (size_t i = 0; i < n; i++) {
            check_value(&vals[i]);
        }
        ringkv_values_free(vals, n);
    } else {
        CHECK(vals == NULL);
    }

    struct ringkv_siblings *s = NULL;
    rc = rkl_siblings_from_reply(v, &s);
    CHECK(rc == RINGKV_OK || rc == RINGKV_EPROTO || rc == RINGKV_ENOMEM);
    if (rc == RINGKV_OK) {
        CHECK(s->context[s->context_len] == '\0');
        for (size_t i = 0; i < s->n; i++) {
            check_value(&s->items[i].value);
        }
        ringkv_siblings_free(s);
    } else {
        CHECK(s == NULL);
    }

    /* every call's decoding (cmd.c), as the blocking and async APIs do */
    for (int op = RKL_OP_GET; op <= RKL_OP_PUT; op++) {
        struct ringkv_result res;
        rc = rkl_cmd_decode((enum rkl_op)op, n, v, &res);
        CHECK(rc == res.err);
        CHECK(rc == RINGKV_OK || rc == RINGKV_EPROTO || rc == RINGKV_ENOMEM ||
              (rc == RINGKV_ENOTFOUND && op == RKL_OP_GET));
        if (rc == RINGKV_OK && res.value.data != NULL) {
            check_value(&res.value);
        }
        CHECK(res.n_values == (res.values != NULL ? n : 0));
        rkl_result_fini(&res);
    }

    rc = rkl_error_code(v);
    CHECK(v->type == RESP_ERROR ? (rc == RINGKV_ENOQUORUM ||
                                   rc == RINGKV_EAUTH || rc == RINGKV_ESERVER)
                                : rc == RINGKV_EPROTO);
    resp_value_free(v);
    return 0;
}
