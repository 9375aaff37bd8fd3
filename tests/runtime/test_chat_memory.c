/* test_chat_memory.c — unload and reload under a live conversation: after
 * q35_model_unload the footprint is 0 and the process's resident memory
 * (/proc/self/statm, weights touched first so they are resident) drops by
 * at least the size of the weight files; a turn while unloaded fails with
 * Q35_ESTATE and leaves the history alone; after q35_model_reload the chat
 * rebuilds its state and gives the same answers as a model never unloaded;
 * q35_chat_drop_cache frees the chat's own state and snapshots. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "chat_test_util.h"
#include "model/model.h"

/* Resident bytes from /proc/self/statm, read with plain syscalls into a
 * stack buffer so that measuring allocates nothing. */
static long resident_bytes(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = 0;
    long size, resident;
    assert_int_equal(sscanf(buf, "%ld %ld", &size, &resident), 2);
    return resident * sysconf(_SC_PAGESIZE);
}

/* Reads every byte of the model's weight files so they are resident. */
static size_t touch_weights(const q35_model *m) {
    size_t bytes = 0;
    volatile unsigned char sink = 0;
    for (int i = 0; i < m->n_files; i++) {
        const unsigned char *p = m->files[i].data;
        for (size_t j = 0; j < m->files[i].size; j += 512)
            sink ^= p[j];
        bytes += m->files[i].size;
    }
    (void)sink;
    return bytes;
}

static void test_unload_reload(void **st) {
    (void)st;
    q35_sampling s = greedy(12, true);
    const char *u1 = "Hello", *u2 = "What did I just say?";

    /* the answers of a model that stays loaded */
    q35_chat *ref = new_chat("Be kind.", 0, 0);
    q35_reply ref1 = turn(ref, u1, &s), ref2 = turn(ref, u2, &s);
    q35_chat_free(ref);

    q35_chat *c = new_chat("Be kind.", 0, 0);
    q35_reply r1 = turn(c, u1, &s);
    assert_true(same_ids(&r1, &ref1));

    size_t footprint = q35_model_memory_footprint(g_model);
    size_t files = touch_weights(g_model);
    assert_true(files > 0 && footprint >= files);
    long before = resident_bytes();
    q35_model_unload(g_model);
    long after = resident_bytes();
    fprintf(stderr, "weights %zu bytes (files %zu); resident %ld -> %ld (-%ld)\n", footprint, files,
            before, after, before - after);
    assert_false(q35_model_is_loaded(g_model));
    assert_int_equal(q35_model_memory_footprint(g_model), 0);
    long expected = (long)files;
#ifdef __SANITIZE_ADDRESS__
    /* AddressSanitizer rewrites the shadow of an unmapped range (1 byte per
     * 8): those shadow pages become resident as the weights' pages go */
    expected -= (long)files / 8;
#endif
    assert_true(before - after >= expected);

    /* no turn while unloaded; the history is untouched */
    q35_reply r;
    q35_err e = {0};
    assert_int_equal(q35_chat_generate(c, u2, &s, NULL, NULL, &r, &e), Q35_ESTATE);
    assert_non_null(strstr(e.msg, "unloaded"));
    assert_int_equal(q35_chat_n_turns(c), 1);

    assert_int_equal(q35_model_reload(g_model, &e), Q35_OK);
    assert_true(q35_model_memory_footprint(g_model) > 0);
    q35_reply r2 = turn(c, u2, &s); /* state rebuilt from the history */
    assert_true(same_ids(&r2, &ref2));
    assert_int_equal(r2.reused_tokens, 0); /* old snapshots were dropped */

    /* dropping the cache frees the chat's memory; the next turn rebuilds */
    q35_chat_stats cs;
    q35_chat_get_stats(c, &cs);
    assert_true(cs.n_snapshots > 0);
    size_t held = cs.memory_bytes;
    q35_chat_drop_cache(c);
    q35_chat_get_stats(c, &cs);
    assert_int_equal(cs.n_snapshots, 0);
    assert_true(cs.memory_bytes < held);
    q35_chat_undo(c, NULL);
    q35_reply r3 = turn(c, u2, &s);
    assert_true(same_ids(&r3, &ref2));

    q35_reply_free(&ref1);
    q35_reply_free(&ref2);
    q35_reply_free(&r1);
    q35_reply_free(&r2);
    q35_reply_free(&r3);
    q35_chat_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unload_reload),
    };
    return cmocka_run_group_tests(tests, load_tiny_chat, free_tiny_chat);
}
