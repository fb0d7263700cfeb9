"""One client for every server: STOW-RS, QIDO-RS and WADO-RS timings and light checks.

The same code, headers and concurrency are used against each server. Requests
ask for identity encoding so neither server spends time compressing.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from bench.data import STOW_CONTENT_TYPE, Batch

DICOM_JSON = "application/dicom+json"
RETRIEVE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"'
TIMEOUT = httpx.Timeout(600.0, connect=10.0)
BASE_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "vesalius-bench"}

REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"


class BenchError(RuntimeError):
    """A server answered wrongly: recorded in the results, never worked around."""


class ServerCredentials(httpx.Auth):
    """The credentials of each server under test, by origin (``http://127.0.0.1:8042``).

    Vesalius requires a bearer token on every DICOMweb and FHIR request; Orthanc runs
    without authentication. Each request carries its own server's credentials, so the
    measuring code stays the same for both.
    """

    def __init__(self) -> None:
        self._headers: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def register(self, base_url: str, headers: dict[str, str]) -> None:
        with self._lock:
            self._headers[str(httpx.URL(base_url).copy_with(path="/"))] = dict(headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            headers = self._headers.get(str(request.url.copy_with(path="/", query=None)), {})
        request.headers.update(headers)
        yield request


CREDENTIALS = ServerCredentials()


def new_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, headers=BASE_HEADERS, auth=CREDENTIALS)


class ThreadClients:
    """One keep-alive client per worker thread (httpx clients are not shared across threads
    here, so connection reuse is per thread, like a real multi-connection uploader)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        c: httpx.Client | None = getattr(self._local, "client", None)
        if c is None:
            c = new_client()
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def close(self) -> None:
        for c in self._clients:
            c.close()


@dataclass
class IngestResult:
    instances: int
    nbytes: int
    seconds: float
    threads: int
    batch_size: int
    errors: list[str] = field(default_factory=list)

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "instances": self.instances, "bytes": self.nbytes, "seconds": self.seconds,
            "threads": self.threads, "batch_size": self.batch_size,
            "instances_per_s": self.instances_per_s, "mb_per_s": self.mb_per_s,
            "errors": self.errors,
        }


def _check_stow(response: httpx.Response, expected: int) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    try:
        body = response.json()
    except ValueError:
        return f"STOW response is not JSON: {response.text[:200]}"
    failed = body.get(FAILED_SOP_SEQUENCE, {}).get("Value", [])
    if failed:
        return f"{len(failed)} failed instances: {str(failed)[:300]}"
    stored = len(body.get(REFERENCED_SOP_SEQUENCE, {}).get("Value", []))
    if stored != expected:
        return f"{stored} of {expected} instances referenced as stored"
    return None


def stow(dicomweb: str, batches: Sequence[Batch], threads: int) -> IngestResult:
    """POST every batch to ``{dicomweb}/studies`` from ``threads`` concurrent clients."""
    bodies = [b.body() for b in batches]
    clients = ThreadClients()

    def send(item: tuple[Batch, bytes]) -> str | None:
        batch, body = item
        response = clients.get().post(
            dicomweb + "/studies", content=body,
            headers={"Content-Type": STOW_CONTENT_TYPE, "Accept": DICOM_JSON},
        )
        return _check_stow(response, batch.instances)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(send, zip(batches, bodies, strict=True)))
    seconds = time.perf_counter() - start
    clients.close()
    errors = [o for o in outcomes if o]
    return IngestResult(
        instances=sum(b.instances for b in batches), nbytes=sum(b.nbytes for b in batches),
        seconds=seconds, threads=threads, batch_size=batches[0].instances if batches else 0,
        errors=errors,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(q / 100.0 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Timings:
    seconds: list[float]
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def p50_ms(self) -> float:
        return percentile(self.seconds, 50) * 1000

    @property
    def p95_ms(self) -> float:
        return percentile(self.seconds, 95) * 1000

    def as_dict(self) -> dict[str, Any]:
        return {"p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "runs": len(self.seconds),
                "seconds": self.seconds, **self.detail}


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def query_string(params: dict[str, str]) -> str:
    """Wildcards stay literal: Orthanc 1.10.1 does not percent-decode ``%2A`` in QIDO values."""
    return "&".join(f"{quote(k)}={quote(v, safe='*-,')}" for k, v in params.items())


def qido_studies(client: httpx.Client, dicomweb: str, params: dict[str, str]) -> list[Any]:
    url = f"{dicomweb}/studies?{query_string(params)}"
    response = client.get(url, headers={"Accept": DICOM_JSON})
    if response.status_code == 204:
        return []
    if response.status_code != 200:
        raise BenchError(f"QIDO {params}: HTTP {response.status_code}: {response.text[:300]}")
    body: list[Any] = response.json()
    return body


def qido_latency(dicomweb: str, params: dict[str, str], runs: int) -> Timings:
    with new_client() as client:
        first = qido_studies(client, dicomweb, params)
        seconds: list[float] = []
        for _ in range(runs):
            elapsed, result = timed(lambda: qido_studies(client, dicomweb, params))
            if len(result) != len(first):
                raise BenchError(
                    f"QIDO {params}: result count changed {len(first)} -> {len(result)}"
                )
            seconds.append(elapsed)
    uids = sorted(str(s.get("0020000D", {}).get("Value", [""])[0]) for s in first)
    return Timings(seconds, {"results": len(first), "study_uids": uids})


def series_metadata(dicomweb: str, study: str, series: str, runs: int) -> tuple[float, Timings]:
    """First request (just after ingest) and ``runs`` warm requests."""
    url = f"{dicomweb}/studies/{study}/series/{series}/metadata"

    def get(client: httpx.Client) -> int:
        response = client.get(url, headers={"Accept": DICOM_JSON})
        if response.status_code != 200:
            raise BenchError(f"series metadata: HTTP {response.status_code}: {response.text[:300]}")
        return len(response.json())

    with new_client() as client:
        first, count = timed(lambda: get(client))
        seconds = []
        for _ in range(runs):
            elapsed, again = timed(lambda: get(client))
            if again != count:
                raise BenchError(f"series metadata: item count changed {count} -> {again}")
            seconds.append(elapsed)
    return first, Timings(seconds, {"first_ms": first * 1000, "instances": count})


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')


def series_retrieve(dicomweb: str, study: str, series: str, runs: int) -> Timings:
    """GET a whole series as multipart DICOM; the body is read to the end."""
    url = f"{dicomweb}/studies/{study}/series/{series}"
    sizes: list[int] = []
    parts: list[int] = []
    seconds: list[float] = []
    first_part = b""
    with new_client() as client:
        for _ in range(runs):
            start = time.perf_counter()
            with client.stream("GET", url, headers={"Accept": RETRIEVE_ACCEPT}) as response:
                if response.status_code != 200:
                    response.read()
                    raise BenchError(
                        f"series retrieve: HTTP {response.status_code}: {response.text[:300]}"
                    )
                body = response.read()
            seconds.append(time.perf_counter() - start)
            content_type = response.headers.get("content-type", "")
            match = _BOUNDARY.search(content_type)
            if not match:
                raise BenchError(f"series retrieve: no boundary in {content_type!r}")
            delimiter = b"--" + match.group(1).encode()
            parts.append(body.count(b"\r\n" + delimiter) + int(body.startswith(delimiter)) - 1)
            sizes.append(len(body))
            if not first_part:
                chunk = body.split(delimiter)[1]
                first_part = chunk.split(b"\r\n\r\n", 1)[1]
    return Timings(seconds, {
        "body_bytes": sizes[0], "parts": parts[0], "content_type": content_type,
        "mb_per_s": [s / 1e6 / t for s, t in zip(sizes, seconds, strict=True)],
        "first_part_head": first_part[128:132].decode("latin-1"),
    })


def frame_latency(dicomweb: str, study: str, series: str, sops: Sequence[str],
                  runs: int) -> Timings:
    """``frames/1`` of ``runs`` different instances (not the same one over and over)."""
    seconds: list[float] = []
    lengths: list[int] = []
    with new_client() as client:
        for i in range(runs):
            sop = sops[(i * 7) % len(sops)]
            url = f"{dicomweb}/studies/{study}/series/{series}/instances/{sop}/frames/1"
            start = time.perf_counter()
            response = client.get(url, headers={"Accept": FRAME_ACCEPT})
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise BenchError(f"frame: HTTP {response.status_code}: {response.text[:300]}")
            seconds.append(elapsed)
            lengths.append(len(response.content))
    return Timings(seconds, {"body_bytes_min": min(lengths), "body_bytes_max": max(lengths),
                             "content_type": response.headers.get("content-type", "")})
