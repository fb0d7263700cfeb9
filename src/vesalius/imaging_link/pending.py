"""The durable queue of studies whose ImagingStudy must be rebuilt (``imaging_link_pending``).

Claiming is safe with several workers on both backends: on SQLite the claim is one
``BEGIN IMMEDIATE`` transaction (one writer at a time); on PostgreSQL the candidate rows are
locked with ``FOR UPDATE SKIP LOCKED``, so concurrent workers take disjoint rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from vesalius.database.write_lock import WriteLock
from vesalius.imaging_link.tables import metadata, pending

#: A worker that has not finished a study within this time is presumed dead.
CLAIM_LEASE = dt.timedelta(minutes=10)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; everything stored here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Claim:
    study_uid: str
    token: str
    generation: int


class PendingStudies:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = WriteLock(engine)
        metadata.create_all(engine)

    def mark(self, study_uid: str, *, quiet: dt.timedelta) -> None:
        """Queue ``study_uid`` for a rebuild once it has been quiet for ``quiet``."""
        due = utcnow() + quiet
        stmt: Any
        if self.engine.dialect.name == "postgresql":
            stmt = postgresql.insert(pending)
        else:
            stmt = sqlite.insert(pending)
        stmt = stmt.values(study_uid=study_uid, due_at=due, generation=0)
        stmt = stmt.on_conflict_do_update(
            index_elements=[pending.c.study_uid],
            set_={"due_at": stmt.excluded.due_at, "generation": pending.c.generation + 1})
        with self._lock(), self.engine.begin() as conn:
            conn.execute(stmt)

    def claim(self, *, due_only: bool = True, limit: int = 20) -> list[Claim]:
        """Take up to ``limit`` studies no other worker holds (due ones unless ``due_only``)."""
        now = utcnow()
        query = (select(pending.c.study_uid, pending.c.generation)
                 .where(or_(pending.c.claim_token.is_(None), pending.c.claimed_until < now))
                 .order_by(pending.c.due_at).limit(limit))
        if due_only:
            query = query.where(pending.c.due_at <= now)
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        token = uuid4().hex
        with self._lock(), self.engine.begin() as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(update(pending)
                             .where(pending.c.study_uid.in_([r.study_uid for r in rows]))
                             .values(claim_token=token, claimed_until=now + CLAIM_LEASE))
        return [Claim(r.study_uid, token, r.generation) for r in rows]

    def finish(self, claim: Claim) -> None:
        """Drop the row, unless an event arrived during the rebuild: then it stays queued."""
        with self._lock(), self.engine.begin() as conn:
            conn.execute(delete(pending).where(pending.c.study_uid == claim.study_uid,
                                               pending.c.claim_token == claim.token,
                                               pending.c.generation == claim.generation))
            conn.execute(update(pending).where(pending.c.study_uid == claim.study_uid,
                                               pending.c.claim_token == claim.token)
                         .values(claim_token=None, claimed_until=None))

    def release(self, claim: Claim, *, retry_in: dt.timedelta) -> None:
        """Give a study back after a failed rebuild, to be retried later."""
        with self._lock(), self.engine.begin() as conn:
            conn.execute(update(pending).where(pending.c.study_uid == claim.study_uid,
                                               pending.c.claim_token == claim.token)
                         .values(claim_token=None, claimed_until=None,
                                 due_at=utcnow() + retry_in))

    def next_due(self) -> dt.datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.min(pending.c.due_at))
                                 .where(pending.c.claim_token.is_(None))).scalar()
        return None if value is None else _aware(value)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(pending)).scalar_one())
