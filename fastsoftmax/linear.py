"""Fused linear + cross-entropy: the loss of ``inputs @ classifier.T + bias`` without its N x C logits.

The last layer of a language model or a large classifier computes logits for N rows and C
classes, then the loss; with N = 16,384 and C = 128,256 the float32 logits alone take 8 GB. Here
the rows go in chunks whose logits fit a fixed budget: each chunk's logits come out of one
matrix product into a reused buffer, go through the fused cross-entropy kernel in place (the
buffer then holds their gradient, already scaled by the whole batch's reduction), and the
gradient is folded into the inputs' and classifier's gradients at once. The products are BLAS
``?gemm`` calls, the classifier's gradient, which every chunk adds to, with ``beta = 1``
(NumPy's ``matmul`` cannot add into an array). Which BLAS, first found first:

1. NumPy's own (the OpenBLAS inside NumPy's wheels), called through ``ctypes``: the library,
   threads and speed of ``matmul`` itself, so that the chunks cost what the whole products cost
   with NumPy;
2. SciPy's (``scipy.linalg.blas``), another OpenBLAS with threads of its own;
3. NumPy's ``matmul``, each chunk's classifier product through a temporary of a few class rows,
   added (one more pass over the classifier's gradient per chunk).
"""

import ctypes
import functools
import glob
import math
import os
from collections import namedtuple

import numpy as np

from . import _config, _kernels
from .functional import _ce_options, _check_targets, _loss_scalar

__all__ = ["linear_cross_entropy", "LinearGrads"]

#: The gradients of :func:`linear_cross_entropy`: ``inputs`` (N, D), ``classifier`` (C, D) and
#: ``bias`` (C,) or None, of the inputs' dtype.
LinearGrads = namedtuple("LinearGrads", ["inputs", "classifier", "bias"])

#: The logits of one chunk take 1/CHUNK_FRACTION of the whole batch's, rounded up to a row (room below
#: 1/16 for the per-row losses and the bias's column sums), but at least CHUNK_MIN_BYTES (products of fewer
#: rows run far below BLAS's speed) and at most CHUNK_MAX_BYTES: the default chunk depends on
#: N, C and the dtype only, so results are the same on any machine state and thread count.
CHUNK_FRACTION = 17
CHUNK_MIN_BYTES = 32 << 20
CHUNK_MAX_BYTES = 256 << 20


def default_chunk_size(n_rows, n_classes, dtype):
    """The default number of rows per chunk: N / 17 rounded up, but logits of at least
    ``CHUNK_MIN_BYTES`` and at most ``CHUNK_MAX_BYTES`` (at least one row, at most N); then
    evened out, so that as many chunks have equal sizes, the last at most as large. Every chunk
    streams the whole classifier through two products and its gradient through a third: a last
    chunk of a few rows would cost nearly as much as a full one."""
    row = max(n_classes, 1) * np.dtype(dtype).itemsize
    rows = max(-(-n_rows // CHUNK_FRACTION), -(-CHUNK_MIN_BYTES // row))
    rows = max(1, min(rows, CHUNK_MAX_BYTES // row, n_rows))
    chunks = -(-n_rows // rows)
    return max(1, -(-n_rows // chunks)) if chunks else 1


def _gemm(dtype):
    """SciPy's BLAS ?gemm for ``dtype`` (c = alpha op(a) op(b) + beta c, in place for a Fortran c),
    or None without SciPy."""
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
    return blas.sgemm if dtype == np.float32 else blas.dgemm


# cblas's enums (cblas.h): row-major order, no transpose, transpose
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@functools.lru_cache(maxsize=None)
def _numpy_gemm(dtype):
    """``cblas_?gemm`` of the OpenBLAS that NumPy's wheels bundle and its ``matmul`` calls (the same
    loaded library, found beside NumPy and opened again by ``ctypes``), as ``(function, int64)``
    with ``int64`` whether its integers are 64-bit; None for another NumPy build (MKL, Accelerate,
    a system BLAS) or when the library does not answer a small product exactly."""
    blas = getattr(getattr(np, "__config__", None), "CONFIG", {}).get("Build Dependencies", {}).get("blas", {})
    if "openblas" not in str(blas.get("name", "")):
        return None
    top = os.path.dirname(os.path.abspath(np.__file__))
    # where auditwheel (Linux), delvewheel (Windows) and delocate (macOS) put the wheels' libraries
    paths = sorted(glob.glob(os.path.join(top + ".libs", "*openblas*"))
                   + glob.glob(os.path.join(top, ".dylibs", "*openblas*")))
    real = ctypes.c_double if dtype == np.float64 else ctypes.c_float
    letter = "d" if dtype == np.float64 else "s"
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_cblas_%sgemm64_", "cblas_%sgemm64_", "scipy_cblas_%sgemm", "cblas_%sgemm"):
            fn = getattr(lib, name % letter, None)
            if fn is None:
                continue
            int64 = name.endswith("64_")
            i = ctypes.c_int64 if int64 else ctypes.c_int
            p = ctypes.c_void_p
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i, i, i, real, p, i, p, i, real, p, i]
            fn.restype = None
            if _gemm_answers(fn, dtype):
                return fn, int64
    return None


def _gemm_answers(fn, dtype):
    """Whether fn computes c = a @ b.T + c exactly on small integers (a 2 x 3 by 4 x 3 product)."""
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.arange(12, dtype=dtype).reshape(4, 3) - 5
    c = np.ones((2, 4), dtype)
    fn(_ROW_MAJOR, _NO_TRANS, _TRANS, 2, 4, 3, 1.0, a.ctypes.data, 3, b.ctypes.data, 3, 1.0, c.ctypes.data, 4)
    return np.array_equal(c, a @ b.T + 1)


class _CblasProducts:
    """A chunk's three products with NumPy's own ``cblas_?gemm``, the classifier's gradient
    accumulated in place (``beta = 1``). Row-major calls on the arrays as they are: the chunks
    are C-ordered rows, the classifier C- or Fortran-ordered."""

    def __init__(self, w, gemm):
        self.fn, int64 = gemm
        self.limit = 2**63 - 1 if int64 else 2**31 - 1
        # the classifier W (C, D) as a row-major operand: W itself, or (Fortran-ordered) W.T transposed
        self.w = w if w.flags.c_contiguous else w.T
        self.w_trans = not w.flags.c_contiguous

    def _gemm(self, ta, tb, m, n, k, a, b, beta, c):
        lda, ldb, ldc = (max(s.strides[0] // s.itemsize, 1) for s in (a, b, c))
        if max(m, n, k, lda, ldb, ldc) > self.limit:
            raise ValueError("the matrices are too large for this BLAS's 32-bit integers")
        self.fn(_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS, m, n, k, 1.0,
                a.ctypes.data, lda, b.ctypes.data, ldb, beta, c.ctypes.data, ldc)

    def logits(self, xc, out):  # out (n, C) = xc @ W.T
        self._gemm(False, not self.w_trans, out.shape[0], out.shape[1], xc.shape[1], xc, self.w, 0.0, out)

    def d_inputs(self, g, out):  # out (n, D) = g @ W
        self._gemm(False, self.w_trans, out.shape[0], out.shape[1], g.shape[1], g, self.w, 0.0, out)

    def add_d_classifier(self, d_w, g, xc, first):  # d_w (C, D) = g.T @ xc (+ d_w)
        self._gemm(True, False, d_w.shape[0], d_w.shape[1], g.shape[0], g, xc, 0.0 if first else 1.0, d_w)


class _NumpyProducts:
    """A chunk's three products with NumPy's ``matmul``. It cannot add into an array: each
    chunk's classifier gradient goes through a temporary of a few class rows (at most the
    chunk's logits) and is added, one more pass over the classifier's gradient."""

    def __init__(self, w):
        self.w = w
        self.tmp = None  # the classifier gradient's temporary, made once for every chunk

    def logits(self, xc, out):
        np.matmul(xc, self.w.T, out=out)

    def d_inputs(self, g, out):
        np.matmul(g, self.w, out=out)

    def add_d_classifier(self, d_w, g, xc, first):
        if first:
            np.matmul(g.T, xc, out=d_w)
            return
        block = max(1, min(d_w.shape[0], g.size // max(xc.shape[1], 1)))
        if self.tmp is None or self.tmp.shape[0] < block:
            self.tmp = np.empty((block, d_w.shape[1]), d_w.dtype)
        tmp = self.tmp
        for c0 in range(0, d_w.shape[0], block):
            c1 = min(d_w.shape[0], c0 + block)
            np.matmul(g[:, c0:c1].T, xc, out=tmp[: c1 - c0])
            d_w[c0:c1] += tmp[: c1 - c0]


class _ScipyProducts:
    """A chunk's three products with SciPy's ``?gemm``, the classifier's gradient accumulated in
    place (``beta = 1``). All three go to this one BLAS: NumPy's is another library with threads
    of its own, which would spin beside SciPy's in every chunk. Every operand is passed as a
    Fortran-ordered view (a C-ordered array is the transpose of one), so nothing is copied."""

    def __init__(self, w, gemm):
        self.gemm = gemm
        # op(wa, trans=wt) is the classifier W (C, D): wa = W itself if Fortran-ordered, else W.T
        self.wa, self.wt = (w, 0) if w.flags.f_contiguous and not w.flags.c_contiguous else (w.T, 1)

    def _into(self, c, **kw):
        out = self.gemm(1.0, c=c, overwrite_c=1, **kw)
        if not np.shares_memory(out, c):  # not with a Fortran c of the right dtype; if ever, still right
            c[...] = out

    def logits(self, xc, out):  # out.T (C, n) = W @ xc.T
        self._into(out.T, a=self.wa, b=xc.T, trans_a=self.wt)

    def d_inputs(self, g, out):  # out.T (D, n) = W.T @ g.T
        self._into(out.T, a=self.wa, b=g.T, trans_a=1 - self.wt)

    def add_d_classifier(self, d_w, g, xc, first):  # d_w.T (D, C) = xc.T @ g (+ d_w.T)
        self._into(d_w.T, a=xc.T, b=g.T, trans_b=1, beta=0.0 if first else 1.0)


def _products(w, dtype):
    own = _numpy_gemm(np.dtype(dtype).type)
    if own is not None:
        return _CblasProducts(w, own)
    gemm = _gemm(dtype)
    return _NumpyProducts(w) if gemm is None else _ScipyProducts(w, gemm)


def _float_matrix(a, name, ndim):
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def linear_cross_entropy(inputs, classifier, target, *, bias=None, weight=None, ignore_index=-100,
                         reduction="mean", label_smoothing=0.0, z_loss=0.0, chunk_size=None, return_grad=False):
    """Softmax cross-entropy of the logits ``inputs @ classifier.T + bias``, computed in chunks of
    rows, so that the N x C logits never exist.

    The result equals ``cross_entropy(inputs @ classifier.T + bias, target, ...)`` within the
    package's accuracy bars (plus the matrix products' rounding allowance of
    ``reference.TOLERANCES``). Each chunk's logits come out of one product into a reused buffer,
    go through the fused cross-entropy kernel in place, and their gradient is folded into the
    gradients of the inputs and the classifier at once.

    Parameters
    ----------
    inputs : ndarray, shape (N, D)
        The last hidden layer, float32 or float64.
    classifier : ndarray, shape (C, D)
        The weight of the output layer, in PyTorch's layout (one row per class), of the inputs'
        dtype.
    target : array_like of int, shape (N,)
        Class indices (``ignore_index`` for rows that count for nothing).
    bias : ndarray of shape (C,), optional
        The output layer's bias, of the inputs' dtype.
    weight, ignore_index, reduction, label_smoothing, z_loss
        As in :func:`fastsoftmax.cross_entropy` (``weight``: one loss weight per class).
    chunk_size : int, optional
        Rows per chunk. The default is a fixed function of N, C and the dtype (chunks of equal
        sizes, each with logits of at most 1/17 of the N x C logits' bytes, within 32 MiB to 256
        MiB), never of the thread count or the
        free memory, so
        results are bitwise the same on any machine state. Another chunk size changes the
        last bits only.
    return_grad : bool, default False
        Also return the gradients, a :class:`LinearGrads`.

    Returns
    -------
    loss : scalar of the inputs' dtype, or (N,) array for ``reduction="none"``
    grads : LinearGrads(inputs, classifier, bias), with ``return_grad``
        ``bias`` is None without a bias.

    Notes
    -----
    Memory above the arguments and the returned gradients: one chunk's logits, its per-row
    losses, and with the gradients a bias-sized sum. The classifier's gradient is accumulated
    chunk after chunk by BLAS ``?gemm`` with ``beta = 1``: NumPy's own OpenBLAS (in NumPy's
    wheels), else SciPy's when SciPy is installed; with neither, each chunk's product goes through
    a temporary no larger than the chunk's logits and is added (one more pass over the
    classifier's gradient per chunk).
    """
    return _run(_prepare(inputs, classifier, target, bias, weight, ignore_index, reduction, label_smoothing, z_loss,
                         chunk_size), return_grad)


def _prepare(inputs, classifier, target, bias, weight, ignore_index, reduction, label_smoothing, z_loss, chunk_size):
    """The validated arguments of the chunked pass (TypeError, ValueError, IndexError otherwise)."""
    x = _float_matrix(inputs, "inputs", 2)
    w = _float_matrix(classifier, "classifier", 2)
    b = None if bias is None else _float_matrix(bias, "bias", 1)
    dtype = x.dtype
    if w.dtype != dtype or (b is not None and b.dtype != dtype):
        raise TypeError("inputs, classifier and bias must have one dtype, got "
                        + ", ".join(str(a.dtype) for a in (x, w, b) if a is not None))
    n, d = x.shape
    c = w.shape[0]
    if w.shape[1] != d:
        raise ValueError(f"classifier must have shape (C, D) with D = {d} (the inputs' columns), got {w.shape}")
    if b is not None and b.shape != (c,):
        raise ValueError(f"bias must have shape ({c},) (one per class), got {b.shape}")
    weight, ignore_index, label_smoothing, z_loss = _ce_options(weight, ignore_index, reduction, label_smoothing,
                                                                z_loss, c, dtype)
    if chunk_size is None:
        chunk = default_chunk_size(n, c, dtype)
    else:
        chunk = _config.integer(chunk_size, "chunk_size")
        if chunk < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk}")
        chunk = min(chunk, max(n, 1))
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got {target.dtype}")
    t, denom, checked = _check_targets(target, (n,), c, ignore_index, weight)
    return (x, w, b, t, denom, checked, weight, ignore_index, reduction, label_smoothing, z_loss, chunk)


def _run(args, return_grad, row_scale=None):
    """The chunked pass over validated arguments (see linear_cross_entropy); ``row_scale`` (N,)
    multiplies each row's gradient before the products (a loss object's per-row grad_output)."""
    x, w, b, t, denom, checked, weight, ignore_index, reduction, label_smoothing, z_loss, chunk = args
    n, d = x.shape
    c = w.shape[0]
    dtype = x.dtype
    if reduction != "mean":
        denom = 1.0
    grad_scale = 1.0 / denom if denom != 0.0 else math.copysign(math.inf, denom)
    x = np.require(x, requirements="CA")
    if not (w.flags.c_contiguous or w.flags.f_contiguous) or not w.flags.aligned:
        w = np.ascontiguousarray(w)  # once, rather than a copy in every chunk's product
    loss_rows = np.empty(n, np.float64)
    if return_grad:
        d_x = np.empty((n, d), dtype)
        d_w = np.empty((c, d), dtype) if n else np.zeros((c, d), dtype)
        d_b = np.zeros(c, dtype) if b is not None else None
        col = np.empty(c, dtype) if b is not None else None
    blas = _products(w, dtype)
    total = 0.0
    if n and c:
        logits = np.empty((min(chunk, n), c), dtype)
        for r0 in range(0, n, chunk):
            r1 = min(n, r0 + chunk)
            rows = logits[: r1 - r0]
            xc = x[r0:r1]
            blas.logits(xc, rows)
            if b is not None:
                rows += b
            options = _kernels.CrossEntropyOptions(
                target=t[r0:r1], weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
                grad_scale=grad_scale, z_loss=z_loss, targets_checked=checked)
            view = rows.reshape(1, r1 - r0, c)
            total += _kernels.cross_entropy(view, options, loss_rows[r0:r1], view if return_grad else None)
            if return_grad:  # rows now hold d loss / d logits of the chunk
                if row_scale is not None:
                    rows *= row_scale[r0:r1, None]
                blas.d_inputs(rows, d_x[r0:r1])
                blas.add_d_classifier(d_w, rows, xc, r0 == 0)
                if b is not None:
                    np.sum(rows, axis=0, out=col)
                    d_b += col
    else:
        loss_rows.fill(0.0)  # no rows, or no classes: every target is then ignore_index
        if return_grad:
            d_x.fill(0)

    if reduction == "none":
        with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN losses are results
            loss = loss_rows.astype(dtype)
    elif reduction == "sum":
        loss = _loss_scalar(total, dtype)
    elif denom == 0.0:
        loss = dtype.type(np.nan)  # every row ignored: 0 / 0, as cross_entropy
    else:
        loss = _loss_scalar(total / denom, dtype)
    return (loss, LinearGrads(d_x, d_w, d_b)) if return_grad else loss
