from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wildduck.domain import addresses
from wildduck.errors import InvalidInput


@pytest.mark.parametrize(
    ("given_", "normalized", "view"),
    [
        ("John.Doe@Example.COM", "john.doe@example.com", "johndoe@example.com"),
        ("  <user@example.com> ", "user@example.com", "user@example.com"),
        ("user@XN--BCHER-KVA.example", "user@bücher.example", "user@bücher.example"),
        ("Jürgen.Ä@Bücher.Example", "jürgen.ä@bücher.example", "jürgenä@bücher.example"),
        ("Ju\u0308rgen@example.com", "jürgen@example.com", "jürgen@example.com"),  # NFC
    ],
)
def test_normalize_and_addrview(given_: str, normalized: str, view: str) -> None:
    assert addresses.normalize(given_) == normalized
    assert addresses.addrview(given_) == view


def test_lookup_strips_plus_label_and_dots() -> None:
    assert addresses.lookup_key("J.Ohn+Newsletters@Example.com") == "john@example.com"
    assert addresses.lookup_key("a+b+c@example.com") == "a+b@example.com"  # the last + starts the label


@pytest.mark.parametrize("bad", ["", "no-at-sign", "@example.com", "user@", "a..b@example.com", ".a@example.com",
                                 "a b@example.com", "user@exa mple..com", "x@xn--zz-bad"])
def test_invalid_addresses_are_refused_with_the_field(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        addresses.normalize(bad, "recipient")
    assert info.value.field == "recipient"


def test_new_addresses_cannot_contain_plus() -> None:
    with pytest.raises(InvalidInput, match=r"can not contain \+"):
        addresses.validate_new("user+tag@example.com")


def test_unameview() -> None:
    assert addresses.unameview("John.Smith") == "johnsmith"
    assert addresses.unameview("John.Smith@Example.com") == "johnsmith@example.com"
    with pytest.raises(InvalidInput):
        addresses.unameview("has space")


@given(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}@[a-z]{1,10}\.(com|org|example)", fullmatch=True))
def test_normalize_is_idempotent_and_view_has_no_dots_in_local(addr: str) -> None:
    n = addresses.normalize(addr)
    assert addresses.normalize(n) == n
    local, _ = addresses.split(addresses.addrview(addr))
    assert "." not in local
