"""Shared fixtures: real databases (SQLite, PostgreSQL), a real server on loopback."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import replace
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.core.errors import Conflict
from vesalius.node import Node, build_node
from vesalius.record.service import RecordService
from vesalius.web.app import create_app

if TYPE_CHECKING:
    from fhirpy import SyncFHIRClient

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


#: The confidential client every in-process test calls as, and what it may do: a SMART
#: backend service with every scope on every resource type
#: (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html), so a test that
#: asserted an anonymous answer before sign-in was required asserts the same answer now.
TEST_CLIENT_ID = "test-suite"
TEST_CLIENT_SCOPES = ["system/*.cruds"]
#: The policy's role for trusted backend services: with it the client may also use the
#: functions that are not patient data (imaging-link problems, the audit trail…).
TEST_CLIENT_ROLES = ["system"]
#: How long a token minted on the command line lives (``vesalius token issue --ttl``): longer
#: than any test that serves a subprocess, shorter than a day.
CLI_TOKEN_TTL = 3600


class _ServerBearer(httpx.Auth):
    """Adds the test client's current bearer token to every request that does not carry an
    ``Authorization`` header of its own (a test that sends a bad token still sends it)."""

    def __init__(self, server: RunningServer) -> None:
        self._server = server

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "Authorization" not in request.headers:
            request.headers.update(self._server.headers)
        yield request


def _stateless_cookies() -> CookieJar:
    """A jar that keeps nothing: ``server.http`` stays as stateless between requests as the
    module-level ``httpx.get`` it replaced, so no test passes on a cookie an earlier request
    happened to set."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class RunningServer:
    """The whole application on a loopback port, and an HTTP client signed in to it.

    ``http`` is the client tests call the server with; ``headers`` are the same credentials
    for clients that take headers (``DICOMwebClient(url, headers=server.headers)``). Before
    the node has an authorization service both are anonymous.
    """

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
        self._credentials_lock = threading.Lock()
        self._credentials: dict[str, str] | None = None
        self._renew_at = 0.0
        # The module-level ``httpx`` functions' 5 s default, raised: a loaded CI machine on
        # PostgreSQL is slower than a laptop. Per-request timeouts still win.
        self.http = httpx.Client(auth=_ServerBearer(self), timeout=30.0,
                                 cookies=_stateless_cookies())

    @property
    def headers(self) -> dict[str, str]:
        """Fresh credentials: a token is minted again a minute before it expires (900 s by
        default, ``access_token_ttl``), so a long test does not outlive its token."""
        with self._credentials_lock:
            if self._credentials is None or time.monotonic() >= self._renew_at:
                self._credentials = self._test_credentials()
            return dict(self._credentials)

    def _test_credentials(self) -> dict[str, str]:
        """A bearer token for the ``test-suite`` client (SMART backend services
        client-credentials grant, https://hl7.org/fhir/smart-app-launch/backend-services.html),
        registered on first use; no headers while the node has no authorization service."""
        auth: Any = getattr(self.node, "auth", None)
        if auth is None:
            self._renew_at = math.inf
            return {}
        with contextlib.suppress(Conflict):  # registered by an earlier server on this database
            auth.add_client(TEST_CLIENT_ID, scopes=TEST_CLIENT_SCOPES, roles=TEST_CLIENT_ROLES)
        response = auth.client_credentials(auth.client(TEST_CLIENT_ID), TEST_CLIENT_SCOPES)
        lifetime = float(response.expires_in or self.node.settings.access_token_ttl)
        self._renew_at = time.monotonic() + lifetime - min(60.0, lifetime / 2)
        return {"Authorization": f"Bearer {response.access_token}"}

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.http.close()
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        # Signed in before the test runs: minting inside a test would land in what it
        # measures (the chart's statement count) and time.
        try:
            self.headers  # noqa: B018
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=20)


def fhir_client(server: RunningServer, base: str | None = None) -> SyncFHIRClient:
    """A fhirpy client at ``base`` (the server's FHIR base by default), signed in as the
    test client when the server requires it."""
    from fhirpy import SyncFHIRClient

    return SyncFHIRClient(base or server.fhir,
                          authorization=server.headers.get("Authorization"))


def cli_token(data_dir: Path, env: dict[str, str] | None = None,
              config: Path | None = None) -> dict[str, str]:
    """Credentials for a ``vesalius serve`` subprocess on ``data_dir``: registers the
    ``test-suite`` client and issues a token with the CLI (``vesalius client add``,
    ``vesalius token issue``). ``{}`` while the CLI has no ``token`` command (nothing to
    sign in to yet)."""
    command = [sys.executable, "-m", "vesalius.cli.main"]
    environment = {**os.environ, **(env or {})}
    where = ["--data-dir", str(data_dir), *(["--config", str(config)] if config else [])]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120,
                              env=environment)

    commands = re.search(r"\{([^}]*)\}", run("--help").stdout)
    if commands is None or "token" not in commands.group(1).split(","):
        return {}
    scopes = [arg for scope in TEST_CLIENT_SCOPES for arg in ("--scope", scope)]
    roles = [arg for role in TEST_CLIENT_ROLES for arg in ("--role", role)]
    added = run("client", "add", TEST_CLIENT_ID, *scopes, *roles, *where)
    if added.returncode != 0 and "exist" not in (added.stdout + added.stderr).lower():
        raise RuntimeError(f"vesalius client add failed: {added.stderr.strip()}")
    issued = run("token", "issue", "--client", TEST_CLIENT_ID, "--ttl", str(CLI_TOKEN_TTL),
                 *scopes, *where)
    if issued.returncode != 0 or not issued.stdout.strip():
        raise RuntimeError(f"vesalius token issue failed: {issued.stderr.strip()}")
    return {"Authorization": f"Bearer {issued.stdout.strip().splitlines()[-1]}"}


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
