"""Distributed training (fit(comm=...)): throughput, allreduce cost and a scaling model.

A script, not a pytest suite (it launches mpiexec itself)::

    python benchmarks/distributed.py            # everything below, ~2-4 minutes
    python benchmarks/distributed.py --quick    # fewer repetitions

1. Throughput on the 784-1024-1024-10 network (relu/softmax, float32, batch 128 per
   rank, synthetic data): 2 ranks x 1 thread (``mpiexec -n 2``, fit(comm=...)) against
   1 process x 2 threads (plain fit), samples per second, alternated, medians.
2. The allreduce of one flat float32 buffer (``Allreduce(IN_PLACE)``, 2 ranks, this
   machine's shared memory): time for sizes 1 KB - 16 MB, fitted as alpha + beta bytes.
3. The compute time of one step (gradient + update, 1 thread) of the benchmark
   networks, and what these predict for P machines linked by 10 and 100 Gbit/s
   Ethernet (ring allreduce: 2 (P-1) alpha + 2 (P-1)/P bytes / bandwidth).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(HERE))
BIG = [784, 1024, 1024, 10]
BATCH = 128
# (name, sizes, batch per rank): the networks of benchmarks/test_training_bench.py.
NETWORKS = [
    ("784-30-10 b10", [784, 30, 10], 10),
    ("784-100-10 b32", [784, 100, 10], 32),
    ("784-128-10 b128", [784, 128, 10], 128),
    ("784-1024-1024-10 b128", BIG, 128),
    ("784-1024-1024-10 b256", BIG, 256),
]
# Assumed inter-node links: (name, bytes per second, alpha in seconds).
LINKS = [("10 GbE", 10e9 / 8, 30e-6), ("100 Gbit/s", 100e9 / 8, 5e-6)]
NODES = [2, 4, 8, 16, 32, 64]


def _network(sizes, threads=None):
    import fastbp

    return fastbp.Network(sizes, activation="relu", output="softmax",
                          loss="cross_entropy", seed=0)


def _data(sizes, n, seed):
    rng = np.random.default_rng(seed)
    return rng.random((n, sizes[0]), dtype=np.float32), rng.integers(0, sizes[-1], n)


def worker_throughput(args):
    """Samples/s of fit on BIG with batch BATCH: with comm when launched by mpiexec -n >1."""
    comm = None
    size = 1
    if args.ranks > 1:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        size = comm.Get_size()
    rank = 0 if comm is None else comm.Get_rank()
    if args.overlap:
        from fastbp import distributed

        distributed.OVERLAP_FIRST_LAYER = True
    X, y = _data(BIG, BATCH * args.steps, seed=rank)
    net = _network(BIG)
    net.fit(X[:BATCH * 2], y[:BATCH * 2], batch_size=BATCH, epochs=1,
            n_threads=args.threads, comm=comm, learning_rate=0.01)   # warm up
    if comm is not None:
        comm.Barrier()
    start = time.perf_counter()
    net.fit(X, y, batch_size=BATCH, epochs=1, n_threads=args.threads, comm=comm,
            learning_rate=0.01)
    seconds = time.perf_counter() - start
    if comm is not None:
        seconds = comm.allreduce(seconds, op=MPI.MAX)
    if rank == 0:
        print(json.dumps({"samples_per_s": size * len(X) / seconds, "seconds": seconds}))


def worker_allreduce(args):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    results = []
    for n_bytes in [2 ** k for k in range(10, 25)]:
        buf = np.ones(n_bytes // 4, np.float32)
        reps = max(5, min(200, (1 << 26) // n_bytes))
        times = []
        for _ in range(3):
            comm.Barrier()
            start = time.perf_counter()
            for _ in range(reps):
                comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append((time.perf_counter() - start) / reps)
        results.append((n_bytes, min(times)))
    if comm.Get_rank() == 0:
        print(json.dumps(results))


def worker_compute(args):
    """Seconds per step of gradient_sum + update on 1 thread (a fit's own steps)."""
    from fastbp import training

    out = []
    for name, sizes, batch in NETWORKS:
        steps = max(4, int(2e9 // (6 * batch * sum(o * i for i, o in zip(sizes, sizes[1:])))))
        X, y = _data(sizes, batch * steps, seed=0)
        net = _network(sizes)
        plan = training.prepare(net, X, y, 1, batch, 0.01, "sgd", 0.0, False, 0.9, 0.999,
                                1e-8, False, None, False, 1, False, True, None)
        trainer = training.make_trainer(net, plan)
        n_params = net._params.size
        buffer = np.zeros(n_params + 3, np.float32)
        best = float("inf")
        with trainer:
            for _ in range(3):
                start = time.perf_counter()
                for step in range(steps):
                    trainer.gradient_sum(None, step, buffer)
                    trainer.update(buffer[:n_params], 1.0 / batch)
                best = min(best, (time.perf_counter() - start) / steps)
        out.append({"name": name, "params": n_params, "bytes": 4 * (n_params + 4),
                    "step_seconds": best})
    print(json.dumps(out))


def _run(command, env=None):
    result = subprocess.run(command, capture_output=True, text=True, timeout=900,
                            env=env or os.environ, cwd=REPO)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="all",
                        choices=["all", "throughput", "allreduce", "compute"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--overlap", action="store_true",
                        help="start reducing the upper layers' gradient before layer 0's "
                             "is computed (fastbp.distributed.OVERLAP_FIRST_LAYER)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    if args.mode == "throughput":
        return worker_throughput(args)
    if args.mode == "allreduce":
        return worker_allreduce(args)
    if args.mode == "compute":
        return worker_compute(args)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p)}
    env.pop("OMP_NUM_THREADS", None)
    repeats = args.repeats or (2 if args.quick else 5)
    me = [sys.executable, HERE]
    # 1. Throughput, alternating the two set-ups.
    setups = {
        "1 process x 2 threads": [*me, "throughput", "--threads", "2", "--ranks", "1"],
        "1 process x 1 thread": [*me, "throughput", "--threads", "1", "--ranks", "1"],
        "2 ranks x 1 thread": ["mpiexec", "-n", "2", *me, "throughput", "--threads", "1",
                               "--ranks", "2"],
        "2 ranks x 1 thread, overlap": ["mpiexec", "-n", "2", *me, "throughput",
                                        "--threads", "1", "--ranks", "2", "--overlap"],
    }
    rates = {name: [] for name in setups}
    for _ in range(repeats):
        for name, command in setups.items():
            rates[name].append(_run([*command, "--steps", str(args.steps)], env)
                               ["samples_per_s"])
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"784-1024-1024-10, batch {BATCH} per rank, float32, {args.steps} steps per rank:")
    for name, values in rates.items():
        print(f"  {name:<32s} {medians[name]:8.0f} samples/s  (runs: "
              f"{', '.join(f'{v:.0f}' for v in values)})")
    base = medians["1 process x 2 threads"]
    for name in list(setups)[2:]:
        print(f"  {name} / 1 process x 2 threads: {medians[name] / base:.3f}")
    # 2. Allreduce.
    points = _run(["mpiexec", "-n", "2", *me, "allreduce"], env)
    # beta: the slope over the large messages (bandwidth-bound); alpha: what is left of
    # the small ones (latency-bound), a median.
    sizes = np.array([b for b, _ in points], float)
    times = np.array([t for _, t in points])
    large = sizes >= 1 << 20
    beta = float(np.polyfit(sizes[large], times[large], 1)[0])
    alpha = float(np.median(times[sizes <= 1 << 13] - beta * sizes[sizes <= 1 << 13]))
    print("Allreduce(IN_PLACE, float32, SUM), 2 ranks, shared memory:")
    for b, t in points:
        print(f"  {b:>9d} B: {t * 1e6:9.1f} us")
    print(f"  fit: alpha = {alpha * 1e6:.1f} us, beta = {beta * 1e9:.3f} ns/B")
    # 3. Compute per step and the model.
    compute = _run([*me, "compute"], {**env, "OMP_NUM_THREADS": "1"})
    print("Scaling model: efficiency = t_step / (t_step + t_allreduce), 1 thread per node")
    header = "  network                    t_step   MB     shm-2  " + "  ".join(
        f"{link}: " + " ".join(f"P={p}" for p in NODES) for link, _, _ in LINKS)
    print(header)
    for row in compute:
        t, n_bytes = row["step_seconds"], row["bytes"]
        shm = alpha + beta * n_bytes
        cells = [f"  {row['name']:<24s} {t * 1e3:7.2f}ms {n_bytes / 1e6:6.2f}  "
                 f"{t / (t + shm):5.3f}"]
        for _, bandwidth, link_alpha in LINKS:
            effs = []
            for p in NODES:
                ring = 2 * (p - 1) * link_alpha + 2 * (p - 1) / p * n_bytes / bandwidth
                effs.append(f"{t / (t + ring):.2f}")
            cells.append(" ".join(effs))
        print("  ".join(cells))


if __name__ == "__main__":
    main()
