"""The audit log's keys, kept in files and never in the database.

- The chain key (HMAC-SHA256, 32 random bytes as hex) lives at ``audit_key_file`` when that
  setting names a file (e.g. a secret mounted from outside the host), else at
  ``<data_dir>/keys/audit.key``. Whoever can read it can forge a chain that verifies, so it is
  created with mode 0600 in a 0700 folder, and its value never appears in a ``repr``.
- The checkpoint signing key (Ed25519, PKCS #8 PEM) lives at
  ``<data_dir>/keys/audit-checkpoint.pem`` with its public half next to it (``.pub.pem``).
  Copy the public half off the host: a verifier that trusts only that copy cannot be fooled
  by checkpoints re-signed with a replaced key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vesalius.core.errors import InvalidInput, NotFound
from vesalius.security.files import create_private

SECRET_BYTES = 32
SIGNING_KEY_NAME = "audit-checkpoint.pem"
PUBLIC_KEY_NAME = "audit-checkpoint.pub.pem"


class AuditKey:
    """The chain key. It computes MACs; it never shows its bytes."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            raise InvalidInput(f"the audit key must have at least {SECRET_BYTES} bytes")
        self._secret = secret

    def mac(self, message: bytes) -> str:
        """HMAC-SHA256 of ``message`` (RFC 2104), as 64 lowercase hex digits."""
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "AuditKey(***)"


def keys_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def audit_key_path(data_dir: Path, audit_key_file: str = "") -> Path:
    """Where the chain key lives: the configured file, else ``<data_dir>/keys/audit.key``."""
    return Path(audit_key_file).expanduser() if audit_key_file else keys_dir(data_dir) / "audit.key"


def load_audit_key(path: Path, *, create: bool) -> AuditKey:
    """The chain key at ``path``, generated first when ``create`` and it is missing."""
    if create and not path.exists():
        create_private(path, secrets.token_hex(SECRET_BYTES).encode("ascii") + b"\n")
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise NotFound(f"the audit key file {path} does not exist") from exc
    try:
        return AuditKey(bytes.fromhex(text))
    except ValueError as exc:
        raise InvalidInput(f"the audit key file {path} does not hold hex digits") from exc


def load_signing_key(data_dir: Path, *, create: bool) -> Ed25519PrivateKey:
    """The checkpoint signing key, generated (with its public half) first when ``create``."""
    path = keys_dir(data_dir) / SIGNING_KEY_NAME
    if create and not path.exists():
        generated = Ed25519PrivateKey.generate()
        pem = generated.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        if create_private(path, pem):
            public = generated.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            (keys_dir(data_dir) / PUBLIC_KEY_NAME).write_bytes(public)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise NotFound(f"the audit checkpoint signing key {path} does not exist") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A checkpoint verification key (PEM SubjectPublicKeyInfo)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError as exc:
        raise NotFound(f"the audit checkpoint public key {path} does not exist") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"{path} is not an Ed25519 public key")
    return key
