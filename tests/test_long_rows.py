"""Long rows and threading: special values at block / chunk boundaries.

The kernels process a row in blocks with an online (rescaled) max and sum, may keep
the exponentials of rows that fit in L2, and split a single long row across threads.
These tests put NaN, +inf, masked (-inf) prefixes and sharp maxima at positions that
straddle those boundaries, and run once with the default threading and once with the
thresholds lowered (via ``fastsoftmax._kernels.set_tuning``, when available) so that
small inputs are threaded and rows are split too.
"""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import (
    DTYPES,
    assert_grad_close,
    assert_softmax_close,
    assert_value_close,
    grad_row_factor,
    kernel_threads,
    make_prob_target,
)

LONG_CS = [2049, 40000, 70000, 2 ** 17]
VARIANTS = ["nan_at", "inf_at", "masked_prefix", "nan_in_masked_prefix", "spike_at", "ascending"]


def _threading_params():
    try:
        from fastsoftmax import _kernels

        ok = hasattr(_kernels, "set_tuning") and hasattr(_kernels, "set_num_threads")
    except ImportError:  # pragma: no cover
        ok = False
    return ["default", "forced"] if ok else ["default"]


@pytest.fixture(params=_threading_params())
def threading_mode(request):
    """"forced": 3 threads, tiny work per thread, rows split from 100 classes on."""
    if request.param == "default":
        yield request.param
        return
    with kernel_threads(3, (64, 100)):
        yield request.param


def _row(rng, C, dtype, variant, pos):
    x = rng.standard_normal(C)
    if variant == "nan_at":
        x[pos] = np.nan
    elif variant == "inf_at":
        x[pos] = np.inf
    elif variant == "masked_prefix":
        x[:pos] = -np.inf
    elif variant == "nan_in_masked_prefix":
        x[:pos] = -np.inf
        x[pos // 2] = np.nan
    elif variant == "spike_at":
        x[pos] = 60.0
    elif variant == "ascending":
        x = np.sort(x) * 8
    return x.astype(dtype)


def _cases():
    out = []
    for C in LONG_CS:
        positions = sorted({p for p in (0, 2047, 2048, C // 2 + 1, C - 1) if p < C})
        for v in VARIANTS:
            for p in positions if v != "ascending" else [0]:
                if v == "nan_in_masked_prefix" and p == 0:
                    continue
                out.append((C, v, p))
    return out


def _check_family(x):
    dt = x.dtype
    assert_softmax_close(fs.softmax(x), ref.softmax(x), dt)
    assert_value_close(fs.log_softmax(x), ref.log_softmax(x), dt, "log_softmax")
    assert_value_close(fs.logsumexp(x), ref.logsumexp(x), dt, "logsumexp")


def _check_ce(x, t, **kw):
    dt = x.dtype
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, **kw)
    loss, grad = fs.cross_entropy(x, t, return_grad=True, **kw)
    assert_value_close(loss, loss_ref, dt, "loss")
    assert_grad_close(grad, grad_ref, dt, grad_row_factor(x.shape, t, **kw))
    np.testing.assert_array_equal(fs.cross_entropy(x, t, **kw), loss)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C,variant,pos", _cases())
def test_long_row_special_positions(rng, threading_mode, dtype, C, variant, pos):
    x1 = _row(rng, C, dtype, variant, pos)[None, :]  # one row: split across threads when forced
    _check_family(x1)
    x3 = np.stack([_row(rng, C, dtype, "spike_at", 1), x1[0], rng.standard_normal(C).astype(dtype)])
    _check_family(x3)  # the special row must not leak into its neighbours
    y = np.array([C - 1])
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    _check_ce(x1, y, weight=w)
    _check_ce(x3, np.array([0, C - 1, C // 3]), reduction="none", label_smoothing=0.1)
    _check_ce(x1, make_prob_target(rng, x1.shape, -1, dtype), label_smoothing=0.05)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [40000, 70000, 2 ** 17])
def test_long_rows_in_place_and_strided(rng, threading_mode, dtype, C):
    base = rng.standard_normal((2, 2 * C)).astype(dtype)
    x = base[:, ::-2]  # class stride -2: gathered rows
    assert_softmax_close(fs.softmax(x), ref.softmax(x), dtype)
    want = ref.log_softmax(x)
    fs.log_softmax(x, out=x)
    assert_value_close(x, want, dtype, "log_softmax in place (strided)")
    xc = rng.standard_normal((1, C)).astype(dtype)
    t = np.array([C // 2])
    kw = dict(label_smoothing=0.2)
    loss_ref, grad_ref = ref.cross_entropy(xc, t, return_grad=True, **kw)
    loss, grad = fs.cross_entropy(xc, t, return_grad=True, out=xc, **kw)
    assert grad is xc
    assert_value_close(loss, loss_ref, dtype, "loss")
    assert_grad_close(xc, grad_ref, dtype, grad_row_factor(xc.shape, t, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5000, 1), (4097, 3), (1003, 17), (65, 1000)])
def test_many_rows_threaded_with_specials(rng, threading_mode, dtype, shape):
    N, C = shape
    x = rng.standard_normal(shape).astype(dtype) * 4
    rows = rng.choice(N, size=min(N, 40), replace=False)
    x[rows[:10], 0] = np.nan
    x[rows[10:20]] = -np.inf
    x[rows[20:30], C - 1] = np.inf
    if C > 1:
        x[rows[30:40], : C // 2] = -np.inf
    for view, axis in ((x, -1), (x[::-1], -1), (np.ascontiguousarray(x.T), 0)):
        _check_family_axis(view, axis)
    t = rng.integers(0, C, N)
    t[rows[10:20]] = -100
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    for red in ("mean", "sum", "none"):
        _check_ce(x, t, weight=w, reduction=red, label_smoothing=0.1)
    _check_ce(np.ascontiguousarray(x.T), t, axis=0, reduction="none")


def _check_family_axis(x, axis):
    dt = x.dtype
    assert_softmax_close(fs.softmax(x, axis), ref.softmax(x, axis), dt)
    assert_value_close(fs.log_softmax(x, axis), ref.log_softmax(x, axis), dt, "log_softmax")
    assert_value_close(fs.logsumexp(x, axis), ref.logsumexp(x, axis), dt, "logsumexp")


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_range_two_class_rows(dtype):
    """Rows [0, d] for d over the whole exp range (underflow thresholds included)."""
    lo = -120.0 if dtype == np.float32 else -760.0
    d = np.concatenate([np.linspace(lo, 0, 4001), -np.logspace(-8, 0, 200), [-87.3, -88.7, -103.9, -708.4,
                                                                              -709.8, -744.4, -745.2]])
    x = np.stack([np.zeros_like(d), d], axis=1).astype(dtype)
    _check_family(x)
    _check_family(np.ascontiguousarray(np.tile(x, (1, 9))))  # the same values through the SIMD lanes
    _check_ce(x, np.ones(len(d), np.int64), reduction="none")
    _check_ce(x, np.zeros(len(d), np.int64), reduction="none", label_smoothing=0.3)


def test_concurrent_calls_from_python_threads(rng):
    """Calls from several Python threads at once (the kernels may release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    problems = []
    for k in range(8):
        dtype = DTYPES[k % 2]
        C = [7, 1000, 4097, 70000][k % 4]
        N = max(1, 200000 // C)
        x = rng.standard_normal((N, C)).astype(dtype)
        t = rng.integers(0, C, N)
        problems.append((x, t))

    def work(p):
        x, t = p
        out = []
        for _ in range(3):
            out.append((fs.softmax(x), fs.cross_entropy(x, t, return_grad=True, label_smoothing=0.1)))
        return out

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(work, problems))
    for (x, t), res in zip(problems, results):
        p_ref = ref.softmax(x)
        loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, label_smoothing=0.1)
        r = grad_row_factor(x.shape, t, label_smoothing=0.1)
        for p, (loss, grad) in res:
            assert_softmax_close(p, p_ref, x.dtype)
            assert_value_close(loss, loss_ref, x.dtype, "loss")
            assert_grad_close(grad, grad_ref, x.dtype, r)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [257, 3001, 70001])
def test_streamed_gradient_with_index_targets(request, rng, isa, threading_mode, dtype, C):
    """Outputs of 8 MiB and more (set here: the default is a quarter of the L3) are written
    with streaming stores; the target's term of the gradient is added before its vector is
    stored (never read back).  Index targets with weights and smoothing, every path, threaded
    and not; rows in groups (257), rows that keep their exponentials (pipelined) and rows too
    long for that (recomputed)."""
    n = (9 << 20) // (C * np.dtype(dtype).itemsize) + 1
    from fastsoftmax import _kernels

    _kernels.set_stream_min_bytes(8 << 20)
    request.addfinalizer(lambda: _kernels.set_stream_min_bytes(0))
    x = (rng.standard_normal((n, C)) * 3).astype(dtype)
    t = rng.integers(0, C, n)
    t[::7] = -100
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    for kw in (dict(), dict(weight=w, label_smoothing=0.1, z_loss=1e-3)):
        loss, grad = fs.cross_entropy(x, t, return_grad=True, **kw)
        kw_ref = dict(kw, weight=None if "weight" not in kw else w.astype(np.float64))
        loss_ref, grad_ref = ref.cross_entropy(x.astype(np.float64), t, return_grad=True, **kw_ref)
        assert_value_close(loss, loss_ref, dtype, "loss")
        r = grad_row_factor(x.shape, t, weight=kw_ref["weight"], label_smoothing=kw.get("label_smoothing", 0.0))
        if "z_loss" in kw:
            r = r * (1 + 2e-3 * np.abs(ref.logsumexp(x.astype(np.float64)))[:, None])
        assert_grad_close(grad, grad_ref, dtype, r, "grad")
