"""Tests for fastbp.Network: gradients, backends, training, persistence and checks.

Everything the tests compare against (forward pass, cost, backpropagation) is written
here again in plain float64 NumPy, independently of fastbp, so that the library is
checked against the mathematics rather than against itself.
"""

import copy
import itertools
import os

import numpy as np
import pytest

import fastbp
import fastbp.network
import fastbp.training
import fastbp.optimizers
from fastbp import Network, gradient_check
from fastbp.datasets import load_digits, load_fashion_mnist, one_hot

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
BACKENDS = ("cython", "numpy")
DTYPES = ("float32", "float64")
LEAKY_SLOPE = 0.01

# (output activation, loss, output width): the three matching pairs (binary and
# multi-label sigmoid cross-entropy both), the classic sigmoid + mse, and pairs whose
# output error carries the activation's derivative.
OUTPUT_LOSS_PAIRS = [
    ("sigmoid", "mse", 3),
    ("softmax", "cross_entropy", 3),
    ("sigmoid", "cross_entropy", 1),
    ("sigmoid", "cross_entropy", 3),
    ("identity", "mse", 3),
    ("tanh", "mse", 3),
    ("softmax", "mse", 3),
    ("leaky_relu", "mse", 3),
    ("relu", "mse", 3),
]


# ----- direct formulas (float64, independent of fastbp) ------------------------------


def act_direct(name, Z):
    if name == "identity":
        return Z.copy()
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.where(Z > 0, Z, 0.0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, LEAKY_SLOPE * Z)
    if name == "softmax":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def forward_direct(net, X):
    """Pre-activations Z_l and activations A_l (A_0 = X) of every layer, in float64."""
    A = np.asarray(X, np.float64)
    Zs, As = [], [A]
    for W, b, act in zip(net.weights, net.biases, net.layer_activations):
        Z = A @ W.astype(np.float64).T
        if b is not None:
            Z = Z + b.astype(np.float64)
        A = act_direct(act, Z)
        Zs.append(Z)
        As.append(A)
    return Zs, As


def cost_direct(output, loss, A, Y):
    """Mean per-sample cost, one sample at a time."""
    total = 0.0
    for a, y in zip(A, Y):
        if loss == "mse":
            total += 0.5 * np.sum((a - y) ** 2)
        elif output == "softmax":
            total += -np.sum(y * np.log(a))
        else:
            total += -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a))
    return total / len(A)


def flat_params(net):
    parts = [W.ravel() for W in net.weights]
    parts += [b for b in net.biases if b is not None]
    return np.concatenate(parts).astype(np.float64)


def l2_term(net):
    return net.l2 / 2 * sum(float(np.sum(W.astype(np.float64) ** 2)) for W in net.weights)


def targets_for(output, loss, k, n, rng):
    """Plausible targets for an output activation: one-hot, 0/1 indicators or reals."""
    if output == "softmax" and loss == "cross_entropy":
        return one_hot(rng.integers(0, k, n), k, np.float64)
    if output == "sigmoid" and loss == "cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(np.float64)
    if output in ("sigmoid", "softmax"):
        return rng.random((n, k))
    if output == "tanh":
        return rng.uniform(-0.9, 0.9, (n, k))
    return rng.normal(size=(n, k))


def conditioned_net(sizes, activation, output, loss, l2=0.0, bias=True, backend="cython",
                    n=8, dtype="float64"):
    """A network with random non-zero parameters and data X whose pre-activations are all
    at least 1e-3 away from 0, so finite differences never straddle a relu kink.

    He/Xavier initialisation starts biases at exactly 0: a sample whose relu outputs are
    all 0 would then have a pre-activation of exactly 0 in the next layer.
    """
    for seed in range(100):
        rng = np.random.default_rng(seed)
        net = Network(sizes, activation=activation, output=output, loss=loss, l2=l2,
                      bias=bias, dtype=dtype, seed=seed, backend=backend)
        for W in net.weights:
            W[...] = rng.normal(0, 1 / np.sqrt(W.shape[1]), W.shape)
        for b in net.biases:
            if b is not None:
                b[...] = rng.normal(0, 0.5, b.shape)
        X = rng.uniform(-1, 1, (n, sizes[0]))
        Zs, _ = forward_direct(net, X)
        if min(np.abs(Z).min() for Z in Zs) > 1e-3:
            return net, X, rng
    raise AssertionError("no seed gives pre-activations away from 0")


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def digits64():
    return load_digits(dtype=np.float64)


# ----- 1. gradient check ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("l2", [0.0, 0.1], ids=["l2=0", "l2=0.1"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output,loss,k", OUTPUT_LOSS_PAIRS,
                         ids=[f"{o}-{l}-k{k}" for o, l, k in OUTPUT_LOSS_PAIRS])
def test_gradient_check(output, loss, k, activation, l2, bias, backend):
    net, X, rng = conditioned_net([5, 7, 6, k], activation, output, loss, l2, bias, backend)
    Y = targets_for(output, loss, k, X.shape[0], rng)
    # The forward pass and the cost are the direct formulas...
    _, As = forward_direct(net, X)
    np.testing.assert_allclose(net.forward(X), As[-1], rtol=1e-12, atol=1e-14)
    expected_J = cost_direct(output, loss, As[-1], Y) + l2 / 2 * sum(
        np.sum(W ** 2) for W in net.weights)
    assert net.loss(X, Y) == pytest.approx(expected_J, rel=1e-12)
    # ... and the gradients are those of the cost. eps=1e-5 rather than the default 1e-6:
    # with saturated softmax hidden layers the round-off of the default step reaches
    # ~6e-7, too close to the bound; 1e-5 keeps both error sources below 1e-7.
    before = flat_params(net)
    error = gradient_check(net, X, Y, eps=1e-5)
    assert error < 1e-6
    np.testing.assert_array_equal(flat_params(net), before)  # the check works on a copy


def test_gradient_check_default_step():
    net, X, rng = conditioned_net([5, 7, 6, 3], "tanh", "softmax", "cross_entropy", 0.01)
    Y = targets_for("softmax", "cross_entropy", 3, 8, rng)
    assert gradient_check(net, X, Y) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_check_with_soft_targets_and_integer_labels(backend):
    net, X, rng = conditioned_net([5, 7, 6, 4], "sigmoid", "softmax", "cross_entropy",
                                  backend=backend)
    soft = rng.random((8, 4))
    soft /= soft.sum(axis=1, keepdims=True)
    assert gradient_check(net, X, soft, eps=1e-5) < 1e-6
    labels = rng.integers(0, 4, 8)
    assert gradient_check(net, X, labels, eps=1e-5) < 1e-6


def test_gradient_check_of_float32_network_runs_in_float64():
    net64, X, rng = conditioned_net([5, 7, 6, 3], "relu", "sigmoid", "mse", 0.1)
    Y = rng.random((8, 3))
    net32 = Network([5, 7, 6, 3], activation="relu", output="sigmoid", loss="mse", l2=0.1,
                    dtype="float32", seed=0)
    for W32, W64 in zip(net32.weights, net64.weights):
        W32[...] = W64
    for b32, b64 in zip(net32.biases, net64.biases):
        b32[...] = b64
    assert gradient_check(net32, X, Y, eps=1e-5) < 1e-6
    # A random subset of the parameters.
    assert gradient_check(net32, X, Y, eps=1e-5, max_params=20, seed=3) < 1e-6


def test_gradient_check_detects_a_wrong_output_error(monkeypatch):
    """The check can fail: drop act' from BP1 of sigmoid + mse and it must notice."""
    net, X, rng = conditioned_net([5, 7, 6, 3], "tanh", "sigmoid", "mse")
    Y = rng.random((8, 3))

    def wrong_output_error(output, loss, A, Y, out, backend, weights=None):
        return np.subtract(A, Y, out=out)

    monkeypatch.setattr(fastbp.network, "output_error", wrong_output_error)
    assert gradient_check(net, X, Y, eps=1e-5) > 1e-2


def test_loss_is_the_direct_formula_sigmoid_mse():
    """One hidden layer, sigmoid, quadratic cost, l2: J written out by hand."""
    rng = np.random.default_rng(11)
    net = Network([4, 5, 3], activation="sigmoid", output="sigmoid", loss="mse", l2=0.03,
                  init="uniform", dtype="float64", seed=11)
    X = rng.random((6, 4))
    Y = rng.random((6, 3))
    (W1, W2), (b1, b2) = net.weights, net.biases
    J = 0.0
    for x, y in zip(X, Y):
        a1 = 1 / (1 + np.exp(-(W1 @ x + b1)))
        a2 = 1 / (1 + np.exp(-(W2 @ a1 + b2)))
        J += 0.5 * np.sum((a2 - y) ** 2)
    J = J / 6 + 0.03 / 2 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    assert net.loss(X, Y) == pytest.approx(J, rel=1e-13)
    assert net.evaluate(X, Y)["loss"] == pytest.approx(J, rel=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_match_handwritten_bp1_to_bp4(backend):
    rng = np.random.default_rng(5)
    l2, n = 0.05, 5
    net = Network([3, 4, 2], activation="sigmoid", output="sigmoid", loss="mse", l2=l2,
                  dtype="float64", seed=5, backend=backend)
    for b in net.biases:
        b[...] = rng.normal(0, 0.5, b.shape)
    X = rng.normal(size=(n, 3))
    Y = rng.random((n, 2))
    (W1, W2), (b1, b2) = net.weights, net.biases
    dW1, dW2 = np.zeros_like(W1), np.zeros_like(W2)
    db1, db2 = np.zeros_like(b1), np.zeros_like(b2)
    for x, y in zip(X, Y):
        a1 = 1 / (1 + np.exp(-(W1 @ x + b1)))
        a2 = 1 / (1 + np.exp(-(W2 @ a1 + b2)))
        delta2 = (a2 - y) * a2 * (1 - a2)          # BP1
        delta1 = (W2.T @ delta2) * a1 * (1 - a1)   # BP2
        db2 += delta2                              # BP3
        db1 += delta1
        dW2 += np.outer(delta2, a1)                # BP4
        dW1 += np.outer(delta1, x)
    dW, db = net.gradients(X, Y)
    np.testing.assert_allclose(dW[1], dW2 / n + l2 * W2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dW[0], dW1 / n + l2 * W1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(db[1], db2 / n, rtol=1e-12, atol=1e-15)  # no l2 on biases
    np.testing.assert_allclose(db[0], db1 / n, rtol=1e-12, atol=1e-15)
    assert [g.shape for g in dW] == [W.shape for W in net.weights]


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_match_handwritten_relu_softmax_cross_entropy(backend):
    """Two relu hidden layers, softmax + cross-entropy (delta_L = a - y), no bias."""
    net, X, rng = conditioned_net([4, 6, 5, 3], "relu", "softmax", "cross_entropy",
                                  bias=False, backend=backend, n=7)
    Y = one_hot(rng.integers(0, 3, 7), 3, np.float64)
    W1, W2, W3 = net.weights
    A1 = np.maximum(X @ W1.T, 0)
    A2 = np.maximum(A1 @ W2.T, 0)
    Z3 = A2 @ W3.T
    A3 = np.exp(Z3) / np.exp(Z3).sum(axis=1, keepdims=True)
    d3 = A3 - Y
    d2 = (d3 @ W3) * (A2 > 0)
    d1 = (d2 @ W2) * (A1 > 0)
    dW, db = net.gradients(X, Y)
    assert db == [None, None, None]
    for got, delta, A in zip(dW, (d1, d2, d3), (X, A1, A2)):
        np.testing.assert_allclose(got, delta.T @ A / 7, rtol=1e-11, atol=1e-14)


# ----- 2. both backends agree ----------------------------------------------------------


def _agree(a, b, dtype):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if dtype == "float32":
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(b).max()))
    else:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13 * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output,loss", [("softmax", "cross_entropy"), ("sigmoid", "mse"),
                                         ("tanh", "mse")])
def test_backends_agree_on_forward_loss_gradients(output, loss, activation, dtype):
    rng = np.random.default_rng(2)
    X = rng.random((50, 20)).astype(dtype)
    Y = targets_for(output, loss, 5, 50, rng)
    nets = [Network([20, 32, 16, 5], activation=activation, output=output, loss=loss,
                    l2=0.01, dtype=dtype, seed=4, backend=backend) for backend in BACKENDS]
    cy, nu = nets
    np.testing.assert_array_equal(flat_params(cy), flat_params(nu))  # same initialisation
    _agree(cy.forward(X), nu.forward(X), dtype)
    assert cy.forward(X).dtype == np.dtype(dtype)
    assert cy.loss(X, Y) == pytest.approx(nu.loss(X, Y), rel=1e-5 if dtype == "float32"
                                          else 1e-11)
    (dWc, dbc), (dWn, dbn) = cy.gradients(X, Y), nu.gradients(X, Y)
    for gc, gn in zip(dWc + dbc, dWn + dbn):
        assert gc.dtype == np.dtype(dtype)
        _agree(gc, gn, dtype)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_backends_agree_after_fit(digits64, optimizer):
    (X, y), _ = digits64
    X, y = X[:300], y[:300]
    nets = [Network([64, 24, 10], activation="tanh", output="softmax", loss="cross_entropy",
                    l2=1e-4, dtype="float64", seed=8, backend=b) for b in BACKENDS]
    for net in nets:
        net.fit(X, y, epochs=3, batch_size=16, learning_rate=0.01, optimizer=optimizer,
                momentum=0.0)
    cy, nu = nets
    assert not np.array_equal(flat_params(cy), flat_params(Network(
        [64, 24, 10], activation="tanh", output="softmax", loss="cross_entropy",
        dtype="float64", seed=8)))  # it trained
    np.testing.assert_allclose(flat_params(cy), flat_params(nu), rtol=1e-9, atol=1e-11)


# ----- 3. training on the bundled digits -----------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_digits_relu_softmax_adam_reaches_95_percent(digits, backend):
    (X, y), (X_test, y_test) = digits
    net = Network([64, 64, 10], activation="relu", output="softmax", loss="cross_entropy",
                  seed=0, backend=backend)
    history = net.fit(X, y, epochs=30, batch_size=32, learning_rate=0.01, optimizer="adam")
    assert history["accuracy"][-1] > 0.97
    result = net.evaluate(X_test, y_test)
    assert result["accuracy"] >= 0.95
    assert np.mean(net.predict(X_test) == y_test) == pytest.approx(result["accuracy"])


def test_digits_classic_sigmoid_mse_sgd(digits):
    (X, y), (X_test, y_test) = digits
    net = Network([64, 30, 10], activation="sigmoid", output="sigmoid", loss="mse", seed=0)
    history = net.fit(X, y, epochs=10, batch_size=10, learning_rate=3.0,
                      validation_data=(X_test, y_test))
    assert history["loss"][-1] < history["loss"][0]
    assert net.evaluate(X_test, y_test)["accuracy"] >= 0.9


def test_digits_momentum_and_nesterov_train(digits):
    (X, y), (X_test, y_test) = digits
    for nesterov in (False, True):
        net = Network([64, 32, 10], activation="tanh", output="softmax",
                      loss="cross_entropy", seed=1)
        net.fit(X, y, epochs=10, batch_size=32, learning_rate=0.05, momentum=0.9,
                nesterov=nesterov)
        assert net.evaluate(X_test, y_test)["accuracy"] >= 0.93


# ----- 4. Fashion-MNIST, the classic setting -------------------------------------------


@pytest.fixture(scope="module")
def fashion_mnist():
    try:
        return load_fashion_mnist()
    except FileNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist "
                    f"or set FASTBP_DATA): {exc}")


@pytest.mark.slow
@pytest.mark.fashion_mnist
def test_fashion_mnist_classic_sigmoid_mse(fashion_mnist):
    (X, y), (X_test, y_test) = fashion_mnist
    assert X.shape == (60000, 784) and X_test.shape == (10000, 784)
    net = Network([784, 30, 10], activation="sigmoid", output="sigmoid", loss="mse", seed=0)
    # Up to 5 epochs, stopping once it gets there: with plain SGD (no optimiser state)
    # five fit calls of one epoch are the same training as one call of five.
    val_accuracy = []
    for _ in range(5):
        history = net.fit(X, y, epochs=1, batch_size=10, learning_rate=3.0,
                          validation_data=(X_test, y_test))
        assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
        val_accuracy += history["val_accuracy"]
        if max(val_accuracy) >= 0.82:
            break
    assert max(val_accuracy) >= 0.82, val_accuracy


# ----- 5. save and load ----------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trip_is_exact(tmp_path, dtype, bias):
    rng = np.random.default_rng(0)
    net = Network([6, 5, 4, 3], activation="leaky_relu", output="softmax",
                  loss="cross_entropy", l2=0.0123, bias=bias, dtype=dtype, seed=3)
    X = rng.random((20, 6)).astype(dtype)
    net.fit(X, rng.integers(0, 3, 20), epochs=2, batch_size=4)
    path = tmp_path / "model.npz"
    assert net.save(path) == os.fspath(path)
    for backend in BACKENDS:
        loaded = Network.load(path, backend=backend)
        assert loaded.sizes == [6, 5, 4, 3]
        assert loaded.activation == "leaky_relu"
        assert loaded.output == "softmax"
        assert loaded.loss_name == "cross_entropy"
        assert loaded.l2 == 0.0123
        assert loaded.dtype == np.dtype(dtype)
        assert loaded.bias is bias
        assert loaded.backend == backend
        for W_new, W in zip(loaded.weights, net.weights):
            assert W_new.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(W_new, W)
        if bias:
            for b_new, b in zip(loaded.biases, net.biases):
                assert b_new.dtype == np.dtype(dtype)
                np.testing.assert_array_equal(b_new, b)
        else:
            assert loaded.biases == [None, None, None]
        if backend == net.backend:
            np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
            np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


@pytest.mark.parametrize("output,loss,k", [("sigmoid", "mse", 10), ("identity", "mse", 2),
                                           ("sigmoid", "cross_entropy", 1)])
def test_save_load_other_networks(tmp_path, output, loss, k):
    net = Network([3, 4, k], activation="tanh", output=output, loss=loss, dtype="float64",
                  init="uniform", seed=1)
    path = net.save(str(tmp_path / "m.npz"))
    loaded = Network.load(path)
    assert (loaded.output, loaded.loss_name, loaded.task) == (output, loss, net.task)
    X = np.random.default_rng(0).random((5, 3))
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


def test_save_overwrites_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "model.npz"
    first = Network([4, 3, 2], seed=1)
    first.save(path)
    second = Network([4, 3, 2], seed=2)
    second.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    np.testing.assert_array_equal(Network.load(path).weights[0], second.weights[0])


def test_failed_save_removes_its_temporary_file(tmp_path):
    target = tmp_path / "model.npz"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        Network([4, 3, 2], seed=1).save(target)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert os.listdir(target) == []


def _saved_arrays(tmp_path, **kwargs):
    net = Network([4, 3, 2], dtype="float64", seed=0, **kwargs)
    path = net.save(tmp_path / "good.npz")
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def _write(tmp_path, arrays, name="bad.npz"):
    path = tmp_path / name
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _drop(key):
    return lambda a: {k: v for k, v in a.items() if k != key}


def _set(key, value):
    return lambda a: {**a, key: value(a) if callable(value) else value}


MALFORMED = {
    "format_version 2": _set("format_version", np.array(2)),
    "format_version 0": _set("format_version", np.array(0)),
    "format_version as text": _set("format_version", np.array("1")),
    "W0 transposed": _set("W0", lambda a: a["W0"].T.copy()),
    "W1 too wide": _set("W1", lambda a: np.zeros((2, 4))),
    "b0 wrong length": _set("b0", lambda a: np.zeros(4)),
    "W0 float32 in a float64 model": _set("W0", lambda a: a["W0"].astype(np.float32)),
    "b1 int": _set("b1", lambda a: a["b1"].astype(np.int64)),
    "sizes do not match weights": _set("sizes", np.array([4, 5, 2])),
    "sizes of floats": _set("sizes", np.array([4.0, 3.0, 2.0])),
    "sizes with a zero": _set("sizes", np.array([4, 0, 2])),
    "one size": _set("sizes", np.array([4])),
    "unknown activation": _set("activation", np.array("swish")),
    "cross_entropy with identity": lambda a: {**a, "output": np.array("identity"),
                                              "loss": np.array("cross_entropy")},
    "dtype float16": _set("dtype", np.array("float16")),
    "negative l2": _set("l2", np.array(-1.0)),
    "bias flag as int": _set("bias", np.array(1)),
    "missing W1": _drop("W1"),
    "missing b0": _drop("b0"),
    "missing sizes": _drop("sizes"),
    "missing format_version": _drop("format_version"),
    "missing loss": _drop("loss"),
    "extra W2": _set("W2", np.zeros((2, 2))),
    "extra junk": _set("junk", np.array(1.0)),
    "NaN weight": _set("W0", lambda a: np.where(np.arange(a["W0"].size).reshape(
        a["W0"].shape) == 3, np.nan, a["W0"])),
    "inf bias": _set("b1", lambda a: np.array([0.0, np.inf])),
    "object array (pickle)": _set("activation", np.array("sigmoid", dtype=object)),
    "object weights (pickle)": _set("W0", lambda a: a["W0"].astype(object)),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_load_rejects_malformed_archives(tmp_path, change):
    arrays = _saved_arrays(tmp_path)
    Network.load(_write(tmp_path, arrays, "unchanged.npz"))  # the unchanged copy loads
    with pytest.raises(ValueError):
        Network.load(_write(tmp_path, change(arrays)))


def test_load_rejects_bias_arrays_in_a_model_without_bias(tmp_path):
    arrays = _saved_arrays(tmp_path, bias=False)
    assert not any(key.startswith("b") and key != "bias" for key in arrays)
    with pytest.raises(ValueError):
        Network.load(_write(tmp_path, {**arrays, "b0": np.zeros(3)}))


def test_load_rejects_a_non_npz_file(tmp_path):
    text = tmp_path / "model.npz"
    text.write_text("this is not a model\n")
    with pytest.raises(ValueError):
        Network.load(text)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError):
        Network.load(empty)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError):
        Network.load(single)


def test_load_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        Network.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_load_rejects_a_damaged_file(tmp_path, damage):
    path = Network([4, 3, 2], seed=0).save(tmp_path / "model.npz")
    data = bytearray(open(path, "rb").read())
    if damage == "truncated":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))
    with pytest.raises(ValueError):
        Network.load(path)


# ----- 6. reproducibility ----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_gives_bit_identical_training(digits, backend):
    (X, y), _ = digits
    X, y = X[:400], y[:400]

    def train(seed):
        net = Network([64, 32, 10], activation="relu", output="softmax",
                      loss="cross_entropy", seed=seed, backend=backend)
        history = net.fit(X, y, epochs=3, batch_size=16, learning_rate=0.01,
                          optimizer="adam", shuffle=True)
        return net, history

    (a, ha), (b, hb), (c, _) = train(7), train(7), train(8)
    for Wa, Wb in zip(a.weights + a.biases, b.weights + b.biases):
        assert np.array_equal(Wa, Wb)
    assert ha["loss"] == hb["loss"] and ha["accuracy"] == hb["accuracy"]
    assert not np.array_equal(flat_params(a), flat_params(c))


def test_same_seed_same_init_but_shuffle_matters(digits):
    """Same initial weights, different shuffles: the seed drives the shuffling too."""
    (X, y), _ = digits
    X, y = X[:200], y[:200]
    a = Network([64, 16, 10], seed=1)
    b = Network([64, 16, 10], seed=1)
    np.testing.assert_array_equal(flat_params(a), flat_params(b))
    a.fit(X, y, epochs=1, batch_size=10, shuffle=True)
    b.fit(X, y, epochs=1, batch_size=10, shuffle=False)
    assert not np.array_equal(flat_params(a), flat_params(b))


def test_generator_seed_is_reproducible():
    a = Network([10, 8, 3], seed=np.random.default_rng(42))
    b = Network([10, 8, 3], seed=np.random.default_rng(42))
    np.testing.assert_array_equal(flat_params(a), flat_params(b))
    c = Network([10, 8, 3], seed=None)
    d = Network([10, 8, 3], seed=None)
    assert not np.array_equal(flat_params(c), flat_params(d))


# ----- 7. batch modes ------------------------------------------------------------------


def _batch_net(seed=3, **kwargs):
    kwargs = {"activation": "tanh", "output": "sigmoid", "loss": "mse", "l2": 0.01,
              "dtype": "float64", "seed": seed, **kwargs}
    return Network([5, 6, 3], **kwargs)


def _batch_data():
    rng = np.random.default_rng(9)
    return rng.random((10, 5)), rng.random((10, 3))


def _manual_sgd(net, X, Y, slices, lr):
    """Plain SGD by hand with net.gradients; returns the summed batch losses (no l2)."""
    total = 0.0
    for sl in slices:
        Xb, Yb = X[sl], Y[sl]
        total += (net.loss(Xb, Yb) - l2_term(net)) * len(Xb)
        dW, db = net.gradients(Xb, Yb)
        for W, g in zip(net.weights, dW):
            W -= lr * g
        for b, g in zip(net.biases, db):
            if b is not None:
                b -= lr * g
    return total


@pytest.fixture
def optimizers_made(monkeypatch):
    """The optimiser objects fit creates (Adam counts its steps in ``t`` on both backends:
    the compiled engine hands its step count back)."""
    made = []
    original = fastbp.training.make_optimizer

    def recording(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(fastbp.training, "make_optimizer", recording)
    return made


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_size,steps", [(4, 3), (1, 10), (3, 4), (5, 2), (10, 1),
                                              (None, 1), (25, 1)])
def test_number_of_steps(backend, batch_size, steps, optimizers_made):
    X, Y = _batch_data()
    _batch_net(backend=backend).fit(X, Y, epochs=2, batch_size=batch_size, optimizer="adam",
                                    learning_rate=0.01)
    (opt,) = optimizers_made
    assert opt.t == 2 * steps


BATCHINGS = [
    (4, [slice(0, 4), slice(4, 8), slice(8, 10)]),
    (1, [slice(i, i + 1) for i in range(10)]),
    (3, [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]),
    (5, [slice(0, 5), slice(5, 10)]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("batch_size,slices", BATCHINGS, ids=[str(b) for b, _ in BATCHINGS])
def test_minibatches_equal_manual_gradient_steps(batch_size, slices, bias, backend):
    X, Y = _batch_data()
    net, manual = _batch_net(bias=bias, backend=backend), _batch_net(bias=bias)
    history = net.fit(X, Y, epochs=1, batch_size=batch_size, learning_rate=0.7,
                      shuffle=False)
    total = _manual_sgd(manual, X, Y, slices, 0.7)
    np.testing.assert_allclose(flat_params(net), flat_params(manual), rtol=1e-12, atol=1e-14)
    assert history["loss"][0] == pytest.approx(total / 10 + l2_term(manual), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_last_partial_batch_is_used(backend):
    X, Y = _batch_data()
    net, dropped = _batch_net(backend=backend), _batch_net()
    net.fit(X, Y, epochs=1, batch_size=4, learning_rate=0.7, shuffle=False)
    _manual_sgd(dropped, X, Y, [slice(0, 4), slice(4, 8)], 0.7)
    assert not np.allclose(flat_params(net), flat_params(dropped), rtol=1e-6, atol=0)
    # The partial batch's gradient is a mean over its 2 samples, not over 4.
    _manual_sgd(dropped, X, Y, [slice(8, 10)], 0.7)
    np.testing.assert_allclose(flat_params(net), flat_params(dropped), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_size", [None, 10, 25])
def test_full_batch_is_one_gradient_descent_step(batch_size, backend):
    X, Y = _batch_data()
    net, ref = _batch_net(backend=backend), _batch_net(backend=backend)
    dW, db = ref.gradients(X, Y)
    J0 = ref.loss(X, Y)
    history = net.fit(X, Y, epochs=1, batch_size=batch_size, learning_rate=0.5,
                      shuffle=False)
    for W_new, W, g in zip(net.weights, ref.weights, dW):
        np.testing.assert_allclose(W_new, W - 0.5 * g, rtol=1e-13, atol=1e-15)
    for b_new, b, g in zip(net.biases, ref.biases, db):
        np.testing.assert_allclose(b_new, b - 0.5 * g, rtol=1e-13, atol=1e-15)
    # The epoch loss is the cost before the step (data term) plus the l2 term after it.
    assert history["loss"][0] == pytest.approx(J0 - l2_term(ref) + l2_term(net), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_larger_than_n_equals_full_batch(backend):
    X, Y = _batch_data()
    nets = [_batch_net(backend=backend) for _ in range(3)]
    for net, batch_size in zip(nets, (None, 10, 1000)):
        net.fit(X, Y, epochs=3, batch_size=batch_size, learning_rate=0.5, shuffle=False)
    np.testing.assert_array_equal(flat_params(nets[0]), flat_params(nets[1]))
    np.testing.assert_array_equal(flat_params(nets[0]), flat_params(nets[2]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_batch_with_shuffle_is_order_independent(backend):
    X, Y = _batch_data()
    a, b = _batch_net(backend=backend), _batch_net(backend=backend)
    a.fit(X, Y, epochs=2, batch_size=None, learning_rate=0.5, shuffle=True)
    b.fit(X, Y, epochs=2, batch_size=None, learning_rate=0.5, shuffle=False)
    np.testing.assert_allclose(flat_params(a), flat_params(b), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_minibatches_match_manual_steps(backend):
    rng = np.random.default_rng(1)
    X = rng.random((10, 5)).astype(np.float32)
    Y = rng.random((10, 3)).astype(np.float32)
    net = _batch_net(dtype="float32", backend=backend)
    manual = _batch_net(dtype="float32")
    net.fit(X, Y, epochs=1, batch_size=4, learning_rate=0.7, shuffle=False)
    _manual_sgd(manual, X, Y, [slice(0, 4), slice(4, 8), slice(8, 10)], 0.7)
    np.testing.assert_allclose(flat_params(net), flat_params(manual), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer,momentum", [("sgd", 0.0), ("sgd", 0.9), ("adam", 0.0)])
def test_training_in_chunks_equals_one_chunk(monkeypatch, digits64, backend, optimizer,
                                             momentum):
    """fit hands the batches of an epoch to its trainer in chunks (batches_per_chunk);
    chunk boundaries, also with a partial last batch and shuffling, change nothing."""
    (X, y), _ = digits64
    X, y = X[:103], y[:103]

    def train():
        net = Network([64, 12, 10], activation="relu", output="softmax",
                      loss="cross_entropy", l2=1e-3, dtype="float64", seed=4, backend=backend)
        history = net.fit(X, y, epochs=2, batch_size=8, learning_rate=0.05,
                          optimizer=optimizer, momentum=momentum, shuffle=True)
        return net, history

    one, h_one = train()
    # 3 batches per chunk (the real chunks hold far more than these 13 batches).
    calls = []
    monkeypatch.setattr(fastbp.training, "batches_per_chunk",
                        lambda *args, **kwargs: calls.append(args) or 3)
    chunked, h_chunked = train()
    assert calls  # fit did chunk through the patched function
    np.testing.assert_array_equal(flat_params(chunked), flat_params(one))
    # The epoch loss sums per-chunk subtotals: the same terms, grouped differently.
    np.testing.assert_allclose(h_chunked["loss"], h_one["loss"], rtol=1e-14)
    assert h_chunked["accuracy"] == h_one["accuracy"]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output,loss,k", OUTPUT_LOSS_PAIRS,
                         ids=[f"{o}-{l}-k{k}" for o, l, k in OUTPUT_LOSS_PAIRS])
def test_compiled_training_matches_python_loop(output, loss, k, activation, bias):
    """The compiled engine (backend "cython") and the Python loop (backend "numpy") train
    every activation and (output, loss) pair alike, with l2, momentum and shuffling."""
    rng = np.random.default_rng(7)
    X = rng.random((23, 5))
    Y = targets_for(output, loss, k, 23, rng)
    nets = [Network([5, 7, 6, k], activation=activation, output=output, loss=loss, l2=0.01,
                    bias=bias, dtype="float64", seed=7, backend=b) for b in BACKENDS]
    histories = [net.fit(X, Y, epochs=2, batch_size=5, learning_rate=0.1, momentum=0.5,
                         nesterov=True) for net in nets]
    np.testing.assert_allclose(flat_params(nets[0]), flat_params(nets[1]), rtol=1e-10,
                               atol=1e-13)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-10)
    if "accuracy" in histories[1]:
        assert histories[0]["accuracy"] == histories[1]["accuracy"]


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_fit_thread_counts_agree(digits64, n_threads):
    (X, y), _ = digits64
    X, y = X[:200], y[:200]

    def train(threads):
        net = Network([64, 40, 10], activation="tanh", output="softmax",
                      loss="cross_entropy", dtype="float64", seed=2)
        net.fit(X, y, epochs=2, batch_size=50, learning_rate=0.1, n_threads=threads)
        return flat_params(net)

    np.testing.assert_allclose(train(n_threads), train(1), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("n_threads,error", [(0, ValueError), (-2, ValueError),
                                             (1.5, TypeError), ("2", TypeError)])
def test_fit_rejects_bad_thread_counts(n_threads, error):
    X, Y = _batch_data()
    with pytest.raises(error, match="n_threads"):
        _batch_net().fit(X, Y, n_threads=n_threads)


# ----- 9. labels, predictions ----------------------------------------------------------


@pytest.mark.parametrize("output,loss", [("softmax", "cross_entropy"), ("sigmoid", "mse")])
def test_integer_labels_train_like_one_hot(digits, output, loss):
    (X, y), _ = digits
    X, y = X[:300], y[:300]
    a = Network([64, 16, 10], activation="relu", output=output, loss=loss, seed=2)
    b = Network([64, 16, 10], activation="relu", output=output, loss=loss, seed=2)
    ha = a.fit(X, y, epochs=2, batch_size=32, learning_rate=0.1)
    hb = b.fit(X, one_hot(y, 10), epochs=2, batch_size=32, learning_rate=0.1)
    np.testing.assert_array_equal(flat_params(a), flat_params(b))
    assert ha == {**hb, "seconds": ha["seconds"]}
    assert a.evaluate(X, y) == b.evaluate(X, one_hot(y, 10))


@pytest.mark.parametrize("labels", [[0, 1, 10, 2], [0, -1, 3, 2], [11, 12, 13, 14]])
def test_labels_out_of_range_are_rejected(labels):
    net = Network([3, 4, 10], output="softmax", loss="cross_entropy", seed=0)
    X = np.random.default_rng(0).random((4, 3)).astype(np.float32)
    before = flat_params(net)
    for method in (lambda y: net.fit(X, y), lambda y: net.evaluate(X, y),
                   lambda y: net.loss(X, y), lambda y: net.gradients(X, y)):
        with pytest.raises(ValueError, match="labels"):
            method(np.array(labels))
    np.testing.assert_array_equal(flat_params(net), before)


def test_binary_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    a = Network([2, 8, 1], activation="tanh", output="sigmoid", loss="cross_entropy", seed=1)
    b = Network([2, 8, 1], activation="tanh", output="sigmoid", loss="cross_entropy", seed=1)
    assert a.task == "binary"
    ha = a.fit(X, y, epochs=20, batch_size=20, learning_rate=0.5)
    b.fit(X, y.reshape(-1, 1).astype(np.float32), epochs=20, batch_size=20,
          learning_rate=0.5)
    np.testing.assert_array_equal(flat_params(a), flat_params(b))
    assert ha["accuracy"][-1] > 0.95
    proba = a.predict_proba(X)
    assert proba.shape == (200, 1) and ((proba > 0) & (proba < 1)).all()
    predicted = a.predict(X)
    assert predicted.shape == (200,)
    np.testing.assert_array_equal(predicted, (proba[:, 0] > 0.5).astype(int))
    result = a.evaluate(X, y)
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] == pytest.approx(np.mean(predicted == y))
    with pytest.raises(ValueError, match="labels"):
        a.fit(X, np.where(y == 1, 2, 0))
    with pytest.raises(ValueError, match="labels"):
        a.fit(X, y - 1)


def test_multiclass_predictions(digits):
    (X, y), (X_test, y_test) = digits
    net = Network([64, 32, 10], activation="relu", output="softmax", loss="cross_entropy",
                  seed=0)
    net.fit(X, y, epochs=3, batch_size=32, learning_rate=0.01, optimizer="adam")
    proba = net.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert (proba >= 0).all()
    predicted = net.predict(X_test)
    assert predicted.shape == (len(X_test),)
    assert predicted.dtype.kind in "iu"
    np.testing.assert_array_equal(predicted, proba.argmax(axis=1))
    result = net.evaluate(X_test, y_test)
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] == pytest.approx(np.mean(predicted == y_test))
    expected = -np.mean(np.log(proba[np.arange(len(y_test)), y_test].astype(np.float64)))
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
    assert net.loss(X_test, y_test) == pytest.approx(result["loss"], rel=1e-12)


def test_regression_predictions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    Y = X @ rng.normal(size=(4, 2))
    net = Network([4, 8, 2], activation="tanh", output="identity", loss="mse",
                  dtype="float64", seed=0)
    assert net.task == "regression"
    history = net.fit(X, Y, epochs=50, batch_size=10, learning_rate=0.05,
                      validation_data=(X, Y))
    assert set(history) == {"loss", "val_loss", "seconds"}
    assert history["loss"][-1] < history["loss"][0]
    np.testing.assert_array_equal(net.predict(X), net.forward(X))
    assert net.predict(X).shape == (30, 2)
    assert set(net.evaluate(X, Y)) == {"loss"}
    with pytest.raises(ValueError, match="predict_proba"):
        net.predict_proba(X)
    # One output: 1-D float targets are accepted as a column.
    one = Network([4, 3, 1], output="identity", loss="mse", dtype="float64", seed=0)
    assert one.loss(X, Y[:, 0]) == one.loss(X, Y[:, :1])
    with pytest.raises(ValueError):
        Network([4, 3, 1], output="tanh", loss="mse", seed=0).predict_proba(X)


def test_multilabel_predictions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0], axis=1).astype(np.int64)
    net = Network([3, 16, 3], activation="tanh", output="sigmoid", loss="cross_entropy",
                  seed=0)
    assert net.task == "multilabel"
    history = net.fit(X, Y, epochs=30, batch_size=16, learning_rate=0.5)
    predicted = net.predict(X)
    assert predicted.shape == (300, 3)
    assert set(np.unique(predicted)) <= {0, 1}
    np.testing.assert_array_equal(predicted, (net.predict_proba(X) > 0.5).astype(int))
    subset_accuracy = np.mean((predicted == Y).all(axis=1))
    assert net.evaluate(X, Y)["accuracy"] == pytest.approx(subset_accuracy)
    assert subset_accuracy > 0.9
    assert history["accuracy"][-1] > 0.85


# ----- 10. history ---------------------------------------------------------------------


def test_history_keys_lengths_and_decreasing_loss(digits):
    (X, y), (X_test, y_test) = digits
    net = Network([64, 32, 10], activation="relu", output="softmax", loss="cross_entropy",
                  l2=1e-3, seed=0)
    history = net.fit(X, y, epochs=5, batch_size=32, learning_rate=0.001, optimizer="adam",
                      validation_data=(X_test, y_test))
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert all(len(values) == 5 for values in history.values())
    assert all(b < a for a, b in zip(history["loss"], history["loss"][1:]))
    assert all(b < a for a, b in zip(history["val_loss"], history["val_loss"][1:]))
    assert history["accuracy"][-1] > history["accuracy"][0]
    assert all(0 <= v <= 1 for v in history["accuracy"] + history["val_accuracy"])
    assert all(s > 0 for s in history["seconds"])
    # The validation entries are the evaluation at the end of each epoch.
    result = net.evaluate(X_test, y_test)  # both include the l2 term
    assert history["val_loss"][-1] == pytest.approx(result["loss"], rel=1e-12)
    assert history["val_accuracy"][-1] == result["accuracy"]
    no_validation = net.fit(X, y, epochs=2)
    assert set(no_validation) == {"loss", "accuracy", "seconds"}
    assert all(len(values) == 2 for values in no_validation.values())


TASKS = {  # (output, loss, k, targets) -> task
    "multiclass softmax": ("softmax", "cross_entropy", 4, "labels"),
    "multiclass sigmoid mse": ("sigmoid", "mse", 4, "labels"),
    "binary": ("sigmoid", "cross_entropy", 1, "labels"),
    "binary column": ("sigmoid", "cross_entropy", 1, "column"),
    "multilabel": ("sigmoid", "cross_entropy", 3, "indicators"),
    "regression": ("identity", "mse", 2, "reals"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TASKS.keys())
def test_history_is_the_cost_and_accuracy_during_the_epoch(case, dtype, backend):
    """Full batch without shuffling: the epoch's loss and accuracy are those of the
    parameters before the (single) step, as evaluate computes them."""
    output, loss, k, kind = TASKS[case]
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5)).astype(dtype)
    if kind == "labels":
        Y = rng.integers(0, max(k, 2), 40)
    elif kind == "column":
        Y = rng.integers(0, 2, (40, 1)).astype(dtype)
    elif kind == "indicators":
        Y = rng.integers(0, 2, (40, k))
    else:
        Y = rng.normal(size=(40, k))
    net = Network([5, 6, k], activation="tanh", output=output, loss=loss, init="uniform",
                  dtype=dtype, seed=3, backend=backend)
    before = net.evaluate(X, Y)
    history = net.fit(X, Y, epochs=1, batch_size=None, shuffle=False, learning_rate=0.5)
    rel = 1e-5 if dtype == "float32" else 1e-12
    assert history["loss"][0] == pytest.approx(before["loss"], rel=rel)
    assert ("accuracy" in history) == (case != "regression") == ("accuracy" in before)
    if "accuracy" in before:
        assert history["accuracy"][0] == before["accuracy"]
        assert 0 < before["accuracy"] < 1  # a real check, not a trivial 0 or 1
    assert net.evaluate(X, Y)["loss"] < before["loss"]


def test_verbose_prints_one_summary_line_per_epoch(digits, capsys):
    (X, y), (X_test, y_test) = digits
    net = Network([64, 16, 10], activation="relu", output="softmax", loss="cross_entropy",
                  seed=0)
    net.fit(X[:200], y[:200], epochs=3, batch_size=32, verbose=True,
            validation_data=(X_test[:50], y_test[:50]))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 3
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {epoch}/3:")
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert key in line


def test_quiet_fit_prints_nothing(digits, capsys):
    (X, y), _ = digits
    Network([64, 16, 10], seed=0).fit(X[:100], y[:100], epochs=2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ----- 11. argument checks -------------------------------------------------------------


@pytest.mark.parametrize("sizes,error", [
    ([], ValueError), ([5], ValueError), ([5, 0, 3], ValueError), ([5, -2, 3], ValueError),
    ([0, 3], ValueError), ([5, 2.5, 3], TypeError), ([5, 3.0], TypeError),
    ([5, "3"], TypeError), ([5, True], TypeError), ("53", ValueError), (5, ValueError),
    (None, ValueError),
])
def test_bad_sizes(sizes, error):
    with pytest.raises(error, match="sizes"):
        Network(sizes)


@pytest.mark.parametrize("kwarg,value,valid", [
    ("activation", "swish", ACTIVATIONS),
    ("output", "linear", ACTIVATIONS),
    ("loss", "hinge", ("mse", "cross_entropy")),
    ("init", "glorot", ("auto", "uniform", "normal", "xavier", "he")),
    ("backend", "torch", BACKENDS),
    ("activation", "ReLU", ACTIVATIONS),
])
def test_unknown_names_list_the_valid_ones(kwarg, value, valid):
    with pytest.raises(ValueError) as info:
        Network([3, 4, 2], **{kwarg: value})
    message = str(info.value)
    assert repr(value) in message
    for name in valid:
        assert name in message


@pytest.mark.parametrize("output", ["identity", "tanh", "relu", "leaky_relu"])
def test_cross_entropy_needs_probabilities(output):
    with pytest.raises(ValueError, match="cross_entropy"):
        Network([3, 4, 2], output=output, loss="cross_entropy")


@pytest.mark.parametrize("kwargs,error", [
    ({"l2": -0.1}, ValueError), ({"l2": np.nan}, ValueError), ({"l2": np.inf}, ValueError),
    ({"l2": "0.1"}, ValueError), ({"init_scale": -1.0}, ValueError),
    ({"dtype": "float16"}, ValueError), ({"dtype": "int32"}, ValueError),
    ({"dtype": np.int64}, ValueError), ({"dtype": "complex128"}, ValueError),
    ({"dtype": "double precision"}, ValueError),
    ({"bias": "yes"}, TypeError), ({"bias": 1}, TypeError),
    ({"activation": None}, TypeError), ({"output": None}, ValueError),
    ({"loss": None}, ValueError), ({"init": None}, ValueError), ({"backend": None}, ValueError),
])
def test_bad_constructor_arguments(kwargs, error):
    with pytest.raises(error):
        Network([3, 4, 2], **kwargs)


def test_dtype_accepts_numpy_types():
    assert Network([3, 2], dtype=np.float64).dtype == np.float64
    assert Network([3, 2], dtype=np.dtype("float32")).dtype == np.float32


def _methods(net, Y):
    return {
        "fit": lambda X: net.fit(X, Y),
        "forward": net.forward,
        "predict": net.predict,
        "predict_proba": net.predict_proba,
        "evaluate": lambda X: net.evaluate(X, Y),
        "loss": lambda X: net.loss(X, Y),
        "gradients": lambda X: net.gradients(X, Y),
    }


_GOOD_X = np.random.default_rng(0).random((6, 4))
BAD_X = {
    "wrong width": (_GOOD_X[:, :3], ValueError),
    "1-D": (_GOOD_X[0], ValueError),
    "3-D": (_GOOD_X[None], ValueError),
    "int": ((_GOOD_X * 10).astype(np.int64), TypeError),
    "uint8 pixels": ((_GOOD_X * 255).astype(np.uint8), TypeError),
    "bool": (_GOOD_X > 0.5, TypeError),
    "NaN": (np.where(_GOOD_X > 0.9, np.nan, _GOOD_X), ValueError),
    "inf": (np.where(_GOOD_X > 0.9, np.inf, _GOOD_X), ValueError),
    "no rows": (_GOOD_X[:0], ValueError),
}


@pytest.mark.parametrize("method", ["fit", "forward", "predict", "predict_proba", "evaluate",
                                    "loss", "gradients"])
@pytest.mark.parametrize("case", BAD_X.keys())
def test_bad_X(case, method):
    X, error = BAD_X[case]
    net = Network([4, 5, 3], output="softmax", loss="cross_entropy", seed=0)
    Y = np.zeros(len(X), np.int64)
    before = flat_params(net)
    with pytest.raises(error):
        _methods(net, Y)[method](X)
    np.testing.assert_array_equal(flat_params(net), before)


@pytest.mark.parametrize("Y,error", [
    (np.zeros(5, np.int64), ValueError),                  # wrong rows (labels)
    (np.zeros((7, 3)), ValueError),                       # wrong rows
    (np.zeros((6, 4)), ValueError),                       # wrong width
    (np.zeros((6, 3, 1)), ValueError),                    # 3-D
    (np.zeros(6), ValueError),                            # 1-D float targets, k = 3
    (np.full((6, 3), np.nan), ValueError),
    (np.array(["a"] * 6), TypeError),
    (np.float64(1.0), ValueError),                        # a scalar
])
def test_bad_Y(Y, error):
    net = Network([4, 5, 3], output="softmax", loss="cross_entropy", dtype="float64", seed=0)
    for method in ("fit", "evaluate", "loss", "gradients"):
        with pytest.raises(error):
            _methods(net, Y)[method](_GOOD_X)


@pytest.mark.parametrize("kwargs,error", [
    ({"epochs": 0}, ValueError), ({"epochs": -1}, ValueError), ({"epochs": 1.5}, TypeError),
    ({"epochs": None}, TypeError), ({"batch_size": 0}, ValueError),
    ({"batch_size": -4}, ValueError), ({"batch_size": 2.0}, TypeError),
    ({"batch_size": True}, TypeError),
    ({"validation_data": _GOOD_X}, ValueError),
    ({"validation_data": (_GOOD_X,)}, ValueError),
    ({"validation_data": (_GOOD_X[:, :3], np.zeros(6, np.int64))}, ValueError),
    ({"validation_data": (_GOOD_X, np.full(6, 3))}, ValueError),
])
def test_bad_fit_arguments(kwargs, error):
    net = Network([4, 5, 3], output="softmax", loss="cross_entropy", dtype="float64", seed=0)
    before = flat_params(net)
    with pytest.raises(error):
        net.fit(_GOOD_X, np.zeros(6, np.int64), **kwargs)
    np.testing.assert_array_equal(flat_params(net), before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("data_dtype", [np.float32, np.float64])
def test_user_data_is_not_modified(dtype, data_dtype):
    rng = np.random.default_rng(0)
    X = rng.random((40, 4)).astype(data_dtype)
    Y = one_hot(rng.integers(0, 3, 40), 3, data_dtype)
    y = rng.integers(0, 3, 40)
    X_val, y_val = X[:10].copy(), y[:10].copy()
    copies = [a.copy() for a in (X, Y, y, X_val, y_val)]
    sizes = [4, 5, 3]
    net = Network(sizes, activation="relu", output="softmax", loss="cross_entropy",
                  l2=0.01, dtype=dtype, seed=0)
    net.fit(X, Y, epochs=2, batch_size=8, shuffle=True, validation_data=(X_val, y_val))
    net.fit(X, y, epochs=1, batch_size=None, optimizer="adam")
    net.fit(X, Y, epochs=1, batch_size=7, momentum=0.9, nesterov=True, shuffle=False)
    net.forward(X)
    net.predict(X)
    net.evaluate(X, y)
    net.loss(X, Y)
    net.gradients(X, Y)
    gradient_check(net, X[:3].astype(np.float64), Y[:3].astype(np.float64), max_params=5)
    for a, copy in zip((X, Y, y, X_val, y_val), copies):
        np.testing.assert_array_equal(a, copy)
    assert sizes == [4, 5, 3]
    sizes.append(7)
    assert net.sizes == [4, 5, 3]


# ----- 12. forward in blocks -----------------------------------------------------------


@pytest.mark.parametrize("n", [20, 21, 7, 1])
@pytest.mark.parametrize("output,loss,k", [("softmax", "cross_entropy", 4),
                                           ("sigmoid", "cross_entropy", 3),
                                           ("identity", "mse", 2)])
def test_forward_in_blocks_equals_one_block(monkeypatch, n, output, loss, k):
    rng = np.random.default_rng(0)
    X = rng.random((n, 6))
    Y = targets_for(output, loss, k, n, rng)
    net = Network([6, 8, k], activation="tanh", output=output, loss=loss, l2=0.01,
                  dtype="float64", seed=0)
    assert n < fastbp.network.BLOCK_ROWS
    expected = {"forward": net.forward(X), "predict": net.predict(X),
                "evaluate": net.evaluate(X, Y), "loss": net.loss(X, Y)}
    monkeypatch.setattr(fastbp.network, "BLOCK_ROWS", 7)
    _, As = forward_direct(net, X)
    np.testing.assert_allclose(net.forward(X), As[-1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.forward(X), expected["forward"], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(net.predict(X), expected["predict"], rtol=1e-13, atol=1e-15)
    assert net.loss(X, Y) == pytest.approx(expected["loss"], rel=1e-13)
    result = net.evaluate(X, Y)
    assert result.keys() == expected["evaluate"].keys()
    for key, value in result.items():
        assert value == pytest.approx(expected["evaluate"][key], rel=1e-13)


def test_validation_in_blocks(monkeypatch, digits):
    (X, y), (X_test, y_test) = digits
    net = Network([64, 16, 10], seed=0)
    monkeypatch.setattr(fastbp.network, "BLOCK_ROWS", 7)
    history = net.fit(X[:50], y[:50], epochs=1, batch_size=10,
                      validation_data=(X_test[:30], y_test[:30]))
    monkeypatch.setattr(fastbp.network, "BLOCK_ROWS", 4096)
    result = net.evaluate(X_test[:30], y_test[:30])
    assert history["val_loss"][0] == pytest.approx(result["loss"], rel=1e-5)
    assert history["val_accuracy"][0] == result["accuracy"]


# ----- 13. initialisation --------------------------------------------------------------


def _layer(init, activation="sigmoid", init_scale=0.01, sizes=(400, 500, 10)):
    net = Network(list(sizes), activation=activation, init=init, init_scale=init_scale,
                  dtype="float64", seed=0)
    return net.weights[0], net.biases[0], net


def test_uniform_init():
    W, b, net = _layer("uniform")
    for a in (W, b, net.weights[1], net.biases[1]):
        assert a.min() >= -1 and a.max() <= 1
    assert W.min() < -0.99 and W.max() > 0.99
    assert abs(W.mean()) < 0.01
    assert W.std() == pytest.approx(1 / np.sqrt(3), rel=0.02)
    assert b.std() == pytest.approx(1 / np.sqrt(3), rel=0.15)


@pytest.mark.parametrize("scale", [0.01, 0.5])
def test_normal_init(scale):
    W, b, net = _layer("normal", init_scale=scale)
    assert abs(W.mean()) < 0.01 * scale
    assert W.std() == pytest.approx(scale, rel=0.02)
    assert b.std() == pytest.approx(scale, rel=0.15)
    assert net.weights[1].std() == pytest.approx(scale, rel=0.1)
    assert np.abs(net.biases[1]).max() > 0


def test_xavier_init():
    W, b, net = _layer("xavier")
    r = np.sqrt(6 / (400 + 500))
    assert np.abs(W).max() <= r and np.abs(W).max() > 0.99 * r
    assert W.std() == pytest.approx(r / np.sqrt(3), rel=0.02)
    r2 = np.sqrt(6 / (500 + 10))
    assert np.abs(net.weights[1]).max() <= r2 and np.abs(net.weights[1]).max() > 0.9 * r2
    assert all((bias == 0).all() for bias in net.biases)


def test_he_init():
    W, b, net = _layer("he", activation="relu")
    assert abs(W.mean()) < 0.01 * np.sqrt(2 / 400)
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert net.weights[1].std() == pytest.approx(np.sqrt(2 / 500), rel=0.1)
    assert all((bias == 0).all() for bias in net.biases)


@pytest.mark.parametrize("activation,expected", [
    ("relu", "he"), ("leaky_relu", "he"), ("sigmoid", "xavier"), ("tanh", "xavier"),
    ("identity", "xavier"), ("softmax", "xavier"),
])
def test_auto_init(activation, expected):
    auto = _layer("auto", activation=activation, sizes=(50, 40, 3))[2]
    explicit = _layer(expected, activation=activation, sizes=(50, 40, 3))[2]
    np.testing.assert_array_equal(flat_params(auto), flat_params(explicit))
    other = _layer("xavier" if expected == "he" else "he", activation=activation,
                   sizes=(50, 40, 3))[2]
    assert not np.array_equal(flat_params(auto), flat_params(other))


def test_weights_and_biases_are_views_of_the_parameters():
    net = Network([3, 4, 2], dtype="float64", seed=0)
    X = np.ones((1, 3))
    net.biases[1][...] = 5.0
    net.weights[1][...] = 0.0
    np.testing.assert_allclose(net.forward(X), 1 / (1 + np.exp(-5.0)) * np.ones((1, 2)))
    assert [W.shape for W in net.weights] == [(4, 3), (2, 4)]
    assert [b.shape for b in net.biases] == [(4,), (2,)]
    assert net.n_layers == 2
    assert net.layer_activations == ["sigmoid", "sigmoid"]
    assert "Network(sizes=[3, 4, 2]" in repr(net)


def test_all_activation_pairs_are_constructible():
    for activation, output in itertools.product(ACTIVATIONS, ACTIVATIONS):
        Network([2, 3, 2], activation=activation, output=output, loss="mse")


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_pickle_round_trip_keeps_weights_as_views_of_the_parameters(backend):
    import pickle

    rng = np.random.default_rng(0)
    X = rng.random((20, 4))
    y = rng.integers(0, 3, 20)
    net = Network([4, 5, 3], output="softmax", loss="cross_entropy", seed=0, backend=backend)
    net.fit(X, y, epochs=2)
    clone = pickle.loads(pickle.dumps(net))
    assert np.array_equal(clone._params, net._params)
    assert all(np.shares_memory(W, clone._params) for W in clone.weights)
    assert all(np.shares_memory(b, clone._params) for b in clone.biases)
    np.testing.assert_array_equal(clone.forward(X), net.forward(X))
    clone.fit(X, y, epochs=1)  # training the clone moves its weights, not the original's
    assert not np.array_equal(clone._params, net._params)
    assert not np.array_equal(clone.forward(X), net.forward(X))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_check_input_false_skips_only_the_nan_scan(backend):
    rng = np.random.default_rng(0)
    X = rng.random((30, 4))
    X[3, 2] = np.nan
    y = rng.integers(0, 3, 30)
    net = Network([4, 5, 3], output="softmax", loss="cross_entropy", seed=0, backend=backend,
                  dtype="float64")
    initial = net._params.copy()
    with pytest.raises(ValueError, match="NaN or inf"):
        net.fit(X, y)
    # Unscanned, the NaN reaches the loss, and divergence handling still protects the net.
    with pytest.raises(FloatingPointError, match="diverged"):
        net.fit(X, y, check_input=False)
    np.testing.assert_array_equal(net._params, initial)
    with pytest.raises(ValueError, match="features"):  # shapes are checked regardless
        net.fit(X[:, :3], y, check_input=False)
    with pytest.raises(TypeError, match="check_input"):
        net.fit(X, y, check_input="no")


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_divergence_drops_the_optimiser_state_so_resume_starts_afresh(backend):
    # The diverging fit has one epoch, so the parameters go back to their values at the
    # start of that fit. (At learning_rate=1e3 over 20 epochs the float32 network
    # diverged in epoch 2 and was restored to the end of epoch 1, with weights ~1e31:
    # whether a fit from there stayed finite depended on the products' rounding, and it
    # did not with the generic micro-kernels. 1e30 diverges within epoch 1 on every
    # backend, ISA and dtype.)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    Y = X @ rng.standard_normal((5, 2)).astype(np.float32)
    net = Network([5, 8, 2], activation="tanh", output="identity", loss="mse", seed=0,
                  backend=backend)
    net.fit(X, Y, epochs=2, learning_rate=0.01, momentum=0.9)
    before = net._params.copy()
    with pytest.raises(FloatingPointError, match="restored to their values at the start"):
        net.fit(X, Y, epochs=1, learning_rate=1e30, momentum=0.9, resume=True)
    np.testing.assert_array_equal(net._params, before)
    assert net._optimizer is None
    # Resuming now is a fit with a new optimiser (no velocity from the diverged steps).
    fresh = copy.deepcopy(net)
    history = net.fit(X, Y, epochs=3, learning_rate=0.01, momentum=0.9, resume=True)
    expected = fresh.fit(X, Y, epochs=3, learning_rate=0.01, momentum=0.9)
    assert np.isfinite(history["loss"]).all()
    assert history["loss"] == expected["loss"]
    np.testing.assert_array_equal(net._params, fresh._params)


def test_a_fit_rejected_by_its_checks_keeps_the_previous_optimiser():
    rng = np.random.default_rng(0)
    X = rng.random((20, 4))
    y = rng.integers(0, 3, 20)
    net = Network([4, 5, 3], output="softmax", loss="cross_entropy", seed=0)
    net.fit(X, y, optimizer="adam")
    adam = net._optimizer
    with pytest.raises(ValueError, match="validation_data"):
        net.fit(X, y, optimizer="sgd", validation_data=(X,))
    assert net._optimizer is adam
    net.fit(X, y, optimizer="adam", resume=True)  # still resumable


def test_fit_rejects_absurd_thread_counts():
    net = Network([4, 3], output="softmax", loss="cross_entropy", seed=0)
    with pytest.raises(ValueError, match="n_threads must be at most"):
        net.fit(np.zeros((4, 4)), np.zeros(4, dtype=int), n_threads=2**31)


def test_large_finite_inputs_are_accepted_without_warnings():
    X = np.full((4, 3), 3e38, np.float32)
    net = Network([3, 2], output="identity", loss="mse", seed=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.forward(X)


def test_load_checks_the_arrays_against_sizes_before_allocating(tmp_path):
    path = Network([4, 3, 2], seed=0).save(tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["sizes"] = np.array([10**7, 10**7, 2])
    edited = tmp_path / "edited.npz"
    np.savez(edited, **arrays)
    with pytest.raises(ValueError, match="W0 must have shape"):
        Network.load(edited)


def test_saved_model_gets_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = Network([4, 3, 2], seed=0).save(tmp_path / "model.npz")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_save_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    """Reading the umask means setting it for a moment, during which files other threads
    create get the wrong mode: save must not touch it."""
    def no_umask(mask):
        raise AssertionError(f"save called os.umask({mask:#o})")

    monkeypatch.setattr(os, "umask", no_umask)
    path = Network([4, 3, 2], seed=0).save(tmp_path / "model.npz")
    assert Network.load(path).sizes == [4, 3, 2]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# ----- sample weights (issue 13) -------------------------------------------------------

@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("output,loss,targets", [
    ("softmax", "cross_entropy", "labels"), ("sigmoid", "cross_entropy", "multilabel"),
    ("identity", "mse", "regression"), ("sigmoid", "mse", "labels")])
def test_weighted_loss_evaluate_and_gradients_are_those_of_repeated_rows(
        backend, output, loss, targets):
    """Integer weights = repeated rows, for the weighted mean of scikit-learn."""
    rng = np.random.default_rng(21)
    X = rng.standard_normal((15, 4))
    if targets == "labels":
        Y = rng.integers(0, 3, 15)
    elif targets == "multilabel":
        Y = (rng.random((15, 3)) > 0.5).astype(np.float64)
    else:
        Y = rng.standard_normal((15, 3))
    w = rng.integers(0, 4, 15)
    w[0] = 2
    w_given = w.copy()
    net = Network([4, 5, 3], activation="tanh", output=output, loss=loss, l2=0.02,
                  dtype="float64", seed=2, backend=backend)
    Xr, Yr = np.repeat(X, w, axis=0), np.repeat(Y, w, axis=0)
    np.testing.assert_allclose(net.loss(X, Y, sample_weight=w), net.loss(Xr, Yr), rtol=1e-13)
    weighted, repeated = net.evaluate(X, Y, sample_weight=w), net.evaluate(Xr, Yr)
    assert weighted.keys() == repeated.keys()
    for key in weighted:
        np.testing.assert_allclose(weighted[key], repeated[key], rtol=1e-13)
    for g, h in zip(sum(net.gradients(X, Y, sample_weight=w), []),
                    sum(net.gradients(Xr, Yr), [])):
        np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-15)
    assert gradient_check(net, X, Y, sample_weight=w.astype(float) / 3) < 1e-6
    np.testing.assert_array_equal(w, w_given)
    # Unit weights change nothing.
    np.testing.assert_allclose(net.loss(X, Y, sample_weight=np.ones(15)), net.loss(X, Y),
                               rtol=1e-14)


def test_weighted_accuracy_is_the_weight_of_the_correct_samples():
    net = Network([2, 3], activation="identity", output="softmax", loss="cross_entropy",
                  dtype="float64", seed=0)
    X = np.random.default_rng(0).standard_normal((6, 2))
    predicted = net.predict(X)
    y = predicted.copy()
    y[:2] = (y[:2] + 1) % 3  # the first two are wrong
    w = np.array([3.0, 1.0, 0.5, 0.5, 1.0, 2.0])
    assert net.evaluate(X, y, sample_weight=w)["accuracy"] == pytest.approx(4 / 8)
    assert net.evaluate(X, y)["accuracy"] == pytest.approx(4 / 6)


@pytest.mark.parametrize("method", ["loss", "evaluate", "gradients"])
def test_methods_check_sample_weight(method):
    net = Network([2, 3, 2], output="softmax", loss="cross_entropy")
    X, y = np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(4,\)"):
        getattr(net, method)(X, y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        getattr(net, method)(X, y, sample_weight=[1, -1, 1, 1])
    with pytest.raises(ValueError, match="sample_weight is all zeros"):
        getattr(net, method)(X, y, sample_weight=[0, 0, 0, 0])
    with pytest.raises(TypeError, match="sample_weight must be an array of numbers"):
        getattr(net, method)(X, y, sample_weight="1111")


# ----- review defects (issue 13) -------------------------------------------------------

@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_check_passes_with_multi_hot_softmax_targets(backend, dtype):
    """softmax + cross-entropy with rows that do not sum to 1 (defect 2: was 0.33)."""
    rng = np.random.default_rng(22)
    X = rng.standard_normal((10, 4))
    Y = (rng.random((10, 5)) > 0.5).astype(np.float64)
    Y[0] = 0
    Y[1] = [1, 1, 1, 1, 1]
    net = Network([4, 6, 5], activation="tanh", output="softmax", loss="cross_entropy",
                  dtype=dtype, seed=3, backend=backend)
    assert gradient_check(net, X, Y) < 1e-6


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_integer_labels_train_a_multi_output_sigmoid_network_one_vs_rest(backend):
    """sigmoid outputs + cross-entropy with integer labels: one-hot targets, one binary
    problem per class, accuracy by the largest output (defect 6)."""
    (X, y), (X_test, y_test) = load_digits()
    net = Network([64, 32, 10], activation="relu", output="sigmoid", loss="cross_entropy",
                  seed=0, backend=backend)
    one_hot = np.eye(10, dtype=np.float32)[y]
    np.testing.assert_allclose(net.loss(X, y), net.loss(X, one_hot), rtol=1e-6)
    history = net.fit(X, y, epochs=5, optimizer="adam", learning_rate=0.01,
                      validation_data=(X_test, y_test))
    assert set(history) >= {"accuracy", "val_accuracy"}
    accuracy = net.evaluate(X_test, y_test)["accuracy"]
    assert accuracy > 0.85
    assert accuracy == pytest.approx(np.mean(net.forward(X_test).argmax(1) == y_test))
    assert history["val_accuracy"][-1] == pytest.approx(accuracy)
    with pytest.raises(ValueError, match=r"labels in \[0, 10\]"):
        net.fit(X[:3], np.array([0, 1, 10]))
