"""Build the compiled core: cythonize src/*.pyx into extension modules of fastbp.

Metadata lives in pyproject.toml; this file only builds extensions.

Environment switches:
  FASTBP_FAIL_NO_OPENMP=1  a compiler without OpenMP is an error (CI), not a warning.
  FASTBP_CYTHON_DEBUG=1    bounds and initialisation checks on, -O0 -g (debug build).
  FASTBP_MARCH_NATIVE=1    add -march=native (not portable: only for local builds).
"""

import glob
import os
import sys

import Cython
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
from build_helpers import check_openmp_support, openmp_flags  # noqa: E402


def env_flag(name):
    return os.environ.get(name, "0") not in ("", "0")


DEBUG = env_flag("FASTBP_CYTHON_DEBUG")

# Directives set once for the whole build; the debug build turns the checks back on.
compiler_directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "initializedcheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "embedsignature": True,
}

# -fno-math-errno: sqrt and friends need not set errno (fastbp never reads it), which
# lets the compiler inline and vectorise them. -fno-trapping-math: floating-point
# operations are not assumed to trap (fastbp never enables FP traps), so that selects
# such as relu's and the branch-free sigmoid's become vector blends. Both keep IEEE
# results (unlike -ffast-math) and are portable: no instruction-set flags.
extra_compile_args = (["-O0", "-g"] if DEBUG
                      else ["-O3", "-fno-math-errno", "-fno-trapping-math"])
extra_link_args = []
if sys.platform == "win32":
    extra_compile_args = ["/Od"] if DEBUG else ["/O2"]
if env_flag("FASTBP_MARCH_NATIVE"):
    extra_compile_args.append("-march=native")

if check_openmp_support():
    omp_compile, omp_link = openmp_flags()
    extra_compile_args += omp_compile
    extra_link_args += omp_link

define_macros = [
    ("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
    ("FASTBP_CYTHON_VERSION", f'"{Cython.__version__}"'),
]

MODULES = ["_openmp_helpers", "_kernels", "_engine"]

# fastbp's micro-kernels (hand-written C, one file per ISA and tile, each setting its
# own instruction set: the flags above stay portable), linked into the modules that run
# the layer products. Each such module holds its own ISA choice; fastbp/_isa.py sets both.
UKERNEL_SOURCES = sorted(glob.glob(os.path.join("src", "ukernels", "*.c")))
USES_UKERNELS = {"_kernels", "_engine"}

extensions = [
    Extension(
        f"fastbp.{name}",
        [os.path.join("src", f"{name}.pyx")] + (UKERNEL_SOURCES if name in USES_UKERNELS else []),
        include_dirs=["src", np.get_include()],
        depends=sorted(glob.glob(os.path.join("src", "ukernels", "*.h"))),
        define_macros=define_macros,
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives=compiler_directives,
        # Rebuild the C when the debug switch flips, not only when the .pyx changes.
        force=DEBUG,
    ),
)
