/* fastbp micro-kernel: dot, plain C (no ISA flags), tile 2x4.
 * 2 rows of A x 4 rows of W: 8 scalar accumulators.
 * The body is dot_body.h; the vector vocabulary simd_scalar.h. */
#include "ukernels.h"

#define DOT_MR 2
#define DOT_NR 4
#define FB_KERNEL(name) FB_SFX(fb_generic_##name)

#define FB_DOUBLE 0
#include "simd_scalar.h"
#include "dot_body.h"
#undef FB_DOUBLE
#define FB_DOUBLE 1
#include "simd_scalar.h"
#include "dot_body.h"

