"""Arrays whose data is not aligned to the item size (a byte buffer at an odd
offset): the kernels need aligned data, so the Python layer copies inputs and
writes outputs through a temporary; a misaligned gradient ``out=`` is refused
before anything is written."""

import numpy as np
import pytest

import fastsoftmax as fs
import fastsoftmax.reference as ref
from conftest import DTYPES, assert_grad_close, assert_softmax_close, assert_value_close, misaligned


@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_inputs_and_outputs(rng, dtype):
    x = rng.standard_normal((7, 37)).astype(dtype)
    xm = misaligned(x)
    assert_softmax_close(fs.softmax(xm), ref.softmax(x), dtype)
    assert_value_close(fs.log_softmax(xm, axis=0), ref.log_softmax(x, axis=0), dtype, "log_softmax")
    assert_value_close(fs.logsumexp(xm), ref.logsumexp(x), dtype, "logsumexp")
    out = misaligned(np.zeros_like(x))
    fs.softmax(xm, out=out)
    assert_softmax_close(out, ref.softmax(x), dtype)
    t = rng.integers(0, 37, 7)
    loss, grad = fs.cross_entropy(xm, t, return_grad=True, label_smoothing=0.1)
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, label_smoothing=0.1)
    assert_value_close(loss, loss_ref, dtype, "loss")
    assert_grad_close(grad, grad_ref, dtype, 1 / 7, "grad")
    p = rng.random((7, 37)).astype(dtype)
    p /= p.sum(axis=1, keepdims=True)
    assert_value_close(fs.cross_entropy(xm, misaligned(p)), ref.cross_entropy(x, p), dtype, "prob loss")
    w = rng.uniform(0.5, 2.0, 37).astype(dtype)
    loss_w = fs.cross_entropy(xm, t, weight=misaligned(w), label_smoothing=0.1)
    assert_value_close(loss_w, ref.cross_entropy(x, t, weight=w, label_smoothing=0.1), dtype, "weighted loss")
    g = rng.standard_normal((7, 37)).astype(dtype)
    pr = fs.softmax(x)
    gx = fs.softmax_backward(misaligned(pr), misaligned(g))
    want = ref.softmax_backward(pr.astype(np.float64), g.astype(np.float64))
    assert np.allclose(gx, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_gradient_out_is_refused_before_writing(rng, dtype):
    x = rng.standard_normal((5, 9)).astype(dtype)
    out = misaligned(np.full_like(x, 7.0))
    with pytest.raises(ValueError, match="aligned"):
        fs.cross_entropy(x, np.arange(5), return_grad=True, out=out)
    assert (out == 7.0).all()
