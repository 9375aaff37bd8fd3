/* cpu_features.c — cpuid/xgetbv reading on x86, hwcaps on AArch64. On x86
 * a feature counts only when both the CPU reports it and the OS has enabled
 * saving its registers (XCR0), which a hypervisor may withhold. */
#include "kernels/cpu_features.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

void q35_cpu_features_detect(q35_cpu_features *f) {
    memset(f, 0, sizeof *f);
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = (c >> 27) & 1;
    f->fma = (c >> 12) & 1;
    f->f16c = (c >> 29) & 1;
    bool avx = (c >> 28) & 1;
    if (osxsave && avx) {
        unsigned long long xcr0 = read_xcr0();
        f->os_avx = (xcr0 & 0x6) == 0x6;
        f->os_avx512 = f->os_avx && (xcr0 & 0xe0) == 0xe0;
        f->os_amx = (xcr0 & 0x60000) == 0x60000;
    }
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f->avx2 = (b >> 5) & 1;
        f->avx512f = (b >> 16) & 1;
        f->avx512dq = (b >> 17) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        f->avx512_vnni = (c >> 11) & 1;
        f->amx_bf16 = (d >> 22) & 1;
        f->amx_tile = (d >> 24) & 1;
        f->amx_int8 = (d >> 25) & 1;
        __cpuid_count(7, 1, a, b, c, d);
        f->avx_vnni = (a >> 4) & 1;
        f->avx512_bf16 = (a >> 5) & 1;
    }
    if (!f->os_avx) f->avx2 = f->fma = f->f16c = f->avx_vnni = false;
    if (!f->os_avx512)
        f->avx512f = f->avx512bw = f->avx512vl = f->avx512dq = f->avx512_bf16 = f->avx512_vnni =
            false;
    if (!f->os_amx) f->amx_tile = f->amx_bf16 = f->amx_int8 = false;
}

#elif defined(__aarch64__) && defined(__linux__)
/* AArch64 Linux: the kernel's hwcaps, which say what user space may execute
 * (a hypervisor or qemu-aarch64 -cpu model may report less than the core
 * implements). NEON is mandatory; the integer kernels pick among plain NEON,
 * NEON + sdot (HWCAP_ASIMDDP, Armv8.2 dotprod) and NEON + sdot + smmla
 * (HWCAP2_I8MM, Armv8.6 i8mm). */
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif

void q35_cpu_features_detect(q35_cpu_features *f) {
    memset(f, 0, sizeof *f);
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    f->neon = true;
    f->dotprod = (hw & HWCAP_ASIMDDP) != 0;
    /* every i8mm core has dotprod too (Armv8.6); the i8mm kernels use both */
    f->i8mm = f->dotprod && (hw2 & HWCAP2_I8MM) != 0;
}

#elif defined(__aarch64__) && defined(__APPLE__)
/* Apple silicon: the same features through sysctl (M1 has dotprod, M2 on
 * i8mm). */
#include <sys/sysctl.h>

static bool sysctl_flag(const char *name) {
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, NULL, 0) == 0 && v != 0;
}

void q35_cpu_features_detect(q35_cpu_features *f) {
    memset(f, 0, sizeof *f);
    f->neon = true;
    f->dotprod = sysctl_flag("hw.optional.arm.FEAT_DotProd");
    f->i8mm = f->dotprod && sysctl_flag("hw.optional.arm.FEAT_I8MM");
}

#else
/* Elsewhere only what the compiler was told the target has. */
void q35_cpu_features_detect(q35_cpu_features *f) {
    memset(f, 0, sizeof *f);
#if defined(__aarch64__)
    f->neon = true;
#if defined(__ARM_FEATURE_DOTPROD)
    f->dotprod = true;
#endif
#if defined(__ARM_FEATURE_DOTPROD) && defined(__ARM_FEATURE_MATMUL_INT8)
    f->i8mm = true;
#endif
#endif
}
#endif

bool q35_cpu_has_avx2_set(const q35_cpu_features *f) {
    return f->avx2 && f->fma && f->f16c;
}

bool q35_cpu_has_avx512_set(const q35_cpu_features *f) {
    return q35_cpu_has_avx2_set(f) && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq &&
           f->avx512_bf16;
}
