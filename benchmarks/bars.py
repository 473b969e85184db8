#!/usr/bin/env python
"""fastsoftmax's performance bars, measured side by side in one process.

    python benchmarks/bars.py                 # all bars + GB/s plot, 2 threads (about 3 minutes)
    python benchmarks/bars.py --quick         # 3 rounds, smaller plot inputs
    python benchmarks/bars.py --only ce,softmax --repeats 11
    python benchmarks/bars.py --threads 0 --settle 0   # library defaults, samples back to back

Bars (float32 unless said, --threads threads, 2048x32000 unless said):
  ce       fused CE fwd+bwd (out=) <= 1.25x np.copyto;  torch CE fwd+bwd >= 6x slower
  ce_fwd   CE loss only <= 1.5x logits.max(axis=-1)
  softmax  softmax (out=) <= 1.25x np.copyto;  torch.softmax >= 3x slower
  small    65536x10 fused CE: sklearn HalfMultinomialLoss >= 2x slower, torch >= 8x slower
  f64      float64 fused CE (out=) <= 1.5x np.copyto (float64)
  row      1x10,000,000 softmax: 1 thread >= 1.6x slower than --threads threads
  isa      baseline (SSE2) path <= 3x the best path, fused CE
  plot     GB/s against C (fused CE fwd+bwd; fastsoftmax, NumPy, PyTorch, memcpy)

Each group is timed in interleaved rounds (every implementation once per round, order
rotated, one warm-up call each); ratios use the best times, with the ratio of medians
alongside.  Writes <out>/bars.md and, when matplotlib is importable,
<out>/gbps_vs_classes.png (default out: benchmarks/results).  The code lives in
benchmarks/_harness.py (bars_main), shared with benchmarks/test_bench_bars.py.
"""

import os
import sys


def _early_threads(argv):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "2"


if __name__ == "__main__":
    # Before NumPy / torch are imported, so their pools start at the requested size.
    n = _early_threads(sys.argv[1:])  # 0: the libraries' defaults, no variable set
    if n.isdigit() and int(n) >= 1:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
            os.environ[var] = n
    try:
        import fastsoftmax  # noqa: F401
    except ImportError:  # run from a checkout with an in-place build
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import _harness

    sys.exit(_harness.bars_main(prog="python benchmarks/bars.py"))
