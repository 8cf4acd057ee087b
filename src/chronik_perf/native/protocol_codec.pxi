# The public encode/decode calls of the wire protocol, over the compiled programs.
from cpython.dict cimport PyDict_GetItemWithError
from cpython.object cimport PyObject


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
