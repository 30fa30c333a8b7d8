/*
 * glob.h - Redis-style glob matching for SCAN MATCH, KEYS and CONFIG GET.
 *
 * Pattern syntax as Redis documents for KEYS: `*` any run, `?` one byte,
 * `[abc]`, `[^abc]`, `[a-z]` sets, `\x` escapes x.  Binary-safe.
 */
#ifndef RINGKV_COMMON_GLOB_H
#define RINGKV_COMMON_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when s[0..slen) matches pat[0..plen).  `nocase` folds ASCII case.
 * Complexity: worst case O(plen * slen); recursion on '*' is bounded by
 * collapsing consecutive stars and backtracking iteratively.
 * Thread: any.
 */
bool rk_glob_match(const char *pat,
                   size_t plen,
                   const char *s,
                   size_t slen,
                   bool nocase);

#endif /* RINGKV_COMMON_GLOB_H */
