/* The shared part of every micro-kernel file (src/ukernels/<isa>_<body>_<tile>.c).
 * That file defines its body's tile macros, FB_KERNEL(name) and
 *   FB_SIMD    the vector vocabulary header, e.g. "simd_avx2.h";
 *   FB_BODY    the kernel body, "bcast_body.h" or "dot_body.h";
 *   FB_TARGET  the instruction set as GCC's and clang's target attribute spells it,
 *              e.g. "avx2,fma" (left undefined for plain C),
 * then includes this file, which compiles the body for float and for double with that
 * instruction set enabled for these functions only (the build flags stay portable). */
#ifdef FB_TARGET
/* _Pragma of a macro-expanded argument: #pragma lines do not expand FB_TARGET. */
#define FB_PRAGMA_STRING(...) _Pragma(#__VA_ARGS__)
#define FB_PRAGMA(...) FB_PRAGMA_STRING(__VA_ARGS__)
#if defined(__clang__)
FB_PRAGMA(clang attribute push (__attribute__((target(FB_TARGET))), apply_to = function))
#else
FB_PRAGMA(GCC push_options)
FB_PRAGMA(GCC target(FB_TARGET))
#endif
#include <immintrin.h>
#endif

#define FB_DOUBLE 0
#include FB_SIMD
#include FB_BODY
#undef FB_DOUBLE
#define FB_DOUBLE 1
#include FB_SIMD
#include FB_BODY

#ifdef FB_TARGET
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
