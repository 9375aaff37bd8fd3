/* int8_generic.c — the plain C definitions of the integer matmul path
 * (microkernel.h): quantizing token rows to q8 rows, and the dot product of
 * a weight row of each format with a q8 row, integer part then float part,
 * in block order. The generic set's micro-kernels are these definitions
 * applied per (row, token); every SIMD set is tested against them.
 *
 * Q5_K (176-byte super-blocks of 256, model/tensor.h): block b = 8k + j of
 * the q8 row meets sub-block j of super-block k. With n_l = ((qs[32(j/2)
 * + l] >> 4(j&1)) & 15) + 16 * ((qh[l] >> j) & 1) (qs at byte 48, qh at
 * byte 16; n in 0..31), sc_j, m_j the 6-bit fields of the 12 scale bytes
 * at byte 4 (Q4_K's packing), d, dmin the f16 at bytes 0, 2:
 *     I_b = sum_{l<32} n_l * a_l                           (int32, exact)
 *     S_b = s_2b + s_2b+1                                  (sum of a, int32)
 *     term_b = (d * sc_j * d_b) * I_b - (dmin * m_j * d_b) * S_b
 * each product in float32 left to right, I_b and S_b converted to float.
 *
 * MLX affine (b = 2, 3, 4, 5, 6 or 8 bits, group gs = 32, 64 or 128):
 * block b's 32 codes are the 4b bytes at 4b * b of the row's bit stream
 * (element l in bits [l*b, (l+1)*b), low bits first); q_l in 0..2^b - 1
 * unsigned. Group g = 32 b / gs holds the block (gs >= 32: a block never
 * straddles two groups); s_g, z_g its scale and bias as float32 (f16 /
 * bf16 widened exactly, f32 as stored):
 *     I_b = sum_{l<32} q_l * a_l       (|I_b| <= 32 * 255 * 127: int32)
 *     S_b = s_2b + s_2b+1
 *     term_b = (s_g * d_b) * I_b + (z_g * d_b) * S_b
 * So s_g * q + z_g, the weight's value, meets d_b * a, the activation's,
 * with no error of its own beyond float32 rounding: the bias is the
 * group's, exactly, times the exact integer sum of the block's a.
 * y = sum of term_b in block order, in float32, for every format. */
#include <math.h>
#include <string.h>

#include "core/half.h"
#include "kernels/microkernel.h"
#include "kernels/mlx_affine.h"
#include "kernels/quant_block.h"

void q35_q8_quantize_ref(const float *x, int64_t ldx, int T, int64_t cols, uint8_t *out) {
    size_t st = q35_q8_row_stride(cols);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (int64_t)t * ldx;
        uint8_t *row = out + (size_t)t * st;
        int8_t *q = (int8_t *)row;
        for (int64_t b = 0; b < cols / Q35_Q8_BLOCK; b++) {
            const float *xb = xt + b * Q35_Q8_BLOCK;
            float amax = 0;
            for (int j = 0; j < Q35_Q8_BLOCK; j++)
                amax = fabsf(xb[j]) > amax ? fabsf(xb[j]) : amax;
            float id = amax > 0 ? 127.0f / amax : 0.0f;
            float d = amax / 127.0f;
            memcpy(row + cols + 4 * b, &d, 4);
            int16_t s[2] = {0, 0};
            for (int j = 0; j < Q35_Q8_BLOCK; j++) {
                float v = xb[j] * id;
                v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
                int8_t qj = (int8_t)(v == v ? nearbyintf(v) : 0.0f);
                q[b * Q35_Q8_BLOCK + j] = qj;
                s[j / 16] = (int16_t)(s[j / 16] + qj);
            }
            memcpy(row + cols + cols / 8 + 4 * b, s, 4);
        }
    }
}

/* Block b's scale and sums of a q8 row, read through memcpy (the row is
 * aligned, but this keeps the definition free of alignment assumptions). */
static float q8_d(const uint8_t *x, int64_t cols, int64_t b) {
    float d;
    memcpy(&d, x + cols + 4 * b, 4);
    return d;
}

static int32_t q8_s(const uint8_t *x, int64_t cols, int64_t i) {
    int16_t s;
    memcpy(&s, x + cols + cols / 8 + 2 * i, 2);
    return s;
}

float q35_i8_dot_ref(q35_dtype dt, const uint8_t *w, const uint8_t *x, int64_t cols) {
    const int8_t *a = (const int8_t *)x;
    float y = 0;
    int64_t nb = cols / Q35_Q8_BLOCK;
    if (dt == Q35_DT_Q8_0 || dt == Q35_DT_Q4_0) {
        size_t bb = q35_dtype_block_bytes(dt);
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = w + (size_t)b * bb;
            const int8_t *ab = a + b * Q35_Q8_BLOCK;
            int32_t I = 0;
            for (int j = 0; j < Q35_Q8_BLOCK; j++) {
                int qj = dt == Q35_DT_Q8_0
                             ? (int8_t)blk[2 + j]
                             : (j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4)) - 8;
                I += qj * ab[j];
            }
            float dw = q35_f16_to_f32(q35_qblock_d16(blk));
            y += (dw * q8_d(x, cols, b)) * (float)I;
        }
        return y;
    }
    /* k-quants: super-block k holds blocks 8k .. 8k+7 */
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *sb = w + (size_t)(b / 8) * q35_dtype_block_bytes(dt);
        const int8_t *ab = a + b * Q35_Q8_BLOCK;
        int j = (int)(b % 8); /* the block within its super-block */
        float db = q8_d(x, cols, b);
        if (dt == Q35_DT_Q4_K || dt == Q35_DT_Q5_K) {
            const bool fifth = dt == Q35_DT_Q5_K;
            const uint8_t *q = sb + (fifth ? 48 : 16) + 32 * (j / 2), *qh = sb + 16;
            int sh = 4 * (j & 1), sc, mn;
            int32_t I = 0;
            for (int l = 0; l < 32; l++)
                I += (((q[l] >> sh) & 15) + (fifth ? 16 * ((qh[l] >> j) & 1) : 0)) * ab[l];
            q35_k4_scale_min(sb + 4, j, &sc, &mn);
            float d = q35_f16_to_f32(q35_qblock_d16(sb)),
                  dmin = q35_f16_to_f32(q35_qblock_d16(sb + 2));
            int32_t S = q8_s(x, cols, 2 * b) + q8_s(x, cols, 2 * b + 1);
            y += (d * (float)sc * db) * (float)I - (dmin * (float)mn * db) * (float)S;
        } else { /* Q6_K: block j is elements 32j .. 32j+31 of the super-block */
            int h = j / 4, k = j % 4;
            const uint8_t *ql = sb + 64 * h, *qh = sb + 128 + 32 * h;
            int32_t half[2] = {0, 0};
            for (int l = 0; l < 32; l++) {
                int lo = (ql[l + 32 * (k & 1)] >> (4 * (k >> 1))) & 15;
                int qv = (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
                half[l / 16] += qv * ab[l];
            }
            int32_t I = (int8_t)sb[192 + 2 * j] * half[0] + (int8_t)sb[192 + 2 * j + 1] * half[1];
            float d = q35_f16_to_f32(q35_qblock_d16(sb + 208));
            y += (d * db) * (float)I;
        }
    }
    return y;
}

float q35_i8_dot_ref_mlx(q35_dtype dt, const q35_i8_wview *v, const uint8_t *x, int64_t cols) {
    const int8_t *a = (const int8_t *)x;
    const int bits = q35_dtype_mlx_bits(dt);
    float y = 0;
    for (int64_t b = 0; b < cols / Q35_Q8_BLOCK; b++) {
        const uint8_t *p = v->q + (size_t)b * (size_t)(4 * bits);
        const int8_t *ab = a + b * Q35_Q8_BLOCK;
        int32_t I = 0;
        for (int u = 0; u < 4; u++) { /* 8 codes in `bits` bytes */
            uint32_t c[8];
            q35_mlx_unit_codes(p + u * bits, bits, c);
            for (int i = 0; i < 8; i++)
                I += (int32_t)c[i] * ab[8 * u + i];
        }
        size_t g = (size_t)(b * Q35_Q8_BLOCK / v->group);
        float sg = q35_mlx_aux_f32(v->s, v->aux, g), zg = q35_mlx_aux_f32(v->z, v->aux, g);
        float db = q8_d(x, cols, b);
        int32_t S = q8_s(x, cols, 2 * b) + q8_s(x, cols, 2 * b + 1);
        y += (sg * db) * (float)I + (zg * db) * (float)S;
    }
    return y;
}

static void ukernel_generic(q35_dtype dt, const uint8_t *w, size_t ldw, int R, const uint8_t *x,
                            size_t ldx, int C, int64_t cols, float *y, int64_t ldy) {
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++)
            y[c * ldy + r] = q35_i8_dot_ref(dt, w + (size_t)r * ldw, x + (size_t)c * ldx, cols);
}

#define GENERIC_UKERNEL(name, dt)                                                                  \
    static void name(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,     \
                     int64_t cols, float *y, int64_t ldy) {                                        \
        ukernel_generic(dt, w, ldw, R, x, ldx, C, cols, y, ldy);                                   \
    }
GENERIC_UKERNEL(uk_q8_0, Q35_DT_Q8_0)
GENERIC_UKERNEL(uk_q4_0, Q35_DT_Q4_0)
GENERIC_UKERNEL(uk_q4_K, Q35_DT_Q4_K)
GENERIC_UKERNEL(uk_q6_K, Q35_DT_Q6_K)
GENERIC_UKERNEL(uk_q5_K, Q35_DT_Q5_K)

static void ukernel_generic_mlx(q35_dtype dt, const q35_i8_wview *v, int R, const uint8_t *x,
                                size_t ldx, int C, int64_t cols, float *y, int64_t ldy) {
    for (int r = 0; r < R; r++) {
        q35_i8_wview vr = *v;
        vr.q += (size_t)r * v->ldq;
        vr.s += (size_t)r * v->lds;
        vr.z += (size_t)r * v->lds;
        for (int c = 0; c < C; c++)
            y[c * ldy + r] = q35_i8_dot_ref_mlx(dt, &vr, x + (size_t)c * ldx, cols);
    }
}

#define GENERIC_UKERNEL_MLX(name, dt)                                                              \
    static void name(const q35_i8_wview *v, int R, const uint8_t *x, size_t ldx, int C,            \
                     int64_t cols, float *y, int64_t ldy) {                                        \
        ukernel_generic_mlx(dt, v, R, x, ldx, C, cols, y, ldy);                                    \
    }
GENERIC_UKERNEL_MLX(uk_mlx2, Q35_DT_MLX2)
GENERIC_UKERNEL_MLX(uk_mlx3, Q35_DT_MLX3)
GENERIC_UKERNEL_MLX(uk_mlx4, Q35_DT_MLX4)
GENERIC_UKERNEL_MLX(uk_mlx5, Q35_DT_MLX5)
GENERIC_UKERNEL_MLX(uk_mlx6, Q35_DT_MLX6)
GENERIC_UKERNEL_MLX(uk_mlx8, Q35_DT_MLX8)

const q35_i8_kernels q35_i8_generic_set = {
    .name = "generic",
    .quantize = q35_q8_quantize_ref,
    .mk =
        {
            [Q35_DT_Q8_0] = {4, 4, uk_q8_0},
            [Q35_DT_Q4_0] = {4, 4, uk_q4_0},
            [Q35_DT_Q4_K] = {4, 4, uk_q4_K},
            [Q35_DT_Q6_K] = {4, 4, uk_q6_K},
            [Q35_DT_Q5_K] = {4, 4, uk_q5_K},
            [Q35_DT_MLX2] = {.mr = 4, .nr = 4, .fnv = uk_mlx2},
            [Q35_DT_MLX3] = {.mr = 4, .nr = 4, .fnv = uk_mlx3},
            [Q35_DT_MLX4] = {.mr = 4, .nr = 4, .fnv = uk_mlx4},
            [Q35_DT_MLX5] = {.mr = 4, .nr = 4, .fnv = uk_mlx5},
            [Q35_DT_MLX6] = {.mr = 4, .nr = 4, .fnv = uk_mlx6},
            [Q35_DT_MLX8] = {.mr = 4, .nr = 4, .fnv = uk_mlx8},
        },
};

const q35_i8_kernels *q35_i8_kernels_generic(void) {
    return &q35_i8_generic_set;
}
