"""The envelope format: one object sealed in independently authenticated AES-256-GCM chunks.

Why chunks: retrieval reads byte ranges (a frame out of a 500 MB multi-frame instance), and
one GCM tag over the whole object would force reading and checking all of it first. Each
chunk carries its own tag, so a range costs only the chunks it overlaps (the STREAM
construction of Hoang, Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption
and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015; also Tink's streaming AEAD).

Layout (integers big-endian)::

    magic       8   b"\\x89VSLENC\\n" (a high byte and a newline, as PNG: text-mode damage shows)
    version     1   1
    header_len  2   bytes before the first chunk
    chunk_size  4   plaintext bytes per chunk (the last chunk may be shorter, even empty)
    length      8   plaintext length
    nonce_pfx   8   random per object
    id_len      1   then the KEK id (ASCII)
    wrap_len    2   then the data key wrapped under that KEK (AES Key Wrap, RFC 3394)
    chunks          ciphertext || 16-byte tag, each

Chunk ``i`` is AES-256-GCM (NIST SP 800-38D) under the object's random data key with the
96-bit nonce ``nonce_pfx || i`` (32-bit ``i``) and associated data binding the object key,
the version, chunk size, length, nonce prefix, ``i`` and whether it is the last chunk.
So a chunk moved within an object, to another object, or an object moved to another key
fails authentication; dropping trailing chunks fails because the last-chunk flag and the
length disagree; editing the authenticated header fields fails every chunk. The KEK id and
wrapped key are deliberately outside the associated data: rotation replaces them without
touching a chunk, and AES Key Wrap's own integrity check guards them. There is always at
least one chunk, so even an empty object carries a tag.

Every data key is fresh from the OS random generator and seals one object once, so nonces
never repeat under a key; the random prefix is defence in depth.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vesalius.core.errors import InvalidInput, StorageFailure
from vesalius.security.crypto.errors import TamperedData
from vesalius.security.crypto.keys import DATA_KEY_BYTES, KeyProvider

MAGIC = b"\x89VSLENC\n"
VERSION = 1
DEFAULT_CHUNK_SIZE = 64 * 1024
MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 16 * 1024 * 1024
TAG_BYTES = 16
NONCE_PREFIX_BYTES = 8
MAX_KEY_ID_BYTES = 255
MAX_WRAPPED_BYTES = 1024

_FIXED = struct.Struct(">8sBHIQ8s")
_AAD_FIELDS = struct.Struct(">BIQ8sI?")
_AAD_DOMAIN = b"vesalius envelope v1\x00"
#: Enough bytes to hold any header; reading this much parses every header in one read.
MAX_HEADER_BYTES = _FIXED.size + 1 + MAX_KEY_ID_BYTES + 2 + MAX_WRAPPED_BYTES
_MAX_CHUNKS = 1 << 32


class RandomAccess(Protocol):
    """Positional reads over stored bytes (a file descriptor, an object store's ranges)."""

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; fewer only at the end of the object."""


def looks_like_envelope(prefix: bytes) -> bool:
    """Whether ``prefix`` starts with the magic or a slightly damaged copy of it.

    Objects stored before encryption was turned on are read as plaintext, recognised by
    the missing magic; a flipped or truncated magic must not make an envelope pass for
    plaintext (and be served as ciphertext garbage), so up to two wrong bytes still count
    as an envelope. DICOM files start with a 128-byte preamble that is normally zeros, and
    the magic has no zero byte.
    """
    head = prefix[: len(MAGIC)]
    if len(head) < 4:
        return len(head) > 0 and MAGIC.startswith(head)
    return sum(a != b for a, b in zip(head, MAGIC, strict=False)) <= 2


@dataclass(frozen=True)
class Header:
    chunk_size: int
    length: int
    nonce_prefix: bytes
    key_id: str
    wrapped_key: bytes

    @property
    def size(self) -> int:
        """Bytes before the first chunk."""
        return _FIXED.size + 1 + len(self.key_id) + 2 + len(self.wrapped_key)

    @property
    def chunk_count(self) -> int:
        return max(1, -(-self.length // self.chunk_size))

    @property
    def stored_size(self) -> int:
        """The exact size of the whole stored object."""
        return self.size + self.length + self.chunk_count * TAG_BYTES

    def encode(self) -> bytes:
        key_id = self.key_id.encode("ascii")
        return b"".join((
            _FIXED.pack(MAGIC, VERSION, self.size, self.chunk_size, self.length,
                        self.nonce_prefix),
            bytes([len(key_id)]), key_id,
            len(self.wrapped_key).to_bytes(2, "big"), self.wrapped_key))

    @classmethod
    def parse(cls, prefix: bytes) -> Header:
        """The header at the start of ``prefix``; :class:`TamperedData` if it is malformed."""
        if len(prefix) < _FIXED.size + 1:
            raise TamperedData("encrypted blob is truncated inside its header")
        magic, version, size, chunk_size, length, nonce_prefix = _FIXED.unpack_from(prefix)
        if magic != MAGIC:
            raise TamperedData("encrypted blob has a damaged header")
        if version != VERSION:
            raise TamperedData(f"encrypted blob has unknown format version {version}")
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise TamperedData("encrypted blob header has an impossible chunk size")
        pos = _FIXED.size
        id_len = prefix[pos]
        pos += 1
        if id_len == 0 or len(prefix) < pos + id_len + 2:
            raise TamperedData("encrypted blob header is truncated or malformed")
        try:
            key_id = prefix[pos : pos + id_len].decode("ascii")
        except UnicodeDecodeError as exc:
            raise TamperedData("encrypted blob header has a malformed key id") from exc
        pos += id_len
        wrap_len = int.from_bytes(prefix[pos : pos + 2], "big")
        pos += 2
        if not 0 < wrap_len <= MAX_WRAPPED_BYTES or len(prefix) < pos + wrap_len:
            raise TamperedData("encrypted blob header is truncated or malformed")
        header = cls(chunk_size, length, nonce_prefix, key_id, prefix[pos : pos + wrap_len])
        if header.size != size:
            raise TamperedData("encrypted blob header length does not add up")
        if -(-length // chunk_size) >= _MAX_CHUNKS:
            raise TamperedData("encrypted blob header has an impossible length")
        return header

    def rewrapped(self, provider: KeyProvider) -> Header:
        """This header with its data key wrapped under ``provider``'s current KEK."""
        data_key = provider.unwrap(self.wrapped_key, self.key_id)
        return replace(self, key_id=provider.key_id, wrapped_key=provider.wrap(data_key))


def _check_key_id(key_id: str) -> bytes:
    encoded = key_id.encode("ascii", errors="replace")
    if not 0 < len(encoded) <= MAX_KEY_ID_BYTES or not key_id.isascii():
        raise InvalidInput("a key id must be 1 to 255 ASCII characters")
    return encoded


def _aad(object_key: str, header: Header, index: int, last: bool) -> bytes:
    return b"".join((_AAD_DOMAIN, object_key.encode("utf-8"), b"\x00",
                     _AAD_FIELDS.pack(VERSION, header.chunk_size, header.length,
                                      header.nonce_prefix, index, last)))


def _nonce(header: Header, index: int) -> bytes:
    return header.nonce_prefix + index.to_bytes(4, "big")


def seal(source: BinaryIO, length: int, out: BinaryIO, object_key: str,
         provider: KeyProvider, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> str:
    """Encrypt exactly ``length`` bytes from ``source`` into ``out``; their SHA-256 (hex).

    One chunk is in memory at a time. A source that turns out shorter or longer than
    ``length`` (changed while read) is refused with :class:`StorageFailure`.
    """
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise InvalidInput("chunk size out of range")
    _check_key_id(provider.key_id)
    data_key = os.urandom(DATA_KEY_BYTES)
    header = Header(chunk_size, length, os.urandom(NONCE_PREFIX_BYTES), provider.key_id,
                    provider.wrap(data_key))
    if header.chunk_count >= _MAX_CHUNKS:
        raise InvalidInput("object too large for the envelope format")
    aead = AESGCM(data_key)
    digest = hashlib.sha256()
    out.write(header.encode())
    remaining = length
    for index in range(header.chunk_count):
        want = min(chunk_size, remaining)
        plain = source.read(want)
        if len(plain) != want:
            raise StorageFailure("the source file changed while it was being stored")
        remaining -= want
        digest.update(plain)
        last = index == header.chunk_count - 1
        out.write(aead.encrypt(_nonce(header, index), plain, _aad(object_key, header, index,
                                                                   last)))
    if source.read(1):
        raise StorageFailure("the source file changed while it was being stored")
    return digest.hexdigest()


class Envelope:
    """An opened envelope: its header, its data key and positional access to its chunks."""

    __slots__ = ("_aead", "_source", "header", "object_key")

    def __init__(self, source: RandomAccess, object_key: str, provider: KeyProvider,
                 header: Header | None = None) -> None:
        self._source = source
        self.object_key = object_key
        self.header = header or Header.parse(source.read_at(0, MAX_HEADER_BYTES))
        self._aead = AESGCM(provider.unwrap(self.header.wrapped_key, self.header.key_id))

    def __repr__(self) -> str:
        return f"Envelope({self.object_key!r}, {self.header.length} bytes, ***)"

    @property
    def length(self) -> int:
        return self.header.length

    def _open_chunks(self, first: int, last: int) -> Iterator[bytes]:
        """Decrypted chunks ``first..last`` (inclusive), read in one positional read."""
        h = self.header
        stride = h.chunk_size + TAG_BYTES
        start = h.size + first * stride
        end = min(h.size + (last + 1) * stride, h.stored_size)
        stored = self._source.read_at(start, end - start)
        if len(stored) != end - start:
            raise TamperedData("encrypted blob is truncated")
        final = h.chunk_count - 1
        if last == final and self._source.read_at(h.stored_size, 1):
            raise TamperedData("encrypted blob has bytes after its last chunk")
        for index in range(first, last + 1):
            at = (index - first) * stride
            sealed = stored[at : at + stride]
            try:
                yield self._aead.decrypt(_nonce(h, index), sealed,
                                         _aad(self.object_key, h, index, index == final))
            except InvalidTag as exc:
                raise TamperedData("encrypted blob failed authentication "
                                   f"(chunk {index})") from exc

    def read(self, offset: int, length: int) -> bytes:
        """Plaintext bytes ``[offset, offset + length)`` clipped to the object, like a file."""
        if offset < 0 or length < 0:
            raise InvalidInput("invalid byte range")
        end = min(offset + length, self.header.length)
        if offset >= end:
            return b""
        size = self.header.chunk_size
        first, last = offset // size, (end - 1) // size
        data = b"".join(self._open_chunks(first, last))
        skip = offset - first * size
        return data[skip : skip + end - offset]

    def chunks(self, batch: int = 16) -> Iterator[bytes]:
        """Every plaintext chunk in order, ``batch`` chunks per read (bounded memory)."""
        count = self.header.chunk_count
        for first in range(0, count, batch):
            yield from self._open_chunks(first, min(first + batch, count) - 1)
