"""pytest-benchmark cases for the sampled softmax loss at the shape of its bars (issue 14):
N=1024, D=512, num_classes=100,000, num_sampled=4,096, log-uniform sampler, float32, forward
and backward.  benchmarks/sampled.py times the same calls in interleaved rounds and prints the
ratios against the bars.

    FASTSOFTMAX_BENCH_THREADS=2 pytest benchmarks/test_bench_sampled.py --benchmark-enable

Every case runs on the conftest's thread count (BLAS and fastsoftmax alike).  TensorFlow's case
is skipped when it is not installed (pip install tensorflow-cpu); the full softmax (1-2 s a call)
runs three rounds.
"""

import numpy as np
import pytest

import fastsoftmax as fs
from conftest import THREADS

N, D, C, S = 1024, 512, 100_000, 4096
GROUP = "sampled softmax fwd+bwd N=1024 D=512 C=100000 S=4096"


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((C, D), dtype=np.float32) * 0.05
    b = np.zeros(C, np.float32)
    x = rng.standard_normal((N, D), dtype=np.float32)
    y = rng.integers(0, C, N)
    return w, b, x, y


@pytest.mark.benchmark(group=GROUP)
def test_three_products(benchmark, problem):
    """The floor: the three matrix products of the sampled loss alone, with (S + 1) weight rows."""
    w, _, x, _ = problem
    w_s = np.ascontiguousarray(w[:S + 1])

    def run():
        g = x @ w_s.T
        return g @ w_s, g.T @ x

    d_x, d_w = benchmark(run)
    assert d_x.shape == (N, D) and d_w.shape == (S + 1, D)


@pytest.mark.benchmark(group=GROUP)
def test_fastsoftmax_sampled(benchmark, problem):
    w, b, x, y = problem
    gen = np.random.default_rng(1)
    loss, g = benchmark(fs.sampled_softmax_loss, w, b, y, x, S, C, rng=gen, return_grad=True)
    assert np.isfinite(loss) and g.weights.shape == (g.ids.size, D) and g.ids.size >= S


@pytest.mark.benchmark(group=GROUP)
def test_tensorflow_sampled(benchmark, problem):
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is optional: pip install tensorflow-cpu")
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    w, b, x, y = problem
    tw, tb, tx, ty = tf.Variable(w), tf.Variable(b), tf.constant(x), tf.constant(y.reshape(-1, 1))

    def run():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sampled_softmax_loss(tw, tb, ty, tx, S, C))
        grads = tape.gradient(loss, [tw, tb])
        return loss.numpy(), [g.values.numpy() if hasattr(g, "values") else g.numpy() for g in grads]

    loss, _ = benchmark(run)
    assert np.isfinite(loss)


@pytest.mark.benchmark(group=GROUP)
def test_full_softmax(benchmark, problem):
    """What sampling saves: the full softmax cross-entropy over all classes (NumPy's products,
    fastsoftmax's fused kernel)."""
    w, b, x, y = problem

    def run():
        loss, g = fs.cross_entropy(x @ w.T + b, y, return_grad=True)
        return loss, g @ w, g.T @ x

    loss, _, _ = benchmark.pedantic(run, rounds=3, iterations=1)
    assert np.isfinite(loss)
