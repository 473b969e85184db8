"""Shared fixtures and assertion helpers for the fastsoftmax tests.

The accuracy bars are ``fastsoftmax.reference.TOLERANCES`` (the table of what each one
bounds is in that module's docstring), always against the float64 reference
(:mod:`fastsoftmax.reference`) computed from the *same* input values.  ``r``, the row's
factor in the reduction of the gradient bar, is :func:`grad_row_factor`.  On top of the
bars, special values must match exactly: NaN where the reference has NaN (and nowhere
else), +inf / -inf where the reference has the same infinity (and nowhere else).

Randomness: every test that needs random numbers takes the ``rng`` fixture, a
``numpy.random.Generator`` seeded from the base seed (env ``FASTSOFTMAX_TEST_SEED``,
default 20240601) and the test's node id, so each test is reproducible on its own.
Hypothesis tests use ``@hyp_seed(SEED)`` and the "fastsoftmax" settings profile.
"""

import contextlib
import os
import zlib

import numpy as np
import pytest

from fastsoftmax.reference import TOLERANCES

try:  # hypothesis is a test dependency; configure it when present
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("fastsoftmax", max_examples=25, deadline=None, print_blob=True)
    _hyp_settings.load_profile("fastsoftmax")
except ImportError:  # pragma: no cover
    pass

SEED = int(os.environ.get("FASTSOFTMAX_TEST_SEED", "20240601"))

DTYPES = (np.float32, np.float64)


def pytest_report_header(config):
    return f"fastsoftmax test seed: FASTSOFTMAX_TEST_SEED={SEED}"


@pytest.fixture
def rng(request):
    """A Generator seeded from SEED and the test id (reproducible per test)."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])


def tol(dtype):
    return TOLERANCES[np.dtype(dtype)]


# ----------------------------------------------------------------------------- helpers


def _f64(a):
    return np.asarray(a).astype(np.float64)


def _check_special(actual, ref, what, dtype=None):
    """Shapes equal; NaN and +-inf positions identical.  Returns (a, r, finite mask).

    A finite reference value beyond the range of the output ``dtype`` (e.g. a float32
    log-softmax of -6e38) is expected as the infinity it rounds to; one within the relative
    bar of that range (a float32 loss of 3.4028235e38 computed 6e-8 high) may be either.
    """
    a, r = _f64(actual), _f64(ref)
    if dtype is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = r.astype(dtype).astype(np.float64)
            edge = (r * (1 + tol(dtype)["rel"])).astype(dtype).astype(np.float64)
        r = np.where(np.isinf(rounded) & np.isfinite(r), rounded, r)
        r = np.where(np.isinf(edge) & np.isfinite(r) & (a == edge), edge, r)
    assert a.shape == r.shape, f"{what}: shape {a.shape} != reference shape {r.shape}"
    a_nan, r_nan = np.isnan(a), np.isnan(r)
    if not np.array_equal(a_nan, r_nan):
        idx = np.argwhere(a_nan != r_nan)[:5].tolist()
        raise AssertionError(
            f"{what}: NaN positions differ (first at {idx}); "
            f"actual={a[tuple(np.argwhere(a_nan != r_nan)[0])] if a.ndim else a}, "
            f"reference={r[tuple(np.argwhere(a_nan != r_nan)[0])] if r.ndim else r}"
        )
    for sign in (np.inf, -np.inf):
        a_inf, r_inf = a == sign, r == sign
        if not np.array_equal(a_inf, r_inf):
            bad = np.argwhere(a_inf != r_inf)
            first = tuple(bad[0])
            raise AssertionError(
                f"{what}: {sign} positions differ (first at {bad[:5].tolist()}); "
                f"actual={a[first]}, reference={r[first]}"
            )
    return a, r, np.isfinite(r)


def _report(what, a, r, bound, finite):
    with np.errstate(invalid="ignore"):  # inf - inf at matching infinities
        err = np.where(finite, np.abs(a - r), 0.0)
    bad = finite & ~(err <= bound)
    if np.any(bad):
        idx = np.argwhere(bad)
        k = tuple(idx[0])
        ratio = np.max(np.where(bad, err / np.where(bound > 0, bound, np.finfo(float).tiny), 0))
        raise AssertionError(
            f"{what}: {idx.shape[0]} of {a.size} values outside the accuracy bar "
            f"(first at {list(k)}: actual={a[k]!r}, reference={r[k]!r}, |err|={err[k]:.3e}, "
            f"bar={bound[k] if np.ndim(bound) else bound:.3e}; worst err/bar={ratio:.3g})"
        )


def assert_softmax_close(actual, ref, dtype, what="softmax"):
    """|p - p_ref| <= rel*p_ref + softmax_abs (TOLERANCES of ``dtype``), specials exact."""
    t = tol(dtype)
    a, r, finite = _check_special(actual, ref, what, dtype)
    bound = t["rel"] * np.abs(r) + t["softmax_abs"]
    _report(what, a, r, np.where(finite, bound, 0.0), finite)


def assert_value_close(actual, ref, dtype, what="value", allowance=0.0):
    """Log-softmax / logsumexp / loss: |v - v_ref| <= rel*(1 + |v_ref| + allowance), specials
    exact (``allowance``: a z-loss's, see :func:`zloss_loss_allowance`)."""
    t = tol(dtype)
    a, r, finite = _check_special(actual, ref, what, dtype)
    with np.errstate(invalid="ignore"):
        bound = t["rel"] * (1.0 + np.abs(r) + allowance)
    _report(what, a, r, np.where(finite, bound, 0.0), finite)


def assert_grad_close(actual, ref, dtype, r_factor, what="grad"):
    """Gradient: |g - g_ref| <= rel*(|g_ref| + r), specials exact.

    ``r_factor`` broadcasts against the gradient (see :func:`grad_row_factor`); where it
    is 0 (ignored rows) the gradient must equal the reference exactly.
    """
    t = tol(dtype)
    a, rr, finite = _check_special(actual, ref, what, dtype)
    bound = t["rel"] * (np.abs(rr) + np.broadcast_to(r_factor, rr.shape))
    _report(what, a, rr, np.where(finite, bound, 0.0), finite)


def assert_exact_zero(a, what):
    a = np.asarray(a)
    assert np.all(a == 0), f"{what}: expected exact zeros, got {a[a != 0][:5]}"


def grad_row_factor(logits_shape, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                    label_smoothing=0.0):
    """The per-row ``r`` of the gradient bar, broadcastable to the logits' shape.

    ``r`` is the largest factor multiplying the row's ``(p_j - [j == c])`` terms in the
    reduced loss:

    * "sum" and "none": ``r = 1``, ignored rows ``r = 0``;
    * "mean", index targets: ``r = m_n / D`` with ``D`` the mean's divisor (sum of
      ``w[y]`` over rows not ignored, or their count) and ``m_n = w[y_n]``; with label
      smoothing > 0 the smoothing term brings every class weight in, so
      ``m_n = max(w[y_n], max_c w[c])`` (unweighted: ``m_n = 1``);  ignored rows ``r = 0``
      (their gradient must be exactly 0);
    * "mean", probability targets: ``r = max_c w[c] / N`` (unweighted ``1/N``).
    """
    ndim = len(logits_shape)
    ax = axis % ndim
    C = logits_shape[ax]
    target = np.asarray(target)
    w = np.ones(C) if weight is None else np.abs(np.asarray(weight, dtype=np.float64))
    wmax = float(np.max(w)) if C else 1.0
    if target.dtype.kind == "f":  # probability targets
        batch = tuple(s for i, s in enumerate(logits_shape) if i != ax)
        n = int(np.prod(batch, dtype=np.int64))
        if reduction == "mean":
            r = np.full(batch, (wmax if weight is not None else 1.0) / max(n, 1))
        else:
            r = np.ones(batch)
    else:
        active = target != ignore_index
        y = np.where(active, target, 0).astype(np.int64)
        w_y = w[y] if C else np.zeros(target.shape)
        if reduction == "mean":
            D = float(np.sum(np.where(active, w_y, 0.0)))
            if weight is None:
                m = np.ones(target.shape)
            elif label_smoothing > 0:
                m = np.full(target.shape, wmax)
            else:
                m = w_y
            r = m / D if D != 0 else np.zeros(target.shape)
        else:
            r = np.ones(target.shape)
        r = np.where(active, r, 0.0)
    return np.expand_dims(r, ax)


def make_index_target(rng, batch_shape, C, *, ignore_index=None, frac_ignored=0.3, dtype=np.int64):
    """Random class indices; when ``ignore_index`` is given a fraction of rows use it."""
    t = rng.integers(0, C, size=batch_shape).astype(dtype)
    if ignore_index is not None and t.size:
        mask = rng.random(batch_shape) < frac_ignored
        mask.flat[0] = True  # at least one ignored row
        if t.size > 1:
            mask.flat[-1] = False  # and at least one row kept
        if 0 <= ignore_index < C and C > 1:  # kept rows must not hit an in-range ignore_index by chance
            t[~mask & (t == ignore_index)] = (ignore_index + 1) % C
        t[mask] = ignore_index
    return t


def make_prob_target(rng, logits_shape, axis, dtype=np.float64):
    """Random probability rows (Dirichlet) of the logits' shape, class axis ``axis``."""
    ax = axis % len(logits_shape)
    C = logits_shape[ax]
    batch = tuple(s for i, s in enumerate(logits_shape) if i != ax)
    t = rng.dirichlet(np.ones(C), size=batch) if C else np.zeros(batch + (0,))
    return np.ascontiguousarray(np.moveaxis(t.reshape(batch + (C,)), -1, ax)).astype(dtype)


def make_targets(rng, shape, axis, dtype, kind, ignore_mode="default"):
    """(target, ignore_index): probability targets (``kind="prob"``) or class indices, with
    ``ignore_mode`` "absent" (no row ignored), "default" (-100), "in_range" (class 1) or
    "negative" (-1) for the ignored rows."""
    ax = axis % len(shape)
    C = shape[ax]
    batch = shape[:ax] + shape[ax + 1:]
    ii = {"absent": -100, "default": -100, "in_range": min(1, C - 1), "negative": -1}[ignore_mode]
    if kind == "prob":
        return make_prob_target(rng, shape, axis, dtype), ii
    return make_index_target(rng, batch, C, ignore_index=None if ignore_mode == "absent" else ii), ii


def make_logits(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def expected_loss_type(dtype, reduction):
    """Type of the returned loss: a scalar of the logits' dtype when reduced, else an array."""
    return np.dtype(dtype).type if reduction != "none" else np.ndarray


def _isa_params():
    try:
        from fastsoftmax import _config

        return list(_config.supported_isas())
    except Exception:  # no run-time dispatch: run once with whatever is active
        return ["active"]


@contextlib.contextmanager
def _isa_selected(name):
    """The instruction-set path ``name`` during the block ("active": the current one), then the previous one."""
    if name == "active":
        yield
        return
    from fastsoftmax import _config

    before = _config.get_isa()
    _config.set_isa(name)
    try:
        yield
    finally:
        _config.set_isa(before)


@contextlib.contextmanager
def kernel_threads(n, tuning=(0, 0)):
    """``n`` kernel threads and the threading thresholds ``_kernels.set_tuning(*tuning)`` during
    the block, the library's defaults after it."""
    from fastsoftmax import _kernels

    _kernels.set_num_threads(n)
    _kernels.set_tuning(*tuning)
    try:
        yield
    finally:
        _kernels.set_num_threads(0)
        _kernels.set_tuning(0, 0)


@pytest.fixture(params=_isa_params())
def isa(request):
    """Run the test once per instruction-set path the CPU supports (restores the active one).
    The only fixture that switches the path alone; ``backend`` adds thread counts."""
    with _isa_selected(request.param):
        yield request.param


def _backend_params():
    """(instruction set, threads) pairs: every path the CPU supports, with 1 and 2 threads."""
    from fastsoftmax import _kernels

    threads = (1, 2) if _kernels.threads_enabled() else (1,)
    return [(name, nt) for name in _isa_params() for nt in threads]


@pytest.fixture(params=_backend_params(), ids=lambda p: f"{p[0]}-{p[1]}t")
def backend(request):
    """Run a whole module's reference comparisons on one (path, thread count).

    With 2 threads the threading thresholds are lowered so that even the small
    inputs of the tests take the threaded code paths: rows spread over threads,
    and rows longer than one 2048-class block split across threads with a merge.
    """
    name, nt = request.param
    with _isa_selected(name), kernel_threads(nt, (1, 2049) if nt > 1 else (0, 0)):
        yield request.param


# ----------------------------------------------------------------------------- helpers for the loss family
# (sigmoid, binary_cross_entropy_with_logits, softmax/log_softmax backward, z-loss, float16)

F16 = np.dtype(np.float16)


def loss_dtype(dtype):
    """dtype of the losses: the logits' dtype, float32 for float16 logits."""
    return np.dtype(np.float32) if np.dtype(dtype) == F16 else np.dtype(dtype)


def f16_ulp(ref):
    """1 float16 ulp of the float64 ``ref`` rounded to float16 (np.spacing of the rounded value), as float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        r16 = np.asarray(ref, dtype=np.float64).astype(np.float16)
        return np.abs(np.spacing(np.abs(r16))).astype(np.float64)


def assert_f16_close(actual, ref, what="float16 value", log_domain=False):
    """float16 outputs: within 1 float16 ulp of the float64 reference rounded to float16; specials exact.

    |v - round16(ref)| <= ulp(round16(ref)).  A finite reference beyond the float16 range is
    expected as the infinity it rounds to.  ``log_domain`` (log_softmax, logsumexp): the
    float32 value bar of the computation plus that rounding, |v - round16(ref)| <=
    ulp(round16(ref)) + rel * (1 + |ref|) -- near 0 the float16 ulp is finer than the
    float32 computation's absolute error (the 1-ulp bar alone is for softmax).
    """
    assert np.asarray(actual).dtype == F16, f"{what}: dtype {np.asarray(actual).dtype}, expected float16"
    a, r, finite = _check_special(actual, ref, what, np.float16)
    with np.errstate(over="ignore", invalid="ignore"):
        r16 = r.astype(np.float16).astype(np.float64)
    bound = TOLERANCES[F16]["ulp"] * f16_ulp(r)
    if log_domain:
        with np.errstate(invalid="ignore"):
            bound = bound + TOLERANCES[F16]["rel"] * (1.0 + np.abs(r))
    _report(what, a, r16, np.where(finite, bound, 0.0), finite)


def assert_f16_grad_close(actual, ref, r_factor, what="float16 grad"):
    """float16 gradients: |g - ref| <= 1 f16 ulp(round16(ref)) + rel * (|ref| + r); specials exact."""
    assert np.asarray(actual).dtype == F16, f"{what}: dtype {np.asarray(actual).dtype}, expected float16"
    a, rr, finite = _check_special(actual, ref, what, np.float16)
    with np.errstate(invalid="ignore"):
        bound = TOLERANCES[F16]["ulp"] * f16_ulp(rr) + TOLERANCES[F16]["rel"] * (
            np.abs(rr) + np.broadcast_to(r_factor, rr.shape))
    _report(what, a, rr, np.where(finite, bound, 0.0), finite)


def assert_any_grad_close(actual, ref, dtype, r_factor, what="grad"):
    """assert_grad_close, or assert_f16_grad_close for float16."""
    if np.dtype(dtype) == F16:
        assert_f16_grad_close(actual, ref, r_factor, what)
    else:
        assert_grad_close(actual, ref, dtype, r_factor, what)


def bce_grad_factor(shape, weight=None, pos_weight=None, reduction="mean"):
    """``r`` of the BCE gradient bar: ``|w| * max(1, |pos_weight|) * s``, broadcast to ``shape``.

    ``s = 1/numel`` for "mean", 1 otherwise; ``pos_weight`` is per class along the last axis.
    """
    n = int(np.prod(shape, dtype=np.int64))
    s = (1.0 / n if n else 0.0) if reduction == "mean" else 1.0
    w = np.ones(shape) if weight is None else np.abs(np.broadcast_to(np.asarray(weight, np.float64), shape))
    pw = 1.0 if pos_weight is None else np.maximum(
        1.0, np.abs(np.broadcast_to(np.asarray(pos_weight, np.float64), (shape[-1],))))
    return w * pw * s


def assert_softmax_backward_close(actual, ref, probs, grad_output, dtype, axis=-1, what="softmax_backward"):
    """|gx - ref| <= rel * p_j * (|g_j| + sum_k p_k |g_k|), specials exact."""
    p = np.asarray(probs, dtype=np.float64)
    g = np.abs(np.asarray(grad_output, dtype=np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        bound = tol(dtype)["rel"] * p * (g + np.sum(p * g, axis=axis, keepdims=True))
    a, r, finite = _check_special(actual, ref, what, dtype)
    _report(what, a, r, np.where(finite & ~np.isnan(bound), bound, 0.0), finite)


def assert_log_softmax_backward_close(actual, ref, log_probs, grad_output, dtype, axis=-1,
                                      what="log_softmax_backward"):
    """|gx - ref| <= rel * (|g_j| + exp(lp_j) * sum_k |g_k|), specials exact."""
    lp = np.asarray(log_probs, dtype=np.float64)
    g = np.abs(np.asarray(grad_output, dtype=np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        bound = tol(dtype)["rel"] * (g + np.exp(lp) * np.sum(g, axis=axis, keepdims=True))
    a, r, finite = _check_special(actual, ref, what, dtype)
    _report(what, a, r, np.where(finite & ~np.isnan(bound), bound, 0.0), finite)


def zloss_row_factor(logits, target, *, axis=-1, z_loss=0.0, **kw):
    """``r`` of the cross-entropy gradient bar with z-loss: grad_row_factor * (1 + 2 z (1 + |lse_n|))
    (the coefficient 2 z lse_n of p_j carries the logsumexp bar's error, rel (1 + |lse_n|))."""
    from fastsoftmax import reference as _ref

    x = np.asarray(logits)
    x64 = x.astype(np.float64)
    r = grad_row_factor(x.shape, target, axis=axis, **kw)
    lse = np.expand_dims(_ref.logsumexp(x64, axis), axis % x.ndim)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(r == 0, 0.0, r * (1.0 + 2.0 * z_loss * (1.0 + np.abs(lse))))  # ignored rows stay exact


def zloss_loss_allowance(logits, target, *, axis=-1, z_loss=0.0, reduction="mean", **kw):
    """The loss bar's allowance for a z-loss term ``z w lse^2`` (reference.TOLERANCES): the
    logsumexp bar ``rel (1 + |lse|)`` carried through its derivative ``2 z w |lse|``, i.e.
    ``r_n 2 z |lse_n| (1 + |lse_n|)`` per row (``r_n`` the gradient bar's row factor), summed
    over the rows for "mean" and "sum".  0 without z-loss."""
    from fastsoftmax import reference as _ref

    if not z_loss:
        return 0.0
    x = np.asarray(logits)
    ax = axis % x.ndim
    r = np.squeeze(grad_row_factor(x.shape, target, axis=axis, reduction=reduction, **kw), ax)
    lse = np.abs(_ref.logsumexp(x.astype(np.float64), axis))
    with np.errstate(invalid="ignore", over="ignore"):
        per_row = np.where(r == 0, 0.0, r * 2.0 * z_loss * lse * (1.0 + lse))
    # rows of NaN or infinite logsumexp have special losses, which are compared exactly
    per_row = np.where(np.isfinite(lse), per_row, 0.0)
    return per_row if reduction == "none" else float(np.sum(per_row))


# ----------------------------------------------------------------------------- shared test helpers


def assert_linear_close(dtype, got, want, x, w, b, t, opts, grad_scale=1.0):
    """linear_cross_entropy's ``(loss, LinearGrads)`` against the float64 composition's
    (reference.linear_cross_entropy): the loss and gradient bars of reference.TOLERANCES, plus
    the products' rounding allowance (``k`` the inner dimension, ``B`` the other operand) and
    the logits' own rounding in the product over D carried into the loss and the gradient
    (``opts``: the call's cross-entropy options; ``grad_scale``: a factor of the gradients, a
    loss object's grad_output)."""
    t_ = tol(dtype)
    rel, u = t_["rel"], t_["unit_roundoff"]
    n, d = x.shape
    c = w.shape[0]
    (loss, g), (loss_ref, g_ref) = got, want
    x64, w64 = np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64))
    logits = x.astype(np.float64) @ w.astype(np.float64).T + (0 if b is None else b.astype(np.float64))
    # the logits' rounding in the product over D, and the row factors of the gradient bar
    logit_err = (rel + d * u) * 4 * (x64 @ w64.T)  # (N, C)
    kw = {k: opts.get(k) for k in ("weight", "ignore_index", "reduction", "label_smoothing", "z_loss") if k in opts}
    r = zloss_row_factor(logits, t, **kw)[:, 0] if n else np.zeros(0)  # (N,): 0 for ignored rows
    # r holds the class weight for "mean"; for "sum" and "none" it is 1, and the row's loss is
    # weighted by up to the largest class weight
    cw = np.ones(max(c, 1)) if opts.get("weight") is None else np.abs(np.asarray(opts["weight"], np.float64))
    wfac = 1.0 if opts.get("reduction", "mean") == "mean" or not cw.size else max(float(cw.max()), 1.0)
    # a logit error e moves a row's loss by at most 2 e, times r (1 + 2 z (1 + |lse|) in it)
    emax = np.max(logit_err, axis=1) if c else np.zeros(n)
    row_loss_err = 2 * wfac * r * emax
    assert np.asarray(loss).dtype == dtype
    with np.errstate(invalid="ignore"):
        if opts.get("reduction") == "none":
            np.testing.assert_allclose(loss, loss_ref, rtol=rel, atol=rel + (np.max(row_loss_err) if n else 0))
        else:
            np.testing.assert_allclose(loss, loss_ref, rtol=rel, atol=rel + np.sum(row_loss_err))
    for a in g:
        assert a is None or a.dtype == dtype
    # G's error from the logits' error: |d p| <= 2 p e, so sum_c |dG_nc| |B_c| <= r_n 4 e_n max|B|
    e = r * 4 * wfac * emax  # (N,)

    def close(got_, want_, bound, what):
        err = np.abs(got_.astype(np.float64) - want_)
        ok = (err <= bound) | (np.isnan(got_) & np.isnan(want_)) | (got_ == want_)
        assert np.all(ok), f"{what}: worst err/bar {float(np.max(np.where(ok, 0, err / bound))):.3g}"

    r = r * grad_scale  # the gradients' factor (the loss's bars above are unscaled)
    e = e * grad_scale
    rmax = float(np.max(r)) if r.size else 0.0
    # d inputs = G @ W: k = C, B = W's rows
    wmax = w64.max(axis=0) if c else np.zeros(d)
    close(g.inputs, g_ref.inputs,
          rel * (np.abs(g_ref.inputs) + rmax) + (rel + c * u) * 4 * wfac * r[:, None] * w64.sum(axis=0)[None, :]
          + e[:, None] * wmax[None, :], "d inputs")
    # d classifier = G.T @ x: k = N, B = the inputs' rows, each with its row's factor
    close(g.classifier, g_ref.classifier,
          rel * (np.abs(g_ref.classifier) + rmax) + (rel + n * u) * 4 * wfac * (r[:, None] * x64).sum(axis=0)[None, :]
          + (e[:, None] * x64).sum(axis=0)[None, :], "d classifier")
    if b is None:
        assert g.bias is None
    else:
        close(g.bias, g_ref.bias, rel * (np.abs(g_ref.bias) + rmax) + (rel + n * u) * 4 * wfac * r.sum() + e.sum(),
              "d bias")




def fd_grad(f, x, h=1e-5):
    """Central differences of the scalar function f at x (float64), element by element."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


def misaligned(a):
    """A copy of ``a`` whose data starts one byte past an aligned address."""
    a = np.asarray(a)
    buf = np.zeros(a.nbytes + 1, np.uint8)
    m = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned
    return m


def bad_out(case, dtype, shape=(4, 6)):
    """(out, expected exception) for an ``out=`` array that is wrong for inputs of ``shape``
    and ``dtype``: "dtype" (the other float dtype: TypeError), "shape", "shape_T"
    (transposed), "noncontig", "fortran", "negative" (layouts, for outputs that must be
    C-contiguous), "readonly" (ValueError), "not_array" (a list: TypeError)."""
    n, c = shape
    if case == "dtype":
        return np.full(shape, 3.0, np.float64 if np.dtype(dtype) == np.float32 else np.float32), TypeError
    if case == "not_array":
        return [[0.0] * c] * n, TypeError
    out = {"shape": lambda: np.full((n, c - 1), 3.0, dtype),
           "shape_T": lambda: np.full((c, n), 3.0, dtype),
           "noncontig": lambda: np.full((n, 2 * c), 3.0, dtype)[:, ::2],
           "fortran": lambda: np.asfortranarray(np.full(shape, 3.0, dtype)),
           "negative": lambda: np.full(shape, 3.0, dtype)[::-1],
           "readonly": lambda: np.full(shape, 3.0, dtype)}[case]()
    if case == "readonly":
        out.flags.writeable = False
    return out, ValueError
