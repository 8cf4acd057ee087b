"""Builds chronik_perf._core, the one native module, with Cython."""
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("CHRONIK_PERF_DEBUG") == "1"
# The sanitized build (fuzz/sanitized.py makes it with clang): ASan + UBSan, every branch instrumented for libFuzzer,
# and -fno-wrapv to undo the -fwrapv of Python's own CFLAGS, which hides signed overflow. UBSan's reports stay
# recoverable so that fuzz/ubsan.supp can silence Cython's argument-parsing wrappers; UBSAN_OPTIONS halts on the rest.
sanitize = os.environ.get("CHRONIK_PERF_SANITIZE") == "1"
compile_args = ["-O0", "-g"] if debug else ["-O1", "-g"] if sanitize else ["-O3"]
# -fvisibility=hidden: the module exports PyInit__core alone; the libzstd compiled into it (csrc/zstd) calls itself
# directly, not through the PLT
compile_args += ["-Wno-unused-function", "-fno-strict-aliasing", "-fvisibility=hidden"]
link_args = []
if sanitize:
    sanitizers = ["-fsanitize=fuzzer-no-link,address,undefined", "-fno-omit-frame-pointer"]
    compile_args += sanitizers + ["-fno-wrapv"]
    link_args += sanitizers

core = Extension(
    "chronik_perf._core",
    sources=["src/chronik_perf/_core.pyx", "src/chronik_perf/csrc/crc32c.c", "src/chronik_perf/csrc/codec_lib.c",
             "src/chronik_perf/csrc/zstd/zstd.c"],
    include_dirs=[numpy.get_include(), "src/chronik_perf/csrc"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")] + [    # libzstd's API hidden too
        (name, '__attribute__((visibility("hidden")))')
        for name in ("ZSTDLIB_VISIBLE", "ZSTDERRORLIB_VISIBLE", "ZDICTLIB_VISIBLE")],
    depends=[f"src/chronik_perf/csrc/zstd/{name}" for name in ("zstd.h", "zstd_errors.h", "LICENSE", "README.md")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    libraries=["dl"] if sys.platform.startswith("linux") else [],     # dlopen of the codec libraries
)

setup(
    ext_modules=cythonize(
        [core],
        language_level=3,
        annotate=os.environ.get("CHRONIK_PERF_ANNOTATE") == "1",
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    ),
)
