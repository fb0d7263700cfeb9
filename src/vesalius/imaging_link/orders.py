"""Imaging orders: FHIR ``ServiceRequest`` → a Modality Worklist scheduled procedure step.

A ServiceRequest is an imaging order when its ``category`` has SNOMED CT 363679005 (Imaging)
or its ``code`` has a DICOM modality coding (https://hl7.org/fhir/R4/servicerequest.html;
https://hl7.org/fhir/R4/imagingstudy-mappings.html maps AccessionNumber to the order's
``identifier`` of type ACSN). An ``active`` order is scheduled once: the AccessionNumber is
the order's ACSN identifier, and an order without one first gets a generated one (≤16
characters, derived from the order's id) written back to it; the resulting event schedules
it. A re-written order whose accession is already on the worklist schedules nothing.

A cancelled order (``revoked``, ``entered-in-error``, or deleted) discontinues its
still-scheduled step, so modalities stop offering it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

from vesalius.core.errors import PreconditionFailed, VesaliusError
from vesalius.imaging_link.mapping import DCM, SNOMED, Resource, accession_identifier, is_accession
from vesalius.imaging_link.patients import (
    dicom_date,
    dicom_identity,
    dicom_sex,
    person_name,
    reference_id,
    with_local_identifier,
)
from vesalius.record.events import ResourceWritten
from vesalius.record.service import RecordService
from vesalius.worklist.service import WorklistService

log = logging.getLogger(__name__)

IMAGING_CATEGORY = "363679005"
#: Order statuses that withdraw a scheduled step (https://hl7.org/fhir/R4/valueset-request-status.html).
CANCELLED = ("revoked", "entered-in-error")
#: System of the accession numbers this installation assigns to orders.
ACCESSION_SYSTEM = "urn:vesalius:accession"


def _codings(concept: Any) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or []) if isinstance(concept, dict) else []


def is_imaging_order(order: Resource) -> bool:
    in_category = any(c.get("system") == SNOMED and c.get("code") == IMAGING_CATEGORY
                      for concept in order.get("category") or [] for c in _codings(concept))
    return in_category or any(c.get("system") == DCM for c in _codings(order.get("code")))


def accession_of(order: Resource) -> str | None:
    for identifier in order.get("identifier") or []:
        if is_accession(identifier) and identifier.get("value"):
            return str(identifier["value"])
    return None


def generated_accession(order_id: str) -> str:
    """A 16-character AccessionNumber (SH) derived from the order's id."""
    return "VS" + hashlib.sha256(order_id.encode()).hexdigest()[:14].upper()


def modality_of(order: Resource) -> str:
    concepts = [order.get("code"), *(order.get("orderDetail") or [])]
    for concept in concepts:
        for coding in _codings(concept):
            if coding.get("system") == DCM and re.fullmatch(r"[A-Z0-9_]{1,16}",
                                                            str(coding.get("code", ""))):
                return str(coding["code"])
    return "OT"


def start_of(order: Resource) -> tuple[str, str]:
    """(DA, TM) of ``occurrenceDateTime`` or ``occurrencePeriod.start``, as written; today
    when the order has no time."""
    value = order.get("occurrenceDateTime") or (order.get("occurrencePeriod") or {}).get("start")
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}", value):
        return dt.datetime.now(dt.UTC).strftime("%Y%m%d"), ""
    time = re.match(r"\d{4}-\d{2}-\d{2}T(\d{2}):(\d{2}):(\d{2})", value)
    return dicom_date(value), "".join(time.groups()) if time else ""


def description_of(order: Resource) -> str:
    code = order.get("code") or {}
    if code.get("text"):
        return str(code["text"])[:64]
    for coding in _codings(code):
        if coding.get("display"):
            return str(coding["display"])[:64]
    return ""


class Orders:
    """Subscriber to the record's events that keeps the worklist in step with imaging orders."""

    def __init__(self, record: RecordService, worklist: WorklistService, *,
                 on_scheduled: Callable[[str], None]) -> None:
        self.record = record
        self.worklist = worklist
        self._on_scheduled = on_scheduled

    def handle(self, event: ResourceWritten) -> None:
        order = event.resource
        if event.resource_type != "ServiceRequest":
            return
        if order is None:
            self._cancel_deleted(event)
            return
        if order.get("status") in CANCELLED and is_imaging_order(order):
            accession = accession_of(order)
            if accession is not None:
                self.worklist.cancel(accession)
            return
        if order.get("status") != "active" or not is_imaging_order(order):
            return
        accession = accession_of(order)
        if accession is None:
            self._assign_accession(event, order)
            return
        if len(accession) > 16 or self.worklist.find([("AccessionNumber", accession)],
                                                     include_done=True):
            return
        patient_id = reference_id(order.get("subject"), "Patient")
        if patient_id is None:
            return
        patient, identity = self._filed_patient(patient_id)
        start_date, start_time = start_of(order)
        description = description_of(order)
        self.worklist.schedule(
            patient_id=identity[0], issuer=identity[1],
            patient_name=person_name(patient) or "UNKNOWN", birth_date=dicom_date(
                patient.get("birthDate")), sex=dicom_sex(patient),
            modality=modality_of(order), start_date=start_date, start_time=start_time,
            accession_number=accession, description=description,
            requested_procedure_description=description)
        self._on_scheduled(accession)

    def _cancel_deleted(self, event: ResourceWritten) -> None:
        """A deleted order's last version names its accession."""
        try:
            last = self.record.vread("ServiceRequest", event.id, str(event.version - 1))
        except VesaliusError:
            return
        accession = accession_of(last.resource or {})
        if accession is not None and is_imaging_order(last.resource or {}):
            self.worklist.cancel(accession)

    def _assign_accession(self, event: ResourceWritten, order: Resource) -> None:
        """Write a generated accession into the order; its own event then schedules it."""
        identifier = {**accession_identifier(generated_accession(event.id)),
                      "system": ACCESSION_SYSTEM}
        updated = {**order, "identifier": [*(order.get("identifier") or []), identifier]}
        try:
            self.record.update("ServiceRequest", event.id, updated,
                               if_match=f'W/"{event.version}"')
        except PreconditionFailed:
            log.info("an imaging order changed meanwhile; its newer version is scheduled")

    def _filed_patient(self, patient_id: str) -> tuple[Resource, tuple[str, str]]:
        """The Patient and its DICOM identity; a Patient with no identifier DICOM can carry
        first gets one in this installation's space (so its studies come back to it)."""
        patient = self.record.read("Patient", patient_id).resource or {}
        identity = dicom_identity(patient)
        if identity is None:
            patient = self.record.update("Patient", patient_id,
                                         with_local_identifier(patient)).resource or {}
            identity = (patient_id, "")
        return patient, identity
