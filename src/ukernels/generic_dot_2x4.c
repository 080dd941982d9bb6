/* fastbp micro-kernel: dot, plain C (no ISA flags), tile 2x4.
 * 2 rows of A x 4 rows of W: 8 scalar accumulators.
 * The body is dot_body.h; the vector vocabulary simd_scalar.h. */
#include "ukernels.h"

#define DOT_MR 2
#define DOT_NR 4
#define FB_KERNEL(name) FB_SFX(fb_generic_##name)
#define FB_SIMD "simd_scalar.h"
#define FB_BODY "dot_body.h"
#include "kernel_file.h"
