# Kafka wire protocol: a per-(message, version) program of field ops, run by one encoder (protocol_encode.pxi)
# and one decoder (protocol_decode.pxi). protocol.py compiles chronik_perf.protocol_schema into ProtocolProgram
# objects; nothing here knows a message.
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc

from sys import intern


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


cdef str UNKNOWN_TAGS = "_unknown_tagged_fields"


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
    cdef frozenset known       # every key any version of this struct has, and UNKNOWN_TAGS: what a body may hold
    cdef readonly str struct   # the struct, for errors: "Metadata request topics[]"
    cdef readonly str name
    cdef readonly int version
    cdef readonly int api_key          # of a whole message; -1 for nested structs and payloads
    cdef readonly bint header_tags     # a response header with tagged fields (v1)
    cdef Py_ssize_t size_hint          # the buffer to start the next frame with: the last frame's size, plus slack

    def __cinit__(self, str name, int version, bint flexible, list fields, int api_key=-1, bint header_tags=False,
                  known=(), str struct=None):
        """fields: (key, kind, elem_kind, nullable, tag or -1, default, sub_program) in wire order; known: the keys
        of every version of the struct (those of fields are always known); struct: its name in errors."""
        cdef int count = len(fields), i
        self.name = name
        self.struct = struct or name
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
        self.known = frozenset(self.keys) | frozenset(known) | {UNKNOWN_TAGS}
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
