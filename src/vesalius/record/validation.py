"""FHIR R4 validation on write, driven by the official StructureDefinitions.

Every rule comes from ``defs.elements(...)`` (the snapshot ElementDefinitions) and the JSON
representation rules; nothing here is written for one resource type:

- JSON form: https://hl7.org/fhir/R4/json.html (arrays for repeating elements, ``_name``
  siblings for primitive extensions, no empty values, no ``null`` outside primitive arrays);
- cardinality, types, choice elements, content references and required bindings:
  https://hl7.org/fhir/R4/elementdefinition.html and https://hl7.org/fhir/R4/terminologies.html;
- primitive lexical forms and ranges: https://hl7.org/fhir/R4/datatypes.html#primitive;
- reference targets: https://hl7.org/fhir/R4/references.html#literal;
- narrative safety: https://hl7.org/fhir/R4/narrative.html#security (``validation_narrative``).

Each definition path is compiled once into a ``_Shape`` (JSON name → ``_Element``), so validating
a resource is one walk over its JSON with dictionary look-ups.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vesalius.core.errors import ValidationFailed
from vesalius.record.definitions import Definitions, ElementDefinition
from vesalius.record.validation_narrative import narrative_problems

#: Deepest nesting of JSON objects accepted (hostile input; no real resource comes near it).
MAX_DEPTH = 64
#: Longest string accepted, except ``base64Binary`` (https://hl7.org/fhir/R4/datatypes.html#string).
MAX_STRING = 1024 * 1024

Issue = dict[str, str]

_INT32 = (-(2**31), 2**31 - 1)
_INTEGER_TYPES = {"integer": _INT32, "positiveInt": (1, _INT32[1]), "unsignedInt": (0, _INT32[1])}
_ABSTRACT_RESOURCES = frozenset({"Resource", "DomainResource"})
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# Literal references: relative ``Type/id`` or ``Type/id/_history/v``, or an absolute URL ending so.
_LITERAL_REFERENCE = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*://.*/)?"
    r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[^/]+)(?:/_history/(?P<version>[^/]+))?")

_PRIMITIVE, _XHTML, _COMPLEX, _RESOURCE = range(4)


@dataclass(slots=True)
class _Element:
    """One JSON property of one definition path (a choice element gives one per type)."""

    name: str
    path: str  # definition path, for messages
    many: bool
    type_code: str
    kind: int
    shape: str = ""  # key of the nested shape (complex) — a definition path
    pattern: re.Pattern[str] | None = None
    codes: frozenset[str] | None = None  # required binding of a ``code``
    systems: dict[str, frozenset[str]] | None = None  # required binding of a CodeableConcept
    targets: frozenset[str] | None = None  # of a Reference: allowed types (empty = any)
    choice: str = ""  # the ``[x]`` path this name is one variant of


@dataclass(slots=True)
class _Shape:
    """The JSON properties an object at one definition path may have."""

    path: str
    elements: dict[str, tuple[_Element, bool]] = field(default_factory=dict)  # bool: ``_name``
    # (definition path, element name, the JSON names any of which satisfies it)
    required: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    resource: bool = False


class Validator:
    """Validates FHIR R4 JSON resources against the compiled official definitions."""

    def __init__(self, defs: Definitions) -> None:
        self._defs = defs
        self._primitives = {name: re.compile(regex) if regex else None
                            for name, regex in defs.primitives.items()}
        self._children: dict[str, dict[str, list[ElementDefinition]]] = {}
        self._shapes: dict[str, _Shape] = {}
        self._resource_types = defs.resource_types - _ABSTRACT_RESOURCES

    def validate(self, resource: object) -> list[Issue]:
        """Every problem of ``resource`` as OperationOutcome-shaped issues (empty when valid)."""
        issues: list[Issue] = []
        self._resource(resource, "", 1, issues, contained=False)
        return issues

    def check(self, resource: object) -> None:
        """Raise ``ValidationFailed`` naming every issue when any of them is an error."""
        issues = self.validate(resource)
        errors = [i for i in issues if i["severity"] == "error"]
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ValidationFailed(
                f"{first['expression']}: {first['diagnostics']}{more}", issues)

    # -- walking ---------------------------------------------------------------------------

    def _resource(self, value: object, path: str, depth: int, issues: list[Issue],
                  contained: bool) -> None:
        if not isinstance(value, dict):
            _error(issues, "structure", path or "Resource", "a resource must be a JSON object")
            return
        kind = value.get("resourceType")
        if not isinstance(kind, str) or kind not in self._resource_types:
            if kind in _ABSTRACT_RESOURCES:
                why = f"resourceType {_shown(kind)} is abstract"
            elif kind is None:
                why = "resourceType is missing"
            else:
                why = f"unknown resourceType {_shown(kind)}"
            _error(issues, "structure", f"{path or 'Resource'}.resourceType", why)
            return
        if contained and "contained" in value:
            _error(issues, "invariant", f"{path}.contained",
                   "dom-2: a contained resource must not contain resources")
        self._object(value, self._shape(kind), path or kind, depth, issues)

    def _object(self, obj: dict[str, Any], shape: _Shape, path: str, depth: int,
                issues: list[Issue]) -> None:
        if depth > MAX_DEPTH:
            _error(issues, "structure", path, f"nested deeper than {MAX_DEPTH} levels")
            return
        if not obj:
            _error(issues, "structure", path, "objects must not be empty")
            return
        choices: dict[str, str] = {}
        for key, value in obj.items():
            entry = shape.elements.get(key)
            if entry is None:
                if not (key == "resourceType" and shape.resource):
                    _error(issues, "structure", f"{path}.{key[:64]}",
                           f"unknown element {_shown(key)}")
                continue
            element, extension = entry
            here = f"{path}.{element.name}"
            if element.choice:
                seen = choices.setdefault(element.choice, element.name)
                if seen != element.name:
                    _error(issues, "structure", here,
                           f"only one of the {element.choice} choices may be present "
                           f"(also {seen})")
            if element.many:
                if not isinstance(value, list):
                    _error(issues, "structure", here, "must be a JSON array (max > 1)")
                elif not value:
                    _error(issues, "structure", here, "arrays must not be empty")
                elif element.kind == _PRIMITIVE:
                    self._primitive_array(obj, element, value, extension, here, depth, issues)
                else:
                    for i, item in enumerate(value):
                        self._value(element, item, f"{here}[{i}]", depth, issues)
            elif isinstance(value, list):
                _error(issues, "structure", here, "must not be a JSON array (max 1)")
            elif extension:
                self._primitive_extension(value, here, depth, issues)
            else:
                self._value(element, value, here, depth, issues)
        for definition, name, names in shape.required:
            if not any(variant in obj for variant in names):
                _error(issues, "required", f"{path}.{name}",
                       f"{definition} is required (min 1)")

    def _primitive_array(self, obj: dict[str, Any], element: _Element, values: list[Any],
                         extension: bool, here: str, depth: int, issues: list[Issue]) -> None:
        """``given: ["a", null]`` pairs with ``_given: [null, {...}]`` index by index."""
        partner = obj.get(element.name if extension else f"_{element.name}")
        if not extension and isinstance(partner, list) and len(partner) != len(values):
            _error(issues, "structure", here,
                   f"{element.name} and _{element.name} must have the same length")
        for i, item in enumerate(values):
            at = f"{here}[{i}]"
            if item is None:
                paired = isinstance(partner, list) and i < len(partner) and partner[i] is not None
                if not paired:
                    _error(issues, "structure", at, "null is only allowed when paired with a "
                           "value or extension at the same index")
            elif extension:
                self._primitive_extension(item, at, depth, issues)
            else:
                self._value(element, item, at, depth, issues)

    def _primitive_extension(self, value: object, here: str, depth: int,
                             issues: list[Issue]) -> None:
        if not isinstance(value, dict):
            _error(issues, "structure", here, "the _ sibling of a primitive must be an object")
            return
        self._object(value, self._shape("Element"), here, depth + 1, issues)

    def _value(self, element: _Element, value: object, here: str, depth: int,
               issues: list[Issue]) -> None:
        if value is None:
            _error(issues, "structure", here, "null is not allowed here")
        elif element.kind == _PRIMITIVE:
            self._primitive(element, value, here, issues)
        elif element.kind == _COMPLEX:
            if not isinstance(value, dict):
                _error(issues, "structure", here, f"{element.type_code} must be a JSON object")
                return
            self._object(value, self._shape(element.shape), here, depth + 1, issues)
            if element.systems is not None:
                self._coded(element.systems, value, here, issues)
            if element.targets is not None:
                self._reference(element.targets, value, here, issues)
        elif element.kind == _RESOURCE:
            self._resource(value, here, depth + 1, issues, contained=element.name == "contained")
        elif not isinstance(value, str):
            _error(issues, "value", here, "xhtml must be a JSON string")
        elif len(value) > MAX_STRING:
            _error(issues, "too-long", here, f"longer than {MAX_STRING} characters")
        else:
            for problem in narrative_problems(value):
                _error(issues, "value", here, problem)

    def _primitive(self, element: _Element, value: object, here: str,
                   issues: list[Issue]) -> None:
        code = element.type_code
        if code == "boolean":
            if not isinstance(value, bool):
                _error(issues, "value", here, f"boolean must be true or false, not {_shown(value)}")
            return
        if code in _INTEGER_TYPES:
            low, high = _INTEGER_TYPES[code]
            if isinstance(value, bool) or not isinstance(value, int):
                _error(issues, "value", here, f"{code} must be a JSON integer, not {_shown(value)}")
            elif not low <= value <= high:
                _error(issues, "value", here, f"{code} must be in [{low}, {high}]")
            return
        if code == "decimal":
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                _error(issues, "value", here, f"decimal must be a JSON number, not {_shown(value)}")
            elif isinstance(value, float | Decimal) and not math.isfinite(value):
                _error(issues, "value", here, "decimal must be finite")
            return
        if not isinstance(value, str):
            _error(issues, "value", here, f"{code} must be a JSON string, not {_shown(value)}")
        elif not value.strip():
            _error(issues, "value", here, "strings must not be empty or only whitespace")
        elif len(value) > MAX_STRING and code != "base64Binary":
            _error(issues, "too-long", here, f"longer than {MAX_STRING} characters")
        elif element.pattern is not None and not element.pattern.fullmatch(value):
            _error(issues, "value", here, f"{_shown(value)} is not a valid {code}")
        elif element.codes is not None and value not in element.codes:
            _error(issues, "code-invalid", here,
                   f"{_shown(value)} is not in the required value set of {element.path}")

    def _coded(self, systems: dict[str, frozenset[str]], value: dict[str, Any], here: str,
               issues: list[Issue]) -> None:
        """A coding in a system of a required value set must use one of its codes."""
        codings = value.get("coding")
        if not isinstance(codings, list):
            return
        for i, coding in enumerate(codings):
            if not isinstance(coding, dict):
                continue
            system, code = coding.get("system"), coding.get("code")
            codes = systems.get(system) if isinstance(system, str) else None
            if codes is not None and isinstance(code, str) and code not in codes:
                _error(issues, "code-invalid", f"{here}.coding[{i}].code",
                       f"{_shown(code)} is not in the required value set for its system")

    def _reference(self, targets: frozenset[str], value: dict[str, Any], here: str,
                   issues: list[Issue]) -> None:
        reference = value.get("reference")
        if not isinstance(reference, str) or reference.startswith(("#", "urn:")):
            return
        match = _LITERAL_REFERENCE.fullmatch(reference)
        if match is None or match["type"] not in self._resource_types:
            return
        kind, id_, version = match["type"], match["id"], match["version"]
        if not _ID.fullmatch(id_) or (version is not None and not _ID.fullmatch(version)):
            _error(issues, "value", f"{here}.reference",
                   f"{_shown(reference)}: ids are 1-64 of A-Z a-z 0-9 - .")
        elif targets and kind not in targets:
            _error(issues, "value", f"{here}.reference",
                   f"a reference to {kind} is not allowed here (only "
                   f"{', '.join(sorted(targets))})")

    # -- compiling ---------------------------------------------------------------------------

    def _shape(self, path: str) -> _Shape:
        shape = self._shapes.get(path)
        if shape is None:
            # Published only once complete: threads share a validator, and two compiling the
            # same path at once build equal shapes.
            shape = _Shape(path, resource=path in self._resource_types)
            self._compile(shape)
            self._shapes[path] = shape
        return shape

    def _compile(self, shape: _Shape) -> None:
        """Fill ``shape`` from the definitions of its children (nested shapes by key, lazily)."""
        root = shape.path.split(".", 1)[0]
        for definition in self._child_definitions(root).get(shape.path, ()):
            base = definition.path.rsplit(".", 1)[1]
            many = definition.max != "1" and definition.max != "0"
            names: list[str] = []
            if definition.content_reference is not None:
                target = definition.content_reference.lstrip("#")
                if "#" in target:
                    target = target.split("#", 1)[1]
                element = _Element(base, definition.path, many, "BackboneElement", _COMPLEX,
                                   shape=target)
                shape.elements[base] = (element, False)
                names.append(base)
            choice = definition.path if base.endswith("[x]") else ""
            for code, targets in definition.types:
                name = base[:-3] + code[0].upper() + code[1:] if choice else base
                element = self._element(definition, name, many, code, targets)
                element.choice = choice
                shape.elements[name] = (element, False)
                names.append(name)
                if element.kind == _PRIMITIVE:
                    shape.elements[f"_{name}"] = (element, True)
                    names.append(f"_{name}")
            if definition.min >= 1 and names:
                shape.required.append((definition.path, base.removesuffix("[x]"), tuple(names)))

    def _element(self, definition: ElementDefinition, name: str, many: bool, code: str,
                 targets: tuple[str, ...]) -> _Element:
        path = definition.path
        if code in self._primitives and code != "xhtml":
            element = _Element(name, path, many, code, _PRIMITIVE, pattern=self._primitives[code])
            if path.count(".") == 1 and name == "id" and path.split(".")[0] in self._resource_types:
                # Resource.id is of type id; the snapshot gives it as System.String.
                element.type_code, element.pattern = "id", self._primitives["id"]
            elif code == "code" and definition.binding:
                codes = self._defs.value_set_codes(definition.binding)
                element.codes = None if codes is None else frozenset(c for _, c in codes)
            elif code in ("string", "markdown"):
                element.pattern = None  # their regex only says "not empty", checked anyway
            return element
        if code == "xhtml":
            return _Element(name, path, many, code, _XHTML)
        if code in _ABSTRACT_RESOURCES or code in self._resource_types:
            return _Element(name, path, many, code, _RESOURCE)
        nested = path if path in self._child_definitions(path.split(".", 1)[0]) else code
        element = _Element(name, path, many, code, _COMPLEX, shape=nested)
        if code in ("CodeableConcept", "Coding") and definition.binding:
            codes = self._defs.value_set_codes(definition.binding)
            if codes is not None:
                systems: dict[str, set[str]] = {}
                for system, value in codes:
                    systems.setdefault(system, set()).add(value)
                element.systems = {s: frozenset(v) for s, v in systems.items()}
        if code == "Reference":
            names = frozenset(t.rsplit("/", 1)[-1] for t in targets)
            element.targets = frozenset() if "Resource" in names else names
        return element

    def _child_definitions(self, root: str) -> dict[str, list[ElementDefinition]]:
        """Definitions of one structure grouped by their parent path."""
        children = self._children.get(root)
        if children is None:
            children = {}
            for path, definition in self._defs.elements(root).items():
                children.setdefault(path.rsplit(".", 1)[0], []).append(definition)
            self._children[root] = children
        return children


def _error(issues: list[Issue], code: str, expression: str, diagnostics: str) -> None:
    issues.append({"severity": "error", "code": code, "expression": expression,
                   "diagnostics": diagnostics})


def _shown(value: object) -> str:
    """A value as quoted in a diagnostic, bounded: hostile input must not be echoed in full."""
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
