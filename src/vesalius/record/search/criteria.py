"""One search parameter (with its modifiers, chains and reverse chains) as a SQL condition on a
row of ``fhir_resources``, driven by the SearchParameter definitions
(https://hl7.org/fhir/R4/search.html).

Each condition is ``pk IN (SELECT resource_pk FROM <index> WHERE resource_type = … AND name = …
AND <value>)``, so the database answers it from the ``(resource_type, name, value)`` indexes.
Comma-separated values are alternatives within one condition; the caller ANDs repeated
parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true, union_all
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.operators import in_op

from vesalius.core.errors import InvalidInput
from vesalius.record.definitions import Definitions, SearchParam
from vesalius.record.schema import resources
from vesalius.record.search import matching
from vesalius.record.search.extract import Extractor
from vesalius.record.search.query import (
    ParamName,
    UnknownParameter,
    missing_flag,
    split_unescaped,
    unescape,
    values_of,
)
from vesalius.record.search.tables import TABLES, reference_index

Condition = ColumnElement[bool]

#: Modifiers understood per parameter type, besides ``:missing`` (and a resource type on a
#: reference) — https://hl7.org/fhir/R4/search.html#modifiers
MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"exact", "contains"}),
    "token": frozenset({"text", "not", "of-type"}),
    "uri": frozenset({"below", "above"}),
    "reference": frozenset({"identifier"}),
}


class Criteria:
    def __init__(self, defs: Definitions, *, base_url: str | None = None) -> None:
        self._defs = defs
        self._extractor = Extractor(defs, base_url=base_url)

    def params(self, resource_type: str | None) -> dict[str, SearchParam]:
        """Parameters of a type; without one, those common to all resources."""
        if resource_type is None:
            return {k: v for k, v in self._defs.search_params("Resource").items()
                    if k.startswith("_")}
        return self._defs.search_params(resource_type)

    def param(self, resource_type: str | None, code: str) -> SearchParam:
        param = self.params(resource_type).get(code)
        if param is None or param.type == "special":
            where = f" of {resource_type}" if resource_type else ""
            raise UnknownParameter(f"unknown search parameter {code!r}{where}")
        return param

    def condition(self, res: FromClause, resource_type: str | None, key: str,
                  raw: str) -> Condition:
        """``key=raw`` on the resource row ``res`` (an alias of ``fhir_resources``)."""
        if key.startswith("_has:"):
            return self._has(res, resource_type, key, raw)
        name = ParamName.parse(key)
        param = self.param(resource_type, name.code)
        if name.chain is not None:
            return self._chain(res, resource_type, param, name, raw)
        self._check_modifier(resource_type, param, name)
        if name.modifier == "missing":
            return self._missing(res, resource_type, param, missing_flag(key, raw))
        values = values_of(raw)
        if param.name == "_id":
            return res.c.id.in_([unescape(v) for v in values])
        if param.name == "_lastUpdated":
            col = res.c.last_updated
            return or_(*(matching.date(key, col, col, v, point=True, aware=True)
                         for v in values))
        if param.type == "composite":
            return or_(*(res.c.pk.in_(self._composite(resource_type, param, v)) for v in values))
        table = TABLES[param.type].alias()
        rows = select(table.c.resource_pk).where(
            *_scope(table, resource_type, param.name),
            or_(*(self._value(key, param.type, name.modifier, table, v) for v in values)))
        if name.modifier == "not":
            return res.c.pk.not_in(rows)
        return res.c.pk.in_(rows)

    def single_valued(self, resource_type: str | None, key: str) -> bool:
        """Whether ``key`` is a plain date parameter with at most one value per resource: then
        repeated criteria (``date=ge…&date=lt…``) may be tested on the same index row."""
        if resource_type is None or ":" in key or "." in key or key.startswith("_"):
            return False
        param = self.params(resource_type).get(key)
        return (param is not None and param.type == "date" and len(param.parts) == 1
                and param.parts[0].resolve is None
                and self._extractor.single_valued(param.parts[0].expression))

    def conjunction(self, res: FromClause, resource_type: str, key: str,
                    raws: list[str]) -> Condition:
        """All of ``raws`` (repeated ``key=…``) on one index row, in one index lookup — for a
        ``single_valued`` parameter, the same as ANDing one condition per value, but a range
        like ``date=ge2020-01&date=lt2020-02`` reads only the rows inside it."""
        param = self.param(resource_type, key)
        table = TABLES[param.type].alias()
        rows = select(table.c.resource_pk).where(
            *_scope(table, resource_type, param.name),
            *(or_(*(self._value(key, param.type, None, table, v) for v in values_of(raw)))
              for raw in raws))
        return res.c.pk.in_(rows)

    def _check_modifier(self, resource_type: str | None, param: SearchParam,
                        name: ParamName) -> None:
        modifier = name.modifier
        if modifier is None or modifier == "missing":
            return
        allowed = MODIFIERS.get(param.type, frozenset())
        if param.name in ("_id", "_lastUpdated"):
            allowed = frozenset()
        if modifier in allowed:
            return
        if param.type == "reference" and self._defs.is_resource(modifier) and (
                not param.targets or modifier in param.targets):
            return
        raise UnknownParameter(f"unknown modifier :{modifier} of search parameter "
                               f"{param.name!r}" + (f" of {resource_type}" if resource_type
                                                    else ""))

    def _missing(self, res: FromClause, resource_type: str | None, param: SearchParam,
                 missing: bool) -> Condition:
        """``:missing`` (https://hl7.org/fhir/R4/search.html#modifiers)."""
        if param.name in ("_id", "_lastUpdated"):
            return false() if missing else true()
        if param.type == "composite":
            table = TABLES[param.components[0].type].alias()
            name = f"{param.name}$0"
        else:
            table, name = TABLES[param.type].alias(), param.name
        rows = select(table.c.resource_pk).where(*_scope(table, resource_type, name))
        return res.c.pk.not_in(rows) if missing else res.c.pk.in_(rows)

    def _value(self, key: str, param_type: str, modifier: str | None, table: FromClause,
               value: str) -> Condition:
        if param_type == "string":
            return matching.string(table, modifier, value)
        if param_type == "token":
            return matching.token(key, table, modifier, value)
        if param_type == "date":
            return matching.date(key, table.c.low, table.c.high, value)
        if param_type == "number":
            return matching.number(key, table, value)
        if param_type == "quantity":
            return matching.quantity(key, table, value)
        if param_type == "uri":
            return matching.uri(table, modifier, value)
        if param_type == "reference":
            return self._reference(table, modifier, value)
        raise UnknownParameter(f"search parameter {key!r} of type {param_type} is not supported")

    def _reference(self, table: FromClause, modifier: str | None, value: str) -> Condition:
        """``id``, ``Type/id``, an absolute URL (on our base: as ``Type/id``), or a canonical
        (https://hl7.org/fhir/R4/search.html#reference)."""
        c = table.c
        if modifier == "identifier":
            return matching.identifier(table, value)
        text = unescape(value)
        if "/" not in text:
            condition: Condition = c.target_id == text
            return and_(condition, c.target_type == modifier) if modifier else condition
        row = self._extractor.reference(text)
        if row["target_id"] is not None:
            if modifier and modifier != row["target_type"]:
                return false()
            condition = and_(c.target_type == row["target_type"],
                             c.target_id == row["target_id"])
            return or_(condition, c.url == text) if row["url"] else condition
        return c.url == text

    def _chain(self, res: FromClause, resource_type: str | None, param: SearchParam,
               name: ParamName, raw: str) -> Condition:
        """``ref[:Type].param=value``; an ambiguous target searches every target type that
        has the chained parameter (https://hl7.org/fhir/R4/search.html#chaining)."""
        if param.type != "reference" or name.chain is None:
            raise UnknownParameter(f"search parameter {param.name!r} cannot be chained")
        if name.modifier is not None:
            self._check_modifier(resource_type, param, name)
            targets: tuple[str, ...] = (name.modifier,)
        else:
            targets = param.targets or tuple(sorted(self._defs.resource_types))
        alternatives: list[Select[Any]] = []
        first_error: UnknownParameter | None = None
        for target_type in targets:
            target = resources.alias()
            try:
                matched = self.condition(target, target_type, name.chain, raw)
            except UnknownParameter as error:
                first_error = first_error or error
                continue
            ids = select(target.c.id).where(*of_type(target, target_type, [matched]),
                                            target.c.deleted == false(), matched)
            # one index lookup per target type (an OR across types would defeat the index)
            table = reference_index.alias()
            alternatives.append(select(table.c.resource_pk).where(
                *_scope(table, resource_type, param.name), table.c.target_type == target_type,
                table.c.target_id.in_(ids)))
        if not alternatives:
            assert first_error is not None
            raise first_error
        rows = alternatives[0] if len(alternatives) == 1 else union_all(*alternatives)
        return res.c.pk.in_(rows)

    def _has(self, res: FromClause, resource_type: str | None, key: str,
             raw: str) -> Condition:
        """``_has:Type:ref:param=value``: resources referenced by a ``Type`` that matches
        (https://hl7.org/fhir/R4/search.html#has); ``param`` may itself be ``_has:…``."""
        parts = key.split(":", 3)
        if len(parts) != 4 or not self._defs.is_resource(parts[1]):
            raise UnknownParameter(f"search parameter {key!r} is not _has:Type:reference:param")
        _, other_type, ref_name, rest = parts
        if self.param(other_type, ref_name).type != "reference":
            raise UnknownParameter(f"{other_type}.{ref_name} in {key!r} is not a reference")
        other, ref = resources.alias(), reference_index.alias()
        target_type: Any = resource_type if resource_type is not None else res.c.resource_type
        ids = (select(ref.c.target_id)
               .select_from(ref.join(other, other.c.pk == ref.c.resource_pk))
               .where(ref.c.resource_type == other_type, ref.c.name == ref_name,
                      ref.c.target_type == target_type, other.c.deleted == false(),
                      self.condition(other, other_type, rest, raw)))
        return res.c.id.in_(ids)

    def _composite(self, resource_type: str | None, param: SearchParam,
                   value: str) -> Select[Any]:
        """Resources with one element instance matching every ``$``-separated component
        (https://hl7.org/fhir/R4/search.html#composite)."""
        parts = split_unescaped(value, "$")
        if len(parts) != len(param.components):
            raise InvalidInput(f"search parameter {param.name}: {value!r} needs "
                               f"{len(param.components)} $-separated values")
        tables = [TABLES[c.type].alias() for c in param.components]
        joined: Any = tables[0]
        conditions: list[Condition] = []
        for position, (component, table, part) in enumerate(
                zip(param.components, tables, parts, strict=True)):
            if position:
                joined = joined.join(table, and_(table.c.resource_pk == tables[0].c.resource_pk,
                                                 table.c.instance == tables[0].c.instance))
            conditions += [*_scope(table, resource_type, f"{param.name}${position}"),
                           self._value(param.name, component.type, None, table, part)]
        return select(tables[0].c.resource_pk).select_from(joined).where(*conditions)


def drives(condition: Condition, res: FromClause) -> bool:
    """Whether ``condition`` is ``res.pk IN (index lookup)``: a row source that already implies
    the resource type (index rows are scoped by type)."""
    return (isinstance(condition, BinaryExpression) and condition.operator is in_op
            and getattr(condition.left, "key", None) == "pk"
            and getattr(condition.left, "table", None) is res)


def of_type(res: FromClause, resource_type: str | None,
            conditions: Sequence[Condition]) -> list[Condition]:
    """``res.resource_type = …``, unless an index lookup among ``conditions`` implies it: the
    planner then starts from the lookup (O(matches)) instead of walking every resource of the
    type through the type index (O(resources))."""
    if resource_type is None or any(drives(c, res) for c in conditions):
        return []
    return [res.c.resource_type == resource_type]


def _scope(table: FromClause, resource_type: str | None, name: str) -> list[Condition]:
    scope: list[Condition] = [table.c.name == name]
    if resource_type is not None:
        scope.insert(0, table.c.resource_type == resource_type)
    return scope

