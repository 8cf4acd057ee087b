"""Kafka's own generated message classes (kafka-clients, from the package's Maven pom) as a codec peer: one JVM
running tests/java/KafkaMessagePeer.java, spoken to over its stdin/stdout.

Bodies cross without frame headers: ``check`` hands Kafka a body to read (all of it) and returns what Kafka writes
back; ``generate`` returns the body of a message Kafka filled at random from a seed.
"""
import struct
import subprocess
from pathlib import Path

from chronik_perf.protocol_schema import in_range

SOURCE = Path(__file__).parent / "java" / "KafkaMessagePeer.java"
_SUFFIX = {"request": "RequestData", "response": "ResponseData", "data": ""}


class KafkaError(Exception):
    """Kafka's classes refused a body (the exception they raised, as text)."""


def java_class(name, kind):
    """The generated class of message ``name`` and ``kind``: FetchResponseData, ConsumerProtocolAssignment."""
    return f"org.apache.kafka.common.message.{name}{_SUFFIX[kind]}"


class KafkaMessagePeer:
    """One JVM holding Kafka's message classes; ``close()`` ends it."""

    def __init__(self, java, classpath):
        self.proc = subprocess.Popen([java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", classpath, str(SOURCE)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def _call(self, op, name, kind, version, payload):
        cls = java_class(name, kind).encode()
        self.proc.stdin.write(op + struct.pack(">H", len(cls)) + cls + struct.pack(">h", version) + payload)
        self.proc.stdin.flush()
        status = self.proc.stdout.read(1)
        if not status:
            raise RuntimeError(f"the Kafka peer JVM exited (code {self.proc.wait()})")
        if status == b"\1":
            (size,) = struct.unpack(">H", self.proc.stdout.read(2))
            raise KafkaError(self.proc.stdout.read(size).decode())
        (size,) = struct.unpack(">i", self.proc.stdout.read(4))
        return self.proc.stdout.read(size)

    def check(self, name, kind, version, body):
        """What Kafka writes after reading ``body`` (which it must consume entirely) at ``version``."""
        return self._call(b"C", name, kind, version, struct.pack(">i", len(body)) + body)

    def generate(self, name, kind, version, seed):
        """The body of a message Kafka fills at random (from ``seed``) and writes at ``version``."""
        return self._call(b"G", name, kind, version, struct.pack(">q", seed))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def header_size(message, version, client_id):
    """Bytes before the body in our frame of ``message`` at ``version`` (size prefix included)."""
    flexible = in_range(message.flexible, version)
    if message.kind == "request":
        return 4 + 8 + 2 + len(client_id.encode()) + (1 if flexible else 0)
    if message.kind == "response":
        return 4 + 4 + (1 if flexible and message.name != "ApiVersions" else 0)
    return 2  # an embedded payload's int16 version
