/* float_tiles.h — the float path's blocking, shared by the AVX2, AVX-512
 * and NEON sets (kernels_avx2.c, kernels_avx512.c, kernels_neon.c include
 * it after their register tiles): the loop over row and token tiles, the
 * run-time tile shape turned into a compile-time one, the dequantized
 * panel for many tokens, and the choice between them per dtype. A set's
 * file holds only its arithmetic.
 *
 * What the including file defines first:
 *   TILE_R, TILE_C (1..4)   its register tile, rows x tokens
 *   tile(dt, const char *w, ldw, x, ldx, n, y, ldy, R, C)
 *                           float32 / f16 / bf16 rows
 *   qtile(dt, const uint8_t *w, ...)   Q8_0 / Q4_0 rows widened in registers
 *   ktile(dt, const uint8_t *w, ...)   k-quant rows decoded per super-block
 *       each y[c * ldy + r] = w_r . x_c for r < R, c < C; R and C are
 *       constants at every call (always_inline), and every (r, c)
 *       accumulator sees the same FMA sequence whatever R and C, so no
 *       result depends on the tiling below;
 *   QPANEL                  rows per dequantized panel
 *   QPANEL_MIN_T(dt)        tokens from which the panel is used
 *   panel_row(dt, row, n, dst)   one quantized row as float32, the values
 *                           the tiles widen it to;
 *   optionally PT_R, PT_C and ptile(w, n, x, ldx, y, ldy): a wider float32
 *       tile for the panel (whose weights come from L2), same FMA sequence
 *       per accumulator as tile();
 *   optionally FLOAT_TILES_Q5K: ktile decodes Q5_K too. */
#ifndef Q35_KERNELS_FLOAT_TILES_H
#define Q35_KERNELS_FLOAT_TILES_H

/* Which register tile a loop runs. */
enum tile_kind { TILE_PLAIN, TILE_Q0, TILE_K };

static inline __attribute__((always_inline)) void
tile_of(const enum tile_kind kind, q35_dtype dt, const char *w, int64_t ldw, const float *x,
        int64_t ldx, int64_t n, float *y, int64_t ldy, const int R, const int C) {
    if (kind == TILE_PLAIN)
        tile(dt, w, ldw, x, ldx, n, y, ldy, R, C);
    else if (kind == TILE_Q0)
        qtile(dt, (const uint8_t *)w, ldw, x, ldx, n, y, ldy, R, C);
    else
        ktile(dt, (const uint8_t *)w, ldw, x, ldx, n, y, ldy, R, C);
}

/* A tile with run-time (rows, tokens) <= (TILE_R, TILE_C) through its
 * specialization: R and C must be constants inside the tiles for their
 * loops to unroll into registers. Shapes past the set's tile are never
 * asked for; their cases compile to nothing. */
#define FT_CASE(r, c)                                                                              \
    case r * 8 + c:                                                                                \
        if (r <= TILE_R && c <= TILE_C)                                                            \
            tile_of(kind, dt, w, ldw, x, ldx, n, y, ldy, r <= TILE_R ? r : TILE_R,                 \
                    c <= TILE_C ? c : TILE_C);                                                     \
        break;
#define FT_ROW(r) FT_CASE(r, 1) FT_CASE(r, 2) FT_CASE(r, 3) FT_CASE(r, 4)
static inline __attribute__((always_inline)) void tile_rc(const enum tile_kind kind, q35_dtype dt,
                                                          const char *w, int64_t ldw,
                                                          const float *x, int64_t ldx, int64_t n,
                                                          float *y, int64_t ldy, int R, int C) {
    switch (R * 8 + C) {
        FT_ROW(1)
        FT_ROW(2)
        FT_ROW(3)
        FT_ROW(4)
    default: break;
    }
}
#undef FT_ROW
#undef FT_CASE

/* The one loop of the float matmuls: y[t*ldy + o] = w_o . x_t for rows o
 * in [r0, r1) of w (row stride ldw bytes, n columns of dtype dt) and
 * tokens t < T, in register tiles, rows outer (each row tile's weights
 * streamed once for all tokens). */
static inline __attribute__((always_inline)) void
tile_loop(const enum tile_kind kind, q35_dtype dt, const char *base, int64_t ldw, int64_t n,
          const float *x, int64_t ldx, int T, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    for (int64_t o = r0; o < r1; o += TILE_R) {
        int R = r1 - o < TILE_R ? (int)(r1 - o) : TILE_R;
        for (int t = 0; t < T; t += TILE_C) {
            int C = T - t < TILE_C ? T - t : TILE_C;
            tile_rc(kind, dt, base + o * ldw, ldw, x + t * ldx, ldx, n, y + t * ldy + o, ldy, R, C);
        }
    }
}

/* The P rows of a dequantized panel (float32, n columns) times T token
 * rows, tokens outer, so that a group of token rows stays in L1 while the
 * panel streams past it from L2. */
static void panel_times(const float *panel, int P, int64_t n, const float *x, int64_t ldx, int T,
                        float *y, int64_t ldy) {
    const char *pw = (const char *)panel;
    int t = 0;
#ifdef PT_R
    for (; t + PT_C <= T; t += PT_C) {
        int r = 0;
        for (; r + PT_R <= P; r += PT_R)
            ptile(panel + (int64_t)r * n, n, x + t * ldx, ldx, y + t * ldy + r, ldy);
        tile_loop(TILE_PLAIN, Q35_DT_F32, pw + (int64_t)r * n * 4, n * 4, n, x + t * ldx, ldx, PT_C,
                  y + t * ldy + r, ldy, 0, P - r);
    }
#endif
    for (; t < T; t += TILE_C) {
        int C = T - t < TILE_C ? T - t : TILE_C;
        tile_loop(TILE_PLAIN, Q35_DT_F32, pw, n * 4, n, x + t * ldx, ldx, C, y + t * ldy, ldy, 0,
                  P);
    }
}

/* Many tokens: a panel of QPANEL rows is dequantized once into float32
 * scratch and multiplied by every token. Same products, same FMA order as
 * the tiles straight from the stream. Returns false, having done nothing,
 * when scratch cannot be had. */
static bool qmatmul_panel(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                          int64_t r1) {
    q35_dtype dt = w->dtype;
    int64_t n = w->shape[1], ldw = (int64_t)q35_row_bytes(dt, n);
    float *panel = aligned_alloc(64, (size_t)QPANEL * (size_t)n * sizeof(float));
    if (!panel) return false;
    for (int64_t p = r0; p < r1; p += QPANEL) {
        int P = r1 - p < QPANEL ? (int)(r1 - p) : QPANEL;
        for (int i = 0; i < P; i++)
            panel_row(dt, (const uint8_t *)w->data + (p + i) * ldw, n, panel + (int64_t)i * n);
        panel_times(panel, P, n, a->x, a->ldx, a->T, y + p, ldy);
    }
    free(panel);
    return true;
}

/* Quantized rows: the panel for many tokens, else every weight widened or
 * decoded once per group of TILE_C tokens, straight from the stream (each
 * dtype its own instance of the tiles). */
static void matmul_quant(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    q35_dtype dt = w->dtype;
    if (a->T >= QPANEL_MIN_T(dt) && qmatmul_panel(w, a, y, ldy, r0, r1)) return;
    int64_t n = w->shape[1], ldw = (int64_t)q35_row_bytes(dt, n);
    const char *base = w->data;
    switch (dt) {
    case Q35_DT_Q8_0:
        tile_loop(TILE_Q0, Q35_DT_Q8_0, base, ldw, n, a->x, a->ldx, a->T, y, ldy, r0, r1);
        break;
    case Q35_DT_Q4_0:
        tile_loop(TILE_Q0, Q35_DT_Q4_0, base, ldw, n, a->x, a->ldx, a->T, y, ldy, r0, r1);
        break;
    case Q35_DT_Q4_K:
        tile_loop(TILE_K, Q35_DT_Q4_K, base, ldw, n, a->x, a->ldx, a->T, y, ldy, r0, r1);
        break;
#ifdef FLOAT_TILES_Q5K
    case Q35_DT_Q5_K:
        tile_loop(TILE_K, Q35_DT_Q5_K, base, ldw, n, a->x, a->ldx, a->T, y, ldy, r0, r1);
        break;
#endif
    default: tile_loop(TILE_K, Q35_DT_Q6_K, base, ldw, n, a->x, a->ldx, a->T, y, ldy, r0, r1);
    }
}

/* The float path of q35_kernels.matmul for the dtypes the tiles know:
 * float32 / f16 / bf16 widened as loaded, the quantized ones above. */
static void matmul_float(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    int64_t n = w->shape[1], ldw = n * (int64_t)q35_dtype_size(w->dtype);
    const char *base = w->data;
    switch (w->dtype) {
    case Q35_DT_Q8_0:
    case Q35_DT_Q4_0:
    case Q35_DT_Q4_K:
#ifdef FLOAT_TILES_Q5K
    case Q35_DT_Q5_K:
#endif
    case Q35_DT_Q6_K: matmul_quant(w, a, y, ldy, r0, r1); break;
    case Q35_DT_BF16:
        tile_loop(TILE_PLAIN, Q35_DT_BF16, base, ldw, n, a->x, a->ldx, a->T, y, ldy, r0, r1);
        break;
    case Q35_DT_F16:
        tile_loop(TILE_PLAIN, Q35_DT_F16, base, ldw, n, a->x, a->ldx, a->T, y, ldy, r0, r1);
        break;
    default: tile_loop(TILE_PLAIN, Q35_DT_F32, base, ldw, n, a->x, a->ldx, a->T, y, ldy, r0, r1);
    }
}

/* dots of the kernel set: y[t*ldy + i] = b_i . a_t, float32 rows */
static inline void float_dots(const float *b, int64_t ldb, int nb, const float *a, int64_t lda,
                              int na, int n, float *y, int64_t ldy) {
    tile_loop(TILE_PLAIN, Q35_DT_F32, (const char *)b, ldb * 4, n, a, lda, na, y, ldy, 0, nb);
}

#endif
