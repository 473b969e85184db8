"""The C kernels without Python: tests/c/kernel_check.c against its scalar long-double reference.

Natively with the C compiler that builds the extension (every instruction set this CPU runs),
and for aarch64 with tools/neon-check (cross-compiled, run under qemu-aarch64) where the cross
compiler and qemu are installed: the NEON baseline that the README names.
"""
import glob
import os
import platform
import shutil
import subprocess
import sysconfig

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


def _compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc")


@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, "src")), reason="needs the C sources (a checkout)")
@pytest.mark.skipif(_compiler() is None, reason="needs a C compiler")
def test_kernels_natively(tmp_path):
    sources = ["tests/c/kernel_check.c"] + sorted(glob.glob(os.path.join(ROOT, "src", "*.c")) + glob.glob(os.path.join(ROOT, "src", "*", "*.c")))
    defines = []
    if platform.machine().lower() in ("x86_64", "amd64"):
        defines = ["-DFS_HAVE_AVX2=1", "-DFS_HAVE_AVX512=1"]  # as setup.py
    exe = str(tmp_path / "kernel_check")
    subprocess.run([_compiler(), "-O2", "-Wno-psabi", "-fno-math-errno", "-pthread", "-Isrc", *defines, *sources,
                    "-lm", "-o", exe], cwd=ROOT, check=True)
    run = subprocess.run([exe], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "runs passed" in run.stdout


@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="needs gcc-aarch64-linux-gnu and qemu-user (apt-get install)")
def test_neon_baseline_under_qemu():
    run = subprocess.run([os.path.join(ROOT, "tools", "neon-check")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "baseline: ok" in run.stdout and "runs passed" in run.stdout
    assert int(run.stdout.split(" NEON")[0].split()[-1]) > 1000  # the vector code is NEON, not scalar
