/* fastbp micro-kernel: bcast, AVX2 + FMA (16 ymm registers), tile 6x16.
 * 6 rows x 2 vectors (16 float / 8 double columns): 12 ymm accumulators + 2 B vectors + 1 broadcast.
 * The body is bcast_body.h; the vector vocabulary simd_avx2.h. */
#include "ukernels.h"

#if FB_HAVE_X86_KERNELS
#if defined(__clang__)
#pragma clang attribute push (__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>

#define BCAST_MR 6
#define BCAST_NV 2
#define FB_KERNEL(name) FB_SFX(fb_avx2_##name)

#define FB_DOUBLE 0
#include "simd_avx2.h"
#include "bcast_body.h"
#undef FB_DOUBLE
#define FB_DOUBLE 1
#include "simd_avx2.h"
#include "bcast_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  /* FB_HAVE_X86_KERNELS */
