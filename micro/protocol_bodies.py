"""Message bodies, the marshal floor and the malloc settings of the protocol micro-benchmarks (bench_protocol.py),
with no dependency on a peer library (tests use them too)."""
import ctypes
import gc
import marshal
import os
import uuid


def metadata_body(topics=1000, partitions=3):
    """A Metadata v12 response body: 3 brokers, `topics` topics of `partitions` partitions."""
    return {
        "throttle_time_ms": 0,
        "brokers": [{"node_id": n, "host": f"broker-{n}.example", "port": 9092, "rack": None} for n in range(3)],
        "cluster_id": "chronik-perf-cluster",
        "controller_id": 1,
        "topics": [{
            "error_code": 0, "name": f"topic-{t:04d}", "topic_id": uuid.UUID(int=t + 1), "is_internal": False,
            "partitions": [{"error_code": 0, "partition_index": p, "leader_id": p % 3, "leader_epoch": 5,
                            "replica_nodes": [0, 1, 2], "isr_nodes": [0, 1, 2], "offline_replicas": []}
                           for p in range(partitions)],
            "topic_authorized_operations": -(1 << 31),
        } for t in range(topics)],
    }


def fetch_body(partitions=10, size=1 << 20):
    """A Fetch v12 response body: one topic, `partitions` partitions of `size` random record bytes each."""
    return {"throttle_time_ms": 0, "error_code": 0, "session_id": 0, "responses": [{
        "topic": "bench", "partitions": [{
            "partition_index": p, "error_code": 0, "high_watermark": 1000, "last_stable_offset": 1000,
            "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1,
            "records": os.urandom(size)} for p in range(partitions)]}]}


def heartbeat_bodies(topics=1000, partitions=10):
    """ConsumerGroupHeartbeat v1 request and response bodies of a member owning / assigned `topics` x `partitions`."""
    owned = [{"topic_id": uuid.UUID(int=t + 1), "partitions": list(range(partitions))} for t in range(topics)]
    request = {"group_id": "bench-group", "member_id": "Xq3T6pWJQ8ym0c2vBrq7Aw", "member_epoch": 12,
               "instance_id": None, "rack_id": None, "rebalance_timeout_ms": -1, "subscribed_topic_names": None,
               "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": owned}
    response = {"throttle_time_ms": 0, "error_code": 0, "error_message": None, "member_id": None, "member_epoch": 13,
                "heartbeat_interval_ms": 5000, "assignment": {"topic_partitions": owned}}
    return request, response


def plain(value):
    """value with UUIDs as ints and memoryviews as bytes: what marshal can build."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, uuid.UUID):
        return value.int
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def floor_of(decode):
    """marshal.loads of what decode() returns: the cost of building the same objects, and nothing else."""
    data = marshal.dumps(plain(decode()))

    def load():
        gc.disable()  # as our decoder does while it builds acyclic objects
        try:
            return marshal.loads(data)
        finally:
            gc.enable()
    return load


def fixed_malloc_thresholds():
    """Fix glibc's mmap and trim thresholds in this process: glibc moves its mmap threshold as blocks are freed, so
    1 MiB buffers come from fresh pages (a page fault per 4 KiB) in one process and from the reused heap in the next;
    kafka-python's Fetch decode then took 2 ms or 11 ms at random. 32 MiB is the largest mmap threshold glibc takes.
    Returns whether both were set (False where the C library has no mallopt)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 256 << 20))
