/* test_chat_memory.c — unload and reload under a live conversation: after
 * q35_model_unload the footprint is 0 and the process's resident memory
 * (weights touched first so they are resident; data mappings counted
 * exactly from /proc/self/smaps, and /proc/self/statm up to its per-CPU
 * batching) drops by at least the size of the weight files; a turn while unloaded fails with
 * Q35_ESTATE and leaves the history alone; after q35_model_reload the chat
 * rebuilds its state and gives the same answers as a model never unloaded;
 * q35_chat_drop_cache frees the chat's own state and snapshots. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "chat_test_util.h"
#include "model/model.h"

/* Resident bytes as /proc/self/statm counts them, read with plain syscalls
 * into a stack buffer so that measuring allocates nothing. The kernel keeps
 * these counters per CPU and folds them in batches, so they may lag by a
 * few dozen pages per CPU. */
static long statm_resident(void) {
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

/* Resident bytes of data counted exactly: the page-table walk of
 * /proc/self/smaps, summed over the mappings that are not executable. Code
 * is left out because the unload runs library code for the first time, and
 * the kernel maps such pages 16 at a time. Read with plain syscalls into a
 * static buffer (smaps is large), so measuring allocates nothing. */
static char smaps[1 << 20];
static long data_resident(void) {
    memset(smaps, 1, sizeof smaps); /* resident before the kernel counts it */
    int fd = open("/proc/self/smaps", O_RDONLY);
    assert_true(fd >= 0);
    size_t n = 0;
    ssize_t got;
    while ((got = read(fd, smaps + n, sizeof smaps - 1 - n)) > 0)
        n += (size_t)got;
    close(fd);
    assert_true(n > 0 && n < sizeof smaps - 1);
    smaps[n] = 0;
    long total = 0;
    bool exec = false;
    for (char *line = smaps; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        char perms[8];
        long kb;
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3)
            exec = strchr(perms, 'x') != NULL;
        else if (!exec && sscanf(line, "Rss: %ld kB", &kb) == 1)
            total += kb * 1024;
        line = next;
    }
    return total;
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

    /* run the unload path once on another instance, so that its code pages
     * are resident before the measured unload */
    q35_model *warm = q35_model_load(TINY_CHAT, NULL, NULL);
    assert_non_null(warm);
    touch_weights(warm);
    q35_model_unload(warm);
    q35_model_free(warm);

    size_t footprint = q35_model_memory_footprint(g_model);
    size_t files = touch_weights(g_model);
    assert_true(files > 0 && footprint >= files);
    long before = data_resident(), before_statm = statm_resident();
    q35_model_unload(g_model);
    long after = data_resident(), after_statm = statm_resident();
    fprintf(stderr, "weights %zu bytes (files %zu); resident %ld -> %ld (-%ld); statm -%ld\n",
            footprint, files, before, after, before - after, before_statm - after_statm);
    assert_false(q35_model_is_loaded(g_model));
    assert_int_equal(q35_model_memory_footprint(g_model), 0);
    long expected = (long)files;
#ifdef __SANITIZE_ADDRESS__
    /* AddressSanitizer rewrites the shadow of an unmapped range (1 byte per
     * 8): those shadow pages become resident as the weights' pages go */
    expected -= (long)files / 8;
#endif
    assert_true(before - after >= expected);
    /* statm says the same, up to its per-CPU batching (64 pages a CPU) and
     * the code pages the unload faulted in (16 at a time) */
    long slack = (64 * sysconf(_SC_NPROCESSORS_ONLN) + 64) * sysconf(_SC_PAGESIZE);
    assert_true(before_statm - after_statm >= expected - slack);

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
