"""``/fhir`` without a trailing slash is the FHIR base (clients POST Bundles there)."""

from __future__ import annotations

from conftest import RunningServer


def test_fhir_base_without_slash(server: RunningServer) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6a8c2d4e-0c1b-4f7e-9b1a-2f7d8c9e0a11",
         "resource": {"resourceType": "Patient", "name": [{"family": "Base"}]},
         "request": {"method": "POST", "url": "Patient"}}]}
    posted = server.http.post(server.fhir, json=bundle, follow_redirects=False,
                              headers={"Content-Type": "application/fhir+json"})
    assert posted.status_code == 200, posted.text
    assert posted.json()["type"] == "transaction-response"
    found = server.http.get(server.fhir, params={"_type": "Patient"}, follow_redirects=False)
    assert found.status_code == 200
    searchset = found.json()
    assert searchset["total"] == 1
    assert searchset["entry"][0]["fullUrl"].startswith(f"{server.fhir}/Patient/")
