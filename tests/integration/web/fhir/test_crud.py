"""Create, read, vread, update, patch and delete over real HTTP, with a real FHIR client
(fhirpy) and header-level checks (https://hl7.org/fhir/R4/http.html)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from conftest import fhir_client
from vesalius.record.presentation import SUBSETTED

Example = Callable[[str], dict[str, Any]]
JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def client(fhir: Any) -> SyncFHIRClient:
    return fhir_client(fhir)


@pytest.fixture
def patient(fhir: Any, example: Example) -> dict[str, Any]:
    """Patient/example as stored, after the Organization/1 it references."""
    for name, path in (("Organization-1.json", "Organization/1"),
                       ("Patient-example.json", "Patient/example")):
        response = fhir.http.put(f"{fhir.base}/{path}", json=example(name), headers=JSON)
        assert response.status_code == 201, response.text
    return fhir.http.get(f"{fhir.base}/Patient/example").json()  # type: ignore[no-any-return]


def test_client_round_trip(client: SyncFHIRClient, example: Example) -> None:
    org = client.resource("Organization", **{k: v for k, v in example("Organization-1.json")
                                             .items() if k not in ("id", "resourceType")})
    org.save()
    assert org.id and org["meta"]["versionId"] == "1"
    fetched = client.reference("Organization", org.id).to_resource()
    assert fetched["name"] == org["name"]
    fetched["name"] = "Gastroenterology, renamed"
    fetched.save()
    assert client.reference("Organization", org.id).to_resource()["meta"]["versionId"] == "2"
    found = client.resources("Organization").search(name="gastroenterology, ren").fetch_all()
    assert [o.id for o in found] == [org.id]
    fetched.delete()
    assert client.resources("Organization").search(_id=org.id).fetch_all() == []


def test_create_answers_201_with_location_etag_and_body(fhir: Any, example: Example) -> None:
    body = example("Organization-1.json")
    response = fhir.http.post(f"{fhir.base}/Organization", json=body, headers=JSON)
    assert response.status_code == 201
    created = response.json()
    assert created["id"] != body["id"]  # the server assigns the id
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == \
        f"{fhir.base}/Organization/{created['id']}/_history/1"
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["Content-Type"].startswith("application/fhir+json")


def test_conditional_create(fhir: Any, example: Example) -> None:
    body = example("Organization-1.json")
    condition = {"If-None-Exist": "identifier=http://www.acme.org.au/units|Gastro", **JSON}
    first = fhir.http.post(f"{fhir.base}/Organization", json=body, headers=condition)
    assert first.status_code == 201
    again = fhir.http.post(f"{fhir.base}/Organization", json=body, headers=condition)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert fhir.http.get(f"{fhir.base}/Organization").json()["total"] == 1
    fhir.http.post(f"{fhir.base}/Organization", json=body, headers=JSON)
    both = fhir.http.post(f"{fhir.base}/Organization", json=body, headers=condition)
    assert both.status_code == 412 and both.json()["resourceType"] == "OperationOutcome"


def test_prefer_return(fhir: Any, example: Example) -> None:
    body = example("Organization-1.json")
    minimal = fhir.http.post(f"{fhir.base}/Organization", json=body,
                             headers={"Prefer": "return=minimal", **JSON})
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["Location"] and minimal.headers["ETag"] == 'W/"1"'
    outcome = fhir.http.post(f"{fhir.base}/Organization", json=body,
                             headers={"Prefer": "return=OperationOutcome", **JSON})
    assert outcome.status_code == 201
    assert outcome.json()["resourceType"] == "OperationOutcome"
    assert outcome.json()["issue"][0]["severity"] == "information"


def test_read_vread_and_if_none_match(fhir: Any, patient: dict[str, Any]) -> None:
    read = fhir.http.get(f"{fhir.base}/Patient/example")
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"'
    assert "Location" not in read.headers
    cached = fhir.http.get(f"{fhir.base}/Patient/example", headers={"If-None-Match": 'W/"1"'})
    assert cached.status_code == 304 and cached.content == b""
    stale = fhir.http.get(f"{fhir.base}/Patient/example", headers={"If-None-Match": 'W/"0"'})
    assert stale.status_code == 200
    vread = fhir.http.get(f"{fhir.base}/Patient/example/_history/1")
    assert vread.status_code == 200 and vread.json() == patient
    assert fhir.http.get(f"{fhir.base}/Patient/example/_history/9").status_code == 404
    assert fhir.http.get(f"{fhir.base}/Patient/nobody").status_code == 404


def test_read_summary_and_elements(fhir: Any, patient: dict[str, Any]) -> None:
    summary = fhir.http.get(f"{fhir.base}/Patient/example", params={"_summary": "true"}).json()
    assert "text" not in summary and summary["name"] == patient["name"]
    assert SUBSETTED in summary["meta"]["tag"]
    elements = fhir.http.get(f"{fhir.base}/Patient/example", params={"_elements": "gender"}).json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}


def test_update_with_if_match(fhir: Any, patient: dict[str, Any]) -> None:
    changed = {**patient, "gender": "other"}
    stale = fhir.http.put(f"{fhir.base}/Patient/example", json=changed,
                          headers={"If-Match": 'W/"7"', **JSON})
    assert stale.status_code == 412
    assert stale.json()["issue"][0]["code"] == "conflict"
    ok = fhir.http.put(f"{fhir.base}/Patient/example", json=changed,
                       headers={"If-Match": 'W/"1"', **JSON})
    assert ok.status_code == 200 and ok.headers["ETag"] == 'W/"2"'
    assert ok.headers["Location"].endswith("/Patient/example/_history/2")
    assert ok.json()["gender"] == "other"
    same = fhir.http.put(f"{fhir.base}/Patient/example", json=ok.json(), headers=JSON)
    assert same.status_code == 200 and same.headers["ETag"] == 'W/"2"'  # no new version
    assert fhir.http.get(f"{fhir.base}/Patient/example/_history/1").json()["gender"] == "male"


def test_conditional_update(fhir: Any, example: Example) -> None:
    body = example("Organization-1.json")
    del body["id"]
    url = f"{fhir.base}/Organization?identifier=http://www.acme.org.au/units|Gastro"
    created = fhir.http.put(url, json=body, headers=JSON)
    assert created.status_code == 201
    updated = fhir.http.put(url, json={**body, "name": "Renamed"}, headers=JSON)
    assert updated.status_code == 200 and updated.json()["id"] == created.json()["id"]
    assert updated.json()["name"] == "Renamed"
    assert fhir.http.put(f"{fhir.base}/Organization", json=body, headers=JSON).status_code == 400


def test_patch(fhir: Any, patient: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": "/gender", "value": "female"}]
    patched = fhir.http.patch(f"{fhir.base}/Patient/example", json=ops,
                              headers={"Content-Type": "application/json-patch+json",
                                       "If-Match": 'W/"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["gender"] == "female" and patched.headers["ETag"] == 'W/"2"'
    fhirpath = fhir.http.patch(f"{fhir.base}/Patient/example", headers=JSON,
                               json={"resourceType": "Parameters", "parameter": []})
    assert fhirpath.status_code == 415
    broken = fhir.http.patch(f"{fhir.base}/Patient/example",
                             json=[{"op": "replace", "path": "/nothing/here", "value": 1}],
                             headers={"Content-Type": "application/json-patch+json"})
    assert broken.status_code == 400
    assert fhir.http.get(f"{fhir.base}/Patient/example").headers["ETag"] == 'W/"2"'


def test_delete_then_gone(fhir: Any, patient: dict[str, Any], client: SyncFHIRClient) -> None:
    deleted = fhir.http.delete(f"{fhir.base}/Patient/example")
    assert deleted.status_code == 204
    gone = fhir.http.get(f"{fhir.base}/Patient/example")
    assert gone.status_code == 410 and gone.json()["issue"][0]["code"] == "deleted"
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", "example").to_resource()
    again = fhir.http.delete(f"{fhir.base}/Patient/example",
                             headers={"Prefer": "return=OperationOutcome"})
    assert again.status_code == 200 and again.json()["resourceType"] == "OperationOutcome"
    recreated = fhir.http.put(f"{fhir.base}/Patient/example", json=patient, headers=JSON)
    assert recreated.status_code == 201 and recreated.headers["ETag"] == 'W/"3"'


def test_referential_integrity(fhir: Any, example: Example) -> None:
    response = fhir.http.put(f"{fhir.base}/Patient/example", json=example("Patient-example.json"),
                             headers=JSON)
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Patient.managingOrganization"]
    assert fhir.http.get(f"{fhir.base}/Patient/example").status_code == 404


def test_conditional_delete(fhir: Any, example: Example) -> None:
    body = example("Organization-1.json")
    for _ in range(2):
        created = fhir.http.post(f"{fhir.base}/Organization", json=body, headers=JSON)
        assert created.status_code == 201
    url = f"{fhir.base}/Organization?name=Gastroenterology"
    assert fhir.http.delete(url).status_code == 412
    assert fhir.http.get(f"{fhir.base}/Organization").json()["total"] == 2
    assert fhir.http.delete(f"{url}&_multiple=true").status_code == 204
    assert fhir.http.get(f"{fhir.base}/Organization").json()["total"] == 0
    assert fhir.http.delete(url).status_code == 204  # nothing matches: nothing to do
