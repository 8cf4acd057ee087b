"""What --cluster accepts (local:N, tcp://HOST:PORT, tls://HOST:PORT) and the TLS it requires off loopback."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used as asked; the message says why."""


@dataclass(frozen=True)
class TlsFiles:
    """Mutual TLS: the CA that signed every party's certificate, and this client's certificate and key."""

    ca_file: str
    cert: str
    key: str


@dataclass(frozen=True)
class ClusterAddress:
    """A parsed --cluster value: scheme 'local' (with `workers` processes), 'tcp' or 'tls' (with `address`)."""

    scheme: str
    address: str = ""
    workers: int = 0
    tls: TlsFiles | None = None


INSECURE_REFUSAL = (
    "refusing plain {address}: a Dask scheduler runs any pickled function sent to it, so an unencrypted, "
    "unauthenticated scheduler reachable beyond this host lets anyone on that network run code on every worker. "
    "Use tls://{hostport} with --cluster-ca-file/--cluster-cert/--cluster-key (see docs/e2e/cluster.md), or pass "
    "--insecure-cluster on a network only you can reach")


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def parse(text: str, insecure: bool = False, tls: TlsFiles | None = None) -> ClusterAddress:
    """Parse --cluster; raise ClusterError for an unknown form, a tls:// without certificates, or plain tcp://
    off loopback without `insecure`."""
    text = text.strip()
    if text.startswith("local:"):
        count = text[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ClusterError(f"--cluster {text}: expected local:N with N >= 1 worker processes")
        return ClusterAddress("local", workers=int(count), tls=tls)
    scheme, sep, hostport = text.partition("://")
    host, colon, port = hostport.rpartition(":")
    if not sep or scheme not in ("tcp", "tls") or not colon or not host or not port.isdigit():
        raise ClusterError(f"--cluster {text}: expected tcp://HOST:PORT, tls://HOST:PORT or local:N")
    if scheme == "tls" and tls is None:
        raise ClusterError(f"--cluster {text}: tls:// needs --cluster-ca-file, --cluster-cert and --cluster-key "
                           "(mutual TLS: the scheduler accepts only clients with a certificate its CA signed)")
    if scheme == "tcp" and not insecure and not is_loopback(host):
        raise ClusterError(INSECURE_REFUSAL.format(address=text, hostport=hostport))
    return ClusterAddress(scheme, address=text, tls=tls)


def security(tls: TlsFiles | None, local: bool = False):
    """distributed.security.Security for mutual TLS (None without certificates). A local cluster's scheduler and
    workers use the same certificate as this client."""
    if tls is None:
        return None
    from distributed.security import Security
    for path in (tls.ca_file, tls.cert, tls.key):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ClusterError(f"cannot read TLS file {path}: {exc.strerror}") from None
    own = dict(tls_scheduler_cert=tls.cert, tls_scheduler_key=tls.key, tls_worker_cert=tls.cert,
               tls_worker_key=tls.key) if local else {}
    return Security(tls_ca_file=tls.ca_file, tls_client_cert=tls.cert, tls_client_key=tls.key,
                    require_encryption=True, **own)
