/* int8_generic.c — the plain C definitions of the integer matmul path
 * (microkernel.h): quantizing token rows to q8 rows, and the dot product of
 * a weight row of each format with a q8 row, integer part then float part,
 * in block order. The generic set's micro-kernels are these definitions
 * applied per (row, token); every SIMD set is tested against them. */
#include <math.h>
#include <string.h>

#include "core/half.h"
#include "kernels/microkernel.h"
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
        if (dt == Q35_DT_Q4_K) {
            const uint8_t *q = sb + 16 + 32 * (j / 2);
            int sh = 4 * (j & 1), sc, mn;
            int32_t I = 0;
            for (int l = 0; l < 32; l++)
                I += ((q[l] >> sh) & 15) * ab[l];
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

const q35_i8_kernels q35_i8_generic_set = {
    .name = "generic",
    .quantize = q35_q8_quantize_ref,
    .mk =
        {
            [Q35_DT_Q8_0] = {4, 4, uk_q8_0},
            [Q35_DT_Q4_0] = {4, 4, uk_q4_0},
            [Q35_DT_Q4_K] = {4, 4, uk_q4_K},
            [Q35_DT_Q6_K] = {4, 4, uk_q6_K},
        },
};

const q35_i8_kernels *q35_i8_kernels_generic(void) {
    return &q35_i8_generic_set;
}
