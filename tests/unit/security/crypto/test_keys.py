"""The key-file provider: creation, permissions, ids, rotation, hostile key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vesalius.core.errors import InvalidInput, NotFound, StorageFailure
from vesalius.security.crypto.errors import KeyUnavailable, TamperedData
from vesalius.security.crypto.keys import (
    RETIRED_DIR_NAME,
    FileKeyProvider,
    kek_path,
    key_id_of,
    read_kek_file,
)


def test_generated_with_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "kek.key"
    provider = FileKeyProvider(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    secret = read_kek_file(path)
    assert len(secret) == 32 and provider.key_id == key_id_of(secret)
    assert secret.hex() not in provider.key_id
    # Loading again keeps the key: nothing is regenerated.
    assert FileKeyProvider(path).key_id == provider.key_id


def test_missing_key_without_create_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        FileKeyProvider(tmp_path / "kek.key", create=False)


def test_default_and_configured_locations(tmp_path: Path) -> None:
    assert kek_path(tmp_path) == tmp_path / "keys" / "kek.key"
    assert kek_path(tmp_path, str(tmp_path / "elsewhere.key")) == tmp_path / "elsewhere.key"


@pytest.mark.parametrize("content", [b"", b"zz" * 32, b"ab" * 31, b"ab" * 33, b"\xff" * 64,
                                     b"a" * 5000])
def test_malformed_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kek.key"
    path.write_bytes(content)
    with pytest.raises(InvalidInput):
        FileKeyProvider(path)


def test_wrap_round_trip_and_wrong_inputs(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path / "kek.key")
    data_key = os.urandom(32)
    wrapped = provider.wrap(data_key)
    assert data_key not in wrapped
    assert provider.unwrap(wrapped, provider.key_id) == data_key
    with pytest.raises(KeyUnavailable):
        provider.unwrap(wrapped, "kek-unknown")
    damaged = bytes([wrapped[0] ^ 1]) + wrapped[1:]
    for bad in (damaged, wrapped[:-8], b"", b"short", wrapped + bytes(8)):
        with pytest.raises(TamperedData):
            provider.unwrap(bad, provider.key_id)
    with pytest.raises(InvalidInput):
        provider.wrap(b"too short")


def test_rotation_keeps_old_keys_for_unwrapping(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "kek.key"
    provider = FileKeyProvider(path)
    old_id = provider.key_id
    wrapped = provider.wrap(b"k" * 32)
    new_id = provider.rotate()
    assert new_id != old_id and provider.key_id == new_id
    assert provider.unwrap(wrapped, old_id) == b"k" * 32
    retired = path.parent / RETIRED_DIR_NAME / f"{old_id}.key"
    assert stat.S_IMODE(retired.stat().st_mode) == 0o600
    assert provider.known_ids() == [new_id, old_id]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A second process that loaded before the rotation learns the new key on demand.
    assert FileKeyProvider(path).unwrap(provider.wrap(b"n" * 32), new_id) == b"n" * 32


def test_rotation_to_a_given_key_and_to_the_same_key(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path / "kek.key")
    chosen = os.urandom(32)
    assert provider.rotate(chosen) == key_id_of(chosen)
    with pytest.raises(InvalidInput):
        provider.rotate(chosen)
    with pytest.raises(InvalidInput):
        provider.rotate(b"short")


def test_stale_provider_reloads_after_another_rotates(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    stale = FileKeyProvider(path)
    rotator = FileKeyProvider(path)
    rotator.rotate()
    wrapped = rotator.wrap(b"z" * 32)
    assert stale.unwrap(wrapped, rotator.key_id) == b"z" * 32


def test_a_misnamed_retired_file_is_known_by_its_content(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    provider = FileKeyProvider(path)
    old_id = provider.key_id
    wrapped = provider.wrap(b"w" * 32)
    provider.rotate()
    retired = path.parent / RETIRED_DIR_NAME
    (retired / f"{old_id}.key").rename(retired / "renamed.key")
    (retired / "junk.key").write_text("not hex")
    assert FileKeyProvider(path).unwrap(wrapped, old_id) == b"w" * 32


def test_repr_masks_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    provider = FileKeyProvider(path)
    secret = read_kek_file(path).hex()
    assert secret not in repr(provider) and "***" in repr(provider)
    assert secret not in repr(provider.__dict__)



def test_rotation_that_cannot_write_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    provider = FileKeyProvider(path)
    before = path.read_text()
    (tmp_path / RETIRED_DIR_NAME).write_text("a file where the folder should be")
    with pytest.raises(StorageFailure):
        provider.rotate()
    assert path.read_text() == before and provider.key_id == key_id_of(read_kek_file(path))
