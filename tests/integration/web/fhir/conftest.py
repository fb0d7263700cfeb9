"""A real server on loopback (the whole app, on SQLite or PostgreSQL), used at its FHIR base."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conftest import RunningServer
from vesalius.config import Settings
from vesalius.node import build_node


class RunningFhir(RunningServer):
    """The whole application as ``vesalius serve`` composes it, addressed at its FHIR base."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(build_node(settings))
        self.settings = settings
        self.service = self.record
        self.base = self.fhir


@pytest.fixture
def fhir_settings(settings: Settings) -> Settings:
    return settings


@pytest.fixture
def fhir(fhir_settings: Settings) -> Iterator[RunningFhir]:
    with RunningFhir(fhir_settings) as running:
        yield running


@pytest.fixture
def small_limits(settings: Settings) -> Settings:
    return replace(settings, fhir_max_request_bytes=64 * 1024, fhir_max_bundle_entries=5)


@pytest.fixture
def example(fhir_examples: Path) -> Callable[[str], dict[str, Any]]:
    """An official example by file name, e.g. ``example("Patient-example.json")``."""
    def load(name: str) -> dict[str, Any]:
        return json.loads(  # type: ignore[no-any-return]
            (fhir_examples / name).read_text(encoding="utf-8"))
    return load
