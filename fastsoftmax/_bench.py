"""Small timing / reporting helpers shared by ``python -m fastsoftmax`` and
``benchmarks/compare.py``.  Not part of the public API."""

import gc
import os
import platform
import statistics
import sys
import time

import numpy as np

__all__ = [
    "Timing",
    "measure",
    "parse_shapes",
    "cpu_model",
    "machine_header",
    "set_threads",
    "thread_summary",
    "bytes_moved",
    "make_inputs",
]


class Timing:
    """Result of :func:`measure`: ``best``, ``median`` (seconds), ``n`` timed calls."""

    __slots__ = ("best", "median", "n", "times")

    def __init__(self, times):
        self.times = list(times)
        self.best = min(self.times)
        self.median = statistics.median(self.times)
        self.n = len(self.times)

    def __repr__(self):
        return "Timing(best=%.6g s, median=%.6g s, n=%d)" % (self.best, self.median, self.n)


def measure(fn, repeats=None, budget=1.0, min_repeats=3, max_repeats=50):
    """Time ``fn()`` with ``time.perf_counter``: one untimed warm-up call, then timed calls.

    ``repeats`` given: exactly that many timed calls (>= 1).  Otherwise the first timed
    call estimates the count so the measurement takes about ``budget`` seconds, clamped
    to ``[min_repeats, max_repeats]``.  Garbage collection is run before and disabled
    during the timed calls.
    """
    gc.collect()
    fn()  # warm-up (first-call costs: lazy imports, allocator, caches)
    times = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if repeats is None:
            # one timed probe call (kept) estimates how many calls fit in the budget
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
            repeats = int(budget / max(times[0], 1e-7))
            repeats = max(min_repeats, min(max_repeats, repeats)) - 1
        else:
            repeats = max(1, int(repeats))
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return Timing(times)


def parse_shapes(text):
    """``"2048x32000,65536x10"`` -> ``[(2048, 32000), (65536, 10)]``."""
    shapes = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            dims = tuple(int(d) for d in part.lower().split("x"))
        except ValueError:
            dims = ()
        if len(dims) != 2 or min(dims) < 1:
            raise ValueError("shape %r: expected NxC with N, C >= 1" % part)
        shapes.append(dims)
    if not shapes:
        raise ValueError("no shape given")
    return shapes


def shape_str(shape):
    return "x".join(str(d) for d in shape)


def cpu_model():
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in ("avx2", "fma", "avx512f") if f in flags]
    except OSError:
        pass
    return []


def _torch():
    try:
        import torch

        return torch
    except Exception:
        return None


def set_threads(n):
    """Limit every thread pool we know about to ``n`` threads.

    Environment variables cannot change pools of libraries that are already loaded, so
    this uses the runtime controls: ``torch.set_num_threads`` (when torch is importable),
    ``threadpoolctl.threadpool_limits`` (NumPy's BLAS and any loaded OpenMP runtime, when
    threadpoolctl is importable), and ``fastsoftmax.set_num_threads`` when it exists.
    The environment variables are also set for child processes / later-loaded libraries.
    Returns the threadpoolctl limiter (keep it alive) or None.
    """
    n = int(n)
    if n < 1:
        raise ValueError("thread count must be >= 1")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(n)
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)
    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=n)
    except Exception:
        pass
    fs = sys.modules.get("fastsoftmax")
    if fs is not None and callable(getattr(fs, "set_num_threads", None)):
        fs.set_num_threads(n)
    return limiter


def thread_summary():
    """One line: CPUs available, torch threads, NumPy BLAS / OpenMP pool sizes, fastsoftmax."""
    parts = []
    try:
        avail = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        avail = os.cpu_count()
    parts.append("cpus=%s (available %s)" % (os.cpu_count(), avail))
    fs = sys.modules.get("fastsoftmax")
    if fs is not None and callable(getattr(fs, "get_num_threads", None)):
        try:
            parts.append("fastsoftmax=%s" % fs.get_num_threads())
        except Exception:
            pass
    torch = _torch()
    if torch is not None:
        parts.append("torch=%d" % torch.get_num_threads())
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            parts.append("%s:%s=%s" % (info.get("user_api"), info.get("internal_api"),
                                       info.get("num_threads")))
    except Exception:
        pass
    return ", ".join(parts)


def machine_header():
    """Lines describing the machine and library versions."""
    import fastsoftmax

    lines = []
    flags = _cpu_flags()
    lines.append("machine : %s%s; %s" % (cpu_model(), (" [" + " ".join(flags) + "]") if flags else "",
                                         platform.platform()))
    lines.append("python  : %s" % platform.python_version())
    vers = ["fastsoftmax %s" % getattr(fastsoftmax, "__version__", "?"), "numpy %s" % np.__version__]
    torch = _torch()
    vers.append("torch %s" % torch.__version__ if torch is not None else "torch not installed")
    try:
        import scipy

        vers.append("scipy %s" % scipy.__version__)
    except Exception:
        pass
    lines.append("versions: %s" % ", ".join(vers))
    cfg = getattr(fastsoftmax, "_config", None)
    if cfg is not None and callable(getattr(cfg, "get_isa", None)):
        try:
            lines.append("kernels : %s path (supported: %s)"
                         % (cfg.get_isa(), ", ".join(cfg.supported_isas())))
        except Exception:
            pass
    lines.append("threads : %s" % thread_summary())
    return lines


def bytes_moved(op, shape, dtype):
    """Bytes read + written by the ideal fused kernel for ``op`` on an (N, C) input.

    softmax / log_softmax / memcpy / fused cross-entropy forward+backward: read N*C and
    write N*C elements; logsumexp and cross-entropy forward only: read N*C elements
    (the N-element outputs and integer targets are ignored).
    """
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if op in ("logsumexp", "ce_fwd", "cross_entropy_fwd"):
        return n
    return 2 * n


def make_inputs(shape, dtype, seed=0):
    """Random logits (standard normal * 3, in ``dtype``) and int64 index targets."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32 if np.dtype(dtype) == np.float32 else np.float64)
    x *= 3
    x = x.astype(dtype, copy=False)
    t = rng.integers(0, shape[-1], size=shape[:-1], dtype=np.int64)
    return x, t
