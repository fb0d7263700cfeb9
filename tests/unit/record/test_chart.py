"""Chart grouping: sections, newest first, imaging timeline with reports and photographs."""

from __future__ import annotations

from typing import Any

from vesalius.record.chart import build_chart

P = {"reference": "Patient/p1"}


def obs(id: str, category: str, when: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": id, "status": "final", "subject": P,
            "category": [{"coding": [{"code": category}]}], "effectiveDateTime": when,
            "code": {"text": id}}


def test_sections_timeline_and_referenced() -> None:
    resources = [
        {"resourceType": "Patient", "id": "p1", "generalPractitioner":
         [{"reference": "Practitioner/gp"}]},
        {"resourceType": "Practitioner", "id": "gp"},
        obs("hb-2020", "laboratory", "2020-01-01"), obs("hb-2023", "laboratory", "2023-01-01"),
        obs("bp", "vital-signs", "2022-05-01"),
        {"resourceType": "AllergyIntolerance", "id": "pen", "patient": P},
        {"resourceType": "Condition", "id": "htn", "subject": P, "onsetDateTime": "2019-03-01"},
        {"resourceType": "ImagingStudy", "id": "1.2.3", "subject": P,
         "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
         "started": "2024-02-01T10:00:00Z", "modality": [{"code": "CT"}],
         "basedOn": [{"reference": "ServiceRequest/sr"}], "numberOfSeries": 2,
         "numberOfInstances": 200, "description": "CT head"},
        {"resourceType": "ImagingStudy", "id": "1.2.4", "subject": P,
         "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.4"}],
         "started": "2021-06-01T10:00:00Z", "modality": [{"code": "CT"}]},
        {"resourceType": "DiagnosticReport", "id": "rep", "subject": P, "status": "final",
         "basedOn": [{"reference": "ServiceRequest/sr"}], "conclusion": "No bleed."},
        {"resourceType": "Media", "id": "photo", "subject": P,
         "createdDateTime": "2023-07-01", "content": {"contentType": "image/png",
                                                      "data": "iVBORw0KGgo="}},
    ]
    chart = build_chart("p1", resources, dicomweb="http://h/dicom-web", truncated=False)
    assert chart.patient["id"] == "p1"
    assert [o["id"] for o in chart.sections["labs"]] == ["hb-2023", "hb-2020"]
    assert [o["id"] for o in chart.sections["vitals"]] == ["bp"]
    assert chart.sections["allergies"][0]["id"] == "pen"
    assert list(chart.referenced) == ["Practitioner/gp"]
    assert [(e["kind"], e["id"]) for e in chart.timeline] == [
        ("imaging-study", "1.2.3"), ("photo", "photo"), ("imaging-study", "1.2.4")]
    newest = chart.timeline[0]
    assert newest["thumbnail"] == "http://h/dicom-web/studies/1.2.3/thumbnail"
    assert newest["report"] == {"id": "rep", "status": "final", "conclusion": "No bleed."}
    assert chart.timeline[1]["thumbnail"].startswith("data:image/png;base64,")
    assert chart.timeline[2]["report"] is None
