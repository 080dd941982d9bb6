"""Tests for the command line: ``python -m fastbp train`` and ``python -m fastbp info``."""

import contextlib
import gzip
import io
import os
import re
import struct
import subprocess
from pathlib import Path
import sys

import numpy as np
import pytest

import fastbp
import fastbp._threads
import fastbp.cli
from fastbp import Network
from fastbp.cli import main
from fastbp.datasets import load_digits, load_fashion_mnist

ORIGINAL_TRAIN = fastbp.cli.train
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastbp.__file__)))
FINAL = re.compile(r"^test accuracy (\d\.\d{4}), test loss (\d+\.\d{4}), best epoch (\d+) "
                   r"\((\d\.\d{4})\); trained in \d+\.\d+ s$")


@pytest.fixture(autouse=True)
def train_prints_to_current_stdout(monkeypatch):
    """fastbp.cli.train's ``out=sys.stdout`` default is bound at import, so capsys cannot
    see what main() prints (see test_train_output_follows_sys_stdout): pass the current
    sys.stdout explicitly. The subprocess test runs the unpatched code end to end."""
    original = fastbp.cli.train

    def train(args, out=None):
        return original(args, out=sys.stdout if out is None else out)

    monkeypatch.setattr(fastbp.cli, "train", train)


def final_line(out):
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "no output"
    return lines[-1]


def test_train_digits(capsys):
    assert main(["train", "--epochs", "3", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    out = captured.out
    assert out.startswith("data: digits, 1348 training and 449 test samples, 64 features, "
                          "10 classes")
    assert "Network(sizes=[64, 64, 10]" in out
    assert "training: 3 epochs, batch 32, adam lr 0.001" in out
    match = FINAL.match(final_line(out))
    assert match, final_line(out)
    accuracy, _, best_epoch, best = match.groups()
    assert 0.5 < float(accuracy) <= 1 and 1 <= int(best_epoch) <= 3
    assert float(best) >= float(accuracy)


def test_train_options_and_save(tmp_path, capsys, monkeypatch):
    # --threads changes a process-wide setting: restore it after the test.
    monkeypatch.setattr(fastbp._threads, "_num_threads", fastbp._threads._num_threads)
    path = tmp_path / "model.npz"
    argv = ["train", "--hidden", "32,16", "--activation", "tanh", "--output", "sigmoid",
            "--loss", "mse", "--optimizer", "sgd", "--learning-rate", "1.0",
            "--momentum", "0.5", "--l2", "0.0001", "--epochs", "5", "--batch-size", "16",
            "--dtype", "float64", "--seed", "3", "--backend", "numpy", "--threads", "1",
            "--save", str(path), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "training: 5 epochs, batch 16, sgd lr 1.0, 1 threads" in out
    assert final_line(out) == f"model saved to {path}"
    accuracy = float(re.search(r"test accuracy (\d\.\d{4})", out).group(1))
    assert accuracy > 0.8
    net = Network.load(path)
    assert net.sizes == [64, 32, 16, 10]
    assert (net.activation, net.output, net.loss_name) == ("tanh", "sigmoid", "mse")
    assert net.dtype == np.float64 and net.l2 == 0.0001
    _, (X_test, y_test) = load_digits(dtype=np.float64)
    # The saved model is the one that was evaluated.
    assert net.evaluate(X_test, y_test)["accuracy"] == pytest.approx(accuracy, abs=5e-5)
    assert os.listdir(tmp_path) == ["model.npz"]


def test_missing_data_folder(capsys):
    assert main(["train", "--data", "/nonexistent", "--epochs", "1", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("fastbp: error:")
    assert "/nonexistent" in captured.err
    assert "test accuracy" not in captured.out


def test_folder_without_idx_files(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("nothing here")
    assert main(["train", "--data", str(tmp_path), "--epochs", "1", "--quiet"]) == 2
    assert "fastbp: error:" in capsys.readouterr().err


def _write_idx(path, array):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_train_on_an_idx_folder(tmp_path, capsys):
    """Any folder of MNIST-format files works: here the digits written as 8x8 IDX."""
    (X, y), (X_test, y_test) = load_digits(flatten=False)
    for split, images, labels in (("train", X, y), ("t10k", X_test, y_test)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", np.round(images * 255))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels)
    assert main(["train", "--data", str(tmp_path), "--epochs", "10", "--hidden", "32",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1348 training and 449 test samples, 64 features, 10 classes" in out
    assert float(FINAL.match(final_line(out)).group(1)) > 0.9


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "0"], ["train", "--epochs", "two"], ["train", "--batch-size", "-1"],
    ["train", "--learning-rate", "0"], ["train", "--learning-rate", "nan"],
    ["train", "--hidden", "32,x"], ["train", "--hidden", "32,0"],
    ["train", "--activation", "swish"], ["train", "--loss", "hinge"],
    ["train", "--optimizer", "rmsprop"], ["train", "--dtype", "float16"],
    ["train", "--backend", "torch"], ["train", "--threads", "0"], ["fly"], [],
])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_train_with_a_sigmoid_output_is_one_vs_rest(capsys):
    """--output sigmoid with the default cross-entropy trains one sigmoid per class on the
    integer labels (issue 13, defect 6)."""
    assert main(["train", "--epochs", "3", "--quiet", "--output", "sigmoid"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    match = FINAL.match(final_line(captured.out))
    assert match, final_line(captured.out)
    assert float(match.group(1)) > 0.5


def test_readme_states_what_the_default_train_prints(capsys):
    """The README quotes the accuracy `fastbp train` prints with its defaults (defect 8):
    the figure it quotes is the one a run prints."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    quoted = re.search(r"ends\s+with the test accuracy \((\d\.\d{4})\)", readme)
    assert quoted, "the README no longer quotes the accuracy fastbp train ends with"
    assert main(["train", "--quiet"]) == 0
    match = FINAL.match(final_line(capsys.readouterr().out))
    assert match
    assert match.group(1) == quoted.group(1)


@pytest.mark.parametrize("argv", [
    ["--l2", "-1"], ["--optimizer", "sgd", "--momentum", "1.5"], ["--output", "identity"],
    ["--output", "tanh", "--loss", "cross_entropy"],
])
def test_invalid_combinations_exit_2_with_a_message(argv, capsys):
    assert main(["train", "--epochs", "1", "--quiet", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("fastbp: error:")
    assert "Traceback" not in captured.err


def test_train_output_follows_sys_stdout(monkeypatch):
    monkeypatch.setattr(fastbp.cli, "train", ORIGINAL_TRAIN)  # undo the autouse fixture
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["train", "--epochs", "1", "--quiet"]) == 0
    assert "test accuracy" in buffer.getvalue()


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    keys = dict(line.split(": ", 1) for line in out.splitlines())
    assert set(keys) >= {"version", "openmp", "blas", "cython", "num_threads",
                         "openmp_max_threads"}
    assert keys["openmp"] in ("True", "False")
    assert int(keys["num_threads"]) >= 1


def test_module_entry_point():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")) if p)}
    result = subprocess.run([sys.executable, "-m", "fastbp", "train", "--epochs", "2",
                             "--quiet"], capture_output=True, text=True, timeout=120,
                            env=env, cwd=PACKAGE_PARENT)
    assert result.returncode == 0, result.stderr
    assert FINAL.match(final_line(result.stdout)), result.stdout
    bad = subprocess.run([sys.executable, "-m", "fastbp", "train", "--data", "/nonexistent",
                          "--quiet"], capture_output=True, text=True, timeout=120, env=env,
                         cwd=PACKAGE_PARENT)
    assert bad.returncode == 2
    assert bad.stderr.startswith("fastbp: error:")


@pytest.mark.slow
@pytest.mark.fashion_mnist
def test_train_fashion_mnist(capsys):
    try:
        load_fashion_mnist()
    except FileNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist "
                    f"or set FASTBP_DATA): {exc}")
    # A 30-unit hidden layer keeps this short (the default is 100).
    assert main(["train", "--data", "fashion-mnist", "--epochs", "1", "--hidden", "30",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "60000 training and 10000 test samples, 784 features, 10 classes" in out
    assert float(FINAL.match(final_line(out)).group(1)) > 0.75


# ----- checkpoints: --checkpoint and --resume ---------------------------------------------


@pytest.fixture
def one_thread(monkeypatch):
    # --threads changes a process-wide setting: restore it after the test.
    monkeypatch.setattr(fastbp._threads, "_num_threads", fastbp._threads._num_threads)


BASE = ["train", "--hidden", "16", "--optimizer", "sgd", "--momentum", "0.9",
        "--learning-rate", "0.05", "--batch-size", "16", "--threads", "1", "--quiet"]


def test_checkpoint_and_resume_end_bit_identical(tmp_path, capsys, one_thread):
    straight, resumed, checkpoint = (tmp_path / "a.npz", tmp_path / "b.npz",
                                     tmp_path / "run.ckpt")
    assert main([*BASE, "--epochs", "5", "--save", str(straight)]) == 0
    assert main([*BASE, "--epochs", "2", "--checkpoint", str(checkpoint)]) == 0
    assert Network.load(checkpoint).epochs_trained == 2
    capsys.readouterr()
    # --epochs is the run's total; the network and settings come from the checkpoint.
    assert main(["train", "--resume", str(checkpoint), "--epochs", "5", "--threads", "1",
                 "--quiet", "--save", str(resumed)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"resuming {checkpoint}: 2 of 5 epochs trained\n")
    assert "training: 5 epochs, batch 16, sgd lr 0.05, 1 threads" in out
    # The history printed is the whole run's: the best epoch counts from the first.
    assert 1 <= int(FINAL.match(final_line(out.replace(f"model saved to {resumed}", "")
                                           .strip())).group(3)) <= 5
    assert (Network.load(resumed)._params.tobytes()
            == Network.load(straight)._params.tobytes())
    # Checkpoints kept going to the resumed file.
    assert Network.load(checkpoint).epochs_trained == 5


@pytest.mark.parametrize("extra,message", [
    (["--hidden", "32"], "--hidden 32 (the checkpoint's: 16)"),
    (["--optimizer", "adam"], "--optimizer adam"),
    (["--learning-rate", "0.1"], "--learning-rate 0.1"),
    (["--batch-size", "32"], "--batch-size 32"),
    (["--dtype", "float64"], "--dtype float64"),
    (["--epochs", "2"], "trained 2 epochs already"),
    (["--data", "fashion-mnist"], "give the --data it was trained on"),
])
def test_resume_refuses_options_that_differ(tmp_path, capsys, one_thread, extra, message):
    if "fashion-mnist" in extra:
        try:
            load_fashion_mnist()
        except FileNotFoundError:
            pytest.skip("Fashion-MNIST is not installed")
    checkpoint = tmp_path / "run.ckpt"
    assert main([*BASE, "--epochs", "2", "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(checkpoint), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastbp: error:") and message in err
    # Options that agree with the checkpoint are accepted.
    assert main(["train", "--resume", str(checkpoint), "--hidden", "16", "--optimizer",
                 "sgd", "--batch-size", "16", "--epochs", "3", "--quiet"]) == 0


def test_resume_from_a_model_file_is_refused(tmp_path, capsys):
    model = Network([64, 8, 10], output="softmax", loss="cross_entropy").save(
        tmp_path / "m.npz")
    assert main(["train", "--resume", model, "--quiet"]) == 2
    assert "is a model file, not a checkpoint" in capsys.readouterr().err


def test_ctrl_c_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Network, "fit", interrupted_fit)
    checkpoint = tmp_path / "run.ckpt"
    assert main(["train", "--quiet", "--checkpoint", str(checkpoint)]) == 130
    assert f"continue with --resume {checkpoint}" in capsys.readouterr().err
