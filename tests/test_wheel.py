"""A wheel works without the source tree: built, installed in a fresh venv, and run from another folder it finds its
workloads, starts Kafka (its Maven pom is package data) and runs the quick suite."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chronik_perf.e2e.config import TESTS
from conftest import fail_or_skip

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """The python of a fresh venv with the wheel built from this checkout installed (dependencies from the index)."""
    root = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(root / "dist")], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("chronik_perf-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


def run(python, *args, cwd, home, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["CHRONIK_PERF_HOME"] = str(home)
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_starts_kafka_and_runs_the_quick_suite_from_another_folder(wheel_venv, tmp_path):
    home, work = tmp_path / "home", tmp_path / "elsewhere"
    work.mkdir()
    where = run(wheel_venv, "-c", "import chronik_perf._core, chronik_perf; print(chronik_perf.__file__); "
                "from chronik_perf.e2e.config import load_workload; "
                "print(load_workload('latency-focused')['num_partitions']); from importlib import resources; "
                "print(resources.files('chronik_perf.brokers').joinpath('docker-compose.yml').is_file())",
                cwd=work, home=home)
    assert where.returncode == 0, where.stderr
    assert where.stdout.split() == [str(wheel_venv.parents[1] / "lib" / f"python{sys.version_info.major}."
                                        f"{sys.version_info.minor}" / "site-packages" / "chronik_perf" /
                                        "__init__.py"), "1", "True"]
    port = str(_free_port())
    started = run(wheel_venv, "-m", "chronik_perf.brokers", "start", "kafka", "--port", port, cwd=work, home=home)
    try:
        if started.returncode != 0:
            fail_or_skip(f"kafka did not start from the wheel: {started.stderr.strip()}")
        assert started.stdout.strip() == f"127.0.0.1:{port}"
        suite = run(wheel_venv, "-m", "chronik_perf.e2e", "--target", "kafka", "--bootstrap-servers",
                    f"127.0.0.1:{port}", "--quick", "--results-dir", "results", cwd=work, home=home)
        assert suite.returncode == 0, suite.stdout + suite.stderr
        (results,) = (work / "results").glob("*_kafka/results.json")
        doc = json.loads(results.read_text())
        assert [r["test"] for r in doc["results"]] == list(TESTS)
        assert all(r["throughput_msgs_s"] > 0 and not r.get("failed") for r in doc["results"]), doc["results"]
    finally:
        stopped = run(wheel_venv, "-m", "chronik_perf.brokers", "stop", "kafka", "--port", port, cwd=work, home=home)
        assert started.returncode != 0 or stopped.returncode == 0, stopped.stderr
