"""Kernel-level GFLOP/s of the three dense-layer products, per shape and thread count.

    PYTHONPATH=$PWD python tools/kernel_gflops.py [--isa auto|avx512|avx2|generic|blas]
        [--dtype float32|float64] [--threads 1,2] [--shapes 10x784x30,...] [--repeat 7]

A shape is batch x n_in x n_out. The products are the public kernels on that shape:
forward = dense_forward (relu, bias), bp2 = backward_delta (relu), wg = weight_gradient
(with accumulate, as the engine's fused SGD update). Each figure is the best of
``--repeat`` timings of a loop lasting ~20 ms, so that a noisy shared machine disturbs it
least; one thread is timed in CPU time (what the scheduler gave fastbp), more threads in
wall time. To compare with another build, run the same command with PYTHONPATH pointing at
it (``--isa`` is ignored by builds without micro-kernels).
"""

import argparse
import time

import numpy as np

import fastbp
from fastbp import kernels

DEFAULT_SHAPES = "10x784x30,32x784x100,128x784x128,256x784x1024,256x1024x1024"


def _best_seconds(fn, repeat, clock):
    fn()
    n = 1
    while True:  # calls per timing: enough for ~20 ms
        t0 = clock()
        for _ in range(n):
            fn()
        dt = clock() - t0
        if dt > 0.02:
            break
        n *= 2
    best = dt / n
    for _ in range(repeat - 1):
        t0 = clock()
        for _ in range(n):
            fn()
        best = min(best, (clock() - t0) / n)
    return best


def measure(shape, dtype, threads, repeat):
    m, n_in, n_out = shape
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, n_in)).astype(dtype)
    W = (rng.standard_normal((n_out, n_in)) * 0.05).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    D = rng.standard_normal((m, n_out)).astype(dtype)
    Z = np.empty((m, n_out), dtype)
    B = np.empty((m, n_in), dtype)
    G = W.copy()
    fastbp.set_num_threads(threads)
    flops = 2.0 * m * n_in * n_out
    products = {
        "forward": lambda: kernels.dense_forward(A, W, b, "relu", out=Z),
        "bp2": lambda: kernels.backward_delta(D, W, A, "relu", out=B),
        "wg": lambda: kernels.weight_gradient(D, A, out=G, scale=-1e-9, accumulate=True),
    }
    # One thread: the process's CPU time, which leaves out the time the scheduler gave
    # to other processes (the machine is shared); more threads: wall time.
    clock = time.process_time if threads == 1 else time.perf_counter
    return {name: flops / _best_seconds(fn, repeat, clock) / 1e9
            for name, fn in products.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--isa", default=None)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    try:
        from fastbp import _isa
    except ImportError:
        _isa = None
    if _isa is not None and args.isa:
        _isa.set_isa(args.isa)
    isa = _isa.get_isa() if _isa is not None else "blas (no micro-kernels in this build)"
    print(f"# fastbp from {fastbp.__file__}; isa {isa}; {args.dtype}; GFLOP/s, best of "
          f"{args.repeat}")
    print(f"{'shape':>16} {'threads':>7} {'forward':>8} {'bp2':>8} {'wg':>8}")
    for text in args.shapes.split(","):
        shape = tuple(int(x) for x in text.split("x"))
        for threads in (int(t) for t in args.threads.split(",")):
            g = measure(shape, np.dtype(args.dtype), threads, args.repeat)
            print(f"{text:>16} {threads:>7} {g['forward']:8.1f} {g['bp2']:8.1f} {g['wg']:8.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
