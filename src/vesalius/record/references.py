"""Every ``Reference.reference`` inside a resource, wherever it sits
(https://hl7.org/fhir/R4/references.html)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def references(node: Any, path: str = "", *, contained: bool = True
               ) -> Iterator[tuple[str, str]]:
    """(FHIRPath-like path, reference) of each ``reference`` string below ``node``;
    ``contained=False`` skips contained resources (their references are their own)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield path, value
            elif contained or key != "contained":
                yield from references(value, f"{path}.{key}", contained=contained)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from references(item, f"{path}[{i}]", contained=contained)
