"""The classic tutorial's network.py: fastbp.compat against the pure-NumPy original.

Chapter 1's recipe (784-30-10 sigmoid network, quadratic cost, mini-batch 10, eta 3.0)
on 10,000 Fashion-MNIST training images (random data of that shape when the data set
is not installed), called the tutorial's way on lists of (x, y) column vectors made by
``fastbp.compat.tutorial_data``:

- ``test_tutorial_epoch``: ``net.SGD(training_data, 1, 10, 3.0)``, one epoch;
- ``test_tutorial_run``: ``net.SGD(training_data, 3, 10, 3.0, test_data=test_data)``,
  three epochs, each followed by the evaluation of 10,000 test images (the tutorial's
  own way of running it), issue 9's yardstick for the tutorial layer.

``fastbp`` is :class:`fastbp.compat.network.Network` (its time includes turning the
lists into arrays, as every ``SGD`` call does); ``numpy`` is the tutorial's algorithm
in NumPy (``_tutorial_network.py``), one sample at a time. Each round starts from a
fresh network with the same seeds (not timed).
"""

import contextlib
import io
import random

import numpy as np
import pytest
from _tutorial_network import TutorialNetwork
from _config import QUICK, synthetic_mnist

from fastbp.compat import network, tutorial_data

SAMPLES = 1000 if QUICK else 10_000
SIZES = [784, 30, 10]
MINI_BATCH_SIZE = 10
ETA = 3.0
EPOCHS = 3
IMPLS = {"fastbp": network.Network, "numpy": TutorialNetwork}


@pytest.fixture(scope="module")
def tutorial_sets():
    """(training_data, test_data) in the tutorial's format, from Fashion-MNIST if
    installed (else random data of its shape)."""
    from fastbp.datasets import load_fashion_mnist

    try:
        (X, y), (X_test, y_test) = load_fashion_mnist()
    except FileNotFoundError:
        X, y = synthetic_mnist(SAMPLES, np.float32, seed=0)
        X_test, y_test = synthetic_mnist(SAMPLES, np.float32, seed=1)
    return (tutorial_data(X[:SAMPLES], y[:SAMPLES], one_hot=True, n_classes=10),
            tutorial_data(X_test[:SAMPLES], y_test[:SAMPLES]))


def _run(benchmark, cls, impl, epochs, training_data, test_data):
    def setup():
        np.random.seed(0)
        random.seed(0)
        return (cls(SIZES),), {}

    def run(net):
        with contextlib.redirect_stdout(io.StringIO()):  # "Epoch 0 complete"
            net.SGD(training_data, epochs, MINI_BATCH_SIZE, ETA, test_data=test_data)

    if QUICK:
        rounds = 1
    else:
        rounds = 5 if impl == "fastbp" else 3  # the NumPy run takes seconds
    benchmark.pedantic(run, setup=setup, rounds=rounds, iterations=1,
                       warmup_rounds=0 if QUICK else 1)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_tutorial_epoch(benchmark, tutorial_sets, impl):
    training_data, _ = tutorial_sets
    benchmark.group = "classic network.py 784-30-10, 1 epoch"
    benchmark.extra_info.update(samples=SAMPLES, mini_batch_size=MINI_BATCH_SIZE, eta=ETA,
                                epochs=1)
    _run(benchmark, IMPLS[impl], impl, 1, training_data, None)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_tutorial_run(benchmark, tutorial_sets, impl):
    training_data, test_data = tutorial_sets
    benchmark.group = (f"classic network.py 784-30-10, {EPOCHS} epochs, "
                       "test set evaluated every epoch")
    benchmark.extra_info.update(samples=SAMPLES, test_samples=len(test_data),
                                mini_batch_size=MINI_BATCH_SIZE, eta=ETA, epochs=EPOCHS)
    _run(benchmark, IMPLS[impl], impl, EPOCHS, training_data, test_data)
