"""Hypothesis strategies for protocol bodies, derived from the same schema table the codec runs."""
import uuid

from hypothesis import strategies as st

from chronik_perf.protocol import field_default
from chronik_perf.protocol_schema import in_range, parse_schema

MESSAGES = parse_schema()

_INTS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
_UINTS = {"uint16": 16, "uint32": 32}
LONG = 128          # a compact length or count this long takes a two-byte varint


def short_or_long(short, allow_long=True):
    """Mostly short values, one in eight repeated to LONG or more items (multi-byte compact lengths; one draw for
    the repeated part and one for the count keep long values as cheap to generate as short ones)."""
    if not allow_long:
        return short
    long = st.builds(lambda part, n: (part * n)[:n], short.filter(len), st.integers(LONG, LONG + 40))
    return st.sampled_from([False] * 7 + [True]).flatmap(lambda is_long: long if is_long else short)


def _primitive(ftype, nullable, tagged=False, allow_long=True):
    if ftype in _INTS:
        bits = _INTS[ftype] - 1
        s = st.integers(-(1 << bits), (1 << bits) - 1)
    elif ftype in _UINTS:
        s = st.integers(0, (1 << _UINTS[ftype]) - 1)
    elif ftype == "bool":
        s = st.booleans()
    elif ftype == "float64":
        s = st.floats(allow_nan=False)
    elif ftype == "uuid":
        # kafka-python writes a tagged zero UUID that Kafka (and we) leave out as the default; avoid that case
        s = st.uuids() if tagged else st.one_of(st.just(uuid.UUID(int=0)), st.uuids())
    elif ftype == "string":
        s = short_or_long(st.text(max_size=12), allow_long)
    else:  # bytes, records
        s = short_or_long(st.binary(max_size=24), allow_long)
    return st.one_of(st.none(), s) if nullable else s


def struct_strategy(fields, version, flexible):
    """Dicts holding every field of ``version`` (tagged ones included) with random values; strings, bytes and
    arrays of primitives are LONG sometimes (arrays of structs stay short, so nesting keeps bodies small)."""
    parts = {}
    for f in fields:
        if not in_range(f.versions, version):
            continue
        nullable = in_range(f.nullable, version)
        tagged = flexible and f.tag >= 0 and in_range(f.tagged, version)
        if f.type == "{}":
            s = struct_strategy(f.fields, version, flexible)
            if nullable:
                s = st.one_of(st.none(), s)
            elif tagged:  # Kafka leaves a tagged struct equal to its default out of the wire
                s = st.one_of(st.just(field_default(f, version, flexible)), s)
        elif f.type == "[]":
            s = st.lists(struct_strategy(f.fields, version, flexible), max_size=3)
            s = st.one_of(st.none(), s) if nullable else s
        elif f.type.startswith("[]"):
            s = short_or_long(st.lists(_primitive(f.type[2:], False, allow_long=False), max_size=4))
            s = st.one_of(st.none(), s) if nullable else s
        else:
            s = _primitive(f.type, nullable, tagged)
        parts[f.name] = s
    return st.fixed_dictionaries(parts)


def body_strategy(name, kind, version):
    """Random bodies of message ``name`` (kind "request", "response" or "data") at ``version``."""
    m = MESSAGES[name, kind]
    return struct_strategy(m.fields, version, in_range(m.flexible, version))


def all_versions(kinds=("request", "response")):
    """(name, kind, version) for every message version in the schema."""
    return [(m.name, m.kind, v) for m in MESSAGES.values() if m.kind in kinds
            for v in range(m.versions[0], m.versions[1] + 1)]


def tagged_defaults_as_none(fields, version, flexible, body):
    """body with every tagged struct equal to its default as None: kafka-python's spelling of an absent one."""
    out = dict(body)
    for f in fields:
        if f.name not in body or body[f.name] is None or not in_range(f.versions, version):
            continue
        value = body[f.name]
        if f.type == "{}":
            tagged = flexible and f.tag >= 0 and in_range(f.tagged, version)
            if tagged and value == field_default(f, version, flexible):
                out[f.name] = None
            else:
                out[f.name] = tagged_defaults_as_none(f.fields, version, flexible, value)
        elif f.type == "[]":
            out[f.name] = [tagged_defaults_as_none(f.fields, version, flexible, item) for item in value]
    return out
