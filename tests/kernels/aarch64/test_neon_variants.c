/* test_neon_variants.c — the three AArch64 kernel sets (plain NEON,
 * +dotprod, +i8mm) on the CPU this runs on: test_neon_qemu.sh runs it under
 * several qemu-aarch64 CPU models and says, in Q35_EXPECT_NEON, which set
 * the model's features must give. Checks that run-time detection offers
 * exactly the sets the CPU executes (a set offered on a CPU without its
 * instructions would die of SIGILL here), that Q35_KERNELS picks each by
 * name, and that every offered set computes what the others compute. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "kernels/kernels_neon.h"

static const char *const level_names[Q35_NEON_LEVELS] = {"neon", "neon-dotprod", "neon-i8mm"};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 23)) - 1.0);
}

/* The highest level the environment says this CPU model has, or -1 when
 * not told (a native run). */
static int expected_level(void) {
    const char *e = getenv("Q35_EXPECT_NEON");
    if (!e || !*e) return -1;
    for (int l = 0; l < Q35_NEON_LEVELS; l++)
        if (!strcmp(e, level_names[l])) return l;
    fail_msg("Q35_EXPECT_NEON=%s is not a NEON set name", e);
    return -1;
}

static void test_detection(void **st) {
    (void)st;
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    printf("features: neon=%d dotprod=%d i8mm=%d\n", f.neon, f.dotprod, f.i8mm);
    assert_true(f.neon);
    int have = f.i8mm ? Q35_NEON_I8MM : f.dotprod ? Q35_NEON_DOTPROD : Q35_NEON_PLAIN;
    int want = expected_level();
    if (want >= 0 && have != want)
        fail_msg("detected %s, but this CPU model has %s", level_names[have], level_names[want]);
    for (int l = 0; l < Q35_NEON_LEVELS; l++) {
        const q35_kernels *k = q35_kernels_neon_level(l);
        if (l <= have) {
            assert_non_null(k);
            assert_true(!strcmp(k->name, level_names[l]));
        } else {
            assert_null(k);
        }
    }
}

/* Q35_KERNELS names a set; one the CPU lacks gives the best it has. */
static void test_force_by_name(void **st) {
    (void)st;
    const char *saved = getenv("Q35_KERNELS");
    char *keep = saved ? strdup(saved) : NULL;
    const q35_kernels *best = NULL;
    for (int l = 0; l < Q35_NEON_LEVELS; l++)
        if (q35_kernels_neon_level(l)) best = q35_kernels_neon_level(l);
    assert_non_null(best);
    unsetenv("Q35_KERNELS");
    assert_true(q35_kernels_neon() == best);
    assert_true(q35_kernels_best() == best);
    for (int l = 0; l < Q35_NEON_LEVELS; l++) {
        setenv("Q35_KERNELS", level_names[l], 1);
        const q35_kernels *k = q35_kernels_best(), *own = q35_kernels_neon_level(l);
        assert_true(k == (own ? own : best));
    }
    setenv("Q35_KERNELS", "generic", 1);
    assert_true(q35_kernels_best() == q35_kernels_generic());
    if (keep)
        setenv("Q35_KERNELS", keep, 1);
    else
        unsetenv("Q35_KERNELS");
    free(keep);
}

/* Float matmuls and vector ops: every offered set gives the plain NEON
 * set's bits (they share these functions; a set that stops sharing them
 * must still agree). */
static void test_float_ops_agree(void **st) {
    (void)st;
    const q35_kernels *plain = q35_kernels_neon_level(Q35_NEON_PLAIN);
    enum { ROWS = 37, COLS = 67, T = 6 };
    static float w[ROWS * COLS], x[T * COLS], y0[T * ROWS], y1[T * ROWS];
    for (int i = 0; i < ROWS * COLS; i++)
        w[i] = frand();
    for (int i = 0; i < T * COLS; i++)
        x[i] = frand();
    q35_tensor wt = {Q35_DT_F32, 2, {ROWS, COLS}, w};
    q35_acts a = q35_acts_prepare(plain, x, COLS, T, COLS, NULL);
    plain->matmul(&wt, &a, y0, ROWS, 0, ROWS);
    for (int l = 1; l < Q35_NEON_LEVELS; l++) {
        const q35_kernels *k = q35_kernels_neon_level(l);
        if (!k) continue;
        q35_acts ak = q35_acts_prepare(k, x, COLS, T, COLS, NULL);
        k->matmul(&wt, &ak, y1, ROWS, 0, ROWS);
        assert_memory_equal(y0, y1, sizeof y0);
        assert_true(k->dot(w, x, COLS) == plain->dot(w, x, COLS));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detection),
        cmocka_unit_test(test_force_by_name),
        cmocka_unit_test(test_float_ops_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
