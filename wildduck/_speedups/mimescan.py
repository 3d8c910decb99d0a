"""MIME scanning primitives, pure-Python reference implementation (``_mimescan.pyx`` is the Cython twin).

All offsets are into ``buf`` (``bytes``); ``end`` bounds every search. Line breaks are CRLF or bare LF.
"""

from __future__ import annotations


def header_end(buf: bytes, start: int, end: int) -> int:
    """Offset of the first body byte of the entity starting at ``start``: just after the first empty line.

    Returns ``end`` when the entity has no empty line (it is all header).
    """
    pos = start
    while pos < end:
        c = buf[pos]
        if c == 10:  # empty line "\n"
            return pos + 1
        if c == 13 and pos + 1 < end and buf[pos + 1] == 10:  # empty line "\r\n"
            return pos + 2
        nl = buf.find(b"\n", pos, end)
        if nl < 0:
            return end
        pos = nl + 1
    return end


def header_fields(buf: bytes, start: int, end: int) -> list[tuple[str, bytes]]:
    """Header fields of the header block buf[start:end], in order: (lower-case name, unfolded value).

    A field name is printable ASCII without ':' followed by optional blanks and ':'; continuation lines (starting
    with a space or tab) are appended to the previous value without their line break; the value's leading blanks
    and any trailing line break are removed. Lines that are neither are skipped, with their continuation lines;
    the first empty line ends the block. Line breaks are LF, CRLF or a lone CR.
    """
    result: list[tuple[str, bytearray]] = []
    last: bytearray | None = None
    pos = start
    while pos < end:
        # the line is buf[pos:eol], the next one starts at nxt
        lf = buf.find(b"\n", pos, end)
        cr = buf.find(b"\r", pos, lf if lf >= 0 else end)
        if cr >= 0:
            eol, nxt = cr, (cr + 2 if cr + 1 < end and buf[cr + 1] == 10 else cr + 1)
        elif lf >= 0:
            eol, nxt = lf, lf + 1
        else:
            eol, nxt = end, end
        if eol == pos:
            break  # empty line
        first = buf[pos]
        if first == 32 or first == 9:
            if last is not None:
                last.extend(buf[pos:eol])
        else:
            last = None
            colon = buf.find(b":", pos, eol)
            if colon > pos:
                name_end = colon
                while name_end > pos and buf[name_end - 1] in (32, 9):
                    name_end -= 1
                name = buf[pos:name_end]
                if name and all(33 <= c <= 126 for c in name):
                    v = colon + 1
                    while v < eol and buf[v] in (32, 9):
                        v += 1
                    last = bytearray(buf[v:eol])
                    result.append((name.decode("ascii").lower(), last))
        pos = nxt
    return [(name, bytes(value)) for name, value in result]
