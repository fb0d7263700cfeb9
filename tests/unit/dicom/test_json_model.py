"""DICOM JSON metadata as computed at ingest."""

from __future__ import annotations

import io

import pydicom

from data_factory import make_instance, to_bytes
from vesalius.dicom.json_model import BULK_BASE_MARKER, dataset_metadata


def _parsed(ds: pydicom.Dataset) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(to_bytes(ds)), defer_size=2048)


def test_repeated_elements_convert_identically_and_distinct_ones_stay_distinct() -> None:
    first = make_instance(patient_name="Ünal^Ada", description="SAME", seed=1)
    second = make_instance(patient_name="Other^Bob", description="SAME", seed=2,
                           study_uid=first.StudyInstanceUID)
    a = dataset_metadata(_parsed(first), "1", "2", "3")
    b = dataset_metadata(_parsed(second), "1", "2", "4")
    assert a["00081030"] == b["00081030"] == {"vr": "LO", "Value": ["SAME"]}
    assert a["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Ünal^Ada"}]}
    assert b["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Other^Bob"}]}
    for ds, meta in ((first, a), (second, b)):
        expected = {f"{int(e.tag):08X}": e.to_json_dict(None, 1 << 62) for e in ds
                    if e.tag != 0x7FE00010}
        assert {k: v for k, v in meta.items() if k in expected} == expected


def test_pixel_data_is_a_bulk_reference_with_the_base_marker() -> None:
    meta = dataset_metadata(_parsed(make_instance()), "1.2", "1.3", "1.4")
    assert meta["7FE00010"]["BulkDataURI"] == (
        f"{BULK_BASE_MARKER}studies/1.2/series/1.3/instances/1.4/bulkdata/7FE00010")
    assert meta["00083002"] == {"vr": "UI", "Value": ["1.2.840.10008.1.2.1"]}
