"""BLAS held to one thread while fastbp computes, for kernel calls and fits alike.

The kernels call SciPy's BLAS (scipy.linalg.cython_blas) and split work over their
own OpenMP threads, so they hold that BLAS to one thread while they run. OpenBLAS
(SciPy's wheels) exports ``openblas_set_num_threads_local``, which sets the count and
returns the previous one; the kernels get its address once, here. With another BLAS
the address is 0 and BLAS threads are left alone (fit still limits them with
threadpoolctl).

One process-wide count decides when the thread counts change, so that concurrent
holders (kernel calls, fits in several threads) never restore one another's limit:

- the kernels' count (src/_kernels.pyx, ``blas_hold``/``blas_release``, under a lock):
  the first holder saves the kernels' BLAS thread count and sets 1, the last restores
  it. Every kernel call and every fit is a holder.
- fits (:func:`hold_for_fit`), under a lock here: the first fit also limits every BLAS
  library of the process to one thread with threadpoolctl (NumPy's included), the last
  fit to finish restores them. A fit takes the kernels' count first and releases it
  last, so threadpoolctl only ever sees (and restores) the kernels' BLAS at 1, and the
  kernels' count restores the user's setting when its last holder leaves.
"""

import ctypes
import threading

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


_fit_lock = threading.Lock()
_fits = 0
_fit_limits = None


def hold_for_fit(controller):
    """Hold BLAS at one thread for a fit: the kernels' count, and on the first of the
    fits in flight every BLAS library through ``controller`` (a threadpoolctl
    ThreadpoolController)."""
    global _fits, _fit_limits
    from fastbp import _kernels

    with _fit_lock:
        _kernels.blas_hold()
        if _fits == 0:
            try:
                _fit_limits = controller.limit(limits=1, user_api="blas")
            except BaseException:
                _kernels.blas_release()
                raise
        _fits += 1


def release_for_fit():
    """Undo one :func:`hold_for_fit`; the last fit out restores the libraries' counts."""
    global _fits, _fit_limits
    from fastbp import _kernels

    with _fit_lock:
        _fits -= 1
        try:
            if _fits == 0:
                limits, _fit_limits = _fit_limits, None
                limits.restore_original_limits()
        finally:
            _kernels.blas_release()
