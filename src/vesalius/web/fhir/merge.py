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

from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from vesalius.archive.reconcile import studies_filed_under
from vesalius.core.errors import InvalidInput, NotFound, NotSupported, PreconditionFailed
from vesalius.dicom.patient_identity import LOCAL_SYSTEM, issuer_of
from vesalius.imaging_link.merge import MergeResult
from vesalius.imaging_link.patients import STUDY_PATIENT_SYSTEM
from vesalius.node import Node
from vesalius.record.service import RecordService
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
    if preview:
        result, patient = await run_in_threadpool(_preview, node, source, target)
    else:
        result = await run_in_threadpool(node.link.merge, source, target)
        patient = (await run_in_threadpool(service.read, "Patient", target)).resource or {}
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


def _resolve(service: RecordService, parameters: dict[str, list[Resource]], role: str,
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


# -- preview -----------------------------------------------------------------------------------

def _preview(node: Node, source: str, target: str) -> tuple[MergeResult, Resource]:
    """What :meth:`ImagingLink.merge` would change, read without writing: the resources that
    refer to the source, the studies filed under its identities or shown in its
    ImagingStudies, and the target with the links and old identifiers it would gain."""
    service = node.record
    source_patient = service.read("Patient", source).resource or {}
    target_patient = service.read("Patient", target).resource or {}
    if any(link.get("type") == "replaced-by" for link in source_patient.get("link") or []):
        raise InvalidInput(f"Patient/{source} was already merged")
    repointed: list[str] = []
    studies: set[str] = set()
    for resource in _compartment(service, source):
        key = (resource.get("resourceType"), resource.get("id"))
        if key in (("Patient", source), ("Patient", target)):
            continue
        if _refers_to(resource, f"Patient/{source}"):
            repointed.append(f"{key[0]}/{key[1]}")
            if key[0] == "ImagingStudy":
                studies.update(_study_uids(resource))
    with node.archive.reader.engine.connect() as conn:
        for identifier in source_patient.get("identifier") or []:
            system = identifier.get("system", LOCAL_SYSTEM)
            if identifier.get("value") and system != STUDY_PATIENT_SYSTEM:
                studies.update(studies_filed_under(conn, str(identifier["value"]),
                                                   issuer_of(system)))
    known = {(i.get("system"), i.get("value")) for i in target_patient.get("identifier") or []}
    old = [{**i, "use": "old"} for i in source_patient.get("identifier") or []
           if (i.get("system"), i.get("value")) not in known]
    links = [link for link in target_patient.get("link") or []
             if (link.get("other") or {}).get("reference") != f"Patient/{source}"]
    merged = {**target_patient,
              "identifier": [*(target_patient.get("identifier") or []), *old],
              "link": [*links, {"other": {"reference": f"Patient/{source}"},
                                "type": "replaces"}]}
    return MergeResult(source, target, repointed, sorted(studies)), merged


def _compartment(service: RecordService, patient_id: str) -> Iterator[Resource]:
    offset = 0
    while True:
        page, total = service.everything(patient_id, count=service.options.max_count,
                                         offset=offset)
        yield from page
        offset += len(page)
        if not page or offset >= total:
            return


def _refers_to(node: Any, reference: str) -> bool:
    if isinstance(node, dict):
        return node.get("reference") == reference or any(
            _refers_to(value, reference) for value in node.values())
    if isinstance(node, list):
        return any(_refers_to(item, reference) for item in node)
    return False


def _study_uids(imaging_study: Resource) -> Iterator[str]:
    for identifier in imaging_study.get("identifier") or []:
        value = str(identifier.get("value", ""))
        if identifier.get("system") == DICOM_UID_SYSTEM and value.startswith("urn:oid:"):
            yield value.removeprefix("urn:oid:")
