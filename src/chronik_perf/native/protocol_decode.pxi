# Kafka wire protocol: a per-(message, version) program of field ops, run by one encoder and one decoder.
# protocol.py compiles chronik_perf.protocol_schema into ProtocolProgram objects; nothing here knows a message.
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Check, PyDict_SetItem
from cpython.float cimport PyFloat_AsDouble, PyFloat_FromDouble
from cpython.list cimport PyList_Check, PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_AsLong, PyLong_FromLong, PyLong_FromLongLong
from cpython.object cimport PyObject, PyObject_IsTrue, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memmove, memset

import uuid as _uuid_mod
from sys import exc_info as sys_exc_info, intern

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    object _PyLong_FromByteArray(const unsigned char* b, size_t n, int little_endian, int is_signed)
    dict _PyDict_NewPresized(Py_ssize_t minused)
    PyObject* bytes_alloc "PyBytes_FromStringAndSize"(const char* s, Py_ssize_t n) except NULL
    char* bytes_data "PyBytes_AS_STRING"(PyObject* b)
    int _PyBytes_Resize(PyObject** b, Py_ssize_t n) except -1
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    PyObject* dict_get_borrowed "PyDict_GetItemWithError"(object d, PyObject* key) except? NULL
    int dict_set_borrowed "PyDict_SetItem"(object d, PyObject* key, object value) except -1
    int PyGC_Enable()
    int PyGC_Disable()
    object PyType_GenericAlloc(PyTypeObject* type, Py_ssize_t nitems)
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    int PyObject_GC_IsTracked(object o)
    void PyObject_GC_UnTrack(object o)
    void PyObject_GC_Track(object o)
    ctypedef struct PyDictObject:
        void* ma_values
    object PyDict_Copy(object d)
    int PyDict_Next(object d, Py_ssize_t* pos, PyObject** key, PyObject** value)
    Py_ssize_t PyDict_GET_SIZE(object d)
    ctypedef struct PyLongObject
    int _PyLong_AsByteArray(PyLongObject* v, unsigned char* b, size_t n, int little_endian, int is_signed) except -1


cdef enum FieldKind:
    K_BOOL = 0
    K_INT8
    K_INT16
    K_UINT16
    K_INT32
    K_UINT32
    K_INT64
    K_FLOAT64
    K_UUID
    K_STRING
    K_BYTES
    K_RECORDS
    K_STRUCT
    K_ARRAY


FIELD_KINDS = {"bool": K_BOOL, "int8": K_INT8, "int16": K_INT16, "uint16": K_UINT16, "int32": K_INT32,
               "uint32": K_UINT32, "int64": K_INT64, "float64": K_FLOAT64, "uuid": K_UUID, "string": K_STRING,
               "bytes": K_BYTES, "records": K_RECORDS, "{}": K_STRUCT, "[]": K_ARRAY}

cdef object _UUID = _uuid_mod.UUID
cdef object _UUID_SAFE_UNKNOWN = _uuid_mod.SafeUUID.unknown


cdef Py_ssize_t slot_offset(type cls, str name):
    """Byte offset of a __slots__ member of cls, or -1 when it is not a plain slot."""
    descriptor = cls.__dict__.get(name)
    if type(descriptor).__name__ != "member_descriptor":
        return -1
    return (<PyMemberDescrObject*><PyObject*>descriptor).d_member.offset


# uuid.UUID keeps its value in two __slots__: decoded UUIDs are made by filling them directly.
cdef Py_ssize_t UUID_INT_AT = slot_offset(_UUID, "int")
cdef Py_ssize_t UUID_SAFE_AT = slot_offset(_UUID, "is_safe")
cdef object ZERO_UUID = _UUID(int=0)
cdef str UNKNOWN_TAGS = "_unknown_tagged_fields"


cdef inline PyObject** split_values(object d):
    return <PyObject**>(<PyDictObject*><PyObject*>d).ma_values


cdef object split_template(tuple keys):
    """A dict of keys -> None whose copies share its keys table and keep their values in one array, in key order
    (a "split" dict, as CPython makes for instance attributes); decoding fills a copy's array directly. None when
    this Python lays such dicts out otherwise (checked here, so a decoder never writes where it should not)."""
    cdef Py_ssize_t n = len(keys)
    if not 0 < n <= 29:  # CPython shares at most 30 keys per class
        return None
    # CPython 3.11/3.12 take one spare slot from a class's shared keys for each instance made; spending all but
    # n of them first sizes every copy's value array to exactly n slots instead of 30.
    for spare_instances in (29 - n, 0):
        template = split_candidate(keys, spare_instances)
        if template is not None:
            return template
    return None


cdef object split_candidate(tuple keys, Py_ssize_t spare_instances):
    cls = type("DecodedStruct", (), {})
    spares = [cls() for _ in range(spare_instances)]
    holder = cls()
    for key in keys:
        setattr(holder, key, key)
    template = holder.__dict__
    if (<PyDictObject*><PyObject*>template).ma_values == NULL or tuple(template) != keys:
        return None
    probe = PyDict_Copy(template)
    for d in (template, probe):
        if (<PyDictObject*><PyObject*>d).ma_values == NULL:
            return None
        for i in range(len(keys)):
            if split_values(d)[i] != <PyObject*>keys[i]:
                return None
    for key in keys:
        template[key] = None
    return template


cdef class ProtocolProgram:
    """One struct of one message version: its fields in wire order (tagged ones last, by tag), ready to run."""
    cdef int n                 # untagged fields
    cdef int nt                # tagged fields, after the untagged ones
    cdef bint flexible
    cdef int* kind
    cdef int* elem             # element kind of arrays
    cdef int* nullable
    cdef int64_t* tag
    cdef PyObject** last_int   # per field: the int object last decoded there (owned), reused when it repeats
    cdef PyObject** key_at     # borrowed from keys
    cdef tuple keys
    cdef tuple defaults
    cdef tuple subs            # ProtocolProgram of struct fields and struct-array elements, else None
    cdef dict tag_slot         # tag -> field index
    cdef dict default_wire     # field index -> the encoding of a tagged struct's default, which is never written
    cdef object template       # split_template of keys, or None
    cdef readonly str name
    cdef readonly int version
    cdef readonly int api_key          # of a whole message; -1 for nested structs and payloads
    cdef readonly bint header_tags     # a response header with tagged fields (v1)
    cdef Py_ssize_t size_hint          # the buffer to start the next frame with: the last frame's size, plus slack

    def __cinit__(self, str name, int version, bint flexible, list fields, int api_key=-1, bint header_tags=False):
        """fields: (key, kind, elem_kind, nullable, tag or -1, default, sub_program) in wire order."""
        cdef int count = len(fields), i
        self.name = name
        self.version = version
        self.flexible = flexible
        self.api_key = api_key
        self.header_tags = header_tags
        self.kind = <int*>malloc(sizeof(int) * (count + 1))
        self.elem = <int*>malloc(sizeof(int) * (count + 1))
        self.nullable = <int*>malloc(sizeof(int) * (count + 1))
        self.tag = <int64_t*>malloc(sizeof(int64_t) * (count + 1))
        self.last_int = <PyObject**>calloc(count + 1, sizeof(PyObject*))
        self.key_at = <PyObject**>malloc(sizeof(PyObject*) * (count + 1))
        if not (self.kind and self.elem and self.nullable and self.tag and self.key_at and self.last_int):
            raise MemoryError()
        self.n = 0
        self.nt = 0
        self.tag_slot = {}
        for i, (key, kind, elem, nullable, tag, default, sub) in enumerate(fields):
            self.kind[i] = kind
            self.elem[i] = elem
            self.nullable[i] = nullable
            self.tag[i] = tag
            if tag < 0:
                if self.nt:
                    raise ValueError("untagged fields must precede tagged ones")
                self.n += 1
            else:
                self.nt += 1
                self.tag_slot[tag] = i
        self.keys = tuple(intern(f[0]) for f in fields)
        for i in range(count):
            self.key_at[i] = <PyObject*>self.keys[i]
        self.defaults = tuple(f[5] for f in fields)
        self.subs = tuple(f[6] for f in fields)
        self.template = split_template(self.keys)
        self.default_wire = {i: struct_wire(<ProtocolProgram>self.subs[i], self.defaults[i])
                             for i in range(self.n, self.n + self.nt)
                             if self.kind[i] == K_STRUCT and type(self.defaults[i]) is dict}

    def __dealloc__(self):
        free(self.kind)
        free(self.elem)
        free(self.nullable)
        free(self.tag)
        if self.last_int:
            for i in range(self.n + self.nt):
                Py_XDECREF(self.last_int[i])
            free(self.last_int)
        free(self.key_at)


# ---------------------------------------------------------------- encoding

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
    if type(v) is _UUID and UUID_INT_AT >= 0:  # its int slot, without the .bytes property's Python code
        _PyLong_AsByteArray((<PyLongObject**>(<char*><PyObject*>v + UUID_INT_AT))[0], wr_reserve(w, 16), 16, 0, 0)
        return 0
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


cdef int enc_tagged(Writer* w, ProtocolProgram p, object d) except -1:
    """Tagged fields that differ from their default, merged by tag with any kept unknown ones."""
    cdef list items
    cdef int i
    cdef PyObject* found
    cdef Py_ssize_t start, size, extra
    cdef const uint8_t[::1] raw
    if p.nt == 0 and PyDict_GetItemWithError(d, UNKNOWN_TAGS) == NULL:
        return wr_tags_none(w)
    items = []
    for i in range(p.n, p.n + p.nt):
        found = PyDict_GetItemWithError(d, p.keys[i])
        if found == NULL or <object>found is None or <object>found == p.defaults[i]:
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
    return 0


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
    cdef Py_ssize_t pos = 0
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
                v = <object>found if found != NULL else p.defaults[i]
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
            enc_tagged(w, p, d)
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


# ---------------------------------------------------------------- decoding

cdef struct Reader:
    const uint8_t* buf
    Py_ssize_t pos
    Py_ssize_t end
    PyObject* records_view   # a read-only memoryview of the frame to slice records from, or NULL to copy them


cdef int rd_fail(Reader* r, str what) except -1:
    raise ProtocolError(f"{what} at byte {r.pos}")


cdef int rd_truncated(Reader* r, Py_ssize_t n) except -1:
    if n < 0:
        rd_fail(r, f"negative length {n}")
    rd_fail(r, f"truncated: need {n} bytes, {r.end - r.pos} left")


cdef inline const uint8_t* rd_take(Reader* r, Py_ssize_t n) except NULL:
    if <size_t>n > <size_t>(r.end - r.pos):     # a negative n is refused too
        rd_truncated(r, n)
    cdef const uint8_t* p = r.buf + r.pos
    r.pos += n
    return p


cdef inline uint64_t rd_uvarint(Reader* r) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t v = 0
    cdef int rc = read_uvarint(r.buf, r.end, &r.pos, &v)
    if rc:
        rd_fail(r, varint_problem(rc))
    return v


cdef inline Py_ssize_t rd_len(Reader* r, bint compact, int width, Py_ssize_t unit) except -2:
    """A length or count (-1 = null), checked so that n * unit bytes still fit in what is left."""
    cdef int64_t n
    cdef uint64_t u
    if compact:
        u = rd_uvarint(r)
        if u > 0x80000000:
            rd_fail(r, f"length {u - 1} out of range")
        n = <int64_t>u - 1
    elif width == 2:
        n = <int16_t>load_be16(rd_take(r, 2))
    else:
        n = <int32_t>load_be32(rd_take(r, 4))
    if n < -1:
        rd_fail(r, f"negative length {n}")
    if n > 0 and n * unit > r.end - r.pos:
        rd_fail(r, f"length {n} larger than the {r.end - r.pos} bytes left")
    return <Py_ssize_t>n


cdef object rd_null(Reader* r, bint nullable, str what):
    """None for a null the schema allows; else the reader fails, as the encoder refuses to write it."""
    if not nullable:
        rd_fail(r, f"null for a non-nullable {what}")
    return None


cdef object make_uuid(const uint8_t* p):
    cdef uint64_t hi, lo
    memcpy(&hi, p, 8)
    memcpy(&lo, p + 8, 8)
    if hi == 0 and lo == 0:
        return ZERO_UUID
    value = _PyLong_FromByteArray(p, 16, 0, 0)
    if UUID_INT_AT < 0 or UUID_SAFE_AT < 0:
        return _UUID(int=value)
    u = PyType_GenericAlloc(<PyTypeObject*>_UUID, 0)
    PyObject_GC_UnTrack(u)  # holds an int and an enum member: never part of a cycle
    Py_INCREF(value)
    (<PyObject**>(<char*><PyObject*>u + UUID_INT_AT))[0] = <PyObject*>value
    Py_INCREF(_UUID_SAFE_UNKNOWN)
    (<PyObject**>(<char*><PyObject*>u + UUID_SAFE_AT))[0] = <PyObject*>_UUID_SAFE_UNKNOWN
    return u


cdef object dec_value(Reader* r, int kind, int elem, ProtocolProgram sub, bint compact, bint nullable):
    """One field; a null where the schema does not allow one is an error, as in Kafka's readers."""
    cdef Py_ssize_t n, i, start
    cdef const uint8_t* p
    cdef object lst, item
    cdef double f
    cdef bint tracked
    if kind == K_INT32:
        return PyLong_FromLong(<int32_t>load_be32(rd_take(r, 4)))
    elif kind == K_INT16:
        return PyLong_FromLong(<int16_t>load_be16(rd_take(r, 2)))
    elif kind == K_INT64:
        return PyLong_FromLongLong(<int64_t>load_be64(rd_take(r, 8)))
    elif kind == K_STRING:
        n = rd_len(r, compact, 2, 1)
        if n < 0:
            return rd_null(r, nullable, "string")
        start = r.pos
        p = rd_take(r, n)
        try:
            return PyUnicode_DecodeUTF8(<const char*>p, n, NULL)
        except UnicodeDecodeError:
            r.pos = start
            rd_fail(r, "string is not UTF-8")
    elif kind == K_ARRAY:
        n = rd_len(r, compact, 4, 1)
        if n < 0:
            return rd_null(r, nullable, "array")
        if elem == K_INT32:
            p = rd_take(r, 4 * n)
            lst = PyList_New(n)
            for i in range(n):
                item = PyLong_FromLong(<int32_t>load_be32(p + 4 * i))
                Py_INCREF(item)
                PyList_SET_ITEM(lst, i, item)
            PyObject_GC_UnTrack(lst)
            return lst
        lst = PyList_New(n)
        tracked = False
        for i in range(n):
            if elem == K_STRUCT:
                item = dec_struct(r, sub)
            else:
                item = dec_value(r, elem, 0, None, compact, False)
            tracked = tracked or PyObject_GC_IsTracked(item)
            Py_INCREF(item)
            PyList_SET_ITEM(lst, i, item)
        if not tracked:
            # Like CPython's own untracking of atom-only dicts and tuples: a list or dict of untracked values
            # cannot be in a cycle, so the collector need not scan it and a decoded body costs it nothing.
            PyObject_GC_UnTrack(lst)
        return lst
    elif kind == K_BOOL:
        return rd_take(r, 1)[0] != 0
    elif kind == K_INT8:
        return PyLong_FromLong(<int8_t>rd_take(r, 1)[0])
    elif kind == K_UINT16:
        return PyLong_FromLong(load_be16(rd_take(r, 2)))
    elif kind == K_UINT32:
        return PyLong_FromLongLong(load_be32(rd_take(r, 4)))
    elif kind == K_FLOAT64:
        (<uint64_t*>&f)[0] = load_be64(rd_take(r, 8))
        return PyFloat_FromDouble(f)
    elif kind == K_UUID:
        return make_uuid(rd_take(r, 16))
    elif kind == K_BYTES or kind == K_RECORDS:
        n = rd_len(r, compact, 4, 1)
        if n < 0:
            return rd_null(r, nullable or kind == K_RECORDS, "bytes field")
        p = rd_take(r, n)
        if kind == K_RECORDS and r.records_view != NULL:
            return (<object>r.records_view)[r.pos - n:r.pos]
        return PyBytes_FromStringAndSize(<const char*>p, n)
    elif kind == K_STRUCT:
        if sub is None:
            rd_fail(r, "struct without a program")
        return dec_struct(r, sub)
    rd_fail(r, f"unknown field kind {kind}")


cdef object dec_nullable_struct(Reader* r, ProtocolProgram sub):
    cdef int8_t marker = <int8_t>rd_take(r, 1)[0]
    if marker < 0:
        return None
    return dec_struct(r, sub)


cdef Py_ssize_t rd_tag_count(Reader* r) except -1:
    """The number of tagged fields, each at least 2 bytes (tag and size)."""
    cdef uint64_t count = rd_uvarint(r)
    if count > <uint64_t>(r.end - r.pos) // 2:
        rd_fail(r, f"{count} tagged fields cannot fit in the {r.end - r.pos} bytes left")
    return <Py_ssize_t>count


cdef object fresh_default(object v):
    """A default value the caller may own: atoms as they are, new lists and dicts for containers (an absent tagged
    struct reads as Kafka's default struct, an absent array as an empty one)."""
    if type(v) is list:
        v = []
        PyObject_GC_UnTrack(v)
    elif type(v) is dict:
        v = {key: fresh_default(item) for key, item in (<dict>v).items()}
    return v


cdef int dec_tagged(Reader* r, ProtocolProgram p, dict d) except -1:
    """Tagged fields into d (absent known ones at their default); returns 1 if a GC-tracked value went in."""
    cdef Py_ssize_t count = rd_tag_count(r)
    cdef Py_ssize_t k, size, end
    cdef uint64_t tag, usize
    cdef int i
    cdef dict unknown = None
    cdef object slot, v
    cdef bint tracked = False
    for i in range(p.n, p.n + p.nt):
        v = fresh_default(p.defaults[i])
        tracked = tracked or PyObject_GC_IsTracked(v)
        PyDict_SetItem(d, p.keys[i], v)
    for k in range(count):
        tag = rd_uvarint(r)
        usize = rd_uvarint(r)
        if usize > <uint64_t>(r.end - r.pos):
            rd_fail(r, f"tagged field {tag} of {usize} bytes larger than the {r.end - r.pos} bytes left")
        size = <Py_ssize_t>usize
        end = r.end
        r.end = r.pos + size
        slot = p.tag_slot.get(tag)
        if slot is not None:
            i = slot
            if p.kind[i] == K_STRUCT and p.nullable[i]:
                v = dec_nullable_struct(r, <ProtocolProgram>p.subs[i])
            else:
                v = dec_value(r, p.kind[i], p.elem[i], <ProtocolProgram>p.subs[i], True, p.nullable[i])
            tracked = tracked or PyObject_GC_IsTracked(v)
            PyDict_SetItem(d, p.keys[i], v)
            r.pos = r.end
        else:
            if unknown is None:
                unknown = {}
                d[UNKNOWN_TAGS] = unknown
            unknown[tag] = PyBytes_FromStringAndSize(<const char*>rd_take(r, size), size)
        r.end = end
    return tracked


cdef inline object dec_int32(ProtocolProgram p, int i, int32_t x):
    """x as an int object; one outside CPython's small-int cache is reused while a field repeats its value
    (a Metadata response's -2147483648 authorized operations, epochs, watermarks)."""
    cdef PyObject* last
    if -5 <= x <= 256:
        return PyLong_FromLong(x)
    last = p.last_int[i]
    if last != NULL and PyLong_AsLong(<object>last) == x:
        return <object>last
    v = PyLong_FromLong(x)
    Py_INCREF(v)
    p.last_int[i] = <PyObject*>v
    Py_XDECREF(last)
    return v


cdef dict dec_struct(Reader* r, ProtocolProgram p):
    cdef dict d
    cdef PyObject** values = NULL
    cdef PyObject* old
    cdef int i, kind
    cdef object v
    cdef bint tracked = False
    if p.template is not None:
        d = PyDict_Copy(p.template)
        values = split_values(d)
    else:
        d = _PyDict_NewPresized(p.n + p.nt)
    for i in range(p.n):
        kind = p.kind[i]
        if kind == K_INT32:  # the commonest fields, decoded here without a call
            v = dec_int32(p, i, <int32_t>load_be32(rd_take(r, 4)))
        elif kind == K_INT16:
            v = PyLong_FromLong(<int16_t>load_be16(rd_take(r, 2)))
        else:
            if kind == K_STRUCT and p.nullable[i]:
                v = dec_nullable_struct(r, <ProtocolProgram>p.subs[i])
            else:
                v = dec_value(r, kind, p.elem[i], <ProtocolProgram>p.subs[i], p.flexible, p.nullable[i])
            tracked = tracked or PyObject_GC_IsTracked(v)
        if values != NULL:
            old = values[i]
            Py_INCREF(v)
            values[i] = <PyObject*>v
            Py_XDECREF(old)
        else:
            dict_set_borrowed(d, p.key_at[i], v)
    if p.flexible and dec_tagged(r, p, d):
        tracked = True
    if not tracked:
        if PyObject_GC_IsTracked(d):
            PyObject_GC_UnTrack(d)  # see the list case in dec_value
    elif not PyObject_GC_IsTracked(d):
        PyObject_GC_Track(d)  # values written straight into a split dict are not seen by its tracking
    return d


cdef int rd_open(Reader* r, object frame, Py_buffer* held, bint framed) except -1:
    """Point r at frame's bytes (bytes directly, other buffers through ``held``, released by rd_close; held.len -1 = none)."""
    held.len = -1  # not holding a buffer
    if PyBytes_Check(frame):
        r.buf = <const uint8_t*>PyBytes_AS_STRING(frame)
        r.end = PyBytes_GET_SIZE(frame)
    else:
        PyObject_GetBuffer(frame, held, PyBUF_C_CONTIGUOUS)
        r.buf = <const uint8_t*>held.buf
        r.end = held.len
    r.pos = 0
    r.records_view = NULL
    cdef int64_t size
    if framed:
        size = <int32_t>load_be32(rd_take(r, 4))
        if size != r.end - 4:
            r.pos = 0
            rd_fail(r, f"size prefix {size} does not match the {r.end - 4} bytes after it")
    return 0


cdef inline void rd_close(Py_buffer* held):
    if held.len >= 0:
        PyBuffer_Release(held)


cdef object dec_body(Reader* r, ProtocolProgram p):
    """The body at r; like Kafka's readers, bytes after it are ignored (librdkafka's mock sends some, and newer
    consumer-protocol payloads append fields)."""
    # Decoding builds only acyclic dicts and lists: pausing the cycle collector spares it scanning them over and
    # over while they are made (it sees them once, at its next run).
    cdef int collecting = PyGC_Disable()
    try:
        return dec_struct(r, p)
    finally:
        if collecting:
            PyGC_Enable()


cdef tuple HEADER_KEYS = ("api_key", "api_version", "correlation_id", "client_id")
cdef object HEADER_TEMPLATE = split_template(tuple(intern(k) for k in HEADER_KEYS))


cdef dict request_header(int16_t key, int16_t version, int32_t correlation_id, object client_id):
    cdef tuple values = (key, version, correlation_id, client_id)
    if HEADER_TEMPLATE is None:
        return dict(zip(HEADER_KEYS, values))
    cdef dict d = PyDict_Copy(HEADER_TEMPLATE)
    cdef PyObject** slots = split_values(d)
    cdef int i
    for i in range(4):
        Py_XDECREF(slots[i])
        Py_INCREF(values[i])
        slots[i] = <PyObject*>values[i]
    return d


cdef tuple decode_request_frame(dict programs, frame, bint zero_copy):
    """(header, body) of a size-prefixed request; ``programs`` maps api_key << 16 | api_version to the request
    program. With zero_copy, records fields are read-only memoryview slices of frame."""
    cdef Reader r
    cdef Py_buffer held
    cdef ProtocolProgram p = None
    cdef int16_t key, version
    cdef const uint8_t* head
    cdef object view = None
    held.len = -1  # not holding a buffer
    try:
        rd_open(&r, frame, &held, True)
        if zero_copy:
            view = memoryview(frame).toreadonly()
            r.records_view = <PyObject*>view
        head = rd_take(&r, 8)
        key = <int16_t>load_be16(head)
        version = <int16_t>load_be16(head + 2)
        if key >= 0:  # no api key is negative, and shifting one left is undefined behaviour
            p = programs.get((<int>key << 16) | <uint16_t>version)
        if p is None:
            r.pos = 4
            rd_fail(&r, f"unknown api key {key} or version {version}")
        client_id = dec_value(&r, K_STRING, 0, None, False, True)
        if p.flexible:
            skip_tags(&r)
        return request_header(key, version, <int32_t>load_be32(head + 4), client_id), dec_body(&r, p)
    except ProtocolError as exc:
        raise ProtocolError(f"request: {exc}" if p is None else f"{p.name} v{p.version}: {exc}") from None
    finally:
        rd_close(&held)


cdef tuple decode_response_frame(ProtocolProgram p, frame, bint zero_copy):
    """(correlation_id, body) of a size-prefixed response decoded with program p; with zero_copy, records fields
    are read-only memoryview slices of frame instead of bytes copies."""
    cdef Reader r
    cdef Py_buffer held
    cdef object view = None
    held.len = -1  # not holding a buffer
    try:
        rd_open(&r, frame, &held, True)
        if zero_copy:
            view = memoryview(frame).toreadonly()
            r.records_view = <PyObject*>view
        correlation_id = <int32_t>load_be32(rd_take(&r, 4))
        if p.header_tags:
            skip_tags(&r)
        return correlation_id, dec_body(&r, p)
    except ProtocolError as exc:
        raise ProtocolError(f"{p.name} v{p.version}: {exc}") from None
    finally:
        rd_close(&held)


def decode_struct_bytes(ProtocolProgram p, data, Py_ssize_t offset):
    """Decode the struct at data[offset:] with program p (embedded payloads)."""
    cdef Reader r
    cdef Py_buffer held
    held.len = -1  # not holding a buffer
    try:
        rd_open(&r, data, &held, False)
        rd_take(&r, offset)
        return dec_body(&r, p)
    except ProtocolError as exc:
        raise ProtocolError(f"{p.name} v{p.version}: {exc}") from None
    finally:
        rd_close(&held)


cdef int skip_tags(Reader* r) except -1:
    cdef Py_ssize_t count = rd_tag_count(r), k
    cdef uint64_t size
    for k in range(count):
        rd_uvarint(r)
        size = rd_uvarint(r)
        if size > <uint64_t>(r.end - r.pos):
            rd_fail(r, f"header tagged field of {size} bytes larger than what is left")
        r.pos += <Py_ssize_t>size
    return 0


# ---------------------------------------------------------------- the public calls

cdef int API_VERSIONS_KEY = 18
cdef int UNSUPPORTED_VERSION = 35


cdef class ProtocolCodec:
    """The public encode/decode calls over compiled programs (chronik_perf.protocol builds the one instance)."""
    cdef dict requests        # api name or key -> (lowest version, request programs by version)
    cdef dict responses       # api name or key -> (lowest version, response programs by version)
    cdef dict request_by_key  # api_key << 16 | version -> request program
    cdef object lookup        # lookup(kind, api, version): the program, or the precise ProtocolError

    def __cinit__(self, dict requests, dict responses, dict request_by_key, lookup):
        self.requests = requests
        self.responses = responses
        self.request_by_key = request_by_key
        self.lookup = lookup

    cdef ProtocolProgram program(self, dict table, str kind, api, version):
        cdef PyObject* entry = NULL
        cdef Py_ssize_t at
        cdef tuple programs
        try:
            entry = PyDict_GetItemWithError(table, api)
        except TypeError:  # an unhashable api: the lookup below names it
            pass
        if entry != NULL and type(version) is int:
            at = <Py_ssize_t>version - <Py_ssize_t>(<tuple>entry)[0]
            programs = <tuple>(<tuple>entry)[1]
            if 0 <= at < len(programs):
                return <ProtocolProgram>programs[at]
        return <ProtocolProgram>self.lookup(kind, api, version)

    def encode_request(self, api, version, body, *, int correlation_id=0, client_id="chronik-perf"):
        """Encode a whole request frame (size prefix, header v1/v2, body) for ``api`` (name or key) at ``version``.

        >>> frame = encode_request("Metadata", 12, {"topics": [{"name": "t"}]}, correlation_id=7)
        """
        return encode_request_frame(self.program(self.requests, "request", api, version), correlation_id,
                                    client_id, body)

    def decode_request(self, frame, *, bint zero_copy=False):
        """Decode a size-prefixed request frame into ``(header, body)``; header has api_key, api_version,
        correlation_id and client_id. Records fields are ``bytes``, or with ``zero_copy=True`` read-only
        ``memoryview`` slices of ``frame``."""
        return decode_request_frame(self.request_by_key, frame, zero_copy)

    def encode_response(self, api, version, int correlation_id, body):
        """Encode a whole response frame (size prefix, header v0/v1, body) for ``api`` at ``version``."""
        return encode_response_frame(self.program(self.responses, "response", api, version), correlation_id, body)

    def decode_response(self, api, version, frame, *, bint zero_copy=False):
        """Decode a size-prefixed response frame of ``api`` at ``version`` into ``(correlation_id, body)``.

        Records fields are ``bytes`` (one copy each); with ``zero_copy=True`` they are read-only ``memoryview``
        slices of ``frame`` instead (no copy; they keep the frame alive). A broker answers an ApiVersions request
        of a version it does not know with a v0 body carrying UNSUPPORTED_VERSION; such a body is read as v0 when
        it parses as v0, as Kafka's clients do."""
        cdef ProtocolProgram p = self.program(self.responses, "response", api, version)
        if p.api_key == API_VERSIONS_KEY and p.version and frame[8:10] == UNSUPPORTED_VERSION.to_bytes(2, "big"):
            try:
                return decode_response_frame(self.program(self.responses, "response", api, 0), frame, zero_copy)
            except ProtocolError:
                pass
        return decode_response_frame(p, frame, zero_copy)
