/* cuda_backend.h — the CUDA backend as the C side sees it: the backend
 * table that forward/backend.c hands device-cuda states to (see
 * forward/backend.h). Everything else of src/cuda is internal
 * (cuda_internal.cuh). */
#ifndef Q35_CUDA_CUDA_BACKEND_H
#define Q35_CUDA_CUDA_BACKEND_H

#include "forward/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const q35_backend q35_cuda_backend;

#ifdef __cplusplus
}
#endif

#endif
