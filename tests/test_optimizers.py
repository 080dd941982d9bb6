"""Tests for fastbp.optimizers: SGD (momentum, Nesterov) and Adam against the update
formulas written out by hand (scikit-learn's rules), and their argument checks, both on
their own and through Network.fit."""

import numpy as np
import pytest

from fastbp import Network
from fastbp.optimizers import OPTIMIZERS, SGD, Adam, make_optimizer

DTYPES = (np.float32, np.float64)


def tol(dtype):
    return {"rtol": 1e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-14,
                                                                    "atol": 1e-16}


def vectors(dtype, n=50, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=n).astype(dtype), rng.normal(size=n).astype(dtype),
            rng.normal(size=n).astype(dtype))


def test_names():
    assert OPTIMIZERS == ("sgd", "adam")
    p = np.zeros(3)
    assert isinstance(make_optimizer("sgd", p, 0.1), SGD)
    assert isinstance(make_optimizer("adam", p, 0.1), Adam)


# ----- the update rules ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_plain_sgd(dtype):
    p0, g1, g2 = vectors(dtype)
    p = p0.copy()
    opt = SGD(p, 0.3)
    opt.step(p, g1.copy())
    expected = p0.astype(np.float64) - 0.3 * g1
    np.testing.assert_allclose(p, expected, **tol(dtype))
    opt.step(p, g2.copy())
    np.testing.assert_allclose(p, expected - 0.3 * g2, **tol(dtype))
    assert p.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum(dtype, nesterov):
    lr, mu = 0.1, 0.9
    p0, g1, g2 = [v.astype(np.float64) for v in vectors(dtype)]
    p = p0.astype(dtype)
    opt = SGD(p, lr, momentum=mu, nesterov=nesterov)
    # scikit-learn: v = mu v - lr g; p += v, or with Nesterov p += mu v - lr g (new v).
    v = np.zeros_like(p0)
    expected = p0.copy()
    for g in (g1, g2):
        opt.step(p, g.astype(dtype))
        v = mu * v - lr * g
        expected = expected + (mu * v - lr * g if nesterov else v)
        np.testing.assert_allclose(p, expected, **tol(dtype))
    # Two steps differ from plain SGD (the momentum is used) and between the variants.
    plain = p0 - lr * g1 - lr * g2
    assert not np.allclose(p, plain, rtol=1e-3)


def test_nesterov_and_classical_momentum_differ():
    p0, g1, g2 = vectors(np.float64)
    results = []
    for nesterov in (False, True):
        p = p0.copy()
        opt = SGD(p, 0.1, momentum=0.5, nesterov=nesterov)
        opt.step(p, g1.copy())
        opt.step(p, g2.copy())
        results.append(p)
    assert not np.allclose(*results, rtol=1e-3)


def test_nesterov_without_momentum_is_plain_sgd():
    p0, g1, _ = vectors(np.float64)
    p = p0.copy()
    SGD(p, 0.2, momentum=0.0, nesterov=True).step(p, g1.copy())
    np.testing.assert_allclose(p, p0 - 0.2 * g1, rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr,b1,b2,eps", [(0.001, 0.9, 0.999, 1e-8), (0.05, 0.5, 0.9, 1e-3),
                                          (0.01, 0.0, 0.0, 1e-8)])
def test_adam(dtype, lr, b1, b2, eps):
    p0, g1, g2 = [v.astype(np.float64) for v in vectors(dtype)]
    g3 = -2 * g1
    p = p0.astype(dtype)
    opt = Adam(p, lr, beta1=b1, beta2=b2, eps=eps)
    m = np.zeros_like(p0)
    v = np.zeros_like(p0)
    expected = p0.copy()
    for t, g in enumerate((g1, g2, g3), 1):
        opt.step(p, g.astype(dtype))
        # scikit-learn's AdamOptimizer: bias correction folded into the step size.
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        expected = expected - lr_t * m / (np.sqrt(v) + eps)
        np.testing.assert_allclose(p, expected, **tol(dtype))
    assert opt.t == 3


def test_adam_first_step_is_lr_times_sign():
    """With bias correction the first Adam step is ~lr * sign(g), whatever |g|."""
    p = np.zeros(4)
    g = np.array([1e-3, -5.0, 200.0, -0.1])
    Adam(p, 0.01).step(p, g.copy())
    np.testing.assert_allclose(p, -0.01 * np.sign(g), rtol=1e-3)


# ----- the same rules through Network.fit ------------------------------------------------


def _net(seed=0, **kwargs):
    return Network([6, 5, 3], activation="tanh", output="softmax", loss="cross_entropy",
                   l2=0.01, dtype="float64", seed=seed, **kwargs)


def _data():
    rng = np.random.default_rng(4)
    return rng.random((12, 6)), rng.integers(0, 3, 12)


def _flat(net):
    return np.concatenate([W.ravel() for W in net.weights] + list(net.biases))


def _set_flat(net, p):
    start = 0
    for a in net.weights + net.biases:
        a[...] = p[start:start + a.size].reshape(a.shape)
        start += a.size


def _gradient(net, X, y):
    dW, db = net.gradients(X, y)
    return np.concatenate([g.ravel() for g in dW] + db)


def _by_hand(X, y, update, steps):
    """Full-batch training where ``update(p, g, t)`` gives the next parameters."""
    net = _net()
    p = _flat(net)
    for t in range(1, steps + 1):
        p = update(p, _gradient(net, X, y), t)
        _set_flat(net, p)
    return p


BACKENDS = ("cython", "numpy")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nesterov", [False, True])
def test_fit_sgd_momentum_matches_formulas(nesterov, backend):
    X, y = _data()
    lr, mu = 0.5, 0.8
    state = {"v": 0.0}

    def update(p, g, t):
        state["v"] = mu * state["v"] - lr * g
        return p + (mu * state["v"] - lr * g if nesterov else state["v"])

    expected = _by_hand(X, y, update, 3)
    net = _net(backend=backend)
    net.fit(X, y, epochs=3, batch_size=None, learning_rate=lr, momentum=mu,
            nesterov=nesterov, shuffle=False)
    np.testing.assert_allclose(_flat(net), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_adam_matches_formulas(backend):
    X, y = _data()
    lr, b1, b2, eps = 0.02, 0.8, 0.99, 1e-7
    state = {"m": 0.0, "v": 0.0}

    def update(p, g, t):
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return p - lr_t * state["m"] / (np.sqrt(state["v"]) + eps)

    expected = _by_hand(X, y, update, 3)
    net = _net(backend=backend)
    net.fit(X, y, epochs=3, batch_size=None, learning_rate=lr, optimizer="adam", beta1=b1,
            beta2=b2, eps=eps, shuffle=False)
    np.testing.assert_allclose(_flat(net), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer,nesterov", [("sgd", False), ("sgd", True), ("adam", False)])
def test_fit_minibatches_match_formulas(backend, optimizer, nesterov):
    """Mini-batches of 5 over 12 samples (the last one partial), two epochs, no shuffle."""
    X, y = _data()
    lr, mu, b1, b2, eps = 0.05, 0.7, 0.9, 0.999, 1e-8
    state = {"v": 0.0, "m": 0.0, "s": 0.0, "t": 0}
    ref = _net()
    p = _flat(ref)
    for _ in range(2):
        for sl in (slice(0, 5), slice(5, 10), slice(10, 12)):
            g = _gradient(ref, X[sl], y[sl])
            if optimizer == "sgd":
                state["v"] = mu * state["v"] - lr * g
                p = p + (mu * state["v"] - lr * g if nesterov else state["v"])
            else:
                state["t"] += 1
                t = state["t"]
                state["m"] = b1 * state["m"] + (1 - b1) * g
                state["s"] = b2 * state["s"] + (1 - b2) * g * g
                lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                p = p - lr_t * state["m"] / (np.sqrt(state["s"]) + eps)
            _set_flat(ref, p)
    net = _net(backend=backend)
    net.fit(X, y, epochs=2, batch_size=5, learning_rate=lr, optimizer=optimizer,
            momentum=mu if optimizer == "sgd" else 0.0, nesterov=nesterov, shuffle=False)
    np.testing.assert_allclose(_flat(net), p, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_fit_starts_a_new_optimizer_state(backend):
    """Momentum does not carry over from one fit call to the next."""
    X, y = _data()
    lr, mu = 0.5, 0.8

    def update(p, g, t):  # every step is the first step of a fresh optimiser
        return p - lr * g

    expected = _by_hand(X, y, update, 2)
    net = _net(backend=backend)
    for _ in range(2):
        net.fit(X, y, epochs=1, batch_size=None, learning_rate=lr, momentum=mu,
                shuffle=False)
    np.testing.assert_allclose(_flat(net), expected, rtol=1e-12, atol=1e-14)
    carried = _net(backend=backend)
    carried.fit(X, y, epochs=2, batch_size=None, learning_rate=lr, momentum=mu,
                shuffle=False)
    assert not np.allclose(_flat(carried), expected, rtol=1e-6)


# ----- argument checks ----------------------------------------------------------------


BAD_LEARNING_RATES = [0, 0.0, -0.1, np.nan, np.inf, -np.inf, "0.1", None, True]


@pytest.mark.parametrize("lr", BAD_LEARNING_RATES)
def test_bad_learning_rate(lr):
    p = np.zeros(3)
    with pytest.raises(ValueError, match="learning_rate"):
        SGD(p, lr)
    with pytest.raises(ValueError, match="learning_rate"):
        Adam(p, lr)


@pytest.mark.parametrize("momentum", [-0.1, 1.0001, 1.5, np.nan, np.inf, "0.9", None])
def test_bad_momentum(momentum):
    with pytest.raises(ValueError, match="momentum"):
        SGD(np.zeros(3), 0.1, momentum=momentum)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.999, 1.0, 1])
def test_good_momentum(momentum):
    SGD(np.zeros(3), 0.1, momentum=momentum)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_momentum_one_is_accepted_as_by_scikit_learn(optimizer):
    """[0, 1] (issue 13, defect 4): momentum=1.0 trains, with SGD and (unused) with Adam."""
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=1, optimizer=optimizer, momentum=1.0, learning_rate=1e-3)
    assert np.isfinite(_flat(net)).all()


@pytest.mark.parametrize("name", ["beta1", "beta2"])
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.01, np.nan, None])
def test_bad_betas(name, value):
    with pytest.raises(ValueError, match=name):
        Adam(np.zeros(3), 0.1, **{name: value})


@pytest.mark.parametrize("eps", [0, 0.0, -1e-8, np.nan, np.inf])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        Adam(np.zeros(3), 0.1, eps=eps)


@pytest.mark.parametrize("name", ["rmsprop", "SGD", "Adam", "", None, 1])
def test_unknown_optimizer(name):
    with pytest.raises(ValueError) as info:
        make_optimizer(name, np.zeros(3), 0.1)
    assert "sgd" in str(info.value) and "adam" in str(info.value)
    X, y = _data()
    net = _net()
    before = _flat(net)
    with pytest.raises(ValueError) as info:
        net.fit(X, y, optimizer=name)
    assert "sgd" in str(info.value) and "adam" in str(info.value)
    np.testing.assert_array_equal(_flat(net), before)


@pytest.mark.parametrize("kwargs", [
    {"learning_rate": 0}, {"learning_rate": -1.0}, {"learning_rate": np.nan},
    {"momentum": 1.01}, {"momentum": -0.5},
    {"optimizer": "adam", "learning_rate": 0}, {"optimizer": "adam", "beta1": 1.0},
    {"optimizer": "adam", "beta2": -0.1}, {"optimizer": "adam", "eps": 0.0},
    {"optimizer": "adam", "eps": -1e-8},
])
def test_fit_rejects_bad_optimizer_arguments_before_training(kwargs):
    X, y = _data()
    net = _net()
    before = _flat(net)
    with pytest.raises(ValueError):
        net.fit(X, y, epochs=2, **kwargs)
    np.testing.assert_array_equal(_flat(net), before)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("bad", [{"momentum": 1.5}, {"momentum": -0.1}, {"beta1": 1.0},
                                 {"beta2": -0.5}, {"eps": 0.0}, {"nesterov": "yes"}])
def test_every_hyper_parameter_is_checked_whichever_optimizer_uses_it(optimizer, bad):
    """A momentum passed to Adam (or a beta to SGD) is still checked, as scikit-learn does."""
    net = Network([3, 2], output="identity", loss="mse", seed=0)
    X = np.zeros((4, 3), np.float32)
    Y = np.zeros((4, 2), np.float32)
    name = next(iter(bad))
    with pytest.raises((ValueError, TypeError), match=name):
        net.fit(X, Y, optimizer=optimizer, **bad)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize(("optimizer", "kwargs", "states", "decayed"), [
    ("adam", {}, ("m", "v"), ("m",)),   # v decays by 0.999: not that far in 1000 steps
    ("sgd", {"momentum": 0.9}, ("velocity",), ("velocity",)),
    ("sgd", {"momentum": 0.9, "nesterov": True}, ("velocity",), ("velocity",)),
])
def test_decaying_optimiser_state_is_flushed_to_zero_not_left_subnormal(backend, optimizer,
                                                                        kwargs, states,
                                                                        decayed):
    # Input 0 is non-zero in the first sample only: afterwards its weights' gradient is 0
    # and their state decays by beta1 (or the momentum) every step, below float32's
    # smallest normal number after ~850 steps. Subnormal state would make every later
    # step ~100x slower per element; it must become exactly 0, alike in both backends.
    rng = np.random.default_rng(3)
    X = rng.random((1000, 4), dtype=np.float32)
    X[1:, 0] = 0
    y = rng.integers(0, 2, 1000)
    net = Network([4, 3, 2], activation="tanh", output="softmax",
                         loss="cross_entropy", dtype="float32", seed=0, backend=backend)
    net.fit(X, y, epochs=1, batch_size=1, optimizer=optimizer, learning_rate=1e-3,
            shuffle=False, **kwargs)
    tiny = np.finfo(np.float32).tiny
    for name in states:
        state = getattr(net._optimizer, name)
        assert not np.any((state != 0) & (np.abs(state) < tiny)), name
    for name in decayed:
        # The weights of input 0 (column 0 of the first layer's W, shape (3, 4)).
        state = getattr(net._optimizer, name)
        assert np.all(state[:12].reshape(3, 4)[:, 0] == 0), name


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize(("optimizer", "kwargs", "states"), [
    ("adam", {}, ("m", "v")),
    ("sgd", {"momentum": 0.9}, ("velocity",)),
    ("sgd", {"momentum": 0.9, "nesterov": True}, ("velocity",)),
])
def test_flushing_subnormal_state_keeps_a_nan_gradient_nan(backend, optimizer, kwargs,
                                                           states):
    # Only subnormal state is flushed: a NaN is not subnormal. Flushed to 0, a NaN
    # gradient entry would leave its parameter unchanged, and the divergence check
    # (non-finite parameters) would miss it; the engine must do as backend="numpy".
    from fastbp.training import make_trainer, prepare

    rng = np.random.default_rng(4)
    X = rng.random((8, 4))
    y = rng.integers(0, 2, 8)
    net = Network([4, 3, 2], activation="tanh", output="softmax", loss="cross_entropy",
                  seed=0, backend=backend)
    plan = prepare(net, X, y, 1, 8, 1e-3, optimizer, kwargs.get("momentum", 0.0),
                   kwargs.get("nesterov", False), 0.9, 0.999, 1e-8, False, None, False,
                   None, False, True, None)
    trainer = make_trainer(net, plan)
    grads = np.full(net._params.size, 0.5, net.dtype)
    grads[5] = np.nan
    with trainer:
        trainer.update(grads, 1.0)
    assert np.isnan(net._params[5])
    assert np.all(np.isfinite(np.delete(net._params, 5)))
    for name in states:
        assert np.isnan(getattr(plan.optimizer, name)[5]), name
