"""Encrypted blob store: every object envelope-encrypted on its way into a local store.

Each object is sealed under its own random AES-256 data key in the chunked format of
:mod:`vesalius.security.crypto.envelope`, and the data key is wrapped by a
:class:`~vesalius.security.crypto.keys.KeyProvider` (a key file or a KMS). What the port
promises is about the **plaintext**: ``put_file`` reports the plaintext's size and SHA-256
(keys are content addresses and storage commitment re-hashes what it reads), reads return
plaintext, and ``get_range`` decrypts only the chunks a range covers.

``local_path`` is always None: a path to ciphertext would be useless to a caller and a
path to plaintext would defeat the point, so callers take their streaming or ranged path.

Objects written before encryption was turned on (no magic) still read as plaintext when
``allow_plaintext`` (the default); encrypting them in place (``vesalius keys
encrypt-existing``) is future work. Turning ``encrypt_at_rest`` off again does not decrypt
anything: with ``encrypt=False`` new objects are written in plaintext while the encrypted
ones still read (the factory does this when a key file exists), never served as ciphertext.

Key rotation (:meth:`EncryptedBlobStore.rewrap_all`) rewrites each object's header with
its data key wrapped under the provider's current KEK and copies the chunks unchanged
(no image data is decrypted or re-encrypted), per object through a temporary file and an
atomic rename, skipping objects already under the current KEK, so an interrupted run is
simply run again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from vesalius.archive.storage.base import BlobStore, StoredBlob
from vesalius.core.errors import InvalidInput, NotFound, NotSupported, StorageFailure
from vesalius.security.crypto.envelope import (
    DEFAULT_CHUNK_SIZE,
    MAX_HEADER_BYTES,
    Envelope,
    Header,
    looks_like_envelope,
    seal,
)
from vesalius.security.crypto.errors import KeyUnavailable, TamperedData
from vesalius.security.crypto.keys import KeyProvider
from vesalius.security.files import fsync_dir

log = logging.getLogger(__name__)

PLAINTEXT = "plaintext"


class LocalBlobStore(BlobStore, Protocol):
    """A blob store whose objects are files (``FilesystemBlobStore``)."""

    root: Path

    def keys(self) -> Iterator[str]:
        """Every stored key."""


class _FileAccess:
    """Positional reads on one open file: every read sees the same inode, even if a
    rotation renames a rewrapped copy over the path meanwhile."""

    __slots__ = ("handle",)

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def read_at(self, offset: int, length: int) -> bytes:
        return os.pread(self.handle.fileno(), length, offset)


@dataclass
class RewrapReport:
    rewrapped: int = 0
    current: int = 0
    plaintext: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"rewrapped {self.rewrapped}, already current {self.current}, "
                f"plaintext {self.plaintext}, failed {len(self.failed)}")


class EncryptedBlobStore:
    """The ``BlobStore`` port over a local store, with every object envelope-encrypted."""

    def __init__(self, inner: LocalBlobStore, provider: KeyProvider, *,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, allow_plaintext: bool = True,
                 encrypt: bool = True) -> None:
        self.inner = inner
        self.encrypt = encrypt
        self.provider = provider
        self.chunk_size = chunk_size
        self.allow_plaintext = allow_plaintext
        self._tmp = inner.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"EncryptedBlobStore({self.inner.root}, key={self.provider.key_id})"

    # -- opening ---------------------------------------------------------------------
    def _stored_path(self, key: str) -> Path:
        path = self.inner.local_path(key)  # validates the key
        if path is None:
            raise NotSupported("the encrypted store needs a store with local files")
        return path

    def _open_file(self, key: str) -> BinaryIO:
        try:
            return self._stored_path(key).open("rb")
        except FileNotFoundError as exc:
            raise NotFound("blob not found") from exc

    def _open(self, handle: BinaryIO, key: str) -> Envelope | None:
        """The envelope in ``handle``; None for a plaintext object written before encryption."""
        access = _FileAccess(handle)
        prefix = access.read_at(0, MAX_HEADER_BYTES)
        if not looks_like_envelope(prefix):
            if self.allow_plaintext:
                return None
            raise TamperedData("blob is not encrypted")
        return Envelope(access, key, self.provider, Header.parse(prefix))

    # -- writing ---------------------------------------------------------------------
    def put_file(self, key: str, source: Path, *, move: bool = False,
                 sha256: str | None = None) -> StoredBlob:
        if self.inner.exists(key):  # content-addressed: the same key holds the same bytes
            if move:
                source.unlink(missing_ok=True)
            return self._describe(key)
        if not self.encrypt:
            return self.inner.put_file(key, source, move=move, sha256=sha256)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="seal-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                length = os.fstat(src.fileno()).st_size
                digest = seal(src, length, out, key, self.provider,
                              chunk_size=self.chunk_size)
            # The inner store fsyncs the sealed file and renames it into place (atomic,
            # durable); the digest it is handed only spares it re-reading ciphertext.
            self.inner.put_file(key, tmp, move=True, sha256=digest)
        except OSError as exc:
            raise StorageFailure(f"could not write blob: {exc.strerror}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        if move:  # handed over: the plaintext spool file must not outlive the store
            source.unlink(missing_ok=True)
        return StoredBlob(key, length, digest)

    def _describe(self, key: str) -> StoredBlob:
        digest = hashlib.sha256()
        size = 0
        for chunk in self.open_stream(key):
            digest.update(chunk)
            size += len(chunk)
        return StoredBlob(key, size, digest.hexdigest())

    # -- reading ---------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        return b"".join(self.open_stream(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise InvalidInput("invalid byte range")
        with self._open_file(key) as handle:
            envelope = self._open(handle, key)
            if envelope is None:
                return os.pread(handle.fileno(), length, offset)
            return envelope.read(offset, length)

    def open_stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        if chunk_size < 1:
            raise InvalidInput("chunk size must be positive")
        handle = self._open_file(key)
        try:
            envelope = self._open(handle, key)  # a damaged header fails here, not mid-stream
        except BaseException:
            handle.close()
            raise

        def plaintext() -> Iterator[bytes]:
            with handle:
                if envelope is None:
                    while piece := handle.read(chunk_size):
                        yield piece
                    return
                pending = bytearray()
                for chunk in envelope.chunks():
                    pending += chunk
                    while len(pending) >= chunk_size:
                        yield bytes(pending[:chunk_size])
                        del pending[:chunk_size]
                if pending:
                    yield bytes(pending)

        return plaintext()

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def local_path(self, key: str) -> Path | None:
        return None

    def keys(self) -> Iterator[str]:
        return self.inner.keys()

    def modified_at(self, key: str) -> float | None:
        """When the object was last written (the orphan sweep spares recent ones)."""
        try:
            return self._stored_path(key).stat().st_mtime
        except FileNotFoundError:
            return None

    # -- keys ------------------------------------------------------------------------
    def key_id_of(self, key: str) -> str:
        """The KEK id an object's data key is wrapped under, or ``"plaintext"``."""
        with self._open_file(key) as handle:
            prefix = _FileAccess(handle).read_at(0, MAX_HEADER_BYTES)
        if not looks_like_envelope(prefix):
            return PLAINTEXT
        return Header.parse(prefix).key_id

    def key_usage(self) -> Counter[str]:
        """How many objects sit under each KEK id (and how many are plaintext)."""
        usage: Counter[str] = Counter()
        for key in self.keys():
            try:
                usage[self.key_id_of(key)] += 1
            except NotFound:  # deleted while we walked
                continue
            except TamperedData:
                usage["damaged"] += 1
        return usage

    def rewrap(self, key: str) -> bool:
        """Rewrap one object's data key under the current KEK; False if it already was.

        The new file is the new header followed by the old file's chunks byte for byte.
        """
        path = self._stored_path(key)
        with self._open_file(key) as handle:
            prefix = _FileAccess(handle).read_at(0, MAX_HEADER_BYTES)
            if not looks_like_envelope(prefix):
                raise InvalidInput("object is not encrypted")
            header = Header.parse(prefix)
            if header.key_id == self.provider.key_id:
                return False
            new_header = header.rewrapped(self.provider)
            fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="rewrap-")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(new_header.encode())
                    handle.seek(header.size)
                    shutil.copyfileobj(handle, out, 1 << 20)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        return True

    def rewrap_all(self, progress: Callable[[str], None] | None = None) -> RewrapReport:
        """Rewrap every object not yet under the current KEK (resumable, per object atomic).

        A damaged object or one under an unknown KEK is reported and skipped, not fatal.
        An object deleted while this runs may reappear (the rename recreates it) as an
        unreferenced blob, which ``vesalius sweep`` collects.
        """
        report = RewrapReport()
        for key in list(self.keys()):
            try:
                if self.key_id_of(key) == PLAINTEXT:
                    report.plaintext += 1
                elif self.rewrap(key):
                    report.rewrapped += 1
                else:
                    report.current += 1
            except NotFound:
                continue
            except (TamperedData, KeyUnavailable, OSError) as exc:
                reason = getattr(exc, "message", None) or str(exc)
                log.warning("could not rewrap blob %s: %s", key, reason)
                report.failed.append((key, reason))
            if progress is not None:
                progress(key)
        return report
