"""In-memory blob store: the reference implementation for the contract suite and tests."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

from vesalius.archive.storage.base import StoredBlob
from vesalius.core.errors import InvalidInput, NotFound


class MemoryBlobStore:
    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_file(self, key: str, source: Path, *, move: bool = False,
                 sha256: str | None = None) -> StoredBlob:
        data = source.read_bytes()
        with self._lock:
            self._objects.setdefault(key, data)
        return StoredBlob(key, len(data), hashlib.sha256(data).hexdigest())

    def get(self, key: str) -> bytes:
        try:
            return self._objects[key]
        except KeyError as exc:
            raise NotFound("blob not found") from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise InvalidInput("invalid byte range")
        return self.get(key)[offset : offset + length]

    def open_stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        data = self.get(key)
        return (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self._objects

    def local_path(self, key: str) -> Path | None:
        return None

    def keys(self) -> Iterator[str]:
        return iter(list(self._objects))
