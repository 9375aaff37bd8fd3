/* mlx_affine_rows.h — the one body of the SIMD float paths for MLX affine
 * weights (mlx_affine.h), included by mlx_affine_avx2.c and
 * mlx_affine_neon.c, which differ only in an 8-float vector type and how
 * eight codes become one. Per row, per group: sum(q * x) in float32 for up
 * to TT tokens at once (token counts made constants, so the accumulators
 * stay in registers), then the row's dot is sum_g s_g * that + sum_g z_g *
 * sum(x over g): the real number of the dot over s*q + z, rounded
 * differently (within float32 tolerance of the plain C definition; each
 * token's result is the same whatever tokens share the call, and whatever
 * rows).
 *
 * The includer defines, for its instruction set:
 *   v8                        8 float32 lanes
 *   v8_zero(), v8_load(p), v8_fma(a, b, c) (a * b + c), v8_add(a, b),
 *   v8_set1(s), v8_hsum(v)
 *   unit_tab, make_tab(b)      what unit_codes needs for b bits
 *   unit_codes(p, &tab)        the eight codes in the 8 bytes at p (the
 *                              first b of them) as a v8
 *   aux_row(p, aux, at, n, out) n scales / biases from element `at` of an
 *                              array of dtype aux, as float32
 *   MLX_ROWS_FN                the function's name
 * and includes mlx_affine.h. */
#ifndef Q35_KERNELS_MLX_AFFINE_ROWS_H
#define Q35_KERNELS_MLX_AFFINE_ROWS_H

#define TT 4       /* tokens per pass over a row */
#define MAXGR 1024 /* groups per row held for sum(x) (cols <= 32768 at group 32) */

/* sum_g s_g * sum(q x over g) of one row for NT (1..TT) tokens, into dots.
 * The row's last group is read from `last` (a zero-padded copy): 8-byte
 * loads of its last units would run past the row (and past the file for
 * the last row). */
static inline __attribute__((always_inline)) void
row_dots(const int NT, const uint8_t *row, int64_t ng, int gs, int b, size_t gb, uint8_t *last,
         const unit_tab *tab, const float *sc, const float *const *xt, float *dots) {
    v8 tot[TT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
        tot[t] = v8_zero();
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *p = row + (size_t)g * gb;
        if (g == ng - 1) {
            memcpy(last, p, gb);
            p = last;
        }
        v8 acc0[TT], acc1[TT];
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++)
            acc0[t] = acc1[t] = v8_zero();
        for (int u = 0; u < gs / 8; u += 2) {
            v8 q0 = unit_codes(p + (size_t)u * (size_t)b, tab);
            v8 q1 = unit_codes(p + (size_t)(u + 1) * (size_t)b, tab);
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const float *x = xt[t] + g * gs + 8 * u;
                acc0[t] = v8_fma(q0, v8_load(x), acc0[t]);
                acc1[t] = v8_fma(q1, v8_load(x + 8), acc1[t]);
            }
        }
        const v8 s = v8_set1(sc[g]);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++)
            tot[t] = v8_fma(s, v8_add(acc0[t], acc1[t]), tot[t]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
        dots[t] = v8_hsum(tot[t]);
}

void MLX_ROWS_FN(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy, int64_t r0,
                 int64_t r1) {
    const q35_mlx_affine *qa = (const q35_mlx_affine *)w->data;
    const int b = q35_dtype_mlx_bits(w->dtype), gs = qa->group;
    const int64_t cols = w->shape[1], ng = cols / gs, ldx = a->ldx;
    if (ng > MAXGR) {
        q35_mlx_matmul_generic(w, a, y, ldy, r0, r1);
        return;
    }
    const size_t rb = (size_t)(cols / 8 * b), gb = (size_t)(gs / 8 * b);
    const unit_tab tab = make_tab(b);
    float xs[TT][MAXGR], sc[MAXGR], bi[MAXGR];
    uint8_t last[128 + 8];
    memset(last, 0, sizeof last);
    for (int t0 = 0; t0 < a->T; t0 += TT) {
        const int nt = a->T - t0 < TT ? a->T - t0 : TT;
        const float *xt[TT];
        for (int t = 0; t < TT; t++)
            xt[t] = a->x + (int64_t)(t0 + (t < nt ? t : 0)) * ldx;
        for (int t = 0; t < nt; t++)
            for (int64_t g = 0; g < ng; g++) {
                v8 s = v8_zero();
                for (int i = 0; i < gs; i += 8)
                    s = v8_add(s, v8_load(xt[t] + g * gs + i));
                xs[t][g] = v8_hsum(s);
            }
        for (int64_t o = r0; o < r1; o++) {
            const uint8_t *row = (const uint8_t *)qa->q + (size_t)o * rb;
            aux_row(qa->scales, qa->aux, (size_t)(o * ng), ng, sc);
            aux_row(qa->biases, qa->aux, (size_t)(o * ng), ng, bi);
            float dots[TT];
            switch (nt) { /* constant token counts: accumulators stay in registers */
            case 1: row_dots(1, row, ng, gs, b, gb, last, &tab, sc, xt, dots); break;
            case 2: row_dots(2, row, ng, gs, b, gb, last, &tab, sc, xt, dots); break;
            case 3: row_dots(3, row, ng, gs, b, gb, last, &tab, sc, xt, dots); break;
            default: row_dots(4, row, ng, gs, b, gb, last, &tab, sc, xt, dots); break;
            }
            for (int t = 0; t < nt; t++) { /* the biases' part: one dot per token */
                v8 bv = v8_zero();
                int64_t g = 0;
                for (; g + 8 <= ng; g += 8)
                    bv = v8_fma(v8_load(bi + g), v8_load(xs[t] + g), bv);
                float bz = v8_hsum(bv);
                for (; g < ng; g++)
                    bz += bi[g] * xs[t][g];
                y[(int64_t)(t0 + t) * ldy + o] = dots[t] + bz;
            }
        }
    }
}

#endif
