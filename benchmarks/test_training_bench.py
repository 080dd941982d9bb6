"""One training epoch: fastbp against the lean NumPy loop, JAX and PyTorch, side by side.

The five epochs of issue 9 (the 784-100-10 one with SGD and with Adam), float32 and
float64. Every contender trains the same network from the same initial parameters on
the same batches in the same order (``shuffle=False``), with the same optimiser; see
``_baselines.py``. Each round starts from the initial parameters (not timed) and
trains one epoch:

- ``fastbp``: ``net.fit(X, y, epochs=1, batch_size=..., shuffle=False,
  check_input=False)``. The scan of the data for NaN that ``fit`` does once per call is
  left out: it is not part of an epoch of a longer fit, and the baselines check nothing.
- ``numpy``: the lean NumPy loop (``_baselines.NumpyLoop``), what a user writes.
- ``jax``: one jitted epoch, ``lax.scan`` over the batches, compiled before timing
  (when JAX is installed).
- ``torch``: an idiomatic PyTorch loop over batches made beforehand (when PyTorch is
  installed).

The data are random, of MNIST's shape (784 pixels in [0, 1), 10 classes): an epoch's
time does not depend on the values. ``test_matmul_rate`` measures ``np.matmul`` at
2048^3 in the same run, float32 and float64: the yardstick of the efficiency column of
``compare.py`` (training FLOPs per second / that rate; FLOPs counted by
``_baselines.training_flops``). Threads: ``FASTBP_BENCH_THREADS`` (conftest.py).
"""

import numpy as np
import pytest
from _baselines import (
    HAVE_JAX, HAVE_TORCH, JaxEpoch, NumpyLoop, TorchEpoch, Training, one_hot, training_flops,
)
from _config import QUICK, synthetic_mnist

SIGMOID = dict(hidden="sigmoid", output="sigmoid", loss="mse", learning_rate=0.1)
SOFTMAX = dict(hidden="relu", output="softmax", loss="cross_entropy", learning_rate=0.1)
# (name, training, samples): issue 9's table.
CONFIGS = [
    ("784-30-10 sigmoid b1", Training((784, 30, 10), batch_size=1, **SIGMOID), 6000),
    ("784-30-10 sigmoid b10", Training((784, 30, 10), batch_size=10, **SIGMOID), 60000),
    ("784-100-10 relu/softmax b32 sgd",
     Training((784, 100, 10), batch_size=32, **SOFTMAX), 60000),
    ("784-100-10 relu/softmax b32 adam",
     Training((784, 100, 10), batch_size=32, optimizer="adam",
              **{**SOFTMAX, "learning_rate": 1e-3}), 60000),
    ("784-128-10 relu/softmax b128", Training((784, 128, 10), batch_size=128, **SOFTMAX),
     60000),
    ("784-1024-1024-10 relu/softmax b256",
     Training((784, 1024, 1024, 10), batch_size=256, **SOFTMAX), 15360),
]
DTYPES = ["float32", "float64"]
IMPLS = ["fastbp", "numpy"] + (["jax"] if HAVE_JAX else []) + (["torch"] if HAVE_TORCH else [])
ROUNDS, WARMUP = (1, 0) if QUICK else (5, 1)
MATMUL_N = 512 if QUICK else 2048


def _samples(samples):
    return max(samples // 20, 64) if QUICK else samples


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_training_epoch(benchmark, config, dtype, impl):
    name, training, samples = config
    samples = _samples(samples)
    X, y = synthetic_mnist(samples, dtype)
    T = one_hot(y, 10, X.dtype)
    weights, biases = training.initial_parameters(dtype)
    benchmark.group = f"epoch {name} {dtype}"
    benchmark.extra_info.update(config=name, dtype=dtype, samples=samples,
                                batch_size=training.batch_size, optimizer=training.optimizer,
                                flops=training_flops(training.sizes, samples))

    if impl == "fastbp":
        kwargs = training.fit_kwargs()

        def setup():
            return (training.network(dtype),), {}

        def epoch(net):
            net.fit(X, y, check_input=False, **kwargs)
    elif impl == "numpy":
        def setup():
            return (NumpyLoop(training, weights, biases),), {}

        def epoch(loop):
            loop.epoch(X, T)
    elif impl == "jax":
        jitted = JaxEpoch(training, weights, biases, X, T)  # compiled here, not timed

        def setup():
            jitted.reset()
            return (), {}

        epoch = jitted.epoch
    else:
        def setup():
            return (TorchEpoch(training, weights, biases, X, T),), {}

        def epoch(loop):
            loop.epoch()

    benchmark.pedantic(epoch, setup=setup, rounds=ROUNDS, iterations=1,
                       warmup_rounds=WARMUP)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_rate(benchmark, dtype):
    """This machine's np.matmul rate at n^3 (n = 2048), the yardstick of efficiency."""
    n = MATMUL_N
    rng = np.random.default_rng(0)
    A = rng.random((n, n)).astype(dtype)
    B = rng.random((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    benchmark.group = f"np.matmul {n}^3 {dtype}"
    benchmark.extra_info.update(flops=2 * n ** 3, dtype=dtype, n=n)
    benchmark.pedantic(np.matmul, args=(A, B), kwargs={"out": out},
                       rounds=2 if QUICK else 20, warmup_rounds=1 if QUICK else 2)
