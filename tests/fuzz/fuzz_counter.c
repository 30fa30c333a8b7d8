/*
 * fuzz_counter.c - libFuzzer target for the counter state decoder and a
 * key's value from counter siblings (cluster/types/counter.h; TESTING.md
 * B5: a counter state is a sibling's value, so it arrives from peers and
 * from disk as arbitrary bytes), and for the member keys of hashes and
 * sets (cluster/types/coll.h), which clients' bytes become.
 *
 * Checks: no crash, leak or sanitizer report; an accepted state is
 * canonical (re-encoding gives the input bytes), joins with itself into
 * itself, and resolves as a counter sibling of an object; a member key
 * parses back to its parts and has its collection's slot.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/dvv.h"
#include "cluster/slot.h"
#include "cluster/types/coll.h"
#include "cluster/types/counter.h"
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

static void member_keys(const uint8_t *data, size_t size)
{
    size_t klen = size ? data[0] % (size + 1) : 0;
    if (klen > size) {
        klen = size;
    }
    struct rk_buf mk;
    rk_buf_init(&mk);
    if (coll_member_key(data, klen, data + klen, size - klen, &mk) == RK_OK) {
        const char *k, *m;
        size_t kl, ml;
        CHECK(coll_member_parse(mk.base, mk.len, &k, &kl, &m, &ml));
        CHECK(kl == klen && ml == size - klen);
        CHECK(slot_of_key(mk.base, mk.len) == slot_of_key(data, klen));
    }
    rk_buf_fini(&mk);
    /* any bytes: parse or not, and a slot either way */
    const char *k, *m;
    size_t kl, ml;
    if (coll_member_parse(data, size, &k, &kl, &m, &ml)) {
        CHECK(kl + ml + COLL_MEMBER_HDR == size);
    }
    (void)slot_of_key(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    member_keys(data, size);
    struct counter c, d;
    counter_init(&c);
    counter_init(&d);
    int rc = counter_decode(&c, data, size);
    CHECK(rc == RK_OK || rc == RK_ECORRUPT);
    CHECK((rc == RK_OK) == counter_valid(data, size));
    if (rc == RK_OK) {
        struct rk_buf a, b;
        rk_buf_init(&a);
        rk_buf_init(&b);
        CHECK(counter_encode(&c, &a) == RK_OK);
        CHECK(a.len == size && memcmp(a.base, data, size) == 0);
        CHECK(counter_decode(&d, a.base, a.len) == RK_OK);
        CHECK(counter_join(&d, &c) == RK_OK);
        CHECK(counter_encode(&d, &b) == RK_OK);
        CHECK(b.len == a.len && memcmp(a.base, b.base, a.len) == 0);
        __int128 sum;
        (void)counter_sum(&c, &sum);
        /* as a counter sibling (and as a DEL's tombstone) of an object */
        for (int tomb = 0; tomb < 2; tomb++) {
            struct dvv_obj o;
            dvv_init(&o);
            struct dvv_write w = {.value = data,
                                  .vlen = size,
                                  .ts = 5,
                                  .tombstone = tomb != 0,
                                  .counter = true};
            CHECK(dvv_update(&o, NULL, 7, 0, &w, NULL) == RK_OK);
            struct counter st;
            counter_init(&st);
            struct counter_view v;
            CHECK(counter_resolve(&o, 0, &st, &v) == RK_OK);
            int64_t r;
            uint64_t exp;
            int irc = counter_incr(&o, 0, 6, 7, 2, 1, &st, &exp, &r);
            CHECK(irc == RK_OK || irc == RK_EINVAL || irc == RK_ERANGE);
            counter_fini(&st);
            dvv_fini(&o);
        }
        rk_buf_fini(&a);
        rk_buf_fini(&b);
    }
    counter_fini(&c);
    counter_fini(&d);
    return 0;
}
