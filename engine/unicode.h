/* engine/unicode.h - UTF-8 and the character classes the tokenizers' pre-tokenizers need.
 *
 * Pure functions over constant tables: no state, safe from any thread. */
#ifndef KILN_ENGINE_UNICODE_H
#define KILN_ENGINE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Decode one code point from s[0..len) (len >= 1). Returns the number of bytes
 * consumed (1..4). A malformed or truncated sequence (overlong forms, surrogates,
 * > U+10FFFF included) consumes exactly 1 byte and yields *cp = 0xFFFD with
 * *valid = 0 (valid may be NULL). */
int kiln_utf8_decode(const char *s, size_t len, uint32_t *cp, int *valid);

/* Encode cp (<= 0x10FFFF) into out[0..4); returns the byte count (1..4), 0 if cp is invalid. */
int kiln_utf8_encode(uint32_t cp, char out[4]);

/* Bytes a sequence starting with lead byte b should have: 1..4, 0 if b cannot start one. */
int kiln_utf8_seq_len(unsigned char b);

/* 1 if s[0..len) is entirely valid UTF-8. */
int kiln_utf8_valid(const char *s, size_t len);

/* If s[0..len) ends in a sequence that is a valid but incomplete prefix (1..3 bytes),
 * return its length, else 0: the bytes a streaming decoder must hold back. */
size_t kiln_utf8_incomplete_tail(const char *s, size_t len);

/* General categories L* (\p{L}) and N* (Nd, Nl, No = \p{N}), Unicode 14. */
int kiln_uni_is_letter(uint32_t cp);
int kiln_uni_is_number(uint32_t cp);
/* White_Space property (regex \s): \t \n \v \f \r, space, U+0085, U+00A0, U+1680,
 * U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000. */
int kiln_uni_is_space(uint32_t cp);

#endif
