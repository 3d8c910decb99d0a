"""The base subject of RFC 5256 §2.1: what SORT SUBJECT compares and what THREAD groups messages by.

The algorithm, on the subject with its RFC 2047 encoded words decoded and its white space made single spaces:

(2) remove trailing ``(fwd)`` and white space, repeatedly (subj-trailer);
(3) remove leading white space and ``Re:`` / ``Fw:`` / ``Fwd:`` leaders, each optionally with a ``[blob]`` before
    the colon and any number of ``[blob]`` before it (subj-leader);
(4) remove one leading ``[blob]`` when what follows it is not empty (subj-blob before a non-empty subj-base);
(5) repeat (3) and (4) until nothing changes;
(6) when the rest is ``[fwd: ...]``, take what is between and start again at (2).

Matching ignores ASCII case. The work is done on indexes into one string (no slice per step) and a run of blobs is
scanned once however many of its blobs step (4) removes, so the cost is linear in the subject's length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wildduck.protocols.mime import headers

#: subj-blob: ``[`` any characters but brackets ``]`` then white space
_BLOB = re.compile(r"\[[^\[\]]*\] *")
_BLOBS = re.compile(r"(?:\[[^\[\]]*\] *)*")
#: subj-refwd: ``re`` / ``fw`` / ``fwd``, white space, an optional blob, then the colon
_REFWD = re.compile(r"(?:re|fwd?) *(?:\[[^\[\]]*\] *)?:", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True, slots=True)
class BaseSubject:
    """The base subject and whether extracting it removed a reply or forward marker (``Re:``, ``Fwd:``, a
    ``(fwd)`` trailer or a ``[fwd: ...]`` wrapper), which THREAD=REFERENCES needs."""

    text: str
    reply_or_forward: bool


def normalized(subject: str | bytes) -> str:
    """Step (1): encoded words decoded (for bytes, the header value as stored), tabs and line breaks made spaces,
    runs of spaces made one."""
    text = headers.decode_words(subject) if isinstance(subject, bytes) else subject
    return _SPACES.sub(" ", text)


def extract(subject: str | bytes) -> BaseSubject:
    """The base subject of ``subject``: a header value (bytes: its encoded words are decoded) or text already
    decoded (str)."""
    s = normalized(subject)
    start, end = 0, len(s)
    marked = False
    while True:
        # (2) trailers
        while end > start:
            if s[end - 1] == " ":
                end -= 1
            elif end - start >= 5 and s[end - 5:end].lower() == "(fwd)":
                end -= 5
                marked = True
            else:
                break
        # (3)-(5) leaders and blobs; ``run_end``: where the run of blobs step (4) is eating ends (its refwd test
        # failed there already)
        run_end = -1
        while True:
            while start < end:
                if s[start] == " ":
                    start += 1
                    continue
                after_blobs = run_end if start < run_end else _BLOBS.match(s, start, end).end()  # type: ignore[union-attr]
                m = _REFWD.match(s, after_blobs, end)
                if m is None:
                    run_end = after_blobs
                    break
                start = m.end()
                marked = True
            m = _BLOB.match(s, start, end)
            if m is not None and m.end() < end:
                start = m.end()
                continue
            break
        # (6) a [fwd: ...] wrapper
        if end - start >= 6 and s[start:start + 5].lower() == "[fwd:" and s[end - 1] == "]":
            start += 5
            end -= 1
            marked = True
            continue
        return BaseSubject(s[start:end], marked)


def base_subject(subject: str | bytes) -> str:
    """The base subject text alone (see :func:`extract`)."""
    return extract(subject).text
