"""Training: the fit loop shared by both backends, and what it needs around it.

``fit`` checks its arguments, builds the trainer of the network's backend (the compiled
engine of fastbp/engine.py, or ``_PythonTrainer``'s loop over fastbp.reference), then runs
epochs chunk by chunk: Python regains control between chunks for the progress bar, the
divergence check (the network is restored to the last finite epoch) and Ctrl-C (held
until the network is consistent). With ``checkpoint=``, fastbp/checkpoints.py writes the
training state after every epoch and at a Ctrl-C stop; ``resume=True`` on a network
loaded from a checkpoint continues that fit, mid-epoch if it stopped there.

Three steps: ``prepare`` checks every argument and changes nothing, ``make_trainer``
builds the trainer, ``_train`` runs the epochs. With ``comm=`` (fastbp/distributed.py)
the ranks share their checks between the first two, and the epochs run one
data-parallel step at a time (each trainer's ``gradient_sum`` and ``update``).
"""

import signal
import threading
import time
from types import SimpleNamespace

import numpy as np

from fastbp import checkpoints
from fastbp._threads import check_thread_count, get_num_threads
from fastbp._validation import all_finite, check_positive_int, check_sample_weight
from fastbp.engine import CompiledTrainer, batches_per_chunk

# The slots after the gradient in a data-parallel step's buffer (src/_engine.pyx).
SLOT_LOSS, SLOT_CORRECT, SLOT_NORMALISER = 0, 1, 2
from fastbp.optimizers import OPTIMIZERS, make_optimizer


def fit(net, X, Y, epochs=1, batch_size=32, learning_rate=0.1, optimizer="sgd",
        momentum=0.0, nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8, shuffle=True,
        validation_data=None, verbose=False, n_threads=None, resume=False, check_input=True,
        checkpoint=None, sample_weight=None, comm=None):
    """The body of :meth:`fastbp.Network.fit` (documented there)."""
    group = None
    if comm is not None:
        from fastbp.distributed import ProcessGroup

        group = ProcessGroup(comm)
    # Every argument is checked before anything is changed; with comm, every process
    # learns whether all of them passed (and agree), so that none waits for the others.
    plan, error = None, None
    try:
        plan = prepare(net, X, Y, epochs, batch_size, learning_rate, optimizer, momentum,
                       nesterov, beta1, beta2, eps, shuffle, validation_data, verbose,
                       n_threads, resume, check_input, checkpoint, sample_weight,
                       distributed=group is not None)
    except BaseException as exc:
        # A Ctrl-C too: the other processes are about to wait for this one's checks.
        if group is None:
            raise
        error = exc
    if group is None:
        return _run(net, plan, None)
    group.agree(net, plan, error)
    try:
        group.start(net, plan)
        return _run(net, plan, group)
    except BaseException as exc:
        # An exception on this rank alone (a bug, memory exhausted) while the others
        # still expect its collective calls would leave them waiting forever: abort.
        group.abort_unless_collective(exc)
        raise


def _run(net, plan, group):
    trainer = make_trainer(net, plan)
    # From here on this fit's optimiser is the network's.
    net._optimizer = plan.optimizer
    net._checkpoint_run = None
    return _train(net, plan, trainer, group)


def prepare(net, X, Y, epochs, batch_size, learning_rate, optimizer, momentum, nesterov,
            beta1, beta2, eps, shuffle, validation_data, verbose, n_threads, resume,
            check_input, checkpoint, sample_weight=None, distributed=False):
    """Check fit's arguments and gather what the fit needs; changes nothing.

    Returns a namespace: the checked data (``X``, ``T``, ``labels``, ``weights``,
    ``validation``), ``n``, ``total_weight`` (n, or the weights' sum), ``batch``,
    ``epochs``, ``optimizer`` (this fit's, not yet the network's),
    ``settings`` (what a checkpoint records), ``history_keys``, ``run`` (the
    checkpoint's fit that ``resume=True`` continues, or None), ``checkpoint``,
    ``shuffle``, ``verbose`` and ``n_threads``. With ``distributed``, the checks that
    need every process's data (the resume's settings) are left to fastbp.distributed.
    """
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
    validation = None
    labels_val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, Y_val)")
        X_val = net._check_X(validation_data[0], "validation_data[0]")
        T_val, labels_val = net._check_Y(validation_data[1], X_val.shape[0],
                                          "validation_data[1]")
        validation = (X_val, T_val, labels_val)
    history_keys = ["loss", *(["accuracy"] if labels is not None else []),
                    *(["val_loss"] if validation_data is not None else []),
                    *(["val_accuracy"] if labels_val is not None else []), "seconds"]
    settings = checkpoints.fit_settings(optimizer, learning_rate, momentum, nesterov, beta1,
                                        beta2, eps, batch_size, shuffle, n, history_keys,
                                        weighted=weights is not None)
    # A network loaded from a checkpoint: resume=True continues that fit, with its settings.
    run = net._checkpoint_run if resume else None
    if run is not None and not distributed:
        checkpoints.check_resume(run, settings)
    opt = make_optimizer(optimizer, net._params, learning_rate, momentum, nesterov,
                         beta1, beta2, eps, previous=net._optimizer if resume else None)
    threads_given = n_threads is not None
    if net._backend.name == "cython":
        n_threads = get_num_threads() if n_threads is None else check_thread_count(
            n_threads)
    else:
        n_threads = None
    return SimpleNamespace(
        X=X, T=T, labels=labels, weights=weights, validation=validation, n=n,
        total_weight=total_weight, batch=batch, epochs=epochs,
        optimizer=opt, settings=settings, history_keys=history_keys, run=run,
        checkpoint=checkpoint, shuffle=bool(shuffle), verbose=verbose, n_threads=n_threads,
        threads_given=threads_given)


def make_trainer(net, plan):
    """The trainer of the network's backend: the compiled engine or the NumPy loop."""
    if net._backend.name == "cython":
        return CompiledTrainer(net, plan.X, plan.T, plan.labels, plan.batch, plan.optimizer,
                               plan.n_threads, plan.weights)
    return _PythonTrainer(net, plan.X, plan.T, plan.labels, plan.batch, plan.optimizer,
                          plan.weights)


def _train(net, plan, trainer, group):
    """The epochs of a fit whose arguments ``prepare`` checked (and, with ``group``,
    every process agreed to): chunks of batches, or data-parallel steps."""
    n, batch, epochs, opt = plan.n, plan.batch, plan.epochs, plan.optimizer
    labels, validation, checkpoint = plan.labels, plan.validation, plan.checkpoint
    weights = plan.weights
    settings, run, shuffle = plan.settings, plan.run, plan.shuffle
    history = {key: [] for key in plan.history_keys}
    # A resumed fit's history continues the checkpoint's; interrupted is where a Ctrl-C
    # stopped the checkpoint's epoch (None after a complete one).
    interrupted = None
    if run is not None:
        history = net.history
        interrupted = run["interrupted"]
    settings.update(run_epochs=net.epochs_trained + epochs, backend=net.backend,
                    n_threads=plan.n_threads)
    if group is None:
        n_total, n_batches = n, -(-n // batch)
        total_weight = plan.total_weight
        chunk = batches_per_chunk(net.sizes, batch)
        write_checkpoint = True
        verbose = plan.verbose

        def rows_through(step):
            return min(step * batch, n)
    else:
        # Distributed: one step at a time, each with its reduction; history, loss and
        # accuracy are over every process's rows; rank 0 writes and shows progress.
        n_total, n_batches, chunk = group.total, group.steps, 1
        total_weight = group.total_weight
        write_checkpoint = group.rank == 0
        verbose = plan.verbose and group.rank == 0
        rows_through = group.rows_through
    order = np.arange(n, dtype=np.int64)
    # Parameters at the end of the last finite epoch: what divergence restores.
    snapshot = net._params.copy()
    net.history = history
    # Overflow is detected and reported as divergence below; NumPy's warnings about it
    # (backend="numpy") would only repeat that.
    # Ctrl-C is deferred first: one arriving while the trainer takes (or releases) its
    # hold on BLAS threads cannot leave the hold taken.
    with _DeferredInterrupt() as interrupt, trainer, np.errstate(over="ignore",
                                                                  invalid="ignore"):
        stepper = trainer if group is None else group.stepper(net, trainer, interrupt,
                                                              settings["weighted"])
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
            # What the epoch's loss sum is divided by: its samples, or with weights those
            # of the batches that train (a batch of zero weights has no mean loss).
            if weights is None:
                loss_samples = n_total
            elif group is None:
                loss_samples = _trained_samples(weights, order if shuffle else None, batch)
            else:
                loss_samples = group.trained_rows(_batch_weight_sums(
                    weights, order if shuffle else None, batch, group.steps))
            bar = _progress_bar(n_total, epoch, epochs) if verbose else None
            try:
                if bar is not None and first_batch:
                    bar.update(rows_through(first_batch))
                for first in range(first_batch, n_batches, chunk):
                    last = min(first + chunk, n_batches)
                    chunk_loss, chunk_correct, diverged_at = stepper.run(
                        order if shuffle else None, first, last)
                    # A batch's loss is checked before its update; parameters that an
                    # update made non-finite show in the next batch's loss, or here
                    # after the epoch's last batch. (Distributed: the loss is the
                    # reduced one and the parameters are the same on every process,
                    # so every process decides the same.)
                    if (diverged_at is None and last == n_batches
                            and not all_finite(net._params)):
                        diverged_at = last - 1
                    if diverged_at is not None:
                        net._params[...] = snapshot
                        # The optimiser state (velocity, Adam moments) went through
                        # the diverging steps too: a later resume starts afresh.
                        net._optimizer = None
                        raise _together(group, FloatingPointError(_divergence_message(
                            epoch, diverged_at, n_batches, opt.learning_rate)))
                    total_loss += chunk_loss
                    correct += chunk_correct
                    if bar is not None:
                        bar.update(rows_through(last) - rows_through(first))
                    # Ctrl-C is honoured here, between chunks: every batch trained so
                    # far is complete, so the network is consistent. (Distributed: when
                    # any process had one, as the step's reduction told every process.)
                    stop = interrupt.pending if group is None else stepper.stop
                    if stop and checkpoint:
                        _write_checkpoint(checkpoint, net, settings, history, group, {
                            "batch": last, "loss_sum": total_loss, "correct": correct,
                            "seconds": earlier_seconds + time.perf_counter() - start_time,
                            "epoch_start_rng": epoch_start_rng,
                            "epoch_start_params": snapshot}, write=write_checkpoint)
                    if stop:
                        interrupt.pending = False
                        raise _together(group, KeyboardInterrupt())
            finally:
                if bar is not None:
                    bar.close()
            val_total, val_correct, n_val = 0.0, 0, 0
            if validation is not None:
                X_val, T_val, labels_val = validation
                val_total, val_correct = net._data_loss_and_correct(X_val, T_val, labels_val)
                n_val = X_val.shape[0]
            seconds = earlier_seconds + time.perf_counter() - start_time
            stop = False
            if group is not None:
                val_total, val_correct, n_val, seconds, stop = group.epoch_end(
                    val_total, val_correct, n_val, seconds, interrupt.pending)
            history["loss"].append(total_loss / loss_samples + net._l2_term())
            if labels is not None:
                history["accuracy"].append(correct / total_weight)
            if validation is not None:
                history["val_loss"].append(val_total / n_val + net._l2_term())
                if validation[2] is not None:
                    history["val_accuracy"].append(val_correct / n_val)
            history["seconds"].append(seconds)
            net.epochs_trained += 1
            if checkpoint:
                _write_checkpoint(checkpoint, net, settings, history, group,
                                  write=write_checkpoint)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}: {_summary(history)}", flush=True)
            # Distributed: a Ctrl-C that arrived after the last step is decided here,
            # together, rather than on one process when fit returns.
            if stop and epoch == epochs - 1:
                interrupt.pending = False
                raise _together(group, KeyboardInterrupt())
        if group is not None:
            group.finished = True   # no collective call is left in this fit
    return history


def _together(group, exc):
    """``exc``, marked (distributed) as raised by every rank at the same point."""
    if group is not None:
        from fastbp.distributed import collective

        collective(exc)
    return exc


def _write_checkpoint(path, net, settings, history, group, interrupted=None, write=True):
    """checkpoints.write; distributed, with every process's shuffling state (collective)."""
    if group is None:
        return checkpoints.write(path, net, settings, history, interrupted, write=write)
    ranks = group.gather_generators(
        net, None if interrupted is None else interrupted["epoch_start_rng"])
    error = None
    try:
        checkpoints.write(path, net, settings, history, interrupted, write=write,
                          ranks=ranks)
    except Exception as exc:   # a full disk on rank 0: every rank must stop
        error = exc
    group.share_outcome(error, "writing the checkpoint")


def _batch_weight_sums(weights, order, batch, n_steps=None):
    """Each batch's weight sum, in the epoch's order (``order``: the epoch's sample
    order, or None); zeros after the last batch up to ``n_steps`` batches."""
    w = weights if order is None else weights[order]
    starts = np.arange(0, w.shape[0], batch)
    sums = np.zeros(starts.shape[0] if n_steps is None else n_steps)
    if starts.shape[0]:
        sums[:starts.shape[0]] = np.add.reduceat(w, starts)
    return sums


def _trained_samples(weights, order, batch):
    """The number of samples in the batches of an epoch whose weights are not all zero
    (those a weighted fit trains on)."""
    n = weights.shape[0]
    sizes = np.diff(np.append(np.arange(0, n, batch), n))
    # Weights are >= 0: a batch's sum is 0 exactly when all its weights are.
    return int(sizes[_batch_weight_sums(weights, order, batch) > 0].sum())


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

    def _load(self, idx, m, shuffled):
        """The workspace for ``m`` rows, with rows ``idx`` of X and T copied in (an
        index array when ``shuffled``, else a slice)."""
        acts, deltas, Tb = self.workspace.view(m)
        if shuffled:
            np.take(self.X, idx, axis=0, out=acts[0])
            np.take(self.T, idx, axis=0, out=Tb)
        else:
            acts[0][...] = self.X[idx]
            Tb[...] = self.T[idx]
        return acts, deltas, Tb

    def run(self, order, first, last):
        """Train batches [first, last); returns (summed loss, n_correct, diverged_at),
        weighted with sample weights as in the compiled engine (fastbp/engine.py)."""
        net, X, labels, batch = self.net, self.X, self.labels, self.batch_size
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
            acts, deltas, Tb = self._load(idx, m, order is not None)
            batch_loss, A_out = net._backprop(acts, deltas, Tb, m, w)
            if not np.isfinite(batch_loss):
                return total_loss, correct, bi
            # With weights: m times the batch's weighted mean loss (as the engine).
            total_loss += batch_loss if w is None else batch_loss * m / norm
            if labels is not None:
                correct += net._n_correct(A_out, labels[idx], w)
            self.optimizer.step(net._params, net._grads)
        return total_loss, correct, None

    # A data-parallel step (fastbp/distributed.py), as CompiledTrainer's.

    def gradient_sum(self, order, step, buffer):
        """Fill ``buffer`` with this process's gradient sum over rows [step * b,
        (step + 1) * b) of its epoch order, then loss sum, correct count and row count
        (weighted sums and the weight sum with sample weights)."""
        net, X, labels, batch = self.net, self.X, self.labels, self.batch_size
        n_params = net._params.size
        start = step * batch
        m = min(batch, X.shape[0] - start) if start < X.shape[0] else 0
        buffer[...] = 0
        if m == 0:
            return
        idx = order[start:start + m] if order is not None else slice(start, start + m)
        acts, deltas, Tb = self._load(idx, m, order is not None)
        w = None if self.weights is None else self.weights[idx]
        batch_loss, A_out = net._backprop(acts, deltas, Tb, m, w, scale=1.0, add_l2=False)
        buffer[:n_params] = net._grads
        buffer[n_params + SLOT_LOSS] = batch_loss
        if labels is not None:
            buffer[n_params + SLOT_CORRECT] = net._n_correct(A_out, labels[idx], w)
        buffer[n_params + SLOT_NORMALISER] = m if w is None else w.sum()

    def update(self, grads, scale):
        """One optimiser step with the gradient ``scale * grads`` (+ L2); grads is
        overwritten."""
        net = self.net
        grads *= grads.dtype.type(scale)
        if net.l2 > 0:
            net._axpy(net._params[:net._n_weights], grads[:net._n_weights], a=net.l2)
        self.optimizer.step(net._params, grads)


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
