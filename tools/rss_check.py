#!/usr/bin/env python3
"""Memory-leak check: the resident set size (RSS) growth of each public function over many calls.

Each function is called on tiny inputs, once on a path that succeeds and once on a path that
raises, ``--calls`` times per path (default 10**6) after a warm-up of a tenth of that (at
least 1000 calls), which lets the allocators and caches settle.  The RSS (``/proc/self/statm``)
is read after the warm-up and after the calls; a path whose RSS grows by more than
``--limit-mib`` MiB (default 1) fails, and the exit status is 1.  A leak of one small object
per call (16 bytes or more) grows by 16 MB in 10**6 calls.

    python tools/rss_check.py                  # the full check (about 15-25 minutes)
    python tools/rss_check.py --quick          # 20,000 calls per path, for development
    python tools/rss_check.py --only cross_entropy --calls 200000

"threaded" paths run the same tiny calls on the kernels' thread pool (2 threads, with the
pool's size thresholds lowered by ``_kernels.set_tuning``), so that the pool's per-call
bookkeeping is checked too.
"""

import argparse
import gc
import os
import resource
import sys
import time

import numpy as np

import fastsoftmax as fs
from fastsoftmax import _kernels, sampling

MIB = 1024 * 1024


def rss_bytes():
    """The current resident set size (Linux: /proc/self/statm; elsewhere the peak RSS)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _inputs():
    """The tiny inputs every call uses (made once: the check measures the calls, not these)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    p = fs.softmax(x)
    w = np.arange(15, dtype=np.float32).reshape(5, 3) / 10
    return dict(
        x=x, x16=x.astype(np.float16), x64=x.astype(np.float64), p=p, lp=fs.log_softmax(x),
        g=rng.standard_normal((3, 5)).astype(np.float32), t=np.array([0, 4, 2]), bad_t=np.array([0, 5, 2]),
        q=p.copy(), y=(rng.random((3, 5)) < 0.5).astype(np.float32), cw=np.linspace(0.5, 1.5, 5).astype(np.float32),
        out=np.empty((3, 5), np.float32), ints=np.ones((3, 5), np.int32), W=w, b=np.zeros(5, np.float32),
        h=rng.standard_normal((3, 3)).astype(np.float32), labels=np.array([1, 3, 0]),
        sv=sampling.log_uniform_candidate_sampler(np.array([[1], [3], [0]]), 1, 2, True, 5, rng=0),
        true=np.array([[1], [3], [0]]), unigrams=np.array([3.0, 1.0, 0.0, 2.0, 5.0]),
        sampler=sampling.UnigramSampler(np.array([3.0, 1.0, 0.0, 2.0, 5.0]), 0.75),
    )


def _raises(fn, *args, **kwargs):
    """A call that must raise TypeError, ValueError, IndexError or RuntimeError."""
    def call():
        try:
            fn(*args, **kwargs)
        except (TypeError, ValueError, IndexError, RuntimeError):
            return
        raise AssertionError(f"{getattr(fn, '__name__', fn)} did not raise")
    return call


def _loss_object(cls, options, *args):
    """forward and backward(2.0) of a new loss object."""
    def call():
        fn = cls(**options)
        fn(*args)
        fn.backward(2.0)
    return call


def paths(a):
    """{name: (success call, error call)} of every public function."""
    ce = fs.cross_entropy
    bce = fs.binary_cross_entropy_with_logits
    return {
        "softmax": (lambda: fs.softmax(a["x"]), _raises(fs.softmax, a["ints"].astype(complex))),
        "softmax, SciPy's options": (lambda: fs.logsumexp(a["x"], axis=None, b=a["g"], return_sign=True),
                                     _raises(fs.logsumexp, a["x"], axis=(0, 0))),
        "softmax out=": (lambda: fs.softmax(a["x"], out=a["out"]), _raises(fs.softmax, a["x"], out=a["x64"])),
        "softmax float16": (lambda: fs.softmax(a["x16"]), _raises(fs.softmax, a["x16"], axis=2)),
        "log_softmax": (lambda: fs.log_softmax(a["x"], axis=0), _raises(fs.log_softmax, a["x"], axis=1.0)),
        "logsumexp": (lambda: fs.logsumexp(a["x64"]), _raises(fs.logsumexp, a["x"], axis=5)),
        "cross_entropy": (lambda: ce(a["x"], a["t"]), _raises(ce, a["x"], a["bad_t"])),
        "cross_entropy grad, options": (
            lambda: ce(a["x"], a["t"], weight=a["cw"], label_smoothing=0.1, z_loss=1e-3, return_grad=True),
            _raises(ce, a["x"], a["t"], weight=a["cw"][:4], return_grad=True)),
        "cross_entropy out=, probabilities": (lambda: ce(a["x"], a["q"], return_grad=True, out=a["out"]),
                                              _raises(ce, a["x"], a["q"], label_smoothing=2.0)),
        "cross_entropy float16": (lambda: ce(a["x16"], a["t"], return_grad=True),
                                  _raises(ce, a["x16"], a["t"], ignore_index=2**70)),
        "sigmoid": (lambda: fs.sigmoid(a["x"]), _raises(fs.sigmoid, a["x"], out=a["ints"])),
        "binary_cross_entropy_with_logits": (
            lambda: bce(a["x"], a["y"], weight=a["cw"], pos_weight=a["cw"], return_grad=True),
            _raises(bce, a["x"], a["y"], pos_weight=a["cw"][:4])),
        "softmax_backward": (lambda: fs.softmax_backward(a["p"], a["g"]),
                             _raises(fs.softmax_backward, a["p"], a["x64"])),
        "log_softmax_backward": (lambda: fs.log_softmax_backward(a["lp"], a["g"], out=a["out"]),
                                 _raises(fs.log_softmax_backward, a["lp"], a["g"][:, :4])),
        "CrossEntropyLoss": (_loss_object(fs.CrossEntropyLoss, dict(label_smoothing=0.1), a["x"], a["t"]),
                             _raises(_loss_object(fs.CrossEntropyLoss, {}, a["x"], a["bad_t"]))),
        "BCEWithLogitsLoss": (_loss_object(fs.BCEWithLogitsLoss, dict(pos_weight=a["cw"]), a["x"], a["y"]),
                              _raises(fs.BCEWithLogitsLoss, weight="a")),
        "sampled_softmax_loss": (
            lambda: fs.sampled_softmax_loss(a["W"], a["b"], a["labels"], a["h"], 2, 5, sampled_values=a["sv"],
                                            return_grad=True),
            _raises(fs.sampled_softmax_loss, a["W"], a["b"], a["bad_t"], a["h"], 2, 5, sampled_values=a["sv"])),
        "nce_loss (sampler)": (lambda: fs.nce_loss(a["W"], None, a["labels"], a["h"], 2, 5, rng=1, return_grad=True),
                               _raises(fs.nce_loss, a["W"], None, a["labels"], a["h"], 2, 5, sampler="zipf")),
        "SampledSoftmaxLoss": (_loss_object(fs.SampledSoftmaxLoss, dict(num_sampled=2, num_classes=5, rng=0),
                                            a["W"], a["b"], a["labels"], a["h"]),
                               _raises(fs.SampledSoftmaxLoss, 0, 5)),
        "log_uniform_candidate_sampler": (
            lambda: sampling.log_uniform_candidate_sampler(a["true"], 1, 3, True, 5, rng=0),
            _raises(sampling.log_uniform_candidate_sampler, a["true"], 1, 6, True, 5, rng=0)),
        "fixed_unigram_candidate_sampler": (
            lambda: sampling.fixed_unigram_candidate_sampler(a["true"], 1, 3, False, 5, unigrams=a["unigrams"], rng=0),
            _raises(sampling.fixed_unigram_candidate_sampler, a["true"], 1, 3, False, 5, unigrams=-a["unigrams"])),
        "UnigramSampler.sample": (lambda: a["sampler"].sample(a["true"], 1, 3, True, 5, rng=0),
                                  _raises(a["sampler"].sample, a["true"], 1, 5, True, 5, rng=0)),
        "linear_cross_entropy": (
            lambda: fs.linear_cross_entropy(a["h"], a["W"], a["labels"], bias=a["b"], chunk_size=2, return_grad=True),
            _raises(fs.linear_cross_entropy, a["h"], a["W"], a["bad_t"])),
        "LinearCrossEntropyLoss": (_loss_object(fs.LinearCrossEntropyLoss, dict(label_smoothing=0.1), a["h"], a["W"],
                                                a["labels"], a["b"]),
                                   _raises(fs.LinearCrossEntropyLoss, chunk_size=0)),
        "set_num_threads": (lambda: fs.set_num_threads(fs.get_num_threads()), _raises(fs.set_num_threads, -1)),
    }


THREADED = ("softmax", "cross_entropy grad, options", "binary_cross_entropy_with_logits", "log_softmax_backward")


def measure(call, calls, warmup):
    """(RSS growth in bytes, microseconds per call) of ``calls`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    elapsed = time.perf_counter() - start
    gc.collect()
    return rss_bytes() - before, 1e6 * elapsed / calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10**6, help="calls per path after the warm-up (default 10**6)")
    parser.add_argument("--quick", action="store_true", help="20,000 calls per path")
    parser.add_argument("--limit-mib", type=float, default=1.0, help="the largest growth allowed (MiB, default 1)")
    parser.add_argument("--only", help="the paths whose name contains this")
    args = parser.parse_args(argv)
    calls = 20_000 if args.quick else args.calls
    warmup = max(1000, calls // 10)
    table = paths(_inputs())
    runs = [(name, "ok", ok, False) for name, (ok, _) in table.items()]
    runs += [(name, "error", err, False) for name, (_, err) in table.items()]
    runs += [(name, "ok, threaded", table[name][0], True) for name in THREADED]
    if args.only:
        runs = [r for r in runs if args.only in r[0]]
    print(f"RSS growth over {calls:,} calls per path after {warmup:,} warm-up calls (limit {args.limit_mib:g} MiB); "
          f"RSS at start {rss_bytes() / MIB:.1f} MiB")
    print(f"{'function':40s} {'path':13s} {'us/call':>8s} {'growth KiB':>11s} {'bytes/call':>11s}")
    failed = []
    start = time.monotonic()
    for name, kind, call, threaded in runs:
        if threaded:
            fs.set_num_threads(2)
            _kernels.set_tuning(1, 0)  # every problem takes the pool
        try:
            growth, us = measure(call, calls, warmup)
        finally:
            fs.set_num_threads(0)
            _kernels.set_tuning(0, 0)
        bad = growth > args.limit_mib * MIB
        print(f"{name:40s} {kind:13s} {us:8.2f} {growth / 1024:11.1f} {growth / calls:11.3f}{'  FAIL' if bad else ''}",
              flush=True)
        if bad:
            failed.append(f"{name} ({kind})")
    print(f"rss_check: {len(runs)} paths, {len(failed)} over the limit{': ' + ', '.join(failed) if failed else ''}; "
          f"RSS at end {rss_bytes() / MIB:.1f} MiB; {time.monotonic() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
