"""pytest-benchmark configuration for fastsoftmax's benchmarks.

* Thread counts are pinned (default 1; set FASTSOFTMAX_BENCH_THREADS=N to change) for
  every library we know how to control: the OMP/OpenBLAS/MKL environment variables are set
  here, before NumPy is imported (this conftest is imported before the benchmark modules),
  then ``torch.set_num_threads``, ``threadpoolctl.threadpool_limits`` (NumPy's BLAS and any
  loaded OpenMP runtime) and ``fastsoftmax.set_num_threads`` when it exists.
* The repository root is put on ``sys.path`` when ``fastsoftmax`` is not importable
  otherwise (plain ``pytest`` does not add the current directory), so an in-place build
  (``python setup.py build_ext --inplace``) is benchmarked without installing.
* Inputs are generated once per (shape, dtype) and reused by consecutive benchmarks.
"""

import os
import sys

_THREADS_ENV = "FASTSOFTMAX_BENCH_THREADS"


def bench_threads():
    value = os.environ.get(_THREADS_ENV, "1").strip() or "1"
    try:
        n = int(value)
    except ValueError:
        raise RuntimeError("%s must be a positive integer, got %r" % (_THREADS_ENV, value))
    if n < 1:
        raise RuntimeError("%s must be a positive integer, got %r" % (_THREADS_ENV, value))
    return n


THREADS = bench_threads()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

try:
    import fastsoftmax  # noqa: E402
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import fastsoftmax  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import _harness  # noqa: E402

_limiter = None


def pytest_configure(config):
    global _limiter
    _limiter = _harness.set_threads(THREADS)


def pytest_report_header(config):
    return ["fastsoftmax benchmarks: %d thread(s) (%s=N to change); %s"
            % (THREADS, _THREADS_ENV, _harness.thread_summary()),
            "fastsoftmax from %s" % os.path.dirname(fastsoftmax.__file__)]


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastsoftmax_threads_setting"] = THREADS
    machine_info["threads"] = _harness.thread_summary()
    machine_info["cpu_model"] = _harness.cpu_model()
    machine_info["numpy"] = np.__version__
    machine_info["fastsoftmax"] = getattr(fastsoftmax, "__version__", "?")
    try:
        import torch

        machine_info["torch"] = torch.__version__
    except Exception:
        pass


_cache = {}


@pytest.fixture
def inputs():
    """inputs(shape, dtype) -> (logits, int64 targets); keeps only the latest pair alive."""

    def get(shape, dtype):
        key = (tuple(shape), np.dtype(dtype).name)
        if key not in _cache:
            _cache.clear()
            _cache[key] = _harness.make_inputs(shape, dtype)
        return _cache[key]

    return get
