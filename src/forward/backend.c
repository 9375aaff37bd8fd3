/* backend.c — which backend a new state gets (see backend.h), and
 * q35_cuda_device_count. The CUDA backend is linked in when the build
 * found nvcc (Q35_HAVE_CUDA); without it, asking for it is an error. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "forward/backend.h"
#include "forward/forward.h"
#ifdef Q35_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

q35_device q35_backend_device(const q35_model *m) {
    const char *env = getenv("Q35_DEVICE");
    if (env && !strcmp(env, "cuda")) return Q35_DEVICE_CUDA;
    if (env && !strcmp(env, "cpu")) return Q35_DEVICE_CPU;
    return m->device;
}

const q35_backend *q35_backend_for(q35_device device, bool *missing, q35_err *e) {
    *missing = false;
    if (device == Q35_DEVICE_CPU) return NULL;
    if (device != Q35_DEVICE_CUDA) {
        *missing = true;
        q35_err_set(e, Q35_EINVAL, "q35_state_new: unknown device %d", (int)device);
        return NULL;
    }
#ifdef Q35_HAVE_CUDA
    if (q35_cuda_device_count() > 0) return &q35_cuda_backend;
    *missing = true;
    q35_err_set(e, Q35_EINVAL, "q35_state_new: device cuda asked for, but no CUDA GPU is visible");
#else
    *missing = true;
    q35_err_set(e, Q35_EINVAL,
                "q35_state_new: device cuda asked for, but q35 was built without "
                "CUDA (configure with nvcc on the PATH, -DQ35_CUDA=ON)");
#endif
    return NULL;
}

#ifndef Q35_HAVE_CUDA
int q35_cuda_device_count(void) {
    return 0;
}
#endif

int q35_state_decode_greedy(const q35_model *m, q35_state *s, int32_t id, int n_vocab,
                            int32_t *next, q35_err *e) {
    if (!m || !s || !next)
        return q35_err_set(e, Q35_EINVAL, "q35_state_decode_greedy: no model, state or output");
    if (n_vocab < 1 || n_vocab > m->cfg.vocab_size)
        return q35_err_set(e, Q35_EINVAL, "q35_state_decode_greedy: n_vocab %d is outside 1..%d",
                           n_vocab, m->cfg.vocab_size);
    if (!s->be) { /* the CPU: logits, then the argmax here */
        float *logits = malloc((size_t)m->cfg.vocab_size * sizeof *logits);
        if (!logits) return q35_err_set(e, Q35_ENOMEM, "q35_state_decode_greedy: out of memory");
        int rc = q35_state_eval(m, s, &id, 1, logits, false, e);
        if (!rc) {
            int best = 0;
            for (int i = 1; i < n_vocab; i++)
                if (logits[i] > logits[best]) best = i;
            *next = best;
        }
        free(logits);
        return rc;
    }
    if (s->model != m || s->model_generation != m->generation || !m->loaded)
        return q35_err_set(e, Q35_ESTATE, "q35_state_decode_greedy: the state is not of this load");
    if (id < 0 || id >= m->cfg.vocab_size)
        return q35_err_set(e, Q35_EINVAL,
                           "q35_state_decode_greedy: id %d is outside the vocabulary", id);
    if (s->pos >= s->n_ctx)
        return q35_err_set(e, Q35_EOVERFLOW, "q35_state_decode_greedy: the state is full (%d)",
                           s->n_ctx);
    int rc = s->be->decode_greedy(s->be_state, s->pos, id, n_vocab, next, e);
    if (!rc) s->pos++;
    return rc;
}

int q35_states_decode_greedy(const q35_model *m, q35_state *const *states, const int32_t *ids,
                             int n, int n_vocab, int32_t *next, q35_err *e) {
    enum { MAXN = 64 };
    if (!m || !states || !ids || !next || n < 1)
        return q35_err_set(e, Q35_EINVAL, "q35_states_decode_greedy: no model, states or ids");
    if (n_vocab < 1 || n_vocab > m->cfg.vocab_size)
        return q35_err_set(e, Q35_EINVAL, "q35_states_decode_greedy: n_vocab %d is outside 1..%d",
                           n_vocab, m->cfg.vocab_size);
    bool batch = n > 1 && n <= MAXN && states[0] && states[0]->be && states[0]->be->decode_batch;
    for (int i = 0; i < n; i++) {
        const q35_state *s = states[i];
        if (!s) return q35_err_set(e, Q35_EINVAL, "q35_states_decode_greedy: state %d is NULL", i);
        if (s->be && (s->model != m || s->model_generation != m->generation || !m->loaded))
            return q35_err_set(e, Q35_ESTATE,
                               "q35_states_decode_greedy: state %d is not of this load", i);
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return q35_err_set(e, Q35_EINVAL,
                               "q35_states_decode_greedy: id %d (state %d) is outside the "
                               "vocabulary",
                               ids[i], i);
        if (s->pos >= s->n_ctx)
            return q35_err_set(e, Q35_EOVERFLOW, "q35_states_decode_greedy: state %d is full (%d)",
                               i, s->n_ctx);
        for (int j = 0; j < i; j++)
            if (states[j] == s)
                return q35_err_set(e, Q35_EINVAL,
                                   "q35_states_decode_greedy: state %d is also state %d", i, j);
        if (s->be != states[0]->be) batch = false;
    }
    if (!batch) { /* one after the other */
        for (int i = 0; i < n; i++) {
            int rc = q35_state_decode_greedy(m, states[i], ids[i], n_vocab, &next[i], e);
            if (rc) return rc;
        }
        return Q35_OK;
    }
    void *bs[MAXN];
    int pos[MAXN];
    for (int i = 0; i < n; i++) {
        bs[i] = states[i]->be_state;
        pos[i] = states[i]->pos;
    }
    int rc = states[0]->be->decode_batch(bs, pos, ids, n, n_vocab, next, e);
    if (!rc)
        for (int i = 0; i < n; i++)
            states[i]->pos++;
    return rc;
}

int q35_state_decode_sample(const q35_model *m, q35_state *s, int32_t id, const q35_sampling *smp,
                            int n_valid, const int32_t *recent, int n_recent, double u,
                            int32_t *next, float *logits, q35_err *e) {
    if (!m || !s || !smp || !next || !logits || (n_recent > 0 && !recent))
        return q35_err_set(e, Q35_EINVAL, "q35_state_decode_sample: a missing argument");
    if (n_valid < 1 || n_valid > m->cfg.vocab_size)
        return q35_err_set(e, Q35_EINVAL, "q35_state_decode_sample: n_valid %d is outside 1..%d",
                           n_valid, m->cfg.vocab_size);
    if (!(u >= 0.0 && u < 1.0))
        return q35_err_set(e, Q35_EINVAL, "q35_state_decode_sample: u must be in [0, 1)");
    int w = smp->repetition_window;
    if (smp->repetition_penalty == 1.0f || w <= 0) n_recent = 0;
    if (n_recent > w) {
        recent += n_recent - w;
        n_recent = w;
    }
    if (!s->be) { /* the CPU: the caller samples */
        int rc = q35_state_eval(m, s, &id, 1, logits, false, e);
        if (!rc) *next = -1;
        return rc;
    }
    if (s->model != m || s->model_generation != m->generation || !m->loaded)
        return q35_err_set(e, Q35_ESTATE, "q35_state_decode_sample: the state is not of this load");
    if (id < 0 || id >= m->cfg.vocab_size)
        return q35_err_set(e, Q35_EINVAL,
                           "q35_state_decode_sample: id %d is outside the vocabulary", id);
    if (s->pos >= s->n_ctx)
        return q35_err_set(e, Q35_EOVERFLOW, "q35_state_decode_sample: the state is full (%d)",
                           s->n_ctx);
    q35_backend_sampling b = {smp->temperature, smp->top_p, smp->repetition_penalty,
                              smp->top_k,       n_valid,    recent,
                              n_recent,         u};
    int rc = s->be->decode_sample(s->be_state, s->pos, id, &b, next, logits, e);
    if (!rc) s->pos++;
    return rc;
}
