"""The decoders' bad-input tests again, on a core built with clang, AddressSanitizer and UBSan.

A read past a buffer that happens not to crash, or undefined behaviour in C, passes every ordinary test; here it
aborts the run. fuzz/sanitized.py builds the core from this tree's sources (with -fno-wrapv, so signed overflow is
seen) and gives the environment that loads it: atheris's ASan+UBSan runtime preloaded, pymalloc off. The same build
serves the fuzz smoke test (test_fuzz_smoke.py), so CI compiles it once.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fail_or_skip

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parent / "fuzz"))
import sanitized as sanitized_build  # noqa: E402

# the tests that feed forged, truncated and corrupted input to the native code, the peers' bytes, the client's C
# helpers, values freed under build_batch, a hostile broker's answers, the frames and segment captured from Kafka,
# the fuzz targets' seeds and findings (inputs at guard pages)
SUITES = ["test_protocol_fuzz.py", "test_records_fuzz.py", "test_storage.py", "test_index.py", "test_primitives.py",
          "test_records.py", "test_compression.py", "test_protocol_fastpaths.py", "test_records_peers.py",
          "test_client_unit.py", "test_build_batch_lifetimes.py", "test_hostile_broker.py", "test_kafka_fixtures.py",
          "test_fuzz_targets.py"]
# run in the sanitized Python itself: the suites must exercise the instrumented core, not one found elsewhere
RUN = """
import os, sys
import chronik_perf._core as core
src = os.environ["CHRONIK_PERF_SANITIZED_CORE"]
assert core.__file__.startswith(src + os.sep), f"{core.__file__} is not the sanitized core under {src}"
with open(core.__file__, "rb") as fh:
    assert b"__asan_report_load" in fh.read(), "the core loaded is not instrumented"
print("sanitized core loaded:", core.__file__, flush=True)
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory):
    """(the sanitized core's src folder, environment to run it in, folder of sanitizer reports)."""
    try:
        src = sanitized_build.build()
    except sanitized_build.SanitizedBuildError as exc:
        fail_or_skip(str(exc))
    logs = tmp_path_factory.mktemp("reports")  # pytest captures fd 2, and an abort loses it
    return src, sanitized_build.environment(src, logs), logs


def _reports(logs):
    return "".join(path.read_text(errors="replace")[:4000] for path in sorted(logs.iterdir()))


def test_the_sanitized_core_checks_signed_overflow_and_feeds_libfuzzer(sanitized):
    src, _, _ = sanitized
    (core,) = (Path(src) / "chronik_perf").glob("_core*.so")
    binary = core.read_bytes()
    # under Python's -fwrapv clang emits no signed-overflow checks at all: their handlers show -fno-wrapv took effect
    for symbol in (b"__ubsan_handle_add_overflow", b"__ubsan_handle_mul_overflow", b"__asan_report_load",
                   b"__sanitizer_cov_8bit_counters_init", b"__sanitizer_cov_trace_cmp"):
        assert symbol in binary, symbol


def test_bad_input_tests_pass_under_asan_and_ubsan(sanitized):
    src, env, logs = sanitized
    run = subprocess.run([sys.executable, "-c", RUN, *SUITES], cwd=TESTS, capture_output=True, text=True, env=env,
                         timeout=1800)
    assert not _reports(logs), _reports(logs)
    report = run.stdout[-3000:] + run.stderr[-3000:]
    assert f"sanitized core loaded: {src}" in run.stdout, report
    assert run.returncode == 0, report
    assert " passed" in run.stdout and " failed" not in run.stdout, report
