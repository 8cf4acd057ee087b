# Everything that relies on how this CPython lays out its objects, in one place: a new CPython release means
# reviewing this file. Each trick checks at import that the layout is the one it expects, and falls back to the
# public API when it is not.
#   - split dicts: a decoded struct is a copy of a template dict whose values sit in one array, filled directly;
#   - uuid.UUID's __slots__: decoded UUIDs are made by writing its two slots, encoded ones read its int slot;
#   - GC untracking: containers of atoms are untracked, as CPython itself does for dicts and tuples of atoms.
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdint cimport int16_t, int32_t, uint64_t, uint8_t
from libc.string cimport memcpy

from chronik_perf.native.includes.python cimport (PyDictObject, PyDict_Copy, PyLongObject, PyMemberDescrObject,
                                                  PyObject_GC_IsTracked, PyObject_GC_Track, PyObject_GC_UnTrack,
                                                  PyType_GenericAlloc, _PyLong_AsByteArray, _PyLong_FromByteArray)

import uuid as _uuid_mod
from sys import intern


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


cdef inline PyObject** split_values(object d):
    return <PyObject**>(<PyDictObject*><PyObject*>d).ma_values


cdef inline void split_store(PyObject** values, Py_ssize_t i, object v) noexcept:
    """Put v in slot i of a split dict's value array (a copy of a split_template), replacing what was there."""
    cdef PyObject* old = values[i]
    Py_INCREF(v)
    values[i] = <PyObject*>v
    Py_XDECREF(old)


cdef inline void untrack(object container) noexcept:
    """Take a new list or dict that holds only untracked values off the cycle collector's lists. Like CPython's own
    untracking of atom-only dicts and tuples: such a container cannot be in a cycle, so the collector need not scan
    it and a decoded body costs it nothing."""
    PyObject_GC_UnTrack(container)


cdef inline void settle_tracking(object d, bint tracked) noexcept:
    """Have the collector track a decoded dict exactly when it holds a tracked value (values written straight into
    a split dict are not seen by the dict's own tracking)."""
    if not tracked:
        if PyObject_GC_IsTracked(d):
            PyObject_GC_UnTrack(d)
    elif not PyObject_GC_IsTracked(d):
        PyObject_GC_Track(d)


cdef inline bint uuid_slot_readable(object v) noexcept:
    """v is exactly a uuid.UUID whose int slot was found."""
    return type(v) is _UUID and UUID_INT_AT >= 0


cdef inline int uuid_slot_bytes(object v, uint8_t* out) except -1:
    """The 16 bytes of a UUID (uuid_slot_readable) from its int slot, without the .bytes property's Python code."""
    return _PyLong_AsByteArray((<PyLongObject**>(<char*><PyObject*>v + UUID_INT_AT))[0], out, 16, 0, 0)


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
    untrack(u)  # holds an int and an enum member: never part of a cycle
    Py_INCREF(value)
    (<PyObject**>(<char*><PyObject*>u + UUID_INT_AT))[0] = <PyObject*>value
    Py_INCREF(_UUID_SAFE_UNKNOWN)
    (<PyObject**>(<char*><PyObject*>u + UUID_SAFE_AT))[0] = <PyObject*>_UUID_SAFE_UNKNOWN
    return u


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
        split_store(slots, i, values[i])
    return d
