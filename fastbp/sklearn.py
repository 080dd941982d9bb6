"""scikit-learn estimators on fastbp: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in replacements for :class:`sklearn.neural_network.MLPClassifier` and
:class:`sklearn.neural_network.MLPRegressor`: the same parameters with the same meanings
and defaults, the same fitted attributes, ``partial_fit``, ``warm_start``, early
stopping, the ``tol`` / ``n_iter_no_change`` convergence rule and its
``ConvergenceWarning``, and the three solvers. Training runs on :class:`fastbp.Network`
(the compiled engine) one epoch per ``Network.fit(..., epochs=1, resume=...)`` call, so
that the learning-rate schedules and the stopping rules are applied between epochs
exactly where scikit-learn applies them.

Needs scikit-learn >= 1.6 (``pip install fastbp[sklearn]``); the rest of fastbp does not.

Conventions, and where they differ from scikit-learn
-----------------------------------------------------
- **L2 penalty.** scikit-learn adds ``alpha / (2 m) * sum ||W||^2`` to the mean loss of
  each mini-batch of ``m`` samples (its gradient is ``(sum_i dC_i/dW + alpha W) / m``).
  fastbp's cost is ``mean loss + l2 / 2 * sum ||W||^2``, so the network is trained with
  ``l2 = alpha / batch_size`` (``alpha / n_samples`` for lbfgs, which is exact). The
  one difference is the last, partial mini-batch of an epoch (``m < batch_size``), which
  scikit-learn regularises with ``alpha / m`` and fastbp with ``alpha / batch_size``.
- **Reported losses** (``loss_``, ``loss_curve_``, ``best_loss_``) follow scikit-learn's
  accounting: the mean of the per-batch losses over the epoch, each including its
  penalty, i.e. ``mean data loss + alpha / 2 * ||W||^2 * n_batches / n_samples``; for
  regression the squared error is also averaged over the outputs (scikit-learn's
  ``squared_loss``). ``tol`` is compared against these values, as in scikit-learn. The
  data loss is summed over the batches as they are trained (as scikit-learn does), the
  penalty is evaluated with the weights at the end of the epoch (scikit-learn: with
  each batch's weights), a difference of order ``alpha * learning_rate``.
  (lbfgs minimises ``1/2 sum over outputs`` of the squared error, whose gradient is the
  one scikit-learn also uses; with one output the two are the same.)
- **Initialisation** is scikit-learn's (Glorot uniform for weights *and* biases, factor
  2 for logistic, 6 otherwise), drawn from ``random_state`` in the same order, so both
  libraries start from the same parameters. The shuffling of mini-batches comes from a
  generator seeded by ``random_state`` too, but is not scikit-learn's permutation.
- **Early stopping** holds out ``validation_fraction`` of the data, stratified by class
  for classifiers (as scikit-learn documents; scikit-learn itself only stratifies binary
  problems), except for multi-label targets or when a class is too rare to stratify.
- **Sample weights** (``fit(X, y, sample_weight=None)``, ``partial_fit(X, y,
  sample_weight=None, classes=None)``) follow scikit-learn: each sample's loss and
  output error are scaled by its weight, and each mini-batch's gradient is
  ``(sum_i w_i dC_i/dW + alpha W) / sum_i w_i`` over the batch, so with ``alpha=0`` the
  parameters are scikit-learn's (to rounding, for sgd and adam; ``shuffle=False``). The
  L2 penalty becomes ``l2 = alpha / (batch_size * mean weight)``, scikit-learn's
  ``alpha / sum of the batch's weights`` for batches of mean weight (exact for one
  batch, and for lbfgs); the reported loss is scikit-learn's (each batch's weighted mean
  loss, averaged by batch size), its penalty as above. Weights must be finite, >= 0 and
  not all zero (scikit-learn accepts negative ones); a batch whose weights are all zero
  makes no step (scikit-learn's parameters become NaN). With early stopping the weights
  are split with the data, and the validation score is weighted.
- Not supported: sparse input (``X`` must be dense) and the regressor's
  ``loss="poisson"``.
- Extra parameter ``n_threads`` (threads of the training engine for sgd/adam; the
  default is :func:`fastbp.get_num_threads`), extra fitted attribute
  ``learning_rate_curve_`` (the learning rate each epoch was trained with).
"""

import importlib.abc
import importlib.util
import math
import numbers
import sys
import warnings

import numpy as np
import scipy.optimize

try:
    import sklearn
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastbp.sklearn needs scikit-learn, an optional extra of fastbp: "
        "pip install fastbp[sklearn] (or pip install scikit-learn)"
    ) from _exc
try:
    from sklearn.utils.validation import validate_data
except ImportError as _exc:  # pragma: no cover - scikit-learn < 1.6
    raise ImportError(
        f"fastbp.sklearn needs scikit-learn >= 1.6, found {sklearn.__version__}: "
        "pip install -U 'fastbp[sklearn]' (or pip install -U scikit-learn)"
    ) from _exc

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from fastbp._validation import check_sample_weight
from fastbp.network import Network, _Workspace

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")
# scikit-learn's activation names -> fastbp's.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# out_activation_ -> (fastbp output, fastbp loss).
_OUTPUTS = {"softmax": ("softmax", "cross_entropy"), "logistic": ("sigmoid", "cross_entropy"),
            "identity": ("identity", "mse")}


try:
    # scikit-learn's own: code that catches it around scikit-learn's MLPs catches ours.
    from sklearn.utils._param_validation import InvalidParameterError
except ImportError:  # pragma: no cover - a scikit-learn that moved it
    class InvalidParameterError(ValueError, TypeError):
        """A hyper-parameter has a wrong type or value (a ValueError and a TypeError,
        like scikit-learn's own InvalidParameterError)."""


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _is_real(value):
    return isinstance(value, numbers.Real) and not _is_bool(value) and math.isfinite(value)


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, solvers, fitted state."""

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, shuffle, random_state,
                 tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
                 validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun,
                 n_threads):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads

    # ----- parameter checks --------------------------------------------------------

    def _invalid(self, name, expected):
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
            f"Got {getattr(self, name)!r} instead.")

    def _check_params(self):
        """Check every hyper-parameter (scikit-learn's constraints), used or not."""
        def real(name, low, high=None, low_open=False, high_open=False):
            v = getattr(self, name)
            ok = _is_real(v) and (v > low if low_open else v >= low) and (
                high is None or (v < high if high_open else v <= high))
            if not ok:
                lo, hi = "(" if low_open else "[", ")" if high_open or high is None else "]"
                self._invalid(name, f"a float in the range {lo}{low}, "
                                    f"{'inf' if high is None else high}{hi}")

        def options(name, valid):
            v = getattr(self, name)
            if not isinstance(v, str) or v not in valid:
                self._invalid(name, "a str among " + str(sorted(valid)))

        def boolean(name):
            if not _is_bool(getattr(self, name)):
                self._invalid(name, "an instance of 'bool'")

        self._hidden_sizes()
        options("activation", _ACTIVATIONS)
        options("solver", ("lbfgs",) + _STOCHASTIC_SOLVERS)
        real("alpha", 0)
        if not (self.batch_size == "auto" if isinstance(self.batch_size, str)
                else _is_int(self.batch_size) and self.batch_size >= 1):
            self._invalid("batch_size", "'auto' or an int in the range [1, inf)")
        options("learning_rate", ("constant", "invscaling", "adaptive"))
        real("learning_rate_init", 0, low_open=True)
        real("power_t", 0)
        if not (_is_int(self.max_iter) and self.max_iter >= 1):
            self._invalid("max_iter", "an int in the range [1, inf)")
        boolean("shuffle")
        if not (self.random_state is None or _is_int(self.random_state)
                or isinstance(self.random_state, np.random.RandomState)):
            self._invalid("random_state", "an int, a numpy.random.RandomState instance or None")
        real("tol", 0)
        if not (_is_bool(self.verbose) or _is_int(self.verbose)):
            self._invalid("verbose", "a bool or an int")
        boolean("warm_start")
        real("momentum", 0, 1)
        boolean("nesterovs_momentum")
        boolean("early_stopping")
        real("validation_fraction", 0, 1, high_open=True)
        real("beta_1", 0, 1, high_open=True)
        real("beta_2", 0, 1, high_open=True)
        real("epsilon", 0, low_open=True)
        v = self.n_iter_no_change
        if not ((_is_int(v) and v >= 1) or (isinstance(v, numbers.Real) and v == np.inf)):
            self._invalid("n_iter_no_change", "an int in the range [1, inf) or inf")
        if not (_is_int(self.max_fun) and self.max_fun >= 1):
            self._invalid("max_fun", "an int in the range [1, inf)")
        if not (self.n_threads is None or (_is_int(self.n_threads) and self.n_threads >= 1)):
            self._invalid("n_threads", "None or an int in the range [1, inf)")

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if _is_int(sizes):
            sizes = [sizes]
        elif isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            self._invalid("hidden_layer_sizes", "an int or an array-like of ints")
        sizes = list(sizes)
        if not all(_is_int(s) for s in sizes):
            self._invalid("hidden_layer_sizes", "an int or an array-like of ints")
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    # ----- the network behind the fitted attributes ----------------------------------

    def _set_network(self, net):
        """Make ``net`` the model: coefs_ / intercepts_ become (in, out) views of it."""
        self._network = net
        self.coefs_ = [W.T for W in net.weights]
        self.intercepts_ = list(net.biases)
        self._coef_views = list(self.coefs_)
        self._intercept_views = list(self.intercepts_)

    def _synced_network(self):
        """The network, holding whatever coefs_ / intercepts_ hold now.

        coefs_ and intercepts_ are views of the network's parameters; arrays assigned
        to them by the user are copied in (checked for shape), so the two never disagree.
        """
        net = self._network
        if len(self.coefs_) != net.n_layers or len(self.intercepts_) != net.n_layers:
            raise ValueError(f"coefs_ and intercepts_ must hold {net.n_layers} arrays, got "
                             f"{len(self.coefs_)} and {len(self.intercepts_)}")
        for i in range(net.n_layers):
            for current, view, target, name in (
                    (self.coefs_[i], self._coef_views[i], net.weights[i].T, "coefs_"),
                    (self.intercepts_[i], self._intercept_views[i], net.biases[i],
                     "intercepts_")):
                if current is view:
                    continue
                current = np.asarray(current)
                if current.shape != target.shape:
                    raise ValueError(f"{name}[{i}] must have shape {target.shape}, got "
                                     f"{current.shape}")
                target[...] = current
        return net

    def _new_network(self, layer_units, dtype):
        hidden = _ACTIVATIONS[self.activation]
        output, loss = _OUTPUTS[self.out_activation_]
        self._net_config = {"activation": hidden, "output": output, "loss": loss}
        return Network(layer_units, **self._net_config, init="xavier",
                       dtype="float32" if dtype == np.float32 else "float64", seed=0)

    def __getstate__(self):
        # The Network is not pickled: its weights are views of one flat vector, which
        # pickling would separate. coefs_ / intercepts_ (and the optimiser state, for
        # partial_fit) are, and __setstate__ builds the network again from them.
        state = dict(super().__getstate__())
        net = state.pop("_network", None)
        state.pop("_coef_views", None)
        state.pop("_intercept_views", None)
        if net is not None:
            self._synced_network()
            state["coefs_"] = [np.ascontiguousarray(c) for c in self.coefs_]
            state["intercepts_"] = [np.array(b) for b in self.intercepts_]
            state["_optimizer_state"] = net._optimizer
        return state

    def __setstate__(self, state):
        state = dict(state)
        optimizer = state.pop("_optimizer_state", None)
        super().__setstate__(state)
        if "coefs_" in state and "_net_config" in state:
            coefs, intercepts = self.coefs_, self.intercepts_
            sizes = [c.shape[0] for c in coefs] + [coefs[-1].shape[1]]
            net = Network(sizes, **self._net_config, init="xavier",
                          dtype=coefs[0].dtype.name, seed=0)
            for W, b, c, i in zip(net.weights, net.biases, coefs, intercepts):
                W[...] = c.T
                b[...] = i
            net._optimizer = optimizer
            self._set_network(net)

    # ----- fitting -----------------------------------------------------------------

    def _initialize(self, Y, layer_units, dtype, rs):
        """First fit: fitted attributes and a network with scikit-learn's initialisation."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:  # binary and multi-label
            self.out_activation_ = "logistic"
        net = self._new_network(layer_units, dtype)
        # scikit-learn's _init_coef, drawn in its order: the same start as its MLP.
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(net.weights, net.biases):
            fan_out, fan_in = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = rs.uniform(-bound, bound, (fan_in, fan_out)).T
            b[...] = rs.uniform(-bound, bound, fan_out)
        self._set_network(net)
        self._best_params = net._params.copy()
        self._learning_rate = None  # no optimiser state yet
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self.learning_rate_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _check_solver(self):
        """partial_fit exists for the stochastic solvers only (as in scikit-learn)."""
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._check_params()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y, y_out = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            # scikit-learn's checks (shape, numbers, finite, not all zero), then fastbp's
            # (>= 0), before anything is built or changed: a refused fit leaves the
            # estimator as it was. A new float64 array: the caller's is kept.
            sample_weight = check_sample_weight(
                _check_sample_weight(sample_weight, X, dtype=np.float64), X.shape[0])
        layer_units = [X.shape[1], *hidden, Y.shape[1]]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, layer_units, X.dtype, rs)
            net = self._network
        else:
            net = self._synced_network()
            if list(net.sizes) != layer_units:
                raise ValueError(
                    f"warm_start / partial_fit continue the fitted network of layer sizes "
                    f"{net.sizes}, but hidden_layer_sizes and the data now give "
                    f"{layer_units}; set warm_start=False to fit a new one")
            self._set_network(net)
            net.activation = _ACTIVATIONS[self.activation]
            self._net_config["activation"] = net.activation
        # Once here, not at every epoch (a warm start may bring another dtype).
        X = np.ascontiguousarray(X, dtype=net.dtype)
        Y = np.ascontiguousarray(Y, dtype=net.dtype)
        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, Y, y_out, rs, incremental, sample_weight)
        else:
            self._fit_lbfgs(X, Y, sample_weight)
        if not np.isfinite(net._params).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        return self

    def _sklearn_loss(self, data_loss, net, n_batches, total_weight):
        """A loss as scikit-learn reports it, from fastbp's mean data loss (see the module
        docstring): squared error averaged over outputs too, per-batch L2 penalties.
        ``total_weight``: the number of samples, or the sum of their weights."""
        if not is_classifier(self):
            data_loss /= self.n_outputs_
        sq = sum(float(np.vdot(W, W)) for W in net.weights)
        return data_loss + 0.5 * self.alpha * sq * n_batches / total_weight

    def _train_val_split(self, X, Y, y_out, rs, sample_weight):
        """(X_train, X_val, Y_train, Y_val, y_train, y_val, w_train, w_val); the weights
        None without sample weights."""
        stratify = None
        if is_classifier(self) and self._label_binarizer.y_type_ != "multilabel-indicator":
            stratify = y_out
        arrays = (X, Y, y_out) if sample_weight is None else (X, Y, y_out, sample_weight)
        try:
            parts = train_test_split(*arrays, random_state=rs,
                                     test_size=self.validation_fraction, stratify=stratify)
        except ValueError:
            if stratify is None:
                raise
            # A class too rare to stratify: split as for multi-label targets.
            parts = train_test_split(*arrays, random_state=rs,
                                     test_size=self.validation_fraction)
        return (*parts, None, None) if sample_weight is None else tuple(parts)

    def _fit_stochastic(self, X, Y, y_out, rs, incremental, sample_weight=None):
        net = self._network
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            X_train, X_val, Y_train, _, _, y_val, w_train, w_val = self._train_val_split(
                X, Y, y_out, rs, sample_weight)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            if w_train is not None and not w_train.sum() > 0:
                raise ValueError("The training part of the early-stopping split has only "
                                 "zero sample weights.")
        else:
            X_train, Y_train, X_val, y_val = X, Y, None, None
            w_train, w_val = sample_weight, None
        n_samples = X_train.shape[0]
        total_weight = n_samples if w_train is None else float(w_train.sum())
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        n_batches = -(-n_samples // batch_size)
        # scikit-learn penalises each batch with alpha / (its weight sum): alpha over the
        # mean batch weight (exact when every batch weighs the same, e.g. one batch).
        net.l2 = self.alpha * n_samples / (batch_size * total_weight)
        # Reseeded from random_state at every fit, as scikit-learn's shuffling is.
        net._rng = np.random.default_rng(rs.randint(np.iinfo(np.int32).max))
        # A new optimiser at each fit; partial_fit carries on the last one (scikit-learn).
        resume = incremental and self._learning_rate is not None
        if not resume:
            self._learning_rate = float(self.learning_rate_init)

        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                lr = self._learning_rate if self.solver == "sgd" else self.learning_rate_init
                try:
                    history = net.fit(
                        X_train, Y_train, epochs=1, batch_size=batch_size, learning_rate=lr,
                        optimizer=self.solver, momentum=self.momentum,
                        nesterov=self.nesterovs_momentum, beta1=self.beta_1,
                        beta2=self.beta_2, eps=self.epsilon, shuffle=self.shuffle,
                        n_threads=self.n_threads, resume=resume, check_input=False,
                        sample_weight=w_train)
                except FloatingPointError as exc:
                    raise ValueError(
                        f"Solver produced non-finite parameter weights ({exc}). The input "
                        f"data may contain large values and need to be preprocessed.") from exc
                resume = True
                self.n_iter_ += 1
                data_loss = history["loss"][-1] - net._l2_term()
                self.loss_ = self._sklearn_loss(data_loss, net, n_batches, total_weight)
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                self.learning_rate_curve_.append(lr)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")

                self._update_no_improvement_count(early_stopping, X_val, y_val, w_val)

                # scikit-learn's SGDOptimizer.iteration_ends: invscaling, per epoch.
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._learning_rate = (float(self.learning_rate_init)
                                           / (self.t_ + 1) ** self.power_t)

                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (f"Validation score did not improve more than tol={self.tol:f} "
                               f"for {self.n_iter_no_change} consecutive epochs.")
                    else:
                        msg = (f"Training loss did not improve more than tol={self.tol:f} "
                               f"for {self.n_iter_no_change} consecutive epochs.")
                    if self._trigger_stopping(msg):
                        break
                    self._no_improvement_count = 0

                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                        "and the optimization hasn't converged yet.",
                        ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")

        if early_stopping:
            net._params[...] = self._best_params  # the best validation score's parameters

    def _trigger_stopping(self, msg):
        """scikit-learn's trigger_stopping: adaptive SGD divides the rate by 5 instead."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._learning_rate <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._learning_rate /= 5.0
        if self.verbose:
            print(f"{msg} Setting learning rate to {self._learning_rate:f}")
        return False

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, w_val=None):
        if early_stopping:
            score = self._score_network(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params[...] = self._network._params
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])

    def _score_network(self, X, y, sample_weight=None):
        """accuracy / R^2 of the network as it is now (validation, no input checks)."""
        y_pred = self._output_to_prediction(self._network.forward(X))
        if y_pred.dtype.kind == "f" and not np.isfinite(y_pred).all():
            return np.nan
        return (accuracy_score if is_classifier(self) else r2_score)(
            y, y_pred, sample_weight=sample_weight)

    def _fit_lbfgs(self, X, Y, sample_weight=None):
        """L-BFGS-B on the flat parameter vector, with the network's cost and gradients
        (scikit-learn's _fit_lbfgs: maxfun=max_fun, maxiter=max_iter, gtol=tol)."""
        net = self._network
        n = X.shape[0]
        total_weight = n if sample_weight is None else float(sample_weight.sum())
        net.l2 = self.alpha / total_weight
        workspace = _Workspace(net.sizes, n, net.dtype)
        acts, deltas, T = workspace.view(n)
        acts[0][...] = X
        T[...] = Y
        params, grads = net._params, net._grads

        def loss_and_grad(x):
            params[...] = x
            with np.errstate(over="ignore", invalid="ignore"):
                total, _ = net._backprop(acts, deltas, T, n, sample_weight)
            return total / total_weight + net._l2_term(), grads.astype(np.float64)

        iteration = [0]

        def report(intermediate_result):
            iteration[0] += 1
            print(f"Iteration {iteration[0]}, loss = {intermediate_result.fun:.8f}")

        result = scipy.optimize.minimize(
            loss_and_grad, params.astype(np.float64), method="L-BFGS-B", jac=True,
            callback=report if self.verbose else None,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        self.n_iter_ = min(result.nit, self.max_iter)
        if result.status != 0:
            message = (f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                       f"(status={result.status}):\n{result.message}\n")
            if self.n_iter_ == self.max_iter:
                message += ("\nIncrease the number of iterations to improve the convergence "
                            f"(max_iter={self.max_iter}).")
            warnings.warn(message, ConvergenceWarning, stacklevel=3)
        params[...] = result.x
        total, _ = net._backprop(acts, deltas, T, n, sample_weight)
        self.loss_ = self._sklearn_loss(total / total_weight, net, 1, total_weight)

    # ----- predictions -------------------------------------------------------------

    def _forward(self, X):
        """Output activations for X, after scikit-learn's input checks."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return self._synced_network().forward(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastbp's compiled engine.

    scikit-learn's :class:`~sklearn.neural_network.MLPClassifier` (same parameters,
    defaults, attributes and methods) on :class:`fastbp.Network`: softmax output and
    cross-entropy for multi-class problems, one logistic output for binary ones and
    logistic outputs for multi-label indicator targets. The labels can be any values
    scikit-learn accepts (strings too): ``classes_`` maps them.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Width of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation ('logistic' is fastbp's 'sigmoid').
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'sgd' and 'adam' train mini-batches in fastbp's engine, one epoch per iteration;
        'lbfgs' runs ``scipy.optimize.minimize(method="L-BFGS-B")`` on the network's
        full-batch cost and gradients.
    alpha : float, default=0.0001
        L2 penalty, scikit-learn's convention (see the module docstring): the network is
        trained with ``l2 = alpha / batch_size``.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        SGD's schedule: 'invscaling' sets ``learning_rate_init / (t + 1) ** power_t``
        after each epoch, ``t`` being the samples seen (``t_``); 'adaptive' divides the
        rate by 5 each time the ``n_iter_no_change`` rule fires, stopping once it is at
        most 1e-6.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs (sgd, adam) or L-BFGS iterations.
    shuffle : bool, default=True
        Reshuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Initialisation, the early-stopping split and the shuffling.
    tol : float, default=1e-4
        The loss (or validation score) must improve by ``tol`` to count as progress; for
        lbfgs, the projected-gradient tolerance ``gtol``.
    verbose : bool, default=False
        Print the loss after every iteration.
    warm_start : bool, default=False
        Continue from the previous fit's parameters (with a new optimiser state).
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified), stop when its
        accuracy has not improved by ``tol`` for ``n_iter_no_change`` epochs, and keep
        the parameters of the best epoch.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters.
    n_iter_no_change : int, default=10
        Epochs without progress (see ``tol``) before stopping.
    max_fun : int, default=15000
        lbfgs: maximum number of loss evaluations.
    n_threads : int or None, default=None
        Threads of fastbp's training engine (sgd, adam); None is
        :func:`fastbp.get_num_threads`. lbfgs uses :func:`fastbp.set_num_threads`'s.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    loss_ : float
        Loss at the last iteration (scikit-learn's accounting).
    best_loss_ : float or None
        Lowest ``loss_`` (None with early stopping; sgd/adam only).
    loss_curve_ : list of float
        ``loss_`` after each epoch (sgd/adam only).
    learning_rate_curve_ : list of float
        The learning rate of each epoch (sgd/adam only; constant for adam).
    validation_scores_ : list of float or None
        Validation accuracy after each epoch (with early stopping).
    best_validation_score_ : float or None
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape ``(n_units[i], n_units[i + 1])``: views (transposes) of
        the network's weights.
    intercepts_ : list of ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of str (when X has column names)
    n_iter_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : {'softmax', 'logistic'}
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, n_threads=n_threads)

    def _validate_input(self, X, y, incremental, reset):
        """X (C-contiguous float), the binarised targets, and y as labels."""
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                             order="C", reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        Y = self._label_binarizer.transform(y)
        if hasattr(Y, "toarray"):
            Y = Y.toarray()
        Y = np.ascontiguousarray(Y, dtype=X.dtype)
        return X, Y, y

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense). float32 data train a float32 network.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or a label indicator matrix (multi-label).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (finite, >= 0, not all zero). Each sample's loss and output
            error are scaled by its weight and every mini-batch's gradient is divided
            by the batch's weight sum, as scikit-learn does (see the module docstring).

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over the given data, continuing the optimiser state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (finite, >= 0, not all zero). Each sample's loss and output
            error are scaled by its weight and every mini-batch's gradient is divided
            by the batch's weight sum, as scikit-learn does (see the module docstring).
        classes : array of shape (n_classes,), default=None
            All the classes over all calls (e.g. ``np.unique(y_all)``). Required on the
            first call, for multi-label targets too (whose classes, the columns of the
            indicator matrix, are then taken from ``y``). Later calls may omit it; if
            given, it must equal ``classes_`` or a ValueError is raised.

        Returns
        -------
        self : MLPClassifier
        """
        if classes is None and not hasattr(self, "classes_"):
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            classes = unique_labels(classes)
            if hasattr(self, "classes_"):
                if not np.array_equal(self.classes_, classes):
                    raise ValueError(f"`classes={classes!r}` is not the same as on last call "
                                     f"to partial_fit, was: {self.classes_!r}")
            else:
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
                self.classes_ = self._label_binarizer.classes_
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _output_to_prediction(self, A):
        if self.n_outputs_ == 1:
            A = A.ravel()
        return self._label_binarizer.inverse_transform(A)

    def predict(self, X):
        """Predicted classes, shape (n_samples,) (or (n_samples, n_classes) multi-label)."""
        return self._output_to_prediction(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastbp's compiled engine.

    scikit-learn's :class:`~sklearn.neural_network.MLPRegressor` (same parameters,
    defaults, attributes and methods) on :class:`fastbp.Network`: identity output and
    the squared error, one or several outputs.

    Parameters
    ----------
    loss : {'squared_error'}, default='squared_error'
        scikit-learn's 'poisson' is not supported.
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, \
momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, \
epsilon, n_iter_no_change, max_fun, n_threads
        As for :class:`MLPClassifier`; early stopping scores the held-out data by R^2.

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, learning_rate_curve_, validation_scores_, \
best_validation_score_, t_, coefs_, intercepts_, n_features_in_, feature_names_in_, \
n_iter_, n_layers_, n_outputs_
        As for :class:`MLPClassifier`.
    out_activation_ : 'identity'
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None):
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, n_threads=n_threads)

    def _check_params(self):
        if self.loss == "poisson":
            raise InvalidParameterError("MLPRegressor(loss='poisson') is not supported by "
                                        "fastbp (no exponential output); use 'squared_error'")
        if self.loss != "squared_error":
            self._invalid("loss", "'squared_error'")
        super()._check_params()

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), order="C", reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        return X, np.ascontiguousarray(Y, dtype=X.dtype), y

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense). float32 data train a float32 network.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (finite, >= 0, not all zero). Each sample's loss and output
            error are scaled by its weight and every mini-batch's gradient is divided
            by the batch's weight sum, as scikit-learn does (see the module docstring).

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over the given data, continuing the optimiser state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (finite, >= 0, not all zero). Each sample's loss and output
            error are scaled by its weight and every mini-batch's gradient is divided
            by the batch's weight sum, as scikit-learn does (see the module docstring).

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _output_to_prediction(self, A):
        return A.ravel() if A.shape[1] == 1 else A

    def predict(self, X):
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        return self._output_to_prediction(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


# ----- ONNX export: skl2onnx converters ----------------------------------------------
# skl2onnx.to_onnx(estimator, X[:1]) converts fastbp's estimators once their converters
# are registered (fastbp.onnx.register_skl2onnx_converters). Importing skl2onnx takes
# seconds, so fastbp.sklearn does not: it registers at once if skl2onnx is already
# imported, and otherwise, if skl2onnx is installed, from a one-shot import hook that
# registers right after skl2onnx's own import, whenever that happens.

def _register_onnx_converters():
    try:
        from fastbp.onnx import register_skl2onnx_converters

        register_skl2onnx_converters(MLPClassifier, MLPRegressor)
    # Any failure: an incompatible skl2onnx must not break skl2onnx's own import.
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"fastbp.sklearn could not register its skl2onnx converters ({exc!r}): "
                      f"skl2onnx.to_onnx will not convert fastbp's estimators",
                      RuntimeWarning, stacklevel=2)


class _Skl2onnxImportHook(importlib.abc.MetaPathFinder):
    """Finds skl2onnx as the other finders would, and registers the converters after its
    module has run. It removes itself from sys.meta_path the first time it is asked."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "skl2onnx":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:  # another thread got here first
            return None
        spec = importlib.util.find_spec(fullname)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_onnx_converters()

        spec.loader.exec_module = exec_then_register  # this spec's own loader instance
        return spec


if "skl2onnx" in sys.modules:
    _register_onnx_converters()
elif importlib.util.find_spec("skl2onnx") is not None:
    sys.meta_path.insert(0, _Skl2onnxImportHook())
