/* requant.c — converting a loaded model's matrices to Q8_0 or Q4_0
 * (q35_load_opts.weights), for checkpoints published in bf16: decode is
 * memory-bound, and 8-bit weights halve (4-bit: quarter) the bytes every
 * token reads. The conversion is q35_ggml_quantize's, so a model quantized
 * here computes what the same model converted by `q35 convert` (or by
 * llama-quantize from the same float32 values) computes.
 *
 * Matrices already in the target type (a GGUF's Q4_0 blocks) and those that
 * cannot be converted (columns not a multiple of 32) stay where they are,
 * in a file map if that is where they were. The pages of converted
 * tensors are dropped as they go, and files nothing points into any more
 * are unmapped, so memory_footprint and the process's resident memory are
 * the converted model's, not the source's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/threadpool.h"
#include "formats/gguf_quants.h"
#include "model/model.h"

static bool in_file(const q35_mapped_file *f, const void *p) {
    const unsigned char *base = f->data;
    return base && p && (const unsigned char *)p >= base &&
           (const unsigned char *)p < base + f->size;
}

static bool file_in_use(const q35_model *m, q35_tensor *const *mats, int n_mats,
                        const q35_mapped_file *f) {
    for (int i = 0; i < n_mats; i++)
        if (in_file(f, mats[i]->data)) return true;
    for (int i = 0; i < m->n_extra; i++)
        if (in_file(f, m->extra[i].t.data)) return true;
    return false;
}

/* Drops the resident pages of a converted tensor's old bytes in a weight
 * file: without this, converting a 1.5 GB bf16 checkpoint would peak at the
 * whole file plus the result, since every page read stays mapped until the
 * file is unmapped at the end. */
static void drop_pages(q35_model *m, const void *p, size_t n) {
    for (int i = 0; i < m->n_files; i++) {
        if (!in_file(&m->files[i], p)) continue;
        q35_mapped_file_drop_pages(p, n);
        m->files[i].dropped += n; /* memory_footprint no longer counts them */
        return;
    }
}

/* Rows are independent: the model's threads convert them in parallel
 * (conversion otherwise costs ~2.5 s per start for the 0.8B at one thread). */
typedef struct convert_job {
    const q35_tensor *t;
    uint32_t gtype;
    unsigned char *dst;
    size_t rb;
    float *rows; /* one row buffer of `widest` floats per thread */
    int64_t widest;
    int *rc;       /* per thread: the first failure */
    q35_err *errs; /* per thread */
} convert_job;

static void convert_rows(void *ctx, int64_t begin, int64_t end, int tid) {
    convert_job *j = ctx;
    float *row = j->rows + (size_t)tid * (size_t)j->widest;
    for (int64_t r = begin; r < end && !j->rc[tid]; r++) {
        int rc = q35_tensor_row_to_f32(j->t, r, row, &j->errs[tid]);
        if (!rc)
            rc = q35_ggml_quantize(j->gtype, row, j->dst + (size_t)r * j->rb, j->t->shape[1],
                                   &j->errs[tid]);
        j->rc[tid] = rc;
    }
}

static int convert(q35_model *m, q35_tensor *t, q35_dtype target, q35_threadpool *pool,
                   convert_job *job, const char *what, q35_err *e) {
    if (!t->data || t->dtype == target) return Q35_OK;
    const int64_t rows = t->shape[0], cols = t->shape[1];
    if (cols % Q35_QBLOCK) return Q35_OK; /* stays as it is */
    const size_t rb = q35_row_bytes(target, cols);
    unsigned char *dst = q35_model_alloc(m, (size_t)rows * rb);
    if (!dst) return q35_err_set(e, Q35_ENOMEM, "out of memory quantizing %s", what);
    job->t = t;
    job->gtype = target == Q35_DT_Q8_0 ? Q35_GGML_Q8_0 : Q35_GGML_Q4_0;
    job->dst = dst;
    job->rb = rb;
    q35_threadpool_for(pool, rows, 64, convert_rows, job);
    const int n = pool ? q35_threadpool_size(pool) : 1;
    for (int i = 0; i < n; i++) {
        if (job->rc[i]) {
            if (e) *e = job->errs[i];
            return job->rc[i];
        }
    }
    drop_pages(m, t->data, q35_tensor_bytes(t));
    q35_model_release(m, t->data); /* a converted buffer (no-op for a file map) */
    t->data = dst;
    t->dtype = target;
    return Q35_OK;
}

int q35_model_requantize(q35_model *m, q35_dtype target, q35_err *e) {
    if (target != Q35_DT_Q8_0 && target != Q35_DT_Q4_0)
        return q35_err_set(e, Q35_EINVAL, "requantize: target must be q8_0 or q4_0");
    q35_tensor **mats = malloc(Q35_MAX_MATRICES * sizeof *mats);
    char(*names)[32] = malloc(Q35_MAX_MATRICES * sizeof *names);
    if (!mats || !names) {
        free(mats);
        free(names);
        return q35_err_set(e, Q35_ENOMEM, "out of memory");
    }
    const int n_mats = q35_model_matrices(m, mats, names);
    int64_t widest = 0;
    for (int i = 0; i < n_mats; i++)
        if (mats[i]->shape[1] > widest) widest = mats[i]->shape[1];
    /* A pool for the conversion only; without threads it runs on the caller. */
    q35_threadpool *pool = m->n_threads > 1 ? q35_threadpool_new(m->n_threads, NULL) : NULL;
    const int n = pool ? q35_threadpool_size(pool) : 1;
    convert_job job = {.widest = widest};
    job.rows = malloc((size_t)n * (size_t)widest * sizeof *job.rows);
    job.rc = calloc((size_t)n, sizeof *job.rc);
    job.errs = calloc((size_t)n, sizeof *job.errs);
    int rc = job.rows && job.rc && job.errs ? Q35_OK : q35_err_set(e, Q35_ENOMEM, "out of memory");
    const bool tied = m->lm_head.data == m->embed.data;
    for (int i = 0; i < n_mats && !rc; i++)
        rc = convert(m, mats[i], target, pool, &job, names[i], e);
    if (!rc && tied) m->lm_head = m->embed; /* the list held the shared matrix once */
    free(job.rows);
    free(job.rc);
    free(job.errs);
    q35_threadpool_free(pool);
    free(names);
    if (rc) {
        free(mats);
        return rc;
    }
    /* Unmap the files nothing points into any more (all of them, unless
     * some matrix stayed as it was or mtp.* tensors are kept). */
    int kept = 0;
    for (int f = 0; f < m->n_files; f++) {
        if (file_in_use(m, mats, n_mats, &m->files[f]))
            m->files[kept++] = m->files[f];
        else
            q35_mapped_file_close(&m->files[f]);
    }
    free(mats);
    m->n_files = kept;
    if (!kept) {
        free(m->files);
        m->files = NULL;
    }
    return Q35_OK;
}
