"""Fuzz harness for the MIME parser: ``python tests/fuzz/fuzz_mime.py [corpus dirs]`` under atheris.

Invariant: for any bytes, ``analyze`` returns (never raises), ``compose`` gives the input back, and both scanner
implementations build the same tree.
"""

from __future__ import annotations

import sys

from wildduck._speedups import implementations
from wildduck.protocols import mime

IMPLS = implementations("mimescan")


def check(data: bytes) -> None:
    trees = []
    for scanner in IMPLS.values():
        a = mime.analyze(data, scanner_module=scanner, inline_text_limit=64)
        if mime.compose(a.skeleton, a.parts, a.blobs) != data:
            raise AssertionError("recomposition differs from the input")
        trees.append(a.tree)
    if any(t != trees[0] for t in trees):
        raise AssertionError("scanner implementations disagree")


def main() -> None:  # pragma: no cover - needs atheris
    import atheris

    atheris.Setup(sys.argv, lambda data: check(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    main()
