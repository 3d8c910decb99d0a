# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""IMAP string forms and the FETCH response line, Cython build of ``wildduck/_speedups/imapfmt.py`` (same
functions, same bytes): one pass to classify a string, one to write it."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

MAX_QUOTED = 1024
cdef Py_ssize_t _MAX_QUOTED = 1024


cdef inline Py_ssize_t _digits(Py_ssize_t n, char* out) noexcept:
    """Writes the decimal digits of ``n`` >= 0 at ``out``; returns how many."""
    cdef char tmp[24]
    cdef Py_ssize_t k = 0, i
    if n == 0:
        out[0] = 48
        return 1
    while n > 0:
        tmp[k] = 48 + n % 10
        n //= 10
        k += 1
    for i in range(k):
        out[i] = tmp[k - 1 - i]
    return k


cdef inline Py_ssize_t _copy(const unsigned char* p, Py_ssize_t n, char* o, Py_ssize_t pos, bint nul,
                             bint escape) noexcept:
    """Copies ``p[:n]`` to ``o + pos``, a NUL as U+FFFD and (with ``escape``) ``"`` and ``\\`` after a backslash;
    returns the position after it."""
    cdef Py_ssize_t i
    cdef unsigned char c
    if not nul and not escape:
        memcpy(o + pos, p, n)
        return pos + n
    for i in range(n):
        c = p[i]
        if c == 0:
            o[pos] = 0xEF
            o[pos + 1] = 0xBF
            o[pos + 2] = 0xBD
            pos += 3
        elif escape and (c == 34 or c == 92):
            o[pos] = 92
            o[pos + 1] = c
            pos += 2
        else:
            o[pos] = c
            pos += 1
    return pos


cdef bytes _render(const unsigned char* p, Py_ssize_t n, bint utf8, bint force_literal):
    """``string`` of ``p[:n]`` (a NUL written as U+FFFD), a literal whatever it holds when ``force_literal``."""
    cdef Py_ssize_t i, nul = 0, esc = 0, size, pos
    cdef unsigned char c
    cdef bint lit = force_literal
    for i in range(n):
        c = p[i]
        if c == 0:
            nul += 1
        elif c == 13 or c == 10:
            lit = True
        elif c >= 128:
            if not utf8:
                lit = True
        elif c == 34 or c == 92:
            esc += 1
    size = n + 2 * nul
    if nul and not utf8:
        lit = True
    if size > _MAX_QUOTED:
        lit = True
    cdef bytes out
    cdef char* o
    if lit:
        out = PyBytes_FromStringAndSize(NULL, size + 26)
        o = PyBytes_AS_STRING(out)
        o[0] = 123  # {
        pos = 1 + _digits(size, o + 1)
        o[pos] = 125  # }
        o[pos + 1] = 13
        o[pos + 2] = 10
        pos += 3
        pos = _copy(p, n, o, pos, nul, False)
        return o[:pos]
    out = PyBytes_FromStringAndSize(NULL, size + esc + 2)
    o = PyBytes_AS_STRING(out)
    o[0] = 34
    pos = 1
    pos = _copy(p, n, o, pos, nul, esc)
    o[pos] = 34
    return out


def string(bytes data, bint utf8):
    return _render(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), utf8, False)


def human_string(bytes data, bint utf8):
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), i, k = 0, start, end
    cdef unsigned char c
    cdef bint blank = False, changed = False, special = False
    cdef unsigned char* buf = <unsigned char*>malloc(n + 1)
    if buf == NULL:
        raise MemoryError()
    try:
        # line breaks removed, runs of blanks (across removed line breaks) made one space
        for i in range(n):
            c = p[i]
            if c == 13 or c == 10:
                changed = True
                continue
            if c == 32 or c == 9:
                if blank:
                    changed = True
                    continue
                blank = True
                if c == 9:
                    changed = True
                buf[k] = 32
                k += 1
                continue
            blank = False
            if c == 34 or c == 92:
                special = True
            buf[k] = c
            k += 1
        start = 0
        end = k
        if end > start and buf[start] == 32:
            start += 1
            changed = True
        if end > start and buf[end - 1] == 32:
            end -= 1
            changed = True
        # a NUL is written as U+FFFD by _render in both forms; it changes nothing else here
        return _render(buf + start, end - start, utf8, changed or special)
    finally:
        free(buf)


def fetch_line(Py_ssize_t seq, list items):
    cdef Py_ssize_t total = 0, count = len(items), i, pos, size
    cdef bytes item, out
    cdef char* o
    if seq < 0:
        raise ValueError("negative sequence number")
    for i in range(count):
        item = items[i]
        if item is None:
            raise TypeError("a FETCH item is bytes, not None")
        total += PyBytes_GET_SIZE(item)
    if count:
        total += count - 1
    out = PyBytes_FromStringAndSize(NULL, total + 36)
    o = PyBytes_AS_STRING(out)
    memcpy(o, b"* ", 2)
    pos = 2
    pos += _digits(seq, o + pos)
    memcpy(o + pos, b" FETCH (", 8)
    pos += 8
    for i in range(count):
        if i:
            o[pos] = 32
            pos += 1
        item = items[i]
        size = PyBytes_GET_SIZE(item)
        memcpy(o + pos, PyBytes_AS_STRING(item), size)
        pos += size
    o[pos] = 41
    o[pos + 1] = 13
    o[pos + 2] = 10
    pos += 3
    return o[:pos]
