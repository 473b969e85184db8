"""Loss objects (fastsoftmax.losses): bitwise the functional results, grad_output, errors, training.

* forward / backward give exactly (bitwise) what the functional API returns with
  ``return_grad=True``, for every option, target kind, axis and dtype;
* ``backward(grad_output)`` equals the functional gradient times ``grad_output`` (cast to
  the loss's dtype), computed in place (``grad_output=1`` returns the kernel's array);
* errors: bad options at construction (same type and message as the function), backward
  before a forward / twice / after a failed forward, bad ``grad_output``;
* training: a few epochs of NumPy softmax regression (CrossEntropyLoss) and multi-label
  logistic regression (BCEWithLogitsLoss) in float64 end with the same weights, to 1e-12,
  as the same training with the float64 reference loss.
"""

import doctest

import numpy as np
import pytest

from fastsoftmax import functional as F
from fastsoftmax import losses
from fastsoftmax import reference as ref
from fastsoftmax.losses import BCEWithLogitsLoss, CrossEntropyLoss
from conftest import make_index_target, make_logits, make_prob_target

HAVE_BCE = hasattr(F, "binary_cross_entropy_with_logits")
needs_bce = pytest.mark.skipif(not HAVE_BCE, reason="fastsoftmax.binary_cross_entropy_with_logits not available")


def _float16_supported():
    try:
        F.cross_entropy(np.zeros((1, 2), np.float16), np.zeros(1, np.int64))
    except TypeError:
        return False
    return True


DTYPES = [np.float32, np.float64] + ([np.float16] if _float16_supported() else [])


def _loss_dtype(dtype):
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def assert_bitwise(got, want, what):
    """Same type, dtype, shape and bits (NaN payloads aside, NaN where NaN)."""
    assert type(got) is type(want), f"{what}: type {type(got)} != {type(want)}"
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.array_equal(got, want, equal_nan=True), f"{what}: values differ"
    same_sign = np.signbit(got) == np.signbit(want)
    assert np.all(same_sign | np.isnan(want)), f"{what}: signs of zeros differ"


# ----------------------------------------------------------------------------- cases

# (name, logits shape, axis, target kind, options)
CE_CASES = [
    ("default", (37, 11), -1, "index", {}),
    ("sum", (37, 11), -1, "index", dict(reduction="sum")),
    ("none", (37, 11), -1, "index", dict(reduction="none")),
    ("weight", (37, 11), -1, "index", dict(weight="w")),
    ("ignore", (37, 11), -1, "index", dict(ignore_index=3)),
    ("ignore-neg-none", (37, 11), -1, "index", dict(ignore_index=-1, reduction="none")),
    ("smooth", (37, 11), -1, "index", dict(label_smoothing=0.2)),
    ("z_loss", (37, 11), -1, "index", dict(z_loss=1e-2)),
    ("all-index", (37, 11), -1, "index",
     dict(weight="w", ignore_index=-1, label_smoothing=0.1, z_loss=1e-3, reduction="sum")),
    ("all-index-mean", (37, 11), -1, "index",
     dict(weight="w", ignore_index=-1, label_smoothing=0.1, z_loss=1e-3)),
    ("prob", (37, 11), -1, "prob", {}),
    ("prob-all-none", (37, 11), -1, "prob",
     dict(weight="w", label_smoothing=0.05, z_loss=1e-2, reduction="none")),
    ("axis1-3d", (5, 9, 7), 1, "index", dict(weight="w", ignore_index=-1, label_smoothing=0.1)),
    ("axis1-3d-none", (5, 9, 7), 1, "index", dict(reduction="none", z_loss=1e-3)),
    ("axis0-prob-none", (9, 6), 0, "prob", dict(reduction="none")),
    ("long-rows", (3, 5000), -1, "index", dict(label_smoothing=0.1)),
]


def _ce_inputs(rng, shape, axis, kind, options, dtype):
    """logits, target and the options with "w" replaced by a weight vector."""
    ax = axis % len(shape)
    C = shape[ax]
    batch = shape[:ax] + shape[ax + 1:]
    logits = make_logits(rng, shape, dtype)
    options = dict(options)
    if options.get("weight") == "w":
        options["weight"] = rng.uniform(0.25, 2.0, size=C)
    if kind == "index":
        ign = options.get("ignore_index")
        target = make_index_target(rng, batch, C, ignore_index=ign)
    else:
        target = make_prob_target(rng, shape, axis)
    return logits, target, options


# (name, logits shape, options)
BCE_CASES = [
    ("default", (23, 9), {}),
    ("sum", (23, 9), dict(reduction="sum")),
    ("none", (23, 9), dict(reduction="none")),
    ("weight-elementwise", (23, 9), dict(weight="full")),
    ("weight-per-class", (23, 9), dict(weight="class")),
    ("pos_weight", (23, 9), dict(pos_weight="class")),
    ("all-none", (23, 9), dict(weight="class", pos_weight="class", reduction="none")),
    ("all-sum-3d", (4, 6, 5), dict(weight="full", pos_weight="class", reduction="sum")),
    ("1d", (17,), dict(pos_weight="class")),
]


def _bce_inputs(rng, shape, options, dtype):
    logits = make_logits(rng, shape, dtype)
    target = (rng.random(shape) < 0.3).astype(np.float64)
    options = dict(options)
    for name in ("weight", "pos_weight"):
        if options.get(name) == "full":
            options[name] = rng.uniform(0.25, 2.0, size=shape)
        elif options.get(name) == "class":
            options[name] = rng.uniform(0.25, 3.0, size=shape[-1])
    return logits, target, options


# ----------------------------------------------------------------------------- bitwise = functional


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,shape,axis,kind,options", CE_CASES, ids=[c[0] for c in CE_CASES])
def test_cross_entropy_loss_is_the_functional_result(rng, dtype, name, shape, axis, kind, options):
    logits, target, options = _ce_inputs(rng, shape, axis, kind, options, dtype)
    want_loss, want_grad = F.cross_entropy(logits, target, axis=axis, return_grad=True, **options)
    loss_fn = CrossEntropyLoss(axis=axis, **options)
    before = logits.copy()
    loss = loss_fn(logits, target)
    assert_bitwise(loss, want_loss, "loss")
    grad = loss_fn.backward()
    assert_bitwise(grad, want_grad, "grad")
    assert grad.dtype == logits.dtype and grad.shape == logits.shape
    assert np.array_equal(logits, before), "the forward pass modified the logits"
    # forward() is the same as calling the object, and the object is reusable
    assert_bitwise(loss_fn.forward(logits, target), want_loss, "loss (second forward)")
    assert_bitwise(loss_fn.backward(1.0), want_grad, "grad (second forward)")


@needs_bce
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,shape,options", BCE_CASES, ids=[c[0] for c in BCE_CASES])
def test_bce_loss_is_the_functional_result(rng, dtype, name, shape, options):
    logits, target, options = _bce_inputs(rng, shape, options, dtype)
    want_loss, want_grad = F.binary_cross_entropy_with_logits(logits, target, return_grad=True, **options)
    loss_fn = BCEWithLogitsLoss(**options)
    before = logits.copy()
    loss = loss_fn(logits, target)
    assert_bitwise(loss, want_loss, "loss")
    grad = loss_fn.backward()
    assert_bitwise(grad, want_grad, "grad")
    assert np.array_equal(logits, before), "the forward pass modified the logits"
    for target_kind in (target.astype(bool), target.astype(np.int8)):  # bool / integer targets
        want_loss, want_grad = F.binary_cross_entropy_with_logits(logits, target_kind, return_grad=True,
                                                                  **options)
        assert_bitwise(loss_fn(logits, target_kind), want_loss, "loss (%s target)" % target_kind.dtype)
        assert_bitwise(loss_fn.backward(), want_grad, "grad (%s target)" % target_kind.dtype)


# ----------------------------------------------------------------------------- grad_output


def _scaled(grad, g, loss_dtype, expand_axis=None):
    """The expected ``backward(g)``: grad times g cast to the loss's dtype, rounded to grad's dtype."""
    g = np.asarray(g).astype(loss_dtype)
    if expand_axis is not None and g.ndim:
        g = np.expand_dims(g, expand_axis)
    return np.multiply(grad, g).astype(grad.dtype)


SCALARS = [2.5, 3, -0.75, np.float32(0.1), np.float64(1e-3), 0.0]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("grad_output", SCALARS, ids=repr)
def test_cross_entropy_backward_scalar_grad_output(rng, dtype, reduction, grad_output):
    logits, target, options = _ce_inputs(rng, (13, 21), -1, "index", dict(weight="w", label_smoothing=0.1),
                                         dtype)
    _, want = F.cross_entropy(logits, target, return_grad=True, reduction=reduction, **options)
    loss_fn = CrossEntropyLoss(reduction=reduction, **options)
    loss_fn(logits, target)
    kept = loss_fn._grad
    got = loss_fn.backward(grad_output)
    assert got is kept, "backward must scale the kernel's gradient in place"
    assert_bitwise(got, _scaled(want, grad_output, _loss_dtype(dtype)), "scaled grad")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_backward_default_returns_the_kernels_array(rng, dtype):
    logits, target, _ = _ce_inputs(rng, (13, 21), -1, "index", {}, dtype)
    for grad_output in ((), (1.0,), (1,), (np.float32(1),), (np.array(1.0),)):
        loss_fn = CrossEntropyLoss()
        loss_fn(logits, target)
        kept = loss_fn._grad
        assert loss_fn.backward(*grad_output) is kept
    # the gradient then belongs to the caller: the object holds no reference to it
    assert loss_fn._grad is None


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape,axis,kind", [((13, 21), -1, "index"), ((4, 9, 6), 1, "index"),
                                             ((5, 3, 8), -1, "prob"), ((9, 6), 0, "index")],
                         ids=["2d", "3d-axis1", "3d-prob", "axis0"])
def test_cross_entropy_backward_per_row_grad_output(rng, dtype, shape, axis, kind):
    logits, target, options = _ce_inputs(rng, shape, axis, kind, dict(weight="w", z_loss=1e-2), dtype)
    loss_fn = CrossEntropyLoss(axis=axis, reduction="none", **options)
    rows = loss_fn(logits, target)
    g = rng.uniform(-2.0, 2.0, size=rows.shape)
    kept = loss_fn._grad
    got = loss_fn.backward(g)
    assert got is kept
    _, want = F.cross_entropy(logits, target, axis=axis, return_grad=True, reduction="none", **options)
    assert_bitwise(got, _scaled(want, g, _loss_dtype(dtype), axis % len(shape)), "per-row scaled grad")
    if dtype == np.float64:  # and it is the gradient of sum(g * loss): check against the reference
        _, gref = ref.cross_entropy(logits, target, axis=axis, return_grad=True, reduction="none", **options)
        np.testing.assert_allclose(got, gref * np.expand_dims(g, axis % len(shape)), rtol=1e-12, atol=1e-15)

    # integer per-row factors, and ones (the unscaled gradient)
    loss_fn(logits, target)
    assert_bitwise(loss_fn.backward(np.ones(rows.shape, dtype=np.int32)), want, "grad times ones")
    # a per-row factor of 1/N reproduces the mean's gradient (index targets without weights)
    if kind == "index":
        plain = CrossEntropyLoss(axis=axis, reduction="none")
        n = plain(logits, target).size
        g_mean = plain.backward(np.full(rows.shape, 1.0 / n))
        mean = CrossEntropyLoss(axis=axis)
        mean(logits, target)
        np.testing.assert_allclose(g_mean.astype(np.float64), mean.backward().astype(np.float64),
                                   rtol=1e-6 if dtype != np.float64 else 1e-14, atol=1e-3 if dtype == np.float16 else 0)


@needs_bce
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_backward_grad_output(rng, dtype, reduction):
    logits, target, options = _bce_inputs(rng, (11, 7), dict(pos_weight="class"), dtype)
    loss_fn = BCEWithLogitsLoss(reduction=reduction, **options)
    _, want = F.binary_cross_entropy_with_logits(logits, target, return_grad=True, reduction=reduction,
                                                 **options)
    for g in SCALARS + ([rng.uniform(-2.0, 2.0, size=logits.shape)] if reduction == "none" else []):
        loss_fn(logits, target)
        kept = loss_fn._grad
        got = loss_fn.backward(g)
        assert got is kept
        assert_bitwise(got, _scaled(want, g, _loss_dtype(dtype)), "scaled grad")
    loss_fn(logits, target)
    assert loss_fn.backward() is not None


# ----------------------------------------------------------------------------- errors


def test_backward_before_forward_twice_and_after_a_failed_forward(rng):
    logits, target, _ = _ce_inputs(rng, (6, 5), -1, "index", {}, np.float64)
    loss_fn = CrossEntropyLoss()
    with pytest.raises(RuntimeError, match="before a forward pass"):
        loss_fn.backward()
    loss_fn(logits, target)
    loss_fn.backward()
    with pytest.raises(RuntimeError, match="already called for this forward pass"):
        loss_fn.backward()
    with pytest.raises(RuntimeError, match="already called"):
        loss_fn.backward(2.0)
    # a forward pass that raises leaves no gradient (not the previous step's one)
    loss_fn(logits, target)
    with pytest.raises(IndexError):
        loss_fn(logits, np.full(6, 99))
    with pytest.raises(RuntimeError, match="last forward pass raised"):
        loss_fn.backward()
    # and the object works again afterwards
    loss_fn(logits, target)
    assert loss_fn.backward().shape == logits.shape


@needs_bce
def test_bce_backward_state_errors(rng):
    logits, target, _ = _bce_inputs(rng, (6, 5), {}, np.float64)
    loss_fn = BCEWithLogitsLoss()
    with pytest.raises(RuntimeError, match="before a forward pass"):
        loss_fn.backward()
    loss_fn(logits, target)
    loss_fn.backward()
    with pytest.raises(RuntimeError, match="already called"):
        loss_fn.backward()
    with pytest.raises(ValueError):
        loss_fn(logits, target[:, :2])
    with pytest.raises(RuntimeError, match="last forward pass raised"):
        loss_fn.backward()


def test_bad_grad_output_keeps_the_gradient(rng):
    logits, target, _ = _ce_inputs(rng, (6, 5), -1, "index", {}, np.float64)
    mean = CrossEntropyLoss()
    mean(logits, target)
    with pytest.raises(ValueError, match="must be a scalar for reduction='mean'"):
        mean.backward(np.ones(6))
    with pytest.raises(ValueError, match="must be a scalar"):
        mean.backward([1.0])
    with pytest.raises(TypeError, match="grad_output must be real numbers"):
        mean.backward("1")
    with pytest.raises(TypeError, match="grad_output must be real numbers"):
        mean.backward(True)
    with pytest.raises(TypeError, match="grad_output must be real numbers"):
        mean.backward(1j)
    _, want = F.cross_entropy(logits, target, return_grad=True)
    assert_bitwise(mean.backward(), want, "grad after rejected grad_output")

    none = CrossEntropyLoss(reduction="none")
    none(logits, target)
    with pytest.raises(ValueError, match=r"the loss's shape \(6,\), got shape \(5,\)"):
        none.backward(np.ones(5))
    with pytest.raises(ValueError, match="loss's shape"):
        none.backward(np.ones((6, 1)))  # no broadcasting: exactly the loss's shape
    _, want = F.cross_entropy(logits, target, return_grad=True, reduction="none")
    assert_bitwise(none.backward(), want, "grad after rejected grad_output")


# bad options: the constructor raises exactly what the function raises on a real call
CE_BAD_OPTIONS = [
    dict(reduction="avg"),
    dict(reduction=None),
    dict(label_smoothing=1.5),
    dict(label_smoothing=-0.1),
    dict(label_smoothing=float("nan")),
    dict(label_smoothing=[0.1]),
    dict(ignore_index=1.5),
    dict(ignore_index="x"),
    dict(weight=["a", "b", "c"]),
    dict(weight=np.ones(3, dtype=complex)),
    dict(z_loss=-1e-3),
    dict(z_loss=float("inf")),
    dict(z_loss=float("nan")),
    dict(z_loss="big"),
    dict(axis=1.0),
    dict(axis="last"),
]


@pytest.mark.parametrize("options", CE_BAD_OPTIONS, ids=repr)
def test_cross_entropy_loss_bad_options_raise_at_construction(rng, options):
    logits, target, _ = _ce_inputs(rng, (4, 3), -1, "index", {}, np.float64)
    with pytest.raises((TypeError, ValueError)) as functional_error:
        F.cross_entropy(logits, target, **options)
    with pytest.raises(functional_error.type) as object_error:
        CrossEntropyLoss(**options)
    assert str(object_error.value) == str(functional_error.value)


def test_cross_entropy_loss_option_errors_known_only_at_the_call(rng):
    with pytest.raises(ValueError, match=r"weight must have shape \(C,\)"):
        CrossEntropyLoss(weight=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"weight must have shape \(C,\)"):
        CrossEntropyLoss(weight=1.0)
    for forbidden in ("return_grad", "out", "label_smoothin"):
        with pytest.raises(TypeError, match="unexpected keyword"):
            CrossEntropyLoss(**{forbidden: None})
    with pytest.raises(TypeError):
        CrossEntropyLoss(np.ones(3), -1)  # the weight is the only positional option (as in PyTorch)
    # the class count and the axis range depend on the logits: checked at the call
    loss_fn = CrossEntropyLoss(weight=np.ones(4))
    logits, target, _ = _ce_inputs(rng, (5, 3), -1, "index", {}, np.float64)
    with pytest.raises(ValueError) as object_error:
        loss_fn(logits, target)
    with pytest.raises(ValueError) as functional_error:
        F.cross_entropy(logits, target, weight=np.ones(4))
    assert str(object_error.value) == str(functional_error.value)
    with pytest.raises(np.exceptions.AxisError):
        CrossEntropyLoss(axis=2)(logits, target)


def test_cross_entropy_loss_options_and_repr():
    w = np.array([1.0, 2.0, 3.0])
    loss_fn = CrossEntropyLoss(axis=1, weight=w, ignore_index=-1, reduction="sum", label_smoothing=0.1,
                               z_loss=1e-4)
    assert (loss_fn.axis, loss_fn.ignore_index, loss_fn.reduction, loss_fn.label_smoothing, loss_fn.z_loss) == (
        1, -1, "sum", 0.1, 1e-4)
    assert loss_fn.weight is w  # used as given, not copied
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(CrossEntropyLoss(reduction="none", z_loss=0.5)) == "CrossEntropyLoss(reduction='none', z_loss=0.5)"
    assert repr(loss_fn).startswith("CrossEntropyLoss(axis=1, weight=array([1., 2., 3.]), ignore_index=-1")


BCE_BAD_OPTIONS = [
    dict(reduction="avg"),
    dict(reduction=None),
    dict(weight=["a", "b"]),
    dict(pos_weight=["a", "b"]),
    dict(weight=np.ones(3, dtype=complex)),
]


@needs_bce
@pytest.mark.parametrize("options", BCE_BAD_OPTIONS, ids=repr)
def test_bce_loss_bad_options_raise_at_construction(rng, options):
    logits, target, _ = _bce_inputs(rng, (4, 2), {}, np.float64)
    with pytest.raises((TypeError, ValueError)) as functional_error:
        F.binary_cross_entropy_with_logits(logits, target, **options)
    with pytest.raises(functional_error.type) as object_error:
        BCEWithLogitsLoss(**options)
    assert str(object_error.value) == str(functional_error.value)


@needs_bce
def test_bce_loss_shape_errors(rng):
    # no logits shape fits both: reported at construction
    with pytest.raises(ValueError):
        BCEWithLogitsLoss(weight=np.ones(3), pos_weight=np.ones(4))
    with pytest.raises(ValueError):
        BCEWithLogitsLoss(pos_weight=np.ones((2, 3)))  # one per class: at most 1-D
    for forbidden in ("return_grad", "out", "axis"):
        with pytest.raises(TypeError, match="unexpected keyword"):
            BCEWithLogitsLoss(**{forbidden: None})
    # shapes that fit some logits but not these: at the call, as the function reports them
    logits, target, _ = _bce_inputs(rng, (5, 3), {}, np.float64)
    for options in (dict(pos_weight=np.ones(4)), dict(weight=np.ones((2, 3)))):
        loss_fn = BCEWithLogitsLoss(**options)
        with pytest.raises(ValueError) as object_error:
            loss_fn(logits, target)
        with pytest.raises(ValueError) as functional_error:
            F.binary_cross_entropy_with_logits(logits, target, **options)
        assert str(object_error.value) == str(functional_error.value)
    ok = BCEWithLogitsLoss(weight=np.ones((5, 1)), pos_weight=np.ones(3), reduction="sum")
    assert repr(ok).startswith("BCEWithLogitsLoss(weight=array(")
    assert repr(BCEWithLogitsLoss()) == "BCEWithLogitsLoss()"
    ok(logits, target)
    assert ok.backward().shape == (5, 3)


# ----------------------------------------------------------------------------- training


class _RefLoss:
    """The reference loss behind the loss objects' interface (float64, recomputes nothing either)."""

    def __init__(self, fn, expand_axis=None, **options):
        self.fn, self.options, self.expand_axis = fn, options, expand_axis

    def __call__(self, logits, target):
        loss, self.grad = self.fn(logits, target, return_grad=True, **self.options)
        return loss

    def backward(self, grad_output=1.0):
        g = np.asarray(grad_output, dtype=np.float64)
        if g.ndim and self.expand_axis is not None:
            g = np.expand_dims(g, self.expand_axis)
        return self.grad * g


def _train(loss_fn, X, Y, n_out, *, grad_output=None, epochs=4, batch=50, lr=0.3, momentum=0.9):
    """Mini-batch SGD with momentum on a linear model ``X @ W + b``; returns W, b, losses."""
    rng = np.random.default_rng(7)  # the same init and batch order for every loss
    W = rng.standard_normal((X.shape[1], n_out)) * 0.1
    b = np.zeros(n_out)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch):
            idx = order[start:start + batch]
            logits = X[idx] @ W + b
            loss = loss_fn(logits, Y[idx])
            g = grad_output(len(idx), np.shape(loss), idx) if grad_output else 1.0
            history.append(float(np.sum(np.asarray(loss) * g)))
            dlogits = loss_fn.backward(g)
            vW = momentum * vW - lr * (X[idx].T @ dlogits)
            vb = momentum * vb - lr * dlogits.sum(axis=0)
            W += vW
            b += vb
    return W, b, np.array(history)


def _assert_same_training(got, want):
    (W1, b1, h1), (W2, b2, h2) = got, want
    scale = max(np.max(np.abs(W2)), np.max(np.abs(b2)))
    assert np.max(np.abs(W1 - W2)) <= 1e-12 * scale, np.max(np.abs(W1 - W2)) / scale
    assert np.max(np.abs(b1 - b2)) <= 1e-12 * scale, np.max(np.abs(b1 - b2)) / scale
    np.testing.assert_allclose(h1, h2, rtol=1e-12, atol=1e-12)
    assert h1[-1] < h1[0], "the model did not train"


def _cluster_data(rng, n, d, n_classes):
    centers = rng.standard_normal((n_classes, d)) * 2.0
    y = rng.integers(0, n_classes, size=n)
    X = centers[y] + rng.standard_normal((n, d))
    return X, y


# (name, options, target kind, grad_output(batch size, loss shape, rows) or None)
TRAIN_CE = [
    ("default", {}, "index", None),
    ("all-options", dict(weight="w", ignore_index=-1, label_smoothing=0.1, z_loss=1e-3), "index", None),
    ("sum-scaled", dict(reduction="sum", label_smoothing=0.05), "index", lambda n, shape, idx: 1.0 / n),
    ("none-sample-weights", dict(reduction="none", weight="w"), "index",
     lambda n, shape, idx: (1.0 + (idx % 3)) / n),
    ("prob-targets", dict(z_loss=1e-2), "prob", None),
]


@pytest.mark.parametrize("name,options,kind,grad_output", TRAIN_CE, ids=[c[0] for c in TRAIN_CE])
def test_softmax_regression_trains_like_the_reference(rng, name, options, kind, grad_output):
    n, d, C = 400, 10, 7
    X, y = _cluster_data(rng, n, d, C)
    options = dict(options)
    if options.get("weight") == "w":
        options["weight"] = rng.uniform(0.5, 2.0, size=C)
    if options.get("ignore_index") == -1:
        y = y.copy()
        y[rng.random(n) < 0.1] = -1
    Y = y
    if kind == "prob":  # soft labels: mostly the true class
        Y = np.full((n, C), 0.1 / (C - 1))
        Y[np.arange(n), y] = 0.9
    got = _train(CrossEntropyLoss(**options), X, Y, C, grad_output=grad_output)
    want = _train(_RefLoss(ref.cross_entropy, expand_axis=-1, **options), X, Y, C, grad_output=grad_output)
    _assert_same_training(got, want)


TRAIN_BCE = [
    ("default", {}, None),
    ("pos_weight-sum", dict(pos_weight="class", reduction="sum"), lambda n, shape, idx: 1.0 / n),
    ("weight-none", dict(weight="class", reduction="none"),
     lambda n, shape, idx: np.broadcast_to(((1.0 + (idx % 2)) / n)[:, None], shape)),
]


@needs_bce
@pytest.mark.parametrize("name,options,grad_output", TRAIN_BCE, ids=[c[0] for c in TRAIN_BCE])
def test_multilabel_logistic_regression_trains_like_the_reference(rng, name, options, grad_output):
    n, d, L = 400, 10, 6
    X = rng.standard_normal((n, d))
    A = rng.standard_normal((d, L))
    Y = (X @ A + 0.5 * rng.standard_normal((n, L)) > 0.5).astype(np.float64)
    options = dict(options)
    for key in ("weight", "pos_weight"):
        if options.get(key) == "class":
            options[key] = rng.uniform(0.5, 3.0, size=L)
    got = _train(BCEWithLogitsLoss(**options), X, Y, L, grad_output=grad_output)
    want = _train(_RefLoss(ref.binary_cross_entropy_with_logits, **options), X, Y, L, grad_output=grad_output)
    _assert_same_training(got, want)


# ----------------------------------------------------------------------------- documentation


@pytest.mark.parametrize("obj", [losses.CrossEntropyLoss, losses.BCEWithLogitsLoss], ids=lambda o: o.__name__)
def test_docstring_examples_run(obj):
    if obj is losses.BCEWithLogitsLoss and not HAVE_BCE:
        pytest.skip("fastsoftmax.binary_cross_entropy_with_logits not available")
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(obj, obj.__name__, globs={})
    assert tests and tests[0].examples, "no example in the docstring"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0


def test_weight_is_the_first_positional_option():
    """PyTorch's CrossEntropyLoss(w) and BCEWithLogitsLoss(w): the weight comes first."""
    w = np.array([1.0, 2.0, 3.0])
    assert CrossEntropyLoss(w).weight is w or np.array_equal(CrossEntropyLoss(w).weight, w)
    assert repr(CrossEntropyLoss(w, label_smoothing=0.1)) == repr(CrossEntropyLoss(weight=w, label_smoothing=0.1))
    assert repr(BCEWithLogitsLoss(w)) == repr(BCEWithLogitsLoss(weight=w))


def test_repr_of_a_long_weight_is_compact():
    r = repr(BCEWithLogitsLoss(pos_weight=np.ones(5000)))
    assert r.startswith("BCEWithLogitsLoss(pos_weight=array([1., 1., 1., ..., 1., 1., 1.]") and len(r) < 100
