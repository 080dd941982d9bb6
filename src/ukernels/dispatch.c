/* Which micro-kernels run: the best ISA this CPU supports (cpuid, via GCC's
 * __builtin_cpu_supports), or the one fastbp/_isa.py forced (FASTBP_ISA or
 * fastbp._isa.set_isa), and whether a product goes to them or to BLAS.
 *
 * Each extension module that links the kernels holds its own copy of this state;
 * fastbp/_isa.py sets them all together. */
#include "ukernels.h"

static const fb_kernel_set fb_sets[] = {
    {FB_ISA_GENERIC, 2, 4, 4, 8, 8, fb_generic_dot_s, fb_generic_dot_d,
     fb_generic_bcast_s, fb_generic_bcast_d},
#if FB_HAVE_X86_KERNELS
    {FB_ISA_AVX2, 3, 4, 6, 16, 8, fb_avx2_dot_s, fb_avx2_dot_d,
     fb_avx2_bcast_s, fb_avx2_bcast_d},
    {FB_ISA_AVX512, 4, 6, 8, 32, 16, fb_avx512_dot_s, fb_avx512_dot_d,
     fb_avx512_bcast_s, fb_avx512_bcast_d},
#endif
};

/* When the ISA is chosen automatically, a product goes to fastbp's kernels only where
 * they measured at least as fast as OpenBLAS's sgemm/dgemm on one core (2-core Xeon with
 * AVX-512, tools/kernel_gflops.py, measured under load; see README "Micro-kernels"):
 * never above FB_MAX_WEIGHTS weights (BLAS's cache blocking wins there, e.g. 256 x 784 x
 * 1024); the forward (dot) kernel up to FB_FORWARD_MAX_ROWS samples (float32; float64
 * up to FB_FORWARD_MAX_ROWS_F64); the weight gradient between FB_GRADIENT_MIN_ROWS (at
 * batch 10 BLAS's was faster) and FB_GRADIENT_MAX_ROWS samples, float32 only (dgemm
 * measured faster at every batch); BP2 wherever the weights fit. */
#define FB_MAX_WEIGHTS (256L * 1024)
#define FB_FORWARD_MAX_ROWS 48
#define FB_FORWARD_MAX_ROWS_F64 32
#define FB_GRADIENT_MIN_ROWS 32
#define FB_GRADIENT_MAX_ROWS 128

static int fb_current = -2;   /* -2: not resolved yet */
static int fb_forced = 0;

int fb_isa_supported(int isa)
{
    switch (isa) {
    case FB_ISA_BLAS:
    case FB_ISA_GENERIC:
        return 1;
#if FB_HAVE_X86_KERNELS
    case FB_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FB_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return 0;
    }
}

int fb_isa_best(void)
{
    /* Without AVX2, BLAS's own kernels beat portable C. */
    if (fb_isa_supported(FB_ISA_AVX512))
        return FB_ISA_AVX512;
    if (fb_isa_supported(FB_ISA_AVX2))
        return FB_ISA_AVX2;
    return FB_ISA_BLAS;
}

int fb_set_isa(int isa)
{
    if (isa == FB_ISA_AUTO) {
        fb_current = fb_isa_best();
        fb_forced = 0;
        return 0;
    }
    if (!fb_isa_supported(isa))
        return -1;
    fb_current = isa;
    fb_forced = 1;
    return 0;
}

int fb_get_isa(void)
{
    if (fb_current == -2)
        fb_current = fb_isa_best();
    return fb_current;
}

int fb_isa_forced(void)
{
    return fb_forced;
}

const fb_kernel_set* fb_kernels(void)
{
    int isa = fb_get_isa();
    size_t i;
    for (i = 0; i < sizeof fb_sets / sizeof fb_sets[0]; i++)
        if (fb_sets[i].isa == isa)
            return &fb_sets[i];
    return &fb_sets[0];
}

int fb_use_kernels(int product, long m, long n_in, long n_out, int elem_size)
{
    /* A forced ISA runs every shape (so that the tests reach every kernel). */
    if (fb_get_isa() == FB_ISA_BLAS)
        return 0;
    if (fb_forced)
        return 1;
    if ((double) n_in * (double) n_out > (double) FB_MAX_WEIGHTS)
        return 0;
    switch (product) {
    case FB_PRODUCT_FORWARD:
        return m <= (elem_size == 4 ? FB_FORWARD_MAX_ROWS : FB_FORWARD_MAX_ROWS_F64);
    case FB_PRODUCT_BACKWARD_DELTA:
        return 1;
    case FB_PRODUCT_WEIGHT_GRADIENT:
        return elem_size == 4 && m >= FB_GRADIENT_MIN_ROWS && m <= FB_GRADIENT_MAX_ROWS;
    default:
        return 0;
    }
}
