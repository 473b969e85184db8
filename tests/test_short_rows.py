"""Short rows (few classes) in batches that fill whole SIMD tiles of rows plus a remainder.

Kernels may process several short rows at a time (rows as SIMD lanes); these tests use
batches of 8, 37 and 67 rows with special values in rows inside the tiles, every
cross-entropy option group, and layouts where the class axis is not the fast axis.
"""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import (
    DTYPES,
    assert_grad_close,
    assert_softmax_close,
    assert_value_close,
    grad_row_factor,
    make_index_target,
    make_prob_target,
    zloss_loss_allowance,
    zloss_row_factor,
)

# every test here runs on each instruction-set path with 1 and 2 threads (conftest.backend)
pytestmark = pytest.mark.usefixtures("backend")

SHORT_CS = list(range(1, 18)) + [23, 31, 32, 33, 47, 63, 64, 65]
# rows of the grouped path (driver_group.h: 33 to 384 classes, 4 rows at a time) and past it
GROUP_CS = [34, 66, 100, 129, 257, 384, 385, 1000, 4095, 4096, 4097]


def _with_specials(rng, x):
    N, C = x.shape
    rows = rng.permutation(N)
    x[rows[0]] = -np.inf  # all -inf
    x[rows[1], C // 2] = np.nan
    x[rows[2], C - 1] = np.inf
    if C > 1:
        x[rows[3], : C - 1] = -np.inf  # only the last class left
        x[rows[4], rng.random(C) < 0.5] = -np.inf
        x[rows[4], 0] = 1.0
    x[rows[5]] = 1e4
    x[rows[6]] = -1e4 + np.arange(C)
    return x, rows


def _family(x, axis=-1):
    dt = x.dtype
    assert_softmax_close(fs.softmax(x, axis), ref.softmax(x, axis), dt)
    assert_value_close(fs.log_softmax(x, axis), ref.log_softmax(x, axis), dt, "log_softmax")
    assert_value_close(fs.logsumexp(x, axis), ref.logsumexp(x, axis), dt, "logsumexp")


def _ce(x, t, **kw):
    dt = x.dtype
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, **kw)
    loss, grad = fs.cross_entropy(x, t, return_grad=True, **kw)
    assert_value_close(loss, loss_ref, dt, "loss")
    assert_grad_close(grad, grad_ref, dt, grad_row_factor(x.shape, t, **kw))
    np.testing.assert_array_equal(fs.cross_entropy(x, t, **kw), loss)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [8, 37, 67])
@pytest.mark.parametrize("C", SHORT_CS + GROUP_CS)
def test_short_rows(rng, isa, dtype, N, C):
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    _family(x)
    _family(np.ascontiguousarray(x.T), 0)  # class axis first: class stride N
    _family(x[::-1])  # negative row stride
    xs, rows = _with_specials(rng, x.copy())
    _family(xs)
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    t = make_index_target(rng, (N,), C, ignore_index=-100)
    for red in ("mean", "sum", "none"):
        _ce(x, t, reduction=red)
        _ce(x, t, reduction=red, weight=w, label_smoothing=0.1)
    tp = make_prob_target(rng, x.shape, -1, dtype)
    _ce(x, tp, reduction="none", label_smoothing=0.2, weight=w)
    _ce(x, tp)
    # specials: targets on finite classes where there are any
    ts = np.full(N, C - 1)
    _ce(xs, ts, reduction="none")
    _ce(xs, ts, reduction="none", label_smoothing=0.1, weight=w)
    _ce(np.ascontiguousarray(x.T), t, axis=0, reduction="none", label_smoothing=0.1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 3, 7, 8, 16])
def test_short_rows_in_place_and_out(rng, dtype, C):
    N = 37
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    for fn, check in (("softmax", assert_softmax_close), ("log_softmax", assert_value_close)):
        want = getattr(ref, fn)(x)
        y = x.copy()
        getattr(fs, fn)(y, out=y)
        check(y, want, dtype, fn)
        o = np.zeros((C, N), dtype).T  # out with the class axis strided
        getattr(fs, fn)(x, out=o)
        check(o, want, dtype, fn)
    t = rng.integers(0, C, N)
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, label_smoothing=0.1)
    y = x.copy()
    loss, g = fs.cross_entropy(y, t, return_grad=True, out=y, label_smoothing=0.1)
    assert g is y
    assert_value_close(loss, loss_ref, dtype, "loss")
    assert_grad_close(y, grad_ref, dtype, grad_row_factor(x.shape, t, label_smoothing=0.1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 4, 9, 16])
def test_short_rows_3d_middle_axis(rng, dtype, C):
    x = (rng.standard_normal((5, C, 11)) * 3).astype(dtype)
    _family(x, 1)
    t = make_index_target(rng, (5, 11), C, ignore_index=-100)
    _ce(x, t, axis=1, label_smoothing=0.2)
    _ce(x, make_prob_target(rng, x.shape, 1, dtype), axis=1, reduction="none")


# logits that meet in rows of two classes: the tiles take one exp per such row (exp of the
# difference of the two logits: H(exp_two) in driver_tile.h)
PAIR_VALUES = [-np.inf, np.inf, np.nan, 0.0, -0.0, 1.0, 1.0 + 2**-20, -1e4, 1e4, 88.0, -88.0, 1e-30, 3e38, -3e38]


@pytest.mark.parametrize("dtype", DTYPES)
def test_two_classes_every_pair(rng, isa, dtype):
    """Rows of two classes, every ordered pair of special and ordinary logits, in dense tiles
    (C-contiguous, many tiles, two at a time), gathered tiles (negative row stride) and rows
    (class axis first); softmax, log_softmax, logsumexp and the cross-entropy against the
    reference, NaN and infinities in the same places."""
    v = np.array(PAIR_VALUES, dtype=np.float64)
    pairs = np.stack(np.meshgrid(v, v, indexing="ij"), -1).reshape(-1, 2)
    # the pairs between ordinary rows, whose tiles mix both kinds of lanes
    x = (rng.standard_normal((3 * len(pairs), 2)) * 3).astype(dtype)
    x[1::3] = pairs.astype(dtype)
    for xv, axis in ((x, -1), (x[::-1], -1), (np.ascontiguousarray(x.T), 0)):
        _family(xv, axis)
    t = make_index_target(rng, (len(x),), 2, ignore_index=-100)
    w = np.array([0.5, 2.0], dtype)
    for kw in ({}, {"weight": w}, {"reduction": "none"}, {"reduction": "none", "label_smoothing": 0.1}):
        _ce(x, t, **kw)
        _ce(x[::-1], t[::-1], **kw)
        _ce(np.ascontiguousarray(x.T), t, axis=0, **kw)
    # ordinary logits whose difference is 0, tiny or huge: every bit of the exponential counts
    d = np.concatenate([[0.0, 2**-24, 1e-7, 1e-3, 0.5, 10.0, 87.0, 88.0, 103.0, 104.0, 1e3], rng.uniform(0, 30, 200)])
    base = rng.uniform(-50, 50, len(d))
    x2 = np.stack([base, base - d], -1).astype(dtype)
    x2 = np.concatenate([x2, x2[:, ::-1]])
    _family(x2)
    _ce(x2, rng.integers(0, 2, len(x2)), reduction="none")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 3, 8, 10, 16, 17, 18, 33, 58, 64])
def test_dense_tiles(rng, isa, dtype, C):
    """C-contiguous batches of many tiles (rows as SIMD lanes, loaded and stored a vector
    per row): weights without smoothing, ignored rows with NaN logits, in place."""
    N = 203
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    _family(x)
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    t = make_index_target(rng, (N,), C, ignore_index=-100)
    t[[5, 64, 130]] = -100
    xn = x.copy()
    xn[[5, 64], 0] = np.nan  # ignored rows: loss 0 and gradient 0 whatever their logits
    for red in ("none", "mean"):
        _ce(x, t, reduction=red, weight=w)
        _ce(xn, t, reduction=red)
    loss, g = fs.cross_entropy(xn, t, return_grad=True, reduction="none", weight=w)
    assert np.all(g[[5, 64, 130]] == 0) and np.all(loss[[5, 64, 130]] == 0)
    # runs whose targets are all classes (checked once per run), and an ignore_index that is a class
    tc = rng.integers(0, C, N)
    for red in ("none", "mean"):
        _ce(x, tc, reduction=red)
        _ce(x, tc, reduction=red, weight=w, ignore_index=int(tc[0]))
    for fn, check in (("softmax", assert_softmax_close), ("log_softmax", assert_value_close)):
        y = x.copy()
        getattr(fs, fn)(y, out=y)
        check(y, getattr(ref, fn)(x), dtype, fn)
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, weight=w)
    y = x.copy()
    loss, g = fs.cross_entropy(y, t, return_grad=True, out=y, weight=w)
    assert g is y
    assert_value_close(loss, loss_ref, dtype, "loss")
    assert_grad_close(y, grad_ref, dtype, grad_row_factor(x.shape, t, weight=w))
    # rows of a 3-D array, class axis last: the batch is one run of dense rows
    x3 = x[: 7 * 29].reshape(7, 29, C)
    _family(x3)
    _ce(x3, t[: 7 * 29].reshape(7, 29), axis=-1, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [1, 3, 5, 9])
@pytest.mark.parametrize("C", [34, 65, 100, 257, 1000, 4096])
def test_grouped_rows(rng, isa, dtype, N, C):
    """Batches of 4-row groups and a partial one: rows of a wider array (row stride > C), in
    place and into out=, ignored rows and weights, z-loss, and each row on its own."""
    wide = (rng.standard_normal((N, C + 7)) * 3).astype(dtype)
    x = wide[:, 3:C + 3]  # row stride C + 7, class stride 1
    _family(x)
    for fn, check in (("softmax", assert_softmax_close), ("log_softmax", assert_value_close)):
        want = getattr(ref, fn)(x)
        y = x.copy()
        getattr(fs, fn)(y, out=y)
        check(y, want, dtype, fn)
        o = np.full((N, C + 5), 7, dtype)
        getattr(fs, fn)(x, out=o[:, 2:C + 2])
        check(o[:, 2:C + 2], want, dtype, fn)
        assert (o[:, :2] == 7).all() and (o[:, C + 2:] == 7).all()
        # a row's result does not depend on the rows grouped with it
        for n in range(N):
            np.testing.assert_array_equal(getattr(fs, fn)(x[n:n + 1]), getattr(fs, fn)(x)[n:n + 1])
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    t = make_index_target(rng, (N,), C, ignore_index=-100)
    for kw in (dict(), dict(weight=w, reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.1)):
        _ce(x, t, **kw)
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, z_loss=1e-3, reduction="none")
    y = np.ascontiguousarray(x)
    loss, g = fs.cross_entropy(y, t, return_grad=True, out=y, z_loss=1e-3, reduction="none")
    assert g is y
    zl = dict(z_loss=1e-3, reduction="none")
    assert_value_close(loss, loss_ref, dtype, "loss", allowance=zloss_loss_allowance(x, t, **zl))
    assert_grad_close(g, grad_ref, dtype, zloss_row_factor(x, t, **zl))


def _streamed_as_stored(outputs):
    """outputs() with normal stores, then with every output streamed (the size from which
    outputs stream lowered to 1 byte; the caller's finalizer restores it): the same bits.
    Returns the streamed results."""
    from fastsoftmax import _kernels

    _kernels.set_stream_min_bytes(1 << 62)
    stored = outputs()
    _kernels.set_stream_min_bytes(1)
    streamed = outputs()
    for a, b in zip(stored, streamed):
        np.testing.assert_array_equal(a, b)
    return streamed


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [66, 100, 129, 150, 257, 384])
@pytest.mark.parametrize("offset", [0, 1, 5])
def test_groups_staged_and_streamed(request, rng, dtype, C, offset):
    """Large outputs of C-contiguous groups go through a staging block whose whole cache lines
    are streamed (driver_group.h; the size from which outputs stream is lowered to every size
    here): the same bits as the groups' normal stores, with the output at several offsets
    within a cache line, special rows, ignored targets, weights, smoothing and probability
    targets, a batch that ends in a partial group, and in place; and the reference's values."""
    from fastsoftmax import _kernels

    request.addfinalizer(lambda: _kernels.set_stream_min_bytes(0))
    N = 4 * 9 + 3
    x, _ = _with_specials(rng, (rng.standard_normal((N, C)) * 3).astype(dtype))
    t = make_index_target(rng, (N,), C, ignore_index=-100)
    tp = make_prob_target(rng, x.shape, -1, dtype)
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    options = [(t, {}), (t, dict(weight=w, reduction="sum")), (t, dict(label_smoothing=0.1)), (tp, {})]

    def outputs():
        buf = np.zeros(N * C + 8, dtype)
        o = buf[offset : offset + N * C].reshape(N, C)
        res = [fs.softmax(x, out=o).copy(), fs.log_softmax(x, out=o).copy()]
        for target, kw in options:
            loss, grad = fs.cross_entropy(x, target, return_grad=True, out=o, **kw)
            res += [np.asarray(loss), grad.copy()]
        xi = x.copy()
        res.append(fs.softmax(xi, out=xi))
        return res

    staged = _streamed_as_stored(outputs)
    assert_softmax_close(staged[0], ref.softmax(x), dtype)
    for k, (target, kw) in enumerate(options):
        loss_ref, grad_ref = ref.cross_entropy(x, target, return_grad=True, **kw)
        assert_value_close(staged[2 + 2 * k], loss_ref, dtype, "loss")
        assert_grad_close(staged[3 + 2 * k], grad_ref, dtype, grad_row_factor(x.shape, target, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [257, 384])
def test_groups_streamed_into_strided_output(request, rng, dtype, C):
    """Groups whose output is not C-contiguous (no staging block) stream rows of 1024 bytes
    and more row by row (driver.h): the same bits as normal stores, for softmax (its group_row
    hook, ops.h) and log_softmax, special rows included."""
    from fastsoftmax import _kernels

    request.addfinalizer(lambda: _kernels.set_stream_min_bytes(0))
    N = 4 * 3 + 1
    x, _ = _with_specials(rng, (rng.standard_normal((N, C)) * 3).astype(dtype))

    def outputs():
        o = np.full((N, C + 7), 7, dtype)[:, 3 : C + 3]
        return [fs.softmax(x, out=o).copy(), fs.log_softmax(x, out=o).copy()]

    streamed = _streamed_as_stored(outputs)
    assert_softmax_close(streamed[0], ref.softmax(x), dtype)
    assert_value_close(streamed[1], ref.log_softmax(x), dtype, "log_softmax")
