"""Break the glass: the grants (vesalius.security.break_glass) on SQLite and PostgreSQL, and
``/api/break-glass`` (vesalius.web.break_glass) over ASGI with bad and hostile input.

The HTTP tests mount the module's routes on a small Starlette app whose test-only middleware
(``PrincipalFromTestHeader``) stands in for the sign-in middleware: the principal comes from
a header, so each test can act as any role without minting tokens. Everything behind it —
policy, record, grants, audit trail — is the node's real service.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from principal_header import PrincipalFromTestHeader
from vesalius.core.errors import InvalidInput, NotFound
from vesalius.node import Node
from vesalius.security.audit.model import AuditRecord
from vesalius.security.principal import USER, Principal
from vesalius.web.break_glass import routes

ALICE = Principal(kind=USER, id="alice", roles=frozenset({"clinician"}), address="10.0.0.5")
BOB = Principal(kind=USER, id="bob", roles=frozenset({"nurse"}))
REASON = "Unconscious patient in the emergency department, no registered care relation"


def _audit(node: Node) -> list[AuditRecord]:
    node.auditor.flush()
    return [AuditRecord.from_columns(e.columns) for e in node.auditor.store.entries()]


@pytest.fixture
def patient(node: Node) -> str:
    return node.record.create({"resourceType": "Patient", "name": [{"family": "Test"}]}).id


# -- the service ------------------------------------------------------------------------------

def test_a_grant_is_live_for_its_minutes_and_audited_durably(node: Node, patient: str) -> None:
    start = datetime.now(UTC)
    grant = node.break_glass.grant(ALICE, patient, f"  {REASON}  ", 30, now=start)
    assert grant.reason == REASON and grant.who == "user:alice"
    assert grant.expires - grant.started == timedelta(minutes=30)
    # durable: in the store without a flush
    stored = [AuditRecord.from_columns(e.columns) for e in node.auditor.store.entries()]
    alert = [r for r in stored if r.subtype == "110127"]
    assert len(alert) == 1
    assert (alert[0].type, alert[0].action, alert[0].outcome, alert[0].patient,
            alert[0].outcome_desc, alert[0].who, alert[0].address) == (
        "110113", "E", 0, f"Patient/{patient}", REASON, "user:alice", "10.0.0.5")
    assert node.break_glass.active(ALICE, start + timedelta(minutes=29)) == {patient}
    assert node.break_glass.active(ALICE, start + timedelta(minutes=30)) == set()
    assert node.break_glass.active(ALICE, start - timedelta(seconds=1)) == set()
    assert node.break_glass.active(BOB, start + timedelta(minutes=1)) == set()


def test_ending_early_stops_the_grant_and_only_its_holder_may(node: Node, patient: str) -> None:
    grant = node.break_glass.grant(ALICE, patient, REASON, 60)
    with pytest.raises(NotFound):
        node.break_glass.end(BOB, grant.id)
    with pytest.raises(NotFound):
        node.break_glass.end(ALICE, "no-such-grant")
    ended = node.break_glass.end(ALICE, grant.id)
    assert ended.ended_early is not None
    assert node.break_glass.active(ALICE, datetime.now(UTC)) == set()
    assert node.break_glass.end(ALICE, grant.id) == ended  # ending twice changes nothing
    assert sum(r.outcome_desc == "emergency access ended early" for r in _audit(node)) == 1


def test_list_is_newest_first_and_filters_by_start(node: Node, patient: str) -> None:
    then = datetime(2024, 1, 1, tzinfo=UTC)
    old = node.break_glass.grant(ALICE, patient, REASON, 10, now=then)
    new = node.break_glass.grant(BOB, patient, REASON, 10, now=then + timedelta(days=2))
    assert [g.id for g in node.break_glass.list()] == [new.id, old.id]
    assert [g.id for g in node.break_glass.list(then + timedelta(days=1))] == [new.id]


@pytest.mark.parametrize(("patient_id", "reason", "minutes"), [
    ("p1", "too short", 10),
    ("p1", " " * 40, 10),
    ("p1", "x" * 501, 10),
    ("p1", "ten chars\x00 and a NUL", 10),
    ("p1", None, 10),
    ("p1", REASON, 0),
    ("p1", REASON, -5),
    ("p1", REASON, 100_000),
    ("p1", REASON, True),
    ("", REASON, 10),
    ("../etc/passwd", REASON, 10),
    ("p" * 65, REASON, 10),
    ("Patient/a b", REASON, 10),
])
def test_bad_grants_are_refused_and_not_audited(node: Node, patient_id: str, reason: object,
                                                minutes: object) -> None:
    with pytest.raises(InvalidInput):
        node.break_glass.grant(ALICE, patient_id, reason, minutes)  # type: ignore[arg-type]
    assert not any(r.subtype == "110127" for r in _audit(node))
    assert node.break_glass.list() == []


# -- HTTP -------------------------------------------------------------------------------------

@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    app = Starlette(routes=routes)
    app.state.node = node
    with TestClient(PrincipalFromTestHeader(app), raise_server_exceptions=False) as test:
        yield test


def as_user(role: str, user: str = "alice") -> dict[str, str]:
    return {"X-Test-User": f"{user}:{role}"}


@pytest.mark.parametrize("role", ["clinician", "nurse", "radiologist"])
def test_post_grants_for_clinical_roles(client: TestClient, node: Node, patient: str,
                                        role: str) -> None:
    response = client.post("/api/break-glass", json={"patient": patient, "reason": REASON},
                           headers=as_user(role))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["patient"] == patient and body["who"] == "user:alice"
    assert response.headers["location"] == f"/api/break-glass/{body['id']}"
    started = datetime.fromisoformat(body["started"])
    assert datetime.fromisoformat(body["expires"]) - started == timedelta(
        minutes=node.settings.break_glass_minutes)
    assert any(r.subtype == "110127" and r.patient == f"Patient/{patient}"
               for r in _audit(node))


@pytest.mark.parametrize("role", ["auditor", "registration", "patient", "external", "nobody"])
def test_post_is_forbidden_to_other_roles(client: TestClient, node: Node, patient: str,
                                          role: str) -> None:
    response = client.post("/api/break-glass", json={"patient": patient, "reason": REASON},
                           headers=as_user(role))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert node.break_glass.list() == []


def test_post_without_a_principal_is_refused(client: TestClient, patient: str) -> None:
    response = client.post("/api/break-glass", json={"patient": patient, "reason": REASON})
    assert response.status_code == 403


def test_post_for_an_unknown_patient_is_404(client: TestClient, node: Node) -> None:
    response = client.post("/api/break-glass", json={"patient": "nobody-here",
                                                     "reason": REASON},
                           headers=as_user("clinician"))
    assert response.status_code == 404
    assert node.break_glass.list() == []


@pytest.mark.parametrize(("content", "content_type", "status"), [
    (b"", "application/json", 400),
    (b"{", "application/json", 400),
    (b'{"patient": "x", "reason"', "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'"just a string"', "application/json", 400),
    (b"\xff\xfe\x00", "application/json", 400),
    (b"[" * 100_00 + b"]" * 100_00, "application/json", 413),
    (b'{"patient": "P", "reason": "' + b"y" * 20_000 + b'"}', "application/json", 413),
    (b"patient=x&reason=because", "application/x-www-form-urlencoded", 400),
    (b'{"patient": "P", "reason": "a valid reason here"}', "text/plain", 400),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400),
])
def test_post_malformed_bodies(client: TestClient, node: Node, content: bytes,
                               content_type: str, status: int) -> None:
    response = client.post("/api/break-glass", content=content,
                           headers={**as_user("clinician"), "Content-Type": content_type})
    assert response.status_code == status, response.text
    assert node.break_glass.list() == []


@pytest.mark.parametrize("body", [
    {"reason": REASON}, {"patient": None, "reason": REASON}, {"patient": 7, "reason": REASON},
    {"patient": ["p"], "reason": REASON}, {"patient": "a/b/c", "reason": REASON},
    {"patient": "P"}, {"patient": "P", "reason": "short"}, {"patient": "P", "reason": 12345678901},
    {"patient": "P", "reason": "x" * 501}, {"patient": "P", "reason": "bell\x07 in the reason"},
])
def test_post_bad_fields(client: TestClient, node: Node, body: dict[str, object]) -> None:
    response = client.post("/api/break-glass", json=body, headers=as_user("clinician"))
    assert response.status_code == 400, response.text
    assert node.break_glass.list() == []


def test_a_lying_content_length_is_refused(client: TestClient) -> None:
    response = client.post("/api/break-glass", content=b"{}",
                           headers={**as_user("clinician"), "Content-Type": "application/json",
                                    "Content-Length": "99999999"})
    assert response.status_code in (400, 413)


def test_get_lists_grants_for_auditors_only(client: TestClient, node: Node,
                                            patient: str) -> None:
    made = client.post("/api/break-glass", json={"patient": patient, "reason": REASON},
                       headers=as_user("clinician")).json()
    listed = client.get("/api/break-glass", headers=as_user("auditor", "carol"))
    assert listed.status_code == 200 and [g["id"] for g in listed.json()] == [made["id"]]
    assert client.get("/api/break-glass", headers=as_user("clinician")).status_code == 403
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = client.get("/api/break-glass", params={"since": future},
                       headers=as_user("auditor", "carol"))
    assert later.status_code == 200 and later.json() == []
    for params in ({"since": "yesterday"}, {"since": "2024-99-99"}, {"unknown": "1"}):
        response = client.get("/api/break-glass", params=params,
                              headers=as_user("auditor", "carol"))
        assert response.status_code == 400, params


def test_delete_ends_ones_own_grant_only(client: TestClient, node: Node, patient: str) -> None:
    made = client.post("/api/break-glass", json={"patient": patient, "reason": REASON},
                       headers=as_user("clinician")).json()
    other = client.delete(f"/api/break-glass/{made['id']}", headers=as_user("clinician", "eve"))
    assert other.status_code == 404
    assert node.break_glass.active(Principal(kind=USER, id="alice"), datetime.now(UTC)) == {
        patient}
    for bogus in ("nope", "x" * 500, "%00", "..%2F..%2Fetc"):
        assert client.delete(f"/api/break-glass/{bogus}",
                             headers=as_user("clinician")).status_code == 404
    ended = client.delete(f"/api/break-glass/{made['id']}", headers=as_user("clinician"))
    assert ended.status_code == 200 and ended.json()["endedEarly"]
    assert node.break_glass.active(Principal(kind=USER, id="alice"), datetime.now(UTC)) == set()
