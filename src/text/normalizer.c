/* normalizer.c — Unicode normalization of the text before pre-tokenizing
 * (tokenizer.json's "normalizer"; NFC for the Qwen family), by utf8proc.
 * Text made only of code points below U+0300 is already NFC whatever
 * follows it (nothing there decomposes or combines with what precedes it),
 * which covers ASCII and Latin-1 prose without calling the library. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/err.h"
#include "text/tokenizer_internal.h"

/* True when valid UTF-8 text holds only code points below U+0300. */
static bool below_combining_marks(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) continue;
        /* Two-byte sequences C2..CB lead to U+0080..U+02FF. */
        if (s[i] >= 0xCC) return false;
        i++;
    }
    return true;
}

const char *tok_normalize(q35_tok_normalizer norm, const char *s, size_t n, size_t *out_len,
                          char **owned, q35_err *e) {
    *owned = NULL;
    *out_len = n;
    if (norm == Q35_TOK_NORM_NONE || below_combining_marks((const unsigned char *)s, n)) return s;
    if (n > (size_t)(SIZE_MAX / 8)) {
        q35_err_set(e, Q35_EOVERFLOW, "tokenize: text of %zu bytes is too long to normalize", n);
        return NULL;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (r < 0) {
        q35_err_set(e, r == UTF8PROC_ERROR_NOMEM ? Q35_ENOMEM : Q35_EINVAL,
                    "tokenize: NFC normalization failed: %s", utf8proc_errmsg(r));
        return NULL;
    }
    *owned = (char *)dst;
    *out_len = (size_t)r;
    return (const char *)dst;
}
