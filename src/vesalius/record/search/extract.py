"""Index values of a resource, extracted with each SearchParameter's FHIRPath expression and
normalized by parameter type and value shape (https://hl7.org/fhir/R4/search.html#ptypes)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models

from vesalius.record.definitions import Definitions, SearchParam
from vesalius.record.references import references
from vesalius.record.search.fastpath import FastPaths
from vesalius.record.search.values import (
    MAX_DATE,
    MIN_DATE,
    STRING_LENGTH,
    date_range,
    normalize,
)

log = logging.getLogger(__name__)

Row = dict[str, Any]
#: Index name of references that no search parameter covers (never a parameter name).
OTHER_REFERENCES = "$ref"
#: Parameters answered from ``fhir_resources`` columns rather than index rows.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})

_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_CURRENCY_SYSTEM = "urn:iso:std:iso:4217"


_AS_OPERATOR = re.compile(r"\(([^()]+?) as (\w+)\)")
_AS_FUNCTION = re.compile(r"\.as\((\w+)\)")
_PRIMITIVES = frozenset({
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary",
    "instant", "date", "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt",
    "positiveInt", "uuid"})


def _of_type(match: re.Match[str], subject: str) -> str:
    name = match[2] if match.lastindex == 2 else match[1]
    lowered = name[:1].lower() + name[1:]
    return f"{subject}.ofType({lowered if lowered in _PRIMITIVES else name})"


@cache
def lenient(expression: str) -> str:
    """``x as T`` and ``x.as(T)`` as ``x.ofType(T)``, with primitive type names in their
    spelling: the R4 SearchParameter expressions apply ``as`` to collections (several
    components, repeating elements) and write ``DateTime`` for ``dateTime``, which a strict
    FHIRPath engine rejects or never matches."""
    expression = _AS_OPERATOR.sub(lambda m: _of_type(m, m[1]), expression)
    return _AS_FUNCTION.sub(lambda m: _of_type(m, ""), expression)


@cache
def fhirpath(expression: str) -> Callable[..., list[Any]]:
    """A compiled R4 FHIRPath expression (compiled once per process)."""
    compiled: Callable[..., list[Any]] = compile_fhirpath(lenient(expression), models["r4"])
    return compiled


def evaluate(expression: str, resource: dict[str, Any]) -> list[Any]:
    try:
        return list(fhirpath(expression)(resource))
    except Exception:  # fhirpathpy raises bare exceptions; one bad value must not stop a write
        log.warning("search expression %s failed on a %s", expression,
                    resource.get("resourceType"), exc_info=True)
        return []


def _text(value: Any, length: int = STRING_LENGTH) -> str | None:
    return None if value is None else str(value)[:length]


class Extractor:
    """Index rows of a resource, per index table type, without ``resource_pk``."""

    def __init__(self, defs: Definitions, *, base_url: str | None = None) -> None:
        self._defs = defs
        self._base = base_url.rstrip("/") + "/" if base_url else None
        self._fast = FastPaths(defs)

    def single_valued(self, expression: str) -> bool:
        return self._fast.single_valued(lenient(expression))

    def _evaluate(self, expression: str, resource: dict[str, Any]) -> list[Any]:
        fast = self._fast.evaluate(lenient(expression), resource)
        return fast if fast is not None else evaluate(expression, resource)

    def rows(self, resource: dict[str, Any]) -> dict[str, list[Row]]:
        resource_type = str(resource["resourceType"])
        out: dict[str, list[Row]] = {}
        instance = 0
        for param in self._defs.search_params(resource_type).values():
            if param.name in COLUMN_PARAMS or param.type == "special":
                continue
            if param.type == "composite":
                instance = self._composite(resource, param, instance, out)
                continue
            for part in param.parts:
                for value in self._evaluate(part.expression, resource):
                    for row in self.values(param.type, value, part.resolve):
                        out.setdefault(param.type, []).append(
                            {"resource_type": resource_type, "name": param.name,
                             "instance": None, **row})
        self._other_references(resource, out)
        return out

    def references_of(self, resource: dict[str, Any], names: Collection[str]) -> Iterator[Row]:
        """Reference rows of the named reference parameters only (e.g. compartment ones)."""
        params = self._defs.search_params(str(resource["resourceType"]))
        for name in names:
            param = params.get(name)
            if param is None or param.type != "reference":
                continue
            for part in param.parts:
                for value in self._evaluate(part.expression, resource):
                    yield from self.values("reference", value, part.resolve)

    def _other_references(self, resource: dict[str, Any], out: dict[str, list[Row]]) -> None:
        """References no search parameter covers (e.g. ``CareTeam.managingOrganization``),
        under the name ``$ref``: ``$everything`` returns what compartment members reference
        through any element (https://hl7.org/fhir/R4/patient-operation-everything.html)."""
        resource_type = str(resource["resourceType"])
        seen = {(r["target_type"], r["target_id"]) for r in out.get("reference", ())}
        for _path, text in references(resource, contained=False):
            row = self.reference(text)
            key = (row["target_type"], row["target_id"])
            if row["target_id"] is not None and key not in seen:
                seen.add(key)
                out.setdefault("reference", []).append(
                    {"resource_type": resource_type, "name": OTHER_REFERENCES,
                     "instance": None, **row})

    def _composite(self, resource: dict[str, Any], param: SearchParam, instance: int,
                   out: dict[str, list[Row]]) -> int:
        """Component rows of each element instance, sharing an ``instance`` number."""
        resource_type = str(resource["resourceType"])
        for part in param.parts:
            context = self._fast.landing(lenient(part.expression))
            for i, node in enumerate(self._evaluate(part.expression, resource)):
                instance += 1
                for position, component in enumerate(param.components):
                    values = self._fast.evaluate(lenient(component.expression), node,
                                                 context) if context else None
                    if values is None:
                        values = evaluate(f"({part.expression})[{i}].{component.expression}",
                                          resource)
                    for value in values:
                        for row in self.values(component.type, value, None):
                            out.setdefault(component.type, []).append(
                                {"resource_type": resource_type,
                                 "name": f"{param.name}${position}", "instance": instance,
                                 **row})
        return instance

    def values(self, param_type: str, value: Any, resolve: str | None) -> Iterator[Row]:
        """Index rows (type-specific columns) of one extracted value."""
        if param_type == "string":
            yield from _strings(value)
        elif param_type == "token":
            yield from _tokens(value)
        elif param_type == "date":
            yield from _dates(value)
        elif param_type == "number":
            yield from _numbers(value)
        elif param_type == "quantity":
            yield from _quantities(value)
        elif param_type == "reference":
            yield from (row for row in self._references(value)
                        if resolve is None or row["target_type"] == resolve)
        elif param_type == "uri" and isinstance(value, str):
            yield {"value": value[:512]}

    def _references(self, value: Any) -> Iterator[Row]:
        if isinstance(value, str):  # canonical / uri
            yield self.reference(value)
            return
        if not isinstance(value, dict):
            return
        ref = value.get("reference")
        if isinstance(ref, str):
            yield self.reference(ref)
        identifier = value.get("identifier")
        if isinstance(identifier, dict) and identifier.get("value") is not None:
            yield {"target_type": _text(value.get("type"), 64), "target_id": None, "url": None,
                   "identifier_system": _text(identifier.get("system")),
                   "identifier_value": _text(identifier.get("value"))}

    def reference(self, ref: str) -> Row:
        """Columns of a reference: ``Type/id`` (relative, or absolute on our base) and/or url."""
        url: str | None = None
        relative = ref
        if "://" in ref or ref.startswith(("urn:", "#")):
            url = ref[:512]
            if self._base is None or not ref.startswith(self._base):
                return {"target_type": None, "target_id": None, "url": url,
                        "identifier_system": None, "identifier_value": None}
            relative = ref[len(self._base):]
        segments = relative.split("/")
        if len(segments) >= 2 and self._defs.is_resource(segments[0]):
            return {"target_type": segments[0], "target_id": segments[1][:64], "url": url,
                    "identifier_system": None, "identifier_value": None}
        return {"target_type": None, "target_id": None, "url": ref[:512],
                "identifier_system": None, "identifier_value": None}


def _strings(value: Any) -> Iterator[Row]:
    if isinstance(value, str):
        if value:
            yield {"value": normalize(value), "exact": value}
    elif isinstance(value, dict):
        keys = _NAME_PARTS if "family" in value or "given" in value else (
            _ADDRESS_PARTS if any(k in value for k in _ADDRESS_PARTS[:-1]) else ("text",))
        for key in keys:
            part = value.get(key)
            for item in part if isinstance(part, list) else [part]:
                if isinstance(item, str):
                    yield from _strings(item)


def _tokens(value: Any) -> Iterator[Row]:
    empty = {"system": None, "code": None, "text": None, "type_system": None, "type_code": None}
    if isinstance(value, bool):
        yield {**empty, "code": "true" if value else "false"}
    elif isinstance(value, str | int | float):
        yield {**empty, "code": _text(value)}
    elif not isinstance(value, dict):
        return
    elif "coding" in value or ("text" in value and "value" not in value):
        for coding in value.get("coding", ()):
            yield from _tokens(coding)
        if isinstance(value.get("text"), str):
            yield {**empty, "text": normalize(value["text"])}
    elif "value" in value and value.get("system") in _CONTACT_SYSTEMS:  # ContactPoint
        yield {**empty, "code": _text(value["value"])}
    elif "value" in value:  # Identifier
        row = {**empty, "system": _text(value.get("system")), "code": _text(value["value"])}
        types = value.get("type", {}).get("coding", []) if isinstance(value.get("type"),
                                                                      dict) else []
        if isinstance(value.get("type"), dict) and isinstance(value["type"].get("text"), str):
            row["text"] = normalize(value["type"]["text"])
        if not types:
            yield row
        for coding in types:
            yield {**row, "type_system": _text(coding.get("system")),
                   "type_code": _text(coding.get("code"))}
    elif "code" in value or "system" in value:  # Coding
        display = value.get("display")
        yield {**empty, "system": _text(value.get("system")), "code": _text(value.get("code")),
               "text": normalize(display) if isinstance(display, str) else None}


def _dates(value: Any) -> Iterator[Row]:
    if isinstance(value, str):
        try:
            low, high = date_range(value)
        except ValueError:
            return
        yield {"low": low, "high": high}
    elif isinstance(value, dict):
        if "start" in value or "end" in value:  # Period
            yield {"low": _bound(value.get("start"), 0) or MIN_DATE,
                   "high": _bound(value.get("end"), 1) or MAX_DATE}
        for event in value.get("event", ()):  # Timing
            yield from _dates(event)
        bounds = value.get("repeat", {}).get("boundsPeriod")
        if isinstance(bounds, dict):
            yield from _dates(bounds)


def _bound(value: Any, side: int) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return date_range(value)[side]
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    """fhirpathpy hands decimals back as Decimal, JSON as int/float."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _numbers(value: Any) -> Iterator[Row]:
    if isinstance(value, dict):
        value = value.get("value")
    if _is_number(value):
        yield {"low": float(value), "high": float(value)}


def _quantities(value: Any) -> Iterator[Row]:
    if not isinstance(value, dict):
        return
    if "low" in value or "high" in value:  # Range
        low, high = value.get("low") or {}, value.get("high") or {}
        unit = low or high
        if _is_number(low.get("value", 0.0)) and _is_number(high.get("value", 0.0)):
            yield {"system": _text(unit.get("system")), "code": _text(unit.get("code")),
                   "unit": _text(unit.get("unit")),
                   "low": float(low.get("value", float("-inf"))),
                   "high": float(high.get("value", float("inf")))}
        return
    if not _is_number(value.get("value")):
        return
    number = float(value["value"])
    if "currency" in value:  # Money
        yield {"system": _CURRENCY_SYSTEM, "code": _text(value["currency"]), "unit": None,
               "low": number, "high": number}
        return
    yield {"system": _text(value.get("system")), "code": _text(value.get("code")),
           "unit": _text(value.get("unit")), "low": number, "high": number}
