/* gdn_chunk.c — the Gated DeltaNet recurrence of one value head over a run
 * of tokens in the chunked (WY / UT) form: the same result as the
 * token-by-token recurrence (kernels.h gdn_scan) up to float32 rounding,
 * with the work done as small matrix products (the kernel set's dots and
 * wsum) instead of one rank-1 update of S per token.
 *
 * Per chunk of L tokens, from the state S0 [dk, dv] at its start, with
 * g_t = log decay_t (<= 0) and G_t = g_0 + ... + g_t (so the decay from
 * token s to token t >= s is exp(G_t - G_s) <= 1):
 *
 *     u_t = beta_t (v_t - exp(G_t) S0^T k_t - sum_{s<t} exp(G_t-G_s) (k_t.k_s) u_s)
 *         i.e. (I + A) U = B,  A_ts = beta_t exp(G_t-G_s) k_t.k_s (s < t),
 *                              B_t  = beta_t (v_t - exp(G_t) S0^T k_t)
 *     o_t = exp(G_t) S0^T q_t + sum_{s<=t} exp(G_t-G_s) (q_t.k_s) u_s
 *     S   = exp(G_{L-1}) S0 + sum_s exp(G_{L-1}-G_s) k_s u_s^T
 *
 * which is the recurrence S_t = exp(g_t) S_{t-1} + k_t u_t^T written out
 * (u_t as in SPEC §2: beta (v - (decayed S)^T k)). (I + A) is unit lower
 * triangular: U = (I + A)^-1 B, the inverse by forward substitution on an
 * L x L matrix.
 *
 * The decays never divide: exp(G_t - G_s) is formed as exp(G_t) *
 * exp(-G_s) only while the chunk's total decay G_{L-1} stays above
 * -FACTOR_RANGE, where both factors are well inside float32's range and
 * their product has a few ulp of error; a chunk that decays further gets
 * exp(G_t - G_s) per element (terms that small matter to nothing, but
 * they stay exact, not flushed).
 *
 * Work per token: 3 dk dv multiply-adds for the state terms (as the
 * recurrence) and about 2 L (dk + dv) for the in-chunk products, all of
 * them the kernel set's gdn_mm (kernels.h), a register-blocked product:
 * per chunk, S is read once (S0^T k_t and S0^T q_t of every token in one
 * product over [K; Q]) and read and written once (the update
 * S = exp(G_{L-1}) S0 + Kd^T U as one product with S kept, not
 * scaled, summed and added in three passes). */
#include <math.h>
#include <string.h>

#include "forward/forward.h"

/* Below this total log decay the exp(G_t) * exp(-G_s) factoring is not
 * used (exp(60) = 1.1e26, far inside float32's 3.4e38). */
#define FACTOR_RANGE 60.0f
/* Row blocks of the triangular products: only the columns at or below a
 * block's last row are multiplied. */
#define ROW_BLOCK 16

static size_t pad16(size_t n) {
    return (n + 15) / 16 * 16;
}

size_t q35_gdn_chunk_work(int dk, int dv) {
    size_t L = Q35_GDN_CHUNK;
    return 3 * pad16(L) + 2 * L * (size_t)dk + 2 * (size_t)dk * L + 2 * L * (size_t)dv + 3 * L * L +
           L * (size_t)dv;
}

/* One chunk of L <= Q35_GDN_CHUNK tokens (layout as q35_gdn_chunked). */
static void chunk(const q35_kernels *k, float *S, int dk, int dv, int L, const float *q,
                  const float *kk, int64_t ldqk, const float *v, int64_t ldv, const float *g,
                  const float *beta, int64_t ldg, float *o, int64_t ldo, float *w) {
    float *G = w;                       /* [L] cumulative log decay */
    float *eg = G + pad16(L);           /* [L] exp(G_t) */
    float *ei = eg + pad16(L);          /* [L] exp(-G_t) */
    float *X = ei + pad16(L);           /* [2L, dk] k_t rows, then q_t rows */
    float *KT = X + 2 * (size_t)L * dk; /* [dk, L] k_s as columns */
    float *KdT = KT + (size_t)dk * L;   /* [dk, L] k_s decayed to the chunk's end */
    float *Y = KdT + (size_t)dk * L;    /* [2L, dv] S0^T k_t (then B), S0^T q_t */
    float *AP = Y + 2 * (size_t)L * dv; /* [2L, L] k_t.k_s then A; q_t.k_s then P */
    float *Ti = AP + 2 * (size_t)L * L; /* [L, L] (I + A)^-1 */
    float *U = Ti + (size_t)L * L;      /* [L, dv] */
    float *A = AP, *P = AP + (size_t)L * L;
    float *KS = Y, *QS = Y + (size_t)L * dv;

    double acc = 0;
    for (int t = 0; t < L; t++) {
        acc += g[t * ldg];
        G[t] = (float)acc;
        eg[t] = expf(G[t]);
    }
    const bool factored = G[L - 1] > -FACTOR_RANGE;
    if (factored)
        for (int t = 0; t < L; t++)
            ei[t] = expf(-G[t]);

    for (int t = 0; t < L; t++) {
        const float *kt = kk + t * ldqk;
        float dec = expf(G[L - 1] - G[t]);
        memcpy(X + (size_t)t * dk, kt, (size_t)dk * sizeof *X);
        memcpy(X + (size_t)(L + t) * dk, q + t * ldqk, (size_t)dk * sizeof *X);
        for (int i = 0; i < dk; i++) {
            KT[(size_t)i * L + t] = kt[i];
            KdT[(size_t)i * L + t] = dec * kt[i];
        }
    }
    /* the state's part, S0^T k_t and S0^T q_t, and the in-chunk dot
     * products A[t][s] = k_t.k_s, P[t][s] = q_t.k_s */
    k->gdn_mm(2 * L, dv, dk, X, dk, S, dv, Y, dv, 0);
    k->gdn_mm(2 * L, L, dk, X, dk, KT, L, AP, L, 0);

    /* A_ts = beta_t exp(G_t - G_s) k_t.k_s (s < t);  P_ts = exp(G_t - G_s) q_t.k_s
     * (s <= t), zero above the diagonal */
    for (int t = 0; t < L; t++) {
        float bt = beta[t * ldg], *at = A + (size_t)t * L, *pt = P + (size_t)t * L;
        for (int s = 0; s <= t; s++) {
            float dec = factored ? eg[t] * ei[s] : expf(G[t] - G[s]);
            at[s] *= bt * dec;
            pt[s] *= dec;
        }
        for (int s = t + 1; s < L; s++)
            pt[s] = 0;
    }
    /* Ti = (I + A)^-1, row by row: Ti_t = e_t - sum_{r<t} A_tr Ti_r (row r
     * is zero past column r) */
    for (int t = 0; t < L; t++) {
        float *tt = Ti + (size_t)t * L;
        memset(tt, 0, (size_t)L * sizeof *tt);
        tt[t] = 1;
        for (int r = 0; r < t; r++) {
            float c = -A[(size_t)t * L + r];
            const float *tr = Ti + (size_t)r * L;
            for (int s = 0; s <= r; s++)
                tt[s] += c * tr[s];
        }
    }
    /* B_t = beta_t (v_t - exp(G_t) S0^T k_t), in place of KS;
     * o_t starts as exp(G_t) S0^T q_t */
    for (int t = 0; t < L; t++) {
        float bt = beta[t * ldg], e = eg[t], *bt_row = KS + (size_t)t * dv;
        const float *vt = v + t * ldv, *qs = QS + (size_t)t * dv;
        float *ot = o + t * ldo;
        for (int j = 0; j < dv; j++) {
            bt_row[j] = bt * (vt[j] - e * bt_row[j]);
            ot[j] = e * qs[j];
        }
    }
    /* U = Ti B;  o += P U (lower-triangular row blocks) */
    for (int r0 = 0; r0 < L; r0 += ROW_BLOCK) {
        int nr = L - r0 < ROW_BLOCK ? L - r0 : ROW_BLOCK;
        k->gdn_mm(nr, dv, r0 + nr, Ti + (size_t)r0 * L, L, KS, dv, U + (size_t)r0 * dv, dv, 0);
    }
    for (int r0 = 0; r0 < L; r0 += ROW_BLOCK) {
        int nr = L - r0 < ROW_BLOCK ? L - r0 : ROW_BLOCK;
        k->gdn_mm(nr, dv, r0 + nr, P + (size_t)r0 * L, L, U, dv, o + r0 * ldo, ldo, 1);
    }
    /* S = exp(G_{L-1}) S0 + sum_s exp(G_{L-1} - G_s) k_s u_s^T, in one pass */
    k->gdn_mm(dk, dv, L, KdT, L, U, dv, S, dv, eg[L - 1]);
}

void q35_gdn_chunked(const q35_kernels *k, float *S, int dk, int dv, int T, const float *q,
                     const float *kk, int64_t ldqk, const float *v, int64_t ldv, const float *g,
                     const float *beta, int64_t ldg, float *o, int64_t ldo, float *work) {
    for (int t0 = 0; t0 < T; t0 += Q35_GDN_CHUNK) {
        int L = T - t0 < Q35_GDN_CHUNK ? T - t0 : Q35_GDN_CHUNK;
        chunk(k, S, dk, dv, L, q + t0 * ldqk, kk + t0 * ldqk, ldqk, v + t0 * ldv, ldv, g + t0 * ldg,
              beta + t0 * ldg, ldg, o + t0 * ldo, ldo, work);
    }
}
