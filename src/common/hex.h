/*
 * hex.h - hexadecimal digits, shared by the parsers that read hex (RESP
 * inline escapes, the CLI's quoting, dvv text, cluster secrets).
 */
#ifndef RINGKV_COMMON_HEX_H
#define RINGKV_COMMON_HEX_H

/* The value 0..15 of hex digit c (either case), or -1.  Thread: any. */
static inline int rk_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

#endif
