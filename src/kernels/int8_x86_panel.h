/* int8_x86_panel.h — the x86 packed-panel micro-kernels for many tokens
 * (prefill; microkernel.h's q35_i8_panel_desc), included by int8_avx2.c
 * and int8_avxvnni.c after int8_x86_tiles.h.
 *
 * Why: the register tiles of int8_x86_tiles.h reduce each (row, token,
 * block) to one float with a vpmaddwd, a conversion, a multiply and an
 * FMA, as much work as the byte products themselves. Here 8 weight rows
 * are repacked once per call (the 4-byte groups of a block interleaved
 * row by row, so one 256-bit vector holds 4 elements of each of the 8
 * rows) and each token's 4 activation bytes are broadcast against it: the
 * 8 rows' sums of a block build up in the lanes of one vector (int16 with
 * vpmaddubsw, which 8 groups of 4-bit products cannot overflow: 8 * 2 *
 * 15 * 127 = 30480; int32 with vpdpbusd), and the float steps run once per
 * block for 8 rows. The packed group is reused by every token of the call.
 *
 * Packed group of 8 rows (rows past R are zero): per 32-element block b,
 *   Q8_0: 8 x 32 bytes of |w|, 8 x 32 of w, then dw[8] as float (544 bytes)
 *   Q4_0: 8 x 32 bytes (group g: rows 0..7, elements 4g..4g+3 of each, the
 *         nibbles n as bytes), then dw[8] as float    (288 bytes)
 *   Q4_K: the same 256 bytes, then d sc_j [8], dmin m_j [8] (320 bytes)
 *   Q6_K: the same 256 bytes of 6-bit values, then the half scales and
 *         offsets as int16 and d[8]               (384 bytes)
 * Per (row, token) the integer part I_b and the float steps are those of
 * microkernel.h (Q4_0: dw d_b (I - 8 S_b); Q4_K: (d sc_j d_b) I - (dmin m_j
 * d_b) S_b; Q6_K: (d d_b) I), and each lane sees the same operations
 * whatever R and C. */
#ifndef Q35_KERNELS_INT8_X86_PANEL_H
#define Q35_KERNELS_INT8_X86_PANEL_H

#define PANEL_ROWS 8
#ifndef PANEL_NT
#define PANEL_NT 4
#endif
/* Tokens a tile of the Q4_0 / Q4_K panels (groups outer, tokens inner:
 * fewer registers a token than the others' tiles). */
#ifndef PANEL_NT_Q4
#define PANEL_NT_Q4 PANEL_NT
#endif
/* The packs read the weights from memory (the kernels only the packed
 * copy): 8 rows advancing a block at a time, which the hardware
 * prefetchers left latency-bound (perf: 72% of the Q4_0 pack's samples on
 * its first load; 1.4 GB/s packing a cold matrix against 5 GB/s of plain
 * reading). So each pack prefetches, into L2, the same bytes of the next
 * 8 rows (the driver's next group, PANEL_ROWS * ldw ahead), which then
 * arrive while this group's kernels run. */
#define PACK_NEXT(p, ldw) _mm_prefetch(ahead(p, PANEL_ROWS *(ldw)), _MM_HINT_T1)

/* 8 rows of 8 dwords -> 8 vectors of dword g of each row (an 8x8
 * transpose of 32-bit elements) */
INLINE void transpose8x8_epi32(__m256i v[8]) {
    __m256i t[8], u[8];
    UNROLL for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    UNROLL for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    UNROLL for (int g = 0; g < 4; g++) {
        v[g] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x20);
        v[g + 4] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x31);
    }
}

static size_t panel_bytes_q4_0(int64_t cols) {
    return (size_t)(cols / 32) * 288;
}
static size_t panel_bytes_q4_K(int64_t cols) {
    return (size_t)(cols / 32) * 320;
}

static size_t panel_bytes_q8_0(int64_t cols) {
    return (size_t)(cols / 32) * 544;
}

static size_t panel_bytes_q6_K(int64_t cols) {
    return (size_t)(cols / 32) * 384;
}

/* The f16 scales at p + r * ldw (r < R; 0 past R) as 8 floats: gathered
 * as 16-bit words in two scalar registers, then one conversion (8 scalar
 * conversions and stores took a quarter of a pack's time). */
INLINE __m256 f16_rows(const uint8_t *p, size_t ldw, int R, const int full) {
    uint64_t lo = 0, hi = 0;
    UNROLL for (int r = 0; r < 8; r++) {
        if (!full && r >= R) break;
        uint16_t h;
        memcpy(&h, p + (size_t)r * ldw, 2);
        if (r < 4)
            lo |= (uint64_t)h << (16 * r);
        else
            hi |= (uint64_t)h << (16 * (r - 4));
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

/* Q8_0: |w| (vpmaddubsw's unsigned side) and w itself (whose signs move
 * onto the broadcast activations), both interleaved, then dw[8]. `full`
 * (R == 8, a compile-time constant) drops the edge tests. */
INLINE void pack_q8_0_body(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out,
                           const int full) {
    for (int64_t b = 0; b < cols / 32; b++) {
        __m256i v[8], s[8];
        UNROLL for (int r = 0; r < 8; r++) {
            if (full || r < R) {
                const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * 34;
                PACK_NEXT(blk, ldw);
                s[r] = _mm256_loadu_si256((const __m256i *)(blk + 2));
                v[r] = _mm256_sign_epi8(s[r], s[r]);
            } else
                v[r] = s[r] = _mm256_setzero_si256();
        }
        transpose8x8_epi32(v);
        transpose8x8_epi32(s);
        uint8_t *o = out + (size_t)b * 544;
        UNROLL for (int g = 0; g < 8; g++) {
            _mm256_storeu_si256((__m256i *)(o + 32 * g), v[g]);
            _mm256_storeu_si256((__m256i *)(o + 256 + 32 * g), s[g]);
        }
        _mm256_storeu_ps((float *)(void *)(o + 512), f16_rows(w + (size_t)b * 34, ldw, R, full));
    }
}

static void panel_pack_q8_0(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out) {
    if (R == 8)
        pack_q8_0_body(w, ldw, R, cols, out, 1);
    else
        pack_q8_0_body(w, ldw, R, cols, out, 0);
}

INLINE void pack_q4_0_body(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out,
                           const int full) {
    const __m256i m15 = _mm256_set1_epi8(15), hsh = _mm256_setr_epi64x(0, 0, 4, 4);
    for (int64_t b = 0; b < cols / 32; b++) {
        __m256i v[8];
        UNROLL for (int r = 0; r < 8; r++) {
            if (full || r < R) {
                const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * 18;
                PACK_NEXT(blk, ldw);
                __m256i q =
                    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 2)));
                v[r] = _mm256_and_si256(_mm256_srlv_epi64(q, hsh), m15);
            } else
                v[r] = _mm256_setzero_si256();
        }
        transpose8x8_epi32(v);
        uint8_t *o = out + (size_t)b * 288;
        UNROLL for (int g = 0; g < 8; g++) _mm256_storeu_si256((__m256i *)(o + 32 * g), v[g]);
        _mm256_storeu_ps((float *)(void *)(o + 256), f16_rows(w + (size_t)b * 18, ldw, R, full));
    }
}

static void panel_pack_q4_0(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out) {
    if (R == 8)
        pack_q4_0_body(w, ldw, R, cols, out, 1);
    else
        pack_q4_0_body(w, ldw, R, cols, out, 0);
}

static void panel_pack_q4_K(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out) {
    const __m256i m15 = _mm256_set1_epi8(15);
    for (int64_t k = 0; k < cols / 256; k++) {
        float mul[8][8], sub[8][8];
        for (int r = 0; r < 8; r++) {
            if (r < R) {
                const uint8_t *sb = w + (size_t)r * ldw + (size_t)k * 144;
                for (int i = 0; i < 144; i += 64)
                    PACK_NEXT(sb + i, ldw);
                k4_scales(sb, mul[r], sub[r]);
            } else
                memset(mul[r], 0, 32), memset(sub[r], 0, 32);
        }
        __m256i sc[8], mn[8];
        for (int r = 0; r < 8; r++) {
            sc[r] = _mm256_loadu_si256((const __m256i *)mul[r]);
            mn[r] = _mm256_loadu_si256((const __m256i *)sub[r]);
        }
        transpose8x8_epi32(sc); /* sc[j]: d sc_j of rows 0..7 */
        transpose8x8_epi32(mn);
        for (int j = 0; j < 8; j++) {
            __m256i v[8];
            for (int r = 0; r < 8; r++) {
                if (r < R) {
                    __m256i q =
                        _mm256_loadu_si256((const __m256i *)(w + (size_t)r * ldw + (size_t)k * 144 +
                                                             16 + 32 * (j / 2)));
                    v[r] = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(q, 4) : q, m15);
                } else
                    v[r] = _mm256_setzero_si256();
            }
            transpose8x8_epi32(v);
            uint8_t *o = out + (size_t)(8 * k + j) * 320;
            for (int g = 0; g < 8; g++)
                _mm256_storeu_si256((__m256i *)(o + 32 * g), v[g]);
            _mm256_storeu_si256((__m256i *)(o + 256), sc[j]);
            _mm256_storeu_si256((__m256i *)(o + 288), mn[j]);
        }
    }
}

/* Q6_K: per block j of a super-block, the 6-bit values q (0..63) of the
 * 8 rows interleaved as Q4_0's nibbles (groups 0-3: the first 16-element
 * half, 4-7: the second), then int16 vectors of the half scales, each in
 * both int16 lanes of its row's dword (sc0 at 256, sc1 at 288), the
 * offsets' multipliers (-32 sc0, -32 sc1) per row dword at 320 (times the
 * token's half sums (s_2b, s_2b+1) by one vpmaddwd), and d[8] as float at
 * 352. */
static void panel_pack_q6_K(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out) {
    const __m256i m15 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    for (int64_t k = 0; k < cols / 256; k++) {
        int16_t sc[8][8][2]; /* [j][row][half] */
        float d[8];
        for (int r = 0; r < 8; r++) {
            const uint8_t *sb = w + (size_t)r * ldw + (size_t)k * 210;
            if (r < R)
                for (int i = 0; i < 210; i += 64)
                    PACK_NEXT(sb + i, ldw);
            for (int j = 0; j < 8; j++)
                for (int h = 0; h < 2; h++)
                    sc[j][r][h] = r < R ? (int8_t)sb[192 + 2 * j + h] : 0;
            d[r] = r < R ? f16(sb + 208) : 0.0f;
        }
        for (int j = 0; j < 8; j++) {
            const int h = j / 4, kk = j % 4;
            __m256i v[8];
            for (int r = 0; r < 8; r++) {
                if (r < R) {
                    const uint8_t *sb = w + (size_t)r * ldw + (size_t)k * 210;
                    __m256i lo = _mm256_loadu_si256((const __m256i *)(sb + 64 * h + 32 * (kk & 1)));
                    __m256i hi = _mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * h));
                    if (kk >> 1) lo = _mm256_srli_epi16(lo, 4);
                    lo = _mm256_and_si256(lo, m15);
                    hi = _mm256_and_si256(_mm256_srl_epi16(hi, _mm_cvtsi32_si128(2 * kk)), m3);
                    v[r] = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
                } else
                    v[r] = _mm256_setzero_si256();
            }
            transpose8x8_epi32(v);
            uint8_t *o = out + (size_t)(8 * k + j) * 384;
            for (int g = 0; g < 8; g++)
                _mm256_storeu_si256((__m256i *)(o + 32 * g), v[g]);
            int16_t s0[16], s1[16], off[16];
            for (int r = 0; r < 8; r++) {
                s0[2 * r] = s0[2 * r + 1] = sc[j][r][0];
                s1[2 * r] = s1[2 * r + 1] = sc[j][r][1];
                off[2 * r] = (int16_t)(-32 * sc[j][r][0]);
                off[2 * r + 1] = (int16_t)(-32 * sc[j][r][1]);
            }
            memcpy(o + 256, s0, 32);
            memcpy(o + 288, s1, 32);
            memcpy(o + 320, off, 32);
            memcpy(o + 352, d, 32);
        }
    }
}

INLINE void panel_store(float *y, int64_t ldy, int c, __m256 acc, int R) {
    if (R == 8)
        _mm256_storeu_ps(y + c * ldy, acc);
    else {
        float t[8];
        _mm256_storeu_ps(t, acc);
        for (int r = 0; r < R; r++)
            y[c * ldy + r] = t[r];
    }
}

/* Q8_0: |w| times a with w's sign (|w a pairs| <= 2 * 128 * 127 =
 * 32512: one group per vpmaddubsw + vpmaddwd on AVX2), groups outer and
 * tokens inner as in panel_q4_tile (each packed vector loaded once a
 * block). */
INLINE void panel_q8_tile(const uint8_t *pk, int R, const uint8_t *x, size_t ldx, int64_t cols,
                          float *y, int64_t ldy, const int C) {
    __m256 acc[PANEL_NT];
    const float *da[PANEL_NT];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm256_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
    }
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *pb = pk + (size_t)b * 544;
        __m256i p[PANEL_NT];
        UNROLL for (int c = 0; c < C; c++) p[c] = _mm256_setzero_si256();
        UNROLL for (int g = 0; g < 8; g++) {
            const __m256i W = _mm256_loadu_si256((const __m256i *)(pb + 32 * g));
            const __m256i S = _mm256_loadu_si256((const __m256i *)(pb + 256 + 32 * g));
            UNROLL for (int c = 0; c < C; c++) {
                int32_t a4;
                memcpy(&a4, x + c * ldx + 32 * b + 4 * g, 4);
                const __m256i sa = _mm256_sign_epi8(_mm256_set1_epi32(a4), S);
#ifdef DPBUSD
                p[c] = DPBUSD(p[c], W, sa);
#else
                p[c] = _mm256_add_epi32(p[c], sum_pairs(_mm256_maddubs_epi16(W, sa)));
                __asm__("" : "+x"(p[c])); /* a chain, as in panel_q4_tile */
#endif
            }
        }
        const __m256 dw = _mm256_loadu_ps((const float *)(const void *)(pb + 512));
        UNROLL for (int c = 0; c < C; c++) acc[c] = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(p[c]), _mm256_mul_ps(dw, _mm256_broadcast_ss(da[c] + b)), acc[c]);
    }
    UNROLL for (int c = 0; c < C; c++) panel_store(y, ldy, c, acc[c], R);
}

/* Blocks whose per-token terms panel_q4_tile forms ahead, per chunk. */
#define PANEL_CHUNK 64

/* The token terms of blocks b0 .. b0 + n - 1 of a q8 row (n <= PANEL_CHUNK): Q4_0's -8 S_b as
 * int32, Q4_K's d_b S_b as float (the same float product the kernel formed per block, so the same
 * bits), 8 blocks at a time, so that the kernel broadcasts them from memory rather than building
 * each from two int16 sums in scalar registers. */
INLINE void panel_token_terms(q35_dtype dt, const int16_t *sa, const float *da, int64_t b0, int n,
                              int32_t *off, float *dS) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i s16 = _mm256_loadu_si256((const __m256i *)(const void *)(sa + 2 * (b0 + i)));
        const __m256i S = _mm256_madd_epi16(s16, _mm256_set1_epi16(1)); /* s_2b + s_2b+1 */
        if (dt == Q35_DT_Q4_0)
            _mm256_storeu_si256((__m256i *)(void *)(off + i),
                                _mm256_slli_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), S), 3));
        else
            _mm256_storeu_ps(dS + i,
                             _mm256_mul_ps(_mm256_loadu_ps(da + b0 + i), _mm256_cvtepi32_ps(S)));
    }
    for (; i < n; i++) { /* Q4_0 rows of cols % 256 != 0 */
        const int32_t S = sa[2 * (b0 + i)] + sa[2 * (b0 + i) + 1];
        off[i] = -8 * S;
        dS[i] = da[b0 + i] * (float)S;
    }
}

INLINE void panel_q4_tile(q35_dtype dt, const uint8_t *pk, int R, const uint8_t *x, size_t ldx,
                          int64_t cols, float *y, int64_t ldy, const int C) {
    __m256 acc[PANEL_NT_Q4];
    const float *da[PANEL_NT_Q4];
    const int16_t *sa[PANEL_NT_Q4];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm256_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    const size_t bb = dt == Q35_DT_Q4_0 ? 288 : 320;
    const int64_t nb = cols / 32;
    int32_t off[PANEL_NT_Q4][PANEL_CHUNK];
    float dS[PANEL_NT_Q4][PANEL_CHUNK];
    for (int64_t b0 = 0; b0 < nb; b0 += PANEL_CHUNK) {
        const int n = nb - b0 < PANEL_CHUNK ? (int)(nb - b0) : PANEL_CHUNK;
        UNROLL for (int c = 0; c < C; c++)
            panel_token_terms(dt, sa[c], da[c], b0, n, off[c], dS[c]);
        for (int i = 0; i < n; i++) {
            const int64_t b = b0 + i;
            const uint8_t *pb = pk + (size_t)b * bb;
            /* groups outer, tokens inner: each packed vector is loaded
             * once a block and serves the C tokens from a register (token
             * outer reloaded it per token: two loads a vpmaddubsw) */
            __m256i p[PANEL_NT_Q4];
#ifdef DPBUSD
            UNROLL for (int c = 0; c < C; c++) p[c] =
                dt == Q35_DT_Q4_0 ? _mm256_set1_epi32(off[c][i]) : _mm256_setzero_si256();
#else
            UNROLL for (int c = 0; c < C; c++) p[c] = _mm256_setzero_si256();
#endif
            UNROLL for (int g = 0; g < 8; g++) {
                const __m256i W = _mm256_loadu_si256((const __m256i *)(pb + 32 * g));
                UNROLL for (int c = 0; c < C; c++) {
                    int32_t a4;
                    memcpy(&a4, x + c * ldx + 32 * b + 4 * g, 4);
#ifdef DPBUSD
                    p[c] = DPBUSD(p[c], W, _mm256_set1_epi32(a4));
#else
                    p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(W, _mm256_set1_epi32(a4)));
                    /* keeps the sum a chain in one register: gcc regrouped
                     * the int16 adds into a tree and spilled the products */
                    __asm__("" : "+x"(p[c]));
#endif
                }
            }
            const __m256 sc = _mm256_loadu_ps((const float *)(const void *)(pb + 256));
            UNROLL for (int c = 0; c < C; c++) {
#ifndef DPBUSD
                p[c] = sum_pairs(p[c]);
                if (dt == Q35_DT_Q4_0) p[c] = _mm256_add_epi32(p[c], _mm256_set1_epi32(off[c][i]));
#endif
                const __m256 dab = _mm256_broadcast_ss(da[c] + b);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p[c]), _mm256_mul_ps(sc, dab), acc[c]);
                if (dt != Q35_DT_Q4_0) {
                    const __m256 mn = _mm256_loadu_ps((const float *)(const void *)(pb + 288));
                    acc[c] = _mm256_fnmadd_ps(mn, _mm256_broadcast_ss(&dS[c][i]), acc[c]);
                }
            }
        }
    }
    UNROLL for (int c = 0; c < C; c++) panel_store(y, ldy, c, acc[c], R);
}

/* Q6_K's I_b per row: the two groups' vpmaddubsw sums added in int16 (2
 * * 2 * 63 * 127 = 32004), each pair of groups scaled by its half's sc
 * and summed to int32 by vpmaddwd, plus the offset term -32 (sc0 s_2b +
 * sc1 s_2b+1) by one more. */
INLINE __m256i panel_block_dot_q6(const uint8_t *pb, const uint8_t *xa, const int16_t *sab) {
    int32_t s2;
    memcpy(&s2, sab, 4);
    __m256i p =
        _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(pb + 320)), _mm256_set1_epi32(s2));
    UNROLL for (int q = 0; q < 4; q++) {
        int32_t a0, a1;
        memcpy(&a0, xa + 8 * q, 4);
        memcpy(&a1, xa + 8 * q + 4, 4);
        __m256i s16 = _mm256_add_epi16(
            _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(pb + 64 * q)),
                                 _mm256_set1_epi32(a0)),
            _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(pb + 64 * q + 32)),
                                 _mm256_set1_epi32(a1)));
        const __m256i sc = _mm256_loadu_si256((const __m256i *)(pb + 256 + 32 * (q / 2)));
        p = _mm256_add_epi32(p, _mm256_madd_epi16(s16, sc));
    }
    return p;
}

INLINE void panel_q6_tile(const uint8_t *pk, int R, const uint8_t *x, size_t ldx, int64_t cols,
                          float *y, int64_t ldy, const int C) {
    __m256 acc[PANEL_NT];
    const float *da[PANEL_NT];
    const int16_t *sa[PANEL_NT];
    UNROLL for (int c = 0; c < C; c++) {
        acc[c] = _mm256_setzero_ps();
        da[c] = q35_q8_row_d(x + c * ldx, cols);
        sa[c] = q35_q8_row_s(x + c * ldx, cols);
    }
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *pb = pk + (size_t)b * 384;
        const __m256 dv = _mm256_loadu_ps((const float *)(const void *)(pb + 352));
        UNROLL for (int c = 0; c < C; c++) {
            __m256i p = panel_block_dot_q6(pb, x + c * ldx + 32 * b, sa[c] + 2 * b);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                     _mm256_mul_ps(dv, _mm256_broadcast_ss(da[c] + b)), acc[c]);
        }
    }
    UNROLL for (int c = 0; c < C; c++) panel_store(y, ldy, c, acc[c], R);
}

static void panel_q6_K(const uint8_t *pk, int R, const uint8_t *x, size_t ldx, int C, int64_t cols,
                       float *y, int64_t ldy) {
    switch (C) {
    case 1: panel_q6_tile(pk, R, x, ldx, cols, y, ldy, 1); break;
    case 2: panel_q6_tile(pk, R, x, ldx, cols, y, ldy, 2); break;
    case 3: panel_q6_tile(pk, R, x, ldx, cols, y, ldy, 3); break;
    default: panel_q6_tile(pk, R, x, ldx, cols, y, ldy, PANEL_NT); break;
    }
}

#define PANEL_DISPATCH(dt)                                                                         \
    switch (C) {                                                                                   \
    case 1: panel_q4_tile(dt, pk, R, x, ldx, cols, y, ldy, 1); break;                              \
    case 2: panel_q4_tile(dt, pk, R, x, ldx, cols, y, ldy, 2); break;                              \
    case 3: panel_q4_tile(dt, pk, R, x, ldx, cols, y, ldy, 3); break;                              \
    default: panel_q4_tile(dt, pk, R, x, ldx, cols, y, ldy, PANEL_NT_Q4); break;                   \
    }

static void panel_q8_0(const uint8_t *pk, int R, const uint8_t *x, size_t ldx, int C, int64_t cols,
                       float *y, int64_t ldy) {
    switch (C) {
    case 1: panel_q8_tile(pk, R, x, ldx, cols, y, ldy, 1); break;
    case 2: panel_q8_tile(pk, R, x, ldx, cols, y, ldy, 2); break;
    case 3: panel_q8_tile(pk, R, x, ldx, cols, y, ldy, 3); break;
    default: panel_q8_tile(pk, R, x, ldx, cols, y, ldy, PANEL_NT); break;
    }
}

static void panel_q4_0(const uint8_t *pk, int R, const uint8_t *x, size_t ldx, int C, int64_t cols,
                       float *y, int64_t ldy) {
    PANEL_DISPATCH(Q35_DT_Q4_0)
}

static void panel_q4_K(const uint8_t *pk, int R, const uint8_t *x, size_t ldx, int C, int64_t cols,
                       float *y, int64_t ldy) {
    PANEL_DISPATCH(Q35_DT_Q4_K)
}

/* min_t per dtype: Q8_0, Q4_0, Q4_K, Q6_K; the entries alone (for a set
 * that lists more panels), then the whole .panel field. */
#define Q35_X86_PANEL_FILE(t8, t40, t4k, t6k)                                                      \
    [Q35_DT_Q8_0] = {PANEL_ROWS, PANEL_NT, t8, panel_bytes_q8_0, panel_pack_q8_0, panel_q8_0},     \
    [Q35_DT_Q4_0] = {PANEL_ROWS, PANEL_NT_Q4, t40, panel_bytes_q4_0, panel_pack_q4_0, panel_q4_0}, \
    [Q35_DT_Q4_K] = {PANEL_ROWS, PANEL_NT_Q4, t4k, panel_bytes_q4_K, panel_pack_q4_K, panel_q4_K}, \
    [Q35_DT_Q6_K] = {PANEL_ROWS, PANEL_NT, t6k, panel_bytes_q6_K, panel_pack_q6_K, panel_q6_K},
#define Q35_X86_PANEL_ENTRIES(t8, t40, t4k, t6k) .panel = {Q35_X86_PANEL_FILE(t8, t40, t4k, t6k)}

#endif
