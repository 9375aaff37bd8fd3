/* quant_block.h — one Q8_0 / Q4_0 block or Q4_K / Q6_K super-block
 * (layouts in model/tensor.h) read in plain C: its scales and its weights
 * as float32. The plain C matmul and
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

/* Scale and min j (0..7) of a Q4_K super-block's 12 packed bytes s: j < 4
 * are the low six bits of bytes j and j + 4; j >= 4 take their low four
 * bits from byte j + 4 (scale: low nibble, min: high nibble) and their top
 * two from bytes j - 4 and j. */
static inline void q35_k4_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* The float32 multipliers of a super-block's eight 32-element sub-blocks:
 * Q4_K: mul[j] = d * sc_j, sub[j] = dmin * m_j, weight = mul * q - sub;
 * Q6_K (sixteen 16-element sub-blocks): mul[j] = d * sc_j, weight = mul * q.
 * These are the products formats/gguf_quants.c's decoder forms, once per
 * sub-block, so every set that starts from them sees its weights. */
static inline void q35_kblock_scales(q35_dtype dt, const uint8_t *b, float mul[16], float sub[8]) {
    if (dt == Q35_DT_Q4_K || dt == Q35_DT_Q5_K) { /* Q5_K: the same 16 leading bytes */
        float d = q35_f16_to_f32(q35_qblock_d16(b)), dmin = q35_f16_to_f32(q35_qblock_d16(b + 2));
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            q35_k4_scale_min(b + 4, j, &sc, &mn);
            mul[j] = d * (float)sc;
            sub[j] = dmin * (float)mn;
        }
    } else {
        float d = q35_f16_to_f32(q35_qblock_d16(b + 208));
        for (int j = 0; j < 16; j++)
            mul[j] = d * (float)(int8_t)b[192 + j];
    }
}

/* The 256 weights of the Q4_K / Q6_K super-block at b into out, float
 * operation for float operation as formats/gguf_quants.c decodes them.
 * Q4_K: 32 bytes of nibbles per 64 elements, low nibbles first. Q6_K: per
 * 128 elements, 64 bytes of low nibbles (elements l and l + 64 share byte
 * l, l + 32 and l + 96 byte l + 32) and 32 bytes of high bit pairs
 * (element l + 32k takes bits 2k, 2k+1 of byte l). */
static inline void q35_kblock_decode(q35_dtype dt, const uint8_t *b, float out[Q35_KBLOCK]) {
    float mul[16], sub[8];
    q35_kblock_scales(dt, b, mul, sub);
    if (dt == Q35_DT_Q4_K) {
        const uint8_t *qs = b + 16;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = qs + 32 * (j / 2);
            int sh = 4 * (j & 1);
            for (int l = 0; l < 32; l++)
                out[32 * j + l] = mul[j] * (float)((q[l] >> sh) & 15) - sub[j];
        }
    } else if (dt == Q35_DT_Q5_K) {
        /* as Q4_K (nibbles at b + 48) plus fifth bits: bit j of byte l of
         * b + 16 belongs to element 32j + l */
        const uint8_t *qh = b + 16, *qs = b + 48;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = qs + 32 * (j / 2);
            int sh = 4 * (j & 1);
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> sh) & 15) + (((qh[l] >> j) & 1) << 4);
                out[32 * j + l] = mul[j] * (float)v - sub[j];
            }
        }
    } else {
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++) {
                    int lo = (ql[l + 32 * (k & 1)] >> (4 * (k >> 1))) & 15;
                    int q = (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
                    out[128 * h + 32 * k + l] = mul[8 * h + 2 * k + l / 16] * (float)q;
                }
        }
    }
}

/* Weights of one block of either family: q35_dtype_block_elems(dt) of
 * them. */
static inline void q35_block_decode(q35_dtype dt, const uint8_t *b, float *out) {
    if (dt == Q35_DT_Q4_K || dt == Q35_DT_Q6_K || dt == Q35_DT_Q5_K)
        q35_kblock_decode(dt, b, out);
    else
        q35_qblock_decode(dt, b, out);
}

#endif
