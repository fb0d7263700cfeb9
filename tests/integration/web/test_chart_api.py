"""``GET /api/patients/{id}/chart`` over real HTTP on the demo (SQLite and PostgreSQL): every
section, the imaging timeline with working thumbnails and reports, and a fixed number of SQL
statements however many studies and resources the chart holds (no N+1).
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydicom.uid import generate_uid
from sqlalchemy import event

from conftest import RunningServer
from data_factory import make_instance, write
from vesalius.cli.main import load_demo
from vesalius.demo.common import DEFAULT_PATIENT
from vesalius.dicom.patient_identity import identifier_system
from vesalius.node import Node

LOINC = "http://loinc.org"
#: (StudyDate, Modality) of each demo study, newest first.
DEMO_STUDIES = [("2026-11-01", "CT"), ("2026-10-20", "US"), ("2026-10-15", "DX"),
                ("2025-11-01", "CT")]


@pytest.fixture
def demo(node: Node) -> Iterator[RunningServer]:
    """The demo loaded (record, then studies, then the link flushed) before serving."""
    load_demo(node, slices=4)
    with RunningServer(node) as running:
        yield running


def _demo_patient(server: RunningServer) -> str:
    token = f"{identifier_system(DEFAULT_PATIENT.issuer)}|{DEFAULT_PATIENT.patient_id}"
    bundle = server.http.get(f"{server.fhir}/Patient", params={"identifier": token},
                             timeout=30).json()
    (entry,) = bundle["entry"]
    return str(entry["resource"]["id"])


def _chart(server: RunningServer, patient_id: str) -> dict[str, Any]:
    response = server.http.get(f"{server.base}/api/patients/{patient_id}/chart", timeout=60)
    assert response.status_code == 200, response.text[:500]
    body: dict[str, Any] = response.json()
    return body


def _codes(resource: dict[str, Any], key: str = "code") -> set[tuple[str, str]]:
    return {(c.get("system", ""), c.get("code", ""))
            for c in (resource.get(key) or {}).get("coding", [])}


def test_demo_chart_has_every_section_and_the_imaging_timeline(demo: RunningServer) -> None:
    patient_id = _demo_patient(demo)
    chart = _chart(demo, patient_id)
    assert chart["patient"]["id"] == patient_id
    assert chart["truncated"] is False
    sections = chart["sections"]

    (allergy,) = sections["allergies"]
    assert ("http://snomed.info/sct", "764146007") in _codes(allergy)
    for name in ("problems", "medications", "immunizations", "encounters", "labs", "vitals",
                 "reports", "orders"):
        assert sections.get(name), f"the {name} section is empty"
    for name, key in (("labs", "effectiveDateTime"), ("vitals", "effectiveDateTime"),
                      ("encounters", "period")):
        dates = [r[key]["start"] if key == "period" else r[key] for r in sections[name]]
        assert dates == sorted(dates, reverse=True), f"{name} is not newest first"
    lab_points = Counter(code for o in sections["labs"] for code in _codes(o)
                         if code[0] == LOINC)
    assert len(lab_points) >= 3
    assert min(lab_points.values()) >= 8, lab_points
    vitals = {code for o in sections["vitals"] for code in _codes(o)}
    assert {(LOINC, "85354-9"), (LOINC, "8867-4"), (LOINC, "29463-7")} <= vitals

    timeline = chart["timeline"]
    dates = [entry["date"] or "" for entry in timeline]
    assert dates == sorted(dates, reverse=True), "the timeline is not newest first"
    studies = [e for e in timeline if e["kind"] == "imaging-study"]
    assert [(e["date"][:10], e["modalities"][0]) for e in studies] == DEMO_STUDIES
    for entry in studies:
        assert entry["thumbnail"].startswith(f"{demo.dicomweb}/studies/")
        thumbnail = demo.http.get(entry["thumbnail"], timeout=60)
        assert thumbnail.status_code == 200, (entry["thumbnail"], thumbnail.text[:200])
        assert thumbnail.headers["content-type"].startswith("image/")
        Image.open(io.BytesIO(thumbnail.content)).verify()
        assert entry["report"] is not None and entry["report"]["status"] == "final"
    current_ct = studies[0]
    assert current_ct["report"]["conclusion"].startswith("No intracranial haemorrhage")
    report = demo.http.get(f"{demo.fhir}/DiagnosticReport/{current_ct['report']['id']}",
                           timeout=30).json()
    study = demo.http.get(f"{demo.fhir}/ImagingStudy/{current_ct['id']}", timeout=30).json()
    # The report reaches the study through the order both are based on.
    assert {b["reference"] for b in report["basedOn"]} & \
        {b["reference"] for b in study["basedOn"]}

    (photo,) = [e for e in timeline if e["kind"] == "photo"
                and e["contentType"] == "image/png"]
    header, _, data = photo["thumbnail"].partition(",")
    assert header == "data:image/png;base64"
    Image.open(io.BytesIO(base64.b64decode(data))).verify()


def test_unknown_patient_is_404_operation_outcome(server: RunningServer) -> None:
    response = server.http.get(f"{server.base}/api/patients/no-such-patient/chart", timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"


def test_chart_statements_do_not_grow_with_studies_or_resources(
        node: Node, tmp_path: Path) -> None:
    mrn = f"MRN-{generate_uid()[-8:]}"
    patient = node.record.create({
        "resourceType": "Patient", "active": True,
        "identifier": [{"system": identifier_system(""), "value": mrn}]}).id

    def store_study(day: int) -> None:
        ds = make_instance(patient_id=mrn, study_date=f"202601{day:02d}")
        node.archive.store_file(write(ds, tmp_path))

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    store_study(1)
    node.link.flush()
    with RunningServer(node) as server:
        event.listen(node.record.reader, "before_cursor_execute", count)
        try:
            one = _chart(server, patient)
            with_one = len(statements)

            for day in (2, 3, 4):
                store_study(day)
            for n in range(10):
                node.record.create({
                    "resourceType": "Observation", "status": "final",
                    "category": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory"}]}],
                    "code": {"coding": [{"system": LOINC, "code": "2345-7"}]},
                    "subject": {"reference": f"Patient/{patient}"},
                    "effectiveDateTime": f"2025-01-{n + 1:02d}",
                    "valueQuantity": {"value": 90 + n, "unit": "mg/dL"}})
            node.link.flush()
            statements.clear()
            four = _chart(server, patient)
            with_four = len(statements)
        finally:
            event.remove(node.record.reader, "before_cursor_execute", count)
    assert len([e for e in one["timeline"] if e["kind"] == "imaging-study"]) == 1
    assert len([e for e in four["timeline"] if e["kind"] == "imaging-study"]) == 4
    assert len(four["sections"]["labs"]) == 10
    assert with_four == with_one, statements
    assert with_one <= 5, statements
