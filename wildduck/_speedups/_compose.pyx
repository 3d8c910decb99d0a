# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Recomposing stored messages, Cython build of ``wildduck/_speedups/compose.py`` (same function, same results).

``encode_base64`` writes the lines straight into the result: one pass, no intermediate copies.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memchr, memcpy

cdef const char* _ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def encode_base64(const unsigned char[:] data, Py_ssize_t line, bytes nl, bint final_nl):
    if line < 1:
        raise ValueError("line must be at least 1")
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t enc = ((n + 2) // 3) * 4
    cdef Py_ssize_t nl_len = len(nl)
    cdef Py_ssize_t lines = (enc + line - 1) // line
    cdef Py_ssize_t size = enc + nl_len * (lines - 1 if lines > 0 else 0) + (nl_len if final_nl else 0)
    cdef bytes result = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char* out = <unsigned char*> PyBytes_AS_STRING(result)
    cdef const unsigned char* nlp = <const unsigned char*> PyBytes_AS_STRING(nl)
    cdef const unsigned char* src
    cdef Py_ssize_t i = 0, o = 0, col = 0, k, full = n - n % 3, groups_per_line
    cdef unsigned int v
    cdef unsigned char quad[4]
    if n:
        src = &data[0]
    with nogil:
        if line % 4 == 0:
            # whole groups per line: one check per group
            groups_per_line = line // 4
            while i < full:
                k = groups_per_line
                while k and i < full:
                    v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2]
                    out[o] = _ALPHABET[(v >> 18) & 63]
                    out[o + 1] = _ALPHABET[(v >> 12) & 63]
                    out[o + 2] = _ALPHABET[(v >> 6) & 63]
                    out[o + 3] = _ALPHABET[v & 63]
                    o += 4
                    i += 3
                    k -= 1
                if k == 0 and (i < n):
                    for k in range(nl_len):
                        out[o + k] = nlp[k]
                    o += nl_len
            if i < n:
                v = src[i] << 16
                if i + 1 < n:
                    v |= src[i + 1] << 8
                out[o] = _ALPHABET[(v >> 18) & 63]
                out[o + 1] = _ALPHABET[(v >> 12) & 63]
                out[o + 2] = _ALPHABET[(v >> 6) & 63] if i + 1 < n else 61
                out[o + 3] = 61
                o += 4
        else:
            # any other width: one character at a time
            while i < n:
                v = src[i] << 16
                if i + 1 < n:
                    v |= src[i + 1] << 8
                if i + 2 < n:
                    v |= src[i + 2]
                quad[0] = _ALPHABET[(v >> 18) & 63]
                quad[1] = _ALPHABET[(v >> 12) & 63]
                quad[2] = _ALPHABET[(v >> 6) & 63] if i + 1 < n else 61
                quad[3] = _ALPHABET[v & 63] if i + 2 < n else 61
                i += 3
                for k in range(4):
                    if col == line:
                        for col in range(nl_len):
                            out[o + col] = nlp[col]
                        o += nl_len
                        col = 0
                    out[o] = quad[k]
                    o += 1
                    col += 1
        if final_nl:
            for k in range(nl_len):
                out[o + k] = nlp[k]
            o += nl_len
    return result


cdef Py_ssize_t _stuff(const char* src, Py_ssize_t n, char* out) noexcept nogil:
    """Doubles each "." that follows CRLF in ``src[:n]``, writing to ``out`` (NULL: only count); returns the number
    of dots added."""
    cdef Py_ssize_t count = 0, i = 0, o = 0, at
    cdef const char* hit
    while i < n:
        hit = <const char*> memchr(src + i, 46, n - i)
        if hit == NULL:
            break
        at = hit - src
        if out != NULL:
            memcpy(out + o, src + i, at + 1 - i)
            o += at + 1 - i
        if at >= 2 and src[at - 1] == 10 and src[at - 2] == 13:
            if out != NULL:
                out[o] = 46
                o += 1
            count += 1
        i = at + 1
    if out != NULL:
        memcpy(out + o, src + i, n - i)
    return count


def stuff_dots(data):
    if type(data) is not bytes:
        return data.replace(b"\r\n.", b"\r\n..")
    cdef const char* src = PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t count
    cdef bytes result
    cdef char* out
    with nogil:
        count = _stuff(src, n, NULL)
    if count == 0:
        return data
    result = PyBytes_FromStringAndSize(NULL, n + count)
    out = PyBytes_AS_STRING(result)
    with nogil:
        _stuff(src, n, out)
    return result
