/* vocab.h — the inside of q35_constraint_vocab: every vocabulary token's
 * bytes, and a byte trie of the non-added ones laid out in preorder, so a
 * mask is one forward pass that skips whole subtrees where the
 * recognizer dies. */
#ifndef Q35_CONSTRAINT_VOCAB_H
#define Q35_CONSTRAINT_VOCAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "constraint/grammar.h"
#include "q35.h"

#define Q35_VOCAB_MAX_EOS 8

/* A byte trie of tokens in preorder: node i spells byte[i] at depth[i]
 * (1 = first byte), ends token tok[i] (-1: none; more with the same bytes
 * through next_dup), and its subtree is [i, end[i]). */
typedef struct q35_vtrie {
    int n_nodes;
    uint8_t *byte;
    uint16_t *depth;
    int32_t *end;
    int32_t *tok;
    int max_depth;
} q35_vtrie;

struct q35_constraint_vocab {
    atomic_int refs;
    int n_vocab;
    char *bytes; /* token i's bytes: bytes + off[i] .. off[i+1] */
    uint32_t *off;
    uint8_t *added;    /* [n_vocab] 1 for added tokens (not in the trie) */
    int32_t *next_dup; /* [n_vocab] another token with the same bytes, or -1 */
    /* the tokens of at most Q35_MASK_SAT bytes, and the longer ones */
    q35_vtrie trie, long_trie;
    int max_depth; /* the deeper of the two */
    int32_t *long_ids;
    int n_long;
    int32_t eos[Q35_VOCAB_MAX_EOS];
    int n_eos;
};

/* The id of the added token whose bytes are exactly s[0..n), or -1. */
int32_t q35_vocab_added_id(const q35_constraint_vocab *v, const char *s, size_t n);

static inline void q35_vocab_ref(const q35_constraint_vocab *v) {
    atomic_fetch_add(&((q35_constraint_vocab *)v)->refs, 1);
}

#endif
