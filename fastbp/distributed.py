"""Data-parallel training over MPI: ``Network.fit(..., comm=MPI.COMM_WORLD)``.

Every process (rank) holds its own shard of the data and a copy of the network. At the
start of ``fit`` rank 0's parameters (and, resuming, its optimiser state) are broadcast
to every rank. An epoch has ``max over ranks of ceil(n_rank / batch_size)`` steps; in
step k each rank computes the gradient *sum* of the loss over its rows ``[k b, (k+1) b)``
of its epoch order (possibly none), with the step's loss sum, correct count and row count
in slots after it, in one flat buffer (``_engine.gradient_sum``); one in-place
``Allreduce`` sums the buffers over ranks; then every rank applies the same optimiser
step with ``sum / total rows`` (+ the L2 term, once). N ranks with batch b thus do what
one process does stepping through those rows together, and keep identical parameters.

Everything that ends or changes a fit is decided together, from reduced values every
rank holds: a non-finite reduced loss (divergence: the same rollback and
``FloatingPointError`` everywhere), a Ctrl-C on any rank (a flag in the same buffer:
every rank stops after the same step; one during the argument checks is shared as an
error is), an argument error on any rank (checked before the first collective call,
then shared: every rank raises). mpi4py is imported only here, and only when ``comm``
is given.
"""

import math
import os

import numpy as np

from fastbp import checkpoints
from fastbp._threads import get_num_threads
from fastbp.engine import REDUCED_SLOTS

SLOT_LOSS, SLOT_CORRECT, SLOT_NORMALISER = 0, 1, 2
# Start reducing the upper layers' weight gradients (Iallreduce) before layer 0's is
# computed, as DDP's buckets do (compiled engine, 2+ layers). Off: on this 2-core machine
# it measured no faster (`python benchmarks/distributed.py --overlap`; MPICH progresses
# a shared-memory reduction only inside MPI calls, and every core is computing). Worth
# measuring again where a network card moves the bytes.
OVERLAP_FIRST_LAYER = False


def mpi():
    """mpi4py's MPI module, or an ImportError saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError('fit(comm=...) needs mpi4py and an MPI library: pip install '
                          '"fastbp[mpi]" (mpi4py and mpich)') from exc
    return MPI


def _threads_chosen():
    """Whether the user chose fastbp's thread count (set_num_threads or OMP_NUM_THREADS)."""
    from fastbp import _threads

    return _threads._num_threads is not None or "OMP_NUM_THREADS" in os.environ


def collective(exc):
    """Mark ``exc`` as raised by every rank at the same point of a fit (no rank is left
    waiting for another), and return it."""
    exc.fastbp_collective = True
    return exc


def is_collective(exc):
    return getattr(exc, "fastbp_collective", False)


def ranks_on_node(comm):
    """The number of ranks of ``comm`` on this machine (collective)."""
    MPI = mpi()
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        return local.Get_size()
    finally:
        local.Free()


def default_threads(comm):
    """Threads per rank: the machine's cores shared by its ranks (collective)."""
    return max(1, get_num_threads() // ranks_on_node(comm))


class ProcessGroup:
    """The ranks of one distributed fit: agreement at the start, reductions, gathers."""

    def __init__(self, comm):
        MPI = mpi()
        if not isinstance(comm, MPI.Intracomm):
            raise TypeError(f"comm must be an mpi4py intra-communicator such as "
                            f"MPI.COMM_WORLD, got {type(comm).__name__}")
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.finished = False

    # ----- the start of a fit -------------------------------------------------------

    def agree(self, net, plan, error):
        """Share every rank's argument check (collective): raise on every rank if one
        failed, or if the ranks would not train the same network the same way.
        ``plan`` is this rank's from training.prepare (None if ``error``)."""
        signature = None if plan is None else _signature(net, plan)
        report = (None if error is None else (type(error).__name__, str(error)),
                  signature, None if plan is None else (plan.n, plan.batch,
                                                        plan.total_weight))
        reports = self.comm.allgather(report)
        # The same number of threads per node, from one collective call on every rank.
        self.node_threads = default_threads(self.comm)
        if error is not None:
            raise collective(error)
        for r, (failure, _, _) in enumerate(reports):
            if failure is not None:
                name, message = failure
                if name == "KeyboardInterrupt":
                    raise collective(KeyboardInterrupt(
                        f"fit(comm=...) stopped on every process: process {r} of "
                        f"{self.size} was interrupted (Ctrl-C)"))
                kind = {"ValueError": ValueError, "TypeError": TypeError}.get(name,
                                                                              RuntimeError)
                raise collective(kind(f"fit(comm=...) stopped on every process: process "
                                      f"{r} of {self.size} raised {name}: {message}"))
        reference = reports[0][1]
        for r, (_, other, _) in enumerate(reports[1:], 1):
            differences = [f"{key} {other[key]!r} (process 0: {reference[key]!r})"
                           for key in reference if other[key] != reference[key]]
            if differences:
                raise collective(ValueError(
                    f"fit(comm=...): every process must fit the same network with the "
                    f"same settings; process {r} differs: {'; '.join(differences)}"))
        self.shards = [n for _, _, (n, _, _) in reports]
        self.batches = [batch for _, _, (_, batch, _) in reports]
        self.total = sum(self.shards)
        # What the epoch's correct count is divided by: rows, or the weights' sum.
        self.total_weight = sum(weight for _, _, (_, _, weight) in reports)
        self.steps = max(-(-n // b) for n, b in zip(self.shards, self.batches))

    def start(self, net, plan):
        """Make every rank start where rank 0 is (collective): check a resume against
        the whole run, then broadcast rank 0's parameters and optimiser state."""
        settings = plan.settings
        settings.update(n_samples=self.total, shards=list(self.shards))
        run = plan.run
        if run is not None:
            # The same checkpoint and settings on every rank (agree checked): every
            # rank accepts or refuses alike.
            try:
                checkpoints.check_resume(run, settings)
            except ValueError as exc:
                raise collective(exc) from None
        comm = self.comm
        comm.Bcast(net._params, root=0)
        opt = plan.optimizer
        state = ([opt.m, opt.v] if opt.name == "adam"
                 else [opt.velocity] if opt.velocity is not None else [])
        for vector in state:
            comm.Bcast(vector, root=0)
        if opt.name == "adam":
            opt.t = comm.bcast(opt.t, root=0)
        net.epochs_trained = comm.bcast(net.epochs_trained, root=0)
        if run is not None and run.get("ranks") is not None:
            # A distributed checkpoint: this rank's own shuffling state.
            ranks = run["ranks"]
            net._rng.bit_generator.state = ranks["rngs"][self.rank]
            if run["interrupted"] is not None:
                run["interrupted"]["epoch_start_rng"] = ranks["epoch_start_rngs"][self.rank]
        if plan.n_threads is not None and not plan.threads_given and not _threads_chosen():
            plan.n_threads = self.node_threads

    # ----- during a fit -------------------------------------------------------------

    def rows_through(self, step):
        """Rows of all ranks in steps [0, step) of an epoch."""
        return sum(min(step * b, n) for n, b in zip(self.shards, self.batches))

    def trained_rows(self, step_weights):
        """Rows of all ranks in the steps of an epoch that train (collective):
        ``step_weights`` is this rank's weight sum of each step; a step trains when the
        sum over ranks is not 0, as a batch of one process does."""
        step_weights = np.array(step_weights, dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, step_weights, op=self.MPI.SUM)
        return sum(self.rows_through(k + 1) - self.rows_through(k)
                   for k in np.flatnonzero(step_weights > 0))

    def stepper(self, net, trainer, interrupt, weighted=False):
        return DataParallelSteps(self, net, trainer, interrupt, weighted)

    def epoch_end(self, val_total, val_correct, n_val, seconds, pending):
        """Sum the validation over ranks, agree on a Ctrl-C, take rank 0's seconds
        (collective): (val_total, val_correct, n_val, seconds, stop)."""
        values = np.array([val_total, val_correct, n_val, 1.0 if pending else 0.0])
        self.comm.Allreduce(self.MPI.IN_PLACE, values, op=self.MPI.SUM)
        seconds = self.comm.bcast(seconds, root=0)
        return float(values[0]), int(values[1]), int(values[2]), seconds, values[3] > 0

    def share_outcome(self, error, doing):
        """Rank 0 did something alone (``doing``; ``error`` if it failed): every rank
        raises if it failed (collective)."""
        message = self.comm.bcast(None if error is None else
                                  f"{type(error).__name__}: {error}", root=0)
        if error is not None:
            raise collective(error)
        if message is not None:
            raise collective(RuntimeError(f"process 0 failed {doing}: {message}"))

    def abort_unless_collective(self, exc):
        """A fit's exception on this rank alone while collective calls remain would
        leave the other ranks waiting forever: print it and abort the MPI job."""
        if self.finished or is_collective(exc) or self.size == 1:
            return
        import sys
        import time
        import traceback

        # The summary first, in one write: what reaches mpiexec before the abort.
        sys.stderr.write(f"fastbp: process {self.rank} of {self.size} failed during a "
                         f"distributed fit ({type(exc).__name__}: {exc}); aborting the MPI "
                         f"job, since the other processes would wait for it forever\n")
        sys.stderr.flush()
        traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()
        time.sleep(0.5)   # let MPI forward the output before the processes are killed
        self.comm.Abort(1)

    def gather_generators(self, net, epoch_start_rng):
        """Every rank's shuffling state, on rank 0 (collective; None elsewhere)."""
        states = self.comm.gather((net._rng.bit_generator.state, epoch_start_rng), root=0)
        if self.rank != 0:
            return None
        return {"rngs": [s for s, _ in states],
                "epoch_start_rngs": (None if epoch_start_rng is None
                                     else [s for _, s in states])}


class DataParallelSteps:
    """Runs steps of an epoch: gradient sums, one Allreduce, the same update everywhere.

    ``run`` has the trainers' interface (summed loss, n_correct, diverged_at); after
    it, ``stop`` says whether any rank had a Ctrl-C pending at a step's reduction.
    """

    def __init__(self, group, net, trainer, interrupt, weighted=False):
        self.group, self.trainer, self.interrupt = group, trainer, interrupt
        self.weighted = weighted
        n_params = net._params.size
        # [gradient sum | loss, correct, rows | stop flag], summed in one Allreduce.
        self.buffer = np.zeros(n_params + REDUCED_SLOTS + 1, net.dtype)
        self.grads = self.buffer[:n_params]
        self.engine_buffer = self.buffer[:n_params + REDUCED_SLOTS]
        self.slots = n_params
        self.stop = False
        # Layer 0's weights come first in the flat layout, the upper layers' next, then
        # every bias, the slots and the flag.
        first_weights = net.sizes[0] * net.sizes[1]
        self.overlap = (OVERLAP_FIRST_LAYER and net.n_layers > 1
                        and hasattr(trainer, "first_layer_gradient"))
        self.pieces = (self.buffer[first_weights:net._n_weights],
                       self.buffer[:first_weights], self.buffer[net._n_weights:])

    def _reduce(self, order, step):
        """The step's gradient sums and slots, summed over ranks into self.buffer."""
        comm, MPI, buffer, trainer = self.group.comm, self.group.MPI, self.buffer, self.trainer
        if not self.overlap:
            trainer.gradient_sum(order, step, self.engine_buffer)
            buffer[-1] = 1 if self.interrupt.pending else 0
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
            return
        upper, first, rest = self.pieces
        trainer.gradient_sum(order, step, self.engine_buffer, first_layer=False)
        request = comm.Iallreduce(MPI.IN_PLACE, upper, op=MPI.SUM)
        trainer.first_layer_gradient(order, step, self.engine_buffer)
        buffer[-1] = 1 if self.interrupt.pending else 0
        MPI.Request.Waitall([request, comm.Iallreduce(MPI.IN_PLACE, first, op=MPI.SUM),
                             comm.Iallreduce(MPI.IN_PLACE, rest, op=MPI.SUM)])

    def run(self, order, first, last):
        buffer, s = self.buffer, self.slots
        total_loss, correct = 0.0, 0
        for step in range(first, last):
            self._reduce(order, step)
            self.stop = self.stop or buffer[-1] > 0
            step_loss = float(buffer[s + SLOT_LOSS])
            # The reduced loss is every rank's: a non-finite one on any rank stops all.
            if not math.isfinite(step_loss):
                return total_loss, correct, step
            norm = float(buffer[s + SLOT_NORMALISER])
            if not self.weighted:
                self.trainer.update(self.grads, 1.0 / norm)
                total_loss += step_loss
                correct += int(buffer[s + SLOT_CORRECT])
            elif norm > 0:
                # As one process: the step's weighted mean loss counts once per row, and
                # a step whose weights are all zero is skipped (no update).
                self.trainer.update(self.grads, 1.0 / norm)
                rows = self.group.rows_through(step + 1) - self.group.rows_through(step)
                total_loss += step_loss * rows / norm
                correct += float(buffer[s + SLOT_CORRECT])
        return total_loss, correct, None


def _signature(net, plan):
    """What every rank of a fit must share: the network, the settings, the resume point."""
    settings = {key: value for key, value in plan.settings.items() if key != "n_samples"}
    run = plan.run
    return {
        "network": repr(net).replace(f", backend={net.backend!r}", ""),
        "sizes": list(net.sizes), "epochs": plan.epochs, "settings": settings,
        "checkpoint": plan.checkpoint is not None,
        "resume": None if run is None else {
            "settings": run["settings"], "epochs_trained": net.epochs_trained,
            "interrupted": None if run["interrupted"] is None else run["interrupted"]["batch"],
        },
    }
