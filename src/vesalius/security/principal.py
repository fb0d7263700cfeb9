"""Who is calling: the one object every edge builds and every service decision reads.

Edges (HTTP middleware, the DIMSE handlers, the CLI) authenticate a caller and build a
:class:`Principal`; services hand it to the pure policy functions in
:mod:`vesalius.security.policy` and to the audit trail. A principal never carries secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: Kinds of caller.
USER = "user"          # a person signed in (local account or external identity provider)
CLIENT = "client"      # a service signed in with client credentials (SMART backend services)
AE = "ae"              # a DICOM application entity on an association
SYSTEM = "system"      # Vesalius itself (imaging link, demo loader, server-side CLI actions)

#: Roles known to the default policy (``policy_file`` may add more). ``system`` is for trusted
#: backend services (client credentials) that act for the whole installation.
ROLES = ("clinician", "radiologist", "nurse", "registration", "administrator", "auditor",
         "patient", "external", "system")


@dataclass(frozen=True)
class Principal:
    kind: str
    #: Username, client id, AE title or component name; unique within ``kind`` and issuer.
    id: str
    roles: frozenset[str] = frozenset()
    #: SMART scopes granted to the token (``patient/*.rs``, ``user/Observation.cruds``,
    #: ``system/*.rs``…). Empty for callers that are not token-scoped (AEs, the system).
    scopes: frozenset[str] = frozenset()
    #: FHIR Patient id: the patient a patient user is, or a SMART ``launch/patient`` context.
    patient: str | None = None
    #: FHIR Practitioner id of a clinical user (care relationships are found through it).
    practitioner: str | None = None
    #: FHIR Organization id the user works for (organization-wide access, consent actors).
    organization: str | None = None
    #: Network address the call came from.
    address: str = ""
    #: Token id or session id the call was made with (for revocation and the audit trail).
    session: str | None = None
    #: Who vouched for the identity: ``local`` or an external issuer URL.
    issuer: str = "local"
    #: Display name for audit records and the UI.
    name: str = field(default="", compare=False)

    @property
    def who(self) -> str:
        """The audit trail's ``who``: ``user:alice``, ``client:pacs-bridge``, ``ae:CT1``…"""
        prefix = self.kind if self.issuer == "local" else f"{self.kind}@{self.issuer}"
        return f"{prefix}:{self.id}"

    def with_address(self, address: str) -> Principal:
        return replace(self, address=address)


#: Vesalius acting on its own behalf (no person or client behind it).
SYSTEM_PRINCIPAL = Principal(kind=SYSTEM, id="vesalius", roles=frozenset({"system"}),
                             name="Vesalius")
