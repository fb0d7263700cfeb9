"""Helpers for the record tests on real populations: FHIRPath evaluated directly with
``fhirpathpy`` (not through our extractor), and the Patient compartment of a transaction Bundle
computed from the Bundle itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models

from vesalius.record.definitions import load

_AS_OPERATOR = re.compile(r"\(([^()]+?) as (\w+)\)")
_AS_FUNCTION = re.compile(r"\.as\((\w+)\)")


def _type_name(name: str) -> str:
    """R4 search expressions write ``DateTime``/``String`` for the primitives."""
    lowered = name[:1].lower() + name[1:]
    return lowered if lowered in load().primitives else name


@cache
def fhirpath(expression: str) -> Callable[[dict[str, Any]], list[Any]]:
    """A compiled R4 FHIRPath expression; ``x as T`` becomes ``x.ofType(T)``, because the R4
    search expressions apply ``as`` to collections (repeating components), which FHIRPath only
    allows on single items."""
    expression = _AS_OPERATOR.sub(lambda m: f"{m[1]}.ofType({_type_name(m[2])})", expression)
    expression = _AS_FUNCTION.sub(lambda m: f".ofType({_type_name(m[1])})", expression)
    compiled: Callable[[dict[str, Any]], list[Any]] = compile_fhirpath(expression, models["r4"])
    return compiled


def references(value: Any) -> Iterator[str]:
    """Every ``reference`` string anywhere in a resource (contained resources included)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def everything_expected(bundle: dict[str, Any], patient_url: str) -> set[str]:
    """fullUrls of the Bundle entries that ``Patient/$everything`` of the Patient at
    ``patient_url`` returns once the Bundle is stored: the Patient, the resources in its
    compartment (those whose compartment parameters of
    https://hl7.org/fhir/R4/compartmentdefinition-patient.html reference it), and every resource
    any of those reference (https://hl7.org/fhir/R4/patient-operation-everything.html) — one
    level, not what the referenced resources reference in turn."""
    defs = load()
    compartment = defs.patient_compartment()
    types = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    members = {patient_url}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        params = defs.search_params(resource["resourceType"])
        for name in compartment.get(resource["resourceType"], ()):
            for part in params[name].parts:
                for value in fhirpath(part.expression)(resource):
                    ref = value.get("reference") if isinstance(value, dict) else None
                    if ref == patient_url and part.resolve in (None, types.get(ref)):
                        members.add(entry["fullUrl"])
    resources = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    referenced = {ref for url in members for ref in references(resources[url]) if ref in types}
    return members | referenced
