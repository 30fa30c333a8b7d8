/*
 * fuzz_dvv.c - libFuzzer target for the versioned-object decoder and the
 * causal-context parser (TESTING.md B5: objects arrive from peers, and
 * contexts from clients through RINGKV.PUT, so both see arbitrary bytes).
 *
 * The first input byte picks the split point: bytes before it are tried
 * as an object, bytes after as a context string.  Checks: no crash, leak
 * or sanitizer report; an accepted object is canonical (re-encoding gives
 * the input bytes), merges with itself to itself, and survives an update
 * with the parsed context (the new sibling is present, every remaining
 * old sibling was not covered by the context); an accepted context
 * re-encodes to the same text (lower-case) or was upper-case hex.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/dvv.h"
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t split = 1 + (size_t)data[0] * (size - 1) / 255;
    const uint8_t *obj = data + 1, *ctxt = data + split;
    size_t olen = split - 1, clen = size - split;
    struct dvv_obj o, c, m;
    dvv_init(&o);
    dvv_init(&c);
    dvv_init(&m);
    struct rk_buf b;
    rk_buf_init(&b);
    int orc = dvv_decode(&o, obj, olen);
    CHECK(orc == RK_OK || orc == RK_ECORRUPT || orc == RK_EVERSION);
    if (orc == RK_OK) {
        CHECK(dvv_encode(&o, &b) == RK_OK);
        CHECK(b.len == olen && memcmp(b.base, obj, olen) == 0);
        CHECK(dvv_merge(&m, &o, &o) == RK_OK);
        CHECK(dvv_equal(&m, &o));
    }
    int crc = dvv_context_decode(&c, (const char *)ctxt, clen);
    CHECK(crc == RK_OK || crc == RK_EINVAL);
    if (crc == RK_OK) {
        rk_buf_clear(&b);
        CHECK(dvv_context_encode(&c, &b) == RK_OK);
        CHECK(clen == 0 || b.len == clen);
    }
    if (orc == RK_OK && crc == RK_OK) {
        struct dvv_obj before;
        dvv_init(&before);
        CHECK(dvv_copy(&before, &o) == RK_OK);
        struct dvv_write w = {"v", 1, 1, 0, false, false, false, false};
        struct dvv_dot d;
        int urc = dvv_update(&o, &c, 42, 0, &w, &d);
        CHECK(urc == RK_OK || urc == RK_ERANGE);
        if (urc == RK_OK) {
            bool found = false;
            for (size_t i = 0; i < o.n_sibs; i++) {
                struct dvv_dot s = o.sibs[i].dot;
                if (s.actor == d.actor && s.counter == d.counter) {
                    found = true;
                } else {
                    CHECK(!dvv_covers(&c, s));
                }
            }
            CHECK(found);
            rk_buf_clear(&b);
            CHECK(dvv_encode(&o, &b) == RK_OK || o.n_sibs > DVV_MAX_SIBLINGS);
        }
        dvv_fini(&before);
    }
    dvv_fini(&o);
    dvv_fini(&c);
    dvv_fini(&m);
    rk_buf_fini(&b);
    return 0;
}
