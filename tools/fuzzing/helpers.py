"""Array constructors of the fuzz cases.

Every array of a case is built by a call of these functions (or a NumPy expression of
them) written as Python source, so that the same text builds the case in the harness and
in its printed reproducer, which carries the source of the functions it uses.  All of
them are deterministic functions of their arguments (values come from
``np.random.default_rng(seed)``).
"""

import numpy as np


def values(seed, shape, dtype, kind="normal"):
    """An array of ``shape`` and ``dtype`` with values of ``kind``, from ``default_rng(seed)``.

    Kinds: ``normal`` (N(0, 3^2)), ``large`` (N(0, 300^2)), ``wide`` (magnitudes spread
    log-uniformly over the dtype's range, both signs), ``huge`` (within a factor 4 of the
    dtype's largest value), ``tiny`` (magnitudes below 1e-30, down to subnormals and 0),
    ``subnormal``, ``specials`` (normal, a quarter of the entries NaN, +-inf, +-0 or +-max),
    ``masked`` (normal, about a third of the entries -inf), ``constant`` (one value),
    ``unit`` (uniform in [0, 1)) and ``positive`` (uniform in [0.1, 3)).  Integer, bool,
    complex and object dtypes get the normal values converted.
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    fi = np.finfo(dtype if dtype.kind == "f" and dtype.itemsize <= 8 else np.float64)
    top = float(fi.max)
    sign = rng.choice([-1.0, 1.0], n)
    if kind == "normal":
        v = rng.standard_normal(n) * 3.0
    elif kind == "large":
        v = rng.standard_normal(n) * 300.0
    elif kind == "wide":
        v = sign * 10.0 ** rng.uniform(np.log10(float(fi.smallest_subnormal)), np.log10(top), n)
    elif kind == "huge":
        v = sign * top * rng.uniform(0.25, 1.0, n)
    elif kind == "tiny":  # below 1e-30 (float16: below its smallest normal number)
        v = sign * 10.0 ** rng.uniform(np.log10(float(fi.smallest_subnormal)) - 1.0,
                                       max(-30.0, np.log10(float(fi.tiny))), n)
    elif kind == "subnormal":
        v = sign * float(fi.smallest_subnormal) * rng.integers(0, 64, n)
    elif kind == "specials":
        v = rng.standard_normal(n) * 3.0
        hit = rng.random(n) < 0.25
        v[hit] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, top, -top], int(hit.sum()))
    elif kind == "masked":
        v = rng.standard_normal(n) * 3.0
        v[rng.random(n) < 0.35] = -np.inf
    elif kind == "constant":
        v = np.full(n, rng.choice([0.0, 1.0, -7.5, 88.0, -1e4]))
    elif kind == "unit":
        v = rng.random(n)
    elif kind == "positive":
        v = rng.uniform(0.1, 3.0, n)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            v = np.clip(np.nan_to_num(np.round(v)), info.min, info.max)
        elif dtype.kind == "b":
            v = v > 0
        elif dtype.kind == "c":
            v = v + 1j * rng.standard_normal(n)
        return v.astype(dtype).reshape(shape)


def probs(seed, shape, axis, dtype, kind="dirichlet"):
    """Probability targets of ``shape`` along ``axis``: ``dirichlet`` rows (sum 1),
    ``onehot`` rows, ``rough`` (non-negative, not summing to 1) or ``signed`` (any real)."""
    rng = np.random.default_rng(seed)
    ax = axis % len(shape)
    rows = shape[:ax] + shape[ax + 1:] + (shape[ax],)
    c = shape[ax]
    if kind == "dirichlet":
        t = rng.dirichlet(np.ones(c), size=rows[:-1]) if c else np.zeros(rows)
    elif kind == "onehot":
        t = np.zeros(rows)
        if c:
            np.put_along_axis(t, rng.integers(0, c, rows[:-1] + (1,)), 1.0, axis=-1)
    elif kind == "rough":
        t = rng.random(rows) * 2.0
    elif kind == "signed":
        t = rng.standard_normal(rows)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return np.ascontiguousarray(np.moveaxis(t.reshape(rows), -1, ax)).astype(dtype)


def classes(seed, shape, n_classes, dtype, ignore_index=None, bad=None):
    """Class indices in ``[0, n_classes)`` of an integer ``dtype``; about a third of the
    entries ``ignore_index`` when it is given (every entry when there are no classes);
    with ``bad``, one entry (a random one) set to that out-of-range value."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, max(n_classes, 1), size=shape)
    if ignore_index is not None and t.size:
        t[(rng.random(shape) < 0.35) | (n_classes == 0)] = ignore_index
    if bad is not None and t.size:
        t.flat[rng.integers(t.size)] = bad
    return t.astype(dtype)


def strided(a, axis=-1, step=2):
    """``a``'s values in a view with a step of ``step`` elements along ``axis`` (gaps between them)."""
    axis = axis % a.ndim
    shape = list(a.shape)
    shape[axis] *= step
    view = np.zeros(shape, a.dtype)[(slice(None),) * axis + (slice(None, None, step),)]
    view[...] = a
    return view


def flipped(a, axis=-1):
    """``a``'s values in a view with a negative stride along ``axis``."""
    return np.flip(np.flip(a, axis).copy(), axis)


def misaligned(a, step=1):
    """``a``'s values in a view of a byte buffer at an odd address (not aligned for its dtype),
    with a step of ``step`` (1, 2 or -1) elements along the last axis."""
    shape = a.shape[:-1] + (a.shape[-1] * abs(step),) if a.ndim else ()
    n = int(np.prod(shape, dtype=np.int64))
    full = np.zeros(n * a.itemsize + 1, np.uint8)[1:].view(a.dtype).reshape(shape)
    view = full[..., ::step] if a.ndim else full
    view[...] = a
    return view


def readonly(a):
    """A read-only copy of ``a``."""
    a = a.copy()
    a.flags.writeable = False
    return a
