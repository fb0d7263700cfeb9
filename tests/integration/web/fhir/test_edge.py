"""The edge's own behaviour: the configured public base URL, and failures it did not expect."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from vesalius.config import Settings

PUBLIC = "https://ehr.example.org"


@pytest.fixture
def fhir_settings(settings: Settings) -> Settings:
    return replace(settings, public_base_url=f"{PUBLIC}/")


def test_public_base_url_in_location_links_and_metadata(fhir: Any) -> None:
    created = fhir.http.post(f"{fhir.base}/Organization", json={
            "resourceType": "Organization", "name": "Radiology"},
            headers={"Content-Type": "application/fhir+json"})
    id = created.json()["id"]
    assert created.headers["Location"] == f"{PUBLIC}/fhir/Organization/{id}/_history/1"
    bundle = fhir.http.get(f"{fhir.base}/Organization").json()
    assert bundle["link"][0]["url"].startswith(f"{PUBLIC}/fhir/Organization?")
    assert bundle["entry"][0]["fullUrl"] == f"{PUBLIC}/fhir/Organization/{id}"
    statement = fhir.http.get(f"{fhir.base}/metadata").json()
    assert statement["implementation"]["url"] == f"{PUBLIC}/fhir"


def test_unexpected_failure_is_a_bare_500_outcome(fhir: Any) -> None:
    with fhir.service.writer.begin() as conn:
        conn.execute(text("DROP TABLE fhir_history"))
    response = fhir.http.get(f"{fhir.base}/_history")
    assert response.status_code == 500
    assert response.json() == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "fatal", "code": "exception", "diagnostics": "internal server error"}]}
