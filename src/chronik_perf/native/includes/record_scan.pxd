# The record scanner in C (csrc/record_scan.h): one record of a batch, every length checked against the end.
from libc.stdint cimport int64_t, uint8_t


cdef extern from "record_scan.h":
    enum:
        MIN_RECORD_SIZE "CP_MIN_RECORD_SIZE"
        OK "CP_OK"
        LENGTH_MISMATCH "CP_LENGTH_MISMATCH"
    ctypedef struct RecordView "cp_record_view":
        int64_t timestamp_delta
        int64_t offset_delta
        Py_ssize_t key_start
        Py_ssize_t key_length
        Py_ssize_t value_start
        Py_ssize_t value_length
        Py_ssize_t headers_start
        int64_t header_count
    int scan_record "cp_scan_record"(const uint8_t* buf, Py_ssize_t end, Py_ssize_t* pos,
                                     RecordView* r) noexcept nogil
