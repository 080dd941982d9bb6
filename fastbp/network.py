"""The Network: a multilayer perceptron trained by backpropagation.

Forward pass ``z = W a + b``, ``a = act(z)`` (rows of X are samples, so a layer
computes ``A = act(A_prev @ W.T + b)``); output error BP1; backpropagated error BP2
``delta_prev = (delta @ W) * act'(A_prev)``; gradients BP3 ``db = mean(delta)`` and
BP4 ``dW = delta.T @ A_prev / n`` (+ ``l2 * W``).

Memory layout, chosen so that a compiled loop can later run whole epochs: all weights
and then all biases live in one flat parameter vector (``weights`` and ``biases`` are
views into it), gradients in a second vector of the same layout, optimiser state in
vectors of that size, and every per-batch activation and error in a workspace
allocated once per fit. The compiled engine (backend "cython") allocates nothing per
batch; the NumPy baseline allocates what idiomatic NumPy does (a temporary per layer).
"""

import numpy as np
from scipy.linalg import blas as scipy_blas

from fastbp._backends import get_backend
from fastbp import persistence, training
from fastbp._validation import (
    all_finite, check_activation, check_nonnegative, check_positive_int, check_sample_weight,
)
from fastbp.losses import OUTPUTS, check_loss, loss_sum, output_error

__all__ = ["Network", "gradient_check", "INITS"]

INITS = ("auto", "uniform", "normal", "xavier", "he")
DTYPES = ("float32", "float64")

# Rows per block in forward/predict/evaluate/loss: bounds the memory of large inputs.
BLOCK_ROWS = 4096


class _Workspace:
    """Every buffer one training step needs, for up to ``rows`` samples."""

    def __init__(self, sizes, rows, dtype):
        self.rows = rows
        self.X = np.empty((rows, sizes[0]), dtype)
        self.Y = np.empty((rows, sizes[-1]), dtype)
        # acts[l] is the output of layer l (acts[0] is the input); deltas[l] its error.
        self.acts = [self.X] + [np.empty((rows, k), dtype) for k in sizes[1:]]
        self.deltas = [None] + [np.empty((rows, k), dtype) for k in sizes[1:]]

    def view(self, m):
        """The buffers cut to the first m rows (still C-contiguous)."""
        return ([a[:m] for a in self.acts], [None] + [d[:m] for d in self.deltas[1:]],
                self.Y[:m])


class Network:
    """A multilayer perceptron trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first: ``[784, 30, 10]`` has one hidden layer of 30.
    activation : str
        Hidden-layer activation: identity, sigmoid, tanh, relu, leaky_relu or softmax.
    output : str
        Output activation (same set). Classification uses ``softmax`` or ``sigmoid``.
    loss : {"mse", "cross_entropy"}
        ``mse`` is the quadratic cost ``1/2 ||a - y||^2``; ``cross_entropy`` needs a
        softmax (multi-class) or sigmoid (binary / multi-label) output.
    init : {"auto", "uniform", "normal", "xavier", "he"}
        ``uniform``: U[-1, 1] for weights and biases; ``normal``: N(0, init_scale^2)
        for both; ``xavier``: Glorot uniform ``U[-r, r]``, ``r = sqrt(6 / (in + out))``;
        ``he``: N(0, 2 / in). Xavier and He start biases at zero. ``auto`` picks He for
        relu/leaky_relu hidden layers and Xavier otherwise.
    init_scale : float
        Standard deviation for ``init="normal"``.
    l2 : float
        L2 penalty: the cost is ``mean loss + l2 / 2 * sum ||W||^2`` (biases are not
        penalised).
    bias : bool
        Whether layers have biases (``biases`` is a list of None when not).
    dtype : {"float32", "float64"}
        Precision of parameters and computation; data are converted to it.
    seed : int, numpy Generator or None
        Seeds initialisation and shuffling: the same seed gives the same training.
    backend : {"cython", "numpy"}
        ``cython``: fastbp's compiled kernels. ``numpy``: the same algorithm on
        :mod:`fastbp.reference`, the pure-NumPy baseline.

    Attributes
    ----------
    weights : list of ndarray
        ``weights[l]`` has shape ``(sizes[l + 1], sizes[l])``.
    biases : list of ndarray or None
        ``biases[l]`` has shape ``(sizes[l + 1],)``.
    epochs_trained : int
        Epochs completed by this network, over all its fits (restored by loading a
        checkpoint; 0 for a new network or one loaded from a model file).
    history : dict of lists
        The last fit's history (see :meth:`fit`), or a checkpoint's.
    """

    def __init__(self, sizes, activation="sigmoid", output="sigmoid", loss="mse",
                 init="auto", init_scale=0.01, l2=0.0, bias=True, dtype="float32",
                 seed=None, backend="cython"):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
            raise ValueError(f"sizes must be a list of at least 2 layer widths, got {sizes!r}")
        self.sizes = [check_positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
        self.activation = check_activation(activation, "activation")
        if not isinstance(output, str) or output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; valid outputs are {', '.join(OUTPUTS)}")
        self.output = output
        check_loss(output, loss)
        self.loss_name = loss
        if not isinstance(init, str) or init not in INITS:
            raise ValueError(f"unknown init {init!r}; valid inits are {', '.join(INITS)}")
        self.init = init
        self.init_scale = check_nonnegative("init_scale", init_scale)
        self.l2 = check_nonnegative("l2", l2)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.bias = bool(bias)
        dtype_name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
        if dtype_name not in DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.dtype = np.dtype(dtype_name)
        self.backend = backend
        self._backend = get_backend(backend)
        self._rng = np.random.default_rng(seed)
        self._allocate()
        self._initialize()
        self.epochs_trained = 0
        # Set by loading a checkpoint: what fit(resume=True) needs to continue its fit.
        self._checkpoint_run = None

    # ----- parameters ------------------------------------------------------------

    @property
    def n_layers(self):
        """Number of weight layers (len(sizes) - 1)."""
        return len(self.sizes) - 1

    @property
    def layer_activations(self):
        """The activation of each weight layer, output last."""
        return [self.activation] * (self.n_layers - 1) + [self.output]

    def _allocate(self):
        """One flat vector for all parameters (weights first, then biases), one for gradients."""
        shapes = list(zip(self.sizes[1:], self.sizes[:-1]))
        self._n_weights = sum(o * i for o, i in shapes)
        n_biases = sum(self.sizes[1:]) if self.bias else 0
        self._params = np.zeros(self._n_weights + n_biases, self.dtype)
        self._grads = np.zeros_like(self._params)
        self._link_views()
        self._workspaces = {}
        self._optimizer = None  # the last fit's optimiser, for fit(resume=True)

    def _link_views(self):
        """weights, biases and their gradients as views into the flat vectors."""
        shapes = list(zip(self.sizes[1:], self.sizes[:-1]))
        self.weights, self.biases, self._grad_weights, self._grad_biases = [], [], [], []
        w_off, b_off = 0, self._n_weights
        for o, i in shapes:
            self.weights.append(self._params[w_off:w_off + o * i].reshape(o, i))
            self._grad_weights.append(self._grads[w_off:w_off + o * i].reshape(o, i))
            w_off += o * i
            if self.bias:
                self.biases.append(self._params[b_off:b_off + o])
                self._grad_biases.append(self._grads[b_off:b_off + o])
                b_off += o
            else:
                self.biases.append(None)
                self._grad_biases.append(None)

    def __getstate__(self):
        # Views are not pickled as views: keep the flat vectors, re-link on load.
        state = dict(self.__dict__)
        for key in ("weights", "biases", "_grad_weights", "_grad_biases"):
            del state[key]
        state["_workspaces"] = {}
        return state

    def __setstate__(self, state):
        # Networks pickled before checkpoints existed lack these two.
        self.__dict__.update({"epochs_trained": 0, "_checkpoint_run": None, **state})
        self._link_views()

    def _initialize(self):
        rng = self._rng
        init = self.init
        if init == "auto":
            init = "he" if self.activation in ("relu", "leaky_relu") else "xavier"
        for W, b in zip(self.weights, self.biases):
            fan_out, fan_in = W.shape
            if init == "uniform":
                W[...] = rng.uniform(-1, 1, W.shape)
                if b is not None:
                    b[...] = rng.uniform(-1, 1, b.shape)
            elif init == "normal":
                W[...] = rng.normal(0, self.init_scale, W.shape)
                if b is not None:
                    b[...] = rng.normal(0, self.init_scale, b.shape)
            elif init == "xavier":
                r = np.sqrt(6.0 / (fan_in + fan_out))
                W[...] = rng.uniform(-r, r, W.shape)
            else:  # he
                W[...] = rng.normal(0, np.sqrt(2.0 / fan_in), W.shape)
            # Xavier and He leave biases at zero (from np.zeros in _allocate).

    def _workspace(self, rows):
        """The training workspace for batches of up to ``rows`` samples (kept between fits)."""
        ws = self._workspaces.get(rows)
        if ws is None:
            self._workspaces.clear()
            ws = self._workspaces[rows] = _Workspace(self.sizes, rows, self.dtype)
        return ws

    # ----- task and data checks ----------------------------------------------------

    @property
    def task(self):
        """'multiclass', 'binary', 'multilabel' or 'regression', from output, loss and width."""
        k = self.sizes[-1]
        if self.output == "softmax":
            return "multiclass"
        if self.output == "sigmoid":
            if k == 1:
                return "binary"
            return "multilabel" if self.loss_name == "cross_entropy" else "multiclass"
        return "regression"

    def _check_X(self, X, name="X", check_finite=True):
        if not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.dtype.kind != "f":
            raise TypeError(f"{name} must be a float array (float32 or float64), got dtype "
                            f"{X.dtype}; e.g. scale integer pixels with X.astype(np.float32) / 255")
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, {self.sizes[0]}), got shape {X.shape}")
        if X.shape[1] != self.sizes[0]:
            raise ValueError(f"{name} has {X.shape[1]} features but the network has "
                             f"{self.sizes[0]} inputs (sizes[0])")
        if X.shape[0] == 0:
            raise ValueError(f"{name} has no rows (shape {X.shape})")
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if check_finite and not all_finite(X):
            raise ValueError(f"{name} contains NaN or inf")
        return X

    def _check_Y(self, Y, n, name="Y", check_finite=True):
        """Targets as an (n, k) array of the network's dtype, and labels for accuracy (or None)."""
        k = self.sizes[-1]
        task = self.task
        if not isinstance(Y, np.ndarray):
            Y = np.asarray(Y)
        if Y.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {Y.dtype}")
        if Y.shape[:1] != (n,):
            raise ValueError(f"{name} has {Y.shape[0] if Y.ndim else 0} rows but X has {n}")
        # Integer labels: one-hot targets (multiclass; multilabel: one-vs-rest, each
        # sigmoid output trained on "is it this class"), or 0/1 for one binary output.
        if Y.ndim == 1 and Y.dtype.kind in "iu" and task != "regression":
            classes = 2 if task == "binary" else k
            if Y.min() < 0 or Y.max() >= classes:
                raise ValueError(f"{name} holds labels in [{Y.min()}, {Y.max()}] but the network "
                                 f"has {classes} classes: labels must be in [0, {classes - 1}]")
            labels = Y.astype(np.int64)
            T = np.zeros((n, k), self.dtype)
            if task != "binary":
                T[np.arange(n), labels] = 1
            else:
                T[:, 0] = labels
            return T, labels
        if Y.ndim == 1:
            if k != 1:
                raise ValueError(
                    f"{name} is 1-D with dtype {Y.dtype}; integer class labels need a "
                    f"classification output, targets need shape (n, {k})")
            Y = Y.reshape(n, 1)
        if Y.ndim != 2 or Y.shape[1] != k:
            raise ValueError(f"{name} must have shape ({n}, {k}) (or integer labels ({n},)), "
                             f"got {Y.shape}")
        T = np.ascontiguousarray(Y, dtype=self.dtype)
        if check_finite and not all_finite(T):
            raise ValueError(f"{name} contains NaN or inf")
        return T, self._labels_of(T)

    def _labels_of(self, A):
        """Class labels (or, multi-label, indicator rows) of outputs/targets; None for regression."""
        task = self.task
        if task == "multiclass":
            return A.argmax(axis=1)
        if task == "binary":
            return (A[:, 0] > 0.5).astype(np.int64)
        if task == "multilabel":
            return (A > 0.5).astype(np.int64)
        return None

    def _label_task(self, labels):
        """The task accuracy is counted for: a multi-label network given integer
        labels (one-vs-rest) is scored as a multi-class one, by its largest output."""
        task = self.task
        if task == "multilabel" and labels is not None and labels.ndim == 1:
            return "multiclass"
        return task

    def _n_correct(self, A, labels, weights=None):
        """Correct predictions among the rows of A: a count, or with ``weights`` (the
        rows' sample weights) the sum of the correct rows' weights."""
        if labels.ndim == 1 and self.task == "multilabel":
            predicted = A.argmax(axis=1)
        else:
            predicted = self._labels_of(A)
        hits = predicted == labels
        if hits.ndim == 2:  # multi-label: subset accuracy, as scikit-learn
            hits = hits.all(axis=1)
        return int(hits.sum()) if weights is None else float(weights @ hits)

    # ----- forward, loss, gradients ----------------------------------------------

    def _forward(self, acts):
        """acts[0] holds the input rows; fills acts[1:] with each layer's output."""
        backend = self._backend
        for l, act in enumerate(self.layer_activations):
            backend.dense_forward(acts[l], self.weights[l], self.biases[l], act, acts[l + 1])
        return acts[-1]

    def _blocks(self, X):
        """Forward X block by block; yields (start, stop, output block) with bounded memory.

        The block buffers belong to this call, so one network can serve predictions
        from several threads at once (the kernels release the GIL).
        """
        n = X.shape[0]
        rows = min(n, BLOCK_ROWS)
        outputs = [np.empty((rows, k), self.dtype) for k in self.sizes[1:]]
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            # X is C-contiguous: its rows are the block's input as they are.
            acts = [X[start:stop]] + [A[:stop - start] for A in outputs]
            yield start, stop, self._forward(acts)

    def forward(self, X):
        """Output activations for the rows of X, shape (n, sizes[-1])."""
        X = self._check_X(X)
        out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        for start, stop, A in self._blocks(X):
            out[start:stop] = A
        return out

    def _l2_term(self):
        if self.l2 == 0:
            return 0.0
        W = self._params[:self._n_weights]
        return 0.5 * self.l2 * float(np.vdot(W, W))

    def _data_loss_and_correct(self, X, T, labels, weights=None):
        """Summed loss and correct count over the rows of X (weighted sums with weights)."""
        total, correct = 0.0, 0
        ws_scratch = None
        for start, stop, A in self._blocks(X):
            if ws_scratch is None or ws_scratch.shape[0] != stop - start:
                ws_scratch = np.empty_like(A)
            w = None if weights is None else weights[start:stop]
            total += loss_sum(self.output, self.loss_name, A, T[start:stop], ws_scratch, w)
            if labels is not None:
                correct += self._n_correct(A, labels[start:stop], w)
        return total, correct

    def loss(self, X, Y, sample_weight=None):
        """The cost J: mean over samples of the loss + l2/2 * sum ||W||^2.

        With ``sample_weight`` (n,) (non-negative, not all zero), the weighted mean
        ``sum_i w_i C_i / sum_i w_i`` (scikit-learn's normalisation); the l2 term is
        unchanged.
        """
        X = self._check_X(X)
        T, _ = self._check_Y(Y, X.shape[0])
        w = check_sample_weight(sample_weight, X.shape[0])
        total, _ = self._data_loss_and_correct(X, T, None, w)
        return total / (X.shape[0] if w is None else w.sum()) + self._l2_term()

    def _backprop(self, acts, deltas, T, m, weights=None, scale=None, add_l2=True):
        """Forward and backward over one batch already in acts[0]; fills the gradient vector
        with ``scale`` (default 1/m, or 1/sum(weights): the mean) times the loss's
        gradient, plus ``l2 * W`` unless ``add_l2`` is False (a data-parallel step sums,
        then adds it once).

        With ``weights`` (m,) each row's loss and error are scaled by its weight and the
        gradient is normalised by their sum instead of m. Returns the batch's summed
        (weighted) loss, before the l2 term, and the output block.
        """
        backend = self._backend
        A_out = self._forward(acts)
        batch_loss = loss_sum(self.output, self.loss_name, A_out, T, deltas[-1], weights)
        output_error(self.output, self.loss_name, A_out, T, deltas[-1], backend, weights)
        norm = m if weights is None else float(weights.sum())
        hidden = self.activation
        for l in range(self.n_layers, 0, -1):
            backend.weight_gradient(deltas[l], acts[l - 1], self._grad_weights[l - 1],
                                    self._grad_biases[l - 1],
                                    1.0 / norm if scale is None else scale)
            if l > 1:
                # BP2 with the weights before this step's update.
                backend.backward_delta(deltas[l], self.weights[l - 1], acts[l - 1], hidden,
                                       deltas[l - 1])
        if self.l2 > 0 and add_l2:
            self._axpy(self._params[:self._n_weights], self._grads[:self._n_weights],
                       a=self.l2)
        return batch_loss, A_out

    @property
    def _axpy(self):
        """y += a * x in place, for the flat vectors (BLAS, no temporary)."""
        return scipy_blas.saxpy if self.dtype == np.float32 else scipy_blas.daxpy

    def gradients(self, X, Y, sample_weight=None):
        """Gradients of the cost J with respect to the weights and biases.

        With ``sample_weight`` (n,), of the weighted cost (see :meth:`loss`): each
        sample's gradient times its weight, summed, divided by the sum of the weights,
        plus ``l2 * W``.

        Returns
        -------
        dW : list of ndarray, shapes of ``weights``
        db : list of ndarray (or None without biases), shapes of ``biases``
        """
        X = self._check_X(X)
        T, _ = self._check_Y(Y, X.shape[0])
        n = X.shape[0]
        w = check_sample_weight(sample_weight, n)
        ws = _Workspace(self.sizes, n, self.dtype)
        acts, deltas, Tb = ws.view(n)
        acts[0][...] = X
        Tb[...] = T
        self._backprop(acts, deltas, Tb, n, w)
        dW = [g.copy() for g in self._grad_weights]
        db = [None if g is None else g.copy() for g in self._grad_biases]
        return dW, db

    # ----- training ----------------------------------------------------------------

    def fit(self, X, Y, epochs=1, batch_size=32, learning_rate=0.1, optimizer="sgd",
            momentum=0.0, nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8, shuffle=True,
            validation_data=None, verbose=False, n_threads=None, resume=False, *,
            check_input=True, checkpoint=None, sample_weight=None, comm=None):
        """Train by (mini-batch) gradient descent on the cost J.

        Parameters
        ----------
        X : ndarray of shape (n, sizes[0])
        Y : ndarray of shape (n, sizes[-1]), or integer labels of shape (n,) for a
            classification output (with several sigmoid outputs and cross-entropy:
            one-vs-rest, one-hot targets, accuracy by the largest output).
        epochs : int
        batch_size : int or None
            1 for per-sample SGD, None for full-batch gradient descent. A last partial
            batch is used, not dropped.
        learning_rate : float
        optimizer : {"sgd", "adam"}
            A new optimiser state (velocity, Adam moments) starts with each call,
            unless ``resume=True``.
        momentum, nesterov : SGD momentum (0 = plain SGD) and Nesterov's variant.
        beta1, beta2, eps : Adam's parameters.
        shuffle : bool
            Reshuffle the samples every epoch (reproducibly, from the network's seed).
        validation_data : (X_val, Y_val), optional
            Evaluated at the end of every epoch.
        verbose : bool
            A live progress bar per epoch and a summary line.
        n_threads : int, optional
            Threads for this fit (backend "cython"); default :func:`fastbp.get_num_threads`.
            BLAS is held to one thread during the fit: the engine splits the work itself.
        check_input : bool
            Scan X and Y for NaN and inf (one pass over the data). Callers that have
            checked them already, such as fastbp.sklearn fitting epoch by epoch, pass
            False; shapes and dtypes are checked regardless.
        resume : bool
            Continue with the previous fit's optimiser state (momentum velocity, Adam
            moments and step count), e.g. to train epoch by epoch with a learning-rate
            schedule. The optimiser and its hyper-parameters other than the learning
            rate must be the same as in that fit. On a network just loaded from a
            checkpoint, continue the checkpoint's fit where it stopped (mid-epoch after
            a Ctrl-C): the optimiser, ``learning_rate``, its other hyper-parameters,
            ``batch_size``, ``shuffle``, the number of samples and the history's keys
            (``validation_data``, labels) must be the checkpoint's, or a ValueError
            names what differs; ``history`` continues the checkpoint's. With the same
            data and thread count, ``fit(X, Y, epochs=E - net.epochs_trained,
            resume=True)`` ends bit-identical to an uninterrupted fit of E epochs.
        checkpoint : str or os.PathLike, optional
            Write a checkpoint to this file after every epoch and at a Ctrl-C stop
            (see :mod:`fastbp.checkpoints`): the network, the optimiser and its state,
            the shuffling generator, ``epochs_trained``, the history and this fit's
            settings. Written atomically (temporary file, fsync, rename): a crash
            leaves the previous checkpoint intact. :meth:`load` reads it.
        sample_weight : array-like of shape (n,), optional
            Non-negative, finite weights, not all zero (float64 internally; the array
            given is not modified). Each sample's loss and output error are scaled by
            its weight and every mini-batch's gradient is divided by the batch's weight
            sum instead of its size, as scikit-learn does (``sum_b w_i dC_i / sum_b w_i
            + l2 * W``); a batch whose weights are all zero is skipped. The history's
            ``loss`` is then the mean over the epoch's batches that train, weighted by
            their sizes, of each batch's weighted mean loss (scikit-learn's
            ``loss_curve_``; the weighted mean of all samples when the batch is the
            whole data), and
            ``accuracy`` the weight of the correct samples over the total weight. A
            resumed fit must be given the same weights.
        comm : mpi4py communicator, optional
            Data-parallel training over MPI (e.g. ``MPI.COMM_WORLD``; needs
            ``pip install "fastbp[mpi]"``): every process calls ``fit`` with its own
            shard ``X, Y`` (sizes may differ; ``sample_weight``: the shard's) and the
            same other arguments. Rank 0's
            parameters (and, with ``resume``, optimiser state) are broadcast first;
            ``batch_size`` is per process; an epoch has ``max(ceil(n_rank /
            batch_size))`` steps, each step updating with the gradient over all
            processes' rows of that step (one Allreduce), so every process ends with
            the same parameters, as one process stepping through those rows would.
            ``history`` (validation: over every process's ``validation_data``) is
            global and the same everywhere; divergence and Ctrl-C stop every process at
            the same step; an argument error on one process is raised on all. Only
            rank 0 writes the checkpoint and shows progress; every rank can resume
            from it (each loads the file). ``n_threads`` defaults to the machine's
            cores divided by its ranks (unless set by set_num_threads or
            OMP_NUM_THREADS). See fastbp/distributed.py.

        Returns
        -------
        history : dict of lists
            Per epoch: ``loss`` (mean batch cost during the epoch, plus the l2 term),
            ``accuracy`` (classification), ``val_loss`` and ``val_accuracy`` (with
            validation data) and ``seconds``. Also kept as ``net.history``, which
            holds the completed epochs if fit is interrupted.

        Raises
        ------
        FloatingPointError
            When the loss or the parameters stop being finite. The network is put back
            to its parameters at the end of the last finite epoch (or its initial ones).
        KeyboardInterrupt
            Ctrl-C stops training at the next chunk boundary (every ~20-50 ms): the
            network holds the last completed batch's parameters, ``net.history`` the
            completed epochs, and the interrupt propagates; with ``checkpoint``, a
            checkpoint of that point is written first.
        """
        return training.fit(self, X, Y, epochs=epochs, batch_size=batch_size,
                            learning_rate=learning_rate, optimizer=optimizer,
                            momentum=momentum, nesterov=nesterov, beta1=beta1, beta2=beta2,
                            eps=eps, shuffle=shuffle, validation_data=validation_data,
                            verbose=verbose, n_threads=n_threads, resume=resume,
                            check_input=check_input, checkpoint=checkpoint,
                            sample_weight=sample_weight, comm=comm)

    def _epoch_order(self, n):
        """The order of one shuffled epoch's samples.

        A fresh permutation each epoch, so that fits of one epoch at a time
        (resume=True) shuffle exactly as one fit of many epochs. fastbp.compat replaces
        it for one epoch with the order the tutorial's random.shuffle made.
        """
        return self._rng.permutation(n)

    # ----- predictions -------------------------------------------------------------

    def predict_proba(self, X):
        """Class probabilities (the output activations of a softmax/sigmoid network)."""
        if self.task == "regression":
            raise ValueError(f"predict_proba needs a classification output (softmax or "
                             f"sigmoid), this network's output is {self.output!r}")
        return self.forward(X)

    def predict(self, X):
        """Class labels (n,) for classification (indicator rows for multi-label); outputs for regression."""
        X = self._check_X(X)
        if self.task == "regression":
            return self.forward(X)
        pieces = [self._labels_of(A) for _, _, A in self._blocks(X)]
        return np.concatenate(pieces)

    def evaluate(self, X, Y, sample_weight=None):
        """``{"loss": J, "accuracy": fraction correct}`` (accuracy only for classification).

        With ``sample_weight`` (n,), the weighted loss of :meth:`loss` and the weighted
        accuracy ``sum of the weights of the correct samples / sum of all weights`` (as
        scikit-learn's ``accuracy_score(..., sample_weight=)``).
        """
        X = self._check_X(X)
        T, labels = self._check_Y(Y, X.shape[0])
        w = check_sample_weight(sample_weight, X.shape[0])
        total, correct = self._data_loss_and_correct(X, T, labels, w)
        weight = X.shape[0] if w is None else w.sum()
        result = {"loss": total / weight + self._l2_term()}
        if labels is not None:
            result["accuracy"] = correct / weight
        return result

    # ----- persistence -------------------------------------------------------------

    def save(self, path):
        """Write the network to ``path`` as an .npz archive (no pickle), atomically.

        The file holds the format version, sizes, activations, loss, dtype, l2, bias
        flag, weights and biases. It is written to a temporary file in the same folder
        and renamed over ``path``, so a crash never leaves a half-written model.
        """
        return persistence.save(self, path)

    @classmethod
    def load(cls, path, backend=None):
        """Read a network written by :meth:`save`, or a checkpoint written by
        ``fit(checkpoint=path)``; raise ValueError on anything malformed.

        A checkpoint also restores the optimiser and its state, the shuffling generator,
        ``epochs_trained`` and ``history``, ready for ``fit(..., resume=True)``.
        ``backend`` defaults to the checkpoint's fit's backend ("cython" for a model
        file); another backend resumes within float tolerance, not bit-identically.
        """
        return persistence.load(cls, path, backend)

    def __repr__(self):
        return (f"Network(sizes={self.sizes}, activation={self.activation!r}, "
                f"output={self.output!r}, loss={self.loss_name!r}, l2={self.l2}, "
                f"bias={self.bias}, dtype={self.dtype.name!r}, backend={self.backend!r})")


def gradient_check(net, X, Y, eps=1e-6, max_params=None, seed=0, sample_weight=None):
    """Compare ``net.gradients`` with central finite differences of ``net.loss``.

    The check runs on a float64 copy of the network (same backend), so that finite
    differences are accurate whatever the network's dtype.

    Parameters
    ----------
    net : Network
    X, Y : data as for :meth:`Network.loss`
    eps : float
        Finite-difference step.
    max_params : int, optional
        Check at most this many parameters, chosen at random (all by default).
    seed : int
        Seeds the choice of parameters.
    sample_weight : array-like of shape (n,), optional
        Check the gradients of the weighted cost.

    Returns
    -------
    float
        The largest relative error over the weight and bias arrays,
        ``||g - g_fd|| / (||g|| + ||g_fd||)`` on the checked entries of each array
        (0 where both are 0).
    """
    clone = Network(net.sizes, activation=net.activation, output=net.output,
                    loss=net.loss_name, l2=net.l2, bias=net.bias, dtype="float64",
                    seed=0, backend=net.backend)
    clone._params[...] = net._params
    clone.gradients(X, Y, sample_weight)
    analytic = clone._grads.copy()
    n = clone._params.size
    index = np.arange(n)
    if max_params is not None and max_params < n:
        index = np.sort(np.random.default_rng(seed).choice(n, max_params, replace=False))
    numeric = np.zeros(len(index))
    for j, p in enumerate(index):
        saved = clone._params[p]
        clone._params[p] = saved + eps
        plus = clone.loss(X, Y, sample_weight)
        clone._params[p] = saved - eps
        minus = clone.loss(X, Y, sample_weight)
        clone._params[p] = saved
        numeric[j] = (plus - minus) / (2 * eps)
    # Group the checked entries by the array (layer weights or biases) they belong to.
    bounds = np.cumsum([W.size for W in clone.weights]
                       + [b.size for b in clone.biases if b is not None])
    array_of = np.searchsorted(bounds, index, side="right")
    worst = 0.0
    for a in np.unique(array_of):
        sel = array_of == a
        g, fd = analytic[index[sel]], numeric[sel]
        denom = np.linalg.norm(g) + np.linalg.norm(fd)
        if denom > 0:
            worst = max(worst, float(np.linalg.norm(g - fd) / denom))
    return worst
