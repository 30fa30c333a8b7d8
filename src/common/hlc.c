/* hlc.c - hybrid logical clock; see hlc.h. */
#include "common/hlc.h"

void hlc_init(struct hlc *h)
{
    h->last = 0;
}

uint64_t hlc_now(struct hlc *h, uint64_t now_ms)
{
    uint64_t phys = now_ms << HLC_LOGICAL_BITS;
    h->last = phys > h->last ? phys : h->last + 1;
    return h->last;
}

uint64_t hlc_update(struct hlc *h, uint64_t now_ms, uint64_t remote)
{
    uint64_t phys = now_ms << HLC_LOGICAL_BITS;
    uint64_t m = h->last > remote ? h->last : remote;
    h->last = phys > m ? phys : m + 1;
    return h->last;
}
