"""The demo record Bundle: valid FHIR R4, self-contained, idempotent to load, tied to studies."""

from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from vesalius.demo.common import DemoPatient
from vesalius.demo.record import demo_record_bundle
from vesalius.demo.synthetic import DEFAULT_PATIENT, demo_studies
from vesalius.dicom.patient_identity import identifier_system
from vesalius.record.definitions import load
from vesalius.record.validation import Validator

LOINC = "http://loinc.org"
ACSN = ("http://terminology.hl7.org/CodeSystem/v2-0203", "ACSN")
LAB_CODES = {"4548-4", "2160-0", "33914-3", "13457-7", "718-7", "2823-3"}
VITAL_CODES = {"85354-9", "29463-7", "8867-4"}
FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@cache
def bundle() -> dict[str, Any]:
    return demo_record_bundle()


@cache
def studies() -> dict[str, tuple[str, str, str]]:
    """AccessionNumber → (StudyInstanceUID, StudyDate as YYYY-MM-DD, Modality) of the demo."""
    found = {}
    for ds in demo_studies(DEFAULT_PATIENT, ct_slices=1):
        day = f"{ds.StudyDate[:4]}-{ds.StudyDate[4:6]}-{ds.StudyDate[6:]}"
        found[ds.AccessionNumber] = (ds.StudyInstanceUID, day, ds.Modality)
    return found


def resources(resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle()["entry"]
            if e["resource"]["resourceType"] == resource_type]


def by_url() -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle()["entry"]}


def walk(value: object, key: str = "") -> Iterator[tuple[str, object]]:
    """Every (key, value) pair anywhere in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, key)


def codes(concept: dict[str, Any]) -> set[str]:
    return {c["code"] for c in concept.get("coding", [])}


def test_every_resource_is_valid_fhir_r4() -> None:
    validator = Validator(load())
    problems = {
        e["fullUrl"]: issues
        for e in bundle()["entry"]
        if (issues := validator.validate(e["resource"]))
    }
    assert problems == {}
    assert validator.validate(bundle()) == []


def test_transaction_of_conditional_creates_with_unique_uuid_full_urls() -> None:
    b = bundle()
    assert (b["resourceType"], b["type"]) == ("Bundle", "transaction")
    urls = [e["fullUrl"] for e in b["entry"]]
    assert len(urls) == len(set(urls))
    assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", u) for u in urls)
    criteria = []
    for e in b["entry"]:
        resource, request = e["resource"], e["request"]
        assert (request["method"], request["url"]) == ("POST", resource["resourceType"])
        system, _, value = request["ifNoneExist"].removeprefix("identifier=").partition("|")
        # The condition finds the resource itself once stored: a second load creates nothing.
        assert {"system": system, "value": value} in [
            {"system": i.get("system"), "value": i["value"]} for i in resource["identifier"]]
        criteria.append((resource["resourceType"], request["ifNoneExist"]))
    assert len(criteria) == len(set(criteria))


def test_every_reference_resolves_inside_the_bundle_and_none_is_to_an_imaging_study() -> None:
    urls = by_url()
    references = [v for k, v in walk(bundle()) if k == "reference"]
    assert len(references) > 500
    assert all(isinstance(r, str) and r in urls for r in references)
    assert "ImagingStudy" not in json.dumps(bundle())


def test_same_output_on_every_call() -> None:
    assert json.dumps(demo_record_bundle(), sort_keys=True) == json.dumps(bundle(), sort_keys=True)


def test_patient_carries_the_dicom_identity_of_the_studies() -> None:
    (patient,) = resources("Patient")
    identity = {"system": identifier_system(DEFAULT_PATIENT.issuer),
                "value": DEFAULT_PATIENT.patient_id}
    assert {k: patient["identifier"][0][k] for k in ("system", "value")} == identity
    entry = next(e for e in bundle()["entry"] if e["resource"] is patient)
    assert entry["request"]["ifNoneExist"] == f"identifier={identity['system']}|{identity['value']}"
    assert patient["name"][0]["family"] == "DEMO"
    assert patient["name"][0]["given"] == ["ALICE"]
    assert (patient["gender"], patient["birthDate"]) == ("female", "1970-01-01")
    urls = by_url()
    gp = urls[patient["generalPractitioner"][0]["reference"]]
    assert gp["resourceType"] == "Practitioner"
    assert urls[patient["managingOrganization"]["reference"]]["resourceType"] == "Organization"


def test_another_patient_gets_their_own_chart_and_shares_the_hospital() -> None:
    other = demo_record_bundle(DemoPatient(patient_name="DEMO^BOB", patient_id="VES-DEMO-0002",
                                           sex="M"))
    mine = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle()["entry"]}
    theirs = {e["fullUrl"]: e["resource"]["resourceType"] for e in other["entry"]}
    shared = {t for u, t in mine.items() if u in theirs}
    assert shared == {"Organization", "Practitioner", "PractitionerRole"}
    (bob,) = [e["resource"] for e in other["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert (bob["gender"], bob["identifier"][0]["value"]) == ("male", "VES-DEMO-0002")


def test_chart_spans_2019_to_the_latest_demo_study() -> None:
    latest = max(day for _, day, _ in studies().values())
    days = {v[:10] for k, v in walk(bundle())
            if isinstance(v, str) and FULL_DATE.match(v) and k != "birthDate"}
    assert min(days).startswith("2019-")
    assert max(days) == latest
    counts = Counter(e["resource"]["resourceType"] for e in bundle()["entry"])
    assert 6 <= counts["Encounter"] <= 10
    assert {"Organization", "PractitionerRole", "Condition", "MedicationRequest", "Medication",
            "MedicationStatement", "AllergyIntolerance", "Immunization", "CarePlan", "Procedure",
            "ServiceRequest", "Media", "DocumentReference", "Consent"} <= set(counts)
    assert counts["Practitioner"] >= 2
    emergencies = [e for e in resources("Encounter") if e["class"]["code"] == "EMER"]
    assert [e["period"]["start"][:10] for e in emergencies] == [latest]


def test_every_lab_and_vital_sign_has_a_trend_of_at_least_eight_points() -> None:
    series: dict[str, list[str]] = defaultdict(list)
    for obs in resources("Observation"):
        (code,) = codes(obs["code"])
        series[code].append(obs["effectiveDateTime"])
    assert set(series) >= LAB_CODES | VITAL_CODES
    assert all(len(set(series[code])) >= 8 for code in LAB_CODES | VITAL_CODES)


def test_lab_values_are_ucum_quantities_flagged_against_their_reference_range() -> None:
    flagged = 0
    for obs in resources("Observation"):
        if codes(obs["category"][0]) != {"laboratory"}:
            continue
        value = obs["valueQuantity"]
        assert value["system"] == "http://unitsofmeasure.org"
        (limits,) = obs["referenceRange"]
        high = "high" in limits and value["value"] > limits["high"]["value"]
        low = "low" in limits and value["value"] < limits["low"]["value"]
        expected = {"H"} if high else {"L"} if low else set()
        assert {c for i in obs.get("interpretation", []) for c in codes(i)} == expected
        flagged += bool(expected)
    assert flagged > 0


def test_blood_pressure_is_a_panel_of_systolic_and_diastolic() -> None:
    panels = [o for o in resources("Observation") if codes(o["code"]) == {"85354-9"}]
    for panel in panels:
        assert "valueQuantity" not in panel
        components = {next(iter(codes(c["code"]))): c["valueQuantity"]
                      for c in panel["component"]}
        assert set(components) == {"8480-6", "8462-4"}
        assert components["8480-6"]["value"] > components["8462-4"]["value"]
        assert components["8480-6"]["code"] == "mm[Hg]"


def test_lab_reports_group_results_of_the_same_day() -> None:
    urls = by_url()
    lab_reports = [r for r in resources("DiagnosticReport") if codes(r["category"][0]) == {"LAB"}]
    grouped = set()
    for report in lab_reports:
        results = [urls[ref["reference"]] for ref in report["result"]]
        assert {r["effectiveDateTime"] for r in results} == {report["effectiveDateTime"]}
        grouped |= {ref["reference"] for ref in report["result"]}
    labs = {e["fullUrl"] for e in bundle()["entry"]
            if e["resource"]["resourceType"] == "Observation"
            and codes(e["resource"]["category"][0]) == {"laboratory"}}
    assert grouped == labs


def imaging_order(accession: str) -> dict[str, Any]:
    (order,) = [
        r for r in resources("ServiceRequest")
        if any(i.get("value") == accession and codes(i.get("type", {})) == {ACSN[1]}
               and i["type"]["coding"][0]["system"] == ACSN[0] for i in r["identifier"])]
    return order


def test_every_imaging_order_names_a_demo_study_by_accession_and_date() -> None:
    orders = resources("ServiceRequest")
    assert len(orders) == len(studies())
    for accession, (_, day, _) in studies().items():
        order = imaging_order(accession)
        assert order["occurrenceDateTime"] == day
        assert order["status"] == "completed"
        assert codes(order["category"][0]) == {"363679005"}


def latest_ct() -> tuple[str, str]:
    """(StudyDate, AccessionNumber) of the current CT head."""
    return max((day, acc) for acc, (_, day, modality) in studies().items() if modality == "CT")


def test_ct_head_order_and_report() -> None:
    urls = by_url()
    day, accession = latest_ct()
    order = imaging_order(accession)
    assert codes(order["code"]) == {"24725-4"}
    requester = urls[order["requester"]["reference"]]
    assert requester["name"][0]["family"] == "Neuron"
    assert codes(order["reasonCode"][0]) == {"25064002"}
    order_url = next(u for u, r in urls.items() if r is order)
    (report,) = [r for r in resources("DiagnosticReport")
                 if r.get("basedOn") == [{"reference": order_url}]]
    assert codes(report["category"][0]) == {"RAD"}
    assert codes(report["code"]) == {"24725-4"}
    assert (report["status"], report["effectiveDateTime"]) == ("final", day)
    assert report["conclusion"]
    radiologist = urls[report["performer"][0]["reference"]]
    role = next(r for r in resources("PractitionerRole")
                if urls[r["practitioner"]["reference"]] is radiologist)
    assert codes(role["specialty"][0]) == {"394914008"}


def test_allergy_alert_is_a_high_criticality_penicillin_allergy() -> None:
    (allergy,) = resources("AllergyIntolerance")
    assert allergy["criticality"] == "high"
    assert codes(allergy["clinicalStatus"]) == {"active"}
    assert "Penicillin" in json.dumps(allergy["code"])
    assert allergy["reaction"][0]["manifestation"]


def test_clinical_photo_is_a_small_png() -> None:
    (media,) = resources("Media")
    content = media["content"]
    assert content["contentType"] == "image/png"
    image = Image.open(io.BytesIO(base64.b64decode(content["data"])))
    assert (image.format, image.size) == ("PNG", (media["width"], media["height"]))
    colours = np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 100  # a picture, not a flat square
    assert {"subject", "createdDateTime", "bodySite"} <= set(media)


def test_discharge_summary_is_plain_text_about_the_emergency_visit() -> None:
    (document,) = resources("DocumentReference")
    attachment = document["content"][0]["attachment"]
    assert attachment["contentType"].startswith("text/plain")
    text = base64.b64decode(attachment["data"]).decode()
    assert latest_ct()[1] in text
    urls = by_url()
    (visit,) = document["context"]["encounter"]
    assert urls[visit["reference"]]["class"]["code"] == "EMER"
