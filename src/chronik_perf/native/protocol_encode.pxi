# The protocol encoder: runs a ProtocolProgram over a body dict, appending into one bytes object grown in place.
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Check, PyDict_GetItemWithError
from cpython.float cimport PyFloat_AsDouble
from cpython.list cimport PyList_Check, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject, PyObject_IsTrue
from cpython.ref cimport Py_XDECREF
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove, memset

from chronik_perf.native.includes.endian cimport store_be16, store_be32, store_be64
from chronik_perf.native.includes.python cimport (PyDict_GET_SIZE, PyDict_Next, _PyBytes_Resize, bytes_alloc, bytes_data,
                                                  dict_get_borrowed)
from chronik_perf.native.includes.varint cimport MAX_VARINT_BYTES, uvarint_size, write_uvarint

from sys import exc_info as sys_exc_info


cdef struct Writer:
    PyObject* out      # the bytes object being filled, grown in place (owned; NULL once handed over)
    uint8_t* buf       # its data
    Py_ssize_t len
    Py_ssize_t cap


cdef int wr_open(Writer* w, Py_ssize_t cap) except -1:
    w.out = bytes_alloc(NULL, cap)
    w.buf = <uint8_t*>bytes_data(w.out)
    w.len = 0
    w.cap = cap
    return 0


cdef int wr_grow(Writer* w, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = w.cap * 2
    if cap < w.len + need:
        cap = w.len + need + 256
    _PyBytes_Resize(&w.out, cap)  # on failure w.out is freed and set to NULL
    w.buf = <uint8_t*>bytes_data(w.out)
    w.cap = cap
    return 0


cdef bytes wr_finish(Writer* w):
    """The bytes written so far, handed over to the caller."""
    _PyBytes_Resize(&w.out, w.len)
    result = <bytes>w.out
    Py_XDECREF(w.out)
    w.out = NULL
    return result


cdef inline void wr_close(Writer* w):
    Py_XDECREF(w.out)
    w.out = NULL


cdef inline uint8_t* wr_reserve(Writer* w, Py_ssize_t n) except NULL:
    if w.len + n > w.cap:
        wr_grow(w, n)
    cdef uint8_t* p = w.buf + w.len
    w.len += n
    return p


cdef inline int wr_uvarint(Writer* w, uint64_t v) except -1:
    if w.len + MAX_VARINT_BYTES > w.cap:
        wr_grow(w, MAX_VARINT_BYTES)
    w.len += write_uvarint(w.buf + w.len, v)
    return 0


cdef inline int wr_len(Writer* w, bint compact, int width, int64_t n) except -1:
    """A length or count: n + 1 as uvarint when compact (0 = null), else int16/int32 (-1 = null)."""
    if compact:
        wr_uvarint(w, <uint64_t>(n + 1))
    elif width == 2:
        store_be16(wr_reserve(w, 2), <uint16_t><int16_t>n)
    else:
        store_be32(wr_reserve(w, 4), <uint32_t><int32_t>n)
    return 0


cdef inline int wr_raw(Writer* w, const void* src, Py_ssize_t n) except -1:
    if n:
        memcpy(wr_reserve(w, n), src, n)
    return 0


cdef inline int64_t as_int(object v, int64_t lo, int64_t hi) except? -1:
    cdef int64_t x = v  # Cython's conversion reads one- and two-digit ints inline
    if x < lo or x > hi:
        raise OverflowError(f"{x} outside [{lo}, {hi}]")
    return x


cdef int enc_uuid(Writer* w, object v) except -1:
    if v is None:
        memset(wr_reserve(w, 16), 0, 16)
        return 0
    if uuid_slot_readable(v):
        return uuid_slot_bytes(v, wr_reserve(w, 16))
    cdef bytes raw = v.bytes if isinstance(v, _UUID) else _UUID(v).bytes
    wr_raw(w, PyBytes_AS_STRING(raw), 16)
    return 0


cdef int enc_blob(Writer* w, object v, bint compact, bint nullable) except -1:
    """bytes and records: int32 (or compact) length then the bytes; None is null."""
    cdef const uint8_t[::1] view
    if v is None:
        if not nullable:
            raise ProtocolError("null for a non-nullable field")
        return wr_len(w, compact, 4, -1)
    if PyBytes_Check(v):
        wr_len(w, compact, 4, PyBytes_GET_SIZE(v))
        return wr_raw(w, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
    view = as_bytes_view(v)
    wr_len(w, compact, 4, view.shape[0])
    if view.shape[0]:
        wr_raw(w, &view[0], view.shape[0])
    return 0


cdef int enc_value(Writer* w, int kind, int elem, bint nullable, ProtocolProgram sub, bint compact,
                   object v) except -1:
    cdef Py_ssize_t n, i
    cdef const char* s
    cdef double f
    cdef object item
    if kind == K_INT32:
        store_be32(wr_reserve(w, 4), <uint32_t><int32_t>as_int(v, -0x80000000, 0x7FFFFFFF))
    elif kind == K_INT16:
        store_be16(wr_reserve(w, 2), <uint16_t><int16_t>as_int(v, -0x8000, 0x7FFF))
    elif kind == K_INT64:
        store_be64(wr_reserve(w, 8), <uint64_t><int64_t>v)
    elif kind == K_STRING:
        if v is None:
            if not nullable:
                raise ProtocolError("null for a non-nullable string")
            wr_len(w, compact, 2, -1)
        else:
            s = PyUnicode_AsUTF8AndSize(v, &n)
            if n > 0x7FFF:
                raise ProtocolError(f"string of {n} bytes is longer than 32767")
            wr_len(w, compact, 2, n)
            wr_raw(w, s, n)
    elif kind == K_ARRAY:
        if v is None:
            if not nullable:
                raise ProtocolError("null for a non-nullable array")
            return wr_len(w, compact, 4, -1)
        if not PyList_Check(v):
            v = list(v)
        n = PyList_GET_SIZE(v)
        wr_len(w, compact, 4, n)
        for i in range(n):
            if i >= PyList_GET_SIZE(v):  # an item's __index__ or __str__ shrank it
                raise ProtocolError("list changed size while being encoded")
            item = <object>PyList_GET_ITEM(v, i)
            if elem == K_STRUCT:
                enc_struct(w, sub, item)
            elif elem == K_INT32:
                store_be32(wr_reserve(w, 4), <uint32_t><int32_t>as_int(item, -0x80000000, 0x7FFFFFFF))
            else:
                enc_value(w, elem, 0, False, None, compact, item)
    elif kind == K_BOOL:
        wr_reserve(w, 1)[0] = 1 if PyObject_IsTrue(v) else 0
    elif kind == K_INT8:
        wr_reserve(w, 1)[0] = <uint8_t><int8_t>as_int(v, -0x80, 0x7F)
    elif kind == K_UINT16:
        store_be16(wr_reserve(w, 2), <uint16_t>as_int(v, 0, 0xFFFF))
    elif kind == K_UINT32:
        store_be32(wr_reserve(w, 4), <uint32_t>as_int(v, 0, 0xFFFFFFFF))
    elif kind == K_FLOAT64:
        f = PyFloat_AsDouble(v)
        store_be64(wr_reserve(w, 8), (<uint64_t*>&f)[0])
    elif kind == K_UUID:
        enc_uuid(w, v)
    elif kind == K_BYTES or kind == K_RECORDS:
        enc_blob(w, v, compact, nullable or kind == K_RECORDS)
    elif kind == K_STRUCT:
        if nullable:
            wr_reserve(w, 1)[0] = 0xFF if v is None else 1
            if v is None:
                return 0
        enc_struct(w, sub, v)
    return 0


cdef int enc_field(Writer* w, ProtocolProgram p, int i, object v) except -1:
    return enc_value(w, p.kind[i], p.elem[i], p.nullable[i], <ProtocolProgram>p.subs[i], p.flexible, v)


cdef int field_error(ProtocolProgram p, int i) except -1:
    """Re-raise the exception being handled as a ProtocolError naming the innermost field."""
    exc = sys_exc_info()[1]
    if isinstance(exc, ProtocolError) and str(exc).startswith("field "):
        raise exc
    detail = str(exc) if isinstance(exc, ProtocolError) else f"{type(exc).__name__}: {exc}"
    raise ProtocolError(f"field {p.keys[i]}: {detail}") from None


cdef int wr_tags_none(Writer* w) except -1:
    wr_reserve(w, 1)[0] = 0
    return 0


cdef Py_ssize_t enc_tagged(Writer* w, ProtocolProgram p, object d) except -1:
    """Tagged fields that differ from their default, merged by tag with any kept unknown ones; returns how many of
    d's keys it read (tagged fields and the unknown ones' key)."""
    cdef list items
    cdef int i
    cdef PyObject* found
    cdef Py_ssize_t start, size, extra, used = 0
    cdef const uint8_t[::1] raw
    if p.nt == 0 and PyDict_GetItemWithError(d, UNKNOWN_TAGS) == NULL:
        wr_tags_none(w)
        return 0
    items = []
    for i in range(p.n, p.n + p.nt):
        found = PyDict_GetItemWithError(d, p.keys[i])
        if found == NULL:
            continue
        used += 1
        if <object>found is None or <object>found == p.defaults[i]:
            continue
        if i in p.default_wire:
            # Kafka writes a tagged struct only when it differs from the default struct: compare encodings, so
            # that a partial dict or one with extra keys that encodes as the default is left out too
            try:
                wire = struct_wire(<ProtocolProgram>p.subs[i], <object>found)
            except (ProtocolError, TypeError, ValueError, OverflowError, AttributeError):
                field_error(p, i)
            if wire != p.default_wire[i]:
                items.append((p.tag[i], -1, wire))
        else:
            items.append((p.tag[i], i, <object>found))
    found = PyDict_GetItemWithError(d, UNKNOWN_TAGS)
    if found != NULL:
        used += 1
    if found != NULL and <object>found:
        for tag, value in (<object>found).items():
            if tag in p.tag_slot:
                raise ProtocolError(f"unknown tagged field {tag} is a known tag")
            items.append((tag, -1, value))
        items.sort(key=lambda item: item[0])
    wr_uvarint(w, len(items))
    for tag, i, value in items:
        wr_uvarint(w, tag)
        wr_reserve(w, 1)
        start = w.len
        if i < 0:
            raw = as_bytes_view(value)
            if raw.shape[0]:
                wr_raw(w, &raw[0], raw.shape[0])
        else:
            try:
                enc_field(w, p, i, value)
            except (ProtocolError, TypeError, ValueError, OverflowError, AttributeError):
                field_error(p, i)
        size = w.len - start
        extra = uvarint_size(size) - 1
        if extra:
            wr_reserve(w, extra)
            memmove(w.buf + start + extra, w.buf + start, size)
        write_uvarint(w.buf + start - 1, size)
    return used


cdef bytes struct_wire(ProtocolProgram p, object d):
    """The encoding of struct d alone (a tagged struct's value)."""
    cdef Writer w
    w.out = NULL
    try:
        wr_open(&w, 64)
        enc_struct(&w, p, d)
        return wr_finish(&w)
    finally:
        wr_close(&w)


cdef int enc_struct(Writer* w, ProtocolProgram p, object d) except -1:
    cdef int i, kind
    cdef PyObject* found
    cdef PyObject* key
    cdef PyObject* value
    cdef Py_ssize_t pos = 0, matched = p.n   # d's keys that are fields of p (less the missing ones, below)
    cdef bint in_order = True   # d's entries so far were exactly the fields, in wire order
    cdef object v
    if not PyDict_Check(d):
        raise ProtocolError(f"expected a dict for a struct, got {type(d).__name__}")
    i = 0
    try:
        while i < p.n:
            # Dicts built in schema order (decoded ones, and most literals) are walked instead of looked up.
            if in_order and PyDict_Next(d, &pos, &key, &value) and key == p.key_at[i]:
                v = <object>value
            else:
                in_order = False
                found = dict_get_borrowed(d, p.key_at[i])
                if found != NULL:
                    v = <object>found
                else:
                    v = p.defaults[i]
                    matched -= 1
            kind = p.kind[i]
            if kind == K_INT32:  # the commonest fields, encoded here without a call
                store_be32(wr_reserve(w, 4), <uint32_t><int32_t>as_int(v, -0x80000000, 0x7FFFFFFF))
            elif kind == K_INT16:
                store_be16(wr_reserve(w, 2), <uint16_t><int16_t>as_int(v, -0x8000, 0x7FFF))
            else:
                enc_value(w, kind, p.elem[i], p.nullable[i], <ProtocolProgram>p.subs[i], p.flexible, v)
            i += 1
    except (ProtocolError, TypeError, ValueError, OverflowError, AttributeError):
        field_error(p, i)
    if p.flexible:
        if p.nt == 0 and in_order and PyDict_GET_SIZE(d) == p.n:
            wr_tags_none(w)  # d holds the untagged fields and nothing else
        else:
            matched += enc_tagged(w, p, d)
    if PyDict_GET_SIZE(d) != matched:  # a key that is no field of this version: one of another, or a typo
        reject_unknown_keys(p, d)
    return 0


cdef int reject_unknown_keys(ProtocolProgram p, object d) except -1:
    """ProtocolError for the first key of d that no version of the struct has (a misspelt key would otherwise
    encode the field's default without a word); keys of other versions are left out of the wire, as before."""
    for key in d:
        if key not in p.known:
            raise ProtocolError(f"unknown key {key!r} in {p.struct}: no version of it has that field")
    return 0


cdef inline Py_ssize_t frame_capacity(ProtocolProgram p):
    return p.size_hint if p.size_hint else 4096


cdef bytes finish_frame(Writer* w, ProtocolProgram p):
    store_be32(w.buf, <uint32_t>(w.len - 4))
    # Frames of one message tend to repeat their size (a producer's batches): the next one starts big enough.
    p.size_hint = min(w.len + w.len // 16 + 64, 1 << 20)
    return wr_finish(w)


cdef object encode_checked(ProtocolProgram p, Writer* w, object body):
    try:
        enc_struct(w, p, body)
    except ProtocolError as exc:
        raise ProtocolError(f"{p.name} v{p.version}: {exc}") from None


cdef bytes encode_request_frame(ProtocolProgram p, int correlation_id, client_id, object body):
    """A size-prefixed request: header v1 (v2 when flexible; client_id is never compact) then the body."""
    cdef Writer w
    w.out = NULL
    try:
        wr_open(&w, frame_capacity(p))
        wr_reserve(&w, 4)
        store_be16(wr_reserve(&w, 2), <uint16_t>p.api_key)
        store_be16(wr_reserve(&w, 2), <uint16_t>p.version)
        store_be32(wr_reserve(&w, 4), <uint32_t>correlation_id)
        try:
            enc_value(&w, K_STRING, 0, True, None, False, client_id)
        except ProtocolError as exc:
            raise ProtocolError(f"{p.name} v{p.version}: client_id: {exc}") from None
        if p.flexible:
            wr_tags_none(&w)
        encode_checked(p, &w, body)
        return finish_frame(&w, p)
    finally:
        wr_close(&w)


cdef bytes encode_response_frame(ProtocolProgram p, int correlation_id, object body):
    """A size-prefixed response: header v0 (v1 with tagged fields when p.header_tags) then the body."""
    cdef Writer w
    w.out = NULL
    try:
        wr_open(&w, frame_capacity(p))
        wr_reserve(&w, 4)
        store_be32(wr_reserve(&w, 4), <uint32_t>correlation_id)
        if p.header_tags:
            wr_tags_none(&w)
        encode_checked(p, &w, body)
        return finish_frame(&w, p)
    finally:
        wr_close(&w)


def encode_struct_bytes(ProtocolProgram p, int prefix_version, object body):
    """An embedded payload: int16 version then the struct (the consumer protocol's layout)."""
    cdef Writer w
    w.out = NULL
    try:
        wr_open(&w, 256)
        store_be16(wr_reserve(&w, 2), <uint16_t>prefix_version)
        encode_checked(p, &w, body)
        return wr_finish(&w)
    finally:
        wr_close(&w)
