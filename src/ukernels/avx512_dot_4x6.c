/* fastbp micro-kernel: dot, AVX-512F (32 zmm registers), tile 4x6.
 * 4 rows of A x 6 rows of W: 24 zmm accumulators + 4 A vectors + 1 W vector = 29 of 32 registers.
 * The body is dot_body.h; the vector vocabulary simd_avx512.h. */
#include "ukernels.h"

#if FB_HAVE_X86_KERNELS
#if defined(__clang__)
#pragma clang attribute push (__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif
#include <immintrin.h>

#define DOT_MR 4
#define DOT_NR 6
#define FB_KERNEL(name) FB_SFX(fb_avx512_##name)

#define FB_DOUBLE 0
#include "simd_avx512.h"
#include "dot_body.h"
#undef FB_DOUBLE
#define FB_DOUBLE 1
#include "simd_avx512.h"
#include "dot_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  /* FB_HAVE_X86_KERNELS */
