/*
 * internal.h - helpers shared by the files of src/proto (STYLE.md 1.1:
 * nothing outside src/proto includes this).
 */
#ifndef RINGKV_PROTO_INTERNAL_H
#define RINGKV_PROTO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest decimal form of an int64_t: "-9223372036854775808". */
#define RESP__I64_MAX_CHARS 20

/*
 * Parses the decimal integer s[0..len) into *out.
 * `strict` (request parser, as Redis's string2ll): an optional '-', then
 * digits with no leading zero ("0" itself is fine, "-0" is not), nothing
 * else.  Not strict (reply parser): an optional '+' or '-' and leading
 * zeros are accepted too.  Returns false on an empty, malformed or
 * overflowing number (*out untouched).
 */
bool resp__parse_i64(const char *s, size_t len, bool strict, int64_t *out);

/*
 * Writes v in decimal to dst (room for RESP__I64_MAX_CHARS bytes, no NUL)
 * and returns the number of bytes written.  Two digits per step.
 */
size_t resp__u64_to_str(uint64_t v, char *dst);
size_t resp__i64_to_str(int64_t v, char *dst);

#endif /* RINGKV_PROTO_INTERNAL_H */
