"""Property-based tests (hypothesis): random shapes, values and options vs the reference.

Example counts are small (profile "fastsoftmax" in conftest: max_examples=25,
deadline=None) so that the suite stays fast; the seed follows FASTSOFTMAX_TEST_SEED.
"""

import numpy as np
import pytest
from hypothesis import given, seed as hyp_seed, strategies as st
from hypothesis.extra import numpy as hnp

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import SEED, assert_grad_close, assert_softmax_close, assert_value_close, grad_row_factor, tol

dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def logits_and_axis(draw, specials=False, max_c=70):
    dtype = draw(dtypes)
    ndim = draw(st.integers(1, 3))
    shape = list(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    shape[axis] = draw(st.integers(1, max_c))
    width = 32 if dtype == np.float32 else 64
    scale = draw(st.sampled_from([1.0, 30.0, 1e4]))
    elements = st.floats(-scale, scale, allow_nan=False, allow_infinity=False, width=width)
    if specials:
        elements = st.one_of(elements, st.sampled_from([-np.inf, np.inf, np.nan]))
    x = draw(hnp.arrays(dtype, tuple(shape), elements=elements))
    # sometimes a non-contiguous view of the same values
    if draw(st.booleans()) and x.ndim >= 1:
        x = np.flip(np.flip(x, 0).copy(), 0)
    return x, axis


@hyp_seed(SEED)
@given(logits_and_axis())
def test_softmax_family_matches_reference(xa):
    x, axis = xa
    dt = x.dtype
    assert_softmax_close(fs.softmax(x, axis), ref.softmax(x, axis), dt)
    assert_value_close(fs.log_softmax(x, axis), ref.log_softmax(x, axis), dt, "log_softmax")
    assert_value_close(fs.logsumexp(x, axis), ref.logsumexp(x, axis), dt, "logsumexp")


@hyp_seed(SEED)
@given(logits_and_axis(specials=True, max_c=20))
def test_softmax_family_special_values_match_reference(xa):
    x, axis = xa
    dt = x.dtype
    assert_softmax_close(fs.softmax(x, axis), ref.softmax(x, axis), dt)
    assert_value_close(fs.log_softmax(x, axis), ref.log_softmax(x, axis), dt, "log_softmax")
    assert_value_close(fs.logsumexp(x, axis), ref.logsumexp(x, axis), dt, "logsumexp")


@hyp_seed(SEED)
@given(logits_and_axis(), st.integers(-40, 40))
def test_softmax_properties(xa, k):
    x, axis = xa
    dt = x.dtype
    p = fs.softmax(x, axis).astype(np.float64)
    C = x.shape[axis]
    t, a = tol(dt)["rel"], tol(dt)["softmax_abs"]
    assert np.all(p >= 0) and np.all(p <= 1)
    # from the softmax bar: |sum p - 1| <= t * sum p_ref + C * a (+ float64 rounding of the sums)
    assert np.all(np.abs(p.sum(axis=axis) - 1.0) <= t + C * a + 4 * C * 2.3e-16)
    # shift invariance with an exactly representable shift of a small integer grid
    xi = np.round(np.clip(x, -1000, 1000)).astype(dt)
    c = dt.type(k * 16)
    assert_softmax_close(fs.softmax(xi + c, axis), ref.softmax(xi, axis), dt, "softmax(x + c)")
    assert_value_close(fs.logsumexp(xi + c, axis), ref.logsumexp(xi, axis) + float(c), dt, "lse(x + c)")


@st.composite
def ce_problem(draw):
    dtype = draw(dtypes)
    ndim = draw(st.integers(1, 3))
    shape = list(draw(st.lists(st.integers(0 if ndim > 1 else 1, 5), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    C = draw(st.integers(1, 40))
    shape[axis] = C
    shape = tuple(shape)
    ax = axis % ndim
    batch = shape[:ax] + shape[ax + 1:]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale = draw(st.sampled_from([0.1, 3.0, 50.0, 1e4]))
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    kind = draw(st.sampled_from(["index", "prob"]))
    ignore_index = draw(st.sampled_from([-100, -1, 0]))
    if kind == "index":
        t = rng.integers(0, C, batch).astype(draw(st.sampled_from([np.int64, np.int32, np.uint8])))
        mask = rng.random(batch) < draw(st.sampled_from([0.0, 0.3, 1.0]))
        if ignore_index < 0:
            t = t.astype(np.int64)  # negative ignore_index needs a signed dtype
        t[mask] = ignore_index
    else:
        t = rng.dirichlet(np.ones(C) * draw(st.sampled_from([0.1, 1.0])), size=batch).astype(dtype)
        t = np.moveaxis(t.reshape(batch + (C,)), -1, ax)
    opts = dict(
        axis=axis,
        weight=rng.uniform(0.5, 2.0, C).astype(dtype) if draw(st.booleans()) else None,
        ignore_index=ignore_index,
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
    )
    return x, t, opts


@hyp_seed(SEED)
@given(ce_problem(), st.booleans())
def test_cross_entropy_matches_reference(problem, in_place):
    x, t, opts = problem
    dt = x.dtype
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, **opts)
    fwd = fs.cross_entropy(x, t, **opts)
    assert_value_close(fwd, loss_ref, dt, "loss (forward only)")
    if in_place:
        x = x.copy()
        loss, grad = fs.cross_entropy(x, t, return_grad=True, out=x, **opts)
        assert grad is x
    else:
        loss, grad = fs.cross_entropy(x, t, return_grad=True, **opts)
    np.testing.assert_array_equal(loss, fwd)
    assert_value_close(loss, loss_ref, dt, "loss")
    assert grad.dtype == dt and grad.shape == grad_ref.shape
    assert_grad_close(grad, grad_ref, dt, grad_row_factor(x.shape, t, **opts))


@st.composite
def ce_problem_with_specials(draw):
    x, t, opts = draw(ce_problem())
    if x.size:
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
        flat = x.reshape(-1) if x.flags.c_contiguous else None
        if flat is not None:
            k = draw(st.integers(1, max(1, flat.size // 3)))
            idx = rng.choice(flat.size, size=min(k, flat.size), replace=False)
            flat[idx] = rng.choice(np.array([-np.inf, -np.inf, -np.inf, np.inf, np.nan], x.dtype), size=idx.size)
    return x, t, opts


@hyp_seed(SEED)
@given(ce_problem_with_specials())
def test_cross_entropy_special_values_match_reference(problem):
    """-inf (masked classes), +inf and NaN anywhere: same NaN/inf pattern and values as the reference."""
    x, t, opts = problem
    dt = x.dtype
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, **opts)
    loss, grad = fs.cross_entropy(x, t, return_grad=True, **opts)
    assert_value_close(loss, loss_ref, dt, "loss")
    assert_grad_close(grad, grad_ref, dt, grad_row_factor(x.shape, t, **opts))
