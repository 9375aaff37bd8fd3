/* mlx_affine.c — the plain C matmul over MLX affine weights, and the one
 * place every kernel set's matmul of an MLX affine or Q5_K matrix goes
 * (kernels.c hands these dtypes here), so that the sets' own files need
 * no case for them. */
#include <string.h>

#include "kernels/mlx_affine.h"
#if defined(__aarch64__)
#include "kernels/kernels_neon.h"
#endif

#define QTOK 8   /* tokens per pass over a row: each group decoded once for them */
#define MAXG 128 /* largest group size MLX writes */

void q35_mlx_matmul_generic(const q35_tensor *w, const q35_acts *a, float *y, int64_t ldy,
                            int64_t r0, int64_t r1) {
    if (!q35_dtype_is_mlx(w->dtype)) { /* Q5_K: the generic set's block path */
        q35_kernels_generic()->matmul(w, a, y, ldy, r0, r1);
        return;
    }
    const q35_mlx_affine *qa = (const q35_mlx_affine *)w->data;
    const int gs = qa->group;
    const int64_t cols = w->shape[1], ldx = a->ldx;
    float wb[MAXG];
    for (int64_t o = r0; o < r1; o++) {
        for (int t0 = 0; t0 < a->T; t0 += QTOK) {
            int nt = a->T - t0 < QTOK ? a->T - t0 : QTOK;
            float s[QTOK][4] = {{0}};
            for (int64_t g = 0; g < cols / gs; g++) {
                q35_mlx_group_decode(w, o, g, wb);
                for (int t = 0; t < nt; t++) {
                    const float *xk = a->x + (int64_t)(t0 + t) * ldx + g * gs;
                    for (int i = 0; i < gs; i += 4)
                        for (int j = 0; j < 4; j++)
                            s[t][j] += wb[i + j] * xk[i + j];
                }
            }
            for (int t = 0; t < nt; t++)
                y[(int64_t)(t0 + t) * ldy + o] = (s[t][0] + s[t][1]) + (s[t][2] + s[t][3]);
        }
    }
}

void q35_mlx_q5k_matmul(const q35_kernels *k, const q35_tensor *w, const q35_acts *a, float *y,
                        int64_t ldy, int64_t r0, int64_t r1) {
    const char *n = k->name;
    bool x86 = !strncmp(n, "avx", 3) || !strcmp(n, "amx"); /* avx2, avx512, ... */
#if defined(__x86_64__)
    /* k exists only where its CPU check passed (and every x86 SIMD set has
     * AVX2 + FMA + F16C): no check here, cpuid is slow in a VM */
    if (x86) {
        if (w->dtype == Q35_DT_Q5_K)
            q35_q5k_matmul_avx2(w, a, y, ldy, r0, r1);
        else
            q35_mlx_matmul_avx2(w, a, y, ldy, r0, r1);
        return;
    }
#elif defined(__aarch64__)
    (void)x86;
    if (!strncmp(n, "neon", 4)) { /* Q5_K: the NEON set's k-quant path */
        if (w->dtype == Q35_DT_Q5_K)
            k->matmul(w, a, y, ldy, r0, r1);
        else
            q35_mlx_matmul_neon(w, a, y, ldy, r0, r1);
        return;
    }
#else
    (void)x86;
#endif
    q35_mlx_matmul_generic(w, a, y, ldy, r0, r1);
}
