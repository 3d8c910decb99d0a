"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3), sans-I/O: records in, a thread tree out, and the
``* THREAD`` response.

A message is a :class:`ThreadRecord` (:meth:`ThreadRecord.of` makes one from header values: the base subject is
extracted, the Message-ID, In-Reply-To and References parsed); :func:`ordered_subject` and :func:`references` return
the threads as a list of :class:`ThreadNode` roots (a node without a number is a dummy: a message that is referenced
but not in the set, kept only where RFC 5256 keeps it, at the top with two or more children); :func:`thread_response`
writes them.

Every walk over a tree is iterative (explicit stacks), so a chain 10,000 replies deep is no deeper for Python than
one message. The loop test before each parent/child link of REFERENCES searches upwards from the new parent and
through the new child's subtree in turns and stops at whichever ends first: the cost of a link is bounded by the
smaller of the two, which keeps long chains and wide trees sub-quadratic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

from wildduck.protocols.imap.sort import collate
from wildduck.protocols.mime import basesubject
from wildduck.protocols.mime.headers import message_ids as message_ids


class ThreadRecord(NamedTuple):
    """One message to thread (a tuple in the field order the store reads them in: a store row is a record).

    ``number`` is what the answer reports (the sequence number, or the UID for UID THREAD; or the UID, mapped to
    what is reported by :func:`thread_response`) and also the mailbox order that breaks ties; ``subject`` the base
    subject (RFC 5256 §2.1) and ``reply`` whether extracting it removed a reply or forward marker; ``date`` the
    sent date as for SORT DATE (the Date header's instant, the internal date without one), in seconds;
    ``message_id`` the message's own id (None: none valid); ``references`` the ids of its References header, or
    when that has none, the first id of In-Reply-To."""

    number: int
    subject: str
    date: float
    message_id: str | None = None
    references: tuple[str, ...] = ()
    reply: bool = False

    @classmethod
    def of(cls, number: int, *, subject: str | bytes, date: float, message_id: str | bytes | None,
           in_reply_to: str | bytes | None, references: str | bytes | None) -> ThreadRecord:
        """A record from header values (``subject`` decoded or raw, the others raw header values or None)."""
        base = basesubject.extract(subject)
        own = message_ids(message_id)
        refs = message_ids(references) or message_ids(in_reply_to)[:1]
        return cls(number, base.text, date, own[0] if own else None, tuple(refs), base.reply_or_forward)


@dataclass(eq=False, slots=True)
class ThreadNode:
    """A message of a thread (``number`` None: a dummy) and its replies, in order."""

    number: int | None
    children: list[ThreadNode] = field(default_factory=list)


# --- ORDEREDSUBJECT ----------------------------------------------------------------------------------------------
#: a record's sent date and number: how messages with one subject, and threads, are ordered
_date_number = itemgetter(2, 0)


def ordered_subject(records: Iterable[ThreadRecord]) -> list[ThreadNode]:
    """THREAD=ORDEREDSUBJECT: one thread per base subject, its messages by sent date; the first is the thread's
    root and the others its children (no grandchildren); threads ordered by the date of their first message."""
    groups: dict[str, list[ThreadRecord]] = {}
    collated: dict[str, str] = {}  # subjects repeat: each collated once
    for r in records:
        key = collated.get(r.subject)
        if key is None:
            key = collated[r.subject] = collate(r.subject)
        group = groups.get(key)
        if group is None:
            groups[key] = [r]
        else:
            group.append(r)
    threads: list[tuple[float, int, ThreadNode]] = []
    for group in groups.values():
        group.sort(key=_date_number)
        first = group[0]
        threads.append((first.date, first.number, ThreadNode(first.number, [ThreadNode(r.number) for r in group[1:]])))
    threads.sort(key=_date_number_of_thread)
    return [node for _d, _n, node in threads]


_date_number_of_thread = itemgetter(0, 1)


# --- REFERENCES --------------------------------------------------------------------------------------------------
class _Container(ThreadNode):
    """A message id's place in the tree while threading, and once threaded its node in the answer: its record
    (None: a dummy), parent and children (a dict while links are made: unlinking is O(1); a list once the tree is
    built). The parent links are cleared once the tree is sorted, so the answer holds no reference cycle."""

    __slots__ = ("links", "parent", "record")
    children: list[_Container]  # type: ignore[assignment]

    def __init__(self, record: ThreadRecord | None = None) -> None:
        self.number = record.number if record is not None else None
        self.children = []
        self.record = record
        self.parent: _Container | None = None
        self.links: dict[_Container, None] = {}


def _would_loop(parent: _Container, child: _Container) -> bool:
    """Whether making ``parent`` the parent of ``child`` makes a loop: ``parent`` is ``child`` or below it.
    Searches up from ``parent`` and down through ``child``'s subtree one step each in turn: the cost is the
    smaller of ``parent``'s depth and ``child``'s subtree."""
    if not child.links:  # nothing below ``child`` (most often: a message not replied to yet)
        return parent is child
    up: _Container | None = parent
    down = [child]
    while True:
        if up is None:
            return False
        if up is child:
            return True
        up = up.parent
        if not down:
            return False
        node = down.pop()
        if node is parent:
            return True
        down.extend(node.links)


def _build(records: Sequence[ThreadRecord]) -> list[_Container]:
    """Steps 1 (links from References or In-Reply-To) and 2 (the messages without a parent: the top)."""
    table: dict[str, _Container] = {}
    every: list[_Container] = []  # each container once: the messages' and the dummies'
    for r in sorted(records, key=_number):
        # a message without an id, or with the id of a message before it, is alone under an id of its own
        message_id = r.message_id
        own = table.get(message_id) if message_id is not None else None
        if own is not None and own.record is None:
            own.record = r
            own.number = r.number
        else:
            own = _Container(r)
            if message_id is not None and message_id not in table:
                table[message_id] = own
            every.append(own)
        # (A) each reference the parent of the next; a link that exists stays, none makes a loop
        previous: _Container | None = None
        for ref in r.references:
            node = table.get(ref)
            if node is None:
                node = table[ref] = _Container()
                every.append(node)
            if previous is not None and node is not previous and node.parent is None \
                    and not _would_loop(previous, node):
                node.parent = previous
                previous.links[node] = None
            previous = node
        # (B) the last reference is the message's parent, instead of any parent it had (none without references)
        if own.parent is not None:
            del own.parent.links[own]
            own.parent = None
        if previous is not None and not _would_loop(previous, own):
            own.parent = previous
            previous.links[own] = None
    top = []
    for c in every:
        if c.links:
            c.children = list(c.links)
            c.links = {}
        if c.parent is None:
            top.append(c)
    return top


_number = itemgetter(0)


def _prune(roots: list[_Container]) -> list[_Container]:
    """Step 3: dummies without children go; a dummy's children take its place, except at the top where a dummy
    with two or more children stays."""
    order: list[_Container] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    for node in reversed(order):  # children before their parents: what is spliced up is already pruned
        children = node.children
        if children and any(c.record is None for c in children):
            kept: list[_Container] = []
            for c in children:
                if c.record is None:
                    kept.extend(c.children)
                else:
                    kept.append(c)
            node.children = kept
            for c in kept:
                c.parent = node
    top: list[_Container] = []
    for node in roots:
        if node.record is not None or len(node.children) > 1:
            top.append(node)
        elif node.children:
            only = node.children[0]
            only.parent = None
            top.append(only)
    return top


def _sort_key(node: _Container) -> tuple[float, int]:
    """A message's sent date and number; a dummy's are those of its first child."""
    while node.record is None and node.children:
        node = node.children[0]
    return (node.record.date, node.record.number) if node.record is not None else (0.0, 0)


def _subject(node: _Container, collated: dict[str, str]) -> tuple[str, bool]:
    """The (collated) base subject of a top-level message and whether it was a reply; a dummy's first child's."""
    record = node.record if node.record is not None else node.children[0].record
    assert record is not None
    key = collated.get(record.subject)
    if key is None:
        key = collated[record.subject] = collate(record.subject)
    return key, record.reply


def _group_by_subject(top: list[_Container]) -> list[_Container]:
    """Step 5: top-level messages with the same (non-empty) base subject become one thread."""
    table: dict[str, _Container] = {}
    collated: dict[str, str] = {}
    subjects = [_subject(node, collated) for node in top]
    for node, (subject, reply) in zip(top, subjects, strict=True):  # (A)-(C): per subject a dummy if there is
        if not subject:  # one, else one not a reply if there is one
            continue
        held = table.get(subject)
        if held is None or (node.record is None and held.record is not None) or (
                held.record is not None and node.record is not None and held.record.reply and not reply):
            table[subject] = node
    roots: list[_Container] = []
    for node, (subject, reply) in zip(top, subjects, strict=True):  # (D)
        if node.parent is not None:  # already under a dummy (iv)
            continue
        held = table.get(subject) if subject else None
        if held is None or held is node:
            roots.append(node)
        elif held.record is None and node.record is None:  # (i) both dummies: one set of children
            for c in node.children:
                c.parent = held
            held.children.extend(node.children)
            node.children = []
        elif held.record is None or (reply and not held.record.reply):  # (ii), (iii)
            held.children.append(node)
            node.parent = held
        else:  # (iv) both under a new dummy, which takes the table's place
            dummy = _Container()
            for c in (held, node):
                dummy.children.append(c)
                c.parent = dummy
            table[subject] = dummy
            roots.append(dummy)
    return [n for n in roots if n.parent is None]


def references(records: Iterable[ThreadRecord]) -> list[ThreadNode]:
    """THREAD=REFERENCES (RFC 5256 §3): threads from References and In-Reply-To, dummies pruned, top-level
    messages with one base subject merged, siblings by sent date (ties in mailbox order)."""
    top = _prune(_build(list(records)))
    for node in top:  # step 4: the top by sent date, a dummy by its first child's
        if node.record is None:
            node.children.sort(key=_sort_key)
    top.sort(key=_sort_key)
    top = _group_by_subject(top)
    # step 6: every set of siblings by sent date, depth first (a dummy sorts by its first child's)
    stack = list(top)
    walk: list[_Container] = []
    while stack:
        node = stack.pop()
        node.parent = None  # no longer needed: the answer holds no cycle
        walk.append(node)
        stack.extend(node.children)
    for node in reversed(walk):
        if len(node.children) > 1:
            node.children.sort(key=_sort_key)
    top.sort(key=_sort_key)
    return list(top)


# --- the response ------------------------------------------------------------------------------------------------
def thread_response(threads: Sequence[ThreadNode], numbers: Mapping[int, int] | None = None) -> bytes:
    """``* THREAD (thread)(thread)...`` (RFC 5256 §4): a chain of single replies is a run of numbers in one list,
    a message with several replies ends its list with one nested list per reply, a dummy writes no number.
    ``numbers``: what to write for each node's number (the records were numbered by UID, the answer reports
    sequence numbers: the same order, so the same threads)."""
    out: list[bytes] = [b"* THREAD"]
    if threads:
        out.append(b" ")
    stack: list[ThreadNode | bytes] = list(reversed(threads))
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
            continue
        out.append(b"(")
        node: ThreadNode = item
        wrote = False
        while True:
            if node.number is not None:
                number = node.number if numbers is None else numbers[node.number]
                out.append(b" %d" % number if wrote else b"%d" % number)
                wrote = True
            if len(node.children) != 1:
                break
            node = node.children[0]
        if node.children and wrote:
            out.append(b" ")
        stack.append(b")")
        stack.extend(reversed(node.children))
    out.append(b"\r\n")
    return b"".join(out)
