"""The benchmarks' settings, from the environment, and their synthetic data.

- ``FASTBP_BENCH_THREADS`` (default 2): the threads of every contender (conftest.py
  applies it).
- ``FASTBP_BENCH_QUICK=1``: a few hundred to a few thousand samples and one round per
  benchmark, to check that every benchmark runs. Its figures mean nothing.
"""

import os

import numpy as np


def bench_threads():
    value = os.environ.get("FASTBP_BENCH_THREADS", "2")
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"FASTBP_BENCH_THREADS must be a positive int, got {value!r}") from None
    if threads < 1:
        raise ValueError(f"FASTBP_BENCH_THREADS must be a positive int, got {value!r}")
    return threads


THREADS = bench_threads()
QUICK = os.environ.get("FASTBP_BENCH_QUICK", "") not in ("", "0")


def synthetic_mnist(samples, dtype, seed=0):
    """Random data of MNIST's shape: (samples, 784) pixels in [0, 1) and labels 0-9.

    An epoch's time does not depend on the values (dense products, no sparsity tricks),
    so the training epochs run on these; accuracy comparisons use Fashion-MNIST."""
    rng = np.random.default_rng(seed)
    X = rng.random((samples, 784)).astype(dtype)
    y = rng.integers(0, 10, samples)
    return X, y
