"""The compiled core as built: fastbp.build_info() and OpenMP.

A build without OpenMP runs the kernels on one thread: that is an error here unless
the environment variable FASTBP_ALLOW_NO_OPENMP is set (to anything but "" or "0",
as the FASTBP_* switches of setup.py), which turns the OpenMP check into a skip.
"""

import os
import re

import pytest

import fastbp
from fastbp import _threads

ALLOW_NO_OPENMP = os.environ.get("FASTBP_ALLOW_NO_OPENMP", "0") not in ("", "0")

BLAS_KEYS = {"internal_api", "version", "num_threads", "threading_layer", "architecture",
             "filepath"}


@pytest.fixture
def info():
    return fastbp.build_info()


@pytest.fixture
def restore_num_threads():
    saved = _threads._num_threads
    yield
    fastbp.set_num_threads(saved)


def test_build_info_has_the_documented_keys(info):
    assert set(info) == {"version", "openmp", "blas", "cython", "num_threads",
                         "openmp_max_threads", "isa", "isa_forced", "isas_available"}


def test_build_info_reports_the_micro_kernels_isa(info):
    assert info["isa"] in ("avx512", "avx2", "generic", "blas")
    assert info["isa"] in info["isas_available"]
    assert {"blas", "generic"} <= set(info["isas_available"])
    assert type(info["isa_forced"]) is bool


def test_build_info_version_is_the_package_version(info):
    assert isinstance(info["version"], str) and info["version"]
    assert info["version"] == fastbp.__version__


def test_build_info_openmp_is_a_bool(info):
    assert type(info["openmp"]) is bool


def test_build_info_lists_the_blas_libraries(info):
    blas = info["blas"]
    assert isinstance(blas, list)
    assert blas, "no BLAS library loaded, yet the kernels call SciPy's BLAS"
    for lib in blas:
        assert set(lib) == BLAS_KEYS
        assert isinstance(lib["internal_api"], str) and lib["internal_api"]
        assert isinstance(lib["filepath"], str) and lib["filepath"]
        assert isinstance(lib["num_threads"], int) and lib["num_threads"] >= 1


def test_build_info_cython_is_the_compiling_cython_version(info):
    assert isinstance(info["cython"], str)
    assert info["cython"] != "unknown", "setup.py did not pass FASTBP_CYTHON_VERSION"
    match = re.match(r"(\d+)\.(\d+)", info["cython"])
    assert match, info["cython"]
    assert int(match.group(1)) >= 3  # pyproject.toml: Cython>=3.0


def test_build_info_thread_counts(info):
    assert type(info["num_threads"]) is int and info["num_threads"] >= 1
    assert type(info["openmp_max_threads"]) is int and info["openmp_max_threads"] >= 1
    assert info["num_threads"] == fastbp.get_num_threads()


def test_build_info_follows_set_num_threads(restore_num_threads):
    fastbp.set_num_threads(1)
    assert fastbp.build_info()["num_threads"] == 1
    fastbp.set_num_threads(2)
    info = fastbp.build_info()
    assert info["num_threads"] == (2 if info["openmp"] else 1)  # 1 thread without OpenMP


def test_openmp_is_enabled_in_the_build(info):
    if not info["openmp"] and ALLOW_NO_OPENMP:
        pytest.skip("FASTBP_ALLOW_NO_OPENMP is set: a build without OpenMP is allowed")
    assert info["openmp"], (
        "fastbp was built without OpenMP (the kernels run on one thread); rebuild with an "
        "OpenMP compiler (FASTBP_FAIL_NO_OPENMP=1 makes that a build error), or set "
        "FASTBP_ALLOW_NO_OPENMP=1 to accept it"
    )



def test_manifest_ships_every_source_file_under_src():
    """The wheel is built from the sdist (tools/build_wheels.sh): a source file under src/
    that MANIFEST.in's patterns miss (a new .pxi, say) breaks that build, not this one."""
    import fnmatch
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    manifest = os.path.join(root, "MANIFEST.in")
    src = os.path.join(root, "src")
    if not os.path.exists(manifest) or not os.path.isdir(src):
        pytest.skip("not run from a source tree")
    patterns = []
    with open(manifest) as f:
        for line in f:
            words = line.split()
            if words[:2] == ["recursive-include", "src"]:
                patterns += words[2:]
    missed = []
    for folder, _, files in os.walk(src):
        for name in files:
            generated = folder == src and name.startswith("_") and name.endswith(".c")
            if generated or name.endswith((".so", ".o", ".html")):
                continue
            if not any(fnmatch.fnmatch(name, p) for p in patterns):
                missed.append(os.path.relpath(os.path.join(folder, name), root))
    assert not missed, f"MANIFEST.in does not ship {missed}"
