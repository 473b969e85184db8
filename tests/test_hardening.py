"""Regressions of the hardening issue's reproducers: array arguments that share memory with
``out=``, integers too large for the options, results independent of the thread count for long
rows, a refused thread creation, and the z-loss gradient of a huge log-sum-exp."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastsoftmax as fs
from conftest import kernel_threads


# ---------------------------------------------------------------- arguments that alias out=

def test_class_weight_inside_out():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8))
    t = rng.integers(0, 8, 64)
    buf = np.abs(rng.standard_normal((64, 8))) + 0.5
    expected = fs.cross_entropy(x, t, weight=buf[32].copy(), return_grad=True)
    got = fs.cross_entropy(x, t, weight=buf[32], return_grad=True, out=buf)
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])


def test_probability_target_and_weight_inside_out():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 9))
    buf = rng.random((40, 9))
    target = buf.copy()
    target /= target.sum(axis=1, keepdims=True)
    buf[:] = target
    w = np.abs(rng.standard_normal(9)) + 0.5
    buf[7] = w
    expected = fs.cross_entropy(x, buf.copy(), weight=buf[7].copy(), return_grad=True)
    got = fs.cross_entropy(x, buf, weight=buf[7], return_grad=True, out=buf)
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])


def test_index_targets_inside_out():
    """int64 targets viewed from out's own bytes (as odd as it gets)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 4))
    buf = np.zeros((16, 4))
    t = buf.view(np.int64)[:, 0]
    t[:] = rng.integers(0, 4, 16)
    expected = fs.cross_entropy(x, t.copy(), return_grad=True)
    got = fs.cross_entropy(x, t, return_grad=True, out=buf)
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize("seed", range(5))
def test_bce_pos_weight_and_weight_inside_out(seed):
    """300 x 3000 float64: the threads write out while others still read pos_weight."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 3000))
    t = (rng.random((300, 3000)) < 0.3).astype(float)
    buf = np.abs(rng.standard_normal((300, 3000))) + 0.5
    expected = fs.binary_cross_entropy_with_logits(x, t, pos_weight=buf[150].copy(), weight=buf[3:4].copy(),
                                                   return_grad=True)
    got = fs.binary_cross_entropy_with_logits(x, t, pos_weight=buf[150], weight=buf[3:4], return_grad=True,
                                              out=buf)
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])


def test_backward_grad_output_inside_out():
    rng = np.random.default_rng(3)
    p = fs.softmax(rng.standard_normal((50, 30)))
    buf = rng.standard_normal((50, 30))
    g = buf.copy()
    expected = fs.softmax_backward(p, g)
    np.testing.assert_array_equal(fs.softmax_backward(p, buf, out=buf), expected)  # the same view: in place
    buf2 = np.zeros((51, 30))
    buf2[1:] = g
    # grad_output shifted by one row against out: overlapping, not the same view
    np.testing.assert_array_equal(fs.softmax_backward(p, buf2[1:], out=buf2[:-1]), expected)


# ---------------------------------------------------------------- integers too large

@pytest.mark.parametrize("kwargs,exc", [
    (dict(ignore_index=2**70), ValueError),
    (dict(ignore_index=-2**63 - 1), ValueError),
    (dict(ignore_index=np.uint64(2**64 - 1)), ValueError),
    (dict(ignore_index=True), TypeError),
    (dict(label_smoothing=10**400), ValueError),
    (dict(z_loss=10**400), ValueError),
    (dict(ignore_index=2**63), ValueError),
    (dict(ignore_index=1.5), TypeError),
    (dict(ignore_index=None), TypeError),
    (dict(ignore_index="3"), TypeError),
    (dict(weight=np.ones(5, complex)), TypeError),
    (dict(weight=np.ones(5, bool)), TypeError),
    (dict(weight=np.array([1, 1, 1, 1, "a"], object)), TypeError),
    (dict(weight=np.array(list("abcde"))), TypeError),
])
def test_options_out_of_range(kwargs, exc):
    """The function, the loss object and the reference refuse the same options alike."""
    from fastsoftmax import reference

    x = np.zeros((4, 5))
    t = np.array([0, 1, 2, 3])
    with pytest.raises(exc):
        fs.cross_entropy(x, t, **kwargs)
    with pytest.raises(exc):
        fs.CrossEntropyLoss(**kwargs)
    with pytest.raises(exc):  # the reference has the same error rules
        reference.cross_entropy(x, t, **kwargs)


def test_misaligned_and_huge_integer_targets():
    """int64 targets in a view of bytes at an odd address are taken (copied aligned); a uint64
    target beyond int64 is out of range like any other (IndexError naming it and its row)."""
    x = np.random.default_rng(0).standard_normal((5, 7))
    t = np.array([0, 6, 3, 2, 1])
    buf = np.zeros(t.nbytes + 1, np.uint8)
    odd = np.frombuffer(buf.data, np.int64, count=5, offset=1)
    odd[...] = t
    assert not odd.flags.aligned
    assert fs.cross_entropy(x, odd) == fs.cross_entropy(x, t)
    with pytest.raises(IndexError, match=r"18446744073709551615 at row 3"):
        fs.cross_entropy(x, np.array([0, 1, 2, 2**64 - 1, 0], np.uint64))


def test_ignore_index_at_the_int64_ends():
    x = np.zeros((3, 5))
    for ii in (2**63 - 1, -2**63):
        assert fs.cross_entropy(x, np.array([0, 1, ii]), ignore_index=ii) == pytest.approx(np.log(5))


def test_set_num_threads_types():
    try:
        with pytest.raises(TypeError):
            fs.set_num_threads(1.5)
        with pytest.raises(TypeError):
            fs.set_num_threads("2")
        with pytest.raises(ValueError):
            fs.set_num_threads(-1)
        fs.set_num_threads(2**40)  # more than the pool has: its ceiling
        assert 1 <= fs.get_num_threads() <= 256
        fs.set_num_threads(np.int64(2))
        assert fs.get_num_threads() in (1, 2)
    finally:
        fs.set_num_threads(0)


# ---------------------------------------------------------------- thread counts

@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_rows_bitwise_on_every_thread_count(seed, dtype):
    """Two rows of 300,001: fewer rows than threads, so a row is split over the threads."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, 300_001)) * 3).astype(dtype)
    t = rng.integers(0, 300_001, 2)
    results = []
    for n in (1, 2, 3):
        with kernel_threads(n):
            results.append((fs.softmax(x), fs.log_softmax(x), fs.logsumexp(x),
                            *fs.cross_entropy(x, t, return_grad=True, label_smoothing=0.1)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


@pytest.mark.parametrize("classes", [3, 5, 13, 17, 33])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_short_rows_bitwise_on_every_thread_count(isa, classes, dtype):
    """out= the logits, short rows (the tile paths; in place the last tile of a run is gathered,
    not dense): the same bits on 1, 2 and 3 threads, NaN rows included."""
    rng = np.random.default_rng(classes)
    x0 = (rng.standard_normal((20_011, classes)) * 3).astype(dtype)
    x0[rng.random(x0.shape) < 0.001] = np.nan
    t = rng.integers(0, classes, 20_011)
    results = []
    for n in (1, 2, 3):
        with kernel_threads(n, (1, 0)):  # threads even for small calls
            a, b = x0.copy(), x0.copy()
            loss, _ = fs.cross_entropy(a, t, return_grad=True, out=a)
            fs.softmax(b, out=b)
            results.append((loss, a, b))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


# ---------------------------------------------------------------- refused thread creation

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and the pool's pthreads: Linux")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer reserves terabytes of address space: no RLIMIT_AS fits it")
def test_refused_thread_creation_falls_back_to_the_caller():
    """Under an address-space limit that leaves no room for a helper's stack, a call on 8
    threads runs on the caller alone, with the same result, instead of ending the process."""
    code = textwrap.dedent("""
        import resource
        import numpy as np
        import fastsoftmax as fs
        x = np.random.default_rng(0).standard_normal((1, 3_000_000)).astype(np.float32)
        out = np.empty_like(x)
        expected = fs.softmax(x)  # one thread is enough for the warm-up of NumPy and the kernels
        with open("/proc/self/statm") as f:
            vm = int(f.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (vm + (4 << 20), hard))  # less than a helper's stack
        fs.set_num_threads(8)
        fs.softmax(x, out=out)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        assert out.tobytes() == expected.tobytes()
        print("ok")
    """)
    env = {"FASTSOFTMAX_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(env, PYTHONPATH=":".join(p for p in sys.path if p)))
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


# ---------------------------------------------------------------- z-loss of a huge log-sum-exp

@pytest.mark.parametrize("probability_target", [False, True])
@pytest.mark.parametrize("classes", [3, 17, 100, 3000, 70_000])
def test_z_loss_gradient_without_zero_times_infinity(classes, probability_target):
    """lse = 1e30 and z = 1e10: the gradient's multiplier 2 z lse = 2e40 is beyond float32;
    the classes of probability 0 get 0 (not 0 * inf = NaN), the one of probability 1 gets inf
    (2e40 rounded to float32)."""
    x = np.full((1, classes), 2.0, np.float32)
    x[0, 0] = 30.0
    x[0, 1] = 1e30
    target = np.array([1])
    if probability_target:
        target = np.zeros((1, classes), np.float32)
        target[0, 1] = 1.0
    loss, g = fs.cross_entropy(x, target, z_loss=1e10, return_grad=True)
    assert loss == np.inf
    assert g[0, 1] == np.inf
    np.testing.assert_array_equal(np.delete(g[0], 1), 0.0)


@pytest.mark.parametrize("probability_target", [False, True])
@pytest.mark.parametrize("classes", [9, 62, 300])
def test_z_loss_multiplier_beyond_float32_whose_share_is_not(isa, classes, probability_target):
    """Four logits at float32's largest value and z = 2: the multiplier 2 z lse = 1.4e39 is beyond
    float32, its share a / s = 3.4e38 (s = 4) is not; the classes of probability 0 get 0, the
    four others the reference's value (not 0 * inf = NaN). Found by the long fuzz run."""
    from fastsoftmax import reference

    big = np.finfo(np.float32).max
    x = np.linspace(-3, 3, classes).astype(np.float32)[None, :]
    x[0, [0, 4, 5, 6]] = big
    target = np.array([1])
    if probability_target:
        target = np.zeros((1, classes), np.float32)
        target[0, 1] = 1.0
    _, g = fs.cross_entropy(x, target, z_loss=2.0, return_grad=True)
    _, want = reference.cross_entropy(x, target, z_loss=2.0, return_grad=True)
    assert not np.isnan(g).any()
    others = np.ones(classes, bool)
    others[[0, 4, 5, 6]] = False
    np.testing.assert_allclose(g[0, others], want[0, others], atol=1e-6)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(g[0, ~others], want[0, ~others].astype(np.float32), rtol=1e-5)


# ---------------------------------------------------------------- interrupts

def test_ctrl_c_during_a_long_call_finds_the_result_whole():
    """SIGINT while the kernel runs (GIL released): KeyboardInterrupt comes after the call,
    whose out= is then whole."""
    code = textwrap.dedent("""
        import os, signal, threading, time
        import numpy as np
        import fastsoftmax as fs
        fs.set_num_threads(1)
        x = np.random.default_rng(0).standard_normal((1, 30_000_000)).astype(np.float32)
        expected = fs.softmax(x)
        out = np.zeros_like(x)
        start = time.perf_counter()
        fs.softmax(x, out=out)
        took = time.perf_counter() - start
        out[:] = 0
        threading.Timer(took / 4, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            fs.softmax(x, out=out)
            time.sleep(took)  # the interrupt arrives at the latest here
        except KeyboardInterrupt:
            pass
        assert np.array_equal(out, expected)
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(p for p in sys.path if p),
                            # a sanitized build's runtime, when the suite runs under one (tools/sanitize)
                            **{k: v for k, v in os.environ.items() if k in ("LD_PRELOAD", "ASAN_OPTIONS")}})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


# ---------------------------------------------------------------- the reference's error rules

@pytest.mark.parametrize("return_grad", [False, True])
def test_reference_smoothing_without_classes(return_grad):
    """No classes, every row ignored, label smoothing: the kernel's NaN mean, not a
    ZeroDivisionError in the reference."""
    from fastsoftmax import reference

    x, t = np.zeros((2, 0)), np.array([-100, -100])
    got = fs.cross_entropy(x, t, label_smoothing=0.1, return_grad=return_grad)
    ref = reference.cross_entropy(x, t, label_smoothing=0.1, return_grad=return_grad)
    if return_grad:
        (got, g), (ref, rg) = got, ref
        assert g.shape == rg.shape == (2, 0)
    assert np.isnan(got) and np.isnan(ref)


# ---------------------------------------------------------------- overflow on the way to a result in range

def test_bce_float32_sums_of_losses_near_the_float_range():
    """Element losses near the float32 maximum: their mean is in range (the sum is formed in
    double, not in float32 partial sums), and a weight < 1 brings pos_weight * t * |x| beyond the
    range back into it."""
    from fastsoftmax import reference

    x = np.full(70, 3e38, np.float32)
    x[::2] = -3e38
    t = np.zeros(70, np.float32)
    t[::2] = 1.0
    loss = fs.binary_cross_entropy_with_logits(x, t, reduction="mean")
    assert np.isfinite(loss) and loss == pytest.approx(3e38, rel=1e-6)
    x = np.full(9, -3e38, np.float32)
    t = np.full(9, 0.9, np.float32)
    kw = dict(weight=np.float32(0.25), pos_weight=np.full(9, 2.0, np.float32))
    got = fs.binary_cross_entropy_with_logits(x, t, reduction="none", **kw)
    want = reference.binary_cross_entropy_with_logits(x, t, reduction="none", **kw)
    np.testing.assert_allclose(got, want, rtol=2e-6)
    assert np.all(np.isfinite(got))
    # an element loss beyond float32's range is inf, as in PyTorch
    assert fs.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=np.float32(2))[0] == np.inf


def test_reference_bce_without_intermediate_overflow():
    """float64 x = -1.7e308 with pos_weight 2: the loss 1.7e308 * 2 * t (t = 0.4) is in range."""
    from fastsoftmax import reference

    x, t = np.array([-1.7e308]), np.array([0.4])
    want = 1.7e308 * 0.8
    assert reference.binary_cross_entropy_with_logits(x, t, pos_weight=2.0, reduction="sum") == pytest.approx(want)
    assert fs.binary_cross_entropy_with_logits(x, t, pos_weight=2.0, reduction="sum") == pytest.approx(want)


def test_reference_z_loss_gradient_without_zero_times_infinity():
    """float64 z-loss with lse = 1e300 and z = 1e10: the classes of probability 0 get 0 in the
    reference too (its term is (2 z w p) lse, not (2 z w lse) p = inf * 0)."""
    from fastsoftmax import reference

    x = np.array([[1e300, 0.0, -5.0]])
    _, g = reference.cross_entropy(x, np.array([1]), z_loss=1e10, return_grad=True)
    assert g[0, 0] == np.inf and g[0, 1] == -1.0 and g[0, 2] == 0.0


# ---------------------------------------------------------------- sampled losses on valid edge inputs

@pytest.mark.parametrize("loss", [fs.sampled_softmax_loss, fs.nce_loss])
def test_sampled_losses_of_no_examples(loss):
    """N = 0: the mean is NaN (as cross_entropy's), the gradients are empty."""
    w = np.random.default_rng(0).standard_normal((51, 24))
    y, x = np.zeros((0, 1), np.int64), np.zeros((0, 24))
    value, g = loss(w, np.zeros(51), y, x, 36, 51, rng=1, return_grad=True)
    assert np.isnan(value)
    assert g.inputs.shape == (0, 24) and g.weights.shape == (36, 24) and np.all(g.weights == 0)
    assert loss(w, None, y, x, 36, 51, rng=1, reduction="sum") == 0.0


@pytest.mark.parametrize("loss", [fs.sampled_softmax_loss, fs.nce_loss])
def test_sampled_losses_of_unusual_layouts(loss):
    """A (C, 1) weight with a negative column stride (no column stride matters for one column),
    and inputs and labels in views of bytes at odd addresses, give the contiguous result."""
    rng = np.random.default_rng(1)
    C, n = 40, 9
    w = rng.standard_normal((C, 1))
    x = rng.standard_normal((n, 1))
    y = rng.integers(0, C, (n, 1))
    sv = fs.sampling.log_uniform_candidate_sampler(y, 1, 7, True, C, rng=3)
    want = loss(w, None, y, x, 7, C, sampled_values=sv, return_grad=True)
    w_neg = np.lib.stride_tricks.as_strided(w, strides=(w.strides[0], -8))
    odd = []
    for a in (x, y):
        buf = np.zeros(a.nbytes + 1, np.uint8)
        v = np.frombuffer(buf.data, a.dtype, count=a.size, offset=1).reshape(a.shape)
        v[...] = a
        odd.append(v)
    got = loss(w_neg, None, odd[1], odd[0], 7, C, sampled_values=sv, return_grad=True)
    assert got[0] == want[0]
    for a, b in zip(got[1], want[1]):
        np.testing.assert_array_equal(a, b)
