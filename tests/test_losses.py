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
* ``inplace=True``: the gradient is written into the logits and ``backward`` returns them,
  bitwise the loss and gradient of ``inplace=False`` (every option, dtype, axis, grad_output,
  targets and weights sharing the logits' memory); logits that cannot hold the gradient raise
  a TypeError / ValueError naming ``inplace=True``, with nothing written.
"""

import doctest

import numpy as np
import pytest

from fastsoftmax import functional as F
from fastsoftmax import losses
from fastsoftmax import reference as ref
from fastsoftmax.losses import BCEWithLogitsLoss, CrossEntropyLoss
from conftest import make_index_target, make_logits, make_prob_target, misaligned

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


# ----------------------------------------------------------------------------- inplace=True

# the bitwise cases above, and odd shapes
CE_INPLACE_CASES = CE_CASES + [
    ("odd-37x101-all", (37, 101), -1, "index", dict(weight="w", ignore_index=-1, label_smoothing=0.1, z_loss=1e-3)),
    ("odd-37x101-axis0-sum", (37, 101), 0, "index", dict(weight="w", reduction="sum", label_smoothing=0.2)),
    ("odd-5x3-prob-none", (5, 3), -1, "prob", dict(weight="w", reduction="none", label_smoothing=0.1, z_loss=1e-2)),
    ("odd-5x3-axis0-prob", (5, 3), 0, "prob", dict(z_loss=1e-2)),
]
BCE_INPLACE_CASES = BCE_CASES + [
    ("odd-37x101-all", (37, 101), dict(weight="class", pos_weight="class")),
    ("odd-5x3-none", (5, 3), dict(weight="full", pos_weight="class", reduction="none")),
    ("0d", (), {}),
]


def _check_inplace(loss_fn, logits, target, want_loss, want_grad, grad_output=None):
    """loss_fn(logits, target) (inplace=True): the loss bitwise ``want_loss``; backward() returns
    the logits array itself, holding (bitwise) ``want_grad``."""
    loss = loss_fn(logits, target)
    assert_bitwise(loss, want_loss, "loss (inplace)")
    assert_bitwise(logits, want_grad, "logits after the forward pass (the gradient)")
    grad = loss_fn.backward() if grad_output is None else loss_fn.backward(grad_output)
    assert grad is logits, "backward() must return the logits array itself"
    return grad


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,shape,axis,kind,options", CE_INPLACE_CASES, ids=[c[0] for c in CE_INPLACE_CASES])
def test_cross_entropy_inplace_is_bitwise_the_gradient(rng, dtype, name, shape, axis, kind, options):
    logits, target, options = _ce_inputs(rng, shape, axis, kind, options, dtype)
    plain = CrossEntropyLoss(axis=axis, **options)
    want_loss = plain(logits, target)
    want_grad = plain.backward()
    assert want_grad is not logits
    loss_fn = CrossEntropyLoss(axis=axis, inplace=True, **options)
    grad = _check_inplace(loss_fn, logits, target, want_loss, want_grad)
    assert grad.dtype == np.dtype(dtype) and grad.shape == shape
    # the object is reusable, on fresh logits each step
    logits2, target2, _ = _ce_inputs(rng, shape, axis, kind, {}, dtype)
    want_loss = plain(logits2, target2)
    _check_inplace(loss_fn, logits2, target2, want_loss, plain.backward())


@needs_bce
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,shape,options", BCE_INPLACE_CASES, ids=[c[0] for c in BCE_INPLACE_CASES])
def test_bce_inplace_is_bitwise_the_gradient(rng, dtype, name, shape, options):
    logits, target, options = _bce_inputs(rng, shape, options, dtype)
    logits = np.array(logits, dtype)  # a 0-d array, not a NumPy scalar
    plain = BCEWithLogitsLoss(**options)
    loss_fn = BCEWithLogitsLoss(inplace=True, **options)
    for t in (target, target.astype(bool), target.astype(np.int8)):
        x = logits.copy()
        want_loss = plain(x, t)
        want_grad = plain.backward()
        grad = _check_inplace(loss_fn, x, t, want_loss, want_grad)
        assert grad.dtype == np.dtype(dtype) and grad.shape == shape


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_inplace_backward_grad_output(rng, dtype, reduction):
    """backward(g) scales the gradient in the logits in place: bitwise backward(g) without inplace."""
    shape, axis = (37, 101), -1
    logits, target, options = _ce_inputs(rng, shape, axis, "index",
                                         dict(weight="w", ignore_index=-1, label_smoothing=0.1), dtype)
    factors = [2.5, 3, -0.75, np.float32(0.1), 0.0]
    if reduction == "none":
        factors += [rng.uniform(-2.0, 2.0, size=shape[0]), np.ones(shape[0], np.int32)]
    _check_inplace_backward(CrossEntropyLoss(reduction=reduction, **options),
                            CrossEntropyLoss(reduction=reduction, inplace=True, **options), logits, target, factors)


def _check_inplace_backward(plain, loss_fn, logits, target, factors):
    """For each grad_output g: loss and backward(g) of ``loss_fn`` (inplace=True) on a copy of the
    logits are bitwise those of ``plain``, and the gradient is that copy."""
    for g in factors:
        x = logits.copy()
        want_loss = plain(x, target)
        want_grad = plain.backward(g)
        assert_bitwise(loss_fn(x, target), want_loss, "loss")
        got = loss_fn.backward(g)
        assert got is x
        assert_bitwise(got, want_grad, f"grad times {g!r}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_cross_entropy_inplace_per_row_grad_output_axis0(rng, dtype):
    shape = (9, 5, 6)  # classes on axis 0: one factor per (5, 6) position
    logits, target, options = _ce_inputs(rng, shape, 0, "prob", dict(z_loss=1e-2), dtype)
    g = rng.uniform(-2.0, 2.0, size=(5, 6))
    plain = CrossEntropyLoss(axis=0, reduction="none", **options)
    plain(logits, target)
    want = plain.backward(g)
    loss_fn = CrossEntropyLoss(axis=0, reduction="none", inplace=True, **options)
    loss_fn(logits, target)
    got = loss_fn.backward(g)
    assert got is logits
    assert_bitwise(got, want, "per-position scaled grad")


@needs_bce
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_inplace_backward_grad_output(rng, dtype, reduction):
    logits, target, options = _bce_inputs(rng, (11, 7), dict(weight="class", pos_weight="class"), dtype)
    factors = SCALARS + ([rng.uniform(-2.0, 2.0, size=logits.shape)] if reduction == "none" else [])
    _check_inplace_backward(BCEWithLogitsLoss(reduction=reduction, **options),
                            BCEWithLogitsLoss(reduction=reduction, inplace=True, **options), logits, target, factors)


def _inplace_bad_logits(case, dtype=np.float64, shape=(6, 5)):
    """(logits, exception, words of the message) for logits that cannot receive the gradient."""
    x = make_logits(np.random.default_rng(1), shape, np.float64)
    n, c = shape
    if case == "list":
        return x.tolist(), TypeError, ["numpy.ndarray, got list", "np.asarray"]
    if case == "scalar":
        return np.float64(0.5), TypeError, ["numpy.ndarray, got float64"]
    if case in ("int64", "bool", ">f8", "longdouble"):
        bad = {"int64": lambda: (x * 10).astype(np.int64), "bool": lambda: x > 0,
               ">f8": lambda: x.astype(">f8"), "longdouble": lambda: x.astype(np.longdouble)}[case]()
        return bad, TypeError, ["float16, float32 or float64, got", "astype"]
    if case == "readonly":
        x = x.astype(dtype)
        x.flags.writeable = False
        return x, ValueError, ["read-only", "logits.copy()"]
    if case == "misaligned":
        return misaligned(x.astype(dtype)), ValueError, ["aligned", "logits.copy()"]
    bad = {"transposed": lambda: np.ascontiguousarray(x.T).T,
           "column-slice": lambda: make_logits(np.random.default_rng(1), (n, 2 * c), dtype)[:, ::2],
           "row-step": lambda: make_logits(np.random.default_rng(1), (2 * n, c), dtype)[::2],
           "fortran": lambda: np.asfortranarray(x.astype(dtype)),
           "negative": lambda: x.astype(dtype)[::-1]}[case]()
    return bad, ValueError, ["C-contiguous", "np.ascontiguousarray(logits)"]


INPLACE_BAD = ["list", "scalar", "int64", "bool", ">f8", "longdouble", "readonly", "misaligned", "transposed",
               "column-slice", "row-step", "fortran", "negative"]


@pytest.mark.parametrize("case", INPLACE_BAD)
@pytest.mark.parametrize("cls", [CrossEntropyLoss, BCEWithLogitsLoss], ids=lambda c: c.__name__)
def test_inplace_refuses_logits_that_cannot_hold_the_gradient(cls, case):
    """A clear TypeError / ValueError naming inplace=True and what to pass instead; nothing written,
    nothing allocated instead; no gradient kept."""
    if cls is BCEWithLogitsLoss and not HAVE_BCE:
        pytest.skip("fastsoftmax.binary_cross_entropy_with_logits not available")
    if case == "longdouble" and np.dtype(np.longdouble) == np.float64:
        pytest.skip("long double is float64 here")
    logits, exc, words = _inplace_bad_logits(case)
    shape = np.shape(logits)
    if cls is CrossEntropyLoss:
        target = np.zeros(shape[:-1], np.int64) if len(shape) else np.zeros((), np.int64)
    else:
        target = np.zeros(shape)
    before = np.array(logits, copy=True)
    loss_fn = cls(inplace=True)
    with pytest.raises(exc) as info:
        loss_fn(logits, target)
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}(inplace=True) writes the gradient into the logits"), message
    assert "inplace=False" in message, message
    for word in words:
        assert word in message, message
    assert np.array_equal(np.asarray(logits), before) and np.asarray(logits).dtype == before.dtype
    with pytest.raises(RuntimeError, match="last forward pass raised"):
        loss_fn.backward()
    # without inplace the function takes these layouts (the sum's order may follow the layout)
    if exc is ValueError:
        plain = cls()
        want = plain(np.ascontiguousarray(logits), target)
        np.testing.assert_allclose(plain(logits, target), want, rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_inplace_errors_after_the_check_write_nothing(rng, dtype):
    """Errors the function raises (targets, shapes, options known at the call) leave the logits as
    they were, bit for bit."""
    logits, target, _ = _ce_inputs(rng, (6, 5), -1, "index", {}, dtype)
    before = logits.copy()
    calls = [(CrossEntropyLoss(inplace=True), np.array([0, 1, 2, 3, 4, 99]), IndexError),
             (CrossEntropyLoss(inplace=True), np.zeros(5, np.int64), ValueError),
             (CrossEntropyLoss(inplace=True), np.full((6, 5), "a"), TypeError),
             (CrossEntropyLoss(weight=np.ones(4), inplace=True), target, ValueError),
             (CrossEntropyLoss(axis=2, inplace=True), target, np.exceptions.AxisError)]
    if HAVE_BCE:
        calls += [(BCEWithLogitsLoss(inplace=True), np.zeros((6, 4)), ValueError),
                  (BCEWithLogitsLoss(inplace=True), np.full((6, 5), "a"), TypeError),
                  (BCEWithLogitsLoss(pos_weight=np.ones(4), inplace=True), np.zeros((6, 5)), ValueError)]
    for loss_fn, bad_target, exc in calls:
        with pytest.raises(exc):
            loss_fn(logits, bad_target)
        assert_bitwise(logits, before, f"logits after a {exc.__name__} of {loss_fn!r}")
        with pytest.raises(RuntimeError, match="last forward pass raised"):
            loss_fn.backward()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", [-1, 0])
def test_cross_entropy_inplace_layouts(rng, dtype, axis):
    """Any axis of a C-contiguous array, and a C-contiguous slice of rows (only it is written);
    a transposed or column-sliced array is refused (out= must be C-contiguous), while its
    C-contiguous base with the other axis gives the transposed gradient."""
    C = 11
    shape = (37, C) if axis == -1 else (C, 37)
    kind_options = dict(label_smoothing=0.1, reduction="sum")
    base, target, options = _ce_inputs(rng, (2 * shape[0], shape[1]) if axis == -1 else (shape[0], 2 * shape[1]),
                                       axis, "index", kind_options, dtype)
    plain = CrossEntropyLoss(axis=axis, **options)
    loss_fn = CrossEntropyLoss(axis=axis, inplace=True, **options)

    # the whole array, then a slice of rows that is C-contiguous (axis=-1) or not (axis=0)
    x = base.copy()
    want_loss = plain(x, target)
    _check_inplace(loss_fn, x, target, want_loss, plain.backward())
    if axis == -1:
        buf = base.copy()
        view = buf[5:5 + shape[0]]
        t = target[5:5 + shape[0]]
        want_loss = plain(view, t)
        want_grad = plain.backward()
        _check_inplace(loss_fn, view, t, want_loss, want_grad)
        assert_bitwise(buf[:5], base[:5], "rows before the slice")
        assert_bitwise(buf[5 + shape[0]:], base[5 + shape[0]:], "rows after the slice")
    else:
        view = base.copy()[:, :shape[1]]  # the first 37 columns: strided
        with pytest.raises(ValueError, match=r"inplace=True.*C-contiguous"):
            loss_fn(view, target[:shape[1]])

    # transposed: refused; the C-contiguous base with the class axis moved is the in-place way
    other = 0 if axis == -1 else -1
    t_base = np.ascontiguousarray(base.T)  # classes on the other axis
    xt = t_base.T                          # the same logits as base, classes on `axis`, not C-contiguous
    before = t_base.copy()
    with pytest.raises(ValueError, match=r"inplace=True.*C-contiguous"):
        loss_fn(xt, target)
    assert_bitwise(t_base, before, "transposed logits after the refused call")
    transposed_loss = plain(xt, target)  # without inplace: any layout
    transposed_grad = plain.backward()
    plain_other = CrossEntropyLoss(axis=other, **options)
    want_loss = plain_other(t_base, target)
    want_grad = plain_other.backward()
    alt = CrossEntropyLoss(axis=other, inplace=True, **options)
    grad = _check_inplace(alt, t_base, target, want_loss, want_grad)
    assert_bitwise(want_loss, transposed_loss, "loss of the transposed base")
    # the same gradient as the transposed logits' (whose gradient array, laid out like the
    # logits, is written along another stride: equal to the rounding of the last bit)
    eps = np.finfo(np.dtype(dtype)).eps
    np.testing.assert_allclose(grad.T.astype(np.float64), transposed_grad.astype(np.float64), rtol=4 * eps,
                               atol=4 * eps * np.max(np.abs(transposed_grad.astype(np.float64))))


@needs_bce
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bce_inplace_layouts(rng, dtype):
    base, target, options = _bce_inputs(rng, (40, 9), dict(weight="class"), dtype)
    plain = BCEWithLogitsLoss(**options)
    loss_fn = BCEWithLogitsLoss(inplace=True, **options)
    buf = base.copy()
    view = buf[3:30]  # a C-contiguous slice of rows: only it is written
    want_loss = plain(view, target[3:30])
    _check_inplace(loss_fn, view, target[3:30], want_loss, plain.backward())
    assert_bitwise(buf[:3], base[:3], "rows before the slice")
    assert_bitwise(buf[30:], base[30:], "rows after the slice")
    for bad in (np.ascontiguousarray(base.T).T, base.copy()[::2], np.full((40, 18), 1.0, dtype)[:, ::2]):
        before = bad.copy()
        with pytest.raises(ValueError, match=r"inplace=True.*C-contiguous"):
            loss_fn(bad, np.zeros(bad.shape))
        assert_bitwise(bad, before, "strided logits after the refused call")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_cross_entropy_inplace_target_sharing_the_logits(rng, dtype):
    """Probability targets that are the logits, or another view of their memory, are read as they
    were before the gradient overwrites them (the function copies inputs that overlap out=)."""
    x0 = make_logits(rng, (37, 11), dtype)
    cases = {"same": lambda x: x, "reversed-rows": lambda x: x[::-1], "reversed-classes": lambda x: x[:, ::-1],
             "a-copy": lambda x: x.copy()}
    for options in ({}, dict(weight=rng.uniform(0.5, 2.0, 11), label_smoothing=0.1, z_loss=1e-2, reduction="none")):
        plain = CrossEntropyLoss(**options)
        loss_fn = CrossEntropyLoss(inplace=True, **options)
        for name, make_target in cases.items():
            x = x0.copy()
            independent = make_target(x0.copy()).copy()
            want_loss = plain(x0.copy(), independent)
            want_grad = plain.backward()
            target = make_target(x)
            if name != "a-copy":
                assert np.shares_memory(target, x)
            _check_inplace(loss_fn, x, target, want_loss, want_grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_cross_entropy_inplace_weight_sharing_the_logits(rng, dtype):
    x0 = make_logits(rng, (11, 11), dtype)
    x0 = np.abs(x0) + np.asarray(0.5, dtype)  # its first row serves as class weights
    t = rng.integers(0, 11, size=11)
    x = x0.copy()
    plain = CrossEntropyLoss(weight=x0[0].copy())
    want_loss = plain(x0.copy(), t)
    want_grad = plain.backward()
    loss_fn = CrossEntropyLoss(weight=x[0], inplace=True)  # a view of the logits, read at each call
    _check_inplace(loss_fn, x, t, want_loss, want_grad)


@needs_bce
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bce_inplace_target_and_weights_sharing_the_logits(rng, dtype):
    x0 = make_logits(rng, (23, 9), dtype)
    cases = [("target-is-logits", lambda x: (x, {})),
             ("target-reversed", lambda x: (x[::-1], {})),
             ("weight-is-logits", lambda x: (np.ones(x.shape), dict(weight=x))),
             ("pos_weight-row", lambda x: (x, dict(pos_weight=x[0], reduction="none"))),
             ("all", lambda x: (x[:, ::-1], dict(weight=x[::-1], pos_weight=x[-1], reduction="sum")))]
    for name, make in cases:
        x = x0.copy()
        independent_target, independent_options = make(x0.copy())
        independent_target = np.array(independent_target, copy=True)
        independent_options = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                               for k, v in independent_options.items()}
        plain = BCEWithLogitsLoss(**independent_options)
        want_loss = plain(x0.copy(), independent_target)
        want_grad = plain.backward()
        target, options = make(x)
        loss_fn = BCEWithLogitsLoss(inplace=True, **options)
        loss = loss_fn(x, target)
        assert_bitwise(loss, want_loss, f"loss ({name})")
        assert_bitwise(x, want_grad, f"gradient in the logits ({name})")
        assert loss_fn.backward() is x


def test_inplace_option_repr_and_type():
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(CrossEntropyLoss(inplace=False)) == "CrossEntropyLoss()"
    assert repr(CrossEntropyLoss(inplace=True)) == "CrossEntropyLoss(inplace=True)"
    assert repr(CrossEntropyLoss(label_smoothing=0.1, inplace=True)) == (
        "CrossEntropyLoss(label_smoothing=0.1, inplace=True)")
    assert repr(CrossEntropyLoss(inplace=np.True_)) == "CrossEntropyLoss(inplace=True)"
    assert CrossEntropyLoss().inplace is False and CrossEntropyLoss(inplace=np.True_).inplace is True
    assert repr(BCEWithLogitsLoss()) == "BCEWithLogitsLoss()"
    assert repr(BCEWithLogitsLoss(inplace=True)) == "BCEWithLogitsLoss(inplace=True)"
    assert repr(BCEWithLogitsLoss(reduction="sum", inplace=True)) == "BCEWithLogitsLoss(reduction='sum', inplace=True)"
    for cls in (CrossEntropyLoss, BCEWithLogitsLoss):
        for bad in (1, 0, "yes", None, 1.0):
            with pytest.raises(TypeError, match=r"inplace must be True or False, got"):
                cls(inplace=bad)
        with pytest.raises(TypeError):
            cls(None, True)  # keyword-only


def test_inplace_training_is_bitwise_the_plain_training(rng):
    """A training loop with inplace=True ends with exactly the weights of the same loop without."""
    n, d, C = 400, 10, 7
    X, y = _cluster_data(rng, n, d, C)
    for options in ({}, dict(label_smoothing=0.1, z_loss=1e-3)):
        got = _train(CrossEntropyLoss(inplace=True, **options), X, y, C)
        want = _train(CrossEntropyLoss(**options), X, y, C)
        for a, b in zip(got, want):
            assert np.array_equal(a, b)
    if HAVE_BCE:
        Y = (X[:, :6] > 0).astype(np.float64)
        got = _train(BCEWithLogitsLoss(inplace=True), X, Y, 6)
        want = _train(BCEWithLogitsLoss(), X, Y, 6)
        for a, b in zip(got, want):
            assert np.array_equal(a, b)
