"""Sampled softmax forward+backward against its matrix products, the full softmax and TensorFlow.

    python benchmarks/sampled.py [--rounds 5] [--no-full]

The bars (issue 14; float32, 2 threads, N=1024, D=512, num_classes=100,000, num_sampled=4,096,
log-uniform sampler, return_grad=True):
  * at most 1.25x the time of the three matrix products alone (inputs @ Ws.T, G @ Ws, G.T @ inputs
    with NumPy, Ws of shape (4097, 512));
  * at least 1.5x faster than tf.nn.sampled_softmax_loss with its gradients (GradientTape), when
    TensorFlow is installed (pip install tensorflow-cpu);
  * at least 20x faster than the full softmax cross-entropy forward+backward (NumPy matmuls and
    fastsoftmax's fused kernel).
Each is timed in alternating rounds in one process; medians of the rounds.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastsoftmax as fs  # noqa: E402
from sampling import median_time  # noqa: E402  (benchmarks/sampling.py)

N, D, C, S = 1024, 512, 100_000, 4096


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-full", action="store_true", help="skip the full softmax (1-2 s a call)")
    args = ap.parse_args()
    fs.set_num_threads(2)
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((C, D), dtype=np.float32) * 0.05)
    b = np.zeros(C, np.float32)
    x = rng.standard_normal((N, D), dtype=np.float32)
    y = rng.integers(0, C, N)
    w_s = np.ascontiguousarray(w[:S + 1])
    gen = np.random.default_rng(1)

    def products():
        g = x @ w_s.T
        g @ w_s
        g.T @ x

    def ours():
        fs.sampled_softmax_loss(w, b, y, x, S, C, rng=gen, return_grad=True)

    def full():
        _, g = fs.cross_entropy(x @ w.T + b, y, return_grad=True)
        g @ w
        g.T @ x

    cases = {"three products": products, "fastsoftmax sampled": ours}
    if not args.no_full:
        cases["full softmax"] = full
    try:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tw, tb, tx = tf.Variable(w), tf.Variable(b), tf.constant(x)
        ty = tf.constant(y.reshape(-1, 1))

        def tensorflow():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.sampled_softmax_loss(tw, tb, ty, tx, S, C))
            [g.numpy() if hasattr(g, "numpy") else g.values.numpy() for g in tape.gradient(loss, [tw, tb])]
        cases["tensorflow"] = tensorflow
    except ImportError:
        print("TensorFlow is not installed (pip install tensorflow-cpu): its bar is skipped")
    times = {k: [] for k in cases}
    for _ in range(args.rounds):
        for k, fn in cases.items():
            times[k].append(median_time(fn, 0.3 if k != "full softmax" else 0.0))
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:22s} {v * 1e3:9.1f} ms")
    ours_t = med["fastsoftmax sampled"]
    print(f"sampled / three products: {ours_t / med['three products']:.2f}x (bar <= 1.25x)")
    if "tensorflow" in med:
        print(f"tensorflow / sampled:     {med['tensorflow'] / ours_t:.2f}x (bar >= 1.5x)")
    if "full softmax" in med:
        print(f"full softmax / sampled:   {med['full softmax'] / ours_t:.1f}x (bar >= 20x)")


if __name__ == "__main__":
    main()
