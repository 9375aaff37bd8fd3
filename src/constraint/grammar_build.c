/* grammar_build.c — building a q35_grammar: rules and alternatives,
 * deduplicated byte sets, code point classes compiled to UTF-8 byte
 * sequences, quantifiers expanded into helper rules, and the final checks
 * (undefined rules, left recursion) before flattening (see grammar.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constraint/grammar.h"
#include "core/err.h"

/* Elements a grammar may hold: {m,n} expands by copying, so a hostile
 * "x{1000}{1000}" must stop somewhere. */
#define GB_MAX_ELEMS (1L << 22)

void q35_grammar_free(q35_grammar *g) {
    if (!g) return;
    free(g->els);
    free(g->alt_start);
    free(g->rule_alt);
    free(g->sets);
    free(g->canon_pos);
    free(g);
}

void g_seq_free(g_seq *s) {
    free(s->e);
    memset(s, 0, sizeof *s);
}

void gb_init(g_builder *b, q35_err *e) {
    memset(b, 0, sizeof *b);
    b->e = e;
}

void gb_free(g_builder *b) {
    for (int i = 0; i < b->n_rules; i++) {
        free(b->rules[i].name);
        for (int j = 0; j < b->rules[i].n_alts; j++)
            g_seq_free(&b->rules[i].alts[j]);
        free(b->rules[i].alts);
    }
    free(b->rules);
    free(b->sets);
    free(b->chains);
    memset(b, 0, sizeof *b);
}

static int oom(g_builder *b) {
    return q35_err_set(b->e, Q35_ENOMEM, "grammar: out of memory");
}

static int new_rule(g_builder *b, char *name) {
    if (!name) return oom(b), -1;
    if (b->n_rules == b->cap_rules) {
        int cap = b->cap_rules ? b->cap_rules * 2 : 64;
        g_rule *r = realloc(b->rules, (size_t)cap * sizeof *r);
        if (!r) {
            free(name);
            return oom(b), -1;
        }
        b->rules = r;
        b->cap_rules = cap;
    }
    g_rule *r = &b->rules[b->n_rules];
    memset(r, 0, sizeof *r);
    r->name = name;
    return b->n_rules++;
}

int gb_rule(g_builder *b, const char *name, size_t len) {
    for (int i = 0; i < b->n_rules; i++)
        if (strlen(b->rules[i].name) == len && !memcmp(b->rules[i].name, name, len)) return i;
    return new_rule(b, strndup(name, len));
}

int gb_anon(g_builder *b, const char *base) {
    char buf[96];
    snprintf(buf, sizeof buf, "%.60s~%d", base ? base : "", b->n_rules);
    return new_rule(b, strdup(buf));
}

int gb_push(g_builder *b, g_seq *s, int kind, int arg) {
    if (++b->total_els > GB_MAX_ELEMS)
        return q35_err_set(b->e, Q35_EINVAL,
                           "grammar: more than %ld elements (repetition counts "
                           "too large?)",
                           GB_MAX_ELEMS);
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        g_elem *e = realloc(s->e, (size_t)cap * sizeof *e);
        if (!e) return oom(b);
        s->e = e;
        s->cap = cap;
    }
    s->e[s->n++] = (g_elem){kind, arg};
    return Q35_OK;
}

int gb_add_alt(g_builder *b, int rule, g_seq *s) {
    g_rule *r = &b->rules[rule];
    if (r->n_alts == r->cap_alts) {
        int cap = r->cap_alts ? r->cap_alts * 2 : 4;
        g_seq *a = realloc(r->alts, (size_t)cap * sizeof *a);
        if (!a) {
            g_seq_free(s);
            return oom(b);
        }
        r->alts = a;
        r->cap_alts = cap;
    }
    r->alts[r->n_alts++] = *s;
    memset(s, 0, sizeof *s);
    return Q35_OK;
}

int gb_set(g_builder *b, const g_byteset *set) {
    for (int i = 0; i < b->n_sets; i++)
        if (!memcmp(&b->sets[i], set, sizeof *set)) return i;
    if (b->n_sets == b->cap_sets) {
        int cap = b->cap_sets ? b->cap_sets * 2 : 32;
        g_byteset *n = realloc(b->sets, (size_t)cap * sizeof *n);
        if (!n) return oom(b), -1;
        b->sets = n;
        b->cap_sets = cap;
    }
    b->sets[b->n_sets] = *set;
    return b->n_sets++;
}

static int push_byte_range(g_builder *b, g_seq *s, unsigned lo, unsigned hi) {
    g_byteset set = {{0}};
    for (unsigned c = lo; c <= hi; c++)
        set.w[c >> 5] |= 1u << (c & 31);
    int id = gb_set(b, &set);
    return id < 0 ? Q35_ENOMEM : gb_push(b, s, G_BYTES, id);
}

static int utf8_encode(uint32_t cp, uint8_t out[4]) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

int gb_codepoint(g_builder *b, g_seq *s, uint32_t cp) {
    uint8_t u[4];
    int n = utf8_encode(cp, u);
    for (int i = 0; i < n; i++) {
        int rc = push_byte_range(b, s, u[i], u[i]);
        if (rc) return rc;
    }
    return Q35_OK;
}

/* Byte sequences of a code point range with one encoded length whose
 * bytes vary independently: [a0-b0][a1-b1]... The classic split: cut the
 * range where the encoded length changes, then where a continuation byte
 * would not cover its full 0x80-0xBF span. */
typedef struct utf8_alts {
    uint8_t lo[64][4], hi[64][4];
    int len[64];
    int n;
} utf8_alts;

static void utf8_split(utf8_alts *a, uint32_t lo, uint32_t hi) {
    static const uint32_t max_of_len[] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= max_of_len[i] && hi > max_of_len[i]) {
            utf8_split(a, lo, max_of_len[i]);
            utf8_split(a, max_of_len[i] + 1, hi);
            return;
        }
    int n = hi < 0x80 ? 1 : hi < 0x800 ? 2 : hi < 0x10000 ? 3 : 4;
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) {
                utf8_split(a, lo, lo | m);
                utf8_split(a, (lo | m) + 1, hi);
                return;
            }
            if ((hi & m) != m) {
                utf8_split(a, lo, (hi & ~m) - 1);
                utf8_split(a, hi & ~m, hi);
                return;
            }
        }
    }
    if (a->n == 64) return; /* cannot happen: a range splits into few pieces */
    utf8_encode(lo, a->lo[a->n]);
    utf8_encode(hi, a->hi[a->n]);
    a->len[a->n++] = n;
}

static int cmp_range(const void *x, const void *y) {
    const g_range *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

int gb_class(g_builder *b, g_seq *s, const g_range *in, int n, bool negate) {
    /* normalize: sorted, merged, surrogates removed, complemented if asked */
    g_range *r = malloc(((size_t)n * 2 + 4) * sizeof *r);
    if (!r) return oom(b);
    int m = 0;
    for (int i = 0; i < n; i++) {
        uint32_t lo = in[i].lo, hi = in[i].hi > 0x10FFFF ? 0x10FFFF : in[i].hi;
        if (lo > hi) continue;
        if (lo < 0xD800 && hi > 0xDFFF) {
            r[m++] = (g_range){lo, 0xD7FF};
            r[m++] = (g_range){0xE000, hi};
        } else if (lo >= 0xD800 && hi <= 0xDFFF) {
            continue;
        } else if (lo >= 0xD800 && lo <= 0xDFFF) {
            r[m++] = (g_range){0xE000, hi};
        } else if (hi >= 0xD800 && hi <= 0xDFFF) {
            r[m++] = (g_range){lo, 0xD7FF};
        } else {
            r[m++] = (g_range){lo, hi};
        }
    }
    qsort(r, (size_t)m, sizeof *r, cmp_range);
    int k = 0;
    for (int i = 0; i < m; i++) {
        if (k && r[i].lo <= r[k - 1].hi + 1) {
            if (r[i].hi > r[k - 1].hi) r[k - 1].hi = r[i].hi;
        } else {
            r[k++] = r[i];
        }
    }
    m = k;
    if (negate) {
        g_range *c = malloc(((size_t)m + 3) * sizeof *c);
        if (!c) {
            free(r);
            return oom(b);
        }
        int nc = 0;
        uint32_t next = 0;
        for (int i = 0; i < m; i++) {
            if (r[i].lo > next) c[nc++] = (g_range){next, r[i].lo - 1};
            next = r[i].hi + 1;
        }
        if (next <= 0x10FFFF) c[nc++] = (g_range){next, 0x10FFFF};
        free(r);
        /* complement again has surrogates: split them out */
        g_range *d = malloc(((size_t)nc * 2 + 2) * sizeof *d);
        if (!d) {
            free(c);
            return oom(b);
        }
        int nd = 0;
        for (int i = 0; i < nc; i++) {
            uint32_t lo = c[i].lo, hi = c[i].hi;
            if (hi < 0xD800 || lo > 0xDFFF) {
                d[nd++] = c[i];
            } else {
                if (lo < 0xD800) d[nd++] = (g_range){lo, 0xD7FF};
                if (hi > 0xDFFF) d[nd++] = (g_range){0xE000, hi};
            }
        }
        free(c);
        r = d;
        m = nd;
    }
    if (!m) {
        free(r);
        return q35_err_set(b->e, Q35_EINVAL, "grammar: a character class that matches nothing");
    }
    /* ASCII part as one byte set; the rest as alternatives of a helper rule */
    g_byteset ascii = {{0}};
    bool has_ascii = false, has_multi = false;
    for (int i = 0; i < m; i++) {
        for (uint32_t c = r[i].lo; c <= r[i].hi && c < 0x80; c++) {
            ascii.w[c >> 5] |= 1u << (c & 31);
            has_ascii = true;
        }
        if (r[i].hi >= 0x80) has_multi = true;
    }
    int rc = Q35_OK;
    if (!has_multi) {
        int id = gb_set(b, &ascii);
        rc = id < 0 ? Q35_ENOMEM : gb_push(b, s, G_BYTES, id);
        free(r);
        return rc;
    }
    int rule = gb_anon(b, "class");
    if (rule < 0) {
        free(r);
        return Q35_ENOMEM;
    }
    if (has_ascii) {
        g_seq a = {0};
        int id = gb_set(b, &ascii);
        rc = id < 0 ? Q35_ENOMEM : gb_push(b, &a, G_BYTES, id);
        if (!rc) rc = gb_add_alt(b, rule, &a);
        g_seq_free(&a);
    }
    utf8_alts *u = malloc(sizeof *u);
    if (!u) rc = oom(b);
    for (int i = 0; !rc && i < m; i++) {
        if (r[i].hi < 0x80) continue;
        u->n = 0;
        utf8_split(u, r[i].lo < 0x80 ? 0x80 : r[i].lo, r[i].hi);
        for (int j = 0; !rc && j < u->n; j++) {
            g_seq a = {0};
            for (int k2 = 0; !rc && k2 < u->len[j]; k2++)
                rc = push_byte_range(b, &a, u->lo[j][k2], u->hi[j][k2]);
            if (!rc) rc = gb_add_alt(b, rule, &a);
            g_seq_free(&a);
        }
    }
    free(u);
    free(r);
    if (!rc) {
        b->rules[rule].defined = true;
        rc = gb_push(b, s, G_RULE, rule);
    }
    return rc;
}

/* s[from..n) as one element: itself if it is one, else a helper rule. */
static int as_one(g_builder *b, g_seq *s, int from, g_elem *out) {
    if (s->n - from == 1) {
        *out = s->e[from];
        s->n = from;
        return Q35_OK;
    }
    int rule = gb_anon(b, "group");
    if (rule < 0) return Q35_ENOMEM;
    g_seq a = {0};
    int rc = Q35_OK;
    for (int i = from; !rc && i < s->n; i++)
        rc = gb_push(b, &a, s->e[i].kind, s->e[i].arg);
    if (!rc) rc = gb_add_alt(b, rule, &a);
    g_seq_free(&a);
    b->rules[rule].defined = true;
    s->n = from;
    *out = (g_elem){G_RULE, rule};
    return rc;
}

int gb_repeat(g_builder *b, g_seq *s, int from, int min, int max) {
    if (min < 0 || (max >= 0 && max < min))
        return q35_err_set(b->e, Q35_EINVAL, "grammar: bad repetition {%d,%d}", min, max);
    if (min > 100000 || max > 100000)
        return q35_err_set(b->e, Q35_EINVAL, "grammar: repetition count over 100000");
    g_elem x;
    int rc = as_one(b, s, from, &x);
    for (int i = 0; !rc && i < min; i++)
        rc = gb_push(b, s, x.kind, x.arg);
    if (rc) return rc;
    if (max < 0) { /* R ::= x R | "" */
        int rule = gb_anon(b, "star");
        if (rule < 0) return Q35_ENOMEM;
        g_seq a = {0}, eps = {0};
        rc = gb_push(b, &a, x.kind, x.arg);
        if (!rc) rc = gb_push(b, &a, G_RULE, rule);
        if (!rc) rc = gb_add_alt(b, rule, &a);
        if (!rc) rc = gb_add_alt(b, rule, &eps);
        g_seq_free(&a);
        b->rules[rule].defined = true;
        return rc ? rc : gb_push(b, s, G_RULE, rule);
    }
    /* up to max-min more: R1 ::= x | "", Rk ::= x R(k-1) | "" */
    int prev = -1, first = b->n_rules;
    for (int k = 0; k < max - min; k++) {
        int rule = gb_anon(b, "opt");
        if (rule < 0) return Q35_ENOMEM;
        g_seq a = {0}, eps = {0};
        rc = gb_push(b, &a, x.kind, x.arg);
        if (!rc && prev >= 0) rc = gb_push(b, &a, G_RULE, prev);
        if (!rc) rc = gb_add_alt(b, rule, &a);
        if (!rc) rc = gb_add_alt(b, rule, &eps);
        g_seq_free(&a);
        if (rc) return rc;
        b->rules[rule].defined = true;
        prev = rule;
    }
    if (max - min > Q35_MASK_SAT && prev == first + (max - min) - 1) { /* ids consecutive */
        if (b->n_chains == b->cap_chains) {
            int cap = b->cap_chains ? b->cap_chains * 2 : 16;
            g_chain *c = realloc(b->chains, (size_t)cap * sizeof *c);
            if (!c) return oom(b);
            b->chains = c;
            b->cap_chains = cap;
        }
        b->chains[b->n_chains++] = (g_chain){first, max - min, x};
    }
    return prev >= 0 ? gb_push(b, s, G_RULE, prev) : Q35_OK;
}

/* Left recursion: a rule reachable from itself through leading elements
 * that can all match the empty string would make the recognizer's stacks
 * grow without consuming input. */
static int check_left_recursion(g_builder *b, bool **nullable_out) {
    int n = b->n_rules;
    bool *nullable = calloc((size_t)n, 1);
    int *color = calloc((size_t)n, sizeof *color);
    int *stack = malloc(((size_t)n + 1) * 2 * sizeof *stack);
    if (!nullable || !color || !stack) {
        free(nullable);
        free(color);
        free(stack);
        return oom(b);
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int r = 0; r < n; r++) {
            if (nullable[r]) continue;
            for (int a = 0; a < b->rules[r].n_alts && !nullable[r]; a++) {
                const g_seq *s = &b->rules[r].alts[a];
                bool all = true;
                for (int i = 0; i < s->n && all; i++)
                    all = s->e[i].kind == G_RULE && nullable[s->e[i].arg];
                if (all) nullable[r] = changed = true;
            }
        }
    }
    int rc = Q35_OK;
    /* iterative DFS over "left corner" edges; color 1 = on the path */
    for (int start = 0; start < n && !rc; start++) {
        if (color[start]) continue;
        int sp = 0;
        stack[sp++] = start;
        stack[sp++] = 0; /* next (alt << 16 | elem) to look at, packed loosely */
        color[start] = 1;
        while (sp && !rc) {
            int r = stack[sp - 2];
            int it = stack[sp - 1];
            int a = it >> 16, i = it & 0xFFFF;
            const g_rule *rr = &b->rules[r];
            int next = -1;
            while (a < rr->n_alts) {
                const g_seq *s = &rr->alts[a];
                if (i < s->n && i < 0xFFFF && s->e[i].kind == G_RULE &&
                    (i == 0 || (s->e[i - 1].kind == G_RULE && nullable[s->e[i - 1].arg]))) {
                    /* element i is a left corner if all before it are nullable */
                    bool lead = true;
                    for (int j = 0; j < i && lead; j++)
                        lead = s->e[j].kind == G_RULE && nullable[s->e[j].arg];
                    int t = s->e[i].arg;
                    i++;
                    if (lead) {
                        next = t;
                        break;
                    }
                    continue;
                }
                a++;
                i = 0;
            }
            stack[sp - 1] = a << 16 | i;
            if (next < 0) {
                color[r] = 2;
                sp -= 2;
                continue;
            }
            if (color[next] == 1) {
                rc = q35_err_set(b->e, Q35_EINVAL, "grammar: rule '%s' is left-recursive",
                                 b->rules[next].name);
            } else if (!color[next]) {
                color[next] = 1;
                stack[sp++] = next;
                stack[sp++] = 0;
            }
        }
    }
    if (!rc && nullable_out)
        *nullable_out = nullable;
    else
        free(nullable);
    free(color);
    free(stack);
    return rc;
}

q35_grammar *gb_finish(g_builder *b, const char *root_name) {
    q35_grammar *g = NULL;
    bool *nullable = NULL;
    int root = -1;
    for (int i = 0; i < b->n_rules; i++)
        if (!strcmp(b->rules[i].name, root_name)) root = i;
    if (root < 0 || !b->rules[root].defined) {
        q35_err_set(b->e, Q35_EINVAL, "grammar: no rule '%s' (the start rule)", root_name);
        goto done;
    }
    for (int i = 0; i < b->n_rules; i++)
        if (!b->rules[i].defined) {
            q35_err_set(b->e, Q35_EINVAL, "grammar: rule '%s' is used at %d:%d but not defined",
                        b->rules[i].name, b->rules[i].ref_line, b->rules[i].ref_col);
            goto done;
        }
    /* lead ::= root | "\n" root | "\n" "\n" root */
    int lead = gb_anon(b, "lead");
    if (lead < 0) goto done;
    for (int k = 0; k < 3; k++) {
        g_seq a = {0};
        int rc = Q35_OK;
        for (int j = 0; j < k && !rc; j++)
            rc = push_byte_range(b, &a, '\n', '\n');
        if (!rc) rc = gb_push(b, &a, G_RULE, root);
        if (!rc) rc = gb_add_alt(b, lead, &a);
        g_seq_free(&a);
        if (rc) goto done;
    }
    b->rules[lead].defined = true;
    if (check_left_recursion(b, &nullable)) goto done;

    g = calloc(1, sizeof *g);
    if (!g) goto oom;
    int n_alts = 0, n_els = 0;
    for (int r = 0; r < b->n_rules; r++) {
        n_alts += b->rules[r].n_alts;
        for (int a = 0; a < b->rules[r].n_alts; a++)
            n_els += b->rules[r].alts[a].n + 1;
    }
    g->els = malloc(((size_t)n_els + 1) * sizeof *g->els);
    g->alt_start = malloc(((size_t)n_alts + 1) * sizeof *g->alt_start);
    g->rule_alt = malloc(((size_t)b->n_rules + 1) * sizeof *g->rule_alt);
    g->sets = malloc(((size_t)b->n_sets + 1) * sizeof *g->sets);
    if (!g->els || !g->alt_start || !g->rule_alt || !g->sets) goto oom;
    int ai = 0, ei = 0;
    for (int r = 0; r < b->n_rules; r++) {
        g->rule_alt[r] = ai;
        for (int a = 0; a < b->rules[r].n_alts; a++) {
            const g_seq *s = &b->rules[r].alts[a];
            g->alt_start[ai++] = ei;
            if (s->n) memcpy(g->els + ei, s->e, (size_t)s->n * sizeof *s->e);
            ei += s->n;
            g->els[ei++] = (g_elem){G_END, 0};
        }
    }
    g->rule_alt[b->n_rules] = ai;
    g->n_els = ei;
    g->n_rules = b->n_rules;
    if (b->n_sets) memcpy(g->sets, b->sets, (size_t)b->n_sets * sizeof *g->sets);
    g->n_sets = b->n_sets;
    g->root = root;
    g->lead = lead;
    g->canon_pos = malloc(((size_t)ei + 1) * sizeof *g->canon_pos);
    if (!g->canon_pos) goto oom;
    for (int i = 0; i < ei; i++)
        g->canon_pos[i] = i;
    for (int c = 0; c < b->n_chains; c++) {
        const g_chain *ch = &b->chains[c];
        if (ch->x.kind == G_RULE && nullable[ch->x.arg]) continue; /* empty steps: no bound */
        if (ch->x.kind == G_TOKEN) continue;                       /* tokens are not trie bytes */
        int sat = ch->first + Q35_MASK_SAT - 1;                    /* the rule of k = SAT */
        for (int k = Q35_MASK_SAT + 1; k <= ch->n; k++) {
            int r = ch->first + k - 1;
            /* alt 0: x, R(k-1), END; alt 1: END — the same layout as SAT's */
            int a0 = g->alt_start[g->rule_alt[r]], a1 = g->alt_start[g->rule_alt[r] + 1];
            int s0 = g->alt_start[g->rule_alt[sat]], s1 = g->alt_start[g->rule_alt[sat] + 1];
            for (int o = 0; o < 3; o++)
                g->canon_pos[a0 + o] = s0 + o;
            g->canon_pos[a1] = s1;
        }
    }
    goto done;
oom:
    oom(b);
    q35_grammar_free(g);
    g = NULL;
done:
    free(nullable);
    gb_free(b);
    return g;
}
