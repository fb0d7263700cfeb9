"""The authorization matrix (issue 5): every HTTP route, each kind of caller, each patient.

The routes come from the app itself (``create_app(node).routes``, into every ``Mount``); the
expectations from the table in ``matrix_cases``. A route the table does not know fails the
test by name, so a new route cannot ship without someone deciding who may call it.

The world: Organizations H (hospital) and P (partner), Practitioners D (H's doctor) and X
(P's doctor); Patient A (general practitioner D), B (no relationship), C (an active privacy
Consent permitting Organization P); an Observation each, a DICOM study for A and B (and one
for C). The callers: the users in ``matrix_cases.PEOPLE`` (clinician2 breaks the glass for
B over HTTP) and a request without a token. Everything runs against the real server on
SQLite and PostgreSQL, with tokens the real ``AuthService`` issues.

Mismatches are collected and reported once as a table, not at the first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind
from starlette.routing import BaseRoute, Mount, Route

from conftest import RunningDicom, RunningServer
from data_factory import make_instance, to_bytes, write
from integration.security.matrix_cases import (
    ALLOW,
    CONFLICT,
    DENY,
    EMPTY,
    HIDDEN,
    PEOPLE,
    TARGETS,
    UNAUTH,
    Outcome,
    build_table,
)
from vesalius.dicom.patient_identity import LOCAL_SYSTEM
from vesalius.security.audit.model import AuditRecord
from vesalius.web.app import create_app

REASON = "Unconscious patient in the emergency department, no registered care relation"
PATIENT_IDS = {"A": "MATRIX-A", "B": "MATRIX-B", "C": "MATRIX-C"}


# -- the world --------------------------------------------------------------------------------

@dataclass
class World:
    server: RunningServer
    tmp: Path
    patient: dict[str, str] = field(default_factory=dict)
    observation: dict[str, str] = field(default_factory=dict)
    #: target → (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID)
    study: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    spare: str = ""
    grant: str = "no-grant"
    org: dict[str, str] = field(default_factory=dict)
    practitioner: dict[str, str] = field(default_factory=dict)

    def create(self, resource: dict[str, Any]) -> str:
        return str(self.server.node.record.create(resource).id)

    def observation_body(self, target: str, *, with_id: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{self.patient[target]}"},
            "valueQuantity": {"value": 72, "unit": "/min"}}
        if with_id:
            body["id"] = self.observation[target]
        return body

    def throwaway_observation(self, target: str) -> str:
        """Something a DELETE may remove without changing the rest of the matrix."""
        return self.create(self.observation_body(target))

    def stow_body(self, target: str, *, same_study: bool) -> dict[str, Any]:
        study = self.study[target][0] if same_study else generate_uid()
        data = to_bytes(make_instance(patient_id=PATIENT_IDS[target], study_uid=study))
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
                + f"\r\n--{boundary}--\r\n".encode())
        return {"content": body, "headers": {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json"}}


def seed(server: RunningServer, tmp: Path) -> World:
    """Everything through the services, as the system."""
    world = World(server, tmp)
    for key, name in (("H", "Hospital"), ("P", "Partner clinic")):
        world.org[key] = world.create({"resourceType": "Organization", "name": name})
    for key in ("D", "X"):
        world.practitioner[key] = world.create({
            "resourceType": "Practitioner", "name": [{"family": f"Doctor{key}"}]})
    for target in TARGETS:
        patient: dict[str, Any] = {
            "resourceType": "Patient", "name": [{"family": f"Matrix{target}"}],
            "identifier": [{"system": LOCAL_SYSTEM, "value": PATIENT_IDS[target]}]}
        if target == "A":
            patient["generalPractitioner"] = [
                {"reference": f"Practitioner/{world.practitioner['D']}"}]
        world.patient[target] = world.create(patient)
        world.observation[target] = world.create(world.observation_body(target))
    world.spare = world.create({"resourceType": "Patient", "name": [{"family": "Spare"}]})
    world.create({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{world.patient['C']}"},
        "dateTime": "2024-01-01T00:00:00Z",
        "provision": {"type": "permit", "actor": [{
            "role": {"coding": [{"system":
                                 "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                 "code": "IRCP"}]},
            "reference": {"reference": f"Organization/{world.org['P']}"}}]}})
    for target in TARGETS:
        ds = make_instance(patient_id=PATIENT_IDS[target], patient_name=f"MATRIX^{target}")
        server.node.archive.store_file(write(ds, tmp))
        world.study[target] = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                               str(ds.SOPInstanceUID))
    return world


def sign_in(world: World) -> dict[str, dict[str, str]]:
    """A bearer token per user in ``PEOPLE``, from the real AuthService."""
    auth = world.server.node.auth
    links: dict[str, dict[str, str]] = {
        "clinician": {"practitioner": world.practitioner["D"], "organization": world.org["H"]},
        "nurse": {"practitioner": world.practitioner["D"], "organization": world.org["H"]},
        "patient-a": {"patient": world.patient["A"]},
        "external": {"practitioner": world.practitioner["X"], "organization": world.org["P"]},
    }
    headers = {}
    for username, person in PEOPLE.items():
        auth.add_user(username, person.roles, password=f"matrix-{uuid.uuid4().hex}",
                      **links.get(username, {}))
        token = auth.issue_token(username, 900)
        headers[username] = {"Authorization": f"Bearer {token}"}
    return headers


def app_routes(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """(method, full path template) of every route, into every Mount."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= app_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in route.methods or ():
                found.add((method, prefix + route.path))
    return found


# -- checking ---------------------------------------------------------------------------------

def classify(response: httpx.Response) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        if code == 204 or (response.request.method != "HEAD"
                           and response.content.strip() in (b"", b"[]")):
            return EMPTY
        return ALLOW
    return {404: HIDDEN, 403: DENY, 401: UNAUTH, 409: CONFLICT}.get(code, code)


def matches(expected: Outcome, response: httpx.Response) -> bool:
    got = classify(response)
    if expected == ALLOW:  # any 2xx; whether lists are filtered is checked separately
        return got in (ALLOW, EMPTY)
    if expected == EMPTY:
        return got == EMPTY or (got == ALLOW and response.request.method == "HEAD")
    return got == expected or (isinstance(expected, int) and response.status_code == expected)


def render(rows: list[tuple[str, str, str, str, str]]) -> str:
    header = ("principal", "method", "path", "expected", "got")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True))
                     for row in [header, *rows])


def _audit(server: RunningServer) -> list[AuditRecord]:
    server.node.auditor.flush()
    return [AuditRecord.from_columns(e.columns) for e in server.node.auditor.store.entries()]


def test_every_route_answers_each_caller_as_the_policy_says(server: RunningServer,
                                                           tmp_path: Path) -> None:
    world = seed(server, tmp_path)
    headers = sign_in(world)
    # No keep-alive: a response the server cuts off must not spoil the next request.
    http = httpx.Client(base_url=server.base, timeout=30.0,
                        limits=httpx.Limits(max_keepalive_connections=0))
    table = build_table()
    problems: list[tuple[str, str, str, str, str]] = []

    # The route table is complete, and names nothing the app does not route.
    routed = app_routes(list(create_app(server.node).routes))
    for method, path in sorted(routed - table.keys):
        problems.append(("-", method, path, "a case in matrix_cases", "route not in table"))
    for method, path in sorted(table.keys - routed):
        problems.append(("-", method, path, "a route of the app", "table entry not routed"))

    # clinician2 breaks the glass for B, over HTTP, with a reason.
    glass = http.post("/api/break-glass", headers=headers["clinician2"],
                      json={"patient": world.patient["B"], "reason": REASON})
    if glass.status_code == 201:
        world.grant = glass.json()["id"]
    else:
        problems.append(("clinician2", "POST", "/api/break-glass", "201",
                         str(glass.status_code)))
        principal = server.node.auth.verify_access_token(
            headers["clinician2"]["Authorization"].removeprefix("Bearer "))
        world.grant = server.node.break_glass.grant(principal, world.patient["B"], REASON,
                                                    60).id

    # Search results are filtered to the caller's patients (before the matrix adds records).
    check_filtered_searches(http, world, headers, problems)

    # Public routes answer without a token (userinfo is itself a protected resource).
    for (method, path), build in sorted(table.public.items()):
        url, kwargs = build(world, "A")
        response = http.request(method, url, **kwargs)
        allowed_401 = path == "/auth/userinfo"
        if response.status_code >= 500 or (response.status_code == 401 and not allowed_401):
            problems.append(("anonymous", method, url, "public", str(response.status_code)))

    for case in table.cases:
        targets = TARGETS if case.per_target else ("A",)
        for target in targets:
            url, kwargs = case.build(world, target)
            if (case.method, case.template) not in table.public:
                try:
                    code = str(http.request(case.method, url, **kwargs).status_code)
                except httpx.TransportError as error:
                    code = f"broken response: {type(error).__name__}"
                if code != "401":
                    problems.append(("anonymous", case.method, url, UNAUTH, code))
            for username, person in PEOPLE.items():
                expected = case.expect(person, target)
                url, kwargs = case.build(world, target)
                extra = kwargs.pop("headers", {})
                try:
                    response = http.request(case.method, url, **kwargs,
                                            headers={**extra, **headers[username]})
                except httpx.TransportError as error:
                    # e.g. a 200 whose body is then cut off because the refusal came late
                    problems.append((username, case.method, url, str(expected),
                                     f"broken response: {type(error).__name__}"))
                    continue
                if not matches(expected, response):
                    problems.append((username, case.method, url, str(expected),
                                     f"{classify(response)} ({response.status_code})"))

    check_audit_trail(server, world, problems)
    http.close()
    assert not problems, f"{len(problems)} mismatches:\n{render(problems)}"


def check_filtered_searches(http: httpx.Client, world: World, headers: dict[str, dict[str, str]],
                            problems: list[tuple[str, str, str, str, str]]) -> None:
    expected = {"clinician": {"A"}, "nurse": {"A"}, "clinician2": {"B"}, "patient-a": {"A"},
                "external": {"C"}, "radiologist": set(TARGETS)}
    for username, targets in expected.items():
        bundle = http.get("/fhir/Observation?_total=accurate&_count=100",
                          headers=headers[username])
        if bundle.status_code != 200:
            problems.append((username, "GET", "/fhir/Observation", "200",
                             str(bundle.status_code)))
            continue
        found = {e["resource"]["id"] for e in bundle.json().get("entry", [])}
        want = {world.observation[t] for t in targets}
        total = bundle.json().get("total")
        if found != want or total != len(want):
            problems.append((username, "GET", "/fhir/Observation?_total=accurate",
                             f"{sorted(targets)} total {len(want)}",
                             f"{sorted(t for t in TARGETS if world.observation[t] in found)}"
                             f" total {total} ({len(found)} entries)"))
        studies = http.get("/dicom-web/studies", headers=headers[username])
        uids = ({s["0020000D"]["Value"][0] for s in studies.json()}
                if studies.status_code == 200 else set())
        want_studies = {world.study[t][0] for t in targets}
        if uids != want_studies:
            problems.append((username, "GET", "/dicom-web/studies", str(sorted(targets)),
                             f"{sorted(t for t in TARGETS if world.study[t][0] in uids)} "
                             f"({studies.status_code}, {len(uids)} studies)"))


def check_audit_trail(server: RunningServer, world: World,
                      problems: list[tuple[str, str, str, str, str]]) -> None:
    records = _audit(server)

    def has(label: str, **want: Any) -> None:
        if not any(all(getattr(r, k) == v for k, v in want.items()) for r in records):
            problems.append(("audit", "-", label, str(want), "no such record"))

    a_obs = f"Observation/{world.observation['A']}"
    b_obs = f"Observation/{world.observation['B']}"
    has("clinician read A", who="user:clinician", type="rest", subtype="read", outcome=0,
        what=a_obs)
    has("clinician read B hidden", who="user:clinician", type="rest", subtype="read",
        outcome=4, what=b_obs)
    has("registration read refused", who="user:registration", type="rest", subtype="read",
        outcome=4, what=a_obs)
    has("clinician2 broke the glass", who="user:clinician2", type="110113", subtype="110127",
        outcome=0, patient=f"Patient/{world.patient['B']}")
    has("clinician2 reads B under the grant", who="user:clinician2", type="rest",
        subtype="read", outcome=0, what=b_obs)
    has("external study A hidden", who="user:external", type="110103", outcome=4,
        what=world.study["A"][0])
    has("registration image view refused", who="user:registration", type="110113", outcome=4)


# -- DIMSE: permissions are per calling AE, not per user ------------------------------------

@pytest.mark.parametrize(("registered", "expected_status"), [
    (True, 0x0000), (False, 0x0124)], ids=["registered-with-find", "unregistered"])
def test_c_find_needs_a_registered_ae_with_find(dicom: RunningDicom, tmp_path: Path,
                                                registered: bool, expected_status: int) -> None:
    ds = make_instance(patient_id="MATRIX-A")
    dicom.archive.store_file(write(ds, tmp_path))
    title = "MATRIXFIND" if registered else "STRANGER"
    if registered:
        dicom.registry.add(title, "127.0.0.1", 11112, permissions=["find"])
    ae = AE(ae_title=title)
    ae.acse_timeout = ae.dimse_timeout = 30
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", dicom.port, ae_title=dicom.ae_title)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    try:
        answers = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    statuses = [int(status.Status) for status, _ in answers if status]
    assert statuses[-1] == expected_status
    matched = [identifier.StudyInstanceUID for status, identifier in answers
               if status and int(status.Status) in (0xFF00, 0xFF01)]
    assert matched == ([ds.StudyInstanceUID] if registered else [])
    dicom.node.auditor.flush()
    records = [AuditRecord.from_columns(e.columns) for e in dicom.node.auditor.store.entries()]
    refused = [r for r in records if r.who == f"ae:{title}" and r.type == "110113"]
    queries = [r for r in records if r.who == f"ae:{title}" and r.type == "110112"]
    assert (len(refused), len(queries)) == ((0, 1) if registered else (1, 0))
