# CPython's C API beyond Cython's own cpython/ declarations, one name per function. The underscored ones and the
# object layouts (PyDictObject, PyMemberDescrObject) are CPython internals: only native/cpython_internals.pxi and
# the writers of bytes objects in place use them.
from cpython.object cimport PyObject, PyTypeObject


cdef extern from "Python.h":
    # bytes made at a size and filled in place, then shrunk to what was written
    PyObject* bytes_alloc "PyBytes_FromStringAndSize"(const char* s, Py_ssize_t n) except NULL
    char* bytes_data "PyBytes_AS_STRING"(PyObject* b)
    int _PyBytes_Resize(PyObject** b, Py_ssize_t n) except -1

    # dicts: presized, walked, and read or written with borrowed keys
    dict _PyDict_NewPresized(Py_ssize_t minused)
    object PyDict_Copy(object d)
    int PyDict_Next(object d, Py_ssize_t* pos, PyObject** key, PyObject** value)
    Py_ssize_t PyDict_GET_SIZE(object d)
    PyObject* dict_get_borrowed "PyDict_GetItemWithError"(object d, PyObject* key) except? NULL
    int dict_set_borrowed "PyDict_SetItem"(object d, PyObject* key, object value) except -1

    # a borrowed object's type and size, without a new reference
    PyTypeObject* type_of "Py_TYPE"(PyObject* o) noexcept
    Py_ssize_t size_of "Py_SIZE"(PyObject* o) noexcept
    PyTypeObject PyBytes_Type
    PyTypeObject PyLong_Type

    # ints to and from big-endian bytes
    ctypedef struct PyLongObject
    object _PyLong_FromByteArray(const unsigned char* b, size_t n, int little_endian, int is_signed)
    int _PyLong_AsByteArray(PyLongObject* v, unsigned char* b, size_t n, int little_endian, int is_signed) except -1

    # the cycle collector
    int PyGC_Enable()
    int PyGC_Disable()
    int PyObject_GC_IsTracked(object o)
    void PyObject_GC_UnTrack(object o)
    void PyObject_GC_Track(object o)

    # object layouts
    object PyType_GenericAlloc(PyTypeObject* type, Py_ssize_t nitems)
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    ctypedef struct PyDictObject:
        void* ma_values
