/* fastbp micro-kernel: bcast, plain C (no ISA flags), tile 4x8.
 * 4 rows x 8 columns of scalar accumulators (the compiler may pair them into SSE2 vectors).
 * The body is bcast_body.h; the vector vocabulary simd_scalar.h. */
#include "ukernels.h"

#define BCAST_MR 4
#define BCAST_NV 8
#define FB_KERNEL(name) FB_SFX(fb_generic_##name)
#define FB_SIMD "simd_scalar.h"
#define FB_BODY "bcast_body.h"
#include "kernel_file.h"
