"""Checkpoints: a model file plus everything a fit needs to continue bit-identically.

``fit(..., checkpoint=path)`` calls :func:`write` after every epoch and at a Ctrl-C stop;
:meth:`fastbp.Network.load` reads a checkpoint as it reads a model file and hands the
entries below to :func:`restore`; ``fit(..., resume=True)`` then continues the
checkpoint's fit where it stopped (:func:`check_resume` refuses other settings).

The format (version ``VERSION``) is an .npz archive, written atomically like a model
file (temporary file, fsync, rename), no pickle anywhere:

- every entry of a model file (fastbp/persistence.py), so ``load`` restores the network;
- ``checkpoint_version``: an int, the version of what follows;
- ``checkpoint_state``: JSON text (a 0-d unicode array) holding ``epochs_trained``, the
  optimiser (name, hyper-parameters, Adam's step count ``t``), the fit's settings
  (``optimizer``, ``learning_rate``, the optimiser's other hyper-parameters,
  ``batch_size``, ``shuffle``, ``n_samples``, the history's keys, ``run_epochs``,
  ``backend`` (``load``'s default), ``weighted`` (sample weights given; absent in older
  checkpoints: false) and, for information, ``n_threads``), the history so far, the
  shuffling generator's ``bit_generator.state`` (``rng``), and ``interrupted``: null
  after a completed epoch, or where a Ctrl-C stopped the epoch (batches done, the
  epoch's partial loss sum and correct count (weighted sums for a weighted fit), its
  seconds so far and the generator's state at the epoch's start);
  a distributed fit (``comm=``, written by rank 0) also records ``fit.shards`` (every
  rank's row count; ``n_samples`` is their sum, the batches are steps) and ``ranks``:
  every rank's generator state (``rngs``) and, interrupted, each one's state at the
  epoch's start (``epoch_start_rngs``), so that every rank resumes its own shuffle;
- the optimiser's state vectors, in the layout of the flat parameter vector:
  ``optimizer_velocity`` (SGD with momentum), or ``optimizer_m`` and ``optimizer_v``
  (Adam);
- ``epoch_start_params`` (Ctrl-C checkpoints only): the parameters at the start of the
  interrupted epoch, which a divergence later in that epoch restores.

Floats go through JSON exactly (Python writes the shortest repr that reads back to the
same double); NumPy arrays inside a generator's state (MT19937's key) are written as
``{"ndarray": [...], "dtype": "uint32"}``.
"""

import json
import math
import numbers

import numpy as np

from fastbp._validation import check_output_path
from fastbp.optimizers import SGD, Adam

VERSION = 1
VERSION_KEY = "checkpoint_version"
STATE_KEY = "checkpoint_state"
OPTIMIZER_ARRAYS = {"velocity": "optimizer_velocity", "m": "optimizer_m", "v": "optimizer_v"}
EPOCH_START_PARAMS = "epoch_start_params"
# The archive's entries besides a model file's.
ENTRIES = (VERSION_KEY, STATE_KEY, EPOCH_START_PARAMS, *OPTIMIZER_ARRAYS.values())

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
# The fit settings a resume must repeat, by optimiser.
OPTIMIZER_SETTINGS = {"sgd": ("learning_rate", "momentum", "nesterov"),
                      "adam": ("learning_rate", "beta1", "beta2", "eps")}
RUN_SETTINGS = ("batch_size", "shuffle", "n_samples", "history", "weighted")


def check_path(checkpoint):
    """``checkpoint`` as a str path whose folder exists (checked before training starts)."""
    return check_output_path("checkpoint", checkpoint, "run.ckpt")


def _plain(value):
    """A fit argument as JSON would hold it, unchecked (make_optimizer checks it later)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def fit_settings(optimizer, learning_rate, momentum, nesterov, beta1, beta2, eps,
                 batch_size, shuffle, n_samples, history_keys, weighted=False):
    """The settings of a fit that a resume from its checkpoint must repeat.

    ``weighted``: the fit was given sample weights (its partial sums are weighted).
    """
    given = {"learning_rate": learning_rate, "momentum": momentum, "nesterov": nesterov,
             "beta1": beta1, "beta2": beta2, "eps": eps}
    settings = {"optimizer": optimizer}
    for key in OPTIMIZER_SETTINGS.get(optimizer, ()):
        settings[key] = _plain(given[key])
    settings.update(batch_size=batch_size, shuffle=bool(shuffle), n_samples=int(n_samples),
                    history=list(history_keys), weighted=bool(weighted))
    return settings


def check_resume(run, settings):
    """Raise ValueError naming every setting in which a resumed fit differs from the
    checkpoint's (``run``, from :func:`restore`)."""
    recorded = run["settings"]
    keys = ["optimizer"]
    if settings["optimizer"] == recorded["optimizer"]:
        keys += OPTIMIZER_SETTINGS[recorded["optimizer"]]
    keys += RUN_SETTINGS
    differences = []
    for key in keys:
        if settings[key] == recorded[key]:
            continue
        if key == "n_samples" and "shards" in settings:
            continue  # reported as shards below
        if key == "n_samples":
            differences.append(f"X has {settings[key]} rows, the checkpoint's fit had "
                               f"{recorded[key]}")
        elif key == "weighted":
            given = "is given" if settings[key] else "is not given"
            had = "had" if recorded[key] else "had no"
            differences.append(f"sample_weight {given}, the checkpoint's fit {had} "
                               f"sample weights")
        elif key == "history":
            differences.append(
                f"this fit records {settings[key]}, the checkpoint's fit recorded "
                f"{recorded[key]} (validation_data given or not, labels or targets)")
        else:
            differences.append(f"{key}={settings[key]!r} (the checkpoint's: "
                               f"{recorded[key]!r})")
    # Distributed fits (comm=) record their shards' sizes; a single process has none.
    shards, recorded_shards = settings.get("shards"), recorded.get("shards")
    if shards != recorded_shards:
        differences.append(f"this fit {_ran_on(shards, settings['n_samples'])}, the "
                           f"checkpoint's {_ran_on(recorded_shards, recorded['n_samples'])}")
    if differences:
        raise ValueError(f"resume=True continues the fit of the checkpoint {run['path']!r} "
                         f"with its settings and data; this fit differs: "
                         f"{'; '.join(differences)}")


def _ran_on(shards, n_samples):
    if shards is None:
        return f"ran on one process with {n_samples} rows"
    return f"ran on {len(shards)} processes with shards of {shards} rows"


def write(path, net, settings, history, interrupted=None, write=True, ranks=None):
    """Write a checkpoint of ``net``'s fit to ``path``, atomically; the one place
    checkpoints are written.

    Parameters
    ----------
    path : str
    net : Network
        The network being fitted: parameters, ``_optimizer``, ``_rng``,
        ``epochs_trained``.
    settings : dict
        From :func:`fit_settings`, plus ``run_epochs`` and ``n_threads``.
    history : dict of lists
        The fit's history so far (completed epochs).
    interrupted : dict, optional
        Where a Ctrl-C stopped the current epoch: ``batch`` (batches done),
        ``loss_sum``, ``correct``, ``seconds``, ``epoch_start_rng`` (the generator's
        state before the epoch's shuffle) and ``epoch_start_params``.
    write : bool
        False on the processes that must not write (the ranks other than 0 of a
        distributed fit): nothing is done.
    ranks : dict, optional
        A distributed fit's every rank's shuffling state: ``rngs`` (a generator
        state per rank) and ``epoch_start_rngs`` (per rank, with ``interrupted``).

    Returns
    -------
    str or None
        ``path``, or None when ``write`` is False.
    """
    if not write:
        return None
    from fastbp import persistence

    arrays = persistence.model_arrays(net)
    opt = net._optimizer
    optimizer = {"name": opt.name, "learning_rate": opt.learning_rate}
    if opt.name == "sgd":
        optimizer.update(momentum=opt.momentum, nesterov=opt.nesterov)
        if opt.velocity is not None:
            arrays[OPTIMIZER_ARRAYS["velocity"]] = opt.velocity
    else:
        optimizer.update(beta1=opt.beta1, beta2=opt.beta2, eps=opt.eps, t=int(opt.t))
        arrays[OPTIMIZER_ARRAYS["m"]] = opt.m
        arrays[OPTIMIZER_ARRAYS["v"]] = opt.v
    state = {"epochs_trained": int(net.epochs_trained), "optimizer": optimizer,
             "fit": settings, "history": history,
             "rng": _encode(net._rng.bit_generator.state), "interrupted": None}
    if interrupted is not None:
        state["interrupted"] = {
            "batch": int(interrupted["batch"]), "loss_sum": float(interrupted["loss_sum"]),
            # A count, or with sample weights a sum of weights.
            "correct": (float(interrupted["correct"]) if settings.get("weighted")
                        else int(interrupted["correct"])),
            "seconds": float(interrupted["seconds"]),
            "epoch_start_rng": _encode(interrupted["epoch_start_rng"])}
        arrays[EPOCH_START_PARAMS] = interrupted["epoch_start_params"]
    if ranks is not None:
        state["ranks"] = {
            "rngs": [_encode(rng) for rng in ranks["rngs"]],
            "epoch_start_rngs": (None if ranks["epoch_start_rngs"] is None else
                                 [_encode(rng) for rng in ranks["epoch_start_rngs"]])}
    arrays[VERSION_KEY] = np.array(VERSION)
    arrays[STATE_KEY] = np.array(json.dumps(state))
    return persistence.write_npz_atomically(path, arrays)


def _encode(value):
    """A bit generator's state as JSON-able values (ndarrays become tagged lists)."""
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": value.dtype.name}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"ndarray", "dtype"}:
            if value["dtype"] not in ("uint32", "uint64", "int64"):
                raise ValueError(f"unexpected array dtype {value['dtype']!r}")
            return np.array(value["ndarray"], dtype=value["dtype"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _generator(encoded, where):
    """A numpy Generator in the state ``encoded`` (from :func:`_encode`)."""
    if not isinstance(encoded, dict) or encoded.get("bit_generator") not in BIT_GENERATORS:
        raise ValueError(f"{where} must be the state of one of the bit generators "
                         f"{', '.join(BIT_GENERATORS)}")
    try:
        bit_generator = getattr(np.random, encoded["bit_generator"])()
        bit_generator.state = _decode(encoded)
    except (TypeError, KeyError, ValueError, OverflowError) as exc:
        raise ValueError(f"{where} is not a valid generator state: {exc!r}") from exc
    return np.random.Generator(bit_generator)


def _state(archive, path):
    from fastbp.persistence import scalar

    text = scalar(archive, STATE_KEY, "U", path)
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path!r}: the checkpoint's state is not valid JSON: {exc}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path!r}: the checkpoint's state must be a JSON object, got "
                         f"{type(state).__name__}")
    return state


def recorded_backend(archive, path):
    """The backend of the fit that wrote the checkpoint: what ``load`` uses by default."""
    settings = _state(archive, path).get("fit")
    backend = settings.get("backend") if isinstance(settings, dict) else None
    if backend not in ("cython", "numpy"):
        raise ValueError(f"{path!r}: checkpoint field fit.backend must be 'cython' or "
                         f"'numpy', got {backend!r}")
    return backend


def check_version(archive, path):
    """Refuse a checkpoint of another format version before reading anything else."""
    from fastbp.persistence import scalar

    version = scalar(archive, VERSION_KEY, "iu", path)
    if version != VERSION:
        raise ValueError(f"{path!r} is a checkpoint of format version {version}; this "
                         f"fastbp reads version {VERSION}")


class _Reader:
    """Typed access to the checkpoint's JSON state, every error a ValueError naming the field."""

    def __init__(self, path):
        self.path = path

    def fail(self, where, expected, got):
        raise ValueError(f"{self.path!r}: checkpoint field {where} must be {expected}, "
                         f"got {got!r}")

    def dict(self, parent, key, where):
        value = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(value, dict):
            self.fail(f"{where}.{key}", "an object", value)
        return value

    def int(self, parent, key, where, low=0, high=None):
        value = parent.get(key)
        if (isinstance(value, bool) or not isinstance(value, int) or value < low
                or (high is not None and value > high)):
            bounds = f">= {low}" + (f" and <= {high}" if high is not None else "")
            self.fail(f"{where}.{key}", f"an integer {bounds}", value)
        return value

    def float(self, parent, key, where, finite=True):
        value = parent.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                finite and not math.isfinite(value)):
            self.fail(f"{where}.{key}", "a finite number" if finite else "a number", value)
        return float(value)

    def bool(self, parent, key, where):
        value = parent.get(key)
        if not isinstance(value, bool):
            self.fail(f"{where}.{key}", "true or false", value)
        return value


def restore(net, archive, path):
    """Restore the training state of the checkpoint ``archive`` into ``net`` (just built
    from the archive's model entries): optimiser, generator, ``epochs_trained``,
    ``history`` and what ``fit(resume=True)`` needs (``net._checkpoint_run``).
    Anything malformed raises ValueError."""
    state = _state(archive, path)
    read = _Reader(path)
    unknown = set(state) - {"epochs_trained", "optimizer", "fit", "history", "rng",
                            "interrupted", "ranks"}
    if unknown:
        raise ValueError(f"{path!r}: unexpected checkpoint fields {sorted(unknown)}")
    epochs_trained = read.int(state, "epochs_trained", "state")

    # The fit's settings.
    settings = read.dict(state, "fit", "state")
    name = settings.get("optimizer")
    if name not in OPTIMIZER_SETTINGS:
        read.fail("fit.optimizer", f"one of {list(OPTIMIZER_SETTINGS)}", name)
    read.float(settings, "learning_rate", "fit")
    if name == "sgd":
        read.float(settings, "momentum", "fit")
        read.bool(settings, "nesterov", "fit")
    else:
        for key in ("beta1", "beta2", "eps"):
            read.float(settings, key, "fit")
    batch_size = settings.get("batch_size")
    if batch_size is not None:
        batch_size = read.int(settings, "batch_size", "fit", low=1)
    shuffle = read.bool(settings, "shuffle", "fit")
    n_samples = read.int(settings, "n_samples", "fit", low=1)
    read.int(settings, "run_epochs", "fit")
    # Checkpoints written before sample weights existed lack the key: unweighted fits.
    settings.setdefault("weighted", False)
    weighted = read.bool(settings, "weighted", "fit")
    shards = settings.get("shards")
    if shards is not None and (
            not isinstance(shards, list) or not shards
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shards)
            or sum(shards) != n_samples):
        read.fail("fit.shards", f"null or a list of positive row counts summing to "
                  f"n_samples={n_samples}", shards)
    keys = settings.get("history")
    if (not isinstance(keys, list) or not set(keys) <= set(HISTORY_KEYS)
            or "loss" not in keys or "seconds" not in keys or len(set(keys)) != len(keys)):
        read.fail("fit.history", f"a list of keys among {list(HISTORY_KEYS)} with loss "
                  f"and seconds", keys)
    del shuffle

    # The history so far: the listed keys, one finite number per completed epoch.
    history = read.dict(state, "history", "state")
    if sorted(history) != sorted(keys):
        read.fail("history", f"an object with the keys {keys}", sorted(history))
    lengths = set()
    for key in keys:
        values = history[key]
        if not isinstance(values, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            read.fail(f"history.{key}", "a list of numbers", values)
        lengths.add(len(values))
    if len(lengths) != 1 or lengths.pop() > epochs_trained:
        read.fail("history", f"lists of one length, at most epochs_trained={epochs_trained}",
                  {key: len(history[key]) for key in keys})

    # The optimiser: same hyper-parameters as the fit's, state arrays of the parameters'
    # layout, dtype and finite.
    description = read.dict(state, "optimizer", "state")
    if description.get("name") != name:
        read.fail("optimizer.name", f"the fit's optimizer {name!r}", description.get("name"))
    for key in OPTIMIZER_SETTINGS[name]:
        if description.get(key) != settings[key]:
            read.fail(f"optimizer.{key}", f"the fit's {key}={settings[key]!r}",
                      description.get(key))
    try:
        if name == "sgd":
            optimizer = SGD(net._params, settings["learning_rate"], settings["momentum"],
                            settings["nesterov"])
            wanted = {"velocity": optimizer.velocity} if optimizer.velocity is not None else {}
        else:
            optimizer = Adam(net._params, settings["learning_rate"], settings["beta1"],
                             settings["beta2"], settings["eps"])
            optimizer.t = read.int(description, "t", "optimizer")
            wanted = {"m": optimizer.m, "v": optimizer.v}
    except ValueError as exc:
        raise ValueError(f"{path!r}: invalid optimiser in the checkpoint: {exc}") from exc
    present = {key for key, entry in OPTIMIZER_ARRAYS.items() if entry in archive.files}
    if present != set(wanted):
        raise ValueError(f"{path!r}: a {name!r} optimiser with these hyper-parameters keeps "
                         f"the state {sorted(wanted) or 'nothing'}, the checkpoint holds "
                         f"{sorted(present) or 'nothing'}")
    for key, target in wanted.items():
        _copy_vector(archive, OPTIMIZER_ARRAYS[key], target, path)
    if name == "adam" and (optimizer.v < 0).any():
        raise ValueError(f"{path!r}: Adam's second moment optimizer_v has negative entries")

    rng = _generator(state.get("rng"), f"{path!r}: checkpoint field state.rng")

    # Where a Ctrl-C stopped the epoch, if it did.
    interrupted = state.get("interrupted")
    if interrupted is not None:
        if not isinstance(interrupted, dict):
            read.fail("state.interrupted", "null or an object", interrupted)
        batch = n_samples if batch_size is None else min(batch_size, n_samples)
        n_batches = -(-n_samples // batch)
        interrupted = {
            "batch": read.int(interrupted, "batch", "interrupted", low=1, high=n_batches),
            "loss_sum": read.float(interrupted, "loss_sum", "interrupted"),
            "correct": (read.float(interrupted, "correct", "interrupted") if weighted
                        else read.int(interrupted, "correct", "interrupted", high=n_samples)),
            "seconds": read.float(interrupted, "seconds", "interrupted"),
            "epoch_start_rng": _generator(
                interrupted.get("epoch_start_rng"),
                f"{path!r}: checkpoint field interrupted.epoch_start_rng",
            ).bit_generator.state,
            "epoch_start_params": np.empty_like(net._params),
        }
        _copy_vector(archive, EPOCH_START_PARAMS, interrupted["epoch_start_params"], path)
    elif EPOCH_START_PARAMS in archive.files:
        raise ValueError(f"{path!r}: {EPOCH_START_PARAMS} belongs to an interrupted "
                         f"epoch, but the checkpoint's epoch is complete")

    # A distributed fit's: every rank's shuffling state (rank 0's is also state.rng).
    ranks = state.get("ranks")
    if (ranks is None) != (shards is None):
        read.fail("state.ranks", "present exactly when fit.shards is", ranks)
    if ranks is not None:
        if not isinstance(ranks, dict) or set(ranks) != {"rngs", "epoch_start_rngs"}:
            read.fail("state.ranks", "an object with rngs and epoch_start_rngs", ranks)
        lists = {"rngs": ranks["rngs"], "epoch_start_rngs": ranks["epoch_start_rngs"]}
        if interrupted is None:
            if lists.pop("epoch_start_rngs") is not None:
                read.fail("ranks.epoch_start_rngs", "null after a complete epoch",
                          "a list")
        for key, states in lists.items():
            if not isinstance(states, list) or len(states) != len(shards):
                read.fail(f"ranks.{key}", f"a list of {len(shards)} generator states",
                          type(states).__name__)
            lists[key] = [_generator(st, f"{path!r}: checkpoint field ranks.{key}[{r}]")
                          .bit_generator.state for r, st in enumerate(states)]
        ranks = {"rngs": lists["rngs"], "epoch_start_rngs": lists.get("epoch_start_rngs")}

    net._optimizer = optimizer
    net._rng = rng
    net.epochs_trained = epochs_trained
    net.history = {key: list(history[key]) for key in keys}
    net._checkpoint_run = {"path": path, "settings": settings, "interrupted": interrupted,
                           "ranks": ranks}


def _copy_vector(archive, key, target, path):
    value = archive[key]
    if value.shape != target.shape or value.dtype != target.dtype:
        raise ValueError(f"{path!r}: {key} must have shape {target.shape} and dtype "
                         f"{target.dtype} (the network's parameters), got {value.shape} "
                         f"{value.dtype}")
    if not np.isfinite(value).all():
        raise ValueError(f"{path!r}: {key} contains NaN or inf")
    target[...] = value
