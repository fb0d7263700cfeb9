"""What the imaging link could not do for a study, kept until a later rebuild succeeds.

Each problem has the shape of an OperationOutcome issue
(https://hl7.org/fhir/R4/operationoutcome.html) so an edge can report it as one. Logs name
no patient data; the study is identified here, in the database, where access is controlled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from vesalius.database.write_lock import WriteLock
from vesalius.imaging_link.tables import metadata, problems


@dataclass(frozen=True)
class LinkProblem:
    study_uid: str
    severity: str
    code: str
    diagnostics: str
    at: dt.datetime

    @property
    def issue(self) -> dict[str, str]:
        """As an OperationOutcome issue (codes: https://hl7.org/fhir/R4/valueset-issue-type.html)."""
        return {"severity": self.severity, "code": self.code,
                "diagnostics": f"study {self.study_uid}: {self.diagnostics}"}


class Problems:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = WriteLock(engine)
        metadata.create_all(engine)

    def record(self, study_uid: str, *, code: str, diagnostics: str,
               severity: str = "error") -> None:
        values = {"study_uid": study_uid, "severity": severity, "code": code,
                  "diagnostics": diagnostics, "at": dt.datetime.now(dt.UTC)}
        stmt: Any = (postgresql.insert(problems) if self.engine.dialect.name == "postgresql"
                     else sqlite.insert(problems)).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=[problems.c.study_uid], set_=values)
        with self._lock(), self.engine.begin() as conn:
            conn.execute(stmt)

    def clear(self, study_uid: str) -> None:
        with self._lock(), self.engine.begin() as conn:
            conn.execute(delete(problems).where(problems.c.study_uid == study_uid))

    def all(self) -> list[LinkProblem]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(problems).order_by(problems.c.at)).all()
        return [LinkProblem(r.study_uid, r.severity, r.code, r.diagnostics,
                            r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)) for r in rows]
