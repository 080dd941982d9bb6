"""Build-time helpers: detect whether the C compiler supports OpenMP.

Used by setup.py only. Modelled on scikit-learn's and smol's build helpers: compile
and run a tiny OpenMP program; if that fails, warn and build serially, unless
FASTBP_FAIL_NO_OPENMP=1 asks for the failure to be fatal (CI sets it).
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings

OPENMP_TEST_PROGRAM = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d\\n", n == omp_get_max_threads());
        return 0;
    }
    """
)


def openmp_flags():
    """Return (compile_args, link_args) that enable OpenMP for this platform's compiler."""
    if sys.platform == "win32":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang: OpenMP through libomp (brew install libomp).
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def check_openmp_support():
    """Compile and run a tiny OpenMP program; return True if it works.

    When it does not, warn and return False, or raise if FASTBP_FAIL_NO_OPENMP=1.
    """
    compile_args, link_args = openmp_flags()
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    if shutil.which(cc[0]) is None:
        return _no_openmp(f"compiler {cc[0]!r} not found")
    tmpdir = tempfile.mkdtemp(prefix="fastbp-openmp-")
    try:
        source = os.path.join(tmpdir, "test_openmp.c")
        binary = os.path.join(tmpdir, "test_openmp")
        with open(source, "w") as f:
            f.write(OPENMP_TEST_PROGRAM)
        cmd = cc + compile_args + [source, "-o", binary] + link_args
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            return _no_openmp(f"'{' '.join(cmd)}' failed:\n{result.stderr.strip()}")
        result = subprocess.run([binary], capture_output=True, text=True)
        if result.returncode != 0 or result.stdout.strip() != "1":
            return _no_openmp(f"the OpenMP test program did not run correctly ({result.stdout!r})")
        return True
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _no_openmp(reason):
    message = (
        "fastbp: the C compiler cannot build OpenMP programs; "
        f"continuing with OpenMP disabled (kernels run on one thread).\nReason: {reason}"
    )
    if os.environ.get("FASTBP_FAIL_NO_OPENMP", "0") not in ("", "0"):
        raise RuntimeError(message + "\nFASTBP_FAIL_NO_OPENMP is set, so this is fatal.")
    warnings.warn(message)
    return False
