/* speakable.c — markdown answer text to speakable text, streaming (see
 * speakable.h; the rules are q35.h's "spoken form").
 *
 * The filter keeps undecided input in `hold` and runs one rule at a time on
 * its front: a rule either consumes bytes (emitting some text) or says it
 * needs more input. At the end of the text (`final`) every rule decides
 * with what it has. Because a rule only consumes what no later byte can
 * change, feeding the text in one piece or byte by byte gives the same
 * output. */
#include <string.h>

#include "q35.h"
#include "voice/speakable.h"

/* What a rule did. */
enum { NEED_MORE = 0, DONE = 1, FAILED = -1 };

/* Limits of what a link may hold before it is read as plain text: bounded
 * look-ahead, so hostile input cannot make the filter hold everything. */
#define MAX_LINK_TEXT 256
#define MAX_LINK_URL 2048

static const char THINK_OPEN[] = "<think>";
static const char THINK_CLOSE[] = "</think>";

void q35_speakable_init(q35_speakable *f) {
    memset(f, 0, sizeof *f);
}

void q35_speakable_free(q35_speakable *f) {
    q35_strbuf_free(&f->hold);
}

static bool is_space(int c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Letters and digits, and any non-ASCII byte (letters of other scripts). */
static bool is_wordish(int c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static int emit(q35_speakable *f, const char *s, size_t n, q35_strbuf *out) {
    if (!n) return DONE;
    if (q35_strbuf_append(out, s, n)) return FAILED;
    f->prev = (unsigned char)s[n - 1];
    return DONE;
}

static int hard_break(q35_speakable *f, q35_strbuf *out) {
    f->prev = 0;
    return q35_strbuf_append(out, "\n", 1) ? FAILED : DONE;
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of tag. */
static size_t partial_tag(const char *s, size_t n, const char *tag) {
    size_t t = strlen(tag);
    for (size_t k = t - 1; k > 0; k--)
        if (k <= n && !memcmp(s + n - k, tag, k)) return k;
    return 0;
}

/* True when s[0..n) is a proper prefix of tag (more input could complete it). */
static bool prefix_of(const char *s, size_t n, const char *tag) {
    size_t t = strlen(tag);
    return n < t && !memcmp(s, tag, n);
}

/* Inside a think block: everything up to "</think>" goes. */
static int rule_think(q35_speakable *f, const char *s, size_t n, bool final, size_t *used) {
    const char *end = memmem(s, n, THINK_CLOSE, sizeof THINK_CLOSE - 1);
    if (end) {
        *used = (size_t)(end - s) + sizeof THINK_CLOSE - 1;
        f->in_think = false;
        return DONE;
    }
    size_t keep = final ? 0 : partial_tag(s, n, THINK_CLOSE);
    *used = n - keep;
    return *used ? DONE : NEED_MORE;
}

/* Length of a fence marker (3 or more '`' or '~') at s, 0 if none, -1 if
 * undecided. */
static int fence_len(const char *s, size_t n, bool final) {
    if (!n || (s[0] != '`' && s[0] != '~')) return 0;
    size_t k = 0;
    while (k < n && s[k] == s[0])
        k++;
    if (k == n && k < 3 && !final) return -1;
    return k >= 3 ? (int)k : 0;
}

/* Drops the rest of the line (the newline too, which becomes a break). */
static int rule_skip_line(q35_speakable *f, const char *s, size_t n, size_t *used,
                          q35_strbuf *out) {
    const char *nl = memchr(s, '\n', n);
    if (!nl) {
        *used = n;
        return DONE;
    }
    *used = (size_t)(nl - s) + 1;
    f->line = SPEAK_LINE_START;
    return hard_break(f, out);
}

/* A line of a code block: a closing fence ends the block; all else goes. */
static int rule_fence_line(q35_speakable *f, const char *s, size_t n, bool final, size_t *used,
                           q35_strbuf *out) {
    if (f->line == SPEAK_LINE_START) {
        size_t i = 0;
        while (i < n && is_space(s[i]))
            i++;
        if (i == n && !final) return NEED_MORE;
        int k = fence_len(s + i, n - i, final);
        if (k < 0) return NEED_MORE;
        if (k > 0) f->in_fence = false;
        f->line = SPEAK_LINE_SKIP;
        *used = 0;
        return DONE;
    }
    return rule_skip_line(f, s, n, used, out);
}

/* A thematic break (---, ***, ___ with optional spaces) or a table rule
 * (|---|:--|): true when s[0..n) is one up to its newline, false when it is
 * not; -1 when more input is needed. */
static int rule_line_kind(const char *s, size_t n, bool final) {
    char mark = 0;
    int marks = 0;
    bool table = s[0] == '|';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\n') return table ? 1 : marks >= 3;
        if (is_space(c)) continue;
        if (table) {
            if (c != '|' && c != '-' && c != ':') return 0;
            continue;
        }
        if (c != '-' && c != '*' && c != '_') return 0;
        if (mark && c != mark) return 0;
        mark = c;
        marks++;
    }
    if (!final) return -1;
    return table ? 1 : marks >= 3;
}

/* At a line start: indentation, blank lines, headings, quotes, bullets,
 * rules and fences. Leaves the state at SPEAK_LINE_BODY when the line is
 * text (consuming its markers). */
static int rule_line_start(q35_speakable *f, const char *s, size_t n, bool final, size_t *used,
                           q35_strbuf *out) {
    char c = s[0];
    *used = 0;
    if (is_space(c)) {
        *used = 1;
        return DONE;
    }
    if (c == '\n') { /* a blank line */
        *used = 1;
        return hard_break(f, out);
    }
    if (c == '#') {
        size_t k = 0;
        while (k < n && s[k] == '#')
            k++;
        if (k == n && !final) return NEED_MORE;
        if (k <= 6 && (k == n || s[k] == ' ' || s[k] == '\t' || s[k] == '\n')) {
            *used = k;
            f->line = SPEAK_LINE_BODY;
            f->prev = 0;
            return DONE;
        }
        f->line = SPEAK_LINE_BODY;
        return DONE;
    }
    if (c == '>') {
        *used = 1;
        return DONE;
    }
    if (c == '-' || c == '*' || c == '_' || c == '|') {
        int r = rule_line_kind(s, n, final);
        if (r < 0) return NEED_MORE;
        if (r) {
            f->line = SPEAK_LINE_SKIP;
            return DONE;
        }
        if (c != '|' && c != '_' && n >= 2 && (s[1] == ' ' || s[1] == '\t')) {
            *used = 2; /* a bullet */
            f->line = SPEAK_LINE_BODY;
            return DONE;
        }
        f->line = SPEAK_LINE_BODY;
        return DONE;
    }
    if (c == '+') {
        if (n < 2 && !final) return NEED_MORE;
        if (n >= 2 && (s[1] == ' ' || s[1] == '\t')) *used = 2;
        f->line = SPEAK_LINE_BODY;
        return DONE;
    }
    if (c == '`' || c == '~') {
        int k = fence_len(s, n, final);
        if (k < 0) return NEED_MORE;
        if (k > 0) {
            f->in_fence = true;
            f->line = SPEAK_LINE_SKIP;
            return DONE;
        }
    }
    f->line = SPEAK_LINE_BODY;
    return DONE;
}

/* Length of the run of byte c at the start of s, and whether it is known to
 * end there (a different byte follows) or the text ended. */
static size_t run_len(const char *s, size_t n, bool *ended, bool final) {
    size_t k = 0;
    while (k < n && s[k] == s[0])
        k++;
    *ended = k < n || final;
    return k;
}

/* A link or image "[text](url)": the text stays (rules applied to it), the
 * rest goes. Returns NEED_MORE, DONE with *used = 0 when it is no link. */
static int rule_link(q35_speakable *f, const char *s, size_t n, bool final, size_t *used) {
    *used = 0;
    size_t close = 0;
    for (size_t i = 1; i < n && i <= MAX_LINK_TEXT; i++) {
        if (s[i] == '\n' || s[i] == '[') return DONE;
        if (s[i] == ']') {
            close = i;
            break;
        }
    }
    if (!close) return (n <= MAX_LINK_TEXT && !final) ? NEED_MORE : DONE;
    if (close + 1 >= n) return final ? DONE : NEED_MORE;
    if (s[close + 1] != '(') return DONE;
    int depth = 0;
    for (size_t i = close + 1; i < n && i <= close + 1 + MAX_LINK_URL; i++) {
        if (s[i] == '\n' || is_space(s[i])) return DONE;
        if (s[i] == '(') depth++;
        if (s[i] == ')' && --depth == 0) {
            /* keep the text: rewrite the front of hold as "text" + rest */
            size_t text_len = close - 1, end = i + 1;
            char *h = f->hold.p + (s - f->hold.p);
            memmove(h + (end - text_len), h + 1, text_len);
            *used = end - text_len;
            return DONE;
        }
    }
    return (n <= close + 1 + MAX_LINK_URL && !final) ? NEED_MORE : DONE;
}

/* Inline text: emphasis, code, links, think tags, escapes, newlines. */
static int rule_inline(q35_speakable *f, const char *s, size_t n, bool final, size_t *used,
                       q35_strbuf *out) {
    char c = s[0];
    *used = 1;
    switch (c) {
    case '\n': f->line = SPEAK_LINE_START; return hard_break(f, out);
    case '\r':
    case '`': return DONE;
    case '|': return emit(f, " ", 1, out);
    case '<':
        if (n >= sizeof THINK_OPEN - 1 && !memcmp(s, THINK_OPEN, sizeof THINK_OPEN - 1)) {
            *used = sizeof THINK_OPEN - 1;
            f->in_think = true;
            return DONE;
        }
        if (n >= sizeof THINK_CLOSE - 1 && !memcmp(s, THINK_CLOSE, sizeof THINK_CLOSE - 1)) {
            *used = sizeof THINK_CLOSE - 1; /* a stray closing tag */
            return DONE;
        }
        if (!final && (prefix_of(s, n, THINK_OPEN) || prefix_of(s, n, THINK_CLOSE)))
            return NEED_MORE;
        return emit(f, s, 1, out);
    case '\\':
        if (n < 2) return final ? emit(f, s, 1, out) : NEED_MORE;
        if ((s[1] >= '!' && s[1] <= '/') || (s[1] >= ':' && s[1] <= '@') ||
            (s[1] >= '[' && s[1] <= '`') || (s[1] >= '{' && s[1] <= '~')) {
            *used = 2;
            return emit(f, s + 1, 1, out);
        }
        return emit(f, s, 1, out);
    case '!':
        if (n < 2) return final ? emit(f, s, 1, out) : NEED_MORE;
        if (s[1] == '[') return DONE; /* an image: its alt text is read as a link's */
        return emit(f, s, 1, out);
    case '[': {
        int r = rule_link(f, s, n, final, used);
        if (r != DONE) return r;
        if (*used) return DONE;
        *used = 1;
        return emit(f, s, 1, out);
    }
    case '*':
    case '_':
    case '~': {
        bool ended;
        size_t k = run_len(s, n, &ended, final);
        if (!ended) return NEED_MORE;
        int next = k < n ? (unsigned char)s[k] : 0;
        *used = k;
        bool literal;
        if (c == '*') /* a lone asterisk between spaces: "2 * 3" */
            literal = (!f->prev || is_space(f->prev)) && (!next || is_space(next) || next == '\n');
        else if (c == '_') /* inside a word: snake_case */
            literal = is_wordish(f->prev) && is_wordish(next);
        else /* "~5 km"; ~~strike~~ goes */
            literal = k == 1;
        return literal ? emit(f, s, k, out) : DONE;
    }
    default: {
        size_t k = 1;
        while (k < n && !strchr("\n\r`|<\\![*_~", s[k]))
            k++;
        *used = k;
        return emit(f, s, k, out);
    }
    }
}

static int run_rules(q35_speakable *f, bool final, q35_strbuf *out) {
    size_t off = 0;
    int rc = Q35_OK;
    while (off < f->hold.n) {
        const char *s = f->hold.p + off;
        size_t n = f->hold.n - off, used = 0;
        int r;
        if (f->in_think)
            r = rule_think(f, s, n, final, &used);
        else if (f->in_fence)
            r = rule_fence_line(f, s, n, final, &used, out);
        else if (f->line == SPEAK_LINE_SKIP)
            r = rule_skip_line(f, s, n, &used, out);
        else if (f->line == SPEAK_LINE_START)
            r = rule_line_start(f, s, n, final, &used, out);
        else
            r = rule_inline(f, s, n, final, &used, out);
        if (r == FAILED) {
            rc = Q35_ENOMEM;
            break;
        }
        if (r == NEED_MORE) break;
        off += used;
    }
    q35_strbuf_consume(&f->hold, off);
    return rc;
}

int q35_speakable_feed(q35_speakable *f, const char *text, size_t len, q35_strbuf *out) {
    if (!len) return Q35_OK;
    if (q35_strbuf_append(&f->hold, text, len)) return Q35_ENOMEM;
    return run_rules(f, false, out);
}

int q35_speakable_finish(q35_speakable *f, q35_strbuf *out) {
    int rc = run_rules(f, true, out);
    q35_strbuf_clear(&f->hold);
    f->line = SPEAK_LINE_START;
    f->in_fence = f->in_think = false;
    f->prev = 0;
    return rc;
}
