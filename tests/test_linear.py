"""fs.linear_cross_entropy and LinearCrossEntropyLoss against the unfused composition in float64
(reference.linear_cross_entropy: NumPy matmul + reference.cross_entropy), within the accuracy
bars plus the matrix products' rounding allowance of reference.TOLERANCES."""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import linear, reference

from conftest import assert_linear_close, fd_grad, kernel_threads

TOL = reference.TOLERANCES

OPTIONS = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(weight=True, ignore_index=2),
    dict(weight=True, label_smoothing=0.2, reduction="mean"),
    dict(label_smoothing=0.1, z_loss=1e-2, ignore_index=-100, ignore=True),
    dict(z_loss=0.05, reduction="sum", weight=True),
]


def _problem(dtype, seed, n=37, d=13, c=29, bias=True, weight=False, ignore=False, ignore_index=-100):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(dtype)
    w = (rng.standard_normal((c, d)) / np.sqrt(d)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype) if bias else None
    t = rng.integers(0, c, n)
    if ignore or 0 <= ignore_index < c:
        t[rng.random(n) < 0.3] = ignore_index
    cw = rng.uniform(0.5, 2.0, c) if weight else None
    return x, w, b, t, cw


def _options(opts, cw):
    kw = {k: v for k, v in opts.items() if k != "ignore"}
    if kw.get("weight"):
        kw["weight"] = cw
    else:
        kw.pop("weight", None)
    return kw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [1, 8, None])
@pytest.mark.parametrize("k", range(len(OPTIONS)))
def test_against_the_unfused_composition(isa, dtype, chunk, k):
    opts = OPTIONS[k]
    x, w, b, t, cw = _problem(dtype, k, weight=bool(opts.get("weight")), ignore=opts.get("ignore", False),
                              ignore_index=opts.get("ignore_index", -100), bias=k % 2 == 0)
    kw = _options(opts, cw)
    got = fs.linear_cross_entropy(x, w, t, bias=b, chunk_size=chunk, return_grad=True, **kw)
    want = reference.linear_cross_entropy(x, w, t, bias=b, return_grad=True, **kw)
    assert_linear_close(dtype, got, want, x, w, b, t, kw)
    assert fs.linear_cross_entropy(x, w, t, bias=b, chunk_size=chunk, **kw).tobytes() == got[0].tobytes()


def _use_blas(monkeypatch, which):
    """Make linear._products take one BLAS: NumPy's own through ctypes ("cblas"), SciPy's
    ("scipy") or NumPy's matmul ("matmul"); skip where that one is not here."""
    if which == "cblas":
        if linear._numpy_gemm(np.float32) is None or linear._numpy_gemm(np.float64) is None:
            pytest.skip("NumPy's BLAS is not one whose cblas_?gemm linear.py finds")
        return linear._CblasProducts
    monkeypatch.setattr(linear, "_numpy_gemm", lambda dtype: None)
    if which == "scipy":
        pytest.importorskip("scipy")
        return linear._ScipyProducts
    monkeypatch.setattr(linear, "_gemm", lambda dtype: None)
    return linear._NumpyProducts


BLAS = ["cblas", "scipy", "matmul"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [1, 5, 37, 100])
@pytest.mark.parametrize("which", BLAS)
def test_chunk_sizes_with_each_blas(monkeypatch, dtype, chunk, which):
    """Chunks of 1 row, of a size that does not divide N, of N and beyond; with each BLAS the
    classifier's gradient can be accumulated by (beta = 1, or a temporary added)."""
    x, w, b, t, _ = _problem(dtype, 11)
    want = reference.linear_cross_entropy(x, w, t, bias=b, return_grad=True)
    kind = _use_blas(monkeypatch, which)
    assert isinstance(linear._products(w, dtype), kind)
    got = fs.linear_cross_entropy(x, w, t, bias=b, chunk_size=chunk, return_grad=True)
    assert_linear_close(dtype, got, want, x, w, b, t, {})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("which", ["cblas", "scipy"])
def test_blas_products_write_in_place(monkeypatch, dtype, order, which):
    """The three products write into the arrays given (no copy of an operand or a result), for
    a classifier in either memory order; the classifier's gradient adds the second product."""
    kind = _use_blas(monkeypatch, which)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 9)).astype(dtype)
    w = np.asarray(rng.standard_normal((50, 9)), dtype=dtype, order=order)
    g = rng.standard_normal((64, 50)).astype(dtype)
    p = linear._products(w, dtype)
    assert isinstance(p, kind)
    logits, d_x, d_w = np.empty((64, 50), dtype), np.empty((64, 9), dtype), np.empty((50, 9), dtype)
    p.logits(x, logits)
    p.d_inputs(g, d_x)
    p.add_d_classifier(d_w, g[:30], x[:30], True)
    p.add_d_classifier(d_w, g[30:], x[30:], False)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logits, x.astype(np.float64) @ w.T, **tol)
    np.testing.assert_allclose(d_x, g.astype(np.float64) @ w, **tol)
    np.testing.assert_allclose(d_w, g.T.astype(np.float64) @ x, **tol)


def test_numpy_blas_is_found_in_numpy_wheels():
    """NumPy's wheels bundle OpenBLAS: there, the products take it (the library of matmul)."""
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    if blas.get("name") != "scipy-openblas":
        pytest.skip("NumPy was not built with the OpenBLAS of its wheels")
    for dtype in (np.float32, np.float64):
        found = linear._numpy_gemm(dtype)
        assert found is not None and found[1]  # 64-bit integers (scipy-openblas64)


def test_a_blas_that_answers_wrongly_is_not_used():
    """The small product linear._gemm_answers checks catches a function that is not ?gemm."""
    def wrong(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        pass  # leaves c as it was
    assert not linear._gemm_answers(wrong, np.float32)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_row_ignored(reduction):
    x, w, b, t, _ = _problem(np.float64, 3)
    t[:] = -100
    loss, g = fs.linear_cross_entropy(x, w, t, bias=b, reduction=reduction, return_grad=True, chunk_size=6)
    ref_loss, _ = reference.linear_cross_entropy(x, w, t, bias=b, reduction=reduction, return_grad=True)
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(ref_loss))
    if reduction != "mean":
        assert np.all(loss == 0)
    for a in g:
        assert np.all(a == 0)


def test_finite_differences():
    """float64: the returned gradients against central differences of the loss itself."""
    x, w, b, t, cw = _problem(np.float64, 4, n=6, d=4, c=5, weight=True)
    kw = dict(weight=cw, label_smoothing=0.1, z_loss=0.02)
    _, g = fs.linear_cross_entropy(x, w, t, bias=b, return_grad=True, chunk_size=4, **kw)
    for got, arg in ((g.inputs, "x"), (g.classifier, "w"), (g.bias, "b")):
        def f(v, arg=arg):
            args = dict(x=x, w=w, b=b)
            args[arg] = v
            return float(fs.linear_cross_entropy(args["x"], args["w"], t, bias=args["b"], chunk_size=4, **kw))
        fd = fd_grad(f, {"x": x, "w": w, "b": b}[arg])
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_layouts_and_empty_batches():
    """Non-contiguous inputs and classifier (strided, Fortran order) give the contiguous result;
    no rows gives a NaN mean and zero gradients; no classes takes only ignored rows."""
    x, w, b, t, _ = _problem(np.float64, 5)
    want = fs.linear_cross_entropy(x, w, t, bias=b, return_grad=True)
    xs = np.zeros((x.shape[0], 2 * x.shape[1]))[:, ::2]
    xs[...] = x
    got = fs.linear_cross_entropy(xs, w, t, bias=b[::-1][::-1], return_grad=True)
    assert got[0] == want[0]  # the strided inputs are copied contiguous: the same products
    for a, bb in zip(got[1], want[1]):
        np.testing.assert_array_equal(a, bb)
    # a Fortran-ordered classifier goes to BLAS transposed: other roundings, the same bars
    ref = reference.linear_cross_entropy(x, w, t, bias=b, return_grad=True)
    assert_linear_close(np.float64, fs.linear_cross_entropy(xs, np.asfortranarray(w), t, bias=b, return_grad=True), ref,
           x, w, b, t, {})
    loss, g = fs.linear_cross_entropy(np.zeros((0, 13)), w, np.zeros(0, np.int64), bias=b, return_grad=True)
    assert np.isnan(loss) and g.inputs.shape == (0, 13) and np.all(g.classifier == 0) and np.all(g.bias == 0)
    loss = fs.linear_cross_entropy(x, np.zeros((0, 13)), np.full(x.shape[0], -100), reduction="sum")
    assert loss == 0


def test_bitwise_on_every_thread_count():
    x, w, b, t, _ = _problem(np.float32, 6, n=300, c=700, d=16)
    results = []
    for n in (1, 2, 3):
        with kernel_threads(n, (1, 0)):
            loss, g = fs.linear_cross_entropy(x, w, t, bias=b, return_grad=True, label_smoothing=0.1)
            results.append([loss, *g])
    for other in results[1:]:
        for a, bb in zip(results[0], other):
            assert np.asarray(a).tobytes() == np.asarray(bb).tobytes()


def test_default_chunk_size():
    """A fixed function of N, C and the dtype: N / 17 rows rounded up, within logits of 32 MiB and
    256 MiB, evened out (as many chunks, of equal sizes but the last)."""
    assert linear.default_chunk_size(8192, 32000, np.float32) == 482  # 17 chunks of 58.8 MiB
    assert linear.default_chunk_size(16384, 128256, np.float32) == 512  # 32 chunks under 256 MiB
    assert linear.default_chunk_size(4096, 1000, np.float32) == 4096  # 32 MiB hold them all
    assert linear.default_chunk_size(10, 5, np.float64) == 10
    assert linear.default_chunk_size(100_000, 10, np.float32) == 100_000
    assert linear.default_chunk_size(8, 10**9, np.float32) == 1  # a row beyond the budget: one row
    assert linear.default_chunk_size(0, 10, np.float32) == 1
    for n in (1, 2, 999, 8193, 100_001):
        for c in (7, 32000, 128256):
            chunk = linear.default_chunk_size(n, c, np.float32)
            most = max(1, min(n, max(-(-n // 17), -(-(32 << 20) // (c * 4))), (256 << 20) // (c * 4)))
            assert chunk <= most and -(-n // chunk) == -(-n // most)  # no more chunks than needed


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(inputs=np.zeros((4, 3))), ValueError, "classifier must have shape"),
    (dict(bias=np.zeros(4)), ValueError, "bias must have shape"),
    (dict(target=np.zeros(5, np.int64)), ValueError, "shape"),
    (dict(target=np.array([0, 1, 9, 2])), IndexError, "target 9 at row 2"),
    (dict(target=np.zeros(4)), TypeError, "integer class indices"),
    (dict(inputs=np.zeros((4, 2), np.float32)), TypeError, "one dtype"),
    (dict(inputs=np.zeros((4, 2), np.int64)), TypeError, "float32 or float64"),
    (dict(inputs=np.zeros(8)), ValueError, "2-D"),
    (dict(weight=np.ones(3)), ValueError, "weight must have shape"),
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(chunk_size=1.5), TypeError, "chunk_size"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(label_smoothing=2.0), ValueError, "label_smoothing"),
    (dict(ignore_index=2**70), ValueError, "int64"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(inputs=np.zeros((4, 2)), classifier=np.zeros((6, 2)), target=np.array([0, 1, 5, 2]),
                bias=np.zeros(6))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fs.linear_cross_entropy(args.pop("inputs"), args.pop("classifier"), args.pop("target"), **args)


def test_loss_object():
    x, w, b, t, cw = _problem(np.float64, 7, weight=True)
    fn = fs.LinearCrossEntropyLoss(weight=cw, label_smoothing=0.1, chunk_size=10)
    assert repr(fn).startswith("LinearCrossEntropyLoss(weight=array(")
    loss = fn(x, w, t, b)
    want_loss, want = fs.linear_cross_entropy(x, w, t, bias=b, weight=cw, label_smoothing=0.1, chunk_size=10,
                                              return_grad=True)
    assert loss == want_loss
    g = fn.backward(2.0)
    for a, bb in zip(g, want):
        np.testing.assert_array_equal(a, 2.0 * bb)
    with pytest.raises(RuntimeError):
        fn.backward()
    # one factor per row: the gradient of sum_n s_n loss_n
    fn = fs.LinearCrossEntropyLoss(reduction="none")
    rows = fn(x, w, t, b)
    s = np.random.default_rng(0).random(rows.shape)
    g = fn.backward(s)
    _, ref_g = reference.linear_cross_entropy(x, w, t, bias=b, reduction="none", return_grad=True)
    logits = x @ w.T + b
    _, ref_rows_g = reference.cross_entropy(logits, t, reduction="none", return_grad=True)
    gs = ref_rows_g * s[:, None]
    np.testing.assert_allclose(g.inputs, gs @ w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.classifier, gs.T @ x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.bias, gs.sum(axis=0), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError):
        fs.LinearCrossEntropyLoss(reduction="avg")
    with pytest.raises(TypeError):
        fs.LinearCrossEntropyLoss(chunk_size="8")
