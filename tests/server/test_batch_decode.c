/* test_batch_decode.c — q35_state_decode_batch against one-at-a-time
 * decoding: sequences at different positions, fed through batched steps,
 * give the logits (and end in the states) that q35_state_eval of each id
 * on its own state gives; bad arguments fail with nothing changed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "q35.h"

#define NSEQ 4
#define STEPS 6

static q35_model *model;
static int V;

static int setup(void **st) {
    q35_err e = {0};
    q35_load_opts o = {.n_threads = 2};
    model = q35_model_load(Q35_TINY_CHAT, &o, &e);
    if (!model) {
        fprintf(stderr, "load: %s\n", e.msg);
        return -1;
    }
    q35_model_info info;
    q35_model_get_info(model, &info);
    V = info.vocab_size;
    return 0;
}

static int teardown(void **st) {
    q35_model_free(model);
    return 0;
}

static double max_rel(const float *a, const float *b, int n) {
    double m = 0, scale = 0;
    for (int i = 0; i < n; i++)
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    for (int i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = fabs((double)a[i] - b[i]) / (scale > 0 ? scale : 1);
        if (d > m) m = d;
    }
    return m;
}

static void batch_equals_single(void **st) {
    q35_err e = {0};
    q35_state *bs[NSEQ], *ss[NSEQ];
    int plen[NSEQ] = {3, 9, 1, 17}; /* different positions */
    float *lb = malloc((size_t)NSEQ * V * sizeof(float));
    float *ls = malloc((size_t)V * sizeof(float));
    assert_non_null(lb);
    assert_non_null(ls);
    for (int i = 0; i < NSEQ; i++) {
        bs[i] = q35_state_new(model, 64, &e);
        ss[i] = q35_state_new(model, 64, &e);
        assert_non_null(bs[i]);
        assert_non_null(ss[i]);
        int32_t ids[32];
        for (int j = 0; j < plen[i]; j++)
            ids[j] = (int32_t)((i * 7919 + j * 104729) % 150000);
        assert_int_equal(q35_state_eval(model, bs[i], ids, plen[i], NULL, false, &e), 0);
        assert_int_equal(q35_state_eval(model, ss[i], ids, plen[i], NULL, false, &e), 0);
    }
    q35_batch *b = q35_batch_new(model, NSEQ, &e);
    assert_non_null(b);
    double worst = 0;
    int exact = 1;
    for (int step = 0; step < STEPS; step++) {
        int n = step % 2 ? NSEQ : NSEQ - 1; /* the batch changes size */
        int32_t ids[NSEQ];
        for (int i = 0; i < n; i++)
            ids[i] = (int32_t)((step * 31337 + i * 271) % 150000);
        assert_int_equal(q35_state_decode_batch(b, bs, ids, n, lb, &e), 0);
        for (int i = 0; i < n; i++) {
            assert_int_equal(q35_state_eval(model, ss[i], &ids[i], 1, ls, false, &e), 0);
            assert_int_equal(q35_state_pos(bs[i]), q35_state_pos(ss[i]));
            double r = max_rel(lb + (size_t)i * V, ls, V);
            if (r > worst) worst = r;
            if (memcmp(lb + (size_t)i * V, ls, (size_t)V * sizeof(float))) exact = 0;
        }
    }
    fprintf(stderr, "batched vs single decode: max relative difference %.3g (%s)\n", worst,
            exact ? "bit-exact" : "not bit-exact");
    assert_true(worst < 1e-4);

    /* bad calls change nothing */
    int pos0 = q35_state_pos(bs[0]);
    int32_t bad[2] = {1, -5};
    assert_int_not_equal(q35_state_decode_batch(b, bs, bad, 2, lb, &e), 0);
    q35_state *dup[2] = {bs[0], bs[0]};
    int32_t ok[2] = {1, 2};
    assert_int_not_equal(q35_state_decode_batch(b, dup, ok, 2, lb, &e), 0);
    assert_int_not_equal(q35_state_decode_batch(b, bs, ok, NSEQ + 1, lb, &e), 0);
    assert_int_not_equal(q35_state_decode_batch(b, bs, ok, 0, lb, &e), 0);
    assert_int_equal(q35_state_pos(bs[0]), pos0);

    q35_batch_free(b);
    for (int i = 0; i < NSEQ; i++) {
        q35_state_free(bs[i]);
        q35_state_free(ss[i]);
    }
    free(lb);
    free(ls);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(batch_equals_single)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
