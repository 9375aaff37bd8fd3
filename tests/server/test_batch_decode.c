/* test_batch_decode.c — q35_state_decode_batch against one-at-a-time
 * decoding: sequences at different positions, fed through batched steps,
 * give the logits (and end in the states) that q35_state_eval of each id
 * on its own state gives; bad arguments fail with nothing changed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"
#include "kernels/microkernel.h"
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

/* One batched step at every batch size against each sequence's own step,
 * for the weights as stored (bf16) and converted to Q8_0 and Q4_0. The
 * kernels give every (row, token) product the same operations whatever the
 * token count as long as the same path runs for n tokens as for one:
 * - bf16: the AVX-512 even/odd tiles below AMX_MIN_T (8) tokens; from 8 on
 *   an AMX CPU the AMX tiles (x split into three bf16 parts, sums in tile
 *   order): close, not bit-exact;
 * - Q8_0 / Q4_0: the integer micro-kernel up to its max_t (4 / 2 tokens on
 *   AVX-512 VNNI); above it the float kernels (activations not rounded to
 *   8 bits: a different result, ~1e-1 relative on this tiny random model)
 *   and from the integer panel's min_t the panels (integer products, float
 *   sums in another order: ~1e-7).
 * Where the path is the same the test wants bit-exact logits; elsewhere
 * it reports the difference and bounds it. */
static void every_batch_size(void **st) {
    enum { MAXB = 16 };
    const q35_weight_format fmts[] = {Q35_WEIGHTS_AS_STORED, Q35_WEIGHTS_Q8_0, Q35_WEIGHTS_Q4_0};
    const char *names[] = {"bf16", "q8_0", "q4_0"};
    for (int f = 0; f < 3; f++) {
        q35_err e = {0};
        q35_load_opts o = {.n_threads = 2, .weights = fmts[f]};
        q35_model *m = f ? q35_model_load(Q35_TINY_CHAT, &o, &e) : model;
        assert_non_null(m);
        float *lb = malloc((size_t)MAXB * V * sizeof(float));
        float *ls = malloc((size_t)V * sizeof(float));
        q35_batch *b = q35_batch_new(m, MAXB, &e);
        assert_non_null(lb);
        assert_non_null(ls);
        assert_non_null(b);
        char line[512];
        int at = snprintf(line, sizeof line, "%s:", names[f]);
        for (int n = 1; n <= MAXB; n++) {
            q35_state *bs[MAXB], *ss[MAXB];
            int32_t ids[MAXB];
            for (int i = 0; i < n; i++) {
                bs[i] = q35_state_new(m, 32, &e);
                ss[i] = q35_state_new(m, 32, &e);
                assert_non_null(bs[i]);
                assert_non_null(ss[i]);
                int32_t p[8];
                int pl = 1 + (i * 3 + n) % 7;
                for (int j = 0; j < pl; j++)
                    p[j] = (int32_t)((n * 7919 + i * 104729 + j * 31) % 150000);
                assert_int_equal(q35_state_eval(m, bs[i], p, pl, NULL, false, &e), 0);
                assert_int_equal(q35_state_eval(m, ss[i], p, pl, NULL, false, &e), 0);
                ids[i] = (int32_t)((n * 131 + i * 977) % 150000);
            }
            assert_int_equal(q35_state_decode_batch(b, bs, ids, n, lb, &e), 0);
            double worst = 0;
            int exact = 1;
            for (int i = 0; i < n; i++) {
                assert_int_equal(q35_state_eval(m, ss[i], &ids[i], 1, ls, false, &e), 0);
                double r = max_rel(lb + (size_t)i * V, ls, V);
                if (r > worst) worst = r;
                if (memcmp(lb + (size_t)i * V, ls, (size_t)V * sizeof(float))) exact = 0;
                q35_state_free(bs[i]);
                q35_state_free(ss[i]);
            }
            if (at < (int)sizeof line - 16)
                at += snprintf(line + at, sizeof line - (size_t)at, exact ? " %d=" : " %d~%.1e", n,
                               worst);
            const q35_kernels *k = q35_kernels_pick(false);
            bool same_path;
            if (!f) {
                same_path = n < 8 || strcmp(k->name, "amx") != 0;
            } else {
                q35_dtype dt = fmts[f] == Q35_WEIGHTS_Q8_0 ? Q35_DT_Q8_0 : Q35_DT_Q4_0;
                const q35_i8_ukernel_desc *d = k->i8 ? &k->i8->mk[dt] : NULL;
                same_path = !d || !q35_i8_has(d) || d->max_t == 0 || n <= d->max_t;
            }
            if (same_path && !exact)
                fprintf(stderr, "%s: %d sequences not bit-exact (%.3g)\n", names[f], n, worst);
            assert_true(!same_path || exact);
            assert_true(worst < (f ? 0.5 : 1e-4));
        }
        fprintf(stderr, "batched == single (= bit-exact, ~ max relative difference) %s\n", line);
        q35_batch_free(b);
        free(lb);
        free(ls);
        if (f) q35_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(batch_equals_single),
                                       cmocka_unit_test(every_batch_size)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
