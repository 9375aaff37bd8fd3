/* test_tokenizer_nfc.c — the normalizer's shortcut (only stretches around
 * characters NFC could touch go through utf8proc) gives exactly utf8proc's
 * NFC of the whole text: for every code point alone, after a starter it
 * could compose with, and for random text dense in combining marks, Hangul
 * jamo, singletons and composition exclusions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <utf8proc.h>

#include "text/tokenizer_internal.h"

/* NFC through the tokenizer's normalizer. */
static char *ours(const char *s, size_t n, size_t *len) {
    char *owned;
    q35_err e = {0};
    const char *r = tok_normalize(Q35_TOK_NORM_NFC, s, n, len, &owned, &e);
    assert_non_null(r);
    char *copy = malloc(*len + 1);
    memcpy(copy, r, *len);
    free(owned);
    return copy;
}

static void expect_nfc(const char *s, size_t n) {
    utf8proc_uint8_t *want = NULL;
    utf8proc_ssize_t wl = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &want,
                                       UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    assert_true(wl >= 0);
    size_t len;
    char *got = ours(s, n, &len);
    if (len != (size_t)wl || memcmp(got, want, len)) {
        fprintf(stderr, "NFC differs on:");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %02x", (unsigned char)s[i]);
        fprintf(stderr, "\n");
        fail();
    }
    free(got);
    free(want);
}

static size_t put(char *dst, int32_t cp) {
    return (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)dst);
}

static bool assigned_scalar(int32_t cp) {
    return !(cp >= 0xD800 && cp <= 0xDFFF) && utf8proc_category(cp) != UTF8PROC_CATEGORY_CN;
}

/* Every code point alone and behind starters that take combining marks. */
static void test_every_code_point(void **state) {
    (void)state;
    static const int32_t before[] = {'A', 'e', 0x1100, 0xAC00, 0x0B47, 0x0915, 0x3046, 0x05D0};
    int inert = 0;
    for (int32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (!assigned_scalar(cp)) continue;
        char buf[16];
        size_t n = put(buf, cp);
        expect_nfc(buf, n);
        inert += tok_nfc_inert(cp);
        /* one in 16 code points (all of them would take minutes under ASan) */
        if (cp % 16 && !(cp >= 0x300 && cp < 0x370) && !(cp >= 0x1100 && cp < 0x1200)) continue;
        for (size_t k = 0; k < sizeof before / sizeof *before; k++) {
            size_t m = put(buf, before[k]);
            m += put(buf + m, cp);
            expect_nfc(buf, m);
            m += put(buf + m, 'x');
            expect_nfc(buf, m);
        }
    }
    fprintf(stderr, "%d code points take the shortcut\n", inert);
    assert_true(inert > 100000); /* CJK, Hangul syllables, ... */
}

/* Random text: mostly inert characters, with the troublemakers mixed in. */
static void test_random_text(void **state) {
    (void)state;
    static const int32_t hard[] = {
        0x0300, 0x0301, 0x0308, 0x0323, 0x0345, 0x0344, 0x0340, 0x0958,  0x2126,  0x212B,  0x1100,
        0x1161, 0x11A8, 0xAC00, 0xAC01, 0x0B47, 0x0B3E, 0x0B57, 0x3099,  0x309A,  0x304B,  0x0F73,
        0x0F75, 0x1E0A, 0x00C5, 0x0041, 0x0065, 0x0419, 0x0306, 0x05B4,  0x0591,  0x1D15E, 0xFB1D,
        0x2ADC, 0x0374, 0x037E, 0x0387, 0x1F71, 0x0CCA, 0x0CC2, 0x0CD5,  0x09CB,  0x09BE,  0x09D7,
        0x0DDA, 0x0DCA, 0x0DCF, 0x1025, 0x102E, 0x1B05, 0x1B35, 0x110AB, 0x110BA, 0x0627,  0x0653};
    uint32_t rng = 2024;
    char buf[512];
    for (int k = 0; k < 20000; k++) {
        size_t n = 0;
        int len = 1 + k % 24;
        for (int j = 0; j < len; j++) {
            rng = rng * 1664525u + 1013904223u;
            uint32_t r = rng >> 8;
            int32_t cp;
            if (r % 3 == 0)
                cp = hard[(r / 3) % (sizeof hard / sizeof *hard)];
            else if (r % 3 == 1)
                cp = 0x20 + (int32_t)((r / 3) % 0x5F);
            else
                cp = (int32_t)((r / 3) % 0x30000);
            if (!assigned_scalar(cp)) cp = 'a';
            n += put(buf + n, cp);
        }
        expect_nfc(buf, n);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_point),
        cmocka_unit_test(test_random_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
