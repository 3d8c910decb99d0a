"""Runs the MIME fuzz harness over a seed corpus and bounded random input (atheris runs it unbounded)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.corpus import corpus, messages
from tests.fuzz.fuzz_mime import check


@pytest.mark.parametrize("index", range(len(corpus())))
def test_seed_corpus(index: int) -> None:
    check(corpus()[index])


def test_mutated_corpus() -> None:
    rng = random.Random(1234)  # deterministic
    seeds = corpus()
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            op = rng.randrange(3)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                del data[pos:pos + rng.randint(1, 40)]
            elif op == 1:
                data[pos:pos] = rng.choice([b"\r\n", b"\n", b"--", b"\r\n\r\n", b"\x00", b"\xff", b"boundary="])
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 20))
        check(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=2000), messages))
def test_random_input(data: bytes) -> None:
    check(data)
