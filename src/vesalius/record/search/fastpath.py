"""A direct JSON walk for the simple FHIRPath expressions most SearchParameters use.

Most R4 search expressions are plain member paths (``Observation.subject``,
``Patient.name``, ``Observation.effective``), sometimes narrowing a choice element
(``Observation.value.ofType(Quantity)``). Walking the JSON for those is ~20 times cheaper than a
general FHIRPath evaluation, which matters because every write indexes every parameter.
The plan for an expression is resolved once against the StructureDefinitions (so
``effective`` is known to be ``effective[x]`` and matched as ``effectiveDateTime``/
``effectivePeriod``…); anything else (functions, unions, unknown paths) returns ``None`` and
the caller falls back to the full FHIRPath engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from vesalius.record.definitions import Definitions

_TOKEN = re.compile(r"ofType\((\w+)\)|([A-Za-z_]\w*)")
_SIMPLE = re.compile(r"^[A-Za-z_]\w*(\.([A-Za-z_]\w*|ofType\(\w+\)))*$")
_STAY = frozenset({"BackboneElement", "Element"})


@dataclass(frozen=True)
class Step:
    name: str
    #: JSON keys to read: ``(name,)`` for a plain element, ``(nameType…)`` for a choice.
    keys: tuple[str, ...]


def _json_name(name: str, type_code: str) -> str:
    return name + type_code[:1].upper() + type_code[1:]


class FastPaths:
    def __init__(self, defs: Definitions) -> None:
        self._defs = defs
        self._plans = lru_cache(maxsize=None)(self._plan)

    def evaluate(self, expression: str, node: dict[str, Any],
                 context: str | None = None) -> list[Any] | None:
        """Values of ``expression`` on a resource (or, with ``context``, on an element whose
        definition path that is — composite components); ``None`` when not simple."""
        plan = self._plans(expression, context or "")
        if plan is None:
            return None
        return walk(plan[0], [node])

    def single_valued(self, expression: str) -> bool:
        """Whether a simple expression yields at most one value per resource (every element on
        its path has max 1); False when unknown."""
        plan = self._plans(expression, "")
        return plan is not None and not plan[2]

    def landing(self, expression: str) -> str | None:
        """The definition path the values of a simple expression have (``Observation.component``,
        ``Observation``), when they are complex elements; else ``None``."""
        plan = self._plans(expression, "")
        return None if plan is None else plan[1]

    def _plan(self, expression: str, context: str
              ) -> tuple[tuple[Step, ...], str | None, bool] | None:
        """(steps, landing definition path, may yield several values) or None."""
        if not _SIMPLE.match(expression):
            return None
        tokens = [(m[1], m[2]) for m in _TOKEN.finditer(expression)]
        if context:
            structure, path = context.split(".", 1)[0], context
        else:
            root = tokens.pop(0)[1]
            if not root or not self._defs.is_resource(root):
                return None
            structure, path = root, root
        steps: list[Step] = []
        many = False
        types: tuple[str, ...] | None = None  # None: still inside a complex structure
        i = 0
        while i < len(tokens):
            of_type, name = tokens[i]
            if of_type or types is not None:
                return None  # ofType without a choice before it, or a step below a primitive
            elements = self._defs.elements(structure)
            candidate = f"{path}.{name}"
            if candidate in elements:
                element, choice = elements[candidate], False
            elif candidate + "[x]" in elements:
                element, choice = elements[candidate + "[x]"], True
            else:
                return None
            many = many or element.max != "1"
            codes = tuple(code for code, _targets in element.types)
            if choice:
                if i + 1 < len(tokens) and tokens[i + 1][0]:
                    wanted = tokens[i + 1][0]
                    codes = tuple(c for c in codes if c.lower() == wanted.lower())
                    if not codes:
                        return None
                    i += 1
                steps.append(Step(name, tuple(_json_name(name, c) for c in codes)))
            else:
                steps.append(Step(name, (name,)))
            if element.content_reference:
                structure = element.content_reference.split(".", 1)[0]
                path = element.content_reference
            elif len(codes) == 1 and codes[0] in _STAY:
                path = candidate
            elif len(codes) == 1 and self._defs.structure(codes[0]) is not None:
                structure = path = codes[0]
            else:
                types = codes
            i += 1
        return tuple(steps), (None if types is not None else path), many


def walk(steps: tuple[Step, ...], nodes: list[Any]) -> list[Any]:
    for step in steps:
        out: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            for key in step.keys:
                value = node.get(key)
                if value is None:
                    continue
                if isinstance(value, list):
                    out.extend(v for v in value if v is not None)
                else:
                    out.append(value)
        nodes = out
    return nodes
