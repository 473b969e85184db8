"""Candidate sampling: fastsoftmax.sampling against TensorFlow (optional).

    python benchmarks/sampling.py [--rounds 7]

The bar (issue 14): sampling 8,192 unique log-uniform candidates from 1,000,000 classes at
least 2x faster than tf.random.log_uniform_candidate_sampler.  TensorFlow is optional
(pip install tensorflow-cpu); without it only fastsoftmax's times are printed.  The two are
timed in alternating rounds in one process, on 2 threads each.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fastsoftmax as fs  # noqa: E402
from fastsoftmax import sampling  # noqa: E402


def median_time(fn, seconds=0.2):
    """The median time of calls of fn for `seconds` (at least 3 calls, after one warm-up)."""
    fn()
    times = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    fs.set_num_threads(2)
    try:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(2)
    except ImportError:
        tf = None
        print("TensorFlow is not installed (pip install tensorflow-cpu): fastsoftmax only")
    true = np.array([[0], [5], [999_999]], dtype=np.int64)
    gen = np.random.default_rng(0)
    ours = lambda: sampling.log_uniform_candidate_sampler(true, 1, 8192, True, 1_000_000, rng=gen)  # noqa: E731
    if tf is not None:
        t_true = tf.constant(true)

        def theirs():
            r = tf.random.log_uniform_candidate_sampler(t_true, 1, 8192, True, 1_000_000)
            r[0].numpy()
    a, b = [], []
    for _ in range(args.rounds):
        a.append(median_time(ours))
        if tf is not None:
            b.append(median_time(theirs))
    print(f"log-uniform, 8192 unique of 1,000,000 classes: fastsoftmax {np.median(a) * 1e3:.3f} ms", end="")
    if tf is not None:
        ratio = np.median(b) / np.median(a)
        print(f", TensorFlow {np.median(b) * 1e3:.3f} ms: {ratio:.2f}x faster (bar >= 2x: "
              f"{'MET' if ratio >= 2 else 'NOT MET'})")
    else:
        print()


if __name__ == "__main__":
    main()
