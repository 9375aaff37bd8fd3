/* fuzz_tokenizer.c — libFuzzer target for the tokenizer. An input whose
 * first byte is 0 is a tokenizer.json (the rest of it): parsed, and when
 * accepted used on a few strings. Any other input is text for the real
 * Qwen3.5 tokenizer (golden/tokenizer/tokenizer.qwen35.json, or
 * $Q35_FUZZ_TOKENIZER): encoded in every added-token mode, decoded at once
 * and through the streaming decoder, with the invariants checked — the
 * ids' bytes give back the NFC of the text (for valid UTF-8 without added
 * tokens), and streaming equals one-shot decoding. Not part of ctest (the
 * mutation tests in tests/text/test_tokenizer_robust.c are what CI runs).
 * Build as tests/fuzz/README.md shows for fuzz_gguf (a clang build dir B
 * with q35_text), then:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -D_GNU_SOURCE -Iinclude -Isrc tests/fuzz/fuzz_tokenizer.c \
 *         $B/libq35_text.a $B/libq35_formats.a $B/libq35_core.a \
 *         $(pkg-config --libs libcjson libcurl libcrypto libpcre2-8 libutf8proc) \
 *         -lm -lpthread -o $B/fuzz_tokenizer
 *   $B/fuzz_tokenizer -max_total_time=900 -max_len=4096 $B/corpus SEEDS
 *
 * with SEEDS holding some texts (e.g. the tok_cases strings, one per file)
 * and a tokenizer.json prefixed by a 0 byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"
#include "text/tokenizer_internal.h"

static q35_tokenizer *real;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *path = getenv("Q35_FUZZ_TOKENIZER");
    if (!path) {
        fprintf(stderr, "fuzz_tokenizer: set Q35_FUZZ_TOKENIZER to a tokenizer.json, e.g. "
                        "build-test/tests/fixtures/tokenizer/tokenizer.qwen35.json\n");
        abort();
    }
    q35_err e = {0};
    real = q35_tokenizer_load(path, &e);
    if (!real) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", e.msg);
        abort();
    }
    return 0;
}

static void use(const q35_tokenizer *t, const char *text, size_t n) {
    for (int mode = 0; mode < 3; mode++) {
        int32_t *ids = NULL;
        size_t k = 0;
        q35_err e = {0};
        if (q35_tokenize(t, text, n, (q35_added_mode)mode, &ids, &k, &e)) abort();
        char *out;
        size_t len;
        if (q35_detokenize(t, ids, k, false, &out, &len, &e)) abort();
        q35_detok_stream *s = q35_detok_stream_new(t, false, &e);
        char *acc = malloc(len + 4);
        size_t m = 0;
        for (size_t i = 0; i < k; i++) {
            const char *p;
            size_t l;
            if (q35_detok_stream_push(s, ids[i], &p, &l, &e) || m + l > len) abort();
            memcpy(acc + m, p, l);
            m += l;
        }
        const char *p;
        size_t l;
        q35_detok_stream_flush(s, &p, &l);
        if (m + l != len || memcmp(acc, out, m) || memcmp(p, out + m, l)) abort();
        q35_detok_stream_free(s);
        free(acc);
        if (mode == Q35_ADDED_AS_TEXT) {
            /* bytes of the ids == the text, normalized where it is valid UTF-8 */
            bool valid = true;
            for (size_t i = 0; i < n && valid;) {
                int r = tok_utf8_next((const unsigned char *)text + i, n - i);
                valid = r > 0;
                i += r > 0 ? (size_t)r : 0;
            }
            if (valid) {
                char *owned;
                size_t nl;
                const char *norm = tok_normalize(t->normalizer, text, n, &nl, &owned, &e);
                size_t bl = 0;
                char *b = malloc(4 * n + 4);
                for (size_t i = 0; i < k; i++) {
                    size_t tl;
                    const char *tb = q35_token_bytes(t, ids[i], &tl);
                    memcpy(b + bl, tb, tl);
                    bl += tl;
                }
                if (!norm || bl != nl || memcmp(b, norm, nl)) abort();
                free(b);
                free(owned);
            }
        }
        free(out);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 0 && data[0] == 0) {
        q35_err e = {0};
        q35_tokenizer *t = q35_tokenizer_from_json((const char *)data + 1, size - 1, NULL, 0, &e);
        if (t) {
            use(t, "Hello, world! <|im_end|> caf\xc3\xa9 \xff", 27);
            q35_tokenizer_free(t);
        }
        return 0;
    }
    use(real, (const char *)data, size);
    return 0;
}
