"""Build of the fastsoftmax extension: one Cython binding over the C kernels in src/.

Metadata lives in pyproject.toml; this file only declares the extension and its
compiler flags.  The default build is portable (x86-64 baseline or aarch64, no
-march=native, no -ffast-math); the AVX2 and AVX-512 kernels are compiled into the
same extension with target pragmas and chosen at run time.  Set
FASTSOFTMAX_NATIVE=1 to add -march=native for a local build, FASTSOFTMAX_OPENMP=0
to build without threads.
"""
import os
import platform
import sys
import tempfile

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

machine = platform.machine().lower()
is_x86_64 = machine in ("x86_64", "amd64")
msvc = sys.platform == "win32"

sources = [
    "fastsoftmax/_kernels.pyx",
    "src/dispatch.c",
    "src/half.c",
    "src/kernels_baseline.c",
]
define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if is_x86_64 and not msvc:
    sources += ["src/kernels_avx2.c", "src/kernels_avx512.c"]
    define_macros += [("FS_HAVE_AVX2", "1"), ("FS_HAVE_AVX512", "1")]
    if os.environ.get("FASTSOFTMAX_AVX512_AS_AVX2") == "1":
        # validation build: the AVX-512 source compiled for AVX2 (see src/kernels_avx512.c)
        define_macros.append(("FS_AVX512_AS_AVX2", "1"))

if msvc:
    extra_compile_args = ["/O2", "/W3"]
else:
    # GCC contracts a*b+c into FMA where the target has it (the AVX2 path):
    # one rounding instead of two, within the documented error bounds.
    extra_compile_args = ["-O3", "-Wall", "-Wextra", "-Wno-unused-function", "-fno-math-errno"]
    if os.environ.get("FASTSOFTMAX_NATIVE") == "1":
        extra_compile_args.append("-march=native")



class BuildExt(build_ext):
    """Adds OpenMP when the compiler supports it (set FASTSOFTMAX_OPENMP=0 to
    build without); without it the kernels run on one thread."""

    def _compiles_with(self, flags):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp_probe.c")
            with open(src, "w") as f:
                f.write("#include <omp.h>\nint fs_probe(void) { return omp_get_max_threads(); }\n")
            try:
                # linked the way the extension is (a shared object, with the environment's LDFLAGS)
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=flags)
                self.compiler.link_shared_object(objs, os.path.join(tmp, "omp_probe.so"), extra_postargs=flags)
            except Exception:
                return False
        return True

    def build_extensions(self):
        if os.environ.get("FASTSOFTMAX_OPENMP", "1") != "0":
            flags = ["/openmp"] if self.compiler.compiler_type == "msvc" else ["-fopenmp"]
            if self._compiles_with(flags):
                for ext in self.extensions:
                    ext.extra_compile_args += flags
                    ext.extra_link_args += flags
            else:
                print("fastsoftmax: the compiler does not support OpenMP; building single-threaded kernels")
        if self.compiler.compiler_type != "msvc":
            for ext in self.extensions:
                ext.extra_compile_args.append("-Wno-unknown-pragmas")
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
            depends=["src/fastsoftmax.h", "src/dispatch.h", "src/simd.h", "src/kernels_isa.h", "src/kernels_dtype.h",
                     "src/kernels_rowwise.h", "src/half_convert.h", "src/rows.h"],
        )
    ],
)
