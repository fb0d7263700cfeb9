"""The sign-in pages' own secrets: CSRF tokens and sealed sign-in tickets.

One random 32-byte key per installation, in ``<keys_dir>/web-auth.key`` (mode 0600, created
atomically on first use so that every HTTP worker of a node, and every node sharing the data
directory, reads the same key). Two sub-keys are derived from it (HMAC-SHA256 with a label):

- **CSRF tokens** for the sign-in form: ``HMAC(csrf key, pre-session cookie)``. The cookie is
  random, HttpOnly and SameSite=Lax; a cross-site page can neither read it nor compute the
  token from it, and a planted cookie is useless without the key (OWASP CSRF cheat sheet,
  "signed double-submit cookie",
  https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html).
- **Sign-in tickets** carry a sign-in between its two steps (password, then the TOTP code or
  the enrollment confirmation). The identity service checks the password again with the
  code, so the ticket holds the username and password, sealed with AES-256-GCM, bound to the
  browser's pre-session cookie (associated data) and valid for five minutes. The password
  goes back only to the browser that typed it, and never in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vesalius.security.files import create_private

KEY_NAME = "web-auth.key"
TICKET_SECONDS = 300
_NONCE_BYTES = 12


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Strict base64url without padding; ``ValueError`` on anything else."""
    if not text or len(text) > 16384 or not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc


def random_token() -> str:
    return b64url(secrets.token_bytes(32))


def load_key(keys_dir: Path) -> bytes:
    """The installation's sign-in page key, generated (atomically, 0600) when missing."""
    path = keys_dir / KEY_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        create_private(path, secrets.token_bytes(32))  # False: another process won the race
        data = path.read_bytes()
    if len(data) != 32:
        raise ValueError(f"{path} does not hold a 32-byte key")
    return data


@dataclass(frozen=True)
class Ticket:
    """A sign-in between its steps: ``stage`` is ``mfa`` or ``enroll``."""

    stage: str
    username: str
    password: str = field(repr=False)
    #: The otpauth URI shown during enrollment (it holds the new TOTP secret).
    totp_uri: str = field(default="", repr=False)


class PageSecrets:
    def __init__(self, key: bytes) -> None:
        self._csrf = hmac.new(key, b"vesalius sign-in csrf", hashlib.sha256).digest()
        self._seal = AESGCM(hmac.new(key, b"vesalius sign-in ticket", hashlib.sha256).digest())

    def __repr__(self) -> str:
        return "PageSecrets(***)"

    def csrf_token(self, presession: str) -> str:
        return b64url(hmac.new(self._csrf, presession.encode(), hashlib.sha256).digest())

    def csrf_valid(self, presession: str, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(presession).encode(), token.encode())

    def seal(self, ticket: Ticket, presession: str, *, now: float | None = None) -> str:
        payload = json.dumps({"s": ticket.stage, "u": ticket.username, "p": ticket.password,
                              "t": ticket.totp_uri,
                              "e": int((now or time.time()) + TICKET_SECONDS)}).encode()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return b64url(nonce + self._seal.encrypt(nonce, payload, presession.encode()))

    def open(self, sealed: str, presession: str, *, now: float | None = None) -> Ticket | None:
        """The ticket, or ``None`` when it is forged, from another browser or expired."""
        try:
            raw = unb64url(sealed)
            payload = self._seal.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                         presession.encode())
            data = json.loads(payload)
            if int(data["e"]) < (now or time.time()):
                return None
            return Ticket(str(data["s"]), str(data["u"]), str(data["p"]), str(data["t"]))
        except (ValueError, InvalidTag, KeyError, TypeError):
            return None
