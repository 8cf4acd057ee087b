"""Building batches while the caller's objects run Python code: values freed by a timestamp's __index__, headers
that change between two iterations. The batch holds what the caller passed, never freed or resized memory."""
from chronik_perf.records import BatchBuilder, build_batch, parse_batches


class FreesValues:
    """A timestamp whose conversion to int empties the value list and allocates blocks the size of the freed values."""

    def __init__(self, victim):
        self.victim, self.junk = victim, []

    def __index__(self):
        self.victim.clear()
        self.junk = [b"X" * 100 + bytes([i]) for i in range(200)]
        return 1

    __int__ = __index__


class ChangesOnEachIteration(list):
    """A header list whose every iteration yields a longer value than the one before."""

    def __init__(self):
        super().__init__([("k", b"")])
        self.iterations = 0

    def __iter__(self):
        self.iterations += 1
        return iter([("k", b"v" * (10 if self.iterations == 1 else 5000))])


def values_of(batch):
    return [r.value for r in parse_batches(batch)[0].records()]


def test_values_freed_by_a_timestamp_are_still_what_the_batch_holds():
    values = [bytes([65 + i % 26]) * 100 + bytes([i]) for i in range(200)]
    expected = [bytes(bytearray(v)) for v in values]        # copies: the list holds the only references
    timestamps = [FreesValues(values)] + [1] * 199
    assert values_of(build_batch(values, timestamps=timestamps)) == expected


def test_values_freed_by_a_timestamp_with_keys_and_headers():
    values = [bytes([97 + i % 26]) * 100 + bytes([i]) for i in range(200)]
    keys = [b"k" * 100 + bytes([i]) for i in range(200)]
    expected_values, expected_keys = [bytes(bytearray(v)) for v in values], [bytes(bytearray(k)) for k in keys]
    batch = build_batch(values, keys, timestamps=[FreesValues(values)] + [1] * 199,
                        headers=[[("h", bytearray(b"x"))] for _ in range(200)])
    records = parse_batches(batch)[0].records()
    assert [r.value for r in records] == expected_values and [r.key for r in records] == expected_keys
    assert all(r.headers == [("h", b"x")] for r in records)


def test_headers_are_read_once_by_build_batch():
    headers = ChangesOnEachIteration()
    record = parse_batches(build_batch([b"value"], headers=[headers]))[0].records()[0]
    assert record.headers == [("k", b"v" * 10)] and headers.iterations == 1


def test_headers_are_read_once_by_batch_builder():
    builder = BatchBuilder()
    headers = ChangesOnEachIteration()
    assert builder.append(b"value", headers=headers)
    assert parse_batches(builder.build())[0].records()[0].headers == [("k", b"v" * 10)]
    assert headers.iterations == 1
