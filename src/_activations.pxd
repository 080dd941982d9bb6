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


cdef inline void bias_activation_block(floating* out, Py_ssize_t ld, const floating* b,
                                       Py_ssize_t r0, Py_ssize_t r1,
                                       Py_ssize_t c0, Py_ssize_t c1,
                                       int activation) noexcept nogil:
    """out[r, c0:c1] := act(out[r, c0:c1] + b[c0:c1]) for r0 <= r < r1; b may be NULL.

    ``out`` is row-major with leading dimension ``ld``. Softmax is row-wise, so for it
    the block must span whole rows (c0 = 0, c1 = the row length).
    """
    cdef Py_ssize_t r, j
    cdef floating* row
    cdef floating v, m, s
    cdef floating slope = <floating> LEAKY_SLOPE
    for r in range(r0, r1):
        row = out + r * ld
        if b != NULL:
            for j in range(c0, c1):
                row[j] = row[j] + b[j]
        if activation == IDENTITY:
            pass
        elif activation == SIGMOID:
            for j in range(c0, c1):
                row[j] = _sigmoid(row[j])
        elif activation == TANH:
            for j in range(c0, c1):
                if floating is float:
                    row[j] = tanhf(row[j])
                else:
                    row[j] = tanh(row[j])
        elif activation == RELU:
            for j in range(c0, c1):
                v = row[j]
                row[j] = v if v > 0 else 0
        elif activation == LEAKY_RELU:
            for j in range(c0, c1):
                v = row[j]
                row[j] = v if v > 0 else slope * v
        elif activation == SOFTMAX:
            if c1 <= c0:
                continue
            # Shift by the row maximum: exp never overflows, the largest term is 1.
            m = row[c0]
            for j in range(c0 + 1, c1):
                if row[j] > m:
                    m = row[j]
            s = 0
            for j in range(c0, c1):
                row[j] = _exp(row[j] - m)
                s = s + row[j]
            s = 1 / s
            for j in range(c0, c1):
                row[j] = row[j] * s


cdef inline void derivative_product_block(floating* out, const floating* G, const floating* A,
                                          Py_ssize_t ld, Py_ssize_t r0, Py_ssize_t r1,
                                          Py_ssize_t c0, Py_ssize_t c1,
                                          int activation) noexcept nogil:
    """out[r, c0:c1] := G[r, c0:c1] * act'(A[r, c0:c1]) for r0 <= r < r1.

    All three arrays are row-major with leading dimension ``ld``; out may be G or A
    (each element is read before it is written). Softmax needs whole rows.
    """
    cdef Py_ssize_t r, j, o
    cdef floating a, s
    cdef floating slope = <floating> LEAKY_SLOPE
    for r in range(r0, r1):
        o = r * ld
        if activation == IDENTITY:
            if out != G:
                for j in range(o + c0, o + c1):
                    out[j] = G[j]
        elif activation == SIGMOID:
            for j in range(o + c0, o + c1):
                a = A[j]
                out[j] = G[j] * a * (1 - a)
        elif activation == TANH:
            for j in range(o + c0, o + c1):
                a = A[j]
                out[j] = G[j] * (1 - a * a)
        elif activation == RELU:
            for j in range(o + c0, o + c1):
                out[j] = G[j] if A[j] > 0 else 0
        elif activation == LEAKY_RELU:
            for j in range(o + c0, o + c1):
                out[j] = G[j] if A[j] > 0 else slope * G[j]
        elif activation == SOFTMAX:
            s = 0
            for j in range(o + c0, o + c1):
                s = s + G[j] * A[j]
            for j in range(o + c0, o + c1):
                out[j] = A[j] * (G[j] - s)
