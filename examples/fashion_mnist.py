"""Train an MLP on Fashion-MNIST with fastbp.Network.

    python examples/fashion_mnist.py                  # 784-100-10, 10 epochs
    python examples/fashion_mnist.py --quick          # 10,000 samples, 2 epochs: seconds
    python examples/fashion_mnist.py --hidden 256,128 --epochs 20 --plot curves.png

The last 10,000 training images are held out for validation; the test set is used once,
at the end. Fashion-MNIST is read from $FASTBP_DATA or /usr/share/datasets/fashion-mnist
(apt-get install dataset-fashion-mnist).
"""

import argparse
import sys
import time

import fastbp
from fastbp.datasets import load_fashion_mnist


def widths(text):
    return [int(w) for w in text.split(",") if w.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default 10 (2 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 10,000 training and 2,000 validation samples")
    parser.add_argument("--hidden", type=widths, default=[100],
                        help="hidden layer widths, comma-separated (default 100)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="fastbp threads (default: all cores or OMP_NUM_THREADS)")
    parser.add_argument("--plot", metavar="PATH",
                        help="save the loss and accuracy curves here (needs matplotlib)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 10)
    if args.threads:
        fastbp.set_num_threads(args.threads)

    try:
        (X, y), (X_test, y_test) = load_fashion_mnist()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    X_train, y_train, X_val, y_val = X[:-10000], y[:-10000], X[-10000:], y[-10000:]
    if args.quick:
        X_train, y_train = X_train[:10000], y_train[:10000]
        X_val, y_val = X_val[:2000], y_val[:2000]

    net = fastbp.Network([784, *args.hidden, 10], activation="relu", output="softmax",
                         loss="cross_entropy", seed=args.seed)
    print(f"{net}\n{len(X_train)} training, {len(X_val)} validation, {len(X_test)} test "
          f"samples; {epochs} epochs, batch {args.batch_size}, {args.optimizer} "
          f"lr {args.learning_rate}, {fastbp.get_num_threads()} threads", flush=True)

    start = time.perf_counter()
    for epoch in range(epochs):
        # One epoch per call, continuing the optimiser's state (Adam's moments).
        h = net.fit(X_train, y_train, epochs=1, batch_size=args.batch_size,
                    learning_rate=args.learning_rate, optimizer=args.optimizer,
                    validation_data=(X_val, y_val), resume=epoch > 0)
        if epoch == 0:
            history = {key: [] for key in h}
        for key, values in h.items():
            history[key] += values
        print(f"epoch {epoch + 1}/{epochs}: loss {h['loss'][0]:.4f}, accuracy "
              f"{h['accuracy'][0]:.4f}, val_loss {h['val_loss'][0]:.4f}, val_accuracy "
              f"{h['val_accuracy'][0]:.4f} ({h['seconds'][0]:.2f} s)", flush=True)
    seconds = time.perf_counter() - start

    result = net.evaluate(X_test, y_test)
    print(f"test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f} "
          f"(trained in {seconds:.1f} s)")
    if args.plot:
        from fastbp.plot import plot_history

        plot_history(history, args.plot)
        print(f"plot saved to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
