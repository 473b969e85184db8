"""fastsoftmax vs NumPy / PyTorch / SciPy, one benchmark group per (operation, shape, dtype).

Run (from the repository root):  pytest benchmarks --benchmark-enable
See benchmarks/README.md.
"""

import os

import numpy as np
import pytest

import fastsoftmax as fs
import _baselines as bl
import _harness

# FASTSOFTMAX_BENCH_SHAPES="2048x32000,..." / FASTSOFTMAX_BENCH_DTYPES="float32" override these
SHAPES = _harness.parse_shapes(os.environ.get("FASTSOFTMAX_BENCH_SHAPES", "65536x10,8192x1000,2048x32000"))
DTYPES = [d.strip() for d in os.environ.get("FASTSOFTMAX_BENCH_DTYPES", "float32,float64").split(",")
          if d.strip()]


def _cases(impls):
    """(shape, dtype, impl) in shape-, then dtype-major order (inputs are cached per pair)."""
    out = []
    for shape in SHAPES:
        for dtype in DTYPES:
            for impl in impls:
                out.append(pytest.param(shape, dtype, impl,
                                        id="%s-%s-%s" % (_harness.shape_str(shape), dtype, impl)))
    return out


def _need(impl):
    if impl == "torch" and not bl.has_torch():
        pytest.skip("torch is not installed")
    if impl == "scipy" and not bl.has_scipy():
        pytest.skip("scipy is not installed")


def _setup(benchmark, op, shape, dtype, impl):
    _need(impl)
    benchmark.group = "%s %s %s" % (op, _harness.shape_str(shape), dtype)
    nbytes = _harness.bytes_moved(op, shape, dtype)
    benchmark.extra_info.update(op=op, shape=_harness.shape_str(shape), dtype=dtype, impl=impl,
                                bytes=nbytes)


ROW_FUNCS = {
    "softmax": {"fastsoftmax": fs.softmax, "numpy": bl.numpy_softmax,
                "torch": bl.torch_softmax, "scipy": bl.scipy_softmax},
    "log_softmax": {"fastsoftmax": fs.log_softmax, "numpy": bl.numpy_log_softmax,
                    "torch": bl.torch_log_softmax, "scipy": bl.scipy_log_softmax},
    "logsumexp": {"fastsoftmax": fs.logsumexp, "numpy": bl.numpy_logsumexp,
                  "torch": bl.torch_logsumexp, "scipy": bl.scipy_logsumexp},
}


@pytest.mark.parametrize("shape,dtype,impl", _cases(["fastsoftmax", "numpy", "torch", "scipy"]))
def test_softmax(benchmark, inputs, shape, dtype, impl):
    _setup(benchmark, "softmax", shape, dtype, impl)
    x, _ = inputs(shape, dtype)
    y = benchmark(ROW_FUNCS["softmax"][impl], x)
    assert y.shape == x.shape


@pytest.mark.parametrize("shape,dtype,impl", _cases(["memcpy"]))
def test_memcpy(benchmark, inputs, shape, dtype, impl):
    """Bandwidth ceiling: np.copyto reads and writes as many bytes as softmax / fused CE
    fwd+bwd.  Its own group, so the ratios in the operation groups stay relative to the
    fastest real implementation."""
    _setup(benchmark, "memcpy", shape, dtype, impl)
    x, _ = inputs(shape, dtype)
    out = np.empty_like(x)
    benchmark(bl.memcpy, x, out)


@pytest.mark.parametrize("shape,dtype,impl", _cases(["fastsoftmax", "numpy", "torch", "scipy"]))
def test_log_softmax(benchmark, inputs, shape, dtype, impl):
    _setup(benchmark, "log_softmax", shape, dtype, impl)
    x, _ = inputs(shape, dtype)
    y = benchmark(ROW_FUNCS["log_softmax"][impl], x)
    assert y.shape == x.shape


@pytest.mark.parametrize("shape,dtype,impl", _cases(["fastsoftmax", "numpy", "torch", "scipy"]))
def test_logsumexp(benchmark, inputs, shape, dtype, impl):
    _setup(benchmark, "logsumexp", shape, dtype, impl)
    x, _ = inputs(shape, dtype)
    y = benchmark(ROW_FUNCS["logsumexp"][impl], x)
    assert np.shape(y) == x.shape[:-1]


CE = {
    "fastsoftmax": lambda x, t, g: fs.cross_entropy(x, t, return_grad=g),
    "numpy": lambda x, t, g: bl.numpy_cross_entropy(x, t, return_grad=g),
    "torch": lambda x, t, g: bl.torch_cross_entropy(x, t, return_grad=g),
}


@pytest.mark.parametrize("shape,dtype,impl", _cases(["fastsoftmax", "numpy", "torch"]))
def test_cross_entropy_fwd(benchmark, inputs, shape, dtype, impl):
    """Loss only (index targets, mean reduction)."""
    _setup(benchmark, "cross_entropy_fwd", shape, dtype, impl)
    x, t = inputs(shape, dtype)
    loss = benchmark(CE[impl], x, t, False)
    assert np.ndim(loss) == 0


@pytest.mark.parametrize("shape,dtype,impl", _cases(["fastsoftmax", "numpy", "torch"]))
def test_cross_entropy_fwd_bwd(benchmark, inputs, shape, dtype, impl):
    """Loss and gradient w.r.t. the logits (index targets, mean reduction)."""
    _setup(benchmark, "cross_entropy_fwd_bwd", shape, dtype, impl)
    x, t = inputs(shape, dtype)
    loss, grad = benchmark(CE[impl], x, t, True)
    assert grad.shape == x.shape
