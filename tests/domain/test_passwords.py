from __future__ import annotations

import base64
import hashlib

import bcrypt
import pytest

from wildduck.domain import passwords


def _phc_pbkdf2(password: str, digest: str, iterations: int, salt: bytes) -> str:
    key = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")  # noqa: E731
    return f"$pbkdf2-{digest}$i={iterations}${b64(salt)}${b64(key)}"


def test_new_hashes_are_argon2id_and_verify() -> None:
    h = passwords.hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert passwords.verify_password("correct horse", h)
    assert not passwords.verify_password("wrong horse", h)
    assert not passwords.needs_rehash(h)


@pytest.mark.parametrize("digest", ["sha256", "sha512"])
def test_wildduck_pbkdf2_hashes_verify(digest: str) -> None:
    h = _phc_pbkdf2("sekrit", digest, 1000, b"0123456789abcdef")
    assert passwords.verify_password("sekrit", h)
    assert not passwords.verify_password("sekrit!", h)
    assert passwords.needs_rehash(h)


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_bcrypt_hashes_verify(prefix: str) -> None:
    h = bcrypt.hashpw(b"sekrit", bcrypt.gensalt(4)).decode().replace("$2b$", prefix, 1)
    assert passwords.verify_password("sekrit", h)
    assert not passwords.verify_password("other", h)


def test_long_passwords_against_bcrypt_do_not_crash() -> None:
    pw = "x" * 100
    h = bcrypt.hashpw(pw.encode()[:72], bcrypt.gensalt(4)).decode()
    assert passwords.verify_password(pw, h)


@pytest.mark.parametrize("garbage", ["", "plain", "$pbkdf2-sha256$i=x$$", "$argon2id$broken", "$2b$04$short",
                                     "$pbkdf2-md5$i=1$AAAA$AAAA"])
def test_garbage_hashes_never_verify(garbage: str) -> None:
    assert not passwords.verify_password("anything", garbage)
