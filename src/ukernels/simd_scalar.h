/* The vector vocabulary of the micro-kernel bodies in plain C: one lane, so the bodies
 * become scalar register tiles (which the compiler may still vectorise with the
 * baseline SSE2). Included by the generic_*.c kernel files.
 *
 * The accumulators are double for both dtypes: the baseline x86-64 has no fused
 * multiply-add, so a float accumulator would round twice per term and drift from BLAS
 * (whose sums use FMA) over long sums; products of floats are exact in double. */
#include "simd_undef.h"
#if FB_DOUBLE
#define FB_T double
#define FB_SFX(name) name##_d
#else
#define FB_T float
#define FB_SFX(name) name##_s
#endif
#define VL 1
#define V double
#define VM int
#define V_ZERO() 0.0
#define V_LOADU(p) ((double) *(p))
#define V_STOREU(p, v) (*(p) = (FB_T) (v))
#define V_MASK(n) ((n) > 0)
#define V_MLOAD(m, p) ((m) ? (double) *(p) : 0.0)
#define V_MSTORE(p, m, v) do { if (m) *(p) = (FB_T) (v); } while (0)
#define V_SET1(x) ((double) (x))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_MUL(a, b) ((a) * (b))
#define V_SUB(a, b) ((a) - (b))
#define V_REDUCE(v) (v)
#define V_SELECT_GT0(x, yes, no) ((x) > 0 ? (yes) : (no))
