"""Tests for fastbp.losses: the per-sample costs, their clipping, BP1 and the pair checks."""

import itertools

import numpy as np
import pytest

from fastbp._backends import get_backend
from fastbp.losses import LOSSES, MATCHING_PAIRS, OUTPUTS, check_loss, loss_sum, output_error

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
LEAKY_SLOPE = 0.01
DTYPES = (np.float32, np.float64)
BACKENDS = ("cython", "numpy")
VALID_PAIRS = [(o, "mse") for o in ACTIVATIONS] + [("sigmoid", "cross_entropy"),
                                                   ("softmax", "cross_entropy")]


def act(name, Z):
    if name == "identity":
        return Z.copy()
    if name == "sigmoid":
        return 1 / (1 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, LEAKY_SLOPE * Z)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def cost(output, loss, A, Y):
    """sum_i C(a_i, y_i), written per sample and per unit."""
    A, Y = np.asarray(A, np.float64), np.asarray(Y, np.float64)
    total = 0.0
    for a, y in zip(A, Y):
        for a_k, y_k in zip(a, y):
            if loss == "mse":
                total += 0.5 * (a_k - y_k) ** 2
            elif output == "softmax":
                total -= y_k * np.log(a_k)
            else:
                total -= y_k * np.log(a_k) + (1 - y_k) * np.log(1 - a_k)
    return total


def sample(output, loss, rng, n=6, k=4):
    Z = rng.normal(size=(n, k))
    A = act(output, Z)
    if output == "softmax" and loss == "cross_entropy":
        Y = rng.random((n, k))
        Y /= Y.sum(axis=1, keepdims=True)  # soft targets: more general than one-hot
    elif output in ("sigmoid", "softmax"):
        Y = rng.random((n, k))
    else:
        Y = rng.normal(size=(n, k))
    return Z, A, Y


def test_constants():
    assert LOSSES == ("mse", "cross_entropy")
    assert set(OUTPUTS) == set(ACTIVATIONS)
    assert MATCHING_PAIRS == {("identity", "mse"), ("softmax", "cross_entropy"),
                              ("sigmoid", "cross_entropy")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output,loss", VALID_PAIRS)
def test_loss_sum_is_the_direct_formula(output, loss, dtype):
    rng = np.random.default_rng(0)
    _, A, Y = sample(output, loss, rng)
    A, Y = A.astype(dtype), Y.astype(dtype)
    A_copy, Y_copy = A.copy(), Y.copy()
    scratch = np.full_like(A, 123.0)
    got = loss_sum(output, loss, A, Y, scratch)
    assert isinstance(got, float)
    assert got == pytest.approx(cost(output, loss, A, Y), rel=1e-5 if dtype == np.float32
                                else 1e-13)
    np.testing.assert_array_equal(A, A_copy)  # inputs are not modified
    np.testing.assert_array_equal(Y, Y_copy)


def test_mse_is_half_the_squared_error():
    A = np.array([[1.0, 2.0], [0.0, -1.0]])
    Y = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert loss_sum("identity", "mse", A, Y, np.empty_like(A)) == 0.5 * (1 + 4 + 0 + 4)


def test_cross_entropy_values_by_hand():
    A = np.array([[0.25, 0.75], [0.5, 0.5]])
    Y = np.array([[0.0, 1.0], [1.0, 0.0]])
    scratch = np.empty_like(A)
    assert loss_sum("softmax", "cross_entropy", A, Y, scratch) == pytest.approx(
        -np.log(0.75) - np.log(0.5))
    assert loss_sum("sigmoid", "cross_entropy", A, Y, scratch) == pytest.approx(
        -np.log(0.75) - np.log(0.75) - np.log(0.5) - np.log(0.5))
    # Perfect predictions cost (almost) nothing.
    assert loss_sum("softmax", "cross_entropy", Y, Y, scratch) == pytest.approx(0, abs=1e-12)
    assert loss_sum("sigmoid", "cross_entropy", Y, Y, scratch) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_clipping_keeps_cross_entropy_finite(output, dtype):
    eps = np.finfo(dtype).eps
    # Confidently wrong: probability exactly 0 for the true class, exactly 1 for a wrong one.
    A = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], dtype)
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype)
    with np.errstate(divide="raise", invalid="raise"):
        got = loss_sum(output, "cross_entropy", A, Y, np.empty_like(A))
    assert np.isfinite(got)
    if output == "softmax":
        expected = 2 * -np.log(eps) - np.log(0.5)
    else:  # each confidently wrong unit costs -log(eps); the 0.5 row costs 2 log 2
        expected = 4 * -np.log(eps) + 2 * np.log(2)
    assert got == pytest.approx(expected, rel=1e-5)
    # Confidently right: exactly 0/1 where the target is, so ~0 cost, still finite.
    right = loss_sum(output, "cross_entropy", Y[:2], Y[:2], np.empty_like(Y[:2]))
    assert np.isfinite(right) and 0 <= right < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output,loss", VALID_PAIRS)
def test_output_error(output, loss, dtype, backend):
    rng = np.random.default_rng(1)
    _, A, Y = sample(output, loss, rng)
    A, Y = A.astype(dtype), Y.astype(dtype)
    A_copy = A.copy()
    out = np.empty_like(A)
    result = output_error(output, loss, A, Y, out, get_backend(backend))
    assert result is out
    A64, G = A.astype(np.float64), A.astype(np.float64) - Y.astype(np.float64)
    if (output, loss) == ("softmax", "cross_entropy"):
        # A * sum(Y) - Y: A - Y up to rounding for these rows, which sum to 1 only so.
        expected = A64 * Y.astype(np.float64).sum(axis=1, keepdims=True) - Y
    elif (output, loss) in MATCHING_PAIRS:
        expected = G
    elif output == "identity":
        expected = G
    elif output == "sigmoid":
        expected = G * A64 * (1 - A64)
    elif output == "tanh":
        expected = G * (1 - A64 ** 2)
    elif output == "relu":
        expected = G * (A64 > 0)
    elif output == "leaky_relu":
        expected = G * np.where(A64 > 0, 1, LEAKY_SLOPE)
    else:  # softmax + mse: the vector-Jacobian product G J_softmax
        expected = np.stack([np.diag(a) @ g - a * (a @ g) for a, g in zip(A64, G)])
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12,
                                                                    "atol": 1e-14}
    np.testing.assert_allclose(out, expected, **tol)
    np.testing.assert_array_equal(A, A_copy)
    if (output, loss) in MATCHING_PAIRS:
        if output == "softmax":  # exactly a - y for one-hot rows
            Y = np.eye(A.shape[1], dtype=dtype)[rng.integers(0, A.shape[1], A.shape[0])]
            output_error(output, loss, A, Y, out, get_backend(backend))
        np.testing.assert_array_equal(out, A - Y)  # exactly a - y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_error_for_rows_not_summing_to_one(dtype, backend):
    """Multi-hot and all-zero target rows: dC/dz = A * sum(Y) - Y, not A - Y."""
    rng = np.random.default_rng(3)
    A = act("softmax", rng.normal(size=(4, 5))).astype(dtype)
    Y = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0.5, 0, 0, 0, 0], [1, 0, 1, 0, 1]],
                 dtype=dtype)
    out = output_error("softmax", "cross_entropy", A, Y, np.empty_like(A),
                       get_backend(backend))
    expected = A.astype(np.float64) * Y.sum(axis=1, keepdims=True) - Y
    tol = {"rtol": 1e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-13}
    np.testing.assert_allclose(out, expected, **tol)


@pytest.mark.parametrize("output,loss", VALID_PAIRS)
def test_weighted_loss_and_output_error(output, loss):
    """Weights scale each row's loss and error; integer weights repeat rows."""
    rng = np.random.default_rng(4)
    _, A, Y = sample(output, loss, rng)
    w = np.array([0, 1, 2, 3, 1, 0.5])
    backend = get_backend("numpy")
    rows = [loss_sum(output, loss, A[i:i + 1], Y[i:i + 1], np.empty((1, A.shape[1])))
            for i in range(len(A))]
    np.testing.assert_allclose(loss_sum(output, loss, A, Y, np.empty_like(A), w),
                               np.dot(w, rows), rtol=1e-13)
    plain = output_error(output, loss, A, Y, np.empty_like(A), backend)
    weighted = output_error(output, loss, A, Y, np.empty_like(A), backend, w)
    np.testing.assert_allclose(weighted, plain * w[:, None], rtol=1e-15, atol=0)


@pytest.mark.parametrize("output,loss", VALID_PAIRS)
def test_output_error_is_the_derivative_of_the_cost(output, loss):
    """BP1 against finite differences of loss_sum(act(Z)) with respect to Z."""
    rng = np.random.default_rng(2)
    Z, A, Y = sample(output, loss, rng, n=3, k=4)
    if output in ("relu", "leaky_relu"):
        Z = np.where(np.abs(Z) < 0.1, 0.5, Z)  # away from the kink
        A = act(output, Z)
    delta = output_error(output, loss, A, Y, np.empty_like(A), get_backend("numpy"))
    h = 1e-6
    numeric = np.zeros_like(Z)
    for i, j in itertools.product(range(Z.shape[0]), range(Z.shape[1])):
        plus, minus = Z.copy(), Z.copy()
        plus[i, j] += h
        minus[i, j] -= h
        numeric[i, j] = (cost(output, loss, act(output, plus), Y)
                         - cost(output, loss, act(output, minus), Y)) / (2 * h)
    np.testing.assert_allclose(delta, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("output,loss", VALID_PAIRS)
def test_check_loss_accepts_valid_pairs(output, loss):
    assert check_loss(output, loss) is None


@pytest.mark.parametrize("loss", ["hinge", "MSE", "", None, 1, ("mse",)])
def test_check_loss_rejects_unknown_losses(loss):
    with pytest.raises(ValueError) as info:
        check_loss("sigmoid", loss)
    assert "mse" in str(info.value) and "cross_entropy" in str(info.value)


@pytest.mark.parametrize("output", ["identity", "tanh", "relu", "leaky_relu"])
def test_check_loss_rejects_cross_entropy_without_probabilities(output):
    with pytest.raises(ValueError, match="softmax") as info:
        check_loss(output, "cross_entropy")
    assert repr(output) in str(info.value)
