"""Driving the compiled training engine (src/_engine.pyx) from Network.fit.

The engine trains chunks of mini-batches without the GIL. This module lays out, once
per fit, everything it needs: one flat workspace holding every per-batch buffer (the
gathered inputs and targets, each layer's activations and errors), the offsets of
each layer's parameters and buffers, and the codes of activations, loss, task and
optimiser. It also limits BLAS to one thread for the fit (threadpoolctl, entered once):
the engine splits products over its own OpenMP threads, and two thread pools on the
same cores would fight.
"""

import numpy as np
from threadpoolctl import ThreadpoolController

from fastbp import _blas_threads, _engine, _kernels
from fastbp.losses import MATCHING_PAIRS

# Entries after the gradient in a data-parallel step's buffer: loss sum, correct count
# and the normaliser (rows), summed over processes with the gradient.
REDUCED_SLOTS = _engine.REDUCED_SLOTS

_controller = None


def _blas_controller():
    """One threadpoolctl controller for the process: scanning the loaded libraries costs
    1-4 ms, too much to repeat for every fit of one epoch (fastbp.sklearn fits epoch by
    epoch). fastbp loads SciPy's BLAS at import, so it is among the libraries seen."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


# Work per chunk, in training FLOPs: Python gets control back (progress bar, Ctrl-C,
# divergence check) every ~20-50 ms, whatever the network and batch size.
CHUNK_FLOPS = 2e9


def batches_per_chunk(sizes, batch_size):
    """Batches per chunk: about CHUNK_FLOPS of work, at least one batch."""
    flops_per_batch = 6 * batch_size * sum(o * i for i, o in zip(sizes[:-1], sizes[1:]))
    return max(1, int(CHUNK_FLOPS // max(flops_per_batch, 1)))


class CompiledTrainer:
    """Runs batches of an epoch in the compiled engine for one fit of one Network."""

    def __init__(self, net, X, T, labels, batch_size, optimizer, n_threads,
                 sample_weight=None):
        self.net, self.X, self.T = net, X, T
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.n_threads = n_threads
        task = net._label_task(labels)
        self.task_code = _engine.TASK_CODES[task]
        self.labels = (np.ascontiguousarray(labels, dtype=np.int64)
                       if task in ("multiclass", "binary") else np.empty(0, np.int64))
        # float64 (n,), checked by fit; empty: every sample weighs 1.
        self.weights = (np.empty(0, np.float64) if sample_weight is None
                        else np.ascontiguousarray(sample_weight, dtype=np.float64))
        self.empty = np.empty(0, net.dtype)
        self.layout, self.work = self._layout(net, batch_size)
        codes = _kernels.ACTIVATION_CODES
        self.hidden = codes[net.activation]
        self.output = codes[net.output]
        self.loss = _engine.LOSS_CODES[net.loss_name]
        self.matching = (net.output, net.loss_name) in MATCHING_PAIRS

    @staticmethod
    def _layout(net, batch):
        sizes = net.sizes
        L = len(sizes) - 1
        w_off, b_off = [], []
        offset = 0
        for l in range(L):
            w_off.append(offset)
            offset += sizes[l + 1] * sizes[l]
        n_weights = offset
        for l in range(L):
            if net.bias:
                b_off.append(offset)
                offset += sizes[l + 1]
            else:
                b_off.append(-1)
        a_off, d_off = [], [0]
        w = 0
        for l in range(L + 1):
            a_off.append(w)
            w += batch * sizes[l]
        for l in range(1, L + 1):
            d_off.append(w)
            w += batch * sizes[l]
        t_off = w
        w += batch * sizes[-1]
        layout = np.array([L, *sizes, *w_off, *b_off, *a_off, *d_off, t_off, n_weights,
                           offset], dtype=np.intp)
        return layout, np.zeros(w, net.dtype)

    def __enter__(self):
        # Counted with the other fits and the kernel calls in flight
        # (fastbp/_blas_threads.py): the last one out restores the BLAS thread counts.
        _blas_threads.hold_for_fit(_blas_controller())
        return self

    def __exit__(self, *exc):
        _blas_threads.release_for_fit()

    def _optimizer_arguments(self):
        """(code, state1, state2, adam_t, momentum, beta1, beta2, eps) for the engine."""
        opt = self.optimizer
        if opt.name == "adam":
            return (_engine.OPTIMIZER_CODES["adam"], opt.m, opt.v, opt.t, 0.0, opt.beta1,
                    opt.beta2, opt.eps)
        if opt.momentum == 0:
            code, s1 = _engine.OPTIMIZER_CODES["sgd"], self.empty
        else:
            code = _engine.OPTIMIZER_CODES["nesterov" if opt.nesterov else "momentum"]
            s1 = opt.velocity
        return code, s1, self.empty, 0, opt.momentum, 0.0, 0.0, 0.0

    def run(self, order, first, last):
        """Train batches [first, last); returns (summed loss, n_correct, diverged_at).

        With sample weights the loss is the sum over batches of m times the batch's
        weighted mean loss, n_correct the weight of the correct predictions. diverged_at
        is the first batch whose loss was not finite (the chunk stopped there, before
        updating), or None.
        """
        net, opt = self.net, self.optimizer
        code, s1, s2, t, mu, beta1, beta2, eps = self._optimizer_arguments()
        loss, correct, t, diverged_at = _engine.train_chunk(
            self.X, self.T, self.labels, self.weights, self._order(order), net._params,
            net._grads, s1, s2, self.work, self.layout, self.hidden, self.output, self.loss,
            self.matching, self.task_code,
            code, opt.learning_rate, net.l2, mu, beta1, beta2, eps, t,
            self.batch_size, first, last, self.n_threads)
        if opt.name == "adam":
            opt.t = t
        return loss, correct, None if diverged_at < 0 else diverged_at

    # A data-parallel step (fastbp/distributed.py): gradient_sum on every process, the
    # buffers summed over processes, then update with the sum.

    def gradient_sum(self, order, step, buffer, first_layer=True):
        """Fill ``buffer`` (n_params + REDUCED_SLOTS) with this process's gradient sum,
        loss sum, correct count and row count for rows [step * b, (step + 1) * b) of
        its epoch order (see _engine.gradient_sum); without ``first_layer``, layer 0's
        gradient is left to :meth:`first_layer_gradient`."""
        _engine.gradient_sum(
            self.X, self.T, self.labels, self.weights, self._order(order), self.net._params,
            buffer, self.work, self.layout, self.hidden, self.output, self.loss, self.matching,
            self.task_code, self.batch_size, step, first_layer, self.n_threads)

    def first_layer_gradient(self, order, step, buffer):
        """Layer 0's gradient sums of the step gradient_sum(first_layer=False) began."""
        _engine.first_layer_gradient(self.X, self._order(order), buffer, self.work,
                                     self.layout, self.batch_size, step, self.n_threads)

    @staticmethod
    def _order(order):
        return np.empty(0, np.int64) if order is None else order

    def update(self, grads, scale):
        """One optimiser step with the gradient ``scale * grads`` (+ L2), one pass."""
        net, opt = self.net, self.optimizer
        code, s1, s2, t, mu, beta1, beta2, eps = self._optimizer_arguments()
        t = _engine.optimizer_update(net._params, grads, s1, s2, net._n_weights, code,
                                     opt.learning_rate, net.l2, mu, beta1, beta2, eps, t,
                                     scale, self.n_threads)
        if opt.name == "adam":
            opt.t = t
