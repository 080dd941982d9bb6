"""Run the benchmarks (or read a saved run) and print Markdown tables of medians and ratios.

    python benchmarks/compare.py                       # everything (about half an hour)
    python benchmarks/compare.py -k "training or matmul" --json run.json
    python benchmarks/compare.py --from-json run.json  # the tables of a saved run

The training table has one row per epoch and dtype: the median of fastbp, the lean
NumPy loop, JAX and PyTorch, each with its efficiency (training FLOPs per second as a
percentage of ``np.matmul`` at 2048^3 of the same dtype, measured in the same run),
and the ratios ``baseline median / fastbp median`` (> 1: fastbp is faster). The other
benchmarks (kernels, the tutorial, scikit-learn, ONNX, checkpoints) go to a second
table with their ratios. Extra arguments go to pytest; ``--json FILE`` keeps
pytest-benchmark's raw results. Threads and quick mode: see conftest.py.
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

TRAINING_IMPLS = [("fastbp", "fastbp"), ("numpy", "lean NumPy"), ("jax", "JAX"),
                  ("torch", "PyTorch")]
# For the other benchmarks: the implementation compared with fastbp, and the ratio's name.
OTHER_IMPLS = ["fastbp", "numpy", "torch", "sklearn", "onnxruntime"]


def _impl_of(bench):
    return (bench.get("params") or {}).get("impl", "?")


def _median(bench):
    return bench["stats"]["median"]


def fmt_seconds(seconds):
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def matmul_rates(results):
    """{dtype: FLOP/s} of the np.matmul benchmarks of the run."""
    rates = {}
    for bench in results["benchmarks"]:
        if bench["group"].startswith("np.matmul"):
            info = bench["extra_info"]
            rates[info["dtype"]] = info["flops"] / _median(bench)
    return rates


def training_table(results):
    """Markdown lines of the training epochs: medians, efficiency and ratios."""
    rates = matmul_rates(results)
    rows = {}
    for bench in results["benchmarks"]:
        info = bench.get("extra_info", {})
        if not bench["group"].startswith("epoch ") or "config" not in info:
            continue
        rows.setdefault((info["config"], info["dtype"]), {})[_impl_of(bench)] = bench
    if not rows:
        return []
    present = [(key, label) for key, label in TRAINING_IMPLS
               if any(key in row for row in rows.values())]
    baselines = [(key, label) for key, label in present if key != "fastbp"]
    header = (["epoch", "dtype", "samples"] + [label for _, label in present]
              + [f"vs {label}" for _, label in baselines])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (config, dtype), row in rows.items():
        any_bench = next(iter(row.values()))
        info = any_bench["extra_info"]
        cells = [config, dtype, f"{info['samples']:,}"]
        for key, _ in present:
            if key not in row:
                cells.append("")
                continue
            seconds = _median(row[key])
            cell = fmt_seconds(seconds)
            if dtype in rates:
                cell += f" ({100 * info['flops'] / seconds / rates[dtype]:.0f}%)"
            cells.append(cell)
        for key, _ in baselines:
            if key in row and "fastbp" in row:
                cells.append(f"{_median(row[key]) / _median(row['fastbp']):.2f}×")
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def other_table(results):
    """Markdown lines of every other benchmark: a row per group of implementations side by
    side (a ``impl`` parameter), then a row per benchmark without one; and notes
    (accuracies)."""
    groups, singles = {}, []
    for bench in results["benchmarks"]:
        group = bench["group"] or bench["name"]
        if group.startswith("np.matmul") or (group.startswith("epoch ")
                                             and "config" in bench.get("extra_info", {})):
            continue
        if "impl" in (bench.get("params") or {}):
            groups.setdefault(group, {})[bench["params"]["impl"]] = bench
        else:
            singles.append(bench)
    notes, lines = [], []
    if groups:
        present = [i for i in OTHER_IMPLS if any(i in g for g in groups.values())]
        present += sorted({i for g in groups.values() for i in g} - set(present))
        lines += ["| benchmark | " + " | ".join(present) + " | ratio |",
                  "|---|" + "---|" * (len(present) + 1)]
        for name, group in groups.items():
            cells = [fmt_seconds(_median(group[i])) if i in group else "" for i in present]
            ratio = ""
            if "fastbp" in group:
                for other in present:
                    if other != "fastbp" and other in group:
                        ratio = (f"{_median(group[other]) / _median(group['fastbp']):.2f} "
                                 f"({other} / fastbp)")
                        break
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
            accuracies = {i: b["extra_info"]["test_accuracy"] for i, b in group.items()
                          if "test_accuracy" in b.get("extra_info", {})}
            if accuracies:
                notes.append(f"{name}: test accuracy " + ", ".join(
                    f"{i} {a:.4f}" for i, a in sorted(accuracies.items())))
    if singles:
        lines += ["", "| benchmark | median |", "|---|---|"]
        for bench in singles:
            label = bench["group"] or ""
            if bench.get("param"):
                label += f" [{bench['param']}]"
            lines.append(f"| {label or bench['name']} | {fmt_seconds(_median(bench))} |")
    return lines, notes


def machine_line(results):
    machine = results.get("machine_info", {})
    versions = machine.get("versions", {})
    cpu = machine.get("cpu_model") or machine.get("cpu", {}).get("brand_raw", "?")
    parts = [f"{cpu} ({machine.get('cpu_count', '?')} cores; "
             f"{', '.join(machine.get('cpu_vector_extensions', [])) or 'no x86 vector info'})",
             f"{machine.get('bench_threads', '?')} threads each",
             f"Python {machine.get('python_version', '?')}"]
    parts += [f"{name} {version}" for name, version in versions.items() if version]
    fastbp_info = machine.get("fastbp_build_info", {})
    if fastbp_info:
        parts.append(f"fastbp {fastbp_info.get('version')} (OpenMP "
                     f"{'on' if fastbp_info.get('openmp') else 'off'})")
    if machine.get("fastbp_isa_env"):
        parts.append(f"FASTBP_ISA={machine['fastbp_isa_env']}")
    line = "Machine: " + ", ".join(parts)
    if machine.get("bench_quick"):
        line += ". QUICK MODE (FASTBP_BENCH_QUICK=1): tiny sizes, the figures mean nothing"
    return line


def report(results):
    """The whole printed report of a run, as one string."""
    out = [machine_line(results), ""]
    rates = matmul_rates(results)
    for dtype, rate in sorted(rates.items()):
        out.append(f"np.matmul {dtype} (2048^3 unless quick): {rate / 1e9:.1f} GFLOP/s")
    training = training_table(results)
    if training:
        out += ["", "One training epoch: median (efficiency: % of np.matmul of the dtype); "
                "vs X = X's median / fastbp's median", ""] + training
    lines, notes = other_table(results)
    if lines:
        out += ["", "Other benchmarks (medians):", ""] + lines
    for note in notes:
        out += ["", note]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write pytest-benchmark's JSON here")
    parser.add_argument("--from-json", metavar="FILE",
                        help="print the tables of a saved pytest-benchmark JSON; run nothing")
    args, pytest_args = parser.parse_known_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        print(report(results))
        return 0
    import pytest

    path = args.json or os.path.join(tempfile.mkdtemp(), "benchmarks.json")
    code = pytest.main([HERE, "--benchmark-only", f"--benchmark-json={path}", "-q",
                        "-p", "no:cacheprovider", *pytest_args])
    if code not in (0, 5) or not os.path.exists(path):
        return int(code)
    with open(path) as f:
        results = json.load(f)
    print()
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
