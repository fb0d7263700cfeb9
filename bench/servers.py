"""Start and stop the servers under test as real subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.client import CREDENTIALS

ORTHANC_BIN = "/usr/sbin/Orthanc"
ORTHANC_DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server: its DICOMweb root and the process to stop."""

    name: str
    base_url: str
    dicomweb: str
    pid: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    version: str = ""
    dicom_port: int = 0
    """DIMSE port (0: not listening)."""
    ae_title: str = ""
    settings: dict[str, object] = field(default_factory=dict)
    """Non-default settings the server ran with, for the report."""

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.workdir.rglob("*") if p.is_file())


def _wait_ready(server: Server, path: str, log: Path, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            tail = log.read_text()[-2000:]
            raise RuntimeError(f"{server.name} exited at start; see {log}:\n{tail}")
        try:
            response = httpx.get(server.base_url + path, timeout=2.0)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer {path} within {timeout:.0f} s; see {log}")


VESALIUS_AET = "VESALIUS"
ORTHANC_AET = "BENCHORTHANC"
BENCH_SCU_AET = "BENCHSCU"
BENCH_DEST_AET = "BENCHDST"
STORESCP_BIN = "/usr/bin/storescp"
"""dcmtk's, by full path: pynetdicom's console script of the same name shadows it in a venv."""
DCMTK_NODELAY_ENV = {"TCP_NODELAY": "1"}
"""Debian's dcmtk (3.6.7, also inside Orthanc) leaves Nagle's algorithm on unless the
environment says ``TCP_NODELAY=1``: every small DIMSE response then waits ~40 ms for the
peer's delayed ACK (C-ECHO on an open association: 47 ms without, 3.6 ms with). Both dcmtk
peers of the bench get it, so neither server is measured against a stalling peer and
Orthanc is measured at its best (Vesalius sets TCP_NODELAY on every connection itself)."""


@dataclass(frozen=True)
class DimsePeers:
    """The bench's own AEs as both servers must know them: the SCU and the C-MOVE target."""

    scu_port: int
    """Nothing listens there: the bench SCU only initiates associations."""
    dest_port: int


def _vesalius_cli() -> tuple[str, dict[str, str]]:
    exe = Path(sys.executable).with_name("vesalius")
    env = {**os.environ, "VESALIUS_LOG_LEVEL": "warning"}
    env.pop("VESALIUS_CONFIG", None)
    return str(exe), env


BENCH_CLIENT_ID = "bench"
BENCH_SCOPE = "system/*.cruds"
BENCH_TOKEN_TTL = 24 * 3600
"""Longer than any run (a million FHIR resources load in about half an hour)."""


def _vesalius_token(exe: str, env: dict[str, str], data_dir: Path, port: int) -> dict[str, str]:
    """A bearer token for the bench's backend client, from the CLI (``vesalius client add``,
    ``vesalius token issue``); none while the CLI has no ``token`` command. The token names
    the server's address as its issuer, so it is issued with the same host and port."""
    env = {**env, "VESALIUS_HOST": "127.0.0.1", "VESALIUS_HTTP_PORT": str(port)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True,
                              timeout=60)

    commands = re.search(r"\{([^}]*)\}", run("--help").stdout)
    if commands is None or "token" not in commands.group(1).split(","):
        return {}
    where = ["--scope", BENCH_SCOPE, "--data-dir", str(data_dir)]
    added = run("client", "add", BENCH_CLIENT_ID, *where)
    issued = run("token", "issue", "--client", BENCH_CLIENT_ID, "--ttl", str(BENCH_TOKEN_TTL),
                 *where)
    if issued.returncode != 0 or not issued.stdout.strip():
        raise RuntimeError(f"no bench token: {added.stderr.strip()} {issued.stderr.strip()}")
    return {"Authorization": f"Bearer {issued.stdout.strip().splitlines()[-1]}"}


def start_vesalius(workdir: Path, peers: DimsePeers | None = None) -> Server:
    """``vesalius serve`` with default HTTP workers; DIMSE on a free port when ``peers``."""
    workdir.mkdir(parents=True)
    port = free_port()
    dicom_port = free_port() if peers else 0
    log = workdir / "server.log"
    exe, env = _vesalius_cli()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [exe, "serve", "--data-dir", str(workdir / "data"),
             "--host", "127.0.0.1", "--http-port", str(port),
             "--dicom-port", str(dicom_port), "--ae-title", VESALIUS_AET],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    server = Server("Vesalius", base, base + "/dicom-web", process.pid, workdir, process,
                    dicom_port=dicom_port, ae_title=VESALIUS_AET)
    try:
        server.version = str(_wait_ready(server, "/healthz", log).json().get("version", ""))
        headers = _vesalius_token(exe, env, workdir / "data", port)
        CREDENTIALS.register(base, headers)
        if headers:  # recorded: Orthanc runs without authentication
            server.settings["authentication"] = f"bearer token ({BENCH_SCOPE}) on every request"
        if peers:
            _wait_port(server, dicom_port, log)
            # The AE registry lives in the server's database: registering while it runs
            # is the documented way (``vesalius ae add``).
            for title, ae_port, allow in (
                (BENCH_SCU_AET, peers.scu_port, "store,find,move,get"),
                (BENCH_DEST_AET, peers.dest_port, "store"),
            ):
                subprocess.run(
                    [exe, "ae", "add", title, "--host", "127.0.0.1", "--port", str(ae_port),
                     "--allow", allow, "--data-dir", str(workdir / "data")],
                    env=env, check=True, capture_output=True, timeout=60,
                )
            server.settings["ae_registry"] = {BENCH_SCU_AET: "store,find,move,get",
                                              BENCH_DEST_AET: "store"}
    except BaseException:
        server.stop()
        raise
    return server


def _wait_port(server: Server, port: int, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} does not listen on DICOM port {port}; see {log}")


@dataclass
class StoreScp:
    """dcmtk ``storescp --ignore``: the C-MOVE destination, receives and discards."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    ae_title: str = BENCH_DEST_AET

    @property
    def dicom_port(self) -> int:
        return self.port

    def received(self) -> int:
        """C-STORE requests received so far (from its ``-v`` log)."""
        return self.log.read_text(errors="replace").count("Received Store Request")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_storescp(workdir: Path) -> StoreScp:
    workdir.mkdir(parents=True)
    port = free_port()
    log = workdir / "storescp.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [STORESCP_BIN, "-v", "--ignore", "+xa", "-aet", BENCH_DEST_AET, str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **DCMTK_NODELAY_ENV},
        )
    scp = StoreScp(port, process, log)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"storescp exited at start: {log.read_text()[-1000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), 1.0):
                break
        except OSError:
            if time.monotonic() > deadline:
                scp.stop()
                raise RuntimeError(f"storescp does not listen on {port}") from None
            time.sleep(0.1)
    return scp


def start_orthanc(workdir: Path, peers: DimsePeers | None = None) -> Server:
    workdir.mkdir(parents=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "VESALIUS-BENCH-ORTHANC",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AET,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpCompressionEnabled": False,
        "StorageCompression": False,
        "SaveJobs": False,
        "Plugins": [ORTHANC_DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    dimse_settings: dict[str, object] = {}
    if peers:
        # Declared modalities may use every DIMSE service: the same rights Vesalius's AE
        # registry gives BENCHSCU. Everything else (PDU size, threads) stays default.
        dimse_settings = {
            "DicomModalities": {
                "bench": [BENCH_SCU_AET, "127.0.0.1", peers.scu_port],
                "dest": [BENCH_DEST_AET, "127.0.0.1", peers.dest_port],
            },
            "DicomAlwaysAllowStore": True,
            "DicomCheckCalledAet": False,
            "environment": "TCP_NODELAY=1",
        }
        config.update({k: v for k, v in dimse_settings.items() if k != "environment"})
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config, indent=2))
    pid_file = workdir / "pid"
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["sh", "-c", f'echo $$ > "{pid_file}"; exec {ORTHANC_BIN} "{config_path}"'],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **DCMTK_NODELAY_ENV},
        )
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("Orthanc did not write its PID")
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    base = f"http://127.0.0.1:{http_port}"
    server = Server("Orthanc", base, base + "/dicom-web", pid, workdir, process,
                    dicom_port=dicom_port if peers else 0, ae_title=ORTHANC_AET,
                    settings=dimse_settings)
    try:
        system = _wait_ready(server, "/system", log).json()
        plugin = httpx.get(base + "/plugins/dicom-web", timeout=5).json()
        server.version = f"{system.get('Version')} (DICOMweb plugin {plugin.get('Version')})"
        if peers:
            _wait_port(server, dicom_port, log)
    except BaseException:
        server.stop()
        raise
    return server
