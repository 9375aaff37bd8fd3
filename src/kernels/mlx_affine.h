/* mlx_affine.h — MLX affine-quantized weights (model/tensor.h) read in
 * plain C: the one definition of a weight's value, s * q + z in float32,
 * that the plain C matmul and the row lookup decode through and that the
 * SIMD path is tested against; and the matmul entry points for these
 * dtypes and for Q5_K, which every kernel set reaches through q35_matmul.
 *
 * A row's codes are a little-endian bit stream of b bits each. Eight codes
 * take exactly b bytes whatever b is (2, 3, 4, 5, 6 or 8), so every reader
 * here works in units of eight codes read from b bytes: never a byte past
 * the row, at any alignment (mapped files give none). */
#ifndef Q35_KERNELS_MLX_AFFINE_H
#define Q35_KERNELS_MLX_AFFINE_H

#include <stdint.h>
#include <string.h>

#include "core/half.h"
#include "kernels/kernels.h"
#include "model/tensor.h"

/* Element i of a scales/biases array of dtype `aux` as float32. */
static inline float q35_mlx_aux_f32(const void *p, int aux, size_t i) {
    if (aux == Q35_DT_F32) {
        float f;
        memcpy(&f, (const unsigned char *)p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const unsigned char *)p + 2 * i, 2);
    return aux == Q35_DT_BF16 ? q35_bf16_to_f32(h) : q35_f16_to_f32(h);
}

/* The eight b-bit codes stored in the b bytes at p. */
static inline void q35_mlx_unit_codes(const uint8_t *p, int b, uint32_t c[8]) {
    uint64_t u = 0;
    for (int i = 0; i < b; i++) /* little-endian whatever the host */
        u |= (uint64_t)p[i] << (8 * i);
    const uint64_t mask = (1u << b) - 1;
    for (int i = 0; i < 8; i++)
        c[i] = (uint32_t)((u >> (i * b)) & mask);
}

/* The `group` weights of group g of row r of w (an MLX affine tensor of
 * `cols` columns) into out: s * q + z, the product rounded to float32
 * before the sum (no fused multiply-add: CMake forbids contraction). */
static inline void q35_mlx_group_decode(const q35_tensor *w, int64_t r, int64_t g, float *out) {
    const q35_mlx_affine *a = (const q35_mlx_affine *)w->data;
    const int b = q35_dtype_mlx_bits(w->dtype), gs = a->group;
    const int64_t cols = w->shape[1], groups = cols / gs;
    const uint8_t *p = (const uint8_t *)a->q + (size_t)r * (size_t)(cols / 8 * b) +
                       (size_t)g * (size_t)(gs / 8 * b);
    const size_t gi = (size_t)(r * groups + g);
    const float s = q35_mlx_aux_f32(a->scales, a->aux, gi);
    const float z = q35_mlx_aux_f32(a->biases, a->aux, gi);
    for (int u = 0; u < gs / 8; u++) {
        uint32_t c[8];
        q35_mlx_unit_codes(p + (size_t)u * (size_t)b, b, c);
        for (int i = 0; i < 8; i++) {
            float sq = s * (float)c[i];
            out[8 * u + i] = sq + z;
        }
    }
}

/* Row r of an MLX affine tensor as float32 (cols values). */
static inline void q35_mlx_row_decode(const q35_tensor *w, int64_t r, float *out) {
    const q35_mlx_affine *a = (const q35_mlx_affine *)w->data;
    for (int64_t g = 0; g < w->shape[1] / a->group; g++)
        q35_mlx_group_decode(w, r, g, out + g * a->group);
}

/* kernels->matmul's contract for MLX affine and Q5_K weights. The plain C
 * definition decodes each group (super-block) once per row and follows the
 * generic set's float32 order (4 partial sums, k mod 4), so it gives the
 * bits of the generic matmul over the dequantized matrix. */
void q35_mlx_matmul_generic(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy,
                            int64_t r0, int64_t r1);
/* AVX2 + FMA (also what the AVX-512 sets use): per group, sum q * x in
 * float32 and add s * that + z * sum x; only float32 rounding differs from
 * the plain C definition. Only after a CPU check (q35_kernels_avx2 non-NULL). */
void q35_mlx_matmul_avx2(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                         int64_t r1);
/* Q5_K on AVX2: each super-block's weights decoded exactly in registers,
 * then float32 FMAs. */
void q35_q5k_matmul_avx2(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                         int64_t r1);

/* The matmul of kernel set k for an MLX affine or Q5_K matrix: its SIMD
 * path where k is an x86 SIMD set, else the plain C one. */
void q35_mlx_q5k_matmul(const q35_kernels *k, const q35_tensor *w, const q35_acts *a, float *y,
                        int64_t ldy, int64_t r0, int64_t r1);

/* True for the dtypes q35_mlx_q5k_matmul takes. */
static inline bool q35_dtype_is_mlx_or_q5k(q35_dtype d) {
    return q35_dtype_is_mlx(d) || d == Q35_DT_Q5_K;
}

#endif
