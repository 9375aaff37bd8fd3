/* int8_x86_x16_ymm.h — the AVX2 and AVX-VNNI micro-kernels of the 16-row
 * interleaved forms (kernels/repack_x16.h: Q8_0_X16, Q4_0_X16, Q4_K_X16,
 * Q6_K_X16) on 256-bit vectors, for every token count: included by
 * int8_avx2.c and int8_avxvnni.c after int8_x86_tiles.h (INLINE, UNROLL,
 * ahead, sum_pairs; DPBUSD where the set has vpdpbusd).
 *
 * Why: on AVX2 the many-token calls ran the packed panels of
 * int8_x86_panel.h, whose per-call transpose of every 8 rows (the pack)
 * read the weights from memory with the kernels idle: 17% of a Q8_0 pp512
 * (perf, Q35_KERNELS=avx2, 2 threads), 5% of Q4_K_M's. The x16 forms
 * already hold the weights in that order: each 64-byte vector of a group
 * is 4 bytes of each of 16 rows, so its two 32-byte halves are the 8-row
 * vectors the panels built, loaded as they are. A group runs as two
 * 8-row halves (rows 0-7 then 8-15; the second only where R > 8), each
 * half reading every other 32 bytes; the first half's pass prefetches the
 * lines both use.
 *
 * Per block, per token, the integer sums of the definition (microkernel.h)
 * build up in the 8 int32 lanes (one a row):
 *   AVX2 (vpmaddubsw: unsigned x signed bytes, pairs to int16, then
 *   vpmaddwd to int32):
 *     Q8_0: the codes back to signed w (^ 0x80), |w| times the broadcast
 *           activations with w's signs (vpsignb), each group to int32
 *           (2 * 128 * 127 = 32512 fits one int16 pair, not two);
 *     Q4_0 / Q4_K: nibbles times activations, the 8 groups summed in
 *           int16 (8 * 2 * 15 * 127 = 30480), one vpmaddwd; Q4_0's -8 S_b
 *           added in int32;
 *     Q6_K: 6-bit values (0..63) times activations, two groups summed in
 *           int16 (2 * 2 * 63 * 127 = 32004), each pair times its half's
 *           scale by vpmaddwd (the integer sc_h H_h of the definition),
 *           the offsets -32 (sc_0 s_2b + sc_1 s_2b+1) by one more;
 *   AVX-VNNI: vpdpbusd of the form's bytes as they are, from -128 S_b
 *     (Q8_0's unsigned codes), -8 S_b (Q4_0), 0 (Q4_K), -32 s_h (Q6_K's
 *     halves, scaled as floats as in int8_x86_x16.h).
 * then the float steps of int8_x86_x16.h's kernels (one conversion, one
 * multiply, one FMA per 8 rows; Q4_K also the mins' FNMA; Q6_K on AVX2
 * one FMA with d d_b), in block order, the same operations for every (row,
 * token) whatever R, C, T or the thread split: batched decode gives
 * one-at-a-time's bits, and with every scale 1 the definition's. */
#ifndef Q35_KERNELS_INT8_X86_X16_YMM_H
#define Q35_KERNELS_INT8_X86_X16_YMM_H

#include "kernels/repack_x16.h"

#define Y16_NT 4 /* tokens a call */
/* Blocks ahead that the codes are prefetched (int8_x86_x16.h's choice). */
#define Y16_PF_BLOCKS 8

/* Half h's rows (8h .. 8h+7, those < R) of the C accumulators. */
INLINE void y16_store(const __m256 acc[Y16_NT], int h, int R, const int C, float *y, int64_t ldy) {
    const int n = R - 8 * h >= 8 ? 8 : R - 8 * h;
    UNROLL for (int c = 0; c < C; c++) {
        if (n == 8)
            _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c]);
        else {
            float t[8];
            _mm256_storeu_ps(t, acc[c]);
            for (int r = 0; r < n; r++)
                y[c * ldy + 8 * h + r] = t[r];
        }
    }
}

INLINE __m256i y16_bcast(const uint8_t *p) {
    int32_t a;
    memcpy(&a, p, 4);
    return _mm256_set1_epi32(a);
}

/* Half h of the group's 64-byte vector at p. */
INLINE __m256i y16_load(const uint8_t *p, const int h) {
    return _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * h));
}

/* A group is two streams, its front (scales or meta) at [0, lo) and its
 * codes at [lo, 16 ldw); a prefetch `off` bytes into the group that runs
 * past its stream's end `hi` goes on in the same stream of the next group
 * (16 ldw bytes on), so that a group's first blocks are not cold. */
INLINE void y16_pf(const uint8_t *w, size_t ldw, size_t lo, size_t hi, size_t off) {
    const size_t t = off < hi ? off : Q35_X16_ROWS * ldw + lo + (off - hi);
    _mm_prefetch(ahead(w, t), _MM_HINT_T0);
}

/* ---- Q8_0 and Q4_0 */
INLINE void y16_q0_half(const int q4, const uint8_t *w, size_t ldw, const int h, int R,
                        const uint8_t *x, size_t ldx, int64_t cols, float *y, int64_t ldy,
                        const int C) {
    const int64_t nb = cols / 32;
    const size_t cbytes = q4 ? 256 : 512;
    const uint8_t *codes = w + 32 * (size_t)nb;
    __m256 acc[Y16_NT];
    const float *da[Y16_NT];
    const int16_t *sa[Y16_NT];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm256_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    const __m256i m15 = _mm256_set1_epi8(15);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *cb = codes + (size_t)b * cbytes;
        if (h == 0) {
            const size_t G = Q35_X16_ROWS * ldw, F = 32 * (size_t)nb;
            UNROLL for (size_t l = 0; l < cbytes; l += 64)
                y16_pf(w, ldw, F, G, F + (size_t)(b + Y16_PF_BLOCKS) * cbytes + l);
            if ((b & 1) == 0) y16_pf(w, ldw, 0, F, 32 * (size_t)(b + 2 * Y16_PF_BLOCKS));
        }
        const __m256 dw =
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 32 * b + 16 * h)));
        __m256i p[Y16_NT];
        if (!q4) {
#ifdef DPBUSD
            UNROLL for (int c = 0; c < C; c++) p[c] =
                _mm256_set1_epi32(-128 * (sa[c][2 * b] + sa[c][2 * b + 1]));
            UNROLL for (int g = 0; g < 8; g++) {
                const __m256i u = y16_load(cb + 64 * g, h);
                UNROLL for (int c = 0; c < C; c++) p[c] =
                    DPBUSD(p[c], u, y16_bcast(x + c * ldx + 32 * b + 4 * g));
            }
#else
            const __m256i sgn = _mm256_set1_epi8((char)0x80);
            UNROLL for (int c = 0; c < C; c++) p[c] = _mm256_setzero_si256();
            UNROLL for (int g = 0; g < 8; g++) {
                const __m256i s = _mm256_xor_si256(y16_load(cb + 64 * g, h), sgn);
                const __m256i u = _mm256_sign_epi8(s, s);
                UNROLL for (int c = 0; c < C; c++) {
                    const __m256i a = y16_bcast(x + c * ldx + 32 * b + 4 * g);
                    p[c] = _mm256_add_epi32(
                        p[c], sum_pairs(_mm256_maddubs_epi16(u, _mm256_sign_epi8(a, s))));
                }
            }
#endif
        } else {
#ifdef DPBUSD
            UNROLL for (int c = 0; c < C; c++) p[c] =
                _mm256_set1_epi32(-8 * (sa[c][2 * b] + sa[c][2 * b + 1]));
            UNROLL for (int k = 0; k < 4; k++) {
                const __m256i v = y16_load(cb + 64 * k, h);
                const __m256i lo = _mm256_and_si256(v, m15);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
                UNROLL for (int c = 0; c < C; c++) {
                    const uint8_t *xa = x + c * ldx + 32 * b;
                    p[c] = DPBUSD(p[c], lo, y16_bcast(xa + 4 * k));
                    p[c] = DPBUSD(p[c], hi, y16_bcast(xa + 16 + 4 * k));
                }
            }
#else
            __m256i s16[Y16_NT];
            UNROLL for (int c = 0; c < C; c++) s16[c] = _mm256_setzero_si256();
            UNROLL for (int k = 0; k < 4; k++) {
                const __m256i v = y16_load(cb + 64 * k, h);
                const __m256i lo = _mm256_and_si256(v, m15);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
                UNROLL for (int c = 0; c < C; c++) {
                    const uint8_t *xa = x + c * ldx + 32 * b;
                    s16[c] = _mm256_add_epi16(
                        s16[c],
                        _mm256_add_epi16(_mm256_maddubs_epi16(lo, y16_bcast(xa + 4 * k)),
                                         _mm256_maddubs_epi16(hi, y16_bcast(xa + 16 + 4 * k))));
                }
            }
            UNROLL for (int c = 0; c < C; c++) p[c] = _mm256_add_epi32(
                sum_pairs(s16[c]), _mm256_set1_epi32(-8 * (sa[c][2 * b] + sa[c][2 * b + 1])));
#endif
        }
        UNROLL for (int c = 0; c < C; c++) acc[c] = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(p[c]), _mm256_mul_ps(dw, _mm256_set1_ps(da[c][b])), acc[c]);
    }
    y16_store(acc, h, R, C, y, ldy);
}

/* ---- Q4_K: per super-block the half's 8 rows' d sc_j and dmin m_j as
 * float vectors (int8_x86_x16.h's x16_k4_meta on 8 lanes, kept on the
 * stack for the 8 blocks), per block the 8 groups' nibbles (each 64-byte
 * chunk vector serves blocks 2c and 2c+1). */
INLINE void y16_k4_meta(const uint8_t *meta, const int h, __m256 mul[8], __m256 sub[8]) {
    const __m256i u0 = y16_load(meta, h), u1 = y16_load(meta + 64, h), u2 = y16_load(meta + 128, h);
    const __m256i m3f = _mm256_set1_epi32(0x3f3f3f3f), m0f = _mm256_set1_epi32(0x0f0f0f0f),
                  m03 = _mm256_set1_epi32(0x03030303), mff = _mm256_set1_epi32(0xff);
    const __m256i sc_lo = _mm256_and_si256(u0, m3f), mn_lo = _mm256_and_si256(u1, m3f);
    const __m256i sc_hi =
        _mm256_or_si256(_mm256_and_si256(u2, m0f),
                        _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u0, 6), m03), 4));
    const __m256i mn_hi =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 4), m0f),
                        _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u1, 6), m03), 4));
    const __m256 d =
        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(meta + 192 + 16 * h)));
    const __m256 dmin =
        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(meta + 224 + 16 * h)));
    UNROLL for (int j = 0; j < 8; j++) {
        const __m256i sc = j < 4 ? sc_lo : sc_hi, mn = j < 4 ? mn_lo : mn_hi;
        mul[j] = _mm256_mul_ps(
            d, _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(sc, 8 * (j % 4)), mff)));
        sub[j] = _mm256_mul_ps(
            dmin, _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(mn, 8 * (j % 4)), mff)));
    }
}

INLINE void y16_q4k_half(const uint8_t *w, size_t ldw, const int h, int R, const uint8_t *x,
                         size_t ldx, int64_t cols, float *y, int64_t ldy, const int C) {
    const int64_t nsb = cols / 256;
    const uint8_t *codes = w + 256 * (size_t)nsb;
    const __m256i m15 = _mm256_set1_epi8(15);
    __m256 acc[Y16_NT];
    const float *da[Y16_NT];
    const int16_t *sa[Y16_NT];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm256_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    for (int64_t k = 0; k < nsb; k++) {
        const uint8_t *meta = w + 256 * (size_t)k;
        if (h == 0)
            UNROLL for (int l = 0; l < 256; l += 64)
                _mm_prefetch(ahead(meta, 512 + l), _MM_HINT_T0);
        __m256 mul[8], sub[8];
        y16_k4_meta(meta, h, mul, sub);
        for (int ch = 0; ch < 4; ch++) {
            const uint8_t *cv = codes + 2048 * (size_t)k + 512 * (size_t)ch;
            if (h == 0)
                UNROLL for (size_t l = 0; l < 512; l += 64)
                    y16_pf(w, ldw, 256 * (size_t)nsb, Q35_X16_ROWS * ldw,
                           (size_t)(cv - w) + Y16_PF_BLOCKS * 256 + l);
            UNROLL for (int e = 0; e < 2; e++) {
                const int j = 2 * ch + e;
                const int64_t b = 8 * k + j;
                __m256i p[Y16_NT];
#ifdef DPBUSD
                UNROLL for (int c = 0; c < C; c++) p[c] = _mm256_setzero_si256();
#else
                __m256i s16[Y16_NT];
                UNROLL for (int c = 0; c < C; c++) s16[c] = _mm256_setzero_si256();
#endif
                UNROLL for (int g = 0; g < 8; g++) {
                    const __m256i v = y16_load(cv + 64 * g, h);
                    const __m256i W = _mm256_and_si256(e ? _mm256_srli_epi16(v, 4) : v, m15);
                    UNROLL for (int c = 0; c < C; c++) {
                        const __m256i a = y16_bcast(x + c * ldx + 32 * b + 4 * g);
#ifdef DPBUSD
                        p[c] = DPBUSD(p[c], W, a);
#else
                        s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(W, a));
#endif
                    }
                }
                UNROLL for (int c = 0; c < C; c++) {
#ifndef DPBUSD
                    p[c] = sum_pairs(s16[c]);
#endif
                    const float dab = da[c][b];
                    const float dS = dab * (float)(sa[c][2 * b] + sa[c][2 * b + 1]);
                    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p[c]),
                                             _mm256_mul_ps(mul[j], _mm256_set1_ps(dab)), acc[c]);
                    acc[c] = _mm256_fnmadd_ps(sub[j], _mm256_set1_ps(dS), acc[c]);
                }
            }
        }
    }
    y16_store(acc, h, R, C, y, ldy);
}

/* ---- Q6_K: the 6-bit values rebuilt from the low nibble vectors and the
 * 2-bit vectors (int8_x86_x16.h's x16_q6_codes on 32 bytes). */
INLINE void y16_q6_codes(const uint8_t *cb, const int h, __m256i W[8]) {
    const __m256i m15 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    const __m256i h0 = y16_load(cb + 256, h), h1 = y16_load(cb + 320, h);
    UNROLL for (int k = 0; k < 4; k++) {
        const __m256i v = y16_load(cb + 64 * k, h);
        const __m256i a = k == 3 ? _mm256_srli_epi16(h0, 2) : _mm256_slli_epi16(h0, 4 - 2 * k);
        const __m256i b = k == 3 ? _mm256_srli_epi16(h1, 2) : _mm256_slli_epi16(h1, 4 - 2 * k);
        W[k] = _mm256_or_si256(_mm256_and_si256(v, m15), _mm256_and_si256(a, m30));
        W[k + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m15),
                                   _mm256_and_si256(b, m30));
    }
}

/* 8 int8 at p, sign-extended: one per row lane */
INLINE __m256i y16_i8x8(const uint8_t *p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
}

INLINE void y16_q6_half(const uint8_t *w, size_t ldw, const int h, int R, const uint8_t *x,
                        size_t ldx, int64_t cols, float *y, int64_t ldy, const int C) {
    const int64_t nsb = cols / 256;
    const uint8_t *codes = w + 288 * (size_t)nsb;
    __m256 acc[Y16_NT];
    const float *da[Y16_NT];
    const int16_t *sa[Y16_NT];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm256_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    for (int64_t k = 0; k < nsb; k++) {
        const uint8_t *meta = w + 288 * (size_t)k;
        if (h == 0)
            UNROLL for (int l = 0; l < 320; l += 64)
                _mm_prefetch(ahead(meta, 576 + l), _MM_HINT_T0);
        const __m256 d =
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(meta + 256 + 16 * h)));
        for (int jj = 0; jj < 8; jj++) {
            const int64_t b = 8 * k + jj;
            const uint8_t *cb = codes + 384 * (size_t)b;
            if (h == 0)
                UNROLL for (size_t l = 0; l < 384; l += 64)
                    y16_pf(w, ldw, 288 * (size_t)nsb, Q35_X16_ROWS * ldw,
                           (size_t)(cb - w) + Y16_PF_BLOCKS * 384 + l);
            __m256i W[8];
            y16_q6_codes(cb, h, W);
            const __m256i sc0 = y16_i8x8(meta + 16 * (2 * jj) + 8 * h);
            const __m256i sc1 = y16_i8x8(meta + 16 * (2 * jj + 1) + 8 * h);
#ifdef DPBUSD
            const __m256 mul0 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc0));
            const __m256 mul1 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc1));
            UNROLL for (int c = 0; c < C; c++) {
                const uint8_t *xa = x + c * ldx + 32 * b;
                __m256i p0 = _mm256_set1_epi32(-32 * sa[c][2 * b]);
                __m256i p1 = _mm256_set1_epi32(-32 * sa[c][2 * b + 1]);
                UNROLL for (int g = 0; g < 4; g++) {
                    p0 = DPBUSD(p0, W[g], y16_bcast(xa + 4 * g));
                    p1 = DPBUSD(p1, W[g + 4], y16_bcast(xa + 16 + 4 * g));
                }
                const __m256 dab = _mm256_set1_ps(da[c][b]);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_mul_ps(mul0, dab), acc[c]);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_mul_ps(mul1, dab), acc[c]);
            }
#else
            /* the scales in both int16 halves of each row's dword, and the
             * offsets' multipliers (-32 sc_0, -32 sc_1) for the half sums */
            const __m256i s0 = _mm256_or_si256(_mm256_and_si256(sc0, _mm256_set1_epi32(0xffff)),
                                               _mm256_slli_epi32(sc0, 16));
            const __m256i s1 = _mm256_or_si256(_mm256_and_si256(sc1, _mm256_set1_epi32(0xffff)),
                                               _mm256_slli_epi32(sc1, 16));
            const __m256i z = _mm256_setzero_si256();
            const __m256i off = _mm256_or_si256(
                _mm256_and_si256(_mm256_sub_epi32(z, _mm256_slli_epi32(sc0, 5)),
                                 _mm256_set1_epi32(0xffff)),
                _mm256_slli_epi32(_mm256_sub_epi32(z, _mm256_slli_epi32(sc1, 5)), 16));
            UNROLL for (int c = 0; c < C; c++) {
                const uint8_t *xa = x + c * ldx + 32 * b;
                int32_t s2;
                memcpy(&s2, sa[c] + 2 * b, 4);
                __m256i p = _mm256_madd_epi16(off, _mm256_set1_epi32(s2));
                UNROLL for (int q = 0; q < 4; q++) { /* groups 2q, 2q+1: half q / 2 */
                    const __m256i s16 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(W[2 * q], y16_bcast(xa + 8 * q)),
                        _mm256_maddubs_epi16(W[2 * q + 1], y16_bcast(xa + 8 * q + 4)));
                    p = _mm256_add_epi32(p, _mm256_madd_epi16(s16, q < 2 ? s0 : s1));
                }
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                         _mm256_mul_ps(d, _mm256_set1_ps(da[c][b])), acc[c]);
            }
#endif
        }
    }
    y16_store(acc, h, R, C, y, ldy);
}

/* A micro-kernel over the group's halves, each with C a constant. */
#define Y16_BY_C(HALF)                                                                             \
    for (int h = 0; h < 2 && 8 * h < R; h++) {                                                     \
        switch (C) {                                                                               \
        case 1: HALF(h, 1); break;                                                                 \
        case 2: HALF(h, 2); break;                                                                 \
        case 3: HALF(h, 3); break;                                                                 \
        default: HALF(h, Y16_NT); break;                                                           \
        }                                                                                          \
    }

static void uk_q8_0_y16(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
#define Q8_HALF(hh, n) y16_q0_half(0, w, ldw, hh, R, x, ldx, cols, y, ldy, n)
    Y16_BY_C(Q8_HALF)
#undef Q8_HALF
}

static void uk_q4_0_y16(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
#define Q4_HALF(hh, n) y16_q0_half(1, w, ldw, hh, R, x, ldx, cols, y, ldy, n)
    Y16_BY_C(Q4_HALF)
#undef Q4_HALF
}

static void uk_q4_K_y16(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
#define Q4K_HALF(hh, n) y16_q4k_half(w, ldw, hh, R, x, ldx, cols, y, ldy, n)
    Y16_BY_C(Q4K_HALF)
#undef Q4K_HALF
}

static void uk_q6_K_y16(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx, int C,
                        int64_t cols, float *y, int64_t ldy) {
#define Q6_HALF(hh, n) y16_q6_half(w, ldw, hh, R, x, ldx, cols, y, ldy, n)
    Y16_BY_C(Q6_HALF)
#undef Q6_HALF
}

/* ---- many tokens: the packed panels of int8_x86_panel.h, packed from
 * the form. Their kernels do fewer operations per token than the ones
 * above (the codes already split into 8 vectors a block and the scales as
 * floats), which pays where a group is reused by many token tiles; their
 * pack from the form is loads, masks and stores (no transposes), of one
 * 16-row group: two 8-row panels one after the other. Rows past R within
 * the group are packed and computed, not stored. */
#define Y16_PANEL(name, bytes1, kernel1)                                                           \
    static size_t y16_panel_bytes_##name(int64_t cols) {                                           \
        return 2 * bytes1(cols);                                                                   \
    }                                                                                              \
    static void y16_panel_##name(const uint8_t *pk, int R, const uint8_t *x, size_t ldx, int C,    \
                                 int64_t cols, float *y, int64_t ldy) {                            \
        kernel1(pk, R < 8 ? R : 8, x, ldx, C, cols, y, ldy);                                       \
        if (R > 8) kernel1(pk + bytes1(cols), R - 8, x, ldx, C, cols, y + 8, ldy);                 \
    }

/* The same n bytes of the next group (16 rows of ldw bytes on), into L2,
 * where the driver's next pack finds them (int8_x86_panel.h's PACK_NEXT:
 * the packs read the weights from memory, the kernels only the copy). The
 * scales and meta, the rest of each group, come with the codes' misses. */
#define Y16_PACK_NEXT(p, n, ldw)                                                                   \
    for (size_t l_ = 0; l_ < (n); l_ += 64)                                                        \
    _mm_prefetch(ahead((p) + l_, Q35_X16_ROWS * (ldw)), _MM_HINT_T1)

INLINE void y16_store_v(uint8_t *o, __m256i v) {
    _mm256_storeu_si256((__m256i *)(void *)o, v);
}

/* the half's 8 f16 scales at p as floats at o */
INLINE void y16_store_f16(uint8_t *o, const uint8_t *p) {
    _mm256_storeu_ps((float *)(void *)o,
                     _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p)));
}

static void y16_pack_q8_0(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out) {
    const int64_t nb = cols / 32;
    const uint8_t *codes = w + 32 * (size_t)nb;
    const __m256i sgn = _mm256_set1_epi8((char)0x80);
    for (int h = 0; h < 2 && 8 * h < R; h++) {
        uint8_t *o = out + (size_t)h * panel_bytes_q8_0(cols);
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *cb = codes + 512 * (size_t)b;
            uint8_t *ob = o + 544 * (size_t)b;
            if (h == 0) Y16_PACK_NEXT(cb, 512, ldw);
            UNROLL for (int g = 0; g < 8; g++) {
                const __m256i sv = _mm256_xor_si256(y16_load(cb + 64 * g, h), sgn);
                y16_store_v(ob + 32 * g, _mm256_sign_epi8(sv, sv));
                y16_store_v(ob + 256 + 32 * g, sv);
            }
            y16_store_f16(ob + 512, w + 32 * b + 16 * h);
        }
    }
}

static void y16_pack_q4_0(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out) {
    const int64_t nb = cols / 32;
    const uint8_t *codes = w + 32 * (size_t)nb;
    const __m256i m15 = _mm256_set1_epi8(15);
    for (int h = 0; h < 2 && 8 * h < R; h++) {
        uint8_t *o = out + (size_t)h * panel_bytes_q4_0(cols);
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *cb = codes + 256 * (size_t)b;
            uint8_t *ob = o + 288 * (size_t)b;
            if (h == 0) Y16_PACK_NEXT(cb, 256, ldw);
            UNROLL for (int k = 0; k < 4; k++) {
                const __m256i v = y16_load(cb + 64 * k, h);
                y16_store_v(ob + 32 * k, _mm256_and_si256(v, m15));
                y16_store_v(ob + 32 * (k + 4), _mm256_and_si256(_mm256_srli_epi16(v, 4), m15));
            }
            y16_store_f16(ob + 256, w + 32 * b + 16 * h);
        }
    }
}

static void y16_pack_q4_K(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out) {
    const int64_t nsb = cols / 256;
    const uint8_t *codes = w + 256 * (size_t)nsb;
    const __m256i m15 = _mm256_set1_epi8(15);
    for (int h = 0; h < 2 && 8 * h < R; h++) {
        uint8_t *o = out + (size_t)h * panel_bytes_q4_K(cols);
        for (int64_t k = 0; k < nsb; k++) {
            __m256 mul[8], sub[8];
            y16_k4_meta(w + 256 * (size_t)k, h, mul, sub);
            for (int ch = 0; ch < 4; ch++) {
                const uint8_t *cv = codes + 2048 * (size_t)k + 512 * (size_t)ch;
                uint8_t *o0 = o + 320 * (size_t)(8 * k + 2 * ch), *o1 = o0 + 320;
                if (h == 0) Y16_PACK_NEXT(cv, 512, ldw);
                UNROLL for (int g = 0; g < 8; g++) {
                    const __m256i v = y16_load(cv + 64 * g, h);
                    y16_store_v(o0 + 32 * g, _mm256_and_si256(v, m15));
                    y16_store_v(o1 + 32 * g, _mm256_and_si256(_mm256_srli_epi16(v, 4), m15));
                }
                _mm256_storeu_ps((float *)(void *)(o0 + 256), mul[2 * ch]);
                _mm256_storeu_ps((float *)(void *)(o0 + 288), sub[2 * ch]);
                _mm256_storeu_ps((float *)(void *)(o1 + 256), mul[2 * ch + 1]);
                _mm256_storeu_ps((float *)(void *)(o1 + 288), sub[2 * ch + 1]);
            }
        }
    }
}

static void y16_pack_q6_K(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out) {
    const int64_t nsb = cols / 256;
    const uint8_t *codes = w + 288 * (size_t)nsb;
    const __m256i z = _mm256_setzero_si256(), lo16 = _mm256_set1_epi32(0xffff);
    for (int h = 0; h < 2 && 8 * h < R; h++) {
        uint8_t *o = out + (size_t)h * panel_bytes_q6_K(cols);
        for (int64_t k = 0; k < nsb; k++) {
            const uint8_t *meta = w + 288 * (size_t)k;
            const __m256 d = _mm256_cvtph_ps(
                _mm_loadu_si128((const __m128i *)(const void *)(meta + 256 + 16 * h)));
            for (int jj = 0; jj < 8; jj++) {
                const int64_t b = 8 * k + jj;
                uint8_t *ob = o + 384 * (size_t)b;
                if (h == 0) Y16_PACK_NEXT(codes + 384 * (size_t)b, 384, ldw);
                __m256i W[8];
                y16_q6_codes(codes + 384 * (size_t)b, h, W);
                UNROLL for (int g = 0; g < 8; g++) y16_store_v(ob + 32 * g, W[g]);
                const __m256i sc0 = y16_i8x8(meta + 16 * (2 * jj) + 8 * h);
                const __m256i sc1 = y16_i8x8(meta + 16 * (2 * jj + 1) + 8 * h);
                y16_store_v(ob + 256, _mm256_or_si256(_mm256_and_si256(sc0, lo16),
                                                      _mm256_slli_epi32(sc0, 16)));
                y16_store_v(ob + 288, _mm256_or_si256(_mm256_and_si256(sc1, lo16),
                                                      _mm256_slli_epi32(sc1, 16)));
                y16_store_v(
                    ob + 320,
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_sub_epi32(z, _mm256_slli_epi32(sc0, 5)), lo16),
                        _mm256_slli_epi32(_mm256_sub_epi32(z, _mm256_slli_epi32(sc1, 5)), 16)));
                _mm256_storeu_ps((float *)(void *)(ob + 352), d);
            }
        }
    }
}

Y16_PANEL(q8_0, panel_bytes_q8_0, panel_q8_0)
Y16_PANEL(q4_0, panel_bytes_q4_0, panel_q4_0)
Y16_PANEL(q4_K, panel_bytes_q4_K, panel_q4_K)
Y16_PANEL(q6_K, panel_bytes_q6_K, panel_q6_K)

/* The micro-kernels below the panels' min_t (Q8_0, Q4_0, Q4_K, Q6_K), in
 * the set's .mk table. */
#define Q35_X86_X16_YMM_ENTRIES(t8, t40, t4k, t6k)                                                 \
    [Q35_DT_Q8_0_X16] = {Q35_X16_ROWS, Y16_NT, uk_q8_0_y16, (t8)-1},                               \
    [Q35_DT_Q4_0_X16] = {Q35_X16_ROWS, Y16_NT, uk_q4_0_y16, (t40)-1},                              \
    [Q35_DT_Q6_K_X16] = {Q35_X16_ROWS, Y16_NT, uk_q6_K_y16, (t6k)-1},                              \
    [Q35_DT_Q4_K_X16] = {Q35_X16_ROWS, Y16_NT, uk_q4_K_y16, (t4k)-1},

/* The panels from min_t, entries of the set's .panel table (with
 * Q35_X86_PANEL_FILE's). */
#define Q35_X86_X16_YMM_PANELS(t8, t40, t4k, t6k)                                                  \
    [Q35_DT_Q8_0_X16] = {Q35_X16_ROWS,         PANEL_NT,      t8,                                  \
                         y16_panel_bytes_q8_0, y16_pack_q8_0, y16_panel_q8_0},                     \
    [Q35_DT_Q4_0_X16] = {Q35_X16_ROWS,         PANEL_NT_Q4,   t40,                                 \
                         y16_panel_bytes_q4_0, y16_pack_q4_0, y16_panel_q4_0},                     \
    [Q35_DT_Q4_K_X16] = {Q35_X16_ROWS,         PANEL_NT_Q4,   t4k,                                 \
                         y16_panel_bytes_q4_K, y16_pack_q4_K, y16_panel_q4_K},                     \
    [Q35_DT_Q6_K_X16] = {Q35_X16_ROWS,         PANEL_NT,      t6k,                                 \
                         y16_panel_bytes_q6_K, y16_pack_q6_K, y16_panel_q6_K},

#endif
