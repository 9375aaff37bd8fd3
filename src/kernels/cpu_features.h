/* cpu_features.h — what the processor we run on can execute, asked once
 * (cpuid + xgetbv on x86, hwcaps on AArch64) so kernels are picked at run
 * time rather than at build time. */
#ifndef Q35_KERNELS_CPU_FEATURES_H
#define Q35_KERNELS_CPU_FEATURES_H

#include <stdbool.h>

typedef struct q35_cpu_features {
    bool avx2, fma, f16c; /* the AVX2 kernel set needs all three */
    bool avx512f, avx512bw, avx512vl, avx512dq;
    bool avx512_bf16, avx512_vnni;
    bool avx_vnni; /* VEX-encoded vpdpbusd (Alder Lake, Zen 5 client) */
    bool amx_tile, amx_bf16, amx_int8;
    bool os_avx, os_avx512, os_amx; /* the OS saves these register files */
    bool neon, dotprod, i8mm;
} q35_cpu_features;

/* Fills `f` for the running CPU. Cheap enough to call per model load. */
void q35_cpu_features_detect(q35_cpu_features *f);

/* The AVX2+FMA+F16C and AVX-512 (F/BW/VL/DQ + BF16) kernel sets. */
bool q35_cpu_has_avx2_set(const q35_cpu_features *f);
bool q35_cpu_has_avx512_set(const q35_cpu_features *f);

#endif
