/* kv_convert.c — the KV cache's row conversions in plain C, and the choice
 * of the F16C ones where the CPU has them. */
#include "kernels/kv_convert.h"

#include <math.h>
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

/* Q8_0 blocks as ggml rounds them: d = amax / 127 (kept as f16), q =
 * round(x / d) half away from zero. */
static void q8_to_f32(const void *src, float *dst, int n) {
    const uint8_t *b = src;
    for (int i = 0; i < n; i += 32, b += 34) {
        uint16_t h;
        memcpy(&h, b, 2);
        float d = q35_f16_to_f32(h);
        for (int j = 0; j < 32; j++)
            dst[i + j] = d * (float)(int8_t)b[2 + j];
    }
}
static void q8_from_f32(const float *src, void *dst, int n) {
    uint8_t *b = dst;
    for (int i = 0; i < n; i += 32, b += 34) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fabsf(src[i + j]) > amax ? fabsf(src[i + j]) : amax;
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        uint16_t h = q35_f32_to_f16(d);
        memcpy(b, &h, 2);
        for (int j = 0; j < 32; j++)
            b[2 + j] = (uint8_t)(int8_t)roundf(src[i + j] * id);
    }
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
    case Q35_KV_Q8: return (q35_kv_codec){t, q8_to_f32, q8_from_f32};
    default: return (q35_kv_codec){Q35_KV_F32, f32_to_f32, f32_from_f32};
    }
}

int q35_kv_type_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "f32")) return Q35_KV_F32;
    if (!strcmp(s, "f16")) return Q35_KV_F16;
    if (!strcmp(s, "bf16")) return Q35_KV_BF16;
    if (!strcmp(s, "q8")) return Q35_KV_Q8;
    return -1;
}
