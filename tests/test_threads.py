"""The thread pool (src/pool.c): results that do not depend on the thread count, calls
from several Python threads at once, busy cores, and helper threads that cannot be created.

Every kernel's items are independent or merged in a fixed order (a long row is reduced in
pieces whose size depends on the row only), so the results are bitwise the same for every
thread count; these tests compare bytes, not tolerances.  ``_kernels.set_tuning(1, 0)``
lets every problem take all the threads, so that the small inputs here are threaded.
"""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _kernels

THREAD_COUNTS = (1, 2, 3, 4, 8)

pytestmark = pytest.mark.skipif(not _kernels.threads_enabled(), reason="built without threads")


def _inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    n, c = shape
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.integers(0, c, n)
    t[rng.random(n) < 0.1] = -100
    w = rng.uniform(0.2, 2.0, c).astype(dtype)
    q = rng.random(shape)
    q = (q / q.sum(axis=1, keepdims=True)).astype(dtype)
    y = rng.random(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    return x, t, w, q, y, g


def _every_kernel(x, t, w, q, y, g):
    """{name: result} of every public kernel on these inputs."""
    p = fs.softmax(x)
    lp = fs.log_softmax(x)
    out = {
        "softmax": p,
        "log_softmax": lp,
        "logsumexp": fs.logsumexp(x),
        "softmax axis 0": fs.softmax(x, axis=0),
        "logsumexp axis 0": fs.logsumexp(x, axis=0),
        "softmax strided": fs.softmax(x[:, ::2]),
        "ce loss": fs.cross_entropy(x, t),
        "ce loss+grad": fs.cross_entropy(x, t, return_grad=True),
        "ce options": fs.cross_entropy(x, t, weight=w, label_smoothing=0.1, z_loss=1e-3,
                                       reduction="sum", return_grad=True),
        "ce none": fs.cross_entropy(x, t, reduction="none", return_grad=True),
        "ce probabilities": fs.cross_entropy(x, q, label_smoothing=0.05, return_grad=True),
        "ce axis 0": fs.cross_entropy(np.ascontiguousarray(x.T), t, axis=0, return_grad=True),
        "sigmoid": fs.sigmoid(x),
        "bce": fs.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=w[::-1].copy(),
                                                   return_grad=True),
    }
    if x.dtype != np.float16:  # the backward functions take float32 and float64
        out["softmax_backward"] = fs.softmax_backward(p, g)
        out["log_softmax_backward"] = fs.log_softmax_backward(lp, g)
    return out


def _as_bytes(result):
    if isinstance(result, tuple):
        return tuple(np.asarray(r).tobytes() for r in result)
    return np.asarray(result).tobytes()


@pytest.fixture
def every_problem_threaded():
    _kernels.set_tuning(1, 0)
    try:
        yield
    finally:
        fs.set_num_threads(0)
        _kernels.set_tuning(0, 0)


# A tile of short rows, the row path, long rows reduced in pieces (one row per thread or
# fewer rows than threads), and float16 (converted in blocks) on the row path.
SHAPES = [((1001, 7), np.float32), ((257, 77), np.float64), ((67, 3001), np.float32),
          ((5, 70001), np.float64), ((2, 300001), np.float32), ((129, 1000), np.float16)]


@pytest.mark.parametrize("shape,dtype", SHAPES, ids=lambda v: str(v) if isinstance(v, tuple) else np.dtype(v).name)
def test_every_kernel_is_bitwise_the_same_on_1_2_3_4_8_threads(shape, dtype, every_problem_threaded):
    args = _inputs(shape, dtype, seed=shape[0] * 7 + shape[1])
    results = {}
    for nt in THREAD_COUNTS:
        fs.set_num_threads(nt)
        results[nt] = {k: _as_bytes(v) for k, v in _every_kernel(*args).items()}
    for nt in THREAD_COUNTS[1:]:
        differ = [k for k in results[1] if results[nt][k] != results[1][k]]
        assert not differ, "%d threads differ from 1 thread in %s" % (nt, differ)


@pytest.mark.parametrize("seed", range(12))
def test_split_long_rows_do_not_depend_on_the_thread_count(seed):
    """2 x 300001 float32: each row is reduced in fixed pieces, merged in piece order, whether
    the pieces run on one thread or several (the default thresholds split such rows)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, 300_001)) * 3).astype(np.float32)
    t = rng.integers(0, 300_001, 2)
    results = []
    try:
        for nt in THREAD_COUNTS:
            fs.set_num_threads(nt)
            results.append((fs.softmax(x).tobytes(), fs.log_softmax(x).tobytes(), fs.logsumexp(x).tobytes(),
                            _as_bytes(fs.cross_entropy(x, t, return_grad=True)),
                            _as_bytes(fs.cross_entropy(x, t, label_smoothing=0.1))))
    finally:
        fs.set_num_threads(0)
    assert all(r == results[0] for r in results[1:])


def test_python_threads_calling_while_others_change_the_thread_count(every_problem_threaded):
    """Four Python threads call kernels while a fifth keeps changing the (process-wide)
    thread count: every result equals the one-thread result, bit for bit."""
    rng = np.random.default_rng(5)
    problems = []
    for shape in [(513, 10), (64, 3001), (2, 150_001), (300, 257)]:
        x = (rng.standard_normal(shape) * 2).astype(np.float32)
        t = rng.integers(0, shape[1], shape[0])
        problems.append((x, t))

    def run(x, t):
        return _as_bytes(fs.cross_entropy(x, t, return_grad=True)) + (fs.softmax(x).tobytes(),)

    fs.set_num_threads(1)
    expected = [run(x, t) for x, t in problems]
    stop = threading.Event()
    failures, errors = [], []

    def caller(k):
        try:
            for _ in range(30):
                if run(*problems[k]) != expected[k]:
                    failures.append(k)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def changer():
        n = 0
        while not stop.is_set():
            fs.set_num_threads(1 + n % 4)
            n += 1

    ch = threading.Thread(target=changer)
    ch.start()
    callers = [threading.Thread(target=caller, args=(k,)) for k in range(len(problems))]
    for th in callers:
        th.start()
    for th in callers:
        th.join()
    stop.set()
    ch.join()
    assert not errors
    assert not failures


_SPIN = "import os, sys\nwhile os.getppid() == int(sys.argv[1]):\n    pass"


def test_a_call_next_to_processes_that_spin_on_every_core():
    """Busy loops in other processes on every core: threaded calls finish, with the
    one-thread result (the caller takes the items no helper has started)."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((512, 8000)) * 2).astype(np.float32)
    t = rng.integers(0, 8000, 512)
    fs.set_num_threads(1)
    expected = _as_bytes(fs.cross_entropy(x, t, return_grad=True))
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    spinners = [subprocess.Popen([sys.executable, "-c", _SPIN, str(os.getpid())]) for _ in range(ncpu)]
    try:
        for nt in (2, 4):
            fs.set_num_threads(nt)
            for _ in range(5):
                assert _as_bytes(fs.cross_entropy(x, t, return_grad=True)) == expected
    finally:
        fs.set_num_threads(0)
        for sp in spinners:
            sp.kill()
            sp.wait()


def _run_python(code):
    env = dict(os.environ)
    for var in ("FASTSOFTMAX_NUM_THREADS", "OMP_NUM_THREADS"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.parametrize("limit", [0, 1])
def test_helper_threads_that_cannot_be_created(limit):
    """In a fresh process whose pool may create only `limit` helpers (as when the system
    refuses pthread_create), 4-thread calls run on 1 + limit threads with the same results."""
    r = _run_python(f"""
        import os
        import numpy as np
        import fastsoftmax as fs
        from fastsoftmax import _kernels

        def threads():
            return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None

        rng = np.random.default_rng(3)
        x = (rng.standard_normal((301, 5000)) * 2).astype(np.float32)
        t = rng.integers(0, 5000, 301)
        _kernels.limit_helpers({limit})
        _kernels.set_tuning(1, 0)
        before = threads()
        fs.set_num_threads(4)
        got = [fs.cross_entropy(x, t, return_grad=True) for _ in range(3)]
        after = threads()
        fs.set_num_threads(1)
        want = fs.cross_entropy(x, t, return_grad=True)
        for loss, grad in got:
            assert loss.tobytes() == want[0].tobytes() and grad.tobytes() == want[1].tobytes()
        if before is not None:
            assert after - before == {limit}, (before, after)
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_a_forked_child_gets_a_pool_of_its_own():
    """After fork(), the child has none of the parent's helper threads: its threaded calls
    start helpers of its own and give the parent's results."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    r = _run_python("""
        import os
        import numpy as np
        import fastsoftmax as fs
        from fastsoftmax import _kernels

        rng = np.random.default_rng(4)
        x = (rng.standard_normal((301, 3000)) * 2).astype(np.float32)
        t = rng.integers(0, 3000, 301)
        _kernels.set_tuning(1, 0)
        fs.set_num_threads(2)
        want = fs.cross_entropy(x, t, return_grad=True)  # the parent's helpers exist now
        pid = os.fork()
        if pid == 0:
            ok = True
            for _ in range(3):
                loss, grad = fs.cross_entropy(x, t, return_grad=True)
                ok &= loss.tobytes() == want[0].tobytes() and grad.tobytes() == want[1].tobytes()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print("ok" if os.waitstatus_to_exitcode(status) == 0 else "child failed")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
