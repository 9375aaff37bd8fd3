/* cmocka.h — a minimal stand-in for the cmocka API that the kernel tests
 * (test_kernels.c, test_int8.c, aarch64/test_neon_variants.c) use, so they
 * can be cross-compiled for AArch64 and run under qemu-aarch64
 * (test_neon_qemu.sh) where no AArch64 cmocka is installed. */
#ifndef Q35_TEST_CMOCKA_SHIM_H
#define Q35_TEST_CMOCKA_SHIM_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fail_msg(...)                                                                              \
    do {                                                                                           \
        printf("ERROR: " __VA_ARGS__);                                                             \
        printf("\n");                                                                              \
        exit(1);                                                                                   \
    } while (0)
#define assert_true(c)                                                                             \
    do {                                                                                           \
        if (!(c)) fail_msg("%s:%d: assertion failed: %s", __FILE__, __LINE__, #c);                 \
    } while (0)
#define fail() fail_msg("%s:%d: fail()", __FILE__, __LINE__)
#define assert_string_equal(a, b) assert_true(strcmp((a), (b)) == 0)
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_null(p) assert_true((p) == NULL)
#define assert_int_equal(a, b) assert_true((long long)(a) == (long long)(b))
#define assert_memory_equal(a, b, n) assert_true(memcmp((a), (b), (n)) == 0)

struct CMUnitTest {
    const char *name;
    void (*fn)(void **);
};
#define cmocka_unit_test(f)                                                                        \
    { #f, f }

static inline int shim_run(const struct CMUnitTest *t, size_t n, int (*setup)(void **)) {
    void *st = NULL;
    if (setup && setup(&st) != 0) return 1;
    for (size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", t[i].name);
        t[i].fn(&st);
        printf("[       OK ] %s\n", t[i].name);
    }
    printf("[  PASSED  ] %zu test(s).\n", n);
    return 0;
}
#define cmocka_run_group_tests(t, setup, teardown) shim_run(t, sizeof(t) / sizeof((t)[0]), setup)
#endif
