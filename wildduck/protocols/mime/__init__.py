"""MIME parsing, splitting for storage, recomposition, ENVELOPE and BODYSTRUCTURE (sans-I/O).

``analyze(raw)`` parses a message once into:

* a tree of byte offsets into ``raw`` (each node: ``hs`` header start, ``bs`` body start (after the empty line
  ending the header; ``raw[hs:bs]`` is the header block with it), ``be`` body end, ``ct`` [type, subtype] after
  RFC 2045 defaults, ``lines`` body lines, ``parts`` for multiparts, ``msg`` for message/rfc822);
* the storage split: ``skeleton`` (the message without attachment bodies), ``parts`` (the cuts) and ``blobs``
  (bytes by SHA-256), such that ``compose(skeleton, parts, blobs) == raw``;
* IMAP ENVELOPE and BODYSTRUCTURE data, the decoded subject / Message-ID / Date, and decoded text for search.

Strings inside ENVELOPE/BODYSTRUCTURE data are ``str`` when the header bytes are UTF-8, else ``{"b": base64}``
(see :mod:`wildduck.protocols.mime.jsonbytes`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from wildduck import _speedups
from wildduck.protocols.mime import bodystructure as _bodystructure
from wildduck.protocols.mime import envelope as _envelope
from wildduck.protocols.mime import headers, text, tree
from wildduck.protocols.mime.store import Cut, CutLike, compose, composed_size, iter_compose, materialize

DEFAULT_INLINE_TEXT_LIMIT = 300 * 1024

__all__ = [
    "DEFAULT_INLINE_TEXT_LIMIT", "Analysis", "Cut", "CutLike", "analyze", "compose", "composed_size",
    "iter_compose", "materialize", "scanner",
]


def scanner() -> ModuleType:
    """The scanner implementation in use (Cython when built, unless WILDDUCK_NO_EXTENSIONS is set)."""
    return _speedups.load("mimescan")


@dataclass(slots=True)
class Analysis:
    size: int
    skeleton: bytes
    parts: list[Cut]
    blobs: dict[str, bytes]
    tree: dict[str, Any]
    envelope: list[Any]
    bodystructure: list[Any]
    subject: str
    message_id: str | None
    header_date: dt.datetime | None
    text: str
    has_attachments: bool
    #: the decoded header blocks, the message's and its parts' (what SEARCH TEXT matches besides the body text)
    header_text: str
    #: the ids the message refers to, for threading (:func:`headers.references`)
    references: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def analyze(raw: bytes, *, inline_text_limit: int = DEFAULT_INLINE_TEXT_LIMIT,
            scanner_module: ModuleType | None = None) -> Analysis:
    """Parse ``raw`` and split it for storage. Never raises for any input bytes."""
    from wildduck.protocols.mime.store import skeleton, split

    raw = bytes(raw)
    sc = scanner_module or scanner()
    root = tree.build(raw, sc)
    cuts, blobs = split(raw, root, inline_text_limit)
    subject, message_id, header_date = headers.summary(raw, root)
    analysis = Analysis(
        size=len(raw),
        skeleton=skeleton(raw, cuts),
        parts=cuts,
        blobs=blobs,
        tree=root,
        envelope=_envelope.envelope(raw, root),
        bodystructure=_bodystructure.bodystructure(raw, root),
        subject=subject,
        message_id=message_id,
        header_date=header_date,
        text=text.extract_text(raw, root),
        has_attachments=text.has_attachments(raw, root),
        header_text=text.search_header_text(raw, root),
        references=headers.references(raw, root),
    )
    tree.strip_cache(root)
    return analysis
