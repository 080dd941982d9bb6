"""Tests for fastbp.compat: the classic tutorial's network.py API on fastbp's engine.

The yardstick is the tutorial's algorithm itself, re-implemented below in plain NumPy
(chapter 1 of Nielsen's "Neural Networks and Deep Learning": sigmoid neurons, the
quadratic cost, N(0, 1) initialisation, mini-batch SGD over a list shuffled with
random.shuffle, backpropagation one sample at a time on column vectors). Both start
from the same np.random seed and see the same random.shuffle, so they must end with
the same weights (to float64 rounding, on runs short enough that rounding does not
grow) and print the same lines. Speed is measured in benchmarks/test_compat_bench.py,
never here.
"""

import copy
import importlib.util
import pathlib
import pickle
import random
import re

import numpy as np
import pytest

import fastbp
from fastbp.compat import network, tutorial_data
from fastbp.compat.network import Network

# ----- the tutorial's network.py algorithm, in plain NumPy -------------------------------
# One re-implementation serves as the yardstick here and as the baseline of
# benchmarks/test_compat_bench.py: it lives with the benchmarks, loaded by path (neither
# folder is a package).


def _load_tutorial_network():
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "_tutorial_network.py"
    spec = importlib.util.spec_from_file_location("_tutorial_network", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tutorial = _load_tutorial_network()
TutorialNetwork = _tutorial.TutorialNetwork


# ----- fixtures and helpers --------------------------------------------------------------

TOL = {"rtol": 1e-9, "atol": 1e-11}
EPOCH_LINE = re.compile(r"^Epoch (\d+): (\d+) / (\d+)$")


def make_data(n, n_in, n_classes, seed):
    """Separable-ish classes: a random centre per class plus noise, values around [0, 1]."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_classes, n_in))
    y = rng.integers(0, n_classes, n)
    X = centres[y] + 0.3 * rng.standard_normal((n, n_in))
    return X, y


@pytest.fixture
def data():
    """(training_data, test_data) in the tutorial's format: 62 training samples (so a
    mini-batch of 5 leaves a last batch of 2) and 25 test samples, 12 inputs, 4 classes."""
    X, y = make_data(87, 12, 4, seed=1)
    return (tutorial_data(X[:62], y[:62], one_hot=True, n_classes=4),
            tutorial_data(X[62:], y[62:]))


def twins(sizes, seed=0, cls=Network, ref_cls=TutorialNetwork):
    """A compat network and a tutorial network with the same initial parameters."""
    np.random.seed(seed)
    net = cls(sizes)
    np.random.seed(seed)
    ref = ref_cls(sizes)
    return net, ref


def assert_same_parameters(net, ref, **tol):
    tol = tol or TOL
    assert len(net.weights) == len(ref.weights) and len(net.biases) == len(ref.biases)
    for a, b in zip(net.weights + net.biases, ref.weights + ref.biases):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, **tol)


# ----- construction ------------------------------------------------------------------------


def test_attributes_and_initialisation_are_the_tutorials():
    net, ref = twins([12, 7, 5, 4], seed=3)
    assert net.num_layers == 4 and net.sizes == [12, 7, 5, 4]
    assert [b.shape for b in net.biases] == [(7, 1), (5, 1), (4, 1)]
    assert [w.shape for w in net.weights] == [(7, 12), (5, 7), (4, 5)]
    assert all(a.dtype == np.float64 for a in net.weights + net.biases)
    # np.random.randn draws in the tutorial's order: identical, not just close.
    for a, b in zip(net.weights + net.biases, ref.weights + ref.biases):
        np.testing.assert_array_equal(a, b)


def test_runs_on_a_fastbp_network():
    net = Network([12, 7, 4])
    engine = net.fastbp_network
    assert isinstance(engine, fastbp.Network)
    assert (engine.activation, engine.output, engine.loss_name) == ("sigmoid", "sigmoid", "mse")
    assert engine.dtype == np.float64 and engine.backend == "cython"
    for mine, theirs in zip(net.weights, engine.weights):
        assert np.shares_memory(mine, theirs)
    for mine, theirs in zip(net.biases, engine.biases):
        assert np.shares_memory(mine, theirs)
        np.testing.assert_array_equal(mine[:, 0], theirs)


def test_module_layout_matches_the_tutorials():
    assert network.Network is Network
    assert fastbp.compat.Network is Network
    z = np.array([[-800.0], [0.0], [3.0]])
    np.testing.assert_allclose(network.sigmoid(z), [[0.0], [0.5], [1 / (1 + np.exp(-3))]])
    s = network.sigmoid(z)
    np.testing.assert_allclose(network.sigmoid_prime(z), s * (1 - s))


@pytest.mark.parametrize("sizes", [[12], [], [12, 0, 4], "12"])
def test_bad_sizes(sizes):
    with pytest.raises((ValueError, TypeError)):
        Network(sizes)


# ----- training matches the tutorial ---------------------------------------------------------


@pytest.mark.parametrize("sizes", [[12, 7, 4], [12, 6, 5, 4], [12, 4]])
def test_sgd_without_shuffling_gives_the_tutorials_weights(data, sizes, monkeypatch, capsys):
    training_data, _ = data
    monkeypatch.setattr(random, "shuffle", lambda x: None)  # no shuffling, in both
    net, ref = twins(sizes)
    net.SGD(training_data, 3, 5, 3.0)
    ref.SGD(training_data, 3, 5, 3.0)
    assert_same_parameters(net, ref)
    assert capsys.readouterr().out == "Epoch 0 complete\nEpoch 1 complete\nEpoch 2 complete\n" * 2


@pytest.mark.parametrize("mini_batch_size", [1, 10, 62, 100])
def test_sgd_with_seeded_shuffling_gives_the_tutorials_weights(data, mini_batch_size, capsys):
    training_data, test_data = data
    net, ref = twins([12, 7, 4], seed=5)
    random.seed(42)
    net.SGD(training_data, 4, mini_batch_size, 0.5, test_data=test_data)
    ours = capsys.readouterr().out
    random.seed(42)
    ref.SGD(training_data, 4, mini_batch_size, 0.5, test_data=test_data)
    theirs = capsys.readouterr().out
    assert_same_parameters(net, ref)
    assert ours == theirs
    # The caller's list is left in its order (the tutorial shuffles a copy).
    assert training_data == data[0]


def test_sgd_shuffles_with_random_shuffle_once_per_epoch(data, monkeypatch, capsys):
    training_data, _ = data
    calls = []

    def reverse(items):
        calls.append(len(items))
        items.reverse()

    monkeypatch.setattr(random, "shuffle", reverse)
    net, ref = twins([12, 7, 4])
    net.SGD(training_data, 3, 4, 1.0)
    assert calls == [62, 62, 62]
    ref.SGD(training_data, 3, 4, 1.0)
    assert_same_parameters(net, ref)


def test_repeated_sgd_calls_continue_training(data, capsys):
    training_data, _ = data
    net, ref = twins([12, 7, 4], seed=2)
    random.seed(7)
    net.SGD(training_data, 1, 8, 2.0)
    net.SGD(training_data, 2, 8, 2.0)
    random.seed(7)
    ref.SGD(training_data, 1, 8, 2.0)
    ref.SGD(training_data, 2, 8, 2.0)
    assert_same_parameters(net, ref)


def test_sgd_takes_iterables_and_zero_epochs(data, capsys):
    training_data, test_data = data
    net, ref = twins([12, 7, 4])
    net.SGD(iter(training_data), 0, 10, 3.0, test_data=iter(test_data))
    assert capsys.readouterr().out == ""
    assert_same_parameters(net, ref, rtol=0, atol=0)
    random.seed(1)
    net.SGD(iter(training_data), 1, 10, 3.0, test_data=iter(test_data))
    assert EPOCH_LINE.match(capsys.readouterr().out.strip())


def test_sgd_accepts_integer_training_labels(data, capsys):
    """Training pairs with int labels (not the tutorial's columns) train as one-hot."""
    training_data, _ = data
    as_labels = [(x, int(np.argmax(y))) for x, y in training_data]
    a, b = twins([12, 7, 4], cls=Network, ref_cls=Network)
    random.seed(3)
    a.SGD(training_data, 2, 5, 3.0)
    random.seed(3)
    b.SGD(as_labels, 2, 5, 3.0)
    assert_same_parameters(a, b, rtol=0, atol=0)


def test_sgd_errors(data):
    training_data, _ = data
    net = Network([12, 7, 4])
    with pytest.raises(ValueError):
        net.SGD(training_data, 1, 0, 3.0)
    with pytest.raises(ValueError):
        net.SGD(training_data, 1, 10, -1.0)
    with pytest.raises(ValueError, match=r"\(12, 1\) columns"):
        net.SGD([(np.zeros((11, 1)), np.zeros((4, 1)))], 1, 10, 3.0)
    with pytest.raises(ValueError, match=r"\(4, 1\) columns"):
        net.SGD([(np.zeros((12, 1)), np.zeros((3, 1)))], 1, 10, 3.0)
    with pytest.raises(ValueError, match="labels must be in"):
        net.SGD(training_data, 1, 10, 3.0, test_data=[(np.zeros((12, 1)), 4)])


# ----- the printed lines ---------------------------------------------------------------------


def test_printed_lines(data, capsys):
    training_data, test_data = data
    net = Network([12, 7, 4])
    net.SGD(training_data, 2, 10, 3.0)
    assert capsys.readouterr().out.splitlines() == ["Epoch 0 complete", "Epoch 1 complete"]
    net.SGD(training_data, 3, 10, 3.0, test_data=test_data)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for j, line in enumerate(lines):
        match = EPOCH_LINE.match(line)
        assert match, line
        assert int(match.group(1)) == j and int(match.group(3)) == len(test_data)
    # The last line's count is what evaluate says about the trained network.
    assert int(EPOCH_LINE.match(lines[-1]).group(2)) == net.evaluate(test_data)
    # An empty test set counts as none, as in the tutorial (``if test_data:``).
    net.SGD(training_data, 1, 10, 3.0, test_data=[])
    assert capsys.readouterr().out == "Epoch 0 complete\n"


# ----- feedforward, evaluate, backprop, update_mini_batch -------------------------------------


def test_feedforward_matches_the_tutorial(data):
    training_data, _ = data
    net, ref = twins([12, 6, 5, 4], seed=4)
    x = training_data[0][0]
    out = net.feedforward(x)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out, ref.feedforward(x), **TOL)
    columns = np.hstack([x for x, _ in training_data[:7]])  # (12, 7): one sample per column
    np.testing.assert_allclose(net.feedforward(columns), ref.feedforward(columns), **TOL)
    assert net.feedforward(columns).shape == (4, 7)
    np.testing.assert_allclose(net.feedforward(x[:, 0]), out[:, 0], **TOL)
    np.testing.assert_allclose(net.feedforward(x.astype(np.float32)), out, rtol=1e-6)
    for bad in (np.zeros((11, 1)), np.zeros((1, 12)), np.zeros((12, 1, 1))):
        with pytest.raises(ValueError, match="feedforward"):
            net.feedforward(bad)


def test_evaluate_matches_the_tutorial(data):
    training_data, test_data = data
    net, ref = twins([12, 7, 4], seed=6)
    random.seed(0)
    net.SGD(training_data, 5, 4, 3.0)
    ref.weights = [w.copy() for w in net.weights]
    ref.biases = [b.copy() for b in net.biases]
    assert net.evaluate(test_data) == ref.evaluate(test_data)
    assert 0 < net.evaluate(test_data) <= len(test_data)
    numpy_labels = [(x, np.int64(y)) for x, y in test_data]
    assert net.evaluate(numpy_labels) == net.evaluate(test_data)
    assert net.evaluate(iter(test_data)) == net.evaluate(test_data)
    assert net.evaluate([]) == 0


def test_backprop_matches_the_tutorial(data):
    training_data, _ = data
    net, ref = twins([12, 6, 5, 4], seed=8)
    for x, y in training_data[:5]:
        grad_b, grad_w = net.backprop(x, y)
        ref_b, ref_w = ref.backprop(x, y)
        assert [g.shape for g in grad_b] == [(6, 1), (5, 1), (4, 1)]
        assert [g.shape for g in grad_w] == [(6, 12), (5, 6), (4, 5)]
        for a, b in zip(grad_b + grad_w, ref_b + ref_w):
            np.testing.assert_allclose(a, b, **TOL)
    assert net.cost_derivative(np.array([[0.25]]), np.array([[1.0]])) == -0.75


def test_backprop_is_the_gradient_of_the_quadratic_cost(data):
    """Finite differences of C = 1/2 ||a - y||^2 for one sample, on a few parameters."""
    x, y = data[0][0]
    net = Network([12, 5, 4])

    def cost():
        return 0.5 * float(np.sum((net.feedforward(x) - y) ** 2))

    grad_b, grad_w = net.backprop(x, y)
    eps = 1e-6
    for array, grad in [(net.weights[0], grad_w[0]), (net.biases[1], grad_b[1])]:
        for index in [(0, 0), (2, 0), (array.shape[0] - 1, array.shape[1] - 1)]:
            saved = array[index]
            array[index] = saved + eps
            plus = cost()
            array[index] = saved - eps
            minus = cost()
            array[index] = saved
            assert abs((plus - minus) / (2 * eps) - grad[index]) < 1e-7


def test_update_mini_batch_matches_the_tutorial(data):
    training_data, _ = data
    net, ref = twins([12, 7, 4], seed=9)
    for start in (0, 10, 20):
        batch = training_data[start:start + 10]
        net.update_mini_batch(batch, 3.0)
        ref.update_mini_batch(batch, 3.0)
    assert_same_parameters(net, ref)
    with pytest.raises(ValueError, match="empty"):
        net.update_mini_batch([], 3.0)


# ----- weights and biases: views, reassignment, copies ----------------------------------------


def test_weights_and_biases_are_live_views(data, capsys):
    training_data, _ = data
    net = Network([12, 7, 4])
    w0, b1 = net.weights[0], net.biases[1]
    before = w0.copy()
    net.SGD(training_data, 1, 10, 3.0)
    assert net.weights[0] is w0 and net.biases[1] is b1
    assert not np.array_equal(w0, before)  # trained in place
    x = training_data[0][0]
    net.biases[-1][...] = -1000.0  # in-place edits are seen at once
    np.testing.assert_allclose(net.feedforward(x), 0.0, atol=1e-300)
    np.testing.assert_array_equal(net.fastbp_network.biases[-1], -1000.0)


def test_assigned_weights_and_biases_are_used(data, capsys):
    training_data, _ = data
    net, ref = twins([12, 7, 4], seed=10)
    # The tutorial's own style: new lists of new arrays.
    net.weights = [np.zeros_like(w) for w in net.weights]
    net.biases[1] = np.full((4, 1), 2.0)
    np.testing.assert_allclose(net.feedforward(training_data[0][0]), 1 / (1 + np.exp(-2.0)))
    ref.weights = [np.zeros_like(w) for w in ref.weights]
    ref.biases[1] = np.full((4, 1), 2.0)
    # Training continues from the assigned values.
    random.seed(5)
    net.SGD(training_data, 2, 6, 3.0)
    random.seed(5)
    ref.SGD(training_data, 2, 6, 3.0)
    assert_same_parameters(net, ref)
    # A bias given as a flat (n,) vector is taken too.
    net.biases = [np.zeros(7), np.ones(4)]
    net.feedforward(training_data[0][0])  # any call picks the new arrays up
    np.testing.assert_array_equal(net.biases[1], np.ones((4, 1)))
    assert net.biases[1].shape == (4, 1)


@pytest.mark.parametrize("attribute, value", [
    ("weights", lambda net: [np.zeros((7, 11)), net.weights[1]]),
    ("weights", lambda net: net.weights[:1]),
    ("biases", lambda net: [np.zeros((6, 1)), net.biases[1]]),
    ("biases", lambda net: None),
])
def test_bad_assigned_parameters(data, attribute, value):
    net = Network([12, 7, 4])
    setattr(net, attribute, value(net))
    with pytest.raises(ValueError, match=attribute):
        net.feedforward(data[0][0][0])


def test_copies_and_pickles_are_independent_networks(data, capsys):
    training_data, test_data = data
    net = Network([12, 7, 4])
    net.label = "mine"  # user attributes travel too
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert clone.label == "mine" and clone.sizes == [12, 7, 4]
        assert_same_parameters(clone, net, rtol=0, atol=0)
        random.seed(0)
        clone.SGD(training_data, 1, 10, 3.0)
        assert not np.array_equal(clone.weights[0], net.weights[0])  # net untouched
        assert np.shares_memory(clone.weights[0], clone.fastbp_network.weights[0])
        assert clone.evaluate(test_data) == TutorialNetwork.evaluate(clone, test_data)


# ----- subclasses that change the tutorial's steps --------------------------------------------


class CrossEntropyNetwork(Network):
    """A reader's exercise: the cross-entropy cost, through cost_derivative."""

    def cost_derivative(self, output_activations, y):
        return (output_activations - y) / (output_activations * (1 - output_activations))


class TutorialCrossEntropy(TutorialNetwork):
    cost_derivative = CrossEntropyNetwork.cost_derivative


def test_subclass_cost_derivative_is_used(data, capsys):
    training_data, test_data = data
    net, ref = twins([12, 7, 4], seed=11, cls=CrossEntropyNetwork, ref_cls=TutorialCrossEntropy)
    random.seed(2)
    net.SGD(training_data, 2, 5, 0.5, test_data=test_data)
    random.seed(2)
    ref.SGD(training_data, 2, 5, 0.5, test_data=test_data)
    assert_same_parameters(net, ref)
    out = capsys.readouterr().out
    assert out[:len(out) // 2] == out[len(out) // 2:]  # the same lines, twice


def test_subclass_update_mini_batch_is_called(data, capsys):
    training_data, _ = data
    seen = []

    class Counting(Network):
        def update_mini_batch(self, mini_batch, eta):
            seen.append(len(mini_batch))
            super().update_mini_batch(mini_batch, eta)

    net = Counting([12, 7, 4])
    net.SGD(training_data, 2, 25, 1.0)
    assert seen == [25, 25, 12] * 2


def test_subclass_feedforward_is_used_by_evaluate(data):
    _, test_data = data

    class Constant(Network):
        def feedforward(self, a):
            return np.array([[0.0], [0.0], [1.0], [0.0]])

    net = Constant([12, 7, 4])
    assert net.evaluate(test_data) == sum(y == 2 for _, y in test_data)


# ----- tutorial_data and a real data set ---------------------------------------------------------


def test_tutorial_data():
    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    y = np.array([2, 0, 1])
    test = tutorial_data(X, y)
    assert len(test) == 3
    x0, y0 = test[0]
    assert x0.shape == (4, 1) and x0.dtype == np.float64 and type(y0) is int and y0 == 2
    np.testing.assert_array_equal(x0[:, 0], X[0])
    train = tutorial_data(X, y, one_hot=True, n_classes=5)
    assert train[0][1].shape == (5, 1)
    np.testing.assert_array_equal(train[0][1][:, 0], [0, 0, 1, 0, 0])
    assert tutorial_data(X, y, one_hot=True)[1][1].shape == (3, 1)
    X[0, 0] = 100  # the columns are a copy of X
    assert x0[0, 0] == 0
    with pytest.raises(ValueError):
        tutorial_data(X[0], y)
    with pytest.raises(ValueError):
        tutorial_data(X, y[:2])
    with pytest.raises(TypeError):
        tutorial_data(X, y.astype(float))
    with pytest.raises(TypeError):
        tutorial_data(X, y, one_hot=1)
    with pytest.raises(ValueError):
        tutorial_data(X, y, one_hot=True, n_classes=2)


def _stack(columns, size=4):
    return network._stack_columns(columns, size, "x")


def test_training_on_tutorial_data_reads_its_array_without_a_copy():
    X = np.arange(12, dtype=np.float64).reshape(3, 4)
    data = tutorial_data(X, np.array([0, 1, 1]), one_hot=True, n_classes=2)
    xs, ys = [x for x, _ in data], [y for _, y in data]
    rows = _stack(xs)
    np.testing.assert_array_equal(rows, X)
    assert rows.flags.c_contiguous and rows.dtype == np.float64
    # Consecutive rows in order: the array tutorial_data made, not a copy of it.
    assert np.shares_memory(rows, xs[0]) and np.shares_memory(rows, xs[2])
    assert np.shares_memory(network._stack_columns(ys, 2, "y"), ys[1])
    # A slice of the list is a slice of the array; a column changed in place shows.
    xs[1][2, 0] = -7
    part = _stack(xs[1:])
    assert part.shape == (2, 4) and part[0, 2] == -7 and np.shares_memory(part, xs[1])
    # Another order: the rows gathered in that order (a copy).
    shuffled = _stack([xs[2], xs[0], xs[1]])
    np.testing.assert_array_equal(shuffled, _stack(xs)[[2, 0, 1]])
    assert not np.shares_memory(shuffled, xs[0])


def test_stacking_other_columns_gives_the_same_rows():
    X = np.arange(12, dtype=np.float64).reshape(3, 4)
    registered = [x for x, _ in tutorial_data(X, np.array([0, 1, 1]))]
    expected = _stack(registered).copy()
    copies = [x.copy() for x in registered]  # (4, 1) arrays of no registered array
    mixed = registered[:2] + copies[2:]
    as_float32 = [x.astype(np.float32) for x in copies]
    as_lists = [x[:, 0].tolist() for x in copies]
    flat = [x[:, 0] for x in copies]
    as_rows = [x.reshape(1, 4) for x in copies]
    strided = [np.asfortranarray(np.hstack(copies))[:, i:i + 1] for i in range(3)]
    for columns in (copies, mixed, as_float32, as_lists, flat, as_rows, strided):
        rows = _stack(columns)
        np.testing.assert_array_equal(rows, expected)
        assert rows.dtype == np.float64 and rows.flags.c_contiguous
        assert not np.shares_memory(rows, copies[0])
        assert not np.shares_memory(rows, registered[0])
    with pytest.raises(ValueError, match=r"\(4, 1\) columns; item 1"):
        _stack([copies[0], np.zeros((2, 2)), copies[2]])
    with pytest.raises(TypeError, match="numbers; item 0"):
        _stack([x.astype(complex) for x in copies])
    with pytest.raises(TypeError, match="numbers; item 2"):
        _stack(copies[:2] + [np.array(list("abcd")).reshape(4, 1)])


def test_changed_or_new_columns_are_not_taken_for_registered_ones():
    X = np.arange(12, dtype=np.float64).reshape(3, 4)
    xs = [x for x, _ in tutorial_data(X, np.array([0, 1, 1]))]
    # A column reshaped in place (still the same data) is read as what it now is.
    xs[0].shape = (2, 2)
    with pytest.raises(ValueError, match=r"\(4, 1\) columns; item 0"):
        _stack(xs)
    xs[0].shape = (4, 1)
    assert np.shares_memory(_stack(xs), xs[0])
    # A column of the array that tutorial_data did not make (a new view of a row) is
    # not taken for the registered one, though it views the same row.
    again = [xs[0], xs[1][:, :], xs[2]]
    assert again[1].base is xs[1].base
    rows = _stack(again)
    assert not np.shares_memory(rows, xs[0])
    np.testing.assert_array_equal(rows, _stack(xs))
    # The registry keeps nothing alive: the entry goes with the array, when its last
    # column goes.
    key = id(xs[0].base)
    assert key in network._REGISTERED
    del xs, again
    assert key not in network._REGISTERED


def test_sgd_rejects_nan_and_inf(data):
    training_data, test_data = data
    net = Network([12, 7, 4])
    bad = [(x.copy(), y) for x, y in training_data]
    bad[3][0][2, 0] = np.nan
    with pytest.raises(ValueError, match=r"training_data\[i\]\[0\] contains NaN or inf"):
        net.SGD(bad, 1, 10, 3.0)
    bad_test = [(x.copy(), y) for x, y in test_data]
    bad_test[0][0][0, 0] = np.inf
    with pytest.raises(ValueError, match=r"test_data\[i\]\[0\] contains NaN or inf"):
        net.SGD(training_data, 1, 10, 3.0, test_data=bad_test)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.evaluate(bad_test)


def test_evaluate_takes_the_highest_output_as_the_tutorial(data):
    """One output neuron: its argmax is always 0, as in the tutorial (not a threshold)."""
    _, test_data = data
    net, ref = twins([12, 5, 1], seed=4)
    zeros = [(x, 0) for x, _ in test_data]
    outputs = [net.feedforward(x)[0, 0] for x, _ in zeros]
    assert min(outputs) < 0.5 < max(outputs)  # a 0.5 threshold would count fewer
    assert net.evaluate(zeros) == ref.evaluate(zeros) == len(zeros)


def test_learns_the_digits(capsys):
    """The tutorial's recipe (mini-batch 10, eta 3.0) on the bundled 8x8 digits."""
    (X, y), (X_test, y_test) = fastbp.datasets.load_digits()
    np.random.seed(0)
    random.seed(0)
    net = Network([64, 30, 10])
    net.SGD(tutorial_data(X, y, one_hot=True), 5, 10, 3.0,
            test_data=tutorial_data(X_test, y_test))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    correct = int(EPOCH_LINE.match(lines[-1]).group(2))
    assert correct / len(y_test) > 0.85, lines
