"""``_include`` and ``_revinclude`` (https://hl7.org/fhir/R4/search.html#include): resources the
page's matches reference, or that reference them, found through the reference index in one query
per directive (and per ``:iterate`` round)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, or_, select

from vesalius.record.definitions import Definitions
from vesalius.record.schema import resources
from vesalius.record.search.query import UnknownParameter
from vesalius.record.search.tables import reference_index

#: Bound on ``:iterate`` rounds, so that a reference cycle cannot run away.
MAX_ITERATIONS = 4

Found = tuple[int, str, str, str]  # pk, resource_type, id, content


@dataclass(frozen=True)
class Directive:
    """One ``_include``/``_revinclude`` value: ``Type:param[:Target]`` or ``*``."""

    reverse: bool
    source_type: str | None  # None for *
    param: str | None  # None for * (every reference parameter)
    target_type: str | None
    iterate: bool

    @classmethod
    def parse(cls, defs: Definitions, key: str, value: str) -> Directive:
        head, _, modifier = key.partition(":")
        if modifier not in ("", "iterate", "recurse"):
            raise UnknownParameter(f"unknown modifier :{modifier} of {head}")
        reverse, iterate = head == "_revinclude", bool(modifier)
        if value == "*":
            return cls(reverse, None, None, None, iterate)
        parts = value.split(":")
        if len(parts) not in (2, 3) or not defs.is_resource(parts[0]):
            raise UnknownParameter(f"{head}={value!r} is not Type:parameter[:TargetType]")
        param = defs.search_params(parts[0]).get(parts[1])
        if param is None or param.type != "reference":
            raise UnknownParameter(f"{head}: {parts[0]} has no reference parameter {parts[1]!r}")
        target = parts[2] if len(parts) == 3 else None
        if target is not None and not defs.is_resource(target):
            raise UnknownParameter(f"{head}: unknown target type {target!r}")
        return cls(reverse, parts[0], parts[1], target, iterate)


def include(conn: Connection, directives: list[Directive], matches: list[Found],
            restrict: ColumnElement[bool] | None) -> list[Found]:
    """Included resources, deduplicated and excluding the matches, in discovery order."""
    seen = {pk for pk, *_ in matches}
    found: list[Found] = []
    frontier = matches
    for round_ in range(MAX_ITERATIONS + 1):
        active = [d for d in directives if round_ == 0 or d.iterate]
        if not frontier or not active:
            break
        new: list[Found] = []
        for directive in active:
            for row in _run(conn, directive, frontier, restrict):
                if row[0] not in seen:
                    seen.add(row[0])
                    new.append(row)
        found += new
        frontier = new
    return found


def _run(conn: Connection, directive: Directive, sources: list[Found],
         restrict: ColumnElement[bool] | None) -> Iterable[Found]:
    ref = reference_index.alias()
    res = resources  # unaliased: ``restrict`` is written against fhir_resources
    where: list[ColumnElement[bool]] = [res.c.deleted == false()]
    if directive.source_type is not None:
        where.append(ref.c.resource_type == directive.source_type)
    if directive.param is not None:
        where.append(ref.c.name == directive.param)
    if directive.target_type is not None:
        where.append(ref.c.target_type == directive.target_type)
    if restrict is not None:
        where.append(restrict)
    if directive.reverse:
        by_type: dict[str, list[str]] = {}
        for _, resource_type, id_, _content in sources:
            by_type.setdefault(resource_type, []).append(id_)
        where.append(or_(*(and_(ref.c.target_type == t, ref.c.target_id.in_(ids))
                           for t, ids in by_type.items())))
        joined: Any = ref.join(res, res.c.pk == ref.c.resource_pk)
    else:
        where.append(ref.c.resource_pk.in_([pk for pk, *_ in sources]))
        joined = ref.join(res, and_(res.c.resource_type == ref.c.target_type,
                                    res.c.id == ref.c.target_id))
    query = (select(res.c.pk, res.c.resource_type, res.c.id, res.c.content)
             .select_from(joined).where(*where).distinct().order_by(res.c.pk))
    return [(r.pk, r.resource_type, r.id, r.content) for r in conn.execute(query)]
