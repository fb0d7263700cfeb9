"""The audit chain, its keys, checkpoints and verification, in memory and on local files."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vesalius.core.errors import InvalidInput, NotFound
from vesalius.record.definitions import load
from vesalius.record.validation import Validator
from vesalius.security.audit import AuditRecord, audit_event
from vesalius.security.audit.chain import GENESIS, ChainedRecord, authentic, canonical, chain
from vesalius.security.audit.checkpoints import Checkpoints
from vesalius.security.audit.keys import (
    AuditKey,
    audit_key_path,
    load_audit_key,
    load_public_key,
    load_signing_key,
)
from vesalius.security.audit.verify import Problem, verify_chain

KEY = AuditKey(bytes(range(32)))
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def record(n: int) -> AuditRecord:
    return AuditRecord(recorded=START + timedelta(seconds=n), type="rest", subtype="read",
                       action="R", outcome=0, who=f"user-{n % 3}", address="10.0.0.7",
                       how="fhir", observer="vesalius.example.org",
                       patient="Patient/p1", what=f"Observation/o{n}")


def log(length: int) -> list[ChainedRecord]:
    entries: list[ChainedRecord] = []
    previous = GENESIS
    for n in range(1, length + 1):
        entries.append(chain(KEY, n, previous, record(n).columns()))
        previous = entries[-1].mac
    return entries


def kinds(problems: list[Problem]) -> list[tuple[str, int]]:
    return [(p.kind, p.sequence) for p in problems]


def test_a_clean_chain_verifies() -> None:
    entries = log(12)
    assert all(authentic(KEY, e) for e in entries)
    assert verify_chain(entries, KEY, [], head=12) == []
    assert verify_chain([], KEY, [], head=0) == []


def test_the_mac_binds_content_place_and_link() -> None:
    first = log(1)[0]
    assert not authentic(AuditKey(bytes(32)), first)
    assert not authentic(KEY, replace(first, sequence=2))
    assert not authentic(KEY, replace(first, previous="1" * 64))
    assert not authentic(KEY, replace(first, columns={**first.columns, "who": "mallory"}))
    # A column whose type changed (e.g. SQLite storing text in an integer column) fails too.
    assert not authentic(KEY, replace(first, columns={**first.columns, "outcome": "0"}))
    assert canonical(1, GENESIS, {"b": 1, "a": "é"}) == (
        '{"a":"é","b":1,"previous":"' + GENESIS + '","sequence":1}').encode()


def test_edited_deleted_and_inserted_rows_are_named() -> None:
    entries = log(15)
    edited = replace(entries[4], columns={**entries[4].columns, "who": "mallory"})
    forged = chain(AuditKey(b"x" * 32), 12, "f" * 64, record(99).columns())
    tampered = [*entries[:4], edited, *entries[5:8], *entries[9:12], forged, *entries[12:]]
    assert kinds(verify_chain(tampered, KEY, [], head=15)) == [
        ("edited", 5), ("deleted", 9), ("inserted", 12)]


def test_an_edited_row_whose_mac_was_also_replaced_is_still_edited() -> None:
    entries = log(6)
    edited = replace(entries[2], columns={**entries[2].columns, "action": "D"}, mac="0" * 64)
    problems = verify_chain([*entries[:2], edited, *entries[3:]], KEY, [], head=6)
    assert kinds(problems) == [("edited", 3)]


def test_a_forged_row_in_a_gap_and_a_range_of_deleted_rows() -> None:
    entries = log(10)
    forged = ChainedRecord(4, "a" * 64, "b" * 64, record(4).columns())
    problems = verify_chain([*entries[:3], forged, *entries[7:]], KEY, [], head=10)
    assert kinds(problems) == [("inserted", 4), ("deleted", 5)]
    assert "sequences 5-7 missing" in str(problems[1])


def test_truncation_is_detected_from_the_head_and_from_checkpoints(tmp_path: Path) -> None:
    entries = log(10)
    signing = load_signing_key(tmp_path, create=True)
    folder = Checkpoints(tmp_path / "cp", signing.public_key(), signing)
    folder.write(10, entries[9].mac)
    problems = verify_chain(entries[:7], KEY, folder.read(), head=7)
    assert kinds(problems) == [("truncated", 8)]
    assert "signed checkpoint says the log reached 10" in str(problems[0])
    assert kinds(verify_chain(entries[:7], KEY, [], head=10)) == [("truncated", 8)]
    assert verify_chain(entries, KEY, folder.read(), head=10) == []


def test_forged_checkpoints_are_named_and_ignored(tmp_path: Path) -> None:
    entries = log(10)
    signing = load_signing_key(tmp_path, create=True)
    folder = Checkpoints(tmp_path / "cp", signing.public_key(), signing)
    genuine = folder.write(5, entries[4].mac)
    document = json.loads(genuine.read_text())
    document["mac"] = entries[3].mac
    genuine.write_text(json.dumps(document))
    (tmp_path / "cp" / f"{20:020d}.json").write_text(
        json.dumps({**document, "sequence": 20}))
    (tmp_path / "cp" / f"{30:020d}.json").write_text("not json")
    with pytest.raises(NotFound):
        Checkpoints(tmp_path / "cp", signing.public_key()).write(6, entries[5].mac)
    problems = verify_chain(entries, KEY, folder.read(), head=10)
    assert kinds(problems) == [("checkpoint-forged", 5), ("checkpoint-forged", 20),
                               ("checkpoint-forged", 30)]


def test_history_rewritten_with_the_key_contradicts_a_checkpoint(tmp_path: Path) -> None:
    entries = log(6)
    signing = load_signing_key(tmp_path, create=True)
    folder = Checkpoints(tmp_path / "cp", signing.public_key(), signing)
    folder.write(4, entries[3].mac)
    rewritten = entries[:2]
    for n in range(3, 7):
        columns = {**record(n).columns(), "who": "mallory"}
        rewritten.append(chain(KEY, n, rewritten[-1].mac, columns))
    assert kinds(verify_chain(rewritten, KEY, folder.read(), head=6)) == [("edited", 4)]


def test_key_files_are_private_generated_once_and_masked(tmp_path: Path) -> None:
    path = audit_key_path(tmp_path)
    assert path == tmp_path / "keys" / "audit.key"
    with pytest.raises(NotFound):
        load_audit_key(path, create=False)
    key = load_audit_key(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    secret = path.read_text().strip()
    assert secret not in repr(key) and repr(key) == "AuditKey(***)"
    assert load_audit_key(path, create=True).mac(b"m") == key.mac(b"m")
    assert audit_key_path(tmp_path, str(tmp_path / "elsewhere.key")) == tmp_path / "elsewhere.key"
    signing = load_signing_key(tmp_path, create=True)
    public = load_public_key(tmp_path / "keys" / "audit-checkpoint.pub.pem")
    assert public.public_bytes_raw() == signing.public_key().public_bytes_raw()
    assert stat.S_IMODE((tmp_path / "keys" / "audit-checkpoint.pem").stat().st_mode) == 0o600
    path.write_text("short\n")
    with pytest.raises(InvalidInput):
        load_audit_key(path, create=False)


def test_records_use_only_the_standard_codes() -> None:
    record(1).check()
    for change in ({"type": "110199"}, {"action": "X"}, {"outcome": 3}, {"how": "smtp"},
                   {"subtype": "read-all"}, {"who": ""},
                   {"recorded": datetime(2026, 1, 1)}):
        with pytest.raises(InvalidInput):
            replace(record(1), **change).check()  # type: ignore[arg-type]
    assert AuditRecord.from_columns(record(7).columns()) == record(7)
    with pytest.raises(InvalidInput):
        AuditRecord.from_columns({**record(7).columns(), "recorded": "yesterday"})


def test_audit_events_are_valid_fhir_in_balp_shape() -> None:
    validator = Validator(load())
    rest = audit_event(record(3), 3)
    study = audit_event(AuditRecord(
        recorded=START, type="110103", action="R", outcome=4, who="MODALITY1",
        address="ct.example.org", how="dimse", observer="VESALIUS", patient="Patient/p1",
        what="1.2.826.0.1.3680043.8.498.1"), 4)
    login = audit_event(AuditRecord(
        recorded=START, type="110114", subtype="110122", action="E", outcome=8, who="alice",
        address="", how="web", observer="VESALIUS", outcome_desc="wrong password"), 5)
    for event in (rest, study, login):
        assert [i for i in validator.validate(event) if i["severity"] == "error"] == []
    assert rest["type"]["code"] == "rest" and rest["subtype"][0]["code"] == "read"
    assert rest["agent"][0]["requestor"] is True
    assert rest["agent"][0]["network"] == {"address": "10.0.0.7", "type": "2"}
    assert [e["what"] for e in rest["entity"]] == [{"reference": "Patient/p1"},
                                                   {"reference": "Observation/o3"}]
    assert study["type"]["system"] == "http://dicom.nema.org/resources/ontology/DCM"
    assert study["entity"][1]["what"]["identifier"]["value"] == (
        "urn:oid:1.2.826.0.1.3680043.8.498.1")
    assert study["agent"][0]["network"]["type"] == "1" and study["outcome"] == "4"
    assert "entity" not in login and login["outcomeDesc"] == "wrong password"
    by_identifier = audit_event(replace(record(1), patient="12.34", what="MRN-7"), 1)
    assert [e["what"] for e in by_identifier["entity"]] == [{"identifier": {"value": "12.34"}},
                                                            {"identifier": {"value": "MRN-7"}}]
    assert [i for i in validator.validate(by_identifier) if i["severity"] == "error"] == []
