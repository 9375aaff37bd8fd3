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
 * operation (Q4_K: (d*sc)*q - (dmin*m); Q6_K: (d*sc)*q). */
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
    Q35_DT_COUNT
} q35_dtype;

#define Q35_QBLOCK 32 /* elements per quantized block */

typedef struct q35_tensor {
    q35_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
} q35_tensor;

static inline int64_t q35_tensor_numel(const q35_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

static inline bool q35_dtype_is_quant(q35_dtype d) {
    return d == Q35_DT_Q8_0 || d == Q35_DT_Q4_0 || d == Q35_DT_Q4_K || d == Q35_DT_Q6_K;
}

/* Bytes per block of a quantized type; for plain types, bytes per element
 * (a "block" of one). */
static inline size_t q35_dtype_block_bytes(q35_dtype d) {
    switch (d) {
    case Q35_DT_F32: return 4;
    case Q35_DT_Q8_0: return 34;
    case Q35_DT_Q4_0: return 18;
    case Q35_DT_Q4_K: return 144;
    case Q35_DT_Q6_K: return 210;
    default: return 2;
    }
}

#define Q35_KBLOCK 256 /* elements per k-quant super-block */

static inline int q35_dtype_block_elems(q35_dtype d) {
    return d == Q35_DT_Q4_K || d == Q35_DT_Q6_K ? Q35_KBLOCK
           : q35_dtype_is_quant(d)              ? Q35_QBLOCK
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

static inline const char *q35_dtype_name(q35_dtype d) {
    switch (d) {
    case Q35_DT_F32: return "f32";
    case Q35_DT_F16: return "f16";
    case Q35_DT_BF16: return "bf16";
    case Q35_DT_Q8_0: return "q8_0";
    case Q35_DT_Q4_0: return "q4_0";
    case Q35_DT_Q4_K: return "q4_K";
    case Q35_DT_Q6_K: return "q6_K";
    default: return "?";
    }
}

#endif
