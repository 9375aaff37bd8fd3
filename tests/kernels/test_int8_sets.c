/* test_int8_sets.c — which integer set runs on an AVX2-class x86 CPU:
 *  - the AVX-VNNI feature bit agrees with what the kernel reports in
 *    /proc/cpuinfo (Linux), so the run-time choice sees the real CPU;
 *  - Q35_KERNELS=avx2 is plain AVX2 throughout (its integer twin is the
 *    avx2 set, never AVX-VNNI: it stands for Zen 3 and older cores);
 *  - Q35_KERNELS=avxvnni is the avx2 float set with the AVX-VNNI integer
 *    set where the CPU has it; without the variable the avx2 float set's
 *    twin is AVX-VNNI's exactly when the CPU has it; Q35_EXACT=1 has none;
 *  - the AVX-VNNI micro-kernels give the AVX2 ones' results bit for bit:
 *    vpdpbusd's int32 lanes are the same integers as vpmaddubsw +
 *    vpmaddwd's (no int16 saturation is reachable, int8_x86_tiles.h) and
 *    the float steps are the same code (test_int8 holds both to the
 *    definition in int8_generic.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/half.h"
#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static float frand(void) { /* [-1, 1) */
    return (float)((urand() >> 8) * (1.0 / (1 << 23)) - 1.0);
}

static void test_feature_bit(void **st) {
    (void)st;
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp || !f.os_avx) {
        if (fp) fclose(fp);
        skip();
    }
    char line[8192];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, fp))
        if (!strncmp(line, "flags", 5)) {
            found = strstr(line, " avx_vnni ") != NULL || strstr(line, " avx_vnni\n") != NULL;
        }
    fclose(fp);
    if (found < 0) skip(); /* not x86 Linux */
    printf("avx_vnni: cpuinfo %d, detected %d\n", found, f.avx_vnni);
    assert_int_equal(found, f.avx_vnni);
}

static void test_choice(void **st) {
    (void)st;
    const q35_kernels *avx2 = q35_kernels_avx2();
    if (!avx2) skip();
    const q35_i8_kernels *plain = q35_i8_kernels_avx2(), *vnni = q35_i8_kernels_avxvnni();
    assert_non_null(plain);
    unsetenv("Q35_EXACT");

    setenv("Q35_KERNELS", "avx2", 1);
    const q35_kernels *k = q35_kernels_best();
    assert_string_equal(k->name, "avx2");
    assert_ptr_equal(k->i8, plain);
    assert_ptr_equal(q35_kernels_int8(avx2)->i8, plain);

    setenv("Q35_KERNELS", "avxvnni", 1);
    k = q35_kernels_best();
    if (vnni) {
        assert_string_equal(k->name, "avx2");
        assert_ptr_equal(k->i8, vnni);
    }
    setenv("Q35_EXACT", "1", 1);
    assert_null(q35_kernels_best()->i8);
    unsetenv("Q35_EXACT");

    unsetenv("Q35_KERNELS");
    assert_ptr_equal(q35_kernels_int8(avx2)->i8, vnni ? vnni : plain);
    assert_string_equal(q35_kernels_int8(avx2)->name, "avx2");
}

static void put_f16(uint8_t *p, float v) {
    uint16_t h = q35_f32_to_f16(v);
    memcpy(p, &h, 2);
}

static void test_vnni_equals_avx2(void **st) {
    (void)st;
    const q35_i8_kernels *plain = q35_i8_kernels_avx2(), *vnni = q35_i8_kernels_avxvnni();
    if (!plain || !vnni) skip();
    const q35_dtype formats[] = {Q35_DT_Q8_0, Q35_DT_Q4_0, Q35_DT_Q4_K, Q35_DT_Q6_K};
    const int64_t cols = 1024;
    const int rows = 37, T = 5;
    size_t ldx = q35_q8_row_stride(cols);
    float *xf = malloc((size_t)T * cols * sizeof *xf);
    uint8_t *x = aligned_alloc(64, (size_t)T * ldx);
    float *y0 = malloc((size_t)T * rows * sizeof *y0), *y1 = malloc((size_t)T * rows * sizeof *y1);
    assert_true(xf && x && y0 && y1);
    for (int64_t i = 0; i < T * cols; i++)
        xf[i] = frand() * (i % 53 == 0 ? 10.0f : 1.0f);
    q35_q8_quantize_ref(xf, cols, T, cols, x);
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
        q35_dtype dt = formats[f];
        size_t rb = q35_row_bytes(dt, cols), bb = q35_dtype_block_bytes(dt);
        uint8_t *w = malloc((size_t)rows * rb);
        assert_non_null(w);
        for (size_t i = 0; i < (size_t)rows * rb; i++)
            w[i] = (uint8_t)urand();
        for (size_t o = 0; o < (size_t)rows * rb; o += bb) { /* finite scales */
            float s = 0.001f + 0.01f * (float)(urand() % 1000) / 1000.0f;
            if (dt == Q35_DT_Q6_K)
                put_f16(w + o + 208, s);
            else {
                put_f16(w + o, s);
                if (dt == Q35_DT_Q4_K) put_f16(w + o + 2, s);
            }
        }
        q35_tensor wt = {dt, 2, {rows, cols}, w};
        for (int t = 1; t <= T; t += 2) {
            q35_i8_matmul(plain, &wt, x, ldx, t, y0, rows, 0, rows);
            q35_i8_matmul(vnni, &wt, x, ldx, t, y1, rows, 0, rows);
            assert_memory_equal(y0, y1, (size_t)t * rows * sizeof *y0);
        }
        free(w);
    }
    free(xf);
    free(x);
    free(y0);
    free(y1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feature_bit),
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_vnni_equals_avx2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
