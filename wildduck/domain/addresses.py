"""E-mail address rules (WildDuck's): normalized display form, lookup key, ``+label`` and dots.

* Local part: Unicode NFC, trimmed, lower-cased. Domain: lower-cased, punycode (``xn--``) labels converted to
  Unicode NFC, so the canonical form is Unicode.
* ``addrview`` (the lookup key): the normalized address with every dot removed from the local part.
* ``+label`` (everything from the last ``+`` of the local part) is stripped when resolving a recipient; stored
  addresses cannot contain ``+``.
"""

from __future__ import annotations

import re
import unicodedata

import idna

from wildduck.errors import InvalidInput

_MAX_LOCAL = 64 * 4  # octets in UTF-8 (RFC 6531 raises the 64-character limit only for characters)
_MAX_DOMAIN = 255
# characters never valid in an unquoted local part (RFC 5322 atext, extended to UTF-8 by RFC 6532)
_LOCAL_BAD = re.compile(r'[\x00-\x20\x7f()<>\[\]:;@\\,"]')


def _domain_to_unicode(domain: str, field: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    if not domain or len(domain) > _MAX_DOMAIN:
        raise InvalidInput(f"invalid domain {domain!r}", field)
    if domain.startswith("[") and domain.endswith("]"):  # address literal
        return domain
    labels = []
    for label in domain.split("."):
        if not label:
            raise InvalidInput(f"invalid domain {domain!r}: empty label", field)
        if label.startswith("xn--"):
            try:
                label = idna.decode(label)
            except idna.IDNAError as exc:
                raise InvalidInput(f"invalid punycode label {label!r}: {exc}", field) from None
        label = unicodedata.normalize("NFC", label)
        if not label.isascii():
            try:
                idna.encode(label, uts46=True)
            except idna.IDNAError as exc:
                raise InvalidInput(f"invalid domain label {label!r}: {exc}", field) from None
        labels.append(label)
    return ".".join(labels)


def split(address: str, field: str = "address") -> tuple[str, str]:
    """Split into (local, domain) at the last ``@``; raises InvalidInput for a malformed address."""
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        raise InvalidInput(f"invalid address {address!r}: expected local@domain", field)
    return local, domain


def normalize(address: str, field: str = "address") -> str:
    """Canonical form: NFC lower-case local part, Unicode lower-case domain."""
    local, domain = split(address, field)
    local = unicodedata.normalize("NFC", local.strip()).lower()
    if len(local.encode()) > _MAX_LOCAL or _LOCAL_BAD.search(local):
        raise InvalidInput(f"invalid local part {local!r}", field)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidInput(f"invalid local part {local!r}: misplaced dot", field)
    return f"{local}@{_domain_to_unicode(domain, field)}"


def addrview(address: str, field: str = "address") -> str:
    """Lookup key of a stored address: normalized, dots removed from the local part."""
    local, domain = split(normalize(address, field), field)
    return f"{local.replace('.', '')}@{domain}"


def lookup_key(address: str, field: str = "address") -> str:
    """Lookup key of a recipient address: like :func:`addrview` after stripping ``+label``."""
    local, domain = split(normalize(address, field), field)
    if "+" in local:
        local = local[: local.rindex("+")]
        if not local:
            raise InvalidInput(f"invalid address {address!r}: empty local part before +", field)
    return f"{local.replace('.', '')}@{domain}"


def validate_new(address: str, field: str = "address") -> tuple[str, str]:
    """(normalized, addrview) of an address to be created; refuses ``+`` like WildDuck."""
    norm = normalize(address, field)
    if "+" in split(norm, field)[0]:
        raise InvalidInput("address can not contain +", field)
    return norm, addrview(norm, field)


def unameview(username: str, field: str = "username") -> str:
    """Lookup key of a username: NFC, lower-case, dots removed."""
    name = unicodedata.normalize("NFC", username.strip()).lower()
    if not name or len(name) > 128 or any(c.isspace() or c in "\x00:" for c in name):
        raise InvalidInput(f"invalid username {username!r}", field)
    if "@" in name:
        return addrview(name, field)
    return name.replace(".", "")
