/* fastbp micro-kernel: bcast, AVX-512F (32 zmm registers), tile 8x32.
 * 8 rows x 2 vectors (32 float / 16 double columns): 16 zmm accumulators + 2 B vectors + 1 broadcast.
 * The body is bcast_body.h; the vector vocabulary simd_avx512.h. */
#include "ukernels.h"

#if FB_HAVE_X86_KERNELS
#define FB_TARGET "avx512f"
#define BCAST_MR 8
#define BCAST_NV 2
#define FB_KERNEL(name) FB_SFX(fb_avx512_##name)
#define FB_SIMD "simd_avx512.h"
#define FB_BODY "bcast_body.h"
#include "kernel_file.h"
#endif  /* FB_HAVE_X86_KERNELS */
