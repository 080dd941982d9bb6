"""fastbp: fast multilayer-perceptron training by backpropagation.

``fastbp.Network`` trains MLPs; ``fastbp.kernels`` holds the compiled kernels
(Cython, OpenMP, BLAS) it runs on and ``fastbp.reference`` their pure-NumPy twins
with identical signatures; ``fastbp.datasets`` loads the bundled digits and IDX data.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    from fastbp import _kernels  # noqa: F401  (the compiled core)
except ImportError as _exc:  # pragma: no cover - depends on how fastbp was installed
    raise ImportError(
        f"fastbp's compiled core is missing from {__path__[0]}: this is probably an unbuilt "
        "source tree. Install fastbp (pip install .) and run from another folder, or build "
        "it in place (pip install -e .)."
    ) from _exc

from fastbp import _isa, datasets, kernels, reference  # _isa applies FASTBP_ISA
from fastbp._threads import get_num_threads, set_num_threads
from fastbp.network import Network, gradient_check
from fastbp.plot import plot_history

try:
    __version__ = _version("fastbp")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    __version__ = "0+unknown"

__all__ = ["Network", "gradient_check", "plot_history", "datasets", "kernels", "reference", "build_info",
           "get_num_threads", "set_num_threads", "__version__"]


def build_info():
    """What this fastbp was built with and runs on.

    Returns
    -------
    dict
        ``version``; ``openmp`` (bool: compiled with OpenMP); ``blas``, the BLAS
        libraries loaded in this process as threadpoolctl reports them (the kernels
        call SciPy's); ``cython`` (the Cython version that compiled the kernels);
        ``num_threads`` (the kernels' OpenMP threads) and ``openmp_max_threads``;
        ``isa``, the micro-kernels the layer products run on (``"avx512"``, ``"avx2"``,
        ``"generic"`` or ``"blas"``), ``isa_forced`` (set by ``FASTBP_ISA``, not chosen
        automatically) and ``isas_available`` (what this CPU can run).
    """
    import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS the kernels call)
    from threadpoolctl import threadpool_info

    from fastbp import _kernels
    from fastbp._openmp_helpers import openmp_enabled, openmp_max_threads

    blas = [
        {key: info.get(key) for key in
         ("internal_api", "version", "num_threads", "threading_layer", "architecture",
          "filepath")}
        for info in threadpool_info() if info.get("user_api") == "blas"
    ]
    return {
        "version": __version__,
        "openmp": openmp_enabled(),
        "blas": blas,
        "cython": _kernels.CYTHON_VERSION,
        "num_threads": get_num_threads(),
        "openmp_max_threads": openmp_max_threads(),
        "isa": _isa.get_isa(),
        "isa_forced": _isa.isa_forced(),
        "isas_available": _isa.available_isas(),
    }
