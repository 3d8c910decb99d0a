# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""IMAP command-line tokenizer, Cython build of ``wildduck/_speedups/imaptok.py`` (same function, same results)."""

cdef enum:
    ATOM_K = 0
    QUOTED_K = 1
    LPAREN_K = 2
    RPAREN_K = 3

ATOM = 0
QUOTED = 1
LPAREN = 2
RPAREN = 3
LITERAL = 4
MAX_LITERAL_DIGITS = 12


cdef inline Py_ssize_t _find(const unsigned char[:] b, unsigned char ch, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    while pos < end:
        if b[pos] == ch:
            return pos
        pos += 1
    return -1


def tokenize(const unsigned char[:] buf, Py_ssize_t start, Py_ssize_t end, Py_ssize_t depth, Py_ssize_t max_depth):
    cdef list tokens = []
    cdef Py_ssize_t pos = start, close, atom_start, q, nd, i
    cdef unsigned char c
    cdef bint nonsync
    cdef long long size
    cdef bytearray out
    if end > buf.shape[0]:
        end = buf.shape[0]
    while pos < end:
        c = buf[pos]
        if c == 32:
            pos += 1
            continue
        if c == 40:
            depth += 1
            if depth > max_depth:
                return tokens, depth, -1, False, "too deeply nested"
            tokens.append((LPAREN_K, None))
            pos += 1
            continue
        if c == 41:
            if depth == 0:
                return tokens, depth, -1, False, "unbalanced parenthesis"
            depth -= 1
            tokens.append((RPAREN_K, None))
            pos += 1
            continue
        if c == 34:
            pos += 1
            q = pos
            # fast path: no escapes
            while q < end and buf[q] != 34 and buf[q] != 92 and buf[q] != 0 and buf[q] != 13 and buf[q] != 10:
                q += 1
            if q < end and buf[q] == 34:
                tokens.append((QUOTED_K, bytes(buf[pos:q])))
                pos = q + 1
                continue
            out = bytearray()
            while True:
                if pos >= end:
                    return tokens, depth, -1, False, "unterminated quoted string"
                c = buf[pos]
                if c == 92:
                    if pos + 1 >= end or (buf[pos + 1] != 34 and buf[pos + 1] != 92):
                        return tokens, depth, -1, False, "invalid escape in quoted string"
                    out.append(buf[pos + 1])
                    pos += 2
                    continue
                if c == 34:
                    pos += 1
                    break
                if c == 0 or c == 13 or c == 10:
                    return tokens, depth, -1, False, "invalid character in quoted string"
                out.append(c)
                pos += 1
            tokens.append((QUOTED_K, bytes(out)))
            continue
        if c == 123:
            close = _find(buf, 125, pos, end)
            if close != end - 1:
                return tokens, depth, -1, False, "literal announcement must end the line"
            nonsync = close - 1 > pos and buf[close - 1] == 43
            nd = close - pos - 1 - (1 if nonsync else 0)
            if nd <= 0 or nd > MAX_LITERAL_DIGITS:
                return tokens, depth, -1, False, "invalid literal size"
            size = 0
            for i in range(pos + 1, pos + 1 + nd):
                if buf[i] < 48 or buf[i] > 57:
                    return tokens, depth, -1, False, "invalid literal size"
                size = size * 10 + (buf[i] - 48)
            return tokens, depth, size, bool(nonsync), None
        if c == 0 or c == 13 or c == 10 or c < 32 or c == 127:
            return tokens, depth, -1, False, "invalid character"
        atom_start = pos
        while pos < end:
            c = buf[pos]
            if c == 91:
                close = _find(buf, 93, pos, end)
                if close >= 0:
                    if _find(buf, 0, pos, close) >= 0:
                        return tokens, depth, -1, False, "invalid character"
                    pos = close + 1
                    continue
            if c == 32 or c == 40 or c == 41 or c == 34 or c == 123 or c < 32 or c == 127:
                break
            pos += 1
        tokens.append((ATOM_K, bytes(buf[atom_start:pos])))
    return tokens, depth, -1, False, None
