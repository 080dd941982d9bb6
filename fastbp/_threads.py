"""The number of threads fastbp's compiled kernels use.

One process-wide setting, like torch.set_num_threads: `None` (the default) means
OpenMP's default team size, which honours OMP_NUM_THREADS and is otherwise the
number of cores.
"""

import numbers

from fastbp import _validation

from fastbp._openmp_helpers import openmp_enabled, openmp_max_threads

_num_threads = None
# The kernels take the count as a C int; more threads than this is never meaningful.
MAX_THREADS = 4096


def set_num_threads(n):
    """Set the number of OpenMP threads fastbp's kernels use.

    Parameters
    ----------
    n : int or None
        A positive number of threads, or None to go back to the default
        (OMP_NUM_THREADS if set, else the number of cores). Without OpenMP in the
        build, every value is accepted and the kernels run on one thread.
    """
    global _num_threads
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"n must be a positive int or None, got {type(n).__name__} {n!r}")
        if n < 1 or n > MAX_THREADS:
            raise ValueError(f"n must be a number of threads in [1, {MAX_THREADS}] or None, "
                             f"got {n}")
        n = int(n)
    _num_threads = n


def get_num_threads():
    """The number of threads the kernels will use (1 when built without OpenMP)."""
    if not openmp_enabled():
        return 1
    return _num_threads if _num_threads is not None else openmp_max_threads()


def check_thread_count(n_threads):
    n_threads = _validation.check_positive_int("n_threads", n_threads)
    if n_threads > MAX_THREADS:
        raise ValueError(f"n_threads must be at most {MAX_THREADS}, got {n_threads}")
    return n_threads
