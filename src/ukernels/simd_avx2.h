/* The vector vocabulary of the micro-kernel bodies for AVX2 + FMA, float (FB_DOUBLE 0)
 * or double (FB_DOUBLE 1). Masks are lane vectors (maskload/maskstore), read from a
 * sliding window over a table of -1s then 0s. Included by the avx2_*.c kernel files. */
#include "simd_undef.h"
#ifndef FB_AVX2_HELPERS
#define FB_AVX2_HELPERS
static const int fb_avx2_mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const long long fb_avx2_mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
static inline float fb_avx2_reduce_s(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline double fb_avx2_reduce_d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}
#endif
#if FB_DOUBLE
#define FB_T double
#define FB_SFX(name) name##_d
#define VL 4
#define V __m256d
#define VM __m256i
#define V_ZERO() _mm256_setzero_pd()
#define V_LOADU(p) _mm256_loadu_pd(p)
#define V_STOREU(p, v) _mm256_storeu_pd(p, v)
#define V_MASK(n) _mm256_loadu_si256((const __m256i*) (fb_avx2_mask64 + 4 - ((n) >= 4 ? 4 : (n))))
#define V_MLOAD(m, p) _mm256_maskload_pd(p, m)
#define V_MSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define V_SET1(x) _mm256_set1_pd(x)
#define V_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define V_MUL(a, b) _mm256_mul_pd(a, b)
#define V_SUB(a, b) _mm256_sub_pd(a, b)
#define V_REDUCE(v) fb_avx2_reduce_d(v)
#define V_SELECT_GT0(x, yes, no) \
    _mm256_blendv_pd(no, yes, _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ))
#else
#define FB_T float
#define FB_SFX(name) name##_s
#define VL 8
#define V __m256
#define VM __m256i
#define V_ZERO() _mm256_setzero_ps()
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps(p, v)
#define V_MASK(n) _mm256_loadu_si256((const __m256i*) (fb_avx2_mask32 + 8 - ((n) >= 8 ? 8 : (n))))
#define V_MLOAD(m, p) _mm256_maskload_ps(p, m)
#define V_MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define V_SET1(x) _mm256_set1_ps(x)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_REDUCE(v) fb_avx2_reduce_s(v)
#define V_SELECT_GT0(x, yes, no) \
    _mm256_blendv_ps(no, yes, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ))
#endif
