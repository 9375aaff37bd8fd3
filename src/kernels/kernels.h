/* kernels.h — the numeric operations the forward pass is made of, behind a
 * table of function pointers so that the plain C definitions
 * (kernels_generic.c, which define what each op computes) and the SIMD
 * variants (kernels_avx2.c, kernels_avx512.c, ...) are interchangeable and
 * testable against each other. No graph, no tensors with strides: direct
 * calls on float32 rows, with weights as q35_tensor.
 *
 * Every op accumulates in float32 (or better). Variants may differ from the
 * plain C definition only by float32 rounding (summation order, a
 * polynomial exp within a few ulp).
 *
 * Weight matrices are described by model/tensor.h, a plain data header (no
 * code) that the loader fills and the kernels read. */
#ifndef Q35_KERNELS_KERNELS_H
#define Q35_KERNELS_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "model/tensor.h"

/* Token rows as the input of matmuls: T rows of `cols` floats, and where
 * the kernel set wants it, the same rows reformatted once (e.g. into bf16
 * tiles for AMX) and reused by every matrix that multiplies them. Made by
 * q35_acts_prepare. */
typedef struct q35_acts {
    const float *x; /* [T, cols], row stride ldx */
    int64_t ldx, cols;
    int T;
    const void *packed; /* the set's own form of x, or NULL */
    /* x as q8 rows (microkernel.h), stride ldq8 bytes, for the integer
     * path; NULL when the set has none (or cols % 32 != 0). */
    const uint8_t *q8;
    size_t ldq8;
} q35_acts;

typedef struct q35_kernels {
    const char *name; /* "generic", "avx2", "avx512", "amx" */

    /* The integer path (microkernel.h), or NULL: the exact float path, the
     * reference mode. With it, q35_acts_prepare also quantizes x to q8 rows
     * and q35_matmul sends every matrix whose dtype has a micro-kernel in
     * i8 through it (activations rounded to 8 bits per 32-element block,
     * integer dot products); other dtypes, and dots/wsum, stay float. */
    const struct q35_i8_kernels *i8;

    /* Bytes of the packed form of T rows of `cols` floats; 0 (or a NULL
     * pack_bytes) when the set reads x as is. */
    size_t (*pack_bytes)(int T, int64_t cols);
    void (*pack)(const float *x, int64_t ldx, int T, int64_t cols, void *out);

    /* Matrix times token rows: for rows o in [r0, r1) of w ([rows, cols],
     * f32/f16/bf16/q8_0/q4_0/q4_K/q6_K, row-major) and tokens t in [0, T):
     *     y[t*ldy + o] = sum_k w[o, k] * a->x[t*ldx + k]      (k < cols)
     * Threads split the rows (see q35_matmul); one call must give each y
     * element the same value whatever [r0, r1) it sits in.
     * A quantized weight is the float32 product d * q (model/tensor.h) and
     * x stays float32 (no activation quantization): the result is the
     * matmul over the dequantized matrix, only the summation order may
     * differ. (The sets here compute d * q in registers and keep their
     * float32 FMA order, so each gives exactly its float32 result.) */
    void (*matmul)(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                   int64_t r1);
    /* The token count from which matmul, for weights of dtype dt, reads
     * only a->q8 (never a->packed); 0, or a NULL hook: it may read packed
     * at any T (q35_matmul_reads_packed). */
    int (*q8_only_from)(q35_dtype dt);

    /* Dot products of float32 rows (attention scores): for o < nb, t < na
     *     y[t*ldy + o] = sum_k b[o*ldb + k] * a[t*lda + k]      (k < n) */
    void (*dots)(const float *b, int64_t ldb, int nb, const float *a, int64_t lda, int na, int n,
                 float *y, int64_t ldy);
    /* Weighted sums of float32 rows (attention values): for i < na
     *     y[i*ldy + j] = sum_p w[i*ldw + p] * b[p*ldb + j]      (j < n) */
    void (*wsum)(const float *w, int64_t ldw, int na, const float *b, int64_t ldb, int nb, int n,
                 float *y, int64_t ldy);

    float (*dot)(const float *a, const float *b, int n);
    /* y += a * x */
    void (*axpy)(float *y, float a, const float *x, int n);
    /* x *= a */
    void (*scale)(float *x, float a, int n);
    /* y += a * b, elementwise */
    void (*mul_add)(float *y, const float *a, const float *b, int n);
    /* out = x / sqrt(mean(x^2) + eps) * w  (w: the weight as the math uses
     * it, e.g. 1+w for zero-centred norms); out may alias x. */
    void (*rmsnorm)(float *out, const float *x, const float *w, float eps, int n);
    /* out = silu(x) = x * sigmoid(x); out may alias x. */
    void (*silu)(float *out, const float *x, int n);
    /* out = silu(gate) * up; out may alias either input. */
    void (*silu_mul)(float *out, const float *gate, const float *up, int n);
    /* x = exp(x - max) / sum, in place. */
    void (*softmax)(float *x, int n);

    /* The Gated DeltaNet recurrence of one value head over T tokens, S
     * [dk, dv] row-major; for each token t:
     *     S = decay_t S;  u = beta_t (v_t - S^T k_t);  S += k_t u^T;
     *     o_t = S^T q_t
     * q_t, k_t start at q + t*ldqk, k + t*ldqk; v_t at v + t*ldv; o_t at
     * o + t*ldo; decay_t, beta_t at decay[t*ldg], beta[t*ldg]. `work` is
     * scratch of dv floats. T = 1 is the decode step. */
    void (*gdn_scan)(float *S, int dk, int dv, int T, const float *q, const float *k, int64_t ldqk,
                     const float *v, int64_t ldv, const float *decay, const float *beta,
                     int64_t ldg, float *o, int64_t ldo, float *work);
    /* The chunked DeltaNet form's product (forward/gdn_chunk.c; each set's
     * in gdn_mm.h, the plain C definition gdn_mm_generic.c): for i < m,
     * j < n
     *     y[i*ldy + j] = keep * y[i*ldy + j] + sum_p x[i*ldx + p] * b[p*ldb + j]
     * over p < kd, y not read where keep == 0. */
    void (*gdn_mm)(int m, int n, int kd, const float *x, int64_t ldx, const float *b, int64_t ldb,
                   float *y, int64_t ldy, float keep);
} q35_kernels;

/* The plain C definitions. Always available. */
const q35_kernels *q35_kernels_generic(void);
/* The SIMD variants, or NULL where this CPU or this build lacks them. */
const q35_kernels *q35_kernels_avx2(void);
const q35_kernels *q35_kernels_avx512(void);
/* AVX-512 plus AMX-BF16 tiles for matmuls over many tokens (prefill). */
const q35_kernels *q35_kernels_amx(void);
/* The best of the AArch64 sets "neon" (Armv8.0), "neon-dotprod" (+ sdot)
 * and "neon-i8mm" (+ smmla) this CPU runs, or the one Q35_KERNELS names
 * (kernels_neon.h has each by level). */
const q35_kernels *q35_kernels_neon(void);
/* The sets above are the exact float path (i8 = NULL). The same set with
 * its integer path on (same name, same float ops, i8 set), or k itself
 * where that set has none. */
const q35_kernels *q35_kernels_int8(const q35_kernels *k);
/* The fastest set this CPU runs, with its integer path (on an AVX2 CPU
 * with AVX-VNNI and without AVX-512, the avx2 set with AVX-VNNI integer
 * micro-kernels). Environment variable Q35_KERNELS=generic|avx2|avxvnni|
 * avx512|amx|neon|neon-dotprod|neon-i8mm forces one (when available), for
 * testing and comparison: avx2 is plain AVX2 throughout (no VNNI, what Zen
 * 3 runs), avxvnni the avx2 set with AVX-VNNI integers;
 * Q35_EXACT=1 keeps the exact float path (the reference mode: weights times
 * float32 activations, see matmul above). */
const q35_kernels *q35_kernels_best(void);
/* The same with the mode given: exact = true is the float path whatever
 * Q35_EXACT says, false the integer path unless Q35_EXACT is set. */
const q35_kernels *q35_kernels_pick(bool exact);

/* Bytes of scratch q35_acts_prepare needs for T rows of `cols`. */
size_t q35_acts_bytes(const q35_kernels *k, int T, int64_t cols);
/* Wraps x ([T, cols], stride ldx) as a matmul input, packing it into `buf`
 * (q35_acts_bytes long, 64-byte aligned) when the set wants that. The
 * result points into x and buf: both must outlive its use. */
q35_acts q35_acts_prepare(const q35_kernels *k, const float *x, int64_t ldx, int T, int64_t cols,
                          void *buf);
/* Whether q35_matmul of a weight of dtype dt ([rows, cols]) on T prepared
 * rows can read the set's packed form (false where the integer path or
 * the set's q8_only_from takes it). */
bool q35_matmul_reads_packed(const q35_kernels *k, q35_dtype dt, int T, int64_t cols);
/* Bit dt set in the mask for each weight dtype a matrix of some input may
 * have (1u << Q35_DT_F32 | ...). */
typedef uint32_t q35_dtype_mask;
/* q35_acts_prepare for inputs that only matrices of the dtypes in `dtypes`
 * multiply: the packed form is made only when one of them would read it
 * (q35_matmul_reads_packed), so that the integer path does not pay for
 * (or, with q35_acts_bytes_for, hold) a form it never reads. */
size_t q35_acts_bytes_for(const q35_kernels *k, int T, int64_t cols, q35_dtype_mask dtypes);
q35_acts q35_acts_prepare_for(const q35_kernels *k, const float *x, int64_t ldx, int T,
                              int64_t cols, void *buf, q35_dtype_mask dtypes);

/* y = w x over all rows of w, rows split over the pool's threads in chunks
 * whose size depends on the shape only (never on the thread count). pool may
 * be NULL. */
void q35_matmul(const q35_kernels *k, q35_threadpool *pool, const q35_tensor *w, const q35_acts *a,
                float *y, int64_t ldy);

/* Row `row` of a [rows, cols] matrix of any dtype (an embedding lookup) as
 * float32; quantized rows decode to the exact d * q values. */
void q35_tensor_row_f32(const q35_tensor *w, int64_t row, float *out);

/* ---- small scalar and per-head ops (plain C; cheap next to the above) */

float q35_sigmoidf(float x);
/* log(1 + exp(x)), without overflow for large x. */
float q35_softplusf(float x);
/* x /= sqrt(sum(x^2) + eps) */
void q35_l2norm(float *x, float eps, int n);
/* NeoX rotary embedding on the first r dims of x (r even): dim i pairs with
 * dim i + r/2, rotated by the angle whose cos/sin are cs[i], sn[i] (i < r/2);
 * dims r.. pass through. */
void q35_rope_neox(float *x, const float *cs, const float *sn, int r);
/* cs[i], sn[i] = cos, sin(pos * theta^(-2i/r)) for i < r/2, in double. */
void q35_rope_angles(float *cs, float *sn, int64_t pos, double theta, int r);
/* x = x * sigmoid(g) */
void q35_sigmoid_mul(float *x, const float *g, int n);

#endif
