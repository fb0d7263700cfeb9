"""The audit log table and its append-only writer.

``audit_log`` holds one row per record: its ``sequence`` (1, 2, 3… without gaps), the
``previous`` entry's MAC, its own ``mac`` and the record's columns. ``audit_head`` is a single
row holding the last sequence and MAC; every append reads it ``FOR UPDATE`` and moves it in
the same transaction, which serialises writers on PostgreSQL (and on SQLite, where the
caller's write lock queues them first). Appends continue from the head, not from the highest
row, so rows deleted at the tail leave a gap the next append makes visible.

This module only inserts: nothing here updates or deletes audit rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from vesalius.core.errors import Conflict
from vesalius.security.audit.chain import GENESIS, ChainedRecord, chain
from vesalius.security.audit.checkpoints import Checkpoints
from vesalius.security.audit.keys import AuditKey
from vesalius.security.audit.model import COLUMNS, AuditRecord
from vesalius.security.audit.verify import Problem, verify_chain

metadata = MetaData()

audit_log = Table(
    "audit_log", metadata,
    Column("row_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("sequence", BigInteger, nullable=False),
    Column("previous", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
    Column("recorded", String(40), nullable=False),
    Column("type", String(16), nullable=False),
    Column("subtype", String(32), nullable=False),
    Column("action", String(1), nullable=False),
    Column("outcome", Integer, nullable=False),
    Column("who", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("how", String(16), nullable=False),
    Column("observer", Text, nullable=False),
    Column("patient", Text, nullable=False),
    Column("what", Text, nullable=False),
    Column("outcome_desc", Text, nullable=False),
    # Unique so a writer bug cannot fork the chain; verification does not rely on it.
    Index("audit_log_sequence", "sequence", unique=True),
)

audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sequence", BigInteger, nullable=False),
    Column("mac", String(64), nullable=False),
)

LockFactory = Callable[[], AbstractContextManager[object]]


class AuditStore:
    """Append records to the chained log; read it back; checkpoint it; verify it."""

    def __init__(self, engine: Engine, key: AuditKey, checkpoints: Checkpoints, *,
                 lock: LockFactory | None = None, checkpoint_every: int = 1000,
                 reader: Engine | None = None) -> None:
        self._engine = engine
        self._reader = reader or engine
        self._key = key
        self._checkpoints = checkpoints
        self._lock: LockFactory = lock or nullcontext
        self._every = checkpoint_every

    def create(self) -> None:
        """Create the tables and the head row when missing (idempotent, safe to race)."""
        with self._lock():
            metadata.create_all(self._engine)
            try:
                with self._engine.begin() as conn:
                    if conn.execute(select(audit_head.c.id)).first() is None:
                        conn.execute(insert(audit_head).values(id=1, sequence=0, mac=GENESIS))
            except IntegrityError:  # another process inserted it between our check and insert
                pass

    def append(self, record: AuditRecord) -> ChainedRecord:
        """Chain ``record`` after the head and store it (see :meth:`append_many`)."""
        return self.append_many([record])[-1]

    def append_many(self, records: Sequence[AuditRecord]) -> list[ChainedRecord]:
        """Chain ``records`` in order after the head and store them in one transaction; when
        the sequence passes a multiple of ``checkpoint_every`` a signed checkpoint follows the
        commit."""
        if not records:
            return []
        for record in records:
            record.check()
        entries: list[ChainedRecord] = []
        with self._lock(), self._engine.begin() as conn:
            head = conn.execute(select(audit_head.c.sequence, audit_head.c.mac)
                                .where(audit_head.c.id == 1).with_for_update()).first()
            if head is None:
                raise Conflict("the audit log has no head row; run 'vesalius audit verify'")
            sequence, mac = int(head.sequence), str(head.mac)
            for record in records:
                entry = chain(self._key, sequence + 1, mac, record.columns())
                entries.append(entry)
                sequence, mac = entry.sequence, entry.mac
            conn.execute(insert(audit_log), [
                {"sequence": e.sequence, "previous": e.previous, "mac": e.mac, **e.columns}
                for e in entries])
            conn.execute(update(audit_head).where(audit_head.c.id == 1)
                         .values(sequence=sequence, mac=mac))
        first = entries[0].sequence
        if self._every > 0 and sequence // self._every > (first - 1) // self._every:
            self._checkpoints.write(sequence, mac)
        return entries

    def head(self) -> tuple[int, str] | None:
        """(sequence, MAC) of the last entry as the head row says; None without a head row."""
        with self._reader.connect() as conn:
            row = conn.execute(select(audit_head.c.sequence, audit_head.c.mac)
                               .where(audit_head.c.id == 1)).first()
        return None if row is None else (int(row.sequence), str(row.mac))

    def entries(self) -> Iterator[ChainedRecord]:
        """Every stored row in sequence order, columns exactly as stored."""
        query = select(audit_log).order_by(audit_log.c.sequence, audit_log.c.row_id)
        with self._reader.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(query):
                values = row._mapping
                yield ChainedRecord(values["sequence"], values["previous"], values["mac"],
                                    {name: values[name] for name in COLUMNS})

    def search(self, *, since: str | None = None, until: str | None = None,
               patient: str | None = None, who: str | None = None, type: str | None = None,
               subtype: str | None = None, outcome: int | None = None,
               sequence: int | None = None, offset: int = 0, limit: int = 50
               ) -> list[ChainedRecord]:
        """Stored rows matching every given criterion, in sequence order, read-only.

        ``since``/``until``: inclusive bounds on ``recorded`` in its stored form (ISO 8601 UTC
        with microseconds, which orders as text); the others compare exactly.
        """
        column = audit_log.c
        query = select(audit_log)
        if since is not None:
            query = query.where(column.recorded >= since)
        if until is not None:
            query = query.where(column.recorded <= until)
        for name, value in (("patient", patient), ("who", who), ("type", type),
                            ("subtype", subtype), ("outcome", outcome), ("sequence", sequence)):
            if value is not None:
                query = query.where(column[name] == value)
        query = query.order_by(column.sequence, column.row_id).offset(offset).limit(limit)
        with self._reader.connect() as conn:
            return [ChainedRecord(row["sequence"], row["previous"], row["mac"],
                                  {name: row[name] for name in COLUMNS})
                    for row in conn.execute(query).mappings()]

    def checkpoint(self) -> Path:
        """Write a signed checkpoint of the head now."""
        head = self.head()
        if head is None:
            raise Conflict("the audit log has no head row; run 'vesalius audit verify'")
        return self._checkpoints.write(*head)

    def verify(self) -> list[Problem]:
        """Every problem with the stored log (empty when it is intact). Missing tables are
        created first: a dropped log then reads as empty, which the checkpoints contradict."""
        metadata.create_all(self._engine)
        head = self.head()
        return verify_chain(self.entries(), self._key, self._checkpoints.read(),
                            head[0] if head else None)
