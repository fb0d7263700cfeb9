"""The audit log on a real database: concurrent appends, then tampering with plain SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import MetaData, select, text

from vesalius.config import Settings
from vesalius.database.engine import make_engines
from vesalius.database.write_lock import WriteLock
from vesalius.record.definitions import load
from vesalius.record.validation import Validator
from vesalius.security.audit import AuditRecord, AuditStore, audit_event, open_audit_store
from vesalius.security.audit.store import audit_log

VESALIUS = Path(sys.executable).with_name("vesalius")
THREADS, EACH, EVERY = 6, 5, 10


def _record(worker: int, n: int) -> AuditRecord:
    return AuditRecord(recorded=datetime.now(UTC), type="110110", subtype="read", action="R",
                       outcome=0, who=f"clinician-{worker}", address="192.0.2.10", how="fhir",
                       observer="VESALIUS", patient="Patient/p1", what=f"Observation/{n}")


def _open(settings: Settings) -> AuditStore:
    reader, writer = make_engines(settings)
    return open_audit_store(writer, settings.data_dir, audit_key_file=settings.audit_key_file,
                            checkpoint_every=EVERY, lock=WriteLock(writer), reader=reader)


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VESALIUS_DATABASE_URL": settings.database_url}
    return subprocess.run([str(VESALIUS), "audit", *args, "--data-dir", str(settings.data_dir)],
                          capture_output=True, text=True, timeout=120, env=env)


def _fill(store: AuditStore) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(EACH):
                store.append(_record(worker, n))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_concurrent_appends_are_gapless_and_verify(settings: Settings) -> None:
    store = _open(settings)
    _fill(store)
    sequences = [e.sequence for e in store.entries()]
    assert sequences == list(range(1, THREADS * EACH + 1))
    assert store.head() == (THREADS * EACH, list(store.entries())[-1].mac)
    assert store.verify() == []
    checkpoints = sorted(p.name for p in (settings.data_dir / "audit-checkpoints").iterdir())
    assert checkpoints == [f"{n:020d}.json" for n in range(EVERY, THREADS * EACH + 1, EVERY)]

    done = _cli(settings, "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 problem(s); head at sequence 30" in done.stdout
    made = _cli(settings, "checkpoint")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "audit-checkpoints" in made.stdout

    validator = Validator(load())
    for entry in store.entries():
        event = audit_event(AuditRecord.from_columns(entry.columns), entry.sequence)
        assert [i for i in validator.validate(event) if i["severity"] == "error"] == []


def test_the_key_is_in_no_database_table(settings: Settings) -> None:
    store = _open(settings)
    store.append(_record(0, 0))
    secret = (settings.data_dir / "keys" / "audit.key").read_text().strip()
    assert len(secret) == 64
    reader, _ = make_engines(settings)
    tables = MetaData()
    tables.reflect(reader)
    assert {"audit_log", "audit_head"} <= set(tables.tables)
    with reader.connect() as conn:
        for table in tables.tables.values():
            for row in conn.execute(select(table)):
                assert secret not in repr(tuple(row)), table.name


def test_tampering_is_named_by_sequence_and_kind(settings: Settings) -> None:
    store = _open(settings)
    _fill(store)
    _, writer = make_engines(settings)
    with writer.begin() as conn:
        conn.execute(text("UPDATE audit_log SET who = 'mallory' WHERE sequence = 5"))
        conn.execute(text("DELETE FROM audit_log WHERE sequence = 9"))
        # An attacker with DDL rights lifts the uniqueness to slip a second row 12 in.
        conn.execute(text("DROP INDEX audit_log_sequence"))
        original = conn.execute(select(audit_log).where(audit_log.c.sequence == 12)).one()
        forged = {**original._mapping, "who": "mallory", "mac": "e" * 64}
        del forged["row_id"]
        conn.execute(audit_log.insert().values(**forged))
        conn.execute(text("DELETE FROM audit_log WHERE sequence > 27"))
        conn.execute(text("UPDATE audit_head SET sequence = 27"))
    signed = settings.data_dir / "audit-checkpoints" / f"{10:020d}.json"
    document = json.loads(signed.read_text())
    signed.write_text(json.dumps({**document, "time": "2020-01-01T00:00:00+00:00"}))

    found = [(p.kind, p.sequence) for p in store.verify()]
    assert found == [("checkpoint-forged", 10), ("edited", 5), ("deleted", 9),
                     ("inserted", 12), ("truncated", 28)]

    done = _cli(settings, "verify")
    assert done.returncode == 1, done.stdout + done.stderr
    for line in ("checkpoint-forged at sequence 10", "edited at sequence 5",
                 "deleted at sequence 9", "inserted at sequence 12",
                 "truncated at sequence 28"):
        assert line in done.stdout, done.stdout
