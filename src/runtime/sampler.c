/* sampler.c — padding mask, repetition penalty, temperature, top-k, top-p
 * and the draw (SPEC §6). The mask is a bound on the ids considered rather
 * than a write into the row. Top-k keeps a min-heap of the k best logits in
 * one pass over the vocabulary, then admits every id tied with the k-th, as
 * transformers' TopKLogitsWarper does; only the survivors are sorted and
 * exponentiated, so a token costs one pass over the row plus O(k log k). */
#include <math.h>
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

/* Greedy: the first id with the largest logit; NaN never wins. */
static int32_t argmax(const float *l, int n) {
    int32_t best = -1;
    float bv = -INFINITY;
    for (int i = 0; i < n; i++) {
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

/* Sorts the (small) candidate list, best first. */
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

/* Candidates after top-k: the k best ids, plus any id tied with the k-th.
 * Without a cut, every finite id. Returns the count (0 if none finite). */
static int top_k_candidates(q35_sampler *sp, const float *l) {
    const int n = sp->n_valid;
    int k = sp->s.top_k;
    int32_t *c = sp->cand;
    int m = 0;
    if (k <= 0 || k >= n) {
        for (int i = 0; i < n; i++)
            if (l[i] > -INFINITY) c[m++] = i;
        return m;
    }
    /* c[0..k) is a heap whose root is the worst of the best k so far */
    for (int i = 0; i < n; i++) {
        if (!(l[i] > -INFINITY)) continue;
        if (m < k) {
            c[m++] = i;
            if (m == k)
                for (int j = k / 2 - 1; j >= 0; j--)
                    sift_down_min(c, k, j, l);
        } else if (better(l, i, c[0])) {
            c[0] = i;
            sift_down_min(c, k, 0, l);
        }
    }
    if (m < k) return m;
    const float kth = l[c[0]];
    /* ids tied with the k-th logit are kept too (torch: scores < kth removed) */
    for (int i = 0; i < n; i++) {
        if (l[i] != kth) continue;
        int dup = 0;
        for (int j = 0; j < k && !dup; j++)
            dup = c[j] == i;
        if (!dup) c[m++] = i;
    }
    return m;
}

int32_t q35_sampler_sample(q35_sampler *sp, float *logits, const int32_t *recent, int n_recent) {
    q35_sampler_penalize(sp, logits, recent, n_recent);
    if (sp->s.temperature <= 0 || sp->s.top_k == 1) return argmax(logits, sp->n_valid);

    int m = top_k_candidates(sp, logits);
    if (m == 0) return -1;
    sort_desc(sp->cand, m, logits);

    /* softmax at the temperature, in double, relative to the best logit */
    const double inv_t = 1.0 / (double)sp->s.temperature;
    const double top = logits[sp->cand[0]];
    double sum = 0;
    for (int i = 0; i < m; i++) {
        double p = exp(((double)logits[sp->cand[i]] - top) * inv_t);
        sp->prob[i] = p;
        sum += p;
    }
    /* top-p: keep the smallest prefix whose mass reaches top_p (an id is
     * kept when the mass before it is below top_p) */
    int kept = m;
    if (sp->s.top_p < 1.0f) {
        const double limit = (double)sp->s.top_p * sum;
        double before = 0;
        for (int i = 0; i < m; i++) {
            if (before >= limit) {
                kept = i;
                break;
            }
            before += sp->prob[i];
        }
    }
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
