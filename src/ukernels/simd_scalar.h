/* The vector vocabulary of the micro-kernel bodies in plain C: one lane, so the bodies
 * become scalar register tiles (which the compiler may still vectorise with the
 * baseline SSE2). Included by the generic_*.c kernel files. */
#include "simd_undef.h"
#if FB_DOUBLE
#define FB_T double
#define FB_SFX(name) name##_d
#else
#define FB_T float
#define FB_SFX(name) name##_s
#endif
#define VL 1
#define V FB_T
#define VM int
#define V_ZERO() ((FB_T) 0)
#define V_LOADU(p) (*(p))
#define V_STOREU(p, v) (*(p) = (v))
#define V_MASK(n) ((n) > 0)
#define V_MLOAD(m, p) ((m) ? *(p) : (FB_T) 0)
#define V_MSTORE(p, m, v) do { if (m) *(p) = (v); } while (0)
#define V_SET1(x) ((FB_T) (x))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_MUL(a, b) ((a) * (b))
#define V_SUB(a, b) ((a) - (b))
#define V_REDUCE(v) (v)
#define V_SELECT_GT0(x, yes, no) ((x) > 0 ? (yes) : (no))
