# The micro-kernels' instruction set, as Python functions of the module that includes
# this file. Each compiled module that runs layer products (_kernels, _engine) links its
# own copy of src/ukernels/ and so holds its own ISA choice; fastbp/_isa.py sets every
# module's copy through these.

from _ukernels cimport fb_get_isa, fb_isa_forced, fb_isa_supported, fb_set_isa


def _isa_set(int code):
    """Use ISA ``code`` (FB_ISA_* in src/ukernels/ukernels.h; -1: auto); False if unsupported."""
    return fb_set_isa(code) == 0


def _isa_state():
    """(the ISA code in use, whether it was forced)."""
    return fb_get_isa(), bool(fb_isa_forced())


def _isa_supported(int code):
    """Whether this CPU runs the micro-kernels of ISA ``code``."""
    return bool(fb_isa_supported(code))
