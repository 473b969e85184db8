"""``python -m fastsoftmax bench``: a short benchmark of fastsoftmax on this machine.

Times ``softmax`` and the fused cross-entropy forward+backward (index targets, mean
reduction) on a few shapes against a plain NumPy implementation and, when they are
importable, PyTorch (CPU) and JAX, and prints each time with how many times faster or
slower fastsoftmax is.  Each time is the median of interleaved rounds (every implementation
once per round), each round the median of several calls after a warm-up call.  It writes no
file unless ``--save FILE`` asks for one, and warns when other programs are using the machine
(a short calibration of the CPU share this process gets now, and the load average).

The timing and machine-description helpers here are also what the benchmark suite in
the source checkout (``benchmarks/``) builds on, and its NumPy and PyTorch softmax and
cross-entropy are these functions, so both time the same code.
"""

import argparse
import gc
import os
import platform
import statistics
import sys
import time

import numpy as np

__all__ = ["main", "Timing", "measure", "parse_shapes", "shape_str", "make_inputs", "cpu_model", "cpu_flags",
           "available_cpus", "optional_import", "set_threads", "thread_summary", "machine_header", "load_average",
           "numpy_softmax", "numpy_cross_entropy", "torch_softmax", "torch_cross_entropy", "speed_words"]

DEFAULT_SHAPES = "65536x10,4096x1000,512x32000"
ROUNDS = 5  # interleaved rounds of every implementation
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# ----------------------------------------------------------------------------- timing


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


def make_inputs(shape, dtype, seed=0):
    """Random logits (standard normal * 3, in ``dtype``) and int64 index targets."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32 if np.dtype(dtype) == np.float32 else np.float64)
    x *= 3
    x = x.astype(dtype, copy=False)
    t = rng.integers(0, shape[-1], size=shape[:-1], dtype=np.int64)
    return x, t


# ----------------------------------------------------------------------------- the machine


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


def cpu_flags():
    """The vector extensions of /proc/cpuinfo that the kernels use (Linux; else [])."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in ("avx2", "fma", "avx512f") if f in flags]
    except OSError:
        pass
    return []


def available_cpus():
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average():
    """The 1-minute load average (NaN where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def optional_import(name):
    """The module ``name``, or None when it cannot be imported (missing, or a broken installation)."""
    try:
        return __import__(name, fromlist=["_"])
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
    for var in _THREAD_VARIABLES:
        os.environ[var] = str(n)
    torch = optional_import("torch")
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
    parts = ["cpus=%s (available %s)" % (os.cpu_count(), available_cpus())]
    fs = sys.modules.get("fastsoftmax")
    if fs is not None and callable(getattr(fs, "get_num_threads", None)):
        try:
            parts.append("fastsoftmax=%s" % fs.get_num_threads())
        except Exception:
            pass
    torch = sys.modules.get("torch")
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


def machine_header(libraries=("torch",)):
    """Lines describing the machine and the library versions (``libraries``: the optional
    ones to name, imported here when they can be)."""
    import fastsoftmax

    flags = cpu_flags()
    lines = ["machine : %s%s; %s" % (cpu_model(), (" [" + " ".join(flags) + "]") if flags else "",
                                     platform.platform()),
             "python  : %s" % platform.python_version()]
    vers = ["fastsoftmax %s" % fastsoftmax.__version__, "numpy %s" % np.__version__]
    for name in libraries:
        module = optional_import(name)
        vers.append("%s %s" % (name, module.__version__) if module is not None else "%s not installed" % name)
    lines.append("versions: %s" % ", ".join(vers))
    cfg = fastsoftmax._config
    lines.append("kernels : %s path (supported: %s)" % (cfg.get_isa(), ", ".join(cfg.supported_isas())))
    lines.append("threads : %s" % thread_summary())
    return lines


# ----------------------------------------------------------------------------- the implementations compared


def numpy_softmax(x, axis=-1):
    """Plain NumPy softmax: subtract the max, exponentiate, divide by the sum."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def numpy_cross_entropy(logits, target, return_grad=True):
    """Plain NumPy cross-entropy, index targets, mean reduction, class axis last: the demo's
    :class:`~fastsoftmax.demo.NumpyCrossEntropyLoss` (what one writes without fastsoftmax).

    logits: (N, C) array (float32 stays float32); target: (N,) integer class indices.
    Returns ``loss`` or ``(loss, grad)``.
    """
    from .demo import NumpyCrossEntropyLoss

    fn = NumpyCrossEntropyLoss()
    loss = fn(logits, target)
    return (loss, fn.backward()) if return_grad else loss


def torch_softmax(x, axis=-1):
    """``torch.softmax`` on ``torch.from_numpy(x)`` (zero-copy), result as NumPy."""
    import torch

    return torch.softmax(torch.from_numpy(x), dim=axis).numpy()


def torch_cross_entropy(logits, target, return_grad=True):
    """``torch.nn.functional.cross_entropy`` (mean reduction), forward (+ backward).

    The logits tensor is made from the NumPy array with ``torch.from_numpy`` (no copy)
    and ``requires_grad``; ``loss.backward()`` computes the gradient.  ``target`` should
    be an int64 NumPy array (``torch.from_numpy`` is then free; other integer dtypes are
    converted).  Returns ``loss`` (a NumPy scalar) or ``(loss, grad)``.
    """
    import torch
    import torch.nn.functional as F

    if target.dtype != np.int64:
        target = target.astype(np.int64)
    t = torch.from_numpy(target)
    if not return_grad:
        with torch.no_grad():
            return F.cross_entropy(torch.from_numpy(logits), t).numpy()[()]
    x = torch.from_numpy(logits).requires_grad_(True)
    loss = F.cross_entropy(x, t)
    loss.backward()
    return loss.detach().numpy()[()], x.grad.numpy()


def _jax_functions(x, t):
    """JAX's softmax and cross-entropy value-and-grad, jit-compiled, as zero-argument callables on
    ``x``, ``t`` already moved into JAX (so that the time is JAX's computation, not the copy)."""
    import jax
    import jax.numpy as jnp

    def cross_entropy(logits, target):
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))

    softmax = jax.jit(lambda a: jax.nn.softmax(a, axis=-1))
    loss_and_grad = jax.jit(jax.value_and_grad(cross_entropy))
    xj, tj = jax.device_put(x), jax.device_put(t.astype(np.int32))
    return {"softmax": lambda: softmax(xj).block_until_ready(),
            "ce": lambda: jax.block_until_ready(loss_and_grad(xj, tj))}


def _competitors(dtype):
    """[(name, builder or the reason it is skipped)]; builder(x, t) -> {"softmax": fn, "ce": fn}."""
    out = [("NumPy", lambda x, t: {"softmax": lambda: numpy_softmax(x),
                                   "ce": lambda: numpy_cross_entropy(x, t, return_grad=True)})]
    if optional_import("torch") is None:
        out.append(("PyTorch", "not installed"))
    else:
        out.append(("PyTorch", lambda x, t: {"softmax": lambda: torch_softmax(x),
                                             "ce": lambda: torch_cross_entropy(x, t, return_grad=True)}))
    jax = optional_import("jax")
    if jax is None:
        out.append(("JAX", "not installed"))
    elif np.dtype(dtype) == np.float64 and not jax.config.jax_enable_x64:
        out.append(("JAX", "float64 needs JAX_ENABLE_X64=1"))
    else:
        out.append(("JAX", _jax_functions))
    return out


# ----------------------------------------------------------------------------- the report


def speed_words(t_fastsoftmax, t_other):
    """How fastsoftmax compares with the other time: "3.2x faster" or "1.5x slower"."""
    if not (t_fastsoftmax > 0 and t_other > 0):
        return "n/a"
    if t_other >= t_fastsoftmax:
        return "%.1fx faster" % (t_other / t_fastsoftmax)
    return "%.1fx slower" % (t_fastsoftmax / t_other)


def cpu_availability(seconds=0.1, cpus=None):
    """The share of the CPUs this process gets now (0 to 1): one thread per available CPU runs
    NumPy work that releases the GIL for about ``seconds``, and their CPU time is set against
    the wall time. Unlike the load average (a mean over the last minute), it sees a machine that
    became busy a moment ago."""
    import threading

    n = available_cpus() if cpus is None else cpus
    a = np.ones(1 << 16)
    b = np.empty_like(a)
    used = [0.0] * n
    start = threading.Barrier(n + 1)

    def spin(k):
        start.wait()
        c0 = time.thread_time()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            np.sqrt(a, out=b)
        used[k] = time.thread_time() - c0

    threads = [threading.Thread(target=spin, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    w0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - w0
    return max(0.0, min(1.0, sum(used) / (wall * n))) if wall > 0 else 1.0


_TIMES_NOISY = "the times are slower and noisier than on an idle machine, and the ratios less reliable"


def busy_warning(load=None, cpus=None, availability=None, consequence=_TIMES_NOISY):
    """A warning line when other programs are using the machine, else None: this process got
    under 80% of the CPUs in a short calibration now (:func:`cpu_availability`), or the 1-minute
    load average is at least half the available CPUs."""
    load = load_average() if load is None else load
    cpus = available_cpus() if cpus is None else cpus
    availability = cpu_availability(cpus=cpus) if availability is None else availability
    plural = "" if cpus == 1 else "s"
    if availability < 0.8:
        return ("WARNING: other programs are using this machine now: a short calibration got %.0f%% of %d CPU%s "
                "(load average %.2f), so %s" % (100 * availability, cpus, plural, load, consequence))
    if load >= 0.5 * cpus:
        return ("WARNING: the load average is %.2f on %d CPU%s: other programs are using this machine, so %s"
                % (load, cpus, plural, consequence))
    return None


def _parser(prog):
    p = argparse.ArgumentParser(
        prog=prog,
        description="Time fastsoftmax's softmax and fused cross-entropy forward+backward against plain NumPy "
                    "and, when importable, PyTorch and JAX, on a few shapes; print each time and how many times "
                    "faster or slower fastsoftmax is.  Writes no file unless --save is given.")
    p.add_argument("--shapes", default=DEFAULT_SHAPES,
                   help="comma-separated NxC shapes, C classes (default: %(default)s)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="dtype of the logits (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="limit fastsoftmax, PyTorch and NumPy's BLAS to N threads (default: each library's own "
                        "default; JAX always keeps its own)")
    p.add_argument("--budget", type=float, default=0.25, metavar="SEC",
                   help="about how long to time each row, over %d rounds (default: %%(default)s)" % ROUNDS)
    p.add_argument("--save", default=None, metavar="FILE", help="also write the report to FILE")
    return p


def main(argv=None, prog="python -m fastsoftmax bench", out=None):
    """Run the benchmark and print the report; returns the exit status (0)."""
    out = sys.stdout if out is None else out
    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        shapes = parse_shapes(args.shapes)
    except ValueError as exc:
        parser.error("--shapes: %s" % exc)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    if not args.budget > 0:
        parser.error("--budget must be > 0")
    if args.save and not os.path.isdir(os.path.dirname(os.path.abspath(args.save))):
        parser.error("--save: directory %s does not exist" % os.path.dirname(os.path.abspath(args.save)))

    import fastsoftmax as fs

    warning = busy_warning()  # before this process loads the CPUs
    lines = []

    def say(line=""):
        lines.append(line)
        print(line, file=out, flush=True)

    limiter = set_threads(args.threads) if args.threads is not None else None  # noqa: F841 (kept alive)
    dtype = np.dtype(args.dtype)
    competitors = _competitors(dtype)
    say("fastsoftmax %s benchmark: softmax and cross-entropy forward+backward (index targets, mean), %s"
        % (fs.__version__, dtype.name))
    for line in machine_header(libraries=("torch", "jax")):
        say(line)
    if warning:
        say(warning)
    skipped = ["%s (%s)" % (name, how) for name, how in competitors if isinstance(how, str)]
    say("time: the median of %d interleaved rounds (each the median of 1-50 calls after a warm-up call), about "
        "%.2g s per row (JAX: jit-compiled, on arrays already in JAX)" % (ROUNDS, args.budget))
    if skipped:
        say("not compared: " + ", ".join(skipped))
    say()
    header = "%-32s %-12s %-14s %10s   %s" % ("operation", "shape", "implementation", "time (ms)", "fastsoftmax is")
    say(header)
    say("-" * len(header))
    for shape in shapes:
        _run_shape(fs, shape, dtype, competitors, args.budget, say)
    if args.save:
        with open(args.save, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("report written to %s" % args.save, file=out)
    return 0


def _run_shape(fs, shape, dtype, competitors, budget, say):
    """Time fastsoftmax and the competitors on one shape; one line per (operation, implementation)."""
    x, t = make_inputs(shape, dtype)
    impls = {"fastsoftmax": {"softmax": lambda: fs.softmax(x), "ce": lambda: fs.cross_entropy(x, t, return_grad=True)}}
    for name, build in competitors:
        if callable(build):
            try:
                impls[name] = build(x, t)
            except Exception as exc:  # e.g. JAX cannot compile here: report it on each row
                impls[name] = exc
    for opname, op in (("softmax", "softmax"), ("cross-entropy forward+backward", "ce")):
        # ROUNDS interleaved rounds (every implementation once per round), so that a change in the
        # machine's load meets all of them; each time is the median of the rounds' medians
        rounds = {}
        failed = {}
        for r in range(ROUNDS):
            for name, fns in impls.items():
                if name in failed:
                    continue
                try:
                    if isinstance(fns, Exception):
                        raise fns
                    first = rounds.get(name)
                    tm = measure(fns[op], budget=budget / ROUNDS) if not first else measure(fns[op], repeats=first[0].n)
                except Exception as exc:  # a library that cannot run this case: say so and go on
                    failed[name] = exc
                    continue
                rounds.setdefault(name, []).append(tm)
        base = statistics.median(t.median for t in rounds["fastsoftmax"]) if "fastsoftmax" in rounds else None
        for name in impls:
            if name in failed:
                error = failed[name]
                say("%-32s %-12s %-14s failed: %s: %s" % (opname, shape_str(shape), name, type(error).__name__,
                                                          error))
                continue
            med = statistics.median(tm.median for tm in rounds[name])
            words = speed_words(base, med) if base and name != "fastsoftmax" else ""
            say(("%-32s %-12s %-14s %10.3f   %s" % (opname, shape_str(shape), name, med * 1e3, words)).rstrip())
