"""One contract suite for every blob store implementation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from vesalius.archive.storage.base import BlobStore
from vesalius.archive.storage.encrypted import EncryptedBlobStore
from vesalius.archive.storage.fs import FilesystemBlobStore
from vesalius.archive.storage.memory import MemoryBlobStore
from vesalius.core.errors import InvalidInput, NotFound
from vesalius.security.crypto.keys import FileKeyProvider

STORES: dict[str, Callable[[Path], BlobStore]] = {
    "filesystem": lambda root: FilesystemBlobStore(root / "blobs"),
    "memory": lambda root: MemoryBlobStore(),
    "encrypted": lambda root: EncryptedBlobStore(FilesystemBlobStore(root / "blobs"),
                                                 FileKeyProvider(root / "keys" / "kek.key")),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return STORES[request.param](tmp_path)


def _source(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    return path


def test_put_get_range_exists_delete(store: BlobStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    key = hashlib.sha256(data).hexdigest()
    blob = store.put_file(key, _source(tmp_path, data))
    assert blob.size == len(data) and blob.sha256 == key
    assert store.exists(key)
    assert store.get(key) == data
    assert store.get_range(key, 1000, 10) == data[1000:1010]
    assert b"".join(store.open_stream(key, chunk_size=4096)) == data
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # absent is not an error


def test_missing_objects_are_not_found(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        store.get("0" * 64)
    with pytest.raises(NotFound):
        store.get_range("0" * 64, 0, 1)


def test_put_is_idempotent(store: BlobStore, tmp_path: Path) -> None:
    data = b"same bytes"
    key = hashlib.sha256(data).hexdigest()
    store.put_file(key, _source(tmp_path, data))
    store.put_file(key, _source(tmp_path, data))
    assert store.get(key) == data


def test_negative_ranges_are_rejected(store: BlobStore, tmp_path: Path) -> None:
    key = "a" * 64
    store.put_file(key, _source(tmp_path, b"x"))
    with pytest.raises(InvalidInput):
        store.get_range(key, -1, 1)


def test_filesystem_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    fs = FilesystemBlobStore(tmp_path / "blobs")
    for key in ("../../etc/passwd", "/abs", "a/b", "", ".hidden"):
        with pytest.raises(InvalidInput):
            fs.put_file(key, _source(tmp_path, b"x"))
    assert not (tmp_path / "etc").exists()


def test_filesystem_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    fs = FilesystemBlobStore(tmp_path / "blobs")
    fs.put_file("b" * 64, _source(tmp_path, b"payload"))
    assert list((tmp_path / "blobs" / ".tmp").iterdir()) == []
