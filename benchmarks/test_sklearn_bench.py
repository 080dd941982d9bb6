"""fastbp.sklearn.MLPClassifier against scikit-learn's MLPClassifier, end to end.

The same estimator call on both sides: Fashion-MNIST (60000 training images, float32),
``hidden_layer_sizes=(100,)``, relu, adam, ``batch_size=200``, ``max_iter=10`` with
``tol=0`` (so both train exactly 10 epochs), ``random_state=0``. Each round times one
``fit`` on a fresh estimator; the test accuracy (10000 test images) of the last round
is recorded in ``extra_info["test_accuracy"]``, and compare.py prints both. Both get
``FASTBP_BENCH_THREADS`` threads: fastbp's own, scikit-learn's BLAS through
threadpoolctl (conftest.py). With ``FASTBP_BENCH_QUICK=1``: 3000 images, 2 epochs.

    pytest benchmarks/test_sklearn_bench.py --benchmark-only
"""

import warnings

import pytest

pytest.importorskip("sklearn")

from _config import QUICK  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastbp  # noqa: E402

EPOCHS = 2 if QUICK else 10
SAMPLES = 3000 if QUICK else None  # None: all 60000
PARAMS = dict(hidden_layer_sizes=(100,), activation="relu", solver="adam", batch_size=200,
              max_iter=EPOCHS, tol=0.0, random_state=0)


def _estimator(impl):
    if impl == "fastbp":
        from fastbp.sklearn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    return MLPClassifier(**PARAMS)


@pytest.mark.parametrize("impl", ["fastbp", "sklearn"])
def test_mlp_classifier_fashion_mnist(benchmark, fashion_mnist, impl):
    (X, y), (X_test, y_test) = fashion_mnist
    X, y = X[:SAMPLES], y[:SAMPLES]
    benchmark.group = f"MLPClassifier fit 784-100-10 relu adam b200, {EPOCHS} epochs"
    fitted = []

    def setup():
        return (_estimator(impl),), {}

    def fit(clf):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        fitted.append(clf)

    benchmark.pedantic(fit, setup=setup, rounds=1 if QUICK else 2, iterations=1)
    clf = fitted[-1]
    assert clf.n_iter_ == EPOCHS
    accuracy = float(clf.score(X_test, y_test))
    benchmark.extra_info.update(test_accuracy=accuracy, epochs=clf.n_iter_,
                                samples=len(X), fastbp_threads=fastbp.get_num_threads())
    assert accuracy > (0.6 if QUICK else 0.8)
