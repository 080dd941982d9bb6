"""Find the BLAS thread-count setter of the BLAS that fastbp's kernels call.

The kernels call SciPy's BLAS (scipy.linalg.cython_blas) and split work over their
own OpenMP threads, so they hold that BLAS to one thread while they run. OpenBLAS
(SciPy's wheels) exports ``openblas_set_num_threads_local``, which sets the count and
returns the previous one; the kernels get its address once, here. With another BLAS
the address is 0 and BLAS threads are left alone (fit still limits them with
threadpoolctl).
"""

import ctypes

SETTER_NAMES = ("openblas_set_num_threads_local", "scipy_openblas_set_num_threads_local")


def blas_threads_setter_address():
    """Address of the setter in the library scipy.linalg.cython_blas links to, or 0."""
    try:
        import scipy.linalg.cython_blas as cython_blas

        # dlsym on cython_blas' handle searches the libraries it depends on: the BLAS
        # it calls, not another one loaded elsewhere in the process (e.g. NumPy's).
        library = ctypes.CDLL(cython_blas.__file__)
    except (ImportError, OSError):
        return 0
    for name in SETTER_NAMES:
        try:
            return ctypes.cast(getattr(library, name), ctypes.c_void_p).value or 0
        except AttributeError:
            continue
    return 0
