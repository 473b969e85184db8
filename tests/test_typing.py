"""The type stubs: mypy --strict passes on a typed user's file (tests/typing/usage.py), whose
assert_type lines pin the types the overloads give (a loss scalar, an array for
reduction="none", a tuple with return_grad=True), and catches PyTorch's dim=."""

import os

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
