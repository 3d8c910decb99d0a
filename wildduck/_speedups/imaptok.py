"""IMAP command-line tokenizer, pure-Python reference implementation (``_imaptok.pyx`` is the Cython twin).

``tokenize(buf, start, end, depth, max_depth)`` scans one line segment ``buf[start:end]`` (without its CRLF) and
returns ``(tokens, depth, literal, nonsync, error)``:

* ``tokens``: a list of ``(kind, value)``: ``ATOM`` with the atom bytes (an atom may contain a ``[...]`` section,
  spaces and parentheses included, and a following ``<...>`` partial), ``QUOTED`` with the unescaped string bytes,
  ``LPAREN``/``RPAREN`` with None;
* ``depth``: the parenthesis depth after the segment (carried over to the segment after a literal);
* ``literal``: the size announced by a trailing ``{N}`` / ``{N+}``, or -1;
* ``nonsync``: True for ``{N+}`` (LITERAL+ / LITERAL-);
* ``error``: None, or a reason (the whole command is then rejected).
"""

from __future__ import annotations

ATOM = 0
QUOTED = 1
LPAREN = 2
RPAREN = 3
LITERAL = 4

#: largest literal size accepted in an announcement (digits beyond this are an error, not an overflow)
MAX_LITERAL_DIGITS = 12

Token = tuple[int, bytes | None]


def tokenize(buf: bytes, start: int, end: int, depth: int, max_depth: int
             ) -> tuple[list[Token], int, int, bool, str | None]:
    tokens: list[Token] = []
    pos = start
    while pos < end:
        c = buf[pos]
        if c == 32:  # SP
            pos += 1
            continue
        if c == 40:  # (
            depth += 1
            if depth > max_depth:
                return tokens, depth, -1, False, "too deeply nested"
            tokens.append((LPAREN, None))
            pos += 1
            continue
        if c == 41:  # )
            if depth == 0:
                return tokens, depth, -1, False, "unbalanced parenthesis"
            depth -= 1
            tokens.append((RPAREN, None))
            pos += 1
            continue
        if c == 34:  # quoted string
            out = bytearray()
            pos += 1
            while True:
                if pos >= end:
                    return tokens, depth, -1, False, "unterminated quoted string"
                c = buf[pos]
                if c == 92:  # backslash: only \\ and \" are valid
                    if pos + 1 >= end or buf[pos + 1] not in (34, 92):
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
            tokens.append((QUOTED, bytes(out)))
            continue
        if c == 123:  # { : a literal announcement, only valid at the end of the segment
            close = buf.find(b"}", pos, end)
            if close != end - 1:
                return tokens, depth, -1, False, "literal announcement must end the line"
            digits = buf[pos + 1:close]
            nonsync = digits.endswith(b"+")
            if nonsync:
                digits = digits[:-1]
            if not digits or len(digits) > MAX_LITERAL_DIGITS or not digits.isdigit():
                return tokens, depth, -1, False, "invalid literal size"
            return tokens, depth, int(digits), nonsync, None
        if c == 0 or c == 13 or c == 10 or c < 32 or c == 127:
            return tokens, depth, -1, False, "invalid character"
        # an atom, possibly with a [section] (which may hold spaces and parentheses) and a <partial>
        atom_start = pos
        while pos < end:
            c = buf[pos]
            if c == 91:  # [ : a section runs to its ]; without one, "[" is an ordinary atom character
                close = buf.find(b"]", pos, end)
                if close >= 0:
                    if buf.find(b"\x00", pos, close) >= 0:
                        return tokens, depth, -1, False, "invalid character"
                    pos = close + 1
                    continue
            if c == 32 or c == 40 or c == 41 or c == 34 or c == 123 or c < 32 or c == 127:
                break
            pos += 1
        tokens.append((ATOM, buf[atom_start:pos]))
    return tokens, depth, -1, False, None
