"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES, sans-I/O (wildduck.protocols.imap.threads): each step of RFC 5256
§3, the response's syntax (RFC 5256 §4 and its examples), and pathological input: loops in References, duplicate and
missing Message-IDs, chains 10,000 messages deep."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck.protocols.imap.threads import (
    ThreadNode,
    ThreadRecord,
    message_ids,
    ordered_subject,
    references,
    thread_response,
)


def rec(number: int, subject: str = "s", date: float | None = None, message_id: str | None = "auto",
        in_reply_to: str | None = None, refs: str | None = None) -> ThreadRecord:
    """A record from header values; ``message_id`` "auto" is ``<number@x>``, ``date`` defaults to ``number``."""
    own = f"<{number}@x>" if message_id == "auto" else message_id
    return ThreadRecord.of(number, subject=subject, date=float(number if date is None else date), message_id=own,
                           in_reply_to=in_reply_to, references=refs)


def refs_answer(records: list[ThreadRecord]) -> str:
    return thread_response(references(records)).decode().removeprefix("* THREAD").strip()


def subject_answer(records: list[ThreadRecord]) -> str:
    return thread_response(ordered_subject(records)).decode().removeprefix("* THREAD").strip()


# --- header values -------------------------------------------------------------------------------------------------
def test_message_ids() -> None:
    assert message_ids("<a@b> <c@d>\r\n\t<e@f>") == ["a@b", "c@d", "e@f"]
    assert message_ids(b"junk <a@b> (comment) <no-at> <@> <x@y") == ["a@b"]
    assert message_ids(None) == [] and message_ids("") == []


def test_record_of_header_values() -> None:
    r = ThreadRecord.of(3, subject=b"=?UTF-8?Q?Re=3A_x?=", date=1.0, message_id="<m@x>",
                        in_reply_to="<p@x> <q@x>", references="<a@x> <b@x>")
    assert (r.subject, r.reply, r.message_id, r.references) == ("x", True, "m@x", ("a@x", "b@x"))
    # without valid References: only the first id of In-Reply-To
    only = ThreadRecord.of(3, subject="x", date=1.0, message_id=None, in_reply_to="<p@x> <q@x>",
                           references="garbage")
    assert (only.message_id, only.references, only.reply) == (None, ("p@x",), False)


# --- the response ------------------------------------------------------------------------------------------------
def test_response_of_the_rfc_example() -> None:
    """RFC 5256 §4: ``(2)(3 6 (4 23)(44 7 96))``; a dummy parent writes no number: ``((3)(5))``."""
    tree = [ThreadNode(2), ThreadNode(3, [ThreadNode(6, [ThreadNode(4, [ThreadNode(23)]),
                                                          ThreadNode(44, [ThreadNode(7, [ThreadNode(96)])])])])]
    assert thread_response(tree) == b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    assert thread_response([ThreadNode(None, [ThreadNode(3), ThreadNode(5)])]) == b"* THREAD ((3)(5))\r\n"
    assert thread_response([]) == b"* THREAD\r\n"


def test_response_of_a_deep_branching_tree() -> None:
    """Every node with two replies, 10,000 levels: nested lists that deep, written without recursion."""
    top = node = ThreadNode(1)
    for n in range(2, 20001, 2):
        nxt = ThreadNode(n + 1)
        node.children = [ThreadNode(n), nxt]
        node = nxt
    out = thread_response([top]).decode()
    assert out.startswith("* THREAD (1 (2)(3 (4)(5 (6)") and out.endswith("(20000)(20001)" + ")" * 10000 + "\r\n")


# --- ORDEREDSUBJECT ----------------------------------------------------------------------------------------------
def test_ordered_subject() -> None:
    """Threads by base subject, messages by date inside; the first message is the root and every other one its
    child; the threads by their first message's date (ties by number)."""
    records = [rec(1, "b", 5), rec(2, "Re: a", 3), rec(3, "A", 1), rec(4, "c", 2), rec(5, "re: B", 0),
               rec(6, "a", 3), rec(7, "Fwd: c", 9)]
    assert subject_answer(records) == "(5 1)(3 (2)(6))(4 7)"
    assert subject_answer([]) == ""


# --- REFERENCES --------------------------------------------------------------------------------------------------
def test_references_chain_and_branches() -> None:
    records = [rec(1, "hello"), rec(2, "Re: hello", in_reply_to="<1@x>"),
               rec(3, "Re: hello", refs="<1@x> <2@x>"), rec(4, "Re: hello", refs="<1@x>"),
               rec(5, "other")]
    assert refs_answer(records) == "(1 (2 3)(4))(5)"


def test_a_dummy_at_the_top_stays_with_two_children_and_goes_with_one() -> None:
    two = [rec(1, "x", refs="<gone@x>"), rec(2, "y", refs="<gone@x>")]
    assert refs_answer(two) == "((1)(2))"
    one = [rec(1, "x", refs="<gone@x>"), rec(2, "y")]
    assert refs_answer(one) == "(1)(2)"


def test_dummies_below_the_top_are_spliced_away() -> None:
    """1 <- (missing) <- 2, 3: the missing message's children become 1's."""
    records = [rec(1, "x"), rec(2, "x", refs="<1@x> <gone@x>"), rec(3, "y", refs="<1@x> <gone@x>")]
    assert refs_answer(records) == "(1 (2)(3))"
    nested = [rec(1, "x"), rec(2, "x", refs="<1@x> <g1@x> <g2@x> <g3@x>")]
    assert refs_answer(nested) == "(1 2)"


def test_references_link_their_ids_and_keep_existing_links() -> None:
    """Each reference is the parent of the next; a link made earlier is not changed by a later (truncated)
    References, but the message's own parent is always its last reference."""
    records = [rec(1, "a", refs="<p@x> <q@x>"), rec(2, "b", refs="<z@x> <q@x>"), rec(3, "c", message_id="<p@x>")]
    # q stays under p (the first link); 1 and 2 are q's children; 3 is p: the thread's root
    assert refs_answer(records) == "(3 (1)(2))"
    # the message's own last reference replaces the parent an earlier message's References gave it
    moved = [rec(1, "a", refs="<3@x> <2@x>"), rec(2, "b"), rec(3, "c", refs="<9@x>")]
    assert refs_answer(moved) == "(2 1)(3)"


def test_loops_are_not_made() -> None:
    records = [rec(1, "a", refs="<2@x>"), rec(2, "b", refs="<1@x>")]
    answer = refs_answer(records)
    assert sorted(map(int, re.findall(r"\d+", answer))) == [1, 2]
    assert refs_answer([rec(1, "a", refs="<1@x>")]) == "(1)"  # a message referring to itself
    ring = [rec(n, f"s{n}", refs=f"<{n % 5 + 1}@x> <{(n + 1) % 5 + 1}@x>") for n in range(1, 6)]
    assert sorted(map(int, re.findall(r"\d+", refs_answer(ring)))) == [1, 2, 3, 4, 5]


def test_duplicate_and_missing_message_ids() -> None:
    """The first message keeps a duplicated id (references find it); the others, and messages without an id,
    stand alone under ids of their own."""
    records = [rec(1, "a", message_id="<d@x>"), rec(2, "b", message_id="<d@x>"), rec(3, "c", refs="<d@x>"),
               rec(4, "d", message_id=None), rec(5, "e", message_id="garbage")]
    assert refs_answer(records) == "(1 3)(2)(4)(5)"


def test_references_groups_the_top_by_base_subject() -> None:
    # (iii) a reply under the message that is not one; (iv) two non-replies under a new dummy
    assert refs_answer([rec(1, "Re: topic"), rec(2, "topic"), rec(3, "Re: topic")]) == "(2 (1)(3))"
    assert refs_answer([rec(1, "topic"), rec(2, "topic")]) == "((1)(2))"
    # (ii) a dummy with that subject takes the other messages in; (i) two dummies become one
    dummy = [rec(1, "topic", refs="<g@x>"), rec(2, "Re: topic", refs="<g@x>"), rec(3, "topic")]
    assert refs_answer(dummy) == "((1)(2)(3))"
    dummies = [rec(1, "t", refs="<g@x>"), rec(2, "t", refs="<g@x>"), rec(3, "t", refs="<h@x>"),
               rec(4, "t", refs="<h@x>")]
    assert refs_answer(dummies) == "((1)(2)(3)(4))"
    # empty base subjects are never grouped
    assert refs_answer([rec(1, ""), rec(2, "Re:"), rec(3, "[fwd: ]")]) == "(1)(2)(3)"


def test_references_sorts_siblings_by_date_then_number() -> None:
    records = [rec(1, "a", date=50), rec(2, "b", date=10, refs="<1@x>"), rec(3, "c", date=5, refs="<1@x>"),
               rec(4, "d", date=5, refs="<1@x>"), rec(5, "e", date=40), rec(6, "f", date=1, refs="<gone@x>"),
               rec(7, "g", date=60, refs="<gone@x>")]
    # the dummy sorts by its first child (6, date 1)
    assert refs_answer(records) == "((6)(7))(5)(1 (3)(4)(2))"


@pytest.mark.parametrize("reversed_numbers", [False, True])
def test_a_chain_10000_deep(reversed_numbers: bool) -> None:
    n = 10000
    number = (lambda i: n + 1 - i) if reversed_numbers else (lambda i: i)
    records = [rec(number(i), "x", date=i, message_id=f"<m{i}@x>", in_reply_to=f"<m{i - 1}@x>" if i > 1 else None)
               for i in range(1, n + 1)]
    expected = " ".join(str(number(i)) for i in range(1, n + 1))
    assert refs_answer(records) == f"({expected})"


def test_a_chain_10000_deep_with_full_references() -> None:
    n = 10000
    records = [rec(i, "x", refs=" ".join(f"<{j}@x>" for j in range(max(1, i - 20), i))) for i in range(1, n + 1)]
    assert refs_answer(records) == "(" + " ".join(map(str, range(1, n + 1))) + ")"


def test_a_branching_tree_10000_deep() -> None:
    """Every message with two replies: one leaf, one that continues (nested lists 5,000 deep)."""
    records = [rec(1, "x")]
    for k in range(1, 5001):
        parent = 2 * k - 1
        records += [rec(2 * k, "x", in_reply_to=f"<{parent}@x>"), rec(2 * k + 1, "x", in_reply_to=f"<{parent}@x>")]
    answer = refs_answer(records)
    assert answer.startswith("(1 (2)(3 (4)(5 ") and answer.endswith("(10000)(10001)" + ")" * 5000)


_IDS = st.sampled_from(["<a@x>", "<b@x>", "<c@x>", "<d@x>", "<e@x>", "<f@x>", None])


@settings(max_examples=300)
@given(st.lists(st.tuples(_IDS, st.lists(_IDS, max_size=4), st.sampled_from(["a", "Re: a", "b", ""]),
                          st.integers(0, 3)), max_size=12))
def test_every_message_is_in_the_answer_once(messages: list[tuple[str | None, list[str | None], str, int]]) -> None:
    """Whatever the ids (duplicates, loops, references to missing messages): each message once, lists balanced,
    no empty list, and the same input in another order threads the same."""
    records = [ThreadRecord.of(n, subject=subject, date=float(day), message_id=own,
                               in_reply_to=None, references=" ".join(r for r in refs if r))
               for n, (own, refs, subject, day) in enumerate(messages, 1)]
    for answer in (refs_answer(records), subject_answer(records)):
        assert sorted(map(int, re.findall(r"\d+", answer))) == list(range(1, len(records) + 1))
        depth = 0
        for char in answer:
            depth += {"(": 1, ")": -1}.get(char, 0)
            assert depth >= 0
        assert depth == 0 and "()" not in answer
    assert refs_answer(list(reversed(records))) == refs_answer(records)
