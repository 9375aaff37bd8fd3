/* test_gdn_chunk.c — the chunked DeltaNet form (forward/gdn_chunk.c)
 * against the delta-rule recurrence of SPEC §2 computed in float64 here,
 * on random inputs shaped as the forward pass makes them (q, k unit
 * vectors per head, q scaled by 1/sqrt(dk), beta in (0, 1), log decay
 * g <= 0), under every kernel set this CPU runs:
 *  - outputs o_t and the final state S agree with float64 to within a few
 *    float32 roundings of the values' scale (the recurrent float32 form,
 *    the kernels' gdn_scan, is held to the same bound beside it);
 *  - run lengths below, at and above a chunk (1, 7, 32, 33, 70, 128) and
 *    head sizes that are not multiples of a vector (tails);
 *  - mild decays (g near 0, long memory) and strong ones (g down to -8 a
 *    token, where a chunk's total decay leaves float32's range and the
 *    per-element path is taken), down to -30 a token (the chunk's decay
 *    underflows to 0 and the state update keeps nothing of S0), and a
 *    state that starts non-zero;
 *  - a run split at snapshot points inside a chunk the way gdn.c splits it
 *    (pieces of Q35_GDN_CHUNK_MIN tokens or more chunked, shorter ones
 *    token by token): the state at each point and the outputs agree with
 *    float64 at that point. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward/forward.h"

typedef struct rng {
    uint64_t s;
} rng;

static double uniform(rng *r) { /* [0, 1) */
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(r->s >> 11) / 9007199254740992.0;
}

static double normal(rng *r) {
    double u = uniform(r) + 1e-12, v = uniform(r);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* One head's inputs: q, k rows with stride ld (q | k | v as in qkv), g,
 * beta with stride 1. */
typedef struct inputs {
    int T, dk, dv;
    int64_t ld;
    float *qkv, *g, *beta, *S0;
} inputs;

static void unit_row(rng *r, float *x, int n, double scale) {
    double ss = 0, tmp[512];
    for (int i = 0; i < n; i++) {
        tmp[i] = normal(r);
        ss += tmp[i] * tmp[i];
    }
    for (int i = 0; i < n; i++)
        x[i] = (float)(tmp[i] / sqrt(ss + 1e-6) * scale);
}

static inputs make(uint64_t seed, int T, int dk, int dv, double gmin, bool warm_state) {
    rng r = {seed};
    inputs in = {T, dk, dv, 2 * dk + dv, NULL, NULL, NULL, NULL};
    in.qkv = malloc(sizeof(float) * (size_t)T * (size_t)in.ld);
    in.g = malloc(sizeof(float) * (size_t)T);
    in.beta = malloc(sizeof(float) * (size_t)T);
    in.S0 = calloc((size_t)dk * dv, sizeof(float));
    for (int t = 0; t < T; t++) {
        float *row = in.qkv + (int64_t)t * in.ld;
        unit_row(&r, row, dk, 1.0 / sqrt((double)dk));
        unit_row(&r, row + dk, dk, 1.0);
        for (int j = 0; j < dv; j++)
            row[2 * dk + j] = (float)normal(&r);
        in.g[t] = (float)(gmin * uniform(&r));
        in.beta[t] = (float)(1.0 / (1.0 + exp(-2 * normal(&r))));
    }
    if (warm_state)
        for (int i = 0; i < dk * dv; i++)
            in.S0[i] = (float)(0.3 * normal(&r));
    return in;
}

static void drop(inputs *in) {
    free(in->qkv);
    free(in->g);
    free(in->beta);
    free(in->S0);
}

/* SPEC §2 per token: S = exp(g) S;  u = beta (v - S^T k);  S += k u^T;  o = S^T q */
static void reference(const inputs *in, double *S, double *o) {
    int dk = in->dk, dv = in->dv;
    for (int i = 0; i < dk * dv; i++)
        S[i] = in->S0[i];
    double *u = malloc(sizeof(double) * (size_t)dv);
    for (int t = 0; t < in->T; t++) {
        const float *q = in->qkv + (int64_t)t * in->ld, *k = q + dk, *v = q + 2 * dk;
        double dec = exp((double)in->g[t]);
        for (int i = 0; i < dk * dv; i++)
            S[i] *= dec;
        for (int j = 0; j < dv; j++) {
            double sk = 0;
            for (int i = 0; i < dk; i++)
                sk += S[i * dv + j] * k[i];
            u[j] = in->beta[t] * (v[j] - sk);
        }
        for (int i = 0; i < dk; i++)
            for (int j = 0; j < dv; j++)
                S[i * dv + j] += k[i] * u[j];
        for (int j = 0; j < dv; j++) {
            double acc = 0;
            for (int i = 0; i < dk; i++)
                acc += S[i * dv + j] * q[i];
            o[(int64_t)t * dv + j] = acc;
        }
    }
    free(u);
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > num) num = d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return num / den;
}

/* The recurrent float32 form lands within ~3e-6 of float64 (SPEC §2); the
 * chunked form's products and its triangular inverse add a few roundings
 * more (measured: at most 9e-7 here). 5e-6 of the values' scale is about 40 float32 ulps: a wrong
 * decay, sign or missing term is off by orders of magnitude more. */
#define TOL 5e-6

static void check_case(const q35_kernels *k, uint64_t seed, int T, int dk, int dv, double gmin,
                       bool warm) {
    inputs in = make(seed, T, dk, dv, gmin, warm);
    size_t nS = (size_t)dk * dv, nO = (size_t)T * dv;
    double *S64 = malloc(sizeof(double) * nS), *o64 = malloc(sizeof(double) * nO);
    reference(&in, S64, o64);
    float *S = malloc(sizeof(float) * nS), *o = malloc(sizeof(float) * nO);
    float *work = malloc(sizeof(float) * q35_gdn_chunk_work(dk, dv));
    float *dec = malloc(sizeof(float) * (size_t)T), *u = malloc(sizeof(float) * (size_t)dv);

    memcpy(S, in.S0, sizeof(float) * nS);
    q35_gdn_chunked(k, S, dk, dv, T, in.qkv, in.qkv + dk, in.ld, in.qkv + 2 * dk, in.ld, in.g,
                    in.beta, 1, o, dv, work);
    double eo = rel_err(o, o64, nO), es = rel_err(S, S64, nS);
    if (eo > TOL || es > TOL || !isfinite(eo) || !isfinite(es))
        fail_msg("%s chunked T=%d dk=%d dv=%d gmin=%g: o err %.3g, S err %.3g", k->name, T, dk, dv,
                 gmin, eo, es);

    for (int t = 0; t < T; t++)
        dec[t] = expf(in.g[t]);
    memcpy(S, in.S0, sizeof(float) * nS);
    k->gdn_scan(S, dk, dv, T, in.qkv, in.qkv + dk, in.ld, in.qkv + 2 * dk, in.ld, dec, in.beta, 1,
                o, dv, u);
    double ro = rel_err(o, o64, nO), rs = rel_err(S, S64, nS);
    if (ro > TOL || rs > TOL)
        fail_msg("%s recurrent T=%d: o err %.3g, S err %.3g", k->name, T, ro, rs);

    free(S64);
    free(o64);
    free(S);
    free(o);
    free(work);
    free(dec);
    free(u);
    drop(&in);
}

/* The run cut after each token of cuts[] (ascending, inside (0, T)), each
 * piece by the rule of gdn.c's gdn_heads; S checked at every cut. */
static void check_split(const q35_kernels *k, uint64_t seed, int T, const int *cuts, int n_cuts,
                        bool warm) {
    int dk = 128, dv = 128;
    inputs in = make(seed, T, dk, dv, -0.5, warm);
    size_t nS = (size_t)dk * dv, nO = (size_t)T * dv;
    double *S64 = malloc(sizeof(double) * nS), *o64 = malloc(sizeof(double) * nO);
    float *S = malloc(sizeof(float) * nS), *o = malloc(sizeof(float) * nO);
    float *work = malloc(sizeof(float) * q35_gdn_chunk_work(dk, dv));
    float *dec = malloc(sizeof(float) * (size_t)T), *u = malloc(sizeof(float) * (size_t)dv);
    for (int t = 0; t < T; t++)
        dec[t] = expf(in.g[t]);
    memcpy(S, in.S0, sizeof(float) * nS);
    int t0 = 0;
    for (int i = 0; i <= n_cuts; i++) {
        int t1 = i < n_cuts ? cuts[i] : T;
        const float *row = in.qkv + (int64_t)t0 * in.ld;
        if (t1 - t0 >= Q35_GDN_CHUNK_MIN)
            q35_gdn_chunked(k, S, dk, dv, t1 - t0, row, row + dk, in.ld, row + 2 * dk, in.ld,
                            in.g + t0, in.beta + t0, 1, o + (int64_t)t0 * dv, dv, work);
        else
            k->gdn_scan(S, dk, dv, t1 - t0, row, row + dk, in.ld, row + 2 * dk, in.ld, dec + t0,
                        in.beta + t0, 1, o + (int64_t)t0 * dv, dv, u);
        inputs prefix = in;
        prefix.T = t1;
        reference(&prefix, S64, o64);
        double es = rel_err(S, S64, nS);
        if (!(es <= TOL)) fail_msg("%s split T=%d: S after %d err %.3g", k->name, T, t1, es);
        t0 = t1;
    }
    double eo = rel_err(o, o64, nO);
    if (!(eo <= TOL)) fail_msg("%s split T=%d: o err %.3g", k->name, T, eo);
    free(S64);
    free(o64);
    free(S);
    free(o);
    free(work);
    free(dec);
    free(u);
    drop(&in);
}

static void splits(const q35_kernels *k) {
    const int a[] = {5, 21}, b[] = {Q35_GDN_CHUNK + 3, 2 * Q35_GDN_CHUNK + 1},
              c[] = {Q35_GDN_CHUNK_MIN, 40, 41};
    check_split(k, 41, 40, a, 2, true);
    check_split(k, 42, 3 * Q35_GDN_CHUNK + 5, b, 2, false);
    check_split(k, 43, 70, c, 3, true);
}

static void each_set(void (*fn)(const q35_kernels *k)) {
    const q35_kernels *sets[] = {q35_kernels_generic(), q35_kernels_avx2(), q35_kernels_avx512(),
                                 q35_kernels_amx(), q35_kernels_neon()};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (sets[i]) fn(sets[i]);
}

static void lengths(const q35_kernels *k) {
    const int Ts[] = {1, 7, Q35_GDN_CHUNK, Q35_GDN_CHUNK + 1, 70, 128};
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++)
        check_case(k, 11 + i, Ts[i], 128, 128, -0.5, i % 2 == 1);
}

static void tails(const q35_kernels *k) {
    check_case(k, 21, 45, 24, 40, -0.3, true);
    check_case(k, 22, 33, 128, 72, -1.0, false);
    check_case(k, 23, 20, 16, 130, -0.1, true);
}

static void decays(const q35_kernels *k) {
    check_case(k, 31, 64, 128, 128, -0.001, true); /* long memory: S grows over the run */
    check_case(k, 32, 64, 128, 128, -8.0, true);   /* a chunk decays past exp(-60) */
    check_case(k, 33, 96, 64, 64, -3.0, false);
    check_case(k, 34, 50, 128, 128, -30.0, true); /* exp(G) underflows within a chunk */
}

static void test_lengths(void **st) {
    (void)st;
    each_set(lengths);
}

static void test_tails(void **st) {
    (void)st;
    each_set(tails);
}

static void test_decays(void **st) {
    (void)st;
    each_set(decays);
}

static void test_splits(void **st) {
    (void)st;
    each_set(splits);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_tails),
        cmocka_unit_test(test_decays),
        cmocka_unit_test(test_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
