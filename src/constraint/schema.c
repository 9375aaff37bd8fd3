/* schema.c — JSON Schema to GBNF (see schema_conv.h for the contract).
 *
 * Each keyword is handled exactly, ignored as an annotation, or refused
 * with its JSON pointer. Where a schema allows more than one form of a
 * document, the grammar may pick a subset of the valid documents (never
 * one outside): properties come in the schema's order, extra keys are
 * written without escapes, numbers and whitespace are bounded (see
 * json_mode.c), Unicode-aware regex shorthands (\d, \w, \s and their
 * negations) are read as their ASCII forms. Keywords apply only to values
 * of their type, as the specification says, so {"type": ["string",
 * "null"], "maxLength": 3} bounds only the string branch. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constraint/schema.h"
#include "constraint/schema_conv.h"
#include "core/err.h"

#define MAX_DEPTH 64
#define MAX_COUNT 100000            /* minLength/maxLength/minItems/maxItems bound */
#define INT_LIMIT 999999999999999LL /* 15 digits: the integer grammar's reach */

typedef struct ref_entry {
    char *ptr;
    char name[32];
} ref_entry;

struct schema_conv {
    const cJSON *root;
    gtext rules;
    int n;
    ref_entry *refs;
    int n_refs, cap_refs;
    q35_err *e;
    int err;
    int depth;
    bool fmt_date, fmt_time, fmt_uuid, keychar;
};

static const char *const ANNOTATIONS[] = {"$schema",
                                          "$id",
                                          "$comment",
                                          "title",
                                          "description",
                                          "default",
                                          "examples",
                                          "deprecated",
                                          "readOnly",
                                          "writeOnly",
                                          "$defs",
                                          "definitions",
                                          "contentEncoding",
                                          "contentMediaType",
                                          NULL};

static const char *const HANDLED[] = {"type",
                                      "enum",
                                      "const",
                                      "anyOf",
                                      "oneOf",
                                      "allOf",
                                      "$ref",
                                      "properties",
                                      "required",
                                      "additionalProperties",
                                      "items",
                                      "prefixItems",
                                      "minItems",
                                      "maxItems",
                                      "minLength",
                                      "maxLength",
                                      "pattern",
                                      "format",
                                      "minimum",
                                      "maximum",
                                      "exclusiveMinimum",
                                      "exclusiveMaximum",
                                      "uniqueItems",
                                      NULL};

static bool in_list(const char *const *l, const char *s) {
    for (; *l; l++)
        if (!strcmp(*l, s)) return true;
    return false;
}

static const char *show(const char *path) {
    return *path ? path : "/ (the root)";
}

static int fail(schema_conv *c, q35_status code, const char *fmt, const char *a, const char *path) {
    if (c->err) return c->err;
    char msg[600];
    snprintf(msg, sizeof msg, fmt, a);
    q35_err_set(c->e, code, "json schema: %s at %s", msg, show(path));
    return c->err = code;
}

static void child_path(char *out, size_t cap, const char *path, const char *key) {
    size_t n = strlen(path);
    if (n + 2 >= cap) {
        snprintf(out, cap, "%s", path);
        return;
    }
    memcpy(out, path, n);
    out[n++] = '/';
    for (const char *k = key; *k && n + 3 < cap; k++) {
        if (*k == '~') {
            out[n++] = '~';
            out[n++] = '0';
        } else if (*k == '/') {
            out[n++] = '~';
            out[n++] = '1';
        } else {
            out[n++] = *k;
        }
    }
    out[n] = 0;
}

static void child_index(char *out, size_t cap, const char *path, const char *key, int i) {
    char tmp[1000];
    child_path(tmp, sizeof tmp, path, key);
    size_t n = strlen(tmp);
    if (n + 12 < cap) {
        memcpy(out, tmp, n);
        snprintf(out + n, cap - n, "/%d", i % 100000000);
    } else {
        snprintf(out, cap, "%.*s", (int)(cap - 1), tmp);
    }
}

void schema_conv_rule(schema_conv *c, const char *name, const char *rhs) {
    gt_printf(&c->rules, "%s ::= ", name);
    gt_put(&c->rules, rhs);
    gt_put(&c->rules, "\n");
}

static void new_name(schema_conv *c, char name[32]) {
    snprintf(name, 32, "s%d", c->n++);
}

/* A rule holding `rhs`; its name into name[32]. */
static void add_rule(schema_conv *c, gtext *rhs, char name[32]) {
    new_name(c, name);
    schema_conv_rule(c, name, rhs->p ? rhs->p : "\"\"");
    if (rhs->oom) c->rules.oom = true;
}

schema_conv *schema_conv_new(const cJSON *root, q35_err *e) {
    schema_conv *c = calloc(1, sizeof *c);
    if (!c) {
        q35_err_set(e, Q35_ENOMEM, "json schema: out of memory");
        return NULL;
    }
    c->root = root;
    c->e = e;
    return c;
}

void schema_conv_set_root(schema_conv *c, const cJSON *root) {
    for (int i = 0; i < c->n_refs; i++)
        free(c->refs[i].ptr);
    c->n_refs = 0;
    c->root = root;
}

const char *schema_conv_format_rule(schema_conv *c, const char *f) {
    if (!strcmp(f, "date")) return c->fmt_date = true, "fmt-date";
    if (!strcmp(f, "time")) return c->fmt_time = true, "fmt-time";
    if (!strcmp(f, "date-time")) return c->fmt_date = c->fmt_time = true, "fmt-date \"T\" fmt-time";
    if (!strcmp(f, "uuid")) return c->fmt_uuid = true, "fmt-uuid";
    return NULL;
}

void schema_conv_free(schema_conv *c) {
    if (!c) return;
    for (int i = 0; i < c->n_refs; i++)
        free(c->refs[i].ptr);
    free(c->refs);
    gt_free(&c->rules);
    free(c);
}

/* ------------------------------------------------------------ numbers */

static bool get_count(schema_conv *c, const cJSON *s, const char *kw, const char *path, long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, kw);
    if (!v) return false;
    char p[1024];
    child_path(p, sizeof p, path, kw);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble)) {
        fail(c, Q35_EINVAL, "'%s' must be a non-negative integer", kw, p);
        return false;
    }
    if (v->valuedouble > MAX_COUNT) {
        fail(c, Q35_EINVAL, "'%s' over 100000 is not supported", kw, p);
        return false;
    }
    *out = (long)v->valuedouble;
    return true;
}

static void digits_of(long long v, char *out) {
    snprintf(out, 24, "%lld", v);
}

/* Decimal strings of equal length n from lo to hi (digit strings). */
static void fixed_range(gtext *t, const char *lo, const char *hi, int n) {
    if (n == 0) {
        gt_put(t, "\"\"");
        return;
    }
    bool all0 = true, all9 = true;
    for (int i = 0; i < n; i++) {
        if (lo[i] != '0') all0 = false;
        if (hi[i] != '9') all9 = false;
    }
    if (all0 && all9) {
        gt_printf(t, "[0-9]{%d}", n);
        return;
    }
    if (lo[0] == hi[0]) {
        gt_printf(t, "\"%c\" ", lo[0]);
        fixed_range(t, lo + 1, hi + 1, n - 1);
        return;
    }
    bool rest0 = true, rest9 = true;
    for (int i = 1; i < n; i++) {
        if (lo[i] != '0') rest0 = false;
        if (hi[i] != '9') rest9 = false;
    }
    if (rest0 && rest9) {
        gt_printf(t, "[%c-%c]", lo[0], hi[0]);
        if (n > 1) gt_printf(t, " [0-9]{%d}", n - 1);
        return;
    }
    char nines[24], zeros[24];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    gt_put(t, "( ");
    gt_printf(t, "\"%c\" ", lo[0]);
    fixed_range(t, lo + 1, nines, n - 1);
    if (hi[0] - lo[0] > 1) {
        gt_printf(t, " | [%c-%c]", lo[0] + 1, hi[0] - 1);
        if (n > 1) gt_printf(t, " [0-9]{%d}", n - 1);
    }
    gt_printf(t, " | \"%c\" ", hi[0]);
    fixed_range(t, zeros, hi + 1, n - 1);
    gt_put(t, " )");
}

/* Non-negative integers a..b without leading zeros. */
static void nonneg_range(gtext *t, long long a, long long b) {
    char sa[24], sb[24];
    digits_of(a, sa);
    digits_of(b, sb);
    int la = (int)strlen(sa), lb = (int)strlen(sb);
    gt_put(t, "( ");
    for (int len = la; len <= lb; len++) {
        char lo[24], hi[24];
        if (len == la) {
            memcpy(lo, sa, 24);
        } else {
            lo[0] = '1';
            memset(lo + 1, '0', (size_t)len - 1);
            lo[len] = 0;
        }
        if (len == lb) {
            memcpy(hi, sb, 24);
        } else {
            memset(hi, '9', (size_t)len);
            hi[len] = 0;
        }
        if (len > la) gt_put(t, " | ");
        fixed_range(t, lo, hi, len);
    }
    gt_put(t, " )");
}

static int integer_expr(schema_conv *c, const cJSON *s, const char *path, gtext *t) {
    long long lo = -INT_LIMIT, hi = INT_LIMIT;
    static const char *const kws[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, kws[k]);
        if (!v) continue;
        char p[1024];
        child_path(p, sizeof p, path, kws[k]);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return fail(c, Q35_EINVAL, "'%s' must be a number", kws[k], p);
        double d = v->valuedouble;
        if (d > (double)INT_LIMIT) d = (double)INT_LIMIT + 1;
        if (d < -(double)INT_LIMIT) d = -(double)INT_LIMIT - 1;
        long long x;
        switch (k) {
        case 0:
            x = (long long)ceil(d);
            if (x > lo) lo = x;
            break;
        case 1:
            x = (long long)floor(d) + 1;
            if (x > lo) lo = x;
            break;
        case 2:
            x = (long long)floor(d);
            if (x < hi) hi = x;
            break;
        default:
            x = (long long)ceil(d) - 1;
            if (x < hi) hi = x;
            break;
        }
    }
    if (lo > hi) return fail(c, Q35_EINVAL, "%sno integer satisfies the bounds", "", path);
    gt_put(t, "( ");
    bool any = false;
    if (lo < 0) {
        long long a = hi < 0 ? -hi : 1, b = -lo;
        gt_put(t, "\"-\" ");
        nonneg_range(t, a, b);
        any = true;
    }
    if (hi >= 0) {
        if (any) gt_put(t, " | ");
        nonneg_range(t, lo > 0 ? lo : 0, hi);
    }
    gt_put(t, " )");
    return Q35_OK;
}

/* Numbers (without exponent) whose integer part I is in [a, b], followed
 * by a fraction of the kind asked: any, only zeros, or not only zeros. */
enum { FRAC_ANY, FRAC_ZERO, FRAC_NONZERO };

static void num_segment(gtext *t, int *n, const char *sign, long long a, long long b, int frac) {
    if (a > b) return;
    static const char *const fr[] = {"( \".\" [0-9]{1,6} )?", "( \".\" \"0\"{1,6} )?",
                                     "\".\" [0-9]{0,5} [1-9] [0-9]{0,5}"};
    if ((*n)++) gt_put(t, " | ");
    gt_printf(t, "( %s", sign);
    nonneg_range(t, a, b);
    gt_printf(t, " %s )", fr[frac]);
}

/* Values v with L <(=) v <(=) U on one side of zero, written as I.F:
 * v >= L <=> I >= L; v > L <=> I > L, or I == L with a non-zero
 * fraction; v <= U <=> I < U, or I == U with a zero fraction; v < U <=>
 * I < U (L and U are integers). */
static void num_side(gtext *t, int *n, const char *sign, long long L, bool lex, long long U,
                     bool uex) {
    if (L > U) return;
    if (L == U) {
        if (!lex && !uex) num_segment(t, n, sign, L, L, FRAC_ZERO);
        return;
    }
    num_segment(t, n, sign, L, L, lex ? FRAC_NONZERO : FRAC_ANY);
    num_segment(t, n, sign, L + 1, U - 1, FRAC_ANY);
    if (!uex) num_segment(t, n, sign, U, U, FRAC_ZERO);
}

/* A number with integer bounds: no exponent, at most 9 integer and 6
 * fraction digits, so that Python's float of the text never rounds across
 * a bound. */
#define NUM_LIMIT 999999999LL

static int number_expr(schema_conv *c, const cJSON *s, const char *path, gtext *t) {
    static const char *const kws[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    bool has_lo = false, has_hi = false, lex = false, hex = false;
    long long lo = 0, hi = 0;
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, kws[k]);
        if (!v) continue;
        char p[1024];
        child_path(p, sizeof p, path, kws[k]);
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            fabs(v->valuedouble) > (double)NUM_LIMIT)
            return fail(c, Q35_EINVAL,
                        "'%s' on a number must be an integer within 1e9 (a fractional bound is "
                        "not supported)",
                        kws[k], p);
        long long x = (long long)v->valuedouble;
        bool excl = k == 1 || k == 3;
        if (k < 2) {
            if (!has_lo || x > lo || (x == lo && excl)) lo = x, lex = excl;
            has_lo = true;
        } else {
            if (!has_hi || x < hi || (x == hi && excl)) hi = x, hex = excl;
            has_hi = true;
        }
    }
    if (!has_lo && !has_hi) {
        gt_put(t, "number");
        return Q35_OK;
    }
    int n = 0;
    gt_put(t, "( ");
    /* v >= 0, written without a sign */
    if (!has_hi || hi >= 0) {
        long long L = has_lo && lo >= 0 ? lo : 0;
        bool l_ex = has_lo && lo >= 0 && lex;
        long long U = has_hi ? hi : NUM_LIMIT;
        bool u_ex = has_hi && hex;
        num_side(t, &n, "", L, l_ex, U, u_ex);
    }
    /* v < 0: "-" and a magnitude M > 0, with -M within the bounds */
    if (!has_lo || lo < 0) {
        long long L = has_hi && hi < 0 ? -hi : 0;
        bool l_ex = has_hi && hi < 0 ? hex : true;
        long long U = has_lo ? -lo : NUM_LIMIT;
        bool u_ex = has_lo && lex;
        num_side(t, &n, "\"-\" ", L, l_ex, U, u_ex);
    }
    gt_put(t, " )");
    if (!n) return fail(c, Q35_EINVAL, "%sno number satisfies the bounds", "", path);
    return Q35_OK;
}

/* ------------------------------------------------------------ strings */

typedef struct cp_range {
    uint32_t lo, hi;
} cp_range;

typedef struct cp_set {
    cp_range *r;
    int n, cap;
    bool oom;
} cp_set;

static void cs_add(cp_set *s, uint32_t lo, uint32_t hi) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        cp_range *r = realloc(s->r, (size_t)cap * sizeof *r);
        if (!r) {
            s->oom = true;
            return;
        }
        s->r = r;
        s->cap = cap;
    }
    s->r[s->n++] = (cp_range){lo, hi};
}

static int cmp_cp(const void *a, const void *b) {
    const cp_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void cs_normalize(cp_set *s) {
    qsort(s->r, (size_t)s->n, sizeof *s->r, cmp_cp);
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        if (k && s->r[i].lo <= s->r[k - 1].hi + 1) {
            if (s->r[i].hi > s->r[k - 1].hi) s->r[k - 1].hi = s->r[i].hi;
        } else {
            s->r[k++] = s->r[i];
        }
    }
    s->n = k;
}

static void cs_complement(cp_set *s) {
    cs_normalize(s);
    cp_set c = {0};
    uint32_t next = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->r[i].lo > next) cs_add(&c, next, s->r[i].lo - 1);
        next = s->r[i].hi + 1;
    }
    if (next <= 0x10FFFF) cs_add(&c, next, 0x10FFFF);
    free(s->r);
    c.oom |= s->oom;
    *s = c;
}

static bool cs_has(const cp_set *s, uint32_t cp) {
    for (int i = 0; i < s->n; i++)
        if (cp >= s->r[i].lo && cp <= s->r[i].hi) return true;
    return false;
}

/* One decoded character of class s, as JSON string content: raw where
 * JSON allows it, escaped where it must be. */
static bool json_char_class(gtext *t, cp_set *s) {
    cs_normalize(s);
    gtext alts = {0};
    int n_alts = 0;
    /* the raw part: s minus controls, '"' and '\\' */
    gtext cls = {0};
    int n_cls = 0;
    for (int i = 0; i < s->n; i++) {
        uint32_t lo = s->r[i].lo < 0x20 ? 0x20 : s->r[i].lo, hi = s->r[i].hi;
        if (hi > 0x10FFFF) hi = 0x10FFFF;
        uint32_t cuts[] = {'"', '\\'};
        uint32_t a = lo;
        while (a <= hi) {
            uint32_t b = hi;
            for (int k = 0; k < 2; k++)
                if (cuts[k] >= a && cuts[k] <= b) b = cuts[k] == a ? a : cuts[k] - 1;
            bool cut = (a == '"' || a == '\\');
            if (!cut) {
                gt_printf(&cls, "\\U%08X-\\U%08X", a, b);
                n_cls++;
            }
            if (b == 0x10FFFF) break;
            a = b + 1;
        }
    }
    if (n_cls) {
        gt_put(&alts, "[");
        gt_put(&alts, cls.p);
        gt_put(&alts, "]");
        n_alts++;
    }
    gt_free(&cls);
    static const char *const short_esc[32] = {
        [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r"};
    for (uint32_t cp = 0; cp < 0x20; cp++) {
        if (!cs_has(s, cp)) continue;
        char esc[8];
        if (short_esc[cp])
            snprintf(esc, sizeof esc, "%s", short_esc[cp]);
        else
            snprintf(esc, sizeof esc, "\\u%04x", cp);
        if (n_alts++) gt_put(&alts, " | ");
        gt_literal(&alts, esc, strlen(esc));
    }
    if (cs_has(s, '"')) {
        if (n_alts++) gt_put(&alts, " | ");
        gt_literal(&alts, "\\\"", 2);
    }
    if (cs_has(s, '\\')) {
        if (n_alts++) gt_put(&alts, " | ");
        gt_literal(&alts, "\\\\", 2);
    }
    bool ok = n_alts > 0 && !alts.oom;
    if (ok) {
        gt_put(t, "( ");
        gt_put(t, alts.p);
        gt_put(t, " )");
    }
    gt_free(&alts);
    return ok;
}

typedef struct rx {
    const char *p, *end;
    schema_conv *c;
    const char *path;
    int depth;
} rx;

static int rx_fail(rx *r, const char *what) {
    return fail(r->c, Q35_EINVAL, "pattern: %s", what, r->path);
}

static uint32_t rx_utf8(rx *r) {
    const unsigned char *q = (const unsigned char *)r->p;
    unsigned c = q[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (r->end - r->p < n) n = 1;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (int i = 1; i < n; i++)
        cp = cp << 6 | (q[i] & 0x3F);
    r->p += n;
    return cp;
}

static void add_shorthand(cp_set *s, char k) {
    switch (k) {
    case 'd': cs_add(s, '0', '9'); break;
    case 'w':
        cs_add(s, '0', '9');
        cs_add(s, 'A', 'Z');
        cs_add(s, 'a', 'z');
        cs_add(s, '_', '_');
        break;
    case 's':
        cs_add(s, '\t', '\r'); /* \t \n \v \f \r */
        cs_add(s, ' ', ' ');
        break;
    /* the negations, as ASCII only: Python's are Unicode-aware, so any
     * non-ASCII character could be a digit, word or space character */
    case 'D':
        cs_add(s, 0x20, '0' - 1);
        cs_add(s, '9' + 1, 0x7E);
        break;
    case 'W':
        cs_add(s, 0x20, '0' - 1);
        cs_add(s, '9' + 1, 'A' - 1);
        cs_add(s, 'Z' + 1, '_' - 1);
        cs_add(s, '`', '`');
        cs_add(s, 'z' + 1, 0x7E);
        break;
    case 'S': cs_add(s, 0x21, 0x7E); break;
    }
}

/* An escape after '\\' (r->p at the letter): a single code point into
 * *cp, or a shorthand class into s (returns 1). */
static int rx_escape(rx *r, uint32_t *cp, cp_set *s, bool in_class) {
    if (r->p >= r->end) return rx_fail(r, "a trailing backslash"), -1;
    char k = *r->p++;
    switch (k) {
    case 'd':
    case 'w':
    case 's':
    case 'D':
    case 'W':
    case 'S': add_shorthand(s, k); return 1;
    case 'n': *cp = '\n'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'v': *cp = '\v'; return 0;
    case '0': *cp = 0; return 0;
    case 'b':
        if (in_class) {
            *cp = '\b';
            return 0;
        }
        return rx_fail(r, "word boundaries (\\b) are not supported"), -1;
    case 'x':
    case 'u': {
        int nd = k == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int i = 0; i < nd; i++) {
            if (r->p >= r->end || !isxdigit((unsigned char)*r->p))
                return rx_fail(r, "a bad \\x or \\u escape"), -1;
            char h = *r->p++;
            v = v * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
        }
        *cp = v;
        return 0;
    }
    default:
        if (isalnum((unsigned char)k)) {
            char msg[64];
            snprintf(msg, sizeof msg, "the escape \\%c is not supported", k);
            return rx_fail(r, msg), -1;
        }
        r->p--;
        *cp = rx_utf8(r);
        return 0;
    }
}

static int rx_class(rx *r, gtext *t) {
    r->p++; /* [ */
    bool negate = false;
    if (r->p < r->end && *r->p == '^') {
        negate = true;
        r->p++;
    }
    cp_set s = {0};
    bool first = true, shorthand = false;
    while (r->p < r->end && (*r->p != ']' || first)) {
        first = false;
        uint32_t lo, hi;
        if (*r->p == '\\') {
            r->p++;
            int k = rx_escape(r, &lo, &s, true);
            if (k < 0) goto bad;
            if (k == 1) {
                shorthand = true;
                continue;
            }
        } else if (*r->p == '[' && r->p + 1 < r->end && r->p[1] == ':') {
            rx_fail(r, "POSIX classes [:...:] are not supported");
            goto bad;
        } else {
            lo = rx_utf8(r);
        }
        hi = lo;
        if (r->p + 1 < r->end && *r->p == '-' && r->p[1] != ']') {
            r->p++;
            if (*r->p == '\\') {
                r->p++;
                cp_set dummy = {0};
                int k = rx_escape(r, &hi, &dummy, true);
                free(dummy.r);
                if (k != 0) {
                    if (k > 0) rx_fail(r, "a class shorthand as a range end");
                    goto bad;
                }
            } else {
                hi = rx_utf8(r);
            }
            if (hi < lo) {
                rx_fail(r, "a range with its end before its start");
                goto bad;
            }
        }
        cs_add(&s, lo, hi);
    }
    if (r->p >= r->end) {
        rx_fail(r, "an unterminated character class");
        goto bad;
    }
    r->p++;
    if (negate && shorthand) {
        rx_fail(r, "\\d, \\w, \\s (or negations) inside a negated class are not supported");
        goto bad;
    }
    if (negate) cs_complement(&s);
    if (s.oom || !json_char_class(t, &s)) {
        rx_fail(r, "a character class that matches nothing");
        goto bad;
    }
    free(s.r);
    return Q35_OK;
bad:
    free(s.r);
    return r->c->err ? r->c->err : Q35_EINVAL;
}

static int rx_alt(rx *r, gtext *t);

/* Quantifier at r->p, if any: writes it; -1 on error, 0 none, 1 one. */
static int rx_quant(rx *r, gtext *t) {
    if (r->p >= r->end) return 0;
    char q = *r->p;
    if (q == '*' || q == '+' || q == '?') {
        r->p++;
        gt_printf(t, "%c", q);
    } else if (q == '{') {
        const char *s = r->p + 1;
        char *e1;
        long lo = strtol(s, &e1, 10), hi;
        if (e1 == s || lo < 0) return 0; /* a literal '{' */
        if (*e1 == '}') {
            hi = lo;
            r->p = e1 + 1;
        } else if (*e1 == ',') {
            if (e1[1] == '}') {
                hi = -1;
                r->p = e1 + 2;
            } else {
                char *e2;
                hi = strtol(e1 + 1, &e2, 10);
                if (e2 == e1 + 1 || *e2 != '}') return 0;
                r->p = e2 + 1;
            }
        } else {
            return 0;
        }
        if (lo > MAX_COUNT || hi > MAX_COUNT || (hi >= 0 && hi < lo))
            return rx_fail(r, "a bad or too large {m,n} count"), -1;
        if (hi < 0)
            gt_printf(t, "{%ld,}", lo);
        else
            gt_printf(t, "{%ld,%ld}", lo, hi);
    } else {
        return 0;
    }
    if (r->p < r->end && *r->p == '?') r->p++; /* lazy: the same language */
    if (r->p < r->end && *r->p == '+') return rx_fail(r, "possessive quantifiers"), -1;
    return 1;
}

static int rx_seq(rx *r, gtext *t) {
    int n_atoms = 0;
    while (r->p < r->end && *r->p != '|' && *r->p != ')') {
        gtext atom = {0};
        int rc = Q35_OK;
        char ch = *r->p;
        if (ch == '(') {
            r->p++;
            if (r->p < r->end && *r->p == '?') {
                if (r->end - r->p >= 2 && r->p[1] == ':') {
                    r->p += 2;
                } else if (r->end - r->p >= 2 && (r->p[1] == '<' || r->p[1] == 'P') &&
                           !(r->p[1] == '<' && r->end - r->p >= 3 &&
                             (r->p[2] == '=' || r->p[2] == '!'))) {
                    const char *gt = memchr(r->p, '>', (size_t)(r->end - r->p));
                    if (!gt)
                        rc = rx_fail(r, "an unterminated group name");
                    else
                        r->p = gt + 1;
                } else {
                    rc = rx_fail(r, "lookaround and inline flags are not supported");
                }
            }
            if (!rc && ++r->depth > 100) rc = rx_fail(r, "groups nested too deep");
            if (!rc) {
                gt_put(&atom, "( ");
                rc = rx_alt(r, &atom);
                gt_put(&atom, " )");
                r->depth--;
            }
            if (!rc && (r->p >= r->end || *r->p != ')')) rc = rx_fail(r, "an unclosed group");
            if (!rc) r->p++;
        } else if (ch == '[') {
            rc = rx_class(r, &atom);
        } else if (ch == '.') {
            r->p++;
            cp_set s = {0};
            cs_add(&s, '\n', '\n');
            cs_add(&s, '\r', '\r');
            cs_add(&s, 0x2028, 0x2029);
            cs_complement(&s);
            if (!json_char_class(&atom, &s)) rc = rx_fail(r, "out of memory");
            free(s.r);
        } else if (ch == '^' || ch == '$') {
            rc = rx_fail(r, "anchors ^ and $ are supported only at the ends");
        } else if (ch == '*' || ch == '+' || ch == '?') {
            rc = rx_fail(r, "a quantifier with nothing to repeat");
        } else if (ch == '\\') {
            r->p++;
            if (r->p < r->end && *r->p >= '1' && *r->p <= '9') {
                rc = rx_fail(r, "back-references are not supported");
            } else if (r->p < r->end && (*r->p == 'B' || *r->p == 'A' || *r->p == 'Z' ||
                                         *r->p == 'k' || *r->p == 'p' || *r->p == 'P')) {
                char msg[64];
                snprintf(msg, sizeof msg, "the escape \\%c is not supported", *r->p);
                rc = rx_fail(r, msg);
            } else {
                cp_set s = {0};
                uint32_t cp;
                int k = rx_escape(r, &cp, &s, false);
                if (k < 0)
                    rc = r->c->err;
                else {
                    if (k == 0) cs_add(&s, cp, cp);
                    if (!json_char_class(&atom, &s)) rc = rx_fail(r, "an empty class");
                }
                free(s.r);
            }
        } else {
            cp_set s = {0};
            uint32_t cp = rx_utf8(r);
            cs_add(&s, cp, cp);
            if (!json_char_class(&atom, &s)) rc = rx_fail(r, "out of memory");
            free(s.r);
        }
        if (!rc) {
            if (n_atoms++) gt_put(t, " ");
            gt_put(t, "( ");
            gt_put(t, atom.p ? atom.p : "\"\"");
            gt_put(t, " )");
            if (rx_quant(r, t) < 0) rc = r->c->err;
        }
        gt_free(&atom);
        if (rc) return rc;
    }
    if (!n_atoms) gt_put(t, "\"\"");
    return Q35_OK;
}

static int rx_alt(rx *r, gtext *t) {
    gt_put(t, "( ");
    for (;;) {
        int rc = rx_seq(r, t);
        if (rc) return rc;
        if (r->p < r->end && *r->p == '|') {
            r->p++;
            gt_put(t, " | ");
            continue;
        }
        break;
    }
    gt_put(t, " )");
    return Q35_OK;
}

static int pattern_expr(schema_conv *c, const cJSON *pat, const char *path, gtext *t) {
    if (!cJSON_IsString(pat)) return fail(c, Q35_EINVAL, "%s'pattern' must be a string", "", path);
    const char *s = pat->valuestring;
    size_t n = strlen(s);
    bool start = n && s[0] == '^';
    bool end = false;
    if (n && s[n - 1] == '$') { /* not escaped: an even run of backslashes before it */
        size_t k = 0;
        while (k + 1 < n && s[n - 2 - k] == '\\')
            k++;
        end = k % 2 == 0;
    }
    rx r = {.p = s + (start ? 1 : 0), .end = s + n - (end ? 1 : 0), .c = c, .path = path};
    if (r.p > r.end) r.p = r.end;
    gt_put(t, "\"\\\"\" ");
    if (!start) gt_put(t, "char* ");
    int rc = rx_alt(&r, t);
    if (!rc && r.p < r.end) rc = rx_fail(&r, "an unmatched ')'");
    if (rc) return rc;
    if (!end) gt_put(t, " char*");
    gt_put(t, " \"\\\"\"");
    return Q35_OK;
}

static int string_expr(schema_conv *c, const cJSON *s, const char *path, gtext *t) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(s, "pattern");
    bool has_len = cJSON_GetObjectItemCaseSensitive(s, "minLength") ||
                   cJSON_GetObjectItemCaseSensitive(s, "maxLength");
    char p[1024];
    if (fmt) {
        child_path(p, sizeof p, path, "format");
        if (pat || has_len)
            return fail(c, Q35_EINVAL, "'format' together with '%s' is not supported",
                        pat ? "pattern" : "minLength/maxLength", p);
        const char *f = cJSON_IsString(fmt) ? fmt->valuestring : "";
        const char *rule = schema_conv_format_rule(c, f);
        if (!rule) return fail(c, Q35_EINVAL, "unsupported format '%s'", f, p);
        gt_printf(t, "\"\\\"\" %s \"\\\"\"", rule);
        return Q35_OK;
    }
    if (pat) {
        child_path(p, sizeof p, path, "pattern");
        if (has_len)
            return fail(c, Q35_EINVAL,
                        "%s'pattern' together with minLength/maxLength is not "
                        "supported",
                        "", p);
        return pattern_expr(c, pat, p, t);
    }
    long lo = 0, hi = -1;
    get_count(c, s, "minLength", path, &lo);
    get_count(c, s, "maxLength", path, &hi);
    if (c->err) return c->err;
    if (hi >= 0 && hi < lo) return fail(c, Q35_EINVAL, "%smaxLength is below minLength", "", path);
    if (hi < 0)
        gt_printf(t, "\"\\\"\" char{%ld,} \"\\\"\"", lo);
    else
        gt_printf(t, "\"\\\"\" char{%ld,%ld} \"\\\"\"", lo, hi);
    return Q35_OK;
}

/* ------------------------------------------------------------ objects */

/* A key that is none of names[0..n): the trie of the names, followed
 * while the key agrees with one, left at the first other character. */
typedef struct key_trie {
    const char **names;
    int n;
} key_trie;

static void exclusion_rule(schema_conv *c, const char **names, int n, size_t depth, char out[32]) {
    /* names all share their first `depth` bytes; those ending here make
     * the closing quote unavailable */
    gtext rhs = {0};
    bool ends_here = false;
    cp_set next = {0};
    for (int i = 0; i < n; i++) {
        if (strlen(names[i]) == depth) ends_here = true;
    }
    int alts = 0;
    /* follow each distinct next character */
    for (int i = 0; i < n; i++) {
        const char *s = names[i] + depth;
        if (!*s) continue;
        rx r = {.p = s, .end = s + strlen(s), .c = c, .path = ""};
        uint32_t cp = rx_utf8(&r);
        size_t clen = (size_t)(r.p - s);
        if (cs_has(&next, cp)) continue;
        cs_add(&next, cp, cp);
        /* the names continuing with this character */
        const char **sub = malloc((size_t)n * sizeof *sub);
        if (!sub) {
            c->rules.oom = true;
            break;
        }
        int m = 0;
        for (int j = 0; j < n; j++)
            if (strlen(names[j]) >= depth + clen && !memcmp(names[j] + depth, s, clen))
                sub[m++] = names[j];
        char child[32];
        exclusion_rule(c, sub, m, depth + clen, child);
        free(sub);
        if (alts++) gt_put(&rhs, " | ");
        gt_literal(&rhs, s, clen);
        gt_printf(&rhs, " %s", child);
    }
    /* diverge: any other key character, then any rest */
    cs_add(&next, 0, 0x1F);
    cs_add(&next, '"', '"');
    cs_add(&next, '\\', '\\');
    cs_complement(&next);
    gtext cls = {0};
    if (json_char_class(&cls, &next)) {
        if (alts++) gt_put(&rhs, " | ");
        gt_put(&rhs, cls.p);
        gt_put(&rhs, " keychar* \"\\\"\"");
    }
    gt_free(&cls);
    free(next.r);
    if (!ends_here) {
        if (alts++) gt_put(&rhs, " | ");
        gt_put(&rhs, "\"\\\"\"");
    }
    add_rule(c, &rhs, out);
    gt_free(&rhs);
}

static int object_expr(schema_conv *c, const cJSON *s, const char *path, gtext *t) {
    static const char *const refused[] = {
        "minProperties",     "maxProperties",    "patternProperties",     "propertyNames",
        "dependentRequired", "dependentSchemas", "unevaluatedProperties", NULL};
    (void)refused;
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    char p[1024];
    if (props && !cJSON_IsObject(props)) {
        child_path(p, sizeof p, path, "properties");
        return fail(c, Q35_EINVAL, "%s'properties' must be an object", "", p);
    }
    if (req && !cJSON_IsArray(req)) {
        child_path(p, sizeof p, path, "required");
        return fail(c, Q35_EINVAL, "%s'required' must be an array", "", p);
    }
    int n_props = props ? cJSON_GetArraySize(props) : 0, n_req = req ? cJSON_GetArraySize(req) : 0;
    /* the declared properties, then required names not declared */
    const char **names = calloc((size_t)(n_props + n_req + 1), sizeof *names);
    const cJSON **schemas = calloc((size_t)(n_props + n_req + 1), sizeof *schemas);
    bool *required = calloc((size_t)(n_props + n_req + 1), 1);
    char(*vals)[32] = calloc((size_t)(n_props + n_req + 1), 32);
    int n = 0;
    if (!names || !schemas || !required || !vals) {
        c->rules.oom = true;
        goto done;
    }
    const cJSON *it;
    if (props) cJSON_ArrayForEach(it, props) {
            bool dup = false;
            for (int i = 0; i < n; i++)
                dup |= !strcmp(names[i], it->string);
            if (dup) continue;
            names[n] = it->string;
            schemas[n++] = it;
        }
    int n_declared = n;
    if (req) {
        int i = 0;
        cJSON_ArrayForEach(it, req) {
            child_index(p, sizeof p, path, "required", i++);
            if (!cJSON_IsString(it)) {
                fail(c, Q35_EINVAL, "%sa required name must be a string", "", p);
                goto done;
            }
            int k = -1;
            for (int j = 0; j < n; j++)
                if (!strcmp(names[j], it->valuestring)) k = j;
            if (k < 0) {
                if (cJSON_IsFalse(add)) {
                    fail(c, Q35_EINVAL,
                         "required property '%s' is not in 'properties' and "
                         "additionalProperties is false",
                         it->valuestring, p);
                    goto done;
                }
                names[n] = it->valuestring;
                schemas[n] = add && cJSON_IsObject(add) ? add : NULL;
                k = n++;
            }
            required[k] = true;
        }
    }
    bool extra = !cJSON_IsFalse(add);
    if (add && !cJSON_IsBool(add) && !cJSON_IsObject(add)) {
        child_path(p, sizeof p, path, "additionalProperties");
        fail(c, Q35_EINVAL, "%s'additionalProperties' must be a schema", "", p);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (i < n_declared) {
            char pp[1024];
            child_path(pp, sizeof pp, path, "properties");
            child_path(p, sizeof p, pp, names[i]);
        } else {
            child_path(p, sizeof p, path, "additionalProperties");
        }
        if (schemas[i]) {
            if (schema_conv_value(c, schemas[i], p, vals[i])) goto done;
        } else {
            snprintf(vals[i], 32, "value");
        }
    }
    /* the extra members: keys other than the declared ones */
    char kv_extra[32] = "";
    if (extra) {
        char addv[32] = "value";
        if (add && cJSON_IsObject(add)) {
            child_path(p, sizeof p, path, "additionalProperties");
            if (schema_conv_value(c, add, p, addv)) goto done;
        }
        c->keychar = true;
        char key[32];
        exclusion_rule(c, names, n, 0, key);
        gtext rhs = {0};
        gt_printf(&rhs, "\"\\\"\" %s ws \":\" ws %s ws", key, addv);
        add_rule(c, &rhs, kv_extra);
        gt_free(&rhs);
    }
    /* A_i: members i.. with nothing written yet; B_i: with something
     * written (each member then starts with a comma). Built from the end. */
    char a_next[32], b_next[32];
    {
        gtext ra = {0}, rb = {0};
        if (extra) {
            gt_printf(&rb, "( \",\" ws %s )*", kv_extra);
            add_rule(c, &rb, b_next);
            gt_printf(&ra, "( %s %s )?", kv_extra, b_next);
        } else {
            gt_put(&rb, "\"\"");
            add_rule(c, &rb, b_next);
            gt_put(&ra, "\"\"");
        }
        add_rule(c, &ra, a_next);
        gt_free(&ra);
        gt_free(&rb);
    }
    for (int i = n - 1; i >= 0; i--) {
        char kv[32];
        gtext r = {0};
        char keyjson[1100];
        cJSON *ks = cJSON_CreateString(names[i]);
        char *kt = ks ? cJSON_PrintUnformatted(ks) : NULL;
        cJSON_Delete(ks);
        if (!kt) {
            c->rules.oom = true;
            goto done;
        }
        snprintf(keyjson, sizeof keyjson, "%s", kt);
        gt_literal(&r, kt, strlen(kt));
        cJSON_free(kt);
        gt_printf(&r, " ws \":\" ws %s ws", vals[i]);
        add_rule(c, &r, kv);
        gt_free(&r);
        gtext ra = {0}, rb = {0};
        char a[32], b[32];
        if (required[i]) {
            gt_printf(&rb, "\",\" ws %s %s", kv, b_next);
            gt_printf(&ra, "%s %s", kv, b_next);
        } else {
            gt_printf(&rb, "\",\" ws %s %s | %s", kv, b_next, b_next);
            gt_printf(&ra, "%s %s | %s", kv, b_next, a_next);
        }
        add_rule(c, &rb, b);
        add_rule(c, &ra, a);
        gt_free(&ra);
        gt_free(&rb);
        memcpy(b_next, b, 32);
        memcpy(a_next, a, 32);
    }
    gt_printf(t, "\"{\" ws %s \"}\"", a_next);
done:
    free(names);
    free(schemas);
    free(required);
    free(vals);
    return c->err ? c->err : c->rules.oom ? Q35_ENOMEM : Q35_OK;
}

/* ------------------------------------------------------------- arrays */

static int array_expr(schema_conv *c, const cJSON *s, const char *path, gtext *t) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(s, "prefixItems");
    const cJSON *uniq = cJSON_GetObjectItemCaseSensitive(s, "uniqueItems");
    char p[1024];
    if (uniq && !cJSON_IsFalse(uniq)) {
        child_path(p, sizeof p, path, "uniqueItems");
        return fail(c, Q35_EINVAL, "unsupported keyword '%s' (true)", "uniqueItems", p);
    }
    if (prefix && !cJSON_IsArray(prefix)) {
        child_path(p, sizeof p, path, "prefixItems");
        return fail(c, Q35_EINVAL, "%s'prefixItems' must be an array", "", p);
    }
    if (items && cJSON_IsArray(items)) {
        child_path(p, sizeof p, path, "items");
        return fail(c, Q35_EINVAL, "%san array 'items' (draft 4 tuples; use prefixItems)", "", p);
    }
    long lo = 0, hi = -1;
    get_count(c, s, "minItems", path, &lo);
    get_count(c, s, "maxItems", path, &hi);
    if (c->err) return c->err;
    int k = prefix ? cJSON_GetArraySize(prefix) : 0;
    bool more = !cJSON_IsFalse(items);
    if (!more && (hi < 0 || hi > k)) hi = k;
    if (hi >= 0 && k > hi) k = (int)hi; /* prefix items past maxItems never come */
    if (hi >= 0 && hi < lo)
        return fail(c, Q35_EINVAL, "%sno array length satisfies minItems/maxItems", "", path);
    char item[32] = "value";
    if (items && cJSON_IsObject(items)) {
        child_path(p, sizeof p, path, "items");
        if (schema_conv_value(c, items, p, item)) return c->err;
    }
    if (hi == 0) {
        gt_put(t, "\"[\" ws \"]\"");
        return Q35_OK;
    }
    /* element j's rule */
    char(*el)[32] = calloc((size_t)k + 1, 32);
    if (!el) return c->rules.oom = true, Q35_ENOMEM;
    for (int j = 0; j < k; j++) {
        child_index(p, sizeof p, path, "prefixItems", j);
        if (schema_conv_value(c, cJSON_GetArrayItem(prefix, j), p, el[j])) {
            free(el);
            return c->err;
        }
    }
    /* tail after the prefix items: (", " item){tmin, tmax} */
    gtext rt = {0};
    char tail[32];
    long tmin = lo > k ? lo - k : 0, tmax = hi < 0 ? -1 : hi - k;
    if (more && tmax != 0) {
        if (tmax < 0)
            gt_printf(&rt, "( \",\" ws %s ws ){%ld,}", item, tmin);
        else
            gt_printf(&rt, "( \",\" ws %s ws ){%ld,%ld}", item, tmin, tmax);
    } else {
        gt_put(&rt, "\"\"");
    }
    add_rule(c, &rt, tail);
    gt_free(&rt);
    /* R_j: after j elements (j >= 1) */
    char next[32];
    memcpy(next, tail, 32);
    for (int j = k - 1; j >= 1; j--) {
        gtext r = {0};
        char name[32];
        if (j < lo)
            gt_printf(&r, "\",\" ws %s ws %s", el[j], next);
        else
            gt_printf(&r, "( \",\" ws %s ws %s )?", el[j], next);
        add_rule(c, &r, name);
        gt_free(&r);
        memcpy(next, name, 32);
    }
    /* the first element, then R_1 (with prefix items) or the tail */
    gtext body = {0};
    if (k > 0) {
        gt_printf(&body, "%s ws %s", el[0], next);
    } else {
        long m = lo > 1 ? lo - 1 : 0, x = hi < 0 ? -1 : hi - 1;
        if (x < 0)
            gt_printf(&body, "%s ws ( \",\" ws %s ws ){%ld,}", item, item, m);
        else
            gt_printf(&body, "%s ws ( \",\" ws %s ws ){%ld,%ld}", item, item, m, x);
    }
    free(el);
    if (lo == 0)
        gt_printf(t, "\"[\" ws ( %s )? \"]\"", body.p ? body.p : "\"\"");
    else
        gt_printf(t, "\"[\" ws %s \"]\"", body.p ? body.p : "\"\"");
    gt_free(&body);
    return Q35_OK;
}

/* ------------------------------------------------------- schema nodes */

static bool kind_matches(const cJSON *v, const char *type) {
    if (!strcmp(type, "null")) return cJSON_IsNull(v);
    if (!strcmp(type, "boolean")) return cJSON_IsBool(v);
    if (!strcmp(type, "string")) return cJSON_IsString(v);
    if (!strcmp(type, "object")) return cJSON_IsObject(v);
    if (!strcmp(type, "array")) return cJSON_IsArray(v);
    if (!strcmp(type, "number")) return cJSON_IsNumber(v);
    if (!strcmp(type, "integer"))
        return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
               fabs(v->valuedouble) < 9e15;
    return false;
}

static const char *const TYPES[] = {"null",   "boolean", "object",  "array",
                                    "number", "string",  "integer", NULL};

/* The types a schema allows: from "type", or inferred from the keywords
 * present (a subset of what the schema allows: keywords of one type say
 * nothing of other types' values), or all. Bit i = TYPES[i]. */
static int schema_types(schema_conv *c, const cJSON *s, const char *path) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    char p[1024];
    child_path(p, sizeof p, path, "type");
    if (type) {
        int mask = 0;
        if (cJSON_IsString(type)) {
            for (int i = 0; TYPES[i]; i++)
                if (!strcmp(type->valuestring, TYPES[i])) mask |= 1 << i;
            if (!mask) return fail(c, Q35_EINVAL, "unknown type '%s'", type->valuestring, p), -1;
        } else if (cJSON_IsArray(type) && cJSON_GetArraySize(type) > 0) {
            const cJSON *it;
            cJSON_ArrayForEach(it, type) {
                int bit = 0;
                for (int i = 0; TYPES[i] && cJSON_IsString(it); i++)
                    if (!strcmp(it->valuestring, TYPES[i])) bit = 1 << i;
                if (!bit) return fail(c, Q35_EINVAL, "%sa bad entry in 'type'", "", p), -1;
                mask |= bit;
            }
        } else {
            return fail(c, Q35_EINVAL, "%s'type' must be a string or a list", "", p), -1;
        }
        if ((mask & (1 << 4)) && (mask & (1 << 6))) mask &= ~(1 << 6); /* number covers integer */
        return mask;
    }
    static const char *const obj_kw[] = {"properties", "required", "additionalProperties", NULL};
    static const char *const arr_kw[] = {"items", "prefixItems", "minItems", "maxItems", NULL};
    static const char *const str_kw[] = {"minLength", "maxLength", "pattern", "format", NULL};
    static const char *const int_kw[] = {"minimum", "maximum", "exclusiveMinimum",
                                         "exclusiveMaximum", NULL};
    int mask = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, s) {
        if (in_list(obj_kw, it->string)) mask |= 1 << 2;
        if (in_list(arr_kw, it->string)) mask |= 1 << 3;
        if (in_list(str_kw, it->string)) mask |= 1 << 5;
        if (in_list(int_kw, it->string)) mask |= 1 << 6;
    }
    return mask ? mask : 0x7F & ~(1 << 6); /* all (integer is inside number) */
}

static int resolve_ref(schema_conv *c, const cJSON *s, const char *path, char name[32]) {
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
    char p[1024];
    child_path(p, sizeof p, path, "$ref");
    if (!cJSON_IsString(ref)) return fail(c, Q35_EINVAL, "%s'$ref' must be a string", "", p);
    const char *r = ref->valuestring;
    if (r[0] != '#' || (r[1] && r[1] != '/'))
        return fail(c, Q35_EINVAL, "$ref '%s' (only local references '#/...')", r, p);
    for (int i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ptr, r)) {
            memcpy(name, c->refs[i].name, 32);
            return Q35_OK;
        }
    /* walk the pointer */
    const cJSON *target = c->root;
    const char *q = r + 1;
    char tok[512];
    while (*q == '/' && target) {
        q++;
        size_t n = 0;
        while (*q && *q != '/' && n + 1 < sizeof tok) {
            if (q[0] == '~' && q[1] == '0')
                tok[n++] = '~', q += 2;
            else if (q[0] == '~' && q[1] == '1')
                tok[n++] = '/', q += 2;
            else
                tok[n++] = *q++;
        }
        tok[n] = 0;
        if (cJSON_IsArray(target)) {
            char *end;
            long i = strtol(tok, &end, 10);
            target = *end || !*tok ? NULL : cJSON_GetArrayItem(target, (int)i);
        } else {
            target = cJSON_GetObjectItemCaseSensitive(target, tok);
        }
    }
    if (!target) return fail(c, Q35_EINVAL, "$ref '%s' names nothing in the document", r, p);
    if (c->n_refs == c->cap_refs) {
        int cap = c->cap_refs ? c->cap_refs * 2 : 8;
        ref_entry *e = realloc(c->refs, (size_t)cap * sizeof *e);
        if (!e) return c->rules.oom = true, Q35_ENOMEM;
        c->refs = e;
        c->cap_refs = cap;
    }
    ref_entry *e = &c->refs[c->n_refs];
    e->ptr = strdup(r);
    if (!e->ptr) return c->rules.oom = true, Q35_ENOMEM;
    new_name(c, e->name); /* named before it is defined, so recursion finds it */
    c->n_refs++;
    char self[32];
    memcpy(self, e->name, 32);
    char body[32];
    int rc = schema_conv_value(c, target, r + 1, body);
    if (rc) return rc;
    schema_conv_rule(c, self, body);
    memcpy(name, self, 32);
    return Q35_OK;
}

static int check_keywords(schema_conv *c, const cJSON *s, const char *path) {
    const cJSON *it;
    cJSON_ArrayForEach(it, s) {
        if (in_list(ANNOTATIONS, it->string) || in_list(HANDLED, it->string)) continue;
        char p[1024];
        child_path(p, sizeof p, path, it->string);
        return fail(c, Q35_EINVAL, "unsupported keyword '%s'", it->string, p);
    }
    return Q35_OK;
}

/* Keywords beside a combinator or a $ref must be annotations. */
static int only_annotations(schema_conv *c, const cJSON *s, const char *path, const char *kw) {
    const cJSON *it;
    cJSON_ArrayForEach(it, s) {
        if (in_list(ANNOTATIONS, it->string) || !strcmp(it->string, kw)) continue;
        char p[1024], msg[200];
        child_path(p, sizeof p, path, it->string);
        snprintf(msg, sizeof msg, "keyword '%s' beside '%s' is not supported", it->string, kw);
        return fail(c, Q35_EINVAL, "%s", msg, p);
    }
    return Q35_OK;
}

/* The JSON kinds a schema can match, as TYPES bits (integer folded into
 * number); -1 when it cannot be told without more analysis. */
static int kinds_of(const cJSON *s) {
    if (!cJSON_IsObject(s)) return -1;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (cJSON_GetObjectItemCaseSensitive(s, "$ref") ||
        cJSON_GetObjectItemCaseSensitive(s, "anyOf") ||
        cJSON_GetObjectItemCaseSensitive(s, "oneOf") ||
        cJSON_GetObjectItemCaseSensitive(s, "allOf"))
        return -1;
    int mask = 0;
    if (type) {
        const cJSON *one = cJSON_IsArray(type) ? type->child : type;
        for (; one; one = cJSON_IsArray(type) ? one->next : NULL) {
            if (!cJSON_IsString(one)) return -1;
            for (int i = 0; TYPES[i]; i++)
                if (!strcmp(one->valuestring, TYPES[i])) mask |= 1 << (i == 6 ? 4 : i);
        }
        return mask ? mask : -1;
    }
    if (en || cn) {
        for (const cJSON *v = en ? en->child : cn; v; v = en ? v->next : NULL)
            mask |= cJSON_IsNull(v)     ? 1 << 0
                    : cJSON_IsBool(v)   ? 1 << 1
                    : cJSON_IsObject(v) ? 1 << 2
                    : cJSON_IsArray(v)  ? 1 << 3
                    : cJSON_IsNumber(v) ? 1 << 4
                                        : 1 << 5;
        return mask;
    }
    return -1;
}

/* The const/enum values of a property schema as printed JSON, or NULL. */
static bool literal_sets_disjoint(const cJSON *a, const cJSON *b) {
    const cJSON *la[2] = {cJSON_GetObjectItemCaseSensitive(a, "enum"),
                          cJSON_GetObjectItemCaseSensitive(a, "const")};
    const cJSON *lb[2] = {cJSON_GetObjectItemCaseSensitive(b, "enum"),
                          cJSON_GetObjectItemCaseSensitive(b, "const")};
    if ((!la[0] && !la[1]) || (!lb[0] && !lb[1])) return false;
    for (const cJSON *x = la[0] ? la[0]->child : la[1]; x; x = la[0] ? x->next : NULL)
        for (const cJSON *y = lb[0] ? lb[0]->child : lb[1]; y; y = lb[0] ? y->next : NULL)
            if (cJSON_Compare(x, y, true)) return false;
    return true;
}

static bool required_has(const cJSON *s, const char *name) {
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(s, "required")) {
        if (cJSON_IsString(r) && !strcmp(r->valuestring, name)) return true;
    }
    return false;
}

/* True when no JSON value can be valid under both schemas, as far as a
 * simple check can tell: different kinds, different literals, or objects
 * with a required property whose const/enum values differ. */
static bool disjoint(const cJSON *a, const cJSON *b) {
    int ka = kinds_of(a), kb = kinds_of(b);
    if (ka >= 0 && kb >= 0 && !(ka & kb)) return true;
    if (literal_sets_disjoint(a, b)) return true;
    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(a, "properties");
    const cJSON *pb = cJSON_GetObjectItemCaseSensitive(b, "properties");
    const cJSON *x;
    if (cJSON_IsObject(pa) && cJSON_IsObject(pb)) cJSON_ArrayForEach(x, pa) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(pb, x->string);
            if (y && required_has(a, x->string) && required_has(b, x->string) &&
                literal_sets_disjoint(x, y))
                return true;
        }
    return false;
}

static int value_rule(schema_conv *c, const cJSON *s, const char *path, char name[32]) {
    if (cJSON_IsTrue(s)) {
        snprintf(name, 32, "value");
        return Q35_OK;
    }
    if (cJSON_IsFalse(s))
        return fail(c, Q35_EINVAL, "%sthe schema false matches nothing", "", path);
    if (!cJSON_IsObject(s)) return fail(c, Q35_EINVAL, "%sa schema must be an object", "", path);
    if (check_keywords(c, s, path)) return c->err;
    char p[1024];
    if (cJSON_GetObjectItemCaseSensitive(s, "$ref")) {
        if (only_annotations(c, s, path, "$ref")) return c->err;
        return resolve_ref(c, s, path, name);
    }
    static const char *const combos[] = {"anyOf", "oneOf", "allOf"};
    for (int k = 0; k < 3; k++) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(s, combos[k]);
        if (!l) continue;
        if (only_annotations(c, s, path, combos[k])) return c->err;
        child_path(p, sizeof p, path, combos[k]);
        if (!cJSON_IsArray(l) || !cJSON_GetArraySize(l))
            return fail(c, Q35_EINVAL, "'%s' must be a non-empty array", combos[k], p);
        if (k == 2 && cJSON_GetArraySize(l) > 1)
            return fail(c, Q35_EINVAL, "'%s' with more than one schema is not supported", combos[k],
                        p);
        if (k == 1) { /* oneOf = anyOf only where no value can match two branches */
            int i = 0;
            for (const cJSON *a = l->child; a; a = a->next, i++) {
                int j = i + 1;
                for (const cJSON *b = a->next; b; b = b->next, j++)
                    if (!disjoint(a, b)) {
                        char msg[160];
                        snprintf(msg, sizeof msg,
                                 "'oneOf' branches %d and %d may both match a value (only "
                                 "branches of different types or with different const/enum "
                                 "discriminators are supported)",
                                 i, j);
                        return fail(c, Q35_EINVAL, "%s", msg, p);
                    }
            }
        }
        gtext rhs = {0};
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, l) {
            char cp[1024], sub[32];
            child_index(cp, sizeof cp, path, combos[k], i);
            if (schema_conv_value(c, it, cp, sub)) {
                gt_free(&rhs);
                return c->err;
            }
            gt_printf(&rhs, i++ ? " | %s" : "%s", sub);
        }
        add_rule(c, &rhs, name);
        gt_free(&rhs);
        return Q35_OK;
    }
    int types = schema_types(c, s, path);
    if (types < 0) return c->err;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (en || cn) {
        const cJSON *it;
        cJSON_ArrayForEach(it, s) {
            if (in_list(ANNOTATIONS, it->string) || !strcmp(it->string, "type") ||
                !strcmp(it->string, "enum") || !strcmp(it->string, "const"))
                continue;
            child_path(p, sizeof p, path, it->string);
            return fail(c, Q35_EINVAL, "keyword '%s' beside enum/const is not supported",
                        it->string, p);
        }
        if (en && cn) return fail(c, Q35_EINVAL, "%s'enum' and 'const' together", "", path);
        child_path(p, sizeof p, path, en ? "enum" : "const");
        if (en && !cJSON_IsArray(en))
            return fail(c, Q35_EINVAL, "%s'enum' must be an array", "", p);
        gtext rhs = {0};
        int n = 0;
        for (const cJSON *v = en ? en->child : cn; v; v = en ? v->next : NULL) {
            bool ok = false;
            for (int i = 0; TYPES[i]; i++)
                if ((types >> i & 1) && kind_matches(v, TYPES[i])) ok = true;
            if ((types >> 4 & 1) && cJSON_IsNumber(v)) ok = true;
            if (!ok) continue;
            char *txt = cJSON_PrintUnformatted(v);
            if (!txt) {
                gt_free(&rhs);
                return c->rules.oom = true, Q35_ENOMEM;
            }
            if (n++) gt_put(&rhs, " | ");
            gt_literal(&rhs, txt, strlen(txt));
            cJSON_free(txt);
        }
        if (!n) {
            gt_free(&rhs);
            return fail(c, Q35_EINVAL, "%sno enum/const value of the allowed types", "", p);
        }
        add_rule(c, &rhs, name);
        gt_free(&rhs);
        return Q35_OK;
    }
    gtext rhs = {0};
    int n = 0, rc = Q35_OK;
    for (int i = 0; TYPES[i] && !rc; i++) {
        if (!(types >> i & 1)) continue;
        gtext b = {0};
        switch (i) {
        case 0: gt_put(&b, "\"null\""); break;
        case 1: gt_put(&b, "\"true\" | \"false\""); break;
        case 2: rc = object_expr(c, s, path, &b); break;
        case 3: rc = array_expr(c, s, path, &b); break;
        case 4: rc = number_expr(c, s, path, &b); break;
        case 5: rc = string_expr(c, s, path, &b); break;
        case 6: rc = integer_expr(c, s, path, &b); break;
        }
        if (!rc) gt_printf(&rhs, n++ ? " | ( %s )" : "( %s )", b.p ? b.p : "\"\"");
        if (b.oom) c->rules.oom = true;
        gt_free(&b);
    }
    if (!rc) add_rule(c, &rhs, name);
    gt_free(&rhs);
    return rc ? rc : c->rules.oom ? Q35_ENOMEM : Q35_OK;
}

int schema_conv_value(schema_conv *c, const cJSON *schema, const char *path, char name[32]) {
    if (c->err) return c->err;
    if (++c->depth > MAX_DEPTH) {
        c->depth--;
        return fail(c, Q35_EINVAL, "%sschemas nested deeper than 64", "", path);
    }
    int rc = value_rule(c, schema, path, name);
    c->depth--;
    if (!rc && c->rules.oom) rc = q35_err_set(c->e, Q35_ENOMEM, "json schema: out of memory");
    return rc;
}

char *schema_conv_finish(schema_conv *c, const char *root_rhs) {
    if (c->err) return NULL;
    gtext t = {0};
    gt_printf(&t, "root ::= %s\n", root_rhs);
    gt_put(&t, c->rules.p ? c->rules.p : "");
    gt_put(&t, q35_json_common_gbnf);
    if (c->keychar) gt_put(&t, "keychar ::= [^\"\\\\\\x00-\\x1F]\n");
    if (c->fmt_date)
        gt_put(&t,
               "fmt-date ::= [1-9] [0-9]{3} \"-\" ( ( \"0\" [13578] | \"1\" [02] ) \"-\" ( \"0\" "
               "[1-9] | [12] [0-9] | \"3\" [01] ) | ( \"0\" [469] | \"11\" ) \"-\" ( \"0\" "
               "[1-9] | [12] [0-9] | \"30\" ) | \"02-\" ( \"0\" [1-9] | \"1\" [0-9] | \"2\" "
               "[0-8] ) )\n");
    if (c->fmt_time)
        gt_put(&t, "fmt-time ::= ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] "
                   "( \".\" [0-9]{1,6} )? ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" "
                   "[0-5] [0-9] )\n");
    if (c->fmt_uuid)
        gt_put(&t, "fmt-uuid ::= hex{8} \"-\" hex{4} \"-\" hex{4} \"-\" hex{4} \"-\" hex{12}\n");
    if (t.oom || c->rules.oom) {
        gt_free(&t);
        q35_err_set(c->e, Q35_ENOMEM, "json schema: out of memory");
        return NULL;
    }
    return t.p;
}

int q35_schema_gbnf(const char *text, size_t len, char **out, q35_err *e) {
    *out = NULL;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!doc) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return q35_err_set(e, Q35_EFORMAT, "json schema: not valid JSON (near byte %zu)", at);
    }
    schema_conv *c = schema_conv_new(doc, e);
    int rc = c ? Q35_OK : Q35_ENOMEM;
    char name[32];
    if (!rc) rc = schema_conv_value(c, doc, "", name);
    if (!rc) {
        *out = schema_conv_finish(c, name);
        if (!*out) rc = e && e->code ? e->code : Q35_ENOMEM;
    }
    schema_conv_free(c);
    cJSON_Delete(doc);
    return rc;
}
