"""Password hashing: argon2id for new hashes; WildDuck's PBKDF2 and bcrypt hashes verify too (for migration).

Hashing and verification are CPU-bound (~0.1-0.2 s): callers run them in worker threads
(:func:`wildduck.domain.users.UserService.authenticate` does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import argon2
import bcrypt

_argon2 = argon2.PasswordHasher()  # argon2id, library defaults (RFC 9106 second recommendation)

_PBKDF2_DIGESTS = {"pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512", "pbkdf2": "sha1", "pbkdf2-sha1": "sha1"}


def hash_password(password: str) -> str:
    """A new argon2id hash of ``password``."""
    return _argon2.hash(password)


def _b64decode(text: str) -> bytes:
    """PHC strings use unpadded base64; passlib-style hashes use '.' for '+'."""
    text = text.replace(".", "+")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _verify_pbkdf2(password: str, encoded: str) -> bool:
    # $pbkdf2-sha256$i=100000$<salt>$<key>   (PHC, @phc/pbkdf2 as used by WildDuck)
    # $pbkdf2-sha256$100000$<salt>$<key>     (passlib's variant)
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "":
        return False
    algo, params, salt_b64, key_b64 = parts[1:]
    digest = _PBKDF2_DIGESTS.get(algo)
    if digest is None:
        return False
    iterations_text = params
    for param in params.split(","):
        if param.startswith("i="):
            iterations_text = param[2:]
    try:
        iterations = int(iterations_text)
        salt = _b64decode(salt_b64)
        key = _b64decode(key_b64)
    except ValueError:
        return False
    if not 1 <= iterations <= 10_000_000 or not key:
        return False
    derived = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations, dklen=len(key))
    return hmac.compare_digest(derived, key)


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches ``encoded`` (argon2*, bcrypt ``$2a$/$2b$/$2y$``, PBKDF2 PHC strings)."""
    if encoded.startswith("$argon2"):
        try:
            return _argon2.verify(encoded, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
    if encoded.startswith(("$2a$", "$2b$", "$2y$")):
        secret = password.encode()
        if len(secret) > 72:  # bcrypt only ever used the first 72 bytes; bcrypt>=5 refuses longer input
            secret = secret[:72]
        try:
            return bcrypt.checkpw(secret, encoded.replace("$2y$", "$2b$", 1).encode())
        except ValueError:
            return False
    if encoded.startswith("$pbkdf2"):
        return _verify_pbkdf2(password, encoded)
    return False


def needs_rehash(encoded: str) -> bool:
    """True if the hash should be replaced by a fresh argon2id hash after a successful login."""
    if not encoded.startswith("$argon2id$"):
        return True
    try:
        return _argon2.check_needs_rehash(encoded)
    except argon2.exceptions.InvalidHashError:
        return True
