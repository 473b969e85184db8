"""Importing fastsoftmax from a copy of its Python files: without a compiled module anywhere
the ImportError says what to run; a checkout without an in-place build uses an installed
copy's compiled module; a compiled module that does not load keeps its own error."""

import glob
import importlib.machinery
import os
import shutil
import subprocess
import sys

import pytest

import fastsoftmax

PACKAGE = os.path.dirname(os.path.abspath(fastsoftmax.__file__))
BUILT = os.path.dirname(PACKAGE)  # the sys.path entry whose fastsoftmax/ has the compiled module

# sys.path of the child: the copy first, then the interpreter's own entries without any fastsoftmax
CHILD = """
import os, sys
others = [p for p in sys.path[1:] if not os.path.isdir(os.path.join(p or os.curdir, "fastsoftmax"))]
sys.path[:] = [sys.argv[1]] + sys.argv[2:] + others
try:
    import fastsoftmax
except ImportError as exc:
    print("ImportError:", exc)
    sys.exit(3)
print(fastsoftmax.__file__)
print(fastsoftmax._kernels.__file__)
print(float(fastsoftmax.softmax([[1.0, 1.0]])[0, 0]))
"""


@pytest.fixture
def copy(tmp_path):
    """A directory holding fastsoftmax/ with the package's .py files only."""
    pkg = tmp_path / "fastsoftmax"
    pkg.mkdir()
    for f in glob.glob(os.path.join(PACKAGE, "*.py")):
        shutil.copy(f, pkg)
    return tmp_path


def _import(root, *extra_path):
    return subprocess.run([sys.executable, "-c", CHILD, str(root), *extra_path], cwd=str(root),
                          capture_output=True, text=True, timeout=120)


def test_no_compiled_module_says_what_to_run(copy):
    r = _import(copy)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.strip() == (
        "ImportError: fastsoftmax's compiled module (fastsoftmax._kernels) is not built: run `pip install .`, "
        "or `python setup.py build_ext --inplace` in a source checkout")


def test_a_checkout_without_a_build_uses_the_installed_compiled_module(copy):
    r = _import(copy, BUILT)
    assert r.returncode == 0, r.stdout + r.stderr
    package_file, kernels_file, p = r.stdout.split()
    assert os.path.dirname(package_file) == str(copy / "fastsoftmax")
    assert os.path.dirname(kernels_file) == PACKAGE
    assert float(p) == 0.5


def test_a_compiled_module_that_does_not_load_keeps_its_error(copy):
    (copy / "fastsoftmax" / ("_kernels" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"not a library")
    r = _import(copy, BUILT)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith("ImportError: ") and "is not built" not in r.stdout
