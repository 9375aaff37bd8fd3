/* int8_x86_x16.h — the AVX-512 VNNI micro-kernels of the 16-row
 * interleaved Q8_0 / Q4_0 forms (kernels/repack_x16.h), for every token
 * count: included by int8_avx512.c after int8_x86_tiles.h (INLINE, UNROLL,
 * ahead).
 *
 * Per 32-element block the 16 rows' codes are 8 (Q8_0) or 4 (Q4_0, then
 * split by a mask and a shift) 512-bit loads, already in vpdpbusd's order:
 * no transposes, whatever T. Per token and block, 8 vpdpbusd against the
 * token's broadcast activation dwords sum the 16 rows' products in the 16
 * int32 lanes, starting from -off * S_b (off = 128 for Q8_0's unsigned
 * codes, 8 for Q4_0's nibbles; S_b the q8 row's block sum), which is the
 * definition's I_b exactly (microkernel.h); then one conversion, one
 * multiply (the 16 scales times d_b) and one FMA for the 16 rows:
 *     acc_r += float(I_b,r) * (dw_b,r * d_b)
 * in block order, the same operations for every (row, token) whatever R,
 * C, T or the thread split, so batched decode gives one-at-a-time's bits.
 *
 * The micro-kernel contract (microkernel.h) with w the group's start
 * (rows o .. o+15 of an x16 tensor, o % 16 == 0; mr = 16) and R <= 16 the
 * rows written: lanes past R are computed (zero or the next rows of the
 * same group) and not stored. */
#ifndef Q35_KERNELS_INT8_X86_X16_H
#define Q35_KERNELS_INT8_X86_X16_H

#include "kernels/int8_amx.h" /* Q35_AMX_X16_MIN_T_* */
#include "kernels/repack_x16.h"

#define X16_NT 8 /* tokens a call: 8 accumulators + 8 code vectors */
/* Blocks ahead that the codes are prefetched (all their lines, once per
 * block, not per token), and into which cache: with the weights streamed
 * from memory distances 8 to 64 and T0 / T1 measured within noise at
 * T = 1 and 4 (-D to try others). */
#ifndef X16_PF_HINT
#define X16_PF_HINT _MM_HINT_T0
#endif
#ifndef X16_PF_BLOCKS
#define X16_PF_BLOCKS 8

/* The tile's R rows (lanes) of its C accumulators into y[c * ldy + r]. */
INLINE void x16_store(const __m512 acc[X16_NT], int R, const int C, float *y, int64_t ldy) {
    const __mmask16 m = R >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << R) - 1);
    UNROLL for (int c = 0; c < C; c++) _mm512_mask_storeu_ps(y + c * ldy, m, acc[c]);
}

/* A micro-kernel whose tile TILE(n) must get the token count n as a
 * constant (its accumulators unroll into registers). */
#define X16_BY_C(TILE)                                                                             \
    switch (C) {                                                                                   \
    case 1: TILE(1); break;                                                                        \
    case 2: TILE(2); break;                                                                        \
    case 3: TILE(3); break;                                                                        \
    case 4: TILE(4); break;                                                                        \
    case 5: TILE(5); break;                                                                        \
    case 6: TILE(6); break;                                                                        \
    case 7: TILE(7); break;                                                                        \
    default: TILE(X16_NT); break;                                                                  \
    }
#endif

INLINE void x16_codes(const int q4, const uint8_t *cb, __m512i W[8]) {
    if (q4) {
        const __m512i m15 = _mm512_set1_epi8(15);
        UNROLL for (int k = 0; k < 4; k++) {
            __m512i v = _mm512_loadu_si512((const void *)(cb + 64 * k));
            W[k] = _mm512_and_si512(v, m15);
            W[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);
        }
    } else {
        UNROLL for (int k = 0; k < 8; k++) W[k] = _mm512_loadu_si512((const void *)(cb + 64 * k));
    }
}

/* The 16 rows' I_b against token block xa (S: the block's q8 sum): two
 * chains of four (integer sums: any grouping is the same I_b). */
INLINE __m512i x16_block_dot(const __m512i W[8], const uint8_t *xa, int32_t init) {
    __m512i p0 = _mm512_set1_epi32(init), p1 = _mm512_setzero_si512();
    UNROLL for (int g = 0; g < 8; g += 2) {
        int32_t a0, a1;
        memcpy(&a0, xa + 4 * g, 4);
        memcpy(&a1, xa + 4 * g + 4, 4);
        p0 = _mm512_dpbusd_epi32(p0, W[g], _mm512_set1_epi32(a0));
        p1 = _mm512_dpbusd_epi32(p1, W[g + 1], _mm512_set1_epi32(a1));
    }
    return _mm512_add_epi32(p0, p1);
}

INLINE void x16_tile(const int q4, const uint8_t *w, int R, const uint8_t *x, size_t ldx,
                     int64_t cols, float *y, int64_t ldy, const int C) {
    const int64_t nb = cols / 32;
    const size_t cbytes = q4 ? 256 : 512;
    const int32_t off = q4 ? 8 : 128;
    const uint8_t *codes = w + 32 * (size_t)nb;
    __m512 acc[X16_NT];
    const float *da[X16_NT];
    const int16_t *sa[X16_NT];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm512_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *cb = codes + (size_t)b * cbytes;
        UNROLL for (size_t l = 0; l < cbytes; l += 64)
            _mm_prefetch(ahead(cb, X16_PF_BLOCKS * cbytes + l), X16_PF_HINT);
        if ((b & 1) == 0) _mm_prefetch(ahead(w, 32 * (size_t)(b + 2 * X16_PF_BLOCKS)), _MM_HINT_T0);
        __m512i W[8];
        x16_codes(q4, cb, W);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 32 * b)));
        UNROLL for (int c = 0; c < C; c++) {
            const int32_t S = sa[c][2 * b] + sa[c][2 * b + 1];
            __m512i p = x16_block_dot(W, x + c * ldx + 32 * b, -off * S);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(da[c][b])), acc[c]);
        }
    }
    x16_store(acc, R, C, y, ldy);
}

/* ---- Q6_K: per block the 8 groups' 6-bit values rebuilt from the low
 * nibble vectors and the 2-bit vectors (a shift, a mask and one
 * ternary-logic or each), then per token two chains of four vpdpbusd, one
 * per 16-element half h, from -32 s_2b+h: the half sums H_h of the
 * definition; the float steps are AMX-INT8's (int8_amx.h):
 *     acc += float(H_0) * (mul_0 * d_b);  acc += float(H_1) * (mul_1 * d_b)
 * with mul_h = d * sc_h per row, as q35_kblock_scales forms it. */
INLINE void x16_q6_codes(const uint8_t *cb, __m512i W[8]) {
    const __m512i m15 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i h0 = _mm512_loadu_si512((const void *)(cb + 256));
    const __m512i h1 = _mm512_loadu_si512((const void *)(cb + 320));
    UNROLL for (int k = 0; k < 4; k++) {
        __m512i v = _mm512_loadu_si512((const void *)(cb + 64 * k));
        __m512i a = k == 3 ? _mm512_srli_epi16(h0, 2) : _mm512_slli_epi16(h0, 4 - 2 * k);
        __m512i b = k == 3 ? _mm512_srli_epi16(h1, 2) : _mm512_slli_epi16(h1, 4 - 2 * k);
        /* lo | (hi & 0x30) */
        W[k] = _mm512_ternarylogic_epi32(_mm512_and_si512(v, m15), a, m30, 0xF8);
        W[k + 4] =
            _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(v, 4), m15), b, m30, 0xF8);
    }
}

INLINE void x16_q6_tile(const uint8_t *w, int R, const uint8_t *x, size_t ldx, int64_t cols,
                        float *y, int64_t ldy, const int C) {
    const int64_t nsb = cols / 256;
    const uint8_t *codes = w + 288 * (size_t)nsb;
    __m512 acc[X16_NT];
    const float *da[X16_NT];
    const int16_t *sa[X16_NT];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm512_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    for (int64_t k = 0; k < nsb; k++) {
        const uint8_t *meta = w + 288 * (size_t)k;
        _mm_prefetch(ahead(meta, 288 * 2), _MM_HINT_T0);
        _mm_prefetch(ahead(meta, 288 * 2 + 64), _MM_HINT_T0);
        _mm_prefetch(ahead(meta, 288 * 2 + 128), _MM_HINT_T0);
        _mm_prefetch(ahead(meta, 288 * 2 + 192), _MM_HINT_T0);
        _mm_prefetch(ahead(meta, 288 * 2 + 256), _MM_HINT_T0);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(meta + 256)));
        for (int jj = 0; jj < 8; jj++) {
            const int64_t b = 8 * k + jj;
            const uint8_t *cb = codes + 384 * (size_t)b;
            UNROLL for (int l = 0; l < 384; l += 64)
                _mm_prefetch(ahead(cb, X16_PF_BLOCKS * 384 + l), X16_PF_HINT);
            __m512i W[8];
            x16_q6_codes(cb, W);
            const __m512 mul0 =
                _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                     _mm_loadu_si128((const __m128i *)(meta + 16 * (2 * jj))))));
            const __m512 mul1 =
                _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                     (const __m128i *)(meta + 16 * (2 * jj + 1))))));
            UNROLL for (int c = 0; c < C; c++) {
                const uint8_t *xa = x + c * ldx + 32 * b;
                __m512i p0 = _mm512_set1_epi32(-32 * sa[c][2 * b]);
                __m512i p1 = _mm512_set1_epi32(-32 * sa[c][2 * b + 1]);
                UNROLL for (int g = 0; g < 4; g++) {
                    int32_t a0, a1;
                    memcpy(&a0, xa + 4 * g, 4);
                    memcpy(&a1, xa + 16 + 4 * g, 4);
                    p0 = _mm512_dpbusd_epi32(p0, W[g], _mm512_set1_epi32(a0));
                    p1 = _mm512_dpbusd_epi32(p1, W[g + 4], _mm512_set1_epi32(a1));
                }
                const __m512 dab = _mm512_set1_ps(da[c][b]);
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_mul_ps(mul0, dab), acc[c]);
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_mul_ps(mul1, dab), acc[c]);
            }
        }
    }
    x16_store(acc, R, C, y, ldy);
}

static void uk_q6_K_x16(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
    (void)ldw;
#define Q6_TILE(n) x16_q6_tile(w, R, x, ldx, cols, y, ldy, n)
    X16_BY_C(Q6_TILE)
#undef Q6_TILE
}

/* ---- Q4_K: per super-block the 16 rows' 6-bit scales and mins decoded
 * in the lanes (q35_kblock_scales' fields, 4 a dword), per block the 8
 * groups' nibbles (one vector per group serves two blocks), then per token
 * 8 vpdpbusd from zero (I_b) and AMX-INT8's float steps (int8_amx.h):
 *     acc += float(I_b) * (mul_j * d_b);  acc -= sub_j * (d_b * S_b)
 * with mul_j = d * sc_j, sub_j = dmin * m_j per row. */
typedef struct x16_k4 {
    __m512i sc_lo, sc_hi, mn_lo, mn_hi; /* sc / m of sub-blocks 0-3, 4-7: byte j % 4 */
    __m512 d, dmin;
} x16_k4;

INLINE x16_k4 x16_k4_meta(const uint8_t *meta) {
    const __m512i u0 = _mm512_loadu_si512((const void *)meta);
    const __m512i u1 = _mm512_loadu_si512((const void *)(meta + 64));
    const __m512i u2 = _mm512_loadu_si512((const void *)(meta + 128));
    const __m512i m3f = _mm512_set1_epi32(0x3f3f3f3f), m0f = _mm512_set1_epi32(0x0f0f0f0f),
                  m03 = _mm512_set1_epi32(0x03030303);
    x16_k4 k;
    k.sc_lo = _mm512_and_si512(u0, m3f);
    k.mn_lo = _mm512_and_si512(u1, m3f);
    k.sc_hi =
        _mm512_or_si512(_mm512_and_si512(u2, m0f),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), m03), 4));
    k.mn_hi =
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m0f),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), m03), 4));
    k.d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(meta + 192)));
    k.dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(meta + 224)));
    return k;
}

/* byte j % 4 of v's lanes, as floats */
INLINE __m512 x16_k4_field(__m512i v, int j) {
    return _mm512_cvtepi32_ps(
        _mm512_and_si512(_mm512_srli_epi32(v, 8 * (j % 4)), _mm512_set1_epi32(0xff)));
}

INLINE __m512 x16_k4_mul(const x16_k4 *k, int j) {
    return _mm512_mul_ps(k->d, x16_k4_field(j < 4 ? k->sc_lo : k->sc_hi, j));
}
INLINE __m512 x16_k4_sub(const x16_k4 *k, int j) {
    return _mm512_mul_ps(k->dmin, x16_k4_field(j < 4 ? k->mn_lo : k->mn_hi, j));
}

INLINE void x16_q4k_tile(const uint8_t *w, int R, const uint8_t *x, size_t ldx, int64_t cols,
                         float *y, int64_t ldy, const int C) {
    const int64_t nsb = cols / 256;
    const uint8_t *codes = w + 256 * (size_t)nsb;
    const __m512i m15 = _mm512_set1_epi8(15);
    __m512 acc[X16_NT];
    const float *da[X16_NT];
    const int16_t *sa[X16_NT];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm512_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    for (int64_t k = 0; k < nsb; k++) {
        const uint8_t *meta = w + 256 * (size_t)k;
        UNROLL for (int l = 0; l < 256; l += 64) _mm_prefetch(ahead(meta, 512 + l), _MM_HINT_T0);
        const x16_k4 kk = x16_k4_meta(meta);
        for (int ch = 0; ch < 4; ch++) {
            const uint8_t *cv = codes + 2048 * (size_t)k + 512 * (size_t)ch;
            UNROLL for (int l = 0; l < 512; l += 64)
                _mm_prefetch(ahead(cv, X16_PF_BLOCKS * 256 + l), X16_PF_HINT);
            __m512i V[8];
            UNROLL for (int g = 0; g < 8; g++) V[g] =
                _mm512_loadu_si512((const void *)(cv + 64 * g));
            for (int h = 0; h < 2; h++) {
                const int j = 2 * ch + h;
                const int64_t b = 8 * k + j;
                __m512i W[8];
                UNROLL for (int g = 0; g < 8; g++) W[g] =
                    _mm512_and_si512(h ? _mm512_srli_epi16(V[g], 4) : V[g], m15);
                const __m512 mul = x16_k4_mul(&kk, j), sub = x16_k4_sub(&kk, j);
                UNROLL for (int c = 0; c < C; c++) {
                    __m512i p = x16_block_dot(W, x + c * ldx + 32 * b, 0);
                    const float dab = da[c][b];
                    const float dS = dab * (float)(sa[c][2 * b] + sa[c][2 * b + 1]);
                    acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                             _mm512_mul_ps(mul, _mm512_set1_ps(dab)), acc[c]);
                    acc[c] = _mm512_fnmadd_ps(sub, _mm512_set1_ps(dS), acc[c]);
                }
            }
        }
    }
    x16_store(acc, R, C, y, ldy);
}

static void uk_q4_K_x16(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
    (void)ldw;
#define Q4K_TILE(n) x16_q4k_tile(w, R, x, ldx, cols, y, ldy, n)
    X16_BY_C(Q4K_TILE)
#undef Q4K_TILE
}

#define Q0_TILE(n) x16_tile(q4, w, R, x, ldx, cols, y, ldy, n)

static void uk_q8_0_x16(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
    (void)ldw;
    const int q4 = 0;
    X16_BY_C(Q0_TILE)
}

static void uk_q4_0_x16(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
    (void)ldw;
    const int q4 = 1;
    X16_BY_C(Q0_TILE)
}

/* max_t (Q8_0, Q4_0, Q4_K): 0 (every T) where nothing else reads the form; the
 * AMX sets pass the count below which AMX-INT8 tiles take over
 * (q35_amx_i8_min_t). Q6_K: every T until AMX-INT8 reads its form
 * (int8_amx.h defines Q35_AMX_X16_MIN_T_Q6_K when it does); then, in the
 * sets that pass a count for Q8_0 (the AMX ones), below that count.
 * model/repack.c makes the layers' Q6_K forms only where AMX-INT8 reads
 * them (the head's in any case: it multiplies few tokens). */
#ifdef Q35_AMX_X16_MIN_T_Q6_K
#define X16_Q6K_MAX_T(amx) ((amx) ? Q35_AMX_X16_MIN_T_Q6_K - 1 : 0)
#else
#define X16_Q6K_MAX_T(amx) 0
#endif
#define Q35_X86_X16_ENTRIES(max_t8, max_t4, max_t4k)                                               \
    [Q35_DT_Q8_0_X16] = {Q35_X16_ROWS, X16_NT, uk_q8_0_x16, max_t8},                               \
    [Q35_DT_Q4_0_X16] = {Q35_X16_ROWS, X16_NT, uk_q4_0_x16, max_t4},                               \
    [Q35_DT_Q6_K_X16] = {Q35_X16_ROWS, X16_NT, uk_q6_K_x16, X16_Q6K_MAX_T(max_t8)},                \
    [Q35_DT_Q4_K_X16] = {Q35_X16_ROWS, X16_NT, uk_q4_K_x16, max_t4k},

#endif
