"""Tests for fastbp.kernels, the compiled kernels, against fastbp.reference and the math.

Every kernel is checked for both dtypes and every activation against the NumPy
reference and against the direct float64 formulas of tests/conftest.py; gradients
against central finite differences; then ``out=``/aliasing, edge shapes, non-contiguous
inputs, input immutability, numerical safety, input validation (both modules) and the
OpenMP thread setting.
"""

import warnings
from contextlib import contextmanager
from functools import partial

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastbp
from fastbp import _threads, kernels, reference

DTYPES = [np.float32, np.float64]
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]
MODULES = [pytest.param(kernels, id="kernels"), pytest.param(reference, id="reference")]
KERNELS = ["dense_forward", "activation_backward", "backward_delta", "weight_gradient"]

# (n, n_in, n_out): n samples through a layer with W of shape (n_out, n_in).
SHAPES = {
    "typical": (7, 5, 4),
    "zero_rows": (0, 5, 4),
    "one_row": (1, 5, 4),
    "one_feature": (6, 1, 4),
    "one_output": (6, 5, 1),
    "wide_input": (3, 1500, 4),
    "wide_output": (3, 4, 1500),
}
SHAPE_PARAMS = [pytest.param(shape, id=name) for name, shape in SHAPES.items()]

# Every kernel with every activation; weight_gradient takes none (run once, "identity").
KERNEL_ACTIVATIONS = [
    pytest.param(name, activation, id=f"{name}-{activation}" if name != "weight_gradient" else name)
    for name in KERNELS
    for activation in (ACTIVATIONS if name != "weight_gradient" else ["identity"])
]

# src/_kernels.pyx: elementwise passes over fewer output elements run on one thread.
PARALLEL_MIN_ELEMENTS = 32768


# --------------------------------------------------------------------------- helpers


def layer(rng, dtype, n, n_in, n_out):
    """Inputs of one dense layer, scaled so pre-activations are O(1) at any width."""
    A_prev = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_out, n_in)) / np.sqrt(max(n_in, 1))).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    return A_prev, W, b


def activation_output(rng, dtype, shape, activation, direct):
    """A realistic activation output A = act(Z) (softmax rows sum to 1, sigmoid in (0, 1))."""
    if 0 in shape:
        return np.zeros(shape, dtype=dtype)
    return direct.act[activation](2 * rng.standard_normal(shape)).astype(dtype)


def backward_delta_inputs(rng, dtype, n, n_in, n_out, activation, direct):
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    W = (rng.standard_normal((n_out, n_in)) / np.sqrt(max(n_out, 1))).astype(dtype)
    A_prev = activation_output(rng, dtype, (n, n_in), activation, direct)
    return delta, W, A_prev


def kernel_args(name, rng, dtype, activation, direct, n=5, n_in=4, n_out=3):
    """Valid positional arguments of kernel `name` (activation ignored by weight_gradient)."""
    if name == "dense_forward":
        return layer(rng, dtype, n, n_in, n_out) + (activation,)
    if name == "activation_backward":
        G = rng.standard_normal((n, n_out)).astype(dtype)
        return (G, activation_output(rng, dtype, (n, n_out), activation, direct), activation)
    if name == "backward_delta":
        return backward_delta_inputs(rng, dtype, n, n_in, n_out, activation, direct) + (
            activation,
        )
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    return (delta, rng.standard_normal((n, n_in)).astype(dtype))


def result_shape(name, args):
    if name == "dense_forward":
        return (args[0].shape[0], args[1].shape[0])
    if name == "activation_backward":
        return args[0].shape
    if name == "backward_delta":
        return args[2].shape
    return (args[0].shape[1], args[1].shape[1])


def noncontiguous(X, layout):
    """The same values as X, laid out so that X is not C-contiguous (for 2+ rows/cols)."""
    if layout == "fortran":
        return np.asfortranarray(X)
    if layout == "transposed":
        return np.ascontiguousarray(X.T).T
    if layout == "reversed":  # negative strides
        flip = (slice(None, None, -1),) * X.ndim
        return np.ascontiguousarray(X[flip])[flip]
    if layout == "strided":
        big = np.zeros(tuple(3 * s for s in X.shape), dtype=X.dtype)
        view = big[(slice(None, None, 3),) * X.ndim]
        view[...] = X
        return view
    raise ValueError(layout)


def numerical_gradient(f, X, h=1e-6):
    """Central differences: the directional derivative of f along every coordinate of X."""
    X = X.astype(np.float64)
    grad = np.empty_like(X)
    for idx in np.ndindex(X.shape):
        orig = X[idx]
        X[idx] = orig + h
        f_plus = f(X)
        X[idx] = orig - h
        f_minus = f(X)
        X[idx] = orig
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


# Central differences with h = 1e-6 on O(1) functions: truncation ~h^2, rounding
# ~1e-16 / h = 1e-10; any real error (a wrong slope, a missing term) is >= 1e-3.
FD_TOL = {"rtol": 1e-6, "atol": 1e-8}


@contextmanager
def no_floating_point_warnings():
    """Overflow, division by zero and invalid operations raise; RuntimeWarnings are errors.

    Underflow is left at NumPy's default (ignored, no warning): exp(-1e4) -> 0 is the
    correct result, not an error.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            yield


@pytest.fixture
def restore_num_threads():
    """Put back the process-wide thread setting (None included) after the test."""
    saved = _threads._num_threads
    yield
    fastbp.set_num_threads(saved)


# ------------------------------------------------------------------- module surface


def test_both_modules_offer_the_six_activations():
    assert tuple(kernels.ACTIVATIONS) == tuple(ACTIVATIONS)
    assert tuple(reference.ACTIVATIONS) == tuple(ACTIVATIONS)


@pytest.mark.parametrize("name", KERNELS)
def test_kernels_share_the_reference_docstrings(name):
    assert getattr(kernels, name).__doc__
    assert getattr(kernels, name).__doc__ == getattr(reference, name).__doc__


# ----------------------------------------- results: reference and direct formulas


@pytest.mark.parametrize("shape", SHAPE_PARAMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward_matches_reference_and_formula(dtype, activation, shape, rng, tol, direct):
    n, n_in, n_out = shape
    A_prev, W, b = layer(rng, dtype, n, n_in, n_out)
    got = kernels.dense_forward(A_prev, W, b, activation)
    assert got.shape == (n, n_out) and got.dtype == dtype
    assert got.flags.c_contiguous
    assert_allclose(got, reference.dense_forward(A_prev, W, b, activation), **tol(dtype))
    assert_allclose(got, direct.dense_forward(A_prev, W, b, activation), **tol(dtype))
    if activation == "softmax":
        assert_allclose(got.sum(axis=1, dtype=np.float64), 1.0, **tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward_without_bias(dtype, activation, rng, tol, direct):
    A_prev, W, _ = layer(rng, dtype, 6, 5, 4)
    got = kernels.dense_forward(A_prev, W, None, activation)
    assert_allclose(got, reference.dense_forward(A_prev, W, None, activation), **tol(dtype))
    assert_allclose(got, direct.dense_forward(A_prev, W, None, activation), **tol(dtype))


def test_dense_forward_activation_defaults_to_identity(rng, tol):
    A_prev, W, b = layer(rng, np.float64, 4, 3, 2)
    assert_allclose(kernels.dense_forward(A_prev, W, b), A_prev @ W.T + b, **tol(np.float64))


@pytest.mark.parametrize("shape", SHAPE_PARAMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_matches_reference_and_formula(
    dtype, activation, shape, rng, tol, direct
):
    n, _, k = shape
    G = rng.standard_normal((n, k)).astype(dtype)
    A = activation_output(rng, dtype, (n, k), activation, direct)
    got = kernels.activation_backward(G, A, activation)
    assert got.shape == (n, k) and got.dtype == dtype
    assert_allclose(got, reference.activation_backward(G, A, activation), **tol(dtype))
    assert_allclose(got, direct.vjp[activation](G, A), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_softmax_is_the_vector_jacobian_product(dtype, rng, tol, direct):
    """A * (G - sum(G * A, axis=1)) equals G @ J with the full softmax Jacobian per row."""
    A = activation_output(rng, dtype, (4, 5), "softmax", direct)
    G = rng.standard_normal((4, 5)).astype(dtype)
    got = kernels.activation_backward(G, A, "softmax")
    A64, G64 = A.astype(np.float64), G.astype(np.float64)
    for i in range(4):
        jacobian = np.diag(A64[i]) - np.outer(A64[i], A64[i])
        assert_allclose(got[i], G64[i] @ jacobian, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_leaky_relu_slope_is_0_01(module, dtype, tol):
    Z = np.array([[-2.0, -0.5, 0.5, 3.0]], dtype=dtype)
    out = module.dense_forward(Z, np.eye(4, dtype=dtype), None, "leaky_relu")
    assert_allclose(out, [[-0.02, -0.005, 0.5, 3.0]], **tol(dtype))
    G = np.ones_like(Z)
    assert_allclose(module.activation_backward(G, out, "leaky_relu"), [[0.01, 0.01, 1, 1]],
                    **tol(dtype))
    assert_allclose(module.backward_delta(np.ones((1, 1), dtype), np.ones((1, 4), dtype), out,
                                          "leaky_relu"), [[0.01, 0.01, 1, 1]], **tol(dtype))


@pytest.mark.parametrize("shape", SHAPE_PARAMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_delta_matches_reference_and_formula(dtype, activation, shape, rng, tol, direct):
    n, n_in, n_out = shape
    delta, W, A_prev = backward_delta_inputs(rng, dtype, n, n_in, n_out, activation, direct)
    got = kernels.backward_delta(delta, W, A_prev, activation)
    assert got.shape == (n, n_in) and got.dtype == dtype
    expected = reference.backward_delta(delta, W, A_prev, activation)
    assert_allclose(got, expected, **tol(dtype))
    assert_allclose(got, direct.backward_delta(delta, W, A_prev, activation), **tol(dtype))


@pytest.mark.parametrize("scale", [1.0, 0.25, -2.0, 0.0])
@pytest.mark.parametrize("shape", SHAPE_PARAMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_gradient_matches_reference_and_outer_product_sum(
    dtype, shape, scale, rng, tol, direct
):
    n, n_in, n_out = shape
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    A_prev = rng.standard_normal((n, n_in)).astype(dtype)
    bias = np.full(n_out, np.nan, dtype=dtype)  # every entry must be overwritten
    got = kernels.weight_gradient(delta, A_prev, bias_out=bias, scale=scale)
    assert got.shape == (n_out, n_in) and got.dtype == dtype

    ref_bias = np.empty(n_out, dtype=dtype)
    ref = reference.weight_gradient(delta, A_prev, bias_out=ref_bias, scale=scale)
    dW, db = direct.weight_gradient(delta, A_prev, scale)
    assert_allclose(got, ref, **tol(dtype))
    assert_allclose(got, dW, **tol(dtype))
    assert_allclose(bias, ref_bias, **tol(dtype))
    assert_allclose(bias, db, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_gradient_over_a_batch_is_the_mean_of_outer_products(dtype, rng, tol):
    n = 300
    delta = rng.standard_normal((n, 3)).astype(dtype)
    A_prev = rng.standard_normal((n, 4)).astype(dtype)
    bias = np.empty(3, dtype=dtype)
    got = kernels.weight_gradient(delta, A_prev, bias_out=bias, scale=1 / n)
    d64, a64 = delta.astype(np.float64), A_prev.astype(np.float64)
    assert_allclose(got, np.mean([np.outer(d, a) for d, a in zip(d64, a64)], axis=0),
                    **tol(dtype))
    assert_allclose(bias, d64.mean(axis=0), **tol(dtype))


# ----------------------------------------------------------- finite differences


def away_from_zero(Z, margin=0.1):
    """Z with every entry at least `margin` from 0 (the kink of relu and leaky_relu)."""
    return np.sign(Z) * (margin + np.abs(Z)) + (Z == 0) * margin


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("module", MODULES)
def test_activation_backward_is_the_derivative_of_sum_G_act_Z(module, activation, rng, direct):
    """activation_backward(G, act(Z)) = d/dZ sum(G * act(Z)), by central differences."""
    Z = away_from_zero(2 * rng.standard_normal((3, 5)))
    G = rng.standard_normal((3, 5))
    act = direct.act[activation]

    def f(Z):
        return np.sum(G * act(Z))

    got = module.activation_backward(G, act(Z), activation)
    assert_allclose(got, numerical_gradient(f, Z), **FD_TOL)
    # ... and along an arbitrary direction V: <grad, V> = (f(Z + hV) - f(Z - hV)) / 2h.
    V, h = rng.standard_normal(Z.shape), 1e-6
    assert_allclose(np.sum(got * V), (f(Z + h * V) - f(Z - h * V)) / (2 * h), **FD_TOL)


def two_layer_problem(rng, hidden, direct, margin=0.05):
    """X -> dense(W1, b1, hidden) -> dense(W2, b2, output), cost weights C.

    Drawn until no pre-activation is within `margin` of 0, so that relu and leaky_relu
    are differentiable on the whole finite-difference stencil.
    """
    while True:
        p = {
            "X": rng.standard_normal((3, 4)),
            "W1": rng.standard_normal((5, 4)) / 2,
            "b1": rng.standard_normal(5) / 2,
            "W2": rng.standard_normal((2, 5)) / 2,
            "b2": rng.standard_normal(2) / 2,
        }
        Z1 = p["X"] @ p["W1"].T + p["b1"]
        Z2 = direct.act[hidden](Z1) @ p["W2"].T + p["b2"]
        if np.abs(Z1).min() > margin and np.abs(Z2).min() > margin:
            return p, rng.standard_normal((3, 2))


@pytest.mark.parametrize("output", ACTIVATIONS)
@pytest.mark.parametrize("hidden", ACTIVATIONS)
@pytest.mark.parametrize("module", MODULES)
def test_backprop_through_two_dense_layers_matches_finite_differences(
    module, hidden, output, rng, direct
):
    """L = sum(C * act2(act1(X W1^T + b1) W2^T + b2)); its gradients by the kernels:

    delta2 = activation_backward(C, A2)       = dL/dZ2
    dW2, db2 = weight_gradient(delta2, A1)
    delta1 = backward_delta(delta2, W2, A1)   = dL/dZ1  (through act1)
    dW1, db1 = weight_gradient(delta1, X)
    dX = backward_delta(delta1, W1, X, "identity")
    """
    params, C = two_layer_problem(rng, hidden, direct)

    def loss(X, W1, b1, W2, b2):
        A1 = module.dense_forward(X, W1, b1, hidden)
        return np.sum(C * module.dense_forward(A1, W2, b2, output))

    p = params
    A1 = module.dense_forward(p["X"], p["W1"], p["b1"], hidden)
    A2 = module.dense_forward(A1, p["W2"], p["b2"], output)
    delta2 = module.activation_backward(C, A2, output)
    db2, db1 = np.empty(2), np.empty(5)
    dW2 = module.weight_gradient(delta2, A1, bias_out=db2)
    delta1 = module.backward_delta(delta2, p["W2"], A1, hidden)
    dW1 = module.weight_gradient(delta1, p["X"], bias_out=db1)
    dX = module.backward_delta(delta1, p["W1"], p["X"], "identity")

    analytic = {"X": dX, "W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    for name, grad in analytic.items():
        numeric = numerical_gradient(lambda v: loss(**{**params, name: v}), params[name])
        assert_allclose(grad, numeric, **FD_TOL, err_msg=f"dL/d{name}")


# ------------------------------------------------------------ numerical safety


def huge_rows(big, dtype):
    return np.array(
        [[big, -big, 0, 1], [-big, -big, -big, -big], [big, big, big, big],
         [big, -big, big, -big], [-big, 0, -big, 1]],
        dtype=dtype,
    )


HUGE = {np.float32: [80.0, 100.0, 1e4, 1e30], np.float64: [80.0, 800.0, 1e4, 1e300]}
HUGE_PARAMS = [
    pytest.param(dtype, big, id=f"{dtype.__name__}-{big:g}")
    for dtype in DTYPES for big in HUGE[dtype]
]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize(("dtype", "big"), HUGE_PARAMS)
@pytest.mark.parametrize("module", MODULES)
def test_saturating_activations_are_finite_and_warning_free_on_huge_inputs(
    module, dtype, big, activation, tol, direct
):
    Z = huge_rows(big, dtype)
    with no_floating_point_warnings():
        A = module.dense_forward(Z, np.eye(4, dtype=dtype), None, activation)
    assert np.isfinite(A).all()
    assert_allclose(A, direct.act[activation](Z.astype(np.float64)), **tol(dtype))
    if activation == "softmax":
        assert_allclose(A.sum(axis=1), 1.0, **tol(dtype))
        assert_allclose(A[2], 0.25, **tol(dtype))  # all-equal huge row: uniform
    if activation == "sigmoid":
        assert ((A >= 0) & (A <= 1)).all()
    with no_floating_point_warnings():
        D = module.activation_backward(np.ones_like(A), A, activation)
    assert np.isfinite(D).all()


@pytest.mark.parametrize("module", MODULES)
def test_sigmoid_float32_at_minus_80_keeps_the_tiny_value(module):
    """exp(-80) = 1.8e-35 is a normal float32: the stable sigmoid must not flush it to 0."""
    Z = np.array([[-80.0, 80.0]], dtype=np.float32)
    A = module.dense_forward(Z, np.eye(2, dtype=np.float32), None, "sigmoid")
    assert_allclose(A, [[np.exp(-80.0), 1.0]], rtol=1e-5, atol=0)


# Softmax of a row whose spread max - min overflows the dtype (e.g. float32 [3e38, -3e38]).
EXTREME = {np.float32: 3e38, np.float64: 1e308}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "module",
    [
        pytest.param(kernels, id="kernels"),
        pytest.param(reference, id="reference"),
    ],
)
def test_softmax_of_a_row_spanning_the_whole_float_range(module, dtype):
    Z = np.array([[EXTREME[dtype], -EXTREME[dtype], 0.0]], dtype=dtype)
    with no_floating_point_warnings():
        A = module.dense_forward(Z, np.eye(3, dtype=dtype), None, "softmax")
    assert_array_equal(A, [[1.0, 0.0, 0.0]])


# ------------------------------------------------ weight_gradient: out, accumulate


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_weight_gradient_accumulate_adds_into_out_and_bias_out(module, dtype, rng, tol, direct):
    delta = rng.standard_normal((6, 3)).astype(dtype)
    A_prev = rng.standard_normal((6, 4)).astype(dtype)
    out0 = rng.standard_normal((3, 4)).astype(dtype)
    bias0 = rng.standard_normal(3).astype(dtype)
    out, bias = out0.copy(), bias0.copy()
    result = module.weight_gradient(delta, A_prev, out=out, bias_out=bias, scale=0.5,
                                    accumulate=True)
    assert result is out
    dW, db = direct.weight_gradient(delta, A_prev, 0.5)
    assert_allclose(out, out0 + dW, **tol(dtype))
    assert_allclose(bias, bias0 + db, **tol(dtype))
    # Twice: the second call adds again.
    module.weight_gradient(delta, A_prev, out=out, bias_out=bias, scale=0.5, accumulate=True)
    assert_allclose(out, out0 + 2 * dW, **tol(dtype))
    assert_allclose(bias, bias0 + 2 * db, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_weight_gradient_without_accumulate_overwrites_out(module, dtype, rng, tol, direct):
    delta = rng.standard_normal((6, 3)).astype(dtype)
    A_prev = rng.standard_normal((6, 4)).astype(dtype)
    out = np.full((3, 4), 1e30, dtype=dtype)
    bias = np.full(3, 1e30, dtype=dtype)
    result = module.weight_gradient(delta, A_prev, out=out, bias_out=bias, scale=2.0)
    assert result is out
    dW, db = direct.weight_gradient(delta, A_prev, 2.0)
    assert_allclose(out, dW, **tol(dtype))
    assert_allclose(bias, db, **tol(dtype))


@pytest.mark.parametrize("module", MODULES)
def test_weight_gradient_without_bias_out_returns_only_the_weights(module, rng, tol, direct):
    delta, A_prev = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    got = module.weight_gradient(delta, A_prev)
    assert isinstance(got, np.ndarray)
    assert_allclose(got, direct.weight_gradient(delta, A_prev)[0], **tol(np.float64))


@pytest.mark.parametrize("scale", [2, np.float32(0.5), np.float64(0.5)],
                         ids=["int", "np.float32", "np.float64"])
@pytest.mark.parametrize("module", MODULES)
def test_weight_gradient_accepts_any_real_scale(module, scale, rng, tol, direct):
    delta, A_prev = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    bias = np.empty(2)
    got = module.weight_gradient(delta, A_prev, bias_out=bias, scale=scale)
    dW, db = direct.weight_gradient(delta, A_prev, float(scale))
    assert_allclose(got, dW, **tol(np.float64))
    assert_allclose(bias, db, **tol(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_weight_gradient_of_zero_rows_is_zero_and_accumulate_leaves_out_unchanged(
    module, dtype
):
    delta, A_prev = np.empty((0, 3), dtype=dtype), np.empty((0, 4), dtype=dtype)
    bias = np.full(3, np.nan, dtype=dtype)
    got = module.weight_gradient(delta, A_prev, bias_out=bias, scale=0.5)
    assert got.shape == (3, 4) and got.dtype == dtype
    assert_array_equal(got, 0)
    assert_array_equal(bias, 0)

    out0 = np.arange(12, dtype=dtype).reshape(3, 4)
    bias0 = np.arange(3, dtype=dtype)
    out, bias = out0.copy(), bias0.copy()
    assert module.weight_gradient(delta, A_prev, out=out, bias_out=bias, accumulate=True) is out
    assert_array_equal(out, out0)
    assert_array_equal(bias, bias0)


# ------------------------------------------------------------ out= and aliasing


@pytest.mark.parametrize(("name", "activation"), KERNEL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_out_is_filled_and_returned_itself(module, dtype, name, activation, rng, tol, direct):
    args = kernel_args(name, rng, dtype, activation, direct)
    expected = getattr(module, name)(*args)
    out = np.full(result_shape(name, args), np.nan, dtype=dtype)
    result = getattr(module, name)(*args, out=out)
    assert result is out
    assert_allclose(out, expected, **tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_in_place_on_G(dtype, activation, rng, tol, direct):
    G = rng.standard_normal((6, 5)).astype(dtype)
    A = activation_output(rng, dtype, G.shape, activation, direct)
    expected = reference.activation_backward(G, A, activation)
    A0 = A.copy()
    assert kernels.activation_backward(G, A, activation, out=G) is G
    assert_allclose(G, expected, **tol(dtype))
    assert_array_equal(A, A0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_in_place_on_A(dtype, activation, rng, tol, direct):
    G = rng.standard_normal((6, 5)).astype(dtype)
    A = activation_output(rng, dtype, G.shape, activation, direct)
    expected = reference.activation_backward(G, A, activation)
    assert kernels.activation_backward(G, A, activation, out=A) is A
    assert_allclose(A, expected, **tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_with_G_and_A_the_same_array(dtype, activation, rng, tol):
    X = rng.uniform(0.1, 0.9, size=(4, 5)).astype(dtype)
    expected = reference.activation_backward(X.copy(), X.copy(), activation)
    assert_allclose(kernels.activation_backward(X, X, activation), expected, **tol(dtype))
    assert kernels.activation_backward(X, X, activation, out=X) is X
    assert_allclose(X, expected, **tol(dtype))


def overlapping_views(rng, dtype, n, k, shift=1):
    """Two C-contiguous (n, k) views of one buffer, the second `shift` rows further on."""
    buf = rng.standard_normal((n + shift, k)).astype(dtype)
    return buf[:n], buf[shift:]


@pytest.mark.parametrize("shift", [1, 3])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_out_partially_overlapping_G(dtype, activation, shift, rng, tol):
    G, out = overlapping_views(rng, dtype, 6, 5, shift)
    A = rng.uniform(0.1, 0.9, size=(6, 5)).astype(dtype)
    expected = reference.activation_backward(G.copy(), A, activation)
    assert kernels.activation_backward(G, A, activation, out=out) is out
    assert_allclose(out, expected, **tol(dtype))
    # ... and with out shifted the other way (out starts before G).
    out, G = overlapping_views(rng, dtype, 6, 5, shift)
    expected = reference.activation_backward(G.copy(), A, activation)
    assert kernels.activation_backward(G, A, activation, out=out) is out
    assert_allclose(out, expected, **tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_dense_forward_out_is_A_prev(module, dtype, activation, rng, tol):
    A_prev, W, b = layer(rng, dtype, 6, 5, 5)  # n_in == n_out
    expected = reference.dense_forward(A_prev.copy(), W, b, activation)
    assert module.dense_forward(A_prev, W, b, activation, out=A_prev) is A_prev
    assert_allclose(A_prev, expected, **tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_dense_forward_out_is_W_or_overlaps_A_prev(module, dtype, activation, rng, tol):
    A_prev, W, b = layer(rng, dtype, 5, 5, 5)  # out, A_prev and W all (5, 5)
    expected = reference.dense_forward(A_prev, W.copy(), b, activation)
    assert module.dense_forward(A_prev, W, b, activation, out=W) is W
    assert_allclose(W, expected, **tol(dtype))

    A_prev, out = overlapping_views(rng, dtype, 6, 5, shift=2)
    W = layer(rng, dtype, 1, 5, 5)[1]
    expected = reference.dense_forward(A_prev.copy(), W, b, activation)
    assert module.dense_forward(A_prev, W, b, activation, out=out) is out
    assert_allclose(out, expected, **tol(dtype))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_backward_delta_out_aliasing_its_inputs(module, dtype, activation, rng, tol, direct):
    delta, W, A_prev = backward_delta_inputs(rng, dtype, 6, 6, 6, activation, direct)
    for target in ("A_prev", "delta", "W"):
        inputs = {"delta": delta.copy(), "W": W.copy(), "A_prev": A_prev.copy()}
        expected = reference.backward_delta(*(x.copy() for x in inputs.values()), activation)
        out = inputs[target]
        assert module.backward_delta(*inputs.values(), activation, out=out) is out
        assert_allclose(out, expected, **tol(dtype), err_msg=f"out={target}")

    # out a view shifted by one row over A_prev
    A_prev, out = overlapping_views(rng, dtype, 6, 6, shift=1)
    A_prev[...] = activation_output(rng, dtype, (6, 6), activation, direct)
    expected = reference.backward_delta(delta, W, A_prev.copy(), activation)
    assert module.backward_delta(delta, W, A_prev, activation, out=out) is out
    assert_allclose(out, expected, **tol(dtype))


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_weight_gradient_out_aliasing_its_inputs(module, dtype, accumulate, rng, tol, direct):
    """delta, A_prev and out all (4, 4): out may be either input, or overlap it."""
    for target in ("delta", "A_prev", "delta_shifted", "A_prev_shifted"):
        delta = rng.standard_normal((4, 4)).astype(dtype)
        A_prev = rng.standard_normal((4, 4)).astype(dtype)
        if target == "delta":
            out = delta
        elif target == "A_prev":
            out = A_prev
        else:
            src, out = overlapping_views(rng, dtype, 4, 4, shift=1)
            if target == "delta_shifted":
                delta = src
            else:
                A_prev = src
        out0, bias0 = out.copy(), np.linspace(-1, 1, 4).astype(dtype)
        dW, db = direct.weight_gradient(delta.copy(), A_prev.copy(), 0.5)
        bias = bias0.copy()
        result = module.weight_gradient(delta, A_prev, out=out, bias_out=bias, scale=0.5,
                                        accumulate=accumulate)
        assert result is out
        base_W, base_b = (out0, bias0) if accumulate else (0, 0)
        assert_allclose(out, base_W + dW, **tol(dtype), err_msg=f"out overlaps {target}")
        assert_allclose(bias, base_b + db, **tol(dtype), err_msg=f"out overlaps {target}")


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_weight_gradient_bias_out_inside_delta(module, dtype, accumulate, rng, tol, direct):
    delta = rng.standard_normal((5, 3)).astype(dtype)
    A_prev = rng.standard_normal((5, 2)).astype(dtype)
    dW, db = direct.weight_gradient(delta.copy(), A_prev, 1.0)
    bias = delta[2]  # a C-contiguous row of delta
    bias0 = bias.copy()
    out0 = np.ones((3, 2), dtype=dtype)
    out = out0.copy()
    module.weight_gradient(delta, A_prev, out=out, bias_out=bias, accumulate=accumulate)
    assert_allclose(out, (out0 if accumulate else 0) + dW, **tol(dtype))
    assert_allclose(bias, (bias0 if accumulate else 0) + db, **tol(dtype))


# --------------------------------------------------------------- edge shapes


@pytest.mark.parametrize(("name", "activation"), KERNEL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_zero_rows_give_empty_results_of_the_right_shape(module, dtype, name, activation, rng,
                                                         direct):
    args = kernel_args(name, rng, dtype, activation, direct, n=0, n_in=4, n_out=3)
    got = getattr(module, name)(*args)
    assert got.shape == result_shape(name, args) and got.dtype == dtype
    if name == "weight_gradient":
        assert_array_equal(got, 0)  # an empty sum
    else:
        assert got.size == 0


ZERO_WIDTH_PARAMS = [
    pytest.param(
        module, name, activation, n_in, n_out,
        id=f"{module.__name__.split('.')[-1]}-{name}-{activation}-{n_in}in-{n_out}out",
    )
    for module in (kernels, reference)
    for name in KERNELS
    for activation in ACTIVATIONS
    for n_in, n_out in ((0, 3), (4, 0))
    if name != "weight_gradient" or activation == "identity"
]


@pytest.mark.parametrize(("module", "name", "activation", "n_in", "n_out"), ZERO_WIDTH_PARAMS)
def test_zero_width_layers(module, name, activation, n_in, n_out, rng, tol, direct):
    """A layer with no inputs (output act(b)) or no outputs: validation accepts both."""
    args = kernel_args(name, rng, np.float64, activation, direct, n=3, n_in=n_in, n_out=n_out)
    got = getattr(module, name)(*args)
    assert got.shape == result_shape(name, args)
    if name == "dense_forward" and n_in == 0:
        b = args[2]
        assert_allclose(got, direct.act[activation](np.tile(b, (3, 1))), **tol(np.float64))
    elif name in ("backward_delta", "weight_gradient"):
        assert_array_equal(got, 0)  # an empty sum over the missing dimension


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_a_single_output_is_one_with_zero_derivative(dtype, rng):
    A_prev, W, b = layer(rng, dtype, 5, 3, 1)
    A = kernels.dense_forward(A_prev, W, b, "softmax")
    assert_array_equal(A, 1)
    G = rng.standard_normal((5, 1)).astype(dtype)
    assert_array_equal(kernels.activation_backward(G, A, "softmax"), 0)


LAYOUTS = ["fortran", "transposed", "reversed", "strided"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("name", "activation"), KERNEL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs_give_the_same_result(dtype, name, activation, layout, rng, tol,
                                                    direct):
    args = kernel_args(name, rng, dtype, activation, direct, n=6, n_in=5, n_out=4)
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    rest = args[len(arrays):]
    strange = [noncontiguous(a, layout) for a in arrays]
    assert not any(s.flags.c_contiguous for s in strange if s.ndim == 2)
    kernel = getattr(kernels, name)
    expected = kernel(*arrays, *rest)
    got = kernel(*strange, *rest)
    assert got.flags.c_contiguous
    assert_array_equal(got, expected)
    assert_allclose(got, getattr(reference, name)(*strange, *rest), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs_with_out_given(dtype, rng, tol):
    A_prev, W, b = layer(rng, dtype, 6, 5, 4)
    out = np.empty((6, 4), dtype=dtype)
    expected = reference.dense_forward(A_prev, W, b, "tanh")
    got = kernels.dense_forward(noncontiguous(A_prev, "strided"), noncontiguous(W, "fortran"),
                                noncontiguous(b, "strided"), "tanh", out=out)
    assert got is out
    assert_allclose(out, expected, **tol(dtype))


@pytest.mark.parametrize("module", MODULES)
def test_array_likes_are_accepted_as_float64(module, tol):
    got = module.dense_forward([[1.0, 2.0]], [[1.0, -1.0], [0.5, 0.5]], [0.0, 1.0], "relu")
    assert got.dtype == np.float64
    assert_allclose(got, [[0.0, 2.5]], **tol(np.float64))


# ------------------------------------------------------------ inputs unchanged


@pytest.mark.parametrize("with_out", [False, True], ids=["new", "out"])
@pytest.mark.parametrize(("name", "activation"), KERNEL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_inputs_are_never_modified(module, dtype, name, activation, with_out, rng, direct):
    args = kernel_args(name, rng, dtype, activation, direct)
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    kwargs = {}
    if with_out:
        kwargs["out"] = np.empty(result_shape(name, args), dtype=dtype)
        if name == "weight_gradient":
            kwargs["bias_out"] = np.empty(args[0].shape[1], dtype=dtype)
    getattr(module, name)(*args, **kwargs)
    for before, after in zip(copies, args):
        if isinstance(before, np.ndarray):
            assert_array_equal(after, before)
    # Non-contiguous inputs, which the kernels copy internally, stay unchanged too.
    strided = [noncontiguous(a, "strided") if isinstance(a, np.ndarray) else a for a in args]
    getattr(module, name)(*strided, **kwargs)
    for before, after in zip(copies, strided):
        if isinstance(before, np.ndarray):
            assert_array_equal(after, before)


# ---------------------------------------------------------------- validation


def valid_kwargs(name, dtype):
    """Valid keyword arguments: A_prev (3, 4), W (5, 4) / (5, 4), delta (3, 5)."""
    f = np.dtype(dtype).type
    if name == "dense_forward":
        return dict(A_prev=np.ones((3, 4), f), W=np.ones((5, 4), f), b=np.ones(5, f),
                    activation="tanh")
    if name == "activation_backward":
        return dict(G=np.ones((3, 4), f), A=np.full((3, 4), 0.5, f), activation="sigmoid")
    if name == "backward_delta":
        return dict(delta=np.ones((3, 5), f), W=np.ones((5, 4), f), A_prev=np.ones((3, 4), f),
                    activation="relu")
    return dict(delta=np.ones((3, 5), f), A_prev=np.ones((3, 4), f))


def other(dtype):
    return np.float64 if dtype == np.float32 else np.float32


def read_only(shape, dtype):
    x = np.zeros(shape, dtype)
    x.flags.writeable = False
    return x


def ones(shape, dtype):
    """An override with a fixed dtype, whatever dtype the test runs with."""
    return lambda _tested_dtype: np.ones(shape, dtype)


def case(name, id, exc, match, **overrides):
    """One bad call: overrides are values or functions of the dtype."""
    return pytest.param(name, overrides, exc, match, id=f"{name}-{id}")


OUT_CASES = [
    ("out-list", ValueError, "out must be a numpy array", lambda d, s: np.zeros(s).tolist()),
    ("out-shape", ValueError, r"out must have shape", lambda d, s: np.zeros((s[0] + 1, s[1]), d)),
    ("out-transposed-shape", ValueError, r"out must have shape",
     lambda d, s: np.zeros(s[::-1], d)),
    ("out-1d", ValueError, r"out must have shape", lambda d, s: np.zeros(s[0] * s[1], d)),
    ("out-dtype", ValueError, r"out must have dtype", lambda d, s: np.zeros(s, other(d))),
    ("out-int-dtype", ValueError, r"out must have dtype", lambda d, s: np.zeros(s, np.int64)),
    ("out-fortran", ValueError, r"out must be C-contiguous",
     lambda d, s: np.asfortranarray(np.zeros(s, d))),
    ("out-strided", ValueError, r"out must be C-contiguous",
     lambda d, s: np.zeros((s[0], 2 * s[1]), d)[:, ::2]),
    ("out-read-only", ValueError, r"out must be writeable", lambda d, s: read_only(s, d)),
]
OUT_SHAPE = {"dense_forward": (3, 5), "activation_backward": (3, 4), "backward_delta": (3, 4),
             "weight_gradient": (5, 4)}

ACTIVATION_CASES = [
    ("activation-unknown", ValueError, r"unknown activation 'swish'.*identity, sigmoid", "swish"),
    ("activation-wrong-case", ValueError, r"unknown activation 'ReLU'", "ReLU"),
    ("activation-empty", ValueError, r"unknown activation ''", ""),
    ("activation-None", TypeError, r"activation must be a str.*NoneType", None),
    ("activation-int", TypeError, r"activation must be a str.*int", 1),
    ("activation-bytes", TypeError, r"activation must be a str.*bytes", b"relu"),
]

BAD_DTYPES = [
    ("int", np.int64), ("int32", np.int32), ("bool", np.bool_), ("object", object),
    ("float16", np.float16), ("complex", np.complex128),
]

VALIDATION_CASES = [
    # dense_forward
    case("dense_forward", "A_prev-1d", ValueError, r"A_prev must be 2-D.*got shape \(4,\)",
         A_prev=lambda d: np.ones(4, d)),
    case("dense_forward", "A_prev-3d", ValueError, r"A_prev must be 2-D",
         A_prev=lambda d: np.ones((3, 4, 1), d)),
    case("dense_forward", "A_prev-0d", ValueError, r"A_prev must be 2-D",
         A_prev=lambda d: np.array(1.0, d)),
    case("dense_forward", "W-1d", ValueError, r"W must be 2-D", W=lambda d: np.ones(4, d)),
    case("dense_forward", "b-2d", ValueError, r"b must be 1-D", b=lambda d: np.ones((1, 5), d)),
    case("dense_forward", "W-columns", ValueError, r"W has 3 columns.*A_prev has 4 features",
         W=lambda d: np.ones((5, 3), d)),
    case("dense_forward", "W-transposed", ValueError, r"W has 5 columns",
         W=lambda d: np.ones((4, 5), d)),
    case("dense_forward", "b-length", ValueError, r"b has 4 entries",
         b=lambda d: np.ones(4, d)),
    case("dense_forward", "W-mixed-dtype", TypeError, r"W has dtype .* but A_prev has dtype",
         W=lambda d: np.ones((5, 4), other(d))),
    case("dense_forward", "b-mixed-dtype", TypeError, r"b has dtype .* but A_prev has dtype",
         b=lambda d: np.ones(5, other(d))),
    case("dense_forward", "A_prev-None", TypeError, r"A_prev must be a float32 or float64 array",
         A_prev=None),
    case("dense_forward", "W-None", TypeError, r"W must be a float32 or float64 array", W=None),
    *[case("dense_forward", f"A_prev-{label}", TypeError,
           r"A_prev must have dtype float32 or float64", A_prev=ones((3, 4), bad))
      for label, bad in BAD_DTYPES],
    case("dense_forward", "W-int", TypeError, r"W must have dtype float32 or float64",
         W=ones((5, 4), np.int64)),
    case("dense_forward", "b-int", TypeError, r"b must have dtype float32 or float64",
         b=ones(5, np.int64)),
    # activation_backward
    case("activation_backward", "G-1d", ValueError, r"G must be 2-D", G=lambda d: np.ones(4, d)),
    case("activation_backward", "A-3d", ValueError, r"A must be 2-D",
         A=lambda d: np.ones((3, 4, 1), d)),
    case("activation_backward", "shapes-differ", ValueError,
         r"G has shape \(3, 4\) but A has shape \(3, 5\)", A=lambda d: np.ones((3, 5), d)),
    case("activation_backward", "A-transposed", ValueError, r"G has shape .* but A has shape",
         A=lambda d: np.ones((4, 3), d)),
    case("activation_backward", "A-mixed-dtype", TypeError, r"A has dtype .* but G has dtype",
         A=lambda d: np.ones((3, 4), other(d))),
    case("activation_backward", "G-int", TypeError, r"G must have dtype float32 or float64",
         G=ones((3, 4), np.int64)),
    case("activation_backward", "A-bool", TypeError, r"A must have dtype float32 or float64",
         A=ones((3, 4), bool)),
    case("activation_backward", "G-None", TypeError, r"G must be a float32 or float64 array",
         G=None),
    # backward_delta
    case("backward_delta", "delta-1d", ValueError, r"delta must be 2-D",
         delta=lambda d: np.ones(5, d)),
    case("backward_delta", "W-1d", ValueError, r"W must be 2-D", W=lambda d: np.ones(5, d)),
    case("backward_delta", "A_prev-1d", ValueError, r"A_prev must be 2-D",
         A_prev=lambda d: np.ones(4, d)),
    case("backward_delta", "delta-columns", ValueError, r"delta has 6 columns but W has 5 rows",
         delta=lambda d: np.ones((3, 6), d)),
    case("backward_delta", "A_prev-columns", ValueError,
         r"A_prev must have shape \(3, 4\).*got \(3, 5\)", A_prev=lambda d: np.ones((3, 5), d)),
    case("backward_delta", "A_prev-rows", ValueError,
         r"A_prev must have shape \(3, 4\).*got \(2, 4\)", A_prev=lambda d: np.ones((2, 4), d)),
    case("backward_delta", "W-mixed-dtype", TypeError, r"W has dtype .* but delta has dtype",
         W=lambda d: np.ones((5, 4), other(d))),
    case("backward_delta", "A_prev-mixed-dtype", TypeError, r"A_prev has dtype .* but delta",
         A_prev=lambda d: np.ones((3, 4), other(d))),
    case("backward_delta", "delta-int", TypeError, r"delta must have dtype float32 or float64",
         delta=ones((3, 5), np.int32)),
    case("backward_delta", "W-object", TypeError, r"W must have dtype float32 or float64",
         W=ones((5, 4), object)),
    # weight_gradient
    case("weight_gradient", "delta-1d", ValueError, r"delta must be 2-D",
         delta=lambda d: np.ones(5, d)),
    case("weight_gradient", "A_prev-3d", ValueError, r"A_prev must be 2-D",
         A_prev=lambda d: np.ones((3, 4, 1), d)),
    case("weight_gradient", "rows-differ", ValueError, r"delta has 2 rows.*A_prev has 3",
         delta=lambda d: np.ones((2, 5), d)),
    case("weight_gradient", "A_prev-mixed-dtype", TypeError, r"A_prev has dtype .* but delta",
         A_prev=lambda d: np.ones((3, 4), other(d))),
    case("weight_gradient", "delta-bool", TypeError, r"delta must have dtype float32 or float64",
         delta=ones((3, 5), bool)),
    case("weight_gradient", "A_prev-int", TypeError, r"A_prev must have dtype float32 or float64",
         A_prev=ones((3, 4), np.int64)),
    case("weight_gradient", "scale-nan", ValueError, r"scale must be finite", scale=np.nan),
    case("weight_gradient", "scale-inf", ValueError, r"scale must be finite", scale=np.inf),
    case("weight_gradient", "scale-minus-inf", ValueError, r"scale must be finite",
         scale=-np.inf),
    case("weight_gradient", "scale-float32-nan", ValueError, r"scale must be finite",
         scale=np.float32("nan")),
    case("weight_gradient", "scale-str", TypeError, r"scale must be a real number", scale="1"),
    case("weight_gradient", "scale-None", TypeError, r"scale must be a real number", scale=None),
    case("weight_gradient", "scale-bool", TypeError, r"scale must be a real number", scale=True),
    case("weight_gradient", "scale-array", TypeError, r"scale must be a real number",
         scale=np.ones(1)),
    case("weight_gradient", "accumulate-int", TypeError, r"accumulate must be True or False",
         out=lambda d: np.zeros((5, 4), d), accumulate=1),
    case("weight_gradient", "accumulate-None", TypeError, r"accumulate must be True or False",
         accumulate=None),
    case("weight_gradient", "accumulate-without-out", ValueError,
         r"accumulate=True .* out= must be given", accumulate=True),
    case("weight_gradient", "accumulate-without-out-with-bias_out", ValueError,
         r"out= must be given", accumulate=True, bias_out=lambda d: np.zeros(5, d)),
    case("weight_gradient", "bias_out-list", ValueError, r"bias_out must be a numpy array",
         bias_out=[0.0] * 5),
    case("weight_gradient", "bias_out-shape", ValueError, r"bias_out must have shape \(5,\)",
         bias_out=lambda d: np.zeros(4, d)),
    case("weight_gradient", "bias_out-2d", ValueError, r"bias_out must have shape \(5,\)",
         bias_out=lambda d: np.zeros((5, 1), d)),
    case("weight_gradient", "bias_out-dtype", ValueError, r"bias_out must have dtype",
         bias_out=lambda d: np.zeros(5, other(d))),
    case("weight_gradient", "bias_out-strided", ValueError, r"bias_out must be C-contiguous",
         bias_out=lambda d: np.zeros(10, d)[::2]),
    case("weight_gradient", "bias_out-read-only", ValueError, r"bias_out must be writeable",
         bias_out=lambda d: read_only(5, d)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", MODULES)
def test_weight_gradient_rejects_bias_out_overlapping_out(module, dtype):
    """bias_out inside out would make the result depend on which is written last."""
    kwargs = valid_kwargs("weight_gradient", dtype)
    n_out, n_in = kwargs["delta"].shape[1], kwargs["A_prev"].shape[1]
    out = np.zeros((n_out + 1) * n_in, dtype)
    kwargs["out"] = out[:n_out * n_in].reshape(n_out, n_in)
    kwargs["bias_out"] = out[n_in - 1:n_in - 1 + n_out] if n_out <= n_in else out[:n_out]
    with pytest.raises(ValueError, match="bias_out overlaps out"):
        module.weight_gradient(**kwargs)


VALIDATION_CASES += [
    # out=, for every kernel
    *[case(name, label, exc, match, out=partial(make, s=OUT_SHAPE[name]))
      for name in KERNELS for label, exc, match, make in OUT_CASES],
    # activation, for the three kernels that take one
    *[case(name, label, exc, match, activation=value)
      for name in KERNELS[:3] for label, exc, match, value in ACTIVATION_CASES],
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "overrides", "exc", "match"), VALIDATION_CASES)
@pytest.mark.parametrize("module", MODULES)
def test_invalid_arguments_raise_a_clear_error(module, name, overrides, exc, match, dtype):
    kwargs = valid_kwargs(name, dtype)
    kwargs.update({k: v(dtype) if callable(v) else v for k, v in overrides.items()})
    with pytest.raises(exc, match=match):
        getattr(module, name)(**kwargs)


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("module", MODULES)
def test_valid_kwargs_are_valid(module, name):
    """The baseline of the validation cases is itself accepted (each case changes one thing)."""
    getattr(module, name)(**valid_kwargs(name, np.float64))
    getattr(module, name)(**valid_kwargs(name, np.float32))


@pytest.mark.parametrize("name", KERNELS[:3])
@pytest.mark.parametrize("module", MODULES)
def test_unknown_activation_message_lists_every_valid_one(module, name):
    kwargs = valid_kwargs(name, np.float64)
    kwargs["activation"] = "gelu"
    with pytest.raises(ValueError, match="gelu") as excinfo:
        getattr(module, name)(**kwargs)
    for activation in ACTIVATIONS:
        assert activation in str(excinfo.value)


@pytest.mark.parametrize("module", MODULES)
def test_a_failed_call_leaves_out_untouched(module):
    kwargs = valid_kwargs("weight_gradient", np.float64)
    out, bias = np.full((5, 4), 7.0), np.full(5, 7.0)
    with pytest.raises(ValueError, match="scale"):
        module.weight_gradient(**kwargs, out=out, bias_out=bias, scale=np.nan)
    assert_array_equal(out, 7.0)
    assert_array_equal(bias, 7.0)


# ------------------------------------------------------------------- threads


def test_set_num_threads_round_trips(restore_num_threads):
    openmp = fastbp.build_info()["openmp"]
    for n in (1, 2, 3, np.int64(2)):
        fastbp.set_num_threads(n)
        got = fastbp.get_num_threads()
        assert got == (int(n) if openmp else 1)
        assert type(got) is int


def test_set_num_threads_none_restores_the_openmp_default(restore_num_threads):
    fastbp.set_num_threads(1)
    fastbp.set_num_threads(None)
    info = fastbp.build_info()
    assert fastbp.get_num_threads() == (info["openmp_max_threads"] if info["openmp"] else 1)
    assert fastbp.get_num_threads() >= 1


@pytest.mark.parametrize(("value", "exc", "match"), [
    (0, ValueError, r"number of threads in \[1, 4096\].*got 0"),
    (-1, ValueError, r"number of threads in \[1, 4096\].*got -1"),
    (np.int32(-4), ValueError, r"number of threads"),
    (2**31, ValueError, r"number of threads in \[1, 4096\].*got 2147483648"),
    (1.0, TypeError, r"n must be a positive int or None.*float"),
    ("2", TypeError, r"n must be a positive int or None.*str"),
    (True, TypeError, r"n must be a positive int or None.*bool"),
])
def test_set_num_threads_rejects_bad_values(value, exc, match, restore_num_threads):
    fastbp.set_num_threads(2)
    with pytest.raises(exc, match=match):
        fastbp.set_num_threads(value)
    assert fastbp.get_num_threads() == (2 if fastbp.build_info()["openmp"] else 1)


# (n, n_in, n_out) with n * n_out >= PARALLEL_MIN_ELEMENTS output elements, so the
# elementwise passes take the OpenMP path: uneven row blocks (257 rows), and fewer rows
# than threads (2 rows, 3 threads: as many blocks as rows).
PARALLEL_SHAPES = {"257x160": (257, 64, 160), "2x20000": (2, 8, 20000)}


THREAD_PARAMS = [
    pytest.param(name, activation, shape, id=f"{name}-{activation}-{label}")
    for name in KERNELS
    # weight_gradient takes no activation: one run per shape is enough
    for activation in (ACTIVATIONS if name != "weight_gradient" else ["identity"])
    for label, shape in PARALLEL_SHAPES.items()
]


@pytest.mark.parametrize(("name", "activation", "shape"), THREAD_PARAMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_count_does_not_change_results(dtype, name, activation, shape, rng, tol, direct,
                                              restore_num_threads):
    n, n_in, n_out = shape
    if name == "backward_delta":  # its output is (n, n_in): swap to keep it large
        n_in, n_out = n_out, n_in
    args = kernel_args(name, rng, dtype, activation, direct, n=n, n_in=n_in, n_out=n_out)
    if name != "weight_gradient":  # weight_gradient has no OpenMP pass (BLAS only)
        assert np.prod(result_shape(name, args)) >= PARALLEL_MIN_ELEMENTS
    kernel = getattr(kernels, name)
    results = {}
    for threads in (1, 2, 3):
        fastbp.set_num_threads(threads)
        results[threads] = kernel(*args)
    assert_array_equal(results[2], results[1])
    assert_array_equal(results[3], results[1])
    if name == "weight_gradient":
        assert_sum_close(results[2], *args, rtol=tol(dtype)["rtol"], direct=direct)
    else:
        assert_allclose(results[2], getattr(reference, name)(*args), **tol(dtype))


def assert_sum_close(dW, delta, A_prev, rtol, direct):
    """dW is delta.T @ A_prev to within rtol * sum_i |delta_ij a_ik|, elementwise.

    A sum of n float32 terms carries a rounding error that grows with n and with the
    size of its terms, not of the (possibly cancelling) result: at n = 257 a fixed atol
    fails a kernel that is correct. The error is bounded by the sum of |terms| times a
    multiple of eps (n * eps for a plain float32 sum, eps for a double accumulation); the
    table's rtol (~80 eps for float32) is that multiple. Compared with the float64
    formula, not with fastbp.reference, whose own float32 rounding is of the same size.
    """
    expected, _ = direct.weight_gradient(delta, A_prev)
    bound = np.abs(delta).T.astype(np.float64) @ np.abs(A_prev).astype(np.float64)
    err = np.abs(dW.astype(np.float64) - expected)
    tol = rtol * bound + np.finfo(dW.dtype).tiny
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(err / tol), err.shape))
    assert np.all(err <= tol), (f"|dW - delta.T @ A_prev| at {worst} is {err[worst]:.3g}, "
                                f"above {tol[worst]:.3g} ({rtol} * sum of |terms|)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_summation_bound_catches_a_wrong_weight_gradient(dtype, rng, tol, direct):
    """assert_sum_close can fail: a sum missing one row's outer product, or off by
    twice the bound in one element, is caught; the right sum passes."""
    delta = rng.standard_normal((257, 160)).astype(dtype)
    A_prev = rng.standard_normal((257, 64)).astype(dtype)
    rtol = tol(dtype)["rtol"]
    right = kernels.weight_gradient(delta, A_prev)
    assert_sum_close(right, delta, A_prev, rtol, direct)
    missing_row = kernels.weight_gradient(delta[:-1], A_prev[:-1])
    with pytest.raises(AssertionError, match="sum of"):
        assert_sum_close(missing_row, delta, A_prev, rtol, direct)
    bound = np.abs(delta[:, 7]).astype(np.float64) @ np.abs(A_prev[:, 3]).astype(np.float64)
    off = right.copy()
    off[7, 3] += dtype(2 * rtol * bound)
    with pytest.raises(AssertionError, match=r"at \(7, 3\)"):
        assert_sum_close(off, delta, A_prev, rtol, direct)


@pytest.mark.parametrize("module", MODULES)
def test_byte_swapped_arrays_are_rejected_not_misread(module):
    """A non-native byte order is a different dtype: a clear TypeError, never garbage."""
    rng = np.random.default_rng(0)
    A = rng.random((3, 4)).astype(">f4")
    W = rng.random((2, 4)).astype(">f4")
    with pytest.raises(TypeError, match="A_prev must have dtype float32 or float64"):
        module.dense_forward(A, W, None)
    out = np.empty((3, 2), ">f4")
    with pytest.raises((TypeError, ValueError), match="dtype"):
        module.dense_forward(A.astype(np.float32), W.astype(np.float32), None, out=out)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_relu_passes_nan_through_like_numpy(activation):
    Z = np.array([[np.nan, 1.0, -2.0, np.inf, -np.inf]])
    eye = np.eye(5)
    G = np.array([[np.nan, 1.0, np.inf, 2.0, np.nan]])
    A = np.array([[0.0, 1.0, 0.0, -1.0, 3.0]])
    with np.errstate(invalid="ignore"):  # NumPy's own warnings about inf * 0
        np.testing.assert_array_equal(kernels.dense_forward(Z, eye, None, activation),
                                      reference.dense_forward(Z, eye, None, activation))
        np.testing.assert_array_equal(kernels.activation_backward(G, A, activation),
                                      reference.activation_backward(G, A, activation))
