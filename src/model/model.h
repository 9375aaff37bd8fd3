/* model.h — a loaded model: config, weights in compute form, and what owns
 * their memory. Big matrices stay where the loader found them (a mapped
 * file); small vectors (norm weights, conv taps, gates) are converted once to
 * float32 in the form the math uses, so the forward pass never re-derives
 * them:
 *   - zero-centred RMSNorm weights hold (1 + w);
 *   - A holds -exp(A_log);
 *   - the DeltaNet output norm holds w as is.
 */
#ifndef Q35_MODEL_MODEL_H
#define Q35_MODEL_MODEL_H

#include <stdbool.h>

#include "core/mapped_file.h"
#include "model/config.h"
#include "model/tensor.h"
#include "q35.h"

typedef struct q35_layer {
    bool full_attn;
    const float *attn_norm; /* [H], 1+w */
    const float *mlp_norm;  /* [H], 1+w */
    q35_tensor w_gate;      /* [I, H] */
    q35_tensor w_up;        /* [I, H] */
    q35_tensor w_down;      /* [H, I] */

    /* Gated DeltaNet (full_attn == false) */
    q35_tensor w_qkv;      /* [C, H], C = 2*nk*dk + nv*dv */
    q35_tensor w_z;        /* [nv*dv, H] */
    q35_tensor w_b;        /* [nv, H] */
    q35_tensor w_a;        /* [nv, H] */
    q35_tensor w_out;      /* [H, nv*dv] */
    const float *conv_w;   /* [C, K] */
    const float *A;        /* [nv], -exp(A_log) */
    const float *dt_bias;  /* [nv] */
    const float *gdn_norm; /* [dv], plain weight */

    /* gated attention (full_attn == true) */
    q35_tensor w_q;      /* [nh*2d, H]: per head, d query rows then d gate rows */
    q35_tensor w_k;      /* [nkv*d, H] */
    q35_tensor w_v;      /* [nkv*d, H] */
    q35_tensor w_o;      /* [H, nh*d] */
    const float *q_norm; /* [d], 1+w */
    const float *k_norm; /* [d], 1+w */
} q35_layer;

/* One way the matrices were stored in the source files, before any
 * load-time conversion: what `q35 info` reports as the quantization. */
typedef struct q35_stored_type {
    char name[24]; /* "bf16", "q4_K", "mlx4/g64" */
    int n_tensors;
    size_t bytes; /* bytes those matrices take in the files */
} q35_stored_type;

#define Q35_MAX_STORED_TYPES 16

/* A tensor the model keeps by name without using it (e.g. mtp.*). */
typedef struct q35_named_tensor {
    char *name;
    q35_tensor t;
} q35_named_tensor;

struct q35_model {
    q35_config cfg;
    q35_tensor embed;        /* [V, H] */
    q35_tensor lm_head;      /* [V, H]; same data as embed when tied */
    const float *final_norm; /* [H], 1+w */
    q35_layer *layers;       /* [n_layers] */

    q35_named_tensor *extra; /* mtp.* tensors, kept for later use */
    int n_extra;

    int n_threads;
    bool loaded;
    unsigned generation; /* bumped by every (re)load: states check it */
    q35_dtype requant;   /* Q35_DT_Q8_0/Q4_0: matrices converted at load; F32: off */
    char *path;
    const char *format;    /* static string */
    char quantization[48]; /* "none", "Q4_K_M", "MLX affine 4-bit, group 64" */
    q35_stored_type stored[Q35_MAX_STORED_TYPES]; /* matrices by stored type */
    int n_stored;

    /* Memory the model owns: mapped files and heap buffers (float32 small
     * vectors, converted matrices). Freed by q35_model_free. */
    q35_mapped_file *files;
    int n_files;
    void **buffers;
    size_t *buffer_bytes; /* size of each buffer, for release */
    int n_buffers, cap_buffers;
    size_t owned_bytes; /* heap bytes in buffers */

    /* Where states evaluate (q35_load_opts.device). A device backend keeps
     * its copy of the weights in device_ctx (made by the first state, see
     * forward/backend.h; device_bytes of device memory), freed with the
     * weights through device_free. */
    q35_device device;
    bool exact_kernels; /* q35_load_opts.exact_kernels */
    void *device_ctx;
    void (*device_free)(void *ctx);
    size_t device_bytes;
};

/* Counts one matrix stored in the files as `type` taking `bytes` there
 * (types past Q35_MAX_STORED_TYPES are summed under "other"). */
void q35_model_note_stored(q35_model *m, const char *type, size_t bytes);

/* Most weight matrices a model can have: embedding, output head, 12 a layer. */
#define Q35_MAX_MATRICES (2 + 12 * Q35_MAX_LAYERS)

/* The model's weight matrices in a fixed order: the embedding, the output
 * head when untied, then each layer's (gate, up, down, then qkv, z, b, a,
 * out or q, k, v, o). `out` holds Q35_MAX_MATRICES pointers into m;
 * `names` (may be NULL) gets one for messages, e.g. "layer 3 gate".
 * Returns how many there are. */
int q35_model_matrices(q35_model *m, q35_tensor **out, char (*names)[32]);

/* Allocates `bytes` owned by the model (freed with it). NULL on failure. */
void *q35_model_alloc(q35_model *m, size_t bytes);

/* Frees a buffer from q35_model_alloc before the model goes (no-op for a
 * pointer that is not the start of one, e.g. into a mapped file). */
void q35_model_release(q35_model *m, const void *p);

/* Row r of a [rows, cols] matrix of any dtype as float32 (cols floats in
 * `out`). Fails only on an unknown dtype. */
int q35_tensor_row_to_f32(const q35_tensor *t, int64_t r, float *out, q35_err *e);

/* Converts every matrix whose column count is a multiple of 32 to `target`
 * (Q35_DT_Q8_0 or Q35_DT_Q4_0) from its float32 value, frees what the old
 * forms held and unmaps the weight files nothing points into any more
 * (matrices already in `target`, matrices that cannot be converted and
 * mtp.* tensors stay where they were). */
int q35_model_requantize(q35_model *m, q35_dtype target, q35_err *e);

/* Repacks the Q8_0 / Q4_0 / Q4_K matrices (and a Q6_K output head) into the 16-row interleaved
 * forms (kernels/repack_x16.h) where the model runs on the CPU and the kernel set its states pick
 * reads them, unless Q35_REPACK=0 (repack.c). */
int q35_model_repack(q35_model *m, q35_err *e);

#endif
