# fastbp's micro-kernels (src/ukernels/, C): the declarations Cython modules cimport.
# The products, the ISA dispatch and the BLAS crossover are described in
# src/ukernels/ukernels.h; src/_layers.pxd decides per product between them and BLAS.

cdef extern from "ukernels/ukernels.h" nogil:
    enum:
        FB_ISA_BLAS
        FB_ISA_GENERIC
        FB_ISA_AVX2
        FB_ISA_AVX512
        FB_ISA_AUTO
    enum:
        FB_PRODUCT_FORWARD
        FB_PRODUCT_BACKWARD_DELTA
        FB_PRODUCT_WEIGHT_GRADIENT

    int fb_isa_supported(int isa)
    int fb_isa_best()
    int fb_set_isa(int isa)
    int fb_get_isa()
    int fb_isa_forced()
    int fb_use_kernels(int product, long m, long n_in, long n_out, int elem_size)

    void fb_dense_nt_s(long m, long n_out, long k, const float* a, long lda,
                       const float* w, long ldw, const float* bias, float* c, long ldc)
    void fb_dense_nt_d(long m, long n_out, long k, const double* a, long lda,
                       const double* w, long ldw, const double* bias, double* c, long ldc)
    void fb_bcast_s(long m, long n, long k, const float* a, long rs_a, long cs_a,
                    const float* b, long ldb, float* c, long ldc, float alpha, float beta,
                    const float* act_prev, int activation)
    void fb_bcast_d(long m, long n, long k, const double* a, long rs_a, long cs_a,
                    const double* b, long ldb, double* c, long ldc, double alpha,
                    double beta, const double* act_prev, int activation)
