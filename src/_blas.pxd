# A row-major shim over the Fortran BLAS that scipy exposes to Cython.
#
# scipy.linalg.cython_blas gives nogil access to the optimised BLAS that NumPy/SciPy
# users already have. BLAS is column-major; a row-major matrix seen column-major is its
# transpose, so C = op(A) op(B) (row-major) is computed as C^T = op(B)^T op(A)^T
# (column-major) by swapping the operands, never by copying (as sklearn's _cython_blas).

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C, row-major, C of shape (m, n), op(A) (m, k)."""
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef int i, j
    if m == 0 or n == 0:
        return
    if k == 0:
        # Empty sum: BLAS may reject the leading dimensions of empty operands.
        for i in range(m):
            for j in range(n):
                c[i * ldc + j] = 0 if beta == 0 else beta * c[i * ldc + j]
        return
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda,
              &beta, c, &ldc)


# The BLAS thread-count setter of the library above, when it has one (OpenBLAS's
# openblas_set_num_threads_local, which returns the previous count). Found at import by
# fastbp/_blas_threads.py; NULL otherwise, and then BLAS threads are left alone.
ctypedef int (*blas_set_threads_fn)(int) noexcept nogil
