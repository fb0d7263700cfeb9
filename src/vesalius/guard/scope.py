"""Whose records a caller may see: the patient set behind every decision.

``PatientScope`` holds the same answer twice, once per world: FHIR Patient ids for the
record, and the (PatientID, IssuerOfPatientID) identities those Patients are filed under in
the image index (the imaging link's shared mapping, ``dicom.patient_identity``). ``None``
means every patient.

How the set is found depends on ``Policy.patient_access``:

- ``all``: no restriction; ``none``: nobody;
- ``self``: the patient user's own Patient (or the SMART launch patient);
- ``care``: the Patients linked to the user's Practitioner by a CareTeam, Encounter, order,
  episode, appointment or general-practitioner reference (``record.access.related_patients``);
  with an organization-wide role, also the Patients their Organization manages;
- ``consent``: Patients whose active Consent permits disclosure to the user or their
  Organization (``security.consent``; with the ``opt-out`` default, every Patient whose
  Consent does not deny it);

plus, for anyone, the patients of their live break-the-glass grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from vesalius.core.errors import NotFound
from vesalius.dicom.patient_identity import issuer_of
from vesalius.imaging_link.patients import STUDY_PATIENT_SYSTEM
from vesalius.record.access import Visibility
from vesalius.record.service import RecordService
from vesalius.security.consent import Disclosure, decide
from vesalius.security.policy import Policy
from vesalius.security.principal import Principal

PatientKeys = frozenset[tuple[str, str]]


class Grants(Protocol):
    """Live break-the-glass grants (``security.break_glass.BreakGlass``)."""

    def active(self, principal: Principal, now: datetime) -> set[str]: ...


@dataclass(frozen=True)
class PatientScope:
    #: FHIR Patient ids; None: every patient.
    patients: frozenset[str] | None
    #: Image index identities of those patients; None: every patient.
    identities: PatientKeys | None

    def visibility(self, types: frozenset[str] | None) -> Visibility:
        return Visibility(types=types, patients=self.patients)

    def has_patient(self, patient_id: str) -> bool:
        return self.patients is None or patient_id in self.patients

    def has_identity(self, identity: tuple[str, str] | None) -> bool:
        return self.identities is None or (identity is not None and identity in self.identities)


EVERYONE = PatientScope(None, None)


def identities_of(patient: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (PatientID, Issuer) a Patient's current identifiers can be filed under."""
    out = set()
    for identifier in patient.get("identifier") or []:
        value, system = identifier.get("value"), identifier.get("system", "")
        if (not isinstance(value, str) or not value or identifier.get("use") == "old"
                or system == STUDY_PATIENT_SYSTEM):
            continue
        out.add((value, issuer_of(system) if isinstance(system, str) else ""))
    return out


class ScopeResolver:
    def __init__(self, record: RecordService, policy: Policy, break_glass: Grants, *,
                 consent_default: str) -> None:
        self._record = record
        self._policy = policy
        self._break_glass = break_glass
        self._consent_default = consent_default

    def resolve(self, principal: Principal) -> PatientScope:
        access = self._policy.patient_access(principal)
        if access == "all":
            return EVERYONE
        patients: set[str] = set(self._break_glass.active(principal, datetime.now(UTC)))
        if access == "self" and principal.patient:
            patients.add(principal.patient)
        elif access == "care":
            patients |= self._record.related_patients(
                practitioner=principal.practitioner,
                organization=principal.organization
                if self._policy.organization_wide(principal) else None)
        elif access == "consent":
            patients |= self._consented(principal)
        return self.scope_of(patients)

    def scope_of(self, patients: Iterable[str]) -> PatientScope:
        ids = frozenset(patients)
        identities: set[tuple[str, str]] = set()
        for patient_id in ids:
            try:
                resource = self._record.read("Patient", patient_id).resource
            except NotFound:
                continue
            identities |= identities_of(resource or {})
        return PatientScope(ids, frozenset(identities))

    def _consented(self, principal: Principal) -> set[str]:
        """Patients whose Consents let the record be disclosed to this third party."""
        actors = frozenset(ref for ref in (
            f"Practitioner/{principal.practitioner}" if principal.practitioner else None,
            f"Organization/{principal.organization}" if principal.organization else None)
            if ref)
        consents: dict[str, list[dict[str, Any]]] = {}
        offset = 0
        while True:
            page = self._record.search("Consent", [("status", "active"), ("_count", "1000"),
                                                   ("_offset", str(offset))])
            for consent in page.matches:
                ref = (consent.get("patient") or {}).get("reference", "")
                if isinstance(ref, str) and ref.startswith("Patient/"):
                    consents.setdefault(ref.removeprefix("Patient/"), []).append(consent)
            if page.next_offset is None:
                break
            offset = page.next_offset
        disclosure = Disclosure(actor_references=actors, purpose=None, resource_type=None,
                                resource_reference=None, at=datetime.now(UTC))
        permitted = {pid for pid, found in consents.items()
                     if decide(found, disclosure, default=self._consent_default).permitted}
        if self._consent_default == "opt-out":
            denied = set(consents) - permitted
            every = self._all_patients()
            return every - denied
        return permitted

    def _all_patients(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            page = self._record.search("Patient", [("_elements", "id"), ("_count", "1000"),
                                                   ("_offset", str(offset)),
                                                   ("_total", "none")])
            out.update(str(p["id"]) for p in page.matches)
            if page.next_offset is None:
                return out
            offset = page.next_offset
