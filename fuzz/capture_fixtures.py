"""Capture real Kafka frames, consumer-protocol payloads and segment files as small test fixtures.

    python fuzz/capture_fixtures.py [--bootstrap 127.0.0.1:9095] [--out tests/fixtures/kafka]

Against a running Apache Kafka: creates its own topic (index.interval.bytes=1024, so a small segment has index
entries), produces to it through librdkafka in every codec, sends requests of the lowest and highest versions both
sides support over a plain socket and stores each request and Kafka's answer byte for byte
(frames/<n>-<api key>-<version>-<request|response>.bin), stores the subscription and assignment librdkafka's
group members wrote (payloads/, read back through DescribeGroups), copies the topic's segment files with the
preallocated zero tail of the indexes trimmed as Kafka trims them on roll (segment/), then deletes the topic.
Frames are written to the output folder, replacing what it held.
"""
import argparse
import json
import os
import random
import shutil
import socket
import struct
import time
import uuid
from pathlib import Path

import confluent_kafka

from chronik_perf import protocol
from chronik_perf.records import CODECS, build_batch
from chronik_perf.e2e.config import TARGET_ADDRESSES
from chronik_perf.storage import segment_file_name

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kafka"


class Capture:
    """A plain socket to one broker that keeps every request frame and Kafka's answer to it."""

    def __init__(self, host, port, out):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.out = out
        self.count = 0
        self.ranges = {}
        body = self.call("ApiVersions", 0, {})
        self.ranges = {k["api_key"]: (k["min_version"], k["max_version"]) for k in body["api_keys"]}

    def versions(self, api, *extra):
        """The lowest and highest versions both Kafka and our codec speak, and any `extra` ones between."""
        low, high = protocol.SUPPORTED[api]
        key = protocol._api(api).key
        low, high = max(low, self.ranges[key][0]), min(high, self.ranges[key][1])
        return sorted({low, high, *(v for v in extra if low <= v <= high)})

    def call(self, api, version, body, save=True):
        """Send one request, return Kafka's decoded answer; both frames are saved when `save`."""
        self.count += 1
        frame = protocol.encode_request(api, version, body, correlation_id=self.count, client_id="chronik-capture")
        self.sock.sendall(frame)
        head = self._recv(4)
        answer = head + self._recv(int.from_bytes(head, "big"))
        if save:
            key = protocol._api(api).key
            for kind, data in (("request", frame), ("response", answer)):
                (self.out / "frames" / f"{self.count:03d}-{key}-{version}-{kind}.bin").write_bytes(data)
        return protocol.decode_response(api, version, answer)[1]

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return bytes(buf)


def produce_every_codec(bootstrap, topic):
    """Records with keys and headers through librdkafka, one producer per codec, batches of up to 40 records."""
    rng = random.Random(13)
    for codec in CODECS:
        producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                                             "linger.ms": 50, "batch.num.messages": 40, "acks": "all"})
        for i in range(100):
            value = " ".join(rng.choice(("kafka", "broker", "segment", "fetch", str(i))) for _ in range(12))
            producer.produce(topic, value.encode(), key=b"key-%d" % (i % 7), partition=0,
                             headers=[("codec", codec.encode()), ("n", str(i).encode())] if i % 3 else None)
        if producer.flush(30):
            raise RuntimeError(f"librdkafka did not deliver every {codec} record")


def join_group(bootstrap, topic, group):
    """A librdkafka consumer that has joined `group` with an assignment (close it when done)."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise RuntimeError("the consumer got no assignment within 60 s")
        consumer.poll(0.5)
    msg = consumer.poll(10)
    if msg is not None and msg.error() is None:
        consumer.commit(message=msg, asynchronous=False)
    return consumer


def copy_segment(log_dir, topic, out):
    """The partition's first segment, index files trimmed to their entries."""
    folder = Path(log_dir) / f"{topic}-0"
    for suffix, entry in ((".log", 1), (".index", 8), (".timeindex", 12)):
        data = (folder / segment_file_name(0, suffix)).read_bytes()
        if entry > 1:
            n = len(data) // entry
            while n > 1 and not any(data[(n - 1) * entry:n * entry]):
                n -= 1
            data = data[:n * entry]
        (out / "segment" / segment_file_name(0, suffix)).write_bytes(data)


def capture(bootstrap, log_dir, out):
    host, port = bootstrap.rsplit(":", 1)
    if out.exists():
        shutil.rmtree(out)
    for sub in ("frames", "payloads", "segment"):
        (out / sub).mkdir(parents=True)
    c = Capture(host, int(port), out)
    for v in c.versions("ApiVersions", *range(5)):
        c.call("ApiVersions", v, {"client_software_name": "chronik-capture", "client_software_version": "1"})
    topic = f"fixtures-{uuid.uuid4().hex[:8]}"
    group = f"{topic}-group"
    config = [{"name": "index.interval.bytes", "value": "1024"}]
    created = c.call("CreateTopics", c.versions("CreateTopics")[-1],
                     {"topics": [{"name": topic, "num_partitions": 1, "replication_factor": 1, "assignments": [],
                                  "configs": config}], "timeout_ms": 30000})
    if created["topics"][0]["error_code"]:
        raise RuntimeError(f"CreateTopics failed: {created['topics'][0]}")
    try:
        topic_id = _wait_for_topic(c, topic)
        produce_every_codec(bootstrap, topic)
        for v in c.versions("Metadata", 4, 9, 12):
            c.call("Metadata", v, {"topics": [{"name": topic, "topic_id": topic_id}],
                                   "allow_auto_topic_creation": False})
        for v in c.versions("Produce", 9):
            records = build_batch([b"produce v%d" % v] * 3, [b"k", None, b"kk"], compression="lz4")
            c.call("Produce", v, {"acks": -1, "timeout_ms": 10000, "topic_data": [
                {"name": topic, "topic_id": topic_id, "partition_data": [{"index": 0, "records": records}]}]})
        for v in c.versions("ListOffsets", 6):
            for timestamp in (-2, -1):
                c.call("ListOffsets", v, {"replica_id": -1, "topics": [
                    {"name": topic, "partitions": [{"partition_index": 0, "timestamp": timestamp}]}]})
        for v in c.versions("Fetch", 11, 12, 13):
            c.call("Fetch", v, {"max_wait_ms": 100, "min_bytes": 1, "max_bytes": 24576, "topics": [
                {"topic": topic, "topic_id": topic_id, "partitions": [
                    {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 24576}]}]})
        consumer = join_group(bootstrap, topic, group)
        try:
            for v in c.versions("FindCoordinator", 3):
                c.call("FindCoordinator", v, {"key": group, "coordinator_keys": [group]})
            for v in c.versions("DescribeGroups", 5):
                described = c.call("DescribeGroups", v, {"groups": [group]})
            for v in c.versions("ListGroups", 3, 4):
                c.call("ListGroups", v, {})
            for v in c.versions("OffsetFetch", 6, 8):
                c.call("OffsetFetch", v, {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}],
                                          "groups": [{"group_id": group, "topics": [
                                              {"name": topic, "topic_id": topic_id, "partition_indexes": [0]}]}]})
        finally:
            consumer.close()
        for member in described["groups"][0]["members"]:
            (out / "payloads" / "ConsumerProtocolSubscription-0.bin").write_bytes(member["member_metadata"])
            (out / "payloads" / "ConsumerProtocolAssignment-0.bin").write_bytes(member["member_assignment"])
        copy_segment(log_dir, topic, out)
    finally:
        c.call("DeleteTopics", c.versions("DeleteTopics")[-1],
               {"topics": [{"name": topic}], "topic_names": [topic], "timeout_ms": 30000})
    (out / "MANIFEST.json").write_text(json.dumps({
        "broker": f"Apache Kafka at {bootstrap}", "api_versions": {str(k): v for k, v in sorted(c.ranges.items())},
        "librdkafka": confluent_kafka.libversion()[0], "captured": time.strftime("%Y-%m-%d", time.gmtime()),
        "topic": topic}, indent=1) + "\n")
    return c.count


def _wait_for_topic(c, topic):
    """The topic's id once Metadata shows it with a leader (not saved: the answers before that vary)."""
    version = c.versions("Metadata")[-1]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = c.call("Metadata", version, {"topics": [{"name": topic}], "allow_auto_topic_creation": False},
                      save=False)
        t = body["topics"][0]
        if not t["error_code"] and t["partitions"] and t["partitions"][0]["leader_id"] >= 0:
            return t["topic_id"]
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic} has no leader after 30 s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=TARGET_ADDRESSES["kafka"])
    parser.add_argument("--log-dir", help="the broker's log.dirs (default: the one chronik_perf.brokers started)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    log_dir = args.log_dir
    if log_dir is None:
        from chronik_perf.brokers import start
        log_dir = start("kafka", reuse=True).log_dirs[0]
    count = capture(args.bootstrap, log_dir, Path(args.out))
    print(f"{count} exchanges captured into {args.out}")


if __name__ == "__main__":
    main()
