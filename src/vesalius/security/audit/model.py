"""What one audit record says, and the standard codes it says it with.

An ``AuditRecord`` answers who (``who``, from ``address``), what (``patient`` and the
resource or study ``what``), when (``recorded``), how (``how``: the surface, and the
``type``/``subtype`` of the event), and with what ``outcome``. The codes are the ones FHIR
``AuditEvent`` and DICOM audit messages use:

- event types: DICOM PS3.16 CID 400 "Audit Event ID" (DCM 110100-110114,
  https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_CID_400.html) and
  ``rest`` from https://terminology.hl7.org/CodeSystem-audit-event-type.html for RESTful
  operations (IHE BALP);
- subtypes: FHIR ``restful-interaction`` (https://hl7.org/fhir/R4/valueset-type-restful-interaction.html)
  and DICOM CID 401 "Audit Event Type Code" (DCM 110120…);
- ``action`` and ``outcome``: https://hl7.org/fhir/R4/valueset-audit-event-action.html and
  https://hl7.org/fhir/R4/valueset-audit-event-outcome.html (as in PS3.15 §A.5.1).

Records are stored as plain columns (``columns``/``from_columns``) so that a tampered row is
still readable: the chain is computed over the stored values, not over a parsed object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from vesalius.core.errors import InvalidInput

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"


@dataclass(frozen=True)
class Code:
    """A Coding: https://hl7.org/fhir/R4/datatypes.html#Coding."""

    system: str
    code: str
    display: str


#: Event types (``AuditEvent.type``) by code.
EVENT_TYPES: dict[str, Code] = {c.code: c for c in (
    Code(DCM, "110100", "Application Activity"),
    Code(DCM, "110101", "Audit Log Used"),
    Code(DCM, "110102", "Begin Transferring DICOM Instances"),
    Code(DCM, "110103", "DICOM Instances Accessed"),
    Code(DCM, "110104", "DICOM Instances Transferred"),
    Code(DCM, "110105", "DICOM Study Deleted"),
    Code(DCM, "110106", "Export"),
    Code(DCM, "110107", "Import"),
    Code(DCM, "110108", "Network Entry"),
    Code(DCM, "110109", "Order Record"),
    Code(DCM, "110110", "Patient Record"),
    Code(DCM, "110111", "Procedure Record"),
    Code(DCM, "110112", "Query"),
    Code(DCM, "110113", "Security Alert"),
    Code(DCM, "110114", "User Authentication"),
    Code(AUDIT_EVENT_TYPE, "rest", "RESTful Operation"),
)}

#: Event subtypes (``AuditEvent.subtype``) by code.
SUBTYPES: dict[str, Code] = {c.code: c for c in (
    *(Code(RESTFUL_INTERACTION, code, display) for code, display in (
        ("read", "read"), ("vread", "vread"), ("update", "update"), ("patch", "patch"),
        ("delete", "delete"), ("history", "history"), ("history-instance", "history-instance"),
        ("history-type", "history-type"), ("history-system", "history-system"),
        ("create", "create"), ("search", "search"), ("search-type", "search-type"),
        ("search-system", "search-system"), ("capabilities", "capabilities"),
        ("transaction", "transaction"), ("batch", "batch"), ("operation", "operation"))),
    Code(DCM, "110120", "Application Start"),
    Code(DCM, "110121", "Application Stop"),
    Code(DCM, "110122", "Login"),
    Code(DCM, "110123", "Logout"),
    Code(DCM, "110126", "Node Authentication"),
    Code(DCM, "110127", "Emergency Override Started"),
    Code(DCM, "110132", "Use of Restricted Function"),
    Code(DCM, "110134", "Audit Recording Started"),
)}

#: ``AuditEvent.action``: Create, Read/view, Update, Delete, Execute.
ACTIONS = ("C", "R", "U", "D", "E")
#: ``AuditEvent.outcome``: success, minor failure, serious failure, major failure.
OUTCOMES = {0: "Success", 4: "Minor failure", 8: "Serious failure", 12: "Major failure"}
#: ``how``: the surface the event came through, and the ``AuditEvent.source.type``
#: (https://hl7.org/fhir/R4/valueset-audit-source-type.html) of that surface.
SURFACES = {"fhir": ("3", "Web Server"), "dicomweb": ("3", "Web Server"),
            "web": ("3", "Web Server"), "dimse": ("4", "Application Server"),
            "cli": ("4", "Application Server"), "system": ("4", "Application Server")}


@dataclass(frozen=True)
class AuditRecord:
    """One audited event (a row of the audit log without its chain fields)."""

    recorded: datetime
    type: str
    action: str
    outcome: int
    #: The requestor: a user id, client id or calling AE title.
    who: str
    #: Network address the request came from (IP address or host name); empty if local.
    address: str
    how: str
    #: The installation that recorded the event (``AuditEvent.source.observer``).
    observer: str
    subtype: str = ""
    #: ``Patient/<id>`` of the patient concerned, or empty.
    patient: str = ""
    #: The resource (``Type/<id>``) or DICOM study (its Study Instance UID) concerned, or empty.
    what: str = ""
    outcome_desc: str = ""

    def check(self) -> None:
        """Raise ``InvalidInput`` unless every code is one the tables above define."""
        if self.recorded.tzinfo is None:
            raise InvalidInput("audit records need an aware 'recorded' time")
        for name, value, allowed in (("type", self.type, EVENT_TYPES),
                                     ("action", self.action, ACTIONS),
                                     ("outcome", self.outcome, OUTCOMES),
                                     ("how", self.how, SURFACES)):
            if value not in allowed:
                raise InvalidInput(f"audit record has an unknown {name} {value!r}")
        if self.subtype and self.subtype not in SUBTYPES:
            raise InvalidInput(f"audit record has an unknown subtype {self.subtype!r}")
        if not self.who or not self.observer:
            raise InvalidInput("audit records name who acted and which installation observed it")

    def columns(self) -> dict[str, str | int]:
        """The stored form: ``recorded`` as ISO 8601 UTC with microseconds, the rest as is."""
        out: dict[str, str | int] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["recorded"] = self.recorded.astimezone(UTC).isoformat(timespec="microseconds")
        return out

    @classmethod
    def from_columns(cls, columns: Mapping[str, object]) -> AuditRecord:
        """Read a stored row back (raises ``InvalidInput`` when a column was mangled)."""
        try:
            values = {f.name: columns[f.name] for f in fields(cls)}
            values["recorded"] = datetime.fromisoformat(str(values["recorded"]))
            values["outcome"] = int(str(values["outcome"]))
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"unreadable audit row: {exc}") from exc
        return cls(**values)  # type: ignore[arg-type]


#: Names of the stored columns, in a fixed order.
COLUMNS = tuple(f.name for f in fields(AuditRecord))

