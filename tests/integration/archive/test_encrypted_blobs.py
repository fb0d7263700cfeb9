"""The encrypted blob store on a real filesystem, through the archive and the CLI."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from data_factory import make_instance, write
from vesalius.archive.factory import build_archive
from vesalius.archive.service import ArchiveService
from vesalius.archive.storage.encrypted import PLAINTEXT, EncryptedBlobStore
from vesalius.archive.storage.fs import FilesystemBlobStore
from vesalius.config import Settings
from vesalius.core.errors import InvalidInput, NotFound
from vesalius.security.crypto.envelope import DEFAULT_CHUNK_SIZE, MAGIC, TAG_BYTES, Header
from vesalius.security.crypto.errors import KeyUnavailable, TamperedData
from vesalius.security.crypto.keys import RETIRED_DIR_NAME, FileKeyProvider, kek_path

VESALIUS = [sys.executable, "-m", "vesalius.cli.main"]


def _store(root: Path, **kwargs: int) -> EncryptedBlobStore:
    return EncryptedBlobStore(FilesystemBlobStore(root / "blobs"),
                              FileKeyProvider(root / "keys" / "kek.key"), **kwargs)


def _put(store: EncryptedBlobStore, tmp_path: Path, data: bytes) -> str:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    key = hashlib.sha256(data).hexdigest()
    blob = store.put_file(key, source)
    assert (blob.size, blob.sha256) == (len(data), key)  # the plaintext's, not the file's
    return key


def _file(root: Path, key: str) -> Path:
    return root / "blobs" / key[0:2] / key[2:4] / key


def test_stored_file_is_ciphertext_and_reads_back(tmp_path: Path) -> None:
    store = _store(tmp_path)
    data = b"DOE^JANE^^^ MRN-000123 " * 10000
    key = _put(store, tmp_path, data)
    on_disk = _file(tmp_path, key).read_bytes()
    assert on_disk.startswith(MAGIC)
    assert b"DOE^JANE" not in on_disk and b"MRN-000123" not in on_disk
    assert store.get(key) == data
    assert store.local_path(key) is None
    assert list((tmp_path / "blobs" / ".tmp").iterdir()) == []


def test_ranges_across_chunk_boundaries(tmp_path: Path) -> None:
    store = _store(tmp_path)
    rng = random.Random(99)
    data = rng.randbytes(5 * DEFAULT_CHUNK_SIZE + 1234)
    key = _put(store, tmp_path, data)
    size = DEFAULT_CHUNK_SIZE
    cases = [(k * size + d, n) for k in range(6) for d in (-1, 0, 1)
             for n in (1, 2, size, size + 2) if k * size + d >= 0]
    cases += [(rng.randrange(len(data)), rng.randrange(3 * size)) for _ in range(200)]
    for offset, length in cases:
        assert store.get_range(key, offset, length) == data[offset : offset + length]
    assert store.get_range(key, len(data) + 10, 5) == b""
    assert b"".join(store.open_stream(key, chunk_size=1000)) == data
    assert all(len(c) == 1000 for c in list(store.open_stream(key, chunk_size=1000))[:-1])


def test_move_consumes_the_plaintext_source(tmp_path: Path) -> None:
    store = _store(tmp_path)
    source = tmp_path / "spool.dcm"
    source.write_bytes(b"plaintext spool")
    key = hashlib.sha256(b"plaintext spool").hexdigest()
    store.put_file(key, source, move=True)
    assert not source.exists()
    again = tmp_path / "again.dcm"
    again.write_bytes(b"plaintext spool")
    blob = store.put_file(key, again, move=True)  # idempotent, still reports the plaintext
    assert not again.exists() and blob.size == len(b"plaintext spool") and blob.sha256 == key


def test_tampering_on_disk_is_an_error(tmp_path: Path) -> None:
    store = _store(tmp_path)
    data = os.urandom(3 * DEFAULT_CHUNK_SIZE)
    key = _put(store, tmp_path, data)
    path = _file(tmp_path, key)
    pristine = path.read_bytes()
    header = Header.parse(pristine)
    stride = DEFAULT_CHUNK_SIZE + TAG_BYTES

    def flipped(position: int) -> bytes:
        damaged = bytearray(pristine)
        damaged[position] ^= 0x80
        return bytes(damaged)

    h = header.size
    variants = {
        "magic": flipped(0),
        "header length field": flipped(10),
        "wrapped key": flipped(h - 1),
        "first chunk": flipped(h + 5),
        "last tag": flipped(len(pristine) - 1),
        "truncated": pristine[:-100],
        "chunks swapped": pristine[:h] + pristine[h + stride : h + 2 * stride]
        + pristine[h : h + stride] + pristine[h + 2 * stride :],
    }
    for name, content in variants.items():
        path.write_bytes(content)
        with pytest.raises((TamperedData, KeyUnavailable)):
            store.get(key)
            pytest.fail(f"{name}: read without error")
        with pytest.raises((TamperedData, KeyUnavailable)):
            b"".join(store.open_stream(key))
    path.write_bytes(variants["first chunk"])
    with pytest.raises(TamperedData):
        store.get_range(key, 10, 10)
    assert store.get_range(key, 2 * DEFAULT_CHUNK_SIZE, 10) == data[2 * DEFAULT_CHUNK_SIZE :][:10]


def test_objects_swapped_between_keys_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    one = _put(store, tmp_path, b"first object" * 100)
    two = _put(store, tmp_path, b"second object" * 100)
    first, second = _file(tmp_path, one).read_bytes(), _file(tmp_path, two).read_bytes()
    _file(tmp_path, one).write_bytes(second)
    _file(tmp_path, two).write_bytes(first)
    for key in (one, two):
        with pytest.raises(TamperedData):
            store.get(key)


def test_another_kek_cannot_read(tmp_path: Path) -> None:
    key = _put(_store(tmp_path), tmp_path, b"sealed")
    stranger = EncryptedBlobStore(FilesystemBlobStore(tmp_path / "blobs"),
                                  FileKeyProvider(tmp_path / "other.key"))
    with pytest.raises(KeyUnavailable):
        stranger.get(key)


def test_plaintext_blobs_from_before_encryption_still_read(tmp_path: Path) -> None:
    plain = FilesystemBlobStore(tmp_path / "blobs")
    data = bytes(128) + b"DICM" + os.urandom(5000)
    key = hashlib.sha256(data).hexdigest()
    source = tmp_path / "old.dcm"
    source.write_bytes(data)
    plain.put_file(key, source)
    store = _store(tmp_path)
    assert store.get(key) == data and store.get_range(key, 128, 4) == b"DICM"
    assert store.key_id_of(key) == PLAINTEXT
    strict = _store(tmp_path, allow_plaintext=False)
    with pytest.raises(TamperedData):
        strict.get(key)


def test_rewrap_rewrites_headers_only_and_resumes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    objects = {_put(store, tmp_path, os.urandom(n)): n for n in (0, 10, 70000, 200000)}
    before = {key: _file(tmp_path, key).read_bytes() for key in objects}
    expected = {key: store.get(key) for key in objects}
    old_id = store.provider.key_id
    assert isinstance(store.provider, FileKeyProvider)
    new_id = store.provider.rotate()
    first = next(iter(objects))
    assert store.rewrap(first)  # an interrupted run got this far
    report = store.rewrap_all()
    assert (report.rewrapped, report.current, report.failed) == (len(objects) - 1, 1, [])
    assert store.key_usage() == {new_id: len(objects)}
    for key in objects:
        after = _file(tmp_path, key).read_bytes()
        old_header, new_header = Header.parse(before[key]), Header.parse(after)
        assert (old_header.key_id, new_header.key_id) == (old_id, new_id)
        # The chunks (all the image data) are byte for byte the same ciphertext.
        assert after[new_header.size :] == before[key][old_header.size :]
        assert store.get(key) == expected[key]
    assert store.rewrap_all().rewrapped == 0
    # With the retired KEK gone, the rewrapped objects still read.
    for retired in (tmp_path / "keys" / RETIRED_DIR_NAME).iterdir():
        retired.unlink()
    fresh = _store(tmp_path)
    assert all(fresh.get(key) == expected[key] for key in objects)


def test_rewrap_reports_damaged_objects_and_goes_on(tmp_path: Path) -> None:
    store = _store(tmp_path)
    good = _put(store, tmp_path, b"good" * 50)
    bad = _put(store, tmp_path, b"bad" * 50)
    damaged = bytearray(_file(tmp_path, bad).read_bytes())
    damaged[Header.parse(bytes(damaged)).size - 1] ^= 1
    _file(tmp_path, bad).write_bytes(bytes(damaged))
    assert isinstance(store.provider, FileKeyProvider)
    store.provider.rotate()
    report = store.rewrap_all()
    assert report.rewrapped == 1 and [key for key, _ in report.failed] == [bad]
    assert store.get(good) == b"good" * 50


def test_hostile_keys_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for key in ("../../etc/passwd", "/abs", "a/b", "", ".hidden", "a" * 300):
        with pytest.raises(InvalidInput):
            store.get(key)
        with pytest.raises(InvalidInput):
            store.get_range(key, 0, 1)
    with pytest.raises(NotFound):
        store.open_stream("0" * 64)


# -- through the archive (SQLite and PostgreSQL) ---------------------------------------------
def test_archive_encrypts_by_default_and_serves_frames(archive: ArchiveService,
                                                       tmp_path: Path) -> None:
    assert isinstance(archive.blobs, EncryptedBlobStore)
    ds = make_instance(patient_name="SECRET^NAME", patient_id="PID-778899", frames=4,
                       rows=64, columns=64)
    outcome = archive.store_file(write(ds, tmp_path))
    (stored,) = archive.instances(outcome.study_uid)
    blob = archive.settings.blob_dir / stored.blob_key[:2] / stored.blob_key[2:4] / stored.blob_key
    assert b"SECRET^NAME" not in blob.read_bytes() and b"PID-778899" not in blob.read_bytes()
    frames = archive.frames(outcome.study_uid, outcome.series_uid, outcome.sop_uid,
                            [1, 4], native=False)
    pixels = ds.PixelData
    frame_bytes = len(pixels) // 4
    assert [f.data for f in frames] == [pixels[:frame_bytes], pixels[3 * frame_bytes :]]
    assert archive.verify(outcome.sop_uid) == (stored.sop_class_uid, True)


def test_archive_sweep_spares_recent_encrypted_orphans(archive: ArchiveService,
                                                       tmp_path: Path) -> None:
    source = tmp_path / "orphan.bin"
    source.write_bytes(b"orphan")
    key = hashlib.sha256(b"orphan").hexdigest()
    archive.blobs.put_file(key, source)
    assert archive.sweep_orphans(older_than_s=3600) == 0 and archive.blobs.exists(key)
    path = archive.settings.blob_dir / key[:2] / key[2:4] / key
    old = time.time() - 7200
    os.utime(path, (old, old))
    assert archive.sweep_orphans(older_than_s=3600) == 1 and not archive.blobs.exists(key)


def test_encryption_off_stores_plaintext(settings: Settings, tmp_path: Path) -> None:
    archive = build_archive(replace(settings, encrypt_at_rest=False))
    assert isinstance(archive.blobs, FilesystemBlobStore)
    assert not kek_path(settings.data_dir, settings.kek_file).exists()


def test_turning_encryption_off_keeps_encrypted_blobs_readable(settings: Settings,
                                                               tmp_path: Path) -> None:
    before = build_archive(settings)
    sealed = before.store_file(write(make_instance(patient_name="SEALED^ONE"), tmp_path))
    after = build_archive(replace(settings, encrypt_at_rest=False))
    plain = after.store_file(write(make_instance(patient_name="PLAIN^TWO", seed=5), tmp_path))
    assert isinstance(after.blobs, EncryptedBlobStore)
    keys = {o.sop_uid: after.instances(o.study_uid)[0].blob_key for o in (sealed, plain)}
    assert after.blobs.key_id_of(keys[sealed.sop_uid]) != PLAINTEXT
    assert after.blobs.key_id_of(keys[plain.sop_uid]) == PLAINTEXT
    for outcome in (sealed, plain):
        (stored,) = after.instances(outcome.study_uid)
        assert b"DICM" in after.read_bytes(stored)[:132]
        assert after.verify(outcome.sop_uid) == (stored.sop_class_uid, True)


# -- the CLI -------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VESALIUS, "keys", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "VESALIUS_DATABASE_URL": ""})


def test_cli_rotate_and_status(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    store = _store(data_dir)
    keys = [_put(store, tmp_path, os.urandom(n)) for n in (5, 100000)]
    old_id = store.provider.key_id

    status = _cli("status", "--data-dir", str(data_dir))
    assert status.returncode == 0, status.stderr
    assert f"current key {old_id}" in status.stdout and f"{old_id}: 2 object(s)" in status.stdout

    rotated = _cli("rotate", "--data-dir", str(data_dir))
    assert rotated.returncode == 0, rotated.stderr
    new_id = FileKeyProvider(kek_path(data_dir, settings.kek_file)).key_id
    assert new_id != old_id and "rewrapped 2" in rotated.stdout
    assert all(_store(data_dir).get(k) for k in keys)
    key_text = kek_path(data_dir).read_text()
    assert key_text.strip() not in rotated.stdout + rotated.stderr

    chosen = tmp_path / "next.key"
    chosen.write_text(os.urandom(32).hex())
    again = _cli("rotate", "--data-dir", str(data_dir), "--new-kek-file", str(chosen))
    assert again.returncode == 0, again.stderr
    assert kek_path(data_dir).read_text().strip() == chosen.read_text().strip()
    assert _store(data_dir).key_usage() == {FileKeyProvider(kek_path(data_dir)).key_id: 2}

    status = _cli("status", "--data-dir", str(data_dir))
    assert "retired" in status.stdout and new_id in status.stdout


@pytest.mark.parametrize("content", ["", "not hex", "ab" * 16, "ab" * 40])
def test_cli_refuses_a_bad_new_key_file(tmp_path: Path, content: str) -> None:
    data_dir = tmp_path / "data"
    _put(_store(data_dir), tmp_path, b"x")
    before = kek_path(data_dir).read_text()
    bad = tmp_path / "bad.key"
    bad.write_text(content)
    result = _cli("rotate", "--data-dir", str(data_dir), "--new-kek-file", str(bad))
    assert result.returncode == 2 and "error:" in result.stderr
    assert kek_path(data_dir).read_text() == before
    missing = _cli("rotate", "--data-dir", str(data_dir), "--new-kek-file",
                   str(tmp_path / "absent.key"))
    assert missing.returncode == 2
