"""The two engines a Network can run on, behind one small interface.

Both call the *unchecked* cores of their module: the Network checks the user's data
once per call, and its own buffers are C-contiguous and of one dtype by construction,
so neither backend pays for validation per layer and per batch (which keeps the NumPy
baseline honest in the benchmarks, too).
"""

from fastbp import _kernels, reference
from fastbp._threads import get_num_threads

BACKENDS = ("cython", "numpy")


class NumpyBackend:
    """fastbp.reference: plain NumPy, the baseline."""

    name = "numpy"

    def dense_forward(self, A_prev, W, b, activation, out):
        return reference._dense_forward(A_prev, W, b, activation, out)

    def activation_backward(self, G, A, activation, out):
        return reference._activation_backward(G, A, activation, out)

    def backward_delta(self, delta, W, A_prev, activation, out):
        return reference._backward_delta(delta, W, A_prev, activation, out)

    def weight_gradient(self, delta, A_prev, out, bias_out, scale):
        return reference._weight_gradient(delta, A_prev, out, bias_out, scale, False)


class CythonBackend:
    """fastbp's compiled kernels (nogil Cython, BLAS gemm, OpenMP)."""

    name = "cython"
    _codes = _kernels.ACTIVATION_CODES

    def dense_forward(self, A_prev, W, b, activation, out):
        _kernels.dense_forward_core(A_prev, W, b, out, self._codes[activation], get_num_threads())
        return out

    def activation_backward(self, G, A, activation, out):
        _kernels.activation_backward_core(G, A, out, self._codes[activation], get_num_threads())
        return out

    def backward_delta(self, delta, W, A_prev, activation, out):
        _kernels.backward_delta_core(delta, W, A_prev, out, self._codes[activation],
                                get_num_threads())
        return out

    def weight_gradient(self, delta, A_prev, out, bias_out, scale):
        _kernels.weight_gradient_core(delta, A_prev, out, bias_out, scale, False,
                                 get_num_threads())
        return out


def get_backend(name):
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid backends are {', '.join(BACKENDS)}")
    return CythonBackend() if name == "cython" else NumpyBackend()
