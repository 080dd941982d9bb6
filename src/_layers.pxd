# Dense-layer passes with the parallel split shared by the public kernels and the
# training engine: each matrix product is cut into blocks (of samples, of output
# neurons or of W's columns) over an OpenMP prange, every block one product followed by
# the fused elementwise pass on the same block while it is in cache. The product is
# fastbp's own micro-kernels (src/ukernels/, chosen per CPU at run time) for layers up
# to the measured BLAS crossover, with their epilogues fused into the register tile
# (bias; BP2's derivative product; the weight gradient's alpha/beta, i.e. the SGD + L2
# update), or a single-threaded BLAS gemm above it. The callers hold BLAS to one thread
# meanwhile (fastbp's threads do the splitting; two thread pools would fight).
# Small products stay serial: a fork/join costs more than they do. Block boundaries
# depend only on the shapes and the thread count, so results are reproducible for a
# given thread count.

from cython cimport floating
from cython.parallel cimport prange

from _activations cimport SOFTMAX, bias_activation_block, derivative_product_block
from _blas cimport gemm
from _ukernels cimport (
    FB_PRODUCT_BACKWARD_DELTA, FB_PRODUCT_FORWARD, FB_PRODUCT_WEIGHT_GRADIENT, fb_bcast_d,
    fb_bcast_s, fb_dense_nt_d, fb_dense_nt_s, fb_use_kernels,
)

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


cdef inline void forward_block(bint own, const floating* A_prev, const floating* W,
                               const floating* b, floating* out, Py_ssize_t n_in,
                               Py_ssize_t n_out, Py_ssize_t r0, Py_ssize_t r1,
                               Py_ssize_t c0, Py_ssize_t c1, int activation) noexcept nogil:
    """out[r0:r1, c0:c1] := act(A_prev[r0:r1] @ W[c0:c1].T + b[c0:c1]); b may be NULL."""
    if own:
        if floating is float:
            fb_dense_nt_s(r1 - r0, c1 - c0, n_in, A_prev + r0 * n_in, n_in, W + c0 * n_in,
                          n_in, b + c0 if b != NULL else NULL, out + r0 * n_out + c0, n_out)
        else:
            fb_dense_nt_d(r1 - r0, c1 - c0, n_in, A_prev + r0 * n_in, n_in, W + c0 * n_in,
                          n_in, b + c0 if b != NULL else NULL, out + r0 * n_out + c0, n_out)
        bias_activation_block(out, n_out, NULL, r0, r1, c0, c1, activation)
    else:
        gemm(False, True, <int> (r1 - r0), <int> (c1 - c0), <int> n_in, 1,
             A_prev + r0 * n_in, <int> n_in, W + c0 * n_in, <int> n_in, 0,
             out + r0 * n_out + c0, <int> n_out)
        bias_activation_block(out, n_out, b, r0, r1, c0, c1, activation)


cdef inline void forward_layer(const floating* A_prev, const floating* W, const floating* b,
                         floating* out, Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t n_out,
                         int activation, int n_threads) noexcept nogil:
    """out (m, n_out) := act(A_prev @ W.T + b), split over samples or output neurons."""
    cdef int nb, blk
    cdef bint by_rows = activation == SOFTMAX or m >= n_out
    cdef bint own = fb_use_kernels(FB_PRODUCT_FORWARD, m, n_in, n_out, sizeof(floating))
    nb = n_blocks(m * n_in * n_out, MIN_MACS_PER_THREAD, m if by_rows else n_out, n_threads)
    if nb == 1:
        forward_block(own, A_prev, W, b, out, n_in, n_out, 0, m, 0, n_out, activation)
    elif by_rows:
        for blk in prange(nb, schedule="static", num_threads=nb):
            forward_block(own, A_prev, W, b, out, n_in, n_out, blk * m // nb,
                          (blk + 1) * m // nb, 0, n_out, activation)
    else:
        for blk in prange(nb, schedule="static", num_threads=nb):
            forward_block(own, A_prev, W, b, out, n_in, n_out, 0, m, blk * n_out // nb,
                          (blk + 1) * n_out // nb, activation)


cdef inline void backward_delta_block(bint own, const floating* delta, const floating* W,
                                      const floating* A_prev, floating* out,
                                      Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t r0,
                                      Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1,
                                      int activation) noexcept nogil:
    """out[r0:r1, c0:c1] := (delta[r0:r1] @ W[:, c0:c1]) * act'(A_prev[r0:r1, c0:c1])."""
    # The micro-kernel applies an elementwise derivative to its tile; softmax's needs
    # whole rows, so it stays a pass after the product.
    cdef bint fused = own and activation != SOFTMAX
    cdef const floating* act_prev = A_prev + r0 * n_in + c0 if fused else NULL
    if own:
        if floating is float:
            fb_bcast_s(r1 - r0, c1 - c0, n_out, delta + r0 * n_out, n_out, 1, W + c0, n_in,
                       out + r0 * n_in + c0, n_in, 1, 0, act_prev, activation)
        else:
            fb_bcast_d(r1 - r0, c1 - c0, n_out, delta + r0 * n_out, n_out, 1, W + c0, n_in,
                       out + r0 * n_in + c0, n_in, 1, 0, act_prev, activation)
    else:
        gemm(False, False, <int> (r1 - r0), <int> (c1 - c0), <int> n_out, 1,
             delta + r0 * n_out, <int> n_out, W + c0, <int> n_in, 0, out + r0 * n_in + c0,
             <int> n_in)
    if not fused:
        derivative_product_block(out, out, A_prev, n_in, r0, r1, c0, c1, activation)


cdef inline void backward_delta_layer(const floating* delta, const floating* W, const floating* A_prev,
                          floating* out, Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t n_out,
                          int activation, int n_threads) noexcept nogil:
    """out (m, n_in) := (delta @ W) * act'(A_prev)  (BP2), split over W's columns or samples."""
    cdef int nb, blk
    cdef bint by_rows = activation == SOFTMAX or m > n_in
    cdef bint own = fb_use_kernels(FB_PRODUCT_BACKWARD_DELTA, m, n_in, n_out, sizeof(floating))
    nb = n_blocks(m * n_in * n_out, MIN_MACS_PER_THREAD, m if by_rows else n_in, n_threads)
    if nb == 1:
        backward_delta_block(own, delta, W, A_prev, out, n_in, n_out, 0, m, 0, n_in,
                             activation)
    elif by_rows:
        for blk in prange(nb, schedule="static", num_threads=nb):
            backward_delta_block(own, delta, W, A_prev, out, n_in, n_out, blk * m // nb,
                                 (blk + 1) * m // nb, 0, n_in, activation)
    else:
        for blk in prange(nb, schedule="static", num_threads=nb):
            backward_delta_block(own, delta, W, A_prev, out, n_in, n_out, 0, m,
                                 blk * n_in // nb, (blk + 1) * n_in // nb, activation)


cdef inline void weight_gradient_block(bint own, const floating* delta,
                                       const floating* A_prev, floating* out, Py_ssize_t m,
                                       Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t r0,
                                       Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1,
                                       floating alpha, floating beta) noexcept nogil:
    """out[r0:r1, c0:c1] := alpha * delta[:, r0:r1].T @ A_prev[:, c0:c1] + beta * out[...]."""
    if own:
        # delta.T is read in place: row r of the product is delta's column r.
        if floating is float:
            fb_bcast_s(r1 - r0, c1 - c0, m, delta + r0, 1, n_out, A_prev + c0, n_in,
                       out + r0 * n_in + c0, n_in, alpha, beta, NULL, 0)
        else:
            fb_bcast_d(r1 - r0, c1 - c0, m, delta + r0, 1, n_out, A_prev + c0, n_in,
                       out + r0 * n_in + c0, n_in, alpha, beta, NULL, 0)
    else:
        gemm(True, False, <int> (r1 - r0), <int> (c1 - c0), <int> m, alpha, delta + r0,
             <int> n_out, A_prev + c0, <int> n_in, beta, out + r0 * n_in + c0, <int> n_in)


cdef inline void weight_gradient_layer(const floating* delta, const floating* A_prev, floating* out,
                           Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t n_out,
                           floating alpha, floating beta, int n_threads) noexcept nogil:
    """out (n_out, n_in) := alpha * delta.T @ A_prev + beta * out  (BP4), split over W's rows or columns.

    With out = W, alpha = -lr/m and beta = 1 - lr*l2 this is the SGD + L2 step itself,
    applied in the micro-kernel's store: the gradient is never written to memory.
    """
    cdef int nb, blk
    cdef bint by_rows = n_out > n_in
    cdef bint own = fb_use_kernels(FB_PRODUCT_WEIGHT_GRADIENT, m, n_in, n_out, sizeof(floating))
    nb = n_blocks(m * n_in * n_out, MIN_MACS_PER_THREAD, n_out if by_rows else n_in,
                   n_threads)
    if nb == 1:
        weight_gradient_block(own, delta, A_prev, out, m, n_in, n_out, 0, n_out, 0, n_in,
                              alpha, beta)
    elif by_rows:
        for blk in prange(nb, schedule="static", num_threads=nb):
            weight_gradient_block(own, delta, A_prev, out, m, n_in, n_out,
                                  blk * n_out // nb, (blk + 1) * n_out // nb, 0, n_in,
                                  alpha, beta)
    else:
        for blk in prange(nb, schedule="static", num_threads=nb):
            weight_gradient_block(own, delta, A_prev, out, m, n_in, n_out, 0, n_out,
                                  blk * n_in // nb, (blk + 1) * n_in // nb, alpha, beta)
