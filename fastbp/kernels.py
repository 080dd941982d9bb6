"""The compiled backprop kernels: drop-in replacements for fastbp.reference.

Same functions, same signatures, same results within float tolerance: Cython cores
that release the GIL, call BLAS gemm (through scipy.linalg.cython_blas) for matrix
products split over OpenMP threads, and fuse bias, activation and derivative into the
pass over each block of the output.

The public functions are the compiled entry points of ``src/_kernels.pyx``, which take
a fast path when the input is already well-formed. Everything else comes here, to the
``checked_*`` functions: they apply the shared checks of ``fastbp._validation``
(shapes, dtypes, ``out=`` arrays), copy non-contiguous input, give overlapping ``out=``
arrays a separate buffer, and call the typed cores, which trust what they get.

The number of threads is set with :func:`fastbp.set_num_threads`.
"""

import numpy as np

from fastbp import _kernels
from fastbp._blas_threads import blas_threads_setter_address
from fastbp._threads import get_num_threads
from fastbp._validation import (
    ACTIVATIONS,
    check_activation_backward,
    check_backward_delta,
    check_dense_forward,
    check_weight_gradient,
)

__all__ = ["ACTIVATIONS", "dense_forward", "activation_backward", "backward_delta",
           "weight_gradient"]

_CODES = _kernels.ACTIVATION_CODES
_kernels.set_blas_threads_function(blas_threads_setter_address())


def _same_view(a, b):
    """a and b are the very same array memory (same start, shape and strides)."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides)


def _result_buffer(out, shape, dtype, inputs, same_view_ok=False):
    """Where a core writes: out, unless out overlaps an input the core still reads.

    With same_view_ok, out may be exactly one of the inputs (a core that reads each
    element before writing it); any other overlap gets a separate buffer.
    """
    if out is None:
        return np.empty(shape, dtype=dtype)
    for x in inputs:
        if x is not None and np.may_share_memory(out, x):
            if not (same_view_ok and _same_view(out, x)):
                return np.empty(shape, dtype=dtype)
    return out


def _finish(result, out):
    if out is not None and result is not out:
        out[...] = result
        return out
    return result


def checked_dense_forward(A_prev, W, b, activation="identity", out=None):
    A_prev, W, b, shape, dtype = check_dense_forward(A_prev, W, b, activation, out)
    result = _result_buffer(out, shape, dtype, (A_prev, W, b))
    _kernels.dense_forward_core(A_prev, W, b, result, _CODES[activation], get_num_threads())
    return _finish(result, out)


def checked_activation_backward(G, A, activation, out=None):
    G, A, dtype = check_activation_backward(G, A, activation, out)
    # The core reads G[i] and A[i] before writing out[i]: out may be G or A (in place).
    result = _result_buffer(out, G.shape, dtype, (G, A), same_view_ok=True)
    _kernels.activation_backward_core(G, A, result, _CODES[activation], get_num_threads())
    return _finish(result, out)


def checked_backward_delta(delta, W, A_prev, activation, out=None):
    delta, W, A_prev, shape, dtype = check_backward_delta(delta, W, A_prev, activation, out)
    result = _result_buffer(out, shape, dtype, (delta, W, A_prev))
    _kernels.backward_delta_core(delta, W, A_prev, result, _CODES[activation], get_num_threads())
    return _finish(result, out)


def checked_weight_gradient(delta, A_prev, out=None, bias_out=None, scale=1.0, accumulate=False):
    delta, A_prev, shape, dtype, scale, accumulate = check_weight_gradient(
        delta, A_prev, out, bias_out, scale, accumulate
    )
    inputs = (delta, A_prev)
    result = _result_buffer(out, shape, dtype, inputs)
    bias_result = bias_out
    if bias_out is not None and any(np.may_share_memory(bias_out, x) for x in inputs):
        bias_result = np.empty_like(bias_out)
    if accumulate:
        # An accumulating core adds into what it writes: start from the current values.
        if result is not out:
            result[...] = out
        if bias_result is not bias_out and bias_out is not None:
            bias_result[...] = bias_out
    _kernels.weight_gradient_core(delta, A_prev, result, bias_result, scale, accumulate,
                             get_num_threads())
    if bias_result is not bias_out:
        bias_out[...] = bias_result
    return _finish(result, out)


# The public kernels are the compiled entry points (src/_kernels.pyx): they take a fast
# path when the input is already well-formed and call the checked_* functions above
# otherwise. They document themselves with their NumPy twins' docstrings: one contract.
dense_forward = _kernels.dense_forward
activation_backward = _kernels.activation_backward
backward_delta = _kernels.backward_delta
weight_gradient = _kernels.weight_gradient


def _share_docstrings():
    from fastbp import reference

    for name in __all__[1:]:
        getattr(_kernels, name).__doc__ = getattr(reference, name).__doc__


_share_docstrings()
