# Activation functions and their derivatives, as inline row passes shared by the
# public kernels and the training engine.
#
# Derivatives are computed from the activation *output* A (sigmoid A(1-A), tanh 1-A^2,
# relu/leaky_relu from the sign of A), so no pre-activation Z needs to be kept.
# Softmax is row-wise; its "derivative product" is the vector-Jacobian product
# A * (G - sum(G * A)), which is what G * act'(A) means for a non-elementwise activation.

from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf

cdef enum:
    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    SOFTMAX = 5

# Slope of leaky_relu for negative inputs (as torch.nn.LeakyReLU's default). A C macro,
# not a module variable: this .pxd has no module behind it, only inline code.
cdef extern from *:
    """
    #define FASTBP_LEAKY_SLOPE 0.01
    """
    const double LEAKY_SLOPE "FASTBP_LEAKY_SLOPE"


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _sigmoid(floating x) noexcept nogil:
    """1 / (1 + exp(-x)), never overflowing: exp is only taken of a non-positive number."""
    cdef floating e
    if x >= 0:
        return 1 / (1 + _exp(-x))
    e = _exp(x)
    return e / (1 + e)


cdef inline void bias_activation_rows(floating* out, const floating* b,
                                      Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t n_cols,
                                      int activation) noexcept nogil:
    """out[r] := act(out[r] + b) for rows r0 <= r < r1 of a row-major (., n_cols) array; b may be NULL."""
    cdef Py_ssize_t r, j
    cdef floating* row
    cdef floating v, m, s
    cdef floating slope = <floating> LEAKY_SLOPE
    for r in range(r0, r1):
        row = out + r * n_cols
        if b != NULL:
            for j in range(n_cols):
                row[j] = row[j] + b[j]
        if activation == IDENTITY:
            pass
        elif activation == SIGMOID:
            for j in range(n_cols):
                row[j] = _sigmoid(row[j])
        elif activation == TANH:
            for j in range(n_cols):
                if floating is float:
                    row[j] = tanhf(row[j])
                else:
                    row[j] = tanh(row[j])
        elif activation == RELU:
            for j in range(n_cols):
                v = row[j]
                row[j] = v if v > 0 else 0
        elif activation == LEAKY_RELU:
            for j in range(n_cols):
                v = row[j]
                row[j] = v if v > 0 else slope * v
        elif activation == SOFTMAX:
            if n_cols == 0:
                continue
            # Shift by the row maximum: exp never overflows, the largest term is 1.
            m = row[0]
            for j in range(1, n_cols):
                if row[j] > m:
                    m = row[j]
            s = 0
            for j in range(n_cols):
                row[j] = _exp(row[j] - m)
                s = s + row[j]
            s = 1 / s
            for j in range(n_cols):
                row[j] = row[j] * s


cdef inline void derivative_product_rows(floating* out, const floating* G, const floating* A,
                                         Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t n_cols,
                                         int activation) noexcept nogil:
    """out[r] := G[r] * act'(A[r]) for rows r0 <= r < r1; out may be G or A (read before written)."""
    cdef Py_ssize_t r, j, o
    cdef floating a, s
    cdef floating slope = <floating> LEAKY_SLOPE
    for r in range(r0, r1):
        o = r * n_cols
        if activation == IDENTITY:
            if out != G:
                for j in range(o, o + n_cols):
                    out[j] = G[j]
        elif activation == SIGMOID:
            for j in range(o, o + n_cols):
                a = A[j]
                out[j] = G[j] * a * (1 - a)
        elif activation == TANH:
            for j in range(o, o + n_cols):
                a = A[j]
                out[j] = G[j] * (1 - a * a)
        elif activation == RELU:
            for j in range(o, o + n_cols):
                out[j] = G[j] if A[j] > 0 else 0
        elif activation == LEAKY_RELU:
            for j in range(o, o + n_cols):
                out[j] = G[j] if A[j] > 0 else slope * G[j]
        elif activation == SOFTMAX:
            s = 0
            for j in range(o, o + n_cols):
                s = s + G[j] * A[j]
            for j in range(o, o + n_cols):
                out[j] = A[j] * (G[j] - s)
