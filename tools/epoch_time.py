"""One training epoch's time on a few MLP shapes, for comparing ISAs or builds.

    FASTBP_ISA=blas PYTHONPATH=$PWD python tools/epoch_time.py 1
    PYTHONPATH=$PWD python tools/epoch_time.py 1        # the default micro-kernels

The argument is the thread count. 20,000 random float32 samples, plain SGD, shuffle
off; one thread is timed in CPU time (the machine may be shared), more in wall time.
Best of 3.
"""
import sys
import time

import numpy as np

import fastbp

CASES = [  # sizes, hidden, output, loss, batch size
    ([784, 30, 10], "sigmoid", "sigmoid", "mse", 10),
    ([784, 100, 10], "relu", "softmax", "cross_entropy", 32),
    ([784, 128, 10], "relu", "softmax", "cross_entropy", 128),
]


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    clock = time.process_time if threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    X = rng.random((20000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 20000)
    for sizes, hidden, output, loss, batch_size in CASES:
        best = float("inf")
        for _ in range(3):
            net = fastbp.Network(sizes, activation=hidden, output=output, loss=loss,
                                 dtype="float32", seed=0)
            t0 = clock()
            net.fit(X, y, epochs=1, batch_size=batch_size, learning_rate=0.05,
                    shuffle=False, n_threads=threads, verbose=False)
            best = min(best, clock() - t0)
        print(f"{fastbp.build_info()['isa']:>7} threads={threads} "
              f"{'-'.join(map(str, sizes))} batch {batch_size}: {best * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
