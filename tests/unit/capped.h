/* capped.h - run a test body again with the kernel choice capped (onnx_sgemm.h): the AVX2 paths and the plain
 * ones (OpenBLAS, scalar loops), which a CPU with AVX-512 would otherwise never run. */
#ifndef TEST_CAPPED_H
#define TEST_CAPPED_H

#include "onnx_sgemm.h"

static inline void run_capped(void (*test)(void **state), void **state) {
    onx_sgemm_cap(ONX_K_AVX2);
    test(state);
    onx_sgemm_cap(ONX_K_NONE);
    test(state);
    onx_sgemm_cap(ONX_K_AVX512);
}

#endif
