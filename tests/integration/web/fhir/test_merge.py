"""``POST /fhir/Patient/$merge`` and ``GET /api/imaging-link/problems`` over real HTTP, on SQLite
and PostgreSQL: the record and the image index move together, and bad requests change nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from conftest import RunningServer
from data_factory import make_instance, write
from vesalius.dicom.patient_identity import LOCAL_SYSTEM, identifier_system

MERGE = "Patient/$merge"


def _mrn() -> str:
    return f"MRN-{uuid.uuid4().hex[:8]}"


def _create(server: RunningServer, resource: dict[str, Any]) -> str:
    response = server.http.post(f"{server.fhir}/{resource['resourceType']}", json=resource,
                                timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _patient(server: RunningServer, *identifiers: dict[str, str]) -> str:
    patient: dict[str, Any] = {"resourceType": "Patient", "active": True,
                               "name": [{"family": "Merge", "given": ["Test"]}]}
    if identifiers:
        patient["identifier"] = list(identifiers)
    return _create(server, patient)


def _get(server: RunningServer, path: str, **params: str) -> dict[str, Any]:
    response = server.http.get(f"{server.fhir}/{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def _merge(server: RunningServer, *parameters: dict[str, Any]) -> httpx.Response:
    return server.http.post(f"{server.fhir}/{MERGE}", timeout=60,
                            json={"resourceType": "Parameters", "parameter": list(parameters)})


def _ref(name: str, patient_id: str) -> dict[str, Any]:
    return {"name": name, "valueReference": {"reference": f"Patient/{patient_id}"}}


def _out(parameters: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in parameters["parameter"] if p["name"] == name]


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _store_study(server: RunningServer, tmp_path: Path, patient_id: str, count: int = 2) -> str:
    study, series = generate_uid(), generate_uid()
    for n in range(count):
        ds = make_instance(patient_id=patient_id, study_uid=study, series_uid=series,
                           instance_number=n + 1, seed=n)
        server.node.archive.store_file(write(ds, tmp_path))
    server.node.link.flush()
    return study


def _imaging_study(server: RunningServer, study: str) -> dict[str, Any] | None:
    bundle = _get(server, "ImagingStudy", identifier=f"urn:dicom:uid|urn:oid:{study}")
    entries = bundle.get("entry", [])
    return entries[0]["resource"] if entries else None


def _subject_of(server: RunningServer, study: str) -> str | None:
    found = _imaging_study(server, study)
    return None if found is None else str(found["subject"]["reference"])


def _qido(server: RunningServer, **params: str) -> list[str]:
    response = server.http.get(f"{server.dicomweb}/studies", params=params, timeout=30)
    assert response.status_code in (200, 204), response.text
    return [] if response.status_code == 204 else [
        m["0020000D"]["Value"][0] for m in response.json()]


def test_merge_moves_chart_and_images_to_the_target(server: RunningServer,
                                                    tmp_path: Path) -> None:
    temporary = _mrn()
    source = _patient(server, {"system": LOCAL_SYSTEM, "value": temporary})
    target = _patient(server)
    study = _store_study(server, tmp_path, temporary)
    _wait_for(lambda: _subject_of(server, study) == f"Patient/{source}", "the ImagingStudy")
    observation = _create(server, {
        "resourceType": "Observation", "status": "final", "code": {"text": "weight"},
        "subject": {"reference": f"Patient/{source}"},
        "valueQuantity": {"value": 70, "unit": "kg"}})

    response = _merge(server, _ref("source-patient", source), _ref("target-patient", target))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    result = response.json()
    assert result["resourceType"] == "Parameters"
    (outcome,) = _out(result, "outcome")
    assert outcome["resource"]["issue"][0]["severity"] == "information"
    (merged,) = _out(result, "result")
    assert merged["resource"]["id"] == target
    assert {"other": {"reference": f"Patient/{source}"}, "type": "replaces"} \
        in merged["resource"]["link"]
    assert {"system": LOCAL_SYSTEM, "value": temporary, "use": "old"} \
        in merged["resource"]["identifier"]
    assert sorted(p["valueReference"]["reference"] for p in _out(result, "repointed")) == \
        sorted([f"ImagingStudy/{study}", f"Observation/{observation}"])
    assert [p["valueIdentifier"] for p in _out(result, "refiled-study")] == [
        {"system": "urn:dicom:uid", "value": f"urn:oid:{study}"}]
    (echoed,) = _out(result, "input")
    assert echoed["resource"]["resourceType"] == "Parameters"

    # The chart is the target's: FHIR search finds the Observation and the ImagingStudy there.
    assert _ids(_get(server, "Observation", subject=f"Patient/{target}")) == [observation]
    assert _ids(_get(server, "Observation", subject=f"Patient/{source}")) == []
    _wait_for(lambda: _subject_of(server, study) == f"Patient/{target}",
              "the ImagingStudy under the target")
    assert _ids(_get(server, "ImagingStudy", subject=f"Patient/{target}")) == [study]
    assert _ids(_get(server, "ImagingStudy", subject=f"Patient/{source}")) == []

    # The image index files the study under the target (its id is its PatientID here).
    assert _qido(server, PatientID=target) == [study]
    assert _qido(server, PatientID=temporary) == []
    instances = server.http.get(f"{server.dicomweb}/studies/{study}/instances", timeout=30)
    assert instances.status_code == 200 and len(instances.json()) == 2

    # The source stays, inactive and replaced; nothing is lost from either history.
    old = _get(server, f"Patient/{source}")
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": f"Patient/{target}"},
                            "type": "replaced-by"}]
    history = _get(server, f"Patient/{source}/_history")
    assert history["total"] == 2
    first = _get(server, f"Patient/{source}/_history/1")
    assert first["active"] is True and "link" not in first
    moved = _get(server, f"Observation/{observation}/_history/1")
    assert moved["subject"] == {"reference": f"Patient/{source}"}
    assert _get(server, f"Observation/{observation}/_history")["total"] == 2

    # Merging again is refused: the source already was merged.
    again = _merge(server, _ref("source-patient", source), _ref("target-patient", target))
    assert again.status_code == 400
    assert again.json()["resourceType"] == "OperationOutcome"


def test_preview_reports_and_writes_nothing(server: RunningServer, tmp_path: Path) -> None:
    temporary, mrn = _mrn(), _mrn()
    source = _patient(server, {"system": LOCAL_SYSTEM, "value": temporary})
    target = _patient(server, {"system": identifier_system("HOSP"), "value": mrn})
    study = _store_study(server, tmp_path, temporary)
    _wait_for(lambda: _subject_of(server, study) == f"Patient/{source}", "the ImagingStudy")
    observation = _create(server, {"resourceType": "Observation", "status": "final",
                                   "code": {"text": "note"},
                                   "subject": {"reference": f"Patient/{source}"}})
    before = {key: _get(server, f"{key}/_history")["total"]
              for key in (f"Patient/{source}", f"Patient/{target}",
                          f"Observation/{observation}", f"ImagingStudy/{study}")}

    response = _merge(server, _ref("source-patient", source), _ref("target-patient", target),
                      {"name": "preview", "valueBoolean": True})
    assert response.status_code == 200, response.text
    result = response.json()
    assert sorted(p["valueReference"]["reference"] for p in _out(result, "repointed")) == \
        sorted([f"ImagingStudy/{study}", f"Observation/{observation}"])
    assert [p["valueIdentifier"]["value"] for p in _out(result, "refiled-study")] == [
        f"urn:oid:{study}"]
    (merged,) = _out(result, "result")
    assert {"other": {"reference": f"Patient/{source}"}, "type": "replaces"} \
        in merged["resource"]["link"]
    assert "would be" in _out(result, "outcome")[0]["resource"]["issue"][0]["diagnostics"]

    after = {key: _get(server, f"{key}/_history")["total"] for key in before}
    assert after == before
    assert _get(server, f"Patient/{source}")["active"] is True
    assert _qido(server, PatientID=temporary) == [study]
    assert _qido(server, PatientID=mrn) == []


def test_patients_found_by_identifier(server: RunningServer, tmp_path: Path) -> None:
    temporary, mrn = _mrn(), _mrn()
    source = _patient(server, {"system": LOCAL_SYSTEM, "value": temporary})
    target = _patient(server, {"system": identifier_system("HOSP"), "value": mrn})
    study = _store_study(server, tmp_path, temporary)
    _wait_for(lambda: _subject_of(server, study) == f"Patient/{source}", "the ImagingStudy")

    response = _merge(
        server,
        {"name": "source-patient-identifier",
         "valueIdentifier": {"system": LOCAL_SYSTEM, "value": temporary}},
        {"name": "target-patient-identifier",
         "valueIdentifier": {"system": identifier_system("HOSP"), "value": mrn}})
    assert response.status_code == 200, response.text
    assert _out(response.json(), "result")[0]["resource"]["id"] == target
    assert _qido(server, PatientID=mrn, IssuerOfPatientID="HOSP") == [study]
    _wait_for(lambda: _subject_of(server, study) == f"Patient/{target}",
              "the ImagingStudy under the target")


def test_identifier_of_several_patients_is_412(server: RunningServer) -> None:
    shared = {"system": LOCAL_SYSTEM, "value": _mrn()}
    _patient(server, shared)
    _patient(server, shared)
    target = _patient(server)
    response = _merge(server, {"name": "source-patient-identifier", "valueIdentifier": shared},
                      _ref("target-patient", target))
    assert response.status_code == 412, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


BAD: list[tuple[str, Callable[[str, str], Any], int]] = [
    ("not-parameters", lambda s, t: {"resourceType": "Patient", "id": s}, 400),
    ("not-an-object", lambda s, t: [1, 2], 400),
    ("no-parameters", lambda s, t: {"resourceType": "Parameters"}, 400),
    ("missing-target", lambda s, t: {"resourceType": "Parameters",
                                     "parameter": [_ref("source-patient", s)]}, 400),
    ("missing-source", lambda s, t: {"resourceType": "Parameters",
                                     "parameter": [_ref("target-patient", t)]}, 400),
    ("same-patient", lambda s, t: {"resourceType": "Parameters", "parameter": [
        _ref("source-patient", s), _ref("target-patient", s)]}, 400),
    ("unknown-source", lambda s, t: {"resourceType": "Parameters", "parameter": [
        _ref("source-patient", "no-such-patient"), _ref("target-patient", t)]}, 404),
    ("unknown-target", lambda s, t: {"resourceType": "Parameters", "parameter": [
        _ref("source-patient", s), _ref("target-patient", "no-such-patient")]}, 404),
    ("unknown-identifier", lambda s, t: {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient-identifier",
         "valueIdentifier": {"system": "urn:x", "value": "none"}},
        _ref("target-patient", t)]}, 404),
    ("not-a-patient", lambda s, t: {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Observation/{s}"}},
        _ref("target-patient", t)]}, 400),
    ("unknown-parameter", lambda s, t: {"resourceType": "Parameters", "parameter": [
        _ref("source-patient", s), _ref("target-patient", t),
        {"name": "force", "valueBoolean": True}]}, 400),
    ("preview-not-boolean", lambda s, t: {"resourceType": "Parameters", "parameter": [
        _ref("source-patient", s), _ref("target-patient", t),
        {"name": "preview", "valueString": "yes"}]}, 400),
    ("delete-source", lambda s, t: {"resourceType": "Parameters", "parameter": [
        _ref("source-patient", s), _ref("target-patient", t),
        {"name": "delete-source", "valueBoolean": True}]}, 501),
    ("result-patient", lambda s, t: {"resourceType": "Parameters", "parameter": [
        _ref("source-patient", s), _ref("target-patient", t),
        {"name": "result-patient", "resource": {"resourceType": "Patient", "id": t}}]}, 501),
]


@pytest.mark.parametrize(("body", "status"), [(b, s) for _, b, s in BAD],
                         ids=[name for name, _, _ in BAD])
def test_bad_requests_are_operation_outcomes_and_change_nothing(
        server: RunningServer, body: Callable[[str, str], Any], status: int) -> None:
    source, target = _patient(server), _patient(server)
    response = server.http.post(f"{server.fhir}/{MERGE}", json=body(source, target), timeout=30)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    for id in (source, target):
        assert _get(server, f"Patient/{id}/_history")["total"] == 1


def test_merge_is_post_only_and_listed_in_the_capability_statement(
        server: RunningServer) -> None:
    response = server.http.get(f"{server.fhir}/{MERGE}", timeout=30)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    statement = _get(server, "metadata")
    (patient,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Patient"]
    assert {"name": "merge",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-merge"} \
        in patient["operation"]


def test_link_problems_list_studies_until_the_duplicates_are_merged(
        server: RunningServer, tmp_path: Path) -> None:
    problems = f"{server.base}/api/imaging-link/problems"
    assert server.http.get(problems, timeout=30).json() == []
    mrn = _mrn()
    first = _patient(server, {"system": LOCAL_SYSTEM, "value": mrn})
    second = _patient(server, {"system": LOCAL_SYSTEM, "value": mrn})
    study = _store_study(server, tmp_path, mrn)
    _wait_for(lambda: bool(server.http.get(problems, timeout=30).json()), "the link problem")

    response = server.http.get(problems, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    (problem,) = response.json()
    assert set(problem) == {"studyInstanceUid", "issue", "recorded"}
    assert problem["studyInstanceUid"] == study
    assert problem["issue"]["severity"] == "error"
    assert problem["issue"]["code"] == "multiple-matches"
    assert study in problem["issue"]["diagnostics"]
    assert mrn not in str(problem) and "Merge" not in str(problem)
    assert _imaging_study(server, study) is None

    merged = _merge(server, _ref("source-patient", second), _ref("target-patient", first))
    assert merged.status_code == 200, merged.text
    server.node.link.flush()
    _wait_for(lambda: _subject_of(server, study) == f"Patient/{first}",
              "the ImagingStudy after the merge")
    _wait_for(lambda: server.http.get(problems, timeout=30).json() == [], "the problem to clear")
