"""The direct JSON walk gives exactly what the FHIRPath engine gives, for every simple
search expression on the official examples."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from vesalius.record.definitions import load
from vesalius.record.search.extract import evaluate, lenient
from vesalius.record.search.fastpath import FastPaths

TYPES = ("Patient", "Observation", "Encounter", "Condition", "MedicationRequest",
         "Immunization", "DiagnosticReport", "ImagingStudy", "ServiceRequest", "Procedure",
         "AllergyIntolerance", "CarePlan", "Media", "DocumentReference", "Questionnaire")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_fast_path_equals_fhirpath_on_official_examples(fhir_examples: Path) -> None:
    defs = load()
    fast_paths = FastPaths(defs)
    compared = walked = 0
    for name in TYPES:
        for path in sorted(fhir_examples.glob(f"{name}-*.json")):
            resource = json.loads(path.read_text(encoding="utf-8"))
            if resource.get("resourceType") != name:
                continue
            for param in defs.search_params(name).values():
                for part in param.parts:
                    compared += 1
                    fast = fast_paths.evaluate(lenient(part.expression), resource)
                    if fast is None:
                        continue
                    walked += 1
                    assert _plain(fast) == _plain(evaluate(part.expression, resource)), \
                        (path.name, part.expression)
    assert walked > 0.9 * compared  # nearly every expression takes the fast path


def test_choice_elements_and_of_type() -> None:
    fast_paths = FastPaths(load())
    obs = {"resourceType": "Observation", "valueQuantity": {"value": 1},
           "effectivePeriod": {"start": "2020"},
           "component": [{"valueString": "a"}, {"valueQuantity": {"value": 2}}]}
    assert fast_paths.evaluate("Observation.effective", obs) == [{"start": "2020"}]
    assert fast_paths.evaluate("Observation.value.ofType(Quantity)", obs) == [{"value": 1}]
    assert fast_paths.evaluate("Observation.value.ofType(string)", obs) == []
    assert fast_paths.evaluate("Observation.component.value.ofType(Quantity)", obs) == \
        [{"value": 2}]
    assert fast_paths.landing("Observation.component") == "Observation.component"
    assert fast_paths.evaluate("value.ofType(Quantity)", obs["component"][1],
                               "Observation.component") == [{"value": 2}]
    # not simple, or unknown: the caller falls back to FHIRPath
    assert fast_paths.evaluate("Observation.subject.where(resolve() is Patient)", obs) is None
    assert fast_paths.evaluate("Observation.nonsense", obs) is None
