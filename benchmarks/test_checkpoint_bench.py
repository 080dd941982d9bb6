"""The cost of a checkpoint: one ``fastbp.checkpoints.write`` per epoch of ``fit(checkpoint=)``.

A checkpoint write is the network's parameters plus the optimiser's state (nothing for
plain SGD, one vector for momentum, two for Adam) and a little JSON, written to a
temporary file, fsync'ed and renamed: its time is set by the bytes and the disk's
fsync. The networks are the training benchmark's (test_training_bench.py), float32;
compare each median with that network's epoch time there. The files go to a folder
next to this one (the disk the project is on), not to a tmpfs, so fsync is real.
"""

import os
import shutil
import tempfile

import numpy as np
import pytest
from _config import QUICK

import fastbp
from fastbp import checkpoints
from fastbp.optimizers import make_optimizer

# (name, sizes, optimiser settings)
CONFIGS = [
    ("784-30-10 sgd", [784, 30, 10], dict(name="sgd", learning_rate=0.1)),
    ("784-100-10 adam", [784, 100, 10], dict(name="adam", learning_rate=0.001)),
    ("784-128-10 momentum", [784, 128, 10], dict(name="sgd", learning_rate=0.1,
                                                 momentum=0.9)),
    ("784-1024-1024-10 adam", [784, 1024, 1024, 10], dict(name="adam", learning_rate=0.001)),
]
ROUNDS = 1 if QUICK else 10


@pytest.fixture(scope="module")
def disk_folder():
    folder = tempfile.mkdtemp(prefix="checkpoint-bench-", dir=os.path.dirname(__file__))
    yield folder
    shutil.rmtree(folder)


def _network_in_training(sizes, optimizer):
    """A network as fit leaves it after 10 epochs: its optimiser with state, a history."""
    net = fastbp.Network(sizes, activation="relu", output="softmax", loss="cross_entropy",
                         seed=0)
    net._optimizer = make_optimizer(params=net._params, **optimizer)
    rng = np.random.default_rng(0)
    for vector in (getattr(net._optimizer, key, None) for key in ("velocity", "m", "v")):
        if vector is not None:
            vector[...] = rng.random(vector.size, dtype=np.float32)
    net.epochs_trained = 10
    history = {key: [float(x) for x in rng.random(10)] for key in
               ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")}
    settings = checkpoints.fit_settings(optimizer["name"], optimizer["learning_rate"],
                                        optimizer.get("momentum", 0.0), False, 0.9, 0.999,
                                        1e-8, 32, True, 60000, list(history))
    settings.update(run_epochs=20, backend="cython", n_threads=2)
    return net, settings, history


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_checkpoint_write(benchmark, disk_folder, config):
    name, sizes, optimizer = config
    net, settings, history = _network_in_training(sizes, optimizer)
    path = os.path.join(disk_folder, f"{name.replace(' ', '-')}.ckpt")
    benchmark.group = "checkpoint write (per epoch)"
    benchmark.pedantic(checkpoints.write, args=(path, net, settings, history),
                       rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info["bytes"] = os.path.getsize(path)
    loaded = fastbp.Network.load(path)  # what was timed is a valid checkpoint
    assert loaded.epochs_trained == 10


# One epoch of fit with and without checkpoint=, in the same run: the overhead as a ratio.
EPOCH_CONFIGS = [
    ("784-100-10 adam b32", [784, 100, 10], 32, 60000),
    ("784-1024-1024-10 adam b256", [784, 1024, 1024, 10], 256, 15360),
]


@pytest.mark.parametrize("with_checkpoint", [False, True], ids=["plain", "checkpoint"])
@pytest.mark.parametrize("config", EPOCH_CONFIGS, ids=[c[0] for c in EPOCH_CONFIGS])
def test_epoch_with_checkpoint(benchmark, fashion_mnist_train, disk_folder, config,
                               with_checkpoint):
    name, sizes, batch, samples = config
    X, y = fashion_mnist_train
    if QUICK:
        samples //= 20
    X, y = X[:samples], y[:samples]
    path = os.path.join(disk_folder, "epoch.ckpt") if with_checkpoint else None

    def setup():
        net = fastbp.Network(sizes, activation="relu", output="softmax",
                             loss="cross_entropy", seed=0)
        return (net,), {}

    def epoch(net):
        net.fit(X, y, epochs=1, batch_size=batch, learning_rate=0.001, optimizer="adam",
                checkpoint=path)

    benchmark.group = f"epoch {name} ({samples} samples), with and without checkpoint"
    benchmark.pedantic(epoch, setup=setup, rounds=1 if QUICK else 5, iterations=1,
                       warmup_rounds=0 if QUICK else 1)
