"""Familiar APIs on fastbp's engine.

``fastbp.compat.network`` is the ``network.py`` of Michael Nielsen's *Neural Networks
and Deep Learning* (chapter 1): the same ``Network(sizes)`` with ``SGD``,
``feedforward``, ``evaluate``, ``backprop``, ``update_mini_batch``, ``weights`` and
``biases``, trained by fastbp's compiled engine. Swap one import::

    from fastbp.compat import network          # was: import network

:func:`tutorial_data` turns arrays (e.g. from :mod:`fastbp.datasets`) into the
tutorial's lists of ``(x, y)`` column vectors.
"""

import numbers

import numpy as np

from fastbp.compat import network
from fastbp.compat.network import Network

__all__ = ["network", "Network", "tutorial_data"]


def tutorial_data(X, y, one_hot=False, n_classes=None):
    """Samples in the tutorial's format: a list of ``(x, y)`` pairs.

    Parameters
    ----------
    X : array_like of shape (n, n_features)
        One sample per row (e.g. ``X_train`` of :func:`fastbp.datasets.load_fashion_mnist`).
    y : array_like of int, shape (n,)
        Class labels.
    one_hot : bool
        False (test data): each ``y`` is the int label. True (training data): each ``y``
        is an ``(n_classes, 1)`` one-hot float64 column, the tutorial's
        ``vectorized_result``.
    n_classes : int, optional
        Number of classes for ``one_hot``; default ``max(y) + 1``.

    Returns
    -------
    list of (ndarray of shape (n_features, 1), int or ndarray of shape (n_classes, 1))
        The ``x`` columns are float64 views of one array, as the tutorial's loader makes.
    """
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"y must hold int class labels, got dtype {labels.dtype}")
    if labels.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {labels.shape}")
    if not isinstance(one_hot, (bool, np.bool_)):
        raise TypeError(f"one_hot must be True or False, got {one_hot!r}")
    if n_classes is not None and (isinstance(n_classes, (bool, np.bool_))
                                  or not isinstance(n_classes, numbers.Integral)):
        raise TypeError(f"n_classes must be an int, got {n_classes!r}")
    X = np.array(X, dtype=np.float64, order="C")  # a copy: the columns are views of it
    xs = [row.reshape(-1, 1) for row in X]
    # Network.SGD and evaluate train on X itself, not on a copy of the columns.
    network._register_rows(X, xs)
    if not one_hot:
        return list(zip(xs, labels.tolist()))
    from fastbp.datasets import one_hot as encode

    Y = encode(labels, n_classes, dtype=np.float64)
    ys = [row.reshape(-1, 1) for row in Y]
    network._register_rows(Y, ys)
    return list(zip(xs, ys))
