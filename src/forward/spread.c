/* spread.c — the forward pass's elementwise work over a whole chunk of
 * tokens (the MLP's silu(gate) * up, the residual adds, the q8 rounding of
 * every matmul input) spread over the state's threads. Run on the owner
 * thread alone, these left the other threads idle between the matmuls:
 * ~10% of a 74-token prefill's samples (perf, 2 threads).
 *
 * The results are the same bits as one call over the whole range: flat
 * ranges are cut at multiples of SPREAD_ALIGN elements (every set's
 * vector loop restarts at its first element, and only the last piece has
 * the tail the single call had), q8 rows are rounded one row at a time
 * either way. Small ranges (decode) stay on the caller. */
#include "forward/forward.h"
#include "kernels/microkernel.h"

/* Elements per piece boundary: a multiple of every set's vector width. */
#define SPREAD_ALIGN 64
/* Below this many elements the work stays on the caller (a loop through
 * the pool costs a few microseconds). */
#define SPREAD_MIN 16384

typedef struct spread_job {
    const q35_kernels *k;
    float *out, *y;
    const float *a, *b;
    float alpha;
    uint8_t *q8;
    int64_t cols;
    size_t ldq8;
} spread_job;

/* Pieces of n elements: the count a pool of `threads` balances. */
static int64_t piece(int64_t n, int threads) {
    int64_t p = (n + 2 * threads - 1) / (2 * threads);
    return (p + SPREAD_ALIGN - 1) / SPREAD_ALIGN * SPREAD_ALIGN;
}

static bool spreads(const q35_state *s, int64_t n) {
    return s->pool && q35_threadpool_size(s->pool) > 1 && n >= SPREAD_MIN;
}

static void silu_mul_range(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    const spread_job *j = ctx;
    j->k->silu_mul(j->out + i0, j->a + i0, j->b + i0, (int)(i1 - i0));
}

void q35_spread_silu_mul(q35_state *s, float *out, const float *gate, const float *up, int64_t n) {
    if (!spreads(s, n)) {
        s->k->silu_mul(out, gate, up, (int)n);
        return;
    }
    spread_job j = {.k = s->k, .out = out, .a = gate, .b = up};
    q35_threadpool_for(s->pool, n, piece(n, q35_threadpool_size(s->pool)), silu_mul_range, &j);
}

static void axpy_range(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    const spread_job *j = ctx;
    j->k->axpy(j->y + i0, j->alpha, j->a + i0, (int)(i1 - i0));
}

void q35_spread_axpy(q35_state *s, float *y, float a, const float *x, int64_t n) {
    if (!spreads(s, n)) {
        s->k->axpy(y, a, x, (int)n);
        return;
    }
    spread_job j = {.k = s->k, .y = y, .a = x, .alpha = a};
    q35_threadpool_for(s->pool, n, piece(n, q35_threadpool_size(s->pool)), axpy_range, &j);
}

static void quantize_rows(void *ctx, int64_t t0, int64_t t1, int tid) {
    (void)tid;
    const spread_job *j = ctx;
    j->k->i8->quantize(j->a + t0 * j->cols, j->cols, (int)(t1 - t0), j->cols,
                       j->q8 + (size_t)t0 * j->ldq8);
}

q35_acts q35_state_acts(q35_state *s, const float *x, int T, int64_t cols) {
    const q35_kernels *k = s->k;
    /* only the q8 rows (no float form of the set's): those, a row range
     * per thread, exactly where q35_acts_prepare_for puts them */
    if (k->i8 && cols % Q35_Q8_BLOCK == 0 && T > 1 && spreads(s, (int64_t)T * cols) &&
        q35_acts_bytes_for(k, T, cols, s->mm_dtypes) == (size_t)T * q35_q8_row_stride(cols)) {
        size_t ld = q35_q8_row_stride(cols);
        spread_job j = {.k = k, .a = x, .q8 = s->sc.packed, .cols = cols, .ldq8 = ld};
        int threads = q35_threadpool_size(s->pool);
        q35_threadpool_for(s->pool, T, (T + 2 * threads - 1) / (2 * threads), quantize_rows, &j);
        q35_acts a = {x, cols, cols, T, NULL, s->sc.packed, ld};
        return a;
    }
    return q35_acts_prepare_for(k, x, cols, T, cols, s->sc.packed, s->mm_dtypes);
}
