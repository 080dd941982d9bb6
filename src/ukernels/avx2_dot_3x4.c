/* fastbp micro-kernel: dot, AVX2 + FMA (16 ymm registers), tile 3x4.
 * 3 rows of A x 4 rows of W: 12 ymm accumulators + 3 A vectors + 1 W vector = 16 of 16 registers.
 * The body is dot_body.h; the vector vocabulary simd_avx2.h. */
#include "ukernels.h"

#if FB_HAVE_X86_KERNELS
#define FB_TARGET "avx2,fma"
#define DOT_MR 3
#define DOT_NR 4
#define FB_KERNEL(name) FB_SFX(fb_avx2_##name)
#define FB_SIMD "simd_avx2.h"
#define FB_BODY "dot_body.h"
#include "kernel_file.h"
#endif  /* FB_HAVE_X86_KERNELS */
