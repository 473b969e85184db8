"""Loss objects for NumPy models: one fused kernel call per step, gradient kept for ``backward``.

A NumPy model computes its logits, then needs the loss (to report) and ``d loss / d
logits`` (to back-propagate).  The loss objects here get both from one call of the fused
kernel (:func:`fastsoftmax.cross_entropy` / :func:`fastsoftmax.binary_cross_entropy_with_logits`
with ``return_grad=True``) and hand the gradient out on ``backward``::

    loss_fn = CrossEntropyLoss(label_smoothing=0.1)
    loss = loss_fn(logits, target)      # forward: loss value, gradient computed and kept
    dlogits = loss_fn.backward()        # d loss / d logits, no recomputation

Layers, as in scikit-learn's ``sklearn/_loss``: the C kernels compute, the functions of
:mod:`fastsoftmax.functional` validate and lay out the arrays, and these classes only
hold the options and the gradient between the two calls.

* Options are validated when the object is made, by the functional API itself (a call on
  a one-row dummy input), so a bad option raises the same ``TypeError`` / ``ValueError``
  with the same message as the function would -- at construction, not at the first step.
* ``backward(grad_output=1.0)`` returns the kernel's gradient array itself (no copy); any
  other ``grad_output`` scales that array in place.  The gradient then belongs to the
  caller: a second ``backward`` for the same forward pass raises ``RuntimeError``, as does
  a ``backward`` before any forward pass.
* ``CrossEntropyLoss(inplace=True)`` / ``BCEWithLogitsLoss(inplace=True)`` pass ``out=logits``:
  the gradient overwrites the logits (dead after the loss in a training step) and ``backward``
  returns the logits array itself, with no N x C array allocated per step.
"""

import operator

import numpy as np

from . import functional, linear, sampled, sampling

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "SampledSoftmaxLoss", "NCELoss", "LinearCrossEntropyLoss"]


class _FusedLoss:
    """Base class: forward keeps the fused kernel's gradient, backward hands it out once.

    Subclasses set ``_options`` (keyword arguments for the functional call, validated),
    and implement ``_compute(logits, target) -> (loss, grad)`` and
    ``_broadcast_grad_output(g, grad)`` (a per-element ``grad_output`` of the loss's shape
    as an array that broadcasts against ``grad``).
    """

    def __init__(self):
        self._grad = None        # the gradient of the last forward pass, until backward takes it
        self._loss_shape = None  # shape and dtype of the last forward's loss
        self._loss_dtype = None
        # "new": no forward pass yet; "ready": gradient kept; "used": backward done;
        # "failed": the last forward pass raised (no gradient).
        self._state = "new"

    # ------------------------------------------------------------------ forward

    def forward(self, logits, target):
        """Loss of ``logits`` against ``target``; keeps ``d loss / d logits`` for :meth:`backward`.

        One fused kernel call computes both.  Same arguments, result types and errors as
        the functional API (see the class documentation).
        """
        return self._keep(self._compute, logits, target)

    def _keep(self, compute, *args):
        """loss, grad = compute(*args): keep grad for backward, return the loss."""
        # A failed call leaves no gradient behind (a later backward must not return the
        # gradient of an older step).
        self._grad = None
        self._state = "failed"
        loss, grad = compute(*args)
        self._grad = grad
        self._loss_shape = np.shape(loss)
        self._loss_dtype = np.asarray(loss).dtype
        self._state = "ready"
        return loss

    __call__ = forward

    # ------------------------------------------------------------------ backward

    def backward(self, grad_output=1.0):
        """``d (grad_output * loss) / d logits`` for the last forward pass, without recomputation.

        Parameters
        ----------
        grad_output : float or array_like of real numbers, default 1.0
            The gradient of the final objective with respect to the loss: a scalar, or
            (``reduction="none"`` only) an array of the loss's shape, which weights each
            element's loss.  It is converted to the loss's dtype before multiplying.

        Returns
        -------
        ndarray
            The gradient, with the logits' shape and the gradient dtype of the functional
            API.  For ``grad_output == 1`` (scalar) it is the array the kernel wrote, with
            no copy; otherwise that array scaled in place.  With ``inplace=True`` that array
            is the logits array of the forward pass.

        Raises
        ------
        RuntimeError
            Before any forward pass, or a second time for the same forward pass (the
            gradient was handed out and may have been modified since).
        TypeError, ValueError
            ``grad_output`` is not real numbers, or has neither the shape ``()`` nor the
            loss's shape.  The gradient is kept, so ``backward`` can be called again with
            a valid ``grad_output``.
        """
        if self._state != "ready":
            if self._state == "new":
                raise RuntimeError(f"{type(self).__name__}.backward() called before a forward pass: "
                                   "call the loss on (logits, target) first")
            if self._state == "failed":
                raise RuntimeError(f"{type(self).__name__}.backward(): the last forward pass raised an "
                                   "exception, so there is no gradient: run a forward pass again")
            raise RuntimeError(f"{type(self).__name__}.backward() was already called for this forward "
                               "pass (the gradient was handed out and may have been modified): run "
                               "the forward pass again")
        if type(grad_output) in (float, int) and grad_output == 1:  # the hot path: nothing to check or scale
            grad = self._grad
            self._grad = None
            self._state = "used"
            return self._finish(grad, None)
        g = np.asarray(grad_output)
        if g.dtype.kind not in "fiu":
            raise TypeError(f"grad_output must be real numbers, got {g.dtype}")
        if g.ndim and g.shape != self._loss_shape:
            if self._loss_shape == ():
                raise ValueError(f"grad_output must be a scalar for reduction={self.reduction!r}, "
                                 f"got shape {g.shape}")
            raise ValueError(f"grad_output must be a scalar or have the loss's shape {self._loss_shape}, "
                             f"got shape {g.shape}")
        grad = self._grad
        self._grad = None
        self._state = "used"
        if g.ndim == 0:
            if g == 1:
                return self._finish(grad, None)  # the hot path: the kernel's array, untouched
            g = g.astype(self._loss_dtype)
        else:
            g = self._broadcast_grad_output(g.astype(self._loss_dtype), grad)
        return self._finish(grad, g)

    def _finish(self, grad, g):
        """What backward hands out: the kept gradient times ``g`` (None: 1), in place."""
        if g is not None:
            np.multiply(grad, g, out=grad)
        return grad

    def _inplace_out(self, logits):
        """``logits`` as the ``out=`` of the functional call (``inplace=True``), or the TypeError /
        ValueError of an ``out=`` that cannot hold the gradient, naming ``inplace=True`` and what to
        pass instead.  Checked before the call, so nothing is written; no array is allocated
        instead (the reason for ``inplace=True``)."""
        where = f"{type(self).__name__}(inplace=True) writes the gradient into the logits"
        if not isinstance(logits, np.ndarray):
            raise TypeError(f"{where}, so they must be a numpy.ndarray, got {type(logits).__name__}: pass "
                            "np.asarray(logits, dtype=np.float32) (or float64), or use inplace=False")
        if logits.dtype not in _INPLACE_DTYPES:
            # the gradient has the logits' dtype, and only float16/32/64 logits are computed
            raise TypeError(f"{where}, so they must be float16, float32 or float64, got {logits.dtype}: pass "
                            "logits.astype(np.float32) (or float64), or use inplace=False")
        if not logits.flags.writeable:
            raise ValueError(f"{where}, but they are read-only: pass a writeable array (logits.copy()), or "
                             "use inplace=False")
        if not logits.flags.c_contiguous:
            raise ValueError(f"{where}, so they must be C-contiguous (as out= of {self._function}), got a "
                             "strided or transposed view: pass np.ascontiguousarray(logits)"
                             f"{self._strided_hint}, or use inplace=False")
        if not logits.flags.aligned:
            raise ValueError(f"{where}, so they must be aligned (as out= of {self._function}), got a misaligned "
                             "view of a byte buffer: pass logits.copy(), or use inplace=False")
        return logits

    # ------------------------------------------------------------------ helpers

    def __repr__(self):
        with np.printoptions(threshold=8, edgeitems=3):  # a long weight array shows its ends only
            args = ", ".join(f"{k}={v!r}" for k, v in self._repr_options().items())
        return f"{type(self).__name__}({args})"

    def _repr_options(self):
        """The options that differ from their defaults (arrays: every one given)."""
        shown = {}
        for name, default in self._defaults.items():
            value = getattr(self, name)
            if default is None:
                differs = value is not None
            else:
                differs = isinstance(value, np.ndarray) or type(value) is not type(default) or value != default
            if differs:
                shown[name] = value
        return shown


_INPLACE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _inplace_flag(inplace):
    """``inplace`` as a bool, or TypeError (a truthy string or number is not taken for True)."""
    if not isinstance(inplace, (bool, np.bool_)):
        raise TypeError(f"inplace must be True or False, got {inplace!r}")
    return bool(inplace)


def _class_weight(weight):
    """A loss object's class weight as an array of one dimension (its length is checked against
    the logits at each call), or None; TypeError / ValueError otherwise."""
    if weight is None:
        return None
    weight = np.asarray(weight)
    if weight.dtype.kind not in "fiu":
        raise TypeError(f"weight must be real numbers, got {weight.dtype}")
    if weight.ndim != 1:
        raise ValueError(f"weight must have shape (C,) (one per class), got {weight.shape}")
    return weight


def _check_int_axis(axis):
    """The axis as an int (TypeError with the functional API's message otherwise)."""
    try:
        return operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {axis!r}") from None


class CrossEntropyLoss(_FusedLoss):
    """Softmax cross-entropy loss object with a fused backward, for NumPy models.

    ``loss = loss_fn(logits, target)`` calls :func:`fastsoftmax.cross_entropy` once with
    ``return_grad=True``: the kernel reads each row of logits once and writes the loss and
    ``d loss / d logits`` together.  The gradient is kept, and
    ``loss_fn.backward(grad_output=1.0)`` returns it (times ``grad_output``) without
    recomputing anything.  Semantics are those of ``torch.nn.CrossEntropyLoss`` with the
    class axis at ``axis``.

    Parameters
    ----------
    axis : int, default -1
        The class axis of the logits (PyTorch uses dim 1).
    weight : array_like of shape (C,), optional
        Class weights.  The array is used as given at each call (not copied).
    ignore_index : int, default -100
        Index targets equal to it contribute neither loss nor gradient.
    reduction : {"mean", "sum", "none"}, default "mean"
        "mean" divides by the sum of ``weight[target]`` over the rows not ignored (index
        targets) or by the number of rows (probability targets); "none" returns the loss
        of each row.
    label_smoothing : float in [0, 1], default 0.0
        Mixes the target with the uniform distribution, as PyTorch does.
    z_loss : float >= 0, default 0.0
        Adds ``z_loss * logsumexp(row)**2`` to each row's loss (weighted like the row's
        main term), which keeps the logits' scale from drifting.
    inplace : bool, default False
        Write the gradient into the logits array itself (``out=logits`` of
        :func:`fastsoftmax.cross_entropy`): the caller's logits array is overwritten with
        ``d loss / d logits``, and ``backward()`` returns it.  Why: in a training step the
        logits are dead after the loss, while a fresh gradient array costs its first-touch
        page faults on every step -- for 256 MB about as much time as the kernel itself.
        The logits must then be a writeable, C-contiguous, aligned ndarray of float16,
        float32 or float64 (any ``axis``); anything else (a list, integer logits, a
        read-only or strided array) raises ``TypeError`` / ``ValueError`` naming
        ``inplace=True``, before anything is written -- no array is allocated instead.
        Loss and gradient are bitwise those of ``inplace=False``, also when the target
        shares memory with the logits (it is read as it was).

    All options are validated at construction by :func:`fastsoftmax.cross_entropy`
    itself, so a bad option raises its ``TypeError`` / ``ValueError`` here.  The class
    count ``C`` is not known yet, so a ``weight`` whose length does not match the logits
    is reported at the first call.

    Methods
    -------
    forward(logits, target), or calling the object
        The loss, as :func:`fastsoftmax.cross_entropy` returns it: a NumPy scalar for
        "mean" and "sum" (float32 for float16 logits, the logits' dtype otherwise), an
        array with the logits' batch shape for "none".  ``target`` holds class indices
        (logits' shape without the class axis) or class probabilities (logits' shape).
    backward(grad_output=1.0)
        ``d (grad_output * loss) / d logits`` for the last forward pass (logits' shape and
        dtype).  ``grad_output`` is a scalar, or for "none" an array of the loss's shape
        (one factor per row, broadcast along the class axis).  With the default 1.0 the
        kernel's gradient array is returned itself (with ``inplace=True``: the logits
        array); other values scale it in place.  Once per forward pass: before a forward,
        or a second time, it raises ``RuntimeError``.

    See Also
    --------
    fastsoftmax.cross_entropy : the function behind the object.
    BCEWithLogitsLoss : independent binary (multi-label) targets.

    Examples
    --------
    Softmax regression on a NumPy batch, trained by plain gradient descent:

    >>> import numpy as np
    >>> from fastsoftmax.losses import CrossEntropyLoss
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((256, 20))
    >>> y = (X[:, :10] > 0).sum(axis=1) % 10          # class indices 0..9
    >>> W, b = np.zeros((20, 10)), np.zeros(10)
    >>> loss_fn = CrossEntropyLoss(label_smoothing=0.05)
    >>> loss_fn
    CrossEntropyLoss(label_smoothing=0.05)
    >>> for step in range(200):
    ...     logits = X @ W + b
    ...     loss = loss_fn(logits, y)                  # one fused kernel call
    ...     dlogits = loss_fn.backward()               # the kept gradient, no copy
    ...     W -= 0.5 * (X.T @ dlogits)
    ...     b -= 0.5 * dlogits.sum(axis=0)
    >>> bool(loss < np.log(10))                        # below the uniform guess
    True

    Per-row weights with ``reduction="none"``: ``backward`` takes one factor per row.

    >>> loss_fn = CrossEntropyLoss(reduction="none")
    >>> rows = loss_fn(X @ W + b, y)
    >>> rows.shape
    (256,)
    >>> dlogits = loss_fn.backward(np.full(256, 1 / 256))   # same as the mean's gradient

    The logits are dead after the loss: ``inplace=True`` writes the gradient over them.

    >>> loss_fn = CrossEntropyLoss(label_smoothing=0.05, inplace=True)
    >>> logits = X @ W + b
    >>> loss = loss_fn(logits, y)                      # logits now hold d loss / d logits
    >>> loss_fn.backward() is logits                   # no N x C array allocated
    True
    """

    _defaults = dict(axis=-1, weight=None, ignore_index=-100, reduction="mean",
                     label_smoothing=0.0, z_loss=0.0, inplace=False)
    _function = "fastsoftmax.cross_entropy"
    _strided_hint = " (for a transposed array: the C-contiguous array it views, with the class axis as axis=)"

    @functional._takes_axis
    def __init__(self, weight=None, *, axis=-1, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0, z_loss=0.0, inplace=False):
        super().__init__()
        inplace = _inplace_flag(inplace)
        axis = _check_int_axis(axis)
        weight = _class_weight(weight)
        options = dict(axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction,
                       label_smoothing=label_smoothing, z_loss=z_loss)
        # Validate every option with the function itself: one row of C zero logits and a
        # probability target (index targets would also check ignore_index as a value).
        n_classes = 1 if weight is None else weight.shape[0]
        dummy = np.zeros((1, n_classes))
        functional.cross_entropy(dummy, dummy, **dict(options, axis=-1))
        self.axis = axis
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.inplace = inplace
        self._options = options

    def _compute(self, logits, target):
        if self.inplace:
            return functional.cross_entropy(logits, target, return_grad=True, out=self._inplace_out(logits),
                                            **self._options)
        return functional.cross_entropy(logits, target, return_grad=True, **self._options)

    def _broadcast_grad_output(self, g, grad):
        # One factor per row: the loss has the logits' shape without the class axis.
        return np.expand_dims(g, self.axis % grad.ndim)


class BCEWithLogitsLoss(_FusedLoss):
    """Binary cross-entropy on logits (sigmoid + BCE) with a fused backward, for NumPy models.

    ``loss = loss_fn(logits, target)`` calls
    :func:`fastsoftmax.binary_cross_entropy_with_logits` once with ``return_grad=True``;
    ``loss_fn.backward(grad_output=1.0)`` returns the kept gradient (times
    ``grad_output``) without recomputation.  Every element is an independent binary
    problem (multi-label classification), with the semantics of
    ``torch.nn.BCEWithLogitsLoss``::

        loss = weight * ((1 - t) * x + (1 + (pos_weight - 1) * t) * softplus(-x))

    Parameters
    ----------
    weight : array_like, optional
        Per-element weights, broadcastable to the logits' shape.  Used as given at each
        call (not copied).
    pos_weight : array_like, optional
        Weight of the positive term, broadcastable to ``(C,)``: one per class along the
        last axis (``> 1`` raises recall, ``< 1`` precision).
    reduction : {"mean", "sum", "none"}, default "mean"
        "mean" divides by the number of elements; "none" returns the loss of each element.
    inplace : bool, default False
        Write the gradient into the logits array itself (``out=logits`` of
        :func:`fastsoftmax.binary_cross_entropy_with_logits`): the caller's logits array is
        overwritten with ``d loss / d logits``, and ``backward()`` returns it.  Why: in a
        training step the logits are dead after the loss, while a fresh gradient array
        costs its first-touch page faults on every step -- for 256 MB about as much time as
        the kernel itself.  The logits must then be a writeable, C-contiguous, aligned
        ndarray of float16, float32 or float64 (0-d too); anything else (a list or scalar,
        integer logits, a read-only or strided array) raises ``TypeError`` /
        ``ValueError`` naming ``inplace=True``, before anything is written -- no array is
        allocated instead.
        Loss and gradient are bitwise those of ``inplace=False``, also when the target or
        the weights share memory with the logits (they are read as they were).

    Options are validated at construction by the function itself (a call on a dummy input
    of the options' broadcast shape), so a bad option raises its ``TypeError`` /
    ``ValueError`` here; shapes that do not fit the logits are reported at the first call.

    Methods
    -------
    forward(logits, target), or calling the object
        The loss, as :func:`fastsoftmax.binary_cross_entropy_with_logits` returns it: a
        NumPy scalar for "mean" and "sum", an array of the logits' shape for "none".
        ``target`` has the logits' shape (float, bool or integer 0/1 values).
    backward(grad_output=1.0)
        ``d (grad_output * loss) / d logits`` for the last forward pass.  ``grad_output``
        is a scalar, or for "none" an array of the logits' shape (elementwise).  With the
        default 1.0 the kernel's gradient array is returned itself (with ``inplace=True``:
        the logits array); other values scale it in place.  Once per forward pass: before a
        forward, or a second time, it raises ``RuntimeError``.

    See Also
    --------
    fastsoftmax.binary_cross_entropy_with_logits : the function behind the object.
    CrossEntropyLoss : one class per row (softmax).

    Examples
    --------
    Multi-label logistic regression (8 independent labels) by gradient descent:

    >>> import numpy as np
    >>> from fastsoftmax.losses import BCEWithLogitsLoss
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((256, 16))
    >>> Y = X[:, :8] + 0.5 * X[:, 8:] > 0               # (256, 8) bool labels
    >>> W, b = np.zeros((16, 8)), np.zeros(8)
    >>> loss_fn = BCEWithLogitsLoss(pos_weight=np.full(8, 2.0))
    >>> for step in range(200):
    ...     logits = X @ W + b
    ...     loss = loss_fn(logits, Y)                  # one fused kernel call
    ...     dlogits = loss_fn.backward()               # the kept gradient, no copy
    ...     W -= 2.0 * (X.T @ dlogits)
    ...     b -= 2.0 * dlogits.sum(axis=0)
    >>> bool(loss < 0.5)
    True

    With ``inplace=True`` the gradient overwrites the (dead) logits:

    >>> loss_fn = BCEWithLogitsLoss(pos_weight=np.full(8, 2.0), inplace=True)
    >>> loss_fn
    BCEWithLogitsLoss(pos_weight=array([2., 2., 2., 2., 2., 2., 2., 2.]), inplace=True)
    >>> logits = X @ W + b
    >>> loss = loss_fn(logits, Y)
    >>> loss_fn.backward() is logits
    True
    """

    _defaults = dict(weight=None, pos_weight=None, reduction="mean", inplace=False)
    _function = "fastsoftmax.binary_cross_entropy_with_logits"
    _strided_hint = ""

    def __init__(self, weight=None, *, pos_weight=None, reduction="mean", inplace=False):
        super().__init__()
        inplace = _inplace_flag(inplace)
        if weight is not None:
            weight = np.asarray(weight)
        if pos_weight is not None:
            pos_weight = np.asarray(pos_weight)
        options = dict(weight=weight, pos_weight=pos_weight, reduction=reduction)
        # Validate with the function itself, on zero logits of a shape both weights
        # broadcast to (when there is none, the function reports the mismatch).
        w_shape = () if weight is None else weight.shape
        pw_shape = () if pos_weight is None or pos_weight.ndim == 0 else pos_weight.shape[-1:]
        try:
            shape = np.broadcast_shapes(w_shape, pw_shape) or (1,)
        except ValueError:
            shape = w_shape or (1,)
        dummy = np.zeros(shape)
        functional.binary_cross_entropy_with_logits(dummy, dummy, **options)
        self.weight = weight
        self.pos_weight = pos_weight
        self.reduction = reduction
        self.inplace = inplace
        self._options = options

    def _compute(self, logits, target):
        if self.inplace:
            return functional.binary_cross_entropy_with_logits(logits, target, return_grad=True,
                                                               out=self._inplace_out(logits), **self._options)
        return functional.binary_cross_entropy_with_logits(logits, target, return_grad=True,
                                                           **self._options)

    def _broadcast_grad_output(self, g, grad):
        return g  # elementwise: the loss has the logits' shape


class _SampledLoss(_FusedLoss):
    """Base of the sampled losses' objects: forward keeps the gradient of the loss with respect
    to the sampled logits; backward multiplies it by ``grad_output`` and through the products
    (the matrix products of the backward pass run there, not in forward)."""

    _kind = None
    _defaults = dict(num_true=1, remove_accidental_hits=True, subtract_log_q=True, sampler="log_uniform",
                     unique=True, rng=None, reduction="mean")

    def __init__(self, num_sampled, num_classes, *, num_true=1, remove_accidental_hits=True, subtract_log_q=True,
                 sampler="log_uniform", unique=True, rng=None, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.num_sampled = sampling._count(num_sampled, "num_sampled", 1)
        self.num_classes = sampling._count(num_classes, "num_classes", 1)
        self.num_true = sampling._count(num_true, "num_true", 1)
        if not (isinstance(sampler, str) and sampler in sampled._SAMPLERS) and not hasattr(sampler, "sample"):
            raise ValueError(f"sampler must be 'log_uniform', 'uniform' or a sampler object, got {sampler!r}")
        self.remove_accidental_hits = bool(remove_accidental_hits)
        self.subtract_log_q = bool(subtract_log_q)
        self.sampler = sampler
        self.unique = unique
        # one generator for every call: a seed gives a reproducible sequence of steps
        self.rng = rng
        self._generator = sampling._generator(rng)
        self.reduction = reduction

    def forward(self, weights, biases, labels, inputs, sampled_values=None):
        """The loss; keeps what :meth:`backward` needs.  Arguments as in the function
        (:func:`fastsoftmax.sampled_softmax_loss` / :func:`fastsoftmax.nce_loss`)."""
        return self._keep(sampled._forward, self._kind, weights, biases, labels, inputs, self.num_sampled,
                          self.num_classes, self.num_true, sampled_values, self.remove_accidental_hits,
                          self.subtract_log_q, self.sampler, self.unique, self._generator, self.reduction, True)

    __call__ = forward

    def _broadcast_grad_output(self, g, ctx):
        return g[:, None]  # one factor per example

    def _finish(self, ctx, g):
        """The :class:`fastsoftmax.SampledGrads` of the last forward pass, times ``grad_output``."""
        if g is not None:
            np.multiply(ctx.g, g, out=ctx.g)
        return sampled._backward(ctx)


class SampledSoftmaxLoss(_SampledLoss):
    """:func:`fastsoftmax.sampled_softmax_loss` as a loss object.

    ``loss = fn(weights, biases, labels, inputs)`` draws the candidates (from the object's own
    generator, made once from ``rng``), computes the loss and keeps the gradient of the loss
    with respect to the logits; ``grads = fn.backward()`` returns the
    :class:`fastsoftmax.SampledGrads` (``inputs``, ``ids``, ``weights``, ``biases``), scaled
    by ``grad_output`` (a scalar, or one factor per example for ``reduction="none"``).

    >>> loss_fn = SampledSoftmaxLoss(num_sampled=64, num_classes=10_000, rng=0)
    >>> loss = loss_fn(W, b, labels, hidden)          # doctest: +SKIP
    >>> g = loss_fn.backward()                         # doctest: +SKIP
    >>> W[g.ids] -= lr * g.weights                     # doctest: +SKIP
    """

    _kind = "softmax"


class NCELoss(_SampledLoss):
    """:func:`fastsoftmax.nce_loss` as a loss object (see :class:`SampledSoftmaxLoss`);
    ``remove_accidental_hits`` defaults to False, as in TensorFlow."""

    _kind = "nce"
    _defaults = dict(_SampledLoss._defaults, remove_accidental_hits=False)

    def __init__(self, num_sampled, num_classes, *, remove_accidental_hits=False, **options):
        super().__init__(num_sampled, num_classes, remove_accidental_hits=remove_accidental_hits, **options)


class LinearCrossEntropyLoss(_FusedLoss):
    """:func:`fastsoftmax.linear_cross_entropy` as a loss object: the output layer and the
    cross-entropy, in chunks of rows, without the N x C logits.

    ``loss = fn(inputs, classifier, target, bias=None)`` computes the loss and the gradients in
    one chunked pass and keeps the gradients; ``grads = fn.backward(grad_output=1.0)`` returns
    them, a :class:`fastsoftmax.LinearGrads` (``inputs``, ``classifier``, ``bias``), times
    ``grad_output``. A scalar ``grad_output`` scales the kept arrays in place; one factor per
    row (``reduction="none"``) scales each row's gradient before the products, which runs the
    chunked pass again, on the arrays of the forward call as they are then.

    Options (``weight``, ``ignore_index``, ``reduction``, ``label_smoothing``, ``z_loss``,
    ``chunk_size``) are those of the function, validated here.

    >>> loss_fn = LinearCrossEntropyLoss(label_smoothing=0.1)
    >>> loss = loss_fn(hidden, W_out, next_tokens, b_out)   # doctest: +SKIP
    >>> g = loss_fn.backward()                              # doctest: +SKIP
    >>> W_out -= lr * g.classifier                          # doctest: +SKIP
    """

    _defaults = dict(weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, z_loss=0.0,
                     chunk_size=None)

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0, z_loss=0.0,
                 chunk_size=None):
        super().__init__()
        weight = _class_weight(weight)
        # validated by the function itself, on a dummy input of no rows (no target to check)
        c = 1 if weight is None else weight.shape[0]
        linear._prepare(np.zeros((0, 1)), np.zeros((c, 1)), np.zeros(0, np.int64), None, weight, ignore_index,
                        reduction, label_smoothing, z_loss, chunk_size)
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.chunk_size = chunk_size

    def forward(self, inputs, classifier, target, bias=None):
        """The loss of ``inputs @ classifier.T + bias`` against ``target``; keeps the gradients
        for :meth:`backward`."""
        return self._keep(self._compute, inputs, classifier, target, bias)

    __call__ = forward

    def _compute(self, inputs, classifier, target, bias):
        args = linear._prepare(inputs, classifier, target, bias, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing, self.z_loss, self.chunk_size)
        loss, grads = linear._run(args, True)
        return loss, (args, grads)

    def _broadcast_grad_output(self, g, kept):
        return g  # one factor per row, applied by the chunked pass

    def _finish(self, kept, g):
        args, grads = kept
        if g is None:
            return grads
        if g.ndim == 0:
            for a in grads:
                if a is not None:
                    np.multiply(a, g, out=a)
            return grads
        return linear._run(args, True, row_scale=g)[1]
