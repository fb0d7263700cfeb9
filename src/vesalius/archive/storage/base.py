"""The blob store port: five narrow operations over opaque keys.

Keys are produced by the archive (content addresses), never by callers, so a
key can never carry path tricks. Every implementation passes the same contract
suite (``tests/integration/archive/test_blob_contract.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


class BlobStore(Protocol):
    """put / get / get_range / delete / exists, plus streaming reads."""

    def put_file(self, key: str, source: Path, *, move: bool = False,
                 sha256: str | None = None) -> StoredBlob:
        """Atomically store the file at ``source`` under ``key`` (idempotent).

        With ``move`` the caller hands the file over: a backend may take it in
        place of copying it (the caller must not use ``source`` afterwards).
        ``sha256``, when the caller already knows the digest, spares a re-read.
        """

    def get(self, key: str) -> bytes:
        """The whole object; :class:`~vesalius.core.errors.NotFound` if absent."""

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes starting at ``offset``."""

    def open_stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object as a sequence of chunks (bounded memory)."""

    def delete(self, key: str) -> None:
        """Remove the object; absent objects are not an error."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for zero-copy reads, when the backend has one."""
