"""The NumPy reference: every kernel of fastbp.kernels, in plain NumPy, same signatures.

This is what a careful NumPy user writes (in-place activations as in scikit-learn's
MLP helpers, derivatives from the activation output), and it is the baseline the
benchmarks compare against. Swap it for the compiled kernels with one import::

    from fastbp import reference as bp   # NumPy
    from fastbp import kernels as bp     # Cython + OpenMP + BLAS, same results

Shapes: rows are samples; W has shape (n_out, n_in); dtypes float32 or float64.
"""

import numpy as np
from scipy.special import expit

from fastbp._validation import (
    ACTIVATIONS,
    check_activation_backward,
    check_backward_delta,
    check_dense_forward,
    check_weight_gradient,
)

__all__ = ["ACTIVATIONS", "dense_forward", "activation_backward", "backward_delta",
           "weight_gradient"]

LEAKY_SLOPE = 0.01


def _softmax_inplace(Z):
    if Z.shape[1] == 0:
        return Z
    # Shift by the row maximum: the largest term becomes exp(0) = 1, no overflow. A row
    # spanning the whole float range shifts to -inf, whose exp is the right 0.
    with np.errstate(over="ignore"):
        Z -= Z.max(axis=1, keepdims=True)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=1, keepdims=True)
    return Z


# act(Z), computed in place in Z.
ACTIVATION_FUNCTIONS = {
    "identity": lambda Z: Z,
    "sigmoid": lambda Z: expit(Z, out=Z),  # expit never overflows
    "tanh": lambda Z: np.tanh(Z, out=Z),
    "relu": lambda Z: np.maximum(Z, 0, out=Z),
    "leaky_relu": lambda Z: np.maximum(Z, LEAKY_SLOPE * Z, out=Z),  # slope < 1
    "softmax": _softmax_inplace,
}

# G * act'(A), from the activation output A; for softmax the vector-Jacobian product.
DERIVATIVE_PRODUCTS = {
    "identity": lambda G, A: G.copy(),
    "sigmoid": lambda G, A: G * A * (1 - A),
    "tanh": lambda G, A: G * (1 - A * A),
    "relu": lambda G, A: G * (A > 0),
    "leaky_relu": lambda G, A: G * np.where(A > 0, 1, LEAKY_SLOPE).astype(A.dtype),
    "softmax": lambda G, A: A * (G - (G * A).sum(axis=1, keepdims=True)),
}


def _store(result, out):
    if out is None:
        return result
    out[...] = result
    return out


def dense_forward(A_prev, W, b, activation="identity", out=None):
    """Dense layer forward pass: ``act(A_prev @ W.T + b)``.

    Parameters
    ----------
    A_prev : ndarray of shape (n, n_in), float32 or float64
        Activations of the layer below, one row per sample.
    W : ndarray of shape (n_out, n_in), same dtype
        Weights.
    b : ndarray of shape (n_out,), same dtype, or None
        Biases; None for a layer without bias.
    activation : {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"}
        Softmax is row-wise.
    out : ndarray of shape (n, n_out), optional
        C-contiguous, writeable array of the same dtype that receives the result.

    Returns
    -------
    A : ndarray of shape (n, n_out)
        ``out`` when given.
    """
    A_prev, W, b, _, _ = check_dense_forward(A_prev, W, b, activation, out)
    return _dense_forward(A_prev, W, b, activation, out)


def _dense_forward(A_prev, W, b, activation, out):
    Z = A_prev @ W.T
    if b is not None:
        Z += b
    return _store(ACTIVATION_FUNCTIONS[activation](Z), out)


def activation_backward(G, A, activation, out=None):
    """Derivative product ``G * act'(A)``, with act' computed from the output ``A = act(Z)``.

    Parameters
    ----------
    G : ndarray of shape (n, k)
        Gradient of the cost with respect to A.
    A : ndarray of shape (n, k), same dtype
        The activation's output.
    activation : str
        For "softmax" the result is the vector-Jacobian product ``A * (G - sum(G * A))``.
    out : ndarray of shape (n, k), optional
        Receives the result; may be ``G`` itself (in place).

    Returns
    -------
    ndarray of shape (n, k)
        The gradient with respect to the pre-activation Z; ``out`` when given.
    """
    G, A, _ = check_activation_backward(G, A, activation, out)
    return _activation_backward(G, A, activation, out)


def _activation_backward(G, A, activation, out):
    return _store(DERIVATIVE_PRODUCTS[activation](G, A), out)


def backward_delta(delta, W, A_prev, activation, out=None):
    """Backpropagate the error one layer down (BP2): ``(delta @ W) * act'(A_prev)``.

    Parameters
    ----------
    delta : ndarray of shape (n, n_out)
        Error of the layer above (gradient with respect to its pre-activation).
    W : ndarray of shape (n_out, n_in)
        Weights of the layer above.
    A_prev : ndarray of shape (n, n_in)
        Output of the layer below, whose activation is ``activation``.
    activation : str
        Activation of the layer below.
    out : ndarray of shape (n, n_in), optional
        Receives the result.

    Returns
    -------
    ndarray of shape (n, n_in)
        The error of the layer below; ``out`` when given.
    """
    delta, W, A_prev, _, _ = check_backward_delta(delta, W, A_prev, activation, out)
    return _backward_delta(delta, W, A_prev, activation, out)


def _backward_delta(delta, W, A_prev, activation, out):
    return _store(DERIVATIVE_PRODUCTS[activation](delta @ W, A_prev), out)


def weight_gradient(delta, A_prev, out=None, bias_out=None, scale=1.0, accumulate=False):
    """Weight gradient (BP4) ``scale * delta.T @ A_prev``, the batch sum of outer products.

    Parameters
    ----------
    delta : ndarray of shape (n, n_out)
        Error of the layer.
    A_prev : ndarray of shape (n, n_in)
        Input of the layer.
    out : ndarray of shape (n_out, n_in), optional
        Receives the gradient (or, with ``accumulate=True``, has it added).
    bias_out : ndarray of shape (n_out,), optional
        When given, receives ``scale * delta.sum(0)`` (BP3), or has it added.
    scale : float
        Factor applied to both gradients, e.g. ``1 / n`` for a mean.
    accumulate : bool
        Add into ``out`` and ``bias_out`` instead of overwriting them (needs ``out``).

    Returns
    -------
    ndarray of shape (n_out, n_in)
        ``out`` when given.
    """
    delta, A_prev, _, _, scale, accumulate = check_weight_gradient(
        delta, A_prev, out, bias_out, scale, accumulate
    )
    return _weight_gradient(delta, A_prev, out, bias_out, scale, accumulate)


# The unchecked cores below are what the public functions run after their checks;
# fastbp.network calls them directly on its own, already checked, buffers.


def _weight_gradient(delta, A_prev, out, bias_out, scale, accumulate):
    dtype = delta.dtype
    scale = dtype.type(scale)
    dW = delta.T @ A_prev
    dW *= scale
    if bias_out is not None:
        db = delta.sum(axis=0, dtype=dtype) * scale
        if accumulate:
            bias_out += db
        else:
            bias_out[...] = db
    if accumulate:
        out += dW
        return out
    return _store(dW, out)
