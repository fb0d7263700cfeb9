"""Bundles and summary views built from official examples (https://hl7.org/fhir/R4/search.html)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from vesalius.record.definitions import Definitions, load
from vesalius.record.presentation import (
    SUBSETTED,
    everything_bundle,
    history_bundle,
    searchset,
    summarize,
)
from vesalius.record.search.engine import SearchResult
from vesalius.record.service import HistoryEntry, HistoryPage

BASE = "https://ehr.example.org/fhir"


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return load()


def example(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def result(matches: list[dict[str, Any]], **changes: Any) -> SearchResult:
    fields: dict[str, Any] = dict(
        matches=matches, included=[], total=len(matches), offset=0, count=20,
        next_offset=None, previous_offset=None, params=[], summary=None, elements=None)
    fields.update(changes)
    return SearchResult(**fields)


def links(bundle: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {link["relation"]: dict(parse_qsl(urlsplit(link["url"]).query))
            for link in bundle["link"]}


def test_searchset_entries_total_and_paging_links(fhir_examples: Path, defs: Definitions) -> None:
    patient = example(fhir_examples, "Patient-example.json")
    org = example(fhir_examples, "Organization-1.json")
    bundle = searchset(
        result([patient], included=[org], total=45, offset=20, count=10, next_offset=30,
               previous_offset=10, params=[("family", "Chalmers"), ("_include", "Patient:x")]),
        base=BASE, resource_type="Patient", defs=defs)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 45
    assert [(e["fullUrl"], e["search"]["mode"]) for e in bundle["entry"]] == [
        (f"{BASE}/Patient/example", "match"), (f"{BASE}/Organization/1", "include")]
    assert bundle["entry"][0]["resource"] == patient
    got = links(bundle)
    assert got["self"] == {"family": "Chalmers", "_include": "Patient:x", "_count": "10",
                           "_offset": "20"}
    assert got["next"]["_offset"] == "30" and got["previous"]["_offset"] == "10"
    assert all(link["url"].startswith(f"{BASE}/Patient?") for link in bundle["link"])


def test_searchset_without_total_and_system_level(defs: Definitions) -> None:
    bundle = searchset(result([], total=None), base=BASE, resource_type=None, defs=defs)
    assert "total" not in bundle and "entry" not in bundle
    assert bundle["link"][0]["url"] == f"{BASE}?_count=20"
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_summary_count_has_no_entries(fhir_examples: Path, defs: Definitions) -> None:
    patient = example(fhir_examples, "Patient-example.json")
    bundle = searchset(result([patient], total=7, count=0, summary="count",
                              params=[("_summary", "count")]),
                       base=BASE, resource_type="Patient", defs=defs)
    assert bundle["total"] == 7 and "entry" not in bundle


def test_summary_true_keeps_summary_elements(fhir_examples: Path, defs: Definitions) -> None:
    patient = example(fhir_examples, "Patient-example.json")
    view = summarize(patient, "true", None, defs)
    assert {"name", "gender", "birthDate", "identifier", "active"} <= set(view)
    assert "text" not in view and "contact" not in view  # not isSummary
    assert view["id"] == "example" and SUBSETTED in view["meta"]["tag"]
    assert "text" in patient and "meta" not in patient  # the stored resource is untouched


def test_summary_true_descends_into_backbone_elements(fhir_examples: Path,
                                                       defs: Definitions) -> None:
    observation = example(fhir_examples, "Observation-example.json")
    view = summarize(observation, "true", None, defs)
    assert view["status"] == observation["status"] and view["code"] == observation["code"]
    assert view["valueQuantity"] == observation["valueQuantity"]  # value[x] is isSummary
    assert "text" not in view


def test_summary_text_and_data(fhir_examples: Path, defs: Definitions) -> None:
    observation = example(fhir_examples, "Observation-example.json")
    text = summarize(observation, "text", None, defs)
    assert set(text) == {"resourceType", "id", "meta", "text", "status", "code"}
    data = summarize(observation, "data", None, defs)
    assert "text" not in data and data["valueQuantity"] == observation["valueQuantity"]
    assert SUBSETTED in data["meta"]["tag"]
    assert summarize(observation, "false", None, defs) == observation
    assert summarize(observation, None, None, defs) == observation


def test_elements_keeps_asked_and_mandatory(fhir_examples: Path, defs: Definitions) -> None:
    observation = example(fhir_examples, "Observation-example.json")
    view = summarize(observation, None, ["subject", "Observation.effectiveDateTime"], defs)
    assert set(view) == {"resourceType", "id", "meta", "subject", "effectiveDateTime",
                         "status", "code"}
    assert view["meta"]["tag"] == [SUBSETTED]


def test_subsetted_tag_joins_existing_meta_once(fhir_examples: Path, defs: Definitions) -> None:
    own = {"system": "http://example.org/tags", "code": "mine"}
    patient = {**example(fhir_examples, "Patient-example.json"),
               "meta": {"versionId": "3", "tag": [own]}}
    once = summarize(patient, "true", None, defs)
    assert once["meta"] == {"versionId": "3", "tag": [own, SUBSETTED]}
    assert list(once)[:3] == ["resourceType", "id", "meta"]
    twice = summarize(once, "data", None, defs)
    assert twice["meta"]["tag"] == [own, SUBSETTED]
    assert patient["meta"] == {"versionId": "3", "tag": [own]}


def test_history_bundle_entries_and_links() -> None:
    ts = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    resource = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "2"}}
    page = HistoryPage([
        HistoryEntry("Patient", "p1", 3, "DELETE", ts, None),
        HistoryEntry("Patient", "p1", 2, "PUT", ts, resource),
        HistoryEntry("Patient", "p1", 1, "POST", ts, {**resource, "meta": {"versionId": "1"}}),
    ], total=5, offset=0, count=3)
    bundle = history_bundle(page, base=BASE, path="Patient/p1/_history",
                            params=[("_since", "2024-01-01")])
    assert bundle["type"] == "history" and bundle["total"] == 5
    deleted, updated, created = bundle["entry"]
    assert "resource" not in deleted
    assert deleted["request"] == {"method": "DELETE", "url": "Patient/p1"}
    assert deleted["response"]["status"].startswith("204")
    assert updated["resource"] == resource and updated["response"]["etag"] == 'W/"2"'
    assert created["request"] == {"method": "POST", "url": "Patient"}
    assert created["response"] == {"status": "201 Created", "etag": 'W/"1"',
                                   "lastModified": "2024-05-01T12:00:00.000Z"}
    got = links(bundle)
    assert got["next"] == {"_since": "2024-01-01", "_count": "3", "_offset": "3"}
    assert "previous" not in got
    assert bundle["link"][0]["url"].startswith(f"{BASE}/Patient/p1/_history?")


def test_everything_bundle_pages(fhir_examples: Path) -> None:
    patient = example(fhir_examples, "Patient-example.json")
    bundle = everything_bundle([patient], 3, base=BASE, patient_id="example", count=1,
                               offset=1, params=[("_type", "Patient,Observation")])
    assert bundle["type"] == "searchset" and bundle["total"] == 3
    assert bundle["entry"][0]["fullUrl"] == f"{BASE}/Patient/example"
    got = links(bundle)
    assert got["next"] == {"_type": "Patient,Observation", "_count": "1", "_offset": "2"}
    assert got["previous"] == {"_type": "Patient,Observation", "_count": "1"}
    last = everything_bundle([patient], 3, base=BASE, patient_id="example", count=1, offset=2,
                             params=[])
    assert "next" not in links(last)
    assert last["link"][0]["url"].startswith(f"{BASE}/Patient/example/$everything?")
