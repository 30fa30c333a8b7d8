/*
 * hlc.h - hybrid logical clock timestamps (Kulkarni, Demirbas, Madappa,
 * Avva, Leone: "Logical Physical Clocks and Consistent Snapshots in
 * Globally Distributed Databases", 2014).
 *
 * A timestamp is 64 bits: the high 48 bits are physical Unix time in ms,
 * the low 16 bits a logical counter.  Timestamps from one clock are
 * strictly increasing even when the physical clock stalls or jumps back.
 * Sans-IO: the caller passes the physical time in.
 */
#ifndef RINGKV_COMMON_HLC_H
#define RINGKV_COMMON_HLC_H

#include <stdint.h>

#define HLC_LOGICAL_BITS 16

struct hlc
{
    uint64_t last; /* last timestamp issued or observed */
};

/* Starts a clock at 0 (caller storage). */
void hlc_init(struct hlc *h);

/*
 * Issues a timestamp for a local event at physical time `now_ms`:
 * max(now_ms << 16, last + 1).  Thread: the owner of h only.
 */
uint64_t hlc_now(struct hlc *h, uint64_t now_ms);

/*
 * Merges a timestamp `remote` received from another node and issues a
 * timestamp for the receive event: greater than both `remote` and every
 * earlier timestamp of h.
 */
uint64_t hlc_update(struct hlc *h, uint64_t now_ms, uint64_t remote);

/* Physical part of a timestamp, Unix ms. */
static inline uint64_t hlc_physical_ms(uint64_t ts)
{
    return ts >> HLC_LOGICAL_BITS;
}

#endif /* RINGKV_COMMON_HLC_H */
