"""What the consumer drivers keep per message while reading: flat buffers, never a Python object per message."""
import queue
import sys
import threading
import uuid

from confluent_kafka import Producer

from chronik_perf.e2e.drivers import confluent
from chronik_perf.e2e.drivers.base import ConsumerSpec, Control
from chronik_perf.e2e.payload import HEADER


class _Counter:
    value = 0


class _BlocksControl(Control):
    """A worker's control channel (in-process) noting the Python objects allocated since the read began."""

    def __init__(self):
        super().__init__(_Counter(), threading.Event(), threading.Event(), threading.Event(), queue.Queue())
        self.baseline, self.growth = None, []

    def set_ready(self):
        self.baseline = sys.getallocatedblocks()
        super().set_ready()

    def progress(self, n):
        self.growth.append(sys.getallocatedblocks() - self.baseline)
        super().progress(n)


def test_confluent_consumer_keeps_no_python_object_per_message(mock_broker):
    """A kept object per message (the bytes slice of each header) made every full garbage collection walk them
    all, so a 30M-message read slowed as the log grew; the headers and partitions now go to flat buffers."""
    n, partitions = 50_000, 4
    topic = f"chronik-perf-bookkeeping-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": mock_broker.bootstrap_servers, "linger.ms": 5})
    for seq in range(n):
        producer.produce(topic, HEADER.pack(0, seq, 0) + bytes(80), partition=seq % partitions)
        if not seq % 1000:
            producer.poll(0)
    assert producer.flush(30) == 0
    ctl = _BlocksControl()
    spec = ConsumerSpec(mock_broker.bootstrap_servers, topic, {}, expected=n, partitions=list(range(partitions)),
                        owed=[(0, n, [], 0)], idle_timeout_s=30.0)
    result = confluent.consume(spec, ctl)
    assert result.received == n and sorted(result.seq.tolist()) == list(range(n))
    assert sorted(set(result.partition.tolist())) == list(range(partitions))
    # The last progress report comes at the end of the read, with everything read still held: what remains is the
    # last consume() batch (at most 1,000 Message objects) and a few objects per poll, not one per message.
    assert ctl.growth and ctl.growth[-1] < n // 5, ctl.growth
