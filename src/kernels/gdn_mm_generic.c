/* gdn_mm_generic.c — the plain C definition of gdn_mm (gdn_mm.h): per
 * element, keep * y (or 0 where keep == 0) and then the kd products added
 * in order of p. The SIMD variants keep that order and differ only by
 * fusing each multiply-add (one rounding instead of two). */
#include "kernels/gdn_mm.h"

void q35_gdn_mm_generic(int m, int n, int kd, const float *x, int64_t ldx, const float *b,
                        int64_t ldb, float *y, int64_t ldy, float keep) {
    for (int i = 0; i < m; i++) {
        float *yi = y + i * ldy;
        const float *xi = x + i * ldx;
        for (int j = 0; j < n; j++)
            yi[j] = keep == 0 ? 0 : keep * yi[j];
        for (int p = 0; p < kd; p++) {
            const float *bp = b + p * ldb;
            float xp = xi[p];
            for (int j = 0; j < n; j++)
                yi[j] += xp * bp[j];
        }
    }
}
