"""softmax, log_softmax and logsumexp against the float64 reference."""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import DTYPES, assert_softmax_close, assert_value_close, make_logits, tol

# every test here runs on each instruction-set path with 1 and 2 threads (conftest.backend)
pytestmark = pytest.mark.usefixtures("backend")

# Class counts that hit every SIMD main loop / tail combination.
TAIL_CS = list(range(1, 34)) + [63, 65, 127, 1000, 1023, 4097]


def check_all(x, axis=-1):
    """Run the three functions on x and compare each with the reference."""
    dt = x.dtype
    x_before = x.copy()
    p = fs.softmax(x, axis)
    lp = fs.log_softmax(x, axis)
    lse = fs.logsumexp(x, axis)
    for name, v in (("softmax", p), ("log_softmax", lp), ("logsumexp", lse)):
        assert isinstance(v, np.ndarray), name
        assert v.dtype == dt, f"{name}: dtype {v.dtype}, expected {dt}"
    assert p.shape == x.shape and lp.shape == x.shape
    assert lse.shape == x.shape[: axis % x.ndim] + x.shape[axis % x.ndim + 1:]
    assert_softmax_close(p, ref.softmax(x, axis), dt, "softmax")
    assert_value_close(lp, ref.log_softmax(x, axis), dt, "log_softmax")
    assert_value_close(lse, ref.logsumexp(x, axis), dt, "logsumexp")
    np.testing.assert_array_equal(x, x_before, err_msg="input was modified")
    return p, lp, lse


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", TAIL_CS)
def test_simd_tails(rng, isa, dtype, C):
    N = 5 if C < 1000 else 3
    check_all(make_logits(rng, (N, C), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 2), (1, 8), (1, 255), (1, 256), (1, 4096), (1, 65535),
                                   (1, 2 ** 16), (1, 2 ** 17), (257, 1000), (2, 2 ** 17 - 1)])
def test_shapes(rng, dtype, shape):
    check_all(make_logits(rng, shape, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_dimensional_input(rng, dtype):
    x = make_logits(rng, (37,), dtype)
    _, _, lse = check_all(x)
    assert isinstance(lse, np.ndarray) and lse.ndim == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 5), (5, 17, 9), (2, 33, 1), (1, 7, 3)])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_3d_every_axis(rng, dtype, shape, axis):
    check_all(make_logits(rng, shape, dtype), axis)


def _noncontiguous_views(rng, dtype):
    base = make_logits(rng, (14, 40), dtype)
    b3 = make_logits(rng, (6, 9, 22), dtype)
    return {
        "sliced_cols": (base[:, ::3], -1),
        "sliced_rows": (base[1::2, 5:38], -1),
        "transposed_last": (base.T, -1),
        "transposed_first": (base.T, 0),
        "neg_strides": (base[::-1, ::-1], -1),
        "neg_strides_axis0": (base[::-2, ::-1], 0),
        "fortran": (np.asfortranarray(base), -1),
        "3d_sliced_mid": (b3[:, ::2, 1:], 1),
        "3d_transposed": (b3.transpose(2, 0, 1), -1),
        "3d_neg_last": (b3[::-1, :, ::-2], -1),
        "3d_swapped_first": (np.swapaxes(b3, 0, 2)[::2], 0),
        "broadcast_rows": (np.broadcast_to(base[0], (5, 40)), -1),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(_noncontiguous_views(np.random.default_rng(0), np.float64)))
def test_noncontiguous_inputs(rng, dtype, case):
    x, axis = _noncontiguous_views(rng, dtype)[case]
    check_all(x, axis)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_separate(rng, fn, dtype):
    x = make_logits(rng, (9, 37), dtype)
    out = np.full(x.shape, 123.0, dtype)
    r = getattr(fs, fn)(x, out=out)
    assert r is out
    check = assert_softmax_close if fn == "softmax" else assert_value_close
    check(out, getattr(ref, fn)(x), dtype, fn)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, -1])
def test_out_in_place(rng, fn, dtype, axis):
    x = make_logits(rng, (9, 37), dtype)
    want = getattr(ref, fn)(x, axis)
    r = getattr(fs, fn)(x, axis, out=x)
    assert r is x
    check = assert_softmax_close if fn == "softmax" else assert_value_close
    check(x, want, dtype, fn)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_noncontiguous_and_in_place_view(rng, fn, dtype):
    check = assert_softmax_close if fn == "softmax" else assert_value_close
    x = make_logits(rng, (8, 30), dtype)
    # out with arbitrary strides (allowed for the softmax family)
    big = np.zeros((8, 60), dtype)
    out = big[:, ::-2]
    r = getattr(fs, fn)(x, out=out)
    assert r is out
    check(out, getattr(ref, fn)(x), dtype, fn)
    assert np.all(big[:, ::2] == 0), "wrote outside out"
    # in place on a strided view of a larger buffer
    buf = make_logits(rng, (8, 60), dtype)
    keep = buf[:, 1::2].copy()
    view = buf[:, ::2]
    want = getattr(ref, fn)(view)
    getattr(fs, fn)(view, out=view)
    check(view, want, dtype, fn)
    np.testing.assert_array_equal(buf[:, 1::2], keep, err_msg="wrote outside the view")


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_out_partially_overlapping_input(rng, fn):
    buf = make_logits(rng, (6, 41), np.float64)
    x = buf[:, :40]
    want = getattr(ref, fn)(x.copy())
    out = buf[:, 1:]
    getattr(fs, fn)(x, out=out)
    check = assert_softmax_close if fn == "softmax" else assert_value_close
    check(out, want, np.float64, fn)


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 7, 8, 33, 1000])
def test_large_magnitudes_no_overflow(rng, dtype, C):
    x = np.empty((6, C), dtype)
    x[0] = 1e4
    x[1] = -1e4
    x[2] = rng.uniform(-1e4, 1e4, C)
    x[3] = 1e4 + rng.uniform(-20, 20, C).round(2)
    x[4] = -1e4 + rng.uniform(-20, 20, C).round(2)
    x[5] = np.where(rng.random(C) < 0.5, 1e4, -1e4)
    p, lp, lse = check_all(x)
    assert np.isfinite(p).all() and np.isfinite(lp).all() and np.isfinite(lse).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [2, 5, 8, 9, 17, 64, 1001])
def test_masked_classes(rng, dtype, C):
    x = make_logits(rng, (7, C), dtype)
    mask = rng.random((7, C)) < 0.4
    mask[:, 0] = False  # at least one finite entry per row
    mask[1, :] = np.arange(C) > 0  # all but one masked
    x[mask] = -np.inf
    p, lp, lse = check_all(x)
    assert np.all(p[mask] == 0.0), "masked classes must have probability exactly 0"
    assert np.all(lp[mask] == -np.inf)
    assert np.all(np.isfinite(p[~mask])) and np.all(np.isfinite(lp[~mask])) and np.isfinite(lse).all()
    assert p[1, 0] == 1.0 and lp[1, 0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3, 8, 16, 37])
def test_special_rows_are_isolated(rng, dtype, C):
    x = make_logits(rng, (8, C), dtype)
    x[1] = -np.inf  # all -inf: NaN (log)softmax, -inf logsumexp
    x[3, C // 2] = np.nan  # NaN: that row only
    x[5, C - 1] = np.inf  # +inf: NaN (log)softmax, +inf logsumexp
    x[6, 0] = np.inf
    x[6, C // 2] = np.nan  # NaN wins over +inf in logsumexp
    p, lp, lse = check_all(x)
    for r in (1, 3, 5, 6):
        assert np.isnan(p[r]).all() and np.isnan(lp[r]).all()
    ok = [0, 2, 4, 7]
    assert np.isfinite(p[ok]).all() and np.isfinite(lp[ok]).all() and np.isfinite(lse[ok]).all()
    assert lse[1] == -np.inf and np.isnan(lse[3]) and lse[5] == np.inf and np.isnan(lse[6])


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_rows_along_axis0_and_strided(rng, dtype):
    x = make_logits(rng, (13, 6), dtype)
    x[:, 2] = -np.inf
    x[4, 4] = np.nan
    x[7, 5] = np.inf
    check_all(x, 0)
    check_all(x[::-1, ::2], 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_empty_class_axis(dtype):
    x = np.zeros((3, 0), dtype)
    lse = fs.logsumexp(x)
    assert lse.dtype == dtype and lse.shape == (3,) and np.all(lse == -np.inf)
    lse = fs.logsumexp(np.zeros((0, 2, 4), dtype), axis=1)
    assert lse.shape == (0, 4) and lse.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_empty_inputs(dtype, fn):
    for shape, axis in [((0, 5), -1), ((3, 0), -1), ((0, 5), 0), ((2, 0, 3), 1)]:
        x = np.zeros(shape, dtype)
        r = getattr(fs, fn)(x, axis)
        assert r.shape == shape and r.dtype == dtype
    assert fs.logsumexp(np.zeros((0, 5), dtype)).shape == (0,)


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 5, 31, 1000, 4097])
def test_rows_sum_to_one(rng, dtype, C):
    x = make_logits(rng, (11, C), dtype, scale=10)
    p = fs.softmax(x).astype(np.float64)
    # From the bar: |sum p - 1| <= rel * sum p_ref + C * abs + (float64 rounding of the sums).
    t, a = tol(dtype)["rel"], tol(dtype)["softmax_abs"]
    assert np.all(np.abs(p.sum(axis=1) - 1.0) <= t + C * a + 4 * C * np.finfo(np.float64).eps)
    assert np.all(p >= 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shift", [-3000.0, -1.0, 1.0, 512.0, 5000.0])
def test_shift_invariance(rng, dtype, shift):
    # Grid values so that x + shift is exact in float32 too.
    x = (rng.integers(-3200, 3200, size=(9, 45)) / 64.0).astype(dtype)
    xs = x + dtype(shift)
    np.testing.assert_array_equal(xs - dtype(shift), x)  # exactness of the shift
    p_ref = ref.softmax(x)
    lp_ref = ref.log_softmax(x)
    assert_softmax_close(fs.softmax(xs), p_ref, dtype, "softmax(x + c)")
    assert_value_close(fs.log_softmax(xs), lp_ref, dtype, "log_softmax(x + c)")
    assert_value_close(fs.logsumexp(xs), ref.logsumexp(x) + shift, dtype, "logsumexp(x + c)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_consistent_with_softmax_and_logsumexp(rng, dtype):
    x = make_logits(rng, (20, 50), dtype)
    lp = fs.log_softmax(x).astype(np.float64)
    lse = fs.logsumexp(x).astype(np.float64)
    # log_softmax = x - logsumexp, both within their bars of the reference
    assert_value_close(x - lse[:, None], ref.log_softmax(x), dtype, "x - logsumexp")
    assert_value_close(lp, x.astype(np.float64) - ref.logsumexp(x)[:, None], dtype, "log_softmax")


def test_list_input_is_accepted():
    p = fs.softmax([[1.0, 2.0, 3.0]])
    assert p.dtype == np.float64
    assert_softmax_close(p, ref.softmax(np.array([[1.0, 2.0, 3.0]])), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_finite_logits(dtype):
    """Logits near the largest finite value: no spurious NaN; overflow only where the result overflows."""
    big = {np.float32: 3e38, np.float64: 1.7e308}[dtype]
    x = np.array([[big, -big, 0, 1], [big, big, big, 0.0], [-big, -big, -big, -big], [big / 2, -big / 2, 0, 0],
                  [-big, 1.0, 2.0, -big]], dtype)
    p, lp, lse = check_all(x)
    assert not np.isnan(p).any() and not np.isnan(lp).any() and not np.isnan(lse).any()
    np.testing.assert_array_equal(p[[0, 3]], np.array([[1, 0, 0, 0], [1, 0, 0, 0]], dtype))
