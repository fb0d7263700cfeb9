"""Shared fixtures: real databases (SQLite, PostgreSQL), a real server on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import create_engine, text

from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.node import Node, build_node
from vesalius.record.service import RecordService
from vesalius.web.app import create_app

IN_CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get(
    "VESALIUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require(condition: bool, reason: str) -> None:
    """Skip when a peer/service is missing — but in CI a missing peer is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def require_tool(path: str) -> str:
    require(Path(path).exists() or shutil.which(path) is not None, f"{path} is not installed")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private schema in the test database, dropped at the end of the session."""
    require(_postgres_available(), "PostgreSQL at 127.0.0.1:5432 (database test) is unreachable")
    schema = f"vesalius_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    """Drop every table in the private schema (archive, record, link, …), so no state leaks
    between tests."""
    from sqlalchemy import MetaData

    engine = create_engine(url)
    existing = MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)
    with engine.begin() as conn:  # left by the index-failure test
        conn.execute(text("DROP FUNCTION IF EXISTS fail_inserts() CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    base = Settings(data_dir=tmp_path / "data")
    if backend == "postgres":
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
        base = replace(base, database_url=url)
    return base


@pytest.fixture
def node(settings: Settings) -> Node:
    """Every service of one installation on the test's database."""
    return build_node(settings)


@pytest.fixture
def archive(node: Node) -> ArchiveService:
    return node.archive


class RunningServer:
    def __init__(self, node: Node, port: int | None = None) -> None:
        """``port``: listen there (e.g. the node's ``http_port``, which the DICOMweb Endpoint
        address is built from); a free port by default."""
        self.node = node
        self.archive = node.archive
        self.record = node.record
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dicomweb = f"{self.base}/dicom-web"
        self.fhir = f"{self.base}/fhir"
        config = uvicorn.Config(create_app(node), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def server(node: Node) -> Iterator[RunningServer]:
    with RunningServer(node) as running:
        yield running


class RunningDicom:
    """Vesalius' DIMSE listener (and optionally TLS) on free loopback ports."""

    def __init__(self, settings: Settings) -> None:
        from vesalius.dimse.handlers import DimseHandlers
        from vesalius.dimse.server import DicomServer
        from vesalius.node import build_node

        self.settings = replace(settings, dicom_port=free_port())
        self.node = build_node(self.settings)
        self.archive = self.node.archive
        self.registry = self.node.registry
        self.worklist = self.node.worklist
        self.port = self.settings.dicom_port
        self.ae_title = self.settings.ae_title
        self.server = DicomServer(self.settings, DimseHandlers(
            self.settings, self.node.archive, self.node.registry, self.node.worklist,
            self.node.auditor))

    def __enter__(self) -> RunningDicom:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


@pytest.fixture
def dicom(settings: Settings) -> Iterator[RunningDicom]:
    with RunningDicom(settings) as running:
        yield running


FHIR_EXAMPLES_DIR = Path(__file__).parent / "fhir/node_modules/hl7.fhir.r4.examples"


@pytest.fixture(scope="session")
def fhir_examples() -> Path:
    """The official HL7 FHIR R4 examples (npm hl7.fhir.r4.examples@4.0.1, CC0), installed by
    ``make test`` from tests/fhir/package.json."""
    require(FHIR_EXAMPLES_DIR.is_dir(),
            "FHIR R4 examples missing: run `npm ci --prefix tests/fhir` (make test does)")
    return FHIR_EXAMPLES_DIR


@pytest.fixture
def record(node: Node) -> RecordService:
    """The record service on the test's database (SQLite or PostgreSQL)."""
    return node.record
