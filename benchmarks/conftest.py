"""Benchmark configuration: what ran where, recorded with every result.

``pytest benchmarks/ --benchmark-only`` runs the suites; ``python benchmarks/compare.py``
runs them and prints the Markdown table of medians and ratios shown in the README.
"""

import numpy as np
import pytest


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record BLAS/OpenMP thread pools and fastbp's build in the benchmark metadata."""
    import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS, the one fastbp calls)
    from threadpoolctl import threadpool_info

    import fastbp

    machine_info["threadpool_info"] = threadpool_info()
    machine_info["fastbp_build_info"] = fastbp.build_info()
    machine_info["numpy_version"] = np.__version__


@pytest.fixture(scope="session")
def fashion_mnist_train():
    """Fashion-MNIST training images and labels (float32), or random data of that shape.

    Timing hardly depends on the values, but relu sparsity does a little, so real data
    is used when it is installed.
    """
    from fastbp.datasets import load_fashion_mnist

    try:
        (X, y), _ = load_fashion_mnist()
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        X = rng.random((60000, 784), dtype=np.float32)
        y = rng.integers(0, 10, 60000)
    return X, y
