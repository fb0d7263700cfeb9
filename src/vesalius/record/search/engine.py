"""FHIR search over the index (https://hl7.org/fhir/R4/search.html): filters from the
SearchParameter definitions, then ``_sort``, paging by ``_count``/``_offset``, ``_total`` and
``_include``/``_revinclude``.

Every query filters ``fhir_resources`` (live rows only, plus the caller's ``restrict``
condition, written against ``vesalius.record.schema.resources``) before counting or paging.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, false, func, select

from vesalius.core.errors import InvalidInput
from vesalius.record.definitions import Definitions
from vesalius.record.schema import resources
from vesalius.record.search.compartment import compartment_page
from vesalius.record.search.criteria import Criteria, of_type
from vesalius.record.search.includes import Directive, Found, include
from vesalius.record.search.query import (
    IGNORED_PARAMS,
    SUMMARY_VALUES,
    TOTAL_VALUES,
    UnknownParameter,
    choice,
    non_negative,
)
from vesalius.record.search.sorting import order_by

Restrict = ColumnElement[bool] | None


@dataclass
class SearchResult:
    matches: list[dict[str, Any]]  # resources of this page, in order
    included: list[dict[str, Any]]  # _include/_revinclude results, not in matches
    total: int | None  # None when _total=none
    offset: int
    count: int
    next_offset: int | None
    previous_offset: int | None
    #: Parameters applied, for self/next links — without ``_count``/``_offset`` (see
    #: ``count``/``offset``), ``_format``/``_pretty``, empty values, and, when lenient,
    #: unknown parameters.
    params: list[tuple[str, str]]
    summary: str | None  # _summary as requested; the web edge applies it
    elements: list[str] | None  # _elements as requested; the web edge applies it


@dataclass
class _Plan:
    conditions: list[ColumnElement[bool]]
    applied: list[tuple[str, str]]
    count: int
    offset: int
    sort: list[ColumnElement[Any]]
    directives: list[Directive]
    total: str
    summary: str | None
    elements: list[str] | None


class SearchEngine:
    def __init__(self, defs: Definitions, *, default_count: int = 20, max_count: int = 1000,
                 base_url: str | None = None) -> None:
        self._defs = defs
        self._criteria = Criteria(defs, base_url=base_url)
        self._default_count = default_count
        self._max_count = max_count

    def search(self, conn: Connection, resource_type: str | None,
               params: Sequence[tuple[str, str]], *, strict: bool = False,
               restrict: Restrict = None) -> SearchResult:
        """Search one type, or every type when ``resource_type`` is None (common parameters
        and ``_type`` only). Unknown parameters raise InvalidInput when ``strict``, else are
        dropped (https://hl7.org/fhir/R4/search.html#errors)."""
        plan = self._plan(resource_type, params, strict)
        where = [*self._base(resource_type, restrict, plan.conditions), *plan.conditions]
        total = None
        if plan.total != "none":
            total = conn.execute(select(func.count()).select_from(resources)
                                 .where(*where)).scalar_one()
        rows: list[Found] = []
        if plan.count:
            query = (select(resources.c.pk, resources.c.resource_type, resources.c.id,
                            resources.c.content)
                     .where(*where).order_by(*plan.sort)
                     .limit(plan.count + 1).offset(plan.offset))
            rows = [(r.pk, r.resource_type, r.id, r.content) for r in conn.execute(query)]
        more = len(rows) > plan.count
        rows = rows[:plan.count]
        included = include(conn, plan.directives, rows, restrict) if plan.directives else []
        return SearchResult(
            matches=[json.loads(r[3]) for r in rows],
            included=[json.loads(r[3]) for r in included],
            total=total, offset=plan.offset, count=plan.count,
            next_offset=plan.offset + plan.count if more else None,
            previous_offset=max(0, plan.offset - plan.count)
            if plan.offset and plan.count else None,
            params=plan.applied, summary=plan.summary, elements=plan.elements)

    def match(self, conn: Connection, resource_type: str, params: Sequence[tuple[str, str]],
              *, restrict: Restrict = None) -> list[tuple[int, str]]:
        """(pk, id) of every live resource matching (conditional create/update/delete,
        conditional references); unknown or invalid parameters raise InvalidInput."""
        plan = self._plan(resource_type, params, True)
        query = (select(resources.c.pk, resources.c.id)
                 .where(*self._base(resource_type, restrict, plan.conditions),
                        *plan.conditions)
                 .order_by(resources.c.pk))
        return [(r.pk, r.id) for r in conn.execute(query)]

    def compartment(self, conn: Connection, patient_id: str, *,
                    types: Sequence[str] | None = None, since: datetime | None = None,
                    count: int, offset: int,
                    restrict: Restrict = None) -> tuple[list[dict[str, Any]], int]:
        """Patient/<id>, every live resource in its compartment, and the resources those
        reference outside it (one level): a page in a stable order, and the total
        (https://hl7.org/fhir/R4/patient-operation-everything.html)."""
        unknown = [t for t in types or () if not self._defs.is_resource(t)]
        if unknown:
            raise InvalidInput(f"unknown resource type {unknown[0]!r}")
        rows, total = compartment_page(
            conn, self._defs.patient_compartment(), patient_id, types=types, since=since,
            count=count, offset=offset, restrict=restrict)
        return [json.loads(content) for content in rows], total

    def _base(self, resource_type: str | None, restrict: Restrict,
              conditions: Sequence[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [resources.c.deleted == false(),
                                            *of_type(resources, resource_type, conditions)]
        if restrict is not None:
            where.append(restrict)
        return where

    def _plan(self, resource_type: str | None, params: Sequence[tuple[str, str]],
              strict: bool) -> _Plan:
        if resource_type is not None and not self._defs.is_resource(resource_type):
            raise InvalidInput(f"unknown resource type {resource_type!r}")
        plan = _Plan([], [], self._default_count, 0, [resources.c.pk.asc()], [], "accurate",
                     None, None)
        ranges: dict[str, list[str]] = {}
        for key, value in params:
            if value and self._criteria.single_valued(resource_type, key):
                ranges.setdefault(key, []).append(value)
                plan.applied.append((key, value))
                continue
            try:
                if self._apply(plan, resource_type, key, value):
                    plan.applied.append((key, value))
            except UnknownParameter:
                if strict:
                    raise
        for key, values in ranges.items():
            assert resource_type is not None
            plan.conditions.append(self._criteria.conjunction(resources, resource_type, key,
                                                              values))
        if plan.summary == "count":
            plan.count = 0
        return plan

    def _apply(self, plan: _Plan, resource_type: str | None, key: str, value: str) -> bool:
        """Add one parameter to the plan; False when it is not to be echoed in links."""
        if key in IGNORED_PARAMS or value == "":
            return False
        if key == "_count":
            plan.count = min(non_negative(key, value), self._max_count)
            return False
        if key == "_offset":
            plan.offset = non_negative(key, value)
            return False
        if key == "_sort":
            plan.sort = order_by(self._criteria, resources, resource_type, value)
        elif key.split(":")[0] in ("_include", "_revinclude"):
            plan.directives += [Directive.parse(self._defs, key, v) for v in value.split(",")]
        elif key == "_total":
            plan.total = choice(key, value, TOTAL_VALUES)
        elif key == "_summary":
            plan.summary = choice(key, value, SUMMARY_VALUES)
        elif key == "_elements":
            plan.elements = [e.strip() for e in value.split(",") if e.strip()]
        elif key == "_type" and resource_type is None:
            types = [t.strip() for t in value.split(",") if t.strip()]
            unknown = [t for t in types if not self._defs.is_resource(t)]
            if unknown:
                raise InvalidInput(f"search parameter _type: unknown resource type "
                                   f"{unknown[0]!r}")
            plan.conditions.append(resources.c.resource_type.in_(types))
        else:
            plan.conditions.append(
                self._criteria.condition(resources, resource_type, key, value))
        return True

