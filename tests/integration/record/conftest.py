"""Fixtures of the record search tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.record.search_store import Store, examples
from vesalius.config import Settings


@pytest.fixture
def store(settings: Settings, fhir_examples: Path) -> Store:
    """The official examples of ``search_store.TYPES``, indexed, on the test's database."""
    s = Store(settings)
    s.add(examples(fhir_examples))
    return s
