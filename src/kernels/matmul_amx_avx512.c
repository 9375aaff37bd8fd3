/* matmul_amx_avx512.c — y = W x on AMX-BF16 tiles (see matmul_amx.h for
 * the exactness argument). Compiled with the AVX-512 flags; the AMX
 * functions carry their own target attribute and run only after
 * q35_kernels_amx() has checked the CPU and obtained the OS permission.
 *
 * Tiles: A = 16 weight rows x 32 columns, read in place from the bf16
 * matrix (no repacking of weights); B = 16 tokens x 32 columns of x as
 * (hi, mid, lo) bf16 pairs, packed once per input by q35_amx_pack; C = 16
 * rows x 16 tokens of float32, three C tiles (48 rows) per pass so each B
 * tile feeds three tile products. C is transposed on the way out to y's
 * [token, row] layout. */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kernels/matmul_amx.h"
#include "kernels/quant_block_avx512.h"

/* Below this many tokens a matmul is (nearly) memory-bound and the plain
 * AVX-512 kernel wins: no packing, no tile setup. */
#define AMX_MIN_T 8

#define TILE_BYTES 1024 /* 16 rows x 64 bytes */

/* x is split into PARTS bf16 numbers (hi, mid, lo): three parts hold all 24
 * bits of a float32 mantissa, so the products are those of float32 x. */
#define PARTS 3

bool q35_amx_enable(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    /* ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return false;
#endif
}

size_t q35_amx_pack_bytes(int T, int64_t cols) {
    if (T < AMX_MIN_T) return 0;
    size_t ntb = ((size_t)T + 15) / 16, nkb = ((size_t)cols + 31) / 32;
    return ntb * nkb * PARTS * TILE_BYTES;
}

/* In-register transpose of a 16x16 matrix of 32-bit lanes (rows r[0..15]):
 * four butterfly stages, each swapping the off-diagonal b x b blocks of
 * every 2b x 2b block. */
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

/* 32 floats (a = the first 16, b = the next 16) -> 32 bf16 (RNE) in order,
 * i.e. 16 dwords each holding the pair (x[2p], x[2p+1]) as the tiles want. */
static inline __m512i bf16_pairs(__m512 a, __m512 b) {
    return (__m512i)_mm512_cvtne2ps_pbh(b, a);
}

/* The float32 values of bf16 elements 0..15 (half = 0) or 16..31 (half = 1). */
static inline __m512 bf16_half_f32(__m512i p, int half) {
    __m256i h = half ? _mm512_extracti64x4_epi64(p, 1) : _mm512_castsi512_si256(p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

void q35_amx_pack(const float *x, int64_t ldx, int T, int64_t cols, void *out) {
    int ntb = (T + 15) / 16;
    int64_t nkb = (cols + 31) / 32;
    uint32_t *dst = out;
    for (int tb = 0; tb < ntb; tb++) {
        for (int64_t kb = 0; kb < nkb; kb++) {
            __m512i part[PARTS][16];
            int64_t k0 = kb * 32, left = cols - k0;
            __mmask16 m0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 m1 = left >= 32   ? 0xffff
                           : left <= 16 ? 0
                                        : (__mmask16)((1u << (left - 16)) - 1);
            for (int n = 0; n < 16; n++) {
                int t = tb * 16 + n;
                if (t >= T) {
                    for (int q = 0; q < PARTS; q++)
                        part[q][n] = _mm512_setzero_si512();
                    continue;
                }
                const float *xr = x + (int64_t)t * ldx + k0;
                __m512 a = _mm512_maskz_loadu_ps(m0, xr), b = _mm512_maskz_loadu_ps(m1, xr + 16);
                /* part q = bf16(x - parts before q); the subtractions are exact */
                for (int q = 0; q < PARTS; q++) {
                    __m512i h = bf16_pairs(a, b);
                    part[q][n] = h;
                    a = _mm512_sub_ps(a, bf16_half_f32(h, 0));
                    b = _mm512_sub_ps(b, bf16_half_f32(h, 1));
                }
            }
            /* rows = tokens now; tiles want rows = pairs, columns = tokens */
            uint32_t *tile = dst + ((size_t)(tb * nkb + kb) * PARTS) * 256;
            for (int q = 0; q < PARTS; q++) {
                transpose16(part[q]);
                for (int p = 0; p < 16; p++)
                    _mm512_store_si512(tile + q * 256 + p * 16, part[q][p]);
            }
        }
    }
}

typedef struct tile_config {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* Writes C tiles (as float [16 rows][16 tokens]) into y rows o..o+15 that
 * lie in [r0, r1), for tokens t0.. below T. */
static inline void store_c(const float *cbuf, float *y, int64_t ldy, int64_t o, int64_t r0,
                           int64_t r1, int t0, int T) {
    __m512i r[16];
    for (int m = 0; m < 16; m++)
        r[m] = _mm512_load_si512(cbuf + m * 16);
    transpose16(r);
    uint32_t mask = 0xffff;
    if (o < r0) mask &= 0xffffu << (r0 - o);
    if (o + 16 > r1) mask &= 0xffffu >> (o + 16 - r1);
    for (int n = 0; n < 16 && t0 + n < T; n++)
        _mm512_mask_storeu_ps(y + (int64_t)(t0 + n) * ldy + o, (__mmask16)mask,
                              _mm512_castsi512_ps(r[n]));
}

/* One 32-column step for up to 3 row blocks (C tiles 0-2) of one token
 * block: B parts in tiles 5-7, A alternating between tiles 3 and 4 so a
 * load can overlap the products of the previous block. */
__attribute__((target("amx-tile,amx-bf16"), always_inline)) static inline void
kstep(const uint32_t *bk, const void *const ap[3], int64_t as, int nb) {
    _tile_loadd(5, bk, 64);
    _tile_loadd(6, bk + 256, 64);
    _tile_loadd(7, bk + 512, 64);
    _tile_loadd(3, ap[0], as);
    _tile_dpbf16ps(0, 3, 5);
    _tile_dpbf16ps(0, 3, 6);
    _tile_dpbf16ps(0, 3, 7);
    if (nb > 1) {
        _tile_loadd(4, ap[1], as);
        _tile_dpbf16ps(1, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
    }
    if (nb > 2) {
        _tile_loadd(3, ap[2], as);
        _tile_dpbf16ps(2, 3, 5);
        _tile_dpbf16ps(2, 3, 6);
        _tile_dpbf16ps(2, 3, 7);
    }
}

__attribute__((target("amx-tile,amx-bf16"))) void q35_amx_matmul_blocks(const q35_tensor *w,
                                                                        const q35_acts *a, float *y,
                                                                        int64_t ldy, int64_t r0,
                                                                        int64_t r1) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.rows[i] = 16;
        cfg.colsb[i] = 64;
    }
    _tile_loadconfig(&cfg);

    int64_t n = w->shape[1], nkb = (n + 31) / 32, nfull = n / 32;
    int T = a->T, ntb = (T + 15) / 16;
    const uint16_t *W = w->data;
    const uint32_t *packed = a->packed;
    int64_t b0 = r0 / 16, b1 = (r1 + 15) / 16;
    _Alignas(64) uint16_t tail[3][16 * 32];
    _Alignas(64) float cbuf[256];

    for (int tb = 0; tb < ntb; tb++) {
        const uint32_t *bt = packed + (size_t)tb * nkb * PARTS * 256;
        for (int64_t b = b0; b < b1; b += 3) {
            int nb = b1 - b < 3 ? (int)(b1 - b) : 3;
            const uint16_t *wb = W + b * 16 * n;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            for (int64_t kb = 0; kb < nfull; kb++) {
                const void *ap[3] = {wb + kb * 32, wb + 16 * n + kb * 32, wb + 32 * n + kb * 32};
                kstep(bt + kb * PARTS * 256, ap, n * 2, nb);
            }
            if (nfull < nkb) { /* column tail: zero-padded copies of the rows' ends */
                int64_t k0 = nfull * 32, left = n - k0;
                memset(tail, 0, sizeof tail);
                for (int i = 0; i < nb; i++)
                    for (int m = 0; m < 16; m++)
                        memcpy(tail[i] + m * 32, wb + (i * 16 + m) * n + k0, (size_t)left * 2);
                const void *ap[3] = {tail[0], tail[1], tail[2]};
                kstep(bt + nfull * PARTS * 256, ap, 64, nb);
            }
            _tile_stored(0, cbuf, 64);
            store_c(cbuf, y, ldy, b * 16, r0, r1, tb * 16, T);
            if (nb > 1) {
                _tile_stored(1, cbuf, 64);
                store_c(cbuf, y, ldy, b * 16 + 16, r0, r1, tb * 16, T);
            }
            if (nb > 2) {
                _tile_stored(2, cbuf, 64);
                store_c(cbuf, y, ldy, b * 16 + 32, r0, r1, tb * 16, T);
            }
        }
    }
    _tile_release();
}

/* ------------------------------------------------ quantized weights
 *
 * Weight w = W0 + W1 (+ W2) exactly (bf16 parts, RNE, as x is split), so
 * W x = sum over i, j of Wi xj. |Wi| <= 2^-8i |w| and |xj| <= 2^-8j |x|
 * (each part is what its predecessors leave, at most half a bf16 ulp), so
 * the products with i + j >= 3 together are at most ~2^-23 |w x|, the
 * size of one float32 rounding of the sum. They are left out: 6 tile
 * products per 32-column step for Q8_0, 5 for Q4_0 (bf16 weights take 3).
 * Measured against float64 (T = 64, 96 rows, 64-3584 columns, random
 * blocks): worst relative error (of sum |w x|) 1.6-1.8e-7, mean 1.7-1.9e-8;
 * the generic set's float32 loop: 1.4-2.0e-7, mean 2.3-2.8e-8. */

#define QPANEL_BLOCKS 3 /* 16-row blocks per panel: one per C tile */
#define PART_ELEMS 512  /* bf16 per tile: 16 rows x 32 columns */

static inline int qparts(q35_dtype dt) {
    return dt == Q35_DT_Q8_0 ? 3 : 2;
}

/* The 32-column steps [kb0, kb1) of the np-part split of 16-row blocks
 * [b, b + nb) of w, rows past the matrix as zeros: part p of block i at
 * step kb is the tile dst + (((kb - kb0) * QPANEL_BLOCKS + i) * np + p) *
 * PART_ELEMS, 64 bytes a row as the tile loads want. */
static inline __attribute__((always_inline)) void split_dt(q35_dtype dt, const q35_tensor *w,
                                                           int np, int64_t b, int nb, int64_t kb0,
                                                           int64_t kb1, uint16_t *dst) {
    int64_t rows = w->shape[0], ldw = (int64_t)q35_row_bytes(dt, w->shape[1]);
    size_t bb = q35_dtype_block_bytes(dt);
    for (int i = 0; i < nb; i++)
        for (int m = 0; m < 16; m++) {
            int64_t r = (b + i) * 16 + m;
            const uint8_t *row = r < rows ? (const uint8_t *)w->data + r * ldw : NULL;
            for (int64_t kb = kb0; kb < kb1; kb++) {
                uint16_t *t = dst + ((kb - kb0) * QPANEL_BLOCKS + i) * np * PART_ELEMS + m * 32;
                __m512 w0 = _mm512_setzero_ps(), w1 = _mm512_setzero_ps();
                if (row) {
                    const uint8_t *blk = row + kb * (int64_t)bb;
                    qblock_f32(dt, blk, qblock_scale(blk), &w0, &w1);
                }
                for (int p = 0; p < np; p++) {
                    __m512i h = bf16_pairs(w0, w1);
                    _mm512_store_si512(t + p * PART_ELEMS, h);
                    if (p + 1 == np) break; /* the last part leaves nothing */
                    w0 = _mm512_sub_ps(w0, bf16_half_f32(h, 0));
                    w1 = _mm512_sub_ps(w1, bf16_half_f32(h, 1));
                }
            }
        }
}

/* dt and np as constants in each copy of the loop. */
static void split_panel(const q35_tensor *w, int np, int64_t b, int nb, int64_t kb0, int64_t kb1,
                        uint16_t *dst) {
    if (w->dtype == Q35_DT_Q8_0)
        split_dt(Q35_DT_Q8_0, w, 3, b, nb, kb0, kb1, dst);
    else
        split_dt(Q35_DT_Q4_0, w, 2, b, nb, kb0, kb1, dst);
    (void)np;
}

/* One 32-column step of up to 3 row blocks: x parts (hi, mid, lo) in tiles
 * 5-7, weight parts alternating between tiles 3 and 4 so that a load can
 * overlap the products of the one before. Per C element the order is
 * W0 hi, W0 mid, W0 lo, W1 hi, W1 mid (, W2 hi): fixed, so the bits do not
 * depend on the panel or the row split. */
#define DP _tile_dpbf16ps
__attribute__((target("amx-tile,amx-bf16"), always_inline)) static inline void
qkstep(const uint32_t *bk, const uint16_t *ak, int np, int nb) {
    _tile_loadd(5, bk, 64);
    _tile_loadd(6, bk + 256, 64);
    _tile_loadd(7, bk + 512, 64);
    const int T3 = 3 * PART_ELEMS, T2 = 2 * PART_ELEMS, P = PART_ELEMS;
    if (np == 3) {
        _tile_loadd(3, ak, 64);
        DP(0, 3, 5);
        DP(0, 3, 6);
        DP(0, 3, 7);
        _tile_loadd(4, ak + P, 64);
        DP(0, 4, 5);
        DP(0, 4, 6);
        _tile_loadd(3, ak + 2 * P, 64);
        DP(0, 3, 5);
        if (nb > 1) {
            _tile_loadd(4, ak + T3, 64);
            DP(1, 4, 5);
            DP(1, 4, 6);
            DP(1, 4, 7);
            _tile_loadd(3, ak + T3 + P, 64);
            DP(1, 3, 5);
            DP(1, 3, 6);
            _tile_loadd(4, ak + T3 + 2 * P, 64);
            DP(1, 4, 5);
        }
        if (nb > 2) {
            _tile_loadd(3, ak + 2 * T3, 64);
            DP(2, 3, 5);
            DP(2, 3, 6);
            DP(2, 3, 7);
            _tile_loadd(4, ak + 2 * T3 + P, 64);
            DP(2, 4, 5);
            DP(2, 4, 6);
            _tile_loadd(3, ak + 2 * T3 + 2 * P, 64);
            DP(2, 3, 5);
        }
    } else {
        _tile_loadd(3, ak, 64);
        DP(0, 3, 5);
        DP(0, 3, 6);
        DP(0, 3, 7);
        _tile_loadd(4, ak + P, 64);
        DP(0, 4, 5);
        DP(0, 4, 6);
        if (nb > 1) {
            _tile_loadd(3, ak + T2, 64);
            DP(1, 3, 5);
            DP(1, 3, 6);
            DP(1, 3, 7);
            _tile_loadd(4, ak + T2 + P, 64);
            DP(1, 4, 5);
            DP(1, 4, 6);
        }
        if (nb > 2) {
            _tile_loadd(3, ak + 2 * T2, 64);
            DP(2, 3, 5);
            DP(2, 3, 6);
            DP(2, 3, 7);
            _tile_loadd(4, ak + 2 * T2 + P, 64);
            DP(2, 4, 5);
            DP(2, 4, 6);
        }
    }
}

/* whole: scratch holds a panel's every step (split once, reused by every
 * token block); otherwise it holds one step, split again for each token
 * block (the same arithmetic, for when the panel's scratch cannot be had). */
__attribute__((target("amx-tile,amx-bf16"))) static void
qmatmul_tiles(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0, int64_t r1,
              uint16_t *scratch, bool whole) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.rows[i] = 16;
        cfg.colsb[i] = 64;
    }
    _tile_loadconfig(&cfg);
    int np = qparts(w->dtype);
    int64_t nkb = w->shape[1] / 32, step = (int64_t)QPANEL_BLOCKS * np * PART_ELEMS;
    int T = a->T, ntb = (T + 15) / 16;
    const uint32_t *packed = a->packed;
    _Alignas(64) float cbuf[256];
    for (int64_t b = r0 / 16, b1 = (r1 + 15) / 16; b < b1; b += QPANEL_BLOCKS) {
        int nb = b1 - b < QPANEL_BLOCKS ? (int)(b1 - b) : QPANEL_BLOCKS;
        if (whole) split_panel(w, np, b, nb, 0, nkb, scratch);
        for (int tb = 0; tb < ntb; tb++) {
            const uint32_t *bt = packed + (size_t)tb * nkb * PARTS * 256;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            for (int64_t kb = 0; kb < nkb; kb++) {
                if (!whole) split_panel(w, np, b, nb, kb, kb + 1, scratch);
                qkstep(bt + kb * PARTS * 256, whole ? scratch + kb * step : scratch, np, nb);
            }
            _tile_stored(0, cbuf, 64);
            store_c(cbuf, y, ldy, b * 16, r0, r1, tb * 16, T);
            if (nb > 1) {
                _tile_stored(1, cbuf, 64);
                store_c(cbuf, y, ldy, b * 16 + 16, r0, r1, tb * 16, T);
            }
            if (nb > 2) {
                _tile_stored(2, cbuf, 64);
                store_c(cbuf, y, ldy, b * 16 + 32, r0, r1, tb * 16, T);
            }
        }
    }
    _tile_release();
}

void q35_amx_qmatmul_stepwise(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy,
                              int64_t r0, int64_t r1) {
    _Alignas(64) uint16_t one[QPANEL_BLOCKS * 3 * PART_ELEMS]; /* 9 KB */
    qmatmul_tiles(w, a, y, ldy, r0, r1, one, false);
}

void q35_amx_qmatmul(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                     int64_t r1) {
    size_t step = (size_t)QPANEL_BLOCKS * qparts(w->dtype) * PART_ELEMS * sizeof(uint16_t);
    uint16_t *panel = aligned_alloc(64, step * (size_t)(w->shape[1] / 32));
    if (!panel) {
        q35_amx_qmatmul_stepwise(w, a, y, ldy, r0, r1);
        return;
    }
    qmatmul_tiles(w, a, y, ldy, r0, r1, panel, true);
    free(panel);
}
