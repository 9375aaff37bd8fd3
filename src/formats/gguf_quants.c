/* gguf_quants.c — the block table of ggml's types and float32 decoding of
 * the plain, legacy (Q4_0 ... Q8_1) and k-quant (Q2_K ... Q8_K) formats.
 *
 * Blocks are read byte by byte (little-endian, any alignment): a GGUF data
 * section only guarantees the file's alignment for a tensor's start, and
 * these decoders run once at load time, so clarity wins over speed here.
 *
 * Layouts (per block; d, dmin, m are IEEE half unless noted):
 *   Q4_0  32 elems: d, 16 bytes of nibbles       x = d * (q - 8)
 *   Q4_1  32 elems: d, m, 16 bytes of nibbles    x = d * q + m
 *   Q5_0  32 elems: d, 4 bytes high bits, 16 nib x = d * (q - 16)
 *   Q5_1  32 elems: d, m, 4 bytes high bits, 16  x = d * q + m
 *   Q8_0  32 elems: d, 32 int8                   x = d * q
 *   Q8_1  32 elems: d, s (sum, unused), 32 int8  x = d * q
 *   In the 32-element formats, byte j's low nibble is element j and its high
 *   nibble element j + 16; the 5th bit of element i is bit i of the 32-bit
 *   little-endian high-bits word.
 *   Q2_K 256: 16 bytes scales (low nibble scale, high nibble min), 64 bytes
 *             of 2-bit quants, d, dmin; x = d*sc*q - dmin*m per 16 elements.
 *   Q3_K 256: 32 bytes high-bit mask, 64 bytes 2-bit quants, 12 bytes of
 *             sixteen 6-bit scales (biased by 32), d; x = d*(sc-32)*(q-4|q).
 *   Q4_K 256: d, dmin, 12 bytes of eight 6-bit (scale, min) pairs, 128 bytes
 *             of nibbles; x = d*sc*q - dmin*m per 32 elements.
 *   Q5_K 256: as Q4_K plus 32 bytes of 5th bits.
 *   Q6_K 256: 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, d;
 *             x = d * sc * (q - 32) per 16 elements.
 *   Q8_K 256: d as float32, 256 int8, 16 int16 partial sums (unused).
 *   IQ4_NL 32: d, 16 bytes of nibbles (as Q4_0) indexing a fixed table of
 *             16 non-uniform levels: x = d * level[q].
 *   IQ4_XS 256: d, 16-bit high bits and 4 bytes low nibbles of eight 6-bit
 *             sub-block scales (biased by 32), then eight IQ4_NL-style
 *             16-byte nibble groups: x = d * (sc - 32) * level[q].
 * The other IQ formats index large codebooks and are not decoded here.
 */
#include "formats/gguf_quants.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/half.h"

/* Indexed by type number; entries with a NULL name are numbers ggml retired
 * (4, 5, 31-33, 36-38) and are invalid in a file. */
static const q35_ggml_type_info type_table[Q35_GGML_TYPE_LIMIT] = {
    [Q35_GGML_F32] = {"F32", 1, 4, true},
    [Q35_GGML_F16] = {"F16", 1, 2, true},
    [Q35_GGML_Q4_0] = {"Q4_0", 32, 18, true},
    [Q35_GGML_Q4_1] = {"Q4_1", 32, 20, true},
    [Q35_GGML_Q5_0] = {"Q5_0", 32, 22, true},
    [Q35_GGML_Q5_1] = {"Q5_1", 32, 24, true},
    [Q35_GGML_Q8_0] = {"Q8_0", 32, 34, true},
    [Q35_GGML_Q8_1] = {"Q8_1", 32, 36, true},
    [Q35_GGML_Q2_K] = {"Q2_K", 256, 84, true},
    [Q35_GGML_Q3_K] = {"Q3_K", 256, 110, true},
    [Q35_GGML_Q4_K] = {"Q4_K", 256, 144, true},
    [Q35_GGML_Q5_K] = {"Q5_K", 256, 176, true},
    [Q35_GGML_Q6_K] = {"Q6_K", 256, 210, true},
    [Q35_GGML_Q8_K] = {"Q8_K", 256, 292, true},
    [Q35_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66, false},
    [Q35_GGML_IQ2_XS] = {"IQ2_XS", 256, 74, false},
    [Q35_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98, false},
    [Q35_GGML_IQ1_S] = {"IQ1_S", 256, 50, false},
    [Q35_GGML_IQ4_NL] = {"IQ4_NL", 32, 18, true},
    [Q35_GGML_IQ3_S] = {"IQ3_S", 256, 110, false},
    [Q35_GGML_IQ2_S] = {"IQ2_S", 256, 82, false},
    [Q35_GGML_IQ4_XS] = {"IQ4_XS", 256, 136, true},
    [Q35_GGML_I8] = {"I8", 1, 1, false},
    [Q35_GGML_I16] = {"I16", 1, 2, false},
    [Q35_GGML_I32] = {"I32", 1, 4, false},
    [Q35_GGML_I64] = {"I64", 1, 8, false},
    [Q35_GGML_F64] = {"F64", 1, 8, false},
    [Q35_GGML_IQ1_M] = {"IQ1_M", 256, 56, false},
    [Q35_GGML_BF16] = {"BF16", 1, 2, true},
    [Q35_GGML_TQ1_0] = {"TQ1_0", 256, 54, false},
    [Q35_GGML_TQ2_0] = {"TQ2_0", 256, 66, false},
    [Q35_GGML_MXFP4] = {"MXFP4", 32, 17, false},
};

const q35_ggml_type_info *q35_ggml_type_get(uint32_t type) {
    if (type >= Q35_GGML_TYPE_LIMIT || !type_table[type].name) return NULL;
    return &type_table[type];
}

const char *q35_ggml_type_name(uint32_t type) {
    const q35_ggml_type_info *t = q35_ggml_type_get(type);
    return t ? t->name : "unknown";
}

static inline uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline float rdf16(const uint8_t *p) {
    return q35_f16_to_f32(rd16(p));
}

/* ------------------------------------------------ 32-element legacy blocks */

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = rdf16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((qs[j] & 0x0f) - 8);
        y[j + 16] = d * (float)((qs[j] >> 4) - 8);
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    float d = rdf16(b), m = rdf16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(qs[j] & 0x0f) + m;
        y[j + 16] = d * (float)(qs[j] >> 4) + m;
    }
}

/* Q5_0 / Q5_1 share the bit layout; `offset` is -16 for Q5_0 (symmetric),
 * 0 for Q5_1 (which adds m). */
static void dq_q5(const uint8_t *qs, uint32_t qh, float d, float m, int offset, float *y) {
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = d * (float)(lo + offset) + m;
        y[j + 16] = d * (float)(hi + offset) + m;
    }
}

static void dq_q5_0(const uint8_t *b, float *y) {
    dq_q5(b + 6, rd32(b + 2), rdf16(b), 0.0f, -16, y);
}

static void dq_q5_1(const uint8_t *b, float *y) {
    dq_q5(b + 8, rd32(b + 4), rdf16(b), rdf16(b + 2), 0, y);
}

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = rdf16(b);
    for (int j = 0; j < 32; j++)
        y[j] = d * (float)(int8_t)b[2 + j];
}

static void dq_q8_1(const uint8_t *b, float *y) {
    float d = rdf16(b);
    for (int j = 0; j < 32; j++)
        y[j] = d * (float)(int8_t)b[4 + j];
}

/* ------------------------------------------------------ 256-element k-quants */

static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *scales = b, *qs = b + 16;
    float d = rdf16(b + 80), dmin = rdf16(b + 82);
    /* Two halves of 128; in each, four 2-bit planes of the same 32 bytes,
     * each plane covering 32 elements in two groups of 16 with own scales. */
    int is = 0;
    for (int half = 0; half < 2; half++) {
        const uint8_t *q = qs + 32 * half;
        for (int plane = 0; plane < 4; plane++) {
            int shift = 2 * plane;
            for (int g = 0; g < 2; g++) {
                uint8_t sc = scales[is++];
                float dl = d * (float)(sc & 0x0f), ml = dmin * (float)(sc >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((q[16 * g + l] >> shift) & 3) - ml;
            }
        }
    }
}

/* The twelve scale bytes of Q3_K hold sixteen 6-bit values: the low four
 * bits of scale i are in byte i % 8 (low nibble for i < 8, high for i >= 8);
 * the top two bits of scale i are bits 2*(i/4)..+1 of byte 8 + i % 4. */
static void q3_k_scales(const uint8_t *s, int sc[16]) {
    for (int i = 0; i < 16; i++) {
        int low = i < 8 ? (s[i] & 0x0f) : (s[i - 8] >> 4);
        int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = (low | (high << 4)) - 32;
    }
}

static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hmask = b, *qs = b + 32;
    int sc[16];
    q3_k_scales(b + 96, sc);
    float d = rdf16(b + 108);
    int is = 0;
    uint8_t m = 1; /* bit of hmask for the current plane */
    for (int half = 0; half < 2; half++) {
        const uint8_t *q = qs + 32 * half;
        for (int plane = 0; plane < 4; plane++) {
            int shift = 2 * plane;
            for (int g = 0; g < 2; g++) {
                float dl = d * (float)sc[is++];
                for (int l = 0; l < 16; l++) {
                    int k = 16 * g + l;
                    int v = ((q[k] >> shift) & 3) - ((hmask[k] & m) ? 0 : 4);
                    *y++ = dl * (float)v;
                }
            }
            m = (uint8_t)(m << 1);
        }
    }
}

/* Scale and min j (0..7) of Q4_K / Q5_K: j < 4 are the low six bits of bytes
 * j and j + 4; j >= 4 take their low four bits from byte j + 4 (scale: low
 * nibble, min: high nibble) and their top two from bytes j - 4 and j. */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void dq_q4_k(const uint8_t *b, float *y) {
    float d = rdf16(b), dmin = rdf16(b + 2);
    const uint8_t *scales = b + 4, *qs = b + 16;
    /* 32 bytes of nibbles per 64 elements: low nibbles first, then high. */
    for (int chunk = 0; chunk < 4; chunk++) {
        const uint8_t *q = qs + 32 * chunk;
        int sc0, m0, sc1, m1;
        k4_scale_min(scales, 2 * chunk, &sc0, &m0);
        k4_scale_min(scales, 2 * chunk + 1, &sc1, &m1);
        float d0 = d * (float)sc0, min0 = dmin * (float)m0;
        float d1 = d * (float)sc1, min1 = dmin * (float)m1;
        for (int l = 0; l < 32; l++)
            y[l] = d0 * (float)(q[l] & 0x0f) - min0;
        for (int l = 0; l < 32; l++)
            y[32 + l] = d1 * (float)(q[l] >> 4) - min1;
        y += 64;
    }
}

static void dq_q5_k(const uint8_t *b, float *y) {
    float d = rdf16(b), dmin = rdf16(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + 48;
    for (int chunk = 0; chunk < 4; chunk++) {
        const uint8_t *q = qs + 32 * chunk;
        uint8_t u0 = (uint8_t)(1u << (2 * chunk)), u1 = (uint8_t)(2u << (2 * chunk));
        int sc0, m0, sc1, m1;
        k4_scale_min(scales, 2 * chunk, &sc0, &m0);
        k4_scale_min(scales, 2 * chunk + 1, &sc1, &m1);
        float d0 = d * (float)sc0, min0 = dmin * (float)m0;
        float d1 = d * (float)sc1, min1 = dmin * (float)m1;
        for (int l = 0; l < 32; l++) {
            y[l] = d0 * (float)((q[l] & 0x0f) + ((qh[l] & u0) ? 16 : 0)) - min0;
            y[32 + l] = d1 * (float)((q[l] >> 4) + ((qh[l] & u1) ? 16 : 0)) - min1;
        }
        y += 64;
    }
}

static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = rdf16(b + 208);
    /* Each half of 128 elements: 64 bytes of low nibbles (elements l and
     * l + 64 share byte l, l + 32 and l + 96 byte l + 32) and 32 bytes of
     * high bit pairs (element l + 32*k takes bits 2k, 2k+1 of byte l). */
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            int g = l / 16;
            int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[g] * (float)q1;
            y[l + 32] = d * (float)sc[g + 2] * (float)q2;
            y[l + 64] = d * (float)sc[g + 4] * (float)q3;
            y[l + 96] = d * (float)sc[g + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

static void dq_q8_k(const uint8_t *b, float *y) {
    uint32_t u = rd32(b);
    float d;
    memcpy(&d, &u, 4);
    for (int j = 0; j < 256; j++)
        y[j] = d * (float)(int8_t)b[4 + j];
}

/* ggml's non-linear 4-bit levels (kvalues_iq4nl). */
static const int8_t iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

static void dq_iq4_nibbles(const uint8_t *qs, float d, float *y) {
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)iq4_levels[qs[j] & 0x0f];
        y[j + 16] = d * (float)iq4_levels[qs[j] >> 4];
    }
}

static void dq_iq4_nl(const uint8_t *b, float *y) {
    dq_iq4_nibbles(b + 2, rdf16(b), y);
}

static void dq_iq4_xs(const uint8_t *b, float *y) {
    float d = rdf16(b);
    uint16_t scales_h = rd16(b + 2);
    const uint8_t *scales_l = b + 4, *qs = b + 8;
    for (int ib = 0; ib < 8; ib++) {
        int ls =
            ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((scales_h >> (2 * ib)) & 3) << 4);
        dq_iq4_nibbles(qs + 16 * ib, d * (float)(ls - 32), y + 32 * ib);
    }
}

typedef void (*block_decoder)(const uint8_t *block, float *out);

static block_decoder decoder_for(uint32_t type) {
    switch (type) {
    case Q35_GGML_Q4_0: return dq_q4_0;
    case Q35_GGML_Q4_1: return dq_q4_1;
    case Q35_GGML_Q5_0: return dq_q5_0;
    case Q35_GGML_Q5_1: return dq_q5_1;
    case Q35_GGML_Q8_0: return dq_q8_0;
    case Q35_GGML_Q8_1: return dq_q8_1;
    case Q35_GGML_Q2_K: return dq_q2_k;
    case Q35_GGML_Q3_K: return dq_q3_k;
    case Q35_GGML_Q4_K: return dq_q4_k;
    case Q35_GGML_Q5_K: return dq_q5_k;
    case Q35_GGML_Q6_K: return dq_q6_k;
    case Q35_GGML_Q8_K: return dq_q8_k;
    case Q35_GGML_IQ4_NL: return dq_iq4_nl;
    case Q35_GGML_IQ4_XS: return dq_iq4_xs;
    default: return NULL;
    }
}

int q35_ggml_dequantize(uint32_t type, const void *src, float *dst, int64_t n, q35_err *e) {
    const q35_ggml_type_info *t = q35_ggml_type_get(type);
    if (!t || !t->dequantizable)
        return q35_err_set(e, Q35_EINVAL, "cannot decode ggml type %s (%u)",
                           q35_ggml_type_name(type), type);
    if (n < 0 || n % t->block_elems != 0)
        return q35_err_set(e, Q35_EINVAL, "%lld elements are not whole %s blocks of %d",
                           (long long)n, t->name, t->block_elems);
    const uint8_t *p = src;
    switch (type) {
    case Q35_GGML_F32: memcpy(dst, src, (size_t)n * 4); return Q35_OK;
    case Q35_GGML_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = q35_f16_to_f32(rd16(p + 2 * i));
        return Q35_OK;
    case Q35_GGML_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = q35_bf16_to_f32(rd16(p + 2 * i));
        return Q35_OK;
    default: break;
    }
    block_decoder dec = decoder_for(type);
    int64_t nb = n / t->block_elems;
    for (int64_t i = 0; i < nb; i++)
        dec(p + i * t->block_bytes, dst + i * t->block_elems);
    return Q35_OK;
}

/* -------------------------------------------------------------- quantizing */

static void put_f16(uint8_t *p, float v) {
    uint16_t h = q35_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static void q_q8_0(const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(b, d);
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static void q_q4_0(const float *x, uint8_t *b) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(b, d);
    for (int j = 0; j < 16; j++) {
        /* ggml truncates toward zero through int8_t; the +8.5 makes it a
         * rounding, and the values stay in [0.5, 16.5] for finite x */
        float v0 = x[j] * id + 8.5f, v1 = x[j + 16] * id + 8.5f;
        int n0 = v0 >= 0.0f && v0 < 16.0f ? (int)v0 : v0 >= 16.0f ? 15 : 0;
        int n1 = v1 >= 0.0f && v1 < 16.0f ? (int)v1 : v1 >= 16.0f ? 15 : 0;
        b[2 + j] = (uint8_t)(n0 | (n1 << 4));
    }
}

int q35_ggml_quantize(uint32_t type, const float *src, void *dst, int64_t n, q35_err *e) {
    if (n < 0 || n % 32)
        return q35_err_set(e, Q35_EINVAL, "quantize: %lld elements is not whole blocks of 32",
                           (long long)n);
    uint8_t *out = dst;
    if (type == Q35_GGML_Q8_0) {
        for (int64_t i = 0; i < n / 32; i++)
            q_q8_0(src + 32 * i, out + 34 * i);
    } else if (type == Q35_GGML_Q4_0) {
        for (int64_t i = 0; i < n / 32; i++)
            q_q4_0(src + 32 * i, out + 18 * i);
    } else {
        return q35_err_set(e, Q35_EINVAL, "quantize: type %s is not Q8_0 or Q4_0",
                           q35_ggml_type_name(type));
    }
    return Q35_OK;
}
