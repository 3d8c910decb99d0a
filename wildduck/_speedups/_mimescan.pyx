# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""MIME scanning primitives, Cython build of ``wildduck/_speedups/mimescan.py`` (same functions, same results)."""



cdef inline Py_ssize_t _find_lf(const unsigned char[:] b, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    while pos < end:
        if b[pos] == 10:
            return pos
        pos += 1
    return -1


cdef Py_ssize_t _header_end(const unsigned char[:] buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef Py_ssize_t pos = start, nl
    cdef unsigned char c
    while pos < end:
        c = buf[pos]
        if c == 10:
            return pos + 1
        if c == 13 and pos + 1 < end and buf[pos + 1] == 10:
            return pos + 2
        nl = _find_lf(buf, pos, end)
        if nl < 0:
            return end
        pos = nl + 1
    return end


def header_end(const unsigned char[:] buf, Py_ssize_t start, Py_ssize_t end):
    cdef Py_ssize_t result
    if end > buf.shape[0]:
        end = buf.shape[0]
    with nogil:
        result = _header_end(buf, start, end)
    return result


def header_fields(const unsigned char[:] buf, Py_ssize_t start, Py_ssize_t end):
    cdef list result = []
    cdef Py_ssize_t pos = start, eol, nxt, i, colon, name_end, v
    cdef unsigned char c
    cdef bint ok
    cdef bytearray last = None
    if end > buf.shape[0]:
        end = buf.shape[0]
    while pos < end:
        eol = pos
        while eol < end and buf[eol] != 10 and buf[eol] != 13:
            eol += 1
        if eol < end and buf[eol] == 13 and eol + 1 < end and buf[eol + 1] == 10:
            nxt = eol + 2
        elif eol < end:
            nxt = eol + 1
        else:
            nxt = end
        if eol == pos:
            break
        c = buf[pos]
        if c == 32 or c == 9:
            if last is not None:
                last.extend(buf[pos:eol])
        else:
            last = None
            colon = -1
            for i in range(pos, eol):
                if buf[i] == 58:
                    colon = i
                    break
            if colon > pos:
                name_end = colon
                while name_end > pos and (buf[name_end - 1] == 32 or buf[name_end - 1] == 9):
                    name_end -= 1
                ok = name_end > pos
                for i in range(pos, name_end):
                    if buf[i] < 33 or buf[i] > 126:
                        ok = False
                        break
                if ok:
                    v = colon + 1
                    while v < eol and (buf[v] == 32 or buf[v] == 9):
                        v += 1
                    last = bytearray(buf[v:eol])
                    result.append((bytes(buf[pos:name_end]).decode("ascii").lower(), last))
        pos = nxt
    return [(name, bytes(value)) for name, value in result]
