"""Kafka wire protocol: encode and decode requests and responses of every supported API version.

Frames are always size-prefixed: every ``encode_*`` returns the 4-byte big-endian size followed by the header and
body, and every ``decode_*`` expects exactly that (the size must match the bytes after it). Bodies are dicts keyed by
the snake_case of Apache Kafka's field names; see :mod:`chronik_perf.protocol_schema` for the messages.
Decoded bodies are plain dicts and lists that cannot form reference cycles, so they are left untracked by the cycle
collector (as CPython does for atom-only dicts and tuples): do not build cycles through them.
"""
import sys
import uuid

from . import _core
from ._core import FIELD_KINDS, ProtocolError, ProtocolProgram
from .protocol_schema import in_range, parse_schema

__all__ = ["encode_request", "decode_request", "encode_response", "decode_response", "encode_payload",
           "decode_payload", "SUPPORTED", "pick_version", "ProtocolError"]

_ARRAY = FIELD_KINDS["[]"]
_STRUCT = FIELD_KINDS["{}"]
_ZERO_UUID = uuid.UUID(int=0)


def field_default(field, version, flexible):
    """The value field takes when it is missing (or, if tagged, absent from the wire) at ``version``: Kafka's default
    text parsed for the type, else the type's zero. A non-nullable struct defaults to the struct of its fields'
    defaults, as Kafka's generated classes construct it."""
    text = field.default
    nullable = in_range(field.nullable, version)
    if field.type == "{}":
        if nullable or text == "null":
            return None
        return {f.name: field_default(f, version, flexible) for f in _wire_order(field.fields, version, flexible)}
    if text == "null":
        return None
    if field.type.startswith("[]"):
        return []
    if field.type == "bool":
        return text == "true"
    if field.type == "string":
        return text or ""
    if field.type == "float64":
        return float(text or 0)
    if field.type == "uuid":
        return _ZERO_UUID
    if field.type in ("bytes", "records"):
        return None if nullable else b""
    return int(text or "0", 0)


def _is_tagged(field, version, flexible):
    return flexible and field.tag >= 0 and in_range(field.tagged, version)


def _wire_order(fields, version, flexible):
    """The fields present at ``version``: untagged ones in schema order, then tagged ones by tag."""
    present = [f for f in fields if in_range(f.versions, version)]
    return ([f for f in present if not _is_tagged(f, version, flexible)]
            + sorted((f for f in present if _is_tagged(f, version, flexible)), key=lambda f: f.tag))


def _compile(name, fields, version, flexible, api_key=-1, header_tags=False, struct=None):
    """The program for one struct at one version: fields of that version, tagged ones last in tag order. It also
    knows the keys of every version of the struct, so that a body's key that none has is refused."""
    entries = []
    for field in _wire_order(fields, version, flexible):
        if field.type.startswith("[]"):
            kind, elem = _ARRAY, FIELD_KINDS[field.type[2:] or "{}"]
        else:
            kind, elem = FIELD_KINDS[field.type], 0
        sub = (_compile(name, field.fields, version, flexible,
                        struct=f"{struct} {field.name}{'[]' if field.type == '[]' else ''}")
               if field.fields else None)
        entries.append((field.name, kind, elem, in_range(field.nullable, version),
                        field.tag if _is_tagged(field, version, flexible) else -1,
                        field_default(field, version, flexible), sub))
    return ProtocolProgram(name, version, flexible, entries, api_key, header_tags, tuple(f.name for f in fields),
                           struct)


class _Api:
    """One API (or embedded payload): its compiled request and response programs for each version."""

    def __init__(self, request, response):
        self.name = request.name
        self.key = request.api_key
        self.min, self.max = request.versions[0], request.versions[1]
        self.flexible = request.flexible
        self.programs = {}
        for message in {request.kind: request, response.kind: response}.values():
            self.programs[message.kind] = tuple(self._compile(message, v) for v in range(self.min, self.max + 1))

    def _compile(self, message, version):
        flexible = in_range(message.flexible, version)
        # Responses use header v1 in flexible versions, except ApiVersions, whose response header is always v0.
        header_tags = flexible and message.kind == "response" and message.name != "ApiVersions"
        return _compile(message.name, message.fields, version, flexible, self.key, header_tags,
                        f"{message.name} {message.kind}" if message.kind != "data" else message.name)

    def program(self, kind, version):
        if not isinstance(version, int) or not self.min <= version <= self.max:
            raise ProtocolError(f"{self.name} v{version}: unsupported version (supported {self.min}-{self.max})")
        return self.programs[kind][version - self.min]


def _build():
    messages = parse_schema()
    apis, payloads = {}, {}
    for (name, kind), message in messages.items():
        if kind == "request":
            api = _Api(message, messages[name, "response"])
            apis[name] = apis[api.key] = api
        elif kind == "data":
            payloads[name] = _Api(message, message)
    return apis, payloads


_APIS, _PAYLOADS = _build()

# api_key << 16 | version -> program, for decode_request
_REQUEST_PROGRAMS = {api.key << 16 | v: api.program("request", v)
                     for name, api in _APIS.items() if isinstance(name, str) for v in range(api.min, api.max + 1)}

SUPPORTED = {api.name: (api.min, api.max) for key, api in _APIS.items() if isinstance(key, str)}
"""API name -> (lowest, highest) version this codec speaks."""


def _api(api):
    try:
        return _APIS[api]
    except (KeyError, TypeError):
        raise ProtocolError(f"unknown api {api!r}") from None


def _program(kind, api, version):
    """The program of ``api`` at ``version`` (the codec's slow path: it raises the precise error)."""
    return _api(api).program(kind, version)


_CODEC = _core.ProtocolCodec(*({sys.intern(a) if isinstance(a, str) else a: (api.min, api.programs[kind])
                                 for a, api in _APIS.items()} for kind in ("request", "response")),
                              _REQUEST_PROGRAMS, _program)
# The four calls are methods of one native object: a Python function in front of each would cost more than the
# codec itself spends on a small message.
encode_request = _CODEC.encode_request
decode_request = _CODEC.decode_request
encode_response = _CODEC.encode_response
decode_response = _CODEC.decode_response


def _payload(name):
    try:
        return _PAYLOADS[name]
    except KeyError:
        raise ProtocolError(f"unknown payload {name!r}") from None


def encode_payload(name, version, body):
    """Encode an embedded consumer-protocol payload (``ConsumerProtocolSubscription`` or
    ``ConsumerProtocolAssignment``): int16 version, then the struct."""
    return _core.encode_struct_bytes(_payload(name).program("data", version), version, body)


def decode_payload(name, data):
    """Decode an embedded consumer-protocol payload into ``(version, body)``. As in Kafka, a version newer than
    ours is read with our newest layout (newer versions only append fields)."""
    p = _payload(name)
    if len(data) < 2:
        raise ProtocolError(f"{name}: truncated: need 2 bytes for the version at byte 0")
    version = int.from_bytes(data[:2], "big", signed=True)
    if version < p.min:
        raise ProtocolError(f"{name} v{version}: unsupported version at byte 0")
    return version, _core.decode_struct_bytes(p.program("data", min(version, p.max)), data, 2)


def pick_version(api, broker_versions):
    """The highest version of ``api`` both we and the broker support.

    ``broker_versions`` is a decoded ApiVersions response body (or its ``api_keys`` list). Raises ProtocolError
    when the broker does not offer the api or the ranges do not overlap."""
    a = _api(api)
    entries = broker_versions["api_keys"] if isinstance(broker_versions, dict) else broker_versions
    for entry in entries:
        if entry["api_key"] == a.key:
            low, high = max(a.min, entry["min_version"]), min(a.max, entry["max_version"])
            if low > high:
                raise ProtocolError(f"{a.name}: broker supports v{entry['min_version']}-{entry['max_version']}, "
                                    f"we support v{a.min}-{a.max}")
            return high
    raise ProtocolError(f"{a.name}: broker does not offer api key {a.key}")
