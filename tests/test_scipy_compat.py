"""SciPy's options of softmax, log_softmax and logsumexp (scipy.special): several axes or all
(axis=None), keepdims, the weights b and return_sign, integer and list input in float64; the
kernels against the float64 reference and against SciPy itself, within the accuracy bars."""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref

from conftest import assert_softmax_close, assert_value_close, tol

AXES = [None, (0, 2), (2, 0), (-1, -3), (1,), 1, -1, (0, 1, 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", AXES, ids=repr)
def test_axes_against_the_reference(isa, dtype, axis):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, 7, 9)) * 4).astype(dtype)
    x[1, 2, 3] = -np.inf  # a masked class
    assert_softmax_close(fs.softmax(x, axis), ref.softmax(x, axis), dtype)
    assert_value_close(fs.log_softmax(x, axis), ref.log_softmax(x, axis), dtype)
    for keepdims in (False, True):
        got = fs.logsumexp(x, axis, keepdims=keepdims)
        want = ref.logsumexp(x, axis, keepdims=keepdims)
        assert got.shape == want.shape and got.dtype == dtype
        assert_value_close(got, want, dtype)
    out = np.empty_like(x)
    assert fs.softmax(x, axis, out=out) is out
    assert_softmax_close(out, ref.softmax(x, axis), dtype)


@pytest.mark.parametrize("axis", AXES, ids=repr)
def test_as_scipy(axis):
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 6, 3))
    np.testing.assert_allclose(fs.softmax(x, axis), special.softmax(x, axis), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(fs.log_softmax(x, axis), special.log_softmax(x, axis), rtol=1e-12, atol=1e-12)
    for keepdims in (False, True):
        got, want = fs.logsumexp(x, axis, keepdims=keepdims), special.logsumexp(x, axis, keepdims=keepdims)
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    b = rng.standard_normal(x.shape)
    got, sign = fs.logsumexp(x, axis, b=b, return_sign=True)
    want, want_sign = special.logsumexp(x, axis, b=b, return_sign=True)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(sign, want_sign)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_b_and_the_sign(dtype):
    """With b of mixed signs the bar is rel times the sum's condition number
    sum |b_j| e^{x_j} / |sum b_j e^{x_j}|; a negative sum is NaN without return_sign."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 11)).astype(dtype)
    b = rng.standard_normal((6, 11))
    b[0, 3:] = 0.0  # weights of 0 count for nothing
    got, sign = fs.logsumexp(x, b=b, return_sign=True)
    want, want_sign = ref.logsumexp(x, b=b, return_sign=True)
    np.testing.assert_array_equal(sign, want_sign)
    x64 = x.astype(np.float64)
    cond = np.sum(np.abs(b) * np.exp(x64), axis=-1) / np.abs(np.sum(b * np.exp(x64), axis=-1))
    assert got.dtype == dtype and sign.dtype == dtype
    assert np.all(np.abs(got - want) <= tol(dtype)["rel"] * cond * (1 + np.abs(want)))
    plain = fs.logsumexp(x, b=b)
    assert np.array_equal(np.isnan(plain), want_sign < 0)
    np.testing.assert_array_equal(plain[want_sign > 0], got[want_sign > 0])
    # b broadcasts; b = 1 is the plain logsumexp
    assert_value_close(fs.logsumexp(x, b=np.ones(11)), ref.logsumexp(x), dtype)
    # all weights 0: log(0) = -inf, sign 0
    v, s = fs.logsumexp(x, b=np.zeros(11), return_sign=True)
    assert np.all(v == -np.inf) and np.all(s == 0)


def test_integer_list_and_scalar_input_in_float64():
    for x in ([1, 2, 3], np.array([1, 2, 3], np.int8), np.array([True, False, True])):
        for fn in ("softmax", "log_softmax", "logsumexp"):
            got = getattr(fs, fn)(x)
            assert got.dtype == np.float64
            np.testing.assert_allclose(got, getattr(ref, fn)(np.asarray(x, np.float64)), rtol=1e-12)
    assert fs.softmax(3.0, axis=None) == 1.0 and fs.softmax(3.0, axis=None).shape == ()
    assert fs.log_softmax(-2, axis=None) == 0.0
    assert fs.logsumexp(np.float32(2.0), axis=None) == np.float32(2.0)
    # the losses keep integer logits out
    with pytest.raises(TypeError):
        fs.cross_entropy(np.zeros((2, 3), np.int64), np.array([0, 1]))


@pytest.mark.parametrize("call,exc", [
    (lambda: fs.softmax(np.zeros((2, 3)), axis=(1, 1)), ValueError),
    (lambda: fs.softmax(np.zeros((2, 3)), axis=(0, 2)), np.exceptions.AxisError),
    (lambda: fs.logsumexp(np.zeros((2, 3)), axis=(0, 1.5)), TypeError),
    (lambda: fs.logsumexp(np.zeros((2, 3)), b=np.ones(4)), ValueError),
    (lambda: fs.logsumexp(np.zeros((2, 3)), b=np.ones(3, complex)), TypeError),
    (lambda: fs.softmax(np.zeros(3, complex)), TypeError),
    (lambda: fs.softmax(3.0), np.exceptions.AxisError),  # axis=-1 of a 0-d array
])
def test_bad_input(call, exc):
    with pytest.raises(exc):
        call()
