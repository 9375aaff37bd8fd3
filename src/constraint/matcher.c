/* matcher.c — the recognizer of one generation and its token masks.
 *
 * A recognizer configuration is a set of stacks (llama.cpp's model): each
 * stack is a linked list of nodes (position in the grammar's element
 * array, parent node), interned so equal stacks share storage. A set
 * keeps only stacks whose top is a terminal (byte set or token), plus an
 * "accept" flag when the start rule can be complete. Calls in tail
 * position push no return node, so `x*` and right recursion run in
 * constant stack depth and their states repeat.
 *
 * Stack sets are interned into states; each state caches its transition
 * on every byte (lazily) and its token mask (a bounded number of them).
 * A mask is one preorder pass over the vocabulary's byte trie that follows
 * cached transitions and skips the subtree below any byte the recognizer
 * rejects: the cost is the number of live trie nodes, and a state seen
 * before costs a copy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "constraint/constraint.h"
#include "core/err.h"

/* Limits against grammars whose state space explodes. */
#define MAX_STACKS_PER_STATE 4096
#define MAX_MEMORY ((size_t)512 << 20)
#define MAX_CACHED_MASKS 192

#define T_UNKNOWN (-2)
#define T_DEAD (-1)

typedef struct mnode {
    int32_t pos, parent;
} mnode;

typedef struct mstate {
    int32_t off, n; /* its stacks: pool[off .. off+n) (top node ids, sorted) */
    uint8_t accept;
    uint8_t has_token; /* some stack's top is a G_TOKEN */
    int32_t *trans;    /* [256] next state on a byte, T_UNKNOWN or T_DEAD */
    uint32_t *mask;    /* cached mask of the trie's tokens (canonical states) or NULL */
    int32_t canon;     /* the state whose trie mask this one shares; T_UNKNOWN until known */
} mstate;

struct q35_matcher {
    const q35_grammar *g;
    const q35_constraint_vocab *v;
    mnode *nodes;
    uint32_t *nstamp;
    int32_t *ncanon; /* [n_nodes] the node with saturated counters, or T_UNKNOWN */
    int n_nodes, cap_nodes;
    int32_t *nhash;
    uint32_t nhash_mask;
    uint32_t stamp;
    mstate *states;
    int n_states, cap_states;
    int32_t *shash;
    uint32_t shash_mask;
    int32_t *pool;
    size_t n_pool, cap_pool;
    int32_t *work; /* (pos, parent) pairs */
    int n_work, cap_work;
    int32_t *res;
    int n_res, cap_res;
    bool res_accept;
    int cur;
    int32_t eos[16];
    int n_eos;
    int32_t *walk;          /* [max_depth + 1] states along the trie path */
    const int32_t **wtrans; /* [max_depth + 1] their transition tables */
    uint32_t *scratch;      /* [words] this step's mask: the trie's part and the rest */
    int32_t cached[MAX_CACHED_MASKS];
    int n_cached, next_evict;
    size_t mem;
    int failed; /* a status: the state space hit a limit or memory ran out */
    q35_matcher_stats st;
};

static uint32_t hash2(uint32_t a, uint32_t b) {
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

static bool grow(q35_matcher *m, void **p, int *cap, size_t elem, int need) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    size_t add = (size_t)(nc - *cap) * elem;
    if (m->mem + add > MAX_MEMORY) {
        m->failed = Q35_EOVERFLOW;
        return false;
    }
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) {
        m->failed = Q35_ENOMEM;
        return false;
    }
    m->mem += add;
    *p = q;
    *cap = nc;
    return true;
}

static bool rehash_nodes(q35_matcher *m) {
    uint32_t size = m->nhash_mask ? (m->nhash_mask + 1) * 2 : 1024;
    int32_t *h = malloc(size * sizeof *h);
    if (!h) {
        m->failed = Q35_ENOMEM;
        return false;
    }
    memset(h, 0xFF, size * sizeof *h);
    for (int i = 0; i < m->n_nodes; i++) {
        uint32_t k = hash2((uint32_t)m->nodes[i].pos, (uint32_t)m->nodes[i].parent) & (size - 1);
        while (h[k] >= 0)
            k = (k + 1) & (size - 1);
        h[k] = i;
    }
    m->mem += size * sizeof *h;
    if (m->nhash) m->mem -= (m->nhash_mask + 1) * sizeof *h;
    free(m->nhash);
    m->nhash = h;
    m->nhash_mask = size - 1;
    return true;
}

/* The id of node (pos, parent); -1 when out of memory. */
static int32_t intern_node(q35_matcher *m, int32_t pos, int32_t parent) {
    if ((uint32_t)m->n_nodes * 2 >= m->nhash_mask && !rehash_nodes(m)) return -1;
    uint32_t k = hash2((uint32_t)pos, (uint32_t)parent) & m->nhash_mask;
    while (m->nhash[k] >= 0) {
        const mnode *n = &m->nodes[m->nhash[k]];
        if (n->pos == pos && n->parent == parent) return m->nhash[k];
        k = (k + 1) & m->nhash_mask;
    }
    int cap = m->cap_nodes;
    if (!grow(m, (void **)&m->nodes, &cap, sizeof *m->nodes, m->n_nodes + 1)) return -1;
    int cap2 = m->cap_nodes, cap3 = m->cap_nodes;
    if (!grow(m, (void **)&m->nstamp, &cap2, sizeof *m->nstamp, m->n_nodes + 1)) return -1;
    if (!grow(m, (void **)&m->ncanon, &cap3, sizeof *m->ncanon, m->n_nodes + 1)) return -1;
    m->cap_nodes = cap < cap2 ? (cap < cap3 ? cap : cap3) : (cap2 < cap3 ? cap2 : cap3);
    m->nodes[m->n_nodes] = (mnode){pos, parent};
    m->nstamp[m->n_nodes] = 0;
    m->ncanon[m->n_nodes] = T_UNKNOWN;
    m->nhash[k] = m->n_nodes;
    return m->n_nodes++;
}

static bool push_work(q35_matcher *m, int32_t pos, int32_t parent) {
    if (!grow(m, (void **)&m->work, &m->cap_work, sizeof *m->work, m->n_work + 2)) return false;
    m->work[m->n_work++] = pos;
    m->work[m->n_work++] = parent;
    return true;
}

/* Expands the pending (pos, parent) configurations into terminal-topped
 * stacks in m->res (each once) and m->res_accept. */
static bool closure(q35_matcher *m) {
    const q35_grammar *g = m->g;
    while (m->n_work) {
        int32_t parent = m->work[--m->n_work];
        int32_t pos = m->work[--m->n_work];
        int32_t id = intern_node(m, pos, parent);
        if (id < 0) return false;
        if (m->nstamp[id] == m->stamp) continue; /* seen in this step */
        m->nstamp[id] = m->stamp;
        const g_elem *el = &g->els[pos];
        switch (el->kind) {
        case G_END:
            if (parent < 0)
                m->res_accept = true;
            else if (!push_work(m, m->nodes[parent].pos, m->nodes[parent].parent))
                return false;
            break;
        case G_RULE: {
            int32_t ret = parent;
            if (g->els[pos + 1].kind != G_END) { /* not a tail call: remember where to return */
                ret = intern_node(m, pos + 1, parent);
                if (ret < 0) return false;
            }
            for (int a = g->rule_alt[el->arg]; a < g->rule_alt[el->arg + 1]; a++)
                if (!push_work(m, g->alt_start[a], ret)) return false;
            break;
        }
        default:
            if (!grow(m, (void **)&m->res, &m->cap_res, sizeof *m->res, m->n_res + 1)) return false;
            m->res[m->n_res++] = id;
            if (m->n_res > MAX_STACKS_PER_STATE) {
                m->failed = Q35_EOVERFLOW;
                return false;
            }
        }
    }
    return true;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t state_hash(const int32_t *ids, int n, bool accept) {
    uint32_t h = accept ? 0x85EBCA6Bu : 0x27D4EB2Fu;
    for (int i = 0; i < n; i++)
        h = hash2(h, (uint32_t)ids[i]);
    return h;
}

static bool rehash_states(q35_matcher *m) {
    uint32_t size = m->shash_mask ? (m->shash_mask + 1) * 2 : 256;
    int32_t *h = malloc(size * sizeof *h);
    if (!h) {
        m->failed = Q35_ENOMEM;
        return false;
    }
    memset(h, 0xFF, size * sizeof *h);
    for (int i = 0; i < m->n_states; i++) {
        const mstate *s = &m->states[i];
        uint32_t k = state_hash(m->pool + s->off, s->n, s->accept) & (size - 1);
        while (h[k] >= 0)
            k = (k + 1) & (size - 1);
        h[k] = i;
    }
    m->mem += size * sizeof *h;
    if (m->shash) m->mem -= (m->shash_mask + 1) * sizeof *h;
    free(m->shash);
    m->shash = h;
    m->shash_mask = size - 1;
    return true;
}

/* The state of m->res / m->res_accept (T_DEAD when empty); T_UNKNOWN on
 * failure. */
static int32_t intern_result(q35_matcher *m) {
    if (!m->n_res && !m->res_accept) return T_DEAD;
    qsort(m->res, (size_t)m->n_res, sizeof *m->res, cmp_i32);
    if ((uint32_t)m->n_states * 2 >= m->shash_mask && !rehash_states(m)) return T_UNKNOWN;
    uint32_t k = state_hash(m->res, m->n_res, m->res_accept) & m->shash_mask;
    while (m->shash[k] >= 0) {
        const mstate *s = &m->states[m->shash[k]];
        if (s->n == m->n_res && s->accept == m->res_accept &&
            !memcmp(m->pool + s->off, m->res, (size_t)s->n * sizeof *m->res))
            return m->shash[k];
        k = (k + 1) & m->shash_mask;
    }
    int cap = (int)m->cap_pool;
    if (!grow(m, (void **)&m->pool, &cap, sizeof *m->pool, (int)m->n_pool + m->n_res))
        return T_UNKNOWN;
    m->cap_pool = (size_t)cap;
    if (!grow(m, (void **)&m->states, &m->cap_states, sizeof *m->states, m->n_states + 1))
        return T_UNKNOWN;
    mstate *s = &m->states[m->n_states];
    memset(s, 0, sizeof *s);
    s->canon = T_UNKNOWN;
    s->off = (int32_t)m->n_pool;
    s->n = m->n_res;
    s->accept = m->res_accept;
    for (int i = 0; i < m->n_res; i++)
        if (m->g->els[m->nodes[m->res[i]].pos].kind == G_TOKEN) s->has_token = 1;
    memcpy(m->pool + m->n_pool, m->res, (size_t)m->n_res * sizeof *m->res);
    m->n_pool += (size_t)m->n_res;
    m->shash[k] = m->n_states;
    m->st.n_states = m->n_states + 1;
    return m->n_states++;
}

static void begin(q35_matcher *m) {
    m->n_work = 0;
    m->n_res = 0;
    m->res_accept = false;
    if (++m->stamp == 0) { /* wrapped: clear every stamp */
        memset(m->nstamp, 0, (size_t)m->n_nodes * sizeof *m->nstamp);
        m->stamp = 1;
    }
}

/* Pushes the stacks of state s advanced over byte b (or over token `tok`
 * when b < 0). */
static bool advance(q35_matcher *m, int32_t s, int b, int32_t tok) {
    const mstate *st = &m->states[s];
    for (int i = 0; i < st->n; i++) {
        const mnode *n = &m->nodes[m->pool[st->off + i]];
        const g_elem *el = &m->g->els[n->pos];
        bool ok = b >= 0 ? el->kind == G_BYTES && g_set_has(&m->g->sets[el->arg], (unsigned)b)
                         : el->kind == G_TOKEN && el->arg == tok;
        if (ok && !push_work(m, n->pos + 1, n->parent)) return false;
    }
    return closure(m);
}

/* The state after byte b from state s (cached). */
static int32_t step(q35_matcher *m, int32_t s, unsigned b) {
    mstate *st = &m->states[s];
    if (!st->trans) {
        if (m->mem + 256 * sizeof(int32_t) > MAX_MEMORY) {
            m->failed = Q35_EOVERFLOW;
            return T_DEAD;
        }
        st->trans = malloc(256 * sizeof *st->trans);
        if (!st->trans) {
            m->failed = Q35_ENOMEM;
            return T_DEAD;
        }
        m->mem += 256 * sizeof *st->trans;
        /* bytes no top accepts die at once, without a closure */
        uint32_t any[8] = {0};
        for (int i = 0; i < st->n; i++) {
            const g_elem *el = &m->g->els[m->nodes[m->pool[st->off + i]].pos];
            if (el->kind == G_BYTES)
                for (int w = 0; w < 8; w++)
                    any[w] |= m->g->sets[el->arg].w[w];
        }
        for (int c = 0; c < 256; c++)
            st->trans[c] = (any[c >> 5] >> (c & 31)) & 1 ? T_UNKNOWN : T_DEAD;
    }
    int32_t t = st->trans[b];
    if (t != T_UNKNOWN) return t;
    begin(m);
    if (!advance(m, s, (int)b, -1)) return T_DEAD;
    t = intern_result(m);
    if (t == T_UNKNOWN) return T_DEAD;
    m->states[s].trans[b] = t; /* states may have moved */
    return t;
}

static int32_t step_token(q35_matcher *m, int32_t s, int32_t id) {
    const q35_constraint_vocab *v = m->v;
    int32_t t = s;
    if (!v->added[id]) {
        for (uint32_t i = v->off[id]; i < v->off[id + 1] && t >= 0; i++)
            t = step(m, t, (unsigned char)v->bytes[i]);
    } else {
        t = T_DEAD;
    }
    if (!m->states[s].has_token) return t;
    /* token terminals: union with the byte path's result */
    begin(m);
    if (t >= 0) {
        const mstate *ts = &m->states[t];
        for (int i = 0; i < ts->n; i++) {
            int32_t nid = m->pool[ts->off + i];
            m->nstamp[nid] = m->stamp;
            if (!grow(m, (void **)&m->res, &m->cap_res, sizeof *m->res, m->n_res + 1))
                return T_DEAD;
            m->res[m->n_res++] = nid;
        }
        m->res_accept = ts->accept;
    }
    if (!advance(m, s, -1, id)) return T_DEAD;
    int32_t u = intern_result(m);
    return u == T_UNKNOWN ? T_DEAD : u;
}

q35_matcher *q35_matcher_new(const q35_constraint *c, bool after_think, const int32_t *eos,
                             int n_eos, q35_err *e) {
    q35_matcher *m = calloc(1, sizeof *m);
    if (!m) {
        q35_err_set(e, Q35_ENOMEM, "matcher: out of memory");
        return NULL;
    }
    m->g = c->g;
    m->v = c->v;
    if (!eos) {
        eos = c->v->eos;
        n_eos = c->v->n_eos;
    }
    for (int i = 0; i < n_eos && m->n_eos < 16; i++)
        if (eos[i] >= 0) m->eos[m->n_eos++] = eos[i];
    m->walk = malloc(((size_t)c->v->max_depth + 2) * sizeof *m->walk);
    m->wtrans = malloc(((size_t)c->v->max_depth + 2) * sizeof *m->wtrans);
    if (!m->walk || !m->wtrans) {
        q35_matcher_free(m);
        q35_err_set(e, Q35_ENOMEM, "matcher: out of memory");
        return NULL;
    }
    if (q35_matcher_reset(m, after_think, e)) {
        q35_matcher_free(m);
        return NULL;
    }
    return m;
}

int q35_matcher_reset(q35_matcher *m, bool after_think, q35_err *e) {
    begin(m);
    m->failed = 0;
    int rule = after_think ? m->g->lead : m->g->root;
    bool ok = true;
    for (int a = m->g->rule_alt[rule]; a < m->g->rule_alt[rule + 1] && ok; a++)
        ok = push_work(m, m->g->alt_start[a], -1);
    if (ok) ok = closure(m);
    int32_t s = ok ? intern_result(m) : T_UNKNOWN;
    if (s < 0)
        return q35_err_set(e, m->failed ? m->failed : Q35_EINVAL, "%s",
                           s == T_DEAD ? "matcher: the grammar matches nothing"
                                       : "matcher: out of memory or beyond limits at the start");
    m->cur = s;
    return Q35_OK;
}

void q35_matcher_free(q35_matcher *m) {
    if (!m) return;
    for (int i = 0; i < m->n_states; i++) {
        free(m->states[i].trans);
        free(m->states[i].mask);
    }
    free(m->states);
    free(m->shash);
    free(m->pool);
    free(m->nodes);
    free(m->nstamp);
    free(m->ncanon);
    free(m->scratch);
    free(m->nhash);
    free(m->work);
    free(m->res);
    free(m->walk);
    free(m->wtrans);
    free(m);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The node with every bounded-repetition counter above Q35_MASK_SAT
 * saturated (see grammar.h); -1 on failure. */
static int32_t canon_node(q35_matcher *m, int32_t id) {
    if (id < 0) return id;
    if (m->ncanon[id] != T_UNKNOWN) return m->ncanon[id];
    int32_t pos = m->nodes[id].pos, parent = m->nodes[id].parent;
    int32_t cpar = canon_node(m, parent);
    if (parent >= 0 && cpar < 0) return -1;
    int32_t cpos = m->g->canon_pos[pos];
    int32_t c = cpos == pos && cpar == parent ? id : intern_node(m, cpos, cpar);
    if (c < 0) return -1;
    m->ncanon[id] = c;
    m->ncanon[c] = c;
    return c;
}

/* The state whose trie mask s shares (s itself when nothing saturates). */
static int32_t canon_state(q35_matcher *m, int32_t s) {
    if (m->states[s].canon != T_UNKNOWN) return m->states[s].canon;
    begin(m);
    bool same = true;
    for (int i = 0; i < m->states[s].n; i++) {
        int32_t id = m->pool[m->states[s].off + i];
        int32_t c = canon_node(m, id);
        if (c < 0) return s; /* out of memory: no sharing, still exact */
        same &= c == id;
        if (m->nstamp[c] == m->stamp) continue; /* saturated stacks may coincide */
        m->nstamp[c] = m->stamp;
        if (!grow(m, (void **)&m->res, &m->cap_res, sizeof *m->res, m->n_res + 1)) return s;
        m->res[m->n_res++] = c;
    }
    int32_t c = s;
    if (!same) {
        m->res_accept = m->states[s].accept;
        c = intern_result(m);
        if (c < 0) return s;
    }
    m->states[s].canon = c;
    m->states[c].canon = c;
    return c;
}

/* Adds the tokens of trie `tr` admitted from state s to `mask`. */
static void walk_trie(q35_matcher *m, int32_t s, const q35_vtrie *tr, uint32_t *mask) {
    const q35_constraint_vocab *v = m->v;
    int32_t *walk = m->walk;
    const int32_t **wt = m->wtrans;
    walk[0] = s;
    wt[0] = m->states[s].trans;
    const uint8_t *byte = tr->byte;
    const uint16_t *depth = tr->depth;
    const int32_t *end = tr->end, *tok = tr->tok;
    for (int i = 0; i < tr->n_nodes;) {
        int d = depth[i];
        int32_t t = wt[d - 1] ? wt[d - 1][byte[i]] : T_UNKNOWN;
        if (t == T_UNKNOWN) {
            t = step(m, walk[d - 1], byte[i]);
            wt[d - 1] = m->states[walk[d - 1]].trans; /* made by the step if it was not */
        }
        if (t < 0) {
            i = end[i];
            continue;
        }
        walk[d] = t;
        wt[d] = m->states[t].trans;
        for (int32_t id = tok[i]; id >= 0; id = v->next_dup[id])
            mask[id >> 5] |= 1u << (id & 31);
        i++;
    }
}

/* The trie mask of state `key`, cached (computed if needed); NULL on
 * failure. */
static const uint32_t *trie_mask(q35_matcher *m, int32_t key, q35_err *e) {
    if (m->states[key].mask) {
        m->st.n_mask_hits++;
        return m->states[key].mask;
    }
    size_t words = ((size_t)m->v->n_vocab + 31) / 32;
    uint32_t *mask;
    if (m->n_cached == MAX_CACHED_MASKS) { /* evict round robin: reuse its buffer */
        int victim = m->cached[m->next_evict];
        mask = m->states[victim].mask;
        m->states[victim].mask = NULL;
        m->cached[m->next_evict] = key;
        m->next_evict = (m->next_evict + 1) % MAX_CACHED_MASKS;
    } else {
        mask = malloc(words * sizeof *mask);
        if (!mask) {
            q35_err_set(e, Q35_ENOMEM, "matcher: out of memory for a mask");
            return NULL;
        }
        m->mem += words * sizeof *mask;
        m->cached[m->n_cached++] = key;
    }
    m->failed = 0;
    memset(mask, 0, words * sizeof *mask);
    walk_trie(m, key, &m->v->trie, mask);
    m->st.n_masks++;
    if (m->failed) {
        q35_err_set(e, m->failed,
                    "matcher: the grammar's state space grew past the limits "
                    "(%d states, %zu bytes)",
                    m->n_states, m->mem);
        free(mask);
        m->mem -= words * sizeof *mask;
        for (int i = 0; i < m->n_cached; i++)
            if (m->cached[i] == key) {
                m->cached[i] = m->cached[--m->n_cached];
                m->next_evict = 0;
                break;
            }
        return NULL;
    }
    m->states[key].mask = mask;
    return mask;
}

/* This step's whole mask: the trie's tokens (shared through the
 * canonical state), the long tokens, token terminals and eos, from the
 * current state itself. NULL on failure. */
static const uint32_t *current_mask(q35_matcher *m, q35_err *e) {
    const q35_constraint_vocab *v = m->v;
    size_t words = ((size_t)v->n_vocab + 31) / 32;
    if (!m->scratch) {
        m->scratch = malloc(words * sizeof *m->scratch);
        if (!m->scratch) {
            q35_err_set(e, Q35_ENOMEM, "matcher: out of memory for a mask");
            return NULL;
        }
        m->mem += words * sizeof *m->scratch;
    }
    int32_t cur = m->cur;
    const uint32_t *tm = trie_mask(m, canon_state(m, cur), e);
    if (!tm) return NULL;
    uint32_t *mask = m->scratch;
    memcpy(mask, tm, words * sizeof *mask);
    m->failed = 0;
    walk_trie(m, cur, &v->long_trie, mask);
    if (m->failed) {
        q35_err_set(e, m->failed, "matcher: the grammar's state space grew past the limits");
        return NULL;
    }
    const mstate *st = &m->states[cur];
    if (st->has_token)
        for (int i = 0; i < st->n; i++) {
            const g_elem *el = &m->g->els[m->nodes[m->pool[st->off + i]].pos];
            if (el->kind == G_TOKEN) mask[el->arg >> 5] |= 1u << (el->arg & 31);
        }
    if (st->accept)
        for (int i = 0; i < m->n_eos; i++)
            if (m->eos[i] < v->n_vocab) mask[m->eos[i] >> 5] |= 1u << (m->eos[i] & 31);
    return mask;
}

int q35_matcher_mask(q35_matcher *m, float *logits, int n, q35_err *e) {
    double t0 = now_ms();
    const uint32_t *mask = current_mask(m, e);
    if (!mask) return e && e->code ? e->code : Q35_ENOMEM;
    int nv = m->v->n_vocab < n ? m->v->n_vocab : n;
    int i = 0;
    for (; i + 32 <= nv; i += 32) {
        uint32_t w = mask[i >> 5];
        if (w == 0xFFFFFFFFu) continue;
        if (!w) {
            for (int j = 0; j < 32; j++)
                logits[i + j] = -INFINITY;
            continue;
        }
        /* branch-free on the bits (partial words are common in strings):
         * an allowed logit keeps its bits, the others become -inf */
        uint32_t bits[32];
        memcpy(bits, logits + i, sizeof bits);
        for (int j = 0; j < 32; j++) {
            uint32_t keep = 0u - ((w >> j) & 1u);
            bits[j] = (bits[j] & keep) | (0xFF800000u & ~keep);
        }
        memcpy(logits + i, bits, sizeof bits);
    }
    for (; i < nv; i++)
        if (!((mask[i >> 5] >> (i & 31)) & 1)) logits[i] = -INFINITY;
    for (; i < n; i++)
        logits[i] = -INFINITY;
    m->st.mask_ms += now_ms() - t0;
    return Q35_OK;
}

static bool is_eos(const q35_matcher *m, int32_t id) {
    for (int i = 0; i < m->n_eos; i++)
        if (m->eos[i] == id) return true;
    return false;
}

bool q35_matcher_allows(q35_matcher *m, int32_t id) {
    if (id < 0 || id >= m->v->n_vocab) return false;
    if (is_eos(m, id)) return m->states[m->cur].accept;
    m->failed = 0;
    return step_token(m, m->cur, id) >= 0 && !m->failed;
}

int q35_matcher_accept(q35_matcher *m, int32_t id, q35_err *e) {
    if (id < 0 || id >= m->v->n_vocab)
        return q35_err_set(e, Q35_EINVAL, "matcher: token id %d outside the vocabulary", id);
    m->failed = 0;
    int32_t t = step_token(m, m->cur, id);
    if (m->failed)
        return q35_err_set(e, m->failed, "matcher: the grammar's state space grew past the limits");
    if (t < 0)
        return q35_err_set(e, Q35_EINVAL, "matcher: token %d does not continue the document", id);
    m->cur = t;
    return Q35_OK;
}

int q35_matcher_accept_bytes(q35_matcher *m, const char *bytes, size_t n, q35_err *e) {
    m->failed = 0;
    int32_t t = m->cur;
    for (size_t i = 0; i < n && t >= 0; i++)
        t = step(m, t, (unsigned char)bytes[i]);
    if (m->failed)
        return q35_err_set(e, m->failed, "matcher: the grammar's state space grew past the limits");
    if (t < 0) return q35_err_set(e, Q35_EINVAL, "matcher: the bytes do not continue the document");
    m->cur = t;
    return Q35_OK;
}

bool q35_matcher_is_complete(const q35_matcher *m) {
    return m->states[m->cur].accept;
}

bool q35_matcher_can_continue(const q35_matcher *m) {
    return m->states[m->cur].n > 0;
}

void q35_matcher_get_stats(const q35_matcher *m, q35_matcher_stats *out) {
    *out = m->st;
    out->n_states = m->n_states;
    out->memory_bytes = m->mem;
}
