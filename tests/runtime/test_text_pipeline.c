/* test_text_pipeline.c — the streaming text stages of a reply, without a
 * model: the thinking/answer splitter (on the golden runs' texts, whose
 * thinking and answer were split by the reference, and on hand-made edge
 * cases) and the stop-string matcher. Every input is also fed in every
 * two-piece cut and one character at a time: the streamed result must not
 * depend on how the text was cut. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/stop_strings.h"
#include "runtime/thinking.h"

/* Splits `text` fed as the given pieces (cut positions, ascending). */
static void split_cuts(const char *text, bool thinking, const size_t *cuts, int n_cuts,
                       q35_strbuf *th, q35_strbuf *an) {
    q35_think_splitter t;
    q35_think_init(&t, thinking);
    size_t len = strlen(text), from = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        assert_int_equal(q35_think_feed(&t, text + from, to - from, th, an), 0);
        from = to;
    }
    assert_int_equal(q35_think_finish(&t, th), 0);
    q35_think_free(&t);
}

static bool char_start(const char *s, size_t i) {
    return ((unsigned char)s[i] & 0xC0) != 0x80;
}

/* Checks the split of `text` in one piece, every two-piece cut and one
 * character at a time against the expected thinking and answer. */
static void check_split(const char *text, bool thinking, const char *want_th, const char *want_an) {
    size_t len = strlen(text);
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    int n = 0;
    for (size_t i = 1; i < len; i++)
        if (char_start(text, i)) cuts[n++] = i;
    for (int variant = -2; variant < n; variant++) {
        q35_strbuf th = {0}, an = {0};
        if (variant == -2)
            split_cuts(text, thinking, NULL, 0, &th, &an);
        else if (variant == -1)
            split_cuts(text, thinking, cuts, n, &th, &an);
        else
            split_cuts(text, thinking, &cuts[variant], 1, &th, &an);
        const char *gt = th.p ? th.p : "", *ga = an.p ? an.p : "";
        if (strcmp(gt, want_th) || strcmp(ga, want_an)) {
            fprintf(
                stderr,
                "split of '%s' (variant %d):\n  thinking '%s' want '%s'\n  answer '%s' want '%s'\n",
                text, variant, gt, want_th, ga, want_an);
            fail();
        }
        q35_strbuf_free(&th);
        q35_strbuf_free(&an);
    }
    free(cuts);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static void test_golden_splits(void **st) {
    (void)st;
    char *s = slurp(Q35_FIXTURES "/chat/chat_runs.json");
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    int n = 0;
    const cJSON *run, *turn;
    cJSON_ArrayForEach(run, cJSON_GetObjectItem(j, "runs")) {
        bool thinking = cJSON_IsTrue(cJSON_GetObjectItem(run, "enable_thinking"));
        cJSON_ArrayForEach(turn, cJSON_GetObjectItem(run, "turns")) {
            check_split(cJSON_GetObjectItem(turn, "text")->valuestring, thinking,
                        cJSON_GetObjectItem(turn, "thinking")->valuestring,
                        cJSON_GetObjectItem(turn, "answer")->valuestring);
            n++;
        }
    }
    assert_true(n > 0);
    cJSON_Delete(j);
}

static void test_split_edges(void **st) {
    (void)st;
    /* newlines around the think block go; inside they stay */
    check_split("\n\nabc\n\ndef\n\n</think>\n\nxyz\n", true, "abc\n\ndef", "xyz\n");
    /* leading spaces of the answer stay (only newlines are dropped) */
    check_split("t</think>\n  a", true, "t", "  a");
    /* no end tag: all thinking; a dangling start of the tag is text */
    check_split("abc\n</th", true, "abc\n</th", "");
    check_split("abc\n\n", true, "abc", "");
    /* a look-alike that is not the tag */
    check_split("a</thinker>b</think>c", true, "a</thinker>b", "c");
    /* the tag spelled over several pieces, and a second one in the answer */
    check_split("x</think>y</think>z", true, "x", "y</think>z");
    /* thinking off: everything is answer, leading newlines dropped */
    check_split("\n\nhello</think>", false, "", "hello</think>");
    /* multi-byte characters on both sides */
    check_split("日本\n</think>\n\nèé😀", true, "日本", "èé😀");
    check_split("", true, "", "");
}

/* Feeds `text` through the stop matcher one character at a time and in
 * one piece; both must give `want` and `want_match`. */
static void check_stop(const char *text, const char *const *stop, const char *want,
                       bool want_match) {
    for (int mode = 0; mode < 2; mode++) {
        q35_stop_matcher m;
        q35_stop_init(&m, stop);
        q35_strbuf out = {0};
        size_t len = strlen(text);
        if (mode == 0) {
            assert_int_equal(q35_stop_feed(&m, text, len, &out), 0);
        } else {
            size_t i = 0;
            while (i < len) {
                size_t j = i + 1;
                while (j < len && !char_start(text, j))
                    j++;
                assert_int_equal(q35_stop_feed(&m, text + i, j - i, &out), 0);
                /* released text never ends inside a character */
                if (out.n) assert_true(out.n == len || char_start(text, out.n));
                i = j;
            }
        }
        assert_int_equal(q35_stop_finish(&m, &out), 0);
        const char *got = out.p ? out.p : "";
        if (strcmp(got, want) || m.matched != want_match) {
            fprintf(stderr, "stop on '%s' (mode %d): got '%s' matched %d\n", text, mode, got,
                    m.matched);
            fail();
        }
        q35_strbuf_free(&out);
        q35_stop_free(&m);
    }
}

static void test_stop_strings(void **st) {
    (void)st;
    const char *const world[] = {"world", NULL};
    check_stop("Hello world. Bye", world, "Hello ", true);
    check_stop("Hello wor", world, "Hello wor", false);
    const char *const two[] = {"abac", "c", NULL};
    check_stop("ababac", two, "ab", true); /* the earliest match wins */
    check_stop("abxbc", two, "abxb", true);
    const char *const none[] = {NULL};
    check_stop("anything", none, "anything", false);
    const char *const empty[] = {"", "zz", NULL};
    check_stop("a z zz", empty, "a z ", true);
    const char *const accent[] = {"é!", NULL};
    check_stop("café é? café!", accent, "café é? caf", true);
    const char *const user[] = {"\nUser:", NULL};
    check_stop("Sure.\nUse it.\nUser: hi", user, "Sure.\nUse it.", true);
    /* a match at the very start */
    check_stop("worldwide", world, "", true);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_splits),
        cmocka_unit_test(test_split_edges),
        cmocka_unit_test(test_stop_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
