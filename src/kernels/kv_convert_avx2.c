/* kv_convert_avx2.c — F16C conversions of KV cache rows (built with -mf16c,
 * run only after the CPU check in kv_convert.c). Round to nearest even, so
 * the bits are those of core/half.h's conversions. */
#include <immintrin.h>
#include <stdint.h>

#include "core/half.h"
#include "kernels/kv_convert.h"

void q35_kv_f16_to_f32_f16c(const void *src, float *dst, int n) {
    const uint16_t *h = src;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++)
        dst[i] = q35_f16_to_f32(h[i]);
}

void q35_kv_f32_to_f16_f16c(const float *src, void *dst, int n) {
    uint16_t *h = dst;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        h[i] = q35_f32_to_f16(src[i]);
}
