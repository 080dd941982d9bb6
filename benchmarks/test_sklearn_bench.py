"""fastbp.sklearn.MLPClassifier against scikit-learn's MLPClassifier, end to end.

The same estimator call on both sides: Fashion-MNIST (60000 training images, float32),
``hidden_layer_sizes=(100,)``, relu, adam, ``batch_size=200``, ``max_iter=10`` with
``tol=0`` (so both train exactly 10 epochs), ``random_state=0``. Each round times one
``fit`` on a fresh estimator; the test accuracy of the last round is recorded in
``extra_info["test_accuracy"]``. fastbp uses its default threads (all cores), scikit-learn
its BLAS's default.

    pytest benchmarks/test_sklearn_bench.py --benchmark-only
"""

import warnings

import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastbp  # noqa: E402
from fastbp.datasets import load_fashion_mnist  # noqa: E402

EPOCHS = 10
PARAMS = dict(hidden_layer_sizes=(100,), activation="relu", solver="adam", batch_size=200,
              max_iter=EPOCHS, tol=0.0, random_state=0)


@pytest.fixture(scope="module")
def fashion_mnist():
    try:
        return load_fashion_mnist()
    except FileNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST is not installed ({exc}); "
                    "apt-get install dataset-fashion-mnist or set FASTBP_DATA")


def _estimator(impl):
    if impl == "fastbp":
        from fastbp.sklearn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    return MLPClassifier(**PARAMS)


@pytest.mark.parametrize("impl", ["fastbp", "sklearn"])
def test_mlp_classifier_fashion_mnist(benchmark, fashion_mnist, impl):
    (X, y), (X_test, y_test) = fashion_mnist
    benchmark.group = f"MLPClassifier fit 784-100-10 relu adam b200, {EPOCHS} epochs"
    fitted = []

    def setup():
        return (_estimator(impl),), {}

    def fit(clf):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        fitted.append(clf)

    benchmark.pedantic(fit, setup=setup, rounds=2, iterations=1)
    clf = fitted[-1]
    assert clf.n_iter_ == EPOCHS
    accuracy = float(clf.score(X_test, y_test))
    benchmark.extra_info.update(test_accuracy=accuracy, epochs=clf.n_iter_,
                                samples=len(X), fastbp_threads=fastbp.get_num_threads())
    assert accuracy > 0.8
