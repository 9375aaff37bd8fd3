/* tensor.h — a weight matrix or vector as the kernels see it: a dtype, a
 * shape (row-major, shape[0] = rows = output features) and a pointer that is
 * either into a mapped file or into a buffer the model owns. */
#ifndef Q35_MODEL_TENSOR_H
#define Q35_MODEL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum q35_dtype { Q35_DT_F32 = 0, Q35_DT_F16, Q35_DT_BF16, Q35_DT_COUNT } q35_dtype;

typedef struct q35_tensor {
    q35_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
} q35_tensor;

static inline int64_t q35_tensor_numel(const q35_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* Bytes per element (types with sub-byte elements are not in this enum). */
static inline size_t q35_dtype_size(q35_dtype d) {
    return d == Q35_DT_F32 ? 4 : 2;
}

static inline const char *q35_dtype_name(q35_dtype d) {
    switch (d) {
    case Q35_DT_F32: return "f32";
    case Q35_DT_F16: return "f16";
    case Q35_DT_BF16: return "bf16";
    default: return "?";
    }
}

#endif
