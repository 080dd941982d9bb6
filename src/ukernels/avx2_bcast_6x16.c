/* fastbp micro-kernel: bcast, AVX2 + FMA (16 ymm registers), tile 6x16.
 * 6 rows x 2 vectors (16 float / 8 double columns): 12 ymm accumulators + 2 B vectors + 1 broadcast.
 * The body is bcast_body.h; the vector vocabulary simd_avx2.h. */
#include "ukernels.h"

#if FB_HAVE_X86_KERNELS
#define FB_TARGET "avx2,fma"
#define BCAST_MR 6
#define BCAST_NV 2
#define FB_KERNEL(name) FB_SFX(fb_avx2_##name)
#define FB_SIMD "simd_avx2.h"
#define FB_BODY "bcast_body.h"
#include "kernel_file.h"
#endif  /* FB_HAVE_X86_KERNELS */
