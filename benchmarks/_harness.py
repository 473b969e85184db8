"""The performance bars of fastsoftmax (its speed targets against np.copyto, PyTorch,
scikit-learn, its own single-threaded and baseline paths), measured in one process with
interleaved rounds: :func:`bars_main` is ``python benchmarks/bars.py``; :func:`bar_groups`
is shared with ``test_bench_bars.py`` and :func:`interleaved` with ``loss_family.py``.

The timing and machine helpers (``Timing``, ``make_inputs``, ``machine_header``,
``set_threads`` ...) are those of ``python -m fastsoftmax bench`` (``fastsoftmax/bench.py``),
re-exported here for the other scripts of this directory.
"""

import gc
import os
import platform
import time

import numpy as np

import _baselines as bl
from fastsoftmax.bench import (Timing, available_cpus, cpu_flags, cpu_model, load_average, machine_header,
                               make_inputs, optional_import, parse_shapes, set_threads, shape_str, thread_summary)

__all__ = [
    "Timing",
    "parse_shapes",
    "shape_str",
    "cpu_model",
    "machine_header",
    "set_threads",
    "thread_summary",
    "bytes_moved",
    "make_inputs",
    "optional_import",
    "bar_groups",
    "bars_main",
    "interleaved",
]


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


# ============================================================================ the bars


class BarImpl:
    """One timed implementation of a bar group.

    ``fn()`` is the timed call; ``pre()`` (optional) runs before every timed call, outside
    the timer (e.g. select an instruction-set path or a thread count); ``note`` describes
    exactly what is called.
    """

    __slots__ = ("name", "fn", "pre", "note")

    def __init__(self, name, fn, pre=None, note=""):
        self.name, self.fn, self.pre, self.note = name, fn, pre, note


class BarCheck:
    """ratio = time(num) / time(den); ``kind`` "max": MET when ratio <= required,
    "min": MET when ratio >= required.  ``den`` may be a callable(times dict) -> name."""

    __slots__ = ("key", "text", "num", "den", "kind", "required", "info")

    def __init__(self, key, text, num, den, kind, required, info=False):
        self.key, self.text, self.num, self.den = key, text, num, den
        self.kind, self.required, self.info = kind, float(required), info


def _fs():
    import fastsoftmax

    return fastsoftmax


def _ctx_inputs(ctx, shape, dtype):
    """(x, t) for (shape, dtype), cached in ``ctx`` (only the latest pair is kept)."""
    key = (tuple(shape), np.dtype(dtype).name)
    cache = ctx.setdefault("_inputs", {})
    if key not in cache:
        cache.clear()
        cache[key] = make_inputs(shape, dtype)
    return cache[key]


def _touched_like(x):
    out = np.empty_like(x)
    out.fill(0)  # fault the pages in once, so no timed call pays for them
    return out


def _build_ce(ctx):
    fs = _fs()
    x, t = _ctx_inputs(ctx, (2048, 32000), np.float32)
    g, dst = _touched_like(x), _touched_like(x)
    impls = [
        BarImpl("fastsoftmax out=", lambda: fs.cross_entropy(x, t, return_grad=True, out=g),
                note="fs.cross_entropy(x, t, return_grad=True, out=g), g preallocated"),
        BarImpl("fastsoftmax", lambda: fs.cross_entropy(x, t, return_grad=True),
                note="fs.cross_entropy(x, t, return_grad=True) (allocates the gradient, like torch)"),
        BarImpl("memcpy", lambda: np.copyto(dst, x), note="np.copyto(dst, x), dst preallocated"),
    ]
    if bl.has_torch():
        impls.append(BarImpl("torch", lambda: bl.torch_cross_entropy(x, t, return_grad=True),
                             note="F.cross_entropy(from_numpy(x).requires_grad_(), t); loss.backward()"))
    return impls


def _build_ce_fwd(ctx):
    fs = _fs()
    x, t = _ctx_inputs(ctx, (2048, 32000), np.float32)
    return [
        BarImpl("fastsoftmax", lambda: fs.cross_entropy(x, t), note="fs.cross_entropy(x, t) (mean loss only)"),
        BarImpl("numpy max", lambda: x.max(axis=-1), note="x.max(axis=-1)"),
    ]


def _build_softmax(ctx):
    fs = _fs()
    x, _ = _ctx_inputs(ctx, (2048, 32000), np.float32)
    o, dst = _touched_like(x), _touched_like(x)
    impls = [
        BarImpl("fastsoftmax out=", lambda: fs.softmax(x, out=o), note="fs.softmax(x, out=o), o preallocated"),
        BarImpl("fastsoftmax", lambda: fs.softmax(x), note="fs.softmax(x) (allocates, like torch)"),
        BarImpl("memcpy", lambda: np.copyto(dst, x), note="np.copyto(dst, x), dst preallocated"),
    ]
    if bl.has_torch():
        impls.append(BarImpl("torch", lambda: bl.torch_softmax(x), note="torch.softmax(from_numpy(x), -1)"))
    return impls


def _build_small(ctx):
    fs = _fs()
    n, c = 65536, 10
    x, t = _ctx_inputs(ctx, (n, c), np.float32)
    g = _touched_like(x)
    threads = ctx["threads"]
    impls = [
        BarImpl("fastsoftmax", lambda: fs.cross_entropy(x, t, return_grad=True),
                note="fs.cross_entropy(x, t, return_grad=True) (allocates, like sklearn and torch)"),
        BarImpl("fastsoftmax out=", lambda: fs.cross_entropy(x, t, return_grad=True, out=g),
                note="fs.cross_entropy(x, t, return_grad=True, out=g)"),
    ]
    if bl.has_sklearn():
        loss = bl.sklearn_multinomial_loss(c)
        y = t.astype(x.dtype)  # float labels, same dtype as the raw predictions
        lo, go = np.empty(n, x.dtype), _touched_like(x)
        impls.append(BarImpl("sklearn", lambda: loss.loss_gradient(y_true=y, raw_prediction=x,
                                                                   n_threads=threads),
                             note="HalfMultinomialLoss(n_classes=10).loss_gradient(y_true=float32 labels, "
                                  "raw_prediction=x float32, n_threads=%d)" % threads))
        impls.append(BarImpl("sklearn out=", lambda: loss.loss_gradient(
            y_true=y, raw_prediction=x, loss_out=lo, gradient_out=go, n_threads=threads),
            note="same, with preallocated loss_out / gradient_out"))
    if bl.has_torch():
        impls.append(BarImpl("torch", lambda: bl.torch_cross_entropy(x, t, return_grad=True),
                             note="F.cross_entropy + loss.backward()"))
    return impls


def _build_f64(ctx):
    fs = _fs()
    x, t = _ctx_inputs(ctx, (2048, 32000), np.float64)
    g, dst = _touched_like(x), _touched_like(x)
    return [
        BarImpl("fastsoftmax out=", lambda: fs.cross_entropy(x, t, return_grad=True, out=g),
                note="fs.cross_entropy(x, t, return_grad=True, out=g), float64"),
        BarImpl("memcpy", lambda: np.copyto(dst, x), note="np.copyto(dst, x), float64"),
    ]


def _build_row(ctx):
    fs = _fs()
    x, _ = _ctx_inputs(ctx, (1, 10_000_000), np.float32)
    o = _touched_like(x)
    threads = ctx["threads"]
    return [
        BarImpl("1 thread", lambda: fs.softmax(x, out=o), pre=lambda: fs.set_num_threads(1),
                note="fs.set_num_threads(1); fs.softmax(x, out=o)"),
        BarImpl("%d threads" % threads, lambda: fs.softmax(x, out=o),
                pre=lambda: fs.set_num_threads(threads),
                note="fs.set_num_threads(%d); fs.softmax(x, out=o)" % threads),
    ]


def _build_isa(ctx):
    fs = _fs()
    cfg = fs._config
    x, t = _ctx_inputs(ctx, (2048, 32000), np.float32)
    g = _touched_like(x)
    impls = []
    for name in reversed(cfg.supported_isas()):  # best first
        impls.append(BarImpl("isa=%s" % name, lambda: fs.cross_entropy(x, t, return_grad=True, out=g),
                             pre=(lambda name=name: cfg.set_isa(name)),
                             note="_config.set_isa(%r); fs.cross_entropy(x, t, return_grad=True, out=g)"
                                  % name))
    return impls


def _best_non_baseline(times):
    cands = [n for n in times if n != "isa=baseline"]
    return min(cands, key=lambda n: times[n].best) if cands else "isa=baseline"


def bar_groups(threads=2):
    """The bars: list of dicts (key, title, build(ctx) -> [BarImpl], checks, ...)."""
    t = threads
    return [
        dict(key="ce", title="fused CE fwd+bwd 2048x32000 float32", build=_build_ce,
             checks=[BarCheck("ce/memcpy", "fused CE fwd+bwd (out=) / np.copyto",
                              "fastsoftmax out=", "memcpy", "max", 1.25),
                     BarCheck("torch/ce", "torch CE fwd+bwd / fused CE fwd+bwd (%d threads)" % t,
                              "torch", "fastsoftmax", "min", 6.0),
                     BarCheck("torch/ce out", "(info) torch CE fwd+bwd / fused CE with out=",
                              "torch", "fastsoftmax out=", "min", 6.0, info=True)]),
        dict(key="ce_fwd", title="CE forward only 2048x32000 float32", build=_build_ce_fwd,
             checks=[BarCheck("ce_fwd/max", "CE loss only / logits.max(axis=-1)",
                              "fastsoftmax", "numpy max", "max", 1.5)]),
        dict(key="softmax", title="softmax 2048x32000 float32", build=_build_softmax,
             checks=[BarCheck("softmax/memcpy", "softmax (out=) / np.copyto",
                              "fastsoftmax out=", "memcpy", "max", 1.25),
                     BarCheck("torch/softmax", "torch.softmax / softmax (%d threads)" % t,
                              "torch", "fastsoftmax", "min", 3.0),
                     BarCheck("torch/softmax out", "(info) torch.softmax / softmax with out=",
                              "torch", "fastsoftmax out=", "min", 3.0, info=True)]),
        dict(key="small", title="fused CE fwd+bwd 65536x10 float32", build=_build_small,
             checks=[BarCheck("sklearn/ce", "sklearn HalfMultinomialLoss / fused CE (n_threads=%d)" % t,
                              "sklearn", "fastsoftmax", "min", 2.0),
                     BarCheck("sklearn out/ce out", "(info) sklearn / fused CE, both with preallocated outputs",
                              "sklearn out=", "fastsoftmax out=", "min", 2.0, info=True),
                     BarCheck("torch/ce small", "torch CE fwd+bwd / fused CE (65536x10)",
                              "torch", "fastsoftmax", "min", 8.0),
                     BarCheck("torch/ce small out", "(info) torch CE / fused CE with out= (65536x10)",
                              "torch", "fastsoftmax out=", "min", 8.0, info=True)]),
        dict(key="f64", title="fused CE fwd+bwd 2048x32000 float64", build=_build_f64,
             checks=[BarCheck("ce64/memcpy", "fused CE fwd+bwd float64 (out=) / np.copyto float64",
                              "fastsoftmax out=", "memcpy", "max", 1.5)]),
        dict(key="row", title="softmax 1x10000000 float32", build=_build_row,
             checks=[BarCheck("1t/%dt" % t, "softmax one row: 1 thread / %d threads" % t,
                              "1 thread", "%d threads" % t, "min", 1.6)]),
        dict(key="isa", title="fused CE fwd+bwd 2048x32000 float32, per ISA path", build=_build_isa,
             checks=[BarCheck("baseline/best", "baseline (SSE2) path / best path",
                              "isa=baseline", _best_non_baseline, "max", 3.0)]),
    ]


BAR_KEYS = ("ce", "ce_fwd", "softmax", "small", "f64", "row", "isa", "plot")


# Pause before each sample, so that it finds idle thread pools (measurements: benchmarks/README.md).
SETTLE_S = 0.15

# Shortest sample: its calls share the pool's wake-up after the pause, as a loop's calls do.
MIN_SAMPLE_S = 0.02
MAX_SAMPLE_CALLS = 1000


def interleaved(impls, repeats, min_sample=0.0, settle=SETTLE_S):
    """Time ``impls`` ([BarImpl]) in interleaved rounds: round r times every implementation
    once, in an order rotated by r (so none is always first after another).  One untimed
    warm-up call each first, and a pause of ``settle`` seconds before each sample (see
    SETTLE_S).  A sample repeats its call back to back until it has lasted ``min_sample``
    seconds (at most MAX_SAMPLE_CALLS calls) and records the mean.  -> {name: Timing}.
    """
    gc.collect()
    for im in impls:
        if im.pre:
            im.pre()
        im.fn()
    times = {im.name: [] for im in impls}
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            order = impls[r % len(impls):] + impls[:r % len(impls)]
            for im in order:
                if im.pre:
                    im.pre()
                if settle:
                    time.sleep(settle)
                fn = im.fn
                k = 0
                t0 = time.perf_counter()
                while True:
                    fn()
                    k += 1
                    dt = time.perf_counter() - t0
                    if dt >= min_sample or k >= MAX_SAMPLE_CALLS:
                        break
                times[im.name].append(dt / k)
    finally:
        if was_enabled:
            gc.enable()
    return {n: Timing(v) for n, v in times.items()}


def _sanity(key, ctx):
    """Check that the compared implementations compute the same thing (not timed).
    Returns a list of warning strings."""
    fs = _fs()
    warn = []
    if key in ("ce", "small"):
        shape = (2048, 32000) if key == "ce" else (65536, 10)
        x, t = _ctx_inputs(ctx, shape, np.float32)
        loss, g = fs.cross_entropy(x, t, return_grad=True)
        if bl.has_torch():
            lt, gt = bl.torch_cross_entropy(x, t, return_grad=True)
            if not (abs(float(loss) - float(lt)) <= 1e-4 * (1 + abs(float(lt)))
                    and np.allclose(g, gt, rtol=1e-4, atol=1e-4 / shape[0])):
                warn.append("%s: fastsoftmax and torch cross-entropy disagree" % key)
        if key == "small" and bl.has_sklearn():
            ls, gs = bl.sklearn_multinomial_loss(shape[1]).loss_gradient(
                y_true=t.astype(np.float32), raw_prediction=x, n_threads=ctx["threads"])
            if not (abs(float(ls.mean()) - float(loss)) <= 1e-4 * (1 + abs(float(loss)))
                    and np.allclose(gs / shape[0], g, rtol=1e-4, atol=1e-4 / shape[0])):
                warn.append("small: fastsoftmax and sklearn disagree")
    elif key == "softmax" and bl.has_torch():
        x, _ = _ctx_inputs(ctx, (2048, 32000), np.float32)
        if not np.allclose(fs.softmax(x), bl.torch_softmax(x), rtol=1e-4, atol=1e-9):
            warn.append("softmax: fastsoftmax and torch disagree")
    return warn


def run_bars(keys, threads=2, repeats=7, log=print, settle=SETTLE_S, restore=None):
    """Measure the bar groups named in ``keys``; returns a list of result dicts.  ``settle``:
    the pause before each sample; ``restore``: fastsoftmax's thread setting after each group
    (default ``threads``; 0 for the library's default)."""
    restore = threads if restore is None else restore
    fs = _fs()
    cfg = fs._config
    isa0 = cfg.get_isa()
    ctx = {"threads": threads}
    results = []
    try:
        for grp in bar_groups(threads):
            if grp["key"] not in keys:
                continue
            log("\n[%s] %s" % (grp["key"], grp["title"]))
            impls = grp["build"](ctx)
            for w in _sanity(grp["key"], ctx):
                log("WARNING: " + w)
            load0 = load_average()
            try:
                times = interleaved(impls, repeats, MIN_SAMPLE_S, settle=settle)
            finally:
                # restore what the pre() hooks may have changed
                cfg.set_isa(isa0)
                fs.set_num_threads(restore)
            load1 = load_average()
            for im in impls:
                tm = times[im.name]
                log("  %-18s best %9.3f ms  median %9.3f ms   %s"
                    % (im.name, tm.best * 1e3, tm.median * 1e3, im.note))
            checks = []
            for ck in grp["checks"]:
                den = ck.den(times) if callable(ck.den) else ck.den
                if ck.num not in times or den not in times:
                    checks.append(dict(check=ck, num=ck.num, den=den, ratio=None, ratio_med=None,
                                       met=None))
                    log("  %-40s skipped (%s not available)" % (ck.text, ck.num if ck.num not in times
                                                                 else den))
                    continue
                ratio = times[ck.num].best / times[den].best
                ratio_med = times[ck.num].median / times[den].median
                met = ratio <= ck.required if ck.kind == "max" else ratio >= ck.required
                checks.append(dict(check=ck, num=ck.num, den=den, ratio=ratio, ratio_med=ratio_med,
                                   met=met))
                log("  %-52s %6.2fx (median %5.2fx)  required %s %.2fx  %s"
                    % (ck.text + (" [%s]" % den if callable(ck.den) else ""), ratio, ratio_med,
                       "<=" if ck.kind == "max" else ">=", ck.required,
                       ("(would be %s)" % ("met" if met else "not met")) if ck.info
                       else ("MET" if met else "NOT MET")))
            results.append(dict(group=grp, impls=impls, times=times, checks=checks,
                                load=(load0, load1)))
            del impls
            ctx.pop("_inputs", None)
            gc.collect()
    finally:
        cfg.set_isa(isa0)
        fs.set_num_threads(restore)
    return results


def run_gbps(threads=2, repeats=3, total=1 << 26, classes=(10, 100, 1000, 10000, 32000, 100000),
             log=print, settle=SETTLE_S):
    """GB/s = 2*N*C*4 / time against C (N = total // C, float32): fastsoftmax fused CE
    fwd+bwd (out=), NumPy, PyTorch, np.copyto.  -> list of (C, N, {name: Timing})."""
    fs = _fs()
    rows = []
    log("\n[plot] GB/s against C, float32, N*C = %d, %d interleaved rounds" % (total, repeats))
    for c in classes:
        n = max(1, total // c)
        x, t = make_inputs((n, c), np.float32)
        g, dst = _touched_like(x), _touched_like(x)
        impls = [BarImpl("fastsoftmax", lambda: fs.cross_entropy(x, t, return_grad=True, out=g)),
                 BarImpl("numpy", lambda: bl.numpy_cross_entropy(x, t, return_grad=True))]
        if bl.has_torch():
            impls.append(BarImpl("torch", lambda: bl.torch_cross_entropy(x, t, return_grad=True)))
        impls.append(BarImpl("memcpy", lambda: np.copyto(dst, x)))
        times = interleaved(impls, repeats, settle=settle)
        nbytes = 2 * n * c * 4
        log("  C=%-7d N=%-9d " % (c, n) + "  ".join(
            "%s %.2f GB/s" % (k, nbytes / v.best / 1e9) for k, v in times.items()))
        rows.append((c, n, times))
        del x, t, g, dst, impls
        gc.collect()
    return rows


def _md_machine(threads, repeats, quick, settle=SETTLE_S, defaults=False):
    import fastsoftmax

    cfg = fastsoftmax._config
    avail = available_cpus()
    vers = ["fastsoftmax %s" % getattr(fastsoftmax, "__version__", "?"), "NumPy %s" % np.__version__]
    torch = optional_import("torch")
    if torch is not None:
        vers.append("PyTorch %s" % torch.__version__)
    try:
        import sklearn

        vers.append("scikit-learn %s" % sklearn.__version__)
    except Exception:
        pass
    vers.append("Python %s" % platform.python_version())
    try:
        with open("/proc/meminfo") as f:
            mem = "%.0f GiB RAM" % (int(f.readline().split()[1]) / 2**20)
    except Exception:
        mem = "RAM unknown"
    flags = cpu_flags()
    lines = [
        "| | |", "|---|---|",
        "| CPU | %s (%d logical CPUs, %d available%s), %s |"
        % (cpu_model(), os.cpu_count() or 0, avail, (", " + " ".join(flags)) if flags else "", mem),
        "| OS | %s |" % platform.platform(),
        "| versions | %s |" % ", ".join(vers),
        ("| threads | %d: every library's default (no thread variable or limit set); scikit-learn "
         "`n_threads=%d`; NumPy (`np.copyto`, `max`) is single-threaded |" % (threads, threads))
        if defaults else
        ("| threads | %d for fastsoftmax (`set_num_threads`), PyTorch (`torch.set_num_threads`) and "
         "scikit-learn (`n_threads`); NumPy (`np.copyto`, `max`) is single-threaded |" % threads),
        "| fastsoftmax build | %s |" % _build_id(),
        "| fastsoftmax ISA | %s (supported: %s; compiled: %s) |"
        % (cfg.get_isa(), ", ".join(cfg.supported_isas()), ", ".join(cfg.compiled_isas())),
        "| method | one process, interleaved rounds (every implementation once per round, order "
        "rotated, %s; a sample repeats its call "
        "back to back until it has lasted %d ms, and records the mean), 1 warm-up call each, %d rounds%s; "
        "ratios of best times, and of median times |"
        % ("a %.2f s pause before each so that thread pools are idle" % settle if settle
           else "no pause between samples (`--settle 0`)",
           MIN_SAMPLE_S * 1e3, repeats, " (--quick)" if quick else ""),
        "| date | %s |" % time.strftime("%Y-%m-%d %H:%M %Z"),
    ]
    return lines


def _build_id():
    """Extension module file and mtime, plus the git commit of a source checkout (if any)."""
    import fastsoftmax

    parts = []
    kern = getattr(fastsoftmax._config, "_kernels", None)
    f = getattr(kern, "__file__", None)
    if f:
        parts.append("%s built %s" % (os.path.basename(f),
                                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(f)))))
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastsoftmax.__file__)))
    if os.path.isdir(os.path.join(root, ".git")):
        try:
            import subprocess

            rev = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
            if rev:
                parts.append("git %s" % rev)
        except Exception:
            pass
    return ", ".join(parts) or "unknown"


def write_markdown(path, results, gbps, threads, repeats, quick, plot_file=None, settle=SETTLE_S,
                   defaults=False):
    lines = ["# fastsoftmax performance bars", "",
             "Generated by `python benchmarks/bars.py`.", ""]
    lines += _md_machine(threads, repeats, quick, settle, defaults)
    lines += ["", "## Bars", "",
              "| bar | measured | ratio (best) | ratio (median) | required | result |",
              "|---|---|---:|---:|---:|---|"]
    for res in results:
        times = res["times"]
        for c in res["checks"]:
            ck = c["check"]
            if c["ratio"] is None:
                lines.append("| %s | %s unavailable | n/a | n/a | %s %.2fx | skipped |"
                             % (ck.text, c["num"] if c["num"] not in times else c["den"],
                                "<=" if ck.kind == "max" else ">=", ck.required))
                continue
            meas = "%s %.1f ms / %s %.1f ms" % (c["num"], times[c["num"]].best * 1e3,
                                                c["den"], times[c["den"]].best * 1e3)
            lines.append("| %s | %s | %.2fx | %.2fx | %s %.2fx | %s |"
                         % (ck.text, meas, c["ratio"], c["ratio_med"],
                            "<=" if ck.kind == "max" else ">=", ck.required,
                            ("info (would be %s)" % ("met" if c["met"] else "not met")) if ck.info
                            else ("MET" if c["met"] else "**NOT MET**")))
    lines += ["", "## All timings", "",
              "| group | implementation | best (ms) | median (ms) | GB/s (best) | call |",
              "|---|---|---:|---:|---:|---|"]
    for res in results:
        grp = res["group"]
        shape = {"ce_fwd": (2048, 32000), "small": (65536, 10), "row": (1, 10_000_000)}.get(
            grp["key"], (2048, 32000))
        isz = 8 if grp["key"] == "f64" else 4
        for im in res["impls"]:
            tm = res["times"][im.name]
            nb = (1 if (grp["key"] == "ce_fwd") else 2) * shape[0] * shape[1] * isz
            lines.append("| %s | %s | %.3f | %.3f | %.1f | `%s` |"
                         % (grp["title"], im.name, tm.best * 1e3, tm.median * 1e3,
                            nb / tm.best / 1e9, im.note))
    lines.append("")
    lines.append("GB/s counts the bytes an ideal kernel moves: read + write N·C elements "
                 "(read only for the forward-only loss and for `max`).  Load average (1 min) "
                 "before/after each group: " + ", ".join(
                     "%s %.2f/%.2f" % (r["group"]["key"], r["load"][0], r["load"][1]) for r in results)
                 + ".")
    if gbps:
        names = list(gbps[0][2].keys())
        lines += ["", "## GB/s against the number of classes (fused CE fwd+bwd, float32)", "",
                  "GB/s = 2·N·C·4 bytes / best time, N = 2^%d // C; fastsoftmax with `out=`, NumPy "
                  "and PyTorch allocate their gradient; memcpy = `np.copyto` into a preallocated array."
                  % int(round(np.log2(gbps[0][0] * gbps[0][1]))), "",
                  "| C | N | " + " | ".join(names) + " |",
                  "|---:|---:|" + "---:|" * len(names)]
        for c, n, times in gbps:
            nb = 2 * n * c * 4
            lines.append("| %d | %d | " % (c, n) + " | ".join(
                "%.1f" % (nb / times[k].best / 1e9) if k in times else "n/a" for k in names) + " |")
        if plot_file:
            lines += ["", "![GB/s against C](%s)" % plot_file]
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def plot_gbps(path, gbps, threads):
    """Write the GB/s-vs-C PNG; returns False when matplotlib is not importable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(gbps[0][2].keys())
    style = {"fastsoftmax": dict(marker="o", lw=2), "numpy": dict(marker="s"),
             "torch": dict(marker="^"), "memcpy": dict(ls="--", color="gray")}
    labels = {"fastsoftmax": "fastsoftmax fused CE fwd+bwd (out=)", "numpy": "NumPy CE fwd+bwd",
              "torch": "PyTorch CE fwd+bwd", "memcpy": "np.copyto (memcpy)"}
    cs = [c for c, _, _ in gbps]
    for k in names:
        ys = [2 * n * c * 4 / times[k].best / 1e9 for c, n, times in gbps]
        ax.plot(cs, ys, label=labels.get(k, k), **style.get(k, {}))
    ax.set_xscale("log")
    ax.set_xlabel("number of classes C (N·C ≈ 2^%d, float32)"
                  % int(round(np.log2(gbps[0][0] * gbps[0][1]))))
    ax.set_ylabel("GB/s  (2·N·C·4 bytes / time)")
    ax.set_title("Cross-entropy forward+backward, %d threads, %s" % (threads, cpu_model()), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def bars_main(argv=None, prog=None):
    """Command line of ``benchmarks/bars.py``."""
    import argparse

    p = argparse.ArgumentParser(
        prog=prog,
        description="Measure fastsoftmax's performance bars in one process (interleaved rounds, "
                    "best-of-N and median), print each ratio against its requirement with "
                    "MET / NOT MET, write bars.md and (with matplotlib) gbps_vs_classes.png.")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for fastsoftmax, PyTorch and scikit-learn (default: %(default)s); "
                        "0: every library's own default, no thread variable or limit set")
    p.add_argument("--settle", type=float, default=SETTLE_S, metavar="SECONDS",
                   help="pause before each sample so that thread pools are idle (default: "
                        "%(default)s; 0: samples back to back, as in a loop)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved timed rounds per bar group (default: 7, or 3 with --quick)")
    p.add_argument("--only", default=None, metavar="BAR[,BAR]",
                   help="measure only these groups: %s (default: all)" % ", ".join(BAR_KEYS))
    p.add_argument("--out", default=None, metavar="DIR",
                   help="directory for bars.md and gbps_vs_classes.png (default: %s)"
                        % RESULTS_DIR)
    p.add_argument("--quick", action="store_true",
                   help="3 rounds, and the GB/s plot on N*C = 2^24 instead of 2^26 elements")
    p.add_argument("--strict", action="store_true", help="exit status 1 when a bar is NOT MET")
    a = p.parse_args(argv)
    if a.threads < 0:
        p.error("--threads must be >= 0")
    if a.settle < 0:
        p.error("--settle must be >= 0")
    repeats = a.repeats if a.repeats is not None else (3 if a.quick else 7)
    if repeats < 1:
        p.error("--repeats must be >= 1")
    keys = BAR_KEYS if a.only is None else tuple(k.strip() for k in a.only.split(",") if k.strip())
    bad = [k for k in keys if k not in BAR_KEYS]
    if bad or not keys:
        p.error("--only: unknown group(s) %s; choose from %s" % (", ".join(bad), ", ".join(BAR_KEYS)))
    out_dir = a.out or RESULTS_DIR

    fs = _fs()
    defaults = a.threads == 0
    if defaults:
        threads = fs.get_num_threads()
    else:
        threads = a.threads
        limiter = set_threads(threads)  # noqa: F841  (keep the limits alive)
        fs.set_num_threads(threads)
    try:
        for line in machine_header():
            print(line)
        print("bars: %d threads%s, %d interleaved rounds per group, %s, load average %.2f"
              % (threads, " (the libraries' defaults)" if defaults else "", repeats,
                 "a %.2f s pause before each sample" % a.settle if a.settle else "no pause",
                 load_average()), flush=True)
        if load_average() > 0.7:
            print("note: the machine is not idle (load average %.2f); absolute times may be off, "
                  "ratios measured side by side hold better" % load_average())
        log = lambda s: print(s, flush=True)  # noqa: E731
        results = run_bars(keys, threads, repeats, log=log, settle=a.settle,
                           restore=0 if defaults else threads)
        gbps = None
        if "plot" in keys:
            gbps = run_gbps(threads, max(3, repeats // 2) if not a.quick else 2,
                            total=(1 << 24) if a.quick else (1 << 26), log=log, settle=a.settle)
        os.makedirs(out_dir, exist_ok=True)
        plot_name = None
        if gbps:
            png = os.path.join(out_dir, "gbps_vs_classes.png")
            if plot_gbps(png, gbps, threads):
                plot_name = "gbps_vs_classes.png"
                print("wrote %s" % png)
            else:
                print("matplotlib not importable: no plot")
        md = os.path.join(out_dir, "bars.md")
        write_markdown(md, results, gbps, threads, repeats, a.quick, plot_name, settle=a.settle,
                       defaults=defaults)
        print("wrote %s" % md)
        checks = [c for r in results for c in r["checks"] if not c["check"].info]
        print("\nsummary:")
        for c in checks:
            ck = c["check"]
            if c["ratio"] is None:
                print("  %-60s skipped" % ck.text)
            else:
                print("  %-60s %6.2fx  (required %s %.2fx)  %s"
                      % (ck.text, c["ratio"], "<=" if ck.kind == "max" else ">=", ck.required,
                         "MET" if c["met"] else "NOT MET"))
        n_fail = sum(1 for c in checks if c["met"] is False)
        print("%d of %d bars met" % (sum(1 for c in checks if c["met"]), len(checks)))
    finally:
        fs.set_num_threads(0)  # the library default again
    return 1 if (a.strict and n_fail) else 0
