/* The vector vocabulary of the micro-kernel bodies for AVX-512F, float (FB_DOUBLE 0) or
 * double (FB_DOUBLE 1). Included once per dtype by the avx512_*.c kernel files. */
#include "simd_undef.h"
#if FB_DOUBLE
#define FB_T double
#define FB_SFX(name) name##_d
#define VL 8
#define V __m512d
#define VM __mmask8
#define V_ZERO() _mm512_setzero_pd()
#define V_LOADU(p) _mm512_loadu_pd(p)
#define V_STOREU(p, v) _mm512_storeu_pd(p, v)
#define V_MASK(n) ((__mmask8) ((n) >= 8 ? 0xFFu : ((1u << (n)) - 1u)))
#define V_MLOAD(m, p) _mm512_maskz_loadu_pd(m, p)
#define V_MSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define V_SET1(x) _mm512_set1_pd(x)
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_MUL(a, b) _mm512_mul_pd(a, b)
#define V_SUB(a, b) _mm512_sub_pd(a, b)
#define V_REDUCE(v) _mm512_reduce_add_pd(v)
/* x > 0 ? yes : no, lane by lane (NaN > 0 is false) */
#define V_SELECT_GT0(x, yes, no) \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ), no, yes)
#else
#define FB_T float
#define FB_SFX(name) name##_s
#define VL 16
#define V __m512
#define VM __mmask16
#define V_ZERO() _mm512_setzero_ps()
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define V_MASK(n) ((__mmask16) ((n) >= 16 ? 0xFFFFu : ((1u << (n)) - 1u)))
#define V_MLOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define V_MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_REDUCE(v) _mm512_reduce_add_ps(v)
#define V_SELECT_GT0(x, yes, no) \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), no, yes)
#endif
