"""C-FIND / C-MOVE / C-GET identifiers ⇄ archive search parameters (PS3.4 §C.4)."""

from __future__ import annotations

from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from vesalius.core.errors import InvalidInput
from vesalius.dicom.attributes import Level

LEVELS = {"PATIENT": Level.PATIENT, "STUDY": Level.STUDY, "SERIES": Level.SERIES,
          "IMAGE": Level.IMAGE}
_SKIP = {"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle", "TimezoneOffsetFromUTC"}


def level_of(identifier: Dataset) -> Level:
    text = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if text not in LEVELS:
        raise InvalidInput("QueryRetrieveLevel is missing or invalid")
    return LEVELS[text]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value)


def query_keys(identifier: Dataset) -> tuple[list[tuple[str, str]], list[int]]:
    """(matching params as keyword/value pairs, every requested tag in order).

    Sequence attributes are returned empty (sequence matching is not supported,
    as the conformance statement says); empty values are universal matches that
    only ask for the attribute to be returned.
    """
    params: list[tuple[str, str]] = []
    tags: list[int] = []
    for elem in identifier:
        if elem.keyword in _SKIP or elem.tag.group in (0x0000, 0x0002):
            continue
        tags.append(int(elem.tag))
        if elem.VR == "SQ" or not elem.keyword:
            continue
        value = _text(elem.value).strip()
        if value:
            params.append((elem.keyword, value))
    return params, tags


def response(match: dict[str, Any], tags: list[int], level: Level, ae_title: str) -> Dataset:
    """A C-FIND response identifier with exactly the requested attributes."""
    wanted: dict[str, Any] = {}
    for tag in tags:
        key = f"{tag:08X}"
        element = match.get(key)
        if element is not None and "BulkDataURI" not in element:
            wanted[key] = element
    ds = Dataset.from_json(wanted)
    for tag in tags:
        if tag not in ds:
            ds.add_new(tag, _vr_for(tag), None)
    ds.QueryRetrieveLevel = level.value
    ds.RetrieveAETitle = ae_title
    ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def _vr_for(tag: int) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"
