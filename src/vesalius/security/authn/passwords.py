"""Local account passwords: the policy, generation, and argon2id hashing.

Hashing follows RFC 9106 (argon2id, argon2-cffi's defaults: t=3, m=64 MiB, p=4) and
re-hashes on sign-in when those parameters change. The policy is the part of NIST SP 800-63B
§5.1.1.2 that can be checked offline (a minimum length, no trivially derived password) plus
one character-class rule the configuration asks for; it has an upper bound so an attacker
cannot make us hash megabytes.
"""

from __future__ import annotations

import functools
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vesalius.core.errors import InvalidInput

MAX_PASSWORD_LENGTH = 1024
GENERATED_LENGTH = 24
_HASHER = PasswordHasher()
_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)


def _classes(password: str) -> int:
    found = {i for ch in password for i, cls in enumerate(_CLASSES) if ch in cls}
    if any(not any(ch in cls for cls in _CLASSES) for ch in password):
        found.add(len(_CLASSES))
    return len(found)


def check_policy(password: str, username: str, min_length: int) -> None:
    """Raise ``InvalidInput`` (saying which rule failed, never echoing the password)."""
    if len(password) < min_length:
        raise InvalidInput(f"the password must have at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if _classes(password) < 2:
        raise InvalidInput("the password must mix character classes (letters, digits, "
                           "upper and lower case, symbols), not use one alone")
    if password.casefold() == username.casefold():
        raise InvalidInput("the password must not be the username")


def generate_password() -> str:
    """A random password of :data:`GENERATED_LENGTH` characters (about 143 bits)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(GENERATED_LENGTH))
        if _classes(candidate) >= 2:
            return candidate


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored``; False for a malformed hash, too."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


@functools.cache
def dummy_hash() -> str:
    """Verified against when the account does not exist, so unknown and known usernames cost
    the same (no account enumeration by timing)."""
    return _HASHER.hash(secrets.token_urlsafe(16))
