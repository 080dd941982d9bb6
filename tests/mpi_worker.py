"""What each MPI process runs for tests/test_distributed.py (launched by mpiexec).

``python mpi_worker.py SCENARIO CONFIG_JSON OUT_DIR``: every rank trains, then rank 0
writes ``OUT_DIR/result.npz`` (and every rank may write ``OUT_DIR/rank{r}.json``); the
test reads them and asserts. Each rank builds the same full data set from a fixed
seed and takes its shard; the network of rank r is seeded with ``10 + r``, so that
ranks start from different parameters and fit must broadcast rank 0's.
"""

import copy
import json
import os
import signal
import sys

import numpy as np
from mpi4py import MPI

import fastbp

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


def make_data(config):
    """The full training and validation data, and this rank's shards of both."""
    rng = np.random.default_rng(config.get("data_seed", 0))
    shards = config["shards"]
    n = sum(shards)
    n_in, k = config["sizes"][0], config["sizes"][-1]
    X = rng.normal(size=(n, n_in))
    if config.get("task", "multiclass") == "multiclass":
        Y = rng.integers(0, k, n)
    else:
        Y = rng.normal(size=(n, k))
    X_val = rng.normal(size=(sum(config.get("val_shards", [5] * size)), n_in))
    Y_val = (rng.integers(0, k, len(X_val)) if config.get("task", "multiclass") == "multiclass"
             else rng.normal(size=(len(X_val), k)))
    bounds = np.cumsum([0, *shards])
    val_bounds = np.cumsum([0, *config.get("val_shards", [5] * size)])
    mine = slice(bounds[rank], bounds[rank + 1])
    val_mine = slice(val_bounds[rank], val_bounds[rank + 1])
    return (X, Y, X_val, Y_val, bounds, val_bounds,
            X[mine].copy(), Y[mine].copy(), X_val[val_mine], Y_val[val_mine])


def network(config, seed):
    task = config.get("task", "multiclass")
    return fastbp.Network(config["sizes"], activation=config.get("activation", "tanh"),
                          output="softmax" if task == "multiclass" else "identity",
                          loss="cross_entropy" if task == "multiclass" else "mse",
                          l2=config.get("l2", 0.0), dtype=config.get("dtype", "float64"),
                          seed=seed, backend=config.get("backend", "cython"))


def fit_arguments(config):
    keys = ("batch_size", "learning_rate", "optimizer", "momentum", "nesterov", "shuffle")
    return {key: config[key] for key in keys if key in config}


def equivalence(config, out_dir):
    """Train distributed; rank 0 also steps one process through the same rows."""
    from fastbp import distributed

    distributed.OVERLAP_FIRST_LAYER = config.get("overlap", False)
    X, Y, X_val, Y_val, bounds, val_bounds, Xr, Yr, Xr_val, Yr_val = make_data(config)
    net = network(config, 10 + rank)
    initial = net._params.copy()
    epochs = config["epochs"]
    shuffle = config.get("shuffle", True)
    # This rank's epoch orders, drawn as fit will draw them from its generator.
    rng = copy.deepcopy(net._rng)
    orders = [rng.permutation(len(Xr)) if shuffle else np.arange(len(Xr))
              for _ in range(epochs)]
    weights = weights_r = None
    if config.get("weighted"):
        # Zeros, fractions and large weights; with zero_step, every rank's rows of step 1
        # weigh nothing (the step is skipped, as one process skips such a batch).
        weights = np.random.default_rng(7).choice([0.0, 0.5, 1.0, 3.0], size=len(X))
        b = config["batch_size"]
        for r in range(size):
            weights[bounds[r]] = 1.0   # no shard all zero
            if config.get("zero_step"):
                weights[bounds[r] + b:min(bounds[r] + 2 * b, bounds[r + 1])] = 0.0
        weights_r = weights[bounds[rank]:bounds[rank + 1]]
    history = net.fit(Xr, Yr, epochs=epochs, validation_data=(Xr_val, Yr_val), comm=comm,
                      sample_weight=weights_r, **fit_arguments(config))
    all_params = comm.gather(net._params.copy(), root=0)
    all_history = comm.gather(history, root=0)
    all_orders = comm.gather(orders, root=0)
    initial0 = comm.bcast(initial, root=0)
    if rank != 0:
        return
    # One process, one fit of one full batch per step: the rows of every rank's step.
    ref = network(config, 10)
    assert np.array_equal(ref._params, initial0)
    b = config["batch_size"]
    steps = max(-(-s // b) for s in config["shards"])
    args = fit_arguments(config)
    args.update(batch_size=None, shuffle=False)
    ref_history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    resume = False
    n = len(X)
    total_weight = n if weights is None else weights.sum()
    for epoch in range(epochs):
        loss_sum, correct, trained = 0.0, 0.0, 0
        for step in range(steps):
            rows = np.concatenate([bounds[r] + all_orders[r][epoch][step * b:(step + 1) * b]
                                   for r in range(size)])
            w = None if weights is None else weights[rows]
            if w is not None and w.sum() == 0:
                continue   # one process skips a batch that weighs nothing
            h = ref.fit(X[rows], Y[rows], epochs=1, resume=resume, sample_weight=w, **args)
            resume = True
            loss_sum += (h["loss"][0] - ref._l2_term()) * len(rows)
            trained += len(rows)   # the epoch's loss is over the rows of steps that train
            correct += h["accuracy"][0] * (len(rows) if w is None else w.sum())
        ref_history["loss"].append(loss_sum / trained + ref._l2_term())
        ref_history["accuracy"].append(correct / total_weight)
        evaluation = ref.evaluate(X_val, Y_val)
        ref_history["val_loss"].append(evaluation["loss"])
        ref_history["val_accuracy"].append(evaluation["accuracy"])
    np.savez(os.path.join(out_dir, "result.npz"), params=np.array(all_params),
             reference=ref._params, initial=initial0,
             histories=json.dumps(all_history), reference_history=json.dumps(ref_history))


def divergence(config, out_dir):
    """Rank 1's shard holds a row that makes its loss overflow at step 2."""
    X, Y, X_val, Y_val, bounds, val_bounds, Xr, Yr, Xr_val, Yr_val = make_data(config)
    if rank == 1:
        Xr[2 * config["batch_size"]] = 1e200
    net = network(config, 10 + rank)
    comm.Bcast(net._params, root=0)   # what fit will start from
    start = net._params.copy()
    try:
        net.fit(Xr, Yr, epochs=config["epochs"], comm=comm, **fit_arguments(config))
        outcome = "returned"
    except FloatingPointError as exc:
        outcome = f"FloatingPointError: {exc}"
    result = {"outcome": outcome, "restored": bool(np.array_equal(net._params, start)),
              "params_sum": float(net._params.sum())}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


def bad_argument(config, out_dir):
    """Rank 1 passes an X of the wrong width: every rank must raise, none hang."""
    X, Y, X_val, Y_val, bounds, val_bounds, Xr, Yr, Xr_val, Yr_val = make_data(config)
    if rank == 1:
        Xr = Xr[:, :-1]
    net = network(config, 10 + rank)
    try:
        net.fit(Xr, Yr, epochs=1, comm=comm, **fit_arguments(config))
        outcome = "returned"
    except (ValueError, TypeError) as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"outcome": outcome}, f)


def _signal_at_step(net, step_number):
    """SIGINT to this process while it computes its step number ``step_number`` (0-based,
    counted over the fit): the trainer's gradient_sum is wrapped."""
    from fastbp import engine, training

    trainer_class = (engine.CompiledTrainer if net.backend == "cython"
                     else training._PythonTrainer)
    original = trainer_class.gradient_sum
    calls = [0]

    def gradient_sum(self, order, step, buffer, **kwargs):
        if calls[0] == step_number:
            os.kill(os.getpid(), signal.SIGINT)
        calls[0] += 1
        return original(self, order, step, buffer, **kwargs)

    trainer_class.gradient_sum = gradient_sum


def checkpoint_resume(config, out_dir):
    """Interrupted (Ctrl-C on the last rank, or a stop after some epochs) and resumed
    from rank 0's checkpoint on every rank, against one uninterrupted distributed fit."""
    X, Y, X_val, Y_val, bounds, val_bounds, Xr, Yr, Xr_val, Yr_val = make_data(config)
    epochs = config["epochs"]
    args = fit_arguments(config)
    path = os.path.join(out_dir, "run.ckpt")
    # Count the checkpoint writes of this rank (only rank 0 may write).
    from fastbp import persistence

    writes = [0]
    write_npz = persistence.write_npz_atomically

    def counting(path, arrays):
        writes[0] += 1
        return write_npz(path, arrays)

    persistence.write_npz_atomically = counting
    straight = network(config, 10 + rank)
    straight_history = straight.fit(Xr, Yr, epochs=epochs, validation_data=(Xr_val, Yr_val),
                                    comm=comm, **args)
    net = network(config, 10 + rank)
    if config.get("interrupt_at") is not None:
        # A Ctrl-C on the last rank only, during its step number interrupt_at.
        if rank == size - 1:
            _signal_at_step(net, config["interrupt_at"])
        try:
            net.fit(Xr, Yr, epochs=epochs, validation_data=(Xr_val, Yr_val), comm=comm,
                    checkpoint=path, **args)
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
    else:
        net.fit(Xr, Yr, epochs=config["first_epochs"], validation_data=(Xr_val, Yr_val),
                comm=comm, checkpoint=path, **args)
        interrupted = None
    stopped_params = comm.gather(net._params.copy(), root=0)
    written = os.path.exists(path)
    comm.Barrier()
    resumed = fastbp.Network.load(path)
    done = resumed.epochs_trained
    if done < epochs:
        resumed.fit(Xr, Yr, epochs=epochs - done, validation_data=(Xr_val, Yr_val),
                    resume=True, comm=comm, **args)
    result = {"interrupted": interrupted, "written": written, "writes": writes[0],
              "equal": bool(np.array_equal(resumed._params, straight._params)),
              "history_equal": {key: resumed.history[key] == straight_history[key]
                                for key in straight_history if key != "seconds"},
              "epochs_trained": resumed.epochs_trained}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)
    gathered = comm.gather(resumed._params.copy(), root=0)
    if rank == 0:
        np.savez(os.path.join(out_dir, "result.npz"), params=np.array(gathered),
                 stopped=np.array(stopped_params))


def one_process(config, out_dir):
    """A communicator of one process changes nothing; a comm that is not one is refused."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 6)), rng.integers(0, 3, 50)
    kwargs = dict(epochs=2, batch_size=8, optimizer="adam", learning_rate=0.01)
    nets = [fastbp.Network([6, 5, 3], output="softmax", loss="cross_entropy",
                           dtype="float64", seed=1) for _ in range(2)]
    plain = nets[0].fit(X, y, **kwargs)
    distributed = nets[1].fit(X, y, comm=comm, **kwargs)
    try:
        nets[0].fit(X, y, comm="world", **kwargs)
        bad = "returned"
    except TypeError as exc:
        bad = f"TypeError: {exc}"
    result = {"max_difference": float(abs(nets[0]._params - nets[1]._params).max()),
              "loss_difference": float(abs(np.subtract(plain["loss"],
                                                       distributed["loss"])).max()),
              "bad_comm": bad}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


def local_failure(config, out_dir):
    """An exception on rank 1 alone in the middle of a fit (here, in its gradient):
    the others would wait for it forever, so fit aborts the job."""
    X, Y, X_val, Y_val, bounds, val_bounds, Xr, Yr, Xr_val, Yr_val = make_data(config)
    net = network(config, 10 + rank)
    if rank == 1:
        from fastbp import engine, training

        trainer_class = (engine.CompiledTrainer if net.backend == "cython"
                         else training._PythonTrainer)

        def failing(self, *args, **kwargs):
            raise MemoryError("rank 1 ran out of memory (simulated)")

        trainer_class.gradient_sum = failing
    net.fit(Xr, Yr, epochs=2, comm=comm, **fit_arguments(config))


def checkpoint_failure(config, out_dir):
    """Rank 0 cannot write the checkpoint after epoch 1: every rank raises."""
    X, Y, X_val, Y_val, bounds, val_bounds, Xr, Yr, Xr_val, Yr_val = make_data(config)
    net = network(config, 10 + rank)
    if rank == 0:
        from fastbp import persistence

        def failing(path, arrays):
            raise OSError(28, "No space left on device (simulated)")

        persistence.write_npz_atomically = failing
    try:
        net.fit(Xr, Yr, epochs=2, comm=comm, checkpoint=os.path.join(out_dir, "run.ckpt"),
                **fit_arguments(config))
        outcome = "returned"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"outcome": outcome, "epochs_trained": net.epochs_trained}, f)


def disagreement_and_threads(config, out_dir):
    """Rank 1 asks for another learning rate: every rank refuses. Then the threads a fit
    uses by default: the machine's cores shared by its ranks (OMP_NUM_THREADS unset)."""
    X, Y, X_val, Y_val, bounds, val_bounds, Xr, Yr, Xr_val, Yr_val = make_data(config)
    net = network(config, 10 + rank)
    try:
        net.fit(Xr, Yr, epochs=1, comm=comm, learning_rate=0.1 if rank == 1 else 0.05)
        outcome = "returned"
    except ValueError as exc:
        outcome = f"ValueError: {exc}"
    path = os.path.join(out_dir, "run.ckpt")
    net.fit(Xr, Yr, epochs=1, comm=comm, checkpoint=path)
    comm.Barrier()
    threads = fastbp.Network.load(path)._checkpoint_run["settings"]["n_threads"]
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"outcome": outcome, "threads": threads,
                   "cores": fastbp.get_num_threads()}, f)


def interrupt_while_checking(config, out_dir):
    """A Ctrl-C on rank 1 alone while fit checks its arguments (before the ranks share
    their checks): every rank raises KeyboardInterrupt, none waits for rank 1."""
    X, Y, X_val, Y_val, bounds, val_bounds, Xr, Yr, Xr_val, Yr_val = make_data(config)
    net = network(config, 10 + rank)
    if rank == 1:
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        net._check_X = interrupted
    try:
        net.fit(Xr, Yr, epochs=1, comm=comm, **fit_arguments(config))
        outcome = "returned"
    except KeyboardInterrupt as exc:
        outcome = f"KeyboardInterrupt: {exc}"
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"outcome": outcome}, f)


SCENARIOS = {"disagreement_and_threads": disagreement_and_threads,
             "local_failure": local_failure, "checkpoint_failure": checkpoint_failure,
             "one_process": one_process, "equivalence": equivalence, "divergence": divergence,
             "bad_argument": bad_argument, "checkpoint_resume": checkpoint_resume,
             "interrupt_while_checking": interrupt_while_checking}

if __name__ == "__main__":
    scenario, config, out_dir = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    SCENARIOS[scenario](config, out_dir)
