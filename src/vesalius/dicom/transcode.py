"""Transfer syntax changes and the media types of retrieved frames and bulk data.

* :func:`to_explicit_vr_little_endian` produces the uncompressed, explicit VR
  little endian encoding every DICOMweb origin server must be able to return
  (PS3.18 §8.7.3.5, PS3.5 §A.2).
* :func:`dataset_to_bytes` writes a DICOM Part 10 file (PS3.10 §7).
* :data:`MEDIA_TYPE_BY_TRANSFER_SYNTAX` and
  :func:`transfer_syntax_for_media_type` implement the pairing of media types
  and transfer syntaxes for pixel data in frame and bulk data retrieval
  (PS3.18 §8.7.3.3.2, Table 8.7.3-5 "Transfer Syntax UIDs and Media Types for
  single and multi-frame pixel data").
"""

from __future__ import annotations

import copy
from io import BytesIO
from typing import Any

import numpy as np
from pydicom import dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import pack_bits
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
)

from vesalius.core.errors import InvalidInput, NotAcceptable
from vesalius.dicom.pixels import transfer_syntax_of

__all__ = [
    "DEFAULT_TRANSFER_SYNTAX_BY_MEDIA_TYPE",
    "MEDIA_TYPE_BY_TRANSFER_SYNTAX",
    "dataset_to_bytes",
    "to_explicit_vr_little_endian",
    "transfer_syntax_for_media_type",
]

#: Media type of a frame or bulk data item in each transfer syntax
#: (PS3.18 §8.7.3.3.2, Table 8.7.3-5; JPEG XL per Supplement 232).
MEDIA_TYPE_BY_TRANSFER_SYNTAX: dict[str, str] = {
    # Uncompressed (native) pixel data is served little endian (PS3.18 §8.7.3.3.2).
    "1.2.840.10008.1.2.1": "application/octet-stream",
    # JPEG: Baseline, Extended, Lossless (Process 14), Lossless SV1 (PS3.5 §A.4.1).
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    # JPEG-LS lossless and near-lossless (PS3.5 §A.4.3).
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    # JPEG 2000 Part 1 (PS3.5 §A.4.4).
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    # JPEG 2000 Part 2 multi-component (PS3.5 §A.4.4).
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    # High-Throughput JPEG 2000 (PS3.5 §A.4.11).
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    # JPEG XL (PS3.5 §A.4.12, Supplement 232).
    "1.2.840.10008.1.2.4.110": "image/jxl",
    "1.2.840.10008.1.2.4.111": "image/jxl",
    "1.2.840.10008.1.2.4.112": "image/jxl",
    # RLE Lossless (PS3.5 §A.4.2, Annex G).
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    # MPEG-2 (PS3.5 §A.4.5).
    "1.2.840.10008.1.2.4.100": "video/mpeg",
    "1.2.840.10008.1.2.4.101": "video/mpeg",
    # MPEG-4 AVC/H.264 and HEVC/H.265 (PS3.5 §A.4.6, §A.4.7).
    "1.2.840.10008.1.2.4.102": "video/mp4",
    "1.2.840.10008.1.2.4.103": "video/mp4",
    "1.2.840.10008.1.2.4.104": "video/mp4",
    "1.2.840.10008.1.2.4.105": "video/mp4",
    "1.2.840.10008.1.2.4.106": "video/mp4",
    "1.2.840.10008.1.2.4.107": "video/mp4",
    "1.2.840.10008.1.2.4.108": "video/mp4",
}

#: The transfer syntax used for a media type when the request names none
#: (the "default" rows of PS3.18 Table 8.7.3-5).
DEFAULT_TRANSFER_SYNTAX_BY_MEDIA_TYPE: dict[str, str] = {
    "application/octet-stream": "1.2.840.10008.1.2.1",
    "image/jpeg": "1.2.840.10008.1.2.4.70",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/jphc": "1.2.840.10008.1.2.4.201",
    "image/jxl": "1.2.840.10008.1.2.4.110",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
    "video/mpeg": "1.2.840.10008.1.2.4.100",
    "video/mp4": "1.2.840.10008.1.2.4.102",
}

# Byte width of the values swapped when leaving big endian (PS3.5 §7.3, §6.2).
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def transfer_syntax_for_media_type(media_type: str, transfer_syntax: str | None) -> str | None:
    """The transfer syntax to serve ``media_type`` in, or None when they don't pair.

    ``transfer_syntax`` is the value of the media type's ``transfer-syntax``
    parameter (PS3.18 §8.7.3.5.2); None (no parameter) and ``*`` (any) select
    the media type's default transfer syntax. Media type names are compared
    case-insensitively (RFC 6838 §4.2).
    """
    media_type = media_type.strip().lower()
    default = DEFAULT_TRANSFER_SYNTAX_BY_MEDIA_TYPE.get(media_type)
    if default is None:
        return None
    if transfer_syntax is None or transfer_syntax.strip() in ("", "*"):
        return default
    uid = transfer_syntax.strip()
    return uid if MEDIA_TYPE_BY_TRANSFER_SYNTAX.get(uid) == media_type else None


def to_explicit_vr_little_endian(ds: Dataset) -> Dataset:
    """A copy of ``ds`` encoded in Explicit VR Little Endian (PS3.5 §A.2).

    Encapsulated pixel data is decompressed with pydicom's decoders; YCbCr
    colour is converted to RGB and Photometric Interpretation updated
    accordingly (PS3.5 §8.2.1). The SOP Instance UID is kept. Big-endian data
    sets have their OW/OF/OL/OD/OV values byte swapped (PS3.5 §7.3). The File
    Meta Information's Transfer Syntax UID is set (PS3.10 §7.1).

    Raises NotAcceptable when the pixel data cannot be decoded.
    """
    source = _transfer_syntax(ds)
    out = copy.deepcopy(ds)
    if source.is_encapsulated and "PixelData" in out:
        try:
            out.decompress(generate_instance_uid=False, as_rgb=True)
        except Exception as exc:  # decoder plugins raise anything from ValueError upwards
            raise NotAcceptable(
                f"pixel data in {source.name} ({source}) cannot be decoded: {exc}"
            ) from exc
    elif not source.is_little_endian:
        _big_to_little_endian(out)
    if not isinstance(getattr(out, "file_meta", None), FileMetaDataset):
        out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return out


def dataset_to_bytes(ds: Dataset) -> bytes:
    """Encode ``ds`` as a DICOM Part 10 file: preamble, ``DICM``, File Meta, data set.

    PS3.10 §7.1. The data set is encoded in the transfer syntax named by its
    File Meta Information (Explicit VR Little Endian when there is none).
    Raises InvalidInput when it cannot be written as a conformant file.
    """
    out = ds
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        out = copy.copy(ds)
        out.file_meta = copy.deepcopy(meta) if meta is not None else FileMetaDataset()
        out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "ImplementationClassUID" not in out.file_meta:
        out = copy.copy(out)
        out.file_meta = copy.deepcopy(out.file_meta)
        out.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    # Elements read in the other VR form than the transfer syntax says stay
    # raw without a VR until accessed; accessing them resolves the VR.
    for _element in out.iterall():
        pass
    buffer = BytesIO()
    try:
        dcmwrite(buffer, out, enforce_file_format=True)
    except (ValueError, AttributeError, TypeError) as exc:
        raise InvalidInput(f"data set cannot be written as a DICOM file: {exc}") from exc
    return buffer.getvalue()


def _transfer_syntax(ds: Dataset) -> UID:
    return transfer_syntax_of(ds) or ExplicitVRLittleEndian


def _big_to_little_endian(ds: Dataset) -> None:
    """Byte swap the values pydicom keeps as raw bytes (PS3.5 §7.3), in place.

    Pixel data goes through the decoder, which knows how PS3.5 §8.1.1 packs
    samples narrower than the 16-bit OW word.
    """
    if "PixelData" in ds:
        _pixel_data_to_little_endian(ds)
    _swap_elements(ds, top_level=True)


def _swap_elements(ds: Dataset, *, top_level: bool) -> None:
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                _swap_elements(item, top_level=False)
            continue
        if top_level and element.keyword == "PixelData":
            continue  # already converted from decoded samples
        width = _SWAP_WIDTH.get(str(element.VR))
        value = element.value
        if width and isinstance(value, bytes | bytearray) and len(value) % width == 0:
            swapped = np.frombuffer(bytes(value), dtype=f">u{width}").astype(f"<u{width}")
            element.value = swapped.tobytes()


def _pixel_data_to_little_endian(ds: Dataset) -> None:
    try:
        options: dict[str, Any] = {"as_rgb": False}
        arr, _meta = get_decoder(ExplicitVRBigEndian).as_array(ds, **options)
    except Exception as exc:
        raise NotAcceptable(f"big endian pixel data cannot be read: {exc}") from exc
    bits_allocated = int(ds.get("BitsAllocated", 8) or 8)
    if bits_allocated == 1:
        data = pack_bits(arr, pad=True)
    else:
        data = _as_little_endian(arr, ds, bits_allocated).tobytes()
        if len(data) % 2:
            data += b"\0"
    vr = "OW" if bits_allocated > 8 else "OB"
    ds["PixelData"] = DataElement(0x7FE00010, vr, data)
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        ds.PlanarConfiguration = 0  # the decoder returns samples interleaved


def _as_little_endian(
    arr: np.ndarray[Any, Any], ds: Dataset, bits_allocated: int
) -> np.ndarray[Any, Any]:
    kind = "i" if int(ds.get("PixelRepresentation", 0) or 0) == 1 else "u"
    return np.ascontiguousarray(arr.astype(f"<{kind}{bits_allocated // 8}", copy=False))
