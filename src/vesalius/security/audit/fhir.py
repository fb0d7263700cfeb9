"""An audit record as a FHIR R4 ``AuditEvent`` in the shape of IHE BALP's basic audit event.

https://hl7.org/fhir/R4/auditevent.html and https://profiles.ihe.net/ITI/BALP/ (the
"basic" content: a client agent that is the requestor with its network address, the server
agent, the observing source, and entities for the patient and for the data touched). A
DICOM study is identified by its Study Instance UID as PS3.15 §A.5.2 does (participant
object ID type DCM 110180).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from vesalius.security.audit.model import (
    DCM,
    EVENT_TYPES,
    OUTCOMES,
    SUBTYPES,
    SURFACES,
    AuditRecord,
    Code,
)

ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
_RELATIVE_REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")
_DICOM_UID = re.compile(r"[0-9]+(\.[0-9]+)+")


def _coding(code: Code) -> dict[str, str]:
    return {"system": code.system, "code": code.code, "display": code.display}


def _network(address: str) -> dict[str, str]:
    """``agent.network``: type 2 for an IP address, 1 for a machine name."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return {"address": address, "type": "1"}
    return {"address": address, "type": "2"}


def _reference(value: str) -> dict[str, Any]:
    """A literal reference for ``Type/id``, else a logical one by identifier."""
    if _RELATIVE_REFERENCE.fullmatch(value):
        return {"reference": value}
    return {"identifier": {"value": value}}


def _entity(what: dict[str, Any], entity_type: Code, role: Code) -> dict[str, Any]:
    return {"what": what, "type": _coding(entity_type), "role": _coding(role)}


def _data_entity(what: str) -> dict[str, Any]:
    """The resource or study touched: a study is named by its Study Instance UID."""
    if _DICOM_UID.fullmatch(what):
        study = {"identifier": {
            "type": {"coding": [_coding(Code(DCM, "110180", "Study Instance UID"))]},
            "system": "urn:dicom:uid", "value": f"urn:oid:{what}"}}
        return _entity(study, Code(ENTITY_TYPE, "2", "System Object"),
                       Code(OBJECT_ROLE, "3", "Report"))
    return _entity(_reference(what), Code(ENTITY_TYPE, "2", "System Object"),
                   Code(OBJECT_ROLE, "4", "Domain Resource"))


def audit_event(record: AuditRecord, sequence: int) -> dict[str, Any]:
    """The ``AuditEvent`` for the audit log entry ``sequence``."""
    client: dict[str, Any] = {
        "type": {"coding": [_coding(Code(DCM, "110153", "Source Role ID"))]},
        "who": {"identifier": {"value": record.who}},
        "requestor": True,
    }
    if record.address:
        client["network"] = _network(record.address)
    server = {
        "type": {"coding": [_coding(Code(DCM, "110152", "Destination Role ID"))]},
        "who": {"display": record.observer},
        "requestor": False,
    }
    source_type, source_display = SURFACES[record.how]
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(sequence),
        "type": _coding(EVENT_TYPES[record.type]),
        "action": record.action,
        "recorded": record.recorded.isoformat(timespec="microseconds"),
        "outcome": str(record.outcome),
        "agent": [client, server],
        "source": {"observer": {"display": record.observer},
                   "type": [_coding(Code(SOURCE_TYPE, source_type, source_display))]},
    }
    if record.subtype:
        event["subtype"] = [_coding(SUBTYPES[record.subtype])]
    if record.outcome_desc:
        event["outcomeDesc"] = record.outcome_desc
    elif record.outcome != 0:
        event["outcomeDesc"] = OUTCOMES[record.outcome]
    entities = []
    if record.patient:
        entities.append(_entity(_reference(record.patient), Code(ENTITY_TYPE, "1", "Person"),
                                Code(OBJECT_ROLE, "1", "Patient")))
    if record.what:
        entities.append(_data_entity(record.what))
    if entities:
        event["entity"] = entities
    return event
