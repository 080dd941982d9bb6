"""One epoch of training, fastbp's engine against the NumPy reference (and PyTorch).

The configurations are issue 6's table. Each round builds a fresh network (not timed)
and trains one epoch, float32, with fastbp's default threads (all cores). PyTorch (CPU)
is a third column when it is installed. scikit-learn's MLPClassifier, the end-to-end
reference on Fashion-MNIST, is in test_sklearn_bench.py.
"""

import importlib.util
import time

import numpy as np
import pytest

import fastbp

# (name, sizes, hidden, output, loss, batch, samples)
CONFIGS = [
    ("784-30-10 b1", [784, 30, 10], "sigmoid", "sigmoid", "mse", 1, 6000),
    ("784-30-10 b10", [784, 30, 10], "sigmoid", "sigmoid", "mse", 10, 60000),
    ("784-100-10 b32", [784, 100, 10], "relu", "softmax", "cross_entropy", 32, 60000),
    ("784-128-10 b128", [784, 128, 10], "relu", "softmax", "cross_entropy", 128, 60000),
    ("784-1024-1024-10 b256", [784, 1024, 1024, 10], "relu", "softmax", "cross_entropy",
     256, 15360),
]
ROUNDS = 5
HAVE_TORCH = importlib.util.find_spec("torch") is not None
IMPLS = ["fastbp", "numpy"] + (["torch"] if HAVE_TORCH else [])


def training_flops_per_sample(sizes):
    """6 FLOPs per weight per sample (forward, weight gradient, input gradient), less the
    input gradient of the first layer, which training does not need."""
    weights = sum(o * i for i, o in zip(sizes[:-1], sizes[1:]))
    return 6 * weights - 2 * sizes[0] * sizes[1]


def _fastbp_epoch(benchmark, X, y, sizes, hidden, output, loss, batch, backend):
    def setup():
        net = fastbp.Network(sizes, activation=hidden, output=output, loss=loss, seed=0,
                             backend=backend)
        return (net,), {}

    def epoch(net):
        net.fit(X, y, epochs=1, batch_size=batch, learning_rate=0.1)

    benchmark.pedantic(epoch, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def _torch_epoch(benchmark, X, y, sizes, hidden, output, loss, batch):
    import torch

    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    acts = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}

    def setup():
        layers = []
        for l, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(i, o))
            if l < len(sizes) - 2:
                layers.append(acts[hidden]())
        if output == "sigmoid":
            layers.append(torch.nn.Sigmoid())
        model = torch.nn.Sequential(*layers)
        return (model, torch.optim.SGD(model.parameters(), lr=0.1)), {}

    def epoch(model, opt):
        perm = torch.randperm(len(Xt))
        eye = torch.eye(sizes[-1])
        for start in range(0, len(Xt), batch):
            idx = perm[start:start + batch]
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad()
            out = model(xb)
            if loss == "mse":
                cost = 0.5 * ((out - eye[yb]) ** 2).sum() / len(idx)
            else:
                cost = torch.nn.functional.cross_entropy(out, yb)
            cost.backward()
            opt.step()

    benchmark.pedantic(epoch, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_training_epoch(benchmark, fashion_mnist_train, config, impl):
    name, sizes, hidden, output, loss, batch, samples = config
    X, y = fashion_mnist_train
    X, y = np.ascontiguousarray(X[:samples]), y[:samples]
    benchmark.group = f"epoch {name} ({samples} samples)"
    benchmark.extra_info.update(samples=samples, flops_per_sample=training_flops_per_sample(sizes))
    if impl == "torch":
        _torch_epoch(benchmark, X, y, sizes, hidden, output, loss, batch)
    else:
        _fastbp_epoch(benchmark, X, y, sizes, hidden, output, loss, batch,
                      "cython" if impl == "fastbp" else "numpy")


@pytest.mark.parametrize("shape", [(2048, 2048, 2048), (256, 1024, 1024)],
                         ids=["2048^3", "256x1024x1024"])
def test_matmul_rate(benchmark, shape):
    """This machine's np.matmul float32 rate, the yardstick for the training FLOP rate:
    at a large square size, and at the shape of the largest network's middle layer."""
    m, k, n = shape
    rng = np.random.default_rng(0)
    A = rng.random((m, k), dtype=np.float32)
    B = rng.random((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    benchmark.group = f"np.matmul float32 {m}x{k}x{n}"
    benchmark.extra_info["flops"] = 2 * m * k * n
    benchmark.pedantic(np.matmul, args=(A, B), kwargs={"out": out}, rounds=20,
                       warmup_rounds=2)
