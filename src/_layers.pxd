# Dense-layer passes with the parallel split shared by the public kernels and the
# training engine: each matrix product is cut into blocks (of samples, of output
# neurons or of W's columns) over an OpenMP prange, every block one gemm followed by
# the fused elementwise pass on the same block while it is in cache. The callers hold
# BLAS to one thread meanwhile (fastbp's threads do the splitting; two thread pools on
# the same cores would fight).
# Small products stay serial: a fork/join costs more than they do. Block boundaries
# depend only on the shapes and the thread count, so results are reproducible for a
# given thread count.

from cython cimport floating
from cython.parallel cimport prange

from _activations cimport SOFTMAX, bias_activation_block, derivative_product_block
from _blas cimport gemm

# A product of fewer multiply-adds than this runs on one thread; above, each thread
# gets at least this much work. Measured on a 2-core Xeon: a fork/join of a warm OpenMP
# team costs ~1-2 us, a 128k-MAC single-threaded sgemm ~3-4 us; at batch 10 on a
# 784-30-10 network (235k-MAC products) one thread was measured faster than two.
cdef enum:
    MIN_MACS_PER_THREAD = 131072


cdef inline int n_blocks(Py_ssize_t work, Py_ssize_t min_work, Py_ssize_t max_blocks,
                          int n_threads) noexcept nogil:
    """Blocks to split ``work`` into: at most n_threads and max_blocks, each >= min_work."""
    cdef Py_ssize_t nb = work // min_work
    if nb > n_threads:
        nb = n_threads
    if nb > max_blocks:
        nb = max_blocks
    return <int> nb if nb > 1 else 1


cdef inline void forward_layer(const floating* A_prev, const floating* W, const floating* b,
                         floating* out, Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t n_out,
                         int activation, int n_threads) noexcept nogil:
    """out (m, n_out) := act(A_prev @ W.T + b), split over samples or output neurons."""
    cdef int nb, blk
    cdef Py_ssize_t r0, r1, c0, c1
    cdef bint by_rows = activation == SOFTMAX or m >= n_out
    nb = n_blocks(m * n_in * n_out, MIN_MACS_PER_THREAD, m if by_rows else n_out, n_threads)
    if nb == 1:
        gemm(False, True, <int> m, <int> n_out, <int> n_in, 1, A_prev, <int> n_in, W,
             <int> n_in, 0, out, <int> n_out)
        bias_activation_block(out, n_out, b, 0, m, 0, n_out, activation)
    elif by_rows:
        for blk in prange(nb, schedule="static", num_threads=nb):
            r0 = blk * m // nb
            r1 = (blk + 1) * m // nb
            gemm(False, True, <int> (r1 - r0), <int> n_out, <int> n_in, 1,
                 A_prev + r0 * n_in, <int> n_in, W, <int> n_in, 0, out + r0 * n_out,
                 <int> n_out)
            bias_activation_block(out, n_out, b, r0, r1, 0, n_out, activation)
    else:
        for blk in prange(nb, schedule="static", num_threads=nb):
            c0 = blk * n_out // nb
            c1 = (blk + 1) * n_out // nb
            gemm(False, True, <int> m, <int> (c1 - c0), <int> n_in, 1, A_prev, <int> n_in,
                 W + c0 * n_in, <int> n_in, 0, out + c0, <int> n_out)
            bias_activation_block(out, n_out, b, 0, m, c0, c1, activation)


cdef inline void backward_delta_layer(const floating* delta, const floating* W, const floating* A_prev,
                          floating* out, Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t n_out,
                          int activation, int n_threads) noexcept nogil:
    """out (m, n_in) := (delta @ W) * act'(A_prev)  (BP2), split over W's columns or samples."""
    cdef int nb, blk
    cdef Py_ssize_t r0, r1, c0, c1
    cdef bint by_rows = activation == SOFTMAX or m > n_in
    nb = n_blocks(m * n_in * n_out, MIN_MACS_PER_THREAD, m if by_rows else n_in, n_threads)
    if nb == 1:
        gemm(False, False, <int> m, <int> n_in, <int> n_out, 1, delta, <int> n_out, W,
             <int> n_in, 0, out, <int> n_in)
        derivative_product_block(out, out, A_prev, n_in, 0, m, 0, n_in, activation)
    elif by_rows:
        for blk in prange(nb, schedule="static", num_threads=nb):
            r0 = blk * m // nb
            r1 = (blk + 1) * m // nb
            gemm(False, False, <int> (r1 - r0), <int> n_in, <int> n_out, 1,
                 delta + r0 * n_out, <int> n_out, W, <int> n_in, 0, out + r0 * n_in,
                 <int> n_in)
            derivative_product_block(out, out, A_prev, n_in, r0, r1, 0, n_in, activation)
    else:
        for blk in prange(nb, schedule="static", num_threads=nb):
            c0 = blk * n_in // nb
            c1 = (blk + 1) * n_in // nb
            gemm(False, False, <int> m, <int> (c1 - c0), <int> n_out, 1, delta, <int> n_out,
                 W + c0, <int> n_in, 0, out + c0, <int> n_in)
            derivative_product_block(out, out, A_prev, n_in, 0, m, c0, c1, activation)


cdef inline void weight_gradient_layer(const floating* delta, const floating* A_prev, floating* out,
                           Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t n_out,
                           floating alpha, floating beta, int n_threads) noexcept nogil:
    """out (n_out, n_in) := alpha * delta.T @ A_prev + beta * out  (BP4), split over W's rows or columns."""
    cdef int nb, blk
    cdef Py_ssize_t r0, r1, c0, c1
    cdef bint by_rows = n_out > n_in
    nb = n_blocks(m * n_in * n_out, MIN_MACS_PER_THREAD, n_out if by_rows else n_in,
                   n_threads)
    if nb == 1:
        gemm(True, False, <int> n_out, <int> n_in, <int> m, alpha, delta, <int> n_out,
             A_prev, <int> n_in, beta, out, <int> n_in)
    elif by_rows:
        for blk in prange(nb, schedule="static", num_threads=nb):
            r0 = blk * n_out // nb
            r1 = (blk + 1) * n_out // nb
            gemm(True, False, <int> (r1 - r0), <int> n_in, <int> m, alpha, delta + r0,
                 <int> n_out, A_prev, <int> n_in, beta, out + r0 * n_in, <int> n_in)
    else:
        for blk in prange(nb, schedule="static", num_threads=nb):
            c0 = blk * n_in // nb
            c1 = (blk + 1) * n_in // nb
            gemm(True, False, <int> n_out, <int> (c1 - c0), <int> m, alpha, delta,
                 <int> n_out, A_prev + c0, <int> n_in, beta, out + c0, <int> n_in)
