"""The compiled backprop kernels: the nogil cores behind fastbp.kernels.

Every function here trusts its input: shapes, dtypes, contiguity and aliasing are
checked by the Python-facing wrappers in fastbp/kernels.py, which then call these with
C-contiguous arrays of one dtype (the fused type `floating`: float32 or float64).
Matrix products go to BLAS gemm, split into blocks over fastbp's OpenMP threads
(src/_layers.pxd) with BLAS held to one thread; bias, activation and derivative passes
are fused into each block. A purely elementwise pass is split by rows when it is large
enough to pay for a fork/join.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free

from _activations cimport (
    IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX, derivative_product_block,
)
from _blas cimport blas_set_threads_fn
from _layers cimport backward_delta_layer, forward_layer, weight_gradient_layer

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


# --- BLAS held to one thread while a kernel runs -------------------------------------
# The kernels split products over fastbp's OpenMP threads; a multithreaded BLAS inside
# them (or spinning next to them) would oversubscribe the cores. The count is changed
# once for all concurrent kernel calls: the GIL, held while these run, serialises the
# bookkeeping; the last caller out restores the user's setting.
cdef blas_set_threads_fn _blas_set_threads = NULL
cdef int _blas_users = 0
cdef int _blas_saved = 0


def set_blas_threads_function(size_t address):
    """Install the BLAS thread-count setter (an address from fastbp/_blas_threads.py, or 0)."""
    global _blas_set_threads
    _blas_set_threads = <blas_set_threads_fn> address


cdef inline void _blas_enter():
    global _blas_users, _blas_saved
    if _blas_set_threads != NULL:
        if _blas_users == 0:
            _blas_saved = _blas_set_threads(1)
        _blas_users += 1


cdef inline void _blas_leave():
    global _blas_users
    if _blas_set_threads != NULL:
        _blas_users -= 1
        if _blas_users == 0 and _blas_saved > 1:
            _blas_set_threads(_blas_saved)


def dense_forward(const floating[:, ::1] A_prev,   # IN (n, in)
                  const floating[:, ::1] W,        # IN (out, in)
                  const floating[::1] b,           # IN (out,) or None
                  floating[:, ::1] out,            # OUT (n, out), aliasing none of the inputs
                  int activation, int n_threads):
    """out := act(A_prev @ W.T + b): blocked gemm, each block with its fused bias + activation."""
    cdef Py_ssize_t n = A_prev.shape[0], n_in = A_prev.shape[1], n_out = W.shape[0]
    cdef const floating* b_ptr = NULL
    if n == 0 or n_out == 0:
        return
    if b is not None:
        b_ptr = &b[0]
    _blas_enter()
    with nogil:
        forward_layer(&A_prev[0, 0] if n_in else NULL, &W[0, 0] if n_in else NULL, b_ptr,
                      &out[0, 0], n, n_in, n_out, activation, n_threads)
    _blas_leave()


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
    """out := (delta @ W) * act'(A_prev)  (BP2): blocked gemm, each block with its derivative pass."""
    cdef Py_ssize_t n = delta.shape[0], n_out = delta.shape[1], n_in = W.shape[1]
    if n == 0 or n_in == 0:
        return
    _blas_enter()
    with nogil:
        backward_delta_layer(&delta[0, 0] if n_out else NULL, &W[0, 0] if n_out else NULL,
                             &A_prev[0, 0], &out[0, 0], n, n_in, n_out, activation, n_threads)
    _blas_leave()


def weight_gradient(const floating[:, ::1] delta,   # IN (n, out)
                    const floating[:, ::1] A_prev,  # IN (n, in)
                    floating[:, ::1] out,           # OUT (out, in), aliasing none of the inputs
                    floating[::1] bias_out,         # OUT (out,) or None
                    double scale, bint accumulate, int n_threads):
    """out := scale * delta.T @ A_prev (+ out)  (BP4); bias_out := scale * delta.sum(0) (+ bias_out)  (BP3)."""
    cdef Py_ssize_t n = delta.shape[0], n_out = delta.shape[1], n_in = A_prev.shape[1]
    cdef int status = 0
    _blas_enter()
    with nogil:
        if n_out > 0 and n_in > 0:
            weight_gradient_layer(&delta[0, 0] if n else NULL, &A_prev[0, 0] if n else NULL,
                                  &out[0, 0], n, n_in, n_out, <floating> scale,
                                  1 if accumulate else 0, n_threads)
        if bias_out is not None and n_out > 0:
            status = _column_sums(&bias_out[0], &delta[0, 0] if n else NULL, n, n_out,
                                  <floating> scale, accumulate)
    _blas_leave()
    if status != 0:
        raise MemoryError("weight_gradient: cannot allocate the bias accumulator")
