/* test_prompt_cache.c — the server's prompt cache (issue 11 point 4: "the
 * cache is bounded in bytes (LRU)"), on real snapshots of the tiny chat
 * model's states: the bytes held never pass the bound; the least recently
 * used entry goes first (a lookup counts as a use); the same ids replace
 * their entry; a snapshot larger than the bound alone is not kept; lookups
 * give the longest labelled prefix shorter than max_len and count hits and
 * misses; what is restored from an entry is the state it labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "q35.h"
#include "server/prompt_cache.h"

static q35_model *model;
static q35_state *state;
static int V;
static int32_t ids[64]; /* one token stream; entries label its prefixes */

static int setup(void **st) {
    q35_err e = {0};
    q35_load_opts o = {.n_threads = 1};
    model = q35_model_load(Q35_TINY_CHAT, &o, &e);
    if (!model) {
        fprintf(stderr, "load: %s\n", e.msg);
        return -1;
    }
    q35_model_info info;
    q35_model_get_info(model, &info);
    V = info.vocab_size;
    for (int i = 0; i < 64; i++)
        ids[i] = (int32_t)((1000 + 37 * i) % V);
    state = q35_state_new(model, 256, &e);
    return state ? 0 : -1;
}

static int teardown(void **st) {
    q35_state_free(state);
    q35_model_free(model);
    return 0;
}

/* A snapshot of the state after ids[0..n) (caller owns it). */
static q35_snapshot *snap_at(int n) {
    q35_err e = {0};
    q35_state_clear(state);
    assert_int_equal(q35_state_eval(model, state, ids, n, NULL, false, &e), Q35_OK);
    q35_snapshot *s = q35_state_snapshot(state, &e);
    assert_non_null(s);
    return s;
}

static size_t entry_bytes(int n) {
    q35_snapshot *s = snap_at(n);
    size_t b = q35_snapshot_bytes(s) + (size_t)n * sizeof(int32_t);
    q35_snapshot_free(s);
    return b;
}

static bool holds(const srv_cache *c, int n) {
    return srv_cache_has(c, ids, n);
}

static void lru_within_bytes(void **st) {
    /* room for two entries of about 8-12 tokens, not three */
    size_t one = entry_bytes(12);
    srv_cache c;
    srv_cache_init(&c, 2 * one + one / 2);
    assert_int_equal(srv_cache_put(&c, ids, 8, snap_at(8)), 0);
    assert_int_equal(srv_cache_put(&c, ids, 10, snap_at(10)), 0);
    assert_true(holds(&c, 8) && holds(&c, 10));
    assert_true(c.bytes <= c.max_bytes);
    /* use the older one: the other is now the least recently used */
    const srv_cache_entry *x = srv_cache_best(&c, ids, 9, 64);
    assert_non_null(x);
    assert_int_equal(x->n, 8);
    assert_int_equal(srv_cache_put(&c, ids, 12, snap_at(12)), 0);
    assert_true(holds(&c, 8));
    assert_false(holds(&c, 10));
    assert_true(holds(&c, 12));
    assert_int_equal(c.evictions, 1);
    assert_true(c.bytes <= c.max_bytes);
    /* without a use in between, the oldest goes */
    assert_int_equal(srv_cache_put(&c, ids, 11, snap_at(11)), 0);
    assert_false(holds(&c, 8));
    assert_true(holds(&c, 12) && holds(&c, 11));
    assert_int_equal(c.evictions, 2);
    assert_true(c.bytes <= c.max_bytes);
    /* the bytes held are the entries' own */
    size_t sum = 0;
    for (int i = 0; i < c.n; i++)
        sum += c.items[i].bytes;
    assert_int_equal(sum, c.bytes);
    srv_cache_free(&c);
}

static void replace_and_oversize(void **st) {
    size_t one = entry_bytes(12);
    srv_cache c;
    srv_cache_init(&c, 3 * one);
    assert_int_equal(srv_cache_put(&c, ids, 12, snap_at(12)), 0);
    size_t b = c.bytes;
    assert_int_equal(srv_cache_put(&c, ids, 12, snap_at(12)), 0); /* same ids: replaced */
    assert_int_equal(c.n, 1);
    assert_int_equal(c.bytes, b);
    assert_int_equal(c.evictions, 0);
    /* an entry larger than the whole bound is dropped, nothing evicted */
    srv_cache small;
    srv_cache_init(&small, one / 2);
    assert_int_equal(srv_cache_put(&small, ids, 12, snap_at(12)), 0);
    assert_int_equal(small.n, 0);
    assert_int_equal(small.bytes, 0);
    /* a bound of 0 (--cache-mb 0) keeps nothing */
    srv_cache none;
    srv_cache_init(&none, 0);
    assert_int_equal(srv_cache_put(&none, ids, 4, snap_at(4)), 0);
    assert_int_equal(none.n, 0);
    assert_null(srv_cache_best(&none, ids, 4, 64));
    srv_cache_free(&none);
    srv_cache_free(&small);
    srv_cache_free(&c);
}

static void longest_prefix_and_restore(void **st) {
    srv_cache c;
    srv_cache_init(&c, (size_t)64 << 20);
    assert_int_equal(srv_cache_put(&c, ids, 4, snap_at(4)), 0);
    assert_int_equal(srv_cache_put(&c, ids, 9, snap_at(9)), 0);
    /* another stream diverging at 6: only the 4-token entry is its prefix */
    int32_t other[12];
    memcpy(other, ids, sizeof other);
    other[6] = (other[6] + 1) % V;
    const srv_cache_entry *x = srv_cache_best(&c, other, 12, 64);
    assert_non_null(x);
    assert_int_equal(x->n, 4);
    x = srv_cache_best(&c, ids, 12, 64);
    assert_int_equal(x->n, 9);
    x = srv_cache_best(&c, ids, 12, 9); /* shorter than max_len only */
    assert_int_equal(x->n, 4);
    assert_null(srv_cache_best(&c, ids, 3, 64));
    assert_int_equal(c.hits, 3);
    assert_int_equal(c.misses, 1);
    /* restoring the 9-token entry and feeding the rest gives the logits of
     * the same pieces fed from scratch (same pieces: the same kernels) */
    q35_err e = {0};
    float *want = malloc(sizeof(float) * (size_t)V), *got = malloc(sizeof(float) * (size_t)V);
    assert_non_null(want);
    assert_non_null(got);
    q35_state_clear(state);
    assert_int_equal(q35_state_eval(model, state, ids, 9, NULL, false, &e), Q35_OK);
    assert_int_equal(q35_state_eval(model, state, ids + 9, 3, want, false, &e), Q35_OK);
    /* and from another point first, so that the restore has something to undo */
    q35_state_clear(state);
    assert_int_equal(q35_state_eval(model, state, other, 12, NULL, false, &e), Q35_OK);
    x = srv_cache_best(&c, ids, 12, 64);
    assert_int_equal(q35_state_restore(state, x->snap, &e), Q35_OK);
    assert_int_equal(q35_state_pos(state), 9);
    assert_int_equal(q35_state_eval(model, state, ids + 9, 3, got, false, &e), Q35_OK);
    assert_memory_equal(want, got, sizeof(float) * (size_t)V);
    free(want);
    free(got);
    srv_cache_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(lru_within_bytes),
                                       cmocka_unit_test(replace_and_oversize),
                                       cmocka_unit_test(longest_prefix_and_restore)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
