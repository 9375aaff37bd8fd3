/* test_gguf_mutate.c — deterministic mutation testing of GGUF loading. The
 * golden GGUF files are mutated thousands of times (random bytes and bit
 * flips in the header, "interesting" values written into the very fields
 * that hold lengths, counts, types, dims and offsets, truncations) and each
 * mutant is parsed and, when it parses, bound into a q35_model. Every
 * mutant must either load or fail with an error message; run under
 * ASan/UBSan (the CI's second pass) this asserts no out-of-bounds access,
 * overflow, leak or crash. The fixed seed makes any failure reproducible:
 * the failing iteration is printed. For open-ended search, see
 * tests/fuzz/README.md (libFuzzer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/gguf.h"
#include "formats/gguf_builder.h"
#include "model/load_gguf.h"
#include "model/model.h"
#include "test_rng.h"

/* A field of the original file that holds a number: where, and how wide. */
typedef struct field {
    size_t at;
    int width; /* 4 or 8 */
} field;

typedef struct corpus {
    const char *name;
    unsigned char *p;
    size_t n, header; /* header = start of the data section */
    field *fields;
    size_t n_fields;
} corpus;

static void add_field(corpus *c, size_t at, int width) {
    c->fields = realloc(c->fields, (c->n_fields + 1) * sizeof *c->fields);
    assert_non_null(c->fields);
    c->fields[c->n_fields++] = (field){at, width};
}

static void corpus_load(corpus *c, const char *file) {
    char path[512];
    snprintf(path, sizeof path, "%s/gguf/%s", Q35_FIXTURES, file);
    memset(c, 0, sizeof *c);
    c->name = file;
    c->p = gb_read_file(path, &c->n);
    assert_non_null(c->p);
    q35_gguf g;
    q35_err e = {0};
    assert_int_equal(q35_gguf_parse(&g, c->p, c->n, file, &e), Q35_OK);
    c->header = g.data_offset;
    add_field(c, 4, 4);  /* version */
    add_field(c, 8, 8);  /* tensor count */
    add_field(c, 16, 8); /* kv count */
    for (int64_t i = 0; i < g.n_kv; i++) {
        const q35_gguf_kv *kv = &g.kvs[i];
        size_t type_at = kv->file_offset + 8 + kv->key.len;
        add_field(c, kv->file_offset, 8); /* key length */
        add_field(c, type_at, 4);
        if (kv->type == Q35_GGUF_STRING) add_field(c, type_at + 4, 8);
        if (kv->type == Q35_GGUF_ARRAY) {
            add_field(c, type_at + 4, 4); /* element type */
            add_field(c, type_at + 8, 8); /* count */
            if (kv->arr_type == Q35_GGUF_STRING) add_field(c, type_at + 16, 8);
        }
        if (kv->type == Q35_GGUF_U32 || kv->type == Q35_GGUF_I32) add_field(c, type_at + 4, 4);
    }
    for (int64_t i = 0; i < g.n_tensors; i++) {
        const q35_gguf_tensor *t = &g.tensors[i];
        size_t at = t->info_offset;
        add_field(c, at, 8); /* name length */
        at += 8 + t->name.len;
        add_field(c, at, 4); /* n_dims */
        at += 4;
        for (int d = 0; d < t->n_dims; d++, at += 8)
            add_field(c, at, 8);
        add_field(c, at, 4);     /* type */
        add_field(c, at + 4, 8); /* offset */
    }
    q35_gguf_close(&g);
}

static void corpus_free(corpus *c) {
    free(c->p);
    free(c->fields);
}

static uint64_t interesting(rng *r, const corpus *c) {
    const uint64_t v[] = {0,          1,         2,          3,          4,          7,
                          8,          31,        32,         33,         255,        256,
                          4096,       0x7fff,    0xffff,     0x7fffffff, 0x80000000, 0xffffffff,
                          1ull << 32, c->n,      c->n - 1,   c->n + 1,   c->header,  1ull << 62,
                          1ull << 63, INT64_MAX, UINT64_MAX, 30,         39,         40};
    return v[below(r, sizeof v / sizeof v[0])];
}

static void put(unsigned char *p, uint64_t v, int width) {
    for (int i = 0; i < width; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Applies 1-4 random mutations; returns the mutant's length (<= c->n). */
static size_t mutate(rng *r, const corpus *c, unsigned char *m) {
    size_t n = c->n;
    memcpy(m, c->p, n);
    int k = 1 + (int)below(r, 4);
    for (int i = 0; i < k; i++) {
        switch (below(r, 8)) {
        case 0: m[below(r, c->header)] = (unsigned char)next(r); break;
        case 1: m[below(r, c->header)] ^= (unsigned char)(1u << below(r, 8)); break;
        case 2:
        case 3:
        case 4: { /* a numeric field of the original layout */
            const field *f = &c->fields[below(r, c->n_fields)];
            uint64_t v = below(r, 3) ? interesting(r, c) : next(r);
            if (below(r, 4) == 0) { /* a small nudge instead */
                v = 0;
                for (int b = 0; b < f->width; b++)
                    v |= (uint64_t)m[f->at + b] << (8 * b);
                v += below(r, 2) ? 1 : (uint64_t)-1;
            }
            put(m + f->at, v, f->width);
            break;
        }
        case 5: { /* a 4- or 8-byte value anywhere in the header */
            int w = below(r, 2) ? 4 : 8;
            size_t at = below(r, c->header - 8);
            put(m + at, interesting(r, c), w);
            break;
        }
        case 6: /* truncation */ n = below(r, n + 1); break;
        default: /* anywhere, data included */ m[below(r, c->n)] = (unsigned char)next(r); break;
        }
    }
    return n;
}

typedef struct outcome {
    int parse_fail, bind_fail, loaded;
} outcome;

static void run_one(const unsigned char *m, size_t n, outcome *o, const char *name, int iter) {
    /* an exact-size copy, so that ASan sees any read past the end */
    unsigned char *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    memcpy(buf, m, n);
    q35_gguf g;
    q35_err e = {0};
    int rc = q35_gguf_parse(&g, buf, n, name, &e);
    if (rc) {
        o->parse_fail++;
    } else {
        q35_model *model = calloc(1, sizeof *model);
        assert_non_null(model);
        rc = q35_model_bind_gguf(model, &g, &e);
        if (rc) {
            o->bind_fail++;
        } else {
            o->loaded++;
            /* a loaded mutant is a complete model */
            assert_non_null(model->layers);
            assert_non_null(model->embed.data);
            assert_non_null(model->lm_head.data);
        }
        q35_model_free(model);
        q35_gguf_close(&g);
    }
    if (rc && (e.msg[0] == 0 || rc > 0)) {
        fprintf(stderr, "%s iteration %d: error %d without a message\n", name, iter, rc);
        fail();
    }
    free(buf);
}

static void mutate_file(const char *file, int iterations, uint64_t seed) {
    corpus c;
    corpus_load(&c, file);
    unsigned char *m = malloc(c.n);
    assert_non_null(m);
    rng r = {seed};
    outcome o = {0, 0, 0};
    for (int i = 0; i < iterations; i++) {
        size_t n = mutate(&r, &c, m);
        run_one(m, n, &o, file, i);
    }
    printf("%s: %d mutants: %d rejected by the parser, %d by the loader, %d loaded\n", file,
           iterations, o.parse_fail, o.bind_fail, o.loaded);
    /* the mutations reach every stage */
    assert_true(o.parse_fail > iterations / 10);
    assert_true(o.bind_fail > 0);
    assert_true(o.loaded > 0);
    free(m);
    corpus_free(&c);
}

static void test_mutate_tiny_a_q4_0(void **state) {
    (void)state;
    mutate_file("tiny-a-Q4_0.gguf", 3000, 0x5eed0001);
}

static void test_mutate_tiny_a_bf16(void **state) {
    (void)state;
    mutate_file("tiny-a-bf16.gguf", 3000, 0x5eed0002);
}

static void test_mutate_tiny_a_q8_0(void **state) {
    (void)state;
    mutate_file("tiny-a-Q8_0.gguf", 1500, 0x5eed0003);
}

static void test_mutate_tiny_b_q4_k_m(void **state) {
    (void)state;
    mutate_file("tiny-b-Q4_K_M.gguf", 300, 0x5eed0004);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutate_tiny_a_q4_0),
        cmocka_unit_test(test_mutate_tiny_a_bf16),
        cmocka_unit_test(test_mutate_tiny_a_q8_0),
        cmocka_unit_test(test_mutate_tiny_b_q4_k_m),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
