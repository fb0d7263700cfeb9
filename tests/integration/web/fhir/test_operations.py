"""CapabilityStatement, $validate, Patient/$everything and batch/transaction over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vesalius.record.definitions import load

Example = Callable[[str], dict[str, Any]]
JSON = {"Content-Type": "application/fhir+json"}


def test_capability_statement_tells_the_truth(fhir: Any) -> None:
    response = fhir.http.get(f"{fhir.base}/metadata", params={"mode": "full"})
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1" and "json" in statement["format"]
    assert statement["implementation"]["url"] == fhir.base
    rest = statement["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {
        "transaction", "batch", "search-system", "history-system"}
    defs = load()
    by_type = {r["type"]: r for r in rest["resource"]}
    assert set(by_type) == set(defs.resource_types)
    patient = by_type["Patient"]
    assert {i["code"] for i in patient["interaction"]} >= {
        "read", "vread", "update", "patch", "delete", "create", "search-type",
        "history-instance", "history-type"}
    assert patient["versioning"] == "versioned" and patient["conditionalRead"] == \
        "not-supported"
    assert "enforced" in patient["referencePolicy"]
    params = {p["name"]: p for p in patient["searchParam"]}
    assert set(params) == set(defs.search_params("Patient"))
    assert params["family"]["type"] == "string"
    assert params["family"]["definition"] == "http://hl7.org/fhir/SearchParameter/individual-family"
    assert "Patient:organization" in patient["searchInclude"]
    assert "Observation:subject" in patient["searchRevInclude"]
    assert {o["name"] for o in patient["operation"]} == {"validate", "everything", "merge"}
    assert fhir.http.get(f"{fhir.base}/metadata",
                         params={"mode": "terminology"}).status_code == 400


def test_validate(fhir: Any, example: Example) -> None:
    good = fhir.http.post(f"{fhir.base}/Organization/$validate",
                          json=example("Organization-1.json"), headers=JSON)
    assert good.status_code == 200
    assert good.json()["issue"] == [{"severity": "information", "code": "informational",
                                     "diagnostics": "All OK"}]
    bad = fhir.http.post(f"{fhir.base}/Patient/$validate", headers=JSON,
                         json={"resourceType": "Patient", "gender": "robot", "bogus": 1})
    assert bad.status_code == 200
    issues = bad.json()["issue"]
    assert issues and all(i["severity"] in ("error", "fatal") for i in issues)
    assert any("Patient.gender" in i.get("expression", []) for i in issues)
    wrapped = fhir.http.post(f"{fhir.base}/Organization/1/$validate", headers=JSON, json={
            "resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": example("Organization-1.json")}]})
    assert wrapped.json()["issue"][0]["diagnostics"] == "All OK"
    other_id = fhir.http.post(f"{fhir.base}/Organization/2/$validate", headers=JSON,
                              json=example("Organization-1.json"))
    assert other_id.json()["issue"][0]["expression"] == ["Organization.id"]
    assert fhir.http.get(f"{fhir.base}/Organization").json()["total"] == 0  # nothing stored


def test_everything(fhir: Any, example: Example) -> None:
    fhir.http.put(f"{fhir.base}/Organization/1", json=example("Organization-1.json"), headers=JSON)
    fhir.http.put(f"{fhir.base}/Patient/example", json=example("Patient-example.json"),
                  headers=JSON)
    observation = {"resourceType": "Observation", "status": "final",
                   "code": {"text": "weight"}, "subject": {"reference": "Patient/example"}}
    for _ in range(3):
        assert fhir.http.post(f"{fhir.base}/Observation", json=observation,
                              headers=JSON).status_code == 201
    everything = fhir.http.get(f"{fhir.base}/Patient/example/$everything").json()
    types = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert types[0] == "Patient" and types.count("Observation") == 3
    total = everything["total"]
    assert total == len(types)
    seen: list[str] = []
    url: str | None = f"{fhir.base}/Patient/example/$everything?_count=2"
    while url:
        page = fhir.http.get(url).json()
        seen += [e["fullUrl"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == total
    only = fhir.http.get(f"{fhir.base}/Patient/example/$everything",
                         params={"_type": "Observation"}).json()
    assert {e["resource"]["resourceType"] for e in only["entry"]} == {"Observation"}
    assert fhir.http.get(f"{fhir.base}/Patient/nobody/$everything").status_code == 404
    assert fhir.http.get(f"{fhir.base}/Organization/1/$everything").status_code == 501


def test_transaction_and_batch(fhir: Any, example: Example) -> None:
    organization = example("Organization-1.json")
    del organization["id"]
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0f9a1c1e-3d4b-4c55-8d6e-7f8091a2b3c4", "resource": organization,
         "request": {"method": "POST", "url": "Organization"}},
        {"resource": {"resourceType": "Patient", "managingOrganization": {
            "reference": "urn:uuid:0f9a1c1e-3d4b-4c55-8d6e-7f8091a2b3c4"}},
         "request": {"method": "POST", "url": "Patient"}}]}
    response = fhir.http.post(f"{fhir.base}/", json=transaction, headers=JSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    assert [e["response"]["status"][:3] for e in result["entry"]] == ["201", "201"]
    patient = fhir.http.get(f"{fhir.base}/Patient").json()["entry"][0]["resource"]
    assert patient["managingOrganization"]["reference"].startswith("Organization/")
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?_count=5"}},
        {"request": {"method": "GET", "url": "Patient/missing"}}]}
    answered = fhir.http.post(f"{fhir.base}/", json=batch, headers=JSON).json()
    found, missing = answered["entry"]
    assert found["resource"]["type"] == "searchset" and found["resource"]["total"] == 1
    assert missing["response"]["status"].startswith("404")
