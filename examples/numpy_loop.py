"""A hand-written NumPy training loop, switched to fastbp's kernels by one import.

    python examples/numpy_loop.py --backend numpy     # from fastbp import reference as bp
    python examples/numpy_loop.py --backend fastbp    # from fastbp import kernels as bp
    python examples/numpy_loop.py --backend fastbp --quick --epochs 1

The loop below is plain NumPy around four backprop kernels, ``bp.dense_forward``,
``bp.activation_backward``, ``bp.backward_delta`` and ``bp.weight_gradient``.
``fastbp.reference`` implements them in NumPy, ``fastbp.kernels`` in compiled code
(Cython, OpenMP, BLAS) with the same signatures and results, so ``--backend`` only
changes which module is imported as ``bp``. It trains a 784-30-10 sigmoid network
with the quadratic cost by mini-batch SGD (the classic tutorial's recipe) on
Fashion-MNIST, or on the bundled 8x8 digits (64-30-10) when Fashion-MNIST is not
installed or with ``--data digits``, and prints the time of each epoch.
"""

import argparse
import sys
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("numpy", "fastbp"), default="fastbp",
                        help="numpy: fastbp.reference; fastbp: fastbp.kernels (default)")
    parser.add_argument("--data", choices=("auto", "fashion-mnist", "digits"), default="auto",
                        help="auto: Fashion-MNIST if installed, else the bundled digits")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="use 10,000 training samples")
    parser.add_argument("--hidden", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=3.0)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load(name, dtype):
    from fastbp.datasets import load_digits, load_fashion_mnist

    if name in ("auto", "fashion-mnist"):
        try:
            return "Fashion-MNIST", load_fashion_mnist(dtype=dtype)
        except FileNotFoundError:
            if name == "fashion-mnist":
                raise
            print("Fashion-MNIST is not installed: using the bundled digits", file=sys.stderr)
    return "digits", load_digits(dtype=dtype)


def main(argv=None):
    args = parse_args(argv)
    # The one line that chooses the implementation.
    if args.backend == "fastbp":
        from fastbp import kernels as bp
    else:
        from fastbp import reference as bp

    from fastbp.datasets import one_hot

    dtype = np.dtype(args.dtype)
    name, ((X, y), (X_test, y_test)) = load(args.data, dtype)
    if args.quick:
        X, y = X[:10000], y[:10000]
    Y = one_hot(y, 10, dtype=dtype)
    n, n_in = X.shape
    rng = np.random.default_rng(args.seed)

    # Parameters: W has shape (out, in), rows of X are samples.
    W1 = rng.normal(0, 1 / np.sqrt(n_in), (args.hidden, n_in)).astype(dtype)
    b1 = np.zeros(args.hidden, dtype)
    W2 = rng.normal(0, 1 / np.sqrt(args.hidden), (10, args.hidden)).astype(dtype)
    b2 = np.zeros(10, dtype)
    params = (W1, b1, W2, b2)
    grads = tuple(np.empty_like(p) for p in params)  # gradient buffers, allocated once

    def train_step(Xb, Yb, params, grads, lr):
        W1, b1, W2, b2 = params
        dW1, db1, dW2, db2 = grads
        A1 = bp.dense_forward(Xb, W1, b1, "sigmoid")
        A2 = bp.dense_forward(A1, W2, b2, "sigmoid")
        delta2 = bp.activation_backward(A2 - Yb, A2, "sigmoid")    # BP1: (a - y) * s'(z)
        delta1 = bp.backward_delta(delta2, W2, A1, "sigmoid")      # BP2
        scale = -lr / len(Xb)                                      # mean gradient, descent
        bp.weight_gradient(delta2, A1, out=dW2, bias_out=db2, scale=scale)   # BP4, BP3
        bp.weight_gradient(delta1, Xb, out=dW1, bias_out=db1, scale=scale)
        for p, g in zip(params, grads):
            p += g                                                 # in place

    def accuracy(Xe, ye, params):
        W1, b1, W2, b2 = params
        A = bp.dense_forward(bp.dense_forward(Xe, W1, b1, "sigmoid"), W2, b2, "sigmoid")
        return float(np.mean(A.argmax(axis=1) == ye))

    print(f"backend {args.backend} ({bp.__name__}); {name}: {n} training samples, "
          f"{n_in}-{args.hidden}-10 sigmoid network, quadratic cost, batch {args.batch_size}, "
          f"eta {args.learning_rate}, {dtype.name}", flush=True)
    times = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(n)
        for first in range(0, n, args.batch_size):
            idx = order[first:first + args.batch_size]
            train_step(X[idx], Y[idx], params, grads, args.learning_rate)
        times.append(time.perf_counter() - start)
        print(f"epoch {epoch}: {times[-1]:.3f} s, test accuracy "
              f"{accuracy(X_test, y_test, params):.4f}", flush=True)
    print(f"{args.backend}: {np.mean(times):.3f} s per epoch on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
