"""Helpers shared by the DIMSE integration tests: dcmtk peers, file comparison."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import create_engine

from conftest import RunningDicom, free_port, require_tool
from vesalius.archive.index.records import StoredInstance
from vesalius.config import Settings
from vesalius.dicom.attributes import Level

LOCALHOST = "127.0.0.1"


def reset_node_tables(settings: Settings) -> None:
    """Drop the AE registry and worklist tables of a shared PostgreSQL schema.

    conftest's reset only drops the archive index tables, so without this a
    registration or scheduled step from an earlier test leaks into the next.
    """
    if not settings.database_url:
        return
    from vesalius.network import registry
    from vesalius.worklist import service

    engine = create_engine(settings.database_url)
    try:
        registry.metadata.drop_all(engine)
        service.metadata.drop_all(engine)
    finally:
        engine.dispose()


def cli(settings: Settings, *args: str, timeout: float = 180
        ) -> subprocess.CompletedProcess[str]:
    """``vesalius …`` as a separate process on the same installation (data dir + database)."""
    env = {**os.environ, "VESALIUS_DATABASE_URL": settings.database_url}
    return subprocess.run([sys.executable, "-m", "vesalius.cli.main", *args,
                           "--data-dir", str(settings.data_dir)],
                          capture_output=True, text=True, timeout=timeout, env=env, check=False)


def dcmtk(tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a dcmtk tool by its full path (pynetdicom's same-named scripts shadow it)."""
    path = require_tool(f"/usr/bin/{tool}")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def dataset_bytes(data: bytes) -> bytes:
    """The encoded data set after the Part 10 preamble and file meta group."""
    assert data[128:132] == b"DICM", "not a Part 10 file"
    # (0002,0000) UL FileMetaInformationGroupLength is always first and explicit VR.
    tag_group, tag_elem, vr = struct.unpack("<HH2s", data[132:138])
    assert (tag_group, tag_elem, vr) == (2, 0, b"UL")
    (group_length,) = struct.unpack("<I", data[140:144])
    return data[144 + group_length:]


def dataset_sha(data: bytes) -> str:
    return hashlib.sha256(dataset_bytes(data)).hexdigest()


def stored_instance(dicom: RunningDicom, sop_uid: str) -> StoredInstance:
    found = dicom.archive.locate(Level.IMAGE, [("SOPInstanceUID", sop_uid)])
    assert len(found) == 1, f"{sop_uid} is not stored exactly once"
    return found[0]


def stored_bytes(dicom: RunningDicom, sop_uid: str) -> bytes:
    return dicom.archive.read_bytes(stored_instance(dicom, sop_uid))


def instance_count(dicom: RunningDicom) -> int:
    return int(dicom.archive.reader.counts()["instances"])


def blob_path(dicom: RunningDicom, sop_uid: str) -> Path:
    """The stored file, for tests that damage it (ciphertext when encryption at rest is on,
    where the store itself has no local path)."""
    blobs = getattr(dicom.archive.blobs, "inner", dicom.archive.blobs)
    path = blobs.local_path(stored_instance(dicom, sop_uid).blob_key)
    assert path is not None
    return path


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOCALHOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def storescp(directory: Path, ae_title: str = "DEST", *, accept_all: bool = True,
             bit_preserving: bool = False) -> Iterator[int]:
    """A dcmtk storescp on a free loopback port; yields the port."""
    path = require_tool("/usr/bin/storescp")
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    args = [path, "-aet", ae_title, "-od", str(directory)]
    if accept_all:
        args.append("+xa")
    if bit_preserving:
        args.append("+B")
    proc = subprocess.Popen([*args, str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def received(directory: Path) -> dict[str, bytes]:
    """SOPInstanceUID → file bytes of everything a dcmtk SCP wrote to ``directory``."""
    out: dict[str, bytes] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file():
            data = path.read_bytes()
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            out[str(ds.SOPInstanceUID)] = data
    return out


def wire_bytes(tmp: Path, path: Path, *storescu_args: str) -> bytes:
    """What dcmtk storescu puts on the wire for ``path`` (it re-encodes: drops trailing
    padding, may change sequence lengths), captured by a bit-preserving storescp."""
    out = tmp / f"wire-{time.monotonic_ns()}"
    with storescp(out, "WIRE", bit_preserving=True) as port:
        result = dcmtk("storescu", *storescu_args, "-aec", "WIRE", LOCALHOST, str(port),
                       str(path))
        assert result.returncode == 0, result.stderr
    (data,) = received(out).values()
    return data


def find(dicom: RunningDicom, tmp: Path, model: str, keys: Sequence[str], *,
         calling: str = "FINDER") -> tuple[subprocess.CompletedProcess[str], list[Dataset]]:
    """dcmtk findscu (model -S, -P or -W) with ``-k`` keys; returns the output and responses."""
    out = tmp / f"find-{time.monotonic_ns()}"
    out.mkdir()
    args = ["-v", model, "-X", "-od", str(out), "-aet", calling, "-aec", dicom.ae_title]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("findscu", *args, LOCALHOST, str(dicom.port))
    responses = [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]
    return result, responses


def final_status(output: str, operation: str) -> str:
    """The text dcmtk logs for the final response, e.g. ``Success`` or ``Unknown Status: 0x124``."""
    match = re.search(rf"Received Final {operation} Response \(([^)]*)\)", output)
    assert match, f"no final {operation} response in:\n{output}"
    return match.group(1)


def register(dicom: RunningDicom, title: str, port: int, *permissions: str) -> None:
    dicom.registry.add(title, LOCALHOST, port, permissions=list(permissions))
