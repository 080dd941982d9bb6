"""Training: the fit loop shared by both backends, and what it needs around it.

``fit`` checks its arguments, builds the trainer of the network's backend (the compiled
engine of fastbp/engine.py, or ``_PythonTrainer``'s loop over fastbp.reference), then runs
epochs chunk by chunk: Python regains control between chunks for the progress bar, the
divergence check (the network is restored to the last finite epoch) and Ctrl-C (held
until the network is consistent). With ``checkpoint=``, fastbp/checkpoints.py writes the
training state after every epoch and at a Ctrl-C stop; ``resume=True`` on a network
loaded from a checkpoint continues that fit, mid-epoch if it stopped there.
"""

import signal
import threading
import time

import numpy as np

from fastbp import checkpoints
from fastbp._threads import check_thread_count, get_num_threads
from fastbp._validation import all_finite, check_positive_int, check_sample_weight
from fastbp.engine import CompiledTrainer, batches_per_chunk
from fastbp.optimizers import OPTIMIZERS, make_optimizer


def fit(net, X, Y, epochs=1, batch_size=32, learning_rate=0.1, optimizer="sgd",
        momentum=0.0, nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8, shuffle=True,
        validation_data=None, verbose=False, n_threads=None, resume=False, check_input=True,
        checkpoint=None, sample_weight=None):
    """The body of :meth:`fastbp.Network.fit` (documented there)."""
    if not isinstance(check_input, (bool, np.bool_)):
        raise TypeError(f"check_input must be True or False, got {check_input!r}")
    X = net._check_X(X, check_finite=check_input)
    T, labels = net._check_Y(Y, X.shape[0], check_finite=check_input)
    epochs = check_positive_int("epochs", epochs)
    n = X.shape[0]
    weights = check_sample_weight(sample_weight, n)
    # What the epoch's summed loss and correct count are divided by.
    total_weight = n if weights is None else float(weights.sum())
    batch_size = check_positive_int("batch_size", batch_size, allow_none=True)
    batch = n if batch_size is None else min(batch_size, n)
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid optimizers are "
                         f"{', '.join(OPTIMIZERS)}")
    if not isinstance(resume, (bool, np.bool_)):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    checkpoint = checkpoints.check_path(checkpoint)
    labels_val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, Y_val)")
        X_val = net._check_X(validation_data[0], "validation_data[0]")
        T_val, labels_val = net._check_Y(validation_data[1], X_val.shape[0],
                                          "validation_data[1]")
    history_keys = ["loss", *(["accuracy"] if labels is not None else []),
                    *(["val_loss"] if validation_data is not None else []),
                    *(["val_accuracy"] if labels_val is not None else []), "seconds"]
    settings = checkpoints.fit_settings(optimizer, learning_rate, momentum, nesterov, beta1,
                                        beta2, eps, batch_size, shuffle, n, history_keys,
                                        weighted=weights is not None)
    # A network loaded from a checkpoint: resume=True continues that fit, with its settings.
    run = net._checkpoint_run if resume else None
    if run is not None:
        checkpoints.check_resume(run, settings)
    opt = make_optimizer(optimizer, net._params, learning_rate, momentum, nesterov,
                         beta1, beta2, eps, previous=net._optimizer if resume else None)
    history = {key: [] for key in history_keys}

    if net._backend.name == "cython":
        n_threads = get_num_threads() if n_threads is None else check_thread_count(
            n_threads)
        trainer = CompiledTrainer(net, X, T, labels, batch, opt, n_threads, weights)
    else:
        trainer = _PythonTrainer(net, X, T, labels, batch, opt, weights)
    # Every argument is checked: from here on this fit's optimiser is the network's.
    net._optimizer = opt
    net._checkpoint_run = None
    # A resumed fit's history continues the checkpoint's; interrupted is where a Ctrl-C
    # stopped the checkpoint's epoch (None after a complete one).
    interrupted = None
    if run is not None:
        history = net.history
        interrupted = run["interrupted"]
    settings.update(run_epochs=net.epochs_trained + epochs, backend=net.backend,
                    n_threads=n_threads if net._backend.name == "cython" else None)
    # Distributed fits (comm=) will write on rank 0 only: comm is None or comm.rank == 0.
    write_checkpoint = True
    n_batches = -(-n // batch)
    chunk = batches_per_chunk(net.sizes, batch)
    order = np.arange(n, dtype=np.int64)
    # Parameters at the end of the last finite epoch: what divergence restores.
    snapshot = net._params.copy()
    net.history = history
    # Overflow is detected and reported as divergence below; NumPy's warnings about it
    # (backend="numpy") would only repeat that.
    with trainer, _DeferredInterrupt() as interrupt, np.errstate(over="ignore",
                                                                  invalid="ignore"):
        for epoch in range(epochs):
            start_time = time.perf_counter()
            first_batch, total_loss, correct, earlier_seconds = 0, 0.0, 0, 0.0
            if interrupted is not None:
                # The checkpoint's epoch, from where it stopped: the same shuffle, the
                # same chunks (it stopped at a chunk boundary) and partial sums.
                net._rng.bit_generator.state = interrupted["epoch_start_rng"]
                snapshot[...] = interrupted["epoch_start_params"]
                first_batch, total_loss, correct, earlier_seconds = (
                    interrupted["batch"], interrupted["loss_sum"], interrupted["correct"],
                    interrupted["seconds"])
                interrupted = None
            else:
                snapshot[...] = net._params
            epoch_start_rng = net._rng.bit_generator.state if checkpoint else None
            if shuffle:
                order[...] = net._epoch_order(n)
            bar = _progress_bar(n, epoch, epochs) if verbose else None
            try:
                if bar is not None and first_batch:
                    bar.update(min(first_batch * batch, n))
                for first in range(first_batch, n_batches, chunk):
                    last = min(first + chunk, n_batches)
                    chunk_loss, chunk_correct, diverged_at = trainer.run(
                        order if shuffle else None, first, last)
                    # A batch's loss is checked before its update; parameters that an
                    # update made non-finite show in the next batch's loss, or here
                    # after the epoch's last batch.
                    if (diverged_at is None and last == n_batches
                            and not all_finite(net._params)):
                        diverged_at = last - 1
                    if diverged_at is not None:
                        net._params[...] = snapshot
                        # The optimiser state (velocity, Adam moments) went through
                        # the diverging steps too: a later resume starts afresh.
                        net._optimizer = None
                        raise FloatingPointError(_divergence_message(
                            epoch, diverged_at, n_batches, opt.learning_rate))
                    total_loss += chunk_loss
                    correct += chunk_correct
                    if bar is not None:
                        bar.update(min(last * batch, n) - first * batch)
                    # Ctrl-C is honoured here, between chunks: every batch trained so
                    # far is complete, so the network is consistent.
                    if interrupt.pending and checkpoint:
                        checkpoints.write(checkpoint, net, settings, history, {
                            "batch": last, "loss_sum": total_loss, "correct": correct,
                            "seconds": earlier_seconds + time.perf_counter() - start_time,
                            "epoch_start_rng": epoch_start_rng,
                            "epoch_start_params": snapshot}, write=write_checkpoint)
                    interrupt.raise_if_pending()
            finally:
                if bar is not None:
                    bar.close()
            history["loss"].append(total_loss / n + net._l2_term())
            if labels is not None:
                history["accuracy"].append(correct / total_weight)
            if validation_data is not None:
                val_total, val_correct = net._data_loss_and_correct(X_val, T_val,
                                                                     labels_val)
                history["val_loss"].append(val_total / X_val.shape[0] + net._l2_term())
                if labels_val is not None:
                    history["val_accuracy"].append(val_correct / X_val.shape[0])
            history["seconds"].append(earlier_seconds + time.perf_counter() - start_time)
            net.epochs_trained += 1
            if checkpoint:
                checkpoints.write(checkpoint, net, settings, history, write=write_checkpoint)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}: {_summary(history)}", flush=True)
    return history


class _PythonTrainer:
    """Runs batches of an epoch as a Python loop over the backend's kernels (backend="numpy").

    The same algorithm as the compiled engine, one kernel call per layer and batch.
    """

    def __init__(self, net, X, T, labels, batch_size, optimizer, sample_weight=None):
        self.net, self.X, self.T, self.labels = net, X, T, labels
        self.weights = sample_weight
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.workspace = net._workspace(batch_size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def run(self, order, first, last):
        """Train batches [first, last); returns (summed loss, n_correct, diverged_at),
        weighted with sample weights as in the compiled engine (fastbp/engine.py)."""
        net, X, T, labels, batch = self.net, self.X, self.T, self.labels, self.batch_size
        total_loss, correct = 0.0, 0
        w, norm = None, None
        for bi in range(first, last):
            start = bi * batch
            m = min(batch, X.shape[0] - start)
            idx = order[start:start + m] if order is not None else slice(start, start + m)
            if self.weights is not None:
                w = self.weights[idx]
                norm = w.sum()
                if norm == 0:  # no sample counts: no update (as the engine)
                    continue
            acts, deltas, Tb = self.workspace.view(m)
            if order is not None:
                np.take(X, idx, axis=0, out=acts[0])
                np.take(T, idx, axis=0, out=Tb)
            else:
                acts[0][...] = X[idx]
                Tb[...] = T[idx]
            batch_loss, A_out = net._backprop(acts, deltas, Tb, m, w)
            if not np.isfinite(batch_loss):
                return total_loss, correct, bi
            # With weights: m times the batch's weighted mean loss (as the engine).
            total_loss += batch_loss if w is None else batch_loss * m / norm
            if labels is not None:
                correct += net._n_correct(A_out, labels[idx], w)
            self.optimizer.step(net._params, net._grads)
        return total_loss, correct, None


def _divergence_message(epoch, batch, n_batches, learning_rate):
    restored = (f"the end of epoch {epoch}" if epoch > 0
                else "their values at the start of this fit")
    return (f"training diverged in epoch {epoch + 1}, batch {batch + 1} of {n_batches}: the "
            f"loss or the parameters became NaN or inf. The parameters were restored to "
            f"{restored}. Try a smaller learning_rate (it was {learning_rate:g}).")


class _DeferredInterrupt:
    """Hold Ctrl-C (SIGINT) during fit until a point where the network is consistent.

    Only in the main thread, and only if SIGINT has Python's default handler; elsewhere
    it does nothing and the interrupt is raised wherever Python notices it.
    """

    def __enter__(self):
        self.pending = False
        self.previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        self.pending = True

    def raise_if_pending(self):
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        # An interrupt that arrived after the last check is not lost.
        if self.pending and exc[0] is None:
            raise KeyboardInterrupt


def _progress_bar(n, epoch, epochs):
    from tqdm.auto import tqdm

    # The bar disappears when the epoch ends; a summary line per epoch stays.
    return tqdm(total=n, desc=f"epoch {epoch + 1}/{epochs}", unit="samples", leave=False,
                dynamic_ncols=True)


def _summary(history):
    parts = []
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in history:
            parts.append(f"{key} {history[key][-1]:.4f}")
    parts.append(f"{history['seconds'][-1]:.2f}s")
    return ", ".join(parts)
