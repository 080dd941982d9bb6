"""Each public kernel against its fastbp.reference twin, float32 and float64.

Groups are named ``kernel dtype shape`` so fastbp and NumPy sit side by side.
Shapes (n samples, n_in, n_out): batch sizes 1, 10, 32, 128, 256 and a large block.
"""

import numpy as np
import pytest

from fastbp import kernels, reference

IMPLEMENTATIONS = {"fastbp": kernels, "numpy": reference}
SHAPES = {
    "small": (10, 784, 30),     # batch 10 on the classic 784-30-10 network
    "b32": (32, 784, 100),
    "medium": (128, 784, 128),
    "large": (256, 1024, 1024),
}
DTYPES = {"float32": np.float32, "float64": np.float64}


def _data(shape, dtype):
    n, n_in, n_out = shape
    rng = np.random.default_rng(0)
    return {
        "A_prev": rng.random((n, n_in)).astype(dtype),
        "W": (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype),
        "b": rng.standard_normal(n_out).astype(dtype),
        "delta": rng.standard_normal((n, n_out)).astype(dtype),
        "A": rng.random((n, n_out)).astype(dtype),
    }


params = pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
shapes = pytest.mark.parametrize("shape", list(SHAPES))
dtypes = pytest.mark.parametrize("dtype", list(DTYPES))


@params
@shapes
@dtypes
def test_dense_forward(benchmark, impl, shape, dtype):
    d = _data(SHAPES[shape], DTYPES[dtype])
    out = np.empty((d["A_prev"].shape[0], d["W"].shape[0]), DTYPES[dtype])
    benchmark.group = f"dense_forward sigmoid {dtype} {shape} {SHAPES[shape]}"
    benchmark(IMPLEMENTATIONS[impl].dense_forward, d["A_prev"], d["W"], d["b"], "sigmoid",
              out=out)


@params
@shapes
@dtypes
def test_activation_backward(benchmark, impl, shape, dtype):
    d = _data(SHAPES[shape], DTYPES[dtype])
    out = np.empty_like(d["delta"])
    benchmark.group = f"activation_backward sigmoid {dtype} {shape} {SHAPES[shape]}"
    benchmark(IMPLEMENTATIONS[impl].activation_backward, d["delta"], d["A"], "sigmoid",
              out=out)


@params
@shapes
@dtypes
def test_backward_delta(benchmark, impl, shape, dtype):
    d = _data(SHAPES[shape], DTYPES[dtype])
    out = np.empty_like(d["A_prev"])
    benchmark.group = f"backward_delta sigmoid {dtype} {shape} {SHAPES[shape]}"
    benchmark(IMPLEMENTATIONS[impl].backward_delta, d["delta"], d["W"], d["A_prev"],
              "sigmoid", out=out)


@params
@shapes
@dtypes
def test_weight_gradient(benchmark, impl, shape, dtype):
    d = _data(SHAPES[shape], DTYPES[dtype])
    out = np.empty_like(d["W"])
    bias_out = np.empty_like(d["b"])
    n = d["delta"].shape[0]
    benchmark.group = f"weight_gradient {dtype} {shape} {SHAPES[shape]}"
    benchmark(IMPLEMENTATIONS[impl].weight_gradient, d["delta"], d["A_prev"], out=out,
              bias_out=bias_out, scale=1.0 / n)
