"""fastbp.reference, the NumPy twin of the kernels, against the direct formulas.

The compiled kernels are compared with this module in tests/test_kernels.py; here the
reference itself is held to the float64 formulas of tests/conftest.py, so a mistake
shared by both modules cannot hide.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from fastbp import reference

DTYPES = [np.float32, np.float64]
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]


def test_leaky_relu_slope_is_0_01(direct):
    assert reference.LEAKY_SLOPE == direct.leaky_slope == 0.01


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward_is_act_of_A_W_transposed_plus_b(dtype, activation, with_bias, rng, tol,
                                                     direct):
    A_prev = rng.standard_normal((6, 5)).astype(dtype)
    W = rng.standard_normal((4, 5)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype) if with_bias else None
    got = reference.dense_forward(A_prev, W, b, activation)
    assert got.dtype == dtype and got.shape == (6, 4)
    assert_allclose(got, direct.dense_forward(A_prev, W, b, activation), **tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_is_G_times_the_derivative(dtype, activation, rng, tol, direct):
    G = rng.standard_normal((6, 5)).astype(dtype)
    A = direct.act[activation](rng.standard_normal((6, 5))).astype(dtype)
    got = reference.activation_backward(G, A, activation)
    assert got.dtype == dtype
    assert_allclose(got, direct.vjp[activation](G, A), **tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_delta_is_delta_W_times_the_derivative(dtype, activation, rng, tol, direct):
    delta = rng.standard_normal((6, 3)).astype(dtype)
    W = rng.standard_normal((3, 5)).astype(dtype)
    A_prev = direct.act[activation](rng.standard_normal((6, 5))).astype(dtype)
    got = reference.backward_delta(delta, W, A_prev, activation)
    assert got.dtype == dtype and got.shape == (6, 5)
    assert_allclose(got, direct.backward_delta(delta, W, A_prev, activation), **tol(dtype))


@pytest.mark.parametrize("scale", [1.0, 1 / 6, -3.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_gradient_is_the_scaled_sum_of_outer_products(dtype, scale, rng, tol, direct):
    delta = rng.standard_normal((6, 3)).astype(dtype)
    A_prev = rng.standard_normal((6, 5)).astype(dtype)
    bias = np.empty(3, dtype=dtype)
    got = reference.weight_gradient(delta, A_prev, bias_out=bias, scale=scale)
    dW, db = direct.weight_gradient(delta, A_prev, scale)
    assert got.dtype == dtype and bias.dtype == dtype
    assert_allclose(got, dW, **tol(dtype))
    assert_allclose(bias, db, **tol(dtype))
