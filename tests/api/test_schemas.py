"""Request validation without I/O: conversion of query strings, WildDuck's messages, unknown fields, cursors and
paging, the root token's hash."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wildduck.api.context import root_token_sha256
from wildduck.api.schemas import PAGING, ApiError, Field, decode_cursor, encode_cursor, merge_params, page_of, validate

SPEC = {"name": Field(required=True, max=5), "flag": Field("bool", default=False), "n": Field("int", min=1, max=9),
        "id": Field("id"), "q": Field(lowercase=True, trim=True, empty_is_none=True)}


def details(params: dict[str, Any], spec: dict[str, Field] = SPEC, **kw: Any) -> dict[str, str]:
    with pytest.raises(ApiError) as info:
        validate(params, spec, **kw)
    assert info.value.status == 400 and info.value.code == "InputValidationError"
    body = info.value.body()
    assert body["error"] and body["details"] == info.value.details
    return body["details"]  # type: ignore[no-any-return]


def test_query_strings_are_converted() -> None:
    out = validate({"name": "ab", "flag": "Yes", "n": " 7 ", "id": "ABCDEF0123456789ABCDEF01", "q": "  MiXed "}, SPEC)
    assert out == {"name": "ab", "flag": True, "n": 7, "id": "abcdef0123456789abcdef01", "q": "mixed"}
    assert validate({"name": "x", "flag": "0", "q": ""}, SPEC) == {"name": "x", "flag": False}
    assert validate({"name": "x", "flag": True, "n": 3.0}, SPEC)["n"] == 3


def test_every_bad_field_is_named_in_wildducks_words() -> None:
    assert details({"flag": "perhaps", "n": "ten", "id": "xyz", "extra": 1}) == {
        "name": '"name" is required',
        "flag": '"flag" must be a boolean',
        "n": '"n" must be a number',
        "id": '"id" must be a 24 character hex string',
        "extra": '"extra" is not allowed',
    }
    assert details({"name": "toolong", "n": 0}) == {
        "name": '"name" length must be less than or equal to 5 characters long',
        "n": '"n" must be greater than or equal to 1'}
    assert details({"name": 5, "n": True}) == {"name": '"name" must be a string', "n": '"n" must be a number'}


def test_unknown_fields_only_where_allowed_and_audit_fields_everywhere() -> None:
    assert validate({"name": "a", "other": 1}, SPEC, allow_unknown=True) == {"name": "a", "flag": False}
    assert validate({"name": "a", "sess": "s1", "ip": "1.2.3.4"}, SPEC)["sess"] == "s1"


def test_merge_params_puts_the_body_over_the_query() -> None:
    assert merge_params({"a": "1", "b": "2"}, {"b": 3}) == {"a": "1", "b": 3}
    assert merge_params({"a": "1"}, None) == {"a": "1"}
    with pytest.raises(ApiError):
        merge_params({}, [1, 2])


@given(st.sampled_from("np"), st.text(alphabet="0123456789abcdef", min_size=24, max_size=24))
def test_cursors_round_trip(direction: str, key: str) -> None:
    assert decode_cursor("next", encode_cursor(direction, key)) == (direction, key)


@given(st.text(max_size=40))
def test_a_garbage_cursor_is_a_validation_error_never_a_crash(text: str) -> None:
    try:
        decode_cursor("next", text)
    except ValueError as exc:
        assert str(exc) == '"next" must be a valid cursor'


@given(st.integers(0, 60), st.integers(1, 25))
def test_paging_forward_then_back_visits_every_item_once(count: int, limit: int) -> None:
    items = [f"{i:024x}" for i in range(count)]
    params = validate({"limit": limit}, PAGING)
    seen: list[str] = []
    pages = []
    while True:
        page = page_of(items, lambda k: k, params)
        assert page["total"] == count and len(page["results"]) <= limit
        pages.append(page["results"])
        seen += page["results"]
        if page["nextCursor"] is False:
            break
        params = validate({"limit": limit, "next": page["nextCursor"]}, PAGING)
    assert seen == items
    if len(pages) > 1:  # the last page's previous cursor leads to the page before it
        back = page_of(items, lambda k: k, validate({"limit": limit, "previous": page["previousCursor"]}, PAGING))
        assert back["results"] == pages[-2]
    else:
        assert page["previousCursor"] is False


def test_the_root_token_is_kept_as_its_hash() -> None:
    digest = hashlib.sha256(b"token").hexdigest()
    assert root_token_sha256("token") == digest
    assert root_token_sha256("sha256:" + digest.upper()) == digest
    assert root_token_sha256("") == ""
