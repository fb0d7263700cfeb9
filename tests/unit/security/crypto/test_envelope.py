"""The envelope format on its own: round trips, ranges, and every kind of tampering."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from vesalius.core.errors import InvalidInput, StorageFailure, VesaliusError
from vesalius.security.crypto.envelope import (
    MAGIC,
    MAX_HEADER_BYTES,
    TAG_BYTES,
    Envelope,
    Header,
    looks_like_envelope,
    seal,
)
from vesalius.security.crypto.errors import KeyUnavailable, TamperedData
from vesalius.security.crypto.keys import FileKeyProvider

CHUNK = 1024
KEY = "a" * 64


class Bytes:
    """RandomAccess over bytes in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read_at(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


@pytest.fixture
def provider(tmp_path: Path) -> FileKeyProvider:
    return FileKeyProvider(tmp_path / "keys" / "kek.key")


def _seal(data: bytes, provider: FileKeyProvider, key: str = KEY,
          chunk_size: int = CHUNK) -> bytes:
    out = io.BytesIO()
    seal(io.BytesIO(data), len(data), out, key, provider, chunk_size=chunk_size)
    return out.getvalue()


def _open(stored: bytes, provider: FileKeyProvider, key: str = KEY) -> Envelope:
    return Envelope(Bytes(stored), key, provider)


def _read_all(stored: bytes, provider: FileKeyProvider, key: str = KEY) -> bytes:
    return b"".join(_open(stored, provider, key).chunks())


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_and_exact_size(provider: FileKeyProvider, size: int) -> None:
    data = os.urandom(size)
    stored = _seal(data, provider)
    header = Header.parse(stored[:MAX_HEADER_BYTES])
    assert header.length == size and len(stored) == header.stored_size
    assert len(stored) == header.size + size + header.chunk_count * TAG_BYTES
    assert _read_all(stored, provider) == data


def test_seal_returns_the_plaintext_digest(provider: FileKeyProvider) -> None:
    import hashlib

    data = os.urandom(3 * CHUNK + 5)
    out = io.BytesIO()
    digest = seal(io.BytesIO(data), len(data), out, KEY, provider, chunk_size=CHUNK)
    assert digest == hashlib.sha256(data).hexdigest()


def test_ciphertext_shows_nothing_of_the_plaintext(provider: FileKeyProvider) -> None:
    data = b"DOE^JANE PATIENT-ID-12345 " * 400
    stored = _seal(data, provider)
    assert b"DOE^JANE" not in stored and b"12345" not in stored
    # Same plaintext twice: different data keys, different ciphertext.
    assert _seal(data, provider)[MAX_HEADER_BYTES:] != stored[MAX_HEADER_BYTES:]


def test_ranges_equal_plaintext_slices(provider: FileKeyProvider) -> None:
    rng = random.Random(1234)
    data = rng.randbytes(7 * CHUNK + 333)
    envelope = _open(_seal(data, provider), provider)
    edges = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 7 * CHUNK, len(data) - 1, len(data)]
    cases = [(o, n) for o in edges for n in (0, 1, 2, CHUNK, 2 * CHUNK + 1)]
    cases += [(rng.randrange(len(data) + 50), rng.randrange(4 * CHUNK)) for _ in range(400)]
    for offset, length in cases:
        assert envelope.read(offset, length) == data[offset : offset + length], (offset, length)


def test_range_reads_only_the_chunks_it_covers(provider: FileKeyProvider) -> None:
    data = os.urandom(50 * CHUNK)
    stored = _seal(data, provider)
    reads: list[tuple[int, int]] = []

    class Counting(Bytes):
        def read_at(self, offset: int, length: int) -> bytes:
            reads.append((offset, length))
            return super().read_at(offset, length)

    envelope = Envelope(Counting(stored), KEY, provider)
    reads.clear()
    assert envelope.read(20 * CHUNK + 10, 100) == data[20 * CHUNK + 10 : 20 * CHUNK + 110]
    assert sum(n for _, n in reads) == CHUNK + TAG_BYTES


def test_negative_ranges_are_refused(provider: FileKeyProvider) -> None:
    envelope = _open(_seal(b"abc", provider), provider)
    for offset, length in ((-1, 1), (0, -1)):
        with pytest.raises(InvalidInput):
            envelope.read(offset, length)


def _tampered(stored: bytes, provider: FileKeyProvider, key: str = KEY) -> None:
    """Opening and reading everything (and every range) must fail with a domain error."""
    with pytest.raises(VesaliusError) as caught:
        envelope = _open(stored, provider, key)
        b"".join(envelope.chunks())
    assert isinstance(caught.value, TamperedData | KeyUnavailable)


def test_every_single_byte_flip_is_detected(provider: FileKeyProvider) -> None:
    data = os.urandom(2 * CHUNK + 10)
    stored = _seal(data, provider)
    for position in range(len(stored)):
        damaged = bytearray(stored)
        damaged[position] ^= 0x01
        _tampered(bytes(damaged), provider)


def test_truncation_and_extension_are_detected(provider: FileKeyProvider) -> None:
    stored = _seal(os.urandom(3 * CHUNK), provider)
    header = Header.parse(stored)
    for cut in (0, 4, 20, header.size, header.size + 1, header.size + CHUNK + TAG_BYTES,
                len(stored) - 1):
        if cut < 4:
            assert looks_like_envelope(stored[:cut]) == (cut > 0)
            continue
        _tampered(stored[:cut], provider)
    _tampered(stored + b"\x00", provider)
    # A range inside the surviving chunks is intact data; one reaching the cut fails.
    truncated = Envelope(Bytes(stored[: header.size + CHUNK + TAG_BYTES]), KEY, provider)
    assert len(truncated.read(0, 10)) == 10
    with pytest.raises(TamperedData):
        truncated.read(CHUNK, 10)


def test_swapped_chunks_are_detected(provider: FileKeyProvider) -> None:
    stored = _seal(os.urandom(3 * CHUNK), provider)
    h = Header.parse(stored).size
    stride = CHUNK + TAG_BYTES
    first, second = stored[h : h + stride], stored[h + stride : h + 2 * stride]
    swapped = stored[:h] + second + first + stored[h + 2 * stride :]
    _tampered(swapped, provider)


def test_dropping_the_last_chunk_is_detected(provider: FileKeyProvider) -> None:
    """Chunk-aligned truncation plus a forged length still fails (length is authenticated)."""
    stored = _seal(os.urandom(3 * CHUNK), provider)
    header = Header.parse(stored)
    shorter = Header(header.chunk_size, 2 * CHUNK, header.nonce_prefix, header.key_id,
                     header.wrapped_key)
    forged = shorter.encode() + stored[header.size : header.size + 2 * (CHUNK + TAG_BYTES)]
    _tampered(forged, provider)


def test_objects_are_bound_to_their_key(provider: FileKeyProvider) -> None:
    stored = _seal(b"object under key a", provider, key="a" * 64)
    _tampered(stored, provider, key="b" * 64)


def test_chunks_cannot_move_between_objects(provider: FileKeyProvider) -> None:
    one = _seal(os.urandom(2 * CHUNK), provider)
    two = _seal(os.urandom(2 * CHUNK), provider)
    h1, h2 = Header.parse(one).size, Header.parse(two).size
    mixed = one[:h1] + two[h2 : h2 + CHUNK + TAG_BYTES] + one[h1 + CHUNK + TAG_BYTES :]
    _tampered(mixed, provider)


def test_wrong_kek_is_an_error(provider: FileKeyProvider, tmp_path: Path) -> None:
    stored = _seal(b"secret", provider)
    other = FileKeyProvider(tmp_path / "other" / "kek.key")
    with pytest.raises(KeyUnavailable):
        _open(stored, other)
    # The same id forged into the header does not help: the wrap does not verify.
    header = Header.parse(stored)
    forged = Header(header.chunk_size, header.length, header.nonce_prefix, other.key_id,
                    header.wrapped_key).encode() + stored[header.size :]
    with pytest.raises(TamperedData):
        _open(forged, other)


def test_hostile_headers_fail_cleanly(provider: FileKeyProvider) -> None:
    rng = random.Random(7)
    stored = _seal(b"x" * 100, provider)
    samples = [MAGIC, MAGIC + b"\x01", MAGIC + b"\x02" + b"\xff" * 40, MAGIC + bytes(60),
               MAGIC + b"\x01\xff\xff" + bytes(30)]
    samples += [MAGIC + rng.randbytes(rng.randrange(200)) for _ in range(300)]
    samples += [stored[:n] for n in range(8, 80)]
    for sample in samples:
        with pytest.raises((TamperedData, KeyUnavailable)):
            b"".join(Envelope(Bytes(sample), KEY, provider).chunks())


def test_oversized_length_claims_fail_without_allocating(provider: FileKeyProvider) -> None:
    stored = _seal(b"tiny", provider)
    header = Header.parse(stored)
    huge = Header(header.chunk_size, 1 << 40, header.nonce_prefix, header.key_id,
                  header.wrapped_key)
    forged = huge.encode() + stored[header.size :]
    envelope = Envelope(Bytes(forged), KEY, provider)
    with pytest.raises(TamperedData):
        envelope.read(0, 10)


def test_damaged_magic_still_counts_as_an_envelope() -> None:
    assert looks_like_envelope(MAGIC)
    for position in range(len(MAGIC)):
        damaged = bytearray(MAGIC)
        damaged[position] ^= 0xFF
        assert looks_like_envelope(bytes(damaged))
    assert not looks_like_envelope(bytes(128) + b"DICM")
    assert not looks_like_envelope(b"")
    assert not looks_like_envelope(b"plain text file")


def test_a_source_that_changes_while_sealed_is_refused(provider: FileKeyProvider) -> None:
    for claimed in (10, 12):
        with pytest.raises(StorageFailure):
            seal(io.BytesIO(b"x" * 11), claimed, io.BytesIO(), KEY, provider, chunk_size=CHUNK)


def test_out_of_range_chunk_sizes_are_refused(provider: FileKeyProvider) -> None:
    for size in (0, 15, 1 << 30):
        with pytest.raises(InvalidInput):
            seal(io.BytesIO(b"x"), 1, io.BytesIO(), KEY, provider, chunk_size=size)


def test_repr_hides_the_data_key(provider: FileKeyProvider) -> None:
    envelope = _open(_seal(b"abc", provider), provider)
    assert "***" in repr(envelope)
