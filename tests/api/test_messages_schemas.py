"""The validation kinds the message routes add: message selectors, dates, cursors with another key pattern."""

from __future__ import annotations

import datetime as dt
import re

from tests.api.test_schemas import details
from wildduck.api.schemas import Field, encode_cursor, validate


def test_message_selectors_dates_and_cursor_patterns() -> None:
    spec = {"m": Field("uids"), "d": Field("date"), "c": Field("cursor", pattern=re.compile(r"\d+"))}
    out = validate({"m": "3:*", "d": "2024-01-02T03:04:05Z", "c": encode_cursor("n", "42")}, spec)
    assert out["m"] == [(3, 0xFFFFFFFF)] and out["c"] == ("n", "42")
    assert out["d"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert validate({"m": "5,1,2", "d": 0}, spec) == {"m": [(5, 5), (1, 1), (2, 2)],
                                                      "d": dt.datetime(1970, 1, 1, tzinfo=dt.UTC)}
    assert validate({"m": "9:4"}, spec)["m"] == [(4, 9)]
    assert set(details({"m": "1-2", "d": "soon", "c": encode_cursor("n", "0123456789abcdef01234567")}, spec)) == {
        "m", "d", "c"}
