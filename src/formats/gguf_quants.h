/* gguf_quants.h — ggml's tensor element types as they appear in GGUF files:
 * their block geometry (so the parser can check that a tensor's byte size
 * agrees with its shape) and dequantization of the ones q35 can read into
 * float32. The numbering is ggml's and is part of the file format. */
#ifndef Q35_FORMATS_GGUF_QUANTS_H
#define Q35_FORMATS_GGUF_QUANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q35.h"

typedef enum q35_ggml_type {
    Q35_GGML_F32 = 0,
    Q35_GGML_F16 = 1,
    Q35_GGML_Q4_0 = 2,
    Q35_GGML_Q4_1 = 3,
    Q35_GGML_Q5_0 = 6,
    Q35_GGML_Q5_1 = 7,
    Q35_GGML_Q8_0 = 8,
    Q35_GGML_Q8_1 = 9,
    Q35_GGML_Q2_K = 10,
    Q35_GGML_Q3_K = 11,
    Q35_GGML_Q4_K = 12,
    Q35_GGML_Q5_K = 13,
    Q35_GGML_Q6_K = 14,
    Q35_GGML_Q8_K = 15,
    Q35_GGML_IQ2_XXS = 16,
    Q35_GGML_IQ2_XS = 17,
    Q35_GGML_IQ3_XXS = 18,
    Q35_GGML_IQ1_S = 19,
    Q35_GGML_IQ4_NL = 20,
    Q35_GGML_IQ3_S = 21,
    Q35_GGML_IQ2_S = 22,
    Q35_GGML_IQ4_XS = 23,
    Q35_GGML_I8 = 24,
    Q35_GGML_I16 = 25,
    Q35_GGML_I32 = 26,
    Q35_GGML_I64 = 27,
    Q35_GGML_F64 = 28,
    Q35_GGML_IQ1_M = 29,
    Q35_GGML_BF16 = 30,
    Q35_GGML_TQ1_0 = 34,
    Q35_GGML_TQ2_0 = 35,
    Q35_GGML_MXFP4 = 39,
    Q35_GGML_TYPE_LIMIT = 40 /* every valid type number is below this */
} q35_ggml_type;

/* Elements per block and bytes per block of one type. */
typedef struct q35_ggml_type_info {
    const char *name;   /* "Q4_K", ... */
    int block_elems;    /* elements per block (1 for plain types) */
    int block_bytes;    /* bytes per block */
    bool dequantizable; /* q35_ggml_dequantize accepts it */
} q35_ggml_type_info;

/* Geometry of type number `type`, or NULL for a number that is not (or no
 * longer) a ggml type. The result is a static table entry. */
const q35_ggml_type_info *q35_ggml_type_get(uint32_t type);

/* A static name for any type number ("Q4_K", or "unknown"). */
const char *q35_ggml_type_name(uint32_t type);

/* Decodes `n` elements of type `type` starting at `src` (which must hold
 * n / block_elems whole blocks, any alignment) into `dst` as float32. n must
 * be a multiple of the type's block size. Fails with Q35_EINVAL for a type
 * that is not dequantizable or an n that is not whole blocks. */
int q35_ggml_dequantize(uint32_t type, const void *src, float *dst, int64_t n, q35_err *e);

/* Encodes `n` float32 values (n a multiple of 32) as Q8_0 or Q4_0 blocks
 * into `dst` (n/32 blocks), rounding exactly as ggml's reference quantizers
 * (quantize_row_q8_0_ref, quantize_row_q4_0_ref) do, so a tensor q35
 * quantizes is byte-identical to llama-quantize's from the same float32
 * values:
 *   Q8_0: d = max|x| / 127, q = round(x / d) (half away from zero);
 *   Q4_0: m = the x of largest |x|, d = m / -8, n = min(15, trunc(x / d + 8.5)).
 * Fails with Q35_EINVAL for another type or an n that is not whole blocks.
 * Not-a-number inputs are the caller's problem (they give unspecified
 * blocks, never a crash). */
int q35_ggml_quantize(uint32_t type, const float *src, void *dst, int64_t n, q35_err *e);

#endif
