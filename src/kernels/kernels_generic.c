/* kernels_generic.c — the plain C definitions of every kernel op: portable,
 * short, and the yardstick every SIMD variant is tested against. Sums use a
 * few independent float32 partial sums (a fixed order, so results are
 * reproducible) rather than one long chain. */
#include <math.h>
#include <string.h>

#include "core/half.h"
#include "kernels/gdn_mm.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "kernels/mlx_affine.h"
#include "kernels/quant_block.h"
#include "kernels/repack_x16.h"

/* ------------------------------------------------------------- matmul */

static float dot_row_f32(const float *w, const float *x, int64_t n) {
    float s[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int j = 0; j < 4; j++)
            s[j] += w[k + j] * x[k + j];
    for (; k < n; k++)
        s[0] += w[k] * x[k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float dot_row_bf16(const uint16_t *w, const float *x, int64_t n) {
    float s[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int j = 0; j < 4; j++)
            s[j] += q35_bf16_to_f32(w[k + j]) * x[k + j];
    for (; k < n; k++)
        s[0] += q35_bf16_to_f32(w[k]) * x[k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float dot_row_f16(const uint16_t *w, const float *x, int64_t n) {
    float s[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int j = 0; j < 4; j++)
            s[j] += q35_f16_to_f32(w[k + j]) * x[k + j];
    for (; k < n; k++)
        s[0] += q35_f16_to_f32(w[k]) * x[k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* Quantized rows: each block is decoded once into float32 and used for up
 * to QTOK tokens, whose partial sums follow dot_row_f32's order exactly, so
 * the result is bit for bit the float32 matmul over the dequantized
 * matrix. */
#define QTOK 8
static void matmul_quant(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    int64_t cols = w->shape[1], ldx = a->ldx;
    size_t bb = q35_dtype_block_bytes(w->dtype), rb = q35_row_bytes(w->dtype, cols);
    int be = q35_dtype_block_elems(w->dtype); /* a multiple of 4: dot_row_f32's order holds */
    for (int64_t o = r0; o < r1; o++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)o * rb;
        for (int t0 = 0; t0 < a->T; t0 += QTOK) {
            int nt = a->T - t0 < QTOK ? a->T - t0 : QTOK;
            float s[QTOK][4] = {{0}}, wb[Q35_KBLOCK];
            for (int64_t kb = 0; kb < cols / be; kb++) {
                q35_block_decode(w->dtype, row + (size_t)kb * bb, wb);
                for (int t = 0; t < nt; t++) {
                    const float *xk = a->x + (int64_t)(t0 + t) * ldx + kb * be;
                    for (int i = 0; i < be; i += 4)
                        for (int j = 0; j < 4; j++)
                            s[t][j] += wb[i + j] * xk[i + j];
                }
            }
            for (int t = 0; t < nt; t++)
                y[(int64_t)(t0 + t) * ldy + o] = (s[t][0] + s[t][1]) + (s[t][2] + s[t][3]);
        }
    }
}

static void matmul_generic(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy,
                           int64_t r0, int64_t r1) {
    if (q35_dtype_is_mlx(w->dtype)) {
        q35_mlx_matmul_generic(w, a, y, ldy, r0, r1);
        return;
    }
    if (q35_dtype_is_quant(w->dtype)) {
        matmul_quant(w, a, y, ldy, r0, r1);
        return;
    }
    const float *x = a->x;
    int64_t cols = w->shape[1], ldx = a->ldx;
    int T = a->T;
    for (int64_t o = r0; o < r1; o++) {
        for (int t = 0; t < T; t++) {
            const float *xt = x + (int64_t)t * ldx;
            float v;
            switch (w->dtype) {
            case Q35_DT_BF16:
                v = dot_row_bf16((const uint16_t *)w->data + o * cols, xt, cols);
                break;
            case Q35_DT_F16: v = dot_row_f16((const uint16_t *)w->data + o * cols, xt, cols); break;
            default: v = dot_row_f32((const float *)w->data + o * cols, xt, cols); break;
            }
            y[(int64_t)t * ldy + o] = v;
        }
    }
}

static void dots_generic(const float *b, int64_t ldb, int nb, const float *a, int64_t lda, int na,
                         int n, float *y, int64_t ldy) {
    for (int t = 0; t < na; t++)
        for (int o = 0; o < nb; o++)
            y[t * ldy + o] = dot_row_f32(b + o * ldb, a + t * lda, n);
}

static void wsum_generic(const float *w, int64_t ldw, int na, const float *b, int64_t ldb, int nb,
                         int n, float *y, int64_t ldy) {
    for (int i = 0; i < na; i++) {
        float *yi = y + i * ldy;
        for (int j = 0; j < n; j++)
            yi[j] = 0;
        for (int p = 0; p < nb; p++) {
            float wp = w[i * ldw + p];
            const float *bp = b + p * ldb;
            for (int j = 0; j < n; j++)
                yi[j] += wp * bp[j];
        }
    }
}

/* ------------------------------------------------------ vector ops */

static float dot_generic(const float *a, const float *b, int n) {
    return dot_row_f32(a, b, n);
}

static void axpy_generic(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void mul_add_generic(float *y, const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        y[i] += a[i] * b[i];
}

static void scale_generic(float *x, float a, int n) {
    for (int i = 0; i < n; i++)
        x[i] *= a;
}

static void rmsnorm_generic(float *out, const float *x, const float *w, float eps, int n) {
    float ss = dot_row_f32(x, x, n);
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * inv * w[i];
}

static void silu_generic(float *out, const float *x, int n) {
    for (int i = 0; i < n; i++)
        out[i] = x[i] / (1.0f + expf(-x[i]));
}

static void silu_mul_generic(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void softmax_generic(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    float sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

/* Per token, two passes over S: S^T k on the decayed state (the decay is
 * applied to the result instead of to S), then the rank-1 update fused
 * with the output product. */
static void gdn_scan_generic(float *S, int dk, int dv, int T, const float *q, const float *k,
                             int64_t ldqk, const float *v, int64_t ldv, const float *decay,
                             const float *beta, int64_t ldg, float *o, int64_t ldo, float *u) {
    for (int t = 0; t < T; t++) {
        const float *qt = q + t * ldqk, *kt = k + t * ldqk, *vt = v + t * ldv;
        float *ot = o + t * ldo;
        float dec = decay[t * ldg], bet = beta[t * ldg];
        for (int j = 0; j < dv; j++)
            u[j] = 0;
        for (int i = 0; i < dk; i++)
            axpy_generic(u, kt[i], S + (int64_t)i * dv, dv);
        for (int j = 0; j < dv; j++)
            u[j] = bet * (vt[j] - dec * u[j]);
        for (int j = 0; j < dv; j++)
            ot[j] = 0;
        for (int i = 0; i < dk; i++) {
            float *row = S + (int64_t)i * dv;
            for (int j = 0; j < dv; j++)
                row[j] = dec * row[j] + kt[i] * u[j];
            axpy_generic(ot, qt[i], row, dv);
        }
    }
}

#define GENERIC_OPS                                                                                \
    .name = "generic", .matmul = matmul_generic, .dots = dots_generic, .wsum = wsum_generic,       \
    .dot = dot_generic, .axpy = axpy_generic, .scale = scale_generic, .mul_add = mul_add_generic,  \
    .rmsnorm = rmsnorm_generic, .silu = silu_generic, .silu_mul = silu_mul_generic,                \
    .softmax = softmax_generic, .gdn_scan = gdn_scan_generic, .gdn_mm = q35_gdn_mm_generic

static const q35_kernels generic_set = {GENERIC_OPS};
/* the same with the integer path (microkernel.h) */
static const q35_kernels generic_int8_set = {GENERIC_OPS, .i8 = &q35_i8_generic_set};

const q35_kernels *q35_kernels_generic_int8(void) {
    return &generic_int8_set;
}

const q35_kernels *q35_kernels_generic(void) {
    return &generic_set;
}

/* ------------------------------------------------ small scalar ops */

float q35_sigmoidf(float x) {
    return 1.0f / (1.0f + expf(-x));
}

float q35_softplusf(float x) {
    /* log1p(exp(x)) loses nothing in float32 once exp(-x) < 2^-24 */
    return x > 20.0f ? x : log1pf(expf(x));
}

void q35_l2norm(float *x, float eps, int n) {
    float inv = 1.0f / sqrtf(dot_row_f32(x, x, n) + eps);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

void q35_rope_neox(float *x, const float *cs, const float *sn, int r) {
    int h = r / 2;
    for (int i = 0; i < h; i++) {
        float a = x[i], b = x[i + h];
        x[i] = a * cs[i] - b * sn[i];
        x[i + h] = b * cs[i] + a * sn[i];
    }
}

void q35_rope_angles(float *cs, float *sn, int64_t pos, double theta, int r) {
    for (int i = 0; i < r / 2; i++) {
        double ang = (double)pos * pow(theta, -2.0 * i / r);
        cs[i] = (float)cos(ang);
        sn[i] = (float)sin(ang);
    }
}

void q35_sigmoid_mul(float *x, const float *g, int n) {
    for (int i = 0; i < n; i++)
        x[i] *= q35_sigmoidf(g[i]);
}

void q35_tensor_row_f32(const q35_tensor *w, int64_t row, float *out) {
    int64_t cols = w->shape[1];
    if (q35_dtype_is_mlx(w->dtype)) {
        q35_mlx_row_decode(w, row, out);
        return;
    }
    switch (w->dtype) {
    case Q35_DT_BF16: {
        const uint16_t *p = (const uint16_t *)w->data + row * cols;
        for (int64_t i = 0; i < cols; i++)
            out[i] = q35_bf16_to_f32(p[i]);
        break;
    }
    case Q35_DT_F16: {
        const uint16_t *p = (const uint16_t *)w->data + row * cols;
        for (int64_t i = 0; i < cols; i++)
            out[i] = q35_f16_to_f32(p[i]);
        break;
    }
    case Q35_DT_Q8_0:
    case Q35_DT_Q4_0:
    case Q35_DT_Q4_K:
    case Q35_DT_Q6_K:
    case Q35_DT_Q5_K: {
        size_t bb = q35_dtype_block_bytes(w->dtype);
        int be = q35_dtype_block_elems(w->dtype);
        const uint8_t *p = (const uint8_t *)w->data + (size_t)row * q35_row_bytes(w->dtype, cols);
        for (int64_t kb = 0; kb < cols / be; kb++)
            q35_block_decode(w->dtype, p + (size_t)kb * bb, out + kb * be);
        break;
    }
    case Q35_DT_Q8_0_X16:
    case Q35_DT_Q4_0_X16:
    case Q35_DT_Q6_K_X16:
    case Q35_DT_Q4_K_X16: { /* the file's blocks back, one at a time */
        uint8_t blk[210];
        const int be = q35_dtype_block_elems(w->dtype);
        for (int64_t kb = 0; kb < cols / be; kb++) {
            q35_x16_block(w, row, kb, blk);
            q35_block_decode(q35_dtype_x16_base(w->dtype), blk, out + kb * be);
        }
        break;
    }
    default: memcpy(out, (const float *)w->data + row * cols, (size_t)cols * sizeof(float)); break;
    }
}
