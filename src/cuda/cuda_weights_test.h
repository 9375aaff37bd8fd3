/* cuda_weights_test.h — a test hook for weights.cu's device forms, for
 * tests/cuda/test_cuda_a4_form.c: it runs on the host, so CI checks the
 * upload's repacking where no GPU is. The library never calls it. */
#ifndef Q35_CUDA_WEIGHTS_TEST_H
#define Q35_CUDA_WEIGHTS_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include "model/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether t's dtype takes the 4-bit affine form (A4) on the device; if so,
 * row r of t as that form gives it (codes and (s, z) per 32 weights, as
 * uploaded), decoded on the host as s * q + z into out [t->shape[1]]. */
bool q35_cuda_a4_row_values(const q35_tensor *t, int64_t r, float *out);

#ifdef __cplusplus
}
#endif

#endif
