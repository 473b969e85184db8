"""Instruction-set paths, threads and the vectorized exp / log of every path.

The reference comparisons of the other modules run on every path and thread
count through the ``backend`` fixture in conftest.py; this module checks the
elementary functions themselves on every path (the ``isa`` fixture), the dispatch
and the thread controls.
"""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastsoftmax as fs
import fastsoftmax.reference as ref
from fastsoftmax import _config, _kernels
from conftest import tol

PATHS = _config.supported_isas()
ULP_BAR = 2.0  # the documented error bound of exp and log, in units in the last place


def _ulp_error(y, x, dtype, func):
    """Error of y = func(x) in ulps of the correctly rounded result (long double reference)."""
    with np.errstate(all="ignore"):
        exact = func(x.astype(np.longdouble))
        rounded = exact.astype(dtype)
    finite = np.isfinite(rounded) & (rounded != 0)
    spacing = np.spacing(np.abs(rounded[finite])).astype(np.longdouble)
    err = np.abs(y[finite].astype(np.longdouble) - exact[finite]) / spacing
    return err, finite, rounded


def _specials(dtype):
    fi = np.finfo(dtype)
    return np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, fi.max, -fi.max, fi.tiny,
                     fi.smallest_subnormal, -fi.smallest_subnormal], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_within_two_ulp_over_the_range(isa, dtype):
    lo, hi = (-104.0, 89.0) if dtype == np.float32 else (-746.0, 710.0)
    rng = np.random.default_rng(7)
    x = np.concatenate([np.linspace(lo, hi, 1_000_003), rng.uniform(-1, 1, 200_001),
                        _specials(dtype)]).astype(dtype)
    y = np.empty_like(x)
    _kernels.vexp(x, y)
    err, finite, rounded = _ulp_error(y, x, dtype, np.exp)
    assert err.max() <= ULP_BAR, f"{isa} {dtype.__name__}: exp error {err.max():.3f} ulp"
    # overflow to +inf, underflow to 0 (only where exp rounds to 0), -inf -> 0, NaN -> NaN
    other = ~finite
    np.testing.assert_array_equal(y[other], rounded[other])
    assert y[x == -np.inf][0] == 0.0 and y[x == np.inf][0] == np.inf and np.isnan(y[np.isnan(x)]).all()
    # subnormal results are produced, not flushed
    sub = (rounded > 0) & (rounded < np.finfo(dtype).tiny)
    assert sub.sum() > 100 and (y[sub] > 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_exp_within_two_ulp_down_to_the_normal_range(isa, dtype):
    """The kernels' exp of x = logit - max <= 0: within 2 ulp wherever exp(x) is a normal
    number, 0 below (never a subnormal), exactly 0 at -inf, NaN at NaN; also right for the
    positive x up to 64 that pass 1 may give it before it redoes a block."""
    fi = np.finfo(dtype)
    # the kernels' cut: exp(lo) is the smallest normal number, 1.18e-38 / 2.23e-308, rounded up
    lo = -87.33 if dtype == np.float32 else -708.39
    assert np.exp(np.float64(lo)) >= fi.tiny
    rng = np.random.default_rng(9)
    x = np.concatenate([np.linspace(lo, 64.0, 1_000_003), rng.uniform(-1, 0, 200_001),
                        -rng.exponential(3.0, 200_001)]).astype(dtype)
    y = np.empty_like(x)
    _kernels.vexpneg(x, y)
    err, finite, rounded = _ulp_error(y, x, dtype, np.exp)
    assert finite.all()
    assert err.max() <= ULP_BAR, f"{isa} {dtype.__name__}: softmax exp error {err.max():.3f} ulp"
    # below the normal range: 0, never a subnormal; specials
    s = np.array([lo - 0.01, lo - 1, lo - 30, -1e4, -float(fi.max), -np.inf, np.nan, 0.0, -0.0], dtype)
    ys = np.empty_like(s)
    _kernels.vexpneg(s, ys)
    np.testing.assert_array_equal(ys[:6], 0.0)
    assert np.isnan(ys[6]) and ys[7] == 1.0 and ys[8] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_within_two_ulp_over_the_range(isa, dtype):
    fi = np.finfo(dtype)
    rng = np.random.default_rng(8)
    top = np.log10(float(fi.max)) * (1 - 1e-12)
    x = np.concatenate([np.logspace(np.log10(float(fi.smallest_subnormal)), top, 1_000_003).astype(dtype),
                        rng.uniform(0.5, 2.0, 200_001).astype(dtype), _specials(dtype)]).astype(dtype)
    y = np.empty_like(x)
    _kernels.vlog(x, y)
    err, finite, rounded = _ulp_error(y, x, dtype, np.log)
    assert err.max() <= ULP_BAR, f"{isa} {dtype.__name__}: log error {err.max():.3f} ulp"
    assert (y[x == 0] == -np.inf).all() and (y[x == np.inf] == np.inf).all()
    assert np.isnan(y[(x < 0) | np.isnan(x)]).all()
    assert (y[x == 1] == 0).all()


def test_every_compiled_path_is_listed_and_the_best_is_active_by_default():
    info = fs.backend_info()
    assert info["compiled_isas"][0] == "baseline"
    assert set(info["supported_isas"]) <= set(info["compiled_isas"])
    assert "baseline" in info["supported_isas"]
    assert info["version"] == fs.__version__
    assert isinstance(info["threads_enabled"], bool)
    assert info["num_threads"] >= 1


def test_show_config_prints_the_backend(capsys):
    fs.show_config()
    out = capsys.readouterr().out
    assert "fastsoftmax" in out and _config.get_isa() in out and "threads" in out


def _run_python(code, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", PATHS)
def test_environment_variable_forces_a_path(name):
    r = _run_python("import fastsoftmax as fs; print(fs.backend_info()['isa'])", FASTSOFTMAX_ISA=name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == name


def test_environment_variable_with_an_unsupported_path_fails_clearly():
    unsupported = [n for n in _config.ISA_NAMES if n not in PATHS] + ["sse9"]
    for name in unsupported:
        r = _run_python("import fastsoftmax", FASTSOFTMAX_ISA=name)
        assert r.returncode != 0
        assert name in r.stderr and ("cannot use instruction set" in r.stderr or "unknown instruction set" in r.stderr)


def test_set_and_get_num_threads():
    default = fs.get_num_threads()
    try:
        fs.set_num_threads(1)
        assert fs.get_num_threads() == 1
        if _kernels.threads_enabled():
            fs.set_num_threads(3)
            assert fs.get_num_threads() == 3
        with pytest.raises(ValueError):
            fs.set_num_threads(-1)
    finally:
        fs.set_num_threads(0)
    assert fs.get_num_threads() == default


def test_threadpoolctl_sees_and_limits_the_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _kernels.threads_enabled():
        pytest.skip("built without threads")
    info = threadpoolctl.threadpool_info()
    assert any(p["user_api"] == "openmp" for p in info)
    default = fs.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fs.get_num_threads() == 1
    assert fs.get_num_threads() == default


def test_two_python_threads_at_once_get_correct_results():
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((257, 1000)).astype(np.float32) for _ in range(2)]
    ts = [rng.integers(0, 1000, 257) for _ in range(2)]
    expected = [ref.cross_entropy(x, t, return_grad=True) for x, t in zip(xs, ts)]
    results = [[], []]
    errors = []

    def work(k):
        try:
            for _ in range(20):
                results[k].append(fs.cross_entropy(xs[k], ts[k], return_grad=True))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    rel = tol(np.float32)["rel"]
    for k in range(2):
        loss_ref, grad_ref = expected[k]
        for loss, grad in results[k]:
            assert abs(float(loss) - loss_ref) <= rel * (1 + abs(loss_ref))
            np.testing.assert_allclose(grad, grad_ref, rtol=0, atol=rel * (np.abs(grad_ref).max() + 1 / 257))


def test_a_long_row_split_across_threads_matches_one_thread():
    if not _kernels.threads_enabled():
        pytest.skip("built without threads")
    x = np.random.default_rng(12).standard_normal((1, 300_001)).astype(np.float64) * 3
    x[0, 5] = -np.inf  # a masked class (the smoothed loss then is inf: the cross-entropy gets its own row)
    xc = x.copy()
    xc[0, 5] = -30.0
    out = {}
    try:
        for nt in (1, 2):
            fs.set_num_threads(nt)
            out[nt] = (fs.softmax(x), fs.log_softmax(x), fs.logsumexp(x),
                       fs.cross_entropy(xc, np.array([7]), label_smoothing=0.2, return_grad=True))
    finally:
        fs.set_num_threads(0)
    p_ref = ref.softmax(x)
    rel = tol(np.float64)["rel"]
    np.testing.assert_allclose(out[2][0], p_ref, rtol=rel, atol=tol(np.float64)["softmax_abs"])
    np.testing.assert_allclose(out[2][1][np.isfinite(p_ref)], ref.log_softmax(x)[np.isfinite(p_ref)], rtol=rel)
    assert abs(out[2][2][0] - ref.logsumexp(x)[0]) <= rel * (1 + abs(ref.logsumexp(x)[0]))
    loss_ref, grad_ref = ref.cross_entropy(xc, np.array([7]), label_smoothing=0.2, return_grad=True)
    assert out[2][3][0] == pytest.approx(loss_ref, rel=rel, abs=0)
    np.testing.assert_allclose(out[2][3][1], grad_ref, rtol=0, atol=rel * (np.abs(grad_ref) + 1).max())
    # and the thread count does not change the loss beyond the bars
    assert abs(out[1][3][0] - out[2][3][0]) <= rel * (1 + abs(loss_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_target_check_and_loss_sum_equal_the_serial_ones(dtype):
    """The target check before a cross-entropy call and the sum of its row losses run in blocks
    over the threads on long batches; their results are the serial ones, bit for bit: the mean's
    denominator (weighted too), the summed loss, and the first bad target's row."""
    if not _kernels.threads_enabled():
        pytest.skip("built without threads")
    rng = np.random.default_rng(31)
    n, c = 3 * 8192 + 1001, 7  # three threads' worth of blocks and a partial one
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    t = rng.integers(0, c, n)
    t[rng.choice(n, 500, replace=False)] = -100
    w = rng.uniform(0.1, 2.0, c)
    bad = t.copy()
    bad[[20_000, 9_000, 25_000]] = [c, c + 1, -5]  # the first by row is 9000
    out = {}
    try:
        for nt in (1, 3):
            fs.set_num_threads(nt)
            _kernels.set_tuning(1, 0)  # every problem may take all the threads
            out[nt] = [fs.cross_entropy(x, t, reduction=r, weight=wt, return_grad=True)
                       for r in ("mean", "sum") for wt in (None, w)]
            with pytest.raises(IndexError, match=r"target 8 at row 9000\b"):
                fs.cross_entropy(x, bad)
            out[nt].append(_kernels.check_targets(t, c, -100, w))
    finally:
        fs.set_num_threads(0)
        _kernels.set_tuning(0, 0)
    for serial, threaded in zip(out[1][:-1], out[3][:-1]):
        assert serial[0].tobytes() == threaded[0].tobytes()
        np.testing.assert_array_equal(serial[1], threaded[1])
    assert out[1][-1] == out[3][-1]
    assert out[1][-1][:2] == (-1, n - 500)
    loss_ref = ref.cross_entropy(x.astype(np.float64), t, weight=w)
    assert abs(float(out[3][1][0]) - loss_ref) <= tol(dtype)["rel"] * (1 + abs(loss_ref))
