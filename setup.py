"""Build of the fastsoftmax extension: one Cython binding over the C kernels in src/.

Metadata lives in pyproject.toml; this file only declares the extension and its
compiler flags.  The default build is portable (x86-64 baseline or aarch64, no
-march=native, no -ffast-math); the AVX2 kernels are compiled into the same
extension with a target pragma and chosen at run time.  Set
FASTSOFTMAX_NATIVE=1 to add -march=native for a local build.
"""
import os
import platform
import sys

import numpy as np
from setuptools import Extension, setup

machine = platform.machine().lower()
is_x86_64 = machine in ("x86_64", "amd64")
msvc = sys.platform == "win32"

sources = [
    "fastsoftmax/_kernels.pyx",
    "src/dispatch.c",
    "src/kernels_baseline.c",
]
define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if is_x86_64 and not msvc:
    sources.append("src/kernels_avx2.c")
    define_macros.append(("FS_HAVE_AVX2", "1"))

if msvc:
    extra_compile_args = ["/O2", "/W3"]
else:
    # GCC contracts a*b+c into FMA where the target has it (the AVX2 path):
    # one rounding instead of two, within the documented error bounds.
    extra_compile_args = ["-O3", "-Wall", "-Wextra", "-Wno-unused-function", "-fno-math-errno"]
    if os.environ.get("FASTSOFTMAX_NATIVE") == "1":
        extra_compile_args.append("-march=native")

setup(
    ext_modules=[
        Extension(
            "fastsoftmax._kernels",
            sources=sources,
            include_dirs=["src", np.get_include()],
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            depends=["src/fastsoftmax.h", "src/dispatch.h", "src/simd.h", "src/kernels_isa.h", "src/kernels_dtype.h"],
        )
    ],
)
