/* test_phrases.c — the phrase chunker (q35.h "voice"): hand-checked phrases
 * for tricky text (numbers, abbreviations, URLs, markdown, CJK, thinking,
 * the length bounds), the invariant that the phrases joined are the spoken
 * form, and, over randomly generated text, that the phrases do not depend
 * on how the text is cut into pieces and never cut inside a protected
 * token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "q35.h"

#define MAX_PHRASES 4096

typedef struct phrases {
    char *p[MAX_PHRASES];
    bool after_space[MAX_PHRASES];
    int n;
} phrases;

static int collect(void *ud, const q35_phrase *ph) {
    phrases *ps = ud;
    assert_true(ps->n < MAX_PHRASES);
    assert_int_equal(ph->index, ps->n);
    assert_int_equal(strlen(ph->text), ph->len);
    ps->p[ps->n] = malloc(ph->len + 1);
    memcpy(ps->p[ps->n], ph->text, ph->len + 1);
    ps->after_space[ps->n] = ph->after_space;
    ps->n++;
    return 0;
}

static void phrases_free(phrases *ps) {
    for (int i = 0; i < ps->n; i++)
        free(ps->p[i]);
    ps->n = 0;
}

/* The phrases of text fed in pieces at the given cut offsets (ascending). */
static void run_cuts(const q35_phrase_opts *o, const char *text, size_t len, const size_t *cuts,
                     int n_cuts, phrases *out) {
    q35_err e = {0};
    memset(out, 0, sizeof *out);
    q35_phraser *p = q35_phraser_new(o, collect, out, &e);
    assert_non_null(p);
    size_t at = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        assert_int_equal(q35_phraser_feed(p, text + at, end - at, &e), Q35_OK);
        at = end;
    }
    assert_int_equal(q35_phraser_flush(p, &e), Q35_OK);
    q35_phraser_free(p);
}

static void run_whole(const q35_phrase_opts *o, const char *text, phrases *out) {
    run_cuts(o, text, strlen(text), NULL, 0, out);
}

/* The spoken form must be the phrases in order, each followed by one space
 * or nothing (as after_space of the next says); `ends` receives where each
 * phrase ends in it. */
static void check_join(const char *text, size_t len, const phrases *ps, size_t *ends) {
    char *sp;
    size_t n;
    q35_err e = {0};
    assert_int_equal(q35_spoken_form(text, len, &sp, &n, &e), Q35_OK);
    size_t at = 0;
    for (int i = 0; i < ps->n; i++) {
        size_t pl = strlen(ps->p[i]);
        assert_true(pl > 0);
        if (i > 0) { /* the phrase says where the spoken form has a space */
            assert_int_equal(ps->after_space[i], sp[at - 1] == ' ');
        } else {
            assert_false(ps->after_space[i]);
        }
        assert_true(ps->p[i][0] != ' ' && ps->p[i][pl - 1] != ' ');
        if (at + pl > n || memcmp(sp + at, ps->p[i], pl)) {
            fprintf(stderr, "phrase %d '%s' is not at %zu of the spoken form '%s'\n", i, ps->p[i],
                    at, sp);
            fail();
        }
        at += pl;
        if (ends) ends[i] = at;
        if (at < n && sp[at] == ' ') at++;
    }
    if (at != n) fprintf(stderr, "spoken form '%s' has more than the phrases: '%s'\n", sp, sp + at);
    assert_int_equal(at, n);
    free(sp);
}

static void expect(const q35_phrase_opts *o, const char *text, const char *const *want) {
    phrases ps;
    run_whole(o, text, &ps);
    int n = 0;
    while (want[n])
        n++;
    bool same = ps.n == n;
    for (int i = 0; same && i < n; i++)
        same = !strcmp(ps.p[i], want[i]);
    if (!same) {
        fprintf(stderr, "text: %s\ngot %d phrases:\n", text, ps.n);
        for (int i = 0; i < ps.n; i++)
            fprintf(stderr, "  [%s]\n", ps.p[i]);
        fprintf(stderr, "want %d:\n", n);
        for (int i = 0; i < n; i++)
            fprintf(stderr, "  [%s]\n", want[i]);
    }
    assert_true(same);
    check_join(text, strlen(text), &ps, NULL);
    phrases_free(&ps);
}

static const q35_phrase_opts SMALL = {
    .min_chars = 10, .max_chars = 60, .first_min_chars = 3, .first_max_chars = 40};

#define EXPECT(o, text, ...)                                                                       \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__, NULL};                                           \
        expect(o, text, want_);                                                                    \
    } while (0)

static void test_numbers_and_abbreviations(void **st) {
    (void)st;
    EXPECT(&SMALL, "Sure, the answer is 3.14. Dr. Smith agrees.", "Sure,", "the answer is 3.14.",
           "Dr. Smith agrees.");
    EXPECT(&SMALL, "Ok. It costs $1,200.50 at 10:30 a.m. today, e.g. with tax. Fine.", "Ok.",
           "It costs $1,200.50 at 10:30 a.m. today,", "e.g. with tax.", "Fine.");
    EXPECT(&SMALL, "1. J. K. Rowling wrote it. 2. Then more.", "1. J. K. Rowling wrote it.",
           "2. Then more.");
    EXPECT(&SMALL, "Hi! The U.S. Army and the U.K. Navy met, etc. and then left.", "Hi!",
           "The U.S. Army and the U.K. Navy met,", "etc. and then left.");
    EXPECT(&SMALL, "Well... I think so. Wait… really? Yes — indeed, it is.", "Well...",
           "I think so.", "Wait… really?", "Yes — indeed,", "it is.");
}

static void test_urls_and_max(void **st) {
    (void)st;
    EXPECT(&SMALL,
           "Visit https://example.com/a,b.c?x=1 or write to jane.doe@example.org, please. "
           "Thanks!",
           "Visit https://example.com/a,b.c?x=1 or", "write to jane.doe@example.org,",
           "please. Thanks!");
    const q35_phrase_opts tight = {10, 20, 10, 20};
    EXPECT(&tight, "We met Dr. Watson and Mr. Holmes in London yesterday", "We met Dr. Watson",
           "and Mr. Holmes in", "London yesterday");
    /* a token longer than the maximum is never cut */
    EXPECT(&tight, "see https://example.com/a/very/long/path/index.html now", "see",
           "https://example.com/a/very/long/path/index.html", "now");
}

static void test_markdown(void **st) {
    (void)st;
    EXPECT(&SMALL,
           "# Steps\n\n1. Mix **flour** and `water`.\n2. Bake at 200 °C... carefully.\n"
           "- See [the guide](https://x.org/g(1)) _now_.\n\n```sh\nrm -rf /\n```\n"
           "> Quote here\n---\nEnd ~~old~~ new snake_case 2 * 3.",
           "Steps", "1. Mix flour and water.", "2. Bake at 200 °C...", "carefully.",
           "See the guide now.", "Quote here", "End old new snake_case 2 * 3.");
    EXPECT(&SMALL, "| a | b |\n|---|:--|\n| 1 | 2 |\n* item *one*\n+ plus\n![alt text](x.png)",
           "a b", "1 2", "item one", "plus", "alt text");
    EXPECT(&SMALL, "An \\*escaped\\* star and a [bracket] kept.",
           "An *escaped* star and a [bracket] kept.");
}

static void test_cjk(void **st) {
    (void)st;
    EXPECT(&SMALL, "你好，世界。今天很好！", "你好，", "世界。今天很好！");
    EXPECT(&SMALL, "こんにちは。「元気ですか？」はい、元気です。", "こんにちは。",
           "「元気ですか？」", "はい、元気です。");
    /* between CJK characters when there is no punctuation within the maximum */
    const q35_phrase_opts tight = {4, 8, 4, 8};
    EXPECT(&tight, "一二三四五六七八九十", "一二三四", "五六七八", "九十");
}

static void test_thinking(void **st) {
    (void)st;
    EXPECT(&SMALL, "<think>\nhidden. Stuff.\n</think>\n\nVisible answer.", "Visible answer.");
    /* through the piece callback: thinking pieces never reach the phrases */
    phrases ps = {0};
    q35_phraser *p = q35_phraser_new(&SMALL, collect, &ps, NULL);
    assert_non_null(p);
    assert_int_equal(q35_phraser_on_piece(p, Q35_PIECE_THINKING, "Secret. Plan, ", 14), 0);
    assert_int_equal(q35_phraser_on_piece(p, Q35_PIECE_ANSWER, "Hello there, fri", 16), 0);
    assert_int_equal(ps.n, 1); /* "Hello there," is ready before the answer ends */
    assert_string_equal(ps.p[0], "Hello there,");
    assert_int_equal(q35_phraser_on_piece(p, Q35_PIECE_ANSWER, "end.", 4), 0);
    assert_int_equal(q35_phraser_flush(p, NULL), Q35_OK);
    assert_int_equal(ps.n, 2);
    assert_string_equal(ps.p[1], "friend.");
    q35_phraser_free(p);
    phrases_free(&ps);
}

static void test_bad_options(void **st) {
    (void)st;
    q35_phrase_opts o = {.min_chars = 50, .max_chars = 10};
    q35_err e = {0};
    assert_null(q35_phraser_new(&o, collect, NULL, &e));
    assert_int_equal(e.code, Q35_EINVAL);
    /* empty and whitespace-only text: no phrase */
    phrases ps;
    run_whole(NULL, "", &ps);
    assert_int_equal(ps.n, 0);
    run_whole(NULL, " \n\n  \t", &ps);
    assert_int_equal(ps.n, 0);
}

/* ---------------------------------------------------- randomized text */

static uint64_t rng_state;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* Tokens the generator strings together; the first group must never be
 * cut inside (in the spoken form). */
static const char *const PROTECTED[] = {
    "3.14",
    "10:30",
    "$1,200.50",
    "https://example.com/a.b?c=1,2",
    "jane.doe@example.org",
    "Dr. Watson",
    "e.g. this",
    "U.S. Army",
    "Mr. Holmes",
    "...",
    "…",
    "J. K. Rowling",
    NULL,
};
static const char *const OTHER[] = {
    "word",
    "Some",
    "text",
    "and",
    "the",
    "é",
    "naïve",
    "日本語",
    "。",
    "，",
    "！",
    "你好",
    ".",
    ",",
    "!",
    "?",
    ";",
    ":",
    "—",
    "-",
    "**",
    "*",
    "_",
    "__",
    "~~",
    "`",
    "```",
    "[link](u)",
    "(",
    ")",
    "\"",
    "'",
    "\n",
    "\n\n",
    "# ",
    "- ",
    "1. ",
    "> ",
    "|",
    "\\",
    "<think>x. y</think>",
    "![im](p)",
    "\t",
    "  ",
    "A.",
    "b.",
    "Ok.",
};

static size_t gen_text(char *buf, size_t cap) {
    size_t n = 0;
    int words = 10 + (int)(rnd() % 120);
    for (int i = 0; i < words; i++) {
        const char *t;
        if (rnd() % 4 == 0) {
            t = PROTECTED[rnd() % 12];
        } else {
            t = OTHER[rnd() % (sizeof OTHER / sizeof *OTHER)];
        }
        size_t tl = strlen(t);
        if (n + tl + 2 >= cap) break;
        memcpy(buf + n, t, tl);
        n += tl;
        if (rnd() % 3) buf[n++] = ' ';
    }
    buf[n] = 0;
    return n;
}

static bool same_phrases(const phrases *a, const phrases *b) {
    if (a->n != b->n) return false;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->p[i], b->p[i])) return false;
    return true;
}

static void test_random_splits(void **st) {
    (void)st;
    rng_state = 12345;
    static char text[8192];
    static size_t cuts[8192], ends[MAX_PHRASES];
    const q35_phrase_opts optsets[] = {{0, 0, 0, 0}, {10, 40, 3, 20}, {1, 8, 1, 8}};
    for (int iter = 0; iter < 300; iter++) {
        const q35_phrase_opts *o = &optsets[iter % 3];
        size_t len = gen_text(text, sizeof text);
        phrases whole;
        run_cuts(o, text, len, NULL, 0, &whole);
        check_join(text, len, &whole, ends);
        /* no cut inside a protected token of the spoken form */
        char *sp;
        size_t sn;
        assert_int_equal(q35_spoken_form(text, len, &sp, &sn, NULL), Q35_OK);
        for (int k = 0; PROTECTED[k]; k++) {
            size_t pl = strlen(PROTECTED[k]);
            for (const char *h = sp; (h = memmem(h, sn - (size_t)(h - sp), PROTECTED[k], pl));
                 h++) {
                size_t a = (size_t)(h - sp);
                if (a > 0 && sp[a - 1] != ' ') continue; /* glued to a neighbour: another word */
                for (int i = 0; i + 1 < whole.n; i++)
                    if (ends[i] > a && ends[i] < a + pl) {
                        fprintf(stderr, "cut inside '%s' in '%s'\n", PROTECTED[k], sp);
                        fail();
                    }
            }
        }
        free(sp);
        /* the same phrases for other ways of cutting the input */
        for (int v = 0; v < 4; v++) {
            int nc = 0;
            if (v == 0) { /* byte by byte, through UTF-8 characters */
                for (size_t i = 1; i < len; i++)
                    cuts[nc++] = i;
            } else {
                for (size_t i = 1; i < len; i++)
                    if (rnd() % (v * 3) == 0) cuts[nc++] = i;
            }
            phrases split;
            run_cuts(o, text, len, cuts, nc, &split);
            if (!same_phrases(&whole, &split)) {
                fprintf(stderr, "text (iteration %d, variant %d): %s\n", iter, v, text);
                for (int i = 0; i < whole.n || i < split.n; i++)
                    fprintf(stderr, "  %-40s | %s\n", i < whole.n ? whole.p[i] : "",
                            i < split.n ? split.p[i] : "");
                fail();
            }
            phrases_free(&split);
        }
        phrases_free(&whole);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_and_abbreviations),
        cmocka_unit_test(test_urls_and_max),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_cjk),
        cmocka_unit_test(test_thinking),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_random_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
