"""Builds the archive service from settings (used by both composition roots)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from vesalius.archive.events import EventBus
from vesalius.archive.index.database import create_schema
from vesalius.archive.index.reader import IndexReader
from vesalius.archive.index.writer import IndexWriter
from vesalius.archive.service import ArchiveService
from vesalius.archive.storage.base import BlobStore
from vesalius.archive.storage.encrypted import EncryptedBlobStore
from vesalius.archive.storage.fs import FilesystemBlobStore
from vesalius.config import Settings
from vesalius.database.engine import make_engines
from vesalius.dicom.attributes import LEVEL_OF_KEY, Level, resolve_tag
from vesalius.security.crypto.keys import FileKeyProvider, kek_path


def extra_tag_levels(settings: Settings) -> dict[int, Level]:
    """Configured extra indexed tags; each is matched at the instance level unless known."""
    out: dict[int, Level] = {}
    for name in settings.extra_indexed_tags:
        tag, keyword = resolve_tag(name)
        out[tag] = LEVEL_OF_KEY.get(keyword, Level.IMAGE)
    return out


def build_blob_store(settings: Settings) -> BlobStore:
    """The filesystem store, envelope-encrypted under the key file when ``encrypt_at_rest``.

    With encryption off but a key file present (it was on before), objects are written in
    plaintext and the encrypted ones still read: never served as ciphertext.
    """
    files = FilesystemBlobStore(settings.blob_dir)
    path = kek_path(settings.data_dir, settings.kek_file)
    if not settings.encrypt_at_rest and not path.exists():
        return files
    return EncryptedBlobStore(files, FileKeyProvider(path), encrypt=settings.encrypt_at_rest)


def build_archive(settings: Settings, events: EventBus | None = None,
                  engines: tuple[Engine, Engine] | None = None) -> ArchiveService:
    reader_engine, writer_engine = engines or make_engines(settings)
    create_schema(writer_engine)
    blobs = build_blob_store(settings)
    return ArchiveService(settings, blobs, IndexReader(reader_engine, extra_tag_levels(settings)),
                          IndexWriter(writer_engine), events)
