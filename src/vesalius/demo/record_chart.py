"""Building blocks of the demo record: a transaction Bundle under construction, and codings.

Every entry is a conditional create (https://hl7.org/fhir/R4/http.html#ccreate): it carries an
identifier in :data:`DEMO_SYSTEM` and ``request.ifNoneExist`` on it, so posting the Bundle twice
stores nothing new. ``fullUrl`` is a UUID derived from that identifier
(https://hl7.org/fhir/R4/bundle.html#references), so the same call gives the same Bundle.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import quote

from vesalius.demo.common import DemoPatient

Resource = dict[str, Any]

DEMO_SYSTEM = "urn:vesalius:demo"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

# Fixed forever: changing it would give every demo resource a new fullUrl.
_NAMESPACE = uuid.UUID("0b6f5a1e-3c2d-5e8f-9a17-4d6c2b8e1f30")


def coding(system: str, code: str, display: str) -> Resource:
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str, display: str, text: str | None = None) -> Resource:
    """A CodeableConcept with one coding (https://hl7.org/fhir/R4/datatypes.html#CodeableConcept)."""
    value: Resource = {"coding": [coding(system, code, display)]}
    if text:
        value["text"] = text
    return value


def quantity(value: float, unit: str) -> Resource:
    """A UCUM Quantity, the unit shown as its UCUM code."""
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def instant(day: str, time: str = "09:00:00") -> str:
    """A FHIR ``dateTime``/``instant`` (time zone required when a time is given)."""
    return f"{day}T{time}Z"


def jitter(key: str, scale: float) -> float:
    """Deterministic noise in ``[-scale, scale]`` that depends only on ``key``.

    A hash rather than a random generator, so adding a value never shifts the others.
    """
    fraction = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64
    return (2.0 * fraction - 1.0) * scale


class Chart:
    """The demo patient's record as a list of transaction entries."""

    def __init__(self, patient: DemoPatient) -> None:
        self.patient = patient
        self.entries: list[Resource] = []

    def _value(self, key: str, shared: bool) -> str:
        if shared:
            return key
        return f"{self.patient.issuer}/{self.patient.patient_id}/{key}"

    def url(self, resource_type: str, key: str, *, shared: bool = False) -> str:
        """The ``fullUrl`` of the entry that :meth:`add` made (or will make) for ``key``."""
        name = f"{resource_type}|{self._value(key, shared)}"
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, name)}"

    def ref(self, resource_type: str, key: str, *, shared: bool = False) -> Resource:
        return {"reference": self.url(resource_type, key, shared=shared)}

    @property
    def patient_ref(self) -> Resource:
        return self.ref("Patient", "patient")

    def add(
        self,
        resource_type: str,
        key: str,
        body: Resource,
        *,
        shared: bool = False,
        identifier: Resource | None = None,
    ) -> Resource:
        """Add a conditional create of ``body`` and return a Reference to it.

        ``shared`` resources (the hospital and its staff) are the same for every demo
        patient. ``identifier`` replaces the demo identifier as the one the create is
        conditional on (the Patient's DICOM identity).
        """
        if identifier is None:
            identifier = {"system": DEMO_SYSTEM, "value": self._value(key, shared)}
            others = {k: v for k, v in body.items() if k != "identifier"}
            body = {"identifier": [identifier, *body.get("identifier", [])], **others}
        criteria = quote(f"{identifier['system']}|{identifier['value']}", safe=":/|")
        self.entries.append({
            "fullUrl": self.url(resource_type, key, shared=shared),
            "resource": {"resourceType": resource_type, **body},
            "request": {
                "method": "POST",
                "url": resource_type,
                "ifNoneExist": f"identifier={criteria}",
            },
        })
        return self.ref(resource_type, key, shared=shared)
