"""pytest-benchmark cases for the candidate samplers (benchmarks/sampling.py times the same calls
in interleaved rounds and prints the ratio to TensorFlow).

    pytest benchmarks/test_bench_sampling.py --benchmark-enable

TensorFlow's case is skipped when it is not installed (pip install tensorflow-cpu).
"""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import sampling

TRUE = np.array([[0], [5], [999_999]], dtype=np.int64)


@pytest.fixture(autouse=True)
def _two_threads():
    fs.set_num_threads(2)
    yield
    fs.set_num_threads(0)


@pytest.mark.benchmark(group="log-uniform 8192 unique of 10^6")
def test_fastsoftmax_log_uniform(benchmark):
    gen = np.random.default_rng(0)
    s, _, sc = benchmark(sampling.log_uniform_candidate_sampler, TRUE, 1, 8192, True, 1_000_000, rng=gen)
    assert len(np.unique(s)) == 8192 and np.all(sc > 0)


@pytest.mark.benchmark(group="log-uniform 8192 unique of 10^6")
def test_tensorflow_log_uniform(benchmark):
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is optional: pip install tensorflow-cpu")
    tf.config.threading.set_intra_op_parallelism_threads(2)
    t = tf.constant(TRUE)

    def run():
        return tf.random.log_uniform_candidate_sampler(t, 1, 8192, True, 1_000_000)[0].numpy()

    assert len(np.unique(benchmark(run))) == 8192


@pytest.mark.benchmark(group="unigram 4096 of 10^5 (alias table built once)")
def test_fastsoftmax_unigram(benchmark):
    counts = np.random.default_rng(1).zipf(1.5, 100_000).astype(np.float64)
    sampler = sampling.UnigramSampler(counts, 0.75)
    gen = np.random.default_rng(0)
    s, _, _ = benchmark(sampler.sample, TRUE[:2] % 100_000, 1, 4096, False, 100_000, rng=gen)
    assert s.shape == (4096,)
