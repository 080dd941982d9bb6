/* fastbp micro-kernel: dot, AVX-512F (32 zmm registers), tile 4x6.
 * 4 rows of A x 6 rows of W: 24 zmm accumulators + 4 A vectors + 1 W vector = 29 of 32 registers.
 * The body is dot_body.h; the vector vocabulary simd_avx512.h. */
#include "ukernels.h"

#if FB_HAVE_X86_KERNELS
#define FB_TARGET "avx512f"
#define DOT_MR 4
#define DOT_NR 6
#define FB_KERNEL(name) FB_SFX(fb_avx512_##name)
#define FB_SIMD "simd_avx512.h"
#define FB_BODY "dot_body.h"
#include "kernel_file.h"
#endif  /* FB_HAVE_X86_KERNELS */
