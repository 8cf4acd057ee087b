"""Our protocol bodies as kafka-python 3's schema-driven data objects, and back (needs the ``kafka-python`` package).

The cross-check tests (same bytes, each side reads the other's) and the protocol micro-benchmarks (the same
content on both sides) share this one adapter, so the bodies they time are the bodies the tests prove equal.

kafka-python renames the ``*_authorized_operations`` fields to ``authorized_operations`` and reads them as sets of
bit numbers (None for Kafka's "not requested", bit 31 alone); we keep Kafka's names and int32 values.
"""
import importlib

NOT_REQUESTED = -(1 << 31)

try:
    _MODULES = [importlib.import_module(f"kafka.protocol.{m}") for m in ("metadata", "producer", "consumer", "admin")]
except ImportError as exc:
    raise ImportError(f"chronik_perf.kafka_python_peer needs kafka-python 3 (pip install -e '.[test]'): {exc}") from exc
_SUFFIX = {"request": "Request", "response": "Response", "data": ""}


def kp_class(name, kind):
    """kafka-python's class of message ``name`` ("Metadata") and ``kind`` (request, response, data), or None."""
    full = name + _SUFFIX[kind]
    for module in _MODULES:
        if hasattr(module, full):
            return getattr(module, full)
    return None


def _is_bitfield(field):
    return type(getattr(field, "_type", None)).__name__ == "type" and field._type.__name__ == "BitField"


def _peer_name(cls, name):
    if name not in cls.fields and name.endswith("_authorized_operations"):
        return "authorized_operations"
    return name


def to_kp(cls, body, version=None):
    """Our body dict as an instance of kafka-python's ``cls`` (at ``version`` for a whole message)."""
    kw = {}
    for name, value in body.items():
        name = _peer_name(cls, name)
        field = cls.fields[name]
        if value is not None and field.is_struct():
            value = to_kp(field.data_class, value)
        elif value is not None and field.is_struct_array():
            value = [to_kp(field.data_class, item) for item in value]
        elif _is_bitfield(field):
            value = None if value == NOT_REQUESTED else {b for b in range(32) if (value >> b) & 1}
        kw[name] = value
    return cls(version=version, **kw) if version is not None else cls(**kw)


def from_kp(cls, d, ours):
    """kafka-python's ``to_dict()`` output in our names and values; ``ours`` is the body it should equal."""
    out = {}
    for key in ours:
        name = _peer_name(cls, key)
        field, value = cls.fields[name], d[name]
        if value is not None and field.is_struct():
            value = from_kp(field.data_class, value, ours[key])
        elif value is not None and field.is_struct_array():
            value = [from_kp(field.data_class, v, o) for v, o in zip(value, ours[key])]
        elif _is_bitfield(field):
            value = NOT_REQUESTED if value is None else sum(1 << b for b in value)
            value = value - (1 << 32) if value >= 1 << 31 else value
        out[key] = value
    return out


def kp_frame(obj, kind, *, correlation_id=1, client_id="bench"):
    """The whole size-prefixed frame kafka-python encodes for message object ``obj`` (a request or a response)."""
    if kind == "request":
        obj.with_header(correlation_id=correlation_id, client_id=client_id)
    else:
        obj.with_header(correlation_id=correlation_id)
    return bytes(obj.encode(header=True, framed=True))
