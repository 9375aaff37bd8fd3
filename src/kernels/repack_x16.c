/* repack_x16.c — making the 16-row interleaved Q8_0 / Q4_0 / Q4_K / Q6_K
 * forms and reading them back as the file's blocks (repack_x16.h has the
 * layout). Plain C: the definition of the pack (the load takes the
 * AVX-512 or AVX2 one where it runs: repack_x16_avx512.c, _avx2.c, the
 * same bytes) and,
 * backwards, only for row lookups and the sets that do not read the form. */
#include <string.h>

#include "kernels/cpu_features.h"
#include "kernels/repack_x16.h"

static size_t code_bytes(q35_dtype base) {
    return base == Q35_DT_Q8_0 ? 512 : 256;
}

size_t q35_x16_bytes(q35_dtype base, int64_t rows, int64_t cols) {
    int64_t groups = (rows + Q35_X16_ROWS - 1) / Q35_X16_ROWS;
    return (size_t)groups * Q35_X16_ROWS * q35_row_bytes(base, cols);
}

/* ---- Q6_K: a super-block's 256 6-bit values (0..63) out of and into
 * ggml's ql / qh (formats/gguf_quants.c's decoder has the same order). */
static void q6_values(const uint8_t *sb, uint8_t q[256]) {
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = sb + 64 * n, *qh = sb + 128 + 32 * n;
        uint8_t *o = q + 128 * n;
        for (int l = 0; l < 32; l++) {
            o[l] = (uint8_t)((ql[l] & 15) | ((qh[l] & 3) << 4));
            o[l + 32] = (uint8_t)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4));
            o[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
            o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
    }
}

static void q6_store(const uint8_t q[256], uint8_t *sb) {
    for (int n = 0; n < 2; n++) {
        uint8_t *ql = sb + 64 * n, *qh = sb + 128 + 32 * n;
        const uint8_t *v = q + 128 * n;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((v[l] & 15) | ((v[l + 64] & 15) << 4));
            ql[l + 32] = (uint8_t)((v[l + 32] & 15) | ((v[l + 96] & 15) << 4));
            qh[l] = (uint8_t)((v[l] >> 4) | ((v[l + 32] >> 4) << 2) | ((v[l + 64] >> 4) << 4) |
                              ((v[l + 96] >> 4) << 6));
        }
    }
}

/* Row r (< 16) of super-block k of a Q6_K group into the form. */
static void q6_put(const uint8_t *sb, int r, int64_t k, int64_t nsb, uint8_t *grp) {
    uint8_t q[256];
    q6_values(sb, q);
    uint8_t *meta = grp + 288 * (size_t)k;
    for (int j = 0; j < 16; j++)
        meta[16 * j + r] = sb[192 + j];
    memcpy(meta + 256 + 2 * r, sb + 208, 2);
    for (int jj = 0; jj < 8; jj++) {
        uint8_t *c = grp + 288 * (size_t)nsb + 384 * (size_t)(8 * k + jj) + 4 * r;
        const uint8_t *v = q + 32 * jj;
        for (int i = 0; i < 4; i++) {
            for (int g = 0; g < 4; g++)
                c[64 * g + i] = (uint8_t)((v[4 * g + i] & 15) | ((v[16 + 4 * g + i] & 15) << 4));
            for (int h = 0; h < 2; h++) {
                uint8_t hb = 0;
                for (int g = 0; g < 4; g++)
                    hb |= (uint8_t)((v[4 * (4 * h + g) + i] >> 4) << (2 * g));
                c[256 + 64 * h + i] = hb;
            }
        }
    }
}

static void q6_get(const uint8_t *grp, int r, int64_t k, int64_t nsb, uint8_t *sb) {
    uint8_t q[256];
    const uint8_t *meta = grp + 288 * (size_t)k;
    for (int jj = 0; jj < 8; jj++) {
        const uint8_t *c = grp + 288 * (size_t)nsb + 384 * (size_t)(8 * k + jj) + 4 * r;
        uint8_t *v = q + 32 * jj;
        for (int i = 0; i < 4; i++) {
            for (int g = 0; g < 8; g++) {
                uint8_t lo = g < 4 ? c[64 * g + i] & 15 : c[64 * (g - 4) + i] >> 4;
                uint8_t hi = (c[256 + 64 * (g / 4) + i] >> (2 * (g % 4))) & 3;
                v[4 * g + i] = (uint8_t)(lo | (hi << 4));
            }
        }
    }
    q6_store(q, sb);
    for (int j = 0; j < 16; j++)
        sb[192 + j] = meta[16 * j + r];
    memcpy(sb + 208, meta + 256 + 2 * r, 2);
}

/* ---- Q4_K: row r of super-block k into the form and back (the bytes
 * move as they are). */
static void q4k_move(uint8_t *sb, int r, int64_t k, int64_t nsb, uint8_t *grp, int to_form) {
    uint8_t *meta = grp + 256 * (size_t)k;
    uint8_t *codes = grp + 256 * (size_t)nsb + 2048 * (size_t)k + 4 * r;
    uint8_t *a[5] = {meta + 4 * r, meta + 64 + 4 * r, meta + 128 + 4 * r, meta + 192 + 2 * r,
                     meta + 224 + 2 * r};
    uint8_t *b[5] = {sb + 4, sb + 8, sb + 12, sb, sb + 2};
    for (int i = 0; i < 5; i++)
        to_form ? memcpy(a[i], b[i], i < 3 ? 4 : 2) : memcpy(b[i], a[i], i < 3 ? 4 : 2);
    for (int c = 0; c < 4; c++)
        for (int g = 0; g < 8; g++) {
            uint8_t *f = codes + 512 * c + 64 * g, *q = sb + 16 + 32 * c + 4 * g;
            to_form ? memcpy(f, q, 4) : memcpy(q, f, 4);
        }
}

void q35_x16_pack(q35_dtype base, const uint8_t *src, int64_t rows, int64_t cols, int64_t g0,
                  int64_t g1, uint8_t *dst) {
    const size_t ldw = q35_row_bytes(base, cols), bb = q35_dtype_block_bytes(base);
    const size_t cb = code_bytes(base);
    const int64_t nb = cols / q35_dtype_block_elems(base);
    const int q8 = base == Q35_DT_Q8_0, dwords = q8 ? 8 : 4;
    for (int64_t g = g0; g < g1; g++) {
        uint8_t *grp = dst + (size_t)g * Q35_X16_ROWS * ldw;
        uint8_t *codes = grp + 32 * (size_t)nb;
        memset(grp, 0, Q35_X16_ROWS * ldw);
        for (int r = 0; r < Q35_X16_ROWS; r++) {
            int64_t row = g * Q35_X16_ROWS + r;
            if (row >= rows) break;
            const uint8_t *p = src + (size_t)row * ldw;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = p + (size_t)b * bb;
                if (base == Q35_DT_Q6_K) {
                    q6_put(blk, r, b, nb, grp);
                    continue;
                }
                if (base == Q35_DT_Q4_K) {
                    q4k_move((uint8_t *)blk, r, b, nb, grp, 1);
                    continue;
                }
                uint8_t *cv = codes + (size_t)b * cb + 4 * r;
                memcpy(grp + 32 * b + 2 * r, blk, 2);
                for (int k = 0; k < dwords; k++) {
                    uint8_t *o = cv + 64 * k;
                    memcpy(o, blk + 2 + 4 * k, 4);
                    if (q8)
                        for (int i = 0; i < 4; i++)
                            o[i] ^= 0x80;
                }
            }
        }
    }
}

q35_x16_pack_fn q35_x16_pack_pick(void) {
#if defined(__x86_64__)
    q35_cpu_features f;
    q35_cpu_features_detect(&f);
    if (q35_cpu_has_avx512_set(&f)) return q35_x16_pack_avx512;
    if (q35_cpu_has_avx2_set(&f)) return q35_x16_pack_avx2;
#endif
    return q35_x16_pack;
}

void q35_x16_block(const q35_tensor *t, int64_t row, int64_t kb, uint8_t *out) {
    const q35_dtype base = q35_dtype_x16_base(t->dtype);
    const int64_t cols = t->shape[1], nb = cols / q35_dtype_block_elems(base);
    const size_t ldw = q35_row_bytes(base, cols), cb = code_bytes(base);
    const int q8 = base == Q35_DT_Q8_0, dwords = q8 ? 8 : 4;
    const int r = (int)(row % Q35_X16_ROWS);
    const uint8_t *grp =
        (const uint8_t *)t->data + (size_t)(row / Q35_X16_ROWS) * Q35_X16_ROWS * ldw;
    if (base == Q35_DT_Q6_K) {
        q6_get(grp, r, kb, nb, out);
        return;
    }
    if (base == Q35_DT_Q4_K) {
        q4k_move(out, r, kb, nb, (uint8_t *)grp, 0);
        return;
    }
    const uint8_t *cv = grp + 32 * (size_t)nb + (size_t)kb * cb + 4 * r;
    memcpy(out, grp + 32 * kb + 2 * r, 2);
    for (int k = 0; k < dwords; k++) {
        memcpy(out + 2 + 4 * k, cv + 64 * k, 4);
        if (q8)
            for (int i = 0; i < 4; i++)
                out[2 + 4 * k + i] ^= 0x80;
    }
}

void q35_x16_rows(const q35_tensor *t, int64_t r0, int64_t n, uint8_t *out) {
    const q35_dtype base = q35_dtype_x16_base(t->dtype);
    const int64_t cols = t->shape[1], nb = cols / q35_dtype_block_elems(base);
    const size_t ldw = q35_row_bytes(base, cols), bb = q35_dtype_block_bytes(base);
    for (int64_t i = 0; i < n; i++)
        for (int64_t kb = 0; kb < nb; kb++)
            q35_x16_block(t, r0 + i, kb, out + (size_t)i * ldw + (size_t)kb * bb);
}
