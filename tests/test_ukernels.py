"""fastbp's micro-kernels (src/ukernels/, fastbp/_isa.py) on every ISA this CPU runs.

Each ISA is forced at run time with fastbp._isa.set_isa (the mechanism FASTBP_ISA
uses; a forced ISA runs every shape, no BLAS crossover) and the three products of a
dense layer are checked against fastbp.reference for both dtypes, sizes 1, 3, 17, 100
and 1000 in every dimension, with and without bias, every activation, the edge tiles,
the fused update epilogue and NaN handling; then the engine trains one run per ISA
and must match backend="numpy"; a subprocess checks that FASTBP_ISA is honoured.
"""

import os
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastbp
from fastbp import _isa, kernels, reference

DTYPES = [np.float32, np.float64]
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]
# Relative to the sum of |terms| of each output: a few ulps times sqrt(k) at k = 1000.
RTOL = {np.float32: 2e-6, np.float64: 1e-14}

ISAS = [pytest.param(name, marks=pytest.mark.skipif(
            name not in _isa.available_isas(), reason=f"this CPU cannot run {name}"))
        for name in ("avx512", "avx2", "generic", "blas")]

# (n samples, n_in, n_out): every size of 1, 3, 17, 100, 1000 in every position, and
# tile edges of every kernel (rows and columns 1 short and 1 past a tile).
SHAPES = [
    (1, 1, 1), (3, 17, 100), (17, 100, 3), (100, 3, 17), (1000, 17, 3), (3, 1000, 17),
    (17, 3, 1000), (100, 100, 100), (1, 1000, 3), (17, 1000, 100), (1000, 100, 1),
    (9, 33, 7), (7, 31, 13), (8, 32, 6), (5, 15, 5), (13, 65, 25),
]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]


@contextmanager
def isa_restored():
    """Put back the ISA found on entry: the one FASTBP_ISA forced for the whole run, or
    the automatic choice (setting "auto" instead would undo FASTBP_ISA for every later
    test)."""
    previous = _isa.get_isa() if _isa.isa_forced() else "auto"
    try:
        yield
    finally:
        _isa.set_isa(previous)


@pytest.fixture
def restore_isa():
    with isa_restored():
        yield


@pytest.fixture(params=ISAS)
def isa(request, restore_isa):
    _isa.set_isa(request.param)
    assert _isa.get_isa() == request.param
    return request.param


def layer(dtype, n, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    A_prev = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    return A_prev, W, b, delta


def assert_close_to(result, expected, bound, dtype):
    """|result - expected| <= RTOL * bound elementwise (bound: the sum of |terms|)."""
    err = np.abs(result.astype(np.float64) - expected.astype(np.float64))
    tol = RTOL[dtype] * (bound + 1e-30) + np.finfo(dtype).tiny
    worst = np.unravel_index(np.argmax(err - tol), err.shape) if err.size else None
    assert np.all(err <= tol), (f"max excess at {worst}: {result[worst]} vs {expected[worst]}"
                                f" (bound {bound[worst]})")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_forward_matches_reference(isa, dtype, shape, bias, activation):
    A_prev, W, b, _ = layer(dtype, *shape)
    b = b if bias else None
    result = kernels.dense_forward(A_prev, W, b, activation)
    expected = reference.dense_forward(A_prev, W, b, activation)
    bound = np.abs(A_prev).astype(np.float64) @ np.abs(W).T.astype(np.float64)
    if b is not None:
        bound += np.abs(b)
    if activation == "softmax":  # every output depends on the whole row
        bound = np.repeat(bound.max(axis=1, keepdims=True), bound.shape[1], axis=1)
    assert result.dtype == dtype
    assert_close_to(result, expected, bound, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_delta_matches_reference(isa, dtype, shape, activation):
    Z, W, _, delta = layer(dtype, *shape)
    # A_prev is an activation's output, as in training (the derivative reads it).
    A_prev = reference.dense_forward(Z, np.eye(Z.shape[1], dtype=dtype), None, activation)
    result = kernels.backward_delta(delta, W, A_prev, activation)
    expected = reference.backward_delta(delta, W, A_prev, activation)
    bound = np.abs(delta).astype(np.float64) @ np.abs(W).astype(np.float64)
    if activation == "softmax":
        bound = np.repeat(bound.max(axis=1, keepdims=True), bound.shape[1], axis=1)
    assert_close_to(result, expected, bound, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_weight_gradient_matches_reference(isa, dtype, shape):
    A_prev, _, _, delta = layer(dtype, *shape)
    n_out, n_in = delta.shape[1], A_prev.shape[1]
    out = np.full((n_out, n_in), np.nan, dtype)  # beta = 0: out is not read
    result = kernels.weight_gradient(delta, A_prev, out=out, scale=0.5)
    expected = reference.weight_gradient(delta, A_prev, scale=0.5)
    bound = 0.5 * np.abs(delta).T.astype(np.float64) @ np.abs(A_prev).astype(np.float64)
    assert result is out
    assert_close_to(result, expected, bound, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_weight_gradient_update_epilogue_matches_a_numpy_update(isa, dtype, shape):
    """out := W + scale * delta.T @ A_prev, applied in the micro-kernel's store (SGD)."""
    A_prev, W, _, delta = layer(dtype, *shape)
    lr, n = 0.3, shape[0]
    out = W.copy()
    kernels.weight_gradient(delta, A_prev, out=out, scale=-lr / n, accumulate=True)
    expected = W.astype(np.float64) - (lr / n) * (delta.T.astype(np.float64)
                                                 @ A_prev.astype(np.float64))
    bound = np.abs(W) + (lr / n) * (np.abs(delta).T.astype(np.float64) @ np.abs(A_prev))
    assert_close_to(out, expected, bound, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "identity", "sigmoid"])
def test_nan_in_the_error_stays_visible_through_the_fused_derivative(isa, dtype, activation):
    A_prev, W, _, delta = layer(dtype, 9, 40, 7)
    A_prev = np.where(A_prev > 0, A_prev, 0).astype(dtype)  # relu output: zeros included
    delta[2, 3] = np.nan
    result = kernels.backward_delta(delta, W, A_prev, activation)
    assert np.isnan(result[2]).all()
    assert np.isfinite(np.delete(result, 2, axis=0)).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_one_and_two_threads_give_identical_products(isa, dtype):
    A_prev, W, b, delta = layer(dtype, 200, 300, 150)
    saved = fastbp.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            fastbp.set_num_threads(threads)
            results.append((kernels.dense_forward(A_prev, W, b, "tanh"),
                            kernels.backward_delta(delta, W, np.tanh(A_prev), "tanh"),
                            kernels.weight_gradient(delta, A_prev)))
    finally:
        fastbp.set_num_threads(saved)
    if isa == "blas":  # BLAS's own blocking may differ with the split
        return
    for one, two in zip(*results):
        assert_array_equal(one, two)


ENGINE_RUNS = [
    pytest.param({"optimizer": "sgd"}, {"l2": 1e-3}, id="sgd-l2"),
    pytest.param({"optimizer": "sgd", "momentum": 0.9}, {}, id="momentum"),
    pytest.param({"optimizer": "sgd", "momentum": 0.9, "nesterov": True}, {"bias": False},
                 id="nesterov-nobias"),
    pytest.param({"optimizer": "adam", "learning_rate": 0.01}, {"l2": 1e-4}, id="adam-l2"),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fit_kwargs,net_kwargs", ENGINE_RUNS)
@pytest.mark.parametrize("hidden", ["relu", "sigmoid", "tanh"])
def test_engine_trains_what_the_numpy_backend_trains(isa, dtype, fit_kwargs, net_kwargs, hidden):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 37))
    y = rng.integers(0, 5, 300)
    nets = []
    for backend in ("cython", "numpy"):
        net = fastbp.Network([37, 33, 17, 5], activation=hidden, output="softmax",
                             loss="cross_entropy", dtype=dtype, seed=2, backend=backend,
                             **net_kwargs)
        net.fit(X, y, epochs=2, batch_size=19, **{"learning_rate": 0.1, **fit_kwargs})
        nets.append(net)
    rtol = 2e-4 if dtype == "float32" else 1e-9
    for w_engine, w_numpy in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(w_engine, w_numpy, rtol=rtol, atol=rtol)
    for b_engine, b_numpy in zip(nets[0].biases, nets[1].biases):
        if b_numpy is None:
            assert b_engine is None
        else:
            np.testing.assert_allclose(b_engine, b_numpy, rtol=rtol, atol=rtol)


# ------------------------------------------------------------------- the ISA switch


def test_auto_chooses_the_best_isa_unforced(restore_isa):
    _isa.set_isa("auto")
    available = _isa.available_isas()
    best = "avx512" if "avx512" in available else ("avx2" if "avx2" in available else "blas")
    assert _isa.get_isa() == best
    assert _isa.isa_forced() is False


def test_set_isa_forces_every_compiled_module(restore_isa):
    from fastbp import _engine, _kernels
    _isa.set_isa("generic")
    assert _kernels._isa_state() == (_isa.ISA_CODES["generic"], True)
    assert _engine._isa_state() == (_isa.ISA_CODES["generic"], True)
    assert fastbp.build_info()["isa"] == "generic"
    assert fastbp.build_info()["isa_forced"] is True


def test_a_forced_isa_is_put_back_after_a_test_forces_another():
    """Under FASTBP_ISA=generic, a test that forces another ISA must leave generic on."""
    with isa_restored():
        _isa.set_isa("generic")
        with isa_restored():
            _isa.set_isa("blas")
        assert _isa.get_isa() == "generic" and _isa.isa_forced() is True


def test_set_isa_rejects_what_it_cannot_run():
    with pytest.raises(TypeError, match="isa must be a string"):
        _isa.set_isa(3)
    with pytest.raises(ValueError, match="isa must be one of"):
        _isa.set_isa("sse9")
    missing = [name for name in ("avx2", "avx512") if name not in _isa.available_isas()]
    for name in missing:
        with pytest.raises(ValueError, match="not supported by this CPU"):
            _isa.set_isa(name)
    assert _isa.get_isa() in _isa.available_isas()


def _isa_in_subprocess(value):
    env = dict(os.environ, FASTBP_ISA=value)
    code = "import fastbp; info = fastbp.build_info(); print(info['isa'], info['isa_forced'])"
    # Run beside the fastbp being tested: from a repository's root, its unbuilt fastbp/
    # would shadow an installed one.
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastbp.__file__)))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=package_parent)


@pytest.mark.parametrize("name", ["generic", "blas", "auto"])
def test_fastbp_isa_environment_variable_is_honoured(name):
    proc = _isa_in_subprocess(name)
    assert proc.returncode == 0, proc.stderr
    isa, forced = proc.stdout.split()
    if name == "auto":
        assert forced == "False" and isa in _isa.available_isas()
    else:
        assert (isa, forced) == (name, "True")
    assert "FASTBP_ISA" not in proc.stderr


def test_a_bad_fastbp_isa_warns_and_keeps_the_automatic_choice():
    proc = _isa_in_subprocess("quantum")
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning: FASTBP_ISA ignored: isa must be one of" in proc.stderr
    assert proc.stdout.split()[1] == "False"


def _at_offset(a, offset):
    """A C-contiguous copy of ``a`` starting ``offset`` elements past a 64-byte boundary."""
    size = a.size + offset + 64
    raw = np.empty(size, a.dtype)
    skip = (-raw.ctypes.data % 64) // a.itemsize
    view = raw[skip + offset:skip + offset + a.size].reshape(a.shape)
    view[...] = a
    return view


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("offsets", [(0, 0, 0), (4, 4, 4), (1, 0, 3), (0, 5, 0), (3, 3, 7)])
@pytest.mark.parametrize("shape", [(13, 256, 9), (40, 512, 200), (9, 64, 130)],
                         ids=["13x256x9", "40x512x200", "9x64x130"])
def test_products_at_every_alignment(isa, dtype, offsets, shape):
    """The kernels align their loops to the data (masked first steps, a narrower first
    panel): every starting offset must give the reference's result."""
    A_prev, W, b, delta = layer(dtype, *shape)
    A_al, W_al, D_al = (_at_offset(x, o) for x, o in zip((A_prev, W, delta), offsets))
    n_out, n_in = W.shape
    out = _at_offset(np.zeros((shape[0], n_out), dtype), offsets[2])
    kernels.dense_forward(A_al, W_al, b, "identity", out=out)
    bound = np.abs(A_prev).astype(np.float64) @ np.abs(W).T + np.abs(b)
    assert_close_to(out, reference.dense_forward(A_prev, W, b, "identity"), bound, dtype)
    A_relu = _at_offset(np.maximum(A_prev, 0), offsets[1])
    out = _at_offset(np.zeros((shape[0], n_in), dtype), offsets[0])
    kernels.backward_delta(D_al, W_al, A_relu, "relu", out=out)
    bound = np.abs(delta).astype(np.float64) @ np.abs(W)
    assert_close_to(out, reference.backward_delta(delta, W, np.maximum(A_prev, 0), "relu"),
                    bound, dtype)
    out = _at_offset(W, offsets[2])
    kernels.weight_gradient(D_al, A_al, out=out, scale=-0.01, accumulate=True)
    expected = W.astype(np.float64) - 0.01 * (delta.T.astype(np.float64) @ A_prev)
    bound = np.abs(W) + 0.01 * (np.abs(delta).T.astype(np.float64) @ np.abs(A_prev))
    assert_close_to(out, expected, bound, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_results_do_not_depend_on_where_the_arrays_start(isa, dtype):
    """Bit-identical products whatever the operands' alignment: reruns and resumes, whose
    buffers land elsewhere, must train bit-identically."""
    A_prev, W, b, delta = layer(dtype, 37, 300, 70)
    results = []
    for offsets in [(0, 0, 0), (4, 4, 4), (1, 2, 3), (3, 0, 1)]:
        A_al, W_al, D_al = (_at_offset(x, o) for x, o in zip((A_prev, W, delta), offsets))
        G = _at_offset(W, offsets[2])
        kernels.weight_gradient(D_al, A_al, out=G, scale=-0.01, accumulate=True)
        results.append((kernels.dense_forward(A_al, W_al, b, "sigmoid"),
                        kernels.backward_delta(D_al, W_al, _at_offset(A_prev, offsets[1]),
                                               "tanh"),
                        G.copy()))
    for other in results[1:]:
        for first, second in zip(results[0], other):
            assert_array_equal(first, second)
