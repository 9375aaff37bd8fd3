/* sampler.c — padding mask, repetition penalty, temperature, top-k, top-p
 * and the draw (SPEC §6). The mask is a bound on the ids considered rather
 * than a write into the row. Top-k keeps a min-heap of the k best logits in
 * one pass over the vocabulary, then admits every id tied with the k-th, as
 * transformers' TopKLogitsWarper does; only the survivors are sorted and
 * exponentiated, so a token costs one pass over the row plus O(k log k). */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "runtime/sampler.h"

q35_sampling q35_sampling_default(void) {
    q35_sampling s = {0};
    s.temperature = 0.6f;
    s.top_k = 50;
    s.top_p = 0.95f;
    s.max_tokens = 512;
    s.repetition_penalty = 1.1f;
    s.repetition_window = 64;
    s.thinking = true;
    s.thinking_budget = 100;
    s.seed = 0;
    s.stop = NULL;
    return s;
}

int q35_sampling_check(const q35_sampling *s, q35_err *e) {
    if (!isfinite(s->temperature) || s->temperature < 0)
        return q35_err_set(e, Q35_EINVAL, "sampling: temperature %g must be >= 0",
                           (double)s->temperature);
    if (s->top_k < 0)
        return q35_err_set(e, Q35_EINVAL, "sampling: top_k %d must be >= 0", s->top_k);
    if (!isfinite(s->top_p) || s->top_p <= 0 || s->top_p > 1)
        return q35_err_set(e, Q35_EINVAL, "sampling: top_p %g must be in (0, 1]", (double)s->top_p);
    if (s->max_tokens < 0)
        return q35_err_set(e, Q35_EINVAL, "sampling: max_tokens %d must be >= 0", s->max_tokens);
    if (!isfinite(s->repetition_penalty) || s->repetition_penalty <= 0)
        return q35_err_set(e, Q35_EINVAL, "sampling: repetition_penalty %g must be > 0",
                           (double)s->repetition_penalty);
    if (s->repetition_window < 0 || s->repetition_window > (1 << 20))
        return q35_err_set(e, Q35_EINVAL, "sampling: repetition_window %d out of [0, 2^20]",
                           s->repetition_window);
    return Q35_OK;
}

int q35_sampler_init(q35_sampler *sp, const q35_sampling *s, int n_logits, int n_valid,
                     q35_err *e) {
    memset(sp, 0, sizeof *sp);
    int rc = q35_sampling_check(s, e);
    if (rc) return rc;
    if (n_logits <= 0 || n_valid <= 0)
        return q35_err_set(e, Q35_EINVAL, "sampler: empty vocabulary");
    sp->s = *s;
    sp->n_logits = n_logits;
    sp->n_valid = n_valid < n_logits ? n_valid : n_logits;
    q35_rng_seed(&sp->rng, s->seed);
    sp->cand = malloc((size_t)sp->n_valid * sizeof *sp->cand);
    sp->prob = malloc((size_t)sp->n_valid * sizeof *sp->prob);
    sp->window = malloc(((size_t)s->repetition_window + 1) * sizeof *sp->window);
    if (!sp->cand || !sp->prob || !sp->window)
        return q35_err_set(e, Q35_ENOMEM, "sampler: out of memory for %d candidates", n_valid);
    return Q35_OK;
}

void q35_sampler_free(q35_sampler *sp) {
    free(sp->cand);
    free(sp->prob);
    free(sp->window);
    memset(sp, 0, sizeof *sp);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void q35_sampler_penalize(q35_sampler *sp, float *logits, const int32_t *recent, int n_recent) {
    const float r = sp->s.repetition_penalty;
    int w = sp->s.repetition_window;
    if (r == 1.0f || w == 0 || n_recent <= 0) return;
    if (n_recent > w) {
        recent += n_recent - w;
        n_recent = w;
    }
    memcpy(sp->window, recent, (size_t)n_recent * sizeof *recent);
    qsort(sp->window, (size_t)n_recent, sizeof *sp->window, cmp_i32);
    for (int i = 0; i < n_recent; i++) {
        int32_t id = sp->window[i];
        if (i > 0 && id == sp->window[i - 1]) continue; /* each distinct id once */
        if (id < 0 || id >= sp->n_valid) continue;
        float l = logits[id];
        logits[id] = l < 0 ? l * r : l / r;
    }
}

/* Scans go 16 logits at a time: whether any of them is above a bound is
 * branch-free (the compiler vectorizes it), and only a block with one goes
 * through the exact scalar steps, so a row of 248k logits costs a few
 * vector compares per block instead of a branch per id. The ids visited
 * and their order are those of the plain loop. */
#define SCAN_BLOCK 16

static inline bool any_above(const float *x, float bound) {
    int any = 0;
    for (int j = 0; j < SCAN_BLOCK; j++)
        any |= x[j] > bound;
    return any != 0;
}

static inline bool any_equal(const float *x, float v) {
    int any = 0;
    for (int j = 0; j < SCAN_BLOCK; j++)
        any |= x[j] == v;
    return any != 0;
}

/* Greedy: the first id with the largest logit; NaN never wins. */
static int32_t argmax(const float *l, int n) {
    int32_t best = -1;
    float bv = -INFINITY;
    int i = 0;
    for (; i + SCAN_BLOCK <= n; i += SCAN_BLOCK) {
        if (!any_above(l + i, bv)) continue; /* nothing here beats bv */
        for (int j = i; j < i + SCAN_BLOCK; j++)
            if (l[j] > bv) {
                bv = l[j];
                best = j;
            }
    }
    for (; i < n; i++) {
        if (l[i] > bv) {
            bv = l[i];
            best = i;
        }
    }
    return best;
}

/* Order of candidates: larger logit first, then smaller id (a total order,
 * so the result never depends on the sort algorithm). */
static int better(const float *l, int32_t a, int32_t b) {
    return l[a] > l[b] || (l[a] == l[b] && a < b);
}

static void sift_down_min(int32_t *h, int n, int i, const float *l) {
    /* min-heap by `better` reversed: the root is the worst kept id */
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && better(l, h[c], h[c + 1])) c++;
        if (!better(l, h[i], h[c])) return;
        int32_t t = h[i];
        h[i] = h[c];
        h[c] = t;
        i = c;
    }
}

/* Sorts a candidate list, best first. */
static void sort_desc(int32_t *ids, int n, const float *l) {
    /* heap sort on the `better` order: build a min-heap, pop to the end */
    for (int i = n / 2 - 1; i >= 0; i--)
        sift_down_min(ids, n, i, l);
    for (int end = n - 1; end > 0; end--) {
        int32_t t = ids[0];
        ids[0] = ids[end];
        ids[end] = t;
        sift_down_min(ids, end, 0, l);
    }
}

/* The k best finite ids (plus any id tied with the k-th, as torch keeps
 * every score >= the k-th) into sp->cand, best first. Returns the count. */
static int best_k(q35_sampler *sp, const float *l, int k) {
    const int n = sp->n_valid;
    int32_t *c = sp->cand;
    int m = 0;
    /* c[0..k) is a heap whose root is the worst of the best k so far */
    int i = 0;
    for (; i < n && m < k; i++) {
        if (!(l[i] > -INFINITY)) continue;
        c[m++] = i;
        if (m == k)
            for (int j = k / 2 - 1; j >= 0; j--)
                sift_down_min(c, k, j, l);
    }
    /* A later id is better than the root only with a larger logit (on a
     * tie the root's smaller id wins), and the root is finite, so a block
     * with nothing above the root's logit changes nothing. */
    for (; i < n; i++) {
        if (i % SCAN_BLOCK == 0 && i + SCAN_BLOCK <= n && !any_above(l + i, l[c[0]])) {
            i += SCAN_BLOCK - 1;
            continue;
        }
        if (!(l[i] > -INFINITY)) continue;
        if (better(l, i, c[0])) {
            c[0] = i;
            sift_down_min(c, k, 0, l);
        }
    }
    if (m == k && k > 0) {
        /* every id tied with the k-th: drop the kept ones equal to it and
         * append all of them in id order (O(n), whatever the ties) */
        const float kth = l[c[0]];
        int kept = 0;
        for (int j = 0; j < k; j++)
            if (l[c[j]] != kth) c[kept++] = c[j];
        m = kept;
        int i = 0;
        for (; i + SCAN_BLOCK <= n; i += SCAN_BLOCK)
            if (any_equal(l + i, kth))
                for (int j = i; j < i + SCAN_BLOCK; j++)
                    if (l[j] == kth) c[m++] = j;
        for (; i < n; i++)
            if (l[i] == kth) c[m++] = i;
    }
    sort_desc(c, m, l);
    return m;
}

/* Weights exp((l - top) / T) of the m candidates into sp->prob; their sum. */
static double weigh(q35_sampler *sp, const float *l, int m, double top) {
    const double inv_t = 1.0 / (double)sp->s.temperature;
    double sum = 0;
    for (int i = 0; i < m; i++) {
        double p = exp(((double)l[sp->cand[i]] - top) * inv_t);
        sp->prob[i] = p;
        sum += p;
    }
    return sum;
}

/* The first candidate whose cumulative weight exceeds u times the kept
 * weight. */
static int32_t draw(q35_sampler *sp, int kept) {
    double mass = 0;
    for (int i = 0; i < kept; i++)
        mass += sp->prob[i];
    const double target = q35_rng_uniform(&sp->rng) * mass;
    double cum = 0;
    for (int i = 0; i < kept; i++) {
        cum += sp->prob[i];
        if (cum > target) return sp->cand[i];
    }
    return sp->cand[kept - 1];
}

/* top-p over candidates sorted best first: the smallest prefix whose
 * weight reaches `limit` (a candidate is kept while the weight before it
 * is below the limit). */
static int nucleus(const q35_sampler *sp, int m, double limit) {
    double before = 0;
    for (int i = 0; i < m; i++) {
        if (before >= limit) return i;
        before += sp->prob[i];
    }
    return m;
}

int32_t q35_sampler_sample(q35_sampler *sp, float *logits, const int32_t *recent, int n_recent) {
    q35_sampler_penalize(sp, logits, recent, n_recent);
    if (sp->matcher && q35_matcher_mask(sp->matcher, logits, sp->n_valid, &sp->mask_err)) return -1;
    const int n = sp->n_valid, k = sp->s.top_k;
    const float *l = logits;
    if (sp->s.temperature <= 0 || k == 1) return argmax(l, n);
    const bool cut_p = sp->s.top_p < 1.0f;

    if (k > 0 && k < n) { /* top-k, then top-p among the k */
        int m = best_k(sp, l, k);
        if (!m) return -1;
        double sum = weigh(sp, l, m, l[sp->cand[0]]);
        return draw(sp, cut_p ? nucleus(sp, m, (double)sp->s.top_p * sum) : m);
    }
    int32_t best = argmax(l, n);
    if (best < 0) return -1;
    if (!cut_p) { /* no cut: every finite id, in id order */
        int m = 0;
        for (int i = 0; i < n; i++)
            if (l[i] > -INFINITY) sp->cand[m++] = i;
        weigh(sp, l, m, l[best]);
        return draw(sp, m);
    }
    /* top-p alone: the nucleus usually holds few ids, so look among the
     * best 256, 1024, ... until they hold top_p of the total weight */
    const double inv_t = 1.0 / (double)sp->s.temperature;
    double total = 0;
    int finite = 0;
    for (int i = 0; i < n; i++)
        if (l[i] > -INFINITY) {
            total += exp(((double)l[i] - l[best]) * inv_t);
            finite++;
        }
    const double limit = (double)sp->s.top_p * total;
    for (int want = 256;; want *= 4) {
        int m = best_k(sp, l, want < finite ? want : finite);
        double sum = weigh(sp, l, m, l[best]);
        if (sum >= limit || m >= finite) return draw(sp, nucleus(sp, m, limit));
    }
}
