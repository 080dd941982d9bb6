/* fastbp's small-matrix micro-kernels for the three products of a dense layer.
 *
 * The layout follows BLIS: each ISA contributes two micro-kernels, each in a file named
 * for its ISA and register tile (avx512_dot_4x6.c, avx2_bcast_6x16.c, ...); the loops
 * around them (loops.c) and the run-time choice of ISA (dispatch.c) are shared C,
 * compiled with the default flags. The kernel files set their instruction set per file
 * (#pragma GCC target), so the build needs no -march flag and runs on any x86-64.
 *
 * Two micro-kernels serve the three products, all on row-major operands, weights in
 * the public (out, in) layout:
 *   dot    C[r, j] := bias[j] + sum_p A[r, p] W[j, p]          forward Z = A_prev W^T
 *          (both operands contiguous along p: vector accumulators along p, one
 *          horizontal sum per output at the end; no packing)
 *   bcast  C[r, c] := epilogue(sum_p a(r, p) B[p, c])           BP2 and the weight gradient
 *          a(r, p) = a[r*rs_a + p*cs_a] is broadcast, B's row segment loaded as vectors.
 *          BP2: a = delta (rs_a = n_out, cs_a = 1), B = W; epilogue * act'(A_prev).
 *          weight gradient: a = delta^T (rs_a = 1, cs_a = n_out), B = A_prev; epilogue
 *          C := alpha acc + beta C, which is plain SGD with L2 when C is W itself.
 */
#ifndef FASTBP_UKERNELS_H
#define FASTBP_UKERNELS_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(_WIN32)
#define FB_HIDDEN __attribute__((visibility("hidden")))
#else
#define FB_HIDDEN
#endif

#if defined(__GNUC__)
#define FB_ALWAYS_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FB_ALWAYS_INLINE static __forceinline
#else
#define FB_ALWAYS_INLINE static inline
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define FB_HAVE_X86_KERNELS 1
#else
#define FB_HAVE_X86_KERNELS 0
#endif

/* Instruction-set codes (fastbp/_isa.py holds the names). */
enum { FB_ISA_BLAS = 0, FB_ISA_GENERIC = 1, FB_ISA_AVX2 = 2, FB_ISA_AVX512 = 3,
       FB_ISA_AUTO = -1 };

/* Activation codes, as src/_activations.pxd. */
enum { FB_IDENTITY = 0, FB_SIGMOID = 1, FB_TANH = 2, FB_RELU = 3, FB_LEAKY_RELU = 4,
       FB_SOFTMAX = 5 };
#define FB_LEAKY_SLOPE 0.01

typedef void (*fb_dot_s_fn)(long k, const float* a, long lda, const float* w, long ldw,
                            float* c, long ldc, int mr, int nr, const float* bias);
typedef void (*fb_dot_d_fn)(long k, const double* a, long lda, const double* w, long ldw,
                            double* c, long ldc, int mr, int nr, const double* bias);
typedef void (*fb_bcast_s_fn)(long k, const float* a, long rs_a, long cs_a, const float* b,
                              long ldb, float* c, long ldc, int mr, int nr, float alpha,
                              float beta, const float* act_prev, int activation);
typedef void (*fb_bcast_d_fn)(long k, const double* a, long rs_a, long cs_a, const double* b,
                              long ldb, double* c, long ldc, int mr, int nr, double alpha,
                              double beta, const double* act_prev, int activation);

/* One ISA's micro-kernels and their tiles (rows x columns; columns per dtype for bcast). */
typedef struct {
    int isa;
    int dot_mr, dot_nr;
    int bcast_mr, bcast_nr_s, bcast_nr_d;
    fb_dot_s_fn dot_s;
    fb_dot_d_fn dot_d;
    fb_bcast_s_fn bcast_s;
    fb_bcast_d_fn bcast_d;
} fb_kernel_set;

/* The micro-kernels each ISA file defines: fb_<isa>_dot_s/_d and fb_<isa>_bcast_s/_d. */
#define FB_DECLARE_KERNELS(isa)                                                            \
    FB_HIDDEN void fb_##isa##_dot_s(long k, const float* a, long lda, const float* w,     \
                                    long ldw, float* c, long ldc, int mr, int nr,          \
                                    const float* bias);                                    \
    FB_HIDDEN void fb_##isa##_dot_d(long k, const double* a, long lda, const double* w,   \
                                    long ldw, double* c, long ldc, int mr, int nr,         \
                                    const double* bias);                                   \
    FB_HIDDEN void fb_##isa##_bcast_s(long k, const float* a, long rs_a, long cs_a,       \
                                      const float* b, long ldb, float* c, long ldc,        \
                                      int mr, int nr, float alpha, float beta,             \
                                      const float* act_prev, int activation);              \
    FB_HIDDEN void fb_##isa##_bcast_d(long k, const double* a, long rs_a, long cs_a,      \
                                      const double* b, long ldb, double* c, long ldc,      \
                                      int mr, int nr, double alpha, double beta,           \
                                      const double* act_prev, int activation);
FB_DECLARE_KERNELS(generic)
#if FB_HAVE_X86_KERNELS
FB_DECLARE_KERNELS(avx2)
FB_DECLARE_KERNELS(avx512)
#endif

/* dispatch.c: which kernels run. */
FB_HIDDEN int fb_isa_supported(int isa);
FB_HIDDEN int fb_isa_best(void);
FB_HIDDEN int fb_set_isa(int isa);   /* FB_ISA_AUTO or a code; -1 if unsupported */
FB_HIDDEN int fb_get_isa(void);      /* the code in use (AUTO resolved) */
FB_HIDDEN int fb_isa_forced(void);
/* Whether a product of (m samples, n_in, n_out) goes to the micro-kernels (1) or BLAS. */
enum { FB_PRODUCT_FORWARD = 0, FB_PRODUCT_BACKWARD_DELTA = 1, FB_PRODUCT_WEIGHT_GRADIENT = 2 };
FB_HIDDEN int fb_use_kernels(int product, long m, long n_in, long n_out, int elem_size);
FB_HIDDEN const fb_kernel_set* fb_kernels(void);

/* loops.c: the products on whole (sub-)matrices, one thread each. */
FB_HIDDEN void fb_dense_nt_s(long m, long n_out, long k, const float* a, long lda,
                             const float* w, long ldw, const float* bias, float* c, long ldc);
FB_HIDDEN void fb_dense_nt_d(long m, long n_out, long k, const double* a, long lda,
                             const double* w, long ldw, const double* bias, double* c, long ldc);
FB_HIDDEN void fb_bcast_s(long m, long n, long k, const float* a, long rs_a, long cs_a,
                          const float* b, long ldb, float* c, long ldc, float alpha,
                          float beta, const float* act_prev, int activation);
FB_HIDDEN void fb_bcast_d(long m, long n, long k, const double* a, long rs_a, long cs_a,
                          const double* b, long ldb, double* c, long ldc, double alpha,
                          double beta, const double* act_prev, int activation);

#endif
