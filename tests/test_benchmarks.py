"""Tests of the benchmark harness (benchmarks/): that it measures what it says.

The baselines of the training benchmarks must compute fastbp's training, or their times
compare different work: the lean NumPy loop, JAX's jitted epoch and PyTorch's loop each
train one short epoch from fastbp's initial parameters and must end with fastbp's
parameters (float64, to rounding). The FLOP count behind the efficiency column and the
tables of compare.py are checked on small known inputs. Nothing here is timed.
"""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    # benchmarks/ is not a package: load its modules by path, under private names.
    spec = importlib.util.spec_from_file_location(f"_fastbp_bench_{name}",
                                                  BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


baselines = _load("_baselines")
compare = _load("compare")
Training = baselines.Training

# Small trainings that cover what the benchmarks use and the optimisers' branches; 23
# samples, so every batch size leaves a smaller last batch.
TRAININGS = {
    "sigmoid mse sgd b5": Training((20, 7, 4), "sigmoid", "sigmoid", "mse", 5,
                                   learning_rate=3.0),
    "sigmoid mse sgd b1": Training((20, 7, 4), "sigmoid", "sigmoid", "mse", 1,
                                   learning_rate=0.5),
    "relu softmax adam 2 hidden": Training((20, 9, 6, 4), "relu", "softmax", "cross_entropy",
                                           4, "adam", 0.01),
    "tanh softmax nesterov": Training((20, 9, 4), "tanh", "softmax", "cross_entropy", 4,
                                      momentum=0.9, nesterov=True),
    "relu softmax momentum": Training((20, 9, 4), "relu", "softmax", "cross_entropy", 6,
                                      momentum=0.9),
}
SAMPLES = 23
TOL = dict(rtol=1e-10, atol=1e-12)


def _data(dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((SAMPLES, 20)).astype(dtype)
    y = rng.integers(0, 4, SAMPLES)
    return X, y, baselines.one_hot(y, 4, X.dtype)


def _fastbp_after_one_epoch(training, X, y, dtype="float64"):
    net = training.network(dtype)
    net.fit(X, y, **training.fit_kwargs())
    return net


def _assert_same_parameters(expected, got, **tol):
    assert len(expected.weights) == len(got.weights)
    for a, b in zip(expected.weights + expected.biases, got.weights + got.biases):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, **(tol or TOL))


def _moved(training, net):
    """The epoch changed the parameters (so equality below is not the trivial one)."""
    weights, _ = training.initial_parameters(net.dtype.name)
    return any(not np.allclose(W0, W) for W0, W in zip(weights, net.weights))


# ----- the baselines compute fastbp's training -------------------------------------------


@pytest.mark.parametrize("name", list(TRAININGS))
def test_numpy_loop_trains_as_fastbp(name):
    training = TRAININGS[name]
    X, y, T = _data()
    net = _fastbp_after_one_epoch(training, X, y)
    assert _moved(training, net)
    loop = baselines.NumpyLoop(training, *training.initial_parameters("float64"))
    loop.epoch(X, T)
    _assert_same_parameters(net, loop)


def test_numpy_loop_float32_trains_as_fastbp():
    training = TRAININGS["relu softmax adam 2 hidden"]
    X, y, T = _data("float32")
    net = _fastbp_after_one_epoch(training, X, y, "float32")
    loop = baselines.NumpyLoop(training, *training.initial_parameters("float32"))
    loop.epoch(X, T)
    assert all(W.dtype == np.float32 for W in loop.weights + loop.biases)
    _assert_same_parameters(net, loop, rtol=1e-4, atol=1e-5)


def test_numpy_loop_does_not_change_its_inputs():
    training = TRAININGS["sigmoid mse sgd b5"]
    X, _, T = _data()
    weights, biases = training.initial_parameters("float64")
    saved = [a.copy() for a in weights + biases + [X, T]]
    baselines.NumpyLoop(training, weights, biases).epoch(X, T)
    for a, b in zip(saved, weights + biases + [X, T]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(TRAININGS))
def test_jax_epoch_trains_as_fastbp(name):
    pytest.importorskip("jax")
    training = TRAININGS[name]
    X, y, T = _data()
    net = _fastbp_after_one_epoch(training, X, y)
    jitted = baselines.JaxEpoch(training, *training.initial_parameters("float64"), X, T)
    jitted.epoch()
    _assert_same_parameters(net, jitted)
    # reset() goes back to the start: a second epoch from there is the same epoch.
    jitted.reset()
    jitted.epoch()
    _assert_same_parameters(net, jitted)


def test_jax_epoch_float32_stays_float32():
    pytest.importorskip("jax")
    training = TRAININGS["relu softmax adam 2 hidden"]
    X, y, T = _data("float32")
    net = _fastbp_after_one_epoch(training, X, y, "float32")
    jitted = baselines.JaxEpoch(training, *training.initial_parameters("float32"), X, T)
    jitted.epoch()
    assert all(W.dtype == np.float32 for W in jitted.weights + jitted.biases)
    _assert_same_parameters(net, jitted, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(TRAININGS))
def test_torch_epoch_trains_as_fastbp(name):
    pytest.importorskip("torch")
    training = TRAININGS[name]
    if training.optimizer == "adam":
        # PyTorch adds eps after the bias correction of sqrt(v), fastbp before: with a
        # negligible eps the two are the same step.
        training = Training(**{**training.__dict__, "eps": 1e-14})
    X, y, T = _data()
    net = _fastbp_after_one_epoch(training, X, y)
    loop = baselines.TorchEpoch(training, *training.initial_parameters("float64"), X, T)
    loop.epoch()
    _assert_same_parameters(net, loop, rtol=1e-9, atol=1e-11)


def test_training_rejects_what_the_baselines_do_not_implement():
    with pytest.raises(ValueError, match="hidden"):
        Training((4, 3, 2), hidden="leaky_relu")
    with pytest.raises(ValueError, match="output/loss"):
        Training((4, 3, 2), output="softmax", loss="mse")
    with pytest.raises(ValueError, match="optimizer"):
        Training((4, 3, 2), optimizer="rmsprop")


# ----- FLOP counting -----------------------------------------------------------------------


def test_training_flops():
    # 784-30-10: forward and weight gradient of both layers, input error of the second.
    assert baselines.training_flops((784, 30, 10), 1) == 4 * 784 * 30 + 6 * 30 * 10
    assert baselines.training_flops([784, 30, 10], 60000) == 60000 * (94080 + 1800)
    assert baselines.training_flops((784, 1024, 1024, 10), 2) == 2 * (
        4 * 784 * 1024 + 6 * 1024 * 1024 + 6 * 1024 * 10)


def test_training_flops_counts_the_loops_matrix_products(monkeypatch):
    """The count is the FLOPs of the lean loop's matrix products, counted as it runs."""
    training = TRAININGS["relu softmax adam 2 hidden"]
    X, _, T = _data()
    counted = []
    real_matmul = np.matmul

    class Counting(np.ndarray):
        def __matmul__(self, other):
            a, b = np.asarray(self), np.asarray(other)
            counted.append(2 * a.shape[0] * a.shape[1] * b.shape[1])
            return real_matmul(a, b).view(Counting)

    loop = baselines.NumpyLoop(training, *training.initial_parameters("float64"))
    loop.weights = [W.view(Counting) for W in loop.weights]
    # Every array the loop makes derives from the inputs, the weights or a product:
    # all of them are counting arrays.
    original_epoch = baselines.NumpyLoop.epoch

    def epoch(self, X, T):
        return original_epoch(self, X.view(Counting), T.view(Counting))

    monkeypatch.setattr(baselines.NumpyLoop, "epoch", epoch)
    loop.epoch(X, T)
    assert sum(counted) == baselines.training_flops(training.sizes, SAMPLES)


# ----- compare.py's tables -----------------------------------------------------------------


def _bench(group, impl, median, **extra):
    return {"group": group, "name": f"test[{impl}]", "param": impl,
            "params": {"impl": impl}, "stats": {"median": median}, "extra_info": extra}


def _results():
    flops = baselines.training_flops((784, 30, 10), 60000)  # 5.7528e9
    epoch = dict(config="784-30-10 sigmoid b10", dtype="float32", samples=60000,
                 batch_size=10, optimizer="sgd", flops=flops)
    benchmarks = [
        {"group": "np.matmul 2048^3 float32", "name": "test_matmul_rate[float32]",
         "param": "float32", "params": {"dtype": "float32"}, "stats": {"median": 0.05},
         "extra_info": {"flops": 2 * 2048 ** 3, "dtype": "float32", "n": 2048}},
        _bench("epoch 784-30-10 sigmoid b10 float32", "fastbp", 0.1, **epoch),
        _bench("epoch 784-30-10 sigmoid b10 float32", "numpy", 0.25, **epoch),
        _bench("epoch 784-30-10 sigmoid b10 float32", "jax", 0.15, **epoch),
        _bench("epoch 784-30-10 sigmoid b10 float32", "torch", 0.5, **epoch),
        _bench("classic network.py", "fastbp", 0.02),
        _bench("classic network.py", "numpy", 0.4),
        _bench("MLPClassifier fit", "fastbp", 2.0, test_accuracy=0.875),
        _bench("MLPClassifier fit", "sklearn", 8.0, test_accuracy=0.871),
        {"group": "checkpoint write", "name": "test_write[a]", "param": "a",
         "params": {"config": "a"}, "stats": {"median": 0.003}, "extra_info": {}},
    ]
    machine = {"cpu_model": "Test CPU", "cpu_count": 2, "bench_threads": 2,
               "cpu_vector_extensions": ["avx2", "fma"], "python_version": "3.11.7",
               "versions": {"numpy": "2.4.6", "jax": None},
               "fastbp_build_info": {"version": "1.0", "openmp": True}}
    return {"benchmarks": benchmarks, "machine_info": machine}


def test_compare_training_table():
    lines = compare.training_table(_results())
    assert lines[0] == ("| epoch | dtype | samples | fastbp | lean NumPy | JAX | PyTorch | "
                        "vs lean NumPy | vs JAX | vs PyTorch |")
    # matmul: 2 * 2048^3 / 0.05 s = 343.6 GFLOP/s; fastbp: 5.7528e9 / 0.1 s = 57.5 GFLOP/s,
    # 17% of it; lean NumPy 23.0 GFLOP/s, 7%.
    assert lines[2] == ("| 784-30-10 sigmoid b10 | float32 | 60,000 | 100 ms (17%) | "
                        "250 ms (7%) | 150 ms (11%) | 500 ms (3%) | 2.50× | 1.50× | 5.00× |")
    assert len(lines) == 3


def test_compare_other_table_and_notes():
    lines, notes = compare.other_table(_results())
    assert lines[0] == "| benchmark | fastbp | numpy | sklearn | ratio |"
    assert "| classic network.py | 20 ms | 400 ms |  | 20.00 (numpy / fastbp) |" in lines
    assert "| MLPClassifier fit | 2.000 s |  | 8.000 s | 4.00 (sklearn / fastbp) |" in lines
    assert "| checkpoint write [a] | 3 ms |" in lines
    assert notes == ["MLPClassifier fit: test accuracy fastbp 0.8750, sklearn 0.8710"]


def test_compare_from_json(tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_results()))
    assert compare.main(["--from-json", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Machine: Test CPU (2 cores; avx2, fma), 2 threads each, "
                          "Python 3.11.7, numpy 2.4.6, fastbp 1.0 (OpenMP on)\n")
    assert "np.matmul float32 (2048^3 unless quick): 343.6 GFLOP/s" in out
    assert "| 784-30-10 sigmoid b10 | float32 |" in out
    assert "QUICK MODE" not in out


def test_compare_marks_quick_runs(tmp_path, capsys):
    results = _results()
    results["machine_info"]["bench_quick"] = True
    assert "QUICK MODE" in compare.report(results)


def test_fmt_seconds():
    assert compare.fmt_seconds(1.23456) == "1.235 s"
    assert compare.fmt_seconds(0.0123456) == "12.3 ms"
    assert compare.fmt_seconds(0.0000123) == "12.3 µs"

