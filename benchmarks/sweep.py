#!/usr/bin/env python
"""Every class count, one thread and two: softmax and fused cross-entropy against the copy.

For C in {2, 10, 17, ..., 10^6} and N*C = 2^22 (16 MiB of float32, in cache or nearly)
and 2^26 (256 MiB, in memory), at 1 and 2 threads, float32:

* ``fs.softmax(x, out=o)`` and ``fs.cross_entropy(x, t, return_grad=True, out=g)``
  (mean reduction, int64 index targets) against ``np.copyto(dst, x)``, all three writing
  into arrays whose pages were touched before;
* ``torch.softmax`` and ``F.cross_entropy`` + ``backward()`` (which allocate their results:
  PyTorch has no ``out=`` for either) against those fastsoftmax calls (the bar: a loop of
  NumPy calls passes ``out=``, and the loss objects' ``inplace=True`` does), and against
  fastsoftmax's allocating calls ``fs.softmax(x)`` and ``fs.cross_entropy(x, t,
  return_grad=True)`` (reported: a fresh 256 MB array costs its page faults, and NumPy asks
  for huge pages for it, which on a machine whose memory is fragmented waits for the kernel's
  compaction: 1.5-5x the kernel's own time here, from run to run);
* JAX's jit-compiled softmax and ``value_and_grad`` of the cross-entropy, when JAX is
  importable (reported, not a bar).

Each cell times its implementations in interleaved rounds (``_harness.interleaved``: one
warm-up call each, a pause before each sample, samples of at least 20 ms).  Ratios are of
the best times.  The cross-entropy reads its int64 targets too (8 bytes a row), so its copy
reference is the copy's time scaled by (1 + 1/C) (float32).

The bars (issue #18), every cell:

* 2 threads: softmax and CE <= 1.25x the copy at N*C = 2^26, <= 1.5x at 2^22;
* 1 thread: C >= 1000 <= 1.6x; 100 <= C < 1000 <= 2x; C < 100 <= 2.5x (softmax), 3x (CE);
* PyTorch / fastsoftmax >= 1.2 for softmax and for CE fwd+bwd, same thread count.

With one thread the kernels of the same calls (``_kernels.softmax`` and
``_kernels.cross_entropy``, the bindings the functions call, without the Python layer's
checks) also run on N*C = 2^15 (the input and output, 128 KiB each, stay in L2; rows longer
than that: one row), and the kernels' exp alone (``_kernels.vexpneg``: load, exp, store) on
2^15 floats: their time per element against the copy's from memory is the arithmetic floor
of each cell, the ratio that one core's arithmetic allows at best (a call from memory is not
faster than from the caches).  Where the floor is above a bar, the bar needs less arithmetic per
element, not better overlap with memory.

Writes ``<out>/sweep.md`` (machine, the table, verdicts) and, when matplotlib is importable,
``<out>/gbps_sweep.png`` (GB/s = 2*N*C*4 / time against C, one panel per thread count):

    python benchmarks/sweep.py                          # everything, about 15 minutes on 2 cores
    python benchmarks/sweep.py --threads 1 --totals 22 --classes 65,100,200 --rounds 3
    python benchmarks/sweep.py --strict                 # exit status 1 when a bar is not met
"""

import argparse
import gc
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:
    import fastsoftmax  # noqa: F401
except ImportError:  # a checkout with an in-place build
    sys.path.insert(0, os.path.dirname(HERE))

import numpy as np

import _baselines as bl
from _harness import BarImpl, interleaved, machine_header, make_inputs, set_threads

CLASSES = (2, 10, 17, 32, 64, 65, 100, 200, 300, 500, 1000, 2000, 3000, 10000, 32000, 100000, 1000000)


def copy_bar(threads, total_log2, c, op):
    """The largest allowed time / copy time for one cell (issue #18)."""
    if threads >= 2:
        return 1.25 if total_log2 >= 26 else 1.5
    if c >= 1000:
        return 1.6
    if c >= 100:
        return 2.0
    return 2.5 if op == "softmax" else 3.0


TORCH_BAR = 1.2


def _touched(x):
    out = np.empty_like(x)
    out.fill(0)
    return out


def _jax_cell(x, t):
    jax = bl.optional_import("jax")
    if jax is None:
        return []
    from fastsoftmax.bench import _jax_functions

    fns = _jax_functions(x, t)
    return [BarImpl("jax_softmax", fns["softmax"]), BarImpl("jax_ce", fns["ce"])]


def measure_cell(fs, c, total_log2, rounds, settle, with_torch):
    n = max(1, (1 << total_log2) // c)
    x, t = make_inputs((n, c), np.float32)
    o, g, dst = _touched(x), _touched(x), _touched(x)
    impls = [BarImpl("copy", lambda: np.copyto(dst, x)),
             BarImpl("softmax", lambda: fs.softmax(x, out=o)),
             BarImpl("ce", lambda: fs.cross_entropy(x, t, return_grad=True, out=g))]
    if with_torch:
        impls += [BarImpl("softmax_alloc", lambda: fs.softmax(x)),
                  BarImpl("ce_alloc", lambda: fs.cross_entropy(x, t, return_grad=True)),
                  BarImpl("torch_softmax", lambda: bl.torch_softmax(x)),
                  BarImpl("torch_ce", lambda: bl.torch_cross_entropy(x, t, return_grad=True))]
    impls += _jax_cell(x, t)
    times = interleaved(impls, rounds, min_sample=0.02, settle=settle)
    del impls, x, t, o, g, dst
    gc.collect()
    return n, {k: v.best for k, v in times.items()}


FLOOR_LOG2 = 15  # 128 KiB in and as much out: in L2 (512 KiB a core on Zen 3)


def measure_floor(c, rounds, settle):
    """The kernels on N*C = 2^FLOOR_LOG2 (one row when C is longer), through the bindings that
    fs.softmax and fs.cross_entropy call, without the Python layer (its checks of the arguments,
    and the CE's pass over its targets, whose time per call would weigh on so short a call):
    seconds per element."""
    from fastsoftmax import _kernels

    n = max(1, (1 << FLOOR_LOG2) // c)
    x, t = make_inputs((n, c), np.float32)
    o, g = _touched(x), _touched(x)
    # the targets are classes (make_inputs), as fs.cross_entropy's check would find
    opts = _kernels.CrossEntropyOptions(target=t, grad_scale=1.0 / n, targets_checked=True)
    xv, ov, gv = (a.reshape(1, n, c) for a in (x, o, g))
    impls = [BarImpl("softmax", lambda: _kernels.softmax(xv, ov, False)),
             BarImpl("ce", lambda: _kernels.cross_entropy(xv, opts, None, gv))]
    times = interleaved(impls, rounds, min_sample=0.02, settle=settle)
    return {k: v.best / x.size for k, v in times.items()}


def measure_exp(rounds, settle):
    """The kernels' exp of x <= 0 alone (load, exp, store) on 2^FLOOR_LOG2 floats: seconds per element."""
    from fastsoftmax import _kernels

    x = -np.abs(np.random.default_rng(0).standard_normal(1 << FLOOR_LOG2, dtype=np.float32)) * 10
    y = _touched(x)
    times = interleaved([BarImpl("exp", lambda: _kernels.vexpneg(x, y))], rounds, min_sample=0.02, settle=settle)
    return times["exp"].best / x.size


def ratios(row):
    """The cell's ratios: softmax / copy, CE / scaled copy, torch / ours (allocating)."""
    c, tm = row["C"], row["t"]
    r = {"softmax": tm["softmax"] / tm["copy"], "ce": tm["ce"] / (tm["copy"] * (1 + 1 / c))}
    if "torch_softmax" in tm:
        r["torch_softmax"] = tm["torch_softmax"] / tm["softmax"]
        r["torch_ce"] = tm["torch_ce"] / tm["ce"]
        r["torch_softmax_alloc"] = tm["torch_softmax"] / tm["softmax_alloc"]
        r["torch_ce_alloc"] = tm["torch_ce"] / tm["ce_alloc"]
        r["alloc_softmax"] = tm["softmax_alloc"] / tm["softmax"]
    return r


def verdicts(row):
    r, bar = ratios(row), {}
    for op in ("softmax", "ce"):
        lim = copy_bar(row["threads"], row["total"], row["C"], op)
        bar[op] = (r[op] <= lim, lim)
        if "torch_" + op in r:
            bar["torch_" + op] = (r["torch_" + op] >= TORCH_BAR, TORCH_BAR)
    return bar


def floor_markdown(rows, floor):
    """The arithmetic floor of the one-thread cells (see the module's docstring)."""
    one = [r for r in rows if r["threads"] == 1]
    total = max(r["total"] for r in one)
    copy = {r["C"]: r["t"]["copy"] / (r["N"] * r["C"]) for r in one if r["total"] == total}
    mean_copy = sum(copy.values()) / len(copy)
    lines = ["## 1 thread: the arithmetic floor", "",
             "The kernels of the same calls (their bindings, without the Python layer's checks) on "
             "N·C = 2^%d (%g KiB in, as much out: in L2; longer rows: one row), ns per element, against "
             "the copy's ns per element at N·C = 2^%d, one thread (`floor x copy`: the least ratio one "
             "core's arithmetic allows the cell; CE's copy scaled by (1 + 1/C) as above).  The kernels' "
             "exp alone (load, exp, store; 2^%d floats): %.3f ns per element, %.2fx the copy's %.3f "
             "(mean over C)." % (FLOOR_LOG2, (4 << FLOOR_LOG2) / 1024, total, FLOOR_LOG2, floor["exp"] * 1e9,
                                 floor["exp"] / mean_copy, mean_copy * 1e9), "",
             "| C | softmax ns/el | CE ns/el | copy ns/el (2^%d) | softmax floor x copy | CE floor x copy "
             "| bar softmax / CE |" % total,
             "|---:|---:|---:|---:|---:|---:|---|"]
    for c, f in sorted(floor["cells"].items()):
        if c not in copy:
            continue
        lines.append("| %d | %.3f | %.3f | %.3f | %.2f | %.2f | %.1f / %.1f |" % (
            c, f["softmax"] * 1e9, f["ce"] * 1e9, copy[c] * 1e9, f["softmax"] / copy[c],
            f["ce"] / (copy[c] * (1 + 1 / c)), copy_bar(1, total, c, "softmax"), copy_bar(1, total, c, "ce")))
    return lines + [""]


def markdown(rows, header, floor=None):
    lines = ["# Every class count: softmax and fused cross-entropy against the copy", "",
             "`python benchmarks/sweep.py`; float32, int64 targets, mean reduction; ratios of the best",
             "times in interleaved rounds (`x copy`: time / `np.copyto` time, the CE's copy scaled by",
             "(1 + 1/C) for its targets; `torch / ours`: PyTorch's time / fastsoftmax's with `out=`;",
             "`(alloc)`: the same with fastsoftmax allocating its result as PyTorch does; `alloc / out`:",
             "fastsoftmax softmax allocating its result / with `out=`).",
             "A ratio in **bold** misses its bar.", "", "```"] + header + ["```", ""]
    n_missed = 0
    for threads in sorted({r["threads"] for r in rows}):
        lines += ["## %d thread%s" % (threads, "s" if threads > 1 else ""), "",
                  "| N·C | C | N | copy ms | softmax x copy | CE x copy | torch / ours softmax "
                  "| torch / ours CE | (alloc) softmax | (alloc) CE | alloc / out | GB/s copy | GB/s softmax "
                  "| GB/s CE |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in (r for r in rows if r["threads"] == threads):
            r, v, tm = ratios(row), verdicts(row), row["t"]
            nbytes = 2 * row["N"] * row["C"] * 4

            def cell(key, fmt="%.2f"):
                if key not in r:
                    return "–"
                s = fmt % r[key]
                return s if v[key][0] else "**%s**" % s
            n_missed += sum(not ok for ok, _ in v.values())
            info = {k: "%.2f" % r[k] if k in r else "–" for k in ("torch_softmax_alloc", "torch_ce_alloc")}
            lines.append("| 2^%d | %d | %d | %.3f | %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f | %.1f |" % (
                row["total"], row["C"], row["N"], tm["copy"] * 1e3, cell("softmax"), cell("ce"),
                cell("torch_softmax"), cell("torch_ce"), info["torch_softmax_alloc"], info["torch_ce_alloc"],
                "%.2f" % r["alloc_softmax"] if "alloc_softmax" in r else "–",
                nbytes / tm["copy"] / 1e9, nbytes / tm["softmax"] / 1e9, nbytes / tm["ce"] / 1e9))
        lines.append("")
    if floor:
        lines += floor_markdown(rows, floor)
    lines += ["Bars (issue #18): 2 threads <= 1.25x copy at 2^26, <= 1.5x at 2^22; 1 thread C >= 1000 "
              "<= 1.6x, 100 <= C < 1000 <= 2x, C < 100 <= 2.5x softmax / 3x CE; torch / ours (out=) >= 1.2.",
              "", "Cells missing a bar: %d." % n_missed]
    return "\n".join(lines) + "\n", n_missed


def plot(path, rows):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    thread_counts = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, len(thread_counts), figsize=(6.5 * len(thread_counts), 4.5), squeeze=False,
                             sharey=True)
    styles = {"copy": dict(color="0.4", ls="--", label="np.copyto"),
              "softmax": dict(color="C0", marker="o", ms=3, label="fastsoftmax softmax"),
              "ce": dict(color="C1", marker="o", ms=3, label="fastsoftmax CE fwd+bwd"),
              "torch_softmax": dict(color="C2", marker=".", label="torch.softmax"),
              "torch_ce": dict(color="C3", marker=".", label="torch CE fwd+bwd")}
    for ax, threads in zip(axes[0], thread_counts):
        for total, ls in ((26, "-"), (22, ":")):
            sel = [r for r in rows if r["threads"] == threads and r["total"] == total]
            if not sel:
                continue
            for key, st in styles.items():
                if key not in sel[0]["t"]:
                    continue
                st = dict(st)
                if total != 26:
                    st["label"] = None
                    st["ls"] = ls
                ys = [2 * r["N"] * r["C"] * 4 / r["t"][key] / 1e9 for r in sel]
                ax.plot([r["C"] for r in sel], ys, **st)
        ax.set_xscale("log")
        ax.set_xlabel("classes C")
        ax.set_title("float32, %d thread%s (solid: N·C = 2^26, dotted: 2^22)"
                     % (threads, "s" if threads > 1 else ""), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("GB/s (2·N·C·4 bytes / time)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="thread counts (default: %(default)s)")
    p.add_argument("--totals", default="22,26", help="log2(N*C) values (default: %(default)s)")
    p.add_argument("--classes", default=",".join(map(str, CLASSES)), help="class counts")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per cell (default: %(default)s)")
    p.add_argument("--settle", type=float, default=0.05,
                   help="pause before each sample, seconds (default: %(default)s)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-floor", action="store_true", help="leave out the one-thread arithmetic floor")
    p.add_argument("--out", default=os.path.join(HERE, "results"),
                   help="directory for sweep.md and gbps_sweep.png; '-' for none (default: %(default)s)")
    p.add_argument("--strict", action="store_true", help="exit status 1 when a bar is not met")
    a = p.parse_args(argv)
    thread_counts = [int(s) for s in a.threads.split(",")]
    totals = [int(s) for s in a.totals.split(",")]
    classes = [int(float(s)) for s in a.classes.split(",")]

    import fastsoftmax as fs

    with_torch = not a.no_torch and bl.has_torch()
    rows, floor = [], None
    for threads in thread_counts:
        limiter = set_threads(threads)  # noqa: F841 (kept alive for the loop)
        for total in totals:
            for c in classes:
                if c > (1 << total):
                    continue
                n, tm = measure_cell(fs, c, total, a.rounds, a.settle, with_torch)
                row = dict(threads=threads, total=total, C=c, N=n, t=tm)
                rows.append(row)
                r, v = ratios(row), verdicts(row)
                print("threads %d 2^%d C=%-7d N=%-8d " % (threads, total, c, n)
                      + "  ".join("%s %.2f%s" % (k, r[k], "" if v[k][0] else " MISS") for k in v)
                      + ("  alloc/out %.2f" % r["alloc_softmax"] if "alloc_softmax" in r else ""),
                      flush=True)
        if threads == 1 and not a.no_floor:
            floor = {"exp": measure_exp(a.rounds, a.settle), "cells": {}}
            for c in classes:
                floor["cells"][c] = f = measure_floor(c, a.rounds, a.settle)
                print("threads 1 floor C=%-7d softmax %.3f ns/el  ce %.3f ns/el" % (
                    c, f["softmax"] * 1e9, f["ce"] * 1e9), flush=True)
        del limiter
    header = machine_header() + ["rounds  : %d, pause %.2f s before each sample" % (a.rounds, a.settle)]
    text, n_missed = markdown(rows, header, floor)
    if a.out != "-":
        os.makedirs(a.out, exist_ok=True)
        png = os.path.join(a.out, "gbps_sweep.png")
        if plot(png, rows):
            text += "\n![GB/s against C](gbps_sweep.png)\n"
        with open(os.path.join(a.out, "sweep.md"), "w") as f:
            f.write(text)
    print(text)
    return 1 if a.strict and n_missed else 0


if __name__ == "__main__":
    sys.exit(main())
