/* kv_convert.h — the KV cache's element types and the conversions between
 * them and float32 rows: the attention keeps keys and values in 16 bits by
 * default (half the memory of float32 per cached position) and widens a
 * block of rows at a time to float32 to multiply them. */
#ifndef Q35_KERNELS_KV_CONVERT_H
#define Q35_KERNELS_KV_CONVERT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum q35_kv_type {
    Q35_KV_F32 = 0, /* exact: what the float32 reference computes */
    Q35_KV_F16,     /* IEEE half, round to nearest even (the default) */
    Q35_KV_BF16,    /* bfloat16, round to nearest even */
    Q35_KV_Q8,      /* Q8_0 blocks (f16 scale + 32 int8, 34 bytes): 8.5 bits a value */
} q35_kv_type;

/* Bytes of n cached values (n a multiple of 32 for Q8; offsets into a
 * cache are always whole blocks: heads of 32k values). */
static inline size_t q35_kv_bytes(q35_kv_type t, size_t n) {
    return t == Q35_KV_F32 ? 4 * n : t == Q35_KV_Q8 ? n / 32 * 34 : 2 * n;
}

/* True if a cache of heads of d values, rows of kvw values, can hold type
 * t: Q8 needs whole blocks per head and rows of a whole number of floats
 * (snapshots copy float units). */
static inline bool q35_kv_type_fits(q35_kv_type t, int d, int kvw) {
    return t != Q35_KV_Q8 || (d % 32 == 0 && kvw % 64 == 0);
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

/* The type named by "f32", "f16", "bf16" or "q8"; -1 for anything else. */
int q35_kv_type_parse(const char *s);

/* x86 F16C row conversions (kv_convert_avx2.c), only after a CPU check. */
void q35_kv_f16_to_f32_f16c(const void *src, float *dst, int n);
void q35_kv_f32_to_f16_f16c(const float *src, void *dst, int n);

#endif
