/* repack.c — the load-time repacking of Q8_0 / Q4_0 / Q4_K / Q6_K matrices
 * (the layers' Q6_K only where the set's AMX-INT8 tiles read the form:
 * keeps_amx) into the 16-row interleaved forms (kernels/repack_x16.h) that the CPU's default
 * kernel set reads directly, so that few-token matmuls (batched decode,
 * short prefills) stop paying a transpose of every weight per call.
 *
 * Only for models that run on the CPU, only where the set the states will
 * pick (q35_kernels_pick(exact_kernels)) has micro-kernels for the form
 * (other sets, Q35_KERNELS=avx2|generic, the exact mode, see the file's
 * layout), and not with Q35_REPACK=0 (for A/B). The embedding is repacked
 * only when it is also the output head (a lookup gains nothing from it).
 * The repacked copy is the model's (anonymous memory, the same size); the
 * file pages it came from are dropped, so memory_footprint stays the
 * file's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/err.h"
#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "kernels/repack_x16.h"
#include "model/model.h"

/* CPU models only, also not where Q35_DEVICE=cuda will move the states to
 * the GPU (forward/backend.c reads it; the upload takes the file's layout). */
static bool repack_wanted(const q35_model *m) {
    const char *v = getenv("Q35_REPACK"), *dev = getenv("Q35_DEVICE");
    if (dev && !strcmp(dev, "cuda")) return false;
    return m->device == Q35_DEVICE_CPU && !(v && !strcmp(v, "0"));
}

/* The old bytes' pages in a weight file (if that is where they are). */
static void drop_pages(q35_model *m, const void *p, size_t n) {
    for (int i = 0; i < m->n_files; i++) {
        const unsigned char *base = m->files[i].data;
        if (!base || (const unsigned char *)p < base ||
            (const unsigned char *)p >= base + m->files[i].size)
            continue;
        q35_mapped_file_drop_pages(p, n);
        m->files[i].dropped += n;
        return;
    }
}

/* Transparent huge pages for a new form, where the kernel gives them on
 * request (THP "madvise"), unless Q35_REPACK_HUGE=0: the decode's reads
 * of the forms miss the TLB less (llama-Q4_K_M tg, 4 alternations on the
 * loaded 2-core VM: 11.0-11.5 -> 12.1-15.8 tok/s). The cost is at load, and
 * on this VM it is the host's: fresh 2 MB pages are cleared (perf:
 * clear_page_erms a third of a 1-token bench) on memory the host backs
 * anew, so the load line went from 0.43-0.53 s to 1.1-1.45 s in that run
 * (0.26 -> 0.20-0.36 s at another time). Only the whole 2 MB pages inside
 * the buffer; a refusal changes nothing but the speed. */
static void want_huge_pages(void *p, size_t n) {
    const char *v = getenv("Q35_REPACK_HUGE");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (v && !strcmp(v, "0")) return;
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + n) & ~(huge - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
    (void)v;
    (void)p;
    (void)n;
#endif
}

typedef struct pack_job {
    const q35_tensor *t;
    uint8_t *dst;
    q35_x16_pack_fn pack;
} pack_job;

static void pack_groups(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const pack_job *j = ctx;
    j->pack(j->t->dtype, j->t->data, j->t->shape[0], j->t->shape[1], begin, end, j->dst);
}

/* Whether the form keeps what the set does with the file's dtype at many
 * tokens: a set that sends `base` to AMX-INT8 tiles from some T
 * (q8_only_from) must send the form there too, or the prefill of that
 * matrix would run the x16 VNNI kernel instead of AMX. (Without AMX the
 * form wins at every T: Q35_KERNELS=avx512, llama-Q4_K_M with the layers'
 * Q6_K repacked or not, pp512 122 / 125 vs 109 / 118 tok/s, tg 13.6 /
 * 11.7 vs 10.8 / 11.3, alternating, load ~4.5.) */
static bool keeps_amx(const q35_kernels *k, q35_dtype base) {
    if (!k->q8_only_from || k->q8_only_from(base) == 0) return true;
    return k->q8_only_from(q35_dtype_x16_of(base)) > 0;
}

/* The form the set's integer micro-kernels read for a matrix of `base`,
 * or Q35_DT_COUNT (keep the file's layout). The one place that picks a
 * form: another one (an 8-row form for AVX2, say) is chosen here, by
 * whether the set has micro-kernels for it, with its own pack below. */
static q35_dtype form_of(const q35_i8_kernels *k8, q35_dtype base) {
    const q35_dtype x = q35_dtype_x16_of(base);
    return x != Q35_DT_COUNT && q35_i8_has(&k8->mk[x]) ? x : Q35_DT_COUNT;
}

static int repack_one(q35_model *m, q35_tensor *t, const q35_i8_kernels *k8, q35_threadpool *pool,
                      q35_x16_pack_fn pack, const char *what, q35_err *e) {
    const q35_dtype x = form_of(k8, t->dtype);
    if (!t->data || t->ndim != 2 || x == Q35_DT_COUNT) return Q35_OK;
    const int64_t rows = t->shape[0], cols = t->shape[1];
    if (cols % q35_dtype_block_elems(t->dtype) || rows < 1) return Q35_OK;
    uint8_t *dst = q35_model_alloc(m, q35_x16_bytes(t->dtype, rows, cols));
    if (!dst) return q35_err_set(e, Q35_ENOMEM, "out of memory repacking %s", what);
    want_huge_pages(dst, q35_x16_bytes(t->dtype, rows, cols));
    pack_job j = {t, dst, pack};
    q35_threadpool_for(pool, (rows + Q35_X16_ROWS - 1) / Q35_X16_ROWS, 64, pack_groups, &j);
    drop_pages(m, t->data, q35_tensor_bytes(t));
    q35_model_release(m, t->data); /* a converted buffer (no-op for a file map) */
    t->data = dst;
    t->dtype = x;
    return Q35_OK;
}

int q35_model_repack(q35_model *m, q35_err *e) {
    if (!repack_wanted(m)) return Q35_OK;
    const q35_kernels *k = q35_kernels_pick(m->exact_kernels);
    if (!k->i8 ||
        (!q35_i8_has(&k->i8->mk[Q35_DT_Q8_0_X16]) && !q35_i8_has(&k->i8->mk[Q35_DT_Q4_0_X16])))
        return Q35_OK;
    q35_tensor **mats = malloc(Q35_MAX_MATRICES * sizeof *mats);
    char(*names)[32] = malloc(Q35_MAX_MATRICES * sizeof *names);
    if (!mats || !names) {
        free(mats);
        free(names);
        return q35_err_set(e, Q35_ENOMEM, "out of memory");
    }
    const int n = q35_model_matrices(m, mats, names);
    const bool tied = m->lm_head.data == m->embed.data;
    q35_threadpool *pool = m->n_threads > 1 ? q35_threadpool_new(m->n_threads, NULL) : NULL;
    const q35_x16_pack_fn pack = q35_x16_pack_pick();
    int rc = Q35_OK;
    for (int i = 0; i < n && !rc; i++) {
        const bool head = mats[i] == &m->lm_head || (tied && mats[i] == &m->embed);
        if (mats[i] == &m->embed && !tied) continue;
        /* the head multiplies a few tokens (logits): its form whatever
         * AMX-INT8 reads; the layers' matrices only where their prefill
         * keeps it */
        if (!head && !keeps_amx(k, mats[i]->dtype)) continue;
        rc = repack_one(m, mats[i], k->i8, pool, pack, names[i], e);
    }
    if (!rc && tied) m->lm_head = m->embed; /* the list held the shared matrix once */
    q35_threadpool_free(pool);
    free(mats);
    free(names);
    return rc;
}
