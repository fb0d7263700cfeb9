"""How a DICOM patient identity (PatientID + IssuerOfPatientID) appears as a FHIR Identifier.

The same mapping is used by the imaging link (matching studies to Patients) and by the demo
record, so that a Patient's ``identifier`` matches the studies filed under it
(https://hl7.org/fhir/R4/imagingstudy-mappings.html maps PatientID to Patient.identifier).

- empty issuer → ``urn:vesalius:patient-id`` (this installation's own identifier space);
- an OID issuer → ``urn:oid:<issuer>``;
- an issuer that already is a URI (``scheme:…``) → itself;
- any other local namespace → ``urn:vesalius:issuer:<issuer>``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

LOCAL_SYSTEM = "urn:vesalius:patient-id"
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def identifier_system(issuer: str) -> str:
    issuer = issuer.strip()
    if not issuer:
        return LOCAL_SYSTEM
    if _OID.match(issuer):
        return f"urn:oid:{issuer}"
    if _URI.match(issuer):
        return issuer
    return f"urn:vesalius:issuer:{quote(issuer, safe='')}"


def issuer_of(system: str) -> str:
    """The IssuerOfPatientID a FHIR identifier system stands for (inverse of the above)."""
    if system == LOCAL_SYSTEM:
        return ""
    if system.startswith("urn:oid:"):
        return system[len("urn:oid:"):]
    if system.startswith("urn:vesalius:issuer:"):
        return unquote(system[len("urn:vesalius:issuer:"):])
    return system
