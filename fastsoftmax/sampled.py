"""Sampled softmax and NCE losses (TensorFlow's ``tf.nn.sampled_softmax_loss`` and ``tf.nn.nce_loss``).

For problems with very many classes, each example's loss is computed over its true classes and a
shared set of ``num_sampled`` sampled classes instead of all of them.  The pieces are the
package's kernels (``src/sampled/ops.h``): the gather of the weight rows, the logits' biases,
accidental hits and log-Q correction, and the scatter of the gradient rows.  The fused
softmax cross-entropy (``cross_entropy``) or sigmoid cross-entropy
(``binary_cross_entropy_with_logits``) computes the loss and its gradient.  The three matrix
products go to BLAS through NumPy's ``matmul``.
"""

from collections import namedtuple

import numpy as np

from . import _kernels, sampling
from .functional import binary_cross_entropy_with_logits, cross_entropy

__all__ = ["sampled_softmax_loss", "nce_loss", "SampledGrads"]

#: The gradients of a sampled loss.  ``inputs`` (N, D) is dense; ``ids`` are the sorted distinct
#: classes the call touched (true and sampled, int64); ``weights`` (len(ids), D) and ``biases``
#: (len(ids),) or None are the gradient rows of those classes, so that
#: ``W[grads.ids] -= lr * grads.weights`` is an SGD step.
SampledGrads = namedtuple("SampledGrads", ["inputs", "ids", "weights", "biases"])

_SAMPLERS = {"log_uniform": sampling.log_uniform_candidate_sampler, "uniform": sampling.uniform_candidate_sampler}


def _check_classes(ids, num_classes, what):
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        bad = ids[(ids < 0) | (ids >= num_classes)].flat[0]
        raise IndexError(f"{what} {bad} is outside [0, num_classes) = [0, {num_classes})")


def _arguments(weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values, sampler,
               unique, rng, reduction):
    num_classes = sampling._count(num_classes, "num_classes", 1)
    num_true = sampling._count(num_true, "num_true", 1)
    num_sampled = sampling._count(num_sampled, "num_sampled", 1)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    w, x = np.asarray(weights), np.asarray(inputs)
    b = None if biases is None else np.asarray(biases)
    dtypes = {a.dtype for a in (w, x, b) if a is not None}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        raise TypeError("weights, biases and inputs must share one dtype, float32 or float64; got "
                        + ", ".join(str(a.dtype) for a in (w, x, b) if a is not None))
    if w.ndim != 2 or w.shape[0] != num_classes:
        raise ValueError(f"weights must have shape (num_classes, D) = ({num_classes}, D), got {w.shape}")
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"inputs must have shape (N, D) = (N, {w.shape[1]}), got {x.shape}")
    if b is not None and b.shape != (num_classes,):
        raise ValueError(f"biases must have shape ({num_classes},), got {b.shape}")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (class indices), got dtype {y.dtype}")
    n = x.shape[0]
    if not (y.shape == (n, num_true) or (num_true == 1 and y.shape == (n,))):
        raise ValueError(f"labels must have shape (N, num_true) = ({n}, {num_true})"
                         f"{' or (N,)' if num_true == 1 else ''}, got {y.shape}")
    y = np.require(y.reshape(n, num_true), np.int64, "CA")
    _check_classes(y, num_classes, "label")
    if sampled_values is None:
        if isinstance(sampler, str):
            if sampler not in _SAMPLERS:
                raise ValueError(f"sampler must be 'log_uniform', 'uniform' or a sampler object, got {sampler!r}")
            sampled_values = _SAMPLERS[sampler](y, num_true, num_sampled, unique, num_classes, rng=rng)
        elif hasattr(sampler, "sample"):
            sampled_values = sampler.sample(y, num_true, num_sampled, unique, num_classes, rng=rng)
        else:
            raise TypeError(f"sampler must be 'log_uniform', 'uniform' or a sampler object, not "
                            f"{type(sampler).__name__}")
    try:
        sampled, true_count, sampled_count = sampled_values
    except (TypeError, ValueError):
        raise ValueError("sampled_values must be (sampled_candidates, true_expected_count, "
                         "sampled_expected_count)") from None
    sampled = np.asarray(sampled)
    if sampled.dtype.kind not in "iu" or sampled.shape != (num_sampled,):
        raise ValueError(f"sampled_candidates must be {num_sampled} integers, got {sampled.dtype} {sampled.shape}")
    sampled = np.require(sampled, np.int64, "CA")
    _check_classes(sampled, num_classes, "sampled class")
    true_count = np.asarray(true_count, dtype=np.float64)
    sampled_count = np.asarray(sampled_count, dtype=np.float64)
    if true_count.size != n * num_true or true_count.ndim not in (1, 2) or sampled_count.shape != (num_sampled,):
        raise ValueError(f"the expected counts must have shapes ({n}, {num_true}) and ({num_sampled},), got "
                         f"{true_count.shape} and {sampled_count.shape}")
    if (not w.flags.aligned or (w.shape[1] > 1 and w.strides[1] != w.itemsize)
            or (w.shape[0] > 1 and (w.strides[0] % w.itemsize or w.strides[0] < 0))):
        w = np.require(w, requirements="CA")  # rows of unit stride (any row stride) need no copy
    x = np.require(x, requirements="CA")  # contiguous and aligned (a view of bytes may not be)
    return w, b, y, x, sampled, true_count.reshape(-1), sampled_count, num_true


class _Context:
    """What the backward pass of a sampled loss needs from its forward pass: ``g`` the gradient of
    the loss with respect to the logits (N, num_true + S), and the rows it multiplies (``w_s`` and
    ``xa``, with the bias column of the product when there is one)."""

    __slots__ = ("g", "w_s", "w_t", "xa", "y", "sampled", "num_true", "bias")

    def __init__(self, g, w_s, w_t, xa, y, sampled, num_true, bias):
        self.g, self.w_s, self.w_t, self.xa, self.y = g, w_s, w_t, xa, y
        self.sampled, self.num_true, self.bias = sampled, num_true, bias


def _forward(kind, weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
             remove_accidental_hits, subtract_log_q, sampler, unique, rng, reduction, want_grad):
    """The loss, and with want_grad the _Context of the backward pass (else None)."""
    w, b, y, x, sampled, true_count, sampled_count, nt = _arguments(
        weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values, sampler, unique, rng,
        reduction)
    n, d = x.shape
    s = sampled.size
    dtype = x.dtype
    # the candidates in increasing order (the loss does not depend on their order): the hits are
    # found by binary search, and the weights' gradient rows are written in the order of ids
    order = np.argsort(sampled, kind="stable")
    sampled, sampled_count = sampled[order], sampled_count[order]
    # The sampled logits x W_s^T + b_s - log Q_s come out of one product, [x, 1] [W_s, b_s - log Q_s]^T,
    # rather than a pass over the N x S logits after it (b_s - log Q_s rounded once to the dtype,
    # where TensorFlow rounds after each of its two steps: the same accuracy bar). The column of
    # ones also gives the biases' gradient in the backward product G_s^T [x, 1].
    column = np.zeros(s) if b is not None or subtract_log_q else None
    if column is not None:
        if b is not None:
            column += b[sampled]
        if subtract_log_q:
            with np.errstate(divide="ignore"):
                column -= np.log(sampled_count)
    width = d + (column is not None)
    w_s = np.empty((s, width), dtype)
    _kernels.gather_rows(w, sampled, w_s)
    if column is None:
        xa = x
    else:
        w_s[:, d] = column
        xa = np.empty((n, width), dtype)
        xa[:, :d] = x
        xa[:, d] = 1
    w_t = np.empty((n * nt, d), dtype)
    _kernels.gather_rows(w, y.reshape(-1), w_t)
    logits = np.empty((n, nt + s), dtype)
    np.matmul(xa, w_s.T, out=logits[:, nt:])
    with np.errstate(divide="ignore"):
        logq_t = np.log(true_count).reshape(-1) if subtract_log_q else None
    _kernels.sampled_logits(logits, xa, w_t, None if b is None else np.ascontiguousarray(b[y.reshape(-1)]), y,
                            sampled, logq_t, bool(remove_accidental_hits))
    if kind == "softmax":
        target = np.zeros(n, np.int64) if nt == 1 else _targets(n, nt, s, dtype)
        result = cross_entropy(logits, target, reduction=reduction, return_grad=want_grad,
                               out=logits if want_grad else None)
    else:
        result = _nce(logits, _targets(n, nt, s, dtype), reduction, want_grad)
    if not want_grad:
        return result, None
    loss, g = result
    return loss, _Context(g, w_s, w_t, xa, y, sampled, nt, b is not None)


def _backward(c):
    """The SampledGrads of a forward pass: the products of its logits' gradient with the rows.
    It uses up the context (the product G_s^T x overwrites its sampled rows)."""
    nt = c.num_true
    n, d = c.w_t.shape[0] // nt, c.w_t.shape[1]
    g_t, g_s = np.ascontiguousarray(c.g[:, :nt]).reshape(-1), c.g[:, nt:]
    y = c.y.reshape(-1)
    # the unique ids (both parts sorted, with their repeats), and where each candidate and true
    # entry lands among them
    every = np.concatenate([y, c.sampled])
    every.sort()
    ids = every[np.concatenate(([True], every[1:] != every[:-1]))]
    pos_t, pos_s = np.searchsorted(ids, y), np.searchsorted(ids, c.sampled)
    true_order = np.argsort(pos_t, kind="stable")
    d_x = np.matmul(g_s, c.w_s[:, :d])
    _kernels.scatter_add_rows(d_x, np.repeat(np.arange(n, dtype=np.int64), nt), c.w_t, None, g_t)
    # G_s^T [x, 1]: the sampled rows' gradients, and in the last column their biases', written
    # over the sampled weight rows (dead after d_x; an allocation as large saved)
    prod = c.w_s if c.bias or c.w_s.shape[1] == d else c.w_s[:, :d]
    np.matmul(g_s.T, c.xa if c.bias else c.xa[:, :d], out=prod)
    # the logits' gradient is dead: its memory can hold the weights' gradient rows
    c.g = c.w_s = g_s = None
    d_w = np.empty((ids.size, d), c.w_t.dtype)
    d_b = np.empty(ids.size, c.w_t.dtype) if c.bias else None
    _kernels.sampled_id_rows(d_w, d_b, prod, pos_s, true_order, pos_t[true_order], c.xa, g_t, nt)
    return SampledGrads(d_x, ids, d_w, d_b)


def _sampled(kind, *args, return_grad):
    loss, ctx = _forward(kind, *args, return_grad)
    return (loss, _backward(ctx)) if return_grad else loss


def _targets(n, nt, s, dtype):
    t = np.zeros((n, nt + s), dtype)
    t[:, :nt] = 1.0 / nt
    return t


def _nce(logits, targets, reduction, return_grad):
    res = binary_cross_entropy_with_logits(logits, targets, reduction="none", return_grad=return_grad,
                                           out=logits if return_grad else None)
    elementwise, g = res if return_grad else (res, None)
    rows = elementwise.sum(axis=1, dtype=np.float64)
    n = logits.shape[0]
    if reduction == "none":
        loss = rows.astype(logits.dtype)
    else:  # the mean of no rows is NaN, as cross_entropy's
        loss = logits.dtype.type(rows.sum() if reduction == "sum" else rows.sum() / n if n else np.nan)
    if not return_grad:
        return loss
    if reduction == "mean" and n:
        g *= logits.dtype.type(1.0 / n)
    return loss, g


def sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes, *, num_true=1,
                         sampled_values=None, remove_accidental_hits=True, subtract_log_q=True,
                         sampler="log_uniform", unique=True, rng=None, reduction="mean", return_grad=False):
    """Sampled softmax loss, as ``tf.nn.sampled_softmax_loss``.

    Each example's loss is the softmax cross-entropy over the logits of its ``num_true`` true
    classes and of ``num_sampled`` classes drawn once for the batch, with the targets
    ``1/num_true`` on the true classes.  It estimates the full softmax loss for training; evaluate
    with the full softmax (:func:`cross_entropy` of ``inputs @ weights.T + biases``).

    Parameters
    ----------
    weights : ndarray, shape (num_classes, D)
        The class embeddings (the weight of the last linear layer), float32 or float64.
    biases : ndarray of shape (num_classes,), or None
    labels : array_like of int, shape (N, num_true) or (N,)
        The true classes of each example.
    inputs : ndarray, shape (N, D)
        The examples' activations, of the weights' dtype.
    num_sampled : int
        Number of classes to sample.
    num_classes : int
        Number of classes.
    num_true : int, default 1
    sampled_values : tuple, optional
        ``(sampled_candidates, true_expected_count, sampled_expected_count)`` from a sampler of
        :mod:`fastsoftmax.sampling`; when given, ``sampler``, ``unique`` and ``rng`` are ignored.
    remove_accidental_hits : bool, default True
        A sampled class that is one of the example's true classes gets ``-3.4028235e38`` added to
        its logit (its probability becomes 0), as in TensorFlow.
    subtract_log_q : bool, default True
        Subtract ``log(expected count)`` from every logit.
    sampler : "log_uniform", "uniform" or a sampler object (``.sample`` as
        :class:`fastsoftmax.sampling.UnigramSampler`), default "log_uniform"
    unique : bool, default True
    rng : None, int or numpy.random.Generator
    reduction : "mean", "sum" or "none"
        "none" returns the per-example losses (TensorFlow's return value).
    return_grad : bool, default False
        Also return the gradients, a :class:`SampledGrads`.

    Returns
    -------
    loss : scalar of the inputs' dtype, or (N,) array for "none"
    grads : SampledGrads, with ``return_grad``
    """
    return _sampled("softmax", weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
                    remove_accidental_hits, subtract_log_q, sampler, unique, rng, reduction, return_grad=return_grad)


def nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, *, num_true=1, sampled_values=None,
             remove_accidental_hits=False, subtract_log_q=True, sampler="log_uniform", unique=True, rng=None,
             reduction="mean", return_grad=False):
    """Noise-contrastive estimation loss, as ``tf.nn.nce_loss``.

    The logits of :func:`sampled_softmax_loss`, and per example the sum over them of the sigmoid
    cross-entropy with targets ``1/num_true`` (true classes) and 0 (sampled classes).  With
    ``subtract_log_q=False`` and a ``UnigramSampler(counts, 0.75)`` this is word2vec's negative
    sampling.  Parameters and return values as in :func:`sampled_softmax_loss` (here
    ``remove_accidental_hits`` defaults to False, as in TensorFlow).
    """
    return _sampled("nce", weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
                    remove_accidental_hits, subtract_log_q, sampler, unique, rng, reduction, return_grad=return_grad)
