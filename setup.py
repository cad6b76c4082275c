"""Build of minidl's compiled core (metadata lives in pyproject.toml).

One extension, minidl._core._kernels, from a Cython wrapper and C kernels:
  - OpenMP (compile and link flags) when the compiler has it; otherwise a single-threaded build.
  - On x86-64, kernels_avx512.c (x86-64-v4: AVX-512) and kernels_avx2.c (x86-64-v3: AVX2 + FMA), and only
    those files, are compiled with their instruction set's flags; dispatch.c chooses the fastest one the
    CPU and OS support at import time, so the binary runs on any x86-64 CPU.
  - MINIDL_PORTABLE=1 (or MINIDL_NO_NATIVE=1) leaves out every CPU-specific flag and those files.
A build without one of these says so on stderr (hidden by `pip -q`); `python -m minidl._core.check_build`
says what was built and fails when it lacks what the machine supports (CI runs it).
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
OPENMP_TEST = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
AVX2_TEST = ("#include <immintrin.h>\nint main(void) { __m256 a = _mm256_set1_ps(1.0f);\n"
             "a = _mm256_fmadd_ps(a, a, a); return (int)_mm256_cvtss_f32(a) == 2 ? 0 : 1; }\n")
AVX512_TEST = ("#include <immintrin.h>\nint main(void) { __m512 a = _mm512_set1_ps(1.0f);\n"
               "a = _mm512_scalef_ps(_mm512_fmadd_ps(a, a, a), a);\n"
               "return _mm512_cmp_ps_mask(a, a, _CMP_EQ_OQ) == 0xFFFF ? 0 : 1; }\n")
# Each instruction-set build: its source, the macro that tells dispatch.c it exists, the flag sets tried in
# order, and a program those flags must compile. Fastest first, as dispatch.c lists them.
ISA_BUILDS = (
    (f"{CSRC}/kernels_avx512.c", "MINIDL_HAVE_AVX512",
     (["-march=x86-64-v4", "-mprefer-vector-width=512"],
      ["-mavx512f", "-mavx512cd", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mbmi",
       "-mbmi2", "-mprefer-vector-width=512"]), AVX512_TEST),
    (f"{CSRC}/kernels_avx2.c", "MINIDL_HAVE_AVX2", (["-march=x86-64-v3"], ["-mavx2", "-mfma"]), AVX2_TEST),
)


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
    """build_ext that probes OpenMP and each instruction set, and gives each ISA's file its own flags."""

    def build_extensions(self):
        compiler = self.compiler
        unix = compiler.compiler_type == "unix"
        openmp = unix and not _env_flag("MINIDL_NO_OPENMP") and _compiles(
            compiler, OPENMP_TEST, ["-fopenmp"], link=True)
        x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")
        native = unix and x86 and not (_env_flag("MINIDL_PORTABLE") or _env_flag("MINIDL_NO_NATIVE"))
        isa_flags = {}                           # source -> the flags it compiles with
        for source, macro, flag_sets, probe in ISA_BUILDS:
            for flags in flag_sets if native else ():
                if _compiles(compiler, probe, flags):
                    isa_flags[source] = flags
                    break
        print(f"minidl build: OpenMP {'on' if openmp else 'off'}; "
              + "; ".join(f"{os.path.basename(source)} {' '.join(isa_flags.get(source, ['off']))}"
                          for source, _, _, _ in ISA_BUILDS), file=sys.stderr)

        for ext in self.extensions:
            if openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
            for source, macro, _, _ in ISA_BUILDS:
                if source in isa_flags:
                    ext.define_macros.append((macro, "1"))
                else:
                    ext.sources = [s for s in ext.sources if s.replace("\\", "/") != source]

        if isa_flags:
            original = compiler._compile

            def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
                flags = isa_flags.get(os.path.relpath(src).replace("\\", "/"), [])
                return original(obj, src, ext, cc_args, list(extra_postargs) + flags, pp_opts)

            compiler._compile = _compile
        super().build_extensions()


unix_flags = ["-O3", "-fno-math-errno", "-Wall", "-Wno-unused-function"] if os.name == "posix" else []

extension = Extension(
    "minidl._core._kernels",
    sources=[f"{CORE}/_kernels.pyx", f"{CSRC}/dispatch.c", f"{CSRC}/blocking.c", f"{CSRC}/buffers.c",
             f"{CSRC}/memory_pool.c", f"{CSRC}/kernels_generic.c", *(source for source, _, _, _ in ISA_BUILDS)],
    # depends also puts these in the sdist (cythonize replaces the .pyx source by its generated .c).
    depends=[f"{CORE}/_kernels.pyx", f"{CSRC}/kernels.h", f"{CSRC}/gemm_template.h",
             f"{CSRC}/dot_template.h", f"{CSRC}/sigmoid_template.h", f"{CSRC}/axpby_template.h",
             f"{CSRC}/x86_pack.h", f"{CSRC}/memory_pool.h"],
    include_dirs=[numpy.get_include(), CSRC],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=unix_flags,
    libraries=["m"] if os.name == "posix" else [],
)

setup(
    ext_modules=cythonize([extension], compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildCore},
)
