/* threadpool.h — a small persistent pool of worker threads that runs
 * parallel-for loops over index ranges. One pool belongs to one owner (a
 * q35_state), so several sequences can compute at once on one model without
 * sharing anything mutable. The calling thread works too: a pool of n
 * threads starts n-1 workers.
 *
 * A loop is cut into chunks of a fixed size chosen by the caller, never by
 * the number of threads, so what each chunk computes (and therefore every
 * floating-point result) is the same whatever the pool size. */
#ifndef Q35_CORE_THREADPOOL_H
#define Q35_CORE_THREADPOOL_H

#include <stdint.h>

#include "q35.h"

typedef struct q35_threadpool q35_threadpool;

/* Work on [begin, end) by thread `tid` (0 = the caller, < pool size). */
typedef void (*q35_range_fn)(void *ctx, int64_t begin, int64_t end, int tid);

/* A pool of n_threads (>= 1) threads, the caller included. Returns NULL and
 * fills e when threads cannot be started. Caller frees with
 * q35_threadpool_free. */
q35_threadpool *q35_threadpool_new(int n_threads, q35_err *e);

/* Stops and joins the workers. NULL is a no-op. */
void q35_threadpool_free(q35_threadpool *p);

int q35_threadpool_size(const q35_threadpool *p);

/* Calls fn over [0, n) in chunks of `chunk` (>= 1) indices, spread over the
 * pool's threads, and returns when all are done. Only the owner thread may
 * call it, and fn must not call it again (no nesting). p may be NULL: then
 * everything runs on the caller. */
void q35_threadpool_for(q35_threadpool *p, int64_t n, int64_t chunk, q35_range_fn fn, void *ctx);

#endif
