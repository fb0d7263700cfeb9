"""``/fhir/AuditEvent`` (vesalius.web.audit_events): the audit trail for auditors as a FHIR
searchset, on SQLite and PostgreSQL, with hostile parameters.

The routes are mounted on a small Starlette app whose test-only middleware
(``PrincipalFromTestHeader``) stands in for the sign-in middleware; the policy, the audit
store and the auditor behind it are the node's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from principal_header import PrincipalFromTestHeader
from vesalius.node import Node
from vesalius.security.audit.model import AuditRecord
from vesalius.security.principal import AE, USER, Principal
from vesalius.web.audit_events import routes

AUDITOR = {"X-Test-User": "carol:auditor"}
CT = Principal(kind=AE, id="CT1", address="10.1.1.1")
ALICE = Principal(kind=USER, id="alice", roles=frozenset({"clinician"}))


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    app = Starlette(routes=routes)
    app.state.node = node
    app.state.settings = node.settings  # as create_app sets it
    with TestClient(PrincipalFromTestHeader(app), raise_server_exceptions=False) as test:
        yield test


@pytest.fixture
def events(node: Node) -> list[AuditRecord]:
    """Five events: CT1 imports and queries, alice reads two patients' records."""
    for outcome in (0, 4):
        node.auditor.record(CT, type="110107", action="C", outcome=outcome, how="dimse",
                            what="1.2.3.4")
    node.auditor.record(CT, type="110112", action="E", outcome=0, how="dimse")
    node.auditor.record(ALICE, type="rest", subtype="read", action="R", outcome=0, how="fhir",
                        patient="p1", what="Observation/o1")
    node.auditor.record(ALICE, type="rest", subtype="read", action="R", outcome=0, how="fhir",
                        patient="p2", what="Observation/o2")
    node.auditor.flush()
    return [AuditRecord.from_columns(e.columns) for e in node.auditor.store.entries()]


def search(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/fhir/AuditEvent", params=params, headers=AUDITOR)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    return body


def ids(bundle: dict[str, Any]) -> list[int]:
    return [int(e["resource"]["id"]) for e in bundle.get("entry", [])]


def test_search_returns_balp_audit_events(client: TestClient, events: list[AuditRecord]
                                          ) -> None:
    bundle = search(client)
    assert ids(bundle)[:5] == [1, 2, 3, 4, 5]
    first = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "AuditEvent" and first["type"]["code"] == "110107"
    assert first["agent"][0]["who"]["identifier"]["value"] == "ae:CT1"
    assert bundle["entry"][0]["fullUrl"].endswith("/fhir/AuditEvent/1")


@pytest.mark.parametrize(("params", "expected"), [
    ({"patient": "p1"}, [4]), ({"patient": "Patient/p2"}, [5]), ({"patient": "p3"}, []),
    ({"agent": "ae:CT1"}, [1, 2, 3]), ({"type": "110112"}, [3]),
    ({"type": "http://dicom.nema.org/resources/ontology/DCM|110107"}, [1, 2]),
    ({"subtype": "read"}, [4, 5]), ({"outcome": "4"}, [2]),
    ({"agent": "user:alice", "patient": "p2"}, [5]),
])
def test_search_filters(client: TestClient, events: list[AuditRecord],
                        params: dict[str, str], expected: list[int]) -> None:
    assert ids(search(client, **params)) == expected


def test_search_by_date(client: TestClient, events: list[AuditRecord]) -> None:
    today = events[0].recorded.date().isoformat()
    assert ids(search(client, date=today))[:5] == [1, 2, 3, 4, 5]
    assert ids(search(client, date="2001")) == []
    third = events[2].recorded
    after = ids(search(client, date=f"gt{third.isoformat()}"))
    assert after[:2] == [4, 5] and 3 not in after
    assert ids(search(client, date=f"le{third.isoformat()}")) == [1, 2, 3]
    assert ids(search(client, date=f"lt{third.isoformat()}")) == [1, 2]
    tomorrow = (third + timedelta(days=1)).date().isoformat()
    both = client.get("/fhir/AuditEvent", headers=AUDITOR,
                      params=[("date", f"ge{today}"), ("date", f"lt{tomorrow}"),
                              ("agent", "ae:CT1")])
    assert ids(both.json()) == [1, 2, 3]


def test_paging_follows_next_links(client: TestClient, events: list[AuditRecord]) -> None:
    seen: list[int] = []
    bundle = search(client, _count="2", agent="user:alice")
    bundle_count = 0
    while True:
        bundle_count += 1
        seen += ids(bundle)
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        path = following[0][following[0].index("/fhir/"):]
        bundle = client.get(path, headers=AUDITOR).json()
    assert seen == [4, 5] and bundle_count == 1
    everything = [*ids(search(client, _count="2")), *ids(search(client, _count="2",
                                                                 _offset="2"))]
    assert everything == [1, 2, 3, 4]
    assert ids(search(client, _count="0")) == []


def test_read_one_event(client: TestClient, events: list[AuditRecord]) -> None:
    response = client.get("/fhir/AuditEvent/4", headers=AUDITOR)
    assert response.status_code == 200
    event = response.json()
    assert event["id"] == "4" and event["entity"][0]["what"]["reference"] == "Patient/p1"
    for missing in ("999", "0", "abc", "1.5", "-1", "9" * 40, "%00", "%C3%A9"):
        answer = client.get(f"/fhir/AuditEvent/{missing}", headers=AUDITOR)
        assert answer.status_code == 404, missing
        assert answer.json()["resourceType"] == "OperationOutcome"


def test_reading_the_trail_is_audited(client: TestClient, node: Node,
                                      events: list[AuditRecord]) -> None:
    search(client, agent="ae:CT1")
    client.get("/fhir/AuditEvent/2", headers=AUDITOR)
    node.auditor.flush()
    used = [AuditRecord.from_columns(e.columns) for e in node.auditor.store.entries()
            if e.columns["type"] == "110101"]
    assert [(u.who, u.action, u.what) for u in used] == [
        ("user:carol", "R", "AuditEvent"), ("user:carol", "R", "AuditEvent/2")]


@pytest.mark.parametrize("role", ["clinician", "nurse", "radiologist", "patient", "external",
                                  "registration"])
def test_others_are_forbidden(client: TestClient, node: Node, events: list[AuditRecord],
                              role: str) -> None:
    for path in ("/fhir/AuditEvent", "/fhir/AuditEvent/1"):
        response = client.get(path, headers={"X-Test-User": f"mallory:{role}"})
        assert response.status_code == 403
        assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/AuditEvent").status_code == 403  # not signed in at all
    node.auditor.flush()
    assert not any(e.columns["type"] == "110101" for e in node.auditor.store.entries())


@pytest.mark.parametrize("params", [
    {"name": "x"}, {"_sort": "date"}, {"date": "yesterday"}, {"date": "2024-13-01"},
    {"date": "ne2024"}, {"date": "ge2024-02-30"}, {"date": "x" * 5000},
    {"patient": "a/b"}, {"patient": "p" * 100}, {"patient": ""}, {"agent": ""},
    {"agent": "x" * 1000}, {"type": "999999"}, {"subtype": "teleport"}, {"outcome": "3"},
    {"outcome": "abc"}, {"outcome": "-0"}, {"_count": "1001"}, {"_count": "-1"},
    {"_count": "ten"}, {"_count": "9" * 30}, {"_offset": "-5"}, {"_offset": "1" * 30},
    {"_offset": "٣"},
])
def test_bad_parameters_are_400(client: TestClient, events: list[AuditRecord],
                                params: dict[str, str]) -> None:
    response = client.get("/fhir/AuditEvent", params=params, headers=AUDITOR)
    assert response.status_code == 400, (params, response.text)
    assert response.json()["resourceType"] == "OperationOutcome"


def test_repeated_single_parameters_are_400(client: TestClient) -> None:
    response = client.get("/fhir/AuditEvent", headers=AUDITOR,
                          params=[("patient", "a"), ("patient", "b")])
    assert response.status_code == 400


def test_a_date_window_with_no_room_is_empty(client: TestClient,
                                             events: list[AuditRecord]) -> None:
    now = datetime.now(UTC)
    assert ids(search(client, date=[f"gt{now.isoformat()}",  # type: ignore[arg-type]
                                    f"lt{(now - timedelta(days=1)).isoformat()}"])) == []
