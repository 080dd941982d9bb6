# Activation functions and their derivatives, as inline row passes shared by the
# public kernels and the training engine.
#
# Derivatives are computed from the activation *output* A (sigmoid A(1-A), tanh 1-A^2,
# relu/leaky_relu from the sign of A), so no pre-activation Z needs to be kept.
# Softmax is row-wise; its "derivative product" is the vector-Jacobian product
# A * (G - sum(G * A)), which is what G * act'(A) means for a non-elementwise activation.

from cython cimport floating
from libc.math cimport exp, tanh, tanhf

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


# exp for float32 without a call into libm, so that loops of sigmoid and softmax
# vectorise (libm's expf is a scalar call; -O3 alone cannot vectorise it). Cephes'
# range reduction and polynomial: x = k ln2 + r, |r| <= ln2/2, exp(r) by a degree-7
# polynomial, 2^k built in the exponent bits; within 2 ulp of expf on the float range.
# Arguments above 88.72 give inf, below -87.34 give 0 (expf's denormals are flushed),
# NaN gives NaN. float64 keeps libm's exp: its accuracy is the contract.
cdef extern from *:
    """
    #include <math.h>
    #include <string.h>
    static inline float fastbp_expf(float x) {
        const float hi = 88.7228317f, lo = -87.3365479f;
        float xc = x > hi ? hi : (x < lo ? lo : x);
        /* k = round(x / ln2), by the 1.5 * 2^23 trick: plain arithmetic, vectorisable. */
        float fk = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
        float r = xc - fk * 0.693359375f + fk * 2.12194440e-4f;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        float y = p * r * r + r + 1.0f;
        int k = (int) fk;
        /* 2^k as two factors, so that k = 128 (x near the overflow limit) stays exact. */
        int bits1 = (k / 2 + 127) << 23, bits2 = ((k - k / 2) + 127) << 23;
        float s1, s2;
        memcpy(&s1, &bits1, sizeof s1);
        memcpy(&s2, &bits2, sizeof s2);
        y = y * s1 * s2;
        y = x < lo ? 0.0f : y;
        y = x > hi ? HUGE_VALF : y;
        return x != x ? x : y;  /* NaN in, NaN out */
    }
    /* 1 / (1 + exp(-x)) with exp taken of -|x| only (no overflow), branch-free and in
       float throughout (Cython would promote the literals to double). */
    static inline float fastbp_sigmoidf(float x) {
        float e = fastbp_expf(x >= 0.0f ? -x : x);
        float s = 1.0f / (1.0f + e);
        return x >= 0.0f ? s : e * s;
    }
    """
    float fastbp_expf(float x) noexcept nogil
    float fastbp_sigmoidf(float x) noexcept nogil


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return fastbp_expf(x)
    else:
        return exp(x)


cdef inline floating _sigmoid(floating x) noexcept nogil:
    """1 / (1 + exp(-x)), never overflowing: exp is only taken of -|x|."""
    cdef floating e
    if floating is float:
        return fastbp_sigmoidf(x)
    e = exp(-x if x >= 0 else x)
    return 1 / (1 + e) if x >= 0 else e / (1 + e)


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
            # Written so that NaN passes through (as np.maximum does): v <= 0 is false.
            for j in range(c0, c1):
                v = row[j]
                row[j] = 0 if v <= 0 else v
        elif activation == LEAKY_RELU:
            for j in range(c0, c1):
                v = row[j]
                row[j] = slope * v if v <= 0 else v
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
            # A product, not a select, so that NaN/inf in G stay visible (as G * (A > 0)).
            for j in range(o + c0, o + c1):
                out[j] = G[j] * (1 if A[j] > 0 else 0)
        elif activation == LEAKY_RELU:
            for j in range(o + c0, o + c1):
                out[j] = G[j] * (1 if A[j] > 0 else slope)
        elif activation == SOFTMAX:
            s = 0
            for j in range(o + c0, o + c1):
                s = s + G[j] * A[j]
            for j in range(o + c0, o + c1):
                out[j] = A[j] * (G[j] - s)
