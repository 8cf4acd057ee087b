"""CI's fuzz smoke: every target of fuzz/ runs a fixed number of inputs under libFuzzer on the sanitized,
coverage-instrumented core (the build test_sanitized.py uses), with no crash, sanitizer report or stray exception."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import fail_or_skip, load_script

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
fuzz_run = load_script(FUZZ / "run.py")
sanitized_build = fuzz_run.sanitized

RUNS = 400


def test_every_target_runs_clean_and_is_guided_by_coverage(tmp_path):
    try:
        sanitized_build.build()
    except sanitized_build.SanitizedBuildError as exc:
        fail_or_skip(str(exc))
    figures = tmp_path / "fuzz.json"
    run = subprocess.run([sys.executable, str(FUZZ / "run.py"), "--target", "all", "--runs", str(RUNS), "--seed", "1",
                          "--jobs", "2", "--workdir", str(tmp_path), "--json", str(figures)],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = {t["target"]: t for t in json.loads(figures.read_text())["targets"]}
    assert set(results) == set(fuzz_run.TARGET_NAMES)
    for name, t in results.items():
        assert t["ok"] and t["runs"] >= RUNS and not t["findings"], t
        assert t["coverage"] > 100, t  # native edges of the instrumented core are counted, not only Python's
        log = Path(t["log"]).read_text()
        assert "sanitized core: " in log and "Done " in log, log[-2000:]
