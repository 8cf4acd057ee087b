"""Background broker processes: the state folder, their records, start-up waits and clean shutdown.

Each broker instance we start has a folder under the state folder ($CHRONIK_PERF_HOME, default ~/.chronik-perf/)
holding `state.json` (pid, process start time, address, version, data dirs) and its log. A process is only ever
signalled when its pid still belongs to the process we started (same start time in /proc), so a stale record left
by a crash never makes us signal an unrelated process.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


class BrokerError(RuntimeError):
    """A broker could not be started or stopped; the message is one line saying what is wrong and what to do."""


def home() -> Path:
    """The state folder: $CHRONIK_PERF_HOME, default ~/.chronik-perf/."""
    return Path(os.environ.get("CHRONIK_PERF_HOME") or Path.home() / ".chronik-perf").expanduser()


@dataclass
class Record:
    """What `state.json` remembers about one running broker instance."""

    name: str
    bootstrap_servers: str
    version: str
    pid: int
    start_ticks: int
    log_file: str
    log_dirs: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path) -> "Record | None":
        try:
            return cls(**json.loads((folder / "state.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, folder: Path) -> None:
        tmp = folder / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, folder / "state.json")

    def alive(self) -> bool:
        """True while the recorded pid is still the process we started (not a zombie, not a reused pid)."""
        return process_start_ticks(self.pid) == self.start_ticks


@contextlib.contextmanager
def start_lock(folder: Path):
    """Create folder and hold an exclusive lock on it (blocking) while one process starts its broker."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def forget(folder: Path) -> None:
    """Remove an instance's record (its data and log stay)."""
    (folder / "state.json").unlink(missing_ok=True)


def process_start_ticks(pid: int) -> int | None:
    """The process start time from /proc/PID/stat, or None when no live (non-zombie) process has that pid.

    Without /proc (macOS) only liveness can be checked and every live pid reports 0.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if Path("/proc/self").exists():
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port_free(host: str, port: int, name: str) -> None:
    if port_in_use(host, port):
        raise BrokerError(
            f"port {port} on {host} is already in use: stop what listens there or start {name} with --port")


def spawn(cmd: list[str], log_file: Path, cwd: Path) -> subprocess.Popen:
    """Start cmd in its own session with stdout and stderr going to log_file (truncated)."""
    with open(log_file, "wb") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=cwd)


def cause_line(text: str) -> str:
    """The line of a process's output that best says why it failed: the last exception or error line (stack
    frames skipped), else the last non-empty line; at most 300 characters."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("at ", "..."))]
    marked = [ln for ln in lines if re.search(r"Exception\b|Error\b|ERROR|FATAL", ln)]
    return (marked or lines or [""])[-1][:300]


def log_cause(log_file: str | Path) -> str:
    """cause_line() of a log file."""
    try:
        return cause_line(Path(log_file).read_text(errors="replace"))
    except OSError:
        return ""


def wait_ready(proc: subprocess.Popen, ready, timeout: float, name: str, log_file: Path) -> None:
    """Poll ready() while proc runs until it is true. If proc exits, the timeout passes or we are interrupted, proc is stopped
    (nothing is left running) and BrokerError (or the interruption) is raised."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            code = proc.poll()
            if code is not None:
                raise BrokerError(f"{name} exited during start-up (exit code {code}): "
                                  f"{log_cause(log_file) or 'no output'} (log: {log_file})")
            if ready():
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"{name} did not answer within {timeout:g} s and was stopped; "
                                  f"see its log {log_file} or raise --timeout")
            time.sleep(0.25)
    except BaseException:
        terminate(proc.pid, timeout=10, proc=proc)
        raise


def terminate(pid: int, timeout: float = 30, proc: subprocess.Popen | None = None) -> bool:
    """SIGTERM the process group we started, wait up to timeout, then SIGKILL. True if it had to be killed."""
    ticks = process_start_ticks(pid)

    def gone() -> bool:
        if proc is not None:
            return proc.poll() is not None
        return process_start_ticks(pid) != ticks

    def send(sig: int) -> None:
        try:
            os.killpg(pid, sig) if os.getpgid(pid) == pid else os.kill(pid, sig)
        except ProcessLookupError:
            pass

    if gone() or (ticks is None and proc is None):
        return False
    send(signal.SIGTERM)
    killed = False
    deadline = time.monotonic() + timeout
    while not gone():
        if not killed and time.monotonic() > deadline:
            send(signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 10
        elif killed and time.monotonic() > deadline:
            raise BrokerError(f"pid {pid} survived SIGKILL: check it with ps")
        time.sleep(0.1)
    return killed
