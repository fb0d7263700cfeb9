"""The record service on real databases (SQLite and PostgreSQL): versions, history, conditions."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from vesalius.core.errors import (
    Gone,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from vesalius.record.events import ResourceWritten
from vesalius.record.schema import history, resources
from vesalius.record.service import RecordService

MRN = "urn:oid:1.2.36.146.595.217.0.1"


def patient(mrn: str = "12345", family: str = "Chalmers", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}],
            "name": [{"family": family, "given": ["Peter", "James"]}], "gender": "male",
            "birthDate": "1974-12-25", **extra}


def counts(record: RecordService) -> tuple[int, int]:
    with record.reader.connect() as conn:
        return (conn.execute(select(func.count()).select_from(resources)).scalar_one(),
                conn.execute(select(func.count()).select_from(history)).scalar_one())


def test_create_assigns_id_and_version_and_ignores_client_id(record: RecordService) -> None:
    created = record.create({**patient(), "id": "chosen-by-client"})
    assert created.created and created.version == 1 and created.id != "chosen-by-client"
    assert created.etag == 'W/"1"'
    read = record.read("Patient", created.id)
    assert read.resource is not None
    assert read.resource["meta"]["versionId"] == "1"
    assert read.resource["meta"]["lastUpdated"].endswith("Z")
    body = {k: v for k, v in read.resource.items() if k not in ("id", "meta")}
    assert body == patient()


def test_update_versions_and_history(record: RecordService) -> None:
    created = record.create(patient())
    second = record.update("Patient", created.id, {**patient(family="Windsor"), "id": created.id})
    assert second.version == 2 and not second.created
    unchanged = record.update("Patient", created.id, {**patient(family="Windsor"),
                                                        "id": created.id})
    assert unchanged.version == 2 and not unchanged.changed
    assert record.vread("Patient", created.id, "1").resource["name"][0]["family"] == "Chalmers"
    page = record.history("Patient", created.id)
    assert [e.version for e in page.entries] == [2, 1]
    assert [e.method for e in page.entries] == ["PUT", "POST"]


def test_update_as_create_and_id_rules(record: RecordService) -> None:
    made = record.update("Patient", "pat-1", {**patient(), "id": "pat-1"})
    assert made.created and made.version == 1
    with pytest.raises(InvalidInput, match="does not match"):
        record.update("Patient", "pat-1", {**patient(), "id": "other"})
    with pytest.raises(InvalidInput, match="does not match"):
        record.update("Patient", "pat-1", patient())
    with pytest.raises(InvalidInput, match="URL names Patient"):
        record.update("Patient", "pat-1", {"resourceType": "Observation", "id": "pat-1"})
    with pytest.raises(InvalidInput, match="valid resource id"):
        record.update("Patient", "../etc", {**patient(), "id": "../etc"})
    with pytest.raises(NotFound):
        record.update("Nonsense", "x", {"resourceType": "Nonsense", "id": "x"})


def test_if_match_gives_optimistic_locking(record: RecordService) -> None:
    created = record.create(patient())
    record.update("Patient", created.id, {**patient(family="A"), "id": created.id},
                  if_match='W/"1"')
    with pytest.raises(PreconditionFailed):
        record.update("Patient", created.id, {**patient(family="B"), "id": created.id},
                      if_match='W/"1"')
    assert record.read("Patient", created.id).resource["name"][0]["family"] == "A"


def test_concurrent_if_match_updates_have_one_winner(record: RecordService) -> None:
    created = record.create(patient())
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        try:
            record.update("Patient", created.id, {**patient(family=f"F{n}"), "id": created.id},
                          if_match='W/"1"')
            outcomes.append("ok")
        except PreconditionFailed:
            outcomes.append("412")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["412"] * 5 + ["ok"]
    assert record.read("Patient", created.id).version == 2


def test_patch_delete_gone_and_recreate(record: RecordService) -> None:
    created = record.create(patient())
    patched = record.patch("Patient", created.id,
                           [{"op": "replace", "path": "/gender", "value": "female"}])
    assert patched.version == 2 and patched.resource["gender"] == "female"
    for bad in ([{"op": "replace", "path": "/id", "value": "x"}],
                [{"op": "test", "path": "/gender", "value": "male"}],
                [{"op": "frobnicate"}], {"op": "add"}):
        with pytest.raises(InvalidInput):
            record.patch("Patient", created.id, bad)
    with pytest.raises(ValidationFailed):
        record.patch("Patient", created.id,
                     [{"op": "replace", "path": "/gender", "value": "robot"}])
    record.delete("Patient", created.id)
    record.delete("Patient", created.id)  # idempotent
    with pytest.raises(Gone):
        record.read("Patient", created.id)
    with pytest.raises(Gone):
        record.vread("Patient", created.id, "3")
    assert record.vread("Patient", created.id, "2").resource["gender"] == "female"
    again = record.update("Patient", created.id, {**patient(), "id": created.id})
    assert again.version == 4 and again.created
    assert [e.method for e in record.history("Patient", created.id).entries] == \
        ["PUT", "DELETE", "PATCH", "POST"]


def test_invalid_or_dangling_writes_store_nothing(record: RecordService) -> None:
    before = counts(record)
    with pytest.raises(ValidationFailed) as invalid:
        record.create({**patient(), "gender": "robot"})
    assert invalid.value.issues[0]["expression"].startswith("Patient.gender")
    with pytest.raises(ValidationFailed) as dangling:
        record.create({"resourceType": "Observation", "status": "final",
                       "code": {"text": "x"}, "subject": {"reference": "Patient/missing"}})
    assert dangling.value.issues[0]["expression"] == "Observation.subject"
    with pytest.raises(InvalidInput):
        record.create({"resourceType": "NotAType"})
    with pytest.raises(InvalidInput):
        record.create(["not", "an", "object"])
    assert counts(record) == before


def test_conditional_create_update_delete(record: RecordService) -> None:
    first = record.create(patient(), if_none_exist=f"identifier={MRN}|12345")
    again = record.create(patient(), if_none_exist=f"identifier={MRN}|12345")
    assert first.created and not again.created and again.id == first.id
    record.create(patient(mrn="999", family="Other"))
    record.create(patient(mrn="999", family="Twin"))
    with pytest.raises(PreconditionFailed):
        record.create(patient(mrn="999"), if_none_exist=f"identifier={MRN}|999")
    updated = record.conditional_update("Patient", f"identifier={MRN}|12345",
                                        patient(family="Updated"))
    assert updated.id == first.id and updated.version == 2
    new = record.conditional_update("Patient", f"identifier={MRN}|777", patient(mrn="777"))
    assert new.created
    with pytest.raises(PreconditionFailed):
        record.conditional_delete("Patient", f"identifier={MRN}|999")
    assert record.conditional_delete("Patient", f"identifier={MRN}|999", multiple=True) == 2
    assert record.conditional_delete("Patient", f"identifier={MRN}|nobody") == 0
    with pytest.raises(InvalidInput):
        record.conditional_delete("Patient", "")


def test_history_levels_since_and_paging(record: RecordService) -> None:
    ids = [record.create(patient(mrn=str(n))).id for n in range(5)]
    cut = record.read("Patient", ids[2]).last_updated
    record.create({"resourceType": "Organization", "name": "Vesalius General"})
    assert record.history("Patient").total == 5
    assert record.history().total == 6
    assert record.history(since=cut).total == 4
    first = record.history(count=4)
    assert len(first.entries) == 4 and first.next_offset == 4
    rest = record.history(count=4, offset=4)
    assert len(rest.entries) == 2 and rest.next_offset is None
    with pytest.raises(NotFound):
        record.history("Patient", "unknown")


def test_events_follow_commits_only(record: RecordService) -> None:
    seen: list[ResourceWritten] = []
    record.events.subscribe(seen.append)
    created = record.create(patient())
    with pytest.raises(ValidationFailed):
        record.create({**patient(), "birthDate": "1970-13-01"})
    record.delete("Patient", created.id)
    assert [(e.resource_type, e.method, e.version) for e in seen] == \
        [("Patient", "POST", 1), ("Patient", "DELETE", 2)]


def test_reindex_rebuilds_the_search_index(record: RecordService) -> None:
    from vesalius.record.search.tables import TABLES

    ids = [record.create(patient(mrn=f"r{n}", family=f"Re{n}")).id for n in range(3)]
    record.delete("Patient", ids[2])
    with record.writer.begin() as conn:  # lose the index, as an upgrade that changes it would
        for table in TABLES.values():
            conn.execute(table.delete())
    assert record.search("Patient", [("family", "Re")]).total == 0
    assert record.reindex(batch=1) == 2
    found = record.search("Patient", [("family", "Re")])
    assert sorted(m["id"] for m in found.matches) == sorted(ids[:2])
    assert record.reindex() == 2  # idempotent: no duplicate index rows
    assert record.search("Patient", [("identifier", f"{MRN}|r0")]).total == 1
