"""The authorization matrix's table: every HTTP route of the app, how to call it, and what
each kind of caller must get back.

The expectations are written from issue 5 and the default roles in ``docs/security.md``, not
computed by ``vesalius.security.policy``: a test that asked the policy what to expect could
never find the policy wrong. ``PEOPLE`` is that hand-written model — who sees which of the
patients A (in the care of Practitioner D), B (nobody's; clinician2 breaks the glass for
it) and C (consented to Organization P), which SMART letters each role holds on the two
types the matrix uses, which image actions and functions.

Outcomes:

- ``ALLOW``: any 2xx;
- ``EMPTY``: 2xx with nothing in it (a QIDO-RS search confined to patients the caller cannot
  see: filtered, not refused);
- ``HIDDEN``: 404 (a record or study outside the caller's patients looks like no record);
- ``DENY``: 403 (the role lacks the type, image action or function);
- ``UNAUTH``: 401 (no token);
- an ``int``: that status exactly (405 for a method a FHIR path does not support, 400 for a
  deliberately incomplete body, 404 for an unknown FHIR path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ALLOW, EMPTY, HIDDEN, DENY, UNAUTH = "allow", "empty", "hidden(404)", "deny(403)", "401"
CONFLICT = "stow-failed(409)"
Outcome = str | int
TARGETS = ("A", "B", "C")
EVERY = frozenset(TARGETS)


@dataclass(frozen=True)
class Person:
    roles: tuple[str, ...]
    #: Which of A, B, C this user may see.
    patients: frozenset[str]
    #: SMART letters on Observation, Patient and on every type ("*").
    observation: str = ""
    patient: str = ""
    every: str = ""
    images: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()

    @property
    def everyone(self) -> bool:
        return self.patients == EVERY


_CLINICAL = dict(observation="cruds", patient="cruds", every="cruds",
                 images=frozenset({"view", "download", "upload", "share"}),
                 functions=frozenset({"break-glass"}))

#: username → what issue 5 and the default roles say that user may do.
PEOPLE: dict[str, Person] = {
    "clinician": Person(("clinician",), frozenset("A"), **_CLINICAL),  # type: ignore[arg-type]
    "clinician2": Person(("clinician",), frozenset("B"), **_CLINICAL),  # type: ignore[arg-type]
    "radiologist": Person(("radiologist",), EVERY, observation="crus", patient="rs",
                          every="rs", images=frozenset({"view", "download", "upload",
                                                        "share"}),
                          functions=frozenset({"break-glass"})),
    "nurse": Person(("nurse",), frozenset("A"), observation="crus", patient="rs", every="rs",
                    images=frozenset({"view"}), functions=frozenset({"break-glass"})),
    "registration": Person(("registration",), EVERY, patient="crus",
                           functions=frozenset({"patient.merge"})),
    "administrator": Person(("administrator",), frozenset(), images=frozenset({"delete"}),
                            functions=frozenset({"users.manage", "imaging-link.problems"})),
    "auditor": Person(("auditor",), frozenset(), functions=frozenset({"audit.read"})),
    "patient-a": Person(("patient",), frozenset("A"), observation="rs", patient="rs",
                        every="rs", images=frozenset({"view", "download"})),
    "external": Person(("external",), frozenset("C"), observation="rs", patient="rs",
                       every="rs", images=frozenset({"view"})),
}

#: (user, target) → expected outcome.
Expect = Callable[[Person, str], Outcome]


# -- expectation rules ------------------------------------------------------------------------

def record(letter: str, kind: str = "observation") -> Expect:
    """A FHIR interaction on one patient's resource: the type first (403), then whose (404)."""
    def expect(person: Person, target: str) -> Outcome:
        if letter not in getattr(person, kind):
            return DENY
        return ALLOW if target in person.patients else HIDDEN
    return expect


def typed(letter: str, kind: str = "observation") -> Expect:
    """A search: the type decides; what is found is filtered (checked separately)."""
    return lambda person, _t: ALLOW if letter in getattr(person, kind) else DENY


def everyone(letter: str, kind: str = "observation") -> Expect:
    """History across resources, conditional writes, batches: the type, and every patient."""
    return lambda person, _t: (ALLOW if letter in getattr(person, kind) and person.everyone
                               else DENY)


def image(action: str) -> Expect:
    """An image action on one study: the action first (403), then whose study (404)."""
    def expect(person: Person, target: str) -> Outcome:
        if action not in person.images:
            return DENY
        return ALLOW if target in person.patients else HIDDEN
    return expect


def upload(person: Person, target: str) -> Outcome:
    """STOW-RS: without the upload right the request is refused (403); an instance of a patient
    outside the caller's is a per-instance failure, which PS3.18 answers with 409 when no
    instance was stored (the patient's existence is not disclosed either way)."""
    if "upload" not in person.images:
        return DENY
    return ALLOW if target in person.patients else CONFLICT


def image_search(person: Person, target: str) -> Outcome:
    """QIDO-RS inside one study: filtered, so another patient's study is simply empty."""
    if "view" not in person.images:
        return DENY
    return ALLOW if target in person.patients else EMPTY


def function(name: str, allowed: Outcome = ALLOW) -> Expect:
    return lambda person, _t: allowed if name in person.functions else DENY


def fixed(outcome: Outcome) -> Expect:
    return lambda _p, _t: outcome


# -- the table --------------------------------------------------------------------------------

#: What a case builder gets: ids of the seeded world and a way to make throwaway things.
World = Any
#: (world, target) → (path with query, httpx request keyword arguments).
Build = Callable[[World, str], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    method: str
    #: The route's path template as the app declares it (``/fhir/{type}/{id}``).
    template: str
    build: Build
    expect: Expect
    #: False: one request, the target does not matter (run with target A).
    per_target: bool = True
    note: str = ""


@dataclass
class Table:
    cases: list[Case] = field(default_factory=list)
    public: dict[tuple[str, str], Build] = field(default_factory=dict)

    def add(self, method: str, template: str, build: Build, expect: Expect, *,
            per_target: bool = True, note: str = "") -> None:
        self.cases.append(Case(method, template, build, expect, per_target, note))

    def fhir(self, template: str, handled: dict[str, tuple[Build, Expect, bool]],
             methods: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                         "OPTIONS")) -> None:
        """A FHIR path: its handled methods, and 405 for every other method it routes."""
        template = "/fhir" + template
        for method in methods:
            if method in handled:
                build, expect, per_target = handled[method]
                self.add(method, template, build, expect, per_target=per_target)
            elif method == "HEAD" and "GET" in handled:
                build, expect, per_target = handled["GET"]
                self.add("HEAD", template, build, expect, per_target=per_target)
            else:
                build = next(iter(handled.values()))[0] if handled else (
                    lambda _w, _t, t=template: (t, {}))
                self.add(method, template, build, fixed(405), per_target=False,
                         note="method not supported on this FHIR path")

    @property
    def keys(self) -> set[tuple[str, str]]:
        return {(c.method, c.template) for c in self.cases} | set(self.public)


def _get(path: str) -> Build:
    return lambda _w, _t: (path, {})


def build_table() -> Table:
    table = Table()
    # Public: anyone may reach these without a token.
    for path in ("/healthz", "/auth/authorize", "/auth/login", "/auth/logout", "/auth/jwks",
                 "/auth/userinfo", "/.well-known/openid-configuration",
                 "/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration",
                 "/fhir/metadata"):
        table.public[("GET", path)] = _get(path)
        table.public[("HEAD", path)] = _get(path)
    for path in ("/auth/login", "/auth/logout", "/auth/token", "/auth/revoke",
                 "/auth/userinfo"):
        table.public[("POST", path)] = lambda _w, _t, p=path: (p, {"data": {}})

    # -- FHIR (https://hl7.org/fhir/R4/http.html) --------------------------------------------
    def obs(w: World, t: str) -> tuple[str, dict[str, Any]]:
        return f"/fhir/Observation/{w.observation[t]}", {}
    table.fhir("/metadata", {"GET": (_get("/fhir/metadata"), fixed(ALLOW), False)})
    table.fhir("/_history", {"GET": (_get("/fhir/_history?_count=1"),
                                     everyone("r", "every"), False)})
    table.fhir("/", {
        "GET": (_get("/fhir/?_type=Observation&_count=1"), typed("s", "every"), False),
        "POST": (lambda w, _t: ("/fhir/", {"json": {
            "resourceType": "Bundle", "type": "batch", "entry": [
                {"request": {"method": "GET", "url": f"Observation/{w.observation['A']}"}}]}}),
                 everyone("c", "every"), False)})
    table.fhir("/{type}/_history", {"GET": (_get("/fhir/Observation/_history?_count=1"),
                                            everyone("r"), False)})
    table.fhir("/{type}/_search", {"POST": (lambda _w, _t: (
        "/fhir/Observation/_search", {"data": {"_count": "1"}}), typed("s"), False)})
    table.fhir("/{type}/$validate", {"POST": (lambda w, t: (
        "/fhir/Observation/$validate", {"json": w.observation_body(t)}), fixed(ALLOW), False)})
    table.fhir("/Patient/$merge", {"POST": (lambda w, t: ("/fhir/Patient/$merge", {"json": {
        "resourceType": "Parameters", "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{w.patient[t]}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{w.spare}"}},
            {"name": "preview", "valueBoolean": True}]}}),
        function("patient.merge"), True)})
    table.fhir("/{type}", {
        "GET": (_get("/fhir/Observation?_count=1"), typed("s"), False),
        "POST": (lambda w, t: ("/fhir/Observation", {"json": w.observation_body(t)}),
                 record("c"), True),
        "PUT": (lambda w, t: ("/fhir/Observation?identifier=urn:matrix|conditional",
                              {"json": w.observation_body(t)}), everyone("u"), False),
        "DELETE": (_get("/fhir/Observation?identifier=urn:matrix|nothing"), everyone("d"),
                   False)})
    table.fhir("/{type}/{id}/_history", {"GET": (lambda w, t: (
        f"/fhir/Observation/{w.observation[t]}/_history", {}), record("r"), True)})
    table.fhir("/{type}/{id}/_history/{vid}", {"GET": (lambda w, t: (
        f"/fhir/Observation/{w.observation[t]}/_history/1", {}), record("r"), True)})
    table.fhir("/{type}/{id}/$validate", {"POST": (lambda w, t: (
        f"/fhir/Observation/{w.observation[t]}/$validate",
        {"json": w.observation_body(t, with_id=True)}), fixed(ALLOW), False)})
    table.fhir("/{type}/{id}/$everything", {"GET": (lambda w, t: (
        f"/fhir/Patient/{w.patient[t]}/$everything", {}), record("r", "patient"), True)})
    table.fhir("/{type}/{id}", {
        "GET": (obs, record("r"), True),
        "PUT": (lambda w, t: (f"/fhir/Observation/{w.observation[t]}",
                              {"json": w.observation_body(t, with_id=True)}),
                record("u"), True),
        "PATCH": (lambda w, t: (f"/fhir/Observation/{w.observation[t]}", {
            "content": b'[{"op": "replace", "path": "/status", "value": "amended"}]',
            "headers": {"Content-Type": "application/json-patch+json"}}), record("u"), True),
        "DELETE": (lambda w, t: (f"/fhir/Observation/{w.throwaway_observation(t)}", {}),
                   record("d"), True),
        "POST": (obs, fixed(405), False)})
    unknown = _get("/fhir/Observation/x/y/z")
    table.fhir("/{rest:path}", {m: (unknown, fixed(404), False)
                                for m in ("GET", "POST", "PUT", "PATCH", "DELETE")})

    # -- DICOMweb (PS3.18) --------------------------------------------------------------------
    s = "/dicom-web/studies/{study}"
    se = s + "/series/{series}"
    i = se + "/instances/{instance}"

    def uids(level: str) -> Build:
        def build(w: World, t: str) -> tuple[str, dict[str, Any]]:
            study, series, sop = w.study[t]
            path = {"s": f"/dicom-web/studies/{study}",
                    "se": f"/dicom-web/studies/{study}/series/{series}",
                    "i": f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"}[level]
            return path, {}
        return build

    def suffix(build: Build, tail: str, **kwargs: Any) -> Build:
        def with_tail(w: World, t: str) -> tuple[str, dict[str, Any]]:
            path, _ = build(w, t)
            return path + tail, dict(kwargs)
        return with_tail

    view = image("view")
    for query_path in ("/studies", "/series", "/instances", "/patients"):
        for method in ("GET", "HEAD"):
            table.add(method, f"/dicom-web{query_path}", _get(f"/dicom-web{query_path}"),
                      typed_images("view"), per_target=False)
    table.add("POST", "/dicom-web/studies",
              lambda w, t: ("/dicom-web/studies", w.stow_body(t, same_study=False)),
              upload)
    table.add("POST", s, lambda w, t: (f"/dicom-web/studies/{w.study[t][0]}",
                                       w.stow_body(t, same_study=True)), upload)
    for method in ("GET", "HEAD"):
        table.add(method, s + "/series", suffix(uids("s"), "/series"), image_search)
        table.add(method, s + "/instances", suffix(uids("s"), "/instances"), image_search)
        table.add(method, se + "/instances", suffix(uids("se"), "/instances"), image_search)
        for tail in ("/frames/1", "/frames/1/rendered", "/frames/1/thumbnail"):
            table.add(method, i + tail.replace("/1", "/{frames}"),
                      suffix(uids("i"), tail, headers={"Accept": "*/*"}), view)
        table.add(method, i + "/bulkdata/{tag}", suffix(uids("i"), "/bulkdata/7FE00010",
                                                         headers={"Accept": "*/*"}),
                  image("download"))
    for level, template in (("s", s), ("se", se), ("i", i)):
        for method in ("GET", "HEAD"):
            table.add(method, template, suffix(uids(level), "", headers={
                "Accept": 'multipart/related; type="application/dicom"'}), image("download"))
            table.add(method, template + "/metadata", suffix(uids(level), "/metadata"), view)
            table.add(method, template + "/rendered", suffix(uids(level), "/rendered"), view)
            table.add(method, template + "/thumbnail", suffix(uids(level), "/thumbnail"), view)
        table.add("DELETE", template, uids(level), image("delete"))

    # -- WADO-URI (PS3.18 chapter 9) and the web app's API ------------------------------------
    for method in ("GET", "HEAD"):
        table.add(method, "/wado", lambda w, t: (
            "/wado?requestType=WADO&studyUID={}&seriesUID={}&objectUID={}".format(*w.study[t]),
            {}), view)
        table.add(method, "/api/patients/{id}/chart", lambda w, t: (
            f"/api/patients/{w.patient[t]}/chart", {}), record("r", "patient"))
        table.add(method, "/api/imaging-link/problems", _get("/api/imaging-link/problems"),
                  function("imaging-link.problems"), per_target=False)
        table.add(method, "/api/break-glass", _get("/api/break-glass"),
                  function("audit.read"), per_target=False)
    # Without a reason: a role that may break the glass gets 400, one that may not 403, and
    # no grant is made that would change the rest of the matrix.
    table.add("POST", "/api/break-glass", lambda w, t: (
        "/api/break-glass", {"json": {"patient": w.patient[t]}}),
        function("break-glass", 400))
    # The audit trail as FHIR AuditEvent: auditors only.
    for method in ("GET", "HEAD"):
        table.add(method, "/fhir/AuditEvent", _get("/fhir/AuditEvent?_count=5"),
                  function("audit.read"), per_target=False)
        table.add(method, "/fhir/AuditEvent/{sequence}", _get("/fhir/AuditEvent/1"),
                  function("audit.read"), per_target=False)
    # Last: clinician2 ends their own grant; anyone else's attempt finds no grant.
    table.add("DELETE", "/api/break-glass/{id}", lambda w, _t: (
        f"/api/break-glass/{w.grant}", {}),
        lambda p, _t: ALLOW if p is PEOPLE["clinician2"] else HIDDEN, per_target=False)
    return table


def typed_images(action: str) -> Expect:
    return lambda person, _t: ALLOW if action in person.images else DENY
