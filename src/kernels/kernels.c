/* kernels.c — picking a kernel set for the running CPU, and the threaded
 * matmul that every projection in the forward pass goes through. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "kernels/microkernel.h"
#include "kernels/mlx_affine.h"
#include "kernels/repack_x16.h"

/* The integer twins of the sets (each set's own file). */
const q35_kernels *q35_kernels_generic_int8(void);
const q35_kernels *q35_kernels_avx2_int8(void);
const q35_kernels *q35_kernels_avx2_vnni(void); /* AVX2 floats, AVX-VNNI integers */
const q35_kernels *q35_kernels_avx512_int8(void);
const q35_kernels *q35_kernels_amx_int8(void);
const q35_kernels *q35_kernels_neon_int8(const q35_kernels *k); /* the three NEON sets */
static const q35_kernels *q35_kernels_exact_best(void);

static bool env_exact(void) {
    const char *v = getenv("Q35_EXACT");
    return v && *v && strcmp(v, "0") != 0;
}

const q35_kernels *q35_kernels_best(void) {
    return q35_kernels_pick(false);
}

/* Q35_KERNELS, or "" */
static const char *env_kernels(void) {
    const char *v = getenv("Q35_KERNELS");
    return v ? v : "";
}

/* The AVX2 float set's integer twin: AVX-VNNI's micro-kernels where the CPU
 * has them (a CPU with AVX-512 VNNI runs the avx512 sets instead), unless
 * Q35_KERNELS=avx2 asks for plain AVX2 (what Zen 3 and older cores run). */
static const q35_kernels *avx2_twin(void) {
    const q35_kernels *t = NULL;
    if (strcmp(env_kernels(), "avx2") != 0) t = q35_kernels_avx2_vnni();
    return t ? t : q35_kernels_avx2_int8();
}

const q35_kernels *q35_kernels_int8(const q35_kernels *k) {
    const char *n = k->name;
    const q35_kernels *t = !strcmp(n, "generic")    ? q35_kernels_generic_int8()
                           : !strcmp(n, "avx2")     ? avx2_twin()
                           : !strcmp(n, "avx512")   ? q35_kernels_avx512_int8()
                           : !strcmp(n, "amx")      ? q35_kernels_amx_int8()
                           : !strncmp(n, "neon", 4) ? q35_kernels_neon_int8(k)
                                                    : NULL;
    return t ? t : k;
}

const q35_kernels *q35_kernels_pick(bool exact) {
    const q35_kernels *k = q35_kernels_exact_best();
    return exact || env_exact() ? k : q35_kernels_int8(k);
}

static const q35_kernels *q35_kernels_exact_best(void) {
    const char *force = getenv("Q35_KERNELS");
    const q35_kernels *k = NULL;
    if (force && *force) {
        if (!strcmp(force, "generic"))
            k = q35_kernels_generic();
        else if (!strcmp(force, "avx2"))
            k = q35_kernels_avx2();
        else if (!strcmp(force, "avxvnni")) /* AVX2 floats, AVX-VNNI integers */
            k = q35_kernels_avx2_vnni() ? q35_kernels_avx2() : NULL;
        else if (!strcmp(force, "avx512"))
            k = q35_kernels_avx512();
        else if (!strcmp(force, "neon"))
            k = q35_kernels_neon();
        if (k) return k;
    }
    if ((k = q35_kernels_amx())) return k;
    if ((k = q35_kernels_avx512())) return k;
    if ((k = q35_kernels_avx2())) return k;
    if ((k = q35_kernels_neon())) return k;
    return q35_kernels_generic();
}

bool q35_matmul_reads_packed(const q35_kernels *k, q35_dtype dt, int T, int64_t cols) {
    if (k->i8 && cols % Q35_Q8_BLOCK == 0) {
        if (q35_i8_takes(k->i8, dt, T)) return false;
        int from = k->q8_only_from ? k->q8_only_from(dt) : 0;
        if (from > 0 && T >= from) return false;
    }
    return true;
}

static bool any_reads_packed(const q35_kernels *k, int T, int64_t cols, q35_dtype_mask dtypes) {
    for (int dt = 0; dt < Q35_DT_COUNT; dt++)
        if ((dtypes >> dt & 1u) && q35_matmul_reads_packed(k, (q35_dtype)dt, T, cols)) return true;
    return false;
}

/* The set's own packed form (where some matrix reads it), then (64-byte
 * aligned) the q8 rows. */
static size_t float_pack_bytes(const q35_kernels *k, int T, int64_t cols, q35_dtype_mask dtypes) {
    if (!k->pack_bytes || !any_reads_packed(k, T, cols, dtypes)) return 0;
    return k->pack_bytes(T, cols);
}

size_t q35_acts_bytes_for(const q35_kernels *k, int T, int64_t cols, q35_dtype_mask dtypes) {
    size_t b = float_pack_bytes(k, T, cols, dtypes);
    if (k->i8 && cols % Q35_Q8_BLOCK == 0)
        b = (b + 63) / 64 * 64 + (size_t)T * q35_q8_row_stride(cols);
    return b;
}

size_t q35_acts_bytes(const q35_kernels *k, int T, int64_t cols) {
    return q35_acts_bytes_for(k, T, cols, ~(q35_dtype_mask)0);
}

q35_acts q35_acts_prepare_for(const q35_kernels *k, const float *x, int64_t ldx, int T,
                              int64_t cols, void *buf, q35_dtype_mask dtypes) {
    q35_acts a = {x, ldx, cols, T, NULL, NULL, 0};
    size_t fb = float_pack_bytes(k, T, cols, dtypes);
    if (fb > 0) {
        k->pack(x, ldx, T, cols, buf);
        a.packed = buf;
    }
    if (k->i8 && cols % Q35_Q8_BLOCK == 0) {
        uint8_t *q8 = (uint8_t *)buf + (fb + 63) / 64 * 64;
        k->i8->quantize(x, ldx, T, cols, q8);
        a.q8 = q8;
        a.ldq8 = q35_q8_row_stride(cols);
    }
    return a;
}

q35_acts q35_acts_prepare(const q35_kernels *k, const float *x, int64_t ldx, int T, int64_t cols,
                          void *buf) {
    return q35_acts_prepare_for(k, x, ldx, T, cols, buf, ~(q35_dtype_mask)0);
}

typedef struct matmul_job {
    const q35_kernels *k;
    const q35_tensor *w;
    const q35_acts *a;
    float *y;
    int64_t ldy;
} matmul_job;

static void matmul_rows(const q35_kernels *k, const q35_tensor *w, const q35_acts *a, float *y,
                        int64_t ldy, int64_t begin, int64_t end);

/* Whether k reads an x16 tensor (repack_x16.h) of dtype dt at T tokens
 * itself: its integer micro-kernels, or (the AMX sets) its matmul from
 * q8_only_from on, which sends it to the AMX-INT8 tiles. */
static bool reads_x16(const q35_kernels *k, q35_dtype dt, const q35_acts *a) {
    if (!a->q8) return false;
    if (k->i8 && q35_i8_takes(k->i8, dt, a->T)) return true;
    int from = k->q8_only_from ? k->q8_only_from(dt) : 0;
    return from > 0 && a->T >= from;
}

/* Rows [begin, end) of an x16 tensor for a set that does not read the
 * form (another Q35_KERNELS or the exact mode on a model repacked for the
 * default set): the rows back in the file's layout, then the set's own
 * path on them, so each result is what it gives for the file's matrix. A
 * buffer that cannot be had is asked for again a row at a time, and a row
 * that cannot be had reads as NaN (matmul cannot fail). */
static void matmul_x16_unpacked(const q35_kernels *k, const q35_tensor *w, const q35_acts *a,
                                float *y, int64_t ldy, int64_t begin, int64_t end) {
    const q35_dtype base = q35_dtype_x16_base(w->dtype);
    const int64_t cols = w->shape[1];
    const size_t ldw = q35_row_bytes(base, cols);
    int64_t step = end - begin;
    uint8_t *buf = malloc((size_t)step * ldw);
    if (!buf) buf = malloc(ldw), step = 1;
    for (int64_t r = begin; r < end; r += step) {
        int64_t n = end - r < step ? end - r : step;
        if (!buf) {
            for (int t = 0; t < a->T; t++)
                y[(int64_t)t * ldy + r] = __builtin_nanf("");
            continue;
        }
        q35_x16_rows(w, r, n, buf);
        q35_tensor part = {base, 2, {n, cols}, buf};
        matmul_rows(k, &part, a, y + r, ldy, 0, n);
    }
    free(buf);
}

static void matmul_rows(const q35_kernels *k, const q35_tensor *w, const q35_acts *a, float *y,
                        int64_t ldy, int64_t begin, int64_t end) {
    const q35_i8_ukernel_desc *d = k->i8 ? &k->i8->mk[w->dtype] : NULL;
    if (q35_dtype_is_x16(w->dtype) && !reads_x16(k, w->dtype, a))
        matmul_x16_unpacked(k, w, a, y, ldy, begin, end);
    else if (a->q8 && d && q35_i8_takes(k->i8, w->dtype, a->T))
        q35_i8_matmul(k->i8, w, a->q8, a->ldq8, a->T, y, ldy, begin, end);
    else if (q35_dtype_is_mlx_or_q5k(w->dtype)) /* their own files (mlx_affine*.c) */
        q35_mlx_q5k_matmul(k, w, a, y, ldy, begin, end);
    else
        k->matmul(w, a, y, ldy, begin, end);
}

/* How the matmul of w at a runs: 0 other, 1 in 16-row weight tiles
 * whatever the rows it is given (an x16 tensor's VNNI micro-kernels), 2 on
 * the AMX-INT8 tiles (from the set's q8_only_from on, x16 or not). */
static int int8_tiles16(const q35_kernels *k, const q35_tensor *w, const q35_acts *a) {
    if (!a->q8) return 0;
    int from = k->q8_only_from ? k->q8_only_from(w->dtype) : 0;
    if (from > 0 && a->T >= from) return 2;
    return q35_dtype_is_x16(w->dtype) && reads_x16(k, w->dtype, a) ? 1 : 0;
}

static void matmul_range(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const matmul_job *j = ctx;
    matmul_rows(j->k, j->w, j->a, j->y, j->ldy, begin, end);
}

void q35_matmul(const q35_kernels *k, q35_threadpool *pool, const q35_tensor *w, const q35_acts *a,
                float *y, int64_t ldy) {
    matmul_job j = {k, w, a, y, ldy};
    int64_t rows = w->shape[0];
    /* Rows per chunk, from the shape and T only (never the thread count):
     * for a few tokens (memory-bound) ~64 KB of weights, enough chunks to
     * balance any thread count; for many tokens ~512 KB, so that the token
     * rows are streamed through the cache once per chunk rather than once
     * per few rows, but still >= ~8 chunks. A multiple of 48 rows: whole
     * tiles for every kernel set (4-row tiles, 3 x 16-row AMX blocks). */
    int64_t row_bytes = (int64_t)q35_row_bytes(w->dtype, w->shape[1]);
    int64_t target = a->T >= 8 ? 512 * 1024 : 64 * 1024;
    int64_t chunk = (target + row_bytes - 1) / row_bytes;
    int tiles16 = int8_tiles16(k, w, a);
    if (tiles16) {
        /* 16-row tiles only: a multiple of 8 chunks of equal size, so that
         * 2, 4 or 8 threads get the same share (48-row units left the
         * 1024-row matrices 7 chunks and a 16-row one: 576 / 448 rows on 2
         * threads). AMX-INT8: two equal chunks a thread, so that each call
         * has several panels, all but the first unpacked from L2
         * (int8_amx_avx512.c); its results do not depend on the split. */
        int64_t units = (rows + 15) / 16;
        int64_t n = (rows + chunk - 1) / chunk;
        n = n < 8 ? 8 : (n + 7) / 8 * 8;
        if (tiles16 == 2) n = 2 * (int64_t)q35_threadpool_size(pool);
        if (n > units) n = units;
        chunk = (units + n - 1) / n * 16;
    } else {
        if (chunk > rows / 8) chunk = rows / 8;
        chunk = chunk < 48 ? 48 : (chunk + 47) / 48 * 48;
    }
    q35_threadpool_for(pool, rows, chunk, matmul_range, &j);
}

/* Variants this architecture cannot build (their files are compiled only
 * for their own architecture). */
#if !defined(__x86_64__)
const q35_kernels *q35_kernels_avx2(void) {
    return NULL;
}
const q35_kernels *q35_kernels_avx2_vnni(void) {
    return NULL;
}
const q35_kernels *q35_kernels_avx2_int8(void) {
    return NULL;
}
const q35_kernels *q35_kernels_avx512_int8(void) {
    return NULL;
}
const q35_kernels *q35_kernels_amx_int8(void) {
    return NULL;
}
const q35_kernels *q35_kernels_avx512(void) {
    return NULL;
}
const q35_kernels *q35_kernels_amx(void) {
    return NULL;
}
#endif
#if !defined(__aarch64__)
const q35_kernels *q35_kernels_neon(void) {
    return NULL;
}
const q35_kernels *q35_kernels_neon_int8(const q35_kernels *k) {
    return NULL;
}
#endif
