"""Bad inputs: exception type, message content, and nothing written to out / logits.

Every check runs on both the public function and the reference, which must agree.
"""

import re

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import bad_out

IMPLS = [pytest.param(fs, id="fastsoftmax"), pytest.param(ref, id="reference")]


def _snapshot(*arrays):
    return [a.copy() for a in arrays]


def _unchanged(arrays, snaps):
    for a, s in zip(arrays, snaps):
        np.testing.assert_array_equal(a, s, err_msg="array modified although an exception was raised")


def _ce_raises(impl, exc, logits, target, match=None, **kw):
    """cross_entropy must raise ``exc`` and leave logits (and out) untouched.

    Runs twice: with a separate out= (return_grad=True) and with out=logits (in place),
    unless ``out`` is given explicitly in kw.
    """
    variants = [kw] if "out" in kw or not isinstance(logits, np.ndarray) or logits.dtype not in (
        np.float32, np.float64) else [
        dict(kw),
        dict(kw, return_grad=True, out=np.full(logits.shape, 5.0, logits.dtype)),
        dict(kw, return_grad=True, out=logits),
    ]
    for v in variants:
        arrays = [a for a in (logits, v.get("out")) if isinstance(a, np.ndarray)]
        snaps = _snapshot(*arrays)
        with pytest.raises(exc, match=match) as info:
            impl.cross_entropy(logits, target, **v)
        _unchanged(arrays, snaps)
    return info


# ----------------------------------------------------------------------------- targets


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("value,row", [(7, 3), (5, 0), (-1, 2), (-101, 1), (2 ** 40, 3)])
def test_target_out_of_range_2d(impl, value, row):
    x = np.random.default_rng(1).standard_normal((4, 5))
    t = np.array([0, 1, 2, 4])
    t[row] = value
    info = _ce_raises(impl, IndexError, x, t)
    msg = str(info.value)
    assert re.search(rf"(?<![\d-]){value}(?!\d)", msg), msg
    assert re.search(rf"\brow\D*{row}\b", msg), msg


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_target_out_of_range_3d_reports_tuple_row(impl, dtype):
    x = np.zeros((3, 6, 4), dtype)  # class axis 1: batch shape (3, 4)
    t = np.zeros((3, 4), np.int64)
    t[2, 1] = 9
    info = _ce_raises(impl, IndexError, x, t, axis=1)
    msg = str(info.value)
    assert "9" in msg and re.search(r"\(\s*2\s*,\s*1\s*\)", msg), msg


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("row", [1023, 1024, 2500, 3999])
def test_target_out_of_range_far_down_a_long_batch(impl, row):
    """The first bad target is found and reported in any block of the target check (1024 rows);
    a later bad one does not hide it, an earlier ignored one does not count."""
    x = np.zeros((4001, 7), np.float32)
    t = np.arange(4001) % 7
    t[row] = 7
    t[-1] = -3
    t[row // 2] = -100
    info = _ce_raises(impl, IndexError, x, t)
    msg = str(info.value)
    assert re.search(rf"target 7 at row {row}\b", msg), msg


@pytest.mark.parametrize("impl", IMPLS)
def test_target_out_of_range_not_masked_by_ignore_index(impl):
    x = np.zeros((4, 5))
    _ce_raises(impl, IndexError, x, np.array([-100, 0, 5, -100]))
    # a different ignore_index: -100 is now an ordinary (out of range) value
    info = _ce_raises(impl, IndexError, x, np.array([1, -100, 1, 1]), ignore_index=1)
    assert "-100" in str(info.value)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tdtype", [np.uint8, np.int8, np.uint64])
def test_target_out_of_range_small_and_unsigned_dtypes(impl, tdtype):
    x = np.zeros((3, 5), np.float32)
    t = np.array([0, 5, 1]).astype(tdtype)
    info = _ce_raises(impl, IndexError, x, t)
    assert "5" in str(info.value) and re.search(r"\b1\b", str(info.value))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(3,), (5,), (4, 1), (1, 4), ()])
def test_index_target_shape_mismatch(impl, shape):
    x = np.zeros((4, 6))
    _ce_raises(impl, ValueError, x, np.zeros(shape, np.int64))


@pytest.mark.parametrize("impl", IMPLS)
def test_index_target_with_full_logits_shape_is_rejected(impl):
    _ce_raises(impl, ValueError, np.zeros((4, 6)), np.zeros((4, 6), np.int64))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(4,), (4, 5), (6, 4), (4, 6, 1)])
def test_prob_target_shape_mismatch(impl, shape):
    _ce_raises(impl, ValueError, np.zeros((4, 6)), np.full(shape, 0.1))


@pytest.mark.parametrize("impl", IMPLS)
def test_target_shape_mismatch_3d(impl):
    x = np.zeros((2, 5, 3))
    _ce_raises(impl, ValueError, x, np.zeros((2, 5), np.int64), axis=1)  # should be (2, 3)
    _ce_raises(impl, ValueError, x, np.zeros((2, 3), np.int64), axis=-1)  # should be (2, 5)


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("wshape", [(4,), (6,), (1,), (5, 1), (1, 5), ()])
def test_weight_wrong_shape(impl, wshape):
    x = np.zeros((3, 5), np.float32)
    info = _ce_raises(impl, ValueError, x, np.array([0, 1, 2]), weight=np.ones(wshape))
    assert "weight" in str(info.value)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("eps", [-0.1, 1.0000001, 2.0, -1e-12, float("nan"), float("inf")])
def test_label_smoothing_outside_unit_interval(impl, eps):
    info = _ce_raises(impl, ValueError, np.zeros((3, 5)), np.array([0, 1, 2]), label_smoothing=eps)
    assert "label_smoothing" in str(info.value)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reduction", ["avg", "MEAN", "", "elementwise_mean", "sum "])
def test_unknown_reduction(impl, reduction):
    info = _ce_raises(impl, ValueError, np.zeros((3, 5)), np.array([0, 1, 2]), reduction=reduction)
    assert "reduction" in str(info.value)


# ----------------------------------------------------------------------------- dtypes


# float16 is accepted (computed in float32): tests/test_float16.py
BAD_DTYPES = [np.int32, np.int64, np.uint8, np.complex64, np.complex128, np.bool_, object]
if hasattr(np, "longdouble") and np.dtype(np.longdouble) != np.dtype(np.float64):
    BAD_DTYPES.append(np.longdouble)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_wrong_dtype(impl, bad):
    x = np.ones((3, 4)).astype(bad)
    for fn in ("softmax", "log_softmax", "logsumexp"):
        if np.dtype(bad).kind in "biu":  # integers and bools are computed in float64, as SciPy does
            np.testing.assert_array_equal(getattr(impl, fn)(x), getattr(impl, fn)(x.astype(np.float64)))
            continue
        with pytest.raises(TypeError) as info:
            getattr(impl, fn)(x)
        assert "float32" in str(info.value) and "float64" in str(info.value), (fn, str(info.value))
    snap = x.copy()
    with pytest.raises(TypeError) as info:
        impl.cross_entropy(x, np.array([0, 1, 2]))
    assert "float32" in str(info.value) and "float64" in str(info.value)
    with pytest.raises(TypeError):
        impl.cross_entropy(x, np.array([0, 1, 2]), return_grad=True, out=x)
    np.testing.assert_array_equal(x, snap)


# ----------------------------------------------------------------------------- out=


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_out_wrong_dtype(impl, dtype):
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    out = np.full((4, 5), 3.0, other)
    _ce_raises(impl, TypeError, x, np.array([0, 1, 2, 3]), return_grad=True, out=out)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", ["shape", "shape_T", "noncontig", "fortran", "negative", "readonly"])
def test_cross_entropy_out_bad_layout(impl, case):
    x = np.random.default_rng(3).standard_normal((4, 6))
    if case == "shape":
        out = np.full((4, 5), 3.0)
    elif case == "shape_T":
        out = np.full((6, 4), 3.0)
    elif case == "noncontig":
        out = np.full((4, 12), 3.0)[:, ::2]
    elif case == "fortran":
        out = np.asfortranarray(np.full((4, 6), 3.0))
    elif case == "negative":
        out = np.full((4, 6), 3.0)[::-1]
    else:
        out = np.full((4, 6), 3.0)
        out.flags.writeable = False
    base = out.base if out.base is not None else out
    snap = base.copy()
    info = _ce_raises(impl, ValueError, x, np.array([0, 1, 2, 3]), return_grad=True, out=out)
    np.testing.assert_array_equal(base, snap)
    if case == "readonly":
        assert re.search(r"read-?only|writ", str(info.value)), str(info.value)


@pytest.mark.parametrize("impl", IMPLS)
def test_cross_entropy_readonly_logits_in_place(impl):
    x = np.random.default_rng(4).standard_normal((4, 6))
    x.flags.writeable = False
    with pytest.raises(ValueError):
        impl.cross_entropy(x, np.array([0, 1, 2, 3]), return_grad=True, out=x)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("case", ["dtype", "shape", "shape_T", "readonly", "in_place_readonly"])
def test_softmax_out_bad(impl, fn, case):
    x = np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32)
    if case == "in_place_readonly":
        x.flags.writeable = False
        out, exc = x, ValueError
    else:
        out, exc = bad_out(case, x.dtype)
    snaps = _snapshot(x, out)
    with pytest.raises(exc):
        getattr(impl, fn)(x, out=out)
    _unchanged([x, out], snaps)


# ----------------------------------------------------------------------------- axis


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("axis", [2, -3, 10])
def test_axis_out_of_range(impl, axis):
    x = np.zeros((3, 4))
    for fn in ("softmax", "log_softmax", "logsumexp"):
        with pytest.raises(np.exceptions.AxisError):
            getattr(impl, fn)(x, axis)
    snap = x.copy()
    with pytest.raises(np.exceptions.AxisError):
        impl.cross_entropy(x, np.zeros(3, np.int64), axis=axis, return_grad=True, out=x)
    np.testing.assert_array_equal(x, snap)


def test_axis_error_is_value_and_index_error():
    with pytest.raises(ValueError):
        fs.softmax(np.zeros((2, 2)), axis=5)
    with pytest.raises(IndexError):
        fs.logsumexp(np.zeros((2, 2)), axis=-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_axis_must_be_an_integer(impl):
    x = np.zeros((3, 4))
    for fn in ("softmax", "log_softmax", "logsumexp"):
        with pytest.raises(TypeError):
            getattr(impl, fn)(x, 1.0)
        assert getattr(impl, fn)(x, np.int64(0)).shape[0] in (3, 4)  # NumPy integers are fine
    with pytest.raises(TypeError):
        impl.cross_entropy(x, np.zeros(3, np.int64), axis=1.0)


# ---------------------------------------------------------------- hints for PyTorch users

@pytest.mark.parametrize("call", [
    lambda: fs.softmax(np.zeros((2, 3)), dim=1),
    lambda: fs.log_softmax(np.zeros((2, 3)), dim=1),
    lambda: fs.logsumexp(np.zeros((2, 3)), dim=1),
    lambda: fs.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), dim=1),
    lambda: fs.CrossEntropyLoss(dim=1),
])
def test_dim_is_axis_here(call):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'dim': the axis is axis= here"):
        call()


def test_other_unexpected_keywords_keep_python_s_message():
    with pytest.raises(TypeError, match=r"softmax\(\) got an unexpected keyword argument 'axes'$"):
        fs.softmax(np.zeros(3), axes=0)


def test_hint_for_float_class_indices():
    with pytest.raises(ValueError, match=r"class indices must have an integer dtype"):
        fs.cross_entropy(np.zeros((4, 3)), np.array([0.0, 1.0, 2.0, 1.0]))


def test_hint_for_pytorch_s_layout():
    """(N, C, d) logits with (N, d) targets and the default last axis: pass axis=1."""
    with pytest.raises(ValueError, match=r"PyTorch's layout \(N, C, d1, ...\) the classes are on axis 1"):
        fs.cross_entropy(np.zeros((4, 3, 5)), np.zeros((4, 5), np.int64))
    assert fs.cross_entropy(np.zeros((4, 3, 5)), np.zeros((4, 5), np.int64), axis=1) == pytest.approx(np.log(3))
