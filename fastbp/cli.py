"""Command line: ``python -m fastbp train`` (and ``fastbp info``, ``fastbp export``).

Trains an MLP on the bundled UCI digits by default, or on Fashion-MNIST / any folder
of MNIST-format IDX files, shows progress, and ends with the test accuracy and time.
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


def build_parser():
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
          f"lr {learning_rate}, {fastbp.get_num_threads()} threads", file=out)
    start = time.perf_counter()
    history = net.fit(X, y, epochs=epochs, batch_size=args.batch_size,
                      learning_rate=learning_rate, optimizer=args.optimizer,
                      momentum=args.momentum, validation_data=(X_test, y_test),
                      verbose=not args.quiet)
    seconds = time.perf_counter() - start
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


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "info":
        import fastbp

        for key, value in fastbp.build_info().items():
            print(f"{key}: {value}")
        return 0
    try:
        if args.command == "export":
            export(args)
        else:
            train(args)
    except (FileNotFoundError, NotADirectoryError, ValueError, TypeError, ImportError) as exc:
        print(f"fastbp: error: {exc}", file=sys.stderr)
        return 2
    return 0
