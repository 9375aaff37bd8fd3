/* quant_block.h — one Q8_0 / Q4_0 block (layouts in model/tensor.h) read in
 * plain C: its scale d and its 32 weights as float32. The plain C matmul and
 * the embedding lookup decode through here, so "the value of a weight"
 * (the float32 product d * q, exact) has one definition; the SIMD sets
 * compute the same products in registers.
 *
 * Blocks sit at any byte offset (34 and 18 bytes, rows unpadded, files
 * mapped at any alignment): every multi-byte read goes through memcpy. The
 * f16 scale is little-endian as in GGUF, which is the byte order of every
 * CPU q35 builds for. */
#ifndef Q35_KERNELS_QUANT_BLOCK_H
#define Q35_KERNELS_QUANT_BLOCK_H

#include <stdint.h>
#include <string.h>

#include "core/half.h"
#include "model/tensor.h"

static inline uint16_t q35_qblock_d16(const uint8_t *b) {
    uint16_t h;
    memcpy(&h, b, 2);
    return h;
}

/* The 32 weights of the block at b (dt is Q8_0 or Q4_0) into out. */
static inline void q35_qblock_decode(q35_dtype dt, const uint8_t *b, float out[Q35_QBLOCK]) {
    float d = q35_f16_to_f32(q35_qblock_d16(b));
    const uint8_t *q = b + 2;
    if (dt == Q35_DT_Q8_0) {
        for (int j = 0; j < Q35_QBLOCK; j++)
            out[j] = d * (float)(int8_t)q[j];
    } else {
        for (int j = 0; j < Q35_QBLOCK / 2; j++) {
            out[j] = d * (float)((q[j] & 15) - 8);
            out[j + Q35_QBLOCK / 2] = d * (float)((q[j] >> 4) - 8);
        }
    }
}

#endif
