"""OpenMP facts for the Python side: is it compiled in, and how many threads by default."""

from _openmp cimport FASTBP_OPENMP_ENABLED, omp_get_max_threads, omp_get_num_procs


def openmp_enabled():
    """True when the compiled core was built with OpenMP."""
    return bool(FASTBP_OPENMP_ENABLED)


def openmp_max_threads():
    """OpenMP's default team size (OMP_NUM_THREADS if set, else the number of cores); 1 without OpenMP."""
    return omp_get_max_threads()


def openmp_num_procs():
    """Number of processors OpenMP sees; 1 without OpenMP."""
    return omp_get_num_procs()
