/* UTF-8 validation and decoding, and the few Unicode character classes the tokenizer needs to
 * behave exactly like Hugging Face tokenizers (Rust): \w and \s of the Rust regex crate and
 * char::to_lowercase. The tables live in lib/utf8_tables.c, generated once from the Unicode
 * Character Database by scripts/gen-unicode-tables.py (cap_unicode_version names the version). */
#ifndef CAP_UTF8_H
#define CAP_UTF8_H
#include <stddef.h>
#include <stdint.h>

/* Checks that s[0..n) is well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at most
 * U+10FFFF). Returns 0, or -1 and the offset of the first bad byte in *bad. */
int cap_utf8_check(const char *s, size_t n, size_t *bad);
/* Decodes the code point at s[*i] of well-formed UTF-8 and advances *i past it. */
uint32_t cap_utf8_next(const char *s, size_t *i);
/* Encodes cp (at most U+10FFFF, not a surrogate) into out; returns the byte count (1..4). */
size_t cap_utf8_put(uint32_t cp, char out[4]);

/* \w of Rust regex with Unicode: Alphabetic, marks (Mn, Mc, Me), Nd, Pc, Join_Control. */
int cap_uni_is_word(uint32_t cp);
/* \s of Rust regex: White_Space. */
int cap_uni_is_space(uint32_t cp);
/* Rust char::to_lowercase: writes 1 to 3 code points to out and returns how many. */
size_t cap_uni_lower(uint32_t cp, uint32_t out[3]);

/* The generated tables (lib/utf8_tables.c). */
struct cap_uni_lower_run { uint32_t lo, hi; int32_t stride, delta; };
struct cap_uni_lower_multi { uint32_t cp; int32_t n; uint32_t to[3]; };
extern const char cap_unicode_version[];
extern const uint32_t cap_uni_word_ranges[][2];
extern const size_t cap_uni_word_ranges_n;
extern const uint32_t cap_uni_space_ranges[][2];
extern const size_t cap_uni_space_ranges_n;
extern const struct cap_uni_lower_run cap_uni_lower_runs[];
extern const size_t cap_uni_lower_runs_n;
extern const struct cap_uni_lower_multi cap_uni_lower_multi[];
extern const size_t cap_uni_lower_multi_n;
#endif
