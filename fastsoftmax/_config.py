"""Which instruction-set path the kernels run on.

The C dispatcher picks the best path the CPU supports.  FASTSOFTMAX_ISA
(read once, at import) forces a lower one; naming a path that is not compiled
in or that this CPU cannot run is an error at import, not a crash later.
"""

import os

from . import _kernels

ISA_NAMES = tuple(_kernels.isa_names())


def supported_isas():
    """Names of the paths that are compiled in and that this CPU runs, lowest first."""
    return [name for i, name in enumerate(ISA_NAMES) if _kernels.isa_supported(i)]


def get_isa():
    """Name of the active path."""
    return ISA_NAMES[_kernels.active_isa()]


def set_isa(name):
    """Make ``name`` the active path (one of :func:`supported_isas`)."""
    if name not in ISA_NAMES:
        raise ValueError(f"unknown instruction set {name!r}; known: {', '.join(ISA_NAMES)}")
    i = ISA_NAMES.index(name)
    if not _kernels.isa_supported(i):
        why = "this CPU does not support it" if _kernels.isa_compiled(i) else "it was not compiled in"
        raise RuntimeError(f"cannot use instruction set {name!r}: {why}; supported: {', '.join(supported_isas())}")
    _kernels.select_isa(i)


def _from_environment():
    name = os.environ.get("FASTSOFTMAX_ISA", "").strip().lower()
    if name:
        set_isa(name)
