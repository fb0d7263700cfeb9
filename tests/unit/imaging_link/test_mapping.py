"""Archive DICOM JSON → ImagingStudy / Endpoint (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from vesalius.imaging_link.mapping import (
    date_time,
    endpoint,
    imaging_study,
    resource_id,
)


def _v(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


def _instance(series: str, sop: str, number: int, **extra: Any) -> dict[str, Any]:
    attrs = {
        "0020000D": _v("UI", "1.2.3"), "0020000E": _v("UI", series), "00080018": _v("UI", sop),
        "00080016": _v("UI", "1.2.840.10008.5.1.4.1.1.4"), "00200013": _v("IS", number),
        "00080060": _v("CS", "MR"), "00200011": _v("IS", 7), "0008103E": _v("LO", "T1 AX"),
        "00080020": _v("DA", "20250315"), "00080030": _v("TM", "093005.123"),
        "00080201": _v("SH", "-0500"), "00080050": _v("SH", "ACC9"),
        "00081030": _v("LO", "MR KNEE"), "00180015": _v("CS", "KNEE"),
        "00200060": _v("CS", "L"), "00080021": _v("DA", "20250315"),
        "00080031": _v("TM", "0931"),
    }
    attrs.update(extra)
    return attrs


def test_date_time_with_and_without_offset() -> None:
    assert date_time("20250315", "093005.123456", "+0100") == "2025-03-15T09:30:05.123+01:00"
    assert date_time("20250315", "0930", "-0500") == "2025-03-15T09:30:00-05:00"
    assert date_time("20250315", "", "") == "2025-03-15"
    assert date_time("2025", "1200", "") is None
    local = date_time("20250315", "12", "")
    assert local is not None
    expected = dt.datetime(2025, 3, 15, 12).astimezone().isoformat()[-6:]
    assert local == f"2025-03-15T12:00:00{expected}"


def test_resource_id_is_the_uid_or_a_stable_digest() -> None:
    assert resource_id("1.2.840.113619.2.55") == "1.2.840.113619.2.55"
    odd = resource_id("1.2.3 ")
    assert odd.startswith("uid-") and odd == resource_id("1.2.3 ") and len(odd) <= 64


def test_imaging_study_from_instances() -> None:
    requested = {"vr": "SQ", "Value": [{"00080100": _v("SH", "RPID5"),
                                        "00080102": _v("SH", "LN"),
                                        "00080104": _v("LO", "MR Knee")}]}
    instances = [_instance("1.2.3.1", "1.2.3.1.2", 2, **{"00321064": requested}),
                 _instance("1.2.3.1", "1.2.3.1.1", 1, **{"00321064": requested})]
    resource = imaging_study(instances, subject="Patient/p1", endpoint_id="e1",
                             based_on=["ServiceRequest/s1"])
    assert resource["id"] == "1.2.3"
    assert resource["basedOn"] == [{"reference": "ServiceRequest/s1"}]
    assert resource["started"] == "2025-03-15T09:30:05.123-05:00"
    assert resource["procedureCode"] == [{"coding": [
        {"system": "http://loinc.org", "code": "RPID5", "display": "MR Knee"}],
        "text": "MR Knee"}]
    (series,) = resource["series"]
    assert series["number"] == 7
    assert series["description"] == "T1 AX"
    assert series["bodySite"] == {"system": "http://snomed.info/sct", "code": "72696002",
                                  "display": "Knee"}
    assert series["laterality"] == {"system": "http://snomed.info/sct", "code": "7771000",
                                    "display": "Left"}
    assert series["started"] == "2025-03-15T09:31:00-05:00"
    assert [i["uid"] for i in series["instance"]] == ["1.2.3.1.1", "1.2.3.1.2"]
    assert resource["numberOfSeries"] == 1 and resource["numberOfInstances"] == 2


def test_unknown_body_part_is_text_and_missing_modality_is_ot() -> None:
    attrs = _instance("1.2.3.2", "1.2.3.2.1", 1, **{"00180015": _v("CS", "ELBOWISH"),
                                                    "00080060": {"vr": "CS"}})
    (series,) = imaging_study([attrs], subject="Patient/p", endpoint_id="e")["series"]
    assert series["bodySite"] == {"display": "ELBOWISH"}
    assert series["modality"]["code"] == "OT"


def test_endpoint_address() -> None:
    assert endpoint("https://x.example/v/")["address"] == "https://x.example/v/dicom-web"
