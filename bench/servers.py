"""Start and stop the servers under test as real subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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


def start_vesalius(workdir: Path) -> Server:
    workdir.mkdir(parents=True)
    port = free_port()
    log = workdir / "server.log"
    exe = Path(sys.executable).with_name("vesalius")
    env = {**os.environ, "VESALIUS_LOG_LEVEL": "warning"}
    env.pop("VESALIUS_CONFIG", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(exe), "serve", "--data-dir", str(workdir / "data"),
             "--host", "127.0.0.1", "--http-port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    server = Server("Vesalius", base, base + "/dicom-web", process.pid, workdir, process)
    try:
        server.version = str(_wait_ready(server, "/healthz", log).json().get("version", ""))
    except BaseException:
        server.stop()
        raise
    return server


def start_orthanc(workdir: Path) -> Server:
    workdir.mkdir(parents=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "VESALIUS-BENCH-ORTHANC",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "BENCHORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpCompressionEnabled": False,
        "StorageCompression": False,
        "SaveJobs": False,
        "Plugins": [ORTHANC_DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config, indent=2))
    pid_file = workdir / "pid"
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["sh", "-c", f'echo $$ > "{pid_file}"; exec {ORTHANC_BIN} "{config_path}"'],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("Orthanc did not write its PID")
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    base = f"http://127.0.0.1:{http_port}"
    server = Server("Orthanc", base, base + "/dicom-web", pid, workdir, process)
    try:
        system = _wait_ready(server, "/system", log).json()
        plugin = httpx.get(base + "/plugins/dicom-web", timeout=5).json()
        server.version = f"{system.get('Version')} (DICOMweb plugin {plugin.get('Version')})"
    except BaseException:
        server.stop()
        raise
    return server
