"""Tests for fastbp.plot.plot_history and ``fastbp train --plot`` (need matplotlib)."""

import sys

import numpy as np
import pytest

import fastbp.cli
from fastbp import Network
from fastbp.datasets import load_digits
from fastbp.plot import plot_history

pytest.importorskip("matplotlib", reason="matplotlib is an optional extra: pip install "
                                         "fastbp[plot]")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    """Figures made without a path are pyplot's: close them so tests do not pile them up."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def digits_history():
    (X, y), (X_test, y_test) = load_digits()
    net = Network([64, 16, 10], activation="relu", output="softmax", loss="cross_entropy",
                  seed=0)
    return net.fit(X, y, epochs=3, batch_size=32, learning_rate=0.01, optimizer="adam",
                   validation_data=(X_test, y_test))


def curves(ax):
    """{label: (x, y)} of the lines of an axes."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines()}


def test_loss_and_accuracy_with_validation(digits_history, tmp_path):
    path = tmp_path / "history.png"
    fig = plot_history(digits_history, path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    loss_ax, acc_ax = fig.axes
    assert (loss_ax.get_title(), acc_ax.get_title()) == ("loss", "accuracy")
    assert loss_ax.get_xlabel() == acc_ax.get_xlabel() == "epoch"
    loss, acc = curves(loss_ax), curves(acc_ax)
    assert set(loss) == set(acc) == {"training", "validation"}
    assert loss["training"] == ([1, 2, 3], pytest.approx(digits_history["loss"]))
    assert loss["validation"][1] == pytest.approx(digits_history["val_loss"])
    assert acc["training"][1] == pytest.approx(digits_history["accuracy"])
    assert acc["validation"][1] == pytest.approx(digits_history["val_accuracy"])
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["training",
                                                                        "validation"]


def test_history_without_accuracy(tmp_path):
    """A regression history: loss only, one subplot."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    net = Network([3, 4, 1], output="identity", loss="mse", seed=0)
    history = net.fit(X, X.sum(axis=1), epochs=2, batch_size=8)
    assert "accuracy" not in history
    fig = plot_history(history, tmp_path / "loss.svg")
    assert (tmp_path / "loss.svg").read_text().lstrip().startswith("<?xml")
    assert len(fig.axes) == 1
    assert set(curves(fig.axes[0])) == {"training"}


def test_without_validation_and_without_path():
    history = {"loss": [1.0, 0.5, 0.25], "accuracy": [0.5, 0.7, 0.8], "seconds": [1, 1, 1]}
    fig = plot_history(history)
    import matplotlib.pyplot as plt

    assert plt.fignum_exists(fig.number)  # a pyplot figure, for plt.show()
    assert [set(curves(ax)) for ax in fig.axes] == [{"training"}, {"training"}]
    # numpy arrays and numpy scalars are fine too.
    fig = plot_history({"loss": np.array([1.0, 0.5]), "val_loss": [np.float32(2), np.float64(1)]})
    assert set(curves(fig.axes[0])) == {"training", "validation"}


def test_saving_does_not_touch_pyplot(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_history({"loss": [1.0]}, str(tmp_path / "one.png"))
    assert plt.get_fignums() == before
    assert (tmp_path / "one.png").stat().st_size > 0


@pytest.mark.parametrize("history", [{}, {"loss": []}, {"accuracy": [0.5]}, {"seconds": [1.0]}])
def test_empty_history(history):
    with pytest.raises(ValueError, match="no loss"):
        plot_history(history)


@pytest.mark.parametrize("history", [None, [1.0, 2.0], "loss", {"loss": "abc"},
                                     {"loss": [1.0, "x"]}, {"loss": 3.0},
                                     {"loss": [1.0], "accuracy": [True]}])
def test_bad_history(history):
    with pytest.raises(TypeError):
        plot_history(history)


def test_network_instead_of_history():
    net = Network([2, 2, 2])
    net.history = {"loss": [1.0]}
    with pytest.raises(TypeError, match="net.history"):
        plot_history(net)


def test_missing_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    with pytest.raises(ImportError, match=r"pip install fastbp\[plot\]"):
        plot_history({"loss": [1.0]})


def test_cli_plot(tmp_path, capsys):
    path = tmp_path / "curves.png"
    assert fastbp.cli.main(["train", "--epochs", "2", "--hidden", "16", "--quiet",
                            "--plot", str(path)]) == 0
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert f"plot saved to {path}" in capsys.readouterr().out


def test_cli_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a))
    path = tmp_path / "curves.png"
    assert fastbp.cli.main(["train", "--epochs", "1", "--quiet", "--plot", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastbp: error: --plot needs matplotlib")
    assert not path.exists()
