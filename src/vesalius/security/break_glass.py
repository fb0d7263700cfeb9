"""Break the glass: a time-limited emergency grant to one patient's record.

A clinician who must see a patient outside their care relationship (an unconscious patient
in the emergency department, a consult no one registered) states why and gets that one
patient's record for ``break_glass_minutes``. Nothing is hidden about it: every grant is a
durable Security Alert in the audit trail (DICOM PS3.15 §A.5.3.11, event type DCM 110113 with
subtype DCM 110127 "Emergency Override Started",
https://dicom.nema.org/medical/dicom/current/output/chtml/part15/sect_A.5.3.11.html) carrying
the stated reason, and auditors list the grants (IHE BALP's "security event" use,
https://profiles.ihe.net/ITI/BALP/). Ending a grant early is recorded the same way.

Rows of ``break_glass_grants`` are never deleted; times are ISO 8601 UTC strings with
microseconds, so they compare as text on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Index, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.engine import Engine, RowMapping

from vesalius.core.errors import InvalidInput, NotFound
from vesalius.security.audit.auditor import Auditor
from vesalius.security.principal import Principal

#: Shortest and longest reason a grant needs: long enough to say something, short enough
#: to stay a reason rather than a record.
REASON_MIN, REASON_MAX = 10, 500
#: Longest grant anyone may ask for (minutes).
MAX_MINUTES = 24 * 60
#: FHIR ``id`` (https://hl7.org/fhir/R4/datatypes.html#id).
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: Grant ids are UUIDs; anything else (a NUL byte PostgreSQL refuses, say) is simply not found.
_GRANT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

SECURITY_ALERT = "110113"
EMERGENCY_OVERRIDE_STARTED = "110127"

metadata = MetaData()

break_glass_grants = Table(
    "break_glass_grants", metadata,
    Column("id", String(36), primary_key=True),
    Column("who", Text, nullable=False),
    Column("patient", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("started", String(40), nullable=False),
    Column("expires", String(40), nullable=False),
    Column("ended_early", String(40), nullable=True),
    Index("break_glass_grants_who", "who", "expires"),
    Index("break_glass_grants_started", "started"),
)


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Grant:
    id: str
    #: ``Principal.who`` of the person the grant is for.
    who: str
    #: FHIR Patient id.
    patient: str
    reason: str
    started: datetime
    expires: datetime
    ended_early: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.ended_early is None and self.started <= now < self.expires

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "who": self.who, "patient": self.patient, "reason": self.reason,
                "started": _stamp(self.started), "expires": _stamp(self.expires),
                "endedEarly": _stamp(self.ended_early) if self.ended_early else None}

    @classmethod
    def _from_row(cls, row: RowMapping) -> Grant:
        ended = row["ended_early"]
        return cls(row["id"], row["who"], row["patient"], row["reason"],
                   datetime.fromisoformat(row["started"]), datetime.fromisoformat(row["expires"]),
                   datetime.fromisoformat(ended) if ended else None)


def check_reason(reason: object) -> str:
    """The reason as stored: a string of 10 to 500 characters after trimming, without control
    characters other than line breaks and tabs."""
    if not isinstance(reason, str):
        raise InvalidInput("a break-the-glass reason is text")
    text = reason.strip()
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise InvalidInput(f"a break-the-glass reason has {REASON_MIN} to {REASON_MAX} "
                           "characters")
    if _CONTROL.search(text):
        raise InvalidInput("a break-the-glass reason may not contain control characters")
    return text


def check_patient(patient_id: object) -> str:
    """A FHIR Patient id (``Patient/`` prefix tolerated)."""
    if not isinstance(patient_id, str):
        raise InvalidInput("the patient is a FHIR Patient id")
    bare = patient_id.removeprefix("Patient/")
    if not _FHIR_ID.fullmatch(bare):
        raise InvalidInput("the patient is a FHIR Patient id")
    return bare


class BreakGlass:
    """Emergency grants: create, look up the live ones, end early, list for auditors."""

    def __init__(self, engine: Engine, auditor: Auditor) -> None:
        self._engine = engine
        self._auditor = auditor

    def create(self) -> None:
        metadata.create_all(self._engine)

    def grant(self, principal: Principal, patient_id: str, reason: str, minutes: int,
              *, how: str = "web", now: datetime | None = None) -> Grant:
        """Grant ``principal`` the patient's record for ``minutes``. Whether they may break the
        glass at all is the caller's policy question; the grant is recorded durably before it
        is returned, so no emergency access exists that the audit trail does not show."""
        patient = check_patient(patient_id)
        text = check_reason(reason)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
                1 <= minutes <= MAX_MINUTES):
            raise InvalidInput(f"a grant lasts 1 to {MAX_MINUTES} minutes")
        started = now or datetime.now(UTC)
        grant = Grant(str(uuid.uuid4()), principal.who, patient, text, started,
                      started + timedelta(minutes=minutes))
        self._auditor.record(principal, type=SECURITY_ALERT, subtype=EMERGENCY_OVERRIDE_STARTED,
                             action="E", outcome=0, how=how, patient=patient,
                             outcome_desc=text, durable=True)
        with self._engine.begin() as conn:
            conn.execute(insert(break_glass_grants).values(
                id=grant.id, who=grant.who, patient=grant.patient, reason=grant.reason,
                started=_stamp(grant.started), expires=_stamp(grant.expires),
                ended_early=None))
        return grant

    def active(self, principal: Principal, now: datetime) -> set[str]:
        """Patient ids ``principal`` holds a live grant for."""
        stamp = _stamp(now)
        query = (select(break_glass_grants.c.patient)
                 .where(break_glass_grants.c.who == principal.who,
                        break_glass_grants.c.expires > stamp,
                        break_glass_grants.c.started <= stamp,
                        break_glass_grants.c.ended_early.is_(None)))
        with self._engine.connect() as conn:
            return {str(row.patient) for row in conn.execute(query)}

    def get(self, grant_id: str) -> Grant:
        if not isinstance(grant_id, str) or not _GRANT_ID.fullmatch(grant_id):
            raise NotFound("no such break-the-glass grant")
        with self._engine.connect() as conn:
            row = conn.execute(select(break_glass_grants)
                               .where(break_glass_grants.c.id == grant_id)).mappings().first()
        if row is None:
            raise NotFound("no such break-the-glass grant")
        return Grant._from_row(row)

    def end(self, principal: Principal, grant_id: str, *, how: str = "web",
            now: datetime | None = None) -> Grant:
        """End one of ``principal``'s own grants now. Someone else's grant is not found (it is
        none of their business); ending one that is over already changes nothing."""
        grant = self.get(grant_id)
        if grant.who != principal.who:
            raise NotFound("no such break-the-glass grant")
        moment = now or datetime.now(UTC)
        if not grant.live(moment):
            return grant
        with self._engine.begin() as conn:
            conn.execute(update(break_glass_grants)
                         .where(break_glass_grants.c.id == grant.id,
                                break_glass_grants.c.ended_early.is_(None))
                         .values(ended_early=_stamp(moment)))
        self._auditor.record(principal, type=SECURITY_ALERT, action="E", outcome=0, how=how,
                             patient=grant.patient, outcome_desc="emergency access ended early")
        return self.get(grant.id)

    def list(self, since: datetime | None = None, *, limit: int = 1000) -> list[Grant]:
        """Grants started at or after ``since`` (all by default), newest first."""
        query = select(break_glass_grants).order_by(break_glass_grants.c.started.desc(),
                                                    break_glass_grants.c.id).limit(limit)
        if since is not None:
            query = query.where(break_glass_grants.c.started >= _stamp(since))
        with self._engine.connect() as conn:
            return [Grant._from_row(row) for row in conn.execute(query).mappings()]
