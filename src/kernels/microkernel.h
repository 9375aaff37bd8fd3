/* microkernel.h — the integer matmul path: token rows quantized to 8 bits
 * per 32-element block ("q8 rows"), per-instruction-set micro-kernels that
 * multiply a few weight rows by a few q8 rows, and one blocking/threading
 * driver (matmul_int8.c) that every set shares, BLIS-style: the loop
 * structure (panels, tiles, edges) is in one place, each set's arithmetic
 * for each format in one function.
 *
 * ---- q8 rows (the activations)
 * A token row x of `cols` float32 (cols a multiple of 32) is stored as
 *     int8    q[cols]        at byte 0
 *     float   d[cols / 32]   at byte cols            (one scale per block)
 *     int16   s[cols / 16]   at byte cols + cols / 8 (sum of q per 16)
 * rows q35_q8_row_stride(cols) bytes apart (64-byte multiples). Block b
 * (elements 32b .. 32b+31) is quantized as
 *     amax = max |x_j|,  d_b = amax / 127,  id = d_b > 0 ? 127 / amax : 0,
 *     q_j  = round_half_even(x_j * id)   (|q_j| <= 127, never -128),
 * all in float32, so x_j ~ d_b * q_j. s[i] = sum of q over elements
 * 16i .. 16i+15 (what offset formats and k-quant mins need). Every set's
 * quantizer gives these bytes exactly (tests/kernels check it).
 *
 * ---- the integer dot product of one weight row and one q8 row
 * The weight row is read in place (model/tensor.h layouts). Per 32-element
 * block b the integer part I_b is exact (int32, no overflow possible) and
 * the float part combines it with the scales:
 *   Q8_0: I_b = sum_j q_j * a_j                 term_b = (dw_b * d_b) * I_b
 *   Q4_0: I_b = sum_j (n_j - 8) * a_j           term_b = (dw_b * d_b) * I_b
 *   Q4_K: sub-block j of super-block = block b:
 *         I_b = sum_l n_l * a_l   (n 0..15)
 *         term_b = (d * sc_j * d_b) * I_b - (dmin * m_j * d_b) * (s_2b + s_2b+1)
 *   Q6_K: the block's two 16-element halves h (scales sc_h, int8):
 *         I_b = sc_0 * sum_l (q_l - 32) a_l + sc_1 * sum_l (q_l - 32) a_l
 *         term_b = (d * d_b) * I_b
 *   Q5_K: as Q4_K with n_l = nibble + 16 * fifth bit (0..31)
 *   MLX affine (b bits, group gs >= 32, so block b lies in group g = 32b/gs;
 *         s_g, z_g: the group's scale and bias as float32):
 *         I_b = sum_l q_l * a_l   (q the unsigned b-bit code)
 *         term_b = (s_g * d_b) * I_b + (z_g * d_b) * (s_2b + s_2b+1)
 * (int8_generic.c has the precise per-format text.)
 * (dw_b: the block's f16 scale as float; d, dmin, sc, m: the super-block's
 * fields as in quant_block.h.) y = sum over b of term_b, in float32.
 * kernels_generic's definition (int8_generic.c) adds the terms one by one in
 * block order; a SIMD kernel computes the same I_b bit for bit but may
 * round the float steps differently: it may split I_b into partial integer
 * sums converted separately, fuse multiply-adds and sum the terms in
 * another order. With every scale 1 (all floats exact integers) every set
 * gives exactly the generic result, which is how the tests hold the integer
 * part to the definition.
 *
 * ---- a micro-kernel
 *     fn(w, ldw, R, x, ldx, C, cols, y, ldy)
 * For weight rows r < R (R <= mr; row r at w + r * ldw bytes) and q8 rows
 * c < C (C <= nr; row c at x + c * ldx bytes), over all `cols` columns:
 *     y[c * ldy + r] = the dot product above of weight row r, q8 row c.
 * It must give each y element the same value whatever R and C are (each
 * (r, c) accumulator sees the same operations), so that results never
 * depend on how the driver split rows over threads or grouped tokens. It
 * may prefetch the rows after its own (w + R * ldw ...): prefetches never
 * fault. Nothing else: no allocation, no state.
 *
 * Formats whose scales live apart from the codes (MLX affine: packed
 * uint32 codes, per-group scales and biases in arrays of their own) take
 * the same contract through a weight view instead of (w, ldw):
 *     fnv(v, R, x, ldx, C, cols, y, ldy)
 * where weight row r's codes are at v->q + r * v->ldq and its scales and
 * biases (cols / v->group of them, dtype v->aux) at v->s + r * v->lds and
 * v->z + r * v->lds. Codes are read in place at any alignment and never
 * past the row's last byte (the last row may end a mapped file).
 *
 * The 16-row interleaved forms Q8_0_X16 / Q4_0_X16 (repack_x16.h, made at
 * load) take fn with mr = 16 and w the start of the group of rows o ..
 * o+15 (o % 16 == 0, which base + o * ldw is, a group being 16 rows of
 * ldw bytes): callers of the driver on them pass r0 % 16 == 0 (q35_matmul's
 * chunks are multiples of 48). Their I_b is the definition's of Q8_0 /
 * Q4_0; only the layout differs.
 *
 * ---- a set
 * One q35_i8_kernels per instruction set: its quantizer and, per weight
 * dtype, the micro-kernel (fn, or fnv for the view formats) and its
 * register tile (mr, nr); neither set means that dtype does not go through
 * the integer path in this set (the float kernels of kernels.h then run,
 * as in the exact mode), nor do inputs of more than max_t tokens. Sets are
 * static tables; nothing to free. */
#ifndef Q35_KERNELS_MICROKERNEL_H
#define Q35_KERNELS_MICROKERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "model/tensor.h"

#define Q35_Q8_BLOCK 32

static inline size_t q35_q8_row_stride(int64_t cols) {
    return ((size_t)cols + (size_t)cols / 8 + (size_t)cols / 8 + 63) / 64 * 64;
}
static inline const float *q35_q8_row_d(const uint8_t *row, int64_t cols) {
    return (const float *)(const void *)(row + cols);
}
static inline const int16_t *q35_q8_row_s(const uint8_t *row, int64_t cols) {
    return (const int16_t *)(const void *)(row + cols + cols / 8);
}

typedef void (*q35_i8_ukernel)(const uint8_t *w, size_t ldw, int R, const uint8_t *x, size_t ldx,
                               int C, int64_t cols, float *y, int64_t ldy);

/* A tile of weight rows whose scales and biases sit in arrays apart from
 * the codes (MLX affine), as its micro-kernel reads it (see above). */
typedef struct q35_i8_wview {
    const uint8_t *q; /* row 0's packed codes */
    size_t ldq;       /* bytes from one row's codes to the next's */
    const uint8_t *s; /* row 0's scales */
    const uint8_t *z; /* row 0's biases */
    size_t lds;       /* bytes from one row's scales (biases) to the next's */
    int aux;          /* their dtype: Q35_DT_F16, BF16 or F32 */
    int group;        /* elements per scale: 32, 64 or 128 */
} q35_i8_wview;

typedef void (*q35_i8_ukernel_v)(const q35_i8_wview *v, int R, const uint8_t *x, size_t ldx, int C,
                                 int64_t cols, float *y, int64_t ldy);

typedef struct q35_i8_ukernel_desc {
    int mr, nr; /* register tile: at most mr weight rows x nr q8 rows */
    q35_i8_ukernel fn;
    /* Token counts up to which q35_matmul takes this micro-kernel (0: any):
     * above it the set's float kernels measured faster (prefill panels,
     * AMX tiles), and they run instead, on the exact path. */
    int max_t;
    q35_i8_ukernel_v fnv; /* the view formats' micro-kernel (fn is NULL) */
} q35_i8_ukernel_desc;

/* True where the descriptor has a micro-kernel of either kind. */
static inline int q35_i8_has(const q35_i8_ukernel_desc *d) {
    return d->fn != NULL || d->fnv != NULL;
}

/* The view of rows r0.. of an MLX affine tensor (its data a q35_mlx_affine)
 * for a micro-kernel's fnv. */
static inline q35_i8_wview q35_i8_wview_rows(const q35_tensor *w, int64_t r0) {
    const q35_mlx_affine *a = (const q35_mlx_affine *)w->data;
    int64_t cols = w->shape[1];
    size_t ldq = q35_row_bytes(w->dtype, cols);
    size_t lds = (size_t)(cols / a->group) * (a->aux == Q35_DT_F32 ? 4 : 2);
    q35_i8_wview v = {(const uint8_t *)a->q + (size_t)r0 * ldq,
                      ldq,
                      (const uint8_t *)a->scales + (size_t)r0 * lds,
                      (const uint8_t *)a->biases + (size_t)r0 * lds,
                      lds,
                      a->aux,
                      a->group};
    return v;
}

/* A packed-panel micro-kernel for many tokens (prefill): the driver
 * repacks `rows` weight rows at a time into the set's own layout (pack:
 * rows past R zero, pack_bytes(cols) bytes, 64-byte aligned) once per
 * call, then runs kernel over that group for every tile of up to nt
 * tokens, writing y[c * ldy + r] for r < R, c < C, the same dot products
 * as the register tile's (same contract: every (r, c) sees the same
 * operations whatever R and C). Taken for T >= min_t where fn would
 * otherwise stop at max_t (see q35_i8_takes). */
typedef struct q35_i8_panel_desc {
    int rows, nt, min_t;
    size_t (*pack_bytes)(int64_t cols);
    void (*pack)(const uint8_t *w, size_t ldw, int R, int64_t cols, uint8_t *out);
    void (*kernel)(const uint8_t *packed, int R, const uint8_t *x, size_t ldx, int C, int64_t cols,
                   float *y, int64_t ldy);
} q35_i8_panel_desc;

typedef struct q35_i8_kernels {
    const char *name; /* "generic", "avx2", "avx512vnni", ... */
    /* T rows of x ([T, cols], stride ldx floats; cols % 32 == 0) into q8 rows
     * at out (64-byte aligned, T * q35_q8_row_stride(cols) bytes). */
    void (*quantize)(const float *x, int64_t ldx, int T, int64_t cols, uint8_t *out);
    q35_i8_ukernel_desc mk[Q35_DT_COUNT];
    q35_i8_panel_desc panel[Q35_DT_COUNT]; /* kernel = NULL: none */
} q35_i8_kernels;

/* True where q35_matmul sends T tokens of dtype dt through the integer
 * path of k (the register tiles up to max_t, the panels from min_t). */
static inline int q35_i8_takes(const q35_i8_kernels *k, q35_dtype dt, int T) {
    const q35_i8_ukernel_desc *d = &k->mk[dt];
    const q35_i8_panel_desc *p = &k->panel[dt];
    if (!q35_i8_has(d)) return 0;
    return d->max_t == 0 || T <= d->max_t || (p->kernel != NULL && T >= p->min_t);
}

/* The tables themselves (the float sets' integer twins point at them). */
extern const q35_i8_kernels q35_i8_generic_set, q35_i8_avx2_set, q35_i8_avx512vnni_set;
/* The AVX-512 VNNI register tiles without the packed panels: the AMX sets'
 * twin (AMX-INT8 tiles take the many-token calls there). */
extern const q35_i8_kernels q35_i8_avx512vnni_tiles_set;
extern const q35_i8_kernels q35_i8_avxvnni_set; /* x86-64 builds only */

/* The plain C definitions (int8_generic.c): always there. */
const q35_i8_kernels *q35_i8_kernels_generic(void);
/* x86 sets, or NULL where this CPU or build lacks them. */
const q35_i8_kernels *q35_i8_kernels_avx2(void);
const q35_i8_kernels *q35_i8_kernels_avx512vnni(void);
/* AVX2 + AVX-VNNI (VEX vpdpbusd; int8_avxvnni.c), for CPUs with it and
 * without AVX-512; NULL elsewhere. */
const q35_i8_kernels *q35_i8_kernels_avxvnni(void);
/* AArch64 sets (the NEON helper's files), or NULL. */
const q35_i8_kernels *q35_i8_kernels_neon(void);

/* The plain C dot product of one weight row (dtype dt) and one q8 row, as
 * defined above: the yardstick of the tests. */
float q35_i8_dot_ref(q35_dtype dt, const uint8_t *w, const uint8_t *x, int64_t cols);
/* The same for row 0 of an MLX affine view (dt one of Q35_DT_MLX2..8). */
float q35_i8_dot_ref_mlx(q35_dtype dt, const q35_i8_wview *v, const uint8_t *x, int64_t cols);
/* The plain C quantizer (the bytes every set's quantizer must give), and
 * the AVX2 one (x86 sets above AVX2 share it; AVX2 CPUs only). */
void q35_q8_quantize_ref(const float *x, int64_t ldx, int T, int64_t cols, uint8_t *out);
void q35_q8_quantize_avx2(const float *x, int64_t ldx, int T, int64_t cols, uint8_t *out);

/* The driver: y[t*ldy + o] for rows o in [r0, r1) of w and q8 rows t < T
 * (at x, stride ldx bytes): row panels sized for the cache, within a panel
 * token tiles of nr, within those row tiles of mr, so that each panel of
 * weights is read from memory once per call and each q8 tile once per
 * panel. w's dtype must have a micro-kernel in `k`. */
void q35_i8_matmul(const q35_i8_kernels *k, const q35_tensor *w, const uint8_t *x, size_t ldx,
                   int T, float *y, int64_t ldy, int64_t r0, int64_t r1);

#endif
