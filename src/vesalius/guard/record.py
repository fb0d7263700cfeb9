"""The record as one caller may use it: every interaction decided by the policy, confined to
the caller's patients, and audited (IHE BALP ``rest`` events with the FHIR interaction as
subtype, success and failure alike).

``RecordGuard`` offers the methods of :class:`RecordService` the FHIR edge calls, with the
same signatures, bound to one :class:`Principal`. What it decides:

- the type and interaction against the caller's role and SMART scopes (403 when the role or
  token lacks it: that discloses nothing about any patient);
- a resource outside the caller's patients answers 404, as if it did not exist;
- searches, ``$everything`` and the chart carry the caller's visibility into the query, so
  totals, pages and ``_include``/``_revinclude`` only ever contain what they may see;
- a write must leave the resource inside the caller's patients (no writing into, or moving a
  resource into, another patient's record).

Type and system history, conditional update/delete and batch/transaction need
organisation-wide patient access (the history table and conditional matching are not
confined per patient); others get 403.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import jsonpatch
import jsonpointer

from vesalius.core.errors import Forbidden, NotFound, VesaliusError
from vesalius.guard.scope import PatientScope, ScopeResolver
from vesalius.record.chart import Chart
from vesalius.record.history import HistoryPage
from vesalius.record.search.engine import SearchResult
from vesalius.record.service import RecordService
from vesalius.record.unit_of_work import Version
from vesalius.security.audit.auditor import Auditor
from vesalius.security.policy import Policy
from vesalius.security.principal import Principal

T = TypeVar("T")
#: FHIR interaction → (audit action, SMART letter).
_ACTIONS = {"read": ("R", "r"), "vread": ("R", "r"), "history-instance": ("R", "r"),
            "history-type": ("R", "r"), "history-system": ("R", "r"),
            "search-type": ("E", "s"), "search-system": ("E", "s"), "create": ("C", "c"),
            "update": ("U", "u"), "patch": ("U", "u"), "delete": ("D", "d"),
            "operation": ("E", "r"), "batch": ("E", "c"), "transaction": ("E", "c")}


def _patient_asked(resource_type: str | None, params: Sequence[tuple[str, str]]) -> str:
    """The one patient a search names (``patient=``, ``subject=``, ``Patient?_id=``), for the
    audit record; empty when it names none or several."""
    names = ("_id",) if resource_type == "Patient" else ("patient", "subject")
    found = {value.removeprefix("Patient/") for name, value in params
             if name.split(":", 1)[0] in names and "," not in value and value}
    return found.pop() if len(found) == 1 else ""


class RecordGuard:
    def __init__(self, record: RecordService, policy: Policy, resolver: ScopeResolver,
                 auditor: Auditor, principal: Principal) -> None:
        self._record = record
        self._policy = policy
        self._resolver = resolver
        self._auditor = auditor
        self.principal = principal
        self.defs = record.defs
        self.options = record.options
        self._scope: PatientScope | None = None

    # -- decisions ---------------------------------------------------------------------------
    @property
    def scope(self) -> PatientScope:
        if self._scope is None:
            self._scope = self._resolver.resolve(self.principal)
        return self._scope

    def _readable_types(self) -> frozenset[str] | None:
        """Types the caller may read, or None for every type."""
        allowed = self._policy.resource_allowed
        if allowed(self.principal, "*", "r") and allowed(self.principal, "*", "s"):
            return None
        return frozenset(t for t in self.defs.resource_types
                         if allowed(self.principal, t, "r"))

    def _audit(self, interaction: str, outcome: int, *, patient: str = "", what: str = "",
               desc: str = "") -> None:
        action = _ACTIONS[interaction][0]
        self._auditor.record(self.principal, type="rest", subtype=interaction, action=action,
                             outcome=outcome, how="fhir", patient=patient, what=what,
                             outcome_desc=desc)

    def _run(self, interaction: str, resource_type: str, fn: Callable[[], T], *,
             what: str = "", patient: str = "") -> T:
        """Check the type-level permission, run ``fn``, and audit either way."""
        letter = _ACTIONS[interaction][1]
        if not self._policy.resource_allowed(self.principal, resource_type, letter):
            self._audit(interaction, 4, what=what, patient=patient,
                        desc=f"role or scope does not allow {interaction} on {resource_type}")
            raise Forbidden(f"you may not {interaction.split('-')[0]} {resource_type} resources")
        try:
            result = fn()
        except VesaliusError as error:
            self._audit(interaction, 4 if isinstance(error, NotFound) else 8, what=what,
                        patient=patient, desc=error.code)
            raise
        return result

    def _visible(self, resource: dict[str, Any] | None, resource_type: str, id: str) -> str:
        """The resource's first patient when the caller may see it; NotFound otherwise."""
        patients = self._record.patients_of(resource) if resource else frozenset()
        visibility = self.scope.visibility(self._readable_types())
        if not visibility.allows(resource_type, patients, self.defs):
            raise NotFound(f"{resource_type}/{id} is not known")
        return min(patients) if patients else ""

    def _require_everyone(self, what: str) -> None:
        if self.scope.patients is not None:
            raise Forbidden(f"{what} needs access to every patient's record")

    def _check_write(self, resource: dict[str, Any]) -> str:
        """Every patient a written resource belongs to must be one of the caller's."""
        patients = self._record.patients_of(resource)
        kind = str(resource.get("resourceType", ""))
        if self.scope.patients is not None and (kind == "Patient" or patients):
            if kind == "Patient" and not resource.get("id"):
                return ""  # registering a new patient
            if not patients or not all(self.scope.has_patient(p) for p in patients):
                raise NotFound("the patient this resource belongs to is not known")
        return min(patients) if patients else ""

    # -- reads -------------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> Version:
        what = f"{resource_type}/{id}"

        def run() -> Version:
            version = self._record.read(resource_type, id)
            patient = self._visible(version.resource, resource_type, id)
            self._audit("read", 0, patient=patient, what=what)
            return version
        return self._run("read", resource_type, run, what=what)

    def vread(self, resource_type: str, id: str, version: str) -> Version:
        what = f"{resource_type}/{id}"

        def run() -> Version:
            self._visible(self._record.read(resource_type, id).resource, resource_type, id)
            found = self._record.vread(resource_type, id, version)
            self._audit("vread", 0, what=f"{what}/_history/{version}")
            return found
        return self._run("vread", resource_type, run, what=what)

    def history(self, resource_type: str | None = None, id: str | None = None, *,
                since: datetime | None = None, count: int | None = None,
                offset: int = 0) -> HistoryPage:
        interaction = ("history-instance" if id else "history-type" if resource_type
                       else "history-system")

        def run() -> HistoryPage:
            if resource_type is not None and id is not None:
                try:
                    current = self._record.read(resource_type, id).resource
                except NotFound:  # deleted: the last version says whose it was
                    page = self._record.history(resource_type, id, count=2)
                    current = next((e.resource for e in page.entries if e.resource), None)
                self._visible(current, resource_type, id)
            else:
                self._require_everyone("history across resources")
            page = self._record.history(resource_type, id, since=since, count=count,
                                        offset=offset)
            self._audit(interaction, 0, what=f"{resource_type or ''}/{id or ''}".strip("/"))
            return page
        return self._run(interaction, resource_type or "*", run)

    def search(self, resource_type: str | None, params: Sequence[tuple[str, str]], *,
               strict: bool = False) -> SearchResult:
        interaction = "search-type" if resource_type else "search-system"

        def run() -> SearchResult:
            visibility = self.scope.visibility(self._readable_types())
            result = self._record.search(resource_type, params, strict=strict,
                                         visibility=visibility)
            self._audit(interaction, 0, what=resource_type or "",
                        patient=_patient_asked(resource_type, params))
            return result
        return self._run(interaction, resource_type or "*", run)

    def everything(self, patient_id: str, *, since: datetime | None = None,
                   types: Sequence[str] | None = None, count: int | None = None,
                   offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        def run() -> tuple[list[dict[str, Any]], int]:
            if not self.scope.has_patient(patient_id):
                raise NotFound(f"Patient/{patient_id} is not known")
            found = self._record.everything(
                patient_id, since=since, types=types, count=count, offset=offset,
                visibility=self.scope.visibility(self._readable_types()))
            self._audit("operation", 0, patient=patient_id, what="Patient/$everything")
            return found
        return self._run("operation", "Patient", run, patient=patient_id)

    def chart(self, patient_id: str, *, dicomweb: str, limit: int = 5000) -> Chart:
        def run() -> Chart:
            if not self.scope.has_patient(patient_id):
                raise NotFound(f"Patient/{patient_id} is not known")
            chart = self._record.chart(
                patient_id, dicomweb=dicomweb, limit=limit,
                visibility=self.scope.visibility(self._readable_types()))
            self._audit("read", 0, patient=patient_id, what=f"Patient/{patient_id}/chart")
            return chart
        return self._run("read", "Patient", run, patient=patient_id)

    def validate(self, resource: Any) -> list[dict[str, str]]:
        return self._record.validate(resource)  # discloses nothing stored

    def require_function(self, function: str) -> None:
        """Functions that are not plain FHIR interactions (merging patients…)."""
        if not self._policy.may_use(self.principal, function):
            self._auditor.record(self.principal, type="110113", subtype="110132", action="E",
                                 outcome=4, how="fhir", outcome_desc=f"{function} refused")
            raise Forbidden(f"you may not use {function}")

    def merge(self, source: str, target: str, run: Callable[[], T]) -> T:
        """Merge two Patients the caller can see (``Patient/$merge``), audited on both."""
        self.require_function("patient.merge")
        for patient in (source, target):
            if not self.scope.has_patient(patient):
                raise NotFound(f"Patient/{patient} is not known")
        result = self._run("operation", "Patient", run, what="Patient/$merge", patient=source)
        for patient in (source, target):
            self._audit("operation", 0, patient=patient, what="Patient/$merge")
        return result

    # -- writes ------------------------------------------------------------------------------
    def create(self, resource: Any, *, if_none_exist: str | None = None) -> Version:
        kind = str(resource.get("resourceType", "")) if isinstance(resource, dict) else ""

        def run() -> Version:
            patient = self._check_write(resource) if isinstance(resource, dict) else ""
            if if_none_exist:
                self._require_everyone("conditional create")
            version = self._record.create(resource, if_none_exist=if_none_exist)
            self._audit("create", 0, patient=patient, what=version.location)
            return version
        return self._run("create", kind, run)

    def _writable(self, resource_type: str, id: str) -> None:
        try:
            current = self._record.read(resource_type, id).resource
        except NotFound:
            return  # update-as-create: the new content decides
        self._visible(current, resource_type, id)

    def update(self, resource_type: str, id: str, resource: Any, *,
               if_match: str | None = None) -> Version:
        what = f"{resource_type}/{id}"

        def run() -> Version:
            self._writable(resource_type, id)
            patient = self._check_write(resource) if isinstance(resource, dict) else ""
            version = self._record.update(resource_type, id, resource, if_match=if_match)
            self._audit("update", 0, patient=patient, what=what)
            return version
        return self._run("update", resource_type, run, what=what)

    def conditional_update(self, resource_type: str, query: str | Sequence[tuple[str, str]],
                           resource: Any) -> Version:
        def run() -> Version:
            self._require_everyone("conditional update")
            version = self._record.conditional_update(resource_type, query, resource)
            self._audit("update", 0, what=version.location)
            return version
        return self._run("update", resource_type, run)

    def patch(self, resource_type: str, id: str, operations: Any, *,
              if_match: str | None = None) -> Version:
        what = f"{resource_type}/{id}"

        def run() -> Version:
            current = self._record.read(resource_type, id).resource or {}
            self._visible(current, resource_type, id)
            try:  # where the patch would move the resource (the service re-checks the patch)
                patched = jsonpatch.apply_patch(current, operations)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
                    TypeError, ValueError, AttributeError, KeyError):
                patched = current
            patient = self._check_write(patched if isinstance(patched, dict) else current)
            version = self._record.patch(resource_type, id, operations, if_match=if_match)
            self._audit("patch", 0, patient=patient, what=what)
            return version
        return self._run("patch", resource_type, run, what=what)

    def delete(self, resource_type: str, id: str, *, if_match: str | None = None) -> None:
        what = f"{resource_type}/{id}"

        def run() -> None:
            try:
                current = self._record.read(resource_type, id).resource
            except NotFound:
                current = None
            patient = self._visible(current, resource_type, id) if current else ""
            self._record.delete(resource_type, id, if_match=if_match)
            self._audit("delete", 0, patient=patient, what=what)
        self._run("delete", resource_type, run, what=what)

    def conditional_delete(self, resource_type: str, query: str | Sequence[tuple[str, str]], *,
                           multiple: bool = False) -> int:
        def run() -> int:
            self._require_everyone("conditional delete")
            deleted = self._record.conditional_delete(resource_type, query, multiple=multiple)
            self._audit("delete", 0, what=resource_type)
            return deleted
        return self._run("delete", resource_type, run)

    def process_bundle(self, bundle: Any, *, base: str, representation: bool = False
                       ) -> dict[str, Any]:
        kind = "transaction" if isinstance(bundle, dict) and bundle.get(
            "type") == "transaction" else "batch"

        def run() -> dict[str, Any]:
            self._require_everyone(f"a {kind}")
            for entry in (bundle.get("entry") or []) if isinstance(bundle, dict) else []:
                self._check_entry(entry)
            result = self._record.process_bundle(bundle, base=base,
                                                 representation=representation)
            self._audit(kind, 0, what=f"Bundle ({kind})")
            return result
        return self._run(kind, "*", run)

    def _check_entry(self, entry: Any) -> None:
        """Each entry's method needs the caller's permission on its type."""
        if not isinstance(entry, dict):
            return
        request = entry.get("request") or {}
        method = str(request.get("method", "")).upper()
        url = str(request.get("url", "")).split("?", 1)[0].strip("/")
        kind = url.split("/", 1)[0] if url else ""
        if not kind and isinstance(entry.get("resource"), dict):
            kind = str(entry["resource"].get("resourceType", ""))
        letter = {"GET": "r", "HEAD": "r", "POST": "c", "PUT": "u", "PATCH": "u",
                  "DELETE": "d"}.get(method)
        if letter and kind and self.defs.is_resource(kind) and not (
                self._policy.resource_allowed(self.principal, kind, letter)):
            raise Forbidden(f"you may not {method} {kind} resources")
