/* constraint.h — the inside of q35_constraint: a grammar and the
 * vocabulary it was compiled against, both immutable. */
#ifndef Q35_CONSTRAINT_CONSTRAINT_H
#define Q35_CONSTRAINT_CONSTRAINT_H

#include "constraint/grammar.h"
#include "constraint/vocab.h"

struct q35_constraint {
    q35_grammar *g;
    const q35_constraint_vocab *v; /* a reference held */
};

/* Wraps a grammar (taken, freed on failure) into a constraint. */
q35_constraint *q35_constraint_from_grammar(const q35_constraint_vocab *v, q35_grammar *g,
                                            q35_err *e);

#endif
