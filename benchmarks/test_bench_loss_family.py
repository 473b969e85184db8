"""pytest-benchmark cases for the loss family (sigmoid, BCE with logits, the backward
functions, z_loss, float16), one group per case of ``benchmarks/loss_family.py`` with the
same implementations, so a group's table shows the same comparison.

    pytest benchmarks/test_bench_loss_family.py --benchmark-enable
    pytest benchmarks/test_bench_loss_family.py --benchmark-enable -k bce

Threads: FASTSOFTMAX_BENCH_THREADS (default 2) for every library.  The ratios of
separately run cases drift with the machine's load more than those of
``python benchmarks/loss_family.py``, which times the implementations in interleaved rounds.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loss_family  # noqa: E402  (the case builders)

import _harness  # noqa: E402

THREADS = int(os.environ.get("FASTSOFTMAX_BENCH_THREADS", "2"))
_built = {}  # only the latest case's inputs stay alive


def _impls(key):
    if key not in _built:
        _built.clear()
        build = {k: b for k, _, b in loss_family.CASES}[key]
        _built[key] = {im.name: im for im in build()}
    return _built[key]


def _params():
    # implementation names as the builders make them (torch ones are skipped without torch)
    names = {
        "bce": ["fastsoftmax", "numpy", "torch"], "bce_small": ["fastsoftmax", "numpy", "torch"],
        "sigmoid": ["fastsoftmax", "numpy", "torch"], "softmax_bw": ["fastsoftmax", "numpy", "torch"],
        "log_softmax_bw": ["fastsoftmax", "numpy", "torch"],
        "zloss": ["fastsoftmax z_loss=1e-4", "fastsoftmax", "torch z_loss=1e-4"],
        "half_softmax": ["fastsoftmax float16", "fastsoftmax float32", "fastsoftmax on a float32 copy",
                         "torch float16"],
        "half_ce": ["fastsoftmax float16", "torch float16"],
    }
    return [pytest.param(k, n, id="%s-%s" % (k, n.replace(" ", "_"))) for k, ns in names.items() for n in ns]


@pytest.fixture(scope="module")
def threads():
    limiter = _harness.set_threads(THREADS)  # noqa: F841 (keeps threadpoolctl's limits alive)
    yield THREADS


@pytest.mark.parametrize("key,name", _params())
def test_loss_family(benchmark, threads, key, name):
    impls = _impls(key)
    if name not in impls:
        pytest.skip("%s is not available here (torch not installed, or no float16 kernels in it)" % name)
    title = {k: t for k, t, _ in loss_family.CASES}[key]
    benchmark.group = "loss family: %s (%d threads)" % (title, threads)
    benchmark.extra_info.update(case=key, impl=name, threads=threads)
    benchmark(impls[name].fn)
