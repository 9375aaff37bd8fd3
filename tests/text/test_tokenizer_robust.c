/* test_tokenizer_robust.c — the tokenizer on hostile and awkward input:
 * malformed tokenizer.json files (each a clear error), invalid UTF-8, NUL
 * bytes and very long text (each a correct result), plus the BPE and
 * added-token rules checked on small hand-made vocabularies whose answers
 * follow from the rules themselves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/mapped_file.h"
#include "text/tokenizer.h"
#include "text/tokenizer_cache.h"
#include "text/tokenizer_internal.h"

/* ------------------------------------------------ a small tokenizer.json */

#define QWEN_SPLIT                                                                                 \
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{" \
    "L}"                                                                                           \
    "\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|"   \
    "\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false}"
#define BYTE_LEVEL "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}"
#define PRETOK "{\"type\":\"Sequence\",\"pretokenizers\":[" QWEN_SPLIT "," BYTE_LEVEL "]}"

typedef struct spec {
    const char *extra_vocab; /* JSON members after the 256 bytes, e.g. "\"ab\":256" */
    const char *merges;      /* JSON array */
    const char *added;       /* JSON array */
    const char *normalizer;
    const char *pretok;
    const char *decoder;
    const char *model_extra; /* JSON members added to "model" */
    int skip_byte;           /* a byte left out of the vocabulary, or -1 */
} spec;

static char *make_json(const spec *s) {
    size_t cap = 1 << 16, n = 0;
    char *j = malloc(cap);
    assert_non_null(j);
#define PUT(...) n += (size_t)snprintf(j + n, cap - n, __VA_ARGS__)
    PUT("{\"version\":\"1.0\",\"added_tokens\":%s,\"normalizer\":%s,\"pre_tokenizer\":%s,"
        "\"decoder\":%s,\"model\":{\"type\":\"BPE\",%s\"vocab\":{",
        s->added ? s->added : "[]", s->normalizer ? s->normalizer : "{\"type\":\"NFC\"}",
        s->pretok ? s->pretok : PRETOK, s->decoder ? s->decoder : BYTE_LEVEL,
        s->model_extra ? s->model_extra : "");
    bool first = true;
    for (int b = 0; b < 256; b++) {
        if (b == s->skip_byte) continue;
        char c[3] = {0};
        tok_byte_to_char((unsigned char)b, c);
        PUT("%s\"%s%s\":%d", first ? "" : ",", (c[0] == '"' || c[0] == '\\') ? "\\" : "", c, b);
        first = false;
    }
    if (s->extra_vocab) PUT(",%s", s->extra_vocab);
    PUT("},\"merges\":%s}}", s->merges ? s->merges : "[]");
#undef PUT
    assert_true(n < cap);
    return j;
}

static q35_tokenizer *build(const spec *s, q35_err *e) {
    char *j = make_json(s);
    q35_tokenizer *t = q35_tokenizer_from_json(j, strlen(j), NULL, 0, e);
    free(j);
    return t;
}

static void expect_ids(const q35_tokenizer *t, const char *text, q35_added_mode mode,
                       const int32_t *want, size_t n_want) {
    int32_t *ids = NULL;
    size_t n = 0;
    q35_err e = {0};
    assert_int_equal(q35_tokenize(t, text, strlen(text), mode, &ids, &n, &e), 0);
    if (n != n_want || (n && memcmp(ids, want, n * sizeof *ids))) {
        fprintf(stderr, "\"%s\": got", text);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n_want; i++)
            fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
        fail();
    }
    free(ids);
}
#define EXPECT(t, text, mode, ...)                                                                 \
    do {                                                                                           \
        const int32_t w_[] = {__VA_ARGS__};                                                        \
        expect_ids(t, text, mode, w_, sizeof w_ / sizeof w_[0]);                                   \
    } while (0)

/* --------------------------------------------------------- BPE rules */

/* Lowest rank first; ties go to the leftmost pair; merges as "a b" strings
 * and as ["a","b"] pairs mean the same. */
static void test_merge_order(void **state) {
    (void)state;
    const char *forms[2] = {"[\"b c\",\"a b\",\"a bc\",\"ab c\"]",
                            "[[\"b\",\"c\"],[\"a\",\"b\"],[\"a\",\"bc\"],[\"ab\",\"c\"]]"};
    for (int f = 0; f < 2; f++) {
        spec s = {.extra_vocab = "\"bc\":256,\"ab\":257,\"abc\":258",
                  .merges = forms[f],
                  .skip_byte = -1};
        q35_err e = {0};
        q35_tokenizer *t = build(&s, &e);
        assert_non_null(t);
        /* "b c" (rank 0) beats "a b" (rank 1): abc -> a + bc -> abc via "a bc" */
        EXPECT(t, "abc", Q35_ADDED_MATCH, 258);
        EXPECT(t, "ab", Q35_ADDED_MATCH, 257);
        /* bcbc: two rank-0 pairs, both merge */
        EXPECT(t, "bcbc", Q35_ADDED_MATCH, 256, 256);
        /* abab: a b | b a (no merge) | a b: both ends merge */
        EXPECT(t, "abab", Q35_ADDED_MATCH, 257, 257);
        /* "bbc": pairs bb (none) and bc (rank 0) */
        EXPECT(t, "bbc", Q35_ADDED_MATCH, 'b', 256);
        /* a space starts a new piece (pre-tokenizer), spelled Ġ = byte 0x20's token */
        EXPECT(t, "ab ab", Q35_ADDED_MATCH, 257, ' ', 257);
        q35_tokenizer_free(t);
    }
}

/* Overlapping candidates: "aaa" with merge "a a" merges the leftmost pair. */
static void test_merge_ties(void **state) {
    (void)state;
    spec s = {
        .extra_vocab = "\"aa\":256,\"aaaa\":257", .merges = "[\"a a\",\"aa aa\"]", .skip_byte = -1};
    q35_err e = {0};
    q35_tokenizer *t = build(&s, &e);
    assert_non_null(t);
    EXPECT(t, "aaa", Q35_ADDED_MATCH, 256, 'a');
    EXPECT(t, "aaaa", Q35_ADDED_MATCH, 257);
    EXPECT(t, "aaaaa", Q35_ADDED_MATCH, 257, 'a');
    EXPECT(t, "aaaaaa", Q35_ADDED_MATCH, 257, 256);
    q35_tokenizer_free(t);
}

/* ignore_merges: a piece found whole in the vocabulary is that token even
 * when no merge path leads to it. */
static void test_ignore_merges(void **state) {
    (void)state;
    spec s = {
        .extra_vocab = "\"xyz\":256", .model_extra = "\"ignore_merges\":true,", .skip_byte = -1};
    q35_err e = {0};
    q35_tokenizer *t = build(&s, &e);
    assert_non_null(t);
    EXPECT(t, "xyz", Q35_ADDED_MATCH, 256);
    EXPECT(t, "xy", Q35_ADDED_MATCH, 'x', 'y');
    q35_tokenizer_free(t);
    s.model_extra = NULL;
    t = build(&s, &e);
    assert_non_null(t);
    EXPECT(t, "xyz", Q35_ADDED_MATCH, 'x', 'y', 'z');
    q35_tokenizer_free(t);
}

/* ------------------------------------------------------ added tokens */

static void test_added_tokens(void **state) {
    (void)state;
    spec s = {.added =
                  "[{\"id\":256,\"content\":\"<ctl>\",\"special\":true,\"normalized\":false},"
                  "{\"id\":257,\"content\":\"<ctl>x\",\"special\":false,\"normalized\":false},"
                  "{\"id\":258,\"content\":\"<L>\",\"special\":false,\"normalized\":false,"
                  "\"lstrip\":true},"
                  "{\"id\":259,\"content\":\"<R>\",\"special\":false,\"normalized\":false,"
                  "\"rstrip\":true},"
                  "{\"id\":260,\"content\":\"w\",\"special\":false,\"normalized\":false,"
                  "\"single_word\":true},"
                  "{\"id\":261,\"content\":\"\\u00e9\",\"special\":false,\"normalized\":true}]",
              .skip_byte = -1};
    q35_err e = {0};
    q35_tokenizer *t = build(&s, &e);
    if (!t) fail_msg("%s", e.msg);
    /* longest match at the leftmost position */
    EXPECT(t, "a<ctl>xb", Q35_ADDED_MATCH, 'a', 257, 'b');
    EXPECT(t, "a<ctl>b", Q35_ADDED_MATCH, 'a', 256, 'b');
    /* special as text: <ctl> is BPE'd, and being found, hides nothing inside it */
    EXPECT(t, "<ctl>", Q35_ADDED_SPECIAL_AS_TEXT, '<', 'c', 't', 'l', '>');
    EXPECT(t, "<ctl>x", Q35_ADDED_SPECIAL_AS_TEXT, 257);
    EXPECT(t, "<ctl>x", Q35_ADDED_AS_TEXT, '<', 'c', 't', 'l', '>', 'x');
    /* lstrip swallows spaces before, rstrip after */
    EXPECT(t, "a  <L>b", Q35_ADDED_MATCH, 'a', 258, 'b');
    EXPECT(t, "a<R>  b", Q35_ADDED_MATCH, 'a', 259, 'b');
    EXPECT(t, "a <R> b", Q35_ADDED_MATCH, 'a', ' ', 259, 'b');
    /* single_word: only where no word character touches it */
    EXPECT(t, "a w b", Q35_ADDED_MATCH, 'a', ' ', 260, ' ', 'b');
    EXPECT(t, "awb", Q35_ADDED_MATCH, 'a', 'w', 'b');
    /* a normalized token matches the NFC form of decomposed text (e + U+0301) */
    EXPECT(t, "e\xcc\x81", Q35_ADDED_MATCH, 261);
    EXPECT(t, "\xc3\xa9", Q35_ADDED_MATCH, 261);
    assert_int_equal(q35_token_id(t, "<ctl>"), 256);
    assert_true(q35_token_is_special(t, 256));
    assert_false(q35_token_is_special(t, 257));
    /* decode: skip_special drops only the special one */
    const int32_t ids[] = {'a', 256, 257, 'b'};
    char *out;
    size_t len;
    assert_int_equal(q35_detokenize(t, ids, 4, false, &out, &len, &e), 0);
    assert_string_equal(out, "a<ctl><ctl>xb");
    free(out);
    assert_int_equal(q35_detokenize(t, ids, 4, true, &out, &len, &e), 0);
    assert_string_equal(out, "a<ctl>xb");
    free(out);
    q35_tokenizer_free(t);
}

/* tokenizer_config.json adds tokens and names eos / pad. */
static void test_config(void **state) {
    (void)state;
    spec s = {.added = "[{\"id\":256,\"content\":\"<e>\",\"special\":true,\"normalized\":false}]",
              .skip_byte = -1};
    char *j = make_json(&s);
    const char *cfg =
        "{\"added_tokens_decoder\":{\"256\":{\"content\":\"<e>\",\"special\":true},"
        "\"257\":{\"content\":\"<p>\",\"special\":true,\"normalized\":false}},"
        "\"eos_token\":\"<e>\",\"pad_token\":{\"content\":\"<p>\"},\"bos_token\":null}";
    q35_err e = {0};
    q35_tokenizer *t = q35_tokenizer_from_json(j, strlen(j), cfg, strlen(cfg), &e);
    if (!t) fail_msg("%s", e.msg);
    assert_int_equal(q35_tokenizer_eos(t), 256);
    assert_int_equal(q35_tokenizer_pad(t), 257);
    assert_int_equal(q35_tokenizer_bos(t), -1);
    assert_int_equal(q35_tokenizer_n_vocab(t), 258);
    EXPECT(t, "a<p>", Q35_ADDED_MATCH, 'a', 257);
    q35_tokenizer_free(t);
    const char *bad_cfg[] = {
        "{\"eos_token\":\"<nothere>\"}",
        "{\"added_tokens_decoder\":{\"256\":{\"content\":\"<other>\"}}}",
        "{\"added_tokens_decoder\":{\"x\":{\"content\":\"<p>\"}}}",
        "{\"added_tokens_decoder\":[]}",
        "{\"eos_token\":5}",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad_cfg / sizeof *bad_cfg; i++) {
        q35_err e2 = {0};
        t = q35_tokenizer_from_json(j, strlen(j), bad_cfg[i], strlen(bad_cfg[i]), &e2);
        if (t) fail_msg("config %zu accepted: %s", i, bad_cfg[i]);
        assert_int_equal(e2.code, Q35_EFORMAT);
        assert_true(strlen(e2.msg) > 10);
    }
    free(j);
}

/* --------------------------------------------------- malformed files */

static void expect_bad(const char *json, const char *why) {
    q35_err e = {0};
    q35_tokenizer *t = q35_tokenizer_from_json(json, strlen(json), NULL, 0, &e);
    if (t) {
        q35_tokenizer_free(t);
        fail_msg("accepted a tokenizer.json with %s", why);
    }
    if (e.code == Q35_OK || strlen(e.msg) < 10) fail_msg("no clear error for %s", why);
}

static void expect_bad_spec(const spec *s, const char *why) {
    char *j = make_json(s);
    expect_bad(j, why);
    free(j);
}

static void test_malformed(void **state) {
    (void)state;
    expect_bad("", "nothing");
    expect_bad("not json", "no JSON");
    expect_bad("{\"model\": {\"vocab\": {\"a\": 0}", "truncated JSON");
    expect_bad("[1,2]", "an array at the top");
    expect_bad("{}", "no model");
    expect_bad("{\"model\": 3}", "a model that is a number");
    expect_bad("{\"model\": {\"type\":\"BPE\",\"merges\":[]}}", "no vocab");
    expect_bad("{\"model\": {\"type\":\"BPE\",\"vocab\":[],\"merges\":[]}}", "a vocab list");
    spec s = {.skip_byte = -1};
    s.extra_vocab = "\"xx\":\"1\"";
    expect_bad_spec(&s, "a string id");
    s.extra_vocab = "\"xx\":-3";
    expect_bad_spec(&s, "a negative id");
    s.extra_vocab = "\"xx\":2.5";
    expect_bad_spec(&s, "a fractional id");
    s.extra_vocab = "\"xx\":1e12";
    expect_bad_spec(&s, "a huge id");
    s.extra_vocab = "\"xx\":7";
    expect_bad_spec(&s, "two pieces sharing an id");
    s.extra_vocab = "\"xx\":300,\"xx\":301";
    expect_bad_spec(&s, "the same piece twice");
    s.extra_vocab = NULL;
    s.merges = "{}";
    expect_bad_spec(&s, "merges that are not a list");
    s.merges = "[\"ab\"]";
    expect_bad_spec(&s, "a merge without a space");
    s.merges = "[[\"a\"]]";
    expect_bad_spec(&s, "a one-element merge pair");
    s.merges = "[[\"a\", 3]]";
    expect_bad_spec(&s, "a merge pair with a number");
    s.merges = "[17]";
    expect_bad_spec(&s, "a numeric merge");
    s.merges = "[\"a zzz\"]";
    expect_bad_spec(&s, "a merge naming an unknown token");
    s.merges = "[\"a b\"]";
    expect_bad_spec(&s, "a merge whose result is not in the vocabulary");
    s.merges = NULL;
    s.skip_byte = 0x41;
    expect_bad_spec(&s, "a byte missing from the vocabulary");
    s.skip_byte = -1;
    s.added = "{}";
    expect_bad_spec(&s, "added_tokens that are not a list");
    s.added = "[{\"id\":300}]";
    expect_bad_spec(&s, "an added token without content");
    s.added = "[{\"id\":\"300\",\"content\":\"<x>\"}]";
    expect_bad_spec(&s, "an added token with a string id");
    s.added = "[{\"id\":65,\"content\":\"<x>\"}]";
    expect_bad_spec(&s, "an added token colliding with a vocabulary piece");
    s.added = "[{\"id\":300,\"content\":\"<x>\"},{\"id\":301,\"content\":\"<x>\"}]";
    expect_bad_spec(&s, "the same added token twice");
    s.added = "[{\"id\":300,\"content\":\"<x>\",\"special\":\"yes\"}]";
    expect_bad_spec(&s, "a flag that is not a bool");
    s.added = "[{\"id\":300,\"content\":\"\"}]";
    expect_bad_spec(&s, "an empty added token");
    s.added = NULL;
    s.normalizer = "{\"type\":\"Lowercase\"}";
    expect_bad_spec(&s, "an unsupported normalizer");
    s.normalizer = "{\"type\":3}";
    expect_bad_spec(&s, "a normalizer type that is a number");
    s.normalizer = NULL;
    s.pretok = "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}";
    expect_bad_spec(&s, "a regex that does not compile (and no ByteLevel)");
    s.pretok = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
               "{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}," BYTE_LEVEL "]}";
    expect_bad_spec(&s, "a regex that does not compile");
    s.pretok = QWEN_SPLIT;
    expect_bad_spec(&s, "no ByteLevel pre-tokenizer");
    s.pretok = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
               "{\"Regex\":\"a\"},\"behavior\":\"Removed\"}," BYTE_LEVEL "]}";
    expect_bad_spec(&s, "an unsupported Split behavior");
    s.pretok = "{\"type\":\"Whitespace\"}";
    expect_bad_spec(&s, "an unsupported pre-tokenizer");
    s.pretok = "{\"type\":\"ByteLevel\",\"add_prefix_space\":true}";
    expect_bad_spec(&s, "add_prefix_space");
    s.pretok = NULL;
    s.decoder = "{\"type\":\"WordPiece\"}";
    expect_bad_spec(&s, "an unsupported decoder");
    s.decoder = "null";
    expect_bad_spec(&s, "no decoder");
    s.decoder = NULL;
    expect_bad("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0},\"merges\":[]}}",
               "a WordPiece model");
    s.model_extra = "\"dropout\":0.1,";
    expect_bad_spec(&s, "BPE dropout");
    s.model_extra = "\"continuing_subword_prefix\":\"##\",";
    expect_bad_spec(&s, "a subword prefix");
    s.model_extra = "\"ignore_merges\":\"no\",";
    expect_bad_spec(&s, "ignore_merges that is not a bool");
}

/* Files: missing, a directory without tokenizer.json, a truncated file. */
static void test_bad_files(void **state) {
    (void)state;
    q35_err e = {0};
    assert_null(q35_tokenizer_load("/nonexistent/q35/tokenizer.json", &e));
    assert_int_equal(e.code, Q35_ENOTFOUND);
    char dir[] = "/tmp/q35_tok_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    e = (q35_err){0};
    assert_null(q35_tokenizer_load(dir, &e));
    assert_int_not_equal(e.code, Q35_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,", f);
    fclose(f);
    e = (q35_err){0};
    assert_null(q35_tokenizer_load(dir, &e));
    assert_int_equal(e.code, Q35_EFORMAT);
    assert_non_null(strstr(e.msg, "tokenizer.json"));
    remove(path);
    rmdir(dir);
}

/* ------------------------------------------- the real vocabulary, hard text */

static q35_tokenizer *qwen3(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/tokenizer.qwen3.json", Q35_FIXTURES);
    q35_err e = {0};
    q35_tokenizer *t = q35_tokenizer_load(path, &e);
    if (!t) fail_msg("%s", e.msg);
    return t;
}

/* The concatenated bytes of the ids (what decoding yields before UTF-8 repair). */
static char *joined_bytes(const q35_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        assert_non_null(q35_token_bytes(t, ids[i], &l));
        total += l;
    }
    char *out = malloc(total + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *b = q35_token_bytes(t, ids[i], &l);
        memcpy(out + k, b, l);
        k += l;
    }
    *len = k;
    return out;
}

static void roundtrip(const q35_tokenizer *t, const char *text, size_t len) {
    int32_t *ids = NULL;
    size_t n = 0;
    q35_err e = {0};
    int rc = q35_tokenize(t, text, len, Q35_ADDED_AS_TEXT, &ids, &n, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_true(len == 0 || n > 0);
    size_t blen;
    char *b = joined_bytes(t, ids, n, &blen);
    assert_int_equal(blen, len);
    assert_memory_equal(b, text, len);
    free(b);
    free(ids);
}

static void test_invalid_utf8_and_nul(void **state) {
    (void)state;
    q35_tokenizer *t = qwen3();
    /* invalid bytes of every kind are kept as bytes: decoding them back
     * (before U+FFFD repair) gives the input */
    static const char cases[][24] = {
        "\xff",
        "a\xff"
        "b",
        "\xc3",
        "abc \xe2\x82",
        "\xed\xa0\x80 surrogate",
        "\xc0\x80 overlong",
        "\xf4\x90\x80\x80 big",
        "\x80\x80\x80",
        "ok \xe2\x82\xac euro",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        roundtrip(t, cases[i], strlen(cases[i]));
    /* NUL is a character like any other */
    roundtrip(t, "a\0b", 3);
    roundtrip(t, "\0\0\0", 3);
    int32_t *ids;
    size_t n;
    q35_err e = {0};
    assert_int_equal(q35_tokenize(t, "\0", 1, Q35_ADDED_MATCH, &ids, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], q35_token_id(t, "\xc4\x80")); /* U+0100 spells byte 0 */
    free(ids);
    /* an added token right after invalid bytes still matches */
    assert_int_equal(q35_tokenize(t, "\xff<|im_end|>", 11, Q35_ADDED_MATCH, &ids, &n, &e), 0);
    assert_int_equal(ids[n - 1], 151645);
    free(ids);
    q35_tokenizer_free(t);
}

typedef struct piece_log {
    size_t n, len[4];
} piece_log;

static int log_piece(void *ud, const char *p, size_t len, int32_t added_id) {
    piece_log *l = ud;
    (void)p;
    (void)added_id;
    if (l->n < 4) l->len[l->n] = len;
    l->n++;
    return 0;
}

/* A 10 MB mixed text, a 1 MB word, long runs of spaces / digits / marks:
 * all complete (in O(n log n)) and round-trip. */
static void test_long_text(void **state) {
    (void)state;
    q35_tokenizer *t = qwen3();
    static const char *parts[] = {
        "The quick brown fox jumps over the lazy dog. ",
        "日本語のテキストです。",
        "Русский текст 2024 ",
        "def f(x):\n    return x**2  # square\n",
        "🙂🚀👍🏽 ",
        "https://example.com/path?q=1&r=two#frag ",
        "\t\n\n",
        "1234567890 ",
        "\xff\xfe",
    };
    size_t len = 10u << 20, k = 0;
    char *text = malloc(len);
    uint32_t rng = 12345;
    while (k < len) {
        rng = rng * 1103515245u + 12345u;
        const char *p = parts[(rng >> 16) % (sizeof parts / sizeof *parts)];
        size_t l = strlen(p);
        if (k + l > len) break;
        memcpy(text + k, p, l);
        k += l;
    }
    roundtrip(t, text, k);
    size_t big = 1u << 20;
    memset(text, 'a', big);
    roundtrip(t, text, big);
    memset(text, ' ', big);
    roundtrip(t, text, big);
    memset(text, '7', big);
    roundtrip(t, text, big);
    for (size_t i = 0; i + 1 < big; i += 2)
        memcpy(text + i, "\xcc\x81", 2); /* U+0301 */
    roundtrip(t, text, big);
    /* 10 MB of spaces before a word: the regex walks the whole run several
     * times (PCRE2's default match budget gave up here). "\s+(?!\S)" takes
     * all spaces but the last, which goes with the word. */
    memset(text, ' ', len - 1);
    text[len - 1] = 'a';
    piece_log log = {0};
    q35_err e = {0};
    assert_int_equal(q35_tok_pretokenize(t, text, len, Q35_ADDED_AS_TEXT, log_piece, &log, &e), 0);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.len[0], len - 2);
    assert_int_equal(log.len[1], 2);
    free(text);
    q35_tokenizer_free(t);
}

/* --------------------------------------------------------- decoding */

/* Byte-token ids for raw bytes (ids of the single-byte pieces). */
static size_t byte_ids(const q35_tokenizer *t, const char *bytes, size_t n, int32_t *ids) {
    for (size_t i = 0; i < n; i++) {
        char c[3] = {0};
        tok_byte_to_char((unsigned char)bytes[i], c);
        ids[i] = q35_token_id(t, c);
        assert_true(ids[i] >= 0);
    }
    return n;
}

static void expect_decode(const q35_tokenizer *t, const char *bytes, size_t n, const char *want) {
    int32_t ids[64];
    byte_ids(t, bytes, n, ids);
    char *out;
    size_t len;
    q35_err e = {0};
    assert_int_equal(q35_detokenize(t, ids, n, false, &out, &len, &e), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    free(out);
}

#define FFFD "\xef\xbf\xbd"

static void test_decode_lossy(void **state) {
    (void)state;
    q35_tokenizer *t = qwen3();
    /* Unicode 15, §3.9 Table 3-8: U+FFFD per maximal subpart */
    expect_decode(t, "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", 13,
                  "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
    expect_decode(t, "\xC0\xAF", 2, FFFD FFFD);          /* overlong: C0 never valid */
    expect_decode(t, "\xED\xA0\x80", 3, FFFD FFFD FFFD); /* surrogate: ED then A0 invalid */
    expect_decode(t, "\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD); /* above U+10FFFF */
    expect_decode(t, "\xE2\x82", 2, FFFD);                        /* truncated at the end */
    expect_decode(t, "\xE2\x82\xAC", 3, "\xE2\x82\xAC");          /* complete: € */
    expect_decode(t, "\xF0\x9F\x99\x82", 4, "\xF0\x9F\x99\x82");
    /* unknown ids are an error, not a silent skip */
    int32_t bad[2] = {9707, 151669};
    char *out;
    size_t len;
    q35_err e = {0};
    assert_int_equal(q35_detokenize(t, bad, 2, false, &out, &len, &e), Q35_EINVAL);
    bad[1] = -1;
    assert_int_equal(q35_detokenize(t, bad, 2, false, &out, &len, &e), Q35_EINVAL);
    q35_tokenizer_free(t);
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int r = tok_utf8_next((const unsigned char *)s + i, n - i);
        if (r <= 0) return false;
        i += (size_t)r;
    }
    return true;
}

/* Streams ids; checks each piece is whole UTF-8 and that all of it equals
 * the one-shot decode. */
static void stream_check(const q35_tokenizer *t, const int32_t *ids, size_t n, bool skip) {
    q35_err e = {0};
    q35_detok_stream *s = q35_detok_stream_new(t, skip, &e);
    assert_non_null(s);
    char *acc = malloc(16 * n + 16);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t l;
        assert_int_equal(q35_detok_stream_push(s, ids[i], &p, &l, &e), 0);
        assert_true(valid_utf8(p, l));
        memcpy(acc + k, p, l);
        k += l;
    }
    const char *p;
    size_t l;
    q35_detok_stream_flush(s, &p, &l);
    assert_true(valid_utf8(p, l));
    memcpy(acc + k, p, l);
    k += l;
    char *whole;
    size_t wl;
    assert_int_equal(q35_detokenize(t, ids, n, skip, &whole, &wl, &e), 0);
    assert_int_equal(k, wl);
    assert_memory_equal(acc, whole, k);
    free(whole);
    free(acc);
    q35_detok_stream_free(s);
}

static void test_stream(void **state) {
    (void)state;
    q35_tokenizer *t = qwen3();
    /* a 4-byte character fed one byte-token at a time comes out whole, once */
    int32_t ids[64];
    byte_ids(t, "\xF0\x9F\x99\x82", 4, ids);
    q35_err e = {0};
    q35_detok_stream *s = q35_detok_stream_new(t, false, &e);
    const char *p;
    size_t l;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(q35_detok_stream_push(s, ids[i], &p, &l, &e), 0);
        assert_int_equal(l, 0);
    }
    assert_int_equal(q35_detok_stream_push(s, ids[3], &p, &l, &e), 0);
    assert_int_equal(l, 4);
    assert_memory_equal(p, "\xF0\x9F\x99\x82", 4);
    /* an incomplete character at the end comes out as U+FFFD on flush */
    assert_int_equal(q35_detok_stream_push(s, ids[0], &p, &l, &e), 0);
    assert_int_equal(l, 0);
    q35_detok_stream_flush(s, &p, &l);
    assert_int_equal(l, 3);
    assert_memory_equal(p, FFFD, 3);
    /* unknown id: error, stream still usable */
    assert_int_equal(q35_detok_stream_push(s, 999999, &p, &l, &e), Q35_EINVAL);
    q35_detok_stream_free(s);
    /* random byte tokens and real text, with and without skipping specials */
    uint32_t rng = 7;
    int32_t rnd[4096];
    for (int round = 0; round < 50; round++) {
        size_t n = 1 + round * 80;
        for (size_t i = 0; i < n; i++) {
            rng = rng * 1664525u + 1013904223u;
            unsigned r = rng >> 8;
            /* mostly byte tokens of high bytes (broken UTF-8), some words and specials */
            if (r % 7 == 0)
                rnd[i] = 151643 + (int32_t)(r % 26);
            else if (r % 5 == 0)
                rnd[i] = (int32_t)(r % 151643);
            else
                byte_ids(t, (const char[]){(char)(0x80 + r % 0x80)}, 1, &rnd[i]);
        }
        stream_check(t, rnd, n, round % 2);
    }
    int32_t *tids;
    size_t tn;
    const char *text = "emoji 🙂🚀👍🏽 日本語 <|im_end|> Zalgo: Z͡a͒l͑g͐o";
    assert_int_equal(q35_tokenize(t, text, strlen(text), Q35_ADDED_MATCH, &tids, &tn, &e), 0);
    stream_check(t, tids, tn, false);
    stream_check(t, tids, tn, true);
    free(tids);
    q35_tokenizer_free(t);
}

/* ------------------------------------------------------------ cache */

static void expect_same(const q35_tokenizer *a, const q35_tokenizer *b) {
    assert_int_equal(a->n_vocab, b->n_vocab);
    assert_memory_equal(a->piece_off, b->piece_off, (a->n_vocab + 1) * sizeof *a->piece_off);
    assert_memory_equal(a->pieces, b->pieces, a->piece_off[a->n_vocab]);
    assert_memory_equal(a->bytes_off, b->bytes_off, (a->n_vocab + 1) * sizeof *a->bytes_off);
    assert_memory_equal(a->bytes, b->bytes, a->bytes_off[a->n_vocab]);
    assert_memory_equal(a->attr, b->attr, a->n_vocab);
    assert_int_equal(a->n_merges, b->n_merges);
    assert_memory_equal(a->merges, b->merges, 2 * sizeof *a->merges * a->n_merges);
    assert_memory_equal(a->byte_token, b->byte_token, sizeof a->byte_token);
    assert_int_equal(a->n_pretok, b->n_pretok);
    for (uint32_t k = 0; k < a->n_pretok; k++)
        assert_string_equal(a->pretok_src[k], b->pretok_src[k]);
    assert_int_equal(a->normalizer, b->normalizer);
    assert_int_equal(a->eos_id, b->eos_id);
    const char *text = "Hello, world! 日本語 <|im_end|> é";
    int32_t *ia, *ib;
    size_t na, nb;
    q35_err e = {0};
    assert_int_equal(q35_tokenize(a, text, strlen(text), Q35_ADDED_MATCH, &ia, &na, &e), 0);
    assert_int_equal(q35_tokenize(b, text, strlen(text), Q35_ADDED_MATCH, &ib, &nb, &e), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    free(ia);
    free(ib);
}

static void write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

/* The binary cache gives back exactly the tokenizer the JSON gives, and a
 * damaged cache file is refused (the JSON is parsed again instead). */
static void test_cache(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/tokenizer.qwen35.json", Q35_FIXTURES);
    q35_mapped_file f;
    q35_err e = {0};
    assert_int_equal(q35_mapped_file_open(&f, path, &e), 0);
    q35_tokenizer *ref = q35_tokenizer_from_json((const char *)f.data, f.size, NULL, 0, &e);
    assert_non_null(ref);
    uint64_t key = tok_cache_key(f.data, f.size, NULL, 0);
    char file[4096];
    assert_true(tok_cache_path(key, file, sizeof file));
    remove(file);
    q35_tokenizer *t = q35_tokenizer_load(path, &e); /* miss: parses, then writes the cache */
    assert_non_null(t);
    expect_same(ref, t);
    q35_tokenizer_free(t);
    t = tok_cache_load(file, key, f.size); /* the entry is there and valid */
    assert_non_null(t);
    expect_same(ref, t);
    q35_tokenizer_free(t);
    assert_null(tok_cache_load(file, key ^ 1, f.size)); /* another source */
    assert_null(tok_cache_load(file, key, f.size + 1));
    size_t len;
    char *good = q35_read_text_file(file, 64u << 20, &len, &e);
    assert_non_null(good);
    char damaged[4200];
    snprintf(damaged, sizeof damaged, "%s.damaged", file);
    /* one flipped byte anywhere, or a truncation, makes it unusable */
    for (size_t at = 0; at < len; at += at < 128 ? 1 : len / 37 + 1) {
        good[at] ^= 0x20;
        write_file(damaged, good, len);
        good[at] ^= 0x20;
        q35_tokenizer *d = tok_cache_load(damaged, key, f.size);
        if (d) fail_msg("a cache with byte %zu flipped was accepted", at);
    }
    write_file(damaged, good, len / 2);
    assert_null(tok_cache_load(damaged, key, f.size));
    remove(damaged);
    /* a damaged entry in place: load still works and repairs it */
    good[len / 2] ^= 1;
    write_file(file, good, len);
    t = q35_tokenizer_load(path, &e);
    assert_non_null(t);
    expect_same(ref, t);
    q35_tokenizer_free(t);
    t = tok_cache_load(file, key, f.size);
    assert_non_null(t);
    q35_tokenizer_free(t);
    /* caching can be turned off */
    setenv("Q35_NO_TOKENIZER_CACHE", "1", 1);
    assert_false(tok_cache_path(key, file, sizeof file));
    unsetenv("Q35_NO_TOKENIZER_CACHE");
    free(good);
    q35_tokenizer_free(ref);
    q35_mapped_file_close(&f);
}

/* Uses a tokenizer that loaded from damaged input: whatever it is, it must
 * tokenize and decode without faulting (the sanitizers watch). */
static void exercise(const q35_tokenizer *t) {
    static const char *texts[] = {"Hello, world! <|im_end|> abc", "日本語 é e\xcc\x81 \xff", ""};
    for (size_t i = 0; i < 3; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        q35_err e = {0};
        if (q35_tokenize(t, texts[i], strlen(texts[i]), Q35_ADDED_MATCH, &ids, &n, &e) == 0) {
            char *out;
            size_t len;
            if (q35_detokenize(t, ids, n, false, &out, &len, &e) == 0) free(out);
        }
        free(ids);
    }
}

/* Deterministic mutants of a small tokenizer.json (byte flips, inserted
 * JSON punctuation, cuts): each is refused with an error or gives a
 * working tokenizer, never a fault. */
static void test_json_mutants(void **state) {
    (void)state;
    spec s = {.extra_vocab = "\"ab\":256,\"abc\":257",
              .merges = "[\"a b\",[\"ab\",\"c\"]]",
              .added = "[{\"id\":258,\"content\":\"<|im_end|>\",\"special\":true,"
                       "\"normalized\":false}]",
              .skip_byte = -1};
    char *good = make_json(&s);
    size_t len = strlen(good);
    char *m = malloc(len + 64);
    uint32_t rng = 99;
    int accepted = 0, refused = 0;
    for (int k = 0; k < 3000; k++) {
        memcpy(m, good, len + 1);
        size_t n = len;
        int edits = 1 + k % 3;
        for (int j = 0; j < edits; j++) {
            rng = rng * 1664525u + 1013904223u;
            size_t at = (rng >> 8) % n;
            switch ((rng >> 4) % 4) {
            case 0: m[at] ^= (char)(1 << ((rng >> 20) % 8)); break;
            case 1: m[at] = "{}[]\",:0-9e"[(rng >> 20) % 11]; break;
            case 2: n = at; break; /* cut */
            default: memmove(m + at + 1, m + at, n - at), m[at] = '"', n++; break;
            }
            if (n == 0) n = 1;
        }
        q35_err e = {0};
        q35_tokenizer *t = q35_tokenizer_from_json(m, n, NULL, 0, &e);
        if (t) {
            accepted++;
            exercise(t);
            q35_tokenizer_free(t);
        } else {
            refused++;
            assert_true(e.code != Q35_OK && e.msg[0]);
        }
    }
    fprintf(stderr, "json mutants: %d refused with an error, %d accepted and used\n", refused,
            accepted);
    assert_true(refused > 1000);
    free(m);
    free(good);
}

/* Damaged cache images whose integrity hash was recomputed, so only the
 * structural checks stand between them and use. */
static void test_cache_mutants(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/tokenizer.qwen3.json", Q35_FIXTURES);
    q35_mapped_file f;
    q35_err e = {0};
    assert_int_equal(q35_mapped_file_open(&f, path, &e), 0);
    uint64_t key = tok_cache_key(f.data, f.size, NULL, 0);
    char file[4096], damaged[4200];
    assert_true(tok_cache_path(key, file, sizeof file));
    q35_tokenizer *t = q35_tokenizer_load(path, &e); /* makes sure the entry exists */
    assert_non_null(t);
    q35_tokenizer_free(t);
    size_t len;
    unsigned char *good = (unsigned char *)q35_read_text_file(file, 64u << 20, &len, &e);
    assert_non_null(good);
    unsigned char *m = malloc(len);
    snprintf(damaged, sizeof damaged, "%s.mutant", file);
    uint32_t rng = 5;
    int accepted = 0, refused = 0;
    for (int k = 0; k < 120; k++) {
        memcpy(m, good, len);
        for (int j = 0; j < 1 + k % 4; j++) {
            rng = rng * 1664525u + 1013904223u;
            /* half the damage in the header and the first tables, where the counts,
             * offsets and slots are; the rest anywhere */
            size_t at = (k % 2 ? (rng >> 8) % 4096 : (rng >> 8) % len);
            m[at] = (unsigned char)(rng >> 24);
        }
        tok_cache_seal(m, len);
        write_file(damaged, m, len);
        t = tok_cache_load(damaged, key, f.size);
        if (t) {
            accepted++;
            exercise(t);
            q35_tokenizer_free(t);
        } else {
            refused++;
        }
    }
    fprintf(stderr, "cache mutants: %d refused, %d accepted and used\n", refused, accepted);
    assert_true(refused > 0);
    remove(damaged);
    free(m);
    free(good);
    q35_mapped_file_close(&f);
}

/* ------------------------------------------------------------ API */

static void test_api_edges(void **state) {
    (void)state;
    q35_tokenizer *t = qwen3();
    q35_err e = {0};
    q35_tokens v = {0};
    assert_int_equal(q35_tokenize_append(t, "Hello", 5, Q35_ADDED_MATCH, &v, &e), 0);
    assert_int_equal(q35_tokenize_append(t, " world", 6, Q35_ADDED_MATCH, &v, &e), 0);
    assert_int_equal(v.n, 2);
    assert_int_equal(v.ids[0], 9707); /* golden: "Hello world" -> 9707 1879 */
    assert_int_equal(v.ids[1], 1879);
    /* a failure leaves the list as it was */
    assert_int_equal(q35_tokenize_append(t, "x", 1, (q35_added_mode)7, &v, &e), Q35_EINVAL);
    assert_int_equal(v.n, 2);
    assert_int_equal(q35_tokenize_append(t, NULL, 3, Q35_ADDED_MATCH, &v, &e), Q35_EINVAL);
    assert_int_equal(q35_tokenize_append(t, NULL, 0, Q35_ADDED_MATCH, &v, &e), 0);
    assert_int_equal(v.n, 2);
    q35_tokens_free(&v);
    assert_null(v.ids);
    /* modes on the real control tokens */
    const char *s = "<|im_start|><think>";
    int32_t *ids;
    size_t n;
    assert_int_equal(q35_tokenize(t, s, strlen(s), Q35_ADDED_MATCH, &ids, &n, &e), 0);
    assert_int_equal(n, 2);
    free(ids);
    assert_int_equal(q35_tokenize(t, s, strlen(s), Q35_ADDED_SPECIAL_AS_TEXT, &ids, &n, &e), 0);
    assert_int_equal(ids[n - 1], 151667); /* <think> still matched */
    for (size_t i = 0; i + 1 < n; i++)
        assert_false(q35_token_is_added(t, ids[i]));
    free(ids);
    assert_int_equal(q35_tokenize(t, s, strlen(s), Q35_ADDED_AS_TEXT, &ids, &n, &e), 0);
    for (size_t i = 0; i < n; i++)
        assert_false(q35_token_is_added(t, ids[i]));
    free(ids);
    assert_int_equal(q35_tokenize(t, "", 0, Q35_ADDED_MATCH, &ids, &n, &e), 0);
    assert_int_equal(n, 0);
    free(ids);
    q35_tokenizer_free(t);
    q35_tokenizer_free(NULL);
    q35_detok_stream_free(NULL);
    assert_null(q35_tokenizer_load(NULL, &e));
}

int main(void) {
    /* keep this test's cache out of the user's: a fresh directory */
    static char cache[] = "/tmp/q35_tok_cache_XXXXXX";
    if (!mkdtemp(cache)) return 1;
    setenv("XDG_CACHE_HOME", cache, 1);
    unsetenv("Q35_NO_TOKENIZER_CACHE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_order),   cmocka_unit_test(test_merge_ties),
        cmocka_unit_test(test_ignore_merges), cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_config),        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bad_files),     cmocka_unit_test(test_invalid_utf8_and_nul),
        cmocka_unit_test(test_long_text),     cmocka_unit_test(test_decode_lossy),
        cmocka_unit_test(test_stream),        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_json_mutants),  cmocka_unit_test(test_cache_mutants),
        cmocka_unit_test(test_api_edges),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
