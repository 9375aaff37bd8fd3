/* grammar.h — the internal form every constraint compiles to (a
 * GBNF-equivalent context-free grammar over bytes) and the builder the
 * GBNF parser fills.
 *
 * A grammar is a list of rules; a rule is a list of alternatives; an
 * alternative is a sequence of elements ended by G_END. Terminals are
 * byte sets (a code point class is compiled to UTF-8 byte sequences at
 * build time, so the recognizer never decodes UTF-8) and token ids (added
 * tokens such as <tool_call>, which are not in the vocabulary's byte
 * trie). All elements of all alternatives live in one array, so a
 * recognizer position is one index. */
#ifndef Q35_CONSTRAINT_GRAMMAR_H
#define Q35_CONSTRAINT_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q35.h"

typedef enum g_kind {
    G_END = 0,   /* end of an alternative: return to the caller */
    G_BYTES = 1, /* one byte of sets[arg] */
    G_RULE = 2,  /* rule arg */
    G_TOKEN = 3, /* the token id arg, as a whole */
} g_kind;

typedef struct g_elem {
    int32_t kind;
    int32_t arg;
} g_elem;

typedef struct g_byteset {
    uint32_t w[8];
} g_byteset;

static inline bool g_set_has(const g_byteset *s, unsigned b) {
    return (s->w[b >> 5] >> (b & 31)) & 1u;
}

typedef struct q35_grammar {
    g_elem *els; /* every alternative's elements, each ended by G_END */
    int n_els;
    int32_t *alt_start; /* [n_alts] index into els of each alternative */
    int32_t *rule_alt;  /* [n_rules + 1]: rule r's alternatives are
                           alt_start[rule_alt[r] .. rule_alt[r+1]) */
    int n_rules;
    g_byteset *sets;
    int n_sets;
    int root; /* the start rule */
    int lead; /* root preceded by up to two "\n" (the answer after </think>) */
    /* [n_els] the position a mask key uses: identity, except inside the
     * helper rules of a bounded repetition x{m,n} of a non-empty x, where
     * "k more allowed" for k > Q35_MASK_SAT reads as k = Q35_MASK_SAT. No
     * token of at most Q35_MASK_SAT bytes can tell them apart, so the
     * masks of such states are shared (longer tokens are checked alone). */
    int32_t *canon_pos;
} q35_grammar;

void q35_grammar_free(q35_grammar *g);

/* ---------------------------------------------------------------- builder */

typedef struct g_seq {
    g_elem *e;
    int n, cap;
} g_seq;

typedef struct g_rule {
    char *name;
    g_seq *alts;
    int n_alts, cap_alts;
    bool defined;
    int ref_line, ref_col; /* where it was first used (for "undefined rule" errors) */
} g_rule;

/* Token bytes up to which repetition counters are saturated in mask keys
 * (the vocabulary trie holds only tokens this short). */
#define Q35_MASK_SAT 24

/* The helper rules of one bounded repetition: rules first .. first+n-1
 * hold "k more allowed" for k = 1..n, each "x next | empty". */
typedef struct g_chain {
    int first, n;
    g_elem x;
} g_chain;

typedef struct g_builder {
    g_chain *chains;
    int n_chains, cap_chains;
    g_rule *rules;
    int n_rules, cap_rules;
    g_byteset *sets;
    int n_sets, cap_sets;
    long total_els; /* a bound against grammars that expand too far */
    q35_err *e;
} g_builder;

/* A Unicode code point range [lo, hi]. */
typedef struct g_range {
    uint32_t lo, hi;
} g_range;

void gb_init(g_builder *b, q35_err *e);
void gb_free(g_builder *b);
/* The rule named `name` (created, undefined, when new); -1 on OOM. */
int gb_rule(g_builder *b, const char *name, size_t len);
/* A new anonymous rule named after `base`; -1 on OOM. */
int gb_anon(g_builder *b, const char *base);
/* Appends an element to a sequence; Q35_OK or an error. */
int gb_push(g_builder *b, g_seq *s, int kind, int arg);
/* Adds `s` as an alternative of `rule`, taking its storage (s is zeroed). */
int gb_add_alt(g_builder *b, int rule, g_seq *s);
/* The id of a byte set (deduplicated); -1 on OOM. */
int gb_set(g_builder *b, const g_byteset *set);
/* Appends the elements matching one code point of a class: `n` ranges,
 * complemented within Unicode scalar values when `negate`. Surrogates
 * never match. An empty class is an error. */
int gb_class(g_builder *b, g_seq *s, const g_range *r, int n, bool negate);
/* Appends the UTF-8 bytes of code point `cp`. */
int gb_codepoint(g_builder *b, g_seq *s, uint32_t cp);
/* Applies a quantifier to s[from..n): min..max copies (max < 0: no bound). */
int gb_repeat(g_builder *b, g_seq *s, int from, int min, int max);
/* Checks (every used rule defined, no left recursion, a root) and builds
 * the grammar. The builder is freed either way. */
q35_grammar *gb_finish(g_builder *b, const char *root_name);

void g_seq_free(g_seq *s);

/* Parses GBNF text into a grammar (root rule "root"). */
q35_grammar *q35_gbnf_parse(const char *text, size_t len, const q35_constraint_vocab *v,
                            q35_err *e);

#endif
