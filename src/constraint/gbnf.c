/* gbnf.c — llama.cpp's GBNF notation to the internal grammar: rules
 * `name ::= alternatives`, `|`, `( )` groups, `?` `*` `+` `{m}` `{m,}`
 * `{m,n}`, "literals" and [classes] (ranges, `^`, escapes \n \r \t \\ \"
 * \[ \] \- \xHH \uHHHH \UHHHHHHHH), `.` (any character), `#` comments and
 * token terminals `<[ID]>` / `<TEXT>` (an added token by its text).
 * Newlines are plain whitespace: a rule ends where the next `name ::=`
 * starts, which accepts every layout llama.cpp accepts. Errors name the
 * line and column. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "constraint/grammar.h"
#include "constraint/vocab.h"
#include "core/err.h"

typedef struct parser {
    const char *s, *end, *p;
    g_builder b;
    const q35_constraint_vocab *v;
    q35_err *e;
    int depth;
} parser;

static void where(const parser *ps, const char *at, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (const char *q = ps->s; q < at && q < ps->end; q++) {
        if (*q == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

static int fail(parser *ps, const char *at, const char *what) {
    int line, col;
    where(ps, at, &line, &col);
    return q35_err_set(ps->e, Q35_EINVAL, "grammar %d:%d: %s", line, col, what);
}

static void skip_space(parser *ps) {
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ps->p++;
        } else if (c == '#') {
            while (ps->p < ps->end && *ps->p != '\n')
                ps->p++;
        } else {
            break;
        }
    }
}

static bool is_name_char(char c) {
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

static size_t name_len(const parser *ps, const char *at) {
    const char *q = at;
    while (q < ps->end && is_name_char(*q))
        q++;
    return (size_t)(q - at);
}

/* A name followed by "::=" at `at` starts the next rule. */
static bool rule_starts(const parser *ps, const char *at) {
    size_t n = name_len(ps, at);
    if (!n) return false;
    const char *q = at + n;
    while (q < ps->end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
        q++;
    return ps->end - q >= 3 && !memcmp(q, "::=", 3);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One UTF-8 code point of the source (invalid bytes are taken as
 * themselves, so any byte can be written). */
static uint32_t decode_utf8(parser *ps) {
    const unsigned char *q = (const unsigned char *)ps->p;
    size_t left = (size_t)(ps->end - ps->p);
    unsigned c = q[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n <= 1 || (size_t)n > left) {
        ps->p++;
        return c;
    }
    uint32_t cp = c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((q[i] & 0xC0) != 0x80) {
            ps->p++;
            return c;
        }
        cp = cp << 6 | (q[i] & 0x3F);
    }
    ps->p += n;
    return cp;
}

/* One character of a literal or class: an escape or a code point. */
static int read_char(parser *ps, uint32_t *cp) {
    if (ps->p >= ps->end) return fail(ps, ps->p, "unexpected end of the grammar");
    if (*ps->p != '\\') {
        *cp = decode_utf8(ps);
        return Q35_OK;
    }
    const char *at = ps->p++;
    if (ps->p >= ps->end) return fail(ps, at, "unfinished escape");
    char c = *ps->p++;
    int digits = 0;
    switch (c) {
    case 'n': *cp = '\n'; return Q35_OK;
    case 'r': *cp = '\r'; return Q35_OK;
    case 't': *cp = '\t'; return Q35_OK;
    case '0': *cp = 0; return Q35_OK;
    case '\\':
    case '"':
    case '\'':
    case '[':
    case ']':
    case '-':
    case '/':
    case '^': *cp = (uint32_t)c; return Q35_OK;
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    default: return fail(ps, at, "unknown escape");
    }
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        int h = ps->p < ps->end ? hexval(*ps->p) : -1;
        if (h < 0) return fail(ps, at, "bad hex escape");
        v = v << 4 | (uint32_t)h;
        ps->p++;
    }
    if (v > 0x10FFFF) return fail(ps, at, "escape beyond U+10FFFF");
    *cp = v;
    return Q35_OK;
}

static int parse_alternates(parser *ps, int rule);

/* Literal "...": the UTF-8 bytes of its code points (\xHH is a code
 * point, as llama.cpp reads it). */
static int parse_literal(parser *ps, g_seq *s) {
    const char *at = ps->p++;
    while (ps->p < ps->end && *ps->p != '"') {
        uint32_t cp;
        int rc = read_char(ps, &cp);
        if (rc) return rc;
        rc = gb_codepoint(&ps->b, s, cp);
        if (rc) return rc;
    }
    if (ps->p >= ps->end) return fail(ps, at, "unterminated string literal");
    ps->p++;
    return Q35_OK;
}

static int parse_class(parser *ps, g_seq *s) {
    const char *at = ps->p++;
    bool negate = false;
    if (ps->p < ps->end && *ps->p == '^') {
        negate = true;
        ps->p++;
    }
    g_range *r = NULL;
    int n = 0, cap = 0, rc = Q35_OK;
    while (ps->p < ps->end && *ps->p != ']') {
        uint32_t lo, hi;
        if ((rc = read_char(ps, &lo))) break;
        hi = lo;
        if (ps->p + 1 < ps->end && *ps->p == '-' && ps->p[1] != ']') {
            ps->p++;
            if ((rc = read_char(ps, &hi))) break;
            if (hi < lo) {
                rc = fail(ps, at, "character range with its end before its start");
                break;
            }
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            g_range *nr = realloc(r, (size_t)cap * sizeof *nr);
            if (!nr) {
                rc = q35_err_set(ps->e, Q35_ENOMEM, "grammar: out of memory");
                break;
            }
            r = nr;
        }
        r[n++] = (g_range){lo, hi};
    }
    if (!rc && ps->p >= ps->end) rc = fail(ps, at, "unterminated character class");
    if (!rc) {
        ps->p++;
        if (!n && !negate)
            rc = fail(ps, at, "empty character class");
        else
            rc = gb_class(&ps->b, s, r, n, negate);
    }
    free(r);
    return rc;
}

static int parse_token(parser *ps, g_seq *s) {
    const char *at = ps->p++;
    const char *close = memchr(ps->p, '>', (size_t)(ps->end - ps->p));
    if (!close) return fail(ps, at, "unterminated token reference <...>");
    int32_t id = -1;
    size_t n = (size_t)(close - ps->p);
    if (n >= 2 && ps->p[0] == '[' && close[-1] == ']') {
        char buf[16];
        if (n - 2 == 0 || n - 2 >= sizeof buf) return fail(ps, at, "bad token id <[...]>");
        memcpy(buf, ps->p + 1, n - 2);
        buf[n - 2] = 0;
        char *end;
        long x = strtol(buf, &end, 10);
        if (*end || x < 0 || x >= ps->v->n_vocab) return fail(ps, at, "token id out of range");
        id = (int32_t)x;
    } else {
        id = q35_vocab_added_id(ps->v, at, n + 2); /* the whole "<...>" text */
        if (id < 0) return fail(ps, at, "no added token with this text");
    }
    ps->p = close + 1;
    return gb_push(&ps->b, s, G_TOKEN, id);
}

static int parse_int(parser *ps, int *out) {
    if (ps->p >= ps->end || !isdigit((unsigned char)*ps->p)) return -1;
    long v = 0;
    while (ps->p < ps->end && isdigit((unsigned char)*ps->p)) {
        v = v * 10 + (*ps->p++ - '0');
        if (v > 1000000) return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_sequence(parser *ps, int rule, g_seq *s) {
    for (;;) {
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p == '|' || *ps->p == ')' || rule_starts(ps, ps->p))
            return Q35_OK;
        const char *at = ps->p;
        int from = s->n, rc;
        char c = *ps->p;
        if (c == '"') {
            rc = parse_literal(ps, s);
        } else if (c == '[') {
            rc = parse_class(ps, s);
        } else if (c == '.') {
            ps->p++;
            rc = gb_class(&ps->b, s, NULL, 0, true);
        } else if (c == '<') {
            rc = parse_token(ps, s);
        } else if (c == '(') {
            if (++ps->depth > 200) return fail(ps, at, "groups nested too deep");
            ps->p++;
            int sub = gb_anon(&ps->b, ps->b.rules[rule].name);
            if (sub < 0) return Q35_ENOMEM;
            rc = parse_alternates(ps, sub);
            if (rc) return rc;
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ')') return fail(ps, at, "unclosed '('");
            ps->p++;
            ps->depth--;
            ps->b.rules[sub].defined = true;
            rc = gb_push(&ps->b, s, G_RULE, sub);
        } else if (is_name_char(c)) {
            size_t n = name_len(ps, at);
            int r = gb_rule(&ps->b, at, n);
            if (r < 0) return Q35_ENOMEM;
            if (!ps->b.rules[r].ref_line)
                where(ps, at, &ps->b.rules[r].ref_line, &ps->b.rules[r].ref_col);
            ps->p += n;
            rc = gb_push(&ps->b, s, G_RULE, r);
        } else {
            return fail(ps, at, "unexpected character");
        }
        if (rc) return rc;
        /* quantifiers (several may follow one another: x?* is legal) */
        for (;;) {
            const char *q = ps->p;
            if (q >= ps->end) break;
            if (*q == '*' || *q == '+' || *q == '?') {
                ps->p++;
                int lo = *q == '+' ? 1 : 0, hi = *q == '?' ? 1 : -1;
                if ((rc = gb_repeat(&ps->b, s, from, lo, hi))) return rc;
            } else if (*q == '{') {
                ps->p++;
                skip_space(ps);
                int lo, hi;
                if (parse_int(ps, &lo)) return fail(ps, q, "bad repetition count");
                skip_space(ps);
                hi = lo;
                if (ps->p < ps->end && *ps->p == ',') {
                    ps->p++;
                    skip_space(ps);
                    if (ps->p < ps->end && *ps->p == '}')
                        hi = -1;
                    else if (parse_int(ps, &hi))
                        return fail(ps, q, "bad repetition count");
                    skip_space(ps);
                }
                if (ps->p >= ps->end || *ps->p != '}') return fail(ps, q, "unclosed '{'");
                ps->p++;
                if (hi >= 0 && hi < lo) return fail(ps, q, "repetition {m,n} with n < m");
                if ((rc = gb_repeat(&ps->b, s, from, lo, hi))) return rc;
            } else {
                break;
            }
        }
    }
}

static int parse_alternates(parser *ps, int rule) {
    for (;;) {
        g_seq s = {0};
        int rc = parse_sequence(ps, rule, &s);
        if (!rc) rc = gb_add_alt(&ps->b, rule, &s);
        g_seq_free(&s);
        if (rc) return rc;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == '|') {
            ps->p++;
            continue;
        }
        return Q35_OK;
    }
}

q35_grammar *q35_gbnf_parse(const char *text, size_t len, const q35_constraint_vocab *v,
                            q35_err *e) {
    parser ps = {.s = text, .end = text + len, .p = text, .v = v, .e = e};
    gb_init(&ps.b, e);
    for (;;) {
        skip_space(&ps);
        if (ps.p >= ps.end) break;
        const char *at = ps.p;
        size_t n = name_len(&ps, at);
        if (!n || !rule_starts(&ps, at)) {
            fail(&ps, at, "expected a rule 'name ::= ...'");
            goto bad;
        }
        int r = gb_rule(&ps.b, at, n);
        if (r < 0) goto bad;
        if (ps.b.rules[r].defined) {
            fail(&ps, at, "rule defined twice");
            goto bad;
        }
        ps.b.rules[r].defined = true;
        ps.p = at + n;
        skip_space(&ps);
        ps.p += 3; /* ::= */
        if (parse_alternates(&ps, r)) goto bad;
        skip_space(&ps);
        if (ps.p < ps.end && *ps.p == ')') {
            fail(&ps, ps.p, "unmatched ')'");
            goto bad;
        }
    }
    return gb_finish(&ps.b, "root");
bad:
    gb_free(&ps.b);
    return NULL;
}
