"""``POST [base]/Patient/$merge``: merge a duplicate (source) Patient into the right one (target).

The operation is R5's (https://hl7.org/fhir/R5/patient-operation-merge.html, trial use), offered
on this R4 server: R4 has no merge operation, and R5's is what clients that merge expect.
The merge itself is the imaging link's (:mod:`vesalius.imaging_link.merge`): the record and the
image index change in one transaction.

In parameters: ``source-patient`` / ``target-patient`` (Reference) and/or
``source-patient-identifier`` / ``target-patient-identifier`` (Identifier, each of which the
Patient must carry; they must resolve to exactly one Patient), and ``preview`` (boolean).
``result-patient`` and ``delete-source`` are not supported: the target keeps its own content
and the source is kept, inactive, with its history.

Out parameters: ``input`` (the request's Parameters), ``outcome`` (OperationOutcome),
``result`` (the target Patient after the merge, or as it would be after it), and — beyond R5 —
``repointed`` (a Reference per resource moved from the source to the target) and
``refiled-study`` (the StudyInstanceUID of each study re-filed under the target's identity,
as an Identifier in ``urn:dicom:uid``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from vesalius.core.errors import InvalidInput, NotFound, NotSupported, PreconditionFailed
from vesalius.guard import RecordGuard
from vesalius.node import Node
from vesalius.web.fhir.outcome import outcome
from vesalius.web.fhir.requests import ID, base_url, json_body, record
from vesalius.web.fhir.responses import fhir_response

Resource = dict[str, Any]

DICOM_UID_SYSTEM = "urn:dicom:uid"
IN_PARAMETERS = ("source-patient", "source-patient-identifier", "target-patient",
                 "target-patient-identifier", "preview", "result-patient", "delete-source")


async def merge(request: Request) -> Response:
    """Resolve both Patients, merge (or preview), answer with a Parameters (200)."""
    service = record(request)
    service.require_function("patient.merge")  # a function: 403 before any patient lookup
    node: Node = request.app.state.node
    body = await json_body(request)
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidInput("$merge takes a Parameters resource")
    parameters = _parameters(body)
    if parameters.get("result-patient"):
        raise NotSupported("result-patient is not supported: the target keeps its content")
    if _boolean(parameters, "delete-source"):
        raise NotSupported("delete-source is not supported: the source is kept, inactive")
    base = base_url(request)
    source = await run_in_threadpool(_resolve, service, parameters, "source", base)
    target = await run_in_threadpool(_resolve, service, parameters, "target", base)
    if source == target:
        raise InvalidInput("the source and target Patient are the same; nothing to merge")
    preview = _boolean(parameters, "preview")
    result = await run_in_threadpool(
        service.merge, source, target, partial(node.link.merge, source, target, preview=preview))
    patient = result.patient
    verb = "would be" if preview else "was"
    message = (f"Patient/{source} {verb} merged into Patient/{target}: "
               f"{len(result.repointed)} resources re-pointed, "
               f"{len(result.studies)} studies re-filed")
    return fhir_response(request, {"resourceType": "Parameters", "parameter": [
        {"name": "input", "resource": body},
        {"name": "outcome", "resource": outcome("information", "informational", message)},
        {"name": "result", "resource": patient},
        *({"name": "repointed", "valueReference": {"reference": ref}}
          for ref in result.repointed),
        *({"name": "refiled-study",
           "valueIdentifier": {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{uid}"}}
          for uid in result.studies),
    ]})


def _parameters(body: Resource) -> dict[str, list[Resource]]:
    """Parameters by name; unknown names are refused rather than silently ignored."""
    out: dict[str, list[Resource]] = {}
    items = body.get("parameter") or []
    if not isinstance(items, list):
        raise InvalidInput("Parameters.parameter must be a list")
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in IN_PARAMETERS:
            raise InvalidInput(f"$merge has no parameter {name!r}")
        out.setdefault(str(name), []).append(item)
    for name in ("source-patient", "target-patient", "preview", "delete-source"):
        if len(out.get(name, [])) > 1:
            raise InvalidInput(f"{name} may be given once")
    return out


def _boolean(parameters: dict[str, list[Resource]], name: str) -> bool:
    (item,) = parameters.get(name) or [{"valueBoolean": False}]
    value = item.get("valueBoolean")
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} needs a valueBoolean")
    return value


def _resolve(service: RecordGuard, parameters: dict[str, list[Resource]], role: str,
             base: str) -> str:
    """The id of the ``role`` (source/target) Patient: by reference, by identifiers, or both
    (then the referenced Patient must carry every identifier)."""
    identifiers = []
    for item in parameters.get(f"{role}-patient-identifier", []):
        identifier = item.get("valueIdentifier")
        if not isinstance(identifier, dict) or not identifier.get("value"):
            raise InvalidInput(f"{role}-patient-identifier needs a valueIdentifier with a value")
        identifiers.append(identifier)
    id = None
    for item in parameters.get(f"{role}-patient", []):
        reference = item.get("valueReference")
        if not isinstance(reference, dict):
            raise InvalidInput(f"{role}-patient needs a valueReference")
        if isinstance(reference.get("identifier"), dict):
            identifiers.append(reference["identifier"])
        if reference.get("reference") is not None:
            id = _patient_id(str(reference["reference"]), base, role)
    if id is None and not identifiers:
        raise InvalidInput(f"$merge needs {role}-patient or {role}-patient-identifier")
    if id is not None:
        patient = service.read("Patient", id).resource or {}
        missing = [i for i in identifiers if not _carries(patient, i)]
        if missing:
            raise InvalidInput(f"Patient/{id} does not carry the {role} identifier "
                               f"{_token(missing[0])}")
        return id
    found: set[str] | None = None
    for identifier in identifiers:
        page = service.search("Patient", [("identifier", _token(identifier)), ("_count", "1000")])
        ids = {str(p["id"]) for p in page.matches if _carries(p, identifier)}
        found = ids if found is None else found & ids
    if not found:
        raise NotFound(f"no Patient carries the {role} identifier(s)")
    if len(found) > 1:
        raise PreconditionFailed(f"{len(found)} Patients carry the {role} identifier(s)")
    return found.pop()


def _patient_id(reference: str, base: str, role: str) -> str:
    relative = reference.removeprefix(f"{base}/")
    kind, _, id = relative.partition("/")
    if kind != "Patient" or not ID.match(id):
        raise InvalidInput(f"{role}-patient must reference a Patient on this server "
                           f"(Patient/<id>), not {reference!r}")
    return id


def _token(identifier: Resource) -> str:
    system = identifier.get("system")
    return f"{system}|{identifier['value']}" if system else str(identifier["value"])


def _carries(patient: Resource, wanted: Resource) -> bool:
    return any(i.get("value") == wanted.get("value")
               and (not wanted.get("system") or i.get("system") == wanted.get("system"))
               for i in patient.get("identifier") or [])
