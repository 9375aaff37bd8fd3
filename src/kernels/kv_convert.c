/* kv_convert.c — the KV cache's row conversions in plain C, and the choice
 * of the F16C ones where the CPU has them. */
#include "kernels/kv_convert.h"

#include <stdint.h>
#include <string.h>

#include "core/half.h"
#include "kernels/kernels.h"

static void f32_to_f32(const void *src, float *dst, int n) {
    memcpy(dst, src, (size_t)n * sizeof *dst);
}
static void f32_from_f32(const float *src, void *dst, int n) {
    memcpy(dst, src, (size_t)n * sizeof *src);
}
static void f16_to_f32(const void *src, float *dst, int n) {
    const uint16_t *h = src;
    for (int i = 0; i < n; i++)
        dst[i] = q35_f16_to_f32(h[i]);
}
static void f16_from_f32(const float *src, void *dst, int n) {
    uint16_t *h = dst;
    for (int i = 0; i < n; i++)
        h[i] = q35_f32_to_f16(src[i]);
}
static void bf16_to_f32(const void *src, float *dst, int n) {
    const uint16_t *h = src;
    for (int i = 0; i < n; i++)
        dst[i] = q35_bf16_to_f32(h[i]);
}
static void bf16_from_f32(const float *src, void *dst, int n) {
    uint16_t *h = dst;
    for (int i = 0; i < n; i++)
        h[i] = q35_f32_to_bf16(src[i]);
}

q35_kv_codec q35_kv_codec_for(q35_kv_type t) {
    switch (t) {
    case Q35_KV_F16: {
        q35_kv_codec c = {t, f16_to_f32, f16_from_f32};
#if defined(__x86_64__)
        if (q35_kernels_avx2()) { /* AVX2 sets require F16C too */
            c.to_f32 = q35_kv_f16_to_f32_f16c;
            c.from_f32 = q35_kv_f32_to_f16_f16c;
        }
#endif
        return c;
    }
    case Q35_KV_BF16: return (q35_kv_codec){t, bf16_to_f32, bf16_from_f32};
    default: return (q35_kv_codec){Q35_KV_F32, f32_to_f32, f32_from_f32};
    }
}

int q35_kv_type_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "f32")) return Q35_KV_F32;
    if (!strcmp(s, "f16")) return Q35_KV_F16;
    if (!strcmp(s, "bf16")) return Q35_KV_BF16;
    return -1;
}
