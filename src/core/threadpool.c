/* threadpool.c — persistent workers for q35_threadpool_for.
 *
 * Decode runs a few hundred short parallel loops per token, so waking
 * workers through a condition variable every time would cost more than the
 * work. Workers therefore spin on a generation counter for a short while
 * after each loop and only then sleep on the condition variable; the owner
 * does the same while it waits for the last worker. Chunks are handed out
 * through an atomic counter, so a core that another process slows down
 * simply takes fewer chunks. */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/err.h"

/* Waiting: Q35_POOL_SPIN pause iterations (a few microseconds), then up to
 * Q35_POOL_YIELD sched_yield calls (which let a descheduled sibling run when
 * there are more threads than free cores), then sleep. */
#define Q35_POOL_SPIN 2000
#define Q35_POOL_YIELD 200

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
    pthread_cond_t cv_work; /* gen changed */
    pthread_cond_t cv_done; /* active reached 0 */

    /* The current loop; written by the owner before gen is bumped. */
    q35_range_fn fn;
    void *ctx;
    int64_t n_items, chunk, n_chunks;
    atomic_int_fast64_t next_chunk;
    atomic_int active; /* workers not yet finished with the current loop */
    atomic_uint gen;   /* bumped once per loop */
    atomic_bool stop;
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

static void run_chunks(q35_threadpool *p, int tid) {
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&p->next_chunk, 1, memory_order_relaxed);
        if (c >= p->n_chunks) break;
        int64_t b = c * p->chunk;
        int64_t e = b + p->chunk < p->n_items ? b + p->chunk : p->n_items;
        p->fn(p->ctx, b, e, tid);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    q35_threadpool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int spin = 0; g == seen && spin < Q35_POOL_SPIN + Q35_POOL_YIELD; spin++) {
            backoff(spin);
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->cv_work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        run_chunks(p, w->tid);
        if (atomic_fetch_sub_explicit(&p->active, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Publishes a new generation to the workers (the loop fields or stop must be
 * written before). The bump happens under the mutex so that a worker about
 * to sleep cannot miss it. */
static void wake_workers(q35_threadpool *p) {
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
}

q35_threadpool *q35_threadpool_new(int n_threads, q35_err *e) {
    if (n_threads < 1) n_threads = 1;
    q35_threadpool *p = calloc(1, sizeof *p);
    if (!p) {
        q35_err_set(e, Q35_ENOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n = n_threads;
    atomic_init(&p->next_chunk, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->stop, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
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
        atomic_store_explicit(&p->stop, true, memory_order_release);
        wake_workers(p);
        for (int i = 0; i < p->n_started; i++)
            pthread_join(p->threads[i], NULL);
    }
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_work);
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
    p->n_chunks = n_chunks;
    atomic_store_explicit(&p->next_chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&p->active, p->n_started, memory_order_relaxed);
    wake_workers(p);
    run_chunks(p, 0);
    for (int spin = 0; spin < Q35_POOL_SPIN + Q35_POOL_YIELD; spin++) {
        if (atomic_load_explicit(&p->active, memory_order_acquire) == 0) return;
        backoff(spin);
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->active, memory_order_acquire) != 0)
        pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
