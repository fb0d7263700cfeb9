"""Pure access decisions. Services (through ``vesalius.guard``) ask; edges never decide.

Three questions, each answered from the caller's :class:`Principal` alone:

- **What may they do with which resource types?** ``resource_allowed(principal, type,
  interaction)`` with FHIR interactions as SMART v2 letters: ``c`` create, ``r`` read (read,
  vread, history), ``u`` update (and patch), ``d`` delete, ``s`` search. A role grants them
  per type (``"*"`` = every type); a token's SMART scopes can only narrow what the role
  grants (https://build.fhir.org/ig/HL7/smart-app-launch/scopes-and-launch-context.html).
  Backend clients have no role: their ``system/`` scopes are the grant.
- **What may they do with images?** ``image_allowed(principal, action)`` for ``view``,
  ``download`` (export), ``upload``, ``delete`` and ``share``; scopes narrow it through the
  ``ImagingStudy`` type (view/download/share need ``r``, upload ``c``, delete ``d``).
- **Whose records?** ``patient_access(principal)``: ``all`` (every patient), ``care`` (patients
  they have a care relationship with, or their organization's patients when the role says
  ``organization = true``), ``self`` (a patient user: their own record), ``consent`` (a
  third party: patients whose Consent permits the disclosure) or ``none``. A token bound to a
  SMART patient context (``patient/`` scopes) is confined to that patient whatever the role.

Roles and their grants are configuration: :data:`DEFAULT_ROLES` are the safe defaults and a
TOML ``policy_file`` may replace any role or add new ones (see ``docs/security.md``).
``may_use`` answers for functions that are not patient data (reading the audit trail,
managing users, breaking the glass…).
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from vesalius.core.errors import InvalidInput
from vesalius.security.authn.scopes import Scope, is_resource_scope, parse_scope
from vesalius.security.principal import AE, CLIENT, SYSTEM, Principal

INTERACTIONS = frozenset("cruds")
IMAGE_ACTIONS = frozenset({"view", "download", "upload", "delete", "share"})
FUNCTIONS = frozenset({"audit.read", "break-glass", "users.manage", "imaging-link.problems",
                       "patient.merge"})
PATIENT_ACCESS = ("all", "care", "self", "consent", "none")
#: Which SMART letter each image action needs on ``ImagingStudy``.
_IMAGE_LETTER = {"view": "r", "download": "r", "share": "r", "upload": "c", "delete": "d"}

#: Resource types a registration clerk manages (demographics, visits, coverage).
_REGISTRATION = ("Patient", "RelatedPerson", "Encounter", "Appointment", "Coverage",
                 "Account", "Person")
#: Resource types describing the organisation rather than a patient.
_DIRECTORY = ("Organization", "Practitioner", "PractitionerRole", "Location", "Endpoint",
              "HealthcareService", "Device")


@dataclass(frozen=True)
class Role:
    """What one role may do."""

    patient_access: str = "none"
    #: With ``care`` access, also every patient whose ``managingOrganization`` is the user's.
    organization: bool = False
    #: Resource type (or ``*``) → granted interaction letters.
    resources: Mapping[str, frozenset[str]] = field(default_factory=dict)
    images: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()


def _grants(**kinds: str) -> dict[str, frozenset[str]]:
    return {k: frozenset(v) for k, v in kinds.items()}


def _types(types: Collection[str], letters: str) -> dict[str, frozenset[str]]:
    return {t: frozenset(letters) for t in types}


DEFAULT_ROLES: dict[str, Role] = {
    "clinician": Role("care", organization=False, resources=_grants(**{"*": "cruds"}),
                      images=frozenset({"view", "download", "upload", "share"}),
                      functions=frozenset({"break-glass"})),
    "radiologist": Role("all", resources={"*": frozenset("rs"),
                                          **_types(("DiagnosticReport", "Observation",
                                                    "ImagingStudy", "Media"), "crus")},
                        images=frozenset({"view", "download", "upload", "share"}),
                        functions=frozenset({"break-glass"})),
    "nurse": Role("care", resources={"*": frozenset("rs"),
                                     **_types(("Observation", "MedicationAdministration",
                                               "Immunization", "Media", "Task"), "crus")},
                  images=frozenset({"view"}), functions=frozenset({"break-glass"})),
    "registration": Role("all", resources={**_types(_REGISTRATION, "crus"),
                                           **_types(_DIRECTORY, "rs"),
                                           "ServiceRequest": frozenset("rs")},
                         functions=frozenset({"patient.merge"})),
    "administrator": Role("none", resources=_types(_DIRECTORY, "cruds"),
                          images=frozenset({"delete"}),
                          functions=frozenset({"users.manage", "imaging-link.problems"})),
    "auditor": Role("none", functions=frozenset({"audit.read"})),
    "patient": Role("self", resources=_grants(**{"*": "rs"}),
                    images=frozenset({"view", "download"})),
    "external": Role("consent", resources=_grants(**{"*": "rs"}), images=frozenset({"view"})),
    # Vesalius itself and trusted backend services registered with role "system".
    "system": Role("all", resources=_grants(**{"*": "cruds"}), images=IMAGE_ACTIONS,
                   functions=FUNCTIONS),
}


def _scopes(principal: Principal) -> list[Scope]:
    """The token's resource scopes (unparseable ones grant nothing)."""
    out = []
    for text in principal.scopes:
        if is_resource_scope(text):
            try:
                out.append(parse_scope(text))
            except InvalidInput:
                continue
    return out


def _scope_allows(principal: Principal, resource_type: str, letter: str) -> bool:
    """Whether the token's scopes allow ``letter`` on ``resource_type``. Principals without
    any scope (AEs, the system, CLI-issued tokens) are not scope-limited; a token with scopes
    gets only what its resource scopes grant (``openid`` alone grants no resource, and a
    malformed scope grants nothing)."""
    if not principal.scopes:
        return principal.kind != CLIENT
    scopes = _scopes(principal)
    return any(letter in s.interactions and s.resource_type in ("*", resource_type)
               for s in scopes)


@dataclass(frozen=True)
class Policy:
    roles: Mapping[str, Role]

    def _roles(self, principal: Principal) -> list[Role]:
        if principal.kind == SYSTEM:
            return [self.roles["system"]]
        return [self.roles[r] for r in sorted(principal.roles) if r in self.roles]

    def _client_grant(self, principal: Principal) -> bool:
        """A backend client without a role: its ``system/`` scopes are its grant."""
        return principal.kind == CLIENT and not self._roles(principal)

    def resource_allowed(self, principal: Principal, resource_type: str, letter: str) -> bool:
        if letter not in INTERACTIONS:
            raise ValueError(f"unknown interaction {letter!r}")
        if principal.kind == AE:
            return False  # DICOM peers act through may_dimse, never on the record
        if self._client_grant(principal):
            return any(s.context == "system" and letter in s.interactions
                       and s.resource_type in ("*", resource_type) for s in _scopes(principal))
        granted = any(letter in role.resources.get(resource_type, role.resources.get("*", ()))
                      for role in self._roles(principal))
        return granted and _scope_allows(principal, resource_type, letter)

    def image_allowed(self, principal: Principal, action: str) -> bool:
        if action not in IMAGE_ACTIONS:
            raise ValueError(f"unknown image action {action!r}")
        letter = _IMAGE_LETTER[action]
        if self._client_grant(principal):
            return self.resource_allowed(principal, "ImagingStudy", letter)
        granted = any(action in role.images for role in self._roles(principal))
        return granted and _scope_allows(principal, "ImagingStudy", letter)

    def may_use(self, principal: Principal, function: str) -> bool:
        if function not in FUNCTIONS:
            raise ValueError(f"unknown function {function!r}")
        return any(function in role.functions for role in self._roles(principal))

    def patient_access(self, principal: Principal) -> str:
        """The widest patient access among the caller's roles (see the module docstring);
        ``self`` whenever the token is bound to a patient context."""
        if principal.patient is not None and (
                "patient" in principal.roles
                or any(s.context == "patient" for s in _scopes(principal))):
            return "self"
        if self._client_grant(principal):
            return "all" if any(s.context == "system" for s in _scopes(principal)) else "none"
        if principal.kind == AE:
            return "all"  # limited by the AE registry's permissions instead
        order = {name: i for i, name in enumerate(PATIENT_ACCESS)}
        levels = [role.patient_access for role in self._roles(principal)]
        return min(levels, key=order.__getitem__) if levels else "none"

    def organization_wide(self, principal: Principal) -> bool:
        return principal.organization is not None and any(
            role.organization for role in self._roles(principal))


def _role_from_toml(name: str, raw: Any, base: Role | None) -> Role:
    if not isinstance(raw, dict):
        raise InvalidInput(f"policy: role {name!r} must be a table")
    known = {"patient_access", "organization", "resources", "images", "functions"}
    unknown = set(raw) - known
    if unknown:
        raise InvalidInput(f"policy: role {name!r} has unknown keys {sorted(unknown)}")
    base = base or Role()
    access = str(raw.get("patient_access", base.patient_access))
    if access not in PATIENT_ACCESS:
        raise InvalidInput(f"policy: role {name!r}: patient_access must be one of "
                           f"{', '.join(PATIENT_ACCESS)}")
    resources = base.resources
    if "resources" in raw:
        if not isinstance(raw["resources"], dict):
            raise InvalidInput(f"policy: role {name!r}: resources must be a table")
        resources = {}
        for kind, letters in raw["resources"].items():
            if not isinstance(letters, str) or not set(letters) <= INTERACTIONS:
                raise InvalidInput(f"policy: role {name!r}: {kind} needs letters of 'cruds'")
            resources[str(kind)] = frozenset(letters)
    images = frozenset(raw.get("images", base.images))
    functions = frozenset(raw.get("functions", base.functions))
    if not images <= IMAGE_ACTIONS:
        raise InvalidInput(f"policy: role {name!r}: unknown image actions "
                           f"{sorted(images - IMAGE_ACTIONS)}")
    if not functions <= FUNCTIONS:
        raise InvalidInput(f"policy: role {name!r}: unknown functions "
                           f"{sorted(functions - FUNCTIONS)}")
    return Role(access, bool(raw.get("organization", base.organization)), resources, images,
                functions)


def load_policy(policy_file: str = "") -> Policy:
    """The default roles, with the roles of ``policy_file`` (TOML, ``[roles.<name>]`` tables)
    replacing or adding to them key by key."""
    if not policy_file:
        return DEFAULT_POLICY
    return _load_policy_file(str(Path(policy_file).expanduser()))


@cache
def _load_policy_file(path: str) -> Policy:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"policy file {path}: {exc}") from exc
    roles = dict(DEFAULT_ROLES)
    raw_roles = data.get("roles", {})
    if not isinstance(raw_roles, dict) or set(data) - {"roles"}:
        raise InvalidInput(f"policy file {path}: expected only [roles.<name>] tables")
    for name, raw in raw_roles.items():
        roles[str(name)] = _role_from_toml(str(name), raw, roles.get(str(name)))
    return Policy(roles)


DEFAULT_POLICY = Policy(DEFAULT_ROLES)


# -- DICOM associations -----------------------------------------------------------------------
@dataclass(frozen=True)
class DimseCaller:
    """Who is on the other end of an association."""

    ae_title: str
    address: str
    #: Permissions from the AE registry when the title is registered *and* the
    #: connection comes from the registered host; None for unknown callers.
    registered_permissions: frozenset[str] | None


def may_dimse(caller: DimseCaller, action: str, unknown_permissions: Collection[str]) -> bool:
    """Whether ``caller`` may perform ``action`` (echo, store, find, move, get, commit, mwl).

    Echo is always allowed (it discloses nothing). Storage commitment follows the
    store permission. Worklist queries and MPPS follow find: MPPS changes the
    worklist, so only a modality trusted to read it may report on it (unknown
    callers, who may store by default, may not complete scheduled steps).
    """
    needed = {"echo": None, "commit": "store", "mwl": "find", "mpps": "find"}.get(action, action)
    if needed is None:
        return True
    granted = (caller.registered_permissions if caller.registered_permissions is not None
               else frozenset(unknown_permissions))
    return needed in granted
