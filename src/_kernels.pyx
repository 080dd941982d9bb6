"""The compiled backprop kernels: the nogil cores behind fastbp.kernels.

Every function here trusts its input: shapes, dtypes, contiguity and aliasing are
checked by the Python-facing wrappers in fastbp/kernels.py, which then call these with
C-contiguous arrays of one dtype (the fused type `floating`: float32 or float64).
Matrix products go to fastbp's micro-kernels (src/ukernels/) or BLAS gemm, per shape,
split into blocks over fastbp's OpenMP threads (src/_layers.pxd) with BLAS held to one
thread; bias, activation and derivative passes are fused into each block. A purely
elementwise pass is split by rows when it is large enough to pay for a fork/join.
"""

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from cpython.pythread cimport (
    PyThread_acquire_lock, PyThread_allocate_lock, PyThread_release_lock, PyThread_type_lock,
    WAIT_LOCK,
)

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

cnp.import_array()

from fastbp._threads import get_num_threads

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
# them (or spinning next to them) would oversubscribe the cores. One process-wide count
# of holders, under a lock, covers every kernel call and every fit
# (fastbp/_blas_threads.py calls blas_hold/blas_release around a fit): the first holder
# saves the count and sets 1, the last one restores it, whatever the order in which
# concurrent holders finish.
cdef blas_set_threads_fn _blas_set_threads = NULL
cdef PyThread_type_lock _blas_lock = PyThread_allocate_lock()
cdef int _blas_holders = 0
cdef int _blas_saved = 0


def set_blas_threads_function(size_t address):
    """Install the BLAS thread-count setter (an address from fastbp/_blas_threads.py, or 0)."""
    global _blas_set_threads
    _blas_set_threads = <blas_set_threads_fn> address


cdef void _blas_enter() noexcept:
    # Only C inside the lock: a holder never waits for the GIL, so taking the lock with
    # the GIL held cannot deadlock.
    global _blas_holders, _blas_saved
    if _blas_set_threads == NULL:
        return
    PyThread_acquire_lock(_blas_lock, WAIT_LOCK)
    if _blas_holders == 0:
        _blas_saved = _blas_set_threads(1)
    _blas_holders += 1
    PyThread_release_lock(_blas_lock)


cdef void _blas_leave() noexcept:
    global _blas_holders
    if _blas_set_threads == NULL:
        return
    PyThread_acquire_lock(_blas_lock, WAIT_LOCK)
    _blas_holders -= 1
    if _blas_holders == 0 and _blas_saved > 1:
        _blas_set_threads(_blas_saved)
    PyThread_release_lock(_blas_lock)


def blas_hold():
    """Hold the kernels' BLAS at one thread until the matching :func:`blas_release`
    (counted with the kernel calls in flight: the last release restores the count)."""
    _blas_enter()


def blas_release():
    """Undo one :func:`blas_hold`."""
    _blas_leave()


def blas_holders():
    """The number of holders now (kernel calls in flight and fits); for tests."""
    return _blas_holders


# --- The cores, on raw pointers (the GIL is held on entry, released for the work) ----

cdef void _dense_forward(const floating* A_prev, const floating* W, const floating* b,
                         floating* out, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                         int activation, int n_threads):
    """out (n, n_out) := act(A_prev @ W.T + b): blocked gemm, each block with its fused pass."""
    if n == 0 or n_out == 0:
        return
    _blas_enter()
    with nogil:
        forward_layer(A_prev, W, b, out, n, n_in, n_out, activation, n_threads)
    _blas_leave()


cdef void _activation_backward(const floating* G, const floating* A, floating* out,
                               Py_ssize_t n, Py_ssize_t k, int activation, int n_threads):
    """out (n, k) := G * act'(A) (the vector-Jacobian product for softmax); out may be G or A."""
    if n == 0 or k == 0:
        return
    with nogil:
        _derivative_product(out, G, A, n, k, activation, n_threads)


cdef void _backward_delta(const floating* delta, const floating* W, const floating* A_prev,
                          floating* out, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                          int activation, int n_threads):
    """out (n, n_in) := (delta @ W) * act'(A_prev)  (BP2): blocked gemm with its derivative pass."""
    if n == 0 or n_in == 0:
        return
    _blas_enter()
    with nogil:
        backward_delta_layer(delta, W, A_prev, out, n, n_in, n_out, activation, n_threads)
    _blas_leave()


cdef int _weight_gradient(const floating* delta, const floating* A_prev, floating* out,
                          floating* bias_out, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                          double scale, bint accumulate, int n_threads) except -1:
    """out := scale * delta.T @ A_prev (+ out)  (BP4); bias_out := scale * delta.sum(0) (+ bias_out)  (BP3)."""
    cdef int status = 0
    _blas_enter()
    with nogil:
        if n_out > 0 and n_in > 0:
            weight_gradient_layer(delta, A_prev, out, n, n_in, n_out, <floating> scale,
                                  1 if accumulate else 0, n_threads)
        if bias_out != NULL and n_out > 0:
            status = _column_sums(bias_out, delta, n, n_out, <floating> scale, accumulate)
    _blas_leave()
    if status != 0:
        raise MemoryError("weight_gradient: cannot allocate the bias accumulator")
    return 0


# --- Typed entry points for checked arrays (fastbp/kernels.py, the Network's backend) ---
# The memoryview types state the contract; empty dimensions pass NULL pointers.

def dense_forward_core(const floating[:, ::1] A_prev,   # IN (n, in)
                       const floating[:, ::1] W,        # IN (out, in)
                       const floating[::1] b,           # IN (out,) or None
                       floating[:, ::1] out,            # OUT (n, out), aliasing no input
                       int activation, int n_threads):
    cdef Py_ssize_t n = A_prev.shape[0], n_in = A_prev.shape[1], n_out = W.shape[0]
    if n == 0 or n_out == 0:
        return
    _dense_forward(&A_prev[0, 0] if n_in else NULL, &W[0, 0] if n_in else NULL,
                   &b[0] if b is not None else NULL, &out[0, 0], n, n_in, n_out,
                   activation, n_threads)


def activation_backward_core(const floating[:, ::1] G,    # IN (n, k)
                             const floating[:, ::1] A,    # IN (n, k), the activation's output
                             floating[:, ::1] out,        # OUT (n, k), may be G or A
                             int activation, int n_threads):
    if G.shape[0] == 0 or G.shape[1] == 0:
        return
    _activation_backward(&G[0, 0], &A[0, 0], &out[0, 0], G.shape[0], G.shape[1],
                         activation, n_threads)


def backward_delta_core(const floating[:, ::1] delta,    # IN (n, out)
                        const floating[:, ::1] W,        # IN (out, in)
                        const floating[:, ::1] A_prev,   # IN (n, in)
                        floating[:, ::1] out,            # OUT (n, in), aliasing no input
                        int activation, int n_threads):
    cdef Py_ssize_t n = delta.shape[0], n_out = delta.shape[1], n_in = W.shape[1]
    if n == 0 or n_in == 0:
        return
    _backward_delta(&delta[0, 0] if n_out else NULL, &W[0, 0] if n_out else NULL,
                    &A_prev[0, 0], &out[0, 0], n, n_in, n_out, activation, n_threads)


def weight_gradient_core(const floating[:, ::1] delta,   # IN (n, out)
                         const floating[:, ::1] A_prev,  # IN (n, in)
                         floating[:, ::1] out,           # OUT (out, in), aliasing no input
                         floating[::1] bias_out,         # OUT (out,) or None
                         double scale, bint accumulate, int n_threads):
    cdef Py_ssize_t n = delta.shape[0], n_out = delta.shape[1], n_in = A_prev.shape[1]
    _weight_gradient(&delta[0, 0] if n and n_out else NULL, &A_prev[0, 0] if n and n_in else NULL,
                     &out[0, 0] if n_out and n_in else NULL,
                     &bias_out[0] if bias_out is not None and n_out else NULL,
                     n, n_in, n_out, scale, accumulate, n_threads)


# --- The public kernels: a fast path for well-formed input ---------------------------
# fastbp.kernels exports these. When every argument is already what the cores want
# (exact ndarrays, one float dtype, C-contiguous, aligned, matching shapes, a writeable
# out that overlaps no input) the checks cost a few pointer comparisons. Anything else
# goes to the checked Python path in fastbp/kernels.py, which converts what it may
# (non-contiguous input) and raises the documented errors for the rest: there is one
# set of rules and messages, in fastbp/_validation.py.

cdef object _checked = None


cdef object _checked_path():
    global _checked
    if _checked is None:
        from fastbp import kernels
        _checked = kernels
    return _checked


cdef inline bint _plain(object x, int ndim, int typenum):
    """x is an exact, aligned, C-contiguous ndarray of this rank and dtype."""
    cdef cnp.ndarray a
    if not cnp.PyArray_CheckExact(x):
        return False
    a = <cnp.ndarray> x
    return (cnp.PyArray_NDIM(a) == ndim and cnp.PyArray_TYPE(a) == typenum
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISNOTSWAPPED(a) and _dims_fit_blas(a))


cdef inline bint _dims_fit_blas(cnp.ndarray a):
    """Every dimension fits BLAS's int (larger ones get the checked path's error)."""
    cdef int d
    for d in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(a, d) > 2147483647:
            return False
    return True


cdef inline int _float_type(object x):
    """NPY_FLOAT or NPY_DOUBLE for an exact float32/float64 ndarray, else -1."""
    cdef int t
    if not cnp.PyArray_CheckExact(x):
        return -1
    t = cnp.PyArray_TYPE(<cnp.ndarray> x)
    return t if t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE else -1


cdef inline bint _overlap(object x, object y):
    """The memory of two C-contiguous arrays intersects (None overlaps nothing)."""
    cdef char* a
    cdef char* b
    if x is None or y is None:
        return False
    a = <char*> cnp.PyArray_DATA(<cnp.ndarray> x)
    b = <char*> cnp.PyArray_DATA(<cnp.ndarray> y)
    return (a < b + cnp.PyArray_NBYTES(<cnp.ndarray> y)
            and b < a + cnp.PyArray_NBYTES(<cnp.ndarray> x))


cdef inline bint _usable_out(object out, int ndim, int typenum, cnp.npy_intp d0,
                             cnp.npy_intp d1):
    cdef cnp.ndarray o
    if not _plain(out, ndim, typenum):
        return False
    o = <cnp.ndarray> out
    if not cnp.PyArray_ISWRITEABLE(o) or cnp.PyArray_DIM(o, 0) != d0:
        return False
    return ndim == 1 or cnp.PyArray_DIM(o, 1) == d1


cdef inline void* _data(object x):
    """The data pointer of an ndarray; NULL for None or an empty array."""
    if x is None or cnp.PyArray_SIZE(<cnp.ndarray> x) == 0:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray> x)


cdef inline object _new(int typenum, cnp.npy_intp d0, cnp.npy_intp d1):
    cdef cnp.npy_intp dims[2]
    dims[0] = d0
    dims[1] = d1
    return cnp.PyArray_EMPTY(2, dims, typenum, 0)


cdef inline int _code(object activation):
    cdef object code
    if type(activation) is not str:
        return -1
    code = ACTIVATION_CODES.get(activation)
    return -1 if code is None else <int> code


def dense_forward(A_prev, W, b, activation="identity", out=None):
    cdef int t = _float_type(A_prev), code = _code(activation)
    cdef cnp.npy_intp n, n_in, n_out
    if (t < 0 or code < 0 or not _plain(A_prev, 2, t) or not _plain(W, 2, t)
            or (b is not None and not _plain(b, 1, t))):
        return _checked_path().checked_dense_forward(A_prev, W, b, activation, out)
    n, n_in = cnp.PyArray_DIM(<cnp.ndarray> A_prev, 0), cnp.PyArray_DIM(<cnp.ndarray> A_prev, 1)
    n_out = cnp.PyArray_DIM(<cnp.ndarray> W, 0)
    if (cnp.PyArray_DIM(<cnp.ndarray> W, 1) != n_in
            or (b is not None and cnp.PyArray_DIM(<cnp.ndarray> b, 0) != n_out)
            or (out is not None and (not _usable_out(out, 2, t, n, n_out)
                                     or _overlap(out, A_prev) or _overlap(out, W)
                                     or _overlap(out, b)))):
        return _checked_path().checked_dense_forward(A_prev, W, b, activation, out)
    cdef int nt = get_num_threads()
    result = _new(t, n, n_out) if out is None else out
    if t == cnp.NPY_FLOAT:
        _dense_forward(<const float*> _data(A_prev), <const float*> _data(W),
                       <const float*> _data(b), <float*> _data(result), n, n_in, n_out, code,
                       nt)
    else:
        _dense_forward(<const double*> _data(A_prev), <const double*> _data(W),
                       <const double*> _data(b), <double*> _data(result), n, n_in, n_out, code,
                       nt)
    return result


def activation_backward(G, A, activation, out=None):
    cdef int t = _float_type(G), code = _code(activation)
    cdef cnp.npy_intp n, k
    if t < 0 or code < 0 or not _plain(G, 2, t) or not _plain(A, 2, t):
        return _checked_path().checked_activation_backward(G, A, activation, out)
    n, k = cnp.PyArray_DIM(<cnp.ndarray> G, 0), cnp.PyArray_DIM(<cnp.ndarray> G, 1)
    # out may be G or A exactly (each element is read before it is written).
    if (cnp.PyArray_DIM(<cnp.ndarray> A, 0) != n or cnp.PyArray_DIM(<cnp.ndarray> A, 1) != k
            or (out is not None and (not _usable_out(out, 2, t, n, k)
                                     or (out is not G and _overlap(out, G))
                                     or (out is not A and _overlap(out, A))))):
        return _checked_path().checked_activation_backward(G, A, activation, out)
    cdef int nt = get_num_threads()
    result = _new(t, n, k) if out is None else out
    if t == cnp.NPY_FLOAT:
        _activation_backward(<const float*> _data(G), <const float*> _data(A),
                             <float*> _data(result), n, k, code, nt)
    else:
        _activation_backward(<const double*> _data(G), <const double*> _data(A),
                             <double*> _data(result), n, k, code, nt)
    return result


def backward_delta(delta, W, A_prev, activation, out=None):
    cdef int t = _float_type(delta), code = _code(activation)
    cdef cnp.npy_intp n, n_out, n_in
    if (t < 0 or code < 0 or not _plain(delta, 2, t) or not _plain(W, 2, t)
            or not _plain(A_prev, 2, t)):
        return _checked_path().checked_backward_delta(delta, W, A_prev, activation, out)
    n, n_out = cnp.PyArray_DIM(<cnp.ndarray> delta, 0), cnp.PyArray_DIM(<cnp.ndarray> delta, 1)
    n_in = cnp.PyArray_DIM(<cnp.ndarray> W, 1)
    if (cnp.PyArray_DIM(<cnp.ndarray> W, 0) != n_out
            or cnp.PyArray_DIM(<cnp.ndarray> A_prev, 0) != n
            or cnp.PyArray_DIM(<cnp.ndarray> A_prev, 1) != n_in
            or (out is not None and (not _usable_out(out, 2, t, n, n_in)
                                     or _overlap(out, delta) or _overlap(out, W)
                                     or _overlap(out, A_prev)))):
        return _checked_path().checked_backward_delta(delta, W, A_prev, activation, out)
    cdef int nt = get_num_threads()
    result = _new(t, n, n_in) if out is None else out
    if t == cnp.NPY_FLOAT:
        _backward_delta(<const float*> _data(delta), <const float*> _data(W),
                        <const float*> _data(A_prev), <float*> _data(result), n, n_in, n_out,
                        code, nt)
    else:
        _backward_delta(<const double*> _data(delta), <const double*> _data(W),
                        <const double*> _data(A_prev), <double*> _data(result), n, n_in, n_out,
                        code, nt)
    return result


def weight_gradient(delta, A_prev, out=None, bias_out=None, scale=1.0, accumulate=False):
    cdef int t = _float_type(delta)
    cdef cnp.npy_intp n, n_out, n_in
    if (t < 0 or not _plain(delta, 2, t) or not _plain(A_prev, 2, t)
            or type(scale) is not float or not (-1.7976931348623157e308 <= <double> scale
                                                <= 1.7976931348623157e308)
            or (accumulate is not False and accumulate is not True)
            or (accumulate and out is None)):
        return _checked_path().checked_weight_gradient(delta, A_prev, out, bias_out, scale,
                                                       accumulate)
    n, n_out = cnp.PyArray_DIM(<cnp.ndarray> delta, 0), cnp.PyArray_DIM(<cnp.ndarray> delta, 1)
    n_in = cnp.PyArray_DIM(<cnp.ndarray> A_prev, 1)
    if (cnp.PyArray_DIM(<cnp.ndarray> A_prev, 0) != n
            or (out is not None and (not _usable_out(out, 2, t, n_out, n_in)
                                     or _overlap(out, delta) or _overlap(out, A_prev)))
            or (bias_out is not None and (not _usable_out(bias_out, 1, t, n_out, 0)
                                          or _overlap(bias_out, delta)
                                          or _overlap(bias_out, A_prev)
                                          or _overlap(bias_out, out)))):
        return _checked_path().checked_weight_gradient(delta, A_prev, out, bias_out, scale,
                                                       accumulate)
    cdef int nt = get_num_threads()
    cdef double scale_value = scale
    cdef bint accumulate_value = accumulate
    result = _new(t, n_out, n_in) if out is None else out
    if t == cnp.NPY_FLOAT:
        _weight_gradient(<const float*> _data(delta), <const float*> _data(A_prev),
                         <float*> _data(result), <float*> _data(bias_out), n, n_in, n_out,
                         scale_value, accumulate_value, nt)
    else:
        _weight_gradient(<const double*> _data(delta), <const double*> _data(A_prev),
                         <double*> _data(result), <double*> _data(bias_out), n, n_in, n_out,
                         scale_value, accumulate_value, nt)
    return result


# --- The micro-kernels' instruction set (fastbp/_isa.py sets every module's copy) ----

include "_isa.pxi"
