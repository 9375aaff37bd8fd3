/* kv_convert.h — the KV cache's element types and the conversions between
 * them and float32 rows: the attention keeps keys and values in 16 bits by
 * default (half the memory of float32 per cached position) and widens a
 * block of rows at a time to float32 to multiply them. */
#ifndef Q35_KERNELS_KV_CONVERT_H
#define Q35_KERNELS_KV_CONVERT_H

#include <stddef.h>

typedef enum q35_kv_type {
    Q35_KV_F32 = 0, /* exact: what the float32 reference computes */
    Q35_KV_F16,     /* IEEE half, round to nearest even (the default) */
    Q35_KV_BF16,    /* bfloat16, round to nearest even */
} q35_kv_type;

static inline size_t q35_kv_elem_bytes(q35_kv_type t) {
    return t == Q35_KV_F32 ? 4 : 2;
}

/* A pair of row conversions for one type. */
typedef struct q35_kv_codec {
    q35_kv_type type;
    void (*to_f32)(const void *src, float *dst, int n);
    void (*from_f32)(const float *src, void *dst, int n);
} q35_kv_codec;

/* The conversions for `t`, using F16C on x86 CPUs that have it (the same
 * bits as the plain C ones: round to nearest even both ways exact). */
q35_kv_codec q35_kv_codec_for(q35_kv_type t);

/* The type named by "f32", "f16" or "bf16"; -1 for anything else. */
int q35_kv_type_parse(const char *s);

/* x86 F16C row conversions (kv_convert_avx2.c), only after a CPU check. */
void q35_kv_f16_to_f32_f16c(const void *src, float *dst, int n);
void q35_kv_f32_to_f16_f16c(const float *src, void *dst, int n);

#endif
