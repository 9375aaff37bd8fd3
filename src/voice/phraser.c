/* phraser.c — q35_phraser: answer pieces in, speakable phrases out (the
 * contract, and the definition of the spoken form, are in q35.h).
 *
 * Two stages: the markdown filter (speakable.c) turns answer text into the
 * text to say, with '\n' marking where a line of the answer ended; the
 * cutter below collapses whitespace and cuts phrases. The cutter takes one
 * code point at a time and decides a cut only once the text after it is
 * known well enough (the first character of the next word: "e.g. this" is
 * no sentence end, "3.14" holds no space at all), so its output depends on
 * the text alone and never on how the text was cut into pieces.
 *
 * Where it may cut: at a space (which the cut drops) or right after CJK
 * punctuation / between two CJK characters (dropping nothing). Each
 * possible cut is classed when the next character arrives:
 *   - hard: a line of the answer ended (heading, list item, paragraph);
 *   - sentence: after . ! ? (closing quotes and brackets stay with it), 。！？;
 *   - clause: after , ; : an ellipsis or a dash word, ，、；：;
 *   - soft: any other space, or between two CJK characters;
 *   - never: after an abbreviation (Dr., e.g., U.S., J.) or a numbered
 *     list marker ("1." / "2)" opening a phrase).
 * A hard cut is always taken. A sentence or clause cut is taken once the
 * phrase has min_chars (first phrase: first_min_chars). A phrase longer
 * than max_chars (first: first_max_chars) is cut at its latest sentence or
 * clause candidate of at least the minimum length, else at its latest soft
 * one; with no candidate at all (a long URL) it waits for the next one. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "q35.h"
#include "runtime/strbuf.h"
#include "voice/speakable.h"

#define DEFAULT_MIN 24
#define DEFAULT_MAX 150
#define DEFAULT_FIRST_MIN 3
#define DEFAULT_FIRST_MAX 60

typedef enum cut_kind { CUT_NEVER = 0, CUT_SOFT, CUT_CLAUSE, CUT_SENTENCE } cut_kind;

typedef struct cut {
    size_t off; /* the phrase would be cur[0..off) */
    size_t gap; /* bytes dropped at the cut: 1 (a space) or 0 */
    int n_cp;   /* code points before it */
    int strength;
} cut;

struct q35_phraser {
    q35_phrase_opts o;
    q35_phrase_fn fn;
    void *ud;
    q35_speakable filter;
    q35_strbuf speak;   /* filter output not yet cut (a partial UTF-8 tail) */
    q35_strbuf cur;     /* the phrase being built: no leading space, single spaces */
    int n_cp;           /* length of cur (code points, CJK counting 2) */
    bool space_pending; /* whitespace seen after cur's last character */
    bool hard_pending;  /* a line ended after it */
    int cjk_end;        /* cut_kind of CJK punctuation ending cur (closers after it), else 0 */
    bool last_cjk;      /* cur ends with a CJK character */
    cut *cuts;
    int n_cuts, cap_cuts;
    int index;      /* phrases emitted */
    bool spaced;    /* the spoken form has a space after the last phrase */
    bool stopped;   /* the callback asked to stop */
    q35_strbuf out; /* the phrase handed to the callback */
};

/* ------------------------------------------------------------ characters */

/* The code point at s[0..n) and its length; 0 when a valid sequence is cut
 * off by the end of the buffer. An invalid byte is a one-byte "character"
 * (U+FFFD stands for it). */
static size_t next_cp(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = u[0] < 0x80         ? 1
                 : (u[0] >> 5) == 6  ? 2
                 : (u[0] >> 4) == 14 ? 3
                 : (u[0] >> 3) == 30 ? 4
                                     : 0;
    if (!len || (len == 2 && u[0] < 0xC2)) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t c = len == 1 ? u[0] : len == 2 ? u[0] & 31u : len == 3 ? u[0] & 15u : u[0] & 7u;
    for (size_t i = 1; i < len; i++) {
        if (i >= n) return 0;
        if ((u[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        c = c << 6 | (u[i] & 63u);
    }
    *cp = c;
    return len;
}

static bool is_ws(uint32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_cjk(uint32_t c) {
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF);
}

/* CJK characters and punctuation count twice towards a phrase's length: one
 * stands for about a syllable, where a Latin letter stands for less. */
static int width(uint32_t c) {
    return is_cjk(c) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFFEF) ? 2 : 1;
}

static cut_kind cjk_punct(uint32_t c) {
    if (c == 0x3002 || c == 0xFF01 || c == 0xFF1F) return CUT_SENTENCE;              /* 。！？ */
    if (c == 0xFF0C || c == 0x3001 || c == 0xFF1B || c == 0xFF1A) return CUT_CLAUSE; /* ，、；： */
    return CUT_NEVER;
}

/* Closing quotes and brackets, which stay with the punctuation before them. */
static bool is_closer(uint32_t c) {
    return c == ')' || c == ']' || c == '}' || c == '"' || c == '\'' || c == 0x201D ||
           c == 0x2019 || c == 0x00BB || c == 0x300D || c == 0x300F || c == 0xFF09;
}

static bool is_opener_byte(char c) {
    return c == '(' || c == '[' || c == '{' || c == '"' || c == '\'';
}

/* ------------------------------------------------------- word analysis */

/* Titles and the like that a capitalized word follows without a sentence
 * ending (case as written). */
static const char *const ABBREVIATIONS[] = {
    "Mr",  "Mrs", "Ms",  "Dr",   "Prof", "Sr",   "Jr",     "St",     "Mt",   "vs",
    "Vs",  "No",  "no",  "Fig",  "fig",  "Inc",  "Ltd",    "Co",     "Corp", "Gen",
    "Col", "Lt",  "Sgt", "Capt", "Rev",  "Hon",  "approx", "Approx", "Dept", "est",
    "Ave", "Rd",  "cf",  "Nr",   "Vol",  "vol",  "pp",     "Jan",    "Feb",  "Mar",
    "Apr", "Jun", "Jul", "Aug",  "Sep",  "Sept", "Oct",    "Nov",    "Dec",  NULL,
};

static bool is_abbreviation(const char *w, size_t n) {
    if (n == 1 && ((w[0] >= 'A' && w[0] <= 'Z') || (w[0] >= 'a' && w[0] <= 'z')))
        return true; /* an initial: J. K. Rowling */
    bool dotted = false, letters_only = n > 0;
    for (size_t i = 0; i < n; i++) {
        char c = w[i];
        if (c == '.')
            dotted = true;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            letters_only = false;
    }
    if (dotted && letters_only) return true; /* e.g. i.e. U.S. a.m. Ph.D. */
    for (int i = 0; ABBREVIATIONS[i]; i++)
        if (strlen(ABBREVIATIONS[i]) == n && !memcmp(ABBREVIATIONS[i], w, n)) return true;
    return false;
}

/* "1." "12)" — a numbered list marker when it opens the phrase. */
static bool is_list_marker(const char *w, size_t n) {
    if (n < 2 || n > 4 || (w[n - 1] != '.' && w[n - 1] != ')')) return false;
    for (size_t i = 0; i + 1 < n; i++)
        if (w[i] < '0' || w[i] > '9') return false;
    return true;
}

/* Strips trailing closers from cur[w0..end); returns the new end. */
static size_t strip_closers(const char *s, size_t w0, size_t end) {
    while (end > w0) {
        size_t k = end - 1;
        while (k > w0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        uint32_t c;
        if (next_cp(s + k, end - k, &c) != end - k || !is_closer(c)) break;
        end = k;
    }
    return end;
}

/* The kind of cut at a space after cur, given the first character of the
 * next word. */
static cut_kind classify_space(const q35_phraser *p, uint32_t next) {
    const char *s = p->cur.p;
    size_t n = p->cur.n, w0 = n;
    while (w0 > 0 && s[w0 - 1] != ' ')
        w0--;
    const char *w = s + w0;
    size_t wn = n - w0;
    if (w0 == 0 && is_list_marker(w, wn)) return CUT_NEVER;
    size_t end = strip_closers(s, w0, n);
    if (end == w0) return CUT_SOFT;
    /* the last character before the closers */
    size_t k = end - 1;
    while (k > w0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    uint32_t last;
    next_cp(s + k, end - k, &last);
    cut_kind cjk = cjk_punct(last);
    if (cjk) return cjk;
    if (last == 0x2026) return CUT_CLAUSE; /* … */
    if (last == '!' || last == '?') return CUT_SENTENCE;
    if (last == ',' || last == ';' || last == ':') return CUT_CLAUSE;
    if (last == 0x2014 || last == 0x2013 || (last == '-' && end - w0 == 1)) return CUT_CLAUSE;
    if (last != '.') return CUT_SOFT;
    if (end - w0 >= 3 && !memcmp(s + end - 3, "...", 3)) return CUT_CLAUSE;
    size_t a = w0, b = end - 1; /* the word without its final '.' and openers */
    while (a < b && is_opener_byte(s[a]))
        a++;
    if (a == b) return CUT_SOFT;
    if (is_abbreviation(s + a, b - a)) return CUT_NEVER;
    if (next >= 'a' && next <= 'z') return CUT_SOFT; /* "etc. and" — no new sentence */
    return CUT_SENTENCE;
}

/* ---------------------------------------------------------------- cuts */

static int add_cut(q35_phraser *p, size_t off, size_t gap, int strength) {
    if (p->n_cuts == p->cap_cuts) {
        int cap = p->cap_cuts ? p->cap_cuts * 2 : 16;
        cut *c = realloc(p->cuts, (size_t)cap * sizeof *c);
        if (!c) return Q35_ENOMEM;
        p->cuts = c;
        p->cap_cuts = cap;
    }
    p->cuts[p->n_cuts++] = (cut){off, gap, p->n_cp, strength};
    return Q35_OK;
}

static int min_len(const q35_phraser *p) {
    return p->index ? p->o.min_chars : p->o.first_min_chars;
}

static int max_len(const q35_phraser *p) {
    return p->index ? p->o.max_chars : p->o.first_max_chars;
}

/* Hands cur[0..off) to the callback and keeps cur[off+gap..). */
/* `spaced`: the spoken form has a space at this cut (a dropped space, or a
 * space still to come that the cut makes unnecessary). */
static int emit_cut(q35_phraser *p, size_t off, size_t gap, int n_cp_before, bool spaced) {
    while (off > 0 && p->cur.p[off - 1] == ' ') /* cannot happen; kept safe */
        off--;
    int rc = Q35_OK;
    if (off > 0) {
        q35_strbuf_clear(&p->out);
        if (q35_strbuf_append(&p->out, p->cur.p, off)) return Q35_ENOMEM;
        q35_phrase ph = {p->out.p, off, p->index, p->index > 0 && p->spaced};
        p->spaced = spaced;
        p->index++;
        if (p->fn && !p->stopped && p->fn(p->ud, &ph)) p->stopped = true;
    }
    size_t drop = off + gap > p->cur.n ? p->cur.n : off + gap;
    q35_strbuf_consume(&p->cur, drop);
    p->n_cp -= n_cp_before + (gap ? 1 : 0);
    if (p->n_cp < 0) p->n_cp = 0;
    int k = 0;
    for (int i = 0; i < p->n_cuts; i++) {
        if (p->cuts[i].off <= off) continue;
        cut c = p->cuts[i];
        c.off -= drop;
        c.n_cp -= n_cp_before + (gap ? 1 : 0);
        p->cuts[k++] = c;
    }
    p->n_cuts = k;
    return rc;
}

/* Cuts while the phrase is longer than the maximum and a candidate exists. */
static int enforce_max(q35_phraser *p) {
    while (p->n_cp > max_len(p) && p->n_cuts) {
        int best = -1, soft = -1;
        for (int i = 0; i < p->n_cuts; i++) {
            if (p->cuts[i].strength >= CUT_CLAUSE && p->cuts[i].n_cp >= min_len(p)) best = i;
            if (p->cuts[i].strength >= CUT_SOFT) soft = i;
        }
        if (best < 0) best = soft;
        if (best < 0) break;
        cut c = p->cuts[best];
        int rc = emit_cut(p, c.off, c.gap, c.n_cp, c.gap > 0);
        if (rc) return rc;
    }
    return Q35_OK;
}

/* A cut right at the end of cur of kind k (gap: whether a space follows). */
static int boundary(q35_phraser *p, cut_kind k, size_t gap) {
    if (k >= CUT_CLAUSE && p->n_cp >= min_len(p)) return emit_cut(p, p->cur.n, 0, p->n_cp, gap > 0);
    if (k == CUT_NEVER) return Q35_OK;
    return add_cut(p, p->cur.n, gap, k);
}

/* One code point of speakable text (bytes s[0..len)). */
static int take_cp(q35_phraser *p, uint32_t c, const char *s, size_t len) {
    int rc = Q35_OK;
    if (is_ws(c)) {
        if (p->cur.n) p->space_pending = true;
        if (c == '\n' && p->cur.n) p->hard_pending = true;
        return Q35_OK;
    }
    if (p->space_pending) {
        if (p->hard_pending)
            rc = emit_cut(p, p->cur.n, 0, p->n_cp, true);
        else
            rc = boundary(p, classify_space(p, c), 1);
        if (rc) return rc;
        if (p->cur.n) {
            if (q35_strbuf_append(&p->cur, " ", 1)) return Q35_ENOMEM;
            p->n_cp++;
        }
        p->space_pending = p->hard_pending = false;
        p->cjk_end = 0;
        p->last_cjk = false;
    } else if (p->cjk_end && !is_closer(c)) {
        rc = boundary(p, (cut_kind)p->cjk_end, 0);
        p->cjk_end = 0;
    } else if (p->last_cjk && is_cjk(c)) {
        rc = add_cut(p, p->cur.n, 0, CUT_SOFT);
    }
    if (rc) return rc;
    if (q35_strbuf_append(&p->cur, s, len)) return Q35_ENOMEM;
    p->n_cp += width(c);
    cut_kind pk = cjk_punct(c);
    if (pk) p->cjk_end = pk;
    p->last_cjk = is_cjk(c);
    return enforce_max(p);
}

static int cut_speak(q35_phraser *p, bool final) {
    size_t off = 0;
    int rc = Q35_OK;
    while (off < p->speak.n && !rc) {
        uint32_t c;
        size_t len = next_cp(p->speak.p + off, p->speak.n - off, &c);
        if (!len) {
            if (!final) break;
            len = 1; /* a truncated sequence at the very end: its bytes as they are */
            c = 0xFFFD;
        }
        rc = take_cp(p, c, p->speak.p + off, len);
        off += len;
    }
    q35_strbuf_consume(&p->speak, off);
    return rc;
}

/* ------------------------------------------------------------- the API */

q35_phrase_opts q35_phrase_opts_default(void) {
    return (q35_phrase_opts){DEFAULT_MIN, DEFAULT_MAX, DEFAULT_FIRST_MIN, DEFAULT_FIRST_MAX};
}

q35_phraser *q35_phraser_new(const q35_phrase_opts *opts, q35_phrase_fn fn, void *user,
                             q35_err *e) {
    q35_phrase_opts o = opts ? *opts : q35_phrase_opts_default();
    if (!o.min_chars) o.min_chars = DEFAULT_MIN;
    if (!o.max_chars) o.max_chars = DEFAULT_MAX;
    if (!o.first_min_chars) o.first_min_chars = DEFAULT_FIRST_MIN;
    if (!o.first_max_chars) o.first_max_chars = DEFAULT_FIRST_MAX;
    if (o.min_chars < 1 || o.first_min_chars < 1 || o.max_chars < o.min_chars ||
        o.first_max_chars < o.first_min_chars) {
        q35_err_set(e, Q35_EINVAL,
                    "q35_phraser_new: lengths must be >= 1 with min <= max (min %d max %d, "
                    "first min %d max %d)",
                    o.min_chars, o.max_chars, o.first_min_chars, o.first_max_chars);
        return NULL;
    }
    q35_phraser *p = calloc(1, sizeof *p);
    if (!p) {
        q35_err_set(e, Q35_ENOMEM, "q35_phraser_new: out of memory");
        return NULL;
    }
    p->o = o;
    p->fn = fn;
    p->ud = user;
    q35_speakable_init(&p->filter);
    return p;
}

void q35_phraser_reset(q35_phraser *p) {
    if (!p) return;
    q35_speakable_free(&p->filter);
    q35_speakable_init(&p->filter);
    q35_strbuf_clear(&p->speak);
    q35_strbuf_clear(&p->cur);
    p->n_cp = 0;
    p->space_pending = p->hard_pending = p->last_cjk = false;
    p->cjk_end = 0;
    p->n_cuts = 0;
    p->index = 0;
    p->spaced = false;
    p->stopped = false;
}

void q35_phraser_free(q35_phraser *p) {
    if (!p) return;
    q35_speakable_free(&p->filter);
    q35_strbuf_free(&p->speak);
    q35_strbuf_free(&p->cur);
    q35_strbuf_free(&p->out);
    free(p->cuts);
    free(p);
}

int q35_phraser_feed(q35_phraser *p, const char *text, size_t len, q35_err *e) {
    if (!p || (!text && len)) return q35_err_set(e, Q35_EINVAL, "q35_phraser_feed: NULL argument");
    int rc = q35_speakable_feed(&p->filter, text, len, &p->speak);
    if (!rc) rc = cut_speak(p, false);
    if (rc) return q35_err_set(e, rc, "q35_phraser_feed: out of memory");
    return p->stopped ? q35_err_set(e, Q35_ECANCELLED, "q35_phraser_feed: stopped by the callback")
                      : Q35_OK;
}

int q35_phraser_flush(q35_phraser *p, q35_err *e) {
    if (!p) return q35_err_set(e, Q35_EINVAL, "q35_phraser_flush: NULL phraser");
    int rc = q35_speakable_finish(&p->filter, &p->speak);
    if (!rc) rc = cut_speak(p, true);
    if (!rc) rc = emit_cut(p, p->cur.n, 0, p->n_cp, false);
    bool stopped = p->stopped;
    q35_phraser_reset(p);
    if (rc) return q35_err_set(e, rc, "q35_phraser_flush: out of memory");
    return stopped ? q35_err_set(e, Q35_ECANCELLED, "q35_phraser_flush: stopped by the callback")
                   : Q35_OK;
}

int q35_phraser_on_piece(void *phraser, q35_piece_kind kind, const char *text, size_t len) {
    if (kind != Q35_PIECE_ANSWER) return 0; /* thinking is never spoken */
    return q35_phraser_feed(phraser, text, len, NULL) ? 1 : 0;
}

int q35_phraser_count(const q35_phraser *p) {
    return p ? p->index : 0;
}

int q35_spoken_form(const char *text, size_t len, char **out, size_t *out_len, q35_err *e) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!text && len) return q35_err_set(e, Q35_EINVAL, "q35_spoken_form: NULL text");
    q35_speakable f;
    q35_speakable_init(&f);
    q35_strbuf s = {0}, r = {0};
    int rc = q35_speakable_feed(&f, text, len, &s);
    if (!rc) rc = q35_speakable_finish(&f, &s);
    q35_speakable_free(&f);
    /* whitespace runs to one space, trimmed */
    bool space = false;
    for (size_t i = 0; !rc && i < s.n; i++) {
        char c = s.p[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = r.n > 0;
            continue;
        }
        if (space && q35_strbuf_append(&r, " ", 1)) rc = Q35_ENOMEM;
        space = false;
        if (!rc && q35_strbuf_append(&r, &c, 1)) rc = Q35_ENOMEM;
    }
    q35_strbuf_free(&s);
    if (!rc) {
        size_t n;
        *out = q35_strbuf_take(&r, &n);
        if (!*out)
            rc = Q35_ENOMEM;
        else if (out_len)
            *out_len = n;
    }
    q35_strbuf_free(&r);
    return rc ? q35_err_set(e, rc, "q35_spoken_form: out of memory") : Q35_OK;
}
