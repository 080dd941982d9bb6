"""The classic tutorial's network.py, run by fastbp.

Chapter 1 of Michael Nielsen's "Neural Networks and Deep Learning" trains its
``network.Network([784, 30, 10])`` with ``net.SGD(training_data, 30, 10, 3.0,
test_data=test_data)``. The same two lines run here on fastbp's compiled engine: the
only change is the import, ``from fastbp.compat import network``.

    python examples/classic_tutorial.py                    # 30 epochs, as in the book
    python examples/classic_tutorial.py --epochs 1 --quick # 10,000 samples, 1 epoch
    python examples/classic_tutorial.py --data digits      # the bundled 8x8 digits

The data are Fashion-MNIST (50,000 training images, the test set's 10,000 for the
per-epoch count; the book uses MNIST, which is easier) or, when it is not installed,
the bundled digits with a 64-30-10 network.
"""

import argparse
import random
import sys
import time

import numpy as np

from fastbp.compat import network, tutorial_data
from fastbp.datasets import load_digits, load_fashion_mnist


def load(name):
    """(sizes, training_data, test_data) in the tutorial's list format."""
    if name in ("auto", "fashion-mnist"):
        try:
            (X, y), (X_test, y_test) = load_fashion_mnist()
            X, y = X[:50000], y[:50000]  # the book trains on 50,000 images
            sizes = [784, 30, 10]
        except FileNotFoundError:
            if name == "fashion-mnist":
                raise
            print("Fashion-MNIST is not installed: using the bundled digits", file=sys.stderr)
            name = "digits"
    if name == "digits":
        (X, y), (X_test, y_test) = load_digits()
        sizes = [64, 30, 10]
    # training_data: (x, y) with x a (784, 1) column and y a one-hot (10, 1) column;
    # test_data: (x, label) with an int label. As the tutorial's mnist_loader gives them.
    return sizes, tutorial_data(X, y, one_hot=True, n_classes=10), tutorial_data(X_test, y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="train on 10,000 samples and count on 2,000 test samples")
    parser.add_argument("--data", choices=("auto", "fashion-mnist", "digits"), default="auto",
                        help="auto: Fashion-MNIST if installed, else the bundled digits")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed np.random (initial weights) and random (shuffling)")
    args = parser.parse_args(argv)
    if args.seed is not None:
        np.random.seed(args.seed)
        random.seed(args.seed)

    sizes, training_data, test_data = load(args.data)
    if args.quick:
        training_data, test_data = training_data[:10000], test_data[:2000]
    print(f"{len(training_data)} training and {len(test_data)} test samples, "
          f"network {sizes}", flush=True)

    # The tutorial's usage, unchanged.
    start = time.perf_counter()
    net = network.Network(sizes)
    net.SGD(training_data, args.epochs, 10, 3.0, test_data=test_data)
    seconds = time.perf_counter() - start

    print(f"{args.epochs} epochs in {seconds:.1f} s; final: {net.evaluate(test_data)} / "
          f"{len(test_data)} test samples right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
