/* test_state.c — properties of q35_state on the golden models:
 *  - snapshot/restore: prefill A, snapshot, continue with B, restore,
 *    continue with B again -> identical logits (also into a fresh state of
 *    another n_ctx);
 *  - the prefill path and the decode path agree: T tokens at once vs one at
 *    a time (within float32 tolerance), and a prompt longer than one chunk
 *    vs the same prompt in pieces;
 *  - results do not depend on the thread count (bit for bit);
 *  - snapshots taken inside one evaluation equal the state after their
 *    prefix;
 *  - bad ids and overflow fail and leave the state unchanged. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward/forward.h"
#include "model/model.h"
#include "q35.h"

static q35_model *load(const char *name, int threads) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/%s", Q35_FIXTURES, name);
    q35_err e = {0};
    q35_load_opts lo = {.n_threads = threads};
    q35_model *m = q35_model_load(dir, &lo, &e);
    if (!m) fail_msg("load %s: %s", dir, e.msg);
    return m;
}

static int vocab(const q35_model *m) {
    q35_model_info in;
    q35_model_get_info(m, &in);
    return in.vocab_size;
}

static void make_ids(int32_t *ids, int n, int V, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((seed >> 8) % (unsigned)V);
    }
}

static double rel_diff(const float *a, const float *b, size_t n) {
    double err = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > err) err = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
    }
    return err / mx;
}

static void test_snapshot_restore(void **st) {
    (void)st;
    const char *models[] = {"tiny-a", "tiny-b"};
    for (int mi = 0; mi < 2; mi++) {
        q35_model *m = load(models[mi], 2);
        int V = vocab(m);
        q35_err e = {0};
        int32_t a[37], b[21];
        make_ids(a, 37, V, 1);
        make_ids(b, 21, V, 2);
        q35_state *s = q35_state_new(m, 100, &e);
        assert_non_null(s);
        assert_int_equal(q35_state_eval(m, s, a, 37, NULL, false, &e), 0);
        q35_snapshot *snap = q35_state_snapshot(s, &e);
        assert_non_null(snap);
        assert_int_equal(q35_snapshot_pos(snap), 37);
        assert_true(q35_snapshot_bytes(snap) > 0);

        float *l1 = malloc((size_t)21 * V * 4), *l2 = malloc((size_t)21 * V * 4);
        float *l3 = malloc((size_t)21 * V * 4);
        /* B as a prefill, then B again after restoring */
        assert_int_equal(q35_state_eval(m, s, b, 21, l1, true, &e), 0);
        assert_int_equal(q35_state_pos(s), 58);
        assert_int_equal(q35_state_restore(s, snap, &e), 0);
        assert_int_equal(q35_state_pos(s), 37);
        assert_int_equal(q35_state_eval(m, s, b, 21, l2, true, &e), 0);
        assert_memory_equal(l1, l2, (size_t)21 * V * 4);
        /* token by token after a restore, twice: identical */
        assert_int_equal(q35_state_restore(s, snap, &e), 0);
        for (int i = 0; i < 21; i++)
            assert_int_equal(q35_state_eval(m, s, &b[i], 1, l2 + (size_t)i * V, false, &e), 0);
        assert_int_equal(q35_state_restore(s, snap, &e), 0);
        for (int i = 0; i < 21; i++)
            assert_int_equal(q35_state_eval(m, s, &b[i], 1, l3 + (size_t)i * V, false, &e), 0);
        assert_memory_equal(l2, l3, (size_t)21 * V * 4);
        /* into a fresh state of another size (big enough) */
        q35_state *s2 = q35_state_new(m, 60, &e);
        assert_non_null(s2);
        assert_int_equal(q35_state_restore(s2, snap, &e), 0);
        assert_int_equal(q35_state_eval(m, s2, b, 21, l3, true, &e), 0);
        assert_memory_equal(l1, l3, (size_t)21 * V * 4);
        /* too small for the snapshot: refused */
        q35_state *s3 = q35_state_new(m, 30, &e);
        assert_non_null(s3);
        assert_int_equal(q35_state_restore(s3, snap, &e), Q35_EOVERFLOW);
        /* a snapshot of another model: refused */
        q35_model *other = load(models[1 - mi], 1);
        q35_state *so = q35_state_new(other, 10, &e);
        assert_non_null(so);
        assert_int_equal(q35_state_restore(so, snap, &e), Q35_EINVAL);
        q35_state_free(so);
        q35_model_free(other);
        /* clear = start over: same as a new state */
        q35_state_clear(s);
        assert_int_equal(q35_state_pos(s), 0);
        q35_state_clear(s3);
        assert_int_equal(q35_state_eval(m, s, a, 20, l2, false, &e), 0);
        assert_int_equal(q35_state_eval(m, s3, a, 20, l3, false, &e), 0);
        assert_memory_equal(l2, l3, (size_t)V * 4);

        q35_snapshot_free(snap);
        q35_snapshot_free(NULL);
        q35_state_free(s);
        q35_state_free(s2);
        q35_state_free(s3);
        free(l1);
        free(l2);
        free(l3);
        q35_model_free(m);
    }
}

/* Snapshots taken inside one evaluation (across chunk boundaries): each is
 * the state after its point — continuing from it matches continuing from a
 * state fed just that prefix; the one at the end is bit-identical to a
 * q35_state_snapshot taken after the evaluation; bad points fail cleanly. */
static void test_eval_snapshots(void **st) {
    (void)st;
    const char *models[] = {"tiny-a", "tiny-b"};
    for (int mi = 0; mi < 2; mi++) {
        q35_model *m = load(models[mi], 2);
        int V = vocab(m);
        q35_err e = {0};
        enum { N = Q35_MAX_BATCH + 40, B = 9 };
        int32_t ids[N], more[B];
        make_ids(ids, N, V, 21 + mi);
        make_ids(more, B, V, 5);
        int at[] = {1, 37, Q35_MAX_BATCH, Q35_MAX_BATCH + 1, N};
        enum { NA = sizeof at / sizeof *at };
        q35_snapshot *snaps[NA] = {0};
        q35_state *s = q35_state_new(m, 3 + N + B, &e), *r = q35_state_new(m, 3 + N + B, &e);
        assert_non_null(s);
        assert_non_null(r);
        float *got = malloc((size_t)B * V * 4), *want = malloc((size_t)B * V * 4);
        assert_int_equal(q35_state_eval(m, s, more, 3, NULL, false, &e), 0); /* not at 0 */
        assert_int_equal(q35_state_eval_snapshots(m, s, ids, N, NULL, false, at, NA, snaps, &e), 0);
        assert_int_equal(q35_state_pos(s), 3 + N);
        for (int i = 0; i < NA; i++) {
            assert_non_null(snaps[i]);
            assert_int_equal(q35_snapshot_pos(snaps[i]), 3 + at[i]);
            /* continue from the snapshot ... */
            assert_int_equal(q35_state_restore(r, snaps[i], &e), 0);
            assert_int_equal(q35_state_eval(m, r, more, B, got, true, &e), 0);
            /* ... vs from a state fed exactly that prefix */
            q35_state_clear(r);
            assert_int_equal(q35_state_eval(m, r, more, 3, NULL, false, &e), 0);
            assert_int_equal(q35_state_eval(m, r, ids, at[i], NULL, false, &e), 0);
            assert_int_equal(q35_state_eval(m, r, more, B, want, true, &e), 0);
            double d = rel_diff(got, want, (size_t)B * V);
            printf("%s: snapshot after %d of %d: continuation differs by %.2e\n", models[mi], at[i],
                   N, d);
            assert_true(d < 1e-5);
        }
        /* the last one is the state after the evaluation, bit for bit */
        q35_snapshot *end = q35_state_snapshot(s, &e);
        assert_non_null(end);
        assert_int_equal(q35_state_restore(r, snaps[NA - 1], &e), 0);
        assert_int_equal(q35_state_eval(m, r, more, B, got, true, &e), 0);
        assert_int_equal(q35_state_restore(r, end, &e), 0);
        assert_int_equal(q35_state_eval(m, r, more, B, want, true, &e), 0);
        assert_memory_equal(got, want, (size_t)B * V * 4);
        assert_int_equal(q35_snapshot_bytes(end), q35_snapshot_bytes(snaps[NA - 1]));
        /* bad points: refused, state unchanged, nothing returned */
        int bad1[] = {5, 5}, bad2[] = {0}, bad3[] = {B + 1};
        q35_snapshot *none[2] = {NULL, NULL};
        q35_state_clear(r);
        assert_int_equal(q35_state_eval(m, r, more, 2, NULL, false, &e), 0);
        int pos = q35_state_pos(r);
        assert_int_equal(q35_state_eval_snapshots(m, r, more, B, NULL, false, bad1, 2, none, &e),
                         Q35_EINVAL);
        assert_int_equal(q35_state_eval_snapshots(m, r, more, B, NULL, false, bad2, 1, none, &e),
                         Q35_EINVAL);
        assert_int_equal(q35_state_eval_snapshots(m, r, more, B, NULL, false, bad3, 1, none, &e),
                         Q35_EINVAL);
        assert_int_equal(q35_state_eval_snapshots(m, r, more, B, NULL, false, bad2, 1, NULL, &e),
                         Q35_EINVAL);
        assert_null(none[0]);
        assert_int_equal(q35_state_pos(r), pos);
        for (int i = 0; i < NA; i++)
            q35_snapshot_free(snaps[i]);
        q35_snapshot_free(end);
        free(got);
        free(want);
        q35_state_free(s);
        q35_state_free(r);
        q35_model_free(m);
    }
}

/* T tokens through prefill vs one by one through decode, and a prompt
 * longer than one chunk (Q35_MAX_BATCH) vs odd pieces. */
static void test_prefill_equals_decode(void **st) {
    (void)st;
    const char *models[] = {"tiny-a", "tiny-b"};
    for (int mi = 0; mi < 2; mi++) {
        q35_model *m = load(models[mi], 2);
        int V = vocab(m);
        q35_err e = {0};
        enum { T = Q35_MAX_BATCH + 45 };
        int32_t ids[T];
        make_ids(ids, T, V, 7 + mi);
        float *pre = malloc((size_t)T * V * 4), *dec = malloc((size_t)T * V * 4);
        q35_state *s = q35_state_new(m, T, &e);
        assert_non_null(s);
        assert_int_equal(q35_state_eval(m, s, ids, T, pre, true, &e), 0);
        q35_state_clear(s);
        for (int i = 0; i < T; i++)
            assert_int_equal(q35_state_eval(m, s, &ids[i], 1, dec + (size_t)i * V, false, &e), 0);
        double d = rel_diff(dec, pre, (size_t)T * V);
        printf("%s: prefill %d vs %d decodes: max rel diff %.2e\n", models[mi], T, T, d);
        assert_true(d < 1e-4);
        /* pieces 1, 2, 3, ... through whichever path fits */
        q35_state_clear(s);
        for (int off = 0, len = 1; off < T; off += len, len++) {
            int n = off + len > T ? T - off : len;
            assert_int_equal(q35_state_eval(m, s, ids + off, n, dec + (size_t)off * V, true, &e),
                             0);
            len = n;
        }
        d = rel_diff(dec, pre, (size_t)T * V);
        printf("%s: prefill %d vs pieces: max rel diff %.2e\n", models[mi], T, d);
        assert_true(d < 1e-4);
        /* only the last row when all_logits is false */
        q35_state_clear(s);
        float *last = malloc((size_t)V * 4);
        assert_int_equal(q35_state_eval(m, s, ids, T, last, false, &e), 0);
        assert_true(rel_diff(last, pre + (size_t)(T - 1) * V, (size_t)V) < 1e-5);
        free(last);
        q35_state_free(s);
        free(pre);
        free(dec);
        q35_model_free(m);
    }
}

static void test_thread_count_independent(void **st) {
    (void)st;
    float *ref = NULL;
    int V = 0, T = 70;
    int32_t ids[70];
    for (int nt = 1; nt <= 4; nt++) {
        q35_model *m = load("tiny-b", nt);
        V = vocab(m);
        make_ids(ids, T, V, 99);
        q35_err e = {0};
        q35_state *s = q35_state_new(m, T, &e);
        assert_non_null(s);
        float *got = malloc((size_t)T * V * 4);
        assert_int_equal(q35_state_eval(m, s, ids, T - 3, got, true, &e), 0);
        for (int i = T - 3; i < T; i++)
            assert_int_equal(q35_state_eval(m, s, &ids[i], 1, got + (size_t)i * V, false, &e), 0);
        if (!ref)
            ref = got;
        else {
            assert_memory_equal(ref, got, (size_t)T * V * 4);
            free(got);
        }
        q35_state_free(s);
        q35_model_free(m);
    }
    free(ref);
}

static void test_errors(void **st) {
    (void)st;
    q35_model *m = load("tiny-a", 1);
    int V = vocab(m);
    q35_err e = {0};
    assert_null(q35_state_new(m, 0, &e));
    assert_int_equal(e.code, Q35_EINVAL);
    assert_null(q35_state_new(NULL, 10, &e));
    q35_state *s = q35_state_new(m, 8, &e);
    assert_non_null(s);
    assert_int_equal(q35_state_n_ctx(s), 8);
    int32_t ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float *l = malloc((size_t)V * 4);
    assert_int_equal(q35_state_eval(m, s, ids, 3, l, false, &e), 0);
    int32_t bad[2] = {5, V};
    assert_int_equal(q35_state_eval(m, s, bad, 2, l, false, &e), Q35_EINVAL);
    assert_non_null(strstr(e.msg, "vocabulary"));
    bad[1] = -1;
    assert_int_equal(q35_state_eval(m, s, bad, 2, l, false, &e), Q35_EINVAL);
    assert_int_equal(q35_state_eval(m, s, ids, 6, l, false, &e), Q35_EOVERFLOW);
    assert_int_equal(q35_state_eval(m, s, ids, 0, l, false, &e), Q35_EINVAL);
    assert_int_equal(q35_state_pos(s), 3); /* unchanged by the failures */
    assert_int_equal(q35_state_eval(m, s, ids, 5, NULL, false, &e), 0);
    assert_int_equal(q35_state_pos(s), 8);
    assert_int_equal(q35_state_eval(m, s, ids, 1, l, false, &e), Q35_EOVERFLOW);
    /* a state of another model */
    q35_model *m2 = load("tiny-a", 1);
    assert_int_equal(q35_state_eval(m2, s, ids, 1, l, false, &e), Q35_EINVAL);
    q35_model_free(m2);
    /* after unload, the state refuses to run, even after a reload */
    q35_model_unload(m);
    assert_int_equal(q35_state_eval(m, s, ids, 1, l, false, &e), Q35_ESTATE);
    assert_int_equal(q35_model_reload(m, &e), 0);
    q35_state_clear(s);
    assert_int_equal(q35_state_eval(m, s, ids, 1, l, false, &e), Q35_ESTATE);
    q35_state_free(s);
    free(l);
    q35_model_free(m);
}

int main(void) {
    /* These tests hold prefill, decode, pieces and snapshots to 1e-5 of each
     * other: with a 16-bit KV cache (the default) each path rounds its own
     * slightly different keys, ~2e-5 apart; the f32 cache keeps the exact
     * comparison (tests/forward/test_kv_cache.py covers the 16-bit ones). */
    setenv("Q35_KV_CACHE", "f32", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_restore), cmocka_unit_test(test_prefill_equals_decode),
        cmocka_unit_test(test_eval_snapshots),   cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
