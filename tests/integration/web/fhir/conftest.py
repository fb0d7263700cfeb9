"""A real FHIR server on loopback: the /fhir routes over a RecordService on SQLite or
PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from conftest import free_port
from vesalius.config import Settings
from vesalius.database.engine import make_engines
from vesalius.node import record_options
from vesalius.record.service import RecordService
from vesalius.web.fhir.app import fhir_routes


class RunningFhir:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        reader, writer = make_engines(settings)
        self.service = RecordService(reader, writer, options=record_options(settings))
        app = Starlette(routes=[Mount("/fhir", routes=fhir_routes())])
        app.state.record = self.service
        app.state.settings = settings
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningFhir:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("FHIR test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


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
