/* fastbp micro-kernel: dot, AVX2 + FMA (16 ymm registers), tile 3x4.
 * 3 rows of A x 4 rows of W: 12 ymm accumulators + 3 A vectors + 1 W vector = 16 of 16 registers.
 * The body is dot_body.h; the vector vocabulary simd_avx2.h. */
#include "ukernels.h"

#if FB_HAVE_X86_KERNELS
#if defined(__clang__)
#pragma clang attribute push (__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>

#define DOT_MR 3
#define DOT_NR 4
#define FB_KERNEL(name) FB_SFX(fb_avx2_##name)

#define FB_DOUBLE 0
#include "simd_avx2.h"
#include "dot_body.h"
#undef FB_DOUBLE
#define FB_DOUBLE 1
#include "simd_avx2.h"
#include "dot_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  /* FB_HAVE_X86_KERNELS */
