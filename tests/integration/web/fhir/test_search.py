"""Search and history over HTTP: paging links followed to the end, views, strict handling
(https://hl7.org/fhir/R4/search.html, https://hl7.org/fhir/R4/http.html#history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import fhir_client
from vesalius.record.presentation import SUBSETTED

Example = Callable[[str], dict[str, Any]]
JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def organizations(fhir: Any, example: Example) -> list[str]:
    """Seven Organizations named Org 0 … Org 6; their ids in creation order."""
    body = example("Organization-1.json")
    ids = []
    for i in range(7):
        response = fhir.http.post(f"{fhir.base}/Organization", json={**body, "name": f"Org {i}"},
                                  headers=JSON)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


def follow(fhir: Any, url: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Ids of every entry across pages, and every page."""
    ids: list[str] = []
    pages = []
    next_url: str | None = url
    while next_url:
        page = fhir.http.get(next_url).json()
        pages.append(page)
        ids += [e["resource"]["id"] for e in page.get("entry", [])]
        next_url = next((link["url"] for link in page["link"] if link["relation"] == "next"),
                        None)
        assert len(pages) < 20
    return ids, pages


def test_paging_links_followed_to_the_end(fhir: Any, organizations: list[str]) -> None:
    ids, pages = follow(fhir, f"{fhir.base}/Organization?name=Org&_count=3")
    assert sorted(ids) == sorted(organizations) and len(ids) == 7
    assert len(pages) == 3 and all(p["total"] == 7 for p in pages)
    relations = [[link["relation"] for link in p["link"]] for p in pages]
    assert relations == [["self", "next"], ["self", "next", "previous"], ["self", "previous"]]
    assert all("name=Org" in link["url"] for p in pages for link in p["link"])
    entry = pages[0]["entry"][0]
    assert entry["fullUrl"] == f"{fhir.base}/Organization/{entry['resource']['id']}"
    assert entry["search"] == {"mode": "match"}


def test_client_fetch_all_pages(fhir: Any, organizations: list[str]) -> None:
    client = fhir_client(fhir)
    found = client.resources("Organization").search(name="Org").limit(2).fetch_all()
    assert sorted(o.id for o in found) == sorted(organizations)
    assert client.resources("Organization").search(name="Org 3").count() == 1


def test_post_search_and_system_search(fhir: Any, organizations: list[str]) -> None:
    posted = fhir.http.post(f"{fhir.base}/Organization/_search", data={"name": "Org 5"})
    assert posted.status_code == 200 and posted.json()["total"] == 1
    assert fhir.http.post(f"{fhir.base}/Organization/_search",
                          json={"name": "x"}).status_code == 415
    system = fhir.http.get(f"{fhir.base}/", params={"_type": "Organization", "_count": "100"})
    assert system.status_code == 200 and system.json()["total"] == 7
    assert system.json()["link"][0]["url"].startswith(f"{fhir.base}?")


def test_summary_and_elements(fhir: Any, organizations: list[str]) -> None:
    counted = fhir.http.get(f"{fhir.base}/Organization", params={"_summary": "count"}).json()
    assert counted["total"] == 7 and "entry" not in counted
    summary = fhir.http.get(f"{fhir.base}/Organization", params={"_summary": "true"}).json()
    resource = summary["entry"][0]["resource"]
    assert "text" not in resource and "name" in resource
    assert SUBSETTED in resource["meta"]["tag"]
    elements = fhir.http.get(f"{fhir.base}/Organization", params={"_elements": "name"}).json()
    assert all(set(e["resource"]) == {"resourceType", "id", "meta", "name"}
               for e in elements["entry"])


def test_strict_handling_rejects_unknown_parameters(fhir: Any,
                                                    organizations: list[str]) -> None:
    lenient = fhir.http.get(f"{fhir.base}/Organization", params={"no-such-param": "x"})
    assert lenient.status_code == 200 and lenient.json()["total"] == 7
    assert "no-such-param" not in lenient.json()["link"][0]["url"]
    strict = fhir.http.get(f"{fhir.base}/Organization", params={"no-such-param": "x"},
                           headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["resourceType"] == "OperationOutcome"


def test_include(fhir: Any, example: Example) -> None:
    fhir.http.put(f"{fhir.base}/Organization/1", json=example("Organization-1.json"), headers=JSON)
    fhir.http.put(f"{fhir.base}/Patient/example", json=example("Patient-example.json"),
                  headers=JSON)
    bundle = fhir.http.get(f"{fhir.base}/Patient",
                           params={"_include": "Patient:organization"}).json()
    assert [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]] == [
        ("Patient", "match"), ("Organization", "include")]


def test_history_after_create_update_delete(fhir: Any, example: Example) -> None:
    org = example("Organization-1.json")
    assert fhir.http.put(f"{fhir.base}/Organization/1", json=org, headers=JSON).status_code == 201
    fhir.http.put(f"{fhir.base}/Organization/1", json={**org, "name": "Renamed"}, headers=JSON)
    assert fhir.http.delete(f"{fhir.base}/Organization/1").status_code == 204
    history = fhir.http.get(f"{fhir.base}/Organization/1/_history").json()
    assert history["type"] == "history" and history["total"] == 3
    deleted, updated, created = history["entry"]
    assert "resource" not in deleted and deleted["request"] == {
        "method": "DELETE", "url": "Organization/1"}
    assert updated["resource"]["name"] == "Renamed" and updated["response"]["etag"] == 'W/"2"'
    assert created["response"]["status"].startswith("201")
    assert fhir.http.get(f"{fhir.base}/Organization/_history").json()["total"] == 3
    assert fhir.http.get(f"{fhir.base}/_history").json()["total"] == 3
    assert fhir.http.get(f"{fhir.base}/Organization/2/_history").status_code == 404


def test_history_paging_and_since(fhir: Any, organizations: list[str]) -> None:
    ids, pages = follow(fhir, f"{fhir.base}/_history?_count=2")
    assert sorted(ids) == sorted(organizations) and len(pages) == 4
    newest = pages[0]["entry"][0]["response"]["lastModified"]
    since = fhir.http.get(f"{fhir.base}/Organization/_history", params={"_since": newest}).json()
    assert since["total"] >= 1
    assert all(e["response"]["lastModified"] >= newest for e in since["entry"])
    assert "_since=" in since["link"][0]["url"]
    bad = fhir.http.get(f"{fhir.base}/_history", params={"_since": "yesterday"})
    assert bad.status_code == 400
    assert fhir.http.get(f"{fhir.base}/_history", params={"_count": "-1"}).status_code == 400
