/* tensor.h — a weight matrix or vector as the kernels see it: a dtype, a
 * shape (row-major, shape[0] = rows = output features) and a pointer that is
 * either into a mapped file or into a buffer the model owns.
 *
 * Quantized matrices use ggml's 32-element block layouts, byte for byte, so
 * that Q8_0 and Q4_0 tensors of a GGUF file are used in place and files q35
 * writes are GGUF files. A row of `cols` elements (cols a multiple of 32) is
 * cols/32 consecutive blocks; rows follow each other with no padding:
 *   Q8_0 (34 bytes): f16 d, int8 q[32];            w[j] = d * q[j]
 *   Q4_0 (18 bytes): f16 d, uint8 qs[16];          w[j] = d * (n_j - 8)
 *        where n_j = qs[j] & 15 and n_{j+16} = qs[j] >> 4 (j < 16).
 * The value of a weight is the float32 product d * q (exact: an f16 times a
 * small integer fits float32's mantissa), so a quantized matmul computes
 * what the same matmul over the dequantized float32 matrix computes, up to
 * float32 summation order.
 *
 * Q4_K (144 bytes) and Q6_K (210 bytes) are ggml's k-quant super-blocks of
 * 256 elements (rows are cols/256 of them); a weight's value is what
 * formats/gguf_quants.c's decoder computes, float operation for float
 * operation (Q4_K: (d*sc)*q - (dmin*m); Q6_K: (d*sc)*q). Q5_K (176 bytes)
 * is Q4_K with a fifth bit per weight: d, dmin, the same 12 scale bytes, 32
 * bytes of fifth bits (bit 2c / 2c+1 of byte l: elements 64c + l and
 * 64c + 32 + l), 128 bytes of nibbles; (d*sc)*(q + 16*h) - (dmin*m).
 *
 * MLX affine (Q35_DT_MLX2 .. MLX8, b bits) is MLX's own layout, used where
 * the safetensors file has it: a row is a little-endian bit stream of
 * cols*b bits (element j in bits [j*b, (j+1)*b), low bits first, as bytes
 * of little-endian uint32 words), and each group of `group` elements along
 * the row has a scale s and a bias z (`scales`, `biases`: [rows, cols/group]
 * of `aux`, f16, bf16 or f32). A weight's value is the float32 s*q + z
 * (rounded once after the product, no fused multiply-add). The three parts
 * sit apart, so `data` points at a q35_mlx_affine naming them. "Blocks" of
 * 32 elements are 4*b bytes: q35_row_bytes counts the packed codes only.
 *
 * Q8_0_X16 / Q4_0_X16 / Q6_K_X16 / Q4_K_X16 are those matrices repacked
 * once at load for the CPU kernels that read them (kernels/repack_x16.h;
 * never in a file): rows go in groups of 16 (the last one padded with zero
 * rows), each group 16 rows' bytes of the base type, so q35_row_bytes and
 * q35_tensor_bytes are the original's, but a row is no longer contiguous:
 * only code that knows the layout (repack_x16.h) may read one. */
#ifndef Q35_MODEL_TENSOR_H
#define Q35_MODEL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum q35_dtype {
    Q35_DT_F32 = 0,
    Q35_DT_F16,
    Q35_DT_BF16,
    Q35_DT_Q8_0,
    Q35_DT_Q4_0,
    Q35_DT_Q4_K, /* ggml's 256-element super-blocks (see below) */
    Q35_DT_Q6_K,
    Q35_DT_Q5_K, /* ggml's Q5_K super-blocks */
    Q35_DT_MLX2, /* MLX affine, 2 bits a weight (see above) */
    Q35_DT_MLX3,
    Q35_DT_MLX4,
    Q35_DT_MLX5,
    Q35_DT_MLX6,
    Q35_DT_MLX8,
    Q35_DT_Q8_0_X16, /* Q8_0 / Q4_0 repacked at load, 16 rows interleaved (below) */
    Q35_DT_Q4_0_X16,
    Q35_DT_Q6_K_X16, /* Q6_K the same way (the output head) */
    Q35_DT_Q4_K_X16,
    Q35_DT_COUNT
} q35_dtype;

#define Q35_QBLOCK 32 /* elements per quantized block */

typedef struct q35_tensor {
    q35_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data; /* MLX affine: a q35_mlx_affine (below) */
} q35_tensor;

/* What an MLX affine tensor's `data` points at (the loader owns it): its
 * three parts, each where the file has it. */
typedef struct q35_mlx_affine {
    const void *q;               /* packed codes, [rows, cols*b/32] uint32 */
    const void *scales, *biases; /* [rows, cols/group] each */
    int aux;                     /* their q35_dtype: F16, BF16 or F32 */
    int group;                   /* elements per group: 32, 64 or 128 */
} q35_mlx_affine;

static inline int64_t q35_tensor_numel(const q35_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

static inline bool q35_dtype_is_quant(q35_dtype d) {
    return d == Q35_DT_Q8_0 || d == Q35_DT_Q4_0 || d == Q35_DT_Q4_K || d == Q35_DT_Q6_K ||
           d == Q35_DT_Q5_K;
}

/* MLX affine dtypes are not ggml blocks: their scales live apart. */
static inline bool q35_dtype_is_mlx(q35_dtype d) {
    return d >= Q35_DT_MLX2 && d <= Q35_DT_MLX8;
}

/* Bits a weight of an MLX affine dtype (0 for others). */
static inline int q35_dtype_mlx_bits(q35_dtype d) {
    static const int bits[] = {2, 3, 4, 5, 6, 8};
    return q35_dtype_is_mlx(d) ? bits[d - Q35_DT_MLX2] : 0;
}

/* Bytes per block of a quantized type; for plain types, bytes per element
 * (a "block" of one). */
static inline size_t q35_dtype_block_bytes(q35_dtype d) {
    switch (d) {
    case Q35_DT_F32: return 4;
    case Q35_DT_Q8_0:
    case Q35_DT_Q8_0_X16: return 34;
    case Q35_DT_Q4_0:
    case Q35_DT_Q4_0_X16: return 18;
    case Q35_DT_Q4_K: return 144;
    case Q35_DT_Q6_K:
    case Q35_DT_Q6_K_X16: return 210;
    case Q35_DT_Q4_K_X16: return 144;
    case Q35_DT_Q5_K: return 176;
    default:
        if (q35_dtype_is_mlx(d)) return (size_t)(4 * q35_dtype_mlx_bits(d));
        return 2;
    }
}

#define Q35_KBLOCK 256 /* elements per k-quant super-block */

/* The 16-row repacked forms (see above) and what they were repacked from. */
static inline bool q35_dtype_is_x16(q35_dtype d) {
    return d == Q35_DT_Q8_0_X16 || d == Q35_DT_Q4_0_X16 || d == Q35_DT_Q6_K_X16 ||
           d == Q35_DT_Q4_K_X16;
}
static inline q35_dtype q35_dtype_x16_base(q35_dtype d) {
    return d == Q35_DT_Q8_0_X16   ? Q35_DT_Q8_0
           : d == Q35_DT_Q4_0_X16 ? Q35_DT_Q4_0
           : d == Q35_DT_Q6_K_X16 ? Q35_DT_Q6_K
           : d == Q35_DT_Q4_K_X16 ? Q35_DT_Q4_K
                                  : d;
}

static inline int q35_dtype_block_elems(q35_dtype d) {
    return d == Q35_DT_Q4_K || d == Q35_DT_Q6_K || d == Q35_DT_Q5_K || d == Q35_DT_Q6_K_X16 ||
                   d == Q35_DT_Q4_K_X16
               ? Q35_KBLOCK
           : q35_dtype_is_quant(d) || q35_dtype_is_mlx(d) || q35_dtype_is_x16(d) ? Q35_QBLOCK
                                                                                 : 1;
}

/* Bytes per element of a plain type. Quantized types have no whole-byte
 * element: use q35_row_bytes. */
static inline size_t q35_dtype_size(q35_dtype d) {
    return d == Q35_DT_F32 ? 4 : 2;
}

/* Bytes of one row of `cols` elements (for quantized types cols must be a
 * multiple of the type's block, q35_dtype_block_elems). */
static inline size_t q35_row_bytes(q35_dtype d, int64_t cols) {
    return (size_t)(cols / q35_dtype_block_elems(d)) * q35_dtype_block_bytes(d);
}

/* Bytes of a whole tensor (its last dimension is the row). */
static inline size_t q35_tensor_bytes(const q35_tensor *t) {
    if (t->ndim < 1) return 0;
    int64_t cols = t->shape[t->ndim - 1];
    return (size_t)(q35_tensor_numel(t) / (cols ? cols : 1)) * q35_row_bytes(t->dtype, cols);
}

/* Bytes of an MLX affine tensor's scales and biases together (0 for other
 * dtypes). */
static inline size_t q35_tensor_aux_bytes(const q35_tensor *t) {
    const q35_mlx_affine *a = (const q35_mlx_affine *)t->data;
    if (!q35_dtype_is_mlx(t->dtype) || t->ndim != 2 || !a || a->group < 1) return 0;
    size_t n = (size_t)t->shape[0] * (size_t)(t->shape[1] / a->group);
    return 2 * n * (a->aux == Q35_DT_F32 ? 4 : 2);
}

static inline const char *q35_dtype_name(q35_dtype d) {
    switch (d) {
    case Q35_DT_F32: return "f32";
    case Q35_DT_F16: return "f16";
    case Q35_DT_BF16: return "bf16";
    case Q35_DT_Q8_0: return "q8_0";
    case Q35_DT_Q4_0: return "q4_0";
    case Q35_DT_Q4_K: return "q4_K";
    case Q35_DT_Q6_K: return "q6_K";
    case Q35_DT_Q5_K: return "q5_K";
    case Q35_DT_MLX2: return "mlx2";
    case Q35_DT_MLX3: return "mlx3";
    case Q35_DT_MLX4: return "mlx4";
    case Q35_DT_MLX5: return "mlx5";
    case Q35_DT_MLX6: return "mlx6";
    case Q35_DT_MLX8: return "mlx8";
    case Q35_DT_Q8_0_X16: return "q8_0x16";
    case Q35_DT_Q4_0_X16: return "q4_0x16";
    case Q35_DT_Q6_K_X16: return "q6_Kx16";
    case Q35_DT_Q4_K_X16: return "q4_Kx16";
    default: return "?";
    }
}

#endif
