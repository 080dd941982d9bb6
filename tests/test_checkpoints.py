"""Checkpoints (fastbp/checkpoints.py): writing, reading, validation and exact resumes.

The central property: a fit that is stopped (SIGKILL at any point, Ctrl-C) and resumed
from its checkpoint ends bit-identical to one that never stopped, for every optimiser
and both dtypes, shuffled. The kill tests run the training in a child process that
pauses at a chosen point (inside an epoch, or inside the checkpoint write: mid-way
through the archive, before fsync, before and after the rename) and is killed there
with SIGKILL; others kill it at seeded random times.
"""

import json
import os
import signal
import subprocess
import sys
import struct
import time
import zipfile

import numpy as np
import pytest

import fastbp
import fastbp.training
from fastbp import Network, checkpoints
from fastbp.datasets import load_digits

# A small problem: 300 digits, batch 16 (19 batches, the last partial), 4 batches per
# chunk so that an epoch has 5 chunks and Ctrl-C / kills can land inside it.
N_SAMPLES, BATCH, CHUNK, EPOCHS = 300, 16, 4, 6
OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", learning_rate=0.1),
    "momentum": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9),
    "nesterov": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", learning_rate=0.005),
}
DTYPES = ["float32", "float64"]


def data(dtype):
    (X, y), (X_test, y_test) = load_digits(dtype=dtype)
    return X[:N_SAMPLES], y[:N_SAMPLES], X_test[:100], y_test[:100]


def new_network(dtype, backend="cython", seed=5):
    return Network([64, 16, 10], activation="relu", output="softmax", loss="cross_entropy",
                   l2=1e-4, dtype=dtype, seed=seed, backend=backend)


def fit(net, dtype, opt, epochs, **kwargs):
    X, y, X_test, y_test = data(dtype)
    return net.fit(X, y, epochs=epochs, batch_size=BATCH, shuffle=True,
                   validation_data=(X_test, y_test), n_threads=1, **OPTIMIZERS[opt], **kwargs)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of CHUNK batches, as in the child processes (chunking changes no parameter,
    but the epoch's loss is a sum of per-chunk sums: the same grouping keeps it exact)."""
    monkeypatch.setattr(fastbp.training, "batches_per_chunk", lambda sizes, batch: CHUNK)


def optimizer_state(net):
    opt = net._optimizer
    if opt.name == "adam":
        return {"m": opt.m, "v": opt.v, "t": opt.t}
    return {"velocity": opt.velocity}


def assert_same_training(resumed, reference, history=None, reference_history=None):
    """Bit-identical parameters, optimiser state, generator state and history."""
    np.testing.assert_array_equal(resumed._params, reference._params, strict=True)
    assert resumed._params.tobytes() == reference._params.tobytes()
    state, expected = optimizer_state(resumed), optimizer_state(reference)
    for key in expected:
        if isinstance(expected[key], np.ndarray):
            assert state[key].tobytes() == expected[key].tobytes(), key
        else:
            assert state[key] == expected[key], key
    # (encoded as in the checkpoint: MT19937's state holds an array)
    assert (checkpoints._encode(resumed._rng.bit_generator.state)
            == checkpoints._encode(reference._rng.bit_generator.state))
    assert resumed.epochs_trained == reference.epochs_trained
    history = resumed.history if history is None else history
    reference_history = reference.history if reference_history is None else reference_history
    assert history.keys() == reference_history.keys()
    for key in history:
        if key != "seconds":
            assert history[key] == reference_history[key], key
    assert len(history["seconds"]) == len(reference_history["seconds"])


@pytest.fixture(scope="module")
def references():
    """Uninterrupted fits of EPOCHS epochs, by (optimiser, dtype), with CHUNK-batch chunks."""
    cache = {}

    def reference(opt, dtype):
        if (opt, dtype) not in cache:
            saved = fastbp.training.batches_per_chunk
            fastbp.training.batches_per_chunk = lambda sizes, batch: CHUNK
            try:
                net = new_network(dtype)
                fit(net, dtype, opt, EPOCHS)
            finally:
                fastbp.training.batches_per_chunk = saved
            cache[opt, dtype] = net
        return cache[opt, dtype]

    return reference


# ----- resuming in one process ----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_resume_after_an_epoch_is_bit_identical(tmp_path, small_chunks, references, opt,
                                                dtype):
    path = tmp_path / "run.ckpt"
    first = new_network(dtype)
    fit(first, dtype, opt, 2, checkpoint=path)
    assert first.epochs_trained == 2
    net = Network.load(path)
    assert net.epochs_trained == 2
    assert net.history["loss"] == first.history["loss"]
    np.testing.assert_array_equal(net._params, first._params)
    history = fit(net, dtype, opt, EPOCHS - net.epochs_trained, resume=True, checkpoint=path)
    # The resumed fit's history continues the checkpoint's: it is the whole fit's.
    assert history is net.history and len(history["loss"]) == EPOCHS
    assert_same_training(net, references(opt, dtype))
    # The checkpoint written by the resumed fit holds the finished run.
    assert_same_training(Network.load(path), references(opt, dtype))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_ctrl_c_checkpoint_resumes_mid_epoch_bit_identically(tmp_path, small_chunks,
                                                             references, opt, dtype,
                                                             backend, monkeypatch):
    """Ctrl-C (a real SIGINT to this process) in epoch 3 writes a checkpoint of the
    point reached; resuming from it finishes that epoch and the fit exactly."""
    if backend == "numpy":
        reference = new_network(dtype, backend="numpy")
        fit(reference, dtype, opt, 4)
    else:
        reference = references(opt, dtype)
    trainer = (fastbp.training.CompiledTrainer if backend == "cython"
               else fastbp.training._PythonTrainer)
    run = trainer.run
    calls = []

    def interrupted_run(self, order, first, last):
        calls.append((first, last))
        if len(calls) == 12:  # epoch 3 (5 chunks per epoch), its second chunk
            os.kill(os.getpid(), signal.SIGINT)
        return run(self, order, first, last)

    monkeypatch.setattr(trainer, "run", interrupted_run)
    path = tmp_path / "run.ckpt"
    net = new_network(dtype, backend=backend)
    with pytest.raises(KeyboardInterrupt):
        fit(net, dtype, opt, EPOCHS, checkpoint=path)
    monkeypatch.setattr(trainer, "run", run)
    assert net.epochs_trained == 2
    loaded = Network.load(path)
    assert loaded.backend == backend
    assert loaded.epochs_trained == 2 and len(loaded.history["loss"]) == 2
    stopped = loaded._checkpoint_run["interrupted"]
    assert stopped["batch"] == 8  # two chunks of 4 batches of epoch 3 were trained
    np.testing.assert_array_equal(loaded._params, net._params)
    epochs = (4 if backend == "numpy" else EPOCHS) - loaded.epochs_trained
    fit(loaded, dtype, opt, epochs, resume=True)
    assert_same_training(loaded, reference)


def test_interrupted_twice_and_resumed_twice(tmp_path, small_chunks, references,
                                             monkeypatch):
    """A resumed fit is itself checkpointed and resumable, also mid-epoch."""
    opt, dtype = "adam", "float32"
    run = fastbp.training.CompiledTrainer.run
    path = tmp_path / "run.ckpt"
    net = new_network(dtype)
    for stop_at in (3, 9):
        calls = []

        def interrupted_run(self, order, first, last):
            calls.append(first)
            if len(calls) == stop_at:
                os.kill(os.getpid(), signal.SIGINT)
            return run(self, order, first, last)

        monkeypatch.setattr(fastbp.training.CompiledTrainer, "run", interrupted_run)
        with pytest.raises(KeyboardInterrupt):
            fit(net, dtype, opt, EPOCHS - net.epochs_trained, checkpoint=path,
                resume=net._checkpoint_run is not None)
        net = Network.load(path)
    monkeypatch.setattr(fastbp.training.CompiledTrainer, "run", run)
    fit(net, dtype, opt, EPOCHS - net.epochs_trained, resume=True)
    assert_same_training(net, references(opt, dtype))


def test_mt19937_generator_resumes_exactly(tmp_path):
    def new():
        return Network([64, 8, 10], output="softmax", loss="cross_entropy",
                       seed=np.random.Generator(np.random.MT19937(3)))

    X, y, _, _ = data("float32")
    reference = new()
    reference.fit(X, y, epochs=3, batch_size=BATCH, momentum=0.5, n_threads=1)
    first = new()
    first.fit(X, y, epochs=1, batch_size=BATCH, momentum=0.5, n_threads=1,
              checkpoint=tmp_path / "c")
    net = Network.load(tmp_path / "c")
    assert type(net._rng.bit_generator).__name__ == "MT19937"
    net.fit(X, y, epochs=2, batch_size=BATCH, momentum=0.5, n_threads=1, resume=True)
    assert_same_training(net, reference)


# ----- killed with SIGKILL ----------------------------------------------------------------

CHILD = r"""
import io, json, os, sys, time
import numpy as np
import fastbp, fastbp.training
from fastbp.datasets import load_digits

config = json.loads(sys.argv[1])
fastbp.training.batches_per_chunk = lambda sizes, batch: config["chunk"]
pause, count = config["pause"], config["count"]
calls = {"n": 0}


def stop_here():
    # Tell the parent where we are, then wait to be killed.
    with open(config["marker"], "w") as f:
        f.write(pause)
    time.sleep(300)
    sys.exit("not killed")


def reached():
    calls["n"] += 1
    return calls["n"] == count


if config["chunk_sleep"]:  # slow training down, for kills at random times
    fast_run = fastbp.training.CompiledTrainer.run

    def slow_run(self, *args):
        time.sleep(config["chunk_sleep"])
        return fast_run(self, *args)

    fastbp.training.CompiledTrainer.run = slow_run
if pause == "chunk":  # after `count` chunks: inside an epoch, parameters half-trained
    run = fastbp.training.CompiledTrainer.run

    def paused_run(self, *args):
        result = run(self, *args)
        if reached():
            stop_here()
        return result

    fastbp.training.CompiledTrainer.run = paused_run
elif pause == "savez":  # write `count`: half of the archive is in the temporary file
    savez = np.savez

    def half_savez(f, **arrays):
        if not reached():
            return savez(f, **arrays)
        buffer = io.BytesIO()
        savez(buffer, **arrays)
        f.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
        f.flush()
        stop_here()

    np.savez = half_savez
elif pause in ("fsync", "replace", "after_replace"):
    original = getattr(os, "fsync" if pause == "fsync" else "replace")

    def paused(*args):
        if pause == "after_replace":
            original(*args)
            if reached():
                stop_here()
            return None
        if reached():
            stop_here()
        return original(*args)

    setattr(os, "fsync" if pause == "fsync" else "replace", paused)

(X, y), (X_test, y_test) = load_digits(dtype=config["dtype"])
n = config["n_samples"]
net = fastbp.Network([64, 16, 10], activation="relu", output="softmax",
                     loss="cross_entropy", l2=1e-4, dtype=config["dtype"], seed=5)
with open(config["marker"] + ".started", "w"):
    pass
net.fit(X[:n], y[:n], epochs=config["epochs"], batch_size=config["batch"], shuffle=True,
        validation_data=(X_test[:100], y_test[:100]), n_threads=1,
        checkpoint=config["checkpoint"], **config["optimizer"])
with open(config["marker"] + ".done", "w"):
    pass
"""


def wait_for(path, process, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the child ended ({process.returncode}) before {path}: "
                                 f"{err.decode()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            process.communicate()
            raise AssertionError(f"the child did not reach {path} in {timeout} s")
        time.sleep(0.005)


def start_child(tmp_path, opt, dtype, pause="none", count=0, epochs=EPOCHS, chunk_sleep=0.0):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    config = {"pause": pause, "count": count, "dtype": dtype, "epochs": epochs,
              "optimizer": OPTIMIZERS[opt], "chunk": CHUNK, "batch": BATCH,
              "n_samples": N_SAMPLES, "chunk_sleep": chunk_sleep, "checkpoint": str(tmp_path / "run.ckpt"),
              "marker": str(tmp_path / "marker")}
    # PYTHONPATH is inherited: the child imports this fastbp.
    process = subprocess.Popen([sys.executable, str(script), json.dumps(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return process, tmp_path / "run.ckpt", str(tmp_path / "marker")


def kill(process):
    """SIGKILL the child if it still runs, and reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def resume_and_check(path, opt, dtype, reference, expected_epochs=None):
    """The checkpoint must load; resuming from it must end bit-identical."""
    net = Network.load(path)
    if expected_epochs is not None:
        assert net.epochs_trained == expected_epochs
    if net.epochs_trained < EPOCHS:
        fit(net, dtype, opt, EPOCHS - net.epochs_trained, resume=True)
    assert_same_training(net, reference)


# (pause point, which call to pause at, checkpoint epochs expected on disk)
PAUSES = {
    # In the middle of epoch 3 (after 2 of its 5 chunks): the epoch-2 checkpoint is there.
    "inside an epoch": ("chunk", 12, 2),
    # Inside the 3rd write, half the archive written to the temporary file.
    "half-written archive": ("savez", 3, 2),
    # The 3rd archive complete in the temporary file, not yet flushed to disk.
    "before fsync": ("fsync", 3, 2),
    # The 3rd archive on disk, not yet renamed over the checkpoint.
    "before rename": ("replace", 3, 2),
    # Just after the 3rd rename.
    "after rename": ("after_replace", 3, 3),
}
# Every optimiser and dtype is killed inside an epoch; the write's pause points rotate
# through them.
KILL_CASES = ([("inside an epoch", opt, dtype) for opt in OPTIMIZERS for dtype in DTYPES]
              + [(point, opt, dtype) for point, opt, dtype in zip(
                  list(PAUSES)[1:], ["adam", "momentum", "nesterov", "sgd"],
                  ["float64", "float32", "float64", "float32"])])


@pytest.mark.parametrize("point,opt,dtype", KILL_CASES)
def test_sigkill_at_any_point_leaves_a_checkpoint_that_resumes_exactly(
        tmp_path, small_chunks, references, point, opt, dtype):
    pause, count, epochs_on_disk = PAUSES[point]
    process, path, marker = start_child(tmp_path, opt, dtype, pause, count)
    try:
        wait_for(marker, process, timeout=120)
    finally:
        kill(process)
    assert process.returncode == -signal.SIGKILL
    resume_and_check(path, opt, dtype, references(opt, dtype), epochs_on_disk)
    # The target is never half-written: only a temporary file (which SIGKILL leaves)
    # holds the interrupted write.
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".npz.tmp")]
    assert len(leftovers) == (1 if pause in ("savez", "fsync", "replace") else 0)


def test_sigkill_during_the_first_write_leaves_no_checkpoint(tmp_path):
    process, path, marker = start_child(tmp_path, "sgd", "float32", "savez", 1)
    try:
        wait_for(marker, process, timeout=120)
    finally:
        kill(process)
    assert not path.exists()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_random_times(tmp_path, small_chunks, references, seed):
    """Killed at a seeded random time after the first checkpoint: whatever was being
    done then (training, writing), the checkpoint loads and resumes exactly."""
    opt, dtype = list(OPTIMIZERS)[seed], DTYPES[seed % 2]
    # The child sleeps 20 ms per chunk: its 6 epochs of 5 chunks last > 600 ms, and the
    # kill lands within 120 ms of the first checkpoint (end of epoch 1).
    delay = np.random.default_rng(seed).uniform(0, 0.12)
    process, path, marker = start_child(tmp_path, opt, dtype, chunk_sleep=0.02)
    try:
        wait_for(marker + ".started", process, timeout=120)
        deadline = time.monotonic() + 120
        while not path.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        finished = process.poll() is not None
    finally:
        kill(process)
    assert not finished, "the child finished before it was killed"
    resume_and_check(path, opt, dtype, references(opt, dtype))


# ----- what a checkpoint holds --------------------------------------------------------------


def test_checkpoint_contents_and_model_compatibility(tmp_path):
    X, y, X_test, y_test = data("float64")
    net = new_network("float64")
    net.fit(X, y, epochs=2, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
            n_threads=1, checkpoint=tmp_path / "run.ckpt")
    with np.load(tmp_path / "run.ckpt", allow_pickle=False) as archive:
        files = set(archive.files)
        state = json.loads(archive["checkpoint_state"].item())
    assert {"W0", "b0", "W1", "b1", "sizes", "checkpoint_version", "optimizer_m",
            "optimizer_v"} <= files
    assert "optimizer_velocity" not in files and "epoch_start_params" not in files
    assert state["epochs_trained"] == 2 and state["interrupted"] is None
    assert state["optimizer"]["name"] == "adam"
    assert state["optimizer"]["t"] == 2 * -(-N_SAMPLES // BATCH)
    assert state["fit"]["batch_size"] == BATCH and state["fit"]["shuffle"] is True
    assert state["fit"]["n_samples"] == N_SAMPLES and state["fit"]["run_epochs"] == 2
    assert state["fit"]["n_threads"] == 1 and state["fit"]["backend"] == "cython"
    assert state["rng"]["bit_generator"] == "PCG64"
    assert state["history"]["loss"] == net.history["loss"]
    loaded = Network.load(tmp_path / "run.ckpt")
    np.testing.assert_array_equal(loaded.predict_proba(X_test), net.predict_proba(X_test))
    # A model saved from the loaded checkpoint is a plain model file.
    model = Network.load(loaded.save(tmp_path / "model.npz"))
    assert model.epochs_trained == 0 and model._optimizer is None
    np.testing.assert_array_equal(model._params, net._params)


def test_epochs_trained_counts_every_completed_epoch():
    X, y, _, _ = data("float64")
    net = new_network("float64")
    assert net.epochs_trained == 0
    net.fit(X, y, epochs=2, n_threads=1)
    net.fit(X, y, epochs=3, n_threads=1, resume=True)
    assert net.epochs_trained == 5
    regression = Network([64, 8, 1], activation="identity", output="identity", seed=0)
    regression.fit(X, y.astype(float), epochs=1, learning_rate=1e-4, n_threads=1)
    with pytest.raises(FloatingPointError):
        regression.fit(X, y.astype(float), epochs=3, learning_rate=1e6, n_threads=1)
    # Only the epochs completed before the divergence count.
    assert regression.epochs_trained == 1 + len(regression.history["loss"])


def test_fit_without_resume_starts_afresh_from_a_checkpoint(tmp_path):
    X, y, _, _ = data("float64")
    net = new_network("float64")
    net.fit(X, y, epochs=2, momentum=0.9, n_threads=1, checkpoint=tmp_path / "c")
    loaded = Network.load(tmp_path / "c")
    # Another optimiser is fine without resume: a new fit from these parameters.
    history = loaded.fit(X, y, epochs=1, optimizer="adam", n_threads=1)
    assert len(history["loss"]) == 1 and loaded.epochs_trained == 3
    assert loaded._checkpoint_run is None


def test_write_false_writes_nothing(tmp_path):
    X, y, _, _ = data("float32")
    net = new_network("float32")
    net.fit(X, y, epochs=1, n_threads=1)
    settings = checkpoints.fit_settings("sgd", 0.1, 0.0, False, 0.9, 0.999, 1e-8, 32,
                                        True, N_SAMPLES, ["loss", "seconds"])
    assert checkpoints.write(tmp_path / "c", net, settings, net.history, write=False) is None
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("checkpoint,error", [
    (3, TypeError), ("/nonexistent-folder/run.ckpt", ValueError), (".", ValueError)])
def test_bad_checkpoint_paths_are_refused_before_training(checkpoint, error):
    X, y, _, _ = data("float32")
    net = new_network("float32")
    before = net._params.copy()
    with pytest.raises(error, match="checkpoint"):
        net.fit(X, y, checkpoint=checkpoint)
    np.testing.assert_array_equal(net._params, before)
    assert net.epochs_trained == 0


# ----- resumes that differ from the checkpoint ------------------------------------------------

DIFFERENT = {
    "optimizer": (dict(optimizer="adam"), "optimizer='adam'"),
    "learning_rate": (dict(learning_rate=0.01), "learning_rate=0.01"),
    "momentum": (dict(momentum=0.5), "momentum=0.5"),
    "nesterov": (dict(nesterov=False), "nesterov=False"),
    "batch_size": (dict(batch_size=8), "batch_size=8"),
    "shuffle": (dict(shuffle=False), "shuffle=False"),
    "data": (dict(rows=200), "X has 200 rows"),
    "no validation_data": (dict(validation_data=None), "validation_data"),
    "two at once": (dict(batch_size=8, learning_rate=0.01), "learning_rate=0.01.*batch_size=8"),
}


@pytest.mark.parametrize("change,message", DIFFERENT.values(), ids=DIFFERENT.keys())
def test_resume_with_other_settings_is_refused(tmp_path, change, message):
    X, y, X_test, y_test = data("float64")
    settings = dict(batch_size=BATCH, learning_rate=0.05, momentum=0.9, nesterov=True,
                    validation_data=(X_test, y_test), n_threads=1)
    new_network("float64").fit(X, y, epochs=1, checkpoint=tmp_path / "c", **settings)
    net = Network.load(tmp_path / "c")
    before = net._params.copy()
    change = dict(change)
    rows = change.pop("rows", N_SAMPLES)
    with pytest.raises(ValueError, match=message):
        net.fit(X[:rows], y[:rows], epochs=1, resume=True, **{**settings, **change})
    np.testing.assert_array_equal(net._params, before)
    # Nothing was consumed: the right settings still resume.
    net.fit(X, y, epochs=1, resume=True, **settings)
    assert net.epochs_trained == 2


# ----- sample weights ------------------------------------------------------------------------


def weights(dtype):
    w = np.random.default_rng(3).uniform(0, 2, N_SAMPLES)
    w[::7] = 0
    return w


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("opt", ["momentum", "adam"])
def test_weighted_fit_resumes_mid_epoch_bit_identically(tmp_path, small_chunks, opt, backend,
                                                        monkeypatch):
    """With sample weights the partial sums of a Ctrl-C checkpoint are weighted sums; the
    resumed fit ends bit-identical to the uninterrupted one."""
    dtype = "float64"
    w = weights(dtype)
    reference = new_network(dtype, backend=backend)
    fit(reference, dtype, opt, 3, sample_weight=w)
    trainer = (fastbp.training.CompiledTrainer if backend == "cython"
               else fastbp.training._PythonTrainer)
    run = trainer.run
    calls = []

    def interrupted_run(self, order, first, last):
        calls.append((first, last))
        if len(calls) == 7:  # epoch 2, its second chunk
            os.kill(os.getpid(), signal.SIGINT)
        return run(self, order, first, last)

    monkeypatch.setattr(trainer, "run", interrupted_run)
    path = tmp_path / "run.ckpt"
    net = new_network(dtype, backend=backend)
    with pytest.raises(KeyboardInterrupt):
        fit(net, dtype, opt, 3, checkpoint=path, sample_weight=w)
    monkeypatch.setattr(trainer, "run", run)
    loaded = Network.load(path)
    stopped = loaded._checkpoint_run["interrupted"]
    assert stopped["batch"] == 8 and isinstance(stopped["correct"], float)
    with pytest.raises(ValueError, match="sample_weight is not given, the checkpoint's fit "
                                         "had sample weights"):
        fit(loaded, dtype, opt, 2, resume=True)
    fit(loaded, dtype, opt, 2, resume=True, sample_weight=w)
    assert_same_training(loaded, reference)
    # The weights are used: an unweighted run ends elsewhere.
    plain = new_network(dtype, backend=backend)
    fit(plain, dtype, opt, 3)
    assert not np.array_equal(plain._params, reference._params)


def test_unweighted_checkpoint_refuses_a_weighted_resume(tmp_path):
    new_network("float64").fit(*data("float64")[:2], epochs=1, checkpoint=tmp_path / "c")
    net = Network.load(tmp_path / "c")
    assert net._checkpoint_run["settings"]["weighted"] is False
    with pytest.raises(ValueError, match="sample_weight is given, the checkpoint's fit had "
                                         "no sample weights"):
        net.fit(*data("float64")[:2], epochs=1, resume=True, sample_weight=weights("float64"))


# ----- damaged and hand-edited checkpoints ----------------------------------------------------


def test_checkpoints_written_before_sample_weights_still_load(tmp_path, checkpoint_arrays):
    """fit.weighted is absent in older checkpoints: their fits were unweighted."""
    path = write_archive(tmp_path, _del_state("fit.weighted")(checkpoint_arrays()))
    net = Network.load(path)
    assert net._checkpoint_run["settings"]["weighted"] is False
    X, y, _, _ = data("float64")
    net.fit(X, y, epochs=1, batch_size=BATCH, n_threads=1, resume=True, **OPTIMIZERS["adam"])


@pytest.fixture
def checkpoint_arrays(tmp_path):
    """The entries of a Ctrl-C checkpoint of an Adam fit (the richest kind)."""
    def make(opt="adam", interrupted=True):
        X, y, _, _ = data("float64")
        net = new_network("float64")
        run = fastbp.training.CompiledTrainer.run
        calls = []

        def interrupted_run(self, *args):
            calls.append(1)
            if interrupted and len(calls) == 1:
                os.kill(os.getpid(), signal.SIGINT)
            return run(self, *args)

        fastbp.training.CompiledTrainer.run = interrupted_run
        saved_chunk = fastbp.training.batches_per_chunk
        fastbp.training.batches_per_chunk = lambda sizes, batch: CHUNK
        try:
            net.fit(X, y, epochs=1, batch_size=BATCH, n_threads=1,
                    checkpoint=tmp_path / "good.ckpt", **OPTIMIZERS[opt])
        except KeyboardInterrupt:
            pass
        finally:
            fastbp.training.CompiledTrainer.run = run
            fastbp.training.batches_per_chunk = saved_chunk
        with np.load(tmp_path / "good.ckpt") as archive:
            return {key: archive[key] for key in archive.files}

    return make


def write_archive(tmp_path, arrays, name="bad.ckpt"):
    path = tmp_path / name
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def edit_state(edit):
    def change(arrays):
        state = json.loads(arrays["checkpoint_state"].item())
        edit(state)
        return {**arrays, "checkpoint_state": np.array(json.dumps(state))}
    return change


def set_entry(key, value):
    return lambda a: {**a, key: value(a) if callable(value) else value}


def drop(key):
    return lambda a: {k: v for k, v in a.items() if k != key}


def _set_state(path, value):
    def edit(state):
        *parents, last = path.split(".")
        for key in parents:
            state = state[key]
        state[last] = value
    return edit_state(edit)


def _del_state(path):
    def edit(state):
        *parents, last = path.split(".")
        for key in parents:
            state = state[key]
        del state[last]
    return edit_state(edit)


MALFORMED = {
    "checkpoint_version 2": set_entry("checkpoint_version", np.array(2)),
    "checkpoint_version as text": set_entry("checkpoint_version", np.array("1")),
    "state not JSON": set_entry("checkpoint_state", np.array("{not json")),
    "state a list": set_entry("checkpoint_state", np.array("[1, 2]")),
    "state as bytes": set_entry("checkpoint_state", np.array(b"{}")),
    "missing state": drop("checkpoint_state"),
    "unknown field": _set_state("extra", 1),
    "epochs_trained negative": _set_state("epochs_trained", -1),
    "epochs_trained a float": _set_state("epochs_trained", 1.5),
    "unknown optimizer": _set_state("fit.optimizer", "rmsprop"),
    "optimizer name differs from the fit's": _set_state("optimizer.name", "sgd"),
    "beta1 differs from the fit's": _set_state("optimizer.beta1", 0.5),
    "beta1 out of range": lambda a: _set_state("optimizer.beta1", 1.5)(
        _set_state("fit.beta1", 1.5)(a)),
    "learning_rate text": _set_state("fit.learning_rate", "0.1"),
    "negative t": _set_state("optimizer.t", -1),
    "batch_size zero": _set_state("fit.batch_size", 0),
    "shuffle as 1": _set_state("fit.shuffle", 1),
    "n_samples missing": _del_state("fit.n_samples"),
    "history keys differ": _set_state("fit.history", ["loss"]),
    "history lengths differ": _set_state("history.loss", [1.0, 2.0]),
    "history with text": _set_state("history.seconds", ["1"]),
    "rng of an unknown generator": _set_state("rng.bit_generator", "Xorshift"),
    "rng state broken": _set_state("rng.state", {"state": "x"}),
    "rng missing": _del_state("rng"),
    "interrupted batch 0": _set_state("interrupted.batch", 0),
    "interrupted batch past the epoch": _set_state("interrupted.batch", 20),
    "interrupted loss NaN": _set_state("interrupted.loss_sum", float("nan")),
    "interrupted correct > n": _set_state("interrupted.correct", N_SAMPLES + 1),
    "interrupted not an object": _set_state("interrupted", [1]),
    "weighted as 1": _set_state("fit.weighted", 1),
    "interrupted correct a fraction, unweighted": _set_state("interrupted.correct", 2.5),
    "epoch_start_params missing": drop("epoch_start_params"),
    "epoch_start_params without an interrupted epoch": _set_state("interrupted", None),
    "optimizer_m missing": drop("optimizer_m"),
    "optimizer_m of another network": set_entry("optimizer_m", lambda a: np.zeros(
        a["optimizer_m"].size + 1)),
    "optimizer_v float32": set_entry("optimizer_v", lambda a: a["optimizer_v"].astype(
        np.float32)),
    "optimizer_v negative": set_entry("optimizer_v", lambda a: -1 - a["optimizer_v"]),
    "optimizer_m NaN": set_entry("optimizer_m", lambda a: np.full_like(a["optimizer_m"],
                                                                       np.nan)),
    "velocity in an Adam checkpoint": set_entry("optimizer_velocity",
                                                lambda a: a["optimizer_m"]),
    "object array (pickle)": set_entry("optimizer_m", lambda a: a["optimizer_m"].astype(
        object)),
    "W0 of another shape": set_entry("W0", lambda a: np.zeros((16, 65))),
    "extra junk": set_entry("junk", np.array(1.0)),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_load_rejects_malformed_checkpoints(tmp_path, checkpoint_arrays, change):
    arrays = checkpoint_arrays()
    Network.load(write_archive(tmp_path, arrays, "unchanged.ckpt"))  # the copy loads
    with pytest.raises(ValueError):
        Network.load(write_archive(tmp_path, change(arrays)))


def test_load_rejects_sgd_state_that_does_not_match_momentum(tmp_path, checkpoint_arrays):
    arrays = checkpoint_arrays("momentum", interrupted=False)
    Network.load(write_archive(tmp_path, arrays, "unchanged.ckpt"))
    no_velocity = {k: v for k, v in arrays.items() if k != "optimizer_velocity"}
    with pytest.raises(ValueError, match="velocity"):
        Network.load(write_archive(tmp_path, no_velocity))
    plain = checkpoint_arrays("sgd", interrupted=False)
    with pytest.raises(ValueError, match="velocity"):
        Network.load(write_archive(tmp_path, {**plain,
                                              "optimizer_velocity": arrays["optimizer_velocity"]}))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_load_rejects_truncated_checkpoints(tmp_path, checkpoint_arrays, fraction):
    good = write_archive(tmp_path, checkpoint_arrays(), "good2.ckpt")
    data_bytes = good.read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(data_bytes[:int(len(data_bytes) * fraction)])
    with pytest.raises(ValueError):
        Network.load(bad)


@pytest.mark.parametrize("member", ["W0", "b1", "checkpoint_state", "optimizer_m",
                                    "optimizer_v", "epoch_start_params"])
def test_load_rejects_corrupted_checkpoints(tmp_path, checkpoint_arrays, member):
    """A flipped byte in the data of any entry (its CRC no longer matches)."""
    good = write_archive(tmp_path, checkpoint_arrays(), "good2.ckpt")
    data_bytes = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo(member + ".npy")
    # The entry's data follow its 30-byte local header, name and extra field.
    name_length, extra_length = struct.unpack(
        "<HH", data_bytes[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data_bytes[start + info.compress_size - 2] ^= 0xFF
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data_bytes))
    with pytest.raises(ValueError):
        Network.load(bad)


def test_ctrl_c_in_an_epochs_last_chunk(tmp_path, small_chunks, references, monkeypatch):
    """Stopped after the epoch's last batch but before its end (history, validation,
    epoch count): the resume only finishes the epoch's bookkeeping, then goes on."""
    opt, dtype = "nesterov", "float64"
    run = fastbp.training.CompiledTrainer.run
    calls = []

    def interrupted_run(self, order, first, last):
        calls.append(first)
        if len(calls) == 5:  # the last of epoch 1's 5 chunks
            os.kill(os.getpid(), signal.SIGINT)
        return run(self, order, first, last)

    monkeypatch.setattr(fastbp.training.CompiledTrainer, "run", interrupted_run)
    with pytest.raises(KeyboardInterrupt):
        fit(new_network(dtype), dtype, opt, EPOCHS, checkpoint=tmp_path / "c")
    monkeypatch.setattr(fastbp.training.CompiledTrainer, "run", run)
    net = Network.load(tmp_path / "c")
    assert net.epochs_trained == 0
    assert net._checkpoint_run["interrupted"]["batch"] == -(-N_SAMPLES // BATCH)
    fit(net, dtype, opt, EPOCHS, resume=True)
    assert_same_training(net, references(opt, dtype))


def test_a_loaded_checkpoint_survives_pickling(tmp_path, small_chunks, references):
    import pickle

    opt, dtype = "adam", "float32"
    fit(new_network(dtype), dtype, opt, 3, checkpoint=tmp_path / "c")
    net = pickle.loads(pickle.dumps(Network.load(tmp_path / "c")))
    fit(net, dtype, opt, EPOCHS - 3, resume=True)
    assert_same_training(net, references(opt, dtype))
    # A network pickled before checkpoints existed has neither attribute.
    state = new_network(dtype).__getstate__()
    del state["epochs_trained"], state["_checkpoint_run"]
    old = Network.__new__(Network)
    old.__setstate__(state)
    assert old.epochs_trained == 0 and old._checkpoint_run is None


# ----- distributed checkpoints (fit(comm=...), written by rank 0) -------------------------
# tests/test_distributed.py writes and resumes real ones under mpiexec; here, the format.

def _as_distributed(state):
    """A checkpoint of a fit of 2 ranks: shard sizes and both ranks' shuffling states."""
    state["fit"]["shards"] = [N_SAMPLES - 10, 10]
    start = state["interrupted"]["epoch_start_rng"] if state["interrupted"] else None
    state["ranks"] = {"rngs": [state["rng"], state["rng"]],
                      "epoch_start_rngs": None if start is None else [start, start]}


DISTRIBUTED_MALFORMED = {
    "shards that do not sum to n_samples": _set_state("fit.shards", [N_SAMPLES, 10]),
    "a shard of 0 rows": _set_state("fit.shards", [N_SAMPLES, 0]),
    "shards not a list": _set_state("fit.shards", N_SAMPLES),
    "ranks missing": _del_state("ranks"),
    "one rng too few": _set_state("ranks.rngs", []),
    "a broken rank rng": _set_state("ranks.rngs", [{"bit_generator": "PCG64"}, None]),
    "epoch_start_rngs missing in an interrupted epoch": _set_state("ranks.epoch_start_rngs",
                                                                   None),
    "ranks with an unknown field": _set_state("ranks.extra", 1),
}


@pytest.mark.parametrize("change", DISTRIBUTED_MALFORMED.values(),
                         ids=DISTRIBUTED_MALFORMED.keys())
def test_load_rejects_malformed_distributed_checkpoints(tmp_path, checkpoint_arrays, change):
    arrays = edit_state(_as_distributed)(checkpoint_arrays())
    net = Network.load(write_archive(tmp_path, arrays, "distributed.ckpt"))
    assert net._checkpoint_run["settings"]["shards"] == [N_SAMPLES - 10, 10]
    assert len(net._checkpoint_run["ranks"]["rngs"]) == 2
    with pytest.raises(ValueError, match="checkpoint field (fit.shards|state.ranks|ranks)"):
        Network.load(write_archive(tmp_path, change(arrays)))


def test_ranks_without_shards_are_refused(tmp_path, checkpoint_arrays):
    arrays = edit_state(_as_distributed)(checkpoint_arrays())
    with pytest.raises(ValueError, match="state.ranks must be present exactly when"):
        Network.load(write_archive(tmp_path, _del_state("fit.shards")(arrays)))


def test_a_distributed_checkpoint_does_not_resume_on_one_process(tmp_path, checkpoint_arrays):
    arrays = edit_state(_as_distributed)(checkpoint_arrays(interrupted=False))
    net = Network.load(write_archive(tmp_path, arrays, "distributed.ckpt"))
    with pytest.raises(ValueError, match=r"this fit ran on one process with \d+ rows, the "
                                         r"checkpoint's ran on 2 processes with shards of"):
        fit(net, "float64", "adam", 1, resume=True)
    fit(net, "float64", "adam", 1)   # a new fit from its weights is fine
