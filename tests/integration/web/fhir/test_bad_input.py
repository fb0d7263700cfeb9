"""Broken and hostile requests: each gets an OperationOutcome with the right status, never a
stack trace, and what is stored stays as it was (https://hl7.org/fhir/R4/http.html#Status)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from vesalius.config import Settings

Example = Callable[[str], dict[str, Any]]
JSON = {"Content-Type": "application/fhir+json"}
LIMIT = 64 * 1024  # fhir_max_request_bytes of small_limits


@pytest.fixture
def fhir_settings(small_limits: Settings) -> Settings:
    return small_limits


@pytest.fixture
def baseline(fhir: Any, example: Example) -> Iterator[dict[str, Any]]:
    """Organization/1, which every test checks is untouched afterwards."""
    response = fhir.http.put(f"{fhir.base}/Organization/1", json=example("Organization-1.json"),
                             headers=JSON)
    assert response.status_code == 201
    yield response.json()
    after = fhir.http.get(f"{fhir.base}/Organization/1")
    assert after.status_code == 200 and after.json() == response.json()
    assert fhir.http.get(f"{fhir.base}/Organization/1/_history").json()["total"] == 1
    assert fhir.http.get(f"{fhir.base}/Organization", params={"_summary": "count"}).json()[
        "total"] == 1


def outcome_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "Traceback" not in response.text
    return body


def post_raw(fhir: Any, path: str, content: bytes | Iterator[bytes],
             content_type: str = "application/fhir+json") -> httpx.Response:
    return fhir.http.post(f"{fhir.base}/{path}", content=content, timeout=30,
                          headers={"Content-Type": content_type})


def test_malformed_json_names_the_position(fhir: Any, baseline: dict[str, Any]) -> None:
    body = outcome_of(post_raw(fhir, "Organization", b'{"resourceType": "Organization",\n  x}'),
                      400)
    assert "line 2" in body["issue"][0]["diagnostics"]
    outcome_of(post_raw(fhir, "Organization", b"\xff\xfe{}"), 400)
    outcome_of(post_raw(fhir, "Organization", b""), 400)


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None])
def test_body_must_be_an_object(fhir: Any, baseline: dict[str, Any], body: Any) -> None:
    outcome_of(fhir.http.post(f"{fhir.base}/Organization", json=body, headers=JSON), 400)
    outcome_of(fhir.http.put(f"{fhir.base}/Organization/1", json=body, headers=JSON), 400)


def test_resource_type_and_id_must_match_the_url(fhir: Any, baseline: dict[str, Any]) -> None:
    outcome_of(fhir.http.post(f"{fhir.base}/Patient", json=baseline, headers=JSON), 400)
    outcome_of(fhir.http.put(f"{fhir.base}/Patient/1", json=baseline, headers=JSON), 400)
    outcome_of(fhir.http.put(f"{fhir.base}/Organization/2", json=baseline, headers=JSON), 400)
    outcome_of(fhir.http.post(f"{fhir.base}/", json=baseline, headers=JSON), 400)


def test_unknown_type_invalid_id_unknown_paths(fhir: Any, baseline: dict[str, Any]) -> None:
    body = outcome_of(fhir.http.get(f"{fhir.base}/Patients/1"), 404)
    assert body["issue"][0]["code"] == "not-found"
    outcome_of(fhir.http.get(f"{fhir.base}/Organization/{'x' * 65}"), 400)
    outcome_of(fhir.http.get(f"{fhir.base}/Organization/a_b"), 400)
    outcome_of(fhir.http.get(f"{fhir.base}/Organization/1/_history/x_y"), 400)
    outcome_of(fhir.http.get(f"{fhir.base}/Organization/1/a/b/c"), 404)
    outcome_of(fhir.http.post(f"{fhir.base}/Organization/$frobnicate", json={}, headers=JSON), 501)
    outcome_of(fhir.http.post(f"{fhir.base}/Organization/1/$frobnicate", json={},
                              headers=JSON), 501)
    outcome_of(fhir.http.post(f"{fhir.base}/Organization/1", json={}, headers=JSON), 405)
    not_allowed = outcome_of(fhir.http.patch(f"{fhir.base}/Organization", json=[]), 405)
    assert not_allowed["issue"][0]["code"] == "not-supported"


def test_content_negotiation(fhir: Any, baseline: dict[str, Any]) -> None:
    url = f"{fhir.base}/Organization/1"
    outcome_of(fhir.http.get(url, headers={"Accept": "application/fhir+xml"}), 406)
    outcome_of(fhir.http.get(url, params={"_format": "xml"}), 406)
    assert fhir.http.get(url, params={"_format": "json"}).status_code == 200
    plain = fhir.http.get(url, headers={"Accept": "application/json"})
    assert plain.headers["Content-Type"].startswith("application/json")
    browser = fhir.http.get(url, headers={"Accept": "text/html,application/xml;q=0.9,*/*;q=0.8"})
    assert browser.status_code == 200
    pretty = fhir.http.get(url, params={"_pretty": "true"})
    assert pretty.text.startswith('{\n  "resourceType"') and pretty.json() == baseline
    outcome_of(post_raw(fhir, "Organization", b"<Organization/>", "application/fhir+xml"), 415)
    outcome_of(post_raw(fhir, "Organization", b"{}", "text/plain"), 415)


def test_too_large_bodies_are_refused(fhir: Any, baseline: dict[str, Any]) -> None:
    big = b'{"resourceType":"Organization","name":"' + b"a" * LIMIT + b'"}'
    outcome_of(post_raw(fhir, "Organization", big), 413)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the server must count
        yield big[:LIMIT // 2]
        yield big[LIMIT // 2:]

    outcome_of(post_raw(fhir, "Organization", chunked()), 413)
    entries = [{"request": {"method": "GET", "url": "Organization/1"}}] * 6
    body = outcome_of(fhir.http.post(f"{fhir.base}/", headers=JSON, json={
            "resourceType": "Bundle", "type": "batch", "entry": entries}), 413)
    assert "6 entries" in body["issue"][0]["diagnostics"]


def test_nul_and_unpaired_surrogates(fhir: Any, baseline: dict[str, Any]) -> None:
    outcome_of(post_raw(fhir, "Organization",
                        b'{"resourceType":"Organization","name":"a\\u0000b"}'), 400)
    outcome_of(post_raw(fhir, "Organization",
                        b'{"resourceType":"Organization","name":"a\x00b"}'), 400)
    outcome_of(post_raw(fhir, "Organization",
                        b'{"resourceType":"Organization","name":"\\ud800"}'), 400)


def test_huge_numbers(fhir: Any, baseline: dict[str, Any]) -> None:
    for number in (b"1e999", b"-1e999", b"9" * 5000, b"NaN", b"Infinity"):
        outcome_of(post_raw(fhir, "Patient",
                            b'{"resourceType":"Patient","multipleBirthInteger":' + number
                            + b"}"), 400)


def test_deep_nesting_is_refused_before_parsing(fhir: Any, baseline: dict[str, Any]) -> None:
    body = outcome_of(post_raw(fhir, "Organization", b"[" * 30000 + b"]" * 30000), 400)
    assert "nested" in body["issue"][0]["diagnostics"]
    nested = b'{"url":"http://x","extension":[' * 40 + b"{}" + b"]}" * 40
    outcome_of(post_raw(fhir, "Organization",
                        b'{"resourceType":"Organization","extension":[' + nested + b"]}"), 400)
    tricky = b'{"resourceType":"Organization","name":"' + b"[{" * 100 + b'"}'
    created = post_raw(fhir, "Organization", tricky)  # brackets inside strings do not count
    assert created.status_code == 201
    assert fhir.http.delete(f"{fhir.base}/Organization/{created.json()['id']}").status_code == 204


def test_bad_search_and_history_parameters(fhir: Any, baseline: dict[str, Any]) -> None:
    outcome_of(fhir.http.get(f"{fhir.base}/Organization", params={"_count": "many"}), 400)
    outcome_of(fhir.http.get(f"{fhir.base}/_history", params={"_offset": "9" * 30}), 400)
    outcome_of(fhir.http.get(f"{fhir.base}/Organization", params={"_summary": "maybe"}), 400)
