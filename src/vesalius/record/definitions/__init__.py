"""The official FHIR R4 definitions, compiled by ``scripts/build_fhir_definitions.py``.

``r4.json.gz`` is derived from npm ``hl7.fhir.r4.examples@4.0.1`` (HL7 FHIR R4, CC0): element
definitions of every resource and data type, primitive regexes, expandable required-binding value
sets, every SearchParameter split per resource type, and the Patient CompartmentDefinition.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

#: Search parameter types of FHIR R4 (https://hl7.org/fhir/R4/search.html#ptypes).
PARAM_TYPES = ("number", "date", "string", "token", "reference", "composite", "quantity", "uri",
               "special")


@dataclass(frozen=True)
class ExpressionPart:
    """One ``|``-separated part of a SearchParameter expression for one resource type.

    ``resolve`` is the type named by a lifted ``.where(resolve() is X)`` filter: only
    references to that type are indexed for this part.
    """

    expression: str
    resolve: str | None = None


@dataclass(frozen=True)
class Component:
    param: str
    type: str
    expression: str


@dataclass(frozen=True)
class SearchParam:
    """A SearchParameter as it applies to one resource type."""

    name: str
    type: str
    url: str
    parts: tuple[ExpressionPart, ...]
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()


@dataclass(frozen=True)
class ElementDefinition:
    path: str
    min: int
    max: str
    types: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (type code, reference target types)
    content_reference: str | None = None
    binding: str | None = None
    summary: bool = False  # isSummary: part of the ``_summary=true`` view
    modifier: bool = False  # isModifier


@dataclass
class Definitions:
    raw: dict[str, Any]
    _search: dict[str, dict[str, SearchParam]] = field(default_factory=dict)
    _elements: dict[str, dict[str, ElementDefinition]] = field(default_factory=dict)

    @property
    def resource_types(self) -> frozenset[str]:
        return frozenset(self.raw["resources"])

    @property
    def primitives(self) -> dict[str, str]:
        """Primitive type name → regex the value must match in full ('' = none)."""
        return dict(self.raw["primitives"])

    def is_resource(self, name: str) -> bool:
        return name in self.raw["resources"]

    def structure(self, name: str) -> dict[str, Any] | None:
        """Raw compiled StructureDefinition of a resource or complex data type."""
        return self.raw["types"].get(name)  # type: ignore[no-any-return]

    def elements(self, type_name: str) -> dict[str, ElementDefinition]:
        """Element definitions of a resource or complex type, keyed by path (``Patient.name``)."""
        if type_name not in self._elements:
            structure = self.structure(type_name)
            if structure is None:
                raise KeyError(type_name)
            self._elements[type_name] = {
                path: ElementDefinition(
                    path, int(e["min"]), str(e["max"]),
                    tuple((t["code"], tuple(t.get("targets", ()))) for t in e.get("types", ())),
                    e.get("ref"), e.get("binding"), bool(e.get("summary")),
                    bool(e.get("modifier")))
                for path, e in structure["elements"].items()}
        return self._elements[type_name]

    def value_set_codes(self, url: str) -> frozenset[tuple[str, str]] | None:
        """(system, code) pairs of a required value set, or None if not expandable offline."""
        codes = self.raw["valueSets"].get(url.split("|")[0])
        return None if codes is None else frozenset((s, c) for s, c in codes)

    def search_params(self, resource_type: str) -> dict[str, SearchParam]:
        """Every search parameter that applies to ``resource_type`` (incl. ``_id``, ``_tag``…)."""
        if resource_type not in self._search:
            params: dict[str, SearchParam] = {}
            common = self.raw["search"].get("Resource", {})
            own = self.raw["search"].get(resource_type, {})
            for name, p in {**common, **own}.items():
                parts = tuple(
                    ExpressionPart(part["expr"].replace("Resource.", f"{resource_type}.", 1)
                                   if part["expr"].startswith("Resource.") else part["expr"],
                                   part.get("resolve"))
                    for part in p["parts"])
                params[name] = SearchParam(
                    name, p["type"], p["url"], parts, tuple(p.get("target", ())),
                    tuple(Component(c["param"], c["type"], c["expr"])
                          for c in p.get("components", ())))
            self._search[resource_type] = params
        return self._search[resource_type]

    def patient_compartment(self) -> dict[str, tuple[str, ...]]:
        """Resource type → the search parameters that place it in a Patient's compartment."""
        return {k: tuple(v) for k, v in self.raw["patientCompartment"].items()}


@cache
def load() -> Definitions:
    """The compiled R4 definitions (read once per process)."""
    data = resources.files(__package__).joinpath("r4.json.gz").read_bytes()
    return Definitions(json.loads(gzip.decompress(data)))
