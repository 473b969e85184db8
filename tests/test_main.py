"""``python -m fastsoftmax``: the self-check (the default command), ``bench`` and the commands.

The self-check must pass and read its bars from ``reference.TOLERANCES``; ``bench`` must word
its ratios the right way round, warn on a busy machine, write no file unless asked, and run
from the package alone (nothing from ``benchmarks/``).
"""

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import bench
from fastsoftmax import reference as ref
from fastsoftmax.__main__ import run_checks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(fastsoftmax.__file__)))

ROW = re.compile(r"^(softmax|cross-entropy forward\+backward) +(\d+x\d+) +(fastsoftmax|NumPy|PyTorch|JAX) +"
                 r"(\d+\.\d{3})(?:   (\d+\.\dx (?:faster|slower)))?$")


def _run_module(*args, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "fastsoftmax", *args], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------- the self-check


def test_self_check_passes():
    r = _run_module()
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^checks: \d+ passed, 0 failed$", r.stdout, re.M), r.stdout
    assert "FAIL" not in r.stdout
    assert r.stdout.rstrip().endswith("to time the kernels: python -m fastsoftmax bench")


def test_self_check_uses_the_tolerances(monkeypatch, capsys):
    monkeypatch.setitem(ref.TOLERANCES, np.dtype(np.float32), {"rel": 1e-30, "softmax_abs": 0.0})
    assert run_checks() is False
    out = capsys.readouterr().out
    assert "FAIL  softmax            float32" in out and "FAIL  softmax            float64" not in out


def test_help_names_the_commands():
    r = _run_module("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m fastsoftmax")
    for words in ("TOLERANCES", "python -m fastsoftmax bench --help", "python -m fastsoftmax demo --help"):
        assert words in r.stdout.replace("\n", " ")
    r = _run_module("--shapes", "8x8")  # the old benchmark's options are gone
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr


# ----------------------------------------------------------------------------- bench


@pytest.mark.parametrize("t_fs,t_other,words", [
    (1.0, 3.24, "3.2x faster"), (2.0, 1.0, "2.0x slower"), (1.0, 1.0, "1.0x faster"), (0.5, 0.45, "1.1x slower"),
    (0.0, 1.0, "n/a"), (1.0, float("nan"), "n/a")])
def test_speed_words(t_fs, t_other, words):
    assert bench.speed_words(t_fs, t_other) == words


def test_busy_warning():
    assert bench.busy_warning(load=0.4, cpus=2, availability=0.97) is None
    assert bench.busy_warning(load=float("nan"), cpus=2, availability=0.97) is None
    assert bench.busy_warning(load=1.0, cpus=2, availability=0.97).startswith(
        "WARNING: the load average is 1.00 on 2 CPUs: other programs are using this machine, so the times are")
    assert "on 1 CPU:" in bench.busy_warning(load=3.0, cpus=1, availability=0.97)
    # the calibration sees a machine that became busy now, before the load average does
    assert bench.busy_warning(load=0.1, cpus=2, availability=0.5).startswith(
        "WARNING: other programs are using this machine now: a short calibration got 50% of 2 CPUs")


def test_cpu_availability_is_a_share():
    assert 0.0 <= bench.cpu_availability(seconds=0.02) <= 1.0


def _bench(monkeypatch, tmp_path, *argv, load=0.0, times=None):
    """bench.main on tiny shapes in an empty directory; ``times``: fake best times in ms,
    given in the order the rows are measured (fastsoftmax first for each operation)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "load_average", lambda: load)
    monkeypatch.setattr(bench, "cpu_availability", lambda **kw: 1.0)
    if times is not None:
        queue = list(times)

        def fake_measure(fn, **kw):
            fn()  # the implementation still runs
            return bench.Timing([queue.pop(0) * 1e-3])

        monkeypatch.setattr(bench, "measure", fake_measure)
    out = io.StringIO()
    status = bench.main(["--shapes", "64x10,8x300", "--budget", "0.01", *argv], out=out)
    return status, out.getvalue()


def test_bench_rows_and_their_wording(monkeypatch, tmp_path):
    n = 1 + sum(1 for _, how in bench._competitors(np.float32) if callable(how))  # rows per operation
    pattern = [2.0, 6.0, 1.0, 2.6][:n]  # fastsoftmax, then 3x its time, half of it, 1.3x
    status, text = _bench(monkeypatch, tmp_path, times=pattern * bench.ROUNDS * 4)  # interleaved rounds
    assert status == 0
    rows = [m.groups() for m in map(ROW.match, text.splitlines()) if m]
    assert len(rows) == 4 * n, text  # 2 shapes x 2 operations
    expected = {"2.000": None, "6.000": "3.0x faster", "1.000": "2.0x slower", "2.600": "1.3x faster"}
    for op, shape, impl, ms, words in rows:
        assert words == expected[ms], (impl, ms, words)
        assert (impl == "fastsoftmax") == (words is None)
    assert [r[2] for r in rows[:n]][:2] == ["fastsoftmax", "NumPy"]
    assert os.listdir(tmp_path) == []  # no file written


def test_bench_measures_and_writes_only_when_asked(monkeypatch, tmp_path):
    status, text = _bench(monkeypatch, tmp_path, load=0.0)
    assert status == 0 and "WARNING" not in text
    assert text.startswith("fastsoftmax %s benchmark: softmax and cross-entropy" % fastsoftmax.__version__)
    rows = [m.groups() for m in map(ROW.match, text.splitlines()) if m]
    assert len(rows) >= 8, text
    for op, shape, impl, ms, words in rows:  # the words agree with the printed (rounded) times
        if words is not None:
            base = next(float(r[3]) for r in rows if r[:3] == (op, shape, "fastsoftmax"))
            if words.endswith("faster"):
                assert float(ms) >= base - 0.0005, (ms, base, words)
            else:
                assert float(ms) <= base + 0.0005, (ms, base, words)
    assert os.listdir(tmp_path) == []
    status, text = _bench(monkeypatch, tmp_path, "--save", "report.txt", load=0.0)
    saved = (tmp_path / "report.txt").read_text()
    assert os.listdir(tmp_path) == ["report.txt"]
    assert text == saved + "report written to report.txt\n"


def test_bench_warns_on_a_busy_machine(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "available_cpus", lambda: 2)
    status, text = _bench(monkeypatch, tmp_path, load=5.0)
    assert status == 0
    assert "WARNING: the load average is 5.00 on 2 CPUs: other programs are using this machine" in text


@pytest.mark.parametrize("argv,message", [
    (["--shapes", "10"], "--shapes: shape '10'"), (["--threads", "0"], "--threads must be >= 1"),
    (["--budget", "0"], "--budget must be > 0"), (["--save", "/nonexistent-dir/r.txt"], "does not exist"),
    (["--dtype", "float16"], "invalid choice")])
def test_bench_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_bench_command_runs_from_the_package_alone(tmp_path):
    r = _run_module("bench", "--shapes", "32x10", "--budget", "0.01", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("fastsoftmax %s benchmark" % fastsoftmax.__version__)
    assert sum(1 for line in r.stdout.splitlines() if ROW.match(line)) >= 4
    assert os.listdir(tmp_path) == []
    with open(bench.__file__) as f:
        source = f.read()
    assert "_harness" not in source and "_baselines" not in source


def test_bench_implementations_match_the_reference(rng):
    x = (rng.standard_normal((40, 17)) * 4).astype(np.float64)
    t = rng.integers(0, 17, size=40)
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True)
    impls = [(bench.numpy_softmax, bench.numpy_cross_entropy)]
    if bench.optional_import("torch") is not None:
        impls.append((bench.torch_softmax, bench.torch_cross_entropy))
    for softmax, cross_entropy in impls:
        np.testing.assert_allclose(softmax(x), ref.softmax(x), rtol=1e-13, atol=1e-300)
        loss, grad = cross_entropy(x, t, return_grad=True)
        np.testing.assert_allclose(loss, loss_ref, rtol=1e-13)
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-17)
        np.testing.assert_allclose(cross_entropy(x, t, return_grad=False), loss_ref, rtol=1e-13)
