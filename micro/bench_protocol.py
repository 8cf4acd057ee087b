"""Kafka wire protocol, the seed's criterion groups on the Cython codec, against kafka-python 3's protocol classes.

- produce_request_encoding: records -> record batch -> framed Produce v9 request, by record size (100x100B,
  100x1KiB, 100x10KiB) and by records per batch (10x100B, 100x100B, 1000x100B); kafka-python builds its batch with
  its DefaultRecordBatchBuilder.
- produce_request_decoding: framed request -> body -> records (CRC checked), by record size.
- metadata_encoding / metadata_decoding: Metadata v12 response, 10/100/1000 topics of 3 partitions.
- fetch_request_encoding: Fetch v12 request, 1/10/100 partitions.
- produce_frame_encoding / produce_frame_decoding: the Produce v9 frame around one partition holding 16 KiB of
  record bytes, from its body and back (the records stay bytes: the framing alone).
- fetch_response_decoding: Fetch v12 response of 10 partitions x 64 KiB and x 1 MiB of records; `<shape>-zero_copy`
  decodes the same frame with zero_copy=True (records as memoryview slices of the frame).
- heartbeat_request_decoding / heartbeat_response_decoding: ConsumerGroupHeartbeat v1 (KIP-848) of a member owning /
  assigned 1000 topics x 10 partitions by topic id; kafka-python has no such message, so no peer: the floor alone.
Inputs are our body dicts; kafka-python gets the same bodies as its own data objects, converted outside the
timing except where building the request is the operation.
Floor (`floor-marshal`), CPython's fastest way to serialise or build the same objects: for encoding, marshal.dumps
of the input (the body; for Produce the keys, values and timestamps); for decoding, marshal.loads of what our
decoder returns (UUIDs as ints; for Produce each record as a tuple, plus the CRC alone over the batch; for a
zero-copy decode each records view as an empty bytes object, no object made for it at all).
Bars (issues 3 and 15): Metadata 1000 topics and the Produce frame encode at least 20x faster than kafka-python;
their decodes, the Fetch 10 x 1 MiB decodes (bytes and zero-copy) and the ConsumerGroupHeartbeat decodes take at
most the floor's time.
The group runs with fixed glibc malloc thresholds (protocol_bodies.fixed_malloc_thresholds): 1 MiB frames
otherwise come from fresh pages in one process and from the reused heap in the next, on both sides.
"""
from functools import partial

from ._suite import Suite, payload, size_label

RECORD_SIZES = ((100, 100), (100, 1024), (100, 10240))
BATCH_SIZES = ((10, 100), (1000, 100))
TOPICS = (10, 100, 1000)
PARTITIONS = (1, 10, 100)
FETCH_SHAPES = ((10, 64 << 10), (10, 1 << 20))
FRAME_RECORDS = 16 << 10
ENCODE_BAR = ("kafka-python", 20.0)   # (peer, least speedup) of the encodes with a bar
BAR_TOPICS = 1000                      # the Metadata case with bars
BAR_FETCH = (10, 1 << 20)              # the Fetch shape with decode bars
HEARTBEAT = (1000, 10)                 # ConsumerGroupHeartbeat cases: topics x partitions (all with decode bars)
DECODE_BAR = 1.0                       # a decode with a bar takes at most the floor's time (speed >= 1.0x)
TIMESTAMP = 1_760_000_000_000
VERSIONS = {"Produce": 9, "Fetch": 12, "Metadata": 12}


def produce_body(records):
    return {"transactional_id": None, "acks": -1, "timeout_ms": 30000,
            "topic_data": [{"name": "bench", "partition_data": [{"index": 0, "records": records}]}]}


def fetch_request_body(partitions):
    return {"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52428800, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic": "bench", "partitions": [
                {"partition": p, "current_leader_epoch": 5, "fetch_offset": 1000 * p, "last_fetched_epoch": -1,
                 "log_start_offset": -1, "partition_max_bytes": 1 << 20} for p in range(partitions)]}]}


def values(count, size):
    text = payload("text", count * size, seed=count)
    return [text[i * size:(i + 1) * size] for i in range(count)]


def produce_encoding(impl, count, size):
    def setup(meta):
        vals = values(count, size)
        keys = [b"key-%04d" % i for i in range(count)]
        stamps = [TIMESTAMP + i for i in range(count)]
        if impl == "chronik_perf":
            from chronik_perf.protocol import encode_request
            from chronik_perf.records import build_batch
            def run():
                records = build_batch(vals, keys, timestamps=stamps)
                return encode_request("Produce", 9, produce_body(records), correlation_id=1, client_id="bench")
        else:
            from kafka.protocol.producer import ProduceRequest
            from kafka.record.default_records import DefaultRecordBatchBuilder
            from chronik_perf.kafka_python_peer import kp_frame, to_kp
            rows = list(zip(range(count), stamps, keys, vals))

            def run():
                builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 30)
                for offset, ts, key, value in rows:
                    builder.append(offset, ts, key, value, [])
                return kp_frame(to_kp(ProduceRequest, produce_body(bytes(builder.build())), 9), "request")
        meta["throughput_bytes"] = len(run())
        return run
    return setup


def produce_decoding(impl, count, size):
    def setup(meta):
        from chronik_perf.protocol import encode_request
        from chronik_perf.records import build_batch
        records = build_batch(values(count, size), timestamps=[TIMESTAMP] * count)
        frame = encode_request("Produce", 9, produce_body(records), correlation_id=1, client_id="bench")
        meta["throughput_bytes"] = len(frame)
        if impl == "chronik_perf":
            from chronik_perf.protocol import decode_request
            from chronik_perf.records import parse_batches

            def run():
                _, body = decode_request(frame)
                return [b.records() for t in body["topic_data"] for p in t["partition_data"]
                        for b in parse_batches(p["records"])]
            return run
        from kafka.protocol.producer import ProduceRequest
        from kafka.record.default_records import DefaultRecordBatch

        def run():
            request = ProduceRequest.decode(frame, version=9, header=True, framed=True)
            out = []
            for topic in request.topic_data:
                for part in topic.partition_data:
                    batch = DefaultRecordBatch(part.records)
                    if not batch.validate_crc():
                        raise ValueError("CRC mismatch")
                    out.append(list(batch))
            return out
        return run
    return setup


def metadata(impl, operation, topics):
    def setup(meta):
        from chronik_perf import protocol
        from .protocol_bodies import metadata_body
        body = metadata_body(topics, 3)
        frame = protocol.encode_response("Metadata", 12, 1, body)
        meta["throughput_bytes"] = len(frame)
        if impl == "chronik_perf":
            if operation == "metadata_encoding":
                return lambda: protocol.encode_response("Metadata", 12, 1, body)
            return lambda: protocol.decode_response("Metadata", 12, frame)
        from kafka.protocol.metadata import MetadataResponse
        return peer_call(MetadataResponse, 12, "response", body, frame, operation == "metadata_encoding")
    return setup


def peer_call(kp_class, version, kind, body, frame, encoding):
    """kafka-python's side of a case: encode `body` (first checked to give our very frame) or decode `frame`."""
    from chronik_perf.kafka_python_peer import kp_frame, to_kp
    if encoding:
        kp = to_kp(kp_class, body, version)
        if kp_frame(kp, kind) != frame:
            raise AssertionError(f"kafka-python encodes a different {kind} frame than ours")
        return lambda: kp.encode(header=True, framed=True)
    return lambda: kp_class.decode(frame, version=version, header=True, framed=True)


def metadata_message(topics, operation):
    """The Metadata body to encode, or the body our decoder returns from its frame."""
    from chronik_perf import protocol
    from .protocol_bodies import metadata_body
    body = metadata_body(topics, 3)
    if operation == "metadata_encoding":
        return body
    return protocol.decode_response("Metadata", 12, protocol.encode_response("Metadata", 12, 1, body))


def fetch_response_message(partitions, size):
    """The body our decoder returns from a Fetch response frame (size 0: the zero-copy floor's, every records view
    an empty bytes object)."""
    from chronik_perf import protocol
    from .protocol_bodies import fetch_body
    return protocol.decode_response("Fetch", 12, protocol.encode_response("Fetch", 12, 1, fetch_body(partitions, size)))


def fetch_request(impl, partitions):
    def setup(meta):
        from chronik_perf import protocol
        body = fetch_request_body(partitions)
        meta["throughput_bytes"] = len(protocol.encode_request("Fetch", 12, body, correlation_id=1, client_id="b"))
        if impl == "chronik_perf":
            return lambda: protocol.encode_request("Fetch", 12, body, correlation_id=1, client_id="bench")
        from kafka.protocol.consumer import FetchRequest
        from chronik_perf.kafka_python_peer import to_kp
        kp = to_kp(FetchRequest, body, 12)
        kp.with_header(correlation_id=1, client_id="bench")
        return lambda: kp.encode(header=True, framed=True)
    return setup


def fetch_response(impl, partitions, size, zero_copy=False):
    def setup(meta):
        from chronik_perf import protocol
        from .protocol_bodies import fetch_body
        frame = protocol.encode_response("Fetch", 12, 1, fetch_body(partitions, size))
        meta["throughput_bytes"] = len(frame)
        if impl == "chronik_perf":
            return lambda: protocol.decode_response("Fetch", 12, frame, zero_copy=zero_copy)
        from kafka.protocol.consumer import FetchResponse
        return lambda: FetchResponse.decode(frame, version=12, header=True, framed=True)
    return setup


def heartbeat_message(operation, frame_only=False):
    """A ConsumerGroupHeartbeat v1 frame (request or response, by operation) of HEARTBEAT's topics x partitions, or
    what our decoder returns from it."""
    from chronik_perf import protocol
    from .protocol_bodies import heartbeat_bodies
    request, response = heartbeat_bodies(*HEARTBEAT)
    if operation == "heartbeat_request_decoding":
        frame = protocol.encode_request("ConsumerGroupHeartbeat", 1, request, correlation_id=1, client_id="bench")
        return frame if frame_only else protocol.decode_request(frame)
    frame = protocol.encode_response("ConsumerGroupHeartbeat", 1, 1, response)
    return frame if frame_only else protocol.decode_response("ConsumerGroupHeartbeat", 1, frame)


def heartbeat(operation):
    def setup(meta):
        from chronik_perf import protocol
        frame = heartbeat_message(operation, frame_only=True)
        meta["throughput_bytes"] = len(frame)
        if operation == "heartbeat_request_decoding":
            return lambda: protocol.decode_request(frame)
        return lambda: protocol.decode_response("ConsumerGroupHeartbeat", 1, frame)
    return setup


def produce_frame_message(operation):
    """The Produce v9 body of the frame cases (16 KiB of record bytes in one partition), or, for decoding, what our
    decoder returns from its frame."""
    from chronik_perf import protocol
    body = produce_body(payload("random", FRAME_RECORDS))
    if operation == "produce_frame_encoding":
        return body
    return protocol.decode_request(protocol.encode_request("Produce", 9, body, correlation_id=1, client_id="bench"))


def produce_frame(impl, operation):
    def setup(meta):
        from chronik_perf import protocol
        body = produce_frame_message("produce_frame_encoding")
        frame = protocol.encode_request("Produce", 9, body, correlation_id=1, client_id="bench")
        meta["throughput_bytes"] = len(frame)
        encoding = operation == "produce_frame_encoding"
        if impl == "chronik_perf":
            if encoding:
                return lambda: protocol.encode_request("Produce", 9, body, correlation_id=1, client_id="bench")
            return lambda: protocol.decode_request(frame)
        from kafka.protocol.producer import ProduceRequest
        return peer_call(ProduceRequest, 9, "request", body, frame, encoding)
    return setup


def produce_encoding_floor(count, size):
    def setup(meta):
        import marshal
        rows = (values(count, size), [b"key-%04d" % i for i in range(count)], [TIMESTAMP + i for i in range(count)])
        return partial(marshal.dumps, rows)
    return setup


def produce_decoding_floor(count, size):
    def setup(meta):
        from chronik_perf.protocol import decode_request, encode_request
        from chronik_perf.records import build_batch, crc32c, parse_batches
        from .protocol_bodies import floor_of
        records = build_batch(values(count, size), timestamps=[TIMESTAMP] * count)
        _, body = decode_request(encode_request("Produce", 9, produce_body(records), correlation_id=1,
                                                client_id="bench"))
        for topic in body["topic_data"]:
            for part in topic["partition_data"]:
                part["records"] = [(r.offset, r.timestamp, r.key, r.value, r.headers)
                                   for b in parse_batches(part["records"]) for r in b.records()]
        load = floor_of(lambda: body)

        def run():
            crc32c(records)
            return load()
        return run
    return setup


def marshal_floor(make_body, operation):
    """floor-marshal of a message whose body is make_body(): dumps for an encoding, loads for a decoding."""
    def setup(meta):
        import marshal
        from .protocol_bodies import floor_of, plain
        body = make_body()
        if operation.endswith("_encoding"):
            return partial(marshal.dumps, plain(body))
        return floor_of(lambda: body)
    return setup


def peer_module(impl):
    return "kafka" if impl == "kafka-python" else None


def bars(operation, parameter, impl):
    """The peer_bar and floor_bar keywords of one benchmark (the cases issues 3 and 15 set bars for)."""
    barred = operation.startswith("heartbeat_") or parameter in (f"{BAR_TOPICS}topics", size_label(FRAME_RECORDS), *(
        f"{BAR_FETCH[0]}x{size_label(BAR_FETCH[1])}{mode}" for mode in ("", "-zero_copy")))
    if not barred:
        return {}
    if operation.endswith("_encoding"):
        return {"peer_bar": ENCODE_BAR} if impl == "chronik_perf" else {}
    return {"floor_bar": DECODE_BAR} if impl.startswith("floor-") else {}


if __name__ == "__main__":
    from .protocol_bodies import fixed_malloc_thresholds
    fixed_malloc_thresholds()
    suite = Suite("protocol")
    impls = ("chronik_perf", "kafka-python")
    for count, size in RECORD_SIZES + BATCH_SIZES:
        for impl in impls:
            suite.add("produce_request_encoding", f"{count}x{size_label(size)}", impl,
                      produce_encoding(impl, count, size), items=count, requires=peer_module(impl))
        suite.add("produce_request_encoding", f"{count}x{size_label(size)}", "floor-marshal",
                  produce_encoding_floor(count, size), items=count)
    for count, size in RECORD_SIZES:
        for impl in impls:
            suite.add("produce_request_decoding", f"{count}x{size_label(size)}", impl,
                      produce_decoding(impl, count, size), items=count, requires=peer_module(impl))
        suite.add("produce_request_decoding", f"{count}x{size_label(size)}", "floor-marshal",
                  produce_decoding_floor(count, size), items=count)
    for operation in ("produce_frame_encoding", "produce_frame_decoding"):
        param = size_label(FRAME_RECORDS)
        for impl in impls:
            suite.add(operation, param, impl, produce_frame(impl, operation), items=1, requires=peer_module(impl),
                      **bars(operation, param, impl))
        suite.add(operation, param, "floor-marshal", marshal_floor(partial(produce_frame_message, operation),
                                                                   operation), items=1,
                  **bars(operation, param, "floor-marshal"))
    for operation in ("metadata_encoding", "metadata_decoding"):
        for topics in TOPICS:
            param = f"{topics}topics"
            for impl in impls:
                suite.add(operation, param, impl, metadata(impl, operation, topics), items=topics,
                          requires=peer_module(impl), **bars(operation, param, impl))
            suite.add(operation, param, "floor-marshal", marshal_floor(
                partial(metadata_message, topics, operation), operation), items=topics,
                **bars(operation, param, "floor-marshal"))
    for partitions in PARTITIONS:
        for impl in impls:
            suite.add("fetch_request_encoding", f"{partitions}partitions", impl, fetch_request(impl, partitions),
                      items=partitions, requires=peer_module(impl))
        suite.add("fetch_request_encoding", f"{partitions}partitions", "floor-marshal",
                  marshal_floor(partial(fetch_request_body, partitions), "fetch_request_encoding"), items=partitions)
    for partitions, size in FETCH_SHAPES:
        for zero_copy in (False, True):
            param = f"{partitions}x{size_label(size)}" + ("-zero_copy" if zero_copy else "")
            for impl in impls:
                suite.add("fetch_response_decoding", param, impl, fetch_response(impl, partitions, size, zero_copy),
                          items=partitions, requires=peer_module(impl))
            floor_size = 0 if zero_copy else size
            suite.add("fetch_response_decoding", param, "floor-marshal",
                      marshal_floor(partial(fetch_response_message, partitions, floor_size), "fetch_response_decoding"),
                      items=partitions, **bars("fetch_response_decoding", param, "floor-marshal"))
    for operation in ("heartbeat_request_decoding", "heartbeat_response_decoding"):
        param = "{}x{}".format(*HEARTBEAT)
        suite.add(operation, param, "chronik_perf", heartbeat(operation), items=HEARTBEAT[0])
        suite.add(operation, param, "floor-marshal", marshal_floor(partial(heartbeat_message, operation), operation),
                  items=HEARTBEAT[0], **bars(operation, param, "floor-marshal"))
    suite.run()
