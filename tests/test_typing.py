"""The type stubs: mypy --strict passes on a typed user's file (tests/typing/usage.py), whose
assert_type lines pin the types the overloads give (a loss scalar, an array for
reduction="none", a tuple with return_grad=True), and catches PyTorch's dim=."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
TYPING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "typing")


def _mypy(path, tmp_path):
    api = pytest.importorskip("mypy.api")
    env = os.environ.get("MYPYPATH")
    os.environ["MYPYPATH"] = os.path.abspath(ROOT)  # the package's stubs (fastsoftmax/*.pyi, py.typed)
    try:
        out, err, status = api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path), path])
    finally:
        if env is None:
            del os.environ["MYPYPATH"]
        else:
            os.environ["MYPYPATH"] = env
    return out + err, status


def test_mypy_strict_on_a_usage_file(tmp_path):
    out, status = _mypy(os.path.join(TYPING, "usage.py"), tmp_path)
    assert status == 0, out


def test_mypy_catches_a_wrong_keyword(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nimport fastsoftmax as fs\n"
                   "fs.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), dim=1)\n")
    out, status = _mypy(str(bad), tmp_path / "cache")
    assert status == 1 and 'Unexpected keyword argument "dim"' in out, out


def test_stubs_match_the_runtime():
    """mypy's stubtest: every stubbed name exists at run time with the stub's parameters and
    defaults (the private type aliases of fastsoftmax/_typing.py allowed)."""
    pytest.importorskip("mypy.stubtest")
    env = dict(os.environ, MYPYPATH=os.path.abspath(ROOT))
    run = subprocess.run([sys.executable, "-m", "mypy.stubtest", "fastsoftmax", "--ignore-missing-stub",
                          "--mypy-config-file", os.path.join(TYPING, "mypy.ini"),
                          "--allowlist", os.path.join(TYPING, "stubtest_allowlist.txt")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
