"""Where the frames are inside a stored DICOM file, and how to get them as native bytes.

The archive stores instances exactly as received and serves single frames
(WADO-RS ``/frames/{n}``, PS3.18 §10.4.1.1.3) with byte-range reads, so the
frame boundaries are computed once, from the file's header, without loading
the Pixel Data value into memory.

* Native (uncompressed) Pixel Data is one contiguous value; each frame
  occupies ``Rows * Columns * Samples per Pixel * Bits Allocated / 8`` bytes
  (PS3.5 §8.1.1 and PS3.5 §8.2).
* Encapsulated Pixel Data is a sequence of items: a Basic Offset Table item,
  then one or more fragments (PS3.5 §A.4). A frame is one or more whole
  fragments; the frame boundaries come from the Extended Offset Table
  (7FE0,0001) / (7FE0,0002), the Basic Offset Table, the fragment count, or,
  for the JPEG family, the start-of-codestream marker at the start of every
  frame (PS3.5 §A.4, Table A.4-1 and Table A.4-2).
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import pack_bits
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from vesalius.core.errors import InvalidInput, NotAcceptable, NotFound

__all__ = [
    "FrameRange",
    "PixelLayout",
    "decode_array",
    "decode_frame",
    "pixel_layout",
    "read_frame",
]

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = 0x7FE00008
DOUBLE_FLOAT_PIXEL_DATA = 0x7FE00009
_PIXEL_DATA_TAGS = frozenset({PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA})

_SUBSAMPLED_422 = frozenset({"YBR_FULL_422", "YBR_PARTIAL_422"})
_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_UNDEFINED_LENGTH = 0xFFFFFFFF
# Explicit VRs whose header has 2 reserved bytes and a 32-bit length (PS3.5 §7.1.2).
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)

# Start-of-codestream markers used to find frame boundaries when an
# encapsulated multi-frame image has neither offset table nor one fragment per
# frame: JPEG SOI (ITU-T T.81 / T.87), JPEG 2000 SOC+SIZ (ISO/IEC 15444-1 A.4)
# and the JP2 signature box (ISO/IEC 15444-1 I.5.1).
_FRAME_START_MARKERS = (b"\xff\xd8\xff", b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP  ")
# JPEG family transfer syntaxes (PS3.5 §A.4.1 to §A.4.4, §A.4.8 to §A.4.10 and HTJ2K):
# their frames begin with one of the markers above.
_MARKED_FRAME_PREFIXES = (
    "1.2.840.10008.1.2.4.5",
    "1.2.840.10008.1.2.4.6",
    "1.2.840.10008.1.2.4.7",
    "1.2.840.10008.1.2.4.8",
    "1.2.840.10008.1.2.4.9",
    "1.2.840.10008.1.2.4.20",
    "1.2.840.10008.1.2.4.11",
)


@dataclass(frozen=True)
class FrameRange:
    """A byte range in the stored file: ``length`` bytes starting at ``offset``."""

    offset: int
    length: int


@dataclass(frozen=True)
class PixelLayout:
    """The byte ranges of every frame of a stored instance.

    ``frames[i]`` lists the ranges that, concatenated, are frame ``i`` (0-based)
    as stored: for native data a single range in the file's own byte order
    (big endian for Explicit VR Big Endian, PS3.5 §7.3); for encapsulated
    data the values of the fragments (item headers excluded, PS3.5 §A.4).
    """

    transfer_syntax_uid: str
    encapsulated: bool
    number_of_frames: int
    frames: tuple[tuple[FrameRange, ...], ...]


def layout_to_json(layout: PixelLayout) -> str:
    """Compact JSON form of a layout, as the index keeps it."""
    return json.dumps({
        "transfer_syntax_uid": layout.transfer_syntax_uid,
        "encapsulated": layout.encapsulated,
        "frames": [[[r.offset, r.length] for r in frame] for frame in layout.frames],
    })


def layout_from_json(text: str) -> PixelLayout:
    data = json.loads(text)
    frames = tuple(tuple(FrameRange(offset, length) for offset, length in frame)
                   for frame in data["frames"])
    return PixelLayout(data["transfer_syntax_uid"], data["encapsulated"], len(frames), frames)


def pixel_layout(path: Path, parsed: Dataset | None = None) -> PixelLayout | None:
    """Locate every frame of the Pixel Data in the Part 10 file at ``path``.

    Returns None when the file has no Pixel Data, Float Pixel Data or Double
    Float Pixel Data at the top level (e.g. an SR document), when the data set
    is deflated (PS3.5 §A.5: no byte offset in the file is meaningful), when
    native frames are not byte aligned (Bits Allocated 1, PS3.5 §8.1.1), or
    when the frame boundaries cannot be determined reliably.

    Raises InvalidInput when the file is not a DICOM Part 10 file (PS3.10 §7.1).

    ``parsed`` may be the data set already read from ``path`` (with deferred large
    values); its raw Pixel Data element then gives the offsets without a second parse.
    """
    raw = parsed.get_item(PIXEL_DATA, keep_deferred=True) if parsed is not None else None
    if parsed is not None and isinstance(raw, RawDataElement) and raw.value_tell:
        transfer_syntax = transfer_syntax_of(parsed)
        if transfer_syntax is None or transfer_syntax == DeflatedExplicitVRLittleEndian:
            return None
        size = path.stat().st_size
        if raw.length == _UNDEFINED_LENGTH:
            if not transfer_syntax.is_encapsulated:
                return None
            with path.open("rb") as fp:
                fp.seek(raw.value_tell)
                return _encapsulated_layout(fp, parsed, transfer_syntax, raw.value_tell, size)
        if transfer_syntax.is_encapsulated:
            return None
        return _native_layout(parsed, transfer_syntax, raw.value_tell, raw.length, size)
    with path.open("rb") as fp:
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError, ValueError, struct.error) as exc:
            raise InvalidInput(f"not a readable DICOM file: {exc}") from exc
        transfer_syntax = transfer_syntax_of(ds)
        if transfer_syntax is None or transfer_syntax == DeflatedExplicitVRLittleEndian:
            return None
        # ``stop_before_pixels`` rewinds to the first byte of the Pixel Data
        # element's tag (or leaves the file at its end when there is none).
        header = _read_element_header(fp, transfer_syntax)
        if header is None:
            return None
        tag, length, value_offset = header
        size = path.stat().st_size
        if length == _UNDEFINED_LENGTH:
            if tag != PIXEL_DATA or not transfer_syntax.is_encapsulated:
                return None
            return _encapsulated_layout(fp, ds, transfer_syntax, value_offset, size)
        if transfer_syntax.is_encapsulated:
            return None
        return _native_layout(ds, transfer_syntax, value_offset, length, size)


def read_frame(path: Path, layout: PixelLayout, index: int) -> bytes:
    """Read frame ``index`` (0-based) of the file at ``path`` as stored.

    For encapsulated data the fragment values are concatenated, which is the
    frame's compressed bitstream (PS3.5 §A.4). Raises InvalidInput for a
    negative index and NotFound for an index past the last frame.
    """
    if index < 0:
        raise InvalidInput(f"frame index must not be negative, got {index}")
    if index >= layout.number_of_frames:
        raise NotFound(
            f"frame {index + 1} does not exist: the instance has {layout.number_of_frames} frame(s)"
        )
    parts: list[bytes] = []
    with path.open("rb") as fp:
        for frame_range in layout.frames[index]:
            fp.seek(frame_range.offset)
            data = fp.read(frame_range.length)
            if len(data) != frame_range.length:
                raise InvalidInput("stored file is shorter than its pixel layout says")
            parts.append(data)
    return b"".join(parts)


def decode_frame(ds: Dataset, index: int) -> bytes:
    """Frame ``index`` (0-based) of ``ds`` as native little-endian bytes.

    The bytes are the frame as it would be encoded in Explicit VR Little
    Endian (PS3.5 §A.2, §8.1.1): samples of Bits Allocated each, little
    endian, Planar Configuration 0 after decoding. Compressed data is decoded
    with pydicom's pixel data decoders, which convert YCbCr colour to RGB as
    :meth:`pydicom.dataset.Dataset.decompress` does (so the bytes match the
    frame of ``to_explicit_vr_little_endian(ds)``). Native little-endian data,
    including YBR_FULL_422, is returned exactly as stored.

    Raises InvalidInput/NotFound for an index out of range and NotAcceptable
    when there is no pixel data or it cannot be decoded (for example 12-bit
    JPEG Extended, which no installed Python decoder supports).
    """
    number_of_frames = _number_of_frames(ds)
    if index < 0:
        raise InvalidInput(f"frame index must not be negative, got {index}")
    if not any(tag in ds for tag in _PIXEL_DATA_TAGS):
        raise NotAcceptable("the instance has no pixel data")
    if index >= number_of_frames:
        raise NotFound(
            f"frame {index + 1} does not exist: the instance has {number_of_frames} frame(s)"
        )
    transfer_syntax = transfer_syntax_of(ds) or ExplicitVRLittleEndian
    bits_allocated = int(ds.get("BitsAllocated", 8) or 8)
    if not transfer_syntax.is_encapsulated and transfer_syntax.is_little_endian:
        stored = _stored_native_frame(ds, index, number_of_frames, bits_allocated)
        if stored is not None:
            return stored
    arr = decode_array(ds, index)
    if bits_allocated == 1:
        return pack_bits(arr, pad=False)
    return _little_endian(arr, ds, bits_allocated).tobytes()


def decode_array(ds: Dataset, index: int) -> np.ndarray[Any, Any]:
    """Decode frame ``index`` of ``ds`` into an array (YCbCr converted to RGB).

    Raises NotAcceptable when no installed decoder can decode it.
    """
    transfer_syntax = transfer_syntax_of(ds) or ExplicitVRLittleEndian
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError as exc:
        raise NotAcceptable(f"no decoder for transfer syntax {transfer_syntax}") from exc
    if not decoder.is_available:
        raise NotAcceptable(
            f"no installed decoder for {transfer_syntax.name} ({transfer_syntax}); "
            f"missing plugins: {', '.join(sorted(decoder.missing_dependencies))}"
        )
    try:
        # ``as_rgb`` (the default) converts YCbCr to RGB.
        arr, _meta = decoder.as_array(ds, index=index)
    except Exception as exc:  # decoder plugins raise anything from ValueError to RuntimeError
        raise NotAcceptable(
            f"pixel data in {transfer_syntax.name} ({transfer_syntax}) cannot be decoded: {exc}"
        ) from exc
    return arr


def _stored_native_frame(
    ds: Dataset, index: int, number_of_frames: int, bits_allocated: int
) -> bytes | None:
    """Slice a frame out of native little-endian pixel data; None when not byte aligned."""
    keyword = next(
        (kw for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if kw in ds), None
    )
    if keyword is None:
        return None
    value = ds[keyword].value
    if not isinstance(value, bytes | bytearray):
        return None
    frame_length = _native_frame_length(ds, bits_allocated, number_of_frames)
    if frame_length is None or len(value) < frame_length * number_of_frames:
        return None
    return bytes(value[index * frame_length : (index + 1) * frame_length])


def _little_endian(
    arr: np.ndarray[Any, Any], ds: Dataset, bits_allocated: int
) -> np.ndarray[Any, Any]:
    if arr.dtype.kind == "f":
        kind = "f"
    else:
        kind = "i" if int(ds.get("PixelRepresentation", 0) or 0) == 1 else "u"
    return np.ascontiguousarray(arr.astype(f"<{kind}{bits_allocated // 8}", copy=False))


def _number_of_frames(ds: Dataset) -> int:
    value = ds.get("NumberOfFrames", 1)
    try:
        return max(int(value or 1), 1)
    except (TypeError, ValueError):
        return 1


def transfer_syntax_of(ds: Dataset) -> UID | None:
    """The data set's transfer syntax: from the File Meta (PS3.10 §7.1), else as read."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(str(uid))
    encoding = getattr(ds, "original_encoding", (None, None))
    if encoding == (True, True):
        return ImplicitVRLittleEndian
    if encoding == (False, True):
        return ExplicitVRLittleEndian
    if encoding == (False, False):
        return ExplicitVRBigEndian
    return None


def _read_element_header(fp: BinaryIO, transfer_syntax: UID) -> tuple[int, int, int] | None:
    """Read a top-level pixel data element header: (tag, value length, value offset).

    PS3.5 §7.1.2 (explicit VR) and §7.1.3 (implicit VR).
    """
    endian = "<" if transfer_syntax.is_little_endian else ">"
    head = fp.read(8)
    if len(head) < 8:
        return None
    group, element = struct.unpack(f"{endian}HH", head[:4])
    tag = (group << 16) | element
    if tag not in _PIXEL_DATA_TAGS:
        return None
    vr = head[4:6]
    # Tolerate an element encoded with the other VR form than the transfer
    # syntax says, as pydicom does when reading.
    explicit = (
        vr.isalpha() and vr.isupper()
        if not transfer_syntax.is_implicit_VR
        else vr in _LONG_VRS and head[6:8] == b"\0\0"
    )
    if not explicit:
        (length,) = struct.unpack(f"{endian}L", head[4:8])
        return tag, length, fp.tell()
    if vr in _LONG_VRS:
        more = fp.read(4)
        if len(more) < 4:
            return None
        (length,) = struct.unpack(f"{endian}L", more)
    else:
        (length,) = struct.unpack(f"{endian}H", head[6:8])
    return tag, length, fp.tell()


def _native_frame_length(ds: Dataset, bits_allocated: int, number_of_frames: int) -> int | None:
    """Bytes per native frame (PS3.5 §8.1.1), or None when frames are not byte aligned."""
    try:
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if str(ds.get("PhotometricInterpretation", "")) in _SUBSAMPLED_422:
            samples = 2  # Y Y Cb Cr for every two pixels, PS3.3 §C.7.6.3.1.2
        pixels = int(ds.Rows) * int(ds.Columns) * samples
    except (AttributeError, TypeError, ValueError):
        return None
    if pixels <= 0 or bits_allocated <= 0:
        return None
    bits = pixels * bits_allocated
    if bits % 8 == 0:
        return bits // 8
    # Bit-packed frames (Bits Allocated 1) run into each other mid-byte.
    return (bits + 7) // 8 if number_of_frames == 1 else None


def _native_layout(
    ds: Dataset, transfer_syntax: UID, value_offset: int, length: int, size: int
) -> PixelLayout | None:
    number_of_frames = _number_of_frames(ds)
    bits_allocated = int(ds.get("BitsAllocated", 0) or 0)
    frame_length = _native_frame_length(ds, bits_allocated, number_of_frames)
    if frame_length is None:
        return None
    if frame_length * number_of_frames > length or value_offset + length > size:
        return None
    frames = tuple(
        (FrameRange(value_offset + i * frame_length, frame_length),)
        for i in range(number_of_frames)
    )
    return PixelLayout(str(transfer_syntax), False, number_of_frames, frames)


def _scan_items(fp: BinaryIO, size: int) -> tuple[FrameRange, list[tuple[int, FrameRange]]] | None:
    """Walk the encapsulated items (PS3.5 §A.4, Table A.4-1) without reading fragment values.

    Returns the Basic Offset Table value range and, for every fragment, the
    offset of its item tag relative to the first fragment's item tag (the
    origin of both offset tables) with the range of its value.
    """
    items: list[FrameRange] = []
    while True:
        position = fp.tell()
        head = fp.read(8)
        if len(head) == 0 and items:
            break  # tolerate a missing Sequence Delimitation Item at end of file
        if len(head) < 8:
            return None
        group, element, length = struct.unpack("<HHL", head)
        tag = (group << 16) | element
        if tag == _SEQUENCE_DELIMITER:
            break
        if tag != _ITEM or length == _UNDEFINED_LENGTH or position + 8 + length > size:
            return None
        items.append(FrameRange(position + 8, length))
        fp.seek(length, 1)
    if not items:
        return None
    bot, fragments = items[0], items[1:]
    if not fragments:
        return None
    origin = fragments[0].offset - 8
    return bot, [(fragment.offset - 8 - origin, fragment) for fragment in fragments]


def _encapsulated_layout(
    fp: BinaryIO, ds: Dataset, transfer_syntax: UID, value_offset: int, size: int
) -> PixelLayout | None:
    scanned = _scan_items(fp, size)
    if scanned is None:
        return None
    bot, fragments = scanned
    number_of_frames = _number_of_frames(ds)
    groups = _frames_from_extended_offsets(ds, fragments, number_of_frames)
    if groups is None and bot.length:
        fp.seek(bot.offset)
        table = fp.read(bot.length)
        if len(table) % 4:
            return None
        offsets = struct.unpack(f"<{len(table) // 4}L", table)
        groups = _frames_from_offsets(offsets, fragments, number_of_frames)
    if groups is None and "ExtendedOffsetTable" not in ds and not bot.length:
        groups = _frames_without_table(fp, transfer_syntax, fragments, number_of_frames)
    if groups is None:
        return None
    return PixelLayout(str(transfer_syntax), True, number_of_frames, groups)


def _frames_from_extended_offsets(
    ds: Dataset, fragments: list[tuple[int, FrameRange]], number_of_frames: int
) -> tuple[tuple[FrameRange, ...], ...] | None:
    """Extended Offset Table (7FE0,0001), PS3.3 §C.7.6.3.1.8: one fragment per frame."""
    if "ExtendedOffsetTable" not in ds or not ds["ExtendedOffsetTable"].value:
        return None
    raw = bytes(ds["ExtendedOffsetTable"].value)
    if len(raw) % 8:
        return None
    offsets = struct.unpack(f"<{len(raw) // 8}Q", raw)
    groups = _frames_from_offsets(offsets, fragments, number_of_frames)
    lengths_element = ds.get_item(0x7FE00002)
    if groups is None or lengths_element is None:
        return groups
    lengths_raw = bytes(ds["ExtendedOffsetTableLengths"].value or b"")
    if len(lengths_raw) != 8 * number_of_frames:
        return None
    lengths = struct.unpack(f"<{number_of_frames}Q", lengths_raw)
    # Each frame is one fragment; its length excludes the fragment's trailing
    # padding byte (PS3.3 §C.7.6.3.1.9).
    if any(
        len(group) != 1 or group[0].length < n for group, n in zip(groups, lengths, strict=True)
    ):
        return None
    return tuple(
        (FrameRange(group[0].offset, n),) for group, n in zip(groups, lengths, strict=True)
    )


def _frames_from_offsets(
    offsets: Sequence[int], fragments: list[tuple[int, FrameRange]], number_of_frames: int
) -> tuple[tuple[FrameRange, ...], ...] | None:
    """Group fragments by frame start offsets (Basic Offset Table semantics, PS3.5 §A.4)."""
    if len(offsets) != number_of_frames or not offsets or offsets[0] != 0:
        return None
    if any(b <= a for a, b in itertools.pairwise(offsets)):
        return None
    index_of = {relative: i for i, (relative, _) in enumerate(fragments)}
    starts = [index_of.get(offset) for offset in offsets]
    if any(start is None for start in starts):
        return None
    bounds = [int(start) for start in starts if start is not None] + [len(fragments)]
    return tuple(
        tuple(fragment for _, fragment in fragments[bounds[i] : bounds[i + 1]])
        for i in range(number_of_frames)
    )


def _frames_without_table(
    fp: BinaryIO,
    transfer_syntax: UID,
    fragments: list[tuple[int, FrameRange]],
    number_of_frames: int,
) -> tuple[tuple[FrameRange, ...], ...] | None:
    ranges = [fragment for _, fragment in fragments]
    if number_of_frames == 1:
        return (tuple(ranges),)
    if len(ranges) == number_of_frames:
        return tuple((fragment,) for fragment in ranges)
    if len(ranges) < number_of_frames or not str(transfer_syntax).startswith(
        _MARKED_FRAME_PREFIXES
    ):
        return None
    starts: list[int] = []
    for i, fragment in enumerate(ranges):
        fp.seek(fragment.offset)
        head = fp.read(12)
        if any(head.startswith(marker) for marker in _FRAME_START_MARKERS):
            starts.append(i)
    if len(starts) != number_of_frames or starts[0] != 0:
        return None
    bounds = [*starts, len(ranges)]
    return tuple(tuple(ranges[bounds[i] : bounds[i + 1]]) for i in range(number_of_frames))
