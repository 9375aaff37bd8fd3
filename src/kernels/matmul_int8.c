/* matmul_int8.c — the one blocking driver of the integer matmul path
 * (microkernel.h) and the choice of integer set for a float kernel set.
 * Every instruction set's micro-kernels run under this loop nest; none of
 * them has loops over rows or tokens of its own beyond its register tile. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/microkernel.h"

/* Weight bytes per panel: the panel is reread from L2 once per token tile,
 * so it must stay there next to the other thread's (L2 is 512 KB on Zen 3,
 * 1-2 MB on recent Intel cores). */
#define PANEL_BYTES (128 * 1024)

/* Many tokens: each group of pd->rows weight rows repacked once into a
 * buffer of this call (malloc'd: up to ~40 KB for 4-bit rows of 4096),
 * then multiplied by every token tile; the group stays in L1/L2 while the
 * q8 rows stream past it. False (nothing done) where the buffer could not
 * be had: the register tiles run instead, same values within rounding. */
static bool panel_matmul(const q35_i8_panel_desc *pd, const q35_tensor *w, const uint8_t *x,
                         size_t ldx, int T, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    int64_t cols = w->shape[1];
    size_t ldw = q35_row_bytes(w->dtype, cols);
    size_t nb = (pd->pack_bytes(cols) + 63) / 64 * 64;
    uint8_t *buf = aligned_alloc(64, nb);
    if (!buf) return false;
    const uint8_t *base = w->data;
    for (int64_t o = r0; o < r1; o += pd->rows) {
        int R = r1 - o < pd->rows ? (int)(r1 - o) : pd->rows;
        pd->pack(base + (size_t)o * ldw, ldw, R, cols, buf);
        for (int t = 0; t < T; t += pd->nt) {
            int C = T - t < pd->nt ? T - t : pd->nt;
            pd->kernel(buf, R, x + (size_t)t * ldx, ldx, C, cols, y + (int64_t)t * ldy + o, ldy);
        }
    }
    free(buf);
    return true;
}

void q35_i8_matmul(const q35_i8_kernels *k, const q35_tensor *w, const uint8_t *x, size_t ldx,
                   int T, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const q35_i8_ukernel_desc *d = &k->mk[w->dtype];
    const q35_i8_panel_desc *pd = &k->panel[w->dtype];
    if (pd->kernel && T >= pd->min_t && panel_matmul(pd, w, x, ldx, T, y, ldy, r0, r1)) return;
    int64_t cols = w->shape[1];
    size_t ldw = q35_row_bytes(w->dtype, cols);
    int64_t panel = (int64_t)(PANEL_BYTES / (ldw ? ldw : 1));
    panel = panel < d->mr ? d->mr : panel / d->mr * d->mr;
    const uint8_t *base = d->fnv ? NULL : (const uint8_t *)w->data;
    for (int64_t p = r0; p < r1; p += panel) {
        int64_t pe = r1 - p < panel ? r1 : p + panel;
        for (int t = 0; t < T; t += d->nr) {
            int C = T - t < d->nr ? T - t : d->nr;
            for (int64_t o = p; o < pe; o += d->mr) {
                int R = pe - o < d->mr ? (int)(pe - o) : d->mr;
                if (d->fnv) { /* scales apart from the codes (microkernel.h) */
                    q35_i8_wview v = q35_i8_wview_rows(w, o);
                    d->fnv(&v, R, x + (size_t)t * ldx, ldx, C, cols, y + (int64_t)t * ldy + o, ldy);
                } else
                    d->fn(base + (size_t)o * ldw, ldw, R, x + (size_t)t * ldx, ldx, C, cols,
                          y + (int64_t)t * ldy + o, ldy);
            }
        }
    }
}

/* The NEON sets' file defines the real one on AArch64. */
__attribute__((weak)) const q35_i8_kernels *q35_i8_kernels_neon(void) {
    return NULL;
}
