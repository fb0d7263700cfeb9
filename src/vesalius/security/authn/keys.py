"""The provider's token signing key and the external identity provider's public keys.

Our key: ECDSA P-256 (JWS ``ES256``, RFC 7518 §3.4) in ``<keys_dir>/auth-signing.pem``
(PKCS #8, mode 0600, created once; concurrent first starts keep whichever file won the
``O_EXCL`` race). Its key id is the RFC 7638 thumbprint, so a rotated key gets a new ``kid``.

External keys: ``external_jwks`` is either an ``https://`` URL, fetched with httpx and cached
(re-fetched after :data:`JWKS_CACHE_SECONDS`, or sooner when a token names an unknown
``kid``, at most once a minute), or a path to a JWKS file.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from vesalius.core.errors import InvalidInput, NotFound
from vesalius.security.files import create_private

SIGNING_KEY_NAME = "auth-signing.pem"
JWKS_CACHE_SECONDS = 3600
JWKS_MIN_REFETCH_SECONDS = 60
MAX_JWKS_BYTES = 256 * 1024


def load_signing_key(keys_dir: Path, *, create: bool) -> ECKey:
    """The token signing key, generated first when ``create`` and missing."""
    path = keys_dir / SIGNING_KEY_NAME
    if create and not path.exists():
        generated = ec.generate_private_key(ec.SECP256R1())
        create_private(path, generated.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"the token signing key {path} does not exist; "
                       "start the server once to create it") from exc
    try:
        key = ECKey.import_key(pem, {"use": "sig", "alg": "ES256"})
    except (JoseError, ValueError) as exc:
        raise InvalidInput(f"{path} is not an EC private key") from exc
    key.ensure_kid()
    return key


def import_public_jwks(data: object) -> KeySet:
    """A JWKS of public keys (a registered client's); refuses private or symmetric keys."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise InvalidInput("a JWKS is an object with a non-empty 'keys' array")
    for entry in data["keys"]:
        if not isinstance(entry, dict):
            raise InvalidInput("a JWKS entry must be an object")
        if entry.get("kty") not in ("RSA", "EC"):
            raise InvalidInput("JWKS keys must be RSA or EC public keys")
        if "d" in entry:
            raise InvalidInput("the JWKS holds a private key; register the public half only")
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"unreadable JWKS: {exc}") from exc


class ExternalKeys:
    """The external identity provider's JWKS, from a URL (cached) or a file."""

    def __init__(self, source: str, *, timeout: float = 10.0) -> None:
        self._source = source
        self._timeout = timeout
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched = 0.0

    def _load(self) -> KeySet:
        if self._source.startswith(("https://", "http://")):
            response = httpx.get(self._source, timeout=self._timeout, follow_redirects=False)
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise InvalidInput("the external JWKS is too large")
            data: Any = response.json()
        else:
            data = json.loads(Path(self._source).expanduser().read_text(encoding="utf-8"))
        return import_public_jwks(data)

    def get(self, kid: str | None) -> KeySet:
        """The key set; re-fetched when stale or when ``kid`` is unknown (rate-limited)."""
        with self._lock:
            now = time.monotonic()
            stale = self._keys is None or now - self._fetched > JWKS_CACHE_SECONDS
            unknown = (self._keys is not None and kid is not None
                       and all(k.kid != kid for k in self._keys.keys))
            if stale or (unknown and now - self._fetched > JWKS_MIN_REFETCH_SECONDS):
                try:
                    self._keys = self._load()
                    self._fetched = now
                except (httpx.HTTPError, OSError, ValueError, InvalidInput):
                    if self._keys is None:
                        raise
            assert self._keys is not None
            return self._keys
