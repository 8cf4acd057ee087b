"""The decoders' bad-input tests again, on a core built with AddressSanitizer and UBSan.

A read past a buffer that happens not to crash, or undefined behaviour in C, passes every ordinary test; here it
aborts the run. The core is rebuilt from this tree's sources in a temporary folder (CHRONIK_PERF_SANITIZE=1 in
setup.py) and loaded into a Python with libasan preloaded and pymalloc off, so that every object's bytes come
from malloc, where ASan can see their edges.
"""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import fail_or_skip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the tests that feed forged, truncated and corrupted input to the native code, the peers' bytes, the client's C helpers
SUITES = ["test_protocol_fuzz.py", "test_records_fuzz.py", "test_storage.py", "test_index.py", "test_primitives.py",
          "test_records.py", "test_compression.py", "test_protocol_fastpaths.py", "test_records_peers.py",
          "test_client_unit.py"]


def _runtime(name):
    path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory):
    """(PYTHONPATH holding a chronik_perf whose core is built with ASan and UBSan, environment to run it in)."""
    if shutil.which("gcc") is None:
        fail_or_skip("gcc is needed to build the sanitized core")
    runtimes = [_runtime("libasan.so"), _runtime("libubsan.so")]
    if None in runtimes:
        fail_or_skip("gcc's libasan/libubsan runtimes are not installed")
    work = tmp_path_factory.mktemp("asan")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), work)
    shutil.copytree(os.path.join(REPO, "src"), work / "src",
                    ignore=shutil.ignore_patterns("*.so", "_core.c", "_core.html", "__pycache__", "*.egg-info"))
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=work, capture_output=True,
                           text=True, env={**os.environ, "CHRONIK_PERF_SANITIZE": "1"})
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    logs = work / "reports"  # pytest captures fd 2, and an abort loses it: the sanitizers write here instead
    logs.mkdir()
    env = {**os.environ, "PYTHONPATH": str(work / "src"), "LD_PRELOAD": ":".join(runtimes), "PYTHONMALLOC": "malloc",
           "ASAN_OPTIONS": f"detect_leaks=0:abort_on_error=1:log_path={logs}/asan",
           "UBSAN_OPTIONS": f"print_stacktrace=1:log_path={logs}/ubsan"}
    return str(work / "src"), env, logs


def _reports(logs):
    return "".join(path.read_text(errors="replace")[:4000] for path in sorted(logs.iterdir()))


def test_the_sanitized_core_is_the_one_loaded(sanitized):
    src, env, _ = sanitized
    probe = subprocess.run([sys.executable, "-c", "import chronik_perf._core as c; print(c.__file__)"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert probe.returncode == 0, probe.stderr
    loaded = probe.stdout.strip()
    assert loaded.startswith(src)
    with open(loaded, "rb") as fh:
        assert b"__asan_report_load" in fh.read()  # instrumented: every load is checked


def test_bad_input_tests_pass_under_asan_and_ubsan(sanitized):
    _, env, logs = sanitized
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
                         cwd=os.path.join(REPO, "tests"), capture_output=True, text=True, env=env, timeout=1800)
    assert not _reports(logs), _reports(logs)
    report = run.stdout[-3000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout and " failed" not in run.stdout, report
