"""Benchmark configuration: threads, data sizes, and what ran where.

``python benchmarks/compare.py`` runs the suites and prints the tables of the README;
``pytest benchmarks/ --benchmark-only`` runs them alone.

Environment (read by _config.py):

- ``FASTBP_BENCH_THREADS`` (default 2): the threads of every contender. fastbp's
  (``fastbp.set_num_threads``), PyTorch's (``torch.set_num_threads``), and the BLAS of
  NumPy and SciPy (threadpoolctl, for the lean NumPy loop, ``np.matmul`` and
  scikit-learn); with 1, XLA is asked for one thread too (``XLA_FLAGS``, set before JAX
  is imported, unless already set).
- ``FASTBP_BENCH_QUICK=1``: a few hundred to a few thousand samples and one round per
  benchmark, to check that every benchmark runs. Its figures mean nothing.

The benchmark JSON's ``machine_info`` records the CPU model and its vector extensions,
the thread count, the versions of Python, NumPy, SciPy, JAX, PyTorch and scikit-learn,
fastbp's build and the BLAS thread pools.
"""

import importlib.util
import os
import platform

import numpy as np
import pytest
from _config import QUICK, THREADS, synthetic_mnist

# XLA reads its flags when JAX first starts its CPU client: before any benchmark imports it.
if THREADS == 1 and "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                               "intra_op_parallelism_threads=1")


@pytest.fixture(scope="session", autouse=True)
def _same_threads_for_everyone():
    """Every contender gets FASTBP_BENCH_THREADS threads, for the whole session."""
    from threadpoolctl import threadpool_limits

    import fastbp

    fastbp.set_num_threads(THREADS)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(THREADS)
    with threadpool_limits(limits=THREADS, user_api="blas"):
        yield THREADS
    fastbp.set_num_threads(None)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags():
    """The x86 vector extensions the CPU reports (from /proc/cpuinfo; empty elsewhere)."""
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512_bf16", "amx_tile")
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in flags]
    except OSError:
        pass
    return []


def _version(module):
    if importlib.util.find_spec(module) is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version({"sklearn": "scikit-learn"}.get(module, module))
    except PackageNotFoundError:
        return None


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record the CPU, threads, versions and fastbp's build in the benchmark metadata."""
    import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS, the one fastbp calls)
    from threadpoolctl import threadpool_info

    import fastbp

    machine_info["cpu_model"] = _cpu_model()
    machine_info["cpu_vector_extensions"] = _cpu_flags()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["bench_threads"] = THREADS
    machine_info["bench_quick"] = QUICK
    machine_info["threadpool_info"] = threadpool_info()
    machine_info["fastbp_build_info"] = fastbp.build_info()
    machine_info["fastbp_isa_env"] = os.environ.get("FASTBP_ISA")
    machine_info["xla_flags"] = os.environ.get("XLA_FLAGS")
    machine_info["numpy_version"] = np.__version__
    machine_info["versions"] = {m: _version(m) for m in
                                ("numpy", "scipy", "jax", "jaxlib", "torch", "sklearn",
                                 "threadpoolctl", "onnxruntime")}


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
        X, y = synthetic_mnist(60000, np.float32)
    return X, y


@pytest.fixture(scope="session")
def fashion_mnist():
    """Fashion-MNIST ((X, y), (X_test, y_test)) as float32; skips if it is not installed."""
    from fastbp.datasets import load_fashion_mnist

    try:
        return load_fashion_mnist()
    except FileNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST is not installed ({exc}); "
                    "apt-get install dataset-fashion-mnist or set FASTBP_DATA")
