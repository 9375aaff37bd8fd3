/* repack_x16.c — making the 16-row interleaved Q8_0 / Q4_0 forms and
 * reading them back as the file's blocks (repack_x16.h has the layout).
 * Plain C: it runs once per load (threaded by the caller) and, backwards,
 * only for row lookups and the sets that do not read the form. */
#include <string.h>

#include "kernels/repack_x16.h"

static size_t code_bytes(q35_dtype base) {
    return base == Q35_DT_Q8_0 ? 512 : 256;
}

size_t q35_x16_bytes(q35_dtype base, int64_t rows, int64_t cols) {
    int64_t groups = (rows + Q35_X16_ROWS - 1) / Q35_X16_ROWS;
    return (size_t)groups * Q35_X16_ROWS * q35_row_bytes(base, cols);
}

void q35_x16_pack(q35_dtype base, const uint8_t *src, int64_t rows, int64_t cols, int64_t g0,
                  int64_t g1, uint8_t *dst) {
    const size_t ldw = q35_row_bytes(base, cols), bb = q35_dtype_block_bytes(base);
    const size_t cb = code_bytes(base);
    const int64_t nb = cols / Q35_QBLOCK;
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

void q35_x16_block(const q35_tensor *t, int64_t row, int64_t kb, uint8_t *out) {
    const q35_dtype base = q35_dtype_x16_base(t->dtype);
    const int64_t cols = t->shape[1], nb = cols / Q35_QBLOCK;
    const size_t ldw = q35_row_bytes(base, cols), cb = code_bytes(base);
    const int q8 = base == Q35_DT_Q8_0, dwords = q8 ? 8 : 4;
    const int r = (int)(row % Q35_X16_ROWS);
    const uint8_t *grp =
        (const uint8_t *)t->data + (size_t)(row / Q35_X16_ROWS) * Q35_X16_ROWS * ldw;
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
    const int64_t cols = t->shape[1], nb = cols / Q35_QBLOCK;
    const size_t ldw = q35_row_bytes(base, cols), bb = q35_dtype_block_bytes(base);
    for (int64_t i = 0; i < n; i++)
        for (int64_t kb = 0; kb < nb; kb++)
            q35_x16_block(t, r0 + i, kb, out + (size_t)i * ldw + (size_t)kb * bb);
}
