"""The scripts in examples/ run as documented (short versions), each in a fresh process.

Each runs with ``sys.executable``, its absolute path and a temporary working directory,
importing the same fastbp as these tests.
"""

import functools
import importlib.util
import os
import re
import subprocess
import sys

import pytest

import fastbp
from fastbp.datasets import load_fashion_mnist

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastbp.__file__)))
SCRIPTS = ["fashion_mnist.py", "numpy_loop.py", "classic_tutorial.py"]


@functools.cache
def fashion_mnist_missing():
    """Why Fashion-MNIST cannot be loaded, or None (checked once, when a test needs it)."""
    try:
        load_fashion_mnist(flatten=False)
    except FileNotFoundError as exc:
        return str(exc)
    return None


def require_fashion_mnist():
    reason = fashion_mnist_missing()
    if reason:
        pytest.skip(f"Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist "
                    f"or set FASTBP_DATA): {reason}")


def run(script, *args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")) if p)}
    env.setdefault("OMP_NUM_THREADS", "1")
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args],
                            capture_output=True, text=True, timeout=300, cwd=cwd, env=env,
                            check=False)
    assert result.returncode == 0, f"{script} {args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, tmp_path):
    out = run(script, "--help", cwd=tmp_path)
    assert "--epochs" in out


def test_fashion_mnist(tmp_path):
    require_fashion_mnist()
    args = ["--epochs", "1", "--quick", "--hidden", "32"]
    if importlib.util.find_spec("matplotlib") is not None:
        args += ["--plot", "curves.png"]
    out = run("fashion_mnist.py", *args, cwd=tmp_path).splitlines()
    assert out[0].startswith("Network(sizes=[784, 32, 10]")
    assert out[1].startswith("10000 training, 2000 validation, 10000 test samples; 1 epochs")
    assert re.fullmatch(r"epoch 1/1: loss \d\.\d{4}, accuracy \d\.\d{4}, val_loss \d\.\d{4}, "
                        r"val_accuracy \d\.\d{4} \(\d+\.\d\d s\)", out[2]), out[2]
    match = re.fullmatch(r"test accuracy (\d\.\d{4}), test loss \d\.\d{4} \(trained in [\d.]+ s\)",
                         out[3])
    assert match, out[3]
    assert float(match.group(1)) > 0.6
    if "--plot" in args:
        assert out[4] == "plot saved to curves.png"
        assert (tmp_path / "curves.png").stat().st_size > 0


@pytest.mark.parametrize("backend, module", [("numpy", "fastbp.reference"),
                                             ("fastbp", "fastbp.kernels")])
def test_numpy_loop(backend, module, tmp_path):
    out = run("numpy_loop.py", "--backend", backend, "--data", "digits", "--epochs", "2",
              cwd=tmp_path).splitlines()
    assert out[0].startswith(f"backend {backend} ({module}); digits: 1348 training samples, "
                             "64-30-10 sigmoid network")
    accuracies = []
    for epoch, line in enumerate(out[1:3], 1):
        match = re.fullmatch(rf"epoch {epoch}: \d+\.\d{{3}} s, test accuracy (\d\.\d{{4}})", line)
        assert match, line
        accuracies.append(float(match.group(1)))
    assert accuracies[-1] > 0.7
    assert re.fullmatch(rf"{backend}: \d+\.\d{{3}} s per epoch on average", out[3]), out[3]


def test_numpy_loop_fashion_mnist(tmp_path):
    require_fashion_mnist()
    out = run("numpy_loop.py", "--backend", "fastbp", "--epochs", "1", "--quick",
              cwd=tmp_path).splitlines()
    assert out[0].startswith("backend fastbp (fastbp.kernels); Fashion-MNIST: 10000 training")
    assert re.fullmatch(r"epoch 1: \d+\.\d{3} s, test accuracy \d\.\d{4}", out[1]), out[1]


@pytest.mark.parametrize("data", ["fashion-mnist", "digits"])
def test_classic_tutorial(data, tmp_path):
    if data == "fashion-mnist":
        require_fashion_mnist()
    out = run("classic_tutorial.py", "--epochs", "2", "--quick", "--data", data, "--seed", "0",
              cwd=tmp_path).splitlines()
    n_train, n_test, sizes = {"fashion-mnist": (10000, 2000, "[784, 30, 10]"),
                              "digits": (1348, 449, "[64, 30, 10]")}[data]
    assert out[0] == f"{n_train} training and {n_test} test samples, network {sizes}"
    counts = []
    for j, line in enumerate(out[1:3]):
        match = re.fullmatch(rf"Epoch {j}: (\d+) / {n_test}", line)
        assert match, line
        counts.append(int(match.group(1)))
    match = re.fullmatch(rf"2 epochs in [\d.]+ s; final: (\d+) / {n_test} test samples right",
                         out[3])
    assert match, out[3]
    assert int(match.group(1)) == counts[-1]
    assert counts[-1] > n_test / 2
