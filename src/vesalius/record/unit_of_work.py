"""The record's write operations on one database transaction.

A ``UnitOfWork`` is what a single interaction and a whole transaction Bundle share: every
create/update/patch/delete it performs commits or rolls back together
(https://hl7.org/fhir/R4/http.html#transaction). Events are collected and published by the
service only after the commit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from uuid import uuid4

import jsonpatch
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from vesalius.core.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from vesalius.record.definitions import Definitions
from vesalius.record.events import ResourceWritten
from vesalius.record.references import references
from vesalius.record.schema import history, resources
from vesalius.record.search.engine import SearchEngine
from vesalius.record.search.indexer import SearchIndexer
from vesalius.record.validation import Validator

ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
LOCAL_REFERENCE = re.compile(
    r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")
#: Elements the server owns (https://hl7.org/fhir/R4/resource.html#Meta).
SERVER_META = ("versionId", "lastUpdated")


def utcnow() -> datetime:
    return datetime.now(UTC)


def instant(ts: datetime) -> str:
    """A FHIR ``instant`` in UTC with millisecond precision."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_query(query: str) -> list[tuple[str, str]]:
    """``identifier=a|b&active=true`` (or ``Patient?identifier=…``) → search parameters."""
    if "?" in query:
        query = query.split("?", 1)[1]
    if not query.strip():
        raise InvalidInput("a conditional request needs search parameters")
    return parse_qsl(query, keep_blank_values=True)


@dataclass(frozen=True)
class Version:
    """One stored version of a resource (``resource`` None for a deletion)."""

    resource_type: str
    id: str
    version: int
    last_updated: datetime
    resource: dict[str, Any] | None
    created: bool = False
    #: False when an update or conditional create found nothing to change.
    changed: bool = True

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def location(self) -> str:
        return f"{self.resource_type}/{self.id}/_history/{self.version}"


def _ordered(resource: dict[str, Any]) -> dict[str, Any]:
    head: dict[str, Any] = {k: resource[k] for k in ("resourceType", "id", "meta")
                            if k in resource}
    return {**head, **{k: v for k, v in resource.items() if k not in head}}


def _without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    out = dict(resource)
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in SERVER_META}
    if meta:
        out["meta"] = meta
    return out




@dataclass
class UnitOfWork:
    conn: Connection
    defs: Definitions
    validator: Validator
    indexer: SearchIndexer
    engine: SearchEngine
    referential_integrity: bool = True
    clock: Callable[[], datetime] = utcnow
    #: Transactions check references once all their entries are written (they may refer to
    #: each other in any order); single interactions check at once.
    defer_reference_check: bool = False
    #: Replaces the resource type at the start of issue expressions (``Bundle.entry[3].resource``).
    expression_prefix: str = ""
    events: list[ResourceWritten] = field(default_factory=list)
    _pending_references: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Index rows of resources created while ``defer_reference_check`` is on, written in one
    #: statement per table by ``flush_index`` (a transaction's new resources).
    _pending_index: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    # -- reading -----------------------------------------------------------------------------

    def _row(self, resource_type: str, id: str, *, lock: bool = False) -> Any:
        """The current row; ``lock`` holds it until commit (PostgreSQL ``FOR UPDATE``; SQLite
        writers are serialized already), so If-Match checks and version numbers cannot race."""
        query = select(resources).where(resources.c.resource_type == resource_type,
                                        resources.c.id == id)
        return self.conn.execute(query.with_for_update() if lock else query).first()

    def read(self, resource_type: str, id: str) -> Version:
        self.require_type(resource_type)
        row = self._row(resource_type, id)
        if row is None:
            raise NotFound(f"{resource_type}/{id} is not known")
        if row.deleted:
            raise Gone(f"{resource_type}/{id} was deleted")
        return _version(row)

    def require_type(self, resource_type: str) -> None:
        if not self.defs.is_resource(resource_type):
            raise NotFound(f"unknown resource type {resource_type!r}")

    def match(self, resource_type: str, query: str | Sequence[tuple[str, str]]) -> list[str]:
        """Ids of the live resources matching a conditional request's search parameters."""
        self.require_type(resource_type)
        params = parse_query(query) if isinstance(query, str) else list(query)
        return [id for _pk, id in self.engine.match(self.conn, resource_type, params)]

    # -- writing -----------------------------------------------------------------------------

    def create(self, resource: Any, *, if_none_exist: str | None = None,
               assigned_id: str | None = None) -> Version:
        """POST: the server assigns the id (https://hl7.org/fhir/R4/http.html#create).

        ``assigned_id``: an id the server chose earlier (a transaction pre-assigns ids so its
        entries can refer to each other).
        """
        resource_type = self._resource_type(resource)
        if if_none_exist is not None:
            found = self.match(resource_type, if_none_exist)
            if len(found) > 1:
                raise PreconditionFailed(
                    f"If-None-Exist matches {len(found)} {resource_type} resources")
            if found:
                return _unchanged(self.read(resource_type, found[0]))
        return self._store(resource_type, assigned_id or str(uuid4()), resource, "POST", None)

    def update(self, resource_type: str, id: str, resource: Any, *,
               if_match: str | None = None, method: str = "PUT") -> Version:
        """PUT: update, or update-as-create for a new id (https://hl7.org/fhir/R4/http.html#update)."""
        self.require_type(resource_type)
        if not ID.match(id):
            raise InvalidInput(f"{id!r} is not a valid resource id")
        if self._resource_type(resource) != resource_type:
            raise InvalidInput(f"the body is a {resource.get('resourceType')}, the URL names "
                               f"{resource_type}")
        if resource.get("id") != id:
            raise InvalidInput(f"the body's id ({resource.get('id')!r}) does not match the URL "
                               f"({id!r})")
        row = self._row(resource_type, id, lock=True)
        self._check_version(row, if_match)
        if row is not None and not row.deleted:
            current = json.loads(row.content)
            if _without_server_meta(current) == _without_server_meta(resource):
                return _unchanged(_version(row))
        return self._store(resource_type, id, resource, method, row)

    def conditional_update(self, resource_type: str, query: str | Sequence[tuple[str, str]],
                           resource: Any) -> Version:
        found = self.match(resource_type, query)
        if len(found) > 1:
            raise PreconditionFailed(f"the condition matches {len(found)} resources")
        if found:
            if resource.get("id") not in (None, found[0]):
                raise InvalidInput("the body's id does not match the resource the condition found")
            return self.update(resource_type, found[0], {**resource, "id": found[0]})
        id = resource.get("id") or str(uuid4())
        return self.update(resource_type, id, {**resource, "id": id})

    def patch(self, resource_type: str, id: str, operations: Any, *,
              if_match: str | None = None) -> Version:
        """JSON Patch (RFC 6902, https://hl7.org/fhir/R4/http.html#patch)."""
        self._check_version(self._row(resource_type, id, lock=True), if_match)
        current = self.read(resource_type, id)
        if not isinstance(operations, list):
            raise InvalidInput("a JSON Patch document is an array of operations")
        try:
            patched = jsonpatch.apply_patch(current.resource, operations)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException,
                TypeError, ValueError) as exc:
            raise InvalidInput(f"the patch cannot be applied: {exc}") from exc
        if not isinstance(patched, dict) or patched.get("resourceType") != resource_type \
                or patched.get("id") != id:
            raise InvalidInput("a patch may not change the resource type or id")
        return self.update(resource_type, id, patched, method="PATCH")

    def delete(self, resource_type: str, id: str, *, if_match: str | None = None) -> Version | None:
        """DELETE: keeps history; deleting a deleted or unknown resource succeeds (idempotent)."""
        self.require_type(resource_type)
        row = self._row(resource_type, id, lock=True)
        self._check_version(row, if_match)
        if row is None or row.deleted:
            return None
        ts = self.clock()
        version = row.version + 1
        self.conn.execute(update(resources).where(resources.c.pk == row.pk).values(
            version=version, last_updated=ts, deleted=True, content=None))
        self.conn.execute(insert(history).values(
            resource_pk=row.pk, resource_type=resource_type, id=id, version=version,
            last_updated=ts, method="DELETE", content=None))
        self.indexer.unindex(self.conn, row.pk)
        self.events.append(ResourceWritten(resource_type, id, version, "DELETE", None))
        return Version(resource_type, id, version, ts, None)

    def conditional_delete(self, resource_type: str, query: str | Sequence[tuple[str, str]], *,
                           multiple: bool = False) -> int:
        found = self.match(resource_type, query)
        if len(found) > 1 and not multiple:
            raise PreconditionFailed(f"the condition matches {len(found)} resources")
        for id in found:
            self.delete(resource_type, id)
        return len(found)

    # -- internals ---------------------------------------------------------------------------

    def _resource_type(self, resource: Any) -> str:
        if not isinstance(resource, dict):
            raise InvalidInput("a resource is a JSON object")
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or not self.defs.is_resource(resource_type):
            raise InvalidInput(f"unknown resourceType {resource_type!r}")
        return resource_type

    @staticmethod
    def _check_version(row: Any, if_match: str | None) -> None:
        """``If-Match: W/"n"`` (https://hl7.org/fhir/R4/http.html#concurrency)."""
        if if_match is None:
            return
        wanted = if_match.strip()
        wanted = wanted[2:] if wanted.startswith("W/") else wanted
        wanted = wanted.strip('"')
        current = None if row is None or row.deleted else str(row.version)
        if wanted != current:
            raise PreconditionFailed(
                f"version {wanted} was required, the current version is {current or 'none'}")

    def _store(self, resource_type: str, id: str, resource: dict[str, Any], method: str,
               row: Any) -> Version:
        ts = self.clock()
        version = 1 if row is None else row.version + 1
        meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in SERVER_META}
        stored = _ordered({**resource, "id": id,
                           "meta": {**meta, "versionId": str(version), "lastUpdated": instant(ts)}})
        try:
            self.validator.check(stored)
        except ValidationFailed as exc:
            if self.expression_prefix:
                for issue in exc.issues:
                    expression = issue.get("expression", "")
                    if expression.startswith(resource_type):
                        issue["expression"] = self.expression_prefix + \
                            expression[len(resource_type):]
            raise
        self._check_references(resource_type, id, stored)
        content = json.dumps(stored, separators=(",", ":"), ensure_ascii=False)
        try:
            if row is None:
                inserted = self.conn.execute(insert(resources).values(
                    resource_type=resource_type, id=id, version=version, last_updated=ts,
                    deleted=False, content=content)).inserted_primary_key
                assert inserted is not None
                pk = inserted[0]
            else:
                pk = row.pk
                self.conn.execute(update(resources).where(resources.c.pk == pk).values(
                    version=version, last_updated=ts, deleted=False, content=content))
            self.conn.execute(insert(history).values(
                resource_pk=pk, resource_type=resource_type, id=id, version=version,
                last_updated=ts, method=method, content=content))
        except IntegrityError as exc:
            raise Conflict(f"{resource_type}/{id} was written concurrently; retry") from exc
        if row is None and self.defer_reference_check:
            for table, rows in self.indexer.rows(pk, stored).items():
                self._pending_index.setdefault(table, []).extend(rows)
        else:
            self.indexer.index(self.conn, pk, stored, fresh=row is None)
        self.events.append(ResourceWritten(resource_type, id, version, method, stored))
        return Version(resource_type, id, version, ts, stored, created=row is None or row.deleted)

    def _check_references(self, resource_type: str, id: str, resource: dict[str, Any]) -> None:
        """Relative references must name live resources on this server (as HAPI FHIR does)."""
        if not self.referential_integrity:
            return
        wanted: dict[tuple[str, str], str] = {}
        for path, reference in references(resource, self.expression_prefix or resource_type):
            m = LOCAL_REFERENCE.match(reference)
            if m and self.defs.is_resource(m.group("type")) \
                    and (m.group("type"), m.group("id")) != (resource_type, id):
                wanted.setdefault((m.group("type"), m.group("id")), path)
        if self.defer_reference_check:
            for key, path in wanted.items():
                self._pending_references.setdefault(key, path)
            return
        self._require_existing(wanted)

    def flush_index(self) -> None:
        """Write the index rows collected for new resources (before anything searches)."""
        pending, self._pending_index = self._pending_index, {}
        self.indexer.write(self.conn, pending)

    def check_deferred_references(self) -> None:
        """Verify the references collected while ``defer_reference_check`` was on."""
        pending, self._pending_references = self._pending_references, {}
        self._require_existing(pending)

    def _require_existing(self, wanted: dict[tuple[str, str], str]) -> None:
        if not wanted:
            return
        keys = list(wanted)
        found: set[tuple[str, str]] = set()
        for start in range(0, len(keys), 200):
            chunk = keys[start:start + 200]
            rows = self.conn.execute(select(resources.c.resource_type, resources.c.id).where(
                resources.c.deleted.is_(False),
                or_(*(and_(resources.c.resource_type == t, resources.c.id == i)
                      for t, i in chunk))))
            found.update((r.resource_type, r.id) for r in rows)
        missing = [{"severity": "error", "code": "not-found", "expression": path,
                    "diagnostics": f"{key[0]}/{key[1]} does not exist on this server"}
                   for key, path in wanted.items() if key not in found]
        if missing:
            raise ValidationFailed(f"{missing[0]['expression']}: {missing[0]['diagnostics']}",
                                   missing)


def _version(row: Any) -> Version:
    return Version(row.resource_type, row.id, row.version, row.last_updated,
                   None if row.content is None else json.loads(row.content))


def _unchanged(version: Version) -> Version:
    return Version(version.resource_type, version.id, version.version, version.last_updated,
                   version.resource, created=False, changed=False)
