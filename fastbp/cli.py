"""Command line: ``python -m fastbp train`` (and ``fastbp info``, ``fastbp export``).

Trains an MLP on the bundled UCI digits by default, or on Fashion-MNIST / any folder
of MNIST-format IDX files, shows progress, and ends with the test accuracy and time.
``--checkpoint run.ckpt`` writes a checkpoint after every epoch; ``--resume run.ckpt``
continues that run with the checkpoint's network and settings.
"""

import argparse
import sys
import time

import numpy as np

from fastbp import datasets
from fastbp._validation import ACTIVATIONS
from fastbp.losses import LOSSES, OUTPUTS
from fastbp.optimizers import OPTIMIZERS


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()] if text.strip() else []
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths such as 100 or 256,128, got {text!r}"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return sizes


# With --resume these come from the checkpoint; given explicitly they must agree with it.
FROM_CHECKPOINT = ("hidden", "activation", "output", "loss", "dtype", "l2", "optimizer",
                   "learning_rate", "momentum", "batch_size")


def build_parser(given_only=False):
    """The parser; ``given_only=True``: no defaults, so that the parsed namespace holds
    only the options given on the command line."""
    parser = argparse.ArgumentParser(prog="python -m fastbp",
                                     description="fastbp: train MLPs by backpropagation")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train", help="train a network and report test accuracy",
        description="Train an MLP; the defaults train on the bundled UCI digits.")
    train.add_argument("--data", default="digits",
                       help="'digits' (bundled, default), 'fashion-mnist', or a folder of "
                            "MNIST-format IDX files")
    train.add_argument("--hidden", type=_hidden, default=None,
                       help="hidden layer widths, comma-separated (default: 64 for digits, "
                            "100 otherwise); sizes are [n_features, *hidden, n_classes]")
    train.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    train.add_argument("--output", choices=OUTPUTS, default="softmax")
    train.add_argument("--loss", choices=LOSSES, default="cross_entropy")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    train.add_argument("--learning-rate", type=_positive_float, default=None,
                       help="default: 0.001 for adam, 0.1 for sgd")
    train.add_argument("--momentum", type=float, default=0.0)
    train.add_argument("--l2", type=float, default=0.0)
    train.add_argument("--epochs", type=_positive_int, default=None,
                       help="default: 30 for digits, 10 otherwise")
    train.add_argument("--batch-size", type=_positive_int, default=32)
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--backend", choices=("cython", "numpy"), default="cython")
    train.add_argument("--threads", type=_positive_int, default=None,
                       help="kernel threads (default: all cores or OMP_NUM_THREADS)")
    train.add_argument("--save", default=None, help="write the trained model to this .npz file")
    train.add_argument("--plot", default=None, metavar="PATH",
                       help="after training, plot loss and accuracy per epoch to this image "
                            "file (.png, .pdf, .svg; needs matplotlib: pip install fastbp[plot])")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.add_argument("--checkpoint", default=None, metavar="PATH",
                       help="write a checkpoint (network, optimiser state, shuffling "
                            "state, history) to this file after every epoch and at Ctrl-C")
    train.add_argument("--resume", default=None, metavar="PATH",
                       help="continue the run of this checkpoint: the network and the "
                            "training settings are the checkpoint's (options given "
                            "explicitly must agree with it; --seed is ignored); --epochs "
                            "is the run's total (default: the checkpoint's); give the same "
                            "--data; checkpoints keep going to PATH unless --checkpoint")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel training over MPI, launched as 'mpiexec -n N "
                            "fastbp train --distributed ...' (needs pip install "
                            "\"fastbp[mpi]\"): rank r trains on rows r::N; only rank 0 "
                            "prints and saves; threads per rank default to the machine's "
                            "cores divided by its ranks")
    if given_only:
        for action in train._actions:
            if action.option_strings and action.dest != "help":
                action.default = argparse.SUPPRESS
    commands.add_parser("info", help="print how fastbp was built (OpenMP, BLAS, threads)")
    export = commands.add_parser(
        "export", help="convert a saved model (.npz) to ONNX",
        description="Write a model saved by 'train --save' (or Network.save) as an ONNX "
                    "file for ONNX Runtime and other ONNX tools (needs onnx: "
                    'pip install "fastbp[onnx]").')
    export.add_argument("model", help="the .npz model file")
    export.add_argument("onnx_path", metavar="output", help="the .onnx file to write")
    export.add_argument("--opset", type=_positive_int, default=None,
                        help="ONNX opset version (default: fastbp.onnx.DEFAULT_OPSET, 17)")
    return parser


def load_data(name, dtype):
    """(X_train, y_train), (X_test, y_test) for --data."""
    if name == "digits":
        return datasets.load_digits(dtype=dtype)
    if name == "fashion-mnist":
        return datasets.load_fashion_mnist(dtype=dtype)
    return datasets.load_idx(name, dtype=dtype)


def train(args, out=None):
    import fastbp

    out = sys.stdout if out is None else out

    if args.plot:
        # Before training, not after minutes of it.
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise ImportError("--plot needs matplotlib: pip install fastbp[plot] "
                              "(or pip install matplotlib)")
    if args.threads is not None:
        fastbp.set_num_threads(args.threads)
    comm = None
    if getattr(args, "distributed", False):
        comm, out = _distributed(args, out)
    if args.resume:
        return _resume(args, out, comm)
    (X, y), (X_test, y_test) = load_data(args.data, args.dtype)
    n_classes = int(max(y.max(), y_test.max())) + 1
    hidden = args.hidden if args.hidden is not None else [64 if args.data == "digits" else 100]
    epochs = args.epochs or (30 if args.data == "digits" else 10)
    learning_rate = args.learning_rate or (0.001 if args.optimizer == "adam" else 0.1)
    net = fastbp.Network([X.shape[1], *hidden, n_classes], activation=args.activation,
                         output=args.output, loss=args.loss, l2=args.l2, dtype=args.dtype,
                         seed=args.seed, backend=args.backend)
    print(f"data: {args.data}, {X.shape[0]} training and {X_test.shape[0]} test samples, "
          f"{X.shape[1]} features, {n_classes} classes", file=out)
    print(f"network: {net}", file=out)
    print(f"training: {epochs} epochs, batch {args.batch_size}, {args.optimizer} "
          f"lr {learning_rate}, {_workers(comm)}", file=out)
    start = time.perf_counter()
    history = net.fit(*_shard(comm, X, y), epochs=epochs, batch_size=args.batch_size,
                      learning_rate=learning_rate, optimizer=args.optimizer,
                      momentum=args.momentum, validation_data=_shard(comm, X_test, y_test),
                      verbose=not args.quiet, checkpoint=args.checkpoint, comm=comm)
    seconds = time.perf_counter() - start
    return _finish(args, net, history, X_test, y_test, seconds, out)


def _distributed(args, out):
    """--distributed: MPI's world communicator; rank 0 keeps ``out``, the others print
    nothing; threads per rank are the machine's cores divided by its ranks unless
    --threads or OMP_NUM_THREADS say otherwise."""
    import os

    import fastbp
    from fastbp import distributed

    comm = distributed.mpi().COMM_WORLD
    args.comm = comm
    threads = distributed.default_threads(comm)
    if args.threads is None and "OMP_NUM_THREADS" not in os.environ:
        fastbp.set_num_threads(threads)
    if comm.Get_rank() != 0:
        out = open(os.devnull, "w")  # noqa: SIM115 (for the process's lifetime)
        args.save = args.plot = None
    return comm, out


def _workers(comm):
    import fastbp

    threads = f"{fastbp.get_num_threads()} threads"
    return threads if comm is None else f"{comm.Get_size()} processes x {threads}"


def _shard(comm, X, y):
    """Rank r's rows r::N (all of them without comm)."""
    if comm is None:
        return X, y
    rank, size = comm.Get_rank(), comm.Get_size()
    return X[rank::size], y[rank::size]


def _finish(args, net, history, X_test, y_test, seconds, out):
    result = net.evaluate(X_test, y_test)
    print(f"test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f}, "
          f"best epoch {int(np.argmax(history['val_accuracy'])) + 1} "
          f"({max(history['val_accuracy']):.4f}); trained in {seconds:.2f} s", file=out)
    if args.save:
        net.save(args.save)
        print(f"model saved to {args.save}", file=out)
    if args.plot:
        from fastbp.plot import plot_history

        plot_history(history, args.plot)
        print(f"plot saved to {args.plot}", file=out)
    return result


def export(args, out=None):
    """``fastbp export model.npz model.onnx``: load, convert, write."""
    import fastbp
    from fastbp import onnx as fastbp_onnx

    out = sys.stdout if out is None else out
    net = fastbp.Network.load(args.model)
    model = fastbp_onnx.to_onnx(net, args.onnx_path, opset=args.opset)
    print(f"{args.onnx_path}: ONNX opset {model.opset_import[0].version}, input "
          f"{fastbp_onnx.INPUT_NAME!r} ({net.dtype.name}, N x {net.sizes[0]}), output "
          f"{fastbp_onnx.OUTPUT_NAME!r} (N x {net.sizes[-1]}), from {net}", file=out)
    return model


def _given(args):
    """The options given on the command line: args.given when main() parsed them, else
    (train() called with a namespace) those that differ from the defaults."""
    given = getattr(args, "given", None)
    if given is None:
        defaults = vars(build_parser().parse_args(["train"]))
        given = {key for key, value in vars(args).items() if defaults.get(key) != value}
    return given


def _shown(value):
    return ",".join(map(str, value)) if isinstance(value, list) else value


def _resume(args, out, comm=None):
    """Continue the run of the checkpoint args.resume (see --resume); with comm, every
    rank reads the checkpoint and continues its shard."""
    import fastbp
    from fastbp.checkpoints import OPTIMIZER_SETTINGS

    net = fastbp.Network.load(args.resume, backend=args.backend
                              if "backend" in _given(args) else None)
    run = net._checkpoint_run
    if run is None:
        raise ValueError(f"--resume {args.resume!r} is a model file, not a checkpoint "
                         f"(written by --checkpoint)")
    settings = run["settings"]
    recorded = {"hidden": net.sizes[1:-1], "activation": net.activation,
                "output": net.output, "loss": net.loss_name, "dtype": net.dtype.name,
                "l2": net.l2, "optimizer": settings["optimizer"],
                "learning_rate": settings["learning_rate"],
                "momentum": settings.get("momentum", 0.0),
                "batch_size": settings["batch_size"]}
    conflicts = [f"--{key.replace('_', '-')} {_shown(getattr(args, key))} (the "
                 f"checkpoint's: {_shown(recorded[key])})" for key in FROM_CHECKPOINT
                 if key in _given(args) and getattr(args, key) != recorded[key]]
    if conflicts:
        raise ValueError(f"--resume continues the checkpoint's run with its settings; these "
                         f"options differ from them: {', '.join(conflicts)}")
    (X, y), (X_test, y_test) = load_data(args.data, net.dtype.name)
    if X.shape[1] != net.sizes[0] or X.shape[0] != settings["n_samples"]:
        raise ValueError(f"--data {args.data} has {X.shape[0]} samples of {X.shape[1]} "
                         f"features; the checkpoint's run trained on {settings['n_samples']} "
                         f"samples of {net.sizes[0]}: give the --data it was trained on")
    total = args.epochs if "epochs" in _given(args) else settings["run_epochs"]
    if total <= net.epochs_trained:
        raise ValueError(f"the checkpoint has trained {net.epochs_trained} epochs already; "
                         f"give --epochs above {net.epochs_trained} to train further")
    threads = fastbp.get_num_threads() if net.backend == "cython" else None
    if comm is not None:
        threads = None  # the note below compares one process's threads only
    print(f"resuming {args.resume}: {net.epochs_trained} of {total} epochs trained"
          + (", mid-epoch" if run["interrupted"] is not None else ""), file=out)
    print(f"network: {net}", file=out)
    print(f"training: {total} epochs, batch {settings['batch_size']}, "
          f"{settings['optimizer']} lr {settings['learning_rate']}, "
          f"{_workers(comm) if net.backend == 'cython' else '1 threads'}", file=out)
    if threads is not None and settings["n_threads"] not in (None, threads):
        print(f"note: the checkpoint's run used {settings['n_threads']} threads, this one "
              f"{threads}: the result agrees within float rounding, not bit for bit "
              f"(--threads {settings['n_threads']} repeats it exactly)", file=out)
    hyper = {key: settings[key] for key in OPTIMIZER_SETTINGS[settings["optimizer"]]}
    start = time.perf_counter()
    history = net.fit(*_shard(comm, X, y), epochs=total - net.epochs_trained,
                      batch_size=settings["batch_size"], optimizer=settings["optimizer"],
                      shuffle=settings["shuffle"], validation_data=_shard(comm, X_test, y_test),
                      verbose=not args.quiet, resume=True,
                      checkpoint=args.checkpoint or args.resume, comm=comm, **hyper)
    seconds = time.perf_counter() - start
    return _finish(args, net, history, X_test, y_test, seconds, out)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "info":
        import fastbp

        for key, value in fastbp.build_info().items():
            print(f"{key}: {value}")
        return 0
    args.given = set(vars(build_parser(given_only=True).parse_args(argv))) - {"command"}
    try:
        if args.command == "export":
            export(args)
        else:
            train(args)
    except (FileNotFoundError, NotADirectoryError, ValueError, TypeError, ImportError) as exc:
        print(f"fastbp: error: {exc}", file=sys.stderr)
        _abort_alone(args, exc, 2)
        return 2
    except KeyboardInterrupt as exc:
        checkpoint = args.checkpoint or args.resume
        print("fastbp: interrupted" + (f"; continue with --resume {checkpoint}"
                                      if checkpoint else ""), file=sys.stderr)
        _abort_alone(args, exc, 130)
        return 130
    except BaseException as exc:
        _abort_alone(args, exc, 1)
        raise
    return 0


def _abort_alone(args, exc, code):
    """--distributed: an error on this rank alone (its data missing, say) while the
    others go on to a collective call would leave them waiting: abort the MPI job.
    Errors every rank raised together (fastbp.distributed.collective) just return."""
    from fastbp.distributed import is_collective

    comm = getattr(args, "comm", None)
    if comm is None or comm.Get_size() == 1 or is_collective(exc):
        return
    sys.stderr.flush()
    sys.stdout.flush()
    comm.Abort(code)
