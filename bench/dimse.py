"""One DIMSE client for both servers: C-STORE, C-FIND and C-MOVE with pynetdicom.

Every association sets TCP_NODELAY on the client socket as soon as it is connected
(per-association DIMSE throughput is latency-bound otherwise). Instances are sent as
pydicom Datasets already in memory, in the transfer syntax they were cached in
(Explicit VR Little Endian), which is the only one proposed, so neither server converts.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from bench.client import DICOM_JSON, BenchError, Timings, new_client
from bench.data import DimseSeries
from bench.servers import BENCH_SCU_AET, Server

_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False

DIMSE_TIMEOUT = 600.0
FIND_RETURN_KEYS = (
    "StudyInstanceUID", "PatientName", "PatientID", "StudyDate", "StudyTime",
    "AccessionNumber", "StudyDescription", "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)
"""Requested at study level in every C-FIND: what a worklist-style study browser asks."""

PENDING = (0xFF00, 0xFF01)


class Peer(Protocol):
    """A DIMSE peer on loopback: a server under test, or the dcmtk storescp."""

    @property
    def dicom_port(self) -> int: ...

    @property
    def ae_title(self) -> str: ...


def _nodelay(event: evt.Event) -> None:
    transport = event.assoc.dul.socket
    if transport is None or transport.socket is None:
        raise BenchError("EVT_CONN_OPEN without a socket: cannot set TCP_NODELAY")
    transport.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _new_ae() -> AE:
    ae = AE(ae_title=BENCH_SCU_AET)
    ae.acse_timeout = 60
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.network_timeout = DIMSE_TIMEOUT
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    return ae


def associate(server: Peer, ae: AE | None = None) -> Association:
    assoc = (ae or _new_ae()).associate(
        "127.0.0.1", server.dicom_port, ae_title=server.ae_title,
        evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)],
    )
    if not assoc.is_established:
        state = ("rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted
                 else "not established")
        raise BenchError(f"association to {server.ae_title}:{server.dicom_port} {state}")
    return assoc


def _status(ds: Dataset | None) -> int:
    if ds is None or "Status" not in ds:
        raise BenchError("no DIMSE response (timeout, abort or invalid response)")
    return int(ds.Status)


@dataclass
class StoreResult:
    instances: int
    nbytes: int
    seconds: float
    associations: int
    associate_ms: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "instances": self.instances, "bytes": self.nbytes, "seconds": self.seconds,
            "associations": self.associations, "associate_ms": self.associate_ms,
            "instances_per_s": self.instances / self.seconds,
            "mb_per_s": self.nbytes / 1e6 / self.seconds,
        }


def c_store(server: Peer, series: Sequence[DimseSeries], associations: int) -> StoreResult:
    """Send every instance of ``series``, split into ``associations`` disjoint chunks each
    sent over its own association from its own thread. Timed from the moment every
    association is established to the last response; association set-up is reported apart.
    """
    datasets = [ds for s in series for ds in s.datasets]
    nbytes = sum(s.nbytes for s in series)
    size = -(-len(datasets) // associations)
    chunks = [datasets[i * size:(i + 1) * size] for i in range(associations)]
    ready = threading.Barrier(associations + 1)
    failures: list[str] = []
    setup_ms: list[float] = [0.0] * associations
    lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            start = time.perf_counter()
            assoc = associate(server)
            setup_ms[index] = (time.perf_counter() - start) * 1000
        except BenchError as exc:
            with lock:
                failures.append(str(exc))
            ready.abort()
            return
        try:
            ready.wait()
            for ds in chunks[index]:
                status = _status(assoc.send_c_store(ds))
                if status != 0x0000:
                    with lock:
                        failures.append(f"C-STORE {ds.SOPInstanceUID}: status 0x{status:04X}")
        except (BenchError, threading.BrokenBarrierError, OSError, RuntimeError,
                ValueError) as exc:
            with lock:
                failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            if assoc.is_established:
                assoc.release()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(associations)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait(timeout=120)
    start = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if failures:
        raise BenchError(f"C-STORE: {len(failures)} failures; first: {failures[0]}")
    return StoreResult(len(datasets), nbytes, seconds, associations, setup_ms)


def stored_counts(server: Server, series: Sequence[DimseSeries]) -> dict[str, int]:
    """Instances per DIMSE-stored series as QIDO-RS reports them (an independent path)."""
    out: dict[str, int] = {}
    with new_client() as client:
        for s in series:
            url = f"{server.dicomweb}/studies/{s.study_uid}/series/{s.series_uid}/instances"
            response = client.get(url, headers={"Accept": DICOM_JSON})
            if response.status_code == 204:
                out[s.series_uid] = 0
            elif response.status_code == 200:
                out[s.series_uid] = len(response.json())
            else:
                raise BenchError(f"QIDO instances: HTTP {response.status_code}")
    return out


def _find_identifier(params: dict[str, str]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in FIND_RETURN_KEYS:
        setattr(ds, keyword, "")
    for keyword, value in params.items():
        setattr(ds, keyword, value)
    return ds


def find_studies(assoc: Association, params: dict[str, str]) -> list[str]:
    """Study Instance UIDs matching ``params`` (one C-FIND; raises on a failure status)."""
    uids: list[str] = []
    for status, identifier in assoc.send_c_find(
        _find_identifier(params), StudyRootQueryRetrieveInformationModelFind
    ):
        code = _status(status)
        if code in PENDING:
            if identifier is None:
                raise BenchError(f"C-FIND {params}: pending response without identifier")
            uids.append(str(identifier.get("StudyInstanceUID", "")))
        elif code != 0x0000:
            raise BenchError(f"C-FIND {params}: status 0x{code:04X}")
    return uids


def find_latency(server: Server, params: dict[str, str], runs: int) -> Timings:
    """``runs`` C-FINDs on one association after one untimed run: time to the final response."""
    assoc = associate(server)
    try:
        first = find_studies(assoc, params)
        seconds: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            result = find_studies(assoc, params)
            seconds.append(time.perf_counter() - start)
            if len(result) != len(first):
                raise BenchError(
                    f"C-FIND {params}: result count changed {len(first)} -> {len(result)}"
                )
    finally:
        if assoc.is_established:
            assoc.release()
    return Timings(seconds, {"results": len(first), "study_uids": sorted(first)})


def echo_latency(server: Server, runs: int) -> Timings:
    """Open an association, C-ECHO, release: the fixed cost of every DIMSE exchange."""
    ae = _new_ae()
    seconds: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        assoc = associate(server, ae)
        try:
            code = _status(assoc.send_c_echo())
        finally:
            if assoc.is_established:
                assoc.release()
        seconds.append(time.perf_counter() - start)
        if code != 0x0000:
            raise BenchError(f"C-ECHO: status 0x{code:04X}")
    return Timings(seconds)


def c_move(server: Server, series: DimseSeries, destination: str, runs: int) -> dict[str, Any]:
    """C-MOVE (study root, SERIES level) of ``series`` to ``destination``, ``runs`` times,
    each on a fresh association; timed from the request to the final response."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = series.study_uid
    identifier.SeriesInstanceUID = series.series_uid
    seconds: list[float] = []
    completed: list[int] = []
    failed: list[int] = []
    warning: list[int] = []
    for _ in range(runs):
        assoc = associate(server)
        try:
            start = time.perf_counter()
            final: Dataset | None = None
            for status, _identifier in assoc.send_c_move(
                identifier, destination, StudyRootQueryRetrieveInformationModelMove
            ):
                code = _status(status)
                if code not in PENDING:
                    final = status
            elapsed = time.perf_counter() - start
        finally:
            if assoc.is_established:
                assoc.release()
        if final is None:
            raise BenchError("C-MOVE: no final response")
        code = int(final.Status)
        done = int(final.get("NumberOfCompletedSuboperations", -1))
        fail = int(final.get("NumberOfFailedSuboperations", 0))
        warn = int(final.get("NumberOfWarningSuboperations", 0))
        if code != 0x0000 or done != len(series.datasets) or fail or warn:
            raise BenchError(
                f"C-MOVE: status 0x{code:04X}, completed {done}, failed {fail}, "
                f"warning {warn}; expected {len(series.datasets)} completed"
            )
        seconds.append(elapsed)
        completed.append(done)
        failed.append(fail)
        warning.append(warn)
    median = sorted(seconds)[len(seconds) // 2]
    return {
        "runs": runs, "seconds": seconds, "median_seconds": median,
        "instances": len(series.datasets), "bytes": series.nbytes,
        "instances_per_s": len(series.datasets) / median,
        "mb_per_s": series.nbytes / 1e6 / median,
        "completed": completed, "failed": failed, "warning": warning,
    }
