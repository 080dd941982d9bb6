"""Tests for fastbp.sklearn: scikit-learn's MLP estimators on fastbp's Network.

Most behaviour is checked against scikit-learn's own MLPClassifier/MLPRegressor: both
start from the same parameters (same initialisation, same random_state), so with
``shuffle=False`` they see the same mini-batches and, in float64, must end with the
same parameters and losses. The exceptions are documented in fastbp/sklearn.py: the
last, partial mini-batch of an epoch (L2 scaled by 1/batch_size rather than 1/m, hence
``alpha=0`` or a batch size dividing n below when comparing exactly) and the L2 part
of the reported loss (evaluated at the end of the epoch).
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network as sk  # noqa: E402
from sklearn.datasets import make_moons, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastbp.datasets import load_digits  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Exact comparisons with scikit-learn: float64 on both sides, same batches.
EXACT = {"rtol": 1e-9, "atol": 1e-11}


@pytest.fixture(scope="module")
def digits64():
    (X, y), (X_test, y_test) = load_digits(dtype=np.float64)
    return X, y, X_test, y_test  # 1348 training samples


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    Y = np.c_[2 * X[:, 0] + X[:, 1], np.sin(X[:, 2]) + 0.5 * X[:, 3] * X[:, 4]]
    return X, Y


def params_of(est):
    return est.coefs_ + est.intercepts_


def assert_same_params(a, b, **tol):
    for p, q in zip(params_of(a), params_of(b), strict=True):
        np.testing.assert_allclose(p, q, **(tol or EXACT))


def quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


# ----- scikit-learn's own estimator checks -------------------------------------------

# max_iter=100 is what scikit-learn's own test-suite sets for its MLPs in these checks.
@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ----- composition --------------------------------------------------------------------

def test_pipeline_and_grid_search(digits64):
    X, y, X_test, y_test = digits64
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(max_iter=30, random_state=0))])
    grid = GridSearchCV(pipe, {"mlp__hidden_layer_sizes": [(16,), (32,)],
                               "mlp__alpha": [1e-4, 1e-1]}, cv=3)
    quiet_fit(grid, X, y)
    assert grid.best_params_["mlp__hidden_layer_sizes"] in [(16,), (32,)]
    assert grid.best_score_ > 0.9
    assert grid.score(X_test, y_test) > 0.9
    assert grid.predict(X_test).shape == y_test.shape
    assert grid.best_estimator_.named_steps["mlp"].coefs_[0].shape[0] == 64


# ----- fitted attributes ------------------------------------------------------------------

def test_attributes_and_layout(digits64):
    X, y, X_test, _ = digits64
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(30, 20), max_iter=5, random_state=0),
                    X, y)
    assert [c.shape for c in clf.coefs_] == [(64, 30), (30, 20), (20, 10)]
    assert [b.shape for b in clf.intercepts_] == [(30,), (20,), (10,)]
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 10 and clf.n_features_in_ == 64
    assert clf.out_activation_ == "softmax"
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_iter_ == 5 and clf.t_ == 5 * len(X) and len(clf.loss_curve_) == 5
    assert clf.loss_ == clf.loss_curve_[-1] and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    # coefs_[l] is the transpose of fastbp's W[l] (out, in): the same memory.
    for c, W in zip(clf.coefs_, clf._network.weights):
        assert np.shares_memory(c, W)
        np.testing.assert_array_equal(c, W.T)

    def forward(coefs, intercepts):
        A = X_test
        for layer, (c, b) in enumerate(zip(coefs, intercepts)):
            A = A @ c + b
            if layer < len(coefs) - 1:
                A = np.maximum(A, 0)
        E = np.exp(A - A.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    np.testing.assert_allclose(clf.predict_proba(X_test), forward(clf.coefs_, clf.intercepts_),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X_test),
                               np.log(clf.predict_proba(X_test)))
    # Arrays assigned to coefs_ / intercepts_ are what predicts.
    rng = np.random.default_rng(1)
    clf.coefs_ = [rng.normal(size=c.shape) for c in clf.coefs_]
    clf.intercepts_[0] = rng.normal(size=30)
    np.testing.assert_allclose(clf.predict_proba(X_test), forward(clf.coefs_, clf.intercepts_),
                               rtol=1e-9, atol=1e-12)


def test_same_initialisation_as_sklearn(digits64):
    X, y, _, _ = digits64
    for activation in ("relu", "logistic"):
        kw = dict(hidden_layer_sizes=(7,), activation=activation, random_state=3,
                  solver="sgd", learning_rate_init=1e-12, max_iter=1, shuffle=False)
        ours, theirs = quiet_fit(MLPClassifier(**kw), X, y), quiet_fit(sk.MLPClassifier(**kw), X, y)
        assert_same_params(ours, theirs, rtol=1e-9, atol=1e-10)


def test_pickle_round_trip_and_partial_fit_state(digits64):
    X, y, X_test, _ = digits64
    clf = MLPClassifier(hidden_layer_sizes=(20,), random_state=0, shuffle=False)
    clf.partial_fit(X, y, classes=np.arange(10))
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X_test), clf.predict_proba(X_test))
    assert np.shares_memory(copy.coefs_[0], copy._network.weights[0])
    # The Adam moments travel with the pickle: both continue identically.
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)
    assert_same_params(copy, clf, rtol=0, atol=0)


# ----- agreement with scikit-learn -----------------------------------------------------

def test_digits_accuracy_like_sklearn():
    (X, y), (X_test, y_test) = load_digits()
    kw = dict(hidden_layer_sizes=(100,), solver="adam", max_iter=100, random_state=0)
    ours = quiet_fit(MLPClassifier(**kw), X, y).score(X_test, y_test)
    theirs = quiet_fit(sk.MLPClassifier(**kw), X, y).score(X_test, y_test)
    assert ours >= 0.9 and theirs >= 0.9
    assert abs(ours - theirs) < 0.03


@pytest.mark.parametrize("kw", [
    dict(solver="sgd", learning_rate_init=0.05, alpha=0.0),                    # nesterov
    dict(solver="sgd", learning_rate_init=0.05, nesterovs_momentum=False, batch_size=337),
    dict(solver="sgd", learning_rate_init=0.1, momentum=0.0, alpha=0.0),
    dict(solver="adam", alpha=0.0),
    dict(solver="adam", alpha=1e-2, batch_size=337),                           # 1348 = 4 * 337
], ids=["nesterov", "momentum-l2", "plain-sgd", "adam", "adam-l2"])
def test_epochs_match_sklearn(digits64, kw):
    X, y, _, _ = digits64
    kw = dict(hidden_layer_sizes=(32,), random_state=0, shuffle=False, max_iter=4, tol=0, **kw)
    ours = quiet_fit(MLPClassifier(**kw), X, y)
    theirs = quiet_fit(sk.MLPClassifier(**kw), X, y)
    assert_same_params(ours, theirs)
    # The L2 part of the reported loss uses the end-of-epoch weights (see module doc).
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_,
                               rtol=1e-9 if kw.get("alpha", 1e-4) == 0 else 1e-4)
    assert ours.t_ == theirs.t_ and ours.n_iter_ == theirs.n_iter_


def test_partial_batch_l2_is_close_to_sklearn(digits64):
    """The documented difference: alpha / batch_size on the last, partial batch."""
    X, y, _, _ = digits64
    kw = dict(hidden_layer_sizes=(32,), random_state=0, shuffle=False, max_iter=3, tol=0,
              solver="sgd", learning_rate_init=0.05)  # alpha=1e-4, batches of 200 + 148
    ours = quiet_fit(MLPClassifier(**kw), X, y)
    theirs = quiet_fit(sk.MLPClassifier(**kw), X, y)
    assert_same_params(ours, theirs, rtol=0, atol=1e-6)


def test_float32_preserved(digits64, regression_data):
    X, y, X_test, _ = digits64
    X32 = X.astype(np.float32)
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=2), X32, y)
    assert all(c.dtype == np.float32 for c in params_of(clf))
    assert clf.predict_proba(X_test.astype(np.float32)).dtype == np.float32
    assert clf._network.dtype == np.float32
    clf64 = quiet_fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=2), X, y)
    assert all(c.dtype == np.float64 for c in params_of(clf64))
    Xr, Yr = regression_data
    for solver in ("adam", "lbfgs"):
        reg = quiet_fit(MLPRegressor(hidden_layer_sizes=(8,), solver=solver, max_iter=5),
                        Xr.astype(np.float32), Yr)
        assert reg.coefs_[0].dtype == np.float32
        assert reg.predict(Xr.astype(np.float32)).dtype == np.float32


# ----- partial_fit and warm_start ----------------------------------------------------------

def test_partial_fit_matches_sklearn(digits64):
    X, y, X_test, y_test = digits64
    ours = MLPClassifier(hidden_layer_sizes=(32,), random_state=0, shuffle=False, alpha=0.0)
    theirs = sk.MLPClassifier(hidden_layer_sizes=(32,), random_state=0, shuffle=False,
                              alpha=0.0)
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X, y)
    classes = np.arange(10)
    for part in np.array_split(np.arange(len(X)), 3):
        ours.partial_fit(X[part], y[part], classes=classes)
        theirs.partial_fit(X[part], y[part], classes=classes)
        assert ours.n_iter_ == 1
    assert ours.t_ == theirs.t_ == len(X)
    assert_same_params(ours, theirs)
    with pytest.raises(ValueError, match="not the same as on last call"):
        ours.partial_fit(X, y, classes=np.arange(11))
    for _ in range(5):  # later calls need no classes and carry on Adam's state
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    assert_same_params(ours, theirs, rtol=1e-7, atol=1e-9)
    assert ours.score(X_test, y_test) == theirs.score(X_test, y_test)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


def test_warm_start_continues(digits64):
    X, y, _, _ = digits64
    kw = dict(hidden_layer_sizes=(32,), random_state=0, shuffle=False, max_iter=3, tol=0,
              alpha=0.0, solver="sgd", learning_rate_init=0.05)
    ours, theirs = MLPClassifier(warm_start=True, **kw), sk.MLPClassifier(warm_start=True, **kw)
    for est in (ours, theirs):
        quiet_fit(est, X, y)
        first = [c.copy() for c in params_of(est)]
        quiet_fit(est, X, y)
    assert len(ours.loss_curve_) == 6 and ours.t_ == 6 * len(X) and ours.n_iter_ == 3
    assert_same_params(ours, theirs)
    # Without warm_start, a refit starts again from the initialisation.
    cold = MLPClassifier(**kw)
    quiet_fit(cold, X, y)
    quiet_fit(cold, X, y)
    assert len(cold.loss_curve_) == 3
    for c, f in zip(params_of(cold), first):
        np.testing.assert_allclose(c, f, **EXACT)
    with pytest.raises(ValueError, match="same classes"):
        ours.fit(X[y < 5], y[y < 5])


# ----- stopping rules ------------------------------------------------------------------------

def test_tol_convergence_like_sklearn(digits64):
    X, y, _, _ = digits64
    kw = dict(hidden_layer_sizes=(16,), random_state=0, shuffle=False, alpha=0.0,
              max_iter=200, tol=1e-2, n_iter_no_change=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # converges: no warning
        ours = MLPClassifier(**kw).fit(X, y)
        theirs = sk.MLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    np.testing.assert_allclose(ours.best_loss_, theirs.best_loss_, rtol=1e-9)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=2).fit(X, y)


def test_early_stopping_keeps_best(digits64):
    X, y, X_test, y_test = digits64
    kw = dict(hidden_layer_sizes=(32,), random_state=0, early_stopping=True,
              validation_fraction=0.2, n_iter_no_change=3, tol=0.0, max_iter=200,
              solver="sgd", learning_rate_init=0.2)
    clf = MLPClassifier(**kw).fit(X, y)
    scores = clf.validation_scores_
    assert 4 <= clf.n_iter_ == len(scores) < 200 and clf.best_loss_ is None
    assert clf.best_validation_score_ == max(scores)
    best_epoch = int(np.argmax(scores)) + 1
    # tol=0: training stops after n_iter_no_change + 1 epochs in a row below the best.
    assert clf.n_iter_ >= best_epoch + 4
    # The parameters kept are those of the best epoch: the same run cut there.
    cut = quiet_fit(MLPClassifier(**{**kw, "max_iter": best_epoch}), X, y)
    assert_same_params(clf, cut, rtol=0, atol=0)
    assert clf.score(X_test, y_test) > 0.85
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.arange(10))


def test_lbfgs_converges_like_sklearn():
    X, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    kw = dict(hidden_layer_sizes=(10,), solver="lbfgs", random_state=0, max_iter=500,
              activation="tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = MLPClassifier(**kw).fit(X, y)
    theirs = quiet_fit(sk.MLPClassifier(**kw), X, y)
    assert ours.n_iter_ < 500 and ours.score(X, y) == 1.0
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    assert_same_params(ours, theirs, rtol=1e-6, atol=1e-6)
    assert not hasattr(ours, "loss_curve_")
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPClassifier(**{**kw, "max_iter": 3}).fit(X, y)


# ----- learning-rate schedules -----------------------------------------------------------------

def test_invscaling_schedule(digits64):
    X, y, _, _ = digits64
    n = len(X)
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate="invscaling",
              learning_rate_init=0.5, power_t=0.3, max_iter=5, tol=0, random_state=0,
              shuffle=False, alpha=0.0)
    ours = quiet_fit(MLPClassifier(**kw), X, y)
    # scikit-learn's SGDOptimizer.iteration_ends(t): lr = init / (t + 1) ** power_t after
    # each epoch, t the samples seen so far; the first epoch runs at learning_rate_init.
    expected = [0.5] + [0.5 / (e * n + 1) ** 0.3 for e in range(1, 5)]
    np.testing.assert_allclose(ours.learning_rate_curve_, expected, rtol=1e-15)
    theirs = quiet_fit(sk.MLPClassifier(**kw), X, y)
    assert_same_params(ours, theirs)
    # Adam ignores the schedule.
    adam = quiet_fit(MLPClassifier(**{**kw, "solver": "adam"}), X, y)
    assert adam.learning_rate_curve_ == [0.5] * 5


def test_adaptive_schedule(digits64):
    X, y, _, _ = digits64
    # tol=10: after the first epoch (which improves on best_loss_=inf) no epoch improves
    # enough, so the rule fires every 3 epochs (count > n_iter_no_change=2), dividing the
    # rate by 5, until it finds the rate <= 1e-6 and stops.
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate="adaptive",
              learning_rate_init=1e-3, tol=10.0, n_iter_no_change=2, max_iter=100,
              random_state=0, shuffle=False, alpha=0.0)
    ours = MLPClassifier(**kw).fit(X, y)
    expected = [1e-3] * 4 + [1e-3 / 5 ** k for k in range(1, 6) for _ in range(3)]
    np.testing.assert_allclose(ours.learning_rate_curve_, expected, rtol=1e-15)
    theirs = sk.MLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 19
    assert theirs._optimizer.learning_rate == pytest.approx(expected[-1], rel=1e-15)
    assert_same_params(ours, theirs)


# ----- targets: multi-label, binary, regression ------------------------------------------

def test_multilabel():
    X, Y = make_multilabel_classification(n_samples=300, n_features=10, n_classes=4,
                                          random_state=0)
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0),
                    X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    assert clf.predict(X).shape == (300, 4)
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 4) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    theirs = quiet_fit(sk.MLPClassifier(hidden_layer_sizes=(32,), max_iter=300,
                                        random_state=0), X, Y)
    assert clf.score(X, Y) > theirs.score(X, Y) - 0.1  # subset accuracy
    kw = dict(hidden_layer_sizes=(8,), random_state=0, shuffle=False, max_iter=3, tol=0,
              alpha=0.0)
    assert_same_params(quiet_fit(MLPClassifier(**kw), X, Y),
                       quiet_fit(sk.MLPClassifier(**kw), X, Y))


def test_binary_string_labels(digits64):
    X, y, X_test, y_test = digits64
    labels = np.where(y % 2 == 0, "even", "odd")
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0),
                    X, labels)
    np.testing.assert_array_equal(clf.classes_, ["even", "odd"])
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    assert clf.predict_proba(X_test).shape == (len(X_test), 2)
    assert set(clf.predict(X_test)) <= {"even", "odd"}
    assert clf.score(X_test, np.where(y_test % 2 == 0, "even", "odd")) > 0.9
    kw = dict(hidden_layer_sizes=(8,), random_state=0, shuffle=False, max_iter=3, tol=0,
              alpha=0.0)
    assert_same_params(quiet_fit(MLPClassifier(**kw), X, labels),
                       quiet_fit(sk.MLPClassifier(**kw), X, labels))


def test_regression(regression_data):
    X, Y = regression_data
    reg = quiet_fit(MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0,
                                 learning_rate_init=0.01), X, Y)
    assert reg.out_activation_ == "identity" and reg.n_outputs_ == 2
    assert reg.predict(X).shape == (300, 2) and reg.score(X, Y) > 0.9
    single = quiet_fit(MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0,
                                    learning_rate_init=0.01), X, Y[:, 0])
    assert single.predict(X).shape == (300,) and single.score(X, Y[:, 0]) > 0.95
    # Same parameters and the same reported loss (squared error averaged over outputs).
    kw = dict(hidden_layer_sizes=(8,), random_state=0, shuffle=False, max_iter=3, tol=0,
              alpha=0.0)
    ours, theirs = quiet_fit(MLPRegressor(**kw), X, Y), quiet_fit(sk.MLPRegressor(**kw), X, Y)
    assert_same_params(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    lbfgs = dict(kw, solver="lbfgs", max_iter=50)
    ours, theirs = quiet_fit(MLPRegressor(**lbfgs), X, Y[:, 0]), \
        quiet_fit(sk.MLPRegressor(**lbfgs), X, Y[:, 0])
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)


# ----- errors ---------------------------------------------------------------------------------

def test_errors(regression_data):
    from scipy import sparse

    X, Y = regression_data
    with pytest.raises(ValueError, match="poisson"):
        MLPRegressor(loss="poisson").fit(X, Y)
    with pytest.raises(ValueError, match="'activation' parameter"):
        MLPRegressor(activation="softmax").fit(X, Y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPRegressor(hidden_layer_sizes=(3, 0)).fit(X, Y)
    with pytest.raises(TypeError, match="dense data is required"):
        MLPRegressor().fit(sparse.csr_matrix(X), Y)
    with pytest.raises(ValueError, match="non-finite"):
        MLPRegressor(solver="sgd", learning_rate_init=10.0, momentum=0.0, max_iter=50).fit(
            X, 1e6 * Y)
    reg = quiet_fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=2), X, Y)
    with pytest.raises(ValueError, match="warm_start / partial_fit continue"):
        reg.set_params(warm_start=True, hidden_layer_sizes=(5,)).fit(X, Y)


def test_verbose(digits64, capsys):
    X, y, _, _ = digits64
    quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, verbose=True), X, y)
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out and "Iteration 2, loss = " in out
    quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=2, verbose=True),
              X, y)
    assert "Iteration 1, loss = " in capsys.readouterr().out


def test_fastbp_imports_without_sklearn(tmp_path):
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import fastbp\n"
        "try:\n"
        "    import fastbp.sklearn\n"
        "except ImportError as exc:\n"
        "    assert 'pip install fastbp[sklearn]' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    # From another folder: the repository's root holds an unbuilt source tree in CI.
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


# ----- sample weights (issue 13) -------------------------------------------------------

def weights_for(n):
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 3, n)
    w[:50] = 0  # a batch and a half of zeros
    return w


@pytest.mark.parametrize("solver,extra", [("sgd", dict(learning_rate_init=0.05)),
                                          ("adam", {})], ids=["sgd", "adam"])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_weighted_fit_matches_sklearn(digits64, kind, solver, extra):
    """shuffle=False, alpha=0, float64: scikit-learn's coefs_ to 1e-10 and its losses."""
    X, y, _, _ = digits64
    if kind == "classifier":
        ours_cls, theirs_cls, target = MLPClassifier, sk.MLPClassifier, y
    else:
        ours_cls, theirs_cls = MLPRegressor, sk.MLPRegressor
        target = np.c_[X[:, :3].sum(axis=1), X[:, 5] * X[:, 7]]
    w = weights_for(len(X))
    w_given = w.copy()
    kw = dict(hidden_layer_sizes=(32,), random_state=0, shuffle=False, max_iter=4, tol=0,
              alpha=0.0, solver=solver, **extra)
    ours = quiet_fit(ours_cls(**kw), X, target, sample_weight=w)
    theirs = quiet_fit(theirs_cls(**kw), X, target, sample_weight=w)
    np.testing.assert_array_equal(w, w_given)
    for p, q in zip(params_of(ours), params_of(theirs), strict=True):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    # The weights matter: unweighted training ends elsewhere.
    plain = quiet_fit(ours_cls(**kw), X, target)
    assert not np.allclose(plain.coefs_[0], ours.coefs_[0], atol=1e-6)


def test_weighted_partial_fit_matches_sklearn(digits64):
    X, y, _, _ = digits64
    w = weights_for(len(X))
    kw = dict(hidden_layer_sizes=(32,), random_state=0, shuffle=False, alpha=0.0)
    ours, theirs = MLPClassifier(**kw), sk.MLPClassifier(**kw)
    classes = np.arange(10)
    for part in np.array_split(np.arange(len(X)), 3):
        # scikit-learn's positional order: (X, y, sample_weight, classes)
        ours.partial_fit(X[part], y[part], w[part], classes)
        theirs.partial_fit(X[part], y[part], w[part], classes)
    ours.partial_fit(X, y, sample_weight=w)
    theirs.partial_fit(X, y, sample_weight=w)
    assert_same_params(ours, theirs, rtol=0, atol=1e-10)
    reg, sk_reg = MLPRegressor(**kw), sk.MLPRegressor(**kw)
    reg.partial_fit(X, y.astype(float), w)
    sk_reg.partial_fit(X, y.astype(float), w)
    assert_same_params(reg, sk_reg, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_weighted_lbfgs_is_repeated_rows(digits64, kind):
    X, y, _, _ = digits64
    X, y = X[:200], y[:200]
    w = np.random.default_rng(1).integers(0, 3, len(X))
    est = (MLPClassifier if kind == "classifier" else MLPRegressor)(
        hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20, random_state=0, alpha=1e-3)
    target = y if kind == "classifier" else y.astype(float)
    weighted = quiet_fit(clone_of(est), X, target, sample_weight=w)
    repeated = quiet_fit(clone_of(est), np.repeat(X, w, axis=0), np.repeat(target, w))
    assert_same_params(weighted, repeated, rtol=1e-6, atol=1e-8)
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-8)


def clone_of(est):
    return sklearn.base.clone(est)


def test_weighted_early_stopping_splits_the_weights(digits64):
    X, y, _, _ = digits64
    w = np.ones(len(X))
    w[y == 3] = 5.0
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, max_iter=10,
                                  learning_rate_init=0.01, random_state=0),
                    X, y, sample_weight=w)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.score(X, y, sample_weight=w) > 0.8


def test_sample_weight_errors(digits64):
    X, y, _, _ = digits64
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="non-zero|all zeros"):
        MLPRegressor(max_iter=1, solver="lbfgs").fit(X, y.astype(float),
                                                     sample_weight=np.zeros(len(X)))


# ----- review defects (issue 13) -------------------------------------------------------

@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_momentum_one_is_accepted_as_by_sklearn(digits64, solver):
    """defect 4: momentum in [0, 1]; adam ignores it but checks it."""
    X, y, _, _ = digits64
    kw = dict(hidden_layer_sizes=(8,), solver=solver, momentum=1.0, max_iter=2,
              random_state=0, learning_rate_init=1e-4)
    ours = quiet_fit(MLPClassifier(**kw), X, y)
    theirs = quiet_fit(sk.MLPClassifier(**kw), X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 2


def test_parameter_errors_are_sklearns_invalid_parameter_error(digits64):
    from sklearn.utils._param_validation import InvalidParameterError

    X, y, _, _ = digits64
    for params in (dict(momentum=1.5), dict(solver="newton"), dict(alpha=-1.0),
                   dict(batch_size=0), dict(beta_1=1.0)):
        for est in (MLPClassifier(**params), sk.MLPClassifier(**params)):
            with pytest.raises(InvalidParameterError):
                est.fit(X[:20], y[:20])


def test_partial_fit_classes_is_documented_as_it_behaves():
    """defect 5: classes is required on the first call, multi-label too, and checked later."""
    doc = MLPClassifier.partial_fit.__doc__
    assert "ignored after" not in doc and "(not for" not in doc
    assert "Required on the" in doc and "multi-label targets too" in doc
    X, Y = make_multilabel_classification(n_samples=40, n_classes=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, Y)
    clf.partial_fit(X, Y, classes=np.arange(3))
    clf.partial_fit(X, Y)  # later calls may omit it
    with pytest.raises(ValueError, match="not the same as on last call"):
        clf.partial_fit(X, Y, classes=np.arange(4))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_weighted_l2_is_sklearns_for_one_batch(digits64, solver):
    """alpha > 0 with weights: l2 = alpha / sum of the weights, exact for one batch (with
    several, alpha over the mean batch weight; see the module docstring)."""
    X, y, _, _ = digits64
    w = weights_for(len(X))
    kw = dict(hidden_layer_sizes=(32,), random_state=0, shuffle=False, max_iter=4, tol=0,
              alpha=1e-2, solver=solver, batch_size=len(X))
    ours = quiet_fit(MLPClassifier(**kw), X, y, sample_weight=w)
    theirs = quiet_fit(sk.MLPClassifier(**kw), X, y, sample_weight=w)
    for p, q in zip(params_of(ours), params_of(theirs), strict=True):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_rejected_sample_weight_leaves_the_estimator_as_it_was(digits64, solver):
    """Negative weights (which fastbp refuses) are refused before the network is built:
    a failed fit leaves an unfitted estimator unfitted, a fitted one unchanged, and the
    error shows the weight as a plain number."""
    X, y, _, _ = digits64
    bad = np.ones(len(X))
    bad[5] = -1.5
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, solver=solver, random_state=0)
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0, got a weight of -1\.5$"):
        clf.fit(X, y, sample_weight=bad)
    assert not hasattr(clf, "coefs_")
    quiet_fit(clf, X, y)
    before = [p.copy() for p in params_of(clf)]
    if solver == "sgd":
        with pytest.raises(ValueError, match="sample_weight must be >= 0"):
            clf.partial_fit(X, y, bad)
    clf.warm_start = True
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        clf.fit(X, y, sample_weight=bad)
    for p, q in zip(params_of(clf), before, strict=True):
        np.testing.assert_array_equal(p, q)
    assert clf._network.l2 >= 0
