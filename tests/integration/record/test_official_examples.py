"""The official HL7 R4 examples of the clinical core types are created and read back equal
(ignoring ``meta.versionId``/``meta.lastUpdated``), and each type's official search parameters
find them.

The examples are npm ``hl7.fhir.r4.examples@4.0.1`` (CC0), from the ``fhir_examples`` fixture.
Query values are built from the stored JSON by evaluating each SearchParameter's expression with
``fhirpathpy`` directly and formatting what it finds by hand
(https://hl7.org/fhir/R4/search.html#ptypes) — not with our extractor — so a value the index
misses shows up as an example its own search does not find.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from integration.record.population import fhirpath
from unit.record.test_validation_examples import CORE_TYPES, INVALID_EXAMPLES
from vesalius.config import Settings
from vesalius.database.engine import make_engines
from vesalius.record.definitions import SearchParam, load
from vesalius.record.service import RecordOptions, RecordService

TYPES = tuple(t for t in CORE_TYPES if t != "Bundle")

_DISPLAY_ONLY = "the examples' references have a display only"
_CONTAINED = "the examples reference contained resources (#id), which search does not address"
#: Parameters with a FHIRPath value in some example from which no query can be built, and why.
UNQUERIED = {
    ("CarePlan", "activity-reference"): _DISPLAY_ONLY,
    ("CarePlan", "based-on"): _DISPLAY_ONLY,
    ("CarePlan", "part-of"): _DISPLAY_ONLY,
    ("CarePlan", "replaces"): _DISPLAY_ONLY,
    ("Consent", "source-reference"): "the examples have an Attachment (sourceAttachment)",
    ("DiagnosticReport", "results-interpreter"): _DISPLAY_ONLY,
    ("Encounter", "location"): _DISPLAY_ONLY + " or " + _CONTAINED,
    ("Media", "device"): _DISPLAY_ONLY,
    ("Medication", "ingredient"): _CONTAINED,
    ("Medication", "manufacturer"): _CONTAINED,
    ("MedicationStatement", "medication"): _CONTAINED,
    ("ServiceRequest", "replaces"): _DISPLAY_ONLY,
    ("ServiceRequest", "specimen"): _CONTAINED,
    ("Provenance", "patient"): "Provenance.target.where(resolve() is Patient): no example "
                               "targets a Patient",
    ("DocumentReference", "relationship"): "R4 defines its components the wrong way round "
                                           "(relatesto: a reference at relatesTo.code; "
                                           "relation: a token at relatesTo.target)",
}
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def official_examples(folder: Path) -> list[dict[str, Any]]:
    """Every example file ``<Type>-*.json`` of ``TYPES`` that is of that type and valid R4."""
    found = []
    for resource_type in TYPES:
        for path in sorted(folder.glob(f"{resource_type}-*.json")):
            if path.name in INVALID_EXAMPLES:
                continue
            resource = json.loads(path.read_bytes())
            if resource.get("resourceType") == resource_type:
                found.append(resource)
    return found


@pytest.fixture
def loose_record(settings: Settings) -> RecordService:
    """A record that does not require relative references to exist: the examples point at
    resources of other types that are not loaded."""
    reader, writer = make_engines(settings)
    return RecordService(reader, writer, options=RecordOptions(referential_integrity=False))


def _without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    copy = dict(resource)
    meta = {k: v for k, v in copy.pop("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        copy["meta"] = meta
    return copy


def _load(record: RecordService, folder: Path) -> list[dict[str, Any]]:
    """PUT every example with its own id (update as create); the stored resources."""
    stored = []
    for example in official_examples(folder):
        version = record.update(example["resourceType"], example["id"], example)
        assert version.created, f"{example['resourceType']}/{example['id']} was not new"
        stored.append(record.read(example["resourceType"], example["id"]).resource or {})
    return stored


def test_examples_are_created_and_read_back_equal(loose_record: RecordService,
                                                   fhir_examples: Path) -> None:
    examples = official_examples(fhir_examples)
    assert {e["resourceType"] for e in examples} == set(TYPES)
    stored = _load(loose_record, fhir_examples)
    assert len(stored) == len(examples) > 300
    for example, back in zip(examples, stored, strict=True):
        assert back["meta"]["versionId"] == "1"
        assert _without_server_meta(back) == _without_server_meta(example), (
            f"{example['resourceType']}/{example['id']}")


# -- query values, built by hand from FHIRPath results --------------------------------------


def _escape(text: str) -> str:
    return re.sub(r"([\\,$|])", r"\\\1", text)


def _utc_day(text: str) -> str:
    """The UTC day of a dateTime with a time (our server's days are UTC days), else the value
    itself (a date, or a partial date)."""
    if "T" not in text:
        return text
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).date().isoformat()


def _date_query(value: Any) -> str | None:
    if isinstance(value, str):  # a string too: FHIRPath sees onsetString as onset
        is_date = re.fullmatch(load().primitives["dateTime"], value)
        return "eq" + _utc_day(value) if is_date else None
    if not isinstance(value, dict):
        return None
    if "start" in value:  # Period: it overlaps everything from its start day on
        return "ge" + _utc_day(value["start"])
    if "end" in value:
        return "le" + _utc_day(value["end"])
    if value.get("event"):  # Timing
        return _date_query(value["event"][0])
    return _date_query(value.get("repeat", {}).get("boundsPeriod"))


def _token_query(value: Any) -> tuple[str, str] | None:
    """(modifier, value) for a token search finding ``value``."""
    if isinstance(value, bool):
        return "", "true" if value else "false"
    if isinstance(value, str):
        return "", _escape(value)
    if not isinstance(value, dict):
        return None
    for coding in value.get("coding", ()):
        if "code" in coding:
            return "", f"{_escape(coding.get('system', ''))}|{_escape(coding['code'])}"
    if "coding" in value or ("text" in value and "value" not in value):  # CodeableConcept
        text = value.get("text")
        return (":text", _escape(text[:12])) if isinstance(text, str) else None
    if "value" in value and value.get("system") in _CONTACT_SYSTEMS:  # ContactPoint
        return "", _escape(value["value"])
    if "value" in value:  # Identifier
        return "", f"{_escape(value.get('system', ''))}|{_escape(value['value'])}"
    if "code" in value:  # Coding
        return "", f"{_escape(value.get('system', ''))}|{_escape(value['code'])}"
    return None


def _string_query(value: Any) -> str | None:
    if isinstance(value, str):
        return _escape(value[:10]) if value.strip() else None
    if not isinstance(value, dict):
        return None
    for key in ("family", "given", "text", "line", "city", "state", "postalCode", "country"):
        part = value.get(key)
        for item in part if isinstance(part, list) else [part]:
            if isinstance(item, str) and item.strip():
                return _escape(item[:10])
    return None


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return repr(value)


def _quantity_query(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    if "low" in value or "high" in value:  # Range: overlaps everything above its low end
        low, high = _number(value.get("low", {}).get("value")), _number(
            value.get("high", {}).get("value"))
        return f"ge{low}" if low else f"le{high}" if high else None
    number = _number(value.get("value"))
    if number is None:  # SampledData (its data is not a searchable quantity) or no value
        return None
    if "currency" in value:  # Money
        return f"eq{number}|urn:iso:std:iso:4217|{_escape(value['currency'])}"
    if value.get("system") and value.get("code"):
        return f"eq{number}|{_escape(value['system'])}|{_escape(value['code'])}"
    return f"eq{number}"


def _reference_query(value: Any, resolve: str | None) -> tuple[str, str] | None:
    """(modifier, value): ``Type/id``, an absolute URL or canonical as is, or an identifier."""
    if isinstance(value, str):  # canonical
        return ("", _escape(value)) if resolve is None else None
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    if isinstance(ref, str) and not ref.startswith("#"):
        segments = ref.split("/")
        if "://" in ref or ref.startswith("urn:"):
            return ("", _escape(ref)) if resolve is None else None
        if len(segments) >= 2 and load().is_resource(segments[0]):
            if resolve is not None and segments[0] != resolve:
                return None
            return "", f"{segments[0]}/{_escape(segments[1])}"
    identifier = value.get("identifier")
    if resolve is None and isinstance(identifier, dict) and "value" in identifier:
        return ":identifier", (f"{_escape(identifier.get('system', ''))}|"
                               f"{_escape(identifier['value'])}")
    return None


def _plain_query(param_type: str, value: Any, resolve: str | None) -> tuple[str, str] | None:
    """(modifier, value) finding ``value`` with a parameter of ``param_type``."""
    if param_type == "token":
        return _token_query(value)
    if param_type == "reference":
        return _reference_query(value, resolve)
    built = {"string": _string_query, "date": _date_query, "quantity": _quantity_query,
             "number": lambda v: None if _number(v) is None else f"eq{_number(v)}",
             "uri": lambda v: _escape(v) if isinstance(v, str) else None}[param_type](value)
    return None if built is None else ("", built)


def queries(param: SearchParam, resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, value) pairs of ``param`` that must find ``resource``."""
    for part in param.parts:
        for i, node in enumerate(fhirpath(part.expression)(resource)):
            if param.type != "composite":
                built = _plain_query(param.type, node, part.resolve)
                if built is not None:
                    yield param.name + built[0], built[1]
                continue
            components = []
            for component in param.components:
                # from the resource, so that FHIRPath knows the types of choice elements
                path = f"({part.expression})[{i}].{component.expression}"
                values = [_plain_query(component.type, v, None)
                          for v in fhirpath(path)(resource)]
                usable = [v for modifier, v in filter(None, values) if not modifier]
                if not usable:
                    break
                components.append(usable[0])
            else:
                yield param.name, "$".join(components)


# -- the search check -----------------------------------------------------------------------


@dataclass
class Tally:
    params: set[tuple[str, str]] = field(default_factory=set)
    with_value: set[tuple[str, str]] = field(default_factory=set)
    exercised: set[tuple[str, str]] = field(default_factory=set)
    skipped: set[tuple[str, str]] = field(default_factory=set)
    misses: list[str] = field(default_factory=list)
    searches: int = 0


def _check(record: RecordService, stored: list[dict[str, Any]]) -> Tally:
    defs = load()
    tally = Tally()
    for resource_type in TYPES:
        resources = [r for r in stored if r["resourceType"] == resource_type]
        for name, param in defs.search_params(resource_type).items():
            if param.type == "special":  # Location?near and the like: not value matching
                tally.skipped.add((resource_type, name))
                continue
            tally.params.add((resource_type, name))
            for resource in resources:
                if any(fhirpath(part.expression)(resource) for part in param.parts):
                    tally.with_value.add((resource_type, name))
                for key, value in queries(param, resource):
                    if (resource_type, name) not in tally.exercised and param.type in _EXACT:
                        # a control: the parameter is applied, not ignored
                        assert _ids(record, resource, key, value + "-none") == [], (key, value)
                    tally.exercised.add((resource_type, name))
                    tally.searches += 1
                    if _ids(record, resource, key, value) != [resource["id"]]:
                        tally.misses.append(f"{resource_type}?{key}={value} misses "
                                            f"{resource['id']}")
    return tally


#: Parameter types for which a value with a suffix no longer matches.
_EXACT = frozenset({"token", "reference", "uri", "string"})


def _ids(record: RecordService, resource: dict[str, Any], key: str, value: str) -> list[str]:
    """Ids found by ``key=value`` among the one resource (strict: nothing is ignored)."""
    result = record.search(resource["resourceType"], [(key, value), ("_id", resource["id"])],
                           strict=True)
    return [r["id"] for r in result.matches]


def test_every_search_parameter_finds_the_examples_it_has_a_value_in(
        loose_record: RecordService, fhir_examples: Path) -> None:
    stored = _load(loose_record, fhir_examples)
    tally = _check(loose_record, stored)
    print(f"\nofficial examples: {len(tally.exercised)} (type, parameter) pairs exercised with "
          f"{tally.searches} searches; {len(tally.params - tally.with_value)} without a value "
          f"in any example; special parameters skipped: {sorted(tally.skipped)}")
    assert tally.misses == [], "\n".join(tally.misses)
    assert tally.with_value - tally.exercised == set(UNQUERIED)
    assert len(tally.exercised) > 400
    # One search without the _id restriction, paged to the end, finds the example too.
    patients = [r for r in stored if r["resourceType"] == "Patient"]
    gender = next(p for p in patients if p.get("gender") == "male")
    found: set[str] = set()
    offset: int | None = 0
    while offset is not None:
        page = loose_record.search("Patient", [("gender", "male"), ("_count", "3"),
                                               ("_offset", str(offset))])
        found |= {r["id"] for r in page.matches}
        offset = page.next_offset
    assert gender["id"] in found
    assert found == {p["id"] for p in patients if p.get("gender") == "male"}
