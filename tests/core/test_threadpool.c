/* test_threadpool.c — q35_threadpool_for covers every index exactly once,
 * in the chunks asked for, for any pool size, many times in a row (the
 * spin-then-sleep handoff), and runs inline without a pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/threadpool.h"

typedef struct job {
    atomic_int *hits;
    int64_t chunk;
    int n_threads;
    atomic_int bad;
} job;

static void mark(void *ctx, int64_t b, int64_t e, int tid) {
    job *j = ctx;
    if (b % j->chunk != 0 || e - b > j->chunk || e <= b || tid < 0 || tid >= j->n_threads)
        atomic_fetch_add(&j->bad, 1);
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&j->hits[i], 1);
}

static void run_checked(q35_threadpool *p, int64_t n, int64_t chunk) {
    atomic_int *hits = calloc((size_t)n + 1, sizeof *hits);
    job j = {hits, chunk, q35_threadpool_size(p), 0};
    q35_threadpool_for(p, n, chunk, mark, &j);
    assert_int_equal(atomic_load(&j.bad), 0);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(atomic_load(&hits[i]), 1);
    assert_int_equal(atomic_load(&hits[n]), 0);
    free(hits);
}

static void test_coverage(void **st) {
    (void)st;
    for (int nt = 1; nt <= 5; nt++) {
        q35_threadpool *p = q35_threadpool_new(nt, NULL);
        assert_non_null(p);
        assert_int_equal(q35_threadpool_size(p), nt);
        static const int64_t sizes[][2] = {{1, 1}, {7, 3}, {100, 1}, {1000, 64}, {5, 100}, {0, 4}};
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            run_checked(p, sizes[s][0], sizes[s][1]);
        q35_threadpool_free(p);
    }
    run_checked(NULL, 37, 5);
}

static void sum_range(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    atomic_llong *s = ctx;
    long long local = 0;
    for (int64_t i = b; i < e; i++)
        local += i;
    atomic_fetch_add(s, local);
}

static void test_many_loops_and_sleep(void **st) {
    (void)st;
    q35_threadpool *p = q35_threadpool_new(3, NULL);
    assert_non_null(p);
    for (int it = 0; it < 3000; it++) {
        atomic_llong s = 0;
        int64_t n = 1 + it % 97;
        q35_threadpool_for(p, n, 2, sum_range, &s);
        assert_int_equal(atomic_load(&s), n * (n - 1) / 2);
        if (it % 1000 == 999) usleep(20000); /* let the workers fall asleep */
    }
    q35_threadpool_free(p);
    q35_threadpool_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage),
        cmocka_unit_test(test_many_loops_and_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
