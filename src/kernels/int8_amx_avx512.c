/* int8_amx_avx512.c — the integer matmul path on AMX-INT8 tiles (see
 * int8_amx.h for what it computes). Compiled with the AVX-512 flags; the
 * tile functions carry their own target attribute and run only after
 * q35_amx_i8_available() has checked the CPU and the OS permission.
 *
 * Tiles (TDPBSSD, signed x signed bytes): A = 16 tokens x K bytes read in
 * place from the q8 rows (stride ldx), B = K/4 rows x 64 bytes of weights
 * (row k4 holds columns 4k4 .. 4k4+3 of each of 16 weight rows), C = 16
 * tokens x 16 weight rows of int32: a C row is 16 consecutive outputs of
 * one token, as y is laid out. K = 32 (one block; Q6_K: 16, one half).
 * Tiles 0, 1, 6, 7 C (four products in flight, see tile_blocks), 2-3 A,
 * 4-5 B.
 *
 * The float work per block and C row (token) is one conversion, one
 * multiply (weight scales x the token's scale) and one FMA (Q4_K: one
 * more for the mins, Q6_K: twice over for its halves) on 16 lanes: integer
 * sums cannot run past a block, whose scales differ per weight row and per
 * token. Measured ([1024 x 1024] Q4_0, T = 512, 1 thread, variants with
 * parts left out): tile loads + products ~25 cycles a block and 16 x 16
 * tile, tile stores ~13, the float work ~27, and they barely overlap. */
/* The release build's -O2 leaves this file's loops ~25% slower for Q4_K,
 * ~8% for Q6_K and ~4% for Q4_0 than -O3 ([1024 x 3584], T = 74 and 512,
 * 1 thread, bench_int8_amx; none of -funswitch-loops, -fpeel-loops,
 * -fsplit-loops/-paths, -fipa-cp-clone, -floop-unroll-and-jam alone gives
 * it): GCC's O3 for this file only. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/int8_amx.h"
#include "kernels/matmul_amx.h"
#include "kernels/microkernel.h"
#include "kernels/quant_block_avx512.h"

#define BTILE 512 /* bytes of one block's weight tile: 8 rows x 64 */
#define SCB 32    /* floats of scales per (weight tile, block): 2 x 16 */
#define GROUP 8   /* blocks unpacked at a time: one k-quant super-block */
/* Unpacked weights per panel (reread from L2 by every 16-token tile), at
 * most PANEL_TILES weight tiles: while a panel's products run, the next
 * panel's weights come into L2 (matmul_dt), so the first panel of a call
 * is the only one whose unpack waits on memory. bench_int8_amx FLUSH_MB=128
 * T=74 1 thread, x16 form, 16 tiles without the prefetch -> 4 with it:
 * Q4_0 [256 x 1024] 127-142 -> 163-170, [896 x 1024] 178-194 -> 196-213,
 * Q8_0 [256 x 3584] 150-160 -> 169-174 GMAC/s (8 tiles: in between). */
#define PANEL_BYTES (256 * 1024)
#define PANEL_TILES 4

#define UNROLL16 _Pragma("GCC unroll 16")
#define PF_AHEAD 8 /* blocks: 16 or 24 measured no better */

bool q35_amx_i8_available(void) {
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    if (!q35_cpu_has_avx512_set(&f) || !f.amx_tile || !f.amx_int8) return false;
    return q35_amx_enable();
}

/* Same-process A/B (tests/kernels/bench_int8_amx.c, [1024, 3584] from
 * cache, 1 thread, G multiply-adds per CPU-second, float / VNNI / AMX-INT8):
 * Q8_0 T=4 51 / 39 / 29, T=6 44 / 41 / 53, T=8 51 / 40 / 59; Q4_0 T=6
 * 46 / 45 / 51; Q4_K T=6 41 / 44 / 45, T=8 47 / 43 / 52; Q6_K T=6
 * 33 / 38 / 33, T=8 39 / 37 / 44. From 16 tokens AMX-INT8 is 2x either. */
int q35_amx_i8_min_t(q35_dtype dt) {
    switch (dt) {
    case Q35_DT_Q8_0:
    case Q35_DT_Q4_0:
    case Q35_DT_Q4_K: return 6;
    case Q35_DT_Q6_K: return 8;
    case Q35_DT_Q8_0_X16: return Q35_AMX_X16_MIN_T_Q8_0;
    case Q35_DT_Q4_0_X16: return Q35_AMX_X16_MIN_T_Q4_0;
    case Q35_DT_Q4_K_X16: return Q35_AMX_X16_MIN_T_Q4_K;
    case Q35_DT_Q6_K_X16: return Q35_AMX_X16_MIN_T_Q6_K;
    default: return 0;
    }
}

/* In-register transpose of 16 x 16 32-bit lanes (four butterfly stages). */
static inline void transpose16(__m512i r[16]) {
    for (int b = 8; b >= 1; b /= 2) {
        int lo_idx[16], hi_idx[16];
        for (int c = 0; c < 16; c++) {
            lo_idx[c] = (c & b) ? 16 + c - b : c;
            hi_idx[c] = (c & b) ? 16 + c : c + b;
        }
        __m512i il = _mm512_loadu_si512(lo_idx), ih = _mm512_loadu_si512(hi_idx);
        for (int i = 0; i < 16; i++) {
            if (i & b) continue;
            __m512i a = r[i], c = r[i + b];
            r[i] = _mm512_permutex2var_epi32(a, il, c);
            r[i + b] = _mm512_permutex2var_epi32(a, ih, c);
        }
    }
}

/* 16 rows of 32 bytes (row m at src + m * ss) -> one block's weight tile:
 * row k4 = dword k4 of rows 0..15. Two 8 x 8 dword transposes side by side
 * in the 256-bit halves (z_i = rows i, i + 4; z_4+i = rows 8 + i, 12 + i),
 * whose 128-bit pieces the last step puts in row order. */
static inline __attribute__((always_inline)) void vnni_regs(const uint8_t *src, size_t ss,
                                                            __m512i out[8]) {
    __m512i z[8], t[8], u[8];
    for (int i = 0; i < 4; i++) {
        z[i] = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(src + i * ss))),
            _mm256_loadu_si256((const __m256i *)(src + (i + 4) * ss)), 1);
        z[4 + i] = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(src + (8 + i) * ss))),
            _mm256_loadu_si256((const __m256i *)(src + (12 + i) * ss)), 1);
    }
    for (int h = 0; h < 8; h += 4) {
        t[h + 0] = _mm512_unpacklo_epi32(z[h + 0], z[h + 1]);
        t[h + 1] = _mm512_unpackhi_epi32(z[h + 0], z[h + 1]);
        t[h + 2] = _mm512_unpacklo_epi32(z[h + 2], z[h + 3]);
        t[h + 3] = _mm512_unpackhi_epi32(z[h + 2], z[h + 3]);
        u[h + 0] = _mm512_unpacklo_epi64(t[h + 0], t[h + 2]); /* columns 0, 4 */
        u[h + 1] = _mm512_unpackhi_epi64(t[h + 0], t[h + 2]); /* 1, 5 */
        u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]); /* 2, 6 */
        u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]); /* 3, 7 */
    }
    for (int c = 0; c < 4; c++) {
        out[c] = _mm512_shuffle_i32x4(u[c], u[c + 4], 0x88);
        out[c + 4] = _mm512_shuffle_i32x4(u[c], u[c + 4], 0xdd);
    }
}

static inline __attribute__((always_inline)) void vnni_tile(const uint8_t *src, size_t ss,
                                                            uint8_t *dst) {
    __m512i o[8];
    vnni_regs(src, ss, o);
    for (int c = 0; c < 8; c++)
        _mm512_store_si512(dst + 64 * c, o[c]);
}

/* Dword d (< 4) of 16 rows' 16 bytes (row m at src + m * ss), d-th
 * output holding rows 0..15 in order: z_i's 128-bit lanes are rows i,
 * i + 4, i + 8, i + 12, so the two in-lane unpack steps finish it. */
static inline __attribute__((always_inline)) void dword4_regs(const uint8_t *src, size_t ss,
                                                              __m512i out[4]) {
    __m512i z[4];
    for (int i = 0; i < 4; i++) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(src + i * ss)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(src + (i + 4) * ss)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(src + (i + 8) * ss)), 2);
        z[i] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(src + (i + 12) * ss)), 3);
    }
    __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
    __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    out[0] = _mm512_unpacklo_epi64(t0, t2);
    out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3);
    out[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* The leading f16 scales of 16 rows' blocks (row m at p + idx[m]) as 16
 * floats into out, by one gather of the blocks' first dwords (every block
 * is longer than 4 bytes): 16 scalar loads stored as halves and reloaded
 * as one vector stalled on the store forwarding (T = 74: +13% for the
 * whole Q4_0 matmul, weights from L3). */
static inline __attribute__((always_inline)) void f16x16_gather(const uint8_t *p, __m512i idx,
                                                                float *out) {
    __m512i w = _mm512_i32gather_epi32(idx, (const void *)p, 1);
    _mm512_store_ps(out, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(w)));
}

/* A whole 16-row tile of Q8_0 / Q4_0 / Q4_K (rows at src, ldw apart),
 * blocks [kb0, kb1) (k-quants: whole super-blocks), straight from the
 * rows into tiles and scales: the same bytes and floats as unpack_row's
 * path, with the transposes done on the weights as stored. */
static inline __attribute__((always_inline)) void unpack_full(q35_dtype dt, const uint8_t *src,
                                                              size_t ldw, int64_t kb0, int64_t kb1,
                                                              uint8_t *bt, float *sc) {
    const __m512i m15 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8);
    if (dt == Q35_DT_Q8_0 || dt == Q35_DT_Q4_0) {
        size_t bb = q35_dtype_block_bytes(dt);
        const __m512i idx = _mm512_mullo_epi32(
            _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
            _mm512_set1_epi32((int)ldw));
        for (int64_t kb = kb0; kb < kb1; kb++) {
            const uint8_t *b = src + (size_t)kb * bb;
            uint8_t *dst = bt + (kb - kb0) * BTILE;
            if (((kb - kb0) & 7) == 0) /* the rows' 8 blocks PF_AHEAD on */
                for (int m = 0; m < 16; m++)
                    for (size_t o = 0; o < 8 * bb; o += 64)
                        _mm_prefetch((const char *)((uintptr_t)b + m * ldw + PF_AHEAD * bb + o),
                                     _MM_HINT_T0);
            f16x16_gather(b, idx, sc + (kb - kb0) * SCB);
            if (dt == Q35_DT_Q8_0) {
                vnni_tile(b + 2, ldw, dst);
                continue;
            }
            __m512i d[4];
            dword4_regs(b + 2, ldw, d);
            for (int c = 0; c < 4; c++) {
                _mm512_store_si512(dst + 64 * c,
                                   _mm512_sub_epi8(_mm512_and_si512(d[c], m15), eight));
                _mm512_store_si512(
                    dst + 64 * (c + 4),
                    _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(d[c], 4), m15), eight));
            }
        }
        return;
    }
    /* Q4_K: per super-block, 32 bytes of nibbles hold blocks 2h (low) and
     * 2h + 1 (high) */
    for (int64_t kb = kb0; kb < kb1; kb += 8) {
        const uint8_t *sb = src + (size_t)(kb / 8) * 144;
        for (int m = 0; m < 16; m++)
            for (int o = 0; o < 144; o += 64)
                _mm_prefetch((const char *)((uintptr_t)sb + m * ldw + 144 + (uintptr_t)o),
                             _MM_HINT_T0);
        __m512i v[16];
        for (int m = 0; m < 16; m++) {
            _Alignas(64) float buf[16];
            kblock_scales16(Q35_DT_Q4_K, sb + (size_t)m * ldw, buf);
            v[m] = _mm512_load_si512(buf);
        }
        transpose16(v); /* v[j] = mul_j, v[8 + j] = sub_j of the 16 rows */
        float *s = sc + (kb - kb0) * SCB;
        for (int j = 0; j < 8; j++) {
            _mm512_store_si512(s + j * SCB, v[j]);
            _mm512_store_si512(s + j * SCB + 16, v[8 + j]);
        }
        uint8_t *dst = bt + (kb - kb0) * BTILE;
        for (int h = 0; h < 4; h++) {
            __m512i o[8];
            vnni_regs(sb + 16 + 32 * h, ldw, o);
            for (int c = 0; c < 8; c++) {
                _mm512_store_si512(dst + (2 * h) * BTILE + 64 * c, _mm512_and_si512(o[c], m15));
                _mm512_store_si512(dst + (2 * h + 1) * BTILE + 64 * c,
                                   _mm512_and_si512(_mm512_srli_epi16(o[c], 4), m15));
            }
        }
    }
}

/* Blocks kb0 .. kb0+nb-1 (nb <= GROUP; k-quants: one super-block) of one
 * weight row as int8 (32 a block, into t) and its scales for lane m of
 * the group's scale vectors (block j at sc + j * SCB: vector 0 = the
 * multiplier of the block (Q6_K: of its first half), vector 1 = Q4_K's min
 * multiplier, Q6_K's second half's multiplier). */
static inline __attribute__((always_inline)) void
unpack_row(q35_dtype dt, const uint8_t *src, int64_t kb0, int nb, uint8_t *t, float *sc, int m) {
    const __m128i m15 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    if (dt == Q35_DT_Q8_0 || dt == Q35_DT_Q4_0) {
        size_t bb = q35_dtype_block_bytes(dt);
        for (int j = 0; j < nb; j++) {
            const uint8_t *b = src + (size_t)(kb0 + j) * bb;
            sc[j * SCB + m] = _cvtsh_ss(q35_qblock_d16(b));
            if (dt == Q35_DT_Q8_0) {
                _mm256_storeu_si256((__m256i *)(t + 32 * j),
                                    _mm256_loadu_si256((const __m256i *)(b + 2)));
            } else {
                __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
                _mm_storeu_si128((__m128i *)(t + 32 * j),
                                 _mm_sub_epi8(_mm_and_si128(q, m15), eight));
                _mm_storeu_si128((__m128i *)(t + 32 * j + 16),
                                 _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m15), eight));
            }
        }
        return;
    }
    float buf[16];
    if (dt == Q35_DT_Q4_K) {
        const uint8_t *sb = src + (size_t)(kb0 / 8) * 144;
        kblock_scales16(Q35_DT_Q4_K, sb, buf);
        for (int j = 0; j < 8; j++) {
            sc[j * SCB + m] = buf[j];
            sc[j * SCB + 16 + m] = buf[8 + j];
        }
        const __m256i n15 = _mm256_set1_epi8(15);
        for (int h = 0; h < 4; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * h));
            _mm256_storeu_si256((__m256i *)(t + 64 * h), _mm256_and_si256(q, n15));
            _mm256_storeu_si256((__m256i *)(t + 64 * h + 32),
                                _mm256_and_si256(_mm256_srli_epi16(q, 4), n15));
        }
    } else { /* Q6_K */
        const uint8_t *sb = src + (size_t)(kb0 / 8) * 210;
        kblock_scales16(Q35_DT_Q6_K, sb, buf);
        for (int j = 0; j < 8; j++) {
            sc[j * SCB + m] = buf[2 * j];
            sc[j * SCB + 16 + m] = buf[2 * j + 1];
        }
        for (int g = 0; g < 4; g++)
            _mm512_storeu_si512((void *)(t + 64 * g), q6k_group(sb, g));
    }
}

/* The group of 16 rows from r (r % 16 == 0) of an x16 tensor
 * (repack_x16.h), blocks [kb0, kb1): its codes are already the tiles'
 * order, so a block's tile is its code vectors made signed again (Q8_0:
 * ^ 0x80; Q4_0: the two nibbles of each byte, minus 8) and its scales one
 * conversion: the same bytes and floats unpack_full makes from the file's
 * layout. The whole group is read (padded rows are zeros; rows past the
 * caller's range only fill lanes store_acc leaves out). */
/* Q4_K's form (repack_x16.h): whole super-blocks of [kb0, kb1); the
 * scales as q35_kblock_scales forms them (d * sc_j, dmin * m_j: one
 * product each, decoded in the 16 lanes), the nibbles masked and shifted. */
static void unpack_x16_q4k(const q35_tensor *w, int64_t r, int64_t kb0, int64_t kb1, uint8_t *bt,
                           float *sc) {
    const int64_t nsb = w->shape[1] / 256;
    const size_t ldw = q35_row_bytes(Q35_DT_Q4_K, w->shape[1]);
    const uint8_t *grp = (const uint8_t *)w->data + (size_t)(r / 16) * 16 * ldw;
    const __m512i m15 = _mm512_set1_epi8(15), m3f = _mm512_set1_epi32(0x3f3f3f3f),
                  m0f = _mm512_set1_epi32(0x0f0f0f0f), m03 = _mm512_set1_epi32(0x03030303),
                  mff = _mm512_set1_epi32(0xff);
    for (int64_t kb = kb0; kb < kb1; kb += 8) {
        const int64_t k = kb / 8;
        const uint8_t *meta = grp + 256 * (size_t)k;
        const uint8_t *codes = grp + 256 * (size_t)nsb + 2048 * (size_t)k;
        for (int o = 0; o < 256; o += 64)
            _mm_prefetch((const char *)((uintptr_t)meta + 256 + (uintptr_t)o), _MM_HINT_T0);
        for (int o = 0; o < 2048; o += 64)
            _mm_prefetch((const char *)((uintptr_t)codes + 2048 + (uintptr_t)o), _MM_HINT_T0);
        const __m512i u0 = _mm512_loadu_si512((const void *)meta);
        const __m512i u1 = _mm512_loadu_si512((const void *)(meta + 64));
        const __m512i u2 = _mm512_loadu_si512((const void *)(meta + 128));
        const __m512i f[4] = {
            _mm512_and_si512(u0, m3f), _mm512_and_si512(u1, m3f),
            _mm512_or_si512(_mm512_and_si512(u2, m0f),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), m03), 4)),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m0f),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), m03), 4))};
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(meta + 192)));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(meta + 224)));
        for (int j = 0; j < 8; j++) {
            const __m512i scv = j < 4 ? f[0] : f[2], mnv = j < 4 ? f[1] : f[3];
            const __m512 scj =
                _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(scv, 8 * (j % 4)), mff));
            const __m512 mnj =
                _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(mnv, 8 * (j % 4)), mff));
            float *s = sc + (kb - kb0 + j) * SCB;
            _mm512_store_ps(s, _mm512_mul_ps(d, scj));
            _mm512_store_ps(s + 16, _mm512_mul_ps(dmin, mnj));
        }
        uint8_t *dst = bt + (kb - kb0) * BTILE;
        for (int c = 0; c < 4; c++)
            for (int g = 0; g < 8; g++) {
                __m512i v = _mm512_loadu_si512((const void *)(codes + 512 * c + 64 * g));
                _mm512_store_si512(dst + (2 * c) * BTILE + 64 * g, _mm512_and_si512(v, m15));
                _mm512_store_si512(dst + (2 * c + 1) * BTILE + 64 * g,
                                   _mm512_and_si512(_mm512_srli_epi16(v, 4), m15));
            }
    }
}

/* Q6_K's form (repack_x16.h): per block the 6-bit values rebuilt from the
 * nibble and 2-bit vectors (as int8_x86_x16.h's x16_q6_codes), minus 32:
 * tile rows 0-3 the first half, 4-7 the second, q6k_group's values in
 * vnni_tile's order; the scales d * sc_h, the products kblock_scales16
 * forms. */
static void unpack_x16_q6k(const q35_tensor *w, int64_t r, int64_t kb0, int64_t kb1, uint8_t *bt,
                           float *sc) {
    const int64_t nsb = w->shape[1] / 256;
    const size_t ldw = q35_row_bytes(Q35_DT_Q6_K, w->shape[1]);
    const uint8_t *grp = (const uint8_t *)w->data + (size_t)(r / 16) * 16 * ldw;
    const uint8_t *codes = grp + 288 * (size_t)nsb;
    const __m512i m15 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30),
                  k32 = _mm512_set1_epi8(32);
    for (int64_t kb = kb0; kb < kb1; kb++) {
        const uint8_t *meta = grp + 288 * (size_t)(kb / 8), *c = codes + 384 * (size_t)kb;
        const int jj = (int)(kb % 8);
        for (int o = 0; o < 384; o += 64)
            _mm_prefetch((const char *)((uintptr_t)c + PF_AHEAD * 384 + (uintptr_t)o), _MM_HINT_T0);
        if (jj == 0)
            for (int o = 0; o < 288; o += 64)
                _mm_prefetch((const char *)((uintptr_t)meta + 288 + (uintptr_t)o), _MM_HINT_T0);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(meta + 256)));
        float *s = sc + (kb - kb0) * SCB;
        for (int h = 0; h < 2; h++)
            _mm512_store_ps(
                s + 16 * h,
                _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                     (const __m128i *)(meta + 16 * (2 * jj + h)))))));
        const __m512i h0 = _mm512_loadu_si512((const void *)(c + 256));
        const __m512i h1 = _mm512_loadu_si512((const void *)(c + 320));
        uint8_t *dst = bt + (kb - kb0) * BTILE;
        for (int k = 0; k < 4; k++) {
            const __m512i v = _mm512_loadu_si512((const void *)(c + 64 * k));
            const __m512i a = k == 3 ? _mm512_srli_epi16(h0, 2) : _mm512_slli_epi16(h0, 4 - 2 * k);
            const __m512i b = k == 3 ? _mm512_srli_epi16(h1, 2) : _mm512_slli_epi16(h1, 4 - 2 * k);
            /* lo | (hi & 0x30), then - 32 */
            _mm512_store_si512(
                dst + 64 * k,
                _mm512_sub_epi8(_mm512_ternarylogic_epi32(_mm512_and_si512(v, m15), a, m30, 0xF8),
                                k32));
            _mm512_store_si512(
                dst + 64 * (k + 4),
                _mm512_sub_epi8(_mm512_ternarylogic_epi32(
                                    _mm512_and_si512(_mm512_srli_epi16(v, 4), m15), b, m30, 0xF8),
                                k32));
        }
    }
}

static void unpack_x16(q35_dtype dt, const q35_tensor *w, int64_t r, int64_t kb0, int64_t kb1,
                       uint8_t *bt, float *sc) {
    if (dt == Q35_DT_Q4_K) {
        unpack_x16_q4k(w, r, kb0, kb1, bt, sc);
        return;
    }
    if (dt == Q35_DT_Q6_K) {
        unpack_x16_q6k(w, r, kb0, kb1, bt, sc);
        return;
    }
    const int64_t nkb = w->shape[1] / 32;
    const size_t ldw = q35_row_bytes(dt, w->shape[1]), cb = dt == Q35_DT_Q8_0 ? 512 : 256;
    const uint8_t *grp = (const uint8_t *)w->data + (size_t)(r / 16) * 16 * ldw;
    const uint8_t *codes = grp + 32 * (size_t)nkb;
    const __m512i m15 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8),
                  flip = _mm512_set1_epi8((char)0x80);
    for (int64_t kb = kb0; kb < kb1; kb++) {
        const uint8_t *c = codes + (size_t)kb * cb;
        uint8_t *dst = bt + (kb - kb0) * BTILE;
        for (size_t o = 0; o < cb; o += 64)
            _mm_prefetch((const char *)((uintptr_t)c + PF_AHEAD * cb + o), _MM_HINT_T0);
        if (((kb - kb0) & 1) == 0)
            _mm_prefetch((const char *)((uintptr_t)grp + 32 * (uintptr_t)(kb + 2 * PF_AHEAD)),
                         _MM_HINT_T0);
        _mm512_store_ps(sc + (kb - kb0) * SCB,
                        _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grp + 32 * kb))));
        if (dt == Q35_DT_Q8_0) {
            for (int k = 0; k < 8; k++)
                _mm512_store_si512(
                    dst + 64 * k,
                    _mm512_xor_si512(_mm512_loadu_si512((const void *)(c + 64 * k)), flip));
            continue;
        }
        for (int k = 0; k < 4; k++) {
            __m512i v = _mm512_loadu_si512((const void *)(c + 64 * k));
            _mm512_store_si512(dst + 64 * k, _mm512_sub_epi8(_mm512_and_si512(v, m15), eight));
            _mm512_store_si512(
                dst + 64 * (k + 4),
                _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), m15), eight));
        }
    }
}

/* Weight rows r .. r+15 (those at or past rend as zeros), blocks
 * [kb0, kb1), into weight tiles bt and scales sc (block kb at
 * (kb - kb0) * BTILE, * SCB). dt: the loop's dtype (an x16 tensor's base). */
static void unpack_tile(q35_dtype dt, const q35_tensor *w, int64_t r, int64_t rend, int64_t kb0,
                        int64_t kb1, uint8_t *bt, float *sc) {
    if (q35_dtype_is_x16(w->dtype)) {
        unpack_x16(dt, w, r, kb0, kb1, bt, sc);
        return;
    }
    size_t ldw = q35_row_bytes(dt, w->shape[1]), gbytes = q35_row_bytes(dt, 32 * GROUP);
    if (r + 16 <= rend && dt != Q35_DT_Q6_K) {
        const uint8_t *src = (const uint8_t *)w->data + (size_t)r * ldw;
        if (dt == Q35_DT_Q8_0)
            unpack_full(Q35_DT_Q8_0, src, ldw, kb0, kb1, bt, sc);
        else if (dt == Q35_DT_Q4_0)
            unpack_full(Q35_DT_Q4_0, src, ldw, kb0, kb1, bt, sc);
        else
            unpack_full(Q35_DT_Q4_K, src, ldw, kb0, kb1, bt, sc);
        return;
    }
    _Alignas(64) uint8_t tmp[16][32 * GROUP];
    for (int64_t g = kb0; g < kb1; g += GROUP) {
        int nb = kb1 - g < GROUP ? (int)(kb1 - g) : GROUP;
        float *scg = sc + (g - kb0) * SCB;
        for (int m = 0; m < 16; m++) {
            if (r + m < rend) {
                const uint8_t *src = (const uint8_t *)w->data + (size_t)(r + m) * ldw;
                /* the weights come from memory, 16 short runs at a time,
                 * which the hardware prefetcher follows too late: fetch
                 * this row's group after next (as an integer: it may lie
                 * past the matrix, and prefetches never fault) */
                uintptr_t next = (uintptr_t)src + (uintptr_t)(g / GROUP + 2) * gbytes;
                for (size_t o = 0; o < gbytes; o += 64)
                    _mm_prefetch((const char *)(next + o), _MM_HINT_T0);
                if (dt == Q35_DT_Q8_0)
                    unpack_row(Q35_DT_Q8_0, src, g, nb, tmp[m], scg, m);
                else if (dt == Q35_DT_Q4_0)
                    unpack_row(Q35_DT_Q4_0, src, g, nb, tmp[m], scg, m);
                else if (dt == Q35_DT_Q4_K)
                    unpack_row(Q35_DT_Q4_K, src, g, nb, tmp[m], scg, m);
                else
                    unpack_row(Q35_DT_Q6_K, src, g, nb, tmp[m], scg, m);
            } else {
                memset(tmp[m], 0, sizeof tmp[m]);
                for (int j = 0; j < nb; j++)
                    scg[j * SCB + m] = scg[j * SCB + 16 + m] = 0.0f;
            }
        }
        for (int j = 0; j < nb; j++)
            vnni_tile(tmp[0] + 32 * j, sizeof tmp[0], bt + (g - kb0 + j) * BTILE);
    }
}

/* The token side of blocks [kb0, kb1) for the 16 q8 rows from t0 (rows at
 * or past T as zeros), lane t = row t0 + t: da[(kb - kb0) * 16 + t] =
 * d_kb, and (Q4_K) dS[...] = d_kb * S_kb (S: the block's q8 sum). */
static void token_scales(const uint8_t *x, size_t ldx, int T, int64_t cols, int t0, int64_t kb0,
                         int64_t kb1, bool sums, float *da, float *dS) {
    for (int64_t kb = kb0; kb < kb1; kb += 16) {
        int n = kb1 - kb < 16 ? (int)(kb1 - kb) : 16;
        __mmask16 m = (__mmask16)((1u << n) - 1);
        __mmask32 m2 = n == 16 ? 0xffffffffu : (__mmask32)((1u << (2 * n)) - 1);
        __m512i d[16], s[16];
        for (int t = 0; t < 16; t++) {
            if (t0 + t >= T) {
                d[t] = s[t] = _mm512_setzero_si512();
                continue;
            }
            const uint8_t *row = x + (size_t)(t0 + t) * ldx;
            __m512 dv = _mm512_maskz_loadu_ps(m, q35_q8_row_d(row, cols) + kb);
            d[t] = _mm512_castps_si512(dv);
            if (sums) {
                __m512i s16 = _mm512_maskz_loadu_epi16(m2, q35_q8_row_s(row, cols) + 2 * kb);
                __m512i S = _mm512_madd_epi16(s16, _mm512_set1_epi16(1));
                s[t] = _mm512_castps_si512(_mm512_mul_ps(dv, _mm512_cvtepi32_ps(S)));
            }
        }
        transpose16(d);
        if (sums) transpose16(s);
        for (int i = 0; i < n; i++) {
            _mm512_store_si512(da + (kb - kb0 + i) * 16, d[i]);
            if (sums) _mm512_store_si512(dS + (kb - kb0 + i) * 16, s[i]);
        }
    }
}

typedef struct tile_config {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* C tiles 0-1 and 6-7 and A tiles 2-3 (kbytes a row) of `tokens` rows
 * (16, or fewer for a last partial token tile: nothing past T is read), B
 * tiles 4-5. */
__attribute__((target("amx-tile"))) static void tiles_configure(int kbytes, int tokens) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) {
        c.rows[i] = (uint8_t)(i == 4 || i == 5 ? kbytes / 4 : tokens);
        c.colsb[i] = (uint16_t)(i == 2 || i == 3 ? kbytes : 64);
    }
    /* gcc 12 does not see ldtilecfg read the struct and drops the stores
     * above without this */
    __asm__ volatile("" : : "m"(c) : "memory");
    _tile_loadconfig(&c);
}

/* The float work of one block for the first nt (<= 16) tokens of a tile
 * (a last partial tile's other rows are never stored): C rows at c (Q6_K:
 * first half at c, second at c2), weight scale vectors at s, token scales
 * da[t] (and dS[t]). */
static inline __attribute__((always_inline)) void block_fma(q35_dtype dt, const int32_t *c,
                                                            const int32_t *c2, const float *s,
                                                            const float *da, const float *dS,
                                                            __m512 acc[16], int nt) {
    __m512 s0 = _mm512_load_ps(s), s1 = _mm512_load_ps(s + 16);
    UNROLL16 for (int t = 0; t < 16; t++) {
        if (t >= nt) break;
        __m512 dv = _mm512_set1_ps(da[t]);
        __m512 i0 = _mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * t));
        acc[t] = _mm512_fmadd_ps(i0, _mm512_mul_ps(s0, dv), acc[t]);
        if (dt == Q35_DT_Q4_K) acc[t] = _mm512_fnmadd_ps(s1, _mm512_set1_ps(dS[t]), acc[t]);
        if (dt == Q35_DT_Q6_K) {
            __m512 i1 = _mm512_cvtepi32_ps(_mm512_load_si512(c2 + 16 * t));
            acc[t] = _mm512_fmadd_ps(i1, _mm512_mul_ps(s1, dv), acc[t]);
        }
    }
}

/* The float work of item i (a block; Q6_K: a half, its block's work done
 * at the second half) from the C ring cb (8 slots of 16 x 16 int32). */
static inline __attribute__((always_inline)) void item_fma(q35_dtype dt, const int32_t *cb,
                                                           int64_t i, const float *sc,
                                                           const float *da, const float *dS,
                                                           __m512 acc[16], int nt) {
    if (dt == Q35_DT_Q6_K) {
        if (!(i & 1)) return;
        const int32_t *c = cb + 256 * ((i - 1) & 7);
        block_fma(dt, c, c + 256, sc + (i / 2) * SCB, da + (i / 2) * 16, dS + (i / 2) * 16, acc,
                  nt);
    } else
        block_fma(dt, cb + 256 * (i & 7), NULL, sc + i * SCB, da + i * 16, dS + i * 16, acc, nt);
}

/* acc += blocks [kb0, kb1) of one 16-token tile (q8 rows at xa, stride
 * lda) times one weight tile (bt, sc), with the token scales da, dS; all
 * four indexed from kb0. cb: 8 KB, a ring of 8 C slots.
 *
 * The tile unit runs its instructions in order, and a tile store waits
 * for the product before it, so the products go round the four C tiles
 * (0, 1, 6, 7; A/B pairs 2/4 and 3/5 alternating) with four in flight: as
 * soon as item j's C tile is stored, item j + 4's product is issued into
 * it, so the stores and the products overlap. The float work of item j
 * runs LAG stores later, when its slot has long been written, so the
 * vector loads never wait on a tile store; items still go through the
 * float steps in order (the same bits as one item at a time). An item is
 * a block (K = 32) or, for Q6_K, a half (K = 16). */
#define LAG 2
#define TDP(c, ta, tb, j)                                                                          \
    do {                                                                                           \
        _tile_zero(c);                                                                             \
        _tile_loadd(ta, a0 + kbytes * (j), lda);                                                   \
        _tile_loadd(tb, bt + 16 * kbytes * (j), 64);                                               \
        _tile_dpbssd(c, ta, tb);                                                                   \
    } while (0)
#define STEP(c, ta, tb, j)                                                                         \
    do {                                                                                           \
        if ((j) < n) {                                                                             \
            _tile_stored(c, cb + 256 * ((j)&7), 64);                                               \
            if ((j) + 4 < n) TDP(c, ta, tb, (j) + 4);                                              \
            for (int p_ = 0; p_ < pfn; p_++)                                                       \
                _mm_prefetch((const char *)(pf + 64 * (uintptr_t)((j)*pfn + p_)), _MM_HINT_T1);    \
            if ((j) >= LAG) item_fma(dt, cb, (j)-LAG, sc, da, dS, acc, nt);                        \
        }                                                                                          \
    } while (0)
__attribute__((target("amx-tile,amx-int8"), always_inline)) static inline void
tile_blocks(q35_dtype dt, const uint8_t *xa, size_t lda, const float *da, const float *dS,
            const uint8_t *bt, const float *sc, int64_t kb0, int64_t kb1, __m512 acc[16],
            int32_t *cb, int nt, uintptr_t pf, int pfn) {
    const int64_t kbytes = dt == Q35_DT_Q6_K ? 16 : 32;
    const int64_t n = (kb1 - kb0) * (dt == Q35_DT_Q6_K ? 2 : 1); /* items */
    const uint8_t *a0 = xa + kb0 * 32;
    TDP(0, 2, 4, 0);
    if (n > 1) TDP(1, 3, 5, 1);
    if (n > 2) TDP(6, 2, 4, 2);
    if (n > 3) TDP(7, 3, 5, 3);
    for (int64_t i = 0; i < n; i += 4) {
        STEP(0, 2, 4, i);
        STEP(1, 3, 5, i + 1);
        STEP(6, 2, 4, i + 2);
        STEP(7, 3, 5, i + 3);
    }
    for (int64_t j = n - LAG < 0 ? 0 : n - LAG; j < n; j++)
        item_fma(dt, cb, j, sc, da, dS, acc, nt);
}
#undef STEP
#undef TDP

/* acc rows (tokens t0 + t < T) into y columns [o, o + 16) that lie below rend. */
static inline void store_acc(const __m512 acc[16], float *y, int64_t ldy, int64_t o, int64_t rend,
                             int t0, int T) {
    int64_t n = rend - o < 16 ? rend - o : 16;
    __mmask16 m = (__mmask16)((1u << n) - 1);
    for (int t = 0; t < 16 && t0 + t < T; t++)
        _mm512_mask_storeu_ps(y + (int64_t)(t0 + t) * ldy + o, m, acc[t]);
}

/* The tile rows for token tile tt (a partial last one takes fewer rows,
 * so no row past T is read); reconfigures only on a change. */
__attribute__((target("amx-tile"))) static inline void token_rows(int T, int tt, int kbytes,
                                                                  int *cur) {
    int n = T - 16 * tt < 16 ? T - 16 * tt : 16;
    if (n != *cur) {
        tiles_configure(kbytes, n);
        *cur = n;
    }
}

/* One dtype's loop nest. Panels of prows weight rows are unpacked once
 * into scratch and reused by every token tile; the token scales of all
 * tiles are computed once per call. */
__attribute__((target("amx-tile,amx-int8"), always_inline)) static inline void
matmul_dt(q35_dtype dt, const q35_tensor *w, const uint8_t *x, size_t ldx, int T, float *y,
          int64_t ldy, int64_t r0, int64_t r1, uint8_t *scratch, int64_t prows) {
    int64_t cols = w->shape[1], nkb = cols / 32;
    int ntt = (T + 15) / 16, kbytes = dt == Q35_DT_Q6_K ? 16 : 32, cur = 0;
    size_t tile_bytes = (size_t)nkb * BTILE, sc_floats = (size_t)nkb * SCB;
    uint8_t *bt = scratch;
    float *sc = (float *)(void *)(bt + (size_t)(prows / 16) * tile_bytes);
    float *da = sc + (size_t)(prows / 16) * sc_floats;
    float *dS = dt == Q35_DT_Q4_K ? da + (size_t)ntt * nkb * 16 : da; /* Q4_K's */
    _Alignas(64) int32_t cb[2048];
    const size_t ldw = q35_row_bytes(w->dtype, cols);
    for (int tt = 0; tt < ntt; tt++)
        token_scales(x, ldx, T, cols, tt * 16, 0, nkb, dt == Q35_DT_Q4_K,
                     da + (size_t)tt * nkb * 16, dS + (size_t)tt * nkb * 16);
    for (int64_t p0 = r0; p0 < r1; p0 += prows) {
        int64_t pe = r1 - p0 < prows ? r1 : p0 + prows;
        int nwt = (int)((pe - p0 + 15) / 16);
        for (int i = 0; i < nwt; i++)
            unpack_tile(dt, w, p0 + 16 * i, pe, 0, nkb, bt + (size_t)i * tile_bytes,
                        sc + (size_t)i * sc_floats);
        /* the next panel's weights into L2, pfn lines an item, while this
         * panel's products run: its unpack then reads L2, not memory (the
         * unpack of a panel from memory left the tile unit idle) */
        int64_t nxt = r1 - pe < prows ? r1 - pe : prows;
        int64_t items = nkb * (dt == Q35_DT_Q6_K ? 2 : 1);
        int64_t lines = ((int64_t)nxt * (int64_t)ldw + 63) / 64;
        int pfn = nxt > 0 ? (int)((lines + items * ntt * nwt - 1) / (items * ntt * nwt)) : 0;
        uintptr_t pf = (uintptr_t)w->data + (uintptr_t)pe * ldw;
        for (int tt = 0; tt < ntt; tt++) {
            token_rows(T, tt, kbytes, &cur);
            const uint8_t *xa = x + (size_t)tt * 16 * ldx;
            const float *dat = da + (size_t)tt * nkb * 16, *dSt = dS + (size_t)tt * nkb * 16;
            for (int i = 0; i < nwt; i++) {
                __m512 acc[16];
                UNROLL16 for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
                uintptr_t pfi = pf + 64 * (uintptr_t)((tt * nwt + i) * items * pfn);
                if (T - 16 * tt >= 16)
                    tile_blocks(dt, xa, ldx, dat, dSt, bt + (size_t)i * tile_bytes,
                                sc + (size_t)i * sc_floats, 0, nkb, acc, cb, 16, pfi, pfn);
                else
                    tile_blocks(dt, xa, ldx, dat, dSt, bt + (size_t)i * tile_bytes,
                                sc + (size_t)i * sc_floats, 0, nkb, acc, cb, T - 16 * tt, pfi, pfn);
                store_acc(acc, y, ldy, p0 + 16 * i, pe, tt * 16, T);
            }
        }
    }
}

/* The same arithmetic from stack buffers: each group of blocks unpacked
 * again for every token tile. */
__attribute__((target("amx-tile,amx-int8"), always_inline)) static inline void
stepwise_dt(q35_dtype dt, const q35_tensor *w, const uint8_t *x, size_t ldx, int T, float *y,
            int64_t ldy, int64_t r0, int64_t r1) {
    int64_t cols = w->shape[1], nkb = cols / 32;
    int kbytes = dt == Q35_DT_Q6_K ? 16 : 32, cur = 0;
    _Alignas(64) uint8_t bt[GROUP * BTILE];
    _Alignas(64) float sc[GROUP * SCB], da[GROUP * 16], dS[GROUP * 16];
    _Alignas(64) int32_t cb[2048];
    for (int tt = 0; tt < (T + 15) / 16; tt++) {
        token_rows(T, tt, kbytes, &cur);
        const uint8_t *xa = x + (size_t)tt * 16 * ldx;
        for (int64_t o = r0; o < r1; o += 16) {
            __m512 acc[16];
            UNROLL16 for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
            for (int64_t g = 0; g < nkb; g += GROUP) {
                int64_t ge = nkb - g < GROUP ? nkb : g + GROUP;
                unpack_tile(dt, w, o, r1, g, ge, bt, sc);
                token_scales(x, ldx, T, cols, tt * 16, g, ge, dt == Q35_DT_Q4_K, da, dS);
                tile_blocks(dt, xa, ldx, da, dS, bt, sc, g, ge, acc, cb, 16, 0, 0);
            }
            store_acc(acc, y, ldy, o, r1, tt * 16, T);
        }
    }
}

__attribute__((target("amx-tile,amx-int8"))) static void run(const q35_tensor *w, const uint8_t *x,
                                                             size_t ldx, int T, float *y,
                                                             int64_t ldy, int64_t r0, int64_t r1,
                                                             uint8_t *scratch, int64_t prows) {
#define CASE(d)                                                                                    \
    case d:                                                                                        \
        if (scratch)                                                                               \
            matmul_dt(d, w, x, ldx, T, y, ldy, r0, r1, scratch, prows);                            \
        else                                                                                       \
            stepwise_dt(d, w, x, ldx, T, y, ldy, r0, r1);                                          \
        break;
/* an x16 tensor runs its base's loop (unpack_tile reads the form) */
#define CASE_X16(xdt, d)                                                                           \
    case xdt:                                                                                      \
        if (scratch)                                                                               \
            matmul_dt(d, w, x, ldx, T, y, ldy, r0, r1, scratch, prows);                            \
        else                                                                                       \
            stepwise_dt(d, w, x, ldx, T, y, ldy, r0, r1);                                          \
        break;
    switch (w->dtype) {
        CASE(Q35_DT_Q8_0)
        CASE(Q35_DT_Q4_0)
        CASE(Q35_DT_Q4_K)
        CASE(Q35_DT_Q6_K)
        CASE_X16(Q35_DT_Q8_0_X16, Q35_DT_Q8_0)
        CASE_X16(Q35_DT_Q4_0_X16, Q35_DT_Q4_0)
        CASE_X16(Q35_DT_Q4_K_X16, Q35_DT_Q4_K)
        CASE_X16(Q35_DT_Q6_K_X16, Q35_DT_Q6_K)
    default: return;
    }
#undef CASE_X16
#undef CASE
    _tile_release();
}

void q35_amx_i8_matmul_stepwise(const q35_tensor *w, const uint8_t *x, size_t ldx, int T, float *y,
                                int64_t ldy, int64_t r0, int64_t r1) {
    if (r1 > r0 && T > 0) run(w, x, ldx, T, y, ldy, r0, r1, NULL, 0);
}

void q35_amx_i8_matmul(const q35_tensor *w, const uint8_t *x, size_t ldx, int T, float *y,
                       int64_t ldy, int64_t r0, int64_t r1) {
    if (r1 <= r0 || T <= 0) return;
    int64_t nkb = w->shape[1] / 32;
    size_t per_tile = (size_t)nkb * (BTILE + SCB * sizeof(float));
    int64_t tiles = (int64_t)(PANEL_BYTES / per_tile);
    tiles = tiles < 1 ? 1 : tiles > PANEL_TILES ? PANEL_TILES : tiles;
    int64_t need = (r1 - r0 + 15) / 16;
    if (tiles > need) tiles = need;
    size_t ntt = ((size_t)T + 15) / 16;
    size_t bytes = (size_t)tiles * per_tile +
                   ntt * (size_t)nkb * 64 * (q35_dtype_x16_base(w->dtype) == Q35_DT_Q4_K ? 2 : 1);
    uint8_t *scratch = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!scratch) {
        q35_amx_i8_matmul_stepwise(w, x, ldx, T, y, ldy, r0, r1);
        return;
    }
    run(w, x, ldx, T, y, ldy, r0, r1, scratch, tiles * 16);
    free(scratch);
}
