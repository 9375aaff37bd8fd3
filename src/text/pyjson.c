/* pyjson.c — a JSON reader and printer that agree with Python's json
 * module and str() (see pyjson.h for why the chat template needs them).
 *
 * All values of a document live in one arena freed at once. Inputs are
 * hostile: nesting depth and the number of values are capped, every byte of
 * every string is checked to be UTF-8, and errors say where they are.
 */
#include "text/pyjson.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* Python's json raises RecursionError near 1000 levels; no real message or
 * tool schema comes close to this. */
#define PYJSON_MAX_DEPTH 512
/* A value costs ~100 bytes of arena whatever its text, so two bytes of
 * "[0,0,0..." would cost 100: the count is capped (~100 MB at most). Real
 * conversations and tool schemas hold thousands. */
#define PYJSON_MAX_VALUES (1u << 20)
/* Python refuses to convert longer digit strings to int (sys.int_info). */
#define PY_INT_MAX_DIGITS 4300

/* ------------------------------------------------------------------ arena */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

struct q35_pyjson_doc {
    arena_block *blocks;
    q35_pyjson root;
};

static void *arena_alloc(q35_pyjson_doc *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    arena_block *b = d->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (cap > SIZE_MAX - sizeof *b) return NULL;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = d->blocks;
        b->used = 0;
        b->cap = cap;
        d->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void q35_pyjson_free(q35_pyjson_doc *d) {
    if (!d) return;
    for (arena_block *b = d->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(d);
}

const q35_pyjson *q35_pyjson_root(const q35_pyjson_doc *d) {
    return &d->root;
}

/* ----------------------------------------------------------------- parser */

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    const char *what;
    q35_err *e;
    q35_pyjson_doc *doc;
    size_t n_values;
} parser;

static int fail_at(parser *p, size_t at, const char *msg) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else if ((p->s[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    return q35_err_set(p->e, Q35_EFORMAT, "%s: %s at line %zu column %zu (byte %zu)", p->what, msg,
                       line, col, at);
}

static int fail_oom(parser *p) {
    return q35_err_set(p->e, Q35_ENOMEM, "%s: out of memory while parsing JSON", p->what);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool match_word(parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) return false;
    p->pos += n;
    return true;
}

/* Length of the well-formed UTF-8 sequence at s[0..n), 0 if ill-formed
 * (overlong, surrogate, above U+10FFFF or truncated), as Python's strict
 * decoder judges it. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < k) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return k;
}

static size_t put_utf8(unsigned char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parses the string whose opening quote is at p->pos. The decoded bytes
 * never outnumber the escaped ones, so one arena block of the raw length
 * holds them. */
static int parse_string(parser *p, const char **out, size_t *out_len) {
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\') end++;
        end++;
    }
    if (end >= p->len) return fail_at(p, start - 1, "unterminated string");
    unsigned char *o = arena_alloc(p->doc, end - start + 1);
    if (!o) return fail_oom(p);
    size_t n = 0, i = start;
    while (i < end) {
        unsigned char c = p->s[i];
        if (c < 0x20) return fail_at(p, i, "raw control character in string (must be escaped)");
        if (c != '\\') {
            size_t k = utf8_seq_len(p->s + i, end - i);
            if (!k) return fail_at(p, i, "invalid UTF-8 in string");
            memcpy(o + n, p->s + i, k);
            n += k;
            i += k;
            continue;
        }
        unsigned char x = p->s[i + 1];
        i += 2;
        switch (x) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (end - i < 4 || hex4(p->s + i, &cp)) return fail_at(p, i - 2, "bad \\u escape");
            i += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(p, i - 6, "lone low surrogate escape (not encodable as UTF-8)");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (end - i < 6 || p->s[i] != '\\' || p->s[i + 1] != 'u' ||
                    hex4(p->s + i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(p, i - 6, "lone high surrogate escape (not encodable as UTF-8)");
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(o + n, cp);
            break;
        }
        default: return fail_at(p, i - 2, "invalid escape in string");
        }
    }
    o[n] = 0;
    p->pos = end + 1;
    *out = (const char *)o;
    *out_len = n;
    return 0;
}

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* Python's json grammar for numbers: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
 * A '.' or 'e' not followed by digits ends the number before it, so the
 * caller then reports the stray character, as Python does. */
static int parse_number(parser *p, q35_pyjson *v) {
    size_t start = p->pos, i = p->pos;
    if (i < p->len && p->s[i] == '-') i++;
    if (i >= p->len || !is_digit(p->s[i])) return fail_at(p, start, "expected a value");
    if (p->s[i] == '0') {
        i++;
    } else {
        while (i < p->len && is_digit(p->s[i]))
            i++;
    }
    size_t int_digits = i - start - (p->s[start] == '-');
    bool is_float = false;
    if (i + 1 < p->len && p->s[i] == '.' && is_digit(p->s[i + 1])) {
        is_float = true;
        i++;
        while (i < p->len && is_digit(p->s[i]))
            i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (p->s[j] == '+' || p->s[j] == '-')) j++;
        if (j < p->len && is_digit(p->s[j])) {
            is_float = true;
            while (j < p->len && is_digit(p->s[j]))
                j++;
            i = j;
        }
    }
    if (!is_float && int_digits > PY_INT_MAX_DIGITS)
        return fail_at(p, start, "integer with more than 4300 digits (Python refuses it)");
    char *lex = arena_alloc(p->doc, i - start + 1);
    if (!lex) return fail_oom(p);
    memcpy(lex, p->s + start, i - start);
    lex[i - start] = 0;
    v->type = is_float ? Q35_PYJSON_FLOAT : Q35_PYJSON_INT;
    v->str = lex;
    v->len = i - start;
    v->num = strtod(lex, NULL); /* C locale: the caller switched to it */
    p->pos = i;
    return 0;
}

typedef struct member {
    q35_pyjson_key key;
    size_t pos;
} member;

static int member_cmp(const void *a, const void *b) {
    const member *x = a, *y = b;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(x->key.s, y->key.s, n);
    if (c) return c;
    if (x->key.len != y->key.len) return x->key.len < y->key.len ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* A Python dict built from pairs: a repeated key keeps the place of its
 * first occurrence and the value of its last. Compacts keys/vals in place;
 * returns the new count, or (size_t)-1 when out of memory. */
static size_t merge_repeated_keys(q35_pyjson_key *keys, q35_pyjson *vals, size_t n) {
    if (n < 2) return n;
    member *m = malloc(n * sizeof *m);
    bool *drop = calloc(n, sizeof *drop);
    if (!m || !drop) {
        free(m);
        free(drop);
        return (size_t)-1;
    }
    for (size_t i = 0; i < n; i++)
        m[i] = (member){keys[i], i};
    qsort(m, n, sizeof *m, member_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && m[j].key.len == m[i].key.len &&
               memcmp(m[j].key.s, m[i].key.s, m[i].key.len) == 0)
            j++;
        if (j - i > 1) {
            vals[m[i].pos] = vals[m[j - 1].pos];
            for (size_t k = i + 1; k < j; k++)
                drop[m[k].pos] = true;
        }
        i = j;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop[i]) continue;
        keys[w] = keys[i];
        vals[w] = vals[i];
        w++;
    }
    free(m);
    free(drop);
    return w;
}

static int parse_value(parser *p, q35_pyjson *v, int depth);

/* Growable scratch arrays for one container; copied into the arena when the
 * container closes. */
typedef struct scratch {
    q35_pyjson *vals;
    q35_pyjson_key *keys;
    size_t n, cap;
} scratch;

static int scratch_push(scratch *s, const q35_pyjson *v, const q35_pyjson_key *k) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        q35_pyjson *nv = realloc(s->vals, cap * sizeof *nv);
        if (!nv) return -1;
        s->vals = nv;
        if (k) {
            q35_pyjson_key *nk = realloc(s->keys, cap * sizeof *nk);
            if (!nk) return -1;
            s->keys = nk;
        }
        s->cap = cap;
    }
    s->vals[s->n] = *v;
    if (k) s->keys[s->n] = *k;
    s->n++;
    return 0;
}

static int parse_container(parser *p, q35_pyjson *v, int depth, bool object) {
    if (depth >= PYJSON_MAX_DEPTH) return fail_at(p, p->pos, "JSON nested more than 512 deep");
    unsigned char close = object ? '}' : ']';
    scratch s = {0};
    int rc = 0;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            q35_pyjson_key key = {0};
            if (object) {
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != '"') {
                    rc = fail_at(p, p->pos, "expected a property name in double quotes");
                    break;
                }
                if ((rc = parse_string(p, &key.s, &key.len))) break;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') {
                    rc = fail_at(p, p->pos, "expected ':' after a property name");
                    break;
                }
                p->pos++;
            }
            q35_pyjson item;
            if ((rc = parse_value(p, &item, depth + 1))) break;
            if (scratch_push(&s, &item, object ? &key : NULL)) {
                rc = fail_oom(p);
                break;
            }
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            rc = fail_at(p, p->pos, object ? "expected ',' or '}'" : "expected ',' or ']'");
            break;
        }
    }
    if (!rc && object) {
        size_t n = merge_repeated_keys(s.keys, s.vals, s.n);
        if (n == (size_t)-1)
            rc = fail_oom(p);
        else
            s.n = n;
    }
    if (!rc) {
        v->type = object ? Q35_PYJSON_OBJECT : Q35_PYJSON_ARRAY;
        v->n = s.n;
        if (s.n) {
            v->items = arena_alloc(p->doc, s.n * sizeof *v->items);
            if (object) v->keys = arena_alloc(p->doc, s.n * sizeof *v->keys);
            if (!v->items || (object && !v->keys)) {
                rc = fail_oom(p);
            } else {
                memcpy(v->items, s.vals, s.n * sizeof *v->items);
                if (object) memcpy(v->keys, s.keys, s.n * sizeof *v->keys);
            }
        }
    }
    free(s.vals);
    free(s.keys);
    return rc;
}

static int parse_value(parser *p, q35_pyjson *v, int depth) {
    memset(v, 0, sizeof *v);
    skip_ws(p);
    if (p->pos >= p->len) return fail_at(p, p->pos, "unexpected end of input, expected a value");
    if (++p->n_values > PYJSON_MAX_VALUES)
        return q35_err_set(p->e, Q35_ENOMEM, "%s: more than %u JSON values", p->what,
                           PYJSON_MAX_VALUES);
    size_t start = p->pos;
    int rc = 0;
    switch (p->s[p->pos]) {
    case '{': rc = parse_container(p, v, depth, true); break;
    case '[': rc = parse_container(p, v, depth, false); break;
    case '"':
        v->type = Q35_PYJSON_STRING;
        rc = parse_string(p, &v->str, &v->len);
        break;
    default:
        if (match_word(p, "null")) {
            v->type = Q35_PYJSON_NULL;
        } else if (match_word(p, "true")) {
            v->type = Q35_PYJSON_TRUE;
        } else if (match_word(p, "false")) {
            v->type = Q35_PYJSON_FALSE;
        } else if (match_word(p, "NaN")) {
            v->type = Q35_PYJSON_FLOAT;
            v->num = NAN;
        } else if (match_word(p, "Infinity")) {
            v->type = Q35_PYJSON_FLOAT;
            v->num = INFINITY;
        } else if (match_word(p, "-Infinity")) {
            v->type = Q35_PYJSON_FLOAT;
            v->num = -INFINITY;
        } else {
            rc = parse_number(p, v);
        }
        if (!rc && v->type == Q35_PYJSON_FLOAT && !v->str) { /* NaN, +-Infinity */
            char *lex = arena_alloc(p->doc, p->pos - start + 1);
            if (!lex) return fail_oom(p);
            memcpy(lex, p->s + start, p->pos - start);
            lex[p->pos - start] = 0;
            v->str = lex;
            v->len = p->pos - start;
        }
    }
    if (rc) return rc;
    v->src_off = start;
    v->src_len = p->pos - start;
    return 0;
}

/* Number spelling and printing must not follow the host's LC_NUMERIC (a
 * decimal comma would corrupt both); this switches the calling thread to
 * the C locale for the duration of one call. */
typedef struct c_locale_scope {
    locale_t c, old;
} c_locale_scope;

static void c_locale_enter(c_locale_scope *s) {
    s->c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    s->old = s->c ? uselocale(s->c) : (locale_t)0;
}

static void c_locale_leave(c_locale_scope *s) {
    if (!s->c) return;
    uselocale(s->old);
    freelocale(s->c);
}

q35_pyjson_doc *q35_pyjson_parse(const char *text, size_t len, const char *what, q35_err *e) {
    if (!text && len) {
        q35_err_set(e, Q35_EINVAL, "%s: NULL JSON text", what);
        return NULL;
    }
    q35_pyjson_doc *d = calloc(1, sizeof *d);
    if (!d) {
        q35_err_set(e, Q35_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    parser p = {.s = (const unsigned char *)text, .len = len, .what = what, .e = e, .doc = d};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.pos = 3;
    c_locale_scope loc;
    c_locale_enter(&loc);
    int rc = parse_value(&p, &d->root, 0);
    c_locale_leave(&loc);
    if (!rc) {
        skip_ws(&p);
        if (p.pos < p.len) rc = fail_at(&p, p.pos, "extra data after the JSON value");
    }
    if (rc) {
        q35_pyjson_free(d);
        return NULL;
    }
    return d;
}

const q35_pyjson *q35_pyjson_get(const q35_pyjson *v, const char *key) {
    if (!v || v->type != Q35_PYJSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->n; i++)
        if (v->keys[i].len == n && memcmp(v->keys[i].s, key, n) == 0) return &v->items[i];
    return NULL;
}

const char *q35_pyjson_type_name(q35_pyjson_type t) {
    switch (t) {
    case Q35_PYJSON_NULL: return "null";
    case Q35_PYJSON_FALSE:
    case Q35_PYJSON_TRUE: return "bool";
    case Q35_PYJSON_INT: return "int";
    case Q35_PYJSON_FLOAT: return "float";
    case Q35_PYJSON_STRING: return "string";
    case Q35_PYJSON_ARRAY: return "array";
    case Q35_PYJSON_OBJECT: return "object";
    }
    return "?";
}

/* -------------------------------------------------------- Python float repr */

/* The shortest decimal digits that read back as x (> 0, finite), as
 * Python's repr finds them (David Gay's shortest mode): for each length the
 * correctly rounded digits, or, where the gap below x is narrower than the
 * gap above (a power of two), the neighbour on the other side of x. Returns
 * the digit count; *exp10 is the exponent of the first digit. */
static int shortest_digits(double x, char digits[20], int *exp10) {
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, x);
        /* buf: d[.ddd]e(+|-)XX */
        uint64_t m = 0;
        const char *c = buf;
        for (; *c && *c != 'e'; c++)
            if (*c >= '0' && *c <= '9') m = m * 10 + (uint64_t)(*c - '0');
        int e = atoi(c + 1);
        uint64_t cand[3] = {m, m + 1, m - 1};
        for (int k = 0; k < 3; k++) {
            if (cand[k] == 0) continue;
            int scale = e - (prec - 1); /* exponent of the last digit */
            char t[48];
            snprintf(t, sizeof t, "%llue%d", (unsigned long long)cand[k], scale);
            if (strtod(t, NULL) != x) continue;
            int nd = snprintf(digits, 20, "%llu", (unsigned long long)cand[k]);
            *exp10 = scale + nd - 1;
            while (nd > 1 && digits[nd - 1] == '0')
                nd--;
            digits[nd] = 0;
            return nd;
        }
    }
    /* 17 correctly rounded digits always read back; not reached. */
    snprintf(buf, sizeof buf, "%.16e", x);
    int nd = 0;
    const char *c = buf;
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9') digits[nd++] = *c;
    digits[nd] = 0;
    *exp10 = atoi(c + 1);
    return nd;
}

static size_t copy_str(char *buf, const char *s) {
    size_t n = strlen(s);
    memcpy(buf, s, n + 1);
    return n;
}

static size_t float_repr(double x, bool json, char *buf) {
    if (isnan(x)) return copy_str(buf, json ? "NaN" : "nan");
    if (isinf(x))
        return copy_str(buf, x > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf"));
    if (x == 0) return copy_str(buf, signbit(x) ? "-0.0" : "0.0");
    size_t n = 0;
    if (x < 0) {
        buf[n++] = '-';
        x = -x;
    }
    char d[20];
    int e10;
    int nd = shortest_digits(x, d, &e10);
    int decpt = e10 + 1; /* digits before the decimal point */
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            buf[n++] = '0';
            buf[n++] = '.';
            for (int i = 0; i < -decpt; i++)
                buf[n++] = '0';
            memcpy(buf + n, d, (size_t)nd);
            n += (size_t)nd;
        } else if (decpt >= nd) {
            memcpy(buf + n, d, (size_t)nd);
            n += (size_t)nd;
            for (int i = nd; i < decpt; i++)
                buf[n++] = '0';
            buf[n++] = '.';
            buf[n++] = '0';
        } else {
            memcpy(buf + n, d, (size_t)decpt);
            n += (size_t)decpt;
            buf[n++] = '.';
            memcpy(buf + n, d + decpt, (size_t)(nd - decpt));
            n += (size_t)(nd - decpt);
        }
    } else {
        buf[n++] = d[0];
        if (nd > 1) {
            buf[n++] = '.';
            memcpy(buf + n, d + 1, (size_t)(nd - 1));
            n += (size_t)(nd - 1);
        }
        n += (size_t)sprintf(buf + n, "e%c%02d", e10 < 0 ? '-' : '+', e10 < 0 ? -e10 : e10);
    }
    buf[n] = 0;
    return n;
}

size_t q35_py_float_repr(double x, bool json, char *buf) {
    c_locale_scope loc;
    c_locale_enter(&loc);
    size_t n = float_repr(x, json, buf);
    c_locale_leave(&loc);
    return n;
}

/* ---------------------------------------------------------------- printers */

#define EMIT(s, n)                                                                                 \
    do {                                                                                           \
        int rc_ = sink(ud, (s), (n));                                                              \
        if (rc_) return rc_;                                                                       \
    } while (0)

static int dump_string(const char *s, size_t len, q35_pyjson_sink sink, void *ud) {
    EMIT("\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if (!esc) continue;
        if (i > run) EMIT(s + run, i - run);
        EMIT(esc, strlen(esc));
        run = i + 1;
    }
    if (len > run) EMIT(s + run, len - run);
    EMIT("\"", 1);
    return 0;
}

/* Python prints int("-0") as 0; every other spelling of an int is already
 * its repr (JSON forbids leading zeros and '+'). */
static int dump_int(const q35_pyjson *v, q35_pyjson_sink sink, void *ud) {
    if (v->len == 2 && v->str[0] == '-' && v->str[1] == '0')
        EMIT("0", 1);
    else
        EMIT(v->str, v->len);
    return 0;
}

static int dump_value(const q35_pyjson *v, q35_pyjson_sink sink, void *ud) {
    switch (v->type) {
    case Q35_PYJSON_NULL: EMIT("null", 4); break;
    case Q35_PYJSON_TRUE: EMIT("true", 4); break;
    case Q35_PYJSON_FALSE: EMIT("false", 5); break;
    case Q35_PYJSON_INT: return dump_int(v, sink, ud);
    case Q35_PYJSON_FLOAT: {
        char b[40];
        size_t n = q35_py_float_repr(v->num, true, b);
        EMIT(b, n);
        break;
    }
    case Q35_PYJSON_STRING: return dump_string(v->str, v->len, sink, ud);
    case Q35_PYJSON_ARRAY:
        EMIT("[", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i) EMIT(", ", 2);
            int rc = dump_value(&v->items[i], sink, ud);
            if (rc) return rc;
        }
        EMIT("]", 1);
        break;
    case Q35_PYJSON_OBJECT:
        EMIT("{", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i) EMIT(", ", 2);
            int rc = dump_string(v->keys[i].s, v->keys[i].len, sink, ud);
            if (rc) return rc;
            EMIT(": ", 2);
            if ((rc = dump_value(&v->items[i], sink, ud))) return rc;
        }
        EMIT("}", 1);
        break;
    }
    return 0;
}

int q35_pyjson_dump(const q35_pyjson *v, q35_pyjson_sink sink, void *ud) {
    return dump_value(v, sink, ud);
}

int q35_pyjson_str(const q35_pyjson *v, q35_pyjson_sink sink, void *ud) {
    switch (v->type) {
    case Q35_PYJSON_NULL: EMIT("None", 4); return 0;
    case Q35_PYJSON_TRUE: EMIT("True", 4); return 0;
    case Q35_PYJSON_FALSE: EMIT("False", 5); return 0;
    case Q35_PYJSON_INT: return dump_int(v, sink, ud);
    case Q35_PYJSON_STRING: EMIT(v->str, v->len); return 0;
    case Q35_PYJSON_FLOAT: {
        char b[40];
        size_t n = q35_py_float_repr(v->num, false, b);
        EMIT(b, n);
        return 0;
    }
    default: return q35_pyjson_dump(v, sink, ud);
    }
}
