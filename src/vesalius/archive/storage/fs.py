"""Filesystem blob store: temp file, fsync, rename — readers never see partial objects."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vesalius.archive.storage.base import StoredBlob
from vesalius.core.errors import InvalidInput, NotFound, StorageFailure

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemBlobStore:
    """Objects live at ``root/k0k1/k2k3/key``; the key alphabet excludes separators."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise InvalidInput("invalid blob key")
        return self.root / key[0:2] / key[2:4] / key

    def put_file(self, key: str, source: Path, *, move: bool = False,
                 sha256: str | None = None) -> StoredBlob:
        target = self._path(key)
        if target.exists():
            sha, size = file_sha256(target)
            return StoredBlob(key, size, sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        if move and self._take(source, target):
            if sha256 is not None:
                return StoredBlob(key, target.stat().st_size, sha256)
            sha, size = file_sha256(target)
            return StoredBlob(key, size, sha)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        size = 0
        try:
            # One pass: hash while copying, then make the bytes durable before the
            # rename publishes them under their key.
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
            _fsync(target.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageFailure(f"could not write blob: {exc.strerror}") from exc
        return StoredBlob(key, size, digest.hexdigest())

    def _take(self, source: Path, target: Path) -> bool:
        """Make ``source`` durable and rename it into place; False when not possible."""
        try:
            _fsync(source)
            os.replace(source, target)
            _fsync(target.parent)
            return True
        except OSError:
            return False

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound("blob not found") from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise InvalidInput("invalid byte range")
        try:
            with self._path(key).open("rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except FileNotFoundError as exc:
            raise NotFound("blob not found") from exc

    def open_stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        path = self._path(key)
        if not path.exists():
            raise NotFound("blob not found")

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(chunk_size):
                    yield chunk

        return chunks()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def modified_at(self, key: str) -> float | None:
        """When the object was written (the orphan sweep spares recent ones)."""
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            return None

    def keys(self) -> Iterator[str]:
        """Every stored key (used by the garbage sweep)."""
        for path in self.root.glob("??/??/*"):
            if path.is_file():
                yield path.name
