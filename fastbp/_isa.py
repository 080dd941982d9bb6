"""Which micro-kernels the compiled layer products run on.

fastbp's own small-matrix kernels (src/ukernels/) exist for AVX-512, AVX2+FMA and plain
C; the best one this CPU supports is chosen at import ("auto"), with BLAS kept for layers
above a measured size. ``FASTBP_ISA=avx512|avx2|generic|blas|auto`` forces a path (read
once, when fastbp is imported); :func:`set_isa` does the same at run time. A forced ISA
runs every layer size (no BLAS crossover), ``blas`` sends every product to BLAS.

Each compiled module that runs layer products (``_kernels``, ``_engine``) holds its
own copy of the choice; this module keeps them in step.
"""

import os
import warnings

from fastbp import _engine, _kernels

#: ISA names and their codes in src/ukernels/ukernels.h.
ISA_CODES = {"blas": 0, "generic": 1, "avx2": 2, "avx512": 3, "auto": -1}
_NAMES = {code: name for name, code in ISA_CODES.items()}
_MODULES = (_kernels, _engine)


def available_isas():
    """The ISA names this CPU can run, fastest kernels last (``blas`` and ``generic`` always)."""
    return [name for name, code in ISA_CODES.items()
            if code >= 0 and _kernels._isa_supported(code)]


def get_isa():
    """The ISA the layer products run on now ("avx512", "avx2", "generic" or "blas")."""
    return _NAMES[_kernels._isa_state()[0]]


def isa_forced():
    """True when the ISA was forced (FASTBP_ISA or set_isa), False when chosen automatically."""
    return _kernels._isa_state()[1]


def set_isa(name):
    """Force the micro-kernels of ``name`` ("avx512", "avx2", "generic", "blas"), or "auto".

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is not one of the names above, or this CPU cannot run it.
    """
    if not isinstance(name, str):
        raise TypeError(f"isa must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in ISA_CODES:
        raise ValueError(f"isa must be one of {sorted(ISA_CODES)}, got {name!r}")
    code = ISA_CODES[key]
    if code >= 0 and not _kernels._isa_supported(code):
        raise ValueError(f"isa {key!r} is not supported by this CPU "
                         f"(available: {available_isas()})")
    for module in _MODULES:
        if not module._isa_set(code):  # pragma: no cover - checked above
            raise ValueError(f"isa {key!r} is not supported by this CPU")


def _apply_environment():
    """Apply FASTBP_ISA at import; a bad value warns and leaves the automatic choice."""
    value = os.environ.get("FASTBP_ISA", "").strip()
    if not value:
        return
    try:
        set_isa(value)
    except ValueError as exc:
        warnings.warn(f"FASTBP_ISA ignored: {exc}", RuntimeWarning, stacklevel=3)


_apply_environment()
