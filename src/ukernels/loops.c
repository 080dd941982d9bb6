/* The loops around the micro-kernels: shared by every ISA (they reach the kernels of
 * the ISA in use through dispatch.c's table) and compiled with the default flags.
 * Each function computes one whole (sub-)product on the calling thread; the split
 * over threads is src/_layers.pxd's. */
#include "ukernels.h"

/* Rows of A kept hot while every tile of W's rows passes over them (forward): about
 * half of a 1 MiB L2. */
#define FB_DOT_ROW_BLOCK_BYTES (192 * 1024)

/* A cache line, the widest vector (AVX-512). */
#define FB_ALIGN 64

#define FB_LOOPS(FB_T, SFX)                                                              \
FB_HIDDEN void fb_dense_nt_##SFX(long m, long n_out, long k, const FB_T* a, long lda,    \
                                 const FB_T* w, long ldw, const FB_T* bias, FB_T* c,      \
                                 long ldc)                                                \
{                                                                                         \
    /* c (m, n_out) := a @ w.T + bias: W's tile of dot_nr rows stays in L1 while a     \
       block of A's rows streams past it. */                                              \
    const fb_kernel_set* K = fb_kernels();                                                \
    long mr = K->dot_mr, nr = K->dot_nr, i1, i0, j0, i_end;                               \
    long block = FB_DOT_ROW_BLOCK_BYTES / ((k > 0 ? k : 1) * (long) sizeof(FB_T));        \
    block = block / mr * mr;                                                              \
    if (block < mr)                                                                       \
        block = mr;                                                                       \
    for (i1 = 0; i1 < m; i1 += block) {                                                   \
        i_end = i1 + block < m ? i1 + block : m;                                          \
        for (j0 = 0; j0 < n_out; j0 += nr)                                                \
            for (i0 = i1; i0 < i_end; i0 += mr)                                           \
                K->dot_##SFX(k, a + i0 * lda, lda, w + j0 * ldw, ldw, c + i0 * ldc + j0,  \
                             ldc, (int) (i_end - i0 < mr ? i_end - i0 : mr),              \
                             (int) (n_out - j0 < nr ? n_out - j0 : nr),                   \
                             bias ? bias + j0 : 0);                                       \
    }                                                                                     \
}                                                                                         \
                                                                                          \
FB_HIDDEN void fb_bcast_##SFX(long m, long n, long k, const FB_T* a, long rs_a,          \
                              long cs_a, const FB_T* b, long ldb, FB_T* c, long ldc,      \
                              FB_T alpha, FB_T beta, const FB_T* act_prev,                \
                              int activation)                                             \
{                                                                                         \
    /* c (m, n) := epilogue(a @ b): a column panel of b (k x bcast_nr) stays in cache    \
       while the tiles of a's rows pass over it. */                                       \
    const fb_kernel_set* K = fb_kernels();                                                \
    long mr = K->bcast_mr, nr = K->bcast_nr_##SFX, i0, j0, width;                         \
    /* When b's rows share one alignment, a narrower first panel makes the others        \
       start on a cache line, so that the kernel's vector loads of b never split one;     \
       worth its partial panel only when there are many panels. */                        \
    long head = (ldb * (long) sizeof(FB_T)) % FB_ALIGN == 0 && n > 4 * nr                 \
        ? (long) ((-(uintptr_t) b) % FB_ALIGN) / (long) sizeof(FB_T) : 0;                 \
    for (j0 = 0; j0 < n; j0 += width) {                                                   \
        width = j0 == 0 && head > 0 && head < nr ? head : nr;                             \
        if (width > n - j0)                                                               \
            width = n - j0;                                                               \
        for (i0 = 0; i0 < m; i0 += mr)                                                    \
            K->bcast_##SFX(k, a + i0 * rs_a, rs_a, cs_a, b + j0, ldb, c + i0 * ldc + j0,  \
                           ldc, (int) (m - i0 < mr ? m - i0 : mr), (int) width, alpha,    \
                           beta, act_prev ? act_prev + i0 * ldc + j0 : 0, activation);    \
    }                                                                                     \
}

FB_LOOPS(float, s)
FB_LOOPS(double, d)
