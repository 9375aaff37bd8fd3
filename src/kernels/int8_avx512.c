/* int8_avx512.c — the integer path for AVX-512 VNNI (microkernel.h): see
 * below. */
#include "kernels/cpu_features.h"
#include "kernels/microkernel.h"

const q35_i8_kernels q35_i8_avx512vnni_set = {
    .name = "avx512vnni",
    .quantize = q35_q8_quantize_ref,
};

const q35_i8_kernels *q35_i8_kernels_avx512vnni(void) {
    return NULL;
}
