"""PREVIEW's grammar (RFC 8970 3.1: ``PREVIEW`` and ``PREVIEW (LAZY)``, in a list or alone, beside the command's own
modifiers); its malformed forms are in ``test_qresync.py``'s ``test_malformed``."""

from __future__ import annotations

import pytest

from tests.protocols.imap.test_grammar import parse
from wildduck.protocols.imap import grammar as g


@pytest.mark.parametrize(("line", "names", "changedsince"), [
    (b"a FETCH 1 PREVIEW", ["PREVIEW"], None),
    (b"a FETCH 1 preview (lazy)", ["PREVIEW"], None),
    (b"a FETCH 1:* (FLAGS PREVIEW (LAZY) UID)", ["FLAGS", "PREVIEW", "UID"], None),
    (b"a FETCH 1 (PREVIEW (LAZY LAZY))", ["PREVIEW"], None),
    # a lone PREVIEW followed by the command's modifiers: they are the command's
    (b"a FETCH 1 PREVIEW (CHANGEDSINCE 4)", ["PREVIEW"], 4),
    (b"a UID FETCH 1 PREVIEW (LAZY) (CHANGEDSINCE 3)", ["PREVIEW"], 3),
])
def test_preview(line: bytes, names: list[str], changedsince: int | None) -> None:
    cmd = parse(line)
    assert isinstance(cmd, g.Fetch), cmd
    assert [i.name for i in cmd.items] == names and cmd.changedsince == changedsince
    assert all(i.label == i.name for i in cmd.items)
