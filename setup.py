"""Build of minidl's compiled core (metadata lives in pyproject.toml).

One extension, minidl._core._kernels, from a Cython wrapper and C kernels:
  - OpenMP (compile and link flags) when the compiler has it; otherwise a single-threaded build.
  - kernels_avx2.c, and only that file, is compiled for x86-64-v3 (AVX2 + FMA); dispatch.c chooses it at
    import time only if the CPU reports AVX2 and FMA, so the binary runs on any x86-64 CPU.
  - MINIDL_PORTABLE=1 (or MINIDL_NO_NATIVE=1) leaves out every CPU-specific flag and the AVX2 file.
"""
import os
import platform
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CORE = "minidl/_core"
CSRC = "minidl/_core/csrc"
AVX2_SOURCE = f"{CSRC}/kernels_avx2.c"
AVX2_FLAG_SETS = (["-march=x86-64-v3"], ["-mavx2", "-mfma"])
OPENMP_TEST = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
AVX2_TEST = ("#include <immintrin.h>\nint main(void) { __m256 a = _mm256_set1_ps(1.0f);\n"
             "a = _mm256_fmadd_ps(a, a, a); return (int)_mm256_cvtss_f32(a) == 2 ? 0 : 1; }\n")


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _compiles(compiler, source, flags, link=False):
    """True if `source` compiles (and links, if asked) with `flags`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
            if link:
                compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildCore(build_ext):
    """build_ext that probes OpenMP and AVX2 support and gives kernels_avx2.c its own flags."""

    def build_extensions(self):
        compiler = self.compiler
        unix = compiler.compiler_type == "unix"
        openmp = unix and not _env_flag("MINIDL_NO_OPENMP") and _compiles(
            compiler, OPENMP_TEST, ["-fopenmp"], link=True)
        avx2_flags = None
        x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")
        if unix and x86 and not (_env_flag("MINIDL_PORTABLE") or _env_flag("MINIDL_NO_NATIVE")):
            for flags in AVX2_FLAG_SETS:
                if _compiles(compiler, AVX2_TEST, flags):
                    avx2_flags = flags
                    break
        print(f"minidl build: OpenMP {'on' if openmp else 'off'}, "
              f"AVX2 kernels {' '.join(avx2_flags) if avx2_flags else 'off'}", file=sys.stderr)

        for ext in self.extensions:
            if openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
            if avx2_flags:
                ext.define_macros.append(("MINIDL_HAVE_AVX2", "1"))
            else:
                ext.sources = [s for s in ext.sources if not s.replace("\\", "/").endswith("kernels_avx2.c")]

        if avx2_flags and unix:
            original = compiler._compile

            def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
                if src.replace("\\", "/").endswith("kernels_avx2.c"):
                    extra_postargs = list(extra_postargs) + avx2_flags
                return original(obj, src, ext, cc_args, extra_postargs, pp_opts)

            compiler._compile = _compile
        super().build_extensions()


unix_flags = ["-O3", "-fno-math-errno", "-Wall", "-Wno-unused-function"] if os.name == "posix" else []

extension = Extension(
    "minidl._core._kernels",
    sources=[f"{CORE}/_kernels.pyx", f"{CSRC}/dispatch.c", f"{CSRC}/blocking.c", f"{CSRC}/buffers.c",
             f"{CSRC}/kernels_generic.c", f"{CSRC}/axpby.c", AVX2_SOURCE],
    # depends also puts these in the sdist (cythonize replaces the .pyx source by its generated .c).
    depends=[f"{CORE}/_kernels.pyx", f"{CSRC}/kernels.h", f"{CSRC}/gemm_template.h",
             f"{CSRC}/sigmoid_template.h"],
    include_dirs=[numpy.get_include(), CSRC],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=unix_flags,
    libraries=["m"] if os.name == "posix" else [],
)

setup(
    ext_modules=cythonize([extension], compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildCore},
)
