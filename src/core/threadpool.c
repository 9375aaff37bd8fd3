/* threadpool.c — persistent workers for q35_threadpool_for.
 *
 * Decode runs a few hundred short parallel loops per token, so waking
 * workers through a condition variable every time would cost more than the
 * work. Workers therefore poll a generation counter for a short while after
 * each loop (spinning, then yielding) and only then sleep on a condition
 * variable.
 *
 * Chunks are claimed with a compare-and-swap on one 64-bit ticket holding
 * (generation, chunk count, next chunk), and the owner waits for the count
 * of finished chunks, not for the workers: a worker that another process
 * keeps off its core simply claims nothing, and never stalls a loop it did
 * not join. A claim can only succeed on the ticket of the loop in progress,
 * and that loop cannot end (nor its fields change) before the claimed chunk
 * is done, so a worker reads the loop's fields only after a claim. */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/err.h"

/* Polling before sleeping: Q35_POOL_SPIN pause iterations (a few
 * microseconds), then Q35_POOL_YIELD sched_yield calls. */
#define Q35_POOL_SPIN 2000
#define Q35_POOL_YIELD 200

/* Ticket layout: generation (22 bits) | chunk count (21) | next chunk (21). */
#define IDX_BITS 21
#define IDX_MASK ((UINT64_C(1) << IDX_BITS) - 1)
#define MAX_CHUNKS ((int64_t)IDX_MASK)

typedef struct worker {
    q35_threadpool *pool;
    int tid;
} worker;

struct q35_threadpool {
    int n; /* threads, the owner included */
    pthread_t *threads;
    worker *workers;
    int n_started;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* gen changed */
    atomic_int n_sleeping;
    atomic_uint gen; /* bumped once per loop (and to stop) */
    atomic_bool stop;

    /* The loop in progress; written by the owner before its ticket. */
    q35_range_fn fn;
    void *ctx;
    int64_t n_items, chunk;
    _Atomic uint64_t ticket;
    atomic_int_fast64_t done; /* finished chunks */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Pauses between polls: busy at first, then yielding the core. */
static inline void backoff(int iter) {
    if (iter < Q35_POOL_SPIN)
        cpu_relax();
    else
        sched_yield();
}

/* Claims and runs chunks of the loop in progress until none is left. */
static void run_chunks(q35_threadpool *p, int tid) {
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        uint64_t next = t & IDX_MASK, count = (t >> IDX_BITS) & IDX_MASK;
        if (next >= count) return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        int64_t b = (int64_t)next * p->chunk;
        int64_t e = b + p->chunk < p->n_items ? b + p->chunk : p->n_items;
        p->fn(p->ctx, b, e, tid);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    q35_threadpool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load(&p->gen);
        for (int i = 0; g == seen && i < Q35_POOL_SPIN + Q35_POOL_YIELD; i++) {
            backoff(i);
            g = atomic_load(&p->gen);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while ((g = atomic_load(&p->gen)) == seen)
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load(&p->stop)) return NULL;
        run_chunks(p, w->tid);
    }
}

/* Bumps the generation; wakes sleepers only if there are any (the
 * sequentially consistent store/load pair against the worker's
 * increment/recheck means one side always sees the other). */
static void publish(q35_threadpool *p) {
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

q35_threadpool *q35_threadpool_new(int n_threads, q35_err *e) {
    if (n_threads < 1) n_threads = 1;
    q35_threadpool *p = calloc(1, sizeof *p);
    if (!p) {
        q35_err_set(e, Q35_ENOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n = n_threads;
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads == 1) return p;
    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
    if (!p->threads || !p->workers) {
        q35_err_set(e, Q35_ENOMEM, "thread pool: out of memory");
        q35_threadpool_free(p);
        return NULL;
    }
    for (int i = 0; i < n_threads - 1; i++) {
        p->workers[i] = (worker){p, i + 1};
        if (pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]) != 0) {
            q35_err_set(e, Q35_ENOMEM, "thread pool: cannot start thread %d of %d", i + 2,
                        n_threads);
            q35_threadpool_free(p);
            return NULL;
        }
        p->n_started++;
    }
    return p;
}

void q35_threadpool_free(q35_threadpool *p) {
    if (!p) return;
    if (p->n_started > 0) {
        atomic_store(&p->stop, true);
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add(&p->gen, 1);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_started; i++)
            pthread_join(p->threads[i], NULL);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->workers);
    free(p);
}

int q35_threadpool_size(const q35_threadpool *p) {
    return p ? p->n : 1;
}

void q35_threadpool_for(q35_threadpool *p, int64_t n, int64_t chunk, q35_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if ((n + chunk - 1) / chunk > MAX_CHUNKS) chunk = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    int64_t n_chunks = (n + chunk - 1) / chunk;
    if (!p || p->n_started == 0 || n_chunks == 1) {
        for (int64_t b = 0; b < n; b += chunk)
            fn(ctx, b, b + chunk < n ? b + chunk : n, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n;
    p->chunk = chunk;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint64_t gen_bits = ((uint64_t)atomic_load(&p->gen) + 1) & ((UINT64_C(1) << 22) - 1);
    atomic_store_explicit(&p->ticket,
                          (gen_bits << (2 * IDX_BITS)) | ((uint64_t)n_chunks << IDX_BITS),
                          memory_order_release);
    publish(p);
    run_chunks(p, 0);
    for (int i = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n_chunks; i++)
        backoff(i);
}
