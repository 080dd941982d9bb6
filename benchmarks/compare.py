"""Run the benchmarks and print a Markdown table of medians and ratios.

    python benchmarks/compare.py                 # everything (a few minutes)
    python benchmarks/compare.py -k training     # only the training epochs
    python benchmarks/compare.py --json out.json # keep pytest-benchmark's raw results

Ratios are NumPy-reference median / fastbp median, measured in the same run (>1 means
fastbp is faster). Extra arguments go to pytest.
"""

import argparse
import json
import os
import platform
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _impl_of(bench):
    return bench["params"].get("impl", "?")


def table(results):
    """Markdown lines: one row per group, medians of each implementation and the ratio."""
    groups = {}
    for bench in results["benchmarks"]:
        groups.setdefault(bench["group"], {})[_impl_of(bench)] = bench
    impls = ["fastbp", "numpy", "torch", "sklearn", "onnxruntime"]
    present = [i for i in impls if any(i in g for g in groups.values())]
    notes = []
    lines = ["| benchmark | " + " | ".join(f"{i} median" for i in present)
             + " | numpy / fastbp |", "|---|" + "---|" * (len(present) + 1)]
    matmul_gflops = {}
    for name, group in groups.items():
        if name.startswith("np.matmul"):
            bench = next(iter(group.values()))
            matmul_gflops[name] = bench["extra_info"]["flops"] / bench["stats"]["median"] / 1e9
            continue
        cells = [_fmt(group[i]["stats"]["median"]) if i in group else "" for i in present]
        ratio = ""
        if "fastbp" in group and "numpy" in group:
            ratio = f"{group['numpy']['stats']['median'] / group['fastbp']['stats']['median']:.2f}"
        elif "fastbp" in group and "sklearn" in group:
            ratio = (f"{group['sklearn']['stats']['median'] / group['fastbp']['stats']['median']:.2f}"
                     " (sklearn / fastbp)")
        elif "fastbp" in group and "onnxruntime" in group:
            ratio = (f"{group['onnxruntime']['stats']['median'] / group['fastbp']['stats']['median']:.2f}"
                     " (onnxruntime / fastbp)")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
        accuracies = {i: b["extra_info"]["test_accuracy"] for i, b in group.items()
                      if "test_accuracy" in b.get("extra_info", {})}
        if accuracies:
            notes.append(f"{name}: test accuracy " + ", ".join(
                f"{i} {a:.4f}" for i, a in sorted(accuracies.items())))
    for yardstick, gflops in matmul_gflops.items():
        notes.append(f"{yardstick}: {gflops:.1f} GFLOP/s")
    for name, group in groups.items():
        if "1024-1024" in name:
            for impl, bench in sorted(group.items()):
                info = bench["extra_info"]
                rate = info["samples"] * info["flops_per_sample"] / bench["stats"]["median"] / 1e9
                shares = ", ".join(f"{100 * rate / g:.0f}% of {y}"
                                   for y, g in matmul_gflops.items())
                notes.append(f"training {name}, {impl}: {rate:.1f} GFLOP/s ({shares})")
    return lines, notes


def _fmt(seconds):
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write pytest-benchmark's JSON here")
    args, pytest_args = parser.parse_known_args(argv)
    path = args.json or os.path.join(tempfile.mkdtemp(), "benchmarks.json")
    code = pytest.main([HERE, "--benchmark-only", f"--benchmark-json={path}", "-q",
                        "-p", "no:cacheprovider", *pytest_args])
    if code not in (0, 5) or not os.path.exists(path):
        return int(code)
    with open(path) as f:
        results = json.load(f)
    lines, notes = table(results)
    machine = results["machine_info"]
    cpu = machine.get("cpu", {}).get("brand_raw", platform.processor())
    print()
    print(f"Machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"NumPy {machine.get('numpy_version')}, fastbp threads "
          f"{machine['fastbp_build_info']['num_threads']}")
    print()
    print("\n".join(lines))
    for note in notes:
        print(f"\n{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
