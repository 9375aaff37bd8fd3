/* test_safetensors_mutate.c — deterministic mutation testing of checkpoint
 * loading (config.json + safetensors), the counterpart of
 * tests/model/test_gguf_mutate.c. Mutants of golden tiny-a are written to a
 * temporary directory and loaded with q35_model_load:
 *  - the safetensors header's JSON, token by token: numbers (offsets, shape
 *    entries) replaced by edge values or swapped, strings (dtypes, names)
 *    replaced by other dtypes, other tensors' names (duplicates), empty or
 *    long strings; characters deleted or inserted (broken JSON); the 8-byte
 *    header length set to edge values; truncation anywhere;
 *  - config.json the same way (sizes, head counts, eps, layer types, rope).
 * Every mutant must either load or fail with a message. One that loads must
 * also run: two tokens through the prefill path and one through the decode
 * path, so a loader that accepted sizes the data cannot back shows up as an
 * out-of-bounds read under ASan (the CI's second pass). The fixed seed makes
 * a failure reproducible: the failing iteration is printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/mapped_file.h"
#include "q35.h"
#include "test_rng.h"

#define TINY_A Q35_FIXTURES "/models/tiny-a"

/* A growable byte string. */
typedef struct buf {
    char *p;
    size_t n;
} buf;

static void buf_set(buf *b, const char *p, size_t n) {
    char *q = malloc(n + 1);
    assert_non_null(q);
    memcpy(q, p, n);
    q[n] = 0;
    free(b->p);
    b->p = q;
    b->n = n;
}

/* Replaces b[at, at+len) with `with`. */
static void splice(buf *b, size_t at, size_t len, const char *with, size_t wlen) {
    char *q = malloc(b->n - len + wlen + 1);
    assert_non_null(q);
    memcpy(q, b->p, at);
    memcpy(q + at, with, wlen);
    memcpy(q + at + wlen, b->p + at + len, b->n - at - len);
    b->n = b->n - len + wlen;
    q[b->n] = 0;
    free(b->p);
    b->p = q;
}

/* A JSON token of the original text: a number or a string (quotes
 * included). */
typedef struct token {
    size_t at, len;
    int is_string;
} token;

static size_t scan_tokens(const char *s, size_t n, token *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap;) {
        if (s[i] == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != '"')
                j += s[j] == '\\' ? 2 : 1;
            out[k++] = (token){i, (j < n ? j + 1 : n) - i, 1};
            i = j + 1;
        } else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
            size_t j = i + 1;
            while (j < n && strchr("0123456789.eE+-", s[j]))
                j++;
            out[k++] = (token){i, j - i, 0};
            i = j;
        } else {
            i++;
        }
    }
    return k;
}

static const char *edge_number(rng *r, char *tmp, size_t cap, size_t data_len) {
    static const char *const v[] = {"0",
                                    "1",
                                    "-1",
                                    "2",
                                    "3",
                                    "7",
                                    "8",
                                    "64",
                                    "65",
                                    "4096",
                                    "65536",
                                    "2147483647",
                                    "2147483648",
                                    "4294967295",
                                    "4294967296",
                                    "9223372036854775807",
                                    "9223372036854775808",
                                    "18446744073709551615",
                                    "18446744073709551616",
                                    "-9223372036854775808",
                                    "1e308",
                                    "1e-320",
                                    "0.5",
                                    "1.5",
                                    "-0",
                                    "1e3",
                                    "NaN",
                                    "00"};
    size_t k = below(r, sizeof v / sizeof v[0] + 3);
    if (k < sizeof v / sizeof v[0]) return v[k];
    long long d = (long long)data_len + (long long)k - (long long)(sizeof v / sizeof v[0]) - 1;
    snprintf(tmp, cap, "%lld", d); /* the data section's length, +-1 */
    return tmp;
}

static const char *edge_string(rng *r, const buf *orig, const token *toks, size_t n_toks, char *tmp,
                               size_t cap) {
    static const char *const v[] = {"\"U32\"",
                                    "\"F64\"",
                                    "\"I8\"",
                                    "\"BOOL\"",
                                    "\"F8_E4M3\"",
                                    "\"BF16\"",
                                    "\"F16\"",
                                    "\"F32\"",
                                    "\"\"",
                                    "\"x\"",
                                    "\"linear_attention\"",
                                    "\"full_attention\"",
                                    "\"\\u0000\"",
                                    "\"data_offsets\"",
                                    "\"dtype\"",
                                    "\"shape\"",
                                    "\"__metadata__\""};
    size_t k = below(r, sizeof v / sizeof v[0] + 2);
    if (k < sizeof v / sizeof v[0]) return v[k];
    if (k == sizeof v / sizeof v[0]) { /* another string of the same text */
        for (int tries = 0; tries < 16; tries++) {
            const token *t = &toks[below(r, n_toks)];
            if (t->is_string && t->len < cap) {
                memcpy(tmp, orig->p + t->at, t->len);
                tmp[t->len] = 0;
                return tmp;
            }
        }
        return "\"y\"";
    }
    size_t len = 1 + below(r, cap - 3);
    tmp[0] = '"';
    memset(tmp + 1, 'a' + (int)below(r, 26), len);
    tmp[len + 1] = '"';
    tmp[len + 2] = 0;
    return tmp;
}

/* Applies 1-3 token-level or character-level mutations to `b`, a copy of
 * the JSON text `orig` whose tokens are `toks`. Tokens are located in the
 * original text, so each mutation after the first works on fresh offsets:
 * it re-scans. */
static void mutate_json(rng *r, buf *b, size_t data_len) {
    int k = 1 + (int)below(r, 3);
    for (int i = 0; i < k; i++) {
        token toks[4096];
        size_t n = scan_tokens(b->p, b->n, toks, 4096);
        if (!n) return;
        char tmp[300];
        switch (below(r, 8)) {
        case 0:
        case 1:
        case 2: { /* a number */
            token t;
            int tries = 0;
            do
                t = toks[below(r, n)];
            while (t.is_string && ++tries < 32);
            if (t.is_string) break;
            const char *w = edge_number(r, tmp, sizeof tmp, data_len);
            splice(b, t.at, t.len, w, strlen(w));
            break;
        }
        case 3:
        case 4: { /* a string */
            token t = toks[below(r, n)];
            if (!t.is_string) break;
            char s[300];
            const char *w = edge_string(r, b, toks, n, s, sizeof s);
            snprintf(tmp, sizeof tmp, "%s", w);
            splice(b, t.at, t.len, tmp, strlen(tmp));
            break;
        }
        case 5: { /* two numbers swapped */
            token a = toks[below(r, n)], c = toks[below(r, n)];
            if (a.is_string || c.is_string || a.at == c.at) break;
            if (a.at > c.at) {
                token x = a;
                a = c;
                c = x;
            }
            char sa[64], sc[64];
            if (a.len >= sizeof sa || c.len >= sizeof sc) break;
            memcpy(sa, b->p + a.at, a.len);
            memcpy(sc, b->p + c.at, c.len);
            splice(b, c.at, c.len, sa, a.len); /* later one first: offsets hold */
            splice(b, a.at, a.len, sc, c.len);
            break;
        }
        case 6: /* a character deleted */
            if (b->n) splice(b, below(r, b->n), 1, "", 0);
            break;
        default: { /* a structural character inserted */
            const char *c = "[]{},:\"-0 ";
            size_t at = below(r, b->n + 1);
            splice(b, at, 0, c + below(r, strlen(c)), 1);
            break;
        }
        }
    }
}

typedef struct corpus {
    buf config;
    buf header; /* the safetensors JSON header */
    unsigned char *data;
    size_t data_len;
} corpus;

static void corpus_load(corpus *c) {
    memset(c, 0, sizeof *c);
    q35_err e = {0};
    size_t n;
    char *cfg = q35_read_text_file(TINY_A "/config.json", 1 << 20, &n, &e);
    assert_non_null(cfg);
    buf_set(&c->config, cfg, n);
    free(cfg);
    q35_mapped_file f;
    assert_int_equal(q35_mapped_file_open(&f, TINY_A "/model.safetensors", &e), Q35_OK);
    const unsigned char *p = f.data;
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)p[i] << (8 * i);
    assert_true(hl + 8 <= f.size);
    buf_set(&c->header, (const char *)p + 8, (size_t)hl);
    c->data_len = f.size - 8 - (size_t)hl;
    c->data = malloc(c->data_len);
    assert_non_null(c->data);
    memcpy(c->data, p + 8 + hl, c->data_len);
    q35_mapped_file_close(&f);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

typedef struct outcome {
    int failed, loaded;
} outcome;

/* Loads dir; a model that loads must run prefill and decode. */
static void load_and_run(const char *dir, outcome *o, const char *what, int iter) {
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = 1};
    q35_model *m = q35_model_load(dir, &lo, &e);
    if (!m) {
        if (!e.msg[0]) {
            fprintf(stderr, "%s iteration %d: failed without a message\n", what, iter);
            fail();
        }
        if (getenv("Q35_MUTATE_VERBOSE")) fprintf(stderr, "%s %d: %s\n", what, iter, e.msg);
        o->failed++;
        return;
    }
    o->loaded++;
    q35_model_info in;
    q35_model_get_info(m, &in);
    q35_state *s = q35_state_new(m, 8, &e);
    if (s) {
        int32_t ids[2] = {0, in.vocab_size - 1};
        float *logits = malloc((size_t)in.vocab_size * sizeof *logits);
        assert_non_null(logits);
        int rc = q35_state_eval(m, s, ids, 2, logits, false, &e);
        if (!rc) rc = q35_state_eval(m, s, ids + 1, 1, logits, false, &e);
        if (rc && !e.msg[0]) {
            fprintf(stderr, "%s iteration %d: eval failed without a message\n", what, iter);
            fail();
        }
        free(logits);
        q35_state_free(s);
    }
    q35_model_free(m);
}

static void test_mutants(void **state) {
    (void)state;
    corpus c;
    corpus_load(&c);
    char dir[] = "/tmp/q35-st-mutate-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg_path[128], st_path[128];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);

    /* The unmutated pair loads: the harness itself is sound. */
    outcome base = {0};
    write_file(cfg_path, c.config.p, c.config.n);
    size_t file_cap = 8 + c.header.n + 4096 + c.data_len;
    unsigned char *file = malloc(file_cap);
    assert_non_null(file);
    rng r = {0x9e3779b97f4a7c15ull};
    outcome hdr = {0}, cfg = {0};
    const int iterations = 5000;
    for (int it = -1; it < iterations; it++) {
        buf h = {0}, k = {0};
        buf_set(&h, c.header.p, c.header.n);
        buf_set(&k, c.config.p, c.config.n);
        bool on_config = it >= 0 && below(&r, 3) == 0;
        uint64_t hl_field = 0;
        size_t cut = SIZE_MAX;
        if (it >= 0) {
            if (on_config) {
                mutate_json(&r, &k, c.data_len);
            } else {
                switch (below(&r, 8)) {
                case 0: { /* the header length field */
                    static const uint64_t v[] = {
                        0, 1, 2, 7, 8, UINT32_MAX, 1ull << 40, UINT64_MAX, UINT64_MAX - 7};
                    hl_field = v[below(&r, sizeof v / sizeof v[0])];
                    if (below(&r, 2)) hl_field = h.n + (below(&r, 2) ? 1 : (uint64_t)-1);
                    break;
                }
                case 1: cut = below(&r, 8 + h.n + c.data_len); break;
                default: mutate_json(&r, &h, c.data_len); break;
                }
            }
        }
        size_t hn = h.n > 4096 + c.header.n ? 4096 + c.header.n : h.n;
        uint64_t hl = hl_field ? hl_field : hn;
        for (int i = 0; i < 8; i++)
            file[i] = (unsigned char)(hl >> (8 * i));
        memcpy(file + 8, h.p, hn);
        memcpy(file + 8 + hn, c.data, c.data_len);
        size_t fn = 8 + hn + c.data_len;
        if (cut < fn) fn = cut;
        write_file(st_path, file, fn);
        write_file(cfg_path, k.p, k.n);
        load_and_run(dir,
                     it < 0      ? &base
                     : on_config ? &cfg
                                 : &hdr,
                     on_config ? "config" : "header", it);
        free(h.p);
        free(k.p);
    }
    assert_int_equal(base.loaded, 1);
    fprintf(stderr,
            "%d mutants: safetensors %d rejected / %d loaded and ran; config.json %d rejected / %d "
            "loaded and ran\n",
            iterations, hdr.failed, hdr.loaded, cfg.failed, cfg.loaded);
    /* Mutations must mostly reach the checks, not only the JSON parser's. */
    assert_true(hdr.failed > iterations / 4 && cfg.failed > iterations / 20);
    unlink(cfg_path);
    unlink(st_path);
    rmdir(dir);
    free(file);
    free(c.config.p);
    free(c.header.p);
    free(c.data);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_mutants)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
