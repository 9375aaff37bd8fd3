/* repack_x16.h — the 16-row interleaved forms of Q8_0 and Q4_0 matrices
 * (Q35_DT_Q8_0_X16, Q35_DT_Q4_0_X16; model/tensor.h), made once at load
 * for the x86 AVX-512 VNNI and AMX-INT8 kernels, and the way back to the
 * file's blocks for everything else (row lookups, other kernel sets,
 * saving).
 *
 * Why: a vpdpbusd (or an AMX-INT8 B tile row) multiplies 4 bytes of each
 * of 16 weight rows by the same 4 activation bytes. From the file's
 * row-major blocks every call had to transpose 16 rows into that order
 * first (the panels' pack, the AMX unpack), a cost amortized over only the
 * T tokens of the call: at T = 2..16 it was most of the matmul. Stored in
 * that order once, the kernels load their operands directly.
 *
 * Layout: rows in groups of 16 (group g: rows 16g .. 16g+15; rows past the
 * matrix's end are zero, scale and codes), nb = cols / 32 blocks a row,
 * each group 16 * nb * bb bytes (bb = 34 or 18, the file's block bytes),
 * groups one after the other from the tensor's data:
 *   at 0:       the f16 scales, block b's 16 at 32 b (row r's at 32 b + 2 r)
 *   at 32 nb:   the codes, block b's at 32 nb + cb b (cb = 512 / 256):
 *     Q8_0: 8 vectors of 64 bytes; vector k, bytes 4r .. 4r+3: row r's
 *           q[4k .. 4k+3] + 128 as unsigned bytes (q ^ 0x80), so that
 *           vpdpbusd (unsigned x signed) takes them as they are and the
 *           128 comes off through the q8 row's block sum S_b;
 *     Q4_0: 4 vectors; vector k, bytes 4r .. 4r+3: row r's qs[4k .. 4k+3]
 *           as in the file, so (v & 15) is elements 4k .. 4k+3 of each row
 *           and (v >> 4 & 15) elements 16+4k .. 16+4k+3, the VNNI order.
 * Q6_K (per group: the meta of every super-block, then the codes):
 *   at 288 k:   super-block k's scales, 16 halves x 16 rows (int8; half j
 *               of row r at 16 j + r), then the rows' f16 d (32 bytes);
 *   at 288 nsb: the codes, 32-element block b at 288 nsb + 384 b: 4
 *               vectors of 6-bit values' low nibbles as Q4_0's (low:
 *               elements 4k .. 4k+3, high: 16+4k .. 16+4k+3), then 2
 *               vectors of their high 2 bits: vector h, byte 4r+i, bits
 *               2g..2g+1: element 4 (4h+g) + i of row r (g < 4).
 *   (nsb = cols / 256; the same 16 * 210 bytes a super-block.)
 * Q4_K (the same order):
 *   at 256 k:   super-block k's 12 scale bytes as 3 vectors of the rows'
 *               dwords (file bytes 4..7, 8..11, 12..15 of row r at 4 r),
 *               then the rows' f16 d (32 bytes) and dmin (32 bytes);
 *   at 256 nsb: the codes, 64-element chunk c of super-block k at
 *               256 nsb + 2048 k + 512 c: 8 vectors, vector g, bytes 4r ..
 *               4r+3: row r's qs[32c + 4g .. 4g+3] (low nibbles: block 2c's
 *               elements 4g .. 4g+3, high: block 2c+1's).
 * Same bytes per weight as the file (plus at most 15 zero rows). */
#ifndef Q35_KERNELS_REPACK_X16_H
#define Q35_KERNELS_REPACK_X16_H

#include <stddef.h>
#include <stdint.h>

#include "model/tensor.h"

#define Q35_X16_ROWS 16

/* The x16 dtype of a Q8_0 / Q4_0 / Q6_K base, or Q35_DT_COUNT for others. */
static inline q35_dtype q35_dtype_x16_of(q35_dtype base) {
    return base == Q35_DT_Q8_0   ? Q35_DT_Q8_0_X16
           : base == Q35_DT_Q4_0 ? Q35_DT_Q4_0_X16
           : base == Q35_DT_Q6_K ? Q35_DT_Q6_K_X16
           : base == Q35_DT_Q4_K ? Q35_DT_Q4_K_X16
                                 : Q35_DT_COUNT;
}

/* Bytes of the x16 form of a [rows, cols] matrix of `base` (Q8_0 / Q4_0,
 * cols % 32 == 0; Q6_K, cols % 256 == 0): whole groups, the last padded. */
size_t q35_x16_bytes(q35_dtype base, int64_t rows, int64_t cols);

/* Groups [g0, g1) of the x16 form of `src` (a [rows, cols] matrix of
 * `base` in the file's layout) into dst (the whole form's start). Groups
 * are independent: threads may pack disjoint ranges at once. */
void q35_x16_pack(q35_dtype base, const uint8_t *src, int64_t rows, int64_t cols, int64_t g0,
                  int64_t g1, uint8_t *dst);

/* The same bytes as q35_x16_pack with AVX-512 (repack_x16_avx512.c; x86
 * only, and only where q35_cpu_has_avx512_set). */
void q35_x16_pack_avx512(q35_dtype base, const uint8_t *src, int64_t rows, int64_t cols, int64_t g0,
                         int64_t g1, uint8_t *dst);

/* The same with AVX2 (repack_x16_avx2.c; where q35_cpu_has_avx2_set). */
void q35_x16_pack_avx2(q35_dtype base, const uint8_t *src, int64_t rows, int64_t cols, int64_t g0,
                       int64_t g1, uint8_t *dst);

typedef void (*q35_x16_pack_fn)(q35_dtype base, const uint8_t *src, int64_t rows, int64_t cols,
                                int64_t g0, int64_t g1, uint8_t *dst);

/* The fastest of those this CPU runs (the same bytes whichever). */
q35_x16_pack_fn q35_x16_pack_pick(void);

/* Block kb of row `row` of an x16 tensor t, as the file's block (34 / 18
 * / 210 bytes into out; Q6_K: super-block kb). */
void q35_x16_block(const q35_tensor *t, int64_t row, int64_t kb, uint8_t *out);

/* Rows [r0, r0 + n) of an x16 tensor t in the file's layout (n rows of
 * q35_row_bytes into out). */
void q35_x16_rows(const q35_tensor *t, int64_t r0, int64_t n, uint8_t *out);

#endif
