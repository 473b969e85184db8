#!/usr/bin/env python
"""Side-by-side timing of the loss family (sigmoid, binary cross-entropy, the backward
functions, z_loss, float16) against PyTorch and plain NumPy.

Cases (float32 unless said; fastsoftmax writes into preallocated outputs where it can,
the others allocate theirs as their users would):
  * binary cross-entropy with logits, forward + backward (fused), multi-label targets;
  * sigmoid;
  * softmax_backward and log_softmax_backward (the vector-Jacobian products);
  * cross-entropy with z_loss vs without (the cost of the extra term);
  * float16 softmax and cross-entropy forward + backward.

Every case is timed in interleaved rounds (``_harness.interleaved``), so that
the machine's drifts affect every implementation alike; ratios are of the best times.

    python benchmarks/loss_family.py                  # 2 threads, writes results/loss_family.md
    python benchmarks/loss_family.py --threads 1 --repeats 9 --out -
"""

import argparse
import os
import sys

import numpy as np

try:
    import fastsoftmax as fs
except ImportError:  # run from a checkout with an in-place build
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import fastsoftmax as fs
import _harness  # noqa: E402
from _harness import BarImpl  # noqa: E402


def _torch():
    return _harness.optional_import("torch")


def _numpy_bce(x, t, pw):
    """Stable BCE with logits and its gradient in NumPy (what a user would write)."""
    e = np.exp(-np.abs(x))
    sp = np.log1p(e) + np.maximum(-x, 0)          # softplus(-x)
    lw = 1 + (pw - 1) * t
    loss = np.mean((1 - t) * x + lw * sp)
    s = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    grad = (lw * s - pw * t) / x.size
    return loss, grad


def case_bce(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32) * 3
    t = (rng.random(shape) < 0.1).astype(np.float32)
    pw = (rng.random(shape[-1]) * 4 + 1).astype(np.float32)
    g = np.zeros_like(x)
    impls = [BarImpl("fastsoftmax", lambda: fs.binary_cross_entropy_with_logits(
                 x, t, pos_weight=pw, return_grad=True, out=g)),
             BarImpl("numpy", lambda: _numpy_bce(x, t, pw))]
    torch = _torch()
    if torch is not None:
        xt, tt, pwt = torch.tensor(x, requires_grad=True), torch.tensor(t), torch.tensor(pw)

        def run():
            xt.grad = None
            torch.nn.functional.binary_cross_entropy_with_logits(xt, tt, pos_weight=pwt).backward()
        impls.append(BarImpl("torch", run))
    return impls


def case_sigmoid(shape):
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * 3
    y = np.zeros_like(x)

    def numpy_sigmoid():
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    impls = [BarImpl("fastsoftmax", lambda: fs.sigmoid(x, out=y)), BarImpl("numpy", numpy_sigmoid)]
    torch = _torch()
    if torch is not None:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        impls.append(BarImpl("torch", lambda: torch.sigmoid(xt, out=yt)))
    return impls


def case_backward(shape, log):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32) * 3
    y = fs.log_softmax(x) if log else fs.softmax(x)
    g = rng.standard_normal(shape, dtype=np.float32)
    out = np.zeros_like(x)
    if log:
        impls = [BarImpl("fastsoftmax", lambda: fs.log_softmax_backward(y, g, out=out)),
                 BarImpl("numpy", lambda: g - np.exp(y) * g.sum(axis=-1, keepdims=True))]
    else:
        impls = [BarImpl("fastsoftmax", lambda: fs.softmax_backward(y, g, out=out)),
                 BarImpl("numpy", lambda: y * (g - (y * g).sum(axis=-1, keepdims=True)))]
    torch = _torch()
    if torch is not None:
        yt, gt = torch.from_numpy(y), torch.from_numpy(g)
        fn = torch._log_softmax_backward_data if log else torch._softmax_backward_data
        impls.append(BarImpl("torch", lambda: fn(gt, yt, 1, torch.float32)))
    return impls


def case_zloss(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    t = rng.integers(0, shape[-1], shape[0])
    g = np.zeros_like(x)
    impls = [BarImpl("fastsoftmax z_loss=1e-4", lambda: fs.cross_entropy(x, t, z_loss=1e-4, return_grad=True, out=g)),
             BarImpl("fastsoftmax", lambda: fs.cross_entropy(x, t, return_grad=True, out=g))]
    torch = _torch()
    if torch is not None:
        xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t)

        def run():
            xt.grad = None
            loss = torch.nn.functional.cross_entropy(xt, tt)
            loss = loss + 1e-4 * (torch.logsumexp(xt, 1) ** 2).mean()
            loss.backward()
        impls.append(BarImpl("torch z_loss=1e-4", run))
    return impls


def case_half_softmax(shape):
    x32 = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    x16 = x32.astype(np.float16)
    y16, y32 = np.zeros_like(x16), np.zeros_like(x32)
    impls = [BarImpl("fastsoftmax float16", lambda: fs.softmax(x16, out=y16)),
             BarImpl("fastsoftmax float32", lambda: fs.softmax(x32, out=y32)),
             BarImpl("fastsoftmax on a float32 copy", lambda: fs.softmax(x16.astype(np.float32)).astype(np.float16))]
    torch = _torch()
    if torch is not None:
        xt = torch.from_numpy(x16)
        impls.append(BarImpl("torch float16", lambda: torch.softmax(xt, 1)))
    return impls


def case_half_ce(shape):
    rng = np.random.default_rng(0)
    x16 = rng.standard_normal(shape, dtype=np.float32).astype(np.float16)
    t = rng.integers(0, shape[-1], shape[0])
    g16 = np.zeros_like(x16)
    impls = [BarImpl("fastsoftmax float16", lambda: fs.cross_entropy(x16, t, return_grad=True, out=g16))]
    torch = _torch()
    if torch is not None:
        xt, tt = torch.tensor(x16, requires_grad=True), torch.tensor(t)

        def run():
            xt.grad = None
            torch.nn.functional.cross_entropy(xt, tt).backward()
        try:
            run()
            impls.append(BarImpl("torch float16", run))
        except RuntimeError:  # a torch build without float16 kernels on the CPU
            pass
    return impls


CASES = [
    ("bce", "BCE with logits fwd+bwd (pos_weight) 4096x1000", lambda: case_bce((4096, 1000))),
    ("bce_small", "BCE with logits fwd+bwd (pos_weight) 65536x10", lambda: case_bce((65536, 10))),
    ("sigmoid", "sigmoid 4096x1000", lambda: case_sigmoid((4096, 1000))),
    ("softmax_bw", "softmax_backward 4096x1000", lambda: case_backward((4096, 1000), False)),
    ("log_softmax_bw", "log_softmax_backward 4096x1000", lambda: case_backward((4096, 1000), True)),
    ("zloss", "CE fwd+bwd with z_loss 2048x32000", lambda: case_zloss((2048, 32000))),
    ("half_softmax", "softmax float16 2048x32000", lambda: case_half_softmax((2048, 32000))),
    ("half_ce", "CE fwd+bwd float16 2048x32000", lambda: case_half_ce((2048, 32000))),
]


def run(keys=None, threads=2, repeats=7, log=print):
    """-> [(key, title, {name: Timing}, first_name)] for the selected cases."""
    limiter = _harness.set_threads(threads)  # noqa: F841 (keeps the threadpoolctl limits alive)
    results = []
    for key, title, build in CASES:
        if keys and key not in keys:
            continue
        impls = build()
        times = _harness.interleaved(impls, repeats, min_sample=_harness.MIN_SAMPLE_S)
        results.append((key, title, times, impls[0].name))
        log("%-55s " % title + "  ".join("%s %.3f ms" % (n, t.best * 1e3) for n, t in times.items()))
    return results


def markdown(results, threads, repeats):
    lines = ["# Loss family: fastsoftmax vs PyTorch and NumPy", "", "```"] + _harness.machine_header() + ["```", "",
             "%d threads for every library, best of %d interleaved rounds; ratio = time of the other "
             "implementation / time of the first row of the case (> 1: the first is faster)." % (threads, repeats),
             "", "| case | implementation | best (ms) | ratio |", "|---|---|---:|---:|"]
    for key, title, times, first in results:
        base = times[first].best
        for k, (name, t) in enumerate(times.items()):
            lines.append("| %s | %s | %.3f | %s |" % (title if k == 0 else "", name, t.best * 1e3,
                                                       "1" if name == first else "%.2f×" % (t.best / base)))
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="threads for every library (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default: %(default)s)")
    p.add_argument("--cases", default="", help="comma-separated keys: " + ",".join(k for k, _, _ in CASES))
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "loss_family.md"),
                   help="Markdown output file, '-' for stdout only (default: %(default)s)")
    a = p.parse_args(argv)
    keys = [k.strip() for k in a.cases.split(",") if k.strip()] or None
    results = run(keys, a.threads, a.repeats)
    text = markdown(results, a.threads, a.repeats)
    if a.out == "-":
        sys.stdout.write(text)
    else:
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)
        print("wrote", a.out)


if __name__ == "__main__":
    main()
