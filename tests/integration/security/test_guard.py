"""The guard at the service boundary: what a clinician with a care relationship to one patient
can reach of another's record, through every way a search or write could leak or move data.
Runs on SQLite and PostgreSQL with the node's real record, archive and audit trail."""

from __future__ import annotations

from typing import Any

import pytest

from vesalius.core.errors import Forbidden, NotFound
from vesalius.guard import RecordGuard
from vesalius.node import Node
from vesalius.security.principal import SYSTEM_PRINCIPAL, USER, Principal


def _seed(node: Node) -> dict[str, str]:
    system = node.guard.record(SYSTEM_PRINCIPAL)
    ids: dict[str, str] = {}
    ids["doctor"] = system.create({"resourceType": "Practitioner",
                                   "name": [{"family": "House"}]}).id
    for name in ("A", "B"):
        ids[name] = system.create({"resourceType": "Patient", "name": [{"family": name}]}).id
        ids[f"obs{name}"] = system.create({
            "resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"},
            "subject": {"reference": f"Patient/{ids[name]}"},
            "performer": [{"reference": f"Practitioner/{ids['doctor']}"}]}).id
    system.create({"resourceType": "CareTeam", "status": "active",
                   "subject": {"reference": f"Patient/{ids['A']}"},
                   "participant": [{"member": {"reference": f"Practitioner/{ids['doctor']}"}}]})
    return ids


@pytest.fixture
def world(node: Node) -> tuple[RecordGuard, dict[str, str]]:
    ids = _seed(node)
    doctor = Principal(kind=USER, id="house", roles=frozenset({"clinician"}),
                       practitioner=ids["doctor"])
    return node.guard.record(doctor), ids


def _ids(resources: list[dict[str, Any]]) -> set[str]:
    return {f"{r['resourceType']}/{r['id']}" for r in resources}


def test_searches_count_and_include_only_the_callers_patients(
        world: tuple[RecordGuard, dict[str, str]]) -> None:
    guard, ids = world
    found = guard.search("Observation", [("_total", "accurate")])
    assert found.total == 1 and _ids(found.matches) == {f"Observation/{ids['obsA']}"}
    # _revinclude from the shared Practitioner must not drag in B's observation
    found = guard.search("Practitioner", [("_revinclude", "Observation:performer")])
    assert _ids(found.included) == {f"Observation/{ids['obsA']}"}
    # _include of the subject from a visible observation only ever reaches A
    found = guard.search("Observation", [("_include", "Observation:subject")])
    assert _ids(found.included) == {f"Patient/{ids['A']}"}
    # asking for B by id: an empty result, not an error that confirms B exists
    assert guard.search("Patient", [("_id", ids["B"])]).matches == []
    assert guard.search("Observation", [("subject", f"Patient/{ids['B']}")]).total in (0, None)


def test_reads_everything_and_history_outside_the_patients_are_not_found(
        world: tuple[RecordGuard, dict[str, str]]) -> None:
    guard, ids = world
    assert guard.read("Patient", ids["A"]).id == ids["A"]
    for call in (lambda: guard.read("Patient", ids["B"]),
                 lambda: guard.read("Observation", ids["obsB"]),
                 lambda: guard.vread("Observation", ids["obsB"], "1"),
                 lambda: guard.history("Observation", ids["obsB"]),
                 lambda: guard.everything(ids["B"]),
                 lambda: guard.chart(ids["B"], dicomweb="http://x/dicom-web")):
        with pytest.raises(NotFound):
            call()
    everything, total = guard.everything(ids["A"])
    assert f"Observation/{ids['obsB']}" not in _ids(everything) and total == len(everything)
    with pytest.raises(Forbidden):
        guard.history("Observation")  # type history is not confined per patient


def test_writes_cannot_reach_or_move_into_another_patients_record(
        world: tuple[RecordGuard, dict[str, str]], node: Node) -> None:
    guard, ids = world
    into_b = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
              "subject": {"reference": f"Patient/{ids['B']}"}}
    with pytest.raises(NotFound):
        guard.create(into_b)
    with pytest.raises(NotFound):  # moving A's observation to B
        guard.update("Observation", ids["obsA"], {**into_b, "id": ids["obsA"]})
    with pytest.raises(NotFound):
        guard.patch("Observation", ids["obsA"], [
            {"op": "replace", "path": "/subject/reference", "value": f"Patient/{ids['B']}"}])
    with pytest.raises(NotFound):
        guard.delete("Observation", ids["obsB"])
    with pytest.raises(Forbidden):
        guard.process_bundle({"resourceType": "Bundle", "type": "transaction", "entry": []},
                             base="http://x/fhir")
    # nothing changed for B, and A's observation still belongs to A
    system = node.guard.record(SYSTEM_PRINCIPAL)
    assert system.read("Observation", ids["obsB"]).version == 1
    current = system.read("Observation", ids["obsA"]).resource or {}
    assert current["subject"]["reference"] == f"Patient/{ids['A']}"
    # and the doctor may still write into A's record
    created = guard.create({**into_b, "subject": {"reference": f"Patient/{ids['A']}"}})
    assert created.created


def test_refusals_and_accesses_are_audited(world: tuple[RecordGuard, dict[str, str]],
                                           node: Node) -> None:
    guard, ids = world
    guard.read("Patient", ids["A"])
    with pytest.raises(NotFound):
        guard.read("Patient", ids["B"])
    node.auditor.flush()
    rows = [e.columns for e in node.auditor.store.entries() if e.columns["who"] == "user:house"]
    assert {(r["subtype"], r["outcome"], r["what"]) for r in rows} >= {
        ("read", 0, f"Patient/{ids['A']}"), ("read", 4, f"Patient/{ids['B']}")}
    assert all(r["how"] == "fhir" for r in rows)
