"""The core built with clang, AddressSanitizer, UBSan and libFuzzer's branch coverage, and the environment that
loads it: one build serves tests/test_sanitized.py, the fuzz smoke test and fuzz/run.py.

The build goes to build/sanitized/<digest of the native sources and the compiler>/src, so it is made once per
change of the native sources (Python modules that changed since are copied over theirs on every call). It is
loaded into a Python with atheris's ASan+UBSan+libFuzzer runtime preloaded and pymalloc off, so that every
object's bytes come from malloc, where ASan can see their edges. `python fuzz/sanitized.py` builds it and prints the folder to put on PYTHONPATH.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / "build" / "sanitized"
NATIVE = ("*.pyx", "native/*.pxi", "native/*.pxd", "native/includes/*.pxd", "csrc/*.c", "csrc/*.h", "csrc/zstd/*")
_IGNORE = shutil.ignore_patterns("*.so", "_core.c", "_core.html", "__pycache__", "*.egg-info")


class SanitizedBuildError(RuntimeError):
    """clang or atheris is missing, or the sanitized core does not compile."""


def _clang():
    clang = shutil.which("clang")
    if clang is None:
        raise SanitizedBuildError("clang is needed for the sanitized core (Debian: apt-get install clang)")
    return clang


def runtime():
    """atheris's shared library holding ASan, UBSan and libFuzzer: it must be preloaded before Python starts."""
    try:
        import atheris
    except ImportError:
        raise SanitizedBuildError("atheris is needed for the sanitized core (pip install atheris)") from None
    path = Path(atheris.path()) / "asan_with_fuzzer.so"
    if not path.exists():
        raise SanitizedBuildError(f"{path} is missing: atheris was installed without its sanitizer runtimes")
    return path


def _digest(clang):
    h = hashlib.sha256(subprocess.run([clang, "--version"], capture_output=True, text=True).stdout.encode())
    package = REPO / "src" / "chronik_perf"
    for path in sorted(p for pattern in NATIVE for p in package.glob(pattern)) + [REPO / "setup.py"]:
        h.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def build():
    """The src folder of a chronik_perf whose _core is sanitized and coverage-instrumented (built when missing)."""
    clang = _clang()
    runtime()
    done = CACHE / _digest(clang)
    src = done / "src"
    if any((src / "chronik_perf").glob("_core*.so")):
        _refresh_python(src)
        return src
    work = CACHE / f"{done.name}.tmp{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, work)
    shutil.copytree(REPO / "src", work / "src", ignore=_IGNORE)
    cc = sysconfig.get_config_var("CC").split()[0]
    env = {**os.environ, "CHRONIK_PERF_SANITIZE": "1", "CC": clang,
           "LDSHARED": sysconfig.get_config_var("LDSHARED").replace(cc, clang, 1)}
    run = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=work, env=env,
                         capture_output=True, text=True)
    if run.returncode:
        raise SanitizedBuildError("the sanitized core does not build:\n" + run.stdout[-2000:] + run.stderr[-3000:])
    for old in CACHE.iterdir():  # builds of older sources
        if old != work:
            shutil.rmtree(old, ignore_errors=True)
    os.replace(work, done)
    return src


def _refresh_python(src):
    """Copy the package's Python modules that changed since the build over their copies beside it (the digest
    covers the native sources only)."""
    package = REPO / "src" / "chronik_perf"
    for path in package.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        copy = src / "chronik_perf" / path.relative_to(package)
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)


def environment(src, reports=None):
    """Environment for a Python that loads the sanitized core from `src`; sanitizer reports go to files in
    `reports` when given (pytest captures fd 2, and an abort loses it), else to stderr."""
    asan = "detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
    ubsan = f"print_stacktrace=1:halt_on_error=1:abort_on_error=1:suppressions={HERE / 'ubsan.supp'}"
    if reports is not None:
        asan += f":log_path={reports}/asan"
        ubsan += f":log_path={reports}/ubsan"
    return {**os.environ, "PYTHONPATH": str(src), "LD_PRELOAD": str(runtime()), "PYTHONMALLOC": "malloc",
            "ASAN_OPTIONS": asan, "UBSAN_OPTIONS": ubsan, "CHRONIK_PERF_SANITIZED_CORE": str(src)}


if __name__ == "__main__":
    print(build())
