"""Run-time configuration: the instruction-set path and the thread count.

The C dispatcher picks the best path the CPU supports.  FASTSOFTMAX_ISA
(read once, at import) forces a lower one; naming a path that is not compiled
in or that this CPU cannot run is an error at import, not a crash later.

Threads: the kernels run on the package's own pool (src/pool.c, POSIX
threads; no OpenMP runtime).  By default they use FASTSOFTMAX_NUM_THREADS, else
OMP_NUM_THREADS, else the CPUs the process may run on; :func:`set_num_threads`
overrides that, and so does threadpoolctl (``threadpool_limits(n)`` or
``threadpool_limits(n, user_api="openmp")``: the pool is listed with user_api
"openmp", internal_api "fastsoftmax").  Calls too small to gain from threads run
on one.  Results never depend on the count.
"""

import operator
import os

import numpy as np

from . import _kernels

ISA_NAMES = tuple(_kernels.isa_names())


def supported_isas():
    """Names of the paths that are compiled in and that this CPU runs, lowest first."""
    return [name for i, name in enumerate(ISA_NAMES) if _kernels.isa_supported(i)]


def compiled_isas():
    """Names of the paths compiled into this build, lowest first."""
    return [name for i, name in enumerate(ISA_NAMES) if _kernels.isa_compiled(i)]


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


def integer(value, name):
    """An integer argument (a Python or NumPy integer, not a bool) as a Python int, or TypeError;
    the one check of the package's integer arguments."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None


def set_num_threads(n):
    """Use ``n`` threads in the kernels (an integer; at most 256 are used); ``None`` or 0
    restores the default."""
    n = 0 if n is None else integer(n, "number of threads")
    if n < 0:
        raise ValueError(f"number of threads must be positive, got {n}")
    _kernels.set_num_threads(min(n, 256))  # the pool's ceiling (src/pool.c, MAX_HELPERS + 1)


def get_num_threads():
    """Threads the kernels use for a large enough call (1 in a build without threads)."""
    return _kernels.get_num_threads()


def backend_info():
    """The build and run-time configuration as a dict."""
    from . import __version__

    return {
        "version": __version__,
        "isa": get_isa(),
        "compiled_isas": compiled_isas(),
        "supported_isas": supported_isas(),
        "threads_enabled": _kernels.threads_enabled(),
        "num_threads": get_num_threads(),
    }


def show_config():
    """Print :func:`backend_info`."""
    info = backend_info()
    print(f"fastsoftmax {info['version']}")
    print(f"  active instruction set : {info['isa']}")
    print(f"  compiled paths         : {', '.join(info['compiled_isas'])}")
    print(f"  supported on this CPU  : {', '.join(info['supported_isas'])}")
    threads = info["num_threads"] if info["threads_enabled"] else "1 (built without threads)"
    print(f"  threads                : {threads}")


def _from_environment():
    name = os.environ.get("FASTSOFTMAX_ISA", "").strip().lower()
    if name:
        set_isa(name)


def _register_with_threadpoolctl():
    """Let threadpoolctl see and limit the pool, when threadpoolctl is installed.

    Its ``user_api`` is "openmp", so that code written for the OpenMP pools of
    scientific Python (``threadpool_limits(1, user_api="openmp")``) limits this
    one too; its ``internal_api`` is "fastsoftmax".
    """
    try:
        import threadpoolctl
    except ImportError:
        return
    if not hasattr(threadpoolctl, "register"):  # threadpoolctl < 3.5: no controller API
        return
    import ctypes

    class FastsoftmaxController(threadpoolctl.LibController):
        user_api = "openmp"
        internal_api = "fastsoftmax"
        filename_prefixes = ("_kernels",)
        check_symbols = ("fs_set_num_threads", "fs_get_num_threads", "fs_threads_enabled")

        def get_num_threads(self):
            return self.dynlib.fs_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.fs_set_num_threads(ctypes.c_int(num_threads))

        def get_version(self):
            from . import __version__

            return __version__

    threadpoolctl.register(FastsoftmaxController)
