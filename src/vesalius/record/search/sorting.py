"""``_sort`` (https://hl7.org/fhir/R4/search.html#sort): each sort parameter is the smallest
(ascending) or largest (descending) indexed value of the resource; resources without one come
last, and the primary key breaks ties so that pages are stable."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, nulls_last, select
from sqlalchemy.sql.expression import FromClause

from vesalius.record.search.criteria import Criteria
from vesalius.record.search.query import UnknownParameter
from vesalius.record.search.tables import TABLES

#: The column a parameter type sorts by, ascending and descending.
_SORT_COLUMNS: dict[str, tuple[str, str]] = {
    "string": ("value", "value"), "token": ("code", "code"), "date": ("low", "high"),
    "number": ("low", "high"), "quantity": ("low", "high"), "uri": ("value", "value"),
    "reference": ("target_id", "target_id"),
}


def order_by(criteria: Criteria, res: FromClause, resource_type: str | None,
             spec: str) -> list[ColumnElement[Any]]:
    """ORDER BY clauses of a ``_sort`` value such as ``-date,name``."""
    clauses: list[ColumnElement[Any]] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        descending = item.startswith("-")
        code = item.lstrip("-")
        param = criteria.param(resource_type, code)
        key: ColumnElement[Any]
        if code == "_id":
            key = res.c.id
        elif code == "_lastUpdated":
            key = res.c.last_updated
        elif param.type in _SORT_COLUMNS:
            table = TABLES[param.type].alias()
            column = table.c[_SORT_COLUMNS[param.type][1 if descending else 0]]
            # by (resource_pk, name) alone: a type filter tempts SQLite into the value index
            key = (select(func.max(column) if descending else func.min(column))
                   .where(table.c.resource_pk == res.c.pk, table.c.name == code)
                   .scalar_subquery())
        else:
            raise UnknownParameter(f"cannot sort by {param.type} parameter {code!r}")
        clauses.append(nulls_last(key.desc() if descending else key.asc()))
    clauses.append(res.c.pk.asc())
    return clauses
