/* test_cuda_prefill.c — the CUDA prefill kernels on random inputs
 * (src/cuda/cuda_prefill_test.h), each against a float64 reference
 * computed on the host and against the kernel it replaces:
 *
 * - the chunked DeltaNet (gdn_chunk.cu) and the recurrent one (gdn.cu) on
 *   the same conv output from a random nonzero state, at the full-size
 *   0.8B's head shapes and at tiny-a's (dv = 24: 8-column blocks), over one
 *   chunk, several, and ragged ends. Bound 2e-5 for both o and the final
 *   state against float64, and between the two: both are float32
 *   computations of the same sums (SPEC §2: the recurrent form lands
 *   within ~3e-6 of float64); again with Q35_CUDA_GDN_PREFETCH=1 (the
 *   double-buffered state pass); the conv spread over tokens
 *   (Q35_CUDA_CONV_PAR=1) gives gdn.cu's conv bit for bit, window too;
 * - the bf16 tensor-core GEMM (gemm.cu) for bf16, Q8_0 and Q4_0 weights,
 *   store and add, T from 2 (split K) to 512, N not a multiple of the
 *   tile: with hi+mid+lo activations (float32's 24 bits, float32
 *   accumulation) within 2e-5 of float64, with bf16 activations within
 *   1e-2 (2^-9 per activation), hi+lo printed only, the 128-tile kernel
 *   (Q35_CUDA_PREFILL_TILE=128) above 64 tokens within 2e-5; the forward pass's
 *   choice (cu_matmul, as Q35_CUDA_PREFILL_GEMM says) and matmul.cu's
 *   split-TF32 GEMM (=off) within 2e-5.
 *
 * Times (CUDA events, not asserted) are printed for the full-size shapes.
 * Without a CUDA device: "SKIP: no CUDA device", exit 77. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cuda/cuda_prefill_test.h"
#include "q35.h"

static void gdn_case(int T, int nk, int nv, int dk, int dv, unsigned seed, int reps) {
    q35_cuda_gdn_test r;
    char msg[200] = "";
    int rc = q35_cuda_prefill_test_gdn(T, nk, nv, dk, dv, seed, reps, &r, msg, sizeof msg);
    if (rc) fail_msg("gdn test: %s", msg);
    printf("gdn T=%-4d nk=%d nv=%-2d dk=%-3d dv=%-3d | o vs f64: chunk %.2e recur %.2e | S: chunk "
           "%.2e recur %.2e | chunk vs recur o %.2e S %.2e",
           T, nk, nv, dk, dv, r.rel_o_chunk, r.rel_o_recur, r.rel_s_chunk, r.rel_s_recur,
           r.rel_o_cr, r.rel_s_cr);
    if (reps) printf(" | %.3f ms recurrent (+conv), %.3f ms chunked", r.ms_recur, r.ms_chunk);
    printf("\n    conv over tokens: outputs %.1e, window %.1e apart", r.conv_diff,
           r.conv_state_diff);
    if (reps) printf(", recurrent (+conv) %.3f ms", r.ms_recur_parconv);
    printf("\n");
    assert_true(r.conv_diff == 0.0); /* the same sums in the same order */
    assert_true(r.conv_state_diff == 0.0);
    const double bound = 2e-5;
    assert_true(r.rel_o_chunk <= bound);
    assert_true(r.rel_s_chunk <= bound);
    assert_true(r.rel_o_cr <= bound);
    assert_true(r.rel_s_cr <= bound);
    assert_true(r.rel_o_recur <= bound);
}

/* Q35_PREFILL_QUICK=1 (the sanitizer runs): no timings, the smaller shapes. */
static bool quick(void) {
    return getenv("Q35_PREFILL_QUICK") != NULL;
}

static void test_gdn_chunk(void **st) {
    (void)st;
    if (!quick()) gdn_case(512, 16, 16, 128, 128, 1, 10); /* the 0.8B: pp512 */
    gdn_case(64, 16, 16, 128, 128, 2, quick() ? 0 : 10);  /* one chunk: a 64-token turn */
    gdn_case(200, 16, 16, 128, 128, 3, 0);                /* ragged last chunk */
    gdn_case(100, 2, 4, 16, 24, 4, 0);                    /* tiny-a's heads */
    gdn_case(2, 2, 2, 16, 16, 5, 0);                      /* tiny-chat's, two tokens */
    gdn_case(130, 2, 2, 128, 128, 6, 0);                  /* tiny-b's */
    /* the state pass with the next chunk's terms copied ahead */
    setenv("Q35_CUDA_GDN_PREFETCH", "1", 1);
    printf("Q35_CUDA_GDN_PREFETCH=1:\n");
    if (!quick()) gdn_case(512, 16, 16, 128, 128, 1, 10);
    gdn_case(200, 16, 16, 128, 128, 3, 0);
    gdn_case(100, 2, 4, 16, 24, 4, 0);
    gdn_case(130, 2, 2, 128, 128, 6, 0);
    unsetenv("Q35_CUDA_GDN_PREFETCH");
}

static double gemm_run(int fmt, int T, int N, int K, int op, int path, int reps, double *ms) {
    double rel = 0;
    char msg[200] = "";
    int rc = q35_cuda_prefill_test_gemm(fmt, T, N, K, op, path, 17u + (unsigned)(T * 31 + N), reps,
                                        reps ? NULL : &rel, ms, msg, sizeof msg);
    if (rc) fail_msg("gemm test: %s", msg);
    return rel;
}

static const char *fmt_name[3] = {"bf16", "q8_0", "q4_0"};

static void test_gemm_accuracy(void **st) {
    (void)st;
    static const int shapes[][3] = {
        {2, 96, 64}, {37, 200, 160}, {64, 1024, 1024}, {130, 72, 3584}, {512, 520, 1024}};
    for (int fmt = 0; fmt < 3; fmt++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int op = 0; op < 2; op++) {
                int T = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
                if (quick() && (T * N > 40000 || op)) continue; /* the sanitizers' run */
                double ms, split = gemm_run(fmt, T, N, K, op, 1, 0, &ms);
                double one = gemm_run(fmt, T, N, K, op, 2, 0, &ms);
                double two = gemm_run(fmt, T, N, K, op, 3, 0, &ms);
                double fwd = gemm_run(fmt, T, N, K, op, 0, 0, &ms), big = 0;
                if (T > 64) { /* the 128-tile kernel (Q35_CUDA_PREFILL_TILE=128) */
                    setenv("Q35_CUDA_PREFILL_TILE", "128", 1);
                    big = gemm_run(fmt, T, N, K, op, 1, 0, &ms);
                    unsetenv("Q35_CUDA_PREFILL_TILE");
                }
                setenv("Q35_CUDA_PREFILL_GEMM", "off", 1);
                double old = gemm_run(fmt, T, N, K, op, 0, 0, &ms);
                unsetenv("Q35_CUDA_PREFILL_GEMM");
                printf("gemm %s T=%-3d N=%-4d K=%-4d %s | vs f64: hi+mid+lo %.2e (128-tile "
                       "%.2e), hi+lo %.2e, bf16 %.2e, forward %.2e, split-TF32 %.2e\n",
                       fmt_name[fmt], T, N, K, op ? "add  " : "store", split, big, two, one, fwd,
                       old);
                assert_true(big <= 2e-5);
                assert_true(split <= 2e-5);
                assert_true(one <= 1e-2);
                assert_true(fwd <= 2e-5);
                assert_true(old <= 2e-5);
            }
}

/* The 0.8B's prefill matrices at T = 512 and 64: times only. */
static void test_gemm_speed(void **st) {
    (void)st;
    if (quick()) return;
    static const int shapes[][2] = {
        {8224, 1024}, {7168, 1024}, {1024, 3584}, {1024, 2048}, {5120, 1024}};
    static const int Ts[2] = {512, 64};
    for (int fmt = 0; fmt < 3; fmt++)
        for (int ti = 0; ti < 2; ti++) {
            double tot[4] = {0, 0, 0, 0}, tot64 = 0;
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
                int T = Ts[ti], N = shapes[i][0], K = shapes[i][1];
                double ms[4];
                setenv("Q35_CUDA_PREFILL_GEMM", "off", 1);
                gemm_run(fmt, T, N, K, 0, 0, 20, &ms[0]);
                unsetenv("Q35_CUDA_PREFILL_GEMM");
                gemm_run(fmt, T, N, K, 0, 1, 20, &ms[1]);
                gemm_run(fmt, T, N, K, 0, 3, 20, &ms[2]);
                gemm_run(fmt, T, N, K, 0, 2, 20, &ms[3]);
                double ms64 = 0;
                if (T > 64) { /* the 128-tile kernel at this T */
                    setenv("Q35_CUDA_PREFILL_TILE", "128", 1);
                    gemm_run(fmt, T, N, K, 0, 1, 20, &ms64);
                    unsetenv("Q35_CUDA_PREFILL_TILE");
                    tot64 += ms64;
                }
                double f = 2.0 * T * N * K * 1e-9;
                printf("speed %s T=%-3d [%4d x %4d] split-TF32 %.4f ms (%.0f TF/s) | bf16 "
                       "hi+mid+lo %.4f (%.0f) | hi+lo %.4f (%.0f) | bf16 %.4f (%.0f)\n",
                       fmt_name[fmt], T, N, K, ms[0], f / ms[0], ms[1], f / ms[1], ms[2], f / ms[2],
                       ms[3], f / ms[3]);
                for (int k = 0; k < 4; k++)
                    tot[k] += ms[k];
            }
            printf("speed %s T=%d all five: split-TF32 %.3f ms, hi+mid+lo %.3f ms (%.2fx; 128-tile "
                   "%.3f), hi+lo %.3f ms (%.2fx), bf16 %.3f ms (%.2fx)\n",
                   fmt_name[fmt], Ts[ti], tot[0], tot[1], tot[0] / tot[1], tot64, tot[2],
                   tot[0] / tot[2], tot[3], tot[0] / tot[3]);
        }
}

int main(void) {
    if (q35_cuda_device_count() < 1) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gdn_chunk),
        cmocka_unit_test(test_gemm_accuracy),
        cmocka_unit_test(test_gemm_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
