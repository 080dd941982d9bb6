"""The compiled backprop kernels: the nogil cores behind fastbp.kernels.

Every function here trusts its input: shapes, dtypes, contiguity and aliasing are
checked by the Python-facing wrappers in fastbp/kernels.py, which then call these with
C-contiguous arrays of one dtype (the fused type `floating`: float32 or float64).
Matrix products go to BLAS gemm; bias, activation and derivative passes are fused loops
over the output, split over OpenMP threads by blocks of rows when the work is large
enough to pay for a fork/join.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free

from _activations cimport (
    IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX,
    bias_activation_block, derivative_product_block,
)
from _blas cimport gemm

cdef extern from *:
    """
    #ifndef FASTBP_CYTHON_VERSION
    #define FASTBP_CYTHON_VERSION "unknown"
    #endif
    """
    const char* FASTBP_CYTHON_VERSION

#: The Cython version that generated this module's C code.
CYTHON_VERSION = FASTBP_CYTHON_VERSION.decode()

#: Activation names and the codes the cores use.
ACTIVATION_CODES = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}

# Below this many output elements an elementwise pass runs on one thread: a fork/join
# of the OpenMP team costs a few microseconds, as much as the pass itself.
cdef Py_ssize_t PARALLEL_MIN_ELEMENTS = 32768


cdef inline int _n_blocks(Py_ssize_t n_rows, Py_ssize_t n_cols, int n_threads) noexcept nogil:
    """How many row blocks (threads) an elementwise pass over (n_rows, n_cols) is split into."""
    if n_threads <= 1 or n_rows < 2 or n_rows * n_cols < PARALLEL_MIN_ELEMENTS:
        return 1
    return n_threads if n_threads < n_rows else <int> n_rows


cdef void _bias_activation(floating* out, const floating* b, Py_ssize_t n_rows,
                           Py_ssize_t n_cols, int activation, int n_threads) noexcept nogil:
    """out := act(out + b), rows split into static blocks over the threads."""
    cdef int n_blocks = _n_blocks(n_rows, n_cols, n_threads)
    cdef int blk
    if n_blocks == 1:
        bias_activation_block(out, n_cols, b, 0, n_rows, 0, n_cols, activation)
        return
    for blk in prange(n_blocks, schedule="static", num_threads=n_blocks):
        bias_activation_block(out, n_cols, b, blk * n_rows // n_blocks,
                              (blk + 1) * n_rows // n_blocks, 0, n_cols, activation)


cdef void _derivative_product(floating* out, const floating* G, const floating* A,
                              Py_ssize_t n_rows, Py_ssize_t n_cols, int activation,
                              int n_threads) noexcept nogil:
    """out := G * act'(A), rows split into static blocks over the threads."""
    cdef int n_blocks = _n_blocks(n_rows, n_cols, n_threads)
    cdef int blk
    if n_blocks == 1:
        derivative_product_block(out, G, A, n_cols, 0, n_rows, 0, n_cols, activation)
        return
    for blk in prange(n_blocks, schedule="static", num_threads=n_blocks):
        derivative_product_block(out, G, A, n_cols, blk * n_rows // n_blocks,
                                 (blk + 1) * n_rows // n_blocks, 0, n_cols, activation)


cdef int _column_sums(floating* out, const floating* X, Py_ssize_t n_rows, Py_ssize_t n_cols,
                      floating scale, bint accumulate) noexcept nogil:
    """out := scale * X.sum(0) (+ out if accumulate), summed in double in row order.

    Returns -1 if the double accumulator cannot be allocated.
    """
    cdef double* acc = <double*> malloc(max(n_cols, 1) * sizeof(double))
    cdef Py_ssize_t i, j
    cdef const floating* row
    if acc == NULL:
        return -1
    for j in range(n_cols):
        acc[j] = 0
    for i in range(n_rows):
        row = X + i * n_cols
        for j in range(n_cols):
            acc[j] += row[j]
    for j in range(n_cols):
        if accumulate:
            out[j] = out[j] + <floating> (scale * acc[j])
        else:
            out[j] = <floating> (scale * acc[j])
    free(acc)
    return 0


def dense_forward(const floating[:, ::1] A_prev,   # IN (n, in)
                  const floating[:, ::1] W,        # IN (out, in)
                  const floating[::1] b,           # IN (out,) or None
                  floating[:, ::1] out,            # OUT (n, out)
                  int activation, int n_threads):
    """out := act(A_prev @ W.T + b): one gemm, then one fused bias + activation pass."""
    cdef int n = A_prev.shape[0], n_in = A_prev.shape[1], n_out = W.shape[0]
    cdef const floating* b_ptr = NULL
    if b is not None and n_out > 0:
        b_ptr = &b[0]
    if n == 0 or n_out == 0:
        return
    with nogil:
        gemm(False, True, n, n_out, n_in, 1, &A_prev[0, 0] if n_in else NULL, max(n_in, 1),
             &W[0, 0] if n_in else NULL, max(n_in, 1), 0, &out[0, 0], n_out)
        _bias_activation(&out[0, 0], b_ptr, n, n_out, activation, n_threads)


def activation_backward(const floating[:, ::1] G,    # IN (n, k)
                        const floating[:, ::1] A,    # IN (n, k), the activation's output
                        floating[:, ::1] out,        # OUT (n, k), may be G or A
                        int activation, int n_threads):
    """out := G * act'(A) (the vector-Jacobian product for softmax)."""
    cdef Py_ssize_t n = G.shape[0], k = G.shape[1]
    if n == 0 or k == 0:
        return
    with nogil:
        _derivative_product(&out[0, 0], &G[0, 0], &A[0, 0], n, k, activation, n_threads)


def backward_delta(const floating[:, ::1] delta,    # IN (n, out)
                   const floating[:, ::1] W,        # IN (out, in)
                   const floating[:, ::1] A_prev,   # IN (n, in)
                   floating[:, ::1] out,            # OUT (n, in), aliasing none of the inputs
                   int activation, int n_threads):
    """out := (delta @ W) * act'(A_prev)  (BP2)."""
    cdef int n = delta.shape[0], n_out = delta.shape[1], n_in = W.shape[1]
    if n == 0 or n_in == 0:
        return
    with nogil:
        gemm(False, False, n, n_in, n_out, 1, &delta[0, 0] if n_out else NULL, max(n_out, 1),
             &W[0, 0] if n_out else NULL, n_in, 0, &out[0, 0], n_in)
        _derivative_product(&out[0, 0], &out[0, 0], &A_prev[0, 0], n, n_in, activation,
                            n_threads)


def weight_gradient(const floating[:, ::1] delta,   # IN (n, out)
                    const floating[:, ::1] A_prev,  # IN (n, in)
                    floating[:, ::1] out,           # OUT (out, in), aliasing none of the inputs
                    floating[::1] bias_out,         # OUT (out,) or None
                    double scale, bint accumulate):
    """out := scale * delta.T @ A_prev (+ out)  (BP4); bias_out := scale * delta.sum(0) (+ bias_out)  (BP3)."""
    cdef int n = delta.shape[0], n_out = delta.shape[1], n_in = A_prev.shape[1]
    cdef int status = 0
    with nogil:
        if n_out > 0 and n_in > 0:
            gemm(True, False, n_out, n_in, n, <floating> scale,
                 &delta[0, 0] if n else NULL, n_out, &A_prev[0, 0] if n else NULL, n_in,
                 1 if accumulate else 0, &out[0, 0], n_in)
        if bias_out is not None and n_out > 0:
            status = _column_sums(&bias_out[0], &delta[0, 0] if n else NULL, n, n_out,
                                  <floating> scale, accumulate)
    if status != 0:
        raise MemoryError("weight_gradient: cannot allocate the bias accumulator")
