"""The classic tutorial's network.py: fastbp.compat against the pure-NumPy original.

One epoch of chapter 1's recipe (784-30-10 sigmoid network, quadratic cost, mini-batch
10, eta 3.0) on 10,000 Fashion-MNIST samples (random data of that shape when the data
set is not installed), called the tutorial's way: ``net.SGD(training_data, 1, 10, 3.0)``
on a list of (x, y) column vectors. ``fastbp`` is :class:`fastbp.compat.network.Network`
(its time includes turning the lists into arrays, as every ``SGD`` call does);
``numpy`` is the tutorial's algorithm in NumPy (``_tutorial_network.py``). Each round
starts from a fresh network with the same seeds (not timed).
"""

import contextlib
import io
import random

import numpy as np
import pytest
from _tutorial_network import TutorialNetwork

from fastbp.compat import network, tutorial_data

SAMPLES = 10_000
SIZES = [784, 30, 10]
MINI_BATCH_SIZE = 10
ETA = 3.0
IMPLS = {"fastbp": network.Network, "numpy": TutorialNetwork}


@pytest.fixture(scope="module")
def training_data(fashion_mnist_train):
    X, y = fashion_mnist_train
    return tutorial_data(X[:SAMPLES], y[:SAMPLES], one_hot=True, n_classes=10)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_tutorial_epoch(benchmark, training_data, impl):
    benchmark.group = "classic network.py 784-30-10, 1 epoch"
    benchmark.extra_info.update(samples=SAMPLES, mini_batch_size=MINI_BATCH_SIZE, eta=ETA)
    cls = IMPLS[impl]

    def setup():
        np.random.seed(0)
        random.seed(0)
        return (cls(SIZES),), {}

    def epoch(net):
        with contextlib.redirect_stdout(io.StringIO()):  # "Epoch 0 complete"
            net.SGD(training_data, 1, MINI_BATCH_SIZE, ETA)

    rounds = 5 if impl == "fastbp" else 3  # the NumPy epoch takes seconds
    benchmark.pedantic(epoch, setup=setup, rounds=rounds, iterations=1, warmup_rounds=1)
