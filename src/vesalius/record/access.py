"""What the record needs to know to confine a caller to some patients' records.

``Visibility`` says which resources a caller may see: the resource types they may read, and
the patients whose compartments they may enter (None: every patient). ``condition`` turns it
into one SQL condition over ``fhir_resources`` that the search engine adds to every query
before counting, paging or ``_include``, so nothing leaks through totals or included
resources. ``patients_of`` answers for one resource (reads and writes).

A resource is in a patient's compartment when one of its compartment parameters
(https://hl7.org/fhir/R4/compartmentdefinition-patient.html) references the Patient; the
Patient resource is in its own. Types outside the compartment definition (Practitioner,
Organization, Medication…) describe no patient: only the type check applies to them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, false, or_, select, true

from vesalius.record.definitions import Definitions
from vesalius.record.schema import resources
from vesalius.record.search.extract import Extractor
from vesalius.record.search.tables import reference_index


@dataclass(frozen=True)
class Visibility:
    #: Resource types the caller may read; None: every type.
    types: frozenset[str] | None
    #: Patient ids whose compartments the caller may enter; None: every patient.
    patients: frozenset[str] | None

    @property
    def unrestricted(self) -> bool:
        return self.types is None and self.patients is None

    def allows(self, resource_type: str, patients: Collection[str], defs: Definitions) -> bool:
        """Whether one resource (of ``resource_type``, in the compartments of ``patients``) is
        visible."""
        if self.types is not None and resource_type not in self.types:
            return False
        if self.patients is None:
            return True
        if resource_type != "Patient" and resource_type not in defs.patient_compartment():
            return True
        return any(p in self.patients for p in patients)


def condition(visibility: Visibility, defs: Definitions) -> ColumnElement[bool] | None:
    """The SQL form of ``visibility`` over ``fhir_resources`` (None when unrestricted)."""
    if visibility.unrestricted:
        return None
    parts: list[ColumnElement[bool]] = []
    if visibility.types is not None:
        if not visibility.types:
            return false()
        parts.append(resources.c.resource_type.in_(sorted(visibility.types)))
    if visibility.patients is not None:
        compartment = defs.patient_compartment()
        allowed = sorted(visibility.patients)
        ref = reference_index.alias()
        member = exists(select(ref.c.resource_pk).where(
            ref.c.resource_pk == resources.c.pk, ref.c.target_type == "Patient",
            ref.c.target_id.in_(allowed),
            or_(*(and_(ref.c.resource_type == t, ref.c.name.in_(names))
                  for t, names in compartment.items()))))
        outside = [t for t in compartment] + ["Patient"]
        parts.append(or_(
            and_(resources.c.resource_type == "Patient", resources.c.id.in_(allowed))
            if allowed else false(),
            and_(resources.c.resource_type != "Patient", member) if allowed else false(),
            resources.c.resource_type.not_in(outside)))
    return and_(true(), *parts)


def patients_of(resource: dict[str, Any], defs: Definitions, extractor: Extractor
                ) -> frozenset[str]:
    """Ids of the Patients in whose compartment ``resource`` is."""
    resource_type = str(resource.get("resourceType", ""))
    if resource_type == "Patient":
        return frozenset({str(resource.get("id", ""))}) if resource.get("id") else frozenset()
    names = set(defs.patient_compartment().get(resource_type, ()))
    if not names:
        return frozenset()
    return frozenset(str(row["target_id"]) for row in extractor.references_of(resource, names)
                     if row["target_type"] == "Patient" and row["target_id"])


#: (resource type, reference parameter to a Practitioner) that make a care relationship with
#: the resource's patient: a care team, an encounter or an order the practitioner is part of.
CARE_LINKS = (("CareTeam", "participant"), ("Encounter", "participant"),
              ("ServiceRequest", "requester"), ("ServiceRequest", "performer"),
              ("EpisodeOfCare", "care-manager"), ("Appointment", "practitioner"))
#: Parameters of those resources that name the patient.
_PATIENT_PARAMS = ("subject", "patient")


def related_patients(conn: Connection, *, practitioner: str | None,
                     organization: str | None) -> frozenset[str]:
    """Ids of the live Patients a practitioner has a care relationship with (a CareTeam,
    Encounter, order, episode or appointment names both, or the Patient names them as general
    practitioner), plus, with ``organization``, the Patients that organization manages."""
    found: set[str] = set()
    live = resources.alias()
    if practitioner:
        link, subject = reference_index.alias(), reference_index.alias()
        query = (select(subject.c.target_id).distinct()
                 .select_from(link.join(subject, subject.c.resource_pk == link.c.resource_pk)
                              .join(live, live.c.pk == link.c.resource_pk))
                 .where(link.c.target_type == "Practitioner", link.c.target_id == practitioner,
                        or_(*(and_(link.c.resource_type == t, link.c.name == n)
                              for t, n in CARE_LINKS)),
                        subject.c.target_type == "Patient",
                        subject.c.name.in_(_PATIENT_PARAMS), live.c.deleted == false()))
        found.update(str(r[0]) for r in conn.execute(query))
    for name, target_type, target in (("general-practitioner", "Practitioner", practitioner),
                                      ("organization", "Organization", organization)):
        if not target:
            continue
        ref = reference_index.alias()
        query = (select(live.c.id).select_from(ref.join(live, live.c.pk == ref.c.resource_pk))
                 .where(ref.c.resource_type == "Patient", ref.c.name == name,
                        ref.c.target_type == target_type, ref.c.target_id == target,
                        live.c.deleted == false()))
        found.update(str(r[0]) for r in conn.execute(query))
    return frozenset(found)
