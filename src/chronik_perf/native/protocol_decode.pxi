# The protocol decoder: runs a ProtocolProgram over a frame, building the body's dicts and lists.
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_SetItem
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_AsLong, PyLong_FromLong, PyLong_FromLongLong
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint64_t

from chronik_perf.native.includes.endian cimport load_be16, load_be32, load_be64
from chronik_perf.native.includes.python cimport (PyDict_Copy, PyGC_Disable, PyGC_Enable, PyObject_GC_IsTracked,
                                                  _PyDict_NewPresized, dict_set_borrowed)
from chronik_perf.native.includes.varint cimport read_uvarint


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
            untrack(lst)
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
            untrack(lst)
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
        untrack(v)
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
            split_store(values, i, v)
        else:
            dict_set_borrowed(d, p.key_at[i], v)
    if p.flexible and dec_tagged(r, p, d):
        tracked = True
    settle_tracking(d, tracked)
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
