"""softmax_backward and log_softmax_backward against the float64 reference.

Bars (fastsoftmax.reference.TOLERANCES), with p / lp the (rounded) inputs and g the
grad_output:
  softmax_backward:     |gx - ref| <= rel * p_j * (|g_j| + sum_k p_k |g_k|)
  log_softmax_backward: |gx - ref| <= rel * (|g_j| + exp(lp_j) * sum_k |g_k|)
"""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import (
    bad_out,
    misaligned,
    DTYPES,
    assert_log_softmax_backward_close,
    assert_softmax_backward_close,
    make_logits,
    tol,
)

# every test here runs on each instruction-set path with 1 and 2 threads (conftest.backend)
pytestmark = pytest.mark.usefixtures("backend")

TAIL_CS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000, 2047, 2048, 2049, 5000]
FNS = ["softmax_backward", "log_softmax_backward"]


def inputs(rng, fn, shape, dtype, axis=-1, scale=3.0):
    """(probs or log_probs, grad_output) of ``shape`` in ``dtype``: the forward output of random logits."""
    x = make_logits(rng, shape, np.float64, scale)
    fwd = ref.softmax(x, axis) if fn == "softmax_backward" else ref.log_softmax(x, axis)
    g = rng.standard_normal(shape)
    return fwd.astype(dtype), g.astype(dtype)


def check(fn, a, g, axis=-1, out=None, what=None):
    """fs.<fn> vs reference; dtype, shape, out identity, inputs unchanged (unless aliased), bar."""
    dt = a.dtype
    what = what or fn
    want = getattr(ref, fn)(a, g, axis)
    snaps = (a.copy(), g.copy())
    got = getattr(fs, fn)(a, g, axis) if out is None else getattr(fs, fn)(a, g, axis, out=out)
    if out is None:
        np.testing.assert_array_equal(a, snaps[0], err_msg="first input modified")
        np.testing.assert_array_equal(g, snaps[1], err_msg="grad_output modified")
    else:
        assert got is out
    assert isinstance(got, np.ndarray) and got.dtype == dt and got.shape == a.shape, (got.dtype, got.shape)
    a0, g0 = snaps
    if fn == "softmax_backward":
        assert_softmax_backward_close(got, want, a0, g0, dt, axis, what)
    else:
        assert_log_softmax_backward_close(got, want, a0, g0, dt, axis, what)
    return got


# ----------------------------------------------------------------------------- sizes and axes


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", TAIL_CS)
def test_simd_tails(rng, fn, dtype, C):
    N = 3 if C < 1000 else 2
    p, g = inputs(rng, fn, (N, C), dtype)
    check(fn, p, g)
    check(fn, p[0], g[0])  # 1-D


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [1, 2, 3, 5, 8, 17, 37])
def test_batch_sizes(rng, fn, dtype, N):
    p, g = inputs(rng, fn, (N, 9), dtype)
    check(fn, p, g)
    check(fn, p, g, axis=0)


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 5), (5, 17, 9), (2, 33, 1), (1, 7, 3)])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_3d_every_axis(rng, fn, dtype, shape, axis):
    p, g = inputs(rng, fn, shape, dtype, axis)
    check(fn, p, g, axis)


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((37, 1000), -1), ((3, 4097), -1), ((2049, 3), 0), ((1, 2, 3, 4), 2)])
def test_shapes(rng, fn, dtype, shape, axis):
    p, g = inputs(rng, fn, shape, dtype, axis)
    check(fn, p, g, axis)


# ----------------------------------------------------------------------------- layouts and out=


def _views(rng, fn, dtype):
    pb, gb = inputs(rng, fn, (14, 40), dtype)
    p3, g3 = inputs(rng, fn, (6, 9, 22), dtype)
    return {
        "sliced_cols": (pb[:, ::3], gb[:, ::-3], -1),
        "sliced_rows": (pb[1::2, 5:38], gb[::2, 2:35], -1),
        "transposed_last": (pb.T, gb.T, -1),
        "transposed_first": (pb.T, gb.T.copy(), 0),
        "neg_strides": (pb[::-1, ::-1], gb[::-1, ::-1], -1),
        "neg_strides_axis0": (pb[::-2, ::-1], gb[::2], 0),
        "fortran": (np.asfortranarray(pb), gb, -1),
        "mixed_layouts": (pb, np.asfortranarray(gb), -1),
        "3d_sliced_mid": (p3[:, ::2, 1:], g3[::-1, ::2, :-1], 1),
        "3d_transposed": (p3.transpose(2, 0, 1), g3.transpose(2, 0, 1), -1),
        "3d_neg_last": (p3[::-1, :, ::-2], g3[:, ::-1, ::2], -1),
        "3d_swapped_first": (np.swapaxes(p3, 0, 2)[::2], np.swapaxes(g3, 0, 2)[1::2], 0),
        "broadcast_grad": (pb[:5], np.broadcast_to(gb[0], (5, 40)), -1),
    }


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(_views(np.random.default_rng(0), "softmax_backward", np.float64)))
def test_noncontiguous_inputs(rng, fn, dtype, case):
    a, g, axis = _views(rng, fn, dtype)[case]
    check(fn, a, g, axis)
    big = np.zeros(a.shape[::-1] + (2,), dtype)
    out = big[..., 1].T  # transposed, strided out
    assert out.shape == a.shape
    check(fn, a, g, axis, out=out)
    assert np.all(big[..., 0] == 0), "wrote outside out"


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, -1])
def test_out_separate_and_aliased(rng, fn, dtype, axis):
    shape = (9, 37)
    a, g = inputs(rng, fn, shape, dtype, axis)
    check(fn, a, g, axis, out=np.full(shape, 123.0, dtype))
    for which in ("first", "grad_output"):  # out = probs / log_probs, out = grad_output
        a2, g2 = a.copy(), g.copy()
        want = getattr(ref, fn)(a2, g2, axis)
        target = a2 if which == "first" else g2
        got = getattr(fs, fn)(a2, g2, axis, out=target)
        assert got is target
        if fn == "softmax_backward":
            assert_softmax_backward_close(got, want, a, g, dtype, axis, f"out={which}")
        else:
            assert_log_softmax_backward_close(got, want, a, g, dtype, axis, f"out={which}")


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_on_strided_views(rng, fn, dtype):
    abuf, gbuf = inputs(rng, fn, (8, 60), dtype)
    keep = gbuf[:, 1::2].copy()
    a, g = abuf[:, ::2], gbuf[:, ::2]
    a0, g0 = a.copy(), g.copy()
    want = getattr(ref, fn)(a0, g0)
    getattr(fs, fn)(a, g, out=g)
    if fn == "softmax_backward":
        assert_softmax_backward_close(g, want, a0, g0, dtype)
    else:
        assert_log_softmax_backward_close(g, want, a0, g0, dtype)
    np.testing.assert_array_equal(gbuf[:, 1::2], keep, err_msg="wrote outside the view")


@pytest.mark.parametrize("fn", FNS)
def test_out_partially_overlapping_input(rng, fn):
    abuf, gbuf = inputs(rng, fn, (6, 41), np.float64)
    a, g = abuf[:, :40], gbuf[:, :40]
    a0, g0 = a.copy(), g.copy()
    want = getattr(ref, fn)(a0, g0)
    out = gbuf[:, 1:]
    getattr(fs, fn)(a, g, out=out)
    if fn == "softmax_backward":
        assert_softmax_backward_close(out, want, a0, g0, np.float64)
    else:
        assert_log_softmax_backward_close(out, want, a0, g0, np.float64)


# ----------------------------------------------------------------------------- against finite differences


def _fd_vjp(f, x, g, h=1e-5):
    """Central differences of <g, f(x)> in float64."""
    d = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        d[i] = (np.sum(g * f(xp)) - np.sum(g * f(xm))) / (2 * h)
    return d


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("shape,axis", [((3, 5), -1), ((4, 3), 0), ((2, 3, 4), 1), ((6,), 0)])
def test_vjp_matches_finite_differences(rng, fn, shape, axis):
    """fs backward of fs forward vs central differences of <g, forward(x)> (float64).

    FD error (h = 1e-5): truncation ~1e-10, rounding ~1e-16 * sum|g| / h ~ 1e-10; the tolerance
    1e-7 * (|fd| + 1) leaves a wide margin.
    """
    x = make_logits(rng, shape, np.float64, scale=1.5)
    g = rng.standard_normal(shape)
    fwd = getattr(fs, fn.replace("_backward", ""))
    gx = getattr(fs, fn)(fwd(x, axis), g, axis)
    fd = _fd_vjp(lambda z: fwd(z, axis), x, g)
    assert np.all(np.abs(gx - fd) <= 1e-7 * (np.abs(fd) + 1)), f"max err {np.abs(gx - fd).max():.3e}"


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 5, 31, 1000, 2049])
def test_orthogonal_to_ones(rng, fn, dtype, C):
    """sum_j gx_j = 0 for rows that sum to 1: the reference's sum is (1 - sum_k p_k) * (p.g) (resp. sum g),
    i.e. only the rounding of the inputs; fs may differ from it by the sum of the bars."""
    a, g = inputs(rng, fn, (7, C), dtype, scale=5)
    gx = getattr(fs, fn)(a, g).astype(np.float64)
    a64, g64 = a.astype(np.float64), g.astype(np.float64)
    p = a64 if fn == "softmax_backward" else np.exp(a64)
    ref_sum = getattr(ref, fn)(a, g).sum(axis=1)
    if fn == "softmax_backward":
        bars = tol(dtype)["rel"] * p * (np.abs(g64) + np.sum(p * np.abs(g64), axis=1, keepdims=True))
    else:
        bars = tol(dtype)["rel"] * (np.abs(g64) + p * np.sum(np.abs(g64), axis=1, keepdims=True))
    slack = bars.sum(axis=1) + 4 * C * np.finfo(np.float64).eps * (np.abs(g64).sum(axis=1) + 1)
    assert np.all(np.abs(gx.sum(axis=1) - ref_sum) <= slack)
    exact = {np.float32: 1e-4, np.float64: 1e-10}[dtype] * (1 + np.abs(g64).sum(axis=1))
    assert np.all(np.abs(gx.sum(axis=1)) <= exact), "rows of the gradient do not sum to ~0"


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_grad_output_gives_zero(rng, dtype):
    """g = c * ones: softmax_backward = p * c * (1 - sum p) ~ 0, log_softmax_backward = c * (1 - C exp(lp)) ..."""
    p, _ = inputs(rng, "softmax_backward", (6, 23), dtype)
    g = np.full(p.shape, 2.5, dtype)
    gx = fs.softmax_backward(p, g)
    assert_softmax_backward_close(gx, ref.softmax_backward(p, g), p, g, dtype)
    assert np.all(np.abs(gx.astype(np.float64)) <= 2.5 * (tol(dtype)["rel"] * 2 * p + 1e-5 * p))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 8, 9, 40])
def test_masked_classes(rng, dtype, C):
    """p_j = 0 (lp_j = -inf): softmax_backward gives exactly 0 there, log_softmax_backward g_j (within its bar)."""
    x = make_logits(rng, (8, C), np.float64)
    mask = rng.random((8, C)) < 0.4
    mask[:, 0] = False
    mask[1, 1:] = True  # one class left
    x[mask] = -np.inf
    g = rng.standard_normal(x.shape).astype(dtype)
    p = ref.softmax(x).astype(dtype)
    lp = ref.log_softmax(x).astype(dtype)
    gx = check("softmax_backward", p, g)
    assert np.all(gx[mask] == 0)
    assert np.all(gx[1] == 0)  # a one-hot p: p (g - g_0) = 0 everywhere
    gl = check("log_softmax_backward", lp, g)
    assert np.all(np.isfinite(gl))


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [7, 64, 1000])
def test_tiny_probabilities(rng, fn, dtype, C):
    """Probabilities spanning the whole normal range of the dtype (the bar scales with p_j).

    (Subnormal p_j are avoided: the bar has no absolute term, and no rounding to a subnormal
    result can meet a purely relative bar.)"""
    lo = {np.float32: -80.0, np.float64: -700.0}[dtype]
    x = rng.uniform(lo, 0.0, (5, C))
    x[:, 0] = 0.0
    a = (ref.softmax(x) if fn == "softmax_backward" else ref.log_softmax(x)).astype(dtype)
    g = rng.standard_normal((5, C)).astype(dtype)
    check(fn, a, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_grad_values(rng, dtype):
    big = {np.float32: 1e30, np.float64: 1e250}[dtype]
    for fn in FNS:
        a, g = inputs(rng, fn, (5, 17), dtype)
        g = (g.astype(np.float64) * big).astype(dtype)
        check(fn, a, g)


# ----------------------------------------------------------------------------- special values


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 4, 8, 17])
def test_special_values_are_isolated(rng, fn, dtype, C):
    a, g = inputs(rng, fn, (8, C), dtype)
    a[1, C // 2] = np.nan  # NaN input row
    g[3, 0] = np.nan  # NaN grad_output
    g[5, C - 1] = np.inf  # infinite grad_output
    g[6, 0] = -np.inf
    a[7] = np.nan if fn == "softmax_backward" else -np.inf  # forward of an all -inf row / masked row
    gx = check(fn, a, g)  # NaN / inf positions as the reference
    assert np.isfinite(gx[[0, 2, 4]]).all(), "a special value leaked into another row"
    assert np.isnan(gx[3]).all(), "a NaN in grad_output must poison its whole row"


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_along_axis0_and_strided(rng, fn, dtype):
    a, g = inputs(rng, fn, (13, 6), dtype, axis=0)
    g[4, 4] = np.nan
    g[7, 5] = np.inf
    a[2, 1] = np.nan
    check(fn, a, g, 0)
    check(fn, a[::-1, ::2], g[::-1, ::2], 0)


# ----------------------------------------------------------------------------- empty inputs


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((0, 5), -1), ((3, 0), -1), ((0, 5), 0), ((2, 0, 3), 1), ((2, 0, 3), 0),
                                        ((0,), 0)])
def test_empty(fn, dtype, shape, axis):
    a = np.zeros(shape, dtype)
    r = getattr(fs, fn)(a, a.copy(), axis)
    assert r.shape == shape and r.dtype == dtype
    out = np.zeros(shape, dtype)
    assert getattr(fs, fn)(a, a.copy(), axis, out=out) is out


# ----------------------------------------------------------------------------- bad inputs


IMPLS = [pytest.param(fs, id="fastsoftmax"), pytest.param(ref, id="reference")]


def _raises(impl, fn, exc, a, g, **kw):
    arrays = [v for v in (a, g, kw.get("out")) if isinstance(v, np.ndarray)]
    snaps = [v.copy() for v in arrays]
    with pytest.raises(exc):
        getattr(impl, fn)(a, g, **kw)
    for v, s in zip(arrays, snaps):
        np.testing.assert_array_equal(v, s, err_msg="array modified although an exception was raised")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("da,dg", [(np.float32, np.float64), (np.float64, np.float32), (np.float16, np.float16),
                                   (np.float16, np.float32), (np.int64, np.int64), (np.float64, np.int64),
                                   (np.complex128, np.complex128), (np.bool_, np.bool_), (object, object)],
                         ids=lambda d: np.dtype(d).name)
def test_bad_dtypes(impl, fn, da, dg):
    a = np.ones((3, 4)).astype(da)
    g = np.ones((3, 4)).astype(dg)
    _raises(impl, fn, TypeError, a, g)
    if a.dtype.kind == "f" and a.dtype == g.dtype:
        _raises(impl, fn, TypeError, a, g, out=a)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("gshape", [(3,), (4,), (4, 3), (3, 4, 1), (1, 4), (3, 1), ()])
def test_shape_mismatch(impl, fn, gshape):
    a = np.full((3, 4), 0.25)
    _raises(impl, fn, ValueError, a, np.ones(gshape))
    _raises(impl, fn, ValueError, a, np.ones(gshape), out=a)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("axis", [2, -3, 10])
def test_axis_out_of_range(impl, fn, axis):
    a = np.full((3, 4), 0.25)
    g = np.ones((3, 4))
    _raises(impl, fn, np.exceptions.AxisError, a, g, axis=axis)
    _raises(impl, fn, np.exceptions.AxisError, a, g, axis=axis, out=g)
    _raises(impl, fn, TypeError, a, g, axis=1.0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["dtype", "shape", "shape_T", "readonly", "in_place_readonly", "not_array"])
def test_out_bad(impl, fn, dtype, case):
    rng = np.random.default_rng(5)
    a = rng.random((4, 6)).astype(dtype)
    g = rng.standard_normal((4, 6)).astype(dtype)
    if case == "in_place_readonly":
        g.flags.writeable = False
        out, exc = g, ValueError
    else:
        out, exc = bad_out(case, dtype)
    _raises(impl, fn, exc, a, g, out=out)


# ----------------------------------------------------------------------------- misaligned arrays


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, -1])
def test_misaligned_arrays(rng, fn, dtype, axis):
    a, g = inputs(rng, fn, (7, 37), dtype, axis)
    am, gm = misaligned(a), misaligned(g)
    check(fn, am, gm, axis)
    check(fn, a, gm, axis, out=misaligned(np.full(a.shape, 3.0, dtype)))
    gx = misaligned(g)  # in place on a misaligned array
    want = getattr(ref, fn)(a, g, axis)
    assert getattr(fs, fn)(a, gx, axis, out=gx) is gx
    if fn == "softmax_backward":
        assert_softmax_backward_close(gx, want, a, g, dtype, axis)
    else:
        assert_log_softmax_backward_close(gx, want, a, g, dtype, axis)


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("shape,axis", [((3, 5), -1), ((2, 3, 4), 1)])
def test_reference_is_the_vjp_of_the_reference_forward(rng, fn, shape, axis):
    x = make_logits(rng, shape, np.float64, scale=1.5)
    g = rng.standard_normal(shape)
    fwd = getattr(ref, fn.replace("_backward", ""))
    fd = _fd_vjp(lambda z: fwd(z, axis), x, g)
    gx = getattr(ref, fn)(fwd(x, axis), g, axis)
    assert np.all(np.abs(gx - fd) <= 1e-7 * (np.abs(fd) + 1))
