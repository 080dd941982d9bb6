# OpenMP in one place (cimported by _openmp_helpers.pyx and the kernels): every omp_* call in fastbp goes through this header, which
# compiles with or without OpenMP (then everything runs on one thread).

cdef extern from * nogil:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FASTBP_OPENMP_ENABLED 1
    #else
    #define FASTBP_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_procs(void) { return 1; }
    #endif
    """
    bint FASTBP_OPENMP_ENABLED
    int omp_get_max_threads()
    int omp_get_num_procs()
