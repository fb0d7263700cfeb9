"""Key-encryption keys (KEKs): the KMS-style port and the key-file provider.

Envelope encryption (NIST SP 800-57 Part 1 §6.2, "key wrapping"): every object is sealed
under its own random data key, and only that 32-byte data key is encrypted ("wrapped")
under a long-lived KEK. Rotating the KEK therefore rewraps a few dozen bytes per object
and never touches the image data.

:class:`KeyProvider` is the narrow port a cloud KMS (AWS KMS ``Encrypt``/``Decrypt``,
Vault Transit, an HSM via PKCS #11) implements: it wraps and unwraps data keys and never
hands out the KEK itself. :class:`FileKeyProvider` is the embedded default:

- The current KEK is 32 random bytes, written as 64 hex digits, at ``kek_file`` when that
  setting names a file (e.g. a secret mounted from outside the host), else at
  ``<data_dir>/keys/kek.key``; created with mode 0600 in a 0700 folder when missing.
- Retired KEKs (after ``vesalius keys rotate``) live next to it in ``kek-retired/``, one
  file each, so objects not yet rewrapped stay readable. Delete a retired file only when
  ``vesalius keys status`` shows no object under it *and* no backup of the blob store
  still needs it.
- A KEK's id is a fingerprint of the key (a truncated SHA-256 of a domain-separated
  encoding), so an id can be logged and stored in every object header without revealing
  anything, and a key file renamed by mistake cannot masquerade as another key.
- Wrapping is AES Key Wrap (RFC 3394, https://www.rfc-editor.org/rfc/rfc3394), whose
  built-in integrity check makes an unwrap under the wrong KEK fail instead of yielding a
  wrong data key.

Whoever reads the KEK file and the blob store can decrypt everything: keep the KEK off the
backups of the blob store (or mount it from elsewhere with ``kek_file``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from vesalius.core.errors import InvalidInput, NotFound, StorageFailure
from vesalius.security.crypto.errors import KeyUnavailable, TamperedData
from vesalius.security.files import create_private, fsync_dir

log = logging.getLogger(__name__)

KEK_BYTES = 32
DATA_KEY_BYTES = 32
RETIRED_DIR_NAME = "kek-retired"
_ID_DOMAIN = b"vesalius key-encryption key id v1\x00"


class KeyProvider(Protocol):
    """Wraps and unwraps data keys under key-encryption keys it never reveals."""

    @property
    def key_id(self) -> str:
        """The id of the KEK new data keys are wrapped under (ASCII, at most 255 bytes)."""

    def wrap(self, data_key: bytes) -> bytes:
        """``data_key`` encrypted under the current KEK."""

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        """The data key ``wrapped`` under the KEK ``key_id``.

        Raises :class:`KeyUnavailable` for an unknown ``key_id`` and
        :class:`TamperedData` when ``wrapped`` was not produced under that KEK.
        """


def key_id_of(secret: bytes) -> str:
    """The public fingerprint naming a KEK."""
    return "kek-" + hashlib.sha256(_ID_DOMAIN + secret).hexdigest()[:24]


class _Kek:
    """One KEK; its bytes never appear in a ``repr``."""

    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEK_BYTES:
            raise InvalidInput(f"a key-encryption key must have exactly {KEK_BYTES} bytes")
        self._secret = secret
        self.key_id = key_id_of(secret)

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self._secret, data_key)

    def secret(self) -> bytes:
        """The raw key, only for writing it into a key file."""
        return self._secret

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._secret, wrapped)
        except (InvalidUnwrap, ValueError) as exc:
            raise TamperedData("the wrapped data key does not verify under its "
                               "key-encryption key") from exc

    def __repr__(self) -> str:
        return f"_Kek({self.key_id}, ***)"


def kek_path(data_dir: Path, kek_file: str = "") -> Path:
    """Where the current KEK lives: the configured ``kek_file``, else
    ``<data_dir>/keys/kek.key``."""
    return Path(kek_file).expanduser() if kek_file else data_dir / "keys" / "kek.key"


def parse_kek(text: str, origin: Path) -> bytes:
    """The KEK written in a key file (64 hex digits, surrounding whitespace ignored)."""
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"{origin} does not hold hex digits") from exc
    if len(secret) != KEK_BYTES:
        raise InvalidInput(f"{origin} must hold a {KEK_BYTES}-byte key "
                           f"({KEK_BYTES * 2} hex digits)")
    return secret


def read_kek_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"the key-encryption key file {path} does not exist") from exc
    if len(raw) > 1024:
        raise InvalidInput(f"{path} is too large to be a key file")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} does not hold hex digits") from exc
    return parse_kek(text, path)


def _encode(secret: bytes) -> bytes:
    return secret.hex().encode("ascii") + b"\n"


def _replace_private(path: Path, content: bytes) -> None:
    """Atomically put ``content`` at ``path`` (mode 0600): readers see the old or the new key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp creates the file with mode 0600
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class FileKeyProvider:
    """KEKs kept in files: the current one plus the retired ones rotation left behind."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """``path``: the current KEK's file; generated first when ``create`` and missing."""
        self.path = path
        self.retired_dir = path.parent / RETIRED_DIR_NAME
        if create and not path.exists():
            create_private(path, _encode(secrets.token_bytes(KEK_BYTES)))
        self._lock = threading.Lock()
        self._current, self._keys = self._load()

    def _load(self) -> tuple[_Kek, dict[str, _Kek]]:
        current = _Kek(read_kek_file(self.path))
        if self.path.stat().st_mode & 0o077:
            log.warning("the key-encryption key file %s is readable by other users; "
                        "chmod 600 it", self.path)
        keys = {current.key_id: current}
        if self.retired_dir.is_dir():
            for file in sorted(self.retired_dir.glob("*.key")):
                try:
                    kek = _Kek(read_kek_file(file))
                except InvalidInput:
                    log.warning("ignoring %s: not a key-encryption key file", file)
                    continue
                keys.setdefault(kek.key_id, kek)
        return current, keys

    @property
    def key_id(self) -> str:
        return self._current.key_id

    def known_ids(self) -> list[str]:
        """The current KEK's id first, then the retired ones."""
        return [self.key_id, *sorted(k for k in self._keys if k != self.key_id)]

    def wrap(self, data_key: bytes) -> bytes:
        if len(data_key) != DATA_KEY_BYTES:
            raise InvalidInput(f"a data key must have {DATA_KEY_BYTES} bytes")
        return self._current.wrap(data_key)

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        kek = self._keys.get(key_id)
        if kek is None:
            # Another process (``vesalius keys rotate``) may have rotated since we loaded.
            self.reload()
            kek = self._keys.get(key_id)
        if kek is None:
            raise KeyUnavailable(f"no key-encryption key with id {key_id} is available")
        data_key = kek.unwrap(wrapped)
        if len(data_key) != DATA_KEY_BYTES:
            raise TamperedData("the wrapped data key has the wrong length")
        return data_key

    def reload(self) -> None:
        """Read the key files again (picks up a rotation done by another process)."""
        with self._lock:
            self._current, self._keys = self._load()

    def rotate(self, new_secret: bytes | None = None) -> str:
        """Retire the current KEK and make ``new_secret`` (random when None) the current one.

        Order makes a crash harmless: the old KEK is first made durable among the retired
        ones, then the new one atomically replaces the current file. Objects still wrapped
        under the old KEK stay readable until they are rewrapped. Returns the new key id.
        """
        secret = new_secret if new_secret is not None else secrets.token_bytes(KEK_BYTES)
        new = _Kek(secret)
        with self._lock:
            old = self._current
            if new.key_id == old.key_id:
                raise InvalidInput("the new key-encryption key is the current one")
            try:
                self.retired_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                create_private(self.retired_dir / f"{old.key_id}.key", _encode(old.secret()))
                _replace_private(self.path, _encode(secret))
            except OSError as exc:
                raise StorageFailure(f"could not write the key files next to {self.path}: "
                                     f"{exc.strerror}") from exc
            self._current, self._keys = self._load()
        log.info("key-encryption key rotated from %s to %s", old.key_id, new.key_id)
        return new.key_id

    def __repr__(self) -> str:
        return f"FileKeyProvider({self.path}, current={self.key_id}, ***)"
