"""The compiled training engine (src/_engine.pyx, fastbp/engine.py) behind Network.fit.

It must train exactly what the NumPy backend trains (same algorithm, float tolerance),
be bit-reproducible for a seed and thread count, stop cleanly on divergence and on
Ctrl-C, and not depend on how an epoch is cut into chunks.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest

import fastbp
from fastbp import engine

OPTIMIZERS = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("adam", {}),
]
# (output, loss, n_outputs, target kind)
TASKS = [
    ("sigmoid", "mse", 5, "labels"),
    ("softmax", "cross_entropy", 4, "labels"),
    ("sigmoid", "cross_entropy", 1, "binary"),
    ("sigmoid", "cross_entropy", 3, "multilabel"),
    ("identity", "mse", 3, "regression"),
    ("tanh", "mse", 2, "bounded"),
    ("softmax", "mse", 4, "labels"),
]


def make_targets(kind, k, n, rng):
    if kind == "labels":
        return rng.integers(0, k, n)
    if kind == "binary":
        return rng.integers(0, 2, n)
    if kind == "multilabel":
        return (rng.random((n, k)) > 0.5).astype(np.float64)
    if kind == "regression":
        return rng.standard_normal((n, k))
    return rng.uniform(-0.8, 0.8, (n, k))


def train(backend, X, Y, sizes, dtype="float64", epochs=2, **kwargs):
    net_kwargs = {key: kwargs.pop(key) for key in ("activation", "output", "loss", "l2", "bias")
                  if key in kwargs}
    net = fastbp.Network(sizes, dtype=dtype, seed=3, backend=backend, **net_kwargs)
    history = net.fit(X, Y, epochs=epochs, **kwargs)
    return net, history


@pytest.mark.parametrize("optimizer,opt_kwargs", OPTIMIZERS,
                         ids=["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("output,loss,k,kind", TASKS, ids=[f"{t[0]}-{t[1]}-{t[3]}" for t in TASKS])
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax"])
def test_engine_trains_exactly_what_the_numpy_backend_trains(hidden, output, loss, k, kind,
                                                             optimizer, opt_kwargs):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((103, 6))
    Y = make_targets(kind, k, 103, rng)
    kwargs = dict(activation=hidden, output=output, loss=loss, l2=0.01, batch_size=16,
                  learning_rate=0.05, optimizer=optimizer, **opt_kwargs)
    compiled, h_compiled = train("cython", X, Y, [6, 7, 5, k], **dict(kwargs))
    numpy, h_numpy = train("numpy", X, Y, [6, 7, 5, k], **dict(kwargs))
    np.testing.assert_allclose(compiled._params, numpy._params, rtol=1e-10, atol=1e-12)
    for key in h_numpy:
        if key != "seconds":
            np.testing.assert_allclose(h_compiled[key], h_numpy[key], rtol=1e-10, err_msg=key)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_engine_matches_numpy_for_batch_modes(batch_size, shuffle, bias):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 4))
    y = rng.integers(0, 3, 30)
    kwargs = dict(activation="tanh", output="softmax", loss="cross_entropy", bias=bias,
                  batch_size=batch_size, shuffle=shuffle, learning_rate=0.1)
    compiled, _ = train("cython", X, y, [4, 6, 3], epochs=3, **dict(kwargs))
    numpy, _ = train("numpy", X, y, [4, 6, 3], epochs=3, **dict(kwargs))
    np.testing.assert_allclose(compiled._params, numpy._params, rtol=1e-10, atol=1e-12)


def big_problem():
    """Shapes that take the engine's parallel paths (products of >= 65536 MACs)."""
    rng = np.random.default_rng(2)
    X = rng.random((1200, 300), dtype=np.float32)
    y = rng.integers(0, 10, 1200)
    return X, y


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_same_seed_and_threads_give_bit_identical_weights(optimizer):
    X, y = big_problem()
    runs = [train("cython", X, y, [300, 200, 10], dtype="float32", activation="relu",
                  output="softmax", loss="cross_entropy", batch_size=64, optimizer=optimizer,
                  learning_rate=0.01, n_threads=2)[0]._params for _ in range(2)]
    assert np.array_equal(runs[0], runs[1])


def test_one_and_two_threads_agree_within_float_tolerance():
    X, y = big_problem()
    one, two = (train("cython", X, y, [300, 200, 10], dtype="float32", activation="relu",
                      output="softmax", loss="cross_entropy", batch_size=64,
                      learning_rate=0.01, n_threads=t, epochs=1)[0]._params for t in (1, 2))
    np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-5)


def test_chunking_does_not_change_the_result(monkeypatch):
    X, y = big_problem()
    kwargs = dict(dtype="float64", activation="sigmoid", output="sigmoid", loss="mse",
                  batch_size=10, learning_rate=0.5, epochs=1)
    whole, _ = train("cython", X, y, [300, 20, 10], **dict(kwargs))
    monkeypatch.setattr(engine, "CHUNK_FLOPS", 1.0)  # one batch per chunk
    assert engine.batches_per_chunk([300, 20, 10], 10) == 1
    chunked, _ = train("cython", X, y, [300, 20, 10], **dict(kwargs))
    np.testing.assert_array_equal(whole._params, chunked._params)


def test_n_threads_must_be_a_positive_int():
    X, y = big_problem()
    net = fastbp.Network([300, 10, 10], output="softmax", loss="cross_entropy")
    with pytest.raises(ValueError, match="n_threads"):
        net.fit(X, y, n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        net.fit(X, y, n_threads=1.5)


def diverging_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    Y = X @ rng.standard_normal((5, 2)).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_divergence_raises_and_restores_the_last_finite_epoch(backend):
    X, Y = diverging_problem()
    net = fastbp.Network([5, 8, 2], activation="tanh", output="identity", loss="mse", seed=0,
                         backend=backend)
    net.fit(X, Y, epochs=2, learning_rate=0.01)
    before = net._params.copy()
    with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+ of 7.*smaller "
                                                 r"learning_rate \(it was 5\)") as info:
        net.fit(X, Y, epochs=50, learning_rate=5.0)
    assert np.isfinite(net._params).all()
    completed = len(net.history["loss"])
    assert f"epoch {completed + 1}," in str(info.value)
    if completed == 0:
        np.testing.assert_array_equal(net._params, before)
    # The network still works, and can be trained further with a sane learning rate.
    assert np.isfinite(net.forward(X)).all()
    net.fit(X, Y, epochs=1, learning_rate=0.01)
    assert np.isfinite(net._params).all()


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_divergence_in_the_first_epoch_restores_the_initial_parameters(backend):
    X, Y = diverging_problem()
    net = fastbp.Network([5, 8, 2], activation="identity", output="identity", loss="mse",
                         seed=0, backend=backend)
    initial = net._params.copy()
    with pytest.raises(FloatingPointError, match="epoch 1,.*the start of this fit"):
        net.fit(X, Y, epochs=5, batch_size=10, learning_rate=1e30)
    np.testing.assert_array_equal(net._params, initial)
    assert net.history["loss"] == []


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="SIGINT is handled in the main thread only")
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_ctrl_c_leaves_a_consistent_network_and_propagates(backend):
    rng = np.random.default_rng(0)
    X = rng.random((4000, 100), dtype=np.float32)
    y = rng.integers(0, 10, 4000)
    net = fastbp.Network([100, 50, 10], activation="relu", output="softmax",
                         loss="cross_entropy", seed=0, backend=backend)
    handler = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(X, y, epochs=100_000, batch_size=8)
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 5, "the interrupt must be honoured within a chunk"
    assert signal.getsignal(signal.SIGINT) is handler
    assert np.isfinite(net._params).all()
    assert len(net.history["loss"]) == len(net.history["seconds"]) < 100_000
    # Consistent: the network predicts and trains on.
    assert net.predict(X[:5]).shape == (5,)
    net.fit(X[:100], y[:100], epochs=1)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("optimizer,opt_kwargs", OPTIMIZERS,
                         ids=["sgd", "momentum", "nesterov", "adam"])
def test_fit_one_epoch_at_a_time_with_resume_equals_one_fit(backend, optimizer, opt_kwargs):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((90, 6))
    y = rng.integers(0, 3, 90)

    def net():
        return fastbp.Network([6, 8, 3], output="softmax", loss="cross_entropy", seed=0,
                              backend=backend, dtype="float64")

    whole = net()
    whole.fit(X, y, epochs=3, batch_size=16, optimizer=optimizer, learning_rate=0.05,
              **opt_kwargs)
    stepwise = net()
    for epoch in range(3):
        stepwise.fit(X, y, epochs=1, batch_size=16, optimizer=optimizer, learning_rate=0.05,
                     resume=epoch > 0, **opt_kwargs)
    np.testing.assert_array_equal(whole._params, stepwise._params)
    # Without resume the optimiser state starts afresh: a different result with state.
    fresh = net()
    for epoch in range(3):
        fresh.fit(X, y, epochs=1, batch_size=16, optimizer=optimizer, learning_rate=0.05,
                  **opt_kwargs)
    if optimizer == "adam" or opt_kwargs:
        assert not np.array_equal(whole._params, fresh._params)


def test_resume_rejects_a_different_optimiser():
    X = np.zeros((4, 3))
    y = np.array([0, 1, 0, 1])
    net = fastbp.Network([3, 2], output="softmax", loss="cross_entropy", dtype="float64")
    net.fit(X, y, optimizer="adam")
    with pytest.raises(ValueError, match="'adam' optimiser"):
        net.fit(X, y, optimizer="sgd", resume=True)
    with pytest.raises(ValueError, match="beta1"):
        net.fit(X, y, optimizer="adam", beta1=0.5, resume=True)
    with pytest.raises(TypeError, match="resume"):
        net.fit(X, y, resume="yes")


# ----- the data-parallel step: gradient_sum, then optimizer_update ----------------------

@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("output,loss,k,kind", TASKS, ids=[f"{t[0]}-{t[1]}-{t[3]}" for t in TASKS])
@pytest.mark.parametrize("shuffled", [False, True])
def test_gradient_sum_is_the_summed_gradient_with_loss_correct_and_rows(backend, output, loss,
                                                                       k, kind, shuffled):
    from fastbp import training

    rng = np.random.default_rng(5)
    n, b = 23, 8
    X = rng.standard_normal((n, 6))
    Y = make_targets(kind, k, n, rng)
    net = fastbp.Network([6, 7, k], activation="tanh", output=output, loss=loss, l2=0.3,
                         dtype="float64", seed=3, backend=backend)
    plan = training.prepare(net, X, Y, 1, b, 0.1, "sgd", 0.0, False, 0.9, 0.999, 1e-8, True,
                            None, False, 1, False, True, None)
    trainer = training.make_trainer(net, plan)
    order = rng.permutation(n) if shuffled else None
    n_params = net._params.size
    buffer = np.full(n_params + engine.REDUCED_SLOTS, np.nan)
    T, labels = plan.T, plan.labels
    with trainer:
        for step in range(4):   # the last step has no rows
            trainer.gradient_sum(order, step, buffer)
            rows = (order if shuffled else np.arange(n))[step * b:(step + 1) * b]
            m = len(rows)
            assert buffer[n_params + 2] == m
            if m == 0:
                assert not buffer.any()
                continue
            dW, db = net.gradients(X[rows], T[rows])   # the mean, with l2 * W
            expected = np.concatenate([(g - net.l2 * W).ravel() * m
                                       for g, W in zip(dW, net.weights)] + [g * m for g in db])
            np.testing.assert_allclose(buffer[:n_params], expected, rtol=1e-12, atol=1e-13)
            evaluation = net.evaluate(X[rows], Y[rows])
            np.testing.assert_allclose(buffer[n_params], (evaluation["loss"] - net._l2_term())
                                       * m, rtol=1e-12)
            if labels is not None:
                assert buffer[n_params + 1] == round(evaluation["accuracy"] * m)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("optimizer,opt_kwargs", OPTIMIZERS,
                         ids=["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_update_with_a_summed_gradient_is_the_optimisers_step(backend, optimizer, opt_kwargs,
                                                              dtype):
    """update(sum, 1/m) does what the optimiser does with the mean gradient + l2 W."""
    from fastbp import training
    from fastbp.optimizers import make_optimizer

    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    net = fastbp.Network([4, 5, 3], output="softmax", loss="cross_entropy", l2=0.05,
                         dtype=dtype, seed=2, backend=backend)
    plan = training.prepare(net, X, y, 1, 10, 0.05, optimizer, opt_kwargs.get("momentum", 0.0),
                            opt_kwargs.get("nesterov", False), 0.9, 0.999, 1e-8, False, None,
                            False, 1, False, True, None)
    trainer = training.make_trainer(net, plan)
    reference = make_optimizer(optimizer, net._params, 0.05, **opt_kwargs)
    params = net._params.copy()
    m = 7.0
    with trainer:
        for _ in range(3):
            summed = rng.standard_normal(net._params.size).astype(dtype)
            mean = summed / dtype_type(dtype)(m)
            mean[:net._n_weights] += dtype_type(dtype)(net.l2) * params[:net._n_weights]
            reference.step(params, mean)
            trainer.update(summed.copy(), 1.0 / m)
    tolerance = {"float32": 1e-5, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(net._params, params, rtol=tolerance, atol=tolerance)
    if optimizer == "adam":
        assert plan.optimizer.t == 3


def dtype_type(dtype):
    return np.dtype(dtype).type


# ----- sample weights ------------------------------------------------------------------

def sample_weights(n, rng):
    """Weights with zeros, fractions and large values, and an all-zero batch (16-31)."""
    w = rng.choice([0.0, 0.25, 1.0, 3.0, 10.0], size=n)
    w[16:32] = 0
    return w


@pytest.mark.parametrize("optimizer,opt_kwargs", OPTIMIZERS,
                         ids=["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("output,loss,k,kind", TASKS, ids=[f"{t[0]}-{t[1]}-{t[3]}" for t in TASKS])
def test_weighted_engine_trains_what_the_numpy_backend_trains(output, loss, k, kind,
                                                              optimizer, opt_kwargs):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((103, 6))
    Y = make_targets(kind, k, 103, rng)
    w = sample_weights(103, rng)
    w_given = w.copy()
    kwargs = dict(activation="tanh", output=output, loss=loss, l2=0.01, batch_size=16,
                  learning_rate=0.05, optimizer=optimizer, shuffle=False, sample_weight=w,
                  **opt_kwargs)
    compiled, h_compiled = train("cython", X, Y, [6, 7, 5, k], **dict(kwargs))
    numpy, h_numpy = train("numpy", X, Y, [6, 7, 5, k], **dict(kwargs))
    np.testing.assert_array_equal(w, w_given)  # not modified
    np.testing.assert_allclose(compiled._params, numpy._params, rtol=1e-10, atol=1e-12)
    for key in h_numpy:
        if key != "seconds":
            np.testing.assert_allclose(h_compiled[key], h_numpy[key], rtol=1e-10, err_msg=key)
    # The weights change the training.
    unweighted, _ = train("cython", X, Y, [6, 7, 5, k],
                          **{**kwargs, "sample_weight": None})
    assert not np.allclose(unweighted._params, compiled._params, rtol=1e-3)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_integer_weights_are_repeated_rows_in_full_batch_training(backend, optimizer):
    """Full batch, weight 3 = the row three times, weight 0 = no row (normalised by the
    weight sum, as scikit-learn); the history is the weighted mean."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((40, 5))
    y = rng.integers(0, 3, 40)
    w = rng.integers(0, 4, 40)
    kwargs = dict(activation="relu", output="softmax", loss="cross_entropy", l2=0.01,
                  batch_size=None, learning_rate=0.05, optimizer=optimizer, epochs=5)
    weighted, h_weighted = train(backend, X, y, [5, 8, 3], sample_weight=w, **dict(kwargs))
    repeated, h_repeated = train(backend, np.repeat(X, w, axis=0), np.repeat(y, w),
                                 [5, 8, 3], **dict(kwargs))
    np.testing.assert_allclose(weighted._params, repeated._params, rtol=1e-10, atol=1e-12)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(h_weighted[key], h_repeated[key], rtol=1e-10)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_a_batch_of_zero_weights_is_skipped(backend):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 4))
    y = rng.integers(0, 3, 30)
    w = np.ones(30)
    w[10:20] = 0
    kwargs = dict(activation="tanh", output="softmax", loss="cross_entropy", batch_size=10,
                  shuffle=False, optimizer="adam", learning_rate=0.01, epochs=2)
    net, _ = train(backend, X, y, [4, 5, 3], sample_weight=w, **dict(kwargs))
    # The same as training on the two batches that count.
    keep = np.r_[0:10, 20:30]
    ref, _ = train(backend, X[keep], y[keep], [4, 5, 3], **dict(kwargs))
    np.testing.assert_allclose(net._params, ref._params, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_the_loss_of_an_epoch_leaves_out_its_skipped_batches(backend):
    """A batch of zero weights makes no step and has no weighted mean loss: the epoch's
    loss is the size-weighted mean over the batches that trained, as if the skipped
    batch were not there (it used to count as a loss of 0: the more zero batches, the
    lower the loss)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 4))
    y = rng.integers(0, 3, 30)
    w = rng.uniform(0.5, 2, 30)
    w[10:20] = 0
    kwargs = dict(activation="tanh", output="softmax", loss="cross_entropy", batch_size=10,
                  shuffle=False, optimizer="adam", learning_rate=0.01, epochs=2)
    net, history = train(backend, X, y, [4, 5, 3], sample_weight=w, **dict(kwargs))
    keep = np.r_[0:10, 20:30]
    ref, h_ref = train(backend, X[keep], y[keep], [4, 5, 3], sample_weight=w[keep],
                       **dict(kwargs))
    np.testing.assert_allclose(net._params, ref._params, rtol=1e-12, atol=1e-14)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(history[key], h_ref[key], rtol=1e-12, err_msg=key)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_fit_checks_sample_weight(backend):
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    net = fastbp.Network([2, 3, 2], output="softmax", loss="cross_entropy", backend=backend)
    for bad, error, message in [
        (np.ones(3), ValueError, r"shape \(4,\).*got shape \(3,\)"),
        (np.ones((4, 1)), ValueError, r"shape \(4,\)"),
        ([1, 1, -1, 1], ValueError, ">= 0"),
        ([1, np.nan, 1, 1], ValueError, "NaN or inf"),
        ([1, np.inf, 1, 1], ValueError, "NaN or inf"),
        (np.zeros(4), ValueError, "all zeros"),
        ([1e308] * 4, ValueError, "too large"),
        (["a", "b", "c", "d"], TypeError, "numbers"),
        (np.ones(4, bool), TypeError, "numbers"),
    ]:
        before = net._params.copy()
        with pytest.raises(error, match="sample_weight .*" + message):
            net.fit(X, y, sample_weight=bad)
        np.testing.assert_array_equal(net._params, before)


# ----- review defects ------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_softmax_cross_entropy_with_multi_hot_targets_trains_on_the_true_gradient(backend):
    """One full-batch SGD step of the engine is params - lr * gradients, with target rows
    that do not sum to 1 (issue 13, defect 2); gradients agree with finite differences."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((12, 4))
    Y = np.zeros((12, 3))
    Y[:4, :2] = 1          # multi-hot
    Y[4:8, 0] = 1          # one-hot
    Y[8:10] = 0.5          # sums to 1.5
    # rows 10, 11: all zero
    net = fastbp.Network([4, 6, 3], activation="tanh", output="softmax",
                         loss="cross_entropy", dtype="float64", seed=0, backend=backend)
    assert fastbp.gradient_check(net, X, Y) < 1e-6
    dW, db = net.gradients(X, Y)
    expected = net._params - 0.1 * np.concatenate([g.ravel() for g in dW + db])
    net.fit(X, Y, epochs=1, batch_size=None, learning_rate=0.1, shuffle=False)
    np.testing.assert_allclose(net._params, expected, rtol=1e-12, atol=1e-14)


def test_nan_outputs_under_cross_entropy_stop_both_backends_at_the_same_batch():
    """digits, learning rate 1e37: the second batch's outputs are NaN (issue 13, defect 3)."""
    from fastbp.datasets import load_digits

    (X, y), _ = load_digits()
    messages = []
    for backend in ("cython", "numpy"):
        net = fastbp.Network([64, 64, 10], activation="relu", output="softmax",
                             loss="cross_entropy", seed=0, backend=backend)
        with pytest.raises(FloatingPointError) as info:
            net.fit(X, y, epochs=1, batch_size=32, learning_rate=1e37)
        messages.append(str(info.value))
    assert "batch 2 of 43" in messages[0]
    assert messages[0] == messages[1]


def test_nan_outputs_of_a_sigmoid_cross_entropy_network_stop_both_backends_alike():
    # At a learning rate of 1e300 the products overflow, and whether a sum of
    # overflowing terms is +-inf or NaN depends on its summation order: the micro-kernels
    # sum in another order than BLAS. What is tested here is that a NaN output is
    # noticed (not clipped away), so the products run on BLAS, as NumPy's do.
    from fastbp import _isa
    previous = _isa.get_isa() if _isa.isa_forced() else "auto"
    _isa.set_isa("blas")
    try:
        _check_nan_outputs_of_a_sigmoid_cross_entropy_network()
    finally:
        _isa.set_isa(previous)


def _check_nan_outputs_of_a_sigmoid_cross_entropy_network():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((64, 5))
    Y = (rng.random((64, 3)) > 0.5).astype(np.float64)
    messages = []
    for backend in ("cython", "numpy"):
        net = fastbp.Network([5, 8, 3], activation="relu", output="sigmoid",
                             loss="cross_entropy", dtype="float64", seed=0, backend=backend)
        with pytest.raises(FloatingPointError) as info:
            net.fit(X, Y, epochs=1, batch_size=16, learning_rate=1e300, shuffle=False)
        messages.append(str(info.value))
    assert "batch 4 of 4" not in messages[0]
    assert messages[0] == messages[1]


def test_nan_outputs_on_all_zero_softmax_targets_stop_both_backends_alike():
    """All-zero target rows are legal for softmax + cross-entropy (A * sum(Y) - Y); a NaN
    output in such a row must stop the engine where it stops the NumPy backend (whose
    loss is Y . log(A), NaN when A is), not one batch later."""
    rng = np.random.default_rng(10)
    X = rng.standard_normal((64, 5))
    Y = np.eye(3)[rng.integers(0, 3, 64)]
    Y[16:32] = 0  # the second batch: all-zero target rows
    messages = []
    for backend in ("cython", "numpy"):
        net = fastbp.Network([5, 8, 3], activation="relu", output="softmax",
                             loss="cross_entropy", dtype="float64", seed=0, backend=backend)
        with pytest.raises(FloatingPointError) as info:
            net.fit(X, Y, epochs=1, batch_size=16, learning_rate=1e300, shuffle=False)
        messages.append(str(info.value))
    assert "batch 2 of 4" in messages[1]
    assert messages[0] == messages[1]
