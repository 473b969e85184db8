#!/usr/bin/env python
"""Side-by-side timing of fastsoftmax vs NumPy vs PyTorch, in one process, at one thread.

Default: 2048x32000 float32 logits (index targets, mean reduction):
  * fused cross-entropy forward+backward: fastsoftmax.cross_entropy(x, t, return_grad=True)
    vs plain NumPy float32 (log-softmax via max/logsumexp, loss, grad = (softmax - onehot)/N)
    vs torch.nn.functional.cross_entropy + loss.backward();
  * softmax: fastsoftmax.softmax vs plain NumPy vs torch.softmax.

The implementations are timed in interleaved rounds (round r times every implementation
once), after one warm-up call each, so slow drifts of the machine affect all of them
alike.  Ratios are computed from the best (minimum) time; medians are shown too.
The bar: fused CE fwd+bwd at least 2x faster than both NumPy and PyTorch at one
thread.  The script prints a Markdown table suitable for the README.

    python benchmarks/compare.py                      # defaults
    python benchmarks/compare.py --shape 8192x1000 --repeats 7 --threads 2
"""

import argparse
import os
import sys


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="2048x32000", help="NxC logits shape (default: %(default)s)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="logits dtype (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for every library (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed rounds, each timing every implementation once (default: %(default)s)")
    p.add_argument("--bar", type=float, default=2.0,
                   help="required speed-up of fused CE fwd+bwd over NumPy and PyTorch "
                        "(default: %(default)s)")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when the bar is not met")
    a = p.parse_args(argv)
    if a.threads < 1 or a.repeats < 1:
        p.error("--threads and --repeats must be >= 1")
    return a


def main(argv=None):
    args = _parse_args(argv)
    # Before NumPy / torch are imported, so their pools start at the requested size.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    try:
        import fastsoftmax as fs
    except ImportError:  # run from a checkout with an in-place build
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import fastsoftmax as fs
    import gc
    import statistics
    import time

    import numpy as np

    import _baselines as bl
    import _harness

    shape = _harness.parse_shapes(args.shape)[0]
    dtype = np.dtype(args.dtype)
    have_torch = bl.has_torch()
    limiter = _harness.set_threads(args.threads)  # noqa: F841  (keep the limits alive)

    for line in _harness.machine_header():
        print(line)
    print("shape %s %s, %d thread(s), %d interleaved rounds after 1 warm-up call each"
          % (_harness.shape_str(shape), dtype.name, args.threads, args.repeats), flush=True)

    x, t = _harness.make_inputs(shape, dtype)
    ops = [
        ("cross-entropy fwd+bwd", "ce_fwd_bwd", [
            ("fastsoftmax", lambda: fs.cross_entropy(x, t, return_grad=True)),
            ("numpy", lambda: bl.numpy_cross_entropy(x, t, return_grad=True)),
            ("torch", lambda: bl.torch_cross_entropy(x, t, return_grad=True)),
        ]),
        ("softmax", "softmax", [
            ("fastsoftmax", lambda: fs.softmax(x)),
            ("numpy", lambda: bl.numpy_softmax(x)),
            ("torch", lambda: bl.torch_softmax(x)),
        ]),
    ]

    # sanity: the implementations agree (catches a benchmark of the wrong thing)
    l_fs, g_fs = fs.cross_entropy(x, t, return_grad=True)
    l_np, g_np = bl.numpy_cross_entropy(x, t, return_grad=True)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    if not (abs(float(l_fs) - float(l_np)) <= tol * (1 + abs(float(l_np)))
            and np.allclose(g_fs, g_np, rtol=tol, atol=tol / shape[0])):
        print("WARNING: fastsoftmax and NumPy cross-entropy disagree", flush=True)
    del l_fs, g_fs, l_np, g_np

    results = {}
    for title, op, impls in ops:
        if not have_torch:
            impls = [(n, f) for n, f in impls if n != "torch"]
        times = {n: [] for n, _ in impls}
        for _, f in impls:  # warm-up
            f()
        gc.collect()
        gc.disable()
        try:
            for _ in range(args.repeats):
                for n, f in impls:
                    t0 = time.perf_counter()
                    f()
                    times[n].append(time.perf_counter() - t0)
        finally:
            gc.enable()
        nbytes = _harness.bytes_moved(op, shape, dtype)
        res = {n: (min(v), statistics.median(v)) for n, v in times.items()}
        results[title] = res
        base_best, base_med = res["fastsoftmax"]
        print("\n%s, %s %s:" % (title, _harness.shape_str(shape), dtype.name))
        for n, (best, med) in res.items():
            ratio = "" if n == "fastsoftmax" else "  %s/fastsoftmax = %.2fx (median %.2fx)" % (
                n, best / base_best, med / base_med)
            print("  %-12s best %9.2f ms  median %9.2f ms  %6.2f GB/s%s"
                  % (n, best * 1e3, med * 1e3, nbytes / best / 1e9, ratio), flush=True)

    ce = results["cross-entropy fwd+bwd"]
    print()
    others = [n for n in ("numpy", "torch") if n in ce]
    met = all(ce[n][0] / ce["fastsoftmax"][0] >= args.bar for n in others)
    print("bar (fused CE fwd+bwd >= %.1fx faster than %s at %d thread(s)): %s"
          % (args.bar, " and ".join(others), args.threads, "MET" if met else "NOT MET"))

    names = {"numpy": "NumPy", "torch": "PyTorch"}
    cols = [n for n in ("numpy", "torch") if any(n in r for r in results.values())]
    print("\nMarkdown:\n")
    print("%s %s, %d thread%s, best of %d (%s):\n"
          % (_harness.shape_str(shape), dtype.name, args.threads, "" if args.threads == 1 else "s",
             args.repeats, _harness.cpu_model()))
    head = ["operation", "fastsoftmax"] + [names[c] for c in cols] + \
           ["%s / fastsoftmax" % names[c] for c in cols]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for title, res in results.items():
        base = res["fastsoftmax"][0]
        row = [title, "%.1f ms" % (base * 1e3)]
        row += ["%.1f ms" % (res[c][0] * 1e3) if c in res else "n/a" for c in cols]
        row += ["**%.2fx**" % (res[c][0] / base) if c in res else "n/a" for c in cols]
        print("| " + " | ".join(row) + " |")
    return 1 if (args.strict and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
