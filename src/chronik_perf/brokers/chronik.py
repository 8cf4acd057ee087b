"""Chronik Stream, a Kafka-compatible broker in Rust, from a ``chronik-server`` binary the user supplies.

Chronik is on no package index: its users build ``chronik-server`` from its repository (or take a release binary)
and give its path with ``--binary PATH`` or ``CHRONIK_SERVER=PATH``. It runs single-node
(``chronik-server --data-dir DIR start --bind HOST --advertise HOST:PORT``) with its data in the instance's state
folder. In single-node mode Chronik 2.10 listens for Kafka clients on port 9092 only, serves its HTTP API on 6092
(on the bind address) and its Prometheus metrics on 13092 on every interface, with no option to change that.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ._process import BrokerError, Record, process_start_ticks, spawn, wait_ready
from .probe import answers

DEFAULT_PORT = 9092  # the only Kafka port of a single-node chronik-server
BINARY_ENV = "CHRONIK_SERVER"


def binary(path: str | None = None) -> str:
    """The chronik-server executable: ``path``, else $CHRONIK_SERVER; checked to exist and be executable."""
    exe = path or os.environ.get(BINARY_ENV)
    if not exe:
        raise BrokerError("Chronik Stream is not on a package index: build chronik-server from its repository "
                          f"and pass --binary PATH (or set {BINARY_ENV}=PATH)")
    found = shutil.which(exe) if os.sep not in exe else exe
    if not found or not os.access(found, os.X_OK) or not os.path.isfile(found):
        raise BrokerError(f"chronik-server binary {exe!r} is not an executable file: give the path of a built "
                          f"chronik-server with --binary PATH or {BINARY_ENV}")
    return os.path.abspath(found)


def version(exe: str) -> str:
    """The version ``chronik-server --version`` prints (e.g. 2.10.4)."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"{exe} --version failed ({exc}): is it a chronik-server binary?") from None
    match = re.search(r"(\d+\.\d+\.\d+\S*)", out)
    if not match:
        raise BrokerError(f"{exe} --version printed no version ({out.strip()[:80]!r}): is it a chronik-server binary?")
    return match.group(1)


def launch(folder: Path, *, host: str, port: int, timeout: float, binary_path: str | None = None,
           advertised_host: str | None = None, advertised_port: int | None = None,
           fresh: bool = False) -> tuple[Record, subprocess.Popen]:
    """Start chronik-server single-node on host (port 9092) with its data in folder/data; wait until it answers."""
    if port != DEFAULT_PORT:
        raise BrokerError(f"a single-node chronik-server listens on port {DEFAULT_PORT} only (asked for {port}): "
                          f"leave --port out or free port {DEFAULT_PORT}")
    exe = binary(binary_path)
    release = version(exe)
    data_dir = folder / "data"
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = folder / "chronik.log"
    advertise = f"{advertised_host or host}:{advertised_port or port}"
    proc = spawn([exe, "--data-dir", str(data_dir), "start", "--bind", host, "--advertise", advertise], log_file,
                 cwd=folder)
    bootstrap = f"{host}:{port}"
    wait_ready(proc, lambda: answers(bootstrap), timeout, "chronik", log_file)
    return Record("chronik", bootstrap, release, proc.pid, process_start_ticks(proc.pid), str(log_file),
                  [str(data_dir)]), proc
