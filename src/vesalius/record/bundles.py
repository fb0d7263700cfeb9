"""Batch and transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction).

A transaction is one ``UnitOfWork``: entries are processed in the order the specification
requires (DELETE, POST, PUT/PATCH, then GET/HEAD), ``urn:uuid:`` / ``urn:oid:`` full URLs and
conditional references (``Patient?identifier=…``) are resolved first, references between
entries are checked once everything is written, and any failure rolls the whole Bundle back.
A batch runs each entry in its own unit; a failing entry gets its OperationOutcome in the
response and the others proceed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from uuid import uuid4

from vesalius.core.errors import (
    Gone,
    InvalidInput,
    NotFound,
    NotSupported,
    PreconditionFailed,
    TooLarge,
    ValidationFailed,
    VesaliusError,
)
from vesalius.record.presentation import searchset
from vesalius.record.unit_of_work import UnitOfWork, Version, instant

METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
TEMPORARY = re.compile(r"^urn:(uuid:[0-9a-fA-F-]{36}|oid:[0-2](\.[0-9]+)+)$")
INSTANCE_URL = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
                          r"(/_history/(?P<vid>[A-Za-z0-9\-.]{1,64}))?$")
ENTRY_EXPRESSION = re.compile(r"^Bundle\.entry\[(\d+)\]")
CONDITIONAL_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+\?.+$")

#: HTTP status per domain error, for batch entry responses.
ENTRY_STATUS: list[tuple[type[VesaliusError], str]] = [
    (ValidationFailed, "422 Unprocessable Entity"),
    (TooLarge, "413 Payload Too Large"),
    (InvalidInput, "400 Bad Request"),
    (Gone, "410 Gone"),
    (NotFound, "404 Not Found"),
    (PreconditionFailed, "412 Precondition Failed"),
    (NotSupported, "501 Not Implemented"),
]


def in_entry(index: int, error: VesaliusError) -> VesaliusError:
    """Name the failing entry in ``error``'s message, keeping its kind (and so its status)."""
    prefix = f"Bundle.entry[{index}]: "
    if not error.message.startswith(prefix):
        error.message = prefix + error.message
        error.args = (error.message,)
    return error


@dataclass
class _Entry:
    index: int
    method: str
    url: str
    full_url: str | None
    resource: Any
    request: dict[str, Any]
    #: What the id assignment decided: a match of ``ifNoneExist`` (POST), or the id the entry
    #: creates (POST) or writes (conditional PUT).
    existing: str | None = None
    id: str | None = None


def entry_status(error: VesaliusError) -> str:
    for kind, status in ENTRY_STATUS:
        if isinstance(error, kind):
            return status
    return "409 Conflict"


def outcome(error: VesaliusError) -> dict[str, Any]:
    issues = getattr(error, "issues", None) or [
        {"severity": "error", "code": "processing", "diagnostics": error.message}]
    return {"resourceType": "OperationOutcome", "issue": issues}


class BundleProcessor:
    def __init__(self, unit: Callable[[], Any], *, base: str, max_entries: int,
                 representation: bool = False) -> None:
        self._unit = unit
        self._base = base.rstrip("/")
        self._max_entries = max_entries
        self._representation = representation

    def process(self, bundle: Any) -> dict[str, Any]:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise InvalidInput("a batch or transaction is a Bundle resource")
        kind = bundle.get("type")
        if kind not in ("batch", "transaction"):
            raise InvalidInput(f"Bundle.type must be batch or transaction, not {kind!r}")
        raw = bundle.get("entry") or []
        if not isinstance(raw, list):
            raise InvalidInput("Bundle.entry must be an array")
        if len(raw) > self._max_entries:
            raise TooLarge(f"the Bundle has {len(raw)} entries; at most {self._max_entries} "
                           "are accepted")
        entries = [self._entry(i, e) for i, e in enumerate(raw)]
        if kind == "transaction":
            responses = self._transaction(entries)
        else:
            responses = [self._batch_entry(e) for e in entries]
        return {"resourceType": "Bundle", "id": str(uuid4()), "type": f"{kind}-response",
                "entry": responses}

    # -- parsing -----------------------------------------------------------------------------

    def _entry(self, index: int, raw: Any) -> _Entry:
        def fail(message: str) -> VesaliusError:
            return in_entry(index, InvalidInput(message))

        if not isinstance(raw, dict):
            raise fail("an entry is an object")
        request = raw.get("request")
        if not isinstance(request, dict):
            raise fail("entry.request is required in a batch or transaction")
        method = request.get("method")
        if method not in METHOD_ORDER:
            raise fail(f"unsupported entry.request.method {method!r}")
        url = request.get("url")
        if not isinstance(url, str) or not url.strip():
            raise fail("entry.request.url is required")
        url = self._relative(url.strip())
        resource = raw.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise fail(f"a {method} entry needs a resource")
        full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
        return _Entry(index, method, url, full_url, resource, request)

    def _relative(self, url: str) -> str:
        if url.startswith(self._base + "/"):
            return url[len(self._base) + 1:]
        return url.lstrip("/")

    # -- transaction -------------------------------------------------------------------------

    def _transaction(self, entries: list[_Entry]) -> list[dict[str, Any]]:
        responses: dict[int, dict[str, Any]] = {}
        touched: set[str] = set()
        with self._unit() as work:
            work.defer_reference_check = True
            assigned = self._assign_ids(work, entries)
            for entry in entries:
                if entry.resource is not None:
                    entry.resource = self._resolve(work, entry, assigned)
            for entry in sorted(entries, key=lambda e: (METHOD_ORDER[e.method], e.index)):
                work.expression_prefix = f"Bundle.entry[{entry.index}].resource"
                if entry.method in ("GET", "HEAD"):
                    work.flush_index()  # reads see this transaction's writes
                try:
                    responses[entry.index] = self._execute(work, entry, assigned)
                except VesaliusError as exc:
                    raise in_entry(entry.index, exc) from exc
                location = responses[entry.index].get("response", {}).get("location")
                if entry.method != "GET" and location:
                    identity = "/".join(location.split("/")[:2])
                    if identity in touched:  # https://hl7.org/fhir/R4/http.html#trules
                        raise in_entry(entry.index, InvalidInput(
                            f"{identity} is changed by more than one entry"))
                    touched.add(identity)
            work.flush_index()
            try:
                work.check_deferred_references()
            except VesaliusError as exc:
                raise in_entry(_entry_of(exc), exc) from exc
        return [responses[e.index] for e in entries]

    def _assign_ids(self, work: UnitOfWork, entries: list[_Entry]) -> dict[str, str]:
        """Full URL → ``Type/id`` for every entry that will create or update a resource."""
        assigned: dict[str, str] = {}
        for entry in entries:
            try:
                target = self._target(work, entry)
            except VesaliusError as exc:
                raise in_entry(entry.index, exc) from exc
            if target and entry.full_url:
                if entry.full_url in assigned:
                    raise in_entry(entry.index, InvalidInput(
                        f"fullUrl {entry.full_url} appears more than once"))
                assigned[entry.full_url] = target
        return assigned

    def _target(self, work: UnitOfWork, entry: _Entry) -> str | None:
        if entry.method == "POST":
            resource_type = str(entry.resource.get("resourceType"))
            condition = entry.request.get("ifNoneExist")
            if isinstance(condition, str) and condition:
                found = work.match(resource_type, condition)
                if len(found) > 1:
                    raise PreconditionFailed(f"ifNoneExist matches {len(found)} resources")
                if found:
                    entry.existing = found[0]
                    return f"{resource_type}/{found[0]}"
            entry.id = str(uuid4())
            return f"{resource_type}/{entry.id}"
        if entry.method == "PUT":
            path, _, query = entry.url.partition("?")
            if query:
                found = work.match(path, query)
                if len(found) > 1:
                    raise PreconditionFailed(f"the condition matches {len(found)} resources")
                entry.id = found[0] if found else (
                    entry.resource.get("id") or str(uuid4()))
                return f"{path}/{entry.id}"
            m = INSTANCE_URL.match(path)
            if not m or m.group("vid"):
                raise InvalidInput(f"PUT needs a Type/id or conditional URL, not {entry.url!r}")
            return path
        return None

    def _resolve(self, work: UnitOfWork, entry: _Entry, assigned: dict[str, str]) -> Any:
        """Rewrite temporary and conditional references inside an entry's resource."""
        cache: dict[str, str] = {}

        def rewrite(node: Any) -> Any:
            if isinstance(node, dict):
                out = {}
                for key, value in node.items():
                    if key == "reference" and isinstance(value, str):
                        out[key] = reference(value)
                    else:
                        out[key] = rewrite(value)
                return out
            if isinstance(node, list):
                return [rewrite(v) for v in node]
            return node

        def reference(value: str) -> str:
            if value in assigned:
                return assigned[value]
            if TEMPORARY.match(value):
                raise InvalidInput(f"reference {value} names no entry of this Bundle")
            if self._base and value.startswith(self._base + "/"):
                value = value[len(self._base) + 1:]
            if CONDITIONAL_REFERENCE.match(value):
                if value not in cache:
                    resource_type, query = value.split("?", 1)
                    found = work.match(resource_type, query)
                    if len(found) != 1:
                        raise PreconditionFailed(
                            f"conditional reference {resource_type}?… matches {len(found)} "
                            "resources (exactly one is required)")
                    cache[value] = f"{resource_type}/{found[0]}"
                return cache[value]
            return value

        try:
            return rewrite(entry.resource)
        except VesaliusError as exc:
            raise in_entry(entry.index, exc) from exc

    # -- executing one entry -----------------------------------------------------------------

    def _execute(self, work: UnitOfWork, entry: _Entry, assigned: dict[str, str]) -> dict[str, Any]:
        method, url = entry.method, entry.url
        path, _, query = url.partition("?")
        if method == "POST":
            if entry.existing is not None:
                return self._response("200 OK", work.read(
                    entry.resource["resourceType"], entry.existing))
            assigned_id = entry.id
            if entry.resource.get("resourceType") != path:
                raise InvalidInput(f"a {entry.resource.get('resourceType')} POSTed to {path!r}")
            return self._response("201 Created", work.create(entry.resource,
                                                             assigned_id=assigned_id))
        if method == "PUT":
            if query:
                id = str(entry.id)
                version = work.update(path, id, {**entry.resource, "id": id})
            else:
                resource_type, id = path.split("/", 1)
                version = work.update(resource_type, id, entry.resource,
                                      if_match=entry.request.get("ifMatch"))
            return self._response("201 Created" if version.created else "200 OK", version)
        if method == "PATCH":
            m = INSTANCE_URL.match(path)
            if not m:
                raise InvalidInput(f"PATCH needs a Type/id URL, not {url!r}")
            operations = _patch_operations(entry.resource)
            return self._response("200 OK", work.patch(m.group("type"), m.group("id"), operations,
                                                       if_match=entry.request.get("ifMatch")))
        if method == "DELETE":
            if query:
                work.conditional_delete(path, query)
            else:
                m = INSTANCE_URL.match(path)
                if not m or m.group("vid"):
                    raise InvalidInput(f"DELETE needs a Type/id or conditional URL, not {url!r}")
                work.delete(m.group("type"), m.group("id"))
            return {"response": {"status": "204 No Content"}}
        return self._get(work, path, query)

    def _get(self, work: UnitOfWork, path: str, query: str) -> dict[str, Any]:
        m = INSTANCE_URL.match(path)
        if m and not query:
            version = work.read(m.group("type"), m.group("id"))
            if m.group("vid") and m.group("vid") != str(version.version):
                raise NotSupported("vread of an older version inside a Bundle is not supported")
            return {"resource": version.resource, "response": {
                "status": "200 OK", "etag": version.etag,
                "lastModified": instant(version.last_updated)}}
        resource_type = path or None
        if resource_type is not None:
            work.require_type(resource_type)
        params = parse_qsl(query, keep_blank_values=True)
        result = work.engine.search(work.conn, resource_type, params)
        return {"resource": searchset(result, base=self._base, resource_type=resource_type,
                                      defs=work.defs),
                "response": {"status": "200 OK"}}

    def _response(self, status: str, version: Version) -> dict[str, Any]:
        response: dict[str, Any] = {"status": status, "location": version.location,
                                    "etag": version.etag,
                                    "lastModified": instant(version.last_updated)}
        out: dict[str, Any] = {"fullUrl": f"{self._base}/{version.resource_type}/{version.id}",
                               "response": response}
        if self._representation and version.resource is not None:
            out["resource"] = version.resource
        return out

    # -- batch -------------------------------------------------------------------------------

    def _batch_entry(self, entry: _Entry) -> dict[str, Any]:
        try:
            with self._unit() as work:
                assigned = self._assign_ids(work, [entry])
                if entry.resource is not None:
                    entry.resource = self._resolve(work, entry, {})
                return self._execute(work, entry, assigned)
        except VesaliusError as exc:
            return {"response": {"status": entry_status(exc), "outcome": outcome(exc)}}


def _patch_operations(resource: Any) -> Any:
    """A PATCH entry carries its JSON Patch as a Binary (https://hl7.org/fhir/R4/http.html#patch)."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        try:
            return json.loads(base64.b64decode(resource.get("data", ""), validate=True))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"the PATCH entry's Binary is not a JSON Patch: {exc}") from exc
    raise InvalidInput("a PATCH entry carries a JSON Patch in a Binary resource")


def _entry_of(error: VesaliusError) -> int:
    """The entry a deferred reference failure belongs to (its issue names the entry)."""
    for issue in getattr(error, "issues", None) or []:
        m = ENTRY_EXPRESSION.match(str(issue.get("expression", "")))
        if m:
            return int(m.group(1))
    return 0

