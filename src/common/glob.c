/*
 * glob.c - glob matcher; see glob.h.  Iterative with one backtrack point
 * for the last '*' seen (the classic wildcard algorithm), so hostile
 * patterns like "a*a*a*a*...b" cost O(plen * slen), never exponential.
 */
#include "common/glob.h"

#include <ctype.h>

static int fold(int c, bool nocase)
{
    return nocase ? tolower(c) : c;
}

/*
 * Matches one pattern element at pat[*pi] against byte c; advances *pi past
 * the element.  Returns true on match.
 */
static bool match_one(const char *pat,
                      size_t plen,
                      size_t *pi,
                      unsigned char c,
                      bool nocase)
{
    size_t i = *pi;
    if (pat[i] == '?') {
        *pi = i + 1;
        return true;
    }
    if (pat[i] == '\\' && i + 1 < plen) {
        *pi = i + 2;
        return fold((unsigned char)pat[i + 1], nocase) == fold(c, nocase);
    }
    if (pat[i] == '[') {
        i++;
        bool negate = false;
        if (i < plen && pat[i] == '^') {
            negate = true;
            i++;
        }
        bool hit = false;
        while (i < plen && pat[i] != ']') {
            if (pat[i] == '\\' && i + 1 < plen) {
                i++;
                if (fold((unsigned char)pat[i], nocase) == fold(c, nocase)) {
                    hit = true;
                }
                i++;
            } else if (i + 2 < plen && pat[i + 1] == '-') {
                int lo = fold((unsigned char)pat[i], nocase);
                int hi = fold((unsigned char)pat[i + 2], nocase);
                if (lo > hi) {
                    int t = lo;
                    lo = hi;
                    hi = t;
                }
                int cc = fold(c, nocase);
                if (cc >= lo && cc <= hi) {
                    hit = true;
                }
                i += 3;
            } else {
                if (fold((unsigned char)pat[i], nocase) == fold(c, nocase)) {
                    hit = true;
                }
                i++;
            }
        }
        if (i < plen) {
            i++; /* skip ']' */
        }
        *pi = i;
        return negate ? !hit : hit;
    }
    *pi = i + 1;
    return fold((unsigned char)pat[i], nocase) == fold(c, nocase);
}

bool rk_glob_match(const char *pat,
                   size_t plen,
                   const char *s,
                   size_t slen,
                   bool nocase)
{
    size_t pi = 0, si = 0;
    size_t star_p = (size_t)-1, star_s = 0;
    while (si < slen) {
        if (pi < plen && pat[pi] == '*') {
            while (pi < plen && pat[pi] == '*') {
                pi++;
            }
            if (pi == plen) {
                return true;
            }
            star_p = pi;
            star_s = si;
            continue;
        }
        size_t next = pi;
        if (pi < plen &&
            match_one(pat, plen, &next, (unsigned char)s[si], nocase)) {
            pi = next;
            si++;
            continue;
        }
        if (star_p == (size_t)-1) {
            return false;
        }
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && pat[pi] == '*') {
        pi++;
    }
    return pi == plen;
}
