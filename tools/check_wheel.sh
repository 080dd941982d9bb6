#!/usr/bin/env bash
# Check the wheel (and optionally the sdist) built by tools/build_wheels.sh as a user
# would meet them.
#
#   tools/check_wheel.sh [WHEELHOUSE] [--sdist]     (default WHEELHOUSE: wheelhouse/)
#
# Wheel: its contents (the package, the vendored OpenMP runtime and the licence; no
# tests, benchmarks, sources or build folders); then a fresh virtual environment whose
# PATH holds no C compiler (cc, gcc, clang, ... are replaced by commands that fail)
# installs it with binary packages only, fastbp.build_info() must report OpenMP with
# the libgomp bundled in the wheel, and the `fastbp train` console script must train
# with its defaults (30 epochs on the bundled digits) to a test accuracy above 0.9.
# --sdist: also install the sdist in another fresh environment (with the compiler; it
# builds, which takes a minute or two) and check that it reports OpenMP.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WHEELHOUSE="$ROOT/wheelhouse"
CHECK_SDIST=0
for arg in "$@"; do
    case "$arg" in
        --sdist) CHECK_SDIST=1 ;;
        *) WHEELHOUSE="$arg" ;;
    esac
done
PYTHON="${PYTHON:-python3}"
PY_TAG="cp$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
shopt -s nullglob
wheels=("$WHEELHOUSE"/fastbp-*-"$PY_TAG"-"$PY_TAG"-*manylinux*.whl)
sdists=("$WHEELHOUSE"/fastbp-*.tar.gz)
if [ "${#wheels[@]}" -ne 1 ]; then
    echo "check_wheel: expected one manylinux $PY_TAG wheel in $WHEELHOUSE, found ${#wheels[@]}" >&2
    exit 1
fi
WHEEL="${wheels[0]}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "== $(basename "$WHEEL"): $(du -k "$WHEEL" | cut -f1) KiB"

# --- contents -------------------------------------------------------------------------
"$PYTHON" - "$WHEEL" <<'PY'
import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
bad = [n for n in names if re.search(r"(^|/)(tests?|benchmarks|build|examples|src)/", n)
       or n.endswith((".pyx", ".pxd", ".c", ".h", ".o"))]
assert not bad, f"the wheel holds files it should not: {bad}"
needed = [r"^fastbp/_kernels\..*\.so$", r"^fastbp/_engine\..*\.so$",
          r"^fastbp/_openmp_helpers\..*\.so$", r"^fastbp\.libs/libgomp.*\.so",
          r"^fastbp/data/digits\.npz$", r"\.dist-info/licenses/LICENSE$"]
missing = [p for p in needed if not any(re.search(p, n) for n in names)]
assert not missing, f"the wheel lacks {missing}"
print(f"contents ok: {len(names)} files, no tests, benchmarks, sources or build folders")
PY

# --- install and run without a compiler ----------------------------------------------------
"$PYTHON" -m venv "$WORK/venv"
mkdir "$WORK/no-compiler"
for tool in cc gcc c++ g++ clang clang++ icx icpx ld; do
    printf '#!/bin/sh\necho "check_wheel: no C compiler here ($0)" >&2\nexit 1\n' \
        > "$WORK/no-compiler/$tool"
    chmod +x "$WORK/no-compiler/$tool"
done
# PATH: the failing compilers, the venv, and tee; not /usr/bin (where gcc and
# x86_64-linux-gnu-gcc live) nor anything else.
mkdir "$WORK/bin"
ln -s "$(command -v tee)" "$WORK/bin/tee"
(
    export PATH="$WORK/no-compiler:$WORK/venv/bin:$WORK/bin"
    export CC="$WORK/no-compiler/cc" CXX="$WORK/no-compiler/c++"
    if cc --version >/dev/null 2>&1 || gcc --version >/dev/null 2>&1 \
            || command -v x86_64-linux-gnu-gcc >/dev/null; then
        echo "check_wheel: a C compiler is still reachable" >&2
        exit 1
    fi
    cd "$WORK"  # not the repository: its fastbp/ must not shadow the installed one
    python -m pip install --quiet --upgrade pip
    # --only-binary: nothing may be built from source, fastbp or its dependencies.
    python -m pip install --quiet --only-binary=:all: "$WHEEL"
    python - <<'PY'
import os, sys
import fastbp
here = os.path.dirname(fastbp.__file__)
assert here.startswith(sys.prefix), f"fastbp imported from {here}, not the venv {sys.prefix}"
info = fastbp.build_info()
assert info["openmp"], f"the wheel's fastbp has no OpenMP: {info}"
libs = os.listdir(os.path.join(os.path.dirname(here), "fastbp.libs"))
with open("/proc/self/maps") as maps:
    loaded = {line.split()[-1] for line in maps if "libgomp" in line}
assert loaded and all("fastbp.libs" in p for p in loaded), f"libgomp loaded from {loaded}"
print(f"build_info ok: version {info['version']}, openmp {info['openmp']}, "
      f"{info['num_threads']} threads, vendored {libs}")
PY
    fastbp train --quiet | tee "$WORK/train.log"   # the defaults: 30 epochs on the digits
    python - "$WORK/train.log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
accuracy = float(re.search(r"test accuracy (\d\.\d+)", text).group(1))
assert accuracy > 0.9, f"fastbp train reached test accuracy {accuracy} only"
print(f"fastbp train ok: test accuracy {accuracy}")
PY
)
echo "== wheel ok: installed and trained without a compiler"

# --- the sdist, with a compiler --------------------------------------------------------------
if [ "$CHECK_SDIST" -eq 1 ]; then
    if [ "${#sdists[@]}" -ne 1 ]; then
        echo "check_wheel: expected one sdist in $WHEELHOUSE, found ${#sdists[@]}" >&2
        exit 1
    fi
    "$PYTHON" -m venv "$WORK/sdist-venv"
    (
        cd "$WORK"
        export FASTBP_FAIL_NO_OPENMP=1
        sdist-venv/bin/python -m pip install --quiet --upgrade pip
        sdist-venv/bin/python -m pip install --quiet "${sdists[0]}"
        sdist-venv/bin/python -c 'import fastbp; assert fastbp.build_info()["openmp"]'
        sdist-venv/bin/fastbp train --epochs 1 --quiet
    )
    echo "== sdist ok: $(basename "${sdists[0]}") built, installed and trained"
fi
