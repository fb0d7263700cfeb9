"""The server's CapabilityStatement, generated from the definitions and what the routes do
(https://hl7.org/fhir/R4/capabilitystatement.html, https://hl7.org/fhir/R4/http.html#capabilities).
"""

from __future__ import annotations

from typing import Any

from vesalius import __version__
from vesalius.record.definitions import Definitions

TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance",
                     "history-type", "create", "search-type")
SYSTEM_INTERACTIONS = ("transaction", "batch", "search-system", "history-system")
VALIDATE = {"name": "validate",
            "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}
EVERYTHING = {"name": "everything",
              "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}
#: R5's merge, offered on R4 (https://hl7.org/fhir/R5/patient-operation-merge.html).
MERGE = {"name": "merge", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-merge"}


def smart_security(issuer: str) -> dict[str, Any]:
    """``rest.security``: SMART on FHIR OAuth, with the provider's endpoints
    (https://hl7.org/fhir/smart-app-launch/conformance.html)."""
    return {"cors": False, "service": [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "code": "SMART-on-FHIR"}]}],
        "description": "OAuth 2.0 bearer tokens from the built-in OpenID Connect provider "
                       "(SMART App Launch v2); see .well-known/smart-configuration",
        "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                              "oauth-uris", "extension": [
            {"url": "authorize", "valueUri": f"{issuer}/authorize"},
            {"url": "token", "valueUri": f"{issuer}/token"},
            {"url": "revoke", "valueUri": f"{issuer}/revoke"}]}]}


def capability_statement(defs: Definitions, *, base: str, referential_integrity: bool,
                         date: str) -> dict[str, Any]:
    """What ``GET [base]/metadata`` answers: every resource type with every interaction, its
    search parameters and include/revinclude paths; JSON only."""
    revincludes = _revincludes(defs)
    policy = ["literal", "local", *(["enforced"] if referential_integrity else [])]
    resources = []
    for name in sorted(defs.resource_types):
        params = defs.search_params(name)
        entry: dict[str, Any] = {
            "type": name,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{name}",
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "multiple",
            "referencePolicy": policy,
            "searchInclude": sorted(f"{name}:{p.name}" for p in params.values()
                                    if p.type == "reference"),
            "searchRevInclude": revincludes.get(name, []),
            "searchParam": [{"name": p.name, "definition": p.url, "type": p.type}
                            for p in sorted(params.values(), key=lambda p: p.name)],
            "operation": [VALIDATE, *([EVERYTHING, MERGE] if name == "Patient" else [])],
        }
        resources.append({k: v for k, v in entry.items() if v != []})
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Vesalius",
        "kind": "instance",
        "software": {"name": "Vesalius", "version": __version__},
        "implementation": {"description": "Vesalius FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "documentation": "JSON only. Conditional delete of several matches needs "
                             "_multiple=true.",
            "resource": resources,
            "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            "searchParam": [{"name": p.name, "definition": p.url, "type": p.type}
                            for p in sorted(defs.search_params("Resource").values(),
                                            key=lambda p: p.name)],
        }],
    }


def _revincludes(defs: Definitions) -> dict[str, list[str]]:
    """Target type → ``Source:param`` of every reference parameter that can point at it."""
    out: dict[str, set[str]] = {}
    for source in defs.resource_types:
        for param in defs.search_params(source).values():
            if param.type != "reference":
                continue
            for target in param.targets:
                if defs.is_resource(target):
                    out.setdefault(target, set()).add(f"{source}:{param.name}")
    return {target: sorted(names) for target, names in out.items()}
