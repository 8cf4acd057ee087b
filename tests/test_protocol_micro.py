"""The protocol benchmarks that carry issues 3 and 15's bars compare like with like: both sides build byte-identical
frames, each floor builds exactly what our decoder returned, and every timed function runs (no timing asserted)."""
from functools import partial

import pytest

from micro import bench_protocol
from micro.protocol_bodies import fixed_malloc_thresholds, floor_of, plain

CASES = [("produce_frame_encoding", bench_protocol.produce_frame, ()),
         ("produce_frame_decoding", bench_protocol.produce_frame, ()),
         ("metadata_encoding", bench_protocol.metadata, (1000,)),
         ("metadata_decoding", bench_protocol.metadata, (1000,))]


@pytest.mark.parametrize("operation,case,args", CASES)
def test_both_sides_run_on_the_same_frame(operation, case, args):
    for impl in ("chronik_perf", "kafka-python"):  # an encoding's set-up raises when the two frames differ
        meta = {}
        setup = case(impl, operation, *args) if args else case(impl, operation)
        setup(meta)()
        assert meta["throughput_bytes"] > 0


@pytest.mark.parametrize("make", [partial(bench_protocol.produce_frame_message, "produce_frame_decoding"),
                                  partial(bench_protocol.metadata_message, 1000, "metadata_decoding"),
                                  partial(bench_protocol.fetch_response_message, 10, 1 << 20),
                                  partial(bench_protocol.fetch_response_message, 10, 0),
                                  partial(bench_protocol.heartbeat_message, "heartbeat_request_decoding"),
                                  partial(bench_protocol.heartbeat_message, "heartbeat_response_decoding")])
def test_each_decode_floor_builds_what_our_decoder_returned(make):
    body = make()
    assert floor_of(lambda: body)() == plain(body)


@pytest.mark.parametrize("operation", ["heartbeat_request_decoding", "heartbeat_response_decoding"])
def test_heartbeat_decodes_return_what_the_floor_builds(operation):
    """ConsumerGroupHeartbeat has no kafka-python peer: ours runs, on the frame whose decode the floor rebuilds."""
    assert bench_protocol.heartbeat(operation)({})() == bench_protocol.heartbeat_message(operation)


def test_fetch_decodes_run_with_and_without_zero_copy():
    for zero_copy in (False, True):
        _, body = bench_protocol.fetch_response("chronik_perf", 10, 1 << 20, zero_copy)({})()  # (correlation id, body)
        records = body["responses"][0]["partitions"][0]["records"]
        assert isinstance(records, memoryview if zero_copy else bytes) and len(records) == 1 << 20


def test_malloc_thresholds_are_fixed_on_glibc():
    assert fixed_malloc_thresholds()
