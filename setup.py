"""Build of the fastsoftmax extension: one Cython binding over the C kernels in src/.

Metadata lives in pyproject.toml; this file only declares the extension and its
compiler flags.  The default build is portable (x86-64 baseline or aarch64, no
-march=native, no -ffast-math); the AVX2 and AVX-512 kernels are compiled into the
same extension with target pragmas and chosen at run time.  Threads come from the
package's own pool over POSIX threads (src/pool.c; no OpenMP runtime).  Set
FASTSOFTMAX_NATIVE=1 to add -march=native for a local build, FASTSOFTMAX_THREADS=0
to build without threads (every kernel on its calling thread).
"""
import glob
import os
import platform
import shutil
import sys

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

machine = platform.machine().lower()
is_x86_64 = machine in ("x86_64", "amd64")
msvc = sys.platform == "win32"

sources = [
    "fastsoftmax/_kernels.pyx",
    "src/dispatch.c",
    "src/pool.c",
    "src/half/half.c",
    "src/sampling/samplers.c",
    "src/isa/baseline.c",
]
define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if is_x86_64 and not msvc:
    sources += ["src/isa/avx2.c", "src/isa/avx512.c"]
    define_macros += [("FS_HAVE_AVX2", "1"), ("FS_HAVE_AVX512", "1")]
    if os.environ.get("FASTSOFTMAX_AVX512_AS_AVX2") == "1":
        # validation build: the AVX-512 source compiled for AVX2 (see src/isa/avx512.c)
        define_macros.append(("FS_AVX512_AS_AVX2", "1"))

threads = os.environ.get("FASTSOFTMAX_THREADS", "1") != "0" and not msvc  # Win32 threads: not yet
if not threads:
    define_macros.append(("FS_NO_THREADS", "1"))
extra_link_args = []

if msvc:  # compiled by clang-cl (see BuildExt)
    extra_compile_args = ["/O2", "/W3"]
else:
    # GCC contracts a*b+c into FMA where the target has it (the AVX2 path):
    # one rounding instead of two, within the documented error bounds.
    extra_compile_args = ["-O3", "-Wall", "-Wextra", "-Wno-unused-function", "-fno-math-errno"]
    if os.environ.get("FASTSOFTMAX_NATIVE") == "1":
        extra_compile_args.append("-march=native")
    if threads:
        extra_compile_args.append("-pthread")
        extra_link_args.append("-pthread")


def _clang_cl():
    """clang-cl on PATH or where LLVM's Windows installer puts it, else None."""
    for exe in (shutil.which("clang-cl"), os.path.join(os.environ.get("ProgramFiles", r"C:\Program Files"),
                                                        "LLVM", "bin", "clang-cl.exe")):
        if exe and os.path.isfile(exe):
            return exe
    return None


class BuildExt(build_ext):
    """On Windows, clang-cl in place of MSVC's cl.exe: the kernels are written with GCC/Clang vector
    extensions (__attribute__((vector_size))), which cl.exe does not compile.  clang-cl takes
    cl.exe's flags and links with MSVC's linker and runtime, so the extension is an ordinary
    MSVC-ABI extension.  There the portable baseline runs, on the calling thread."""

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            clang = _clang_cl()
            if clang is None:
                raise RuntimeError(
                    "fastsoftmax builds on Windows with clang-cl (LLVM's MSVC-compatible compiler): its kernels "
                    "use vector extensions that MSVC's cl.exe does not compile. Install LLVM (winget install "
                    "LLVM.LLVM, or the 'C++ Clang tools for Windows' of Visual Studio) and build again, or "
                    "install a wheel.")
            if not self.compiler.initialized:
                self.compiler.initialize()
            self.compiler.cc = clang
        super().build_extensions()


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "fastsoftmax._kernels",
            sources=sources,
            include_dirs=["src", np.get_include()],
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
            depends=sorted(glob.glob("src/**/*.h", recursive=True) + ["src/kernels.def"]),
        )
    ],
)
