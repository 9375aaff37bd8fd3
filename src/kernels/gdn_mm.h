/* gdn_mm.h — each kernel set's gdn_mm (kernels.h): the one product the
 * chunked DeltaNet form (forward/gdn_chunk.c) is made of,
 *     y[i*ldy + j] = keep * y[i*ldy + j] + sum_p x[i*ldx + p] * b[p*ldb + j]
 * for i < m, j < n, p < kd (y not read where keep == 0), register-blocked
 * per set: a tile of rows x vectors of accumulators, b's column block held
 * in L1 across all rows of x. gdn_mm_generic.c is the plain C definition. */
#ifndef Q35_KERNELS_GDN_MM_H
#define Q35_KERNELS_GDN_MM_H

#include <stdint.h>

void q35_gdn_mm_generic(int m, int n, int kd, const float *x, int64_t ldx, const float *b,
                        int64_t ldb, float *y, int64_t ldy, float keep);
void q35_gdn_mm_avx2(int m, int n, int kd, const float *x, int64_t ldx, const float *b, int64_t ldb,
                     float *y, int64_t ldy, float keep);
void q35_gdn_mm_avx512(int m, int n, int kd, const float *x, int64_t ldx, const float *b,
                       int64_t ldb, float *y, int64_t ldy, float keep);
void q35_gdn_mm_neon(int m, int n, int kd, const float *x, int64_t ldx, const float *b, int64_t ldb,
                     float *y, int64_t ldy, float keep);

#endif
