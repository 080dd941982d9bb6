"""The classic tutorial's ``network.py`` API, running on fastbp's compiled engine.

Chapter 1 of Michael Nielsen's *Neural Networks and Deep Learning* trains a sigmoid
network with the quadratic cost by mini-batch stochastic gradient descent, one sample
at a time in NumPy. This module offers the same class with the same methods,
attributes, data format, random numbers and printed lines, so code written for that
``network.py`` runs unchanged::

    from fastbp.compat import network          # was: import network

    net = network.Network([784, 30, 10])
    net.SGD(training_data, 30, 10, 3.0, test_data=test_data)

``training_data`` is a list of ``(x, y)`` pairs, ``x`` an ``(n_inputs, 1)`` column and
``y`` an ``(n_outputs, 1)`` one-hot column; ``test_data`` a list of ``(x, label)`` with
an int label (:func:`fastbp.compat.tutorial_data` builds both from arrays).

What changes is where the work is done: ``SGD`` converts the lists to arrays once per
call (the lists of :func:`fastbp.compat.tutorial_data` are views of one array, which it
uses as it is) and trains each epoch with :meth:`fastbp.Network.fit` (float64, sigmoid layers,
``mse`` = the quadratic cost ``1/2 ||a - y||^2``, plain SGD with learning rate ``eta``:
the tutorial's ``w - eta/m * sum of gradients`` is the mean gradient step), in whole
compiled chunks of mini-batches instead of a Python loop per sample. Everything else
stays as in the tutorial:

* ``biases[l]`` (an ``(n, 1)`` column) and ``weights[l]`` (shape ``(out, in)``) start
  from ``np.random.randn`` draws in the tutorial's order, so ``np.random.seed`` gives
  the tutorial's initial network;
* each epoch's order of the samples comes from ``random.shuffle``, so
  ``random.seed`` gives the tutorial's mini-batches;
* ``weights`` and ``biases`` are views of the parameters fastbp trains: reading them
  shows the current values, changing them in place changes the network, and
  assigning new arrays (as the tutorial's ``update_mini_batch`` does) is picked up by
  the next call.

With the same seeds, training computes the tutorial's steps, up to float64 rounding
(fastbp sums a mini-batch's gradients in another order). Short runs end with the
same weights to ~1e-12; over thousands of steps at a large ``eta`` those rounding
differences grow, as they would between two BLAS libraries, and the two runs end at
different networks of similar accuracy.

A subclass that overrides ``update_mini_batch``, ``backprop`` or ``cost_derivative``
(``feedforward`` for ``evaluate``) gets the tutorial's per-sample loop calling its
methods, so modified networks keep their meaning (at the tutorial's speed).

Differences: ``eta`` must be > 0; ``SGD`` stops with ``FloatingPointError``
(restoring the last finite parameters) rather than training on NaN; it leaves the
caller's ``training_data`` list in its order (it shuffles indices, the same way); and
``training_data`` may also pair ``x`` with an int label (trained as one-hot).
"""

import random
import weakref

import numpy as np
from scipy.special import expit

from fastbp import kernels
from fastbp._validation import all_finite
from fastbp.network import Network as _FastbpNetwork

__all__ = ["Network", "sigmoid", "sigmoid_prime"]

_ACT = "sigmoid"


def sigmoid(z):
    """The sigmoid function ``1 / (1 + exp(-z))``, elementwise (never overflows)."""
    return expit(z)


def sigmoid_prime(z):
    """Derivative of the sigmoid function, ``sigmoid(z) * (1 - sigmoid(z))``."""
    s = expit(z)
    return s * (1 - s)


class Network:
    """A sigmoid network trained by mini-batch SGD on the quadratic cost (the tutorial's).

    Parameters
    ----------
    sizes : list of int
        Neurons per layer, input first: ``[784, 30, 10]``.

    Attributes
    ----------
    num_layers : int
        ``len(sizes)``.
    sizes : list of int
        As given.
    biases : list of ndarray
        ``biases[l]`` has shape ``(sizes[l + 1], 1)``; N(0, 1) at the start.
    weights : list of ndarray
        ``weights[l]`` has shape ``(sizes[l + 1], sizes[l])``; N(0, 1) at the start.
    fastbp_network : fastbp.Network
        The network fastbp trains; ``weights`` and ``biases`` are views of its arrays.
    """

    def __init__(self, sizes):
        # Validates sizes (a ValueError or TypeError naming the bad entry).
        self._net = _FastbpNetwork(list(sizes), activation=_ACT, output=_ACT, loss="mse",
                                   dtype="float64", seed=0, backend="cython")
        self.num_layers = len(sizes)
        self.sizes = sizes
        # The tutorial's initialisation, in its order: all biases, then all weights.
        biases = [np.random.randn(y, 1) for y in sizes[1:]]
        weights = [np.random.randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]
        self._bind()
        for view, value in zip(self._bias_views + self._weight_views, biases + weights):
            view[...] = value

    def _bind(self):
        """Point ``weights`` and ``biases`` at (views of) the fastbp network's arrays."""
        self._weight_views = list(self._net.weights)
        self._bias_views = [b.reshape(-1, 1) for b in self._net.biases]
        self.weights = list(self._weight_views)
        self.biases = list(self._bias_views)

    @property
    def fastbp_network(self):
        """The :class:`fastbp.Network` that holds the parameters and trains them."""
        self._sync()
        return self._net

    def _sync(self):
        """Copy weights or biases that user code replaced into the fastbp network.

        Arrays changed in place need nothing (they are the network's own); a new list or
        new arrays (``self.weights = [w - ...]``) are copied in, checked, and the
        attributes pointed back at the network's arrays.
        """
        weights, biases = self.weights, self.biases
        if (weights is not None and len(weights) == len(self._weight_views)
                and biases is not None and len(biases) == len(self._bias_views)
                and all(a is b for a, b in zip(weights, self._weight_views))
                and all(a is b for a, b in zip(biases, self._bias_views))):
            return
        n = self.num_layers - 1
        for name, values, views in (("weights", weights, self._weight_views),
                                    ("biases", biases, self._bias_views)):
            if values is None or not hasattr(values, "__len__") or len(values) != n:
                raise ValueError(f"{name} must be a list of {n} arrays (one per layer), got "
                                 f"{type(values).__name__} of length "
                                 f"{len(values) if hasattr(values, '__len__') else '?'}")
            for l, (value, view) in enumerate(zip(values, views)):
                if value is view:
                    continue
                array = np.asarray(value, dtype=np.float64)
                if array.shape != view.shape and not (name == "biases"
                                                      and array.shape == view.shape[:1]):
                    raise ValueError(f"{name}[{l}] must have shape {view.shape}, got "
                                     f"{array.shape}")
                view[...] = array.reshape(view.shape)
        self.weights = list(self._weight_views)
        self.biases = list(self._bias_views)

    def _overrides(self, *names):
        """Whether a subclass replaced any of these methods (then the tutorial's loop runs)."""
        cls = type(self)
        return any(getattr(cls, name) is not getattr(Network, name) for name in names)

    # ----- the tutorial's methods ----------------------------------------------------

    def feedforward(self, a):
        """The network's output for input ``a``: an ``(n_inputs, 1)`` column gives an
        ``(n_outputs, 1)`` column; an ``(n_inputs, m)`` matrix of columns gives
        ``(n_outputs, m)``."""
        self._sync()
        a = np.asarray(a, dtype=np.float64)
        n_in = self.sizes[0]
        if a.ndim == 2 and a.shape[0] == n_in:
            rows = a.T
        elif a.ndim == 1 and a.shape[0] == n_in:
            rows = a.reshape(1, n_in)
        else:
            raise ValueError(f"feedforward needs an ({n_in}, 1) column (or {n_in} rows of "
                             f"columns), got shape {a.shape}")
        for W, b in zip(self._net.weights, self._net.biases):
            rows = kernels.dense_forward(rows, W, b, _ACT)
        if a.ndim == 1:
            return rows[0]
        return np.ascontiguousarray(rows.T)

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        """Train by mini-batch stochastic gradient descent.

        Parameters
        ----------
        training_data : list of (x, y)
            ``x`` an ``(n_inputs, 1)`` column, ``y`` the desired ``(n_outputs, 1)``
            output (one-hot for classification).
        epochs : int
        mini_batch_size : int
            A last, smaller mini-batch takes the remaining samples.
        eta : float
            Learning rate: each mini-batch of ``m`` samples moves the parameters by
            ``-eta/m`` times its summed gradient of ``1/2 ||a - y||^2``.
        test_data : list of (x, int label), optional
            Evaluated after each epoch: ``Epoch j: correct / total`` is printed
            instead of ``Epoch j complete``.
        """
        training_data = list(training_data)
        n = len(training_data)
        if test_data is not None:
            test_data = list(test_data)
        if self._overrides("update_mini_batch", "backprop", "cost_derivative"):
            return self._tutorial_sgd(training_data, epochs, mini_batch_size, eta, test_data)
        self._sync()
        X, Y = self._training_arrays(training_data, "training_data") if n else (None, None)
        if n:
            _check_finite(X, "training_data[i][0]")
            _check_finite(Y, "training_data[i][1]")
        test_arrays = None
        if test_data and not self._overrides("evaluate", "feedforward"):
            test_arrays = self._test_arrays(test_data)
        net = self._net
        # Row i of the epoch is training_data[order[i]]. The tutorial shuffles its list in
        # place epoch after epoch; shuffling the indices the same way, with the same
        # random numbers, gives the same mini-batches.
        order = list(range(n))
        for j in range(epochs):
            random.shuffle(order)  # looked up at call time: random.seed and patches apply
            if n:
                # fit trains the rows in the order its _epoch_order hook gives.
                epoch_order = np.array(order, dtype=np.int64)
                net._epoch_order = lambda size, epoch_order=epoch_order: epoch_order
                try:
                    # The data were checked above: no scan of them for NaN every epoch.
                    net.fit(X, Y, epochs=1, batch_size=mini_batch_size, learning_rate=eta,
                            shuffle=True, resume=j > 0, check_input=False)
                finally:
                    del net._epoch_order
            if test_data:
                correct = (self._count_correct(*test_arrays) if test_arrays is not None
                           else self.evaluate(test_data))
                print(f"Epoch {j}: {correct} / {len(test_data)}", flush=True)
            else:
                print(f"Epoch {j} complete", flush=True)

    def update_mini_batch(self, mini_batch, eta):
        """One gradient-descent step on the samples of ``mini_batch`` (a list of (x, y))."""
        self._sync()
        mini_batch = list(mini_batch)
        if not mini_batch:
            raise ValueError("mini_batch is empty")
        if self._overrides("backprop", "cost_derivative"):
            nabla_b = [np.zeros(b.shape) for b in self._bias_views]
            nabla_w = [np.zeros(w.shape) for w in self._weight_views]
            for x, y in mini_batch:
                delta_b, delta_w = self.backprop(x, y)
                for total, d in zip(nabla_b + nabla_w, list(delta_b) + list(delta_w)):
                    total += d
            self._sync()  # backprop may have replaced arrays
            step = eta / len(mini_batch)
            for view, total in zip(self._bias_views + self._weight_views, nabla_b + nabla_w):
                view -= step * total
            return
        X, Y = self._training_arrays(mini_batch, "mini_batch")
        grad_w, grad_b = self._net.gradients(X, Y)  # the mean over the mini-batch
        for view, grad in zip(self._net.weights + self._net.biases, grad_w + grad_b):
            view -= eta * grad

    def backprop(self, x, y):
        """``(nabla_b, nabla_w)``: the gradient of the cost for the single sample (x, y),
        as lists shaped like ``biases`` and ``weights``."""
        self._sync()
        net = self._net
        x = np.asarray(x, dtype=np.float64)
        if x.size != self.sizes[0]:
            raise ValueError(f"x must be an ({self.sizes[0]}, 1) column, got shape {x.shape}")
        acts = [x.reshape(1, -1)]
        for W, b in zip(net.weights, net.biases):
            acts.append(kernels.dense_forward(acts[-1], W, b, _ACT))
        k = self.sizes[-1]
        error = np.asarray(self.cost_derivative(acts[-1].reshape(k, 1), y), dtype=np.float64)
        if error.size != k:
            raise ValueError(f"cost_derivative returned shape {error.shape}, expected ({k}, 1): "
                             f"y must be an ({k}, 1) column")
        delta = kernels.activation_backward(error.reshape(1, k), acts[-1], _ACT)
        nabla_b = [None] * len(net.weights)
        nabla_w = [None] * len(net.weights)
        for l in range(len(net.weights) - 1, -1, -1):
            nabla_b[l] = delta.reshape(-1, 1).copy()
            nabla_w[l] = kernels.weight_gradient(delta, acts[l])
            if l > 0:
                delta = kernels.backward_delta(delta, net.weights[l], acts[l], _ACT)
        return nabla_b, nabla_w

    def evaluate(self, test_data):
        """How many samples of ``test_data`` (a list of (x, int label)) the network gets
        right: the output neuron with the highest activation is its answer."""
        test_data = list(test_data)
        if self._overrides("feedforward"):
            return sum(int(np.argmax(self.feedforward(x)) == y) for x, y in test_data)
        if not test_data:
            return 0
        self._sync()
        return self._count_correct(*self._test_arrays(test_data))

    def cost_derivative(self, output_activations, y):
        """The vector of partial derivatives of the quadratic cost with respect to the
        output activations: ``output_activations - y``."""
        return output_activations - y

    # ----- the tutorial's loop, for subclasses that change its steps --------------------

    def _tutorial_sgd(self, training_data, epochs, mini_batch_size, eta, test_data):
        n = len(training_data)
        for j in range(epochs):
            random.shuffle(training_data)
            for k in range(0, n, mini_batch_size):
                self.update_mini_batch(training_data[k:k + mini_batch_size], eta)
            if test_data:
                print(f"Epoch {j}: {self.evaluate(test_data)} / {len(test_data)}", flush=True)
            else:
                print(f"Epoch {j} complete", flush=True)

    # ----- the tutorial's lists as arrays --------------------------------------------

    def _training_arrays(self, data, name):
        """X (n, n_inputs) and Y (n, n_outputs), float64, from a list of (x, y) columns."""
        X = _stack_columns([x for x, _ in data], self.sizes[0], f"{name}[i][0]")
        first = np.asarray(data[0][1])
        if first.ndim == 0 and first.dtype.kind in "iu":
            # Integer labels: one-hot targets (the tutorial itself needs the columns).
            labels = _labels([y for _, y in data], self.sizes[-1], f"{name}[i][1]")
            Y = np.zeros((len(data), self.sizes[-1]))
            Y[np.arange(len(data)), labels] = 1
        else:
            Y = _stack_columns([y for _, y in data], self.sizes[-1], f"{name}[i][1]")
        return X, Y

    def _test_arrays(self, data):
        """X (n, n_inputs) float64, checked finite, and int labels (n,) from a list of
        (x, label)."""
        X = _stack_columns([x for x, _ in data], self.sizes[0], "test_data[i][0]")
        _check_finite(X, "test_data[i][0]")
        return X, _labels([y for _, y in data], self.sizes[-1], "test_data[i][1]")

    def _count_correct(self, X, labels):
        """Samples whose highest output is their label (the tutorial's argmax), from
        arrays made by _test_arrays: one blocked forward pass, no re-checking."""
        correct = 0
        for start, stop, A in self._net._blocks(X):
            correct += int(np.count_nonzero(A.argmax(axis=1) == labels[start:stop]))
        return correct

    # ----- copying and pickling: the views must survive ------------------------------

    def __getstate__(self):
        self._sync()
        state = {key: value for key, value in self.__dict__.items()
                 if key not in ("_net", "_weight_views", "_bias_views")}
        state["weights"] = [w.copy() for w in self._weight_views]
        state["biases"] = [b.copy() for b in self._bias_views]
        return state

    def __setstate__(self, state):
        weights, biases = state["weights"], state["biases"]
        self.__dict__.update(state)
        self._net = _FastbpNetwork(list(self.sizes), activation=_ACT, output=_ACT,
                                   loss="mse", dtype="float64", seed=0, backend="cython")
        self._bind()
        for view, value in zip(self._weight_views + self._bias_views, weights + biases):
            view[...] = value

    def __repr__(self):
        return f"fastbp.compat.network.Network({list(self.sizes)})"


# Columns made by fastbp.compat.tutorial_data are (size, 1) views of the consecutive rows
# of one C-contiguous float64 array. tutorial_data registers that array here, by id, with
# a weak reference to it and one to each of its columns, so that _stack_columns can hand
# the array's rows to fit without copying them, once it has checked that the columns it
# got are those very objects, in order. Weak references keep nothing alive: the entry
# goes away with the array (which lives as long as any of its columns).
_REGISTERED = {}


def _register_rows(base, columns):
    """Record that ``columns[i]`` is a view of row ``i`` of ``base`` (C-contiguous,
    float64, 2-D), made by tutorial_data."""
    key = id(base)

    def forget(ref):
        if _REGISTERED.get(key, (None,))[0] is ref:
            del _REGISTERED[key]

    _REGISTERED[key] = (weakref.ref(base, forget), [weakref.ref(c) for c in columns])


def _registered_rows(columns, size):
    """The rows of the array registered columns view, as a view of it, when
    ``columns`` are consecutive registered columns in order, still (size, 1) float64;
    else None."""
    first = columns[0]
    if type(first) is not np.ndarray:
        return None
    base = first.base
    entry = _REGISTERED.get(id(base))
    if entry is None or entry[0]() is not base or base.shape[1] != size:
        return None
    refs = entry[1]
    offset = first.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    start, remainder = divmod(offset, base.strides[0])
    n = len(columns)
    if remainder or not 0 <= start <= len(refs) - n:
        return None
    shape, float64 = (size, 1), base.dtype
    for ref, column in zip(refs[start:start + n], columns):
        if ref() is not column or column.shape != shape or column.dtype is not float64:
            return None
    return base[start:start + n]


def _stack_columns(columns, size, name):
    """The columns (each ``size`` numbers, e.g. shape (size, 1)) as the rows of a
    C-contiguous float64 array (n, size): a view of the array that tutorial_data's
    columns view, else a copy."""
    n = len(columns)
    if n:
        rows = _registered_rows(columns, size)
        if rows is not None:
            return rows
    shape = (size, 1)
    if n and all(type(column) is np.ndarray and column.shape == shape for column in columns):
        # The tutorial's columns: each reshaped to a row (a view when it is contiguous),
        # each row one contiguous copy. (Not written through a transposed view of the
        # result: a strided write, which issue 9 measured at half of a tutorial run on
        # another machine.)
        try:
            return np.concatenate([column.reshape(1, size) for column in columns], axis=0,
                                  dtype=np.float64, casting="same_kind")
        except TypeError:
            pass  # complex, object or text data: reported below
    X = np.empty((n, size))
    for i, column in enumerate(columns):
        array = np.asarray(column)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers; item {i} has dtype {array.dtype}")
        if array.size != size or array.ndim > 2 or (array.ndim == 2 and 1 not in array.shape):
            raise ValueError(f"{name} must be ({size}, 1) columns; item {i} has shape "
                             f"{array.shape}")
        X[i] = array.reshape(size)
    return X


def _check_finite(X, name):
    if not all_finite(X):
        raise ValueError(f"{name} contains NaN or inf")


def _labels(values, n_classes, name):
    """Int labels in [0, n_classes) from ints or one-hot columns."""
    array = np.asarray(values)
    if array.ndim == 1 and array.dtype.kind in "iu":
        labels = array.astype(np.int64)
    elif array.dtype.kind in "biuf" and array.ndim >= 2 and array[0].size == n_classes:
        labels = array.reshape(len(values), n_classes).argmax(axis=1)
    else:
        raise ValueError(f"{name} must be int labels (or ({n_classes}, 1) one-hot columns), "
                         f"got an array of shape {array.shape} and dtype {array.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{name}: labels must be in [0, {n_classes - 1}], got "
                         f"[{labels.min()}, {labels.max()}]")
    return labels
