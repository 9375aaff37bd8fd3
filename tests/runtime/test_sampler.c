/* test_sampler.c — the sampler of SPEC §6 on hand-made logits: the PRNG
 * against the published xoshiro256** and splitmix64 reference outputs, the
 * defaults, the padding mask, the repetition penalty (sign rule, each id
 * once, window), greedy ties, top-k (ties with the k-th kept), top-p, draw
 * frequencies against the softmax, seed determinism, and refused settings. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/rng.h"
#include "runtime/sampler.h"

static void test_rng_reference(void **st) {
    (void)st;
    /* xoshiro256** from state {1,2,3,4} (Vigna's reference code) */
    q35_rng r = {{1, 2, 3, 4}};
    assert_true(q35_rng_next(&r) == 11520u);
    assert_true(q35_rng_next(&r) == 0u);
    assert_true(q35_rng_next(&r) == 1509978240u);
    assert_true(q35_rng_next(&r) == 1215971899390074240u);
    /* the seed goes through splitmix64 (reference outputs for 1234567) */
    q35_rng_seed(&r, 1234567);
    assert_true(r.s[0] == 6457827717110365317u);
    assert_true(r.s[1] == 3203168211198807973u);
    assert_true(r.s[2] == 9817491932198370423u);
    assert_true(r.s[3] == 4593380528125082431u);
    for (int i = 0; i < 1000; i++) {
        double u = q35_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
    }
}

static void test_defaults(void **st) {
    (void)st;
    q35_sampling s = q35_sampling_default();
    assert_true(s.temperature == 0.6f);
    assert_int_equal(s.top_k, 50);
    assert_true(s.top_p == 0.95f);
    assert_int_equal(s.max_tokens, 512);
    assert_true(s.repetition_penalty == 1.1f);
    assert_int_equal(s.repetition_window, 64);
    assert_true(s.thinking);
    assert_int_equal(s.thinking_budget, 100);
    assert_null(s.stop);
    assert_int_equal(q35_sampling_check(&s, NULL), Q35_OK);
}

static void test_bad_settings(void **st) {
    (void)st;
    q35_sampling s = q35_sampling_default();
    q35_err e;
    s.temperature = -1;
    assert_int_equal(q35_sampling_check(&s, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "temperature"));
    s = q35_sampling_default();
    s.top_p = 0;
    assert_int_equal(q35_sampling_check(&s, &e), Q35_EINVAL);
    s.top_p = 1.5f;
    assert_int_equal(q35_sampling_check(&s, &e), Q35_EINVAL);
    s = q35_sampling_default();
    s.top_p = NAN;
    assert_int_equal(q35_sampling_check(&s, &e), Q35_EINVAL);
    s = q35_sampling_default();
    s.repetition_penalty = 0;
    assert_int_equal(q35_sampling_check(&s, &e), Q35_EINVAL);
    s = q35_sampling_default();
    s.max_tokens = -1;
    assert_int_equal(q35_sampling_check(&s, &e), Q35_EINVAL);
    s = q35_sampling_default();
    s.top_k = -3;
    assert_int_equal(q35_sampling_check(&s, &e), Q35_EINVAL);
}

static q35_sampler make(float temp, int top_k, float top_p, float rep, int n_logits, int n_valid,
                        uint64_t seed) {
    q35_sampling s = q35_sampling_default();
    s.temperature = temp;
    s.top_k = top_k;
    s.top_p = top_p;
    s.repetition_penalty = rep;
    s.seed = seed;
    q35_sampler sp;
    assert_int_equal(q35_sampler_init(&sp, &s, n_logits, n_valid, NULL), Q35_OK);
    return sp;
}

static void test_greedy_and_padding(void **st) {
    (void)st;
    q35_sampler sp = make(0, 50, 1, 1, 6, 4, 0);
    float l[6] = {1, 3, 3, 2, 9, 9};                          /* ids 4, 5 are padding */
    assert_int_equal(q35_sampler_sample(&sp, l, NULL, 0), 1); /* first of the tied best */
    q35_sampler_free(&sp);
    /* sampling never draws padding either, even when it dominates */
    sp = make(1.0f, 0, 1, 1, 6, 4, 7);
    for (int i = 0; i < 2000; i++) {
        float m[6] = {0, 0, 0, 0, 50, 50};
        int32_t id = q35_sampler_sample(&sp, m, NULL, 0);
        assert_true(id >= 0 && id < 4);
    }
    q35_sampler_free(&sp);
    /* nothing finite to choose from */
    sp = make(0.7f, 50, 0.9f, 1, 3, 3, 1);
    float inf[3] = {-INFINITY, -INFINITY, NAN};
    assert_int_equal(q35_sampler_sample(&sp, inf, NULL, 0), -1);
    q35_sampler_free(&sp);
}

static void test_repetition_penalty(void **st) {
    (void)st;
    q35_sampler sp = make(0, 50, 1, 2.0f, 5, 5, 0);
    float l[5] = {2, -2, 1, 0.5f, 4};
    int32_t recent[4] = {0, 1, 0, 2}; /* id 0 twice: penalized once */
    q35_sampler_penalize(&sp, l, recent, 4);
    assert_true(l[0] == 1.0f);  /* positive: divided */
    assert_true(l[1] == -4.0f); /* negative: multiplied */
    assert_true(l[2] == 0.5f);
    assert_true(l[3] == 0.5f); /* not in the window: untouched */
    assert_true(l[4] == 4.0f);
    q35_sampler_free(&sp);

    /* only the last repetition_window ids count */
    sp = make(0, 50, 1, 2.0f, 5, 5, 0);
    int32_t many[100];
    for (int i = 0; i < 100; i++)
        many[i] = i < 36 ? 4 : 3;
    float m[5] = {0, 0, 0, 4, 4};
    q35_sampler_penalize(&sp, m, many, 100);
    assert_true(m[3] == 2.0f); /* in the last 64 */
    assert_true(m[4] == 4.0f); /* only before them */
    /* greedy sees the penalized row: 3 > 4 before, 4 wins after */
    float g[5] = {0, 0, 0, 5, 4};
    assert_int_equal(q35_sampler_sample(&sp, g, many, 100), 4);
    q35_sampler_free(&sp);
}

static void test_top_k(void **st) {
    (void)st;
    int seen[6] = {0};
    q35_sampler sp = make(5.0f, 2, 1, 1, 6, 6, 42);
    for (int i = 0; i < 3000; i++) {
        float l[6] = {1, 5, 4, 3, 2, 1};
        seen[q35_sampler_sample(&sp, l, NULL, 0)]++;
    }
    q35_sampler_free(&sp);
    assert_true(seen[1] > 0 && seen[2] > 0);
    assert_int_equal(seen[0] + seen[3] + seen[4] + seen[5], 0);

    /* ids tied with the k-th logit stay candidates */
    memset(seen, 0, sizeof seen);
    sp = make(5.0f, 2, 1, 1, 6, 6, 43);
    for (int i = 0; i < 3000; i++) {
        float l[6] = {3, 2, 1, 2, 0, 2};
        seen[q35_sampler_sample(&sp, l, NULL, 0)]++;
    }
    q35_sampler_free(&sp);
    assert_true(seen[0] && seen[1] && seen[3] && seen[5]);
    assert_int_equal(seen[2] + seen[4], 0);
}

static void test_top_p(void **st) {
    (void)st;
    /* probabilities 0.5, 0.3, 0.15, 0.05: with top_p 0.75 the first two
     * reach it, so only they are drawn */
    int seen[4] = {0};
    q35_sampler sp = make(1.0f, 0, 0.75f, 1, 4, 4, 9);
    for (int i = 0; i < 4000; i++) {
        float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
        seen[q35_sampler_sample(&sp, l, NULL, 0)]++;
    }
    q35_sampler_free(&sp);
    assert_true(seen[0] > 0 && seen[1] > 0);
    assert_int_equal(seen[2] + seen[3], 0);
    /* renormalized over the kept mass: 0.5/0.8 and 0.3/0.8 */
    assert_true(fabs(seen[0] / 4000.0 - 0.625) < 0.03);
}

/* top-p without top-k over a wide, flat distribution: the nucleus is
 * larger than the first look (256 ids), and ties order by id */
static void test_top_p_wide(void **st) {
    (void)st;
    enum { N = 3000 };
    static float l[N];
    q35_sampler sp = make(1.0f, 0, 0.5f, 1, N, N, 77);
    int lo = N, hi = 0;
    for (int i = 0; i < 600; i++) {
        for (int j = 0; j < N; j++)
            l[j] = 1.0f;
        int32_t id = q35_sampler_sample(&sp, l, NULL, 0);
        assert_true(id >= 0 && id < N / 2);
        lo = id < lo ? id : lo;
        hi = id > hi ? id : hi;
    }
    q35_sampler_free(&sp);
    assert_true(lo < 50 && hi > N / 2 - 50);
}

static void test_frequencies(void **st) {
    (void)st;
    /* T = 2 over logits {2, 0, -2}: softmax of {1, 0, -1} */
    const int N = 40000;
    int seen[3] = {0};
    q35_sampler sp = make(2.0f, 0, 1, 1, 3, 3, 123);
    for (int i = 0; i < N; i++) {
        float l[3] = {2, 0, -2};
        seen[q35_sampler_sample(&sp, l, NULL, 0)]++;
    }
    q35_sampler_free(&sp);
    double z = exp(1) + 1 + exp(-1);
    double want[3] = {exp(1) / z, 1 / z, exp(-1) / z};
    for (int i = 0; i < 3; i++)
        assert_true(fabs((double)seen[i] / N - want[i]) < 0.01);
}

static void test_seed_determinism(void **st) {
    (void)st;
    int32_t a[200], b[200], c[200];
    uint64_t seeds[3] = {5, 5, 6};
    int32_t *out[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        q35_sampler sp = make(1.0f, 50, 0.95f, 1.1f, 300, 290, seeds[k]);
        for (int i = 0; i < 200; i++) {
            float l[300];
            for (int j = 0; j < 300; j++)
                l[j] = (float)((j * 37) % 101) / 25.0f;
            out[k][i] = q35_sampler_sample(&sp, l, out[k], i);
            assert_true(out[k][i] >= 0 && out[k][i] < 290);
        }
        q35_sampler_free(&sp);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_reference),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_greedy_and_padding),
        cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_top_p_wide),
        cmocka_unit_test(test_frequencies),
        cmocka_unit_test(test_seed_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
