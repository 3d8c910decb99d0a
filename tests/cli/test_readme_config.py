"""The README's configuration reference names every key of ``wildduck/default.toml`` with its default."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def documented() -> dict[tuple[str, str], str]:
    """(section, key) -> default as the README's table writes it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    found: dict[tuple[str, str], str] = {}
    section = ""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].startswith("`"):
            continue
        if cells[0]:
            section = cells[0].strip("`[]")
        keys = re.findall(r"`([^`]+)`", cells[1])
        defaults = re.findall(r"`([^`]*)`", cells[2])
        if len(defaults) == 1:  # one default for several keys
            defaults *= len(keys)
        assert len(keys) == len(defaults), line
        for key, default in zip(keys, defaults, strict=True):
            found[(section, key)] = default
    return found


def test_the_configuration_reference_matches_the_defaults() -> None:
    defaults = tomllib.loads((ROOT / "wildduck" / "default.toml").read_text(encoding="utf-8"))
    actual = {(s, k): toml_text(v) for s, values in defaults.items() for k, v in values.items()}
    readme = documented()
    assert sorted(set(actual) - set(readme)) == [], "keys missing from the README"
    assert sorted(set(readme) - set(actual)) == [], "keys in the README that do not exist"
    wrong = {k: (readme[k], v) for k, v in actual.items() if readme[k] != v}
    assert wrong == {}, "README default != default.toml"
