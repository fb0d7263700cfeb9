"""The DICOM JSON model (PS3.18 Annex F) for what the archive indexes and serves.

Metadata is computed once at ingest and kept pre-serialized. Large binary
values become ``BulkDataURI`` references (PS3.18 §F.2.6); since the public
base URL is only known per request, stored URIs start with
:data:`BULK_BASE_MARKER`, which the edge replaces with its own base URL.
"""

from __future__ import annotations

import json
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

#: Placeholder for the DICOMweb base URL inside stored metadata.
BULK_BASE_MARKER = "vesalius-base:"

#: Values longer than this (bytes) of a binary VR are served as bulk data.
BULK_THRESHOLD = 1024

_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"})
_PIXEL_DATA = 0x7FE00010
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})

JsonDict = dict[str, Any]


def _raw_vr(ds: Dataset, tag: int) -> tuple[str | None, int | None]:
    """VR and length of an element without forcing its value to be read."""
    elem = ds.get_item(tag, keep_deferred=True)
    if isinstance(elem, RawDataElement):
        vr = elem.VR
        if vr is None:
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                vr = "UN"
        return vr, elem.length
    if isinstance(elem, DataElement):
        value = elem.value
        length = len(value) if isinstance(value, bytes | bytearray) else None
        return elem.VR, length
    return None, None


def instance_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    """The instance's resource path relative to the DICOMweb root."""
    return f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


def element_json(elem: DataElement) -> JsonDict:
    """One element in the DICOM JSON model; sequence items are inlined entirely."""
    return elem.to_json_dict(bulk_data_element_handler=None, bulk_data_threshold=1 << 62)


#: Converted elements by their encoded form. Most elements of an instance repeat
#: byte for byte across its series (patient, study, series, equipment, geometry
#: modules), and the same bytes in the same character set always give the same JSON.
_ELEMENT_CACHE: dict[tuple[Any, ...], JsonDict | None] = {}
_ELEMENT_CACHE_LIMIT = 50_000
_UNREPRESENTABLE = None
_MISSING = object()


def _cached_element_json(ds: Dataset, tag: int, charset: str) -> JsonDict | None:
    """``element_json`` of ``ds[tag]``, memoized on the element's raw encoding."""
    raw = ds.get_item(tag, keep_deferred=True)
    cacheable = (isinstance(raw, RawDataElement) and isinstance(raw.value, bytes)
                 and (raw.VR is not None or not tag >> 16 & 1))
    key: tuple[Any, ...] | None = None
    if cacheable:
        assert isinstance(raw, RawDataElement)
        key = (tag, raw.VR, raw.is_implicit_VR, raw.is_little_endian, charset, raw.value)
        cached = _ELEMENT_CACHE.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
    try:
        result: JsonDict | None = element_json(ds[tag])
    except Exception:  # tolerant reading: skip values that cannot be represented
        result = _UNREPRESENTABLE
    if key is not None:
        if len(_ELEMENT_CACHE) >= _ELEMENT_CACHE_LIMIT:
            _ELEMENT_CACHE.clear()
        _ELEMENT_CACHE[key] = result
    return result


def dataset_metadata(ds: Dataset, study_uid: str, series_uid: str, sop_uid: str) -> JsonDict:
    """Instance metadata in the DICOM JSON model with BulkDataURIs for large binaries.

    File meta information is not part of the metadata (PS3.18 §10.4.1.1.2
    returns the data set); the stored transfer syntax is added as
    ``AvailableTransferSyntaxUID`` (0008,3002) so clients know what to ask for.
    Elements that cannot be represented (invalid values in real-world files)
    are left out rather than failing the whole instance.
    """
    base = f"{BULK_BASE_MARKER}{instance_path(study_uid, series_uid, sop_uid)}"
    charset_raw = ds.get_item(0x00080005, keep_deferred=True)
    charset = repr(getattr(charset_raw, "value", None))
    out: JsonDict = {}
    for tag in list(ds.keys()):  # keys() does not read deferred values
        tag_int = int(tag)
        vr, length = _raw_vr(ds, tag_int)
        key = f"{tag_int:08X}"
        large = length is None or length > BULK_THRESHOLD
        if tag_int in _PIXEL_TAGS or (vr in _BINARY_VRS and large):
            vr_out = vr if vr in ("OB", "OD", "OF", "OL", "OV", "OW", "UN") else "OW"
            syntax = ds.file_meta.get("TransferSyntaxUID")
            if tag_int == _PIXEL_DATA and syntax is not None and syntax.is_compressed:
                vr_out = "OB"
            out[key] = {"vr": vr_out, "BulkDataURI": f"{base}/bulkdata/{key}"}
            continue
        converted = _cached_element_json(ds, tag_int, charset)
        if converted is not None:
            out[key] = converted
    transfer_syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if transfer_syntax:
        out["00083002"] = {"vr": "UI", "Value": [str(transfer_syntax)]}
    return out


def string_value(metadata: JsonDict, tag: int) -> str:
    """First value of a string-valued element as text ('' when absent/empty)."""
    elem = metadata.get(f"{tag:08X}")
    if not elem or not elem.get("Value"):
        return ""
    first = elem["Value"][0]
    if isinstance(first, dict):
        return str(first.get("Alphabetic", ""))
    return "" if first is None else str(first)


def int_value(metadata: JsonDict, tag: int) -> int | None:
    """Integer value for an index column; None when absent or outside 32-bit range."""
    text = string_value(metadata, tag)
    try:
        value = int(float(text)) if text else None
    except (ValueError, OverflowError):
        return None
    if value is None or not -(2**31) <= value < 2**31:
        return None
    return value


def make_element(vr: str, values: list[Any]) -> JsonDict:
    """Build a JSON element; empty or all-empty values give a present-but-empty element."""
    cleaned = [v for v in values if v not in (None, "")]
    if not cleaned:
        return {"vr": vr}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": str(v)} for v in cleaned]}
    return {"vr": vr, "Value": cleaned}


def dumps(value: Any) -> str:
    """Compact JSON as stored and served."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
