"""Shared fixtures: float tolerances, a seeded random generator and the direct formulas.

The direct formulas are written here, in float64 and independently of fastbp, so that
both the reference (tests/test_reference.py) and the compiled kernels
(tests/test_kernels.py) are checked against the same plain mathematics.
"""

from types import SimpleNamespace

import numpy as np
import pytest

# Relative tolerance: float32 keeps the 1e-5 (~80 ulps of eps32 = 1.2e-7; the
# kernels agree to better than 1e-6 here, so no widening was needed). float64 results
# agree to ~1e-15, so 1e-12 still leaves room for another BLAS's summation order.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
# Absolute tolerance for entries near 0, where a relative bound means nothing: a result
# near 0 is a sum of O(1) terms (the test data are scaled so pre-activations are O(1) at
# any width) and carries their rounding error, ~eps * sqrt(n_terms). Observed: < 1e-7
# for float32 (1500-term products) and < 1e-15 for float64; the bounds below leave a 10x
# (float32) and 1000x (float64) margin, while a real bug shows up as >= 1e-3.
ATOL = {np.float32: 1e-6, np.float64: 1e-12}

LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default, fastbp's documented slope


@pytest.fixture
def tol():
    """tol(dtype) -> dict(rtol=..., atol=...) for np.testing.assert_allclose."""

    def for_dtype(dtype):
        dtype = np.dtype(dtype).type
        return {"rtol": RTOL[dtype], "atol": ATOL[dtype]}

    return for_dtype


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator per test: tests are reproducible and independent."""
    return np.random.default_rng(20240611)


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _sigmoid(Z):
    with np.errstate(over="ignore"):  # exp(-z) = inf for z << 0 gives the right 0
        return 1.0 / (1.0 + np.exp(-Z))


# act(Z), in float64.
_ACT = {
    "identity": lambda Z: Z.copy(),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda Z: np.where(Z > 0, Z, 0.0),
    "leaky_relu": lambda Z: np.where(Z > 0, Z, LEAKY_SLOPE * Z),
    "softmax": _softmax,
}

# G * act'(Z) written from the output A = act(Z); softmax: the vector-Jacobian product.
_VJP = {
    "identity": lambda G, A: G.copy(),
    "sigmoid": lambda G, A: G * A * (1.0 - A),
    "tanh": lambda G, A: G * (1.0 - A**2),
    "relu": lambda G, A: np.where(A > 0, G, 0.0),
    "leaky_relu": lambda G, A: np.where(A > 0, G, LEAKY_SLOPE * G),
    "softmax": lambda G, A: A * (G - (G * A).sum(axis=1, keepdims=True)),
}


def _as64(X):
    return np.asarray(X, dtype=np.float64)


def _dense_forward(A_prev, W, b, activation):
    Z = _as64(A_prev) @ _as64(W).T
    if b is not None:
        Z = Z + _as64(b)
    return _ACT[activation](Z)


def _weight_gradient(delta, A_prev, scale=1.0):
    """scale * sum_i outer(delta_i, a_i) with an explicit loop, and scale * delta.sum(0)."""
    delta, A_prev = _as64(delta), _as64(A_prev)
    dW = np.zeros((delta.shape[1], A_prev.shape[1]))
    for d_i, a_i in zip(delta, A_prev):
        dW += np.outer(d_i, a_i)
    return scale * dW, scale * delta.sum(axis=0)


@pytest.fixture
def direct():
    """The math each kernel implements, in float64 (inputs are up-cast first).

    direct.act[name](Z), direct.vjp[name](G, A), direct.dense_forward(A_prev, W, b, act),
    direct.backward_delta(delta, W, A_prev, act), direct.weight_gradient(delta, A_prev,
    scale) -> (dW, db).
    """
    return SimpleNamespace(
        act=_ACT,
        vjp={name: (lambda f: lambda G, A: f(_as64(G), _as64(A)))(f) for name, f in _VJP.items()},
        dense_forward=_dense_forward,
        backward_delta=lambda delta, W, A_prev, act: _VJP[act](
            _as64(delta) @ _as64(W), _as64(A_prev)
        ),
        weight_gradient=_weight_gradient,
        leaky_slope=LEAKY_SLOPE,
    )
