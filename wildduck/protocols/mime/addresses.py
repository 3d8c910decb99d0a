"""RFC 5322 address lists (From, To, Cc, ...), read as Dovecot reads them for ENVELOPE."""

from __future__ import annotations

from dataclasses import dataclass

from wildduck.protocols.mime.lexer import cfws, domain, skip_cfws, words


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """One mailbox, or a group start (``group`` set, others None) / group end (everything None).

    A mailbox may lack its local part or its domain (None); ``syntax_error`` marks an unterminated ``<...>``.
    """

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None
    group: bytes | None = None
    group_end: bool = False
    syntax_error: bool = False


def parse_addresses(value: bytes | None) -> list[ParsedAddress]:
    """Parse an RFC 5322 address list (mailboxes and groups), tolerating garbage as Dovecot does: a lone word is a
    local part without domain, several words without an address are a display name without mailbox, an empty
    element before a comma is an address with neither, and anything else after an address ends the list."""
    if not value:
        return []
    result: list[ParsedAddress] = []
    n = len(value)
    i = 0
    in_group = False
    while True:
        phrase, comment, i = words(value, i)
        c = value[i] if i < n else -1
        if c == 0x3A and not in_group:  # group start
            result.append(ParsedAddress(None, None, None, None, group=b" ".join(phrase)))
            in_group = True
            i += 1
            continue
        if c == 0x3C:  # name-addr
            j = skip_cfws(value, i + 1)
            route = None
            if j < n and value[j] == 0x40:
                gt = value.find(b">", j)
                colon = value.find(b":", j, n if gt < 0 else gt)
                if colon >= 0:
                    route, j = value[j:colon], colon + 1
            local, _comment, j = words(value, j)
            host = None
            if j < n and value[j] == 0x40:
                host, j = domain(value, j + 1)
            j = skip_cfws(value, j)
            ok = j < n and value[j] == 0x3E
            result.append(ParsedAddress(b" ".join(phrase) if phrase else None, route, b"".join(local) or None, host,
                                        syntax_error=not ok))
            if not ok:
                break
            i = skip_cfws(value, j + 1)
        elif c == 0x40:  # addr-spec
            host, i = domain(value, i + 1)
            comment, i = cfws(value, i)
            result.append(ParsedAddress(comment or None, None, b"".join(phrase) or None, host))
        elif len(phrase) > 1:
            result.append(ParsedAddress(b" ".join(phrase), None, None, None))
        elif phrase:
            result.append(ParsedAddress(comment or None, None, phrase[0], None))
        elif c == 0x2C:  # an empty element before a comma
            result.append(ParsedAddress(None, None, None, None))
        if i >= n:
            break
        if value[i] == 0x3B and in_group:
            result.append(ParsedAddress(None, None, None, None, group_end=True))
            in_group = False
            i = skip_cfws(value, i + 1)
            if i < n and value[i] == 0x2C:  # the comma after a group separates it from what follows
                i += 1
            continue
        if value[i] != 0x2C:  # garbage: the rest of the field is not read
            break
        i += 1
    if in_group:
        result.append(ParsedAddress(None, None, None, None, group_end=True))
    return result
