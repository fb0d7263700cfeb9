"""Reading an incoming Part 10 file into what the index needs (tolerant reading)."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from vesalius.archive.index.records import (
    IndexEntry,
    InstanceRecord,
    PatientRecord,
    SeriesRecord,
    StudyRecord,
)
from vesalius.core.errors import InvalidInput, MissingAttribute
from vesalius.core.uids import is_tolerable_uid
from vesalius.dicom.attributes import Level, entity_tags
from vesalius.dicom.json_model import JsonDict, dataset_metadata, dumps, int_value
from vesalius.dicom.json_model import string_value as _string_value
from vesalius.dicom.matching import normalize_date, normalize_time
from vesalius.dicom.pixels import layout_to_json, pixel_layout

_REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


_PATIENT_TAGS = entity_tags(Level.PATIENT)
_STUDY_TAGS = entity_tags(Level.STUDY)
_SERIES_TAGS = entity_tags(Level.SERIES)


def ensure_part10(path: Path) -> bool:
    """Give a data set that starts with its File Meta group the Part 10 preamble.

    Some clients (e.g. dicomweb-client storing an in-memory data set) send the file
    meta information without the 128-byte preamble and ``DICM`` prefix (PS3.10
    §7.1). Tolerant reading: the file is rewritten in place with the preamble; the
    data set itself is unchanged. Returns True when it rewrote the file.
    """
    with path.open("rb") as handle:
        head = handle.read(132)
    if head[128:132] == b"DICM" or head[:2] != b"\x02\x00":
        return False
    tmp = path.with_name(path.name + ".p10")
    with path.open("rb") as src, tmp.open("wb") as out:
        out.write(b"\x00" * 128 + b"DICM")
        while chunk := src.read(1 << 20):
            out.write(chunk)
    tmp.replace(path)
    return True


def read_dataset(path: Path) -> Dataset:
    """Parse a Part 10 file lazily (large values are read only when needed).

    Raises :class:`InvalidInput` with a reason for anything that is not a
    readable DICOM file, including truncated ones.
    """
    size = path.stat().st_size
    if size < 132:
        raise InvalidInput("not a DICOM Part 10 file (too short)")
    try:
        ds = pydicom.dcmread(path, defer_size=2048)
    except InvalidDicomError as exc:
        raise InvalidInput("not a DICOM Part 10 file (no DICM prefix or file meta)") from exc
    except Exception as exc:
        raise InvalidInput(f"unreadable DICOM data: {type(exc).__name__}") from exc
    if "TransferSyntaxUID" not in ds.file_meta:
        raise InvalidInput("file meta information lacks TransferSyntaxUID")
    if ds.file_meta.TransferSyntaxUID.is_deflated:
        # Offsets refer to the inflated stream; pydicom already read it to the end.
        return ds
    try:
        for tag in list(ds.keys()):
            raw = ds.get_item(tag, keep_deferred=True)
            if isinstance(raw, RawDataElement) and raw.length != 0xFFFFFFFF and (
                raw.value_tell + raw.length > size
            ):
                raise InvalidInput("truncated DICOM file: a value extends past the end")
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"unreadable DICOM data: {type(exc).__name__}") from exc
    return ds


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:
        return ""
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0] if len(value) else ""
    return str(value).strip()


def string_value(metadata: JsonDict, tag: int) -> str:
    """Text of an attribute for an index column: NUL removed (PostgreSQL rejects it)."""
    return _string_value(metadata, tag).replace("\x00", "")


def _subset(metadata: JsonDict, tags: tuple[int, ...]) -> str:
    return dumps({f"{t:08X}": metadata[f"{t:08X}"] for t in tags if f"{t:08X}" in metadata})


def index_entry(
    ds: Dataset,
    path: Path,
    *,
    blob_key: str,
    sha256: str,
    size: int,
    extra_tags: dict[int, Level],
) -> IndexEntry:
    """Everything the index records about one instance (validated identifiers)."""
    uids: dict[str, str] = {}
    for keyword in _REQUIRED_UIDS:
        try:
            multiple = ds[keyword].VM > 1 if keyword in ds else False
        except Exception:
            multiple = False
        if multiple:
            raise InvalidInput(f"{keyword} is not a valid UID (more than one value)")
        value = _text(ds, keyword)
        if not value:
            raise MissingAttribute(f"required attribute {keyword} is missing or empty")
        if not is_tolerable_uid(value):
            raise InvalidInput(f"{keyword} is not a valid UID")
        uids[keyword] = value
    study_uid, series_uid, sop_uid = (uids["StudyInstanceUID"], uids["SeriesInstanceUID"],
                                      uids["SOPInstanceUID"])
    metadata = dataset_metadata(ds, study_uid, series_uid, sop_uid)
    layout = pixel_layout(path, ds) if "PixelData" in ds else None
    transfer_syntax = str(ds.file_meta.TransferSyntaxUID)

    patient = PatientRecord(
        patient_id=string_value(metadata, 0x00100020)[:64],
        issuer=string_value(metadata, 0x00100021)[:64],
        patient_name=string_value(metadata, 0x00100010)[:324],
        birth_date=normalize_date(string_value(metadata, 0x00100030))[:16],
        sex=string_value(metadata, 0x00100040)[:16],
        attrs=_subset(metadata, _PATIENT_TAGS),
    )
    study = StudyRecord(
        study_uid=study_uid,
        study_date=normalize_date(string_value(metadata, 0x00080020))[:16],
        study_time=normalize_time(string_value(metadata, 0x00080030))[:32],
        accession_number=string_value(metadata, 0x00080050)[:64],
        referring_physician_name=string_value(metadata, 0x00080090)[:324],
        study_id=string_value(metadata, 0x00200010)[:32],
        study_description=string_value(metadata, 0x00081030)[:256],
        attrs=_subset(metadata, _STUDY_TAGS),
    )
    series = SeriesRecord(
        series_uid=series_uid,
        modality=string_value(metadata, 0x00080060)[:16],
        series_number=int_value(metadata, 0x00200011),
        series_description=string_value(metadata, 0x0008103E)[:256],
        pps_start_date=normalize_date(string_value(metadata, 0x00400244))[:16],
        pps_start_time=normalize_time(string_value(metadata, 0x00400245))[:32],
        body_part=string_value(metadata, 0x00180015)[:64],
        attrs=_subset(metadata, _SERIES_TAGS),
    )
    frames = int_value(metadata, 0x00280008)
    instance = InstanceRecord(
        sop_uid=sop_uid,
        sop_class_uid=uids["SOPClassUID"],
        instance_number=int_value(metadata, 0x00200013),
        transfer_syntax_uid=transfer_syntax,
        rows=int_value(metadata, 0x00280010),
        columns=int_value(metadata, 0x00280011),
        bits_allocated=int_value(metadata, 0x00280100),
        number_of_frames=frames if frames is not None else (1 if "PixelData" in ds else None),
        blob_key=blob_key,
        sha256=sha256,
        size=size,
        metadata_json=dumps(metadata),
        pixel_layout=None if layout is None else layout_to_json(layout),
    )
    extra: dict[str, list[tuple[str, str]]] = {}
    for tag, level in extra_tags.items():
        value = string_value(metadata, tag)
        if value:
            extra.setdefault(level.value, []).append((f"{tag:08X}", value))
    return IndexEntry(patient, study, series, instance, extra)
