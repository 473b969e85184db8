"""The case generator: one call of a public function (or a loss object's forward and
backward) with random shapes, dtypes, layouts, values and options, written as Python
source, with what the call must do.

A :class:`Case` is source text in three parts, run in a fresh namespace each time: ``setup``
builds the arguments (with :mod:`.helpers`), ``call`` calls fastsoftmax and sets ``result``,
and ``ref_value`` / ``ref_errors`` call :mod:`fastsoftmax.reference` on the same arguments.
The generator knows which argument it made bad, so a case also says which exceptions the
call must raise (``expect``), or that any outcome is acceptable (``unsure``: the README
does not say), or, with neither, that the call must succeed.
"""

from dataclasses import dataclass, field

FLOATS = ("float32", "float64", "float16")
BAD_DTYPES = ("int32", "int64", "uint8", "bool", "object", "complex64", "complex128", "longdouble")
NUMBER_DTYPES = ("int32", "int64", "uint8", "bool")  # softmax, log_softmax, logsumexp: in float64
INDEX_DTYPES = ("int64", "int32", "uint8", "int8", "int16", "uint64", "uint32")
INT_RANGE = {"int64": (-2**63, 2**63 - 1), "int32": (-2**31, 2**31 - 1), "int16": (-2**15, 2**15 - 1),
             "int8": (-128, 127), "uint8": (0, 255), "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1)}

# value kinds (helpers.values) of logits, with their weights; the finite ones
LOGIT_KINDS = (("normal", 40), ("large", 6), ("wide", 8), ("huge", 7), ("tiny", 6), ("subnormal", 4),
               ("specials", 13), ("masked", 9), ("constant", 5))
FINITE_KINDS = {"normal", "large", "wide", "huge", "tiny", "subnormal", "constant", "unit", "positive"}
# sizes: (lo, hi) ranges of a class axis and of a batch axis, with weights
CLASS_SIZES = (((2, 17), 35), ((18, 70), 22), ((1, 1), 8), ((71, 300), 15), ((0, 0), 3), ((301, 2100), 10),
               ((2101, 5000), 7))
BATCH_SIZES = (((2, 9), 55), ((1, 1), 15), ((10, 40), 20), ((0, 0), 4), ((41, 300), 6))
MAX_ELEMENTS = 30_000
REDUCTIONS = ("'mean'", "'sum'", "'none'")
BAD_REDUCTIONS = ("'avg'", "'MEAN'", "''", "None", "1")
HUGE_INTS = ("2**70", "-2**70", "2**63", "2**64", "np.uint64(2**64 - 1)")
NOT_INTS = ("1.5", "'3'", "None", "np.float64(2.0)", "[1]")
NOT_REALS = ("'0.1'", "None", "True", "1j", "[0.1]")


@dataclass
class Case:
    """One fuzz case: source text and what its call must do."""

    family: str
    setup: list
    call: list
    ref_value: list = None      # reference statements setting ``result``, for the value comparison
    ref_errors: list = None     # the call itself on the reference (its error rules), or None
    oracle: str = None          # the comparison of oracle.py for successful calls in the domain
    params: dict = field(default_factory=dict)  # its arguments: expressions in the case's namespace
    outputs: tuple = ()         # names of the arrays the call may write
    expect: list = field(default_factory=list)  # [(exception types, condition or None)]
    unsure: list = field(default_factory=list)  # [(exception types, condition)]: may raise them, or not
    domain: bool = True         # the inputs are in the documented domain: compare with the reference
    deterministic: bool = True  # the same result on every run (no fresh entropy)
    big_alloc: bool = False     # MemoryError is acceptable (a size no machine holds)
    tuning: tuple = (1, 0)      # _kernels.set_tuning during the call (small problems threaded)


def call(fn, args=(), kwargs=()):
    """Source of a call: ``fn(a, b, k=v)``; keyword values None (omitted) are dropped."""
    parts = list(args) + [f"{k}={v}" for k, v in kwargs if v is not None]
    return f"{fn}({', '.join(parts)})"


class Builder:
    """The parts of a case being generated, and the generator's shared choices."""

    def __init__(self, src, family, huge=True):
        self.src = src
        self.family = family
        self.huge = huge  # sizes no machine can allocate (not under AddressSanitizer, which aborts)
        self.setup = []
        self.expect = []
        self.unsure = []
        self.domain = True
        self.deterministic = True
        self.big_alloc = False

    # ---- plumbing
    def let(self, name, expr):
        self.setup.append(f"{name} = {expr}")
        return name

    def bad(self, *types, when=None):
        """The case has a bad argument: the call must raise one of ``types`` (if ``when``,
        an expression in the case's namespace, is true)."""
        self.expect.append((types, when))

    def either(self, *types, when=None):
        """The README does not say whether the call raises (if ``when`` is true): returning and
        raising one of ``types`` are both acceptable."""
        self.unsure.append((types, when))

    def pick(self, options, weights=None):
        return self.src.pick(options, weights)

    def chance(self, p):
        return self.src.chance(p)

    def integer(self, lo, hi):
        return self.src.integer(lo, hi)

    def case(self, **kw):
        return Case(family=self.family, setup=self.setup, expect=self.expect, unsure=self.unsure,
                    domain=self.domain and not self.expect, deterministic=self.deterministic,
                    big_alloc=self.big_alloc, tuning=self.pick([(1, 0), (1, 2049), (0, 0)], [45, 35, 20]), **kw)

    # ---- sizes, dtypes, values, layouts
    def size(self, ranges):
        lo, hi = self.pick([r for r, _ in ranges], [w for _, w in ranges])
        return self.integer(lo, hi)

    def shape(self, ndim, class_axis=None):
        """A shape of ``ndim`` dimensions, ``class_axis`` sized like classes, at most MAX_ELEMENTS."""
        dims = [self.size(CLASS_SIZES if k == class_axis else BATCH_SIZES) for k in range(ndim)]
        while _prod(dims) > MAX_ELEMENTS:
            k = max((k for k in range(ndim) if k != class_axis), key=lambda k: dims[k], default=class_axis)
            dims[k] //= 2
        return tuple(dims)

    def float_dtype(self, half=True, bad=0.08, numbers=False):
        """A float dtype name (float16 only with ``half``); with probability ``bad`` a dtype the
        functions reject (the case then expects TypeError), or with ``numbers`` an integer or
        bool dtype, which the function computes in float64 (SciPy's rule)."""
        if self.chance(bad):
            dtype = self.pick(BAD_DTYPES + (() if half else ("float16",)))
            if not (numbers and dtype in NUMBER_DTYPES):
                self.bad(TypeError)
            return dtype
        return self.pick(FLOATS if half else FLOATS[:2], [45, 40, 15] if half else [50, 50])

    def logit_kind(self, specials_in_domain):
        """A value kind of logits; the non-finite ones leave the domain unless the function
        documents its special values."""
        kind = self.pick([k for k, _ in LOGIT_KINDS], [w for _, w in LOGIT_KINDS])
        if kind not in FINITE_KINDS and not specials_in_domain:
            self.domain = False
        return kind

    def values(self, shape, dtype, kind):
        return f"values({self.src.seed()}, {shape!r}, '{dtype}', '{kind}')"

    def layout(self, expr, ndim, dtype, writable=False):
        """``expr`` in a random memory layout (contiguous most often; never read-only when
        ``writable``)."""
        options = ["contiguous", "strided", "flipped"]
        weights = [55, 11, 9]
        if ndim >= 2:
            options.append("fortran")
            weights.append(8)
        if dtype != "object":
            options.append("misaligned")
            weights.append(9)
        if not writable:
            options.append("readonly")
            weights.append(6)
        if ndim == 0:
            options, weights = ["contiguous"], [1]
        layout = self.pick(options, weights)
        axis = self.integer(0, ndim - 1) if ndim else 0
        return {"contiguous": expr,
                "strided": f"strided({expr}, axis={axis}, step={self.pick([2, 3])})",
                "flipped": f"flipped({expr}, axis={axis})",
                "fortran": f"np.asfortranarray({expr})",
                "misaligned": f"misaligned({expr}, step={self.pick([1, 2, -1])})",
                "readonly": f"readonly({expr})"}[layout]

    def axis_arg(self, ax, ndim, none_ok=False):
        """Source of an ``axis`` argument for class axis ``ax`` (None: omitted, when it is the
        last), sometimes a bad one (expected error recorded; ``none_ok``: axis=None is a valid
        one, every axis)."""
        form = self.pick(["same", "negative", "numpy", "bad_range", "bad_type"], [60, 20, 8, 7, 5])
        if form == "same":
            return None if ax == ndim - 1 and self.chance(0.5) else str(ax)
        if form == "negative":
            return str(ax - ndim)
        if form == "numpy":
            return f"np.int64({ax})"
        if form == "bad_range":
            self.bad(ValueError, IndexError)
            return self.pick([str(ndim), str(-ndim - 1), str(ndim + 5), "2**70", "-2**70", "np.uint64(2**64 - 1)"])
        self.bad(TypeError)
        return self.pick(["1.0", "'0'", "[0]"] + ([] if none_ok else ["None"]))

    def reduction(self):
        if self.chance(0.05):
            self.bad(ValueError)
            return self.pick(BAD_REDUCTIONS)
        return self.pick(REDUCTIONS, [40, 25, 35])

    def scalar_option(self, valid, out_of_range, huge, p_bad=0.1):
        """Source of a float option: one of ``valid``; or bad: out of range (ValueError), not a
        real number (TypeError), an int too large for a float (ValueError or TypeError)."""
        if not self.chance(p_bad):
            return self.pick(valid)
        form = self.pick(["range", "type", "huge"], [50, 30, 20])
        if form == "range":
            self.bad(ValueError)
            return self.pick(out_of_range)
        if form == "type":
            self.bad(TypeError)
            return self.pick(NOT_REALS)
        self.bad(ValueError, TypeError)
        return self.pick(huge)


def _prod(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def _fits(value, dtype):
    lo, hi = INT_RANGE[dtype]
    return lo <= value <= hi


# ----------------------------------------------------------------------------- out= arguments

def out_argument(b, shape, dtype, contiguous, x="x"):
    """Set up ``out`` for a result of ``shape`` and ``dtype``: a fresh array (any layout, or
    C-contiguous when ``contiguous``), the input ``x`` itself, or a bad one.  (The families
    make the other overlaps, which need ``x`` built with ``out``.)"""
    mode = b.pick(["fresh", "inplace", "bad"], [45, 35, 20])
    if mode == "fresh":
        fresh = f"np.full({shape!r}, 7, '{dtype}')"
        if contiguous:
            if b.chance(0.1) and dtype != "object":
                b.either(ValueError, when="not out.flags.aligned")  # C-contiguous but misaligned
                fresh = f"misaligned({fresh})"
        else:
            fresh = b.layout(fresh, len(shape), dtype, writable=True)
        b.let("out", fresh)
        return
    if mode == "inplace":
        b.let("out", x)
        if contiguous:
            b.bad(ValueError, when="not (out.flags.c_contiguous and out.flags.writeable)")
            b.either(ValueError, when="not out.flags.aligned")
        else:
            b.bad(ValueError, when="not out.flags.writeable")
        return
    form = b.pick(["dtype", "shape", "list", "readonly"] + (["noncontig", "flipped", "fortran"] if contiguous else []))
    if form == "dtype":
        b.bad(TypeError)
        other = {"float32": "float64", "float64": "float32", "float16": "float32"}.get(dtype, "float64")
        b.let("out", f"np.full({shape!r}, 7, '{other}')")
    elif form == "shape":
        b.bad(ValueError)
        wrong = shape[:-1] + (shape[-1] + 1,) if shape else (1,)
        b.let("out", f"np.full({wrong!r}, 7, '{dtype}')")
    elif form == "list":
        b.bad(TypeError)
        b.let("out", f"np.full({shape!r}, 7.0).tolist()")
    elif form == "readonly":
        b.bad(ValueError)
        b.let("out", f"readonly(np.full({shape!r}, 7, '{dtype}'))")
    else:  # layouts a loss's gradient may not have; a size-0 or one-line array is contiguous anyway
        b.bad(ValueError, when="not out.flags.c_contiguous")
        layout = {"noncontig": f"strided(np.full({shape!r}, 7, '{dtype}'), axis=-1)",
                  "flipped": f"flipped(np.full({shape!r}, 7, '{dtype}'), axis=0)",
                  "fortran": f"np.asfortranarray(np.full({shape!r}, 7, '{dtype}'))"}[form]
        b.let("out", layout if shape else f"np.full({shape!r}, 7, '{dtype}')")


# ----------------------------------------------------------------------------- the families

def softmax_family(b, name):
    """softmax / log_softmax (with out=) and logsumexp, over one axis, several (a tuple) or all
    (None), of float or (in float64) integer and bool data."""
    dtype = b.float_dtype(numbers=True)
    ndim = b.integer(1, 4)
    ax = b.integer(0, ndim - 1)
    shape = b.shape(ndim, ax)
    form = b.pick(["one", "tuple", "all"], [80, 12, 8])
    if form == "one":
        axis = b.axis_arg(ax, ndim, none_ok=True)
        axes = (ax,)
    elif form == "tuple":
        axes = tuple(sorted(set([ax, b.integer(0, ndim - 1)])))
        axis = repr(tuple(a - ndim if b.chance(0.3) else a for a in axes))
    else:
        axis, axes = "None", tuple(range(ndim))
    kind = b.logit_kind(specials_in_domain=True)
    mode = "none"
    if name != "logsumexp" and dtype not in NUMBER_DTYPES and b.chance(0.5):
        mode = b.pick(["setup", "shifted", "flip_alias"], [80, 10, 10])
    if mode == "shifted" and shape[0] > 0:  # x and out: one buffer, one row apart
        b.let("_buf", b.values((shape[0] + 1,) + shape[1:], dtype, kind))
        b.let("x", "_buf[1:]")
        b.let("out", "_buf[:-1]")
    else:
        b.let("x", b.layout(b.values(shape, dtype, kind), ndim, dtype))
        if mode == "flip_alias":  # out is x's memory backwards
            b.let("out", "np.flip(x, 0)")
            b.bad(ValueError, when="not out.flags.writeable")
        elif mode != "none":
            out_argument(b, shape, dtype, contiguous=False)
    out = None if mode == "none" else "out"
    kernel = call(f"fs.{name}", ["x"] + ([axis] if axis is not None else []), [("out", out)])
    half = dtype == "float16"
    x_ref = "x.astype(np.float64)" if half else "x"
    ref_args = [x_ref] + ([axis] if axis is not None else [])
    if half:
        ref_errors = None if out else [f"result = {call(f'ref.{name}', ref_args)}"]
    else:
        ref_errors = [f"result = {call(f'ref.{name}', ['x'] + ref_args[1:], [('out', out)])}"]
    return b.case(call=[f"result = {kernel}"], ref_value=[f"result = {call(f'ref.{name}', ref_args)}"],
                  ref_errors=ref_errors, oracle=name, outputs=("out",) if out else (),
                  params=dict(x="x", axis=axis or "-1", axes=repr(axes), out=repr(out)))


def sigmoid(b):
    """sigmoid, 0-d inputs too, with out=."""
    dtype = b.float_dtype()
    ndim = b.integer(0, 3)
    shape = b.shape(ndim, ndim - 1 if ndim else None)
    kind = b.logit_kind(specials_in_domain=True)
    b.let("x", b.layout(b.values(shape, dtype, kind), ndim, dtype))
    out = None
    if b.chance(0.5):
        out_argument(b, shape, dtype, contiguous=False)
        out = "out"
    ref_errors = None if dtype == "float16" and out else [f"result = {call('ref.sigmoid', ['x'], [('out', out)])}"]
    return b.case(call=[f"result = {call('fs.sigmoid', ['x'], [('out', out)])}"],
                  ref_value=["result = ref.sigmoid(x)"], ref_errors=ref_errors, oracle="sigmoid",
                  outputs=("out",) if out else (), params=dict(x="x", out=repr(out)))


def backward_family(b, name):
    """softmax_backward / log_softmax_backward, out= overlapping either argument."""
    dtype = b.float_dtype(half=False)
    ndim = b.integer(1, 3)
    ax = b.integer(0, ndim - 1)
    shape = b.shape(ndim, ax)
    axis = b.axis_arg(ax, ndim)
    first = "log_probs" if name.startswith("log") else "probs"
    y_kind = b.pick(["probs", "values"], [70, 30])
    if y_kind == "probs":
        y = f"probs({b.src.seed()}, {shape!r}, {ax}, 'float64')"
        y = f"np.log({y}).astype('{dtype}')" if first == "log_probs" else f"{y}.astype('{dtype}')"
    else:  # any values: the bars of softmax_backward need probabilities
        kind = b.pick(["normal", "tiny", "specials"], [80, 10, 10])
        b.domain = b.domain and kind != "specials" and first == "log_probs"
        y = b.values(shape, dtype, kind)
    g_dtype = dtype
    if b.chance(0.05):
        b.bad(TypeError)
        g_dtype = b.pick(["float16", "float32" if dtype == "float64" else "float64", "int64"])
    g_shape = shape
    if b.chance(0.04):
        b.bad(ValueError)
        g_shape = shape[:-1] + (shape[-1] + 1,)
    g_kind = b.pick(["normal", "large", "unit", "specials"], [70, 10, 10, 10])
    b.domain = b.domain and g_kind != "specials"
    mode = b.pick(["none", "fresh", "alias_y", "alias_g", "shift_y", "shift_g", "bad"], [30, 15, 12, 12, 8, 8, 15])
    if mode in ("shift_y", "shift_g") and shape[0] > 0 and g_shape == shape:
        # the argument on rows 1.. of a buffer, out on rows ..-1: one row apart
        target = "y" if mode == "shift_y" else "g"
        src = y if target == "y" else b.values(shape, g_dtype, g_kind)
        b.let("_buf", f"np.concatenate([np.zeros((1,) + {shape[1:]!r}, '{dtype if target == 'y' else g_dtype}'), {src}])")
        b.let(target, "_buf[1:]")
        if target == "y":
            b.let("g", b.layout(b.values(g_shape, g_dtype, g_kind), ndim, g_dtype))
        else:
            b.let("y", b.layout(y, ndim, dtype))
        b.let("out", "_buf[:-1]")
        out = "out"
    else:
        b.let("y", b.layout(y, ndim, dtype))
        b.let("g", b.layout(b.values(g_shape, g_dtype, g_kind), ndim, g_dtype))
        out = None
        if mode in ("alias_y", "alias_g"):
            b.let("out", mode[-1])
            b.bad(ValueError, when="not out.flags.writeable")
            out = "out"
        elif mode in ("fresh", "bad", "shift_y", "shift_g"):
            out_argument(b, shape, dtype, contiguous=False, x="y")
            out = "out"
    args = ["y", "g"] + ([axis] if axis is not None else [])
    return b.case(call=[f"result = {call(f'fs.{name}', args, [('out', out)])}"],
                  ref_value=[f"result = {call(f'ref.{name}', args)}"],
                  ref_errors=[f"result = {call(f'ref.{name}', args, [('out', out)])}"], oracle=name,
                  outputs=("out",) if out else (), params=dict(y="y", g="g", axis=axis or "-1", out=repr(out)))


# ---- cross-entropy

def ce_options(b, shape, ax, dtype, loss_object=False, axis=True):
    """The cross-entropy options for logits ``x`` of ``shape`` with class axis ``ax``:
    (list of (keyword, source), target kind, weight source for the reference or None).
    A loss object validates its options when it is made, whatever the targets. ``axis``:
    whether the function takes one."""
    ndim = len(shape)
    C = shape[ax]
    batch = shape[:ax] + shape[ax + 1:]
    cdtype = "float32" if dtype == "float16" else dtype
    kw = [("axis", b.axis_arg(ax, ndim))] if axis else []
    # ignore_index
    form = b.pick(["default", "valid", "huge", "type"], [55, 35, 6, 4])
    ii_value = -100
    ii = None
    if form == "valid":
        ii_value = b.pick([-100, -1, 0, min(1, max(C - 1, 0)), -5, 2**40, -2**63])
        ii = b.pick([repr(ii_value), f"np.int64({ii_value})"], [80, 20])
    elif form == "huge":
        ii = b.pick(HUGE_INTS)
    elif form == "type":
        b.bad(TypeError)
        ii = b.pick(NOT_INTS)
    # target
    t_kind = b.pick(["index", "prob", "bad"], [62, 34, 4])
    if t_kind == "index":
        tdtype = b.pick(INDEX_DTYPES, [40, 20, 10, 8, 8, 7, 7])
        if not _fits(C - 1, tdtype):
            tdtype = "int64"  # every class must be representable
        put_ii = ii_value if _fits(ii_value, tdtype) and form in ("default", "valid") else None
        bad_t = None
        if b.chance(0.06) and _prod(batch):
            choices = [v for v in (C, C + 7, -1, -101, 2**40) if _fits(v, tdtype) and v != ii_value]
            if choices:
                bad_t = b.pick(choices)
                b.bad(IndexError)
        t = f"classes({b.src.seed()}, {batch!r}, {C}, '{tdtype}', ignore_index={put_ii}, bad={bad_t})"
        if C == 0 and put_ii is None and _prod(batch) and bad_t is None:
            b.bad(IndexError)  # a class index and no class
        if tdtype == "uint64" and b.chance(0.05) and _prod(batch):
            t = f"np.full({batch!r}, 2**64 - 1, 'uint64')"  # an out-of-range class (README: IndexError)
            b.bad(IndexError)
        t_shape_bad = b.chance(0.03)
        if t_shape_bad:
            b.bad(ValueError)
            t = f"{t}[..., None]" if b.chance(0.5) else f"np.zeros({shape!r}, 'int64')"
        b.let("t", b.layout(t, len(batch), tdtype) if not t_shape_bad else t)
    elif t_kind == "prob":
        pdtype = b.pick(["float32", "float64", "float16"], [45, 45, 10]) if dtype in FLOATS else "float64"
        pkind = b.pick(["dirichlet", "onehot", "rough", "signed"], [60, 20, 10, 10])
        # targets that do not sum to 1 make the gradient T p - w t cancel beyond the bars
        b.domain = b.domain and pkind in ("dirichlet", "onehot")
        t = f"probs({b.src.seed()}, {shape!r}, {ax}, '{pdtype}', '{pkind}')"
        if b.chance(0.03) and ndim:
            b.bad(ValueError)
            t = f"np.full({shape[:-1] + (shape[-1] + 1,)!r}, 0.5)"
            b.let("t", t)
        else:
            b.let("t", b.layout(t, ndim, pdtype))
    else:
        b.bad(TypeError)
        b.let("t", b.pick([f"np.zeros({batch!r}, bool)", f"np.zeros({batch!r}, 'complex64')",
                           f"np.zeros({batch!r}, object)", f"np.full({batch!r}, 'a')"]))
    if form == "huge":  # rejected with class indices and by a loss object; with other targets, may be
        if loss_object or t_kind == "index":
            b.bad(ValueError, TypeError)
        else:
            b.either(ValueError, TypeError)
    kw.append(("ignore_index", ii))
    # weight
    wform = b.pick(["none", "array", "list", "shape", "dtype"], [55, 35, 4, 3, 3])
    w_ref = None
    if wform in ("array", "list"):
        wdtype = b.pick(["float64", "float32", "float16", "int64", "int32"], [40, 30, 10, 12, 8])
        wkind = b.pick(["positive", "unit", "normal", "constant"], [70, 10, 10, 10])
        b.domain = b.domain and wkind in ("positive", "unit")  # the bars' r assumes weights of order 1
        w = b.values((C,), wdtype, wkind)
        b.let("w", f"{w}.tolist()" if wform == "list" else b.layout(w, 1, wdtype))
        w_ref = f"np.asarray(w).astype('{cdtype}')"
    elif wform == "shape":
        b.bad(ValueError)
        b.let("w", b.pick([f"np.ones({C + 1})", f"np.ones(({C}, 1))", "np.ones(())", f"np.ones((1, {C}))"]))
    elif wform == "dtype":
        b.bad(TypeError)
        b.let("w", b.pick([f"np.ones({C}, bool)", f"np.ones({C}, 'complex128')", f"np.ones({C}, object)",
                           f"np.full({C}, 'a')"]))
    kw.append(("weight", None if wform == "none" else "w"))
    kw.append(("reduction", None if b.chance(0.2) else b.reduction()))
    kw.append(("label_smoothing", None if b.chance(0.5) else b.scalar_option(
        ["0.0", "0.1", repr(round(b.integer(0, 1000) / 1000, 3)), "1.0", "1", "np.float32(0.3)"],
        ["-0.1", "1.5", "float('nan')", "float('inf')", "-1e-12"], ["10**400", "-(10**400)"])))
    kw.append(("z_loss", None if b.chance(0.55) else b.scalar_option(
        ["1e-4", "0.3", "2.0", "np.float64(1e-2)", "0", "1e10", "2**70"],
        ["-1e-3", "float('nan')", "float('inf')"], ["10**400"])))
    return kw, t_kind, w_ref


def _ce_reference(kw, dtype, t_kind, w_ref, return_grad):
    """The reference's value call of cross_entropy: the values the kernel computes with
    (float16 logits as float64, weights and probability targets in the compute dtype)."""
    cdtype = "float32" if dtype == "float16" else dtype
    x = "x.astype(np.float64)" if dtype == "float16" else "x"
    t = f"np.asarray(t).astype('{cdtype}')" if t_kind == "prob" else "t"
    kw = [(k, w_ref if k == "weight" and v is not None else v) for k, v in kw]
    return call("ref.cross_entropy", [x, t], kw + [("return_grad", "True" if return_grad else None)])


def _ce_params(kw, t_kind, w_ref, dtype):
    """The oracle's parameters of a cross-entropy case (the values the kernel computes with)."""
    params = {k: v for k, v in kw if v is not None and k != "weight"}
    params.update(logits="x", target=f"np.asarray(t).astype('{'float32' if dtype == 'float16' else dtype}')"
                  if t_kind == "prob" else "t", weight=w_ref or "None")
    return params


def cross_entropy(b):
    """cross_entropy with every option, out= (fresh, the logits, overlapping them, holding
    the class weights or the probability targets, bad)."""
    dtype = b.float_dtype()
    ndim = b.integer(1, 3)
    ax = b.integer(0, ndim - 1)
    shape = b.shape(ndim, ax)
    kind = b.logit_kind(specials_in_domain=True)
    return_grad = b.chance(0.65)
    mode = "none"
    if return_grad and b.chance(0.6):
        mode = b.pick(["setup", "shifted", "weight_in_out", "prob_in_out"], [80, 7, 7, 6])
    elif not return_grad and b.chance(0.03):
        mode = "no_grad"
    if mode == "shifted" and shape[0] > 0:
        b.let("_buf", b.values((shape[0] + 1,) + shape[1:], dtype, kind))
        b.let("x", "_buf[1:]")
        b.let("out", "_buf[:-1]")
    else:
        b.let("x", b.layout(b.values(shape, dtype, kind), ndim, dtype))
    kw, t_kind, w_ref = ce_options(b, shape, ax, dtype)
    out = None
    if mode == "shifted" and shape[0] > 0:
        out = "out"
    elif mode == "weight_in_out" and w_ref and dtype in FLOATS and _prod(shape) >= shape[ax]:
        # the class weights are the first C values of the gradient's memory
        b.let("out", f"np.zeros({shape!r}, '{dtype}')")
        b.setup.append(f"out.reshape(-1)[:{shape[ax]}] = w")
        b.let("w", f"out.reshape(-1)[:{shape[ax]}]")
        out = "out"
    elif mode == "prob_in_out" and t_kind == "prob" and dtype in FLOATS:
        b.let("out", f"np.array(t, '{dtype}', order='C')")
        b.let("t", "out")  # the probability targets are read while the gradient is written over them
        out = "out"
    elif mode in ("setup", "weight_in_out", "prob_in_out", "shifted"):
        out_argument(b, shape, dtype, contiguous=True)
        out = "out"
    elif mode == "no_grad":
        b.let("out", f"np.zeros({shape!r}, '{dtype}')")
        b.bad(ValueError)
        out = "out"
    full = kw + [("return_grad", "True" if return_grad else None), ("out", out)]
    half = dtype == "float16"
    if half:
        ref_errors = None if out else [f"result = {call('ref.cross_entropy', ['x.astype(np.float64)', 't'], full)}"]
    else:
        ref_errors = [f"result = {call('ref.cross_entropy', ['x', 't'], full)}"]
    params = _ce_params(kw, t_kind, w_ref, dtype)
    params.update(return_grad=repr(return_grad), out=repr(out))
    return b.case(call=[f"result = {call('fs.cross_entropy', ['x', 't'], full)}"],
                  ref_value=[f"result = {_ce_reference(kw, dtype, t_kind, w_ref, return_grad)}"],
                  ref_errors=ref_errors, oracle="cross_entropy", outputs=("out",) if out else (), params=params)


def grad_output(b, per_element_shape):
    """Source of a loss object's ``backward`` argument (None: omitted; a bad one is recorded).
    ``per_element_shape``: the loss's shape for reduction='none', else None."""
    form = b.pick(["omit", "one", "scalar", "array", "bad_shape", "bad_type"], [30, 10, 25, 20, 8, 7])
    if form == "omit":
        return None
    if form == "one":
        return b.pick(["1.0", "1", "np.float32(1)", "np.array(1.0)"])
    if form == "scalar":
        return b.pick(["2.5", "-0.75", "3", "np.float32(0.1)", "np.array(2.0)", "0.0"])
    if form == "array":
        if per_element_shape is None:  # a scalar loss takes a scalar
            b.bad(ValueError)
            return "np.ones(3)"
        return b.values(per_element_shape, b.pick(["float64", "float32", "int32"]), "normal")
    if form == "bad_shape":
        b.bad(ValueError)
        shape = (per_element_shape or ()) + (2,)
        return f"np.ones({shape!r})"
    b.bad(TypeError)
    return b.pick(["'a'", "1j", "np.array([None])", "None"])


def _scaled_half(b, dtype, go):
    """A float16 gradient scaled by ``backward(grad_output)`` is rounded twice (the kernel's
    result, then the product): beyond the float16 bar of one rounding, so out of the domain."""
    if dtype == "float16" and go not in (None, "1.0", "1", "np.float32(1)", "np.array(1.0)"):
        b.domain = False


def cross_entropy_loss_object(b):
    """CrossEntropyLoss(**options), forward, backward(grad_output)."""
    dtype = b.float_dtype()
    ndim = b.integer(1, 3)
    ax = b.integer(0, ndim - 1)
    shape = b.shape(ndim, ax)
    kind = b.logit_kind(specials_in_domain=True)
    b.let("x", b.layout(b.values(shape, dtype, kind), ndim, dtype))
    kw, t_kind, w_ref = ce_options(b, shape, ax, dtype, loss_object=True)
    reduction = dict(kw).get("reduction") or "'mean'"
    batch = shape[:ax] + shape[ax + 1:]
    go = grad_output(b, batch if reduction == "'none'" else None)
    _scaled_half(b, dtype, go)
    kernel = [f"fn = {call('fs.CrossEntropyLoss', [], kw)}", "loss = fn(x, t)",
              f"result = (loss, {call('fn.backward', [go] if go else [])})"]
    axis = dict(kw).get("axis") or "-1"
    ldtype = "float32" if dtype == "float16" else dtype
    scale = f"np.asarray({go or '1.0'}).astype('{ldtype}').astype(np.float64)"
    ref = [f"_loss, _grad = {_ce_reference(kw, dtype, t_kind, w_ref, True)}",
           f"_go = {scale}",
           "_grad = _grad.astype(x.dtype).astype(np.float64)  # backward scales the kernel's array",
           f"result = (_loss, _grad * (np.expand_dims(_go, ({axis}) % _grad.ndim) if _go.ndim else _go))"]
    params = _ce_params(kw, t_kind, w_ref, dtype)
    params.update(return_grad="True", out="None", grad_output=scale)
    return b.case(call=kernel, ref_value=ref, oracle="cross_entropy", params=params)


# ---- binary cross-entropy

def bce_options(b, shape, dtype):
    """target ``t`` (set up), and the weight / pos_weight / reduction options, with the
    reference's weight sources (in the compute dtype)."""
    ndim = len(shape)
    C = shape[-1] if ndim else 1
    cdtype = "float32" if dtype == "float16" else dtype
    tform = b.pick(["soft", "hard", "bool", "int", "outside", "shape", "dtype"], [50, 15, 10, 10, 5, 4, 4])
    if tform == "shape":
        b.bad(ValueError)
        b.let("t", f"np.full({shape + (2,)!r}, 0.5)")
    elif tform == "dtype":
        b.bad(TypeError)
        b.let("t", b.pick([f"np.zeros({shape!r}, 'complex64')", f"np.zeros({shape!r}, object)",
                           f"np.full({shape!r}, 'a')"]))
    else:
        tdtype = b.pick(["float32", "float64", "float16"], [45, 45, 10])
        src = {"soft": b.values(shape, tdtype, "unit"),
               "hard": f"({b.values(shape, 'float64', 'unit')} < 0.5).astype('{tdtype}')",
               "bool": f"{b.values(shape, 'float64', 'unit')} < 0.5",
               "int": f"({b.values(shape, 'float64', 'unit')} < 0.5).astype('{b.pick(['int64', 'uint8', 'int32'])}')",
               "outside": b.values(shape, tdtype, "normal")}[tform]
        b.let("t", b.layout(src, ndim, "float64"))
        b.domain = b.domain and tform != "outside"  # targets outside [0, 1] cancel in the loss
    kw = []
    refs = {}
    for name, forms, weights in (("weight", ["none", "scalar", "0d", "row", "class", "full", "list", "shape", "dtype"],
                                  [50, 8, 5, 8, 8, 8, 4, 5, 4]),
                                 ("pos_weight", ["none", "class", "one", "scalar", "shape", "dtype"],
                                  [60, 20, 6, 6, 4, 4])):
        form = b.pick(forms, weights)
        if ndim == 0 and form in ("row", "class", "full", "list"):
            form = "0d"
        wkind = b.pick(["positive", "unit", "normal", "constant"], [70, 10, 10, 10])
        wdtype = b.pick(["float64", "float32", "float16", "int64"], [45, 35, 10, 10])
        if form == "none":
            kw.append((name, None))
            continue
        if form == "scalar":
            src = repr(round(0.1 + 2.9 * b.integer(0, 1000) / 1000, 4))
        elif form == "0d":
            src = f"np.array({round(0.1 + 2.9 * b.integer(0, 1000) / 1000, 4)}, '{wdtype}')"
        elif form == "shape":
            b.bad(ValueError)
            src = f"np.ones({C + 1 if C else 2})"
        elif form == "dtype":
            b.bad(TypeError)
            src = b.pick([f"np.ones({C}, 'complex128')", f"np.ones({C}, object)", f"np.full({C}, 'a')"])
        else:
            wshape = {"row": shape[:-1] + (1,), "class": (C,), "full": shape, "list": (C,), "one": (1,)}[form]
            src = b.values(wshape, wdtype, wkind)
            src = f"{src}.tolist()" if form == "list" else b.layout(src, len(wshape), wdtype)
            b.domain = b.domain and wkind in ("positive", "unit")  # negative weights cancel in the loss
        var = "w" if name == "weight" else "pw"
        b.let(var, src)
        kw.append((name, var))
        refs[name] = f"np.asarray({var}).astype('{cdtype}')"
    kw.append(("reduction", None if b.chance(0.2) else b.reduction()))
    return kw, refs


def bce(b):
    """binary_cross_entropy_with_logits with every option, out= (fresh, the logits,
    overlapping them, holding the weight, pos_weight or target, bad)."""
    dtype = b.float_dtype()
    ndim = b.integer(0, 3)
    shape = b.shape(ndim, ndim - 1 if ndim else None)
    kind = b.logit_kind(specials_in_domain=True)
    return_grad = b.chance(0.65)
    mode = "none"
    if return_grad and b.chance(0.6):
        mode = b.pick(["setup", "shifted", "weight_in_out", "pos_weight_in_out", "target_in_out"], [70, 7, 9, 7, 7])
    elif not return_grad and b.chance(0.03):
        mode = "no_grad"
    if mode == "shifted" and ndim and shape[0] > 0:
        b.let("_buf", b.values((shape[0] + 1,) + shape[1:], dtype, kind))
        b.let("x", "_buf[1:]")
        b.let("out", "_buf[:-1]")
    else:
        b.let("x", b.layout(b.values(shape, dtype, kind), ndim, dtype))
    kw, refs = bce_options(b, shape, dtype)
    names = dict(kw)
    out = None
    shares = dtype in FLOATS and dtype != "float16" and not b.expect
    if mode == "shifted" and ndim and shape[0] > 0:
        out = "out"
    elif mode == "weight_in_out" and shares and _prod(shape):
        b.let("out", f"np.zeros({shape!r}, '{dtype}')")
        b.setup.append(f"out[...] = {b.values(shape, dtype, 'positive')}")
        b.let("w", b.pick(["out", "out[..., :1]"]) if ndim else "out")
        names["weight"] = "w"
        refs["weight"] = f"np.asarray(w).astype('{dtype}')"
        out = "out"
    elif mode == "pos_weight_in_out" and shares and ndim and _prod(shape):
        C = shape[-1]
        b.let("out", f"np.zeros({shape!r}, '{dtype}')")
        b.setup.append(f"out.reshape(-1)[:{C}] = {b.values((C,), dtype, 'positive')}")
        b.let("pw", f"out.reshape(-1)[:{C}]")
        names["pos_weight"] = "pw"
        refs["pos_weight"] = f"np.asarray(pw).astype('{dtype}')"
        out = "out"
    elif mode == "target_in_out" and shares:
        b.let("out", f"np.array(t, '{dtype}', order='C')")  # (np.ascontiguousarray makes 0-d 1-d)
        b.let("t", "out")
        out = "out"
    elif mode in ("setup", "weight_in_out", "pos_weight_in_out", "target_in_out", "shifted"):
        out_argument(b, shape, dtype, contiguous=True)
        out = "out"
    elif mode == "no_grad":
        b.let("out", f"np.zeros({shape!r}, '{dtype}')")
        b.bad(ValueError)
        out = "out"
    kw = [(k, names.get(k) if k in ("weight", "pos_weight") else v) for k, v in kw]
    full = kw + [("return_grad", "True" if return_grad else None), ("out", out)]
    ref_kw = [(k, refs.get(k) if v is not None and k in refs else v) for k, v in kw]
    ref_value = call("ref.binary_cross_entropy_with_logits", ["x", "t"],
                     ref_kw + [("return_grad", "True" if return_grad else None)])
    params = dict(logits="x", target="np.array(t)", weight=refs.get("weight", "None") if names.get("weight") else "None",
                  pos_weight=refs.get("pos_weight", "None") if names.get("pos_weight") else "None",
                  reduction=names.get("reduction") or "'mean'", return_grad=repr(return_grad), out=repr(out))
    return b.case(call=[f"result = {call('fs.binary_cross_entropy_with_logits', ['x', 't'], full)}"],
                  ref_value=[f"result = {ref_value}"],
                  ref_errors=[f"result = {call('ref.binary_cross_entropy_with_logits', ['x', 't'], full)}"],
                  oracle="bce", outputs=("out",) if out else (), params=params)


def bce_loss_object(b):
    """BCEWithLogitsLoss(**options), forward, backward(grad_output)."""
    dtype = b.float_dtype()
    ndim = b.integer(0, 3)
    shape = b.shape(ndim, ndim - 1 if ndim else None)
    kind = b.logit_kind(specials_in_domain=True)
    b.let("x", b.layout(b.values(shape, dtype, kind), ndim, dtype))
    kw, refs = bce_options(b, shape, dtype)
    reduction = dict(kw).get("reduction") or "'mean'"
    go = grad_output(b, shape if reduction == "'none'" else None)
    _scaled_half(b, dtype, go)
    ldtype = "float32" if dtype == "float16" else dtype
    scale = f"np.asarray({go or '1.0'}).astype('{ldtype}').astype(np.float64)"
    ref_kw = [(k, refs.get(k) if v is not None and k in refs else v) for k, v in kw]
    kernel = [f"fn = {call('fs.BCEWithLogitsLoss', [], kw)}", "loss = fn(x, t)",
              f"result = (loss, {call('fn.backward', [go] if go else [])})"]
    ref = [f"_loss, _grad = {call('ref.binary_cross_entropy_with_logits', ['x', 't'], ref_kw + [('return_grad', 'True')])}",
           f"result = (_loss, _grad.astype(x.dtype).astype(np.float64) * {scale})  # backward scales the kernel's array"]
    names = dict(kw)
    params = dict(logits="x", target="np.array(t)", weight=refs.get("weight", "None") if names.get("weight") else "None",
                  pos_weight=refs.get("pos_weight", "None") if names.get("pos_weight") else "None",
                  reduction=reduction, return_grad="True", out="None", grad_output=scale)
    return b.case(call=kernel, ref_value=ref, oracle="bce", params=params)


# ---- sampled losses and samplers

SAMPLER_FUNCTIONS = {"'log_uniform'": "sampling.log_uniform_candidate_sampler",
                     "'uniform'": "sampling.uniform_candidate_sampler"}


def sampled(b):
    """sampled_softmax_loss / nce_loss, or their loss objects."""
    name = b.pick(["sampled_softmax_loss", "nce_loss"])
    obj = b.chance(0.2)
    bias = b.chance(0.7)
    dtype = b.pick(["float32", "float64", "float16", "int64", "mixed"], [47, 47, 2, 2, 2 if bias else 0])
    if dtype in ("float16", "int64", "mixed"):
        b.bad(TypeError)
    wdtype = "float64" if dtype == "mixed" else dtype  # "mixed": float32 biases with float64 weights
    C = b.size((((2, 60), 70), ((61, 300), 25), ((1, 1), 5)))
    D = b.integer(1, 24)
    N = b.size((((1, 40), 96), ((0, 0), 4)))
    nt = b.pick([1, 2, 3], [70, 20, 10])
    unique = b.chance(0.75)
    S = b.integer(1, min(C, 40)) if unique else b.integer(1, 40)
    b.let("W", b.layout(b.values((C, D), wdtype, b.pick(["normal", "unit"])), 2, wdtype))
    if bias:
        bdtype = "float32" if dtype == "mixed" else wdtype
        b.let("b", b.layout(b.values((C,), bdtype, "normal"), 1, bdtype))
    ydtype = b.pick(["int64", "int32", "uint8"], [70, 20, 10])
    bad_label = None
    choices = [v for v in (C, C + 3, -1) if _fits(v, ydtype)]
    if b.chance(0.05) and choices and N:
        bad_label = b.pick(choices)
        b.bad(IndexError)
    y_shape = (N,) if nt == 1 and b.chance(0.5) else (N, nt)
    b.let("y", f"classes({b.src.seed()}, {y_shape!r}, {C}, '{ydtype}', bad={bad_label})")
    b.let("x", b.layout(b.values((N, D), wdtype, "normal"), 2, wdtype))
    # the true classes as the samplers see them (valid ones when the labels are bad)
    b.let("_y2", f"np.zeros(({N}, {nt}), 'int64')" if bad_label is not None
          else f"np.asarray(y).reshape({N}, {nt}).astype('int64')")
    # the candidates: drawn by the call (sampler, rng), or given (sampled_values), or malformed
    sv_mode = b.pick(["sampler", "given", "malformed"], [55, 37, 8])
    rng = sampler = None
    draw = ("sampling.log_uniform_candidate_sampler", str(b.src.seed()))  # how the setup draws `sv`
    if sv_mode == "sampler":
        sampler = b.pick(["'log_uniform'", "'uniform'", "unigram", "bad_name", "bad_type"], [40, 25, 25, 5, 5])
        if sampler == "unigram":
            b.let("u", f"sampling.UnigramSampler({b.values((C,), 'float64', 'positive')}, {b.pick(['1.0', '0.75'])})")
            sampler = "u"
        elif sampler == "bad_name":
            b.bad(ValueError)
            sampler = "'zipf'"
        elif sampler == "bad_type":
            b.bad(TypeError, ValueError)
            sampler = "3"
        rng = b.pick([str(b.src.seed()), f"np.random.default_rng({b.src.seed()})", "None", "np.random.RandomState(0)",
                      "'x'"], [60, 28, 4, 4, 4])
        if rng == "None":
            b.deterministic = False
            b.domain = False  # the reference cannot draw the same candidates
        elif rng in ("np.random.RandomState(0)", "'x'"):
            b.bad(TypeError)
        if unique and S > C:
            b.bad(ValueError)
        if not unique and b.chance(0.02) and b.huge:
            S = 2**50  # candidates no machine can hold
            b.big_alloc = True
            b.bad(MemoryError, ValueError)
        draw = None
        if sampler in ("'log_uniform'", "'uniform'", "u") and rng not in ("None", "np.random.RandomState(0)", "'x'") \
                and not b.big_alloc and not (unique and S > C):
            # the reference's candidates: the same draws as the call's
            draw = (f"sampling.{sampler[1:-1]}_candidate_sampler" if sampler != "u" else "u.sample", rng)
    sv = None
    if draw:
        draws = min(S, C) if unique else S
        b.let("sv", call(draw[0], ["_y2", str(nt), str(draws), repr(unique), str(C)], [("rng", draw[1])]))
        if sv_mode == "given":
            if draws != S:
                b.bad(ValueError)
            sv = "sv"
        elif sv_mode == "malformed":
            form = b.pick(["short", "pair", "range", "float", "counts"])
            b.bad(IndexError if form == "range" else ValueError)
            b.let("sv", {"short": "(sv[0][:-1], sv[1], sv[2])", "pair": "(sv[0], sv[1])",
                         "range": f"(np.full_like(sv[0], {C}), sv[1], sv[2])",
                         "float": "(sv[0].astype(float), sv[1], sv[2])",
                         "counts": "(sv[0], sv[1], sv[2][:0])"}[form])  # (sv[1] is empty for N = 0)
            sv = "sv"
    # the integer arguments
    ints = {"num_sampled": str(S), "num_classes": str(C), "num_true": str(nt)}
    if b.chance(0.06):
        value = b.pick(["0", "-1", "1.5", "2**70", "True", "next"])
        # one more than the arguments' sizes: wrong, except num_sampled when the call draws them
        which = b.pick(list(ints) if value != "next" or sv else ["num_classes", "num_true"])
        b.bad(TypeError if value in ("1.5", "True") else ValueError)
        ints[which] = str(int(ints[which]) + 1) if value == "next" else value
    hits = b.chance(0.5)
    log_q = b.chance(0.7)
    reduction = b.reduction()
    return_grad = True if obj else b.chance(0.6)
    options = [("num_true", ints["num_true"]), ("remove_accidental_hits", repr(hits)),
               ("subtract_log_q", repr(log_q)), ("sampler", sampler), ("unique", repr(unique) if sampler else None),
               ("rng", rng), ("reduction", reduction)]
    bb = "b" if bias else "None"
    go = None
    if obj:
        cls = "fs.SampledSoftmaxLoss" if name == "sampled_softmax_loss" else "fs.NCELoss"
        go = b.pick([None, "2.5", "np.float32(0.5)"])
        kernel = [f"fn = {call(cls, [ints['num_sampled'], ints['num_classes']], options)}",
                  f"loss = {call('fn', ['W', bb, 'y', 'x'] + ([sv] if sv else []))}",
                  f"result = (loss, {call('fn.backward', [go] if go else [])})"]
    else:
        args = ["W", bb, "y", "x", ints["num_sampled"], ints["num_classes"]]
        kernel = [f"result = {call(f'fs.{name}', args, [('sampled_values', sv)] + options + [('return_grad', repr(return_grad))])}"]
    if not draw:
        b.domain = False
    ref_options = [("num_true", ints["num_true"]), ("remove_accidental_hits", repr(hits)),
                   ("subtract_log_q", repr(log_q)), ("reduction", reduction), ("return_grad", repr(return_grad))]
    ref = [f"result = {call(f'ref.{name}', ['W', bb, 'y', 'x', 'sv'], ref_options)}"]
    return b.case(call=kernel, ref_value=ref, oracle="sampled",
                  params=dict(W="W", x="x", y="_y2", sv="sv", num_true=ints["num_true"], reduction=reduction or "'mean'",
                              return_grad=repr(return_grad), grad_output=go or "1.0", dtype=repr(wdtype),
                              nce=repr(name == "nce_loss")))


def linear(b):
    """linear_cross_entropy, or its loss object (backward with a scalar grad_output), with the
    cross-entropy options of cross_entropy's cases (probability targets are refused here) and
    chunk sizes."""
    obj = b.chance(0.25)
    dtype = b.pick(["float32", "float64", "float16", "mixed"], [47, 47, 3, 3])
    if dtype in ("float16", "mixed"):
        b.bad(TypeError)
    xdtype = "float32" if dtype == "mixed" else dtype  # "mixed": float32 inputs, float64 classifier
    wdtype = "float64" if dtype == "mixed" else dtype
    n = b.size((((1, 40), 88), ((41, 300), 6), ((0, 0), 6)))
    c = b.size((((1, 60), 70), ((61, 700), 25), ((0, 0), 5)))
    d = b.integer(1, 24)
    b.let("x", b.layout(b.values((n, d), xdtype, "normal"), 2, xdtype))
    b.let("W", b.layout(b.values((c, d), wdtype, b.pick(["normal", "unit", "large"], [60, 25, 15])), 2, wdtype))
    bias = b.chance(0.6)
    if bias:
        b.let("bb", b.layout(b.values((c,), wdtype, "normal"), 1, wdtype))
    kw, t_kind, w_ref = ce_options(b, (n, c), 1, "float32" if dtype == "float16" else xdtype, loss_object=obj,
                                   axis=False)
    if t_kind == "prob":
        b.bad(TypeError)  # class indices only
    chunk = b.pick([None, "1", "3", str(max(n, 1)), "10**6", "0", "1.5", "np.int32(7)"], [45, 10, 12, 10, 8, 5, 5, 5])
    if chunk == "0":
        b.bad(ValueError)
    elif chunk == "1.5":
        b.bad(TypeError)
    kw.append(("chunk_size", chunk))
    bias_arg = "bb" if bias else None
    go = None
    if obj:
        go = b.pick([None, "2.5", "np.float32(0.5)"])
        kernel = [f"fn = {call('fs.LinearCrossEntropyLoss', [], kw)}",
                  f"loss = {call('fn', ['x', 'W', 't'] + ([bias_arg] if bias else []))}",
                  f"result = (loss, {call('fn.backward', [go] if go else [])})"]
        return_grad = True
    else:
        return_grad = b.chance(0.65)
        kernel = [f"result = {call('fs.linear_cross_entropy', ['x', 'W', 't'], [('bias', bias_arg)] + kw + [('return_grad', repr(return_grad))])}"]
    ref_kw = [(k, w_ref if k == "weight" and v is not None else v) for k, v in kw if k != "chunk_size"]
    ref = [f"result = {call('ref.linear_cross_entropy', ['x', 'W', 't'], [('bias', bias_arg)] + ref_kw + [('return_grad', repr(return_grad))])}"]
    params = {k: v for k, v in ref_kw if v is not None}
    params.update(x="x", W="W", t="t", bias=bias_arg or "None", weight=w_ref or "None", return_grad=repr(return_grad),
                  grad_output=go or "1.0", dtype=repr(xdtype))
    return b.case(call=kernel, ref_value=ref, oracle="linear", params=params)


def sampler(b):
    """The candidate samplers of fastsoftmax.sampling."""
    kind = b.pick(["log_uniform", "uniform", "fixed_unigram", "unigram_object"], [30, 25, 20, 25])
    nt = b.size((((1, 1), 60), ((2, 3), 30), ((4, 9), 10)))
    unigram = kind in ("fixed_unigram", "unigram_object")
    range_max = b.integer(1, 300) if unigram else b.size((((1, 100), 60), ((101, 10**6), 40)))
    unique = b.chance(0.6)
    S = b.integer(1, min(range_max, 60)) if unique else b.integer(1, 300)
    N = b.size((((1, 20), 95), ((0, 0), 5)))
    tdtype = b.pick(["int64", "int32", "uint16"], [70, 20, 10])
    if tdtype == "uint16" and range_max > 65535:
        tdtype = "int64"
    bad_class = None
    if b.chance(0.05) and N:
        bad_class = range_max
        b.bad(IndexError)
    t = f"classes({b.src.seed()}, {(N, nt)!r}, {range_max}, 'int64', bad={bad_class})"
    tform = b.pick(["ok", "float", "shape"], [92, 4, 4])
    if tform == "float":
        b.bad(TypeError)
        t = f"{t}.astype(float)"
    elif tform == "shape":
        b.bad(ValueError)
        t = f"{t}.reshape(-1)" if nt > 1 or N != 1 else f"np.zeros(({N}, {nt + 1}), 'int64')"
    else:
        t = f"{t}.astype('{tdtype}')"
    b.let("true", t)
    args = {"num_true": str(nt), "num_sampled": str(S), "unique": repr(unique), "range_max": str(range_max)}
    if b.chance(0.12):
        which = b.pick(list(args))
        if which == "unique":
            b.bad(TypeError)
            args["unique"] = b.pick(["1", "'yes'", "None"])
        else:
            value = b.pick(["0", "-3", "1.5", "2**62", "2**70", "True", "'4'"])
            b.bad(TypeError if value in ("1.5", "True", "'4'") else ValueError)
            args[which] = value
    elif unique and b.chance(0.05):
        b.bad(ValueError)
        args["num_sampled"] = str(range_max + 1)
    elif not unique and b.chance(0.02) and b.huge:
        args["num_sampled"] = "2**50"
        b.big_alloc = True
        b.bad(MemoryError, ValueError)
    rng = b.pick([str(b.src.seed()), f"np.random.default_rng({b.src.seed()})", "None", "np.random.RandomState(1)",
                  "-1"], [65, 25, 4, 3, 3])
    if rng == "None":
        b.deterministic = False
    elif rng in ("np.random.RandomState(1)", "-1"):
        b.bad(TypeError)
    positional = ["true", args["num_true"], args["num_sampled"], args["unique"], args["range_max"]]
    oracle_unigrams = "None"
    distortion = "1.0"
    if unigram:
        distortion = b.pick(["1.0", "0.75", "0.0", "0", "float('nan')", "'0.75'"], [40, 35, 10, 5, 5, 5])
        if distortion == "float('nan')":
            b.bad(ValueError)
        elif distortion == "'0.75'":
            b.bad(TypeError)
        zero_power = distortion in ("0.0", "0")  # 0 ** 0 is 1: every class gets weight 1
        uform = b.pick(["ok", "zeros", "negative", "nan", "empty", "2d", "all_zero"], [70, 14, 4, 3, 3, 3, 3])
        u = b.values((range_max,), "float64", "positive")
        if uform == "zeros":
            u = f"np.where({b.values((range_max,), 'float64', 'unit')} < 0.3, 0.0, {u})"
            if not zero_power:
                # fewer classes of nonzero probability than num_sampled (unique), or none at all
                # (a few classes may all draw 0)
                b.either(ValueError)
        elif uform == "all_zero":
            u = f"np.zeros({range_max})"
            if not zero_power:
                b.bad(ValueError)
        elif uform != "ok":
            b.bad(ValueError)
            u = {"negative": f"-{u}", "nan": f"np.full({range_max}, np.nan)", "empty": "np.zeros(0)",
                 "2d": f"np.ones((2, {range_max}))"}[uform]
        b.let("unigrams", u)
        oracle_unigrams = "unigrams"
    if kind == "fixed_unigram":
        kernel = call("sampling.fixed_unigram_candidate_sampler", positional,
                      [("unigrams", "unigrams"), ("distortion", distortion), ("rng", rng)])
    elif kind == "unigram_object":
        kernel = call(f"sampling.UnigramSampler(unigrams, {distortion}).sample", positional, [("rng", rng)])
    else:
        kernel = call(f"sampling.{kind}_candidate_sampler", positional, [("rng", rng)])
    return b.case(call=[f"result = {kernel}"], oracle="sampler",
                  params=dict(kind=repr("unigram" if unigram else kind), true="true", num_sampled=args["num_sampled"],
                              unique=args["unique"], range_max=args["range_max"], unigrams=oracle_unigrams,
                              distortion=distortion))


def set_num_threads(b):
    """set_num_threads(n), then get_num_threads()."""
    value = b.pick(["0", "1", "2", "3", "None", "np.int32(2)", "-1", "1.5", "np.float64(2.0)", "'2'", "2**40",
                    "2**70", "-2**70", "[1]", "True"], [8, 8, 8, 8, 6, 6, 7, 8, 6, 6, 8, 6, 5, 5, 4])
    if value in ("-1", "-2**70"):
        b.bad(ValueError)
    elif value in ("1.5", "np.float64(2.0)", "'2'", "[1]", "True"):
        b.bad(TypeError)
    elif value in ("2**40", "2**70"):
        b.either(ValueError, TypeError)  # more threads than the pool has: capped, or rejected
    return b.case(call=[f"fs.set_num_threads({value})", "result = fs.get_num_threads()"], oracle="threads",
                  params=dict(value=value))


FAMILIES = (
    ("softmax", lambda b: softmax_family(b, "softmax"), 10),
    ("log_softmax", lambda b: softmax_family(b, "log_softmax"), 7),
    ("logsumexp", lambda b: softmax_family(b, "logsumexp"), 6),
    ("cross_entropy", cross_entropy, 24),
    ("sigmoid", sigmoid, 5),
    ("binary_cross_entropy_with_logits", bce, 15),
    ("softmax_backward", lambda b: backward_family(b, "softmax_backward"), 5),
    ("log_softmax_backward", lambda b: backward_family(b, "log_softmax_backward"), 5),
    ("CrossEntropyLoss", cross_entropy_loss_object, 9),
    ("BCEWithLogitsLoss", bce_loss_object, 6),
    ("sampled", sampled, 9),
    ("linear", linear, 8),
    ("sampler", sampler, 6),
    ("set_num_threads", set_num_threads, 2),
)


def generate(src, huge=True):
    """One case from the choices of ``src`` (a :mod:`.sources` source); ``huge``: also calls
    that must fail to allocate (MemoryError)."""
    name, make, _ = src.pick(FAMILIES, [w for _, _, w in FAMILIES])
    return make(Builder(src, name, huge))
