/* logits_test_util.h — what the forward tests of weight formats share:
 * the logits of every position of a prompt (a prefill, then the decode path
 * one token at a time), with the best kernel set or with a named one (the
 * plain C definitions, to hold a SIMD path to), and their relative
 * distance. Header-only: each test program is one file. Needs cmocka.h. */
#ifndef Q35_TEST_LOGITS_UTIL_H
#define Q35_TEST_LOGITS_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "q35.h"

/* Logits [T, vocab] of ids: a prefill of `prefill` tokens, then one token
 * at a time. Caller frees. */
static inline float *logits_of(q35_model *m, const int32_t *ids, int T, int prefill) {
    q35_model_info in;
    q35_model_get_info(m, &in);
    q35_err e = {0};
    q35_state *s = q35_state_new(m, T, &e);
    assert_non_null(s);
    float *out = malloc((size_t)T * in.vocab_size * sizeof *out);
    assert_non_null(out);
    assert_int_equal(q35_state_eval(m, s, ids, prefill, out, true, &e), Q35_OK);
    for (int t = prefill; t < T; t++)
        assert_int_equal(
            q35_state_eval(m, s, ids + t, 1, out + (size_t)t * in.vocab_size, false, &e), Q35_OK);
    q35_state_free(s);
    return out;
}

/* The same through kernel set `set` ("generic", ...): Q35_KERNELS is read
 * when a state is made, and restored after. */
static inline float *logits_with_kernels(q35_model *m, const int32_t *ids, int T, int prefill,
                                         const char *set) {
    const char *old = getenv("Q35_KERNELS");
    char *saved = old ? strdup(old) : NULL;
    setenv("Q35_KERNELS", set, 1);
    float *out = logits_of(m, ids, T, prefill);
    if (saved)
        setenv("Q35_KERNELS", saved, 1);
    else
        unsetenv("Q35_KERNELS");
    free(saved);
    return out;
}

/* max |a - ref| / max |ref|; a NaN anywhere counts as the worst. */
static inline double rel_diff(const float *a, const float *ref, size_t n) {
    double diff = 0, mag = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (isnan(d)) return INFINITY;
        if (d > diff) diff = d;
        if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
    }
    return mag > 0 ? diff / mag : diff;
}

#endif
