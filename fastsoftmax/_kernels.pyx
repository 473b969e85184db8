# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Binding between the Python layer and the C kernels in src/.

Three layers, each doing one thing:
  * src/*.c      the kernels: pure C functions over pointers, a batch shape and
                 element strides (declared in src/fastsoftmax.h);
  * this file    checks that each buffer is what the C function needs (dtype,
                 dimensions, matching shapes, writable, element-aligned strides),
                 converts strides to elements and calls C with the GIL released.
                 It holds no numerical or API logic;
  * functional.py  validates user arguments, moves the class axis, handles
                 dtypes, targets and reductions, and documents the API.

Every array argument here is already laid out as (n_outer, n_inner, n_classes)
(per-row arrays as (n_outer * n_inner,)), made so by functional.py.
"""

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int64_t, uint64_t
from numpy.random cimport bitgen_t

cnp.import_array()


cdef extern from "fastsoftmax.h" nogil:
    ctypedef struct fs_batch:
        int64_t n_outer
        int64_t n_inner
        int64_t n_classes

    ctypedef struct fs_strides:
        int64_t outer
        int64_t inner
        int64_t cls

    ctypedef struct fs_ce_args:
        const int64_t *target
        int64_t ignore_index
        const void *prob
        fs_strides prob_strides
        const void *weight
        double label_smoothing
        double grad_scale
        double z_loss
        int targets_checked

    int FS_OK
    int FS_ENOMEM
    int FS_EINDEX
    int FS_ISA_COUNT

    int FS_EDTYPE
    int FS_DTYPE_F32
    int FS_DTYPE_F64
    int FS_DTYPE_F16
    ctypedef struct fs_bce_args:
        const void *target
        fs_strides target_strides
        const void *weight
        fs_strides weight_strides
        const void *pos_weight
        double grad_scale


    # the kernels of src/kernels.def by dtype code (fs_<op>(dtype, ...) calls fs_<op>_<dtype>)
    int fs_softmax(int dtype, const fs_batch *b, const void *x, const fs_strides *xs, void *y, const fs_strides *ys)
    int fs_log_softmax(int dtype, const fs_batch *b, const void *x, const fs_strides *xs, void *y,
                       const fs_strides *ys)
    int fs_logsumexp(int dtype, const fs_batch *b, const void *x, const fs_strides *xs, void *out)
    int fs_cross_entropy(int dtype, const fs_batch *b, const void *x, const fs_strides *xs, const fs_ce_args *a,
                         double *loss_rows, double *loss_sum, void *grad, const fs_strides *gs)
    int fs_sigmoid(int dtype, const fs_batch *b, const void *x, const fs_strides *xs, void *y, const fs_strides *ys)
    int fs_bce_logits(int dtype, const fs_batch *b, const void *x, const fs_strides *xs, const fs_bce_args *a,
                      double *row_sums, double *loss_sum, void *loss, const fs_strides *ls, void *grad,
                      const fs_strides *gs)
    int fs_softmax_backward(int dtype, const fs_batch *b, const void *p, const fs_strides *ps, const void *g,
                            const fs_strides *gs, void *gx, const fs_strides *gxs)
    int fs_log_softmax_backward(int dtype, const fs_batch *b, const void *lp, const fs_strides *lps, const void *g,
                                const fs_strides *gs, void *gx, const fs_strides *gxs)
    ctypedef struct fs_sampled_args:
        int64_t n_rows
        int64_t num_true
        int64_t num_sampled
        int64_t dim
        int64_t ld_x
        const int64_t *labels
        const int64_t *sampled
        const double *logq_true
        int remove_hits
    ctypedef struct fs_id_rows:
        int64_t n_ids
        int64_t dim
        int64_t num_sampled
        int64_t num_entries
        int64_t num_true
        int64_t ld_prod
        int64_t ld_x
        const int64_t *pos_sampled
        const int64_t *true_order
        const int64_t *pos_true_sorted

    int fs_gather_rows(int dtype, const void *src, int64_t ld, int64_t dim, const int64_t *idx, int64_t m, void *out,
                       int64_t ldo)
    int fs_sampled_logits(int dtype, const fs_sampled_args *a, const void *x, const void *w_true, const void *b_true,
                          void *logits)
    int fs_scatter_add_rows(int dtype, void *out, int64_t dim, const int64_t *pos, int64_t m, const void *src,
                            const int64_t *src_row, const void *scale)
    int fs_sampled_id_rows(int dtype, const fs_id_rows *a, const void *prod, const void *x, const void *scale,
                           void *out, void *out_b)
    int fs_vexp(int dtype, const void *x, void *y, int64_t n)
    int fs_vexpneg(int dtype, const void *x, void *y, int64_t n)
    int fs_vlog(int dtype, const void *x, void *y, int64_t n)

    int64_t fs_check_targets(const int64_t *target, int64_t n, int64_t n_classes, int64_t ignore_index,
                             const double *weight, int64_t *n_valid, double *weight_sum)

    void fs_set_num_threads(int n)
    int fs_get_num_threads()
    int fs_threads_enabled()
    void fs_set_spin_ns(int64_t ns)
    void fs_limit_helpers(int n)
    void fs_set_tuning(int64_t min_work_per_thread, int64_t split_min_classes)
    void fs_set_stream_min_bytes(int64_t bytes)

    const char *fs_isa_name(int isa)
    int fs_isa_compiled(int isa)
    int fs_isa_supported(int isa)
    int fs_best_isa()
    int fs_active_isa()
    int fs_select_isa(int isa)


# ---------------------------------------------------------------- buffer checks

cdef int _float_kind(cnp.ndarray a, bint half=True) except -1:
    """The dtype code of the kernels (FS_DTYPE_F32, _F64, and _F16 when the kernel has one)."""
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT32:
        return FS_DTYPE_F32
    if t == cnp.NPY_FLOAT64:
        return FS_DTYPE_F64
    if half and t == cnp.NPY_FLOAT16:
        return FS_DTYPE_F16
    raise TypeError(f"kernel buffers must be float32 or float64{' or float16' if half else ''}, got {a.dtype}")


cdef int _compute_type(int typenum):
    """Type of the options and losses of a kernel on typenum data: float32 for float16."""
    return cnp.NPY_FLOAT32 if typenum == cnp.NPY_FLOAT16 else typenum


cdef fs_strides _rows3(cnp.ndarray a, fs_batch *b, bint writable) except *:
    """Check a 3-D (outer, inner, classes) array and return its strides in elements."""
    cdef fs_strides s
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(a)
    if cnp.PyArray_NDIM(a) != 3:
        raise ValueError("kernel buffers must be 3-D (outer, inner, classes)")
    if (a.shape[0] != b.n_outer or a.shape[1] != b.n_inner or a.shape[2] != b.n_classes):
        raise ValueError("kernel buffers must have the same shape")
    if writable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError("output buffer is read-only")
    if not cnp.PyArray_ISALIGNED(a):
        raise ValueError("kernel buffers must be aligned")
    for k in range(3):
        if a.strides[k] % item:
            raise ValueError("kernel buffer strides must be multiples of the item size")
    s.outer = a.strides[0] // item
    s.inner = a.strides[1] // item
    s.cls = a.strides[2] // item
    return s


cdef fs_batch _batch(cnp.ndarray a) except *:
    cdef fs_batch b
    if cnp.PyArray_NDIM(a) != 3:
        raise ValueError("kernel buffers must be 3-D (outer, inner, classes)")
    b.n_outer = a.shape[0]
    b.n_inner = a.shape[1]
    b.n_classes = a.shape[2]
    return b


cdef void _check_row_vector(cnp.ndarray a, int64_t n, int typenum, str what) except *:
    if (cnp.PyArray_NDIM(a) != 1 or a.shape[0] != n or cnp.PyArray_TYPE(a) != typenum
            or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a)):
        raise ValueError(f"{what} must be an aligned contiguous 1-D array of {n} elements and type {typenum}")


cdef void _raise(int status) except *:
    if status == FS_ENOMEM:
        raise MemoryError("fastsoftmax: could not allocate a scratch row")
    if status == FS_EINDEX:
        raise IndexError("fastsoftmax: target index out of range")
    if status == FS_EDTYPE:
        raise TypeError("fastsoftmax: no kernel for this dtype")
    if status != FS_OK:
        raise RuntimeError(f"fastsoftmax: kernel failed with status {status}")


# ---------------------------------------------------------------- kernels

def softmax(cnp.ndarray x, cnp.ndarray y, bint log):
    """y[o, i, :] = (log_)softmax(x[o, i, :]); y may be x."""
    cdef fs_batch b = _batch(x)
    cdef int kind = _float_kind(x)
    if cnp.PyArray_TYPE(y) != cnp.PyArray_TYPE(x):
        raise TypeError("input and output dtypes differ")
    cdef fs_strides xs = _rows3(x, &b, False)
    cdef fs_strides ys = _rows3(y, &b, True)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    cdef int status
    with nogil:
        if log:
            status = fs_log_softmax(kind, &b, xp, &xs, yp, &ys)
        else:
            status = fs_softmax(kind, &b, xp, &xs, yp, &ys)
    _raise(status)


def logsumexp(cnp.ndarray x, cnp.ndarray out):
    """out[o * n_inner + i] = log(sum(exp(x[o, i, :])))."""
    cdef fs_batch b = _batch(x)
    cdef int kind = _float_kind(x)
    cdef fs_strides xs = _rows3(x, &b, False)
    _check_row_vector(out, b.n_outer * b.n_inner, cnp.PyArray_TYPE(x), "out")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("output buffer is read-only")
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *op = cnp.PyArray_DATA(out)
    cdef int status
    with nogil:
        status = fs_logsumexp(kind, &b, xp, &xs, op)
    _raise(status)


cdef class CrossEntropyOptions:
    """The options of one fused cross-entropy call: the fields of fs_ce_args.

    target: int64 (N,) or None; prob: the logits' shape (float32 for float16 logits) or
    None; weight: (C,) of the logits' dtype or None; targets_checked: check_targets found
    every target a class, none ignored (only then may it be True).
    """
    cdef readonly object target, prob, weight
    cdef readonly int64_t ignore_index
    cdef readonly double label_smoothing, grad_scale, z_loss
    cdef readonly bint targets_checked

    def __init__(self, *, target=None, prob=None, weight=None, int64_t ignore_index=-100,
                 double label_smoothing=0.0, double grad_scale=1.0, double z_loss=0.0, bint targets_checked=False):
        self.target = target
        self.prob = prob
        self.weight = weight
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.grad_scale = grad_scale
        self.z_loss = z_loss
        self.targets_checked = targets_checked


def cross_entropy(cnp.ndarray x, CrossEntropyOptions options, loss_rows, grad):
    """Fused cross-entropy; returns the sum of the per-row losses.

    loss_rows: float64 (N,), receives the per-row losses, or None (the sum only); grad: like x
    (writable) or None.
    """
    cdef fs_batch b = _batch(x)
    cdef int kind = _float_kind(x)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef int ctype = _compute_type(typenum)
    cdef int64_t n = b.n_outer * b.n_inner
    cdef fs_strides xs = _rows3(x, &b, False)
    cdef fs_strides gs = xs
    cdef fs_ce_args a
    cdef double *lr = NULL
    cdef void *gp = NULL
    cdef double total = 0.0
    cdef int status
    target, prob, weight = options.target, options.prob, options.weight
    a.target = NULL
    a.ignore_index = options.ignore_index
    a.prob = NULL
    a.prob_strides = xs
    a.weight = NULL
    a.label_smoothing = options.label_smoothing
    a.grad_scale = options.grad_scale
    a.z_loss = options.z_loss
    a.targets_checked = options.targets_checked
    if (target is None) == (prob is None):
        raise ValueError("exactly one of target and prob must be given")
    if target is not None:
        _check_row_vector(target, n, cnp.NPY_INT64, "target")
        a.target = <const int64_t *>cnp.PyArray_DATA(target)
    else:
        if cnp.PyArray_TYPE(prob) != ctype:
            raise TypeError("prob must have the logits' dtype (float32 for float16 logits)")
        a.prob_strides = _rows3(prob, &b, False)
        a.prob = cnp.PyArray_DATA(prob)
    if weight is not None:
        _check_row_vector(weight, b.n_classes, ctype, "weight")
        a.weight = cnp.PyArray_DATA(weight)
    if loss_rows is not None:
        _check_row_vector(loss_rows, n, cnp.NPY_FLOAT64, "loss_rows")
        if not cnp.PyArray_ISWRITEABLE(loss_rows):
            raise ValueError("loss_rows is read-only")
        lr = <double *>cnp.PyArray_DATA(loss_rows)
    if grad is not None:
        if cnp.PyArray_TYPE(grad) != typenum:
            raise TypeError("grad must have the logits' dtype")
        gs = _rows3(grad, &b, True)
        gp = cnp.PyArray_DATA(grad)
    cdef void *xp = cnp.PyArray_DATA(x)
    with nogil:
        status = fs_cross_entropy(kind, &b, xp, &xs, &a, lr, &total, gp, &gs)
    _raise(status)
    return total


def check_targets(cnp.ndarray target, int64_t n_classes, int64_t ignore_index, weight):
    """(first bad position or -1, number of targets not ignored, sum of their weights).

    target: int64 (N,); weight: float64 (n_classes,) or None.
    """
    cdef int64_t n = cnp.PyArray_SIZE(target)
    _check_row_vector(target, n, cnp.NPY_INT64, "target")
    cdef const int64_t *tp = <const int64_t *>cnp.PyArray_DATA(target)
    cdef const double *wp = NULL
    if weight is not None:
        _check_row_vector(weight, n_classes, cnp.NPY_FLOAT64, "weight")
        wp = <const double *>cnp.PyArray_DATA(weight)
    cdef int64_t bad, n_valid = 0
    cdef double wsum = 0.0
    with nogil:
        bad = fs_check_targets(tp, n, n_classes, ignore_index, wp, &n_valid, &wsum)
    return bad, n_valid, wsum


def sigmoid(cnp.ndarray x, cnp.ndarray y):
    """y[o, i, :] = sigmoid(x[o, i, :]); y may be x."""
    cdef fs_batch b = _batch(x)
    cdef int kind = _float_kind(x)
    if cnp.PyArray_TYPE(y) != cnp.PyArray_TYPE(x):
        raise TypeError("input and output dtypes differ")
    cdef fs_strides xs = _rows3(x, &b, False)
    cdef fs_strides ys = _rows3(y, &b, True)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    cdef int status
    with nogil:
        status = fs_sigmoid(kind, &b, xp, &xs, yp, &ys)
    _raise(status)


def softmax_backward(cnp.ndarray p, cnp.ndarray g, cnp.ndarray gx, bint log):
    """gx = VJP of (log_)softmax at p (probabilities or log-probabilities) with g; gx may be p or g."""
    cdef fs_batch b = _batch(p)
    cdef int kind = _float_kind(p, False)
    if cnp.PyArray_TYPE(g) != cnp.PyArray_TYPE(p) or cnp.PyArray_TYPE(gx) != cnp.PyArray_TYPE(p):
        raise TypeError("input and output dtypes differ")
    cdef fs_strides ps = _rows3(p, &b, False)
    cdef fs_strides gs = _rows3(g, &b, False)
    cdef fs_strides gxs = _rows3(gx, &b, True)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *gp = cnp.PyArray_DATA(g)
    cdef void *op = cnp.PyArray_DATA(gx)
    cdef int status
    with nogil:
        if log:
            status = fs_log_softmax_backward(kind, &b, pp, &ps, gp, &gs, op, &gxs)
        else:
            status = fs_softmax_backward(kind, &b, pp, &ps, gp, &gs, op, &gxs)
    _raise(status)


def bce_logits(cnp.ndarray x, cnp.ndarray target, weight, pos_weight, double grad_scale, row_sums, loss, grad):
    """Fused binary cross-entropy with logits; returns the sum of the losses.

    target: like x; weight: like x (broadcast strides allowed) or None;
    pos_weight: (C,) contiguous or None; these and loss have x's dtype, float32
    for float16 x; row_sums: float64 (N,), receives the per-row sums; loss,
    grad: like x (writable) or None.
    """
    cdef fs_batch b = _batch(x)
    cdef int kind = _float_kind(x)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef int ctype = _compute_type(typenum)
    cdef int64_t n = b.n_outer * b.n_inner
    cdef fs_strides xs = _rows3(x, &b, False)
    cdef fs_strides ls = xs
    cdef fs_strides gs = xs
    cdef fs_bce_args a
    cdef void *lp = NULL
    cdef void *gp = NULL
    cdef double total = 0.0
    cdef int status
    if cnp.PyArray_TYPE(target) != ctype:
        raise TypeError("target must have the logits' dtype (float32 for float16 logits)")
    a.target_strides = _rows3(target, &b, False)
    a.target = cnp.PyArray_DATA(target)
    a.weight = NULL
    a.weight_strides = xs
    a.pos_weight = NULL
    a.grad_scale = grad_scale
    if weight is not None:
        if cnp.PyArray_TYPE(weight) != ctype:
            raise TypeError("weight must have the logits' dtype (float32 for float16 logits)")
        a.weight_strides = _rows3(weight, &b, False)
        a.weight = cnp.PyArray_DATA(weight)
    if pos_weight is not None:
        _check_row_vector(pos_weight, b.n_classes, ctype, "pos_weight")
        a.pos_weight = cnp.PyArray_DATA(pos_weight)
    _check_row_vector(row_sums, n, cnp.NPY_FLOAT64, "row_sums")
    if not cnp.PyArray_ISWRITEABLE(row_sums):
        raise ValueError("row_sums is read-only")
    cdef double *rs = <double *>cnp.PyArray_DATA(row_sums)
    if loss is not None:
        if cnp.PyArray_TYPE(loss) != ctype:
            raise TypeError("loss must have the logits' dtype (float32 for float16 logits)")
        ls = _rows3(loss, &b, True)
        lp = cnp.PyArray_DATA(loss)
    if grad is not None:
        if cnp.PyArray_TYPE(grad) != typenum:
            raise TypeError("grad must have the logits' dtype")
        gs = _rows3(grad, &b, True)
        gp = cnp.PyArray_DATA(grad)
    cdef void *xp = cnp.PyArray_DATA(x)
    with nogil:
        status = fs_bce_logits(kind, &b, xp, &xs, &a, rs, &total, lp, &ls, gp, &gs)
    _raise(status)
    return total


def vexp(cnp.ndarray x, cnp.ndarray y):
    """y = exp(x) with the active path's vectorized exp (contiguous 1-D arrays)."""
    _elementwise(x, y, 0)


def vlog(cnp.ndarray x, cnp.ndarray y):
    """y = log(x) with the active path's vectorized log (contiguous 1-D arrays)."""
    _elementwise(x, y, 1)


def vexpneg(cnp.ndarray x, cnp.ndarray y):
    """y = exp(x) with the softmax kernels' exp for x <= 0 (contiguous 1-D arrays)."""
    _elementwise(x, y, 2)


cdef _elementwise(cnp.ndarray x, cnp.ndarray y, int func):
    cdef int kind = _float_kind(x, False)
    cdef int64_t n = cnp.PyArray_SIZE(x)
    _check_row_vector(x, n, cnp.PyArray_TYPE(x), "x")
    _check_row_vector(y, n, cnp.PyArray_TYPE(x), "y")
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    if not cnp.PyArray_ISWRITEABLE(y):
        raise ValueError("output buffer is read-only")
    cdef int status
    with nogil:
        if func == 0:
            status = fs_vexp(kind, xp, yp, n)
        elif func == 1:
            status = fs_vlog(kind, xp, yp, n)
        else:
            status = fs_vexpneg(kind, xp, yp, n)
    _raise(status)


# ---------------------------------------------------------------- sampled losses

cdef void _check_matrix(cnp.ndarray a, int64_t rows, int64_t cols, int typenum, str what) except *:
    """a C-contiguous, aligned (rows, cols) array of typenum"""
    if (cnp.PyArray_NDIM(a) != 2 or a.shape[0] != rows or a.shape[1] != cols or cnp.PyArray_TYPE(a) != typenum
            or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a)):
        raise ValueError(f"{what} must be an aligned C-contiguous ({rows}, {cols}) array of type {typenum}")


cdef const void *_optional(a, int64_t n, int typenum, str what) except? NULL:
    if a is None:
        return NULL
    _check_row_vector(a, n, typenum, what)
    return cnp.PyArray_DATA(a)


cdef int64_t _row_stride(cnp.ndarray a, int64_t rows, int64_t cols, int typenum, str what) except -1:
    """The row stride, in elements, of an aligned (rows, >= cols) array of typenum with unit column
    stride, of which the first cols columns are used.  The stride of an axis of length 0 or 1 is
    never used, whatever it is (NumPy gives empty arrays zero strides)."""
    if cnp.PyArray_NDIM(a) != 2 or a.shape[0] != rows or a.shape[1] < cols or cnp.PyArray_TYPE(a) != typenum:
        raise ValueError(f"{what} must be a ({rows}, >= {cols}) array of type {typenum}")
    if rows == 0 or cols == 0:
        return a.shape[1]  # nothing is read or written
    if (not cnp.PyArray_ISALIGNED(a) or (cols > 1 and a.strides[1] != a.itemsize)
            or (rows > 1 and (a.strides[0] % a.itemsize or a.strides[0] // a.itemsize < a.shape[1]))):
        raise ValueError(f"{what} must be an aligned ({rows}, >= {cols}) array of type {typenum} with unit "
                         "column stride and nonnegative rows that do not overlap")
    return a.strides[0] // a.itemsize if rows > 1 else a.shape[1]


def gather_rows(cnp.ndarray src, cnp.ndarray idx, cnp.ndarray out):
    """The first D columns of out[r] = src[idx[r]]: src (C, D) with unit column stride, idx int64 (m,)
    in [0, C), out (m, >= D) with unit column stride."""
    cdef int kind = _float_kind(src, False)
    if cnp.PyArray_NDIM(src) != 2:
        raise ValueError("src must be 2-D")
    cdef int64_t m = cnp.PyArray_SIZE(idx), dim = src.shape[1]
    cdef int64_t ld = _row_stride(src, src.shape[0], dim, cnp.PyArray_TYPE(src), "src")
    _check_row_vector(idx, m, cnp.NPY_INT64, "idx")
    cdef int64_t ldo = _row_stride(out, m, dim, cnp.PyArray_TYPE(src), "out")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("output buffer is read-only")
    cdef const void *sp = cnp.PyArray_DATA(src)
    cdef const int64_t *ip = <const int64_t *>cnp.PyArray_DATA(idx)
    cdef void *op = cnp.PyArray_DATA(out)
    cdef int status
    with nogil:
        status = fs_gather_rows(kind, sp, ld, dim, ip, m, op, ldo)
    _raise(status)


def sampled_logits(cnp.ndarray logits, cnp.ndarray x, cnp.ndarray w_true, b_true, cnp.ndarray labels,
                   cnp.ndarray sampled, logq_true, bint remove_hits):
    """The sampled losses' true logits and accidental hits in place (see fs_sampled_args): logits
    (N, num_true + S) with the sampled logits in its last S columns; x (N, >= D) with unit column
    stride, of which the first D columns are the inputs; w_true (N * num_true, D); labels int64
    (N, num_true); sampled int64 (S,) in increasing order; b_true (N * num_true,) and logq_true
    float64 (N * num_true,) or None."""
    cdef int kind = _float_kind(x, False)
    cdef int t = cnp.PyArray_TYPE(x)
    cdef fs_sampled_args a
    a.n_rows = x.shape[0]
    a.dim = w_true.shape[1]
    a.num_sampled = cnp.PyArray_SIZE(sampled)
    a.num_true = labels.shape[1]
    a.ld_x = _row_stride(x, a.n_rows, a.dim, t, "x")
    _check_matrix(labels, a.n_rows, a.num_true, cnp.NPY_INT64, "labels")
    _check_matrix(w_true, a.n_rows * a.num_true, a.dim, t, "w_true")
    _check_matrix(logits, a.n_rows, a.num_true + a.num_sampled, t, "logits")
    _check_row_vector(sampled, a.num_sampled, cnp.NPY_INT64, "sampled")
    if not cnp.PyArray_ISWRITEABLE(logits):
        raise ValueError("output buffer is read-only")
    cdef const void *btp = _optional(b_true, a.n_rows * a.num_true, t, "b_true")
    a.logq_true = <const double *>_optional(logq_true, a.n_rows * a.num_true, cnp.NPY_FLOAT64, "logq_true")
    a.labels = <const int64_t *>cnp.PyArray_DATA(labels)
    a.sampled = <const int64_t *>cnp.PyArray_DATA(sampled)
    a.remove_hits = remove_hits
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef const void *wp = cnp.PyArray_DATA(w_true)
    cdef void *lp = cnp.PyArray_DATA(logits)
    cdef int status
    with nogil:
        status = fs_sampled_logits(kind, &a, xp, wp, btp, lp)
    _raise(status)


def sampled_id_rows(cnp.ndarray out, out_b, cnp.ndarray prod, cnp.ndarray pos_sampled, cnp.ndarray true_order,
                    cnp.ndarray pos_true_sorted, cnp.ndarray x, cnp.ndarray scale, int64_t num_true):
    """The weights' gradient rows of the unique ids, each written once (see fs_id_rows): out
    (n_ids, D); out_b (n_ids,) or None, then prod's column D holds the biases' gradient; prod
    (S, >= D, or >= D + 1 with out_b) with unit column stride; pos_sampled int64 (S,)
    nondecreasing in [0, n_ids); true_order int64 (E,) a permutation of 0 .. E - 1 with
    pos_true_sorted (E,) nondecreasing in [0, n_ids); x (E / num_true, >= D); scale (E,)."""
    cdef int kind = _float_kind(out, False)
    cdef int t = cnp.PyArray_TYPE(out)
    cdef fs_id_rows a
    a.n_ids = out.shape[0]
    a.dim = out.shape[1]
    a.num_sampled = cnp.PyArray_SIZE(pos_sampled)
    a.num_entries = cnp.PyArray_SIZE(true_order)
    a.num_true = num_true
    _check_matrix(out, a.n_ids, a.dim, t, "out")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("output buffer is read-only")
    cdef void *bp = NULL
    if out_b is not None:
        _check_row_vector(out_b, a.n_ids, t, "out_b")
        if not cnp.PyArray_ISWRITEABLE(out_b):
            raise ValueError("output buffer is read-only")
        bp = cnp.PyArray_DATA(out_b)
    if num_true < 1 or a.num_entries % num_true:
        raise ValueError("the true entries must be num_true per row")
    a.ld_prod = _row_stride(prod, a.num_sampled, a.dim + (out_b is not None), t, "prod")
    a.ld_x = _row_stride(x, a.num_entries // num_true, a.dim, t, "x")
    _check_row_vector(pos_sampled, a.num_sampled, cnp.NPY_INT64, "pos_sampled")
    _check_row_vector(true_order, a.num_entries, cnp.NPY_INT64, "true_order")
    _check_row_vector(pos_true_sorted, a.num_entries, cnp.NPY_INT64, "pos_true_sorted")
    _check_row_vector(scale, a.num_entries, t, "scale")
    a.pos_sampled = <const int64_t *>cnp.PyArray_DATA(pos_sampled)
    a.true_order = <const int64_t *>cnp.PyArray_DATA(true_order)
    a.pos_true_sorted = <const int64_t *>cnp.PyArray_DATA(pos_true_sorted)
    cdef const void *pp = cnp.PyArray_DATA(prod)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef const void *cp = cnp.PyArray_DATA(scale)
    cdef void *op = cnp.PyArray_DATA(out)
    cdef int status
    with nogil:
        status = fs_sampled_id_rows(kind, &a, pp, xp, cp, op, bp)
    _raise(status)


def scatter_add_rows(cnp.ndarray out, cnp.ndarray pos, cnp.ndarray src, src_row, scale):
    """out[pos[r]] += scale[r] * src[src_row[r]] in row order: out (K, D), pos int64 (m,) in [0, K),
    src (R, D), src_row int64 (m,) in [0, R) or None (r), scale (m,) or None (1)."""
    cdef int kind = _float_kind(out, False)
    cdef int t = cnp.PyArray_TYPE(out)
    cdef int64_t m = cnp.PyArray_SIZE(pos), dim = out.shape[1]
    _check_matrix(out, out.shape[0], dim, t, "out")
    _check_matrix(src, src.shape[0], dim, t, "src")
    _check_row_vector(pos, m, cnp.NPY_INT64, "pos")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("output buffer is read-only")
    cdef const int64_t *rp = <const int64_t *>_optional(src_row, m, cnp.NPY_INT64, "src_row")
    cdef const void *cp = _optional(scale, m, t, "scale")
    cdef void *op = cnp.PyArray_DATA(out)
    cdef const int64_t *pp = <const int64_t *>cnp.PyArray_DATA(pos)
    cdef const void *sp = cnp.PyArray_DATA(src)
    cdef int status
    with nogil:
        status = fs_scatter_add_rows(kind, op, dim, pp, m, sp, rp, cp)
    _raise(status)


# ---------------------------------------------------------------- candidate samplers

cdef extern from "sampling/samplers.h" nogil:
    ctypedef struct fs_rng:
        void *state
        uint64_t (*next_uint64)(void *state) noexcept nogil
        double (*next_double)(void *state) noexcept nogil

    ctypedef struct fs_sampler:
        int kind
        int64_t range_max
        const double *prob
        const double *alias_q
        const int64_t *alias_j

    int fs_sample_candidates(const fs_sampler *s, fs_rng *rng, int64_t num_sampled, int unique, int64_t *out,
                             int64_t *num_tries)
    void fs_expected_counts(const fs_sampler *s, const int64_t *classes, int64_t n, int64_t num_sampled,
                            int64_t num_tries, double *out)
    int fs_alias_build(const double *w, int64_t n, double *prob, double *q, int64_t *alias)


cdef fs_sampler _sampler(int kind, int64_t range_max, table) except *:
    """table: None, or (prob, q, alias) of alias_build for the unigram sampler."""
    cdef fs_sampler s
    s.kind = kind
    s.range_max = range_max
    s.prob = s.alias_q = NULL
    s.alias_j = NULL
    if table is not None:
        prob, q, alias = table
        _check_row_vector(prob, range_max, cnp.NPY_FLOAT64, "prob")
        _check_row_vector(q, range_max, cnp.NPY_FLOAT64, "q")
        _check_row_vector(alias, range_max, cnp.NPY_INT64, "alias")
        s.prob = <const double *>cnp.PyArray_DATA(prob)
        s.alias_q = <const double *>cnp.PyArray_DATA(q)
        s.alias_j = <const int64_t *>cnp.PyArray_DATA(alias)
    elif kind == 2:
        raise ValueError("the unigram sampler needs its table")
    return s


def sample_candidates(int kind, int64_t range_max, table, bit_generator, bint unique, cnp.ndarray out):
    """Fills out (int64 (S,)) with candidates drawn from bit_generator (under its lock);
    returns the number of tries.  kind: 0 uniform, 1 log-uniform, 2 unigram (table)."""
    cdef fs_sampler s = _sampler(kind, range_max, table)
    cdef int64_t n = cnp.PyArray_SIZE(out)
    _check_row_vector(out, n, cnp.NPY_INT64, "out")
    cdef bitgen_t *bg = <bitgen_t *>PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    cdef fs_rng r
    r.state = bg.state
    r.next_uint64 = bg.next_uint64
    r.next_double = bg.next_double
    cdef int64_t *op = <int64_t *>cnp.PyArray_DATA(out)
    cdef int64_t tries = 0
    cdef int status
    with bit_generator.lock, nogil:
        status = fs_sample_candidates(&s, &r, n, unique, op, &tries)
    _raise(status)
    return tries


def expected_counts(int kind, int64_t range_max, table, cnp.ndarray classes, int64_t num_sampled,
                    int64_t num_tries, cnp.ndarray out):
    """out[i] = the expected count of classes[i] (int64, in range) among the candidates."""
    cdef fs_sampler s = _sampler(kind, range_max, table)
    cdef int64_t n = cnp.PyArray_SIZE(classes)
    _check_row_vector(classes, n, cnp.NPY_INT64, "classes")
    _check_row_vector(out, n, cnp.NPY_FLOAT64, "out")
    cdef const int64_t *cp = <const int64_t *>cnp.PyArray_DATA(classes)
    cdef double *op = <double *>cnp.PyArray_DATA(out)
    with nogil:
        fs_expected_counts(&s, cp, n, num_sampled, num_tries, op)


def alias_build(cnp.ndarray w, cnp.ndarray prob, cnp.ndarray q, cnp.ndarray alias):
    """Walker's alias table of the weights w (float64 (n,), >= 0, finite, positive sum)."""
    cdef int64_t n = cnp.PyArray_SIZE(w)
    _check_row_vector(w, n, cnp.NPY_FLOAT64, "w")
    _check_row_vector(prob, n, cnp.NPY_FLOAT64, "prob")
    _check_row_vector(q, n, cnp.NPY_FLOAT64, "q")
    _check_row_vector(alias, n, cnp.NPY_INT64, "alias")
    cdef int status
    with nogil:
        status = fs_alias_build(<const double *>cnp.PyArray_DATA(w), n, <double *>cnp.PyArray_DATA(prob),
                                <double *>cnp.PyArray_DATA(q), <int64_t *>cnp.PyArray_DATA(alias))
    _raise(status)


# ---------------------------------------------------------------- threads and dispatch

def set_num_threads(int n):
    fs_set_num_threads(n)


def get_num_threads():
    return fs_get_num_threads()


def threads_enabled():
    return bool(fs_threads_enabled())


def set_spin_ns(int64_t ns):
    """How long idle helper threads spin before they sleep (ns; < 0: the default)."""
    fs_set_spin_ns(ns)


def limit_helpers(int n):
    """For the tests: creating a helper thread fails after n helpers (< 0: no limit)."""
    fs_limit_helpers(n)


def set_tuning(int64_t min_work_per_thread, int64_t split_min_classes):
    """Threading thresholds (0 restores the defaults); for the tests."""
    fs_set_tuning(min_work_per_thread, split_min_classes)


def set_stream_min_bytes(int64_t n):
    """Outputs of n bytes and more are written with streaming stores (0 restores the default);
    for the tests."""
    fs_set_stream_min_bytes(n)


def isa_names():
    """Names of the instruction-set paths, lowest first."""
    return [fs_isa_name(i).decode() for i in range(FS_ISA_COUNT)]


def isa_compiled(int isa):
    return bool(fs_isa_compiled(isa))


def isa_supported(int isa):
    return bool(fs_isa_supported(isa))


def best_isa():
    return fs_best_isa()


def active_isa():
    return fs_active_isa()


def select_isa(int isa):
    if fs_select_isa(isa) != 0:
        raise ValueError(f"instruction set {isa} is not supported on this CPU or not compiled")
