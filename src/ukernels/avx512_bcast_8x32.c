/* fastbp micro-kernel: bcast, AVX-512F (32 zmm registers), tile 8x32.
 * 8 rows x 2 vectors (32 float / 16 double columns): 16 zmm accumulators + 2 B vectors + 1 broadcast.
 * The body is bcast_body.h; the vector vocabulary simd_avx512.h. */
#include "ukernels.h"

#if FB_HAVE_X86_KERNELS
#if defined(__clang__)
#pragma clang attribute push (__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif
#include <immintrin.h>

#define BCAST_MR 8
#define BCAST_NV 2
#define FB_KERNEL(name) FB_SFX(fb_avx512_##name)

#define FB_DOUBLE 0
#include "simd_avx512.h"
#include "bcast_body.h"
#undef FB_DOUBLE
#define FB_DOUBLE 1
#include "simd_avx512.h"
#include "bcast_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  /* FB_HAVE_X86_KERNELS */
